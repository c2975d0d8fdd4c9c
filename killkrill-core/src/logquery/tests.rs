//! Queries racing compaction: a block listed by the scan and merged away
//! before its payload is read must not leave a hole in the page.

use std::sync::Arc;
use std::sync::atomic::{AtomicBool, Ordering};

use async_trait::async_trait;

use super::*;
use crate::event::{EventId, LogRecord, Severity, Tenant, Timestamp};
use crate::logblock::{
    BlockId, BlockOptions, BlockSummary, DecodedBlock, EncodedBlock, build_blocks,
};
use crate::storage::{
    CompactionOptions, LogStore, MemoryLogStore, StoreError, SummaryRequest, TimeRange,
    WriteReport, compact_tenant,
};

/// A [`MemoryLogStore`] that compacts everything the first time a payload
/// is asked for (when `armed`), and that can keep decoded blocks as the SQL
/// store's cache does (`keep`), so the blocks' token memos build up across
/// queries.
struct TestStore {
    inner: MemoryLogStore,
    armed: AtomicBool,
    keep: Option<std::sync::Mutex<std::collections::HashMap<BlockId, Arc<DecodedBlock>>>>,
}

impl TestStore {
    fn keeping_decoded() -> Self {
        TestStore {
            inner: MemoryLogStore::new(),
            armed: AtomicBool::new(false),
            keep: Some(std::sync::Mutex::default()),
        }
    }
}

#[async_trait]
impl LogStore for TestStore {
    async fn write_blocks(&self, b: &[EncodedBlock]) -> Result<WriteReport, StoreError> {
        self.inner.write_blocks(b).await
    }
    async fn block_summaries(
        &self,
        r: &SummaryRequest<'_>,
    ) -> Result<Vec<BlockSummary>, StoreError> {
        self.inner.block_summaries(r).await
    }
    async fn block_payloads(
        &self,
        t: &Tenant,
        ids: &[BlockId],
    ) -> Result<Vec<(BlockId, Vec<u8>)>, StoreError> {
        if self.armed.swap(false, Ordering::SeqCst) {
            let opts = CompactionOptions {
                target_records: 100,
                small_below: 10,
                block: BlockOptions {
                    max_records: 100,
                    threads: 1,
                    ..BlockOptions::default()
                },
                ..CompactionOptions::default()
            };
            let rep = compact_tenant(&self.inner, t, &opts)
                .await
                .expect("compact");
            assert!(rep.merges > 0);
        }
        self.inner.block_payloads(t, ids).await
    }
    async fn decoded_blocks(
        &self,
        t: &Tenant,
        ids: &[BlockId],
    ) -> Result<Vec<(BlockId, crate::storage::DecodedResult)>, StoreError> {
        // Through this store's `block_payloads` (it may compact first).
        let mut out = Vec::new();
        for (id, p) in self.block_payloads(t, ids).await? {
            let kept = self
                .keep
                .as_ref()
                .and_then(|k| k.lock().unwrap().get(&id).cloned());
            let b = match kept {
                Some(b) => b,
                None => {
                    let b = Arc::new(DecodedBlock::decode(t, &p).unwrap());
                    if let Some(k) = &self.keep {
                        k.lock().unwrap().insert(id, b.clone());
                    }
                    b
                }
            };
            out.push((id, Ok(b)));
        }
        Ok(out)
    }
    async fn replace_blocks(
        &self,
        t: &Tenant,
        s: &[BlockId],
        m: &[EncodedBlock],
    ) -> Result<(), StoreError> {
        self.inner.replace_blocks(t, s, m).await
    }
    async fn delete_blocks_before(&self, t: &Tenant, c: Timestamp) -> Result<u64, StoreError> {
        self.inner.delete_blocks_before(t, c).await
    }
    async fn trim_block_registry(&self, t: &Tenant, w: Timestamp) -> Result<u64, StoreError> {
        self.inner.trim_block_registry(t, w).await
    }
    async fn log_tenants(&self) -> Result<Vec<Tenant>, StoreError> {
        self.inner.log_tenants().await
    }
}

async fn store_with_small_blocks(t: &Tenant) -> TestStore {
    let s = TestStore {
        inner: MemoryLogStore::new(),
        armed: AtomicBool::new(false),
        keep: None,
    };
    let records: Vec<LogRecord> = (0..30)
        .map(|i| LogRecord {
            id: Some(EventId::from_u128(i)),
            tenant: Some(t.clone()),
            timestamp: Timestamp::from_nanos(i as i64 * 1_000),
            severity: Some(Severity::Error),
            message: Some(format!("m{i}").into_bytes()),
            ..LogRecord::default()
        })
        .collect();
    let opts = BlockOptions {
        max_records: 3,
        threads: 1,
        ..BlockOptions::default()
    };
    s.write_blocks(&build_blocks(records, &opts).expect("encode"))
        .await
        .expect("write");
    s.armed.store(true, Ordering::SeqCst);
    s
}

#[tokio::test]
async fn a_page_read_while_its_blocks_are_compacted_has_no_hole() {
    let t = Tenant::new("race").unwrap();
    let s = store_with_small_blocks(&t).await;
    let q = LogQuery {
        tenant: t.clone(),
        range: TimeRange::ALL,
        filter: LogFilter::default(),
        order: Order::NewestFirst,
        limit: 10,
        cursor: None,
    };
    let page = query_logs(&s, &q).await.unwrap();
    let ids: Vec<u128> = page
        .records
        .iter()
        .map(|r| r.id.unwrap().as_u128())
        .collect();
    assert_eq!(ids, (20..30).rev().collect::<Vec<u128>>());
    assert!(!s.armed.load(Ordering::SeqCst), "the race happened");
}

#[tokio::test]
async fn a_volume_read_while_its_blocks_are_compacted_counts_everything() {
    let t = Tenant::new("race").unwrap();
    let s = store_with_small_blocks(&t).await;
    let q = VolumeQuery {
        tenant: t.clone(),
        range: TimeRange::new(Timestamp::from_nanos(0), Timestamp::from_nanos(30_000)),
        filter: LogFilter {
            text: Some("m7".into()),
            ..LogFilter::default()
        },
        step_nanos: 10_000,
    };
    let v = query_volume(&s, &q).await.unwrap();
    assert_eq!(
        v.buckets.iter().map(|b| b.total).collect::<Vec<_>>(),
        vec![1, 0, 0]
    );
    assert!(!s.armed.load(Ordering::SeqCst), "the race happened");
}

/// The ids of every record matching `filter`, read page after page (by
/// cursor) with `limit` records a page, in `order`.
async fn every_page(
    s: &dyn LogStore,
    t: &Tenant,
    filter: &LogFilter,
    order: Order,
    limit: usize,
) -> Vec<Option<EventId>> {
    let mut got = Vec::new();
    let mut cursor = None;
    loop {
        let q = LogQuery {
            tenant: t.clone(),
            range: TimeRange::ALL,
            filter: filter.clone(),
            order,
            limit,
            cursor,
        };
        let page = query_logs(s, &q).await.unwrap();
        got.extend(page.records.into_iter().map(|r| r.id));
        match page.next_cursor {
            Some(c) => cursor = Some(c),
            None => break,
        }
    }
    got
}

/// Pages over many small blocks, some overlapping in time, walked to the
/// end: the blocks the engine skips (its round bound and the finality check
/// before opening a block) never drop or repeat a record, and a
/// summary-bounded query opens no more blocks than it needs.
#[tokio::test]
async fn skipped_blocks_never_drop_matches() {
    let t = Tenant::new("skip").unwrap();
    let s = MemoryLogStore::new();
    let opts = BlockOptions {
        max_records: 7,
        threads: 1,
        ..BlockOptions::default()
    };
    let mk = |i: u128, ts: i64| LogRecord {
        id: Some(EventId::from_u128(i)),
        tenant: Some(t.clone()),
        timestamp: Timestamp::from_nanos(ts),
        severity: Some(if i.is_multiple_of(5) {
            Severity::Error
        } else {
            Severity::Informational
        }),
        host: Some(format!("h{}", i % 3)),
        ..LogRecord::default()
    };
    // Two batches whose blocks interleave in time, plus equal timestamps.
    let a: Vec<LogRecord> = (0..200).map(|i| mk(i, (i as i64) * 10)).collect();
    let b: Vec<LogRecord> = (200..300)
        .map(|i| mk(i, ((i - 200) as i64) * 20 + 5))
        .collect();
    let all: Vec<LogRecord> = a.iter().chain(&b).cloned().collect();
    for batch in [a, b] {
        s.write_blocks(&build_blocks(batch, &opts).unwrap())
            .await
            .unwrap();
    }
    let filters = [
        LogFilter::default(),
        LogFilter {
            min_severity: Some(Severity::Error),
            ..LogFilter::default()
        },
        LogFilter {
            min_severity: Some(Severity::Error),
            host: Some("h1".into()),
            ..LogFilter::default()
        },
    ];
    for f in filters {
        for order in [Order::NewestFirst, Order::OldestFirst] {
            for limit in [1, 3, 10, 64] {
                let mut want: Vec<&LogRecord> = all
                    .iter()
                    .filter(|r| {
                        f.min_severity
                            .is_none_or(|m| r.severity.is_some_and(|s| s.code() <= m.code()))
                            && f.host.as_ref().is_none_or(|h| r.host.as_ref() == Some(h))
                    })
                    .collect();
                want.sort_by_key(|r| (r.timestamp, r.id));
                if order == Order::NewestFirst {
                    want.reverse();
                }
                let got_ids = every_page(&s, &t, &f, order, limit).await;
                let want_ids: Vec<_> = want.iter().map(|r| r.id).collect();
                assert_eq!(got_ids, want_ids, "{f:?} {order:?} limit {limit}");
            }
        }
    }
    // The newest 3 error records sit in the newest blocks: the engine must
    // not open the whole store for them.
    let q = LogQuery {
        tenant: t.clone(),
        range: TimeRange::ALL,
        filter: LogFilter {
            min_severity: Some(Severity::Error),
            ..LogFilter::default()
        },
        order: Order::NewestFirst,
        limit: 3,
        cursor: None,
    };
    let page = query_logs(&s, &q).await.unwrap();
    assert_eq!(page.records.len(), 3);
    assert!(
        page.blocks_decoded <= 6,
        "opened {} blocks",
        page.blocks_decoded
    );
}

/// A page filled from its newest block still opens a late block whose span
/// reaches past the page's last record (a regression of the round bound:
/// it once ended the query there and dropped the late record).
#[tokio::test]
async fn a_full_page_still_opens_a_block_overlapping_its_end() {
    let t = Tenant::new("late").unwrap();
    let s = MemoryLogStore::new();
    let opts = BlockOptions {
        max_records: 7,
        threads: 1,
        ..BlockOptions::default()
    };
    let mk = |i: u128, ts: i64| LogRecord {
        id: Some(EventId::from_u128(i)),
        tenant: Some(t.clone()),
        timestamp: Timestamp::from_nanos(ts),
        ..LogRecord::default()
    };
    let a: Vec<LogRecord> = (0..100).map(|i| mk(i, i as i64 * 10)).collect();
    // One block spanning 5..975: its newest record sorts between 980 and 970.
    let late = vec![mk(1_000, 5), mk(1_001, 975)];
    for batch in [a, late] {
        s.write_blocks(&build_blocks(batch, &opts).unwrap())
            .await
            .unwrap();
    }
    let q = LogQuery {
        tenant: t.clone(),
        range: TimeRange::ALL,
        filter: LogFilter::default(),
        order: Order::NewestFirst,
        limit: 3,
        cursor: None,
    };
    let page = query_logs(&s, &q).await.unwrap();
    let ts: Vec<i64> = page
        .records
        .iter()
        .map(|r| r.timestamp.as_nanos())
        .collect();
    assert_eq!(ts, vec![990, 980, 975]);
}

/// A sparse page (a few matching records per block, many blocks) keeps
/// only what its rows need: with a pin budget of one byte the engine
/// releases and repacks blocks after every block it opens, and every page
/// — records, their JSON, cursors — is the same as with no budget.
#[tokio::test]
async fn a_sparse_page_repacks_its_blocks_and_answers_the_same() {
    let t = Tenant::new("sparse").unwrap();
    let s = MemoryLogStore::new();
    let opts = BlockOptions {
        max_records: 50,
        threads: 1,
        ..BlockOptions::default()
    };
    let records: Vec<LogRecord> = (0..2_000u128)
        .map(|i| LogRecord {
            id: Some(EventId::from_u128(i)),
            tenant: Some(t.clone()),
            timestamp: Timestamp::from_nanos(i as i64 * 1_000),
            severity: Some(Severity::Informational),
            host: Some(format!("h{}", i % 7)),
            message: Some(if i % 37 == 0 {
                format!("needle {i} \"quoted\" \u{e9}").into_bytes()
            } else {
                format!("hay {i}").into_bytes()
            }),
            ..LogRecord::default()
        })
        .collect();
    s.write_blocks(&build_blocks(records, &opts).unwrap())
        .await
        .unwrap();
    for order in [Order::NewestFirst, Order::OldestFirst] {
        let mut q = LogQuery {
            tenant: t.clone(),
            range: TimeRange::ALL,
            filter: LogFilter {
                text: Some("needle".into()),
                ..LogFilter::default()
            },
            order,
            limit: 7,
            cursor: None,
        };
        let mut seen = 0;
        loop {
            let tight = engine::query_log_rows_pinning(&s, &q, 1).await.unwrap();
            let loose = engine::query_log_rows_pinning(&s, &q, usize::MAX)
                .await
                .unwrap();
            assert_eq!(tight.next_cursor, loose.next_cursor);
            assert_eq!(tight.rows.len(), loose.rows.len());
            for (a, b) in tight.rows.iter().zip(&loose.rows) {
                assert_eq!(a.block_id, b.block_id);
                assert_eq!(
                    a.block.record(a.index).unwrap(),
                    b.block.record(b.index).unwrap()
                );
                let (mut ja, mut jb) = (Vec::new(), Vec::new());
                a.block.write_json(a.index, &mut ja).unwrap();
                b.block.write_json(b.index, &mut jb).unwrap();
                assert_eq!(ja, jb);
                // Repacked: at most the page's rows, not the whole block.
                assert!(a.block.len() <= 8, "kept {} records", a.block.len());
                assert_eq!(b.block.len(), 50);
            }
            seen += tight.rows.len();
            match tight.next_cursor {
                Some(c) => q.cursor = Some(c),
                None => break,
            }
        }
        assert_eq!(seen, 55, "{order:?}: every needle once");
    }
}

/// Full-text pages over blocks of every shape the message scan meets —
/// tokens inside longer words, at a message's edges (the neighbour's bytes
/// are word bytes), in upper case, in structured data or attributes only,
/// records without a message — walked to the end in both orders, equal to
/// a brute-force reading of every record with the tokenizer.
#[tokio::test]
async fn full_text_pages_equal_a_brute_force_scan() {
    use crate::event::{FieldValue, SdElement};
    use crate::logblock::tokenizer::for_each_token;

    let words = [
        "ab", "AB", "abc", "cab", "x_ab", "ab1", "b", "a", "Ab", "ba", "é", "abé",
    ];
    let seps = ["", " ", "=", "/", "-"];
    let t = Tenant::new("text").unwrap();
    let mut seed = 0x9E37_79B9_7F4A_7C15u64;
    let mut next = move |n: u64| {
        seed ^= seed << 13;
        seed ^= seed >> 7;
        seed ^= seed << 17;
        seed % n
    };
    let mut all = Vec::new();
    for i in 0..600u128 {
        let mut m = String::new();
        for _ in 0..next(5) {
            m.push_str(words[next(words.len() as u64) as usize]);
            m.push_str(seps[next(seps.len() as u64) as usize]);
        }
        // The second half has no fields: blocks there find a token's
        // records from their messages alone (a memo list or bitmap), where
        // a block with fields holding the token's bytes walks them all.
        let (sd, attributes) = match if i < 300 { next(8) } else { 8 } {
            0 => (
                vec![SdElement {
                    id: "m@1".into(),
                    params: vec![("k".into(), words[next(12) as usize].into())],
                }],
                Vec::new(),
            ),
            1 => (
                Vec::new(),
                vec![("f".into(), FieldValue::Str(words[next(12) as usize].into()))],
            ),
            _ => (Vec::new(), Vec::new()),
        };
        all.push(LogRecord {
            id: Some(EventId::from_u128(i + 1)),
            tenant: Some(t.clone()),
            timestamp: Timestamp::from_nanos(i as i64 / 2),
            severity: Some(Severity::Informational),
            message: (next(10) != 0).then(|| m.into_bytes()),
            structured_data: sd,
            attributes,
            ..LogRecord::default()
        });
    }
    let tokens_of = |r: &LogRecord| {
        let mut out: Vec<Vec<u8>> = Vec::new();
        let mut buf = Vec::new();
        let mut add = |text: &[u8]| for_each_token(text, &mut buf, |tk| out.push(tk.to_vec()));
        if let Some(m) = &r.message {
            add(m);
        }
        for el in &r.structured_data {
            for (_, v) in &el.params {
                add(v.as_bytes());
            }
        }
        for (_, v) in &r.attributes {
            add(v.to_text().as_bytes());
        }
        out
    };
    for block_records in [5, 64, 300, 600] {
        // Decoded blocks kept across queries, as the SQL store's cache
        // keeps them: each block is searched many times (every page size,
        // both orders), so the pages come from a first scan, then from the
        // token memo computed on the second search, then read from it.
        let s = TestStore::keeping_decoded();
        let opts = BlockOptions {
            max_records: block_records,
            threads: 1,
            ..BlockOptions::default()
        };
        s.write_blocks(&build_blocks(all.clone(), &opts).unwrap())
            .await
            .unwrap();
        for text in ["ab", "AB abc", "cab", "b a", "abé", "x_ab", "é"] {
            let query = crate::logblock::query_tokens(text);
            let mut want: Vec<&LogRecord> = all
                .iter()
                .filter(|r| {
                    let have = tokens_of(r);
                    query.iter().all(|q| have.contains(q))
                })
                .collect();
            want.sort_by_key(|r| (r.timestamp, r.id));
            for order in [Order::NewestFirst, Order::OldestFirst] {
                let mut want = want.clone();
                if order == Order::NewestFirst {
                    want.reverse();
                }
                for limit in [1, 7, 1000] {
                    let filter = LogFilter {
                        text: Some(text.into()),
                        ..LogFilter::default()
                    };
                    let got = every_page(&s, &t, &filter, order, limit).await;
                    let want_ids: Vec<_> = want.iter().map(|r| r.id).collect();
                    assert!(!want_ids.is_empty(), "{text}: no record to find");
                    assert_eq!(
                        got, want_ids,
                        "{text:?} {order:?} limit {limit}, blocks of {block_records}"
                    );
                }
            }
        }
    }
}
