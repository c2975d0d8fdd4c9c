//! Who is calling: the identity every handler scopes its work to.
//!
//! Handlers never read a tenant from the configuration or the request
//! themselves; they take a [`Caller`] and use `caller.tenant`. The
//! authentication layer ([`super::authn::authenticate`]) puts the verified
//! caller into the request's extensions. Without one the request is refused
//! (401): there is no fallback to a default tenant. (With `[auth] mode =
//! "disabled"`, development only, the layer itself inserts the anonymous
//! caller of the default tenant.)

use std::sync::Arc;

use axum::extract::FromRequestParts;
use axum::http::request::Parts;
use axum::response::Response;
use killkrill_core::event::Tenant;

use super::AppState;

/// The caller of one request.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct Caller {
    /// The tenant everything this request reads or writes belongs to.
    pub tenant: Tenant,
    /// Who: a user name, an API key's name, or `anonymous`.
    pub subject: String,
}

impl Caller {
    /// The anonymous caller of `tenant`.
    pub fn anonymous(tenant: Tenant) -> Self {
        Caller {
            tenant,
            subject: "anonymous".to_owned(),
        }
    }
}

impl FromRequestParts<Arc<AppState>> for Caller {
    type Rejection = Response;

    async fn from_request_parts(
        parts: &mut Parts,
        _state: &Arc<AppState>,
    ) -> Result<Self, Self::Rejection> {
        parts.extensions.get::<Caller>().cloned().ok_or_else(|| {
            super::authn::unauthorized(
                "authentication required",
                "no verified caller",
                parts.uri.path(),
            )
        })
    }
}
