//! The Prometheus HTTP API (`/api/v1/query`, `/query_range`, `/series`,
//! `/labels`, `/label/{name}/values`, `/metadata`, `/status/buildinfo`,
//! `/format_query`, and empty `/query_exemplars`, `/rules`, `/alerts` for
//! the clients that ask) as axum handlers, so Grafana, promtool and other Prometheus clients work
//! unchanged. GET and POST (form body) are both accepted; every answer uses
//! Prometheus's envelope `{status, data | errorType, error, warnings}` and its
//! HTTP codes (400 bad_data, 422 execution, 503 timeout, 500 internal).
//! Authentication and tenancy are the embedding service's job: it wraps
//! this router and either hands it one [`SampleSource`] ([`ApiState::new`])
//! or a [`SourceFactory`] ([`ApiState::per_request`]) that builds a
//! tenant-scoped source from each request's extensions (where the
//! service's authentication layer put the caller).

use std::collections::BTreeSet;
use std::sync::Arc;
use std::time::Duration;

use axum::Router;
use axum::body::Bytes;
use axum::extract::{Path, RawQuery, State};
use axum::http::{Extensions, HeaderMap, HeaderValue, Method, StatusCode, header};
use axum::response::{IntoResponse, Response};
use axum::routing::get;
use serde_json::{Map, Value as Json, json};

use crate::engine::{Engine, EngineConfig};
use crate::error::QueryError;
use crate::labels::{Labels, Matcher, parse_selector};
use crate::params::{Params, parse_duration, parse_time};
use crate::source::{SampleSource, Series};
use crate::value::{QueryValue, format_float};

/// Builds the [`SampleSource`] one request reads from, from the request's
/// extensions (e.g. the authenticated caller's tenant).
pub trait SourceFactory: Send + Sync {
    /// The source for a request with these extensions.
    ///
    /// # Errors
    /// A [`QueryError`] answered to the client as is (e.g. `Source` when no
    /// caller identity is present: fail closed, never fall back to a
    /// shared source).
    fn source(&self, extensions: &Extensions) -> Result<Arc<dyn SampleSource>, QueryError>;
}

#[derive(Clone)]
enum Sources {
    Fixed(Engine),
    PerRequest(Arc<dyn SourceFactory>),
}

/// State of the API router: one engine over a fixed source, or a factory
/// that scopes every request to its own source.
#[derive(Clone)]
pub struct ApiState {
    sources: Sources,
    config: EngineConfig,
}

impl ApiState {
    /// State over one `source` with `config`.
    pub fn new(source: Arc<dyn SampleSource>, config: EngineConfig) -> Self {
        ApiState {
            sources: Sources::Fixed(Engine::new(source, config.clone())),
            config,
        }
    }

    /// State that asks `factory` for the source of every request (a
    /// multi-tenant service: one source per caller's tenant).
    pub fn per_request(factory: Arc<dyn SourceFactory>, config: EngineConfig) -> Self {
        ApiState {
            sources: Sources::PerRequest(factory),
            config,
        }
    }

    /// The engine behind the API, when it has one fixed source.
    pub fn engine(&self) -> Option<&Engine> {
        match &self.sources {
            Sources::Fixed(e) => Some(e),
            Sources::PerRequest(_) => None,
        }
    }

    /// The engine configuration (limits) in force.
    pub fn config(&self) -> &EngineConfig {
        &self.config
    }

    /// The engine for one request.
    fn engine_for(&self, ext: &Extensions) -> Result<Engine, QueryError> {
        match &self.sources {
            Sources::Fixed(e) => Ok(e.clone()),
            Sources::PerRequest(f) => Ok(Engine::new(f.source(ext)?, self.config.clone())),
        }
    }
}

/// The Prometheus-compatible routes, ready to be nested or merged.
pub fn router(state: ApiState) -> Router {
    routes::<()>(state)
}

/// The paths [`routes`] serves (for route tables and permission checks).
pub const API_PATHS: &[&str] = &[
    "/api/v1/query",
    "/api/v1/query_range",
    "/api/v1/series",
    "/api/v1/labels",
    "/api/v1/label/{name}/values",
    "/api/v1/metadata",
    "/api/v1/status/buildinfo",
    "/api/v1/format_query",
    "/api/v1/query_exemplars",
    "/api/v1/rules",
    "/api/v1/alerts",
];

/// The same routes as a router of any outer state `S`, so a service can
/// merge them into its own router (and layer them) directly.
pub fn routes<S: Clone + Send + Sync + 'static>(state: ApiState) -> Router<S> {
    Router::new()
        .route("/api/v1/query", get(query).post(query))
        .route("/api/v1/query_range", get(query_range).post(query_range))
        .route("/api/v1/series", get(series).post(series))
        .route("/api/v1/labels", get(labels).post(labels))
        .route("/api/v1/label/{name}/values", get(label_values))
        .route("/api/v1/metadata", get(metadata))
        .route("/api/v1/status/buildinfo", get(buildinfo))
        .route("/api/v1/format_query", get(format_query).post(format_query))
        .route(
            "/api/v1/query_exemplars",
            get(query_exemplars).post(query_exemplars),
        )
        .route("/api/v1/rules", get(rules))
        .route("/api/v1/alerts", get(alerts))
        .with_state(state)
}

fn params(method: &Method, headers: &HeaderMap, raw: Option<String>, body: &Bytes) -> Params {
    let mut p = Params::default();
    if let Some(q) = raw {
        p.extend_from_form(q.as_bytes());
    }
    let is_form = headers
        .get(header::CONTENT_TYPE)
        .and_then(|v| v.to_str().ok())
        .is_some_and(|v| v.starts_with("application/x-www-form-urlencoded"));
    if method == Method::POST && is_form {
        p.extend_from_form(body);
    }
    p
}

fn json_response(status: StatusCode, body: &Json) -> Response {
    let mut resp = (status, body.to_string()).into_response();
    resp.headers_mut().insert(
        header::CONTENT_TYPE,
        HeaderValue::from_static("application/json"),
    );
    resp
}

fn success(data: Json) -> Response {
    json_response(StatusCode::OK, &json!({"status": "success", "data": data}))
}

fn failure(e: &QueryError) -> Response {
    let kind = e.kind();
    metrics::counter!("killkrill_promql_api_errors_total", "error_type" => kind.as_str())
        .increment(1);
    let status =
        StatusCode::from_u16(kind.http_status()).unwrap_or(StatusCode::INTERNAL_SERVER_ERROR);
    json_response(
        status,
        &json!({"status": "error", "errorType": kind.as_str(), "error": e.to_string()}),
    )
}

fn reply(r: Result<Json, QueryError>) -> Response {
    match r {
        Ok(d) => success(d),
        Err(e) => failure(&e),
    }
}

/// A timestamp in seconds as Prometheus writes it (integer when whole).
fn ts_json(ms: i64) -> Json {
    if ms % 1000 == 0 {
        json!(ms / 1000)
    } else {
        json!(ms as f64 / 1000.0)
    }
}

fn labels_json(l: &Labels) -> Json {
    let mut m = Map::new();
    for (k, v) in l {
        m.insert(k.clone(), Json::String(v.clone()));
    }
    Json::Object(m)
}

fn series_json(s: &Series) -> Json {
    let values: Vec<Json> = s
        .points
        .iter()
        .map(|&(t, v)| json!([ts_json(t), format_float(v)]))
        .collect();
    json!({"metric": labels_json(&s.labels), "values": values})
}

/// The `data` object of a query answer.
pub fn value_json(v: &QueryValue) -> Json {
    let result = match v {
        QueryValue::Scalar { t, v } => json!([ts_json(*t), format_float(*v)]),
        QueryValue::String { t, v } => json!([ts_json(*t), v]),
        QueryValue::Vector(samples) => Json::Array(
            samples
                .iter()
                .map(|s| json!({"metric": labels_json(&s.labels), "value": [ts_json(s.t), format_float(s.v)]}))
                .collect(),
        ),
        QueryValue::Matrix(m) => Json::Array(m.iter().map(series_json).collect()),
    };
    json!({"resultType": v.type_name(), "result": result})
}

fn now_ms() -> i64 {
    jiff::Timestamp::now().as_millisecond()
}

fn timeout_param(p: &Params) -> Result<Option<Duration>, QueryError> {
    match p.get("timeout") {
        Some(t) => {
            let ms = parse_duration("timeout", t)?;
            Ok(Some(Duration::from_millis(u64::try_from(ms).unwrap_or(0))))
        }
        None => Ok(None),
    }
}

fn query_param(p: &Params) -> Result<&str, QueryError> {
    p.get("query").filter(|q| !q.is_empty()).ok_or_else(|| {
        QueryError::BadData("invalid parameter \"query\": no query given".to_string())
    })
}

async fn query(
    State(st): State<ApiState>,
    ext: Extensions,
    method: Method,
    headers: HeaderMap,
    RawQuery(raw): RawQuery,
    body: Bytes,
) -> Response {
    let p = params(&method, &headers, raw, &body);
    let mut stats = None;
    let resp = reply(
        async {
            let q = query_param(&p)?;
            let t = match p.get("time") {
                Some(t) => parse_time("time", t)?,
                None => now_ms(),
            };
            let engine = st.engine_for(&ext)?;
            let started = std::time::Instant::now();
            let v = engine.instant_with_stats(q, t, timeout_param(&p)?).await;
            tracing::debug!(
                query = q,
                time_ms = t,
                elapsed_ms = started.elapsed().as_millis() as u64,
                ok = v.is_ok(),
                "promql instant query"
            );
            let (v, st) = v?;
            stats = Some(st);
            Ok(value_json(&v))
        }
        .await,
    );
    with_path(resp, stats)
}

/// The response header naming how the selectors were read: `rollup`,
/// `raw`, `mixed` or `none` (see `docs/src/promql.md`, "Rollups").
pub const QUERY_PATH_HEADER: &str = "x-killkrill-query-path";

fn with_path(mut resp: Response, stats: Option<crate::engine::QueryStats>) -> Response {
    if let Some(st) = stats {
        resp.headers_mut()
            .insert(QUERY_PATH_HEADER, HeaderValue::from_static(st.path()));
    }
    resp
}

async fn query_range(
    State(st): State<ApiState>,
    ext: Extensions,
    method: Method,
    headers: HeaderMap,
    RawQuery(raw): RawQuery,
    body: Bytes,
) -> Response {
    let p = params(&method, &headers, raw, &body);
    let mut stats = None;
    let resp = reply(
        async {
            let missing = |n: &str| QueryError::BadData(format!("invalid parameter \"{n}\": missing"));
            let start = parse_time("start", p.get("start").ok_or_else(|| missing("start"))?)?;
            let end = parse_time("end", p.get("end").ok_or_else(|| missing("end"))?)?;
            if end < start {
                return Err(QueryError::BadData(
                    "invalid parameter \"end\": end timestamp must not be before start time"
                        .to_string(),
                ));
            }
            let step = parse_duration("step", p.get("step").ok_or_else(|| missing("step"))?)?;
            if step <= 0 {
                return Err(QueryError::BadData(
                    "invalid parameter \"step\": zero or negative query resolution step widths are not accepted. Try a positive integer".to_string(),
                ));
            }
            let q = query_param(&p)?;
            let engine = st.engine_for(&ext)?;
            let started = std::time::Instant::now();
            let v = engine
                .range_with_stats(q, start, end, step, timeout_param(&p)?)
                .await;
            tracing::debug!(query = q, start_ms = start, end_ms = end, step_ms = step, elapsed_ms = started.elapsed().as_millis() as u64, ok = v.is_ok(), "promql range query");
            let (v, st) = v?;
            stats = Some(st);
            Ok(value_json(&v))
        }
        .await,
    );
    with_path(resp, stats)
}

/// `start`/`end` of the metadata endpoints in nanoseconds. Absent bounds
/// default to the last `max_range` before now (unbounded when no
/// `max_range` is configured); an explicit range longer than `max_range`
/// is refused.
fn range_ns(p: &Params, cfg: &EngineConfig) -> Result<(i64, i64), QueryError> {
    let max = cfg.max_range.map(crate::engine::duration_ms);
    let end_ms = match p.get("end") {
        Some(s) => Some(parse_time("end", s)?),
        None => None,
    };
    let start_ms = match p.get("start") {
        Some(s) => Some(parse_time("start", s)?),
        None => None,
    };
    let Some(max) = max else {
        return Ok((
            start_ms.map_or(i64::MIN, |t| t.saturating_mul(1_000_000)),
            end_ms.map_or(i64::MAX, |t| t.saturating_mul(1_000_000)),
        ));
    };
    let end = end_ms.unwrap_or_else(now_ms);
    let start = start_ms.unwrap_or_else(|| end.saturating_sub(max));
    crate::engine::check_range(cfg, start, end)?;
    Ok((
        start.saturating_mul(1_000_000),
        end.saturating_mul(1_000_000),
    ))
}

fn matcher_sets(p: &Params) -> Result<Vec<Vec<Matcher>>, QueryError> {
    let mut out = Vec::new();
    for m in p.all("match[]") {
        out.extend(parse_selector(m)?);
    }
    Ok(out)
}

async fn series(
    State(st): State<ApiState>,
    ext: Extensions,
    method: Method,
    headers: HeaderMap,
    RawQuery(raw): RawQuery,
    body: Bytes,
) -> Response {
    let p = params(&method, &headers, raw, &body);
    reply(
        async {
            let sets = matcher_sets(&p)?;
            if sets.is_empty() {
                return Err(QueryError::BadData(
                    "no match[] parameter provided".to_string(),
                ));
            }
            let (start, end) = range_ns(&p, st.config())?;
            let source = st.engine_for(&ext)?.source().clone();
            let mut seen: BTreeSet<Labels> = BTreeSet::new();
            for set in &sets {
                seen.extend(source.series(set, start, end).await?);
            }
            Ok(Json::Array(seen.iter().map(labels_json).collect()))
        }
        .await,
    )
}

async fn labels(
    State(st): State<ApiState>,
    ext: Extensions,
    method: Method,
    headers: HeaderMap,
    RawQuery(raw): RawQuery,
    body: Bytes,
) -> Response {
    let p = params(&method, &headers, raw, &body);
    reply(
        async {
            let (start, end) = range_ns(&p, st.config())?;
            let source = st.engine_for(&ext)?.source().clone();
            let mut sets = matcher_sets(&p)?;
            if sets.is_empty() {
                sets.push(Vec::new());
            }
            let mut names = BTreeSet::new();
            for set in &sets {
                names.extend(source.label_names(set, start, end).await?);
            }
            Ok(json!(names))
        }
        .await,
    )
}

async fn label_values(
    State(st): State<ApiState>,
    ext: Extensions,
    Path(name): Path<String>,
    RawQuery(raw): RawQuery,
) -> Response {
    let mut p = Params::default();
    if let Some(q) = raw {
        p.extend_from_form(q.as_bytes());
    }
    reply(
        async {
            let valid = name
                .chars()
                .enumerate()
                .all(|(i, c)| c == '_' || c.is_ascii_alphabetic() || (i > 0 && c.is_ascii_digit()));
            if name.is_empty() || !valid {
                return Err(QueryError::BadData(format!("invalid label name: {name:?}")));
            }
            let (start, end) = range_ns(&p, st.config())?;
            let source = st.engine_for(&ext)?.source().clone();
            let mut sets = matcher_sets(&p)?;
            if sets.is_empty() {
                sets.push(Vec::new());
            }
            let mut values = BTreeSet::new();
            for set in &sets {
                values.extend(source.label_values(&name, set, start, end).await?);
            }
            Ok(json!(values))
        }
        .await,
    )
}

/// Killkrill keeps no metric metadata (HELP/TYPE) yet: an empty object, as
/// Prometheus answers when it knows none.
async fn metadata() -> Response {
    success(json!({}))
}

/// Pretty-prints a query (Prometheus's `format_query`).
async fn format_query(
    method: Method,
    headers: HeaderMap,
    RawQuery(raw): RawQuery,
    body: Bytes,
) -> Response {
    let p = params(&method, &headers, raw, &body);
    reply(query_param(&p).and_then(|q| {
        let expr = crate::engine::parse(q)?;
        Ok(Json::String(expr.prettify()))
    }))
}

/// Killkrill stores no exemplars: an empty list (Grafana asks by default).
async fn query_exemplars(
    method: Method,
    headers: HeaderMap,
    RawQuery(raw): RawQuery,
    body: Bytes,
) -> Response {
    let p = params(&method, &headers, raw, &body);
    reply(query_param(&p).and_then(|q| {
        crate::engine::parse(q)?;
        Ok(json!([]))
    }))
}

/// No recording or alerting rules are evaluated by Killkrill.
async fn rules() -> Response {
    success(json!({"groups": []}))
}

/// No alerts: Killkrill evaluates no alerting rules.
async fn alerts() -> Response {
    success(json!({"alerts": []}))
}

async fn buildinfo() -> Response {
    success(json!({
        "version": env!("CARGO_PKG_VERSION"),
        "revision": "",
        "branch": "",
        "buildUser": "killkrill",
        "buildDate": "",
        "goVersion": "",
        "application": "killkrill",
    }))
}
