//! The receivers' side of the queue: stamping events and enqueueing them.
//!
//! Every receiver (HTTP endpoint or syslog listener) turns what it parsed
//! into one [`Batch`] per request or flush, through [`Ingest`]: each record
//! gets its time-ordered id, the tenant and its source here, once, so a
//! redelivered batch carries the same ids and the store's block ids (derived
//! from them) make the rewrite a no-op.

use std::sync::Arc;
use std::time::Duration;

use killkrill_core::event::{
    EventIdGenerator, LogRecord, MetricMetadata, MetricSample, Tenant, Timestamp,
};
use killkrill_core::pipeline::{Batch, BatchIdGenerator, Queue, QueueError};

/// Shared by every receiver of one process.
pub struct Ingest {
    queue: Arc<dyn Queue>,
    tenant: Tenant,
    event_ids: EventIdGenerator,
    batch_ids: BatchIdGenerator,
}

impl Ingest {
    /// Receivers enqueueing into `queue` for `tenant`.
    pub fn new(queue: Arc<dyn Queue>, tenant: Tenant) -> Self {
        Ingest {
            queue,
            tenant,
            event_ids: EventIdGenerator::new(),
            batch_ids: BatchIdGenerator::new(),
        }
    }

    /// The queue.
    pub fn queue(&self) -> &Arc<dyn Queue> {
        &self.queue
    }

    /// The tenant of receivers that have no caller identity (syslog
    /// listeners, and HTTP before authentication assigns one per caller).
    pub fn default_tenant(&self) -> &Tenant {
        &self.tenant
    }

    /// A batch of log records of `tenant` from `source`, each given an id,
    /// the tenant and the source.
    pub fn log_batch(
        &self,
        tenant: &Tenant,
        source: &'static str,
        mut logs: Vec<LogRecord>,
    ) -> Batch {
        let now = Timestamp::now();
        for r in &mut logs {
            r.id = Some(self.event_ids.next(now));
            r.tenant = Some(tenant.clone());
            r.source = Some(source.to_owned());
        }
        let mut b = Batch::new(self.batch_ids.next(now), tenant.clone(), now);
        b.source = Some(source.to_owned());
        b.logs = logs;
        b
    }

    /// A batch of metric samples and metadata of `tenant` from `source`;
    /// samples get the tenant, and the receive time when they carry no
    /// timestamp.
    pub fn metric_batch(
        &self,
        tenant: &Tenant,
        source: &'static str,
        mut samples: Vec<MetricSample>,
        metadata: Vec<MetricMetadata>,
    ) -> Batch {
        let now = Timestamp::now();
        for s in &mut samples {
            s.tenant = Some(tenant.clone());
            if s.timestamp.is_none() {
                s.timestamp = Some(now);
            }
        }
        let mut b = Batch::new(self.batch_ids.next(now), tenant.clone(), now);
        b.source = Some(source.to_owned());
        b.metrics = samples;
        b.metadata = metadata;
        b
    }

    /// Enqueues, waiting at most `wait` for room.
    ///
    /// # Errors
    /// The queue's error; the batch is not stored.
    pub async fn submit(&self, batch: Batch, wait: Duration) -> Result<(), QueueError> {
        killkrill_core::pipeline::self_metrics::received(source_label(&batch), batch.len());
        self.queue.enqueue(batch, wait).await
    }

    /// [`submit`](Self::submit) again after [`QueueError::Full`], without
    /// counting the events as received a second time.
    ///
    /// # Errors
    /// As [`submit`](Self::submit).
    pub async fn resubmit(&self, batch: Batch, wait: Duration) -> Result<(), QueueError> {
        self.queue.enqueue(batch, wait).await
    }
}

fn source_label(b: &Batch) -> &'static str {
    match b.source.as_deref() {
        Some("http") => "http",
        Some("loki") => "loki",
        Some("remote_write") => "remote_write",
        Some("prometheus_import") => "prometheus_import",
        Some("pushgateway") => "pushgateway",
        Some("grpc") => "grpc",
        Some("scrape") => "scrape",
        Some("syslog-udp") => "syslog-udp",
        Some("syslog-tcp") => "syslog-tcp",
        Some("syslog-tls") => "syslog-tls",
        _ => "other",
    }
}
