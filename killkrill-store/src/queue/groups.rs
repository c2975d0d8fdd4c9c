//! Tenant groups: one queue (one Redis stream) per group of tenants, and a
//! router in front of them.
//!
//! Receivers enqueue a batch to the queue of its tenant's group (the group
//! that lists the tenant, else the default group). A worker process reads
//! only the groups it was assigned, so a noisy tenant group gets workers of
//! its own and cannot starve the others.
//!
//! ```toml
//! [queue.tenant_groups]
//! big = ["acme", "globex"]   # each of these tenants' batches go to stream `big`
//! # every other tenant: the default group (`queue.redis.tenant_group`)
//! ```
//!
//! Delivery ids carry the group's index in their top 8 bits (queues issue
//! ids below 2^120: sequence numbers, or Redis `ms-seq` with `ms < 2^48`),
//! so `ack` and `nack` reach the queue that issued them.

use std::collections::HashMap;
use std::sync::Arc;
use std::sync::atomic::{AtomicUsize, Ordering};
use std::time::Duration;

use async_trait::async_trait;
use killkrill_core::event::Tenant;
use killkrill_core::pipeline::{
    Batch, Delivery, DeliveryId, ErrorKind, Queue, QueueError, QueueStats,
};
use tokio::time::Instant;

use super::backend;

const SHIFT: u32 = 120;
/// Most groups (the index must fit in 8 bits).
pub const MAX_GROUPS: usize = 256;

/// A queue per tenant group behind one [`Queue`].
pub struct TenantGroupQueue {
    /// Every group's name and queue, in a stable order.
    groups: Vec<(String, Arc<dyn Queue>)>,
    /// Tenant -> index into `groups`.
    tenants: HashMap<Tenant, usize>,
    /// Index of the group of every tenant not listed.
    default: usize,
    /// Indexes of the groups this process dequeues from.
    serve: Vec<usize>,
    /// Where the next dequeue starts (round robin over `serve`).
    next: AtomicUsize,
    /// Longest blocking read on one group while all are empty.
    slice: Duration,
}

impl std::fmt::Debug for TenantGroupQueue {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.debug_struct("TenantGroupQueue")
            .field(
                "groups",
                &self.groups.iter().map(|g| &g.0).collect::<Vec<_>>(),
            )
            .field("default", &self.groups[self.default].0)
            .field("serve", &self.serve)
            .finish_non_exhaustive()
    }
}

impl TenantGroupQueue {
    /// Routes over `groups` (name, queue). `tenants` maps a group name to
    /// its tenants; a tenant not listed goes to `default`. `serve` names the
    /// groups this process dequeues from (empty: all of them). `slice` is
    /// the longest blocking read on one group while all are empty (how soon
    /// a batch in another group is noticed).
    ///
    /// # Errors
    /// A message when a name is unknown, a tenant is in two groups, or there
    /// are more than [`MAX_GROUPS`] groups.
    pub fn new(
        groups: Vec<(String, Arc<dyn Queue>)>,
        tenants: &[(String, Vec<Tenant>)],
        default: &str,
        serve: &[String],
        slice: Duration,
    ) -> Result<Self, String> {
        if groups.is_empty() || groups.len() > MAX_GROUPS {
            return Err(format!(
                "between 1 and {MAX_GROUPS} tenant groups, not {}",
                groups.len()
            ));
        }
        let index = |name: &str| {
            groups
                .iter()
                .position(|g| g.0 == name)
                .ok_or_else(|| format!("unknown tenant group {name:?}"))
        };
        let default = index(default)?;
        let mut map = HashMap::new();
        for (group, members) in tenants {
            let i = index(group)?;
            for t in members {
                if let Some(other) = map.insert(t.clone(), i)
                    && other != i
                {
                    return Err(format!(
                        "tenant {:?} is in two tenant groups ({:?} and {group:?})",
                        t.as_str(),
                        groups[other].0
                    ));
                }
            }
        }
        let serve = if serve.is_empty() {
            (0..groups.len()).collect()
        } else {
            serve
                .iter()
                .map(|n| index(n))
                .collect::<Result<Vec<_>, _>>()?
        };
        Ok(TenantGroupQueue {
            groups,
            tenants: map,
            default,
            serve,
            next: AtomicUsize::new(0),
            slice: slice.max(Duration::from_millis(1)),
        })
    }

    /// The group a tenant's batches go to.
    pub fn group_of(&self, tenant: &Tenant) -> &str {
        &self.groups[self.index_of(tenant)].0
    }

    /// The groups this process dequeues from.
    pub fn served(&self) -> Vec<&str> {
        self.serve
            .iter()
            .map(|&i| self.groups[i].0.as_str())
            .collect()
    }

    fn index_of(&self, tenant: &Tenant) -> usize {
        self.tenants.get(tenant).copied().unwrap_or(self.default)
    }

    fn split(id: DeliveryId) -> (usize, DeliveryId) {
        let v = id.as_u128();
        (
            (v >> SHIFT) as usize,
            DeliveryId::from_u128(v & ((1u128 << SHIFT) - 1)),
        )
    }

    fn tag(&self, group: usize, mut ds: Vec<Delivery>) -> Result<Vec<Delivery>, QueueError> {
        for d in &mut ds {
            let v = d.id.as_u128();
            if v >> SHIFT != 0 {
                return Err(backend(
                    format!(
                        "tenant group {:?}: delivery id {v} does not fit below 2^120",
                        self.groups[group].0
                    ),
                    ErrorKind::Permanent,
                ));
            }
            d.id = DeliveryId::from_u128(v | ((group as u128) << SHIFT));
        }
        Ok(ds)
    }

    /// One non-blocking pass over the served groups, from the round-robin
    /// start, until `max` deliveries are in hand.
    async fn sweep(&self, max: usize) -> Result<Vec<Delivery>, QueueError> {
        let start = self.next.fetch_add(1, Ordering::Relaxed);
        let mut out = Vec::new();
        for k in 0..self.serve.len() {
            let g = self.serve[(start + k) % self.serve.len()];
            let got = self.groups[g]
                .1
                .dequeue(max - out.len(), Duration::ZERO)
                .await?;
            out.extend(self.tag(g, got)?);
            if out.len() >= max {
                break;
            }
        }
        Ok(out)
    }
}

#[async_trait]
impl Queue for TenantGroupQueue {
    fn name(&self) -> &str {
        self.groups[0].1.name()
    }

    async fn enqueue(&self, batch: Batch, wait: Duration) -> Result<(), QueueError> {
        let g = self.index_of(&batch.tenant);
        self.groups[g].1.enqueue(batch, wait).await
    }

    async fn dequeue(&self, max: usize, wait: Duration) -> Result<Vec<Delivery>, QueueError> {
        let max = max.max(1);
        let deadline = Instant::now() + wait;
        loop {
            let got = self.sweep(max).await?;
            let left = deadline.saturating_duration_since(Instant::now());
            if !got.is_empty() || left.is_zero() {
                return Ok(got);
            }
            // All empty: block on one group for a slice, the next group next
            // time round.
            let g = self.serve[self.next.fetch_add(1, Ordering::Relaxed) % self.serve.len()];
            let got = self.groups[g].1.dequeue(max, left.min(self.slice)).await?;
            if !got.is_empty() {
                return self.tag(g, got);
            }
        }
    }

    async fn ack(&self, ids: &[DeliveryId]) -> Result<(), QueueError> {
        let mut by_group: Vec<Vec<DeliveryId>> = vec![Vec::new(); self.groups.len()];
        for &id in ids {
            let (g, inner) = Self::split(id);
            // An id no group issued: ignored, as every queue ignores them.
            if let Some(v) = by_group.get_mut(g) {
                v.push(inner);
            }
        }
        for (g, ids) in by_group.iter().enumerate() {
            if !ids.is_empty() {
                self.groups[g].1.ack(ids).await?;
            }
        }
        Ok(())
    }

    async fn nack(&self, id: DeliveryId, retry_after: Duration) -> Result<(), QueueError> {
        let (g, inner) = Self::split(id);
        match self.groups.get(g) {
            Some((_, q)) => q.nack(inner, retry_after).await,
            None => Ok(()),
        }
    }

    /// The sum over the served groups (what this process's workers face).
    async fn stats(&self) -> Result<QueueStats, QueueError> {
        let mut total = QueueStats {
            events: Some(0),
            bytes: Some(0),
            ..QueueStats::default()
        };
        for &g in &self.serve {
            let s = self.groups[g].1.stats().await?;
            total.batches += s.batches;
            total.in_flight += s.in_flight;
            total.events = total.events.zip(s.events).map(|(a, b)| a + b);
            total.bytes = total.bytes.zip(s.bytes).map(|(a, b)| a + b);
            total.oldest_unacked = match (total.oldest_unacked, s.oldest_unacked) {
                (Some(a), Some(b)) => Some(a.max(b)),
                (a, b) => a.or(b),
            };
        }
        Ok(total)
    }
}
