//! The log store trait: blocks in, summaries and payloads out.

use async_trait::async_trait;

use super::{StoreError, TimeRange};
use crate::event::{Tenant, Timestamp};
use std::sync::Arc;

use crate::logblock::{BlockError, BlockId, BlockSummary, DecodedBlock, EncodedBlock};

/// A decoded block, or why its payload did not decode.
pub type DecodedResult = Result<Arc<DecodedBlock>, BlockError>;

/// A block's timestamps and severity codes, record order (what the volume
/// histogram reads from a block its summary cannot answer).
pub type BlockTimes = (Vec<i64>, Vec<u8>);

/// [`BlockTimes`] of one block, or why it did not decode.
pub type TimesResult = Result<Arc<BlockTimes>, BlockError>;

/// Which end of time a scan starts from.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Hash, Default)]
pub enum ScanOrder {
    /// By `(max_ts, block_id)` descending: the order the newest-first merge
    /// opens blocks in.
    #[default]
    NewestFirst,
    /// By `(min_ts, block_id)` ascending.
    OldestFirst,
}

/// One page of a block-summary scan.
#[derive(Debug, Clone)]
pub struct SummaryRequest<'a> {
    /// Whose blocks.
    pub tenant: &'a Tenant,
    /// Only blocks whose `[min_ts, max_ts]` overlaps this range.
    pub range: TimeRange,
    /// Sort order of the page.
    pub order: ScanOrder,
    /// Continue strictly after this sort key: `(max_ts, id)` for
    /// [`ScanOrder::NewestFirst`], `(min_ts, id)` for
    /// [`ScanOrder::OldestFirst`].
    pub after: Option<(Timestamp, BlockId)>,
    /// At most this many summaries.
    pub limit: usize,
    /// Also fetch the token bloom filter (bigger; only needed for full-text
    /// and field filters).
    pub with_tokens: bool,
    /// A later page of a scan whose first page this store answered: a
    /// store that checks its in-memory view against the database before
    /// answering may skip the check and answer from the view as it is.
    /// That view is usually at least as new as the one the first page was
    /// answered from; a scan whose first page came from the database
    /// directly (the view did not hold the tenant) may have later pages
    /// answered from a view loaded meanwhile, which can lack blocks
    /// committed just before the scan began. Either way the next scan's
    /// first page sees them. `false` for a first page.
    pub continuation: bool,
    /// Token hashes ([`token_hash`](crate::logblock::token_hash),
    /// [`field_hash`](crate::logblock::field_hash)) every wanted block's
    /// token filter must hold; empty for no such condition. A hint for
    /// [`summary_page`](LogStore::summary_page): a store that can test many
    /// blocks' filters at once may leave out blocks whose filter certainly
    /// lacks one. Other methods ignore it.
    pub tokens: &'a [u64],
}

/// A page of a summary scan ([`LogStore::summary_page`]).
#[derive(Debug, Clone, Default)]
pub struct SummaryPage {
    /// At most `limit` summaries, in scan order.
    pub summaries: Vec<Arc<BlockSummary>>,
    /// Blocks the store looked at for the page: those returned and those
    /// it left out because their filter lacks a token.
    pub examined: usize,
    /// Sort key of the last block looked at (see
    /// [`SummaryRequest::after`]): the next page continues after it.
    pub last: Option<(Timestamp, BlockId)>,
    /// No block is left after this page.
    pub done: bool,
}

impl SummaryPage {
    /// A page of exactly the summaries a store looked at.
    pub fn unpruned(order: ScanOrder, limit: usize, summaries: Vec<Arc<BlockSummary>>) -> Self {
        let last = summaries.last().map(|s| match order {
            ScanOrder::NewestFirst => (s.max_ts, s.id),
            ScanOrder::OldestFirst => (s.min_ts, s.id),
        });
        SummaryPage {
            examined: summaries.len(),
            done: summaries.len() < limit,
            last,
            summaries,
        }
    }
}

/// What a write did.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Default)]
pub struct WriteReport {
    /// Blocks stored by this call.
    pub blocks_written: usize,
    /// Blocks skipped because a block with the same id was written before
    /// (a redelivered batch), even if it has since been compacted away.
    pub blocks_skipped: usize,
    /// Records in the blocks stored by this call.
    pub records_written: u64,
}

/// Durable storage of log blocks for one or many tenants.
///
/// Implementations must make [`write_blocks`](LogStore::write_blocks)
/// idempotent per block id for as long as the block registry keeps the id
/// (compaction never removes registry entries; only
/// [`trim_block_registry`](LogStore::trim_block_registry) does), and
/// [`replace_blocks`](LogStore::replace_blocks) atomic.
#[async_trait]
pub trait LogStore: Send + Sync {
    /// Stores blocks whose ids were never written before; skips the others.
    ///
    /// # Errors
    /// [`ErrorKind::Retryable`](super::ErrorKind::Retryable) for connection
    /// trouble (nothing or a whole block was stored: a block is never half
    /// written), other kinds as classified by the backend.
    async fn write_blocks(&self, blocks: &[EncodedBlock]) -> Result<WriteReport, StoreError>;

    /// One page of block summaries in scan order.
    ///
    /// # Errors
    /// Backend errors; [`ErrorKind::Fatal`](super::ErrorKind::Fatal) when a
    /// stored summary does not decode.
    async fn block_summaries(
        &self,
        req: &SummaryRequest<'_>,
    ) -> Result<Vec<BlockSummary>, StoreError>;

    /// [`block_summaries`](LogStore::block_summaries), shared: what the
    /// query engine reads. The default wraps each summary in an `Arc`;
    /// stores that keep parsed summaries in memory hand out their own
    /// (blocks are immutable, so a summary never changes under its id).
    ///
    /// # Errors
    /// As for [`block_summaries`](LogStore::block_summaries).
    async fn shared_summaries(
        &self,
        req: &SummaryRequest<'_>,
    ) -> Result<Vec<Arc<BlockSummary>>, StoreError> {
        Ok(self
            .block_summaries(req)
            .await?
            .into_iter()
            .map(Arc::new)
            .collect())
    }

    /// One page of the summary scan a query makes: like
    /// [`shared_summaries`](LogStore::shared_summaries), except that the
    /// store may leave out blocks whose token filter certainly lacks one of
    /// [`SummaryRequest::tokens`] (and may look at more than `limit` blocks
    /// to fill the page). The default leaves nothing out.
    ///
    /// # Errors
    /// As for [`block_summaries`](LogStore::block_summaries).
    async fn summary_page(&self, req: &SummaryRequest<'_>) -> Result<SummaryPage, StoreError> {
        let summaries = self.shared_summaries(req).await?;
        Ok(SummaryPage::unpruned(req.order, req.limit, summaries))
    }

    /// The payloads of the given blocks of `tenant`, in any order; ids that
    /// no longer exist (compacted or deleted meanwhile) are left out.
    ///
    /// # Errors
    /// Backend errors.
    async fn block_payloads(
        &self,
        tenant: &Tenant,
        ids: &[BlockId],
    ) -> Result<Vec<(BlockId, Vec<u8>)>, StoreError>;

    /// The given blocks of `tenant`, decoded, in any order; ids that no
    /// longer exist are left out, as for
    /// [`block_payloads`](LogStore::block_payloads). A payload that does not
    /// decode is an `Err` entry (the caller names the block).
    ///
    /// The default fetches payloads and decodes them. Stores may keep
    /// decoded blocks in a cache: a block id always names the same
    /// immutable records, so a cached decode never goes stale.
    ///
    /// # Errors
    /// Backend errors.
    async fn decoded_blocks(
        &self,
        tenant: &Tenant,
        ids: &[BlockId],
    ) -> Result<Vec<(BlockId, DecodedResult)>, StoreError> {
        let payloads = self.block_payloads(tenant, ids).await?;
        Ok(payloads
            .into_iter()
            .map(|(id, p)| (id, DecodedBlock::decode(tenant, &p).map(Arc::new)))
            .collect())
    }

    /// Timestamps and severity codes of the given blocks of `tenant`, in
    /// any order; ids that no longer exist are left out, as for
    /// [`block_payloads`](LogStore::block_payloads).
    ///
    /// The default fetches payloads and decodes the two columns. Stores may
    /// cache the result (blocks are immutable): a volume histogram over a
    /// day decodes every block that straddles a bucket boundary, and would
    /// otherwise decompress the same blocks on every request.
    ///
    /// # Errors
    /// Backend errors.
    async fn block_times(
        &self,
        tenant: &Tenant,
        ids: &[BlockId],
    ) -> Result<Vec<(BlockId, TimesResult)>, StoreError> {
        let payloads = self.block_payloads(tenant, ids).await?;
        Ok(payloads
            .into_iter()
            .map(|(id, p)| (id, crate::logblock::decode_times(&p).map(Arc::new)))
            .collect())
    }

    /// Atomically deletes the `sources` blocks of `tenant` and stores
    /// `merged` (compaction). Either everything happens or nothing.
    ///
    /// # Errors
    /// [`ErrorKind::Conflict`](super::ErrorKind::Conflict) when a source
    /// block no longer exists (another compactor or retention got there
    /// first); nothing was changed then.
    async fn replace_blocks(
        &self,
        tenant: &Tenant,
        sources: &[BlockId],
        merged: &[EncodedBlock],
    ) -> Result<(), StoreError>;

    /// Retention: deletes every block of `tenant` whose newest record is
    /// older than `cutoff`; returns how many blocks went.
    ///
    /// # Errors
    /// Backend errors.
    async fn delete_blocks_before(
        &self,
        tenant: &Tenant,
        cutoff: Timestamp,
    ) -> Result<u64, StoreError>;

    /// Forgets written block ids registered before `written_before` (wall
    /// clock), after which a redelivery of such an old batch would be stored
    /// again. Returns how many ids went.
    ///
    /// # Errors
    /// Backend errors.
    async fn trim_block_registry(
        &self,
        tenant: &Tenant,
        written_before: Timestamp,
    ) -> Result<u64, StoreError>;

    /// Every tenant that has at least one block (for background compaction
    /// and retention).
    ///
    /// # Errors
    /// Backend errors.
    async fn log_tenants(&self) -> Result<Vec<Tenant>, StoreError>;
}
