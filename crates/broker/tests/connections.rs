//! Connection rules, as Kafka's socket server applies them: requests are answered in the
//! order they arrive whatever order their handlers finish in; a frame over the size limit, an
//! unknown API key, a header that does not parse or an unsupported version of any API but
//! ApiVersions closes the connection, after the answers to the requests before it.

#[macro_use]
mod support;

use freshet_protocol::messages::ApiVersionsRequest;
use freshet_protocol::{ApiKey, Response};
use std::time::{Duration, Instant};
use support::{create_topic, TestBroker};

const UNSUPPORTED_VERSION: i16 = 35;

/// A frame: the 4-byte size, then `body`.
fn frame(body: &[u8]) -> Vec<u8> {
    let mut out = (body.len() as i32).to_be_bytes().to_vec();
    out.extend_from_slice(body);
    out
}

/// Sends a good ApiVersions, then `bad` bytes, and checks that the first is answered and the
/// connection then closes, while a second connection is unaffected.
async fn assert_closes_after_answering(broker: &TestBroker, bad: &[u8], what: &str) {
    let mut c = broker.client().await;
    let good = c.send_only(3, ApiVersionsRequest::default().into()).await;
    c.send_raw(bad).await;
    let (answered, response) = c.receive(ApiKey::ApiVersions, 3).await;
    assert_eq!(answered, good, "{what}: the request before is answered");
    assert!(matches!(response, Response::ApiVersions(r) if r.error_code == 0));
    assert!(c.is_closed().await, "{what}: the connection closes");
    let mut other = broker.client().await;
    let r = call!(other, 3, ApiVersions, ApiVersionsRequest::default());
    assert_eq!(r.error_code, 0, "{what}: other connections are unaffected");
}

#[tokio::test]
async fn bad_frames_close_only_their_connection() {
    let broker = TestBroker::start().await;
    // API key 9999, version 0, correlation id 5, null client id.
    let unknown_key = frame(&[0x27, 0x0f, 0, 0, 0, 0, 0, 5, 0xff, 0xff]);
    assert_closes_after_answering(&broker, &unknown_key, "unknown api key").await;
    // Metadata v99: a version no broker serves.
    let unknown_version = frame(&[0, 3, 0, 99, 0, 0, 0, 5, 0xff, 0xff]);
    assert_closes_after_answering(&broker, &unknown_version, "unsupported version").await;
    // ApiVersions v3 (header v2) whose client id claims 100 bytes of a 12-byte frame.
    let bad_header = frame(&[0, 18, 0, 3, 0, 0, 0, 5, 0, 100, b'x', 0]);
    assert_closes_after_answering(&broker, &bad_header, "bad header").await;
    // A declared size over socket.request.max.bytes (100 MiB).
    let oversize = (200 * 1024 * 1024i32).to_be_bytes();
    assert_closes_after_answering(&broker, &oversize, "oversize frame").await;
    // Three bytes: too short for any request header.
    let too_short = frame(&[0, 18, 0]);
    assert_closes_after_answering(&broker, &too_short, "short frame").await;
}

/// KIP-511: an ApiVersions newer than the broker's is answered at v0 with UNSUPPORTED_VERSION
/// and ApiVersions' own range only, as Kafka does, and the connection stays open.
#[tokio::test]
async fn a_newer_api_versions_is_answered_with_our_range() {
    let broker = TestBroker::start().await;
    let mut c = broker.client().await;
    // ApiVersions v99, header v2, correlation id 77, client id "x", no tags, unknown body.
    c.send_raw(&frame(&[
        0, 18, 0, 99, 0, 0, 0, 77, 0, 1, b'x', 0, 0xde, 0xad,
    ]))
    .await;
    let (answered, response) = c.receive(ApiKey::ApiVersions, 0).await;
    assert_eq!(answered, 77);
    let Response::ApiVersions(r) = response else {
        panic!("not ApiVersions");
    };
    assert_eq!(r.error_code, UNSUPPORTED_VERSION);
    let listed: Vec<_> = r
        .api_keys
        .iter()
        .map(|k| (k.api_key, k.min_version, k.max_version))
        .collect();
    assert_eq!(listed, vec![(18, 0, 4)]);
    let r = call!(c, 3, ApiVersions, ApiVersionsRequest::default());
    assert_eq!(r.error_code, 0);
    assert!(r.api_keys.len() > 20, "the full list at a shared version");
}

/// A long-polling Fetch and an ApiVersions pipelined on one connection: the ApiVersions,
/// ready at once, is held back until the Fetch before it is answered.
#[tokio::test]
async fn pipelined_responses_keep_request_order() {
    let broker = TestBroker::start().await;
    let mut c = broker.client().await;
    create_topic(&mut c, "quiet", 1, &[]).await;
    let fetch = support::fetch_one("quiet", 0, 0, 1_500);
    let started = Instant::now();
    let first = c.send_only(12, fetch.into()).await;
    let second = c.send_only(3, ApiVersionsRequest::default().into()).await;
    let (answered, response) = c.receive(ApiKey::Fetch, 12).await;
    assert_eq!(answered, first, "the fetch is answered first");
    assert!(matches!(response, Response::Fetch(_)));
    assert!(
        started.elapsed() >= Duration::from_millis(1_400),
        "the fetch waited for its max_wait_ms"
    );
    let (answered, _) = c.receive(ApiKey::ApiVersions, 3).await;
    assert_eq!(answered, second);
}
