//! The batches this process enqueued and no worker has leased yet, kept as
//! they were enqueued, so that the first lease of one hands the batch over
//! instead of reading its body back and decoding it.
//!
//! The body on disk stays the durable copy: a batch is put here in the
//! writer's transaction, before its row commits (and taken out again if the
//! commit fails: a rolled-back `seq` can be given to another row), and the
//! first lease of its row takes it out (a lease and the lookup happen under
//! the queue connection's lock, so no lease can see a row before it is
//! here). A redelivery, a restart, or a batch that did not fit reads the
//! body, as before. The codec's round trip is exact, so the batch a
//! lease gets is the same either way.
//!
//! Bounded by an estimate of the batches' memory ([`Batch::resident_bytes`]); a
//! batch that does not fit is not kept, and is read from its body when
//! leased.

use std::collections::BTreeMap;
use std::sync::Arc;

use killkrill_core::pipeline::Batch;

/// Batches by queue `seq` (see the module docs).
#[derive(Debug, Default)]
pub(super) struct Hot {
    map: BTreeMap<i64, (Arc<Batch>, usize)>,
    bytes: usize,
    max_bytes: usize,
}

/// First deliveries by where the batch came from: `result="kept"` handed
/// over from here, `result="read"` read from its body (it did not fit, or
/// was enqueued before a restart).
pub(super) const FIRST_DELIVERIES: &str = "killkrill_queue_first_deliveries_total";

/// Counts one lease's first deliveries.
pub(super) fn count(kept: usize, read: usize) {
    if kept > 0 {
        metrics::counter!(FIRST_DELIVERIES, "queue" => "sqlite", "result" => "kept")
            .increment(kept as u64);
    }
    if read > 0 {
        metrics::counter!(FIRST_DELIVERIES, "queue" => "sqlite", "result" => "read")
            .increment(read as u64);
    }
}

impl Hot {
    pub(super) fn new(max_bytes: usize) -> Self {
        Hot {
            max_bytes,
            ..Hot::default()
        }
    }

    /// Keeps `batch` (of estimated `size` bytes) for row `seq` if it fits.
    pub(super) fn put(&mut self, seq: i64, batch: Arc<Batch>, size: usize) {
        if self.bytes.saturating_add(size) > self.max_bytes {
            return;
        }
        self.bytes += size;
        if let Some((_, old)) = self.map.insert(seq, (batch, size)) {
            self.bytes -= old;
        }
    }

    /// Forgets row `seq` (its insert did not commit).
    pub(super) fn forget(&mut self, seq: i64) {
        if let Some((_, size)) = self.map.remove(&seq) {
            self.bytes -= size;
        }
    }

    /// The batch of row `seq`, leased for the first time, if kept.
    pub(super) fn take(&mut self, seq: i64) -> Option<Arc<Batch>> {
        let (batch, size) = self.map.remove(&seq)?;
        self.bytes -= size;
        Some(batch)
    }

    /// Forgets every row before `seq`. Leases take rows in `seq` order and
    /// each takes its rows out, so none should be left; should one be (a
    /// wall clock stepped back keeps a new row invisible for a while), it is
    /// read from its body when leased, and does not hold memory until then.
    pub(super) fn forget_before(&mut self, seq: i64) {
        let keep = self.map.split_off(&seq);
        for (_, size) in std::mem::replace(&mut self.map, keep).values() {
            self.bytes -= size;
        }
    }

    /// Estimated bytes kept.
    #[cfg(test)]
    pub(super) fn bytes(&self) -> usize {
        self.bytes
    }

    /// Rows kept.
    #[cfg(test)]
    pub(super) fn len(&self) -> usize {
        self.map.len()
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn bounded_by_bytes_and_emptied_by_leases() {
        let b = Arc::new(Batch::default());
        let mut h = Hot::new(100);
        h.put(1, b.clone(), 40);
        h.put(2, b.clone(), 40);
        h.put(3, b.clone(), 40); // does not fit
        assert_eq!((h.len(), h.bytes()), (2, 80));
        assert!(h.take(3).is_none());
        assert!(h.take(1).is_some());
        assert!(h.take(1).is_none(), "a second lease reads the body");
        h.put(4, b.clone(), 40);
        h.put(5, b.clone(), 10);
        h.forget(5);
        assert_eq!((h.len(), h.bytes()), (2, 80));
        h.forget_before(4);
        assert_eq!((h.len(), h.bytes()), (1, 40));
        assert!(h.take(4).is_some());
        assert_eq!((h.len(), h.bytes()), (0, 0));
        let mut off = Hot::new(0);
        off.put(1, b, 1);
        assert_eq!(off.len(), 0);
    }
}
