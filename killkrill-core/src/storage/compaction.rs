//! Compaction: merging small adjacent blocks of a tenant into full ones.
//!
//! Small blocks come from small batches (a quiet tenant, a flush timer).
//! They cost a summary row and a payload fetch each, so a background task
//! merges runs of them. A run is a sequence of blocks that are adjacent in
//! `(min_ts, id)` order, each smaller than `small_below`, together at most
//! `target_records` records and spanning at most `max_span_nanos` (merging a
//! quiet hour into one block is good; merging a day would hurt pruning).
//!
//! The merge is one [`LogStore::replace_blocks`] call: the merged block is
//! inserted and the sources deleted in one transaction. The merged block's
//! id derives from its sources, so re-running a merge that already happened
//! cannot duplicate anything, and the sources' ids stay in the store's
//! registry, so a batch redelivered after its block was merged away is still
//! recognised and skipped.

use super::{ErrorKind, LogStore, ScanOrder, TimeRange};
use crate::event::{LogRecord, Tenant};
use crate::logblock::{
    BlockId, BlockOptions, BlockSummary, DecodedBlock, EncodedBlock, encode_block,
};
use crate::logquery::QueryError;
use crate::logquery::scan_for_compaction;

/// How compaction chooses and builds blocks.
#[derive(Debug, Clone, PartialEq)]
pub struct CompactionOptions {
    /// Records per merged block (normally the block size).
    pub target_records: usize,
    /// Blocks with fewer records than this are merge candidates.
    pub small_below: usize,
    /// Longest time span of a merged block, in nanoseconds.
    pub max_span_nanos: i64,
    /// Most merges per call (bounds the work of one background tick).
    pub max_merges: usize,
    /// Encoding of merged blocks.
    pub block: BlockOptions,
}

impl Default for CompactionOptions {
    fn default() -> Self {
        let block = BlockOptions::default();
        CompactionOptions {
            target_records: block.max_records,
            small_below: block.max_records / 2,
            max_span_nanos: 3_600 * crate::event::NANOS_PER_SEC,
            max_merges: 64,
            block,
        }
    }
}

/// What one compaction pass did.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Default)]
pub struct CompactionReport {
    /// Merges committed.
    pub merges: usize,
    /// Source blocks replaced.
    pub blocks_in: usize,
    /// Blocks written.
    pub blocks_out: usize,
    /// Records moved.
    pub records: u64,
    /// Merges abandoned because a source changed meanwhile.
    pub conflicts: usize,
}

/// Runs one compaction pass over `tenant`.
///
/// # Errors
/// Store errors other than conflicts (which are counted and skipped), and
/// [`QueryError::Corrupt`] for a source block that does not decode.
pub async fn compact_tenant(
    store: &dyn LogStore,
    tenant: &Tenant,
    opts: &CompactionOptions,
) -> Result<CompactionReport, QueryError> {
    let mut report = CompactionReport::default();
    let mut scan = scan_for_compaction(store, tenant, TimeRange::ALL, ScanOrder::OldestFirst);
    let mut groups: Vec<Vec<BlockSummary>> = Vec::new();
    let mut run: Vec<BlockSummary> = Vec::new();
    let mut run_count = 0usize;
    let flush = |run: &mut Vec<BlockSummary>, groups: &mut Vec<Vec<BlockSummary>>| {
        if run.len() >= 2 {
            groups.push(std::mem::take(run));
        } else {
            run.clear();
        }
    };
    while let Some(s) = scan.next().await? {
        if groups.len() >= opts.max_merges {
            break;
        }
        let small = (s.count as usize) < opts.small_below;
        if !small {
            flush(&mut run, &mut groups);
            run_count = 0;
            continue;
        }
        let span_ok = run.first().is_none_or(|f| {
            let lo = f.min_ts.min(s.min_ts);
            let hi = run
                .iter()
                .map(|r| r.max_ts)
                .max()
                .unwrap_or(s.max_ts)
                .max(s.max_ts);
            i128::from(hi.as_nanos()) - i128::from(lo.as_nanos()) <= i128::from(opts.max_span_nanos)
        });
        if !span_ok || run_count + s.count as usize > opts.target_records {
            flush(&mut run, &mut groups);
            run_count = 0;
        }
        run_count += s.count as usize;
        run.push(std::sync::Arc::unwrap_or_clone(s));
    }
    if groups.len() < opts.max_merges {
        flush(&mut run, &mut groups);
    }
    for group in groups {
        merge_group(store, tenant, &group, opts, &mut report).await?;
    }
    Ok(report)
}

async fn merge_group(
    store: &dyn LogStore,
    tenant: &Tenant,
    group: &[BlockSummary],
    opts: &CompactionOptions,
    report: &mut CompactionReport,
) -> Result<(), QueryError> {
    let ids: Vec<BlockId> = group.iter().map(|s| s.id).collect();
    let payloads = store.block_payloads(tenant, &ids).await?;
    if payloads.len() != ids.len() {
        report.conflicts += 1;
        return Ok(());
    }
    let mut records: Vec<LogRecord> = Vec::new();
    for (id, p) in &payloads {
        let b = DecodedBlock::decode(tenant, p).map_err(|source| QueryError::Corrupt {
            tenant: tenant.to_string(),
            block: *id,
            source,
        })?;
        records.extend(b.records().map_err(|source| QueryError::Corrupt {
            tenant: tenant.to_string(),
            block: *id,
            source,
        })?);
    }
    records.sort_by_key(|r| (r.timestamp, r.id));
    records.dedup_by(|b, a| a.id == b.id && a.timestamp == b.timestamp);
    let mut sorted_ids = ids.clone();
    sorted_ids.sort_unstable();
    let mut merged: Vec<EncodedBlock> = Vec::new();
    for (part, chunk) in records.chunks(opts.target_records.max(1)).enumerate() {
        let id = BlockId::for_merge(tenant, &sorted_ids, part as u32);
        merged.push(
            encode_block(tenant.clone(), id, chunk, &opts.block).map_err(|source| {
                QueryError::Corrupt {
                    tenant: tenant.to_string(),
                    block: id,
                    source,
                }
            })?,
        );
    }
    match store.replace_blocks(tenant, &ids, &merged).await {
        Ok(()) => {
            report.merges += 1;
            report.blocks_in += ids.len();
            report.blocks_out += merged.len();
            report.records += records.len() as u64;
            Ok(())
        }
        Err(e) if e.kind() == ErrorKind::Conflict => {
            report.conflicts += 1;
            Ok(())
        }
        Err(e) => Err(e.into()),
    }
}
