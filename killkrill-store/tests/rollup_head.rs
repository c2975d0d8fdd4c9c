//! The rollup head: flushes append their partials to `metric_rollup_head`,
//! compactions merge them into `metric_rollups`; the answers are the same
//! before, during and after, on the in-memory model, SQLite, and
//! PostgreSQL / MySQL when their URLs are set.
#![allow(clippy::print_stderr, clippy::unwrap_used)]

mod metric_support;
mod support;

use std::collections::BTreeMap;

use killkrill_core::aggregate::{
    AggregateConfig, Aggregator, BatchId, Flush, PartialRollup, Resolution, Rollup, RollupKey,
    merge_partials,
};
use killkrill_core::event::{MetricSample, NANOS_PER_SEC, Tenant, Timestamp};
use killkrill_core::storage::{MetricStore, RollupFlush, RollupFlushOutcome, TimeRange};
use killkrill_store::ROLLUP_HEAD_FLUSHES;
use metric_support::*;

const S: i64 = NANOS_PER_SEC;

/// `n` flushes of 5 series, 3 samples per series each, 4 s apart.
fn flushes(t: &Tenant, n: u64) -> Vec<Flush> {
    let config: AggregateConfig =
        serde_json::from_str(r#"{"resolutions": ["10s", "1m"], "allowed_lateness": "1h"}"#)
            .unwrap();
    let mut engine: Aggregator = config.build().unwrap();
    (0..n)
        .map(|f| {
            let batch: Vec<MetricSample> = (0..5)
                .flat_map(|s| {
                    (0..3).map(move |k| {
                        let ts = T0 + (f as i64 * 4 + k) * S;
                        (s, ts, (f * 100 + k as u64 * 10 + s) as f64)
                    })
                })
                .map(|(s, ts, v)| {
                    let inst = format!("i{s}");
                    let mut x = sample("req_total", &[("inst", inst.as_str())], ts, v);
                    x.tenant = Some(t.clone());
                    x
                })
                .collect();
            engine.aggregate(BatchId(u128::from(f) + 1), &batch);
            engine.flush()
        })
        .collect()
}

async fn write(store: &dyn MetricStore, t: &Tenant, f: &Flush) -> RollupFlushOutcome {
    store
        .write_rollup_flush(
            t,
            RollupFlush {
                key: f.key().unwrap(),
                batches: &f.batches,
                high_water: f.high_water.first().map(|(_, h)| *h),
                partials: &f.partials,
            },
        )
        .await
        .unwrap()
}

/// Every stored window of `resolution`, by (series labels, window start).
async fn stored(
    store: &dyn MetricStore,
    t: &Tenant,
    resolution: Resolution,
) -> BTreeMap<(String, Timestamp), Rollup> {
    let mut out = BTreeMap::new();
    for s in store
        .select_rollups(t, &[], resolution, TimeRange::ALL)
        .await
        .unwrap()
    {
        for (ws, r) in s.windows {
            out.insert((format!("{:?}", s.labels), ws), r);
        }
    }
    out
}

fn expected(
    partials: &[&PartialRollup],
    resolution: Resolution,
) -> BTreeMap<(String, Timestamp), Rollup> {
    merge_partials(partials.iter().copied())
        .unwrap()
        .into_iter()
        .filter(|(k, _)| k.resolution == resolution)
        .map(|(k, r): (RollupKey, Rollup)| ((format!("{:?}", k.series.labels), k.window_start), r))
        .collect()
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn head_partials_merge_into_rollups_without_changing_answers() {
    let t = tenant("rhead");
    let n = u64::from(ROLLUP_HEAD_FLUSHES) + 4;
    let fl = flushes(&t, n);
    let res: Vec<Resolution> = [10, 60]
        .iter()
        .map(|s| Resolution::new(std::time::Duration::from_secs(*s)).unwrap())
        .collect();
    for b in all().await {
        let store: &dyn MetricStore = &*b.store;
        let mut written: Vec<&PartialRollup> = Vec::new();
        for (i, f) in fl.iter().enumerate() {
            assert!(
                matches!(
                    write(store, &t, f).await,
                    RollupFlushOutcome::Written { .. }
                ),
                "{}",
                b.name
            );
            written.extend(&f.partials);
            // Before the first compaction (all in the head), right after it
            // (flush 16 triggered it) and after: the same answers.
            if i == 9 || i + 1 == ROLLUP_HEAD_FLUSHES as usize || i + 1 == fl.len() {
                for r in &res {
                    assert_eq!(
                        stored(store, &t, *r).await,
                        expected(&written, *r),
                        "{} after {} flushes",
                        b.name,
                        i + 1
                    );
                }
            }
        }
        // A redelivered flush is refused by the ledger, merged or not.
        for f in [&fl[0], &fl[fl.len() - 1]] {
            assert!(
                matches!(
                    write(store, &t, f).await,
                    RollupFlushOutcome::AlreadyRecorded(_)
                ),
                "{}",
                b.name
            );
        }
        if let Some(sql) = b.sql_store() {
            // Flush 16 started a compaction in the background. It merged
            // the first 16 and whichever of the last 4 were written before
            // it read the head (flushes are written in order): what is left
            // is a suffix of at most 4 flushes.
            sql.rollup_head_settled().await;
            let rep = sql.compact_rollup_head(&t).await.unwrap();
            let left = rep.flushes;
            assert!(
                left <= fl.len() - ROLLUP_HEAD_FLUSHES as usize,
                "{}: {left} left",
                b.name
            );
            assert_eq!(
                rep.head_rows,
                fl[fl.len() - left..]
                    .iter()
                    .map(|f| f.partials.len())
                    .sum::<usize>(),
                "{}",
                b.name
            );
            assert!(rep.merged_rows <= rep.head_rows);
            assert_eq!(rep.merged_rows > 0, left > 0);
            assert_eq!(sql.compact_rollup_head(&t).await.unwrap().flushes, 0);
        }
        for r in &res {
            assert_eq!(
                stored(store, &t, *r).await,
                expected(&written, *r),
                "{} after compaction",
                b.name
            );
        }
        // Retention drops merged and head partials of ended windows alike.
        let cut = T0 + 60 * S;
        let extra = flushes(&t, n + 1);
        let f = &extra[n as usize];
        write(store, &t, f).await;
        written.extend(&f.partials);
        store
            .apply_retention(&t, Timestamp::from_nanos(cut))
            .await
            .unwrap();
        let left: Vec<&PartialRollup> = written
            .iter()
            .copied()
            .filter(|p| p.key.window_start.as_nanos() + p.key.resolution.as_nanos() > cut)
            .collect();
        for r in &res {
            assert_eq!(
                stored(store, &t, *r).await,
                expected(&left, *r),
                "{} after retention",
                b.name
            );
        }
        b.cleanup().await;
    }
}

/// Compactions racing each other and the writers: every partial ends up
/// merged exactly once.
#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn racing_head_compactions_merge_each_partial_once() {
    let t = tenant("rhead-race");
    let fl = flushes(&t, 40);
    let minute = Resolution::new(std::time::Duration::from_secs(60)).unwrap();
    for b in all().await {
        let Some(sql) = b.sql_store().cloned() else {
            b.cleanup().await;
            continue;
        };
        let store: &dyn MetricStore = &*b.store;
        for f in &fl[..10] {
            write(store, &t, f).await;
        }
        let compactor = |sql: killkrill_store::Store, t: Tenant| async move {
            let mut merged = 0;
            for _ in 0..6 {
                // A conflict (the other took the rows) changes nothing.
                if let Ok(r) = sql.compact_rollup_head(&t).await {
                    merged += r.head_rows;
                }
                tokio::task::yield_now().await;
            }
            merged
        };
        let a = tokio::spawn(compactor(sql.clone(), t.clone()));
        let c = tokio::spawn(compactor(sql.clone(), t.clone()));
        for f in &fl[10..] {
            write(store, &t, f).await;
        }
        a.await.unwrap();
        c.await.unwrap();
        sql.rollup_head_settled().await;
        while sql.compact_rollup_head(&t).await.unwrap().flushes > 0 {}
        let all: Vec<&PartialRollup> = fl.iter().flat_map(|f| &f.partials).collect();
        assert_eq!(
            stored(store, &t, minute).await,
            expected(&all, minute),
            "{}",
            b.name
        );
        b.cleanup().await;
    }
}
