//! Metric ingest: `POST /api/v1/write` (remote write 1.0 and 2.0),
//! `POST /api/v1/import/prometheus` (exposition text) and the
//! pushgateway-style `PUT|POST /metrics/job/{job}{/label/value...}`.
//!
//! Every request is parsed whole and refused whole; what is accepted is
//! enqueued as one batch and answered only after the enqueue succeeded.

use std::sync::Arc;

use axum::extract::rejection::BytesRejection;
use axum::extract::{Path, State};
use axum::http::{HeaderMap, HeaderName, HeaderValue, StatusCode, header};
use axum::response::{IntoResponse, Response};
use bytes::Bytes;
use killkrill_core::event::{MetricMetadata, MetricSample};
use killkrill_core::pipeline::self_metrics as pm;
use killkrill_core::prometheus::{Format, Mode, ParseOptions, Parser};
use killkrill_core::remote_write::{self, RemoteWriteError, RemoteWriteVersion};
use killkrill_core::snappy::SnappyError;
use metrics::counter;

use super::{ApiError, AppState, Caller, body, content_type, decode_body, parse_body};
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

/// `POST /api/v1/import/prometheus`.
pub async fn post_import(
    State(s): State<Arc<AppState>>,
    caller: Caller,
    headers: HeaderMap,
    b: Result<Bytes, BytesRejection>,
) -> Result<Response, ApiError> {
    const EP: &str = "prometheus_import";
    let b = body(EP, b)?;
    let format = exposition_format(&headers).map_err(|e| e.counted(EP))?;
    let (samples, metadata) = parse_body(b.len(), move || {
        parse_exposition(&b, format).map_err(|e| e.counted(EP))
    })
    .await?;
    accept(&s, &caller, EP, "prometheus_import", samples, metadata).await
}

/// `PUT|POST /metrics/job/{job}`.
pub async fn push_job(
    State(s): State<Arc<AppState>>,
    caller: Caller,
    Path(job): Path<String>,
    headers: HeaderMap,
    b: Result<Bytes, BytesRejection>,
) -> Result<Response, ApiError> {
    push(s, caller, job, String::new(), headers, b).await
}

/// `PUT|POST /metrics/job/{job}/{label}/{value}...`.
pub async fn push_job_labels(
    State(s): State<Arc<AppState>>,
    caller: Caller,
    Path((job, labels)): Path<(String, String)>,
    headers: HeaderMap,
    b: Result<Bytes, BytesRejection>,
) -> Result<Response, ApiError> {
    push(s, caller, job, labels, headers, b).await
}

async fn push(
    s: Arc<AppState>,
    caller: Caller,
    job: String,
    rest: String,
    headers: HeaderMap,
    b: Result<Bytes, BytesRejection>,
) -> Result<Response, ApiError> {
    const EP: &str = "pushgateway";
    let grouping = grouping_labels(&job, &rest).map_err(|e| e.counted(EP))?;
    let b = body(EP, b)?;
    let format = exposition_format(&headers).map_err(|e| e.counted(EP))?;
    let (mut samples, metadata) = parse_body(b.len(), move || {
        parse_exposition(&b, format).map_err(|e| e.counted(EP))
    })
    .await?;
    for (i, smp) in samples.iter_mut().enumerate() {
        for (name, value) in &grouping {
            match smp.labels.get(name) {
                Some(v) if v != value => {
                    return Err(ApiError::bad_request(
                        "sample label conflicts with the grouping key",
                        format!(
                            "sample {} ({}): label {name}={v:?} but the URL says {value:?}",
                            i + 1,
                            smp.name
                        ),
                    )
                    .counted(EP));
                }
                _ => smp.labels.set(name, value),
            }
        }
    }
    accept(&s, &caller, EP, "pushgateway", samples, metadata).await
}

async fn accept(
    s: &AppState,
    caller: &Caller,
    endpoint: &'static str,
    source: &'static str,
    samples: Vec<MetricSample>,
    metadata: Vec<MetricMetadata>,
) -> Result<Response, ApiError> {
    let n = samples.len();
    if !samples.is_empty() || !metadata.is_empty() {
        let batch = s
            .ingest
            .metric_batch(&caller.tenant, source, samples, metadata);
        s.ingest
            .submit(batch, s.enqueue_wait)
            .await
            .map_err(|e| ApiError::from_queue(&e).counted(endpoint))?;
    }
    counter!(HTTP_ACCEPTED, "endpoint" => endpoint).increment(1);
    Ok((
        StatusCode::OK,
        axum::Json(serde_json::json!({ "accepted": n })),
    )
        .into_response())
}

/// Text 0.0.4 unless the `Content-Type` says OpenMetrics; the protobuf
/// exposition (the Go client's push default) is refused with 415.
fn exposition_format(headers: &HeaderMap) -> Result<Format, ApiError> {
    match content_type(headers).map(str::to_ascii_lowercase) {
        Some(ct) if ct.contains("openmetrics") => Ok(Format::OpenMetrics),
        Some(ct) if ct.contains("protobuf") => Err(ApiError::unsupported(
            "unsupported exposition format",
            format!("{ct}: send the text format (text/plain; version=0.0.4) or OpenMetrics text"),
        )),
        _ => Ok(Format::Text),
    }
}

/// Parses an exposition strictly; the first bad line refuses the request.
fn parse_exposition(
    body: &[u8],
    format: Format,
) -> Result<(Vec<MetricSample>, Vec<MetricMetadata>), ApiError> {
    let fmt = match format {
        Format::Text => "prometheus",
        Format::OpenMetrics => "openmetrics",
    };
    let bad = |e: killkrill_core::prometheus::ParseError| {
        pm::parsed(fmt, 0, 1);
        let at = match e.column {
            Some(c) => format!("line {}, column {c}: {}", e.line, e.kind),
            None => format!("line {}: {}", e.line, e.kind),
        };
        ApiError::bad_request("invalid exposition text", at)
    };
    let options = ParseOptions {
        format,
        mode: Mode::Strict,
    };
    let mut parser = Parser::from_bytes(body, options).map_err(bad)?;
    let mut samples = Vec::new();
    for item in parser.by_ref() {
        samples.push(item.and_then(|s| s.to_metric_sample()).map_err(bad)?);
    }
    let metadata = parser.families().iter().map(|f| f.to_metadata()).collect();
    pm::parsed(fmt, samples.len(), 0);
    Ok((samples, metadata))
}

/// The grouping key of a push URL: `job` plus `label/value` pairs; a label
/// name ending in `@base64` has a base64url value (the pushgateway's
/// encoding for values containing `/`).
fn grouping_labels(job: &str, rest: &str) -> Result<Vec<(String, String)>, ApiError> {
    let mut out = vec![("job".to_owned(), job.to_owned())];
    let parts: Vec<&str> = rest.split('/').filter(|p| !p.is_empty()).collect();
    if !parts.len().is_multiple_of(2) {
        return Err(ApiError::bad_request(
            "invalid grouping key",
            format!("label {:?} has no value in the URL", parts[parts.len() - 1]),
        ));
    }
    for pair in parts.chunks(2) {
        let (name, value) = (pair[0], pair[1]);
        let (name, value) = match name.strip_suffix("@base64") {
            Some(n) => (
                n,
                decode_label_value(value).ok_or_else(|| {
                    ApiError::bad_request(
                        "invalid grouping key",
                        format!("label {n}: value {value:?} is not base64url"),
                    )
                })?,
            ),
            None => (name, value.to_owned()),
        };
        if !killkrill_core::prometheus::is_valid_label_name(name) {
            return Err(ApiError::bad_request(
                "invalid grouping key",
                format!("{name:?} is not a valid label name"),
            ));
        }
        if name == "job" {
            return Err(ApiError::bad_request(
                "invalid grouping key",
                "job appears twice".to_owned(),
            ));
        }
        out.push((name.to_owned(), value));
    }
    Ok(out)
}

/// A base64url value (padding optional; `=` alone is the empty string), as
/// the pushgateway encodes label values that contain `/`.
fn decode_label_value(s: &str) -> Option<String> {
    use base64::Engine as _;
    let bytes = base64::engine::general_purpose::URL_SAFE_NO_PAD
        .decode(s.trim_end_matches('='))
        .ok()?;
    String::from_utf8(bytes).ok()
}

#[cfg(test)]
#[allow(clippy::unwrap_used)]
mod tests {
    use super::*;

    #[test]
    fn grouping_keys() {
        let g = grouping_labels("batch", "instance/h1/path@base64/L3Zhci90bXA=").unwrap();
        assert_eq!(
            g,
            vec![
                ("job".into(), "batch".into()),
                ("instance".into(), "h1".into()),
                ("path".into(), "/var/tmp".into())
            ]
        );
        assert!(grouping_labels("b", "instance").is_err());
        assert!(grouping_labels("b", "1bad/x").is_err());
        assert!(grouping_labels("b", "job/x").is_err());
    }
}
