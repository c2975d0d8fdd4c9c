//! A wrapper that counts the receiver side of any [`Queue`]: enqueues and
//! rejections.
//!
//! Counting in one wrapper rather than in each implementation keeps the
//! counters identical for the memory, SQLite and Redis queues, and keeps the
//! implementations about storage only. The worker side (dequeued,
//! acknowledged, retried, dead-lettered) is counted by the
//! [`Worker`](super::Worker), which sees the outcomes.

use std::time::Duration;

use async_trait::async_trait;
use metrics::counter;

use super::self_metrics as m;
use super::{Batch, Delivery, DeliveryId, Queue, QueueError, QueueStats};

/// Counts enqueues and rejections of the queue it wraps.
pub struct MeteredQueue<Q> {
    inner: Q,
}

impl<Q: Queue> MeteredQueue<Q> {
    /// Wraps `inner`.
    pub fn new(inner: Q) -> Self {
        MeteredQueue { inner }
    }

    /// The wrapped queue.
    pub fn inner(&self) -> &Q {
        &self.inner
    }
}

fn reject_reason(e: &QueueError) -> &'static str {
    match e {
        QueueError::Full { .. } => "full",
        QueueError::TooLarge { .. } => "too_large",
        QueueError::Closed => "closed",
        QueueError::Backend { .. } => "backend",
    }
}

#[async_trait]
impl<Q: Queue> Queue for MeteredQueue<Q> {
    fn name(&self) -> &str {
        self.inner.name()
    }

    async fn enqueue(&self, batch: Batch, wait: Duration) -> Result<(), QueueError> {
        let events = batch.len() as u64;
        let q = self.inner.name().to_owned();
        match self.inner.enqueue(batch, wait).await {
            Ok(()) => {
                counter!(m::ENQUEUED_BATCHES, "queue" => q.clone()).increment(1);
                counter!(m::ENQUEUED_EVENTS, "queue" => q).increment(events);
                Ok(())
            }
            Err(e) => {
                counter!(m::ENQUEUE_REJECTED, "queue" => q, "reason" => reject_reason(&e))
                    .increment(1);
                Err(e)
            }
        }
    }

    async fn dequeue(&self, max: usize, wait: Duration) -> Result<Vec<Delivery>, QueueError> {
        self.inner.dequeue(max, wait).await
    }

    async fn ack(&self, ids: &[DeliveryId]) -> Result<(), QueueError> {
        self.inner.ack(ids).await
    }

    async fn nack(&self, id: DeliveryId, retry_after: Duration) -> Result<(), QueueError> {
        self.inner.nack(id, retry_after).await
    }

    async fn stats(&self) -> Result<QueueStats, QueueError> {
        self.inner.stats().await
    }
}
