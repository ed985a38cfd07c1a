//! Any bytes through each codec's decoder, with a small output limit: must return Ok or Err,
//! never panic, never exceed the limit.
#![no_main]

use freshet_records::{decompress, Compression};
use libfuzzer_sys::fuzz_target;

const MAX_DECOMPRESSED_BYTES: usize = 256 << 10;

fuzz_target!(|data: &[u8]| {
    let Some((&selector, input)) = data.split_first() else { return };
    let codec = match selector % 4 {
        0 => Compression::Gzip,
        1 => Compression::Snappy,
        2 => Compression::Lz4,
        _ => Compression::Zstd,
    };
    if let Ok(output) = decompress(codec, input, MAX_DECOMPRESSED_BYTES) {
        assert!(output.len() <= MAX_DECOMPRESSED_BYTES);
    }
});
