//! Shared by the `serve` tests: a config on ephemeral ports, a minimal
//! HTTP/1.1 client over a real socket, and reading the store back through
//! core's query engine.
#![allow(dead_code, clippy::unwrap_used, clippy::print_stderr)]

use std::net::SocketAddr;
use std::path::Path;
use std::time::{Duration, Instant};

use killkrill_core::event::{LogRecord, Tenant};
use killkrill_core::logquery::{LogFilter, LogQuery, Order, query_logs};
use killkrill_core::storage::TimeRange;
use killkrill_store::Store;
use killkrill_svc::config::{ListenAddr, ServeConfig};
use tokio::io::{AsyncReadExt, AsyncWriteExt};
use tokio::net::TcpStream;

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

/// One request on a new connection (`Connection: close`).
pub async fn http(
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
    let mut raw = Vec::new();
    s.read_to_end(&mut raw).await.unwrap();
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
        loop {
            let nl = rest.windows(2).position(|w| w == b"\r\n").unwrap();
            let size = usize::from_str_radix(std::str::from_utf8(&rest[..nl]).unwrap().trim(), 16)
                .unwrap();
            rest = &rest[nl + 2..];
            if size == 0 {
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
    let q = LogQuery {
        tenant: Tenant::default(),
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

/// The first word after `key` in a line such as `killkrill serve: http
/// 127.0.0.1:4000 syslog-udp off ...`, as an address.
pub fn addr_after(line: &str, key: &str) -> Option<SocketAddr> {
    let mut words = line.split_whitespace();
    words.find(|w| *w == key)?;
    words.next()?.parse().ok()
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
    let mut child = c.spawn().unwrap();
    let mut first = String::new();
    std::io::BufReader::new(child.stdout.take().unwrap())
        .read_line(&mut first)
        .unwrap();
    assert!(
        first.starts_with(&format!("killkrill {command}: ")),
        "{command}: {first:?}"
    );
    (child, first)
}
