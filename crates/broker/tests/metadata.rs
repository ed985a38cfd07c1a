//! Metadata over real TCP against an in-process broker: topic auto-creation as the request's
//! `allow_auto_topic_creation` (v4+) and the broker's `auto_create_topics_enable` decide.

#[macro_use]
mod support;

use freshet_protocol::messages::metadata_request::MetadataRequestTopic;
use freshet_protocol::messages::metadata_response::MetadataResponseTopic;
use freshet_protocol::messages::{MetadataRequest, MetadataResponse};
use support::{batch, produce, Client, TestBroker};

const NONE: i16 = 0;
const UNKNOWN_TOPIC_OR_PARTITION: i16 = 3;
const LEADER_NOT_AVAILABLE: i16 = 5;
const INVALID_TOPIC_EXCEPTION: i16 = 17;

async fn metadata(c: &mut Client, version: i16, topics: &[&str], allow: bool) -> MetadataResponse {
    let request = MetadataRequest {
        topics: Some(
            topics
                .iter()
                .map(|name| MetadataRequestTopic {
                    name: Some(name.to_string()),
                    ..Default::default()
                })
                .collect(),
        ),
        // Not on the wire before v4.
        allow_auto_topic_creation: allow,
        ..Default::default()
    };
    call!(c, version, Metadata, request)
}

/// The one topic a Metadata answer for one topic holds.
async fn one_topic(
    c: &mut Client,
    version: i16,
    topic: &str,
    allow: bool,
) -> MetadataResponseTopic {
    let mut response = metadata(c, version, &[topic], allow).await;
    assert_eq!(response.topics.len(), 1, "{response:?}");
    let answer = response.topics.remove(0);
    assert_eq!(answer.name.as_deref(), Some(topic));
    answer
}

/// Every topic the broker knows (Metadata v12 with a null topic list).
async fn all_topics(c: &mut Client) -> Vec<String> {
    let request = MetadataRequest {
        topics: None,
        allow_auto_topic_creation: false,
        ..Default::default()
    };
    let response = call!(c, 12, Metadata, request);
    response.topics.into_iter().filter_map(|t| t.name).collect()
}

/// The answer to the request that creates a topic: created and described at once (NONE),
/// or LEADER_NOT_AVAILABLE while the creation settles, as Kafka answers.
fn assert_created_answer(answer: &MetadataResponseTopic, partitions: usize) {
    match answer.error_code {
        NONE => assert_eq!(answer.partitions.len(), partitions, "{answer:?}"),
        LEADER_NOT_AVAILABLE => {}
        other => panic!("auto-creation answered error {other}: {answer:?}"),
    }
}

/// A created topic, as a later Metadata that creates nothing describes it: every partition
/// led by this broker (node 1).
async fn assert_exists(c: &mut Client, topic: &str, partitions: usize) {
    let answer = one_topic(c, 12, topic, false).await;
    assert_eq!(answer.error_code, NONE, "{topic} exists: {answer:?}");
    assert_eq!(answer.partitions.len(), partitions);
    for (i, p) in answer.partitions.iter().enumerate() {
        assert_eq!(p.partition_index, i as i32);
        assert_eq!((p.error_code, p.leader_id), (NONE, 1), "{p:?}");
        assert_eq!(p.replica_nodes, vec![1]);
    }
    assert!(all_topics(c).await.contains(&topic.to_string()));
}

/// A topic that must not exist: unknown to Metadata (without creating it) and absent from
/// the full topic list.
async fn assert_absent(c: &mut Client, topic: &str) {
    let answer = one_topic(c, 12, topic, false).await;
    assert_eq!(answer.error_code, UNKNOWN_TOPIC_OR_PARTITION, "{answer:?}");
    assert!(answer.partitions.is_empty());
    assert!(
        !all_topics(c).await.contains(&topic.to_string()),
        "{topic} was created"
    );
}

/// allow_auto_topic_creation=true creates an unknown topic with the broker's num_partitions;
/// it is then served.
#[tokio::test]
async fn metadata_creates_an_unknown_topic_when_allowed() {
    let broker = TestBroker::start_with(|config| config.num_partitions = 3).await;
    let mut c = broker.client().await;
    assert_absent(&mut c, "auto").await;

    let first = one_topic(&mut c, 12, "auto", true).await;
    assert_created_answer(&first, 3);
    assert_exists(&mut c, "auto", 3).await;

    // Asking again with creation allowed neither fails nor makes a second topic.
    let again = one_topic(&mut c, 12, "auto", true).await;
    assert_eq!(again.error_code, NONE);
    assert_eq!(
        again.topic_id,
        one_topic(&mut c, 12, "auto", false).await.topic_id
    );
    assert_eq!(
        all_topics(&mut c)
            .await
            .iter()
            .filter(|t| *t == "auto")
            .count(),
        1
    );

    // The topic takes records.
    support::wait_served(&mut c, "auto", 3).await;
    let answer = produce(&mut c, "auto", 2, batch(&["x"])).await;
    assert_eq!(answer.error_code, NONE);

    // An invalid name is refused, not created.
    let bad = one_topic(&mut c, 12, "bad name!", true).await;
    assert_eq!(bad.error_code, INVALID_TOPIC_EXCEPTION, "{bad:?}");
    assert!(!all_topics(&mut c).await.contains(&"bad name!".to_string()));
}

/// allow_auto_topic_creation=false: UNKNOWN_TOPIC_OR_PARTITION, and nothing is created.
#[tokio::test]
async fn metadata_does_not_create_when_the_request_forbids_it() {
    let broker = TestBroker::start().await;
    let mut c = broker.client().await;

    let answer = one_topic(&mut c, 12, "forbidden", false).await;
    assert_eq!(answer.error_code, UNKNOWN_TOPIC_OR_PARTITION, "{answer:?}");
    assert!(answer.partitions.is_empty());
    assert_absent(&mut c, "forbidden").await;

    // v4 is the first version with the flag, and honours it too.
    let answer = one_topic(&mut c, 4, "forbidden", false).await;
    assert_eq!(answer.error_code, UNKNOWN_TOPIC_OR_PARTITION, "{answer:?}");
    assert_absent(&mut c, "forbidden").await;

    // In a request for several topics, only the unknown one is refused.
    support::create_topic(&mut c, "known", 1, &[]).await;
    let response = metadata(&mut c, 12, &["known", "forbidden"], false).await;
    let codes: Vec<(Option<String>, i16)> = response
        .topics
        .iter()
        .map(|t| (t.name.clone(), t.error_code))
        .collect();
    assert_eq!(
        codes,
        vec![
            (Some("known".to_string()), NONE),
            (Some("forbidden".to_string()), UNKNOWN_TOPIC_OR_PARTITION)
        ]
    );
    assert_absent(&mut c, "forbidden").await;
}

/// auto_create_topics_enable=false in the broker's configuration wins over a request that
/// allows creation, at every version.
#[tokio::test]
async fn a_broker_with_auto_creation_disabled_creates_nothing() {
    let broker = TestBroker::start_with(|config| config.auto_create_topics_enable = false).await;
    let mut c = broker.client().await;

    let answer = one_topic(&mut c, 12, "never", true).await;
    assert_eq!(answer.error_code, UNKNOWN_TOPIC_OR_PARTITION, "{answer:?}");
    assert_absent(&mut c, "never").await;

    let answer = one_topic(&mut c, 3, "never", true).await;
    assert_eq!(answer.error_code, UNKNOWN_TOPIC_OR_PARTITION, "{answer:?}");
    assert_absent(&mut c, "never").await;

    // Explicit creation still works.
    support::create_topic(&mut c, "explicit", 2, &[]).await;
    assert_exists(&mut c, "explicit", 2).await;
}

/// Metadata v3 has no allow_auto_topic_creation field: an unknown topic is created whenever
/// the broker allows it, whatever the client's struct says (the field is not sent).
#[tokio::test]
async fn metadata_v3_follows_the_broker_setting() {
    let broker = TestBroker::start().await;
    let mut c = broker.client().await;

    let first = one_topic(&mut c, 3, "old-client", false).await;
    assert_created_answer(&first, 1);
    assert_exists(&mut c, "old-client", 1).await;

    // v0: also creates (the flag did not exist).
    let first = one_topic(&mut c, 0, "older-client", false).await;
    assert_created_answer(&first, 1);
    assert_exists(&mut c, "older-client", 1).await;
}
