//! The HTTP listener's accept loop, with the limits axum's own `serve`
//! lacks: a deadline for a request's headers (a client that trickles its
//! headers — slowloris — is cut off) and a cap on open connections (one
//! more is closed at accept and counted).
//!
//! Each connection speaks HTTP/1.1 or HTTP/2 (prior knowledge, which gRPC
//! clients use), detected from its first bytes. On HTTP/1.1
//! `header_read_timeout` applies to the first request and to every next
//! one on a keep-alive connection (an idle keep-alive connection is closed
//! after the same time); HTTP/2 connections are kept alive by pings and
//! bounded by the connection cap. Every request carries the peer address
//! (`ConnectInfo`), which login rate limiting and the audit log use. Shutdown stops accepting, lets every connection
//! finish the request in hand (hyper's graceful shutdown) and returns when
//! they have.

use std::sync::Arc;
use std::time::Duration;

use axum::Router;
use axum::extract::ConnectInfo;
use hyper::body::Incoming;
use hyper_util::rt::{TokioExecutor, TokioIo, TokioTimer};
use hyper_util::server::conn::auto;
use hyper_util::server::graceful::GracefulShutdown;
use hyper_util::service::TowerToHyperService;
use killkrill_core::pipeline::Shutdown;
use tokio::net::TcpListener;
use tokio::sync::Semaphore;
use tower::ServiceExt;

use crate::config::HttpServerConfig;

/// Connections closed at accept because `http_server.max_connections` were
/// open.
pub const REJECTED_CONNECTIONS: &str = "killkrill_http_connections_rejected_total";
/// Connections closed because they sent nothing (or only part of the
/// HTTP/2 preface) within `http_server.header_read_timeout_ms`.
pub const SILENT_CONNECTIONS: &str = "killkrill_http_connections_silent_total";
/// HTTP connections open now.
pub const OPEN_CONNECTIONS: &str = "killkrill_http_connections_open";

/// Serves `app` on `listener` until `shutdown`.
pub async fn serve(
    listener: TcpListener,
    app: Router,
    cfg: HttpServerConfig,
    mut shutdown: Shutdown,
) {
    let slots = Arc::new(Semaphore::new(cfg.max_connections));
    let graceful = GracefulShutdown::new();
    let header_timeout = Duration::from_millis(cfg.header_read_timeout_ms);
    let mut builder = auto::Builder::new(TokioExecutor::new());
    builder
        .http1()
        .timer(TokioTimer::new())
        .header_read_timeout(header_timeout);
    builder
        .http2()
        .timer(TokioTimer::new())
        .keep_alive_interval(Some(Duration::from_secs(30)));
    loop {
        let (stream, peer) = tokio::select! {
            () = shutdown.requested() => break,
            r = listener.accept() => match r {
                Ok(c) => c,
                Err(e) => {
                    // Out of file descriptors and the like: back off
                    // instead of spinning.
                    tracing::warn!(error = %e, "HTTP accept failed");
                    tokio::time::sleep(Duration::from_millis(50)).await;
                    continue;
                }
            },
        };
        let Ok(permit) = slots.clone().try_acquire_owned() else {
            metrics::counter!(REJECTED_CONNECTIONS).increment(1);
            drop(stream);
            continue;
        };
        let _ = stream.set_nodelay(true);
        let svc = TowerToHyperService::new(app.clone().map_request(
            move |req: hyper::Request<Incoming>| {
                let mut req = req.map(axum::body::Body::new);
                req.extensions_mut().insert(ConnectInfo(peer));
                req
            },
        ));
        let builder = builder.clone();
        let watcher = graceful.watcher();
        metrics::gauge!(OPEN_CONNECTIONS).increment(1.0);
        tokio::spawn(async move {
            // hyper reads the first bytes (HTTP/1 or the HTTP/2 preface)
            // without a deadline: a client that sends nothing must not
            // hold a connection slot for longer than the header timeout.
            if !first_bytes(&stream, header_timeout).await {
                metrics::counter!(SILENT_CONNECTIONS).increment(1);
                metrics::gauge!(OPEN_CONNECTIONS).decrement(1.0);
                drop(permit);
                return;
            }
            let conn = builder.serve_connection(TokioIo::new(stream), svc);
            if let Err(e) = watcher.watch(conn).await {
                tracing::debug!(error = %e, "HTTP connection ended with an error");
            }
            metrics::gauge!(OPEN_CONNECTIONS).decrement(1.0);
            drop(permit);
        });
    }
    drop(listener);
    // Requests in hand finish; a client trickling a body cannot hold the
    // shutdown (and so the queue drain behind it) forever.
    if tokio::time::timeout(SHUTDOWN_GRACE, graceful.shutdown())
        .await
        .is_err()
    {
        tracing::warn!(
            grace_secs = SHUTDOWN_GRACE.as_secs(),
            "HTTP connections still open at shutdown were cut off"
        );
    }
}

/// How long shutdown waits for the requests in hand.
const SHUTDOWN_GRACE: Duration = Duration::from_secs(30);

/// Waits (at most `within`) until the connection has sent enough to tell
/// HTTP/1 from HTTP/2: a first byte that is not the HTTP/2 preface, or the
/// whole 24-byte preface. `false` when it sent nothing in time or closed.
async fn first_bytes(stream: &tokio::net::TcpStream, within: Duration) -> bool {
    const PREFACE: &[u8] = b"PRI * HTTP/2.0\r\n\r\nSM\r\n\r\n";
    let deadline = tokio::time::Instant::now() + within;
    let mut buf = [0u8; 24];
    loop {
        match tokio::time::timeout_at(deadline, stream.peek(&mut buf)).await {
            Ok(Ok(0)) | Ok(Err(_)) | Err(_) => return false,
            Ok(Ok(n)) => {
                if n >= PREFACE.len() || buf[..n] != PREFACE[..n] {
                    return true;
                }
            }
        }
        // A partial preface: peek returns at once while no more arrived.
        if tokio::time::Instant::now() >= deadline {
            return false;
        }
        tokio::time::sleep(Duration::from_millis(5)).await;
    }
}
