//! Dead letters: where a batch goes when it cannot be written.
//!
//! A batch that keeps failing (a permanent sink error, too many retryable
//! ones, or too many deliveries without an acknowledgement) must neither
//! block the queue forever nor disappear. The worker files the *original*
//! batch (as enqueued, before transforms, so it can be replayed through the
//! pipeline once the cause is fixed) with the last error and the attempt
//! counts, and only then acknowledges it. If filing fails, the delivery is
//! given back to the queue instead: nothing is acknowledged that was not
//! stored somewhere.

use std::collections::VecDeque;
use std::sync::{Arc, Mutex};

use async_trait::async_trait;

use super::{Batch, BatchId};
use crate::event::Timestamp;

/// Why a batch was dead-lettered.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Hash)]
pub enum DeadLetterReason {
    /// The sink said the failure is permanent.
    Permanent,
    /// Retryable failures until the attempt limit.
    RetriesExhausted,
    /// Delivered more often than the limit without an acknowledgement (the
    /// worker crashed or timed out on it each time).
    TooManyDeliveries,
    /// A durable queue could not decode the stored bytes.
    Undecodable,
}

impl DeadLetterEntry {
    /// The batch, unless the payload is undecodable bytes.
    pub fn batch(&self) -> Option<&Arc<Batch>> {
        match &self.payload {
            DeadLetterPayload::Batch(b) => Some(b),
            DeadLetterPayload::Undecodable { .. } => None,
        }
    }
}

impl DeadLetterReason {
    /// The label value used in metrics.
    pub const fn as_str(self) -> &'static str {
        match self {
            DeadLetterReason::Permanent => "permanent",
            DeadLetterReason::RetriesExhausted => "retries_exhausted",
            DeadLetterReason::TooManyDeliveries => "too_many_deliveries",
            DeadLetterReason::Undecodable => "undecodable",
        }
    }
}

/// What a dead letter holds.
#[derive(Debug, Clone)]
pub enum DeadLetterPayload {
    /// The batch as it was enqueued (before transforms), ready for replay.
    Batch(Arc<Batch>),
    /// Bytes a durable queue held that no longer decode as a batch, kept
    /// as they were; `id` is the header's batch id when that much is readable
    /// ([`BatchCodec::peek_id`](super::BatchCodec::peek_id)).
    Undecodable {
        /// The batch id, if the header was readable.
        id: Option<BatchId>,
        /// The stored bytes.
        bytes: Vec<u8>,
    },
}

/// One dead letter.
#[derive(Debug, Clone)]
pub struct DeadLetterEntry {
    /// The batch, or the bytes that did not decode.
    pub payload: DeadLetterPayload,
    /// Why.
    pub reason: DeadLetterReason,
    /// The last error's text.
    pub error: String,
    /// Sink writes tried in the last delivery.
    pub attempts: u32,
    /// Deliveries of the batch, the last included.
    pub deliveries: u32,
    /// When it was filed.
    pub at: Timestamp,
}

/// Filing a dead letter failed.
#[derive(Debug, Clone, PartialEq, Eq, thiserror::Error)]
pub enum DeadLetterError {
    /// The store is full.
    #[error("dead-letter store full ({capacity} entries)")]
    Full {
        /// Its capacity.
        capacity: usize,
    },
    /// The backend failed.
    #[error("dead-letter store: {0}")]
    Backend(String),
}

/// Where dead letters are filed.
#[async_trait]
pub trait DeadLetter: Send + Sync {
    /// Files an entry durably.
    ///
    /// # Errors
    /// [`DeadLetterError`]; the worker then gives the delivery back to the
    /// queue rather than acknowledging it.
    async fn store(&self, entry: DeadLetterEntry) -> Result<(), DeadLetterError>;
}

/// A bounded in-memory dead-letter store, for embedded pipelines without a
/// database and for tests. When full it refuses (the batches then stay in
/// the queue) instead of forgetting old entries.
#[derive(Debug)]
pub struct MemoryDeadLetter {
    capacity: usize,
    entries: Mutex<VecDeque<DeadLetterEntry>>,
}

impl MemoryDeadLetter {
    /// A store for at most `capacity` entries.
    pub fn new(capacity: usize) -> Self {
        MemoryDeadLetter {
            capacity,
            entries: Mutex::new(VecDeque::new()),
        }
    }

    /// A copy of the entries, oldest first.
    pub fn entries(&self) -> Vec<DeadLetterEntry> {
        self.lock().iter().cloned().collect()
    }

    /// Removes and returns every entry (for replay).
    pub fn take(&self) -> Vec<DeadLetterEntry> {
        self.lock().drain(..).collect()
    }

    fn lock(&self) -> std::sync::MutexGuard<'_, VecDeque<DeadLetterEntry>> {
        // A panic while holding this lock cannot leave the deque invalid.
        self.entries.lock().unwrap_or_else(|p| p.into_inner())
    }
}

#[async_trait]
impl DeadLetter for MemoryDeadLetter {
    async fn store(&self, entry: DeadLetterEntry) -> Result<(), DeadLetterError> {
        let mut e = self.lock();
        if e.len() >= self.capacity {
            return Err(DeadLetterError::Full {
                capacity: self.capacity,
            });
        }
        e.push_back(entry);
        Ok(())
    }
}
