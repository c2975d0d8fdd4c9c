//! The HTTP listener: ingest endpoints and operations endpoints.
//!
//! [`router`] builds the whole axum router from an explicit [`AppState`], so
//! tests can drive it in-process or over a socket. Layers, outermost first:
//! the JSON error rewriter, then per route group a request decompressor
//! (gzip and zstd; another `Content-Encoding` is 415 — except on the Loki and
//! remote write routes, where the body format itself is snappy), then the
//! body limit, which so applies to the *decompressed* bytes (a small gzip
//! bomb is still a 413).
//!
//! Authentication (see [`crate::auth`]): every group but the public one is
//! wrapped in [`authn::authenticate`] (401 without valid credentials) and
//! its own [`authn::require`] layer with the group's [`Permission`] (403).
//! Both run before any body is read. [`route_table`] lists every path with
//! its permission, built by the same functions that build the router, so
//! the router-walk test covers every route, including ones added later.

mod api_keys;
mod auth_api;
pub mod authn;
mod caller;
mod email_api;
mod error;
mod exposition;
mod grouping_key;
pub mod grpc;
mod grpc_status;
mod logs;
mod metrics_ingest;
mod openapi;
mod ops;
pub mod prom;
mod prom_rollups;
mod query_logs;
mod query_metrics;
pub mod read_limits;
pub mod read_params;
pub mod routes;
mod server;
mod settings;
mod sso;
pub mod tail;
mod tenants;
mod users;

use std::sync::Arc;
use std::time::Duration;

use axum::Router;
use axum::extract::DefaultBodyLimit;
use axum::extract::rejection::BytesRejection;
use axum::http::StatusCode;
use axum::middleware::{from_fn_with_state, map_response};
use axum::routing::{delete, get, post, put};
use bytes::Bytes;
use killkrill_store::Store;
use metrics_exporter_prometheus::PrometheusHandle;
use tower_http::decompression::RequestDecompressionLayer;
use tower_http::limit::RequestBodyLimitLayer;

pub use caller::Caller;
pub use error::ApiError;
pub use routes::{RouteSpec, Routes};
pub use server::{OPEN_CONNECTIONS, REJECTED_CONNECTIONS, serve};
pub use tail::TailHub;

use crate::auth::{Auth, Permission};

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
    /// Most memory the events decoded from one request may take
    /// (`http_ingest.max_output_bytes`).
    pub max_output_bytes: usize,
    /// Most samples or records one request may hold: `queue.max_events`
    /// for the memory and SQLite queues, which would refuse more anyway
    /// (parsers stop at it); unbounded for Redis (the output budget bounds
    /// it).
    pub max_request_events: usize,
    /// Limits of the read API.
    pub query: crate::config::QueryConfig,
    /// Live tails: the concurrency limit and the commit notification.
    pub tails: Arc<TailHub>,
    /// Authentication.
    pub auth: Arc<Auth>,
    /// The license (which enterprise features are on).
    pub license: Arc<crate::license::Licensing>,
    /// Single sign-on, when `[oidc] enabled`.
    pub oidc: Option<Arc<crate::oidc::Oidc>>,
    /// Rollup widths PromQL may read (empty: raw samples only); see
    /// [`prom::rollup_reads`].
    pub rollup_reads: Vec<killkrill_core::aggregate::Resolution>,
    /// Email confirmation and password reset, when `[smtp]` is set.
    pub email: Option<Arc<crate::email::Email>>,
    /// `scrape.deny_networks` as configured: `/api/v1/settings` refuses
    /// scrape targets written as addresses in them.
    pub scrape_deny_networks: Vec<String>,
}

/// The route groups, each with the permission its routes need.
fn groups(state: Option<&Arc<AppState>>, max_body_bytes: usize) -> Vec<(Permission, Routes)> {
    vec![
        (Permission::Public, public_routes()),
        (Permission::Authenticated, session_routes()),
        (Permission::Ingest, ingest_routes(max_body_bytes)),
        (Permission::Read, read_routes(state)),
        (Permission::Manage, manage_routes()),
        (Permission::Admin, admin_routes()),
    ]
}

/// Every route's path and the permission it needs.
pub fn route_table() -> Vec<RouteSpec> {
    groups(None, 1)
        .into_iter()
        .flat_map(|(permission, r)| {
            r.paths
                .into_iter()
                .map(move |path| RouteSpec { path, permission })
        })
        .collect()
}

/// The full router: the public operations routes, then every other group
/// behind authentication and its permission. Each group is built by its own
/// function so a layer that needs a permission applies to a whole group.
pub fn router(state: Arc<AppState>) -> Router {
    router_for(state, RouteGroups::ALL)
}

/// Which route groups a process serves besides the public ones (see
/// [`Roles`](super::Roles)).
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub struct RouteGroups {
    /// [`ingest_routes`] (receivers).
    pub ingest: bool,
    /// [`read_routes`] and the session, management and admin routes (API).
    pub read: bool,
}

impl RouteGroups {
    /// Every group (`serve`).
    pub const ALL: RouteGroups = RouteGroups {
        ingest: true,
        read: true,
    };
}

/// The router of one role set: the public routes always, the ingest routes
/// on receivers, the read and management routes on API processes; every
/// non-public group behind authentication and its permission.
pub fn router_for(state: Arc<AppState>, wanted: RouteGroups) -> Router {
    let mut public = if wanted.read {
        Router::new()
    } else {
        ops_routes().router
    };
    let mut protected = Router::new();
    for (perm, r) in groups(Some(&state), state.max_body_bytes) {
        let on = match perm {
            Permission::Public => wanted.read,
            Permission::Ingest => wanted.ingest,
            _ => wanted.read,
        };
        if !on || r.paths.is_empty() {
            continue; // axum refuses a route_layer on no routes
        }
        if perm == Permission::Public {
            public = public.merge(r.router);
        } else {
            protected = protected.merge(
                r.router
                    .route_layer(from_fn_with_state((state.clone(), perm), authn::require)),
            );
        }
    }
    if protected.has_routes() {
        let protected =
            protected.route_layer(from_fn_with_state(state.clone(), authn::authenticate));
        public = public.merge(protected);
    }
    public
        .layer(DefaultBodyLimit::disable())
        .layer(map_response(error::json_errors))
        .layer(map_response(grpc_status::grpc_errors))
        .with_state(state)
}

/// Health, readiness and the process's own metrics, and the two login
/// endpoints: answered to anyone.
fn public_routes() -> Routes {
    ops_routes().merge(login_routes())
}

/// Health, readiness and the process's own metrics: every role.
fn ops_routes() -> Routes {
    Routes::new()
        .route("/healthz", get(ops::healthz))
        .route("/readyz", get(ops::readyz))
        .route("/metrics", get(ops::metrics))
}

/// Password login, token refresh and single sign-on: only processes that serve the API
/// (a receiver or worker answers no login, so replicas facing senders do
/// not multiply the login attempts an attacker gets).
fn login_routes() -> Routes {
    Routes::new()
        .route("/api/v1/auth/login", post(auth_api::login))
        .route("/api/v1/auth/refresh", post(auth_api::refresh))
        .route("/api/v1/auth/oidc/login", get(sso::oidc_login))
        .route("/api/v1/auth/oidc/callback", get(sso::oidc_callback))
        // The emailed token is the credential; forgot reveals nothing.
        .route("/api/v1/auth/email/confirm", post(email_api::confirm))
        .route("/api/v1/auth/password/forgot", post(email_api::forgot))
        .route("/api/v1/auth/password/reset", post(email_api::reset))
        .layer(RequestBodyLimitLayer::new(authn::MAX_JSON_BYTES))
}

/// Any verified caller: its own session.
fn session_routes() -> Routes {
    Routes::new()
        .route("/api/v1/openapi.json", get(openapi::get_openapi))
        .route("/api/v1/auth/me", get(auth_api::me))
        .route("/api/v1/auth/logout", post(auth_api::logout))
        .route("/api/v1/auth/password", post(auth_api::change_password))
        .route("/api/v1/auth/totp/enrol", post(auth_api::totp_enrol))
        .route("/api/v1/auth/totp/confirm", post(auth_api::totp_confirm))
        .route("/api/v1/auth/email/resend", post(email_api::resend))
        .layer(RequestBodyLimitLayer::new(authn::MAX_JSON_BYTES))
}

/// Changing resources: API keys.
fn manage_routes() -> Routes {
    Routes::new()
        .route(
            "/api/v1/api-keys",
            get(api_keys::list).post(api_keys::create),
        )
        .route("/api/v1/api-keys/{id}", delete(api_keys::revoke))
        .layer(RequestBodyLimitLayer::new(authn::MAX_JSON_BYTES))
}

/// Users, tenants, the audit log.
fn admin_routes() -> Routes {
    Routes::new()
        .route("/api/v1/users", get(users::list).post(users::create))
        .route(
            "/api/v1/users/{id}",
            get(users::get_one)
                .patch(users::patch)
                .delete(users::delete),
        )
        .route("/api/v1/users/{id}/totp", delete(users::reset_totp))
        .route("/api/v1/tenants", get(tenants::list).post(tenants::create))
        .route("/api/v1/audit", get(tenants::audit))
        .route("/api/v1/license", get(sso::license))
        .route("/api/v1/settings", put(settings::put))
        .layer(RequestBodyLimitLayer::new(authn::MAX_JSON_BYTES))
}

/// Every route that accepts data.
fn ingest_routes(limit: usize) -> Routes {
    let decompress = || RequestDecompressionLayer::new().gzip(true).zstd(true);
    let plain = Routes::new()
        .route("/api/v1/logs", post(logs::post_logs))
        .route("/api/v1/import/prometheus", post(exposition::post_import))
        // The handler reads the grouping key from the raw path (see
        // `grouping_key`), not from these parameters.
        .route(
            "/metrics/job/{job}",
            post(exposition::push).put(exposition::push),
        )
        .route(
            "/metrics/job/{job}/{*labels}",
            post(exposition::push).put(exposition::push),
        )
        .route(
            "/metrics/job@base64/{job}",
            post(exposition::push).put(exposition::push),
        )
        .route(
            "/metrics/job@base64/{job}/{*labels}",
            post(exposition::push).put(exposition::push),
        )
        .layer(RequestBodyLimitLayer::new(limit))
        .layer(decompress());
    let loki = Routes::new()
        .route("/loki/api/v1/push", post(logs::post_loki))
        .layer(RequestBodyLimitLayer::new(limit))
        .layer(decompress().pass_through_unaccepted(true));
    let remote_write = Routes::new()
        .route("/api/v1/write", post(metrics_ingest::post_remote_write))
        .layer(RequestBodyLimitLayer::new(limit));
    // gRPC (`killkrill.v1.Ingest`): no decompression or body-limit layers;
    // tonic bounds the message size itself.
    Routes::new()
        .merge(plain)
        .merge(loki)
        .merge(remote_write)
        .route("/killkrill.v1.Ingest/{method}", post(grpc::ingest))
}

/// Every route that reads stored data (log and metric queries, the
/// Prometheus API, live tail, the gRPC query service). Every handler scopes
/// its reads to the [`Caller`]'s tenant. The Prometheus routes are built
/// over the state's store; without a state (for [`route_table`]) only their
/// paths are listed.
fn read_routes(state: Option<&Arc<AppState>>) -> Routes {
    let prom = state.map_or_else(axum::Router::new, prom::routes);
    Routes::new()
        .route("/api/v1/logs", get(query_logs::get_logs))
        .route("/api/v1/logs/volume", get(query_logs::get_volume))
        .route("/api/v1/logs/tail", get(tail::get_tail))
        .route("/api/v1/metrics", get(query_metrics::get_metrics))
        .route("/api/v1/settings", get(settings::get))
        .route("/killkrill.v1.Query/{method}", post(grpc::query))
        .merge_router(killkrill_query::API_PATHS, prom)
        // Reads carry no data, only a query (Prometheus's POST form, a
        // gRPC query message): bounded like the management bodies, but
        // large enough for generated PromQL.
        .layer(RequestBodyLimitLayer::new(MAX_READ_BODY_BYTES))
}

/// Largest request body of a read route (a PromQL POST form, a gRPC query).
pub const MAX_READ_BODY_BYTES: usize = 1 << 20;

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
/// ones. For parsers whose output is about the size of their input (JSON
/// logs); see [`decode_body`] for the others.
async fn parse_body<T: Send + 'static>(
    len: usize,
    f: impl FnOnce() -> Result<T, ApiError> + Send + 'static,
) -> Result<T, ApiError> {
    if len <= INLINE_PARSE_BYTES {
        return f();
    }
    tokio::task::spawn_blocking(f).await.map_err(join_error)?
}

/// Decoded output an inline decode may build before it moves to the
/// blocking pool.
const INLINE_OUTPUT_BYTES: usize = 1 << 20;

/// Runs a decoder whose output can be far larger than its body (remote
/// write, Loki: one label set copied into many samples or entries). The
/// decoder takes an output budget in bytes and charges it before copying.
///
/// Inline only when the *decoded* body (`decoded_len`: the snappy header's
/// announced length, not the compressed size) is small and the output stays
/// within [`INLINE_OUTPUT_BYTES`]; when that small budget is what stopped it,
/// the decode runs again on the blocking pool with the request's whole
/// budget `max_output` (the wasted inline attempt is bounded by the small
/// budget). Large bodies go to the pool at once.
async fn decode_body<T, E>(
    decoded_len: usize,
    max_output: usize,
    decode: impl Fn(usize) -> Result<T, E> + Send + 'static,
    over_budget: fn(&E) -> bool,
) -> Result<Result<T, E>, ApiError>
where
    T: Send + 'static,
    E: Send + 'static,
{
    if decoded_len <= INLINE_PARSE_BYTES {
        let small = max_output.min(INLINE_OUTPUT_BYTES);
        match decode(small) {
            Err(e) if small < max_output && over_budget(&e) => {}
            r => return Ok(r),
        }
    }
    tokio::task::spawn_blocking(move || decode(max_output))
        .await
        .map_err(join_error)
}

fn join_error(e: tokio::task::JoinError) -> ApiError {
    tracing::error!(error = %e, "parser task failed");
    ApiError::new(StatusCode::INTERNAL_SERVER_ERROR, "internal error", None)
}

fn content_type(headers: &axum::http::HeaderMap) -> Option<&str> {
    headers
        .get(axum::http::header::CONTENT_TYPE)
        .and_then(|v| v.to_str().ok())
}
