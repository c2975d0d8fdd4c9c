//! Event ids: 128-bit, UUIDv7 layout, sortable by time.
//!
//! The first 48 bits are Unix milliseconds, so ids sort by the time they were
//! assigned (the receive time, not the time the sender wrote in the message).
//! The remaining 74 bits are a per-process random prefix (32 bits) followed
//! by a per-process counter (42 bits): unique within a process without any
//! locking beyond one atomic add, and unique across processes with the
//! probability of a 32-bit random collision between two live processes.
//! Ids from one generator are strictly increasing.

use std::fmt;
use std::str::FromStr;
use std::sync::atomic::{AtomicU64, Ordering};

use super::Timestamp;

/// A time-ordered event id (UUIDv7 layout).
#[derive(Debug, Clone, Copy, PartialEq, Eq, PartialOrd, Ord, Hash, Default)]
pub struct EventId(u128);

/// The text is not a hyphenated UUID.
#[derive(Debug, Clone, PartialEq, Eq, thiserror::Error)]
#[error("invalid event id {0:?}: expected a UUID such as 0192f1b4-8c3e-7a00-8000-000000000001")]
pub struct InvalidEventId(pub String);

impl EventId {
    /// Wraps raw bits.
    pub const fn from_u128(bits: u128) -> Self {
        EventId(bits)
    }

    /// The raw bits.
    pub const fn as_u128(self) -> u128 {
        self.0
    }

    /// Big-endian bytes (the UUID byte order).
    pub const fn to_bytes(self) -> [u8; 16] {
        self.0.to_be_bytes()
    }

    /// From big-endian bytes.
    pub const fn from_bytes(b: [u8; 16]) -> Self {
        EventId(u128::from_be_bytes(b))
    }

    /// The millisecond timestamp in the id.
    pub const fn timestamp_millis(self) -> i64 {
        (self.0 >> 80) as i64
    }

    /// Builds an id from its parts: milliseconds and 74 bits of tail.
    pub const fn from_parts(millis: u64, tail: u128) -> Self {
        let ms = (millis as u128 & 0xFFFF_FFFF_FFFF) << 80;
        let rand_a = (tail >> 62) & 0xFFF;
        let rand_b = tail & ((1u128 << 62) - 1);
        EventId(ms | (0x7 << 76) | (rand_a << 64) | (0b10 << 62) | rand_b)
    }
}

impl fmt::Display for EventId {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        const HEX: &[u8; 16] = b"0123456789abcdef";
        let b = self.to_bytes();
        let mut out = [0u8; 36];
        let mut o = 0;
        for (i, byte) in b.iter().enumerate() {
            if matches!(i, 4 | 6 | 8 | 10) {
                out[o] = b'-';
                o += 1;
            }
            out[o] = HEX[usize::from(byte >> 4)];
            out[o + 1] = HEX[usize::from(byte & 0xF)];
            o += 2;
        }
        f.write_str(std::str::from_utf8(&out).map_err(|_| fmt::Error)?)
    }
}

impl FromStr for EventId {
    type Err = InvalidEventId;
    fn from_str(s: &str) -> Result<Self, Self::Err> {
        let err = || InvalidEventId(s.to_owned());
        if s.len() != 36 {
            return Err(err());
        }
        let mut v: u128 = 0;
        for (i, c) in s.bytes().enumerate() {
            if matches!(i, 8 | 13 | 18 | 23) {
                if c != b'-' {
                    return Err(err());
                }
                continue;
            }
            let d = (c as char).to_digit(16).ok_or_else(err)?;
            v = (v << 4) | u128::from(d);
        }
        Ok(EventId(v))
    }
}

impl serde::Serialize for EventId {
    fn serialize<S: serde::Serializer>(&self, s: S) -> Result<S::Ok, S::Error> {
        s.collect_str(self)
    }
}

impl<'de> serde::Deserialize<'de> for EventId {
    fn deserialize<D: serde::Deserializer<'de>>(d: D) -> Result<Self, D::Error> {
        let s = <std::borrow::Cow<'de, str>>::deserialize(d)?;
        s.parse().map_err(serde::de::Error::custom)
    }
}

/// Hands out strictly increasing [`EventId`]s.
#[derive(Debug)]
pub struct EventIdGenerator {
    prefix: u128,
    counter: AtomicU64,
    last_ms: AtomicU64,
}

impl EventIdGenerator {
    /// A generator with a random 32-bit process prefix.
    pub fn new() -> Self {
        Self::with_prefix(random_u32())
    }

    /// A generator with a fixed prefix (deterministic tests).
    pub fn with_prefix(prefix: u32) -> Self {
        EventIdGenerator {
            prefix: u128::from(prefix) << 42,
            counter: AtomicU64::new(0),
            last_ms: AtomicU64::new(0),
        }
    }

    /// The next id, stamped with `now`. Ids never go backwards even if the
    /// clock does: the millisecond part is the maximum seen so far.
    pub fn next(&self, now: Timestamp) -> EventId {
        let ms = now.as_millis().max(0) as u64;
        let ms = self.last_ms.fetch_max(ms, Ordering::Relaxed).max(ms);
        let n = self.counter.fetch_add(1, Ordering::Relaxed) & ((1 << 42) - 1);
        EventId::from_parts(ms, self.prefix | u128::from(n))
    }
}

impl Default for EventIdGenerator {
    fn default() -> Self {
        Self::new()
    }
}

/// 32 random bits from the OS-seeded hasher (no extra dependency: std's
/// `RandomState` is seeded from the OS once per process, and mixing in the
/// time and process id separates processes started in the same instant).
fn random_u32() -> u32 {
    use std::hash::{BuildHasher, Hasher};
    let mut h = std::collections::hash_map::RandomState::new().build_hasher();
    h.write_i64(Timestamp::now().as_nanos());
    h.write_u32(std::process::id());
    h.finish() as u32
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn display_parse_round_trip_and_version_bits() {
        let id = EventId::from_parts(1_764_090_756_000, 0x3_FFFF_1234_5678_9ABC_DEF0);
        let s = id.to_string();
        assert_eq!(s.len(), 36);
        assert_eq!(&s[14..15], "7", "version nibble");
        assert!(
            matches!(&s[19..20], "8" | "9" | "a" | "b"),
            "variant bits: {s}"
        );
        assert_eq!(s.parse::<EventId>().unwrap(), id);
        assert_eq!(id.timestamp_millis(), 1_764_090_756_000);
        assert!("not-a-uuid".parse::<EventId>().is_err());
        assert!(
            "0192f1b4x8c3e-7a00-8000-00000000001"
                .parse::<EventId>()
                .is_err()
        );
    }

    #[test]
    fn ids_increase_even_when_the_clock_goes_back() {
        let g = EventIdGenerator::with_prefix(7);
        let a = g.next(Timestamp::from_millis(2_000));
        let b = g.next(Timestamp::from_millis(1_000));
        let c = g.next(Timestamp::from_millis(2_000));
        assert!(a < b && b < c);
        assert_eq!(b.timestamp_millis(), 2_000);
    }

    #[test]
    fn ids_sort_by_time() {
        let g = EventIdGenerator::new();
        let late = g.next(Timestamp::from_millis(5_000));
        let h = EventIdGenerator::new();
        let early = h.next(Timestamp::from_millis(4_999));
        assert!(early < late);
    }
}
