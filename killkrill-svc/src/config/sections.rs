//! The plain sections of the configuration: TLS, HTTP, syslog, workers,
//! maintenance, query limits and rollups.

use std::path::PathBuf;

use serde::{Deserialize, Serialize};

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
#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize)]
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
    /// How often the files are read again to pick up a rotated certificate
    /// (ms; new connections get it, open ones keep theirs); `SIGHUP` also
    /// reloads. `0` turns polling off. Default 30000.
    pub reload_interval_ms: u64,
}

/// Default of `reload_interval_ms`.
pub const TLS_RELOAD_INTERVAL_MS: u64 = 30_000;

impl Default for TlsConfig {
    fn default() -> Self {
        TlsConfig {
            cert: None,
            key: None,
            client_ca: None,
            client_auth: ClientAuth::default(),
            reload_interval_ms: TLS_RELOAD_INTERVAL_MS,
        }
    }
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
    /// Largest request body after decompression, bytes (413 above). For
    /// remote write and Loki protobuf (snappy is the body format, not a
    /// `Content-Encoding`) this bounds both the compressed body and its
    /// decompressed protobuf; for gRPC, the request message.
    pub max_body_bytes: usize,
    /// Most memory the events decoded from one request may take, bytes,
    /// estimated as the queue counts them (413 / `RESOURCE_EXHAUSTED`
    /// above). Formats that name a label set once and apply it to many
    /// samples or entries (remote write, Loki, gRPC `PushMetrics`) can
    /// decode into far more than they send; this bounds it. Unset: 16 ×
    /// `max_body_bytes`.
    #[serde(skip_serializing_if = "Option::is_none")]
    pub max_output_bytes: Option<usize>,
    /// How long a request waits for room in a full queue before 429, ms.
    pub enqueue_wait_ms: u64,
}

impl HttpIngestConfig {
    /// The decoded-output budget of one request: `max_output_bytes`, or 16 ×
    /// `max_body_bytes` when unset.
    pub fn output_budget(&self) -> usize {
        self.max_output_bytes
            .unwrap_or_else(|| self.max_body_bytes.saturating_mul(16))
    }
}

impl Default for HttpIngestConfig {
    fn default() -> Self {
        HttpIngestConfig {
            max_body_bytes: 16 << 20,
            max_output_bytes: None,
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
    /// Most of those from one source address (a TLS handshake in progress
    /// counts), so one sender cannot take every slot; more are closed on
    /// accept and counted.
    pub max_connections_per_ip: usize,
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
            max_connections_per_ip: 64,
            idle_timeout_secs: 300,
            udp_recv_buffer_bytes: 8 << 20,
            batch_max_events: 2_000,
            batch_linger_ms: 100,
        }
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
    /// ...or this many log records (log writes gain nothing from larger
    /// groups; metric writes do, and take `group_max_events`)...
    pub group_max_logs: usize,
    /// ...or this many bytes of events (estimated, as the queue's cache
    /// counts them): the bound on a group's memory whatever its events
    /// weigh (2,000-sample requests or 64 KiB log lines)...
    pub group_max_bytes: usize,
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
            group_max_events: 250_000,
            group_max_logs: 100_000,
            group_max_bytes: 64 << 20,
            group_max_batches: 1024,
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
    /// Most live tails open at once in the process (SSE and gRPC
    /// together); beyond, 429 naming `query.max_tails`.
    pub max_tails: usize,
    /// Most live tails one tenant may have open at once (SSE and gRPC
    /// together), so one API key cannot take every tail of the process;
    /// beyond, 429 naming `query.max_tails_per_tenant`. At most
    /// `max_tails` in effect.
    pub max_tails_per_tenant: usize,
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
    /// Keys of records inside the grace window a tail remembers, to send
    /// late records once (about 48 bytes each; each poll re-reads at most
    /// about this many records). With more records than this
    /// inside the window, the oldest are forgotten: late records before
    /// them are not tailed and the client is sent `event: gap`. New records
    /// never depend on it (they are read by cursor). 1..=1,000,000.
    pub tail_late_window_records: usize,
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
            max_tails_per_tenant: 16,
            tail_buffer_events: 1_024,
            tail_poll_ms: 1_000,
            tail_grace_secs: 5,
            tail_late_window_records: 20_000,
            tail_heartbeat_secs: 15,
            rollup_reads: false,
        }
    }
}
