//! Every generated message type (requests, responses, headers, data records) at every valid
//! version: decoding arbitrary bytes must not panic, and whatever decodes must re-encode to
//! bytes that decode to the same message and encode to the same bytes again.
//!
//! Input: byte 0-1 pick the message type, byte 2 the version, the rest is the body.
#![no_main]

use bytes::{Bytes, BytesMut};
use freshet_protocol::codec::Message;
use freshet_protocol::{for_each_message, Decode, Encode};
use libfuzzer_sys::fuzz_target;
use std::sync::OnceLock;

type Check = fn(Bytes, u8);

fn check<T: Message + std::fmt::Debug>(mut body: Bytes, version_pick: u8) {
    let (min, max) = T::VALID_VERSIONS;
    let span = (max - min + 1) as u16;
    let version = min + (u16::from(version_pick) % span) as i16;
    let Ok(message) = T::decode(&mut body, version) else {
        return;
    };
    let first = encode(&message, version);
    let again = T::decode(&mut first.clone(), version)
        .unwrap_or_else(|e| panic!("re-encoded {} v{version} does not decode: {e}", T::NAME));
    let second = encode(&again, version);
    assert_eq!(first, second, "{} v{version} is not stable", T::NAME);
}

fn encode<T: Encode + std::fmt::Debug>(message: &T, version: i16) -> Bytes {
    let mut buf = BytesMut::new();
    message
        .encode(&mut buf, version)
        .unwrap_or_else(|e| panic!("decoded message does not encode: {e}: {message:?}"));
    assert_eq!(message.encoded_len(version).ok(), Some(buf.len()));
    buf.freeze()
}

fn checks() -> &'static [Check] {
    static CHECKS: OnceLock<Vec<Check>> = OnceLock::new();
    CHECKS.get_or_init(|| {
        let mut all: Vec<Check> = Vec::new();
        macro_rules! add {
            ($t:ty) => {
                all.push(check::<$t>);
            };
        }
        for_each_message!(add);
        all
    })
}

fuzz_target!(|data: &[u8]| {
    if data.len() < 3 {
        return;
    }
    let all = checks();
    let pick = usize::from(u16::from_be_bytes([data[0], data[1]])) % all.len();
    all[pick](Bytes::copy_from_slice(&data[3..]), data[2]);
});
