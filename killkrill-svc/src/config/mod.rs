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

use std::fmt;
use std::net::SocketAddr;
use std::path::{Path, PathBuf};

use killkrill_core::transform::{BuildContext, TransformChain, TransformConfig};
use serde::{Deserialize, Serialize};

mod load;
mod queue;
mod sections;
#[cfg(test)]
mod tests;
mod validate;

pub use load::{ConfigError, Layers, Origin};
pub use queue::{QueueConfig, QueueKind, RedisQueueSection, SqliteQueueSection};
pub use sections::{
    ClientAuth, HttpIngestConfig, HttpServerConfig, MaintenanceConfig, QueryConfig, RollupsConfig,
    SyslogConfig, TlsConfig, WorkersConfig,
};

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

impl ServeConfig {
    /// The running transform chain.
    ///
    /// # Errors
    /// The first transform config error, naming its key (`transforms[1].regex`).
    pub fn build_transforms(
        &self,
    ) -> Result<TransformChain, killkrill_core::transform::ConfigError> {
        TransformChain::build("transforms", &self.transforms, &BuildContext::from_system())
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

    /// Valid settings that work against each other, one sentence each
    /// naming the keys (`check-config` prints them, `serve` logs them).
    pub fn warnings(&self) -> Vec<String> {
        let mut w = Vec::new();
        // The memory and SQLite queues count the batches the workers hold
        // in their groups until they are written: a bound under two groups
        // per worker leaves receivers waiting on the workers.
        let held = self
            .workers
            .count
            .saturating_mul(self.workers.group_max_events);
        if self.queue.kind != QueueKind::Redis && self.queue.max_events < held.saturating_mul(2) {
            w.push(format!(
                "queue.max_events ({}) is under twice what the workers hold in their groups \
                 (workers.count × workers.group_max_events = {held}): receivers will wait for \
                 the workers' acknowledgements; raise queue.max_events or lower \
                 workers.group_max_events",
                self.queue.max_events
            ));
        }
        w
    }
}
