//! Who is calling: the identity every handler scopes its work to.
//!
//! Handlers never read a tenant from the configuration or the request
//! themselves; they take a [`Caller`] and use `caller.tenant`. An
//! authentication layer puts the verified caller into the request's
//! extensions; without one (no authentication configured yet), the caller
//! is the anonymous user of the process's default tenant.

use std::convert::Infallible;
use std::sync::Arc;

use axum::extract::FromRequestParts;
use axum::http::request::Parts;
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
    type Rejection = Infallible;

    async fn from_request_parts(
        parts: &mut Parts,
        state: &Arc<AppState>,
    ) -> Result<Self, Self::Rejection> {
        Ok(parts
            .extensions
            .get::<Caller>()
            .cloned()
            .unwrap_or_else(|| Caller::anonymous(state.ingest.default_tenant().clone())))
    }
}
