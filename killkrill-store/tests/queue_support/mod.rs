//! Queues under test: the memory queue (the reference), a SQLite queue on a
//! fresh file, and a Redis Streams queue on a stream of its own when
//! `KILLKRILL_TEST_REDIS_URL` is set (skipped with a printed reason if not),
//! and the same on a Redis Cluster when `KILLKRILL_TEST_REDIS_CLUSTER_URL`
//! is set (`scripts/redis-cluster` starts one and prints its URL).
#![allow(dead_code, clippy::print_stderr, clippy::unwrap_used)]

use std::path::{Path, PathBuf};
use std::sync::Arc;
use std::time::Duration;

use killkrill_core::event::{LogRecord, Tenant, Timestamp};
use killkrill_core::pipeline::{Batch, BatchId, Delivery, MemoryQueue, MemoryQueueConfig, Queue};
use killkrill_store::config::SqliteSync;
use killkrill_store::queue::{
    RedisQueueOptions, RedisStreamsQueue, SqliteQueue, SqliteQueueOptions,
};

#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum Kind {
    Memory,
    Sqlite,
    Redis,
    RedisCluster,
}

impl Kind {
    /// Either Redis queue.
    pub fn is_redis(self) -> bool {
        matches!(self, Kind::Redis | Kind::RedisCluster)
    }
}

/// Sizing of a queue under test.
#[derive(Debug, Clone, Copy)]
pub struct Shape {
    /// Room for this many batches...
    pub batches: u64,
    /// ...of this many events each (memory and SQLite count events; Redis
    /// counts entries).
    pub events: u64,
    pub visibility: Duration,
}

pub struct Fixture {
    pub kind: Kind,
    pub q: Arc<dyn Queue>,
    pub redis: Option<Arc<RedisStreamsQueue>>,
    pub sqlite_path: Option<PathBuf>,
    /// The Redis tenant group (the stream's name).
    pub redis_group: Option<String>,
    /// The Redis URL the queue was opened with.
    pub redis_url: Option<String>,
    pub dir: Option<tempfile::TempDir>,
}

impl Fixture {
    /// Deletes the Redis stream.
    pub async fn finish(self) {
        if let Some(r) = &self.redis {
            r.destroy().await.unwrap();
        }
    }
}

pub fn redis_url() -> Option<String> {
    match std::env::var("KILLKRILL_TEST_REDIS_URL") {
        Ok(u) if !u.is_empty() => Some(u),
        _ => {
            eprintln!("skipped: KILLKRILL_TEST_REDIS_URL is not set");
            None
        }
    }
}

pub fn redis_cluster_url() -> Option<String> {
    match std::env::var("KILLKRILL_TEST_REDIS_CLUSTER_URL") {
        Ok(u) if !u.is_empty() => Some(u),
        _ => {
            eprintln!(
                "skipped: KILLKRILL_TEST_REDIS_CLUSTER_URL is not set (scripts/redis-cluster prints one)"
            );
            None
        }
    }
}

/// A plain (not queue) connection to the fixture's Redis or Redis Cluster,
/// for tests that reach under the queue.
pub async fn raw_redis(f: &Fixture) -> RawRedis {
    let url = f.redis_url.clone().unwrap();
    match killkrill_store::queue::redis::cluster_nodes(&url) {
        Some(nodes) => RawRedis::Cluster(
            redis::cluster::ClusterClient::new(nodes)
                .unwrap()
                .get_async_connection()
                .await
                .unwrap(),
        ),
        None => RawRedis::Single(
            redis::Client::open(url.as_str())
                .unwrap()
                .get_multiplexed_async_connection()
                .await
                .unwrap(),
        ),
    }
}

pub enum RawRedis {
    Single(redis::aio::MultiplexedConnection),
    Cluster(redis::cluster_async::ClusterConnection),
}

impl RawRedis {
    pub async fn query<T: redis::FromRedisValue>(&mut self, cmd: &redis::Cmd) -> T {
        match self {
            RawRedis::Single(c) => cmd.query_async(c).await.unwrap(),
            RawRedis::Cluster(c) => cmd.query_async(c).await.unwrap(),
        }
    }
}

pub fn unique(prefix: &str) -> String {
    let n = Timestamp::now().as_nanos() as u64 ^ (u64::from(std::process::id()) << 40);
    format!("{prefix}-{n:x}")
}

pub fn sqlite_options(shape: Shape) -> SqliteQueueOptions {
    SqliteQueueOptions {
        synchronous: SqliteSync::Normal,
        max_events: shape.batches * shape.events,
        max_bytes: 1 << 30,
        visibility_timeout: shape.visibility,
        // `KILLKRILL_TEST_SQLITE_INLINE_MAX=0` runs a suite with every body
        // in segment files.
        inline_max_bytes: std::env::var("KILLKRILL_TEST_SQLITE_INLINE_MAX")
            .ok()
            .and_then(|v| v.parse().ok())
            .unwrap_or(SqliteQueueOptions::default().inline_max_bytes),
        ..SqliteQueueOptions::default()
    }
}

pub fn redis_options(tenant_group: &str, shape: Shape) -> RedisQueueOptions {
    RedisQueueOptions {
        prefix: "kktest".into(),
        kind: "contract".into(),
        tenant_group: tenant_group.into(),
        max_len: shape.batches,
        visibility_timeout: shape.visibility,
        poll_interval: Duration::from_millis(100),
        trim_interval: Duration::from_millis(200),
        ..RedisQueueOptions::default()
    }
}

pub async fn open_sqlite(path: &Path, shape: Shape) -> SqliteQueue {
    SqliteQueue::open(path, sqlite_options(shape))
        .await
        .unwrap()
}

/// A fresh queue of `kind`, or `None` when its server is not configured.
pub async fn make(kind: Kind, test: &str, shape: Shape) -> Option<Fixture> {
    match kind {
        Kind::Memory => Some(Fixture {
            kind,
            q: Arc::new(MemoryQueue::new(MemoryQueueConfig {
                max_events: (shape.batches * shape.events) as usize,
                max_bytes: 1 << 30,
                visibility_timeout: shape.visibility,
            })),
            redis: None,
            sqlite_path: None,
            redis_group: None,
            redis_url: None,
            dir: None,
        }),
        Kind::Sqlite => {
            let dir = tempfile::tempdir().unwrap();
            let path = dir.path().join("queue.db");
            let q = open_sqlite(&path, shape).await;
            Some(Fixture {
                kind,
                q: Arc::new(q),
                redis: None,
                sqlite_path: Some(path),
                redis_group: None,
                redis_url: None,
                dir: Some(dir),
            })
        }
        Kind::Redis | Kind::RedisCluster => {
            let url = if kind == Kind::Redis {
                redis_url()?
            } else {
                redis_cluster_url()?
            };
            let group = unique(test);
            let q = Arc::new(
                RedisStreamsQueue::connect(&url, redis_options(&group, shape))
                    .await
                    .unwrap(),
            );
            Some(Fixture {
                kind,
                q: q.clone(),
                redis: Some(q),
                sqlite_path: None,
                redis_group: Some(group),
                redis_url: Some(url),
                dir: None,
            })
        }
    }
}

/// A batch with id `id` and `events` log records.
pub fn batch(id: u128, events: u64) -> Batch {
    let tenant = Tenant::default();
    let mut b = Batch::new(
        BatchId::from_u128(id),
        tenant,
        Timestamp::from_millis(1_000),
    );
    b.logs = (0..events)
        .map(|i| LogRecord {
            timestamp: Timestamp::from_millis(1_000 + i as i64),
            message: Some(format!("batch {id} record {i}").into_bytes()),
            ..LogRecord::default()
        })
        .collect();
    b
}

pub fn ids(ds: &[Delivery]) -> Vec<u128> {
    ds.iter().map(|d| d.batch.id.as_u128()).collect()
}

/// Dequeues until `n` deliveries arrived or `within` passed.
pub async fn collect(q: &dyn Queue, n: usize, within: Duration) -> Vec<Delivery> {
    let deadline = tokio::time::Instant::now() + within;
    let mut out = Vec::new();
    while out.len() < n {
        let left = deadline.saturating_duration_since(tokio::time::Instant::now());
        if left.is_zero() {
            break;
        }
        out.extend(q.dequeue(n - out.len(), left).await.unwrap());
    }
    out
}
