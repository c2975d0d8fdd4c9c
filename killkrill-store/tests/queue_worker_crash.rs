//! A worker process killed with SIGKILL in the middle of a stream, then a new
//! worker started: every enqueued event ends up stored exactly once.
//!
//! The queue is a real SQLite queue file or Redis stream; the sink is an
//! idempotent SQLite table keyed by batch id (what the real stores do with
//! block ids), in a file of its own that both processes write. The child
//! (this test binary re-executed with `KK_WORKER_ROLE`) runs core's `Worker`
//! until killed; the parent then runs a new worker until the queue is empty
//! and counts the rows.
#![allow(clippy::unwrap_used, clippy::print_stderr)]

mod queue_support;

use std::io::Write;
use std::path::{Path, PathBuf};
use std::process::{Command, Stdio};
use std::str::FromStr;
use std::sync::Arc;
use std::time::Duration;

use async_trait::async_trait;
use killkrill_core::pipeline::{
    Batch, MemoryDeadLetter, Queue, Sink, SinkError, Worker, WorkerConfig, shutdown_channel,
};
use killkrill_store::queue::RedisStreamsQueue;
use queue_support::*;
use sqlx::sqlite::{SqliteConnectOptions, SqliteJournalMode, SqlitePool, SqlitePoolOptions};

const ROLE: &str = "KK_WORKER_ROLE";
const TARGET: &str = "KK_WORKER_TARGET";
const SINK_DB: &str = "KK_WORKER_SINK";
const LOG: &str = "KK_WORKER_LOG";
const BATCHES: u128 = 300;
const EVENTS: u64 = 10;

/// Stores each batch once, by id; counts every attempt.
struct IdempotentSink {
    pool: SqlitePool,
    log: PathBuf,
}

impl IdempotentSink {
    async fn open(db: &Path, log: PathBuf) -> Self {
        let opts = SqliteConnectOptions::from_str(&format!("sqlite://{}", db.display()))
            .unwrap()
            .create_if_missing(true)
            .journal_mode(SqliteJournalMode::Wal)
            .busy_timeout(Duration::from_secs(5));
        let pool = SqlitePoolOptions::new()
            .max_connections(1)
            .connect_with(opts)
            .await
            .unwrap();
        sqlx::query("CREATE TABLE IF NOT EXISTS stored (batch_id BLOB PRIMARY KEY, events INTEGER NOT NULL)")
            .execute(&pool)
            .await
            .unwrap();
        sqlx::query("CREATE TABLE IF NOT EXISTS attempts (n INTEGER NOT NULL)")
            .execute(&pool)
            .await
            .unwrap();
        IdempotentSink { pool, log }
    }

    async fn counts(&self) -> (i64, i64, i64) {
        let (rows, events): (i64, i64) =
            sqlx::query_as("SELECT COUNT(*), COALESCE(SUM(events), 0) FROM stored")
                .fetch_one(&self.pool)
                .await
                .unwrap();
        let attempts: i64 = sqlx::query_scalar("SELECT COALESCE(SUM(n), 0) FROM attempts")
            .fetch_one(&self.pool)
            .await
            .unwrap();
        (rows, events, attempts)
    }
}

#[async_trait]
impl Sink for IdempotentSink {
    fn name(&self) -> &str {
        "idempotent-sqlite"
    }

    async fn write(&self, batches: &[Arc<Batch>]) -> Result<(), SinkError> {
        let mut tx = self
            .pool
            .begin()
            .await
            .map_err(|e| SinkError::retryable(e.to_string()))?;
        for b in batches {
            sqlx::query("INSERT OR IGNORE INTO stored (batch_id, events) VALUES (?, ?)")
                .bind(&b.id.to_bytes()[..])
                .bind(b.len() as i64)
                .execute(&mut *tx)
                .await
                .map_err(|e| SinkError::retryable(e.to_string()))?;
        }
        sqlx::query("INSERT INTO attempts (n) VALUES (?)")
            .bind(batches.len() as i64)
            .execute(&mut *tx)
            .await
            .map_err(|e| SinkError::retryable(e.to_string()))?;
        tx.commit()
            .await
            .map_err(|e| SinkError::retryable(e.to_string()))?;
        let mut f = std::fs::OpenOptions::new()
            .create(true)
            .append(true)
            .open(&self.log)
            .unwrap();
        f.write_all(format!("{}\n", batches.len()).as_bytes())
            .unwrap();
        // Slow enough that the kill lands mid-stream.
        tokio::time::sleep(Duration::from_millis(5)).await;
        Ok(())
    }
}

fn worker_config() -> WorkerConfig {
    WorkerConfig {
        dequeue_max: 8,
        group_max_batches: 8,
        linger: Duration::from_millis(5),
        poll_wait: Duration::from_millis(100),
        ..WorkerConfig::default()
    }
}

fn shape() -> Shape {
    Shape {
        batches: 100_000,
        events: EVENTS,
        visibility: Duration::from_millis(1_000),
    }
}

/// Runs a worker until the queue is empty.
async fn drain_with_worker(q: Arc<dyn Queue>, sink: Arc<IdempotentSink>) {
    let (trigger, shutdown) = shutdown_channel();
    let handle = Worker::new(
        q.clone(),
        sink,
        Arc::new(MemoryDeadLetter::new(10)),
        worker_config(),
    )
    .spawn(shutdown);
    let deadline = tokio::time::Instant::now() + Duration::from_secs(15);
    while q.stats().await.unwrap().batches > 0 {
        assert!(
            tokio::time::Instant::now() < deadline,
            "queue did not drain"
        );
        tokio::time::sleep(Duration::from_millis(50)).await;
    }
    trigger.trigger();
    let report = handle.await.unwrap();
    assert_eq!(report.dead_lettered, 0, "{report:?}");
}

async fn run(
    test: &str,
    q: Arc<dyn Queue>,
    target: &str,
    release: impl AsyncFnOnce(),
    reopen: impl AsyncFnOnce() -> Arc<dyn Queue>,
) {
    let dir = tempfile::tempdir().unwrap();
    let sink_db = dir.path().join("sink.db");
    let log = dir.path().join("writes.log");
    for i in 1..=BATCHES {
        q.try_enqueue(batch(i, EVENTS)).await.unwrap();
    }
    drop(q);
    release().await;
    let mut child = Command::new(std::env::current_exe().unwrap())
        .args([test, "--exact", "--nocapture", "--test-threads=1"])
        .env(ROLE, "worker")
        .env(TARGET, target)
        .env(SINK_DB, &sink_db)
        .env(LOG, &log)
        .stdout(Stdio::null())
        .stderr(Stdio::inherit())
        .spawn()
        .unwrap();
    let deadline = std::time::Instant::now() + Duration::from_secs(15);
    loop {
        let writes = std::fs::read_to_string(&log)
            .unwrap_or_default()
            .lines()
            .count();
        if writes >= 10 {
            break;
        }
        assert!(
            std::time::Instant::now() < deadline,
            "child wrote {writes} groups"
        );
        assert!(child.try_wait().unwrap().is_none(), "child exited early");
        std::thread::sleep(Duration::from_millis(2));
    }
    child.kill().unwrap(); // SIGKILL, mid-stream
    child.wait().unwrap();
    let sink = Arc::new(IdempotentSink::open(&sink_db, log.clone()).await);
    let (rows_at_kill, _, _) = sink.counts().await;
    assert!(
        rows_at_kill > 0 && rows_at_kill < BATCHES as i64,
        "{rows_at_kill}"
    );
    let q = reopen().await;
    drain_with_worker(q, sink.clone()).await;
    let (rows, events, attempts) = sink.counts().await;
    assert_eq!(rows, BATCHES as i64, "batches stored");
    assert_eq!(events, (BATCHES as u64 * EVENTS) as i64, "events stored");
    eprintln!(
        "{rows_at_kill} batches stored before the kill; {rows} stored in the end, each once; {} batch writes absorbed as redeliveries",
        attempts - rows
    );
}

async fn child_worker(q: Arc<dyn Queue>) {
    let sink = Arc::new(
        IdempotentSink::open(
            Path::new(&std::env::var(SINK_DB).unwrap()),
            PathBuf::from(std::env::var(LOG).unwrap()),
        )
        .await,
    );
    let (_trigger, shutdown) = shutdown_channel();
    Worker::new(
        q,
        sink,
        Arc::new(MemoryDeadLetter::new(10)),
        worker_config(),
    )
    .run(shutdown)
    .await;
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn sqlite_worker_killed_mid_stream_then_new_worker_stores_everything_once() {
    if std::env::var(ROLE).is_ok() {
        let path = PathBuf::from(std::env::var(TARGET).unwrap());
        return child_worker(Arc::new(open_sqlite(&path, shape()).await)).await;
    }
    let dir = tempfile::tempdir().unwrap();
    let path = dir.path().join("queue.db");
    let q = Arc::new(open_sqlite(&path, shape()).await);
    let q2 = q.clone();
    let reopen_path = path.clone();
    run(
        "sqlite_worker_killed_mid_stream_then_new_worker_stores_everything_once",
        q,
        path.to_str().unwrap(),
        async move || q2.shutdown().await,
        async move || Arc::new(open_sqlite(&reopen_path, shape()).await) as Arc<dyn Queue>,
    )
    .await;
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn redis_worker_killed_mid_stream_then_new_worker_stores_everything_once() {
    let connect = async |group: &str, consumer: &str| {
        let mut opts = redis_options(group, shape());
        opts.consumer = Some(consumer.into());
        Arc::new(
            RedisStreamsQueue::connect(&redis_url().unwrap(), opts)
                .await
                .unwrap(),
        )
    };
    if std::env::var(ROLE).is_ok() {
        return child_worker(connect(&std::env::var(TARGET).unwrap(), "child").await).await;
    }
    if redis_url().is_none() {
        return;
    }
    let group = unique("worker-crash");
    let q = connect(&group, "parent").await;
    let keep = q.clone();
    let g2 = group.clone();
    run(
        "redis_worker_killed_mid_stream_then_new_worker_stores_everything_once",
        q,
        &group,
        async || {},
        async move || connect(&g2, "parent2").await as Arc<dyn Queue>,
    )
    .await;
    keep.destroy().await.unwrap();
}
