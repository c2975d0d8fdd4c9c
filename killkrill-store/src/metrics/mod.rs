//! Metrics in SQL: the [`MetricStore`] implementation.
//!
//! Tables (see `migrations/*/0002_metrics.sql`): `metric_series` (the
//! index: tenant, series id, name, labels as JSON, hour-granular first and
//! last seen), `metric_chunks` (compressed samples, keyed by a
//! content-derived chunk id so a rewrite inserts nothing) and
//! `metric_rollups` (one row per flush partial, upserted). Batching into
//! chunks, the codec, label matching and rollup merging are core's
//! ([`killkrill_core::storage::metric_chunk`]), shared with the in-memory
//! model the suite compares against.
//!
//! Small chunks (a write with a few samples per series: a scrape or a
//! remote_write request) go to the time-major head table first and are
//! merged into full chunks by [`Store::compact_metric_head`] (see
//! [`head`]). Likewise the partials of an aggregator flush go to the
//! flush-major rollup head first and are merged into `metric_rollups`
//! every few flushes (see [`rollup_head`]).

mod head;
mod maintenance;
mod read;
mod rollup_head;
pub(crate) mod series_cache;
mod write;

use std::collections::HashMap;

use async_trait::async_trait;
use killkrill_core::aggregate::{BatchId, PartialRollup, Resolution, Rollup};
use killkrill_core::event::{MetricMetadata, MetricSample, Tenant, Timestamp};
use killkrill_core::storage::metric_chunk::prepare_sample_parts;
use killkrill_core::storage::{
    ErrorKind, LabelMatcher, MetricRetentionReport, MetricStore, MetricWriteReport, RollupFlush,
    RollupFlushOutcome, Series, SeriesId, SeriesInfo, SeriesRollups, StoreError, TimeRange,
    prepare_metadata, seen_bounds, series_id,
};

pub use head::{HEAD_MAX_SAMPLES, HeadCompactionReport, HeadStep};
pub(crate) use rollup_head::RollupHeadCounts;
pub use rollup_head::{
    COMPACT_FLUSHES, ROLLUP_HEAD_COMPACTION_ERRORS, ROLLUP_HEAD_COMPACTIONS, ROLLUP_HEAD_FLUSHES,
    ROLLUP_HEAD_ROWS_MERGED, RollupHeadCompaction,
};

use crate::backend::Store;
use crate::retry::retry;
use write::{ChunkRow, LedgerRows, RollupRow, SeriesRow, labels_json, series_row};

#[async_trait]
impl MetricStore for Store {
    async fn write_samples(
        &self,
        tenant: &Tenant,
        samples: &[MetricSample],
    ) -> Result<MetricWriteReport, StoreError> {
        self.write_sample_parts(tenant, &[samples], &[]).await
    }

    async fn write_sample_parts(
        &self,
        tenant: &Tenant,
        parts: &[&[MetricSample]],
        ids: &[&[SeriesId]],
    ) -> Result<MetricWriteReport, StoreError> {
        let batch = match prepare_sample_parts(tenant, parts, ids) {
            Ok(b) => b,
            Err(e) => {
                metrics::counter!("killkrill_store_metric_batches_rejected_total").increment(1);
                return Err(e);
            }
        };
        let mut rep = MetricWriteReport {
            samples: batch.samples,
            series: batch.series.len(),
            ..MetricWriteReport::default()
        };
        // Transactions of at most `tx_byte_limit` chunk bytes (Galera).
        let limit = self.tx_byte_limit();
        let mut start = 0;
        while start < batch.series.len() {
            let mut end = start;
            let mut bytes = 0usize;
            while end < batch.series.len() && (end == start || bytes < limit) {
                bytes += batch.series[end]
                    .chunks
                    .iter()
                    .map(|c| c.data.len() + 64)
                    .sum::<usize>();
                end += 1;
            }
            let group = &batch.series[start..end];
            let wanted: Vec<(SeriesId, i64, i64)> = group
                .iter()
                .map(|s| {
                    let a = s.points.first().map_or(0, |p| p.0);
                    let b = s.points.last().map_or(a, |p| p.0);
                    let (lo, hi) = seen_bounds(a, b);
                    (s.id, lo.as_nanos(), hi.as_nanos())
                })
                .collect();
            let missing = self.series_cache.missing(tenant, &wanted);
            let mut series: Vec<SeriesRow> = Vec::new();
            for (s, miss) in group.iter().zip(&missing) {
                if *miss {
                    series.push(series_row(s)?);
                }
            }
            let (head, chunks): (Vec<ChunkRow<'_>>, Vec<ChunkRow<'_>>) = group
                .iter()
                .flat_map(|s| {
                    s.chunks.iter().map(|c| ChunkRow {
                        series: s.id,
                        chunk: c,
                    })
                })
                .partition(|c| head::belongs_in_head(c.chunk));
            let inserted = retry(&self.cfg.retry, "write_samples", || {
                self.samples_tx(tenant, &series, &chunks, &head)
            })
            .await? as usize;
            let chunks_len = chunks.len() + head.len();
            let known: Vec<(SeriesId, i64, i64)> =
                series.iter().map(|s| (s.id, s.first, s.last)).collect();
            self.series_cache.record(tenant, &known);
            rep.chunks_written += inserted;
            rep.chunks_skipped += chunks_len.saturating_sub(inserted);
            start = end;
        }
        metrics::counter!("killkrill_store_metric_samples_total").increment(rep.samples);
        metrics::counter!("killkrill_store_metric_chunks_written_total")
            .increment(rep.chunks_written as u64);
        metrics::counter!("killkrill_store_metric_chunks_skipped_total")
            .increment(rep.chunks_skipped as u64);
        Ok(rep)
    }

    async fn write_rollups(
        &self,
        tenant: &Tenant,
        flush: BatchId,
        partials: &[PartialRollup],
    ) -> Result<usize, StoreError> {
        let (series, rows) = rollup_rows(tenant, flush, partials)?;
        let series = self.uncached_series(tenant, series);
        retry(&self.cfg.retry, "write_rollups", || {
            self.rollups_tx(tenant, None, &series, &rows)
        })
        .await?;
        self.cache_series(tenant, &series);
        metrics::counter!("killkrill_store_metric_rollups_written_total")
            .increment(rows.len() as u64);
        Ok(rows.len())
    }

    async fn write_rollup_flush(
        &self,
        tenant: &Tenant,
        flush: RollupFlush<'_>,
    ) -> Result<RollupFlushOutcome, StoreError> {
        let (series, rows) = rollup_rows(tenant, flush.key, flush.partials)?;
        let series = self.uncached_series(tenant, series);
        let mut batches: Vec<[u8; 16]> = flush.batches.iter().map(|b| b.0.to_be_bytes()).collect();
        batches.sort_unstable();
        batches.dedup();
        let ledger = LedgerRows {
            key: flush.key.0.to_be_bytes(),
            batches,
            high_water: flush.high_water.map(Timestamp::as_nanos),
        };
        let fresh = retry(&self.cfg.retry, "write_rollup_flush", || {
            self.rollups_tx(tenant, Some(&ledger), &series, &rows)
        })
        .await?;
        if fresh {
            self.cache_series(tenant, &series);
            metrics::counter!("killkrill_store_metric_rollups_written_total")
                .increment(rows.len() as u64);
            self.after_head_flush(tenant).await;
            return Ok(RollupFlushOutcome::Written { rows: rows.len() });
        }
        let recorded = retry(&self.cfg.retry, "write_rollup_flush", || {
            self.recorded_batches(tenant, &ledger.batches)
        })
        .await?;
        if recorded.is_empty() {
            // Recorded by a transaction that has since been rolled back.
            return Err(StoreError::new(
                ErrorKind::Retryable,
                "a rollup ledger conflict vanished; write the flush again",
            ));
        }
        Ok(RollupFlushOutcome::AlreadyRecorded(recorded))
    }

    async fn rollup_high_water(&self, tenant: &Tenant) -> Result<Option<Timestamp>, StoreError> {
        retry(&self.cfg.retry, "rollup_high_water", || {
            self.ledger_high_water(tenant)
        })
        .await
    }

    async fn write_metadata(
        &self,
        tenant: &Tenant,
        metadata: &[MetricMetadata],
    ) -> Result<usize, StoreError> {
        let rows = prepare_metadata(metadata)?;
        if rows.is_empty() {
            return Ok(0);
        }
        retry(&self.cfg.retry, "write_metadata", || {
            self.metadata_tx(tenant, &rows)
        })
        .await?;
        metrics::counter!("killkrill_store_metric_metadata_written_total")
            .increment(rows.len() as u64);
        Ok(rows.len())
    }

    async fn select_metadata(
        &self,
        tenant: &Tenant,
        family: Option<&str>,
    ) -> Result<Vec<MetricMetadata>, StoreError> {
        retry(&self.cfg.retry, "select_metadata", || {
            self.read_metadata(tenant, family)
        })
        .await
    }

    async fn select_series(
        &self,
        tenant: &Tenant,
        matchers: &[LabelMatcher],
        range: TimeRange,
    ) -> Result<Vec<SeriesInfo>, StoreError> {
        retry(&self.cfg.retry, "select_series", || {
            self.read_series(tenant, matchers, range)
        })
        .await
    }

    async fn select_samples(
        &self,
        tenant: &Tenant,
        matchers: &[LabelMatcher],
        range: TimeRange,
    ) -> Result<Vec<Series>, StoreError> {
        let series = self.select_series(tenant, matchers, range).await?;
        let ids: Vec<SeriesId> = series.iter().map(|s| s.id).collect();
        let mut points = retry(&self.cfg.retry, "select_samples", || {
            self.read_points(tenant, &ids, range)
        })
        .await?;
        Ok(series
            .into_iter()
            .filter_map(|s| {
                points.remove(&s.id).map(|points| Series {
                    id: s.id,
                    name: s.name,
                    labels: s.labels,
                    points,
                })
            })
            .collect())
    }

    async fn select_rollups(
        &self,
        tenant: &Tenant,
        matchers: &[LabelMatcher],
        resolution: Resolution,
        range: TimeRange,
    ) -> Result<Vec<SeriesRollups>, StoreError> {
        let series = self.select_series(tenant, matchers, TimeRange::ALL).await?;
        let ids: Vec<SeriesId> = series.iter().map(|s| s.id).collect();
        let raw = retry(&self.cfg.retry, "select_rollups", || {
            self.read_rollups(tenant, &ids, resolution, range)
        })
        .await?;
        let mut by_series: HashMap<SeriesId, Vec<(Timestamp, Rollup)>> = HashMap::new();
        for (id, ws, _late, _key, data) in raw {
            let r = Rollup::from_bytes(&data).map_err(|e| {
                StoreError::with_source(
                    ErrorKind::Fatal,
                    format!("stored rollup of tenant {tenant} is damaged"),
                    e,
                )
            })?;
            let ws = Timestamp::from_nanos(ws);
            let windows = by_series.entry(id).or_default();
            match windows.last_mut() {
                Some((w, acc)) if *w == ws => acc.merge(&r).map_err(|e| {
                    StoreError::with_source(ErrorKind::Fatal, "merging stored rollups", e)
                })?,
                _ => windows.push((ws, r)),
            }
        }
        Ok(series
            .into_iter()
            .filter_map(|s| {
                by_series.remove(&s.id).map(|windows| SeriesRollups {
                    id: s.id,
                    name: s.name,
                    labels: s.labels,
                    windows,
                })
            })
            .collect())
    }

    async fn apply_retention(
        &self,
        tenant: &Tenant,
        cutoff: Timestamp,
    ) -> Result<MetricRetentionReport, StoreError> {
        let rep = self.metric_retention(tenant, cutoff).await;
        self.series_cache.forget(tenant);
        rep
    }

    async fn metric_tenants(&self) -> Result<Vec<Tenant>, StoreError> {
        retry(&self.cfg.retry, "metric_tenants", || {
            self.metric_tenant_list()
        })
        .await
    }
}

impl Store {
    /// The rows of `series` that the series cache does not cover (the
    /// sample write of the same group usually stored them just before).
    fn uncached_series(&self, tenant: &Tenant, series: Vec<SeriesRow>) -> Vec<SeriesRow> {
        let wanted: Vec<(SeriesId, i64, i64)> =
            series.iter().map(|s| (s.id, s.first, s.last)).collect();
        let missing = self.series_cache.missing(tenant, &wanted);
        series
            .into_iter()
            .zip(missing)
            .filter_map(|(s, m)| m.then_some(s))
            .collect()
    }

    /// Records committed series rows in the cache.
    fn cache_series(&self, tenant: &Tenant, series: &[SeriesRow]) {
        let known: Vec<(SeriesId, i64, i64)> =
            series.iter().map(|s| (s.id, s.first, s.last)).collect();
        self.series_cache.record(tenant, &known);
    }
}

/// The series rows and rollup rows of one flush's partials.
fn rollup_rows(
    tenant: &Tenant,
    flush: BatchId,
    partials: &[PartialRollup],
) -> Result<(Vec<SeriesRow>, Vec<RollupRow>), StoreError> {
    if let Some(p) = partials.iter().find(|p| &p.key.series.tenant != tenant) {
        return Err(StoreError::invalid(format!(
            "a rollup of tenant {} written as tenant {tenant}",
            p.key.series.tenant
        )));
    }
    let mut series: HashMap<SeriesId, SeriesRow> = HashMap::new();
    let mut rows: HashMap<(SeriesId, i64, i64, bool), RollupRow> = HashMap::new();
    for p in partials {
        let k = &p.key;
        let id = series_id(&k.series.name, &k.series.labels);
        let (lo, hi) = seen_bounds(
            p.rollup.first().timestamp.as_nanos(),
            p.rollup.last().timestamp.as_nanos(),
        );
        match series.get_mut(&id) {
            Some(s) => {
                s.first = s.first.min(lo.as_nanos());
                s.last = s.last.max(hi.as_nanos());
            }
            None => {
                series.insert(
                    id,
                    SeriesRow {
                        id,
                        name: k.series.name.to_string(),
                        labels: labels_json(&k.series.labels)?,
                        first: lo.as_nanos(),
                        last: hi.as_nanos(),
                    },
                );
            }
        }
        let ws = k.window_start.as_nanos();
        rows.insert(
            (id, k.resolution.as_nanos(), ws, k.late),
            RollupRow {
                series: id,
                resolution: k.resolution.as_nanos(),
                window_start: ws,
                late: k.late,
                flush_key: flush.0.to_be_bytes(),
                window_end: ws.saturating_add(k.resolution.as_nanos()),
                data: p.rollup.to_bytes(),
            },
        );
    }
    let mut series: Vec<SeriesRow> = series.into_values().collect();
    series.sort_unstable_by_key(|s| s.id);
    let mut rows: Vec<RollupRow> = rows.into_values().collect();
    rows.sort_unstable_by_key(|r| (r.series, r.resolution, r.window_start, r.late));
    Ok((series, rows))
}
