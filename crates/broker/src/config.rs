//! Broker configuration with an embedded default, so `freshet serve` needs no file.
//!
//! Layers, later ones win: built-in defaults, a TOML file, `FRESHET_*` environment variables,
//! command-line flags. Every layer is a TOML table, merged key by key, then checked once by
//! serde with unknown keys rejected, so a typo is a clear error rather than a silent default.

use serde::{Deserialize, Serialize};
use std::path::PathBuf;

/// Prefix of the environment variables that override configuration keys
/// (`FRESHET_DATA_DIR` sets `data_dir`).
pub const ENV_PREFIX: &str = "FRESHET_";

#[derive(Debug, Clone, PartialEq, Serialize, Deserialize)]
#[serde(deny_unknown_fields, default)]
pub struct BrokerConfig {
    /// This broker's id in the cluster (Kafka's `node.id`).
    pub node_id: i32,
    /// Where topics, the metadata log and checkpoints live; created on start.
    pub data_dir: PathBuf,
    /// Address the Kafka listener binds.
    pub listen: String,
    /// Address given to clients in Metadata responses; defaults to `listen`.
    pub advertised_listener: Option<String>,
    /// Partitions of an auto-created or defaulted topic (Kafka's `num.partitions`).
    pub num_partitions: i32,
    /// Kafka's `auto.create.topics.enable`.
    pub auto_create_topics_enable: bool,
    /// Largest request frame accepted (Kafka's `socket.request.max.bytes`).
    pub socket_request_max_bytes: u32,
    /// Default `segment.bytes` for topics.
    pub log_segment_bytes: i64,
    /// Default `retention.ms` for topics (-1: keep forever).
    pub log_retention_ms: i64,
    /// Default `retention.bytes` for topics (-1: unlimited).
    pub log_retention_bytes: i64,
    /// How often retention is enforced (Kafka's `log.retention.check.interval.ms`).
    pub log_retention_check_interval_ms: u64,
    /// Partitions of `__consumer_offsets` (Kafka's `offsets.topic.num.partitions`).
    pub offsets_topic_num_partitions: i32,
    /// How long the first rebalance of an empty group waits for more members (Kafka's
    /// `group.initial.rebalance.delay.ms`).
    pub group_initial_rebalance_delay_ms: i64,
    /// Bounds on the session timeout a member may ask for (Kafka's
    /// `group.min.session.timeout.ms` and `group.max.session.timeout.ms`).
    pub group_min_session_timeout_ms: i32,
    pub group_max_session_timeout_ms: i32,
    /// How long an empty group's committed offsets are kept (Kafka's
    /// `offsets.retention.minutes`).
    pub offsets_retention_minutes: i64,
    /// How often expired offsets are looked for (Kafka's
    /// `offsets.retention.check.interval.ms`).
    pub offsets_retention_check_interval_ms: i64,
    /// KIP-848 groups: how long a member may go without a heartbeat, and the interval the
    /// coordinator asks members to heartbeat at (Kafka's `group.consumer.session.timeout.ms`
    /// and `group.consumer.heartbeat.interval.ms`).
    pub group_consumer_session_timeout_ms: i32,
    pub group_consumer_heartbeat_interval_ms: i32,
}

impl Default for BrokerConfig {
    fn default() -> Self {
        BrokerConfig {
            node_id: 1,
            data_dir: PathBuf::from("./freshet-data"),
            listen: "127.0.0.1:9092".to_string(),
            advertised_listener: None,
            num_partitions: 1,
            auto_create_topics_enable: true,
            socket_request_max_bytes: 100 * 1024 * 1024,
            log_segment_bytes: 1024 * 1024 * 1024,
            log_retention_ms: 7 * 24 * 60 * 60 * 1000,
            log_retention_bytes: -1,
            log_retention_check_interval_ms: 5 * 60 * 1000,
            offsets_topic_num_partitions: 50,
            group_initial_rebalance_delay_ms: 3_000,
            group_min_session_timeout_ms: 6_000,
            group_max_session_timeout_ms: 1_800_000,
            offsets_retention_minutes: 7 * 24 * 60,
            offsets_retention_check_interval_ms: 600_000,
            group_consumer_session_timeout_ms: 45_000,
            group_consumer_heartbeat_interval_ms: 5_000,
        }
    }
}

#[derive(Debug, thiserror::Error)]
#[non_exhaustive]
pub enum ConfigError {
    #[error("cannot read config file {path}: {source}")]
    Read {
        path: PathBuf,
        source: std::io::Error,
    },
    #[error("config file {path}: {message}")]
    Parse { path: PathBuf, message: String },
    #[error("invalid configuration: {0}")]
    Invalid(String),
}

impl BrokerConfig {
    /// The address clients are told to connect to.
    pub fn advertised(&self) -> &str {
        self.advertised_listener.as_deref().unwrap_or(&self.listen)
    }

    /// Builds the configuration from its layers: `file` (TOML text and its path, if any),
    /// environment variables `env` (pairs as from `std::env::vars()`), then `overrides`.
    pub fn load(
        file: Option<(&str, PathBuf)>,
        env: impl IntoIterator<Item = (String, String)>,
        overrides: toml::Table,
    ) -> Result<Self, ConfigError> {
        let mut merged = toml::Table::try_from(BrokerConfig::default())
            .map_err(|e| ConfigError::Invalid(e.to_string()))?;
        if let Some((text, path)) = file {
            let table: toml::Table =
                text.parse()
                    .map_err(|e: toml::de::Error| ConfigError::Parse {
                        path: path.clone(),
                        message: e.to_string(),
                    })?;
            merged.extend(table);
        }
        merged.extend(env_table(env));
        merged.extend(overrides);
        let config: BrokerConfig = merged
            .try_into()
            .map_err(|e: toml::de::Error| ConfigError::Invalid(e.message().to_string()))?;
        config.validate()?;
        Ok(config)
    }

    fn validate(&self) -> Result<(), ConfigError> {
        let invalid = |m: String| Err(ConfigError::Invalid(m));
        if self.node_id < 0 {
            return invalid(format!("node_id must be >= 0, got {}", self.node_id));
        }
        if self.num_partitions < 1 {
            return invalid(format!(
                "num_partitions must be >= 1, got {}",
                self.num_partitions
            ));
        }
        if self.offsets_topic_num_partitions < 1 {
            return invalid("offsets_topic_num_partitions must be >= 1".to_string());
        }
        if self.group_initial_rebalance_delay_ms < 0 {
            return invalid("group_initial_rebalance_delay_ms must be >= 0".to_string());
        }
        if self.group_min_session_timeout_ms < 1
            || self.group_max_session_timeout_ms < self.group_min_session_timeout_ms
        {
            return invalid(format!(
                "need 1 <= group_min_session_timeout_ms <= group_max_session_timeout_ms, got {} and {}",
                self.group_min_session_timeout_ms, self.group_max_session_timeout_ms
            ));
        }
        if self.group_consumer_heartbeat_interval_ms < 1
            || self.group_consumer_session_timeout_ms <= self.group_consumer_heartbeat_interval_ms
        {
            return invalid(format!(
                "need 1 <= group_consumer_heartbeat_interval_ms < group_consumer_session_timeout_ms, got {} and {}",
                self.group_consumer_heartbeat_interval_ms, self.group_consumer_session_timeout_ms
            ));
        }
        if self.offsets_retention_minutes < 1 {
            return invalid("offsets_retention_minutes must be >= 1".to_string());
        }
        if self.offsets_retention_check_interval_ms < 1 {
            return invalid("offsets_retention_check_interval_ms must be >= 1".to_string());
        }
        if self.log_segment_bytes < 14 {
            return invalid(format!(
                "log_segment_bytes must be >= 14, got {}",
                self.log_segment_bytes
            ));
        }
        for (key, addr) in [
            ("listen", Some(&self.listen)),
            ("advertised_listener", self.advertised_listener.as_ref()),
        ] {
            if let Some(addr) = addr {
                check_host_port(key, addr)?;
            }
        }
        Ok(())
    }
}

fn check_host_port(key: &str, addr: &str) -> Result<(), ConfigError> {
    let port = addr.rsplit_once(':').map(|(_, p)| p.parse::<u16>());
    match port {
        Some(Ok(_)) => Ok(()),
        _ => Err(ConfigError::Invalid(format!(
            "{key} must be HOST:PORT, got {addr:?}"
        ))),
    }
}

/// Every configuration key, for picking `FRESHET_*` variables that configure the broker out
/// of the ones that configure other commands (`FRESHET_BOOTSTRAP` is the CLI client's).
pub const KEYS: &[&str] = &[
    "node_id",
    "data_dir",
    "listen",
    "advertised_listener",
    "num_partitions",
    "auto_create_topics_enable",
    "socket_request_max_bytes",
    "log_segment_bytes",
    "log_retention_ms",
    "log_retention_bytes",
    "log_retention_check_interval_ms",
    "offsets_topic_num_partitions",
    "group_initial_rebalance_delay_ms",
    "group_min_session_timeout_ms",
    "group_max_session_timeout_ms",
    "offsets_retention_minutes",
    "offsets_retention_check_interval_ms",
    "group_consumer_session_timeout_ms",
    "group_consumer_heartbeat_interval_ms",
];

/// The `FRESHET_*` variables naming configuration keys, as a TOML table. Values that parse as
/// TOML integers or booleans become those; everything else is a string, so
/// `FRESHET_DATA_DIR=/srv/x` needs no quotes.
fn env_table(env: impl IntoIterator<Item = (String, String)>) -> toml::Table {
    env.into_iter()
        .filter_map(|(k, v)| {
            let key = k.strip_prefix(ENV_PREFIX)?.to_ascii_lowercase();
            KEYS.contains(&key.as_str()).then(|| (key, scalar(&v)))
        })
        .collect()
}

/// Interprets a string from the environment or a flag as an integer, boolean or string.
pub fn scalar(v: &str) -> toml::Value {
    if let Ok(i) = v.parse::<i64>() {
        toml::Value::Integer(i)
    } else if let Ok(b) = v.parse::<bool>() {
        toml::Value::Boolean(b)
    } else {
        toml::Value::String(v.to_string())
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    fn env(pairs: &[(&str, &str)]) -> Vec<(String, String)> {
        pairs
            .iter()
            .map(|(k, v)| (k.to_string(), v.to_string()))
            .collect()
    }

    #[test]
    fn defaults_need_no_input() {
        let c = BrokerConfig::load(None, vec![], toml::Table::new()).unwrap();
        assert_eq!(c, BrokerConfig::default());
        assert_eq!(c.advertised(), "127.0.0.1:9092");
    }

    #[test]
    fn layers_override_in_order() {
        let file = "listen = \"127.0.0.1:1000\"\nnode_id = 7\nnum_partitions = 3\n";
        let mut flags = toml::Table::new();
        flags.insert("listen".into(), scalar("127.0.0.1:3000"));
        let c = BrokerConfig::load(
            Some((file, "f.toml".into())),
            env(&[
                ("FRESHET_NODE_ID", "9"),
                ("FRESHET_LISTEN", "127.0.0.1:2000"),
                ("HOME", "/x"),
            ]),
            flags,
        )
        .unwrap();
        assert_eq!(c.listen, "127.0.0.1:3000");
        assert_eq!(c.node_id, 9);
        assert_eq!(c.num_partitions, 3);
    }

    #[test]
    fn keys_list_every_field_and_other_env_vars_are_ignored() {
        let all = BrokerConfig {
            advertised_listener: Some("h:1".into()),
            ..Default::default()
        };
        let table = toml::Table::try_from(all).unwrap();
        let mut fields: Vec<&str> = table.keys().map(String::as_str).collect();
        let mut keys = KEYS.to_vec();
        fields.sort();
        keys.sort();
        assert_eq!(fields, keys);
        let c = BrokerConfig::load(
            None,
            env(&[("FRESHET_BOOTSTRAP", "x:1")]),
            toml::Table::new(),
        )
        .unwrap();
        assert_eq!(c, BrokerConfig::default());
    }

    #[test]
    fn unknown_keys_and_bad_values_are_clear_errors() {
        let err = BrokerConfig::load(
            Some(("lissten = 1", "f.toml".into())),
            vec![],
            toml::Table::new(),
        )
        .unwrap_err()
        .to_string();
        assert!(err.contains("lissten"), "{err}");
        let err = BrokerConfig::load(
            None,
            env(&[("FRESHET_LISTEN", "nohost")]),
            toml::Table::new(),
        )
        .unwrap_err()
        .to_string();
        assert!(err.contains("HOST:PORT"), "{err}");
        let err = BrokerConfig::load(
            None,
            env(&[("FRESHET_NUM_PARTITIONS", "0")]),
            toml::Table::new(),
        )
        .unwrap_err()
        .to_string();
        assert!(err.contains("num_partitions"), "{err}");
    }
}
