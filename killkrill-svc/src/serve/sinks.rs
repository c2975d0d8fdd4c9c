//! What the workers write to: the log store, the metric seam, dead letters.
//!
//! The worker hands a group of whole batches to a [`FanOut`] of two sinks:
//! [`LogStoreSink`] writes the log records of every batch as blocks, and
//! [`MetricSinkAdapter`] passes the metric samples to a [`MetricSink`].
//! The metric store is not built yet, so `serve` connects
//! [`CountingMetricSink`], which counts what it receives and stores nothing
//! (documented in `docs/src/serve.md`); the seam is the trait, so the store
//! plugs in with one line.
//!
//! Idempotency: each batch is encoded into blocks on its own. A block id is
//! derived from the record ids in the block, so cutting per batch (rather
//! than across the group) keeps the ids the same however a redelivery groups
//! the batches.

use std::sync::Arc;
use std::sync::atomic::{AtomicU64, Ordering};

use async_trait::async_trait;
use killkrill_core::event::Timestamp;
use killkrill_core::pipeline::{
    Batch, BatchCodec, DeadLetter, DeadLetterEntry, DeadLetterError, DeadLetterPayload, Sink,
    SinkError,
};
use killkrill_core::storage::{DeadLetterStore, ErrorKind, LogStore, NewDeadLetter, StoreError};
use killkrill_store::Store;

/// Converts a store error into the worker's retry decision.
fn sink_error(what: &str, e: StoreError) -> SinkError {
    let retry = matches!(e.kind(), ErrorKind::Retryable | ErrorKind::Conflict);
    let msg = format!("{what}: {e}");
    if retry {
        SinkError::retryable(msg).with_source(e)
    } else {
        SinkError::permanent(msg).with_source(e)
    }
}

/// Writes log records to the store as blocks.
pub struct LogStoreSink {
    store: Store,
    committed: Option<Arc<tokio::sync::Notify>>,
}

impl LogStoreSink {
    /// A sink over `store`.
    pub fn new(store: Store) -> Self {
        LogStoreSink {
            store,
            committed: None,
        }
    }

    /// Also wakes the waiters of `notify` after every commit (live tails in
    /// this process poll the store at once instead of at their interval).
    pub fn with_commit_notify(mut self, notify: Arc<tokio::sync::Notify>) -> Self {
        self.committed = Some(notify);
        self
    }
}

#[async_trait]
impl Sink for LogStoreSink {
    fn name(&self) -> &str {
        "logs"
    }

    async fn write(&self, batches: &[Arc<Batch>]) -> Result<(), SinkError> {
        let mut blocks = Vec::new();
        for b in batches.iter().filter(|b| !b.logs.is_empty()) {
            let encoded = self
                .store
                .encode(b.logs.clone())
                .await
                .map_err(|e| sink_error("encoding log blocks", e))?;
            blocks.extend(encoded);
        }
        if blocks.is_empty() {
            return Ok(());
        }
        self.store
            .write_blocks(&blocks)
            .await
            .map_err(|e| sink_error("writing log blocks", e))?;
        if let Some(n) = &self.committed {
            n.notify_waiters();
        }
        Ok(())
    }
}

/// Where metric samples go. Implemented by the metric store when it lands.
#[async_trait]
pub trait MetricSink: Send + Sync {
    /// A short name for metric labels and logs.
    fn name(&self) -> &str;

    /// Commits the samples and metadata of every batch (idempotently, keyed
    /// by batch id), or fails.
    ///
    /// # Errors
    /// [`SinkError`] with its retry kind.
    async fn write_metrics(&self, batches: &[Arc<Batch>]) -> Result<(), SinkError>;
}

/// Counts the metric samples it receives and stores nothing: the stand-in
/// until the metric store exists. Exported as
/// `killkrill_metric_samples_unstored_total`.
#[derive(Debug, Default)]
pub struct CountingMetricSink {
    samples: AtomicU64,
    metadata: AtomicU64,
}

/// Samples received by a worker and not stored (no metric store yet).
pub const METRIC_SAMPLES_UNSTORED: &str = "killkrill_metric_samples_unstored_total";
/// Metric metadata entries received by a worker and not stored.
pub const METRIC_METADATA_UNSTORED: &str = "killkrill_metric_metadata_unstored_total";

impl CountingMetricSink {
    /// Samples received so far.
    pub fn samples(&self) -> u64 {
        self.samples.load(Ordering::Relaxed)
    }

    /// Metadata entries received so far.
    pub fn metadata(&self) -> u64 {
        self.metadata.load(Ordering::Relaxed)
    }
}

#[async_trait]
impl MetricSink for CountingMetricSink {
    fn name(&self) -> &str {
        "metrics-count-only"
    }

    async fn write_metrics(&self, batches: &[Arc<Batch>]) -> Result<(), SinkError> {
        let samples: usize = batches.iter().map(|b| b.metrics.len()).sum();
        let metadata: usize = batches.iter().map(|b| b.metadata.len()).sum();
        self.samples.fetch_add(samples as u64, Ordering::Relaxed);
        self.metadata.fetch_add(metadata as u64, Ordering::Relaxed);
        metrics::counter!(METRIC_SAMPLES_UNSTORED).increment(samples as u64);
        metrics::counter!(METRIC_METADATA_UNSTORED).increment(metadata as u64);
        Ok(())
    }
}

/// Makes a [`MetricSink`] a pipeline [`Sink`]; batches without samples or
/// metadata are not passed on.
pub struct MetricSinkAdapter {
    name: String,
    inner: Arc<dyn MetricSink>,
}

impl MetricSinkAdapter {
    /// Wraps `inner`.
    pub fn new(inner: Arc<dyn MetricSink>) -> Self {
        MetricSinkAdapter {
            name: inner.name().to_owned(),
            inner,
        }
    }
}

#[async_trait]
impl Sink for MetricSinkAdapter {
    fn name(&self) -> &str {
        &self.name
    }

    async fn write(&self, batches: &[Arc<Batch>]) -> Result<(), SinkError> {
        let with: Vec<Arc<Batch>> = batches
            .iter()
            .filter(|b| !b.metrics.is_empty() || !b.metadata.is_empty())
            .cloned()
            .collect();
        if with.is_empty() {
            return Ok(());
        }
        self.inner.write_metrics(&with).await
    }
}

/// Files dead letters in the store's `dead_letters` table: the batch as
/// [`BatchCodec`] bytes (kind `batch`), or the bytes a queue could not
/// decode (kind `undecodable`), with the reason and error.
pub struct StoreDeadLetter {
    store: Store,
    codec: BatchCodec,
}

impl StoreDeadLetter {
    /// Dead letters into `store`.
    pub fn new(store: Store) -> Self {
        StoreDeadLetter {
            store,
            codec: BatchCodec::new(),
        }
    }
}

#[async_trait]
impl DeadLetter for StoreDeadLetter {
    async fn store(&self, entry: DeadLetterEntry) -> Result<(), DeadLetterError> {
        let (tenant, kind, payload) = match &entry.payload {
            DeadLetterPayload::Batch(b) => {
                let bytes = self
                    .codec
                    .encode_to_vec(b)
                    .map_err(|e| DeadLetterError::Backend(format!("encoding the batch: {e}")))?;
                (b.tenant.clone(), "batch", bytes)
            }
            DeadLetterPayload::Undecodable { bytes, .. } => {
                (Default::default(), "undecodable", bytes.clone())
            }
        };
        let letter = NewDeadLetter {
            tenant,
            kind: kind.to_owned(),
            payload,
            error: format!("{}: {}", entry.reason.as_str(), entry.error),
            attempts: entry.attempts.max(1),
            failed_at: Timestamp::now(),
        };
        self.store
            .put_dead_letter(&letter)
            .await
            .map(|_| ())
            .map_err(|e| DeadLetterError::Backend(e.to_string()))
    }
}
