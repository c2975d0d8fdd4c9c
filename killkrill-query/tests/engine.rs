//! Evaluator tests over an in-memory source with hand-checked values.
#![allow(clippy::unwrap_used, clippy::expect_used)]

use std::sync::Arc;
use std::time::Duration;

use killkrill_query::{Engine, EngineConfig, MemorySource, QueryError, QueryValue, stale_nan};

const M: i64 = 60_000;

/// Data, all sampled every 15 s from t=0 to t=10 min:
/// - `http_requests_total{job="api",instance="a"}`: 1/s counter (v = t/1000)
/// - `http_requests_total{job="api",instance="b"}`: 2/s counter, reset to 0 at 5 min
/// - `http_requests_total{job="web",instance="c"}`: 0.5/s
/// - `temp{room="x"}`: gauge 10,20,10,20,...
/// - `lat_bucket{le=...}`: histogram with 10/20/30 cumulative counts
fn source() -> MemorySource {
    let mut s = MemorySource::new();
    let ts: Vec<i64> = (0..=40).map(|i| i * 15_000).collect();
    let name = ("__name__", "http_requests_total");
    s.add_str(
        &[name, ("job", "api"), ("instance", "a")],
        ts.iter().map(|&t| (t, t as f64 / 1000.0)).collect(),
    );
    s.add_str(
        &[name, ("job", "api"), ("instance", "b")],
        ts.iter()
            .map(|&t| {
                (
                    t,
                    if t < 5 * M {
                        2.0 * t as f64 / 1000.0
                    } else {
                        2.0 * (t - 5 * M) as f64 / 1000.0
                    },
                )
            })
            .collect(),
    );
    s.add_str(
        &[name, ("job", "web"), ("instance", "c")],
        ts.iter().map(|&t| (t, 0.5 * t as f64 / 1000.0)).collect(),
    );
    s.add_str(
        &[("__name__", "temp"), ("room", "x")],
        ts.iter()
            .enumerate()
            .map(|(i, &t)| (t, if i % 2 == 0 { 10.0 } else { 20.0 }))
            .collect(),
    );
    for (le, c) in [("0.1", 10.0), ("0.5", 20.0), ("+Inf", 30.0)] {
        s.add_str(&[("__name__", "lat_bucket"), ("le", le)], vec![(10 * M, c)]);
    }
    // Same labels as instance "a" under another name.
    s.add_str(
        &[
            ("__name__", "http_requests_copy"),
            ("job", "api"),
            ("instance", "a"),
        ],
        ts.iter().map(|&t| (t, 1.0)).collect(),
    );
    // A series that goes stale at 2 min.
    s.add_str(
        &[("__name__", "gone")],
        vec![(0, 1.0), (60_000, 1.0), (120_000, stale_nan())],
    );
    s
}

fn engine() -> Engine {
    Engine::new(Arc::new(source()), EngineConfig::default())
}

async fn instant(q: &str, t: i64) -> Result<QueryValue, QueryError> {
    engine().instant(q, t, None).await
}

/// The instant vector as `(labels rendered, value)`, sorted by labels.
async fn vec_of(q: &str, t: i64) -> Vec<(String, f64)> {
    match instant(q, t).await.unwrap_or_else(|e| panic!("{q}: {e}")) {
        QueryValue::Vector(v) => {
            let mut out: Vec<(String, f64)> = v
                .into_iter()
                .map(|s| {
                    let l: Vec<String> = s.labels.iter().map(|(k, v)| format!("{k}={v}")).collect();
                    (l.join(","), s.v)
                })
                .collect();
            out.sort_by(|a, b| a.0.cmp(&b.0));
            out
        }
        other => panic!("{q}: expected vector, got {other:?}"),
    }
}

async fn scalar_of(q: &str, t: i64) -> f64 {
    match instant(q, t).await.unwrap() {
        QueryValue::Scalar { v, .. } => v,
        other => panic!("{q}: expected scalar, got {other:?}"),
    }
}

fn close(a: f64, b: f64) -> bool {
    (a - b).abs() <= 1e-9 * b.abs().max(1.0) || (a.is_nan() && b.is_nan())
}

async fn check(q: &str, t: i64, want: &[(&str, f64)]) {
    let got = vec_of(q, t).await;
    assert_eq!(got.len(), want.len(), "{q}: got {got:?}");
    for ((gl, gv), (wl, wv)) in got.iter().zip(want) {
        assert_eq!(gl, wl, "{q}");
        assert!(close(*gv, *wv), "{q}: {gl} = {gv}, want {wv}");
    }
}

const A: &str = "__name__=http_requests_total,instance=a,job=api";
const B: &str = "__name__=http_requests_total,instance=b,job=api";
const C: &str = "__name__=http_requests_total,instance=c,job=web";

#[tokio::test]
async fn selectors_and_matchers() {
    check("http_requests_total{instance=\"a\"}", 2 * M, &[(A, 120.0)]).await;
    check("http_requests_total{job!=\"api\"}", 2 * M, &[(C, 60.0)]).await;
    check(
        "http_requests_total{job=~\"ap.\"}",
        2 * M,
        &[(A, 120.0), (B, 240.0)],
    )
    .await;
    check("http_requests_total{job=~\"ap\"}", 2 * M, &[]).await;
    check(
        "http_requests_total{instance!~\"a|b\"}",
        2 * M,
        &[(C, 60.0)],
    )
    .await;
    // `or` between matcher sets.
    check(
        "http_requests_total{instance=\"a\" or instance=\"c\"}",
        2 * M,
        &[(A, 120.0), (C, 60.0)],
    )
    .await;
    // Between samples the last one within lookback is used.
    check(
        "http_requests_total{instance=\"a\"}",
        2 * M + 7_000,
        &[(A, 120.0)],
    )
    .await;
    // Lookback of 5 minutes after the last sample (10 min).
    check("http_requests_total{instance=\"a\"}", 15 * M, &[(A, 600.0)]).await;
    check("http_requests_total{instance=\"a\"}", 15 * M + 1, &[]).await;
    check(
        "http_requests_total{instance=\"a\"} offset 1m",
        2 * M,
        &[(A, 60.0)],
    )
    .await;
    check(
        "http_requests_total{instance=\"a\"} @ 30",
        9 * M,
        &[(A, 30.0)],
    )
    .await;
    check(
        "http_requests_total{instance=\"a\"} @ 90 offset 30s",
        9 * M,
        &[(A, 60.0)],
    )
    .await;
}

#[tokio::test]
async fn staleness_marker_ends_a_series() {
    check("gone", 90_000, &[("__name__=gone", 1.0)]).await;
    check("gone", 130_000, &[]).await;
    check("count_over_time(gone[5m])", 130_000, &[("", 2.0)]).await;
}

#[tokio::test]
async fn rates() {
    // Samples exactly on both window edges: no extrapolation; 1/s.
    check(
        "rate(http_requests_total{instance=\"a\"}[1m])",
        2 * M,
        &[("instance=a,job=api", 1.0)],
    )
    .await;
    check(
        "increase(http_requests_total{instance=\"a\"}[1m])",
        2 * M,
        &[("instance=a,job=api", 60.0)],
    )
    .await;
    // Reset to 0 at 5 min: 480 -> 570 (4:45) then 0 (5:00) -> 120 (6:00): 90 + 120 = 210
    // (the rise between 4:45 and the reset is not observed).
    check(
        "increase(http_requests_total{instance=\"b\"}[2m])",
        6 * M,
        &[("instance=b,job=api", 210.0)],
    )
    .await;
    check(
        "resets(http_requests_total{instance=\"b\"}[2m])",
        6 * M,
        &[("instance=b,job=api", 1.0)],
    )
    .await;
    check(
        "irate(http_requests_total{instance=\"b\"}[1m])",
        3 * M,
        &[("instance=b,job=api", 2.0)],
    )
    .await;
    check(
        "idelta(http_requests_total{instance=\"b\"}[1m])",
        3 * M,
        &[("instance=b,job=api", 30.0)],
    )
    .await;
    check("delta(temp[1m])", 2 * M, &[("room=x", 0.0)]).await;
    check(
        "deriv(http_requests_total{instance=\"c\"}[2m])",
        4 * M,
        &[("instance=c,job=web", 0.5)],
    )
    .await;
    check("changes(temp[1m])", 2 * M, &[("room=x", 4.0)]).await;
}

#[tokio::test]
async fn over_time() {
    // temp at 1m..2m: 15 s samples 60,75,90,105,120 -> indices 4..8 -> 10,20,10,20,10.
    check("avg_over_time(temp[1m])", 2 * M, &[("room=x", 14.0)]).await;
    check("sum_over_time(temp[1m])", 2 * M, &[("room=x", 70.0)]).await;
    check("min_over_time(temp[1m])", 2 * M, &[("room=x", 10.0)]).await;
    check("max_over_time(temp[1m])", 2 * M, &[("room=x", 20.0)]).await;
    check("count_over_time(temp[1m])", 2 * M, &[("room=x", 5.0)]).await;
    check(
        "last_over_time(temp[1m])",
        2 * M,
        &[("__name__=temp,room=x", 10.0)],
    )
    .await;
    check(
        "quantile_over_time(0.5, temp[1m])",
        2 * M,
        &[("room=x", 10.0)],
    )
    .await;
    // Population variance of 10,20,10,20,10: mean 14, var 24.
    check("stdvar_over_time(temp[1m])", 2 * M, &[("room=x", 24.0)]).await;
    check(
        "stddev_over_time(temp[1m])",
        2 * M,
        &[("room=x", 24f64.sqrt())],
    )
    .await;
    check("present_over_time(temp[1m])", 2 * M, &[("room=x", 1.0)]).await;
    check(
        "absent_over_time(nope{a=\"b\"}[1m])",
        2 * M,
        &[("a=b", 1.0)],
    )
    .await;
    check("absent_over_time(temp[1m])", 2 * M, &[]).await;
}

#[tokio::test]
async fn aggregations() {
    let t = 2 * M; // a=120, b=240, c=60
    check("sum(http_requests_total)", t, &[("", 420.0)]).await;
    check(
        "sum by (job) (http_requests_total)",
        t,
        &[("job=api", 360.0), ("job=web", 60.0)],
    )
    .await;
    check(
        "sum without (instance) (http_requests_total)",
        t,
        &[("job=api", 360.0), ("job=web", 60.0)],
    )
    .await;
    check("avg(http_requests_total)", t, &[("", 140.0)]).await;
    check("min(http_requests_total)", t, &[("", 60.0)]).await;
    check(
        "max by (job) (http_requests_total)",
        t,
        &[("job=api", 240.0), ("job=web", 60.0)],
    )
    .await;
    check("count(http_requests_total)", t, &[("", 3.0)]).await;
    check(
        "group by (job) (http_requests_total)",
        t,
        &[("job=api", 1.0), ("job=web", 1.0)],
    )
    .await;
    // Population stdvar of 120,240,60: mean 140; (400+10000+6400)/3 = 5600.
    check("stdvar(http_requests_total)", t, &[("", 5600.0)]).await;
    check("stddev(http_requests_total)", t, &[("", 5600f64.sqrt())]).await;
    check("topk(2, http_requests_total)", t, &[(A, 120.0), (B, 240.0)]).await;
    check("bottomk(1, http_requests_total)", t, &[(C, 60.0)]).await;
    check(
        "topk by (job) (1, http_requests_total)",
        t,
        &[(B, 240.0), (C, 60.0)],
    )
    .await;
    check("quantile(0.5, http_requests_total)", t, &[("", 120.0)]).await;
    check("quantile(0.75, http_requests_total)", t, &[("", 180.0)]).await;
    check("count_values(\"v\", temp)", t, &[("v=10", 1.0)]).await;
    // Aggregations fed straight from range functions (the fused path):
    // the metric name is gone after rate, kept after last_over_time.
    check(
        "sum by (__name__) (rate(http_requests_total[1m]))",
        t,
        &[("", 3.5)],
    )
    .await;
    check(
        "sum by (job) (rate(http_requests_total[1m]))",
        t,
        &[("job=api", 3.0), ("job=web", 0.5)],
    )
    .await;
    check(
        "max by (__name__) (last_over_time(http_requests_total[1m]))",
        t,
        &[("__name__=http_requests_total", 240.0)],
    )
    .await;
    check(
        "count_values(\"n\", count_over_time(temp[1m]))",
        t,
        &[("n=5", 1.0)],
    )
    .await;
    check(
        "quantile(0.5, rate(http_requests_total[1m]))",
        t,
        &[("", 1.0)],
    )
    .await;
    check(
        "avg without (instance) (rate(http_requests_total[1m]))",
        t,
        &[("job=api", 1.5), ("job=web", 0.5)],
    )
    .await;
    check(
        "count_values by (job) (\"v\", http_requests_total > 100)",
        t,
        &[("job=api,v=120", 1.0), ("job=api,v=240", 1.0)],
    )
    .await;
}

#[tokio::test]
async fn binary_operators() {
    let t = 2 * M;
    check(
        "http_requests_total{job=\"web\"} * 2",
        t,
        &[("instance=c,job=web", 120.0)],
    )
    .await;
    check(
        "2 - http_requests_total{job=\"web\"}",
        t,
        &[("instance=c,job=web", -58.0)],
    )
    .await;
    check("http_requests_total > 100", t, &[(A, 120.0), (B, 240.0)]).await;
    check("100 < http_requests_total", t, &[(A, 120.0), (B, 240.0)]).await;
    check(
        "http_requests_total > bool 100",
        t,
        &[
            ("instance=a,job=api", 1.0),
            ("instance=b,job=api", 1.0),
            ("instance=c,job=web", 0.0),
        ],
    )
    .await;
    assert_eq!(scalar_of("1 + 2 * 3 ^ 2", t).await, 19.0);
    assert_eq!(scalar_of("5 % 3", t).await, 2.0);
    assert_eq!(scalar_of("2 > bool 1", t).await, 1.0);
    // one-to-one with ignoring / on
    check(
        "http_requests_total / ignoring(instance) group_left sum by (job) (http_requests_total)",
        t,
        &[
            ("instance=a,job=api", 1.0 / 3.0),
            ("instance=b,job=api", 2.0 / 3.0),
            ("instance=c,job=web", 1.0),
        ],
    )
    .await;
    check(
        "sum by (job) (http_requests_total) / on(job) group_right count by (job) (http_requests_total)",
        t,
        &[("job=api", 180.0), ("job=web", 60.0)],
    )
    .await;
    check(
        "sum by (job) (http_requests_total) - on(job) sum by (job) (http_requests_total)",
        t,
        &[("job=api", 0.0), ("job=web", 0.0)],
    )
    .await;
    // set operators
    check(
        "http_requests_total and http_requests_total{job=\"web\"}",
        t,
        &[(C, 60.0)],
    )
    .await;
    check(
        "http_requests_total unless on(job) http_requests_total{job=\"web\"}",
        t,
        &[(A, 120.0), (B, 240.0)],
    )
    .await;
    check(
        "http_requests_total{job=\"web\"} or temp",
        t,
        &[(C, 60.0), ("__name__=temp,room=x", 10.0)],
    )
    .await;
    // group_left copies labels from the one side
    check(
        "http_requests_total{instance=\"a\"} * on(job) group_left(room) label_replace(vector(1), \"job\", \"api\", \"\", \"\") ",
        t,
        &[("instance=a,job=api", 120.0)],
    )
    .await;
}

#[tokio::test]
async fn matching_errors() {
    let e = instant("http_requests_total / on(job) http_requests_total", 2 * M)
        .await
        .unwrap_err();
    assert!(
        e.to_string().contains("many-to-many matching not allowed"),
        "{e}"
    );
    let e = instant(
        "http_requests_total{job=\"api\"} / on(job) sum by(job)(http_requests_total)",
        2 * M,
    )
    .await
    .unwrap_err();
    assert!(
        e.to_string()
            .contains("many-to-one matching must be explicit"),
        "{e}"
    );
    let e = instant(
        "label_replace(http_requests_total, \"instance\", \"x\", \"\", \"\")",
        2 * M,
    )
    .await
    .unwrap_err();
    assert!(e.to_string().contains("same labelset"), "{e}");
    let e = instant(
        "rate({__name__=~\"http_requests_(total|copy)\", instance=\"a\"}[1m])",
        2 * M,
    )
    .await
    .unwrap_err();
    assert!(e.to_string().contains("same labelset"), "{e}");
    // Keeping the name keeps them apart.
    check(
        "last_over_time({__name__=~\"http_requests_(total|copy)\", instance=\"a\"}[1m])",
        2 * M,
        &[
            ("__name__=http_requests_copy,instance=a,job=api", 1.0),
            (A, 120.0),
        ],
    )
    .await;
}

#[tokio::test]
async fn instant_functions() {
    let t = 2 * M;
    check(
        "abs(-http_requests_total{job=\"web\"})",
        t,
        &[("instance=c,job=web", 60.0)],
    )
    .await;
    check(
        "ceil(http_requests_total{job=\"web\"} / 7)",
        t,
        &[("instance=c,job=web", 9.0)],
    )
    .await;
    check(
        "floor(http_requests_total{job=\"web\"} / 7)",
        t,
        &[("instance=c,job=web", 8.0)],
    )
    .await;
    check(
        "round(http_requests_total{job=\"web\"} / 7)",
        t,
        &[("instance=c,job=web", 9.0)],
    )
    .await;
    check(
        "round(http_requests_total{job=\"web\"}, 25)",
        t,
        &[("instance=c,job=web", 50.0)],
    )
    .await;
    check(
        "clamp(http_requests_total, 100, 200)",
        t,
        &[
            ("instance=a,job=api", 120.0),
            ("instance=b,job=api", 200.0),
            ("instance=c,job=web", 100.0),
        ],
    )
    .await;
    check("clamp(http_requests_total, 200, 100)", t, &[]).await;
    check(
        "clamp_min(http_requests_total{job=\"web\"}, 100)",
        t,
        &[("instance=c,job=web", 100.0)],
    )
    .await;
    check(
        "clamp_max(http_requests_total{job=\"web\"}, 10)",
        t,
        &[("instance=c,job=web", 10.0)],
    )
    .await;
    check(
        "label_replace(temp, \"floor\", \"f-$1\", \"room\", \"(.*)\")",
        t,
        &[("__name__=temp,floor=f-x,room=x", 10.0)],
    )
    .await;
    check(
        "label_replace(temp, \"floor\", \"f-$1\", \"room\", \"nomatch\")",
        t,
        &[("__name__=temp,room=x", 10.0)],
    )
    .await;
    check(
        "label_join(http_requests_total{job=\"web\"}, \"id\", \"/\", \"job\", \"instance\")",
        t,
        &[(
            "__name__=http_requests_total,id=web/c,instance=c,job=web",
            60.0,
        )],
    )
    .await;
    assert_eq!(scalar_of("time()", 90_000).await, 90.0);
    check("vector(3)", t, &[("", 3.0)]).await;
    assert_eq!(scalar_of("scalar(temp)", t).await, 10.0);
    assert!(scalar_of("scalar(http_requests_total)", t).await.is_nan());
    check("absent(nope{job=\"x\", a=~\"y\"})", t, &[("job=x", 1.0)]).await;
    check("absent(temp)", t, &[]).await;
    check("timestamp(temp)", 2 * M + 5_000, &[("room=x", 120.0)]).await;
    check("histogram_quantile(0.5, lat_bucket)", 10 * M, &[("", 0.3)]).await;
    // Calendar functions, UTC: 1970-01-01 was a Thursday.
    check("hour(vector(18420))", t, &[("", 5.0)]).await;
    check("minute(vector(18420))", t, &[("", 7.0)]).await;
    check("day_of_week(vector(0))", t, &[("", 4.0)]).await;
    check("days_in_month(vector(2678401))", t, &[("", 28.0)]).await;
    check("month(vector(2678401))", t, &[("", 2.0)]).await;
    check("day_of_month(vector(2678401))", t, &[("", 1.0)]).await;
    check("day_of_year(vector(3456000))", t, &[("", 41.0)]).await;
    check("year(vector(0))", t, &[("", 1970.0)]).await;
    check("minute()", 61 * M, &[("", 1.0)]).await;
    check("deg(vector(pi()))", t, &[("", 180.0)]).await;
    check("rad(vector(180))", t, &[("", std::f64::consts::PI)]).await;
    // a: 1/s, value 120 at 2 min; in 60 s: 180.
    check(
        "predict_linear(http_requests_total{instance=\"a\"}[1m], 60)",
        t,
        &[("instance=a,job=api", 180.0)],
    )
    .await;
    match instant("sort_desc(http_requests_total)", t).await.unwrap() {
        QueryValue::Vector(v) => {
            let vals: Vec<f64> = v.iter().map(|s| s.v).collect();
            assert_eq!(vals, vec![240.0, 120.0, 60.0]);
        }
        other => panic!("{other:?}"),
    }
}

#[tokio::test]
async fn unsupported_function_is_named() {
    let e = instant("sort_by_label(temp, \"room\")", 0)
        .await
        .unwrap_err();
    assert!(matches!(e, QueryError::Unsupported(_)));
    assert!(e.to_string().contains("sort_by_label"), "{e}");
    let e = instant("sum(sort_by_label(temp, \"room\"))", 0)
        .await
        .unwrap_err();
    assert!(e.to_string().contains("sort_by_label"), "{e}");
    let e = instant("sum(", 0).await.unwrap_err();
    assert!(matches!(e, QueryError::BadData(_)));
}

#[tokio::test]
async fn subqueries() {
    let t = 2 * M;
    // Inner evaluated at 0, 30, 60, 90, 120 s (multiples of the step, window inclusive).
    check(
        "max_over_time(http_requests_total{instance=\"a\"}[2m:30s])",
        t,
        &[("instance=a,job=api", 120.0)],
    )
    .await;
    check(
        "count_over_time(http_requests_total{instance=\"a\"}[2m:30s])",
        t,
        &[("instance=a,job=api", 5.0)],
    )
    .await;
    check("sum_over_time(vector(1)[1m:15s])", t, &[("", 5.0)]).await;
    check(
        "rate(http_requests_total{instance=\"a\"}[1m:15s])",
        t,
        &[("instance=a,job=api", 1.0)],
    )
    .await;
    check(
        "max_over_time(http_requests_total{instance=\"a\"}[1m:30s] offset 1m)",
        3 * M,
        &[("instance=a,job=api", 120.0)],
    )
    .await;
    // Default step 1 min: 5m, 6m, ..., 10m.
    check("count_over_time(vector(1)[5m:])", 10 * M, &[("", 6.0)]).await;
    // Rates of b at 3, 4, 5, 6 min: 2, 2, 1.5 (the reset at 5 min hides 30), 2.
    check(
        "min_over_time(rate(http_requests_total{instance=\"b\"}[1m])[3m:1m])",
        6 * M,
        &[("instance=b,job=api", 1.5)],
    )
    .await;
    check(
        "max_over_time(rate(http_requests_total{instance=\"b\"}[1m])[3m:1m])",
        6 * M,
        &[("instance=b,job=api", 2.0)],
    )
    .await;
    match instant("http_requests_total{instance=\"a\"}[1m:30s]", t)
        .await
        .unwrap()
    {
        QueryValue::Matrix(m) => {
            assert_eq!(m.len(), 1);
            assert_eq!(
                m[0].points,
                vec![(60_000, 60.0), (90_000, 90.0), (120_000, 120.0)]
            );
        }
        other => panic!("{other:?}"),
    }
    // A range query over a subquery, steps not aligned with the subquery's.
    let QueryValue::Matrix(m) = engine()
        .range(
            "sum_over_time(vector(1)[1m:20s])",
            10_000,
            70_000,
            30_000,
            None,
        )
        .await
        .unwrap()
    else {
        panic!()
    };
    // Windows [-50,10], [-20,40], [10,70] s hold the 20 s multiples
    // {-40,-20,0}, {-20,0,20,40}, {20,40,60}.
    assert_eq!(
        m[0].points,
        vec![(10_000, 3.0), (40_000, 4.0), (70_000, 3.0)]
    );
}

#[tokio::test]
async fn range_query_and_result_types() {
    let e = engine();
    let QueryValue::Matrix(m) = e
        .range(
            "sum by (job) (rate(http_requests_total[1m]))",
            2 * M,
            4 * M,
            M,
            None,
        )
        .await
        .unwrap()
    else {
        panic!("matrix expected")
    };
    assert_eq!(m.len(), 2);
    assert_eq!(m[0].labels, vec![("job".to_string(), "api".to_string())]);
    assert_eq!(m[0].points, vec![(2 * M, 3.0), (3 * M, 3.0), (4 * M, 3.0)]);
    assert_eq!(m[1].points, vec![(2 * M, 0.5), (3 * M, 0.5), (4 * M, 0.5)]);
    // Scalars become a series without labels.
    let QueryValue::Matrix(m) = e.range("time()", 0, 30_000, 15_000, None).await.unwrap() else {
        panic!()
    };
    assert_eq!(m[0].points, vec![(0, 0.0), (15_000, 15.0), (30_000, 30.0)]);
    // Range queries refuse range vectors and strings.
    assert!(e.range("temp[1m]", 0, M, 15_000, None).await.is_err());
    assert!(e.range("temp", 0, M, 0, None).await.is_err());
    // @ start() / end() in a range query.
    let QueryValue::Matrix(m) = e
        .range(
            "http_requests_total{instance=\"a\"} @ end()",
            M,
            3 * M,
            M,
            None,
        )
        .await
        .unwrap()
    else {
        panic!()
    };
    assert_eq!(
        m[0].points,
        vec![(M, 180.0), (2 * M, 180.0), (3 * M, 180.0)]
    );
    let QueryValue::Matrix(m) = e
        .range(
            "http_requests_total{instance=\"a\"} @ start()",
            M,
            3 * M,
            M,
            None,
        )
        .await
        .unwrap()
    else {
        panic!()
    };
    assert_eq!(m[0].points[2], (3 * M, 60.0));
    // Instant query result types.
    assert!(
        matches!(instant("temp[1m]", 2 * M).await.unwrap(), QueryValue::Matrix(ref m) if m[0].points.len() == 5)
    );
    assert!(
        matches!(instant("\"hi\"", 0).await.unwrap(), QueryValue::String { ref v, .. } if v == "hi")
    );
}

#[tokio::test]
async fn limits() {
    let cfg = EngineConfig {
        max_samples: 100,
        ..EngineConfig::default()
    };
    let e = Engine::new(Arc::new(source()), cfg);
    let err = e
        .instant("sum_over_time(http_requests_total[10m])", 10 * M, None)
        .await
        .unwrap_err();
    assert!(
        matches!(err, QueryError::TooManySamples { limit: 100 }),
        "{err}"
    );
    // Subquery points count too: vector(1) loads nothing, 601 inner points.
    let err = e
        .instant("sum_over_time(vector(1)[10m:1s])", 10 * M, None)
        .await
        .unwrap_err();
    assert!(
        matches!(err, QueryError::TooManySamples { limit: 100 }),
        "{err}"
    );
    let cfg = EngineConfig {
        max_series: 2,
        ..EngineConfig::default()
    };
    let e = Engine::new(Arc::new(source()), cfg);
    let err = e
        .instant("http_requests_total", 10 * M, None)
        .await
        .unwrap_err();
    assert!(
        matches!(err, QueryError::TooManySeries { limit: 2 }),
        "{err}"
    );
    let err = engine()
        .instant("temp", 0, Some(Duration::ZERO))
        .await
        .unwrap_err();
    assert!(matches!(err, QueryError::Timeout { .. }), "{err}");
    let err = engine()
        .range("temp", 0, 20_000 * 1000, 1000, None)
        .await
        .unwrap_err();
    assert!(err.to_string().contains("maximum resolution"), "{err}");
}
