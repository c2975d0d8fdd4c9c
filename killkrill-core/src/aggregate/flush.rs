//! What the engine hands to storage, and the merge that compaction and
//! queries run over stored partials.
//!
//! Exactness under redelivery and restart rests on three rules the pipeline
//! follows (see `docs/src/aggregation.md`):
//!
//! 1. A flush's partials are stored atomically, keyed by the flush's batch
//!    ids, *before* those batches are acknowledged. Flushing after every
//!    batch makes the key simply the batch id.
//! 2. Storing a flush *replaces* whatever was stored under its key, so a
//!    redelivered batch rewrites its partials instead of adding to them. (If
//!    one flush covers several batches, the batch ids are recorded with it
//!    and a redelivered batch already recorded is acknowledged without
//!    aggregating it again.)
//! 3. Partials of a window are combined only with [`Rollup::merge`] (here:
//!    [`merge_partials`]), which is exact for any grouping and order.

use std::collections::BTreeMap;
use std::sync::Arc;

use super::rollup::{MergeError, Rollup};
use super::series::SeriesKey;
use super::window::Resolution;
use crate::event::{Tenant, Timestamp};

/// Identifies a batch as the queue delivered it (e.g. a Redis stream id
/// `ms-seq` as `ms << 64 | seq`, or a SQLite queue row id). Redeliveries of
/// a batch carry the same id.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Hash, PartialOrd, Ord)]
pub struct BatchId(pub u128);

impl std::fmt::Display for BatchId {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        write!(f, "{:032x}", self.0)
    }
}

/// Identity of a (partial) rollup: series, resolution, window, and whether
/// it holds late samples aggregated after the window closed.
#[derive(Debug, Clone, PartialEq, Eq, Hash, PartialOrd, Ord)]
pub struct RollupKey {
    /// The series.
    pub series: Arc<SeriesKey>,
    /// The window width.
    pub resolution: Resolution,
    /// The window start (a multiple of the resolution since the epoch).
    pub window_start: Timestamp,
    /// True for a partial of late samples (`LatePolicy::Aggregate`).
    pub late: bool,
}

/// One partial rollup.
#[derive(Debug, Clone, PartialEq)]
pub struct PartialRollup {
    /// Its identity.
    pub key: RollupKey,
    /// What the flushed batches contributed to it.
    pub rollup: Rollup,
}

/// Everything the engine produced since the previous flush.
#[derive(Debug, Clone, PartialEq, Default)]
pub struct Flush {
    /// The batches aggregated since the previous flush, in arrival order.
    pub batches: Vec<BatchId>,
    /// Their partial rollups: series in the order they were first seen
    /// since the previous flush, each series' partials ordered by
    /// (resolution, window start, late). Deterministic for a given stream.
    pub partials: Vec<PartialRollup>,
    /// Each tenant's high-water mark (latest event time seen), to store with
    /// the partials and give back to a restarted engine with
    /// [`Aggregator::restore_high_water`](super::Aggregator::restore_high_water)
    /// so it judges lateness as the old one did.
    pub high_water: Vec<(Tenant, Timestamp)>,
}

impl Flush {
    /// The key to store the partials under: the first batch id (unique per
    /// flush, since every batch is in exactly one flush); `None` for an
    /// empty flush.
    pub fn key(&self) -> Option<BatchId> {
        self.batches.first().copied()
    }
}

/// Merges partial rollups by key (compaction, or a query over partials
/// that were not compacted yet). Exact for any order of `partials`.
///
/// # Errors
/// [`MergeError`] when two partials of one key were built with different
/// sketch settings (a config change mid-window); nothing is returned then.
pub fn merge_partials<'a>(
    partials: impl IntoIterator<Item = &'a PartialRollup>,
) -> Result<BTreeMap<RollupKey, Rollup>, MergeError> {
    let mut out: BTreeMap<RollupKey, Rollup> = BTreeMap::new();
    for p in partials {
        match out.get_mut(&p.key) {
            Some(r) => r.merge(&p.rollup)?,
            None => {
                out.insert(p.key.clone(), p.rollup.clone());
            }
        }
    }
    Ok(out)
}
