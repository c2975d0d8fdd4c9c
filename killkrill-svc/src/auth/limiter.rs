//! Failed logins per client address: after `max` failures within a window
//! the address is refused until the window ends. In memory, per process,
//! bounded.
//!
//! Why it looks like this:
//! - Addresses are keyed with [`address_key`]: IPv4 per address, IPv6 per
//!   /64. An IPv6 client usually owns a whole /64; keyed per address it
//!   would get 2^64 fresh limits by rotating its source address.
//! - The table holds at most `max_entries` keys. When it is full, only
//!   entries whose window has ended are forgotten. Forgetting live entries
//!   (clearing the table) would let anyone who fills it reset everyone's
//!   counters, and letting new keys through unlimited would make a spray
//!   of addresses unlimited.
//! - A key that finds the table full of live entries shares one
//!   **overflow bucket** with every other such key, with the same limit
//!   and window. A spray of addresses is then still limited as a whole;
//!   addresses already tracked keep their own counters, and a legitimate
//!   user at a new address is only refused while the table is full and
//!   the shared bucket is used up, that is, while under attack. Failures
//!   counted there are counted in [`LIMITER_OVERFLOW`].
//! - The per-account lockout (the user row) is separate and unchanged.
//!
//! Expired entries are found through a queue in window-start order, so the
//! cost is O(1) amortised per call, never a scan of the table.

use std::collections::hash_map::Entry;
use std::collections::{HashMap, VecDeque};
use std::net::IpAddr;
use std::sync::Mutex;
use std::time::{Duration, Instant};

use metrics::counter;

pub use crate::email::limit::address_key;

/// Most addresses tracked by default.
pub const MAX_ENTRIES: usize = 100_000;

/// Failed logins counted in the shared overflow bucket because the table
/// was full of live entries.
pub const LIMITER_OVERFLOW: &str = "killkrill_auth_login_limiter_overflow_total";

/// Why a login is refused before its password is checked.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub struct Blocked {
    /// Seconds until the window ends.
    pub retry_after: u64,
    /// The address is not tracked and the shared overflow bucket is used
    /// up (the table is full).
    pub overflow: bool,
}

#[derive(Debug, Default)]
struct Table {
    /// Key → (window start, failures in the window).
    seen: HashMap<IpAddr, (Instant, u32)>,
    /// (window start, key) in start order; an element whose start is no
    /// longer its key's is stale and skipped.
    starts: VecDeque<(Instant, IpAddr)>,
    /// The bucket of new keys while the table is full: (window start,
    /// failures).
    overflow: Option<(Instant, u32)>,
}

/// The limiter.
#[derive(Debug)]
pub struct AddressLimiter {
    max: u32,
    window: Duration,
    max_entries: usize,
    table: Mutex<Table>,
}

impl AddressLimiter {
    /// `max` failures per `window`, at most [`MAX_ENTRIES`] addresses.
    pub fn new(max: u32, window: Duration) -> Self {
        Self::with_max_entries(max, window, MAX_ENTRIES)
    }

    /// [`AddressLimiter::new`] with another table size.
    pub fn with_max_entries(max: u32, window: Duration, max_entries: usize) -> Self {
        AddressLimiter {
            max,
            window,
            max_entries: max_entries.max(1),
            table: Mutex::new(Table::default()),
        }
    }

    fn lock(&self) -> std::sync::MutexGuard<'_, Table> {
        self.table.lock().unwrap_or_else(|e| e.into_inner())
    }

    /// Forgets the entries (and the overflow bucket) whose window ended.
    fn expire(&self, t: &mut Table, now: Instant) {
        while let Some((start, _)) = t.starts.front() {
            if now.saturating_duration_since(*start) < self.window {
                break;
            }
            if let Some((start, k)) = t.starts.pop_front()
                && t.seen.get(&k).is_some_and(|e| e.0 == start)
            {
                t.seen.remove(&k);
            }
        }
        if t.overflow
            .is_some_and(|(start, _)| now.saturating_duration_since(start) >= self.window)
        {
            t.overflow = None;
        }
    }

    /// `Some` when `addr` is refused now.
    pub fn blocked(&self, addr: IpAddr, now: Instant) -> Option<Blocked> {
        let key = address_key(addr);
        let mut t = self.lock();
        self.expire(&mut t, now);
        let (entry, overflow) = match t.seen.get(&key) {
            Some(e) => (*e, false),
            None if t.seen.len() >= self.max_entries => (t.overflow?, true),
            None => return None,
        };
        let (start, n) = entry;
        let end = start + self.window;
        (n >= self.max && now < end).then(|| Blocked {
            retry_after: end.duration_since(now).as_secs().max(1),
            overflow,
        })
    }

    /// Counts a failure of `addr`: in its own entry, or in the overflow
    /// bucket (counted) when it is new and the table is full.
    pub fn failed(&self, addr: IpAddr, now: Instant) {
        let key = address_key(addr);
        let mut guard = self.lock();
        let t = &mut *guard;
        self.expire(t, now);
        let full = t.seen.len() >= self.max_entries;
        let e = match t.seen.entry(key) {
            Entry::Occupied(mut o) => {
                // Ended, though its queue element is behind a later start
                // (two callers' `now` a little out of order): a new window.
                if now.saturating_duration_since(o.get().0) >= self.window {
                    t.starts.push_back((now, key));
                    *o.get_mut() = (now, 0);
                }
                o.into_mut()
            }
            Entry::Vacant(_) if full => {
                counter!(LIMITER_OVERFLOW).increment(1);
                t.overflow.get_or_insert((now, 0))
            }
            Entry::Vacant(v) => {
                t.starts.push_back((now, key));
                v.insert((now, 0))
            }
        };
        e.1 = e.1.saturating_add(1);
    }

    /// Forgets an address (a successful login). The overflow bucket is
    /// shared: one success does not reset it.
    pub fn succeeded(&self, addr: IpAddr) {
        self.lock().seen.remove(&address_key(addr));
    }

    /// How many addresses are tracked.
    pub fn len(&self) -> usize {
        self.lock().seen.len()
    }

    /// Whether no address is tracked.
    pub fn is_empty(&self) -> bool {
        self.len() == 0
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    const MIN: Duration = Duration::from_secs(60);

    fn ip(s: &str) -> IpAddr {
        s.parse().unwrap()
    }

    fn own(retry_after: u64) -> Option<Blocked> {
        Some(Blocked {
            retry_after,
            overflow: false,
        })
    }

    fn shared(retry_after: u64) -> Option<Blocked> {
        Some(Blocked {
            retry_after,
            overflow: true,
        })
    }

    #[test]
    fn blocks_after_max_until_the_window_ends() {
        let l = AddressLimiter::new(3, MIN);
        let a = ip("10.0.0.1");
        let b = ip("10.0.0.2");
        let t0 = Instant::now();
        for _ in 0..3 {
            assert_eq!(l.blocked(a, t0), None);
            l.failed(a, t0);
        }
        assert_eq!(l.blocked(a, t0), own(60));
        assert_eq!(l.blocked(b, t0), None, "IPv4 is limited per address");
        assert_eq!(l.blocked(a, t0 + Duration::from_secs(61)), None);
        l.failed(a, t0 + Duration::from_secs(61));
        assert_eq!(l.blocked(a, t0 + Duration::from_secs(61)), None);
        l.succeeded(a);
        assert_eq!(l.blocked(a, t0), None);
    }

    #[test]
    fn ipv6_addresses_of_one_64_share_a_limit() {
        let l = AddressLimiter::new(3, MIN);
        let t0 = Instant::now();
        // Rotating the interface identifier does not give new limits.
        for a in ["2001:db8:1:2::1", "2001:db8:1:2::2", "2001:db8:1:2:ffff::9"] {
            assert_eq!(l.blocked(ip(a), t0), None, "{a}");
            l.failed(ip(a), t0);
        }
        assert_eq!(l.blocked(ip("2001:db8:1:2:dead:beef::1"), t0), own(60));
        assert_eq!(l.len(), 1);
        // Another /64 has its own limit; an IPv4-mapped address is IPv4.
        assert_eq!(l.blocked(ip("2001:db8:1:3::1"), t0), None);
        for _ in 0..3 {
            l.failed(ip("::ffff:192.0.2.7"), t0);
        }
        assert_eq!(l.blocked(ip("192.0.2.7"), t0), own(60));
        // A success from any address of the /64 forgets it.
        l.succeeded(ip("2001:db8:1:2::77"));
        assert_eq!(l.blocked(ip("2001:db8:1:2::1"), t0), None);
    }

    #[test]
    fn a_full_table_forgets_only_expired_entries_and_limits_new_keys_together() {
        let l = AddressLimiter::with_max_entries(2, MIN, 3);
        let t0 = Instant::now();
        let at = |s: u64| t0 + Duration::from_secs(s);
        // A victim with one failure; the attacker fills the table.
        l.failed(ip("192.0.2.1"), at(0));
        l.failed(ip("10.0.0.1"), at(10));
        l.failed(ip("10.0.0.2"), at(20));
        assert_eq!(l.len(), 3);
        // New addresses are not tracked and not cleared away: they go to
        // the one overflow bucket, which is used up after two failures.
        assert_eq!(l.blocked(ip("10.0.0.3"), at(30)), None);
        l.failed(ip("10.0.0.3"), at(30));
        l.failed(ip("2001:db8:9::1"), at(31));
        for a in ["10.0.0.4", "10.0.0.3", "2001:db8:a::1", "198.51.100.1"] {
            assert_eq!(l.blocked(ip(a), at(32)), shared(58), "{a}");
        }
        assert_eq!(l.len(), 3, "nothing was forgotten, nothing added");
        // Tracked addresses keep their own counters: the victim still has
        // one failure left (not reset by the flood, not blocked by it).
        assert_eq!(l.blocked(ip("192.0.2.1"), at(32)), None);
        l.failed(ip("192.0.2.1"), at(33));
        assert_eq!(l.blocked(ip("192.0.2.1"), at(33)), own(27));
        // A success from an untracked address does not reset the bucket.
        l.succeeded(ip("10.0.0.9"));
        assert_eq!(l.blocked(ip("10.0.0.9"), at(34)), shared(56));
        // At 60 s the victim's window ends: its entry (only) is forgotten,
        // so the table has room and new addresses get their own entries.
        assert_eq!(l.blocked(ip("10.0.0.5"), at(60)), None);
        l.failed(ip("10.0.0.5"), at(60));
        assert_eq!(l.len(), 3);
        assert_eq!(l.blocked(ip("10.0.0.2"), at(60)), None);
        l.failed(ip("10.0.0.2"), at(61));
        assert_eq!(l.blocked(ip("10.0.0.2"), at(61)), own(19));
        // Full again: a new address meets the bucket, still used up until
        // its window (started at 30 s) ends at 90 s.
        assert_eq!(l.blocked(ip("10.0.0.6"), at(62)), shared(28));
        assert_eq!(l.blocked(ip("10.0.0.6"), at(70)), None, "10.0.0.1 expired");
        // Later everything has expired.
        assert_eq!(l.blocked(ip("10.0.0.3"), at(200)), None);
        assert_eq!(l.len(), 0);
    }

    #[test]
    fn the_overflow_bucket_has_its_own_window() {
        let l = AddressLimiter::with_max_entries(1, MIN, 1);
        let t0 = Instant::now();
        let at = |s: u64| t0 + Duration::from_secs(s);
        l.failed(ip("10.0.0.1"), at(0));
        l.failed(ip("10.0.0.2"), at(50));
        assert_eq!(l.blocked(ip("10.0.0.3"), at(55)), shared(55));
        // 10.0.0.1 expires at 60 s: the table has room again, so a new
        // address is no longer judged by the bucket.
        assert_eq!(l.blocked(ip("10.0.0.3"), at(60)), None);
        l.failed(ip("10.0.0.3"), at(60));
        // Full again with 10.0.0.3; the bucket (from 50 s) still counts
        // until 110 s, then it is forgotten.
        assert_eq!(l.blocked(ip("10.0.0.4"), at(100)), shared(10));
        assert_eq!(l.blocked(ip("10.0.0.4"), at(110)), None);
        assert!(l.lock().overflow.is_none());
    }

    #[test]
    fn the_queue_stays_bounded_under_many_windows() {
        let l = AddressLimiter::with_max_entries(5, Duration::from_secs(1), 10);
        let t0 = Instant::now();
        for i in 0..10_000u32 {
            let a = IpAddr::from([10, 0, 0, (i % 7) as u8]);
            l.failed(a, t0 + Duration::from_millis(u64::from(i) * 10));
        }
        let t = l.lock();
        assert!(t.seen.len() <= 7);
        assert!(t.starts.len() <= 14, "{}", t.starts.len());
    }
}
