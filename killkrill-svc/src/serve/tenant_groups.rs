//! `[queue.tenant_groups]`: one Redis stream per tenant group, behind
//! [`TenantGroupQueue`], which routes each batch to its tenant's group and
//! dequeues only from the groups `queue.groups` (`--queue-groups`) names.

use std::sync::Arc;
use std::time::Duration;

use killkrill_core::event::Tenant;
use killkrill_core::pipeline::{DeadLetter, MeteredQueue, Queue, QueueError};
use killkrill_store::queue::config::RedisQueueSettings;
use killkrill_store::queue::{RedisQueueOptions, RedisStreamsQueue, TenantGroupQueue};

use crate::config::QueueConfig;

/// The group of every tenant not listed.
pub const DEFAULT_GROUP: &str = "default";

/// Opens one stream per group (the listed ones and `default`) and the
/// router over them, counted by [`MeteredQueue`].
///
/// # Errors
/// [`QueueError`] when Redis cannot be reached or the groups are invalid
/// (already checked by the configuration's validation).
pub async fn open(
    q: &QueueConfig,
    r: RedisQueueSettings,
    dead_letter: Arc<dyn DeadLetter>,
) -> Result<Arc<dyn Queue>, QueueError> {
    let mut names: Vec<String> = q.tenant_groups.keys().cloned().collect();
    if !names.iter().any(|n| n == DEFAULT_GROUP) {
        names.push(DEFAULT_GROUP.to_owned());
    }
    let mut groups: Vec<(String, Arc<dyn Queue>)> = Vec::new();
    for name in &names {
        let rq = RedisStreamsQueue::connect(
            &r.url,
            RedisQueueOptions {
                tenant_group: name.clone(),
                dead_letter: Some(dead_letter.clone()),
                ..r.options()
            },
        )
        .await?;
        tracing::info!(stream = rq.key(), consumer = rq.consumer(), group = %name, "redis queue of a tenant group");
        groups.push((name.clone(), Arc::new(rq)));
    }
    let mut tenants = Vec::new();
    for (group, members) in &q.tenant_groups {
        let members = members
            .iter()
            .map(|t| Tenant::new(t))
            .collect::<Result<Vec<_>, _>>()
            .map_err(|e| config_error(format!("queue.tenant_groups.{group}: {e}")))?;
        tenants.push((group.clone(), members));
    }
    let served = q.served_groups();
    // A blocking read on one group at a time while all are empty: a batch
    // in another group waits at most this long.
    let slice = Duration::from_millis(r.poll_interval_ms / names.len().max(1) as u64);
    let router = TenantGroupQueue::new(groups, &tenants, DEFAULT_GROUP, &served, slice)
        .map_err(config_error)?;
    tracing::info!(served = ?router.served(), "tenant groups");
    Ok(Arc::new(MeteredQueue::new(router)))
}

fn config_error(message: String) -> QueueError {
    QueueError::Backend {
        message,
        kind: killkrill_core::pipeline::ErrorKind::Permanent,
    }
}
