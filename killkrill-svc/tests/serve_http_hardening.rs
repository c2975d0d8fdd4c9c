//! HTTP hardening over real sockets: a request body trickled past
//! `http_server.body_read_timeout_ms` is answered 408 and its connection
//! closed (counted); an HTTP/2 connection left idle past
//! `http_server.idle_timeout_ms` is closed by the server (counted) while a
//! busy one is not; `http_server.max_connections` has an upper bound that
//! the configuration names.
#![allow(clippy::unwrap_used, clippy::print_stderr)]

mod support;

use std::time::{Duration, Instant};

use killkrill_svc::config::{Layers, ListenAddr, ServeConfig};
use support::{api_key, config, metric_value, scrape};
use tokio::io::{AsyncReadExt, AsyncWriteExt};
use tokio::net::TcpStream;

fn http_only(dir: &std::path::Path) -> ServeConfig {
    let mut c = config(dir);
    c.syslog_udp = ListenAddr::OFF;
    c.syslog_tcp = ListenAddr::OFF;
    c
}

#[test]
fn max_connections_has_an_upper_bound_named_in_the_error() {
    let load = |k: &str, v: &str| {
        ServeConfig::load(&Layers {
            env: vec![(k.to_owned(), v.to_owned())],
            ..Layers::default()
        })
    };
    let e = load("KILLKRILL_HTTP_SERVER__MAX_CONNECTIONS", "1000000").unwrap_err();
    assert_eq!(e.key, "http_server.max_connections");
    assert!(e.problem.contains("65536"), "{e}");
    assert!(
        e.to_string()
            .contains("KILLKRILL_HTTP_SERVER__MAX_CONNECTIONS"),
        "{e}"
    );
    assert!(load("KILLKRILL_HTTP_SERVER__MAX_CONNECTIONS", "65536").is_ok());
    let e = load("KILLKRILL_HTTP_SERVER__BODY_READ_TIMEOUT_MS", "0").unwrap_err();
    assert_eq!(e.key, "http_server.body_read_timeout_ms");
    let e = load("KILLKRILL_HTTP_SERVER__IDLE_TIMEOUT_MS", "10").unwrap_err();
    assert_eq!(e.key, "http_server.idle_timeout_ms");
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn a_trickled_body_is_cut_off_with_408_and_counted() {
    let dir = tempfile::tempdir().unwrap();
    let mut cfg = http_only(dir.path());
    cfg.http_server.body_read_timeout_ms = 600;
    let h = support::start(cfg).await.unwrap();
    let addr = h.http.unwrap();
    let key = api_key(addr);
    let before = metric_value(&scrape(addr).await, "killkrill_http_body_timeouts_total");

    // Headers promise 200 bytes; the body comes a few bytes at a time.
    let mut s = TcpStream::connect(addr).await.unwrap();
    let head = format!(
        "POST /api/v1/logs HTTP/1.1\r\nHost: {addr}\r\nX-API-Key: {key}\r\nContent-Type: application/x-ndjson\r\nContent-Length: 200\r\n\r\n"
    );
    s.write_all(head.as_bytes()).await.unwrap();
    let started = Instant::now();
    let (mut rd, mut wr) = s.into_split();
    let trickle = tokio::spawn(async move {
        for _ in 0..40 {
            if wr.write_all(b"{\"m").await.is_err() {
                return;
            }
            tokio::time::sleep(Duration::from_millis(100)).await;
        }
    });
    let mut raw = Vec::new();
    tokio::time::timeout(Duration::from_secs(5), rd.read_to_end(&mut raw))
        .await
        .expect("the server answers and closes")
        .unwrap();
    let took = started.elapsed();
    trickle.abort();
    let text = String::from_utf8_lossy(&raw);
    assert!(text.starts_with("HTTP/1.1 408"), "{text}");
    assert!(
        text.to_ascii_lowercase().contains("connection: close"),
        "{text}"
    );
    let body = &text[text.find("\r\n\r\n").unwrap() + 4..];
    let j: serde_json::Value = serde_json::from_str(body).unwrap();
    assert_eq!(j["error"], "request body too slow");
    assert!(
        j["detail"]
            .as_str()
            .unwrap()
            .contains("body_read_timeout_ms")
    );
    assert!(took >= Duration::from_millis(550), "{took:?}");
    let after = metric_value(&scrape(addr).await, "killkrill_http_body_timeouts_total");
    assert!(after >= before + 1.0, "{before} -> {after}");
    assert!(support::stored(&h.store).await.is_empty(), "nothing stored");

    // A body that arrives in time, even in pieces, is fine.
    let mut s = TcpStream::connect(addr).await.unwrap();
    let body = b"{\"msg\":\"in time\"}\n";
    let head = format!(
        "POST /api/v1/logs HTTP/1.1\r\nHost: {addr}\r\nX-API-Key: {key}\r\nContent-Type: application/x-ndjson\r\nConnection: close\r\nContent-Length: {}\r\n\r\n",
        body.len()
    );
    s.write_all(head.as_bytes()).await.unwrap();
    for part in body.chunks(6) {
        s.write_all(part).await.unwrap();
        tokio::time::sleep(Duration::from_millis(50)).await;
    }
    let mut raw = Vec::new();
    s.read_to_end(&mut raw).await.unwrap();
    let text = String::from_utf8_lossy(&raw);
    assert!(text.starts_with("HTTP/1.1 2"), "{text}");
    support::wait_stored(&h.store, 1).await;
    h.shutdown().await;
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn an_idle_http2_connection_is_closed_and_a_busy_one_is_not() {
    use hyper_util::rt::{TokioExecutor, TokioIo};
    let dir = tempfile::tempdir().unwrap();
    let mut cfg = http_only(dir.path());
    cfg.http_server.idle_timeout_ms = 700;
    // Ten times the idle time: this test is about the idle timer, not the
    // header timeout of HTTP/1.
    cfg.http_server.header_read_timeout_ms = 7_000;
    let h = support::start(cfg).await.unwrap();
    let addr = h.http.unwrap();
    let before = metric_value(
        &scrape(addr).await,
        "killkrill_http_connections_idle_closed_total",
    );

    let stream = TcpStream::connect(addr).await.unwrap();
    let (mut send, conn) =
        hyper::client::conn::http2::handshake(TokioExecutor::new(), TokioIo::new(stream))
            .await
            .unwrap();
    let driver = tokio::spawn(conn);
    let get = |path: &str| {
        hyper::Request::get(format!("http://{addr}{path}"))
            .body(http_body_util::Empty::<bytes::Bytes>::new())
            .unwrap()
    };

    // Busy: a request every 300 ms for 2.1 s (three idle times) keeps it
    // open.
    let busy_until = Instant::now() + Duration::from_millis(2_100);
    let mut idle_from = Instant::now();
    while Instant::now() < busy_until {
        tokio::time::sleep(Duration::from_millis(300)).await;
        send.ready().await.unwrap();
        let r = send.send_request(get("/healthz")).await.unwrap();
        assert_eq!(r.status(), 200);
        idle_from = Instant::now();
    }
    assert!(!driver.is_finished(), "a busy connection stays open");

    // Idle: the server closes it after the idle time.
    let done = tokio::time::timeout(Duration::from_secs(5), driver)
        .await
        .expect("the server closed the idle connection")
        .unwrap();
    let took = idle_from.elapsed();
    eprintln!("idle connection closed after {took:?} ({done:?})");
    assert!(took >= Duration::from_millis(600), "{took:?}");
    assert!(send.ready().await.is_err(), "no more requests on it");
    let after = metric_value(
        &scrape(addr).await,
        "killkrill_http_connections_idle_closed_total",
    );
    assert!(after >= before + 1.0, "{before} -> {after}");
    h.shutdown().await;
}
