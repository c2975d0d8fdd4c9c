//! The storage boundary (the DAL): what a store must do, in terms of the
//! event model and log blocks, never in terms of a database driver.
//!
//! Why the traits are this small: logs are stored as blocks (see
//! [`crate::logblock`]), so a store only has to keep opaque payloads with a
//! few summary columns, list those summaries by tenant and time, fetch
//! payloads by id, replace a set of blocks atomically (compaction) and delete
//! whole blocks (retention). Everything clever — pruning, decoding,
//! filtering, merging, pagination — is in [`crate::logquery`] and runs the
//! same over every backend, so three databases share nearly all their SQL and
//! an in-memory store ([`MemoryLogStore`]) exercises the same engine in tests.
//!
//! Metrics follow the same idea: [`MetricStore`] keeps a series index and
//! samples in compressed chunks ([`sample_codec`], built by
//! [`metric_chunk`]); label matching ([`LabelMatcher`]) and chunk decoding
//! run in core, so the SQL only filters by tenant, name and time.
//! [`MemoryMetricStore`] is the model the SQL stores are tested against.

mod compaction;
mod dead_letter;
mod error;
mod label_matcher;
mod log_store;
mod memory;
pub mod metric_chunk;
mod metric_memory;
mod metric_store;
mod range;
mod retention;
pub mod sample_codec;

pub use compaction::{CompactionOptions, CompactionReport, compact_tenant};
pub use dead_letter::{DeadLetter, DeadLetterId, DeadLetterStore, NewDeadLetter};
pub use error::{ErrorKind, StoreError};
pub use label_matcher::{
    LabelMatcher, MAX_REGEX_LEN, MAX_REGEX_PROGRAM, MatchOp, MatcherError, matches_all,
};
pub use log_store::{
    BlockTimes, DecodedResult, LogStore, ScanOrder, SummaryPage, SummaryRequest, TimesResult,
    WriteReport,
};
pub use memory::MemoryLogStore;
pub use metric_memory::MemoryMetricStore;
pub use metric_store::{
    MAX_METADATA_TEXT_LEN, MAX_METRIC_NAME_LEN, MetricRetentionReport, MetricStore,
    MetricWriteReport, RollupFlush, RollupFlushOutcome, SEEN_GRANULARITY, Series, SeriesId,
    SeriesInfo, SeriesRollups, prepare_metadata, seen_bounds, select_matching, series_id,
};
pub use range::TimeRange;
pub use retention::{RetentionPolicy, RetentionReport, apply_retention};
