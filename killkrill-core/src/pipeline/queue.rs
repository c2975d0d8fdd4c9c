//! The `Queue` trait: what sits between receivers and workers.
//!
//! Delivery is at-least-once. A receiver's [`Queue::enqueue`] returns `Ok`
//! only when the batch is durable by that queue's definition (in memory for
//! [`MemoryQueue`](super::MemoryQueue), fsynced or committed for the SQLite
//! queue, acknowledged by the server for Redis Streams), so a receiver may
//! then answer its client with success. A worker takes [`Delivery`]s, and a
//! delivery stays owned by the queue until it is acknowledged: if the worker
//! dies or takes longer than the queue's visibility timeout, the batch is
//! delivered again with `attempts` one higher. Because batches carry their
//! [`BatchId`](super::BatchId), a second delivery writes the same rows, not
//! new ones.
//!
//! Backpressure is a value, not a side effect: a full queue answers
//! [`QueueError::Full`] (after waiting at most the caller's `wait`), which a
//! TCP listener turns into not reading its socket and an HTTP endpoint into
//! `429 Too Many Requests`.
//!
//! # Implementing a queue
//!
//! Durable queues (in `killkrill-store`) store [`BatchCodec`](super::BatchCodec)
//! bytes and decode them on dequeue. An entry whose bytes no longer decode
//! must not block the queue: move it to the dead-letter store with the codec
//! error and count it. The shared behaviour is specified by the tests of
//! [`MemoryQueue`](super::MemoryQueue), which durable queues should mirror.

use std::sync::Arc;
use std::time::Duration;

use async_trait::async_trait;

use super::{Batch, ErrorKind};

/// Identifies one entry of a queue while it is in flight: a memory or SQLite
/// sequence number, or a Redis stream entry id (`ms-seq` as two 64-bit
/// halves). Opaque to everyone but the queue that issued it.
#[derive(Debug, Clone, Copy, PartialEq, Eq, PartialOrd, Ord, Hash)]
pub struct DeliveryId(u128);

impl DeliveryId {
    /// Wraps the queue's own id.
    pub const fn from_u128(v: u128) -> Self {
        DeliveryId(v)
    }

    /// The queue's own id.
    pub const fn as_u128(self) -> u128 {
        self.0
    }
}

/// One batch handed to a worker.
#[derive(Debug, Clone)]
pub struct Delivery {
    /// Acknowledge or reject with this.
    pub id: DeliveryId,
    /// The batch as it was enqueued. Shared, because an in-memory queue keeps
    /// it for redelivery; a worker that transforms it clones it first.
    pub batch: Arc<Batch>,
    /// How many times this batch has been delivered, this time included
    /// (1 on the first delivery).
    pub attempts: u32,
}

/// Depth and age of a queue, for gauges and `/readyz`.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Default)]
pub struct QueueStats {
    /// Batches held: waiting, delayed after a reject, and in flight.
    pub batches: u64,
    /// Events held, when the queue knows (`None` for queues that only count
    /// entries).
    pub events: Option<u64>,
    /// Bytes held, when the queue knows.
    pub bytes: Option<u64>,
    /// Batches delivered and not yet acknowledged.
    pub in_flight: u64,
    /// Age of the oldest batch not yet acknowledged.
    pub oldest_unacked: Option<Duration>,
}

/// Why a queue operation failed.
#[derive(Debug, Clone, PartialEq, Eq, thiserror::Error)]
pub enum QueueError {
    /// No room within the wait: backpressure. Retryable.
    #[error("queue full: no room for the batch within {waited:?}")]
    Full {
        /// How long the caller waited.
        waited: Duration,
    },
    /// The batch alone is larger than the queue can ever hold. Permanent:
    /// the receiver should answer 413 or split.
    #[error("batch of {size} {unit} is larger than the queue's limit of {limit}")]
    TooLarge {
        /// The batch's size.
        size: u64,
        /// The limit.
        limit: u64,
        /// `events` or `bytes`.
        unit: &'static str,
    },
    /// The queue was closed for shutdown. Permanent.
    #[error("queue closed")]
    Closed,
    /// The backend (database, Redis) failed. The message is for logs, not for
    /// clients.
    #[error("queue backend: {message}")]
    Backend {
        /// What failed.
        message: String,
        /// Whether trying again can succeed (connection lost, busy) or not.
        kind: ErrorKind,
    },
}

impl QueueError {
    /// Retryable or permanent.
    pub fn kind(&self) -> ErrorKind {
        match self {
            QueueError::Full { .. } => ErrorKind::Retryable,
            QueueError::TooLarge { .. } | QueueError::Closed => ErrorKind::Permanent,
            QueueError::Backend { kind, .. } => *kind,
        }
    }
}

/// A bounded, at-least-once queue of batches.
#[async_trait]
pub trait Queue: Send + Sync {
    /// A short name for metric labels and logs (`memory`, `sqlite`, `redis`).
    fn name(&self) -> &str;

    /// Adds a batch, waiting at most `wait` for room. Returns when the batch
    /// is durable by this queue's definition.
    ///
    /// # Errors
    /// [`QueueError::Full`] when there was no room within `wait` (a zero
    /// `wait` fails at once); [`QueueError::TooLarge`], [`QueueError::Closed`]
    /// and [`QueueError::Backend`] as their docs say.
    async fn enqueue(&self, batch: Batch, wait: Duration) -> Result<(), QueueError>;

    /// [`enqueue`](Self::enqueue) without waiting.
    ///
    /// # Errors
    /// As [`enqueue`](Self::enqueue); [`QueueError::Full`] at once when full.
    async fn try_enqueue(&self, batch: Batch) -> Result<(), QueueError> {
        self.enqueue(batch, Duration::ZERO).await
    }

    /// Takes up to `max` batches, waiting at most `wait` for the first one;
    /// an empty vector means none arrived in time. Must not lose a batch if
    /// the returned future is dropped after completing; callers never drop
    /// it before completion (they bound `wait` instead).
    ///
    /// # Errors
    /// [`QueueError::Backend`] when the backend fails.
    async fn dequeue(&self, max: usize, wait: Duration) -> Result<Vec<Delivery>, QueueError>;

    /// Acknowledges deliveries: their batches are committed downstream and
    /// leave the queue. Ids that are no longer in flight are ignored.
    ///
    /// # Errors
    /// [`QueueError::Backend`]; the deliveries are then redelivered later,
    /// which idempotent sinks absorb.
    async fn ack(&self, ids: &[DeliveryId]) -> Result<(), QueueError>;

    /// Gives a delivery back for redelivery after `retry_after` (a worker
    /// shutting down, or one whose dead-letter store is failing).
    ///
    /// # Errors
    /// [`QueueError::Backend`]; the delivery then comes back after the
    /// visibility timeout instead.
    async fn nack(&self, id: DeliveryId, retry_after: Duration) -> Result<(), QueueError>;

    /// Depth and age.
    ///
    /// # Errors
    /// [`QueueError::Backend`] when the backend cannot be asked.
    async fn stats(&self) -> Result<QueueStats, QueueError>;
}
