//! Reading block summaries (keyset-paginated) and payloads.

use killkrill_core::event::Tenant;
use std::collections::HashMap;
use std::sync::Arc;

use killkrill_core::logblock::{BlockId, BlockSummary, Bloom};
use killkrill_core::storage::{ErrorKind, ScanOrder, StoreError, SummaryRequest};
use sqlx::{AssertSqlSafe, Row};

use crate::backend::Store;
use crate::dialect::Dialect;
use crate::error::Context;
use crate::with_pool;

/// Ids per payload SELECT.
const IDS_PER_SELECT: usize = 256;

pub(super) fn corrupt(
    tenant: &Tenant,
    what: &str,
    e: impl std::error::Error + Send + Sync + 'static,
) -> StoreError {
    StoreError::with_source(
        ErrorKind::Fatal,
        format!("stored {what} of tenant {tenant} is damaged"),
        e,
    )
}

/// The SELECT for one summary page.
pub(crate) fn summaries_sql(d: Dialect, order: ScanOrder, after: bool) -> String {
    let cols = "block_id, min_ts, max_ts, record_count, summary";
    let (after_sql, order_sql) = match order {
        ScanOrder::NewestFirst => (
            " AND (max_ts < ? OR (max_ts = ? AND block_id < ?))",
            "max_ts DESC, block_id DESC",
        ),
        ScanOrder::OldestFirst => (
            " AND (min_ts > ? OR (min_ts = ? AND block_id > ?))",
            "min_ts ASC, block_id ASC",
        ),
    };
    d.sql(&format!(
        "SELECT {cols} FROM log_blocks WHERE tenant = ? AND max_ts >= ? AND min_ts < ?{} ORDER BY {order_sql} LIMIT ?",
        if after { after_sql } else { "" }
    ))
}

impl Store {
    pub(super) async fn read_summaries(
        &self,
        req: &SummaryRequest<'_>,
    ) -> Result<Vec<BlockSummary>, StoreError> {
        if req.range.is_empty() || req.limit == 0 {
            return Ok(Vec::new());
        }
        // Token filters come from the cache (or a second query), never in
        // the page query: most of them are usually cached.
        let sql = summaries_sql(self.dialect, req.order, req.after.is_some());
        let tenant = req.tenant;
        let rows = with_pool!(&self.backend, pool => {
            let mut q = sqlx::query(AssertSqlSafe(sql))
                .bind(tenant.as_str())
                .bind(req.range.start.as_nanos())
                .bind(req.range.end.as_nanos());
            if let Some((ts, id)) = req.after {
                q = q.bind(ts.as_nanos()).bind(ts.as_nanos()).bind(id.to_bytes().to_vec());
            }
            let rows = q
                .bind(i64::try_from(req.limit).unwrap_or(i64::MAX))
                .fetch_all(pool)
                .await
                .ctx("listing log block summaries")?;
            let mut out = Vec::with_capacity(rows.len());
            for r in rows {
                let raw_id: Vec<u8> = r.try_get(0).ctx("reading a block summary")?;
                let min: i64 = r.try_get(1).ctx("reading a block summary")?;
                let max: i64 = r.try_get(2).ctx("reading a block summary")?;
                let count: i64 = r.try_get(3).ctx("reading a block summary")?;
                let summary: Vec<u8> = r.try_get(4).ctx("reading a block summary")?;
                out.push((raw_id, min, max, count, summary));
            }
            out
        });
        let mut out: Vec<BlockSummary> = super::index_sync::parse(tenant, rows)?
            .into_iter()
            .map(|(s, _)| s)
            .collect();
        if req.with_tokens {
            self.attach_tokens(tenant, &mut out).await?;
        }
        Ok(out)
    }

    /// Fills in token filters from the cache, fetching the missing ones.
    async fn attach_tokens(
        &self,
        tenant: &Tenant,
        out: &mut [BlockSummary],
    ) -> Result<(), StoreError> {
        let ids: Vec<BlockId> = out.iter().map(|s| s.id).collect();
        let filters = self.token_filters(tenant, &ids).await?;
        for s in out.iter_mut() {
            // A block deleted between the two queries keeps no filter; the
            // engine then treats it as a candidate and finds it gone.
            s.tokens = filters.get(&s.id).cloned();
        }
        Ok(())
    }

    /// The token filters of `ids`: from the cache, the missing ones from
    /// SQL (and into the cache). Blocks that no longer exist are absent.
    pub(super) async fn token_filters(
        &self,
        tenant: &Tenant,
        ids: &[BlockId],
    ) -> Result<HashMap<BlockId, Arc<Bloom>>, StoreError> {
        let cached = self.token_cache.get_many(tenant, ids);
        let mut fetched: HashMap<BlockId, Arc<Bloom>> = HashMap::with_capacity(ids.len());
        let mut missing = Vec::new();
        for (id, c) in ids.iter().zip(cached) {
            match c {
                Some(b) => {
                    fetched.insert(*id, b);
                }
                None => missing.push(*id),
            }
        }
        for chunk in missing.chunks(IDS_PER_SELECT) {
            let sql = self.dialect.sql(&format!(
                "SELECT block_id, tokens FROM log_blocks WHERE tenant = ? AND block_id IN {}",
                Dialect::tuple(chunk.len())
            ));
            let rows: Vec<(Vec<u8>, Vec<u8>)> = with_pool!(&self.backend, pool => {
                let mut q = sqlx::query(AssertSqlSafe(sql)).bind(tenant.as_str());
                for id in chunk {
                    q = q.bind(id.to_bytes().to_vec());
                }
                let mut v = Vec::with_capacity(chunk.len());
                for r in q.fetch_all(pool).await.ctx("fetching token filters")? {
                    v.push((
                        r.try_get::<Vec<u8>, _>(0).ctx("reading a token filter")?,
                        r.try_get::<Vec<u8>, _>(1).ctx("reading a token filter")?,
                    ));
                }
                v
            });
            for (raw, bytes) in rows {
                let id = BlockId::from_slice(&raw)
                    .ok_or_else(|| StoreError::new(ErrorKind::Fatal, "block id of wrong length"))?;
                let bloom = Arc::new(
                    Bloom::from_bytes(&bytes).map_err(|e| corrupt(tenant, "token filter", e))?,
                );
                self.token_cache.put(tenant, id, bloom.clone());
                fetched.insert(id, bloom);
            }
        }
        Ok(fetched)
    }

    pub(super) async fn read_payloads(
        &self,
        tenant: &Tenant,
        ids: &[BlockId],
    ) -> Result<Vec<(BlockId, Vec<u8>)>, StoreError> {
        let mut out = Vec::with_capacity(ids.len());
        for chunk in ids.chunks(IDS_PER_SELECT) {
            let sql = self.dialect.sql(&format!(
                "SELECT block_id, payload FROM log_blocks WHERE tenant = ? AND block_id IN {}",
                Dialect::tuple(chunk.len())
            ));
            with_pool!(&self.backend, pool => {
                let mut q = sqlx::query(AssertSqlSafe(sql)).bind(tenant.as_str());
                for id in chunk {
                    q = q.bind(id.to_bytes().to_vec());
                }
                for r in q.fetch_all(pool).await.ctx("fetching log block payloads")? {
                    let raw: Vec<u8> = r.try_get(0).ctx("reading a block payload")?;
                    let payload: Vec<u8> = r.try_get(1).ctx("reading a block payload")?;
                    let id = BlockId::from_slice(&raw)
                        .ok_or_else(|| StoreError::new(ErrorKind::Fatal, "block id of wrong length"))?;
                    out.push((id, payload));
                }
            });
        }
        Ok(out)
    }
}
