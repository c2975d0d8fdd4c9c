//! Durable queues: core's [`Queue`](killkrill_core::pipeline::Queue) on a
//! SQLite file of its own and on Redis Streams.
//!
//! Both follow the in-memory queue's contract exactly (the shared contract
//! suite in `tests/queue_contract.rs` runs the same cases on all three):
//! `enqueue` returns only once the batch is durable by the queue's
//! definition, a delivery stays owned by the queue until acknowledged, an
//! unacknowledged delivery comes back after the visibility timeout with
//! `attempts` one higher (counted in the store, so the count survives a
//! restart and the worker's dead-letter rule still fires), `nack` gives one
//! back after a delay, and a full queue makes `enqueue` wait, then answer
//! [`QueueError::Full`].
//!
//! Why two durable queues: [`SqliteQueue`] is the embedded default (one
//! process, no server, survives a crash of that process); the
//! [`RedisStreamsQueue`] is for scale-out, where many receivers and many
//! workers share one queue.
//!
//! Both store [`BatchCodec`] bytes.
//! Stored bytes that no longer decode never block a queue: they go to the
//! configured dead-letter store, or, without one (or when filing fails), to
//! a quarantine next to the queue (a table, or a second stream), and are
//! counted in `killkrill_queue_undecodable_total`.
//!
//! [`config`] selects one of the three from a typed configuration.

pub mod config;
pub mod groups;
pub mod redis;
pub mod sqlite;

use std::sync::Arc;

use killkrill_core::event::Timestamp;
use killkrill_core::pipeline::{
    BatchCodec, DeadLetter, DeadLetterEntry, DeadLetterPayload, DeadLetterReason, ErrorKind,
    QueueError,
};

pub use self::config::{QueueConfig, QueueConfigError, build_queue};
pub use self::groups::TenantGroupQueue;
pub use self::redis::{RedisQueueOptions, RedisStreamsQueue};
pub use self::sqlite::{SqliteQueue, SqliteQueueOptions};

/// Entries whose stored bytes did not decode (`queue`).
pub const UNDECODABLE: &str = "killkrill_queue_undecodable_total";

fn backend(message: impl Into<String>, kind: ErrorKind) -> QueueError {
    QueueError::Backend {
        message: message.into(),
        kind,
    }
}

/// Files undecodable bytes in the dead-letter store, when there is one.
/// Returns whether they were filed (the caller quarantines them otherwise).
async fn file_undecodable(
    queue: &'static str,
    dead_letter: Option<&Arc<dyn DeadLetter>>,
    bytes: &[u8],
    error: &(dyn std::fmt::Display + Sync),
    deliveries: u32,
) -> bool {
    metrics::counter!(UNDECODABLE, "queue" => queue).increment(1);
    tracing::error!(queue, error = %error, len = bytes.len(), "stored batch does not decode");
    let Some(dl) = dead_letter else {
        return false;
    };
    let entry = DeadLetterEntry {
        payload: DeadLetterPayload::Undecodable {
            id: BatchCodec::peek_id(bytes).ok(),
            bytes: bytes.to_vec(),
        },
        reason: DeadLetterReason::Undecodable,
        error: error.to_string(),
        attempts: 0,
        deliveries,
        at: Timestamp::now(),
    };
    match dl.store(entry).await {
        Ok(()) => true,
        Err(e) => {
            tracing::warn!(queue, error = %e, "filing an undecodable batch failed; quarantined instead");
            false
        }
    }
}
