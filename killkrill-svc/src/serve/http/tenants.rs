//! `/api/v1/tenants` (system admins) and `/api/v1/audit` (admins: their
//! tenant's entries; system admins: any tenant's).

use std::sync::Arc;

use axum::extract::{Query, State};
use axum::http::StatusCode;
use axum::response::{IntoResponse, Response};
use bytes::Bytes;
use killkrill_core::event::Tenant;
use serde::Deserialize;

use super::authn::{Source, json_body};
use super::users::target_tenant;
use super::{ApiError, AppState};
use crate::auth::{AuthError, Principal, now_nanos};

fn system_only(s: &AppState, p: &Principal) -> Result<(), ApiError> {
    if p.is_system_admin(s.auth.system_tenant()) {
        Ok(())
    } else {
        Err(ApiError::new(
            StatusCode::FORBIDDEN,
            "forbidden",
            Some("tenants are managed by admins of the system tenant".into()),
        )
        .counted("tenants"))
    }
}

/// `GET /api/v1/tenants`.
pub async fn list(State(s): State<Arc<AppState>>, p: Principal) -> Result<Response, ApiError> {
    system_only(&s, &p)?;
    let ts = s
        .auth
        .store()
        .tenants()
        .await
        .map_err(|e| ApiError::from(AuthError::Store(e)))?;
    let v: Vec<_> = ts
        .iter()
        .map(|(t, at)| serde_json::json!({ "name": t.as_str(), "created_at_ns": at }))
        .collect();
    Ok(axum::Json(serde_json::json!({ "tenants": v })).into_response())
}

#[derive(Deserialize)]
#[serde(deny_unknown_fields)]
struct NewTenant {
    name: String,
}

/// `POST /api/v1/tenants` `{"name"}` → 201 (200 when it existed).
pub async fn create(
    State(s): State<Arc<AppState>>,
    p: Principal,
    src: Source,
    b: Bytes,
) -> Result<Response, ApiError> {
    system_only(&s, &p)?;
    let n: NewTenant = json_body("tenants", &b)?;
    let t = Tenant::new(&n.name).map_err(|e| {
        ApiError::bad_request("invalid tenant name", e.to_string()).counted("tenants")
    })?;
    let created = s
        .auth
        .store()
        .ensure_tenant(&t, now_nanos())
        .await
        .map_err(|e| ApiError::from(AuthError::Store(e)))?;
    s.auth
        .audit(
            &t,
            &p.subject,
            "tenant.create",
            t.as_str(),
            &src.text(),
            if created { "ok" } else { "exists" },
            "",
        )
        .await;
    let status = if created {
        StatusCode::CREATED
    } else {
        StatusCode::OK
    };
    Ok((
        status,
        axum::Json(serde_json::json!({ "name": t.as_str(), "created": created })),
    )
        .into_response())
}

/// `?tenant=&before=&limit=`.
#[derive(Deserialize)]
#[serde(deny_unknown_fields)]
pub struct AuditQuery {
    tenant: Option<String>,
    before: Option<i64>,
    limit: Option<usize>,
}

/// `GET /api/v1/audit[?tenant=T&before=ID&limit=N]`: newest first; page
/// with `before` = the last id seen.
pub async fn audit(
    State(s): State<Arc<AppState>>,
    p: Principal,
    Query(q): Query<AuditQuery>,
) -> Result<Response, ApiError> {
    let t = target_tenant(&s, &p, q.tenant.as_deref()).map_err(|e| e.counted("audit"))?;
    let limit = q.limit.unwrap_or(100).clamp(1, 1000);
    let rows = s
        .auth
        .store()
        .audit_log(Some(&t), q.before, limit)
        .await
        .map_err(|e| ApiError::from(AuthError::Store(e)))?;
    let v: Vec<_> = rows
        .iter()
        .map(|r| {
            serde_json::json!({
                "id": r.id,
                "at_ns": r.entry.at,
                "tenant": r.entry.tenant.as_str(),
                "actor": r.entry.actor,
                "action": r.entry.action,
                "target": r.entry.target,
                "source": r.entry.source,
                "result": r.entry.result,
                "detail": r.entry.detail,
            })
        })
        .collect();
    let next = rows.last().map(|r| r.id);
    Ok(axum::Json(serde_json::json!({ "entries": v, "next_before": next })).into_response())
}
