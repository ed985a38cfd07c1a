//! Topic configs: the names Kafka 4.x knows, their types, defaults and valid ranges.
//!
//! Only explicit overrides are stored in the log; a missing key means Kafka's default below.
//! (Kafka lets broker-level `log.*` settings change these defaults; the broker can layer its
//! own defaults over [`EffectiveTopicConfig`] the same way.)

use std::collections::BTreeMap;

/// The type of a config value and what it accepts.
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub enum ConfigKind {
    Int {
        min: i64,
        max: i64,
    },
    Long {
        min: i64,
    },
    /// A ratio between 0 and 1 inclusive.
    Ratio,
    Bool,
    /// One of a fixed set of strings (case-sensitive, as Kafka's `ValidString`).
    Choice(&'static [&'static str]),
    /// A comma-separated list of items from a fixed set.
    ListOf(&'static [&'static str]),
    /// A comma-separated list of `partition:broker` pairs or `*` (throttled replicas).
    ReplicaList,
}

impl ConfigKind {
    /// Kafka's `DescribeConfigs` config type code (KIP-569).
    pub fn kafka_type_code(self) -> i8 {
        match self {
            ConfigKind::Bool => 1,
            ConfigKind::Choice(_) => 2,
            ConfigKind::Int { .. } => 3,
            ConfigKind::Long { .. } => 5,
            ConfigKind::Ratio => 6,
            ConfigKind::ListOf(_) | ConfigKind::ReplicaList => 7,
        }
    }
}

/// One known topic config.
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub struct ConfigDef {
    pub name: &'static str,
    pub kind: ConfigKind,
    /// Kafka's default, as DescribeConfigs prints it.
    pub default: &'static str,
}

const I32_MAX: i64 = i32::MAX as i64;
const LONG_MAX: &str = "9223372036854775807";

const fn int(name: &'static str, min: i64, default: &'static str) -> ConfigDef {
    ConfigDef {
        name,
        kind: ConfigKind::Int { min, max: I32_MAX },
        default,
    }
}

const fn long(name: &'static str, min: i64, default: &'static str) -> ConfigDef {
    ConfigDef {
        name,
        kind: ConfigKind::Long { min },
        default,
    }
}

const fn other(name: &'static str, kind: ConfigKind, default: &'static str) -> ConfigDef {
    ConfigDef {
        name,
        kind,
        default,
    }
}

/// Every topic config accepted, sorted by name. Values and ranges follow Kafka 4.x's
/// `LogConfig` (segment.bytes at least 1 MiB since KIP-1030; message.timestamp.after.max.ms
/// one hour since 4.0).
pub const TOPIC_CONFIGS: &[ConfigDef] = &[
    other(
        "cleanup.policy",
        ConfigKind::ListOf(&["compact", "delete"]),
        "delete",
    ),
    ConfigDef {
        name: "compression.gzip.level",
        kind: ConfigKind::Int { min: -1, max: 9 },
        default: "-1",
    },
    ConfigDef {
        name: "compression.lz4.level",
        kind: ConfigKind::Int { min: 1, max: 17 },
        default: "9",
    },
    other(
        "compression.type",
        ConfigKind::Choice(&["uncompressed", "zstd", "lz4", "snappy", "gzip", "producer"]),
        "producer",
    ),
    ConfigDef {
        name: "compression.zstd.level",
        kind: ConfigKind::Int {
            min: -131072,
            max: 22,
        },
        default: "3",
    },
    long("delete.retention.ms", 0, "86400000"),
    long("file.delete.delay.ms", 0, "60000"),
    long("flush.messages", 1, LONG_MAX),
    long("flush.ms", 0, LONG_MAX),
    other(
        "follower.replication.throttled.replicas",
        ConfigKind::ReplicaList,
        "",
    ),
    int("index.interval.bytes", 0, "4096"),
    other(
        "leader.replication.throttled.replicas",
        ConfigKind::ReplicaList,
        "",
    ),
    long("max.compaction.lag.ms", 1, LONG_MAX),
    int("max.message.bytes", 0, "1048588"),
    long("message.timestamp.after.max.ms", 0, "3600000"),
    long("message.timestamp.before.max.ms", 0, LONG_MAX),
    other(
        "message.timestamp.type",
        ConfigKind::Choice(&["CreateTime", "LogAppendTime"]),
        "CreateTime",
    ),
    other("min.cleanable.dirty.ratio", ConfigKind::Ratio, "0.5"),
    long("min.compaction.lag.ms", 0, "0"),
    int("min.insync.replicas", 1, "1"),
    other("preallocate", ConfigKind::Bool, "false"),
    long("retention.bytes", i64::MIN, "-1"),
    long("retention.ms", -1, "604800000"),
    int("segment.bytes", 1024 * 1024, "1073741824"),
    int("segment.index.bytes", 4, "10485760"),
    long("segment.jitter.ms", 0, "0"),
    long("segment.ms", 1, "604800000"),
    other("unclean.leader.election.enable", ConfigKind::Bool, "false"),
];

/// The definition of a topic config, or `None` for a name Kafka does not know.
pub fn topic_config_def(name: &str) -> Option<&'static ConfigDef> {
    TOPIC_CONFIGS.iter().find(|d| d.name == name)
}

/// Checks one `name=value` pair; the error is the message for INVALID_CONFIG.
pub fn validate_topic_config(name: &str, value: &str) -> Result<(), String> {
    let def = topic_config_def(name).ok_or_else(|| format!("Unknown topic config name: {name}"))?;
    validate_value(def.kind, value.trim())
        .map_err(|why| format!("Invalid value {value} for configuration {name}: {why}"))
}

fn validate_value(kind: ConfigKind, value: &str) -> Result<(), String> {
    match kind {
        ConfigKind::Int { min, max } => {
            let v: i32 = value
                .parse()
                .map_err(|_| "Not a number of type INT".to_string())?;
            check_range(i64::from(v), min, max)
        }
        ConfigKind::Long { min } => {
            let v: i64 = value
                .parse()
                .map_err(|_| "Not a number of type LONG".to_string())?;
            check_range(v, min, i64::MAX)
        }
        ConfigKind::Ratio => {
            let v: f64 = value
                .parse()
                .map_err(|_| "Not a number of type DOUBLE".to_string())?;
            if (0.0..=1.0).contains(&v) {
                Ok(())
            } else {
                Err("Value must be between 0 and 1".to_string())
            }
        }
        ConfigKind::Bool => parse_bool(value)
            .map(|_| ())
            .ok_or_else(|| "Expected value to be either true or false".to_string()),
        ConfigKind::Choice(valid) => validate_choice(valid, value),
        ConfigKind::ListOf(valid) => validate_list(valid, value),
        ConfigKind::ReplicaList => validate_replica_list(value),
    }
}

fn check_range(v: i64, min: i64, max: i64) -> Result<(), String> {
    if v < min {
        Err(format!("Value must be at least {min}"))
    } else if v > max {
        Err(format!("Value must be no more than {max}"))
    } else {
        Ok(())
    }
}

fn parse_bool(value: &str) -> Option<bool> {
    if value.eq_ignore_ascii_case("true") {
        Some(true)
    } else if value.eq_ignore_ascii_case("false") {
        Some(false)
    } else {
        None
    }
}

fn validate_choice(valid: &[&str], value: &str) -> Result<(), String> {
    if valid.contains(&value) {
        Ok(())
    } else {
        Err(format!("String must be one of: {}", valid.join(", ")))
    }
}

fn validate_list(valid: &[&str], value: &str) -> Result<(), String> {
    let items = list_items(value);
    if items.iter().all(|item| valid.contains(item)) {
        Ok(())
    } else {
        Err(format!(
            "The list must only contain: [{}]",
            valid.join(", ")
        ))
    }
}

fn validate_replica_list(value: &str) -> Result<(), String> {
    let items = list_items(value);
    if items == ["*"] {
        return Ok(());
    }
    let pair_ok = |item: &&str| match item.split_once(':') {
        Some((p, b)) => p.trim().parse::<i32>().is_ok() && b.trim().parse::<i32>().is_ok(),
        None => false,
    };
    if items.iter().all(pair_ok) {
        Ok(())
    } else {
        Err(
            "must be the literal '*' or a list of replicas in the format [PartitionId]:[BrokerId]"
                .to_string(),
        )
    }
}

/// Items of a comma-separated list, trimmed, empty items dropped (as Kafka's LIST type).
fn list_items(value: &str) -> Vec<&str> {
    value
        .split(',')
        .map(str::trim)
        .filter(|s| !s.is_empty())
        .collect()
}

/// Whether records may carry the producer's timestamp or get the broker's append time.
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub enum TimestampType {
    CreateTime,
    LogAppendTime,
}

/// A topic's configs parsed, defaults filled in: what the log and produce path read.
#[derive(Clone, Debug, PartialEq, Eq)]
pub struct EffectiveTopicConfig {
    pub cleanup_policy_delete: bool,
    pub cleanup_policy_compact: bool,
    pub compression_type: String,
    pub delete_retention_ms: i64,
    pub file_delete_delay_ms: i64,
    pub flush_messages: i64,
    pub flush_ms: i64,
    pub index_interval_bytes: i32,
    pub max_message_bytes: i32,
    pub message_timestamp_after_max_ms: i64,
    pub message_timestamp_before_max_ms: i64,
    pub message_timestamp_type: TimestampType,
    pub min_insync_replicas: i32,
    pub preallocate: bool,
    pub retention_bytes: i64,
    pub retention_ms: i64,
    pub segment_bytes: i32,
    pub segment_index_bytes: i32,
    pub segment_jitter_ms: i64,
    pub segment_ms: i64,
    pub unclean_leader_election_enable: bool,
}

impl Default for EffectiveTopicConfig {
    fn default() -> Self {
        Self::from_overrides(&BTreeMap::new())
    }
}

impl EffectiveTopicConfig {
    /// Parses overrides over Kafka's defaults. A stored value that no longer parses (written
    /// by a laxer version) falls back to the default rather than failing the whole topic.
    pub fn from_overrides(overrides: &BTreeMap<String, String>) -> Self {
        let get = |name: &str| -> &str {
            let default = topic_config_def(name)
                .map(|d| d.default)
                .unwrap_or_default();
            match overrides.get(name) {
                Some(v) if validate_topic_config(name, v).is_ok() => v.trim(),
                _ => default,
            }
        };
        let long = |name: &str| get(name).parse::<i64>().unwrap_or_default();
        let int = |name: &str| get(name).parse::<i32>().unwrap_or_default();
        let boolean = |name: &str| parse_bool(get(name)).unwrap_or_default();
        let policy = list_items(get("cleanup.policy"));
        EffectiveTopicConfig {
            cleanup_policy_delete: policy.contains(&"delete"),
            cleanup_policy_compact: policy.contains(&"compact"),
            compression_type: get("compression.type").to_string(),
            delete_retention_ms: long("delete.retention.ms"),
            file_delete_delay_ms: long("file.delete.delay.ms"),
            flush_messages: long("flush.messages"),
            flush_ms: long("flush.ms"),
            index_interval_bytes: int("index.interval.bytes"),
            max_message_bytes: int("max.message.bytes"),
            message_timestamp_after_max_ms: long("message.timestamp.after.max.ms"),
            message_timestamp_before_max_ms: long("message.timestamp.before.max.ms"),
            message_timestamp_type: match get("message.timestamp.type") {
                "LogAppendTime" => TimestampType::LogAppendTime,
                _ => TimestampType::CreateTime,
            },
            min_insync_replicas: int("min.insync.replicas"),
            preallocate: boolean("preallocate"),
            retention_bytes: long("retention.bytes"),
            retention_ms: long("retention.ms"),
            segment_bytes: int("segment.bytes"),
            segment_index_bytes: int("segment.index.bytes"),
            segment_jitter_ms: long("segment.jitter.ms"),
            segment_ms: long("segment.ms"),
            unclean_leader_election_enable: boolean("unclean.leader.election.enable"),
        }
    }
}

/// One row of DescribeConfigs for a topic.
#[derive(Clone, Debug, PartialEq, Eq)]
pub struct DescribedConfig {
    pub name: &'static str,
    pub value: String,
    /// True when no override is set and `value` is the default.
    pub is_default: bool,
    pub kind: ConfigKind,
}

/// Every known topic config with its current value, in name order.
pub fn describe_topic_config(overrides: &BTreeMap<String, String>) -> Vec<DescribedConfig> {
    TOPIC_CONFIGS
        .iter()
        .map(|def| match overrides.get(def.name) {
            Some(value) => DescribedConfig {
                name: def.name,
                value: value.clone(),
                is_default: false,
                kind: def.kind,
            },
            None => DescribedConfig {
                name: def.name,
                value: def.default.to_string(),
                is_default: true,
                kind: def.kind,
            },
        })
        .collect()
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn table_is_sorted_and_defaults_are_valid() {
        for pair in TOPIC_CONFIGS.windows(2) {
            assert!(pair[0].name < pair[1].name, "{} out of order", pair[1].name);
        }
        for def in TOPIC_CONFIGS {
            assert_eq!(
                validate_topic_config(def.name, def.default),
                Ok(()),
                "{}",
                def.name
            );
        }
    }

    #[test]
    fn values_are_checked_with_kafka_messages() {
        assert_eq!(validate_topic_config("retention.ms", "-1"), Ok(()));
        assert_eq!(
            validate_topic_config("retention.ms", "-2"),
            Err(
                "Invalid value -2 for configuration retention.ms: Value must be at least -1".into()
            )
        );
        assert_eq!(
            validate_topic_config("retention.ms", "soon"),
            Err(
                "Invalid value soon for configuration retention.ms: Not a number of type LONG"
                    .into()
            )
        );
        assert_eq!(
            validate_topic_config("segment.bytes", "1000"),
            Err("Invalid value 1000 for configuration segment.bytes: Value must be at least 1048576".into())
        );
        assert_eq!(
            validate_topic_config("max.message.bytes", "3000000000"),
            Err("Invalid value 3000000000 for configuration max.message.bytes: Not a number of type INT".into())
        );
        assert_eq!(
            validate_topic_config("nope", "1"),
            Err("Unknown topic config name: nope".into())
        );
        assert_eq!(
            validate_topic_config("cleanup.policy", "compact, delete"),
            Ok(())
        );
        assert!(validate_topic_config("cleanup.policy", "forever").is_err());
        assert_eq!(
            validate_topic_config("message.timestamp.type", "LogAppendTime"),
            Ok(())
        );
        assert!(validate_topic_config("message.timestamp.type", "logappendtime").is_err());
        assert_eq!(validate_topic_config("preallocate", "TRUE"), Ok(()));
        assert!(validate_topic_config("preallocate", "yes").is_err());
        assert!(validate_topic_config("min.cleanable.dirty.ratio", "1.5").is_err());
        assert_eq!(
            validate_topic_config("leader.replication.throttled.replicas", "0:1, 1:2"),
            Ok(())
        );
        assert_eq!(
            validate_topic_config("leader.replication.throttled.replicas", "*"),
            Ok(())
        );
        assert!(validate_topic_config("leader.replication.throttled.replicas", "0-1").is_err());
    }

    #[test]
    fn effective_config_fills_defaults() {
        let config = EffectiveTopicConfig::default();
        assert_eq!(config.retention_ms, 604_800_000);
        assert_eq!(config.retention_bytes, -1);
        assert_eq!(config.segment_bytes, 1_073_741_824);
        assert_eq!(config.max_message_bytes, 1_048_588);
        assert_eq!(config.flush_messages, i64::MAX);
        assert!(config.cleanup_policy_delete && !config.cleanup_policy_compact);
        assert_eq!(config.message_timestamp_type, TimestampType::CreateTime);
        let overrides: BTreeMap<String, String> = [
            ("retention.ms", "1000"),
            ("cleanup.policy", "compact"),
            ("message.timestamp.type", "LogAppendTime"),
            ("segment.bytes", "bad"),
        ]
        .into_iter()
        .map(|(k, v)| (k.to_string(), v.to_string()))
        .collect();
        let config = EffectiveTopicConfig::from_overrides(&overrides);
        assert_eq!(config.retention_ms, 1000);
        assert!(!config.cleanup_policy_delete && config.cleanup_policy_compact);
        assert_eq!(config.message_timestamp_type, TimestampType::LogAppendTime);
        assert_eq!(config.segment_bytes, 1_073_741_824);
    }

    #[test]
    fn describe_marks_overrides() {
        let overrides: BTreeMap<String, String> =
            [("retention.ms".to_string(), "5".to_string())].into();
        let rows = describe_topic_config(&overrides);
        assert_eq!(rows.len(), TOPIC_CONFIGS.len());
        let retention = rows.iter().find(|r| r.name == "retention.ms").unwrap();
        assert_eq!(
            (retention.value.as_str(), retention.is_default),
            ("5", false)
        );
        let segment = rows.iter().find(|r| r.name == "segment.ms").unwrap();
        assert_eq!(
            (segment.value.as_str(), segment.is_default),
            ("604800000", true)
        );
        assert_eq!(segment.kind.kafka_type_code(), 5);
    }
}
