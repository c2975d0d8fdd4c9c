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
    loop {
        let flush_at = since.map(|t| t + linger);
        tokio::select! {
            biased;
            () = shutdown.requested() => break,
            () = sleep_until_opt(flush_at) => {
                flush(&ctx, &mut pending, ctx.drain.min(Duration::from_secs(1))).await;
                since = None;
            }
            r = socket.recv_from(&mut buf) => match r {
                Ok((n, _peer)) => {
                    let msg = datagram_message(&buf[..n]);
                    if msg.is_empty() {
                        continue;
                    }
                    pending.push(ctx.record(LISTENER, msg, Timestamp::now()));
                    since.get_or_insert_with(Instant::now);
                    if pending.len() >= ctx.cfg.batch_max_events {
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
    // shutdown: take them too.
    let mut errors = 0;
    while errors < 100 {
        match socket.try_recv_from(&mut buf) {
            Ok((n, _)) => {
                let msg = datagram_message(&buf[..n]);
                if !msg.is_empty() {
                    pending.push(ctx.record(LISTENER, msg, Timestamp::now()));
                }
                if pending.len() >= ctx.cfg.batch_max_events {
                    flush(&ctx, &mut pending, ctx.drain).await;
                }
            }
            Err(e) if e.kind() == std::io::ErrorKind::WouldBlock => break,
            Err(_) => errors += 1, // ICMP errors and the like
        }
    }
    flush(&ctx, &mut pending, ctx.drain).await;
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
    let batch = ctx.ingest.log_batch(LISTENER, records);
    match ctx.ingest.submit(batch, wait).await {
        Ok(()) => {}
        Err(QueueError::Full { .. }) => dropped(LISTENER, "queue_full", n),
        Err(QueueError::TooLarge { .. }) => dropped(LISTENER, "too_large", n),
        Err(QueueError::Closed) => dropped(LISTENER, "shutdown", n),
        Err(QueueError::Backend { .. }) => dropped(LISTENER, "queue_error", n),
    }
}
