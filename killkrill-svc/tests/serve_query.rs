//! The read API of `killkrill serve` over real HTTP on 127.0.0.1 against
//! SQLite (and PostgreSQL / MySQL when `KILLKRILL_TEST_POSTGRES_URL` /
//! `KILLKRILL_TEST_MYSQL_URL` are set): log
//! search with every filter and pagination under concurrent writes, volume,
//! live tail (new records, slow-client disconnect), the Prometheus API and
//! the native metric query over samples written to the store, every limit,
//! and the OpenAPI document against the router.
#![allow(clippy::unwrap_used, clippy::print_stderr)]

mod support;

use std::collections::HashSet;
use std::net::SocketAddr;
use std::time::{Duration, Instant};

use killkrill_core::aggregate::{AggregateConfig, BatchId};
use killkrill_core::event::{
    EventId, FieldValue, Labels, LogRecord, MetricSample, NANOS_PER_SEC, SdElement, Severity,
    Tenant, Timestamp,
};
use killkrill_core::storage::{LogStore, MetricStore};
use killkrill_store::{Store, StoreConfig};
use killkrill_svc::config::ServeConfig;
use killkrill_svc::serve::{ServeHandle, StartOptions};
use serde_json::Value;
use support::{config, http};
use tokio::io::{AsyncReadExt, AsyncWriteExt};
use tokio::net::TcpStream;

async fn start(c: ServeConfig) -> (tempfile::TempDir, ServeHandle, SocketAddr) {
    let dir = tempfile::tempdir().unwrap();
    let mut c2 = c;
    c2.data_dir = dir.path().to_path_buf();
    let h = support::start(c2).await.unwrap();
    let a = h.http.unwrap();
    (dir, h, a)
}

fn base_config() -> ServeConfig {
    let mut c = config(std::path::Path::new("/nonexistent"));
    c.syslog_udp = killkrill_svc::config::ListenAddr::OFF;
    c.syslog_tcp = killkrill_svc::config::ListenAddr::OFF;
    c.maintenance.interval_secs = 0;
    c
}

async fn get(addr: SocketAddr, path: &str) -> support::Resp {
    http(addr, "GET", path, &[], b"").await
}

async fn get_json(addr: SocketAddr, path: &str) -> Value {
    let r = get(addr, path).await;
    assert_eq!(r.status, 200, "{path}: {}", r.text());
    r.json()
}

fn tenant() -> Tenant {
    Tenant::default()
}

struct Rec {
    id: u128,
    secs: i64,
    sev: Option<Severity>,
    host: &'static str,
    app: &'static str,
    source: &'static str,
    msg: String,
    attr: Option<(&'static str, FieldValue)>,
    sd: Option<(&'static str, &'static str, &'static str)>,
}

fn record(t: &Tenant, base: Timestamp, r: Rec) -> LogRecord {
    LogRecord {
        id: Some(EventId::from_u128(r.id)),
        tenant: Some(t.clone()),
        timestamp: base.saturating_add_nanos(r.secs * NANOS_PER_SEC),
        severity: r.sev,
        host: Some(r.host.to_owned()),
        app: Some(r.app.to_owned()),
        source: Some(r.source.to_owned()),
        message: Some(r.msg.into_bytes()),
        attributes: r
            .attr
            .map(|(k, v)| vec![(k.to_owned(), v)])
            .unwrap_or_default(),
        structured_data: r
            .sd
            .map(|(id, k, v)| {
                vec![SdElement {
                    id: id.to_owned(),
                    params: vec![(k.to_owned(), v.to_owned())],
                }]
            })
            .unwrap_or_default(),
        ..LogRecord::default()
    }
}

/// A record on host `h`, app `a`, source `s`.
fn simple(
    t: &Tenant,
    base: Timestamp,
    id: u128,
    secs: i64,
    sev: Option<Severity>,
    msg: String,
) -> LogRecord {
    record(
        t,
        base,
        Rec {
            id,
            secs,
            sev,
            host: "h",
            app: "a",
            source: "s",
            msg,
            attr: None,
            sd: None,
        },
    )
}

async fn write_logs(store: &Store, records: Vec<LogRecord>) {
    if records.is_empty() {
        return;
    }
    let blocks = store.encode(records).await.unwrap();
    store.write_blocks(&blocks).await.unwrap();
}

/// 60 records, one per second from `base`: severities cycle err/warning/
/// info/debug, hosts web1/web2/db1, apps nginx (even) / api (odd), sources
/// syslog (i < 30) / http; `order=<i>` attributes on multiples of 10,
/// `origin.ip` structured data on multiples of 7; messages
/// `request <i> done`, with `timeout` on multiples of 5.
fn sixty(t: &Tenant, base: Timestamp) -> Vec<LogRecord> {
    let sevs = [
        Severity::Error,
        Severity::Warning,
        Severity::Informational,
        Severity::Debug,
    ];
    let hosts = ["web1", "web2", "db1"];
    (0..60)
        .map(|i| {
            record(
                t,
                base,
                Rec {
                    id: 1_000 + i as u128,
                    secs: i,
                    sev: Some(sevs[(i % 4) as usize]),
                    host: hosts[(i % 3) as usize],
                    app: if i % 2 == 0 { "nginx" } else { "api" },
                    source: if i < 30 { "syslog" } else { "http" },
                    msg: if i % 5 == 0 {
                        format!("request {i} timeout upstream")
                    } else {
                        format!("request {i} done")
                    },
                    attr: (i % 10 == 0).then_some(("order", FieldValue::Int(i))),
                    sd: (i % 7 == 0).then_some(("origin", "ip", "10.0.0.7")),
                },
            )
        })
        .collect()
}

fn ids(v: &Value) -> Vec<i64> {
    v["data"]
        .as_array()
        .unwrap()
        .iter()
        .map(|r| {
            let m = r["message"].as_str().unwrap();
            m.split(' ').nth(1).unwrap().parse().unwrap()
        })
        .collect()
}

fn enc(s: &str) -> String {
    form_urlencoded::byte_serialize(s.as_bytes()).collect()
}

async fn check_filters(addr: SocketAddr, base: Timestamp) {
    let start = enc(&base.to_string());
    let end = enc(&base.saturating_add_nanos(60 * NANOS_PER_SEC).to_string());
    let q = |extra: &str| {
        format!("/api/v1/logs?start={start}&end={end}&order=oldest&limit=1000{extra}")
    };
    let all: Vec<i64> = (0..60).collect();
    let pick = |f: &dyn Fn(i64) -> bool| all.iter().copied().filter(|&i| f(i)).collect::<Vec<_>>();
    let cases: Vec<(String, Vec<i64>)> = vec![
        (String::new(), all.clone()),
        ("&severity=warning".into(), pick(&|i| i % 4 <= 1)),
        ("&severity=err".into(), pick(&|i| i % 4 == 0)),
        ("&host=web2".into(), pick(&|i| i % 3 == 1)),
        ("&app=api".into(), pick(&|i| i % 2 == 1)),
        ("&source=http".into(), pick(&|i| i >= 30)),
        ("&field.order=20".into(), vec![20]),
        ("&field.origin.ip=10.0.0.7".into(), pick(&|i| i % 7 == 0)),
        ("&query=timeout".into(), pick(&|i| i % 5 == 0)),
        ("&query=TIMEOUT%20upstream".into(), pick(&|i| i % 5 == 0)),
        (
            "&query=timeout&host=web1&severity=err".into(),
            pick(&|i| i % 5 == 0 && i % 3 == 0 && i % 4 == 0),
        ),
        ("&host=nohost".into(), vec![]),
    ];
    for (extra, want) in cases {
        let v = get_json(addr, &q(&extra)).await;
        assert_eq!(ids(&v), want, "filter {extra:?}");
        assert!(v["next_cursor"].is_null());
    }
    // Time bounds: relative, epoch seconds and milliseconds; newest first.
    let s10 = base.as_nanos() / NANOS_PER_SEC + 10;
    let v = get_json(
        addr,
        &format!("/api/v1/logs?start={s10}&end={}000&limit=3", s10 + 5),
    )
    .await;
    assert_eq!(ids(&v), vec![14, 13, 12]);
    assert!(v["next_cursor"].is_string());
    // The canonical record form.
    let r = &v["data"][0];
    assert_eq!(r["host"], "db1");
    assert_eq!(r["severity"], "info");
    assert_eq!(r["tenant"], "default");
    assert!(r["id"].is_string() && r["timestamp"].is_string());
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn every_log_filter_and_bad_parameters() {
    let (_d, h, addr) = start(base_config()).await;
    let t = tenant();
    let base = Timestamp::from_nanos(Timestamp::now().as_nanos() / NANOS_PER_SEC * NANOS_PER_SEC)
        .saturating_add_nanos(-3_600 * NANOS_PER_SEC);
    write_logs(&h.store, sixty(&t, base)).await;
    // Another tenant's records are never visible.
    let other = Tenant::new("other").unwrap();
    write_logs(&h.store, sixty(&other, base)).await;
    check_filters(addr, base).await;

    for (path, param) in [
        ("/api/v1/logs?severity=loud", "severity"),
        ("/api/v1/logs?start=yesterday", "start"),
        ("/api/v1/logs?end=-1x", "end"),
        ("/api/v1/logs?limit=0", "limit"),
        ("/api/v1/logs?limit=5001", "limit"),
        ("/api/v1/logs?limit=ten", "limit"),
        ("/api/v1/logs?cursor=nope", "cursor"),
        ("/api/v1/logs?order=sideways", "order"),
        ("/api/v1/logs?colour=red", "colour"),
        ("/api/v1/logs?start=now&end=-1h", "end"),
        ("/api/v1/logs?host=a&host=b", "host"),
        ("/api/v1/logs/volume?step=0s&start=-1h", "step"),
        ("/api/v1/logs/tail?severity=x", "severity"),
        ("/api/v1/metrics?name=x&resolution=fast", "resolution"),
        ("/api/v1/metrics?name=x&aggregation=mode", "aggregation"),
        ("/api/v1/metrics", "name"),
    ] {
        let r = get(addr, path).await;
        assert_eq!(r.status, 400, "{path}: {}", r.text());
        let j = r.json();
        assert_eq!(j["parameter"], param, "{path}: {j}");
        assert!(j["error"].as_str().unwrap().contains(param), "{j}");
    }
    h.shutdown().await;
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn pages_have_no_gaps_or_repeats_while_records_arrive() {
    let (_d, h, addr) = start(base_config()).await;
    let t = tenant();
    let base = Timestamp::now().saturating_add_nanos(-7_200 * NANOS_PER_SEC);
    // 1,000 records in 10 writes (10 blocks or more), two per second.
    let mk = |i: u128, half_secs: i64, msg: String| {
        let mut r = record(
            &t,
            base,
            Rec {
                id: i,
                secs: 0,
                sev: Some(Severity::Notice),
                host: "h",
                app: "a",
                source: "s",
                msg,
                attr: None,
                sd: None,
            },
        );
        r.timestamp = base.saturating_add_nanos(half_secs * NANOS_PER_SEC / 2);
        r
    };
    for chunk in 0..10u128 {
        let recs = (chunk * 100..chunk * 100 + 100)
            .map(|i| mk(i + 1, i as i64, format!("orig {i}")))
            .collect();
        write_logs(&h.store, recs).await;
    }
    for order in ["newest", "oldest"] {
        let mut seen: Vec<String> = Vec::new();
        let mut cursor: Option<String> = None;
        let mut page = 0u128;
        loop {
            let mut path = format!("/api/v1/logs?limit=37&order={order}&start=-3h&end=now");
            if let Some(c) = &cursor {
                path.push_str(&format!("&cursor={c}"));
            }
            let v = get_json(addr, &path).await;
            for r in v["data"].as_array().unwrap() {
                seen.push(r["message"].as_str().unwrap().to_owned());
            }
            // New records arrive between pages: newer than everything, older
            // than everything, and interleaved with the originals.
            page += 1;
            let id0 = 10_000 + page * 10 + if order == "newest" { 0 } else { 5_000 };
            write_logs(
                &h.store,
                vec![
                    mk(id0, 2_100, format!("new-late {order} {page}")),
                    mk(id0 + 1, -10, format!("new-early {order} {page}")),
                    mk(
                        id0 + 2,
                        (page as i64 * 37) % 1000,
                        format!("new-mid {order} {page}"),
                    ),
                ],
            )
            .await;
            match v["next_cursor"].as_str() {
                Some(c) => cursor = Some(c.to_owned()),
                None => break,
            }
            assert!(page < 200, "pagination does not end");
        }
        let unique: HashSet<&String> = seen.iter().collect();
        assert_eq!(
            unique.len(),
            seen.len(),
            "{order}: a record was returned twice"
        );
        for i in 0..1000 {
            assert!(
                unique.contains(&format!("orig {i}")),
                "{order}: orig {i} missing (gap)"
            );
        }
        // The order holds across pages.
        eprintln!("{order}: {} records over {page} pages", seen.len());
    }
    h.shutdown().await;
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn volume_counts_per_bucket_and_severity() {
    let (_d, h, addr) = start(base_config()).await;
    let t = tenant();
    let base = Timestamp::from_nanos(
        Timestamp::now().as_nanos() / (60 * NANOS_PER_SEC) * 60 * NANOS_PER_SEC,
    )
    .saturating_add_nanos(-3_600 * NANOS_PER_SEC);
    write_logs(&h.store, sixty(&t, base)).await;
    check_volume(addr, base).await;
    h.shutdown().await;
}

/// Volume over `sixty` records written at `base` (a whole minute).
async fn check_volume(addr: SocketAddr, base: Timestamp) {
    let start = enc(&base.to_string());
    let end = enc(&base.saturating_add_nanos(60 * NANOS_PER_SEC).to_string());
    let v = get_json(
        addr,
        &format!("/api/v1/logs/volume?start={start}&end={end}&step=20s"),
    )
    .await;
    let d = v["data"].as_array().unwrap();
    assert_eq!(d.len(), 3, "{v}");
    for b in d {
        assert_eq!(b["total"], 20, "{b}");
        let by = b["by_severity"].as_object().unwrap();
        assert_eq!(by.values().map(|x| x.as_u64().unwrap()).sum::<u64>(), 20);
        assert_eq!(by["err"], 5);
    }
    assert_eq!(d[0]["start"], base.to_string());
    let v = get_json(
        addr,
        &format!(
            "/api/v1/logs/volume?start={start}&end={end}&step=30s&severity=warning&query=timeout"
        ),
    )
    .await;
    let totals: Vec<u64> = v["data"]
        .as_array()
        .unwrap()
        .iter()
        .map(|b| b["total"].as_u64().unwrap())
        .collect();
    // i % 5 == 0 and i % 4 <= 1: 0, 5, 20, 25 | 40, 45
    assert_eq!(totals, vec![4, 2]);
    // Too many buckets.
    let r = get(addr, "/api/v1/logs/volume?start=-10d&step=1s").await;
    assert_eq!(r.status, 422, "{}", r.text());
    assert_eq!(r.json()["limit"], "query.max_buckets");
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn every_limit_is_a_422_naming_it() {
    let mut c = base_config();
    c.query.max_range_secs = 86_400;
    c.query.max_series = 3;
    c.query.max_points = 50;
    c.query.max_tails = 1;
    let (_d, h, addr) = start(c.clone()).await;
    let t = tenant();
    let now = Timestamp::now();
    // Metrics: 5 series of 20 points each.
    let samples: Vec<MetricSample> = (0..5)
        .flat_map(|s| {
            (0..20).map(move |i| MetricSample {
                name: "lim".into(),
                labels: Labels::from_pairs([("s", s.to_string())]),
                value: f64::from(i),
                timestamp: Some(now.saturating_add_nanos(-(i64::from(i) + 1) * 10 * NANOS_PER_SEC)),
                ..MetricSample::default()
            })
        })
        .collect();
    h.store.write_samples(&t, &samples).await.unwrap();
    for (path, limit, status) in [
        ("/api/v1/logs?start=-2d", "query.max_range_secs", 422),
        (
            "/api/v1/logs/volume?start=-2d&step=1h",
            "query.max_range_secs",
            422,
        ),
        (
            "/api/v1/metrics?name=lim&start=-2d",
            "query.max_range_secs",
            422,
        ),
        (
            "/api/v1/metrics?name=lim&start=-10m",
            "query.max_series",
            422,
        ),
        (
            "/api/v1/metrics?match=%7Bs%3D~%220%7C1%7C2%22%7D&start=-10m",
            "query.max_points",
            422,
        ),
    ] {
        let r = get(addr, path).await;
        assert_eq!(r.status, status, "{path}: {}", r.text());
        assert_eq!(r.json()["limit"], limit, "{path}");
    }
    // The Prometheus API keeps Prometheus's envelope; the limit is named in the error.
    let now_s = now.as_nanos() / NANOS_PER_SEC;
    for (path, needle) in [
        (
            format!("/api/v1/query?query=lim&time={now_s}"),
            "max_series",
        ),
        (
            format!(
                "/api/v1/query_range?query=lim&start={}&end={now_s}&step=60",
                now_s - 2 * 86_400
            ),
            "max_range",
        ),
        (
            format!("/api/v1/query?query=lim%5B3d%5D&time={now_s}"),
            "max_range",
        ),
        (
            format!("/api/v1/series?match[]=lim&start={}", now_s - 3 * 86_400),
            "max_range",
        ),
    ] {
        let r = get(addr, &path).await;
        assert_eq!(r.status, 422, "{path}: {}", r.text());
        let j = r.json();
        assert_eq!(j["status"], "error");
        assert!(j["error"].as_str().unwrap().contains(needle), "{path}: {j}");
    }
    // Tails: one at a time (a concurrency limit: 429 with Retry-After).
    let (mut first, head) = open_tail(addr, "").await;
    assert!(head.starts_with("HTTP/1.1 200"), "{head}");
    let r = get(addr, "/api/v1/logs/tail").await;
    assert_eq!(r.status, 429, "{}", r.text());
    assert_eq!(r.header("retry-after"), Some("5"));
    assert_eq!(r.json()["limit"], "query.max_tails");
    first.shutdown().await.unwrap();
    drop(first);
    // The permit comes back when the client goes away.
    let t0 = Instant::now();
    loop {
        let (s, head) = open_tail(addr, "").await;
        if head.starts_with("HTTP/1.1 200") {
            drop(s);
            break;
        }
        assert!(
            t0.elapsed() < Duration::from_secs(10),
            "tail permit not released: {head}"
        );
        tokio::time::sleep(Duration::from_millis(100)).await;
    }
    h.shutdown().await;

    // A server whose queries may run 1 ms.
    c.query.timeout_ms = 1;
    let (_d2, h, addr) = start(c).await;
    // Timeout: 1 ms is not enough to read 20,000 records in 400 blocks
    // (40 blocks were read within 1 ms once on an idle machine).
    for k in 0..400u128 {
        let recs = (0..50u128)
            .map(|i| {
                simple(
                    &t,
                    now,
                    50_000 + k * 100 + i,
                    -(k as i64) * 60 - i as i64,
                    Some(Severity::Error),
                    format!("payload {k} {i} needle"),
                )
            })
            .collect();
        write_logs(&h.store, recs).await;
    }
    let r = get(addr, "/api/v1/logs/volume?start=-23h&step=1m&query=needle").await;
    assert_eq!(r.status, 422, "{}", r.text());
    assert_eq!(r.json()["limit"], "query.timeout_ms");
    h.shutdown().await;
}

/// Opens a tail; returns the stream (positioned after the head) and the head.
async fn open_tail(addr: SocketAddr, query: &str) -> (TcpStream, String) {
    open_tail_on(TcpStream::connect(addr).await.unwrap(), addr, query).await
}

async fn open_tail_on(mut s: TcpStream, addr: SocketAddr, query: &str) -> (TcpStream, String) {
    let key = support::api_key(addr);
    let req = format!(
        "GET /api/v1/logs/tail?{query} HTTP/1.1\r\nHost: {addr}\r\nX-API-Key: {key}\r\n\r\n"
    );
    s.write_all(req.as_bytes()).await.unwrap();
    let mut head = Vec::new();
    let mut b = [0u8; 1];
    while !head.ends_with(b"\r\n\r\n") {
        let n = s.read(&mut b).await.unwrap();
        assert!(
            n > 0,
            "closed in the head: {}",
            String::from_utf8_lossy(&head)
        );
        head.push(b[0]);
    }
    (s, String::from_utf8_lossy(&head).into_owned())
}

/// Decodes HTTP/1.1 chunked framing incrementally.
#[derive(Default)]
struct Chunked {
    raw: Vec<u8>,
    body: Vec<u8>,
    ended: bool,
}

impl Chunked {
    fn push(&mut self, b: &[u8]) {
        self.raw.extend_from_slice(b);
        loop {
            let Some(nl) = self.raw.windows(2).position(|w| w == b"\r\n") else {
                return;
            };
            let size =
                usize::from_str_radix(std::str::from_utf8(&self.raw[..nl]).unwrap().trim(), 16)
                    .unwrap();
            if size == 0 {
                self.ended = true;
                return;
            }
            if self.raw.len() < nl + 2 + size + 2 {
                return;
            }
            self.body
                .extend_from_slice(&self.raw[nl + 2..nl + 2 + size]);
            self.raw.drain(..nl + 2 + size + 2);
        }
    }

    fn text(&self) -> String {
        String::from_utf8_lossy(&self.body).into_owned()
    }
}

/// Reads until `done(text)` or the deadline; returns the text so far.
async fn read_until(
    s: &mut TcpStream,
    c: &mut Chunked,
    within: Duration,
    done: impl Fn(&str) -> bool,
) -> String {
    let deadline = tokio::time::Instant::now() + within;
    let mut buf = vec![0u8; 64 * 1024];
    while !done(&c.text()) && !c.ended {
        match tokio::time::timeout_at(deadline, s.read(&mut buf)).await {
            Ok(Ok(0)) | Err(_) => break,
            Ok(Ok(n)) => c.push(&buf[..n]),
            Ok(Err(e)) => panic!("read: {e}"),
        }
    }
    c.text()
}

/// A graceful shutdown is not held open by a live tail: the tail ends with
/// an error event that says why, and `shutdown` returns.
#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn shutdown_ends_open_tails_and_tells_the_client() {
    let mut c = base_config();
    c.query.tail_poll_ms = 100;
    let (_d, h, addr) = start(c).await;
    let (mut s, head) = open_tail(addr, "").await;
    assert!(head.starts_with("HTTP/1.1 200"), "{head}");
    let stopped = tokio::spawn(h.shutdown());
    let mut ch = Chunked::default();
    let text = read_until(&mut s, &mut ch, Duration::from_secs(10), |t| {
        t.contains("event: error")
    })
    .await;
    assert!(text.contains("\"reason\":\"shutting_down\""), "{text}");
    tokio::time::timeout(Duration::from_secs(15), stopped)
        .await
        .expect("shutdown waited on the open tail")
        .unwrap();
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn tail_streams_records_written_after_it_connected() {
    let mut c = base_config();
    c.query.tail_poll_ms = 100;
    c.query.tail_heartbeat_secs = 1;
    let (_d, h, addr) = start(c).await;
    let t = tenant();
    // Already stored before the tail: never streamed.
    let before = Timestamp::now();
    write_logs(
        &h.store,
        vec![simple(
            &t,
            before,
            1,
            0,
            Some(Severity::Error),
            "old one".into(),
        )],
    )
    .await;
    let (mut s, head) = open_tail(addr, "severity=err&host=h").await;
    assert!(head.contains("text/event-stream"), "{head}");
    let mut c = Chunked::default();
    // Written through the store (as a worker in another process would).
    let now = Timestamp::now();
    write_logs(
        &h.store,
        vec![
            simple(&t, now, 2, 0, Some(Severity::Error), "tail one".into()),
            simple(
                &t,
                now,
                3,
                0,
                Some(Severity::Informational),
                "filtered out".into(),
            ),
            simple(
                &Tenant::new("other").unwrap(),
                now,
                4,
                0,
                Some(Severity::Error),
                "other tenant".into(),
            ),
            // Late: event time 2 s before records already streamed.
            simple(&t, now, 5, -2, Some(Severity::Error), "tail late".into()),
        ],
    )
    .await;
    let text = read_until(&mut s, &mut c, Duration::from_secs(10), |t| {
        t.contains("tail one") && t.contains("tail late")
    })
    .await;
    assert!(text.contains("event: log\n"), "{text}");
    // And through the HTTP ingest and the workers (the sink wakes the tail).
    let r = http(
        addr,
        "POST",
        "/api/v1/logs",
        &[],
        br#"{"msg":"via http","level":"error","host":"h"}"#,
    )
    .await;
    assert_eq!(r.status, 200);
    let text = read_until(&mut s, &mut c, Duration::from_secs(10), |t| {
        t.contains("via http")
    })
    .await;
    assert!(text.contains("via http"), "{text}");
    let text = read_until(&mut s, &mut c, Duration::from_secs(3), |t| {
        t.contains(": heartbeat")
    })
    .await;
    assert!(text.contains(": heartbeat"), "{text}");
    for bad in ["old one", "filtered out", "other tenant"] {
        assert!(!text.contains(bad), "{bad} was streamed: {text}");
    }
    assert_eq!(text.matches("tail one").count(), 1, "{text}");
    // Every data line is a canonical record.
    for line in text.lines().filter_map(|l| l.strip_prefix("data: ")) {
        let v: Value = serde_json::from_str(line).unwrap();
        assert_eq!(v["severity"], "err");
    }
    drop(s);
    h.shutdown().await;
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn a_slow_tail_client_is_told_and_disconnected() {
    let mut c = base_config();
    c.query.tail_poll_ms = 100;
    c.query.tail_buffer_events = 8;
    let (_d, h, addr) = start(c).await;
    let t = tenant();
    let sock = tokio::net::TcpSocket::new_v4().unwrap();
    sock.set_recv_buffer_size(4096).unwrap();
    let stream = sock.connect(addr).await.unwrap();
    let (mut s, head) = open_tail_on(stream, addr, "").await;
    assert!(head.starts_with("HTTP/1.1 200"), "{head}");
    // Far more than socket buffers hold: 4,000 records of 4 KiB.
    let now = Timestamp::now();
    let big = "x".repeat(4096);
    for k in 0..8u128 {
        let recs = (0..500u128)
            .map(|i| {
                simple(
                    &t,
                    now,
                    100 + k * 1000 + i,
                    0,
                    Some(Severity::Error),
                    format!("slow {k} {i} {big}"),
                )
            })
            .collect();
        write_logs(&h.store, recs).await;
    }
    // The client does not read for a while; ingestion meanwhile is not held up.
    let t0 = Instant::now();
    let r = http(
        addr,
        "POST",
        "/api/v1/logs",
        &[],
        br#"{"msg":"still ingesting"}"#,
    )
    .await;
    assert_eq!(r.status, 200);
    assert!(t0.elapsed() < Duration::from_secs(5));
    tokio::time::sleep(Duration::from_secs(2)).await;
    let mut c = Chunked::default();
    let text = read_until(&mut s, &mut c, Duration::from_secs(30), |_| false).await;
    assert!(c.ended, "the stream did not end");
    let tail = &text[text.len().saturating_sub(600)..];
    assert!(tail.contains("event: error\ndata: "), "{tail}");
    assert!(
        tail.contains("slow_client") && tail.contains("query.tail_buffer_events"),
        "{tail}"
    );
    assert!(text.matches("event: log").count() < 4000);
    h.shutdown().await;
}

fn sample(name: &str, labels: &[(&str, &str)], secs: i64, v: f64) -> MetricSample {
    MetricSample {
        name: name.into(),
        labels: Labels::from_pairs(labels.iter().copied()),
        value: v,
        timestamp: Some(Timestamp::from_secs(secs)),
        ..MetricSample::default()
    }
}

/// Counters `req_total{job=api|web, instance=a|b}` growing by job-specific
/// rates every 15 s for an hour before `end`, and a gauge `temp`.
async fn write_metrics(store: &Store, t: &Tenant, end: i64) -> i64 {
    let start = end - 3600;
    let mut v = Vec::new();
    for (job, rate) in [("api", 2.0), ("web", 0.5)] {
        for inst in ["a", "b"] {
            for k in 0..=240 {
                let ts = start + k * 15;
                v.push(sample(
                    "req_total",
                    &[("job", job), ("instance", inst)],
                    ts,
                    rate * (k * 15) as f64,
                ));
            }
        }
    }
    for k in 0..=240 {
        v.push(sample(
            "temp",
            &[("room", "lab")],
            start + k * 15,
            20.0 + (k % 4) as f64,
        ));
    }
    store.write_samples(t, &v).await.unwrap();
    // Another tenant's identical series must never be seen.
    let mut other = v.clone();
    for s in &mut other {
        s.value += 1000.0;
    }
    store
        .write_samples(&Tenant::new("other").unwrap(), &other)
        .await
        .unwrap();
    start
}

async fn check_prometheus(addr: SocketAddr, end: i64) {
    let start = end - 3600;
    let v = get_json(
        addr,
        &format!(
            "/api/v1/query?query={}&time={end}",
            enc("sum by (job) (rate(req_total[5m]))")
        ),
    )
    .await;
    assert_eq!(v["status"], "success");
    let mut got: Vec<(String, f64)> = v["data"]["result"]
        .as_array()
        .unwrap()
        .iter()
        .map(|s| {
            (
                s["metric"]["job"].as_str().unwrap().to_owned(),
                s["value"][1].as_str().unwrap().parse().unwrap(),
            )
        })
        .collect();
    got.sort_by(|a, b| a.0.cmp(&b.0));
    assert_eq!(got.len(), 2, "{v}");
    assert_eq!(got[0].0, "api");
    assert!((got[0].1 - 4.0).abs() < 1e-9, "{got:?}");
    assert!((got[1].1 - 1.0).abs() < 1e-9, "{got:?}");
    let v = get_json(
        addr,
        &format!(
            "/api/v1/query_range?query={}&start={}&end={end}&step=60",
            enc("max_over_time(temp[1m])"),
            start + 600
        ),
    )
    .await;
    let m = &v["data"]["result"][0];
    assert_eq!(m["metric"]["room"], "lab");
    assert_eq!(m["values"].as_array().unwrap().len(), 51);
    assert!(
        m["values"].as_array().unwrap().iter().all(|p| p[1] == "23"),
        "{m}"
    );
    // POST form body.
    let body = format!("query=temp&time={end}");
    let r = http(
        addr,
        "POST",
        "/api/v1/query",
        &[("Content-Type", "application/x-www-form-urlencoded")],
        body.as_bytes(),
    )
    .await;
    assert_eq!(r.status, 200, "{}", r.text());
    assert_eq!(r.json()["data"]["result"][0]["value"][1], "20");
    let v = get_json(
        addr,
        &format!(
            "/api/v1/series?match[]={}&start={start}&end={end}",
            enc("req_total{job=\"api\"}")
        ),
    )
    .await;
    assert_eq!(v["data"].as_array().unwrap().len(), 2, "{v}");
    let v = get_json(addr, &format!("/api/v1/labels?start={start}&end={end}")).await;
    assert_eq!(
        v["data"],
        serde_json::json!(["__name__", "instance", "job", "room"])
    );
    let v = get_json(
        addr,
        &format!("/api/v1/label/job/values?start={start}&end={end}"),
    )
    .await;
    assert_eq!(v["data"], serde_json::json!(["api", "web"]));
    let v = get_json(
        addr,
        &format!("/api/v1/label/__name__/values?start={start}&end={end}"),
    )
    .await;
    assert_eq!(v["data"], serde_json::json!(["req_total", "temp"]));
    let r = get(addr, "/api/v1/query?query=rate(").await;
    assert_eq!(r.status, 400);
    assert_eq!(r.json()["errorType"], "bad_data");
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn prometheus_api_and_native_metrics_over_the_store() {
    let (_d, h, addr) = start(base_config()).await;
    let t = tenant();
    let end = Timestamp::now().as_nanos() / NANOS_PER_SEC / 60 * 60;
    let start = write_metrics(&h.store, &t, end).await;
    check_prometheus(addr, end).await;

    // Native: raw points.
    let v = get_json(
        addr,
        &format!("/api/v1/metrics?name=temp&start={start}&end={}", start + 60),
    )
    .await;
    let pts = v["data"][0]["points"].as_array().unwrap();
    assert_eq!(v["resolution"], "raw");
    assert_eq!(pts.len(), 4, "{v}");
    assert_eq!(pts[0], serde_json::json!([start * 1000, 20.0]));
    // Raw with a step and an aggregation.
    let v = get_json(
        addr,
        &format!("/api/v1/metrics?match={}&label.instance=a&start={start}&end={}&step=1m&aggregation=max", enc("{__name__=\"req_total\",job=~\"a.*\"}"), start + 179),
    )
    .await;
    assert_eq!(v["data"].as_array().unwrap().len(), 1);
    let pts = v["data"][0]["points"].as_array().unwrap();
    assert_eq!(pts.len(), 3, "{v}");
    assert_eq!(
        pts[1],
        serde_json::json!([(start + 60) * 1000, 2.0 * 105.0])
    );
    // Rollups written by the aggregator, read at 1m.
    let cfg: AggregateConfig = serde_json::from_str(r#"{"resolutions": ["1m"]}"#).unwrap();
    let mut agg = cfg.build().unwrap();
    let rs: Vec<MetricSample> = (0..12)
        .map(|k| {
            let mut s = sample("lat", &[("op", "get")], start + k * 10, k as f64);
            s.tenant = Some(t.clone());
            s
        })
        .collect();
    agg.aggregate(BatchId(1), &rs);
    let flush = agg.flush();
    h.store
        .write_rollups(&t, flush.key().unwrap(), &flush.partials)
        .await
        .unwrap();
    let v = get_json(
        addr,
        &format!(
            "/api/v1/metrics?name=lat&start={start}&end={}&resolution=1m&aggregation=sum",
            start + 120
        ),
    )
    .await;
    assert_eq!(v["resolution"], "1m", "{v}");
    let pts = v["data"][0]["points"].as_array().unwrap();
    let win0 = start - start.rem_euclid(60);
    assert_eq!(pts[0][0], win0 * 1000, "{v}");
    let total: f64 = pts.iter().map(|p| p[1].as_f64().unwrap()).sum();
    assert_eq!(total, 66.0, "{v}");
    let v = get_json(
        addr,
        &format!(
            "/api/v1/metrics?name=lat&start={start}&end={}&resolution=1m&step=2m&aggregation=count",
            start + 120
        ),
    )
    .await;
    let total: f64 = v["data"][0]["points"]
        .as_array()
        .unwrap()
        .iter()
        .map(|p| p[1].as_f64().unwrap())
        .sum();
    assert_eq!(total, 12.0, "{v}");
    let r = get(
        addr,
        &format!("/api/v1/metrics?name=lat&start={start}&resolution=1m&step=90s"),
    )
    .await;
    assert_eq!(r.status, 400);
    assert_eq!(r.json()["parameter"], "step");
    h.shutdown().await;
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn promtool_queries_serve() {
    let Ok(out) = std::process::Command::new("promtool")
        .arg("--version")
        .output()
    else {
        eprintln!("skipping: promtool is not installed (scripts/install-prometheus installs it)");
        return;
    };
    assert!(out.status.success());
    let (_d, h, addr) = start(base_config()).await;
    let t = tenant();
    let end = Timestamp::now().as_nanos() / NANOS_PER_SEC / 60 * 60;
    let start = write_metrics(&h.store, &t, end).await;
    // promtool 2.42 has no HTTP config for queries: the API key goes in the
    // URL's userinfo, which it sends as basic auth.
    let url = format!("http://promtool:{}@{addr}", support::api_key(addr));
    let run = |args: Vec<String>| {
        let out = std::process::Command::new("promtool")
            .args(&args)
            .output()
            .unwrap();
        let text = String::from_utf8_lossy(&out.stdout).into_owned();
        assert!(
            out.status.success(),
            "promtool {args:?}: {} {}",
            text,
            String::from_utf8_lossy(&out.stderr)
        );
        text
    };
    let s = |x: &str| x.to_owned();
    let text = run(vec![
        s("query"),
        s("instant"),
        format!("--time={end}"),
        url.clone(),
        s("sum by (job) (rate(req_total[5m]))"),
    ]);
    assert!(
        text.contains("{job=\"api\"} => 4") && text.contains("{job=\"web\"} => 1"),
        "{text}"
    );
    let text = run(vec![
        s("query"),
        s("range"),
        format!("--start={}", start + 600),
        format!("--end={end}"),
        s("--step=5m"),
        url.clone(),
        s("temp"),
    ]);
    assert!(text.contains("temp{room=\"lab\"}"), "{text}");
    let text = run(vec![
        s("query"),
        s("series"),
        format!("--match=req_total{{job=\"web\"}}"),
        format!("--start={start}"),
        format!("--end={end}"),
        url.clone(),
    ]);
    assert_eq!(
        text.lines().filter(|l| l.contains("req_total")).count(),
        2,
        "{text}"
    );
    let text = run(vec![
        s("query"),
        s("labels"),
        format!("--start={start}"),
        format!("--end={end}"),
        url.clone(),
        s("job"),
    ]);
    assert!(text.contains("api") && text.contains("web"), "{text}");
    h.shutdown().await;
}

/// The read-API assertions of the SQLite tests (every log filter, the
/// volume, the Prometheus API and the native metric query) with the store
/// on `store`.
async fn read_api_on(store: StoreConfig) {
    let dir = tempfile::tempdir().unwrap();
    let mut c = base_config();
    c.data_dir = dir.path().to_path_buf();
    let h = support::start_with(
        c,
        StartOptions {
            store: Some(store),
            metric_sink: None,
            queue: None,
            ..Default::default()
        },
    )
    .await
    .unwrap();
    let addr = h.http.unwrap();
    let t = tenant();
    let base = Timestamp::from_nanos(
        Timestamp::now().as_nanos() / (60 * NANOS_PER_SEC) * 60 * NANOS_PER_SEC,
    )
    .saturating_add_nanos(-3_600 * NANOS_PER_SEC);
    write_logs(&h.store, sixty(&t, base)).await;
    write_logs(&h.store, sixty(&Tenant::new("other").unwrap(), base)).await;
    check_filters(addr, base).await;
    check_volume(addr, base).await;
    let end = Timestamp::now().as_nanos() / NANOS_PER_SEC / 60 * 60;
    write_metrics(&h.store, &t, end).await;
    check_prometheus(addr, end).await;
    h.shutdown().await;
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn read_api_on_postgres() {
    let Some(db) = support::postgres_db("kk_query").await else {
        return;
    };
    read_api_on(db.config.clone()).await;
    db.drop_db().await;
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn read_api_on_mysql() {
    let Some(db) = support::mysql_db("kk_query").await else {
        return;
    };
    read_api_on(db.config.clone()).await;
    db.drop_db().await;
}

/// `(path, methods)` of every `.route(...)` in a source file.
fn routes_in(src: &str) -> Vec<(String, Vec<String>)> {
    let mut out = Vec::new();
    for part in src.split(".route(").skip(1) {
        let Some(rest) = part.trim_start().strip_prefix('"') else {
            continue;
        };
        let path = rest[..rest.find('"').unwrap()].to_owned();
        // The method router is what follows up to the closing paren of `.route(`.
        let mut depth = 1i32;
        let mut end = 0;
        for (i, ch) in part.char_indices() {
            match ch {
                '(' => depth += 1,
                ')' => {
                    depth -= 1;
                    if depth == 0 {
                        end = i;
                        break;
                    }
                }
                _ => {}
            }
        }
        let call = &part[..end];
        let methods = ["get", "post", "put", "delete", "patch"]
            .iter()
            .filter(|m| call.contains(&format!("{m}(")) || call.contains(&format!(".{m}(")))
            .map(|m| (*m).to_owned())
            .collect();
        out.push((path, methods));
    }
    out
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn openapi_documents_every_route() {
    let (_d, h, addr) = start(base_config()).await;
    let doc = get_json(addr, "/api/v1/openapi.json").await;
    assert!(doc["openapi"].as_str().unwrap().starts_with("3."));
    let paths = doc["paths"].as_object().unwrap();
    let root = env!("CARGO_MANIFEST_DIR");
    let mut routes =
        routes_in(&std::fs::read_to_string(format!("{root}/src/serve/http/mod.rs")).unwrap());
    routes.extend(routes_in(
        &std::fs::read_to_string(format!("{root}/../killkrill-query/src/api.rs")).unwrap(),
    ));
    // gRPC services are described by their .proto files, not OpenAPI.
    routes.retain(|(p, _)| !p.starts_with("/killkrill."));
    assert!(routes.len() >= 25, "{routes:?}");
    for (path, methods) in &routes {
        let path = path.replace("{*labels}", "{labels}");
        let item = paths
            .get(&path)
            .unwrap_or_else(|| panic!("{path} is routed but not documented"));
        for m in methods {
            assert!(
                item.get(m).is_some(),
                "{m} {path} is routed but not documented"
            );
        }
    }
    // And every documented operation is routed (not a 404/405).
    for (path, item) in paths {
        for m in item.as_object().unwrap().keys() {
            let concrete = path
                .replace("{job}", "j")
                .replace("{name}", "job")
                .replace("{labels}", "a/b");
            let routed = routes
                .iter()
                .any(|(p, ms)| p.replace("{*labels}", "{labels}") == *path && ms.contains(m));
            assert!(routed, "{m} {path} is documented but not routed");
            // A GET must be routed; `{id}` paths answer 404 for a missing id.
            if m == "get" && path != "/api/v1/logs/tail" && !path.contains("{id}") {
                let r = get(addr, &concrete).await;
                assert!(
                    r.status != 404 && r.status != 405,
                    "GET {concrete}: {}",
                    r.status
                );
            }
        }
    }
    h.shutdown().await;
}
