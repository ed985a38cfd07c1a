//! `freshet topic create|list|describe|delete|alter`.

use crate::output::say;
use anyhow::{bail, Context};
use freshet_client::{Admin, AlterConfigOp, KafkaCode, NewTopic, TopicDescription};

use crate::connect::{block_on, ConnectArgs};

#[derive(clap::Args, Debug)]
pub struct TopicArgs {
    #[command(subcommand)]
    command: TopicCommand,
    #[command(flatten)]
    connect: ConnectArgs,
}

#[derive(clap::Subcommand, Debug)]
enum TopicCommand {
    /// Create a topic.
    Create {
        name: String,
        /// Partition count (default: the broker's num.partitions).
        #[arg(long, short = 'p')]
        partitions: Option<i32>,
        /// Replication factor (default: the broker's default.replication.factor).
        #[arg(long, short = 'r')]
        replication_factor: Option<i16>,
        /// A topic config, `name=value`; repeatable.
        #[arg(long = "config", short = 'c', value_name = "NAME=VALUE")]
        configs: Vec<String>,
        /// Succeed if the topic already exists.
        #[arg(long)]
        if_not_exists: bool,
    },
    /// List topic names.
    List {
        /// Include internal topics such as __consumer_offsets.
        #[arg(long)]
        internal: bool,
    },
    /// Show partitions, leaders and replicas (all topics when none is named), and the
    /// configs set on each topic.
    Describe {
        names: Vec<String>,
        /// Print every config, inherited ones included.
        #[arg(long)]
        all_configs: bool,
    },
    /// Delete topics.
    Delete {
        #[arg(required = true)]
        names: Vec<String>,
        /// Succeed if a topic does not exist.
        #[arg(long)]
        if_exists: bool,
    },
    /// Change a topic: add partitions, set or remove configs.
    Alter {
        name: String,
        /// The new, larger, partition count.
        #[arg(long, short = 'p')]
        partitions: Option<i32>,
        /// Set a config, `name=value`; repeatable.
        #[arg(long = "config", short = 'c', value_name = "NAME=VALUE")]
        configs: Vec<String>,
        /// Remove a config override (back to the broker default); repeatable.
        #[arg(long = "delete-config", value_name = "NAME")]
        delete_configs: Vec<String>,
    },
}

pub fn run(args: TopicArgs) -> anyhow::Result<()> {
    let admin = Admin::new(args.connect.client_config())?;
    block_on(execute(&admin, args.command))?
}

async fn execute(admin: &Admin, command: TopicCommand) -> anyhow::Result<()> {
    match command {
        TopicCommand::Create {
            name,
            partitions,
            replication_factor,
            configs,
            if_not_exists,
        } => {
            let mut topic = NewTopic::new(
                &name,
                partitions.unwrap_or(-1),
                replication_factor.unwrap_or(-1),
            );
            topic.configs = parse_configs(&configs)?;
            match admin.create_topics(&[topic], false).await {
                Ok(()) => say!("Created topic {name}."),
                Err(error)
                    if if_not_exists
                        && error.kafka_code() == Some(KafkaCode::TOPIC_ALREADY_EXISTS) => {}
                Err(error) => return Err(error.into()),
            }
        }
        TopicCommand::List { internal } => {
            for name in admin.list_topics(internal).await? {
                say!("{name}");
            }
        }
        TopicCommand::Describe { names, all_configs } => {
            for topic in admin.describe_topics(&names).await? {
                print_description(&topic);
                print_configs(admin, &topic.name, all_configs).await?;
            }
        }
        TopicCommand::Delete { names, if_exists } => {
            for name in names {
                match admin.delete_topics(std::slice::from_ref(&name)).await {
                    Ok(()) => say!("Deleted topic {name}."),
                    Err(error)
                        if if_exists
                            && error.kafka_code()
                                == Some(KafkaCode::UNKNOWN_TOPIC_OR_PARTITION) => {}
                    Err(error) => return Err(error.into()),
                }
            }
        }
        TopicCommand::Alter {
            name,
            partitions,
            configs,
            delete_configs,
        } => alter(admin, &name, partitions, &configs, &delete_configs).await?,
    }
    Ok(())
}

async fn alter(
    admin: &Admin,
    name: &str,
    partitions: Option<i32>,
    configs: &[String],
    delete_configs: &[String],
) -> anyhow::Result<()> {
    if partitions.is_none() && configs.is_empty() && delete_configs.is_empty() {
        bail!("nothing to alter: give --partitions, --config or --delete-config");
    }
    if let Some(count) = partitions {
        admin.create_partitions(name, count).await?;
        say!("Topic {name} now has {count} partitions.");
    }
    let mut ops: Vec<AlterConfigOp> = parse_configs(configs)?
        .into_iter()
        .map(|(key, value)| AlterConfigOp::Set(key, value))
        .collect();
    ops.extend(
        delete_configs
            .iter()
            .map(|key| AlterConfigOp::Delete(key.clone())),
    );
    if !ops.is_empty() {
        admin.alter_configs(name, &ops).await?;
        say!("Updated the configs of topic {name}.");
    }
    Ok(())
}

fn parse_configs(configs: &[String]) -> anyhow::Result<Vec<(String, String)>> {
    configs
        .iter()
        .map(|pair| {
            let (key, value) = pair
                .split_once('=')
                .with_context(|| format!("config '{pair}' is not NAME=VALUE"))?;
            if key.is_empty() {
                bail!("config '{pair}' has an empty name");
            }
            Ok((key.to_owned(), value.to_owned()))
        })
        .collect()
}

fn print_description(topic: &TopicDescription) {
    let replication_factor = topic.partitions.first().map_or(0, |p| p.replicas.len());
    say!(
        "Topic: {}\tTopicId: {}\tPartitionCount: {}\tReplicationFactor: {}",
        topic.name,
        uuid_text(&topic.topic_id.0),
        topic.partitions.len(),
        replication_factor
    );
    for partition in &topic.partitions {
        say!(
            "\tPartition: {}\tLeader: {}\tReplicas: {}\tIsr: {}",
            partition.partition,
            if partition.leader < 0 {
                "none".to_owned()
            } else {
                partition.leader.to_string()
            },
            join(&partition.replicas),
            join(&partition.isr)
        );
    }
}

async fn print_configs(admin: &Admin, topic: &str, all_configs: bool) -> anyhow::Result<()> {
    let entries = admin.describe_configs(topic).await?;
    let shown: Vec<String> = entries
        .iter()
        .filter(|entry| all_configs || entry.is_topic_override())
        .map(|entry| {
            format!(
                "{}={}",
                entry.name,
                entry.value.as_deref().unwrap_or("(sensitive)")
            )
        })
        .collect();
    if !shown.is_empty() {
        say!("\tConfigs: {}", shown.join(","));
    }
    Ok(())
}

fn join(ids: &[i32]) -> String {
    ids.iter().map(i32::to_string).collect::<Vec<_>>().join(",")
}

/// Kafka prints topic ids as unpadded URL-safe base64 of the 16 bytes.
fn uuid_text(bytes: &[u8; 16]) -> String {
    const ALPHABET: &[u8; 64] = b"ABCDEFGHIJKLMNOPQRSTUVWXYZabcdefghijklmnopqrstuvwxyz0123456789-_";
    let mut out = String::with_capacity(22);
    for chunk in bytes.chunks(3) {
        let b = [
            chunk[0],
            *chunk.get(1).unwrap_or(&0),
            *chunk.get(2).unwrap_or(&0),
        ];
        let n = (u32::from(b[0]) << 16) | (u32::from(b[1]) << 8) | u32::from(b[2]);
        let chars = chunk.len() + 1;
        for i in 0..chars {
            out.push(char::from(ALPHABET[((n >> (18 - 6 * i)) & 0x3f) as usize]));
        }
    }
    out
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn configs_parse_as_name_value() {
        let parsed = parse_configs(&["retention.ms=1000".into(), "a=b=c".into()]).unwrap();
        assert_eq!(
            parsed,
            vec![
                ("retention.ms".into(), "1000".into()),
                ("a".into(), "b=c".into())
            ]
        );
        assert!(parse_configs(&["novalue".into()]).is_err());
        assert!(parse_configs(&["=x".into()]).is_err());
    }

    #[test]
    fn topic_ids_print_as_kafka_does() {
        // Kafka: Uuid.ZERO_UUID.toString() is "AAAAAAAAAAAAAAAAAAAAAA".
        assert_eq!(uuid_text(&[0; 16]), "AAAAAAAAAAAAAAAAAAAAAA");
        let mut bytes = [0u8; 16];
        bytes[15] = 1;
        assert_eq!(uuid_text(&bytes), "AAAAAAAAAAAAAAAAAAAAAQ");
        assert_eq!(uuid_text(&[0xff; 16]), "_____________________w");
    }
}
