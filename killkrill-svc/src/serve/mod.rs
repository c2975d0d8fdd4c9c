//! `killkrill serve`: every role in one process.
//!
//! ```text
//!  HTTP (axum) ──────┐                       ┌─► LogStoreSink ──► log blocks (SQLite/PG/MySQL)
//!  syslog UDP ───────┼─► Ingest ─► Queue ─► Workers ─► FanOut
//!  syslog TCP / TLS ─┘  (ids, tenant)        └─► StoreMetricSink ──► samples, metadata, rollups
//! ```
//!
//! [`start`] binds every listener (port 0 picks a free one; the handle says
//! which), opens the store (running migrations) and spawns the workers; it
//! returns once everything is accepting. [`ServeHandle::shutdown`] stops in
//! the order that loses nothing: stop accepting and let every listener
//! enqueue what it holds, wait until the workers have emptied the queue,
//! then stop the workers (each finishes and acknowledges the group in hand)
//! and close the store.
//!
//! The queue is an `Arc<dyn Queue>` chosen by `[queue] kind`: the durable
//! SQLite queue under `data_dir` by default (what a client was told is
//! stored survives a crash: it is delivered after the restart), the
//! in-memory queue, or Redis Streams shared with other processes; or one
//! given through [`StartOptions::queue`].
//!
//! The same function starts the scale-out roles ([`Roles`]): a receiver is
//! the listeners without workers, a worker the workers without syslog
//! listeners, an API the read routes.

pub mod http;
pub mod ingest;
pub mod lease;
pub mod maintenance;
mod open;
pub mod scrape;
pub mod scrape_settings;
pub mod self_metrics;
pub mod settings;
pub mod sinks;
pub mod syslog;
pub mod tenant_groups;
pub mod tls;
pub mod tls_reload;
pub mod worker_groups;

use std::net::SocketAddr;
use std::sync::Arc;
use std::time::Duration;

use killkrill_core::event::Tenant;
use killkrill_core::pipeline::{
    FanOut, MeteredQueue, Queue, Shutdown, ShutdownTrigger, Sink, Worker, WorkerReport,
    shutdown_channel,
};
use killkrill_store::queue::SqliteQueue;
use killkrill_store::{Store, StoreConfig};
use tokio::task::JoinHandle;

use crate::auth::Auth;
use crate::auth::bootstrap::BootstrapCredentials;
use crate::config::{QueueKind, ServeConfig};
use ingest::Ingest;
use open::{DynQueue, bind_all, close_opened, open_queue};
use sinks::{LogStoreSink, MetricSink, MetricSinkAdapter, StoreDeadLetter};
use tls_reload::Reloader;

/// `serve` could not start.
#[derive(Debug, thiserror::Error)]
pub enum StartError {
    /// A listener could not bind.
    #[error("{key}: cannot listen on {addr}: {source}")]
    Bind {
        /// The config key (`http`, `syslog_udp`, ...).
        key: &'static str,
        /// The address.
        addr: SocketAddr,
        /// Why.
        source: std::io::Error,
    },
    /// The database could not be opened or migrated.
    #[error("database: {0}")]
    Store(#[from] killkrill_core::storage::StoreError),
    /// The TLS files are unusable.
    #[error(transparent)]
    Tls(#[from] tls::TlsError),
    /// Another problem with the configuration.
    #[error("{0}")]
    Config(String),
}

/// Which roles one process runs. `serve` runs all of them; the scale-out
/// commands (`receiver`, `worker`, `api`) one each, sharing a Redis queue
/// and a database with the others.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub struct Roles {
    /// Listeners (syslog, HTTP ingest routes) that enqueue.
    pub receiver: bool,
    /// Workers that dequeue and write to the store, and store maintenance.
    pub worker: bool,
    /// HTTP read routes (queries).
    pub api: bool,
}

impl Roles {
    /// Every role: `killkrill serve`.
    pub const ALL: Roles = Roles {
        receiver: true,
        worker: true,
        api: true,
    };
    /// `killkrill receiver`.
    pub const RECEIVER: Roles = Roles {
        receiver: true,
        worker: false,
        api: false,
    };
    /// `killkrill worker`.
    pub const WORKER: Roles = Roles {
        receiver: false,
        worker: true,
        api: false,
    };
    /// `killkrill api`.
    pub const API: Roles = Roles {
        receiver: false,
        worker: false,
        api: true,
    };

    /// The command's name (`serve`, `receiver`, ...; `custom` otherwise).
    pub fn name(self) -> &'static str {
        match self {
            Roles::ALL => "serve",
            Roles::RECEIVER => "receiver",
            Roles::WORKER => "worker",
            Roles::API => "api",
            _ => "custom",
        }
    }
}

impl Default for Roles {
    fn default() -> Self {
        Roles::ALL
    }
}

/// Choices that are not part of the file/env/flag configuration.
#[derive(Default)]
pub struct StartOptions {
    /// The database; SQLite under `data_dir` when `None`.
    pub store: Option<StoreConfig>,
    /// Where metric samples go; the store (samples, metadata, rollups) when `None`.
    pub metric_sink: Option<Arc<dyn MetricSink>>,
    /// The queue between receivers and workers; when `None`, the one
    /// `[queue]` selects (SQLite under `data_dir` by default). Either way it
    /// is wrapped in [`MeteredQueue`] for the enqueue counters.
    pub queue: Option<Arc<dyn Queue>>,
    /// The roles to run; all of them (`serve`) by default.
    pub roles: Roles,
}

/// A running `serve` (or one of its roles).
pub struct ServeHandle {
    /// Bound HTTP address, when on.
    pub http: Option<SocketAddr>,
    /// Bound syslog UDP address, when on.
    pub syslog_udp: Option<SocketAddr>,
    /// Bound syslog TCP address, when on.
    pub syslog_tcp: Option<SocketAddr>,
    /// Bound syslog TLS address, when on.
    pub syslog_tls: Option<SocketAddr>,
    /// The store (tests read back through core's query engine).
    pub store: Store,
    /// The queue.
    pub queue: Arc<dyn Queue>,
    /// Authentication (users, keys, tokens) of this process.
    pub auth: Arc<Auth>,
    /// The license of this process.
    pub license: Arc<crate::license::Licensing>,
    /// What the first start created (admin and API key) and the 0600 file
    /// it wrote them to; `None` when users existed already.
    pub bootstrap: Option<(BootstrapCredentials, std::path::PathBuf)>,
    /// The roles running.
    pub roles: Roles,
    /// The `scrape` lease this receiver competes for on a shared database
    /// (`None` on SQLite; taken even without configured targets, since the
    /// tenants' settings may add some).
    pub scrape_lease: Option<lease::Lease>,
    listeners_trigger: ShutdownTrigger,
    workers_trigger: ShutdownTrigger,
    listeners: Vec<JoinHandle<()>>,
    workers: Vec<JoinHandle<WorkerReport>>,
    drain: Duration,
    /// The SQLite queue, closed (WAL checkpointed) after the workers stop.
    sqlite_queue: Option<Arc<SqliteQueue>>,
}

/// What shutdown did.
#[derive(Debug, Clone, Copy, Default, PartialEq, Eq)]
pub struct ShutdownReport {
    /// Deliveries acknowledged over the life of the workers.
    pub acknowledged: u64,
    /// Deliveries dead-lettered.
    pub dead_lettered: u64,
    /// Deliveries given back to the queue (not written) at shutdown.
    pub nacked: u64,
    /// Batches still in the queue when the workers stopped.
    pub left_in_queue: u64,
    /// Of those, lost: all of them with the in-memory queue, none with a
    /// durable one (they are delivered after the restart).
    pub lost: u64,
}

/// Starts `serve` with SQLite under `config.data_dir`.
///
/// # Errors
/// [`StartError`].
pub async fn start(config: ServeConfig) -> Result<ServeHandle, StartError> {
    start_with(config, StartOptions::default()).await
}

/// Starts the roles of `options.roles` with explicit options.
///
/// Every role opens the store and the queue (`/readyz` checks both); a
/// receiver binds the syslog listeners and serves the ingest routes, a
/// worker runs the workers and store maintenance, an API serves the read
/// routes. The HTTP listener runs in every role when `http` is set, with
/// `/healthz`, `/readyz` and `/metrics` plus the routes of its roles.
///
/// # Errors
/// [`StartError`].
pub async fn start_with(
    config: ServeConfig,
    options: StartOptions,
) -> Result<ServeHandle, StartError> {
    let roles = options.roles;
    let metrics_handle = self_metrics::handle();
    let tenant = Tenant::new(&config.tenant)
        .map_err(|_| StartError::Config(format!("tenant: invalid name {:?}", config.tenant)))?;
    if roles != Roles::ALL && options.queue.is_none() && config.queue.kind != QueueKind::Redis {
        return Err(StartError::Config(format!(
            "queue.kind: `killkrill {}` shares its queue with other processes, so it must be \
             \"redis\" (REDIS_URL), not {:?}",
            roles.name(),
            config.queue.kind.as_str()
        )));
    }
    let tls = if roles.receiver && config.tls_enabled() {
        Some(Reloader::load(&config.tls, "tls", "syslog_tls", &[])?)
    } else {
        None
    };
    let http_tls = if config.http_tls_enabled() && config.http.get().is_some() {
        Some(Reloader::load(
            &config.http_tls,
            "http_tls",
            "http",
            tls::HTTP_ALPN,
        )?)
    } else {
        None
    };
    let store_cfg = options
        .store
        .unwrap_or_else(|| StoreConfig::sqlite(&config.data_dir));
    if store_cfg.url.is_none()
        && store_cfg.db_type == killkrill_store::DbType::Sqlite
        && let Some(dir) = store_cfg.sqlite.path.parent()
    {
        std::fs::create_dir_all(dir)
            .map_err(|e| StartError::Config(format!("data_dir {}: {e}", dir.display())))?;
    }
    let store = Store::open(store_cfg).await?;
    let dead_letter = Arc::new(StoreDeadLetter::new(store.clone()));
    let auth = match Auth::open(&config.auth, &store, &config.data_dir, tenant.clone()).await {
        Ok(a) => Arc::new(a),
        Err(e) => {
            store.close().await;
            return Err(StartError::Config(e));
        }
    };
    if let Err(e) = auth.seal_totp_secrets().await {
        store.close().await;
        return Err(StartError::Config(format!("encrypting TOTP secrets: {e}")));
    }
    // The first admin is created by a process that serves the management
    // routes (serve or api); another process that got there first wins.
    let bootstrap = if roles.api && config.auth.bootstrap && !auth.disabled() {
        match crate::auth::bootstrap::run(&auth, &config.data_dir).await {
            Ok(b) => b,
            Err(e) => {
                store.close().await;
                return Err(StartError::Config(format!("creating the first admin: {e}")));
            }
        }
    } else {
        None
    };
    let license = match crate::license::Licensing::new(&config.license, &config.data_dir) {
        Ok(l) => Arc::new(l),
        Err(e) => {
            store.close().await;
            return Err(StartError::Config(e));
        }
    };
    let oidc = if config.oidc.enabled {
        match crate::oidc::Oidc::new(&config.oidc, auth.system_tenant(), store.auth()) {
            Ok(o) => Some(Arc::new(o)),
            Err(e) => {
                store.close().await;
                return Err(StartError::Config(e));
            }
        }
    } else {
        None
    };
    let email = match (config.smtp.enabled() && roles.api)
        .then(|| crate::email::Email::start(&config.smtp))
        .transpose()
    {
        Ok(e) => e,
        Err(e) => {
            store.close().await;
            return Err(StartError::Config(e));
        }
    };
    if auth.disabled() {
        tracing::warn!(
            "authentication is disabled ([auth] mode = \"disabled\"): every HTTP request is the anonymous caller of the default tenant; never do this outside development"
        );
    }

    let (queue, sqlite_queue): (Arc<dyn Queue>, _) = match options.queue {
        Some(q) => (Arc::new(MeteredQueue::new(DynQueue(q))), None),
        None => match open_queue(&config, dead_letter.clone()).await {
            Ok(q) => q,
            Err(e) => {
                store.close().await;
                return Err(e);
            }
        },
    };
    let ingest = Arc::new(Ingest::new(queue.clone(), tenant));
    let drain = Duration::from_secs(config.workers.drain_timeout_secs);
    let (listeners_trigger, listeners_shutdown) = shutdown_channel();
    let (workers_trigger, workers_shutdown) = shutdown_channel();

    // Bind everything before spawning anything, so a bind error leaves
    // nothing running.
    let bound = bind_all(&config, roles, tls.is_some()).await;
    let (http_listener, tcp_listener, tls_listener, udp_socket) = match bound {
        Ok(b) => b,
        Err(e) => {
            close_opened(&store, sqlite_queue.as_ref()).await;
            return Err(e);
        }
    };
    let local = |r: std::io::Result<SocketAddr>| r.ok();
    let http_addr = http_listener.as_ref().and_then(|l| local(l.local_addr()));
    let tcp_addr = tcp_listener.as_ref().and_then(|l| local(l.local_addr()));
    let tls_addr = tls_listener.as_ref().and_then(|l| local(l.local_addr()));
    let udp_addr = udp_socket.as_ref().and_then(|s| local(s.local_addr()));

    // Everything that can still fail, before anything is spawned: a
    // failure closes what was opened (the SQLite queue's WAL is
    // checkpointed and the database released), so a new start in the same
    // data directory succeeds.
    let prepared = (|| -> Result<_, StartError> {
        let metric_sink: Arc<dyn MetricSink> = match options.metric_sink {
            Some(s) => s,
            None => {
                sinks::store_metric_sink(&store, &config.rollups).map_err(StartError::Config)?
            }
        };
        let transforms = if roles.worker {
            Some(Arc::new(
                config
                    .build_transforms()
                    .map_err(|e| StartError::Config(e.to_string()))?,
            ))
        } else {
            None
        };
        Ok((metric_sink, transforms))
    })();
    let (metric_sink, transforms) = match prepared {
        Ok(p) => p,
        Err(e) => {
            close_opened(&store, sqlite_queue.as_ref()).await;
            return Err(e);
        }
    };

    // Workers.
    let log_committed = Arc::new(tokio::sync::Notify::new());
    let mut workers = Vec::new();
    if let Some(transforms) = transforms {
        let sink: Arc<dyn Sink> = Arc::new(FanOut::new(vec![
            Arc::new(LogStoreSink::new(store.clone()).with_commit_notify(log_committed.clone())),
            Arc::new(MetricSinkAdapter::new(metric_sink)),
        ]));
        let worker_cfg = worker_groups::worker_config(&config.workers, drain);
        workers = (0..config.workers.count)
            .map(|_| {
                Worker::new(
                    queue.clone(),
                    sink.clone(),
                    dead_letter.clone(),
                    worker_cfg.clone(),
                )
                .with_transforms(transforms.clone())
                .spawn(workers_shutdown.clone())
            })
            .collect();
    }

    // Listeners.
    let mut listeners = Vec::new();
    let mut reloading = Vec::new();
    if let Some(l) = http_listener {
        let state = Arc::new(http::AppState {
            ingest: ingest.clone(),
            store: store.clone(),
            metrics: metrics_handle.clone(),
            enqueue_wait: Duration::from_millis(config.http_ingest.enqueue_wait_ms),
            max_body_bytes: config.http_ingest.max_body_bytes,
            max_output_bytes: config.http_ingest.output_budget(),
            // The memory and SQLite queues refuse a batch over
            // `queue.max_events` whatever happens, so parsers stop there;
            // the Redis queue has no such cap (its streams are bounded by
            // `max_len` entries, not events), so only the output budget
            // bounds a request there, as for remote_write.
            max_request_events: match config.queue.kind {
                crate::config::QueueKind::Redis => usize::MAX,
                crate::config::QueueKind::Sqlite | crate::config::QueueKind::Memory => {
                    config.queue.max_events
                }
            },
            query: config.query.clone(),
            tails: http::TailHub::new(
                config.query.max_tails,
                config.query.max_tails_per_tenant,
                log_committed.clone(),
                listeners_shutdown.clone(),
            ),
            auth: auth.clone(),
            license: license.clone(),
            oidc: oidc.clone(),
            rollup_reads: http::prom::rollup_reads(&config),
            email: email.clone(),
            scrape_deny_networks: config.scrape.deny_networks.clone(),
        });
        let app = http::router_for(
            state,
            http::RouteGroups {
                ingest: roles.receiver,
                read: roles.api,
            },
        );
        let source = http_tls.map(|r| {
            let s = r.source();
            listeners.push(r.spawn(listeners_shutdown.clone()));
            reloading.push("http");
            s
        });
        listeners.push(tokio::spawn(http::serve(
            l,
            app,
            config.http_server.clone(),
            source,
            listeners_shutdown.clone(),
        )));
    }
    if roles.receiver {
        let syslog_ctx = Arc::new(syslog::SyslogCtx::new(
            ingest.clone(),
            config.syslog.clone(),
            drain,
        ));
        if let Some(s) = udp_socket {
            listeners.push(tokio::spawn(syslog::run_udp(
                s,
                syslog_ctx.clone(),
                listeners_shutdown.clone(),
            )));
        }
        if let Some(l) = tcp_listener {
            listeners.push(tokio::spawn(syslog::run_stream_listener(
                l,
                syslog_ctx.clone(),
                None,
                listeners_shutdown.clone(),
            )));
        }
        if let (Some(l), Some(tls)) = (tls_listener, tls) {
            let source = tls.source();
            listeners.push(tls.spawn(listeners_shutdown.clone()));
            reloading.push("syslog_tls");
            listeners.push(tokio::spawn(syslog::run_stream_listener(
                l,
                syslog_ctx.clone(),
                Some(source),
                listeners_shutdown.clone(),
            )));
        }
    }
    // Every role survives SIGHUP (logrotate, init systems).
    listeners.push(tls_reload::spawn_hangup(
        reloading,
        listeners_shutdown.clone(),
    ));
    let mut scrape_lease = None;
    if roles.receiver {
        // On a shared database only the holder of the `scrape` lease
        // scrapes (configured targets and those in the tenants' settings
        // alike); SQLite is one process, which always scrapes.
        let gate = if store.db_type() == killkrill_store::DbType::Sqlite {
            None
        } else {
            let (l, task) = lease::start(
                store.clone(),
                "scrape",
                Duration::from_millis(config.scrape.lease_ttl_ms),
                listeners_shutdown.clone(),
            )
            .await;
            listeners.push(task);
            let w = l.watch();
            scrape_lease = Some(l);
            Some(w)
        };
        listeners.extend(scrape::spawn_gated(
            &config.scrape,
            &ingest,
            &listeners_shutdown,
            gate.clone(),
        ));
        listeners.push(tokio::spawn(scrape_settings::run(
            store.clone(),
            config.scrape.clone(),
            ingest.clone(),
            gate,
            listeners_shutdown.clone(),
        )));
    }
    if roles.worker {
        listeners.push(tokio::spawn(maintenance::run(
            store.clone(),
            config.maintenance.clone(),
            listeners_shutdown.clone(),
        )));
    }
    // The license is checked by every role (each reports its own usage);
    // start-up waits briefly for the first answer, never fails on it.
    listeners.push(tokio::spawn(license.clone().run(
        crate::license::UsageSource {
            metrics: metrics_handle.clone(),
            store: store.auth(),
        },
        listeners_shutdown.clone(),
    )));
    license.wait_first_check().await;
    if let Some(h) = metrics_handle {
        let mut sd = listeners_shutdown.clone();
        listeners.push(tokio::spawn(async move {
            loop {
                tokio::select! {
                    () = sd.requested() => return,
                    () = tokio::time::sleep(Duration::from_secs(5)) => h.run_upkeep(),
                }
            }
        }));
    }
    let show = |a: Option<SocketAddr>| a.map_or_else(|| "off".to_owned(), |a| a.to_string());
    tracing::info!(
        role = roles.name(),
        http = %show(http_addr), syslog_udp = %show(udp_addr), syslog_tcp = %show(tcp_addr),
        syslog_tls = %show(tls_addr), queue = queue.name(),
        db = %store.db_type(), workers = workers.len(), "killkrill started"
    );
    Ok(ServeHandle {
        http: http_addr,
        syslog_udp: udp_addr,
        syslog_tcp: tcp_addr,
        syslog_tls: tls_addr,
        store,
        queue,
        auth,
        license,
        bootstrap,
        roles,
        scrape_lease,
        listeners_trigger,
        workers_trigger,
        listeners,
        workers,
        drain,
        sqlite_queue,
    })
}

impl ServeHandle {
    /// A listener that fires when shutdown begins.
    pub fn shutdown_signal(&self) -> Shutdown {
        self.listeners_trigger.subscribe()
    }

    /// Stops without losing what was acknowledged to a client: listeners
    /// first (each enqueues what it holds), then the queue is drained by the
    /// workers (at most the drain timeout), then the workers stop and the
    /// store closes.
    pub async fn shutdown(self) -> ShutdownReport {
        self.listeners_trigger.trigger();
        for l in self.listeners {
            if let Err(e) = l.await {
                tracing::error!(error = %e, "listener task failed");
            }
        }
        let deadline = tokio::time::Instant::now() + self.drain;
        let mut left = self.queue.stats().await.map(|s| s.batches).unwrap_or(0);
        // Drain only what this process's own listeners fed its workers: a
        // worker of a shared queue stops with what it holds.
        if !self.workers.is_empty() && self.roles.receiver {
            while left > 0 && tokio::time::Instant::now() < deadline {
                tokio::time::sleep(Duration::from_millis(20)).await;
                left = self.queue.stats().await.map(|s| s.batches).unwrap_or(0);
            }
        }
        self.workers_trigger.trigger();
        let mut report = ShutdownReport::default();
        for w in self.workers {
            match w.await {
                Ok(r) => {
                    report.acknowledged += r.acknowledged;
                    report.dead_lettered += r.dead_lettered;
                    report.nacked += r.nacked;
                }
                Err(e) => tracing::error!(error = %e, "worker task failed"),
            }
        }
        report.left_in_queue = self.queue.stats().await.map(|s| s.batches).unwrap_or(0);
        if report.left_in_queue > 0 {
            if self.queue.name() == "memory" {
                report.lost = report.left_in_queue;
                tracing::error!(
                    batches = report.lost,
                    "batches left in the in-memory queue at shutdown are lost"
                );
            } else {
                tracing::info!(
                    batches = report.left_in_queue,
                    queue = self.queue.name(),
                    "batches left in the durable queue for the next start"
                );
            }
        }
        if let Some(q) = &self.sqlite_queue {
            q.shutdown().await;
        }
        self.store.close().await;
        tracing::info!(?report, role = self.roles.name(), "killkrill stopped");
        report
    }
}
