//! What a log query asks for and what it gets.

use std::sync::Arc;

use super::Cursor;
use crate::event::{LogRecord, Severity, Tenant};
use crate::logblock::{BlockId, DecodedBlock};
use crate::storage::TimeRange;

/// The hard cap on a page.
pub const MAX_PAGE_SIZE: usize = 10_000;

/// Result order.
pub type Order = crate::storage::ScanOrder;

/// Record filters; all given ones must hold.
#[derive(Debug, Clone, Default, PartialEq, Eq)]
pub struct LogFilter {
    /// This severity or a more severe one (syslog code ≤ this one's).
    /// Records without a severity never match a severity filter.
    pub min_severity: Option<Severity>,
    /// Exact host.
    pub host: Option<String>,
    /// Exact app.
    pub app: Option<String>,
    /// Exact source.
    pub source: Option<String>,
    /// `(name, value)` pairs, each of which must equal a structured-data
    /// parameter named `sdid.param` or an attribute `name` (compared as the
    /// attribute's text form, see [`FieldValue::to_text`](crate::event::FieldValue::to_text)).
    pub fields: Vec<(String, String)>,
    /// Full text: every token (see [`tokenizer`](crate::logblock::tokenizer))
    /// must occur in the message, a structured-data value or an attribute
    /// value. Case-insensitive for ASCII. A text without tokens matches all.
    pub text: Option<String>,
}

/// One page of a log search.
#[derive(Debug, Clone, PartialEq)]
pub struct LogQuery {
    /// Whose records.
    pub tenant: Tenant,
    /// Which instants.
    pub range: TimeRange,
    /// Which records.
    pub filter: LogFilter,
    /// Newest or oldest first.
    pub order: Order,
    /// Page size, 1..=[`MAX_PAGE_SIZE`].
    pub limit: usize,
    /// Continue after the previous page.
    pub cursor: Option<Cursor>,
}

/// A page of records.
#[derive(Debug, Clone, PartialEq, Default)]
pub struct LogPage {
    /// Records in the query's order.
    pub records: Vec<LogRecord>,
    /// Present when more records may follow.
    pub next_cursor: Option<Cursor>,
    /// Blocks opened: read and decoded, or taken from the store's cache of
    /// decoded blocks (for metrics and tests).
    pub blocks_decoded: usize,
}

/// One record of a page, as a place in a decoded block (nothing copied).
#[derive(Debug, Clone)]
pub struct PageRow {
    /// The block that holds it (shared with the store's cache).
    pub block: Arc<DecodedBlock>,
    /// The block's id, to name it in errors.
    pub block_id: BlockId,
    /// The record's index in the block.
    pub index: usize,
}

/// A page as rows: what [`query_logs`](super::query_logs) materialises into
/// [`LogRecord`]s, and what the REST API writes as JSON straight from the
/// blocks ([`DecodedBlock::write_json`]).
#[derive(Debug, Clone, Default)]
pub struct RowPage {
    /// Records in the query's order.
    pub rows: Vec<PageRow>,
    /// Present when more records may follow.
    pub next_cursor: Option<Cursor>,
    /// As [`LogPage::blocks_decoded`].
    pub blocks_decoded: usize,
}
