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
//!
//! **Trusted values** (`logs.index_recheck_ms`, by default on SQLite only).
//! The slot also keeps what is *known* of the database's generations: the
//! last read's value, moved forward by this process's own commits
//! ([`GenReads::committed`]) as long as they follow on from it (a commit of
//! generation `known + 1`; any other number means another process committed
//! in between, and the value is forgotten). While the read behind it started
//! less than the trust period ago, a query takes the known value without a
//! round trip. So this process's commits are seen by its next query at
//! once, another process's within the trust period. A read that started
//! before the value was forgotten does not restore it.

use std::collections::HashMap;
use std::sync::{Arc, Mutex};
use std::time::{Duration, Instant};

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
    /// What is known of the database's generations (see the module docs).
    known: Option<Known>,
    /// Bumped whenever `known` is forgotten: a read that started under an
    /// older epoch does not set it.
    epoch: u64,
}

#[derive(Debug, Clone, Copy)]
struct Known {
    value: Gens,
    /// When the read behind it started.
    at: Instant,
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
/// Counter of generation reads a query did without, trusting the known value.
const TRUSTED: &str = "killkrill_store_log_gen_reads_trusted_total";

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
    /// query's) that started after this call; or, when `trust` is not zero,
    /// the known value while its read started less than `trust` ago.
    pub(crate) async fn read<F, Fut>(
        &self,
        tenant: &Tenant,
        trust: Duration,
        read: F,
    ) -> Result<Gens, StoreError>
    where
        F: FnOnce() -> Fut,
        Fut: Future<Output = Result<Gens, StoreError>>,
    {
        let Some(slot) = self.slot(tenant) else {
            return read().await; // poisoned: read alone
        };
        // Any read numbered `need` or later starts after this point.
        let need = slot.state.lock().ok().map(|g| {
            let trusted = g
                .known
                .filter(|k| !trust.is_zero() && k.at.elapsed() < trust);
            (g.started + 1, trusted)
        });
        let Some((need, trusted)) = need else {
            return read().await;
        };
        if let Some(k) = trusted {
            metrics::counter!(TRUSTED).increment(1);
            return Ok(k.value);
        }
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
                    Some((g.started, g.epoch))
                }
            };
            let Some((mine, epoch)) = lead else {
                notified.await;
                continue;
            };
            let _running = Running(&slot);
            let Some(f) = read.take() else { break };
            let at = Instant::now();
            let r = f().await;
            if let Ok(v) = r
                && let Ok(mut g) = slot.state.lock()
            {
                g.finished = mine;
                g.value = v;
                // A commit of this process that followed on from a value
                // newer than this read stays known; a value forgotten since
                // the read started is not restored by it.
                let newer = g.known.is_some_and(|k| k.value.0 > v.0);
                if g.epoch == epoch && !newer {
                    g.known = Some(Known { value: v, at });
                }
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

    /// This process committed generation `generation` of `tenant` (deleting
    /// blocks when `deleted`). The known value moves to it when it was
    /// `generation - 1`; otherwise another process committed in between
    /// and the known value is forgotten (the next query reads).
    pub(crate) fn committed(&self, tenant: &Tenant, generation: i64, deleted: bool) {
        let Some(slot) = self.existing(tenant) else {
            return;
        };
        let Ok(mut g) = slot.state.lock() else {
            return;
        };
        match g.known {
            Some(k) if k.value.0 == generation - 1 => {
                let value = (generation, if deleted { generation } else { k.value.1 });
                g.known = Some(Known { value, ..k });
            }
            Some(k) if k.value.0 >= generation => {} // a read already saw it
            _ => forget(&mut g),
        }
    }

    /// Forgets what is known of `tenant`'s generations: the next query
    /// reads them (a block the index listed was gone).
    pub(crate) fn forget(&self, tenant: &Tenant) {
        if let Some(slot) = self.existing(tenant)
            && let Ok(mut g) = slot.state.lock()
        {
            forget(&mut g);
        }
    }

    fn existing(&self, tenant: &Tenant) -> Option<Arc<Slot>> {
        self.slots.lock().ok()?.get(tenant).cloned()
    }
}

fn forget(g: &mut State) {
    g.known = None;
    g.epoch += 1;
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
            async move { reads.read(&t, Duration::ZERO, f).await.unwrap() }
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
            later.push(tokio::spawn(async move {
                reads.read(&t, Duration::ZERO, f).await.unwrap()
            }));
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
            .read(&t, Duration::ZERO, || async {
                Err(StoreError::new(
                    killkrill_core::storage::ErrorKind::Retryable,
                    "down",
                ))
            })
            .await;
        assert!(r.is_err());
        let (reads2, t2) = (reads.clone(), t.clone());
        let f = read(db.clone(), served.clone(), gate.clone());
        assert_eq!(reads2.read(&t2, Duration::ZERO, f).await.unwrap(), (2, 0));
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
                    .read(&t, Duration::ZERO, || async {
                        std::future::pending::<()>().await;
                        Ok((9, 9))
                    })
                    .await
            }
        });
        tokio::time::sleep(std::time::Duration::from_millis(20)).await;
        let waiter = tokio::spawn({
            let (reads, t) = (reads.clone(), t.clone());
            async move {
                reads
                    .read(&t, Duration::ZERO, || async { Ok((3, 1)) })
                    .await
                    .unwrap()
            }
        });
        tokio::time::sleep(std::time::Duration::from_millis(20)).await;
        stuck.abort();
        let got = tokio::time::timeout(std::time::Duration::from_secs(5), waiter)
            .await
            .expect("the waiter took over")
            .unwrap();
        assert_eq!(got, (3, 1));
    }

    /// A read that counts the reads it served and returns the database's
    /// generation, as `(gen, gen)`.
    fn counting(
        db: &Arc<AtomicU64>,
        served: &Arc<AtomicU64>,
    ) -> impl FnOnce() -> std::future::Ready<Result<Gens, StoreError>> {
        let (db, served) = (db.clone(), served.clone());
        move || {
            served.fetch_add(1, Ordering::SeqCst);
            let g = db.load(Ordering::SeqCst) as i64;
            std::future::ready(Ok((g, g)))
        }
    }

    #[tokio::test]
    async fn the_known_value_is_trusted_for_the_period_and_follows_own_commits() {
        let reads = GenReads::default();
        let t = Tenant::default();
        // Long enough that a loaded machine does not let it lapse between
        // two steps below.
        let trust = Duration::from_millis(1_500);
        let db = Arc::new(AtomicU64::new(1));
        let served = Arc::new(AtomicU64::new(0));
        let got = |served: &AtomicU64| served.load(Ordering::SeqCst);
        assert_eq!(
            reads.read(&t, trust, counting(&db, &served)).await.unwrap(),
            (1, 1)
        );
        // Another process commits 2: not seen while the read is trusted.
        db.store(2, Ordering::SeqCst);
        assert_eq!(
            reads.read(&t, trust, counting(&db, &served)).await.unwrap(),
            (1, 1)
        );
        assert_eq!(got(&served), 1);
        // Without trust, every query reads.
        assert_eq!(
            reads
                .read(&t, Duration::ZERO, counting(&db, &served))
                .await
                .unwrap(),
            (2, 2)
        );
        assert_eq!(got(&served), 2);
        // This process commits 3 (following on from 2) and 4 (deleting):
        // known at once, no read.
        db.store(4, Ordering::SeqCst);
        reads.committed(&t, 3, false);
        assert_eq!(
            reads.read(&t, trust, counting(&db, &served)).await.unwrap(),
            (3, 2)
        );
        reads.committed(&t, 4, true);
        assert_eq!(
            reads.read(&t, trust, counting(&db, &served)).await.unwrap(),
            (4, 4)
        );
        assert_eq!(got(&served), 2);
        // Another process commits 5, then this one 6: not following on, so
        // the value is forgotten and the next query reads.
        db.store(6, Ordering::SeqCst);
        reads.committed(&t, 6, false);
        assert_eq!(
            reads.read(&t, trust, counting(&db, &served)).await.unwrap(),
            (6, 6)
        );
        assert_eq!(got(&served), 3);
        // A commit a read already saw changes nothing.
        reads.committed(&t, 6, false);
        assert_eq!(
            reads.read(&t, trust, counting(&db, &served)).await.unwrap(),
            (6, 6)
        );
        assert_eq!(got(&served), 3);
        // A gone block forgets it too.
        reads.forget(&t);
        db.store(7, Ordering::SeqCst);
        assert_eq!(
            reads.read(&t, trust, counting(&db, &served)).await.unwrap(),
            (7, 7)
        );
        assert_eq!(got(&served), 4);
        // Past the period, the next query reads again.
        db.store(8, Ordering::SeqCst);
        tokio::time::sleep(trust + Duration::from_millis(50)).await;
        assert_eq!(
            reads.read(&t, trust, counting(&db, &served)).await.unwrap(),
            (8, 8)
        );
        assert_eq!(got(&served), 5);
    }

    #[tokio::test(flavor = "multi_thread", worker_threads = 2)]
    async fn a_read_started_before_a_forget_does_not_restore_the_value() {
        let reads = Arc::new(GenReads::default());
        let t = Tenant::default();
        let trust = Duration::from_secs(60);
        let db = Arc::new(AtomicU64::new(1));
        let served = Arc::new(AtomicU64::new(0));
        // Known (1, 1), then forgotten; a read starts (it sees 1) and is
        // held while this process commits 3 after another process's 2 (the
        // value is forgotten again, under the read).
        assert_eq!(
            reads.read(&t, trust, counting(&db, &served)).await.unwrap(),
            (1, 1)
        );
        reads.forget(&t);
        let gate = Arc::new(tokio::sync::Semaphore::new(0));
        let held = tokio::spawn({
            let (reads, t, gate, db) = (reads.clone(), t.clone(), gate.clone(), db.clone());
            async move {
                reads
                    .read(&t, trust, || async move {
                        let g = db.load(Ordering::SeqCst) as i64;
                        gate.acquire().await.unwrap().forget();
                        Ok((g, g))
                    })
                    .await
                    .unwrap()
            }
        });
        tokio::time::sleep(Duration::from_millis(50)).await;
        db.store(3, Ordering::SeqCst);
        reads.committed(&t, 3, false);
        gate.add_permits(1);
        assert_eq!(held.await.unwrap(), (1, 1));
        // The held read does not become the known value: the next query
        // reads, and sees this process's commit.
        assert_eq!(
            reads.read(&t, trust, counting(&db, &served)).await.unwrap(),
            (3, 3)
        );
        assert_eq!(served.load(Ordering::SeqCst), 2);
    }
}
