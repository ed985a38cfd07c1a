//! The admin client: topics (create, delete, list, describe, add partitions) and topic
//! configs (describe, incremental alter).
//!
//! KRaft brokers forward controller requests themselves, so every request goes to any
//! broker; NOT_CONTROLLER and other retriable answers are retried until the timeout.

use std::future::Future;
use std::sync::Arc;
use std::time::{Duration, Instant};

use freshet_protocol::messages::create_partitions_request::CreatePartitionsTopic;
use freshet_protocol::messages::create_topics_request::{CreatableTopic, CreatableTopicConfig};
use freshet_protocol::messages::delete_topics_request::DeleteTopicState;
use freshet_protocol::messages::describe_configs_request::DescribeConfigsResource;
use freshet_protocol::messages::incremental_alter_configs_request::{
    AlterConfigsResource, AlterableConfig,
};
use freshet_protocol::messages::{
    CreatePartitionsRequest, CreatePartitionsResponse, CreateTopicsRequest, CreateTopicsResponse,
    DeleteTopicsRequest, DeleteTopicsResponse, DescribeConfigsRequest, DescribeConfigsResponse,
    IncrementalAlterConfigsRequest, IncrementalAlterConfigsResponse,
};
use freshet_protocol::{ApiKey, Uuid};

use crate::cluster::{BrokerInfo, ClientConfig, Cluster, PartitionInfo};
use crate::error::{Error, KafkaCode, KafkaError};

/// Consumer-group administration (`impl Admin` for groups and their offsets).
pub mod groups;

/// Kafka's `ConfigResource.Type.TOPIC`.
const RESOURCE_TYPE_TOPIC: i8 = 2;

/// A topic to create.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct NewTopic {
    pub name: String,
    /// -1: the broker's `num.partitions`.
    pub num_partitions: i32,
    /// -1: the broker's `default.replication.factor`.
    pub replication_factor: i16,
    pub configs: Vec<(String, String)>,
}

impl NewTopic {
    pub fn new(name: impl Into<String>, num_partitions: i32, replication_factor: i16) -> NewTopic {
        NewTopic {
            name: name.into(),
            num_partitions,
            replication_factor,
            configs: Vec::new(),
        }
    }

    pub fn with_config(mut self, name: impl Into<String>, value: impl Into<String>) -> NewTopic {
        self.configs.push((name.into(), value.into()));
        self
    }
}

/// A topic as metadata describes it.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct TopicDescription {
    pub name: String,
    pub topic_id: Uuid,
    pub is_internal: bool,
    pub partitions: Vec<PartitionInfo>,
}

/// One config of a topic.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct ConfigEntry {
    pub name: String,
    /// `None` for sensitive values.
    pub value: Option<String>,
    pub read_only: bool,
    pub is_sensitive: bool,
    /// Kafka's `ConfigSource` id: 1 topic, 4 static broker, 5 default...
    pub source: i8,
}

impl ConfigEntry {
    /// Whether the value was set on the topic itself rather than inherited.
    pub fn is_topic_override(&self) -> bool {
        // DYNAMIC_TOPIC_CONFIG.
        self.source == 1
    }
}

/// An incremental config change (IncrementalAlterConfigs operations).
#[derive(Debug, Clone, PartialEq, Eq)]
pub enum AlterConfigOp {
    Set(String, String),
    /// Back to the inherited value.
    Delete(String),
    Append(String, String),
    Subtract(String, String),
}

impl AlterConfigOp {
    fn to_wire(&self) -> AlterableConfig {
        let (name, operation, value) = match self {
            AlterConfigOp::Set(name, value) => (name, 0, Some(value.clone())),
            AlterConfigOp::Delete(name) => (name, 1, None),
            AlterConfigOp::Append(name, value) => (name, 2, Some(value.clone())),
            AlterConfigOp::Subtract(name, value) => (name, 3, Some(value.clone())),
        };
        AlterableConfig {
            name: name.clone(),
            config_operation: operation,
            value,
            ..Default::default()
        }
    }
}

/// The admin client.
#[derive(Debug)]
pub struct Admin {
    cluster: Arc<Cluster>,
    timeout_ms: u64,
}

impl Admin {
    pub fn new(config: ClientConfig) -> Result<Admin, Error> {
        let timeout_ms = config.connection.request_timeout_ms;
        Ok(Admin {
            cluster: Arc::new(Cluster::new(config)?),
            timeout_ms,
        })
    }

    fn timeout_i32(&self) -> i32 {
        i32::try_from(self.timeout_ms).unwrap_or(i32::MAX)
    }

    /// Runs `attempt` until it succeeds, fails for good, or the timeout passes.
    async fn retrying<T, F, Fut>(&self, mut attempt: F) -> Result<T, Error>
    where
        F: FnMut() -> Fut,
        Fut: Future<Output = Result<T, Error>>,
    {
        let deadline = Instant::now() + Duration::from_millis(self.timeout_ms);
        loop {
            match attempt().await {
                Err(error) if error.is_retriable() && Instant::now() < deadline => {
                    tokio::time::sleep(Duration::from_millis(
                        self.cluster.config().retry_backoff_ms,
                    ))
                    .await;
                }
                result => return result,
            }
        }
    }

    /// Creates topics; the first topic that fails gives the error.
    pub async fn create_topics(
        &self,
        topics: &[NewTopic],
        validate_only: bool,
    ) -> Result<(), Error> {
        let request = CreateTopicsRequest {
            topics: topics.iter().map(creatable_topic).collect(),
            timeout_ms: self.timeout_i32(),
            validate_only,
            ..Default::default()
        };
        let response: CreateTopicsResponse = self.call(ApiKey::CreateTopics, &request).await?;
        for topic in &response.topics {
            topic_result(
                &topic.name,
                topic.error_code,
                topic.error_message.as_deref(),
            )?;
        }
        Ok(())
    }

    /// Deletes topics by name.
    pub async fn delete_topics(&self, names: &[String]) -> Result<(), Error> {
        let request = DeleteTopicsRequest {
            topics: names
                .iter()
                .map(|name| DeleteTopicState {
                    name: Some(name.clone()),
                    ..Default::default()
                })
                .collect(),
            topic_names: names.to_vec(),
            timeout_ms: self.timeout_i32(),
            ..Default::default()
        };
        let response: DeleteTopicsResponse = self.call(ApiKey::DeleteTopics, &request).await?;
        for topic in &response.responses {
            let name = topic.name.as_deref().unwrap_or("?");
            topic_result(name, topic.error_code, topic.error_message.as_deref())?;
        }
        Ok(())
    }

    /// Grows a topic to `total_count` partitions.
    pub async fn create_partitions(&self, topic: &str, total_count: i32) -> Result<(), Error> {
        let request = CreatePartitionsRequest {
            topics: vec![CreatePartitionsTopic {
                name: topic.to_owned(),
                count: total_count,
                assignments: None,
                ..Default::default()
            }],
            timeout_ms: self.timeout_i32(),
            validate_only: false,
            ..Default::default()
        };
        let response: CreatePartitionsResponse =
            self.call(ApiKey::CreatePartitions, &request).await?;
        for result in &response.results {
            topic_result(
                &result.name,
                result.error_code,
                result.error_message.as_deref(),
            )?;
        }
        Ok(())
    }

    /// Names of every topic, sorted; internal topics (`__consumer_offsets`...) only on
    /// request.
    pub async fn list_topics(&self, include_internal: bool) -> Result<Vec<String>, Error> {
        let response = self
            .retrying(|| self.cluster.refresh_metadata(None, false))
            .await?;
        let mut names: Vec<String> = response
            .topics
            .iter()
            .filter(|topic| include_internal || !topic.is_internal)
            .filter_map(|topic| topic.name.clone())
            .collect();
        names.sort();
        Ok(names)
    }

    /// Partitions, leaders and replicas of the topics (every topic when `names` is empty).
    pub async fn describe_topics(&self, names: &[String]) -> Result<Vec<TopicDescription>, Error> {
        let filter = (!names.is_empty()).then_some(names);
        let response = self
            .retrying(|| self.cluster.refresh_metadata(filter, false))
            .await?;
        let mut descriptions = Vec::new();
        for topic in &response.topics {
            let name = topic.name.clone().unwrap_or_default();
            topic_result(&name, topic.error_code, None)?;
            let Some(info) = self.cluster.topic(&name) else {
                continue;
            };
            descriptions.push(TopicDescription {
                name,
                topic_id: info.topic_id,
                is_internal: info.is_internal,
                partitions: info.partitions,
            });
        }
        descriptions.sort_by(|a, b| a.name.cmp(&b.name));
        Ok(descriptions)
    }

    /// The brokers of the cluster and its id.
    pub async fn describe_cluster(&self) -> Result<(Option<String>, Vec<BrokerInfo>), Error> {
        self.retrying(|| self.cluster.refresh_metadata(Some(&[]), false))
            .await?;
        Ok((self.cluster.cluster_id(), self.cluster.brokers()))
    }

    /// Every config of a topic with its value and source.
    pub async fn describe_configs(&self, topic: &str) -> Result<Vec<ConfigEntry>, Error> {
        let request = DescribeConfigsRequest {
            resources: vec![DescribeConfigsResource {
                resource_type: RESOURCE_TYPE_TOPIC,
                resource_name: topic.to_owned(),
                configuration_keys: None,
                ..Default::default()
            }],
            include_synonyms: false,
            include_documentation: false,
            ..Default::default()
        };
        let response: DescribeConfigsResponse =
            self.call(ApiKey::DescribeConfigs, &request).await?;
        let result = response
            .results
            .into_iter()
            .find(|r| r.resource_name == topic)
            .ok_or_else(|| Error::Protocol {
                addr: "broker".into(),
                reason: format!("DescribeConfigs response omitted topic {topic}"),
            })?;
        topic_result(topic, result.error_code, result.error_message.as_deref())?;
        let mut entries: Vec<ConfigEntry> = result
            .configs
            .into_iter()
            .map(|config| ConfigEntry {
                name: config.name,
                value: config.value,
                read_only: config.read_only,
                is_sensitive: config.is_sensitive,
                // v0 has no source, only is_default.
                source: if config.config_source >= 0 {
                    config.config_source
                } else if config.is_default {
                    5
                } else {
                    1
                },
            })
            .collect();
        entries.sort_by(|a, b| a.name.cmp(&b.name));
        Ok(entries)
    }

    /// Changes topic configs one by one (IncrementalAlterConfigs).
    pub async fn alter_configs(&self, topic: &str, ops: &[AlterConfigOp]) -> Result<(), Error> {
        let request = IncrementalAlterConfigsRequest {
            resources: vec![AlterConfigsResource {
                resource_type: RESOURCE_TYPE_TOPIC,
                resource_name: topic.to_owned(),
                configs: ops.iter().map(AlterConfigOp::to_wire).collect(),
                ..Default::default()
            }],
            validate_only: false,
            ..Default::default()
        };
        let response: IncrementalAlterConfigsResponse =
            self.call(ApiKey::IncrementalAlterConfigs, &request).await?;
        for result in &response.responses {
            topic_result(
                &result.resource_name,
                result.error_code,
                result.error_message.as_deref(),
            )?;
        }
        Ok(())
    }

    /// Waits until metadata shows `topic` with a leader for every partition.
    pub async fn wait_for_topic(&self, topic: &str) -> Result<TopicDescription, Error> {
        let info = self
            .cluster
            .wait_for_topic(topic, false, self.timeout_ms)
            .await?;
        Ok(TopicDescription {
            name: info.name,
            topic_id: info.topic_id,
            is_internal: info.is_internal,
            partitions: info.partitions,
        })
    }

    /// Sends a request to any broker at the negotiated version, retrying transport
    /// failures. Error codes inside the response are the caller's to read.
    async fn call<R, T>(&self, api: ApiKey, request: &R) -> Result<T, Error>
    where
        R: freshet_protocol::Encode,
        T: freshet_protocol::Decode,
    {
        self.retrying(|| async {
            let connection = self.cluster.any_connection().await?;
            let (_, response) = connection.call(api, request).await?;
            Ok(response)
        })
        .await
    }
}

fn creatable_topic(topic: &NewTopic) -> CreatableTopic {
    CreatableTopic {
        name: topic.name.clone(),
        num_partitions: topic.num_partitions,
        replication_factor: topic.replication_factor,
        assignments: Vec::new(),
        configs: topic
            .configs
            .iter()
            .map(|(name, value)| CreatableTopicConfig {
                name: name.clone(),
                value: Some(value.clone()),
                ..Default::default()
            })
            .collect(),
        ..Default::default()
    }
}

fn topic_result(topic: &str, code: i16, message: Option<&str>) -> Result<(), Error> {
    if code == 0 {
        return Ok(());
    }
    Err(Error::Resource {
        resource: format!("topic {topic}"),
        error: KafkaError {
            code: KafkaCode(code),
            message: message.map(str::to_owned),
        },
    })
}
