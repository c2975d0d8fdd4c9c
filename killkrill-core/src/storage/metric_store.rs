//! The metric store trait: samples, series and rollups in; series, points,
//! rollups and label names/values out.
//!
//! Shapes the PromQL evaluator relies on (kept deliberately plain):
//! - [`MetricStore::select_series`] returns [`SeriesInfo`] (id, name, labels,
//!   first and last sample time), sorted by `(name, labels)`;
//! - [`MetricStore::select_samples`] returns [`Series`] with `points:
//!   Vec<(ts_ns, f64)>` strictly increasing in time, only points inside the
//!   half-open range, only series with at least one such point, sorted by
//!   `(name, labels)`. Values are raw: NaN staleness markers and ±Inf come
//!   back bit for bit;
//! - [`MetricStore::label_names`] / [`MetricStore::label_values`] return
//!   sorted, unique strings; `__name__` is a label name like any other.
//!
//! A series is "in" a range when `[first_seen, last_seen]` overlaps it,
//! where first/last seen are the smallest and largest *sample* timestamps
//! ever written for it (not wall-clock times), widened to whole hours
//! ([`SEEN_GRANULARITY`]). The widening is what keeps steady ingest cheap:
//! a series row changes at most once per hour instead of on every write
//! (Prometheus' own index is even coarser: two-hour blocks).
//!
//! Writes are idempotent: a sample is identified by (tenant, series, ts),
//! rewriting the same samples in any batching changes no query result, and
//! rewriting the same batch stores nothing new. When different values were
//! written for one timestamp, reads return the greatest in IEEE total order
//! (so the answer never depends on arrival order).

use async_trait::async_trait;

use super::{LabelMatcher, StoreError, TimeRange, matches_all};
use crate::aggregate::{BatchId, PartialRollup, Resolution, Rollup};
use crate::event::{Labels, MetricMetadata, MetricSample, MetricText, Tenant, Timestamp};

/// Stable id of a series within a tenant: xxh3-64 of the metric name and the
/// sorted labels (see [`series_id`]). The same on every machine and version.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Hash, PartialOrd, Ord)]
pub struct SeriesId(pub u64);

impl SeriesId {
    /// As stored in a signed 64-bit SQL column (bit-for-bit).
    pub fn as_i64(self) -> i64 {
        self.0 as i64
    }

    /// From a signed 64-bit SQL column.
    pub fn from_i64(v: i64) -> Self {
        SeriesId(v as u64)
    }
}

/// The series id of `name` + `labels`: xxh3-64 over
/// `name 0xFF (label_name 0xFE label_value 0xFF)*` with labels in name order
/// (a [`Labels`] is always sorted). `0xFE`/`0xFF` never occur in UTF-8, so
/// different series cannot produce the same byte string.
pub fn series_id(name: &str, labels: &Labels) -> SeriesId {
    let mut h = xxhash_rust::xxh3::Xxh3Default::new();
    h.update(name.as_bytes());
    h.update(&[0xFF]);
    for l in labels.iter() {
        h.update(l.name.as_bytes());
        h.update(&[0xFE]);
        h.update(l.value.as_bytes());
        h.update(&[0xFF]);
    }
    SeriesId(h.digest())
}

/// Granularity of [`SeriesInfo::first_seen`] / [`SeriesInfo::last_seen`]:
/// one hour, in nanoseconds.
pub const SEEN_GRANULARITY: i64 = 3_600 * crate::event::NANOS_PER_SEC;

/// `[first_seen, last_seen]` of samples from `min` to `max` (ns): `min`
/// floored and `max` ceiled to [`SEEN_GRANULARITY`] (end inclusive).
pub fn seen_bounds(min: i64, max: i64) -> (Timestamp, Timestamp) {
    let g = SEEN_GRANULARITY;
    let lo = min - min.rem_euclid(g);
    let hi = (max - max.rem_euclid(g)).saturating_add(g - 1);
    (Timestamp::from_nanos(lo), Timestamp::from_nanos(hi))
}

/// Longest metric name accepted, in bytes (the same on every backend).
pub const MAX_METRIC_NAME_LEN: usize = 1024;

/// A series as the index knows it.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct SeriesInfo {
    /// Its id.
    pub id: SeriesId,
    /// Metric name.
    pub name: MetricText,
    /// Labels (without `__name__`).
    pub labels: Labels,
    /// Smallest sample timestamp written, floored to the hour.
    pub first_seen: Timestamp,
    /// Largest sample timestamp written, ceiled to the hour (inclusive:
    /// `hh:59:59.999999999`).
    pub last_seen: Timestamp,
}

/// A series with its points in a range.
#[derive(Debug, Clone, PartialEq)]
pub struct Series {
    /// Its id.
    pub id: SeriesId,
    /// Metric name.
    pub name: MetricText,
    /// Labels (without `__name__`).
    pub labels: Labels,
    /// `(timestamp ns, value)`, strictly increasing timestamps.
    pub points: Vec<(i64, f64)>,
}

/// The rollups of one series at one resolution.
#[derive(Debug, Clone, PartialEq)]
pub struct SeriesRollups {
    /// Its id.
    pub id: SeriesId,
    /// Metric name.
    pub name: MetricText,
    /// Labels.
    pub labels: Labels,
    /// `(window start, rollup)` in window order; every stored partial of a
    /// window (every flush, on-time and late) merged exactly.
    pub windows: Vec<(Timestamp, Rollup)>,
}

/// What a metric write did.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Default)]
pub struct MetricWriteReport {
    /// Samples in the call (after removing exact duplicates within it).
    pub samples: u64,
    /// Distinct series in the call.
    pub series: usize,
    /// Chunks stored by this call.
    pub chunks_written: usize,
    /// Chunks skipped because the same chunk was stored before (a rewrite).
    pub chunks_skipped: usize,
}

/// One aggregator flush as the pipeline stores it: the partials under the
/// flush key, and a ledger entry for every batch folded into them.
#[derive(Debug, Clone, Copy)]
pub struct RollupFlush<'a> {
    /// The key the partials are stored under ([`crate::aggregate::Flush::key`]).
    pub key: BatchId,
    /// Every batch aggregated into `partials` (recorded in the ledger).
    pub batches: &'a [BatchId],
    /// The tenant's high-water mark after the flush (latest event time).
    pub high_water: Option<Timestamp>,
    /// The partial rollups.
    pub partials: &'a [PartialRollup],
}

/// What [`MetricStore::write_rollup_flush`] did.
#[derive(Debug, Clone, PartialEq, Eq)]
pub enum RollupFlushOutcome {
    /// The partials and the ledger entries were committed together.
    Written {
        /// Rollup rows written.
        rows: usize,
    },
    /// Some batches were already in the ledger (an earlier delivery stored
    /// their rollups): nothing was written. Aggregate the others again
    /// without them.
    AlreadyRecorded(Vec<BatchId>),
}

/// Keeps the series that match every matcher and overlap `range`, sorted by
/// (name, labels): the one filter the in-memory model and the SQL stores
/// share (the SQL narrows by tenant, name and time first).
pub fn select_matching(
    series: impl IntoIterator<Item = SeriesInfo>,
    matchers: &[LabelMatcher],
    range: TimeRange,
) -> Vec<SeriesInfo> {
    if range.is_empty() {
        return Vec::new();
    }
    let mut out: Vec<SeriesInfo> = series
        .into_iter()
        .filter(|s| {
            range.overlaps(s.first_seen, s.last_seen) && matches_all(matchers, &s.name, &s.labels)
        })
        .collect();
    out.sort_by(|a, b| (a.name.as_str(), &a.labels).cmp(&(b.name.as_str(), &b.labels)));
    out
}

/// Longest metadata family name, help text or unit accepted, in bytes.
pub const MAX_METADATA_TEXT_LEN: usize = 4096;

/// Checks metadata for [`MetricStore::write_metadata`] and keeps the last
/// entry of each family, sorted by family.
///
/// # Errors
/// Invalid naming the first bad entry.
pub fn prepare_metadata(metadata: &[MetricMetadata]) -> Result<Vec<MetricMetadata>, StoreError> {
    let mut by_family: std::collections::BTreeMap<&str, &MetricMetadata> =
        std::collections::BTreeMap::new();
    for (i, m) in metadata.iter().enumerate() {
        if m.family.is_empty() {
            return Err(StoreError::invalid(format!(
                "metadata entry {i}: empty family name"
            )));
        }
        let long = [Some(&m.family), m.help.as_ref(), m.unit.as_ref()]
            .into_iter()
            .flatten()
            .any(|t| t.len() > MAX_METADATA_TEXT_LEN);
        if long {
            return Err(StoreError::invalid(format!(
                "metadata entry {i} ({}): a text is longer than {MAX_METADATA_TEXT_LEN} bytes",
                m.family.chars().take(64).collect::<String>()
            )));
        }
        by_family.insert(&m.family, m);
    }
    Ok(by_family.into_values().cloned().collect())
}

/// What metric retention deleted.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Default)]
pub struct MetricRetentionReport {
    /// Sample chunks deleted.
    pub chunks: u64,
    /// Rollup rows (partials) deleted.
    pub rollups: u64,
    /// Series deleted from the index.
    pub series: u64,
}

/// Durable storage of metric samples and rollups for many tenants.
#[async_trait]
pub trait MetricStore: Send + Sync {
    /// Stores samples of `tenant` (idempotent, see the module docs).
    /// Samples may carry `tenant: None` or the same tenant.
    ///
    /// # Errors
    /// [`ErrorKind::Invalid`](super::ErrorKind::Invalid) naming the first bad
    /// sample (no timestamp, empty name, another tenant); nothing is stored
    /// then. Backend errors otherwise: a big call is split into several
    /// transactions (writeset limits), so a failed call may have stored
    /// some of its series; retrying the whole call is safe (idempotent).
    async fn write_samples(
        &self,
        tenant: &Tenant,
        samples: &[MetricSample],
    ) -> Result<MetricWriteReport, StoreError>;

    /// [`write_samples`](Self::write_samples) of the concatenation of
    /// `parts` (the batches of a worker group), in one call so that the
    /// samples of a series from several parts share chunks. `ids` is empty
    /// or gives, per part, the [`series_id`] of each sample (see
    /// [`prepare_sample_parts`](super::metric_chunk::prepare_sample_parts)).
    /// The default joins the parts into one vector; the SQL store reads
    /// them in place and uses the ids instead of hashing again.
    ///
    /// # Errors
    /// As [`write_samples`](Self::write_samples).
    async fn write_sample_parts(
        &self,
        tenant: &Tenant,
        parts: &[&[MetricSample]],
        ids: &[&[SeriesId]],
    ) -> Result<MetricWriteReport, StoreError> {
        let _ = ids;
        match parts {
            [one] => self.write_samples(tenant, one).await,
            _ => {
                let joined: Vec<MetricSample> =
                    parts.iter().flat_map(|p| p.iter().cloned()).collect();
                self.write_samples(tenant, &joined).await
            }
        }
    }

    /// Stores the partial rollups of one aggregator flush under its key
    /// ([`crate::aggregate::Flush::key`]), replacing what an earlier
    /// delivery of the same flush stored: rewriting gives the same result.
    /// The partials' series are added to the index.
    ///
    /// # Errors
    /// Invalid when a partial belongs to another tenant; backend errors.
    async fn write_rollups(
        &self,
        tenant: &Tenant,
        flush: BatchId,
        partials: &[PartialRollup],
    ) -> Result<usize, StoreError>;

    /// Stores one aggregator flush exactly once per batch: in one
    /// transaction, records every batch of `flush` in the tenant's rollup
    /// ledger and stores the partials under `flush.key` (as
    /// [`write_rollups`](Self::write_rollups)). When a batch is already in
    /// the ledger (a redelivery whose rollups were stored before), nothing
    /// is written and the recorded batches are returned, so the caller
    /// aggregates the rest again without them: every batch counts once
    /// however deliveries are grouped, redelivered or raced by two workers.
    ///
    /// # Errors
    /// As [`write_rollups`](Self::write_rollups).
    async fn write_rollup_flush(
        &self,
        tenant: &Tenant,
        flush: RollupFlush<'_>,
    ) -> Result<RollupFlushOutcome, StoreError>;

    /// The greatest high-water mark stored with a flush of `tenant`, so a
    /// restarted aggregator judges lateness as the old one did.
    ///
    /// # Errors
    /// Backend errors.
    async fn rollup_high_water(&self, tenant: &Tenant) -> Result<Option<Timestamp>, StoreError>;

    /// Stores metric family metadata of `tenant` (type, help, unit),
    /// replacing what an earlier write said about the same family; the
    /// last entry of a family in `metadata` wins. Idempotent. Returns the
    /// families written.
    ///
    /// # Errors
    /// Invalid for an empty family or a text over
    /// [`MAX_METADATA_TEXT_LEN`]; backend errors.
    async fn write_metadata(
        &self,
        tenant: &Tenant,
        metadata: &[MetricMetadata],
    ) -> Result<usize, StoreError>;

    /// Stored metadata of `tenant`, sorted by family; only `family` when
    /// given.
    ///
    /// # Errors
    /// Backend errors; Fatal for a stored type that does not parse.
    async fn select_metadata(
        &self,
        tenant: &Tenant,
        family: Option<&str>,
    ) -> Result<Vec<MetricMetadata>, StoreError>;

    /// Series of `tenant` matching every matcher whose
    /// `[first_seen, last_seen]` overlaps `range`, sorted by (name, labels).
    ///
    /// # Errors
    /// Backend errors; Fatal for a stored series that does not decode.
    async fn select_series(
        &self,
        tenant: &Tenant,
        matchers: &[LabelMatcher],
        range: TimeRange,
    ) -> Result<Vec<SeriesInfo>, StoreError>;

    /// Points in `range` of the matching series (see the module docs).
    ///
    /// # Errors
    /// Backend errors; Fatal for a chunk that does not decode.
    async fn select_samples(
        &self,
        tenant: &Tenant,
        matchers: &[LabelMatcher],
        range: TimeRange,
    ) -> Result<Vec<Series>, StoreError>;

    /// Merged rollups at `resolution` whose window start lies in `range`, of
    /// the matching series; series without such a window are left out.
    ///
    /// # Errors
    /// Backend errors; Fatal for a rollup that does not decode or partials
    /// that cannot merge (different sketch settings).
    async fn select_rollups(
        &self,
        tenant: &Tenant,
        matchers: &[LabelMatcher],
        resolution: Resolution,
        range: TimeRange,
    ) -> Result<Vec<SeriesRollups>, StoreError>;

    /// Label names (including `__name__`) of the matching series, sorted.
    ///
    /// # Errors
    /// As [`select_series`](Self::select_series).
    async fn label_names(
        &self,
        tenant: &Tenant,
        matchers: &[LabelMatcher],
        range: TimeRange,
    ) -> Result<Vec<String>, StoreError> {
        let mut out: Vec<String> = Vec::new();
        for s in self.select_series(tenant, matchers, range).await? {
            out.extend(s.labels.iter().map(|l| l.name.to_string()));
            out.push("__name__".to_owned());
        }
        out.sort_unstable();
        out.dedup();
        Ok(out)
    }

    /// Values of label `name` (`__name__`: metric names) of the matching
    /// series, sorted; series without the label contribute nothing.
    ///
    /// # Errors
    /// As [`select_series`](Self::select_series).
    async fn label_values(
        &self,
        tenant: &Tenant,
        name: &str,
        matchers: &[LabelMatcher],
        range: TimeRange,
    ) -> Result<Vec<String>, StoreError> {
        let mut out: Vec<String> = Vec::new();
        for s in self.select_series(tenant, matchers, range).await? {
            if name == "__name__" {
                out.push(s.name.to_string());
            } else if let Some(v) = s.labels.get(name) {
                out.push(v.to_owned());
            }
        }
        out.sort_unstable();
        out.dedup();
        Ok(out)
    }

    /// Retention for `tenant`: deletes sample chunks whose newest sample is
    /// older than `cutoff`, rollups whose window ended at or before it, and
    /// series last seen before it.
    ///
    /// Chunks are deleted whole, so a sample older than `cutoff` can survive
    /// in a chunk that also holds newer ones (as log blocks do).
    ///
    /// # Errors
    /// Backend errors.
    async fn apply_retention(
        &self,
        tenant: &Tenant,
        cutoff: Timestamp,
    ) -> Result<MetricRetentionReport, StoreError>;

    /// Every tenant with at least one series (for background retention).
    ///
    /// # Errors
    /// Backend errors.
    async fn metric_tenants(&self) -> Result<Vec<Tenant>, StoreError>;
}
