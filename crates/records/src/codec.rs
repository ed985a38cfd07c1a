//! Compression codecs for the records section of a batch, with the framings Kafka's clients
//! write, and a hard cap on decompressed size so a small hostile batch cannot inflate without
//! bound (a "zip bomb").
//!
//! | codec  | framing on the wire                                                    |
//! | ------ | ---------------------------------------------------------------------- |
//! | gzip   | RFC 1952 gzip (Java's `GZIPOutputStream`: one member; we read several) |
//! | snappy | xerial framing: 16-byte header then `[i32 len][raw snappy block]`...   |
//! |        | (Java's snappy-java `SnappyOutputStream`); a bare raw block is accepted |
//! | lz4    | standard LZ4 frame, independent 64 KiB blocks, no checksums but HC     |
//! | zstd   | standard zstd frame                                                    |

use std::fmt;
use std::io::{Read, Write};

use crate::header::Compression;

/// Why compressing or decompressing failed.
#[derive(Debug, Clone, PartialEq, Eq)]
#[non_exhaustive]
pub enum CodecError {
    /// The output would exceed `max_decompressed_bytes`.
    TooLarge { max_decompressed_bytes: usize },
    /// The compressed bytes are not a valid stream of the codec.
    Corrupt { codec: Compression, reason: String },
}

impl CodecError {
    /// The Kafka error code for a produce request whose batch failed to decompress.
    ///
    /// Over the limit: `MESSAGE_TOO_LARGE`, which makes the Java producer split the batch and
    /// retry, the right outcome for a batch that is only too big once inflated. Corrupt
    /// compressed data that passed the CRC is a producer bug; Kafka surfaces it as an
    /// unexpected exception, we answer `INVALID_RECORD` so the producer fails at once
    /// instead of retrying the same bytes.
    pub fn kafka_error_code(&self) -> i16 {
        match self {
            CodecError::TooLarge { .. } => crate::error::kafka_error::MESSAGE_TOO_LARGE,
            CodecError::Corrupt { .. } => crate::error::kafka_error::INVALID_RECORD,
        }
    }

    fn corrupt(codec: Compression, reason: impl fmt::Display) -> CodecError {
        CodecError::Corrupt {
            codec,
            reason: reason.to_string(),
        }
    }
}

impl fmt::Display for CodecError {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        match self {
            CodecError::TooLarge {
                max_decompressed_bytes,
            } => {
                write!(
                    f,
                    "decompressed records exceed the limit of {max_decompressed_bytes} bytes"
                )
            }
            CodecError::Corrupt { codec, reason } => write!(f, "corrupt {codec:?} data: {reason}"),
        }
    }
}

impl std::error::Error for CodecError {}

/// Appends `input` compressed with `codec` to `out`. `Compression::None` copies.
pub fn compress(codec: Compression, input: &[u8], out: &mut Vec<u8>) -> Result<(), CodecError> {
    match codec {
        Compression::None => out.extend_from_slice(input),
        Compression::Gzip => compress_gzip(input, out)?,
        Compression::Snappy => compress_snappy_xerial(input, out)?,
        Compression::Lz4 => compress_lz4(input, out)?,
        Compression::Zstd => compress_zstd(input, out)?,
    }
    Ok(())
}

/// Decompresses `input`, failing with [`CodecError::TooLarge`] as soon as the output would
/// pass `max_decompressed_bytes`. `Compression::None` copies (and is held to the same limit).
pub fn decompress(
    codec: Compression,
    input: &[u8],
    max_decompressed_bytes: usize,
) -> Result<Vec<u8>, CodecError> {
    match codec {
        Compression::None => {
            if input.len() > max_decompressed_bytes {
                return Err(CodecError::TooLarge {
                    max_decompressed_bytes,
                });
            }
            Ok(input.to_vec())
        }
        Compression::Gzip => {
            // Every member of a multi-member stream, as Java's GZIPInputStream reads them.
            let decoder = flate2::read::MultiGzDecoder::new(input);
            read_capped(codec, decoder, input.len(), max_decompressed_bytes)
        }
        Compression::Snappy => decompress_snappy(input, max_decompressed_bytes),
        Compression::Lz4 => {
            check_lz4_blocks_independent(input)?;
            let decoder = lz4_flex::frame::FrameDecoder::new(input);
            read_capped(codec, decoder, input.len(), max_decompressed_bytes)
        }
        Compression::Zstd => decompress_zstd(input, max_decompressed_bytes),
    }
}

/// Reads `reader` to its end into a vector, erroring once more than `max_bytes` come out.
/// The first allocation is sized from the input, not from anything the stream claims.
fn read_capped(
    codec: Compression,
    reader: impl Read,
    input_bytes: usize,
    max_bytes: usize,
) -> Result<Vec<u8>, CodecError> {
    let mut out = Vec::with_capacity(input_bytes.saturating_mul(4).min(max_bytes));
    // One byte past the limit tells "exactly at the limit" from "over it".
    let limit = u64::try_from(max_bytes)
        .unwrap_or(u64::MAX)
        .saturating_add(1);
    reader
        .take(limit)
        .read_to_end(&mut out)
        .map_err(|error| CodecError::corrupt(codec, error))?;
    if out.len() > max_bytes {
        return Err(CodecError::TooLarge {
            max_decompressed_bytes: max_bytes,
        });
    }
    Ok(out)
}

fn compress_gzip(input: &[u8], out: &mut Vec<u8>) -> Result<(), CodecError> {
    // Level 6 is zlib's default, the one Java's GZIPOutputStream uses.
    let mut encoder = flate2::write::GzEncoder::new(out, flate2::Compression::default());
    encoder
        .write_all(input)
        .map_err(|e| CodecError::corrupt(Compression::Gzip, e))?;
    encoder
        .finish()
        .map_err(|e| CodecError::corrupt(Compression::Gzip, e))?;
    Ok(())
}

fn compress_lz4(input: &[u8], out: &mut Vec<u8>) -> Result<(), CodecError> {
    // Independent 64 KiB blocks and no content checksum: what Kafka's own LZ4 writer
    // produces and what its reader (KafkaLZ4BlockInputStream) requires.
    let info = lz4_flex::frame::FrameInfo::new()
        .block_size(lz4_flex::frame::BlockSize::Max64KB)
        .block_mode(lz4_flex::frame::BlockMode::Independent);
    let mut encoder = lz4_flex::frame::FrameEncoder::with_frame_info(info, out);
    encoder
        .write_all(input)
        .map_err(|e| CodecError::corrupt(Compression::Lz4, e))?;
    encoder
        .finish()
        .map_err(|e| CodecError::corrupt(Compression::Lz4, e))?;
    Ok(())
}

/// Byte 4 of an LZ4 frame is FLG; bit 5 says blocks are independent.
const LZ4_FLG_OFFSET: usize = 4;
const LZ4_FLG_BLOCK_INDEPENDENCE: u8 = 0x20;

/// Kafka's reader (`KafkaLZ4BlockInputStream`) refuses linked blocks ("Dependent block
/// stream is unsupported"), so a batch using them would break Java consumers: refuse it too.
fn check_lz4_blocks_independent(input: &[u8]) -> Result<(), CodecError> {
    match input.get(LZ4_FLG_OFFSET) {
        Some(flg) if flg & LZ4_FLG_BLOCK_INDEPENDENCE == 0 => Err(CodecError::corrupt(
            Compression::Lz4,
            "dependent (linked) blocks, which Kafka does not support",
        )),
        // Shorter input is left to the decoder, which reports it as corrupt.
        _ => Ok(()),
    }
}

/// zstd level 3, the library's and Kafka's default.
const ZSTD_LEVEL: i32 = 3;
/// A frame may ask for a window (memory) up to 2^27 bytes, which is what levels 20-22 use.
/// The decoder refuses larger windows, and windows larger than the output limit needs
/// (but never below 2^23, which covers every level up to 19).
const ZSTD_WINDOW_LOG_MAX: u32 = 27;
const ZSTD_WINDOW_LOG_FLOOR: u32 = 23;

fn compress_zstd(input: &[u8], out: &mut Vec<u8>) -> Result<(), CodecError> {
    let mut encoder = zstd::stream::write::Encoder::new(out, ZSTD_LEVEL)
        .map_err(|e| CodecError::corrupt(Compression::Zstd, e))?;
    encoder
        .write_all(input)
        .map_err(|e| CodecError::corrupt(Compression::Zstd, e))?;
    encoder
        .finish()
        .map_err(|e| CodecError::corrupt(Compression::Zstd, e))?;
    Ok(())
}

fn decompress_zstd(input: &[u8], max_bytes: usize) -> Result<Vec<u8>, CodecError> {
    let codec = Compression::Zstd;
    let mut decoder = zstd::stream::read::Decoder::with_buffer(input)
        .map_err(|e| CodecError::corrupt(codec, e))?;
    decoder
        .window_log_max(zstd_window_log_max(max_bytes))
        .map_err(|e| CodecError::corrupt(codec, e))?;
    read_capped(codec, decoder, input.len(), max_bytes)
}

/// The smallest window log that can hold `max_bytes`, clamped to the floor and the maximum.
fn zstd_window_log_max(max_bytes: usize) -> u32 {
    let needed = usize::BITS - max_bytes.saturating_sub(1).leading_zeros();
    needed.clamp(ZSTD_WINDOW_LOG_FLOOR, ZSTD_WINDOW_LOG_MAX)
}

/// snappy-java's stream header: magic, then version 1 and minimum compatible version 1.
const XERIAL_MAGIC: [u8; 8] = [0x82, b'S', b'N', b'A', b'P', b'P', b'Y', 0];
const XERIAL_HEADER_LEN: usize = 16;
/// snappy-java's default chunk size (SnappyOutputStream's 32 KiB blocks).
const XERIAL_CHUNK_BYTES: usize = 32 * 1024;

fn compress_snappy_xerial(input: &[u8], out: &mut Vec<u8>) -> Result<(), CodecError> {
    out.extend_from_slice(&XERIAL_MAGIC);
    out.extend_from_slice(&1i32.to_be_bytes());
    out.extend_from_slice(&1i32.to_be_bytes());
    let mut encoder = snap::raw::Encoder::new();
    for chunk in input.chunks(XERIAL_CHUNK_BYTES) {
        let length_at = out.len();
        out.extend_from_slice(&[0; 4]);
        let block_start = out.len();
        out.resize(block_start + snap::raw::max_compress_len(chunk.len()), 0);
        let written = encoder
            .compress(chunk, &mut out[block_start..])
            .map_err(|e| CodecError::corrupt(Compression::Snappy, e))?;
        out.truncate(block_start + written);
        // A 32 KiB chunk compresses to far less than i32::MAX bytes.
        let written = i32::try_from(written).expect("snappy block of a 32 KiB chunk fits i32");
        out[length_at..block_start].copy_from_slice(&written.to_be_bytes());
    }
    Ok(())
}

fn decompress_snappy(input: &[u8], max_bytes: usize) -> Result<Vec<u8>, CodecError> {
    if input.starts_with(&XERIAL_MAGIC) {
        decompress_snappy_xerial(input, max_bytes)
    } else {
        // librdkafka and other clients may send one bare snappy block.
        let mut out = Vec::new();
        decompress_snappy_block(input, max_bytes, &mut out)?;
        Ok(out)
    }
}

fn decompress_snappy_xerial(input: &[u8], max_bytes: usize) -> Result<Vec<u8>, CodecError> {
    let corrupt = |reason: &str| CodecError::corrupt(Compression::Snappy, reason);
    let mut rest = input;
    let mut out = Vec::new();
    while !rest.is_empty() {
        // snappy-java accepts several concatenated streams, each with its own header.
        if rest.starts_with(&XERIAL_MAGIC) {
            rest = rest
                .get(XERIAL_HEADER_LEN..)
                .ok_or_else(|| corrupt("truncated xerial header"))?;
            continue;
        }
        let length: [u8; 4] = rest
            .get(..4)
            .and_then(|b| b.try_into().ok())
            .ok_or_else(|| corrupt("truncated chunk length"))?;
        let length = usize::try_from(i32::from_be_bytes(length))
            .map_err(|_| corrupt("negative chunk length"))?;
        let block = rest
            .get(4..4 + length)
            .ok_or_else(|| corrupt("chunk runs past the end"))?;
        decompress_snappy_block(block, max_bytes, &mut out)?;
        rest = &rest[4 + length..];
    }
    Ok(out)
}

/// Appends one raw snappy block to `out`, checking its declared length against the limit
/// before allocating for it.
fn decompress_snappy_block(
    block: &[u8],
    max_bytes: usize,
    out: &mut Vec<u8>,
) -> Result<(), CodecError> {
    let codec = Compression::Snappy;
    let declared = snap::raw::decompress_len(block).map_err(|e| CodecError::corrupt(codec, e))?;
    if declared > max_bytes.saturating_sub(out.len()) {
        return Err(CodecError::TooLarge {
            max_decompressed_bytes: max_bytes,
        });
    }
    let start = out.len();
    out.resize(start + declared, 0);
    let written = snap::raw::Decoder::new()
        .decompress(block, &mut out[start..])
        .map_err(|e| CodecError::corrupt(codec, e))?;
    out.truncate(start + written);
    Ok(())
}

#[cfg(test)]
mod tests {
    use super::*;

    const ALL: [Compression; 5] = [
        Compression::None,
        Compression::Gzip,
        Compression::Snappy,
        Compression::Lz4,
        Compression::Zstd,
    ];

    fn sample(bytes: usize) -> Vec<u8> {
        (0..bytes).map(|i| ((i % 97) ^ (i / 301)) as u8).collect()
    }

    #[test]
    fn every_codec_round_trips_empty_small_and_multi_block_inputs() {
        for codec in ALL {
            for size in [0, 1, 1000, 200_000] {
                let input = sample(size);
                let mut compressed = Vec::new();
                compress(codec, &input, &mut compressed).unwrap();
                let output = decompress(codec, &compressed, size).unwrap();
                assert_eq!(output, input, "{codec:?} size {size}");
            }
        }
    }

    #[test]
    fn limit_is_enforced_for_every_codec() {
        let input = vec![0u8; 256 << 10];
        for codec in ALL {
            let mut compressed = Vec::new();
            compress(codec, &input, &mut compressed).unwrap();
            let err = decompress(codec, &compressed, (256 << 10) - 1).unwrap_err();
            assert_eq!(
                err,
                CodecError::TooLarge {
                    max_decompressed_bytes: (256 << 10) - 1
                },
                "{codec:?}"
            );
        }
    }

    #[test]
    fn snappy_accepts_a_raw_block_and_concatenated_xerial_streams() {
        let input = sample(5000);
        let raw = snap::raw::Encoder::new().compress_vec(&input).unwrap();
        assert_eq!(decompress(Compression::Snappy, &raw, 5000).unwrap(), input);
        let mut twice = Vec::new();
        compress(Compression::Snappy, &input, &mut twice).unwrap();
        let one = twice.clone();
        twice.extend_from_slice(&one);
        let output = decompress(Compression::Snappy, &twice, 10_000).unwrap();
        assert_eq!(output.len(), 10_000);
        assert_eq!(&output[5000..], &input[..]);
    }

    #[test]
    fn gzip_reads_every_member_of_a_concatenated_stream() {
        let mut two = Vec::new();
        compress(Compression::Gzip, b"first ", &mut two).unwrap();
        compress(Compression::Gzip, b"second", &mut two).unwrap();
        assert_eq!(
            decompress(Compression::Gzip, &two, 100).unwrap(),
            b"first second"
        );
    }

    #[test]
    fn snappy_xerial_layout_matches_snappy_java() {
        let mut out = Vec::new();
        compress(Compression::Snappy, &sample(40_000), &mut out).unwrap();
        assert_eq!(&out[..16], b"\x82SNAPPY\0\0\0\0\x01\0\0\0\x01");
        // 40,000 bytes make two chunks: 32 KiB and the rest.
        let first_len = i32::from_be_bytes(out[16..20].try_into().unwrap()) as usize;
        let first = &out[20..20 + first_len];
        assert_eq!(snap::raw::decompress_len(first).unwrap(), 32 * 1024);
    }

    #[test]
    fn lz4_frame_header_is_kafka_compatible() {
        let mut out = Vec::new();
        compress(Compression::Lz4, b"hello hello hello", &mut out).unwrap();
        assert_eq!(&out[..4], &[0x04, 0x22, 0x4d, 0x18], "LZ4 frame magic");
        // FLG: version 01, independent blocks, no block/content checksum, no content size.
        assert_eq!(out[4], 0x60);
        // BD: 64 KiB maximum block size.
        assert_eq!(out[5], 0x40);
    }

    #[test]
    fn lz4_linked_blocks_are_refused_like_kafka() {
        let info = lz4_flex::frame::FrameInfo::new().block_mode(lz4_flex::frame::BlockMode::Linked);
        let mut encoder = lz4_flex::frame::FrameEncoder::with_frame_info(info, Vec::new());
        encoder.write_all(&sample(1000)).unwrap();
        let linked = encoder.finish().unwrap();
        let err = decompress(Compression::Lz4, &linked, 1 << 20).unwrap_err();
        assert!(matches!(err, CodecError::Corrupt { .. }), "{err:?}");
    }

    #[test]
    fn garbage_is_corrupt_not_a_panic() {
        let garbage = [0xffu8; 64];
        for codec in [
            Compression::Gzip,
            Compression::Snappy,
            Compression::Lz4,
            Compression::Zstd,
        ] {
            let err = decompress(codec, &garbage, 1 << 20).unwrap_err();
            assert!(
                matches!(err, CodecError::Corrupt { .. }),
                "{codec:?}: {err:?}"
            );
        }
        let mut truncated = b"\x82SNAPPY\0\0\0\0\x01\0\0\0\x01".to_vec();
        truncated.extend_from_slice(&1000i32.to_be_bytes());
        assert!(matches!(
            decompress(Compression::Snappy, &truncated, 1 << 20),
            Err(CodecError::Corrupt { .. })
        ));
    }

    #[test]
    fn zstd_window_limit_scales_with_output_limit() {
        assert_eq!(zstd_window_log_max(1), 23);
        assert_eq!(zstd_window_log_max(1 << 25), 25);
        assert_eq!(zstd_window_log_max((1 << 25) + 1), 26);
        assert_eq!(zstd_window_log_max(usize::MAX), 27);
    }
}
