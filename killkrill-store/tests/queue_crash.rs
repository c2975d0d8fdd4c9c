//! Crash tests: a process using a durable queue is killed with SIGKILL and
//! nothing it had been told was stored is lost.
//!
//! The test binary re-executes itself (`current_exe() <test> --exact`) with
//! `KK_CRASH_ROLE` set, so the child runs the producer or consumer half of
//! the same test; the parent kills it with `kill -9` (`Child::kill`) and then
//! inspects the queue. The producer writes the id of every batch whose
//! enqueue returned `Ok` to a log file (one `write` per line, so a kill
//! cannot tear a line): those are the batches acknowledged to a sender.
//!
//! Redis itself is not restarted here: the server is shared with every other
//! test on the machine.
#![allow(clippy::unwrap_used, clippy::print_stderr)]

mod queue_support;

use std::collections::BTreeSet;
use std::io::Write;
use std::path::{Path, PathBuf};
use std::process::{Child, Command, Stdio};
use std::sync::Arc;
use std::time::Duration;

use killkrill_core::pipeline::Queue;
use killkrill_store::queue::RedisStreamsQueue;
use queue_support::*;

const ROLE: &str = "KK_CRASH_ROLE";
const TARGET: &str = "KK_CRASH_TARGET";
const LOG: &str = "KK_CRASH_LOG";

fn shape(visibility_ms: u64) -> Shape {
    Shape {
        batches: 1_000_000,
        events: 20,
        visibility: Duration::from_millis(visibility_ms),
    }
}

/// Which half of a test this process runs, if it is a child.
fn role() -> Option<String> {
    std::env::var(ROLE).ok().filter(|r| !r.is_empty())
}

fn spawn_child(test: &str, role: &str, target: &str, log: &Path) -> Child {
    Command::new(std::env::current_exe().unwrap())
        .args([test, "--exact", "--nocapture", "--test-threads=1"])
        .env(ROLE, role)
        .env(TARGET, target)
        .env(LOG, log)
        .stdout(Stdio::null())
        .stderr(Stdio::inherit())
        .spawn()
        .unwrap()
}

fn log_lines(log: &Path) -> Vec<String> {
    let text = std::fs::read_to_string(log).unwrap_or_default();
    // Only whole lines: the last one may be cut by the kill.
    let complete = text.rfind('\n').map_or("", |i| &text[..=i]);
    complete.lines().map(str::to_owned).collect()
}

/// Waits until the child logged `n` lines, then kills it with SIGKILL.
fn kill_after(mut child: Child, log: &Path, n: usize) -> Vec<String> {
    let deadline = std::time::Instant::now() + Duration::from_secs(15);
    loop {
        let lines = log_lines(log);
        if lines.len() >= n {
            break;
        }
        assert!(
            std::time::Instant::now() < deadline,
            "child logged only {} lines",
            lines.len()
        );
        if let Some(status) = child.try_wait().unwrap() {
            panic!("child exited early: {status}");
        }
        std::thread::sleep(Duration::from_millis(5));
    }
    child.kill().unwrap(); // SIGKILL on Unix
    let status = child.wait().unwrap();
    assert!(!status.success(), "child was not killed: {status}");
    log_lines(log)
}

fn append(log: &Path, line: &str) {
    let mut f = std::fs::OpenOptions::new()
        .create(true)
        .append(true)
        .open(log)
        .unwrap();
    f.write_all(format!("{line}\n").as_bytes()).unwrap();
}

/// The child's half: produce until killed, or take deliveries and hang.
async fn child(queue: Arc<dyn Queue>, role: &str) {
    let log = PathBuf::from(std::env::var(LOG).unwrap());
    if role.ends_with("producer") {
        for i in 1.. {
            queue
                .enqueue(batch(i, 20), Duration::from_secs(5))
                .await
                .unwrap();
            append(&log, &i.to_string());
        }
    } else {
        let ds = collect(&*queue, 5, Duration::from_secs(10)).await;
        let ids: Vec<String> = ds
            .iter()
            .map(|d| format!("{} {}", d.batch.id.as_u128(), d.attempts))
            .collect();
        for l in ids {
            append(&log, &l);
        }
        // Hold the deliveries, unacknowledged, until killed.
        tokio::time::sleep(Duration::from_secs(60)).await;
    }
}

/// Everything in the queue, acknowledged as it is read.
async fn drain(q: &dyn Queue) -> Vec<u128> {
    let mut out = Vec::new();
    loop {
        let ds = q.dequeue(500, Duration::from_millis(200)).await.unwrap();
        if ds.is_empty() {
            return out;
        }
        out.extend(ids(&ds));
        let acks: Vec<_> = ds.iter().map(|d| d.id).collect();
        q.ack(&acks).await.unwrap();
    }
}

fn check_nothing_lost(acked: &[String], stored: &[u128]) {
    let acked: Vec<u128> = acked.iter().map(|l| l.parse().unwrap()).collect();
    let unique: BTreeSet<u128> = stored.iter().copied().collect();
    assert_eq!(unique.len(), stored.len(), "duplicates in the queue");
    let missing: Vec<_> = acked.iter().filter(|i| !unique.contains(i)).collect();
    assert!(missing.is_empty(), "acknowledged but lost: {missing:?}");
    // At most the one enqueue in progress at the kill is extra.
    let last = acked.iter().max().copied().unwrap_or(0);
    assert!(
        stored.len() <= acked.len() + 1,
        "{} stored, {} acked",
        stored.len(),
        acked.len()
    );
    assert!(unique.iter().all(|i| *i <= last + 1));
    eprintln!("{} acknowledged, {} stored", acked.len(), stored.len());
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn sqlite_producer_killed_mid_stream_loses_nothing_acknowledged() {
    if let Some(r) = role() {
        let q = open_sqlite(Path::new(&std::env::var(TARGET).unwrap()), shape(30_000)).await;
        return child(Arc::new(q), &r).await;
    }
    let dir = tempfile::tempdir().unwrap();
    let path = dir.path().join("q.db");
    let log = dir.path().join("acked.log");
    let child = spawn_child(
        "sqlite_producer_killed_mid_stream_loses_nothing_acknowledged",
        "sqlite-producer",
        path.to_str().unwrap(),
        &log,
    );
    let acked = kill_after(child, &log, 300);
    let q = open_sqlite(&path, shape(30_000)).await;
    let stored = drain(&q).await;
    check_nothing_lost(&acked, &stored);
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn sqlite_consumer_killed_before_ack_gets_redelivered() {
    if let Some(r) = role() {
        let q = open_sqlite(Path::new(&std::env::var(TARGET).unwrap()), shape(1_000)).await;
        return child(Arc::new(q), &r).await;
    }
    let dir = tempfile::tempdir().unwrap();
    let path = dir.path().join("q.db");
    let log = dir.path().join("taken.log");
    let q = open_sqlite(&path, shape(1_000)).await;
    for i in 1..=5 {
        q.try_enqueue(batch(i, 20)).await.unwrap();
    }
    q.shutdown().await;
    let child = spawn_child(
        "sqlite_consumer_killed_before_ack_gets_redelivered",
        "sqlite-consumer",
        path.to_str().unwrap(),
        &log,
    );
    let taken = kill_after(child, &log, 5);
    assert_eq!(taken, ["1 1", "2 1", "3 1", "4 1", "5 1"]);
    let q = open_sqlite(&path, shape(1_000)).await;
    // Leased by the dead consumer: back after its visibility timeout.
    let back = collect(&q, 5, Duration::from_secs(5)).await;
    assert_eq!(ids(&back), [1, 2, 3, 4, 5]);
    assert!(back.iter().all(|d| d.attempts == 2));
}

async fn redis_queue(group: &str, visibility_ms: u64, consumer: &str) -> Arc<RedisStreamsQueue> {
    let url = redis_url().unwrap();
    let mut opts = redis_options(group, shape(visibility_ms));
    opts.consumer = Some(consumer.into());
    Arc::new(RedisStreamsQueue::connect(&url, opts).await.unwrap())
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn redis_producer_killed_mid_stream_loses_nothing_acknowledged() {
    if let Some(r) = role() {
        let q = redis_queue(&std::env::var(TARGET).unwrap(), 30_000, "child").await;
        return child(q, &r).await;
    }
    if redis_url().is_none() {
        return;
    }
    let dir = tempfile::tempdir().unwrap();
    let log = dir.path().join("acked.log");
    let group = unique("crash-producer");
    let child = spawn_child(
        "redis_producer_killed_mid_stream_loses_nothing_acknowledged",
        "redis-producer",
        &group,
        &log,
    );
    let acked = kill_after(child, &log, 300);
    let q = redis_queue(&group, 30_000, "parent").await;
    let stored = drain(&*q).await;
    check_nothing_lost(&acked, &stored);
    q.destroy().await.unwrap();
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn redis_consumer_killed_before_ack_gets_redelivered() {
    if let Some(r) = role() {
        let q = redis_queue(&std::env::var(TARGET).unwrap(), 1_000, "child").await;
        return child(q, &r).await;
    }
    if redis_url().is_none() {
        return;
    }
    let dir = tempfile::tempdir().unwrap();
    let log = dir.path().join("taken.log");
    let group = unique("crash-consumer");
    let q = redis_queue(&group, 1_000, "parent").await;
    for i in 1..=5 {
        q.try_enqueue(batch(i, 20)).await.unwrap();
    }
    let child = spawn_child(
        "redis_consumer_killed_before_ack_gets_redelivered",
        "redis-consumer",
        &group,
        &log,
    );
    let taken = kill_after(child, &log, 5);
    assert_eq!(taken, ["1 1", "2 1", "3 1", "4 1", "5 1"]);
    assert_eq!(q.stats().await.unwrap().in_flight, 5);
    // Pending on the dead consumer: claimed by this one after the timeout.
    let back = collect(&*q, 5, Duration::from_secs(5)).await;
    assert_eq!(ids(&back), [1, 2, 3, 4, 5]);
    assert!(back.iter().all(|d| d.attempts == 2), "{back:?}");
    let acks: Vec<_> = back.iter().map(|d| d.id).collect();
    q.ack(&acks).await.unwrap();
    assert_eq!(q.stats().await.unwrap().batches, 0);
    q.destroy().await.unwrap();
}
