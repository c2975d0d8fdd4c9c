//! The one place where failures become HTTP statuses and JSON bodies.
//!
//! Every 4xx/5xx answer is `{"error": "...", "detail": ...}`: `error` is a
//! short stable sentence, `detail` says where (line, index, series) or is
//! null. Queue and store errors never reach a client as text: a full queue
//! is 429 with `Retry-After`, a closed or failing one 503. Responses made by
//! layers (body limit, decompression, routing) are rewritten into the same
//! shape by [`json_errors`].

use axum::http::{HeaderValue, StatusCode, Uri, header};
use axum::response::{IntoResponse, Response};
use killkrill_core::pipeline::QueueError;
use metrics::counter;

use crate::serve::self_metrics::HTTP_REJECTED;

/// A refused request.
#[derive(Debug)]
pub struct ApiError {
    /// Status.
    pub status: StatusCode,
    /// What is wrong, briefly.
    pub error: String,
    /// Where, when known.
    pub detail: Option<String>,
    /// Seconds for `Retry-After`.
    pub retry_after: Option<u64>,
    /// The request parameter at fault (read API), sent as `"parameter"`.
    pub param: Option<String>,
    /// The configured limit exceeded (read API), sent as `"limit"`.
    pub limit: Option<String>,
}

impl ApiError {
    /// 400 with a detail.
    pub fn bad_request(error: impl Into<String>, detail: impl Into<String>) -> Self {
        ApiError::new(StatusCode::BAD_REQUEST, error, Some(detail.into()))
    }

    /// 415.
    pub fn unsupported(error: impl Into<String>, detail: impl Into<String>) -> Self {
        ApiError::new(
            StatusCode::UNSUPPORTED_MEDIA_TYPE,
            error,
            Some(detail.into()),
        )
    }

    /// 413.
    pub fn too_large(detail: impl Into<String>) -> Self {
        ApiError::new(
            StatusCode::PAYLOAD_TOO_LARGE,
            "request body too large",
            Some(detail.into()),
        )
    }

    /// Any status.
    pub fn new(status: StatusCode, error: impl Into<String>, detail: Option<String>) -> Self {
        ApiError {
            status,
            error: error.into(),
            detail,
            retry_after: None,
            param: None,
            limit: None,
        }
    }

    /// Counts the refusal for `endpoint` and returns self.
    pub fn counted(self, endpoint: &'static str) -> Self {
        counter!(HTTP_REJECTED, "endpoint" => endpoint, "status" => self.status.as_str().to_owned())
            .increment(1);
        self
    }

    /// A queue refusal.
    pub fn from_queue(e: &QueueError) -> Self {
        match e {
            QueueError::Full { .. } => ApiError {
                retry_after: Some(1),
                ..ApiError::new(
                    StatusCode::TOO_MANY_REQUESTS,
                    "queue full, retry later",
                    None,
                )
            },
            QueueError::TooLarge { size, limit, unit } => ApiError::too_large(format!(
                "the request holds {size} {unit}, more than the queue's limit of {limit}"
            )),
            QueueError::Closed => {
                ApiError::new(StatusCode::SERVICE_UNAVAILABLE, "shutting down", None)
            }
            QueueError::Backend { message, .. } => {
                tracing::warn!(error = %message, "queue backend failed");
                ApiError {
                    retry_after: Some(5),
                    ..ApiError::new(StatusCode::SERVICE_UNAVAILABLE, "queue unavailable", None)
                }
            }
        }
    }
}

impl IntoResponse for ApiError {
    fn into_response(self) -> Response {
        let mut body = serde_json::json!({ "error": self.error, "detail": self.detail });
        if let Some(p) = self.param {
            body["parameter"] = serde_json::Value::String(p);
        }
        if let Some(l) = self.limit {
            body["limit"] = serde_json::Value::String(l);
        }
        let mut r = (self.status, axum::Json(body)).into_response();
        if let Some(s) = self.retry_after {
            r.headers_mut()
                .insert(header::RETRY_AFTER, HeaderValue::from(s));
        }
        r
    }
}

/// The endpoint label of a request path.
pub fn endpoint_of(path: &str) -> &'static str {
    match path {
        "/api/v1/logs" => "logs",
        "/api/v1/logs/volume" => "logs_volume",
        "/api/v1/logs/tail" => "logs_tail",
        "/api/v1/metrics" => "metrics_query",
        "/api/v1/openapi.json" => "openapi",
        "/loki/api/v1/push" => "loki",
        "/api/v1/write" => "remote_write",
        "/api/v1/import/prometheus" => "prometheus_import",
        p if p.starts_with("/metrics/job/") || p.starts_with("/metrics/job@base64/") => {
            "pushgateway"
        }
        "/healthz" | "/readyz" | "/metrics" => "ops",
        p if p.starts_with("/api/v1/auth/") => "auth",
        p if p.starts_with("/api/v1/users") => "users",
        p if p.starts_with("/api/v1/api-keys") => "api_keys",
        "/api/v1/tenants" => "tenants",
        "/api/v1/audit" => "audit",
        "/api/v1/license" => "license",
        p if p.starts_with("/api/v1/") => "prometheus_api",
        _ => "other",
    }
}

/// Rewrites error responses that are not JSON (made by layers or axum's
/// extractors: body limit, decompression, routing) into the
/// `{"error", "detail"}` shape, keeping the status and the text as the
/// detail, and counts them (the handlers count their own).
pub async fn json_errors(uri: Uri, resp: Response) -> Response {
    let status = resp.status();
    if !(status.is_client_error() || status.is_server_error()) {
        return resp;
    }
    let is_json = resp
        .headers()
        .get(header::CONTENT_TYPE)
        .and_then(|v| v.to_str().ok())
        .is_some_and(|v| v.starts_with("application/json"));
    if is_json {
        return resp;
    }
    counter!(HTTP_REJECTED, "endpoint" => endpoint_of(uri.path()), "status" => status.as_str().to_owned())
        .increment(1);
    let (parts, body) = resp.into_parts();
    let text = match axum::body::to_bytes(body, 64 * 1024).await {
        Ok(b) => String::from_utf8_lossy(&b).trim().to_owned(),
        Err(_) => String::new(),
    };
    let error = match status {
        StatusCode::PAYLOAD_TOO_LARGE => "request body too large".to_owned(),
        StatusCode::UNSUPPORTED_MEDIA_TYPE => "unsupported Content-Encoding".to_owned(),
        StatusCode::NOT_FOUND => "no such endpoint".to_owned(),
        StatusCode::METHOD_NOT_ALLOWED => "method not allowed".to_owned(),
        s => s.canonical_reason().unwrap_or("error").to_ascii_lowercase(),
    };
    let detail = (!text.is_empty()).then_some(text);
    let mut out = ApiError::new(status, error, detail).into_response();
    for (k, v) in &parts.headers {
        if k != header::CONTENT_TYPE && k != header::CONTENT_LENGTH {
            out.headers_mut().insert(k.clone(), v.clone());
        }
    }
    out
}
