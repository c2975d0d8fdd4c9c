//! Requests per key (client address, email address, user) in a fixed
//! window: the first `max` pass, the rest are refused until the window
//! ends. In memory, per process, bounded (expired entries go first when
//! full, then everything).

use std::collections::HashMap;
use std::hash::Hash;
use std::sync::Mutex;
use std::time::{Duration, Instant};

/// Most keys tracked.
const MAX_ENTRIES: usize = 100_000;

/// The limiter.
#[derive(Debug)]
pub struct KeyedLimiter<K> {
    max: u32,
    window: Duration,
    seen: Mutex<HashMap<K, (Instant, u32)>>,
}

impl<K: Hash + Eq> KeyedLimiter<K> {
    /// `max` requests per `window`.
    pub fn new(max: u32, window: Duration) -> Self {
        KeyedLimiter {
            max,
            window,
            seen: Mutex::new(HashMap::new()),
        }
    }

    /// Counts a request for `key`: `Err(seconds to wait)` when it is over
    /// the limit (a refused request does not extend the window).
    pub fn hit(&self, key: K, now: Instant) -> Result<(), u64> {
        let mut seen = self.seen.lock().unwrap_or_else(|e| e.into_inner());
        if seen.len() >= MAX_ENTRIES && !seen.contains_key(&key) {
            let window = self.window;
            seen.retain(|_, (start, _)| now.duration_since(*start) < window);
            if seen.len() >= MAX_ENTRIES {
                seen.clear();
            }
        }
        let e = seen.entry(key).or_insert((now, 0));
        if now.duration_since(e.0) >= self.window {
            *e = (now, 0);
        }
        if e.1 >= self.max {
            let end = e.0 + self.window;
            return Err(end.saturating_duration_since(now).as_secs().max(1));
        }
        e.1 += 1;
        Ok(())
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn allows_max_per_window_per_key() {
        let l = KeyedLimiter::new(2, Duration::from_secs(60));
        let t0 = Instant::now();
        assert_eq!(l.hit("a", t0), Ok(()));
        assert_eq!(l.hit("a", t0), Ok(()));
        assert_eq!(l.hit("a", t0 + Duration::from_secs(10)), Err(50));
        assert_eq!(l.hit("b", t0), Ok(()));
        assert_eq!(l.hit("a", t0 + Duration::from_secs(60)), Ok(()));
    }
}
