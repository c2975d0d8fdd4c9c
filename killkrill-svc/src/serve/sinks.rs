//! What the workers write to: the log store, the metric store, dead letters.
//!
//! The worker hands a group of whole batches to a [`FanOut`] of two sinks:
//! [`LogStoreSink`] writes the log records of every batch as blocks, and
//! [`MetricSinkAdapter`] passes the metric samples to a [`MetricSink`]:
//! [`StoreMetricSink`] by default (samples, metadata and rollups into the
//! [`MetricStore`]); [`CountingMetricSink`] only counts (tests, or a
//! deployment that wants no metric storage).
//!
//! Rollups exactly once: [`StoreMetricSink`] feeds the samples of each
//! group to one [`Aggregator`] shared by the workers, flushes it, and stores
//! the flush with [`MetricStore::write_rollup_flush`], which records each
//! batch's key in a ledger in the same transaction. The key is a hash of the
//! batch's tenant and samples (not the queue's batch id), so a redelivery
//! *and* a client resending the same request are aggregated once. A batch
//! whose key is in the ledger is not aggregated again (its samples are
//! still written: that write is idempotent by content); a batch whose flush
//! was not committed (crash, failed write) is not in the ledger, so it is
//! aggregated again after the restart or retry. After a failed or refused
//! write the engine is rebuilt (its in-memory counter chains might hold the
//! batch), with the tenants' stored high-water marks restored. So each
//! batch is in the stored rollups exactly once, whatever the grouping,
//! redelivery, worker count or restarts; partials merge exactly on read.
//! Not covered: two *different* requests that overlap in part (some equal
//! samples): the raw store keeps the shared samples once, the rollups count
//! them twice.
//!
//! Idempotency: each batch is encoded into blocks on its own. A block id is
//! derived from the record ids in the block, so cutting per batch (rather
//! than across the group) keeps the ids the same however a redelivery groups
//! the batches.

use std::collections::{BTreeMap, HashSet};
use std::sync::atomic::{AtomicU64, Ordering};
use std::sync::{Arc, Mutex};

use async_trait::async_trait;
use killkrill_core::aggregate::{AggregateConfig, Aggregator, BatchId, ConfigError};
use killkrill_core::event::{MetricMetadata, MetricSample, Tenant, Timestamp};
use killkrill_core::pipeline::{
    Batch, BatchCodec, DeadLetter, DeadLetterEntry, DeadLetterError, DeadLetterPayload, Sink,
    SinkError,
};
use killkrill_core::storage::{
    DeadLetterStore, ErrorKind, LogStore, MetricStore, NewDeadLetter, RollupFlush,
    RollupFlushOutcome, SeriesId, StoreError, series_id,
};
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

/// Batches redelivered whose rollups were already stored (ledger hits).
pub const ROLLUP_BATCHES_ALREADY_STORED: &str = "killkrill_rollup_batches_already_stored_total";
/// Rollup flushes stored.
pub const ROLLUP_FLUSHES_STORED: &str = "killkrill_rollup_flushes_stored_total";

/// Stores the samples and metadata of every batch in a [`MetricStore`]
/// and, when rollups are on, the partial rollups of an [`Aggregator`]
/// exactly once per batch (see the module docs).
pub struct StoreMetricSink {
    store: Arc<dyn MetricStore>,
    rollups: Option<Rollups>,
}

/// The shared engine and what a rebuilt one needs.
struct Rollups {
    config: AggregateConfig,
    state: Mutex<RollupState>,
}

struct RollupState {
    engine: Aggregator,
    /// Greatest high-water mark stored per tenant (restored into a rebuilt
    /// engine); a tenant is absent until read from the store once.
    high_water: BTreeMap<Tenant, Option<Timestamp>>,
}

/// How often one group may meet ledger hits before the write is retried
/// by the worker (each round removes the recorded batches, so two suffice
/// unless another worker races on the same batches).
const LEDGER_ROUNDS: usize = 4;

impl StoreMetricSink {
    /// Samples and metadata only, no rollups.
    pub fn new(store: Arc<dyn MetricStore>) -> Self {
        StoreMetricSink {
            store,
            rollups: None,
        }
    }

    /// Samples, metadata and rollups computed with `config`.
    ///
    /// # Errors
    /// The engine config is invalid (the key is named).
    pub fn with_rollups(
        store: Arc<dyn MetricStore>,
        config: AggregateConfig,
    ) -> Result<Self, ConfigError> {
        let engine = config.build()?;
        Ok(StoreMetricSink {
            store,
            rollups: Some(Rollups {
                config,
                state: Mutex::new(RollupState {
                    engine,
                    high_water: BTreeMap::new(),
                }),
            }),
        })
    }

    /// Writes the samples of one tenant's batches (one call, so samples of
    /// a series from several batches share chunks), read in place with the
    /// series ids computed once in [`series_ids`].
    async fn write_samples(
        &self,
        tenant: &Tenant,
        batches: &[&Arc<Batch>],
        ids: &[Vec<SeriesId>],
    ) -> Result<(), SinkError> {
        let (parts, ids): (Vec<&[MetricSample]>, Vec<&[SeriesId]>) = batches
            .iter()
            .zip(ids)
            .filter(|(b, _)| !b.metrics.is_empty())
            .map(|(b, i)| (b.metrics.as_slice(), i.as_slice()))
            .unzip();
        if parts.is_empty() {
            return Ok(());
        }
        self.store
            .write_sample_parts(tenant, &parts, &ids)
            .await
            .map_err(|e| sink_error("writing metric samples", e))?;
        Ok(())
    }

    async fn write_metadata(
        &self,
        tenant: &Tenant,
        batches: &[&Arc<Batch>],
    ) -> Result<(), SinkError> {
        let metadata: Vec<MetricMetadata> = batches
            .iter()
            .flat_map(|b| b.metadata.iter().cloned())
            .collect();
        if metadata.is_empty() {
            return Ok(());
        }
        self.store
            .write_metadata(tenant, &metadata)
            .await
            .map_err(|e| sink_error("writing metric metadata", e))?;
        Ok(())
    }

    /// Aggregates the batches not in `skip`, flushes and stores the flush;
    /// on ledger hits, rebuilds the engine and tries again without them.
    async fn write_rollups(
        &self,
        r: &Rollups,
        tenant: &Tenant,
        batches: &[&Arc<Batch>],
        ids: &[Vec<SeriesId>],
    ) -> Result<(), SinkError> {
        self.restore_high_water(r, tenant).await?;
        let keys: Vec<u128> = batches
            .iter()
            .zip(ids)
            .map(|(b, ids)| rollup_key(tenant, b, ids))
            .collect();
        let mut skip: HashSet<u128> = HashSet::new();
        for _ in 0..LEDGER_ROUNDS {
            let flush = {
                let mut st = lock(&r.state)?;
                let mut seen: HashSet<u128> = HashSet::new();
                for (b, key) in batches.iter().zip(&keys) {
                    if b.metrics.is_empty() || skip.contains(key) || !seen.insert(*key) {
                        continue;
                    }
                    let id = BatchId(*key);
                    if b.metrics.iter().all(|s| s.tenant.as_ref() == Some(tenant)) {
                        st.engine.aggregate(id, &b.metrics);
                    } else {
                        // Samples without a tenant belong to the batch's.
                        let owned: Vec<MetricSample> = b
                            .metrics
                            .iter()
                            .map(|s| MetricSample {
                                tenant: Some(tenant.clone()),
                                ..s.clone()
                            })
                            .collect();
                        st.engine.aggregate(id, &owned);
                    }
                }
                st.engine.flush()
            };
            let Some(key) = flush.key() else {
                return Ok(());
            };
            let high_water = flush
                .high_water
                .iter()
                .find(|(t, _)| t == tenant)
                .map(|(_, h)| *h);
            let written = self
                .store
                .write_rollup_flush(
                    tenant,
                    RollupFlush {
                        key,
                        batches: &flush.batches,
                        high_water,
                        partials: &flush.partials,
                    },
                )
                .await;
            match written {
                Ok(RollupFlushOutcome::Written { .. }) => {
                    metrics::counter!(ROLLUP_FLUSHES_STORED).increment(1);
                    let mut st = lock(&r.state)?;
                    let hw = st.high_water.entry(tenant.clone()).or_insert(None);
                    *hw = (*hw).max(high_water);
                    return Ok(());
                }
                Ok(RollupFlushOutcome::AlreadyRecorded(ids)) => {
                    metrics::counter!(ROLLUP_BATCHES_ALREADY_STORED).increment(ids.len() as u64);
                    skip.extend(ids.iter().map(|b| b.0));
                    self.rebuild(r)?;
                }
                Err(e) => {
                    self.rebuild(r)?;
                    return Err(sink_error("writing rollups", e));
                }
            }
        }
        Err(SinkError::retryable(
            "rollup batches kept appearing in the ledger (another worker is writing them)",
        ))
    }

    /// Reads `tenant`'s stored high-water mark once and gives it to the engine.
    async fn restore_high_water(&self, r: &Rollups, tenant: &Tenant) -> Result<(), SinkError> {
        if lock(&r.state)?.high_water.contains_key(tenant) {
            return Ok(());
        }
        let hw = self
            .store
            .rollup_high_water(tenant)
            .await
            .map_err(|e| sink_error("reading the rollup high-water mark", e))?;
        let mut st = lock(&r.state)?;
        if let Some(t) = hw {
            st.engine.restore_high_water(tenant, t);
        }
        let e = st.high_water.entry(tenant.clone()).or_insert(None);
        *e = (*e).max(hw);
        Ok(())
    }

    /// Replaces the engine with a new one that knows the stored high-water
    /// marks (and nothing that was not committed).
    fn rebuild(&self, r: &Rollups) -> Result<(), SinkError> {
        let mut engine = r.config.build().map_err(|e| {
            SinkError::permanent(format!("rollups.aggregate.{}: {}", e.key, e.message))
        })?;
        let mut st = lock(&r.state)?;
        for (t, hw) in &st.high_water {
            if let Some(hw) = hw {
                engine.restore_high_water(t, *hw);
            }
        }
        st.engine = engine;
        Ok(())
    }
}

/// The series id of every sample of a batch: computed once per group and
/// used by the sample write and the rollup ledger key. Hashed once per run:
/// a sample whose labels are shared with the previous sample's (decoded
/// from one run of the queue body) and whose name is the same has its id.
fn series_ids(b: &Batch) -> Vec<SeriesId> {
    let mut ids = Vec::with_capacity(b.metrics.len());
    let mut prev: Option<(&MetricSample, SeriesId)> = None;
    for s in &b.metrics {
        let id = match prev {
            Some((p, id)) if p.labels.shares(&s.labels) && p.name == s.name => id,
            _ => series_id(&s.name, &s.labels),
        };
        ids.push(id);
        prev = Some((s, id));
    }
    ids
}

/// The ledger key of a batch's rollups: a hash of the tenant and of every
/// sample (series id, timestamp, value bits), not the queue's batch id. A
/// redelivery has the same content, and so does a client's retry of a
/// request (a new batch id): both are aggregated once, as the raw store
/// keeps their samples once.
/// `ids` are the samples' series ids ([`series_ids`]).
fn rollup_key(tenant: &Tenant, b: &Batch, ids: &[SeriesId]) -> u128 {
    let mut h = xxhash_rust::xxh3::Xxh3Default::new();
    h.update(tenant.as_str().as_bytes());
    h.update(&[0xFF]);
    for (s, id) in b.metrics.iter().zip(ids) {
        h.update(&id.0.to_le_bytes());
        h.update(
            &s.timestamp
                .map_or(i64::MIN, Timestamp::as_nanos)
                .to_le_bytes(),
        );
        h.update(&s.value.to_bits().to_le_bytes());
    }
    h.digest128()
}

fn lock(m: &Mutex<RollupState>) -> Result<std::sync::MutexGuard<'_, RollupState>, SinkError> {
    m.lock()
        .map_err(|_| SinkError::permanent("the rollup engine mutex is poisoned"))
}

#[async_trait]
impl MetricSink for StoreMetricSink {
    fn name(&self) -> &str {
        "metrics"
    }

    async fn write_metrics(&self, batches: &[Arc<Batch>]) -> Result<(), SinkError> {
        // Per tenant, in first-seen order.
        let mut tenants: Vec<(&Tenant, Vec<&Arc<Batch>>)> = Vec::new();
        for b in batches {
            match tenants.iter_mut().find(|(t, _)| *t == &b.tenant) {
                Some((_, v)) => v.push(b),
                None => tenants.push((&b.tenant, vec![b])),
            }
        }
        for (tenant, group) in &tenants {
            let ids: Vec<Vec<SeriesId>> = group.iter().map(|b| series_ids(b)).collect();
            self.write_samples(tenant, group, &ids).await?;
            self.write_metadata(tenant, group).await?;
            if let Some(r) = &self.rollups {
                self.write_rollups(r, tenant, group, &ids).await?;
            }
        }
        Ok(())
    }
}

/// The default metric sink of `serve`: [`StoreMetricSink`] on `store`, with
/// rollups unless `[rollups] enabled = false`.
///
/// # Errors
/// The rollup engine config is invalid (the message names the key).
pub fn store_metric_sink(
    store: &Store,
    rollups: &crate::config::RollupsConfig,
) -> Result<Arc<dyn MetricSink>, String> {
    let metric_store: Arc<dyn MetricStore> = Arc::new(store.clone());
    if !rollups.enabled {
        return Ok(Arc::new(StoreMetricSink::new(metric_store)));
    }
    StoreMetricSink::with_rollups(metric_store, rollups.aggregate.clone())
        .map(|s| Arc::new(s) as Arc<dyn MetricSink>)
        .map_err(|e| format!("rollups.aggregate.{}: {}", e.key, e.message))
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

#[cfg(test)]
mod tests {
    use killkrill_core::event::Labels;
    use killkrill_core::pipeline::BatchId as QueueBatchId;

    use super::*;

    /// Ids reused within a run of shared labels are the ids computed per
    /// sample: runs of one series, a name change inside shared labels,
    /// equal but unshared labels.
    #[test]
    fn series_ids_per_run_equal_ids_per_sample() {
        let t = Tenant::new("t").expect("valid tenant");
        let a = Labels::from_pairs([("job", "a")]);
        let b = Labels::from_pairs([("job", "b")]);
        let a_copy = Labels::from_pairs([("job", "a")]);
        let series = [
            ("x", &a),
            ("x", &a),
            ("y", &a),
            ("y", &a),
            ("x", &b),
            ("x", &a_copy),
            ("x", &a),
        ];
        let mut batch = Batch::new(QueueBatchId::from_u128(1), t, Timestamp::EPOCH);
        for (i, (name, labels)) in series.iter().enumerate() {
            batch.metrics.push(MetricSample {
                name: (*name).into(),
                labels: (*labels).clone(),
                value: i as f64,
                timestamp: Some(Timestamp::from_nanos(i as i64)),
                ..MetricSample::default()
            });
        }
        let want: Vec<SeriesId> = batch
            .metrics
            .iter()
            .map(|s| series_id(&s.name, &s.labels))
            .collect();
        assert_eq!(series_ids(&batch), want);
        assert_eq!(want[0], want[1]);
        assert_ne!(want[1], want[2]);
        assert_eq!(want[5], want[0]);
    }
}
