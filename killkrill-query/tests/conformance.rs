//! PromQL conformance against a real Prometheus.
//!
//! The same generated samples (counters with resets, gauges, a classic
//! histogram, series that stop, several label sets) are written as
//! OpenMetrics, turned into TSDB blocks with `promtool tsdb
//! create-blocks-from openmetrics`, served by a `prometheus` started on a
//! free 127.0.0.1 port, and loaded into a `MemorySource`. Every query in
//! `instant_queries` and `range_queries` then runs against both HTTP APIs
//! (the comparison fails when Prometheus and Killkrill differ: results must
//! have the same series, labels and timestamps and values within 1e-9
//! relative; errors must have the same `errorType`). Skipped (with the
//! reason printed) when `prometheus` or
//! `promtool` is not installed: `scripts/install-prometheus` installs them.
#![allow(clippy::unwrap_used, clippy::expect_used, clippy::print_stderr)]

use std::collections::BTreeMap;
use std::process::{Child, Command, Stdio};
use std::sync::Arc;
use std::time::{Duration, Instant};

use axum::body::Body;
use axum::http::Request;
use http_body_util::BodyExt;
use killkrill_query::{ApiState, EngineConfig, router};
use serde_json::Value;
use tokio::io::{AsyncReadExt, AsyncWriteExt};
use tower::ServiceExt;

#[path = "support/conformance_data.rs"]
mod data;

use data::Gen;

const MIN: i64 = 60_000;

/// Instant queries: (query, evaluation time offset from the data start).
fn instant_queries(g: &Gen) -> Vec<(String, i64)> {
    let t = 50 * MIN + 7_000;
    let mut q: Vec<(String, i64)> = [
        "kk_requests_total",
        "kk_requests_total{job=\"api\"}",
        "kk_requests_total{job!=\"api\"}",
        "kk_requests_total{job=~\"a.*|db\"}",
        "kk_requests_total{code!~\"5..\"}",
        "kk_requests_total offset 5m",
        "rate(kk_requests_total[5m])",
        "irate(kk_requests_total[5m])",
        "increase(kk_requests_total[10m])",
        "rate(kk_requests_total{instance=\"i1\"}[30m])",
        "delta(kk_temperature_celsius[10m])",
        "idelta(kk_temperature_celsius[5m])",
        "deriv(kk_temperature_celsius[10m])",
        "resets(kk_requests_total[30m])",
        "changes(kk_up[30m])",
        "avg_over_time(kk_temperature_celsius[10m])",
        "min_over_time(kk_temperature_celsius[10m])",
        "max_over_time(kk_temperature_celsius[10m])",
        "sum_over_time(kk_temperature_celsius[10m])",
        "count_over_time(kk_requests_total[7m])",
        "last_over_time(kk_temperature_celsius[10m])",
        "quantile_over_time(0.9, kk_temperature_celsius[15m])",
        "stddev_over_time(kk_temperature_celsius[10m])",
        "stdvar_over_time(kk_temperature_celsius[10m])",
        "present_over_time(kk_up[5m])",
        "sum(rate(kk_requests_total[5m]))",
        "sum by (job) (rate(kk_requests_total[5m]))",
        "sum without (instance) (rate(kk_requests_total[5m]))",
        "avg by (code) (kk_requests_total)",
        "min(kk_temperature_celsius)",
        "max by (job) (kk_requests_total)",
        "count by (job) (kk_requests_total)",
        "stddev(kk_temperature_celsius)",
        "stdvar by (job) (rate(kk_requests_total[5m]))",
        "topk(3, kk_requests_total)",
        "bottomk(2, rate(kk_requests_total[5m]))",
        "topk by (job) (1, kk_requests_total)",
        "quantile(0.75, kk_temperature_celsius)",
        "quantile by (job) (0.5, rate(kk_requests_total[5m]))",
        "count_values(\"v\", kk_up)",
        "count_values(\"t\", round(kk_temperature_celsius))",
        "group by (job) (kk_requests_total)",
        "histogram_quantile(0.9, sum by (le) (rate(kk_latency_seconds_bucket[5m])))",
        "histogram_quantile(0.5, rate(kk_latency_seconds_bucket[10m]))",
        "histogram_quantile(0.99, sum by (job, le) (increase(kk_latency_seconds_bucket[15m])))",
        "rate(kk_latency_seconds_sum[5m]) / rate(kk_latency_seconds_count[5m])",
        "kk_requests_total * 2 + 1",
        "rate(kk_requests_total[5m]) > 0.3",
        "0.3 < rate(kk_requests_total[5m])",
        "kk_temperature_celsius > bool 20",
        "kk_temperature_celsius % 7 - 2 ^ 2",
        "rate(kk_requests_total{code=\"500\"}[5m]) / ignoring(code) rate(kk_requests_total{code=\"200\"}[5m])",
        "rate(kk_requests_total[5m]) / on(job) group_left sum by (job) (rate(kk_requests_total[5m]))",
        "kk_up * on(job) group_left(version) kk_info",
        "kk_info * on(job) group_right(version) kk_up",
        "kk_requests_total and on(job, instance) (kk_up == 1)",
        "kk_requests_total unless on(job) kk_requests_total{job=\"api\"}",
        "kk_up or kk_temperature_celsius",
        "kk_up == bool on(job, instance) kk_up",
        "abs(delta(kk_temperature_celsius[10m]))",
        "ceil(kk_temperature_celsius)",
        "floor(kk_temperature_celsius)",
        "round(kk_temperature_celsius, 0.5)",
        "clamp(kk_temperature_celsius, 10, 20)",
        "clamp_min(kk_temperature_celsius, 15)",
        "clamp_max(kk_temperature_celsius, 15)",
        "label_replace(kk_up, \"host\", \"h-$1\", \"instance\", \"i(.*)\")",
        "label_join(kk_up, \"id\", \"-\", \"job\", \"instance\")",
        "time()",
        "vector(time())",
        "scalar(sum(kk_up))",
        "absent(kk_nonexistent{job=\"x\"})",
        "absent(kk_up)",
        "sort(kk_temperature_celsius)",
        "sort_desc(rate(kk_requests_total[5m]))",
        "timestamp(kk_temperature_celsius)",
        "-kk_temperature_celsius",
        "2 ^ 3 % 5",
        "kk_requests_total / on(job) kk_requests_total",
        "label_replace(kk_up, \"0bad\", \"x\", \"job\", \".*\")",
        "\"a string\"",
        "max_over_time(rate(kk_requests_total[5m])[30m:1m])",
        "predict_linear(kk_temperature_celsius[10m], 600)",
        "predict_linear(kk_requests_total{job=\"api\"}[15m], 3600)",
        "sin(kk_temperature_celsius) + cos(kk_temperature_celsius) - tan(kk_temperature_celsius / 100)",
        "asin(kk_temperature_celsius / 40) * acos(kk_temperature_celsius / 40) + atan(kk_temperature_celsius)",
        "sinh(kk_temperature_celsius / 10) - cosh(kk_temperature_celsius / 10) + tanh(kk_temperature_celsius)",
        "asinh(kk_temperature_celsius) + acosh(kk_temperature_celsius + 1) + atanh(kk_temperature_celsius / 50)",
        "deg(kk_temperature_celsius) + rad(kk_temperature_celsius)",
        "sqrt(kk_temperature_celsius) + exp(kk_temperature_celsius / 10) + ln(kk_temperature_celsius) + log2(kk_temperature_celsius) + log10(kk_temperature_celsius)",
        "sgn(delta(kk_temperature_celsius[5m]))",
        "pi()",
        "hour() + minute() + month() + year() + day_of_month() + day_of_week() + days_in_month()",
        "day_of_year(vector(1700000000))",
        "minute(timestamp(kk_temperature_celsius))",
        "day_of_week(kk_requests_total{instance=\"i0\"} * 100000)",
        "avg_over_time(kk_temperature_celsius[10m:])",
        "min_over_time(sum by (job) (rate(kk_requests_total[5m]))[20m:2m] offset 3m)",
        "kk_temperature_celsius[5m:1m]",
        "rate(kk_requests_total[10m:30s])",
        "quantile_over_time(0.5, deriv(kk_temperature_celsius[5m])[15m:45s])",
        "count_over_time(kk_flaky[3m:10s])",
        "rate(kk_sparse_total[1m])",
        "increase(kk_sparse_total[2m])",
        "delta(kk_sparse_total[3m])",
        "irate(kk_sparse_total[2m])",
        "max_over_time(kk_flaky[5m])",
        "min_over_time(kk_flaky[5m])",
        "avg_over_time(kk_flaky[5m])",
        "kk_flaky",
        "kk_flaky > 5",
        "sum(kk_flaky)",
        "changes(kk_flaky[10m])",
        "kk_temperature_celsius[1m]",
    ]
    .iter()
    .map(|s| (s.to_string(), t))
    .collect();
    let at = g.secs(20 * MIN);
    q.push((format!("kk_requests_total @ {at}"), t));
    q.push((format!("rate(kk_requests_total[5m] @ {at})"), t));
    q.push(("kk_requests_total offset -3m".to_string(), 40 * MIN));
    // After the data: within and beyond the 5-minute lookback, and the stopped series.
    q.push(("kk_up".to_string(), 61 * MIN));
    q.push(("kk_up".to_string(), 66 * MIN));
    q.push(("kk_up{instance=\"i1\"}".to_string(), 42 * MIN + 30_000));
    q.push((
        "absent(kk_up{job=\"web\",instance=\"i1\"})".to_string(),
        50 * MIN,
    ));
    // Exactly on a sample time (window edges inclusive or not).
    q.push(("kk_up".to_string(), 30 * MIN));
    q.push(("rate(kk_up[1m])".to_string(), 30 * MIN));
    q.push(("count_over_time(kk_info[1m])".to_string(), 30 * MIN));
    q
}

/// Range queries: (query, start offset, end offset, step ms).
fn range_queries() -> Vec<(&'static str, i64, i64, i64)> {
    let (s, e) = (5 * MIN, 60 * MIN);
    vec![
        ("kk_requests_total{job=\"api\"}", s, e, 60_000),
        ("sum by (job) (rate(kk_requests_total[5m]))", s, e, 60_000),
        ("rate(kk_requests_total{instance=\"i1\"}[5m])", s, e, 30_000),
        (
            "increase(kk_requests_total[2m])",
            3 * MIN + 17_000,
            e,
            47_000,
        ),
        ("irate(kk_requests_total{job=\"db\"}[1m])", s, e, 15_000),
        ("avg_over_time(kk_temperature_celsius[3m])", s, e, 60_000),
        ("deriv(kk_temperature_celsius[5m])", s, e, 120_000),
        (
            "histogram_quantile(0.95, sum by (le, job) (rate(kk_latency_seconds_bucket[5m])))",
            s,
            e,
            60_000,
        ),
        ("kk_up", s, 70 * MIN, 60_000),
        ("time()", s, e, 300_000),
        ("topk(2, kk_temperature_celsius)", s, e, 60_000),
        ("kk_requests_total @ end()", s, e, 300_000),
        ("rate(kk_requests_total[5m] @ start())", s, e, 300_000),
        ("kk_temperature_celsius > 20", s, e, 60_000),
        ("sum(kk_up) / count(kk_up)", s, 70 * MIN, 60_000),
        (
            "absent(kk_up{job=\"web\",instance=\"i1\"})",
            s,
            70 * MIN,
            60_000,
        ),
        (
            "max_over_time(kk_temperature_celsius[10m]) - min_over_time(kk_temperature_celsius[10m])",
            s,
            e,
            90_000,
        ),
        ("changes(kk_up[10m])", s, e, 60_000),
        (
            "predict_linear(kk_temperature_celsius[5m], 300)",
            s,
            e,
            60_000,
        ),
        ("hour(timestamp(kk_up))", s, e, 120_000),
        (
            "max_over_time(rate(kk_requests_total{job=\"api\"}[5m])[15m:1m])",
            s,
            e,
            60_000,
        ),
        (
            "avg_over_time(kk_temperature_celsius[5m:20s])",
            3 * MIN + 17_000,
            e,
            47_000,
        ),
        ("rate(kk_sparse_total[1m])", s, e, 20_000),
        ("increase(kk_sparse_total[45s])", s, e, 15_000),
        ("max_over_time(kk_flaky[1m])", s, e, 30_000),
        ("resets(kk_requests_total[15m])", s, e, 60_000),
        (
            "label_replace(rate(kk_requests_total{code=\"200\"}[5m]), \"x\", \"$1\", \"job\", \"(.)..\")",
            s,
            e,
            120_000,
        ),
    ]
}

struct Killed(Child);
impl Drop for Killed {
    fn drop(&mut self) {
        let _kill = self.0.kill();
        let _wait = self.0.wait();
    }
}

fn installed(bin: &str) -> bool {
    Command::new(bin)
        .arg("--version")
        .stdout(Stdio::null())
        .stderr(Stdio::null())
        .status()
        .is_ok_and(|s| s.success())
}

/// A tiny HTTP/1.0 GET (no chunking, connection closes at the end).
async fn http_get(port: u16, path_and_query: &str) -> (u16, String) {
    let mut s = tokio::net::TcpStream::connect(("127.0.0.1", port))
        .await
        .unwrap();
    let req = format!("GET {path_and_query} HTTP/1.0\r\nHost: 127.0.0.1\r\n\r\n");
    s.write_all(req.as_bytes()).await.unwrap();
    let mut buf = Vec::new();
    s.read_to_end(&mut buf).await.unwrap();
    let text = String::from_utf8(buf).unwrap();
    let (head, body) = text.split_once("\r\n\r\n").unwrap();
    let status: u16 = head.split(' ').nth(1).unwrap().parse().unwrap();
    (status, body.to_string())
}

async fn ours(app: &axum::Router, path_and_query: &str) -> (u16, String) {
    let resp = app
        .clone()
        .oneshot(Request::get(path_and_query).body(Body::empty()).unwrap())
        .await
        .unwrap();
    let status = resp.status().as_u16();
    let body = resp.into_body().collect().await.unwrap().to_bytes();
    (status, String::from_utf8(body.to_vec()).unwrap())
}

#[derive(Debug, PartialEq)]
enum Norm {
    Error(u16, String),
    Scalar(f64, f64),
    Str(f64, String),
    Series(String, BTreeMap<String, Vec<(f64, f64)>>),
}

fn num(v: &Value) -> f64 {
    match v {
        Value::String(s) => s.to_lowercase().parse().unwrap(),
        other => other.as_f64().unwrap(),
    }
}

fn normalize(status: u16, body: &str) -> Norm {
    let v: Value = serde_json::from_str(body).unwrap_or_else(|e| panic!("{e}: {body}"));
    if v["status"] != "success" {
        return Norm::Error(status, v["errorType"].as_str().unwrap_or("").to_string());
    }
    let data = &v["data"];
    let r = &data["result"];
    match data["resultType"].as_str().unwrap() {
        "scalar" => Norm::Scalar(num(&r[0]), num(&r[1])),
        "string" => Norm::Str(num(&r[0]), r[1].as_str().unwrap().to_string()),
        kind => {
            let mut m = BTreeMap::new();
            for s in r.as_array().unwrap() {
                let key = s["metric"].to_string();
                let pts: Vec<(f64, f64)> = if kind == "vector" {
                    vec![(num(&s["value"][0]), num(&s["value"][1]))]
                } else {
                    s["values"]
                        .as_array()
                        .unwrap()
                        .iter()
                        .map(|p| (num(&p[0]), num(&p[1])))
                        .collect()
                };
                assert!(m.insert(key, pts).is_none(), "duplicate series in {body}");
            }
            Norm::Series(kind.to_string(), m)
        }
    }
}

fn close(a: f64, b: f64) -> bool {
    if a.is_nan() || b.is_nan() {
        return a.is_nan() && b.is_nan();
    }
    if a == b {
        return true;
    }
    (a - b).abs() <= 1e-9 * a.abs().max(b.abs())
}

/// `None` when equal, else a description of the first difference.
fn diff(p: &Norm, k: &Norm) -> Option<String> {
    match (p, k) {
        (Norm::Scalar(t1, v1), Norm::Scalar(t2, v2)) if t1 == t2 && close(*v1, *v2) => None,
        (Norm::Series(a, x), Norm::Series(b, y)) if a == b => {
            let xs: Vec<&String> = x.keys().collect();
            let ys: Vec<&String> = y.keys().collect();
            if xs != ys {
                return Some(format!("series differ: prometheus {xs:?} killkrill {ys:?}"));
            }
            for (key, pp) in x {
                let kp = &y[key];
                if pp.len() != kp.len() {
                    return Some(format!("{key}: {} points vs {}", pp.len(), kp.len()));
                }
                for (a, b) in pp.iter().zip(kp) {
                    if a.0 != b.0 || !close(a.1, b.1) {
                        return Some(format!("{key}: prometheus {a:?} killkrill {b:?}"));
                    }
                }
            }
            None
        }
        _ if p == k => None,
        _ => Some(format!("prometheus {p:?} killkrill {k:?}")),
    }
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn conformance_with_real_prometheus() {
    if !installed("prometheus") || !installed("promtool") {
        eprintln!("SKIPPED: prometheus/promtool not installed (run scripts/install-prometheus)");
        return;
    }
    let now = jiff::Timestamp::now().as_millisecond();
    let base = (now - 3 * 3_600_000) / 60_000 * 60_000;
    let g = Gen::new(base);
    let dir = tempfile::tempdir().unwrap();
    let om = dir.path().join("data.om");
    std::fs::write(&om, g.openmetrics()).unwrap();
    let data = dir.path().join("tsdb");
    let out = Command::new("promtool")
        .args(["tsdb", "create-blocks-from", "openmetrics"])
        .arg(&om)
        .arg(&data)
        .output()
        .unwrap();
    assert!(
        out.status.success(),
        "promtool: {}",
        String::from_utf8_lossy(&out.stderr)
    );
    let cfg = dir.path().join("prometheus.yml");
    std::fs::write(&cfg, "global:\n  scrape_interval: 1h\n").unwrap();
    let port = std::net::TcpListener::bind("127.0.0.1:0")
        .unwrap()
        .local_addr()
        .unwrap()
        .port();
    let _prom = Killed(
        Command::new("prometheus")
            .arg(format!("--config.file={}", cfg.display()))
            .arg(format!("--storage.tsdb.path={}", data.display()))
            .arg(format!("--web.listen-address=127.0.0.1:{port}"))
            .arg("--storage.tsdb.retention.time=10y")
            .stdout(Stdio::null())
            .stderr(Stdio::null())
            .spawn()
            .unwrap(),
    );
    let started = Instant::now();
    loop {
        let ready = tokio::net::TcpStream::connect(("127.0.0.1", port))
            .await
            .is_ok()
            && http_get(port, "/-/ready").await.0 == 200;
        if ready {
            break;
        }
        assert!(
            started.elapsed() < Duration::from_secs(20),
            "prometheus did not become ready"
        );
        tokio::time::sleep(Duration::from_millis(100)).await;
    }
    let app = router(ApiState::new(Arc::new(g.memory()), EngineConfig::default()));

    let mut requests: Vec<(String, String)> = Vec::new();
    for (q, t) in instant_queries(&g) {
        let qs = form_urlencoded::Serializer::new(String::new())
            .append_pair("query", &q)
            .append_pair("time", &g.secs(t))
            .finish();
        requests.push((
            format!("instant {q} @{}m", t / 60_000),
            format!("/api/v1/query?{qs}"),
        ));
    }
    for (q, s, e, step) in range_queries() {
        let qs = form_urlencoded::Serializer::new(String::new())
            .append_pair("query", q)
            .append_pair("start", &g.secs(s))
            .append_pair("end", &g.secs(e))
            .append_pair("step", &format!("{}", step as f64 / 1000.0))
            .finish();
        requests.push((
            format!("range {q} step {}s", step / 1000),
            format!("/api/v1/query_range?{qs}"),
        ));
    }
    let mut failures = Vec::new();
    let mut non_empty = 0;
    for (name, path) in &requests {
        let (ps, pb) = http_get(port, path).await;
        let (ks, kb) = ours(&app, path).await;
        let (p, k) = (normalize(ps, &pb), normalize(ks, &kb));
        if matches!(&p, Norm::Series(_, m) if !m.is_empty()) {
            non_empty += 1;
        }
        if let Some(d) = diff(&p, &k) {
            failures.push(format!("{name}: {d}"));
        }
    }
    eprintln!(
        "conformance: {} queries ({} instant, {} range), {} with non-empty series results, {} differ",
        requests.len(),
        instant_queries(&g).len(),
        range_queries().len(),
        non_empty,
        failures.len()
    );
    for f in &failures {
        eprintln!("DIFF {f}");
    }
    assert!(requests.len() >= 60);
    assert!(
        non_empty >= 50,
        "too few queries returned data: {non_empty}"
    );
    assert!(
        failures.is_empty(),
        "{} queries differ from Prometheus",
        failures.len()
    );
}
