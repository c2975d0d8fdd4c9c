//! Keeping the summary index (`summary_index.rs`) in step with the
//! database, by generations.
//!
//! `log_block_gen` holds one row per tenant: `gen`, bumped by every
//! transaction that adds or deletes blocks of the tenant, and
//! `deleted_gen`, the last generation that deleted blocks. A transaction
//! stamps the blocks it adds with its generation (`log_blocks.gen`). The
//! bump is the transaction's last statement before commit and takes the
//! tenant row's lock until then, so generations commit in order (SQLite has
//! one writer anyway): a reader that sees generation `G` sees every block
//! stamped `G` or less and none of the blocks deleted by generation `G` or
//! less.
//!
//! Before answering, a reader looks up `(gen, deleted_gen)` (one indexed
//! point read, shared with concurrent queries of the tenant when it started
//! after the reader asked: `gen_reads.rs`) and compares it with the generation its index is exact for:
//! - equal: nothing changed, answer from memory;
//! - `deleted_gen` newer: blocks went (compaction, retention) — list the
//!   tenant's block ids (ids only), drop the missing, fetch the new;
//! - only `gen` newer: blocks were only added — fetch the rows stamped in
//!   `(cached, gen]`, which gives exactly the state of generation `gen`.
//!
//! Writes of this process are applied to the index right after commit when
//! the index was exactly one generation behind (no round trip).
//!
//! MySQL/MariaDB (Galera) does not keep generations: a per-tenant counter
//! row would be a certification hot spot for writers on different nodes.
//! There the index is off and summaries come from SQL as before.

use std::collections::HashSet;
use std::sync::Arc;

use killkrill_core::event::{Tenant, Timestamp};
use killkrill_core::logblock::{BlockId, BlockSummary};
use killkrill_core::storage::{ErrorKind, StoreError, SummaryPage, SummaryRequest};
use sqlx::{AssertSqlSafe, Row};

use super::read::corrupt;
use super::summary_index::{Entry, Staleness};
use crate::backend::{Backend, Store};
use crate::dialect::Dialect;
use crate::error::Context;
use crate::with_pool;

/// Ids per SELECT or UPDATE.
const IDS_PER_STATEMENT: usize = 256;

/// `logs.index_recheck_ms` on SQLite when unset.
const DEFAULT_SQLITE_RECHECK_MS: u64 = 100;

const SUMMARY_COLS: &str = "block_id, min_ts, max_ts, record_count, summary";

/// Bumps the tenant's generation inside `$tx` (an open transaction),
/// stamps the `$added` block ids with it and evaluates to the generation.
/// `$deleted`: the transaction also deleted blocks.
macro_rules! bump_gen {
    ($self:expr, $tx:expr, $tenant:expr, $added:expr, $deleted:expr) => {{
        let tenant: &str = $tenant;
        let d = $self.dialect;
        sqlx::query(AssertSqlSafe(d.sql(
            "INSERT INTO log_block_gen (tenant, gen, deleted_gen) VALUES (?, 0, 0) ON CONFLICT (tenant) DO NOTHING",
        )))
        .bind(tenant)
        .execute(&mut *$tx)
        .await
        .ctx("creating a block generation")?;
        let bump = if $deleted {
            "UPDATE log_block_gen SET gen = gen + 1, deleted_gen = gen + 1 WHERE tenant = ?"
        } else {
            "UPDATE log_block_gen SET gen = gen + 1 WHERE tenant = ?"
        };
        sqlx::query(AssertSqlSafe(d.sql(bump)))
            .bind(tenant)
            .execute(&mut *$tx)
            .await
            .ctx("bumping the block generation")?;
        let generation: i64 = sqlx::query(AssertSqlSafe(d.sql(
            "SELECT gen FROM log_block_gen WHERE tenant = ?",
        )))
        .bind(tenant)
        .fetch_one(&mut *$tx)
        .await
        .ctx("reading the block generation")?
        .try_get(0)
        .ctx("reading the block generation")?;
        let added: &[killkrill_core::logblock::BlockId] = $added;
        for chunk in added.chunks(256) {
            let sql = d.sql(&format!(
                "UPDATE log_blocks SET gen = ? WHERE tenant = ? AND block_id IN {}",
                $crate::dialect::Dialect::tuple(chunk.len())
            ));
            let mut q = sqlx::query(AssertSqlSafe(sql)).bind(generation).bind(tenant);
            for id in chunk {
                q = q.bind(id.to_bytes().to_vec());
            }
            q.execute(&mut *$tx).await.ctx("stamping blocks with their generation")?;
        }
        generation
    }};
}
pub(super) use bump_gen;

pub(super) type SummaryRow = (Vec<u8>, i64, i64, i64, Vec<u8>);

/// Summary rows as read (id, min_ts, max_ts, record_count, summary bytes),
/// parsed, each with its summary's size in bytes.
pub(super) fn parse(
    tenant: &Tenant,
    rows: Vec<SummaryRow>,
) -> Result<Vec<(BlockSummary, usize)>, StoreError> {
    rows.into_iter()
        .map(|(raw_id, min, max, count, summary)| {
            let id = BlockId::from_slice(&raw_id).ok_or_else(|| {
                StoreError::new(
                    ErrorKind::Fatal,
                    format!("block id of {} bytes", raw_id.len()),
                )
            })?;
            let count = u32::try_from(count).map_err(|_| {
                StoreError::new(
                    ErrorKind::Fatal,
                    format!("block {id} has record_count {count}"),
                )
            })?;
            let s = BlockSummary::from_columns(
                tenant.clone(),
                id,
                Timestamp::from_nanos(min),
                Timestamp::from_nanos(max),
                count,
                &summary,
                None,
            )
            .map_err(|e| corrupt(tenant, "block summary", e))?;
            Ok((s, summary.len()))
        })
        .collect()
}

impl Store {
    /// Whether the backend keeps block generations (and so the index).
    pub(crate) fn keeps_generations(&self) -> bool {
        !matches!(self.backend, Backend::MySql(_))
    }

    /// How long a generation read is trusted for other processes' commits
    /// (`logs.index_recheck_ms`; unset: 100 ms on SQLite, where one process
    /// normally owns the database, and 0 — read before every query — on
    /// PostgreSQL, where API processes read what workers commit).
    pub(crate) fn index_trust(&self) -> std::time::Duration {
        let ms = self
            .cfg
            .logs
            .index_recheck_ms
            .unwrap_or(match self.backend {
                Backend::Sqlite { .. } => DEFAULT_SQLITE_RECHECK_MS,
                Backend::Postgres(_) | Backend::MySql(_) => 0,
            });
        std::time::Duration::from_millis(ms)
    }

    /// This process committed generation `generation` of `tenant`: moves
    /// the known generations on (see `gen_reads.rs`).
    pub(crate) fn committed_gen(&self, tenant: &Tenant, generation: i64, deleted: bool) {
        self.gen_reads.committed(tenant, generation, deleted);
    }

    /// A number that changes whenever `tenant`'s set of log blocks changes
    /// (a write, compaction or delete committed), read as a query reads it
    /// (trusted for `logs.index_recheck_ms`, see `gen_reads.rs`); `None` on
    /// MySQL/MariaDB, which keeps no generations. A live tail skips its
    /// poll while it stays the same.
    ///
    /// # Errors
    /// The database's, reading it.
    pub async fn log_generation(&self, tenant: &Tenant) -> Result<Option<i64>, StoreError> {
        if !self.keeps_generations() {
            return Ok(None);
        }
        let (generation, _) = self
            .gen_reads
            .read(tenant, self.index_trust(), || self.read_gen(tenant))
            .await?;
        Ok(Some(generation))
    }

    /// `(gen, deleted_gen)` of `tenant`; `(0, 0)` before its first write.
    pub(super) async fn read_gen(&self, tenant: &Tenant) -> Result<(i64, i64), StoreError> {
        let sql = self
            .dialect
            .sql("SELECT gen, deleted_gen FROM log_block_gen WHERE tenant = ?");
        Ok(with_pool!(&self.backend, pool => {
            match sqlx::query(AssertSqlSafe(sql))
                .bind(tenant.as_str())
                .fetch_optional(pool)
                .await
                .ctx("reading the block generation")?
            {
                Some(r) => (
                    r.try_get::<i64, _>(0).ctx("reading the block generation")?,
                    r.try_get::<i64, _>(1).ctx("reading the block generation")?,
                ),
                None => (0, 0),
            }
        }))
    }

    /// Summary rows matching `where_sql` (after `tenant = ?`), with binds.
    async fn summary_rows(
        &self,
        tenant: &Tenant,
        where_sql: &str,
        gens: Option<(i64, i64)>,
        ids: &[BlockId],
    ) -> Result<Vec<(BlockSummary, usize)>, StoreError> {
        let sql = self.dialect.sql(&format!(
            "SELECT {SUMMARY_COLS} FROM log_blocks WHERE tenant = ?{where_sql}"
        ));
        let rows: Vec<SummaryRow> = with_pool!(&self.backend, pool => {
            let mut q = sqlx::query(AssertSqlSafe(sql)).bind(tenant.as_str());
            if let Some((a, b)) = gens {
                q = q.bind(a).bind(b);
            }
            for id in ids {
                q = q.bind(id.to_bytes().to_vec());
            }
            let mut out = Vec::new();
            for r in q.fetch_all(pool).await.ctx("listing block summaries for the index")? {
                out.push((
                    r.try_get(0).ctx("reading a block summary")?,
                    r.try_get(1).ctx("reading a block summary")?,
                    r.try_get(2).ctx("reading a block summary")?,
                    r.try_get(3).ctx("reading a block summary")?,
                    r.try_get(4).ctx("reading a block summary")?,
                ));
            }
            out
        });
        parse(tenant, rows)
    }

    async fn block_ids(&self, tenant: &Tenant) -> Result<HashSet<BlockId>, StoreError> {
        let sql = self
            .dialect
            .sql("SELECT block_id FROM log_blocks WHERE tenant = ?");
        let raw: Vec<Vec<u8>> = with_pool!(&self.backend, pool => {
            let mut out = Vec::new();
            for r in sqlx::query(AssertSqlSafe(sql))
                .bind(tenant.as_str())
                .fetch_all(pool)
                .await
                .ctx("listing block ids for the index")?
            {
                out.push(r.try_get::<Vec<u8>, _>(0).ctx("reading a block id")?);
            }
            out
        });
        raw.iter()
            .map(|r| {
                BlockId::from_slice(r)
                    .ok_or_else(|| StoreError::new(ErrorKind::Fatal, "block id of wrong length"))
            })
            .collect()
    }

    /// Brings `tenant`'s index to (at least) generation `gen`.
    async fn sync_tenant(
        &self,
        tenant: &Tenant,
        st: Staleness,
        generation: i64,
    ) -> Result<(), StoreError> {
        let index = &self.summary_index;
        match st {
            Staleness::Fresh | Staleness::Oversize => {}
            Staleness::Load => {
                let rows = self.summary_rows(tenant, "", None, &[]).await?;
                index.replace(tenant, generation, &HashSet::new(), rows);
                metrics::counter!("killkrill_store_log_summary_index_syncs_total", "kind" => "load")
                    .increment(1);
            }
            Staleness::Relist => {
                let listed = self.block_ids(tenant).await?;
                let held = index.ids(tenant);
                let keep: HashSet<BlockId> = listed.intersection(&held).copied().collect();
                let new: Vec<BlockId> = listed.difference(&held).copied().collect();
                let mut rows = Vec::with_capacity(new.len());
                for chunk in new.chunks(IDS_PER_STATEMENT) {
                    let cond = format!(" AND block_id IN {}", Dialect::tuple(chunk.len()));
                    rows.extend(self.summary_rows(tenant, &cond, None, chunk).await?);
                }
                index.replace(tenant, generation, &keep, rows);
                metrics::counter!("killkrill_store_log_summary_index_syncs_total", "kind" => "relist")
                    .increment(1);
            }
            Staleness::Added { since } => {
                let rows = self
                    .summary_rows(
                        tenant,
                        " AND gen > ? AND gen <= ?",
                        Some((since, generation)),
                        &[],
                    )
                    .await?;
                index.add(tenant, generation, rows);
                metrics::counter!("killkrill_store_log_summary_index_syncs_total", "kind" => "added")
                    .increment(1);
            }
        }
        Ok(())
    }

    /// Brings the index of `tenant` up to the database's current
    /// generation (one shared point read; a sync when it is behind).
    /// Leaves the tenant out of the index when it is over the budget.
    async fn check_index(&self, tenant: &Tenant) -> Result<(), StoreError> {
        let index = &self.summary_index;
        let (generation, deleted) = self
            .gen_reads
            .read(tenant, self.index_trust(), || self.read_gen(tenant))
            .await?;
        match index.staleness(tenant, generation, deleted) {
            Staleness::Fresh | Staleness::Oversize => Ok(()),
            _ => {
                let _one = index.sync.lock().await;
                // Another request may have synced while this one waited.
                let st = index.staleness(tenant, generation, deleted);
                self.sync_tenant(tenant, st, generation).await
            }
        }
    }

    /// A summary page from the index, synced first; `None` when the index
    /// does not serve this tenant (off, MySQL, over budget). Leaves out
    /// blocks ruled out by their group's slices when `req.tokens` is set
    /// and the page wants token filters (see `summary_groups.rs`), and
    /// starts slicing the complete groups the page met unsliced.
    pub(super) async fn indexed_page(
        &self,
        req: &SummaryRequest<'_>,
    ) -> Result<Option<SummaryPage>, StoreError> {
        let index = &self.summary_index;
        if !index.enabled() || !self.keeps_generations() {
            return Ok(None);
        }
        if req.range.is_empty() || req.limit == 0 {
            return Ok(Some(SummaryPage {
                done: true,
                ..SummaryPage::default()
            }));
        }
        let tenant = req.tenant;
        // A later page of a scan: the index was checked for its first page
        // and only moves forward, so it is checked again only if it no
        // longer serves the tenant (one generation read per query, not one
        // per page: a full-text query over a day reads ~5 pages). Not
        // served (over budget): `select` says so and SQL answers.
        if !(req.continuation && index.serves(tenant)) {
            self.check_index(tenant).await?;
        }
        let Some((picked, groups)) = index.select_pruned(req) else {
            metrics::counter!("killkrill_store_log_summary_index_fallbacks_total").increment(1);
            return Ok(None);
        };
        let entries = &picked.entries;
        let page = |summaries| SummaryPage {
            summaries,
            examined: picked.examined,
            last: picked.last,
            done: picked.done,
        };
        if !req.with_tokens {
            return Ok(Some(page(
                entries.iter().map(|e| e.plain().clone()).collect(),
            )));
        }
        // Blocks their group's slices let through need no filter of their
        // own (the engine scans them); the others are tested one by one.
        let unsliced: Vec<Arc<Entry>> = entries
            .iter()
            .zip(&picked.by_slices)
            .filter(|(_, s)| !**s)
            .map(|(e, _)| e.clone())
            .collect();
        let (mut held, missing) = index.with_tokens(&unsliced);
        if !missing.is_empty() {
            let filters = self.token_filters(tenant, &missing).await?;
            let lacking: Vec<_> = unsliced
                .iter()
                .zip(&held)
                .filter(|(_, h)| h.is_none())
                .map(|(e, _)| e.clone())
                .collect();
            let mut full = index.attach_tokens(tenant, &lacking, &filters);
            for (e, h) in unsliced.iter().zip(held.iter_mut()) {
                if h.is_none() {
                    *h = full.remove(&e.id());
                }
            }
        }
        if !groups.is_empty()
            && let Some(jobs) = index.slice_jobs(tenant, &groups)
        {
            let index = index.clone();
            let tenant = tenant.clone();
            tokio::task::spawn_blocking(move || index.build_slices(&tenant, jobs));
        }
        let mut held = unsliced.iter().zip(held);
        let summaries = entries
            .iter()
            .zip(&picked.by_slices)
            .map(|(e, by_slices)| {
                if *by_slices {
                    return e.plain().clone();
                }
                // No filter: the block went between the two reads; the
                // engine treats it as a candidate and finds it gone.
                held.next()
                    .and_then(|(_, h)| h)
                    .unwrap_or_else(|| e.plain().clone())
            })
            .collect();
        Ok(Some(page(summaries)))
    }
}
