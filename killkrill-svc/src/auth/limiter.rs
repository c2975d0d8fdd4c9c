//! Failed logins per client address: after `max` failures within a window
//! the address is refused until the window ends. In memory, per process,
//! bounded (the oldest entries go first when full).

use std::collections::HashMap;
use std::net::IpAddr;
use std::sync::Mutex;
use std::time::{Duration, Instant};

/// Most addresses tracked.
const MAX_ENTRIES: usize = 100_000;

/// The limiter.
#[derive(Debug)]
pub struct AddressLimiter {
    max: u32,
    window: Duration,
    seen: Mutex<HashMap<IpAddr, (Instant, u32)>>,
}

impl AddressLimiter {
    /// `max` failures per `window`.
    pub fn new(max: u32, window: Duration) -> Self {
        AddressLimiter {
            max,
            window,
            seen: Mutex::new(HashMap::new()),
        }
    }

    /// `Some(seconds to wait)` when `addr` is refused now.
    pub fn blocked(&self, addr: IpAddr, now: Instant) -> Option<u64> {
        let seen = self.seen.lock().unwrap_or_else(|e| e.into_inner());
        let (start, n) = *seen.get(&addr)?;
        let end = start + self.window;
        (n >= self.max && now < end).then(|| end.duration_since(now).as_secs().max(1))
    }

    /// Counts a failure.
    pub fn failed(&self, addr: IpAddr, now: Instant) {
        let mut seen = self.seen.lock().unwrap_or_else(|e| e.into_inner());
        if seen.len() >= MAX_ENTRIES {
            let window = self.window;
            seen.retain(|_, (start, _)| now.duration_since(*start) < window);
            if seen.len() >= MAX_ENTRIES {
                seen.clear();
            }
        }
        let e = seen.entry(addr).or_insert((now, 0));
        if now.duration_since(e.0) >= self.window {
            *e = (now, 0);
        }
        e.1 += 1;
    }

    /// Forgets an address (a successful login).
    pub fn succeeded(&self, addr: IpAddr) {
        self.seen
            .lock()
            .unwrap_or_else(|e| e.into_inner())
            .remove(&addr);
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn blocks_after_max_until_the_window_ends() {
        let l = AddressLimiter::new(3, Duration::from_secs(60));
        let a: IpAddr = [10, 0, 0, 1].into();
        let b: IpAddr = [10, 0, 0, 2].into();
        let t0 = Instant::now();
        for _ in 0..3 {
            assert_eq!(l.blocked(a, t0), None);
            l.failed(a, t0);
        }
        assert_eq!(l.blocked(a, t0), Some(60));
        assert_eq!(l.blocked(b, t0), None);
        assert_eq!(l.blocked(a, t0 + Duration::from_secs(61)), None);
        l.failed(a, t0 + Duration::from_secs(61));
        assert_eq!(l.blocked(a, t0 + Duration::from_secs(61)), None);
        l.succeeded(a);
        assert_eq!(l.blocked(a, t0), None);
    }
}
