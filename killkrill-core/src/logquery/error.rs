//! Why a log query failed.

use crate::logblock::{BlockError, BlockId};
use crate::storage::{ErrorKind, StoreError};

/// A log query (or compaction) failed.
#[derive(Debug, thiserror::Error)]
pub enum QueryError {
    /// The query itself is wrong: a limit over the cap, a bad cursor, too
    /// many buckets. The text is safe to show a client.
    #[error("invalid query: {0}")]
    Invalid(String),
    /// The store failed.
    #[error(transparent)]
    Store(#[from] StoreError),
    /// A stored block does not decode.
    #[error("block {block} of tenant {tenant} does not decode: {source}")]
    Corrupt {
        /// Whose block.
        tenant: String,
        /// Which block.
        block: BlockId,
        /// What is wrong with it.
        #[source]
        source: BlockError,
    },
}

impl QueryError {
    /// What a caller can do about it, in the store's vocabulary.
    pub fn kind(&self) -> ErrorKind {
        match self {
            QueryError::Invalid(_) => ErrorKind::Invalid,
            QueryError::Store(e) => e.kind(),
            QueryError::Corrupt { .. } => ErrorKind::Fatal,
        }
    }
}
