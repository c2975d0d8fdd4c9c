//! The outbox: mails are handed to a bounded queue and sent by a
//! background task, so no request waits for the relay. A full outbox drops
//! the new mail (counted); a temporary failure (connection refused, 4xx,
//! timeout) is retried with exponential backoff and jitter; a permanent one
//! (5xx) is not. Mail bodies hold tokens: they are never logged.
//!
//! Two bounds: `outbox_capacity` mails held at most (queued, being sent or
//! waiting to retry: a permit taken at submission and given back when the
//! mail is sent or given up), and `concurrency` SMTP conversations at once
//! (a send slot taken for one attempt and given back before the backoff
//! sleep, so mails waiting out a retry delay do not block the others).

use std::sync::Arc;
use std::time::Duration;

use lettre::message::{Mailbox, Message, header::ContentType};
use lettre::transport::smtp::authentication::Credentials;
use lettre::transport::smtp::client::{Certificate, Tls, TlsParameters};
use lettre::{AsyncSmtpTransport, AsyncTransport, Tokio1Executor};
use metrics::counter;
use tokio::sync::{OwnedSemaphorePermit, Semaphore, mpsc};

use super::config::{SmtpConfig, SmtpSecurity};

/// Mails sent (`kind` = `confirm` | `reset` | `notice`).
pub const EMAIL_SENT: &str = "killkrill_email_sent_total";
/// Mails given up on (`kind`, `reason` = `permanent` | `transient` |
/// `connection` | `timeout` | `tls` | `other`), after the last attempt.
pub const EMAIL_FAILED: &str = "killkrill_email_failed_total";
/// Attempts that failed and were retried (`kind`).
pub const EMAIL_RETRIES: &str = "killkrill_email_retries_total";
/// Mails never queued (`kind`, `reason` = `outbox_full` | `bad_address` |
/// `shutdown`).
pub const EMAIL_DROPPED: &str = "killkrill_email_dropped_total";

/// Longest retry delay.
const MAX_BACKOFF: Duration = Duration::from_secs(300);

/// One mail to send.
#[derive(Clone)]
pub struct Mail {
    /// The metric label (`confirm`, `reset`, `notice`).
    pub kind: &'static str,
    /// The recipient.
    pub to: String,
    /// Subject line.
    pub subject: String,
    /// Plain-text body.
    pub body: String,
}

impl std::fmt::Debug for Mail {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        // The body carries a token: never printed.
        f.debug_struct("Mail")
            .field("kind", &self.kind)
            .finish_non_exhaustive()
    }
}

struct Queued {
    kind: &'static str,
    message: Message,
    /// The mail's place in the outbox, given back when it is done.
    _held: OwnedSemaphorePermit,
}

/// The sending side of the outbox.
pub struct Outbox {
    tx: mpsc::Sender<Queued>,
    from: Mailbox,
    /// `outbox_capacity` permits: one per mail held.
    held: Arc<Semaphore>,
}

impl std::fmt::Debug for Outbox {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.debug_struct("Outbox").finish_non_exhaustive()
    }
}

/// The SMTP transport of `cfg` (no connection is made here).
///
/// # Errors
/// `(key, problem)` for a bad CA file or TLS setup.
pub fn transport(
    cfg: &SmtpConfig,
) -> Result<AsyncSmtpTransport<Tokio1Executor>, (&'static str, String)> {
    let host = cfg.host.clone().unwrap_or_default();
    let tls = || -> Result<TlsParameters, (&'static str, String)> {
        let mut b = TlsParameters::builder(host.clone());
        if let Some(f) = &cfg.ca_file {
            let pem =
                std::fs::read(f).map_err(|e| ("smtp.ca_file", format!("{}: {e}", f.display())))?;
            let c = Certificate::from_pem(&pem)
                .map_err(|e| ("smtp.ca_file", format!("{}: {e}", f.display())))?;
            b = b.add_root_certificate(c);
        }
        b.build_rustls()
            .map_err(|e| ("smtp.security", format!("TLS setup: {e}")))
    };
    let mode = match cfg.security {
        SmtpSecurity::Starttls => Tls::Required(tls()?),
        SmtpSecurity::Tls => Tls::Wrapper(tls()?),
        SmtpSecurity::None => Tls::None,
    };
    let mut b = AsyncSmtpTransport::<Tokio1Executor>::builder_dangerous(host.as_str())
        .port(cfg.port())
        .tls(mode)
        .timeout(Some(Duration::from_secs(cfg.timeout_secs)));
    if let (Some(u), Some(p)) = (&cfg.username, &cfg.password) {
        b = b.credentials(Credentials::new(u.clone(), p.clone()));
    }
    Ok(b.build())
}

impl Outbox {
    /// Builds the transport and spawns the sender task (on the current
    /// runtime). The task ends when the last [`Outbox`] handle is dropped
    /// and the queue is empty.
    ///
    /// # Errors
    /// `(key, problem)`.
    pub fn start(cfg: &SmtpConfig) -> Result<Outbox, (&'static str, String)> {
        let from: Mailbox = cfg
            .from
            .parse()
            .map_err(|e| ("smtp.from", format!("{e}")))?;
        let transport = Arc::new(transport(cfg)?);
        let (tx, rx) = mpsc::channel(cfg.outbox_capacity);
        tokio::spawn(run(
            rx,
            transport,
            Arc::new(Semaphore::new(cfg.concurrency)),
            cfg.max_attempts,
            Duration::from_millis(cfg.retry_base_ms),
        ));
        Ok(Outbox {
            tx,
            from,
            held: Arc::new(Semaphore::new(cfg.outbox_capacity)),
        })
    }

    /// Queues a mail; `false` (counted) when it cannot be: the outbox
    /// holds `outbox_capacity` mails already (queued, sending or waiting to
    /// retry), or the recipient is not a valid address.
    pub fn submit(&self, m: Mail) -> bool {
        let message = match build(&self.from, &m) {
            Ok(msg) => msg,
            Err(e) => {
                counter!(EMAIL_DROPPED, "kind" => m.kind, "reason" => "bad_address").increment(1);
                tracing::warn!(kind = m.kind, error = %e, "mail not queued: bad address");
                return false;
            }
        };
        let Ok(held) = self.held.clone().try_acquire_owned() else {
            counter!(EMAIL_DROPPED, "kind" => m.kind, "reason" => "outbox_full").increment(1);
            tracing::warn!(kind = m.kind, "mail dropped: the outbox is full");
            return false;
        };
        match self.tx.try_send(Queued {
            kind: m.kind,
            message,
            _held: held,
        }) {
            Ok(()) => true,
            Err(mpsc::error::TrySendError::Full(_)) => {
                counter!(EMAIL_DROPPED, "kind" => m.kind, "reason" => "outbox_full").increment(1);
                tracing::warn!(kind = m.kind, "mail dropped: the outbox is full");
                false
            }
            Err(mpsc::error::TrySendError::Closed(_)) => {
                counter!(EMAIL_DROPPED, "kind" => m.kind, "reason" => "shutdown").increment(1);
                false
            }
        }
    }
}

fn build(from: &Mailbox, m: &Mail) -> Result<Message, String> {
    let to: Mailbox = m.to.parse().map_err(|e| format!("{e}"))?;
    Message::builder()
        .from(from.clone())
        .to(to)
        .subject(m.subject.clone())
        .header(ContentType::TEXT_PLAIN)
        .body(m.body.clone())
        .map_err(|e| format!("{e}"))
}

async fn run(
    mut rx: mpsc::Receiver<Queued>,
    transport: Arc<AsyncSmtpTransport<Tokio1Executor>>,
    slots: Arc<Semaphore>,
    max_attempts: u32,
    base: Duration,
) {
    // At most `outbox_capacity` tasks: each holds its mail's permit.
    while let Some(q) = rx.recv().await {
        let (t, slots) = (transport.clone(), slots.clone());
        tokio::spawn(async move { deliver(&t, &slots, q, max_attempts, base).await });
    }
}

fn reason(e: &lettre::transport::smtp::Error) -> &'static str {
    if e.is_permanent() {
        "permanent"
    } else if e.is_transient() {
        "transient"
    } else if e.is_timeout() {
        "timeout"
    } else if e.is_tls() {
        "tls"
    } else if e.is_client() || e.is_response() {
        "other"
    } else {
        "connection"
    }
}

/// The delay before attempt `n + 1` (n ≥ 1): `base · 2^(n-1)`, at most
/// [`MAX_BACKOFF`], plus up to 25 % jitter.
pub fn backoff(base: Duration, n: u32) -> Duration {
    let d = base
        .saturating_mul(1u32 << (n.saturating_sub(1)).min(16))
        .min(MAX_BACKOFF);
    let jitter_ms = u64::try_from(d.as_millis() / 4).unwrap_or(0);
    d + Duration::from_millis(fastrand::u64(0..=jitter_ms))
}

/// Sends `q`, retrying temporary failures; a send slot is held for each
/// attempt only, never while waiting to retry.
async fn deliver(
    t: &AsyncSmtpTransport<Tokio1Executor>,
    slots: &Semaphore,
    q: Queued,
    max_attempts: u32,
    base: Duration,
) {
    let mut attempt = 1;
    loop {
        let Ok(slot) = slots.acquire().await else {
            return; // never closed
        };
        let sent = t.send(q.message.clone()).await;
        drop(slot);
        match sent {
            Ok(_) => {
                counter!(EMAIL_SENT, "kind" => q.kind).increment(1);
                tracing::info!(kind = q.kind, attempt, "mail sent");
                return;
            }
            Err(e) => {
                let why = reason(&e);
                if why == "permanent" || attempt >= max_attempts {
                    counter!(EMAIL_FAILED, "kind" => q.kind, "reason" => why).increment(1);
                    tracing::warn!(kind = q.kind, attempt, reason = why, error = %e, "mail not sent; giving up");
                    return;
                }
                counter!(EMAIL_RETRIES, "kind" => q.kind).increment(1);
                let wait = backoff(base, attempt);
                tracing::info!(kind = q.kind, attempt, reason = why, error = %e, retry_in_ms = u64::try_from(wait.as_millis()).unwrap_or(u64::MAX), "mail not sent; will retry");
                tokio::time::sleep(wait).await;
                attempt += 1;
            }
        }
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn backoff_doubles_and_is_capped() {
        let b = Duration::from_millis(100);
        let d1 = backoff(b, 1);
        assert!(d1 >= b && d1 <= b + b / 4, "{d1:?}");
        let d3 = backoff(b, 3);
        assert!(d3 >= b * 4 && d3 <= b * 5, "{d3:?}");
        let big = backoff(Duration::from_secs(60), 30);
        assert!(big >= MAX_BACKOFF && big <= MAX_BACKOFF + MAX_BACKOFF / 4);
    }
}
