//! Hostile input: every malformed length is an error, never a panic or a large allocation.

use bytes::{BufMut, Bytes, BytesMut};
use freshet_protocol::codec::{read_string, read_uvarint, read_uvarlong};
use freshet_protocol::frame::{decode_frame, FRAME_BYTES_MAX_DEFAULT};
use freshet_protocol::messages::{MetadataRequest, ProduceRequest};
use freshet_protocol::wire::decode_request;
use freshet_protocol::{Decode, DecodeError};

/// A 12-byte frame whose array header claims i32::MAX elements. The count is compared with the
/// 8 bytes that remain before anything is reserved, so this is an error, not a 2^31-element
/// allocation (which would abort the process).
#[test]
fn array_of_i32_max_elements_in_12_bytes_is_an_error() {
    let mut wire = BytesMut::new();
    wire.put_i32(12); // frame size
    wire.put_i32(i32::MAX); // MetadataRequest v1: topics array count
    wire.put_slice(&[0; 8]);
    let mut frame = decode_frame(&mut wire, FRAME_BYTES_MAX_DEFAULT)
        .unwrap()
        .unwrap();
    assert_eq!(frame.len(), 12);
    let err = MetadataRequest::decode(&mut frame, 1).unwrap_err();
    assert_eq!(
        err,
        DecodeError::ArrayTooLong {
            count: i32::MAX as usize,
            remaining_bytes: 8
        }
    );
}

#[test]
fn compact_array_of_u32_max_elements_is_an_error() {
    // MetadataRequest v12 (flexible): topics compact array, length + 1 = u32::MAX.
    let mut body = vec![0xff, 0xff, 0xff, 0xff, 0x0f];
    body.extend([0; 7]);
    let err = MetadataRequest::decode(&mut Bytes::from(body), 12).unwrap_err();
    assert!(matches!(err, DecodeError::ArrayTooLong { .. }), "{err:?}");
}

#[test]
fn a_whole_request_with_a_huge_array_is_an_error() {
    // Header v1 for Metadata v4, then a topics count of i32::MAX with nothing after it.
    let mut frame = BytesMut::new();
    frame.put_i16(3);
    frame.put_i16(4);
    frame.put_i32(1);
    frame.put_i16(-1); // null client id
    frame.put_i32(i32::MAX);
    let err = decode_request(frame.freeze()).unwrap_err();
    assert!(matches!(err, DecodeError::ArrayTooLong { .. }), "{err:?}");
}

#[test]
fn negative_lengths_other_than_null_are_errors() {
    // ProduceRequest v3: transactional id (nullable string) of length -2.
    let mut body = BytesMut::new();
    body.put_i16(-2);
    body.put_slice(&[0; 10]);
    assert_eq!(
        ProduceRequest::decode(&mut body.freeze(), 3).unwrap_err(),
        DecodeError::InvalidLength(-2)
    );
    // Topic data array of length -5.
    let mut body = BytesMut::new();
    body.put_i16(-1);
    body.put_i16(1);
    body.put_i32(1000);
    body.put_i32(-5);
    assert_eq!(
        ProduceRequest::decode(&mut body.freeze(), 3).unwrap_err(),
        DecodeError::InvalidLength(-5)
    );
}

#[test]
fn null_where_not_nullable_is_an_error() {
    // ProduceRequest v3: topic data array null (-1) but arrays here are not nullable.
    let mut body = BytesMut::new();
    body.put_i16(-1);
    body.put_i16(1);
    body.put_i32(1000);
    body.put_i32(-1);
    assert_eq!(
        ProduceRequest::decode(&mut body.freeze(), 3).unwrap_err(),
        DecodeError::UnexpectedNull
    );
}

#[test]
fn string_longer_than_the_input_is_an_error() {
    let mut buf = Bytes::from_static(&[0x00, 0x10, b'a', b'b']);
    assert!(matches!(
        read_string(&mut buf, false),
        Err(DecodeError::Truncated {
            needed_bytes: 16,
            remaining_bytes: 2
        })
    ));
    let mut compact = Bytes::from_static(&[0x7f, b'a']);
    assert!(matches!(
        read_string(&mut compact, true),
        Err(DecodeError::Truncated { .. })
    ));
}

#[test]
fn invalid_utf8_is_an_error() {
    let mut buf = Bytes::from_static(&[0x00, 0x02, 0xc3, 0x28]);
    assert_eq!(read_string(&mut buf, false), Err(DecodeError::InvalidUtf8));
}

#[test]
fn overlong_varints_are_errors() {
    let six = Bytes::from_static(&[0x80, 0x80, 0x80, 0x80, 0x80, 0x01]);
    assert_eq!(
        read_uvarint(&mut six.clone()),
        Err(DecodeError::VarintTooLong)
    );
    // Five bytes whose last carries more than the 4 bits left of a u32.
    let overflow = Bytes::from_static(&[0xff, 0xff, 0xff, 0xff, 0x1f]);
    assert_eq!(
        read_uvarint(&mut overflow.clone()),
        Err(DecodeError::VarintTooLong)
    );
    assert_eq!(
        read_uvarint(&mut Bytes::from_static(&[0xff, 0xff, 0xff, 0xff, 0x0f])),
        Ok(u32::MAX)
    );
    let eleven = Bytes::from(vec![0x80u8; 11]);
    assert_eq!(
        read_uvarlong(&mut eleven.clone()),
        Err(DecodeError::VarintTooLong)
    );
    // A varint cut short is truncated input.
    assert!(matches!(
        read_uvarint(&mut Bytes::from_static(&[0x80])),
        Err(DecodeError::Truncated { .. })
    ));
}

#[test]
fn tagged_field_with_wrong_declared_size_is_an_error() {
    // ApiVersionsResponse v3: error code, empty api keys, throttle, then one tagged field
    // (tag 1 = finalized features epoch, an int64) declared as 9 bytes.
    let mut body = BytesMut::new();
    body.put_i16(0);
    body.put_u8(1); // compact array, 0 elements
    body.put_i32(0);
    body.put_u8(1); // one tagged field
    body.put_u8(1); // tag 1
    body.put_u8(9); // 9 bytes
    body.put_slice(&[0; 9]);
    let err =
        freshet_protocol::messages::ApiVersionsResponse::decode(&mut body.freeze(), 3).unwrap_err();
    assert!(
        matches!(err, DecodeError::TaggedFieldSize { tag: 1, .. }),
        "{err:?}"
    );
}

#[test]
fn bytes_fields_are_slices_of_the_input() {
    // ProduceRequest v3 with one partition carrying 5 bytes of records: the decoded records
    // point into the input buffer (zero copy).
    let mut body = BytesMut::new();
    body.put_i16(-1);
    body.put_i16(1);
    body.put_i32(1000);
    body.put_i32(1);
    body.put_i16(1);
    body.put_u8(b't');
    body.put_i32(1);
    body.put_i32(0);
    body.put_i32(5);
    body.put_slice(b"abcde");
    let input = body.freeze();
    let request = ProduceRequest::decode(&mut input.clone(), 3).unwrap();
    let records = request.topic_data[0].partition_data[0]
        .records
        .clone()
        .unwrap();
    assert_eq!(&records[..], b"abcde");
    let input_range = input.as_ptr_range();
    assert!(
        input_range.contains(&records.as_ptr()),
        "records were copied"
    );
}
