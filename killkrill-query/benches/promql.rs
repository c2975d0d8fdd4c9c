//! Range-query evaluation time of `sum by (job) (rate(x[5m]))` over 1,000
//! series × 1 h of 15 s samples (240,000 samples, 241 steps of 15 s), and
//! over 1,000 series × 24 h of 15 s samples (5,760,000 samples) at a 1 min
//! step (1,441 steps), from the in-memory source, with a baseline measured
//! in the same run:
//!
//! - `hand_written`: the same answer computed by a direct loop over the same
//!   series (binary search of each window, Prometheus's extrapolated rate,
//!   sum into a map per job per step) — the least any evaluator must do, so
//!   the ratio is the cost of parsing, planning, fetching and evaluating a
//!   general expression tree.
//!
//! Run: `cargo bench --workspace --bench promql`

use std::collections::HashMap;
use std::hint::black_box;
use std::sync::Arc;
use std::time::Duration;

use criterion::{Criterion, Throughput, criterion_group, criterion_main};
use killkrill_query::{Engine, EngineConfig, MemorySource, QueryValue, SampleSource, Series};

const SERIES: usize = 1_000;
const STEP: i64 = 15_000;
const HOUR: i64 = 3_600_000;
const RANGE: i64 = 300_000;

fn data(span: i64) -> MemorySource {
    let mut s = MemorySource::new();
    let mut rng = 0x9e37_79b9_7f4a_7c15u64;
    for i in 0..SERIES {
        let job = format!("job-{}", i % 10);
        let instance = format!("10.0.{}.{}:9100", i / 100, i % 100);
        let mut v = 0.0;
        let pts = (0..span / STEP)
            .map(|k| {
                rng ^= rng << 13;
                rng ^= rng >> 7;
                rng ^= rng << 17;
                v += (rng % 100) as f64;
                (k * STEP + (i as i64 % 15) * 1_000, v)
            })
            .collect();
        s.add_str(
            &[("__name__", "x"), ("job", &job), ("instance", &instance)],
            pts,
        );
    }
    s
}

/// Prometheus's extrapolated rate, for the baseline.
fn rate(w: &[(i64, f64)], lo: i64, hi: i64) -> Option<f64> {
    if w.len() < 2 {
        return None;
    }
    let (ft, fv) = w[0];
    let (lt, lv) = w[w.len() - 1];
    let mut result = lv - fv;
    let mut prev = fv;
    for &(_, v) in &w[1..] {
        if v < prev {
            result += prev;
        }
        prev = v;
    }
    let mut to_start = (ft - lo) as f64 / 1000.0;
    let to_end = (hi - lt) as f64 / 1000.0;
    let sampled = (lt - ft) as f64 / 1000.0;
    let avg = sampled / (w.len() - 1) as f64;
    if result > 0.0 && fv >= 0.0 {
        to_start = to_start.min(sampled * (fv / result));
    }
    let th = avg * 1.1;
    let mut interval = sampled;
    interval += if to_start < th { to_start } else { avg / 2.0 };
    interval += if to_end < th { to_end } else { avg / 2.0 };
    Some(result * interval / sampled / ((hi - lo) as f64 / 1000.0))
}

fn hand_written(series: &[Series], end: i64, step: i64) -> HashMap<String, Vec<(i64, f64)>> {
    let mut out: HashMap<String, Vec<(i64, f64)>> = HashMap::new();
    let mut ts = 0;
    while ts <= end {
        let mut sums: HashMap<&str, f64> = HashMap::new();
        for s in series {
            let a = s.points.partition_point(|p| p.0 < ts - RANGE);
            let b = s.points.partition_point(|p| p.0 <= ts);
            if let Some(r) = rate(&s.points[a..b], ts - RANGE, ts) {
                let job = s
                    .labels
                    .iter()
                    .find(|(k, _)| k == "job")
                    .map_or("", |(_, v)| v);
                *sums.entry(job).or_default() += r;
            }
        }
        for (job, v) in sums {
            out.entry(job.to_string()).or_default().push((ts, v));
        }
        ts += step;
    }
    out
}

fn run(c: &mut Criterion, name: &str, span: i64, step: i64, samples: usize) {
    let rt = tokio::runtime::Builder::new_multi_thread()
        .worker_threads(2)
        .enable_all()
        .build()
        .expect("runtime");
    let source = data(span);
    let all = rt
        .block_on(source.select(
            &[killkrill_query::Matcher::equal("__name__", "x")],
            i64::MIN,
            i64::MAX,
        ))
        .expect("select");
    let engine = Engine::new(Arc::new(source), EngineConfig::default());
    let query = "sum by (job) (rate(x[5m]))";

    // Both must agree before their speed is compared.
    let QueryValue::Matrix(m) = rt
        .block_on(engine.range(query, 0, span, step, None))
        .expect("query")
    else {
        panic!("matrix expected")
    };
    let base = hand_written(&all, span, step);
    assert_eq!(m.len(), base.len());
    for s in &m {
        let job = &s.labels[0].1;
        let want = &base[job];
        assert_eq!(s.points.len(), want.len());
        for (a, b) in s.points.iter().zip(want) {
            assert!(
                (a.1 - b.1).abs() <= 1e-9 * b.1.abs(),
                "{job}: {a:?} vs {b:?}"
            );
        }
    }

    let mut g = c.benchmark_group(name);
    g.throughput(Throughput::Elements((SERIES as i64 * span / STEP) as u64));
    g.measurement_time(Duration::from_secs(8));
    g.sample_size(samples);
    g.bench_function("engine", |b| {
        b.iter(|| black_box(rt.block_on(engine.range(query, 0, span, step, None))))
    });
    g.bench_function("hand_written", |b| {
        b.iter(|| black_box(hand_written(&all, span, step)))
    });
    g.finish();
}

fn bench(c: &mut Criterion) {
    run(c, "range_query_1000_series_1h_15s", HOUR, STEP, 20);
    // Test runners (nextest --all-targets) run benches once, unoptimised:
    // the 24 h shape only when actually benchmarking.
    if std::env::args().any(|a| a == "--bench") {
        run(c, "range_query_1000_series_24h_1m", 24 * HOUR, 60_000, 10);
    }
}

criterion_group!(benches, bench);
criterion_main!(benches);
