//! The worker: dequeue, transform, write, acknowledge.
//!
//! One worker is one sequential loop; run several for parallelism (they share
//! the queue, the sink and the dead-letter store). Its rules, in the order a
//! delivery meets them:
//!
//! 1. **Grouping.** The worker takes deliveries until the group holds
//!    `group_max_events` events, `group_max_logs` log records,
//!    `group_max_bytes` bytes (estimated) or `group_max_batches` batches,
//!    or `linger` has passed since the first one arrived, and writes the
//!    group in one sink call. Batches are grouped whole, never merged or
//!    split, so their ids stay valid idempotency keys however the groups
//!    fall.
//! 2. **Transforms** run once per delivery on a copy of the batch; the queue
//!    keeps the original for redelivery and dead-lettering.
//! 3. **Acknowledge after commit.** A delivery is acknowledged only after the
//!    sink returned `Ok` for it (or it was filed as a dead letter).
//! 4. **Retries.** When a group write fails, each batch is written on its own,
//!    so one bad batch cannot hold the others back. A retryable error is
//!    retried after an exponential, fully jittered backoff, up to
//!    `max_attempts` writes; then, or at once for a permanent error, the
//!    original batch goes to the dead-letter store with the error, and is then
//!    acknowledged. A batch delivered more than `max_deliveries` times (its
//!    workers kept dying on it) is dead-lettered without another try.
//! 5. **Backpressure.** While it retries, the worker takes nothing new; the
//!    queue fills up and receivers get [`QueueError::Full`](super::QueueError::Full).
//!    Every buffer is the queue or the group, both bounded.
//! 6. **Shutdown.** Once the signal fires, the worker dequeues nothing more,
//!    finishes and acknowledges the group in hand, and keeps retrying until
//!    `drain_timeout`; a delivery that cannot finish by then is given back to
//!    the queue (`nack`), never dropped. A dequeue in progress is not cut
//!    short, so the signal is noticed within `poll_wait`.

use std::sync::Arc;
use std::time::Duration;

use metrics::{counter, histogram};
use tokio::time::Instant;

use super::self_metrics as m;
use super::{
    Backoff, Batch, DeadLetter, DeadLetterEntry, DeadLetterPayload, DeadLetterReason, Delivery,
    DeliveryId, ErrorKind, Jitter, Queue, Shutdown, Sink, SinkError,
};
use crate::event::Timestamp;
use crate::transform::TransformChain;

/// Settings of a [`Worker`].
#[derive(Debug, Clone)]
pub struct WorkerConfig {
    /// Most batches asked for in one dequeue.
    pub dequeue_max: usize,
    /// A group is written once it holds this many events...
    pub group_max_events: usize,
    /// ...or this many batches...
    pub group_max_batches: usize,
    /// ...or this many log records (a log group gains nothing past some
    /// tens of thousands: each batch is cut into blocks of its own, while
    /// more samples per series make fewer metric rows per sample)...
    pub group_max_logs: usize,
    /// ...or this many bytes of batches ([`Batch::resident_bytes`]): what
    /// bounds a group's memory whatever its events weigh...
    pub group_max_bytes: usize,
    /// ...or this long after its first batch arrived.
    pub linger: Duration,
    /// Longest dequeue wait when idle; bounds how late shutdown is noticed.
    pub poll_wait: Duration,
    /// Sink writes of one delivery before it is dead-lettered.
    pub max_attempts: u32,
    /// Deliveries of one batch before it is dead-lettered untried.
    pub max_deliveries: u32,
    /// Delay between retries.
    pub backoff: Backoff,
    /// How long shutdown may take to finish the deliveries in hand.
    pub drain_timeout: Duration,
    /// How often queue depth and age gauges are published.
    pub stats_interval: Duration,
}

impl Default for WorkerConfig {
    fn default() -> Self {
        WorkerConfig {
            dequeue_max: 64,
            group_max_events: 10_000,
            group_max_batches: 64,
            group_max_logs: 10_000,
            group_max_bytes: 32 << 20,
            linger: Duration::from_millis(100),
            poll_wait: Duration::from_millis(500),
            max_attempts: 10,
            max_deliveries: 20,
            backoff: Backoff::default(),
            drain_timeout: Duration::from_secs(30),
            stats_interval: Duration::from_secs(5),
        }
    }
}

/// What a worker did, returned when it stops.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Default)]
pub struct WorkerReport {
    /// Deliveries acknowledged after their sink committed.
    pub acknowledged: u64,
    /// Deliveries filed as dead letters (and acknowledged).
    pub dead_lettered: u64,
    /// Deliveries given back to the queue (shutdown, dead-letter failures).
    pub nacked: u64,
    /// Sink writes that failed.
    pub sink_errors: u64,
    /// Retries after retryable errors.
    pub retries: u64,
}

struct Pending {
    delivery: Delivery,
    out: Arc<Batch>,
}

/// One worker loop. Build it, then [`run`](Self::run) or [`spawn`](Self::spawn) it.
pub struct Worker {
    queue: Arc<dyn Queue>,
    sink: Arc<dyn Sink>,
    dead_letter: Arc<dyn DeadLetter>,
    transforms: Arc<TransformChain>,
    config: WorkerConfig,
    rng: Jitter,
    report: WorkerReport,
    drain_deadline: Option<Instant>,
    next_stats: Instant,
    /// Consecutive failed dequeues, for the backoff between them.
    dequeue_failures: u32,
}

impl Worker {
    /// A worker with no transforms.
    pub fn new(
        queue: Arc<dyn Queue>,
        sink: Arc<dyn Sink>,
        dead_letter: Arc<dyn DeadLetter>,
        config: WorkerConfig,
    ) -> Self {
        Worker {
            queue,
            sink,
            dead_letter,
            transforms: Arc::new(TransformChain::default()),
            config,
            rng: Jitter::from_entropy(),
            report: WorkerReport::default(),
            drain_deadline: None,
            next_stats: Instant::now(),
            dequeue_failures: 0,
        }
    }

    /// Runs `transforms` on every batch before it is written.
    pub fn with_transforms(mut self, transforms: Arc<TransformChain>) -> Self {
        self.transforms = transforms;
        self
    }

    /// Seeds the retry jitter (deterministic tests).
    pub fn with_jitter_seed(mut self, seed: u64) -> Self {
        self.rng = Jitter::seeded(seed);
        self
    }

    /// Runs the loop on the current runtime.
    pub fn spawn(self, shutdown: Shutdown) -> tokio::task::JoinHandle<WorkerReport> {
        tokio::spawn(self.run(shutdown))
    }

    /// Runs until `shutdown` fires and the deliveries in hand are finished or
    /// given back.
    pub async fn run(mut self, shutdown: Shutdown) -> WorkerReport {
        while !shutdown.is_requested() {
            self.publish_stats().await;
            let group = self.fill_group(&shutdown).await;
            if !group.is_empty() {
                self.process(group, &shutdown).await;
            }
        }
        self.publish_stats().await;
        self.report
    }

    async fn publish_stats(&mut self) {
        let now = Instant::now();
        if now < self.next_stats {
            return;
        }
        self.next_stats = now + self.config.stats_interval;
        match self.queue.stats().await {
            Ok(s) => m::queue_stats(self.queue.name(), &s),
            Err(e) => self.queue_error("stats", &e),
        }
    }

    fn group_closed(&self, closed_by: &'static str) {
        counter!(m::GROUPS, "queue" => self.queue.name().to_owned(), "closed_by" => closed_by)
            .increment(1);
    }

    fn queue_error(&self, op: &'static str, e: &super::QueueError) {
        counter!(m::QUEUE_ERRORS, "queue" => self.queue.name().to_owned(), "op" => op).increment(1);
        tracing::warn!(queue = self.queue.name(), op, error = %e, "queue operation failed");
    }

    async fn fill_group(&mut self, shutdown: &Shutdown) -> Vec<Delivery> {
        let mut group: Vec<Delivery> = Vec::new();
        let mut events = 0usize;
        let mut logs = 0usize;
        let mut bytes = 0usize;
        let mut linger_until: Option<Instant> = None;
        loop {
            let room = self.config.group_max_batches.saturating_sub(group.len());
            let wait = match linger_until {
                None => self.config.poll_wait,
                Some(t) => t.saturating_duration_since(Instant::now()),
            };
            match self
                .queue
                .dequeue(room.min(self.config.dequeue_max).max(1), wait)
                .await
            {
                Ok(ds) => {
                    self.dequeue_failures = 0;
                    if !ds.is_empty() {
                        let q = self.queue.name().to_owned();
                        counter!(m::DEQUEUED_BATCHES, "queue" => q.clone())
                            .increment(ds.len() as u64);
                        let re = ds.iter().filter(|d| d.attempts > 1).count() as u64;
                        if re > 0 {
                            counter!(m::REDELIVERED_BATCHES, "queue" => q).increment(re);
                        }
                    }
                    for d in ds {
                        events += d.batch.len();
                        logs += d.batch.logs.len();
                        bytes = bytes.saturating_add(d.batch.resident_bytes());
                        group.push(d);
                    }
                }
                Err(e) => {
                    // Write what we have; when idle, back off before asking
                    // a failing queue again.
                    self.queue_error("dequeue", &e);
                    if !group.is_empty() {
                        self.group_closed("queue_error");
                    } else {
                        self.dequeue_failures += 1;
                        let delay = self
                            .config
                            .backoff
                            .delay(self.dequeue_failures, &mut self.rng);
                        tokio::time::sleep(delay).await;
                    }
                    return group;
                }
            }
            if group.is_empty() {
                return group; // idle: let the caller look at the shutdown flag
            }
            let until = *linger_until.get_or_insert_with(|| Instant::now() + self.config.linger);
            let closed_by = if events >= self.config.group_max_events {
                "events"
            } else if logs >= self.config.group_max_logs {
                "logs"
            } else if bytes >= self.config.group_max_bytes {
                "bytes"
            } else if group.len() >= self.config.group_max_batches {
                "batches"
            } else if Instant::now() >= until {
                "linger"
            } else if shutdown.is_requested() {
                "shutdown"
            } else {
                continue;
            };
            self.group_closed(closed_by);
            return group;
        }
    }

    async fn process(&mut self, group: Vec<Delivery>, shutdown: &Shutdown) {
        let mut pending = Vec::with_capacity(group.len());
        let mut nothing_left = Vec::new();
        for d in group {
            if d.attempts > self.config.max_deliveries {
                let why = format!(
                    "delivered {} times without an acknowledgement (limit {})",
                    d.attempts, self.config.max_deliveries
                );
                self.dead_letter(d, DeadLetterReason::TooManyDeliveries, why, 0)
                    .await;
                continue;
            }
            let out = if self.transforms.is_empty() {
                Arc::clone(&d.batch)
            } else {
                let mut b = Batch::clone(&d.batch);
                self.transforms.apply(&mut b);
                Arc::new(b)
            };
            let p = Pending { delivery: d, out };
            if p.out.is_empty() {
                nothing_left.push(p); // every event dropped (and counted) by transforms
            } else {
                pending.push(p);
            }
        }
        if !nothing_left.is_empty() {
            self.ack(&nothing_left).await;
        }
        if pending.is_empty() {
            return;
        }
        let outs: Vec<Arc<Batch>> = pending.iter().map(|p| Arc::clone(&p.out)).collect();
        let err = match self.write(&outs).await {
            Ok(()) => {
                self.ack(&pending).await;
                return;
            }
            Err(e) => e,
        };
        if pending.len() == 1 {
            if let Some(p) = pending.pop() {
                self.retry_one(p, err, 1, shutdown).await;
            }
            return;
        }
        // Which batch failed is unknown: write each alone, so a poison batch
        // is isolated and the others go through. A retryable group failure
        // (database down) waits once first instead of hammering it n times.
        if err.kind() == ErrorKind::Retryable {
            self.count_retry();
            let delay = self.config.backoff.delay(1, &mut self.rng);
            if !self.sleep_within_drain(delay, shutdown).await {
                for p in pending {
                    self.nack(p.delivery).await;
                }
                return;
            }
        }
        for p in pending {
            match self.write(std::slice::from_ref(&p.out)).await {
                Ok(()) => self.ack(std::slice::from_ref(&p)).await,
                Err(e) => self.retry_one(p, e, 2, shutdown).await,
            }
        }
    }

    /// Retries one batch whose last write (write number `attempts`) failed
    /// with `err`, until it is written, dead-lettered or given back.
    async fn retry_one(
        &mut self,
        p: Pending,
        mut err: SinkError,
        mut attempts: u32,
        shutdown: &Shutdown,
    ) {
        loop {
            if err.kind() == ErrorKind::Permanent {
                let msg = err.to_string();
                self.dead_letter(p.delivery, DeadLetterReason::Permanent, msg, attempts)
                    .await;
                return;
            }
            if attempts >= self.config.max_attempts {
                let msg = err.to_string();
                self.dead_letter(
                    p.delivery,
                    DeadLetterReason::RetriesExhausted,
                    msg,
                    attempts,
                )
                .await;
                return;
            }
            let delay = self.config.backoff.delay(attempts, &mut self.rng);
            self.count_retry();
            if !self.sleep_within_drain(delay, shutdown).await {
                self.nack(p.delivery).await;
                return;
            }
            attempts += 1;
            match self.write(std::slice::from_ref(&p.out)).await {
                Ok(()) => {
                    self.ack(std::slice::from_ref(&p)).await;
                    return;
                }
                Err(e) => err = e,
            }
        }
    }

    fn count_retry(&mut self) {
        self.report.retries += 1;
        counter!(m::RETRIES, "sink" => self.sink.name().to_owned()).increment(1);
    }

    /// Sleeps `delay`, unless shutdown is (or becomes) requested and the
    /// sleep would end after the drain deadline: then returns `false` at
    /// once so the caller gives its delivery back.
    async fn sleep_within_drain(&mut self, delay: Duration, shutdown: &Shutdown) -> bool {
        let wake = Instant::now() + delay;
        let mut sd = shutdown.clone();
        if !sd.is_requested() {
            tokio::select! {
                () = tokio::time::sleep_until(wake) => return true,
                () = sd.requested() => {}
            }
        }
        let deadline = *self
            .drain_deadline
            .get_or_insert_with(|| Instant::now() + self.config.drain_timeout);
        if wake > deadline {
            return false;
        }
        tokio::time::sleep_until(wake).await;
        true
    }

    async fn write(&mut self, batches: &[Arc<Batch>]) -> Result<(), SinkError> {
        let name = self.sink.name().to_owned();
        let start = Instant::now();
        let r = self.sink.write(batches).await;
        histogram!(m::SINK_WRITE_SECONDS, "sink" => name.clone())
            .record(start.elapsed().as_secs_f64());
        counter!(m::SINK_WRITES, "sink" => name.clone()).increment(1);
        if let Err(e) = &r {
            self.report.sink_errors += 1;
            let kind = match e.kind() {
                ErrorKind::Retryable => "retryable",
                ErrorKind::Permanent => "permanent",
            };
            counter!(m::SINK_ERRORS, "sink" => name.clone(), "kind" => kind).increment(1);
            tracing::warn!(sink = %name, kind, batches = batches.len(), error = %e, "sink write failed");
        }
        r
    }

    async fn ack(&mut self, done: &[Pending]) {
        let ids: Vec<DeliveryId> = done.iter().map(|p| p.delivery.id).collect();
        self.ack_ids(&ids).await;
        let events: usize = done.iter().map(|p| p.delivery.batch.len()).sum();
        let q = self.queue.name().to_owned();
        counter!(m::ACKED_BATCHES, "queue" => q.clone()).increment(done.len() as u64);
        counter!(m::ACKED_EVENTS, "queue" => q).increment(events as u64);
        self.report.acknowledged += done.len() as u64;
        let now = Timestamp::now().as_nanos();
        for p in done {
            let ns = now.saturating_sub(p.delivery.batch.received.as_nanos());
            if ns >= 0 {
                m::batch_latency(Duration::from_nanos(ns as u64));
            }
        }
    }

    /// Acknowledges, retrying a failing queue a few times. If it still
    /// fails the deliveries come back after the visibility timeout and are
    /// written again, which idempotent sinks absorb; the failure is counted.
    async fn ack_ids(&mut self, ids: &[DeliveryId]) {
        for attempt in 1..=3 {
            match self.queue.ack(ids).await {
                Ok(()) => return,
                Err(e) => {
                    self.queue_error("ack", &e);
                    let delay = self.config.backoff.delay(attempt, &mut self.rng);
                    tokio::time::sleep(delay).await;
                }
            }
        }
    }

    async fn nack(&mut self, d: Delivery) {
        self.report.nacked += 1;
        if self.drain_deadline.is_some() {
            counter!(m::NACKED_ON_SHUTDOWN).increment(1);
        }
        if let Err(e) = self.queue.nack(d.id, Duration::ZERO).await {
            self.queue_error("nack", &e);
        }
    }

    async fn dead_letter(
        &mut self,
        d: Delivery,
        reason: DeadLetterReason,
        error: String,
        attempts: u32,
    ) {
        let events = d.batch.len();
        tracing::warn!(
            batch = %d.batch.id, reason = reason.as_str(), attempts,
            deliveries = d.attempts, error = %error, "dead-lettering batch"
        );
        let entry = DeadLetterEntry {
            payload: DeadLetterPayload::Batch(Arc::clone(&d.batch)),
            reason,
            error,
            attempts,
            deliveries: d.attempts,
            at: Timestamp::now(),
        };
        match self.dead_letter.store(entry).await {
            Ok(()) => {
                self.ack_ids(&[d.id]).await;
                self.report.dead_lettered += 1;
                counter!(m::DEAD_LETTERED_BATCHES, "reason" => reason.as_str()).increment(1);
                counter!(m::DEAD_LETTERED_EVENTS, "reason" => reason.as_str())
                    .increment(events as u64);
            }
            Err(e) => {
                counter!(m::DEAD_LETTER_ERRORS, "reason" => reason.as_str()).increment(1);
                tracing::error!(batch = %d.batch.id, error = %e, "dead-letter store failed; giving the batch back");
                self.report.nacked += 1;
                let later = self.config.backoff.cap(attempts.max(1));
                if let Err(e) = self.queue.nack(d.id, later).await {
                    self.queue_error("nack", &e);
                }
            }
        }
    }
}
