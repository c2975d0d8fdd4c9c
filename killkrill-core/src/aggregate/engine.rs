//! The aggregation engine: samples in, partial rollups out.
//!
//! Pure and deterministic: no clock, no I/O, no threads. Time is the event
//! time of the samples (per-tenant high-water marks), so the same stream
//! gives the same partials whenever and wherever it is replayed. The caller
//! (the pipeline worker) feeds batches with [`Aggregator::aggregate`], calls
//! [`Aggregator::flush`] before acknowledging them, and stores the returned
//! [`Flush`] as described in [`super::flush`].
//!
//! Memory: between flushes the engine holds one partial rollup per touched
//! (series, resolution, window); across flushes it keeps, per open window,
//! only the last counter point (so the next partial can link to it). Windows
//! are evicted at flush once their tenant's watermark has passed their end,
//! and a series leaves the table with its last window. `max_open_windows`
//! bounds the total; `needs_flush` tells the caller when a flush would free
//! memory.

use std::collections::HashMap;
use std::sync::Arc;

use super::cardinality::{CardinalityOffender, MetricTable};
use super::config::{LatePolicy, Settings};
use super::counter::Point;
use super::flush::{BatchId, Flush, PartialRollup, RollupKey};
use super::metric_tally::{MetricCount, MetricTally};
use super::report::{BatchReport, LateSample, RejectReason, Rejection};
use super::rollup::Rollup;
use super::run::PendingRun;
use super::self_metrics::AggregatorCounters;
use super::series::{SeriesKey, SeriesTable};
use super::sketch::BucketKey;
use super::window::{Resolution, ResolutionSet, is_closed, watermark};
use crate::event::{MetricSample, Tenant, Timestamp};

/// One open window of a series.
#[derive(Debug)]
struct OpenWindow {
    res: u8,
    start: Timestamp,
    /// The window's last counter point, kept across flushes.
    chain: Option<Point>,
    /// What arrived since the last flush.
    partial: Option<Rollup>,
}

/// A late partial (`LatePolicy::Aggregate`), flushed with the rest.
#[derive(Debug)]
struct LateWindow {
    res: u8,
    start: Timestamp,
    chain: Option<Point>,
    partial: Rollup,
}

#[derive(Debug)]
struct Series {
    tenant: u32,
    metric: u32,
    /// Counts towards the metric's cardinality limit.
    live: bool,
    /// End of the latest window with on-time data (ns).
    expiry: i64,
    /// Touched since the last flush (listed in `dirty`).
    dirty: bool,
    windows: Vec<OpenWindow>,
    late: Vec<LateWindow>,
}

/// The series of the current run of samples: its tenant index, hash, and
/// slot once it is in the table.
#[derive(Debug, Clone, Copy)]
struct RunSeries {
    tenant: usize,
    hash: u64,
    slot: Option<u32>,
}

#[derive(Debug)]
struct TenantState {
    tenant: Tenant,
    high_water: Option<Timestamp>,
    /// Earliest end of an open window of this tenant when last computed (a
    /// lower bound): no eviction pass is needed before the watermark passes it.
    next_close: i64,
}

/// The running aggregation engine, built by
/// [`AggregateConfig::build`](super::AggregateConfig::build).
pub struct Aggregator {
    settings: Settings,
    tenants: Vec<TenantState>,
    tenant_index: HashMap<Tenant, usize>,
    series: SeriesTable<Series>,
    metrics: MetricTable,
    dirty: Vec<u32>,
    open_windows: usize,
    batches: Vec<BatchId>,
    counters: AggregatorCounters,
    late_by_metric: MetricTally,
    rejected_by_metric: MetricTally,
    /// Index of the tenant of the previous sample (batches are usually one tenant).
    last_tenant: usize,
    /// The series of the previous sample, while the current sample is of
    /// the same series (a remote_write batch sends a series' samples
    /// together): the series is hashed and looked up once per run.
    run: Option<RunSeries>,
    /// The rest of the run, held back from its windows ([`super::run`]);
    /// merged into them before anything else touches the engine's windows.
    pending: Option<PendingRun>,
}

impl Aggregator {
    pub(crate) fn new(settings: Settings) -> Self {
        Aggregator {
            settings,
            tenants: Vec::new(),
            tenant_index: HashMap::new(),
            series: SeriesTable::new(),
            metrics: MetricTable::default(),
            dirty: Vec::new(),
            open_windows: 0,
            batches: Vec::new(),
            counters: AggregatorCounters::default(),
            late_by_metric: MetricTally::default(),
            rejected_by_metric: MetricTally::default(),
            last_tenant: usize::MAX,
            run: None,
            pending: None,
        }
    }

    /// The resolutions, ascending (indices of [`ResolutionSet`]s refer to
    /// this order).
    pub fn resolutions(&self) -> &[Resolution] {
        &self.settings.resolutions
    }

    /// Aggregates one batch. Samples without a tenant belong to the default
    /// tenant. Nothing is silent: every sample is aggregated, late (and
    /// routed by the policy) or rejected, and counted.
    pub fn aggregate(&mut self, batch: BatchId, samples: &[MetricSample]) -> BatchReport {
        let before = self.counters;
        if self.batches.last() != Some(&batch) {
            self.batches.push(batch);
        }
        let mut report = BatchReport::default();
        let mut prev: Option<&MetricSample> = None;
        for (index, s) in samples.iter().enumerate() {
            // Labels shared with the previous sample (decoded from one
            // run) are equal without comparing them.
            if !prev
                .is_some_and(|p| p.name == s.name && p.labels == s.labels && p.tenant == s.tenant)
            {
                self.run = None;
            }
            prev = Some(s);
            self.counters.received += 1;
            match self.sample(index, s, &mut report) {
                Ok(()) => {}
                Err(reason) => {
                    match reason {
                        RejectReason::MissingTimestamp => {
                            self.counters.rejected_missing_timestamp += 1
                        }
                        RejectReason::NonFinite => self.counters.rejected_non_finite += 1,
                        RejectReason::Cardinality => self.counters.rejected_cardinality += 1,
                        RejectReason::OpenWindows => self.counters.rejected_open_windows += 1,
                    }
                    report.rejected.push(Rejection { index, reason });
                }
            }
        }
        self.finish_run();
        self.counters
            .emit(&before, self.open_windows, self.series.len());
        report
    }

    fn tenant_index(&mut self, t: Option<&Tenant>) -> usize {
        let name = t.map_or("default", Tenant::as_str);
        if let Some(s) = self.tenants.get(self.last_tenant)
            && s.tenant.as_str() == name
        {
            return self.last_tenant;
        }
        let tenant = t.cloned().unwrap_or_default();
        let i = match self.tenant_index.get(&tenant) {
            Some(i) => *i,
            None => {
                self.tenants.push(TenantState {
                    tenant: tenant.clone(),
                    high_water: None,
                    next_close: i64::MAX,
                });
                self.tenant_index.insert(tenant, self.tenants.len() - 1);
                self.tenants.len() - 1
            }
        };
        self.last_tenant = i;
        i
    }

    fn sample(
        &mut self,
        index: usize,
        s: &MetricSample,
        report: &mut BatchReport,
    ) -> Result<(), RejectReason> {
        let ts = s.timestamp.ok_or(RejectReason::MissingTimestamp)?;
        if !s.value.is_finite() {
            return Err(RejectReason::NonFinite);
        }
        let ti = self.tenant_index(s.tenant.as_ref());
        let wm = watermark(self.tenants[ti].high_water, self.settings.lateness);
        // The run fast path ([`super::run`]): the series of the previous
        // sample, inside every one of its windows, none of them closed.
        if let Some(RunSeries {
            tenant,
            slot: Some(slot),
            ..
        }) = self.run
            && tenant == ti
            && let Some(run) = self.pending.as_mut()
            && run.holds(slot, ts, wm)
        {
            let hw = &mut self.tenants[ti].high_water;
            if hw.is_none_or(|h| ts > h) {
                *hw = Some(ts);
            }
            let sketch = self.settings.sketch;
            run.push(
                Point::new(ts, s.value),
                sketch.map(|p| p.key(s.value)),
                sketch,
            );
            self.counters.aggregated += 1;
            report.aggregated += 1;
            return Ok(());
        }
        let nres = self.settings.resolutions.len();
        let mut starts = [Timestamp::EPOCH; super::window::MAX_RESOLUTIONS];
        let (mut on_time, mut late) = (ResolutionSet::EMPTY, ResolutionSet::EMPTY);
        let mut expiry = i64::MIN;
        for (i, r) in self.settings.resolutions.iter().enumerate() {
            starts[i] = r.window_start(ts);
            if is_closed(*r, starts[i], wm) {
                late.insert(i);
            } else {
                on_time.insert(i);
                expiry = expiry.max(r.window_end(starts[i]).as_nanos());
            }
        }
        // Event time advances the tenant's high-water mark whatever happens
        // to the sample (a rejection must not stall the closing of windows).
        let hw = &mut self.tenants[ti].high_water;
        if hw.is_none_or(|h| ts > h) {
            *hw = Some(ts);
        }
        let aggregate_late = !late.is_empty() && self.settings.late == LatePolicy::Aggregate;
        if !on_time.is_empty() || aggregate_late {
            self.aggregate_into(
                ti,
                s,
                ts,
                &starts[..nres],
                on_time,
                if aggregate_late {
                    late
                } else {
                    ResolutionSet::EMPTY
                },
                expiry,
                late.is_empty(),
            )?;
        }
        if !on_time.is_empty() {
            self.counters.aggregated += 1;
            report.aggregated += 1;
        }
        if !late.is_empty() {
            self.counters.late += 1;
            report.late_count += 1;
            let tenant = self.tenants[ti].tenant.clone();
            self.late_by_metric.add(&tenant, &s.name, 1);
            match self.settings.late {
                LatePolicy::Drop => self.counters.late_dropped += 1,
                LatePolicy::Output => {
                    self.counters.late_output += 1;
                    report.late.push(LateSample {
                        index,
                        resolutions: late,
                    });
                }
                LatePolicy::Aggregate => self.counters.late_aggregated += 1,
            }
        }
        Ok(())
    }

    /// Finds or admits the series and adds the point to its windows. Checks
    /// every limit before changing anything, so a rejection leaves no trace
    /// but its counters.
    #[allow(clippy::too_many_arguments)]
    fn aggregate_into(
        &mut self,
        ti: usize,
        s: &MetricSample,
        ts: Timestamp,
        starts: &[Timestamp],
        on_time: ResolutionSet,
        late: ResolutionSet,
        expiry: i64,
        may_start_run: bool,
    ) -> Result<(), RejectReason> {
        self.finish_run();
        let tenant = self.tenants[ti].tenant.clone();
        // No series leaves the table during `aggregate` (only a flush
        // evicts), so the run's slot stays valid for the whole run.
        let (h, found) = match self.run {
            Some(r) if r.tenant == ti => (r.hash, r.slot),
            _ => {
                let h = self.series.hash(tenant.as_str(), &s.name, &s.labels);
                let found = self.series.find(h, tenant.as_str(), &s.name, &s.labels);
                (h, found)
            }
        };
        self.run = Some(RunSeries {
            tenant: ti,
            hash: h,
            slot: found,
        });
        // Capacity: windows this sample would open.
        let mut needed = late.iter().count();
        match found.and_then(|at| self.series.get_mut(at)) {
            Some((_, series)) => {
                for i in on_time.iter() {
                    if !series
                        .windows
                        .iter()
                        .any(|w| w.res as usize == i && w.start == starts[i])
                    {
                        needed += 1;
                    }
                }
                needed -= late
                    .iter()
                    .filter(|i| {
                        series
                            .late
                            .iter()
                            .any(|w| w.res as usize == *i && w.start == starts[*i])
                    })
                    .count();
            }
            None => needed += on_time.iter().count(),
        }
        if self.open_windows + needed > self.settings.max_open_windows {
            return Err(RejectReason::OpenWindows);
        }
        // Cardinality: admit the series unless it is live already.
        let live = found
            .and_then(|at| self.series.get_mut(at))
            .is_some_and(|(_, x)| x.live);
        let metric = if live {
            None
        } else {
            let m = self.metrics.get_or_insert(&tenant, &s.name);
            if !self.admit(m, ti) {
                self.rejected_by_metric.add(&tenant, &s.name, 1);
                if found.is_none() {
                    self.release_if_unused(m);
                }
                return Err(RejectReason::Cardinality);
            }
            Some(m)
        };
        let at = match found {
            Some(at) => at,
            None => {
                let m = metric.expect("a new series is never live, so it was admitted");
                if let Some(e) = self.metrics.get_mut(m) {
                    e.registered += 1;
                }
                let key = Arc::new(SeriesKey {
                    tenant: tenant.clone(),
                    name: s.name.clone(),
                    labels: s.labels.clone(),
                });
                let series = Series {
                    tenant: ti as u32,
                    metric: m,
                    live: false,
                    expiry: i64::MIN,
                    dirty: false,
                    windows: Vec::with_capacity(self.settings.resolutions.len()),
                    late: Vec::new(),
                };
                let at = self.series.insert(h, key, series);
                self.run = Some(RunSeries {
                    tenant: ti,
                    hash: h,
                    slot: Some(at),
                });
                at
            }
        };
        let sketch = self.settings.sketch;
        let key: Option<BucketKey> = sketch.map(|p| p.key(s.value));
        let p = Point::new(ts, s.value);
        let Some((_, series)) = self.series.get_mut(at) else {
            return Ok(());
        };
        if metric.is_some() {
            series.live = true;
        }
        series.expiry = series.expiry.max(expiry);
        if let Some(e) = self.metrics.get_mut(series.metric) {
            if metric.is_some() {
                e.live += 1;
            }
            e.min_expiry = e.min_expiry.min(series.expiry);
        }
        if !series.dirty {
            series.dirty = true;
            self.dirty.push(at);
        }
        let mut opened = 0usize;
        // The windows' counter chain when they all have the same one.
        let mut chain: Option<Option<Point>> = None;
        let mut chains_agree = true;
        for i in on_time.iter() {
            let w = match series
                .windows
                .iter_mut()
                .position(|w| w.res as usize == i && w.start == starts[i])
            {
                Some(k) => &mut series.windows[k],
                None => {
                    opened += 1;
                    // Keep windows sorted by (resolution, start): partials
                    // then come out of a flush already in key order.
                    let k = series
                        .windows
                        .partition_point(|w| (w.res as usize, w.start) < (i, starts[i]));
                    series.windows.insert(
                        k,
                        OpenWindow {
                            res: i as u8,
                            start: starts[i],
                            chain: None,
                            partial: None,
                        },
                    );
                    let end = self.settings.resolutions[i]
                        .window_end(starts[i])
                        .as_nanos();
                    let t = &mut self.tenants[ti];
                    t.next_close = t.next_close.min(end);
                    &mut series.windows[k]
                }
            };
            match w.partial.as_mut() {
                Some(r) => r.push(p, key, &mut w.chain),
                None => w.partial = Some(Rollup::start(p, key, sketch, &mut w.chain)),
            }
            match chain {
                None => chain = Some(w.chain),
                Some(c) => chains_agree &= c == w.chain,
            }
        }
        if may_start_run
            && chains_agree
            && let Some(c) = chain
        {
            self.pending = PendingRun::new(at, &self.settings.resolutions, starts, on_time, c);
        }
        for i in late.iter() {
            match series
                .late
                .iter_mut()
                .find(|w| w.res as usize == i && w.start == starts[i])
            {
                Some(w) => w.partial.push(p, key, &mut w.chain),
                None => {
                    opened += 1;
                    let mut chain = None;
                    let partial = Rollup::start(p, key, sketch, &mut chain);
                    series.late.push(LateWindow {
                        res: i as u8,
                        start: starts[i],
                        chain,
                        partial,
                    });
                }
            }
        }
        self.open_windows += opened;
        self.counters.windows_opened += opened as u64;
        Ok(())
    }

    /// Merges the held-back rest of a run into its windows.
    fn finish_run(&mut self) {
        let Some(run) = self.pending.take() else {
            return;
        };
        let (slot, starts, on_time) = (run.slot, run.starts, run.on_time);
        let Some((rollup, chain)) = run.into_parts() else {
            return;
        };
        // Only a flush removes series or windows, and a run ends before
        // `aggregate` returns: the series and its windows are there.
        let series = self.series.get_mut(slot);
        debug_assert!(series.is_some(), "a pending run's series is in the table");
        let Some((_, series)) = series else {
            return;
        };
        for i in on_time.iter() {
            let w = series
                .windows
                .iter_mut()
                .find(|w| w.res as usize == i && w.start == starts[i]);
            debug_assert!(w.is_some(), "a pending run's windows are open");
            let Some(w) = w else {
                continue;
            };
            match w.partial.as_mut() {
                Some(r) => {
                    let merged = r.merge(&rollup);
                    debug_assert!(merged.is_ok(), "one engine's rollups share the sketch");
                }
                None => w.partial = Some(rollup.clone()),
            }
            w.chain = chain;
        }
    }

    /// True when metric `m` may take one more live series (after un-counting
    /// its expired ones if it is full).
    fn admit(&mut self, m: u32, ti: usize) -> bool {
        let limit = self.settings.max_series_per_metric;
        let Some(e) = self.metrics.get_mut(m) else {
            return false;
        };
        if e.live < limit {
            return true;
        }
        let wm = watermark(self.tenants[ti].high_water, self.settings.lateness);
        if e.min_expiry > wm {
            return false;
        }
        // Un-count the metric's expired series and recompute the bound.
        let mut freed = 0u32;
        let mut min_expiry = i64::MAX;
        let slots: Vec<u32> = self.series.slots().collect();
        for at in slots {
            if let Some((_, s)) = self.series.get_mut(at)
                && s.metric == m
                && s.live
            {
                if s.expiry <= wm {
                    s.live = false;
                    freed += 1;
                } else {
                    min_expiry = min_expiry.min(s.expiry);
                }
            }
        }
        let Some(e) = self.metrics.get_mut(m) else {
            return false;
        };
        e.live -= freed.min(e.live);
        e.min_expiry = min_expiry;
        e.live < limit
    }

    fn release_if_unused(&mut self, m: u32) {
        self.metrics.forget_if_unused(m);
    }

    /// True when `max_open_windows` is more than 90 % used: flush (and
    /// store) soon so closed windows can be evicted.
    pub fn needs_flush(&self) -> bool {
        self.open_windows * 10 >= self.settings.max_open_windows * 9
    }

    /// Hands out every partial rollup since the previous flush, evicts
    /// windows that are closed, and forgets series without open windows.
    /// Store the result (atomically, keyed by [`Flush::key`]) before
    /// acknowledging [`Flush::batches`].
    pub fn flush(&mut self) -> Flush {
        self.finish_run();
        let before = self.counters;
        let resolutions = &self.settings.resolutions;
        // Series in the order they were first touched since the previous
        // flush (a function of the stream alone), each series' partials
        // in (resolution, window, late) order. Sorting all keys would cost
        // more than the aggregation; `merge_partials` does not need it.
        let dirty = std::mem::take(&mut self.dirty);
        let mut partials = Vec::with_capacity(dirty.len() * resolutions.len());
        for at in dirty {
            let Some((key, s)) = self.series.get_mut(at) else {
                continue;
            };
            s.dirty = false;
            let from = partials.len();
            for w in &mut s.windows {
                if let Some(rollup) = w.partial.take() {
                    partials.push(PartialRollup {
                        key: RollupKey {
                            series: key.clone(),
                            resolution: resolutions[w.res as usize],
                            window_start: w.start,
                            late: false,
                        },
                        rollup,
                    });
                }
            }
            let late = std::mem::take(&mut s.late);
            self.open_windows -= late.len();
            self.counters.windows_closed += late.len() as u64;
            for w in late {
                partials.push(PartialRollup {
                    key: RollupKey {
                        series: key.clone(),
                        resolution: resolutions[w.res as usize],
                        window_start: w.start,
                        late: true,
                    },
                    rollup: w.partial,
                });
            }
            let mine = &mut partials[from..];
            let order = |a: &PartialRollup| (a.key.resolution, a.key.window_start, a.key.late);
            if !mine.is_sorted_by_key(order) {
                mine.sort_unstable_by_key(order);
            }
        }
        self.evict();
        self.counters.partials_flushed += partials.len() as u64;
        self.counters.flushes += 1;
        self.counters
            .emit(&before, self.open_windows, self.series.len());
        Flush {
            batches: std::mem::take(&mut self.batches),
            partials,
            high_water: self
                .tenants
                .iter()
                .filter_map(|t| Some((t.tenant.clone(), t.high_water?)))
                .collect(),
        }
    }

    /// Evicts closed windows of tenants whose watermark passed their
    /// earliest window end, and series left without windows.
    fn evict(&mut self) {
        let lateness = self.settings.lateness;
        let due: Vec<bool> = self
            .tenants
            .iter()
            .map(|t| t.next_close <= watermark(t.high_water, lateness))
            .collect();
        if !due.iter().any(|d| *d) {
            return;
        }
        let mut next_close: Vec<i64> = self.tenants.iter().map(|t| t.next_close).collect();
        for (i, d) in due.iter().enumerate() {
            if *d {
                next_close[i] = i64::MAX;
            }
        }
        let wms: Vec<i64> = self
            .tenants
            .iter()
            .map(|t| watermark(t.high_water, lateness))
            .collect();
        let resolutions = &self.settings.resolutions;
        let mut gone = Vec::new();
        let slots: Vec<u32> = self.series.slots().collect();
        for at in slots {
            let Some((_, s)) = self.series.get_mut(at) else {
                continue;
            };
            let ti = s.tenant as usize;
            if !due[ti] {
                continue;
            }
            let before = s.windows.len();
            s.windows.retain(|w| {
                debug_assert!(w.partial.is_none(), "partials are drained before eviction");
                let r = resolutions[w.res as usize];
                if is_closed(r, w.start, wms[ti]) {
                    false
                } else {
                    next_close[ti] = next_close[ti].min(r.window_end(w.start).as_nanos());
                    true
                }
            });
            let closed = before - s.windows.len();
            self.open_windows -= closed;
            self.counters.windows_closed += closed as u64;
            if s.windows.is_empty() && s.late.is_empty() && !s.dirty {
                gone.push(at);
            }
        }
        for (t, n) in self.tenants.iter_mut().zip(next_close) {
            t.next_close = n;
        }
        for at in gone {
            if let Some(s) = self.series.remove(at) {
                self.metrics.release(s.metric, s.live);
            }
        }
    }

    /// Raises a tenant's high-water mark (latest event time seen), e.g. from
    /// the value stored with the last flush before a restart, so the new
    /// engine judges lateness like the old one.
    pub fn restore_high_water(&mut self, tenant: &Tenant, t: Timestamp) {
        let i = self.tenant_index(Some(tenant));
        let hw = &mut self.tenants[i].high_water;
        if hw.is_none_or(|h| t > h) {
            *hw = Some(t);
        }
    }

    /// The running totals.
    pub fn counters(&self) -> AggregatorCounters {
        self.counters
    }

    /// Windows held in memory.
    pub fn open_windows(&self) -> usize {
        self.open_windows
    }

    /// Series held in memory.
    pub fn series_count(&self) -> usize {
        self.series.len()
    }

    /// Metrics whose samples were rejected by the cardinality limit, most
    /// rejections first, at most `limit`.
    pub fn cardinality_offenders(&self, limit: usize) -> Vec<CardinalityOffender> {
        self.rejected_by_metric
            .top(limit)
            .into_iter()
            .map(|m| CardinalityOffender {
                live_series: self.metrics.live(&m.tenant, &m.metric),
                tenant: m.tenant,
                metric: m.metric,
                rejected_samples: m.count,
            })
            .collect()
    }

    /// Late samples per tenant and metric, most first, at most `limit`.
    pub fn late_by_metric(&self, limit: usize) -> Vec<MetricCount> {
        self.late_by_metric.top(limit)
    }

    /// Number of (tenant, metric) entries tracked for cardinality.
    pub fn metric_count(&self) -> usize {
        self.metrics.len()
    }
}

impl std::fmt::Debug for Aggregator {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.debug_struct("Aggregator")
            .field("resolutions", &self.settings.resolutions)
            .field("series", &self.series.len())
            .field("open_windows", &self.open_windows)
            .field("counters", &self.counters)
            .finish()
    }
}
