//! PromQL over the stored rollups against PromQL over the raw samples of
//! the same store (SQLite always; PostgreSQL and MySQL when
//! `KILLKRILL_TEST_POSTGRES_URL` / `KILLKRILL_TEST_MYSQL_URL` are set).
//!
//! Samples go through `StoreMetricSink` as a worker writes them: one sink
//! writes the first batches, a second one (a restart mid-window) the rest
//! and redelivers some of the first sink's batches, so the hour windows in
//! the middle are stored as several partial flushes and the ledger must
//! keep redelivered batches out. The merged stored windows must equal the
//! rollups of the raw samples exactly, and `count/sum/min/max/last` over
//! rollups must equal the raw answers exactly, `avg` within 1e-12 relative.
#![allow(clippy::unwrap_used, clippy::print_stderr)]

mod support;

use std::collections::BTreeMap;
use std::sync::Arc;
use std::time::Duration;

use killkrill_core::aggregate::{AggregateConfig, Point, Resolution};
use killkrill_core::event::{Labels, MetricSample, NANOS_PER_SEC, Tenant, Timestamp};
use killkrill_core::pipeline::{Batch, BatchId};
use killkrill_core::storage::{MetricStore, TimeRange};
use killkrill_query::{Engine, EngineConfig, QueryValue};
use killkrill_store::{Store, StoreConfig};
use killkrill_svc::serve::http::prom::StoreSource;
use killkrill_svc::serve::sinks::{MetricSink, StoreMetricSink};

/// An hour boundary (ms).
const T0: i64 = 1_764_000_000_000;
const H: i64 = 3_600_000;
const MIN: i64 = 60_000;

fn tenant() -> Tenant {
    Tenant::new("acme").unwrap()
}

fn agg_config() -> AggregateConfig {
    serde_json::from_str(
        r#"{"resolutions": ["1m", "5m", "1h"], "allowed_lateness": "30s", "late_samples": "aggregate"}"#,
    )
    .unwrap()
}

fn resolutions() -> Vec<Resolution> {
    [60, 300, 3600]
        .iter()
        .map(|s| Resolution::new(Duration::from_secs(*s)).unwrap())
        .collect()
}

/// 6 h 15 min of samples, one batch per 10 minutes: four `x` series every
/// 15 s (on every window edge), one `y` series 7 ms after the edges.
fn batches() -> Vec<Arc<Batch>> {
    let t = tenant();
    let mut out = Vec::new();
    for b in 0..((6 * H + 15 * MIN) / (10 * MIN)) {
        let mut batch = Batch::new(
            BatchId::from_u128(0xA000 + b as u128),
            t.clone(),
            Timestamp::from_nanos(T0 * 1_000_000),
        );
        for k in 0..40 {
            let ms = T0 + b * 10 * MIN + k * 15_000;
            for s in 0..5 {
                let (name, ts) = if s == 4 { ("y", ms + 7) } else { ("x", ms) };
                let i = (ms - T0) / 15_000;
                let v = ((i * 37 + s * 11) % 203) as f64 * 0.125 - 9.0;
                batch.metrics.push(MetricSample {
                    tenant: Some(t.clone()),
                    name: name.into(),
                    labels: Labels::from_pairs([
                        ("instance", format!("i{s}")),
                        ("job", if s % 2 == 0 { "api" } else { "db" }.to_string()),
                    ]),
                    value: v,
                    timestamp: Some(Timestamp::from_nanos(ts * 1_000_000)),
                    ..MetricSample::default()
                });
            }
        }
        out.push(Arc::new(batch));
    }
    out
}

/// Writes the batches the way workers would: a first sink, then a
/// restarted one that redelivers part of the first one's batches.
async fn write(store: &Store, all: &[Arc<Batch>]) {
    let sink =
        |s: &Store| StoreMetricSink::with_rollups(Arc::new(s.clone()), agg_config()).unwrap();
    let first = sink(store);
    // Up to 3 h 20 min: the hour window 3h..4h is cut in two.
    for g in all[..20].chunks(3) {
        first.write_metrics(g).await.unwrap();
    }
    drop(first);
    let second = sink(store);
    for g in all[17..].chunks(4) {
        second.write_metrics(g).await.unwrap();
    }
    // A late redelivery of a batch stored long ago: the ledger keeps it out.
    second.write_metrics(&all[7..9]).await.unwrap();
}

/// The stored (merged) hour windows equal the rollups of the raw samples.
async fn check_merged_windows(store: &Store, all: &[Arc<Batch>]) {
    let mut model: BTreeMap<(String, Labels), BTreeMap<i64, Vec<Point>>> = BTreeMap::new();
    let h = Resolution::new(Duration::from_secs(3600)).unwrap();
    for b in all {
        for s in &b.metrics {
            let ts = s.timestamp.unwrap();
            model
                .entry((s.name.to_string(), s.labels.clone()))
                .or_default()
                .entry(h.window_start(ts).as_nanos())
                .or_default()
                .push(Point::new(ts, s.value));
        }
    }
    let stored = store
        .select_rollups(&tenant(), &[], h, TimeRange::ALL)
        .await
        .unwrap();
    assert_eq!(stored.len(), model.len());
    for s in &stored {
        let want = &model[&(s.name.to_string(), s.labels.clone())];
        assert_eq!(s.windows.len(), want.len(), "{}", s.name);
        for ((ws, got), (mws, pts)) in s.windows.iter().zip(want) {
            assert_eq!(ws.as_nanos(), *mws);
            support::assert_same_rollup(got, pts, &format!("{} {:?} {ws:?}", s.name, s.labels));
        }
    }
}

fn same(raw: &QueryValue, rolled: &QueryValue, q: &str, exact: bool) {
    let (QueryValue::Matrix(a), QueryValue::Matrix(b)) = (raw, rolled) else {
        panic!("{q}: not a matrix");
    };
    assert!(!a.is_empty(), "{q}: no result");
    assert_eq!(a.len(), b.len(), "{q}: series");
    for (x, y) in a.iter().zip(b) {
        assert_eq!(x.labels, y.labels, "{q}");
        assert_eq!(x.points.len(), y.points.len(), "{q} {:?}", x.labels);
        for (p, r) in x.points.iter().zip(&y.points) {
            assert_eq!(p.0, r.0, "{q}");
            if exact {
                assert_eq!(
                    p.1.to_bits(),
                    r.1.to_bits(),
                    "{q} {:?} at {}",
                    x.labels,
                    p.0
                );
            } else {
                let tol = 1e-12 * p.1.abs().max(1.0);
                assert!(
                    (p.1 - r.1).abs() <= tol,
                    "{q} at {}: {} vs {}",
                    p.0,
                    p.1,
                    r.1
                );
            }
        }
    }
}

async fn suite(store: Store) {
    let all = batches();
    write(&store, &all).await;
    check_merged_windows(&store, &all).await;
    let raw = Engine::new(
        Arc::new(StoreSource::new(store.clone(), tenant(), 10_000)),
        EngineConfig::default(),
    );
    let rolled = Engine::new(
        Arc::new(StoreSource::new(store.clone(), tenant(), 10_000).with_rollups(resolutions())),
        EngineConfig::default(),
    );
    let s = T0 + H;
    let e = T0 + 6 * H;
    let cases: &[(&str, i64, i64, i64, bool, &str)] = &[
        ("max_over_time(x[1h])", s, e, H, true, "rollup"),
        ("min_over_time(x[1h])", s, e, H, true, "rollup"),
        ("count_over_time(x[1h])", s, e, H, true, "rollup"),
        ("sum_over_time(x[1h])", s, e, H, true, "rollup"),
        ("last_over_time(x[1h])", s, e, H, true, "rollup"),
        ("avg_over_time(x[1h])", s, e, H, false, "rollup"),
        ("max_over_time(y[1h])", s, e, H, true, "rollup"),
        ("count_over_time(y[30m])", s, e, 10 * MIN, true, "rollup"),
        (
            "sum by (job) (sum_over_time(x[5m]))",
            s,
            s + H,
            5 * MIN,
            true,
            "rollup",
        ),
        (
            "max_over_time(x{job=\"api\"}[2h] offset 1h)",
            s + H,
            e,
            H,
            true,
            "rollup",
        ),
        ("avg_over_time(x[10m])", s, s + 2 * H, MIN, false, "rollup"),
        // Not on edges: raw on both sides.
        ("max_over_time(x[1h])", s + 1000, e, H, true, "raw"),
        ("max_over_time(x[45s])", s, s + H, MIN, true, "raw"),
        // After the rollups' coverage (the last sample at 6h14m45s): mixed.
        ("max_over_time(x[1h])", s, e + H, H, true, "mixed"),
    ];
    for &(q, start, end, step, exact, path) in cases {
        let (a, sa) = raw
            .range_with_stats(q, start, end, step, None)
            .await
            .unwrap();
        let (b, sb) = rolled
            .range_with_stats(q, start, end, step, None)
            .await
            .unwrap();
        assert_eq!(sa.path(), "raw", "{q}");
        assert_eq!(sb.path(), path, "{q}");
        same(&a, &b, q, exact);
    }
    store.close().await;
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn sqlite_rollup_answers_equal_raw_answers() {
    let dir = tempfile::tempdir().unwrap();
    let store = Store::open(StoreConfig::sqlite(dir.path().join("kk.db")))
        .await
        .unwrap();
    suite(store).await;
}

async fn with_db(db: Option<support::ScopedDb>) {
    let Some(db) = db else {
        return;
    };
    suite(Store::open(db.config.clone()).await.unwrap()).await;
    db.drop_db().await;
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn postgres_rollup_answers_equal_raw_answers() {
    with_db(support::postgres_db("kk_promroll").await).await;
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn mysql_rollup_answers_equal_raw_answers() {
    with_db(support::mysql_db("kk_promroll").await).await;
}

#[test]
fn nanos_per_sec_is_what_the_data_assumes() {
    assert_eq!(NANOS_PER_SEC, 1_000_000_000);
}
