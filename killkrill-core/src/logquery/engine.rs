//! The newest/oldest-first merge over pruned blocks, with cursor pagination.
//!
//! Blocks are opened in order of their newest record (newest first) or
//! oldest record (oldest first). After each round of opened blocks, a
//! pending record is *final* when it sorts strictly before anything the next
//! unopened candidate can hold (newest first: its timestamp is greater than
//! that block's `max_ts`). The query stops once `limit + 1` final records are
//! known — the extra one says whether a next page exists — or no candidate
//! is left. Blocks whose spans overlap (late or out-of-order data, a batch
//! from a slow receiver) are handled by the same rule; records with the same
//! `(timestamp, id)` (a duplicate that slipped past the registry) are
//! returned once.

use std::sync::Arc;

use super::filter::{CompiledFilter, TextWalk};
use super::scan::SummaryScan;
use super::{Cursor, LogPage, LogQuery, MAX_PAGE_SIZE, PageRow, QueryError, RowPage};
use crate::event::{EventId, Timestamp};
use crate::logblock::{BlockError, BlockId, BlockSummary, DecodedBlock, encode_frame};

use crate::storage::{ErrorKind, LogStore, ScanOrder, StoreError, TimeRange};

type Key = (Timestamp, EventId);

/// A pending record: its key, the slot of its block among the opened ones,
/// and its index in the block.
type Pending = (Key, u32, u32);

/// Most blocks fetched in one round trip.
const MAX_FETCH: usize = 16;

/// Decoded bytes a page may keep referenced for its rows before it releases
/// blocks no row points to any more and repacks sparsely used ones into
/// blocks of just the rows it keeps. A sparse page (a rare token, one match
/// per block, `limit` 5,000) would otherwise pin thousands of whole decoded
/// blocks until its response is written, past the block cache's budget.
///
/// Every block the page holds counts. Over the budget, the page first
/// repacks only the blocks it alone holds: a block also held elsewhere —
/// usually the store's cache of decoded blocks — costs little of the
/// page's own, and repacking it (decoding its rows into records and
/// encoding them again) was most of the cost of a page whose matches are
/// spread thinly over ~40 cached blocks. "Held elsewhere" may also be
/// another query holding a block the cache has evicted, so shared blocks
/// are repacked too once the page holds more than [`SHARED_PIN_FACTOR`]
/// budgets. A check runs whenever another budget's worth of blocks has been
/// opened since the last, and at the end: a page holds at most about
/// `SHARED_PIN_FACTOR + 1` budgets of decoded blocks.
const PIN_BUDGET: usize = 64 << 20;

/// Budgets of held blocks past which a page repacks shared blocks too
/// (see [`PIN_BUDGET`]).
const SHARED_PIN_FACTOR: usize = 4;

/// Runs one page of a log query, materialising its records.
///
/// # Errors
/// As for [`query_log_rows`].
pub async fn query_logs(store: &dyn LogStore, q: &LogQuery) -> Result<LogPage, QueryError> {
    let page = query_log_rows(store, q).await?;
    let records = page
        .rows
        .iter()
        .map(|r| {
            r.block
                .record(r.index)
                .map_err(|source| QueryError::Corrupt {
                    tenant: q.tenant.to_string(),
                    block: r.block_id,
                    source,
                })
        })
        .collect::<Result<Vec<_>, _>>()?;
    Ok(LogPage {
        records,
        next_cursor: page.next_cursor,
        blocks_decoded: page.blocks_decoded,
    })
}

/// Runs one page of a log query; its records stay in their decoded blocks.
///
/// # Errors
/// [`QueryError::Invalid`] for a limit outside 1..=[`MAX_PAGE_SIZE`] or a
/// text with too many tokens; store errors; [`QueryError::Corrupt`] for a
/// block that does not decode.
pub async fn query_log_rows(store: &dyn LogStore, q: &LogQuery) -> Result<RowPage, QueryError> {
    query_log_rows_pinning(store, q, PIN_BUDGET).await
}

/// [`query_log_rows`] with the bytes of decoded blocks the page may keep
/// referenced before it shrinks them (tests use a small budget).
pub(crate) async fn query_log_rows_pinning(
    store: &dyn LogStore,
    q: &LogQuery,
    pin_budget: usize,
) -> Result<RowPage, QueryError> {
    for _ in 0..MAX_RESTARTS {
        // `None`: a block listed by the scan was gone when its payload was
        // fetched (compacted into another block, or expired). The scan's
        // view is stale, so start again rather than return a page with a
        // hole in it.
        if let Some(page) = query_once(store, q, pin_budget).await? {
            return Ok(page);
        }
    }
    Err(QueryError::Store(StoreError::new(
        ErrorKind::Conflict,
        "blocks kept changing under the query (compaction or retention); retry",
    )))
}

/// How often a query restarts when blocks vanish under it.
pub(crate) const MAX_RESTARTS: usize = 5;

/// One attempt; `None` when a listed block vanished before it was read.
async fn query_once(
    store: &dyn LogStore,
    q: &LogQuery,
    pin_budget: usize,
) -> Result<Option<RowPage>, QueryError> {
    if q.limit == 0 || q.limit > MAX_PAGE_SIZE {
        return Err(QueryError::Invalid(format!(
            "limit must be between 1 and {MAX_PAGE_SIZE}, got {}",
            q.limit
        )));
    }
    let filter = CompiledFilter::new(&q.filter).ok_or_else(|| {
        QueryError::Invalid(format!(
            "full-text query has more than {} distinct tokens",
            super::filter::MAX_QUERY_TOKENS
        ))
    })?;
    let newest = q.order == ScanOrder::NewestFirst;
    // A cursor narrows the range: nothing at or beyond it is wanted.
    let mut range = q.range;
    if let Some(c) = q.cursor {
        if newest {
            range.end = range.end.min(c.timestamp.saturating_add_nanos(1));
        } else {
            range.start = range.start.max(c.timestamp);
        }
    }
    let cursor: Option<Key> = q.cursor.map(|c| (c.timestamp, c.id));
    let want = q.limit + 1;

    let mut scan = SummaryScan::new(store, &q.tenant, range, q.order, Some(&filter));
    let mut pending: Vec<Pending> = Vec::new();
    // Blocks that contributed a pending record, by slot (`None` once no
    // pending record points to it any more), and the bytes they hold.
    let mut opened: Vec<(BlockId, Option<Arc<DecodedBlock>>)> = Vec::new();
    let mut pinned = 0usize;
    let mut shrink_at = pin_budget;
    let mut decoded = 0usize;
    let mut fetch = 1usize;
    loop {
        let mut round: Vec<std::sync::Arc<BlockSummary>> = Vec::new();
        // Most matches the round's blocks can hold (from their summaries):
        // once they could fill the page, fetching more blocks in the same
        // round is likely wasted work (a later round still follows if not).
        // A full page still needs blocks that overlap its last record (the
        // finality check below stops those).
        let mut bound = 0usize;
        while round.len() < fetch
            && (round.is_empty() || pending.len() >= want || pending.len() + bound < want)
        {
            match scan.next().await? {
                Some(s) => {
                    bound += filter.max_matches(&s);
                    round.push(s);
                }
                None => break,
            }
            // Stop early if the next candidate cannot contribute any more.
            if pending.len() >= want
                && let Some(next) = scan.peek().await?
                && is_final(&pending[want - 1].0, next, newest)
            {
                break;
            }
        }
        if round.is_empty() {
            break;
        }
        fetch = (fetch * 2).min(MAX_FETCH);
        let ids: Vec<BlockId> = round.iter().map(|s| s.id).collect();
        let mut blocks = store.decoded_blocks(&q.tenant, &ids).await?;
        if blocks.len() != ids.len() {
            return Ok(None);
        }
        // Open the round's blocks in scan order, so the ones that can no
        // longer contribute are skipped.
        blocks.sort_by_key(|(id, _)| ids.iter().position(|x| x == id));
        let mut exhausted = false;
        for ((id, block), summary) in blocks.into_iter().zip(&round) {
            if pending.len() >= want && is_final(&pending[want - 1].0, summary, newest) {
                // Scan order: every later block of the round (and of the
                // scan) is as final as this one.
                exhausted = true;
                break;
            }
            let block = block.map_err(|source| QueryError::Corrupt {
                tenant: q.tenant.to_string(),
                block: id,
                source,
            })?;
            decoded += 1;
            let worst = if pending.len() >= want {
                Some(pending[want - 1].0)
            } else {
                None
            };
            let before = pending.len();
            let slot = opened.len() as u32;
            collect(
                &block,
                slot,
                &filter,
                &range,
                cursor,
                worst,
                want,
                newest,
                &mut pending,
            )
            .map_err(|source| QueryError::Corrupt {
                tenant: q.tenant.to_string(),
                block: id,
                source,
            })?;
            if pending.len() != before {
                pinned += block.byte_len();
                opened.push((id, Some(block)));
                pending.sort_by(|a, b| if newest { b.0.cmp(&a.0) } else { a.0.cmp(&b.0) });
                pending.dedup_by(|b, a| a.0 == b.0);
                pending.truncate(want);
                if pinned > shrink_at {
                    pinned = relieve(&mut opened, &mut pending, q, pin_budget)?;
                    shrink_at = pinned.saturating_add(pin_budget);
                }
            }
        }
        if exhausted {
            break;
        }
        if pending.len() >= want {
            match scan.peek().await? {
                None => break,
                Some(next) if is_final(&pending[want - 1].0, next, newest) => break,
                Some(_) => {}
            }
        }
    }
    let next_cursor = if pending.len() > q.limit {
        pending.truncate(q.limit);
        pending.last().map(|(k, _, _)| Cursor {
            timestamp: k.0,
            id: k.1,
        })
    } else {
        None
    };
    // The page is held until its response is written: shrink it once more
    // if it is over the budget, the last rows included.
    if pinned > pin_budget {
        relieve(&mut opened, &mut pending, q, pin_budget)?;
    }
    let rows = pending
        .into_iter()
        .map(|(_, slot, index)| {
            let (block_id, block) = &opened[slot as usize];
            let block = block.clone().ok_or_else(|| released(q, *block_id))?;
            Ok(PageRow {
                block,
                block_id: *block_id,
                index: index as usize,
            })
        })
        .collect::<Result<_, QueryError>>()?;
    Ok(Some(RowPage {
        rows,
        next_cursor,
        blocks_decoded: decoded,
    }))
}

/// [`shrink`] without touching shared blocks, then with them if the page
/// still holds more than [`SHARED_PIN_FACTOR`] budgets; returns the bytes
/// held.
fn relieve(
    opened: &mut [(BlockId, Option<Arc<DecodedBlock>>)],
    pending: &mut [Pending],
    q: &LogQuery,
    pin_budget: usize,
) -> Result<usize, QueryError> {
    let held = shrink(opened, pending, q, false)?;
    if held > pin_budget.saturating_mul(SHARED_PIN_FACTOR) {
        return shrink(opened, pending, q, true);
    }
    Ok(held)
}

/// Releases the opened blocks no pending record points to, and replaces a
/// block of which the page keeps under a quarter of the records by a block
/// of just those records (same order, so their encoding and JSON are the
/// same) — only if the page alone holds it, unless `shared`; returns the
/// bytes of the blocks still held (see [`PIN_BUDGET`]).
fn shrink(
    opened: &mut [(BlockId, Option<Arc<DecodedBlock>>)],
    pending: &mut [Pending],
    q: &LogQuery,
    shared: bool,
) -> Result<usize, QueryError> {
    let mut rows: Vec<Vec<usize>> = vec![Vec::new(); opened.len()];
    for (p, row) in pending.iter().enumerate() {
        rows[row.1 as usize].push(p);
    }
    let mut pinned = 0;
    for (slot, (id, held)) in opened.iter_mut().enumerate() {
        let Some(block) = held.as_ref() else {
            continue;
        };
        let mine = &rows[slot];
        if mine.is_empty() {
            *held = None;
            continue;
        }
        // Shared (the cache, another query): repacked only when asked.
        if mine.len() * 4 < block.len() && (shared || Arc::strong_count(block) == 1) {
            let corrupt = |source| QueryError::Corrupt {
                tenant: q.tenant.to_string(),
                block: *id,
                source,
            };
            let records = mine
                .iter()
                .map(|&p| block.record(pending[p].2 as usize))
                .collect::<Result<Vec<_>, _>>()
                .map_err(corrupt)?;
            let small = DecodedBlock::from_frame(q.tenant.clone(), encode_frame(&records))
                .map_err(corrupt)?;
            for (k, &p) in mine.iter().enumerate() {
                pending[p].2 = k as u32;
            }
            *held = Some(Arc::new(small));
        }
        pinned += held.as_ref().map_or(0, |b| b.byte_len());
    }
    Ok(pinned)
}

/// A pending record's block was released: a bug in [`shrink`], reported
/// rather than answered with a wrong page.
fn released(q: &LogQuery, block: BlockId) -> QueryError {
    QueryError::Store(StoreError::new(
        ErrorKind::Fatal,
        format!(
            "block {block} of tenant {} was released while a row of the page still used it",
            q.tenant
        ),
    ))
}

/// Whether `key` sorts strictly before everything block `next` can hold.
fn is_final(key: &Key, next: &BlockSummary, newest: bool) -> bool {
    if newest {
        key.0 > next.max_ts
    } else {
        key.0 < next.min_ts
    }
}

/// Adds the block's matching records that can still make the page.
#[allow(clippy::too_many_arguments)]
fn collect(
    block: &DecodedBlock,
    slot: u32,
    filter: &CompiledFilter,
    range: &TimeRange,
    cursor: Option<Key>,
    worst: Option<Key>,
    want: usize,
    newest: bool,
    pending: &mut Vec<Pending>,
) -> Result<(), BlockError> {
    let n = block.len();
    let Some(bf) = filter.for_block(block) else {
        return Ok(());
    };
    let mut taken = 0;
    // Records in a block are sorted by (timestamp, id) ascending: walk them
    // in result order so the walk can stop after `want` matches. The
    // records a full-text token can be in (remembered with the block), or
    // a selective severity bound's list, narrow the walk to the records
    // that can match.
    let walk: Box<dyn Iterator<Item = usize>> = match filter.text_walk(block, newest) {
        TextWalk::Nothing => return Ok(()),
        TextWalk::Only(hits) => hits,
        TextWalk::Every => {
            if let Some(list) = bf.severity_candidates(block) {
                let at = |&i: &u32| i as usize;
                if newest {
                    Box::new(list.iter().rev().map(at))
                } else {
                    Box::new(list.iter().map(at))
                }
            } else if newest {
                Box::new((0..n).rev())
            } else {
                Box::new(0..n)
            }
        }
    };
    for i in walk {
        // Cheap column conditions first (a record failing them is skipped
        // whatever its key); the full text only for records in range.
        if !bf.matches_columns(block, i) {
            continue;
        }
        let key = (block.timestamp(i), block.id(i));
        if !range.contains(key.0) {
            continue;
        }
        if let Some(c) = cursor {
            let beyond = if newest { key < c } else { key > c };
            if !beyond {
                continue;
            }
        }
        if let Some(w) = worst {
            let before = if newest { key > w } else { key < w };
            if !before {
                break;
            }
        }
        if !bf.matches_rest(block, i)? {
            continue;
        }
        pending.push((key, slot, i as u32));
        taken += 1;
        if taken >= want {
            break;
        }
    }
    Ok(())
}

#[cfg(test)]
mod pin_tests {
    use super::*;
    use crate::event::{LogRecord, Tenant};
    use crate::logquery::{LogFilter, Order};

    fn block(t: &Tenant) -> Arc<DecodedBlock> {
        let records: Vec<LogRecord> = (0..40u128)
            .map(|i| LogRecord {
                id: Some(EventId::from_u128(i + 1)),
                tenant: Some(t.clone()),
                timestamp: Timestamp::from_nanos(i as i64),
                message: Some(format!("record {i}").into_bytes()),
                ..LogRecord::default()
            })
            .collect();
        Arc::new(DecodedBlock::from_frame(t.clone(), encode_frame(&records)).unwrap())
    }

    /// A sparsely used block the page alone holds is repacked; one the
    /// cache (or another query) also holds is left whole unless shared
    /// blocks are asked for; both count.
    #[test]
    fn shared_blocks_are_repacked_only_when_asked() {
        let t = Tenant::new("pins").unwrap();
        let q = LogQuery {
            tenant: t.clone(),
            range: TimeRange::ALL,
            filter: LogFilter::default(),
            order: Order::NewestFirst,
            limit: 10,
            cursor: None,
        };
        let (alone, shared) = (block(&t), block(&t));
        let cache = shared.clone();
        let id = |b: &DecodedBlock| BlockId::for_records(&t, [b.id(0), b.id(1)]);
        let (ida, ids) = (id(&alone), id(&shared));
        let mut opened = vec![(ida, Some(alone.clone())), (ids, Some(shared.clone()))];
        drop((alone, shared));
        let key = |b: &DecodedBlock, i: usize| (b.timestamp(i), b.id(i));
        let a = opened[0].1.clone().unwrap();
        let mut pending: Vec<Pending> = vec![
            (key(&a, 30), 0, 30),
            (key(&a, 7), 0, 7),
            (key(&cache, 12), 1, 12),
        ];
        drop(a);
        let held = shrink(&mut opened, &mut pending, &q, false).unwrap();
        let small = opened[0].1.as_ref().unwrap();
        let small_len = small.byte_len();
        assert_eq!(small.len(), 2, "the page's block is repacked to its rows");
        assert_eq!(held, small_len + cache.byte_len(), "both blocks count");
        assert_eq!((pending[0].2, pending[1].2), (0, 1));
        assert_eq!(small.message(0), Some(&b"record 30"[..]));
        assert_eq!(small.message(1), Some(&b"record 7"[..]));
        let kept = opened[1].1.as_ref().unwrap();
        assert!(Arc::ptr_eq(kept, &cache), "the cached block is kept whole");
        assert_eq!(pending[2].2, 12);
        // Asked for shared blocks too (the page holds too much): repacked
        // although the cache still holds it.
        let held = shrink(&mut opened, &mut pending, &q, true).unwrap();
        assert!(!Arc::ptr_eq(opened[1].1.as_ref().unwrap(), &cache));
        let small2 = opened[1].1.as_ref().unwrap();
        assert_eq!(small2.len(), 1);
        assert_eq!(
            small2.message(pending[2].2 as usize),
            Some(&b"record 12"[..])
        );
        assert_eq!(held, small_len + small2.byte_len());
    }
}
