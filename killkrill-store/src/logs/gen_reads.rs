//! Generation reads shared between concurrent queries of a tenant.
//!
//! Every summary page the index answers starts with a point read of the
//! tenant's `(gen, deleted_gen)` (see `index_sync.rs`). Under load that read
//! was a large share of a cheap query: on SQLite a hop to a connection's
//! worker thread and back, plus the WAL read locks. Queries of one tenant
//! now share reads, without weakening what a read says: a query may only
//! use a read that **started after the query asked**, so the answer still
//! reflects every transaction committed before the query began.
//!
//! One read per tenant is in flight at a time. A query arriving while none
//! is running starts one; a query arriving while one runs (it began before
//! the query, so it does not count) waits for it to end and for the next
//! one, which the first such waiter starts and every other waiter shares.
//! A failed or cancelled read hands over to a waiter, which starts another.

use std::collections::HashMap;
use std::sync::{Arc, Mutex};

use killkrill_core::event::Tenant;
use killkrill_core::storage::StoreError;
use tokio::sync::Notify;

/// A tenant's `(gen, deleted_gen)`.
pub(crate) type Gens = (i64, i64);

#[derive(Debug, Default)]
struct State {
    /// Reads started so far (the number of the newest).
    started: u64,
    /// The number of the newest read that succeeded, and its value.
    finished: u64,
    value: Gens,
    running: bool,
}

#[derive(Debug, Default)]
struct Slot {
    state: Mutex<State>,
    done: Notify,
}

/// Clears `running` and wakes the waiters when the read ends, however it
/// ends (a cancelled query drops its read half way).
struct Running<'a>(&'a Slot);

impl Drop for Running<'_> {
    fn drop(&mut self) {
        if let Ok(mut g) = self.0.state.lock() {
            g.running = false;
        }
        self.0.done.notify_waiters();
    }
}

/// See the module docs.
#[derive(Debug, Default)]
pub(crate) struct GenReads {
    slots: Mutex<HashMap<Tenant, Arc<Slot>>>,
}

/// Counter of generation reads a query took from another query's read.
const SHARED: &str = "killkrill_store_log_gen_reads_shared_total";

impl GenReads {
    fn slot(&self, tenant: &Tenant) -> Option<Arc<Slot>> {
        let mut g = self.slots.lock().ok()?;
        if let Some(s) = g.get(tenant) {
            return Some(s.clone());
        }
        let s = Arc::new(Slot::default());
        g.insert(tenant.clone(), s.clone());
        Some(s)
    }

    /// `(gen, deleted_gen)` of `tenant` from a read (`read`, or another
    /// query's) that started after this call.
    pub(crate) async fn read<F, Fut>(&self, tenant: &Tenant, read: F) -> Result<Gens, StoreError>
    where
        F: FnOnce() -> Fut,
        Fut: Future<Output = Result<Gens, StoreError>>,
    {
        let Some(slot) = self.slot(tenant) else {
            return read().await; // poisoned: read alone
        };
        // Any read numbered `need` or later starts after this point.
        let need = slot.state.lock().ok().map(|g| g.started + 1);
        let Some(need) = need else {
            return read().await;
        };
        let mut read = Some(read);
        loop {
            let notified = slot.done.notified();
            tokio::pin!(notified);
            // What to do, decided under the lock (not held across awaits).
            let lead = {
                let Ok(mut g) = slot.state.lock() else { break };
                if g.finished >= need {
                    metrics::counter!(SHARED).increment(1);
                    return Ok(g.value);
                }
                if g.running {
                    notified.as_mut().enable();
                    None
                } else {
                    g.running = true;
                    g.started += 1;
                    Some(g.started)
                }
            };
            let Some(mine) = lead else {
                notified.await;
                continue;
            };
            let _running = Running(&slot);
            let Some(f) = read.take() else { break };
            let r = f().await;
            if let Ok(v) = r
                && let Ok(mut g) = slot.state.lock()
            {
                g.finished = mine;
                g.value = v;
            }
            return r;
        }
        match read.take() {
            Some(f) => f().await,
            None => Err(StoreError::new(
                killkrill_core::storage::ErrorKind::Fatal,
                "generation read lock poisoned",
            )),
        }
    }
}

#[cfg(test)]
#[allow(clippy::unwrap_used)]
mod tests {
    use super::*;
    use std::sync::atomic::{AtomicU64, Ordering};

    #[tokio::test(flavor = "multi_thread", worker_threads = 2)]
    async fn shared_only_with_reads_that_started_later() {
        let reads = Arc::new(GenReads::default());
        let t = Tenant::default();
        // The "database": its generation, and how many reads it served.
        let db = Arc::new(AtomicU64::new(1));
        let served = Arc::new(AtomicU64::new(0));
        let gate = Arc::new(tokio::sync::Semaphore::new(0));
        let read =
            |db: Arc<AtomicU64>, served: Arc<AtomicU64>, gate: Arc<tokio::sync::Semaphore>| {
                move || async move {
                    let g = db.load(Ordering::SeqCst) as i64;
                    gate.acquire().await.unwrap().forget();
                    served.fetch_add(1, Ordering::SeqCst);
                    Ok((g, 0))
                }
            };
        // A read in flight sees generation 1...
        let first = tokio::spawn({
            let (reads, t, f) = (
                reads.clone(),
                t.clone(),
                read(db.clone(), served.clone(), gate.clone()),
            );
            async move { reads.read(&t, f).await.unwrap() }
        });
        tokio::time::sleep(std::time::Duration::from_millis(50)).await;
        // ...then a write commits, then ten queries ask.
        db.store(2, Ordering::SeqCst);
        let mut later = Vec::new();
        for _ in 0..10 {
            let (reads, t, f) = (
                reads.clone(),
                t.clone(),
                read(db.clone(), served.clone(), gate.clone()),
            );
            later.push(tokio::spawn(
                async move { reads.read(&t, f).await.unwrap() },
            ));
        }
        tokio::time::sleep(std::time::Duration::from_millis(50)).await;
        gate.add_permits(100);
        assert_eq!(first.await.unwrap(), (1, 0));
        for h in later {
            assert_eq!(
                h.await.unwrap(),
                (2, 0),
                "a query saw a read older than itself"
            );
        }
        assert_eq!(
            served.load(Ordering::SeqCst),
            2,
            "the ten later queries shared one read"
        );
        // A failed read is not shared; the next query reads again.
        let r = reads
            .read(&t, || async {
                Err(StoreError::new(
                    killkrill_core::storage::ErrorKind::Retryable,
                    "down",
                ))
            })
            .await;
        assert!(r.is_err());
        let (reads2, t2) = (reads.clone(), t.clone());
        let f = read(db.clone(), served.clone(), gate.clone());
        assert_eq!(reads2.read(&t2, f).await.unwrap(), (2, 0));
        assert_eq!(served.load(Ordering::SeqCst), 3);
    }

    #[tokio::test(flavor = "multi_thread", worker_threads = 2)]
    async fn a_cancelled_read_hands_over() {
        let reads = Arc::new(GenReads::default());
        let t = Tenant::default();
        let stuck = tokio::spawn({
            let (reads, t) = (reads.clone(), t.clone());
            async move {
                reads
                    .read(&t, || async {
                        std::future::pending::<()>().await;
                        Ok((9, 9))
                    })
                    .await
            }
        });
        tokio::time::sleep(std::time::Duration::from_millis(20)).await;
        let waiter = tokio::spawn({
            let (reads, t) = (reads.clone(), t.clone());
            async move { reads.read(&t, || async { Ok((3, 1)) }).await.unwrap() }
        });
        tokio::time::sleep(std::time::Duration::from_millis(20)).await;
        stuck.abort();
        let got = tokio::time::timeout(std::time::Duration::from_secs(5), waiter)
            .await
            .expect("the waiter took over")
            .unwrap();
        assert_eq!(got, (3, 1));
    }
}
