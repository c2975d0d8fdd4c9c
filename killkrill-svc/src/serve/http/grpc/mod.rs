//! gRPC on the HTTP port: `killkrill.v1.Ingest` and `killkrill.v1.Query`.
//!
//! The tonic services are axum handlers on their gRPC paths
//! (`/killkrill.v1.Ingest/{method}` in the ingest route group,
//! `/killkrill.v1.Query/{method}` in the read group), so they share the port,
//! the permission layers of their group and the [`Caller`] with the REST
//! routes. axum's server speaks HTTP/1.1 and HTTP/2 (prior knowledge, what
//! gRPC clients send over plain TCP) on the same listener.
//!
//! Each call resolves its caller with [`caller_of`], the one place an
//! authentication layer's identity reaches gRPC: the handler extracts the
//! [`Caller`] exactly as REST handlers do and puts it into the request's
//! extensions, which tonic hands to the service.
//!
//! Bounds: a request message larger than `http_ingest.max_body_bytes` is
//! refused by tonic's decoder (`RESOURCE_EXHAUSTED`, before it is buffered
//! whole); a `PushMetrics` call is held to remote write's limits (series,
//! samples, labels per series, label lengths) and to the decoded-output
//! budget `http_ingest.max_output_bytes`, all checked before anything is
//! copied, and large pushes are converted on the blocking pool; `QueryLogs`,
//! `LogVolume` and `QueryMetrics` run under the same `[query]` limits and
//! timeout as their REST routes ([`read_limits`](super::read_limits));
//! PromQL runs under the engine's limits and timeout. Every refusal is counted in
//! `killkrill_grpc_requests_total{method, code}` with every success.

use std::sync::Arc;

use axum::extract::{Request, State};
use axum::response::{IntoResponse, Response};
use killkrill_core::pipeline::QueueError;
use killkrill_proto::killkrill::v1::ingest_server::IngestServer;
use killkrill_proto::killkrill::v1::query_server::QueryServer;
use metrics::counter;
use tonic::Status;
use tower::ServiceExt;

use super::{AppState, Caller};

mod ingest;
mod query;

use ingest::GrpcIngest;
pub use ingest::{logs_from_proto, samples_from_proto};
use query::GrpcQuery;

/// gRPC calls answered (`method`, `code`: `OK`, `InvalidArgument`, ...).
pub const GRPC_REQUESTS: &str = "killkrill_grpc_requests_total";

/// The caller of a gRPC call: the [`Caller`] the HTTP layers resolved (an
/// authentication layer's verified identity). The handlers below always put
/// one there; a call without one is refused (fails closed), never given a
/// default tenant.
///
/// # Errors
/// `UNAUTHENTICATED` when the request carries no caller.
pub fn caller_of(ext: &tonic::Extensions) -> Result<Caller, Status> {
    ext.get::<Caller>()
        .cloned()
        .ok_or_else(|| Status::unauthenticated("no caller resolved for this call"))
}

/// `POST /killkrill.v1.Ingest/{method}`.
pub async fn ingest(State(s): State<Arc<AppState>>, caller: Caller, mut req: Request) -> Response {
    req.extensions_mut().insert(caller);
    let limit = s.max_body_bytes;
    let svc = IngestServer::new(GrpcIngest { s })
        .max_decoding_message_size(limit)
        .max_encoding_message_size(limit);
    match svc.oneshot(req).await {
        Ok(r) => r.into_response(),
        Err(never) => match never {},
    }
}

/// `POST /killkrill.v1.Query/{method}`.
pub async fn query(State(s): State<Arc<AppState>>, caller: Caller, mut req: Request) -> Response {
    req.extensions_mut().insert(caller);
    let limit = s.max_body_bytes;
    let svc = QueryServer::new(GrpcQuery { s })
        .max_decoding_message_size(limit)
        // Responses are bounded by the page size and the engine's limits;
        // this is the last guard.
        .max_encoding_message_size(limit.max(64 << 20));
    match svc.oneshot(req).await {
        Ok(r) => r.into_response(),
        Err(never) => match never {},
    }
}

/// One call of `method`: resolves its caller, unwraps the message, runs
/// `f` and counts the outcome.
async fn call<Req, T, Fut>(
    method: &'static str,
    request: tonic::Request<Req>,
    f: impl FnOnce(Caller, Req) -> Fut,
) -> Result<tonic::Response<T>, Status>
where
    Fut: std::future::Future<Output = Result<T, Status>>,
{
    let r = match caller_of(request.extensions()) {
        Ok(caller) => f(caller, request.into_inner()).await,
        Err(e) => Err(e),
    };
    counted(method, r.map(tonic::Response::new))
}

/// Counts the outcome of `method`.
fn counted<T>(method: &'static str, r: Result<T, Status>) -> Result<T, Status> {
    let code = match &r {
        Ok(_) => "OK".to_owned(),
        Err(s) => format!("{:?}", s.code()),
    };
    counter!(GRPC_REQUESTS, "method" => method, "code" => code).increment(1);
    r
}

fn invalid(field: impl std::fmt::Display, problem: impl std::fmt::Display) -> Status {
    Status::invalid_argument(format!("{field}: {problem}"))
}

/// A queue refusal as a gRPC status.
fn queue_status(e: &QueueError) -> Status {
    match e {
        QueueError::Full { .. } => {
            Status::resource_exhausted("queue full, retry after a back-off (about 1 s)")
        }
        QueueError::TooLarge { size, limit, unit } => Status::resource_exhausted(format!(
            "the request holds {size} {unit}, more than the queue's limit of {limit}"
        )),
        QueueError::Closed => Status::unavailable("shutting down"),
        QueueError::Backend { message, .. } => {
            tracing::warn!(error = %message, "queue backend failed");
            Status::unavailable("queue unavailable")
        }
    }
}
