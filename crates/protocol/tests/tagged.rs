//! Tagged fields byte by byte: known tags are written only when they differ from their default,
//! unknown tags survive decode and encode, and the section stays in ascending tag order.

use bytes::{BufMut, Bytes, BytesMut};
use freshet_protocol::messages::ApiVersionsResponse;
use freshet_protocol::{Decode, Encode};

/// ApiVersionsResponse v3 with no API keys: error code, empty compact array, throttle time.
fn fixed_part(buf: &mut BytesMut) {
    buf.put_i16(0);
    buf.put_u8(1); // compact array, 0 elements
    buf.put_i32(0);
}

#[test]
fn defaults_are_not_written() {
    let mut buf = BytesMut::new();
    ApiVersionsResponse::default().encode(&mut buf, 3).unwrap();
    let mut expected = BytesMut::new();
    fixed_part(&mut expected);
    expected.put_u8(0); // no tagged fields: epoch -1 and false are the defaults
    assert_eq!(buf, expected);
}

#[test]
fn known_and_unknown_tags_are_written_in_ascending_order() {
    // Tags 0-3 are known in this message; 4 and 9 are not.
    let response = ApiVersionsResponse {
        finalized_features_epoch: 7, // tag 1
        zk_migration_ready: true,    // tag 3
        unknown_tagged_fields: vec![(4, Bytes::from_static(b"u")), (9, Bytes::new())],
        ..ApiVersionsResponse::default()
    };
    let mut buf = BytesMut::new();
    response.encode(&mut buf, 3).unwrap();
    let mut expected = BytesMut::new();
    fixed_part(&mut expected);
    expected.put_u8(4); // four tagged fields
    expected.put_slice(&[1, 8]); // tag 1, 8 bytes
    expected.put_i64(7);
    expected.put_slice(&[3, 1, 1]); // tag 3, 1 byte, true
    expected.put_slice(&[4, 1, b'u']); // unknown tag 4, 1 byte
    expected.put_slice(&[9, 0]); // unknown tag 9, empty
    assert_eq!(buf, expected);
    assert_eq!(response.encoded_len(3), Ok(expected.len()));

    let back = ApiVersionsResponse::decode(&mut buf.freeze(), 3).unwrap();
    assert_eq!(back, response);
}

#[test]
fn tags_are_absent_from_non_flexible_versions() {
    let response = ApiVersionsResponse {
        zk_migration_ready: true,
        unknown_tagged_fields: vec![(9, Bytes::from_static(b"x"))],
        ..ApiVersionsResponse::default()
    };
    let mut buf = BytesMut::new();
    response.encode(&mut buf, 2).unwrap();
    // v2: error code, int32 array length 0, throttle time; nothing else.
    assert_eq!(&buf[..], &[0, 0, 0, 0, 0, 0, 0, 0, 0, 0]);
}
