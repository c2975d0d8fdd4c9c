//! gRPC callers get gRPC statuses, not HTTP ones.
//!
//! A request with `Content-Type: application/grpc` that a layer or the
//! router refuses (authentication 401, permission 403, body limit 413, rate
//! or queue limits 429, unknown path 404, ...) is answered the way a gRPC
//! client understands: HTTP 200, `Content-Type: application/grpc`, no body,
//! and the status in `grpc-status` / `grpc-message` (a "trailers-only"
//! response). The message is the JSON error's `error` and `detail`. Every
//! such refusal is counted in `killkrill_grpc_requests_total{method, code}`
//! like the calls the services answer themselves (the HTTP refusal counter
//! has already counted it too).

use axum::http::{HeaderMap, HeaderValue, StatusCode, Uri, header};
use axum::response::Response;
use metrics::counter;
use tonic::Code;

use super::grpc::GRPC_REQUESTS;

/// The gRPC methods served, for the `method` label (anything else is
/// `other`, so a client cannot grow the label set).
const METHODS: &[&str] = &[
    "PushLogs",
    "PushMetrics",
    "QueryLogs",
    "LogVolume",
    "TailLogs",
    "QueryMetrics",
    "LabelNames",
    "LabelValues",
    "PromQuery",
    "PromQueryRange",
];

/// True for `application/grpc` and `application/grpc+proto` (not gRPC-Web).
pub fn is_grpc(headers: &HeaderMap) -> bool {
    headers
        .get(header::CONTENT_TYPE)
        .and_then(|v| v.to_str().ok())
        .is_some_and(|v| {
            let v = v.trim().to_ascii_lowercase();
            v == "application/grpc" || v.starts_with("application/grpc+")
        })
}

/// The gRPC status of an HTTP error status (after the gRPC spec's table,
/// with 400 as `INVALID_ARGUMENT` and 413/429 as `RESOURCE_EXHAUSTED`, which
/// is what these refusals mean here).
pub fn code_of(status: StatusCode) -> Code {
    match status {
        StatusCode::BAD_REQUEST | StatusCode::UNSUPPORTED_MEDIA_TYPE => Code::InvalidArgument,
        StatusCode::UNAUTHORIZED => Code::Unauthenticated,
        StatusCode::FORBIDDEN => Code::PermissionDenied,
        StatusCode::NOT_FOUND | StatusCode::METHOD_NOT_ALLOWED => Code::Unimplemented,
        StatusCode::CONFLICT => Code::AlreadyExists,
        StatusCode::PAYLOAD_TOO_LARGE | StatusCode::TOO_MANY_REQUESTS => Code::ResourceExhausted,
        StatusCode::REQUEST_TIMEOUT | StatusCode::GATEWAY_TIMEOUT => Code::DeadlineExceeded,
        StatusCode::BAD_GATEWAY | StatusCode::SERVICE_UNAVAILABLE => Code::Unavailable,
        StatusCode::INTERNAL_SERVER_ERROR => Code::Internal,
        _ => Code::Unknown,
    }
}

/// Percent-encodes a `grpc-message` (the gRPC spec: every byte outside
/// printable ASCII, and `%`).
pub fn encode_message(msg: &str) -> String {
    let mut out = String::with_capacity(msg.len());
    for b in msg.bytes() {
        if (0x20..=0x7e).contains(&b) && b != b'%' {
            out.push(b as char);
        } else {
            out.push_str(&format!("%{b:02X}"));
        }
    }
    out
}

/// The `map_response` middleware (outermost, after the JSON rewriter).
pub async fn grpc_errors(uri: Uri, headers: HeaderMap, resp: Response) -> Response {
    let status = resp.status();
    if !(status.is_client_error() || status.is_server_error()) || !is_grpc(&headers) {
        return resp;
    }
    let (parts, body) = resp.into_parts();
    let text = axum::body::to_bytes(body, 64 * 1024)
        .await
        .unwrap_or_default();
    let message = match serde_json::from_slice::<serde_json::Value>(&text) {
        Ok(v) => {
            let error = v["error"].as_str().unwrap_or("refused");
            match v["detail"].as_str() {
                Some(d) if !d.is_empty() => format!("{error}: {d}"),
                _ => error.to_owned(),
            }
        }
        Err(_) => String::from_utf8_lossy(&text).trim().to_owned(),
    };
    let message = if message.is_empty() {
        status.canonical_reason().unwrap_or("refused").to_owned()
    } else {
        message
    };
    let code = code_of(status);
    let method = uri
        .path()
        .rsplit('/')
        .next()
        .and_then(|m| METHODS.iter().find(|k| **k == m))
        .copied()
        .unwrap_or("other");
    counter!(GRPC_REQUESTS, "method" => method, "code" => format!("{code:?}")).increment(1);
    let mut out = Response::new(axum::body::Body::empty());
    *out.status_mut() = StatusCode::OK;
    for (k, v) in &parts.headers {
        if k != header::CONTENT_TYPE && k != header::CONTENT_LENGTH {
            out.headers_mut().append(k.clone(), v.clone());
        }
    }
    let h = out.headers_mut();
    h.insert(
        header::CONTENT_TYPE,
        HeaderValue::from_static("application/grpc"),
    );
    h.insert("grpc-status", HeaderValue::from(code as i32));
    if let Ok(v) = HeaderValue::from_str(&encode_message(&message)) {
        h.insert("grpc-message", v);
    }
    out
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn statuses_map_to_grpc_codes() {
        assert_eq!(code_of(StatusCode::UNAUTHORIZED), Code::Unauthenticated);
        assert_eq!(code_of(StatusCode::FORBIDDEN), Code::PermissionDenied);
        assert_eq!(
            code_of(StatusCode::PAYLOAD_TOO_LARGE),
            Code::ResourceExhausted
        );
        assert_eq!(
            code_of(StatusCode::TOO_MANY_REQUESTS),
            Code::ResourceExhausted
        );
        assert_eq!(code_of(StatusCode::SERVICE_UNAVAILABLE), Code::Unavailable);
        assert_eq!(code_of(StatusCode::NOT_FOUND), Code::Unimplemented);
    }

    #[test]
    fn messages_are_percent_encoded() {
        assert_eq!(encode_message("a b%c\né"), "a b%25c%0A%C3%A9");
    }

    #[test]
    fn only_grpc_content_types_are_grpc() {
        let mut h = HeaderMap::new();
        assert!(!is_grpc(&h));
        h.insert(
            header::CONTENT_TYPE,
            HeaderValue::from_static("application/grpc"),
        );
        assert!(is_grpc(&h));
        h.insert(
            header::CONTENT_TYPE,
            HeaderValue::from_static("application/grpc+proto"),
        );
        assert!(is_grpc(&h));
        h.insert(
            header::CONTENT_TYPE,
            HeaderValue::from_static("application/grpc-web"),
        );
        assert!(!is_grpc(&h));
        h.insert(
            header::CONTENT_TYPE,
            HeaderValue::from_static("application/json"),
        );
        assert!(!is_grpc(&h));
    }
}
