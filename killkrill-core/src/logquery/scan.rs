//! Paging through block summaries in scan order, pruning as it goes.

use std::collections::VecDeque;
use std::sync::Arc;

use super::QueryError;
use super::filter::CompiledFilter;
use crate::event::Tenant;
use crate::logblock::BlockSummary;
use crate::storage::{LogStore, ScanOrder, SummaryRequest, TimeRange};

/// A lazy, pruned sequence of block summaries.
pub(crate) struct SummaryScan<'a> {
    store: &'a dyn LogStore,
    tenant: &'a Tenant,
    range: TimeRange,
    order: ScanOrder,
    with_tokens: bool,
    filter: Option<&'a CompiledFilter>,
    buf: VecDeque<Arc<BlockSummary>>,
    after: Option<(crate::event::Timestamp, crate::logblock::BlockId)>,
    page: usize,
    done: bool,
    /// Summaries looked at (pruned or not).
    pub(crate) seen: usize,
}

impl<'a> SummaryScan<'a> {
    pub(crate) fn new(
        store: &'a dyn LogStore,
        tenant: &'a Tenant,
        range: TimeRange,
        order: ScanOrder,
        filter: Option<&'a CompiledFilter>,
    ) -> Self {
        SummaryScan {
            store,
            tenant,
            range,
            order,
            with_tokens: filter.is_some_and(CompiledFilter::needs_tokens),
            filter,
            buf: VecDeque::new(),
            after: None,
            // Start small (a newest-page query usually needs one block),
            // grow to amortise round trips on long scans.
            page: 16,
            done: range.is_empty(),
            seen: 0,
        }
    }

    /// The next candidate without consuming it.
    pub(crate) async fn peek(&mut self) -> Result<Option<&Arc<BlockSummary>>, QueryError> {
        loop {
            while let Some(s) = self.buf.front() {
                if self.filter.is_none_or(|f| f.may_match(s)) {
                    return Ok(self.buf.front());
                }
                self.buf.pop_front();
            }
            if self.done {
                return Ok(None);
            }
            let req = SummaryRequest {
                tenant: self.tenant,
                range: self.range,
                order: self.order,
                after: self.after,
                limit: self.page,
                with_tokens: self.with_tokens,
                continuation: self.seen > 0,
                tokens: self
                    .filter
                    .map(CompiledFilter::bloom_keys)
                    .unwrap_or_default(),
            };
            let got = self.store.summary_page(&req).await?;
            self.done = got.done || got.last.is_none();
            self.page = (self.page * 4).min(1024);
            self.seen += got.examined;
            self.after = got.last;
            self.buf.extend(got.summaries);
        }
    }

    /// The next candidate.
    pub(crate) async fn next(&mut self) -> Result<Option<Arc<BlockSummary>>, QueryError> {
        self.peek().await?;
        Ok(self.buf.pop_front())
    }
}
