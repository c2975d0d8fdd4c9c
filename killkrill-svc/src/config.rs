//! The service configuration: one typed struct, read from layers.
//!
//! Precedence, lowest first: built-in defaults, the TOML file (`--config`),
//! `KILLKRILL_*` environment variables, command-line flags. The layers are
//! merged as TOML tables *before* the struct is deserialised once, so every
//! value — whatever layer it came from — passes the same checks, and an error
//! names the key and the layer (`http (from KILLKRILL_HTTP): ...`).
//!
//! Environment names: `KILLKRILL_` followed by the key in upper case, with
//! `__` between a section and its key (`KILLKRILL_SYSLOG__IDLE_TIMEOUT_SECS`
//! is `syslog.idle_timeout_secs`). A value that reads as a TOML number or
//! boolean is one; anything else is a string. An unknown key is an error in
//! every layer (`KILLKRILL_TEST_*`, the test suites' variables, are not
//! read). The database is chosen by the standard variables
//! (`DB_TYPE`, `DATABASE_URL`, ...; see `killkrill_store::config`), not here:
//! with none of them set, `serve` uses SQLite under `data_dir`.

use std::collections::BTreeMap;
use std::fmt;
use std::net::SocketAddr;
use std::path::{Path, PathBuf};

use killkrill_core::transform::{BuildContext, TransformChain, TransformConfig};
use serde::{Deserialize, Serialize};

/// Prefix of the environment variables read.
pub const ENV_PREFIX: &str = "KILLKRILL_";

/// Variables with this prefix (`KILLKRILL_TEST_POSTGRES_URL`, ...) belong
/// to the test suites and are not configuration.
pub const TEST_ENV_PREFIX: &str = "KILLKRILL_TEST_";

/// A listen address, or off (`""`).
#[derive(Debug, Clone, Copy, PartialEq, Eq, Default)]
pub struct ListenAddr(pub Option<SocketAddr>);

impl ListenAddr {
    /// Listening on `addr`.
    pub fn on(addr: SocketAddr) -> Self {
        ListenAddr(Some(addr))
    }

    /// Turned off.
    pub const OFF: ListenAddr = ListenAddr(None);

    /// The address, unless turned off.
    pub fn get(self) -> Option<SocketAddr> {
        self.0
    }
}

impl fmt::Display for ListenAddr {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        match self.0 {
            Some(a) => write!(f, "{a}"),
            None => f.write_str("off"),
        }
    }
}

impl Serialize for ListenAddr {
    fn serialize<S: serde::Serializer>(&self, s: S) -> Result<S::Ok, S::Error> {
        match self.0 {
            Some(a) => s.serialize_str(&a.to_string()),
            None => s.serialize_str(""),
        }
    }
}

impl<'de> Deserialize<'de> for ListenAddr {
    fn deserialize<D: serde::Deserializer<'de>>(d: D) -> Result<Self, D::Error> {
        let s = String::deserialize(d)?;
        let s = s.trim();
        if s.is_empty() {
            return Ok(ListenAddr::OFF);
        }
        s.parse::<SocketAddr>().map(ListenAddr::on).map_err(|_| {
            serde::de::Error::custom(format!(
                "invalid address {s:?}: expected IP:PORT such as 127.0.0.1:8080 or [::1]:8080 \
                 (port 0 picks a free port), or an empty string to turn the listener off"
            ))
        })
    }
}

/// Everything `killkrill serve` runs with. Every key has a default, so an
/// empty file (or none) is a valid configuration.
#[derive(Debug, Clone, Serialize, Deserialize)]
#[serde(deny_unknown_fields, default)]
pub struct ServeConfig {
    /// Directory of the embedded SQLite database (`killkrill.db`); created
    /// when missing.
    pub data_dir: PathBuf,
    /// HTTP listener (ingest, `/healthz`, `/readyz`, `/metrics`).
    pub http: ListenAddr,
    /// Syslog over UDP.
    pub syslog_udp: ListenAddr,
    /// Syslog over TCP (octet counting and LF/NUL framing on one port).
    pub syslog_tcp: ListenAddr,
    /// Syslog over TLS; runs only when `tls.cert` and `tls.key` are set.
    pub syslog_tls: ListenAddr,
    /// The system tenant: syslog events (no caller identity) belong to it,
    /// and so does the first admin, whose tenant's admins manage every
    /// tenant. HTTP callers write to and read from their own tenant.
    pub tenant: String,
    /// TLS certificate and key of the syslog TLS listener (`[tls]`).
    pub tls: TlsConfig,
    /// TLS of the HTTP listener, which also carries gRPC (`[http_tls]`):
    /// when `cert` and `key` are set the HTTP port speaks only HTTPS.
    pub http_tls: TlsConfig,
    /// HTTP ingest.
    pub http_ingest: HttpIngestConfig,
    /// HTTP connection limits.
    pub http_server: HttpServerConfig,
    /// Syslog listeners.
    pub syslog: SyslogConfig,
    /// The queue between receivers and workers.
    pub queue: QueueConfig,
    /// The workers that write batches to the store.
    pub workers: WorkersConfig,
    /// Background compaction and retention of the log store.
    pub maintenance: MaintenanceConfig,
    /// Limits of the read API (log and metric queries, live tail).
    pub query: QueryConfig,
    /// Authentication (`[auth]`; `RELEASE_MODE` and `JWT_SECRET` come from
    /// the environment).
    pub auth: crate::auth::AuthConfig,
    /// Prometheus scraping (`[[scrape.targets]]`); none by default.
    pub scrape: crate::serve::scrape::ScrapeConfig,
    /// Transforms the workers run on log records, in order (`[[transforms]]`
    /// tables; see `docs/src/pipeline.md`). None by default. File only.
    #[serde(skip_serializing)]
    pub transforms: Vec<TransformConfig>,
    /// Rollups the workers compute from metric samples (`[rollups]`).
    pub rollups: RollupsConfig,
    /// License checks (`[license]`; `RELEASE_MODE`, `LICENSE_KEY` and
    /// `LICENSE_SERVER_URL` come from the environment).
    pub license: crate::license::LicenseConfig,
    /// OpenID Connect single sign-on (`[oidc]`; `OIDC_CLIENT_SECRET` from
    /// the environment).
    pub oidc: crate::oidc::OidcConfig,
    /// Mail for email confirmation and password reset (`[smtp]`; off
    /// without `host`; `KILLKRILL_SMTP__PASSWORD`).
    pub smtp: crate::email::SmtpConfig,
}

impl Default for ServeConfig {
    fn default() -> Self {
        let local = |port| ListenAddr::on(SocketAddr::from(([127, 0, 0, 1], port)));
        ServeConfig {
            data_dir: PathBuf::from("./killkrill-data"),
            http: local(8080),
            syslog_udp: local(5514),
            syslog_tcp: local(5514),
            syslog_tls: local(6514),
            tenant: "default".to_owned(),
            tls: TlsConfig::default(),
            http_tls: TlsConfig::default(),
            http_ingest: HttpIngestConfig::default(),
            http_server: HttpServerConfig::default(),
            syslog: SyslogConfig::default(),
            queue: QueueConfig::default(),
            workers: WorkersConfig::default(),
            maintenance: MaintenanceConfig::default(),
            query: QueryConfig::default(),
            auth: crate::auth::AuthConfig::default(),
            scrape: crate::serve::scrape::ScrapeConfig::default(),
            transforms: Vec::new(),
            rollups: RollupsConfig::default(),
            license: crate::license::LicenseConfig::default(),
            oidc: crate::oidc::OidcConfig::default(),
            smtp: crate::email::SmtpConfig::default(),
        }
    }
}

/// Rollups: the workers feed every stored metric sample to the aggregation
/// engine and store its partial rollups exactly once per batch (see
/// `docs/src/serve.md`).
#[derive(Debug, Clone, PartialEq, Serialize, Deserialize)]
#[serde(deny_unknown_fields, default)]
pub struct RollupsConfig {
    /// Compute and store rollups. Default `true`.
    pub enabled: bool,
    /// The engine (`[rollups.aggregate]`: `resolutions`, `allowed_lateness`,
    /// `late_samples`, limits, sketch). As `killkrill_core::aggregate`'s
    /// defaults, except `late_samples = "aggregate"`: the store merges every
    /// partial of a window, so a late sample is still counted.
    pub aggregate: killkrill_core::aggregate::AggregateConfig,
}

impl Default for RollupsConfig {
    fn default() -> Self {
        RollupsConfig {
            enabled: true,
            aggregate: killkrill_core::aggregate::AggregateConfig {
                late_samples: killkrill_core::aggregate::LatePolicy::Aggregate,
                ..Default::default()
            },
        }
    }
}

/// TLS files (PEM).
#[derive(Debug, Clone, PartialEq, Eq, Default, Serialize, Deserialize)]
#[serde(deny_unknown_fields, default)]
pub struct TlsConfig {
    /// Certificate chain, leaf first.
    pub cert: Option<PathBuf>,
    /// Private key (PKCS#8, PKCS#1 or SEC1).
    pub key: Option<PathBuf>,
    /// When set, client certificates are checked against these CAs.
    pub client_ca: Option<PathBuf>,
    /// With `client_ca`: `required` (default) refuses a client without a
    /// certificate at the handshake; `optional` accepts one without, but
    /// still refuses a certificate that does not verify.
    pub client_auth: ClientAuth,
}

/// Whether a TLS listener with a `client_ca` insists on a client
/// certificate.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Default, Serialize, Deserialize)]
#[serde(rename_all = "lowercase")]
pub enum ClientAuth {
    /// No certificate, no connection.
    #[default]
    Required,
    /// A certificate is verified when presented.
    Optional,
}

/// HTTP ingest limits.
#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize)]
#[serde(deny_unknown_fields, default)]
pub struct HttpIngestConfig {
    /// Largest request body after decompression, bytes (413 above).
    pub max_body_bytes: usize,
    /// How long a request waits for room in a full queue before 429, ms.
    pub enqueue_wait_ms: u64,
}

impl Default for HttpIngestConfig {
    fn default() -> Self {
        HttpIngestConfig {
            max_body_bytes: 16 << 20,
            enqueue_wait_ms: 2_000,
        }
    }
}

/// HTTP connection limits.
#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize)]
#[serde(deny_unknown_fields, default)]
pub struct HttpServerConfig {
    /// A request's headers must arrive within this many ms, or the
    /// connection is closed (also the idle limit of a keep-alive connection).
    pub header_read_timeout_ms: u64,
    /// Most HTTP connections open at once (at most 65,536); one more is
    /// closed at accept and counted in
    /// `killkrill_http_connections_rejected_total`.
    pub max_connections: usize,
    /// A request's body must arrive within this many ms of its headers, or
    /// the request is answered 408 and the connection closed.
    pub body_read_timeout_ms: u64,
    /// A connection with no request in flight for this many ms is closed
    /// (HTTP/2: GOAWAY first).
    pub idle_timeout_ms: u64,
    /// HTTP/2 keep-alive pings every this many ms...
    pub http2_keep_alive_interval_ms: u64,
    /// ...and a peer that does not answer one within this many ms is gone.
    pub http2_keep_alive_timeout_ms: u64,
    /// With `[http_tls]`: a TLS handshake must finish within this many ms,
    /// or the connection is closed and counted in
    /// `killkrill_http_tls_handshake_failures_total{reason="timeout"}`.
    pub tls_handshake_timeout_ms: u64,
}

impl Default for HttpServerConfig {
    fn default() -> Self {
        HttpServerConfig {
            header_read_timeout_ms: 10_000,
            max_connections: 1024,
            body_read_timeout_ms: 30_000,
            idle_timeout_ms: 120_000,
            http2_keep_alive_interval_ms: 30_000,
            http2_keep_alive_timeout_ms: 20_000,
            tls_handshake_timeout_ms: 10_000,
        }
    }
}

/// Syslog listener settings.
#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize)]
#[serde(deny_unknown_fields, default)]
pub struct SyslogConfig {
    /// Largest message (frame) accepted, bytes.
    pub max_frame_bytes: usize,
    /// Most TCP and TLS connections open at once (each listener); more are
    /// closed on accept and counted.
    pub max_connections: usize,
    /// A connection silent this long is closed, seconds.
    pub idle_timeout_secs: u64,
    /// Receive buffer asked for the UDP socket, bytes (the kernel caps it at
    /// `net.core.rmem_max`).
    pub udp_recv_buffer_bytes: usize,
    /// A listener enqueues a batch once it holds this many messages...
    pub batch_max_events: usize,
    /// ...or this long after its first message, ms.
    pub batch_linger_ms: u64,
}

impl Default for SyslogConfig {
    fn default() -> Self {
        SyslogConfig {
            max_frame_bytes: 64 * 1024,
            max_connections: 1024,
            idle_timeout_secs: 300,
            udp_recv_buffer_bytes: 8 << 20,
            batch_max_events: 2_000,
            batch_linger_ms: 100,
        }
    }
}

/// Which queue sits between receivers and workers.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Default, Serialize, Deserialize)]
#[serde(rename_all = "lowercase")]
pub enum QueueKind {
    /// A SQLite file of its own under `data_dir` (`queue.db`): durable, one
    /// process. The default.
    #[default]
    Sqlite,
    /// In process: fastest, lost on a crash.
    Memory,
    /// Redis Streams (`queue.redis.url`, else `REDIS_URL`): durable as Redis
    /// is, shared by any number of receivers and workers.
    Redis,
}

impl QueueKind {
    /// The name used in the configuration.
    pub fn as_str(self) -> &'static str {
        match self {
            QueueKind::Sqlite => "sqlite",
            QueueKind::Memory => "memory",
            QueueKind::Redis => "redis",
        }
    }
}

/// The queue between receivers and workers: `kind` selects it; the bounds
/// apply to the memory and SQLite queues, `[queue.sqlite]` and
/// `[queue.redis]` hold what only one of them takes.
#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize)]
#[serde(deny_unknown_fields, default)]
pub struct QueueConfig {
    /// `sqlite` (default), `memory` or `redis`.
    pub kind: QueueKind,
    /// Most events held (memory and SQLite).
    pub max_events: usize,
    /// Most bytes held (memory: estimated; SQLite: stored).
    pub max_bytes: usize,
    /// An unacknowledged delivery comes back after this many ms (a worker
    /// died or is stuck).
    pub visibility_timeout_ms: u64,
    /// Compression of stored batches (SQLite and Redis): `none` or `zstd`.
    pub compression: killkrill_store::queue::config::StoredCompression,
    /// `kind = "sqlite"`.
    pub sqlite: SqliteQueueSection,
    /// `kind = "redis"`.
    pub redis: RedisQueueSection,
    /// Redis only: tenant groups, each a stream of its own
    /// (`[queue.tenant_groups]`, group name = list of tenants); tenants not
    /// listed go to the group `default`. Empty: one stream for everyone.
    pub tenant_groups: BTreeMap<String, Vec<String>>,
    /// The tenant groups this process's workers take batches from,
    /// comma-separated (`--queue-groups`); empty: all of them.
    pub groups: String,
}

impl Default for QueueConfig {
    fn default() -> Self {
        QueueConfig {
            kind: QueueKind::Sqlite,
            max_events: 200_000,
            max_bytes: 256 << 20,
            visibility_timeout_ms: 60_000,
            compression: killkrill_store::queue::config::StoredCompression::None,
            sqlite: SqliteQueueSection::default(),
            redis: RedisQueueSection::default(),
            tenant_groups: BTreeMap::new(),
            groups: String::new(),
        }
    }
}

/// `[queue.sqlite]`.
#[derive(Debug, Clone, PartialEq, Eq, Default, Serialize, Deserialize)]
#[serde(deny_unknown_fields, default)]
pub struct SqliteQueueSection {
    /// The queue file; `<data_dir>/queue.db` when unset.
    pub path: Option<PathBuf>,
    /// `full`: fsync every commit (survives power loss); `normal` (default):
    /// survives a crash of the process; `off`: tests only.
    pub synchronous: killkrill_store::SqliteSync,
}

/// `[queue.redis]`.
#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize)]
#[serde(deny_unknown_fields, default)]
pub struct RedisQueueSection {
    /// `redis://` or `rediss://`; `REDIS_URL` when unset.
    pub url: Option<String>,
    /// Use the Redis Cluster client.
    pub cluster: bool,
    /// First part of every key (one per deployment sharing a Redis).
    pub prefix: String,
    /// Stream name part (`killkrill:{ingest:default}:stream`).
    pub stream: String,
    /// Consumer group of the workers.
    pub group: String,
    /// This process's consumer name; host, pid and a random suffix when unset.
    pub consumer: Option<String>,
    /// Most batches in the stream (Redis counts entries, not events).
    pub max_len: u64,
    /// Longest blocking read, ms (how soon an idle worker notices
    /// deliveries to take over).
    pub poll_interval_ms: u64,
}

impl Default for RedisQueueSection {
    fn default() -> Self {
        let o = killkrill_store::queue::RedisQueueOptions::default();
        RedisQueueSection {
            url: None,
            cluster: false,
            prefix: o.prefix,
            stream: o.kind,
            group: o.group,
            consumer: None,
            max_len: o.max_len,
            poll_interval_ms: 1_000,
        }
    }
}

impl QueueConfig {
    /// The store's queue configuration this selects (`data_dir` places the
    /// SQLite file), for validation and for opening.
    pub fn to_store(&self, data_dir: &Path) -> killkrill_store::queue::QueueConfig {
        use killkrill_store::queue::config as q;
        match self.kind {
            QueueKind::Memory => {
                killkrill_store::queue::QueueConfig::Memory(q::MemoryQueueSettings {
                    max_events: self.max_events as u64,
                    max_bytes: self.max_bytes as u64,
                    visibility_timeout_ms: self.visibility_timeout_ms,
                })
            }
            QueueKind::Sqlite => {
                killkrill_store::queue::QueueConfig::Sqlite(q::SqliteQueueSettings {
                    path: self
                        .sqlite
                        .path
                        .clone()
                        .unwrap_or_else(|| data_dir.join("queue.db")),
                    synchronous: self.sqlite.synchronous,
                    max_events: self.max_events as u64,
                    max_bytes: self.max_bytes as u64,
                    visibility_timeout_ms: self.visibility_timeout_ms,
                    compression: self.compression,
                })
            }
            QueueKind::Redis => {
                let d = q::RedisQueueSettings::default();
                killkrill_store::queue::QueueConfig::Redis(q::RedisQueueSettings {
                    url: self.redis.url.clone().unwrap_or_default(),
                    cluster: self.redis.cluster,
                    prefix: self.redis.prefix.clone(),
                    kind: self.redis.stream.clone(),
                    group: self.redis.group.clone(),
                    consumer: self.redis.consumer.clone(),
                    max_len: self.redis.max_len,
                    visibility_timeout_ms: self.visibility_timeout_ms,
                    poll_interval_ms: self.redis.poll_interval_ms,
                    compression: self.compression,
                    ..d
                })
            }
        }
    }

    /// The groups `groups` names (empty: all).
    pub fn served_groups(&self) -> Vec<String> {
        self.groups
            .split(',')
            .map(str::trim)
            .filter(|g| !g.is_empty())
            .map(str::to_owned)
            .collect()
    }

    /// Checks `tenant_groups` and `groups`; the error names the key.
    fn validate_tenant_groups(&self) -> Result<(), (&'static str, String)> {
        use crate::serve::tenant_groups::DEFAULT_GROUP;
        if self.tenant_groups.is_empty() {
            if self.served_groups().iter().any(|g| g != DEFAULT_GROUP) {
                return Err((
                    "queue.groups",
                    format!(
                        "{:?}: without queue.tenant_groups the only group is \"default\"",
                        self.groups
                    ),
                ));
            }
            return Ok(());
        }
        if self.kind != QueueKind::Redis {
            return Err((
                "queue.tenant_groups",
                format!(
                    "only the redis queue has tenant groups (queue.kind is {})",
                    self.kind.as_str()
                ),
            ));
        }
        let mut seen = BTreeMap::new();
        for (group, tenants) in &self.tenant_groups {
            if group.is_empty()
                || group
                    .chars()
                    .any(|c| c.is_whitespace() || matches!(c, '{' | '}' | ','))
            {
                return Err((
                    "queue.tenant_groups",
                    format!(
                        "group name {group:?} must be non-empty, without spaces, braces or commas"
                    ),
                ));
            }
            for t in tenants {
                killkrill_core::event::Tenant::new(t).map_err(|e| {
                    (
                        "queue.tenant_groups",
                        format!("group {group:?}: tenant {t:?}: {e}"),
                    )
                })?;
                if let Some(other) = seen.insert(t.clone(), group.clone()) {
                    return Err((
                        "queue.tenant_groups",
                        format!("tenant {t:?} is in two groups ({other:?} and {group:?})"),
                    ));
                }
            }
        }
        for g in self.served_groups() {
            if g != DEFAULT_GROUP && !self.tenant_groups.contains_key(&g) {
                return Err((
                    "queue.groups",
                    format!(
                        "unknown tenant group {g:?} (not in queue.tenant_groups, not \"default\")"
                    ),
                ));
            }
        }
        Ok(())
    }

    /// The config key (in this file's terms) of a key the store's queue
    /// validation names.
    fn key_of(&self, store_key: &str) -> String {
        let section = match (self.kind, store_key) {
            (_, "max_events" | "max_bytes" | "visibility_timeout_ms" | "compression") => "",
            (QueueKind::Redis, "kind") => return "queue.redis.stream".into(),
            (QueueKind::Redis, _) => "redis.",
            (QueueKind::Sqlite, _) => "sqlite.",
            (QueueKind::Memory, _) => "",
        };
        format!("queue.{section}{store_key}")
    }
}

/// Worker settings.
#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize)]
#[serde(deny_unknown_fields, default)]
pub struct WorkersConfig {
    /// Worker tasks. 0 runs no worker in this process (a receiver only:
    /// batches wait in the queue).
    pub count: usize,
    /// How long shutdown may take to write the batches in hand, seconds.
    pub drain_timeout_secs: u64,
    /// A worker writes (and then acknowledges) a group of queue batches in
    /// one store call once it holds this many events... Larger groups put
    /// more samples of a series into one chunk row and one rollup partial
    /// (see `docs/src/pipeline.md`).
    pub group_max_events: usize,
    /// ...or this many batches...
    pub group_max_batches: usize,
    /// ...or this many milliseconds after its first batch arrived.
    pub group_linger_ms: u64,
}

impl Default for WorkersConfig {
    fn default() -> Self {
        WorkersConfig {
            count: 2,
            drain_timeout_secs: 30,
            group_max_events: 100_000,
            group_max_batches: 256,
            group_linger_ms: 100,
        }
    }
}

/// Background store maintenance.
#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize)]
#[serde(deny_unknown_fields, default)]
pub struct MaintenanceConfig {
    /// Seconds between compaction (and retention) passes; 0 turns both off.
    pub interval_secs: u64,
    /// Delete log blocks older than this many days; 0 keeps everything.
    pub retention_days: u64,
    /// Metric samples written a few per series at a time (scrapes,
    /// remote_write) wait in the time-major head; each pass merges head
    /// chunks whose samples are older than this many seconds into full
    /// per-series chunks. Default 600.
    pub metric_head_secs: u64,
}

impl Default for MaintenanceConfig {
    fn default() -> Self {
        MaintenanceConfig {
            interval_secs: 60,
            retention_days: 0,
            metric_head_secs: 600,
        }
    }
}

/// Limits of the read API. Every limit is enforced per request and an
/// exceeded one is answered 422 naming it (`query.max_range_secs`, ...);
/// page sizes outside `1..=max_limit` are a 400 naming `limit`.
#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize)]
#[serde(deny_unknown_fields, default)]
pub struct QueryConfig {
    /// Longest `end - start` of a log query, a volume query, a metric
    /// query or a PromQL range query, seconds. A log query without `start`
    /// reads the last `max_range_secs` before `end`.
    pub max_range_secs: u64,
    /// Page size of `GET /api/v1/logs` when `limit` is absent.
    pub default_limit: usize,
    /// Largest `limit` of `GET /api/v1/logs` (at most 10,000).
    pub max_limit: usize,
    /// Most series one metric query (native or PromQL) may load.
    pub max_series: usize,
    /// Most points (samples or rollup windows) one metric query may load.
    pub max_points: usize,
    /// Most buckets of a volume query or steps of a metric query.
    pub max_buckets: usize,
    /// Longest a query may run, milliseconds.
    pub timeout_ms: u64,
    /// Most live tails open at once (the process).
    pub max_tails: usize,
    /// Events buffered per tail client; a client that lets the buffer fill
    /// is sent `event: error` and disconnected.
    pub tail_buffer_events: usize,
    /// How often a tail polls the store for new records, milliseconds (a
    /// commit by a worker in the same process wakes it earlier).
    pub tail_poll_ms: u64,
    /// Records whose event time is at most this much older than the wall
    /// clock when they are committed are still tailed (late or
    /// out-of-order senders), seconds. Each poll re-reads this window.
    pub tail_grace_secs: u64,
    /// A comment line is sent after this much silence, seconds.
    pub tail_heartbeat_secs: u64,
    /// Answer `count/sum/min/max/avg/last_over_time` from the stored
    /// rollups when the range and step fall on rollup window edges (see
    /// `docs/src/promql.md`, "Rollups"). Used only when `[rollups]` is
    /// enabled with `late_samples = "aggregate"` (the default), so every
    /// stored sample is in a rollup. Default `false`: on the benchmark in
    /// `docs/src/benchmarks/promql.md` the rollup path is still slower than
    /// reading raw samples (about 0.5x), so it is opt-in until it is not.
    pub rollup_reads: bool,
}

impl Default for QueryConfig {
    fn default() -> Self {
        QueryConfig {
            max_range_secs: 31 * 86_400,
            default_limit: 100,
            max_limit: 5_000,
            max_series: 10_000,
            max_points: 20_000_000,
            max_buckets: 11_000,
            timeout_ms: 30_000,
            max_tails: 64,
            tail_buffer_events: 1_024,
            tail_poll_ms: 1_000,
            tail_grace_secs: 5,
            tail_heartbeat_secs: 15,
            rollup_reads: false,
        }
    }
}

/// Where a value came from, for error messages.
#[derive(Debug, Clone, PartialEq, Eq)]
pub enum Origin {
    /// The TOML file.
    File(PathBuf),
    /// An environment variable.
    Env(String),
    /// A command-line flag.
    Flag(String),
}

impl fmt::Display for Origin {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        match self {
            Origin::File(p) => write!(f, "from {}", p.display()),
            Origin::Env(v) => write!(f, "from {v}"),
            Origin::Flag(n) => write!(f, "from --{n}"),
        }
    }
}

/// A configuration problem, naming the key.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct ConfigError {
    /// The dotted key (`syslog.max_connections`), or the file for file-level
    /// problems.
    pub key: String,
    /// Where the value came from, when known.
    pub origin: Option<Origin>,
    /// What is wrong.
    pub problem: String,
}

impl fmt::Display for ConfigError {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        match &self.origin {
            Some(o) => write!(f, "{} ({o}): {}", self.key, self.problem),
            None => write!(f, "{}: {}", self.key, self.problem),
        }
    }
}

impl std::error::Error for ConfigError {}

/// The layers before merging.
#[derive(Debug, Default, Clone)]
pub struct Layers {
    /// The config file, if any.
    pub file: Option<PathBuf>,
    /// `(name, value)` of the environment (only `KILLKRILL_*` is read).
    pub env: Vec<(String, String)>,
    /// `(key, value, flag name)` from the command line.
    pub flags: Vec<(String, String, String)>,
    /// `(key, value)` defaults of the command, below every other layer
    /// (`killkrill worker` defaults `queue.kind` to `redis`).
    pub defaults: Vec<(String, String)>,
}

impl ServeConfig {
    /// Merges the layers and validates the result.
    ///
    /// # Errors
    /// [`ConfigError`] naming the key, the layer and the problem.
    pub fn load(layers: &Layers) -> Result<ServeConfig, ConfigError> {
        let mut table = toml::Table::new();
        let mut origins: BTreeMap<String, Origin> = BTreeMap::new();
        for (key, value) in &layers.defaults {
            let path: Vec<String> = key.split('.').map(str::to_owned).collect();
            set_path(&mut table, &path, toml::Value::String(value.clone())).map_err(|problem| {
                ConfigError {
                    key: key.clone(),
                    origin: None,
                    problem,
                }
            })?;
        }
        if let Some(path) = &layers.file {
            let text = std::fs::read_to_string(path).map_err(|e| ConfigError {
                key: path.display().to_string(),
                origin: None,
                problem: format!("cannot read the config file: {e}"),
            })?;
            let file: toml::Table = text.parse().map_err(|e: toml::de::Error| ConfigError {
                key: path.display().to_string(),
                origin: None,
                problem: format!("not valid TOML: {}", e.message()),
            })?;
            record_origins(&file, "", &Origin::File(path.clone()), &mut origins);
            merge_tables(&mut table, file);
        }
        for (name, value) in &layers.env {
            let Some(rest) = name.strip_prefix(ENV_PREFIX) else {
                continue;
            };
            if name.starts_with(TEST_ENV_PREFIX) {
                continue; // the test suites' database URLs, not configuration
            }
            if rest.is_empty() {
                continue;
            }
            let key: Vec<String> = rest.split("__").map(|p| p.to_ascii_lowercase()).collect();
            let dotted = key.join(".");
            set_path(&mut table, &key, env_value(value)).map_err(|problem| ConfigError {
                key: dotted.clone(),
                origin: Some(Origin::Env(name.clone())),
                problem,
            })?;
            origins.insert(dotted, Origin::Env(name.clone()));
        }
        for (key, value, flag) in &layers.flags {
            let path: Vec<String> = key.split('.').map(str::to_owned).collect();
            set_path(&mut table, &path, toml::Value::String(value.clone())).map_err(|problem| {
                ConfigError {
                    key: key.clone(),
                    origin: Some(Origin::Flag(flag.clone())),
                    problem,
                }
            })?;
            origins.insert(key.clone(), Origin::Flag(flag.clone()));
        }
        let mut cfg: ServeConfig = serde_path_to_error::deserialize(toml::Value::Table(table))
            .map_err(|e| {
                let key = match e.path().to_string() {
                    p if p == "." => "(top level)".to_owned(),
                    p => p,
                };
                let origin = origin_of(&origins, &key);
                ConfigError {
                    key,
                    origin,
                    problem: e.into_inner().to_string(),
                }
            })?;
        cfg.auth.read_env(&layers.env);
        cfg.license.read_env(&layers.env);
        cfg.oidc.read_env(&layers.env);
        cfg.smtp.read_env(&layers.env);
        if cfg.queue.redis.url.is_none()
            && let Some((_, url)) = layers.env.iter().find(|(k, _)| k == "REDIS_URL")
            && !url.is_empty()
        {
            cfg.queue.redis.url = Some(url.clone());
            origins.insert("queue.redis.url".into(), Origin::Env("REDIS_URL".into()));
        }
        cfg.validate(&origins)?;
        Ok(cfg)
    }

    fn validate(&self, origins: &BTreeMap<String, Origin>) -> Result<(), ConfigError> {
        let err = |key: &str, problem: String| ConfigError {
            key: key.to_owned(),
            origin: origin_of(origins, key),
            problem,
        };
        if self.data_dir.as_os_str().is_empty() {
            return Err(err("data_dir", "must not be empty".into()));
        }
        if killkrill_core::event::Tenant::new(&self.tenant).is_err() {
            return Err(err(
                "tenant",
                format!("invalid tenant name {:?}", self.tenant),
            ));
        }
        match (&self.tls.cert, &self.tls.key) {
            (Some(_), None) => {
                return Err(err(
                    "tls.key",
                    "missing: tls.cert is set, so tls.key must be too".into(),
                ));
            }
            (None, Some(_)) => {
                return Err(err(
                    "tls.cert",
                    "missing: tls.key is set, so tls.cert must be too".into(),
                ));
            }
            (None, None) => {
                if self.syslog_tls.get().is_some() && origins.contains_key("syslog_tls") {
                    return Err(err(
                        "syslog_tls",
                        "a TLS listener needs tls.cert and tls.key (--tls-cert, --tls-key)".into(),
                    ));
                }
                if self.tls.client_ca.is_some() {
                    return Err(err(
                        "tls.client_ca",
                        "set without tls.cert and tls.key".into(),
                    ));
                }
            }
            (Some(_), Some(_)) => {}
        }
        for (key, file) in [
            ("tls.cert", &self.tls.cert),
            ("tls.key", &self.tls.key),
            ("tls.client_ca", &self.tls.client_ca),
        ] {
            if let Some(f) = file
                && let Err(e) = std::fs::metadata(f)
            {
                return Err(err(key, format!("cannot read {}: {e}", f.display())));
            }
        }
        self.validate_http_tls(origins)?;
        let positive: [(&str, u64); 22] = [
            ("query.max_range_secs", self.query.max_range_secs),
            ("query.default_limit", self.query.default_limit as u64),
            ("query.max_limit", self.query.max_limit as u64),
            ("query.max_series", self.query.max_series as u64),
            ("query.max_points", self.query.max_points as u64),
            ("query.max_buckets", self.query.max_buckets as u64),
            ("query.timeout_ms", self.query.timeout_ms),
            ("query.max_tails", self.query.max_tails as u64),
            (
                "query.tail_buffer_events",
                self.query.tail_buffer_events as u64,
            ),
            ("query.tail_poll_ms", self.query.tail_poll_ms),
            ("query.tail_heartbeat_secs", self.query.tail_heartbeat_secs),
            (
                "http_server.header_read_timeout_ms",
                self.http_server.header_read_timeout_ms,
            ),
            (
                "http_server.max_connections",
                self.http_server.max_connections as u64,
            ),
            (
                "http_server.tls_handshake_timeout_ms",
                self.http_server.tls_handshake_timeout_ms,
            ),
            (
                "http_ingest.max_body_bytes",
                self.http_ingest.max_body_bytes as u64,
            ),
            ("syslog.max_frame_bytes", self.syslog.max_frame_bytes as u64),
            ("syslog.max_connections", self.syslog.max_connections as u64),
            ("syslog.idle_timeout_secs", self.syslog.idle_timeout_secs),
            (
                "syslog.batch_max_events",
                self.syslog.batch_max_events as u64,
            ),
            ("syslog.batch_linger_ms", self.syslog.batch_linger_ms),
            ("queue.max_events", self.queue.max_events as u64),
            ("queue.max_bytes", self.queue.max_bytes as u64),
        ];
        for (key, v) in positive {
            if v == 0 {
                return Err(err(key, "must be greater than 0".into()));
            }
        }
        self.http_server.validate().map_err(|(k, p)| err(k, p))?;
        if self.query.max_limit > killkrill_core::logquery::MAX_PAGE_SIZE {
            return Err(err(
                "query.max_limit",
                format!(
                    "{} is above the engine's page cap of {}",
                    self.query.max_limit,
                    killkrill_core::logquery::MAX_PAGE_SIZE
                ),
            ));
        }
        if self.query.default_limit > self.query.max_limit {
            return Err(err(
                "query.default_limit",
                format!("{} is more than query.max_limit", self.query.default_limit),
            ));
        }
        if self.query.max_buckets > killkrill_core::logquery::MAX_BUCKETS {
            return Err(err(
                "query.max_buckets",
                format!(
                    "{} is above the engine's cap of {}",
                    self.query.max_buckets,
                    killkrill_core::logquery::MAX_BUCKETS
                ),
            ));
        }
        if self.query.max_range_secs > 100 * 365 * 86_400 {
            return Err(err("query.max_range_secs", "is above 100 years".into()));
        }
        if self.syslog.max_frame_bytes > 16 << 20 {
            return Err(err(
                "syslog.max_frame_bytes",
                format!(
                    "{} is above the limit of 16 MiB",
                    self.syslog.max_frame_bytes
                ),
            ));
        }
        if self.syslog.batch_max_events > self.queue.max_events {
            return Err(err(
                "syslog.batch_max_events",
                format!(
                    "{} is more than queue.max_events ({}): such a batch could never be enqueued",
                    self.syslog.batch_max_events, self.queue.max_events
                ),
            ));
        }
        if self.queue.kind == QueueKind::Redis && self.queue.redis.url.is_none() {
            return Err(err(
                "queue.redis.url",
                "missing: the redis queue needs a URL (set REDIS_URL or queue.redis.url)".into(),
            ));
        }
        self.queue
            .validate_tenant_groups()
            .map_err(|(key, problem)| err(key, problem))?;
        if let Err(e) = self.queue.to_store(&self.data_dir).validate() {
            let (key, problem) = match e {
                killkrill_store::queue::QueueConfigError::Invalid { key, message } => {
                    (self.queue.key_of(key), message)
                }
                other => ("queue".to_owned(), other.to_string()),
            };
            return Err(err(&key, problem));
        }
        if self.maintenance.retention_days > 100 * 365 {
            return Err(err(
                "maintenance.retention_days",
                "must be at most 36500 (0 keeps everything)".into(),
            ));
        }
        if let Err(e) = self.build_transforms() {
            return Err(ConfigError {
                origin: origin_of(origins, "transforms"),
                key: e.key,
                problem: e.message,
            });
        }
        if let Err((key, problem)) = self.auth.validate() {
            return Err(err(key, problem));
        }
        if let Err((key, problem)) = self.license.validate() {
            return Err(err(key, problem));
        }
        if let Err((key, problem)) = self.oidc.validate() {
            return Err(err(key, problem));
        }
        if let Err((key, problem)) = self.smtp.validate() {
            return Err(err(key, problem));
        }
        if self.rollups.enabled
            && let Err(e) = self.rollups.aggregate.build()
        {
            let key = format!("rollups.aggregate.{}", e.key);
            return Err(ConfigError {
                origin: origin_of(origins, &key),
                key,
                problem: e.message,
            });
        }
        if let Err((key, problem)) = self.scrape.validate() {
            return Err(err(&key, problem));
        }
        if self.workers.count > 256 {
            return Err(err("workers.count", "must be at most 256".into()));
        }
        if let Err((key, problem)) = crate::serve::worker_groups::validate(&self.workers) {
            return Err(err(key, problem));
        }
        let tcp_like = [
            ("http", self.http.get()),
            ("syslog_tcp", self.syslog_tcp.get()),
            (
                "syslog_tls",
                self.tls_enabled().then(|| self.syslog_tls.get()).flatten(),
            ),
        ];
        for (i, (ka, a)) in tcp_like.iter().enumerate() {
            for (kb, b) in &tcp_like[i + 1..] {
                if let (Some(a), Some(b)) = (a, b)
                    && a == b
                    && a.port() != 0
                {
                    return Err(err(kb, format!("{b} is also used by {ka}")));
                }
            }
        }
        Ok(())
    }

    /// The running transform chain.
    ///
    /// # Errors
    /// The first transform config error, naming its key (`transforms[1].regex`).
    pub fn build_transforms(
        &self,
    ) -> Result<TransformChain, killkrill_core::transform::ConfigError> {
        TransformChain::build("transforms", &self.transforms, &BuildContext::from_system())
    }

    /// `[http_tls]`: cert and key together, `client_ca` and `client_auth`
    /// only with them, every file readable.
    fn validate_http_tls(&self, origins: &BTreeMap<String, Origin>) -> Result<(), ConfigError> {
        let err = |key: &str, problem: String| ConfigError {
            key: key.to_owned(),
            origin: origin_of(origins, key),
            problem,
        };
        let t = &self.http_tls;
        match (&t.cert, &t.key) {
            (Some(_), None) => {
                return Err(err(
                    "http_tls.key",
                    "missing: http_tls.cert is set, so http_tls.key must be too".into(),
                ));
            }
            (None, Some(_)) => {
                return Err(err(
                    "http_tls.cert",
                    "missing: http_tls.key is set, so http_tls.cert must be too".into(),
                ));
            }
            (None, None) if t.client_ca.is_some() => {
                return Err(err(
                    "http_tls.client_ca",
                    "set without http_tls.cert and http_tls.key".into(),
                ));
            }
            _ => {}
        }
        if t.client_ca.is_none() && origins.contains_key("http_tls.client_auth") {
            return Err(err(
                "http_tls.client_auth",
                "set without http_tls.client_ca (the CAs client certificates must chain to)".into(),
            ));
        }
        for (key, file) in [
            ("http_tls.cert", &t.cert),
            ("http_tls.key", &t.key),
            ("http_tls.client_ca", &t.client_ca),
        ] {
            if let Some(f) = file
                && let Err(e) = std::fs::metadata(f)
            {
                return Err(err(key, format!("cannot read {}: {e}", f.display())));
            }
        }
        Ok(())
    }

    /// True when the HTTP listener speaks TLS (`[http_tls]` cert and key).
    pub fn http_tls_enabled(&self) -> bool {
        self.http_tls.cert.is_some() && self.http_tls.key.is_some()
    }

    /// True when the TLS listener runs.
    pub fn tls_enabled(&self) -> bool {
        self.tls.cert.is_some() && self.tls.key.is_some() && self.syslog_tls.get().is_some()
    }

    /// The SQLite data directory as a path.
    pub fn data_dir(&self) -> &Path {
        &self.data_dir
    }

    /// The effective configuration as TOML (for `check-config`).
    pub fn to_toml(&self) -> String {
        toml::to_string(self).unwrap_or_default()
    }
}

fn origin_of(origins: &BTreeMap<String, Origin>, key: &str) -> Option<Origin> {
    // The error path may point inside a value (`syslog.max_connections`) or
    // at a section (`syslog`): take the longest recorded prefix.
    let mut k = key;
    loop {
        if let Some(o) = origins.get(k) {
            return Some(o.clone());
        }
        match k.rfind('.') {
            Some(i) => k = &k[..i],
            None => return None,
        }
    }
}

fn record_origins(
    t: &toml::Table,
    prefix: &str,
    origin: &Origin,
    out: &mut BTreeMap<String, Origin>,
) {
    for (k, v) in t {
        let key = if prefix.is_empty() {
            k.clone()
        } else {
            format!("{prefix}.{k}")
        };
        if let toml::Value::Table(inner) = v {
            record_origins(inner, &key, origin, out);
        }
        out.insert(key, origin.clone());
    }
}

/// An environment value as TOML: a number or boolean when it reads as one,
/// else a string.
fn env_value(v: &str) -> toml::Value {
    let t = v.trim();
    if let Ok(i) = t.parse::<i64>() {
        return toml::Value::Integer(i);
    }
    if t.contains('.')
        && t.chars()
            .all(|c| c.is_ascii_digit() || c == '.' || c == '-')
        && let Ok(f) = t.parse::<f64>()
    {
        return toml::Value::Float(f);
    }
    match t {
        "true" => toml::Value::Boolean(true),
        "false" => toml::Value::Boolean(false),
        _ => toml::Value::String(v.to_owned()),
    }
}

/// Merges `over` into `base`, recursing into tables present in both.
fn merge_tables(base: &mut toml::Table, over: toml::Table) {
    for (k, v) in over {
        match (base.get_mut(&k), v) {
            (Some(toml::Value::Table(b)), toml::Value::Table(o)) => merge_tables(b, o),
            (_, v) => {
                base.insert(k, v);
            }
        }
    }
}

fn set_path(table: &mut toml::Table, path: &[String], value: toml::Value) -> Result<(), String> {
    let Some((last, parents)) = path.split_last() else {
        return Err("empty key".into());
    };
    let mut t = table;
    for p in parents {
        let entry = t
            .entry(p.clone())
            .or_insert_with(|| toml::Value::Table(toml::Table::new()));
        t = match entry {
            toml::Value::Table(inner) => inner,
            _ => return Err(format!("{p} is not a section")),
        };
    }
    t.insert(last.clone(), value);
    Ok(())
}

#[cfg(test)]
#[allow(clippy::unwrap_used)]
mod tests {
    use super::*;

    fn load(
        file: Option<&str>,
        env: &[(&str, &str)],
        flags: &[(&str, &str)],
    ) -> Result<ServeConfig, ConfigError> {
        let dir = tempfile::tempdir().unwrap();
        let file = file.map(|text| {
            let p = dir.path().join("killkrill.toml");
            std::fs::write(&p, text).unwrap();
            p
        });
        ServeConfig::load(&Layers {
            file,
            env: env
                .iter()
                .map(|(k, v)| ((*k).to_owned(), (*v).to_owned()))
                .collect(),
            flags: flags
                .iter()
                .map(|(k, v)| ((*k).to_owned(), (*v).to_owned(), k.replace('_', "-")))
                .collect(),
            defaults: Vec::new(),
        })
    }

    #[test]
    fn no_configuration_at_all_is_valid() {
        let c = load(None, &[], &[]).unwrap();
        assert_eq!(c.to_toml(), ServeConfig::default().to_toml());
        assert!(c.transforms.is_empty());
        assert_eq!(c.http.to_string(), "127.0.0.1:8080");
        assert!(!c.tls_enabled());
    }

    #[test]
    fn flags_beat_env_beat_file() {
        let file = "http = \"127.0.0.1:1000\"\nsyslog_udp = \"127.0.0.1:1001\"\nsyslog_tcp = \"127.0.0.1:1002\"\n[syslog]\nmax_connections = 7\n";
        let env = [
            ("KILLKRILL_SYSLOG_UDP", "127.0.0.1:2001"),
            ("KILLKRILL_SYSLOG_TCP", "127.0.0.1:2002"),
            ("KILLKRILL_SYSLOG__IDLE_TIMEOUT_SECS", "9"),
            ("PATH", "/bin"),
            ("KILLKRILL_TEST_POSTGRES_URL", "postgres://x"),
        ];
        let c = load(Some(file), &env, &[("syslog_tcp", "")]).unwrap();
        assert_eq!(c.http.to_string(), "127.0.0.1:1000");
        assert_eq!(c.syslog_udp.to_string(), "127.0.0.1:2001");
        assert_eq!(c.syslog_tcp, ListenAddr::OFF);
        assert_eq!(c.syslog.max_connections, 7);
        assert_eq!(c.syslog.idle_timeout_secs, 9);
    }

    #[test]
    fn queue_kinds_default_and_redis_url() {
        let c = load(None, &[], &[]).unwrap();
        assert_eq!(c.queue.kind, QueueKind::Sqlite);
        let killkrill_store::queue::QueueConfig::Sqlite(s) = c.queue.to_store(Path::new("/d"))
        else {
            panic!("not sqlite")
        };
        assert_eq!(s.path, Path::new("/d/queue.db"));
        let c = load(
            Some("[queue]\nkind = \"memory\"\nmax_events = 7\n[syslog]\nbatch_max_events = 7\n"),
            &[],
            &[],
        )
        .unwrap();
        assert_eq!((c.queue.kind, c.queue.max_events), (QueueKind::Memory, 7));
        let c = load(
            None,
            &[
                ("KILLKRILL_QUEUE__KIND", "redis"),
                ("REDIS_URL", "redis://127.0.0.1:1"),
            ],
            &[],
        )
        .unwrap();
        assert_eq!(c.queue.redis.url.as_deref(), Some("redis://127.0.0.1:1"));
        // The config's own key wins over REDIS_URL; a command's defaults
        // lose to everything.
        let mut layers = Layers {
            env: vec![
                ("KILLKRILL_QUEUE__REDIS__URL".into(), "redis://a".into()),
                ("REDIS_URL".into(), "redis://b".into()),
            ],
            defaults: vec![("queue.kind".into(), "redis".into())],
            ..Layers::default()
        };
        let c = ServeConfig::load(&layers).unwrap();
        assert_eq!(
            (c.queue.kind, c.queue.redis.url.as_deref()),
            (QueueKind::Redis, Some("redis://a"))
        );
        layers.flags = vec![("queue.kind".into(), "memory".into(), "queue".into())];
        assert_eq!(
            ServeConfig::load(&layers).unwrap().queue.kind,
            QueueKind::Memory
        );
    }

    #[test]
    fn errors_name_the_key_and_the_layer() {
        type Case<'a> = (
            Option<&'a str>,
            &'a [(&'a str, &'a str)],
            &'a [(&'a str, &'a str)],
            &'a str,
        );
        let cases: &[Case<'_>] = &[
            (
                None,
                &[],
                &[("http", "nope")],
                "http (from --http): invalid address \"nope\"",
            ),
            (
                None,
                &[("KILLKRILL_SYSLOG__MAX_CONNECTIONS", "-1")],
                &[],
                "syslog.max_connections (from KILLKRILL_SYSLOG__MAX_CONNECTIONS): invalid value",
            ),
            (
                None,
                &[("KILLKRILL_NOPE", "1")],
                &[],
                "unknown field `nope`",
            ),
            (
                Some("[queue]\nmax_events = 0\n"),
                &[],
                &[],
                "queue.max_events (from ",
            ),
            (
                Some("[syslog]\nbogus = 1\n"),
                &[],
                &[],
                "unknown field `bogus`",
            ),
            (Some("http = ["), &[], &[], "not valid TOML"),
            (
                Some("[[transforms]]\ntype = \"filter\"\nregex = \"(\"\n"),
                &[],
                &[],
                "transforms[0].regex",
            ),
            (
                Some("[[transforms]]\ntype = \"nope\"\n"),
                &[],
                &[],
                "transforms[0]",
            ),
            (
                Some("[rollups.aggregate]\nresolutions = [\"1m\", \"0s\"]\n"),
                &[],
                &[],
                "rollups.aggregate.resolutions[1]",
            ),
            (
                Some("[rollups]\nbogus = 1\n"),
                &[],
                &[],
                "unknown field `bogus`",
            ),
            (
                None,
                &[],
                &[("syslog_tls", "127.0.0.1:6514")],
                "syslog_tls (from --syslog-tls): a TLS listener needs tls.cert",
            ),
            (
                None,
                &[],
                &[("tls.cert", "/nonexistent/cert.pem")],
                "tls.key: missing",
            ),
            (
                None,
                &[],
                &[("http", "127.0.0.1:5514")],
                "syslog_tcp: 127.0.0.1:5514 is also used by http",
            ),
            (
                Some("[auth]\nmode = \"disabled\"\n"),
                &[("RELEASE_MODE", "true")],
                &[],
                "auth.mode (from ",
            ),
            (Some("[auth]\nmode = \"off\"\n"), &[], &[], "auth.mode"),
            (
                None,
                &[("JWT_SECRET", "short")],
                &[],
                "JWT_SECRET: must be at least 32 bytes",
            ),
            (
                Some("[queue]\nkind = \"kafka\"\n"),
                &[],
                &[],
                "queue.kind (from ",
            ),
            (
                None,
                &[("KILLKRILL_QUEUE__KIND", "redis")],
                &[],
                "queue.redis.url: missing",
            ),
            (
                None,
                &[
                    ("KILLKRILL_QUEUE__KIND", "redis"),
                    ("REDIS_URL", "http://x"),
                ],
                &[],
                "queue.redis.url (from REDIS_URL): must start with redis://",
            ),
            (
                Some(
                    "[queue]\nkind = \"redis\"\n[queue.redis]\nurl = \"redis://x\"\nstream = \"a b\"\n",
                ),
                &[],
                &[],
                "queue.redis.stream (from ",
            ),
            (
                None,
                &[("KILLKRILL_QUEUE__VISIBILITY_TIMEOUT_MS", "0")],
                &[],
                "queue.visibility_timeout_ms (from KILLKRILL_QUEUE__VISIBILITY_TIMEOUT_MS): must be greater than 0",
            ),
            (
                Some("[queue.sqlite]\nsynchronous = \"sometimes\"\n"),
                &[],
                &[],
                "queue.sqlite.synchronous (from ",
            ),
        ];
        for (file, env, flags, want) in cases {
            let e = load(*file, env, flags).unwrap_err().to_string();
            assert!(e.contains(want), "{e:?} should contain {want:?}");
        }
    }
}
