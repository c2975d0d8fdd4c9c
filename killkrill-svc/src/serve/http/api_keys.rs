//! `/api/v1/api-keys`: machine credentials (admins and maintainers). The
//! key is in the creation answer only; lists show its first characters.
//! Only admins create keys with the `admin` scope.

use std::sync::Arc;

use axum::extract::{Path, Query, State};
use axum::http::StatusCode;
use axum::response::{IntoResponse, Response};
use bytes::Bytes;
use killkrill_store::auth::{ApiKeyRow, Scope};
use serde::Deserialize;

use super::authn::{Source, json_body};
use super::users::{TenantQuery, target_tenant};
use super::{ApiError, AppState};
use crate::auth::{AuthError, Permission, Principal, now_nanos};

const EP: &str = "api_keys";

fn key_json(k: &ApiKeyRow) -> serde_json::Value {
    serde_json::json!({
        "id": k.id,
        "name": k.name,
        "prefix": k.prefix,
        "tenant": k.tenant.as_str(),
        "scopes": k.scopes.iter().map(|s| s.as_str()).collect::<Vec<_>>(),
        "expires_at_ns": k.expires_at,
        "revoked": k.revoked,
        "created_by": k.created_by,
        "created_at_ns": k.created_at,
    })
}

/// `GET /api/v1/api-keys[?tenant=T]`.
pub async fn list(
    State(s): State<Arc<AppState>>,
    p: Principal,
    Query(q): Query<TenantQuery>,
) -> Result<Response, ApiError> {
    let t = target_tenant(&s, &p, q_tenant(&q)).map_err(|e| e.counted(EP))?;
    let keys = s
        .auth
        .store()
        .api_keys(Some(&t))
        .await
        .map_err(|e| ApiError::from(AuthError::Store(e)))?;
    Ok(
        axum::Json(
            serde_json::json!({ "api_keys": keys.iter().map(key_json).collect::<Vec<_>>() }),
        )
        .into_response(),
    )
}

fn q_tenant(q: &TenantQuery) -> Option<&str> {
    q.tenant()
}

#[derive(Deserialize)]
#[serde(deny_unknown_fields)]
struct NewKey {
    name: String,
    scopes: Vec<String>,
    tenant: Option<String>,
    /// Lifetime in seconds; none means no expiry.
    expires_in_secs: Option<u64>,
}

/// `POST /api/v1/api-keys` `{"name", "scopes": [...], "tenant"?,
/// "expires_in_secs"?}` → 201 with the key (shown this once).
pub async fn create(
    State(s): State<Arc<AppState>>,
    p: Principal,
    src: Source,
    b: Bytes,
) -> Result<Response, ApiError> {
    let n: NewKey = json_body(EP, &b)?;
    let scopes = Scope::parse_list(&n.scopes.join(","))
        .map_err(|e| ApiError::bad_request("invalid scopes", e).counted(EP))?;
    if scopes.contains(&Scope::Admin) && !p.allows(Permission::Admin) {
        return Err(ApiError::new(
            StatusCode::FORBIDDEN,
            "forbidden",
            Some("only admins create keys with the admin scope".into()),
        )
        .counted(EP));
    }
    let t = target_tenant(&s, &p, n.tenant.as_deref()).map_err(|e| e.counted(EP))?;
    let expires_at = match n.expires_in_secs {
        Some(secs) if secs == 0 || secs > 10 * 365 * 24 * 3600 => {
            return Err(ApiError::bad_request(
                "invalid expires_in_secs",
                "must be between 1 and 10 years",
            )
            .counted(EP));
        }
        Some(secs) => Some(now_nanos() + i64::try_from(secs).unwrap_or(0) * 1_000_000_000),
        None => None,
    };
    let r = s
        .auth
        .create_api_key(&t, &n.name, scopes.clone(), expires_at, &p.subject)
        .await;
    let (result, detail) = match &r {
        Ok((id, _)) => ("ok", format!("id {id}, scopes {}", Scope::join(&scopes))),
        Err(e) => ("failed", e.to_string()),
    };
    s.auth
        .audit(
            &t,
            &p.subject,
            "apikey.create",
            &n.name,
            &src.text(),
            result,
            &detail,
        )
        .await;
    let (id, key) = r.map_err(|e| ApiError::from(e).counted(EP))?;
    Ok((
        StatusCode::CREATED,
        axum::Json(serde_json::json!({
            "id": id,
            "name": n.name,
            "tenant": t.as_str(),
            "scopes": scopes.iter().map(|s| s.as_str()).collect::<Vec<_>>(),
            "expires_at_ns": expires_at,
            "key": key,
            "note": "the key is shown this once; store it now",
        })),
    )
        .into_response())
}

/// `DELETE /api/v1/api-keys/{id}` → 204 (404 for a key of another tenant).
pub async fn revoke(
    State(s): State<Arc<AppState>>,
    p: Principal,
    src: Source,
    Path(id): Path<i64>,
) -> Result<Response, ApiError> {
    let scope = (!p.is_system_admin(s.auth.system_tenant())).then_some(&p.tenant);
    let ok = s.auth.revoke_api_key(id, scope).await?;
    s.auth
        .audit(
            &p.tenant,
            &p.subject,
            "apikey.revoke",
            &id.to_string(),
            &src.text(),
            if ok { "ok" } else { "not_found" },
            "",
        )
        .await;
    if !ok {
        return Err(ApiError::new(
            StatusCode::NOT_FOUND,
            "not found",
            Some(format!("no live API key {id}")),
        )
        .counted(EP));
    }
    Ok(StatusCode::NO_CONTENT.into_response())
}
