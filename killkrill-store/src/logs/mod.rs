//! Log blocks in SQL: the [`LogStore`] implementation.
//!
//! The SQL only stores and fetches blocks; pruning, decoding, filtering and
//! merging are core's query engine. Tables (see `migrations/`):
//! `log_blocks` (one row per block, summary columns + payload) and
//! `log_block_ids` (the registry of every block id written from a batch,
//! which makes rewrites idempotent even after compaction).

pub(crate) mod copy;
pub(crate) mod gen_reads;
mod index_sync;
mod maintenance;
mod read;
pub(crate) mod summary_index;
pub(crate) mod token_cache;
pub(crate) mod write;

use async_trait::async_trait;
use killkrill_core::event::{LogRecord, Tenant, Timestamp};
use killkrill_core::logblock::{BlockId, BlockSummary, EncodedBlock, build_blocks};
use killkrill_core::logblock::{DecodedBlock, decode_times};
use killkrill_core::storage::{
    DecodedResult, ErrorKind, LogStore, StoreError, SummaryPage, SummaryRequest, TimesResult,
    WriteReport,
};
use std::sync::Arc;

use crate::backend::Store;
use crate::retry::retry;

impl Store {
    /// Sizes of the in-memory summary index (also the gauges
    /// `killkrill_store_log_summary_index_bytes` and `_blocks`).
    pub fn summary_index_stats(&self) -> summary_index::SummaryIndexStats {
        self.summary_index.stats()
    }

    /// The blocks the summary index holds for `tenant` — id, oldest and
    /// newest record — sorted by id; `None` when the tenant is not indexed.
    /// For tests that compare it with the database.
    pub fn summary_index_blocks(
        &self,
        tenant: &Tenant,
    ) -> Option<Vec<(BlockId, Timestamp, Timestamp)>> {
        self.summary_index.snapshot(tenant)
    }

    /// Encodes records into blocks on blocking worker threads (in parallel
    /// across blocks) and writes them: the ingest path.
    ///
    /// # Errors
    /// [`ErrorKind::Invalid`] when a record has no id or tenant; write
    /// errors as for [`LogStore::write_blocks`].
    pub async fn write_records(&self, records: Vec<LogRecord>) -> Result<WriteReport, StoreError> {
        let blocks = self.encode(records).await?;
        self.write_blocks(&blocks).await
    }

    /// Encodes records into blocks on blocking worker threads.
    ///
    /// # Errors
    /// [`ErrorKind::Invalid`] when a record has no id or tenant.
    pub async fn encode(&self, records: Vec<LogRecord>) -> Result<Vec<EncodedBlock>, StoreError> {
        let opts = self.blocks.clone();
        tokio::task::spawn_blocking(move || build_blocks(records, &opts))
            .await
            .map_err(|e| StoreError::with_source(ErrorKind::Fatal, "block encoder thread", e))?
            .map_err(|e| StoreError::with_source(ErrorKind::Invalid, "encoding log blocks", e))
    }
}

#[async_trait]
impl LogStore for Store {
    async fn write_blocks(&self, blocks: &[EncodedBlock]) -> Result<WriteReport, StoreError> {
        let mut report = WriteReport::default();
        for group in write::transactions(blocks, self.tx_byte_limit()) {
            let r = retry(&self.cfg.retry, "write_blocks", || self.write_tx(&group)).await?;
            report.blocks_written += r.blocks_written;
            report.blocks_skipped += r.blocks_skipped;
            report.records_written += r.records_written;
        }
        metrics::counter!("killkrill_store_log_blocks_written_total")
            .increment(report.blocks_written as u64);
        metrics::counter!("killkrill_store_log_blocks_skipped_total")
            .increment(report.blocks_skipped as u64);
        Ok(report)
    }

    async fn block_summaries(
        &self,
        req: &SummaryRequest<'_>,
    ) -> Result<Vec<BlockSummary>, StoreError> {
        let v = self.shared_summaries(req).await?;
        Ok(v.into_iter().map(Arc::unwrap_or_clone).collect())
    }

    /// A [`summary_page`](LogStore::summary_page) that leaves nothing out
    /// (no tokens to prune by).
    async fn shared_summaries(
        &self,
        req: &SummaryRequest<'_>,
    ) -> Result<Vec<Arc<BlockSummary>>, StoreError> {
        let req = SummaryRequest {
            tokens: &[],
            ..req.clone()
        };
        Ok(self.summary_page(&req).await?.summaries)
    }

    async fn summary_page(&self, req: &SummaryRequest<'_>) -> Result<SummaryPage, StoreError> {
        if let Some(p) = retry(&self.cfg.retry, "block_summaries", || {
            self.indexed_page(req)
        })
        .await?
        {
            return Ok(p);
        }
        let v = retry(&self.cfg.retry, "block_summaries", || {
            self.read_summaries(req)
        })
        .await?;
        Ok(SummaryPage::unpruned(
            req.order,
            req.limit,
            v.into_iter().map(Arc::new).collect(),
        ))
    }

    async fn block_payloads(
        &self,
        tenant: &Tenant,
        ids: &[BlockId],
    ) -> Result<Vec<(BlockId, Vec<u8>)>, StoreError> {
        let out = retry(&self.cfg.retry, "block_payloads", || {
            self.read_payloads(tenant, ids)
        })
        .await?;
        if out.len() < ids.len() {
            // A listed block is gone: if the index listed it, it is behind
            // (a deletion it was not told of); re-list on the next query.
            self.summary_index.mark_dirty(tenant);
            self.gen_reads.forget(tenant);
        }
        Ok(out)
    }

    async fn decoded_blocks(
        &self,
        tenant: &Tenant,
        ids: &[BlockId],
    ) -> Result<Vec<(BlockId, DecodedResult)>, StoreError> {
        let cached = self.decoded_cache.get_many(tenant, ids);
        let mut out: Vec<(BlockId, DecodedResult)> = Vec::with_capacity(ids.len());
        let mut missing = Vec::new();
        for (id, c) in ids.iter().zip(cached) {
            match c {
                Some(b) => out.push((*id, Ok(b))),
                None => missing.push(*id),
            }
        }
        metrics::counter!("killkrill_store_log_block_cache_hits_total").increment(out.len() as u64);
        metrics::counter!("killkrill_store_log_block_cache_misses_total")
            .increment(missing.len() as u64);
        if missing.is_empty() {
            return Ok(out);
        }
        for (id, payload) in self.block_payloads(tenant, &missing).await? {
            let decoded = DecodedBlock::decode(tenant, &payload).map(Arc::new);
            if let Ok(b) = &decoded {
                self.decoded_cache.put(tenant, id, b.clone());
            }
            out.push((id, decoded));
        }
        Ok(out)
    }

    async fn block_times(
        &self,
        tenant: &Tenant,
        ids: &[BlockId],
    ) -> Result<Vec<(BlockId, TimesResult)>, StoreError> {
        let cached = self.times_cache.get_many(tenant, ids);
        let mut out: Vec<(BlockId, TimesResult)> = Vec::with_capacity(ids.len());
        let mut missing = Vec::new();
        for (id, c) in ids.iter().zip(cached) {
            match c {
                Some(t) => out.push((*id, Ok(t))),
                None => missing.push(*id),
            }
        }
        metrics::counter!("killkrill_store_log_times_cache_hits_total").increment(out.len() as u64);
        metrics::counter!("killkrill_store_log_times_cache_misses_total")
            .increment(missing.len() as u64);
        if missing.is_empty() {
            return Ok(out);
        }
        for (id, payload) in self.block_payloads(tenant, &missing).await? {
            let times = decode_times(&payload).map(Arc::new);
            if let Ok(t) = &times {
                self.times_cache.put(tenant, id, t.clone());
            }
            out.push((id, times));
        }
        Ok(out)
    }

    async fn replace_blocks(
        &self,
        tenant: &Tenant,
        sources: &[BlockId],
        merged: &[EncodedBlock],
    ) -> Result<(), StoreError> {
        retry(&self.cfg.retry, "replace_blocks", || {
            self.replace_tx(tenant, sources, merged)
        })
        .await
    }

    async fn delete_blocks_before(
        &self,
        tenant: &Tenant,
        cutoff: Timestamp,
    ) -> Result<u64, StoreError> {
        retry(&self.cfg.retry, "delete_blocks_before", || {
            self.delete_before(tenant, cutoff)
        })
        .await
    }

    async fn trim_block_registry(
        &self,
        tenant: &Tenant,
        written_before: Timestamp,
    ) -> Result<u64, StoreError> {
        retry(&self.cfg.retry, "trim_block_registry", || {
            self.trim_registry(tenant, written_before)
        })
        .await
    }

    async fn log_tenants(&self) -> Result<Vec<Tenant>, StoreError> {
        retry(&self.cfg.retry, "log_tenants", || self.tenants()).await
    }
}
