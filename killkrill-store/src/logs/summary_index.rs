//! An in-memory index of parsed block summaries, per tenant.
//!
//! Full-text and volume queries over a day test every block summary of the
//! day; reading and decoding ≈2,400 summaries from SQL on every request
//! dominated them. This index keeps the parsed summaries (and, once a
//! full-text query needed them, the token filters) of a tenant's blocks in
//! two ordered maps — by `(max_ts, id)` for newest-first scans and by
//! `(min_ts, id)` for oldest-first ones — and answers
//! [`SummaryRequest`]s from memory.
//!
//! Blocks are immutable (a block id always names the same records), so an
//! entry never goes stale; only the *set* of blocks changes. The set is kept
//! in step with the database by generations (see `index_sync.rs`): every
//! transaction that adds or deletes blocks of a tenant bumps the tenant's
//! generation, so one point lookup per request says whether anything
//! changed, and if so, whether blocks were only added (fetch the rows
//! stamped with the new generations) or also deleted (compaction,
//! retention: re-list the ids and drop the missing ones).
//!
//! Full-text scans test token filters 64 blocks at a time: blocks join
//! groups of 64 in arrival order, and complete groups get their filters
//! bit-sliced (`summary_groups.rs`, a child module).
//!
//! Memory is bounded by `logs.summary_index_mb`: token filters and slices are shed
//! first (least recently used half), then whole tenants (least recently
//! queried); a tenant that alone exceeds the budget is not indexed and is
//! answered from SQL as before.

use std::collections::{BTreeMap, HashMap, HashSet};
use std::ops::Bound;
use std::sync::atomic::{AtomicU64, Ordering};
use std::sync::{Arc, Mutex, RwLock};
use std::time::{Duration, Instant};

use killkrill_core::event::{Tenant, Timestamp};
use killkrill_core::logblock::{BlockId, BlockSummary, Bloom};
use killkrill_core::storage::{ScanOrder, SummaryRequest};

#[path = "summary_groups.rs"]
mod groups;
use groups::{EXAMINE_FACTOR, Groups, MaskCache, Verdict};

/// Fixed cost of an entry beyond its summary blob: the struct, two map
/// nodes, one hash slot, the `Arc`s.
const ENTRY_OVERHEAD: usize = 320;

/// How long a tenant too big for the budget is answered from SQL before
/// the index tries again.
const OVERSIZE_RETRY: Duration = Duration::from_secs(300);

/// One block.
#[derive(Debug)]
pub(crate) struct Entry {
    /// The summary without token filter.
    plain: Arc<BlockSummary>,
    /// The same with its token filter, once a query needed it.
    full: Mutex<Option<Arc<BlockSummary>>>,
    /// Bytes of `plain` in the budget.
    weight: usize,
    /// Last use of `full` (index clock).
    used: AtomicU64,
}

impl Entry {
    fn new(plain: BlockSummary, summary_len: usize) -> Arc<Self> {
        let plain = if plain.tokens.is_some() {
            Arc::new(BlockSummary {
                tokens: None,
                ..plain
            })
        } else {
            Arc::new(plain)
        };
        Arc::new(Entry {
            plain,
            full: Mutex::new(None),
            weight: summary_len + ENTRY_OVERHEAD,
            used: AtomicU64::new(0),
        })
    }

    pub(crate) fn id(&self) -> BlockId {
        self.plain.id
    }

    pub(crate) fn plain(&self) -> &Arc<BlockSummary> {
        &self.plain
    }

    fn full(&self) -> Option<Arc<BlockSummary>> {
        self.full.lock().ok().and_then(|g| g.clone())
    }

    /// Records a use of `full` at `now` unless one was recorded within the
    /// last [`USE_SLACK`] ticks: shedding only needs a rough order, and a
    /// store per entry per query makes the two cores of concurrent queries
    /// fight over the entries' cache lines.
    fn touch(&self, now: u64) {
        if now.saturating_sub(self.used.load(Ordering::Relaxed)) > USE_SLACK {
            self.used.store(now, Ordering::Relaxed);
        }
    }
}

/// See [`Entry::touch`]: index clock ticks (one per summary page served).
const USE_SLACK: u64 = 256;

/// Weight of a token filter attached to an entry: the filter and a second
/// summary struct carrying it.
fn token_weight(b: &Bloom, plain_weight: usize) -> usize {
    b.byte_len() + 64 + plain_weight
}

/// What a sync has to do for a tenant, given the database's generations.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub(crate) enum Staleness {
    /// Up to date: answer from memory.
    Fresh,
    /// Not indexed yet: load every summary.
    Load,
    /// Blocks were only added since generation `since`.
    Added { since: i64 },
    /// Blocks were deleted (or a listed block was missing): re-list ids.
    Relist,
    /// Too big for the budget: answer from SQL.
    Oversize,
}

/// A block's place in one scan order.
#[derive(Debug, Clone)]
struct Slot {
    entry: Arc<Entry>,
    /// The other end of the block's span (`min_ts` in `newest`, `max_ts`
    /// in `oldest`), tested without reaching into the entry.
    other_ts: Timestamp,
    /// Arrival number in this tenant index: its group (`summary_groups.rs`).
    seq: u64,
}

#[derive(Debug, Default)]
struct TenantIndex {
    by_id: HashMap<BlockId, Arc<Entry>>,
    newest: BTreeMap<(Timestamp, BlockId), Slot>,
    oldest: BTreeMap<(Timestamp, BlockId), Slot>,
    /// Next arrival number.
    next_seq: u64,
    /// Arrivals in groups of 64, with their sliced token filters.
    groups: Groups,
    /// Which tenant index this is (slices built for a replaced one are
    /// not installed in its successor).
    epoch: u64,
    /// The database generation this state is exact for (or newer).
    generation: i64,
    /// A block the index listed was missing in the database.
    dirty: bool,
    /// Last query (index clock), for tenant eviction.
    last_used: u64,
}

fn entry_bytes(e: &Entry) -> usize {
    e.weight
        + e.full().map_or(0, |f| {
            f.tokens.as_ref().map_or(0, |b| token_weight(b, e.weight))
        })
}

impl TenantIndex {
    /// Adds a block; returns the change in bytes.
    fn insert(&mut self, e: Arc<Entry>) -> isize {
        let s = e.plain.clone();
        let mut delta = e.weight as isize;
        if let Some(old) = self.by_id.insert(s.id, e.clone()) {
            // Same id, same block: the new entry replaces the old one.
            delta -= entry_bytes(&old) as isize;
        }
        let seq = self.next_seq;
        self.next_seq += 1;
        self.groups.join(seq, s.id);
        let slot = |entry, other_ts| Slot {
            entry,
            other_ts,
            seq,
        };
        if let Some(old) = self
            .newest
            .insert((s.max_ts, s.id), slot(e.clone(), s.min_ts))
        {
            delta -= self.groups.leave(old.seq) as isize;
        }
        self.oldest.insert((s.min_ts, s.id), slot(e, s.max_ts));
        delta
    }

    /// Removes a block; returns the bytes freed.
    fn remove(&mut self, id: &BlockId) -> usize {
        let Some(e) = self.by_id.remove(id) else {
            return 0;
        };
        let slot = self.newest.remove(&(e.plain.max_ts, *id));
        self.oldest.remove(&(e.plain.min_ts, *id));
        entry_bytes(&e) + slot.map_or(0, |s| self.groups.leave(s.seq))
    }

    fn bytes(&self) -> usize {
        self.by_id.values().map(|e| entry_bytes(e)).sum::<usize>() + self.groups.bytes()
    }

    /// The entries a summary page returns, in its order. With `masks`,
    /// blocks whose group's slices rule them out are left out (looked at,
    /// not returned).
    fn select(&self, req: &SummaryRequest<'_>, mut masks: Option<&mut MaskCache<'_>>) -> Picked {
        let mut out = Picked {
            entries: Vec::new(),
            by_slices: Vec::new(),
            examined: 0,
            last: None,
            done: true,
        };
        if req.range.is_empty() || req.limit == 0 {
            return out;
        }
        let (start, end) = (req.range.start, req.range.end);
        let max_examined = req.limit.saturating_mul(EXAMINE_FACTOR);
        let newest = req.order == ScanOrder::NewestFirst;
        let mut visit = |key: &(Timestamp, BlockId), slot: &Slot| -> bool {
            let wanted = if newest {
                slot.other_ts < end
            } else {
                slot.other_ts >= start
            };
            if !wanted {
                return true;
            }
            if out.examined >= max_examined {
                out.done = false;
                return false;
            }
            out.examined += 1;
            out.last = Some(*key);
            let verdict = masks
                .as_deref_mut()
                .map_or(Verdict::Unknown, |m| m.verdict(&self.groups, slot.seq));
            if verdict == Verdict::Out {
                return true;
            }
            out.entries.push(slot.entry.clone());
            out.by_slices.push(verdict == Verdict::Sliced);
            if out.entries.len() >= req.limit {
                out.done = false;
                return false;
            }
            true
        };
        if newest {
            let upper = match req.after {
                Some(k) => Bound::Excluded(k),
                None => Bound::Unbounded,
            };
            for (key, slot) in self.newest.range((Bound::Unbounded, upper)).rev() {
                if key.0 < start || !visit(key, slot) {
                    break;
                }
            }
        } else {
            let lower = match req.after {
                Some(k) => Bound::Excluded(k),
                None => Bound::Unbounded,
            };
            for (key, slot) in self.oldest.range((lower, Bound::Unbounded)) {
                if key.0 >= end || !visit(key, slot) {
                    break;
                }
            }
        }
        out
    }
}

#[derive(Debug, Default)]
struct Inner {
    tenants: HashMap<Tenant, TenantIndex>,
    /// Tenants too big for the budget, and since when.
    oversize: HashMap<Tenant, Instant>,
    bytes: usize,
}

/// See the module docs.
#[derive(Debug)]
pub(crate) struct SummaryIndex {
    inner: RwLock<Inner>,
    /// One sync at a time (they are rare; the others wait and then find
    /// the index fresh).
    pub(crate) sync: tokio::sync::Mutex<()>,
    budget: usize,
    clock: AtomicU64,
    /// Epochs of tenant indexes (see `TenantIndex::epoch`).
    epochs: AtomicU64,
}

/// A summary page out of the index.
pub(crate) struct Picked {
    /// The page, in order.
    pub(crate) entries: Vec<Arc<Entry>>,
    /// Per entry: its group's slices let it through (its own filter is
    /// not needed; it may not be held).
    pub(crate) by_slices: Vec<bool>,
    /// Blocks looked at (returned or left out by their group's slices).
    pub(crate) examined: usize,
    /// Sort key of the last block looked at.
    pub(crate) last: Option<(Timestamp, BlockId)>,
    /// No block is left after this page.
    pub(crate) done: bool,
}

/// Sizes, for metrics and tests.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Default)]
pub struct SummaryIndexStats {
    /// Tenants indexed.
    pub tenants: usize,
    /// Blocks indexed.
    pub blocks: usize,
    /// Blocks whose token filter is held.
    pub blocks_with_tokens: usize,
    /// Groups of 64 blocks whose token filters are held sliced.
    pub groups_sliced: usize,
    /// Bytes held (estimate, what the budget counts).
    pub bytes: usize,
}

impl SummaryIndex {
    pub(crate) fn new(budget: usize) -> Self {
        SummaryIndex {
            inner: RwLock::new(Inner::default()),
            sync: tokio::sync::Mutex::new(()),
            budget,
            clock: AtomicU64::new(0),
            epochs: AtomicU64::new(0),
        }
    }

    pub(crate) fn enabled(&self) -> bool {
        self.budget > 0
    }

    fn tick(&self) -> u64 {
        self.clock.fetch_add(1, Ordering::Relaxed) + 1
    }

    /// What has to happen before `tenant` can be answered from memory,
    /// given the database's `(gen, deleted_gen)`.
    pub(crate) fn staleness(
        &self,
        tenant: &Tenant,
        generation: i64,
        deleted_gen: i64,
    ) -> Staleness {
        let Ok(g) = self.inner.read() else {
            return Staleness::Oversize;
        };
        match g.tenants.get(tenant) {
            None => match g.oversize.get(tenant) {
                Some(since) if since.elapsed() < OVERSIZE_RETRY => Staleness::Oversize,
                _ => Staleness::Load,
            },
            Some(t) if t.dirty || deleted_gen > t.generation => Staleness::Relist,
            Some(t) if generation > t.generation => Staleness::Added {
                since: t.generation,
            },
            Some(_) => Staleness::Fresh,
        }
    }

    /// The ids currently indexed for `tenant` (for a re-list).
    pub(crate) fn ids(&self, tenant: &Tenant) -> HashSet<BlockId> {
        self.inner
            .read()
            .ok()
            .and_then(|g| {
                g.tenants
                    .get(tenant)
                    .map(|t| t.by_id.keys().copied().collect())
            })
            .unwrap_or_default()
    }

    /// Makes `tenant`'s index exactly `keep` and `blocks` (a full listing
    /// taken after generation `gen` was read): `keep` are ids already
    /// indexed that stay (a re-list only fetches the new ones; it is
    /// applied in place, so the groups of the blocks that stay keep their
    /// slices), `blocks` the new ones.
    pub(crate) fn replace(
        &self,
        tenant: &Tenant,
        generation: i64,
        keep: &HashSet<BlockId>,
        blocks: Vec<(BlockSummary, usize)>,
    ) {
        let Ok(mut g) = self.inner.write() else {
            return;
        };
        let now = self.tick();
        // Arrivals in time order: groups of 64 (`summary_groups.rs`) then
        // hold neighbours in time, as live data's do.
        let mut blocks = blocks;
        blocks.sort_unstable_by_key(|(s, _)| (s.max_ts, s.id));
        // The listing was taken after `gen` was read: exact for `gen` (it
        // may hold later changes too; the next sync re-checks those).
        if let Some(t) = g.tenants.get_mut(tenant) {
            // A re-list, in place: the blocks not listed go, the new ones
            // join, and the groups (and slices) of the others stay.
            let gone: Vec<BlockId> = t
                .by_id
                .keys()
                .filter(|id| !keep.contains(id))
                .copied()
                .collect();
            let freed: usize = gone.iter().map(|id| t.remove(id)).sum();
            // Listed as held but removed meanwhile by a local compaction:
            // its generation is newer than `gen`, so the next sync
            // re-lists; make sure of it.
            let missing = keep.iter().any(|id| !t.by_id.contains_key(id));
            let mut delta = 0isize;
            for (s, len) in blocks {
                delta += t.insert(Entry::new(s, len));
            }
            t.generation = generation;
            t.dirty = missing;
            t.last_used = now;
            g.bytes = g.bytes.saturating_sub(freed).saturating_add_signed(delta);
        } else {
            let mut t = TenantIndex {
                generation,
                last_used: now,
                epoch: self.epochs.fetch_add(1, Ordering::Relaxed) + 1,
                dirty: !keep.is_empty(),
                ..TenantIndex::default()
            };
            for (s, len) in blocks {
                t.insert(Entry::new(s, len));
            }
            g.bytes += t.bytes();
            g.tenants.insert(tenant.clone(), t);
        }
        g.oversize.remove(tenant);
        self.enforce(&mut g, tenant);
    }

    /// Adds blocks that generations `(t.gen, gen]` stamped.
    pub(crate) fn add(&self, tenant: &Tenant, generation: i64, blocks: Vec<(BlockSummary, usize)>) {
        let Ok(mut g) = self.inner.write() else {
            return;
        };
        let Some(t) = g.tenants.get_mut(tenant) else {
            return;
        };
        let mut blocks = blocks;
        blocks.sort_unstable_by_key(|(s, _)| (s.max_ts, s.id));
        let mut delta = 0isize;
        for (s, len) in blocks {
            delta += t.insert(Entry::new(s, len));
        }
        t.generation = t.generation.max(generation);
        g.bytes = g.bytes.saturating_add_signed(delta);
        self.enforce(&mut g, tenant);
    }

    /// This process committed generation `gen` of `tenant`: it deleted
    /// `removed` and added `added`. Applied only when the index is exactly
    /// at `gen - 1` (otherwise the next sync fetches it).
    pub(crate) fn apply_local(
        &self,
        tenant: &Tenant,
        generation: i64,
        removed: &[BlockId],
        added: &[&BlockSummary],
    ) {
        let Ok(mut g) = self.inner.write() else {
            return;
        };
        let Some(t) = g.tenants.get_mut(tenant) else {
            return;
        };
        if t.generation != generation - 1 || t.dirty {
            return;
        }
        let mut freed = 0usize;
        for id in removed {
            freed += t.remove(id);
        }
        let mut delta = 0isize;
        for s in added {
            let len = s.summary_bytes().len();
            delta += t.insert(Entry::new((*s).clone(), len));
        }
        t.generation = generation;
        g.bytes = g.bytes.saturating_sub(freed).saturating_add_signed(delta);
        metrics::counter!("killkrill_store_log_summary_index_syncs_total", "kind" => "local")
            .increment(1);
        self.enforce(&mut g, tenant);
    }

    /// A block the index listed for `tenant` was gone: re-list next time.
    pub(crate) fn mark_dirty(&self, tenant: &Tenant) {
        if let Ok(mut g) = self.inner.write()
            && let Some(t) = g.tenants.get_mut(tenant)
        {
            t.dirty = true;
        }
    }

    /// Whether `tenant` is indexed and not marked for a re-list: a later
    /// page of a scan whose first page was checked can be answered as is.
    pub(crate) fn serves(&self, tenant: &Tenant) -> bool {
        self.inner
            .read()
            .is_ok_and(|g| g.tenants.get(tenant).is_some_and(|t| !t.dirty))
    }

    /// One page, or `None` when `tenant` is not indexed. Blocks whose
    /// group's slices rule out `req.tokens` are left out when the page
    /// wants token filters; also returns the complete groups it met
    /// unsliced (to slice: [`slice_jobs`](Self::slice_jobs)).
    pub(crate) fn select_pruned(&self, req: &SummaryRequest<'_>) -> Option<(Picked, Vec<u64>)> {
        let now = self.tick();
        let g = self.inner.read().ok()?;
        let t = g.tenants.get(req.tenant)?;
        let mut masks =
            (req.with_tokens && !req.tokens.is_empty()).then(|| MaskCache::new(req.tokens, now));
        let picked = t.select(req, masks.as_mut());
        drop(g);
        if picked.examined > picked.entries.len() {
            metrics::counter!("killkrill_store_log_summary_index_group_skips_total")
                .increment((picked.examined - picked.entries.len()) as u64);
        }
        // Eviction order only; a lost update is harmless.
        if let Ok(mut g) = self.inner.try_write()
            && let Some(t) = g.tenants.get_mut(req.tenant)
        {
            t.last_used = now;
        }
        Some((picked, masks.map(|m| m.unsliced).unwrap_or_default()))
    }

    /// The summaries with their token filters: those already held, and
    /// the ids whose filters are still to fetch.
    pub(crate) fn with_tokens(
        &self,
        entries: &[Arc<Entry>],
    ) -> (Vec<Option<Arc<BlockSummary>>>, Vec<BlockId>) {
        let now = self.tick();
        let mut missing = Vec::new();
        let out = entries
            .iter()
            .map(|e| {
                let f = e.full();
                if f.is_some() {
                    e.touch(now);
                } else {
                    missing.push(e.id());
                }
                f
            })
            .collect();
        (out, missing)
    }

    /// Attaches fetched token filters; returns the summaries with them.
    pub(crate) fn attach_tokens(
        &self,
        tenant: &Tenant,
        entries: &[Arc<Entry>],
        filters: &HashMap<BlockId, Arc<Bloom>>,
    ) -> HashMap<BlockId, Arc<BlockSummary>> {
        let now = self.tick();
        let mut added = 0usize;
        let mut out = HashMap::with_capacity(filters.len());
        // A block whose group was sliced since the page was picked: its
        // filter serves this page but is not kept (the slices answer).
        let sliced = self.in_sliced_groups(tenant, entries);
        for (e, sliced) in entries.iter().zip(sliced) {
            let Some(b) = filters.get(&e.id()) else {
                continue;
            };
            let full = Arc::new(BlockSummary {
                tokens: Some(b.clone()),
                ..(*e.plain).clone()
            });
            if !sliced && let Ok(mut f) = e.full.lock() {
                if f.is_none() {
                    added += token_weight(b, e.weight);
                }
                *f = Some(full.clone());
            }
            e.used.store(now, Ordering::Relaxed);
            out.insert(e.id(), full);
        }
        if let Ok(mut g) = self.inner.write() {
            // Only count filters of entries still indexed (a sync may have
            // replaced the tenant meanwhile; then they are not held).
            if g.tenants.contains_key(tenant) {
                g.bytes += added;
            }
            self.enforce(&mut g, tenant);
        }
        out
    }

    /// Brings the index under budget: token filters first (least recently
    /// used half at a time), then whole tenants (least recently queried,
    /// `current` last); `current` alone over budget is dropped and marked
    /// oversize.
    fn enforce(&self, g: &mut Inner, current: &Tenant) {
        while g.bytes > self.budget && self.shed_tokens(g) > 0 {}
        if g.bytes > self.budget
            && g.tenants
                .get(current)
                .is_some_and(|t| t.bytes() > self.budget)
        {
            // Alone over budget: not indexed; SQL answers it for a while.
            if let Some(t) = g.tenants.remove(current) {
                g.bytes = g.bytes.saturating_sub(t.bytes());
            }
            g.oversize.insert(current.clone(), Instant::now());
            metrics::counter!("killkrill_store_log_summary_index_evictions_total").increment(1);
        }
        while g.bytes > self.budget {
            let victim = g
                .tenants
                .iter()
                .filter(|(k, _)| *k != current)
                .min_by_key(|(_, t)| t.last_used)
                .map(|(k, _)| k.clone())
                .unwrap_or_else(|| current.clone());
            if let Some(t) = g.tenants.remove(&victim) {
                g.bytes = g.bytes.saturating_sub(t.bytes());
                metrics::counter!("killkrill_store_log_summary_index_evictions_total").increment(1);
            }
            if victim == *current {
                g.oversize.insert(current.clone(), Instant::now());
                break;
            }
        }
        let blocks: usize = g.tenants.values().map(|t| t.by_id.len()).sum();
        metrics::gauge!("killkrill_store_log_summary_index_bytes").set(g.bytes as f64);
        metrics::gauge!("killkrill_store_log_summary_index_blocks").set(blocks as f64);
    }

    /// Current sizes.
    pub(crate) fn stats(&self) -> SummaryIndexStats {
        let Ok(g) = self.inner.read() else {
            return SummaryIndexStats::default();
        };
        SummaryIndexStats {
            tenants: g.tenants.len(),
            blocks: g.tenants.values().map(|t| t.by_id.len()).sum(),
            blocks_with_tokens: g
                .tenants
                .values()
                .flat_map(|t| t.by_id.values())
                .filter(|e| e.full().is_some())
                .count(),
            groups_sliced: g.tenants.values().map(|t| t.groups.sliced()).sum(),
            bytes: g.bytes,
        }
    }

    /// The indexed ids of `tenant` with their spans, sorted (tests).
    pub(crate) fn snapshot(&self, tenant: &Tenant) -> Option<Vec<(BlockId, Timestamp, Timestamp)>> {
        let g = self.inner.read().ok()?;
        let t = g.tenants.get(tenant)?;
        let mut v: Vec<_> = t
            .by_id
            .values()
            .map(|e| (e.plain.id, e.plain.min_ts, e.plain.max_ts))
            .collect();
        v.sort();
        Some(v)
    }
}

#[cfg(test)]
#[path = "summary_index_tests.rs"]
mod tests;
