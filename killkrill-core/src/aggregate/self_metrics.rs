//! The engine's own counters: kept as plain numbers (tests and the admin API
//! read them) and mirrored to the `metrics` facade once per batch or flush,
//! never per sample, so an installed recorder costs nothing on the hot path.

use metrics::{counter, gauge};

/// Running totals since the engine was built.
#[derive(Debug, Clone, Copy, Default, PartialEq, Eq)]
pub struct AggregatorCounters {
    /// Samples given to [`Aggregator::aggregate`](super::Aggregator::aggregate).
    pub received: u64,
    /// Samples aggregated into at least one on-time window.
    pub aggregated: u64,
    /// Samples late for at least one resolution.
    pub late: u64,
    /// Late samples dropped (`LatePolicy::Drop`).
    pub late_dropped: u64,
    /// Late samples returned to the caller (`LatePolicy::Output`).
    pub late_output: u64,
    /// Late samples aggregated into late partials (`LatePolicy::Aggregate`).
    pub late_aggregated: u64,
    /// Samples rejected: no timestamp.
    pub rejected_missing_timestamp: u64,
    /// Samples rejected: NaN or ±Inf.
    pub rejected_non_finite: u64,
    /// Samples rejected by the per-metric series limit.
    pub rejected_cardinality: u64,
    /// Samples rejected by the open-window bound.
    pub rejected_open_windows: u64,
    /// Windows opened.
    pub windows_opened: u64,
    /// Windows closed and evicted from memory.
    pub windows_closed: u64,
    /// Partial rollups handed out by flushes.
    pub partials_flushed: u64,
    /// Flushes.
    pub flushes: u64,
}

impl AggregatorCounters {
    /// Sends the growth since `before` to the `metrics` facade, plus gauges.
    pub(crate) fn emit(&self, before: &AggregatorCounters, open_windows: usize, series: usize) {
        let d = |a: u64, b: u64| a.saturating_sub(b);
        let inc = |name: &'static str, label: (&'static str, &'static str), n: u64| {
            if n > 0 {
                counter!(name, label.0 => label.1).increment(n);
            }
        };
        inc(
            "killkrill_aggregate_samples_total",
            ("outcome", "received"),
            d(self.received, before.received),
        );
        inc(
            "killkrill_aggregate_samples_total",
            ("outcome", "aggregated"),
            d(self.aggregated, before.aggregated),
        );
        inc(
            "killkrill_aggregate_late_samples_total",
            ("action", "drop"),
            d(self.late_dropped, before.late_dropped),
        );
        inc(
            "killkrill_aggregate_late_samples_total",
            ("action", "output"),
            d(self.late_output, before.late_output),
        );
        inc(
            "killkrill_aggregate_late_samples_total",
            ("action", "aggregate"),
            d(self.late_aggregated, before.late_aggregated),
        );
        let rejected = [
            (
                "missing_timestamp",
                self.rejected_missing_timestamp,
                before.rejected_missing_timestamp,
            ),
            (
                "non_finite",
                self.rejected_non_finite,
                before.rejected_non_finite,
            ),
            (
                "cardinality",
                self.rejected_cardinality,
                before.rejected_cardinality,
            ),
            (
                "open_windows",
                self.rejected_open_windows,
                before.rejected_open_windows,
            ),
        ];
        for (reason, a, b) in rejected {
            inc(
                "killkrill_aggregate_rejected_samples_total",
                ("reason", reason),
                d(a, b),
            );
        }
        let windows = d(self.windows_closed, before.windows_closed);
        if windows > 0 {
            counter!("killkrill_aggregate_windows_closed_total").increment(windows);
        }
        let partials = d(self.partials_flushed, before.partials_flushed);
        if partials > 0 {
            counter!("killkrill_aggregate_partials_flushed_total").increment(partials);
        }
        gauge!("killkrill_aggregate_open_windows").set(open_windows as f64);
        gauge!("killkrill_aggregate_series").set(series as f64);
    }
}
