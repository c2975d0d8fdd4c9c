//! Read API load benchmark: `killkrill serve` on SQLite over a large store
//! built through the store API, driven over HTTP/1.1 keep-alive by an
//! in-process load client on the same machine.
//!
//! ```text
//! cargo bench -p killkrill-svc --bench query_api -- [--records N] [--series N]
//!     [--connections N] [--seconds S] [--dir PATH] [--keep] [--auth on|off]
//!     [--wrk] [--cases recent,host,...] [--skip-metrics] [--postgres URL]
//! ```
//! `--keep` leaves the store in `--dir` and reuses it on the next run when
//! it holds the same number of records (a 10,000,000-record store takes
//! minutes to build: build it once). `--auth on` (the default) sends the
//! bootstrap API key on every request, the real path; `--auth off` runs the
//! server in development mode. `--wrk` also drives each case with `wrk`
//! (Debian package `wrk`) beside the in-process client. `--postgres URL`
//! stores in PostgreSQL instead of SQLite (the database must be empty or
//! hold this bench's data).
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
use killkrill_core::logquery::{LogFilter, LogQuery, Order, VolumeQuery, query_logs, query_volume};
use killkrill_core::storage::{LabelMatcher, LogStore, MetricStore, TimeRange};
use killkrill_store::{Store, StoreConfig};
use killkrill_svc::config::{ListenAddr, ServeConfig};
use killkrill_svc::serve::{self, StartOptions};
use tokio::io::{AsyncReadExt, AsyncWriteExt};
use tokio::net::TcpStream;

/// The allocator the `killkrill` binary ships with (`src/main.rs`): the
/// server measured here allocates as it does in production.
#[global_allocator]
static GLOBAL: mimalloc::MiMalloc = mimalloc::MiMalloc;

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
    keep: bool,
    auth: bool,
    wrk: bool,
    cases: Option<Vec<String>>,
    skip_metrics: bool,
    postgres: Option<String>,
}

/// The `Authorization` header line (with CRLF) sent on every request, or
/// empty with `--auth off`.
static AUTH_HEADER: std::sync::OnceLock<String> = std::sync::OnceLock::new();

fn args() -> Args {
    let mut a = Args {
        records: 2_000_000,
        series: 1_000,
        connections: 8,
        seconds: 5.0,
        dir: std::env::temp_dir().join(format!("killkrill-query-bench-{}", std::process::id())),
        keep: false,
        auth: true,
        wrk: false,
        cases: None,
        skip_metrics: false,
        postgres: None,
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
            "--keep" => a.keep = true,
            "--auth" => a.auth = v() != "off",
            "--wrk" => a.wrk = true,
            "--skip-metrics" => a.skip_metrics = true,
            "--postgres" => a.postgres = Some(v()),
            "--cases" => a.cases = Some(v().split(',').map(str::to_owned).collect()),
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
    let auth = AUTH_HEADER.get().map_or("", String::as_str);
    let req = format!("GET {path} HTTP/1.1\r\nHost: bench\r\n{auth}\r\n");
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

/// One in-process query of a case (the engine floor: no HTTP, no JSON).
type EngineQuery = Arc<
    dyn Fn(Store, usize) -> std::pin::Pin<Box<dyn std::future::Future<Output = ()> + Send>>
        + Send
        + Sync,
>;

/// The same queries in-process on the store, `connections` at once.
async fn engine_load(store: &Store, connections: usize, seconds: f64, q: EngineQuery) -> Load {
    let counter = Arc::new(AtomicUsize::new(0));
    let deadline = Instant::now() + Duration::from_secs_f64(seconds);
    let mut tasks = Vec::new();
    for _ in 0..connections {
        let (q, counter, store) = (q.clone(), counter.clone(), store.clone());
        tasks.push(tokio::spawn(async move {
            let mut lat = Vec::new();
            while Instant::now() < deadline {
                let i = counter.fetch_add(1, Ordering::Relaxed);
                let t = Instant::now();
                q(store.clone(), i).await;
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

/// The engine query of `case`.
fn engine_query(case: &'static str, tenant: Tenant) -> EngineQuery {
    Arc::new(move |store: Store, i: usize| {
        let tenant = tenant.clone();
        Box::pin(async move {
            let range = TimeRange::new(Timestamp::from_nanos(T0), Timestamp::from_nanos(T0 + DAY));
            if case == "volume 24 h" {
                let q = VolumeQuery {
                    tenant,
                    range,
                    filter: LogFilter::default(),
                    step_nanos: VOLUME_STEP_SECS * NANOS_PER_SEC,
                };
                std::hint::black_box(query_volume(&store as &dyn LogStore, &q).await.unwrap());
            } else {
                let q = LogQuery {
                    tenant,
                    range,
                    filter: filter(case, i),
                    order: Order::NewestFirst,
                    limit: 100,
                    cursor: None,
                };
                std::hint::black_box(query_logs(&store as &dyn LogStore, &q).await.unwrap());
            }
        })
    })
}

/// Bucket width of the volume case (what the API picks by default for a
/// day: about 100 buckets).
const VOLUME_STEP_SECS: i64 = 900;

/// Runs `wrk` on `case` (paths cycled by a Lua script); `None` when `wrk`
/// is not installed or its output does not parse.
fn wrk_load(
    addr: SocketAddr,
    connections: usize,
    seconds: f64,
    case: &str,
    dir: &std::path::Path,
) -> Option<Load> {
    let paths: Vec<String> = (0..80).map(|i| path_of(case, i)).collect();
    let mut lua = String::from("local paths = {\n");
    for p in &paths {
        lua.push_str(&format!("  \"{p}\",\n"));
    }
    lua.push_str("}\nlocal i = 0\n");
    if let Some(h) = AUTH_HEADER.get().filter(|h| !h.is_empty()) {
        let v = h.trim_end().trim_start_matches("Authorization: ");
        lua.push_str(&format!("wrk.headers[\"Authorization\"] = \"{v}\"\n"));
    }
    lua.push_str(
        "request = function()\n  i = i + 1\n  return wrk.format(\"GET\", paths[(i % #paths) + 1])\nend\n",
    );
    lua.push_str("done = function(summary, latency, requests)\n  io.write(string.format(\"KK %d %d %d %d %d\\n\", summary.requests, summary.duration, latency:percentile(50), latency:percentile(99), summary.bytes))\n  io.write(string.format(\"KKERR %d %d\\n\", summary.errors.status, summary.errors.connect + summary.errors.read + summary.errors.write + summary.errors.timeout))\nend\n");
    let script = dir.join("bench.lua");
    std::fs::write(&script, lua).ok()?;
    let out = std::process::Command::new("wrk")
        .args([
            "-t2",
            &format!("-c{connections}"),
            &format!("-d{}s", seconds.ceil() as u64),
            "-s",
        ])
        .arg(&script)
        .arg(format!("http://{addr}"))
        .output()
        .ok()?;
    let text = String::from_utf8_lossy(&out.stdout);
    let line = text.lines().find_map(|l| l.strip_prefix("KK "))?;
    let v: Vec<f64> = line.split(' ').filter_map(|x| x.parse().ok()).collect();
    let errs = text
        .lines()
        .find_map(|l| l.strip_prefix("KKERR "))
        .unwrap_or("?");
    assert!(
        errs == "0 0",
        "wrk saw errors (non-2xx, socket) for {case}: {errs}\n{text}"
    );
    let [n, us, p50, p99, bytes] = v[..] else {
        return None;
    };
    Some(Load {
        rps: n / (us / 1e6),
        p50: p50 / 1e3,
        p99: p99 / 1e3,
        bytes: bytes / n.max(1.0),
    })
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
    if case == "volume 24 h" {
        return format!(
            "/api/v1/logs/volume?start={}&end={}&step={VOLUME_STEP_SECS}s",
            T0 / NANOS_PER_SEC,
            (T0 + DAY) / NANOS_PER_SEC
        );
    }
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
    // Build the store (or reuse one a `--keep` run left).
    // `DB_INDEX_RECHECK_MS` as the binary reads it (0: every query reads
    // the block generation, as before it was trusted).
    let recheck = std::env::var("DB_INDEX_RECHECK_MS")
        .ok()
        .map(|v| v.parse::<u64>().expect("DB_INDEX_RECHECK_MS: milliseconds"));
    let store_cfg = || {
        let mut c = match &a.postgres {
            Some(url) => StoreConfig::from_url(killkrill_store::DbType::Postgres, url.clone()),
            None => StoreConfig::sqlite(&a.dir),
        };
        c.logs.index_recheck_ms = recheck;
        c
    };
    let marker = a.dir.join("bench-records.txt");
    let built = std::fs::read_to_string(&marker).ok() == Some(a.records.to_string());
    let store = Store::open(store_cfg()).await.unwrap();
    let t = Instant::now();
    let chunk = 250_000;
    let mut start = if built { a.records } else { 0 };
    if built {
        println!(
            "reusing the store in {} ({} records)",
            a.dir.display(),
            a.records
        );
    }
    while start < a.records {
        let n = chunk.min(a.records - start);
        let recs = generate(n, start, a.records, 11 + start as u64, &tenant);
        let blocks = store.encode(recs).await.unwrap();
        store.write_blocks(&blocks).await.unwrap();
        start += n;
    }
    if !built {
        println!(
            "built the log store: {} records in {:.1} s ({:.0} records/s)",
            a.records,
            t.elapsed().as_secs_f64(),
            a.records as f64 / t.elapsed().as_secs_f64()
        );
    }
    // Metrics: counters x{job, instance} every 15 s over 24 h + 10 min.
    let end_s = (T0 + DAY) / NANOS_PER_SEC;
    let start_s = end_s - 86_400 - 600;
    let t = Instant::now();
    let mut total = 0usize;
    let series = if built || a.skip_metrics { 0 } else { a.series };
    for group in (0..series).collect::<Vec<_>>().chunks(50) {
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
    if a.keep {
        std::fs::write(&marker, a.records.to_string()).unwrap();
    }

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
    // `--auth off`: development mode (no credentials); otherwise every
    // request carries the bootstrap API key, as a real client's would.
    if !a.auth {
        c.auth.mode = killkrill_svc::auth::AuthMode::Disabled;
    }
    let h = serve::start_with(
        c,
        StartOptions {
            store: Some(store_cfg()),
            ..StartOptions::default()
        },
    )
    .await
    .unwrap();
    let addr = h.http.unwrap();
    if a.auth {
        let creds = match &h.bootstrap {
            Some((c, _)) => c.clone(),
            None => killkrill_svc::auth::bootstrap::BootstrapCredentials::read(&a.dir).unwrap(),
        };
        AUTH_HEADER
            .set(format!("Authorization: Bearer {}\r\n", creds.api_key))
            .unwrap();
    }
    println!(
        "auth: {}",
        if a.auth {
            "API key on every request"
        } else {
            "off"
        }
    );
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
    let all_cases = [
        "recent",
        "host",
        "severity >= err",
        "err on one host",
        "full-text",
        "rare token",
        "volume 24 h",
    ];
    for case in all_cases {
        if a.cases
            .as_ref()
            .is_some_and(|c| !c.iter().any(|x| x == case))
        {
            continue;
        }
        let http = load(
            addr,
            a.connections,
            a.seconds,
            Arc::new(move |i| path_of(case, i)),
        )
        .await;
        let eng = engine_load(
            &store,
            a.connections,
            a.seconds,
            engine_query(case, tenant.clone()),
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
        if a.wrk {
            let dir = a.dir.clone();
            let w = tokio::task::spawn_blocking(move || {
                wrk_load(addr, a.connections, a.seconds, case, &dir)
            })
            .await
            .unwrap();
            match w {
                Some(w) => println!(
                    "| {case} (wrk) | {:.0} | {:.2} ms | {:.2} ms | {:.0} | | | {:.3} |",
                    w.rps,
                    w.p50,
                    w.p99,
                    w.bytes,
                    w.rps / base.rps
                ),
                None => println!("| {case} (wrk) | wrk not run (not installed?) |"),
            }
        }
    }
    println!(
        "summary index after the log cases: {:?}",
        store.summary_index_stats()
    );
    if a.skip_metrics || built {
        h.shutdown().await;
        if !a.keep {
            let _ = std::fs::remove_dir_all(&a.dir);
        }
        return;
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
    if !a.keep {
        let _ = std::fs::remove_dir_all(&a.dir);
    }
}
