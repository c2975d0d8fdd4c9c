//! `POST /api/v1/logs` (JSON object, array or NDJSON) and
//! `POST /loki/api/v1/push` (Loki JSON or protobuf+snappy).
//!
//! Both accept or refuse a body whole: a record that cannot be read is a 400
//! naming its line (or array index) and column, and nothing of the body is
//! stored, so a corrected retry cannot store half of it twice.

use std::sync::Arc;

use axum::extract::State;
use axum::extract::rejection::BytesRejection;
use axum::http::{HeaderMap, StatusCode};
use axum::response::{IntoResponse, Response};
use bytes::Bytes;
use killkrill_core::event::Timestamp;
use killkrill_core::json_logs::{JsonLogLimits, JsonLogParser, Mode};
use killkrill_core::loki::{self, LokiEncoding, LokiError};
use killkrill_core::pipeline::self_metrics as pm;
use killkrill_core::snappy::SnappyError;
use metrics::counter;

use super::{ApiError, AppState, Caller, body, content_type, decode_body, parse_body};
use crate::serve::self_metrics::HTTP_ACCEPTED;

/// `POST /api/v1/logs`.
pub async fn post_logs(
    State(s): State<Arc<AppState>>,
    caller: Caller,
    b: Result<Bytes, BytesRejection>,
) -> Result<Response, ApiError> {
    const EP: &str = "logs";
    let b = body(EP, b)?;
    let limits = JsonLogLimits {
        max_body_bytes: s.max_body_bytes,
        ..JsonLogLimits::DEFAULT
    };
    let parser = JsonLogParser::new(limits, Mode::Strict);
    let records = parse_body(b.len(), move || {
        let mut records = Vec::new();
        match parser.parse_body(&b, Timestamp::now(), &mut records) {
            Ok(_) => {
                pm::parsed("json", records.len(), 0);
                Ok(records)
            }
            Err(e) => {
                pm::parsed("json", 0, 1);
                let err = if e.is_body_too_large() {
                    ApiError::too_large(e.to_string())
                } else {
                    ApiError::bad_request("invalid JSON logs", e.to_string())
                };
                Err(err.counted(EP))
            }
        }
    })
    .await?;
    let n = records.len();
    if n > 0 {
        let batch = s.ingest.log_batch(&caller.tenant, "http", records);
        s.ingest
            .submit(batch, s.enqueue_wait)
            .await
            .map_err(|e| ApiError::from_queue(&e).counted(EP))?;
    }
    counter!(HTTP_ACCEPTED, "endpoint" => EP).increment(1);
    Ok((
        StatusCode::OK,
        axum::Json(serde_json::json!({ "accepted": n })),
    )
        .into_response())
}

/// `POST /loki/api/v1/push`.
pub async fn post_loki(
    State(s): State<Arc<AppState>>,
    caller: Caller,
    headers: HeaderMap,
    b: Result<Bytes, BytesRejection>,
) -> Result<Response, ApiError> {
    const EP: &str = "loki";
    let encoding = LokiEncoding::from_content_type(content_type(&headers)).map_err(|e| {
        ApiError::unsupported("unsupported Content-Type for a Loki push", e.to_string()).counted(EP)
    })?;
    let b = body(EP, b)?;
    // The body limit bounds the JSON body, or the snappy block and the
    // protobuf inside it; the output budget what they decode into.
    let limits = loki::Limits {
        max_body_bytes: s.max_body_bytes,
        ..loki::Limits::default()
    };
    let decoded_len = match encoding {
        LokiEncoding::Protobuf => killkrill_core::snappy::announced_len(&b).unwrap_or(b.len()),
        LokiEncoding::Json => b.len(),
    };
    let records = decode_body(
        decoded_len,
        s.max_output_bytes,
        move |budget| {
            let limits = loki::Limits {
                max_output_bytes: budget,
                ..limits
            };
            loki::decode(&b, encoding, &limits)
        },
        |e| matches!(e, LokiError::TooLargeDecoded { .. }),
    )
    .await?
    .map_err(|e| {
        pm::parsed("loki", 0, 1);
        let err = match &e {
            LokiError::TooLargeDecoded { .. } => {
                ApiError::too_large(format!("{e} (http_ingest.max_output_bytes)"))
            }
            LokiError::TooLarge { .. } | LokiError::Snappy(SnappyError::TooLarge { .. }) => {
                ApiError::too_large(format!("{e} (http_ingest.max_body_bytes)"))
            }
            _ => ApiError::bad_request("invalid Loki push", e.to_string()),
        };
        err.counted(EP)
    })?;
    pm::parsed("loki", records.len(), 0);
    if !records.is_empty() {
        let batch = s.ingest.log_batch(&caller.tenant, "loki", records);
        s.ingest
            .submit(batch, s.enqueue_wait)
            .await
            .map_err(|e| ApiError::from_queue(&e).counted(EP))?;
    }
    counter!(HTTP_ACCEPTED, "endpoint" => EP).increment(1);
    Ok(StatusCode::NO_CONTENT.into_response())
}
