//! Log blocks: how log records are stored.
//!
//! Why blocks and not a row per record: measured on the project's machine, a
//! row per record with a few secondary indexes writes ~60k records/s and
//! per-record full-text indexes far less, while compressed blocks with
//! summaries write several hundred thousand per second and still answer the
//! queries log UIs make (newest page, severity, host, a rare token) quickly,
//! because the summaries let a query skip almost every block unread. The
//! same idea drives VictoriaLogs, Loki and Quickwit.
//!
//! - [`build_blocks`] cuts a batch into [`EncodedBlock`]s (parallel).
//! - [`encode`](encode_payload) / [`DecodedBlock`]: the columnar payload.
//! - [`BlockSummary`]: time span, counts per severity, host/app/source
//!   sets, and a token [`Bloom`] filter, kept as columns of the block row.
//! - [`tokenizer`]: the one tokenizer for the filter and for verification.
//! - [`BlockId`]: derived from the batch, for idempotent writes.

mod block_id;
mod bloom;
mod bloom_slices;
mod builder;
mod decode;
mod encode;
mod error;
mod hashing;
mod json;
mod summary;
mod token_memo;
pub mod tokenizer;
mod wire;

pub use block_id::BlockId;
pub use bloom::Bloom;
pub use bloom_slices::{BloomSlices, GROUP_MEMBERS};
pub use builder::{BlockOptions, EncodedBlock, build_blocks, encode_block};
pub use decode::{
    DecodedBlock, Dict, DictLookup, Fields, MAX_BLOCK_RECORDS, MAX_FRAME_BYTES,
    SEVERITY_LIST_SHARE, decode_times,
};
pub(crate) use encode::encode_frame;
pub use encode::{PAYLOAD_VERSION, encode_payload};
pub use error::BlockError;
pub use json::{write_json_rows, write_json_str};
pub use summary::{BlockSummary, EXACT_SET_MAX, NO_SEVERITY, ValueSet, field_hash};
#[cfg(test)]
pub(crate) use token_memo::MIN_MEMO_RECORDS;
pub(crate) use token_memo::TokenHits;
pub use tokenizer::{query_tokens, token_hash};

#[cfg(test)]
mod tests;
