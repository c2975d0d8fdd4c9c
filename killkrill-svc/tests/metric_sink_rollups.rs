//! `StoreMetricSink` on a real store (SQLite always; PostgreSQL and MySQL
//! when `KILLKRILL_TEST_POSTGRES_URL` / `KILLKRILL_TEST_MYSQL_URL` are set):
//! samples, metadata and rollups are stored exactly once per batch when
//! batches are delivered twice in other groupings, when the sink is
//! replaced (a worker restart) and when a write is cancelled mid-flight (a
//! worker killed mid-window). The stored rollups are compared with rollups
//! recomputed from the raw samples (the model), field by field.
#![allow(clippy::unwrap_used, clippy::print_stderr)]

use std::collections::BTreeMap;
use std::sync::Arc;
use std::time::Duration;

use killkrill_core::aggregate::{AggregateConfig, Point, Resolution};
use killkrill_core::event::{
    Labels, MetricMetadata, MetricSample, MetricType, NANOS_PER_SEC, Tenant, Timestamp,
};
use killkrill_core::pipeline::{Batch, BatchId};
use killkrill_core::storage::{LabelMatcher, MetricStore, TimeRange};
use killkrill_store::{Store, StoreConfig};
use killkrill_svc::serve::sinks::{MetricSink, StoreMetricSink};

mod support;

const T0: i64 = 1_764_000_000 * NANOS_PER_SEC;
const STEP: i64 = 7 * NANOS_PER_SEC;

/// A tiny deterministic generator (xorshift).
struct Rng(u64);

impl Rng {
    fn next(&mut self) -> u64 {
        self.0 ^= self.0 << 13;
        self.0 ^= self.0 >> 7;
        self.0 ^= self.0 << 17;
        self.0
    }

    fn below(&mut self, n: u64) -> u64 {
        self.next() % n
    }
}

fn config() -> AggregateConfig {
    serde_json::from_str(
        r#"{"resolutions": ["10s", "1m"], "allowed_lateness": "30s", "late_samples": "aggregate"}"#,
    )
    .unwrap()
}

/// `n` batches of two tenants: per batch, every series gets two samples
/// (counters rise with a reset in the middle, gauges wander).
fn batches(n: usize, seed: u64) -> Vec<Arc<Batch>> {
    let mut rng = Rng(seed);
    let mut out = Vec::new();
    let mut counters = [0.0f64; 3];
    for i in 0..n {
        let tenant = Tenant::new(if i % 5 == 4 { "beta" } else { "acme" }).unwrap();
        let mut b = Batch::new(
            BatchId::from_u128(0xB000_0000 + i as u128 * 7919),
            tenant.clone(),
            Timestamp::from_nanos(T0),
        );
        for k in 0..2 {
            let t = T0 + (i as i64 * 2 + k) * STEP;
            for (s, c) in counters.iter_mut().enumerate() {
                if i == n / 2 && s == 1 && k == 0 {
                    *c = 0.0; // a counter reset
                }
                *c += rng.below(20) as f64 * 0.5;
                b.metrics.push(sample(&tenant, "jobs_total", s, *c, t));
            }
            for s in 0..3 {
                let v = rng.below(1000) as f64 / 8.0 - 40.0;
                b.metrics.push(sample(&tenant, "temp_celsius", s, v, t));
            }
        }
        b.metadata.push(MetricMetadata {
            family: "jobs".into(),
            kind: MetricType::Counter,
            help: Some(format!("jobs done (batch {})", i % 2)),
            unit: None,
        });
        out.push(Arc::new(b));
    }
    out
}

fn sample(tenant: &Tenant, name: &str, s: usize, v: f64, t: i64) -> MetricSample {
    MetricSample {
        tenant: Some(tenant.clone()),
        name: name.into(),
        labels: Labels::from_pairs([("instance", format!("host{s}")), ("job", "node".into())]),
        value: v,
        timestamp: Some(Timestamp::from_nanos(t)),
        ..MetricSample::default()
    }
}

/// Per (tenant, name, labels): sorted, distinct points.
type Raw = BTreeMap<(String, String, Labels), BTreeMap<i64, f64>>;

fn raw(batches: &[Arc<Batch>]) -> Raw {
    let mut m = Raw::new();
    for b in batches {
        for s in &b.metrics {
            m.entry((b.tenant.to_string(), s.name.to_string(), s.labels.clone()))
                .or_default()
                .insert(s.timestamp.unwrap().as_nanos(), s.value);
        }
    }
    m
}

/// Compares every stored rollup (both resolutions) with the model.
async fn check(store: &dyn MetricStore, all: &[Arc<Batch>], label: &str) {
    let model = raw(all);
    for (res, secs) in [("10s", 10), ("1m", 60)] {
        let r = Resolution::new(Duration::from_secs(secs)).unwrap();
        for tenant in ["acme", "beta"] {
            let t = Tenant::new(tenant).unwrap();
            let stored = store
                .select_rollups(&t, &[], r, TimeRange::ALL)
                .await
                .unwrap();
            let want: Vec<_> = model
                .iter()
                .filter(|((tt, _, _), _)| tt == tenant)
                .collect();
            assert_eq!(stored.len(), want.len(), "{label} {tenant} {res}: series");
            for ((_, name, labels), points) in want {
                let got = stored
                    .iter()
                    .find(|s| s.name == name.as_str() && &s.labels == labels)
                    .unwrap_or_else(|| panic!("{label}: no rollups of {name}{labels:?}"));
                let mut windows: BTreeMap<i64, Vec<Point>> = BTreeMap::new();
                for (ts, v) in points {
                    let ts = Timestamp::from_nanos(*ts);
                    windows
                        .entry(r.window_start(ts).as_nanos())
                        .or_default()
                        .push(Point::new(ts, *v));
                }
                assert_eq!(got.windows.len(), windows.len(), "{label} {name} {res}");
                for ((ws, g), (mws, pts)) in got.windows.iter().zip(&windows) {
                    assert_eq!(ws.as_nanos(), *mws, "{label} {name} {res}");
                    let ctx = format!("{label} {tenant} {name}{labels:?} {res} window {ws:?}");
                    support::assert_same_rollup(g, pts, &ctx);
                }
            }
        }
    }
}

/// Raw samples read back equal the model exactly.
async fn check_samples(store: &dyn MetricStore, all: &[Arc<Batch>]) {
    let model = raw(all);
    for tenant in ["acme", "beta"] {
        let t = Tenant::new(tenant).unwrap();
        let got = store
            .select_samples(&t, &[LabelMatcher::eq("job", "node")], TimeRange::ALL)
            .await
            .unwrap();
        let want: Vec<_> = model
            .iter()
            .filter(|((tt, _, _), _)| tt == tenant)
            .collect();
        assert_eq!(got.len(), want.len());
        for ((_, name, labels), points) in want {
            let s = got
                .iter()
                .find(|s| s.name == name.as_str() && &s.labels == labels)
                .unwrap();
            let p: Vec<(i64, f64)> = points.iter().map(|(t, v)| (*t, *v)).collect();
            assert_eq!(s.points, p, "{name}{labels:?}");
        }
    }
}

/// Groups `batches` into deliveries of 1..=4 batches.
fn groups(batches: &[Arc<Batch>], rng: &mut Rng) -> Vec<Vec<Arc<Batch>>> {
    let mut out = Vec::new();
    let mut i = 0;
    while i < batches.len() {
        let n = (1 + rng.below(4) as usize).min(batches.len() - i);
        out.push(batches[i..i + n].to_vec());
        i += n;
    }
    out
}

fn sink(store: &Store) -> StoreMetricSink {
    StoreMetricSink::with_rollups(Arc::new(store.clone()), config()).unwrap()
}

/// Delivered, redelivered in another grouping, then partly redelivered to
/// a new sink (restart): the rollups equal the model.
async fn redelivery(store: &Store) {
    let all = batches(24, 0x9E37_79B9);
    let mut rng = Rng(42);
    let first = sink(store);
    for g in groups(&all, &mut rng) {
        first.write_metrics(&g).await.unwrap();
    }
    check(store, &all, "after the first delivery").await;
    for g in groups(&all, &mut rng) {
        first.write_metrics(&g).await.unwrap();
    }
    check(store, &all, "after a redelivery").await;
    drop(first);
    let restarted = sink(store);
    let some: Vec<Arc<Batch>> = all.iter().step_by(3).cloned().collect();
    for g in groups(&some, &mut rng) {
        restarted.write_metrics(&g).await.unwrap();
    }
    check(store, &all, "after a restart and redelivery").await;
    check_samples(store, &all).await;
    let meta = store
        .select_metadata(&Tenant::new("acme").unwrap(), Some("jobs"))
        .await
        .unwrap();
    assert_eq!(meta.len(), 1);
    assert_eq!(meta[0].kind, MetricType::Counter);
    assert!(meta[0].help.as_deref().unwrap().starts_with("jobs done"));
}

/// Writes cancelled at random points (a worker process killed
/// mid-window: its task aborted and its connections dropped, so the
/// database rolls back what it had not committed), a new "process" with
/// its own connections and sink, then every unacknowledged group delivered
/// again: the rollups equal the model.
async fn killed_mid_window(store: &Store) {
    let all = batches(30, 0x1234_5678);
    let mut rng = Rng(7);
    let mut pending: Vec<Vec<Arc<Batch>>> = Vec::new();
    let process = || async { Store::open(store.config().clone()).await.unwrap() };
    let mut conns = process().await;
    let mut worker = Arc::new(sink(&conns));
    let mut killed = 0;
    for g in groups(&all, &mut rng) {
        if rng.below(3) == 0 {
            // Kill: cancel the write after a random delay, drop the
            // process's connections, start a new one.
            let w = worker.clone();
            let g2 = g.clone();
            let task = tokio::spawn(async move { w.write_metrics(&g2).await });
            tokio::time::sleep(Duration::from_micros(rng.below(3000))).await;
            task.abort();
            let done = matches!(task.await, Ok(Ok(())));
            if !done {
                killed += 1;
                pending.push(g);
            }
            drop(worker);
            drop(conns);
            conns = process().await;
            worker = Arc::new(sink(&conns));
        } else {
            worker.write_metrics(&g).await.unwrap();
        }
    }
    // Redelivery after the restarts, every unacknowledged group.
    for g in pending {
        worker.write_metrics(&g).await.unwrap();
    }
    eprintln!("{killed} writes were killed mid-flight");
    check(store, &all, "after kills and redelivery").await;
    check_samples(store, &all).await;
}

async fn suite(store: Store) {
    redelivery(&store).await;
    let fresh_tenant_data = store
        .select_rollups(
            &Tenant::new("acme").unwrap(),
            &[],
            Resolution::new(Duration::from_secs(60)).unwrap(),
            TimeRange::ALL,
        )
        .await
        .unwrap();
    assert!(!fresh_tenant_data.is_empty());
    store.close().await;
}

async fn suite_killed(store: Store) {
    killed_mid_window(&store).await;
    store.close().await;
}

async fn sqlite() -> (tempfile::TempDir, Store) {
    let dir = tempfile::tempdir().unwrap();
    let store = Store::open(StoreConfig::sqlite(dir.path().join("kk.db")))
        .await
        .unwrap();
    (dir, store)
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn sqlite_redelivery_and_restart_are_exact() {
    let (_dir, store) = sqlite().await;
    suite(store).await;
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn sqlite_killed_mid_window_is_exact() {
    let (_dir, store) = sqlite().await;
    suite_killed(store).await;
}

async fn with_db(db: Option<support::ScopedDb>, f: impl AsyncFnOnce(Store)) {
    let Some(db) = db else {
        return;
    };
    f(Store::open(db.config.clone()).await.unwrap()).await;
    db.drop_db().await;
}

async fn with_postgres(f: impl AsyncFnOnce(Store)) {
    with_db(support::postgres_db("kk_msink").await, f).await;
}

async fn with_mysql(f: impl AsyncFnOnce(Store)) {
    with_db(support::mysql_db("kk_msink").await, f).await;
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn postgres_redelivery_and_restart_are_exact() {
    with_postgres(suite).await;
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn postgres_killed_mid_window_is_exact() {
    with_postgres(suite_killed).await;
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn mysql_redelivery_and_restart_are_exact() {
    with_mysql(suite).await;
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn mysql_killed_mid_window_is_exact() {
    with_mysql(suite_killed).await;
}

#[tokio::test]
async fn memory_model_store_behaves_the_same() {
    let store = killkrill_core::storage::MemoryMetricStore::new();
    let store: Arc<dyn MetricStore> = Arc::new(store);
    let all = batches(12, 99);
    let s = StoreMetricSink::with_rollups(store.clone(), config()).unwrap();
    let mut rng = Rng(3);
    for g in groups(&all, &mut rng) {
        s.write_metrics(&g).await.unwrap();
    }
    for g in groups(&all, &mut rng) {
        s.write_metrics(&g).await.unwrap();
    }
    check(store.as_ref(), &all, "memory").await;
}
