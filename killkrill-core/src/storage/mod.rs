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

mod compaction;
mod dead_letter;
mod error;
mod log_store;
mod memory;
mod range;
mod retention;

pub use compaction::{CompactionOptions, CompactionReport, compact_tenant};
pub use dead_letter::{DeadLetter, DeadLetterId, DeadLetterStore, NewDeadLetter};
pub use error::{ErrorKind, StoreError};
pub use log_store::{LogStore, ScanOrder, SummaryRequest, WriteReport};
pub use memory::MemoryLogStore;
pub use range::TimeRange;
pub use retention::{RetentionPolicy, RetentionReport, apply_retention};
