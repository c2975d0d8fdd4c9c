//! Syslog over UDP: one datagram, one message.

use std::net::SocketAddr;
use std::sync::Arc;
use std::time::Duration;

use killkrill_core::event::Timestamp;
use killkrill_core::framing::datagram_message;
use killkrill_core::pipeline::{QueueError, Shutdown};
use socket2::{Domain, Protocol, Socket, Type};
use tokio::net::UdpSocket;
use tokio::time::Instant;

use super::{SyslogCtx, dropped};
use crate::serve::self_metrics::UDP_KERNEL_DROPS;

const LISTENER: &str = "syslog-udp";

/// Binds a UDP socket with a large receive buffer (what the kernel grants is
/// logged: it caps the request at `net.core.rmem_max`).
///
/// # Errors
/// Socket creation or bind failed.
pub fn bind_udp(addr: SocketAddr, recv_buffer: usize) -> std::io::Result<UdpSocket> {
    let socket = Socket::new(Domain::for_address(addr), Type::DGRAM, Some(Protocol::UDP))?;
    if let Err(e) = socket.set_recv_buffer_size(recv_buffer) {
        tracing::warn!(error = %e, requested = recv_buffer, "could not set the UDP receive buffer");
    }
    let granted = socket.recv_buffer_size().unwrap_or(0);
    tracing::info!(
        requested = recv_buffer,
        granted,
        "syslog UDP receive buffer"
    );
    socket.set_nonblocking(true)?;
    socket.bind(&addr.into())?;
    UdpSocket::from_std(socket.into())
}

/// Receives until `shutdown`, then enqueues what it holds.
pub async fn run_udp(socket: UdpSocket, ctx: Arc<SyslogCtx>, mut shutdown: Shutdown) {
    let mut buf = vec![0u8; 65_536];
    let mut pending = Vec::new();
    let mut since: Option<Instant> = None;
    let linger = Duration::from_millis(ctx.cfg.batch_linger_ms);
    let max = ctx.cfg.batch_max_events;
    let port = socket.local_addr().map(|a| a.port()).unwrap_or(0);
    let mut stats = tokio::time::interval(Duration::from_secs(5));
    stats.set_missed_tick_behavior(tokio::time::MissedTickBehavior::Skip);
    loop {
        let flush_at = since.map(|t| t + linger);
        tokio::select! {
            biased;
            () = shutdown.requested() => break,
            () = sleep_until_opt(flush_at) => {
                flush(&ctx, &mut pending, ctx.drain.min(Duration::from_secs(1))).await;
                since = None;
            }
            _ = stats.tick() => {
                // File I/O: on the blocking pool, and the loop does not wait.
                drop(tokio::task::spawn_blocking(move || publish_kernel_drops(port)));
            }
            r = socket.recv_from(&mut buf) => match r {
                Ok((n, _peer)) => {
                    take(&ctx, &buf[..n], &mut pending);
                    // Take what else is waiting without another trip
                    // through the select.
                    while pending.len() < max {
                        match socket.try_recv_from(&mut buf) {
                            Ok((n, _)) => take(&ctx, &buf[..n], &mut pending),
                            Err(_) => break, // would block (or an ICMP error)
                        }
                    }
                    if !pending.is_empty() {
                        since.get_or_insert_with(Instant::now);
                    }
                    if pending.len() >= max {
                        flush(&ctx, &mut pending, Duration::from_secs(1)).await;
                        since = None;
                    }
                }
                Err(e) => {
                    // ICMP errors and the like: nothing to drop, keep going.
                    tracing::debug!(error = %e, "syslog UDP receive error");
                }
            }
        }
    }
    // Datagrams already in the socket's receive buffer were sent before the
    // shutdown: take them too, within one drain time in total and no more
    // than the buffer can hold (a sender that keeps sending must not hold
    // the shutdown open).
    let deadline = Instant::now() + ctx.drain;
    let left = || deadline.saturating_duration_since(Instant::now());
    let mut errors = 0;
    for _ in 0..drain_datagrams(&ctx) {
        if errors >= 100 || Instant::now() >= deadline {
            break;
        }
        match socket.try_recv_from(&mut buf) {
            Ok((n, _)) => {
                take(&ctx, &buf[..n], &mut pending);
                if pending.len() >= max {
                    flush(&ctx, &mut pending, left()).await;
                }
            }
            Err(e) if e.kind() == std::io::ErrorKind::WouldBlock => break,
            Err(_) => errors += 1, // ICMP errors and the like
        }
    }
    flush(&ctx, &mut pending, left()).await;
    if let Err(e) = tokio::task::spawn_blocking(move || publish_kernel_drops(port)).await {
        tracing::warn!(error = %e, "reading the kernel's UDP drop count failed");
    }
}

/// Most datagrams taken from the receive buffer at shutdown: what a buffer
/// of `udp_recv_buffer_bytes` could hold (the kernel grants at most twice
/// the request and charges each datagram far more than 128 bytes).
fn drain_datagrams(ctx: &SyslogCtx) -> usize {
    (ctx.cfg.udp_recv_buffer_bytes / 64).max(ctx.cfg.batch_max_events)
}

/// One datagram's record (empty datagrams are ignored).
fn take(ctx: &SyslogCtx, datagram: &[u8], pending: &mut Vec<killkrill_core::event::LogRecord>) {
    let msg = datagram_message(datagram);
    if !msg.is_empty() {
        pending.push(ctx.record(LISTENER, msg, Timestamp::now()));
    }
}

/// Datagrams the kernel dropped because the socket's receive buffer was
/// full (Linux: the `drops` column of `/proc/net/udp` and `udp6` for our
/// port), published as a counter. Elsewhere, nothing is published. Reads
/// files: call it on the blocking pool.
fn publish_kernel_drops(port: u16) {
    if port == 0 {
        return;
    }
    let want = format!(":{port:04X}");
    let mut drops = 0u64;
    let mut found = false;
    for file in ["/proc/net/udp", "/proc/net/udp6"] {
        let Ok(text) = std::fs::read_to_string(file) else {
            continue;
        };
        for line in text.lines().skip(1) {
            let mut cols = line.split_whitespace();
            let local = cols.nth(1).unwrap_or("");
            if local.ends_with(&want) {
                found = true;
                drops += line
                    .split_whitespace()
                    .last()
                    .and_then(|d| d.parse::<u64>().ok())
                    .unwrap_or(0);
            }
        }
    }
    if found {
        metrics::counter!(UDP_KERNEL_DROPS, "listener" => LISTENER).absolute(drops);
    }
}

async fn sleep_until_opt(t: Option<Instant>) {
    match t {
        Some(t) => tokio::time::sleep_until(t).await,
        None => std::future::pending().await,
    }
}

/// Enqueues the pending records, waiting at most `wait` for room; a batch
/// that still finds no room is dropped and counted (UDP cannot push back).
async fn flush(
    ctx: &SyslogCtx,
    pending: &mut Vec<killkrill_core::event::LogRecord>,
    wait: Duration,
) {
    if pending.is_empty() {
        return;
    }
    let records = std::mem::take(pending);
    let n = records.len();
    let batch = ctx
        .ingest
        .log_batch(ctx.ingest.default_tenant(), LISTENER, records);
    match ctx.ingest.submit(batch, wait).await {
        Ok(()) => {}
        Err(QueueError::Full { .. }) => dropped(LISTENER, "queue_full", n),
        Err(QueueError::TooLarge { .. }) => dropped(LISTENER, "too_large", n),
        Err(QueueError::Closed) => dropped(LISTENER, "shutdown", n),
        Err(QueueError::Backend { .. }) => dropped(LISTENER, "queue_error", n),
    }
}
