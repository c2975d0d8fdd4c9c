use std::time::Duration;

use super::*;
use crate::event::{LogRecord, Tenant, Timestamp};
use crate::pipeline::BatchId;

fn batch(id: u128, events: usize) -> Batch {
    let mut b = Batch::new(BatchId::from_u128(id), Tenant::default(), Timestamp::EPOCH);
    b.logs = vec![LogRecord::default(); events];
    b
}

fn queue(max_events: usize) -> MemoryQueue {
    MemoryQueue::new(MemoryQueueConfig {
        max_events,
        max_bytes: 1 << 30,
        visibility_timeout: Duration::from_secs(10),
    })
}

fn ids(ds: &[Delivery]) -> Vec<u128> {
    ds.iter().map(|d| d.batch.id.as_u128()).collect()
}

#[tokio::test(start_paused = true)]
async fn fifo_with_ack() {
    let q = queue(100);
    for i in 1..=3 {
        q.try_enqueue(batch(i, 1)).await.unwrap();
    }
    let ds = q.dequeue(2, Duration::ZERO).await.unwrap();
    assert_eq!(ids(&ds), [1, 2]);
    assert!(ds.iter().all(|d| d.attempts == 1));
    let s = q.stats().await.unwrap();
    assert_eq!((s.batches, s.in_flight, s.events), (3, 2, Some(3)));
    q.ack(&[ds[0].id, ds[1].id]).await.unwrap();
    let s = q.stats().await.unwrap();
    assert_eq!((s.batches, s.in_flight, s.events), (1, 0, Some(1)));
    assert_eq!(ids(&q.dequeue(10, Duration::ZERO).await.unwrap()), [3]);
}

#[tokio::test(start_paused = true)]
async fn full_queue_refuses_then_waits_for_room() {
    let q = std::sync::Arc::new(queue(10));
    q.try_enqueue(batch(1, 6)).await.unwrap();
    assert_eq!(
        q.try_enqueue(batch(2, 6)).await.unwrap_err(),
        QueueError::Full {
            waited: Duration::ZERO
        }
    );
    // Waiting with a timeout fails after exactly the timeout.
    let start = Instant::now();
    let e = q
        .enqueue(batch(2, 6), Duration::from_secs(3))
        .await
        .unwrap_err();
    assert_eq!(
        e,
        QueueError::Full {
            waited: Duration::from_secs(3)
        }
    );
    assert_eq!(start.elapsed(), Duration::from_secs(3));
    // An ack in the meantime lets a waiting enqueue through.
    let q2 = q.clone();
    let waiter =
        tokio::spawn(async move { q2.enqueue(batch(2, 6), Duration::from_secs(60)).await });
    tokio::time::sleep(Duration::from_secs(1)).await;
    assert!(!waiter.is_finished());
    let d = q.dequeue(1, Duration::ZERO).await.unwrap();
    q.ack(&[d[0].id]).await.unwrap();
    waiter.await.unwrap().unwrap();
    assert_eq!(start.elapsed(), Duration::from_secs(4));
    // In-flight batches still count against the limit.
    let d = q.dequeue(1, Duration::ZERO).await.unwrap();
    assert_eq!(ids(&d), [2]);
    assert!(matches!(
        q.try_enqueue(batch(3, 6)).await,
        Err(QueueError::Full { .. })
    ));
}

#[tokio::test(start_paused = true)]
async fn oversized_batches_are_refused_outright() {
    let q = MemoryQueue::new(MemoryQueueConfig {
        max_events: 10,
        max_bytes: 2_000,
        visibility_timeout: Duration::from_secs(1),
    });
    assert_eq!(
        q.try_enqueue(batch(1, 11)).await.unwrap_err(),
        QueueError::TooLarge {
            size: 11,
            limit: 10,
            unit: "events"
        }
    );
    let mut big = batch(2, 1);
    big.logs[0].message = Some(vec![0; 5_000]);
    assert!(matches!(
        q.try_enqueue(big).await.unwrap_err(),
        QueueError::TooLarge { unit: "bytes", .. }
    ));
}

#[tokio::test(start_paused = true)]
async fn unacked_deliveries_come_back_after_the_visibility_timeout() {
    let q = queue(100);
    q.try_enqueue(batch(1, 1)).await.unwrap();
    q.try_enqueue(batch(2, 1)).await.unwrap();
    let first = q.dequeue(1, Duration::ZERO).await.unwrap();
    assert_eq!(ids(&first), [1]);
    // Nothing else is visible for batch 1 until the timeout...
    assert_eq!(ids(&q.dequeue(10, Duration::ZERO).await.unwrap()), [2]);
    let start = Instant::now();
    // ...then a waiting dequeue wakes exactly when it expires.
    let again = q.dequeue(10, Duration::from_secs(60)).await.unwrap();
    assert_eq!(start.elapsed(), Duration::from_secs(10));
    assert_eq!(ids(&again), [1, 2]);
    assert!(again.iter().all(|d| d.attempts == 2));
    let s = q.stats().await.unwrap();
    assert_eq!(s.oldest_unacked, Some(Duration::from_secs(10)));
}

#[tokio::test(start_paused = true)]
async fn nack_redelivers_now_or_later() {
    let q = queue(100);
    q.try_enqueue(batch(1, 1)).await.unwrap();
    q.try_enqueue(batch(2, 1)).await.unwrap();
    let ds = q.dequeue(2, Duration::ZERO).await.unwrap();
    q.nack(ds[1].id, Duration::ZERO).await.unwrap();
    q.nack(ds[0].id, Duration::from_secs(5)).await.unwrap();
    let now = q.dequeue(10, Duration::ZERO).await.unwrap();
    assert_eq!(ids(&now), [2]);
    assert_eq!(now[0].attempts, 2);
    let start = Instant::now();
    let later = q.dequeue(10, Duration::from_secs(60)).await.unwrap();
    assert_eq!(
        (ids(&later), start.elapsed()),
        (vec![1], Duration::from_secs(5))
    );
    // Unknown and stale ids are ignored.
    q.ack(&[DeliveryId::from_u128(999), DeliveryId::from_u128(u128::MAX)])
        .await
        .unwrap();
    q.nack(DeliveryId::from_u128(999), Duration::ZERO)
        .await
        .unwrap();
    assert_eq!(q.stats().await.unwrap().batches, 2);
}

#[tokio::test(start_paused = true)]
async fn dequeue_waits_for_an_enqueue_and_close_wakes_everyone() {
    let q = std::sync::Arc::new(queue(100));
    let q2 = q.clone();
    let reader = tokio::spawn(async move { q2.dequeue(5, Duration::from_secs(30)).await });
    tokio::time::sleep(Duration::from_secs(2)).await;
    q.try_enqueue(batch(7, 1)).await.unwrap();
    assert_eq!(ids(&reader.await.unwrap().unwrap()), [7]);

    let q3 = q.clone();
    let idle = tokio::spawn(async move { q3.dequeue(5, Duration::from_secs(30)).await });
    tokio::time::sleep(Duration::from_secs(1)).await;
    let start = Instant::now();
    q.close();
    // The in-flight batch 7 (delivered at t=2 s, visible again at t=12 s)
    // will come back, so the reader keeps waiting for it after the close.
    let back = idle.await.unwrap().unwrap();
    assert_eq!(ids(&back), [7]);
    assert_eq!(start.elapsed(), Duration::from_secs(9));
    assert_eq!(
        q.try_enqueue(batch(8, 1)).await.unwrap_err(),
        QueueError::Closed
    );
    q.ack(&[back[0].id]).await.unwrap();
    assert!(
        q.dequeue(5, Duration::from_secs(30))
            .await
            .unwrap()
            .is_empty()
    );
}
