//! The exposition routes — pushgateway `PUT|POST /metrics/job/...` and
//! `POST /api/v1/import/prometheus` — over real HTTP on 127.0.0.1: the
//! grouping key is read from the raw path (an escaped `/` stays in its value,
//! empty segments, reserved and repeated names are refused, `@base64` values
//! decode) and bounded; the parse is charged to `http_ingest.max_output_bytes`
//! (grouping labels included) and stops past `queue.max_events`. Every
//! refusal is counted and nothing of a refused body is stored.
#![allow(clippy::unwrap_used)]

mod support;

use std::io::Write as _;
use std::sync::Arc;
use std::time::{Duration, Instant};

use killkrill_core::event::MetricSample;
use killkrill_svc::config::ServeConfig;
use killkrill_svc::serve::{ServeHandle, StartOptions};
use support::{Recording, config, http, metric_sum, scrape};

async fn start(cfg: ServeConfig) -> (ServeHandle, Arc<Recording>) {
    let sink = Arc::new(Recording::default());
    let h = support::start_with(
        cfg,
        StartOptions {
            metric_sink: Some(sink.clone()),
            ..StartOptions::default()
        },
    )
    .await
    .unwrap();
    (h, sink)
}

/// Waits (at most 10 s) until the sink holds `n` samples, and returns them.
async fn wait_samples(sink: &Recording, n: usize) -> Vec<MetricSample> {
    let deadline = Instant::now() + Duration::from_secs(10);
    loop {
        let v = sink.0.lock().unwrap().clone();
        if v.len() >= n {
            return v;
        }
        assert!(Instant::now() < deadline, "{n} samples never arrived");
        tokio::time::sleep(Duration::from_millis(25)).await;
    }
}

fn labels(s: &MetricSample) -> Vec<(String, String)> {
    s.labels
        .iter()
        .map(|l| (l.name.to_string(), l.value.to_string()))
        .collect()
}

fn pairs(p: &[(&str, &str)]) -> Vec<(String, String)> {
    p.iter()
        .map(|(n, v)| ((*n).to_owned(), (*v).to_owned()))
        .collect()
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn grouping_keys_are_split_before_decoding_and_checked() {
    let dir = tempfile::tempdir().unwrap();
    let (h, sink) = start(config(dir.path())).await;
    let addr = h.http.unwrap();

    // An escaped slash stays inside its value.
    let r = http(
        addr,
        "PUT",
        "/metrics/job/j/url/http%3A%2F%2Fx%2Fy",
        &[],
        b"a 1\n",
    )
    .await;
    assert_eq!(r.status, 200, "{}", r.text());
    let got = wait_samples(&sink, 1).await;
    assert_eq!(
        labels(&got[0]),
        pairs(&[("job", "j"), ("url", "http://x/y")])
    );

    // The Pushgateway's base64url form, for the job and for a label.
    let r = http(
        addr,
        "POST",
        "/metrics/job@base64/YS9i/path@base64/L3Zhci90bXA",
        &[],
        b"b 2\n",
    )
    .await;
    assert_eq!(r.status, 200, "{}", r.text());
    let got = wait_samples(&sink, 2).await;
    assert_eq!(got[1].name, "b");
    assert_eq!(
        labels(&got[1]),
        pairs(&[("job", "a/b"), ("path", "/var/tmp")])
    );

    let long = format!("/metrics/job/j/a/{}", "v".repeat(9000));
    let many: String = (0..32).map(|i| format!("/l{i}/v")).collect();
    let many = format!("/metrics/job/j{many}");
    let cases: Vec<(&str, &str)> = vec![
        ("/metrics/job/j/a//b//", "empty path segment 4"),
        (
            "/metrics/job/j/__name__/x",
            "\"__name__\": label names starting with __ are reserved",
        ),
        ("/metrics/job/j/a/1/a/2", "label a appears twice"),
        ("/metrics/job/j/job/k", "label job appears twice"),
        ("/metrics/job/j/instance", "\"instance\" has no value"),
        ("/metrics/job/j/a@base64/!!", "not base64url"),
        ("/metrics/job/j/a/%G1", "bad percent escape"),
        (&long, "value is 9000 bytes, more than the limit of 8192"),
        (&many, "33 labels, more than the limit of 32"),
    ];
    for (path, want) in &cases {
        let r = http(addr, "PUT", path, &[], b"a 1\n").await;
        assert_eq!(r.status, 400, "{path}: {}", r.text());
        let j = r.json();
        assert_eq!(j["error"], "invalid grouping key", "{path}: {j}");
        let detail = j["detail"].as_str().unwrap();
        assert!(detail.contains(want), "{path}: {detail}");
    }
    tokio::time::sleep(Duration::from_millis(300)).await;
    assert_eq!(
        sink.0.lock().unwrap().len(),
        2,
        "nothing refused was stored"
    );
    let m = scrape(addr).await;
    let rejected = metric_sum(
        &m,
        "killkrill_http_rejected_requests_total",
        &[("endpoint", "pushgateway"), ("status", "400")],
    );
    assert_eq!(rejected, cases.len() as f64, "{m}");
    h.shutdown().await;
}

fn gzip(raw: &[u8]) -> Vec<u8> {
    let mut e = flate2::write::GzEncoder::new(Vec::new(), flate2::Compression::best());
    e.write_all(raw).unwrap();
    e.finish().unwrap()
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn small_bodies_that_parse_into_huge_batches_are_refused() {
    let dir = tempfile::tempdir().unwrap();
    let (h, sink) = start(config(dir.path())).await;
    let addr = h.http.unwrap();
    let gz = [("Content-Encoding", "gzip")];

    // The reviewer's case: a gzip body of ~16 KB holding four million
    // samples, pushed with an 8 KiB grouping value (a 32 GB batch).
    let lines = b"a 1\n".repeat(4_000_000);
    let body = gzip(&lines);
    assert!(body.len() < 64 << 10, "{}", body.len());
    let path = format!("/metrics/job/j/big/{}", "v".repeat(8 << 10));
    let started = Instant::now();
    let r = http(addr, "PUT", &path, &gz, &body).await;
    assert_eq!(r.status, 413, "{}", r.text());
    let detail = r.json()["detail"].as_str().unwrap().to_owned();
    assert!(
        detail.contains("268435456 bytes of memory")
            && detail.contains("http_ingest.max_output_bytes"),
        "{detail}"
    );
    // Refused after ~30,000 samples, not after building all of them.
    assert!(
        started.elapsed() < Duration::from_secs(20),
        "{:?}",
        started.elapsed()
    );

    // Without a grouping key, the sample count stops it: four million
    // samples are more than one batch may hold (queue.max_events, 1,000,000).
    for (method, path) in [
        ("POST", "/api/v1/import/prometheus"),
        ("PUT", "/metrics/job/j"),
    ] {
        let r = http(addr, method, path, &gz, &body).await;
        assert_eq!(r.status, 413, "{path}: {}", r.text());
        let detail = r.json()["detail"].as_str().unwrap().to_owned();
        assert!(
            detail.contains("more than 1000000 samples") && detail.contains("queue.max_events"),
            "{path}: {detail}"
        );
    }
    // A sensible push still goes through.
    let r = http(
        addr,
        "PUT",
        "/metrics/job/j/instance/i",
        &[],
        b"ok 1\nok2 2\n",
    )
    .await;
    assert_eq!(r.status, 200, "{}", r.text());
    wait_samples(&sink, 2).await;
    tokio::time::sleep(Duration::from_millis(300)).await;
    assert_eq!(sink.0.lock().unwrap().len(), 2, "only the sensible samples");

    let m = scrape(addr).await;
    let rejected = |ep: &str| {
        metric_sum(
            &m,
            "killkrill_http_rejected_requests_total",
            &[("endpoint", ep), ("status", "413")],
        )
    };
    assert_eq!(rejected("pushgateway"), 2.0, "{m}");
    assert_eq!(rejected("prometheus_import"), 1.0, "{m}");
    h.shutdown().await;
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn the_operators_budget_and_event_limit_reach_the_parser() {
    let dir = tempfile::tempdir().unwrap();
    let mut cfg = config(dir.path());
    cfg.http_ingest.max_output_bytes = Some(64 << 10);
    cfg.queue.max_events = 500;
    cfg.syslog.batch_max_events = 500;
    let (h, sink) = start(cfg).await;
    let addr = h.http.unwrap();

    // 100 samples × a 1 KiB grouping value: over 100 KB of batch.
    let body = b"a 1\n".repeat(100);
    let path = format!("/metrics/job/j/v/{}", "v".repeat(1 << 10));
    let r = http(addr, "PUT", &path, &[], &body).await;
    assert_eq!(r.status, 413, "{}", r.text());
    assert!(r.text().contains("65536 bytes of memory"), "{}", r.text());
    // The same samples without the key fit (about 70 bytes each).
    let r = http(addr, "PUT", "/metrics/job/j", &[], &body).await;
    assert_eq!(r.status, 200, "{}", r.text());
    wait_samples(&sink, 100).await;
    // 501 samples are more than queue.max_events.
    let body = b"a 1\n".repeat(501);
    let r = http(addr, "POST", "/api/v1/import/prometheus", &[], &body).await;
    assert_eq!(r.status, 413, "{}", r.text());
    assert!(r.text().contains("more than 500 samples"), "{}", r.text());
    h.shutdown().await;
}
