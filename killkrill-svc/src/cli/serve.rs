//! `killkrill serve` and `killkrill check-config`.
//!
//! Both read the same layers (defaults, `--config` file, `KILLKRILL_*`
//! environment, flags; see [`crate::config`]); `check-config` stops after
//! validating (and loading the TLS files) and prints the effective
//! configuration, `serve` runs until SIGINT or SIGTERM and then shuts down
//! without losing what it acknowledged.

use std::io::Write;
use std::path::PathBuf;
use std::process::ExitCode;

use clap::Args;
use killkrill_store::{DbType, StoreConfig};

use crate::config::{Layers, ServeConfig};
use crate::serve::{Roles, StartOptions, start_with};

/// The flags shared by `serve` and `check-config`. Each overrides the
/// config file and the environment.
#[derive(Debug, Clone, Args, Default)]
pub struct ConfigArgs {
    /// TOML configuration file.
    #[arg(long, value_name = "FILE")]
    pub config: Option<PathBuf>,
    /// Data directory (SQLite database). [default: ./killkrill-data]
    #[arg(long, value_name = "DIR")]
    pub data_dir: Option<String>,
    /// HTTP listen address; "" turns it off. [default: 127.0.0.1:8080]
    #[arg(long, value_name = "ADDR")]
    pub http: Option<String>,
    /// Syslog UDP listen address; "" turns it off. [default: 127.0.0.1:5514]
    #[arg(long, value_name = "ADDR")]
    pub syslog_udp: Option<String>,
    /// Syslog TCP listen address; "" turns it off. [default: 127.0.0.1:5514]
    #[arg(long, value_name = "ADDR")]
    pub syslog_tcp: Option<String>,
    /// Syslog TLS listen address, used with --tls-cert and --tls-key; ""
    /// turns it off. [default: 127.0.0.1:6514]
    #[arg(long, value_name = "ADDR")]
    pub syslog_tls: Option<String>,
    /// TLS certificate chain (PEM).
    #[arg(long, value_name = "FILE")]
    pub tls_cert: Option<String>,
    /// TLS private key (PEM).
    #[arg(long, value_name = "FILE")]
    pub tls_key: Option<String>,
    /// CA bundle (PEM) that client certificates must chain to; turns on
    /// client certificate checking.
    #[arg(long, value_name = "FILE")]
    pub tls_client_ca: Option<String>,
    /// Tenant groups (`[queue.tenant_groups]`) this process's workers take
    /// batches from, comma-separated. [default: all]
    #[arg(long, value_name = "A,B")]
    pub queue_groups: Option<String>,
    /// HTTPS on the HTTP listener (and gRPC over TLS): certificate chain
    /// (PEM). With --http-tls-key the port speaks only TLS.
    #[arg(long, value_name = "FILE")]
    pub http_tls_cert: Option<String>,
    /// HTTPS on the HTTP listener: private key (PEM).
    #[arg(long, value_name = "FILE")]
    pub http_tls_key: Option<String>,
    /// CA bundle (PEM) that HTTP/gRPC client certificates must chain to
    /// (mTLS).
    #[arg(long, value_name = "FILE")]
    pub http_tls_client_ca: Option<String>,
    /// With --http-tls-client-ca: "required" (default) or "optional".
    #[arg(long, value_name = "MODE")]
    pub http_tls_client_auth: Option<String>,
}

impl ConfigArgs {
    /// The layers these flags and the process environment make.
    pub fn layers(&self, env: Vec<(String, String)>) -> Layers {
        let mut flags = Vec::new();
        let mut add = |key: &str, flag: &str, v: &Option<String>| {
            if let Some(v) = v {
                flags.push((key.to_owned(), v.clone(), flag.to_owned()));
            }
        };
        add("data_dir", "data-dir", &self.data_dir);
        add("http", "http", &self.http);
        add("syslog_udp", "syslog-udp", &self.syslog_udp);
        add("syslog_tcp", "syslog-tcp", &self.syslog_tcp);
        add("syslog_tls", "syslog-tls", &self.syslog_tls);
        add("tls.cert", "tls-cert", &self.tls_cert);
        add("tls.key", "tls-key", &self.tls_key);
        add("tls.client_ca", "tls-client-ca", &self.tls_client_ca);
        add("queue.groups", "queue-groups", &self.queue_groups);
        add("http_tls.cert", "http-tls-cert", &self.http_tls_cert);
        add("http_tls.key", "http-tls-key", &self.http_tls_key);
        add(
            "http_tls.client_ca",
            "http-tls-client-ca",
            &self.http_tls_client_ca,
        );
        add(
            "http_tls.client_auth",
            "http-tls-client-auth",
            &self.http_tls_client_auth,
        );
        Layers {
            file: self.config.clone(),
            env,
            flags,
            defaults: Vec::new(),
        }
    }
}

/// Arguments of `killkrill serve`.
#[derive(Debug, Clone, Args)]
pub struct ServeArgs {
    /// Configuration.
    #[command(flatten)]
    pub config: ConfigArgs,
}

fn env_vars() -> Vec<(String, String)> {
    std::env::vars().collect()
}

fn load(
    args: &ConfigArgs,
    roles: Roles,
    err: &mut impl Write,
) -> Result<(ServeConfig, StoreConfig), ExitCode> {
    let mut layers = args.layers(env_vars());
    if roles != Roles::ALL {
        // The scale-out roles share one queue: Redis unless told otherwise.
        layers.defaults.push(("queue.kind".into(), "redis".into()));
    }
    let cfg = ServeConfig::load(&layers).map_err(|e| {
        let _ = writeln!(err, "killkrill: configuration: {e}");
        ExitCode::from(2)
    })?;
    let store = StoreConfig::from_env(|k| std::env::var(k).ok(), DbType::Sqlite, &cfg.data_dir)
        .map_err(|e| {
            let _ = writeln!(err, "killkrill: configuration: {e}");
            ExitCode::from(2)
        })?;
    Ok((cfg, store))
}

/// `killkrill check-config`.
pub fn check_config(args: &ConfigArgs, mut out: impl Write, mut err: impl Write) -> ExitCode {
    let (cfg, store) = match load(args, Roles::ALL, &mut err) {
        Ok(c) => c,
        Err(code) => return code,
    };
    if cfg.tls_enabled()
        && let Err(e) = crate::serve::syslog::server_config(&cfg.tls)
    {
        let _ = writeln!(err, "killkrill: configuration: {e}");
        return ExitCode::from(2);
    }
    if cfg.http_tls_enabled()
        && let Err(e) = crate::serve::tls::server_config(
            &cfg.http_tls,
            "http_tls",
            crate::serve::tls::HTTP_ALPN,
        )
    {
        let _ = writeln!(err, "killkrill: configuration: {e}");
        return ExitCode::from(2);
    }
    if cfg.smtp.enabled()
        && let Err((k, p)) = crate::email::outbox::transport(&cfg.smtp)
    {
        let _ = writeln!(err, "killkrill: configuration: {k}: {p}");
        return ExitCode::from(2);
    }
    let db = match (&store.url, store.db_type) {
        (Some(_), t) => format!("{t} from DATABASE_URL"),
        (None, DbType::Sqlite) => format!("sqlite {}", store.sqlite.path.display()),
        (None, t) => format!(
            "{t} on {}",
            store.host.as_deref().unwrap_or("(GALERA_NODES)")
        ),
    };
    for w in cfg.warnings() {
        let _ = writeln!(err, "killkrill: configuration warning: {w}");
    }
    let transforms = match cfg.transforms.len() {
        0 => String::new(),
        n => format!("; {n} transforms"),
    };
    match write!(
        out,
        "# configuration is valid; database: {db}{transforms}\n{}",
        cfg.to_toml()
    ) {
        Ok(()) => ExitCode::SUCCESS,
        Err(_) => ExitCode::FAILURE,
    }
}

/// `killkrill serve` (`roles` = [`Roles::ALL`]) or one of the scale-out
/// roles: runs until SIGINT/SIGTERM.
pub fn run(args: &ServeArgs, roles: Roles, mut out: impl Write, mut err: impl Write) -> ExitCode {
    init_logging();
    let name = roles.name();
    let (cfg, store) = match load(&args.config, roles, &mut err) {
        Ok(c) => c,
        Err(code) => return code,
    };
    for w in cfg.warnings() {
        tracing::warn!(warning = %w, "configuration");
    }
    let rt = match tokio::runtime::Builder::new_multi_thread()
        .enable_all()
        .build()
    {
        Ok(rt) => rt,
        Err(e) => {
            let _ = writeln!(err, "killkrill {name}: starting the runtime: {e}");
            return ExitCode::FAILURE;
        }
    };
    rt.block_on(async move {
        let handle = match start_with(
            cfg,
            StartOptions {
                store: Some(store),
                metric_sink: None,
                queue: None,
                roles,
            },
        )
        .await
        {
            Ok(h) => h,
            Err(e) => {
                let _ = writeln!(err, "killkrill {name}: {e}");
                return ExitCode::FAILURE;
            }
        };
        let show = |a: Option<std::net::SocketAddr>| a.map_or("off".to_owned(), |a| a.to_string());
        let line = format!(
            "killkrill {name}: http {} syslog-udp {} syslog-tcp {} syslog-tls {}",
            show(handle.http),
            show(handle.syslog_udp),
            show(handle.syslog_tcp),
            show(handle.syslog_tls)
        );
        if let Some((creds, path)) = &handle.bootstrap {
            let msg = format!(
                "killkrill serve: first start: created admin {} with password {} and an ingest,read API key {} (tenant {}); they are also in {} (mode 0600). This is the only time they are printed.",
                creds.admin_email, creds.admin_password, creds.api_key, creds.tenant, path.display()
            );
            let _ = writeln!(out, "{msg}");
        }
        if writeln!(out, "{line}").and_then(|()| out.flush()).is_err() {
            // stdout closed: keep serving, the logs say where.
        }
        wait_for_signal().await;
        tracing::info!("shutdown requested");
        let report = handle.shutdown().await;
        if report.lost > 0 {
            ExitCode::FAILURE
        } else {
            ExitCode::SUCCESS
        }
    })
}

async fn wait_for_signal() {
    #[cfg(unix)]
    {
        use tokio::signal::unix::{SignalKind, signal};
        match signal(SignalKind::terminate()) {
            Ok(mut term) => {
                tokio::select! {
                    _ = tokio::signal::ctrl_c() => {}
                    _ = term.recv() => {}
                }
            }
            Err(_) => {
                let _ = tokio::signal::ctrl_c().await;
            }
        }
    }
    #[cfg(not(unix))]
    {
        let _ = tokio::signal::ctrl_c().await;
    }
}

/// JSON logs on stderr; `RUST_LOG` filters (default `info`).
fn init_logging() {
    let filter = tracing_subscriber::EnvFilter::try_from_default_env()
        .unwrap_or_else(|_| tracing_subscriber::EnvFilter::new("info"));
    let _ = tracing_subscriber::fmt()
        .json()
        .with_env_filter(filter)
        .with_writer(std::io::stderr)
        .try_init();
}
