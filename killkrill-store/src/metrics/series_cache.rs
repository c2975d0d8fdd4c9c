//! Which series rows this process knows to be stored, and with what
//! `[first_seen, last_seen]`, so steady ingest skips the series upsert.
//!
//! first/last seen are hour-granular (`SEEN_GRANULARITY`), so a series
//! that is scraped steadily needs its row touched once an hour; every other
//! write of it only inserts chunks. The cache is filled only after a commit
//! and is only ever a subset of what is stored: an entry wider than the row
//! could hide a needed upsert. Retention run by this process forgets the
//! tenant. Retention run by *another* process can delete a row this cache
//! still lists, but only a row last seen before that retention's cutoff, so
//! the only samples affected are ones already older than the retention age.
//! The cache is bounded: when full, it is cleared.

use std::collections::HashMap;
use std::sync::Mutex;

use killkrill_core::event::Tenant;
use killkrill_core::storage::SeriesId;

/// Per series: the `[first_seen, last_seen]` known stored.
type Known = HashMap<SeriesId, (i64, i64)>;

/// Series known to be stored, per tenant.
#[derive(Debug)]
pub(crate) struct SeriesCache {
    inner: Mutex<HashMap<Tenant, Known>>,
    max_entries: usize,
}

impl SeriesCache {
    pub(crate) fn new(max_entries: usize) -> Self {
        SeriesCache {
            inner: Mutex::new(HashMap::new()),
            max_entries,
        }
    }

    /// For each `(id, first, last)`, whether the stored row may not cover it.
    pub(crate) fn missing(&self, tenant: &Tenant, rows: &[(SeriesId, i64, i64)]) -> Vec<bool> {
        let Ok(g) = self.inner.lock() else {
            return vec![true; rows.len()];
        };
        let t = g.get(tenant);
        rows.iter()
            .map(|(id, lo, hi)| {
                !t.and_then(|m| m.get(id))
                    .is_some_and(|(clo, chi)| clo <= lo && hi <= chi)
            })
            .collect()
    }

    /// Records rows known stored (call after the commit).
    pub(crate) fn record(&self, tenant: &Tenant, rows: &[(SeriesId, i64, i64)]) {
        let Ok(mut g) = self.inner.lock() else {
            return;
        };
        let total: usize = g.values().map(HashMap::len).sum();
        if total + rows.len() > self.max_entries {
            metrics::counter!("killkrill_store_series_cache_resets_total").increment(1);
            g.clear();
        }
        let m = g.entry(tenant.clone()).or_default();
        for (id, lo, hi) in rows {
            m.entry(*id)
                .and_modify(|(clo, chi)| {
                    *clo = (*clo).min(*lo);
                    *chi = (*chi).max(*hi);
                })
                .or_insert((*lo, *hi));
        }
    }

    /// Forgets a tenant (after retention deleted series rows).
    pub(crate) fn forget(&self, tenant: &Tenant) {
        if let Ok(mut g) = self.inner.lock() {
            g.remove(tenant);
        }
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn covers_only_what_was_recorded() {
        let c = SeriesCache::new(3);
        let t = Tenant::new("t").unwrap();
        let a = SeriesId(1);
        assert_eq!(c.missing(&t, &[(a, 0, 10)]), [true]);
        c.record(&t, &[(a, 0, 10)]);
        assert_eq!(
            c.missing(&t, &[(a, 2, 9), (a, 0, 11), (SeriesId(2), 0, 1)]),
            [false, true, true]
        );
        assert_eq!(c.missing(&Tenant::new("u").unwrap(), &[(a, 2, 9)]), [true]);
        c.record(
            &t,
            &[
                (SeriesId(2), 0, 1),
                (SeriesId(3), 0, 1),
                (SeriesId(4), 0, 1),
            ],
        );
        assert_eq!(c.missing(&t, &[(a, 2, 9)]), [true], "cleared when full");
        c.forget(&t);
        assert_eq!(c.missing(&t, &[(SeriesId(2), 0, 1)]), [true]);
    }
}
