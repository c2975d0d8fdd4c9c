//! Syslog listeners: UDP, TCP and TLS.
//!
//! Framing is core's ([`SyslogFramer`](killkrill_core::framing::SyslogFramer)
//! for streams, one datagram per message for UDP) and parsing is core's
//! lenient parser: a message that does not parse is stored whole as its
//! message with `parse_error` set, never dropped. Each listener collects
//! records into a batch and enqueues it once it holds
//! `syslog.batch_max_events` messages or `syslog.batch_linger_ms` after its
//! first one.
//!
//! What happens when the queue is full differs by transport, because only a
//! stream can push back: a TCP or TLS connection stops reading its socket
//! until the batch is enqueued (the sender's TCP window closes; nothing is
//! dropped), while UDP, after a short wait, drops the batch and counts it in
//! `killkrill_syslog_dropped_messages_total{reason="queue_full"}`.

mod stream;
mod udp;

use std::sync::Arc;
use std::time::Duration;

use killkrill_core::event::{LogRecord, Timestamp};
use killkrill_core::framing::BadFrame;
use killkrill_core::pipeline::self_metrics as pm;
use killkrill_core::syslog::{Mode, ParseOptions, SyslogParser};
use metrics::counter;

pub use stream::run_stream_listener;
pub use udp::{bind_udp, run_udp};

use super::ingest::Ingest;
use super::self_metrics::{
    SYSLOG_BAD_FRAMES, SYSLOG_DROPPED, SYSLOG_MESSAGES, SYSLOG_PARSE_ERRORS,
};
use crate::config::{SyslogConfig, TlsConfig};

/// The syslog TLS listener's server configuration (`[tls]`, no ALPN; the
/// loading is shared with the HTTP listener, see [`super::tls`]).
///
/// # Errors
/// [`super::tls::TlsError`] naming the key and file.
pub fn server_config(cfg: &TlsConfig) -> Result<Arc<rustls::ServerConfig>, super::tls::TlsError> {
    super::tls::server_config(cfg, "tls", &[])
}

/// What every syslog listener shares.
pub struct SyslogCtx {
    /// Where batches go.
    pub ingest: Arc<Ingest>,
    /// Lenient parser.
    pub parser: SyslogParser,
    /// Limits and batching.
    pub cfg: SyslogConfig,
    /// How long shutdown may wait for room in the queue.
    pub drain: Duration,
}

impl SyslogCtx {
    /// A context with the lenient parser.
    pub fn new(ingest: Arc<Ingest>, cfg: SyslogConfig, drain: Duration) -> Self {
        SyslogCtx {
            ingest,
            parser: SyslogParser::new(ParseOptions::default().with_mode(Mode::Lenient)),
            cfg,
            drain,
        }
    }

    /// One message's record, raw with `parse_error` when it did not parse.
    fn record(&self, listener: &'static str, frame: &[u8], received: Timestamp) -> LogRecord {
        let msg = self.parser.parse_lenient(frame);
        counter!(SYSLOG_MESSAGES, "listener" => listener).increment(1);
        if msg.parse_error.is_some() {
            counter!(SYSLOG_PARSE_ERRORS, "listener" => listener).increment(1);
            pm::parsed("syslog", 0, 1);
        }
        msg.to_record(received)
    }

    /// A frame the framer could not deliver whole: what arrived of it is
    /// kept raw with the framing error; a skipped frame is counted.
    fn bad_frame(
        &self,
        listener: &'static str,
        bad: &BadFrame,
        received: Timestamp,
    ) -> Option<LogRecord> {
        let kind = match bad.kind {
            killkrill_core::framing::BadFrameKind::TooLong { .. } => "too_long",
            killkrill_core::framing::BadFrameKind::BadLength { .. } => "bad_length",
            killkrill_core::framing::BadFrameKind::Truncated { .. } => "truncated",
        };
        counter!(SYSLOG_BAD_FRAMES, "listener" => listener, "kind" => kind).increment(1);
        tracing::debug!(listener, error = %bad, "bad syslog frame");
        let kept = bad.kept.as_ref()?;
        let mut r = self.parser.parse_lenient(kept).to_record(received);
        r.parse_error = Some(bad.kind.to_string());
        counter!(SYSLOG_MESSAGES, "listener" => listener).increment(1);
        counter!(SYSLOG_PARSE_ERRORS, "listener" => listener).increment(1);
        Some(r)
    }
}

/// Counts messages dropped, with the reason.
fn dropped(listener: &'static str, reason: &'static str, n: usize) {
    if n > 0 {
        counter!(SYSLOG_DROPPED, "listener" => listener, "reason" => reason).increment(n as u64);
        pm::dropped(listener, reason, n);
        tracing::warn!(listener, reason, messages = n, "syslog messages dropped");
    }
}
