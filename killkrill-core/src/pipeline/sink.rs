//! The `Sink` trait: where a worker writes batches before acknowledging them.
//!
//! A sink receives a group of whole batches and commits them together (one
//! transaction, one `COPY`), which is where small batches get cheap. Batches
//! are never merged or split on the way: each keeps its [`BatchId`](super::BatchId),
//! so a sink derives the same block ids from it every time and a group that
//! is retried, regrouped after a restart or redelivered writes nothing twice.
//! That idempotency is the sink's half of the at-least-once contract; the
//! worker's half is to acknowledge only after `write` returned `Ok`.

use std::sync::Arc;

use async_trait::async_trait;

use super::{Batch, ErrorKind};

/// A write failed.
#[derive(Debug, thiserror::Error)]
#[error("{message}")]
pub struct SinkError {
    kind: ErrorKind,
    message: String,
    #[source]
    source: Option<Box<dyn std::error::Error + Send + Sync>>,
}

impl SinkError {
    /// A failure that may pass if tried again (connection lost, deadlock,
    /// timeout, database restarting).
    pub fn retryable(message: impl Into<String>) -> Self {
        SinkError {
            kind: ErrorKind::Retryable,
            message: message.into(),
            source: None,
        }
    }

    /// A failure that will repeat (the data violates a constraint, a value
    /// is out of range for the column): the batch goes to the dead-letter
    /// store at once.
    pub fn permanent(message: impl Into<String>) -> Self {
        SinkError {
            kind: ErrorKind::Permanent,
            message: message.into(),
            source: None,
        }
    }

    /// Attaches the underlying error.
    pub fn with_source(mut self, source: impl std::error::Error + Send + Sync + 'static) -> Self {
        self.source = Some(Box::new(source));
        self
    }

    /// Retryable or permanent.
    pub fn kind(&self) -> ErrorKind {
        self.kind
    }
}

/// A destination for batches.
#[async_trait]
pub trait Sink: Send + Sync {
    /// A short name for metric labels and logs.
    fn name(&self) -> &str;

    /// Commits every batch of the group, or fails. `Ok` means committed: the
    /// worker acknowledges the deliveries right after.
    ///
    /// # Errors
    /// [`SinkError`] with its [`kind`](SinkError::kind). After an error the
    /// worker may write any subset of the group again, so a partial commit
    /// must be harmless (idempotent writes keyed by batch id).
    async fn write(&self, batches: &[Arc<Batch>]) -> Result<(), SinkError>;
}

/// Writes each group to several sinks in order (logs to the log store,
/// samples to the metric store, ...). Succeeds only when all did; the first
/// error stops the group, which is then retried as a whole.
pub struct FanOut {
    name: String,
    sinks: Vec<Arc<dyn Sink>>,
}

impl FanOut {
    /// A fan-out over `sinks`.
    pub fn new(sinks: Vec<Arc<dyn Sink>>) -> Self {
        let name = sinks.iter().map(|s| s.name()).collect::<Vec<_>>().join("+");
        FanOut { name, sinks }
    }
}

#[async_trait]
impl Sink for FanOut {
    fn name(&self) -> &str {
        &self.name
    }

    async fn write(&self, batches: &[Arc<Batch>]) -> Result<(), SinkError> {
        for s in &self.sinks {
            s.write(batches).await?;
        }
        Ok(())
    }
}

/// Accepts everything and keeps nothing: for benchmarks and for pipelines
/// whose only purpose is their side effects (metrics, live tail).
#[derive(Debug, Default, Clone, Copy)]
pub struct NullSink;

#[async_trait]
impl Sink for NullSink {
    fn name(&self) -> &str {
        "null"
    }

    async fn write(&self, _batches: &[Arc<Batch>]) -> Result<(), SinkError> {
        Ok(())
    }
}
