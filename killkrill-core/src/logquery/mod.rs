//! The log query engine: filtered, ordered, paginated reads over blocks.
//!
//! It runs over any [`LogStore`](crate::storage::LogStore), so every backend
//! answers the same query the same way. The store only lists block
//! summaries in time order and hands out payloads; this module
//!
//! 1. prunes blocks by time range, severity counts, host/app/source sets and
//!    the token bloom filter ([`filter`]),
//! 2. fetches and decodes only the candidates (through
//!    [`LogStore::decoded_blocks`](crate::storage::LogStore::decoded_blocks),
//!    which the SQL store serves from a cache of decoded blocks), filters
//!    every record exactly (the bloom filter only ever says "maybe"),
//! 3. merges blocks whose time spans overlap, opening blocks in order of
//!    their newest (or oldest) record and stopping as soon as the next
//!    unopened block cannot hold anything that sorts before the page's last
//!    record ([`engine`]),
//! 4. paginates by a cursor on `(timestamp, id)` — never by offset, so a page
//!    costs the same at the end of a day as at its start, and records that
//!    arrive meanwhile neither shift nor repeat pages ([`cursor`]).
//!
//! [`volume`] counts records per time bucket and severity, from summaries
//! alone where that is exact.

pub mod cursor;
pub mod engine;
mod error;
pub mod filter;
mod needle;
mod query;
mod scan;
pub mod volume;

#[cfg(test)]
mod tests;

pub use cursor::Cursor;
pub use engine::{query_log_rows, query_logs};
pub use error::QueryError;
pub use query::{LogFilter, LogPage, LogQuery, MAX_PAGE_SIZE, Order, PageRow, RowPage};
pub use volume::{MAX_BUCKETS, VolumeBucket, VolumeQuery, VolumeResult, query_volume};

/// A pruning-free summary scan, for compaction.
pub(crate) fn scan_for_compaction<'a>(
    store: &'a dyn crate::storage::LogStore,
    tenant: &'a crate::event::Tenant,
    range: crate::storage::TimeRange,
    order: crate::storage::ScanOrder,
) -> scan::SummaryScan<'a> {
    scan::SummaryScan::new(store, tenant, range, order, None)
}
