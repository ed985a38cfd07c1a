//! The default partitioner: keyed records by murmur2 exactly as the Java client does, so a
//! key lands on the same partition whatever client wrote it; keyless records stick to one
//! partition until its batch is full (KIP-480), then move to another.

use std::collections::HashMap;

/// Kafka's murmur2 (`org.apache.kafka.common.utils.Utils.murmur2`): MurmurHash2, 32-bit,
/// seed 0x9747b28c, little-endian 4-byte blocks.
pub fn murmur2(data: &[u8]) -> i32 {
    const SEED: u32 = 0x9747_b28c;
    const M: u32 = 0x5bd1_e995;
    const R: u32 = 24;
    // Java hashes `length` as an int; keys longer than i32::MAX cannot reach here.
    let mut h: u32 = SEED ^ (data.len() as u32);
    let mut blocks = data.chunks_exact(4);
    for block in &mut blocks {
        let mut k = u32::from_le_bytes([block[0], block[1], block[2], block[3]]);
        k = k.wrapping_mul(M);
        k ^= k >> R;
        k = k.wrapping_mul(M);
        h = h.wrapping_mul(M);
        h ^= k;
    }
    let tail = blocks.remainder();
    if tail.len() >= 3 {
        h ^= u32::from(tail[2]) << 16;
    }
    if tail.len() >= 2 {
        h ^= u32::from(tail[1]) << 8;
    }
    if !tail.is_empty() {
        h ^= u32::from(tail[0]);
        h = h.wrapping_mul(M);
    }
    h ^= h >> 13;
    h = h.wrapping_mul(M);
    h ^= h >> 15;
    h as i32
}

/// Java's `Utils.toPositive`: clears the sign bit (not `abs`, which overflows on MIN).
pub fn to_positive(value: i32) -> i32 {
    value & 0x7fff_ffff
}

/// The partition of a keyed record: `toPositive(murmur2(key)) % partitions`.
pub fn key_partition(key: &[u8], partition_count: usize) -> i32 {
    assert!(partition_count > 0, "a topic has at least one partition");
    let count = i32::try_from(partition_count).expect("partition count fits i32");
    to_positive(murmur2(key)) % count
}

/// Sticky choice for keyless records, per topic.
#[derive(Debug)]
pub struct StickyPartitioner {
    current: HashMap<String, i32>,
    /// xorshift64 state: the choice only needs to spread load, not to be unpredictable.
    random_state: u64,
}

impl StickyPartitioner {
    pub fn new(seed: u64) -> StickyPartitioner {
        StickyPartitioner {
            current: HashMap::new(),
            // xorshift must not start at zero.
            random_state: seed | 1,
        }
    }

    /// The partition keyless records of `topic` go to now. `available` holds the
    /// partitions that have a leader; when none do, any partition is chosen.
    pub fn partition(&mut self, topic: &str, partition_count: usize, available: &[i32]) -> i32 {
        if let Some(&partition) = self.current.get(topic) {
            if (partition as usize) < partition_count {
                return partition;
            }
        }
        self.next(topic, partition_count, available, None)
    }

    /// Moves `topic` to another partition because the batch of `previous` is full.
    pub fn next(
        &mut self,
        topic: &str,
        partition_count: usize,
        available: &[i32],
        previous: Option<i32>,
    ) -> i32 {
        assert!(partition_count > 0, "a topic has at least one partition");
        let pool: Vec<i32> = if available.is_empty() {
            (0..partition_count as i32).collect()
        } else {
            available.to_vec()
        };
        let choices: Vec<i32> = if pool.len() > 1 {
            pool.iter()
                .copied()
                .filter(|&p| Some(p) != previous)
                .collect()
        } else {
            pool
        };
        let partition = choices[(self.random() % choices.len() as u64) as usize];
        self.current.insert(topic.to_owned(), partition);
        partition
    }

    fn random(&mut self) -> u64 {
        let mut x = self.random_state;
        x ^= x << 13;
        x ^= x >> 7;
        x ^= x << 17;
        self.random_state = x;
        x
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    /// Produced by the Java client's own code, Kafka 4.3.1 (kafka-clients-4.3.1.jar):
    /// a small Java program calling `org.apache.kafka.common.utils.Utils.murmur2` on each
    /// key's UTF-8 bytes, then `Utils.toPositive(h) % 3` and `% 10` (javac + java with
    /// `-cp tools/kafka-dist/target/kafka-4.3.1/libs/*`). Columns: key, murmur2, p3, p10.
    const JAVA_VECTORS: &[(&str, i32, i32, i32)] = &[
        ("", 275646681, 0, 1),
        ("a", -1563381124, 1, 4),
        ("ab", 316155434, 2, 4),
        ("abc", 479470107, 0, 7),
        ("abcd", -1323649548, 2, 0),
        ("key-0", 29210041, 1, 1),
        ("key-1", 193331640, 0, 0),
        ("hello world", 1221641059, 1, 9),
        ("freshet", -1743678330, 2, 8),
        ("21", -973932308, 0, 0),
        (
            "The quick brown fox jumps over the lazy dog",
            495243318,
            0,
            8,
        ),
    ];

    #[test]
    fn murmur2_matches_the_java_client() {
        for &(key, hash, p3, p10) in JAVA_VECTORS {
            assert_eq!(murmur2(key.as_bytes()), hash, "murmur2({key:?})");
            assert_eq!(key_partition(key.as_bytes(), 3), p3, "{key:?} % 3");
            assert_eq!(key_partition(key.as_bytes(), 10), p10, "{key:?} % 10");
        }
        // Bytes above 0x7f: Java's bytes are signed, and `& 0xff` in the tail matters.
        // Same Java program, key {0xff, 0x80, 0x00, 0x01, 0xfe}.
        assert_eq!(murmur2(&[0xff, 0x80, 0x00, 0x01, 0xfe]), -173560464);
        assert_eq!(to_positive(-173560464), 1973923184);
    }

    #[test]
    fn to_positive_clears_only_the_sign_bit() {
        assert_eq!(to_positive(i32::MIN), 0);
        assert_eq!(to_positive(-1), i32::MAX);
        assert_eq!(to_positive(5), 5);
    }

    #[test]
    fn sticky_partition_holds_until_moved() {
        let mut sticky = StickyPartitioner::new(42);
        let first = sticky.partition("t", 4, &[0, 1, 2, 3]);
        for _ in 0..10 {
            assert_eq!(sticky.partition("t", 4, &[0, 1, 2, 3]), first);
        }
        for _ in 0..20 {
            let previous = sticky.partition("t", 4, &[0, 1, 2, 3]);
            let next = sticky.next("t", 4, &[0, 1, 2, 3], Some(previous));
            assert_ne!(next, previous, "a full batch moves records elsewhere");
            assert_eq!(sticky.partition("t", 4, &[0, 1, 2, 3]), next);
        }
    }

    #[test]
    fn sticky_prefers_partitions_with_a_leader() {
        let mut sticky = StickyPartitioner::new(7);
        for _ in 0..20 {
            let p = sticky.next("t", 6, &[4], Some(4));
            assert_eq!(
                p, 4,
                "the only available partition, even if it was the previous"
            );
        }
        let mut seen = std::collections::HashSet::new();
        for _ in 0..200 {
            seen.insert(sticky.next("u", 3, &[], None));
        }
        assert_eq!(
            seen.len(),
            3,
            "with no leader known, every partition is a candidate"
        );
    }
}
