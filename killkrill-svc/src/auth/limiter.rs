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
//! - A key that finds the table full of live entries is counted in an
//!   **overflow bucket** of its network: IPv4 /24, IPv6 /48 (a site's
//!   allocation), with the same limit and window. A spray of addresses is
//!   then still limited per network, and it uses up only its own networks'
//!   buckets: a legitimate user at a new address elsewhere keeps being let
//!   in while an attacker fills the table (one shared bucket let anyone
//!   who filled the table lock every new address out; review). At most
//!   `max_entries / 16` networks have a bucket; beyond that, new networks
//!   share one last bucket (an attacker would need that many /48s). Failures
//!   counted in a bucket are counted in [`LIMITER_OVERFLOW`].
//! - The per-account lockout (the user row) is separate and unchanged.
//!
//! Expired entries are found through a queue in window-start order, so the
//! cost is O(1) amortised per call, never a scan of the table.

use std::collections::hash_map::Entry;
use std::collections::{HashMap, VecDeque};
use std::net::{IpAddr, Ipv4Addr, Ipv6Addr};
use std::sync::Mutex;
use std::time::{Duration, Instant};

use metrics::counter;

pub use crate::email::limit::address_key;

/// Most addresses tracked by default.
pub const MAX_ENTRIES: usize = 100_000;

/// Failed logins counted in an overflow bucket because the table was full
/// of live entries.
pub const LIMITER_OVERFLOW: &str = "killkrill_auth_login_limiter_overflow_total";

/// The network of an address's overflow bucket: IPv4 /24, IPv6 /48.
pub fn network_key(a: IpAddr) -> IpAddr {
    match address_key(a) {
        IpAddr::V4(v4) => IpAddr::V4(Ipv4Addr::from(u32::from(v4) & 0xFFFF_FF00)),
        IpAddr::V6(v6) => IpAddr::V6(Ipv6Addr::from(u128::from(v6) & !((1u128 << 80) - 1))),
    }
}

/// Why a login is refused before its password is checked.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub struct Blocked {
    /// Seconds until the window ends.
    pub retry_after: u64,
    /// The address is not tracked and its overflow bucket is used up (the
    /// table is full).
    pub overflow: bool,
}

/// Counters per key with their windows, expired in start order.
#[derive(Debug, Default)]
struct Windows {
    /// Key → (window start, failures in the window).
    seen: HashMap<IpAddr, (Instant, u32)>,
    /// (window start, key) in start order; an element whose start is no
    /// longer its key's is stale and skipped.
    starts: VecDeque<(Instant, IpAddr)>,
}

impl Windows {
    fn expire(&mut self, now: Instant, window: Duration) {
        while let Some((start, _)) = self.starts.front() {
            if now.saturating_duration_since(*start) < window {
                break;
            }
            if let Some((start, k)) = self.starts.pop_front()
                && self.seen.get(&k).is_some_and(|e| e.0 == start)
            {
                self.seen.remove(&k);
            }
        }
    }

    /// Counts a failure of `key` (present, or added when `room`); `false`
    /// when it is absent and there is no room.
    fn count(&mut self, key: IpAddr, now: Instant, window: Duration, room: bool) -> bool {
        let e = match self.seen.entry(key) {
            Entry::Occupied(mut o) => {
                // Ended, though its queue element is behind a later start
                // (two callers' `now` a little out of order): a new window.
                if now.saturating_duration_since(o.get().0) >= window {
                    self.starts.push_back((now, key));
                    *o.get_mut() = (now, 0);
                }
                o.into_mut()
            }
            Entry::Vacant(_) if !room => return false,
            Entry::Vacant(v) => {
                self.starts.push_back((now, key));
                v.insert((now, 0))
            }
        };
        e.1 = e.1.saturating_add(1);
        true
    }
}

#[derive(Debug, Default)]
struct Table {
    /// Per address key.
    own: Windows,
    /// Per network, for keys that found `own` full.
    overflow: Windows,
    /// For keys whose network found `overflow` full too: (window start,
    /// failures).
    last: Option<(Instant, u32)>,
}

/// The limiter.
#[derive(Debug)]
pub struct AddressLimiter {
    max: u32,
    window: Duration,
    max_entries: usize,
    max_networks: usize,
    table: Mutex<Table>,
}

impl AddressLimiter {
    /// `max` failures per `window`, at most [`MAX_ENTRIES`] addresses.
    pub fn new(max: u32, window: Duration) -> Self {
        Self::with_max_entries(max, window, MAX_ENTRIES)
    }

    /// [`AddressLimiter::new`] with another table size (and
    /// `max_entries / 16` overflow networks, at least one).
    pub fn with_max_entries(max: u32, window: Duration, max_entries: usize) -> Self {
        let max_entries = max_entries.max(1);
        AddressLimiter {
            max,
            window,
            max_entries,
            max_networks: (max_entries / 16).max(1),
            table: Mutex::new(Table::default()),
        }
    }

    fn lock(&self) -> std::sync::MutexGuard<'_, Table> {
        self.table.lock().unwrap_or_else(|e| e.into_inner())
    }

    /// Forgets the entries and buckets whose window ended.
    fn expire(&self, t: &mut Table, now: Instant) {
        t.own.expire(now, self.window);
        t.overflow.expire(now, self.window);
        if t.last
            .is_some_and(|(start, _)| now.saturating_duration_since(start) >= self.window)
        {
            t.last = None;
        }
    }

    /// `Some` when `addr` is refused now.
    pub fn blocked(&self, addr: IpAddr, now: Instant) -> Option<Blocked> {
        let key = address_key(addr);
        let mut t = self.lock();
        self.expire(&mut t, now);
        let (entry, overflow) = match t.own.seen.get(&key) {
            Some(e) => (*e, false),
            None if t.own.seen.len() >= self.max_entries => {
                match t.overflow.seen.get(&network_key(addr)) {
                    Some(e) => (*e, true),
                    None if t.overflow.seen.len() >= self.max_networks => (t.last?, true),
                    None => return None,
                }
            }
            None => return None,
        };
        let (start, n) = entry;
        let end = start + self.window;
        (n >= self.max && now < end).then(|| Blocked {
            retry_after: end.duration_since(now).as_secs().max(1),
            overflow,
        })
    }

    /// Counts a failure of `addr`: in its own entry, or (counted) in its
    /// network's overflow bucket when it is new and the table is full, or
    /// in the last bucket when the overflow buckets are full too.
    pub fn failed(&self, addr: IpAddr, now: Instant) {
        let key = address_key(addr);
        let mut guard = self.lock();
        let t = &mut *guard;
        self.expire(t, now);
        let room = t.own.seen.len() < self.max_entries;
        if t.own.count(key, now, self.window, room) {
            return;
        }
        counter!(LIMITER_OVERFLOW).increment(1);
        let room = t.overflow.seen.len() < self.max_networks;
        if t.overflow.count(network_key(addr), now, self.window, room) {
            return;
        }
        let e = t.last.get_or_insert((now, 0));
        e.1 = e.1.saturating_add(1);
    }

    /// Forgets an address (a successful login). Overflow buckets are
    /// shared: one success does not reset them.
    pub fn succeeded(&self, addr: IpAddr) {
        self.lock().own.seen.remove(&address_key(addr));
    }

    /// How many addresses are tracked.
    pub fn len(&self) -> usize {
        self.lock().own.seen.len()
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
    fn network_keys() {
        assert_eq!(network_key(ip("10.1.2.3")), ip("10.1.2.0"));
        assert_eq!(network_key(ip("::ffff:10.1.2.3")), ip("10.1.2.0"));
        assert_eq!(network_key(ip("2001:db8:a:ffff:1::9")), ip("2001:db8:a::"));
    }

    #[test]
    fn a_full_table_forgets_only_expired_entries_and_limits_new_keys_per_network() {
        // 32 addresses, 2 overflow networks.
        let l = AddressLimiter::with_max_entries(2, MIN, 32);
        let t0 = Instant::now();
        let at = |s: u64| t0 + Duration::from_secs(s);
        // A victim with one failure; the attacker fills the table.
        l.failed(ip("192.0.2.1"), at(0));
        for i in 1..=31u8 {
            l.failed(IpAddr::from([10, 0, 0, i]), at(10));
        }
        assert_eq!(l.len(), 32);
        // New attacker addresses are not tracked and clear nothing away:
        // they go to their /24's bucket, used up after two failures.
        assert_eq!(l.blocked(ip("10.0.0.200"), at(20)), None);
        l.failed(ip("10.0.0.200"), at(20));
        l.failed(ip("10.0.0.201"), at(20));
        assert_eq!(l.blocked(ip("10.0.0.202"), at(21)), shared(59));
        assert_eq!(l.len(), 32, "nothing was forgotten, nothing added");
        // A new user in another network is still let in (review: one
        // shared bucket locked every new address out).
        assert_eq!(l.blocked(ip("198.51.100.7"), at(21)), None);
        // Tracked addresses keep their own counters: the victim still has
        // one failure left (not reset by the flood, not blocked by it).
        assert_eq!(l.blocked(ip("192.0.2.1"), at(21)), None);
        l.failed(ip("192.0.2.1"), at(21));
        assert_eq!(l.blocked(ip("192.0.2.1"), at(21)), own(39));
        // IPv6: one bucket per /48, whatever the /64.
        l.failed(ip("2001:db8:a:1::1"), at(22));
        l.failed(ip("2001:db8:a:2::1"), at(22));
        assert_eq!(l.blocked(ip("2001:db8:a:ffff::1"), at(22)), shared(60));
        // Both network buckets are taken: a third network shares the last
        // bucket, and once that is used up, so are all other new networks.
        assert_eq!(l.blocked(ip("203.0.113.5"), at(23)), None);
        l.failed(ip("203.0.113.5"), at(23));
        l.failed(ip("203.0.113.6"), at(23));
        assert_eq!(l.blocked(ip("198.51.100.7"), at(23)), shared(60));
        assert_eq!(
            l.blocked(ip("10.0.0.202"), at(23)),
            shared(57),
            "own bucket still"
        );
        // A success from an untracked address resets no bucket.
        l.succeeded(ip("10.0.0.201"));
        assert_eq!(l.blocked(ip("10.0.0.201"), at(24)), shared(56));
        // At 60 s the victim's window ends: its entry (only) is forgotten,
        // so the table has room and a new address gets its own entry.
        assert_eq!(l.blocked(ip("10.0.0.250"), at(60)), None);
        l.failed(ip("10.0.0.250"), at(60));
        assert_eq!(l.len(), 32);
        // Later everything has expired.
        assert_eq!(l.blocked(ip("10.0.0.202"), at(200)), None);
        let t = l.lock();
        assert!(t.own.seen.is_empty() && t.overflow.seen.is_empty() && t.last.is_none());
    }

    #[test]
    fn the_overflow_buckets_have_their_own_window() {
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
        let t = l.lock();
        assert!(t.overflow.seen.is_empty() && t.last.is_none());
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
        assert!(t.own.seen.len() <= 7);
        assert!(t.own.starts.len() <= 14, "{}", t.own.starts.len());
    }
}
