//! `/api/v1/auth/*`: login, refresh, logout, who am I, change my password.

use std::sync::Arc;

use axum::extract::State;
use axum::http::StatusCode;
use axum::response::{IntoResponse, Response};
use bytes::Bytes;
use serde::Deserialize;

use super::authn::{Source, json_body};
use super::{ApiError, AppState};
use crate::auth::{Credential, Permission, Principal, password};

const EP: &str = "auth";

#[derive(Deserialize)]
#[serde(deny_unknown_fields)]
struct Login {
    email: String,
    password: String,
    /// A TOTP code or a recovery code, for accounts with TOTP on.
    totp: Option<String>,
}

/// `POST /api/v1/auth/login` `{"email", "password"}` → tokens.
pub async fn login(
    State(s): State<Arc<AppState>>,
    src: Source,
    b: Bytes,
) -> Result<Response, ApiError> {
    let l: Login = json_body(EP, &b)?;
    let pair = s
        .auth
        .login(&l.email, &l.password, l.totp.as_deref(), src.0)
        .await
        .map_err(|e| ApiError::from(e).counted(EP))?;
    Ok(axum::Json(pair).into_response())
}

#[derive(Deserialize)]
#[serde(deny_unknown_fields)]
struct RefreshBody {
    refresh_token: String,
}

/// `POST /api/v1/auth/refresh` `{"refresh_token"}` → a new pair; the old
/// token is spent (presenting it again ends the session).
pub async fn refresh(
    State(s): State<Arc<AppState>>,
    src: Source,
    b: Bytes,
) -> Result<Response, ApiError> {
    let r: RefreshBody = json_body(EP, &b)?;
    let pair = s
        .auth
        .refresh(&r.refresh_token, src.0)
        .await
        .map_err(|e| ApiError::from(e).counted(EP))?;
    Ok(axum::Json(pair).into_response())
}

/// `POST /api/v1/auth/logout` `{"refresh_token"}` → 204; the session's
/// refresh tokens are revoked.
pub async fn logout(
    State(s): State<Arc<AppState>>,
    p: Principal,
    src: Source,
    b: Bytes,
) -> Result<Response, ApiError> {
    let r: RefreshBody = json_body(EP, &b)?;
    let n = s
        .auth
        .logout(&r.refresh_token)
        .await
        .map_err(ApiError::from)?;
    s.auth
        .audit(
            &p.tenant,
            &p.subject,
            "auth.logout",
            &p.subject,
            &src.text(),
            "ok",
            &format!("{n} tokens revoked"),
        )
        .await;
    Ok(StatusCode::NO_CONTENT.into_response())
}

/// `GET /api/v1/auth/me` → who the caller is and what it may do, and for
/// users whether their email is confirmed.
pub async fn me(State(s): State<Arc<AppState>>, p: Principal) -> Result<Response, ApiError> {
    let email_confirmed = match &p.credential {
        Credential::User { id, .. } => Some(
            s.auth
                .store()
                .email_confirmed_at(*id)
                .await
                .map_err(|e| ApiError::from(crate::auth::AuthError::Store(e)))?
                .is_some(),
        ),
        _ => None,
    };
    let perms: Vec<&str> = [
        Permission::Ingest,
        Permission::Read,
        Permission::Manage,
        Permission::Admin,
    ]
    .into_iter()
    .filter(|x| p.allows(*x))
    .map(Permission::as_str)
    .collect();
    let (kind, role, scopes, id) = match &p.credential {
        Credential::User { id, role } => ("user", Some(role.as_str()), None, Some(*id)),
        Credential::ApiKey { id, scopes } => (
            "api_key",
            None,
            Some(scopes.iter().map(|s| s.as_str()).collect::<Vec<_>>()),
            Some(*id),
        ),
        Credential::Anonymous => ("anonymous", None, None, None),
    };
    Ok(axum::Json(serde_json::json!({
        "subject": p.subject,
        "tenant": p.tenant.as_str(),
        "kind": kind,
        "id": id,
        "role": role,
        "scopes": scopes,
        "permissions": perms,
        "email_confirmed": email_confirmed,
    }))
    .into_response())
}

#[derive(Deserialize)]
#[serde(deny_unknown_fields)]
struct PasswordChange {
    current_password: String,
    new_password: String,
}

/// `POST /api/v1/auth/password` `{"current_password", "new_password"}` →
/// 204; every session of the user ends.
pub async fn change_password(
    State(s): State<Arc<AppState>>,
    p: Principal,
    src: Source,
    b: Bytes,
) -> Result<Response, ApiError> {
    let c: PasswordChange = json_body(EP, &b)?;
    let Credential::User { id, .. } = p.credential else {
        return Err(ApiError::bad_request(
            "only users have passwords",
            "this caller is not a user",
        )
        .counted(EP));
    };
    let u = s
        .auth
        .store()
        .user(id)
        .await
        .map_err(|e| ApiError::from(crate::auth::AuthError::Store(e)))?
        .ok_or_else(|| ApiError::new(StatusCode::NOT_FOUND, "not found", None))?;
    if !password::verify(c.current_password, Some(u.password_hash)).await {
        s.auth
            .audit(
                &p.tenant,
                &p.subject,
                "user.password",
                &p.subject,
                &src.text(),
                "denied",
                "wrong current password",
            )
            .await;
        return Err(ApiError::new(
            StatusCode::FORBIDDEN,
            "forbidden",
            Some("the current password is wrong".into()),
        )
        .counted(EP));
    }
    let r = s.auth.set_password(id, &c.new_password).await;
    s.auth
        .audit(
            &p.tenant,
            &p.subject,
            "user.password",
            &p.subject,
            &src.text(),
            if r.is_ok() { "ok" } else { "failed" },
            "",
        )
        .await;
    r.map_err(|e| ApiError::from(e).counted(EP))?;
    Ok(StatusCode::NO_CONTENT.into_response())
}

/// `POST /api/v1/auth/totp/enrol` → `{"secret", "otpauth_uri"}`: a pending
/// secret to add to an authenticator app (the URI is what a QR code holds).
/// Confirm with a code to turn it on.
pub async fn totp_enrol(
    State(s): State<Arc<AppState>>,
    p: Principal,
    src: Source,
) -> Result<Response, ApiError> {
    let u = own_user(&s, &p).await?;
    let r = s.auth.totp_enrol(&u).await;
    s.auth
        .audit(
            &p.tenant,
            &p.subject,
            "totp.enrol",
            &p.subject,
            &src.text(),
            if r.is_ok() { "ok" } else { "failed" },
            "",
        )
        .await;
    let (secret, uri) = r.map_err(|e| ApiError::from(e).counted(EP))?;
    Ok(axum::Json(serde_json::json!({ "secret": secret, "otpauth_uri": uri })).into_response())
}

#[derive(Deserialize)]
#[serde(deny_unknown_fields)]
struct Confirm {
    code: String,
}

/// `POST /api/v1/auth/totp/confirm` `{"code"}` → `{"recovery_codes": [...]}`
/// (shown once); from now on login needs `"totp"`.
pub async fn totp_confirm(
    State(s): State<Arc<AppState>>,
    p: Principal,
    src: Source,
    b: Bytes,
) -> Result<Response, ApiError> {
    let c: Confirm = json_body(EP, &b)?;
    let u = own_user(&s, &p).await?;
    let r = s.auth.totp_confirm(u.id, &c.code).await;
    s.auth
        .audit(
            &p.tenant,
            &p.subject,
            "totp.confirm",
            &p.subject,
            &src.text(),
            if r.is_ok() { "ok" } else { "failed" },
            "",
        )
        .await;
    let codes = r.map_err(|e| ApiError::from(e).counted(EP))?;
    Ok(axum::Json(serde_json::json!({ "recovery_codes": codes, "note": "each code works once; store them now" })).into_response())
}

async fn own_user(s: &AppState, p: &Principal) -> Result<killkrill_store::auth::UserRow, ApiError> {
    let Credential::User { id, .. } = p.credential else {
        return Err(ApiError::bad_request(
            "only users have a second factor",
            "this caller is not a user",
        )
        .counted(EP));
    };
    s.auth
        .store()
        .user(id)
        .await
        .map_err(|e| ApiError::from(crate::auth::AuthError::Store(e)))?
        .ok_or_else(|| ApiError::new(StatusCode::NOT_FOUND, "not found", None))
}
