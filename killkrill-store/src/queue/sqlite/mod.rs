//! The durable local queue: one SQLite file of its own, in WAL mode.
//!
//! One table holds every batch not yet acknowledged, as
//! [`BatchCodec`] bytes, with its delivery state:
//!
//! ```text
//! seq          INTEGER PRIMARY KEY AUTOINCREMENT  -- never reused: a stale id cannot hit a new entry
//! state        0 ready | 1 delivered (leased) | 2 delayed (nacked with a delay)
//! visible_at   ms since the epoch: a ready entry is deliverable from then on; a
//!              leased one comes back then (the visibility timeout)
//! deliveries   how often it was delivered (the worker's dead-letter rule)
//! ```
//!
//! Why it is built like this:
//! - **Durable when `enqueue` returns**: the insert is committed before it
//!   returns. With `synchronous = FULL` the WAL is fsynced at every commit,
//!   so nothing acknowledged is lost even on power failure; with `NORMAL`
//!   (the default, SQLite's advice for WAL) a killed *process* loses nothing
//!   and a power failure may lose the last commits before a checkpoint,
//!   for several times the throughput. `OFF` is for tests.
//! - **Group commit**: enqueues go to a writer task that commits every
//!   enqueue waiting at that moment (up to 256) in one transaction, so
//!   concurrent receivers share one commit — and with `FULL`, one fsync.
//!   Handing the batch to the writer is the last step before waiting, so a
//!   caller that gives up (a client hanging up) cannot leave its batch half
//!   counted: it is stored and counted, or neither.
//! - **Leases, not locks**: a delivery sets `state = 1` and `visible_at` to
//!   now plus the visibility timeout in the same commit, so a worker that
//!   dies holding it lets it come back after the timeout — after a restart
//!   too, since the clock is the wall clock and the state is on disk.
//! - **One connection, exclusive**: SQLite has one writer at a time and a
//!   dequeue is a write, so a single connection is the natural shape; it is
//!   opened in `EXCLUSIVE` locking mode, so a second process that opens the
//!   same file fails at once (the capacity counters live in this process)
//!   instead of both delivering the same batches.
//! - **Space comes back**: acknowledged rows are deleted; the file is created
//!   with `auto_vacuum = INCREMENTAL` and free pages are returned to the file
//!   system once more than `vacuum_free_pages` have piled up;
//!   `journal_size_limit` truncates the WAL after checkpoints.
//! - **Large bodies in segment files**: a body over `inline_max_bytes`
//!   (4,000 bytes by default: what does not fit in one page) is appended
//!   to a segment file next to the queue file and the row keeps its place
//!   and checksum, so the bytes are written once instead of into the WAL
//!   and again by the checkpoint; small ones stay inline. See [`segments`] for the order of writes and what each
//!   `synchronous` setting then guarantees. A file written by an older build
//!   (every body inline, no segment columns) is migrated in place on open
//!   (`PRAGMA user_version` 0 → 1, three columns added) and its entries are
//!   read as before.
//! - **Enqueued batches kept until first leased** (`hot_cache_bytes`): the
//!   first lease of a row this process enqueued takes the batch from memory
//!   instead of reading and decoding its body; see [`hot`].
//! - **Bounded**: by events and by stored bytes, counting everything held
//!   (ready, delayed, in flight), like the memory queue. A full queue makes
//!   `enqueue` wait for an acknowledgement, then fail with
//!   [`QueueError::Full`].

use std::path::{Path, PathBuf};
use std::str::FromStr;
use std::sync::Arc;
use std::sync::atomic::{AtomicBool, AtomicU64, Ordering};
use std::time::{Duration, SystemTime, UNIX_EPOCH};

use async_trait::async_trait;
use killkrill_core::pipeline::{
    Batch, BatchCodec, Delivery, DeliveryId, ErrorKind, Queue, QueueError, QueueStats,
};
use sqlx::sqlite::{
    SqliteAutoVacuum, SqliteConnectOptions, SqliteConnection, SqliteJournalMode, SqliteLockingMode,
    SqliteSynchronous,
};
use sqlx::{Connection, Row};
use tokio::sync::{MappedMutexGuard, Mutex, MutexGuard, Notify, mpsc, oneshot};
use tokio::time::Instant;

use super::{backend, file_undecodable};

mod hot;
mod options;
mod segments;
mod writer;

use crate::config::SqliteSync;
use hot::Hot;
pub use options::SqliteQueueOptions;
use segments::{Loc, Segments};
use writer::{Insert, write_loop};

const READY: i64 = 0;
const LEASED: i64 = 1;
const DELAYED: i64 = 2;

const SCHEMA: &[&str] = &[
    "CREATE TABLE IF NOT EXISTS queue (
        seq INTEGER PRIMARY KEY AUTOINCREMENT,
        batch_id BLOB NOT NULL,
        events INTEGER NOT NULL,
        bytes INTEGER NOT NULL,
        enqueued_ms INTEGER NOT NULL,
        state INTEGER NOT NULL DEFAULT 0,
        visible_at INTEGER NOT NULL,
        deliveries INTEGER NOT NULL DEFAULT 0,
        payload BLOB NOT NULL
    )",
    // Only leased and delayed rows: when the next one comes back, and how
    // many are in flight, without touching the ready backlog.
    "CREATE INDEX IF NOT EXISTS queue_pending ON queue (visible_at) WHERE state > 0",
    "CREATE TABLE IF NOT EXISTS undecodable (
        seq INTEGER PRIMARY KEY,
        error TEXT NOT NULL,
        deliveries INTEGER NOT NULL,
        at_ms INTEGER NOT NULL,
        payload BLOB NOT NULL
    )",
];

#[derive(Default)]
struct Held {
    batches: AtomicU64,
    events: AtomicU64,
    bytes: AtomicU64,
}

/// What the queue and its writer task share.
struct Shared {
    /// `None` after [`SqliteQueue::shutdown`].
    conn: Mutex<Option<SqliteConnection>>,
    held: Held,
    readable: Notify,
    writable: Notify,
    /// Where bodies over `inline_max_bytes` go.
    segments: Segments,
    inline_max_bytes: usize,
    /// `synchronous = FULL`: segments are synced before rows commit.
    sync_segments: bool,
    /// Batches enqueued here and not leased yet (see `hot.rs`); locked
    /// only briefly, never across an await.
    hot: std::sync::Mutex<Hot>,
}

impl Held {
    fn release(&self, batches: u64, events: u64, bytes: u64) {
        self.batches.fetch_sub(batches, Ordering::SeqCst);
        self.events.fetch_sub(events, Ordering::SeqCst);
        self.bytes.fetch_sub(bytes, Ordering::SeqCst);
    }
}

/// A durable, bounded queue in a SQLite file (see the module docs).
pub struct SqliteQueue {
    opts: SqliteQueueOptions,
    path: PathBuf,
    codec: BatchCodec,
    shared: Arc<Shared>,
    writer: mpsc::UnboundedSender<Insert>,
    acked_since_vacuum: AtomicU64,
    closed: AtomicBool,
    /// Test hook: the next `take` reports its lease and waits before
    /// reading the bodies.
    #[cfg(test)]
    pause: std::sync::Mutex<Option<(oneshot::Sender<()>, oneshot::Receiver<()>)>>,
}

fn now_ms() -> i64 {
    SystemTime::now()
        .duration_since(UNIX_EPOCH)
        .map_or(0, |d| i64::try_from(d.as_millis()).unwrap_or(i64::MAX))
}

fn ms(d: Duration) -> i64 {
    i64::try_from(d.as_millis()).unwrap_or(i64::MAX)
}

fn db(what: &str, e: sqlx::Error) -> QueueError {
    let kind = match &e {
        sqlx::Error::Io(_) | sqlx::Error::PoolTimedOut | sqlx::Error::WorkerCrashed => {
            ErrorKind::Retryable
        }
        sqlx::Error::Database(d) => {
            // SQLITE_BUSY (5), SQLITE_LOCKED (6), SQLITE_FULL (13) may pass.
            let code = d.code().and_then(|c| c.parse::<i32>().ok()).unwrap_or(0);
            if matches!(code & 0xff, 5 | 6 | 13) {
                ErrorKind::Retryable
            } else {
                ErrorKind::Permanent
            }
        }
        _ => ErrorKind::Permanent,
    };
    backend(format!("sqlite queue: {what}: {e}"), kind)
}

/// A delivery id: the row's sequence number and its delivery count, so a
/// stale `nack` from an earlier lease cannot disturb the current one.
fn delivery_id(seq: i64, deliveries: i64) -> DeliveryId {
    DeliveryId::from_u128((u128::from(seq as u64) << 32) | u128::from(deliveries as u32))
}

fn split_id(id: DeliveryId) -> Option<(i64, i64)> {
    let v = id.as_u128();
    let seq = i64::try_from(v >> 32).ok()?;
    Some((seq, i64::from(v as u32)))
}

/// A leased row's body as read back.
enum Body {
    /// Inline, or read from its segment and checked.
    Read(Vec<u8>),
    /// Read, but not what was written (checksum mismatch): dead-lettered
    /// with the bytes read.
    Damaged { error: String, bytes: Vec<u8> },
    /// Not read: the file is gone (`gone`), or reading failed (maybe
    /// passing; the row is kept).
    Unreadable { error: String, gone: bool },
}

impl SqliteQueue {
    /// Opens (creating if missing, with its directory) the queue file at
    /// `path`. Entries left leased by a previous process come back when their
    /// visibility timeout passes.
    ///
    /// # Errors
    /// [`QueueError::Backend`] when the file cannot be created or opened, is
    /// not a queue, or is held by another process.
    pub async fn open(
        path: impl AsRef<Path>,
        opts: SqliteQueueOptions,
    ) -> Result<Self, QueueError> {
        let path = path.as_ref().to_path_buf();
        if let Some(dir) = path.parent().filter(|d| !d.as_os_str().is_empty()) {
            std::fs::create_dir_all(dir).map_err(|e| {
                backend(
                    format!("creating the queue directory {}: {e}", dir.display()),
                    ErrorKind::Permanent,
                )
            })?;
        }
        let url = format!("sqlite://{}", path.display());
        let connect = SqliteConnectOptions::from_str(&url)
            .map_err(|e| db("parsing the queue path", e))?
            .create_if_missing(true)
            .auto_vacuum(SqliteAutoVacuum::Incremental)
            .journal_mode(SqliteJournalMode::Wal)
            .locking_mode(SqliteLockingMode::Exclusive)
            .synchronous(match opts.synchronous {
                SqliteSync::Full => SqliteSynchronous::Full,
                SqliteSync::Normal => SqliteSynchronous::Normal,
                SqliteSync::Off => SqliteSynchronous::Off,
            })
            .busy_timeout(Duration::from_secs(1))
            .pragma("journal_size_limit", "67108864");
        let mut conn = SqliteConnection::connect_with(&connect)
            .await
            .map_err(|e| db(&format!("opening {}", path.display()), e))?;
        for stmt in SCHEMA {
            sqlx::query(*stmt)
                .execute(&mut conn)
                .await
                .map_err(|e| db("creating the schema", e))?;
        }
        segments::migrate(&mut conn).await?;
        let live = segments::live_rows(&mut conn).await?;
        let seg_dir = segments::dir_of(&path);
        let segments = Segments::open(seg_dir.clone(), opts.segment_bytes, live).map_err(|e| {
            backend(
                format!("opening the queue segments {}: {e}", seg_dir.display()),
                ErrorKind::Permanent,
            )
        })?;
        let row = sqlx::query(
            "SELECT COUNT(*), COALESCE(SUM(events), 0), COALESCE(SUM(bytes), 0) FROM queue",
        )
        .fetch_one(&mut conn)
        .await
        .map_err(|e| db("reading the queue size", e))?;
        let (batches, events, bytes): (i64, i64, i64) = (
            row.try_get(0)
                .map_err(|e| db("reading the queue size", e))?,
            row.try_get(1)
                .map_err(|e| db("reading the queue size", e))?,
            row.try_get(2)
                .map_err(|e| db("reading the queue size", e))?,
        );
        let codec = BatchCodec::new()
            .with_compression(opts.compression)
            .with_version(opts.batch_format_version);
        let shared = Arc::new(Shared {
            conn: Mutex::new(Some(conn)),
            held: Held {
                batches: AtomicU64::new(batches as u64),
                events: AtomicU64::new(events as u64),
                bytes: AtomicU64::new(bytes as u64),
            },
            readable: Notify::new(),
            writable: Notify::new(),
            segments,
            inline_max_bytes: opts.inline_max_bytes,
            sync_segments: opts.synchronous == SqliteSync::Full,
            hot: std::sync::Mutex::new(Hot::new(opts.hot_cache_bytes)),
        });
        let (writer, rx) = mpsc::unbounded_channel();
        tokio::spawn(write_loop(shared.clone(), rx));
        Ok(SqliteQueue {
            opts,
            path,
            codec,
            shared,
            writer,
            acked_since_vacuum: AtomicU64::new(0),
            closed: AtomicBool::new(false),
            #[cfg(test)]
            pause: std::sync::Mutex::new(None),
        })
    }

    /// The queue file.
    pub fn path(&self) -> &Path {
        &self.path
    }

    /// Refuses new batches from now on and wakes every waiter; what is held
    /// can still be dequeued and acknowledged.
    pub fn close(&self) {
        self.closed.store(true, Ordering::SeqCst);
        self.shared.readable.notify_waiters();
        self.shared.writable.notify_waiters();
    }

    /// Closes for new batches, then closes the file (checkpointing the WAL).
    /// Every later call fails with [`QueueError::Closed`]; deliveries not
    /// acknowledged by then come back after their visibility timeout when
    /// the file is opened again.
    pub async fn shutdown(&self) {
        self.close();
        let conn = self.shared.conn.lock().await.take();
        if let Some(c) = conn
            && let Err(e) = c.close().await
        {
            tracing::warn!(error = %e, path = %self.path.display(), "closing the queue file");
        }
    }

    async fn conn(&self) -> Result<MappedMutexGuard<'_, SqliteConnection>, QueueError> {
        MutexGuard::try_map(self.shared.conn.lock().await, Option::as_mut)
            .map_err(|_| QueueError::Closed)
    }

    /// Pages of the file and free pages in it (space accounting, tests).
    ///
    /// # Errors
    /// [`QueueError::Backend`].
    pub async fn pages(&self) -> Result<(u64, u64), QueueError> {
        let mut c = self.conn().await?;
        let pages: i64 = sqlx::query_scalar("PRAGMA page_count")
            .fetch_one(&mut *c)
            .await
            .map_err(|e| db("page_count", e))?;
        let free: i64 = sqlx::query_scalar("PRAGMA freelist_count")
            .fetch_one(&mut *c)
            .await
            .map_err(|e| db("freelist_count", e))?;
        Ok((pages as u64, free as u64))
    }

    /// Segment files on disk (space accounting, tests).
    ///
    /// # Errors
    /// [`QueueError::Backend`] when the directory cannot be read.
    pub fn segment_files(&self) -> Result<usize, QueueError> {
        self.shared.segments.files().map_err(|e| {
            backend(
                format!("reading {}: {e}", self.shared.segments.dir().display()),
                ErrorKind::Retryable,
            )
        })
    }

    /// Entries quarantined because their bytes did not decode.
    ///
    /// # Errors
    /// [`QueueError::Backend`].
    pub async fn quarantined(&self) -> Result<u64, QueueError> {
        let mut c = self.conn().await?;
        let n: i64 = sqlx::query_scalar("SELECT COUNT(*) FROM undecodable")
            .fetch_one(&mut *c)
            .await
            .map_err(|e| db("counting quarantined entries", e))?;
        Ok(n as u64)
    }

    /// Reserves room for a batch; false when it does not fit now.
    fn reserve(&self, events: u64, bytes: u64) -> bool {
        let ok = |held: &AtomicU64, add: u64, max: u64| {
            held.fetch_update(Ordering::SeqCst, Ordering::SeqCst, |h| {
                (h + add <= max).then_some(h + add)
            })
            .is_ok()
        };
        if !ok(&self.shared.held.events, events, self.opts.max_events) {
            return false;
        }
        if !ok(&self.shared.held.bytes, bytes, self.opts.max_bytes) {
            self.shared.held.events.fetch_sub(events, Ordering::SeqCst);
            return false;
        }
        self.shared.held.batches.fetch_add(1, Ordering::SeqCst);
        true
    }

    /// Leases up to `max` deliverable rows; returns them decoded, and when
    /// the next leased or delayed row comes back (ms) if none were ready.
    async fn take(&self, max: usize) -> Result<(Vec<Delivery>, Option<i64>), QueueError> {
        let now = now_ms();
        let until = now.saturating_add(ms(self.opts.visibility_timeout));
        let mut c = self.conn().await?;
        let mut rows = sqlx::query(
            "UPDATE queue SET state = 1, deliveries = deliveries + 1, visible_at = ?
             WHERE seq IN (SELECT seq FROM queue WHERE visible_at <= ? ORDER BY seq LIMIT ?)
             RETURNING seq, deliveries, payload, seg, off, sum, bytes",
        )
        .bind(until)
        .bind(now)
        .bind(i64::try_from(max).unwrap_or(i64::MAX))
        .fetch_all(&mut *c)
        .await
        .map_err(|e| db("leasing batches", e))?;
        if rows.is_empty() {
            let next: Option<i64> =
                sqlx::query_scalar("SELECT MIN(visible_at) FROM queue WHERE state > 0")
                    .fetch_one(&mut *c)
                    .await
                    .map_err(|e| db("reading the next redelivery", e))?;
            return Ok((Vec::new(), next));
        }
        // Under the connection's lock, as the writer's puts are: a row is in
        // `hot` before any lease can see it.
        let mut hits: Vec<(i64, Delivery)> = Vec::new();
        if self.opts.hot_cache_bytes > 0 {
            let mut hot = self.shared.hot.lock().unwrap_or_else(|e| e.into_inner());
            let mut first = i64::MAX;
            for r in &rows {
                let seq: i64 = r.try_get(0).map_err(|e| db("reading a lease", e))?;
                first = first.min(seq);
            }
            hot.forget_before(first);
            let mut rest = Vec::with_capacity(rows.len());
            for r in rows {
                let seq: i64 = r.try_get(0).map_err(|e| db("reading a lease", e))?;
                let deliveries: i64 = r.try_get(1).map_err(|e| db("reading a lease", e))?;
                match hot.take(seq) {
                    Some(batch) if deliveries == 1 => hits.push((
                        seq,
                        Delivery {
                            id: delivery_id(seq, deliveries),
                            batch,
                            attempts: 1,
                        },
                    )),
                    _ => rest.push(r),
                }
            }
            drop(hot);
            let first_reads = rest
                .iter()
                .filter(|r| r.try_get::<i64, _>(1).is_ok_and(|d| d == 1));
            hot::count(hits.len(), first_reads.count());
            rows = rest;
        }
        drop(c);
        #[cfg(test)]
        {
            let pause = self.pause.lock().unwrap_or_else(|e| e.into_inner()).take();
            if let Some((leased, go)) = pause {
                let _ = leased.send(());
                let _ = go.await;
            }
        }
        let mut leased = Vec::with_capacity(rows.len());
        for r in rows {
            let get = |e| db("reading a lease", e);
            let seq: i64 = r.try_get(0).map_err(get)?;
            let deliveries: i64 = r.try_get(1).map_err(get)?;
            let payload: Vec<u8> = r.try_get(2).map_err(get)?;
            let seg: Option<i64> = r.try_get(3).map_err(get)?;
            let off: Option<i64> = r.try_get(4).map_err(get)?;
            let sum: Option<i64> = r.try_get(5).map_err(get)?;
            let bytes: i64 = r.try_get(6).map_err(get)?;
            let loc = match (seg, off, sum) {
                (Some(seg), Some(off), Some(sum)) => Some(Loc { seg, off, sum }),
                _ => None,
            };
            leased.push((seq, deliveries, payload, loc, bytes));
        }
        leased.sort_by_key(|l| l.0);
        let leased = self.read_segments(leased).await?;
        let mut out = Vec::with_capacity(leased.len() + hits.len());
        for (seq, deliveries, body) in leased {
            let (err, payload) = match body {
                Body::Read(payload) => match self.codec.decode(&payload) {
                    Ok(batch) => {
                        out.push((
                            seq,
                            Delivery {
                                id: delivery_id(seq, deliveries),
                                batch: Arc::new(batch),
                                attempts: u32::try_from(deliveries).unwrap_or(u32::MAX),
                            },
                        ));
                        continue;
                    }
                    Err(e) => (e.to_string(), payload),
                },
                Body::Damaged { error, bytes } => (error, bytes),
                // The file is gone: if the row is still there (checked
                // below) its bytes are lost, and it is filed with its error.
                Body::Unreadable { error, gone: true } => (error, Vec::new()),
                Body::Unreadable { error, gone: false } => {
                    self.unreadable(seq, deliveries, &error).await?;
                    continue;
                }
            };
            if !self.still_leased(seq, deliveries).await? {
                // Acknowledged meanwhile (a late ack of an expired lease;
                // its segment may have gone with its last row): not filed.
                tracing::debug!(seq, error = %err, "queue entry acknowledged while being read");
                continue;
            }
            let deliveries = u32::try_from(deliveries).unwrap_or(u32::MAX);
            let filed = file_undecodable(
                "sqlite",
                self.opts.dead_letter.as_ref(),
                &payload,
                &err,
                deliveries,
            )
            .await;
            self.remove_undecodable(seq, filed, &err, deliveries, &payload)
                .await?;
        }
        // In queue order, whether read or kept.
        out.extend(hits);
        out.sort_by_key(|(seq, _)| *seq);
        Ok((out.into_iter().map(|(_, d)| d).collect(), None))
    }

    /// Whether the row is still under the lease `take` just gave it.
    async fn still_leased(&self, seq: i64, deliveries: i64) -> Result<bool, QueueError> {
        let mut c = self.conn().await?;
        let n: i64 = sqlx::query_scalar(
            "SELECT COUNT(*) FROM queue WHERE seq = ? AND deliveries = ? AND state = ?",
        )
        .bind(seq)
        .bind(deliveries)
        .bind(LEASED)
        .fetch_one(&mut *c)
        .await
        .map_err(|e| db("checking a lease", e))?;
        Ok(n > 0)
    }

    /// A segment body could not be read (maybe passing: EMFILE, EIO,
    /// permissions): the row keeps its lease, without counting a delivery,
    /// and comes back after the visibility timeout.
    async fn unreadable(&self, seq: i64, deliveries: i64, error: &str) -> Result<(), QueueError> {
        metrics::counter!("killkrill_queue_segment_read_errors_total", "queue" => "sqlite")
            .increment(1);
        tracing::error!(
            seq,
            error = %error,
            retry_in = ?self.opts.visibility_timeout,
            "reading a queue segment failed; the entry is kept and tried again"
        );
        let mut c = self.conn().await?;
        sqlx::query(
            "UPDATE queue SET deliveries = deliveries - 1 WHERE seq = ? AND deliveries = ? AND state = ?",
        )
        .bind(seq)
        .bind(deliveries)
        .bind(LEASED)
        .execute(&mut *c)
        .await
        .map_err(|e| db("keeping an unreadable entry", e))?;
        Ok(())
    }

    /// The bodies of leased rows: inline ones as they are, segment ones read
    /// (off the runtime) and checked.
    async fn read_segments(
        &self,
        leased: Vec<LeasedRow>,
    ) -> Result<Vec<(i64, i64, Body)>, QueueError> {
        if leased.iter().all(|l| l.3.is_none()) {
            return Ok(leased
                .into_iter()
                .map(|(seq, d, payload, _, _)| (seq, d, Body::Read(payload)))
                .collect());
        }
        let shared = self.shared.clone();
        tokio::task::spawn_blocking(move || {
            leased
                .into_iter()
                .map(|(seq, d, payload, loc, bytes)| {
                    let body = match loc {
                        None => Body::Read(payload),
                        Some(loc) => match shared
                            .segments
                            .read(loc, usize::try_from(bytes).unwrap_or(0))
                        {
                            Ok(b) => Body::Read(b),
                            Err(e) => {
                                let error = e.to_string();
                                match e {
                                    segments::ReadError::Checksum { bytes, .. } => {
                                        Body::Damaged { error, bytes }
                                    }
                                    segments::ReadError::Io { source, .. } => Body::Unreadable {
                                        gone: source.kind() == std::io::ErrorKind::NotFound,
                                        error,
                                    },
                                }
                            }
                        },
                    };
                    (seq, d, body)
                })
                .collect()
        })
        .await
        .map_err(|e| backend(format!("reading queue segments: {e}"), ErrorKind::Retryable))
    }

    async fn remove_undecodable(
        &self,
        seq: i64,
        filed: bool,
        error: &str,
        deliveries: u32,
        payload: &[u8],
    ) -> Result<(), QueueError> {
        let mut c = self.conn().await?;
        let mut tx = c.begin().await.map_err(|e| db("quarantining", e))?;
        let gone = sqlx::query("DELETE FROM queue WHERE seq = ? RETURNING events, bytes, seg")
            .bind(seq)
            .fetch_optional(&mut *tx)
            .await
            .map_err(|e| db("quarantining", e))?;
        // Only what was still there: an entry acknowledged meanwhile is not
        // quarantined.
        if !filed && gone.is_some() {
            sqlx::query(
                "INSERT OR REPLACE INTO undecodable (seq, error, deliveries, at_ms, payload) VALUES (?, ?, ?, ?, ?)",
            )
            .bind(seq)
            .bind(error)
            .bind(i64::from(deliveries))
            .bind(now_ms())
            .bind(payload)
            .execute(&mut *tx)
            .await
            .map_err(|e| db("quarantining", e))?;
        }
        tx.commit().await.map_err(|e| db("quarantining", e))?;
        drop(c);
        if let Some(r) = gone {
            let (e, b): (i64, i64) = (
                r.try_get(0).map_err(|e| db("quarantining", e))?,
                r.try_get(1).map_err(|e| db("quarantining", e))?,
            );
            let seg: Option<i64> = r.try_get(2).map_err(|e| db("quarantining", e))?;
            self.shared.held.release(1, e as u64, b as u64);
            self.shared.writable.notify_waiters();
            if let Some(d) = seg.and_then(|s| self.shared.segments.release(s)) {
                segments::delete(vec![d]).await;
            }
        }
        Ok(())
    }

    async fn maybe_vacuum(&self, acked: u64) -> Result<(), QueueError> {
        let since = self.acked_since_vacuum.fetch_add(acked, Ordering::Relaxed) + acked;
        if since < 64 && self.shared.held.events.load(Ordering::Relaxed) != 0 {
            return Ok(());
        }
        self.acked_since_vacuum.store(0, Ordering::Relaxed);
        let mut c = self.conn().await?;
        let free: i64 = sqlx::query_scalar("PRAGMA freelist_count")
            .fetch_one(&mut *c)
            .await
            .map_err(|e| db("freelist_count", e))?;
        if free as u64 > self.opts.vacuum_free_pages {
            sqlx::query("PRAGMA incremental_vacuum")
                .execute(&mut *c)
                .await
                .map_err(|e| db("incremental vacuum", e))?;
            metrics::counter!("killkrill_queue_vacuumed_pages_total", "queue" => "sqlite")
                .increment(free as u64);
        }
        Ok(())
    }
}

#[async_trait]
impl Queue for SqliteQueue {
    fn name(&self) -> &str {
        "sqlite"
    }

    async fn enqueue(&self, batch: Batch, wait: Duration) -> Result<(), QueueError> {
        let events = batch.len() as u64;
        if events > self.opts.max_events {
            return Err(QueueError::TooLarge {
                size: events,
                limit: self.opts.max_events,
                unit: "events",
            });
        }
        let batch_id = batch.id.to_bytes();
        let payload = self
            .codec
            .encode_to_vec(&batch)
            .map_err(|e| backend(format!("encoding a batch: {e}"), ErrorKind::Permanent))?;
        let bytes = payload.len() as u64;
        if bytes > self.opts.max_bytes {
            return Err(QueueError::TooLarge {
                size: bytes,
                limit: self.opts.max_bytes,
                unit: "bytes",
            });
        }
        let start = Instant::now();
        let deadline = start + wait;
        loop {
            let notified = self.shared.writable.notified();
            tokio::pin!(notified);
            notified.as_mut().enable();
            if self.closed.load(Ordering::SeqCst) {
                return Err(QueueError::Closed);
            }
            if self.reserve(events, bytes) {
                break;
            }
            if Instant::now() >= deadline
                || tokio::time::timeout_at(deadline, notified).await.is_err()
            {
                return Err(QueueError::Full {
                    waited: start.elapsed(),
                });
            }
        }
        // Handed to the writer without an await in between: from here on
        // the insert happens even if this future is dropped, and the
        // reservation belongs to the row (or the writer gives it back).
        let (done, result) = oneshot::channel();
        let keep = if self.opts.hot_cache_bytes > 0 {
            Some((batch.resident_bytes(), Arc::new(batch)))
        } else {
            None
        };
        let insert = Insert {
            batch_id,
            events: events as i64,
            payload,
            keep,
            done,
        };
        if self.writer.send(insert).is_err() {
            self.shared.held.release(1, events, bytes);
            return Err(QueueError::Closed);
        }
        // On a failure the writer has given the room back already (even
        // when this future is dropped before it reads the answer).
        match result.await {
            Ok(Ok(())) => Ok(()),
            Ok(Err(e)) => Err(e),
            Err(_) => {
                // The writer dropped the insert without an answer: nothing
                // was stored.
                Err(backend(
                    "sqlite queue: the writer stopped",
                    ErrorKind::Permanent,
                ))
            }
        }
    }

    async fn dequeue(&self, max: usize, wait: Duration) -> Result<Vec<Delivery>, QueueError> {
        let deadline = Instant::now() + wait;
        loop {
            let notified = self.shared.readable.notified();
            tokio::pin!(notified);
            notified.as_mut().enable();
            let (out, next) = self.take(max.max(1)).await?;
            if !out.is_empty() {
                return Ok(out);
            }
            let now = Instant::now();
            if now >= deadline {
                return Ok(Vec::new());
            }
            let wake = match next {
                Some(at) => {
                    let in_ms = u64::try_from(at.saturating_sub(now_ms())).unwrap_or(0);
                    (now + Duration::from_millis(in_ms)).min(deadline)
                }
                None => deadline,
            };
            let _timed_out = tokio::time::timeout_at(wake, notified).await.is_err();
        }
    }

    async fn ack(&self, ids: &[DeliveryId]) -> Result<(), QueueError> {
        if ids.is_empty() {
            return Ok(());
        }
        let seqs: Vec<i64> = ids
            .iter()
            .filter_map(|id| split_id(*id))
            .map(|s| s.0)
            .collect();
        let (mut events, mut bytes, mut n) = (0u64, 0u64, 0u64);
        let mut segs = Vec::new();
        {
            let mut c = self.conn().await?;
            let mut tx = c.begin().await.map_err(|e| db("acknowledging", e))?;
            for chunk in seqs.chunks(500) {
                let sql = format!(
                    "DELETE FROM queue WHERE seq IN ({}) RETURNING events, bytes, seg",
                    vec!["?"; chunk.len()].join(",")
                );
                let mut q = sqlx::query(sqlx::AssertSqlSafe(sql));
                for s in chunk {
                    q = q.bind(*s);
                }
                for r in q
                    .fetch_all(&mut *tx)
                    .await
                    .map_err(|e| db("acknowledging", e))?
                {
                    let e: i64 = r.try_get(0).map_err(|e| db("acknowledging", e))?;
                    let b: i64 = r.try_get(1).map_err(|e| db("acknowledging", e))?;
                    let seg: Option<i64> = r.try_get(2).map_err(|e| db("acknowledging", e))?;
                    segs.extend(seg);
                    events += e as u64;
                    bytes += b as u64;
                    n += 1;
                }
            }
            tx.commit().await.map_err(|e| db("acknowledging", e))?;
        }
        let doomed: Vec<_> = segs
            .into_iter()
            .filter_map(|s| self.shared.segments.release(s))
            .collect();
        segments::delete(doomed).await;
        if n > 0 {
            self.shared.held.release(n, events, bytes);
            self.shared.writable.notify_waiters();
            self.maybe_vacuum(n).await?;
        }
        Ok(())
    }

    async fn nack(&self, id: DeliveryId, retry_after: Duration) -> Result<(), QueueError> {
        let Some((seq, deliveries)) = split_id(id) else {
            return Ok(());
        };
        let (state, at) = if retry_after.is_zero() {
            (READY, 0)
        } else {
            (DELAYED, now_ms().saturating_add(ms(retry_after)))
        };
        let mut c = self.conn().await?;
        sqlx::query(
            "UPDATE queue SET state = ?, visible_at = ? WHERE seq = ? AND deliveries = ? AND state = ?",
        )
        .bind(state)
        .bind(at)
        .bind(seq)
        .bind(deliveries)
        .bind(LEASED)
        .execute(&mut *c)
        .await
        .map_err(|e| db("giving a delivery back", e))?;
        drop(c);
        self.shared.readable.notify_waiters();
        Ok(())
    }

    async fn stats(&self) -> Result<QueueStats, QueueError> {
        let now = now_ms();
        let mut c = self.conn().await?;
        let in_flight: i64 =
            sqlx::query_scalar("SELECT COUNT(*) FROM queue WHERE state > 0 AND state = 1")
                .fetch_one(&mut *c)
                .await
                .map_err(|e| db("stats", e))?;
        let oldest: Option<i64> =
            sqlx::query_scalar("SELECT enqueued_ms FROM queue ORDER BY seq LIMIT 1")
                .fetch_optional(&mut *c)
                .await
                .map_err(|e| db("stats", e))?;
        Ok(QueueStats {
            batches: self.shared.held.batches.load(Ordering::SeqCst),
            events: Some(self.shared.held.events.load(Ordering::SeqCst)),
            bytes: Some(self.shared.held.bytes.load(Ordering::SeqCst)),
            in_flight: in_flight as u64,
            oldest_unacked: oldest
                .map(|t| Duration::from_millis(u64::try_from(now - t).unwrap_or(0))),
        })
    }
}

/// A leased row as read: id, attempts, inline payload, segment location
/// (None when inline), lease token.
type LeasedRow = (i64, i64, Vec<u8>, Option<Loc>, i64);

#[cfg(test)]
mod tests {
    #![allow(clippy::unwrap_used)]
    use super::*;
    use killkrill_core::event::{Tenant, Timestamp};
    use killkrill_core::pipeline::{BatchId, MemoryDeadLetter};

    fn batch(id: u128) -> Batch {
        Batch::new(
            BatchId::from_u128(id),
            Tenant::default(),
            Timestamp::from_millis(1),
        )
    }

    /// Every body in a segment of its own.
    fn opts(dl: &Arc<MemoryDeadLetter>) -> SqliteQueueOptions {
        SqliteQueueOptions {
            synchronous: SqliteSync::Full,
            inline_max_bytes: 0,
            segment_bytes: 1,
            visibility_timeout: Duration::from_millis(200),
            dead_letter: Some(dl.clone()),
            ..SqliteQueueOptions::default()
        }
    }

    #[tokio::test(flavor = "multi_thread", worker_threads = 2)]
    async fn an_entry_acknowledged_while_its_segment_is_read_is_not_dead_lettered() {
        let dir = tempfile::tempdir().unwrap();
        let dl = Arc::new(MemoryDeadLetter::new(10));
        let q = Arc::new(
            SqliteQueue::open(dir.path().join("q.db"), opts(&dl))
                .await
                .unwrap(),
        );
        q.try_enqueue(batch(1)).await.unwrap();
        q.try_enqueue(batch(2)).await.unwrap();
        let first = q.dequeue(1, Duration::ZERO).await.unwrap();
        assert_eq!(first[0].batch.id, BatchId::from_u128(1));
        tokio::time::sleep(Duration::from_millis(300)).await;
        // Batch 1 is leased again; before its body is read, the late ack of
        // the expired lease deletes the row, and with it its segment.
        let (leased_tx, leased_rx) = oneshot::channel();
        let (go_tx, go_rx) = oneshot::channel();
        *q.pause.lock().unwrap() = Some((leased_tx, go_rx));
        let taker = tokio::spawn({
            let q = q.clone();
            async move { q.dequeue(1, Duration::ZERO).await }
        });
        leased_rx.await.unwrap();
        q.ack(&[first[0].id]).await.unwrap();
        assert_eq!(q.segment_files().unwrap(), 1, "batch 1's segment deleted");
        go_tx.send(()).unwrap();
        assert!(taker.await.unwrap().unwrap().is_empty());
        assert!(
            dl.entries().is_empty(),
            "an acknowledged batch was dead-lettered"
        );
        assert_eq!(q.quarantined().await.unwrap(), 0);
        let s = q.stats().await.unwrap();
        assert_eq!(s.batches, 1);
        let ds = q.dequeue(10, Duration::ZERO).await.unwrap();
        assert_eq!(ds.len(), 1);
        assert_eq!(ds[0].batch.id, BatchId::from_u128(2));
    }

    #[tokio::test]
    async fn a_panicking_append_gives_the_room_back() {
        let dir = tempfile::tempdir().unwrap();
        let dl = Arc::new(MemoryDeadLetter::new(10));
        let q = SqliteQueue::open(
            dir.path().join("q.db"),
            SqliteQueueOptions {
                segment_bytes: 1 << 20,
                max_events: 1,
                ..opts(&dl)
            },
        )
        .await
        .unwrap();
        let mut one = batch(1);
        one.logs.push(killkrill_core::event::LogRecord::default());
        q.try_enqueue(one.clone()).await.unwrap();
        q.shared
            .segments
            .faults
            .panic_next_append
            .store(true, Ordering::SeqCst);
        let mut two = batch(2);
        two.logs.push(killkrill_core::event::LogRecord::default());
        let ds = q.dequeue(1, Duration::ZERO).await.unwrap();
        q.ack(&[ds[0].id]).await.unwrap();
        assert!(q.try_enqueue(two.clone()).await.is_err());
        let s = q.stats().await.unwrap();
        assert_eq!((s.batches, s.events), (0, Some(0)), "the room is back");
        // The queue still takes (and returns intact) a full-size batch.
        q.try_enqueue(two.clone()).await.unwrap();
        let ds = q.dequeue(1, Duration::ZERO).await.unwrap();
        assert_eq!(*ds[0].batch, two);
    }

    #[tokio::test]
    async fn a_failed_directory_sync_does_not_block_later_segments() {
        let dir = tempfile::tempdir().unwrap();
        let dl = Arc::new(MemoryDeadLetter::new(10));
        let q = SqliteQueue::open(dir.path().join("q.db"), opts(&dl))
            .await
            .unwrap();
        q.shared
            .segments
            .faults
            .fail_next_dir_sync
            .store(true, Ordering::SeqCst);
        assert!(q.try_enqueue(batch(1)).await.is_err());
        assert_eq!(q.stats().await.unwrap().batches, 0);
        for i in 2..=3 {
            q.try_enqueue(batch(i)).await.unwrap();
        }
        let ds = q.dequeue(10, Duration::ZERO).await.unwrap();
        let ids: Vec<u128> = ds.iter().map(|d| d.batch.id.as_u128()).collect();
        assert_eq!(ids, [2, 3]);
    }
}
