//! A fast hasher for the encoder's in-memory maps.
//!
//! The encoder keeps a dictionary per string column and a set of token
//! hashes per block; std's SipHash (built to resist hash flooding) was a
//! tenth of the encoding time. Here the keys are either already uniform
//! 64-bit hashes (used as they are) or short strings (one xxh3 call), and the
//! maps live for one block, so flooding is not a concern.

use std::hash::{BuildHasherDefault, Hasher};

use xxhash_rust::xxh3::xxh3_64;

/// See the module docs.
#[derive(Default, Clone, Copy)]
pub(crate) struct FastHasher(u64);

impl Hasher for FastHasher {
    #[inline]
    fn finish(&self) -> u64 {
        self.0
    }

    #[inline]
    fn write(&mut self, bytes: &[u8]) {
        self.0 = (self.0.rotate_left(5) ^ xxh3_64(bytes)).wrapping_mul(0x9E37_79B9_7F4A_7C15);
    }

    #[inline]
    fn write_u8(&mut self, b: u8) {
        // `str` hashing appends 0xFF; cheap to fold in.
        self.0 ^= u64::from(b);
    }

    #[inline]
    fn write_u64(&mut self, v: u64) {
        self.0 ^= v;
    }
}

/// Builds [`FastHasher`]s.
pub(crate) type FastBuild = BuildHasherDefault<FastHasher>;
