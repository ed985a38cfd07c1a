//! Zigzag variable-length integers as Kafka encodes them (protobuf style: 7 bits a byte, low
//! group first, high bit set on every byte but the last).

/// Decodes a zigzag varint (at most 5 bytes) from the front of `bytes`, returning the value
/// and the bytes read, or `None` when the input ends early or the encoding is too long.
pub(crate) fn read_varint(bytes: &[u8]) -> Option<(i32, usize)> {
    let (raw, used) = read_unsigned(bytes, 5)?;
    let raw = u32::try_from(raw).ok()?;
    Some(((raw >> 1) as i32 ^ -((raw & 1) as i32), used))
}

/// Decodes a zigzag varlong (at most 10 bytes).
pub(crate) fn read_varlong(bytes: &[u8]) -> Option<(i64, usize)> {
    let (raw, used) = read_unsigned(bytes, 10)?;
    Some(((raw >> 1) as i64 ^ -((raw & 1) as i64), used))
}

fn read_unsigned(bytes: &[u8], max_len: usize) -> Option<(u64, usize)> {
    let mut value = 0u64;
    for (index, &byte) in bytes.iter().take(max_len).enumerate() {
        let shift = 7 * index as u32;
        let group = u64::from(byte & 0x7f);
        // The last permitted byte may only carry the bits that fit.
        if shift > 0 && group.checked_shl(shift)? >> shift != group {
            return None;
        }
        value |= group << shift;
        if byte & 0x80 == 0 {
            return Some((value, index + 1));
        }
    }
    None
}

pub(crate) fn write_varint(value: i32, out: &mut Vec<u8>) {
    write_unsigned(u64::from(((value << 1) ^ (value >> 31)) as u32), out);
}

pub(crate) fn write_varlong(value: i64, out: &mut Vec<u8>) {
    write_unsigned(((value << 1) ^ (value >> 63)) as u64, out);
}

fn write_unsigned(mut value: u64, out: &mut Vec<u8>) {
    while value >= 0x80 {
        out.push((value as u8 & 0x7f) | 0x80);
        value >>= 7;
    }
    out.push(value as u8);
}

pub(crate) fn varint_len(value: i32) -> usize {
    unsigned_len(u64::from(((value << 1) ^ (value >> 31)) as u32))
}

pub(crate) fn varlong_len(value: i64) -> usize {
    unsigned_len(((value << 1) ^ (value >> 63)) as u64)
}

fn unsigned_len(value: u64) -> usize {
    let bits = 64 - value.leading_zeros() as usize;
    bits.max(1).div_ceil(7)
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn known_encodings() {
        let cases: [(i64, &[u8]); 6] = [
            (0, &[0x00]),
            (-1, &[0x01]),
            (1, &[0x02]),
            (63, &[0x7e]),
            (-65, &[0x81, 0x01]),
            (300, &[0xd8, 0x04]),
        ];
        for (value, bytes) in cases {
            let mut out = Vec::new();
            write_varlong(value, &mut out);
            assert_eq!(out, bytes, "{value}");
            assert_eq!(read_varlong(bytes), Some((value, bytes.len())));
            assert_eq!(read_varint(bytes), Some((value as i32, bytes.len())));
        }
    }

    #[test]
    fn extremes_round_trip_and_lengths_agree() {
        for value in [i32::MIN, i32::MAX, 0, -1, 1 << 20] {
            let mut out = Vec::new();
            write_varint(value, &mut out);
            assert_eq!(out.len(), varint_len(value));
            assert_eq!(read_varint(&out), Some((value, out.len())));
        }
        for value in [i64::MIN, i64::MAX, 0, -1, 1 << 40] {
            let mut out = Vec::new();
            write_varlong(value, &mut out);
            assert_eq!(out.len(), varlong_len(value));
            assert_eq!(read_varlong(&out), Some((value, out.len())));
        }
    }

    #[test]
    fn overlong_and_truncated_are_rejected() {
        assert_eq!(read_varint(&[0x80]), None);
        assert_eq!(read_varint(&[0xff, 0xff, 0xff, 0xff, 0x7f]), None);
        assert_eq!(read_varint(&[0x80, 0x80, 0x80, 0x80, 0x80, 0x01]), None);
        assert_eq!(read_varlong(&[0xff; 11]), None);
        assert_eq!(
            read_varlong(&[0xff, 0xff, 0xff, 0xff, 0xff, 0xff, 0xff, 0xff, 0xff, 0x02]),
            None
        );
        assert_eq!(read_varint(&[]), None);
    }
}
