//! The head: where small chunks land, and their compaction into full ones.
//!
//! Why: a write with one sample per series (a scrape, a remote_write
//! request) makes one chunk row per series. In `metric_chunks`, keyed
//! series-major for reads, each of those rows lands on a different index
//! page, so a commit of 20,000 one-sample rows dirties ~20,000 pages: the
//! measured cost was ~20 µs per sample on every backend. `metric_head_chunks`
//! has the same columns keyed time-major (`tenant, min_ts, series_id,
//! chunk_id`), so the rows of one write are adjacent and a write appends.
//!
//! [`Store::compact_metric_head`] later reads the head rows older than a
//! cutoff, merges each series' points into full chunks (content-derived ids,
//! as any write) and, in one transaction per group of series, inserts them
//! into `metric_chunks` and deletes exactly the head rows it read (by full
//! key, so a head row written meanwhile is never lost). Reads look in both
//! tables and merge per (series, timestamp) as for overlapping chunks, so a
//! query gives the same answer before, during and after compaction
//! (Prometheus' head block and VictoriaMetrics' small parts follow the same
//! idea).
//!
//! A head chunk spans at most [`HEAD_MAX_SPAN`], which bounds the time-major
//! range a read scans.
//!
//! The delete: when a step fits one transaction, the step's time range is
//! deleted with one statement, but only after the transaction has checked
//! that the range still holds exactly the keys the step read, locking them
//! (`FOR UPDATE` on PostgreSQL and MySQL; on SQLite the transaction already
//! holds the database's write lock after its insert). From that check on,
//! no other compaction can delete those rows and writers only add rows, so
//! the range delete removing exactly as many rows as were read proves it
//! removed exactly those. When the keys differ (another compaction moved
//! some of them) or the count does (a late write landed in the range), the
//! step is redone deleting by key, which never touches a row it did not
//! read. So any number of compactors may run against one database (every
//! scale-out worker runs one): they only repeat work, and the chunks two of
//! them write for the same points merge on read like any overlapping
//! chunks.

use std::collections::BTreeMap;

use killkrill_core::event::{Tenant, Timestamp};
use killkrill_core::storage::metric_chunk::{
    MAX_CHUNK_SAMPLES, SampleChunk, canonical_points, chunk_id,
};
use killkrill_core::storage::sample_codec::{decode_samples, encode_samples};
use killkrill_core::storage::{ErrorKind, SeriesId, StoreError};
use sqlx::{AssertSqlSafe, Row};

use super::write::{CHUNK_ROWS, ChunkRow, HEAD_TABLE, insert_chunk_rows};
use crate::backend::{Backend, Store};
use crate::config::DbType;
use crate::dialect::Dialect;
use crate::error::Context;
use crate::retry::retry;
use crate::with_pool;

/// Chunks with at most this many samples go to the head.
pub const HEAD_MAX_SAMPLES: u32 = 16;

/// Longest span (max_ts − min_ts) of a head chunk: one hour.
pub const HEAD_MAX_SPAN: i64 = 3_600 * killkrill_core::event::NANOS_PER_SEC;

/// Head rows read per compaction step (bounds memory).
const STEP_ROWS: i64 = 200_000;

/// Head keys per DELETE statement (4 binds each).
const DELETE_ROWS: usize = 200;

/// Whether a chunk is written to the head.
pub(crate) fn belongs_in_head(c: &SampleChunk) -> bool {
    c.count <= HEAD_MAX_SAMPLES && c.max_ts.saturating_sub(c.min_ts) <= HEAD_MAX_SPAN
}

/// What a head compaction did.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Default)]
pub struct HeadCompactionReport {
    /// Head rows merged and deleted.
    pub head_chunks: u64,
    /// Full chunks written to `metric_chunks`.
    pub chunks_written: u64,
    /// Samples in them.
    pub samples: u64,
}

/// Head row keys of one series: `(min_ts, chunk_id)`.
type HeadKeys = Vec<(i64, Vec<u8>)>;

/// One series merged: its new chunks and the head rows they replace.
type Moved = (SeriesId, Vec<SampleChunk>, HeadKeys);

/// One compaction step's rows, read and not yet moved (see
/// [`Store::read_head_step`]).
#[doc(hidden)]
pub struct HeadStep {
    rows: Vec<HeadRow>,
    /// Upper bound (exclusive) of the rows' `min_ts`.
    cutoff: i64,
    /// The cutoff of the next step (the same), when this one was full.
    next: Option<Timestamp>,
}

impl HeadStep {
    /// Head rows in the step.
    #[must_use]
    pub fn len(&self) -> usize {
        self.rows.len()
    }

    /// Whether the step holds no rows (never, as returned).
    #[must_use]
    pub fn is_empty(&self) -> bool {
        self.rows.is_empty()
    }
}

/// A head row as read: key and data.
struct HeadRow {
    min_ts: i64,
    series: i64,
    chunk_id: Vec<u8>,
    data: Vec<u8>,
}

impl Store {
    /// Merges the head chunks of `tenant` that start before `before` into
    /// full chunks in `metric_chunks` (see the module docs). Safe to run
    /// concurrently with writes, reads and another compaction.
    ///
    /// # Errors
    /// Backend errors (each group's transaction is retried on its own);
    /// Fatal for a head chunk that does not decode.
    pub async fn compact_metric_head(
        &self,
        tenant: &Tenant,
        before: Timestamp,
    ) -> Result<HeadCompactionReport, StoreError> {
        self.compact_metric_head_in_steps_of(tenant, before, STEP_ROWS)
            .await
    }

    /// [`Store::compact_metric_head`] in steps of at most `step_rows` rows.
    async fn compact_metric_head_in_steps_of(
        &self,
        tenant: &Tenant,
        before: Timestamp,
        step_rows: i64,
    ) -> Result<HeadCompactionReport, StoreError> {
        let mut rep = HeadCompactionReport::default();
        let mut cutoff = before;
        // Each step deletes the rows it read, so the next one reads on;
        // a step that starts where the previous one did made no progress.
        let mut first: Option<(i64, i64, Vec<u8>)> = None;
        while let Some(step) = self.read_head_step_of(tenant, cutoff, step_rows).await? {
            let head = step
                .rows
                .first()
                .map(|r| (r.min_ts, r.series, r.chunk_id.clone()));
            if head.is_some() && head == first {
                tracing::warn!(%tenant, "metric head compaction made no progress; stopping this pass");
                break;
            }
            first = head;
            let next = step.next;
            let done = self.apply_head_step(tenant, step).await?;
            rep.head_chunks += done.head_chunks;
            rep.chunks_written += done.chunks_written;
            rep.samples += done.samples;
            metrics::counter!("killkrill_store_metric_head_chunks_compacted_total")
                .increment(done.head_chunks);
            match next {
                Some(n) => cutoff = n,
                None => break,
            }
        }
        Ok(rep)
    }

    /// The first phase of one compaction step: reads up to [`STEP_ROWS`]
    /// head rows of `tenant` older than `before` (None when there are
    /// none). [`Store::compact_metric_head`] runs the steps; the two
    /// phases are public so that tests can interleave other writers and
    /// compactions between them.
    ///
    /// # Errors
    /// Backend errors, after retries.
    #[doc(hidden)]
    pub async fn read_head_step(
        &self,
        tenant: &Tenant,
        before: Timestamp,
    ) -> Result<Option<HeadStep>, StoreError> {
        self.read_head_step_of(tenant, before, STEP_ROWS).await
    }

    /// [`Store::read_head_step`] with steps of at most `step_rows` rows.
    async fn read_head_step_of(
        &self,
        tenant: &Tenant,
        before: Timestamp,
        step_rows: i64,
    ) -> Result<Option<HeadStep>, StoreError> {
        let cutoff = before.as_nanos();
        let rows = retry(&self.cfg.retry, "compact_metric_head", || {
            self.read_head(tenant, cutoff, step_rows)
        })
        .await?;
        if rows.is_empty() {
            return Ok(None);
        }
        let full = rows.len() as i64 == step_rows;
        let last = rows.last().map_or(cutoff, |r| r.min_ts);
        if full && rows.first().is_some_and(|r| r.min_ts == last) {
            // Every row of the step starts at one min_ts (a write of more
            // series than a step holds, at one timestamp): take them as
            // they are, with the range up to and including that min_ts
            // (rows of it beyond the step make the range check fail, so
            // they are deleted by key); the next step reads on from the
            // rest of that min_ts.
            return Ok(Some(HeadStep {
                rows,
                cutoff: last.saturating_add(1).min(cutoff),
                next: Some(before),
            }));
        }
        // A full step may cut a min_ts in two: leave its rows for the next
        // step, which reads on from there (the step's own rows are deleted
        // when it is applied).
        let next_cutoff = if full { last } else { cutoff };
        let rows: Vec<HeadRow> = if full {
            rows.into_iter()
                .filter(|r| r.min_ts < next_cutoff)
                .collect()
        } else {
            rows
        };
        Ok(Some(HeadStep {
            rows,
            cutoff: cutoff.min(next_cutoff),
            next: full.then_some(before),
        }))
    }

    /// The second phase of a compaction step read by
    /// [`Store::read_head_step`]: merges its rows and moves them.
    ///
    /// # Errors
    /// Backend errors (each group's transaction is retried on its own);
    /// Fatal for a head chunk that does not decode.
    #[doc(hidden)]
    pub async fn apply_head_step(
        &self,
        tenant: &Tenant,
        step: HeadStep,
    ) -> Result<HeadCompactionReport, StoreError> {
        self.compact_rows(tenant, step.rows, step.cutoff).await
    }

    /// Up to `limit` head rows of `tenant` with `min_ts < cutoff`, oldest first.
    async fn read_head(
        &self,
        tenant: &Tenant,
        cutoff: i64,
        limit: i64,
    ) -> Result<Vec<HeadRow>, StoreError> {
        let sql = self.dialect.sql(&format!(
            "SELECT min_ts, series_id, chunk_id, data FROM {HEAD_TABLE} WHERE tenant = ? AND min_ts < ? ORDER BY min_ts LIMIT {limit}"
        ));
        Ok(with_pool!(&self.backend, pool => {
            let rows = sqlx::query(AssertSqlSafe(sql))
                .bind(tenant.as_str())
                .bind(cutoff)
                .fetch_all(pool)
                .await
                .ctx("reading the metric head")?;
            let mut out = Vec::with_capacity(rows.len());
            for r in rows {
                out.push(HeadRow {
                    min_ts: r.try_get(0).ctx("reading the metric head")?,
                    series: r.try_get(1).ctx("reading the metric head")?,
                    chunk_id: r.try_get(2).ctx("reading the metric head")?,
                    data: r.try_get(3).ctx("reading the metric head")?,
                });
            }
            out
        }))
    }

    /// Merges `rows` per series and moves them, one transaction per group
    /// of series under the transaction byte limit.
    async fn compact_rows(
        &self,
        tenant: &Tenant,
        rows: Vec<HeadRow>,
        cutoff: i64,
    ) -> Result<HeadCompactionReport, StoreError> {
        let lo = rows.iter().map(|r| r.min_ts).min().unwrap_or(cutoff);
        let expected = rows.len() as u64;
        let mut by_series: BTreeMap<i64, (Vec<(i64, f64)>, HeadKeys)> = BTreeMap::new();
        for r in rows {
            let e = by_series.entry(r.series).or_default();
            decode_samples(&r.data, &mut e.0).map_err(|e| {
                StoreError::with_source(
                    ErrorKind::Fatal,
                    format!("stored head chunk of tenant {tenant} is damaged"),
                    e,
                )
            })?;
            e.1.push((r.min_ts, r.chunk_id));
        }
        let mut rep = HeadCompactionReport::default();
        let limit = self.tx_byte_limit();
        let mut group: Vec<Moved> = Vec::new();
        let mut bytes = 0usize;
        let mut split = false;
        for (series, (mut points, keys)) in by_series {
            canonical_points(&mut points);
            let id = SeriesId::from_i64(series);
            rep.samples += points.len() as u64;
            rep.head_chunks += keys.len() as u64;
            let chunks: Vec<SampleChunk> = points
                .chunks(MAX_CHUNK_SAMPLES)
                .map(|c| {
                    let data = encode_samples(c);
                    SampleChunk {
                        id: chunk_id(tenant, id, &data),
                        min_ts: c[0].0,
                        max_ts: c[c.len() - 1].0,
                        count: c.len() as u32,
                        data,
                    }
                })
                .collect();
            rep.chunks_written += chunks.len() as u64;
            bytes += chunks.iter().map(|c| c.data.len() + 64).sum::<usize>();
            group.push((id, chunks, keys));
            if bytes >= limit {
                self.move_group(tenant, &group, None).await?;
                group.clear();
                bytes = 0;
                split = true;
            }
        }
        if group.is_empty() {
            return Ok(rep);
        }
        // All in one transaction: delete the step's time range at once and
        // check that it held exactly the rows read (a late write into the
        // range meanwhile makes the count differ: then by key).
        if split
            || !self
                .move_group(tenant, &group, Some((lo, cutoff, expected)))
                .await?
        {
            self.move_group(tenant, &group, None).await?;
        }
        Ok(rep)
    }

    /// Moves `group`; with `range = (lo, hi, n)` deletes the head rows with
    /// `lo <= min_ts < hi` and commits only if they were exactly `n`
    /// (returns false, nothing changed, otherwise); by key without.
    async fn move_group(
        &self,
        tenant: &Tenant,
        group: &[Moved],
        range: Option<(i64, i64, u64)>,
    ) -> Result<bool, StoreError> {
        let chunks: Vec<ChunkRow<'_>> = group
            .iter()
            .flat_map(|(id, cs, _)| {
                cs.iter().map(|c| ChunkRow {
                    series: *id,
                    chunk: c,
                })
            })
            .collect();
        let keys: Vec<(i64, i64, &[u8])> = group
            .iter()
            .flat_map(|(id, _, ks)| ks.iter().map(|(m, k)| (*m, id.as_i64(), &k[..])))
            .collect();
        retry(&self.cfg.retry, "compact_metric_head", || {
            self.move_tx(tenant, &chunks, &keys, range)
        })
        .await
    }

    /// Inserts the merged chunks and deletes the head rows they came from.
    async fn move_tx(
        &self,
        tenant: &Tenant,
        chunks: &[ChunkRow<'_>],
        keys: &[(i64, i64, &[u8])],
        range: Option<(i64, i64, u64)>,
    ) -> Result<bool, StoreError> {
        let t = tenant.as_str();
        macro_rules! delete_keys {
            ($tx:expr) => {{
                if let Some((lo, hi, n)) = range {
                    // The range must still hold exactly the rows read (and
                    // they are locked from here on): otherwise by key.
                    let lock = if self.dialect.0 == DbType::Sqlite { "" } else { " FOR UPDATE" };
                    let sql = self.dialect.sql(&format!(
                        "SELECT min_ts, series_id, chunk_id FROM {HEAD_TABLE} WHERE tenant = ? AND min_ts >= ? AND min_ts < ?{lock}"
                    ));
                    let rows = sqlx::query(AssertSqlSafe(sql))
                        .bind(t)
                        .bind(lo)
                        .bind(hi)
                        .fetch_all(&mut *$tx)
                        .await
                        .ctx("checking the head rows of a compaction")?;
                    let mut held = Vec::with_capacity(rows.len());
                    for r in &rows {
                        held.push((
                            r.try_get::<i64, _>(0).ctx("checking the head rows of a compaction")?,
                            r.try_get::<i64, _>(1).ctx("checking the head rows of a compaction")?,
                            r.try_get::<Vec<u8>, _>(2).ctx("checking the head rows of a compaction")?,
                        ));
                    }
                    if !same_keys(keys, &mut held) {
                        $tx.rollback().await.ctx("rolling back a head compaction")?;
                        return Ok(false);
                    }
                    let sql = self.dialect.sql(&format!(
                        "DELETE FROM {HEAD_TABLE} WHERE tenant = ? AND min_ts >= ? AND min_ts < ?"
                    ));
                    let done = sqlx::query(AssertSqlSafe(sql))
                        .bind(t)
                        .bind(lo)
                        .bind(hi)
                        .execute(&mut *$tx)
                        .await
                        .ctx("deleting compacted head chunks")?
                        .rows_affected();
                    if done != n {
                        $tx.rollback().await.ctx("rolling back a head compaction")?;
                        return Ok(false);
                    }
                }
                for part in keys.chunks(DELETE_ROWS).filter(|_| range.is_none()) {
                    let sql = self.dialect.sql(&format!(
                        "DELETE FROM {HEAD_TABLE} WHERE tenant = ? AND (min_ts, series_id, chunk_id) IN ({})",
                        vec![Dialect::tuple(3); part.len()].join(", ")
                    ));
                    let mut q = sqlx::query(AssertSqlSafe(sql)).bind(t);
                    for (m, s, k) in part {
                        q = q.bind(*m).bind(*s).bind(*k);
                    }
                    q.execute(&mut *$tx).await.ctx("deleting compacted head chunks")?;
                }
            }};
        }
        match &self.backend {
            Backend::Postgres(p) => {
                let mut tx = p.begin().await.ctx("beginning a head compaction")?;
                super::write::pg_insert_chunks(&mut tx, "metric_chunks", t, chunks).await?;
                delete_keys!(tx);
                tx.commit().await.ctx("committing a head compaction")?;
            }
            Backend::MySql(p) => {
                let mut tx = p.begin().await.ctx("beginning a head compaction")?;
                insert_chunk_rows!(self, tx, "metric_chunks", t, chunks);
                delete_keys!(tx);
                tx.commit().await.ctx("committing a head compaction")?;
            }
            Backend::Sqlite { writer, .. } => {
                let mut tx = writer.begin().await.ctx("beginning a head compaction")?;
                insert_chunk_rows!(self, tx, "metric_chunks", t, chunks);
                delete_keys!(tx);
                tx.commit().await.ctx("committing a head compaction")?;
            }
        }
        Ok(true)
    }
}

/// Whether `held` (the keys found in a step's range, any order) are exactly
/// `read` (the keys the step read and merged).
fn same_keys(read: &[(i64, i64, &[u8])], held: &mut [(i64, i64, Vec<u8>)]) -> bool {
    if read.len() != held.len() {
        return false;
    }
    let mut read: Vec<(i64, i64, &[u8])> = read.to_vec();
    read.sort_unstable();
    held.sort_unstable();
    read.iter()
        .zip(held.iter())
        .all(|(a, b)| a.0 == b.0 && a.1 == b.1 && a.2 == &b.2[..])
}

#[cfg(test)]
mod tests {
    #![allow(clippy::unwrap_used)]

    use killkrill_core::event::{Labels, MetricSample, NANOS_PER_SEC};
    use killkrill_core::storage::{MetricStore, TimeRange};

    use super::*;
    use crate::config::StoreConfig;

    /// A step full of rows that all start at one timestamp (more series
    /// written at one instant than a step holds) is compacted, not skipped
    /// for ever; so are the rows of that timestamp beyond the step.
    #[tokio::test(flavor = "multi_thread", worker_threads = 2)]
    async fn a_step_of_one_timestamp_is_compacted() {
        let dir = tempfile::tempdir().unwrap();
        let store = Store::open(StoreConfig::sqlite(dir.path())).await.unwrap();
        let t = Tenant::new("wide").unwrap();
        let t0 = 1_764_000_000 * NANOS_PER_SEC;
        let write = |ts: i64| -> Vec<MetricSample> {
            (0..12)
                .map(|s| MetricSample {
                    name: "up".into(),
                    labels: Labels::from_pairs([("inst", format!("i{s:02}").as_str())]),
                    value: f64::from(s),
                    timestamp: Some(Timestamp::from_nanos(ts)),
                    ..MetricSample::default()
                })
                .collect()
        };
        store.write_samples(&t, &write(t0)).await.unwrap();
        store
            .write_samples(&t, &write(t0 + 15 * NANOS_PER_SEC))
            .await
            .unwrap();
        let before = store.select_samples(&t, &[], TimeRange::ALL).await.unwrap();
        let r = store
            .compact_metric_head_in_steps_of(&t, Timestamp::MAX, 5)
            .await
            .unwrap();
        assert_eq!(r.head_chunks, 24);
        let left: i64 = with_pool!(&store.backend, pool => {
            sqlx::query_scalar(AssertSqlSafe(format!("SELECT count(*) FROM {HEAD_TABLE}")))
                .fetch_one(pool)
                .await
                .unwrap()
        });
        assert_eq!(left, 0);
        let after = store.select_samples(&t, &[], TimeRange::ALL).await.unwrap();
        assert_eq!(after, before);
        assert!(after.iter().all(|s| s.points.len() == 2));
    }
}
