//! Syslog over TCP and TLS: RFC 6587 framing (octet counting and LF/NUL
//! delimiters, decided per frame), one task per connection.
//!
//! Per connection: at most `syslog.max_frame_bytes` per message (longer
//! frames are skipped and counted), closed after `syslog.idle_timeout_secs`
//! of silence, and no more than `syslog.max_connections` open per listener,
//! `syslog.max_connections_per_ip` of them from one source address (IPv6:
//! one /64), TLS handshakes included (more are closed on accept and
//! counted). Backpressure: while a batch waits for room in the queue the
//! connection is not read, so the sender's TCP window fills and it slows
//! down; nothing is dropped. At shutdown the
//! listener takes what waits in its accept backlog (at most
//! `max_connections` accepts, within the drain time) and stops accepting;
//! every connection reads what its sender already sent until the stream is
//! quiet for 100 ms (at most 2 s), enqueues what it holds (waiting at most
//! the drain time) and closes. A batch that cannot be enqueued (too large,
//! queue closed, still full at the end of the drain time) is dropped and
//! counted, and so is every message still buffered on its connection, which
//! then closes.

use std::collections::HashMap;
use std::net::{IpAddr, Ipv6Addr, SocketAddr};
use std::sync::{Arc, Mutex};
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
    let per_ip = PerIp::default();
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
        let Some(slot) = admit(&conns, &per_ip, peer, name, &ctx) else {
            drop(tcp);
            continue;
        };
        spawn_connection(
            &mut conns,
            tcp,
            peer,
            slot,
            name,
            &ctx,
            tls.as_ref(),
            &shutdown,
        );
    }
    // Connections that completed their handshake before the shutdown wait
    // in the accept backlog, their senders already writing: take them too
    // (they start in closing mode, reading until quiet), under the same
    // connection limit. A sender that keeps connecting must not hold the
    // shutdown open: at most `max_connections` accepts, within the drain
    // time.
    let until = Instant::now() + ctx.drain;
    for _ in 0..ctx.cfg.max_connections {
        let next = until.min(Instant::now() + Duration::from_millis(5));
        let Ok(Ok((tcp, peer))) = tokio::time::timeout_at(next, listener.accept()).await else {
            break;
        };
        while conns.try_join_next().is_some() {}
        let Some(slot) = admit(&conns, &per_ip, peer, name, &ctx) else {
            drop(tcp);
            continue;
        };
        spawn_connection(
            &mut conns,
            tcp,
            peer,
            slot,
            name,
            &ctx,
            tls.as_ref(),
            &shutdown,
        );
    }
    drop(listener);
    while conns.join_next().await.is_some() {}
    gauge!(CONNECTIONS_OPEN, "listener" => name).set(0.0);
}

/// A connection's place under both limits, or `None` (counted) when
/// `max_connections` are open or `max_connections_per_ip` from its source.
fn admit(
    conns: &JoinSet<()>,
    per_ip: &PerIp,
    peer: SocketAddr,
    name: &'static str,
    ctx: &SyslogCtx,
) -> Option<IpSlot> {
    if conns.len() >= ctx.cfg.max_connections {
        counter!(CONNECTIONS_CLOSED, "listener" => name, "reason" => "limit").increment(1);
        tracing::warn!(listener = name, %peer, limit = ctx.cfg.max_connections, "connection limit reached; closing");
        return None;
    }
    let slot = per_ip.take(peer.ip(), ctx.cfg.max_connections_per_ip);
    if slot.is_none() {
        counter!(CONNECTIONS_CLOSED, "listener" => name, "reason" => "per_ip_limit").increment(1);
        tracing::debug!(listener = name, %peer, limit = ctx.cfg.max_connections_per_ip, "per-address connection limit reached; closing");
    }
    slot
}

/// Open connections (TLS handshakes included) per source: an IPv4 address,
/// or an IPv6 /64 (one host usually has a whole /64). Entries exist only
/// while a connection from them is open, so there are at most
/// `max_connections` of them.
#[derive(Default, Clone)]
struct PerIp(Arc<Mutex<HashMap<IpAddr, usize>>>);

/// One connection's count in [`PerIp`], given back when dropped (when the
/// connection task ends, however it ends).
struct IpSlot {
    map: PerIp,
    key: IpAddr,
}

impl PerIp {
    fn lock(&self) -> std::sync::MutexGuard<'_, HashMap<IpAddr, usize>> {
        self.0
            .lock()
            .unwrap_or_else(std::sync::PoisonError::into_inner)
    }

    fn take(&self, ip: IpAddr, max: usize) -> Option<IpSlot> {
        let key = match ip.to_canonical() {
            IpAddr::V6(a) => IpAddr::V6(Ipv6Addr::from(u128::from(a) & !((1u128 << 64) - 1))),
            v4 => v4,
        };
        let mut m = self.lock();
        let n = m.entry(key).or_insert(0);
        if *n >= max {
            return None;
        }
        *n += 1;
        drop(m);
        Some(IpSlot {
            map: self.clone(),
            key,
        })
    }
}

impl Drop for IpSlot {
    fn drop(&mut self) {
        let mut m = self.map.lock();
        if let Some(n) = m.get_mut(&self.key) {
            *n -= 1;
            if *n == 0 {
                m.remove(&self.key);
            }
        }
    }
}

/// Counts and spawns one connection task (after the TLS handshake, for TLS).
#[allow(clippy::too_many_arguments)]
fn spawn_connection(
    conns: &mut JoinSet<()>,
    tcp: TcpStream,
    peer: SocketAddr,
    slot: IpSlot,
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
            conns.spawn(async move {
                let _slot = slot;
                connection(tcp, name, peer, ctx, shutdown).await;
            });
        }
        Some(source) => {
            // The configuration of this moment (see `tls_reload`).
            let acceptor: TlsAcceptor = source.acceptor();
            conns.spawn(async move {
                let _slot = slot;
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
            if let Err(reason) = flush(&ctx, name, &mut pending, &shutdown).await {
                drop_rest(&ctx, name, &mut framer, &mut buf, reason);
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
                    if let Err(reason) = flush(&ctx, name, &mut pending, &shutdown).await {
                        drop_rest(&ctx, name, &mut framer, &mut buf, reason);
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
        if let Err(reason) = flush(&ctx, name, &mut pending, &shutdown).await {
            drop_rest(&ctx, name, &mut framer, &mut buf, reason);
            return;
        }
    }
    if let Err(reason) = flush(&ctx, name, &mut pending, &shutdown).await {
        drop_rest(&ctx, name, &mut framer, &mut buf, reason);
    }
}

/// After a batch could not be enqueued the connection closes: the frames
/// still in `buf` (complete or not; the socket is read no further) are cut,
/// counted as received and as dropped for the same `reason`, so that
/// received = stored + dropped.
fn drop_rest(
    ctx: &SyslogCtx,
    name: &'static str,
    framer: &mut SyslogFramer,
    buf: &mut BytesMut,
    reason: &'static str,
) {
    let mut rest = Vec::new();
    frames(ctx, name, framer, buf, true, &mut rest, usize::MAX);
    dropped(name, reason, rest.len());
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
/// the queue is full. Fails with the reason when the records could not be
/// enqueued (dropped and counted), after which the connection is closed.
async fn flush(
    ctx: &SyslogCtx,
    name: &'static str,
    pending: &mut Vec<LogRecord>,
    shutdown: &Shutdown,
) -> Result<(), &'static str> {
    if pending.is_empty() {
        return Ok(());
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
            Ok(()) => return Ok(()),
            Err(QueueError::Full { .. }) => {
                if first {
                    counter!(BACKPRESSURE, "listener" => name).increment(1);
                }
                if shutdown.is_requested() {
                    let d = *drain_deadline.get_or_insert_with(|| Instant::now() + ctx.drain);
                    if Instant::now() >= d {
                        dropped(name, "shutdown", n);
                        return Err("shutdown");
                    }
                }
            }
            Err(QueueError::Backend { message, .. }) => {
                tracing::warn!(listener = name, error = %message, "queue backend failed; retrying");
                if shutdown.is_requested() {
                    dropped(name, "queue_error", n);
                    return Err("queue_error");
                }
                tokio::time::sleep(Duration::from_millis(200)).await;
            }
            Err(QueueError::TooLarge { .. }) => {
                dropped(name, "too_large", n);
                return Err("too_large");
            }
            Err(QueueError::Closed) => {
                dropped(name, "shutdown", n);
                return Err("shutdown");
            }
        }
        first = false;
    }
}

#[cfg(test)]
#[allow(clippy::unwrap_used)]
mod tests {
    use super::*;

    #[test]
    fn per_ip_slots_are_counted_by_source_and_given_back() {
        let m = PerIp::default();
        let v4: IpAddr = "10.0.0.1".parse().unwrap();
        let a = m.take(v4, 2).unwrap();
        let _b = m.take(v4, 2).unwrap();
        assert!(m.take(v4, 2).is_none(), "a third from one address");
        // The same address written as IPv4-mapped IPv6 is the same source.
        assert!(m.take("::ffff:10.0.0.1".parse().unwrap(), 2).is_none());
        assert!(m.take("10.0.0.2".parse().unwrap(), 2).is_some());
        drop(a);
        assert!(
            m.take(v4, 2).is_some(),
            "a closed connection frees its place"
        );
        // One IPv6 /64 is one source; another /64 is another.
        let _c = m.take("2001:db8::1".parse().unwrap(), 1).unwrap();
        assert!(m.take("2001:db8::ffff:2".parse().unwrap(), 1).is_none());
        assert!(m.take("2001:db8:0:1::1".parse().unwrap(), 1).is_some());
    }
}
