//! Queue throughput: one round is 64 batches of 100 log records enqueued one
//! by one (each `enqueue` waits for its durability), dequeued and
//! acknowledged, on the memory queue (the baseline), the SQLite queue
//! (`synchronous = NORMAL` and `FULL`) and the Redis Streams queue
//! (`KILLKRILL_TEST_REDIS_URL`), in one run.
//!
//! ```text
//! KILLKRILL_TEST_REDIS_URL=redis://127.0.0.1:6379 cargo bench --workspace --bench queues
//! ```
//!
//! With Redis, the run ends with `redis-benchmark` sending `XADD`s of the
//! same payload to the same server (one client without pipelining, 50
//! clients without pipelining -- redis-benchmark's default -- and 50 clients
//! with 16-deep pipelines) as the raw-rate reference.
#![allow(clippy::print_stdout, clippy::print_stderr, clippy::unwrap_used)]

use std::sync::Arc;
use std::time::{Duration, Instant};

use criterion::{Criterion, Throughput, criterion_group, criterion_main};
use killkrill_core::event::{LogRecord, Severity, Tenant, Timestamp};
use killkrill_core::pipeline::{Batch, BatchCodec, BatchId, MemoryQueue, MemoryQueueConfig, Queue};
use killkrill_store::config::SqliteSync;
use killkrill_store::queue::{
    RedisQueueOptions, RedisStreamsQueue, SqliteQueue, SqliteQueueOptions,
};

const BATCHES: usize = 64;
const EVENTS: usize = 100;

fn batch(id: u128) -> Batch {
    let mut b = Batch::new(BatchId::from_u128(id), Tenant::default(), Timestamp::now());
    b.source = Some("syslog-tcp".into());
    b.logs = (0..EVENTS)
        .map(|i| LogRecord {
            timestamp: Timestamp::from_millis(1_764_000_000_000 + i as i64),
            severity: Some(Severity::Informational),
            host: Some(format!("web{}", i % 8)),
            app: Some("nginx".into()),
            message: Some(
                format!(
                    "GET /api/v1/items/{i} HTTP/1.1 200 {} \"curl/8.5\" rt=0.0{}",
                    500 + i,
                    i % 10
                )
                .into_bytes(),
            ),
            ..LogRecord::default()
        })
        .collect();
    b
}

/// One round: enqueue (one after the other, or all at once as concurrent
/// receivers would), dequeue and acknowledge `BATCHES` batches.
async fn round(q: &Arc<dyn Queue>, batches: Vec<Batch>, concurrent: bool) {
    if concurrent {
        let mut set = tokio::task::JoinSet::new();
        for b in batches {
            let q = q.clone();
            set.spawn(async move { q.enqueue(b, Duration::from_secs(10)).await });
        }
        while let Some(r) = set.join_next().await {
            r.unwrap().unwrap();
        }
    } else {
        for b in batches {
            q.enqueue(b, Duration::from_secs(10)).await.unwrap();
        }
    }
    let mut got = 0;
    while got < BATCHES {
        let ds = q
            .dequeue(BATCHES - got, Duration::from_secs(5))
            .await
            .unwrap();
        assert!(!ds.is_empty(), "queue ran dry");
        got += ds.len();
        let ids: Vec<_> = ds.iter().map(|d| d.id).collect();
        q.ack(&ids).await.unwrap();
    }
}

fn bench_queue(
    c: &mut Criterion,
    rt: &tokio::runtime::Runtime,
    name: &str,
    q: Arc<dyn Queue>,
    concurrent: bool,
) {
    let template: Vec<Batch> = (0..BATCHES as u128).map(batch).collect();
    let mut g = c.benchmark_group("queue_round");
    g.sample_size(10)
        .measurement_time(Duration::from_secs(4))
        .warm_up_time(Duration::from_secs(1))
        .throughput(Throughput::Elements((BATCHES * EVENTS) as u64));
    g.bench_function(name, |b| {
        b.iter_custom(|iters| {
            let mut total = Duration::ZERO;
            for _ in 0..iters {
                let batches = template.clone();
                let start = Instant::now();
                rt.block_on(round(&q, batches, concurrent));
                total += start.elapsed();
            }
            total
        });
    });
    g.finish();
}

fn redis_url() -> Option<String> {
    std::env::var("KILLKRILL_TEST_REDIS_URL")
        .ok()
        .filter(|u| !u.is_empty())
}

/// `redis-benchmark` XADDs of one encoded batch: the raw server rate.
fn raw_xadd(url: &str, payload: &[u8]) {
    let hostport = url
        .trim_start_matches("redis://")
        .trim_end_matches('/')
        .to_owned();
    let (host, port) = hostport.split_once(':').unwrap_or((&hostport, "6379"));
    let arg = String::from_utf8_lossy(payload).replace('\0', " ");
    let key = format!("kkbench:{{raw-{}}}:stream", std::process::id());
    for (clients, pipeline) in [("1", "1"), ("50", "1"), ("50", "16")] {
        let out = std::process::Command::new("redis-benchmark")
            .args([
                "-h", host, "-p", port, "-q", "-n", "20000", "-c", clients, "-P", pipeline,
            ])
            .args(["XADD", &key, "*", "b", &arg])
            .output();
        match out {
            Ok(o) => {
                let text = String::from_utf8_lossy(&o.stdout);
                let last = text.rsplit(": ").next().unwrap_or(&text).trim();
                println!(
                    "raw XADD of one {}-byte batch, {clients} client(s), pipeline {pipeline}: {last}",
                    payload.len()
                );
            }
            Err(e) => println!("redis-benchmark not run: {e}"),
        }
    }
    let _ = std::process::Command::new("redis-cli")
        .args(["-h", host, "-p", port, "DEL", &key])
        .output();
}

fn queues(c: &mut Criterion) {
    let rt = tokio::runtime::Builder::new_multi_thread()
        .worker_threads(2)
        .enable_all()
        .build()
        .unwrap();
    let memory: Arc<dyn Queue> = Arc::new(MemoryQueue::new(MemoryQueueConfig {
        max_events: 1 << 24,
        max_bytes: 1 << 32,
        visibility_timeout: Duration::from_secs(60),
    }));
    bench_queue(c, &rt, "memory", memory.clone(), false);
    bench_queue(c, &rt, "memory_concurrent", memory, true);
    let dir = tempfile::tempdir().unwrap();
    for (name, sync) in [
        ("sqlite_normal", SqliteSync::Normal),
        ("sqlite_full", SqliteSync::Full),
    ] {
        let q: Arc<dyn Queue> = Arc::new(
            rt.block_on(SqliteQueue::open(
                dir.path().join(format!("{name}.db")),
                SqliteQueueOptions {
                    synchronous: sync,
                    ..SqliteQueueOptions::default()
                },
            ))
            .unwrap(),
        );
        bench_queue(c, &rt, name, q.clone(), false);
        bench_queue(c, &rt, &format!("{name}_concurrent"), q, true);
    }
    match redis_url() {
        Some(url) => {
            let q = rt
                .block_on(RedisStreamsQueue::connect(
                    &url,
                    RedisQueueOptions {
                        prefix: "kkbench".into(),
                        tenant_group: format!("bench-{}", std::process::id()),
                        ..RedisQueueOptions::default()
                    },
                ))
                .unwrap();
            let q = Arc::new(q);
            bench_queue(c, &rt, "redis", q.clone(), false);
            bench_queue(c, &rt, "redis_concurrent", q.clone(), true);
            rt.block_on(q.destroy()).unwrap();
            // Only in a real `cargo bench` run, not when a test runner
            // runs each benchmark once.
            if std::env::args().any(|a| a == "--bench") {
                let payload = BatchCodec::new().encode_to_vec(&batch(1)).unwrap();
                raw_xadd(&url, &payload);
            }
        }
        None => eprintln!("redis skipped: KILLKRILL_TEST_REDIS_URL is not set"),
    }
}

criterion_group!(benches, queues);
criterion_main!(benches);
