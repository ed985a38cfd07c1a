//! Producer sequence arithmetic. Sequences are non-negative `i32`s that wrap from
//! `i32::MAX` to 0 (Kafka's `DefaultRecordBatch.incrementSequence` / `decrementSequence`).

/// "No sequence": control batches and batches without a producer id carry it.
pub const NO_SEQUENCE: i32 = -1;

/// The number of distinct sequences: 0 through `i32::MAX`.
const SEQUENCE_SPACE: i64 = i32::MAX as i64 + 1;

/// `sequence + increment`, wrapping past `i32::MAX` to 0.
///
/// For `sequence` and `increment` in `0..=i32::MAX` this is exactly Kafka's
/// `incrementSequence`; for other inputs (a hostile header) it still returns a value in
/// `0..=i32::MAX` instead of overflowing.
pub fn increment_sequence(sequence: i32, increment: i32) -> i32 {
    let wrapped = (i64::from(sequence) + i64::from(increment)).rem_euclid(SEQUENCE_SPACE);
    to_sequence(wrapped)
}

/// `sequence - decrement`, wrapping below 0 to `i32::MAX` (Kafka's `decrementSequence`).
pub fn decrement_sequence(sequence: i32, decrement: i32) -> i32 {
    let wrapped = (i64::from(sequence) - i64::from(decrement)).rem_euclid(SEQUENCE_SPACE);
    to_sequence(wrapped)
}

/// Whether `next` directly follows `last` (Kafka's `ProducerAppendInfo.inSequence`): one
/// more, or 0 after `i32::MAX`. `last` may be [`NO_SEQUENCE`], after which only 0 follows.
pub fn in_sequence(last: i32, next: i32) -> bool {
    i64::from(next) == i64::from(last) + 1 || (next == 0 && last == i32::MAX)
}

fn to_sequence(value: i64) -> i32 {
    // rem_euclid by SEQUENCE_SPACE leaves 0..=i32::MAX.
    i32::try_from(value).expect("rem_euclid by 2^31 fits in i32")
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn increment_wraps_past_max_to_zero() {
        assert_eq!(increment_sequence(5, 4), 9);
        assert_eq!(increment_sequence(i32::MAX, 0), i32::MAX);
        assert_eq!(increment_sequence(i32::MAX, 1), 0);
        assert_eq!(increment_sequence(i32::MAX - 2, 5), 2);
        assert_eq!(increment_sequence(i32::MAX, i32::MAX), i32::MAX - 1);
    }

    #[test]
    fn decrement_wraps_below_zero_to_max() {
        assert_eq!(decrement_sequence(9, 4), 5);
        assert_eq!(decrement_sequence(0, 1), i32::MAX);
        assert_eq!(decrement_sequence(2, 5), i32::MAX - 2);
    }

    #[test]
    fn hostile_inputs_stay_in_range() {
        for (sequence, delta) in [(i32::MIN, i32::MIN), (-1, -1), (i32::MIN, i32::MAX)] {
            assert!(increment_sequence(sequence, delta) >= 0);
            assert!(decrement_sequence(sequence, delta) >= 0);
        }
    }

    #[test]
    fn in_sequence_follows_by_one_or_wraps() {
        assert!(in_sequence(4, 5));
        assert!(!in_sequence(4, 6));
        assert!(!in_sequence(4, 4));
        assert!(in_sequence(i32::MAX, 0));
        assert!(in_sequence(NO_SEQUENCE, 0));
        assert!(!in_sequence(NO_SEQUENCE, 1));
    }
}
