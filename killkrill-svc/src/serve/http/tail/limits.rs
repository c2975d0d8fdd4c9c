//! How many live tails may run at once: `query.max_tails` in the process
//! and `query.max_tails_per_tenant` per tenant, SSE and gRPC together.
//!
//! Each tail polls the store, so an open tail is a standing cost; without a
//! per-tenant cap one API key could take every slot of the process. A tail
//! holds a [`TailPermit`] from before its connect scan until its poller
//! ends, for whatever reason (client gone, slow client, store error,
//! shutdown, a panic): the permit gives its slots back on drop, so no path
//! can leak one. A refusal is counted in
//! `killkrill_logs_tails_refused_total{limit}` and answered 429 with
//! `Retry-After` (REST) or `RESOURCE_EXHAUSTED` (gRPC), naming the limit.

use std::collections::HashMap;
use std::sync::{Arc, Mutex, PoisonError};

use killkrill_core::event::Tenant;
use killkrill_core::pipeline::Shutdown;
use metrics::{counter, gauge};
use tokio::sync::Notify;

use super::{TAILS_OPEN, TAILS_REFUSED};

/// Shared by all tails of the process: the concurrency limits, the commit
/// notification and the shutdown signal.
#[derive(Debug)]
pub struct TailHub {
    max: usize,
    max_per_tenant: usize,
    open: Mutex<Open>,
    pub(super) committed: Arc<Notify>,
    pub(super) shutdown: Shutdown,
}

#[derive(Debug, Default)]
struct Open {
    total: usize,
    by_tenant: HashMap<Tenant, usize>,
}

/// The limit that refused a tail.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum TailLimit {
    /// `query.max_tails`.
    Process,
    /// `query.max_tails_per_tenant`.
    Tenant,
}

impl TailLimit {
    /// The config key, as the `limit` of the refusal and the metric label.
    pub fn key(self) -> &'static str {
        match self {
            TailLimit::Process => "query.max_tails",
            TailLimit::Tenant => "query.max_tails_per_tenant",
        }
    }
}

/// A tail refused because a limit is reached.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub struct Refused {
    /// Which limit.
    pub limit: TailLimit,
    /// Its value.
    pub max: usize,
}

impl Refused {
    /// Seconds the client should wait before trying again.
    pub const RETRY_AFTER_SECS: u64 = 5;

    /// For the client.
    pub fn message(&self) -> String {
        match self.limit {
            TailLimit::Process => format!(
                "{} live tails are open on this server, the limit; retry later",
                self.max
            ),
            TailLimit::Tenant => format!(
                "{} live tails are open for this tenant, the limit; close one or retry later",
                self.max
            ),
        }
    }
}

/// One open tail's slots; given back on drop.
#[derive(Debug)]
pub struct TailPermit {
    hub: Arc<TailHub>,
    tenant: Tenant,
}

impl TailHub {
    /// At most `max` tails, `max_per_tenant` of one tenant; `committed` is
    /// notified by the log sink after each commit; every tail ends (reason
    /// `shutting_down`) when `shutdown` fires, so a graceful shutdown is not
    /// held open by endless streams.
    pub fn new(
        max: usize,
        max_per_tenant: usize,
        committed: Arc<Notify>,
        shutdown: Shutdown,
    ) -> Arc<Self> {
        Arc::new(TailHub {
            max,
            max_per_tenant,
            open: Mutex::new(Open::default()),
            committed,
            shutdown,
        })
    }

    /// Takes a slot for a tail of `tenant`.
    ///
    /// # Errors
    /// [`Refused`] naming the tenant limit when the tenant has
    /// `max_per_tenant` tails open, else the process limit when `max` are.
    pub fn acquire(self: &Arc<Self>, tenant: &Tenant) -> Result<TailPermit, Refused> {
        let mut open = self.open.lock().unwrap_or_else(PoisonError::into_inner);
        let mine = open.by_tenant.get(tenant).copied().unwrap_or(0);
        let refused = if mine >= self.max_per_tenant {
            Some(Refused {
                limit: TailLimit::Tenant,
                max: self.max_per_tenant,
            })
        } else if open.total >= self.max {
            Some(Refused {
                limit: TailLimit::Process,
                max: self.max,
            })
        } else {
            None
        };
        if let Some(r) = refused {
            drop(open);
            counter!(TAILS_REFUSED, "limit" => r.limit.key()).increment(1);
            return Err(r);
        }
        open.total += 1;
        *open.by_tenant.entry(tenant.clone()).or_insert(0) += 1;
        drop(open);
        gauge!(TAILS_OPEN).increment(1.0);
        Ok(TailPermit {
            hub: self.clone(),
            tenant: tenant.clone(),
        })
    }

    /// Tails open now: in the process, and of `tenant`.
    #[cfg(test)]
    fn open(&self, tenant: &Tenant) -> (usize, usize) {
        let open = self.open.lock().unwrap_or_else(PoisonError::into_inner);
        (open.total, open.by_tenant.get(tenant).copied().unwrap_or(0))
    }
}

impl Drop for TailPermit {
    fn drop(&mut self) {
        let mut open = self.hub.open.lock().unwrap_or_else(PoisonError::into_inner);
        open.total = open.total.saturating_sub(1);
        if let Some(n) = open.by_tenant.get_mut(&self.tenant) {
            *n = n.saturating_sub(1);
            if *n == 0 {
                open.by_tenant.remove(&self.tenant);
            }
        }
        drop(open);
        gauge!(TAILS_OPEN).decrement(1.0);
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    fn t(name: &str) -> Tenant {
        Tenant::new(name).unwrap()
    }

    #[test]
    fn tenant_then_process_limit_and_slots_come_back_on_drop() {
        let hub = TailHub::new(3, 2, Arc::new(Notify::new()), Shutdown::never());
        let (a, b, c) = (t("a"), t("b"), t("c"));
        let a1 = hub.acquire(&a).unwrap();
        let a2 = hub.acquire(&a).unwrap();
        let refused = |limit, max| Err::<(), _>(Refused { limit, max });
        assert_eq!(hub.acquire(&a).map(drop), refused(TailLimit::Tenant, 2));
        let b1 = hub.acquire(&b).unwrap();
        assert_eq!(hub.acquire(&c).map(drop), refused(TailLimit::Process, 3));
        // The tenant limit is named first when both are reached.
        assert_eq!(hub.acquire(&a).map(drop), refused(TailLimit::Tenant, 2));
        assert_eq!(hub.open(&a), (3, 2));
        drop(a1);
        assert_eq!(hub.open(&a), (2, 1));
        let c1 = hub.acquire(&c).unwrap();
        assert_eq!(hub.acquire(&a).map(drop), refused(TailLimit::Process, 3));
        drop((a2, b1, c1));
        assert_eq!(hub.open(&a), (0, 0));
        assert!(hub.open.lock().unwrap().by_tenant.is_empty());
    }
}
