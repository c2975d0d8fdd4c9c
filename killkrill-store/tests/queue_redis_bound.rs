//! The Redis queue's bound under concurrent producers. Several queue
//! objects (as several receiver processes would have) each run many
//! concurrent enqueues into one small stream until it is full, while a
//! watcher samples `XLEN`:
//! - with the checked bound (`XLEN`, then `XADD`) the stream may exceed
//!   `max_len` by the adds in flight, and never holds more than
//!   `max_len - 1 + producers * max_adds_in_flight`;
//! - with the exact bound (the Lua script) it never exceeds `max_len`;
//! - either way every `Ok` is an entry in the stream, a full stream answers
//!   `Full` after the wait, and an acknowledgement makes room again.
//!
//! Runs on `KILLKRILL_TEST_REDIS_URL` and `KILLKRILL_TEST_REDIS_CLUSTER_URL`.
#![allow(clippy::unwrap_used, clippy::print_stderr)]

mod queue_support;

use std::sync::Arc;
use std::sync::atomic::{AtomicBool, AtomicU64, Ordering};
use std::time::Duration;

use killkrill_core::pipeline::{Queue, QueueError};
use killkrill_store::queue::redis::RedisBound;
use killkrill_store::queue::{RedisQueueOptions, RedisStreamsQueue};
use queue_support::*;

const MAX_LEN: u64 = 20;
/// Queue objects adding to the same stream.
const PRODUCERS: usize = 3;
/// Each producer's `max_adds_in_flight`.
const IN_FLIGHT: usize = 4;
/// Concurrent enqueues per producer (more than it lets through at once).
const TASKS: usize = 16;

async fn fill_concurrently(kind: Kind, bound: RedisBound) {
    let url = match kind {
        Kind::Redis => redis_url(),
        _ => redis_cluster_url(),
    };
    let Some(url) = url else { return };
    let group = unique("bound");
    let shape = Shape {
        batches: MAX_LEN,
        events: 1,
        visibility: Duration::from_secs(30),
    };
    let opts = RedisQueueOptions {
        bound,
        max_adds_in_flight: IN_FLIGHT,
        ..redis_options(&group, shape)
    };
    let mut producers = Vec::new();
    for _ in 0..PRODUCERS {
        producers.push(Arc::new(
            RedisStreamsQueue::connect(&url, opts.clone())
                .await
                .unwrap(),
        ));
    }
    let f = Fixture {
        kind,
        q: producers[0].clone(),
        redis: Some(producers[0].clone()),
        sqlite_path: None,
        redis_group: Some(group),
        redis_url: Some(url),
        dir: None,
    };
    let key = producers[0].key().to_owned();
    let slack = match bound {
        RedisBound::Checked => (PRODUCERS * IN_FLIGHT) as u64 - 1,
        RedisBound::Exact => 0,
    };

    // The watcher: the longest the stream was while the producers ran.
    let mut raw = raw_redis(&f).await;
    let stop = Arc::new(AtomicBool::new(false));
    let longest = Arc::new(AtomicU64::new(0));
    let watcher = {
        let (stop, longest, key) = (stop.clone(), longest.clone(), key.clone());
        tokio::spawn(async move {
            while !stop.load(Ordering::Relaxed) {
                let len: u64 = raw.query(redis::cmd("XLEN").arg(&key)).await;
                longest.fetch_max(len, Ordering::Relaxed);
                tokio::task::yield_now().await;
            }
            raw
        })
    };

    // Every task adds until its queue answers Full; ids are unique.
    let next_id = Arc::new(AtomicU64::new(1));
    let mut tasks = tokio::task::JoinSet::new();
    for p in &producers {
        for _ in 0..TASKS {
            let (p, next_id) = (p.clone(), next_id.clone());
            tasks.spawn(async move {
                let mut added = 0u64;
                loop {
                    let id = next_id.fetch_add(1, Ordering::Relaxed);
                    match p.enqueue(batch(u128::from(id), 1), Duration::ZERO).await {
                        Ok(()) => added += 1,
                        Err(QueueError::Full { .. }) => return added,
                        Err(e) => panic!("enqueue failed: {e}"),
                    }
                }
            });
        }
    }
    let mut added = 0;
    while let Some(n) = tasks.join_next().await {
        added += n.unwrap();
    }
    stop.store(true, Ordering::Relaxed);
    let mut raw = watcher.await.unwrap();
    let len: u64 = raw.query(redis::cmd("XLEN").arg(&key)).await;
    let longest = longest.load(Ordering::Relaxed).max(len);
    eprintln!("{bound:?}: {added} added, length {len}, longest seen {longest}");

    // Every Ok is in the stream, and nothing else is.
    assert_eq!(len, added);
    // It filled, and stayed within the stated slack.
    assert!(len >= MAX_LEN, "{len}");
    assert!(
        longest <= MAX_LEN + slack,
        "{longest} > {MAX_LEN} + {slack}"
    );

    // Full: every producer answers Full after its wait, and adds nothing.
    for p in &producers {
        let e = p.enqueue(batch(0, 1), Duration::from_millis(120)).await;
        assert!(
            matches!(e, Err(QueueError::Full { waited }) if waited >= Duration::from_millis(120)),
            "{e:?}"
        );
    }
    let after: u64 = raw.query(redis::cmd("XLEN").arg(&key)).await;
    assert_eq!(after, len);

    // Acknowledging makes room: take the length below the bound again.
    let q: &dyn Queue = &*producers[1];
    let excess = (len - MAX_LEN + 2) as usize;
    let ds = collect(q, excess, Duration::from_secs(5)).await;
    assert_eq!(ds.len(), excess);
    q.ack(&ds.iter().map(|d| d.id).collect::<Vec<_>>())
        .await
        .unwrap();
    producers[2]
        .enqueue(batch(0, 1), Duration::from_secs(2))
        .await
        .unwrap();
    let now: u64 = raw.query(redis::cmd("XLEN").arg(&key)).await;
    assert_eq!(now, MAX_LEN - 1);
    f.finish().await;
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn redis_checked_bound_overshoots_at_most_by_the_adds_in_flight() {
    fill_concurrently(Kind::Redis, RedisBound::Checked).await;
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn redis_exact_bound_never_overshoots() {
    fill_concurrently(Kind::Redis, RedisBound::Exact).await;
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn redis_cluster_checked_bound_overshoots_at_most_by_the_adds_in_flight() {
    fill_concurrently(Kind::RedisCluster, RedisBound::Checked).await;
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn redis_cluster_exact_bound_never_overshoots() {
    fill_concurrently(Kind::RedisCluster, RedisBound::Exact).await;
}
