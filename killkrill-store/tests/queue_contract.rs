//! The shared queue contract: every case runs on the memory queue (the
//! reference), the SQLite queue and the Redis Streams queue (when
//! `KILLKRILL_TEST_REDIS_URL` is set), in real time with short timeouts.
#![allow(clippy::unwrap_used, clippy::print_stderr)]

mod queue_support;

use std::time::Duration;

use killkrill_core::pipeline::{DeliveryId, QueueError};
use queue_support::*;
use tokio::time::Instant;

const SECOND: Duration = Duration::from_secs(1);

fn shape(batches: u64, events: u64, visibility_ms: u64) -> Shape {
    Shape {
        batches,
        events,
        visibility: Duration::from_millis(visibility_ms),
    }
}

async fn fifo_ack_and_stats(kind: Kind) {
    let Some(f) = make(kind, "fifo", shape(100, 2, 10_000)).await else {
        return;
    };
    let q = &*f.q;
    for i in 1..=3 {
        q.try_enqueue(batch(i, 2)).await.unwrap();
    }
    let s = q.stats().await.unwrap();
    assert_eq!((s.batches, s.in_flight), (3, 0));
    assert!(s.oldest_unacked.is_some());
    let ds = q.dequeue(2, Duration::ZERO).await.unwrap();
    assert_eq!(ids(&ds), [1, 2]);
    assert!(ds.iter().all(|d| d.attempts == 1));
    // The batch comes back exactly as it went in.
    assert_eq!(*ds[0].batch, batch(1, 2));
    let s = q.stats().await.unwrap();
    assert_eq!((s.batches, s.in_flight), (3, 2));
    if !kind.is_redis() {
        assert_eq!(s.events, Some(6));
    }
    q.ack(&[ds[0].id, ds[1].id]).await.unwrap();
    let s = q.stats().await.unwrap();
    assert_eq!((s.batches, s.in_flight), (1, 0));
    let rest = q.dequeue(10, Duration::ZERO).await.unwrap();
    assert_eq!(ids(&rest), [3]);
    q.ack(&[rest[0].id]).await.unwrap();
    let s = q.stats().await.unwrap();
    assert_eq!((s.batches, s.in_flight, s.oldest_unacked), (0, 0, None));
    assert!(q.dequeue(10, Duration::ZERO).await.unwrap().is_empty());
    f.finish().await;
}

async fn backpressure(kind: Kind) {
    let Some(f) = make(kind, "full", shape(2, 5, 10_000)).await else {
        return;
    };
    let q = f.q.clone();
    q.try_enqueue(batch(1, 5)).await.unwrap();
    q.try_enqueue(batch(2, 5)).await.unwrap();
    assert!(matches!(
        q.try_enqueue(batch(3, 5)).await,
        Err(QueueError::Full { .. })
    ));
    // A waiting enqueue fails after its wait, not before.
    let start = Instant::now();
    let e = q.enqueue(batch(3, 5), Duration::from_millis(300)).await;
    assert!(matches!(e, Err(QueueError::Full { waited }) if waited >= Duration::from_millis(300)));
    assert!(start.elapsed() < 2 * SECOND);
    // An acknowledgement lets a waiting enqueue through.
    let q2 = q.clone();
    let waiter = tokio::spawn(async move { q2.enqueue(batch(3, 5), 10 * SECOND).await });
    tokio::time::sleep(Duration::from_millis(300)).await;
    assert!(!waiter.is_finished());
    let d = q.dequeue(1, Duration::ZERO).await.unwrap();
    assert_eq!(ids(&d), [1]);
    // In-flight batches still count against the limit...
    assert!(!waiter.is_finished());
    q.ack(&[d[0].id]).await.unwrap();
    let acked = Instant::now();
    waiter.await.unwrap().unwrap();
    assert!(acked.elapsed() < SECOND, "{:?}", acked.elapsed());
    assert_eq!(q.stats().await.unwrap().batches, 2);
    assert!(matches!(
        q.try_enqueue(batch(4, 5)).await,
        Err(QueueError::Full { .. })
    ));
    f.finish().await;
}

async fn redelivery_after_visibility_timeout(kind: Kind) {
    let Some(f) = make(kind, "vis", shape(100, 1, 600)).await else {
        return;
    };
    let q = &*f.q;
    q.try_enqueue(batch(1, 1)).await.unwrap();
    q.try_enqueue(batch(2, 1)).await.unwrap();
    let first = q.dequeue(1, Duration::ZERO).await.unwrap();
    assert_eq!(ids(&first), [1]);
    let start = Instant::now();
    // Batch 1 is invisible until the timeout; batch 2 is there.
    let second = q.dequeue(10, Duration::ZERO).await.unwrap();
    assert_eq!(ids(&second), [2]);
    assert!(
        q.dequeue(10, Duration::from_millis(200))
            .await
            .unwrap()
            .is_empty()
    );
    // Then both come back, with attempts 2, and are acknowledged for good.
    let mut again = collect(q, 2, 5 * SECOND).await;
    again.sort_by_key(|d| d.batch.id);
    assert_eq!(ids(&again), [1, 2]);
    assert!(again.iter().all(|d| d.attempts == 2), "{again:?}");
    let waited = start.elapsed();
    assert!(waited >= Duration::from_millis(450), "{waited:?}");
    assert!(waited < 3 * SECOND, "{waited:?}");
    q.ack(&[again[0].id, again[1].id]).await.unwrap();
    assert!(q.dequeue(10, SECOND).await.unwrap().is_empty());
    assert_eq!(q.stats().await.unwrap().batches, 0);
    f.finish().await;
}

async fn nack_now_and_later(kind: Kind) {
    let Some(f) = make(kind, "nack", shape(100, 1, 10_000)).await else {
        return;
    };
    let q = &*f.q;
    q.try_enqueue(batch(1, 1)).await.unwrap();
    q.try_enqueue(batch(2, 1)).await.unwrap();
    let ds = q.dequeue(2, Duration::ZERO).await.unwrap();
    assert_eq!(ids(&ds), [1, 2]);
    q.nack(ds[1].id, Duration::ZERO).await.unwrap();
    q.nack(ds[0].id, Duration::from_millis(700)).await.unwrap();
    let now = q.dequeue(10, Duration::ZERO).await.unwrap();
    assert_eq!(ids(&now), [2]);
    assert_eq!(now[0].attempts, 2);
    let start = Instant::now();
    let later = collect(q, 1, 5 * SECOND).await;
    assert_eq!(ids(&later), [1]);
    assert_eq!(later[0].attempts, 2);
    let waited = start.elapsed();
    assert!(
        waited >= Duration::from_millis(500) && waited < 3 * SECOND,
        "{waited:?}"
    );
    q.ack(&[now[0].id, later[0].id]).await.unwrap();
    assert_eq!(q.stats().await.unwrap().batches, 0);
    f.finish().await;
}

async fn dequeue_waits_for_an_enqueue(kind: Kind) {
    let Some(f) = make(kind, "wait", shape(100, 1, 10_000)).await else {
        return;
    };
    let q = f.q.clone();
    let start = Instant::now();
    let reader = tokio::spawn(async move { q.dequeue(5, 5 * SECOND).await });
    tokio::time::sleep(Duration::from_millis(300)).await;
    assert!(!reader.is_finished());
    f.q.try_enqueue(batch(7, 1)).await.unwrap();
    let got = reader.await.unwrap().unwrap();
    assert_eq!(ids(&got), [7]);
    assert!(start.elapsed() < 2 * SECOND, "{:?}", start.elapsed());
    // An empty queue answers empty after the wait.
    let start = Instant::now();
    assert!(
        f.q.dequeue(5, Duration::from_millis(300))
            .await
            .unwrap()
            .is_empty()
    );
    assert!(start.elapsed() >= Duration::from_millis(280));
    f.finish().await;
}

async fn stale_and_unknown_ids_are_ignored(kind: Kind) {
    let Some(f) = make(kind, "stale", shape(100, 1, 10_000)).await else {
        return;
    };
    let q = &*f.q;
    q.try_enqueue(batch(1, 1)).await.unwrap();
    let ds = q.dequeue(1, Duration::ZERO).await.unwrap();
    q.ack(&[ds[0].id]).await.unwrap();
    // Acknowledging twice, or ids the queue never issued, changes nothing.
    q.try_enqueue(batch(2, 1)).await.unwrap();
    q.ack(&[ds[0].id, DeliveryId::from_u128(999)])
        .await
        .unwrap();
    q.nack(ds[0].id, Duration::ZERO).await.unwrap();
    q.nack(DeliveryId::from_u128(999), Duration::ZERO)
        .await
        .unwrap();
    let s = q.stats().await.unwrap();
    assert_eq!((s.batches, s.in_flight), (1, 0));
    assert_eq!(ids(&q.dequeue(10, Duration::ZERO).await.unwrap()), [2]);
    f.finish().await;
}

/// Durable queues only: what was enqueued survives the queue object, and a
/// lease taken before survives too (it comes back after its timeout).
async fn survives_reopen(kind: Kind) {
    let sh = shape(100, 1, 800);
    let Some(f) = make(kind, "reopen", sh).await else {
        return;
    };
    f.q.try_enqueue(batch(1, 1)).await.unwrap();
    f.q.try_enqueue(batch(2, 1)).await.unwrap();
    assert_eq!(ids(&f.q.dequeue(1, Duration::ZERO).await.unwrap()), [1]);
    let q = match kind {
        Kind::Sqlite => {
            let path = f.sqlite_path.clone().unwrap();
            let Fixture { q, dir, .. } = f;
            drop(q);
            let q = open_sqlite(&path, sh).await;
            let s = killkrill_core::pipeline::Queue::stats(&q).await.unwrap();
            assert_eq!((s.batches, s.events), (2, Some(2)));
            let got = killkrill_core::pipeline::Queue::dequeue(&q, 10, Duration::ZERO)
                .await
                .unwrap();
            assert_eq!(ids(&got), [2]);
            let back = collect(&q, 1, 5 * SECOND).await;
            assert_eq!(ids(&back), [1]);
            assert_eq!(back[0].attempts, 2);
            drop(dir);
            return;
        }
        Kind::Redis | Kind::RedisCluster => f.redis.clone().unwrap(),
        Kind::Memory => return,
    };
    // Redis: a second queue object (another process, in effect) with a
    // consumer name of its own sees the same stream.
    let url = f.redis_url.clone().unwrap();
    let mut opts = redis_options(f.redis_group.as_deref().unwrap(), sh);
    opts.consumer = Some("second".into());
    let q2 = killkrill_store::queue::RedisStreamsQueue::connect(&url, opts)
        .await
        .unwrap();
    assert_eq!(q2.key(), q.key());
    let q2: &dyn killkrill_core::pipeline::Queue = &q2;
    assert_eq!(ids(&q2.dequeue(10, Duration::ZERO).await.unwrap()), [2]);
    let back = collect(q2, 1, 5 * SECOND).await;
    assert_eq!(ids(&back), [1]);
    assert_eq!(back[0].attempts, 2);
    f.finish().await;
}

macro_rules! contract {
    ($($case:ident),* $(,)?) => {
        mod memory {
            $(#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
            async fn $case() { super::$case(super::Kind::Memory).await })*
        }
        mod sqlite {
            $(#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
            async fn $case() { super::$case(super::Kind::Sqlite).await })*
        }
        mod redis {
            $(#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
            async fn $case() { super::$case(super::Kind::Redis).await })*
        }
        /// `KILLKRILL_TEST_REDIS_CLUSTER_URL` (`scripts/redis-cluster`).
        mod redis_cluster {
            $(#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
            async fn $case() { super::$case(super::Kind::RedisCluster).await })*
        }
    };
}

contract!(
    fifo_ack_and_stats,
    backpressure,
    redelivery_after_visibility_timeout,
    nack_now_and_later,
    dequeue_waits_for_an_enqueue,
    stale_and_unknown_ids_are_ignored,
    survives_reopen,
);
