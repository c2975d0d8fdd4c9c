//! Read API load benchmark: `killkrill serve` on SQLite over a large store
//! built through the store API, driven over HTTP/1.1 keep-alive by an
//! in-process load client on the same machine.
//!
//! ```text
//! cargo bench -p killkrill-svc --bench query_api -- [--records N] [--series N]
//!     [--connections N] [--seconds S] [--dir PATH]
//! ```
//! Every number is reported with a baseline measured in the same run:
//! log pages against `GET /healthz` (the HTTP floor) and against the same
//! query run in-process on the store (the engine floor); the PromQL range
//! query against a raw `select_samples` of the same 24 h (the store floor).
#![allow(clippy::print_stdout, clippy::print_stderr, clippy::unwrap_used)]

use std::net::SocketAddr;
use std::sync::Arc;
use std::sync::atomic::{AtomicUsize, Ordering};
use std::time::{Duration, Instant};

use killkrill_core::event::{Labels, MetricSample, NANOS_PER_SEC, Severity, Tenant, Timestamp};
use killkrill_core::logquery::{LogFilter, LogQuery, Order, query_logs};
use killkrill_core::storage::{LabelMatcher, LogStore, MetricStore, TimeRange};
use killkrill_store::{Store, StoreConfig};
use killkrill_svc::config::{ListenAddr, ServeConfig};
use killkrill_svc::serve::{self, StartOptions};
use tokio::io::{AsyncReadExt, AsyncWriteExt};
use tokio::net::TcpStream;

#[path = "../../killkrill-store/benches/support/log_data.rs"]
#[allow(dead_code)]
mod log_data;
use log_data::{DAY, NOUNS, RARE, T0, generate};

struct Args {
    records: usize,
    series: usize,
    connections: usize,
    seconds: f64,
    dir: std::path::PathBuf,
}

fn args() -> Args {
    let mut a = Args {
        records: 2_000_000,
        series: 1_000,
        connections: 8,
        seconds: 5.0,
        dir: std::env::temp_dir().join(format!("killkrill-query-bench-{}", std::process::id())),
    };
    let mut it = std::env::args().skip(1);
    while let Some(k) = it.next() {
        let mut v = || it.next().expect("value after flag");
        match k.as_str() {
            "--records" => a.records = v().parse().expect("number"),
            "--series" => a.series = v().parse().expect("number"),
            "--connections" => a.connections = v().parse().expect("number"),
            "--seconds" => a.seconds = v().parse().expect("number"),
            "--dir" => a.dir = v().into(),
            "--bench" => {}
            other => panic!("unknown argument {other}"),
        }
    }
    a
}

fn pct(v: &mut [Duration], p: f64) -> f64 {
    v.sort();
    if v.is_empty() {
        return f64::NAN;
    }
    let i = ((v.len() as f64 - 1.0) * p).round() as usize;
    v[i].as_secs_f64() * 1e3
}

/// One keep-alive GET; returns the status and body length.
async fn get(s: &mut TcpStream, buf: &mut Vec<u8>, path: &str) -> (u16, usize) {
    let req = format!("GET {path} HTTP/1.1\r\nHost: bench\r\n\r\n");
    s.write_all(req.as_bytes()).await.unwrap();
    buf.clear();
    let mut tmp = [0u8; 65_536];
    loop {
        let n = s.read(&mut tmp).await.unwrap();
        assert!(n > 0, "server closed the connection");
        buf.extend_from_slice(&tmp[..n]);
        if let Some(end) = buf.windows(4).position(|w| w == b"\r\n\r\n") {
            let head = std::str::from_utf8(&buf[..end])
                .unwrap()
                .to_ascii_lowercase();
            let status: u16 = head[9..12].parse().unwrap();
            let len: usize = head
                .lines()
                .find_map(|l| l.strip_prefix("content-length:"))
                .map(|v| v.trim().parse().unwrap())
                .expect("content-length");
            while buf.len() < end + 4 + len {
                let n = s.read(&mut tmp).await.unwrap();
                assert!(n > 0);
                buf.extend_from_slice(&tmp[..n]);
            }
            return (status, len);
        }
    }
}

struct Load {
    rps: f64,
    p50: f64,
    p99: f64,
    bytes: f64,
}

/// `connections` clients requesting `path(i)` for `seconds`.
async fn load(
    addr: SocketAddr,
    connections: usize,
    seconds: f64,
    path: Arc<dyn Fn(usize) -> String + Send + Sync>,
) -> Load {
    let counter = Arc::new(AtomicUsize::new(0));
    let deadline = Instant::now() + Duration::from_secs_f64(seconds);
    let mut tasks = Vec::new();
    for _ in 0..connections {
        let path = path.clone();
        let counter = counter.clone();
        tasks.push(tokio::spawn(async move {
            let mut s = TcpStream::connect(addr).await.unwrap();
            s.set_nodelay(true).unwrap();
            let mut buf = Vec::new();
            let mut lat = Vec::new();
            let mut bytes = 0usize;
            while Instant::now() < deadline {
                let i = counter.fetch_add(1, Ordering::Relaxed);
                let p = path(i);
                let t = Instant::now();
                let (status, len) = get(&mut s, &mut buf, &p).await;
                lat.push(t.elapsed());
                assert_eq!(status, 200, "{p}: {}", String::from_utf8_lossy(&buf));
                bytes += len;
            }
            (lat, bytes)
        }));
    }
    let started = Instant::now();
    let mut all = Vec::new();
    let mut bytes = 0usize;
    for t in tasks {
        let (l, b) = t.await.unwrap();
        all.extend(l);
        bytes += b;
    }
    let secs = started.elapsed().as_secs_f64();
    let n = all.len();
    Load {
        rps: n as f64 / secs,
        p50: pct(&mut all, 0.5),
        p99: pct(&mut all, 0.99),
        bytes: bytes as f64 / n.max(1) as f64,
    }
}

/// The same queries in-process on the store, `connections` at once.
async fn engine_load(
    store: &Store,
    connections: usize,
    seconds: f64,
    q: Arc<dyn Fn(usize) -> LogQuery + Send + Sync>,
) -> Load {
    let counter = Arc::new(AtomicUsize::new(0));
    let deadline = Instant::now() + Duration::from_secs_f64(seconds);
    let mut tasks = Vec::new();
    for _ in 0..connections {
        let (q, counter, store) = (q.clone(), counter.clone(), store.clone());
        tasks.push(tokio::spawn(async move {
            let mut lat = Vec::new();
            while Instant::now() < deadline {
                let i = counter.fetch_add(1, Ordering::Relaxed);
                let query = q(i);
                let t = Instant::now();
                let page = query_logs(&store as &dyn LogStore, &query).await.unwrap();
                std::hint::black_box(page);
                lat.push(t.elapsed());
            }
            lat
        }));
    }
    let started = Instant::now();
    let mut all = Vec::new();
    for t in tasks {
        all.extend(t.await.unwrap());
    }
    let secs = started.elapsed().as_secs_f64();
    Load {
        rps: all.len() as f64 / secs,
        p50: pct(&mut all, 0.5),
        p99: pct(&mut all, 0.99),
        bytes: 0.0,
    }
}

fn filter(case: &str, i: usize) -> LogFilter {
    match case {
        "recent" => LogFilter::default(),
        "host" => LogFilter {
            host: Some(format!("web{:02}", i % 20)),
            ..LogFilter::default()
        },
        "severity >= err" => LogFilter {
            min_severity: Some(Severity::Error),
            ..LogFilter::default()
        },
        "err on one host" => LogFilter {
            min_severity: Some(Severity::Error),
            host: Some(format!("web{:02}", i % 20)),
            ..LogFilter::default()
        },
        "full-text" => LogFilter {
            text: Some(NOUNS[i % NOUNS.len()].to_owned()),
            ..LogFilter::default()
        },
        "rare token" => LogFilter {
            text: Some(RARE[i % RARE.len()].to_owned()),
            ..LogFilter::default()
        },
        _ => unreachable!(),
    }
}

fn path_of(case: &str, i: usize) -> String {
    let f = filter(case, i);
    let mut p = format!(
        "/api/v1/logs?start={}&end={}&limit=100",
        T0 / NANOS_PER_SEC,
        (T0 + DAY) / NANOS_PER_SEC
    );
    if let Some(s) = f.min_severity {
        p.push_str(&format!("&severity={}", s.name()));
    }
    if let Some(h) = f.host {
        p.push_str(&format!("&host={h}"));
    }
    if let Some(t) = f.text {
        p.push_str(&format!("&query={t}"));
    }
    p
}

fn main() {
    if std::env::args().any(|a| a == "--list") {
        return;
    }
    let a = args();
    std::fs::create_dir_all(&a.dir).unwrap();
    let rt = tokio::runtime::Builder::new_multi_thread()
        .worker_threads(2)
        .enable_all()
        .build()
        .unwrap();
    rt.block_on(run(a));
}

async fn run(a: Args) {
    let tenant = Tenant::default();
    println!(
        "# query API benchmark: {} log records, {} metric series, {} connections, {} s per case, {} cores",
        a.records,
        a.series,
        a.connections,
        a.seconds,
        std::thread::available_parallelism().map_or(0, usize::from)
    );
    // Build the store.
    let store = Store::open(StoreConfig::sqlite(&a.dir)).await.unwrap();
    let t = Instant::now();
    let chunk = 250_000;
    let mut start = 0;
    while start < a.records {
        let n = chunk.min(a.records - start);
        let recs = generate(n, start, a.records, 11 + start as u64, &tenant);
        let blocks = store.encode(recs).await.unwrap();
        store.write_blocks(&blocks).await.unwrap();
        start += n;
    }
    println!(
        "built the log store: {} records in {:.1} s",
        a.records,
        t.elapsed().as_secs_f64()
    );
    // Metrics: counters x{job, instance} every 15 s over 24 h + 10 min.
    let end_s = (T0 + DAY) / NANOS_PER_SEC;
    let start_s = end_s - 86_400 - 600;
    let t = Instant::now();
    let mut total = 0usize;
    for group in (0..a.series).collect::<Vec<_>>().chunks(50) {
        let mut v = Vec::new();
        for &s in group {
            let rate = 1.0 + (s % 7) as f64;
            let labels = Labels::from_pairs([
                ("job", format!("job-{}", s % 10)),
                ("instance", format!("i-{s}")),
            ]);
            for k in 0..=((end_s - start_s) / 15) {
                v.push(MetricSample {
                    name: "x".into(),
                    labels: labels.clone(),
                    value: rate * (k * 15) as f64,
                    timestamp: Some(Timestamp::from_secs(start_s + k * 15)),
                    ..MetricSample::default()
                });
            }
        }
        total += v.len();
        store.write_samples(&tenant, &v).await.unwrap();
    }
    println!(
        "built the metric store: {} series, {total} samples in {:.1} s",
        a.series,
        t.elapsed().as_secs_f64()
    );
    store.close().await;

    let any = ListenAddr::on(SocketAddr::from(([127, 0, 0, 1], 0)));
    let mut c = ServeConfig {
        data_dir: a.dir.clone(),
        http: any,
        syslog_udp: ListenAddr::OFF,
        syslog_tcp: ListenAddr::OFF,
        syslog_tls: ListenAddr::OFF,
        ..ServeConfig::default()
    };
    c.maintenance.interval_secs = 0;
    c.workers.count = 1;
    c.query.max_range_secs = 400 * 86_400;
    c.query.max_points = 100_000_000;
    c.query.timeout_ms = 600_000;
    // Measured without authentication (development mode), as the numbers in
    // docs/src/benchmarks/query.md were; with an API key each request adds
    // one indexed key lookup.
    c.auth.mode = killkrill_svc::auth::AuthMode::Disabled;
    let h = serve::start_with(
        c,
        StartOptions {
            store: Some(StoreConfig::sqlite(&a.dir)),
            ..StartOptions::default()
        },
    )
    .await
    .unwrap();
    let addr = h.http.unwrap();
    let store = h.store.clone();

    let base = load(
        addr,
        a.connections,
        a.seconds,
        Arc::new(|_| "/healthz".to_owned()),
    )
    .await;
    println!(
        "| GET /healthz (HTTP floor) | {:.0} req/s | p50 {:.2} ms | p99 {:.2} ms | |",
        base.rps, base.p50, base.p99
    );
    println!(
        "| case | HTTP req/s | p50 | p99 | bytes/resp | engine in-process req/s (p99) | HTTP / engine | HTTP / healthz |"
    );
    for case in [
        "recent",
        "host",
        "severity >= err",
        "err on one host",
        "full-text",
        "rare token",
    ] {
        let http = load(
            addr,
            a.connections,
            a.seconds,
            Arc::new(move |i| path_of(case, i)),
        )
        .await;
        let t2 = tenant.clone();
        let eng = engine_load(
            &store,
            a.connections,
            a.seconds,
            Arc::new(move |i| LogQuery {
                tenant: t2.clone(),
                range: TimeRange::new(Timestamp::from_nanos(T0), Timestamp::from_nanos(T0 + DAY)),
                filter: filter(case, i),
                order: Order::NewestFirst,
                limit: 100,
                cursor: None,
            }),
        )
        .await;
        println!(
            "| {case} | {:.0} | {:.2} ms | {:.2} ms | {:.0} | {:.0} ({:.2} ms) | {:.2} | {:.3} |",
            http.rps,
            http.p50,
            http.p99,
            http.bytes,
            eng.rps,
            eng.p99,
            http.rps / eng.rps,
            http.rps / base.rps
        );
    }

    // PromQL: sum by (job) (rate(x[5m])) over 24 h at 1 min.
    let q = "sum%20by%20(job)%20(rate(x%5B5m%5D))";
    let path = format!(
        "/api/v1/query_range?query={q}&start={}&end={end_s}&step=60",
        end_s - 86_400
    );
    let mut promql = Vec::new();
    let mut raw = Vec::new();
    let ms = [LabelMatcher::eq("__name__", "x")];
    let range = TimeRange::new(
        Timestamp::from_secs(end_s - 86_400 - 300),
        Timestamp::from_secs(end_s + 1),
    );
    let mut s = TcpStream::connect(addr).await.unwrap();
    let mut buf = Vec::new();
    let mut bytes = 0;
    for i in 0..6 {
        let t = Instant::now();
        let got = store.select_samples(&tenant, &ms, range).await.unwrap();
        let n: usize = got.iter().map(|s| s.points.len()).sum();
        std::hint::black_box(n);
        if i > 0 {
            raw.push(t.elapsed());
        }
        let t = Instant::now();
        let (status, len) = get(&mut s, &mut buf, &path).await;
        assert_eq!(status, 200, "{}", String::from_utf8_lossy(&buf));
        bytes = len;
        if i > 0 {
            promql.push(t.elapsed());
        }
    }
    let (p, r) = (pct(&mut promql, 0.5), pct(&mut raw, 0.5));
    println!(
        "| query_range sum by (job) (rate(x[5m])) 24 h / 1 min, {} series | p50 {p:.0} ms (max {:.0} ms), {bytes} bytes | raw select_samples of the same 24 h: p50 {r:.0} ms | PromQL / raw read {:.2} |",
        a.series,
        promql.iter().max().unwrap().as_secs_f64() * 1e3,
        p / r
    );
    h.shutdown().await;
    let _ = std::fs::remove_dir_all(&a.dir);
}
