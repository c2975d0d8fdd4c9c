//! Bounded per-(tenant, metric) counters for the "who is causing this"
//! reports: late samples and cardinality rejections.
//!
//! The keys come from the network, so the map is bounded: once it holds
//! [`MAX_TRACKED`] metrics, counts for further metrics go to one overflow
//! counter (reported with an empty metric name) instead of growing memory.
//! Totals stay exact either way; only the attribution is coarsened.

use std::collections::HashMap;
use std::sync::Arc;

use crate::event::Tenant;

/// Most (tenant, metric) pairs a tally attributes counts to.
pub const MAX_TRACKED: usize = 10_000;

/// A count attributed to one metric of one tenant.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct MetricCount {
    /// The tenant (the default tenant for the overflow entry).
    pub tenant: Tenant,
    /// The metric name; empty for the overflow entry that collects counts of
    /// metrics beyond the tracking limit.
    pub metric: String,
    /// The count.
    pub count: u64,
}

/// Counts per (tenant, metric), bounded.
#[derive(Debug, Default)]
pub(crate) struct MetricTally {
    counts: HashMap<(Tenant, Arc<str>), u64>,
    overflow: u64,
}

impl MetricTally {
    /// Adds `n` to the count of `(tenant, metric)`.
    pub(crate) fn add(&mut self, tenant: &Tenant, metric: &str, n: u64) {
        let key = (tenant.clone(), Arc::<str>::from(metric));
        if let Some(c) = self.counts.get_mut(&key) {
            *c += n;
        } else if self.counts.len() < MAX_TRACKED {
            self.counts.insert(key, n);
        } else {
            self.overflow += n;
        }
    }

    /// The `limit` largest counts, largest first (ties by tenant, metric).
    pub(crate) fn top(&self, limit: usize) -> Vec<MetricCount> {
        let mut v: Vec<MetricCount> = self
            .counts
            .iter()
            .map(|((t, m), c)| MetricCount {
                tenant: t.clone(),
                metric: m.to_string(),
                count: *c,
            })
            .collect();
        if self.overflow > 0 {
            v.push(MetricCount {
                tenant: Tenant::default(),
                metric: String::new(),
                count: self.overflow,
            });
        }
        v.sort_by(|a, b| {
            b.count
                .cmp(&a.count)
                .then_with(|| a.tenant.cmp(&b.tenant))
                .then_with(|| a.metric.cmp(&b.metric))
        });
        v.truncate(limit);
        v
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn top_and_overflow() {
        let mut t = MetricTally::default();
        let a = Tenant::new("a").unwrap();
        for i in 0..MAX_TRACKED + 5 {
            t.add(&a, &format!("m{i}"), 1);
        }
        t.add(&a, "m3", 10);
        t.add(&a, "m1", 10);
        let top = t.top(3);
        let got: Vec<(&str, u64)> = top.iter().map(|m| (m.metric.as_str(), m.count)).collect();
        assert_eq!(got, [("m1", 11), ("m3", 11), ("", 5)]);
    }
}
