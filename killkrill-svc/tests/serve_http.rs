//! `killkrill serve` over real HTTP on 127.0.0.1: every ingest format in,
//! read back from the SQLite store through core's query engine; refusals;
//! backpressure; shutdown and restart on the same data directory.
#![allow(clippy::unwrap_used)]

mod support;

use std::io::Write;

use killkrill_core::event::{FieldValue, Severity};
use killkrill_proto::{logproto, prometheus_v2 as v2};
use killkrill_svc::serve;
use prost::Message;
use support::{by_message, config, http, metric_sum, scrape, stored, wait_stored};

const CAPTURED: &str = concat!(
    env!("CARGO_MANIFEST_DIR"),
    "/../testdata/captured/prometheus-2.42.0+ds-remote-write-v1-series.snappy"
);

fn gzip(b: &[u8]) -> Vec<u8> {
    let mut e = flate2::write::GzEncoder::new(Vec::new(), flate2::Compression::default());
    e.write_all(b).unwrap();
    e.finish().unwrap()
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn every_log_format_is_stored_and_read_back() {
    let dir = tempfile::tempdir().unwrap();
    let h = support::start(config(dir.path())).await.unwrap();
    let addr = h.http.unwrap();

    // NDJSON.
    let ndjson = b"{\"ts\":\"2026-11-25T10:00:00Z\",\"level\":\"error\",\"msg\":\"nd one\",\"host\":\"web1\",\"user\":{\"id\":7}}\n{\"msg\":\"nd two\"}\n";
    let r = http(
        addr,
        "POST",
        "/api/v1/logs",
        &[("Content-Type", "application/x-ndjson")],
        ndjson,
    )
    .await;
    assert_eq!(
        (r.status, r.json()["accepted"].as_u64()),
        (200, Some(2)),
        "{}",
        r.text()
    );
    // A JSON array, gzip-compressed.
    let array =
        br#"[{"message":"gz one","service":"api"},{"message":"gz two","severity":"debug"}]"#;
    let r = http(
        addr,
        "POST",
        "/api/v1/logs",
        &[("Content-Encoding", "gzip")],
        &gzip(array),
    )
    .await;
    assert_eq!(r.status, 200, "{}", r.text());
    // One object, zstd-compressed.
    let obj = br#"{"msg":"zstd one","level":"warn"}"#;
    let z = zstd::encode_all(&obj[..], 3).unwrap();
    let r = http(
        addr,
        "POST",
        "/api/v1/logs",
        &[("Content-Encoding", "zstd")],
        &z,
    )
    .await;
    assert_eq!(r.status, 200, "{}", r.text());
    // Loki JSON.
    let loki = br#"{"streams":[{"stream":{"job":"api","level":"error"},"values":[["1764064800000000000","loki json line"]]}]}"#;
    let r = http(
        addr,
        "POST",
        "/loki/api/v1/push",
        &[("Content-Type", "application/json")],
        loki,
    )
    .await;
    assert_eq!(r.status, 204, "{}", r.text());
    // Loki protobuf + snappy.
    let req = logproto::PushRequest {
        streams: vec![logproto::StreamAdapter {
            labels: r#"{job="worker", host="h9"}"#.into(),
            entries: vec![logproto::EntryAdapter {
                timestamp: Some(prost_types::Timestamp {
                    seconds: 1_764_064_801,
                    nanos: 5,
                }),
                line: "loki pb line".into(),
                structured_metadata: vec![],
                parsed: vec![],
            }],
            hash: 0,
        }],
        format: String::new(),
    };
    let pb = snap::raw::Encoder::new()
        .compress_vec(&req.encode_to_vec())
        .unwrap();
    let r = http(
        addr,
        "POST",
        "/loki/api/v1/push",
        &[("Content-Type", "application/x-protobuf")],
        &pb,
    )
    .await;
    assert_eq!(r.status, 204, "{}", r.text());

    // A body over 64 KiB is parsed on the blocking pool: same result.
    let large: String = (0..2000)
        .map(|i| format!("{{\"msg\":\"large {i}\",\"pad\":\"{}\"}}\n", "p".repeat(40)))
        .collect();
    assert!(large.len() > 64 * 1024);
    let r = http(addr, "POST", "/api/v1/logs", &[], large.as_bytes()).await;
    assert_eq!(r.json()["accepted"].as_u64(), Some(2000), "{}", r.text());

    let records = wait_stored(&h.store, 2007).await;
    assert_eq!(records.len(), 2007);
    by_message(&records, "large 1999");
    let one = by_message(&records, "nd one");
    assert_eq!(one.severity, Some(Severity::Error));
    assert_eq!(one.host.as_deref(), Some("web1"));
    assert_eq!(one.timestamp.to_rfc3339(), "2026-11-25T10:00:00.000000000Z");
    assert_eq!(one.attribute("user.id"), Some(&FieldValue::Int(7)));
    assert_eq!(one.source.as_deref(), Some("http"));
    assert!(one.id.is_some());
    assert_eq!(by_message(&records, "gz one").app.as_deref(), Some("api"));
    assert_eq!(
        by_message(&records, "gz two").severity,
        Some(Severity::Debug)
    );
    assert_eq!(
        by_message(&records, "zstd one").severity,
        Some(Severity::Warning)
    );
    let lj = by_message(&records, "loki json line");
    assert_eq!(lj.source.as_deref(), Some("loki"));
    assert_eq!(lj.severity, Some(Severity::Error));
    assert_eq!(lj.timestamp.as_nanos(), 1_764_064_800_000_000_000);
    let lp = by_message(&records, "loki pb line");
    assert_eq!(lp.host.as_deref(), Some("h9"));
    assert_eq!(lp.timestamp.as_nanos(), 1_764_064_801_000_000_005);

    let m = scrape(addr).await;
    assert!(
        metric_sum(
            &m,
            "killkrill_http_accepted_requests_total",
            &[("endpoint", "logs")]
        ) >= 3.0,
        "{m}"
    );
    assert!(
        metric_sum(&m, "killkrill_pipeline_acknowledged_events_total", &[]) >= 2007.0,
        "{m}"
    );
    // A light load: every group was closed by its linger, none by a bound.
    let groups = |by| metric_sum(&m, "killkrill_pipeline_groups_total", &[("closed_by", by)]);
    assert!(groups("linger") >= 1.0, "{m}");
    for bound in ["events", "logs", "bytes", "batches"] {
        assert_eq!(groups(bound), 0.0, "{m}");
    }
    let report = h.shutdown().await;
    assert_eq!(report.left_in_queue, 0);
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn metric_ingest_is_parsed_enqueued_and_stored() {
    let dir = tempfile::tempdir().unwrap();
    let h = support::start(config(dir.path())).await.unwrap();
    let addr = h.http.unwrap();

    // Remote write 1.0: the body Prometheus 2.42 sent.
    let captured = std::fs::read(CAPTURED).unwrap();
    let expected_v1 = killkrill_core::remote_write::decode(
        &captured,
        killkrill_core::remote_write::RemoteWriteVersion::V1,
        &Default::default(),
    )
    .unwrap()
    .samples
    .len() as u64;
    let r = http(
        addr,
        "POST",
        "/api/v1/write",
        &[
            ("Content-Type", "application/x-protobuf"),
            ("Content-Encoding", "snappy"),
            ("X-Prometheus-Remote-Write-Version", "0.1.0"),
        ],
        &captured,
    )
    .await;
    assert_eq!(r.status, 204, "{}", r.text());
    assert_eq!(r.header("X-Prometheus-Remote-Write-Samples-Written"), None);

    // Remote write 2.0: two samples and the written-count headers.
    let req = v2::Request {
        symbols: ["", "__name__", "jobs_total", "job", "x"]
            .map(String::from)
            .to_vec(),
        timeseries: vec![v2::TimeSeries {
            labels_refs: vec![1, 2, 3, 4],
            samples: vec![
                v2::Sample {
                    value: 1.0,
                    timestamp: 1000,
                    start_timestamp: 0,
                },
                v2::Sample {
                    value: 2.0,
                    timestamp: 2000,
                    start_timestamp: 0,
                },
            ],
            ..Default::default()
        }],
    };
    let body = snap::raw::Encoder::new()
        .compress_vec(&req.encode_to_vec())
        .unwrap();
    let ct = "application/x-protobuf;proto=io.prometheus.write.v2.Request";
    let r = http(
        addr,
        "POST",
        "/api/v1/write",
        &[("Content-Type", ct), ("Content-Encoding", "snappy")],
        &body,
    )
    .await;
    assert_eq!(r.status, 204, "{}", r.text());
    assert_eq!(
        r.header("X-Prometheus-Remote-Write-Samples-Written"),
        Some("2")
    );
    assert_eq!(
        r.header("X-Prometheus-Remote-Write-Histograms-Written"),
        Some("0")
    );
    assert_eq!(
        r.header("X-Prometheus-Remote-Write-Exemplars-Written"),
        Some("0")
    );

    // Exposition text import (gzip) and a pushgateway push.
    let text = b"# TYPE http_requests_total counter\nhttp_requests_total{code=\"200\"} 10\nhttp_requests_total{code=\"500\"} 1\n";
    let r = http(
        addr,
        "POST",
        "/api/v1/import/prometheus",
        &[("Content-Encoding", "gzip")],
        &gzip(text),
    )
    .await;
    assert_eq!(
        (r.status, r.json()["accepted"].as_u64()),
        (200, Some(2)),
        "{}",
        r.text()
    );
    let push =
        b"# TYPE backup_last_success_seconds gauge\nbackup_last_success_seconds 1764064800\n";
    let r = http(addr, "PUT", "/metrics/job/backup/instance/db1", &[], push).await;
    assert_eq!(
        (r.status, r.json()["accepted"].as_u64()),
        (200, Some(1)),
        "{}",
        r.text()
    );

    // Every sample is stored (distinct series and timestamps: the captured
    // body has no duplicates) and the families' metadata with them.
    let want = expected_v1 + 2 + 2 + 1;
    let tenant = killkrill_core::event::Tenant::new("default").unwrap();
    let stored = || async {
        use killkrill_core::storage::{MetricStore, TimeRange};
        h.store
            .select_samples(&tenant, &[], TimeRange::ALL)
            .await
            .unwrap()
            .iter()
            .map(|s| s.points.len() as u64)
            .sum::<u64>()
    };
    let start = std::time::Instant::now();
    while stored().await < want && start.elapsed() < std::time::Duration::from_secs(10) {
        tokio::time::sleep(std::time::Duration::from_millis(20)).await;
    }
    assert_eq!(stored().await, want);
    let meta = killkrill_core::storage::MetricStore::select_metadata(&h.store, &tenant, None)
        .await
        .unwrap();
    assert!(
        meta.iter()
            .any(|m| m.family == "http_requests" || m.family == "http_requests_total"),
        "{meta:?}"
    );
    assert!(
        meta.iter()
            .any(|m| m.family == "backup_last_success_seconds"),
        "{meta:?}"
    );
    let m = scrape(addr).await;
    assert!(
        metric_sum(&m, "killkrill_store_metric_samples_total", &[]) >= want as f64,
        "{m}"
    );
    h.shutdown().await;
}

/// Method, path, headers, body, expected status, text the error must contain.
type BadCase<'a> = (
    &'a str,
    &'a str,
    &'a [(&'a str, &'a str)],
    &'a [u8],
    u16,
    &'a str,
);

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn bad_input_is_a_4xx_json_naming_where_and_is_counted() {
    let dir = tempfile::tempdir().unwrap();
    let mut cfg = config(dir.path());
    cfg.http_ingest.max_body_bytes = 1024;
    let h = support::start(cfg).await.unwrap();
    let addr = h.http.unwrap();
    let rw1 = [
        ("Content-Type", "application/x-protobuf"),
        ("Content-Encoding", "snappy"),
    ];
    let big = vec![b' '; 4096];
    let bomb = gzip(&vec![b'{'; 100_000]);
    let cases: &[BadCase<'_>] = &[
        (
            "POST",
            "/api/v1/logs",
            &[],
            b"{\"msg\":\"ok\"}\n{\"msg\": nope}\n",
            400,
            "line 2, column",
        ),
        (
            "POST",
            "/api/v1/logs",
            &[],
            b"[{\"msg\":1}, 7]",
            400,
            "index 1",
        ),
        ("POST", "/api/v1/logs", &[], &big, 413, ""),
        (
            "POST",
            "/api/v1/logs",
            &[("Content-Encoding", "gzip")],
            &bomb,
            413,
            "",
        ),
        (
            "POST",
            "/api/v1/logs",
            &[("Content-Encoding", "br")],
            b"x",
            415,
            "",
        ),
        (
            "POST",
            "/api/v1/logs",
            &[("Content-Encoding", "gzip")],
            b"not gzip",
            400,
            "",
        ),
        (
            "POST",
            "/loki/api/v1/push",
            &[("Content-Type", "text/plain")],
            b"x",
            415,
            "text/plain",
        ),
        (
            "POST",
            "/loki/api/v1/push",
            &[("Content-Type", "application/json")],
            br#"{"streams":[{"stream":{},"values":[["x","l"]]}]}"#,
            400,
            "streams[0]",
        ),
        (
            "POST",
            "/api/v1/write",
            &[("Content-Type", "application/x-protobuf;proto=nope")],
            b"x",
            415,
            "nope",
        ),
        ("POST", "/api/v1/write", &rw1, b"not snappy", 400, "snappy"),
        (
            "POST",
            "/api/v1/write",
            &[
                ("Content-Type", "application/x-protobuf"),
                ("Content-Encoding", "gzip"),
            ],
            b"x",
            415,
            "snappy",
        ),
        (
            "POST",
            "/api/v1/import/prometheus",
            &[],
            b"ok 1\nbad{ 2\n",
            400,
            "line 2",
        ),
        (
            "PUT",
            "/metrics/job/j/instance",
            &[],
            b"x 1\n",
            400,
            "instance",
        ),
        (
            "PUT",
            "/metrics/job/j/instance/a",
            &[],
            b"x{instance=\"b\"} 1\n",
            400,
            "grouping key",
        ),
        (
            "PUT",
            "/metrics/job/j",
            &[(
                "Content-Type",
                "application/vnd.google.protobuf; proto=io.prometheus.client.MetricFamily; encoding=delimited",
            )],
            b"\x05",
            415,
            "text format",
        ),
        ("GET", "/nope", &[], b"", 404, ""),
    ];
    for (method, path, headers, body, status, detail) in cases {
        let r = http(addr, method, path, headers, body).await;
        assert_eq!(r.status, *status, "{method} {path}: {}", r.text());
        let j = r.json();
        assert!(j["error"].is_string(), "{j}");
        let text = format!("{} {}", j["error"], j["detail"]);
        assert!(
            text.contains(detail),
            "{method} {path}: {text} should contain {detail:?}"
        );
    }
    // Nothing of a refused body is stored ("ok" was on line 1 of a bad body).
    tokio::time::sleep(std::time::Duration::from_millis(300)).await;
    assert!(stored(&h.store).await.is_empty());
    let m = scrape(addr).await;
    assert_eq!(
        metric_sum(
            &m,
            "killkrill_http_rejected_requests_total",
            &[("endpoint", "logs"), ("status", "400")]
        ),
        3.0,
        "{m}"
    );
    assert_eq!(
        metric_sum(
            &m,
            "killkrill_http_rejected_requests_total",
            &[("endpoint", "logs"), ("status", "413")]
        ),
        2.0,
        "{m}"
    );
    assert_eq!(
        metric_sum(
            &m,
            "killkrill_http_rejected_requests_total",
            &[("endpoint", "logs"), ("status", "415")]
        ),
        1.0,
        "{m}"
    );
    assert!(
        metric_sum(
            &m,
            "killkrill_http_rejected_requests_total",
            &[("endpoint", "remote_write")]
        ) >= 3.0,
        "{m}"
    );
    assert!(
        metric_sum(&m, "killkrill_parse_errors_total", &[("format", "json")]) >= 2.0,
        "{m}"
    );
    h.shutdown().await;
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn a_full_queue_answers_429_with_retry_after() {
    let dir = tempfile::tempdir().unwrap();
    let mut cfg = config(dir.path());
    cfg.workers.count = 0; // nothing drains the queue
    cfg.queue.max_events = 5;
    cfg.http_ingest.enqueue_wait_ms = 50;
    cfg.workers.drain_timeout_secs = 1;
    let h = support::start(cfg).await.unwrap();
    let addr = h.http.unwrap();
    let three = b"{\"msg\":\"a\"}\n{\"msg\":\"b\"}\n{\"msg\":\"c\"}\n";
    let r = http(addr, "POST", "/api/v1/logs", &[], three).await;
    assert_eq!(r.status, 200);
    let r = http(addr, "POST", "/api/v1/logs", &[], three).await;
    assert_eq!(r.status, 429, "{}", r.text());
    assert_eq!(r.header("Retry-After"), Some("1"));
    assert_eq!(r.json()["error"], "queue full, retry later");
    let six = [&three[..], &three[..]].concat();
    let r = http(addr, "POST", "/api/v1/logs", &[], &six).await;
    assert_eq!(
        r.status,
        413,
        "a batch larger than the whole queue: {}",
        r.text()
    );
    let m = scrape(addr).await;
    assert_eq!(
        metric_sum(
            &m,
            "killkrill_queue_enqueue_rejected_total",
            &[("reason", "full")]
        ),
        1.0,
        "{m}"
    );
    let q = h.queue.stats().await.unwrap();
    assert_eq!(q.events, Some(3));
    let r = http(addr, "GET", "/readyz", &[], b"").await;
    assert_eq!(
        (r.status, r.json()["queue"]["events"].as_u64()),
        (200, Some(3))
    );
    let report = h.shutdown().await;
    assert_eq!(
        report.left_in_queue, 1,
        "no worker: the batch stays queued and is reported"
    );
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn shutdown_drains_what_was_acknowledged_and_restart_keeps_it() {
    let dir = tempfile::tempdir().unwrap();
    let h = support::start(config(dir.path())).await.unwrap();
    let addr = h.http.unwrap();
    assert_eq!(http(addr, "GET", "/healthz", &[], b"").await.status, 200);
    assert_eq!(http(addr, "GET", "/readyz", &[], b"").await.status, 200);
    let mut sent = 0;
    for i in 0..40 {
        let body: String = (0..25)
            .map(|j| format!("{{\"msg\":\"r{i}-{j}\"}}\n"))
            .collect();
        let r = http(addr, "POST", "/api/v1/logs", &[], body.as_bytes()).await;
        assert_eq!(r.status, 200);
        sent += 25;
    }
    // Shut down at once: what was acknowledged is still queued or in flight.
    let report = h.shutdown().await;
    assert_eq!(report.left_in_queue, 0);
    assert_eq!(report.nacked, 0);

    let h = support::start(config(dir.path())).await.unwrap();
    let records = stored(&h.store).await;
    assert_eq!(records.len(), sent);
    let mut msgs: Vec<String> = records
        .iter()
        .map(|r| r.message_str().unwrap().into_owned())
        .collect();
    msgs.sort();
    msgs.dedup();
    assert_eq!(msgs.len(), sent, "no duplicates");
    // And the restarted server takes more.
    let r = http(
        h.http.unwrap(),
        "POST",
        "/api/v1/logs",
        &[],
        b"{\"msg\":\"after restart\"}",
    )
    .await;
    assert_eq!(r.status, 200);
    let records = wait_stored(&h.store, sent + 1).await;
    by_message(&records, "after restart");
    h.shutdown().await;
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn small_batches_are_compacted_in_the_background() {
    use killkrill_core::event::Tenant;
    use killkrill_core::logquery::{LogFilter, LogQuery, Order, query_logs};
    use killkrill_core::storage::TimeRange;
    let dir = tempfile::tempdir().unwrap();
    let mut cfg = config(dir.path());
    cfg.maintenance.interval_secs = 1;
    let h = support::start(cfg).await.unwrap();
    let addr = h.http.unwrap();
    for i in 0..12 {
        let r = http(
            addr,
            "POST",
            "/api/v1/logs",
            &[],
            format!("{{\"msg\":\"small {i}\"}}").as_bytes(),
        )
        .await;
        assert_eq!(r.status, 200);
    }
    wait_stored(&h.store, 12).await;
    let q = LogQuery {
        tenant: Tenant::default(),
        range: TimeRange::ALL,
        filter: LogFilter::default(),
        order: Order::OldestFirst,
        limit: 100,
        cursor: None,
    };
    let start = std::time::Instant::now();
    loop {
        let page = query_logs(&h.store, &q).await.unwrap();
        assert_eq!(
            page.records.len(),
            12,
            "nothing lost or doubled while compacting"
        );
        if page.blocks_decoded == 1 {
            break;
        }
        assert!(
            start.elapsed() < std::time::Duration::from_secs(10),
            "still {} blocks",
            page.blocks_decoded
        );
        tokio::time::sleep(std::time::Duration::from_millis(100)).await;
    }
    let m = scrape(addr).await;
    assert!(
        metric_sum(&m, "killkrill_compaction_merges_total", &[]) >= 1.0,
        "{m}"
    );
    h.shutdown().await;
}

/// Records what the workers hand to the metric seam.
#[derive(Default)]
struct RecordingMetricSink(std::sync::Mutex<Vec<killkrill_core::event::MetricSample>>);

#[async_trait::async_trait]
impl serve::sinks::MetricSink for RecordingMetricSink {
    fn name(&self) -> &str {
        "recording"
    }

    async fn write_metrics(
        &self,
        batches: &[std::sync::Arc<killkrill_core::pipeline::Batch>],
    ) -> Result<(), killkrill_core::pipeline::SinkError> {
        let mut v = self.0.lock().unwrap();
        for b in batches {
            v.extend(b.metrics.iter().cloned());
        }
        Ok(())
    }
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn the_queue_and_the_metric_sink_plug_in() {
    use killkrill_core::pipeline::{MemoryQueue, MemoryQueueConfig, Queue};
    use std::sync::Arc;
    let dir = tempfile::tempdir().unwrap();
    let queue = Arc::new(MemoryQueue::new(MemoryQueueConfig::default()));
    let sink = Arc::new(RecordingMetricSink::default());
    let h = support::start_with(
        config(dir.path()),
        serve::StartOptions {
            store: None,
            metric_sink: Some(sink.clone()),
            queue: Some(queue.clone()),
            ..Default::default()
        },
    )
    .await
    .unwrap();
    let push = b"# TYPE temp_celsius gauge\ntemp_celsius{room=\"a\"} 21.5 1764064800000\n";
    let r = http(
        h.http.unwrap(),
        "POST",
        "/metrics/job/sensors/site/x",
        &[],
        push,
    )
    .await;
    assert_eq!(r.status, 200, "{}", r.text());
    let start = std::time::Instant::now();
    while sink.0.lock().unwrap().is_empty() && start.elapsed() < std::time::Duration::from_secs(10)
    {
        tokio::time::sleep(std::time::Duration::from_millis(20)).await;
    }
    let got = sink.0.lock().unwrap().clone();
    assert_eq!(got.len(), 1);
    let s = &got[0];
    assert_eq!((s.name.as_str(), s.value), ("temp_celsius", 21.5));
    assert_eq!(s.tenant.as_ref().map(|t| t.as_str()), Some("default"));
    assert_eq!(
        (
            s.labels.get("room"),
            s.labels.get("job"),
            s.labels.get("site")
        ),
        (Some("a"), Some("sensors"), Some("x"))
    );
    assert_eq!(
        s.timestamp.map(|t| t.as_nanos()),
        Some(1_764_064_800_000_000_000)
    );
    let q = queue.stats().await.unwrap();
    assert_eq!(
        (q.batches, q.in_flight),
        (0, 0),
        "the batch went through the queue passed in and was acknowledged"
    );
    h.shutdown().await;
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn transforms_from_the_config_file_run_in_the_workers() {
    use killkrill_svc::config::{Layers, ServeConfig};
    let dir = tempfile::tempdir().unwrap();
    let file = dir.path().join("killkrill.toml");
    std::fs::write(
        &file,
        r#"
[[transforms]]
type = "filter"
action = "drop"
regex = "^health"

[[transforms]]
type = "enrich"
fields = { "attributes.env" = "test" }
"#,
    )
    .unwrap();
    let loaded = ServeConfig::load(&Layers {
        file: Some(file),
        ..Layers::default()
    })
    .unwrap();
    assert_eq!(loaded.transforms.len(), 2);
    let mut cfg = config(&dir.path().join("data"));
    cfg.transforms = loaded.transforms;
    let h = support::start(cfg).await.unwrap();
    let body = b"{\"msg\":\"health check ok\"}\n{\"msg\":\"real work\"}\n";
    let r = http(h.http.unwrap(), "POST", "/api/v1/logs", &[], body).await;
    assert_eq!(r.json()["accepted"].as_u64(), Some(2), "both were received");
    let records = wait_stored(&h.store, 1).await;
    tokio::time::sleep(std::time::Duration::from_millis(200)).await;
    let records = if records.len() == 1 {
        stored(&h.store).await
    } else {
        records
    };
    assert_eq!(records.len(), 1, "{records:?}");
    let r = by_message(&records, "real work");
    assert_eq!(r.attribute("env"), Some(&FieldValue::Str("test".into())));
    let m = scrape(h.http.unwrap()).await;
    assert_eq!(
        metric_sum(
            &m,
            "killkrill_dropped_events_total",
            &[("stage", "transform"), ("reason", "filtered")]
        ),
        1.0,
        "{m}"
    );
    h.shutdown().await;
}
