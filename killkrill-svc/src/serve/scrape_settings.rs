//! Scrape targets from the tenants' stored settings (`/api/v1/settings`),
//! picked up without a restart.
//!
//! Every `scrape.settings_poll_ms` each receiver re-reads every tenant's
//! settings and diffs the wanted loops (tenant, target, URL) against the
//! running ones: a new target starts, a removed or changed one stops. The
//! targets of the configuration file are not touched (they run from
//! [`super::scrape::spawn`]). Samples of a tenant's target belong to that
//! tenant. A database error keeps the running loops as they are (counted).

use std::collections::HashMap;
use std::sync::Arc;
use std::time::Duration;

use killkrill_core::pipeline::Shutdown;
use killkrill_store::Store;
use metrics::{counter, gauge};
use tokio::task::JoinHandle;

use super::ingest::Ingest;
use super::scrape::{ScrapeConfig, spawn_url};
use super::settings;

/// Scrape loops running for settings targets.
pub const SETTINGS_TARGETS: &str = "killkrill_scrape_settings_targets";
/// Failed reads of the settings by the scrape manager.
pub const SETTINGS_POLL_ERRORS: &str = "killkrill_scrape_settings_poll_errors_total";

/// Runs until `shutdown`, then stops every loop it started. With `gate`,
/// the loops scrape only while it says true (this process holds the
/// `scrape` lease, as for the configured targets).
pub async fn run(
    store: Store,
    cfg: ScrapeConfig,
    ingest: Arc<Ingest>,
    gate: Option<tokio::sync::watch::Receiver<bool>>,
    mut shutdown: Shutdown,
) {
    let every = Duration::from_millis(cfg.settings_poll_ms.max(100));
    let mut running: HashMap<String, JoinHandle<()>> = HashMap::new();
    loop {
        match settings::load_all(&store).await {
            Ok(all) => {
                let mut wanted = Vec::new();
                for (tenant, s) in &all {
                    if let Err((field, problem)) = s.validate(&cfg.deny_networks) {
                        // Checked when written; a row edited by hand is skipped.
                        counter!(settings::SETTINGS_UNREADABLE).increment(1);
                        tracing::warn!(tenant = %tenant, field, problem, "stored scrape targets are invalid: skipped");
                        continue;
                    }
                    for t in &s.scrape_targets {
                        let spec = serde_json::to_string(t).unwrap_or_default();
                        for url in t.all_urls() {
                            wanted.push((format!("{tenant}\n{spec}\n{url}"), tenant, t, url));
                        }
                    }
                }
                running.retain(|k, h| {
                    let keep = wanted.iter().any(|(w, ..)| w == k) && !h.is_finished();
                    if !keep {
                        h.abort();
                        tracing::info!(target = %k.replace('\n', " "), "settings scrape target stopped");
                    }
                    keep
                });
                for (key, tenant, t, url) in wanted {
                    if running.contains_key(&key) {
                        continue;
                    }
                    if let Some(h) =
                        spawn_url(&cfg, t, url, &ingest, tenant, &shutdown, gate.clone())
                    {
                        tracing::info!(tenant = %tenant, job = %t.job, url, "settings scrape target started");
                        running.insert(key, h);
                    }
                }
                gauge!(SETTINGS_TARGETS).set(running.len() as f64);
            }
            Err(e) => {
                counter!(SETTINGS_POLL_ERRORS).increment(1);
                tracing::warn!(error = %e, "reading scrape targets from the settings failed; keeping the running ones");
            }
        }
        tokio::select! {
            () = shutdown.requested() => break,
            () = tokio::time::sleep(every) => {}
        }
    }
    for (_, h) in running {
        h.abort();
    }
}
