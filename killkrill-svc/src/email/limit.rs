//! Requests per key (client address, email address, user) in a fixed
//! window: the first `max` pass, the rest are refused until the window
//! ends. In memory, per process, bounded.
//!
//! Why it looks like this: when the table is full, only entries whose
//! window has ended are forgotten. Forgetting live entries (clearing the
//! table) would let anyone who can fill it — easy with IPv6 source
//! addresses or made-up email addresses — reset everyone's limit. So a new
//! key that finds the table full of live entries is refused (counted in
//! [`LIMITER_FULL`]) until the oldest window ends. Expired entries are
//! found through a queue in window-start order, so forgetting them costs
//! O(1) amortised per request, never a scan of the table.
//!
//! Client addresses are keyed with [`address_key`]: an IPv6 client usually
//! owns a whole /64, so keying per address would give it 2^64 limits.

use std::collections::hash_map::Entry;
use std::collections::{HashMap, VecDeque};
use std::hash::Hash;
use std::net::{IpAddr, Ipv6Addr};
use std::sync::Mutex;
use std::time::{Duration, Instant};

use metrics::counter;

/// Most keys tracked by default.
pub const MAX_ENTRIES: usize = 100_000;

/// New keys refused because the limiter's table was full of live entries
/// (`limiter` = its name).
pub const LIMITER_FULL: &str = "killkrill_email_limiter_full_total";

/// Why [`KeyedLimiter::hit`] refused a request.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum Refused {
    /// The key used up its window.
    Limited {
        /// Seconds until the key's window ends.
        retry_after: u64,
    },
    /// The key is new and the table is full of live entries.
    Full {
        /// Seconds until the oldest entry's window ends.
        retry_after: u64,
    },
}

impl Refused {
    /// Seconds to wait.
    pub fn retry_after(self) -> u64 {
        match self {
            Refused::Limited { retry_after } | Refused::Full { retry_after } => retry_after,
        }
    }
}

#[derive(Debug)]
struct Table<K> {
    /// Key → (window start, requests in the window).
    seen: HashMap<K, (Instant, u32)>,
    /// (window start, key), in start order; an element whose start is no
    /// longer its key's is stale and skipped.
    starts: VecDeque<(Instant, K)>,
}

/// The limiter.
#[derive(Debug)]
pub struct KeyedLimiter<K> {
    name: &'static str,
    max: u32,
    window: Duration,
    max_entries: usize,
    table: Mutex<Table<K>>,
}

impl<K: Hash + Eq + Clone> KeyedLimiter<K> {
    /// `max` requests per `window`, at most [`MAX_ENTRIES`] keys; `name`
    /// labels its metric.
    pub fn new(name: &'static str, max: u32, window: Duration) -> Self {
        Self::with_max_entries(name, max, window, MAX_ENTRIES)
    }

    /// [`KeyedLimiter::new`] with another table size.
    pub fn with_max_entries(
        name: &'static str,
        max: u32,
        window: Duration,
        max_entries: usize,
    ) -> Self {
        KeyedLimiter {
            name,
            max,
            window,
            max_entries: max_entries.max(1),
            table: Mutex::new(Table {
                seen: HashMap::new(),
                starts: VecDeque::new(),
            }),
        }
    }

    /// Counts a request for `key`. A refused request does not extend the
    /// window.
    ///
    /// # Errors
    /// [`Refused::Limited`] over the limit; [`Refused::Full`] (counted)
    /// for a new key while every tracked key's window is still running.
    pub fn hit(&self, key: K, now: Instant) -> Result<(), Refused> {
        let mut t = self.table.lock().unwrap_or_else(|e| e.into_inner());
        let Table { seen, starts } = &mut *t;
        // Forget the entries whose window has ended.
        while let Some((start, _)) = starts.front() {
            if now.saturating_duration_since(*start) < self.window {
                break;
            }
            if let Some((start, k)) = starts.pop_front()
                && seen.get(&k).is_some_and(|e| e.0 == start)
            {
                seen.remove(&k);
            }
        }
        let secs_left = |start: Instant| {
            (start + self.window)
                .saturating_duration_since(now)
                .as_secs()
                .max(1)
        };
        let full = seen.len() >= self.max_entries;
        let e = match seen.entry(key) {
            Entry::Occupied(mut o) => {
                // Ended, though its queue element is behind a later start
                // (two callers' `now` a little out of order): a new window.
                if now.saturating_duration_since(o.get().0) >= self.window {
                    starts.push_back((now, o.key().clone()));
                    *o.get_mut() = (now, 0);
                }
                o.into_mut()
            }
            Entry::Vacant(v) => {
                if full {
                    counter!(LIMITER_FULL, "limiter" => self.name).increment(1);
                    let oldest = starts.front().map_or(now, |s| s.0);
                    return Err(Refused::Full {
                        retry_after: secs_left(oldest),
                    });
                }
                starts.push_back((now, v.key().clone()));
                v.insert((now, 0))
            }
        };
        if e.1 >= self.max {
            return Err(Refused::Limited {
                retry_after: secs_left(e.0),
            });
        }
        e.1 += 1;
        Ok(())
    }

    /// How many keys are tracked.
    pub fn len(&self) -> usize {
        self.table
            .lock()
            .unwrap_or_else(|e| e.into_inner())
            .seen
            .len()
    }

    /// Whether no key is tracked.
    pub fn is_empty(&self) -> bool {
        self.len() == 0
    }
}

/// The limiter key of a client address: IPv4 as is (also when written as
/// an IPv4-mapped IPv6 address), IPv6 by its /64 (the low 64 bits zeroed).
pub fn address_key(a: IpAddr) -> IpAddr {
    match a {
        IpAddr::V4(_) => a,
        IpAddr::V6(v6) => match v6.to_ipv4_mapped() {
            Some(v4) => IpAddr::V4(v4),
            None => IpAddr::V6(Ipv6Addr::from(u128::from(v6) & !u128::from(u64::MAX))),
        },
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    const MIN: Duration = Duration::from_secs(60);

    #[test]
    fn allows_max_per_window_per_key() {
        let l = KeyedLimiter::new("t", 2, MIN);
        let t0 = Instant::now();
        assert_eq!(l.hit("a", t0), Ok(()));
        assert_eq!(l.hit("a", t0), Ok(()));
        assert_eq!(
            l.hit("a", t0 + Duration::from_secs(10)),
            Err(Refused::Limited { retry_after: 50 })
        );
        assert_eq!(l.hit("b", t0), Ok(()));
        assert_eq!(l.hit("a", t0 + MIN), Ok(()));
    }

    #[test]
    fn a_full_table_forgets_only_expired_entries_and_refuses_new_keys() {
        let l = KeyedLimiter::with_max_entries("t", 1, MIN, 3);
        let t0 = Instant::now();
        let at = |s: u64| t0 + Duration::from_secs(s);
        // "victim" uses its one request; two more keys fill the table.
        assert_eq!(l.hit("victim", at(0)), Ok(()));
        assert_eq!(l.hit("x1", at(10)), Ok(()));
        assert_eq!(l.hit("x2", at(20)), Ok(()));
        assert_eq!(l.len(), 3);
        // New keys are refused (the oldest window ends at 60 s); the
        // victim's limit still holds: nothing was forgotten.
        for (i, k) in ["x3", "x4", "x5"].into_iter().enumerate() {
            assert_eq!(
                l.hit(k, at(30 + i as u64)),
                Err(Refused::Full {
                    retry_after: 30 - i as u64
                }),
                "{k}"
            );
        }
        assert_eq!(
            l.hit("victim", at(40)),
            Err(Refused::Limited { retry_after: 20 })
        );
        // Keys already tracked still get their answer.
        assert_eq!(
            l.hit("x1", at(40)),
            Err(Refused::Limited { retry_after: 30 })
        );
        assert_eq!(l.len(), 3);
        // Once the victim's window ends, its entry (only) is forgotten and
        // one new key fits.
        assert_eq!(l.hit("x3", at(60)), Ok(()));
        assert_eq!(l.hit("x4", at(61)), Err(Refused::Full { retry_after: 9 }));
        assert_eq!(
            l.hit("x2", at(61)),
            Err(Refused::Limited { retry_after: 19 })
        );
        assert_eq!(l.len(), 3);
        // Later everything has expired.
        assert_eq!(l.hit("victim", at(200)), Ok(()));
        assert_eq!(l.len(), 1);
    }

    #[test]
    fn the_queue_stays_bounded_under_many_windows() {
        let l = KeyedLimiter::with_max_entries("t", 5, Duration::from_secs(1), 10);
        let t0 = Instant::now();
        for i in 0..10_000u64 {
            let _ = l.hit(i % 7, t0 + Duration::from_millis(i * 10));
        }
        let t = l.table.lock().unwrap();
        assert!(t.seen.len() <= 7);
        assert!(t.starts.len() <= 14, "{}", t.starts.len());
    }

    #[test]
    fn out_of_order_instants_start_a_new_window() {
        let l = KeyedLimiter::new("t", 1, MIN);
        let t0 = Instant::now();
        let at = |s: u64| t0 + Duration::from_secs(s);
        // b's element (10 s) is queued before a's (0 s): at 61 s a's window
        // has ended but its element is not at the front yet.
        assert_eq!(l.hit("b", at(10)), Ok(()));
        assert_eq!(l.hit("a", at(0)), Ok(()));
        assert_eq!(l.hit("a", at(61)), Ok(()));
        assert_eq!(
            l.hit("a", at(62)),
            Err(Refused::Limited { retry_after: 59 })
        );
        assert_eq!(l.hit("b", at(62)), Err(Refused::Limited { retry_after: 8 }));
        // The stale element of a (0 s) does not forget a's new window.
        assert_eq!(
            l.hit("a", at(75)),
            Err(Refused::Limited { retry_after: 46 })
        );
    }

    #[test]
    fn ipv6_is_keyed_by_its_64_and_mapped_ipv4_as_ipv4() {
        let k = |s: &str| address_key(s.parse().unwrap()).to_string();
        let cases = [
            ("192.0.2.7", "192.0.2.7"),
            ("::ffff:192.0.2.7", "192.0.2.7"),
            ("2001:db8:1:2:3:4:5:6", "2001:db8:1:2::"),
            ("2001:db8:1:2:ffff:ffff:ffff:ffff", "2001:db8:1:2::"),
            ("2001:db8:1:3::1", "2001:db8:1:3::"),
            ("::1", "::"),
        ];
        for (a, want) in cases {
            assert_eq!(k(a), want, "{a}");
        }
        // Every address of one /64 shares one limit.
        let l = KeyedLimiter::new("t", 2, MIN);
        let t0 = Instant::now();
        for (i, a) in ["2001:db8::1", "2001:db8::2:3", "2001:db8::ffff"]
            .into_iter()
            .enumerate()
        {
            let r = l.hit(address_key(a.parse().unwrap()), t0);
            assert_eq!(r.is_ok(), i < 2, "{a}");
        }
        assert_eq!(
            l.hit(address_key("2001:db8:0:1::1".parse().unwrap()), t0),
            Ok(())
        );
    }
}
