//! The sparse offset index (`.index`) and time index (`.timeindex`) beside each segment, in
//! Kafka's byte layout (docs/design/log.md): pure encode/decode, sanity checks and lookups.
//! The entries live in memory; files are written by [`crate::segment`].

/// Bytes of one offset-index entry: relative offset u32 BE + file position u32 BE.
pub const OFFSET_ENTRY_BYTES: usize = 8;
/// Bytes of one time-index entry: timestamp i64 BE + relative offset u32 BE.
pub const TIME_ENTRY_BYTES: usize = 12;

/// "The batch whose last offset is `base + relative_offset` starts at byte `position`."
/// Kafka keys entries by the batch's last offset; a lookup that lands on an earlier batch only
/// costs a short forward scan.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub struct OffsetEntry {
    pub relative_offset: u32,
    pub position: u32,
}

/// "Up to and including offset `base + relative_offset`, the largest batch max-timestamp is
/// `timestamp`." Entries only grow in timestamp.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub struct TimeEntry {
    pub timestamp: i64,
    pub relative_offset: u32,
}

pub fn encode_offset_entries(entries: &[OffsetEntry], out: &mut Vec<u8>) {
    for e in entries {
        out.extend_from_slice(&e.relative_offset.to_be_bytes());
        out.extend_from_slice(&e.position.to_be_bytes());
    }
}

pub fn encode_time_entries(entries: &[TimeEntry], out: &mut Vec<u8>) {
    for e in entries {
        out.extend_from_slice(&e.timestamp.to_be_bytes());
        out.extend_from_slice(&e.relative_offset.to_be_bytes());
    }
}

/// Decodes and sanity-checks an offset index read from disk. `None` means damaged (rebuild):
/// a partial entry, offsets or positions not strictly increasing, or a position past the end
/// of the segment.
pub fn decode_offset_entries(bytes: &[u8], log_size_bytes: u64) -> Option<Vec<OffsetEntry>> {
    if !bytes.len().is_multiple_of(OFFSET_ENTRY_BYTES) {
        return None;
    }
    let entries: Vec<OffsetEntry> = bytes
        .chunks_exact(OFFSET_ENTRY_BYTES)
        .map(|c| OffsetEntry {
            relative_offset: be_u32(&c[0..4]),
            position: be_u32(&c[4..8]),
        })
        .collect();
    let increasing = entries
        .windows(2)
        .all(|w| w[0].relative_offset < w[1].relative_offset && w[0].position < w[1].position);
    let in_file = entries
        .last()
        .is_none_or(|e| u64::from(e.position) < log_size_bytes);
    (increasing && in_file).then_some(entries)
}

/// Decodes and sanity-checks a time index; `None` means damaged.
pub fn decode_time_entries(
    bytes: &[u8],
    next_relative_offset: Option<u64>,
) -> Option<Vec<TimeEntry>> {
    if !bytes.len().is_multiple_of(TIME_ENTRY_BYTES) {
        return None;
    }
    let entries: Vec<TimeEntry> = bytes
        .chunks_exact(TIME_ENTRY_BYTES)
        .map(|c| TimeEntry {
            timestamp: i64::from_be_bytes(c[0..8].try_into().expect("8-byte chunk")),
            relative_offset: be_u32(&c[8..12]),
        })
        .collect();
    let increasing = entries
        .windows(2)
        .all(|w| w[0].timestamp < w[1].timestamp && w[0].relative_offset <= w[1].relative_offset);
    let in_range = match (entries.last(), next_relative_offset) {
        (Some(e), Some(next)) => u64::from(e.relative_offset) < next,
        _ => true,
    };
    (increasing && in_range).then_some(entries)
}

/// The last entry whose relative offset is `<= relative_offset`.
pub fn offset_floor(entries: &[OffsetEntry], relative_offset: u32) -> Option<OffsetEntry> {
    let n = entries.partition_point(|e| e.relative_offset <= relative_offset);
    n.checked_sub(1).map(|i| entries[i])
}

/// The last entry whose position is `<= position`.
pub fn position_floor(entries: &[OffsetEntry], position: u32) -> Option<OffsetEntry> {
    let n = entries.partition_point(|e| e.position <= position);
    n.checked_sub(1).map(|i| entries[i])
}

/// The last entry whose timestamp is strictly below `timestamp`: every batch up to its offset
/// has a max timestamp below `timestamp`, so a search may start after it.
pub fn time_floor_below(entries: &[TimeEntry], timestamp: i64) -> Option<TimeEntry> {
    let n = entries.partition_point(|e| e.timestamp < timestamp);
    n.checked_sub(1).map(|i| entries[i])
}

fn be_u32(b: &[u8]) -> u32 {
    u32::from_be_bytes(b.try_into().expect("4-byte slice"))
}

#[cfg(test)]
mod tests {
    use super::*;

    fn oe(relative_offset: u32, position: u32) -> OffsetEntry {
        OffsetEntry {
            relative_offset,
            position,
        }
    }

    #[test]
    fn offset_entries_encode_big_endian() {
        let mut out = Vec::new();
        encode_offset_entries(&[oe(1, 0x0102_0304)], &mut out);
        assert_eq!(out, [0, 0, 0, 1, 1, 2, 3, 4]);
        assert_eq!(
            decode_offset_entries(&out, 0x0102_0305),
            Some(vec![oe(1, 0x0102_0304)])
        );
    }

    #[test]
    fn time_entries_encode_big_endian() {
        let mut out = Vec::new();
        encode_time_entries(
            &[TimeEntry {
                timestamp: 258,
                relative_offset: 7,
            }],
            &mut out,
        );
        assert_eq!(out, [0, 0, 0, 0, 0, 0, 1, 2, 0, 0, 0, 7]);
        assert_eq!(decode_time_entries(&out, Some(8)).map(|v| v.len()), Some(1));
        assert_eq!(
            decode_time_entries(&out, Some(7)),
            None,
            "offset past segment end"
        );
    }

    #[test]
    fn damaged_offset_index_is_rejected() {
        let mut out = Vec::new();
        encode_offset_entries(&[oe(5, 100), oe(3, 200)], &mut out);
        assert_eq!(
            decode_offset_entries(&out, 1000),
            None,
            "offsets go backwards"
        );
        assert_eq!(
            decode_offset_entries(&out[..7], 1000),
            None,
            "partial entry"
        );
        let mut ok = Vec::new();
        encode_offset_entries(&[oe(5, 100), oe(9, 200)], &mut ok);
        assert_eq!(
            decode_offset_entries(&ok, 200),
            None,
            "position at end of file"
        );
        assert!(decode_offset_entries(&ok, 201).is_some());
        // Zero-filled tail (a preallocated or torn index) is not increasing.
        assert_eq!(decode_offset_entries(&[0u8; 16], 1000), None);
    }

    #[test]
    fn floors() {
        let entries = [oe(3, 0), oe(10, 500), oe(20, 900)];
        assert_eq!(offset_floor(&entries, 2), None);
        assert_eq!(offset_floor(&entries, 10), Some(oe(10, 500)));
        assert_eq!(offset_floor(&entries, 19), Some(oe(10, 500)));
        assert_eq!(position_floor(&entries, 899), Some(oe(10, 500)));
        assert_eq!(position_floor(&entries, 900), Some(oe(20, 900)));
        let t = [
            TimeEntry {
                timestamp: 5,
                relative_offset: 1,
            },
            TimeEntry {
                timestamp: 9,
                relative_offset: 4,
            },
        ];
        assert_eq!(time_floor_below(&t, 5), None);
        assert_eq!(time_floor_below(&t, 6).map(|e| e.relative_offset), Some(1));
        assert_eq!(
            time_floor_below(&t, 100).map(|e| e.relative_offset),
            Some(4)
        );
    }
}
