//! Live series per metric name and tenant, for the cardinality limit.
//!
//! A series *counts* towards its metric's limit from the sample that admits
//! it until its tenant's watermark passes the end of the latest window it has
//! data in (at any resolution) — that is, for as long as it can still add
//! on-time data to an open window. Expiry is evaluated lazily: when a metric
//! is at its limit and a new series knocks, the engine first un-counts the
//! metric's expired series (cheap to skip: each metric remembers the earliest
//! expiry among its live series), then admits or rejects. Admission therefore
//! depends only on the sample stream, not on when the engine was flushed.

use std::collections::HashMap;
use std::sync::Arc;

use crate::event::Tenant;

/// A metric that had samples rejected by the cardinality limit.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct CardinalityOffender {
    /// The tenant.
    pub tenant: Tenant,
    /// The metric name (empty: metrics beyond the tracking limit).
    pub metric: String,
    /// Samples rejected because they would have created a series beyond the
    /// limit.
    pub rejected_samples: u64,
    /// Series of the metric counting towards the limit right now.
    pub live_series: u32,
}

/// Bookkeeping of one metric name of one tenant.
#[derive(Debug)]
pub(crate) struct MetricEntry {
    /// Series counting towards the limit.
    pub(crate) live: u32,
    /// Series in the engine's table referring to this entry.
    pub(crate) registered: u32,
    /// A lower bound of the expiry of the live series (ns).
    pub(crate) min_expiry: i64,
}

/// (tenant, metric name).
type MetricName = (Tenant, Arc<str>);

/// Metric entries by (tenant, name).
#[derive(Debug, Default)]
pub(crate) struct MetricTable {
    index: HashMap<MetricName, u32>,
    entries: Vec<Option<(MetricName, MetricEntry)>>,
    free: Vec<u32>,
}

impl MetricTable {
    /// The entry of `(tenant, name)`, created when missing.
    pub(crate) fn get_or_insert(&mut self, tenant: &Tenant, name: &str) -> u32 {
        let key = (tenant.clone(), Arc::<str>::from(name));
        if let Some(i) = self.index.get(&key) {
            return *i;
        }
        let entry = MetricEntry {
            live: 0,
            registered: 0,
            min_expiry: i64::MAX,
        };
        let at = match self.free.pop() {
            Some(i) => {
                self.entries[i as usize] = Some((key.clone(), entry));
                i
            }
            None => {
                self.entries.push(Some((key.clone(), entry)));
                (self.entries.len() - 1) as u32
            }
        };
        self.index.insert(key, at);
        at
    }

    /// The entry in `at`.
    pub(crate) fn get_mut(&mut self, at: u32) -> Option<&mut MetricEntry> {
        self.entries.get_mut(at as usize)?.as_mut().map(|(_, e)| e)
    }

    /// Live series of `(tenant, name)`.
    pub(crate) fn live(&self, tenant: &Tenant, name: &str) -> u32 {
        let key = (tenant.clone(), Arc::<str>::from(name));
        self.index
            .get(&key)
            .and_then(|i| self.entries[*i as usize].as_ref())
            .map_or(0, |(_, e)| e.live)
    }

    /// A series referring to `at` left the table.
    pub(crate) fn release(&mut self, at: u32, was_live: bool) {
        let Some(Some((key, e))) = self.entries.get_mut(at as usize) else {
            return;
        };
        e.registered = e.registered.saturating_sub(1);
        if was_live {
            e.live = e.live.saturating_sub(1);
        }
        if e.registered == 0 {
            let key = key.clone();
            self.index.remove(&key);
            self.entries[at as usize] = None;
            self.free.push(at);
        }
    }

    /// Drops the entry in `at` when no series refers to it (it was created
    /// for an admission that was refused).
    pub(crate) fn forget_if_unused(&mut self, at: u32) {
        if let Some(Some((key, e))) = self.entries.get(at as usize)
            && e.registered == 0
        {
            let key = key.clone();
            self.index.remove(&key);
            self.entries[at as usize] = None;
            self.free.push(at);
        }
    }

    /// Number of metric entries.
    pub(crate) fn len(&self) -> usize {
        self.index.len()
    }
}
