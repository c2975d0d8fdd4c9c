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
//!
//! With `[http_tls]` the listener speaks only TLS (rustls, TLS 1.2 minimum,
//! ALPN `h2` and `http/1.1`, so gRPC clients reach the same routes over
//! TLS). The handshake must finish within
//! `http_server.tls_handshake_timeout_ms`; a failed or timed-out handshake
//! closes the connection and is counted in
//! `killkrill_http_tls_handshake_failures_total{reason}` (see
//! [`crate::serve::tls::handshake_failure_reason`]). After the handshake the
//! same header deadline applies to the first decrypted bytes.

use std::net::SocketAddr;
use std::pin::Pin;
use std::sync::Arc;
use std::task::{Context, Poll};
use std::time::Duration;

use axum::Router;
use axum::extract::ConnectInfo;
use hyper::body::Incoming;
use hyper_util::rt::{TokioExecutor, TokioIo, TokioTimer};
use hyper_util::server::conn::auto;
use hyper_util::server::graceful::GracefulShutdown;
use hyper_util::service::TowerToHyperService;
use killkrill_core::pipeline::Shutdown;
use tokio::io::{AsyncRead, AsyncReadExt, AsyncWrite, ReadBuf};
use tokio::net::{TcpListener, TcpStream};
use tokio::sync::Semaphore;
use tokio_rustls::TlsAcceptor;
use tokio_rustls::server::TlsStream;

use crate::config::HttpServerConfig;

/// Connections closed at accept because `http_server.max_connections` were
/// open.
pub const REJECTED_CONNECTIONS: &str = "killkrill_http_connections_rejected_total";
/// Connections closed because they sent nothing (or only part of the
/// HTTP/2 preface) within `http_server.header_read_timeout_ms`.
pub const SILENT_CONNECTIONS: &str = "killkrill_http_connections_silent_total";
/// HTTP connections open now.
pub const OPEN_CONNECTIONS: &str = "killkrill_http_connections_open";
/// TLS handshakes on the HTTP listener that failed (`reason`: `timeout`,
/// `not_tls`, `protocol_version`, `no_client_certificate`,
/// `bad_certificate`, `closed`, `other`).
pub const TLS_HANDSHAKE_FAILURES: &str = "killkrill_http_tls_handshake_failures_total";

/// Serves `app` on `listener` until `shutdown`.
pub async fn serve(
    listener: TcpListener,
    app: Router,
    cfg: HttpServerConfig,
    tls: Option<TlsAcceptor>,
    mut shutdown: Shutdown,
) {
    let handshake_timeout = Duration::from_millis(cfg.tls_handshake_timeout_ms);
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
        let svc = TowerToHyperService::new(WithPeer {
            app: app.clone(),
            peer,
        });
        let builder = builder.clone();
        let watcher = graceful.watcher();
        metrics::gauge!(OPEN_CONNECTIONS).increment(1.0);
        let tls = tls.clone();
        tokio::spawn(async move {
            let served = match tls {
                None => serve_plain(stream, header_timeout, &builder, svc, watcher).await,
                Some(acceptor) => {
                    serve_tls(
                        stream,
                        &acceptor,
                        handshake_timeout,
                        header_timeout,
                        &builder,
                        svc,
                        watcher,
                    )
                    .await
                }
            };
            if let Err(e) = served {
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

/// The router, with the peer address put into every request.
#[derive(Clone)]
struct WithPeer {
    app: Router,
    peer: SocketAddr,
}

impl tower::Service<hyper::Request<Incoming>> for WithPeer {
    type Response = <Router as tower::Service<hyper::Request<Incoming>>>::Response;
    type Error = <Router as tower::Service<hyper::Request<Incoming>>>::Error;
    type Future = <Router as tower::Service<hyper::Request<Incoming>>>::Future;

    fn poll_ready(&mut self, cx: &mut Context<'_>) -> Poll<Result<(), Self::Error>> {
        tower::Service::<hyper::Request<Incoming>>::poll_ready(&mut self.app, cx)
    }

    fn call(&mut self, mut req: hyper::Request<Incoming>) -> Self::Future {
        req.extensions_mut().insert(ConnectInfo(self.peer));
        self.app.call(req)
    }
}

type Svc = TowerToHyperService<WithPeer>;

type ConnResult = Result<(), Box<dyn std::error::Error + Send + Sync>>;

/// A plain TCP connection: HTTP/1.1 or HTTP/2 prior knowledge.
async fn serve_plain(
    stream: TcpStream,
    header_timeout: Duration,
    builder: &auto::Builder<TokioExecutor>,
    svc: Svc,
    watcher: hyper_util::server::graceful::Watcher,
) -> ConnResult {
    // hyper reads the first bytes (HTTP/1 or the HTTP/2 preface) without a
    // deadline: a client that sends nothing must not hold a connection
    // slot for longer than the header timeout.
    if !first_bytes(&stream, header_timeout).await {
        metrics::counter!(SILENT_CONNECTIONS).increment(1);
        return Ok(());
    }
    let conn = builder.serve_connection(TokioIo::new(stream), svc);
    watcher.watch(conn).await
}

/// A TLS connection: the handshake under its deadline, then the first
/// decrypted bytes under the header deadline, then HTTP/1.1 or HTTP/2
/// (whichever ALPN chose; hyper tells them apart by the preface).
async fn serve_tls(
    stream: TcpStream,
    acceptor: &TlsAcceptor,
    handshake_timeout: Duration,
    header_timeout: Duration,
    builder: &auto::Builder<TokioExecutor>,
    svc: Svc,
    watcher: hyper_util::server::graceful::Watcher,
) -> ConnResult {
    let peer = stream.peer_addr().ok();
    let mut tls = match tokio::time::timeout(handshake_timeout, acceptor.accept(stream)).await {
        Ok(Ok(s)) => s,
        Ok(Err(e)) => {
            let reason = crate::serve::tls::handshake_failure_reason(&e);
            metrics::counter!(TLS_HANDSHAKE_FAILURES, "reason" => reason).increment(1);
            tracing::info!(?peer, reason, error = %e, "HTTP TLS handshake failed");
            return Ok(());
        }
        Err(_) => {
            metrics::counter!(TLS_HANDSHAKE_FAILURES, "reason" => "timeout").increment(1);
            tracing::info!(?peer, "HTTP TLS handshake timed out");
            return Ok(());
        }
    };
    let Some(prefix) = first_tls_bytes(&mut tls, header_timeout).await else {
        metrics::counter!(SILENT_CONNECTIONS).increment(1);
        return Ok(());
    };
    let io = Prefixed {
        prefix,
        pos: 0,
        inner: tls,
    };
    let conn = builder.serve_connection(TokioIo::new(io), svc);
    watcher.watch(conn).await
}

const PREFACE: &[u8] = b"PRI * HTTP/2.0\r\n\r\nSM\r\n\r\n";

/// Reads (at most `within`) until the decrypted stream tells HTTP/1 from
/// HTTP/2, as [`first_bytes`] does on a plain socket. `None` when it sent
/// nothing in time or closed.
async fn first_tls_bytes(tls: &mut TlsStream<TcpStream>, within: Duration) -> Option<Vec<u8>> {
    let deadline = tokio::time::Instant::now() + within;
    let mut buf = Vec::with_capacity(PREFACE.len());
    let mut chunk = [0u8; 24];
    loop {
        let want = PREFACE.len() - buf.len();
        match tokio::time::timeout_at(deadline, tls.read(&mut chunk[..want])).await {
            Ok(Ok(0)) | Ok(Err(_)) | Err(_) => return None,
            Ok(Ok(n)) => buf.extend_from_slice(&chunk[..n]),
        }
        if buf.len() >= PREFACE.len() || buf[..] != PREFACE[..buf.len()] {
            return Some(buf);
        }
    }
}

/// A TLS stream whose first bytes were already read: they are read again
/// first.
struct Prefixed {
    prefix: Vec<u8>,
    pos: usize,
    inner: TlsStream<TcpStream>,
}

impl AsyncRead for Prefixed {
    fn poll_read(
        mut self: Pin<&mut Self>,
        cx: &mut Context<'_>,
        buf: &mut ReadBuf<'_>,
    ) -> Poll<std::io::Result<()>> {
        if self.pos < self.prefix.len() {
            let n = (self.prefix.len() - self.pos).min(buf.remaining());
            let start = self.pos;
            buf.put_slice(&self.prefix[start..start + n]);
            self.pos += n;
            return Poll::Ready(Ok(()));
        }
        Pin::new(&mut self.inner).poll_read(cx, buf)
    }
}

impl AsyncWrite for Prefixed {
    fn poll_write(
        mut self: Pin<&mut Self>,
        cx: &mut Context<'_>,
        buf: &[u8],
    ) -> Poll<std::io::Result<usize>> {
        Pin::new(&mut self.inner).poll_write(cx, buf)
    }

    fn poll_write_vectored(
        mut self: Pin<&mut Self>,
        cx: &mut Context<'_>,
        bufs: &[std::io::IoSlice<'_>],
    ) -> Poll<std::io::Result<usize>> {
        Pin::new(&mut self.inner).poll_write_vectored(cx, bufs)
    }

    fn is_write_vectored(&self) -> bool {
        self.inner.is_write_vectored()
    }

    fn poll_flush(mut self: Pin<&mut Self>, cx: &mut Context<'_>) -> Poll<std::io::Result<()>> {
        Pin::new(&mut self.inner).poll_flush(cx)
    }

    fn poll_shutdown(mut self: Pin<&mut Self>, cx: &mut Context<'_>) -> Poll<std::io::Result<()>> {
        Pin::new(&mut self.inner).poll_shutdown(cx)
    }
}

/// How long shutdown waits for the requests in hand.
const SHUTDOWN_GRACE: Duration = Duration::from_secs(30);

/// Waits (at most `within`) until the connection has sent enough to tell
/// HTTP/1 from HTTP/2: a first byte that is not the HTTP/2 preface, or the
/// whole 24-byte preface. `false` when it sent nothing in time or closed.
async fn first_bytes(stream: &TcpStream, within: Duration) -> bool {
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
