//! The authentication middleware, the per-group permission check, and the
//! mapping of [`AuthError`] to HTTP.
//!
//! [`authenticate`] wraps every route outside the public group: it verifies
//! the credentials and puts the [`Principal`] and the [`Caller`] into the
//! request's extensions (401 when there are none or they are bad). Each
//! route group then has a [`require`] layer with the group's permission
//! (403 when the caller lacks it). Both run before the body is read or
//! decompressed, so an unauthenticated client cannot make the server inflate
//! anything.

use std::net::{IpAddr, SocketAddr};
use std::sync::Arc;

use axum::extract::{ConnectInfo, FromRequestParts, Request, State};
use axum::http::request::Parts;
use axum::http::{HeaderValue, Method, StatusCode, header};
use axum::middleware::Next;
use axum::response::{IntoResponse, Response};
use bytes::Bytes;
use serde::de::DeserializeOwned;

use super::error::endpoint_of;
use super::{ApiError, AppState, Caller};
use crate::auth::{AuthError, Credential, Permission, Principal};

impl From<AuthError> for ApiError {
    fn from(e: AuthError) -> Self {
        match e {
            AuthError::Unauthenticated(why) => {
                tracing::info!(reason = %why, "credentials refused");
                ApiError::new(StatusCode::UNAUTHORIZED, "invalid credentials", None)
            }
            AuthError::SecondFactor => ApiError::new(
                StatusCode::UNAUTHORIZED,
                "second factor required",
                Some("this account has TOTP on: send \"totp\" with a code from the authenticator app or a recovery code".into()),
            ),
            AuthError::RateLimited { retry_after } => ApiError {
                retry_after: Some(retry_after),
                ..ApiError::new(
                    StatusCode::TOO_MANY_REQUESTS,
                    "too many failed logins, retry later",
                    None,
                )
            },
            AuthError::Forbidden(why) => {
                ApiError::new(StatusCode::FORBIDDEN, "forbidden", Some(why))
            }
            AuthError::Invalid(why) => ApiError::bad_request("invalid request", why),
            AuthError::NotFound(why) => {
                ApiError::new(StatusCode::NOT_FOUND, "not found", Some(why))
            }
            AuthError::Conflict(why) => {
                ApiError::new(StatusCode::CONFLICT, "already exists", Some(why))
            }
            AuthError::Store(e) => {
                tracing::warn!(error = %e, "auth store failed");
                ApiError {
                    retry_after: Some(5),
                    ..ApiError::new(
                        StatusCode::SERVICE_UNAVAILABLE,
                        "database unavailable",
                        None,
                    )
                }
            }
            AuthError::Internal(e) => {
                tracing::error!(error = %e, "auth internal error");
                ApiError::new(StatusCode::INTERNAL_SERVER_ERROR, "internal error", None)
            }
        }
    }
}

/// 401 with `WWW-Authenticate: Bearer`.
pub fn unauthorized(error: &str, detail: &str, path: &str) -> Response {
    let mut r = ApiError::new(StatusCode::UNAUTHORIZED, error, Some(detail.to_owned()))
        .counted(endpoint_of(path))
        .into_response();
    r.headers_mut()
        .insert(header::WWW_AUTHENTICATE, HeaderValue::from_static("Bearer"));
    r
}

/// The client's address, when the server knows it.
pub fn client_ip(req_ext: &axum::http::Extensions) -> Option<IpAddr> {
    req_ext.get::<ConnectInfo<SocketAddr>>().map(|c| c.0.ip())
}

/// Verifies the credentials of every non-public request.
pub async fn authenticate(
    State(s): State<Arc<AppState>>,
    mut req: Request,
    next: Next,
) -> Response {
    let principal = if s.auth.disabled() {
        Principal {
            tenant: s.ingest.default_tenant().clone(),
            subject: "anonymous".into(),
            credential: Credential::Anonymous,
        }
    } else {
        match s.auth.authenticate(req.headers()).await {
            Ok(Some(p)) => p,
            Ok(None) => {
                return unauthorized(
                    "authentication required",
                    "send Authorization: Bearer <access token or API key>, X-API-Key: <API key>, or Basic auth with the API key as password",
                    req.uri().path(),
                );
            }
            Err(AuthError::Unauthenticated(why)) => {
                tracing::info!(reason = %why, path = req.uri().path(), "credentials refused");
                return unauthorized("invalid credentials", &why_public(&why), req.uri().path());
            }
            Err(e) => {
                return ApiError::from(e)
                    .counted(endpoint_of(req.uri().path()))
                    .into_response();
            }
        }
    };
    req.extensions_mut().insert(Caller {
        tenant: principal.tenant.clone(),
        subject: principal.subject.clone(),
    });
    req.extensions_mut().insert(principal);
    next.run(req).await
}

/// What a client may learn about refused credentials: the kind of problem,
/// never whether a key or user exists.
fn why_public(why: &str) -> String {
    if why.starts_with("access token") {
        "the access token is invalid or expired".into()
    } else if why.contains("refresh") {
        "the refresh token is invalid".into()
    } else {
        "the credentials are invalid, expired or revoked".into()
    }
}

/// Refuses (403) callers without the group's permission; refused changes
/// (anything but GET) are audited.
pub async fn require(
    State((s, p)): State<(Arc<AppState>, Permission)>,
    req: Request,
    next: Next,
) -> Response {
    let Some(pr) = req.extensions().get::<Principal>().cloned() else {
        return unauthorized(
            "authentication required",
            "no verified caller",
            req.uri().path(),
        );
    };
    if pr.allows(p) {
        return next.run(req).await;
    }
    if req.method() != Method::GET {
        let src = client_ip(req.extensions()).map_or_else(|| "unknown".into(), |a| a.to_string());
        s.auth
            .audit(
                &pr.tenant,
                &pr.subject,
                &format!("{} {}", req.method(), req.uri().path()),
                req.uri().path(),
                &src,
                "denied",
                &format!("needs {}", p.as_str()),
            )
            .await;
    }
    ApiError::new(
        StatusCode::FORBIDDEN,
        "forbidden",
        Some(format!("this endpoint needs the {} permission", p.as_str())),
    )
    .counted(endpoint_of(req.uri().path()))
    .into_response()
}

/// The verified principal of a request (the middleware put it there).
impl FromRequestParts<Arc<AppState>> for Principal {
    type Rejection = Response;

    async fn from_request_parts(
        parts: &mut Parts,
        _: &Arc<AppState>,
    ) -> Result<Self, Self::Rejection> {
        parts.extensions.get::<Principal>().cloned().ok_or_else(|| {
            unauthorized(
                "authentication required",
                "no verified caller",
                parts.uri.path(),
            )
        })
    }
}

/// The client's address as text, for the audit log.
#[derive(Debug, Clone)]
pub struct Source(pub Option<IpAddr>);

impl Source {
    /// `1.2.3.4` or `unknown`.
    pub fn text(&self) -> String {
        self.0.map_or_else(|| "unknown".into(), |a| a.to_string())
    }
}

impl<S: Send + Sync> FromRequestParts<S> for Source {
    type Rejection = std::convert::Infallible;

    async fn from_request_parts(parts: &mut Parts, _: &S) -> Result<Self, Self::Rejection> {
        Ok(Source(client_ip(&parts.extensions)))
    }
}

/// Largest JSON body of the auth and management endpoints.
pub const MAX_JSON_BYTES: usize = 64 * 1024;

/// Parses a small JSON body, naming the problem.
///
/// # Errors
/// 400 with serde's message (line, column, field).
pub fn json_body<T: DeserializeOwned>(endpoint: &'static str, b: &Bytes) -> Result<T, ApiError> {
    serde_json::from_slice(b)
        .map_err(|e| ApiError::bad_request("invalid JSON body", e.to_string()).counted(endpoint))
}
