//! The service's own metrics: the Prometheus recorder behind `/metrics`,
//! and the names of the counters the listeners and endpoints add to the
//! pipeline's (`killkrill_core::pipeline::self_metrics`).
//!
//! The `metrics` facade has one global recorder per process, so it is
//! installed once; a second `serve` in the same process (tests) shares it.

use std::sync::OnceLock;

use metrics_exporter_prometheus::{PrometheusBuilder, PrometheusHandle};

/// HTTP requests refused (`endpoint`, `status`).
pub const HTTP_REJECTED: &str = "killkrill_http_rejected_requests_total";
/// HTTP requests accepted (`endpoint`).
pub const HTTP_ACCEPTED: &str = "killkrill_http_accepted_requests_total";
/// Syslog messages received (`listener`).
pub const SYSLOG_MESSAGES: &str = "killkrill_syslog_messages_total";
/// Syslog messages kept raw because they did not parse (`listener`).
pub const SYSLOG_PARSE_ERRORS: &str = "killkrill_syslog_parse_errors_total";
/// Syslog frames the framer could not deliver whole (`listener`, `kind`).
pub const SYSLOG_BAD_FRAMES: &str = "killkrill_syslog_bad_frames_total";
/// Syslog messages dropped (`listener`, `reason` = `queue_full` | `shutdown` | `too_large`).
pub const SYSLOG_DROPPED: &str = "killkrill_syslog_dropped_messages_total";
/// Datagrams the kernel dropped before we read them: the UDP socket's
/// receive buffer was full (`listener`; Linux only).
pub const UDP_KERNEL_DROPS: &str = "killkrill_syslog_udp_kernel_drops_total";
/// Connections accepted (`listener`).
pub const CONNECTIONS: &str = "killkrill_syslog_connections_total";
/// Connections refused or closed by the server (`listener`, `reason` =
/// `limit` | `idle` | `tls_handshake` | `io`).
pub const CONNECTIONS_CLOSED: &str = "killkrill_syslog_connections_closed_total";
/// Connections open now (`listener`).
pub const CONNECTIONS_OPEN: &str = "killkrill_syslog_connections_open";
/// Times a stream listener stopped reading because the queue was full (`listener`).
pub const BACKPRESSURE: &str = "killkrill_syslog_backpressure_total";

/// Every name above plus the sinks', for the docs check.
pub const ALL: &[&str] = &[
    HTTP_REJECTED,
    HTTP_ACCEPTED,
    SYSLOG_MESSAGES,
    SYSLOG_PARSE_ERRORS,
    SYSLOG_BAD_FRAMES,
    SYSLOG_DROPPED,
    UDP_KERNEL_DROPS,
    CONNECTIONS,
    CONNECTIONS_CLOSED,
    CONNECTIONS_OPEN,
    BACKPRESSURE,
    super::sinks::METRIC_SAMPLES_UNSTORED,
    super::sinks::METRIC_METADATA_UNSTORED,
    super::maintenance::COMPACTION_MERGES,
    super::maintenance::RETENTION_BLOCKS,
    super::maintenance::MAINTENANCE_ERRORS,
    super::http::grpc::GRPC_REQUESTS,
    super::http::tail::TAILS_OPEN,
    super::http::tail::TAILS_ENDED,
    super::http::tail::TAILS_REFUSED,
    super::http::tail::TAIL_RECORDS,
    super::http::tail::TAIL_GAPS,
    super::http::tail::TAIL_POLLS,
    super::http::tail::TAILS_OPENED_GRPC,
    super::http::tail::TAILS_ENDED_GRPC,
    super::scrape::SCRAPES,
    super::scrape::SCRAPE_DROPPED,
    killkrill_store::ROLLUP_HEAD_COMPACTIONS,
    killkrill_store::ROLLUP_HEAD_ROWS_MERGED,
    killkrill_store::ROLLUP_HEAD_COMPACTION_ERRORS,
    super::tls_reload::TLS_RELOADS,
    super::tls_reload::SIGHUPS,
    crate::oidc::PENDING_REFUSED,
    crate::auth::limiter::LIMITER_OVERFLOW,
];

static HANDLE: OnceLock<Option<PrometheusHandle>> = OnceLock::new();

/// The process's Prometheus recorder, installed on first use. `None` when
/// another recorder was installed first (an embedding program's own).
pub fn handle() -> Option<PrometheusHandle> {
    HANDLE
        .get_or_init(|| match PrometheusBuilder::new().install_recorder() {
            Ok(h) => Some(h),
            Err(e) => {
                tracing::warn!(error = %e, "metrics recorder not installed; /metrics will be empty");
                None
            }
        })
        .clone()
}

#[cfg(test)]
mod tests {
    #[test]
    fn self_metrics_are_documented() {
        let doc = include_str!(concat!(
            env!("CARGO_MANIFEST_DIR"),
            "/../docs/src/self-metrics.md"
        ));
        for name in super::ALL {
            assert!(
                doc.contains(&format!("`{name}`")),
                "{name} is not in docs/src/self-metrics.md"
            );
        }
    }
}
