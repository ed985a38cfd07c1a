//! Whole messages on the wire: header + body inside one frame, for requests and responses.
//!
//! The header version depends on the API key and version, which are the first four bytes of
//! every request header, so a request is decoded in three steps: peek key and version, decode
//! the header in the matching version, decode the body.

use crate::codec::{Decode, DecodeError, Encode, EncodeError};
use crate::frame::{begin_frame, finish_frame, FrameError};
use crate::{ApiKey, Request, RequestHeader, Response, ResponseHeader};
use bytes::{Bytes, BytesMut};

/// The API key and version at the start of a request frame, without consuming anything.
pub fn peek_key_and_version(frame: &[u8]) -> Option<(i16, i16)> {
    let raw = frame.get(..4)?;
    Some((
        i16::from_be_bytes([raw[0], raw[1]]),
        i16::from_be_bytes([raw[2], raw[3]]),
    ))
}

/// Decodes the request header at the start of `frame`. The header version follows the API key
/// and version the header itself carries, also for versions above the highest known one (as in
/// Kafka, flexible versions are open-ended: an ApiVersions v5 request still has header v2, which
/// KIP-511 relies on). For an unknown API key header v1 is assumed: its client id is still
/// readable, so the caller can answer with the right correlation id.
pub fn decode_request_header(frame: &mut Bytes) -> Result<RequestHeader, DecodeError> {
    let (key, version) = peek_key_and_version(frame).ok_or(DecodeError::Truncated {
        needed_bytes: 4,
        remaining_bytes: frame.len(),
    })?;
    let header_version = ApiKey::from_i16(key).map_or(1, |k| k.request_header_version(version));
    RequestHeader::decode(frame, header_version)
}

/// Decodes a whole request frame body: header, then the request it announces. Bytes after the
/// request are ignored, as Kafka does.
pub fn decode_request(mut frame: Bytes) -> Result<(RequestHeader, Request), DecodeError> {
    let header = decode_request_header(&mut frame)?;
    let key = ApiKey::from_i16(header.request_api_key)
        .ok_or(DecodeError::UnknownApiKey(header.request_api_key))?;
    let request = Request::decode(key, header.request_api_version, &mut frame)?;
    Ok((header, request))
}

/// Why a message could not be framed.
#[derive(Debug, thiserror::Error)]
#[non_exhaustive]
pub enum WireEncodeError {
    #[error(transparent)]
    Encode(#[from] EncodeError),
    #[error(transparent)]
    Frame(#[from] FrameError),
}

/// Appends a size-prefixed request frame: the header (its `request_api_key` must match the
/// request) in the header version the API requires, then the body.
pub fn encode_request(
    header: &RequestHeader,
    request: &Request,
    dst: &mut BytesMut,
    frame_bytes_max: usize,
) -> Result<(), WireEncodeError> {
    let key = request.api_key();
    assert_eq!(
        header.request_api_key,
        key.as_i16(),
        "header names another API"
    );
    let version = header.request_api_version;
    let at = begin_frame(dst);
    header.encode(dst, key.request_header_version(version))?;
    request.encode(dst, version)?;
    finish_frame(dst, at, frame_bytes_max)?;
    Ok(())
}

/// Appends a size-prefixed response frame for a request with `correlation_id`, in `version`.
pub fn encode_response(
    correlation_id: i32,
    version: i16,
    response: &Response,
    dst: &mut BytesMut,
    frame_bytes_max: usize,
) -> Result<(), WireEncodeError> {
    let header = ResponseHeader {
        correlation_id,
        ..ResponseHeader::default()
    };
    let at = begin_frame(dst);
    header.encode(dst, response.api_key().response_header_version(version))?;
    response.encode(dst, version)?;
    finish_frame(dst, at, frame_bytes_max)?;
    Ok(())
}

/// Decodes a response frame body, given the API and version of the request it answers.
pub fn decode_response(
    api_key: ApiKey,
    version: i16,
    mut frame: Bytes,
) -> Result<(ResponseHeader, Response), DecodeError> {
    let header = ResponseHeader::decode(&mut frame, api_key.response_header_version(version))?;
    let response = Response::decode(api_key, version, &mut frame)?;
    Ok((header, response))
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::frame::{decode_frame, FRAME_BYTES_MAX_DEFAULT};
    use crate::messages::{ApiVersionsResponse, MetadataRequest};

    #[test]
    fn request_frame_roundtrips_with_the_right_header_version() {
        let header = RequestHeader {
            request_api_key: ApiKey::Metadata.as_i16(),
            request_api_version: 12,
            correlation_id: 7,
            client_id: Some("me".into()),
            ..RequestHeader::default()
        };
        let request = Request::Metadata(MetadataRequest {
            topics: None,
            allow_auto_topic_creation: true,
            ..MetadataRequest::default()
        });
        let mut wire = BytesMut::new();
        encode_request(&header, &request, &mut wire, FRAME_BYTES_MAX_DEFAULT).unwrap();
        let frame = decode_frame(&mut wire, FRAME_BYTES_MAX_DEFAULT)
            .unwrap()
            .unwrap();
        // Header v2: key, version, correlation id, client id (int16 length), no tags.
        assert_eq!(&frame[..12], &[0, 3, 0, 12, 0, 0, 0, 7, 0, 2, b'm', b'e']);
        assert_eq!(frame[12], 0, "empty tagged-field section of header v2");
        let (h, r) = decode_request(frame).unwrap();
        assert_eq!(h, header);
        assert_eq!(r, request);
    }

    #[test]
    fn api_versions_response_uses_header_v0_even_when_flexible() {
        let response = Response::ApiVersions(ApiVersionsResponse::default());
        let mut wire = BytesMut::new();
        encode_response(9, 3, &response, &mut wire, FRAME_BYTES_MAX_DEFAULT).unwrap();
        let frame = decode_frame(&mut wire, FRAME_BYTES_MAX_DEFAULT)
            .unwrap()
            .unwrap();
        // correlation id, then straight into the body: error code 0 (no header tag byte).
        assert_eq!(&frame[..6], &[0, 0, 0, 9, 0, 0]);
        let (h, r) = decode_response(ApiKey::ApiVersions, 3, frame).unwrap();
        assert_eq!(h.correlation_id, 9);
        assert_eq!(r, response);
    }

    #[test]
    fn api_versions_from_the_future_still_has_a_readable_header() {
        // ApiVersions v9 (unknown): header v2, then a body we cannot read (KIP-511).
        let frame = Bytes::from_static(&[0, 18, 0, 9, 0, 0, 0, 5, 0, 1, b'c', 0, 0xaa]);
        let mut rest = frame.clone();
        let header = decode_request_header(&mut rest).unwrap();
        assert_eq!(header.correlation_id, 5);
        assert_eq!(header.client_id.as_deref(), Some("c"));
        assert_eq!(&rest[..], &[0xaa], "the header's tag byte was consumed");
        assert!(matches!(
            decode_request(frame),
            Err(DecodeError::UnsupportedVersion { version: 9, .. })
        ));
    }

    #[test]
    fn unknown_api_key_still_yields_the_correlation_id() {
        let frame = Bytes::from_static(&[0x7f, 0x00, 0, 0, 0, 0, 0, 42, 0xff, 0xff]);
        let header = decode_request_header(&mut frame.clone()).unwrap();
        assert_eq!(header.correlation_id, 42);
        assert_eq!(header.client_id, None);
        assert_eq!(
            decode_request(frame).unwrap_err(),
            DecodeError::UnknownApiKey(0x7f00)
        );
    }
}
