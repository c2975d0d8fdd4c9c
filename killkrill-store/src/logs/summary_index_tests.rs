//! Tests of the summary index (`summary_index.rs`).

use super::*;
use killkrill_core::event::{EventId, LogRecord};
use killkrill_core::logblock::{BlockOptions, build_blocks};
use killkrill_core::storage::TimeRange;

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
