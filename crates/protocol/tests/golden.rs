//! Golden bytes: the first requests real clients send, captured from the clients themselves
//! (tests/golden/capture.py; see tests/golden/README.md) and rebuilt here by hand from the
//! spec format, byte by byte. Decoding must give the expected fields and re-encoding must give
//! the captured bytes back exactly.

use bytes::{Bytes, BytesMut};
use freshet_protocol::frame::FRAME_BYTES_MAX_DEFAULT;
use freshet_protocol::messages::{ApiVersionsRequest, MetadataRequest};
use freshet_protocol::wire::{decode_request, encode_request};
use freshet_protocol::{Request, RequestHeader, Uuid};

fn captured(name: &str) -> Bytes {
    let path = format!("{}/tests/golden/{name}", env!("CARGO_MANIFEST_DIR"));
    Bytes::from(std::fs::read(&path).unwrap_or_else(|e| panic!("{path}: {e}")))
}

/// A non-compact string: int16 length, then the bytes (request header client id).
fn int16_string(out: &mut Vec<u8>, s: &str) {
    out.extend((s.len() as i16).to_be_bytes());
    out.extend(s.as_bytes());
}

/// A compact string: unsigned varint of length + 1 (all lengths here fit one byte).
fn compact_string(out: &mut Vec<u8>, s: &str) {
    assert!(s.len() < 127);
    out.push(s.len() as u8 + 1);
    out.extend(s.as_bytes());
}

/// Request header v2: api key, api version, correlation id (big-endian), client id as a
/// NON-compact nullable string (the field's flexibleVersions is "none"), then an empty
/// tagged-field section.
fn header_v2(out: &mut Vec<u8>, key: i16, version: i16, correlation_id: i32, client_id: &str) {
    out.extend(key.to_be_bytes());
    out.extend(version.to_be_bytes());
    out.extend(correlation_id.to_be_bytes());
    int16_string(out, client_id);
    out.push(0); // no tagged fields
}

/// ApiVersions v3+ body: client software name and version as compact strings, then an empty
/// tagged-field section.
fn api_versions_body(out: &mut Vec<u8>, name: &str, version: &str) {
    compact_string(out, name);
    compact_string(out, version);
    out.push(0);
}

/// Decodes, checks the header, and checks that re-encoding gives the same bytes.
fn decode_and_reencode(frame: Bytes) -> (RequestHeader, Request) {
    let (header, request) = decode_request(frame.clone()).expect("decode");
    let mut again = BytesMut::new();
    encode_request(&header, &request, &mut again, FRAME_BYTES_MAX_DEFAULT).expect("encode");
    assert_eq!(&again[4..], &frame[..], "re-encoding changed the bytes");
    (header, request)
}

fn api_versions(name: &str, version: &str) -> Request {
    Request::ApiVersions(ApiVersionsRequest {
        client_software_name: name.into(),
        client_software_version: version.into(),
        ..ApiVersionsRequest::default()
    })
}

#[test]
fn librdkafka_2_0_2_api_versions_v3() {
    // kcat 1.7.1 from Debian, linked with librdkafka 2.0.2; librdkafka's first request.
    let mut expected = Vec::new();
    header_v2(&mut expected, 18, 3, 1, "rdkafka"); // correlation ids start at 1
    api_versions_body(&mut expected, "librdkafka", "2.0.2");
    let frame = captured("kcat-librdkafka-2.0.2-api-versions-v3.bin");
    assert_eq!(&frame[..], &expected[..]);
    assert_eq!(frame.len(), 36);
    let (header, request) = decode_and_reencode(frame);
    assert_eq!(header.request_api_key, 18);
    assert_eq!(header.request_api_version, 3);
    assert_eq!(header.correlation_id, 1);
    assert_eq!(header.client_id.as_deref(), Some("rdkafka"));
    assert_eq!(request, api_versions("librdkafka", "2.0.2"));
}

#[test]
fn librdkafka_2_16_api_versions_v3() {
    // confluent-kafka-python 2.16.1 sets its own software name on top of librdkafka 2.16.0.
    let mut expected = Vec::new();
    header_v2(&mut expected, 18, 3, 1, "rdkafka");
    api_versions_body(
        &mut expected,
        "confluent-kafka-python",
        "2.16.1-rdkafka-2.16.0",
    );
    let frame = captured("confluent-kafka-python-2.16.1-librdkafka-2.16.0-api-versions-v3.bin");
    assert_eq!(&frame[..], &expected[..]);
    let (_, request) = decode_and_reencode(frame);
    assert_eq!(
        request,
        api_versions("confluent-kafka-python", "2.16.1-rdkafka-2.16.0")
    );
}

#[test]
fn java_client_4_3_1_api_versions_v4() {
    let mut expected = Vec::new();
    header_v2(&mut expected, 18, 4, 0, "producer-1"); // Java starts at correlation id 0
    api_versions_body(&mut expected, "apache-kafka-java", "4.3.1");
    let frame = captured("java-kafka-clients-4.3.1-api-versions-v4.bin");
    assert_eq!(&frame[..], &expected[..]);
    assert_eq!(frame.len(), 46);
    let (header, request) = decode_and_reencode(frame);
    assert_eq!(header.correlation_id, 0);
    assert_eq!(header.client_id.as_deref(), Some("producer-1"));
    assert_eq!(request, api_versions("apache-kafka-java", "4.3.1"));
}

#[test]
fn java_client_4_3_1_metadata_v12() {
    // KafkaProducer.partitionsFor("golden") after the ApiVersions exchange.
    let mut expected = Vec::new();
    header_v2(&mut expected, 3, 12, 1, "producer-1");
    expected.push(2); // topics: compact array of 1 element (1 + 1)
    expected.extend([0u8; 16]); // topic_id: the zero UUID (asking by name)
    compact_string(&mut expected, "golden"); // name: compact nullable string
    expected.push(0); // topic's tagged fields
    expected.push(1); // allow_auto_topic_creation = true
    expected.push(0); // include_topic_authorized_operations = false
    expected.push(0); // tagged fields
    let frame = captured("java-kafka-clients-4.3.1-metadata-v12.bin");
    assert_eq!(&frame[..], &expected[..]);
    let (header, request) = decode_and_reencode(frame);
    assert_eq!(header.correlation_id, 1);
    let Request::Metadata(MetadataRequest {
        topics: Some(topics),
        allow_auto_topic_creation,
        include_topic_authorized_operations,
        ..
    }) = request
    else {
        panic!("not a metadata request with topics: {request:?}");
    };
    assert_eq!(topics.len(), 1);
    assert_eq!(topics[0].name.as_deref(), Some("golden"));
    assert_eq!(topics[0].topic_id, Uuid::ZERO);
    assert!(allow_auto_topic_creation);
    assert!(!include_topic_authorized_operations);
}

#[test]
fn kafka_python_3_0_12_api_versions_v4_and_metadata_v12() {
    let mut expected = Vec::new();
    header_v2(&mut expected, 18, 4, 1, "kafka-python-3.0.12");
    api_versions_body(&mut expected, "kafka-python", "3.0.12");
    let frame = captured("kafka-python-3.0.12-api-versions-v4.bin");
    assert_eq!(&frame[..], &expected[..]);
    decode_and_reencode(frame);

    let mut expected = Vec::new();
    header_v2(&mut expected, 3, 12, 2, "kafka-python-3.0.12");
    expected.push(1); // topics: compact array of 0 elements (an empty list, not null)
    expected.push(1); // allow_auto_topic_creation = true
    expected.push(0); // include_topic_authorized_operations = false
    expected.push(0); // tagged fields
    let frame = captured("kafka-python-3.0.12-metadata-v12.bin");
    assert_eq!(&frame[..], &expected[..]);
    let (_, request) = decode_and_reencode(frame);
    let Request::Metadata(m) = request else {
        panic!("not metadata");
    };
    assert_eq!(m.topics, Some(Vec::new()));
}
