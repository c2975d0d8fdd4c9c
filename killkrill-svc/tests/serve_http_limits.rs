//! The HTTP listener's connection limits: a client trickling its request
//! headers (slowloris) is cut off after `http_server.header_read_timeout_ms`,
//! and connections beyond `http_server.max_connections` are closed at once
//! and counted, while the service keeps answering.
#![allow(clippy::unwrap_used)]

mod support;

use std::time::{Duration, Instant};

use killkrill_svc::serve;
use support::{config, http, metric_sum};
use tokio::io::{AsyncReadExt, AsyncWriteExt};
use tokio::net::TcpStream;

/// Reads until EOF or error; true when the server closed within `limit`.
async fn closed_within(s: &mut TcpStream, limit: Duration) -> bool {
    let mut buf = [0u8; 1024];
    tokio::time::timeout(limit, async {
        loop {
            match s.read(&mut buf).await {
                Ok(0) | Err(_) => return,
                Ok(_) => {} // e.g. a 408 before closing
            }
        }
    })
    .await
    .is_ok()
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn a_client_sending_headers_slowly_is_cut_off() {
    let dir = tempfile::tempdir().unwrap();
    let mut cfg = config(dir.path());
    cfg.http_server.header_read_timeout_ms = 500;
    let h = serve::start(cfg).await.unwrap();
    let addr = h.http.unwrap();

    let mut slow = TcpStream::connect(addr).await.unwrap();
    slow.write_all(b"POST /api/v1/logs HTTP/1.1\r\nHost: x\r\n")
        .await
        .unwrap();
    let started = Instant::now();
    // One header line every 100 ms: never a complete head.
    let trickle = async {
        for i in 0..100 {
            tokio::time::sleep(Duration::from_millis(100)).await;
            if slow
                .write_all(format!("X-Slow-{i}: y\r\n").as_bytes())
                .await
                .is_err()
            {
                break;
            }
        }
    };
    let (_, ()) = tokio::join!(
        async {
            // Meanwhile, others are served.
            let r = http(addr, "GET", "/healthz", &[], b"").await;
            assert_eq!(r.status, 200);
        },
        trickle
    );
    let elapsed = started.elapsed();
    assert!(
        elapsed < Duration::from_secs(5),
        "the slow client was not cut off ({elapsed:?})"
    );
    assert!(closed_within(&mut slow, Duration::from_secs(2)).await);
    h.shutdown().await;
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn connections_beyond_the_limit_are_closed_and_counted() {
    let dir = tempfile::tempdir().unwrap();
    let mut cfg = config(dir.path());
    cfg.http_server.max_connections = 3;
    cfg.http_server.header_read_timeout_ms = 20_000;
    let h = serve::start(cfg).await.unwrap();
    let addr = h.http.unwrap();

    // Three connections hold every slot (a request head half sent).
    let mut held = Vec::new();
    for _ in 0..3 {
        let mut s = TcpStream::connect(addr).await.unwrap();
        s.write_all(b"GET /healthz HTTP/1.1\r\n").await.unwrap();
        held.push(s);
    }
    tokio::time::sleep(Duration::from_millis(200)).await;
    let mut extra = TcpStream::connect(addr).await.unwrap();
    let _ = extra
        .write_all(b"GET /healthz HTTP/1.1\r\nHost: x\r\n\r\n")
        .await;
    assert!(
        closed_within(&mut extra, Duration::from_secs(2)).await,
        "the fourth connection was served"
    );

    // Slots come back when connections close.
    drop(held);
    let start = Instant::now();
    let m = loop {
        let mut s = TcpStream::connect(addr).await.unwrap();
        s.write_all(b"GET /metrics HTTP/1.1\r\nHost: x\r\nConnection: close\r\n\r\n")
            .await
            .unwrap();
        let mut raw = Vec::new();
        let _ = s.read_to_end(&mut raw).await;
        if raw.starts_with(b"HTTP/1.1 200") {
            break String::from_utf8_lossy(&raw).into_owned();
        }
        assert!(
            start.elapsed() < Duration::from_secs(5),
            "no slot came back"
        );
        tokio::time::sleep(Duration::from_millis(50)).await;
    };
    assert!(
        metric_sum(&m, "killkrill_http_connections_rejected_total", &[]) >= 1.0,
        "{m}"
    );
    let r = http(addr, "GET", "/healthz", &[], b"").await;
    assert_eq!(r.status, 200);
    h.shutdown().await;
}

/// A connection that sends nothing, or only the start of the HTTP/2
/// preface, is closed after the header timeout and counted: it cannot hold
/// a connection slot.
#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn silent_connections_are_closed_and_counted() {
    let dir = tempfile::tempdir().unwrap();
    let mut cfg = config(dir.path());
    cfg.http_server.header_read_timeout_ms = 300;
    let h = serve::start(cfg).await.unwrap();
    let addr = h.http.unwrap();
    let mut silent = TcpStream::connect(addr).await.unwrap();
    let mut partial = TcpStream::connect(addr).await.unwrap();
    partial.write_all(b"PRI * HTTP/2.0\r\n").await.unwrap();
    assert!(closed_within(&mut silent, Duration::from_secs(3)).await);
    assert!(closed_within(&mut partial, Duration::from_secs(3)).await);
    let m = support::scrape(addr).await;
    assert_eq!(
        metric_sum(&m, "killkrill_http_connections_silent_total", &[]),
        2.0,
        "{m}"
    );
    // A real client is still served.
    assert_eq!(http(addr, "GET", "/healthz", &[], b"").await.status, 200);
    h.shutdown().await;
}
