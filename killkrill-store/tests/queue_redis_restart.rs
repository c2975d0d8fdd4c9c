//! Redis restarted under load: a test-owned `redis-server` (its own free
//! port and directory, `appendonly yes`, `appendfsync always`) is killed
//! with SIGKILL while a producer enqueues, then started again on the same
//! data; every batch whose enqueue returned `Ok` must be in the stream
//! afterwards. The shared server on 6379 is not touched.
//!
//! Skipped with a printed reason when `redis-server` is not installed.
#![allow(clippy::unwrap_used, clippy::print_stderr)]

mod queue_support;

use std::collections::BTreeSet;
use std::path::Path;
use std::process::{Child, Command, Stdio};
use std::sync::Arc;
use std::sync::atomic::{AtomicBool, AtomicUsize, Ordering};
use std::time::Duration;

use killkrill_core::pipeline::{Queue, QueueError};
use killkrill_store::queue::RedisStreamsQueue;
use queue_support::*;

fn free_port() -> u16 {
    std::net::TcpListener::bind("127.0.0.1:0")
        .unwrap()
        .local_addr()
        .unwrap()
        .port()
}

fn start_server(port: u16, dir: &Path) -> Option<Child> {
    let child = Command::new("redis-server")
        .args(["--port", &port.to_string(), "--bind", "127.0.0.1"])
        .args([
            "--save",
            "",
            "--appendonly",
            "yes",
            "--appendfsync",
            "always",
        ])
        .arg("--dir")
        .arg(dir)
        .stdout(Stdio::null())
        .stderr(Stdio::null())
        .spawn();
    let child = match child {
        Ok(c) => c,
        Err(e) => {
            eprintln!("skipped: cannot start redis-server: {e}");
            return None;
        }
    };
    let deadline = std::time::Instant::now() + Duration::from_secs(10);
    while std::net::TcpStream::connect(("127.0.0.1", port)).is_err() {
        assert!(
            std::time::Instant::now() < deadline,
            "redis-server did not start"
        );
        std::thread::sleep(Duration::from_millis(20));
    }
    Some(child)
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn redis_restart_under_load_loses_nothing_acknowledged() {
    let dir = tempfile::tempdir().unwrap();
    let port = free_port();
    let Some(mut server) = start_server(port, dir.path()) else {
        return;
    };
    let url = format!("redis://127.0.0.1:{port}");
    let mut opts = redis_options(
        "restart",
        Shape {
            batches: 1_000_000,
            events: 10,
            visibility: Duration::from_secs(30),
        },
    );
    opts.command_timeout = Duration::from_millis(500);
    let q = Arc::new(RedisStreamsQueue::connect(&url, opts).await.unwrap());

    let stop = Arc::new(AtomicBool::new(false));
    let count = Arc::new(AtomicUsize::new(0));
    let producer = {
        let (q, stop, count) = (q.clone(), stop.clone(), count.clone());
        tokio::spawn(async move {
            let (mut acked, mut errors) = (Vec::new(), 0u32);
            let mut i = 1u128;
            while !stop.load(Ordering::SeqCst) {
                match q.enqueue(batch(i, 10), Duration::from_secs(1)).await {
                    Ok(()) => {
                        acked.push(i);
                        count.fetch_add(1, Ordering::SeqCst);
                        i += 1;
                    }
                    // A receiver answers 503 and the sender retries; the
                    // same batch id is sent again.
                    Err(e @ QueueError::Backend { .. }) => {
                        assert_eq!(
                            e.kind(),
                            killkrill_core::pipeline::ErrorKind::Retryable,
                            "{e}"
                        );
                        errors += 1;
                        tokio::time::sleep(Duration::from_millis(20)).await;
                    }
                    Err(e) => panic!("{e}"),
                }
            }
            (acked, errors)
        })
    };
    tokio::time::sleep(Duration::from_millis(500)).await;
    server.kill().unwrap(); // SIGKILL mid-load
    server.wait().unwrap();
    tokio::time::sleep(Duration::from_millis(500)).await;
    let before_restart = count.load(Ordering::SeqCst);
    let mut server = start_server(port, dir.path()).unwrap();
    tokio::time::sleep(Duration::from_millis(1500)).await;
    stop.store(true, Ordering::SeqCst);
    let (acked, errors) = producer.await.unwrap();
    assert!(errors > 0, "the restart was not noticed");
    assert!(
        before_restart > 20,
        "only {before_restart} batches before the restart"
    );
    let after_restart = acked.len() - before_restart;
    assert!(
        after_restart > 20,
        "only {after_restart} batches after the restart"
    );

    // Everything acknowledged is there, once or (for a retried send whose
    // first reply was lost) twice.
    let mut stored = Vec::new();
    loop {
        let ds = match q.dequeue(500, Duration::from_millis(200)).await {
            Ok(ds) => ds,
            Err(e) => panic!("{e}"),
        };
        if ds.is_empty() {
            break;
        }
        stored.extend(ids(&ds));
        let acks: Vec<_> = ds.iter().map(|d| d.id).collect();
        q.ack(&acks).await.unwrap();
    }
    let unique: BTreeSet<u128> = stored.iter().copied().collect();
    let missing: Vec<_> = acked.iter().filter(|i| !unique.contains(i)).collect();
    assert!(missing.is_empty(), "acknowledged but lost: {missing:?}");
    assert!(stored.len() - unique.len() <= errors as usize);
    eprintln!(
        "{} acknowledged, {} stored ({} distinct), {errors} failed sends during the restart",
        acked.len(),
        stored.len(),
        unique.len()
    );
    server.kill().unwrap();
    server.wait().unwrap();
}
