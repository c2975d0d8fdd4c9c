//! Reading series, chunks and rollups.
//!
//! The SQL narrows by tenant, metric name (when a matcher says `__name__ =`)
//! and time; label matchers, chunk decoding and the merge of overlapping
//! chunks run here in Rust, the same as over the in-memory model.

use std::collections::{BTreeMap, HashMap};

use killkrill_core::aggregate::BatchId;
use killkrill_core::aggregate::Resolution;
use killkrill_core::event::{Labels, MetricMetadata, MetricType, Tenant, Timestamp};
use killkrill_core::storage::metric_chunk::canonical_points;
use killkrill_core::storage::sample_codec::decode_samples;
use killkrill_core::storage::{
    ErrorKind, LabelMatcher, SeriesId, SeriesInfo, StoreError, TimeRange, select_matching,
};
use sqlx::{AssertSqlSafe, Row};

use super::head::HEAD_MAX_SPAN;
use super::write::{HEAD_TABLE, ROLLUP_HEAD_TABLE};
use crate::backend::Store;
use crate::dialect::Dialect;
use crate::error::Context;
use crate::with_pool;

/// Series ids per chunk or rollup SELECT.
const IDS_PER_SELECT: usize = 500;

fn corrupt(
    tenant: &Tenant,
    what: &str,
    e: impl Into<Box<dyn std::error::Error + Send + Sync>>,
) -> StoreError {
    StoreError::with_source(
        ErrorKind::Fatal,
        format!("stored {what} of tenant {tenant} is damaged"),
        e,
    )
}

/// Parses the labels column.
pub(crate) fn parse_labels(json: &str) -> Result<Labels, serde_json::Error> {
    let m: BTreeMap<String, String> = serde_json::from_str(json)?;
    Ok(Labels::from_pairs(m))
}

/// A raw rollup row: series, window start, late, flush key, data.
pub(super) type RawRollup = (SeriesId, i64, bool, Vec<u8>, Vec<u8>);

impl Store {
    /// Series of `tenant` overlapping `range` and matching `matchers`,
    /// sorted by (name, labels).
    pub(super) async fn read_series(
        &self,
        tenant: &Tenant,
        matchers: &[LabelMatcher],
        range: TimeRange,
    ) -> Result<Vec<SeriesInfo>, StoreError> {
        if range.is_empty() {
            return Ok(Vec::new());
        }
        let name = matchers.iter().find_map(LabelMatcher::exact_name);
        let sql = self.dialect.sql(&format!(
            "SELECT series_id, name, labels, first_seen, last_seen FROM metric_series WHERE tenant = ? AND last_seen >= ? AND first_seen < ?{}",
            if name.is_some() { " AND name = ?" } else { "" }
        ));
        let rows: Vec<(i64, String, String, i64, i64)> = with_pool!(&self.backend, pool => {
            let mut q = sqlx::query(AssertSqlSafe(sql))
                .bind(tenant.as_str())
                .bind(range.start.as_nanos())
                .bind(range.end.as_nanos());
            if let Some(n) = name {
                q = q.bind(n);
            }
            let rows = q.fetch_all(pool).await.ctx("listing metric series")?;
            let mut out = Vec::with_capacity(rows.len());
            for r in rows {
                out.push((
                    r.try_get(0).ctx("reading a metric series")?,
                    r.try_get(1).ctx("reading a metric series")?,
                    r.try_get(2).ctx("reading a metric series")?,
                    r.try_get(3).ctx("reading a metric series")?,
                    r.try_get(4).ctx("reading a metric series")?,
                ));
            }
            out
        });
        let mut out = Vec::with_capacity(rows.len());
        for (id, name, labels, first, last) in rows {
            let labels = parse_labels(&labels).map_err(|e| corrupt(tenant, "series labels", e))?;
            out.push(SeriesInfo {
                id: SeriesId::from_i64(id),
                name: name.into(),
                labels,
                first_seen: Timestamp::from_nanos(first),
                last_seen: Timestamp::from_nanos(last),
            });
        }
        Ok(select_matching(out, matchers, range))
    }

    /// The points in `range` of each series, canonical (sorted, one per
    /// timestamp); series without points are absent.
    pub(super) async fn read_points(
        &self,
        tenant: &Tenant,
        ids: &[SeriesId],
        range: TimeRange,
    ) -> Result<HashMap<SeriesId, Vec<(i64, f64)>>, StoreError> {
        let mut out: HashMap<SeriesId, Vec<(i64, f64)>> = HashMap::new();
        if range.is_empty() {
            return Ok(out);
        }
        for part in ids.chunks(IDS_PER_SELECT) {
            // Full chunks, then the head (time-major: its min_ts is bounded
            // from below too, by the longest span a head chunk may have).
            for (table, what, min_start) in [
                ("metric_chunks", "sample chunk", i64::MIN),
                (
                    HEAD_TABLE,
                    "head chunk",
                    range.start.as_nanos().saturating_sub(HEAD_MAX_SPAN),
                ),
            ] {
                for (id, data) in self
                    .chunk_data(tenant, table, part, range, min_start)
                    .await?
                {
                    let pts = out.entry(SeriesId::from_i64(id)).or_default();
                    decode_samples(&data, pts).map_err(|e| corrupt(tenant, what, e))?;
                }
            }
        }
        let (lo, hi) = (range.start.as_nanos(), range.end.as_nanos());
        for pts in out.values_mut() {
            pts.retain(|(t, _)| lo <= *t && *t < hi);
            canonical_points(pts);
        }
        out.retain(|_, p| !p.is_empty());
        Ok(out)
    }

    /// `(series, data)` of the chunks in `table` of the series `ids` that
    /// overlap `range` and start at or after `min_start`.
    async fn chunk_data(
        &self,
        tenant: &Tenant,
        table: &str,
        ids: &[SeriesId],
        range: TimeRange,
        min_start: i64,
    ) -> Result<Vec<(i64, Vec<u8>)>, StoreError> {
        let sql = self.dialect.sql(&format!(
            "SELECT series_id, data FROM {table} WHERE tenant = ? AND min_ts < ? AND min_ts >= ? AND max_ts >= ? AND series_id IN {}",
            Dialect::tuple(ids.len())
        ));
        Ok(with_pool!(&self.backend, pool => {
            let mut q = sqlx::query(AssertSqlSafe(sql))
                .bind(tenant.as_str())
                .bind(range.end.as_nanos())
                .bind(min_start)
                .bind(range.start.as_nanos());
            for id in ids {
                q = q.bind(id.as_i64());
            }
            let rows = q.fetch_all(pool).await.ctx("reading metric chunks")?;
            let mut v = Vec::with_capacity(rows.len());
            for r in rows {
                v.push((
                    r.try_get(0).ctx("reading a metric chunk")?,
                    r.try_get(1).ctx("reading a metric chunk")?,
                ));
            }
            v
        }))
    }

    /// Raw rollup rows of the series at `resolution` with window start in
    /// `range`, sorted by (series, window start, late, flush key).
    pub(super) async fn read_rollups(
        &self,
        tenant: &Tenant,
        ids: &[SeriesId],
        resolution: Resolution,
        range: TimeRange,
    ) -> Result<Vec<RawRollup>, StoreError> {
        let mut out: Vec<RawRollup> = Vec::new();
        if range.is_empty() {
            return Ok(out);
        }
        // Merged rows and the head's (not merged yet) alike: the caller
        // merges every partial of a window. Both tables in one statement
        // (one snapshot): read apart, a compaction committing in between
        // moved a partial from the head into a merged row after the head
        // was read and before the merged rows were, and it was counted
        // twice. Different id chunks hold different series, so a
        // compaction between chunks changes nothing either of them reads.
        for part in ids.chunks(IDS_PER_SELECT) {
            let one = |table: &str| {
                format!(
                    "SELECT series_id, window_start, late, flush_key, data FROM {table} WHERE tenant = ? AND resolution_ns = ? AND window_start >= ? AND window_start < ? AND series_id IN {}",
                    Dialect::tuple(part.len())
                )
            };
            let sql = self.dialect.sql(&format!(
                "{} UNION ALL {}",
                one(ROLLUP_HEAD_TABLE),
                one("metric_rollups")
            ));
            with_pool!(&self.backend, pool => {
                let mut q = sqlx::query(AssertSqlSafe(sql));
                for _ in 0..2 {
                    q = q
                        .bind(tenant.as_str())
                        .bind(resolution.as_nanos())
                        .bind(range.start.as_nanos())
                        .bind(range.end.as_nanos());
                    for id in part {
                        q = q.bind(id.as_i64());
                    }
                }
                let rows = q.fetch_all(pool).await.ctx("reading metric rollups")?;
                for r in rows {
                    let id: i64 = r.try_get(0).ctx("reading a metric rollup")?;
                    let ws: i64 = r.try_get(1).ctx("reading a metric rollup")?;
                    let late: i16 = r.try_get(2).ctx("reading a metric rollup")?;
                    let key: Vec<u8> = r.try_get(3).ctx("reading a metric rollup")?;
                    let data: Vec<u8> = r.try_get(4).ctx("reading a metric rollup")?;
                    out.push((SeriesId::from_i64(id), ws, late != 0, key, data));
                }
            });
        }
        out.sort_by(|a, b| (a.0, a.1, a.2, &a.3).cmp(&(b.0, b.1, b.2, &b.3)));
        Ok(out)
    }

    /// The batches of `batches` recorded in the rollup ledger.
    pub(super) async fn recorded_batches(
        &self,
        tenant: &Tenant,
        batches: &[[u8; 16]],
    ) -> Result<Vec<BatchId>, StoreError> {
        let mut out = Vec::new();
        for part in batches.chunks(IDS_PER_SELECT) {
            let sql = self.dialect.sql(&format!(
                "SELECT batch_id FROM metric_rollup_batches WHERE tenant = ? AND batch_id IN {}",
                Dialect::tuple(part.len())
            ));
            with_pool!(&self.backend, pool => {
                let mut q = sqlx::query(AssertSqlSafe(sql)).bind(tenant.as_str());
                for b in part {
                    q = q.bind(&b[..]);
                }
                for r in q.fetch_all(pool).await.ctx("reading the rollup ledger")? {
                    let b: Vec<u8> = r.try_get(0).ctx("reading the rollup ledger")?;
                    let b: [u8; 16] = b
                        .try_into()
                        .map_err(|_| corrupt(tenant, "rollup ledger", "batch id is not 16 bytes"))?;
                    out.push(BatchId(u128::from_be_bytes(b)));
                }
            });
        }
        out.sort_unstable();
        Ok(out)
    }

    /// The greatest high-water mark in the rollup ledger of `tenant`.
    pub(super) async fn ledger_high_water(
        &self,
        tenant: &Tenant,
    ) -> Result<Option<Timestamp>, StoreError> {
        let sql = self
            .dialect
            .sql("SELECT MAX(high_water) FROM metric_rollup_batches WHERE tenant = ?");
        let v: Option<i64> = with_pool!(&self.backend, pool => {
            sqlx::query(AssertSqlSafe(sql))
                .bind(tenant.as_str())
                .fetch_one(pool)
                .await
                .ctx("reading the rollup high-water mark")?
                .try_get(0)
                .ctx("reading the rollup high-water mark")?
        });
        Ok(v.map(Timestamp::from_nanos))
    }

    /// Stored metadata of `tenant` (one family when given), by family.
    pub(super) async fn read_metadata(
        &self,
        tenant: &Tenant,
        family: Option<&str>,
    ) -> Result<Vec<MetricMetadata>, StoreError> {
        let sql = self.dialect.sql(&format!(
            "SELECT family, kind, help, unit FROM metric_metadata WHERE tenant = ?{}",
            if family.is_some() {
                " AND family_hash = ?"
            } else {
                ""
            }
        ));
        let rows: Vec<(String, String, Option<String>, Option<String>)> = with_pool!(&self.backend, pool => {
            let mut q = sqlx::query(AssertSqlSafe(sql)).bind(tenant.as_str());
            if let Some(f) = family {
                q = q.bind(super::write::family_hash(f).to_vec());
            }
            let mut v = Vec::new();
            for r in q.fetch_all(pool).await.ctx("reading metric metadata")? {
                v.push((
                    r.try_get(0).ctx("reading metric metadata")?,
                    r.try_get(1).ctx("reading metric metadata")?,
                    r.try_get(2).ctx("reading metric metadata")?,
                    r.try_get(3).ctx("reading metric metadata")?,
                ));
            }
            v
        });
        let mut out = Vec::with_capacity(rows.len());
        for (family_name, kind, help, unit) in rows {
            if family.is_some_and(|f| f != family_name) {
                continue;
            }
            let kind = MetricType::from_name(&kind).ok_or_else(|| {
                corrupt(tenant, "metadata type", format!("unknown type {kind:?}"))
            })?;
            out.push(MetricMetadata {
                family: family_name,
                kind,
                help,
                unit,
            });
        }
        out.sort_by(|a, b| a.family.cmp(&b.family));
        Ok(out)
    }
}
