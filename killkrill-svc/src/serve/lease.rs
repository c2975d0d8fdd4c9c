//! Work that must run on one process at a time: a lease in the shared
//! database.
//!
//! Every receiver has the same `[[scrape.targets]]`; without coordination N
//! receivers would scrape each target N times. So scraping runs only on the
//! holder of the `scrape` lease: a row of `cluster_leases` (owner id and
//! expiry) in the database the processes share. The holder renews it every
//! third of `scrape.lease_ttl_ms`; every other receiver tries at the same
//! pace and takes it over once it lapses (the holder was killed or cut off
//! from the database), so scraping resumes within one lease time. A holder
//! that cannot renew (database error) stops scraping at once, before its
//! lease can lapse and be taken, and one that shuts down gives the lease up
//! so another takes over at its next try.
//!
//! The database, not Redis, holds the lease: every process has the
//! database (the queue may be anything), and a single `killkrill serve` on
//! SQLite simply always holds it. Expiry compares the processes' wall
//! clocks (ms since the epoch): keep them in sync (NTP) to well within the
//! lease time.

use std::sync::Arc;
use std::time::Duration;

use killkrill_core::pipeline::Shutdown;
use killkrill_store::Store;
use metrics::{counter, gauge};
use tokio::sync::watch;
use tokio::task::JoinHandle;

/// 1 while this process holds the lease (`name`).
pub const LEASE_HELD: &str = "killkrill_lease_held";
/// Times this process took a lease it did not hold (`name`).
pub const LEASE_ACQUIRED: &str = "killkrill_lease_acquired_total";
/// Lease attempts that failed on a database error (`name`).
pub const LEASE_ERRORS: &str = "killkrill_lease_errors_total";

/// A lease this process competes for.
#[derive(Clone)]
pub struct Lease {
    name: &'static str,
    owner: Arc<str>,
    held: watch::Receiver<bool>,
}

impl std::fmt::Debug for Lease {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.debug_struct("Lease")
            .field("name", &self.name)
            .field("owner", &self.owner)
            .field("held", &*self.held.borrow())
            .finish()
    }
}

impl Lease {
    /// The lease's name (`scrape`).
    pub fn name(&self) -> &str {
        self.name
    }

    /// This process's owner id in `cluster_leases`.
    pub fn owner(&self) -> &str {
        &self.owner
    }

    /// Whether this process holds it now.
    pub fn held(&self) -> bool {
        *self.held.borrow()
    }

    /// Follows [`Lease::held`].
    pub fn watch(&self) -> watch::Receiver<bool> {
        self.held.clone()
    }
}

fn now_ms() -> i64 {
    killkrill_core::event::Timestamp::now().as_nanos() / 1_000_000
}

/// A new owner id: process id and 64 random bits (unique across restarts
/// and hosts).
pub fn new_owner_id() -> String {
    format!("pid{}-{:016x}", std::process::id(), rand::random::<u64>())
}

/// Tries for the lease `name` once now (so a process that can take it
/// starts working at once), then keeps trying or renewing every `ttl / 3`
/// until `shutdown`, when it gives the lease up if held.
pub async fn start(
    store: Store,
    name: &'static str,
    ttl: Duration,
    mut shutdown: Shutdown,
) -> (Lease, JoinHandle<()>) {
    let owner: Arc<str> = new_owner_id().into();
    let ttl_ms = i64::try_from(ttl.as_millis()).unwrap_or(i64::MAX);
    let cluster = store.cluster();
    let attempt = {
        let cluster = cluster.clone();
        let owner = owner.clone();
        move |was_held: bool| {
            let cluster = cluster.clone();
            let owner = owner.clone();
            async move {
                match cluster.try_lease(name, &owner, now_ms(), ttl_ms).await {
                    Ok(h) => {
                        if h && !was_held {
                            counter!(LEASE_ACQUIRED, "name" => name).increment(1);
                            tracing::info!(lease = name, owner = %owner, "lease taken");
                        } else if !h && was_held {
                            tracing::warn!(lease = name, owner = %owner, "lease lost");
                        }
                        h
                    }
                    Err(e) => {
                        counter!(LEASE_ERRORS, "name" => name).increment(1);
                        tracing::warn!(lease = name, error = %e, "lease attempt failed; not holding it");
                        false
                    }
                }
            }
        }
    };
    let first = attempt(false).await;
    gauge!(LEASE_HELD, "name" => name).set(f64::from(u8::from(first)));
    let (tx, rx) = watch::channel(first);
    let lease = Lease {
        name,
        owner: owner.clone(),
        held: rx,
    };
    let every = (ttl / 3).max(Duration::from_millis(100));
    let task = tokio::spawn(async move {
        loop {
            tokio::select! {
                () = shutdown.requested() => break,
                () = tokio::time::sleep(every) => {}
            }
            let was = *tx.borrow();
            // A renewal that cannot finish before the lease would lapse
            // counts as lost: stop working rather than risk two holders.
            let h = tokio::time::timeout(ttl / 2, attempt(was))
                .await
                .unwrap_or(false);
            gauge!(LEASE_HELD, "name" => name).set(f64::from(u8::from(h)));
            tx.send_replace(h);
        }
        if tx.send_replace(false) {
            gauge!(LEASE_HELD, "name" => name).set(0.0);
            match cluster.release_lease(name, &owner).await {
                Ok(_) => tracing::info!(lease = name, owner = %owner, "lease given up"),
                Err(e) => {
                    tracing::warn!(lease = name, error = %e, "giving the lease up failed; it lapses")
                }
            }
        }
    });
    (lease, task)
}
