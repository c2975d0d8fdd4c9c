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
    mut shutdown: Shutdown,
) {
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
        let now = u64::try_from(self.0.origin.elapsed().as_millis()).unwrap_or(u64::MAX);
        self.0.idle_since_ms.store(now, Ordering::SeqCst);
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
