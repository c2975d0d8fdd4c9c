//! `/api/v1/auth/email/*` and `/api/v1/auth/password/{forgot,reset}`:
//! email confirmation and password reset (see [`crate::email`]).
//!
//! Without `[smtp]` every one of them answers 501 `{"error": "email is not
//! configured"}` and stores nothing.

use std::sync::Arc;

use axum::extract::State;
use axum::http::StatusCode;
use axum::response::{IntoResponse, Response};
use bytes::Bytes;
use serde::Deserialize;

use super::authn::{Source, json_body};
use super::{ApiError, AppState};
use crate::auth::{AuthError, Credential, Principal};
use crate::email::{Email, EmailError};

const EP: &str = "auth";

fn email_of(s: &AppState) -> Result<&Arc<Email>, ApiError> {
    s.email.as_ref().ok_or_else(|| {
        ApiError::new(
            StatusCode::NOT_IMPLEMENTED,
            "email is not configured",
            Some(
                "this server has no [smtp] section, so email confirmation and password reset are off; an administrator can set a password with `killkrill user passwd` or PATCH /api/v1/users/{id}".into(),
            ),
        )
        .counted(EP)
    })
}

impl From<EmailError> for ApiError {
    fn from(e: EmailError) -> Self {
        match e {
            EmailError::BadToken => ApiError::bad_request(
                "invalid or expired token",
                "the token is unknown, already used, expired, or not for this action; ask for a new mail",
            ),
            EmailError::RateLimited { retry_after } => ApiError {
                retry_after: Some(retry_after),
                ..ApiError::new(
                    StatusCode::TOO_MANY_REQUESTS,
                    "too many requests, retry later",
                    Some(format!("retry in {retry_after} s")),
                )
            },
            EmailError::AlreadyConfirmed => {
                ApiError::new(StatusCode::CONFLICT, "the email is already confirmed", None)
            }
            EmailError::Auth(e) => ApiError::from(e),
        }
    }
}

#[derive(Deserialize)]
#[serde(deny_unknown_fields)]
struct TokenBody {
    token: String,
}

/// `POST /api/v1/auth/email/confirm` `{"token"}` → 200
/// `{"email", "email_confirmed": true}`. Public: the token is the
/// credential.
pub async fn confirm(
    State(s): State<Arc<AppState>>,
    src: Source,
    b: Bytes,
) -> Result<Response, ApiError> {
    let email = email_of(&s)?;
    let t: TokenBody = json_body(EP, &b)?;
    match email.confirm(&s.auth, &t.token).await {
        Ok(u) => {
            s.auth
                .audit(
                    &u.tenant,
                    &u.email,
                    "user.email_confirm",
                    &u.email,
                    &src.text(),
                    "ok",
                    "",
                )
                .await;
            Ok(
                axum::Json(serde_json::json!({ "email": u.email, "email_confirmed": true }))
                    .into_response(),
            )
        }
        Err(e) => {
            if matches!(e, EmailError::BadToken) {
                s.auth
                    .audit(
                        s.auth.system_tenant(),
                        "anonymous",
                        "user.email_confirm",
                        "",
                        &src.text(),
                        "denied",
                        "invalid or expired token",
                    )
                    .await;
            }
            Err(ApiError::from(e).counted(EP))
        }
    }
}

/// `POST /api/v1/auth/email/resend` → 202 `{"status": "queued"}`: a new
/// confirmation link for the calling user (older links stop working).
/// 409 when already confirmed, 429 over `smtp.resend_per_user`.
pub async fn resend(
    State(s): State<Arc<AppState>>,
    p: Principal,
    src: Source,
) -> Result<Response, ApiError> {
    let email = email_of(&s)?;
    let Credential::User { id, .. } = p.credential else {
        return Err(ApiError::bad_request(
            "only users have an email address",
            "this caller is not a user",
        )
        .counted(EP));
    };
    let r = email.resend(&s.auth, id).await;
    s.auth
        .audit(
            &p.tenant,
            &p.subject,
            "user.email_resend",
            &p.subject,
            &src.text(),
            match &r {
                Ok(true) => "ok",
                Err(EmailError::RateLimited { .. }) => "denied",
                _ => "failed",
            },
            match &r {
                Ok(true) => "confirmation mail queued",
                Ok(false) => "confirmation mail not queued",
                Err(EmailError::RateLimited { .. }) => "rate limited",
                Err(EmailError::AlreadyConfirmed) => "already confirmed",
                Err(_) => "error",
            },
        )
        .await;
    match r {
        Ok(true) => Ok((
            StatusCode::ACCEPTED,
            axum::Json(serde_json::json!({ "status": "queued" })),
        )
            .into_response()),
        Ok(false) => Err(ApiError {
            retry_after: Some(30),
            ..ApiError::new(
                StatusCode::SERVICE_UNAVAILABLE,
                "the mail could not be queued, retry later",
                None,
            )
        }
        .counted(EP)),
        Err(e) => Err(ApiError::from(e).counted(EP)),
    }
}

#[derive(Deserialize)]
#[serde(deny_unknown_fields)]
struct ForgotBody {
    email: String,
}

/// What `forgot` answers, whoever asks.
pub const FORGOT_ANSWER: &str =
    "if an account with this email exists, a password reset link has been sent to it";

/// `POST /api/v1/auth/password/forgot` `{"email"}` → 202, the same body
/// whether or not the account exists; 429 over the per-address or
/// per-email limit.
pub async fn forgot(
    State(s): State<Arc<AppState>>,
    src: Source,
    b: Bytes,
) -> Result<Response, ApiError> {
    let email = email_of(&s)?.clone();
    let f: ForgotBody = json_body(EP, &b)?;
    crate::auth::Auth::check_email(&f.email).map_err(|e| ApiError::from(e).counted(EP))?;
    if let Err(e) = email.check_forgot_limits(&f.email, src.0) {
        s.auth
            .audit(
                s.auth.system_tenant(),
                &f.email,
                "auth.password_forgot",
                &f.email,
                &src.text(),
                "denied",
                "rate limited",
            )
            .await;
        return Err(ApiError::from(e).counted(EP));
    }
    // The lookup and the mail happen after the answer, so the answer's
    // timing does not tell whether the account exists.
    let auth = s.auth.clone();
    let source = src.text();
    tokio::spawn(async move { email.forgot(&auth, &f.email, &source).await });
    Ok((
        StatusCode::ACCEPTED,
        axum::Json(serde_json::json!({ "status": "accepted", "detail": FORGOT_ANSWER })),
    )
        .into_response())
}

#[derive(Deserialize)]
#[serde(deny_unknown_fields)]
struct ResetBody {
    token: String,
    new_password: String,
}

/// `POST /api/v1/auth/password/reset` `{"token", "new_password"}` → 204:
/// the password is set and every session of the user ends. 400 for a bad
/// token (unknown, used, expired, another purpose) or a weak password (the
/// token then still works).
pub async fn reset(
    State(s): State<Arc<AppState>>,
    src: Source,
    b: Bytes,
) -> Result<Response, ApiError> {
    let email = email_of(&s)?;
    let r: ResetBody = json_body(EP, &b)?;
    match email.reset(&s.auth, &r.token, &r.new_password).await {
        Ok(u) => {
            s.auth
                .audit(
                    &u.tenant,
                    &u.email,
                    "user.password_reset",
                    &u.email,
                    &src.text(),
                    "ok",
                    "password set with an emailed token; sessions revoked",
                )
                .await;
            Ok(StatusCode::NO_CONTENT.into_response())
        }
        Err(e) => {
            let detail = match &e {
                EmailError::BadToken => "invalid or expired token",
                EmailError::Auth(AuthError::Invalid(_)) => "password refused by the policy",
                _ => "error",
            };
            s.auth
                .audit(
                    s.auth.system_tenant(),
                    "anonymous",
                    "user.password_reset",
                    "",
                    &src.text(),
                    "denied",
                    detail,
                )
                .await;
            Err(ApiError::from(e).counted(EP))
        }
    }
}

/// After `POST /api/v1/users`: mails the new user a confirmation link when
/// email is on. `"queued"`, `"not_queued"` or `"off"`, for the answer; a
/// failure is logged, never fails the creation.
pub(super) async fn after_create(s: &AppState, id: i64) -> &'static str {
    let Some(email) = &s.email else {
        return "off";
    };
    let r = async {
        let u = s
            .auth
            .store()
            .user(id)
            .await?
            .ok_or_else(|| AuthError::NotFound(format!("user {id}")))?;
        email.send_confirmation(&s.auth, &u).await
    }
    .await;
    match r {
        Ok(true) => "queued",
        Ok(false) => "not_queued",
        Err(e) => {
            tracing::warn!(error = %e, user = id, "confirmation mail not queued");
            "not_queued"
        }
    }
}
