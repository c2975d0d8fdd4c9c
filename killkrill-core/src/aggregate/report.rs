//! What [`Aggregator::aggregate`](super::Aggregator::aggregate) tells the
//! caller about one batch: nothing it did to a sample is silent.

use super::window::ResolutionSet;

/// Why a sample was not aggregated.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Hash)]
pub enum RejectReason {
    /// The sample has no timestamp (receivers fill it in; the engine cannot
    /// place it in a window without one).
    MissingTimestamp,
    /// NaN (including Prometheus staleness markers) or ±Inf: rollups
    /// aggregate finite values only; the raw sample store keeps these.
    NonFinite,
    /// It would create a series beyond `max_series_per_metric`.
    Cardinality,
    /// It would open windows beyond `max_open_windows`.
    OpenWindows,
}

impl RejectReason {
    /// The name used in self-metrics labels.
    pub const fn name(self) -> &'static str {
        match self {
            RejectReason::MissingTimestamp => "missing_timestamp",
            RejectReason::NonFinite => "non_finite",
            RejectReason::Cardinality => "cardinality",
            RejectReason::OpenWindows => "open_windows",
        }
    }
}

/// A rejected sample.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub struct Rejection {
    /// Index of the sample in the batch.
    pub index: usize,
    /// Why.
    pub reason: RejectReason,
}

/// A late sample handed back under [`LatePolicy::Output`](super::LatePolicy::Output).
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub struct LateSample {
    /// Index of the sample in the batch.
    pub index: usize,
    /// The resolutions (indices into
    /// [`Aggregator::resolutions`](super::Aggregator::resolutions)) whose
    /// window had closed; the others aggregated the sample normally.
    pub resolutions: ResolutionSet,
}

/// The outcome of one batch.
#[derive(Debug, Clone, Default, PartialEq, Eq)]
pub struct BatchReport {
    /// Samples aggregated into at least one on-time window.
    pub aggregated: u64,
    /// Samples late for at least one resolution (whatever the policy).
    pub late_count: u64,
    /// Late samples to route elsewhere (only under `LatePolicy::Output`).
    pub late: Vec<LateSample>,
    /// Samples not aggregated at all, with the reason.
    pub rejected: Vec<Rejection>,
}
