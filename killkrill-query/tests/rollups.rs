//! The rollup planner over `MemorySource`'s model rollups: every query
//! gives the same result with and without rollups, and the engine reports
//! which path it took (all steps, some steps, none).
#![allow(clippy::unwrap_used)]

use std::sync::Arc;

use killkrill_query::{Engine, EngineConfig, MemorySource, QueryValue};

const MIN: i64 = 60_000;
const H: i64 = 60 * MIN;

fn data() -> MemorySource {
    let mut m = MemorySource::new();
    for (i, job) in ["api", "db", "web"].iter().enumerate() {
        // Every 15 s for 6 h: samples fall on every window edge.
        let pts: Vec<(i64, f64)> = (0..=6 * 240)
            .map(|k| {
                let x = ((k * 37 + i as i64 * 11) % 101) as f64 * 0.25 - 7.0;
                (k * 15_000, x)
            })
            .collect();
        m.add_str(&[("__name__", "g"), ("job", job)], pts);
    }
    m
}

fn engines(complete_before: i64) -> (Engine, Engine) {
    let raw = Engine::new(Arc::new(data()), EngineConfig::default());
    let rolled = Engine::new(
        Arc::new(data().with_rollups(vec![10_000, MIN, 5 * MIN, H], complete_before)),
        EngineConfig::default(),
    );
    (raw, rolled)
}

fn assert_close(a: &QueryValue, b: &QueryValue, q: &str) {
    let (QueryValue::Matrix(a), QueryValue::Matrix(b)) = (a, b) else {
        assert_eq!(a, b, "{q}");
        return;
    };
    assert_eq!(a.len(), b.len(), "{q}");
    for (x, y) in a.iter().zip(b) {
        assert_eq!(x.labels, y.labels, "{q}");
        assert_eq!(x.points.len(), y.points.len(), "{q}");
        for (p, r) in x.points.iter().zip(&y.points) {
            assert_eq!(p.0, r.0, "{q}");
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

#[tokio::test]
async fn rollup_answers_equal_raw_answers() {
    let cases: &[(&str, i64, i64, i64, &str)] = &[
        ("max_over_time(g[1h])", H, 6 * H, H, "rollup"),
        ("min_over_time(g[1h])", H, 6 * H, H, "rollup"),
        ("sum_over_time(g[30m])", H, 6 * H, 10 * MIN, "rollup"),
        ("count_over_time(g[5m])", H, 3 * H, MIN, "rollup"),
        ("avg_over_time(g[10m])", H, 3 * H, 5 * MIN, "rollup"),
        ("last_over_time(g[1m])", H, 2 * H, 30_000, "rollup"),
        (
            "sum by (job) (max_over_time(g{job!=\"db\"}[1h] offset 1h))",
            2 * H,
            6 * H,
            H,
            "rollup",
        ),
        (
            "max_over_time(g[1h]) - min_over_time(g[1h])",
            H,
            6 * H,
            H,
            "rollup",
        ),
        // Not on edges or not a rollup function: raw.
        ("max_over_time(g[1h])", H + 1, 6 * H, H, "raw"),
        ("max_over_time(g[45s])", H, 2 * H, MIN, "raw"),
        ("max_over_time(g[90s])", H, 2 * H, MIN, "rollup"),
        ("stddev_over_time(g[1h])", H, 6 * H, H, "raw"),
        ("max_over_time(g[1h:5m])", H, 6 * H, H, "raw"),
        ("max_over_time(g[1h] @ 7200)", H, 6 * H, H, "raw"),
    ];
    let (raw, rolled) = engines(i64::MAX);
    for &(q, start, end, step, path) in cases {
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
        assert_close(&a, &b, q);
    }
    // Instant queries on an edge.
    let (a, _) = raw
        .instant_with_stats("max_over_time(g[1h])", 3 * H, None)
        .await
        .unwrap();
    let (b, sb) = rolled
        .instant_with_stats("max_over_time(g[1h])", 3 * H, None)
        .await
        .unwrap();
    assert_eq!(sb.path(), "rollup");
    assert_eq!(a, b);
}

#[tokio::test]
async fn steps_after_the_coverage_read_raw_samples() {
    // Rollups complete before 3h30m: steps 1h..3h from rollups, 4h..6h raw.
    let (raw, rolled) = engines(3 * H + 30 * MIN);
    for q in ["max_over_time(g[1h])", "count_over_time(g[2h])"] {
        let (a, _) = raw.range_with_stats(q, H, 6 * H, H, None).await.unwrap();
        let (b, sb) = rolled.range_with_stats(q, H, 6 * H, H, None).await.unwrap();
        assert_eq!(sb.path(), "mixed", "{q}");
        assert_close(&a, &b, q);
    }
    // Nothing covered: raw.
    let (_, rolled) = engines(0);
    let (_, s) = rolled
        .range_with_stats("max_over_time(g[1h])", H, 6 * H, H, None)
        .await
        .unwrap();
    assert_eq!(s.path(), "raw");
}
