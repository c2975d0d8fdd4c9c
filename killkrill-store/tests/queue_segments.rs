//! The SQLite queue's segment files: large bodies written once next to the
//! queue file. Round trips (plain, zstd, `synchronous = FULL`, across a
//! reopen), space given back whole, damaged or missing bodies dead-lettered
//! with their error, stray segments removed on open, and a queue file in
//! the first release's layout (every body inline, `user_version` 0) read
//! and migrated in place.
#![allow(clippy::unwrap_used, clippy::print_stderr)]

mod queue_support;

use std::path::{Path, PathBuf};
use std::sync::Arc;
use std::time::Duration;

use killkrill_core::pipeline::{
    BatchCodec, Compression, DeadLetterPayload, DeadLetterReason, MemoryDeadLetter, Queue,
    QueueError,
};
use killkrill_store::config::SqliteSync;
use killkrill_store::queue::{SqliteQueue, SqliteQueueOptions};
use queue_support::*;
use sqlx::Connection;

fn shape() -> Shape {
    Shape {
        batches: 10_000,
        events: 20,
        visibility: Duration::from_secs(30),
    }
}

/// Every body in segments of `segment_bytes`.
fn segmented(segment_bytes: u64) -> SqliteQueueOptions {
    SqliteQueueOptions {
        inline_max_bytes: 0,
        segment_bytes,
        ..sqlite_options(shape())
    }
}

/// A batch with records of about 500 bytes each, distinct per batch.
fn big(id: u128, events: u64) -> killkrill_core::pipeline::Batch {
    let mut b = batch(id, events);
    for (i, r) in b.logs.iter_mut().enumerate() {
        r.message = Some(format!("batch {id} record {i} {}", "y".repeat(480)).into_bytes());
    }
    b
}

fn segment_dir(path: &Path) -> PathBuf {
    let mut name = path.file_name().unwrap().to_os_string();
    name.push("-segments");
    path.with_file_name(name)
}

fn segment_paths(path: &Path) -> Vec<PathBuf> {
    let mut v: Vec<PathBuf> = std::fs::read_dir(segment_dir(path))
        .unwrap()
        .map(|e| e.unwrap().path())
        .filter(|p| p.extension().is_some_and(|e| e == "seg"))
        .collect();
    v.sort();
    v
}

async fn round_trip(opts: SqliteQueueOptions) {
    let dir = tempfile::tempdir().unwrap();
    let path = dir.path().join("q.db");
    let q = SqliteQueue::open(&path, opts).await.unwrap();
    for i in 1..=40 {
        q.try_enqueue(big(i, 20)).await.unwrap();
    }
    // Inline rows carry no body: the bytes are in the segments.
    assert!(q.segment_files().unwrap() > 1, "small segments rotate");
    let ds = collect(&q, 40, Duration::from_secs(10)).await;
    assert_eq!(ids(&ds), (1..=40).collect::<Vec<u128>>());
    for d in &ds {
        assert_eq!(*d.batch, big(d.batch.id.as_u128(), 20));
    }
    let s = q.stats().await.unwrap();
    assert_eq!((s.batches, s.events), (40, Some(800)));
    for chunk in ds.chunks(7) {
        let ids: Vec<_> = chunk.iter().map(|d| d.id).collect();
        q.ack(&ids).await.unwrap();
    }
    // Every segment but the one being appended to is gone.
    assert!(
        q.segment_files().unwrap() <= 1,
        "{} segment files left",
        q.segment_files().unwrap()
    );
    let s = q.stats().await.unwrap();
    assert_eq!((s.batches, s.events, s.bytes), (0, Some(0), Some(0)));
}

#[tokio::test]
async fn segment_bodies_round_trip_and_space_comes_back() {
    round_trip(segmented(64 << 10)).await;
}

#[tokio::test]
async fn zstd_compressed_segment_bodies_round_trip() {
    round_trip(SqliteQueueOptions {
        compression: Compression::Zstd(1),
        ..segmented(1)
    })
    .await;
}

#[tokio::test]
async fn segment_bodies_round_trip_with_synchronous_full() {
    round_trip(SqliteQueueOptions {
        synchronous: SqliteSync::Full,
        ..segmented(64 << 10)
    })
    .await;
}

#[tokio::test]
async fn small_bodies_stay_inline_large_ones_go_to_segments() {
    let dir = tempfile::tempdir().unwrap();
    let path = dir.path().join("q.db");
    let q = SqliteQueue::open(
        &path,
        SqliteQueueOptions {
            inline_max_bytes: 4 << 10,
            ..sqlite_options(shape())
        },
    )
    .await
    .unwrap();
    q.try_enqueue(batch(1, 2)).await.unwrap();
    assert_eq!(q.segment_files().unwrap(), 0);
    q.try_enqueue(big(2, 20)).await.unwrap();
    assert_eq!(q.segment_files().unwrap(), 1);
    let ds = q.dequeue(10, Duration::ZERO).await.unwrap();
    assert_eq!(*ds[0].batch, batch(1, 2));
    assert_eq!(*ds[1].batch, big(2, 20));
    q.shutdown().await;
    let mut c = sqlx::SqliteConnection::connect(&format!("sqlite://{}", path.display()))
        .await
        .unwrap();
    let rows: Vec<(i64, Option<i64>)> =
        sqlx::query_as("SELECT length(payload), seg FROM queue ORDER BY seq")
            .fetch_all(&mut c)
            .await
            .unwrap();
    assert!(rows[0].0 > 0 && rows[0].1.is_none(), "{rows:?}");
    assert!(rows[1].0 == 0 && rows[1].1.is_some(), "{rows:?}");
    c.close().await.unwrap();
}

#[tokio::test]
async fn segment_bodies_survive_a_reopen_and_stray_segments_are_removed() {
    let dir = tempfile::tempdir().unwrap();
    let path = dir.path().join("q.db");
    {
        let q = SqliteQueue::open(
            &path,
            SqliteQueueOptions {
                visibility_timeout: Duration::from_millis(50),
                ..segmented(16 << 10)
            },
        )
        .await
        .unwrap();
        for i in 1..=10 {
            q.try_enqueue(big(i, 20)).await.unwrap();
        }
        // Delivered but not acknowledged: comes back after the reopen.
        assert_eq!(q.dequeue(3, Duration::ZERO).await.unwrap().len(), 3);
        q.shutdown().await;
    }
    let before = segment_paths(&path);
    assert!(!before.is_empty());
    // Bytes appended but never committed (a crash between the two) leave a
    // segment no row refers to.
    let stray = segment_dir(&path).join("0000000000999999.seg");
    std::fs::write(&stray, b"garbage").unwrap();
    let q = SqliteQueue::open(&path, segmented(16 << 10)).await.unwrap();
    assert!(!stray.exists(), "the stray segment was not removed");
    assert_eq!(segment_paths(&path), before);
    // The three leases of the first session run out.
    tokio::time::sleep(Duration::from_millis(100)).await;
    let ds = collect(&q, 10, Duration::from_secs(10)).await;
    assert_eq!(ids(&ds), (1..=10).collect::<Vec<u128>>());
    for d in &ds {
        assert_eq!(*d.batch, big(d.batch.id.as_u128(), 20));
    }
    // New segments continue after the highest number seen, the stray one
    // included, so nothing new lands in a name a row may still refer to.
    q.try_enqueue(big(11, 20)).await.unwrap();
    let after = segment_paths(&path);
    let newest = after.last().unwrap().file_name().unwrap().to_owned();
    assert_eq!(newest, "0000000001000000.seg");
    q.ack(&ds.iter().map(|d| d.id).collect::<Vec<_>>())
        .await
        .unwrap();
    assert_eq!(segment_paths(&path).len(), 1);
}

/// Flips a byte in the middle of the first segment.
fn damage_first_segment(path: &Path) {
    let seg = segment_paths(path).into_iter().next().unwrap();
    let mut bytes = std::fs::read(&seg).unwrap();
    let mid = bytes.len() / 4;
    bytes[mid] ^= 0x55;
    std::fs::write(&seg, bytes).unwrap();
}

/// A first lease takes the batch this process enqueued from memory (the
/// damaged body is not read); a redelivery reads the body, and so does
/// every lease when the memory is off.
#[tokio::test]
async fn a_first_lease_takes_the_enqueued_batch_a_redelivery_reads_its_body() {
    for hot in [true, false] {
        let dir = tempfile::tempdir().unwrap();
        let path = dir.path().join("q.db");
        let dl = Arc::new(MemoryDeadLetter::new(10));
        let q = SqliteQueue::open(
            &path,
            SqliteQueueOptions {
                dead_letter: Some(dl.clone()),
                visibility_timeout: Duration::from_millis(200),
                hot_cache_bytes: if hot { 64 << 20 } else { 0 },
                ..segmented(1)
            },
        )
        .await
        .unwrap();
        for i in 1..=3 {
            q.try_enqueue(big(i, 20)).await.unwrap();
        }
        damage_first_segment(&path);
        let ds = q.dequeue(10, Duration::ZERO).await.unwrap();
        if !hot {
            assert_eq!(ids(&ds), [2, 3], "read from the body: batch 1 is damaged");
            assert_eq!(dl.entries().len(), 1);
            continue;
        }
        assert_eq!(ids(&ds), [1, 2, 3], "in queue order, from memory");
        assert_eq!(*ds[0].batch, big(1, 20), "exactly the batch enqueued");
        assert!(dl.entries().is_empty());
        // Batches 2 and 3 are done; batch 1's lease runs out.
        q.ack(&[ds[1].id, ds[2].id]).await.unwrap();
        tokio::time::sleep(Duration::from_millis(300)).await;
        let again = q.dequeue(10, Duration::ZERO).await.unwrap();
        assert!(again.is_empty(), "the redelivery read the damaged body");
        let letters = dl.entries();
        assert_eq!(letters.len(), 1);
        assert_eq!(letters[0].reason, DeadLetterReason::Undecodable);
        assert_eq!(letters[0].deliveries, 2);
    }
}

#[tokio::test]
async fn a_damaged_segment_body_is_dead_lettered_with_its_error() {
    let dir = tempfile::tempdir().unwrap();
    let path = dir.path().join("q.db");
    {
        // One body per segment: the damage hits batch 1 only.
        let q = SqliteQueue::open(&path, segmented(1)).await.unwrap();
        for i in 1..=3 {
            q.try_enqueue(big(i, 20)).await.unwrap();
        }
        q.shutdown().await;
    }
    damage_first_segment(&path);
    let dl = Arc::new(MemoryDeadLetter::new(10));
    let q = SqliteQueue::open(
        &path,
        SqliteQueueOptions {
            dead_letter: Some(dl.clone()),
            ..segmented(1)
        },
    )
    .await
    .unwrap();
    let ds = q.dequeue(10, Duration::ZERO).await.unwrap();
    assert_eq!(ids(&ds), [2, 3]);
    let letters = dl.entries();
    assert_eq!(letters.len(), 1);
    assert_eq!(letters[0].reason, DeadLetterReason::Undecodable);
    assert!(
        letters[0].error.contains("checksum mismatch"),
        "{}",
        letters[0].error
    );
    assert_eq!(letters[0].deliveries, 1);
    // With the bytes read: the stored body with the one damaged byte.
    let DeadLetterPayload::Undecodable { bytes, .. } = &letters[0].payload else {
        panic!("not an undecodable entry");
    };
    let written = BatchCodec::new()
        .with_compression(sqlite_options(shape()).compression)
        .encode_to_vec(&big(1, 20))
        .unwrap();
    assert_eq!(bytes.len(), written.len());
    assert_eq!(
        bytes.iter().zip(&written).filter(|(a, b)| a != b).count(),
        1
    );
    // Gone from the queue, counted out of its size, its segment deleted.
    let s = q.stats().await.unwrap();
    assert_eq!((s.batches, s.events), (2, Some(40)));
    q.ack(&[ds[0].id, ds[1].id]).await.unwrap();
    assert!(q.segment_files().unwrap() <= 1);
}

#[tokio::test]
async fn a_missing_segment_is_quarantined_with_its_error() {
    let dir = tempfile::tempdir().unwrap();
    let path = dir.path().join("q.db");
    {
        let q = SqliteQueue::open(&path, segmented(1)).await.unwrap();
        for i in 1..=2 {
            q.try_enqueue(big(i, 20)).await.unwrap();
        }
        q.shutdown().await;
    }
    std::fs::remove_file(&segment_paths(&path)[0]).unwrap();
    // Without a dead-letter store: quarantined in the file with the error.
    let q = SqliteQueue::open(&path, segmented(1)).await.unwrap();
    let ds = q.dequeue(10, Duration::ZERO).await.unwrap();
    assert_eq!(ids(&ds), [2]);
    assert_eq!(q.quarantined().await.unwrap(), 1);
    q.shutdown().await;
    let mut c = sqlx::SqliteConnection::connect(&format!("sqlite://{}", path.display()))
        .await
        .unwrap();
    let error: String = sqlx::query_scalar("SELECT error FROM undecodable")
        .fetch_one(&mut c)
        .await
        .unwrap();
    assert!(error.contains("queue segment"), "{error}");
    c.close().await.unwrap();
}

/// The first release's schema, verbatim: every body inline, no layout
/// version.
const MAIN_SCHEMA: &[&str] = &[
    "PRAGMA auto_vacuum = INCREMENTAL",
    "PRAGMA journal_mode = WAL",
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
    "CREATE INDEX IF NOT EXISTS queue_pending ON queue (visible_at) WHERE state > 0",
    "CREATE TABLE IF NOT EXISTS undecodable (
        seq INTEGER PRIMARY KEY,
        error TEXT NOT NULL,
        deliveries INTEGER NOT NULL,
        at_ms INTEGER NOT NULL,
        payload BLOB NOT NULL
    )",
];

/// A queue file as the first release wrote it, holding `batches` (one of
/// them delivered once and not acknowledged).
async fn old_queue_file(path: &Path, batches: &[killkrill_core::pipeline::Batch]) {
    let mut c = sqlx::SqliteConnection::connect(&format!("sqlite://{}?mode=rwc", path.display()))
        .await
        .unwrap();
    for stmt in MAIN_SCHEMA {
        sqlx::query(*stmt).execute(&mut c).await.unwrap();
    }
    for (i, b) in batches.iter().enumerate() {
        let payload = BatchCodec::new().encode_to_vec(b).unwrap();
        let (state, deliveries) = if i == 0 { (1, 1) } else { (0, 0) };
        sqlx::query(
            "INSERT INTO queue (batch_id, events, bytes, enqueued_ms, state, visible_at, deliveries, payload) VALUES (?, ?, ?, 0, ?, 0, ?, ?)",
        )
        .bind(&b.id.to_bytes()[..])
        .bind(b.len() as i64)
        .bind(payload.len() as i64)
        .bind(state)
        .bind(deliveries)
        .bind(payload)
        .execute(&mut c)
        .await
        .unwrap();
    }
    c.close().await.unwrap();
}

async fn user_version(path: &Path) -> i64 {
    let mut c = sqlx::SqliteConnection::connect(&format!("sqlite://{}", path.display()))
        .await
        .unwrap();
    let v = sqlx::query_scalar("PRAGMA user_version")
        .fetch_one(&mut c)
        .await
        .unwrap();
    c.close().await.unwrap();
    v
}

#[tokio::test]
async fn a_queue_file_of_the_first_layout_is_migrated_and_read() {
    let dir = tempfile::tempdir().unwrap();
    let path = dir.path().join("q.db");
    let old = [big(1, 20), batch(2, 3), big(3, 20)];
    old_queue_file(&path, &old).await;
    assert_eq!(user_version(&path).await, 0);
    let q = SqliteQueue::open(&path, segmented(1 << 20)).await.unwrap();
    // Sizes are counted from the old rows.
    let s = q.stats().await.unwrap();
    assert_eq!((s.batches, s.events), (3, Some(43)));
    // New large bodies go to segments in the same file.
    q.try_enqueue(big(4, 20)).await.unwrap();
    assert_eq!(q.segment_files().unwrap(), 1);
    let ds = collect(&q, 4, Duration::from_secs(10)).await;
    assert_eq!(ids(&ds), [1, 2, 3, 4]);
    assert_eq!(ds[0].attempts, 2, "the old delivery count is kept");
    for (d, want) in ds.iter().zip(old.iter().chain([&big(4, 20)])) {
        assert_eq!(*d.batch, *want);
    }
    q.ack(&ds.iter().map(|d| d.id).collect::<Vec<_>>())
        .await
        .unwrap();
    let s = q.stats().await.unwrap();
    assert_eq!((s.batches, s.events, s.bytes), (0, Some(0), Some(0)));
    q.shutdown().await;
    assert_eq!(user_version(&path).await, 1);
    // Opening again does not migrate twice.
    let q = SqliteQueue::open(&path, segmented(1 << 20)).await.unwrap();
    q.try_enqueue(big(5, 20)).await.unwrap();
    assert_eq!(ids(&q.dequeue(10, Duration::ZERO).await.unwrap()), [5]);
}

#[tokio::test]
async fn a_queue_file_of_a_newer_layout_is_refused() {
    let dir = tempfile::tempdir().unwrap();
    let path = dir.path().join("q.db");
    old_queue_file(&path, &[batch(1, 1)]).await;
    let mut c = sqlx::SqliteConnection::connect(&format!("sqlite://{}", path.display()))
        .await
        .unwrap();
    sqlx::query("PRAGMA user_version = 7")
        .execute(&mut c)
        .await
        .unwrap();
    c.close().await.unwrap();
    match SqliteQueue::open(&path, segmented(1 << 20)).await {
        Err(QueueError::Backend { message, .. }) => {
            assert!(message.contains("layout 7"), "{message}");
        }
        Err(e) => panic!("unexpected error {e}"),
        Ok(_) => panic!("a newer layout was opened"),
    }
}

#[tokio::test]
async fn concurrent_enqueues_share_commits_and_segments() {
    let dir = tempfile::tempdir().unwrap();
    let path = dir.path().join("q.db");
    let q: Arc<dyn Queue> = Arc::new(
        SqliteQueue::open(&path, segmented(256 << 10))
            .await
            .unwrap(),
    );
    let mut tasks = Vec::new();
    for t in 0..4u128 {
        let q = q.clone();
        tasks.push(tokio::spawn(async move {
            for i in 0..25u128 {
                q.enqueue(big(t * 1000 + i, 10), Duration::from_secs(5))
                    .await
                    .unwrap();
            }
        }));
    }
    for t in tasks {
        t.await.unwrap();
    }
    let ds = collect(&*q, 100, Duration::from_secs(10)).await;
    assert_eq!(ds.len(), 100);
    let mut got = ids(&ds);
    got.sort_unstable();
    let mut want: Vec<u128> = (0..4u128)
        .flat_map(|t| (0..25u128).map(move |i| t * 1000 + i))
        .collect();
    want.sort_unstable();
    assert_eq!(got, want);
    for d in &ds {
        assert_eq!(*d.batch, big(d.batch.id.as_u128(), 10));
    }
}

#[tokio::test]
async fn an_unreadable_segment_keeps_its_entry_until_it_can_be_read() {
    let dir = tempfile::tempdir().unwrap();
    let path = dir.path().join("q.db");
    {
        let q = SqliteQueue::open(&path, segmented(1)).await.unwrap();
        for i in 1..=2 {
            q.try_enqueue(big(i, 20)).await.unwrap();
        }
        q.shutdown().await;
    }
    // The first segment cannot be read (a directory where the file was:
    // opening works, reading fails with EISDIR; chmod would not stop root).
    let seg = segment_paths(&path)[0].clone();
    let aside = seg.with_extension("aside");
    std::fs::rename(&seg, &aside).unwrap();
    std::fs::create_dir(&seg).unwrap();
    let dl = Arc::new(MemoryDeadLetter::new(10));
    let q = SqliteQueue::open(
        &path,
        SqliteQueueOptions {
            dead_letter: Some(dl.clone()),
            visibility_timeout: Duration::from_millis(300),
            ..segmented(1)
        },
    )
    .await
    .unwrap();
    let ds = q.dequeue(10, Duration::ZERO).await.unwrap();
    assert_eq!(ids(&ds), [2]);
    // Not dead-lettered, not quarantined, still held.
    assert!(dl.entries().is_empty());
    assert_eq!(q.quarantined().await.unwrap(), 0);
    assert_eq!(q.stats().await.unwrap().batches, 2);
    q.ack(&[ds[0].id]).await.unwrap();
    // Still unreadable after its lease: kept again.
    tokio::time::sleep(Duration::from_millis(400)).await;
    assert!(q.dequeue(10, Duration::ZERO).await.unwrap().is_empty());
    assert!(dl.entries().is_empty());
    // Restored: delivered intact, its failed reads not counted as deliveries.
    std::fs::remove_dir(&seg).unwrap();
    std::fs::rename(&aside, &seg).unwrap();
    let ds = collect(&q, 1, Duration::from_secs(5)).await;
    assert_eq!(ids(&ds), [1]);
    assert_eq!(*ds[0].batch, big(1, 20));
    assert_eq!(ds[0].attempts, 1);
    q.ack(&[ds[0].id]).await.unwrap();
    assert_eq!(q.stats().await.unwrap().batches, 0);
    assert!(dl.entries().is_empty());
}
