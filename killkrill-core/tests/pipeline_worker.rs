//! The worker against the in-memory queue, with scripted sinks, on tokio's
//! paused clock: grouping by size and time, backpressure, retries, dead
//! letters, acknowledgement only after commit, and the shutdown drain.

use std::collections::HashSet;
use std::sync::atomic::{AtomicU32, Ordering};
use std::sync::{Arc, Mutex};
use std::time::Duration;

use async_trait::async_trait;
use killkrill_core::event::{LogRecord, MetricSample, Severity, Tenant, Timestamp};
use killkrill_core::pipeline::{
    Backoff, Batch, BatchId, DeadLetter, DeadLetterReason, MemoryDeadLetter, MemoryQueue,
    MemoryQueueConfig, Queue, QueueError, Sink, SinkError, Worker, WorkerConfig, WorkerReport,
    shutdown_channel,
};
use killkrill_core::transform::{BuildContext, TransformChain, TransformConfig};
use tokio::time::Instant;

type Script = dyn Fn(u32, &[Arc<Batch>]) -> Result<(), SinkError> + Send + Sync;

/// A sink whose outcome per call is scripted; it records what it committed.
struct ScriptedSink {
    calls: AtomicU32,
    latency: Duration,
    script: Box<Script>,
    committed: Mutex<Vec<u128>>,
    groups: Mutex<Vec<(Duration, usize)>>,
    start: Instant,
}

impl ScriptedSink {
    fn new(
        latency: Duration,
        script: impl Fn(u32, &[Arc<Batch>]) -> Result<(), SinkError> + Send + Sync + 'static,
    ) -> Arc<Self> {
        Arc::new(ScriptedSink {
            calls: AtomicU32::new(0),
            latency,
            script: Box::new(script),
            committed: Mutex::new(Vec::new()),
            groups: Mutex::new(Vec::new()),
            start: Instant::now(),
        })
    }

    fn committed(&self) -> Vec<u128> {
        self.committed.lock().expect("sink lock").clone()
    }

    fn groups(&self) -> Vec<(Duration, usize)> {
        self.groups.lock().expect("sink lock").clone()
    }
}

#[async_trait]
impl Sink for ScriptedSink {
    fn name(&self) -> &str {
        "scripted"
    }

    async fn write(&self, batches: &[Arc<Batch>]) -> Result<(), SinkError> {
        let n = self.calls.fetch_add(1, Ordering::SeqCst) + 1;
        tokio::time::sleep(self.latency).await;
        (self.script)(n, batches)?;
        self.committed
            .lock()
            .expect("sink lock")
            .extend(batches.iter().map(|b| b.id.as_u128()));
        self.groups
            .lock()
            .expect("sink lock")
            .push((self.start.elapsed(), batches.len()));
        Ok(())
    }
}

fn batch(id: u128, events: usize) -> Batch {
    let mut b = Batch::new(BatchId::from_u128(id), Tenant::default(), Timestamp::now());
    b.logs = (0..events)
        .map(|i| LogRecord {
            message: Some(format!("event {i} of batch {id}").into_bytes()),
            severity: Some(Severity::Informational),
            ..LogRecord::default()
        })
        .collect();
    b
}

fn memory_queue(max_events: usize) -> Arc<MemoryQueue> {
    Arc::new(MemoryQueue::new(MemoryQueueConfig {
        max_events,
        max_bytes: 1 << 30,
        visibility_timeout: Duration::from_secs(300),
    }))
}

fn config() -> WorkerConfig {
    WorkerConfig {
        dequeue_max: 64,
        group_max_events: 10_000,
        group_max_batches: 64,
        group_max_logs: 10_000,
        group_max_bytes: 1 << 30,
        linger: Duration::ZERO,
        poll_wait: Duration::from_millis(100),
        max_attempts: 5,
        max_deliveries: 10,
        backoff: Backoff {
            initial: Duration::from_millis(100),
            max: Duration::from_secs(1),
            multiplier: 2.0,
        },
        drain_timeout: Duration::from_secs(5),
        stats_interval: Duration::from_secs(1),
    }
}

async fn enqueue_all(q: &MemoryQueue, batches: impl IntoIterator<Item = Batch>) {
    for b in batches {
        q.enqueue(b, Duration::from_secs(600))
            .await
            .expect("room within 600 s");
    }
}

/// Waits (in paused time) until `cond` holds, or panics after `limit`.
async fn until(limit: Duration, mut cond: impl FnMut() -> bool) {
    let end = Instant::now() + limit;
    while !cond() {
        assert!(Instant::now() < end, "condition not met within {limit:?}");
        tokio::time::sleep(Duration::from_millis(10)).await;
    }
}

struct Running {
    trigger: killkrill_core::pipeline::ShutdownTrigger,
    handle: tokio::task::JoinHandle<WorkerReport>,
}

impl Running {
    async fn stop(self) -> WorkerReport {
        self.trigger.trigger();
        self.handle.await.expect("worker task")
    }
}

fn start(
    q: &Arc<MemoryQueue>,
    sink: &Arc<ScriptedSink>,
    dlq: &Arc<MemoryDeadLetter>,
    config: WorkerConfig,
) -> Running {
    let (trigger, shutdown) = shutdown_channel();
    let worker = Worker::new(
        q.clone() as Arc<dyn Queue>,
        sink.clone() as Arc<dyn Sink>,
        dlq.clone() as Arc<dyn DeadLetter>,
        config,
    )
    .with_jitter_seed(7);
    Running {
        trigger,
        handle: worker.spawn(shutdown),
    }
}

/// Runs a worker with `config` over `batches` (ids 1..=n, dequeued one at
/// a time, a linger longer than the run) until all are committed, in
/// order, once each, and acknowledged; the sizes of the groups it wrote.
async fn group_sizes(batches: Vec<Batch>, config: WorkerConfig) -> Vec<usize> {
    let n = batches.len();
    let q = memory_queue(10_000);
    enqueue_all(&q, batches).await;
    let sink = ScriptedSink::new(Duration::ZERO, |_, _| Ok(()));
    let dlq = Arc::new(MemoryDeadLetter::new(10));
    let w = start(
        &q,
        &sink,
        &dlq,
        WorkerConfig {
            dequeue_max: 1,
            linger: Duration::from_secs(10),
            ..config
        },
    );
    until(Duration::from_secs(5), || sink.committed().len() == n).await;
    let report = w.stop().await;
    assert_eq!(
        sink.committed(),
        (1..=n as u128).collect::<Vec<_>>(),
        "in order, once each"
    );
    assert_eq!(report.acknowledged, n as u64);
    assert_eq!(q.stats().await.expect("queue stats").batches, 0);
    sink.groups().iter().map(|g| g.1).collect()
}

#[tokio::test(start_paused = true)]
async fn groups_close_by_event_count() {
    let sizes = group_sizes(
        (1..=50).map(|i| batch(i, 10)).collect(),
        WorkerConfig {
            group_max_events: 100,
            ..config()
        },
    )
    .await;
    assert_eq!(sizes, [10, 10, 10, 10, 10], "100 events per group");
}

/// Log records close a group at `group_max_logs`; metric samples do not
/// count toward it.
#[tokio::test(start_paused = true)]
async fn groups_close_by_log_records() {
    let sizes = group_sizes(
        (1..=12).map(|i| batch(i, 10)).collect(),
        WorkerConfig {
            group_max_events: 10_000,
            group_max_logs: 40,
            ..config()
        },
    )
    .await;
    assert_eq!(sizes, [4, 4, 4], "40 log records per group");
    let samples = |i: u128| {
        let mut b = Batch::new(BatchId::from_u128(i), Tenant::default(), Timestamp::now());
        b.metrics = (0..10)
            .map(|k| MetricSample {
                name: "up".into(),
                value: k as f64,
                ..MetricSample::default()
            })
            .collect();
        b
    };
    let sizes = group_sizes(
        (1..=12).map(samples).collect(),
        WorkerConfig {
            group_max_events: 60,
            group_max_logs: 40,
            ..config()
        },
    )
    .await;
    assert_eq!(sizes, [6, 6], "samples: 60 events per group");
}

/// Heavy events close a group by bytes long before its event count: 30
/// batches of 10 events with 10 KiB messages, groups of three batches'
/// bytes.
#[tokio::test(start_paused = true)]
async fn groups_close_by_bytes() {
    let heavy = |i: u128| {
        let mut b = batch(i, 10);
        for r in &mut b.logs {
            r.message = Some(vec![b'x'; 10 << 10]);
        }
        b
    };
    let per_batch = heavy(0).resident_bytes();
    assert!(per_batch > 10 * (10 << 10), "{per_batch}");
    let sizes = group_sizes(
        (1..=30).map(heavy).collect(),
        WorkerConfig {
            group_max_events: 10_000,
            group_max_bytes: 3 * per_batch,
            ..config()
        },
    )
    .await;
    assert_eq!(sizes, [3; 10], "three batches' bytes per group");
}

#[tokio::test(start_paused = true)]
async fn groups_close_by_batch_count_and_by_time() {
    let q = memory_queue(10_000);
    enqueue_all(&q, (1..=7).map(|i| batch(i, 1))).await;
    let sink = ScriptedSink::new(Duration::ZERO, |_, _| Ok(()));
    let dlq = Arc::new(MemoryDeadLetter::new(10));
    let w = start(
        &q,
        &sink,
        &dlq,
        WorkerConfig {
            group_max_batches: 5,
            linger: Duration::from_secs(1),
            ..config()
        },
    );
    // 5 at once (full by count), the other 2 after the linger of 1 s.
    until(Duration::from_secs(5), || sink.committed().len() == 7).await;
    // One more, 3 s later: written 1 s after it arrived.
    tokio::time::sleep(Duration::from_secs(3)).await;
    let t_enqueue = sink.start.elapsed();
    enqueue_all(&q, [batch(8, 1)]).await;
    until(Duration::from_secs(5), || sink.committed().len() == 8).await;
    w.stop().await;
    let g = sink.groups();
    assert_eq!(g.iter().map(|g| g.1).collect::<Vec<_>>(), [5, 2, 1]);
    assert_eq!(g[0].0, Duration::ZERO);
    assert_eq!(g[1].0, Duration::from_secs(1));
    let lag = g[2].0 - t_enqueue;
    assert!(
        lag >= Duration::from_secs(1) && lag < Duration::from_millis(1_200),
        "{lag:?}"
    );
}

#[tokio::test(start_paused = true)]
async fn slow_sink_backpressures_receivers_and_memory_stays_bounded() {
    const LIMIT: usize = 50;
    let q = memory_queue(LIMIT);
    let sink = ScriptedSink::new(Duration::from_secs(1), |_, _| Ok(()));
    let dlq = Arc::new(MemoryDeadLetter::new(10));
    let w = start(
        &q,
        &sink,
        &dlq,
        WorkerConfig {
            group_max_batches: 2,
            ..config()
        },
    );
    let mut full = 0;
    let mut peak = 0;
    let mut waited = Duration::ZERO;
    for i in 1..=100u128 {
        let mut b = Some(batch(i, 5));
        loop {
            // A receiver answering 429 uses try_enqueue; a TCP listener that
            // stops reading waits. Do both.
            match q.try_enqueue(b.clone().unwrap()).await {
                Ok(()) => break,
                Err(QueueError::Full { .. }) => {
                    full += 1;
                    let t = Instant::now();
                    match q
                        .enqueue(b.take().unwrap(), Duration::from_millis(300))
                        .await
                    {
                        Ok(()) => {
                            waited += t.elapsed();
                            break;
                        }
                        Err(QueueError::Full { waited: w }) => {
                            assert_eq!(w, Duration::from_millis(300));
                            waited += w;
                            b = Some(batch(i, 5));
                        }
                        Err(e) => panic!("{e}"),
                    }
                }
                Err(e) => panic!("{e}"),
            }
        }
        let s = q.stats().await.unwrap();
        peak = peak.max(s.events.unwrap());
        assert!(s.events.unwrap() as usize <= LIMIT);
    }
    until(Duration::from_secs(120), || sink.committed().len() == 100).await;
    let report = w.stop().await;
    assert!(full > 50, "the producer was pushed back {full} times");
    assert_eq!(
        peak as usize, LIMIT,
        "the queue filled up to, never past, its limit"
    );
    // 100 batches, 2 per 1 s write: the producer was held back ~40 s+.
    assert!(waited > Duration::from_secs(35), "{waited:?}");
    assert_eq!(report.acknowledged, 100);
}

#[tokio::test(start_paused = true)]
async fn retryable_errors_back_off_then_succeed() {
    let q = memory_queue(1_000);
    enqueue_all(&q, [batch(1, 3)]).await;
    let sink = ScriptedSink::new(Duration::ZERO, |n, _| {
        if n <= 3 {
            Err(SinkError::retryable(format!(
                "connection refused (call {n})"
            )))
        } else {
            Ok(())
        }
    });
    let dlq = Arc::new(MemoryDeadLetter::new(10));
    let t0 = Instant::now();
    let w = start(&q, &sink, &dlq, config());
    until(Duration::from_secs(5), || sink.committed().len() == 1).await;
    let took = t0.elapsed();
    let report = w.stop().await;
    assert_eq!(sink.calls.load(Ordering::SeqCst), 4);
    assert_eq!(
        (report.retries, report.sink_errors, report.acknowledged),
        (3, 3, 1)
    );
    // Full jitter: each wait is within its cap (100, 200, 400 ms).
    assert!(took <= Duration::from_millis(700), "{took:?}");
    assert!(took > Duration::ZERO);
    assert!(dlq.entries().is_empty());
    assert_eq!(q.stats().await.unwrap().batches, 0);
}

#[tokio::test(start_paused = true)]
async fn poison_batch_is_dead_lettered_after_n_attempts_while_the_rest_flows() {
    let q = memory_queue(10_000);
    enqueue_all(&q, (1..=30).map(|i| batch(i, 2))).await;
    let sink = ScriptedSink::new(Duration::from_millis(5), |_, group| {
        if group.iter().any(|b| b.id.as_u128() == 13) {
            Err(SinkError::retryable(
                "value too long for type character varying(255)",
            ))
        } else {
            Ok(())
        }
    });
    let dlq = Arc::new(MemoryDeadLetter::new(10));
    let w = start(
        &q,
        &sink,
        &dlq,
        WorkerConfig {
            group_max_batches: 8,
            max_attempts: 4,
            ..config()
        },
    );
    until(Duration::from_secs(30), || {
        sink.committed().len() == 29 && dlq.entries().len() == 1
    })
    .await;
    let report = w.stop().await;
    let mut committed = sink.committed();
    committed.sort_unstable();
    assert_eq!(committed, (1..=30).filter(|i| *i != 13).collect::<Vec<_>>());
    let dead = dlq.entries();
    assert_eq!(dead[0].batch().expect("a batch").id.as_u128(), 13);
    assert_eq!(dead[0].reason, DeadLetterReason::RetriesExhausted);
    assert_eq!(dead[0].attempts, 4);
    assert_eq!(
        dead[0].error,
        "value too long for type character varying(255)"
    );
    assert_eq!(
        dead[0].batch().expect("a batch").len(),
        2,
        "the original batch is kept"
    );
    assert_eq!((report.acknowledged, report.dead_lettered), (29, 1));
    assert_eq!(
        q.stats().await.unwrap().batches,
        0,
        "dead letter acknowledged"
    );
}

#[tokio::test(start_paused = true)]
async fn permanent_error_is_dead_lettered_at_once() {
    let q = memory_queue(1_000);
    enqueue_all(&q, (1..=5).map(|i| batch(i, 1))).await;
    let sink = ScriptedSink::new(Duration::ZERO, |_, group| {
        if group.iter().any(|b| b.id.as_u128() == 3) {
            Err(SinkError::permanent(
                "duplicate key violates unique constraint",
            ))
        } else {
            Ok(())
        }
    });
    let dlq = Arc::new(MemoryDeadLetter::new(10));
    let w = start(
        &q,
        &sink,
        &dlq,
        WorkerConfig {
            group_max_batches: 1,
            ..config()
        },
    );
    until(Duration::from_secs(5), || sink.committed().len() == 4).await;
    let report = w.stop().await;
    let dead = dlq.entries();
    assert_eq!(dead.len(), 1);
    assert_eq!(
        (
            dead[0].batch().expect("a batch").id.as_u128(),
            dead[0].reason,
            dead[0].attempts
        ),
        (3, DeadLetterReason::Permanent, 1)
    );
    assert_eq!(report.retries, 0);
    assert_eq!(
        sink.calls.load(Ordering::SeqCst),
        5,
        "one write per batch, no retry"
    );
}

#[tokio::test(start_paused = true)]
async fn nothing_is_acknowledged_that_was_not_written() {
    let q = memory_queue(10_000);
    enqueue_all(&q, (1..=40).map(|i| batch(i, 1))).await;
    // Commits its first 6 calls, then the database goes away for good.
    let sink = ScriptedSink::new(Duration::from_millis(1), |n, _| {
        if n <= 6 {
            Ok(())
        } else {
            Err(SinkError::retryable("server closed the connection"))
        }
    });
    let dlq = Arc::new(MemoryDeadLetter::new(10));
    let w = start(
        &q,
        &sink,
        &dlq,
        WorkerConfig {
            group_max_batches: 4,
            max_attempts: 1_000,
            drain_timeout: Duration::from_secs(1),
            ..config()
        },
    );
    tokio::time::sleep(Duration::from_secs(60)).await;
    let report = w.stop().await;
    let committed: HashSet<u128> = sink.committed().into_iter().collect();
    assert_eq!(committed.len(), 24, "6 groups of 4");
    let s = q.stats().await.unwrap();
    assert_eq!(report.acknowledged as usize, committed.len());
    assert_eq!(
        s.batches as usize,
        40 - committed.len(),
        "everything else is still queued"
    );
    assert_eq!(
        s.in_flight, 0,
        "in-flight deliveries were given back at shutdown"
    );
    let rest: HashSet<u128> = q
        .dequeue(100, Duration::ZERO)
        .await
        .unwrap()
        .iter()
        .map(|d| d.batch.id.as_u128())
        .collect();
    assert!(rest.is_disjoint(&committed));
    assert_eq!(rest.len() + committed.len(), 40);
    assert!(dlq.entries().is_empty());
}

#[tokio::test(start_paused = true)]
async fn shutdown_finishes_the_group_in_hand_and_takes_nothing_new() {
    let q = memory_queue(10_000);
    enqueue_all(&q, (1..=20).map(|i| batch(i, 1))).await;
    let sink = ScriptedSink::new(Duration::from_millis(500), |_, _| Ok(()));
    let dlq = Arc::new(MemoryDeadLetter::new(10));
    let w = start(
        &q,
        &sink,
        &dlq,
        WorkerConfig {
            group_max_batches: 5,
            ..config()
        },
    );
    tokio::time::sleep(Duration::from_millis(200)).await; // mid-write of group 1
    let t = Instant::now();
    let report = w.stop().await;
    assert_eq!(
        t.elapsed(),
        Duration::from_millis(300),
        "the write in flight finished"
    );
    assert_eq!(sink.committed(), [1, 2, 3, 4, 5]);
    assert_eq!(report.acknowledged, 5);
    let s = q.stats().await.unwrap();
    assert_eq!((s.batches, s.in_flight), (15, 0));
}

#[tokio::test(start_paused = true)]
async fn shutdown_gives_back_what_cannot_finish_by_the_deadline() {
    let q = memory_queue(10_000);
    enqueue_all(&q, (1..=3).map(|i| batch(i, 1))).await;
    let sink = ScriptedSink::new(Duration::ZERO, |_, _| {
        Err(SinkError::retryable("database is starting up"))
    });
    let dlq = Arc::new(MemoryDeadLetter::new(10));
    let w = start(
        &q,
        &sink,
        &dlq,
        WorkerConfig {
            max_attempts: 100,
            backoff: Backoff {
                initial: Duration::from_secs(1),
                max: Duration::from_secs(4),
                multiplier: 2.0,
            },
            drain_timeout: Duration::from_secs(3),
            ..config()
        },
    );
    tokio::time::sleep(Duration::from_secs(2)).await;
    let t = Instant::now();
    let report = w.stop().await;
    assert!(
        t.elapsed() <= Duration::from_secs(3),
        "stopped within the drain timeout: {:?}",
        t.elapsed()
    );
    assert_eq!(report.acknowledged, 0);
    assert_eq!(report.nacked, 3);
    let s = q.stats().await.unwrap();
    assert_eq!(
        (s.batches, s.in_flight),
        (3, 0),
        "all three can be redelivered at once"
    );
    assert!(dlq.entries().is_empty());
}

#[tokio::test(start_paused = true)]
async fn a_batch_redelivered_too_often_is_dead_lettered_untried() {
    let q = Arc::new(MemoryQueue::new(MemoryQueueConfig {
        visibility_timeout: Duration::from_secs(1),
        ..MemoryQueueConfig::default()
    }));
    enqueue_all(&q, [batch(1, 1)]).await;
    // Three workers "crash" holding it.
    for _ in 0..3 {
        assert_eq!(q.dequeue(1, Duration::from_secs(5)).await.unwrap().len(), 1);
    }
    let sink = ScriptedSink::new(Duration::ZERO, |_, _| Ok(()));
    let dlq = Arc::new(MemoryDeadLetter::new(10));
    let w = start(
        &q,
        &sink,
        &dlq,
        WorkerConfig {
            max_deliveries: 3,
            ..config()
        },
    );
    until(Duration::from_secs(5), || dlq.entries().len() == 1).await;
    w.stop().await;
    let d = &dlq.entries()[0];
    assert_eq!(
        (d.reason, d.deliveries, d.attempts),
        (DeadLetterReason::TooManyDeliveries, 4, 0)
    );
    assert_eq!(sink.calls.load(Ordering::SeqCst), 0);
}

#[tokio::test(start_paused = true)]
async fn a_failing_dead_letter_store_leaves_the_batch_queued() {
    let q = memory_queue(1_000);
    enqueue_all(&q, [batch(1, 1)]).await;
    let sink = ScriptedSink::new(Duration::ZERO, |_, _| Err(SinkError::permanent("bad row")));
    let full_dlq = Arc::new(MemoryDeadLetter::new(0));
    let w = start(&q, &sink, &full_dlq, config());
    tokio::time::sleep(Duration::from_millis(50)).await;
    let report = w.stop().await;
    assert_eq!((report.dead_lettered, report.acknowledged), (0, 0));
    assert!(report.nacked >= 1);
    assert_eq!(
        q.stats().await.unwrap().batches,
        1,
        "still queued, not lost"
    );
}

#[tokio::test(start_paused = true)]
async fn transforms_run_before_the_sink_and_empty_batches_are_just_acknowledged() {
    let q = memory_queue(1_000);
    let mut keep = batch(1, 2);
    keep.logs[1].severity = Some(Severity::Error);
    enqueue_all(&q, [keep, batch(2, 3)]).await;
    let configs: Vec<TransformConfig> = toml::from_str::<toml::Table>(
        r#"t = [{ type = "filter", severity_at_least = "warning" }]"#,
    )
    .unwrap()["t"]
        .clone()
        .try_into()
        .unwrap();
    let chain =
        TransformChain::build("transforms", &configs, &BuildContext::from_system()).unwrap();
    let seen = Arc::new(Mutex::new(Vec::new()));
    let seen2 = seen.clone();
    let sink = ScriptedSink::new(Duration::ZERO, move |_, group| {
        seen2
            .lock()
            .unwrap()
            .extend(group.iter().map(|b| (b.id.as_u128(), b.logs.len())));
        Ok(())
    });
    let dlq = Arc::new(MemoryDeadLetter::new(10));
    let (trigger, shutdown) = shutdown_channel();
    let h = Worker::new(q.clone(), sink.clone(), dlq.clone(), config())
        .with_transforms(Arc::new(chain))
        .spawn(shutdown);
    until(Duration::from_secs(5), || !seen.lock().unwrap().is_empty()).await;
    tokio::time::sleep(Duration::from_secs(1)).await;
    trigger.trigger();
    let report = h.await.unwrap();
    assert_eq!(
        *seen.lock().unwrap(),
        [(1, 1)],
        "batch 2 lost every event to the filter"
    );
    assert_eq!(report.acknowledged, 2);
    assert_eq!(q.stats().await.unwrap().batches, 0);
}

/// A memory queue whose first few dequeues and acks fail like a Redis
/// connection that drops.
struct FlakyQueue {
    inner: MemoryQueue,
    dequeue_failures: AtomicU32,
    ack_failures: AtomicU32,
}

fn take_failure(counter: &AtomicU32) -> bool {
    counter
        .fetch_update(Ordering::SeqCst, Ordering::SeqCst, |n| n.checked_sub(1))
        .is_ok()
}

fn lost() -> QueueError {
    QueueError::Backend {
        message: "connection reset by peer".into(),
        kind: killkrill_core::pipeline::ErrorKind::Retryable,
    }
}

#[async_trait]
impl Queue for FlakyQueue {
    fn name(&self) -> &str {
        "flaky"
    }
    async fn enqueue(&self, batch: Batch, wait: Duration) -> Result<(), QueueError> {
        self.inner.enqueue(batch, wait).await
    }
    async fn dequeue(
        &self,
        max: usize,
        wait: Duration,
    ) -> Result<Vec<killkrill_core::pipeline::Delivery>, QueueError> {
        if take_failure(&self.dequeue_failures) {
            return Err(lost());
        }
        self.inner.dequeue(max, wait).await
    }
    async fn ack(&self, ids: &[killkrill_core::pipeline::DeliveryId]) -> Result<(), QueueError> {
        if take_failure(&self.ack_failures) {
            return Err(lost());
        }
        self.inner.ack(ids).await
    }
    async fn nack(
        &self,
        id: killkrill_core::pipeline::DeliveryId,
        retry_after: Duration,
    ) -> Result<(), QueueError> {
        self.inner.nack(id, retry_after).await
    }
    async fn stats(&self) -> Result<killkrill_core::pipeline::QueueStats, QueueError> {
        self.inner.stats().await
    }
}

#[tokio::test(start_paused = true)]
async fn queue_failures_are_retried_and_nothing_is_lost() {
    let q = Arc::new(FlakyQueue {
        inner: MemoryQueue::default(),
        dequeue_failures: AtomicU32::new(3),
        ack_failures: AtomicU32::new(2),
    });
    for i in 1..=10 {
        q.enqueue(batch(i, 1), Duration::ZERO).await.expect("room");
    }
    let sink = ScriptedSink::new(Duration::ZERO, |_, _| Ok(()));
    let dlq = Arc::new(MemoryDeadLetter::new(10));
    let (trigger, shutdown) = shutdown_channel();
    let h = Worker::new(
        q.clone(),
        sink.clone(),
        dlq,
        WorkerConfig {
            group_max_batches: 4,
            ..config()
        },
    )
    .with_jitter_seed(3)
    .spawn(shutdown);
    until(Duration::from_secs(10), || sink.committed().len() == 10).await;
    tokio::time::sleep(Duration::from_secs(1)).await;
    trigger.trigger();
    let report = h.await.expect("worker");
    assert_eq!(report.acknowledged, 10);
    let mut c = sink.committed();
    c.sort_unstable();
    assert_eq!(
        c,
        (1..=10).collect::<Vec<_>>(),
        "each written once: the failed acks were retried"
    );
    assert_eq!(q.stats().await.expect("stats").batches, 0);
}
