//! Group commit: the task that inserts enqueued batches.

use std::sync::Arc;

use killkrill_core::pipeline::{Batch, ErrorKind, QueueError};
use sqlx::Connection;
use tokio::sync::{mpsc, oneshot};

use super::segments::Loc;
use super::{Shared, backend, db, now_ms};

/// One enqueue handed to the writer task.
pub(super) struct Insert {
    pub(super) batch_id: [u8; 16],
    pub(super) events: i64,
    pub(super) payload: Vec<u8>,
    /// The batch and its estimated size, for [`Hot`](super::hot::Hot).
    pub(super) keep: Option<(usize, Arc<Batch>)>,
    pub(super) done: oneshot::Sender<Result<(), QueueError>>,
}

/// Most inserts committed in one transaction.
const GROUP_COMMIT_MAX: usize = 256;

/// The writer task: commits every enqueue waiting in the channel in one
/// transaction (group commit: with `synchronous = FULL`, one fsync for all
/// of them), then answers each. Bodies larger than the inline limit are
/// appended to the current segment file first (and synced with `FULL`), so
/// a committed row never refers to bytes that were not written.
pub(super) async fn write_loop(shared: Arc<Shared>, mut rx: mpsc::UnboundedReceiver<Insert>) {
    while let Some(first) = rx.recv().await {
        let mut group = vec![first];
        while group.len() < GROUP_COMMIT_MAX {
            match rx.try_recv() {
                Ok(i) => group.push(i),
                Err(_) => break,
            }
        }
        let (group, result) = write_group(&shared, group).await;
        if result.is_ok() {
            shared.readable.notify_waiters();
        }
        // The writer alone gives a failed insert's room back, before it
        // answers: the caller may be gone already, or drop its future
        // between this answer and reading it (a client hanging up during a
        // database error storm), and a reservation nobody releases would
        // shrink the queue for good.
        if result.is_err() {
            for i in &group {
                shared
                    .held
                    .release(1, i.events as u64, i.payload.len() as u64);
            }
            shared.writable.notify_waiters();
        }
        for i in group {
            let _ = i.done.send(result.clone());
        }
    }
}

/// Appends the large bodies to a segment, then inserts every row.
async fn write_group(
    shared: &Arc<Shared>,
    group: Vec<Insert>,
) -> (Vec<Insert>, Result<(), QueueError>) {
    let inline_max = shared.inline_max_bytes;
    let (group, locs) = if group.iter().any(|i| i.payload.len() > inline_max) {
        let sizes: Vec<(u64, u64)> = group
            .iter()
            .map(|i| (i.events as u64, i.payload.len() as u64))
            .collect();
        let s = shared.clone();
        let appended = tokio::task::spawn_blocking(move || {
            let bodies: Vec<&[u8]> = group
                .iter()
                .filter(|i| i.payload.len() > inline_max)
                .map(|i| &i.payload[..])
                .collect();
            // A panic must not take the group with it: its callers get an
            // error and their room back like for any failed append.
            let locs = std::panic::catch_unwind(std::panic::AssertUnwindSafe(|| {
                s.segments.append(&bodies, s.sync_segments)
            }))
            .unwrap_or_else(|_| {
                // Where the current segment ends is no longer known.
                if let Some(d) = s.segments.abandon_current() {
                    d.delete();
                }
                Err(std::io::Error::other("the append panicked"))
            });
            drop(bodies);
            (group, locs)
        })
        .await;
        match appended {
            Ok((group, Ok(locs))) => (group, locs),
            Ok((group, Err(e))) => {
                let err = backend(
                    format!("sqlite queue: appending to a segment file: {e}"),
                    ErrorKind::Retryable,
                );
                return (group, Err(err));
            }
            Err(e) => {
                // The blocking task was cancelled or panicked outside the
                // append: the group is gone with it, so its room goes back
                // here, and every caller sees the answer channel close.
                tracing::error!(error = %e, "sqlite queue: segment append failed");
                for (events, bytes) in sizes {
                    shared.held.release(1, events, bytes);
                }
                shared.writable.notify_waiters();
                return (Vec::new(), Ok(()));
            }
        }
    } else {
        (group, Vec::new())
    };
    let result = insert_group(shared, &group, &locs).await;
    if result.is_err() {
        let doomed: Vec<_> = locs
            .iter()
            .filter_map(|l| shared.segments.release(l.seg))
            .collect();
        super::segments::delete(doomed).await;
    }
    (group, result)
}

async fn insert_group(shared: &Shared, group: &[Insert], locs: &[Loc]) -> Result<(), QueueError> {
    let mut kept = Vec::new();
    let result = insert_rows(shared, group, locs, &mut kept).await;
    if result.is_err() && !kept.is_empty() {
        // A rolled-back seq can be given to another row.
        let mut hot = shared.hot.lock().unwrap_or_else(|e| e.into_inner());
        for seq in kept {
            hot.forget(seq);
        }
    }
    result
}

/// Inserts the rows in one transaction; each kept batch goes to `hot`
/// before the commit (its seq into `kept`).
async fn insert_rows(
    shared: &Shared,
    group: &[Insert],
    locs: &[Loc],
    kept: &mut Vec<i64>,
) -> Result<(), QueueError> {
    let mut guard = shared.conn.lock().await;
    let Some(c) = guard.as_mut() else {
        return Err(QueueError::Closed);
    };
    let now = now_ms();
    let mut locs = locs.iter();
    let mut tx = c.begin().await.map_err(|e| db("inserting batches", e))?;
    for i in group {
        let loc = if i.payload.len() > shared.inline_max_bytes {
            locs.next().copied()
        } else {
            None
        };
        let inline: &[u8] = if loc.is_some() { &[] } else { &i.payload };
        let done = sqlx::query(
            "INSERT INTO queue (batch_id, events, bytes, enqueued_ms, state, visible_at, payload, seg, off, sum) VALUES (?, ?, ?, ?, 0, ?, ?, ?, ?, ?)",
        )
        .bind(&i.batch_id[..])
        .bind(i.events)
        .bind(i.payload.len() as i64)
        .bind(now)
        .bind(now)
        .bind(inline)
        .bind(loc.map(|l| l.seg))
        .bind(loc.map(|l| l.off))
        .bind(loc.map(|l| l.sum))
        .execute(&mut *tx)
        .await
        .map_err(|e| db("inserting a batch", e))?;
        if let Some((size, batch)) = &i.keep {
            let seq = done.last_insert_rowid();
            kept.push(seq);
            shared
                .hot
                .lock()
                .unwrap_or_else(|e| e.into_inner())
                .put(seq, Arc::clone(batch), *size);
        }
    }
    tx.commit().await.map_err(|e| db("committing batches", e))?;
    metrics::histogram!("killkrill_queue_group_commit_batches", "queue" => "sqlite")
        .record(group.len() as f64);
    Ok(())
}
