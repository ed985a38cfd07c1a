//! Random message generation for the round-trip tests (test builds only).

use crate::codec::{RawTaggedField, Uuid};
use bytes::Bytes;

/// A small deterministic xorshift generator: tests print the seed they fail with.
pub struct TestRng(u64);

impl TestRng {
    pub fn new(seed: u64) -> Self {
        TestRng(seed.wrapping_mul(0x9E37_79B9_7F4A_7C15) | 1)
    }

    pub fn next_u64(&mut self) -> u64 {
        let mut x = self.0;
        x ^= x << 13;
        x ^= x >> 7;
        x ^= x << 17;
        self.0 = x;
        x
    }

    /// A number in `0..bound`.
    pub fn below(&mut self, bound: u64) -> u64 {
        self.next_u64() % bound.max(1)
    }

    pub fn value<T: Random>(&mut self, version: i16) -> T {
        T::random(self, version)
    }

    /// Null a quarter of the time when null is allowed now.
    pub fn opt_value<T: Random>(&mut self, version: i16, nullable_now: bool) -> Option<T> {
        if nullable_now && self.below(4) == 0 {
            None
        } else {
            Some(T::random(self, version))
        }
    }

    /// Unknown tagged fields with tags far above any the specs use, in ascending order.
    pub fn unknown_tags(&mut self, flexible: bool) -> Vec<RawTaggedField> {
        if !flexible {
            return Vec::new();
        }
        let count = self.below(3);
        let mut tag = 10_000;
        (0..count)
            .map(|_| {
                tag += 1 + self.below(1000) as u32;
                (tag, self.value::<Bytes>(0))
            })
            .collect()
    }
}

/// A type whose random instances hold only the fields valid in `version`.
pub trait Random {
    fn random(rng: &mut TestRng, version: i16) -> Self;
}

macro_rules! random_int {
    ($($t:ty),*) => {$(
        impl Random for $t {
            fn random(rng: &mut TestRng, _version: i16) -> Self {
                // Mix small values (the common case on the wire) with extremes.
                match rng.below(4) {
                    0 => 0 as $t,
                    1 => rng.below(100) as $t,
                    _ => rng.next_u64() as $t,
                }
            }
        }
    )*};
}

random_int!(i8, i16, i32, i64, u16, u32);

impl Random for bool {
    fn random(rng: &mut TestRng, _version: i16) -> Self {
        rng.below(2) == 1
    }
}

impl Random for f64 {
    fn random(rng: &mut TestRng, _version: i16) -> Self {
        // Finite values only: NaN is not equal to itself.
        (rng.next_u64() % 1_000_000) as f64 / 7.0
    }
}

impl Random for Uuid {
    fn random(rng: &mut TestRng, _version: i16) -> Self {
        let mut raw = [0u8; 16];
        raw[..8].copy_from_slice(&rng.next_u64().to_be_bytes());
        raw[8..].copy_from_slice(&rng.next_u64().to_be_bytes());
        Uuid(raw)
    }
}

impl Random for String {
    fn random(rng: &mut TestRng, _version: i16) -> Self {
        let len = rng.below(12) as usize;
        let alphabet = ['a', 'z', '0', '-', '_', '.', 'é', '中'];
        (0..len)
            .map(|_| alphabet[rng.below(alphabet.len() as u64) as usize])
            .collect()
    }
}

impl Random for Bytes {
    fn random(rng: &mut TestRng, _version: i16) -> Self {
        let len = rng.below(20) as usize;
        (0..len).map(|_| rng.next_u64() as u8).collect()
    }
}

impl<T: Random> Random for Vec<T> {
    fn random(rng: &mut TestRng, version: i16) -> Self {
        let len = rng.below(4) as usize;
        (0..len).map(|_| T::random(rng, version)).collect()
    }
}
