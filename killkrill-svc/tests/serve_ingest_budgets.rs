//! Small requests that would decode into huge ones, sent to `killkrill serve`
//! over real HTTP on 127.0.0.1: remote write 1.0 and 2.0 and Loki (protobuf and
//! JSON) bodies of a few hundred KB whose labels fan out into gigabytes or
//! terabytes are refused (400 for an over-long label, 413 for the decoded-output
//! budget, each naming the limit), counted, and nothing of them is stored. The
//! operator's `http_ingest.max_body_bytes` and `max_output_bytes` reach the
//! decoders. These tests finish only because the budget is charged before any
//! copy is made; they would run the machine out of memory otherwise.
#![allow(clippy::unwrap_used)]

mod support;

use std::sync::Arc;

use killkrill_proto::{logproto, prometheus as v1, prometheus_v2 as v2};
use killkrill_svc::config::ServeConfig;
use killkrill_svc::serve::{ServeHandle, StartOptions};
use prost::Message;
use support::{Recording, config, http, metric_sum, scrape, stored};

const RW1: [(&str, &str); 2] = [
    ("Content-Type", "application/x-protobuf"),
    ("Content-Encoding", "snappy"),
];
const RW2: [(&str, &str); 2] = [
    (
        "Content-Type",
        "application/x-protobuf;proto=io.prometheus.write.v2.Request",
    ),
    ("Content-Encoding", "snappy"),
];
const LOKI_PB: [(&str, &str); 1] = [("Content-Type", "application/x-protobuf")];
const LOKI_JSON: [(&str, &str); 1] = [("Content-Type", "application/json")];

const T0: i64 = 1_764_000_000_000;

/// (path, headers, body, status, what the answer must say)
type Case<'a> = (&'a str, &'a [(&'a str, &'a str)], Vec<u8>, u16, &'a str);

fn snappy(raw: &[u8]) -> Vec<u8> {
    snap::raw::Encoder::new().compress_vec(raw).unwrap()
}

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

/// Waits (at most 10 s) until the sink holds `n` samples.
async fn wait_samples(sink: &Recording, n: usize) {
    let deadline = std::time::Instant::now() + std::time::Duration::from_secs(10);
    while sink.0.lock().unwrap().len() < n {
        assert!(
            std::time::Instant::now() < deadline,
            "{n} samples never arrived"
        );
        tokio::time::sleep(std::time::Duration::from_millis(25)).await;
    }
}

/// Remote write 1.0: one series `x{big="<value_len bytes>"}` with `samples`
/// samples; with `ts0` 0 they are empty (2 bytes each on the wire), else at
/// `ts0`, `ts0 + 1`, ... ms.
fn rw1_fan_out(value_len: usize, samples: usize) -> Vec<u8> {
    rw1_at(value_len, samples, 0)
}

fn rw1_at(value_len: usize, samples: usize, ts0: i64) -> Vec<u8> {
    let l = |n: &str, v: &str| v1::Label {
        name: n.into(),
        value: v.into(),
    };
    snappy(
        &v1::WriteRequest {
            timeseries: vec![v1::TimeSeries {
                labels: vec![l("__name__", "x"), l("big", &"v".repeat(value_len))],
                samples: (0..samples as i64)
                    .map(|i| v1::Sample {
                        value: 0.0,
                        timestamp: if ts0 == 0 { 0 } else { ts0 + i },
                    })
                    .collect(),
                ..Default::default()
            }],
            metadata: vec![],
        }
        .encode_to_vec(),
    )
}

/// Remote write 2.0: `series` series each referring to one `value_len`-byte
/// symbol as `big`, with `samples` samples each.
fn rw2_shared_symbol(value_len: usize, series: usize, samples: usize) -> Vec<u8> {
    let mut symbols: Vec<String> = ["", "__name__", "x", "big"].map(String::from).to_vec();
    symbols.push("s".repeat(value_len));
    let ts = v2::TimeSeries {
        labels_refs: vec![1, 2, 3, 4],
        samples: (0..samples as i64)
            .map(|i| v2::Sample {
                value: 1.0,
                timestamp: T0 + i,
                start_timestamp: 0,
            })
            .collect(),
        ..Default::default()
    };
    snappy(
        &v2::Request {
            symbols,
            timeseries: vec![ts; series],
        }
        .encode_to_vec(),
    )
}

fn loki_pb_fan_out(value_len: usize, entries: usize) -> Vec<u8> {
    let e = logproto::EntryAdapter {
        timestamp: Some(prost_types::Timestamp {
            seconds: 1_764_000_000,
            nanos: 0,
        }),
        ..Default::default()
    };
    snappy(
        &logproto::PushRequest {
            streams: vec![logproto::StreamAdapter {
                labels: format!("{{big=\"{}\"}}", "v".repeat(value_len)),
                entries: vec![e; entries],
                hash: 0,
            }],
            format: String::new(),
        }
        .encode_to_vec(),
    )
}

fn loki_json_fan_out(value_len: usize, entries: usize) -> Vec<u8> {
    let values = vec![r#"["1764000000000000000",""]"#; entries].join(",");
    format!(
        r#"{{"streams":[{{"stream":{{"big":"{}"}},"values":[{values}]}}]}}"#,
        "v".repeat(value_len)
    )
    .into_bytes()
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn fan_out_bodies_are_refused_counted_and_not_stored() {
    let dir = tempfile::tempdir().unwrap();
    let (h, sink) = start(config(dir.path())).await;
    let addr = h.http.unwrap();
    let budget = "268435456 bytes of memory"; // 16 × the 16 MiB body limit

    // (path, headers, body, status, what the answer must say)
    let cases: Vec<Case> = vec![
        // The reviewer's example: 1 MiB label × a million samples, ~150 KB.
        (
            "/api/v1/write",
            &RW1,
            rw1_fan_out(1 << 20, 1_000_000),
            400,
            "series 0: label \"big\": value is 1048576 bytes, more than the limit of 8192",
        ),
        // At the label limit, a million samples are still ~8 GB.
        (
            "/api/v1/write",
            &RW1,
            rw1_fan_out(8 << 10, 1_000_000),
            413,
            budget,
        ),
        // One 8 KiB symbol referenced by 100,000 series: ~800 MB.
        (
            "/api/v1/write",
            &RW2,
            rw2_shared_symbol(8 << 10, 100_000, 0),
            413,
            budget,
        ),
        (
            "/loki/api/v1/push",
            &LOKI_PB,
            loki_pb_fan_out(1 << 20, 1000),
            400,
            "stream 0: label \"big\": value is 1048576 bytes, more than the limit of 8192",
        ),
        (
            "/loki/api/v1/push",
            &LOKI_PB,
            loki_pb_fan_out(8 << 10, 1_000_000),
            413,
            budget,
        ),
        (
            "/loki/api/v1/push",
            &LOKI_JSON,
            loki_json_fan_out(8 << 10, 100_000),
            413,
            budget,
        ),
    ];
    for (i, (path, headers, body, status, want)) in cases.iter().enumerate() {
        assert!(body.len() < 4 << 20, "case {i}: {} bytes", body.len());
        let r = http(addr, "POST", path, headers, body).await;
        assert_eq!(r.status, *status, "case {i} {path}: {}", r.text());
        let j = r.json();
        let detail = j["detail"].as_str().unwrap();
        assert!(detail.contains(want), "case {i} {path}: {detail}");
        if *status == 413 {
            assert_eq!(j["error"], "request body too large", "{j}");
            assert!(detail.contains("http_ingest.max_output_bytes"), "{detail}");
        }
    }
    // The server is fine, and a sensible request still goes through.
    let r = http(addr, "POST", "/api/v1/write", &RW1, &rw1_at(10, 3, T0)).await;
    assert_eq!(r.status, 204, "{}", r.text());
    wait_samples(&sink, 3).await;
    tokio::time::sleep(std::time::Duration::from_millis(300)).await;
    assert_eq!(sink.0.lock().unwrap().len(), 3, "only the sensible samples");
    assert!(stored(&h.store).await.is_empty(), "no Loki records stored");

    let m = scrape(addr).await;
    let rejected = |ep: &str, status: &str| {
        metric_sum(
            &m,
            "killkrill_http_rejected_requests_total",
            &[("endpoint", ep), ("status", status)],
        )
    };
    assert_eq!(rejected("remote_write", "400"), 1.0, "{m}");
    assert_eq!(rejected("remote_write", "413"), 2.0, "{m}");
    assert_eq!(rejected("loki", "400"), 1.0, "{m}");
    assert_eq!(rejected("loki", "413"), 2.0, "{m}");
    assert!(
        metric_sum(
            &m,
            "killkrill_parse_errors_total",
            &[("format", "remote_write")]
        ) >= 3.0,
        "{m}"
    );
    h.shutdown().await;
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn the_operators_limits_reach_the_decoders() {
    let dir = tempfile::tempdir().unwrap();
    let mut cfg = config(dir.path());
    cfg.http_ingest.max_body_bytes = 64 << 10;
    let (h, sink) = start(cfg).await;
    let addr = h.http.unwrap();

    // The body limit bounds the protobuf inside the snappy block too: 200 KB
    // of protobuf in a 10 KB body.
    let body = rw1_fan_out(200_000, 1);
    assert!(body.len() < 64 << 10);
    let r = http(addr, "POST", "/api/v1/write", &RW1, &body).await;
    assert_eq!(r.status, 413, "{}", r.text());
    assert!(
        r.text().contains("http_ingest.max_body_bytes"),
        "{}",
        r.text()
    );
    let r = http(
        addr,
        "POST",
        "/loki/api/v1/push",
        &LOKI_PB,
        &loki_pb_fan_out(10, 40_000),
    )
    .await;
    assert_eq!(r.status, 413, "{}", r.text());

    // The budget follows the body limit (16 × 64 KiB = 1 MiB): 8 KiB labels
    // × 200 samples are 1.6 MB of samples.
    let r = http(
        addr,
        "POST",
        "/api/v1/write",
        &RW1,
        &rw1_fan_out(8 << 10, 200),
    )
    .await;
    assert_eq!(r.status, 413, "{}", r.text());
    assert!(r.text().contains("1048576 bytes of memory"), "{}", r.text());
    // ... and 100 of them (0.8 MB) fit, here from a 2.0 symbol.
    let r = http(
        addr,
        "POST",
        "/api/v1/write",
        &RW2,
        &rw2_shared_symbol(8 << 10, 1, 100),
    )
    .await;
    assert_eq!(r.status, 204, "{}", r.text());
    wait_samples(&sink, 100).await;
    h.shutdown().await;

    // An explicit budget, larger than the derived one: the same body that was
    // refused above is accepted (and decoded on the blocking pool, since its
    // output passes the inline allowance).
    let dir = tempfile::tempdir().unwrap();
    let mut cfg = config(dir.path());
    cfg.http_ingest.max_body_bytes = 64 << 10;
    cfg.http_ingest.max_output_bytes = Some(8 << 20);
    let (h, sink) = start(cfg).await;
    let addr = h.http.unwrap();
    let r = http(
        addr,
        "POST",
        "/api/v1/write",
        &RW1,
        &rw1_at(8 << 10, 200, T0),
    )
    .await;
    assert_eq!(r.status, 204, "{}", r.text());
    wait_samples(&sink, 200).await;
    // And a smaller one refuses what the default would take.
    h.shutdown().await;
    let dir = tempfile::tempdir().unwrap();
    let mut cfg = config(dir.path());
    cfg.http_ingest.max_output_bytes = Some(4096);
    let (h, _sink) = start(cfg).await;
    let addr = h.http.unwrap();
    let r = http(addr, "POST", "/api/v1/write", &RW1, &rw1_fan_out(100, 100)).await;
    assert_eq!(r.status, 413, "{}", r.text());
    assert!(r.text().contains("4096 bytes of memory"), "{}", r.text());
    let json = loki_json_fan_out(100, 100);
    let r = http(addr, "POST", "/loki/api/v1/push", &LOKI_JSON, &json).await;
    assert_eq!(r.status, 413, "{}", r.text());
    assert!(r.text().contains("4096 bytes of memory"), "{}", r.text());
    tokio::time::sleep(std::time::Duration::from_millis(200)).await;
    assert!(stored(&h.store).await.is_empty());
    h.shutdown().await;
}
