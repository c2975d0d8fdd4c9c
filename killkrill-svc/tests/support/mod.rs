//! Shared by the `serve` tests: a config on ephemeral ports, a minimal
//! HTTP/1.1 client over a real socket, and reading the store back through
//! core's query engine.
#![allow(dead_code, clippy::unwrap_used, clippy::print_stderr)]

use std::collections::HashMap;
use std::net::SocketAddr;
use std::path::Path;
use std::sync::{Arc, Mutex, OnceLock};
use std::time::{Duration, Instant};

use killkrill_core::event::{LogRecord, Tenant};
use killkrill_core::logquery::{LogFilter, LogQuery, Order, query_logs};
use killkrill_core::storage::TimeRange;
use killkrill_store::Store;
use killkrill_svc::auth::bootstrap::BootstrapCredentials;
use killkrill_svc::config::{ListenAddr, ServeConfig};
use killkrill_svc::serve::{self, ServeHandle, StartOptions};
use tokio::io::{AsyncReadExt, AsyncWriteExt};
use tokio::net::TcpStream;

pub mod grpc;

/// Every listener on 127.0.0.1 port 0 (TLS off), SQLite in `dir`, fast batching.
pub fn config(dir: &Path) -> ServeConfig {
    let any = ListenAddr::on(SocketAddr::from(([127, 0, 0, 1], 0)));
    let mut c = ServeConfig {
        data_dir: dir.to_path_buf(),
        http: any,
        syslog_udp: any,
        syslog_tcp: any,
        syslog_tls: ListenAddr::OFF,
        ..ServeConfig::default()
    };
    c.syslog.batch_linger_ms = 20;
    c.workers.drain_timeout_secs = 10;
    c
}

/// The bootstrap credentials of each running server, by HTTP address:
/// [`http`] sends the API key unless the request has its own credentials.
fn keys() -> &'static Mutex<HashMap<SocketAddr, BootstrapCredentials>> {
    static K: OnceLock<Mutex<HashMap<SocketAddr, BootstrapCredentials>>> = OnceLock::new();
    K.get_or_init(|| Mutex::new(HashMap::new()))
}

/// Remembers the credentials of `h` (from its first start, or the file in
/// `data_dir` a previous start wrote), so [`http`] authenticates.
pub fn register(h: &ServeHandle, data_dir: &Path) -> BootstrapCredentials {
    let creds = match &h.bootstrap {
        Some((c, _)) => c.clone(),
        None => BootstrapCredentials::read(data_dir).expect("bootstrap credentials file"),
    };
    if let Some(a) = h.http {
        keys().lock().unwrap().insert(a, creds.clone());
    }
    creds
}

/// The bootstrap credentials of the server at `addr`.
pub fn creds(addr: SocketAddr) -> BootstrapCredentials {
    keys()
        .lock()
        .unwrap()
        .get(&addr)
        .cloned()
        .expect("registered server")
}

/// The ingest+read API key of the server at `addr`.
pub fn api_key(addr: SocketAddr) -> String {
    creds(addr).api_key
}

/// `serve::start` and [`register`].
pub async fn start(cfg: ServeConfig) -> Result<ServeHandle, serve::StartError> {
    start_with(cfg, StartOptions::default()).await
}

/// `serve::start_with` and [`register`].
pub async fn start_with(
    cfg: ServeConfig,
    opts: StartOptions,
) -> Result<ServeHandle, serve::StartError> {
    let dir = cfg.data_dir.clone();
    let h = serve::start_with(cfg, opts).await?;
    register(&h, &dir);
    Ok(h)
}

/// An HTTP response.
#[derive(Debug)]
pub struct Resp {
    pub status: u16,
    pub headers: Vec<(String, String)>,
    pub body: Vec<u8>,
}

impl Resp {
    pub fn header(&self, name: &str) -> Option<&str> {
        self.headers
            .iter()
            .find(|(k, _)| k.eq_ignore_ascii_case(name))
            .map(|(_, v)| v.as_str())
    }

    pub fn json(&self) -> serde_json::Value {
        serde_json::from_slice(&self.body).unwrap_or_else(|e| {
            panic!(
                "status {} body is not JSON ({e}): {}",
                self.status,
                String::from_utf8_lossy(&self.body)
            )
        })
    }

    pub fn text(&self) -> String {
        String::from_utf8_lossy(&self.body).into_owned()
    }
}

/// One request on a new connection (`Connection: close`), with the
/// server's bootstrap API key unless `headers` carry credentials (an empty
/// `X-API-Key` value sends none).
pub async fn http(
    addr: SocketAddr,
    method: &str,
    path: &str,
    headers: &[(&str, &str)],
    body: &[u8],
) -> Resp {
    let own = headers.iter().any(|(k, _)| {
        k.eq_ignore_ascii_case("authorization") || k.eq_ignore_ascii_case("x-api-key")
    });
    let key = keys().lock().unwrap().get(&addr).map(|c| c.api_key.clone());
    let mut all: Vec<(&str, &str)> = headers
        .iter()
        .filter(|(k, v)| !(k.eq_ignore_ascii_case("x-api-key") && v.is_empty()))
        .copied()
        .collect();
    if !own && let Some(k) = &key {
        all.push(("X-API-Key", k.as_str()));
    }
    raw_http(addr, method, path, &all, body).await
}

/// One request exactly as given (no credentials added).
pub async fn raw_http(
    addr: SocketAddr,
    method: &str,
    path: &str,
    headers: &[(&str, &str)],
    body: &[u8],
) -> Resp {
    let mut s = TcpStream::connect(addr).await.unwrap();
    let mut req = format!(
        "{method} {path} HTTP/1.1\r\nHost: {addr}\r\nConnection: close\r\nContent-Length: {}\r\n",
        body.len()
    );
    for (k, v) in headers {
        req.push_str(&format!("{k}: {v}\r\n"));
    }
    req.push_str("\r\n");
    s.write_all(req.as_bytes()).await.unwrap();
    // The server may answer (413) before reading the whole body.
    let _ = s.write_all(body).await;
    // Read to the end, except for an endless Server-Sent Events stream
    // (live tail): its head is the answer.
    let mut raw = Vec::new();
    let mut buf = [0u8; 16 * 1024];
    loop {
        let n = s.read(&mut buf).await.unwrap();
        if n == 0 {
            break;
        }
        raw.extend_from_slice(&buf[..n]);
        if let Some(end) = raw.windows(4).position(|w| w == b"\r\n\r\n") {
            let head = String::from_utf8_lossy(&raw[..end]).to_ascii_lowercase();
            if head.contains("content-type: text/event-stream") {
                break;
            }
        }
    }
    parse_response(&raw)
}

fn parse_response(raw: &[u8]) -> Resp {
    let end = raw
        .windows(4)
        .position(|w| w == b"\r\n\r\n")
        .expect("a complete response head");
    let head = String::from_utf8_lossy(&raw[..end]).into_owned();
    let mut lines = head.split("\r\n");
    let status: u16 = lines
        .next()
        .unwrap()
        .split(' ')
        .nth(1)
        .unwrap()
        .parse()
        .unwrap();
    let headers: Vec<(String, String)> = lines
        .filter_map(|l| l.split_once(':'))
        .map(|(k, v)| (k.trim().to_owned(), v.trim().to_owned()))
        .collect();
    let mut body = raw[end + 4..].to_vec();
    let chunked = headers
        .iter()
        .any(|(k, v)| k.eq_ignore_ascii_case("transfer-encoding") && v.contains("chunked"));
    if chunked {
        let mut out = Vec::new();
        let mut rest = &body[..];
        // A stream cut short (a live tail read up to its head) ends the
        // body where it stops.
        while let Some(nl) = rest.windows(2).position(|w| w == b"\r\n") {
            let size = usize::from_str_radix(std::str::from_utf8(&rest[..nl]).unwrap().trim(), 16)
                .unwrap();
            rest = &rest[nl + 2..];
            if size == 0 {
                break;
            }
            if rest.len() < size + 2 {
                out.extend_from_slice(&rest[..size.min(rest.len())]);
                break;
            }
            out.extend_from_slice(&rest[..size]);
            rest = &rest[size + 2..];
        }
        body = out;
    }
    Resp {
        status,
        headers,
        body,
    }
}

/// Every stored record of the default tenant, oldest first.
pub async fn stored(store: &Store) -> Vec<LogRecord> {
    stored_in(store, &Tenant::default()).await
}

/// Every stored record of `tenant`, oldest first.
pub async fn stored_in(store: &Store, tenant: &Tenant) -> Vec<LogRecord> {
    let q = LogQuery {
        tenant: tenant.clone(),
        range: TimeRange::ALL,
        filter: LogFilter::default(),
        order: Order::OldestFirst,
        limit: 10_000,
        cursor: None,
    };
    query_logs(store, &q).await.unwrap().records
}

/// Waits until at least `n` records are stored (at most 10 s).
pub async fn wait_stored(store: &Store, n: usize) -> Vec<LogRecord> {
    let start = Instant::now();
    loop {
        let r = stored(store).await;
        if r.len() >= n || start.elapsed() > Duration::from_secs(10) {
            return r;
        }
        tokio::time::sleep(Duration::from_millis(25)).await;
    }
}

/// The stored record whose message is `msg`.
pub fn by_message<'a>(records: &'a [LogRecord], msg: &str) -> &'a LogRecord {
    records
        .iter()
        .find(|r| r.message_str().as_deref() == Some(msg))
        .unwrap_or_else(|| {
            let all: Vec<_> = records.iter().map(|r| r.message_str()).collect();
            panic!("no record with message {msg:?} among {all:?}")
        })
}

/// The value of one series in a Prometheus exposition (`name{labels}` as
/// rendered, labels in the exporter's order), 0 when absent.
pub fn metric_value(exposition: &str, series_prefix: &str) -> f64 {
    exposition
        .lines()
        .filter(|l| !l.starts_with('#'))
        .filter(|l| l.starts_with(series_prefix))
        .filter_map(|l| l.rsplit(' ').next()?.parse::<f64>().ok())
        .sum()
}

/// Sum of a metric over every series carrying all of `labels`.
pub fn metric_sum(exposition: &str, name: &str, labels: &[(&str, &str)]) -> f64 {
    exposition
        .lines()
        .filter(|l| !l.starts_with('#'))
        .filter(|l| l.starts_with(name) && l[name.len()..].starts_with(['{', ' ']))
        .filter(|l| {
            labels
                .iter()
                .all(|(k, v)| l.contains(&format!("{k}=\"{v}\"")))
        })
        .filter_map(|l| l.rsplit(' ').next()?.parse::<f64>().ok())
        .sum()
}

/// `GET /metrics`.
pub async fn scrape(addr: SocketAddr) -> String {
    let r = http(addr, "GET", "/metrics", &[], b"").await;
    assert_eq!(r.status, 200);
    r.text()
}

/// A fresh PostgreSQL schema or MySQL database for one test, dropped by
/// [`ScopedDb::drop_db`]. `None` (with the reason printed) when the test
/// URL is unset.
pub struct ScopedDb {
    pub config: killkrill_store::StoreConfig,
    url: String,
    drop_sql: String,
}

fn unique_name(prefix: &str) -> String {
    let n = killkrill_core::event::Timestamp::now().as_nanos() as u64
        ^ (u64::from(std::process::id()) << 40);
    format!("{prefix}_{n:x}")
}

/// A schema `prefix_<unique>` on `KILLKRILL_TEST_POSTGRES_URL`.
pub async fn postgres_db(prefix: &str) -> Option<ScopedDb> {
    use sqlx::Connection;
    let Ok(url) = std::env::var("KILLKRILL_TEST_POSTGRES_URL") else {
        eprintln!("skipping: KILLKRILL_TEST_POSTGRES_URL is not set");
        return None;
    };
    let schema = unique_name(prefix);
    let mut c = sqlx::PgConnection::connect(&url).await.unwrap();
    sqlx::query(sqlx::AssertSqlSafe(format!("CREATE SCHEMA {schema}")))
        .execute(&mut c)
        .await
        .unwrap();
    let sep = if url.contains('?') { '&' } else { '?' };
    let scoped = format!("{url}{sep}options=-c%20search_path%3D{schema}");
    Some(ScopedDb {
        config: killkrill_store::StoreConfig::from_url(killkrill_store::DbType::Postgres, scoped),
        url,
        drop_sql: format!("DROP SCHEMA {schema} CASCADE"),
    })
}

/// A database `prefix_<unique>` on `KILLKRILL_TEST_MYSQL_URL`.
pub async fn mysql_db(prefix: &str) -> Option<ScopedDb> {
    use sqlx::Connection;
    let Ok(url) = std::env::var("KILLKRILL_TEST_MYSQL_URL") else {
        eprintln!("skipping: KILLKRILL_TEST_MYSQL_URL is not set");
        return None;
    };
    let db = unique_name(prefix);
    let mut c = sqlx::MySqlConnection::connect(&url).await.unwrap();
    sqlx::query(sqlx::AssertSqlSafe(format!("CREATE DATABASE {db}")))
        .execute(&mut c)
        .await
        .unwrap();
    let base = url.rsplit_once('/').map_or(url.as_str(), |(b, _)| b);
    Some(ScopedDb {
        config: killkrill_store::StoreConfig::from_url(
            killkrill_store::DbType::Mysql,
            format!("{base}/{db}"),
        ),
        url,
        drop_sql: format!("DROP DATABASE {db}"),
    })
}

impl ScopedDb {
    /// Drops the schema or database.
    pub async fn drop_db(self) {
        use sqlx::Connection;
        let sql = sqlx::AssertSqlSafe(self.drop_sql);
        match self.config.db_type {
            killkrill_store::DbType::Postgres => {
                let mut c = sqlx::PgConnection::connect(&self.url).await.unwrap();
                sqlx::query(sql).execute(&mut c).await.unwrap();
            }
            _ => {
                let mut c = sqlx::MySqlConnection::connect(&self.url).await.unwrap();
                sqlx::query(sql).execute(&mut c).await.unwrap();
            }
        }
    }
}

/// Asserts that `got` (a stored, merged rollup) equals the rollup of
/// `points` recomputed at once, field by field; the increase only when the
/// stored counter state says it is exact.
pub fn assert_same_rollup(
    got: &killkrill_core::aggregate::Rollup,
    points: &[killkrill_core::aggregate::Point],
    ctx: &str,
) {
    let m = killkrill_core::aggregate::Rollup::from_points(
        points.iter().copied(),
        got.sketch().map(|s| s.params()),
    )
    .unwrap();
    assert_eq!(got.count(), m.count(), "{ctx}: count");
    assert_eq!(got.sum().to_bits(), m.sum().to_bits(), "{ctx}: sum");
    assert_eq!(got.min().to_bits(), m.min().to_bits(), "{ctx}: min");
    assert_eq!(got.max().to_bits(), m.max().to_bits(), "{ctx}: max");
    assert_eq!(got.first(), m.first(), "{ctx}: first");
    assert_eq!(got.last(), m.last(), "{ctx}: last");
    if got.counter().is_exact() {
        assert_eq!(got.increase(), m.increase(), "{ctx}: increase");
    }
    for q in [0.0, 0.5, 0.99, 1.0] {
        assert_eq!(got.quantile(q), m.quantile(q), "{ctx}: q{q}");
    }
}

/// A metric sink that keeps every sample handed to it, to assert what arrived.
#[derive(Default)]
pub struct Recording(pub Mutex<Vec<killkrill_core::event::MetricSample>>);

#[async_trait::async_trait]
impl killkrill_svc::serve::sinks::MetricSink for Recording {
    fn name(&self) -> &str {
        "recording"
    }

    async fn write_metrics(
        &self,
        batches: &[Arc<killkrill_core::pipeline::Batch>],
    ) -> Result<(), killkrill_core::pipeline::SinkError> {
        let mut v = self.0.lock().unwrap();
        for b in batches {
            v.extend(b.metrics.iter().cloned());
        }
        Ok(())
    }
}

/// The first word after `key` in a line such as `killkrill serve: http
/// 127.0.0.1:4000 syslog-udp off ...`, as an address.
pub fn addr_after(line: &str, key: &str) -> Option<SocketAddr> {
    let mut words = line.split_whitespace();
    words.find(|w| *w == key)?;
    words.next()?.parse().ok()
}

/// The `killkrill` binary running `command` on `data`: HTTP and syslog
/// TCP on free ports, UDP and TLS off, the embedded default (no `DB_TYPE`,
/// `DATABASE_URL`), `RUST_LOG=warn` unless `env` says otherwise, stdout
/// piped, stderr inherited.
pub fn killkrill_command(
    command: &str,
    data: &Path,
    env: &[(&str, &str)],
) -> std::process::Command {
    let mut c = std::process::Command::new(env!("CARGO_BIN_EXE_killkrill"));
    c.args([command, "--data-dir"]).arg(data).args([
        "--http",
        "127.0.0.1:0",
        "--syslog-udp",
        "",
        "--syslog-tcp",
        "127.0.0.1:0",
        "--syslog-tls",
        "",
    ]);
    c.env_remove("DB_TYPE")
        .env_remove("DATABASE_URL")
        .env("RUST_LOG", "warn")
        .stdout(std::process::Stdio::piped())
        .stderr(std::process::Stdio::inherit());
    for (k, v) in env {
        c.env(k, v);
    }
    c
}

/// Starts the real binary, `killkrill <command>`, with `data` as its data
/// directory, HTTP and syslog TCP on free ports (UDP and TLS off), the
/// database variables removed unless `env` sets them; returns the child and
/// the first line it printed (the bound addresses).
pub fn spawn_killkrill(
    command: &str,
    data: &Path,
    env: &[(&str, &str)],
) -> (std::process::Child, String) {
    use std::io::BufRead;
    let mut c = killkrill_command(command, data, env);
    let mut child = c.spawn().unwrap();
    // A first start prints the bootstrap credentials before the addresses.
    let mut out = std::io::BufReader::new(child.stdout.take().unwrap());
    let mut first = String::new();
    while out.read_line(&mut first).unwrap() > 0
        && (!first.starts_with(&format!("killkrill {command}: ")) || first.contains("first start:"))
    {
        first.clear();
    }
    assert!(
        first.starts_with(&format!("killkrill {command}: ")),
        "{command}: {first:?}"
    );
    (child, first)
}
