//! Batches: the unit that receivers enqueue, queues deliver and sinks write.
//!
//! A batch is what one request (or one flush of a listener) produced, for one
//! tenant. Its [`BatchId`] is assigned once, at the receiver, and travels with
//! the batch through every queue round trip: it is the idempotency key the
//! store derives block and partial ids from, so a redelivered batch lands on
//! the same rows instead of duplicating them.
//!
//! Logs, metric samples and metric metadata are kept in three vectors rather
//! than one `Vec<Event>`: every sink splits them that way anyway (log blocks
//! versus series and samples), metadata is not an event, and the vectors avoid
//! an enum tag and a match per event on the hot path.

use std::fmt;
use std::str::FromStr;

use crate::event::{
    EventId, EventIdGenerator, LogRecord, MetricMetadata, MetricSample, Tenant, Timestamp,
};

/// A 128-bit, time-ordered batch id with the same layout as [`EventId`]
/// (UUIDv7: the first 48 bits are the Unix milliseconds of its creation).
#[derive(Debug, Clone, Copy, PartialEq, Eq, PartialOrd, Ord, Hash, Default)]
pub struct BatchId(u128);

impl BatchId {
    /// Wraps raw bits.
    pub const fn from_u128(bits: u128) -> Self {
        BatchId(bits)
    }

    /// The raw bits.
    pub const fn as_u128(self) -> u128 {
        self.0
    }

    /// Big-endian bytes (the UUID byte order).
    pub const fn to_bytes(self) -> [u8; 16] {
        self.0.to_be_bytes()
    }

    /// From big-endian bytes.
    pub const fn from_bytes(b: [u8; 16]) -> Self {
        BatchId(u128::from_be_bytes(b))
    }

    /// The millisecond timestamp in the id.
    pub const fn timestamp_millis(self) -> i64 {
        (self.0 >> 80) as i64
    }
}

impl fmt::Display for BatchId {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        fmt::Display::fmt(&EventId::from_u128(self.0), f)
    }
}

impl FromStr for BatchId {
    type Err = crate::event::InvalidEventId;
    fn from_str(s: &str) -> Result<Self, Self::Err> {
        s.parse::<EventId>().map(|id| BatchId(id.as_u128()))
    }
}

/// Hands out strictly increasing [`BatchId`]s (one per receiver process).
#[derive(Debug, Default)]
pub struct BatchIdGenerator(EventIdGenerator);

impl BatchIdGenerator {
    /// A generator with a random 32-bit process prefix.
    pub fn new() -> Self {
        BatchIdGenerator(EventIdGenerator::new())
    }

    /// A generator with a fixed prefix (deterministic tests).
    pub fn with_prefix(prefix: u32) -> Self {
        BatchIdGenerator(EventIdGenerator::with_prefix(prefix))
    }

    /// The next id, stamped with `now`.
    pub fn next(&self, now: Timestamp) -> BatchId {
        BatchId(self.0.next(now).as_u128())
    }
}

/// One tenant's events from one request or one listener flush.
#[derive(Debug, Clone, PartialEq, Default)]
pub struct Batch {
    /// Idempotency key, assigned by the receiver.
    pub id: BatchId,
    /// The tenant every event in the batch belongs to.
    pub tenant: Tenant,
    /// The listener or endpoint that received it (`syslog-tcp`, `http`, ...).
    pub source: Option<String>,
    /// When the receiver created the batch (wall clock); batch latency is
    /// measured from here to the acknowledgement.
    pub received: Timestamp,
    /// Log records, in arrival order.
    pub logs: Vec<LogRecord>,
    /// Metric samples, in arrival order.
    pub metrics: Vec<MetricSample>,
    /// Metric family metadata that came with the samples.
    pub metadata: Vec<MetricMetadata>,
}

impl Batch {
    /// An empty batch.
    pub fn new(id: BatchId, tenant: Tenant, received: Timestamp) -> Self {
        Batch {
            id,
            tenant,
            received,
            ..Batch::default()
        }
    }

    /// Number of events (log records plus metric samples; metadata is not
    /// counted, it is not an event).
    pub fn len(&self) -> usize {
        self.logs.len() + self.metrics.len()
    }

    /// True when there are no events and no metadata.
    pub fn is_empty(&self) -> bool {
        self.logs.is_empty() && self.metrics.is_empty() && self.metadata.is_empty()
    }

    /// An estimate of the heap bytes the batch holds: the string and byte
    /// payloads plus a fixed overhead per record. Cheap (one pass, no
    /// allocation); used to bound queues by memory.
    pub fn approx_bytes(&self) -> usize {
        use crate::decode_budget::{ATTRIBUTE_OVERHEAD, RECORD_OVERHEAD, sample_bytes};
        let opt = |s: &Option<String>| s.as_ref().map_or(0, String::len);
        let mut n = 128 + opt(&self.source);
        for r in &self.logs {
            n += RECORD_OVERHEAD
                + opt(&r.host)
                + opt(&r.app)
                + opt(&r.procid)
                + opt(&r.msgid)
                + opt(&r.source)
                + opt(&r.parse_error)
                + r.message.as_ref().map_or(0, Vec::len);
            for sd in &r.structured_data {
                n += 24 + sd.id.len();
                n += sd
                    .params
                    .iter()
                    .map(|(k, v)| 48 + k.len() + v.len())
                    .sum::<usize>();
            }
            for (k, v) in &r.attributes {
                n += ATTRIBUTE_OVERHEAD + k.len();
                if let crate::event::FieldValue::Str(s) = v {
                    n += s.len();
                }
            }
        }
        for m in &self.metrics {
            n += sample_bytes(&m.name, m.labels.as_slice());
        }
        for m in &self.metadata {
            n += RECORD_OVERHEAD + m.family.len() + opt(&m.help) + opt(&m.unit);
        }
        n
    }

    /// The memory the batch holds, estimated: what bounds the workers'
    /// groups and the SQLite queue's cache of batches not yet leased. Log
    /// batches: [`Batch::approx_bytes`]. Metric batches: each sample's own
    /// struct, a name too long to be inline, and the label set once per run
    /// of samples sharing it (a decoded remote_write series shares one;
    /// `approx_bytes` counts it per sample, as a copy into each would cost,
    /// which overstates what is held several times).
    pub fn resident_bytes(&self) -> usize {
        use crate::decode_budget::{RECORD_OVERHEAD, label_bytes};
        if !self.logs.is_empty() {
            return self.approx_bytes();
        }
        let mut n = 128 + self.metrics.capacity() * std::mem::size_of::<MetricSample>();
        let mut prev: Option<&crate::event::Labels> = None;
        for m in &self.metrics {
            if m.name.is_heap_allocated() {
                n += m.name.len();
            }
            if !prev.is_some_and(|p| p.shares(&m.labels)) {
                n += m
                    .labels
                    .iter()
                    .map(|l| label_bytes(&l.name, &l.value))
                    .sum::<usize>();
            }
            prev = Some(&m.labels);
        }
        for m in &self.metadata {
            n += RECORD_OVERHEAD
                + m.family.len()
                + m.help.as_ref().map_or(0, String::len)
                + m.unit.as_ref().map_or(0, String::len);
        }
        n
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn ids_are_time_ordered_and_print_as_uuids() {
        let g = BatchIdGenerator::with_prefix(1);
        let a = g.next(Timestamp::from_millis(1_000));
        let b = g.next(Timestamp::from_millis(1_000));
        assert!(a < b);
        assert_eq!(a.timestamp_millis(), 1_000);
        let text = a.to_string();
        assert_eq!(text.parse::<BatchId>().unwrap(), a);
        assert_eq!(BatchId::from_bytes(a.to_bytes()), a);
        assert!("nope".parse::<BatchId>().is_err());
    }

    #[test]
    fn len_counts_events_not_metadata() {
        let mut b = Batch::new(BatchId::from_u128(1), Tenant::default(), Timestamp::EPOCH);
        assert!(b.is_empty());
        b.metadata.push(MetricMetadata::default());
        assert_eq!(b.len(), 0);
        assert!(!b.is_empty());
        b.logs.push(LogRecord::default());
        b.metrics.push(MetricSample::default());
        assert_eq!(b.len(), 2);
        let small = b.approx_bytes();
        b.logs[0].message = Some(vec![b'x'; 1000]);
        assert_eq!(b.approx_bytes(), small + 1000);
    }

    #[test]
    fn a_shared_label_set_counts_once() {
        use crate::event::{Label, Labels, MetricText, MetricType};
        let labels = Labels::from_sorted(vec![Label {
            name: "job".into(),
            value: "x".repeat(100).into(),
        }]);
        let sample = |labels: Labels| MetricSample {
            tenant: None,
            name: MetricText::from("up"),
            labels,
            value: 1.0,
            timestamp: Some(Timestamp::from_millis(1)),
            kind: MetricType::Gauge,
        };
        let mut shared = Batch::new(
            BatchId::from_u128(1),
            Tenant::default(),
            Timestamp::from_millis(1),
        );
        let mut copied = shared.clone();
        for _ in 0..10 {
            shared.metrics.push(sample(labels.clone()));
            copied
                .metrics
                .push(sample(Labels::from_sorted(labels.as_slice().to_vec())));
        }
        let set = crate::decode_budget::label_bytes("job", &"x".repeat(100));
        assert_eq!(copied.resident_bytes() - shared.resident_bytes(), 9 * set);
        assert!(shared.resident_bytes() < shared.approx_bytes());
    }
}
