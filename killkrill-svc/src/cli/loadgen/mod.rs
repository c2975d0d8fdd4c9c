//! `killkrill loadgen`: a load generator for the receivers, with a
//! read-back check.
//!
//! Every record carries `lg <run> <seq>` (a run id and a sequence number
//! unique in the run) at the start of its message (syslog, NDJSON) or as
//! the sample value of a series labelled `lg_run="<run>"` (remote_write),
//! so `--verify` can read the database back and count, per sequence number,
//! how often it was stored: `missing` (acknowledged, not stored) and
//! `duplicates` (stored more than once).
//!
//! What "acknowledged" means per mode: HTTP and remote_write, a 2xx answer
//! to the request; syslog over TCP, the bytes were written to the socket
//! (syslog has no acknowledgement on the wire: a receiver crash can lose
//! what it had read but not enqueued, so `--verify` over TCP is exact only
//! when no receiver dies); syslog over UDP, nothing (datagrams may be
//! dropped, `missing` is reported but does not fail the run).
//!
//! Connection `c` of `N` sends the sequence numbers `c, c+N, c+2N, ...`; the
//! rate (`--rate`, events/s, 0 = as fast as possible) is split evenly.
//! A progress line goes to stderr every second, the JSON summary to stdout;
//! the exit code is 1 when acknowledged records are missing or duplicated
//! (or nothing was acknowledged), 2 for bad arguments.

mod send;
mod tls;
mod verify;

use std::io::Write;
use std::net::SocketAddr;
use std::path::PathBuf;
use std::process::ExitCode;
use std::sync::Arc;
use std::sync::atomic::{AtomicU64, Ordering};
use std::time::{Duration, Instant};

use clap::{Args, ValueEnum};

/// What to send.
#[derive(Debug, Clone, Copy, PartialEq, Eq, ValueEnum)]
pub enum Mode {
    /// RFC 5424 over TCP (`--framing`).
    SyslogTcp,
    /// RFC 5424 over UDP, one message per datagram.
    SyslogUdp,
    /// Syslog over TLS (RFC 5425; `--framing`, `--ca-file` or
    /// `--insecure`).
    SyslogTls,
    /// `POST /api/v1/logs` with NDJSON bodies of `--batch` records.
    Http,
    /// `POST /api/v1/write` (remote_write 1.0, snappy) with `--batch`
    /// samples per request.
    RemoteWrite,
}

impl Mode {
    fn as_str(self) -> &'static str {
        match self {
            Mode::SyslogTcp => "syslog-tcp",
            Mode::SyslogUdp => "syslog-udp",
            Mode::SyslogTls => "syslog-tls",
            Mode::Http => "http",
            Mode::RemoteWrite => "remote-write",
        }
    }
}

/// Syslog TCP framing.
#[derive(Debug, Clone, Copy, PartialEq, Eq, ValueEnum)]
pub enum Framing {
    /// RFC 6587 octet counting (`LEN SP MSG`).
    Octet,
    /// One message per line.
    Lf,
}

/// Syslog message format.
#[derive(Debug, Clone, Copy, PartialEq, Eq, ValueEnum)]
pub enum SyslogFormat {
    /// RFC 5424 (`<14>1 - host app - msgid - msg`).
    Rfc5424,
    /// RFC 3164, the BSD format (`<14>Mmm dd hh:mm:ss host app: msg`).
    Rfc3164,
}

/// Arguments of `killkrill loadgen`.
#[derive(Clone, Args)]
pub struct LoadgenArgs {
    /// What to send.
    #[arg(long, value_enum)]
    pub mode: Mode,
    /// Receiver address (IP:PORT): the syslog port, or the HTTP port for
    /// `http` and `remote-write`.
    #[arg(long, value_name = "ADDR")]
    pub target: SocketAddr,
    /// Connections (UDP: sockets) sending at once.
    #[arg(long, default_value_t = 4)]
    pub connections: usize,
    /// Target rate, events per second over all connections; 0 sends as
    /// fast as the receiver takes them.
    #[arg(long, default_value_t = 0)]
    pub rate: u64,
    /// How long to send, seconds.
    #[arg(long, default_value_t = 10.0)]
    pub duration: f64,
    /// Stop after this many events (before `--duration` if reached first).
    #[arg(long)]
    pub count: Option<u64>,
    /// Size of each syslog message or NDJSON line, bytes.
    #[arg(long, default_value_t = 300)]
    pub size: usize,
    /// Records (lines or samples) per HTTP request.
    #[arg(long, default_value_t = 1000)]
    pub batch: usize,
    /// remote_write: series per connection. Sample `k` of a connection is
    /// series `k % series`, so a request of `--batch` samples carries
    /// `batch / series` samples of each series (Prometheus sends one per
    /// series per request when it keeps up).
    #[arg(long, default_value_t = 100)]
    pub series: u64,
    /// remote_write: labels per series besides the run's own three
    /// (`lg_l0`..), each with a 20-byte value: real series carry more
    /// labels than the generator's, and every sample's estimated memory
    /// grows with them.
    #[arg(long, default_value_t = 0)]
    pub labels: usize,
    /// Syslog TCP framing.
    #[arg(long, value_enum, default_value = "octet")]
    pub framing: Framing,
    /// Syslog message format (every syslog mode).
    #[arg(long, value_enum, default_value = "rfc5424")]
    pub format: SyslogFormat,
    /// `syslog-tls`: PEM file of the CA (or the self-signed certificate)
    /// the receiver's certificate must chain to.
    #[arg(long, value_name = "FILE")]
    pub ca_file: Option<PathBuf>,
    /// `syslog-tls`: accept any server certificate (testing against a
    /// self-signed one without its file). Never in production.
    #[arg(long)]
    pub insecure: bool,
    /// `syslog-tls`: the name the certificate must carry (default: the
    /// target's IP address).
    #[arg(long, value_name = "NAME")]
    pub server_name: Option<String>,
    /// Run id in every record (default: random).
    #[arg(long)]
    pub run_id: Option<String>,
    /// After sending, read the database back until it holds every
    /// acknowledged record (or `--verify-timeout`), and report missing and
    /// duplicate records. The database is DB_TYPE/DATABASE_URL, else
    /// SQLite under `--data-dir`.
    #[arg(long)]
    pub verify: bool,
    /// Longest wait for the store to catch up, seconds.
    #[arg(long, default_value_t = 120.0)]
    pub verify_timeout: f64,
    /// The receiver's data directory (SQLite) for `--verify`.
    #[arg(long, value_name = "DIR", default_value = "./killkrill-data")]
    pub data_dir: PathBuf,
    /// Tenant the records are stored under.
    #[arg(long, default_value = "default")]
    pub tenant: String,
    /// API key sent with HTTP requests (`X-API-Key`); by default
    /// `LOADGEN_API_KEY` (keeps it out of the process list), else the key
    /// in `<data-dir>/bootstrap-credentials.json` when that file exists.
    #[arg(long, env = "LOADGEN_API_KEY", hide_env_values = true)]
    pub api_key: Option<String>,
    /// Process ids whose peak resident memory (VmHWM) and CPU time to
    /// report (repeatable).
    #[arg(long)]
    pub pid: Vec<u32>,
    /// No progress line.
    #[arg(long)]
    pub quiet: bool,
}

impl std::fmt::Debug for LoadgenArgs {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        // By hand, to keep the API key out of logs; every field is
        // named, so a new one cannot be forgotten.
        let LoadgenArgs {
            mode,
            target,
            connections,
            rate,
            duration,
            count,
            size,
            batch,
            series,
            labels,
            framing,
            format,
            ca_file,
            insecure,
            server_name,
            run_id,
            verify,
            verify_timeout,
            data_dir,
            tenant,
            api_key,
            pid,
            quiet,
        } = self;
        f.debug_struct("LoadgenArgs")
            .field("mode", mode)
            .field("target", target)
            .field("connections", connections)
            .field("rate", rate)
            .field("duration", duration)
            .field("count", count)
            .field("size", size)
            .field("batch", batch)
            .field("series", series)
            .field("labels", labels)
            .field("framing", framing)
            .field("format", format)
            .field("ca_file", ca_file)
            .field("insecure", insecure)
            .field("server_name", server_name)
            .field("run_id", run_id)
            .field("verify", verify)
            .field("verify_timeout", verify_timeout)
            .field("data_dir", data_dir)
            .field("tenant", tenant)
            .field("api_key", &killkrill_core::secret::Redacted(api_key))
            .field("pid", pid)
            .field("quiet", quiet)
            .finish()
    }
}

/// What one connection did: the per-connection indices `k` (its sequence
/// numbers are `k * N + c`) it got acknowledged, as ranges.
#[derive(Debug, Default)]
pub(crate) struct ConnReport {
    pub acked: Vec<std::ops::Range<u64>>,
    pub errors: u64,
    pub retries: u64,
    pub latencies_us: Vec<u64>,
}

/// Shared live counters.
#[derive(Debug, Default)]
pub(crate) struct Counters {
    pub sent: AtomicU64,
    pub acked: AtomicU64,
    pub errors: AtomicU64,
}

/// What every sender needs.
pub(crate) struct Plan {
    pub args: LoadgenArgs,
    pub run: String,
    pub counters: Counters,
    pub start: Instant,
    pub deadline: Instant,
    /// Events each connection may send at most.
    pub per_conn_count: u64,
    /// Events per second per connection (0 = unlimited).
    pub per_conn_rate: f64,
    /// `X-API-Key: ...\r\n`, or empty.
    pub auth_header: String,
    /// `syslog-tls`: the connector and the server name.
    pub tls: Option<tls::TlsTarget>,
}

impl Plan {
    /// How many events connection-local index `k` may have reached by now.
    pub fn allowed(&self) -> u64 {
        if self.per_conn_rate <= 0.0 {
            return self.per_conn_count;
        }
        let due = (self.start.elapsed().as_secs_f64() * self.per_conn_rate) as u64 + 1;
        due.min(self.per_conn_count)
    }

    pub fn over(&self) -> bool {
        Instant::now() >= self.deadline
    }

    pub fn seq(&self, conn: usize, k: u64) -> u64 {
        k * self.args.connections as u64 + conn as u64
    }

    /// The message text of `seq`, padded with `x` to `--size` bytes.
    pub fn message(&self, seq: u64, out: &mut Vec<u8>, target_len: usize) {
        let start = out.len();
        let _ = write!(out, "lg {} {seq} ", self.run);
        while out.len() - start < target_len {
            out.push(b'x');
        }
    }
}

fn random_run_id() -> String {
    let nanos = std::time::SystemTime::now()
        .duration_since(std::time::UNIX_EPOCH)
        .map_or(0, |d| d.as_nanos());
    let mixed = xorshift((nanos as u64) ^ (u64::from(std::process::id()) << 32));
    format!("r{mixed:012x}").chars().take(13).collect()
}

fn xorshift(mut x: u64) -> u64 {
    x ^= x << 13;
    x ^= x >> 7;
    x ^= x << 17;
    x.wrapping_mul(0x2545_f491_4f6c_dd1d)
}

/// Resident memory peak (VmHWM) and CPU seconds (user + system) of a pid.
fn proc_usage(pid: u32) -> Option<(u64, f64)> {
    let status = std::fs::read_to_string(format!("/proc/{pid}/status")).ok()?;
    let hwm_kb: u64 = status
        .lines()
        .find(|l| l.starts_with("VmHWM:"))?
        .split_whitespace()
        .nth(1)?
        .parse()
        .ok()?;
    let stat = std::fs::read_to_string(format!("/proc/{pid}/stat")).ok()?;
    let after = &stat[stat.rfind(')')? + 2..];
    let f: Vec<&str> = after.split_whitespace().collect();
    // Fields 14 and 15 (utime, stime) are 11 and 12 after the state.
    let ticks: f64 = f.get(11)?.parse::<f64>().ok()? + f.get(12)?.parse::<f64>().ok()?;
    Some((hwm_kb * 1024, ticks / 100.0))
}

fn validate(args: &LoadgenArgs) -> Result<(), String> {
    if args.connections == 0 || args.connections > 10_000 {
        return Err("--connections: must be 1..=10000".into());
    }
    if args.size < 32 || args.size > 60_000 {
        return Err("--size: must be 32..=60000 bytes".into());
    }
    if args.batch == 0 || args.batch > 100_000 {
        return Err("--batch: must be 1..=100000".into());
    }
    if args.series == 0 || args.series > 1_000_000 {
        return Err("--series: must be 1..=1000000".into());
    }
    if args.labels > 64 {
        return Err("--labels: must be 0..=64".into());
    }
    if !(args.duration > 0.0 && args.duration <= 86_400.0) {
        return Err("--duration: must be above 0 and at most 86400 seconds".into());
    }
    if let Some(r) = &args.run_id
        && (r.is_empty()
            || r.len() > 40
            || !r.chars().all(|c| c.is_ascii_alphanumeric() || c == '_'))
    {
        return Err("--run-id: 1-40 ASCII letters, digits or _".into());
    }
    if killkrill_core::event::Tenant::new(&args.tenant).is_err() {
        return Err(format!("--tenant: invalid tenant {:?}", args.tenant));
    }
    if args.mode == Mode::SyslogTls {
        if args.ca_file.is_none() && !args.insecure {
            return Err(
                "--mode syslog-tls: give --ca-file FILE (the CA or self-signed certificate) or --insecure"
                    .into(),
            );
        }
        if args.ca_file.is_some() && args.insecure {
            return Err("--ca-file and --insecure: give one".into());
        }
    } else if args.ca_file.is_some() || args.insecure || args.server_name.is_some() {
        return Err("--ca-file, --insecure and --server-name apply to --mode syslog-tls".into());
    }
    Ok(())
}

/// `killkrill loadgen`.
pub fn run(args: &LoadgenArgs, mut out: impl Write, mut err: impl Write) -> ExitCode {
    if let Err(e) = validate(args) {
        let _ = writeln!(err, "killkrill loadgen: {e}");
        return ExitCode::from(2);
    }
    let rt = match tokio::runtime::Builder::new_multi_thread()
        .enable_all()
        .build()
    {
        Ok(rt) => rt,
        Err(e) => {
            let _ = writeln!(err, "killkrill loadgen: starting the runtime: {e}");
            return ExitCode::FAILURE;
        }
    };
    rt.block_on(run_async(args.clone(), out.by_ref(), err.by_ref()))
}

async fn run_async(args: LoadgenArgs, mut out: impl Write, mut err: impl Write) -> ExitCode {
    let run = args.run_id.clone().unwrap_or_else(random_run_id);
    let n = args.connections as u64;
    let per_conn_count = args.count.map_or(u64::MAX, |c| c.div_ceil(n));
    let start = Instant::now();
    let cpu_before: Vec<Option<(u64, f64)>> = args.pid.iter().map(|p| proc_usage(*p)).collect();
    let key = args.api_key.clone().or_else(|| {
        crate::auth::bootstrap::BootstrapCredentials::read(&args.data_dir)
            .ok()
            .map(|c| c.api_key)
    });
    if key
        .as_deref()
        .is_some_and(|k| k.is_empty() || !k.bytes().all(|b| b.is_ascii_graphic()))
    {
        let _ = writeln!(
            err,
            "killkrill loadgen: --api-key must be printable ASCII without spaces"
        );
        return ExitCode::from(2);
    }
    let tls = if args.mode == Mode::SyslogTls {
        match tls::target(&args) {
            Ok(t) => Some(t),
            Err(e) => {
                let _ = writeln!(err, "killkrill loadgen: {e}");
                return ExitCode::from(2);
            }
        }
    } else {
        None
    };
    let plan = Arc::new(Plan {
        tls,
        auth_header: key.map_or_else(String::new, |k| format!("X-API-Key: {k}\r\n")),
        per_conn_rate: args.rate as f64 / n as f64,
        per_conn_count,
        deadline: start + Duration::from_secs_f64(args.duration),
        start,
        counters: Counters::default(),
        run: run.clone(),
        args: args.clone(),
    });
    let progress = (!args.quiet).then(|| tokio::spawn(progress(plan.clone())));
    let mut tasks = Vec::new();
    for c in 0..args.connections {
        let plan = plan.clone();
        tasks.push(tokio::spawn(async move {
            match plan.args.mode {
                Mode::SyslogTcp => send::syslog_tcp(&plan, c).await,
                Mode::SyslogUdp => send::syslog_udp(&plan, c).await,
                Mode::SyslogTls => send::syslog_tls(&plan, c).await,
                Mode::Http => send::http_logs(&plan, c).await,
                Mode::RemoteWrite => send::remote_write(&plan, c).await,
            }
        }));
    }
    let mut reports = Vec::new();
    for t in tasks {
        match t.await {
            Ok(r) => reports.push(r),
            Err(e) => {
                let _ = writeln!(err, "killkrill loadgen: a sender failed: {e}");
                reports.push(ConnReport::default());
            }
        }
    }
    let elapsed = start.elapsed().as_secs_f64();
    if let Some(p) = progress {
        p.abort();
        let _ = writeln!(err);
    }
    let sent = plan.counters.sent.load(Ordering::Relaxed);
    let acked = plan.counters.acked.load(Ordering::Relaxed);
    let errors: u64 = reports.iter().map(|r| r.errors).sum();
    let retries: u64 = reports.iter().map(|r| r.retries).sum();
    let mut lat: Vec<u64> = reports
        .iter()
        .flat_map(|r| r.latencies_us.iter().copied())
        .collect();
    lat.sort_unstable();
    let pct = |p: f64| -> Option<f64> {
        if lat.is_empty() {
            return None;
        }
        let i = ((lat.len() as f64 - 1.0) * p).round() as usize;
        Some(lat[i] as f64 / 1000.0)
    };
    let targets: Vec<serde_json::Value> = args
        .pid
        .iter()
        .zip(&cpu_before)
        .map(|(pid, before)| {
            let now = proc_usage(*pid);
            serde_json::json!({
                "pid": pid,
                "peak_rss_bytes": now.map(|u| u.0),
                "cpu_seconds": match (before, now) {
                    (Some(b), Some(a)) => Some(a.1 - b.1),
                    _ => None,
                },
                "cores": match (before, now) {
                    (Some(b), Some(a)) => Some((a.1 - b.1) / elapsed),
                    _ => None,
                },
            })
        })
        .collect();
    let mut summary = serde_json::json!({
        "mode": args.mode.as_str(),
        "target": args.target.to_string(),
        "run_id": run,
        "connections": args.connections,
        "size": args.size,
        "seconds": elapsed,
        "sent": sent,
        "acknowledged": acked,
        "errors": errors,
        "retries": retries,
        "rate": acked as f64 / elapsed,
        "bytes_per_second": acked as f64 * args.size as f64 / elapsed,
        "ack_latency_ms": {"p50": pct(0.5), "p99": pct(0.99), "max": pct(1.0)},
        "targets": targets,
    });
    let mut failed = acked == 0;
    if args.verify {
        let v = verify::verify(&plan, &reports).await;
        match v {
            Ok(v) => {
                if args.mode != Mode::SyslogUdp && (v.missing > 0 || v.duplicates > 0) {
                    failed = true;
                }
                summary["verify"] = v.to_json();
            }
            Err(e) => {
                failed = true;
                summary["verify"] = serde_json::json!({ "error": e });
            }
        }
    }
    let text = serde_json::to_string_pretty(&summary).unwrap_or_default();
    if writeln!(out, "{text}").is_err() {
        return ExitCode::FAILURE;
    }
    if failed {
        ExitCode::FAILURE
    } else {
        ExitCode::SUCCESS
    }
}

async fn progress(plan: Arc<Plan>) {
    let mut last = 0u64;
    let mut tick = tokio::time::interval(Duration::from_secs(1));
    tick.tick().await;
    loop {
        tick.tick().await;
        let acked = plan.counters.acked.load(Ordering::Relaxed);
        let sent = plan.counters.sent.load(Ordering::Relaxed);
        let errors = plan.counters.errors.load(Ordering::Relaxed);
        let mut e = std::io::stderr().lock();
        let _ = write!(
            e,
            "\r[{:>5.1}s] sent {sent} acknowledged {acked} errors {errors} rate {}/s   ",
            plan.start.elapsed().as_secs_f64(),
            acked - last
        );
        let _ = e.flush();
        last = acked;
    }
}
