//! `/api/v1/settings`: a tenant's retention and scrape targets.
//!
//! `GET` needs `read` (every role and read keys: the settings are not
//! secret and viewers may see how long their data is kept); `PUT` needs
//! `admin` (admins and admin keys: the issue gives settings to admins
//! only; maintainers change resources such as API keys, not the server's
//! behaviour). Both act in the caller's tenant; admins of the system
//! tenant may name another with `?tenant=`. `PUT` replaces the whole
//! document (a field left out goes back to its default), is validated
//! field by field (400 naming the field in `parameter`) and is audited
//! (`settings.update`, with the old and new documents) whether it
//! succeeds or not. The maintenance and scrape tasks read the stored
//! settings, so a change applies without a restart.

use std::sync::Arc;

use axum::extract::{Query, State};
use axum::response::{IntoResponse, Response};
use bytes::Bytes;

use super::authn::{Source, json_body};
use super::users::{TenantQuery, target_tenant};
use super::{ApiError, AppState};
use crate::auth::{AuthError, Principal, now_nanos};
use crate::serve::settings::{self, TenantSettings};

const EP: &str = "settings";

fn store_err(e: killkrill_core::storage::StoreError) -> ApiError {
    ApiError::from(AuthError::Store(e))
}

fn doc(tenant: &str, s: &TenantSettings, at: Option<i64>, by: Option<&str>) -> serde_json::Value {
    let mut v = serde_json::to_value(s).unwrap_or_default();
    v["tenant"] = tenant.into();
    v["updated_at_ns"] = at.into();
    v["updated_by"] = by.into();
    v
}

/// `GET /api/v1/settings[?tenant=T]`.
pub async fn get(
    State(s): State<Arc<AppState>>,
    p: Principal,
    Query(q): Query<TenantQuery>,
) -> Result<Response, ApiError> {
    let t = target_tenant(&s, &p, q.tenant()).map_err(|e| e.counted(EP))?;
    let row = s.store.tenant_settings(&t).await.map_err(store_err)?;
    let cur = settings::load(&s.store, &t).await.map_err(store_err)?;
    Ok(axum::Json(doc(
        t.as_str(),
        &cur,
        row.as_ref().map(|r| r.updated_at),
        row.as_ref().map(|r| r.updated_by.as_str()),
    ))
    .into_response())
}

/// `PUT /api/v1/settings[?tenant=T]` with the whole document.
pub async fn put(
    State(s): State<Arc<AppState>>,
    p: Principal,
    src: Source,
    Query(q): Query<TenantQuery>,
    b: Bytes,
) -> Result<Response, ApiError> {
    let t = target_tenant(&s, &p, q.tenant()).map_err(|e| e.counted(EP))?;
    let audit = |result: &'static str, detail: String| {
        let (s, p, t, src) = (s.clone(), p.clone(), t.clone(), src.text());
        async move {
            s.auth
                .audit(
                    &t,
                    &p.subject,
                    "settings.update",
                    t.as_str(),
                    &src,
                    result,
                    &detail,
                )
                .await;
        }
    };
    let new: TenantSettings = match json_body(EP, &b) {
        Ok(n) => n,
        Err(e) => {
            audit("invalid", e.detail.clone().unwrap_or_default()).await;
            return Err(e);
        }
    };
    if let Err((field, problem)) = new.validate(&s.scrape_deny_networks) {
        audit("invalid", format!("{field}: {problem}")).await;
        let mut e = ApiError::bad_request("invalid settings", format!("{field}: {problem}"));
        e.param = Some(field);
        return Err(e.counted(EP));
    }
    let old = settings::load(&s.store, &t).await.map_err(store_err)?;
    // The server fetches scrape targets from inside the network it runs in
    // (SSRF): only the operator -- an admin of the system tenant -- may
    // change them; a tenant's own admins may change its retention.
    if serde_json::to_value(&old.scrape_targets).ok()
        != serde_json::to_value(&new.scrape_targets).ok()
        && !p.is_system_admin(s.auth.system_tenant())
    {
        audit(
            "forbidden",
            "scrape_targets changed by a tenant admin".into(),
        )
        .await;
        let mut e = ApiError::new(
            axum::http::StatusCode::FORBIDDEN,
            "forbidden",
            Some("scrape targets are fetched by the server from its own network: only admins of the system tenant change them".into()),
        );
        e.param = Some("scrape_targets".into());
        return Err(e.counted(EP));
    }
    let old_json = serde_json::to_string(&old).unwrap_or_default();
    let new_json = serde_json::to_string(&new).unwrap_or_default();
    let detail = format!("from {old_json} to {new_json}");
    if let Err(e) = s
        .store
        .put_tenant_settings(&t, &new_json, &p.subject, now_nanos())
        .await
    {
        audit("failed", detail).await;
        return Err(store_err(e));
    }
    audit("ok", detail).await;
    tracing::info!(tenant = %t, by = %p.subject, "settings changed");
    let row = s.store.tenant_settings(&t).await.map_err(store_err)?;
    Ok(axum::Json(doc(
        t.as_str(),
        &new,
        row.as_ref().map(|r| r.updated_at),
        row.as_ref().map(|r| r.updated_by.as_str()),
    ))
    .into_response())
}
