//! What only the durable queues do: space reclamation, quarantine of bytes
//! that no longer decode, exclusive ownership of the SQLite file, trimming
//! of acknowledged Redis entries.
#![allow(clippy::unwrap_used, clippy::print_stderr)]

mod queue_support;

use std::sync::Arc;
use std::time::Duration;

use killkrill_core::pipeline::{DeadLetterReason, MemoryDeadLetter, Queue, QueueError};
use killkrill_store::queue::{RedisStreamsQueue, SqliteQueue, SqliteQueueOptions};
use queue_support::*;
use sqlx::Connection;

fn shape(batches: u64, events: u64) -> Shape {
    Shape {
        batches,
        events,
        visibility: Duration::from_secs(30),
    }
}

#[tokio::test]
async fn sqlite_gives_space_back_after_acks() {
    let dir = tempfile::tempdir().unwrap();
    let path = dir.path().join("q.db");
    let q = SqliteQueue::open(
        &path,
        SqliteQueueOptions {
            vacuum_free_pages: 16,
            // 10 kB bodies stored inline: this is the blobs' vacuum.
            inline_max_bytes: 64 << 10,
            ..sqlite_options(shape(10_000, 10))
        },
    )
    .await
    .unwrap();
    for i in 0..300 {
        let mut b = batch(i, 10);
        for r in &mut b.logs {
            r.message = Some(vec![b'x'; 1_000]);
        }
        q.try_enqueue(b).await.unwrap();
    }
    let (full, _) = q.pages().await.unwrap();
    assert!(full > 500, "{full} pages for ~3 MB");
    let ds = collect(&q, 300, Duration::from_secs(10)).await;
    assert_eq!(ds.len(), 300);
    for chunk in ds.chunks(50) {
        let ids: Vec<_> = chunk.iter().map(|d| d.id).collect();
        q.ack(&ids).await.unwrap();
    }
    let (pages, free) = q.pages().await.unwrap();
    assert!(pages < full / 10, "{pages} pages left of {full}");
    assert!(free <= 16, "{free} free pages");
    let s = q.stats().await.unwrap();
    assert_eq!((s.batches, s.events, s.bytes), (0, Some(0), Some(0)));
}

#[tokio::test]
async fn sqlite_refuses_a_second_owner_and_oversized_batches() {
    let dir = tempfile::tempdir().unwrap();
    let path = dir.path().join("q.db");
    let q = open_sqlite(&path, shape(10, 1)).await;
    q.try_enqueue(batch(1, 1)).await.unwrap();
    // A second process (or queue object) cannot use the same file.
    let second = SqliteQueue::open(&path, sqlite_options(shape(10, 1))).await;
    assert!(
        matches!(second, Err(QueueError::Backend { .. })),
        "second owner opened the queue"
    );
    assert_eq!(
        q.try_enqueue(batch(2, 11)).await.unwrap_err(),
        QueueError::TooLarge {
            size: 11,
            limit: 10,
            unit: "events"
        }
    );
    q.close();
    assert_eq!(
        q.try_enqueue(batch(3, 1)).await.unwrap_err(),
        QueueError::Closed
    );
    // Closed for new batches, not for the ones held.
    assert_eq!(ids(&q.dequeue(5, Duration::ZERO).await.unwrap()), [1]);
}

async fn corrupt_first_row(path: &std::path::Path) {
    let mut c = sqlx::SqliteConnection::connect(&format!("sqlite://{}", path.display()))
        .await
        .unwrap();
    let n = sqlx::query(
        "UPDATE queue SET payload = X'4B4B42FF00' WHERE seq = (SELECT MIN(seq) FROM queue)",
    )
    .execute(&mut c)
    .await
    .unwrap()
    .rows_affected();
    assert_eq!(n, 1);
    c.close().await.unwrap();
}

#[tokio::test]
async fn sqlite_quarantines_or_dead_letters_undecodable_entries() {
    let dir = tempfile::tempdir().unwrap();
    let path = dir.path().join("q.db");
    {
        let q = open_sqlite(&path, shape(100, 1)).await;
        for i in 1..=3 {
            q.try_enqueue(batch(i, 1)).await.unwrap();
        }
    }
    tokio::time::sleep(Duration::from_millis(100)).await;
    corrupt_first_row(&path).await;
    // Without a dead-letter store: quarantined in the file, the rest flows.
    let q = open_sqlite(&path, shape(100, 1)).await;
    let ds = q.dequeue(10, Duration::ZERO).await.unwrap();
    assert_eq!(ids(&ds), [2, 3]);
    assert_eq!(q.quarantined().await.unwrap(), 1);
    assert_eq!(q.stats().await.unwrap().batches, 2);
    q.ack(&[ds[0].id, ds[1].id]).await.unwrap();
    q.try_enqueue(batch(4, 1)).await.unwrap();
    q.try_enqueue(batch(5, 1)).await.unwrap();
    drop(q);
    tokio::time::sleep(Duration::from_millis(100)).await;
    corrupt_first_row(&path).await;
    // With one: filed there, with the reason and the bytes.
    let dl = Arc::new(MemoryDeadLetter::new(10));
    let q = SqliteQueue::open(
        &path,
        SqliteQueueOptions {
            dead_letter: Some(dl.clone()),
            visibility_timeout: Duration::from_millis(100),
            ..sqlite_options(shape(100, 1))
        },
    )
    .await
    .unwrap();
    let ds = q.dequeue(10, Duration::ZERO).await.unwrap();
    assert_eq!(ids(&ds), [5]);
    let letters = dl.entries();
    assert_eq!(letters.len(), 1);
    assert_eq!(letters[0].reason, DeadLetterReason::Undecodable);
    assert!(!letters[0].error.is_empty());
    assert_eq!(q.quarantined().await.unwrap(), 1);
}

#[tokio::test]
async fn redis_trims_only_acknowledged_entries() {
    trims_only_acknowledged_entries(Kind::Redis).await;
}

#[tokio::test]
async fn redis_cluster_trims_only_acknowledged_entries() {
    trims_only_acknowledged_entries(Kind::RedisCluster).await;
}

async fn trims_only_acknowledged_entries(kind: Kind) {
    let Some(f) = make(kind, "trim", shape(100, 1)).await else {
        return;
    };
    let r = f.redis.clone().unwrap();
    for i in 1..=4 {
        r.try_enqueue(batch(i, 1)).await.unwrap();
    }
    let ds = r.dequeue(3, Duration::ZERO).await.unwrap();
    assert_eq!(ids(&ds), [1, 2, 3]);
    // Acknowledge 1 and 3 without deleting them (as if XDEL had been lost).
    let mut c = raw_redis(&f).await;
    let id_text = |d: &killkrill_core::pipeline::Delivery| {
        let v = d.id.as_u128();
        format!("{}-{}", (v >> 64) as u64, v as u64)
    };
    let n: u64 = c
        .query(
            redis::cmd("XACK")
                .arg(r.key())
                .arg("workers")
                .arg(id_text(&ds[0]))
                .arg(id_text(&ds[2])),
        )
        .await;
    assert_eq!(n, 2);
    // Only 1 goes: 2 is pending, 3 is acknowledged but newer than 2, 4 is
    // undelivered.
    assert_eq!(r.trim_acknowledged().await.unwrap(), 1);
    assert_eq!(r.stats().await.unwrap().batches, 3);
    r.ack(&[ds[1].id]).await.unwrap();
    assert_eq!(r.trim_acknowledged().await.unwrap(), 1);
    // 4 has not been read: it stays.
    assert_eq!(r.trim_acknowledged().await.unwrap(), 0);
    assert_eq!(ids(&r.dequeue(5, Duration::ZERO).await.unwrap()), [4]);
    f.finish().await;
}

#[tokio::test]
async fn redis_quarantines_undecodable_entries() {
    quarantines_undecodable_entries(Kind::Redis).await;
}

#[tokio::test]
async fn redis_cluster_quarantines_undecodable_entries() {
    quarantines_undecodable_entries(Kind::RedisCluster).await;
}

async fn quarantines_undecodable_entries(kind: Kind) {
    let Some(f) = make(kind, "poison", shape(100, 1)).await else {
        return;
    };
    let r: Arc<RedisStreamsQueue> = f.redis.clone().unwrap();
    let mut c = raw_redis(&f).await;
    let _: String = c
        .query(
            redis::cmd("XADD")
                .arg(r.key())
                .arg("*")
                .arg("b")
                .arg(&b"not a batch"[..]),
        )
        .await;
    r.try_enqueue(batch(2, 1)).await.unwrap();
    let ds = r.dequeue(10, Duration::ZERO).await.unwrap();
    assert_eq!(ids(&ds), [2]);
    let quarantine = r.key().replace(":stream", ":undecodable");
    let n: u64 = c.query(redis::cmd("XLEN").arg(&quarantine)).await;
    assert_eq!(n, 1);
    let s = r.stats().await.unwrap();
    assert_eq!((s.batches, s.in_flight), (1, 1));
    f.finish().await;
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn sqlite_group_commits_concurrent_enqueues_and_survives_cancelled_ones() {
    let dir = tempfile::tempdir().unwrap();
    let path = dir.path().join("q.db");
    let q = Arc::new(open_sqlite(&path, shape(1_000, 3)).await);
    let mut set = tokio::task::JoinSet::new();
    for i in 0..200 {
        let q = q.clone();
        set.spawn(async move { q.enqueue(batch(i, 3), Duration::from_secs(5)).await });
    }
    while let Some(r) = set.join_next().await {
        r.unwrap().unwrap();
    }
    // An enqueue whose caller gives up (a client hanging up) after the
    // batch was handed over: stored, and counted, all the same.
    // Polled exactly once, then dropped. The writer thread may answer
    // before that first poll returns (then nothing was given up on): such
    // an enqueue is stored like any other, and another is tried.
    let mut want: Vec<u128> = (0..200).collect();
    let mut given_up = false;
    for id in 500..520 {
        want.push(id);
        let finished = tokio::select! {
            biased;
            r = q.enqueue(batch(id, 3), Duration::ZERO) => Some(r),
            () = std::future::ready(()) => None,
        };
        match finished {
            None => {
                given_up = true;
                break;
            }
            Some(r) => r.unwrap(),
        }
    }
    assert!(
        given_up,
        "20 enqueues in a row finished in their first poll"
    );
    let n = want.len() as u64;
    tokio::time::sleep(Duration::from_millis(200)).await;
    let s = q.stats().await.unwrap();
    assert_eq!((s.batches, s.events), (n, Some(3 * n)));
    let all = collect(&*q, want.len(), Duration::from_secs(5)).await;
    let mut got = ids(&all);
    got.sort_unstable();
    assert_eq!(got, want);
    q.shutdown().await;
    // The counters agree with the file.
    let q = open_sqlite(&path, shape(1_000, 3)).await;
    let s = q.stats().await.unwrap();
    assert_eq!((s.batches, s.events, s.in_flight), (n, Some(3 * n), n));
}

#[tokio::test]
async fn redis_forgets_idle_consumers_without_pending_entries() {
    forgets_idle_consumers_without_pending_entries(Kind::Redis).await;
}

#[tokio::test]
async fn redis_cluster_forgets_idle_consumers_without_pending_entries() {
    forgets_idle_consumers_without_pending_entries(Kind::RedisCluster).await;
}

async fn forgets_idle_consumers_without_pending_entries(kind: Kind) {
    let Some(f) = make(kind, "consumers", shape(100, 1)).await else {
        return;
    };
    let r = f.redis.clone().unwrap();
    let url = f.redis_url.clone().unwrap();
    let group = f.redis_group.clone().unwrap();
    let ghost = |name: &str| {
        let mut o = redis_options(&group, shape(100, 1));
        o.consumer = Some(name.into());
        o.forget_consumers_after = Duration::from_millis(100);
        o
    };
    // "idle" takes and acknowledges a batch; "holder" keeps one pending.
    r.try_enqueue(batch(1, 1)).await.unwrap();
    r.try_enqueue(batch(2, 1)).await.unwrap();
    let idle = RedisStreamsQueue::connect(&url, ghost("idle"))
        .await
        .unwrap();
    let d = idle.dequeue(1, Duration::ZERO).await.unwrap();
    assert_eq!(ids(&d), [1]);
    idle.ack(&[d[0].id]).await.unwrap();
    let holder = RedisStreamsQueue::connect(&url, ghost("holder"))
        .await
        .unwrap();
    assert_eq!(ids(&holder.dequeue(1, Duration::ZERO).await.unwrap()), [2]);
    tokio::time::sleep(Duration::from_millis(150)).await;
    let judge = RedisStreamsQueue::connect(&url, ghost("judge"))
        .await
        .unwrap();
    assert_eq!(judge.forget_idle_consumers().await.unwrap(), 1);
    assert_eq!(judge.forget_idle_consumers().await.unwrap(), 0);
    assert_eq!(judge.stats().await.unwrap().in_flight, 1);
    // The removal itself re-checks on the server: a consumer that read
    // since it was listed as idle (here: one that holds an entry) is kept,
    // and its entry stays claimable.
    assert!(!judge.forget_consumer("holder").await.unwrap());
    assert_eq!(judge.stats().await.unwrap().in_flight, 1);
    let claimer = {
        let mut o = ghost("claimer");
        o.visibility_timeout = Duration::from_millis(50);
        RedisStreamsQueue::connect(&url, o).await.unwrap()
    };
    tokio::time::sleep(Duration::from_millis(100)).await;
    assert_eq!(ids(&claimer.dequeue(1, Duration::ZERO).await.unwrap()), [2]);
    assert!(
        judge.forget_consumer("holder").await.unwrap(),
        "nothing pending now"
    );
    f.finish().await;
}

#[tokio::test]
async fn build_queue_opens_what_the_config_names() {
    use killkrill_store::queue::build_queue;
    use killkrill_store::queue::config::{QueueConfig, QueueConfigError, SqliteQueueSettings};

    let dir = tempfile::tempdir().unwrap();
    let mut texts = vec![
        "type = \"memory\"".to_owned(),
        format!(
            "type = \"sqlite\"\npath = \"{}\"\nsynchronous = \"full\"",
            dir.path().join("built.db").display()
        ),
    ];
    let group = unique("built");
    let url = redis_url();
    if let Some(url) = &url {
        texts.push(format!(
            "type = \"redis\"\nurl = \"{url}\"\nprefix = \"kktest\"\ntenant_group = \"{group}\""
        ));
    }
    for (text, name) in texts.iter().zip(["memory", "sqlite", "redis"]) {
        let config: QueueConfig = toml::from_str(text).unwrap();
        let q = build_queue(&config).await.unwrap();
        assert_eq!(q.name(), name);
        q.try_enqueue(batch(1, 1)).await.unwrap();
        let d = q.dequeue(1, Duration::from_secs(1)).await.unwrap();
        assert_eq!(ids(&d), [1]);
        q.ack(&[d[0].id]).await.unwrap();
        assert_eq!(q.stats().await.unwrap().batches, 0);
    }
    if let Some(url) = url {
        let client = redis::Client::open(url.as_str()).unwrap();
        let mut c = client.get_multiplexed_async_connection().await.unwrap();
        let key = killkrill_store::queue::redis::stream_key("kktest", "ingest", &group);
        let n: u64 = redis::cmd("DEL")
            .arg(&key)
            .query_async(&mut c)
            .await
            .unwrap();
        assert_eq!(n, 1);
    }
    let bad = QueueConfig::Sqlite(SqliteQueueSettings {
        max_bytes: 0,
        ..SqliteQueueSettings::default()
    });
    let e = build_queue(&bad).await.err().unwrap();
    assert!(
        matches!(
            e,
            QueueConfigError::Invalid {
                key: "max_bytes",
                ..
            }
        ),
        "{e}"
    );
}

/// A failed enqueue gives its room back even when its caller stops
/// waiting (drops the future) at any moment, including between the
/// writer's answer and reading it: the writer releases the reservation
/// itself. Failures are real: the segment directory is replaced by a file,
/// so every body append fails; callers time out after 0–490 µs.
#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn sqlite_failed_enqueues_give_their_room_back_even_when_abandoned() {
    let dir = tempfile::tempdir().unwrap();
    let path = dir.path().join("q.db");
    let q = Arc::new(
        SqliteQueue::open(
            &path,
            SqliteQueueOptions {
                inline_max_bytes: 0,
                segment_bytes: 1,
                ..sqlite_options(shape(4, 10))
            },
        )
        .await
        .unwrap(),
    );
    q.try_enqueue(batch(1, 10)).await.unwrap();
    let segs = dir.path().join("q.db-segments");
    let aside = dir.path().join("segments-aside");
    std::fs::rename(&segs, &aside).unwrap();
    std::fs::write(&segs, b"not a directory").unwrap();

    let mut tasks = Vec::new();
    for i in 0..300u64 {
        let q = q.clone();
        tasks.push(tokio::spawn(async move {
            let wait = Duration::from_micros((i % 50) * 10);
            tokio::time::timeout(wait, q.try_enqueue(batch(u128::from(i) + 100, 10))).await
        }));
    }
    let (mut failed, mut abandoned) = (0, 0);
    for t in tasks {
        match t.await.unwrap() {
            Ok(Ok(())) => panic!("an append into a file cannot succeed"),
            Ok(Err(_)) => failed += 1,
            Err(_) => abandoned += 1,
        }
    }
    eprintln!("{failed} failed, {abandoned} abandoned");
    assert!(failed > 0, "no enqueue ran to its failure");
    // The writer finishes what the abandoned callers left behind.
    let mut s = q.stats().await.unwrap();
    for _ in 0..200 {
        if s.batches == 1 {
            break;
        }
        tokio::time::sleep(Duration::from_millis(10)).await;
        s = q.stats().await.unwrap();
    }
    assert_eq!((s.batches, s.events), (1, Some(10)), "room leaked");

    // With the directory back, the whole capacity is there: 3 more batches.
    std::fs::remove_file(&segs).unwrap();
    std::fs::rename(&aside, &segs).unwrap();
    for i in 2..=4 {
        q.try_enqueue(batch(i, 10)).await.unwrap();
    }
    assert!(matches!(
        q.try_enqueue(batch(5, 10)).await,
        Err(QueueError::Full { .. })
    ));
}
