//! What `start` opens: the queue `[queue]` selects, the listeners of the
//! roles, and how a failed start closes them again.

use std::net::SocketAddr;
use std::sync::Arc;
use std::time::Duration;

use killkrill_core::pipeline::{MemoryQueue, MemoryQueueConfig, MeteredQueue, Queue};
use killkrill_store::Store;
use killkrill_store::queue::{
    RedisQueueOptions, RedisStreamsQueue, SqliteQueue, SqliteQueueOptions,
};
use tokio::net::TcpListener;

use super::{Roles, StartError, syslog, tenant_groups};
use crate::config::ServeConfig;

/// The queue `[queue]` selects, counted by [`MeteredQueue`]; undecodable
/// stored batches go to the store's dead letters.
pub(super) async fn open_queue(
    config: &ServeConfig,
    dead_letter: Arc<dyn killkrill_core::pipeline::DeadLetter>,
) -> Result<(Arc<dyn Queue>, Option<Arc<SqliteQueue>>), StartError> {
    use killkrill_store::queue::QueueConfig as Q;
    let q = &config.queue;
    let cfg = q.to_store(&config.data_dir);
    cfg.validate()
        .map_err(|e| StartError::Config(e.to_string()))?;
    let open_err = |e: killkrill_core::pipeline::QueueError| {
        StartError::Config(format!("queue ({}): {e}", q.kind.as_str()))
    };
    Ok(match cfg {
        Q::Memory(_) => (
            Arc::new(MeteredQueue::new(MemoryQueue::new(MemoryQueueConfig {
                max_events: q.max_events,
                max_bytes: q.max_bytes,
                visibility_timeout: Duration::from_millis(q.visibility_timeout_ms),
            }))),
            None,
        ),
        Q::Sqlite(s) => {
            let sq = Arc::new(
                SqliteQueue::open(
                    &s.path,
                    SqliteQueueOptions {
                        dead_letter: Some(dead_letter),
                        ..s.options()
                    },
                )
                .await
                .map_err(open_err)?,
            );
            (Arc::new(MeteredQueue::new(DynQueue(sq.clone()))), Some(sq))
        }
        Q::Redis(r) if !q.tenant_groups.is_empty() => (
            tenant_groups::open(q, r, dead_letter)
                .await
                .map_err(open_err)?,
            None,
        ),
        Q::Redis(r) => {
            let rq = RedisStreamsQueue::connect(
                &r.url,
                RedisQueueOptions {
                    dead_letter: Some(dead_letter),
                    ..r.options()
                },
            )
            .await
            .map_err(open_err)?;
            tracing::info!(stream = rq.key(), consumer = rq.consumer(), "redis queue");
            (Arc::new(MeteredQueue::new(rq)), None)
        }
    })
}

/// Closes what a failed start opened: the SQLite queue (checkpointing its
/// WAL), then the store.
pub(super) async fn close_opened(store: &Store, sqlite_queue: Option<&Arc<SqliteQueue>>) {
    if let Some(q) = sqlite_queue {
        q.shutdown().await;
    }
    store.close().await;
}

pub(super) type Bound = (
    Option<TcpListener>,
    Option<TcpListener>,
    Option<TcpListener>,
    Option<tokio::net::UdpSocket>,
);

/// Binds the listeners of `roles`: HTTP in every role, syslog in receivers.
pub(super) async fn bind_all(
    config: &ServeConfig,
    roles: Roles,
    tls: bool,
) -> Result<Bound, StartError> {
    let bind_tcp = |key: &'static str, addr: SocketAddr| async move {
        TcpListener::bind(addr)
            .await
            .map_err(|source| StartError::Bind { key, addr, source })
    };
    let http = match config.http.get() {
        Some(a) => Some(bind_tcp("http", a).await?),
        None => None,
    };
    if !roles.receiver {
        return Ok((http, None, None, None));
    }
    let tcp = match config.syslog_tcp.get() {
        Some(a) => Some(bind_tcp("syslog_tcp", a).await?),
        None => None,
    };
    let tls = match (config.syslog_tls.get(), tls) {
        (Some(a), true) => Some(bind_tcp("syslog_tls", a).await?),
        _ => None,
    };
    let udp = match config.syslog_udp.get() {
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
    Ok((http, tcp, tls, udp))
}

/// An `Arc<dyn Queue>` as a `Queue`, so [`MeteredQueue`] can wrap it.
pub(super) struct DynQueue(pub(super) Arc<dyn Queue>);

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
