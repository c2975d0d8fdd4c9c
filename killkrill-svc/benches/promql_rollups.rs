//! PromQL over rollups against PromQL over raw samples, same store, same
//! run: `max_over_time(x[1h])` over 24 h at a 1 h step across N series
//! (default 1,000; one sample a minute, written through `StoreMetricSink`
//! with 1m/5m/1h rollups into SQLite).
//!
//! ```text
//! cargo bench -p killkrill-svc --bench promql_rollups -- [--series N] [--runs N]
//! ```
//! Prints the median wall time of each path and their ratio; both answers
//! are compared value by value first.
#![allow(clippy::print_stdout, clippy::unwrap_used)]

use std::sync::Arc;
use std::time::{Duration, Instant};

use killkrill_core::aggregate::{AggregateConfig, Resolution};
use killkrill_core::event::{Labels, MetricSample, Tenant, Timestamp};
use killkrill_core::pipeline::{Batch, BatchId};
use killkrill_query::{Engine, EngineConfig, QueryValue};
use killkrill_store::{Store, StoreConfig};
use killkrill_svc::serve::http::prom::StoreSource;
use killkrill_svc::serve::sinks::{MetricSink, StoreMetricSink};

const T0: i64 = 1_764_000_000_000;
const H: i64 = 3_600_000;

fn arg(name: &str, default: usize) -> usize {
    let args: Vec<String> = std::env::args().collect();
    args.iter()
        .position(|a| a == name)
        .and_then(|i| args.get(i + 1))
        .and_then(|v| v.parse().ok())
        .unwrap_or(default)
}

async fn median(engine: &Engine, q: &str, runs: usize) -> (Duration, QueryValue, &'static str) {
    let mut times = Vec::new();
    let mut last = None;
    for _ in 0..runs {
        let t = Instant::now();
        let (v, s) = engine
            .range_with_stats(q, T0 + H, T0 + 25 * H, H, None)
            .await
            .unwrap();
        times.push(t.elapsed());
        last = Some((v, s.path()));
    }
    times.sort();
    let (v, p) = last.unwrap();
    (times[times.len() / 2], v, p)
}

#[tokio::main(flavor = "multi_thread", worker_threads = 2)]
async fn main() {
    // `cargo nextest run --all-targets` lists every target's tests: this
    // bench has none (and must not run a 1-minute load to say so).
    if std::env::args().any(|a| a == "--list") {
        return;
    }
    let series = arg("--series", 1_000);
    let runs = arg("--runs", 7);
    let dir = tempfile::tempdir().unwrap();
    let store = Store::open(StoreConfig::sqlite(dir.path().join("kk.db")))
        .await
        .unwrap();
    let tenant = Tenant::new("bench").unwrap();
    let cfg: AggregateConfig = serde_json::from_str(
        r#"{"resolutions": ["1m", "5m", "1h"], "late_samples": "aggregate", "max_series_per_metric": 100000}"#,
    )
    .unwrap();
    let sink = StoreMetricSink::with_rollups(Arc::new(store.clone()), cfg).unwrap();
    let started = Instant::now();
    // 25 h + 1 min of samples, one batch per 10 minutes of all series.
    for b in 0..(25 * 6 + 1) {
        let mut batch = Batch::new(
            BatchId::from_u128(b as u128 + 1),
            tenant.clone(),
            Timestamp::from_nanos(T0 * 1_000_000),
        );
        for m in 0..10 {
            let ms = T0 + (b * 10 + m) * 60_000;
            for s in 0..series {
                batch.metrics.push(MetricSample {
                    tenant: Some(tenant.clone()),
                    name: "x".into(),
                    labels: Labels::from_pairs([("instance", format!("i{s}"))]),
                    value: ((ms / 60_000 * 31 + s as i64 * 7) % 1000) as f64,
                    timestamp: Some(Timestamp::from_nanos(ms * 1_000_000)),
                    ..MetricSample::default()
                });
            }
        }
        sink.write_metrics(&[Arc::new(batch)]).await.unwrap();
    }
    println!(
        "wrote {} series x {} samples in {:.1} s",
        series,
        (25 * 6 + 1) * 10,
        started.elapsed().as_secs_f64()
    );
    let res: Vec<Resolution> = [60, 300, 3600]
        .iter()
        .map(|s| Resolution::new(Duration::from_secs(*s)).unwrap())
        .collect();
    let cfg = EngineConfig {
        max_series: 1_000_000,
        ..EngineConfig::default()
    };
    let raw = Engine::new(
        Arc::new(StoreSource::new(store.clone(), tenant.clone(), 1_000_000)),
        cfg.clone(),
    );
    let rolled = Engine::new(
        Arc::new(StoreSource::new(store.clone(), tenant, 1_000_000).with_rollups(res)),
        cfg,
    );
    let q = "max_over_time(x[1h])";
    let (tr, vr, pr) = median(&raw, q, runs).await;
    let (tu, vu, pu) = median(&rolled, q, runs).await;
    assert_eq!((pr, pu), ("raw", "rollup"));
    assert_eq!(vr, vu, "rollup and raw answers differ");
    println!(
        "{q} over 24 h, step 1 h, {series} series: raw {:.1} ms, rollup {:.1} ms, raw/rollup = {:.1}x (median of {runs})",
        tr.as_secs_f64() * 1e3,
        tu.as_secs_f64() * 1e3,
        tr.as_secs_f64() / tu.as_secs_f64()
    );
    store.close().await;
}
