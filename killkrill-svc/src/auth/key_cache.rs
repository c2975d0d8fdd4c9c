//! A short-lived in-memory cache of verified API keys.
//!
//! Without it every request carrying an API key costs a SHA-256 and an
//! indexed SQL lookup (on SQLite a hop to the connection's worker thread
//! and back), a large share of a cheap read such as a page of logs. The
//! cache maps the key's digest to the principal it verified as, for at most
//! `auth.api_key_cache_ms` (1,000 by default; 0 turns it off):
//!
//! - **revocation through this process** (`DELETE /api/v1/api-keys/{id}`)
//!   empties the cache before it answers, so the key is refused at once; a
//!   lookup that was in flight while the key was revoked does not put its
//!   (stale) answer back (the cache's epoch moved);
//! - **revocation elsewhere** (`killkrill apikey revoke`, another API
//!   process of a scale-out deployment) takes effect here within
//!   `auth.api_key_cache_ms`;
//! - **expiry** is checked on every use against the cached `expires_at`;
//! - only keys that verified are cached (an unknown, revoked or expired key
//!   goes to the database every time, so guessing cannot fill the cache),
//!   and at most [`MAX_KEYS`] of them.

use std::collections::HashMap;
use std::sync::Mutex;
use std::time::{Duration, Instant};

use super::principal::Principal;

/// Most keys held; a full cache drops its stale entries, then everything.
pub const MAX_KEYS: usize = 4096;

#[derive(Debug)]
struct Inner {
    map: HashMap<[u8; 32], Cached>,
    /// Bumped by every [`KeyCache::clear`].
    epoch: u64,
}

#[derive(Debug)]
struct Cached {
    at: Instant,
    expires_at: Option<i64>,
    principal: Principal,
}

/// Taken before a database lookup and handed to [`KeyCache::put`]: the
/// cache's epoch then, and the time the lookup began (an entry's age counts
/// from there, so a slow lookup does not stretch the TTL).
#[derive(Debug, Clone, Copy)]
pub struct Ticket {
    epoch: u64,
    at: Instant,
}

/// Clears the cache when dropped: a revocation whose request is cancelled
/// after the database committed still forgets the key.
#[derive(Debug)]
pub struct ClearOnDrop<'a>(&'a KeyCache);

impl Drop for ClearOnDrop<'_> {
    fn drop(&mut self) {
        self.0.clear();
    }
}

/// See the module docs.
#[derive(Debug)]
pub struct KeyCache {
    ttl: Duration,
    inner: Mutex<Inner>,
}

impl KeyCache {
    /// A cache holding entries for `ttl` (zero: off).
    pub fn new(ttl: Duration) -> Self {
        KeyCache {
            ttl,
            inner: Mutex::new(Inner {
                map: HashMap::new(),
                epoch: 0,
            }),
        }
    }

    /// The principal of `digest` if it verified less than the TTL ago and
    /// has not expired at `now_ns`.
    pub fn get(&self, digest: &[u8; 32], now_ns: i64) -> Option<Principal> {
        if self.ttl.is_zero() {
            return None;
        }
        let g = self.inner.lock().ok()?;
        let c = g.map.get(digest)?;
        (c.at.elapsed() < self.ttl && c.expires_at.is_none_or(|e| e > now_ns))
            .then(|| c.principal.clone())
    }

    /// The ticket to pass to [`put`](Self::put) after a database lookup
    /// (taken before the lookup starts).
    pub fn epoch(&self) -> Ticket {
        Ticket {
            epoch: self.inner.lock().map_or(u64::MAX, |g| g.epoch),
            at: Instant::now(),
        }
    }

    /// A guard that clears the cache when dropped, however the revocation
    /// it covers ends.
    pub fn clear_on_drop(&self) -> ClearOnDrop<'_> {
        ClearOnDrop(self)
    }

    /// Remembers a verified key, unless the cache was cleared since
    /// `ticket` was taken (a revocation raced the lookup).
    pub fn put(
        &self,
        digest: [u8; 32],
        expires_at: Option<i64>,
        principal: &Principal,
        ticket: Ticket,
    ) {
        if self.ttl.is_zero() {
            return;
        }
        let Ok(mut g) = self.inner.lock() else { return };
        if g.epoch != ticket.epoch {
            return;
        }
        if g.map.len() >= MAX_KEYS && !g.map.contains_key(&digest) {
            let ttl = self.ttl;
            g.map.retain(|_, c| c.at.elapsed() < ttl);
            if g.map.len() >= MAX_KEYS {
                g.map.clear();
            }
        }
        g.map.insert(
            digest,
            Cached {
                at: ticket.at,
                expires_at,
                principal: principal.clone(),
            },
        );
    }

    /// Forgets every key (a key was revoked).
    pub fn clear(&self) {
        if let Ok(mut g) = self.inner.lock() {
            g.map.clear();
            g.epoch += 1;
        }
    }
}

#[cfg(test)]
#[allow(clippy::unwrap_used)]
mod tests {
    use super::*;
    use crate::auth::Credential;
    use killkrill_core::event::Tenant;

    fn principal(id: i64) -> Principal {
        Principal {
            tenant: Tenant::default(),
            subject: format!("apikey:k{id}"),
            credential: Credential::ApiKey {
                id,
                scopes: Vec::new(),
            },
        }
    }

    #[test]
    fn age_counts_from_the_lookup_and_a_dropped_revocation_clears() {
        let c = KeyCache::new(Duration::from_millis(50));
        // A lookup that took longer than the TTL is stored already stale.
        let ticket = c.epoch();
        std::thread::sleep(Duration::from_millis(60));
        c.put([1; 32], None, &principal(1), ticket);
        assert_eq!(c.get(&[1; 32], 0), None, "aged from the lookup's start");
        c.put([1; 32], None, &principal(1), c.epoch());
        assert_eq!(c.get(&[1; 32], 0), Some(principal(1)));
        // A revocation cancelled mid-way (its guard dropped) still clears.
        drop(c.clear_on_drop());
        assert_eq!(c.get(&[1; 32], 0), None);
    }

    #[test]
    fn ttl_expiry_revocation_race_and_bound() {
        let c = KeyCache::new(Duration::from_secs(60));
        let e = c.epoch();
        c.put([1; 32], None, &principal(1), e);
        c.put([2; 32], Some(1_000), &principal(2), e);
        assert_eq!(c.get(&[1; 32], 0), Some(principal(1)));
        assert_eq!(c.get(&[2; 32], 999), Some(principal(2)));
        assert_eq!(c.get(&[2; 32], 1_000), None, "expired key");
        assert_eq!(c.get(&[3; 32], 0), None);
        // A lookup that started before a revocation does not come back.
        let before = c.epoch();
        c.clear();
        assert_eq!(c.get(&[1; 32], 0), None, "cleared");
        c.put([1; 32], None, &principal(1), before);
        assert_eq!(c.get(&[1; 32], 0), None, "stale lookup not stored");
        c.put([1; 32], None, &principal(1), c.epoch());
        assert_eq!(c.get(&[1; 32], 0), Some(principal(1)));
        let short = KeyCache::new(Duration::from_millis(1));
        short.put([1; 32], None, &principal(1), short.epoch());
        std::thread::sleep(Duration::from_millis(5));
        assert_eq!(short.get(&[1; 32], 0), None, "older than the TTL");
        // Bounded.
        let e = c.epoch();
        for i in 0..=MAX_KEYS as u32 {
            let mut d = [0u8; 32];
            d[..4].copy_from_slice(&i.to_le_bytes());
            c.put(d, None, &principal(1), e);
        }
        assert!(c.inner.lock().unwrap().map.len() <= MAX_KEYS);
        // Off.
        let off = KeyCache::new(Duration::ZERO);
        off.put([1; 32], None, &principal(1), off.epoch());
        assert_eq!(off.get(&[1; 32], 0), None);
    }
}
