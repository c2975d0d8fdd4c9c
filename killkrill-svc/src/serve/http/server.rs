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
            let conn = builder.serve_connection(TokioIo::new(stream), svc);
            if let Err(e) = watcher.watch(conn).await {
                tracing::debug!(error = %e, "HTTP connection ended with an error");
            }
            metrics::gauge!(OPEN_CONNECTIONS).decrement(1.0);
            drop(permit);
        });
    }
    drop(listener);
    graceful.shutdown().await;
}
