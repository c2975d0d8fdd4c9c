//! Queue throughput: one round is 64 batches of 100 log records enqueued one
//! by one (each `enqueue` waits for its durability), dequeued and
//! acknowledged, on the memory queue (the baseline), the SQLite queue
//! (`synchronous = NORMAL` and `FULL`) and the Redis Streams queue
//! (`KILLKRILL_TEST_REDIS_URL`; its default checked bound, and concurrent
//! also with the exact bound), in one run.
//!
//! ```text
//! KILLKRILL_TEST_REDIS_URL=redis://127.0.0.1:6379 cargo bench --workspace --bench queues
//! ```
//!
//! With Redis, the run ends with `redis-benchmark` sending `XADD`s to the
//! same server (one client without pipelining, 50 clients without
//! pipelining -- redis-benchmark's default -- and 50 clients with 16-deep
//! pipelines) as the raw-rate reference, twice: one event per entry (the
//! issue's measure: the queue's events/s against it) and one whole batch's
//! bytes per entry (the stricter measure: batches/s against it). It also prints the CPU
//! time per batch of this process (all its threads) and of `redis-server`
//! (`INFO cpu`) over 100 concurrent rounds, and the server's CPU per raw
//! `XADD`: client and server share the machine's cores.
#![allow(clippy::print_stdout, clippy::print_stderr, clippy::unwrap_used)]

use std::sync::Arc;
use std::time::{Duration, Instant};

use criterion::{Criterion, Throughput, criterion_group, criterion_main};
use killkrill_core::event::{LogRecord, Severity, Tenant, Timestamp};
use killkrill_core::pipeline::{Batch, BatchCodec, BatchId, MemoryQueue, MemoryQueueConfig, Queue};
use killkrill_store::config::SqliteSync;
use killkrill_store::queue::redis::RedisBound;
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

fn host_port(url: &str) -> (String, String) {
    let hostport = url.trim_start_matches("redis://").trim_end_matches('/');
    let (host, port) = hostport.split_once(':').unwrap_or((hostport, "6379"));
    (host.to_owned(), port.to_owned())
}

/// CPU time of this process so far: the sum over its threads of
/// `/proc/self/task/*/schedstat` (nanoseconds on a CPU).
fn own_cpu() -> Duration {
    let mut ns = 0u64;
    for t in std::fs::read_dir("/proc/self/task")
        .into_iter()
        .flatten()
        .flatten()
    {
        if let Ok(s) = std::fs::read_to_string(t.path().join("schedstat")) {
            ns += s
                .split_whitespace()
                .next()
                .and_then(|v| v.parse::<u64>().ok())
                .unwrap_or(0);
        }
    }
    Duration::from_nanos(ns)
}

/// `redis-server`'s CPU time so far (`used_cpu_sys` + `used_cpu_user`).
fn server_cpu(url: &str) -> Duration {
    let (host, port) = host_port(url);
    let out = std::process::Command::new("redis-cli")
        .args(["-h", &host, "-p", &port, "INFO", "cpu"])
        .output()
        .map(|o| String::from_utf8_lossy(&o.stdout).into_owned())
        .unwrap_or_default();
    let secs: f64 = out
        .lines()
        .filter_map(|l| {
            let (k, v) = l.trim().split_once(':')?;
            matches!(k, "used_cpu_sys" | "used_cpu_user").then(|| v.parse::<f64>().ok())?
        })
        .sum();
    Duration::from_secs_f64(secs)
}

/// Wall and CPU time (this process, redis-server) per batch over
/// `rounds` concurrent rounds; the batches are cloned outside the
/// measured spans.
fn cpu_per_batch(
    rt: &tokio::runtime::Runtime,
    url: &str,
    q: &Arc<dyn Queue>,
    rounds: usize,
) -> f64 {
    let template: Vec<Batch> = (0..BATCHES as u128).map(batch).collect();
    let (mut wall, mut own, mut server) = (Duration::ZERO, Duration::ZERO, Duration::ZERO);
    for _ in 0..rounds / 10 {
        let inputs: Vec<Vec<Batch>> = (0..10).map(|_| template.clone()).collect();
        // redis-cli runs outside the timed span.
        let s0 = server_cpu(url);
        let (c0, w0) = (own_cpu(), Instant::now());
        for batches in inputs {
            rt.block_on(round(q, batches, true));
        }
        wall += w0.elapsed();
        own += own_cpu().saturating_sub(c0);
        server += server_cpu(url).saturating_sub(s0);
    }
    let n = (rounds / 10 * 10 * BATCHES) as f64;
    let rate = n / wall.as_secs_f64();
    println!(
        "redis_concurrent, {n} batches: {rate:.0} batches/s ({:.0} events/s); CPU per batch: this process {:.1} us, redis-server {:.1} us, wall {:.1} us",
        rate * EVENTS as f64,
        own.as_secs_f64() * 1e6 / n,
        server.as_secs_f64() * 1e6 / n,
        wall.as_secs_f64() * 1e6 / n,
    );
    rate
}

/// `redis-benchmark` XADDs of `payload` (`what` names it): the raw server
/// rate, and the server's CPU per request. Returns the rate of
/// redis-benchmark's default (50 clients, no pipelining), requests/s.
fn raw_xadd(url: &str, payload: &[u8], what: &str) -> Option<f64> {
    let mut default_rate = None;
    let (host, port) = host_port(url);
    let (host, port) = (host.as_str(), port.as_str());
    let arg = String::from_utf8_lossy(payload).replace('\0', " ");
    let key = format!("kkbench:{{raw-{}}}:stream", std::process::id());
    for (clients, pipeline) in [("1", "1"), ("50", "1"), ("50", "16")] {
        let s0 = server_cpu(url);
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
                if (clients, pipeline) == ("50", "1") {
                    default_rate = last
                        .split(" requests per second")
                        .next()
                        .and_then(|r| r.trim().parse::<f64>().ok());
                }
                let server = server_cpu(url).saturating_sub(s0);
                println!(
                    "raw XADD of {what} ({} bytes), {clients} client(s), pipeline {pipeline}: {last}; redis-server CPU {:.1} us per request",
                    payload.len(),
                    server.as_secs_f64() * 1e6 / 20_000.0
                );
            }
            Err(e) => println!("redis-benchmark not run: {e}"),
        }
    }
    let _ = std::process::Command::new("redis-cli")
        .args(["-h", host, "-p", port, "DEL", &key])
        .output();
    default_rate
}

/// One log record as the queue would carry it alone: a one-record batch.
fn one_event() -> Batch {
    let mut b = batch(2);
    b.logs.truncate(1);
    b
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
            // The same with the exact bound (the check and the add in one
            // Lua script), the default before the checked bound.
            let exact = rt
                .block_on(RedisStreamsQueue::connect(
                    &url,
                    RedisQueueOptions {
                        prefix: "kkbench".into(),
                        tenant_group: format!("bench-exact-{}", std::process::id()),
                        bound: RedisBound::Exact,
                        ..RedisQueueOptions::default()
                    },
                ))
                .unwrap();
            let exact = Arc::new(exact);
            bench_queue(c, &rt, "redis_exact_concurrent", exact.clone(), true);
            rt.block_on(exact.destroy()).unwrap();
            // Only in a real `cargo bench` run, not when a test runner
            // runs each benchmark once.
            let real = std::env::args().any(|a| a == "--bench");
            let batches_per_s = real.then(|| {
                let dq: Arc<dyn Queue> = q.clone();
                cpu_per_batch(&rt, &url, &dq, 100)
            });
            rt.block_on(q.destroy()).unwrap();
            if let Some(batches_per_s) = batches_per_s {
                let codec = BatchCodec::new();
                let event = codec.encode_to_vec(&one_event()).unwrap();
                let per_event = raw_xadd(&url, &event, "one event");
                let whole = codec.encode_to_vec(&batch(1)).unwrap();
                let per_batch = raw_xadd(&url, &whole, "one 100-event batch");
                // The issue's measure: events/s through the queue (enqueue,
                // dequeue, ack; batched) against redis-benchmark's XADD rate
                // of one event per entry. The stricter one: batches/s
                // against XADDs of the same batch-sized payload.
                if let Some(raw) = per_event {
                    println!(
                        "share (events/s through the queue / raw XADD of one event, 50 clients): {:.0}%",
                        100.0 * batches_per_s * EVENTS as f64 / raw
                    );
                }
                if let Some(raw) = per_batch {
                    println!(
                        "share (batches/s through the queue / raw XADD of one batch's bytes, 50 clients): {:.0}%",
                        100.0 * batches_per_s / raw
                    );
                }
            }
        }
        None => eprintln!("redis skipped: KILLKRILL_TEST_REDIS_URL is not set"),
    }
}

criterion_group!(benches, queues);
criterion_main!(benches);
