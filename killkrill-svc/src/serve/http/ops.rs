//! `/healthz`, `/readyz` and `/metrics`.

use std::sync::Arc;

use axum::extract::State;
use axum::http::{StatusCode, header};
use axum::response::{IntoResponse, Response};
use killkrill_store::Backend;

use super::{ApiError, AppState};

/// Alive: the process answers.
pub async fn healthz() -> &'static str {
    "ok\n"
}

/// Ready: the database answers a query and the queue its stats.
pub async fn readyz(State(s): State<Arc<AppState>>) -> Response {
    let db = ping(&s).await;
    let queue = s.ingest.queue().stats().await;
    match (db, queue) {
        (Ok(()), Ok(q)) => (
            StatusCode::OK,
            axum::Json(serde_json::json!({
                "status": "ready",
                "queue": {"batches": q.batches, "events": q.events, "in_flight": q.in_flight},
            })),
        )
            .into_response(),
        (Err(e), _) => {
            tracing::warn!(error = %e, "readiness: database");
            ApiError::new(
                StatusCode::SERVICE_UNAVAILABLE,
                "not ready",
                Some("database unreachable".into()),
            )
            .into_response()
        }
        (_, Err(e)) => {
            tracing::warn!(error = %e, "readiness: queue");
            ApiError::new(
                StatusCode::SERVICE_UNAVAILABLE,
                "not ready",
                Some("queue unavailable".into()),
            )
            .into_response()
        }
    }
}

async fn ping(s: &AppState) -> Result<(), sqlx::Error> {
    const SQL: &str = "SELECT 1";
    match s.store.backend() {
        Backend::Postgres(p) => sqlx::query(SQL).execute(p).await.map(|_| ()),
        Backend::MySql(p) => sqlx::query(SQL).execute(p).await.map(|_| ()),
        Backend::Sqlite { reader, .. } => sqlx::query(SQL).execute(reader).await.map(|_| ()),
    }
}

/// Prometheus exposition of the self-metrics.
pub async fn metrics(State(s): State<Arc<AppState>>) -> Response {
    let body = s.metrics.as_ref().map(|h| h.render()).unwrap_or_default();
    (
        [(
            header::CONTENT_TYPE,
            "text/plain; version=0.0.4; charset=utf-8",
        )],
        body,
    )
        .into_response()
}
