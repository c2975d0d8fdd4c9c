//! Pipeline throughput and BatchCodec speed.
//!
//! `cargo bench --workspace --bench pipeline`
//!
//! - `pipeline/*`: events/s from NDJSON request bodies to a no-op sink. The
//!   parse stage is the project's JSON-log parser (`json_logs`), which lifts
//!   `time`, `level`, `host`, `app` and `msg` into the record and keeps the
//!   rest as attributes. The aggregation engine is not on main yet, so it is
//!   not in the path. The baseline moves the same
//!   batches through a bounded tokio mpsc channel to a task that runs the
//!   same transforms, i.e. the pipeline without the queue's ack/redelivery
//!   bookkeeping and the worker's grouping.
//! - `codec/*`: BatchCodec encode/decode of realistic batches, against the
//!   canonical JSON form as a baseline.

use std::hint::black_box;
use std::sync::Arc;
use std::time::Duration;

use criterion::{Criterion, Throughput, criterion_group, criterion_main};
use killkrill_core::event::{
    EventIdGenerator, Labels, LogRecord, MetricSample, MetricType, Tenant, Timestamp,
};
use killkrill_core::json_logs::{JsonLogLimits, JsonLogParser, Mode};
use killkrill_core::pipeline::{
    Batch, BatchCodec, BatchIdGenerator, Compression, MemoryDeadLetter, MemoryQueue,
    MemoryQueueConfig, NullSink, Queue, Worker, WorkerConfig, shutdown_channel,
};
use killkrill_core::transform::{BuildContext, TransformChain, TransformConfig};

const EVENTS: usize = 20_000;
const BATCH: usize = 500;

fn json_lines() -> Vec<String> {
    let levels = [
        "info", "info", "info", "debug", "warn", "info", "error", "info",
    ];
    (0..EVENTS)
        .map(|i| {
            format!(
                r#"{{"time":"2026-11-25T17:12:{:02}.{:03}Z","level":"{}","host":"web-{}","app":"checkout","msg":"GET /api/cart/{} 200 {}ms user{}@example.com","user":"u{}","status":200,"duration_ms":{}.5,"region":"eu-west-1"}}"#,
                i % 60,
                i % 1000,
                levels[i % levels.len()],
                i % 7,
                i,
                i % 97,
                i % 13,
                i % 1000,
                i % 300
            )
        })
        .collect()
}

/// The receiver's side: each batch's lines as one NDJSON request body.
fn bodies(lines: &[String]) -> Vec<Vec<u8>> {
    lines
        .chunks(BATCH)
        .map(|c| c.join("\n").into_bytes())
        .collect()
}

/// The parse stage: each NDJSON body through the project's JSON-log parser
/// into one batch, ids and tenant assigned as a receiver does.
fn parse_batches(bodies: &[Vec<u8>]) -> Vec<Batch> {
    let parser = JsonLogParser::new(JsonLogLimits::DEFAULT, Mode::Strict);
    let ids = EventIdGenerator::with_prefix(1);
    let batch_ids = BatchIdGenerator::with_prefix(1);
    let tenant = Tenant::default();
    let now = Timestamp::from_secs(1_764_090_756);
    bodies
        .iter()
        .map(|body| {
            let mut b = Batch::new(batch_ids.next(now), tenant.clone(), now);
            b.source = Some("http".into());
            parser
                .parse_body(body, now, &mut b.logs)
                .expect("valid NDJSON");
            for r in &mut b.logs {
                r.id = Some(ids.next(now));
                r.tenant = Some(tenant.clone());
                r.source = b.source.clone();
            }
            b
        })
        .collect()
}

fn transforms() -> TransformChain {
    let text = r#"t = [
        { type = "filter", severity_at_least = "debug", action = "drop" },
        { type = "enrich", fields = { "attributes.env" = "prod" } },
        { type = "rename", fields = { "attributes.user" = "attributes.user_id" } },
        { type = "redact", builtin = ["email"] },
    ]"#;
    let t: toml::Table = toml::from_str(text).expect("valid toml");
    let configs: Vec<TransformConfig> = t["t"].clone().try_into().expect("valid transforms");
    TransformChain::build("transforms", &configs, &BuildContext::from_system())
        .expect("transforms build")
}

fn runtime() -> tokio::runtime::Runtime {
    tokio::runtime::Builder::new_current_thread()
        .enable_time()
        .build()
        .expect("tokio runtime")
}

/// JSON lines → parse → memory queue → worker (transforms) → no-op sink.
async fn through_memory_queue(lines: &[Vec<u8>], chain: Arc<TransformChain>) -> u64 {
    let queue = Arc::new(MemoryQueue::new(MemoryQueueConfig {
        max_events: 8 * BATCH,
        ..MemoryQueueConfig::default()
    }));
    let (trigger, shutdown) = shutdown_channel();
    let worker = Worker::new(
        queue.clone(),
        Arc::new(NullSink),
        Arc::new(MemoryDeadLetter::new(1)),
        WorkerConfig {
            linger: Duration::ZERO,
            poll_wait: Duration::from_millis(1),
            ..WorkerConfig::default()
        },
    )
    .with_transforms(chain)
    .spawn(shutdown);
    for b in parse_batches(lines) {
        queue
            .enqueue(b, Duration::from_secs(60))
            .await
            .expect("enqueue");
    }
    while queue.stats().await.expect("stats").batches > 0 {
        tokio::task::yield_now().await;
    }
    trigger.trigger();
    worker.await.expect("worker").acknowledged
}

/// The same, through a bounded mpsc channel instead of queue + worker.
async fn through_mpsc(lines: &[Vec<u8>], chain: Arc<TransformChain>) -> usize {
    let (tx, mut rx) = tokio::sync::mpsc::channel::<Batch>(8);
    let consumer = tokio::spawn(async move {
        let mut n = 0;
        while let Some(mut b) = rx.recv().await {
            chain.apply(&mut b);
            n += b.logs.len();
            drop(black_box(b));
        }
        n
    });
    for b in parse_batches(lines) {
        tx.send(b).await.expect("send");
    }
    drop(tx);
    consumer.await.expect("consumer")
}

/// Alternates the pipeline and its mpsc baseline round by round and prints
/// the median of each and their ratio: on a shared, noisy machine the load
/// drifts between criterion's sequential benchmarks, while alternating
/// rounds see the same conditions.
#[allow(clippy::print_stderr)]
fn paired(
    rt: &tokio::runtime::Runtime,
    lines: &[Vec<u8>],
    chain: &Arc<TransformChain>,
    label: &str,
) {
    const ROUNDS: usize = 41;
    let mut queue = Vec::with_capacity(ROUNDS);
    let mut mpsc = Vec::with_capacity(ROUNDS);
    for _ in 0..ROUNDS {
        let t = std::time::Instant::now();
        black_box(rt.block_on(through_mpsc(lines, chain.clone())));
        mpsc.push(t.elapsed());
        let t = std::time::Instant::now();
        black_box(rt.block_on(through_memory_queue(lines, chain.clone())));
        queue.push(t.elapsed());
    }
    queue.sort_unstable();
    mpsc.sort_unstable();
    let (q, m) = (queue[ROUNDS / 2], mpsc[ROUNDS / 2]);
    let rate = |d: Duration| EVENTS as f64 / d.as_secs_f64() / 1000.0;
    eprintln!(
        "paired/{label}: memory queue + worker {:.1} ms ({:.0} k events/s), mpsc baseline {:.1} ms ({:.0} k events/s), ratio {:.2}",
        q.as_secs_f64() * 1e3,
        rate(q),
        m.as_secs_f64() * 1e3,
        rate(m),
        rate(q) / rate(m)
    );
}

fn pipeline(c: &mut Criterion) {
    let lines = bodies(&json_lines());
    let chain = Arc::new(transforms());
    let rt = runtime();
    // Only under `cargo bench` (which passes --bench): not when nextest
    // lists or runs the bench binary as a test.
    let benching = std::env::args().any(|a| a == "--bench");
    if benching {
        paired(&rt, &lines, &chain, "with_transforms");
        paired(
            &rt,
            &lines,
            &Arc::new(TransformChain::default()),
            "no_transforms",
        );
    }
    let mut g = c.benchmark_group("pipeline");
    g.throughput(Throughput::Elements(EVENTS as u64));
    g.sample_size(20);
    g.bench_function("parse_only", |b| {
        b.iter(|| black_box(parse_batches(&lines)))
    });
    g.bench_function("parse_transform_mpsc_baseline", |b| {
        b.iter(|| rt.block_on(through_mpsc(&lines, chain.clone())))
    });
    g.bench_function("parse_transform_memory_queue_worker", |b| {
        b.iter(|| rt.block_on(through_memory_queue(&lines, chain.clone())))
    });
    let none = Arc::new(TransformChain::default());
    g.bench_function("parse_memory_queue_worker_no_transforms", |b| {
        b.iter(|| rt.block_on(through_memory_queue(&lines, none.clone())))
    });
    g.bench_function("parse_mpsc_baseline_no_transforms", |b| {
        b.iter(|| rt.block_on(through_mpsc(&lines, none.clone())))
    });
    g.finish();
}

fn metric_batch() -> Batch {
    let now = Timestamp::from_secs(1_764_090_756);
    let mut b = Batch::new(
        BatchIdGenerator::with_prefix(2).next(now),
        Tenant::default(),
        now,
    );
    b.source = Some("remote_write".into());
    let t = b.tenant.clone();
    b.metrics = (0..1000)
        .map(|i| MetricSample {
            tenant: Some(t.clone()),
            name: "node_cpu_seconds_total".into(),
            labels: Labels::from_pairs([
                ("cpu", format!("{}", i % 16)),
                ("instance", format!("node-{}:9100", i / 80)),
                ("job", "node".into()),
                (
                    "mode",
                    ["idle", "user", "system", "iowait", "irq"][i % 5].into(),
                ),
            ]),
            value: 12_345.67 + i as f64,
            timestamp: Some(now.saturating_add_nanos(i as i64 * 15_000_000_000)),
            kind: MetricType::Counter,
        })
        .collect();
    b
}

#[allow(clippy::print_stderr)] // the bench reports encoded sizes alongside the timings
fn codec(c: &mut Criterion) {
    // One batch of 1,000 records with consecutive ids.
    let mut two = parse_batches(&bodies(&json_lines()[..2 * BATCH]));
    let mut logs = two.remove(0);
    logs.logs.append(&mut two[0].logs);
    let metrics = metric_batch();
    let plain = BatchCodec::new();
    let zstd = BatchCodec::new().with_compression(Compression::Zstd(1));
    let mut g = c.benchmark_group("codec");
    for (name, batch) in [("logs", &logs), ("metrics", &metrics)] {
        let bytes = plain.encode_to_vec(batch).expect("encode");
        let packed = zstd.encode_to_vec(batch).expect("encode");
        let json: usize = batch
            .logs
            .iter()
            .map(|r| r.to_json().len() + 1)
            .sum::<usize>()
            + batch
                .metrics
                .iter()
                .map(|m| serde_json::to_string(m).expect("json").len() + 1)
                .sum::<usize>();
        eprintln!(
            "codec/{name}: {} events, approx_bytes {}, plain {} B ({:.1} B/event), zstd(1) {} B ({:.1} B/event), canonical JSON {} B",
            batch.len(),
            batch.approx_bytes(),
            bytes.len(),
            bytes.len() as f64 / batch.len() as f64,
            packed.len(),
            packed.len() as f64 / batch.len() as f64,
            json
        );
        g.throughput(Throughput::Bytes(bytes.len() as u64));
        g.bench_function(format!("{name}/encode"), |b| {
            let mut out = Vec::with_capacity(bytes.len());
            b.iter(|| {
                out.clear();
                plain.encode(black_box(batch), &mut out).expect("encode");
                out.len()
            })
        });
        g.bench_function(format!("{name}/decode"), |b| {
            b.iter(|| plain.decode(black_box(&bytes)).expect("decode"))
        });
        g.bench_function(format!("{name}/encode_zstd1"), |b| {
            b.iter(|| zstd.encode_to_vec(black_box(batch)).expect("encode"))
        });
        g.bench_function(format!("{name}/decode_zstd1"), |b| {
            b.iter(|| zstd.decode(black_box(&packed)).expect("decode"))
        });
        g.bench_function(format!("{name}/clone_baseline"), |b| {
            b.iter(|| black_box(batch).clone())
        });
        if name == "logs" {
            g.bench_function("logs/json_encode_baseline", |b| {
                b.iter(|| {
                    let mut out = Vec::with_capacity(json);
                    for r in &batch.logs {
                        r.write_json(&mut out).expect("json");
                        out.push(b'\n');
                    }
                    out
                })
            });
            let text: Vec<String> = batch.logs.iter().map(LogRecord::to_json).collect();
            g.bench_function("logs/json_decode_baseline", |b| {
                b.iter(|| {
                    text.iter()
                        .map(|l| serde_json::from_str::<LogRecord>(l).expect("json"))
                        .collect::<Vec<_>>()
                })
            });
        }
    }
    g.finish();
}

criterion_group!(benches, pipeline, codec);
criterion_main!(benches);
