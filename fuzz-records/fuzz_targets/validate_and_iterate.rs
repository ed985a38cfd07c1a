//! Any bytes as one batch: validate, then iterate its records. The first byte picks whether the
//! CRC is fixed up first, so the fuzzer reaches the record decoder instead of stopping at the
//! checksum almost every time.
#![no_main]

use bytes::Bytes;
use libfuzzer_sys::fuzz_target;

const MAX_DECOMPRESSED_BYTES: usize = 1 << 20;

fuzz_target!(|data: &[u8]| {
    let Some((&mode, rest)) = data.split_first() else { return };
    let mut batch = rest.to_vec();
    if mode & 1 == 1 && batch.len() >= 21 {
        let crc = crc32c_fixup(&batch);
        batch[17..21].copy_from_slice(&crc.to_be_bytes());
    }
    let batch = Bytes::from(batch);
    let _ = freshet_records::BatchHeader::parse(&batch);
    let Ok(records) = freshet_records::records(&batch, MAX_DECOMPRESSED_BYTES) else { return };
    let header = *records.header();
    let mut count = 0i64;
    for record in records {
        let Ok(record) = record else { break };
        count += 1;
        // Every slice handed out must lie within what the batch could hold.
        let key_bytes = record.key.as_ref().map_or(0, |k| k.len());
        let value_bytes = record.value.as_ref().map_or(0, |v| v.len());
        assert!(key_bytes + value_bytes <= MAX_DECOMPRESSED_BYTES);
    }
    assert!(count <= i64::from(header.record_count.max(0)));
});

/// CRC32C over the bytes a v2 batch's CRC covers (from `attributes`, byte 21).
fn crc32c_fixup(batch: &[u8]) -> u32 {
    crc32c::crc32c(&batch[21..])
}
