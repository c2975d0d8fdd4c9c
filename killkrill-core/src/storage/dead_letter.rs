//! Dead letters: batches that kept failing, kept with their error so an
//! operator can look at them, fix the cause and replay or drop them.
//!
//! Nothing is lost: a batch the pipeline gives up on lands here instead of
//! being dropped. The same payload failing again (same tenant, kind and
//! bytes) is one entry whose `attempts` grows and whose `last_failure` and
//! `error` move on, not a new row each time.

use async_trait::async_trait;

use super::StoreError;
use crate::event::{Tenant, Timestamp};

/// Row id of a dead letter.
#[derive(Debug, Clone, Copy, PartialEq, Eq, PartialOrd, Ord, Hash)]
pub struct DeadLetterId(pub i64);

/// A failure to record.
#[derive(Debug, Clone, PartialEq)]
pub struct NewDeadLetter {
    /// Whose batch.
    pub tenant: Tenant,
    /// What the payload is (`logs`, `metrics`, `rollups`, ...), so a replay
    /// tool knows how to decode it.
    pub kind: String,
    /// The batch, as the pipeline serialised it.
    pub payload: Vec<u8>,
    /// Why it failed (for operators; may contain internal text).
    pub error: String,
    /// How many attempts this failure report stands for.
    pub attempts: u32,
    /// When it failed.
    pub failed_at: Timestamp,
}

/// A stored dead letter.
#[derive(Debug, Clone, PartialEq)]
pub struct DeadLetter {
    /// Row id.
    pub id: DeadLetterId,
    /// Whose batch.
    pub tenant: Tenant,
    /// What the payload is.
    pub kind: String,
    /// The batch.
    pub payload: Vec<u8>,
    /// The latest error.
    pub error: String,
    /// Attempts so far, over every report of the same payload.
    pub attempts: u32,
    /// First failure.
    pub first_failure: Timestamp,
    /// Latest failure.
    pub last_failure: Timestamp,
}

/// Where dead letters are kept.
#[async_trait]
pub trait DeadLetterStore: Send + Sync {
    /// Records a failure; the same tenant, kind and payload update the
    /// existing entry (attempts added, latest error and time kept).
    ///
    /// # Errors
    /// Backend errors.
    async fn put_dead_letter(&self, letter: &NewDeadLetter) -> Result<DeadLetterId, StoreError>;

    /// Dead letters in id order after `after`, optionally of one tenant.
    ///
    /// # Errors
    /// Backend errors.
    async fn list_dead_letters(
        &self,
        tenant: Option<&Tenant>,
        after: Option<DeadLetterId>,
        limit: usize,
    ) -> Result<Vec<DeadLetter>, StoreError>;

    /// Deletes dead letters (replayed or dropped by an operator); returns how
    /// many existed.
    ///
    /// # Errors
    /// Backend errors.
    async fn delete_dead_letters(&self, ids: &[DeadLetterId]) -> Result<u64, StoreError>;
}
