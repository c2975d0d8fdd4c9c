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

#[derive(Default)]
struct State {
    current: Option<Current>,
    /// Rows (committed or being committed) per segment.
    live: BTreeMap<i64, u64>,
    /// Open read handles.
    readers: HashMap<i64, Arc<File>>,
    next_id: i64,
}

/// The segment directory of one queue.
pub(super) struct Segments {
    dir: PathBuf,
    segment_bytes: u64,
    state: Mutex<State>,
}

/// Why a body could not be read back.
#[derive(Debug, thiserror::Error)]
pub(super) enum ReadError {
    #[error("queue segment {seg}: {source}")]
    Io { seg: i64, source: io::Error },
    #[error(
        "queue segment {seg} at byte {off}: checksum mismatch over {len} bytes (the stored bytes are damaged or were not written before a power failure)"
    )]
    Checksum { seg: i64, off: i64, len: usize },
}

fn file_name(id: i64) -> String {
    format!("{id:016}.seg")
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
            state: Mutex::new(State {
                live,
                next_id: max_id + 1,
                ..State::default()
            }),
        })
    }

    fn lock(&self) -> MutexGuard<'_, State> {
        self.state
            .lock()
            .unwrap_or_else(std::sync::PoisonError::into_inner)
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
    /// row of its segment until [`release`](Self::release)d.
    pub(super) fn append(&self, bodies: &[&[u8]], sync: bool) -> io::Result<Vec<Loc>> {
        let mut st = self.lock();
        if st
            .current
            .as_ref()
            .is_none_or(|c| c.len >= self.segment_bytes)
        {
            self.rotate(&mut st, sync)?;
        }
        let st = &mut *st;
        let Some(cur) = st.current.as_mut() else {
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
        *st.live.entry(cur.id).or_insert(0) += bodies.len() as u64;
        Ok(locs)
    }

    fn rotate(&self, st: &mut State, sync: bool) -> io::Result<()> {
        let id = st.next_id;
        let file = OpenOptions::new()
            .create_new(true)
            .append(true)
            .open(self.path(id))?;
        if sync {
            // The new name must survive a power failure too.
            File::open(&self.dir)?.sync_all()?;
        }
        st.next_id = id + 1;
        let old = st.current.replace(Current { id, file, len: 0 });
        if let Some(old) = old
            && st.live.get(&old.id).copied().unwrap_or(0) == 0
        {
            self.remove(st, old.id);
        }
        Ok(())
    }

    fn remove(&self, st: &mut State, id: i64) {
        st.live.remove(&id);
        st.readers.remove(&id);
        if let Err(e) = std::fs::remove_file(self.path(id))
            && e.kind() != io::ErrorKind::NotFound
        {
            tracing::warn!(error = %e, segment = id, "deleting an acknowledged queue segment");
        }
    }

    /// One row of `seg` is gone (acknowledged, quarantined, or never
    /// committed); deletes the segment when it was its last and it is not
    /// being appended to.
    pub(super) fn release(&self, seg: i64) {
        let mut st = self.lock();
        let left = match st.live.get_mut(&seg) {
            Some(n) => {
                *n = n.saturating_sub(1);
                *n
            }
            None => return,
        };
        let current = st.current.as_ref().is_some_and(|c| c.id == seg);
        if left == 0 && !current {
            self.remove(&mut st, seg);
        }
    }

    /// Reads `len` bytes of `seg` at `off` and checks them against `sum`.
    pub(super) fn read(&self, loc: Loc, len: usize) -> Result<Vec<u8>, ReadError> {
        let file = {
            let mut st = self.lock();
            match st.readers.get(&loc.seg) {
                Some(f) => f.clone(),
                None => {
                    let f = Arc::new(File::open(self.path(loc.seg)).map_err(|source| {
                        ReadError::Io {
                            seg: loc.seg,
                            source,
                        }
                    })?);
                    st.readers.insert(loc.seg, f.clone());
                    f
                }
            }
        };
        let mut buf = vec![0u8; len];
        file.read_exact_at(&mut buf, u64::try_from(loc.off).unwrap_or(u64::MAX))
            .map_err(|source| ReadError::Io {
                seg: loc.seg,
                source,
            })?;
        if checksum(&buf) != loc.sum {
            return Err(ReadError::Checksum {
                seg: loc.seg,
                off: loc.off,
                len,
            });
        }
        Ok(buf)
    }

    /// The directory.
    pub(super) fn dir(&self) -> &Path {
        &self.dir
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
