//! The maintenance pass merges an idle tenant's rollup head: flushes only
//! compact their tenant's head every `ROLLUP_HEAD_FLUSHES` flushes, so a
//! tenant that stopped after a few flushes kept them in the head. On SQLite
//! always, PostgreSQL and MySQL when their URLs are set: head rows before
//! and after, and the stored rollups unchanged by the merge.
#![allow(clippy::unwrap_used, clippy::print_stderr)]

use std::collections::BTreeMap;

use killkrill_core::aggregate::{AggregateConfig, Aggregator, BatchId, Flush, Resolution, Rollup};
use killkrill_core::event::{Labels, MetricSample, NANOS_PER_SEC, Tenant, Timestamp};
use killkrill_core::storage::{MetricStore, RollupFlush, RollupFlushOutcome, TimeRange};
use killkrill_store::{Backend, ROLLUP_HEAD_FLUSHES, Store, StoreConfig};
use killkrill_svc::config::MaintenanceConfig;
use killkrill_svc::serve::maintenance;

mod support;

const S: i64 = NANOS_PER_SEC;
const T0: i64 = 1_764_000_000 * S;

/// `n` flushes of 4 series, 3 samples per series each, 5 s apart.
fn flushes(t: &Tenant, n: u64) -> Vec<Flush> {
    let config: AggregateConfig =
        serde_json::from_str(r#"{"resolutions": ["10s", "1m"], "allowed_lateness": "1h"}"#)
            .unwrap();
    let mut engine: Aggregator = config.build().unwrap();
    (0..n)
        .map(|f| {
            let batch: Vec<MetricSample> = (0..4u64)
                .flat_map(|s| (0..3).map(move |k| (s, k)))
                .map(|(s, k)| {
                    let inst = format!("i{s}");
                    MetricSample {
                        name: "req_total".into(),
                        labels: Labels::from_pairs([("inst", inst.as_str())]),
                        value: (f * 100 + k * 10 + s) as f64,
                        timestamp: Some(Timestamp::from_nanos(T0 + (f as i64 * 5 + k as i64) * S)),
                        tenant: Some(t.clone()),
                        ..MetricSample::default()
                    }
                })
                .collect();
            engine.aggregate(BatchId(u128::from(f) + 1), &batch);
            engine.flush()
        })
        .collect()
}

async fn head_rows(store: &Store, t: &Tenant) -> i64 {
    let sql = "SELECT COUNT(*) FROM metric_rollup_head WHERE tenant = ?";
    match store.backend() {
        Backend::Postgres(p) => {
            sqlx::query_scalar("SELECT COUNT(*) FROM metric_rollup_head WHERE tenant = $1")
                .bind(t.as_str())
                .fetch_one(p)
                .await
                .unwrap()
        }
        Backend::MySql(p) => sqlx::query_scalar(sql)
            .bind(t.as_str())
            .fetch_one(p)
            .await
            .unwrap(),
        Backend::Sqlite { writer, .. } => sqlx::query_scalar(sql)
            .bind(t.as_str())
            .fetch_one(writer)
            .await
            .unwrap(),
    }
}

/// Every stored window of `resolution`, by (series labels, window start).
async fn stored(
    store: &Store,
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

async fn idle_head_is_merged(store: Store) {
    let idle = Tenant::new("idle").unwrap();
    let busy = Tenant::new("busy").unwrap();
    let few = u64::from(ROLLUP_HEAD_FLUSHES) / 2;
    for (t, n) in [(&idle, few), (&busy, few + 3)] {
        for f in &flushes(t, n) {
            let out = store
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
                .unwrap();
            assert!(matches!(out, RollupFlushOutcome::Written { .. }));
        }
    }
    let res: Vec<Resolution> = [10, 60]
        .iter()
        .map(|s| Resolution::new(std::time::Duration::from_secs(*s)).unwrap())
        .collect();
    let mut before = Vec::new();
    for t in [&idle, &busy] {
        // Fewer flushes than the trigger: everything is still in the head.
        assert!(head_rows(&store, t).await > 0, "{t}");
        for r in &res {
            let v = stored(&store, t, *r).await;
            assert!(!v.is_empty());
            before.push(v);
        }
    }
    let cfg = MaintenanceConfig::default();
    maintenance::pass_once(&store, &cfg).await;
    let mut after = Vec::new();
    for t in [&idle, &busy] {
        assert_eq!(head_rows(&store, t).await, 0, "{t}'s head after a pass");
        for r in &res {
            after.push(stored(&store, t, *r).await);
        }
    }
    assert_eq!(before, after, "the merge changed no rollup");
    assert!(store.rollup_head_tenants().await.unwrap().is_empty());
    // A second pass finds nothing to do and changes nothing.
    maintenance::pass_once(&store, &cfg).await;
    let mut again = Vec::new();
    for t in [&idle, &busy] {
        for r in &res {
            again.push(stored(&store, t, *r).await);
        }
    }
    assert_eq!(after, again);
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn sqlite_maintenance_merges_an_idle_rollup_head() {
    let dir = tempfile::tempdir().unwrap();
    let store = Store::open(StoreConfig::sqlite(dir.path())).await.unwrap();
    idle_head_is_merged(store).await;
}

async fn with_db(db: Option<support::ScopedDb>) {
    let Some(db) = db else {
        return;
    };
    idle_head_is_merged(Store::open(db.config.clone()).await.unwrap()).await;
    db.drop_db().await;
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn postgres_maintenance_merges_an_idle_rollup_head() {
    with_db(support::postgres_db("kk_mhead").await).await;
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn mysql_maintenance_merges_an_idle_rollup_head() {
    with_db(support::mysql_db("kk_mhead").await).await;
}
