//! Why a block could not be built or read.

/// A block could not be encoded or decoded.
#[derive(Debug, Clone, PartialEq, Eq, thiserror::Error)]
pub enum BlockError {
    /// Stored bytes are damaged or from an unknown codec version.
    #[error("corrupt block {what} at byte {offset}: {detail}")]
    Corrupt {
        /// Which part (`payload`, `summary`, `bloom`, ...).
        what: &'static str,
        /// Byte offset inside that part.
        offset: usize,
        /// What was expected there.
        detail: String,
    },
    /// A record cannot be stored as given.
    #[error("record {index} of the batch {reason}")]
    InvalidRecord {
        /// Index in the batch handed to the builder.
        index: usize,
        /// What is wrong (`has no id`, `has no tenant`).
        reason: &'static str,
    },
    /// zstd failed to compress (out of memory or similar).
    #[error("compressing a block failed: {0}")]
    Compress(String),
}

impl BlockError {
    pub(crate) fn corrupt(what: &'static str, offset: usize, detail: impl Into<String>) -> Self {
        BlockError::Corrupt {
            what,
            offset,
            detail: detail.into(),
        }
    }
}
