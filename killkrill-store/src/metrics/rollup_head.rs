//! The rollup head: where aggregator flushes append their partials, and
//! their merge into `metric_rollups`.
//!
//! Why: a flush holds one partial per (series, resolution, window) it
//! touched — 400 series × 4 resolutions = 1,600 rows in the load
//! benchmark. `metric_rollups` is keyed series-major for reads, so every
//! such row lands next to the same series' earlier partials: a flush
//! dirtied about one page per series and resolution, and rollups were three
//! quarters of the bytes the metric store wrote. `metric_rollup_head` has
//! the same columns keyed flush-first (`tenant, flush_key, series_id, ...`),
//! so a flush's rows are one contiguous run: it appends a few pages.
//!
//! [`Store::write_rollup_flush`](killkrill_core::storage::MetricStore::write_rollup_flush)
//! writes the ledger rows and the partials to the head in one transaction
//! (exactly once per batch, as before). Every [`ROLLUP_HEAD_FLUSHES`]
//! flushes of a tenant the store merges that tenant's head
//! ([`Store::compact_rollup_head`]): it reads the rows of up to
//! [`COMPACT_FLUSHES`] whole flushes within the transaction byte limit, a
//! flush at a time (on the pool for reads, outside any
//! write transaction), merges the partials of each (series, resolution,
//! window, late) into one on a blocking thread (the merge is exact in any
//! order), then in one transaction deletes those flushes' rows and upserts
//! the merged rows into `metric_rollups` under one new key (a hash of the
//! merged flush keys). A flush's rows are committed together and never
//! added to later, so the rows read are all of those flushes' rows unless
//! another compactor deleted some meanwhile: the delete must remove exactly
//! the rows read, and when it does not, the transaction is rolled back, so
//! a partial is never in both tables nor merged twice. Only the delete and
//! the upsert hold the writer (SQLite's single connection), and the flush
//! that triggers a compaction does not wait for it (it runs on a task of
//! its own). Reads use both tables and merge per window as before, so a
//! query gives the same answer before, during and after a compaction.
//! `metric_rollups` gets one row per window per compaction instead of one
//! per flush. The service's maintenance pass also compacts every tenant
//! listed by [`Store::rollup_head_tenants`], so an idle tenant's last
//! flushes do not wait in the head for a 16th.

use std::collections::{BTreeMap, HashMap};
use std::sync::{Mutex, PoisonError};

use killkrill_core::aggregate::Rollup;
use killkrill_core::event::Tenant;
use killkrill_core::storage::{ErrorKind, SeriesId, StoreError};
use sqlx::{AssertSqlSafe, Row};

use super::write::{ROLLUP_HEAD_TABLE, ROLLUP_ROWS, RollupRow, upsert_rollup_rows};
use crate::backend::Store;
use crate::dialect::Dialect;
use crate::error::Context;
use crate::retry::retry;

/// A tenant's head is merged after this many flushes written to it.
pub const ROLLUP_HEAD_FLUSHES: u32 = 16;

/// Most flushes merged by one compaction (bounds its memory and
/// transaction; more than [`ROLLUP_HEAD_FLUSHES`], so the head drains).
pub const COMPACT_FLUSHES: usize = 64;

/// Head compactions committed.
pub const ROLLUP_HEAD_COMPACTIONS: &str = "killkrill_store_metric_rollup_head_compactions_total";
/// Head rows merged into `metric_rollups` by compactions.
pub const ROLLUP_HEAD_ROWS_MERGED: &str = "killkrill_store_metric_rollup_head_rows_merged_total";
/// Head compactions that failed or were rolled back (retried at the next
/// trigger; the head stays readable meanwhile).
pub const ROLLUP_HEAD_COMPACTION_ERRORS: &str =
    "killkrill_store_metric_rollup_head_compaction_errors_total";

/// What one head compaction did.
#[derive(Debug, Clone, Copy, Default, PartialEq, Eq)]
pub struct RollupHeadCompaction {
    /// Flushes whose partials were merged.
    pub flushes: usize,
    /// Head rows read and deleted.
    pub head_rows: usize,
    /// Rows upserted into `metric_rollups`.
    pub merged_rows: usize,
}

/// Flushes written to the head per tenant since its last compaction, and
/// the compaction running in the background.
#[derive(Debug, Default)]
pub(crate) struct RollupHeadCounts {
    counts: Mutex<HashMap<Tenant, u32>>,
    running: Mutex<Option<tokio::task::JoinHandle<()>>>,
}

impl RollupHeadCounts {
    /// Counts a flush of `tenant`; true when its head is due for a
    /// compaction. The count restarts only when one is started, so a
    /// trigger skipped while another compaction runs is tried again at the
    /// tenant's next flush.
    pub(crate) fn flushed(&self, tenant: &Tenant) -> bool {
        let mut m = self.counts.lock().unwrap_or_else(PoisonError::into_inner);
        let n = m.entry(tenant.clone()).or_insert(0);
        *n = n.saturating_add(1);
        *n >= ROLLUP_HEAD_FLUSHES
    }

    /// A compaction of `tenant`'s head was started: its count restarts.
    fn started(&self, tenant: &Tenant) {
        let mut m = self.counts.lock().unwrap_or_else(PoisonError::into_inner);
        m.insert(tenant.clone(), 0);
    }
}

/// A head row: flush key, series, resolution, window start, late, window
/// end, data.
type HeadRow = (Vec<u8>, i64, i64, i64, bool, i64, Vec<u8>);

impl Store {
    /// Merges up to [`COMPACT_FLUSHES`] flushes of `tenant`'s rollup head
    /// into `metric_rollups` (see the module docs). Safe to run from any
    /// number of processes at once.
    ///
    /// # Errors
    /// Backend errors; [`ErrorKind::Conflict`] when another compaction took
    /// some of the rows (nothing was changed); [`ErrorKind::Fatal`] for a
    /// damaged partial.
    pub async fn compact_rollup_head(
        &self,
        tenant: &Tenant,
    ) -> Result<RollupHeadCompaction, StoreError> {
        let rep = retry(&self.cfg.retry, "compact_rollup_head", || {
            self.rollup_head_tx(tenant)
        })
        .await?;
        if rep.flushes > 0 {
            metrics::counter!(ROLLUP_HEAD_COMPACTIONS).increment(1);
            metrics::counter!(ROLLUP_HEAD_ROWS_MERGED).increment(rep.head_rows as u64);
        }
        Ok(rep)
    }

    /// Counts a flush written to the head and, when the tenant's head is
    /// due, starts its compaction on a task of its own (none is started
    /// while one runs; the tenant's next flush tries again, and the
    /// maintenance pass also compacts). The flush does not wait: a compaction of 16 flushes' partials
    /// took seconds, and the worker's acknowledgements waited for it. A
    /// failed compaction is logged and counted, not returned (the flush is
    /// committed; the next trigger tries again). Without a Tokio runtime
    /// the compaction runs in place.
    pub(super) async fn after_head_flush(&self, tenant: &Tenant) {
        if !self.rollup_head.flushed(tenant) {
            return;
        }
        let Ok(rt) = tokio::runtime::Handle::try_current() else {
            self.rollup_head.started(tenant);
            self.compact_logged(tenant.clone()).await;
            return;
        };
        let mut running = self
            .rollup_head
            .running
            .lock()
            .unwrap_or_else(PoisonError::into_inner);
        if running.as_ref().is_some_and(|h| !h.is_finished()) {
            return;
        }
        self.rollup_head.started(tenant);
        let store = self.clone();
        let tenant = tenant.clone();
        *running = Some(rt.spawn(async move { store.compact_logged(tenant).await }));
    }

    async fn compact_logged(&self, tenant: Tenant) {
        if let Err(e) = self.compact_rollup_head(&tenant).await {
            metrics::counter!(ROLLUP_HEAD_COMPACTION_ERRORS).increment(1);
            tracing::warn!(%tenant, error = %e, "rollup head compaction failed; retried later");
        }
    }

    /// Waits for the rollup head compaction running in the background, if
    /// any (tests, and a shutdown that wants the head merged).
    pub async fn rollup_head_settled(&self) {
        let handle = self
            .rollup_head
            .running
            .lock()
            .unwrap_or_else(PoisonError::into_inner)
            .take();
        if let Some(h) = handle
            && let Err(e) = h.await
        {
            // A panicked compaction changed nothing (its transaction was
            // never committed); the next trigger tries again.
            metrics::counter!(ROLLUP_HEAD_COMPACTION_ERRORS).increment(1);
            tracing::warn!(error = %e, "rollup head compaction did not finish");
        }
    }

    async fn rollup_head_tx(&self, tenant: &Tenant) -> Result<RollupHeadCompaction, StoreError> {
        let t = tenant.as_str();
        // Read and merge outside the write transaction (on SQLite, on a
        // reader connection), so the single writer is held only for the
        // delete and the upsert: reading and merging 16 flushes' rows took
        // most of a compaction, and every other write waited for it. Safe
        // because a flush's rows commit together and are never added to
        // later; the delete below must remove exactly the rows read.
        let (keys, rows) = self.read_rollup_head(t, self.tx_byte_limit()).await?;
        if keys.is_empty() {
            return Ok(RollupHeadCompaction::default());
        }
        let head_rows = rows.len();
        let owned_tenant = tenant.clone();
        let (keys, merged) = tokio::task::spawn_blocking(move || {
            let merged = merge_head(&owned_tenant, &keys, rows.iter())?;
            Ok::<_, StoreError>((keys, merged))
        })
        .await
        .map_err(|e| {
            // Cancelled: the runtime is shutting down; nothing was changed.
            let kind = if e.is_panic() {
                ErrorKind::Fatal
            } else {
                ErrorKind::Retryable
            };
            StoreError::new(
                kind,
                format!("merging the rollup head of tenant {tenant} did not finish: {e}"),
            )
        })??;
        Ok(crate::with_writer!(&self.backend, pool => {
            let mut tx = pool.begin().await.ctx("beginning a rollup head compaction")?;
            let mut deleted = 0u64;
            for part in keys.chunks(ROLLUP_ROWS) {
                let sql = self.dialect.sql(&format!(
                    "DELETE FROM {ROLLUP_HEAD_TABLE} WHERE tenant = ? AND flush_key IN {}",
                    Dialect::tuple(part.len())
                ));
                let mut q = sqlx::query(AssertSqlSafe(sql)).bind(t);
                for k in part {
                    q = q.bind(&k[..]);
                }
                deleted += q
                    .execute(&mut *tx)
                    .await
                    .ctx("deleting merged rollup head rows")?
                    .rows_affected();
            }
            if deleted != head_rows as u64 {
                tx.rollback().await.ctx("rolling back a rollup head compaction")?;
                return Err(StoreError::new(
                    ErrorKind::Conflict,
                    "another compaction merged part of the rollup head; nothing changed",
                ));
            }
            upsert_rollup_rows!(self, tx, "metric_rollups", t, merged);
            tx.commit().await.ctx("committing a rollup head compaction")?;
            RollupHeadCompaction {
                flushes: keys.len(),
                head_rows,
                merged_rows: merged.len(),
            }
        }))
    }

    /// The first flushes of `tenant`'s head in key order (at most
    /// [`COMPACT_FLUSHES`]) whose rows together hold at most `limit` bytes
    /// (at least one flush), and their rows, read on the pool for reads.
    /// Read a flush at a time, so what is held is the limit plus one flush (and
    /// the driver's copy of that flush's rows): read all at once, every
    /// row was held twice, the driver's and these, before the limit cut.
    async fn read_rollup_head(
        &self,
        t: &str,
        limit: usize,
    ) -> Result<(Vec<Vec<u8>>, Vec<HeadRow>), StoreError> {
        let keys_sql = self.dialect.sql(&format!(
            "SELECT DISTINCT flush_key FROM {ROLLUP_HEAD_TABLE} WHERE tenant = ? ORDER BY flush_key LIMIT {COMPACT_FLUSHES}"
        ));
        let rows_sql = self.dialect.sql(&format!(
            "SELECT flush_key, series_id, resolution_ns, window_start, late, window_end, data FROM {ROLLUP_HEAD_TABLE} WHERE tenant = ? AND flush_key = ?"
        ));
        Ok(crate::with_pool!(&self.backend, pool => {
            let mut keys: Vec<Vec<u8>> = Vec::new();
            for r in sqlx::query(AssertSqlSafe(keys_sql))
                .bind(t)
                .fetch_all(pool)
                .await
                .ctx("reading the rollup head")?
            {
                keys.push(r.try_get(0).ctx("reading the rollup head")?);
            }
            keys.sort_unstable();
            let mut taken = Taken::default();
            for key in keys {
                let mut rows: Vec<HeadRow> = Vec::new();
                for r in sqlx::query(AssertSqlSafe(rows_sql.clone()))
                    .bind(t)
                    .bind(&key[..])
                    .fetch_all(pool)
                    .await
                    .ctx("reading the rollup head")?
                {
                    let late: i16 = r.try_get(4).ctx("reading the rollup head")?;
                    rows.push((
                        r.try_get(0).ctx("reading the rollup head")?,
                        r.try_get(1).ctx("reading the rollup head")?,
                        r.try_get(2).ctx("reading the rollup head")?,
                        r.try_get(3).ctx("reading the rollup head")?,
                        late != 0,
                        r.try_get(5).ctx("reading the rollup head")?,
                        r.try_get(6).ctx("reading the rollup head")?,
                    ));
                }
                if !taken.offer(key, rows, limit) {
                    break;
                }
            }
            (taken.keys, taken.rows)
        }))
    }
}

/// The whole flushes a compaction takes, in key order, while their rows
/// hold at most a byte limit (data plus 64 bytes a row); always the first.
#[derive(Default)]
struct Taken {
    keys: Vec<Vec<u8>>,
    rows: Vec<HeadRow>,
    bytes: usize,
}

impl Taken {
    /// Takes `key`'s `rows` if they fit; false (and not taken) once they
    /// do not: the compaction stops there.
    fn offer(&mut self, key: Vec<u8>, rows: Vec<HeadRow>, limit: usize) -> bool {
        let bytes: usize = rows.iter().map(|r| r.6.len() + 64).sum();
        if !self.keys.is_empty() && self.bytes + bytes > limit {
            return false;
        }
        self.bytes += bytes;
        self.keys.push(key);
        self.rows.extend(rows);
        true
    }
}

/// One row per (series, resolution, window, late) of `rows`, under a key
/// derived from the merged flush `keys`, in key order.
fn merge_head<'a>(
    tenant: &Tenant,
    keys: &[Vec<u8>],
    rows: impl Iterator<Item = &'a HeadRow>,
) -> Result<Vec<RollupRow>, StoreError> {
    let damaged = |e: &dyn std::fmt::Display| {
        StoreError::new(
            ErrorKind::Fatal,
            format!("stored rollup head row of tenant {tenant} is damaged: {e}"),
        )
    };
    let mut h = xxhash_rust::xxh3::Xxh3Default::new();
    h.update(b"rollup-head");
    for k in keys {
        h.update(k);
    }
    let key = h.digest128().to_be_bytes();
    let mut windows: BTreeMap<(i64, i64, i64, bool), (i64, Rollup)> = BTreeMap::new();
    for (_, series, res, ws, late, we, data) in rows {
        let r = Rollup::from_bytes(data).map_err(|e| damaged(&e))?;
        match windows.get_mut(&(*series, *res, *ws, *late)) {
            Some((_, acc)) => acc.merge(&r).map_err(|e| damaged(&e))?,
            None => {
                windows.insert((*series, *res, *ws, *late), (*we, r));
            }
        }
    }
    Ok(windows
        .into_iter()
        .map(
            |((series, resolution, window_start, late), (window_end, r))| RollupRow {
                series: SeriesId::from_i64(series),
                resolution,
                window_start,
                late,
                flush_key: key,
                window_end,
                data: r.to_bytes(),
            },
        )
        .collect())
}

#[cfg(test)]
mod tests {
    use super::*;

    fn row(key: u8, bytes: usize) -> HeadRow {
        (vec![key], 1, 10, 0, false, 10, vec![0; bytes])
    }

    #[test]
    fn a_skipped_trigger_is_tried_again_at_the_next_flush() {
        let c = RollupHeadCounts::default();
        let (a, b) = (Tenant::new("a").unwrap(), Tenant::new("b").unwrap());
        for _ in 1..ROLLUP_HEAD_FLUSHES {
            assert!(!c.flushed(&a));
        }
        assert!(c.flushed(&a));
        // Not started (another compaction ran): still due.
        assert!(c.flushed(&a));
        assert!(!c.flushed(&b));
        c.started(&a);
        assert!(!c.flushed(&a));
    }

    #[test]
    fn a_compaction_takes_whole_flushes_up_to_the_limit() {
        let flushes = || {
            vec![
                (1, vec![row(1, 100), row(1, 100)]),
                (2, vec![row(2, 100)]),
                (3, vec![row(3, 100)]),
            ]
        };
        let take = |limit: usize| {
            let mut t = Taken::default();
            for (k, rows) in flushes() {
                if !t.offer(vec![k], rows, limit) {
                    break;
                }
            }
            (t.keys, t.rows.len(), t.bytes)
        };
        // Everything fits.
        assert_eq!(take(10_000), (vec![vec![1], vec![2], vec![3]], 4, 656));
        // Flush 1 (2 rows, 328 bytes) fits, flush 2 would not.
        assert_eq!(take(400), (vec![vec![1]], 2, 328));
        // A flush bigger than the limit still goes alone.
        assert_eq!(take(10), (vec![vec![1]], 2, 328));
    }
}
