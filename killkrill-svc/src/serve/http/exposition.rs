//! Exposition text ingest: `POST /api/v1/import/prometheus` and the
//! pushgateway-style `PUT|POST /metrics/job/{job}{/label/value...}` (and
//! `/metrics/job@base64/...`).
//!
//! A body is parsed whole and refused whole. Exposition text is small per
//! sample (`a 1\n` is four bytes) and a push copies its grouping key into
//! every sample, so the parse is bounded by what it *builds*: each sample,
//! grouping labels included, is charged to the request's
//! `http_ingest.max_output_bytes` budget before it is kept (413 once over),
//! and more samples than `queue.max_events` (which the queue would refuse
//! anyway) stop the parse with 413 too. Like remote write and Loki, the
//! parse runs inline only while small, otherwise on the blocking pool.

use std::sync::Arc;

use axum::extract::State;
use axum::extract::rejection::BytesRejection;
use axum::http::{HeaderMap, StatusCode, Uri};
use axum::response::{IntoResponse, Response};
use bytes::Bytes;
use killkrill_core::decode_budget::{DecodeBudget, label_bytes, sample_bytes};
use killkrill_core::event::{MetricMetadata, MetricSample};
use killkrill_core::pipeline::self_metrics as pm;
use killkrill_core::prometheus::{Format, Mode, ParseError, ParseOptions, Parser};
use metrics::counter;

use super::{ApiError, AppState, Caller, body, content_type, decode_body, grouping_key};
use crate::serve::self_metrics::HTTP_ACCEPTED;

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
    let (samples, metadata) = parse(&s, b, format, Vec::new())
        .await
        .map_err(|e| e.counted(EP))?;
    accept(&s, &caller, EP, "prometheus_import", samples, metadata).await
}

/// `PUT|POST /metrics/job/...` and `/metrics/job@base64/...`: the grouping
/// key is read from the raw path (see [`grouping_key`]).
pub async fn push(
    State(s): State<Arc<AppState>>,
    caller: Caller,
    uri: Uri,
    headers: HeaderMap,
    b: Result<Bytes, BytesRejection>,
) -> Result<Response, ApiError> {
    const EP: &str = "pushgateway";
    let grouping = grouping_key::parse(uri.path())
        .map_err(|e| ApiError::bad_request("invalid grouping key", e).counted(EP))?;
    let b = body(EP, b)?;
    let format = exposition_format(&headers).map_err(|e| e.counted(EP))?;
    let (samples, metadata) = parse(&s, b, format, grouping)
        .await
        .map_err(|e| e.counted(EP))?;
    accept(&s, &caller, EP, "pushgateway", samples, metadata).await
}

/// Parses `b` with the request's budgets, setting `grouping` on every sample.
async fn parse(
    s: &AppState,
    b: Bytes,
    format: Format,
    grouping: Vec<(String, String)>,
) -> Result<(Vec<MetricSample>, Vec<MetricMetadata>), ApiError> {
    let max_samples = s.max_request_events;
    let fmt = format_name(format);
    let r = decode_body(
        b.len(),
        s.max_output_bytes,
        move |budget| parse_exposition(&b, format, &grouping, budget, max_samples),
        |e| matches!(e, ExpoError::OverBudget(_)),
    )
    .await?;
    match r {
        Ok((samples, metadata)) => {
            pm::parsed(fmt, samples.len(), 0);
            Ok((samples, metadata))
        }
        Err(e) => {
            pm::parsed(fmt, 0, 1);
            Err(e.into_api())
        }
    }
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

fn format_name(format: Format) -> &'static str {
    match format {
        Format::Text => "prometheus",
        Format::OpenMetrics => "openmetrics",
    }
}

/// Why a body was refused.
#[derive(Debug)]
enum ExpoError {
    Parse(ParseError),
    /// Over the output budget of this many bytes.
    OverBudget(usize),
    /// More samples than this.
    TooManySamples(usize),
    /// A sample label conflicts with the grouping key.
    Conflict(String),
}

impl ExpoError {
    fn into_api(self) -> ApiError {
        match self {
            ExpoError::Parse(e) => {
                let at = match e.column {
                    Some(c) => format!("line {}, column {c}: {}", e.line, e.kind),
                    None => format!("line {}: {}", e.line, e.kind),
                };
                ApiError::bad_request("invalid exposition text", at)
            }
            ExpoError::OverBudget(max) => ApiError::too_large(format!(
                "parsing would take more than the limit of {max} bytes of memory (the grouping labels are copied into every sample); send fewer samples or a shorter grouping key, or split the request (http_ingest.max_output_bytes)"
            )),
            ExpoError::TooManySamples(max) => ApiError::too_large(format!(
                "the body holds more than {max} samples, the most one batch may hold (queue.max_events); split the request"
            )),
            ExpoError::Conflict(d) => {
                ApiError::bad_request("sample label conflicts with the grouping key", d)
            }
        }
    }
}

/// Parses an exposition strictly (the first bad line refuses the request),
/// setting `grouping` on every sample and charging each one, before it is
/// kept, to a budget of `max_output` bytes; more than `max_samples` samples
/// are refused.
fn parse_exposition(
    body: &[u8],
    format: Format,
    grouping: &[(String, String)],
    max_output: usize,
    max_samples: usize,
) -> Result<(Vec<MetricSample>, Vec<MetricMetadata>), ExpoError> {
    let options = ParseOptions {
        format,
        mode: Mode::Strict,
    };
    let mut budget = DecodeBudget::new(max_output);
    let over = |_| ExpoError::OverBudget(max_output);
    let mut parser = Parser::from_bytes(body, options).map_err(ExpoError::Parse)?;
    let mut samples = Vec::new();
    for item in parser.by_ref() {
        let mut smp = item
            .and_then(|s| s.to_metric_sample())
            .map_err(ExpoError::Parse)?;
        if samples.len() >= max_samples {
            return Err(ExpoError::TooManySamples(max_samples));
        }
        let mut cost = sample_bytes(&smp.name, smp.labels.as_slice());
        for (name, value) in grouping {
            match smp.labels.get(name) {
                Some(v) if v != value => {
                    return Err(ExpoError::Conflict(format!(
                        "sample {} ({}): label {name}={v:?} but the URL says {value:?}",
                        samples.len() + 1,
                        smp.name
                    )));
                }
                Some(_) => {}
                None => cost = cost.saturating_add(label_bytes(name, value)),
            }
        }
        budget.charge(1, cost).map_err(over)?;
        for (name, value) in grouping {
            smp.labels.set(name, value);
        }
        samples.push(smp);
    }
    let families = parser.families();
    let mut metadata = Vec::with_capacity(families.len());
    for f in families {
        let m = f.to_metadata();
        let opt = |s: &Option<String>| s.as_ref().map_or(0, String::len);
        let cost = killkrill_core::decode_budget::RECORD_OVERHEAD
            + m.family.len()
            + opt(&m.help)
            + opt(&m.unit);
        budget.charge(1, cost).map_err(over)?;
        metadata.push(m);
    }
    Ok((samples, metadata))
}

#[cfg(test)]
#[allow(clippy::unwrap_used)]
mod tests {
    use super::*;

    fn g(pairs: &[(&str, &str)]) -> Vec<(String, String)> {
        pairs
            .iter()
            .map(|(n, v)| ((*n).to_owned(), (*v).to_owned()))
            .collect()
    }

    #[test]
    fn grouping_labels_are_set_and_charged() {
        let key = g(&[("job", "j"), ("big", &"v".repeat(1000))]);
        let body = b"a 1\nb{x=\"1\"} 2\n";
        let (s, _) = parse_exposition(body, Format::Text, &key, 1 << 20, 10).unwrap();
        assert_eq!(s.len(), 2);
        assert_eq!(s[1].labels.get("big").map(str::len), Some(1000));
        assert_eq!(s[1].labels.get("x"), Some("1"));
        // Each sample costs over 1000 bytes with the key, about 70 without.
        let r = parse_exposition(body, Format::Text, &key, 1500, 10);
        assert!(matches!(r, Err(ExpoError::OverBudget(1500))), "{r:?}");
        assert!(parse_exposition(body, Format::Text, &[], 1500, 10).is_ok());
        let r = parse_exposition(body, Format::Text, &[], 1 << 20, 1);
        assert!(matches!(r, Err(ExpoError::TooManySamples(1))), "{r:?}");
        let r = parse_exposition(b"a{job=\"k\"} 1\n", Format::Text, &key, 1 << 20, 10);
        assert!(matches!(r, Err(ExpoError::Conflict(_))), "{r:?}");
    }
}
