//! An in-memory [`MetricStore`]: the model the SQL stores are tested
//! against, and a store for embedding without a database.
//!
//! Points live per series in a sorted map (one value per timestamp, the
//! greatest in IEEE total order wins); chunk ids are remembered only to
//! report written/skipped chunks exactly as the SQL stores do. Retention
//! here is exact per sample; the SQL stores drop whole chunks (see
//! [`MetricStore::apply_retention`]).

use std::collections::{BTreeMap, HashMap, HashSet};
use std::sync::Mutex;

use async_trait::async_trait;

use super::label_matcher::matches_all;
use super::metric_chunk::prepare_samples;
use super::metric_store::{
    MetricRetentionReport, MetricStore, MetricWriteReport, RollupFlush, RollupFlushOutcome, Series,
    SeriesId, SeriesInfo, SeriesRollups, prepare_metadata, seen_bounds, select_matching, series_id,
};
use super::{ErrorKind, LabelMatcher, StoreError, TimeRange};
use crate::aggregate::{BatchId, PartialRollup, Resolution, Rollup};
use crate::event::{MetricMetadata, MetricSample, Tenant, Timestamp};

type RollupRow = (SeriesId, i64, i64, bool, u128);

#[derive(Default)]
struct TenantData {
    series: BTreeMap<SeriesId, SeriesInfo>,
    points: HashMap<SeriesId, BTreeMap<i64, f64>>,
    /// Chunk id → newest sample time in it.
    chunks: HashMap<[u8; 16], i64>,
    /// (series, resolution, window start, late, flush) → partial.
    rollups: BTreeMap<RollupRow, Rollup>,
    /// The rollup ledger: batch → high-water mark stored with its flush.
    ledger: HashMap<u128, Option<Timestamp>>,
    /// Family → metadata.
    metadata: BTreeMap<String, MetricMetadata>,
}

/// Metric data in maps behind a mutex.
#[derive(Default)]
pub struct MemoryMetricStore {
    inner: Mutex<BTreeMap<Tenant, TenantData>>,
}

impl MemoryMetricStore {
    /// An empty store.
    pub fn new() -> Self {
        Self::default()
    }

    fn lock(&self) -> Result<std::sync::MutexGuard<'_, BTreeMap<Tenant, TenantData>>, StoreError> {
        self.inner
            .lock()
            .map_err(|_| StoreError::new(ErrorKind::Fatal, "memory metric store mutex poisoned"))
    }
}

fn touch(d: &mut TenantData, info: SeriesInfo) {
    d.series
        .entry(info.id)
        .and_modify(|s| {
            s.first_seen = s.first_seen.min(info.first_seen);
            s.last_seen = s.last_seen.max(info.last_seen);
        })
        .or_insert(info);
}

fn matching(d: &TenantData, matchers: &[LabelMatcher], range: TimeRange) -> Vec<SeriesInfo> {
    select_matching(d.series.values().cloned(), matchers, range)
}

fn check_rollup_tenant(tenant: &Tenant, partials: &[PartialRollup]) -> Result<(), StoreError> {
    match partials.iter().find(|p| &p.key.series.tenant != tenant) {
        Some(p) => Err(StoreError::invalid(format!(
            "a rollup of tenant {} written as tenant {tenant}",
            p.key.series.tenant
        ))),
        None => Ok(()),
    }
}

fn put_rollups(d: &mut TenantData, flush: BatchId, partials: &[PartialRollup]) {
    for p in partials {
        let k = &p.key;
        let id = series_id(&k.series.name, &k.series.labels);
        touch(
            d,
            SeriesInfo {
                id,
                name: k.series.name.clone(),
                labels: k.series.labels.clone(),
                first_seen: seen_bounds(
                    p.rollup.first().timestamp.as_nanos(),
                    p.rollup.last().timestamp.as_nanos(),
                )
                .0,
                last_seen: seen_bounds(
                    p.rollup.first().timestamp.as_nanos(),
                    p.rollup.last().timestamp.as_nanos(),
                )
                .1,
            },
        );
        d.rollups.insert(
            (
                id,
                k.resolution.as_nanos(),
                k.window_start.as_nanos(),
                k.late,
                flush.0,
            ),
            p.rollup.clone(),
        );
    }
}

fn sorted<T>(mut v: Vec<T>, key: impl Fn(&T) -> (&str, &crate::event::Labels)) -> Vec<T> {
    v.sort_by(|a, b| key(a).cmp(&key(b)));
    v
}

#[async_trait]
impl MetricStore for MemoryMetricStore {
    async fn write_samples(
        &self,
        tenant: &Tenant,
        samples: &[MetricSample],
    ) -> Result<MetricWriteReport, StoreError> {
        let batch = prepare_samples(tenant, samples)?;
        let mut g = self.lock()?;
        let d = g.entry(tenant.clone()).or_default();
        let mut rep = MetricWriteReport {
            samples: batch.samples,
            series: batch.series.len(),
            ..MetricWriteReport::default()
        };
        for s in batch.series {
            for c in &s.chunks {
                if d.chunks.insert(c.id, c.max_ts).is_none() {
                    rep.chunks_written += 1;
                } else {
                    rep.chunks_skipped += 1;
                }
            }
            let (Some(first), Some(last)) = (s.points.first(), s.points.last()) else {
                continue;
            };
            touch(
                d,
                SeriesInfo {
                    id: s.id,
                    name: s.name.clone(),
                    labels: s.labels.clone(),
                    first_seen: seen_bounds(first.0, last.0).0,
                    last_seen: seen_bounds(first.0, last.0).1,
                },
            );
            let pts = d.points.entry(s.id).or_default();
            for (t, v) in s.points {
                pts.entry(t)
                    .and_modify(|old| {
                        if v.total_cmp(old).is_gt() {
                            *old = v;
                        }
                    })
                    .or_insert(v);
            }
        }
        Ok(rep)
    }

    async fn write_rollups(
        &self,
        tenant: &Tenant,
        flush: BatchId,
        partials: &[PartialRollup],
    ) -> Result<usize, StoreError> {
        check_rollup_tenant(tenant, partials)?;
        let mut g = self.lock()?;
        put_rollups(g.entry(tenant.clone()).or_default(), flush, partials);
        Ok(partials.len())
    }

    async fn write_rollup_flush(
        &self,
        tenant: &Tenant,
        flush: RollupFlush<'_>,
    ) -> Result<RollupFlushOutcome, StoreError> {
        check_rollup_tenant(tenant, flush.partials)?;
        let mut g = self.lock()?;
        let d = g.entry(tenant.clone()).or_default();
        let mut recorded: Vec<BatchId> = flush
            .batches
            .iter()
            .filter(|b| d.ledger.contains_key(&b.0))
            .copied()
            .collect();
        if !recorded.is_empty() {
            recorded.sort_unstable();
            recorded.dedup();
            return Ok(RollupFlushOutcome::AlreadyRecorded(recorded));
        }
        for b in flush.batches {
            d.ledger.insert(b.0, flush.high_water);
        }
        put_rollups(d, flush.key, flush.partials);
        Ok(RollupFlushOutcome::Written {
            rows: flush.partials.len(),
        })
    }

    async fn rollup_high_water(&self, tenant: &Tenant) -> Result<Option<Timestamp>, StoreError> {
        let g = self.lock()?;
        Ok(g.get(tenant)
            .and_then(|d| d.ledger.values().copied().flatten().max()))
    }

    async fn write_metadata(
        &self,
        tenant: &Tenant,
        metadata: &[MetricMetadata],
    ) -> Result<usize, StoreError> {
        let m = prepare_metadata(metadata)?;
        let mut g = self.lock()?;
        let d = g.entry(tenant.clone()).or_default();
        let n = m.len();
        for e in m {
            d.metadata.insert(e.family.clone(), e);
        }
        Ok(n)
    }

    async fn select_metadata(
        &self,
        tenant: &Tenant,
        family: Option<&str>,
    ) -> Result<Vec<MetricMetadata>, StoreError> {
        let g = self.lock()?;
        let Some(d) = g.get(tenant) else {
            return Ok(Vec::new());
        };
        Ok(d.metadata
            .values()
            .filter(|m| family.is_none_or(|f| m.family == f))
            .cloned()
            .collect())
    }

    async fn select_series(
        &self,
        tenant: &Tenant,
        matchers: &[LabelMatcher],
        range: TimeRange,
    ) -> Result<Vec<SeriesInfo>, StoreError> {
        let g = self.lock()?;
        let Some(d) = g.get(tenant) else {
            return Ok(Vec::new());
        };
        if range.is_empty() {
            return Ok(Vec::new());
        }
        Ok(matching(d, matchers, range))
    }

    async fn select_samples(
        &self,
        tenant: &Tenant,
        matchers: &[LabelMatcher],
        range: TimeRange,
    ) -> Result<Vec<Series>, StoreError> {
        let g = self.lock()?;
        let Some(d) = g.get(tenant) else {
            return Ok(Vec::new());
        };
        let mut out = Vec::new();
        if range.is_empty() {
            return Ok(out);
        }
        for s in matching(d, matchers, range) {
            let points: Vec<(i64, f64)> = d
                .points
                .get(&s.id)
                .map(|p| {
                    p.range(range.start.as_nanos()..range.end.as_nanos())
                        .map(|(t, v)| (*t, *v))
                        .collect()
                })
                .unwrap_or_default();
            if !points.is_empty() {
                out.push(Series {
                    id: s.id,
                    name: s.name.clone(),
                    labels: s.labels.clone(),
                    points,
                });
            }
        }
        Ok(sorted(out, |s| (s.name.as_str(), &s.labels)))
    }

    async fn select_rollups(
        &self,
        tenant: &Tenant,
        matchers: &[LabelMatcher],
        resolution: Resolution,
        range: TimeRange,
    ) -> Result<Vec<SeriesRollups>, StoreError> {
        let g = self.lock()?;
        let Some(d) = g.get(tenant) else {
            return Ok(Vec::new());
        };
        let mut out = Vec::new();
        for s in d
            .series
            .values()
            .filter(|s| matches_all(matchers, &s.name, &s.labels))
        {
            let mut windows: Vec<(Timestamp, Rollup)> = Vec::new();
            let lo = (s.id, resolution.as_nanos(), i64::MIN, false, 0u128);
            let hi = (s.id, resolution.as_nanos(), i64::MAX, true, u128::MAX);
            for ((_, _, ws, _, _), r) in d.rollups.range(lo..=hi) {
                let ws = Timestamp::from_nanos(*ws);
                if !range.contains(ws) {
                    continue;
                }
                match windows.last_mut() {
                    Some((w, acc)) if *w == ws => acc.merge(r).map_err(|e| {
                        StoreError::with_source(ErrorKind::Fatal, "merging stored rollups", e)
                    })?,
                    _ => windows.push((ws, r.clone())),
                }
            }
            if !windows.is_empty() {
                out.push(SeriesRollups {
                    id: s.id,
                    name: s.name.clone(),
                    labels: s.labels.clone(),
                    windows,
                });
            }
        }
        Ok(sorted(out, |s| (s.name.as_str(), &s.labels)))
    }

    async fn apply_retention(
        &self,
        tenant: &Tenant,
        cutoff: Timestamp,
    ) -> Result<MetricRetentionReport, StoreError> {
        let mut g = self.lock()?;
        let Some(d) = g.get_mut(tenant) else {
            return Ok(MetricRetentionReport::default());
        };
        let c = cutoff.as_nanos();
        let mut rep = MetricRetentionReport::default();
        let before = d.chunks.len();
        d.chunks.retain(|_, max| *max >= c);
        rep.chunks = (before - d.chunks.len()) as u64;
        for p in d.points.values_mut() {
            *p = p.split_off(&c);
        }
        let before = d.rollups.len();
        d.rollups
            .retain(|(_, res, ws, _, _), _| ws.saturating_add(*res) > c);
        rep.rollups = (before - d.rollups.len()) as u64;
        let gone: HashSet<SeriesId> = d
            .series
            .values()
            .filter(|s| s.last_seen < cutoff)
            .map(|s| s.id)
            .collect();
        d.series.retain(|id, _| !gone.contains(id));
        d.points.retain(|id, _| !gone.contains(id));
        rep.series = gone.len() as u64;
        Ok(rep)
    }

    async fn metric_tenants(&self) -> Result<Vec<Tenant>, StoreError> {
        let g = self.lock()?;
        Ok(g.iter()
            .filter(|(_, d)| !d.series.is_empty())
            .map(|(t, _)| t.clone())
            .collect())
    }
}
