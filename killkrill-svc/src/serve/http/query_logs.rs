//! `GET /api/v1/logs` (a page of records) and `GET /api/v1/logs/volume`
//! (counts per time bucket and severity), both over core's log query
//! engine and scoped to the caller's tenant.

use std::sync::Arc;

use axum::extract::{RawQuery, State};
use axum::http::{HeaderValue, StatusCode, header};
use axum::response::{IntoResponse, Response};
use killkrill_core::event::{Severity, Timestamp};
use killkrill_core::logblock::write_json_rows;
use killkrill_core::logquery::{
    Cursor, LogQuery, Order, QueryError, VolumeQuery, query_log_rows, query_volume,
};
use killkrill_core::storage::{ErrorKind, TimeRange};
use metrics::counter;

use super::read_limits;
use super::read_params::{FILTER_PARAMS, Params, bad_param, log_filter, nanos, parse_duration};
use super::{ApiError, AppState, Caller};
use crate::config::QueryConfig;
use crate::serve::self_metrics::HTTP_ACCEPTED;

/// `[start, end)` from `start`/`end` (end: now; start: the longest range
/// allowed), checked against `query.max_range_secs`.
fn time_range(
    ep: &'static str,
    p: &Params,
    cfg: &QueryConfig,
    now: Timestamp,
) -> Result<TimeRange, ApiError> {
    let start = p.time(ep, "start", now)?;
    let end = p.time(ep, "end", now)?;
    read_limits::time_range(cfg, start, end, now, None, "end").map_err(|r| r.http(ep))
}

/// A log query error as an HTTP answer.
pub(super) fn query_error(ep: &'static str, e: &QueryError) -> ApiError {
    match e {
        QueryError::Invalid(m) => {
            ApiError::new(StatusCode::BAD_REQUEST, "invalid query", Some(m.clone())).counted(ep)
        }
        QueryError::Store(s) if s.kind() == ErrorKind::Conflict => ApiError {
            retry_after: Some(1),
            ..ApiError::new(
                StatusCode::SERVICE_UNAVAILABLE,
                "data changed under the query (compaction); retry",
                None,
            )
        }
        .counted(ep),
        other => {
            tracing::warn!(error = %other, endpoint = ep, "log query failed");
            ApiError {
                retry_after: Some(5),
                ..ApiError::new(StatusCode::SERVICE_UNAVAILABLE, "store unavailable", None)
            }
            .counted(ep)
        }
    }
}

/// Runs `f` within `query.timeout_ms`; a 422 naming the limit when it
/// takes longer (the future is dropped: the store work stops).
pub(super) async fn with_timeout<T>(
    ep: &'static str,
    cfg: &QueryConfig,
    f: impl Future<Output = T>,
) -> Result<T, ApiError> {
    read_limits::timed(cfg, f).await.map_err(|r| r.http(ep))
}

fn json_body(body: impl Into<axum::body::Body>) -> Response {
    let body: axum::body::Body = body.into();
    let mut r = (StatusCode::OK, body).into_response();
    r.headers_mut().insert(
        header::CONTENT_TYPE,
        HeaderValue::from_static("application/json"),
    );
    r
}

/// `GET /api/v1/logs`.
pub async fn get_logs(
    State(s): State<Arc<AppState>>,
    caller: Caller,
    RawQuery(raw): RawQuery,
) -> Result<Response, ApiError> {
    const EP: &str = "logs_query";
    let mut known = FILTER_PARAMS.to_vec();
    known.extend(["start", "end", "limit", "cursor", "order"]);
    let p = Params::parse(EP, raw.as_deref(), &known)?;
    let cfg = &s.query;
    let now = Timestamp::now();
    let range = time_range(EP, &p, cfg, now)?;
    let filter = log_filter(EP, &p)?;
    let limit =
        read_limits::page_size(cfg, p.usize(EP, "limit")?, "limit").map_err(|r| r.http(EP))?;
    let order = match p.one(EP, "order")? {
        None => Order::NewestFirst,
        Some(o) => match o.to_ascii_lowercase().as_str() {
            "newest" | "desc" | "backward" => Order::NewestFirst,
            "oldest" | "asc" | "forward" => Order::OldestFirst,
            _ => {
                return Err(bad_param(
                    EP,
                    "order",
                    format!("{o:?}: use newest (desc) or oldest (asc)"),
                ));
            }
        },
    };
    let cursor = match p.one(EP, "cursor")? {
        None | Some("") => None,
        Some(c) => Some(
            c.parse::<Cursor>()
                .map_err(|e| bad_param(EP, "cursor", e.to_string()))?,
        ),
    };
    let q = LogQuery {
        tenant: caller.tenant,
        range,
        filter,
        order,
        limit,
        cursor,
    };
    let page = with_timeout(EP, cfg, query_log_rows(&s.store, &q))
        .await?
        .map_err(|e| query_error(EP, &e))?;
    metrics::histogram!("killkrill_logs_query_blocks_decoded").record(page.blocks_decoded as f64);
    // Canonical JSON written straight from the decoded blocks into the
    // response buffer (no LogRecord, no serde; the same bytes).
    let mut body: Vec<u8> = Vec::with_capacity(64 + page.rows.len() * 560);
    body.extend_from_slice(b"{\"data\":[");
    write_json_rows(&page.rows, |r| (&*r.block, r.index), &mut body).map_err(|(i, source)| {
        query_error(
            EP,
            &QueryError::Corrupt {
                tenant: q.tenant.to_string(),
                block: page.rows[i].block_id,
                source,
            },
        )
    })?;
    body.extend_from_slice(b"],\"next_cursor\":");
    match page.next_cursor {
        Some(c) => {
            body.push(b'"');
            body.extend_from_slice(c.to_string().as_bytes());
            body.push(b'"');
        }
        None => body.extend_from_slice(b"null"),
    }
    body.push(b'}');
    counter!(HTTP_ACCEPTED, "endpoint" => EP).increment(1);
    Ok(json_body(body))
}

/// The name of a volume severity slot (8: records without severity).
fn severity_key(code: usize) -> &'static str {
    u8::try_from(code)
        .ok()
        .and_then(Severity::from_code)
        .map_or("none", Severity::name)
}

/// `GET /api/v1/logs/volume`.
pub async fn get_volume(
    State(s): State<Arc<AppState>>,
    caller: Caller,
    RawQuery(raw): RawQuery,
) -> Result<Response, ApiError> {
    const EP: &str = "logs_volume";
    let mut known = FILTER_PARAMS.to_vec();
    known.extend(["start", "end", "step"]);
    let p = Params::parse(EP, raw.as_deref(), &known)?;
    let cfg = &s.query;
    let now = Timestamp::now();
    let range = time_range(EP, &p, cfg, now)?;
    let filter = log_filter(EP, &p)?;
    let step = match p.one(EP, "step")? {
        Some(v) => Some(nanos(
            parse_duration(v).map_err(|why| bad_param(EP, "step", why))?,
        )),
        None => None,
    };
    let step = read_limits::volume_step(cfg, range, step, "step").map_err(|r| r.http(EP))?;
    let q = VolumeQuery {
        tenant: caller.tenant,
        range,
        filter,
        step_nanos: step,
    };
    let v = with_timeout(EP, cfg, query_volume(&s.store, &q))
        .await?
        .map_err(|e| query_error(EP, &e))?;
    let data: Vec<serde_json::Value> = v
        .buckets
        .iter()
        .map(|b| {
            let mut by = serde_json::Map::new();
            for (code, &n) in b.by_severity.iter().enumerate() {
                if n > 0 {
                    by.insert(severity_key(code).to_owned(), n.into());
                }
            }
            serde_json::json!({
                "start": b.start.to_string(),
                "total": b.total,
                "by_severity": by,
            })
        })
        .collect();
    counter!(HTTP_ACCEPTED, "endpoint" => EP).increment(1);
    Ok(axum::Json(serde_json::json!({
        "data": data,
        "step_seconds": step as f64 / 1e9,
        "blocks_from_summary": v.blocks_from_summary,
        "blocks_decoded": v.blocks_decoded,
    }))
    .into_response())
}
