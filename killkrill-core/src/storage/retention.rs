//! Retention: deleting whole blocks older than a tenant's maximum age.
//!
//! Retention works on blocks, not records: a block goes when its newest
//! record is older than the cutoff, so a record may outlive its age by at
//! most one block's time span (seconds to minutes in a steady stream, at
//! most the compaction span). Deleting whole rows is what keeps retention
//! cheap on every backend.
//!
//! The block-id registry (which makes rewrites idempotent) is trimmed by
//! *write* time with its own age: it must outlive the longest time a batch
//! can sit in a queue and be redelivered.

use super::{LogStore, StoreError};
use crate::event::{Tenant, Timestamp};

/// How long to keep what.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct RetentionPolicy {
    /// Maximum record age (nanoseconds) for tenants without their own.
    pub default_max_age_nanos: i64,
    /// Per-tenant maximum ages.
    pub per_tenant: Vec<(Tenant, i64)>,
    /// How long written block ids are remembered (nanoseconds since write).
    pub registry_max_age_nanos: i64,
}

impl RetentionPolicy {
    /// The maximum age for `tenant`.
    pub fn max_age(&self, tenant: &Tenant) -> i64 {
        self.per_tenant
            .iter()
            .find(|(t, _)| t == tenant)
            .map_or(self.default_max_age_nanos, |(_, a)| *a)
    }
}

/// What a retention pass deleted.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Default)]
pub struct RetentionReport {
    /// Blocks deleted.
    pub blocks: u64,
    /// Registry entries forgotten.
    pub registry_entries: u64,
}

/// Applies `policy` to every tenant with blocks (and to tenants named in it).
///
/// # Errors
/// The first store error; tenants before it were processed.
pub async fn apply_retention(
    store: &dyn LogStore,
    now: Timestamp,
    policy: &RetentionPolicy,
) -> Result<RetentionReport, StoreError> {
    let mut tenants = store.log_tenants().await?;
    for (t, _) in &policy.per_tenant {
        if !tenants.contains(t) {
            tenants.push(t.clone());
        }
    }
    let mut rep = RetentionReport::default();
    for t in tenants {
        let cutoff = now.saturating_add_nanos(-policy.max_age(&t));
        rep.blocks += store.delete_blocks_before(&t, cutoff).await?;
        let written_before = now.saturating_add_nanos(-policy.registry_max_age_nanos);
        rep.registry_entries += store.trim_block_registry(&t, written_before).await?;
    }
    Ok(rep)
}
