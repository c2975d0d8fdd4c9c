//! Segment files: where the SQLite queue keeps the bytes of large batches.
//!
//! A batch body stored as a SQLite blob is written twice (into the WAL,
//! then by the checkpoint into the database file), spread over a chain of
//! overflow pages each with its own WAL frame header and checksum, tracked
//! in the pointer map of the auto-vacuum file, and moved to the free list
//! when acknowledged. For a 600 kB batch of syslog records that is most of
//! the durable queue's cost. Large bodies therefore go to append-only
//! segment files next to the queue file, written once; the row in SQLite
//! keeps the state (lease, deliveries, visibility) and where the bytes are:
//! segment number, offset, length and an XXH3 checksum of the bytes.
//!
//! - **Order of writes**: the writer appends a group's bodies to the current
//!   segment, then (with `synchronous = FULL`) `fdatasync`s the segment,
//!   and only then commits the rows. A row therefore never refers to bytes
//!   that were not written before it was committed: a killed process loses
//!   nothing acknowledged (the bytes are in the page cache), and with `FULL`
//!   neither does a power failure. With `NORMAL` a power failure may lose
//!   the last commits (as before) or keep a row whose bytes did not reach
//!   the disk: the checksum catches that, and the entry is dead-lettered
//!   with its error like any undecodable entry, never delivered silently
//!   wrong.
//! - **Space comes back whole**: every segment counts its live rows; once a
//!   segment is no longer the one being appended to and its last row is
//!   acknowledged, the file is deleted. Bytes written but never committed (a
//!   crash between the append and the commit) are garbage in a segment that
//!   no row refers to: segments without rows are deleted on open.
//! - **Bounded**: a segment is closed for appends past `segment_bytes`, so
//!   the disk holds at most the live bytes plus, per segment with any live
//!   row, its acknowledged garbage.

use std::collections::{BTreeMap, HashMap};
use std::fs::{File, OpenOptions};
use std::io::{self, Write};
use std::os::unix::fs::FileExt;
use std::path::{Path, PathBuf};
use std::sync::{Arc, Mutex, MutexGuard};

use killkrill_core::pipeline::{ErrorKind, QueueError};

use super::{backend, db};

/// Where one body is.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub(super) struct Loc {
    pub(super) seg: i64,
    pub(super) off: i64,
    pub(super) sum: i64,
}

/// The checksum stored with a body (XXH3, 64 bits, as an SQLite integer).
pub(super) fn checksum(bytes: &[u8]) -> i64 {
    xxhash_rust::xxh3::xxh3_64(bytes) as i64
}

struct Current {
    id: i64,
    file: File,
    len: u64,
}

/// The appending side: only the writer task appends, so this lock is never
/// contended by acks or reads, and it may be held across writes and syncs.
struct Appender {
    current: Option<Current>,
    next_id: i64,
}

/// What acks, reads and appends share; held only for bookkeeping, never
/// across file I/O other than opening a read handle.
#[derive(Default)]
struct State {
    /// The segment being appended to.
    current: Option<i64>,
    /// Rows (committed or being committed) per segment.
    live: BTreeMap<i64, u64>,
    /// Open read handles.
    readers: HashMap<i64, Arc<File>>,
}

/// Test hooks: faults to inject into the next operation.
#[cfg(test)]
#[derive(Default)]
pub(super) struct Faults {
    pub(super) panic_next_append: std::sync::atomic::AtomicBool,
    pub(super) fail_next_dir_sync: std::sync::atomic::AtomicBool,
}

/// The segment directory of one queue.
pub(super) struct Segments {
    dir: PathBuf,
    segment_bytes: u64,
    appender: Mutex<Appender>,
    state: Mutex<State>,
    #[cfg(test)]
    pub(super) faults: Faults,
}

/// Why a body could not be read back.
#[derive(Debug, thiserror::Error)]
pub(super) enum ReadError {
    /// The file could not be opened or read: maybe passing (EMFILE, EIO,
    /// ENOMEM, permissions), or the file is gone (`NotFound`).
    #[error("queue segment {seg}: {source}")]
    Io { seg: i64, source: io::Error },
    /// The bytes were read but are not the ones written: they are kept, to
    /// be dead-lettered for inspection.
    #[error(
        "queue segment {seg} at byte {off}: checksum mismatch over {len} bytes (the stored bytes are damaged or were not written before a power failure)"
    )]
    Checksum {
        seg: i64,
        off: i64,
        len: usize,
        bytes: Vec<u8>,
    },
}

/// A segment file to delete once no lock is held (off the async threads).
#[must_use = "the file is only deleted by `delete`"]
pub(super) struct Doomed {
    id: i64,
    path: PathBuf,
}

impl Doomed {
    /// Deletes the file (a blocking call).
    pub(super) fn delete(self) {
        if let Err(e) = std::fs::remove_file(&self.path)
            && e.kind() != io::ErrorKind::NotFound
        {
            tracing::warn!(error = %e, segment = self.id, "deleting an acknowledged queue segment");
        }
    }
}

fn file_name(id: i64) -> String {
    format!("{id:016}.seg")
}

fn lock<T>(m: &Mutex<T>) -> MutexGuard<'_, T> {
    m.lock().unwrap_or_else(std::sync::PoisonError::into_inner)
}

impl Segments {
    /// Opens the directory (creating it), given the rows per segment that
    /// the queue file refers to; deletes segment files no row refers to.
    pub(super) fn open(
        dir: PathBuf,
        segment_bytes: u64,
        live: BTreeMap<i64, u64>,
    ) -> io::Result<Self> {
        std::fs::create_dir_all(&dir)?;
        let mut max_id = live.keys().next_back().copied().unwrap_or(0);
        for entry in std::fs::read_dir(&dir)? {
            let entry = entry?;
            let name = entry.file_name();
            let Some(id) = name
                .to_str()
                .and_then(|n| n.strip_suffix(".seg"))
                .and_then(|n| n.parse::<i64>().ok())
            else {
                continue;
            };
            max_id = max_id.max(id);
            if !live.contains_key(&id) {
                std::fs::remove_file(entry.path())?;
            }
        }
        Ok(Segments {
            dir,
            segment_bytes: segment_bytes.max(1),
            appender: Mutex::new(Appender {
                current: None,
                next_id: max_id + 1,
            }),
            state: Mutex::new(State {
                live,
                ..State::default()
            }),
            #[cfg(test)]
            faults: Faults::default(),
        })
    }

    fn path(&self, id: i64) -> PathBuf {
        self.dir.join(file_name(id))
    }

    /// Segment files on disk (tests, space accounting).
    pub(super) fn files(&self) -> io::Result<usize> {
        Ok(std::fs::read_dir(&self.dir)?
            .filter_map(Result::ok)
            .filter(|e| e.file_name().to_str().is_some_and(|n| n.ends_with(".seg")))
            .count())
    }

    /// Appends `bodies` to the current segment (starting a new one when it
    /// is full), syncing the data when `sync`; each body counts as a live
    /// row of its segment until [`release`](Self::release)d. A blocking
    /// call (the writer runs it off the async threads); the write and the
    /// sync hold only the appender's lock, never the one acks and reads
    /// take.
    pub(super) fn append(&self, bodies: &[&[u8]], sync: bool) -> io::Result<Vec<Loc>> {
        let mut ap = lock(&self.appender);
        #[cfg(test)]
        if self
            .faults
            .panic_next_append
            .swap(false, std::sync::atomic::Ordering::SeqCst)
        {
            panic!("injected panic in a segment append");
        }
        if ap
            .current
            .as_ref()
            .is_none_or(|c| c.len >= self.segment_bytes)
        {
            self.rotate(&mut ap, sync)?;
        }
        let Some(cur) = ap.current.as_mut() else {
            return Err(io::Error::other("no current segment"));
        };
        let mut locs = Vec::with_capacity(bodies.len());
        let mut off = cur.len;
        for b in bodies {
            locs.push(Loc {
                seg: cur.id,
                off: off as i64,
                sum: checksum(b),
            });
            off += b.len() as u64;
        }
        let written = write_all_at_end(&mut cur.file, bodies);
        let written = written.and_then(|()| if sync { cur.file.sync_data() } else { Ok(()) });
        if let Err(e) = written {
            // Whatever part was written is garbage no row will refer to;
            // appending after it keeps the offsets right.
            cur.len = cur.file.metadata().map_or(off, |m| m.len());
            return Err(e);
        }
        cur.len = off;
        *lock(&self.state).live.entry(cur.id).or_insert(0) += bodies.len() as u64;
        Ok(locs)
    }

    fn rotate(&self, ap: &mut Appender, sync: bool) -> io::Result<()> {
        let id = ap.next_id;
        let path = self.path(id);
        let file = OpenOptions::new()
            .create_new(true)
            .append(true)
            .open(&path)?;
        // The name is taken from here on, whatever happens next: a failed
        // directory sync must not make every later rotation hit it again.
        ap.next_id = id + 1;
        if sync {
            // The new name must survive a power failure too.
            let synced = self.sync_dir();
            if let Err(e) = synced {
                // No row refers to it; a leftover is deleted on open.
                let _ = std::fs::remove_file(&path);
                return Err(e);
            }
        }
        ap.current = Some(Current { id, file, len: 0 });
        let doomed = {
            let mut st = lock(&self.state);
            let old = st.current.replace(id);
            old.and_then(|old| {
                (st.live.get(&old).copied().unwrap_or(0) == 0).then(|| self.forget(&mut st, old))
            })
        };
        if let Some(d) = doomed {
            d.delete();
        }
        Ok(())
    }

    fn sync_dir(&self) -> io::Result<()> {
        #[cfg(test)]
        if self
            .faults
            .fail_next_dir_sync
            .swap(false, std::sync::atomic::Ordering::SeqCst)
        {
            return Err(io::Error::other("injected directory sync failure"));
        }
        File::open(&self.dir)?.sync_all()
    }

    /// Stops appending to the current segment (its length may no longer be
    /// known, e.g. after a panic in the middle of an append): the next
    /// append starts a new one. Returns the old one if it has no rows.
    pub(super) fn abandon_current(&self) -> Option<Doomed> {
        let mut ap = lock(&self.appender);
        ap.current = None;
        let mut st = lock(&self.state);
        let old = st.current.take()?;
        (st.live.get(&old).copied().unwrap_or(0) == 0).then(|| self.forget(&mut st, old))
    }

    fn forget(&self, st: &mut State, id: i64) -> Doomed {
        st.live.remove(&id);
        st.readers.remove(&id);
        Doomed {
            id,
            path: self.path(id),
        }
    }

    /// One row of `seg` is gone (acknowledged, quarantined, or never
    /// committed). When it was the segment's last and the segment is not
    /// being appended to, returns the file to [`delete`](Doomed::delete)
    /// (a blocking call: async callers do it on a blocking thread).
    pub(super) fn release(&self, seg: i64) -> Option<Doomed> {
        let mut st = lock(&self.state);
        let left = match st.live.get_mut(&seg) {
            Some(n) => {
                *n = n.saturating_sub(1);
                *n
            }
            None => return None,
        };
        (left == 0 && st.current != Some(seg)).then(|| self.forget(&mut st, seg))
    }

    /// Reads `len` bytes of `seg` at `off` and checks them against `sum`.
    pub(super) fn read(&self, loc: Loc, len: usize) -> Result<Vec<u8>, ReadError> {
        let io = |source| ReadError::Io {
            seg: loc.seg,
            source,
        };
        let file = {
            let mut st = lock(&self.state);
            match st.readers.get(&loc.seg) {
                Some(f) => f.clone(),
                None => {
                    let f = Arc::new(File::open(self.path(loc.seg)).map_err(io)?);
                    // Not for a segment already released: its handle
                    // would never be dropped.
                    if st.live.contains_key(&loc.seg) {
                        st.readers.insert(loc.seg, f.clone());
                    }
                    f
                }
            }
        };
        let mut buf = vec![0u8; len];
        if let Err(e) = file.read_exact_at(&mut buf, u64::try_from(loc.off).unwrap_or(u64::MAX)) {
            // The next attempt opens the file again (it may have been
            // replaced or restored meanwhile).
            let mut st = lock(&self.state);
            if st
                .readers
                .get(&loc.seg)
                .is_some_and(|f| Arc::ptr_eq(f, &file))
            {
                st.readers.remove(&loc.seg);
            }
            return Err(io(e));
        }
        if checksum(&buf) != loc.sum {
            return Err(ReadError::Checksum {
                seg: loc.seg,
                off: loc.off,
                len,
                bytes: buf,
            });
        }
        Ok(buf)
    }

    /// The directory.
    pub(super) fn dir(&self) -> &Path {
        &self.dir
    }
}

/// Deletes released segment files on a blocking thread (from async code:
/// unlinking a large file can take a while).
pub(super) async fn delete(doomed: Vec<Doomed>) {
    if doomed.is_empty() {
        return;
    }
    let done = tokio::task::spawn_blocking(move || doomed.into_iter().for_each(Doomed::delete));
    if let Err(e) = done.await {
        tracing::warn!(error = %e, "deleting acknowledged queue segments");
    }
}

/// One `write` per body is fine (bodies are large); `write_all` retries
/// short writes.
fn write_all_at_end(file: &mut File, bodies: &[&[u8]]) -> io::Result<()> {
    for b in bodies {
        file.write_all(b)?;
    }
    Ok(())
}

/// The segment directory of the queue file at `path`: `<file>-segments`
/// next to it.
pub(super) fn dir_of(path: &Path) -> PathBuf {
    let mut name = path
        .file_name()
        .map(std::ffi::OsStr::to_os_string)
        .unwrap_or_default();
    name.push("-segments");
    path.with_file_name(name)
}

/// The layout this build writes (`PRAGMA user_version`): 0 is every body
/// inline (the first release); 1 adds `seg`, `off` and `sum` (NULL for an
/// inline body).
const LAYOUT: i64 = 1;

/// Brings a queue file to [`LAYOUT`] in one transaction; refuses a newer
/// one (a build that does not know where its bodies are must not deliver
/// them as empty).
pub(super) async fn migrate(conn: &mut sqlx::SqliteConnection) -> Result<(), QueueError> {
    use sqlx::Connection;
    let version: i64 = sqlx::query_scalar("PRAGMA user_version")
        .fetch_one(&mut *conn)
        .await
        .map_err(|e| db("reading the queue layout", e))?;
    if version > LAYOUT {
        return Err(backend(
            format!(
                "the queue file has layout {version}, written by a newer build; this build reads up to {LAYOUT}"
            ),
            ErrorKind::Permanent,
        ));
    }
    if version == LAYOUT {
        return Ok(());
    }
    let mut tx = conn
        .begin()
        .await
        .map_err(|e| db("migrating the queue", e))?;
    for stmt in [
        "ALTER TABLE queue ADD COLUMN seg INTEGER",
        "ALTER TABLE queue ADD COLUMN off INTEGER",
        "ALTER TABLE queue ADD COLUMN sum INTEGER",
        "PRAGMA user_version = 1",
    ] {
        sqlx::query(stmt)
            .execute(&mut *tx)
            .await
            .map_err(|e| db("migrating the queue", e))?;
    }
    tx.commit()
        .await
        .map_err(|e| db("migrating the queue", e))?;
    Ok(())
}

/// Rows per segment that the file refers to.
pub(super) async fn live_rows(
    conn: &mut sqlx::SqliteConnection,
) -> Result<BTreeMap<i64, u64>, QueueError> {
    let rows: Vec<(i64, i64)> =
        sqlx::query_as("SELECT seg, COUNT(*) FROM queue WHERE seg IS NOT NULL GROUP BY seg")
            .fetch_all(&mut *conn)
            .await
            .map_err(|e| db("counting rows per segment", e))?;
    Ok(rows.into_iter().map(|(s, n)| (s, n as u64)).collect())
}

#[cfg(test)]
mod tests {
    #![allow(clippy::unwrap_used)]
    use super::*;

    #[test]
    fn release_and_read_do_not_wait_for_an_append_in_progress() {
        let dir = tempfile::tempdir().unwrap();
        let segs = Segments::open(dir.path().join("s"), 1, BTreeMap::new()).unwrap();
        let a = segs.append(&[&b"one"[..]], true).unwrap();
        let b = segs.append(&[&b"two"[..]], true).unwrap();
        // An append holds the appender's lock through its write and sync;
        // acks (release) and reads on the same thread must not wait for it.
        let _appending = lock(&segs.appender);
        assert_eq!(segs.read(a[0], 3).unwrap(), b"one");
        let doomed = segs.release(a[0].seg).unwrap();
        doomed.delete();
        assert_eq!(segs.files().unwrap(), 1);
        assert!(
            segs.release(b[0].seg).is_none(),
            "the current segment stays"
        );
        assert_eq!(segs.read(b[0], 3).unwrap(), b"two");
    }
}
