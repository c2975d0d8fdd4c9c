//! Syslog over TCP and TLS: RFC 6587 framing (octet counting and LF/NUL
//! delimiters, decided per frame), one task per connection.
//!
//! Per connection: at most `syslog.max_frame_bytes` per message (longer
//! frames are skipped and counted), closed after `syslog.idle_timeout_secs`
//! of silence, and no more than `syslog.max_connections` open per listener
//! (more are closed on accept and counted). Backpressure: while a batch
//! waits for room in the queue the connection is not read, so the sender's
//! TCP window fills and it slows down; nothing is dropped. At shutdown the
//! listener stops accepting; every connection reads what its sender already
//! sent until the stream is quiet for 100 ms (at most 2 s), enqueues what it
//! holds (waiting at most the drain time) and closes.

use std::net::SocketAddr;
use std::sync::Arc;
use std::time::Duration;

use bytes::BytesMut;
use killkrill_core::event::{LogRecord, Timestamp};
use killkrill_core::framing::{Frame, FramingConfig, FramingMode, SyslogFramer};
use killkrill_core::pipeline::{QueueError, Shutdown};
use metrics::{counter, gauge};
use tokio::io::{AsyncRead, AsyncReadExt};
use tokio::net::{TcpListener, TcpStream};
use tokio::task::JoinSet;
use tokio::time::Instant;
use tokio_rustls::TlsAcceptor;
use tokio_util::codec::Decoder;

use super::{SyslogCtx, dropped};
use crate::serve::self_metrics::{BACKPRESSURE, CONNECTIONS, CONNECTIONS_CLOSED, CONNECTIONS_OPEN};
use crate::serve::tls_reload::TlsSource;

/// At shutdown, a connection is read until it is quiet this long...
const CLOSING_QUIET: Duration = Duration::from_millis(100);
/// ...or at most this long.
const CLOSING_MAX: Duration = Duration::from_secs(2);

/// How long a TLS handshake may take.
const HANDSHAKE_TIMEOUT: Duration = Duration::from_secs(10);

/// Accepts connections until `shutdown`, then waits for every connection to
/// finish. `tls` makes it the TLS listener.
pub async fn run_stream_listener(
    listener: TcpListener,
    ctx: Arc<SyslogCtx>,
    tls: Option<TlsSource>,
    mut shutdown: Shutdown,
) {
    let name: &'static str = if tls.is_some() {
        "syslog-tls"
    } else {
        "syslog-tcp"
    };
    let mut conns: JoinSet<()> = JoinSet::new();
    loop {
        while conns.try_join_next().is_some() {}
        gauge!(CONNECTIONS_OPEN, "listener" => name).set(conns.len() as f64);
        let accepted = tokio::select! {
            biased;
            () = shutdown.requested() => break,
            r = listener.accept() => r,
            Some(_) = conns.join_next(), if !conns.is_empty() => continue,
        };
        let (tcp, peer) = match accepted {
            Ok(a) => a,
            Err(e) => {
                // EMFILE and the like: back off instead of spinning.
                tracing::warn!(listener = name, error = %e, "accept failed");
                tokio::time::sleep(Duration::from_millis(50)).await;
                continue;
            }
        };
        if conns.len() >= ctx.cfg.max_connections {
            counter!(CONNECTIONS_CLOSED, "listener" => name, "reason" => "limit").increment(1);
            tracing::warn!(listener = name, %peer, limit = ctx.cfg.max_connections, "connection limit reached; closing");
            drop(tcp);
            continue;
        }
        spawn_connection(&mut conns, tcp, peer, name, &ctx, tls.as_ref(), &shutdown);
    }
    // Connections that completed their handshake before the shutdown wait
    // in the accept backlog, their senders already writing: take them too
    // (they start in closing mode, reading until quiet).
    while let Ok(Ok((tcp, peer))) =
        tokio::time::timeout(Duration::from_millis(5), listener.accept()).await
    {
        spawn_connection(&mut conns, tcp, peer, name, &ctx, tls.as_ref(), &shutdown);
    }
    drop(listener);
    while conns.join_next().await.is_some() {}
    gauge!(CONNECTIONS_OPEN, "listener" => name).set(0.0);
}

/// Counts and spawns one connection task (after the TLS handshake, for TLS).
fn spawn_connection(
    conns: &mut JoinSet<()>,
    tcp: TcpStream,
    peer: SocketAddr,
    name: &'static str,
    ctx: &Arc<SyslogCtx>,
    tls: Option<&TlsSource>,
    shutdown: &Shutdown,
) {
    let _ = tcp.set_nodelay(true);
    counter!(CONNECTIONS, "listener" => name).increment(1);
    let ctx = ctx.clone();
    let shutdown = shutdown.clone();
    match tls {
        None => {
            conns.spawn(connection(tcp, name, peer, ctx, shutdown));
        }
        Some(source) => {
            // The configuration of this moment (see `tls_reload`).
            let acceptor: TlsAcceptor = source.acceptor();
            conns.spawn(async move {
                match tokio::time::timeout(HANDSHAKE_TIMEOUT, acceptor.accept(tcp)).await {
                    Ok(Ok(stream)) => connection(stream, name, peer, ctx, shutdown).await,
                    Ok(Err(e)) => {
                        counter!(CONNECTIONS_CLOSED, "listener" => name, "reason" => "tls_handshake").increment(1);
                        tracing::info!(listener = name, %peer, error = %e, "TLS handshake failed");
                    }
                    Err(_) => {
                        counter!(CONNECTIONS_CLOSED, "listener" => name, "reason" => "tls_handshake").increment(1);
                        tracing::info!(listener = name, %peer, "TLS handshake timed out");
                    }
                }
            });
        }
    }
}

/// Reads one connection until EOF, idle timeout, error or shutdown.
async fn connection<S: AsyncRead + Unpin>(
    mut stream: S,
    name: &'static str,
    peer: SocketAddr,
    ctx: Arc<SyslogCtx>,
    mut shutdown: Shutdown,
) {
    let mut framer = SyslogFramer::new(FramingConfig {
        max_frame_len: ctx.cfg.max_frame_bytes,
        mode: FramingMode::Auto,
    });
    let idle = Duration::from_secs(ctx.cfg.idle_timeout_secs);
    let linger = Duration::from_millis(ctx.cfg.batch_linger_ms);
    let mut buf = BytesMut::with_capacity(64 * 1024);
    let mut pending: Vec<LogRecord> = Vec::new();
    let mut first_pending: Option<Instant> = None;
    let mut last_read = Instant::now();
    let max = ctx.cfg.batch_max_events;
    let mut closing: Option<Instant> = None;
    'conn: loop {
        // Cut what is buffered into batches; a full batch is enqueued (and
        // the socket not read) before the next is cut.
        loop {
            let before = pending.len();
            frames(&ctx, name, &mut framer, &mut buf, false, &mut pending, max);
            if before == 0 && !pending.is_empty() {
                first_pending = Some(Instant::now());
            }
            if pending.len() < max {
                break;
            }
            if !flush(&ctx, name, &mut pending, &shutdown).await {
                return;
            }
            first_pending = None;
        }
        let mut deadline = last_read + idle;
        if let Some(t) = first_pending {
            deadline = deadline.min(t + linger);
        }
        if let Some(until) = closing {
            deadline = until.min(Instant::now() + CLOSING_QUIET);
        }
        if buf.capacity() - buf.len() < 8 * 1024 {
            buf.reserve(64 * 1024);
        }
        let read = if closing.is_some() {
            tokio::time::timeout_at(deadline, stream.read_buf(&mut buf)).await
        } else {
            tokio::select! {
                biased;
                () = shutdown.requested() => {
                    // Read what the sender already sent (it is in our socket
                    // buffer, acknowledged at the TCP level) until the stream
                    // goes quiet, then close.
                    closing = Some(Instant::now() + CLOSING_MAX);
                    continue 'conn;
                }
                r = tokio::time::timeout_at(deadline, stream.read_buf(&mut buf)) => r,
            }
        };
        match read {
            Err(_elapsed) if closing.is_some() => break,
            Err(_elapsed) => {
                let now = Instant::now();
                if first_pending.is_some_and(|t| now >= t + linger) {
                    if !flush(&ctx, name, &mut pending, &shutdown).await {
                        return;
                    }
                    first_pending = None;
                }
                if now >= last_read + idle {
                    counter!(CONNECTIONS_CLOSED, "listener" => name, "reason" => "idle")
                        .increment(1);
                    tracing::debug!(listener = name, %peer, "idle connection closed");
                    break;
                }
            }
            Ok(Ok(n)) => {
                last_read = Instant::now();
                if n == 0 {
                    break 'conn;
                }
            }
            Ok(Err(e)) => {
                counter!(CONNECTIONS_CLOSED, "listener" => name, "reason" => "io").increment(1);
                tracing::debug!(listener = name, %peer, error = %e, "connection read failed");
                break;
            }
        }
    }
    // End of stream (or error, idle, shutdown): what is buffered is cut with
    // end-of-stream rules (a last frame without its delimiter is kept).
    loop {
        frames(&ctx, name, &mut framer, &mut buf, true, &mut pending, max);
        if pending.len() < max {
            break;
        }
        if !flush(&ctx, name, &mut pending, &shutdown).await {
            return;
        }
    }
    flush(&ctx, name, &mut pending, &shutdown).await;
}

/// Cuts complete frames out of `buf` (all of it at the end of the stream)
/// until `out` holds `max` records.
fn frames(
    ctx: &SyslogCtx,
    name: &'static str,
    framer: &mut SyslogFramer,
    buf: &mut BytesMut,
    eof: bool,
    out: &mut Vec<LogRecord>,
    max: usize,
) {
    let received = Timestamp::now();
    while out.len() < max {
        let next = if eof {
            framer.decode_eof(buf)
        } else {
            framer.decode(buf)
        };
        match next {
            Ok(Some(Frame::Message(m))) => out.push(ctx.record(name, &m, received)),
            Ok(Some(Frame::Bad(bad))) => {
                if let Some(r) = ctx.bad_frame(name, &bad, received) {
                    out.push(r);
                }
            }
            Ok(None) => return,
            Err(e) => {
                // The framer only fails on I/O, which it does not do here.
                tracing::warn!(listener = name, error = %e, "framer error");
                return;
            }
        }
    }
}

/// Enqueues the pending records, holding the connection (not reading) while
/// the queue is full. Returns false when the records could not be enqueued
/// (dropped and counted), after which the connection is closed.
async fn flush(
    ctx: &SyslogCtx,
    name: &'static str,
    pending: &mut Vec<LogRecord>,
    shutdown: &Shutdown,
) -> bool {
    if pending.is_empty() {
        return true;
    }
    let records = std::mem::take(pending);
    let n = records.len();
    let batch = ctx
        .ingest
        .log_batch(ctx.ingest.default_tenant(), name, records);
    let wait = Duration::from_millis(500);
    let mut first = true;
    let mut drain_deadline: Option<Instant> = None;
    loop {
        let r = if first {
            ctx.ingest.submit(batch.clone(), wait).await
        } else {
            ctx.ingest.resubmit(batch.clone(), wait).await
        };
        match r {
            Ok(()) => return true,
            Err(QueueError::Full { .. }) => {
                if first {
                    counter!(BACKPRESSURE, "listener" => name).increment(1);
                }
                if shutdown.is_requested() {
                    let d = *drain_deadline.get_or_insert_with(|| Instant::now() + ctx.drain);
                    if Instant::now() >= d {
                        dropped(name, "shutdown", n);
                        return false;
                    }
                }
            }
            Err(QueueError::Backend { message, .. }) => {
                tracing::warn!(listener = name, error = %message, "queue backend failed; retrying");
                if shutdown.is_requested() {
                    dropped(name, "queue_error", n);
                    return false;
                }
                tokio::time::sleep(Duration::from_millis(200)).await;
            }
            Err(QueueError::TooLarge { .. }) => {
                dropped(name, "too_large", n);
                return false;
            }
            Err(QueueError::Closed) => {
                dropped(name, "shutdown", n);
                return false;
            }
        }
        first = false;
    }
}
