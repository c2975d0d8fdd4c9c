//! Errors of remote write decoding: what was wrong and in which series.

use crate::snappy::SnappyError;

/// A remote write body that could not be decoded. Nothing of a failed request is
/// kept: the sender retries or drops the whole request, as the protocol intends.
#[derive(Debug, Clone, PartialEq, thiserror::Error)]
pub enum RemoteWriteError {
    /// The snappy layer failed or was over the size limit.
    #[error(transparent)]
    Snappy(#[from] SnappyError),
    /// The decompressed bytes are not the protobuf message.
    #[error("invalid protobuf {message}: {detail}")]
    Protobuf {
        /// Which message was expected.
        message: &'static str,
        /// prost's description (field path and problem).
        detail: String,
    },
    /// More series than allowed in one request.
    #[error("request has more than the limit of {max} series")]
    TooManySeries {
        /// The limit.
        max: usize,
    },
    /// More samples (float samples plus histogram bucket samples) than allowed.
    #[error("request has more than the limit of {max} samples (reached at series {series})")]
    TooManySamples {
        /// Index of the series at which the limit was passed.
        series: usize,
        /// The limit.
        max: usize,
    },
    /// The decoded samples would take more memory than allowed (see
    /// [`Limits::max_output_bytes`](super::Limits::max_output_bytes)).
    #[error(
        "request would decode into more than the limit of {max} bytes of memory (reached at series {series}; a series' labels are copied into each of its samples): send fewer samples per series, shorter labels, or smaller requests"
    )]
    TooLargeDecoded {
        /// Index of the series at which the limit was passed.
        series: usize,
        /// The limit.
        max: usize,
    },
    /// One series is invalid.
    #[error("series {series}: {problem}")]
    Series {
        /// 0-based index of the series in the request.
        series: usize,
        /// What is wrong with it.
        problem: SeriesProblem,
    },
}

/// What is wrong with one series.
#[derive(Debug, Clone, PartialEq, thiserror::Error)]
pub enum SeriesProblem {
    /// No `__name__` label.
    #[error("no __name__ label (every series needs a metric name)")]
    MissingName,
    /// A label with an empty name.
    #[error("label {0} has an empty name")]
    EmptyLabelName(usize),
    /// The same label name twice.
    #[error("duplicate label name {0:?}")]
    DuplicateLabel(String),
    /// More labels than allowed.
    #[error("{count} labels, more than the limit of {max}")]
    TooManyLabels {
        /// Labels on the series.
        count: usize,
        /// The limit.
        max: usize,
    },
    /// A label name or value longer than allowed.
    #[error("label {label}: {part} is {len} bytes, more than the limit of {max}")]
    LabelTooLong {
        /// The label name (cut to its first 64 bytes when longer).
        label: String,
        /// `name` or `value`.
        part: &'static str,
        /// Its length.
        len: usize,
        /// The limit.
        max: usize,
    },
    /// A 2.0 `labels_refs` list of odd length.
    #[error("{field} has {len} entries; it must hold name/value pairs (an even number)")]
    OddRefs {
        /// `labels_refs` or `exemplars[i].labels_refs`.
        field: String,
        /// Its length.
        len: usize,
    },
    /// A 2.0 symbol reference past the end of the symbols table.
    #[error("{field} refers to symbol {reference}, but the request has only {symbols} symbols")]
    SymbolOutOfRange {
        /// Which reference (`labels_refs[3]`, `metadata.help_ref`, ...).
        field: String,
        /// The reference.
        reference: u32,
        /// Length of the symbols table.
        symbols: usize,
    },
    /// A timestamp that does not fit in 64-bit nanoseconds.
    #[error("{field}: timestamp {millis} ms is outside 1677..2262")]
    Timestamp {
        /// `samples[0]`, `exemplars[1]`, `histograms[0]`.
        field: String,
        /// The value sent.
        millis: i64,
    },
    /// A 2.0 series with both samples and histograms.
    #[error("has both samples and histograms; a 2.0 series carries one kind")]
    SamplesAndHistograms,
    /// An invalid native histogram.
    #[error("histograms[{index}]: {problem}")]
    Histogram {
        /// Index in the series' histograms.
        index: usize,
        /// What is wrong.
        problem: String,
    },
}
