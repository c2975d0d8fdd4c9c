//! Exponential backoff with full jitter.
//!
//! After failure `n` (1-based) a worker sleeps a uniformly random time in
//! `[0, min(max, initial × multiplier^(n-1))]` — the "full jitter" scheme,
//! which spreads the retries of many workers that failed together (a
//! database restart) instead of letting them hammer it in lockstep. The
//! random source is a small xorshift generator seeded per worker: jitter
//! needs no cryptographic quality, and a fixed seed makes tests repeatable.

use std::time::Duration;

/// Backoff settings.
#[derive(Debug, Clone, Copy, PartialEq)]
pub struct Backoff {
    /// Cap of the first delay.
    pub initial: Duration,
    /// Cap of any delay.
    pub max: Duration,
    /// Growth of the cap per failure (2 doubles it).
    pub multiplier: f64,
}

impl Default for Backoff {
    /// 100 ms, doubling, capped at 30 s.
    fn default() -> Self {
        Backoff {
            initial: Duration::from_millis(100),
            max: Duration::from_secs(30),
            multiplier: 2.0,
        }
    }
}

impl Backoff {
    /// The upper bound of the delay after failure `n` (1-based).
    pub fn cap(&self, failure: u32) -> Duration {
        let exp = self
            .multiplier
            .max(1.0)
            .powi(failure.saturating_sub(1).min(64) as i32);
        let secs = (self.initial.as_secs_f64() * exp).min(self.max.as_secs_f64());
        Duration::try_from_secs_f64(secs).unwrap_or(self.max)
    }

    /// A random delay in `[0, cap(failure)]`.
    pub fn delay(&self, failure: u32, rng: &mut Jitter) -> Duration {
        self.cap(failure).mul_f64(rng.next_unit())
    }
}

/// A tiny xorshift64* generator for jitter.
#[derive(Debug, Clone)]
pub struct Jitter(u64);

impl Jitter {
    /// Seeded from `seed` (a zero seed is replaced by a constant).
    pub fn seeded(seed: u64) -> Self {
        Jitter(if seed == 0 {
            0x9E37_79B9_7F4A_7C15
        } else {
            seed
        })
    }

    /// Seeded from the OS-seeded hasher.
    pub fn from_entropy() -> Self {
        use std::hash::{BuildHasher, Hasher};
        let mut h = std::collections::hash_map::RandomState::new().build_hasher();
        h.write_u64(0x6b6b);
        Self::seeded(h.finish())
    }

    /// Uniform in `[0, 1)`.
    pub fn next_unit(&mut self) -> f64 {
        let mut x = self.0;
        x ^= x >> 12;
        x ^= x << 25;
        x ^= x >> 27;
        self.0 = x;
        (x.wrapping_mul(0x2545_F491_4F6C_DD1D) >> 11) as f64 / (1u64 << 53) as f64
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn caps_grow_exponentially_until_the_max() {
        let b = Backoff {
            initial: Duration::from_millis(100),
            max: Duration::from_secs(1),
            multiplier: 2.0,
        };
        let caps: Vec<u128> = (1..=6).map(|n| b.cap(n).as_millis()).collect();
        assert_eq!(caps, [100, 200, 400, 800, 1000, 1000]);
        assert_eq!(b.cap(u32::MAX), Duration::from_secs(1));
    }

    #[test]
    fn jitter_is_within_the_cap_and_spread_out() {
        let b = Backoff::default();
        let mut rng = Jitter::seeded(42);
        let delays: Vec<Duration> = (0..1000).map(|_| b.delay(3, &mut rng)).collect();
        assert!(delays.iter().all(|d| *d <= Duration::from_millis(400)));
        let low = delays
            .iter()
            .filter(|d| **d < Duration::from_millis(200))
            .count();
        assert!((400..600).contains(&low), "{low} of 1000 in the lower half");
    }
}
