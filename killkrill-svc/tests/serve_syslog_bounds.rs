//! Bounds of the syslog listeners, over real sockets on 127.0.0.1: a TCP
//! connection whose batch cannot be enqueued counts every message it had
//! already framed (sent = queued + dropped); neither a sender that keeps
//! connecting over TCP nor one that keeps sending UDP datagrams holds the
//! shutdown open past the drain time; one source address cannot take more
//! than `syslog.max_connections_per_ip` connections.
#![allow(clippy::unwrap_used)]

mod support;

use std::sync::Arc;
use std::sync::atomic::{AtomicBool, Ordering};
use std::time::{Duration, Instant};

use support::{by_message, config, metric_sum, scrape, wait_stored};
use tokio::io::{AsyncReadExt, AsyncWriteExt};
use tokio::net::TcpStream;

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn tcp_messages_buffered_behind_a_failed_batch_are_counted_as_dropped() {
    let dir = tempfile::tempdir().unwrap();
    let mut cfg = config(dir.path());
    // No worker and a queue of 10: the third batch of 5 waits for room that
    // never comes, with 15 more messages framed behind it.
    cfg.workers.count = 0;
    cfg.queue.max_events = 10;
    cfg.syslog.batch_max_events = 5;
    cfg.workers.drain_timeout_secs = 1;
    let h = support::start(cfg).await.unwrap();
    let mut c = TcpStream::connect(h.syslog_tcp.unwrap()).await.unwrap();
    let sent = 30;
    let lines: String = (0..sent)
        .map(|i| format!("<13>1 - h a - - - line {i}\n"))
        .collect();
    // One small write: one read on the server.
    c.write_all(lines.as_bytes()).await.unwrap();
    let addr = h.http.unwrap();
    let start = Instant::now();
    loop {
        let m = scrape(addr).await;
        let held = metric_sum(
            &m,
            "killkrill_syslog_backpressure_total",
            &[("listener", "syslog-tcp")],
        );
        if held >= 1.0 {
            break;
        }
        assert!(start.elapsed() < Duration::from_secs(5), "{m}");
        tokio::time::sleep(Duration::from_millis(20)).await;
    }
    let queued = h.queue.stats().await.unwrap().events.unwrap();
    assert_eq!(queued, 10);
    h.shutdown().await;
    drop(c);
    let m = killkrill_svc::serve::self_metrics::handle()
        .unwrap()
        .render();
    let dropped = metric_sum(
        &m,
        "killkrill_syslog_dropped_messages_total",
        &[("listener", "syslog-tcp"), ("reason", "shutdown")],
    );
    let received = metric_sum(
        &m,
        "killkrill_syslog_messages_total",
        &[("listener", "syslog-tcp")],
    );
    assert_eq!(queued as f64 + dropped, f64::from(sent), "{m}");
    assert_eq!(received, f64::from(sent), "{m}");
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn a_sender_that_keeps_connecting_does_not_hold_the_shutdown_open() {
    let dir = tempfile::tempdir().unwrap();
    let mut cfg = config(dir.path());
    cfg.workers.drain_timeout_secs = 1;
    let h = support::start(cfg).await.unwrap();
    let target = h.syslog_tcp.unwrap();
    let stop = Arc::new(AtomicBool::new(false));
    // Connects (and hangs up) in a loop for at most 30 s.
    let client = tokio::spawn({
        let stop = stop.clone();
        async move {
            let until = Instant::now() + Duration::from_secs(30);
            let mut connected = 0u64;
            while !stop.load(Ordering::Relaxed) && Instant::now() < until {
                match TcpStream::connect(target).await {
                    Ok(c) => {
                        connected += 1;
                        drop(c);
                    }
                    Err(_) => tokio::time::sleep(Duration::from_millis(1)).await,
                }
            }
            connected
        }
    });
    tokio::time::sleep(Duration::from_millis(200)).await;
    let started = Instant::now();
    h.shutdown().await;
    let took = started.elapsed();
    stop.store(true, Ordering::Relaxed);
    let connected = client.await.unwrap();
    assert!(connected > 10, "the client connected {connected} times");
    // The drain time (1 s) for the backlog, then the connections' own
    // bounded closing; not the client's 30 s.
    assert!(took < Duration::from_secs(8), "shutdown took {took:?}");
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn a_udp_flood_does_not_hold_the_shutdown_open() {
    let dir = tempfile::tempdir().unwrap();
    let mut cfg = config(dir.path());
    cfg.workers.drain_timeout_secs = 1;
    let h = support::start(cfg).await.unwrap();
    let target = h.syslog_udp.unwrap();
    let stop = Arc::new(AtomicBool::new(false));
    // Two threads sending small datagrams as fast as they can, each for at
    // most 30 s.
    let senders: Vec<_> = (0..2)
        .map(|_| {
            let stop = stop.clone();
            std::thread::spawn(move || {
                let s = std::net::UdpSocket::bind("127.0.0.1:0").unwrap();
                let until = Instant::now() + Duration::from_secs(30);
                let mut sent = 0u64;
                while !stop.load(Ordering::Relaxed) && Instant::now() < until {
                    if s.send_to(b"<13>1 - h a - - - flood", target).is_ok() {
                        sent += 1;
                    }
                }
                sent
            })
        })
        .collect();
    tokio::time::sleep(Duration::from_millis(300)).await;
    let started = Instant::now();
    h.shutdown().await;
    let took = started.elapsed();
    stop.store(true, Ordering::Relaxed);
    let sent: u64 = senders.into_iter().map(|t| t.join().unwrap()).sum();
    assert!(sent > 1000, "{sent} datagrams sent");
    assert!(took < Duration::from_secs(8), "shutdown took {took:?}");
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn one_source_address_cannot_take_every_connection() {
    let dir = tempfile::tempdir().unwrap();
    let mut cfg = config(dir.path());
    cfg.syslog.max_connections_per_ip = 2;
    let h = support::start(cfg).await.unwrap();
    let tcp = h.syslog_tcp.unwrap();
    let mut a = TcpStream::connect(tcp).await.unwrap();
    let mut b = TcpStream::connect(tcp).await.unwrap();
    a.write_all(b"<13>1 - h a - - - from a\n").await.unwrap();
    b.write_all(b"<13>1 - h a - - - from b\n").await.unwrap();
    tokio::time::sleep(Duration::from_millis(200)).await;
    // A third from the same address is closed at once, and counted.
    let mut c = TcpStream::connect(tcp).await.unwrap();
    let mut buf = [0u8; 8];
    let n = tokio::time::timeout(Duration::from_secs(3), c.read(&mut buf))
        .await
        .unwrap()
        .unwrap_or(0);
    assert_eq!(n, 0, "the server closed the connection over the limit");
    // Once one closes, its place is free again.
    drop(a);
    let records = wait_stored(&h.store, 2).await;
    by_message(&records, "from a");
    tokio::time::sleep(Duration::from_millis(200)).await;
    let mut d = TcpStream::connect(tcp).await.unwrap();
    d.write_all(b"<13>1 - h a - - - from d\n").await.unwrap();
    drop(d);
    let records = wait_stored(&h.store, 3).await;
    by_message(&records, "from b");
    by_message(&records, "from d");
    let m = scrape(h.http.unwrap()).await;
    let closed = |reason| {
        metric_sum(
            &m,
            "killkrill_syslog_connections_closed_total",
            &[("listener", "syslog-tcp"), ("reason", reason)],
        )
    };
    assert_eq!((closed("per_ip_limit"), closed("limit")), (1.0, 0.0), "{m}");
    drop(b);
    h.shutdown().await;
}
