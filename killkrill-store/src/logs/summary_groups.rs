//! Groups of 64 blocks with bit-sliced token filters, inside the summary
//! index (`summary_index.rs`, whose child module this is), and the
//! shedding of token filters and slices under the budget.
//!
//! A full-text scan over a day walks ≈2,400 blocks and tested each one's
//! token filter: for a token in no block (a rare token, a typo), two or so
//! cache misses per filter over tens of megabytes, plus a lock and two
//! reference counts per block — the bulk of the query. Blocks join a group
//! in the order they enter the index (which follows time for live data), 64
//! per group; once a group is complete and its members' filters are held, a
//! blocking task slices them into one [`BloomSlices`] (about the size of the
//! members' filters). A scan then asks each group once which of its members
//! may hold the query's tokens and leaves the others out without touching
//! them. Groups still open or not sliced yet are walked block by block as
//! before. A block the slices let through is handed to the engine without
//! a filter (and scanned) when the slices answer for it exactly (its
//! filter is a power-of-two divisor of the group's width with the group's
//! `k`: every filter since 2026-11-27); otherwise its own filter is kept
//! and tested. The slices only ever leave out blocks whose own filter
//! would.

use std::sync::Arc;
use std::sync::atomic::{AtomicBool, AtomicU64, Ordering};

use killkrill_core::event::Tenant;
use killkrill_core::logblock::{BlockId, Bloom, BloomSlices, GROUP_MEMBERS};

use super::{Entry, Inner, SummaryIndex, TenantIndex, token_weight};

/// Most blocks a pruning page looks at per summary it may return: bounds
/// the time a page holds the index's read lock.
pub(crate) const EXAMINE_FACTOR: usize = 64;

/// Group of arrival number `seq`, and the member's bit in it.
pub(crate) fn place(seq: u64) -> (u64, u64) {
    (
        seq / GROUP_MEMBERS as u64,
        1 << (seq % GROUP_MEMBERS as u64),
    )
}

/// One group of up to 64 blocks of a tenant.
#[derive(Debug, Default)]
pub(crate) struct Group {
    /// Member ids, by arrival (member `j` has arrival `64·g + j`).
    pub(crate) members: Vec<BlockId>,
    /// Members still indexed.
    pub(crate) live: u32,
    /// The members' token filters, sliced, once built.
    pub(crate) slices: Option<Arc<BloomSlices>>,
    /// A blocking task is slicing this group.
    pub(crate) building: AtomicBool,
    /// Last use of `slices` (index clock), for shedding.
    pub(crate) used: AtomicU64,
    /// When slices built for it did not fit the budget (index clock; 0:
    /// never): not tried again for [`RETRY_TICKS`].
    pub(crate) refused_at: AtomicU64,
}

/// Most groups one page offers for slicing.
const MAX_UNSLICED: usize = 16;

/// Index clock ticks (about one per summary page) before a group whose
/// slices did not fit the budget is sliced again.
const RETRY_TICKS: u64 = 4_096;

impl Group {
    pub(crate) fn is_full(&self) -> bool {
        self.members.len() == GROUP_MEMBERS
    }

    pub(crate) fn slice_bytes(&self) -> usize {
        self.slices.as_ref().map_or(0, |s| s.byte_len())
    }
}

/// Groups of one tenant, by group number.
#[derive(Debug, Default)]
pub(crate) struct Groups {
    /// Number of `groups[0]`.
    first: u64,
    groups: std::collections::VecDeque<Group>,
}

impl Groups {
    pub(crate) fn get(&self, g: u64) -> Option<&Group> {
        let i = usize::try_from(g.checked_sub(self.first)?).ok()?;
        self.groups.get(i)
    }

    fn get_mut(&mut self, g: u64) -> Option<&mut Group> {
        let i = usize::try_from(g.checked_sub(self.first)?).ok()?;
        self.groups.get_mut(i)
    }

    /// Adds the block of arrival `seq` (arrivals come in order).
    pub(crate) fn join(&mut self, seq: u64, id: BlockId) {
        let (g, _) = place(seq);
        if self.groups.is_empty() {
            self.first = g;
        }
        while self.first + self.groups.len() as u64 <= g {
            self.groups.push_back(Group::default());
        }
        if let Some(group) = self.get_mut(g) {
            group.members.push(id);
            group.live += 1;
        }
    }

    /// The block of arrival `seq` left the index; returns the bytes freed
    /// (a group left with no member drops its slices).
    pub(crate) fn leave(&mut self, seq: u64) -> usize {
        let (g, _) = place(seq);
        let Some(group) = self.get_mut(g) else {
            return 0;
        };
        group.live = group.live.saturating_sub(1);
        let mut freed = 0;
        if group.live == 0 && group.is_full() {
            freed = group.slice_bytes();
            group.slices = None;
            group.members = Vec::new();
        }
        // Retired groups (complete, then emptied) at the front go:
        // retention removes the oldest blocks.
        while self
            .groups
            .front()
            .is_some_and(|f| f.live == 0 && f.members.is_empty())
        {
            self.groups.pop_front();
            self.first += 1;
        }
        freed
    }

    /// Bytes of the slices held.
    pub(crate) fn bytes(&self) -> usize {
        self.groups.iter().map(Group::slice_bytes).sum()
    }

    pub(crate) fn sliced(&self) -> usize {
        self.groups.iter().filter(|g| g.slices.is_some()).count()
    }

    /// The groups with their numbers.
    pub(crate) fn numbered(&self) -> impl Iterator<Item = (u64, &Group)> {
        (self.first..).zip(self.groups.iter())
    }

    /// Drops group `g`'s slices; returns the bytes freed.
    pub(crate) fn drop_slices(&mut self, g: u64) -> usize {
        self.get_mut(g)
            .and_then(|x| x.slices.take())
            .map_or(0, |s| s.byte_len())
    }

    /// Installs the slices of group `g` built by a task; returns the bytes
    /// added (0 when the group went or already has them).
    fn install(&mut self, g: u64, slices: Arc<BloomSlices>, now: u64) -> usize {
        let Some(group) = self.get_mut(g) else {
            return 0;
        };
        group.building.store(false, Ordering::Relaxed);
        if group.slices.is_some() || group.live == 0 {
            return 0;
        }
        let n = slices.byte_len();
        group.slices = Some(slices);
        group.used.store(now, Ordering::Relaxed);
        group.refused_at.store(0, Ordering::Relaxed);
        n
    }

    /// Slices for group `g` did not fit the budget at `now`.
    fn refuse(&self, g: u64, now: u64) {
        if let Some(group) = self.get(g) {
            group.building.store(false, Ordering::Relaxed);
            group.refused_at.store(now.max(1), Ordering::Relaxed);
        }
    }
}

/// Bytes of `e`'s token filter in the budget (0 when not held).
fn filter_bytes(e: &Entry) -> usize {
    e.full()
        .and_then(|f| f.tokens.as_ref().map(|b| token_weight(b, e.weight)))
        .unwrap_or(0)
}

/// Groups a blocking task is to slice: the tenant index they belong to
/// (its epoch) and each group's member filters.
#[derive(Debug)]
pub(crate) struct SliceJobs {
    pub(crate) epoch: u64,
    pub(crate) jobs: Vec<(u64, Vec<Option<Arc<Bloom>>>)>,
}

/// What a block's group says about it.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub(crate) enum Verdict {
    /// Its filter certainly lacks a key: leave it out.
    Out,
    /// The slices let it through: a candidate, its own filter not needed.
    Sliced,
    /// Not sliced: test its own filter.
    Unknown,
}

/// Asks groups which members may hold `keys` during one page, remembering
/// the last group's answer (arrival order follows scan order for live
/// data, so consecutive blocks mostly share a group).
pub(crate) struct MaskCache<'a> {
    keys: &'a [u64],
    /// The last group asked and its answer (`None`: not sliced): the
    /// candidates, and which of them the slices answer for exactly.
    last: Option<(u64, Option<(u64, u64)>)>,
    now: u64,
    /// Complete groups met without slices (to slice after the page).
    pub(crate) unsliced: Vec<u64>,
}

impl<'a> MaskCache<'a> {
    pub(crate) fn new(keys: &'a [u64], now: u64) -> Self {
        MaskCache {
            keys,
            last: None,
            now,
            unsliced: Vec::new(),
        }
    }

    /// What the group of the block of arrival `seq` says about it.
    pub(crate) fn verdict(&mut self, groups: &Groups, seq: u64) -> Verdict {
        let (g, bit) = place(seq);
        let mask = match self.last {
            Some((lg, m)) if lg == g => m,
            _ => {
                let m = self.mask(groups, g);
                self.last = Some((g, m));
                m
            }
        };
        match mask {
            None => Verdict::Unknown,
            Some((m, _)) if m & bit == 0 => Verdict::Out,
            Some((_, exact)) if exact & bit != 0 => Verdict::Sliced,
            // Not ruled out, but its own filter might: test it.
            Some(_) => Verdict::Unknown,
        }
    }

    fn mask(&mut self, groups: &Groups, g: u64) -> Option<(u64, u64)> {
        let group = groups.get(g)?;
        match &group.slices {
            Some(s) => {
                if self.now.saturating_sub(group.used.load(Ordering::Relaxed)) > 256 {
                    group.used.store(self.now, Ordering::Relaxed);
                }
                Some((s.candidates(self.keys), s.exact()))
            }
            None => {
                let refused = group.refused_at.load(Ordering::Relaxed);
                if group.is_full()
                    && !group.building.load(Ordering::Relaxed)
                    && (refused == 0 || self.now.saturating_sub(refused) > RETRY_TICKS)
                    && self.unsliced.len() < MAX_UNSLICED
                    && !self.unsliced.contains(&g)
                {
                    self.unsliced.push(g);
                }
                None
            }
        }
    }
}

impl TenantIndex {
    /// The entries of group `g`'s members, by member (`None`: gone, or
    /// re-added in a later group — never walked as a member of `g`).
    fn members_here(&self, g: u64) -> Vec<Option<&Arc<Entry>>> {
        let Some(group) = self.groups.get(g) else {
            return Vec::new();
        };
        (g * GROUP_MEMBERS as u64..)
            .zip(&group.members)
            .map(|(seq, id)| {
                self.by_id.get(id).filter(|e| {
                    self.newest
                        .get(&(e.plain.max_ts, *id))
                        .is_some_and(|s| s.seq == seq)
                })
            })
            .collect()
    }

    /// Whether `e` is walked as a member its group's slices answer for.
    fn is_sliced(&self, e: &Entry) -> bool {
        self.newest
            .get(&(e.plain.max_ts, e.id()))
            .and_then(|s| {
                let (g, bit) = place(s.seq);
                let slices = self.groups.get(g)?.slices.as_ref()?;
                Some(slices.exact() & bit != 0)
            })
            .unwrap_or(false)
    }

    /// The member filters of group `g`, when it is complete, not sliced
    /// or being sliced, and every member still indexed has its filter held.
    fn slice_job(&self, g: u64) -> Option<Vec<Option<Arc<Bloom>>>> {
        let group = self.groups.get(g)?;
        // A group mostly gone (compaction, retention) is not worth slices
        // sized for 64.
        if !group.is_full() || group.slices.is_some() || (group.live as usize) < GROUP_MEMBERS / 2 {
            return None;
        }
        let filters = self
            .members_here(g)
            .into_iter()
            .map(|e| match e {
                None => Some(None),
                Some(e) => Some(Some(e.full()?.tokens.clone()?)),
            })
            .collect::<Option<Vec<_>>>()?;
        group
            .building
            .compare_exchange(false, true, Ordering::Relaxed, Ordering::Relaxed)
            .ok()?;
        Some(filters)
    }
}

impl SummaryIndex {
    /// Per entry of `tenant`: whether its group is sliced.
    pub(super) fn in_sliced_groups(&self, tenant: &Tenant, entries: &[Arc<Entry>]) -> Vec<bool> {
        let g = self.inner.read().ok();
        let t = g.as_ref().and_then(|g| g.tenants.get(tenant));
        entries
            .iter()
            .map(|e| t.is_some_and(|t| t.is_sliced(e)))
            .collect()
    }

    /// The groups among `wanted` that can be sliced now (complete, every
    /// member's filter held), marked as being sliced.
    pub(crate) fn slice_jobs(&self, tenant: &Tenant, wanted: &[u64]) -> Option<SliceJobs> {
        let g = self.inner.read().ok()?;
        let t = g.tenants.get(tenant)?;
        let jobs: Vec<_> = wanted
            .iter()
            .filter_map(|&n| t.slice_job(n).map(|f| (n, f)))
            .collect();
        (!jobs.is_empty()).then_some(SliceJobs {
            epoch: t.epoch,
            jobs,
        })
    }

    /// Slices the jobs' groups and installs them (a blocking task: ~10 ms
    /// per group of 64 day-sized filters). A group whose slices would not
    /// fit the budget is left unsliced (its blocks are tested one by one).
    pub(crate) fn build_slices(&self, tenant: &Tenant, jobs: SliceJobs) {
        for (n, filters) in jobs.jobs {
            let refs: Vec<Option<&Bloom>> = filters.iter().map(|f| f.as_deref()).collect();
            let now = self.tick();
            // One group's slices may take at most a quarter of the budget
            // (an outsized group is walked block by block instead).
            let slices = (BloomSlices::planned_bytes(&refs) <= self.budget / 4)
                .then(|| Arc::new(BloomSlices::build(&refs)));
            drop(refs);
            drop(filters);
            let Ok(mut guard) = self.inner.write() else {
                return;
            };
            let g = &mut *guard;
            let Some(t) = g.tenants.get_mut(tenant).filter(|t| t.epoch == jobs.epoch) else {
                continue;
            };
            let Some(slices) = slices else {
                t.groups.refuse(n, now);
                continue;
            };
            // The own filters of the members the slices answer for exactly
            // go once the slices are in; the others stay and are tested.
            let exact = slices.exact();
            let members: Vec<Arc<Entry>> = t
                .members_here(n)
                .into_iter()
                .enumerate()
                .filter(|(j, _)| exact & (1 << j) != 0)
                .filter_map(|(_, e)| e.cloned())
                .collect();
            let held: usize = members.iter().map(|e| filter_bytes(e)).sum();
            if g.bytes + slices.byte_len() > self.budget + held {
                t.groups.refuse(n, now);
                continue;
            }
            let added = t.groups.install(n, slices, now);
            if added == 0 {
                continue;
            }
            let mut dropped = 0;
            for e in &members {
                if let Ok(mut f) = e.full.lock()
                    && let Some(s) = f.take()
                {
                    dropped += s.tokens.as_ref().map_or(0, |b| token_weight(b, e.weight));
                }
            }
            g.bytes = (g.bytes + added).saturating_sub(dropped);
            metrics::counter!("killkrill_store_log_summary_index_groups_sliced_total").increment(1);
        }
    }

    /// Drops the least recently used half of the held token filters and
    /// group slices (at least one); returns the bytes freed.
    pub(super) fn shed_tokens(&self, g: &mut Inner) -> usize {
        enum Held {
            Filter(Arc<Entry>),
            Slices(Tenant, u64),
        }
        let mut held: Vec<(u64, Held)> = Vec::new();
        for (tenant, t) in &g.tenants {
            held.extend(
                t.by_id
                    .values()
                    .filter(|e| e.full().is_some())
                    .map(|e| (e.used.load(Ordering::Relaxed), Held::Filter(e.clone()))),
            );
            held.extend(
                t.groups
                    .numbered()
                    .filter(|(_, x)| x.slices.is_some())
                    .map(|(n, x)| {
                        (
                            x.used.load(Ordering::Relaxed),
                            Held::Slices(tenant.clone(), n),
                        )
                    }),
            );
        }
        held.sort_unstable_by_key(|(u, _)| *u);
        let n = held.len().div_ceil(2);
        let mut freed = 0;
        for (_, h) in held.into_iter().take(n) {
            match h {
                Held::Filter(e) => {
                    if let Ok(mut f) = e.full.lock()
                        && let Some(s) = f.take()
                    {
                        freed += s.tokens.as_ref().map_or(0, |b| token_weight(b, e.weight));
                    }
                }
                Held::Slices(tenant, n) => {
                    if let Some(t) = g.tenants.get_mut(&tenant) {
                        freed += t.groups.drop_slices(n);
                    }
                }
            }
        }
        g.bytes = g.bytes.saturating_sub(freed);
        freed
    }
}
