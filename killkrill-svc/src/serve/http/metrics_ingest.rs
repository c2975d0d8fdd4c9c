//! Remote write ingest: `POST /api/v1/write` (1.0 and 2.0). The exposition
//! text routes (import, pushgateway) are in [`super::exposition`].
//!
//! Every request is parsed whole and refused whole; what is accepted is
//! enqueued as one batch and answered only after the enqueue succeeded.

use std::sync::Arc;

use axum::extract::State;
use axum::extract::rejection::BytesRejection;
use axum::http::{HeaderMap, HeaderName, HeaderValue, StatusCode, header};
use axum::response::{IntoResponse, Response};
use bytes::Bytes;
use killkrill_core::pipeline::self_metrics as pm;
use killkrill_core::remote_write::{self, RemoteWriteError, RemoteWriteVersion};
use killkrill_core::snappy::SnappyError;
use metrics::counter;

use super::{ApiError, AppState, Caller, body, content_type, decode_body};
use crate::serve::self_metrics::HTTP_ACCEPTED;

/// `POST /api/v1/write`.
pub async fn post_remote_write(
    State(s): State<Arc<AppState>>,
    caller: Caller,
    headers: HeaderMap,
    b: Result<Bytes, BytesRejection>,
) -> Result<Response, ApiError> {
    const EP: &str = "remote_write";
    let version = RemoteWriteVersion::from_content_type(content_type(&headers)).map_err(|e| {
        ApiError::unsupported("unsupported Content-Type for remote write", e.to_string())
            .counted(EP)
    })?;
    if let Some(enc) = headers.get(header::CONTENT_ENCODING) {
        let ok = enc
            .to_str()
            .is_ok_and(|v| v.trim().eq_ignore_ascii_case("snappy"));
        if !ok {
            return Err(ApiError::unsupported(
                "unsupported Content-Encoding for remote write",
                format!("got {enc:?}; remote write bodies are snappy"),
            )
            .counted(EP));
        }
    }
    let b = body(EP, b)?;
    // The body limit bounds the snappy block as sent and, here, the protobuf
    // inside it; the output budget what the two decode into.
    let limits = remote_write::Limits {
        max_decoded_bytes: s.max_body_bytes,
        ..remote_write::Limits::default()
    };
    let decoded_len = killkrill_core::snappy::announced_len(&b).unwrap_or(b.len());
    let decoded = decode_body(
        decoded_len,
        s.max_output_bytes,
        move |budget| {
            let limits = remote_write::Limits {
                max_output_bytes: budget,
                ..limits
            };
            remote_write::decode(&b, version, &limits)
        },
        |e| matches!(e, RemoteWriteError::TooLargeDecoded { .. }),
    )
    .await?
    .map_err(|e| {
        pm::parsed("remote_write", 0, 1);
        let err = match &e {
            RemoteWriteError::TooLargeDecoded { .. } => {
                ApiError::too_large(format!("{e} (http_ingest.max_output_bytes)"))
            }
            RemoteWriteError::Snappy(SnappyError::TooLarge { .. }) => {
                ApiError::too_large(format!("{e} (http_ingest.max_body_bytes)"))
            }
            RemoteWriteError::TooManySamples { .. } | RemoteWriteError::TooManySeries { .. } => {
                ApiError::too_large(e.to_string())
            }
            _ => ApiError::bad_request("invalid remote write request", e.to_string()),
        };
        err.counted(EP)
    })?;
    let report = decoded.report;
    pm::parsed("remote_write", decoded.samples.len(), 0);
    // Exemplars have no place in the batch model yet: counted, not kept, and
    // not reported as written.
    pm::dropped(
        "remote_write",
        "exemplars_not_supported",
        decoded.exemplars.len(),
    );
    if !decoded.samples.is_empty() || !decoded.metadata.is_empty() {
        let batch = s.ingest.metric_batch(
            &caller.tenant,
            "remote_write",
            decoded.samples,
            decoded.metadata,
        );
        s.ingest
            .submit(batch, s.enqueue_wait)
            .await
            .map_err(|e| ApiError::from_queue(&e).counted(EP))?;
    }
    counter!(HTTP_ACCEPTED, "endpoint" => EP).increment(1);
    let mut resp = StatusCode::NO_CONTENT.into_response();
    if version == RemoteWriteVersion::V2 {
        let h = resp.headers_mut();
        for (name, v) in [
            ("x-prometheus-remote-write-samples-written", report.samples),
            (
                "x-prometheus-remote-write-histograms-written",
                report.histograms,
            ),
            ("x-prometheus-remote-write-exemplars-written", 0),
        ] {
            h.insert(HeaderName::from_static(name), HeaderValue::from(v));
        }
    }
    Ok(resp)
}
