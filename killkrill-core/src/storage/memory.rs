//! An in-memory [`LogStore`]: the reference the SQL stores are tested
//! against, and a store for embedding without a database.
//!
//! It follows the same contract as the SQL stores, including the block-id
//! registry that makes rewrites after compaction no-ops.

use std::collections::{BTreeMap, HashMap};
use std::sync::Mutex;

use async_trait::async_trait;

use super::{ErrorKind, LogStore, ScanOrder, StoreError, SummaryRequest, WriteReport};
use crate::event::{Tenant, Timestamp};
use crate::logblock::{BlockId, BlockSummary, EncodedBlock};

#[derive(Default)]
struct Inner {
    blocks: BTreeMap<(Tenant, BlockId), EncodedBlock>,
    registry: HashMap<(Tenant, BlockId), Timestamp>,
}

/// Log blocks in a map behind a mutex.
#[derive(Default)]
pub struct MemoryLogStore {
    inner: Mutex<Inner>,
}

impl MemoryLogStore {
    /// An empty store.
    pub fn new() -> Self {
        Self::default()
    }

    fn lock(&self) -> Result<std::sync::MutexGuard<'_, Inner>, StoreError> {
        self.inner
            .lock()
            .map_err(|_| StoreError::new(ErrorKind::Fatal, "memory store mutex poisoned"))
    }

    /// Number of stored blocks (all tenants).
    ///
    /// # Errors
    /// Only if the mutex is poisoned.
    pub fn block_count(&self) -> Result<usize, StoreError> {
        Ok(self.lock()?.blocks.len())
    }
}

#[async_trait]
impl LogStore for MemoryLogStore {
    async fn write_blocks(&self, blocks: &[EncodedBlock]) -> Result<WriteReport, StoreError> {
        let mut g = self.lock()?;
        let now = Timestamp::now();
        let mut rep = WriteReport::default();
        for b in blocks {
            let key = (b.summary.tenant.clone(), b.summary.id);
            if g.registry.contains_key(&key) {
                rep.blocks_skipped += 1;
                continue;
            }
            g.registry.insert(key.clone(), now);
            g.blocks.insert(key, b.clone());
            rep.blocks_written += 1;
            rep.records_written += u64::from(b.summary.count);
        }
        Ok(rep)
    }

    async fn block_summaries(
        &self,
        req: &SummaryRequest<'_>,
    ) -> Result<Vec<BlockSummary>, StoreError> {
        let g = self.lock()?;
        let mut out: Vec<BlockSummary> = g
            .blocks
            .iter()
            .filter(|((t, _), b)| {
                t == req.tenant && req.range.overlaps(b.summary.min_ts, b.summary.max_ts)
            })
            .map(|(_, b)| b.summary.clone())
            .filter(|s| match (req.order, req.after) {
                (_, None) => true,
                (ScanOrder::NewestFirst, Some(a)) => (s.max_ts, s.id) < a,
                (ScanOrder::OldestFirst, Some(a)) => (s.min_ts, s.id) > a,
            })
            .collect();
        match req.order {
            ScanOrder::NewestFirst => out.sort_by_key(|s| std::cmp::Reverse((s.max_ts, s.id))),
            ScanOrder::OldestFirst => out.sort_by_key(|s| (s.min_ts, s.id)),
        }
        out.truncate(req.limit);
        if !req.with_tokens {
            for s in &mut out {
                s.tokens = None;
            }
        }
        Ok(out)
    }

    async fn block_payloads(
        &self,
        tenant: &Tenant,
        ids: &[BlockId],
    ) -> Result<Vec<(BlockId, Vec<u8>)>, StoreError> {
        let g = self.lock()?;
        Ok(ids
            .iter()
            .filter_map(|id| {
                g.blocks
                    .get(&(tenant.clone(), *id))
                    .map(|b| (*id, b.payload.clone()))
            })
            .collect())
    }

    async fn replace_blocks(
        &self,
        tenant: &Tenant,
        sources: &[BlockId],
        merged: &[EncodedBlock],
    ) -> Result<(), StoreError> {
        let mut g = self.lock()?;
        if sources
            .iter()
            .any(|s| !g.blocks.contains_key(&(tenant.clone(), *s)))
        {
            return Err(StoreError::new(
                ErrorKind::Conflict,
                "a block to compact is gone (compacted or deleted concurrently)",
            ));
        }
        for s in sources {
            g.blocks.remove(&(tenant.clone(), *s));
        }
        for b in merged {
            g.blocks.insert((tenant.clone(), b.summary.id), b.clone());
        }
        Ok(())
    }

    async fn delete_blocks_before(
        &self,
        tenant: &Tenant,
        cutoff: Timestamp,
    ) -> Result<u64, StoreError> {
        let mut g = self.lock()?;
        let before = g.blocks.len();
        g.blocks
            .retain(|(t, _), b| t != tenant || b.summary.max_ts >= cutoff);
        Ok((before - g.blocks.len()) as u64)
    }

    async fn trim_block_registry(
        &self,
        tenant: &Tenant,
        written_before: Timestamp,
    ) -> Result<u64, StoreError> {
        let mut g = self.lock()?;
        let before = g.registry.len();
        g.registry
            .retain(|(t, _), at| t != tenant || *at >= written_before);
        Ok((before - g.registry.len()) as u64)
    }

    async fn log_tenants(&self) -> Result<Vec<Tenant>, StoreError> {
        let g = self.lock()?;
        let mut t: Vec<Tenant> = g.blocks.keys().map(|(t, _)| t.clone()).collect();
        t.dedup();
        Ok(t)
    }
}
