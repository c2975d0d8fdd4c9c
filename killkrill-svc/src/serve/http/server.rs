//! The HTTP listener's accept loop, with the limits axum's own `serve`
//! lacks: a deadline for a request's headers (a client that trickles its
//! headers — slowloris — is cut off) and a cap on open connections (one
//! more is closed at accept and counted).
//!
//! Each connection speaks HTTP/1.1 or HTTP/2 (prior knowledge, which gRPC
//! clients use), detected from its first bytes. On HTTP/1.1
//! `header_read_timeout` applies to the first request and to every next
//! one on a keep-alive connection (an idle keep-alive connection is closed
//! after the same time). HTTP/2 connections are pinged every
//! `http2_keep_alive_interval_ms` (a peer that does not answer within
//! `http2_keep_alive_timeout_ms` is gone and its connection closed), and a
//! connection with no request in flight for `idle_timeout_ms` is closed
//! (GOAWAY, then close; counted). A request body must arrive within
//! `body_read_timeout_ms` of its headers: a client that sends headers and
//! then trickles the body gets 408 and the connection is closed (counted).
//! `max_connections` is bounded (at most [`MAX_CONNECTIONS_LIMIT`]).
//! Every request carries the peer address
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

use std::pin::Pin;
use std::sync::Arc;
use std::sync::atomic::{AtomicBool, AtomicU64, AtomicUsize, Ordering};
use std::task::{Context, Poll};
use std::time::{Duration, Instant};

use axum::Router;
use axum::extract::ConnectInfo;
use hyper::body::Incoming;
use hyper::body::{Frame, SizeHint};
use hyper_util::rt::{TokioExecutor, TokioIo, TokioTimer};
use hyper_util::server::conn::auto;
use killkrill_core::pipeline::Shutdown;
use tokio::io::{AsyncRead, AsyncReadExt, AsyncWrite, ReadBuf};
use tokio::net::{TcpListener, TcpStream};
use tokio::sync::Semaphore;
use tokio_rustls::TlsAcceptor;
use tokio_rustls::server::TlsStream;
use tower::ServiceExt;

use crate::config::HttpServerConfig;
use crate::serve::tls_reload::TlsSource;

/// Connections closed at accept because `http_server.max_connections` were
/// open.
pub const REJECTED_CONNECTIONS: &str = "killkrill_http_connections_rejected_total";
/// Connections closed because they sent nothing (or only part of the
/// HTTP/2 preface) within `http_server.header_read_timeout_ms`.
pub const SILENT_CONNECTIONS: &str = "killkrill_http_connections_silent_total";
/// HTTP connections open now.
pub const OPEN_CONNECTIONS: &str = "killkrill_http_connections_open";
/// Requests answered 408 because their body did not arrive within
/// `http_server.body_read_timeout_ms`.
pub const BODY_TIMEOUTS: &str = "killkrill_http_body_timeouts_total";
/// Connections closed after `http_server.idle_timeout_ms` with no request in
/// flight.
pub const IDLE_CLOSED: &str = "killkrill_http_connections_idle_closed_total";

/// The largest `http_server.max_connections` accepted: each connection is a
/// file descriptor and a task; beyond this the process limit, not the cap,
/// would decide.
pub const MAX_CONNECTIONS_LIMIT: usize = 65_536;
/// TLS handshakes on the HTTP listener that failed (`reason`: `timeout`,
/// `not_tls`, `protocol_version`, `no_client_certificate`,
/// `bad_certificate`, `closed`, `other`).
pub const TLS_HANDSHAKE_FAILURES: &str = "killkrill_http_tls_handshake_failures_total";

impl HttpServerConfig {
    /// Checks the bounds the generic "greater than 0" check does not.
    ///
    /// # Errors
    /// `(key, problem)`.
    pub fn validate(&self) -> Result<(), (&'static str, String)> {
        if self.max_connections > MAX_CONNECTIONS_LIMIT {
            return Err((
                "http_server.max_connections",
                format!(
                    "{} is above the limit of {MAX_CONNECTIONS_LIMIT}",
                    self.max_connections
                ),
            ));
        }
        for (key, v) in [
            (
                "http_server.body_read_timeout_ms",
                self.body_read_timeout_ms,
            ),
            ("http_server.idle_timeout_ms", self.idle_timeout_ms),
            (
                "http_server.http2_keep_alive_interval_ms",
                self.http2_keep_alive_interval_ms,
            ),
            (
                "http_server.http2_keep_alive_timeout_ms",
                self.http2_keep_alive_timeout_ms,
            ),
        ] {
            if !(100..=3_600_000).contains(&v) {
                return Err((key, format!("{v} is outside 100..=3600000 (ms)")));
            }
        }
        Ok(())
    }
}

/// Serves `app` on `listener` until `shutdown`.
pub async fn serve(
    listener: TcpListener,
    app: Router,
    cfg: HttpServerConfig,
    tls: Option<TlsSource>,
    mut shutdown: Shutdown,
) {
    let handshake_timeout = Duration::from_millis(cfg.tls_handshake_timeout_ms);
    let slots = Arc::new(Semaphore::new(
        cfg.max_connections.clamp(1, MAX_CONNECTIONS_LIMIT),
    ));
    // Every connection task holds a sender; shutdown waits until all are
    // dropped (every connection finished).
    let (conns_alive, mut conns_done) = tokio::sync::mpsc::channel::<()>(1);
    let header_timeout = Duration::from_millis(cfg.header_read_timeout_ms);
    let body_timeout = Duration::from_millis(cfg.body_read_timeout_ms);
    let idle_timeout = Duration::from_millis(cfg.idle_timeout_ms);
    let mut builder = auto::Builder::new(TokioExecutor::new());
    builder
        .http1()
        .timer(TokioTimer::new())
        .header_read_timeout(header_timeout);
    builder
        .http2()
        .timer(TokioTimer::new())
        .keep_alive_interval(Some(Duration::from_millis(
            cfg.http2_keep_alive_interval_ms,
        )))
        .keep_alive_timeout(Duration::from_millis(cfg.http2_keep_alive_timeout_ms));
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
        let activity = Arc::new(Activity::new());
        let svc = {
            let app = app.clone();
            let activity = activity.clone();
            hyper::service::service_fn(move |req: hyper::Request<Incoming>| {
                let app = app.clone();
                let guard = activity.begin();
                async move {
                    let timed_out = Arc::new(AtomicBool::new(false));
                    let mut req = req.map(|b| {
                        axum::body::Body::new(TimedBody::new(b, body_timeout, timed_out.clone()))
                    });
                    req.extensions_mut().insert(ConnectInfo(peer));
                    let resp = app.oneshot(req).await?;
                    let resp = if timed_out.load(Ordering::Relaxed) {
                        metrics::counter!(BODY_TIMEOUTS).increment(1);
                        body_timeout_response(body_timeout)
                    } else {
                        resp
                    };
                    // In flight until the response body is sent (or the
                    // stream is dropped): a live tail is not idle.
                    Ok::<_, std::convert::Infallible>(resp.map(|b| {
                        axum::body::Body::new(GuardedBody {
                            inner: b,
                            _guard: guard,
                        })
                    }))
                }
            })
        };
        let builder = builder.clone();
        let alive = conns_alive.clone();
        let mut conn_shutdown = shutdown.clone();
        metrics::gauge!(OPEN_CONNECTIONS).increment(1.0);
        // The configuration of this moment: a reloaded certificate serves
        // the connections accepted after it.
        let tls = tls.as_ref().map(TlsSource::acceptor);
        tokio::spawn(async move {
            let io = match tls {
                None => plain(stream, header_timeout).await,
                Some(acceptor) => {
                    tls_accept(stream, &acceptor, handshake_timeout, header_timeout).await
                }
            };
            let Some(io) = io else {
                metrics::gauge!(OPEN_CONNECTIONS).decrement(1.0);
                drop(permit);
                return;
            };
            // The idle clock starts when the connection is ready for HTTP,
            // not at accept: a slow TLS handshake or first request does not
            // count against `idle_timeout_ms` (they have their own limits).
            activity.mark_idle_now();
            let conn = builder.serve_connection(TokioIo::new(io), svc);
            let mut conn = std::pin::pin!(conn);
            let mut closing = false;
            let result = loop {
                let idle_for = activity.idle_for();
                let check_in = match idle_for {
                    Some(d) if d >= idle_timeout => Duration::ZERO,
                    Some(d) => idle_timeout - d,
                    None => idle_timeout,
                };
                tokio::select! {
                    r = conn.as_mut() => break r,
                    () = conn_shutdown.requested(), if !closing => {
                        conn.as_mut().graceful_shutdown();
                        closing = true;
                    }
                    () = tokio::time::sleep(check_in), if !closing => {
                        if activity.idle_for().is_some_and(|d| d >= idle_timeout) {
                            metrics::counter!(IDLE_CLOSED).increment(1);
                            conn.as_mut().graceful_shutdown();
                            closing = true;
                        }
                    }
                }
            };
            if let Err(e) = result {
                tracing::debug!(error = %e, "HTTP connection ended with an error");
            }
            metrics::gauge!(OPEN_CONNECTIONS).decrement(1.0);
            drop(permit);
            drop(alive);
        });
    }
    drop(listener);
    drop(conns_alive);
    // Requests in hand finish; a client trickling a body cannot hold the
    // shutdown (and so the queue drain behind it) forever.
    if tokio::time::timeout(SHUTDOWN_GRACE, conns_done.recv())
        .await
        .is_err()
    {
        tracing::warn!(
            grace_secs = SHUTDOWN_GRACE.as_secs(),
            "HTTP connections still open at shutdown were cut off"
        );
    }
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

/// A connection's byte stream: plain TCP, or TLS with its first decrypted
/// bytes read again first.
enum Io {
    Plain(TcpStream),
    Tls(Box<Prefixed>),
}

/// A plain TCP connection once it has sent its first bytes (HTTP/1.1 or
/// HTTP/2 prior knowledge); `None` (counted) when it stayed silent.
async fn plain(stream: TcpStream, header_timeout: Duration) -> Option<Io> {
    // hyper reads the first bytes (HTTP/1 or the HTTP/2 preface) without a
    // deadline: a client that sends nothing must not hold a connection
    // slot for longer than the header timeout.
    if !first_bytes(&stream, header_timeout).await {
        metrics::counter!(SILENT_CONNECTIONS).increment(1);
        return None;
    }
    Some(Io::Plain(stream))
}

/// A TLS connection: the handshake under its deadline, then the first
/// decrypted bytes under the header deadline (HTTP/1.1 or HTTP/2, whichever
/// ALPN chose; hyper tells them apart by the preface). `None` (counted) on
/// a failed handshake or silence.
async fn tls_accept(
    stream: TcpStream,
    acceptor: &TlsAcceptor,
    handshake_timeout: Duration,
    header_timeout: Duration,
) -> Option<Io> {
    let peer = stream.peer_addr().ok();
    let mut tls = match tokio::time::timeout(handshake_timeout, acceptor.accept(stream)).await {
        Ok(Ok(s)) => s,
        Ok(Err(e)) => {
            let reason = crate::serve::tls::handshake_failure_reason(&e);
            metrics::counter!(TLS_HANDSHAKE_FAILURES, "reason" => reason).increment(1);
            tracing::info!(?peer, reason, error = %e, "HTTP TLS handshake failed");
            return None;
        }
        Err(_) => {
            metrics::counter!(TLS_HANDSHAKE_FAILURES, "reason" => "timeout").increment(1);
            tracing::info!(?peer, "HTTP TLS handshake timed out");
            return None;
        }
    };
    let Some(prefix) = first_tls_bytes(&mut tls, header_timeout).await else {
        metrics::counter!(SILENT_CONNECTIONS).increment(1);
        return None;
    };
    Some(Io::Tls(Box::new(Prefixed {
        prefix,
        pos: 0,
        inner: tls,
    })))
}

impl AsyncRead for Io {
    fn poll_read(
        self: Pin<&mut Self>,
        cx: &mut Context<'_>,
        buf: &mut ReadBuf<'_>,
    ) -> Poll<std::io::Result<()>> {
        match self.get_mut() {
            Io::Plain(s) => Pin::new(s).poll_read(cx, buf),
            Io::Tls(s) => Pin::new(s.as_mut()).poll_read(cx, buf),
        }
    }
}

impl AsyncWrite for Io {
    fn poll_write(
        self: Pin<&mut Self>,
        cx: &mut Context<'_>,
        buf: &[u8],
    ) -> Poll<std::io::Result<usize>> {
        match self.get_mut() {
            Io::Plain(s) => Pin::new(s).poll_write(cx, buf),
            Io::Tls(s) => Pin::new(s.as_mut()).poll_write(cx, buf),
        }
    }

    fn poll_write_vectored(
        self: Pin<&mut Self>,
        cx: &mut Context<'_>,
        bufs: &[std::io::IoSlice<'_>],
    ) -> Poll<std::io::Result<usize>> {
        match self.get_mut() {
            Io::Plain(s) => Pin::new(s).poll_write_vectored(cx, bufs),
            Io::Tls(s) => Pin::new(s.as_mut()).poll_write_vectored(cx, bufs),
        }
    }

    fn is_write_vectored(&self) -> bool {
        match self {
            Io::Plain(s) => s.is_write_vectored(),
            Io::Tls(s) => s.is_write_vectored(),
        }
    }

    fn poll_flush(self: Pin<&mut Self>, cx: &mut Context<'_>) -> Poll<std::io::Result<()>> {
        match self.get_mut() {
            Io::Plain(s) => Pin::new(s).poll_flush(cx),
            Io::Tls(s) => Pin::new(s.as_mut()).poll_flush(cx),
        }
    }

    fn poll_shutdown(self: Pin<&mut Self>, cx: &mut Context<'_>) -> Poll<std::io::Result<()>> {
        match self.get_mut() {
            Io::Plain(s) => Pin::new(s).poll_shutdown(cx),
            Io::Tls(s) => Pin::new(s.as_mut()).poll_shutdown(cx),
        }
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

/// Requests in flight on one connection and when the last one ended.
struct Activity {
    in_flight: AtomicUsize,
    /// ms since `origin` when the connection last went idle.
    idle_since_ms: AtomicU64,
    origin: Instant,
}

impl Activity {
    fn new() -> Self {
        Activity {
            in_flight: AtomicUsize::new(0),
            idle_since_ms: AtomicU64::new(0),
            origin: Instant::now(),
        }
    }

    fn begin(self: &Arc<Self>) -> InFlight {
        self.in_flight.fetch_add(1, Ordering::SeqCst);
        InFlight(self.clone())
    }

    /// Starts the idle time over from now.
    fn mark_idle_now(&self) {
        let now = u64::try_from(self.origin.elapsed().as_millis()).unwrap_or(u64::MAX);
        self.idle_since_ms.store(now, Ordering::SeqCst);
    }

    /// How long nothing has been in flight; `None` while something is.
    fn idle_for(&self) -> Option<Duration> {
        if self.in_flight.load(Ordering::SeqCst) > 0 {
            return None;
        }
        let since = Duration::from_millis(self.idle_since_ms.load(Ordering::SeqCst));
        Some(self.origin.elapsed().saturating_sub(since))
    }
}

/// One request in flight; its drop (response sent or abandoned) ends it.
struct InFlight(Arc<Activity>);

impl Drop for InFlight {
    fn drop(&mut self) {
        self.0.mark_idle_now();
        self.0.in_flight.fetch_sub(1, Ordering::SeqCst);
    }
}

/// A response body that keeps its request in flight until dropped.
struct GuardedBody {
    inner: axum::body::Body,
    _guard: InFlight,
}

impl hyper::body::Body for GuardedBody {
    type Data = bytes::Bytes;
    type Error = axum::Error;

    fn poll_frame(
        mut self: Pin<&mut Self>,
        cx: &mut Context<'_>,
    ) -> Poll<Option<Result<Frame<Self::Data>, Self::Error>>> {
        Pin::new(&mut self.inner).poll_frame(cx)
    }

    fn is_end_stream(&self) -> bool {
        self.inner.is_end_stream()
    }

    fn size_hint(&self) -> SizeHint {
        self.inner.size_hint()
    }
}

/// A request body that must be complete within a deadline from its
/// headers; past it, reads fail and `timed_out` is set (the response
/// becomes 408).
struct TimedBody {
    inner: Incoming,
    deadline: Pin<Box<tokio::time::Sleep>>,
    timed_out: Arc<AtomicBool>,
}

impl TimedBody {
    fn new(inner: Incoming, within: Duration, timed_out: Arc<AtomicBool>) -> Self {
        TimedBody {
            inner,
            deadline: Box::pin(tokio::time::sleep(within)),
            timed_out,
        }
    }
}

impl hyper::body::Body for TimedBody {
    type Data = bytes::Bytes;
    type Error = std::io::Error;

    fn poll_frame(
        mut self: Pin<&mut Self>,
        cx: &mut Context<'_>,
    ) -> Poll<Option<Result<Frame<Self::Data>, Self::Error>>> {
        let this = &mut *self;
        if this.timed_out.load(Ordering::Relaxed) {
            return Poll::Ready(Some(Err(body_timeout_error())));
        }
        match Pin::new(&mut this.inner).poll_frame(cx) {
            Poll::Ready(f) => Poll::Ready(f.map(|r| r.map_err(std::io::Error::other))),
            Poll::Pending => {
                if this.deadline.as_mut().poll(cx).is_ready() {
                    this.timed_out.store(true, Ordering::Relaxed);
                    return Poll::Ready(Some(Err(body_timeout_error())));
                }
                Poll::Pending
            }
        }
    }

    fn is_end_stream(&self) -> bool {
        self.inner.is_end_stream()
    }

    fn size_hint(&self) -> SizeHint {
        self.inner.size_hint()
    }
}

fn body_timeout_error() -> std::io::Error {
    std::io::Error::new(
        std::io::ErrorKind::TimedOut,
        "request body not received within http_server.body_read_timeout_ms",
    )
}

/// 408 with a JSON body; the connection is closed after it.
fn body_timeout_response(within: Duration) -> axum::response::Response {
    use axum::response::IntoResponse;
    let mut r = super::error::ApiError::new(
        axum::http::StatusCode::REQUEST_TIMEOUT,
        "request body too slow",
        Some(format!(
            "the body did not arrive within {} ms of the headers (http_server.body_read_timeout_ms)",
            within.as_millis()
        )),
    )
    .into_response();
    r.headers_mut().insert(
        axum::http::header::CONNECTION,
        axum::http::HeaderValue::from_static("close"),
    );
    r
}
