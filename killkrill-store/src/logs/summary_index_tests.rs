//! Tests of the summary index (`summary_index.rs`).

use super::*;
use killkrill_core::event::{EventId, LogRecord};
use killkrill_core::logblock::{BlockOptions, build_blocks};
use killkrill_core::storage::TimeRange;

impl SummaryIndex {
    /// One page, or `None` when `tenant` is not indexed (tests; queries
    /// use [`select_pruned`](Self::select_pruned)).
    pub(crate) fn select(&self, req: &SummaryRequest<'_>) -> Option<Picked> {
        self.select_pruned(req).map(|(p, _)| p)
    }

    /// The bytes held, counted afresh (tests: `bytes` must equal it).
    pub(crate) fn recount(&self) -> usize {
        let g = self.inner.read().unwrap();
        g.tenants.values().map(TenantIndex::bytes).sum()
    }
}

fn summaries(tenant: &Tenant, blocks: usize) -> Vec<BlockSummary> {
    let recs: Vec<LogRecord> = (0..blocks * 4)
        .map(|i| LogRecord {
            id: Some(EventId::from_u128(i as u128 + 1)),
            tenant: Some(tenant.clone()),
            timestamp: Timestamp::from_nanos(i as i64 * 1_000),
            host: Some(format!("h{}", i % 3)),
            message: Some(format!("word{i} other{}", i % 7).into_bytes()),
            ..LogRecord::default()
        })
        .collect();
    let opts = BlockOptions {
        max_records: 4,
        threads: 1,
        ..BlockOptions::default()
    };
    build_blocks(recs, &opts)
        .unwrap()
        .into_iter()
        .map(|b| b.summary)
        .collect()
}

fn rows(s: &[BlockSummary]) -> Vec<(BlockSummary, usize)> {
    s.iter()
        .map(|s| (s.clone(), s.summary_bytes().len()))
        .collect()
}

fn req(tenant: &Tenant, order: ScanOrder, with_tokens: bool) -> SummaryRequest<'_> {
    SummaryRequest {
        tenant,
        range: TimeRange::ALL,
        order,
        after: None,
        limit: usize::MAX,
        with_tokens,
        continuation: false,
        tokens: &[],
    }
}

#[test]
fn pages_in_both_orders_and_generations() {
    let t = Tenant::new("a").unwrap();
    let s = summaries(&t, 10);
    let idx = SummaryIndex::new(1 << 20);
    assert_eq!(idx.staleness(&t, 0, 0), Staleness::Load);
    idx.replace(&t, 3, &HashSet::new(), rows(&s));
    assert_eq!(idx.staleness(&t, 3, 1), Staleness::Fresh);
    assert_eq!(idx.staleness(&t, 5, 1), Staleness::Added { since: 3 });
    assert_eq!(idx.staleness(&t, 5, 4), Staleness::Relist);
    let newest: Vec<_> = idx
        .select(&req(&t, ScanOrder::NewestFirst, false))
        .unwrap()
        .entries
        .iter()
        .map(|e| e.plain().max_ts)
        .collect();
    assert_eq!(newest.len(), 10);
    assert!(newest.windows(2).all(|w| w[0] >= w[1]));
    // Keyset continuation and a range: only blocks overlapping it.
    let mut r = req(&t, ScanOrder::OldestFirst, false);
    r.range = TimeRange {
        start: Timestamp::from_nanos(8_000),
        end: Timestamp::from_nanos(20_000),
    };
    r.limit = 2;
    let p1 = idx.select(&r).unwrap().entries;
    assert_eq!(p1.len(), 2);
    assert_eq!(p1[0].plain().min_ts, Timestamp::from_nanos(8_000));
    r.after = Some((p1[1].plain().min_ts, p1[1].id()));
    let p2 = idx.select(&r).unwrap().entries;
    assert_eq!(p2[0].plain().min_ts, Timestamp::from_nanos(16_000));
    r.after = Some((p2[0].plain().min_ts, p2[0].id()));
    assert!(idx.select(&r).unwrap().entries.is_empty());
    // A local change one generation ahead applies; a gap does not.
    idx.apply_local(&t, 4, &[s[0].id], &[]);
    assert_eq!(idx.stats().blocks, 9);
    idx.apply_local(&t, 6, &[s[1].id], &[]);
    assert_eq!(idx.stats().blocks, 9, "generation 5 missing: left to sync");
    idx.add(&t, 6, rows(&s[..1]));
    assert_eq!(idx.stats().blocks, 10);
    assert_eq!(idx.staleness(&t, 6, 4), Staleness::Fresh);
    idx.mark_dirty(&t);
    assert_eq!(idx.staleness(&t, 6, 4), Staleness::Relist);
}

#[test]
fn budget_sheds_filters_then_tenants_and_refuses_oversize() {
    let a = Tenant::new("a").unwrap();
    let b = Tenant::new("b").unwrap();
    let sa = summaries(&a, 40);
    let sb = summaries(&b, 40);
    let plain: usize = rows(&sa).iter().map(|(_, l)| l + ENTRY_OVERHEAD).sum();
    let bloom = sa[0].tokens.clone().unwrap();
    let with_filters = plain
        + sa.iter()
            .map(|s| {
                token_weight(
                    s.tokens.as_ref().unwrap(),
                    s.summary_bytes().len() + ENTRY_OVERHEAD,
                )
            })
            .sum::<usize>();
    // Room for both tenants' summaries and some filters, not all.
    let budget = 2 * plain + ((with_filters - plain) / 2).min(plain / 2);
    let idx = SummaryIndex::new(budget);
    idx.replace(&a, 1, &HashSet::new(), rows(&sa));
    idx.replace(&b, 1, &HashSet::new(), rows(&sb));
    assert_eq!(idx.stats().tenants, 2);
    let entries = idx
        .select(&req(&a, ScanOrder::NewestFirst, true))
        .unwrap()
        .entries;
    let filters: HashMap<BlockId, Arc<Bloom>> = sa
        .iter()
        .map(|s| (s.id, s.tokens.clone().unwrap_or_else(|| bloom.clone())))
        .collect();
    let full = idx.attach_tokens(&a, &entries, &filters);
    assert_eq!(full.len(), 40);
    let st = idx.stats();
    assert!(st.bytes <= budget, "{st:?} over {budget}");
    assert!(
        st.blocks_with_tokens > 0 && st.blocks_with_tokens < 40,
        "{st:?}"
    );
    assert_eq!(st.tenants, 2, "filters go before tenants");
    assert_eq!(
        st.bytes,
        {
            let g = idx.inner.read().unwrap();
            g.tenants.values().map(TenantIndex::bytes).sum::<usize>()
        },
        "the byte count is exact"
    );
    // A third tenant evicts the least recently queried one (b).
    let c = Tenant::new("c").unwrap();
    idx.replace(&c, 1, &HashSet::new(), rows(&summaries(&c, 40)));
    let st = idx.stats();
    assert!(st.bytes <= budget, "{st:?}");
    assert!(
        idx.snapshot(&b).is_none(),
        "least recently used tenant evicted"
    );
    assert!(idx.snapshot(&c).is_some());
    // A tenant bigger than the whole budget is not indexed.
    let big = Tenant::new("big").unwrap();
    idx.replace(&big, 1, &HashSet::new(), rows(&summaries(&big, 200)));
    assert!(idx.snapshot(&big).is_none());
    assert!(idx.snapshot(&c).is_some(), "the others stay");
    assert_eq!(idx.staleness(&big, 1, 0), Staleness::Oversize);
    assert!(idx.stats().bytes <= budget);
}

/// Blocks of 4 records whose message tokens are `word{i}` (one record)
/// and `other{i % 7}`: the block holding `word{i}` is number `i / 4`.
fn with_all_filters(idx: &SummaryIndex, t: &Tenant, s: &[BlockSummary]) {
    let entries = idx
        .select(&req(t, ScanOrder::NewestFirst, false))
        .unwrap()
        .entries;
    let filters: HashMap<BlockId, Arc<Bloom>> = s
        .iter()
        .map(|s| (s.id, s.tokens.clone().unwrap()))
        .collect();
    assert_eq!(idx.attach_tokens(t, &entries, &filters).len(), s.len());
}

fn word(i: usize) -> u64 {
    killkrill_core::logblock::token_hash(format!("word{i}").as_bytes())
}

/// Ids of the blocks a pruned scan returns, page by page (`limit` each),
/// and the blocks it looked at.
fn pruned_scan(idx: &SummaryIndex, r: &SummaryRequest<'_>) -> (Vec<BlockId>, usize) {
    let mut r = r.clone();
    let (mut ids, mut examined) = (Vec::new(), 0);
    loop {
        let (p, _) = idx.select_pruned(&r).unwrap();
        assert!(p.entries.len() <= r.limit);
        assert!(p.examined <= r.limit.saturating_mul(EXAMINE_FACTOR));
        examined += p.examined;
        ids.extend(p.entries.iter().map(|e| e.id()));
        if p.done || p.last.is_none() {
            return (ids, examined);
        }
        r.after = p.last;
    }
}

#[test]
fn sliced_groups_leave_out_blocks_without_the_tokens() {
    let t = Tenant::new("a").unwrap();
    let s = summaries(&t, 200);
    let idx = SummaryIndex::new(64 << 20);
    idx.replace(&t, 1, &HashSet::new(), rows(&s));
    with_all_filters(&idx, &t, &s);
    let keys = [word(17)];
    let mut r = req(&t, ScanOrder::NewestFirst, true);
    r.tokens = &keys;
    // Nothing sliced yet: every block comes back, the three complete
    // groups (of 64) are reported, the open one (8 blocks) is not.
    let (p, unsliced) = idx.select_pruned(&r).unwrap();
    assert_eq!((p.entries.len(), p.examined), (200, 200));
    let mut unsliced = unsliced;
    unsliced.sort_unstable();
    assert_eq!(unsliced, vec![0, 1, 2]);
    let jobs = idx.slice_jobs(&t, &unsliced).unwrap();
    assert_eq!(jobs.jobs.len(), 3);
    assert!(idx.slice_jobs(&t, &unsliced).is_none(), "being sliced");
    idx.build_slices(&t, jobs);
    let st = idx.stats();
    assert_eq!((st.groups_sliced, st.blocks_with_tokens), (3, 8));
    assert_eq!(st.bytes, idx.recount(), "the byte count is exact");
    // Now every word's block comes back, in both orders and page sizes,
    // with few others: the 8 of the open group and false positives.
    for order in [ScanOrder::NewestFirst, ScanOrder::OldestFirst] {
        for i in (0..800).step_by(13) {
            let keys = [word(i)];
            let mut r = req(&t, order, true);
            r.tokens = &keys;
            for limit in [1, 5, usize::MAX] {
                r.limit = limit;
                let (ids, examined) = pruned_scan(&idx, &r);
                assert_eq!(examined, 200, "every block looked at once");
                assert!(ids.contains(&s[i / 4].id), "word{i} limit {limit}");
                assert!(ids.len() <= 8 + 1 + 6, "{} blocks for word{i}", ids.len());
            }
        }
    }
    // A token of nobody: the open group only (and false positives).
    let keys = [word(1_000_000)];
    let mut r = req(&t, ScanOrder::NewestFirst, true);
    r.tokens = &keys;
    assert!(pruned_scan(&idx, &r).0.len() <= 8 + 6);
    // Without `with_tokens` or tokens nothing is left out.
    r.with_tokens = false;
    assert_eq!(idx.select(&r).unwrap().entries.len(), 200);
    // Removing the blocks of group 0 frees its slices.
    let ids: Vec<BlockId> = s[..64].iter().map(|x| x.id).collect();
    idx.apply_local(&t, 2, &ids, &[]);
    let st = idx.stats();
    assert_eq!((st.blocks, st.groups_sliced), (136, 2));
    assert_eq!(st.bytes, idx.recount());
    // A re-list is applied in place: the blocks that stay keep their
    // groups and slices.
    let keep: HashSet<BlockId> = s[64..190].iter().map(|x| x.id).collect();
    idx.replace(&t, 3, &keep, Vec::new());
    let st = idx.stats();
    assert_eq!((st.blocks, st.groups_sliced), (126, 2));
    assert_eq!(st.bytes, idx.recount());
    for i in (256..760).step_by(17) {
        let keys = [word(i)];
        let (ids, _) = pruned_scan(&idx, &r_with(&t, &keys));
        assert!(ids.contains(&s[i / 4].id), "word{i} after the re-list");
    }
    // Retention empties groups 1 and 2: freed, and retired from the front.
    let ids: Vec<BlockId> = s[64..190].iter().map(|x| x.id).collect();
    idx.apply_local(&t, 4, &ids, &[]);
    let st = idx.stats();
    assert_eq!(
        (st.blocks, st.groups_sliced, st.bytes),
        (0, 0, idx.recount())
    );
    {
        let g = idx.inner.read().unwrap();
        let groups = &g.tenants[&t].groups;
        assert_eq!(groups.numbered().count(), 1, "only the open group is left");
    }
    // A tenant loaded afresh (evicted, then loaded again) is a new index:
    // slices built for the old one are not installed in it.
    let keep: HashSet<BlockId> = HashSet::new();
    idx.inner.write().unwrap().tenants.remove(&t);
    idx.replace(&t, 5, &keep, rows(&s));
    with_all_filters(&idx, &t, &s);
    let jobs = idx.slice_jobs(&t, &[0]).unwrap();
    idx.inner.write().unwrap().tenants.remove(&t);
    idx.replace(&t, 6, &keep, rows(&s));
    idx.build_slices(&t, jobs);
    assert_eq!(idx.stats().groups_sliced, 0, "stale jobs dropped");
}

fn r_with<'a>(t: &'a Tenant, keys: &'a [u64]) -> SummaryRequest<'a> {
    let mut r = req(t, ScanOrder::NewestFirst, true);
    r.tokens = keys;
    r
}

#[test]
fn slices_replace_their_members_filters_and_are_shed_like_them() {
    let t = Tenant::new("a").unwrap();
    let s = summaries(&t, 70);
    let idx = SummaryIndex::new(64 << 20);
    idx.replace(&t, 1, &HashSet::new(), rows(&s));
    with_all_filters(&idx, &t, &s);
    let before = idx.stats();
    assert_eq!(before.blocks_with_tokens, 70);
    let jobs = idx.slice_jobs(&t, &[0]).unwrap();
    idx.build_slices(&t, jobs);
    let st = idx.stats();
    assert_eq!((st.groups_sliced, st.blocks_with_tokens), (1, 6));
    assert!(st.bytes < before.bytes, "{st:?} vs {before:?}");
    assert_eq!(st.bytes, idx.recount());
    // The sliced group's blocks come back marked (no filter of their own
    // needed), the open group's unmarked.
    let keys = [word(5)];
    let (p, _) = idx.select_pruned(&r_with(&t, &keys)).unwrap();
    assert_eq!(p.by_slices.iter().filter(|b| !**b).count(), 6);
    assert!(
        p.entries
            .iter()
            .zip(&p.by_slices)
            .any(|(e, b)| *b && e.id() == s[1].id)
    );
    // Shedding takes the least recently used half of filters and slices
    // together: of 6 filters and 1 slices, the 4 oldest (filters).
    {
        let mut g = idx.inner.write().unwrap();
        assert!(idx.shed_tokens(&mut g) > 0);
    }
    let st = idx.stats();
    assert_eq!((st.blocks_with_tokens, st.groups_sliced), (2, 1), "{st:?}");
    assert_eq!(st.bytes, idx.recount());
}

/// Members the slices cannot answer for exactly (here filters in the
/// format of builds before 2026-11-26, `h mod bits`) keep their own filter
/// and come back unmarked, to be tested one by one.
#[test]
fn inexact_members_keep_their_filter() {
    let t = Tenant::new("a").unwrap();
    let s = summaries(&t, 64);
    let idx = SummaryIndex::new(64 << 20);
    idx.replace(&t, 1, &HashSet::new(), rows(&s));
    // k = 3 without the multiply flag, 128 bits all set: "maybe" to all.
    let mut bytes = vec![3u8, 0x80, 0x01];
    bytes.extend(std::iter::repeat_n(0xFFu8, 16));
    let old = Arc::new(Bloom::from_bytes(&bytes).unwrap());
    let entries = idx
        .select(&req(&t, ScanOrder::NewestFirst, false))
        .unwrap()
        .entries;
    let filters: HashMap<BlockId, Arc<Bloom>> = s
        .iter()
        .enumerate()
        .map(|(i, x)| {
            let f = if i == 0 || i == 5 {
                old.clone()
            } else {
                x.tokens.clone().unwrap()
            };
            (x.id, f)
        })
        .collect();
    idx.attach_tokens(&t, &entries, &filters);
    let jobs = idx.slice_jobs(&t, &[0]).unwrap();
    idx.build_slices(&t, jobs);
    let st = idx.stats();
    assert_eq!((st.groups_sliced, st.blocks_with_tokens), (1, 2));
    assert_eq!(st.bytes, idx.recount());
    let keys = [word(40)];
    let (p, _) = idx.select_pruned(&r_with(&t, &keys)).unwrap();
    let got: Vec<(BlockId, bool)> = p
        .entries
        .iter()
        .zip(&p.by_slices)
        .map(|(e, b)| (e.id(), *b))
        .collect();
    assert!(
        got.contains(&(s[10].id, true)),
        "word40's block, by the slices"
    );
    assert!(got.contains(&(s[0].id, false)) && got.contains(&(s[5].id, false)));
    assert!(got.len() <= 3 + 4, "{got:?}");
}
