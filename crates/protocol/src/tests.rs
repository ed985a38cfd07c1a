//! Round-trip and hostile-input tests over every generated message and version.

use crate::codec::{Decode, Encode, Message};
use crate::for_each_message;
use crate::testing::{Random, TestRng};
use crate::{ApiKey, Request, Response};
use bytes::{Bytes, BytesMut};
use std::fmt::Debug;

/// Random instances per message version.
const SEEDS_PER_VERSION: u64 = 24;

fn seed_of(name: &str, version: i16, i: u64) -> u64 {
    let name_hash = name.bytes().fold(0xcbf2_9ce4_8422_2325u64, |h, b| {
        (h ^ u64::from(b)).wrapping_mul(0x100_0000_01b3)
    });
    name_hash ^ ((version as u64) << 32) ^ i
}

fn encode_checked<T: Encode + Debug>(m: &T, version: i16) -> Bytes {
    let mut buf = BytesMut::new();
    m.encode(&mut buf, version)
        .unwrap_or_else(|e| panic!("encode v{version} {m:?}: {e}"));
    let len = m.encoded_len(version).expect("encoded_len");
    assert_eq!(len, buf.len(), "encoded_len disagrees with encode: {m:?}");
    buf.freeze()
}

/// random -> encode -> decode -> equal, for every valid version; then every strict prefix of
/// the encoding must fail to decode (and not panic).
fn roundtrip_message<T: Message + Random + Debug + PartialEq>() {
    let (min, max) = T::VALID_VERSIONS;
    for version in min..=max {
        for i in 0..SEEDS_PER_VERSION {
            let seed = seed_of(T::NAME, version, i);
            let m = T::random(&mut TestRng::new(seed), version);
            let encoded = encode_checked(&m, version);
            let mut input = encoded.clone();
            let back = T::decode(&mut input, version)
                .unwrap_or_else(|e| panic!("{} v{version} seed {seed}: {e}", T::NAME));
            assert!(input.is_empty(), "{} v{version}: bytes left over", T::NAME);
            assert_eq!(back, m, "{} v{version} seed {seed}", T::NAME);
            if i == 0 {
                for cut in 0..encoded.len() {
                    let mut prefix = encoded.slice(..cut);
                    assert!(
                        T::decode(&mut prefix, version).is_err(),
                        "{} v{version}: prefix of {cut} bytes decoded",
                        T::NAME
                    );
                }
            }
        }
    }
    let mut buf = BytesMut::new();
    assert!(T::default_for_test().encode(&mut buf, max + 1).is_err());
    assert!(T::decode(&mut Bytes::new(), max + 1).is_err());
}

/// `Default` is not a bound of `Message`; random at version 0 stands in for an instance.
trait DefaultForTest {
    fn default_for_test() -> Self;
}

impl<T: Random + Message> DefaultForTest for T {
    fn default_for_test() -> Self {
        T::random(&mut TestRng::new(1), T::VALID_VERSIONS.0)
    }
}

#[test]
fn every_message_roundtrips_in_every_version() {
    macro_rules! roundtrip {
        ($t:ty) => {
            roundtrip_message::<$t>();
        };
    }
    for_each_message!(roundtrip);
}

#[test]
fn request_and_response_enums_dispatch_by_api_key() {
    for key in ApiKey::ALL {
        assert_eq!(ApiKey::from_i16(key.as_i16()), Some(key));
        let (min, max) = key.valid_versions();
        for version in min..=max {
            let mut rng = TestRng::new(seed_of(key.name(), version, 7));
            let req = Request::random(key, version, &mut rng);
            assert_eq!(req.api_key(), key);
            let mut buf = BytesMut::new();
            req.encode(&mut buf, version).expect("encode request");
            assert_eq!(req.encoded_len(version), Ok(buf.len()));
            let back = Request::decode(key, version, &mut buf.freeze()).expect("decode request");
            assert_eq!(back, req);

            let resp = Response::random(key, version, &mut rng);
            assert_eq!(resp.api_key(), key);
            let mut buf = BytesMut::new();
            resp.encode(&mut buf, version).expect("encode response");
            let back = Response::decode(key, version, &mut buf.freeze()).expect("decode response");
            assert_eq!(back, resp);
        }
        assert!(Request::decode(key, max + 1, &mut Bytes::new()).is_err());
    }
}

/// Random garbage, and mutations of valid encodings, never make a decoder panic.
#[test]
fn garbage_never_panics() {
    let mut rng = TestRng::new(42);
    for key in ApiKey::ALL {
        let (min, max) = key.valid_versions();
        for version in min..=max {
            for _ in 0..30 {
                let len = rng.below(64) as usize;
                let junk: Bytes = (0..len).map(|_| rng.next_u64() as u8).collect();
                let _ = Request::decode(key, version, &mut junk.clone());
                let _ = Response::decode(key, version, &mut junk.clone());
            }
            let valid = Request::random(key, version, &mut rng);
            let mut buf = BytesMut::new();
            valid.encode(&mut buf, version).expect("encode");
            for _ in 0..30 {
                let mut mutated = buf.clone();
                if !mutated.is_empty() {
                    let at = rng.below(mutated.len() as u64) as usize;
                    mutated[at] = rng.next_u64() as u8;
                }
                let _ = Request::decode(key, version, &mut mutated.freeze());
            }
        }
    }
}

/// Writes seed inputs for the `decode_message` fuzz target: each message type at each version,
/// encoded from a random instance, behind the target's 3-byte prefix (type index, version).
/// `FRESHET_FUZZ_SEEDS=$PWD/fuzz/corpus/decode_message cargo test -p freshet-protocol --lib
/// -- --ignored write_fuzz_seeds`
#[test]
#[ignore = "writes files; run by hand before fuzzing"]
fn write_fuzz_seeds() {
    let dir = std::env::var("FRESHET_FUZZ_SEEDS").expect("set FRESHET_FUZZ_SEEDS to a directory");
    std::fs::create_dir_all(&dir).expect("create seed dir");
    // Indexes follow for_each_message!'s order, as in the fuzz target.
    let mut writers: Vec<fn(&str, u16) -> usize> = Vec::new();
    macro_rules! seeds {
        ($t:ty) => {
            writers.push(write_seeds::<$t>);
        };
    }
    for_each_message!(seeds);
    let written: usize = (0u16..).zip(&writers).map(|(i, w)| w(&dir, i)).sum();
    assert!(written > 0);
}

fn write_seeds<T: Message + Random + Debug>(dir: &str, index: u16) -> usize {
    let (min, max) = T::VALID_VERSIONS;
    let mut written = 0;
    for version in min..=max {
        for i in 0..2 {
            let m = T::random(&mut TestRng::new(seed_of(T::NAME, version, i)), version);
            let mut seed = index.to_be_bytes().to_vec();
            seed.push((version - min) as u8);
            seed.extend_from_slice(&encode_checked(&m, version));
            let path = format!("{dir}/{}-v{version}-{i}", T::NAME);
            std::fs::write(path, seed).expect("write seed");
            written += 1;
        }
    }
    written
}

/// Writes seed inputs for the `decode_request_frame` fuzz target: a request frame body
/// (header + request) for every API and version.
/// `FRESHET_FUZZ_SEEDS=$PWD/fuzz/corpus/decode_request_frame cargo test -p freshet-protocol
/// --lib -- --ignored write_request_frame_seeds`
#[test]
#[ignore = "writes files; run by hand before fuzzing"]
fn write_request_frame_seeds() {
    let dir = std::env::var("FRESHET_FUZZ_SEEDS").expect("set FRESHET_FUZZ_SEEDS to a directory");
    std::fs::create_dir_all(&dir).expect("create seed dir");
    for key in ApiKey::ALL {
        let (min, max) = key.valid_versions();
        for version in min..=max {
            let mut rng = TestRng::new(seed_of(key.name(), version, 3));
            let header = crate::RequestHeader {
                request_api_key: key.as_i16(),
                request_api_version: version,
                correlation_id: 1,
                client_id: Some("seed".into()),
                ..Default::default()
            };
            let request = Request::random(key, version, &mut rng);
            let mut wire = BytesMut::new();
            crate::wire::encode_request(&header, &request, &mut wire, usize::MAX >> 1)
                .expect("encode");
            let path = format!("{dir}/{}-v{version}", key.name());
            std::fs::write(path, &wire[4..]).expect("write seed");
        }
    }
}

/// Writes samples for tests/java-oracle (Kafka's own Java classes parse and re-serialize our
/// encodings): for every message type and version, a few random instances encoded by us.
/// Run `crates/protocol/tests/java-oracle/run.sh`.
#[test]
#[ignore = "writes a file for the Java cross-check"]
fn write_java_oracle_samples() {
    use std::io::Write;
    let path = std::env::var("FRESHET_ORACLE_SAMPLES").expect("set FRESHET_ORACLE_SAMPLES");
    let mut out = std::io::BufWriter::new(std::fs::File::create(path).expect("create"));
    let mut writers: Vec<fn(&mut dyn Write)> = Vec::new();
    macro_rules! samples {
        ($t:ty) => {
            writers.push(write_oracle_samples::<$t>);
        };
    }
    for_each_message!(samples);
    for w in &writers {
        w(&mut out);
    }
    out.flush().expect("flush");
}

fn write_oracle_samples<T: Message + Random + Debug>(out: &mut dyn std::io::Write) {
    let (min, max) = T::VALID_VERSIONS;
    for version in min..=max {
        for i in 0..4 {
            let m = T::random(
                &mut TestRng::new(seed_of(T::NAME, version, 100 + i)),
                version,
            );
            let bytes = encode_checked(&m, version);
            let mut record = (T::NAME.len() as u16).to_be_bytes().to_vec();
            record.extend_from_slice(T::NAME.as_bytes());
            record.extend_from_slice(&version.to_be_bytes());
            record.extend_from_slice(&(bytes.len() as i32).to_be_bytes());
            record.extend_from_slice(&bytes);
            out.write_all(&record).expect("write sample");
        }
    }
}
