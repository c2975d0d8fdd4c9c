//! The in-memory queue: bounded, fastest, not durable.
//!
//! It behaves like the durable queues in everything but surviving a restart:
//! deliveries stay owned by the queue until acknowledged, an unacknowledged
//! delivery comes back after the visibility timeout with `attempts` one
//! higher, and `nack` gives one back early. That is deliberate: the worker's
//! at-least-once logic is tested against this queue, so it must not be more
//! forgiving than Redis or SQLite.
//!
//! Memory is bounded by events and by (estimated) bytes, counting everything
//! held — waiting, delayed and in flight — so a slow sink makes `enqueue`
//! wait and then fail with [`QueueError::Full`] instead of growing the heap.
//! Batches are kept as `Arc`s, so a delivery costs no copy.

use std::collections::{BTreeMap, VecDeque};
use std::sync::{Arc, Mutex, MutexGuard};
use std::time::Duration;

use async_trait::async_trait;
use tokio::sync::Notify;
use tokio::time::Instant;

use super::{Batch, Delivery, DeliveryId, Queue, QueueError, QueueStats};

/// Limits of a [`MemoryQueue`].
#[derive(Debug, Clone)]
pub struct MemoryQueueConfig {
    /// Most events held at once.
    pub max_events: usize,
    /// Most estimated bytes held at once ([`Batch::approx_bytes`]).
    pub max_bytes: usize,
    /// A delivery not acknowledged within this is delivered again.
    pub visibility_timeout: Duration,
}

impl Default for MemoryQueueConfig {
    /// 100,000 events, 64 MiB, 60 s.
    fn default() -> Self {
        MemoryQueueConfig {
            max_events: 100_000,
            max_bytes: 64 << 20,
            visibility_timeout: Duration::from_secs(60),
        }
    }
}

struct Entry {
    seq: u64,
    batch: Arc<Batch>,
    events: usize,
    bytes: usize,
    deliveries: u32,
    enqueued: Instant,
}

#[derive(Default)]
struct State {
    ready: VecDeque<Entry>,
    /// Rejected entries waiting for their retry time.
    delayed: Vec<(Instant, Entry)>,
    /// Delivered entries by sequence number, with their visibility deadline.
    in_flight: BTreeMap<u64, (Instant, Entry)>,
    events: usize,
    bytes: usize,
    next_seq: u64,
    closed: bool,
}

impl State {
    /// Moves expired in-flight and due delayed entries back to the front of
    /// the ready list, oldest first.
    fn reclaim(&mut self, now: Instant) {
        let mut back: Vec<Entry> = Vec::new();
        let expired: Vec<u64> = self
            .in_flight
            .iter()
            .filter(|(_, (deadline, _))| *deadline <= now)
            .map(|(seq, _)| *seq)
            .collect();
        for seq in expired {
            if let Some((_, e)) = self.in_flight.remove(&seq) {
                back.push(e);
            }
        }
        let mut i = 0;
        while i < self.delayed.len() {
            if self.delayed[i].0 <= now {
                back.push(self.delayed.swap_remove(i).1);
            } else {
                i += 1;
            }
        }
        back.sort_by_key(|e| std::cmp::Reverse(e.seq));
        for e in back {
            self.ready.push_front(e);
        }
    }

    /// When the next in-flight or delayed entry becomes ready again.
    fn next_wake(&self) -> Option<Instant> {
        let a = self.in_flight.values().map(|(d, _)| *d).min();
        let b = self.delayed.iter().map(|(d, _)| *d).min();
        match (a, b) {
            (Some(a), Some(b)) => Some(a.min(b)),
            (a, b) => a.or(b),
        }
    }
}

/// A bounded in-process queue with ack/nack and redelivery.
pub struct MemoryQueue {
    config: MemoryQueueConfig,
    state: Mutex<State>,
    readable: Notify,
    writable: Notify,
}

impl MemoryQueue {
    /// An empty queue.
    pub fn new(config: MemoryQueueConfig) -> Self {
        MemoryQueue {
            config,
            state: Mutex::new(State::default()),
            readable: Notify::new(),
            writable: Notify::new(),
        }
    }

    fn lock(&self) -> MutexGuard<'_, State> {
        // Every critical section leaves the state consistent before any call
        // that could panic, so a poisoned lock is still usable.
        self.state.lock().unwrap_or_else(|p| p.into_inner())
    }

    /// Refuses new batches from now on and wakes every waiter; what is held
    /// can still be dequeued and acknowledged.
    pub fn close(&self) {
        self.lock().closed = true;
        self.readable.notify_waiters();
        self.writable.notify_waiters();
    }

    fn stats_now(&self) -> QueueStats {
        let s = self.lock();
        let oldest = s
            .ready
            .iter()
            .chain(s.delayed.iter().map(|(_, e)| e))
            .chain(s.in_flight.values().map(|(_, e)| e))
            .map(|e| e.enqueued)
            .min();
        QueueStats {
            batches: (s.ready.len() + s.delayed.len() + s.in_flight.len()) as u64,
            events: Some(s.events as u64),
            bytes: Some(s.bytes as u64),
            in_flight: s.in_flight.len() as u64,
            oldest_unacked: oldest.map(|t| Instant::now().saturating_duration_since(t)),
        }
    }
}

impl Default for MemoryQueue {
    fn default() -> Self {
        Self::new(MemoryQueueConfig::default())
    }
}

#[async_trait]
impl Queue for MemoryQueue {
    fn name(&self) -> &str {
        "memory"
    }

    async fn enqueue(&self, batch: Batch, wait: Duration) -> Result<(), QueueError> {
        let (events, bytes) = (batch.len(), batch.approx_bytes());
        if events > self.config.max_events {
            return Err(QueueError::TooLarge {
                size: events as u64,
                limit: self.config.max_events as u64,
                unit: "events",
            });
        }
        if bytes > self.config.max_bytes {
            return Err(QueueError::TooLarge {
                size: bytes as u64,
                limit: self.config.max_bytes as u64,
                unit: "bytes",
            });
        }
        let start = Instant::now();
        let deadline = start + wait;
        let batch = Arc::new(batch);
        loop {
            let notified = self.writable.notified();
            tokio::pin!(notified);
            notified.as_mut().enable();
            {
                let mut s = self.lock();
                if s.closed {
                    return Err(QueueError::Closed);
                }
                if s.events + events <= self.config.max_events
                    && s.bytes + bytes <= self.config.max_bytes
                {
                    let seq = s.next_seq;
                    s.next_seq += 1;
                    s.events += events;
                    s.bytes += bytes;
                    s.ready.push_back(Entry {
                        seq,
                        batch,
                        events,
                        bytes,
                        deliveries: 0,
                        enqueued: Instant::now(),
                    });
                    drop(s);
                    self.readable.notify_waiters();
                    return Ok(());
                }
            }
            if Instant::now() >= deadline
                || tokio::time::timeout_at(deadline, notified).await.is_err()
            {
                return Err(QueueError::Full {
                    waited: start.elapsed(),
                });
            }
        }
    }

    async fn dequeue(&self, max: usize, wait: Duration) -> Result<Vec<Delivery>, QueueError> {
        let deadline = Instant::now() + wait;
        loop {
            let notified = self.readable.notified();
            tokio::pin!(notified);
            notified.as_mut().enable();
            let wake = {
                let mut s = self.lock();
                let now = Instant::now();
                s.reclaim(now);
                let n = max.min(s.ready.len());
                if n > 0 {
                    let visible_again = now + self.config.visibility_timeout;
                    let mut out = Vec::with_capacity(n);
                    for mut e in s.ready.drain(..n).collect::<Vec<_>>() {
                        e.deliveries += 1;
                        out.push(Delivery {
                            id: DeliveryId::from_u128(u128::from(e.seq)),
                            batch: Arc::clone(&e.batch),
                            attempts: e.deliveries,
                        });
                        s.in_flight.insert(e.seq, (visible_again, e));
                    }
                    return Ok(out);
                }
                if now >= deadline || s.closed && s.next_wake().is_none() {
                    return Ok(Vec::new());
                }
                s.next_wake().map_or(deadline, |w| w.min(deadline))
            };
            // Woken by an enqueue or nack, by a redelivery coming due, or by
            // the deadline; the loop then looks again.
            let _timed_out = tokio::time::timeout_at(wake, notified).await.is_err();
        }
    }

    async fn ack(&self, ids: &[DeliveryId]) -> Result<(), QueueError> {
        let mut freed = false;
        {
            let mut s = self.lock();
            for id in ids {
                let Ok(seq) = u64::try_from(id.as_u128()) else {
                    continue;
                };
                if let Some((_, e)) = s.in_flight.remove(&seq) {
                    s.events -= e.events;
                    s.bytes -= e.bytes;
                    freed = true;
                }
            }
        }
        if freed {
            self.writable.notify_waiters();
        }
        Ok(())
    }

    async fn nack(&self, id: DeliveryId, retry_after: Duration) -> Result<(), QueueError> {
        {
            let mut s = self.lock();
            let Ok(seq) = u64::try_from(id.as_u128()) else {
                return Ok(());
            };
            let Some((_, e)) = s.in_flight.remove(&seq) else {
                return Ok(());
            };
            if retry_after.is_zero() {
                s.ready.push_front(e);
            } else {
                s.delayed.push((Instant::now() + retry_after, e));
            }
        }
        self.readable.notify_waiters();
        Ok(())
    }

    async fn stats(&self) -> Result<QueueStats, QueueError> {
        Ok(self.stats_now())
    }
}

#[cfg(test)]
mod tests;
