//! `GET /api/v1/license` (admin) and the OpenID Connect routes
//! `GET /api/v1/auth/oidc/login` and `GET /api/v1/auth/oidc/callback`
//! (public: they are how a caller without credentials gets them).
//!
//! Both SSO routes first ask the license for `sso_oidc` (403 naming the
//! feature when it is missing), then need `[oidc] enabled` (501 otherwise).
//! The callback answers the token pair as JSON (`Cache-Control: no-store`),
//! or, with `oidc.frontend_redirect` set, a 302 to it with the pair in the
//! URL fragment, which browsers do not send to servers.

use std::sync::Arc;

use axum::extract::{Query, State};
use axum::http::{HeaderValue, StatusCode, header};
use axum::response::{IntoResponse, Response};
use killkrill_store::auth::{NewUser, UserRow};
use metrics::counter;
use serde::Deserialize;

use super::authn::Source;
use super::{ApiError, AppState};
use crate::auth::{AuthError, TokenPair};
use crate::license::FEATURE_SSO_OIDC;
use crate::oidc::{Identity, Oidc, OidcError, SSO_HASH_PREFIX};

const EP: &str = "auth";
/// Counter of SSO logins, by result.
pub const SSO_LOGINS: &str = "killkrill_auth_sso_logins_total";

/// `GET /api/v1/license` → the license state (key masked).
pub async fn license(State(s): State<Arc<AppState>>) -> Response {
    axum::Json(s.license.view()).into_response()
}

fn gate(s: &AppState) -> Result<&Arc<Oidc>, ApiError> {
    if !s.license.allows(FEATURE_SSO_OIDC) {
        counter!(SSO_LOGINS, "result" => "unlicensed").increment(1);
        return Err(ApiError::new(
            StatusCode::FORBIDDEN,
            "license lacks feature",
            Some(format!(
                "the license does not include the {FEATURE_SSO_OIDC} feature (single sign-on); see GET /api/v1/license"
            )),
        )
        .counted(EP));
    }
    s.oidc.as_ref().ok_or_else(|| {
        ApiError::new(
            StatusCode::NOT_IMPLEMENTED,
            "single sign-on is not configured",
            Some(
                "set [oidc] enabled = true with issuer, client_id, redirect_uri and role_mapping"
                    .into(),
            ),
        )
        .counted(EP)
    })
}

fn no_store(mut r: Response) -> Response {
    r.headers_mut()
        .insert(header::CACHE_CONTROL, HeaderValue::from_static("no-store"));
    r
}

fn redirect(to: &str) -> Result<Response, ApiError> {
    let loc = HeaderValue::from_str(to).map_err(|_| {
        ApiError::new(
            StatusCode::BAD_GATEWAY,
            "identity provider",
            Some("the authorization URL is not a valid header value".into()),
        )
    })?;
    let mut r = StatusCode::FOUND.into_response();
    r.headers_mut().insert(header::LOCATION, loc);
    Ok(no_store(r))
}

fn oidc_error(e: &OidcError) -> ApiError {
    let (status, error, detail) = match e {
        OidcError::BadState => (
            StatusCode::BAD_REQUEST,
            "invalid login state",
            "the state is unknown, expired or already used: start again at /api/v1/auth/oidc/login"
                .to_owned(),
        ),
        OidcError::BadRequest(d) => (StatusCode::BAD_REQUEST, "invalid callback", d.clone()),
        OidcError::Provider(d) => (
            StatusCode::BAD_GATEWAY,
            "identity provider error",
            d.clone(),
        ),
        OidcError::Token(d) => {
            tracing::warn!(reason = %d, "SSO: ID token rejected");
            (
                StatusCode::UNAUTHORIZED,
                "invalid ID token",
                "the identity provider's ID token did not verify".to_owned(),
            )
        }
        OidcError::NoRole => (
            StatusCode::FORBIDDEN,
            "forbidden",
            "none of your groups is mapped to a Killkrill role".to_owned(),
        ),
        OidcError::Busy => {
            return ApiError {
                retry_after: Some(5),
                ..ApiError::new(
                    StatusCode::SERVICE_UNAVAILABLE,
                    "too many logins in progress",
                    Some(
                        "oidc.max_pending single sign-on logins are in progress; try again shortly"
                            .into(),
                    ),
                )
            }
            .counted(EP);
        }
        OidcError::TooManyFromAddress { retry_after } => {
            return ApiError {
                retry_after: Some(*retry_after),
                ..ApiError::new(
                    StatusCode::TOO_MANY_REQUESTS,
                    "too many logins from this address",
                    Some(
                        "this address began oidc.max_pending_per_address single sign-on logins \
                         within oidc.state_ttl_secs; finish one or try again later"
                            .into(),
                    ),
                )
            }
            .counted(EP);
        }
        OidcError::Store(d) => {
            tracing::warn!(error = %d, "SSO: the login state could not be stored or read");
            return ApiError {
                retry_after: Some(5),
                ..ApiError::new(
                    StatusCode::SERVICE_UNAVAILABLE,
                    "database unavailable",
                    Some("the login state could not be stored or read; try again".into()),
                )
            }
            .counted(EP);
        }
    };
    ApiError::new(status, error, Some(detail)).counted(EP)
}

/// The cookie that binds a login's `state` to the browser that began it:
/// without it, an attacker could begin a login, sign in at the provider as
/// themselves and hand the callback URL to a victim (login CSRF).
const STATE_COOKIE: &str = "kk_oidc_state";

/// `GET /api/v1/auth/oidc/login` → 302 to the identity provider, setting
/// the state cookie (`HttpOnly`, `SameSite=Lax`, `Secure` when the
/// redirect URI is https, as long as the state lives).
pub async fn oidc_login(State(s): State<Arc<AppState>>, src: Source) -> Result<Response, ApiError> {
    let o = gate(&s)?;
    let url = o.begin(src.0).await.map_err(|e| {
        match e {
            OidcError::Busy => counter!(SSO_LOGINS, "result" => "busy").increment(1),
            OidcError::TooManyFromAddress { .. } => {
                counter!(SSO_LOGINS, "result" => "address_limited").increment(1);
            }
            _ => {}
        }
        oidc_error(&e)
    })?;
    let state = url
        .split_once('?')
        .map(|(_, q)| q)
        .into_iter()
        .flat_map(|q| form_urlencoded::parse(q.as_bytes()))
        .find(|(k, _)| k == "state")
        .map(|(_, v)| v.into_owned())
        .unwrap_or_default();
    let secure = if o.config().redirect_uri.starts_with("https://") {
        "; Secure"
    } else {
        ""
    };
    let cookie = format!(
        "{STATE_COOKIE}={state}; Path=/api/v1/auth/oidc; HttpOnly; SameSite=Lax; Max-Age={}{secure}",
        o.config().state_ttl_secs
    );
    let mut r = redirect(&url)?;
    if let Ok(v) = HeaderValue::from_str(&cookie) {
        r.headers_mut().insert(header::SET_COOKIE, v);
    }
    Ok(r)
}

/// The state cookie's value, if the request carries it.
fn cookie_state(headers: &axum::http::HeaderMap) -> Option<String> {
    headers
        .get_all(header::COOKIE)
        .iter()
        .filter_map(|v| v.to_str().ok())
        .flat_map(|v| v.split(';'))
        .filter_map(|kv| kv.trim().split_once('='))
        .find(|(k, _)| *k == STATE_COOKIE)
        .map(|(_, v)| v.to_owned())
}

#[derive(Deserialize)]
pub struct Callback {
    code: Option<String>,
    state: Option<String>,
    error: Option<String>,
}

/// `GET /api/v1/auth/oidc/callback?code&state` → Killkrill tokens.
pub async fn oidc_callback(
    State(s): State<Arc<AppState>>,
    src: Source,
    headers: axum::http::HeaderMap,
    q: Result<Query<Callback>, axum::extract::rejection::QueryRejection>,
) -> Result<Response, ApiError> {
    let o = gate(&s)?;
    let Ok(Query(q)) = q else {
        return Err(oidc_error(&OidcError::BadRequest(
            "expected ?code=...&state=...".into(),
        )));
    };
    let state = q.state.unwrap_or_default();
    if state.is_empty() || state.len() > 128 {
        return Err(oidc_error(&OidcError::BadState));
    }
    // The browser that began this login must be the one finishing it.
    let bound = cookie_state(&headers).is_some_and(|c| {
        use subtle::ConstantTimeEq;
        bool::from(c.as_bytes().ct_eq(state.as_bytes()))
    });
    if !bound {
        counter!(SSO_LOGINS, "result" => "failed").increment(1);
        return Err(oidc_error(&OidcError::BadState));
    }
    let issuer = o.config().issuer.clone();
    let fail = |result: &'static str, who: String, detail: String| {
        let s = s.clone();
        let o = o.clone();
        let src = src.text();
        async move {
            counter!(SSO_LOGINS, "result" => result).increment(1);
            s.auth
                .audit(
                    o.tenant(),
                    &who,
                    "auth.sso_login",
                    &who,
                    &src,
                    result,
                    &detail,
                )
                .await;
        }
    };
    if let Some(err) = q.error {
        // The provider refused; spend the state so it cannot be reused.
        let _ = o.finish("", &state).await;
        let err: String = err
            .chars()
            .filter(char::is_ascii_graphic)
            .take(64)
            .collect();
        fail("refused", "unknown".into(), format!("{issuer}: {err}")).await;
        return Err(ApiError::new(
            StatusCode::UNAUTHORIZED,
            "the identity provider refused the login",
            Some(err),
        )
        .counted(EP));
    }
    let code = q.code.unwrap_or_default();
    let id = match o.finish(&code, &state).await {
        Ok(id) => id,
        Err(e) => {
            let result = match e {
                OidcError::NoRole => "denied",
                _ => "failed",
            };
            fail(result, "unknown".into(), format!("{issuer}: {e}")).await;
            return Err(oidc_error(&e));
        }
    };
    let user = match upsert(&s, o, &id).await {
        Ok(u) => u,
        Err(e) => {
            fail("failed", id.email.clone(), format!("{issuer}: {e}")).await;
            return Err(ApiError::from(e).counted(EP));
        }
    };
    let pair = s
        .auth
        .issue_pair(&user, rand::random(), user.session_gen)
        .await
        .map_err(ApiError::from)?;
    counter!(SSO_LOGINS, "result" => "ok").increment(1);
    s.auth
        .audit(
            &user.tenant,
            &user.email,
            "auth.sso_login",
            &user.email,
            &src.text(),
            "ok",
            &format!(
                "{issuer} sub={} groups={} role={}",
                id.subject,
                id.groups.join(","),
                id.role
            ),
        )
        .await;
    match &o.config().frontend_redirect {
        Some(front) => redirect(&format!("{front}#{}", fragment(&pair))),
        None => Ok(no_store(axum::Json(pair).into_response())),
    }
}

fn fragment(p: &TokenPair) -> String {
    form_urlencoded::Serializer::new(String::new())
        .append_pair("access_token", &p.access_token)
        .append_pair("token_type", p.token_type)
        .append_pair("expires_in", &p.expires_in.to_string())
        .append_pair("refresh_token", &p.refresh_token)
        .finish()
}

/// Creates the SSO user, or updates its role; refuses to take over a
/// password account of the same email.
async fn upsert(s: &AppState, o: &Oidc, id: &Identity) -> Result<UserRow, AuthError> {
    crate::auth::Auth::check_email(&id.email)?;
    let store = s.auth.store();
    let marker = format!("{SSO_HASH_PREFIX}{}", o.config().issuer);
    if let Some(u) = store.user_by_email(&id.email).await? {
        if !u.password_hash.starts_with(SSO_HASH_PREFIX) {
            return Err(AuthError::Conflict(format!(
                "{} has a password account; an admin must delete it before it can sign in with SSO",
                id.email
            )));
        }
        if u.role != id.role {
            s.auth.set_role(u.id, id.role).await?;
        }
        return store
            .user(u.id)
            .await?
            .ok_or_else(|| AuthError::NotFound(id.email.clone()));
    }
    let now = crate::auth::now_nanos();
    store.ensure_tenant(o.tenant(), now).await?;
    let new = store
        .create_user(
            &NewUser {
                email: id.email.clone(),
                tenant: o.tenant().clone(),
                role: id.role,
                password_hash: marker,
            },
            now,
        )
        .await
        .map_err(|e| match e.kind() {
            killkrill_core::storage::ErrorKind::Conflict => {
                AuthError::Conflict(format!("a user {} exists", id.email))
            }
            _ => AuthError::Store(e),
        })?;
    store
        .user(new)
        .await?
        .ok_or_else(|| AuthError::NotFound(id.email.clone()))
}
