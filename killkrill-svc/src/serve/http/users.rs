//! `/api/v1/users`: user management (admins). An admin manages the users
//! of its own tenant; an admin of the system tenant (the configured default
//! tenant) manages every tenant. Every change is audited; a role or
//! password change ends the user's sessions.

use std::sync::Arc;

use axum::extract::{Path, Query, State};
use axum::http::StatusCode;
use axum::response::{IntoResponse, Response};
use bytes::Bytes;
use killkrill_core::event::Tenant;
use killkrill_store::auth::{Role, UserRow};
use serde::Deserialize;

use super::authn::{Source, json_body};
use super::{ApiError, AppState};
use crate::auth::{AuthError, Principal};

const EP: &str = "users";

/// The tenant a management request acts in: the caller's own, or (system
/// admins only) the one asked for.
pub fn target_tenant(s: &AppState, p: &Principal, asked: Option<&str>) -> Result<Tenant, ApiError> {
    let Some(name) = asked else {
        return Ok(p.tenant.clone());
    };
    let t =
        Tenant::new(name).map_err(|e| ApiError::bad_request("invalid tenant", e.to_string()))?;
    if t != p.tenant && !p.is_system_admin(s.auth.system_tenant()) {
        return Err(ApiError::new(
            StatusCode::FORBIDDEN,
            "forbidden",
            Some("only admins of the system tenant act in other tenants".into()),
        ));
    }
    Ok(t)
}

/// A user as shown (never the hash).
pub fn user_json(u: &UserRow) -> serde_json::Value {
    serde_json::json!({
        "id": u.id,
        "email": u.email,
        "tenant": u.tenant.as_str(),
        "role": u.role.as_str(),
        "locked": u.locked_until > crate::auth::now_nanos(),
        "created_at_ns": u.created_at,
    })
}

fn store_err(e: killkrill_core::storage::StoreError) -> ApiError {
    ApiError::from(AuthError::Store(e))
}

/// `?tenant=`.
#[derive(Deserialize)]
#[serde(deny_unknown_fields)]
pub struct TenantQuery {
    tenant: Option<String>,
}

impl TenantQuery {
    /// The tenant asked for.
    pub fn tenant(&self) -> Option<&str> {
        self.tenant.as_deref()
    }
}

/// `GET /api/v1/users[?tenant=T]`.
pub async fn list(
    State(s): State<Arc<AppState>>,
    p: Principal,
    Query(q): Query<TenantQuery>,
) -> Result<Response, ApiError> {
    let t = target_tenant(&s, &p, q.tenant.as_deref()).map_err(|e| e.counted(EP))?;
    let users = s.auth.store().users(Some(&t)).await.map_err(store_err)?;
    Ok(
        axum::Json(serde_json::json!({ "users": users.iter().map(user_json).collect::<Vec<_>>() }))
            .into_response(),
    )
}

#[derive(Deserialize)]
#[serde(deny_unknown_fields)]
struct NewUserBody {
    email: String,
    password: String,
    role: String,
    tenant: Option<String>,
}

/// `POST /api/v1/users` `{"email", "password", "role", "tenant"?}` → 201.
pub async fn create(
    State(s): State<Arc<AppState>>,
    p: Principal,
    src: Source,
    b: Bytes,
) -> Result<Response, ApiError> {
    let n: NewUserBody = json_body(EP, &b)?;
    let role: Role = n
        .role
        .parse()
        .map_err(|e: String| ApiError::bad_request("invalid role", e).counted(EP))?;
    let t = target_tenant(&s, &p, n.tenant.as_deref()).map_err(|e| e.counted(EP))?;
    let r = s.auth.create_user(&n.email, &n.password, role, &t).await;
    let (result, detail) = match &r {
        Ok(id) => ("ok", format!("id {id}, role {role}")),
        Err(e) => ("failed", e.to_string()),
    };
    s.auth
        .audit(
            &t,
            &p.subject,
            "user.create",
            &n.email,
            &src.text(),
            result,
            &detail,
        )
        .await;
    let id = r.map_err(|e| ApiError::from(e).counted(EP))?;
    let confirmation = super::email_api::after_create(&s, id).await;
    Ok((
        StatusCode::CREATED,
        axum::Json(serde_json::json!({ "id": id, "email": n.email, "tenant": t.as_str(), "role": role.as_str(), "confirmation_mail": confirmation })),
    )
        .into_response())
}

/// The user `id`, when the caller may manage it (else 404, so ids of other
/// tenants are not confirmed).
async fn visible_user(s: &AppState, p: &Principal, id: i64) -> Result<UserRow, ApiError> {
    let u = s.auth.store().user(id).await.map_err(store_err)?;
    match u {
        Some(u) if u.tenant == p.tenant || p.is_system_admin(s.auth.system_tenant()) => Ok(u),
        _ => Err(ApiError::new(
            StatusCode::NOT_FOUND,
            "not found",
            Some(format!("no user {id}")),
        )
        .counted(EP)),
    }
}

/// `GET /api/v1/users/{id}`.
pub async fn get_one(
    State(s): State<Arc<AppState>>,
    p: Principal,
    Path(id): Path<i64>,
) -> Result<Response, ApiError> {
    let u = visible_user(&s, &p, id).await?;
    Ok(axum::Json(user_json(&u)).into_response())
}

#[derive(Deserialize)]
#[serde(deny_unknown_fields)]
struct PatchBody {
    role: Option<String>,
    password: Option<String>,
}

/// `PATCH /api/v1/users/{id}` `{"role"?, "password"?}`: either change ends
/// the user's sessions.
pub async fn patch(
    State(s): State<Arc<AppState>>,
    p: Principal,
    src: Source,
    Path(id): Path<i64>,
    b: Bytes,
) -> Result<Response, ApiError> {
    let body: PatchBody = json_body(EP, &b)?;
    let u = visible_user(&s, &p, id).await?;
    if body.role.is_none() && body.password.is_none() {
        return Err(
            ApiError::bad_request("nothing to change", "send role and/or password").counted(EP),
        );
    }
    if let Some(role) = &body.role {
        let role: Role = role
            .parse()
            .map_err(|e: String| ApiError::bad_request("invalid role", e).counted(EP))?;
        let r = s.auth.set_role(id, role).await;
        s.auth
            .audit(
                &u.tenant,
                &p.subject,
                "user.role",
                &u.email,
                &src.text(),
                if r.is_ok() { "ok" } else { "failed" },
                &format!("{} -> {role}", u.role),
            )
            .await;
        r.map_err(|e| ApiError::from(e).counted(EP))?;
    }
    if let Some(pw) = &body.password {
        let r = s.auth.set_password(id, pw).await;
        let detail = r
            .as_ref()
            .err()
            .map(ToString::to_string)
            .unwrap_or_default();
        s.auth
            .audit(
                &u.tenant,
                &p.subject,
                "user.password",
                &u.email,
                &src.text(),
                if r.is_ok() { "ok" } else { "failed" },
                &detail,
            )
            .await;
        r.map_err(|e| ApiError::from(e).counted(EP))?;
    }
    let u = visible_user(&s, &p, id).await?;
    Ok(axum::Json(user_json(&u)).into_response())
}

/// `DELETE /api/v1/users/{id}` → 204 (not yourself).
pub async fn delete(
    State(s): State<Arc<AppState>>,
    p: Principal,
    src: Source,
    Path(id): Path<i64>,
) -> Result<Response, ApiError> {
    let u = visible_user(&s, &p, id).await?;
    if matches!(p.credential, crate::auth::Credential::User { id: me, .. } if me == id) {
        return Err(
            ApiError::bad_request("cannot delete yourself", "ask another admin").counted(EP),
        );
    }
    let ok = s.auth.store().delete_user(id).await.map_err(store_err)?;
    s.auth
        .audit(
            &u.tenant,
            &p.subject,
            "user.delete",
            &u.email,
            &src.text(),
            if ok { "ok" } else { "failed" },
            "",
        )
        .await;
    Ok(StatusCode::NO_CONTENT.into_response())
}

/// `DELETE /api/v1/users/{id}/totp` → 204: turns the user's TOTP off and
/// deletes its recovery codes (a lost phone); the user's sessions end.
pub async fn reset_totp(
    State(s): State<Arc<AppState>>,
    p: Principal,
    src: Source,
    Path(id): Path<i64>,
) -> Result<Response, ApiError> {
    let u = visible_user(&s, &p, id).await?;
    s.auth
        .store()
        .set_totp(id, None, false)
        .await
        .map_err(store_err)?;
    s.auth.store().end_sessions(id).await.map_err(store_err)?;
    s.auth
        .audit(
            &u.tenant,
            &p.subject,
            "totp.reset",
            &u.email,
            &src.text(),
            "ok",
            "",
        )
        .await;
    Ok(StatusCode::NO_CONTENT.into_response())
}
