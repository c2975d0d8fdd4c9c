//! The HTTP listener: ingest endpoints and operations endpoints.
//!
//! [`router`] builds the whole axum router from an explicit [`AppState`], so
//! tests can drive it in-process or over a socket. Layers, outermost first:
//! the JSON error rewriter, then per route group a request decompressor
//! (gzip and zstd; another `Content-Encoding` is 415 — except on the Loki and
//! remote write routes, where the body format itself is snappy), then the
//! body limit, which so applies to the *decompressed* bytes (a small gzip
//! bomb is still a 413).

mod caller;
mod error;
mod logs;
mod metrics_ingest;
mod openapi;
mod ops;
pub mod prom;
mod query_logs;
mod query_metrics;
pub mod read_params;
mod server;
pub mod tail;

use std::sync::Arc;
use std::time::Duration;

use axum::Router;
use axum::extract::DefaultBodyLimit;
use axum::extract::rejection::BytesRejection;
use axum::http::StatusCode;
use axum::middleware::map_response;
use axum::routing::{get, post};
use bytes::Bytes;
use killkrill_store::Store;
use metrics_exporter_prometheus::PrometheusHandle;
use tower_http::decompression::RequestDecompressionLayer;
use tower_http::limit::RequestBodyLimitLayer;

pub use caller::Caller;
pub use error::ApiError;
pub use server::{OPEN_CONNECTIONS, REJECTED_CONNECTIONS, serve};
pub use tail::TailHub;

use super::ingest::Ingest;

/// What the handlers share.
pub struct AppState {
    /// Where batches go.
    pub ingest: Arc<Ingest>,
    /// For `/readyz`.
    pub store: Store,
    /// For `/metrics`.
    pub metrics: Option<PrometheusHandle>,
    /// How long a request waits for room in a full queue.
    pub enqueue_wait: Duration,
    /// Largest decompressed body.
    pub max_body_bytes: usize,
    /// Limits of the read API.
    pub query: crate::config::QueryConfig,
    /// Live tails: the concurrency limit and the commit notification.
    pub tails: Arc<TailHub>,
}

/// The full router: the public operations routes, the ingest routes and
/// the read routes. Each group is built by its own function so a layer that
/// needs a permission (ingest, read, admin) applies to a whole group.
pub fn router(state: Arc<AppState>) -> Router {
    router_for(state, RouteGroups::ALL)
}

/// Which route groups a process serves besides the public ones (see
/// [`Roles`](super::Roles)).
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub struct RouteGroups {
    /// [`ingest_routes`] (receivers).
    pub ingest: bool,
    /// [`read_routes`] (API).
    pub read: bool,
}

impl RouteGroups {
    /// Every group (`serve`).
    pub const ALL: RouteGroups = RouteGroups {
        ingest: true,
        read: true,
    };
}

/// The router of one role set: [`public_routes`] always, the ingest and
/// read routes when asked for. [`router`] is every group.
pub fn router_for(state: Arc<AppState>, groups: RouteGroups) -> Router {
    let mut r = Router::new().merge(public_routes());
    if groups.ingest {
        r = r.merge(ingest_routes(state.max_body_bytes));
    }
    if groups.read {
        r = r.merge(read_routes(&state));
    }
    r.layer(DefaultBodyLimit::disable())
        .layer(map_response(error::json_errors))
        .with_state(state)
}

/// Health, readiness and the process's own metrics: answered to anyone.
fn public_routes() -> Router<Arc<AppState>> {
    Router::new()
        .route("/healthz", get(ops::healthz))
        .route("/readyz", get(ops::readyz))
        .route("/metrics", get(ops::metrics))
        .route("/api/v1/openapi.json", get(openapi::get_openapi))
}

/// Every route that accepts data.
fn ingest_routes(limit: usize) -> Router<Arc<AppState>> {
    let decompress = || RequestDecompressionLayer::new().gzip(true).zstd(true);
    let plain = Router::new()
        .route("/api/v1/logs", post(logs::post_logs))
        .route(
            "/api/v1/import/prometheus",
            post(metrics_ingest::post_import),
        )
        .route(
            "/metrics/job/{job}",
            post(metrics_ingest::push_job).put(metrics_ingest::push_job),
        )
        .route(
            "/metrics/job/{job}/{*labels}",
            post(metrics_ingest::push_job_labels).put(metrics_ingest::push_job_labels),
        )
        .layer(RequestBodyLimitLayer::new(limit))
        .layer(decompress());
    let loki = Router::new()
        .route("/loki/api/v1/push", post(logs::post_loki))
        .layer(RequestBodyLimitLayer::new(limit))
        .layer(decompress().pass_through_unaccepted(true));
    let remote_write = Router::new()
        .route("/api/v1/write", post(metrics_ingest::post_remote_write))
        .layer(RequestBodyLimitLayer::new(limit));
    Router::new().merge(plain).merge(loki).merge(remote_write)
}

/// Every route that reads stored data (log and metric queries, the
/// Prometheus API, live tail). Every handler scopes its reads to the
/// [`Caller`]'s tenant.
fn read_routes(state: &Arc<AppState>) -> Router<Arc<AppState>> {
    Router::new()
        .route("/api/v1/logs", get(query_logs::get_logs))
        .route("/api/v1/logs/volume", get(query_logs::get_volume))
        .route("/api/v1/logs/tail", get(tail::get_tail))
        .route("/api/v1/metrics", get(query_metrics::get_metrics))
        .merge(prom::routes(state))
}

/// The body, or the error a client should see.
fn body(endpoint: &'static str, b: Result<Bytes, BytesRejection>) -> Result<Bytes, ApiError> {
    b.map_err(|r| {
        let e = if r.status() == StatusCode::PAYLOAD_TOO_LARGE {
            ApiError::too_large(r.body_text())
        } else {
            ApiError::bad_request("could not read the request body", r.body_text())
        };
        e.counted(endpoint)
    })
}

/// Bodies larger than this are parsed on the blocking pool, so a 16 MiB
/// JSON body does not stall the other requests on its runtime thread.
const INLINE_PARSE_BYTES: usize = 64 * 1024;

/// Runs a parser inline for small bodies and on the blocking pool for large
/// ones.
async fn parse_body<T: Send + 'static>(
    len: usize,
    f: impl FnOnce() -> Result<T, ApiError> + Send + 'static,
) -> Result<T, ApiError> {
    if len <= INLINE_PARSE_BYTES {
        return f();
    }
    tokio::task::spawn_blocking(f).await.map_err(|e| {
        tracing::error!(error = %e, "parser task failed");
        ApiError::new(StatusCode::INTERNAL_SERVER_ERROR, "internal error", None)
    })?
}

fn content_type(headers: &axum::http::HeaderMap) -> Option<&str> {
    headers
        .get(axum::http::header::CONTENT_TYPE)
        .and_then(|v| v.to_str().ok())
}
