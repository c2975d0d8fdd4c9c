//! Per-tenant settings changed at run time through `/api/v1/settings`:
//! retention of logs and metrics (days) and scrape targets.
//!
//! Stored in the database (`tenant_settings`, one JSON document per
//! tenant), so every process of a scaled-out deployment sees the same
//! values: the maintenance task reads them each pass
//! ([`super::maintenance`]) and the scrape manager polls them
//! ([`super::scrape::run_settings_targets`]). Targets from the
//! configuration file stay; a tenant's settings add its own, scraped into
//! that tenant.

use killkrill_core::event::Tenant;
use killkrill_core::storage::StoreError;
use killkrill_store::Store;
use metrics::counter;
use serde::{Deserialize, Serialize};

use super::scrape::{ScrapeConfig, ScrapeTarget};

/// Settings rows that do not parse (written by a newer version, or edited
/// by hand); they are skipped, counted and logged.
pub const SETTINGS_UNREADABLE: &str = "killkrill_settings_unreadable_total";

/// Most scrape targets (jobs) one tenant may have.
pub const MAX_TARGETS: usize = 100;
/// Most URLs one tenant's targets may have together.
pub const MAX_URLS: usize = 1000;
/// Longest retention accepted, days (100 years).
pub const MAX_RETENTION_DAYS: u32 = 36_500;

/// Retention (`null` = the server's default: `maintenance.retention_days`
/// for logs, keep everything for metrics).
#[derive(Debug, Clone, Default, PartialEq, Eq, Serialize, Deserialize)]
#[serde(deny_unknown_fields, default)]
pub struct Retention {
    /// Delete log blocks older than this many days.
    pub logs_days: Option<u32>,
    /// Delete metric chunks, rollups and series older than this many days.
    pub metrics_days: Option<u32>,
}

/// One tenant's settings, the body of `GET`/`PUT /api/v1/settings`.
#[derive(Debug, Clone, Default, PartialEq, Serialize, Deserialize)]
#[serde(deny_unknown_fields, default)]
pub struct TenantSettings {
    /// Retention.
    pub retention: Retention,
    /// Scrape targets of this tenant, as `[[scrape.targets]]` entries.
    pub scrape_targets: Vec<ScrapeTarget>,
}

impl TenantSettings {
    /// Checks every field; the error names it (`retention.logs_days`,
    /// `scrape_targets[0].url`) and the problem. A target whose address is
    /// written as a literal in one of `deny_networks` (the server's
    /// configured `scrape.deny_networks`) is refused; host names are checked
    /// when scraped, on the addresses they resolve to.
    ///
    /// # Errors
    /// `(field, problem)`.
    pub fn validate(&self, deny_networks: &[String]) -> Result<(), (String, String)> {
        for (field, v) in [
            ("retention.logs_days", self.retention.logs_days),
            ("retention.metrics_days", self.retention.metrics_days),
        ] {
            if let Some(d) = v
                && (d == 0 || d > MAX_RETENTION_DAYS)
            {
                return Err((
                    field.into(),
                    format!(
                        "must be between 1 and {MAX_RETENTION_DAYS} days (or null for the server's default)"
                    ),
                ));
            }
        }
        if self.scrape_targets.len() > MAX_TARGETS {
            return Err((
                "scrape_targets".into(),
                format!("at most {MAX_TARGETS} targets per tenant"),
            ));
        }
        let urls: usize = self
            .scrape_targets
            .iter()
            .map(|t| t.urls.len() + usize::from(t.url.is_some()))
            .sum();
        if urls > MAX_URLS {
            return Err((
                "scrape_targets".into(),
                format!("at most {MAX_URLS} URLs per tenant"),
            ));
        }
        let cfg = ScrapeConfig {
            targets: self.scrape_targets.clone(),
            deny_networks: deny_networks.to_vec(),
            ..ScrapeConfig::default()
        };
        cfg.validate().map_err(|(k, p)| {
            (
                k.strip_prefix("scrape.targets")
                    .map_or(k.clone(), |rest| format!("scrape_targets{rest}")),
                p,
            )
        })
    }
}

/// The settings of `tenant` (defaults when none were written).
///
/// # Errors
/// Database errors; a stored document that does not parse.
pub async fn load(store: &Store, tenant: &Tenant) -> Result<TenantSettings, StoreError> {
    match store.tenant_settings(tenant).await? {
        None => Ok(TenantSettings::default()),
        Some(row) => serde_json::from_str(&row.body).map_err(|e| {
            StoreError::new(
                killkrill_core::storage::ErrorKind::Fatal,
                format!("stored settings of tenant {tenant}: {e}"),
            )
        }),
    }
}

/// Every tenant's settings; a row that does not parse is skipped (counted
/// and logged), so one bad row does not stop retention for the others.
///
/// # Errors
/// Database errors.
pub async fn load_all(store: &Store) -> Result<Vec<(Tenant, TenantSettings)>, StoreError> {
    Ok(load_all_checked(store).await?.0)
}

/// [`load_all`], also naming the tenants whose stored settings do not parse
/// (a row edited by hand, or written by a newer version): retention keeps
/// everything of those rather than applying the default to them.
///
/// # Errors
/// Database errors.
pub async fn load_all_checked(
    store: &Store,
) -> Result<(Vec<(Tenant, TenantSettings)>, Vec<Tenant>), StoreError> {
    let rows = store.all_tenant_settings().await?;
    let mut out = Vec::with_capacity(rows.len());
    let mut unreadable = Vec::new();
    for r in rows {
        match serde_json::from_str::<TenantSettings>(&r.body) {
            Ok(s) => out.push((r.tenant, s)),
            Err(e) => {
                counter!(SETTINGS_UNREADABLE).increment(1);
                tracing::warn!(tenant = %r.tenant, error = %e, "stored settings do not parse: skipped");
                unreadable.push(r.tenant);
            }
        }
    }
    Ok((out, unreadable))
}
