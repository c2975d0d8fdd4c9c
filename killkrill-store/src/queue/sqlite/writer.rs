//! Group commit: the task that inserts enqueued batches.

use std::sync::Arc;

use killkrill_core::pipeline::QueueError;
use sqlx::Connection;
use tokio::sync::{mpsc, oneshot};

use super::{Shared, db, now_ms};

/// One enqueue handed to the writer task.
pub(super) struct Insert {
    pub(super) batch_id: [u8; 16],
    pub(super) events: i64,
    pub(super) payload: Vec<u8>,
    pub(super) done: oneshot::Sender<Result<(), QueueError>>,
}

/// Most inserts committed in one transaction.
const GROUP_COMMIT_MAX: usize = 256;

/// The writer task: commits every enqueue waiting in the channel in one
/// transaction (group commit: with `synchronous = FULL`, one fsync for all
/// of them), then answers each.
pub(super) async fn write_loop(shared: Arc<Shared>, mut rx: mpsc::UnboundedReceiver<Insert>) {
    while let Some(first) = rx.recv().await {
        let mut group = vec![first];
        while group.len() < GROUP_COMMIT_MAX {
            match rx.try_recv() {
                Ok(i) => group.push(i),
                Err(_) => break,
            }
        }
        let result = insert_group(&shared, &group).await;
        if result.is_ok() {
            shared.readable.notify_waiters();
        }
        for i in group {
            let size = (i.events as u64, i.payload.len() as u64);
            if i.done.send(result.clone()).is_err() && result.is_err() {
                // The caller is gone and cannot give its room back.
                shared.held.release(1, size.0, size.1);
            }
        }
    }
}

async fn insert_group(shared: &Shared, group: &[Insert]) -> Result<(), QueueError> {
    let mut guard = shared.conn.lock().await;
    let Some(c) = guard.as_mut() else {
        return Err(QueueError::Closed);
    };
    let now = now_ms();
    let mut tx = c.begin().await.map_err(|e| db("inserting batches", e))?;
    for i in group {
        sqlx::query(
            "INSERT INTO queue (batch_id, events, bytes, enqueued_ms, state, visible_at, payload) VALUES (?, ?, ?, ?, 0, ?, ?)",
        )
        .bind(&i.batch_id[..])
        .bind(i.events)
        .bind(i.payload.len() as i64)
        .bind(now)
        .bind(now)
        .bind(&i.payload[..])
        .execute(&mut *tx)
        .await
        .map_err(|e| db("inserting a batch", e))?;
    }
    tx.commit().await.map_err(|e| db("committing batches", e))?;
    metrics::histogram!("killkrill_queue_group_commit_batches", "queue" => "sqlite")
        .record(group.len() as f64);
    Ok(())
}
