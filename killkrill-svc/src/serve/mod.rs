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
//! The queue is an `Arc<dyn Queue>`: the in-memory queue by default, a
//! durable one (SQLite under `data_dir`, Redis Streams) through
//! [`StartOptions::queue`].

pub mod http;
pub mod ingest;
pub mod maintenance;
pub mod prom_source;
pub mod scrape;
pub mod self_metrics;
pub mod sinks;
pub mod syslog;

use std::net::SocketAddr;
use std::sync::Arc;
use std::time::Duration;

use killkrill_core::event::Tenant;
use killkrill_core::pipeline::{
    FanOut, MemoryQueue, MemoryQueueConfig, MeteredQueue, Queue, Shutdown, ShutdownTrigger, Sink,
    Worker, WorkerConfig, WorkerReport, shutdown_channel,
};
use killkrill_store::{Store, StoreConfig};
use tokio::net::TcpListener;
use tokio::task::JoinHandle;

use crate::auth::Auth;
use crate::auth::bootstrap::BootstrapCredentials;
use crate::config::{QueueConfig, ServeConfig};
use ingest::Ingest;
use sinks::{LogStoreSink, MetricSink, MetricSinkAdapter, StoreDeadLetter};

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
    Tls(#[from] syslog::tls_error::TlsError),
    /// Another problem with the configuration.
    #[error("{0}")]
    Config(String),
}

/// Choices that are not part of the file/env/flag configuration.
#[derive(Default)]
pub struct StartOptions {
    /// The database; SQLite under `data_dir` when `None`.
    pub store: Option<StoreConfig>,
    /// Where metric samples go; a [`sinks::StoreMetricSink`] on the store
    /// (with rollups as `[rollups]` says) when `None`.
    pub metric_sink: Option<Arc<dyn MetricSink>>,
    /// The queue between receivers and workers (a durable one); the
    /// in-memory queue bounded by `[queue]` when `None`. Either way it is
    /// wrapped in [`MeteredQueue`] for the enqueue counters.
    pub queue: Option<Arc<dyn Queue>>,
}

/// A running `serve`.
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
    /// What the first start created (admin and API key) and the 0600 file
    /// it wrote them to; `None` when users existed already.
    pub bootstrap: Option<(BootstrapCredentials, std::path::PathBuf)>,
    listeners_trigger: ShutdownTrigger,
    workers_trigger: ShutdownTrigger,
    listeners: Vec<JoinHandle<()>>,
    workers: Vec<JoinHandle<WorkerReport>>,
    drain: Duration,
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

/// Starts `serve` with explicit options.
///
/// # Errors
/// [`StartError`].
pub async fn start_with(
    config: ServeConfig,
    options: StartOptions,
) -> Result<ServeHandle, StartError> {
    let metrics_handle = self_metrics::handle();
    let tenant = Tenant::new(&config.tenant)
        .map_err(|_| StartError::Config(format!("tenant: invalid name {:?}", config.tenant)))?;
    let tls = if config.tls_enabled() {
        Some(syslog::server_config(&config.tls)?)
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
    let auth = Arc::new(
        Auth::build(&config.auth, &store, &config.data_dir, tenant.clone())
            .map_err(StartError::Config)?,
    );
    let bootstrap = if config.auth.bootstrap && !auth.disabled() {
        crate::auth::bootstrap::run(&auth, &config.data_dir)
            .await
            .map_err(|e| StartError::Config(format!("creating the first admin: {e}")))?
    } else {
        None
    };
    if auth.disabled() {
        tracing::warn!(
            "authentication is disabled ([auth] mode = \"disabled\"): every HTTP request is the anonymous caller of the default tenant; never do this outside development"
        );
    }

    let queue: Arc<dyn Queue> = match options.queue {
        Some(q) => Arc::new(MeteredQueue::new(DynQueue(q))),
        None => build_queue(&config.queue),
    };
    let ingest = Arc::new(Ingest::new(queue.clone(), tenant));
    let drain = Duration::from_secs(config.workers.drain_timeout_secs);
    let (listeners_trigger, listeners_shutdown) = shutdown_channel();
    let (workers_trigger, workers_shutdown) = shutdown_channel();

    // Bind everything before spawning anything, so a bind error leaves
    // nothing running.
    let bind_tcp = |key: &'static str, addr: SocketAddr| async move {
        TcpListener::bind(addr)
            .await
            .map_err(|source| StartError::Bind { key, addr, source })
    };
    let http_listener = match config.http.get() {
        Some(a) => Some(bind_tcp("http", a).await?),
        None => None,
    };
    let tcp_listener = match config.syslog_tcp.get() {
        Some(a) => Some(bind_tcp("syslog_tcp", a).await?),
        None => None,
    };
    let tls_listener = match (config.syslog_tls.get(), &tls) {
        (Some(a), Some(_)) => Some(bind_tcp("syslog_tls", a).await?),
        _ => None,
    };
    let udp_socket = match config.syslog_udp.get() {
        Some(addr) => Some(
            syslog::bind_udp(addr, config.syslog.udp_recv_buffer_bytes).map_err(|source| {
                StartError::Bind {
                    key: "syslog_udp",
                    addr,
                    source,
                }
            })?,
        ),
        None => None,
    };
    let local = |r: std::io::Result<SocketAddr>| r.ok();
    let http_addr = http_listener.as_ref().and_then(|l| local(l.local_addr()));
    let tcp_addr = tcp_listener.as_ref().and_then(|l| local(l.local_addr()));
    let tls_addr = tls_listener.as_ref().and_then(|l| local(l.local_addr()));
    let udp_addr = udp_socket.as_ref().and_then(|s| local(s.local_addr()));

    // Workers.
    let metric_sink: Arc<dyn MetricSink> = match options.metric_sink {
        Some(s) => s,
        None => sinks::store_metric_sink(&store, &config.rollups).map_err(StartError::Config)?,
    };
    let log_committed = Arc::new(tokio::sync::Notify::new());
    let sink: Arc<dyn Sink> = Arc::new(FanOut::new(vec![
        Arc::new(LogStoreSink::new(store.clone()).with_commit_notify(log_committed.clone())),
        Arc::new(MetricSinkAdapter::new(metric_sink)),
    ]));
    let transforms = Arc::new(
        config
            .build_transforms()
            .map_err(|e| StartError::Config(e.to_string()))?,
    );
    let dead_letter = Arc::new(StoreDeadLetter::new(store.clone()));
    let worker_cfg = WorkerConfig {
        drain_timeout: drain,
        ..WorkerConfig::default()
    };
    let workers = (0..config.workers.count)
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

    // Listeners.
    let mut listeners = Vec::new();
    let syslog_ctx = Arc::new(syslog::SyslogCtx::new(
        ingest.clone(),
        config.syslog.clone(),
        drain,
    ));
    if let Some(l) = http_listener {
        let state = Arc::new(http::AppState {
            ingest: ingest.clone(),
            store: store.clone(),
            metrics: metrics_handle.clone(),
            enqueue_wait: Duration::from_millis(config.http_ingest.enqueue_wait_ms),
            max_body_bytes: config.http_ingest.max_body_bytes,
            query: config.query.clone(),
            tails: http::TailHub::new(
                config.query.max_tails,
                log_committed.clone(),
                listeners_shutdown.clone(),
            ),
            auth: auth.clone(),
        });
        let app = http::router(state).into_make_service_with_connect_info::<SocketAddr>();
        let mut sd = listeners_shutdown.clone();
        listeners.push(tokio::spawn(async move {
            let served = axum::serve(l, app)
                .with_graceful_shutdown(async move { sd.requested().await })
                .await;
            if let Err(e) = served {
                tracing::error!(error = %e, "HTTP server failed");
            }
        }));
    }
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
        listeners.push(tokio::spawn(syslog::run_stream_listener(
            l,
            syslog_ctx.clone(),
            Some(tokio_rustls::TlsAcceptor::from(tls)),
            listeners_shutdown.clone(),
        )));
    }
    listeners.extend(scrape::spawn(&config.scrape, &ingest, &listeners_shutdown));
    listeners.push(tokio::spawn(maintenance::run(
        store.clone(),
        config.maintenance.clone(),
        listeners_shutdown.clone(),
    )));
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
        http = %show(http_addr), syslog_udp = %show(udp_addr), syslog_tcp = %show(tcp_addr),
        syslog_tls = %show(tls_addr),
        db = %store.db_type(), workers = config.workers.count, "killkrill serve started"
    );
    Ok(ServeHandle {
        http: http_addr,
        syslog_udp: udp_addr,
        syslog_tcp: tcp_addr,
        syslog_tls: tls_addr,
        store,
        queue,
        auth,
        bootstrap,
        listeners_trigger,
        workers_trigger,
        listeners,
        workers,
        drain,
    })
}

/// The queue between receivers and workers, counted by [`MeteredQueue`].
fn build_queue(cfg: &QueueConfig) -> Arc<dyn Queue> {
    Arc::new(MeteredQueue::new(MemoryQueue::new(MemoryQueueConfig {
        max_events: cfg.max_events,
        max_bytes: cfg.max_bytes,
        ..MemoryQueueConfig::default()
    })))
}

/// An `Arc<dyn Queue>` as a `Queue`, so [`MeteredQueue`] can wrap it.
struct DynQueue(Arc<dyn Queue>);

#[async_trait::async_trait]
impl Queue for DynQueue {
    fn name(&self) -> &str {
        self.0.name()
    }

    async fn enqueue(
        &self,
        batch: killkrill_core::pipeline::Batch,
        wait: Duration,
    ) -> Result<(), killkrill_core::pipeline::QueueError> {
        self.0.enqueue(batch, wait).await
    }

    async fn dequeue(
        &self,
        max: usize,
        wait: Duration,
    ) -> Result<Vec<killkrill_core::pipeline::Delivery>, killkrill_core::pipeline::QueueError> {
        self.0.dequeue(max, wait).await
    }

    async fn ack(
        &self,
        ids: &[killkrill_core::pipeline::DeliveryId],
    ) -> Result<(), killkrill_core::pipeline::QueueError> {
        self.0.ack(ids).await
    }

    async fn nack(
        &self,
        id: killkrill_core::pipeline::DeliveryId,
        retry_after: Duration,
    ) -> Result<(), killkrill_core::pipeline::QueueError> {
        self.0.nack(id, retry_after).await
    }

    async fn stats(
        &self,
    ) -> Result<killkrill_core::pipeline::QueueStats, killkrill_core::pipeline::QueueError> {
        self.0.stats().await
    }
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
        if !self.workers.is_empty() {
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
        self.store.close().await;
        tracing::info!(?report, "killkrill serve stopped");
        report
    }
}
