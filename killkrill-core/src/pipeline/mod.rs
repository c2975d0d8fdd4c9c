//! The pipeline: batches, queues, sinks, dead letters and the worker that
//! moves batches from one to the other, at least once.
//!
//! ```text
//! receiver ──enqueue──► Queue ──dequeue──► Worker ──transforms──► Sink
//!   (BatchId assigned)   (memory | sqlite | redis)  │  ack after commit
//!                                                   └─► DeadLetter (then ack)
//! ```
//!
//! Why it is shaped like this:
//! - **At least once, idempotent downstream.** A batch is acknowledged only
//!   after its sink committed, so a crash anywhere before that redelivers it.
//!   Redelivery is harmless because the [`BatchId`] assigned at the receiver
//!   is the key the store derives its row ids from. Exactly-once is then a
//!   property of the whole, without distributed transactions.
//! - **Bounded everywhere.** The queue is the only buffer between receivers
//!   and workers, and it is bounded; a worker holds at most one group.
//!   When storage slows down, the queue fills and receivers are told
//!   ([`QueueError::Full`]) rather than memory growing.
//! - **Traits at the seams.** The durable queues (SQLite, Redis Streams) and
//!   the stores live in `killkrill-store`; they implement [`Queue`], [`Sink`]
//!   and [`DeadLetter`] and store [`BatchCodec`] bytes. The in-memory queue
//!   here follows the same contract, so the worker's logic is tested against
//!   something that redelivers like the real thing.
//!
//! See `docs/src/pipeline.md` for the operator's view: delivery semantics,
//! retries, shutdown and the self-metrics.

mod backoff;
mod batch;
mod codec;
mod dead_letter;
mod memory_queue;
mod metered_queue;
mod queue;
pub mod self_metrics;
mod shutdown;
mod sink;
mod worker;

pub use backoff::{Backoff, Jitter};
pub use batch::{Batch, BatchId, BatchIdGenerator};
pub use codec::{BatchCodec, CodecError, Compression};
pub use dead_letter::{
    DeadLetter, DeadLetterEntry, DeadLetterError, DeadLetterPayload, DeadLetterReason,
    MemoryDeadLetter,
};
pub use memory_queue::{MemoryQueue, MemoryQueueConfig};
pub use metered_queue::MeteredQueue;
pub use queue::{Delivery, DeliveryId, Queue, QueueError, QueueStats};
pub use shutdown::{Shutdown, ShutdownTrigger, shutdown_channel};
pub use sink::{FanOut, NullSink, Sink, SinkError};
pub use worker::{Worker, WorkerConfig, WorkerReport};

/// Whether an operation that failed may succeed if tried again.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Hash)]
pub enum ErrorKind {
    /// Temporary: retry after a backoff.
    Retryable,
    /// Will fail again: do not retry.
    Permanent,
}
