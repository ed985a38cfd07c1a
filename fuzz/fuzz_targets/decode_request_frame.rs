//! A whole request frame body as the broker receives it: header (version chosen by the API key
//! and version it carries), then the request. Also the same bytes as a response body for the
//! API and version named by the first four bytes, as a client receives it.
#![no_main]

use bytes::Bytes;
use freshet_protocol::wire::{decode_request, decode_response, peek_key_and_version};
use freshet_protocol::ApiKey;
use libfuzzer_sys::fuzz_target;

fuzz_target!(|data: &[u8]| {
    let frame = Bytes::copy_from_slice(data);
    if let Ok((header, request)) = decode_request(frame.clone()) {
        assert_eq!(header.request_api_key, request.api_key().as_i16());
    }
    if let Some((key, version)) = peek_key_and_version(data) {
        if let Some(api) = ApiKey::from_i16(key) {
            let _ = decode_response(api, version, frame.slice(4..));
        }
    }
});
