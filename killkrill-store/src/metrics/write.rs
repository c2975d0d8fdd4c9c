//! The metric write transactions: series upserts and chunk inserts, rollup
//! upserts with their ledger rows, metadata upserts.
//!
//! A write is one transaction per group of series (groups keep a
//! transaction under the Galera writeset limit): upsert the series rows the
//! [cache](super::series_cache) does not already cover, then insert the
//! chunks if absent. Rows go in id order, so concurrent writers of
//! overlapping batches take row locks in the same order (no deadlocks). A
//! retried transaction is harmless: chunk ids are content-derived and the
//! series upsert only widens.

use killkrill_core::event::{MetricMetadata, Tenant};
use killkrill_core::storage::metric_chunk::{PreparedSeries, SampleChunk};
use killkrill_core::storage::{SeriesId, StoreError, seen_bounds};
use sqlx::AssertSqlSafe;

use crate::backend::{Backend, Store};
use crate::error::Context;

/// The head table (see [`super::head`]).
pub(crate) const HEAD_TABLE: &str = "metric_head_chunks";
/// The rollup head (see [`super::rollup_head`]).
pub(crate) const ROLLUP_HEAD_TABLE: &str = "metric_rollup_head";

/// Series rows per upsert statement (6 binds each).
const SERIES_ROWS: usize = 500;
/// Chunk rows per insert statement (7 binds each).
pub(crate) const CHUNK_ROWS: usize = 500;
/// Rollup rows per upsert statement (8 binds each).
pub(crate) const ROLLUP_ROWS: usize = 400;
/// Ledger rows per insert statement (4 binds each).
const LEDGER_ROWS: usize = 500;
/// Metadata rows per upsert statement (6 binds each).
const METADATA_ROWS: usize = 500;

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

/// The ledger rows of one flush.
pub(crate) struct LedgerRows {
    pub(crate) key: [u8; 16],
    pub(crate) batches: Vec<[u8; 16]>,
    pub(crate) high_water: Option<i64>,
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

/// Upserts series rows inside `$tx` (both write paths: samples and rollups).
macro_rules! upsert_series_rows {
    ($self:expr, $tx:expr, $tenant:expr, $series:expr) => {{
        let tenant: &str = $tenant;
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
    }};
}

/// Inserts chunk rows into `$table` inside `$tx`; evaluates to the number
/// inserted.
macro_rules! insert_chunk_rows {
    ($self:expr, $tx:expr, $table:expr, $tenant:expr, $chunks:expr) => {{
        let tenant: &str = $tenant;
        let mut inserted = 0u64;
        for part in $chunks.chunks(CHUNK_ROWS) {
            let mut q = sqlx::query(AssertSqlSafe(
                $self.dialect.insert_chunks_into($table, part.len()),
            ));
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

pub(crate) use insert_chunk_rows;

/// Upserts rollup rows into `$table` (`metric_rollups` or the head) inside
/// `$tx`.
macro_rules! upsert_rollup_rows {
    ($self:expr, $tx:expr, $table:expr, $tenant:expr, $rollups:expr) => {{
        let tenant: &str = $tenant;
        for part in $rollups.chunks(ROLLUP_ROWS) {
            let mut q = sqlx::query(AssertSqlSafe(
                $self.dialect.upsert_rollups_into($table, part.len()),
            ));
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

pub(crate) use upsert_rollup_rows;

/// Records the ledger rows, then upserts series and rollup rows, inside
/// `$tx`; evaluates to false (nothing written, rolled back by the caller)
/// when a batch was recorded already.
macro_rules! rollup_tx_body {
    ($self:expr, $tx:expr, $tenant:expr, $ledger:expr, $series:expr, $rollups:expr) => {{
        let tenant: &str = $tenant;
        let mut fresh = true;
        if let Some(l) = $ledger {
            let mut inserted = 0u64;
            for part in l.batches.chunks(LEDGER_ROWS) {
                let mut q = sqlx::query(AssertSqlSafe($self.dialect.insert_ledger(part.len())));
                for b in part {
                    q = q
                        .bind(tenant)
                        .bind(&b[..])
                        .bind(&l.key[..])
                        .bind(l.high_water);
                }
                inserted += q
                    .execute(&mut *$tx)
                    .await
                    .ctx("recording rollup batches")?
                    .rows_affected();
            }
            fresh = inserted == l.batches.len() as u64;
        }
        if fresh {
            upsert_series_rows!($self, $tx, tenant, $series);
            // A flush with its ledger goes to the head (appended); one
            // without (`write_rollups`) straight to `metric_rollups`.
            let table = if $ledger.is_some() {
                ROLLUP_HEAD_TABLE
            } else {
                "metric_rollups"
            };
            upsert_rollup_rows!($self, $tx, table, tenant, $rollups);
        }
        fresh
    }};
}

/// PostgreSQL: all chunk rows in one statement, columns as arrays
/// (`UNNEST`); no bind limit, one parse, measured faster than multi-row
/// VALUES for both small and large writes.
fn pg_insert_chunks_sql(table: &str) -> String {
    format!(
        "INSERT INTO {table} (tenant, series_id, min_ts, chunk_id, max_ts, sample_count, data) \
         SELECT $1, * FROM UNNEST($2::int8[], $3::int8[], $4::bytea[], $5::int8[], $6::int8[], $7::bytea[]) \
         ON CONFLICT (tenant, series_id, min_ts, chunk_id) DO NOTHING"
    )
}

/// PostgreSQL: inserts chunk rows into `table` inside `tx` with arrays.
pub(super) async fn pg_insert_chunks(
    tx: &mut sqlx::PgConnection,
    table: &str,
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
    Ok(sqlx::query(AssertSqlSafe(pg_insert_chunks_sql(table)))
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
    /// One sample write transaction: series rows, full chunks into
    /// `metric_chunks`, small ones into the head; returns the chunks
    /// inserted.
    pub(super) async fn samples_tx(
        &self,
        tenant: &Tenant,
        series: &[SeriesRow],
        chunks: &[ChunkRow<'_>],
        head: &[ChunkRow<'_>],
    ) -> Result<u64, StoreError> {
        let t = tenant.as_str();
        let n = match &self.backend {
            Backend::Postgres(p) => {
                let mut tx = p.begin().await.ctx("beginning a metric write")?;
                upsert_series_rows!(self, tx, t, series);
                let n = pg_insert_chunks(&mut tx, "metric_chunks", t, chunks).await?
                    + pg_insert_chunks(&mut tx, HEAD_TABLE, t, head).await?;
                tx.commit().await.ctx("committing a metric write")?;
                n
            }
            Backend::MySql(p) => {
                let mut tx = p.begin().await.ctx("beginning a metric write")?;
                upsert_series_rows!(self, tx, t, series);
                let n = insert_chunk_rows!(self, tx, "metric_chunks", t, chunks)
                    + insert_chunk_rows!(self, tx, HEAD_TABLE, t, head);
                tx.commit().await.ctx("committing a metric write")?;
                n
            }
            Backend::Sqlite { writer, .. } => {
                let mut tx = writer.begin().await.ctx("beginning a metric write")?;
                upsert_series_rows!(self, tx, t, series);
                let n = insert_chunk_rows!(self, tx, "metric_chunks", t, chunks)
                    + insert_chunk_rows!(self, tx, HEAD_TABLE, t, head);
                tx.commit().await.ctx("committing a metric write")?;
                n
            }
        };
        Ok(n)
    }

    /// One rollup write transaction, with ledger rows when given; false
    /// (and nothing written) when a ledger batch was recorded before.
    pub(super) async fn rollups_tx(
        &self,
        tenant: &Tenant,
        ledger: Option<&LedgerRows>,
        series: &[SeriesRow],
        rollups: &[RollupRow],
    ) -> Result<bool, StoreError> {
        let t = tenant.as_str();
        Ok(crate::with_writer!(&self.backend, pool => {
            let mut tx = pool.begin().await.ctx("beginning a rollup write")?;
            if rollup_tx_body!(self, tx, t, ledger, series, rollups) {
                tx.commit().await.ctx("committing a rollup write")?;
                true
            } else {
                tx.rollback().await.ctx("rolling back a rollup write")?;
                false
            }
        }))
    }

    /// One metadata upsert transaction.
    pub(super) async fn metadata_tx(
        &self,
        tenant: &Tenant,
        rows: &[MetricMetadata],
    ) -> Result<(), StoreError> {
        let t = tenant.as_str();
        crate::with_writer!(&self.backend, pool => {
            let mut tx = pool.begin().await.ctx("beginning a metadata write")?;
            for part in rows.chunks(METADATA_ROWS) {
                let mut q = sqlx::query(AssertSqlSafe(self.dialect.upsert_metadata(part.len())));
                for m in part {
                    q = q
                        .bind(t)
                        .bind(family_hash(&m.family).to_vec())
                        .bind(m.family.as_str())
                        .bind(m.kind.name())
                        .bind(m.help.as_deref())
                        .bind(m.unit.as_deref());
                }
                q.execute(&mut *tx).await.ctx("upserting metric metadata")?;
            }
            tx.commit().await.ctx("committing a metadata write")?;
        });
        Ok(())
    }
}

/// The key of a metadata row: xxh3-128 of the family name.
pub(crate) fn family_hash(family: &str) -> [u8; 16] {
    xxhash_rust::xxh3::xxh3_128(family.as_bytes()).to_be_bytes()
}
