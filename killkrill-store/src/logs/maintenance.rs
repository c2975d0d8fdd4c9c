//! Compaction's atomic replace, retention's deletes, registry trimming.

use killkrill_core::event::{Tenant, Timestamp};
use killkrill_core::logblock::{BlockId, EncodedBlock};
use killkrill_core::storage::{ErrorKind, StoreError};
use sqlx::{AssertSqlSafe, Row};

use super::copy::copy_blocks;
use super::index_sync::bump_gen;
use super::write::insert_rows;
use crate::backend::{Backend, Store};
use crate::dialect::Dialect;
use crate::error::Context;
use crate::{with_pool, with_writer};

fn gone() -> StoreError {
    StoreError::new(
        ErrorKind::Conflict,
        "a block to compact is gone (compacted or deleted concurrently); nothing was changed",
    )
}

/// Deletes the sources inside `$tx`, returning Conflict (and leaving the
/// transaction to roll back on drop) when any is missing.
macro_rules! delete_sources {
    ($self:expr, $tx:expr, $tenant:expr, $sources:expr) => {{
        let sql = $self.dialect.sql(&format!(
            "DELETE FROM log_blocks WHERE tenant = ? AND block_id IN {}",
            Dialect::tuple($sources.len())
        ));
        let mut q = sqlx::query(AssertSqlSafe(sql)).bind($tenant.as_str());
        for id in $sources {
            q = q.bind(id.to_bytes().to_vec());
        }
        let n = q
            .execute(&mut *$tx)
            .await
            .ctx("deleting compacted blocks")?
            .rows_affected();
        if n != $sources.len() as u64 {
            return Err(gone());
        }
    }};
}

impl Store {
    pub(super) async fn replace_tx(
        &self,
        tenant: &Tenant,
        sources: &[BlockId],
        merged: &[EncodedBlock],
    ) -> Result<(), StoreError> {
        let merged: Vec<&EncodedBlock> = merged.iter().collect();
        match &self.backend {
            Backend::Postgres(p) => {
                let mut tx = p.begin().await.ctx("beginning a compaction")?;
                delete_sources!(self, tx, tenant, sources);
                let bytes: usize = merged.iter().map(|b| b.payload.len()).sum();
                if bytes >= super::write::COPY_MIN_BYTES {
                    copy_blocks(&mut tx, &merged).await?;
                } else {
                    insert_rows!(self, tx, &merged, 64);
                }
                let ids: Vec<BlockId> = merged.iter().map(|b| b.summary.id).collect();
                let generation = bump_gen!(self, tx, tenant.as_str(), &ids, true);
                tx.commit().await.ctx("committing a compaction")?;
                self.compacted_locally(tenant, generation, sources, &merged);
            }
            Backend::MySql(p) => {
                let mut tx = p.begin().await.ctx("beginning a compaction")?;
                delete_sources!(self, tx, tenant, sources);
                insert_rows!(self, tx, &merged, 64);
                tx.commit().await.ctx("committing a compaction")?;
            }
            Backend::Sqlite { writer, .. } => {
                let mut tx = writer.begin().await.ctx("beginning a compaction")?;
                delete_sources!(self, tx, tenant, sources);
                insert_rows!(self, tx, &merged, 1);
                let ids: Vec<BlockId> = merged.iter().map(|b| b.summary.id).collect();
                let generation = bump_gen!(self, tx, tenant.as_str(), &ids, true);
                tx.commit().await.ctx("committing a compaction")?;
                self.compacted_locally(tenant, generation, sources, &merged);
            }
        }
        Ok(())
    }

    /// Runs a delete, in bounded steps where the dialect wants them.
    pub(crate) async fn bounded_delete(
        &self,
        sql: &str,
        big_rows: bool,
        tenant: &Tenant,
        before: i64,
    ) -> Result<u64, StoreError> {
        let step = self.dialect.delete_step(big_rows);
        let sql = self.dialect.bounded_delete(sql, step);
        let mut total = 0;
        loop {
            let n = with_writer!(&self.backend, pool => {
                sqlx::query(AssertSqlSafe(sql.clone()))
                    .bind(tenant.as_str())
                    .bind(before)
                    .execute(pool)
                    .await
                    .ctx("deleting old rows")?
                    .rows_affected()
            });
            total += n;
            match step {
                Some(s) if n as usize >= s => continue,
                _ => return Ok(total),
            }
        }
    }

    fn compacted_locally(
        &self,
        tenant: &Tenant,
        generation: i64,
        sources: &[BlockId],
        merged: &[&EncodedBlock],
    ) {
        let added: Vec<&killkrill_core::logblock::BlockSummary> =
            merged.iter().map(|b| &b.summary).collect();
        self.summary_index
            .apply_local(tenant, generation, sources, &added);
        self.committed_gen(tenant, generation, true);
    }

    pub(super) async fn delete_before(
        &self,
        tenant: &Tenant,
        cutoff: Timestamp,
    ) -> Result<u64, StoreError> {
        // One statement on PostgreSQL and SQLite: delete and bump the
        // generation in one transaction, so readers' indexes drop the
        // blocks as they go.
        let sql = self
            .dialect
            .sql("DELETE FROM log_blocks WHERE tenant = ? AND max_ts < ?");
        match &self.backend {
            Backend::Postgres(p) => {
                let mut tx = p.begin().await.ctx("beginning a retention delete")?;
                let n = sqlx::query(AssertSqlSafe(sql))
                    .bind(tenant.as_str())
                    .bind(cutoff.as_nanos())
                    .execute(&mut *tx)
                    .await
                    .ctx("deleting old rows")?
                    .rows_affected();
                let generation = if n > 0 {
                    Some(bump_gen!(self, tx, tenant.as_str(), &[], true))
                } else {
                    None
                };
                tx.commit().await.ctx("committing a retention delete")?;
                if let Some(g) = generation {
                    self.committed_gen(tenant, g, true);
                }
                return Ok(n);
            }
            Backend::Sqlite { writer, .. } => {
                let mut tx = writer.begin().await.ctx("beginning a retention delete")?;
                let n = sqlx::query(AssertSqlSafe(sql))
                    .bind(tenant.as_str())
                    .bind(cutoff.as_nanos())
                    .execute(&mut *tx)
                    .await
                    .ctx("deleting old rows")?
                    .rows_affected();
                let generation = if n > 0 {
                    Some(bump_gen!(self, tx, tenant.as_str(), &[], true))
                } else {
                    None
                };
                tx.commit().await.ctx("committing a retention delete")?;
                if let Some(g) = generation {
                    self.committed_gen(tenant, g, true);
                }
                return Ok(n);
            }
            Backend::MySql(_) => {}
        }
        self.bounded_delete(
            "DELETE FROM log_blocks WHERE tenant = ? AND max_ts < ?",
            true,
            tenant,
            cutoff.as_nanos(),
        )
        .await
    }

    pub(super) async fn trim_registry(
        &self,
        tenant: &Tenant,
        before: Timestamp,
    ) -> Result<u64, StoreError> {
        self.bounded_delete(
            "DELETE FROM log_block_ids WHERE tenant = ? AND written_at < ?",
            false,
            tenant,
            before.as_nanos(),
        )
        .await
    }

    pub(super) async fn tenants(&self) -> Result<Vec<Tenant>, StoreError> {
        let names: Vec<String> = with_pool!(&self.backend, pool => {
            let rows = sqlx::query("SELECT DISTINCT tenant FROM log_blocks")
                .fetch_all(pool)
                .await
                .ctx("listing tenants")?;
            let mut v = Vec::with_capacity(rows.len());
            for r in rows {
                v.push(r.try_get::<String, _>(0).ctx("listing tenants")?);
            }
            v
        });
        names
            .iter()
            .map(|n| {
                Tenant::new(n)
                    .map_err(|e| StoreError::with_source(ErrorKind::Fatal, "stored tenant name", e))
            })
            .collect()
    }
}
