//! The metric write transactions: series upserts and chunk inserts, rollup
//! upserts.
//!
//! A write is one transaction per group of series (groups keep a
//! transaction under the Galera writeset limit): upsert the series rows the
//! [cache](super::series_cache) does not already cover, then insert the
//! chunks if absent. Rows go in id order, so concurrent writers of
//! overlapping batches take row locks in the same order (no deadlocks). A
//! retried transaction is harmless: chunk ids are content-derived and the
//! series upsert only widens.

use killkrill_core::event::Tenant;
use killkrill_core::storage::metric_chunk::{PreparedSeries, SampleChunk};
use killkrill_core::storage::{SeriesId, StoreError, seen_bounds};
use sqlx::AssertSqlSafe;

use crate::backend::{Backend, Store};
use crate::error::Context;

/// Series rows per upsert statement (6 binds each).
const SERIES_ROWS: usize = 500;
/// Chunk rows per insert statement (7 binds each).
const CHUNK_ROWS: usize = 500;
/// Rollup rows per upsert statement (8 binds each).
const ROLLUP_ROWS: usize = 400;

/// A series row to upsert.
pub(crate) struct SeriesRow {
    pub(crate) id: SeriesId,
    pub(crate) name: String,
    pub(crate) labels: String,
    pub(crate) first: i64,
    pub(crate) last: i64,
}

/// A chunk row to insert.
pub(crate) struct ChunkRow<'a> {
    pub(crate) series: SeriesId,
    pub(crate) chunk: &'a SampleChunk,
}

/// A rollup row to upsert.
pub(crate) struct RollupRow {
    pub(crate) series: SeriesId,
    pub(crate) resolution: i64,
    pub(crate) window_start: i64,
    pub(crate) late: bool,
    pub(crate) flush_key: [u8; 16],
    pub(crate) window_end: i64,
    pub(crate) data: Vec<u8>,
}

/// The labels column: a JSON object in name order.
pub(crate) fn labels_json(labels: &killkrill_core::event::Labels) -> Result<String, StoreError> {
    serde_json::to_string(labels).map_err(|e| {
        StoreError::with_source(
            killkrill_core::storage::ErrorKind::Invalid,
            "encoding labels",
            e,
        )
    })
}

/// The series row of a prepared series.
pub(crate) fn series_row(s: &PreparedSeries) -> Result<SeriesRow, StoreError> {
    let (lo, hi) = match (s.points.first(), s.points.last()) {
        (Some(a), Some(b)) => seen_bounds(a.0, b.0),
        _ => seen_bounds(0, 0),
    };
    Ok(SeriesRow {
        id: s.id,
        name: s.name.to_string(),
        labels: labels_json(&s.labels)?,
        first: lo.as_nanos(),
        last: hi.as_nanos(),
    })
}

/// Upserts series rows and inserts chunk rows inside `$tx`; evaluates to
/// the number of chunks inserted.
macro_rules! write_tx_body {
    ($self:expr, $tx:expr, $tenant:expr, $series:expr, $chunks:expr) => {{
        let tenant: &str = $tenant.as_str();
        for part in $series.chunks(SERIES_ROWS) {
            let mut q = sqlx::query(AssertSqlSafe($self.dialect.upsert_series(part.len())));
            for s in part {
                q = q
                    .bind(tenant)
                    .bind(s.id.as_i64())
                    .bind(s.name.as_str())
                    .bind(s.labels.as_str())
                    .bind(s.first)
                    .bind(s.last);
            }
            q.execute(&mut *$tx).await.ctx("upserting metric series")?;
        }
        let mut inserted = 0u64;
        for part in $chunks.chunks(CHUNK_ROWS) {
            let mut q = sqlx::query(AssertSqlSafe($self.dialect.insert_chunks(part.len())));
            for c in part {
                q = q
                    .bind(tenant)
                    .bind(c.series.as_i64())
                    .bind(c.chunk.min_ts)
                    .bind(&c.chunk.id[..])
                    .bind(c.chunk.max_ts)
                    .bind(i64::from(c.chunk.count))
                    .bind(&c.chunk.data[..]);
            }
            inserted += q
                .execute(&mut *$tx)
                .await
                .ctx("inserting metric chunks")?
                .rows_affected();
        }
        inserted
    }};
}

/// Upserts series rows and rollup rows inside `$tx`.
macro_rules! rollup_tx_body {
    ($self:expr, $tx:expr, $tenant:expr, $series:expr, $rollups:expr) => {{
        let tenant: &str = $tenant.as_str();
        for part in $series.chunks(SERIES_ROWS) {
            let mut q = sqlx::query(AssertSqlSafe($self.dialect.upsert_series(part.len())));
            for s in part {
                q = q
                    .bind(tenant)
                    .bind(s.id.as_i64())
                    .bind(s.name.as_str())
                    .bind(s.labels.as_str())
                    .bind(s.first)
                    .bind(s.last);
            }
            q.execute(&mut *$tx).await.ctx("upserting metric series")?;
        }
        for part in $rollups.chunks(ROLLUP_ROWS) {
            let mut q = sqlx::query(AssertSqlSafe($self.dialect.upsert_rollups(part.len())));
            for r in part {
                q = q
                    .bind(tenant)
                    .bind(r.series.as_i64())
                    .bind(r.resolution)
                    .bind(r.window_start)
                    .bind(i16::from(r.late))
                    .bind(&r.flush_key[..])
                    .bind(r.window_end)
                    .bind(&r.data[..]);
            }
            q.execute(&mut *$tx).await.ctx("upserting metric rollups")?;
        }
    }};
}

/// PostgreSQL: all chunk rows in one statement, columns as arrays
/// (`UNNEST`); no bind limit, one parse, measured faster than multi-row
/// VALUES for both small and large writes.
const PG_INSERT_CHUNKS: &str = "INSERT INTO metric_chunks (tenant, series_id, min_ts, chunk_id, max_ts, sample_count, data) \
     SELECT $1, * FROM UNNEST($2::int8[], $3::int8[], $4::bytea[], $5::int8[], $6::int8[], $7::bytea[]) \
     ON CONFLICT (tenant, series_id, min_ts, chunk_id) DO NOTHING";

/// PostgreSQL: inserts chunk rows inside `tx` with arrays.
async fn pg_insert_chunks(
    tx: &mut sqlx::PgConnection,
    tenant: &str,
    chunks: &[ChunkRow<'_>],
) -> Result<u64, StoreError> {
    if chunks.is_empty() {
        return Ok(0);
    }
    let series: Vec<i64> = chunks.iter().map(|c| c.series.as_i64()).collect();
    let min: Vec<i64> = chunks.iter().map(|c| c.chunk.min_ts).collect();
    let ids: Vec<&[u8]> = chunks.iter().map(|c| &c.chunk.id[..]).collect();
    let max: Vec<i64> = chunks.iter().map(|c| c.chunk.max_ts).collect();
    let count: Vec<i64> = chunks.iter().map(|c| i64::from(c.chunk.count)).collect();
    let data: Vec<&[u8]> = chunks.iter().map(|c| &c.chunk.data[..]).collect();
    Ok(sqlx::query(PG_INSERT_CHUNKS)
        .bind(tenant)
        .bind(series)
        .bind(min)
        .bind(ids)
        .bind(max)
        .bind(count)
        .bind(data)
        .execute(tx)
        .await
        .ctx("inserting metric chunks")?
        .rows_affected())
}

impl Store {
    /// One sample write transaction; returns the chunks inserted.
    pub(super) async fn samples_tx(
        &self,
        tenant: &Tenant,
        series: &[SeriesRow],
        chunks: &[ChunkRow<'_>],
    ) -> Result<u64, StoreError> {
        let n = match &self.backend {
            Backend::Postgres(p) => {
                let mut tx = p.begin().await.ctx("beginning a metric write")?;
                let none: &[ChunkRow<'_>] = &[];
                write_tx_body!(self, tx, tenant, series, none);
                let n = pg_insert_chunks(&mut tx, tenant.as_str(), chunks).await?;
                tx.commit().await.ctx("committing a metric write")?;
                n
            }
            Backend::MySql(p) => {
                let mut tx = p.begin().await.ctx("beginning a metric write")?;
                let n = write_tx_body!(self, tx, tenant, series, chunks);
                tx.commit().await.ctx("committing a metric write")?;
                n
            }
            Backend::Sqlite { writer, .. } => {
                let mut tx = writer.begin().await.ctx("beginning a metric write")?;
                let n = write_tx_body!(self, tx, tenant, series, chunks);
                tx.commit().await.ctx("committing a metric write")?;
                n
            }
        };
        Ok(n)
    }

    /// One rollup write transaction.
    pub(super) async fn rollups_tx(
        &self,
        tenant: &Tenant,
        series: &[SeriesRow],
        rollups: &[RollupRow],
    ) -> Result<(), StoreError> {
        match &self.backend {
            Backend::Postgres(p) => {
                let mut tx = p.begin().await.ctx("beginning a rollup write")?;
                rollup_tx_body!(self, tx, tenant, series, rollups);
                tx.commit().await.ctx("committing a rollup write")?;
            }
            Backend::MySql(p) => {
                let mut tx = p.begin().await.ctx("beginning a rollup write")?;
                rollup_tx_body!(self, tx, tenant, series, rollups);
                tx.commit().await.ctx("committing a rollup write")?;
            }
            Backend::Sqlite { writer, .. } => {
                let mut tx = writer.begin().await.ctx("beginning a rollup write")?;
                rollup_tx_body!(self, tx, tenant, series, rollups);
                tx.commit().await.ctx("committing a rollup write")?;
            }
        }
        Ok(())
    }
}
