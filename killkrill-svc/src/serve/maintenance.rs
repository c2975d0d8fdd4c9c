//! Background store maintenance: compaction and retention.
//!
//! Workers write each batch as its own blocks (so a redelivered batch makes
//! the same block ids), which means a trickle of small requests leaves many
//! small blocks. Every `maintenance.interval_secs` this task merges runs of
//! small blocks per tenant (core's `compact_tenant`, conflict-safe against
//! concurrent writers) and, when `maintenance.retention_days` is set, drops
//! blocks older than that (core's `apply_retention`). It also merges the
//! metric head (small chunks of scrapes and remote_write requests) into full
//! per-series chunks once their samples are `maintenance.metric_head_secs`
//! old (`Store::compact_metric_head`), and every tenant's rollup head into
//! `metric_rollups` (`Store::compact_rollup_head`; flushes do that only
//! every few flushes, so an idle tenant's last partials waited forever).
//!
//! Retention per tenant comes from the stored settings
//! (`/api/v1/settings`, read each pass, so a change applies from the next
//! pass on, in every worker): `retention.logs_days` overrides
//! `maintenance.retention_days` for that tenant, and
//! `retention.metrics_days` deletes that tenant's metric chunks, rollups
//! and series older than that.

use killkrill_core::event::{NANOS_PER_SEC, Timestamp};
use killkrill_core::pipeline::Shutdown;
use killkrill_core::storage::{
    CompactionOptions, ErrorKind, LogStore, MetricStore, RetentionPolicy, apply_retention,
    compact_tenant,
};
use killkrill_store::Store;
use metrics::counter;

use crate::config::MaintenanceConfig;

/// Merges committed by compaction.
pub const COMPACTION_MERGES: &str = "killkrill_compaction_merges_total";
/// Metric head chunks merged into full chunks.
pub const METRIC_HEAD_COMPACTED: &str = "killkrill_metric_head_chunks_compacted_total";
/// Blocks deleted by retention.
pub const RETENTION_BLOCKS: &str = "killkrill_retention_deleted_blocks_total";
/// Metric chunks deleted by retention (`retention.metrics_days` of a
/// tenant's settings).
pub const RETENTION_METRIC_CHUNKS: &str = "killkrill_retention_deleted_metric_chunks_total";
/// Maintenance passes that failed (`task` = `compaction` | `retention` |
/// `metric_head` | `rollup_head` | `metric_retention`).
pub const MAINTENANCE_ERRORS: &str = "killkrill_maintenance_errors_total";

/// How long written block ids are remembered (a redelivered batch older
/// than this could be written twice): 7 days.
const REGISTRY_MAX_AGE_NANOS: i64 = 7 * 86_400 * NANOS_PER_SEC;

/// Runs until `shutdown`.
pub async fn run(store: Store, cfg: MaintenanceConfig, mut shutdown: Shutdown) {
    if cfg.interval_secs == 0 {
        return;
    }
    let every = std::time::Duration::from_secs(cfg.interval_secs);
    let opts = options(&store);
    loop {
        tokio::select! {
            () = shutdown.requested() => return,
            () = tokio::time::sleep(every) => {}
        }
        pass(&store, &cfg, &opts).await;
    }
}

/// Merges every tenant's metric head older than `metric_head_secs`.
async fn compact_metric_heads(store: &Store, cfg: &MaintenanceConfig) {
    let tenants = match store.metric_tenants().await {
        Ok(t) => t,
        Err(e) => {
            counter!(MAINTENANCE_ERRORS, "task" => "metric_head").increment(1);
            tracing::warn!(error = %e, "metric head compaction: listing tenants failed");
            return;
        }
    };
    let age = (cfg.metric_head_secs as i64).saturating_mul(NANOS_PER_SEC);
    let before = Timestamp::from_nanos(Timestamp::now().as_nanos().saturating_sub(age));
    for t in &tenants {
        match store.compact_metric_head(t, before).await {
            Ok(r) => counter!(METRIC_HEAD_COMPACTED).increment(r.head_chunks),
            Err(e) => {
                counter!(MAINTENANCE_ERRORS, "task" => "metric_head").increment(1);
                tracing::warn!(tenant = %t, error = %e, "metric head compaction failed");
            }
        }
    }
}

/// Compactions of one tenant's rollup head per pass at most (each merges
/// up to `COMPACT_FLUSHES` flushes).
const ROLLUP_HEAD_ROUNDS: usize = 8;

/// Merges every tenant's rollup head into `metric_rollups`. Flushes compact
/// their tenant's head every `ROLLUP_HEAD_FLUSHES` flushes; a tenant that
/// stops sending keeps its last partials in the head until this pass. A
/// `Conflict` (another process compacting the same head) is benign: that
/// process merges the rows.
pub async fn compact_rollup_heads(store: &Store) {
    let tenants = match store.rollup_head_tenants().await {
        Ok(t) => t,
        Err(e) => {
            counter!(MAINTENANCE_ERRORS, "task" => "rollup_head").increment(1);
            tracing::warn!(error = %e, "rollup head compaction: listing tenants failed");
            return;
        }
    };
    for t in &tenants {
        for _ in 0..ROLLUP_HEAD_ROUNDS {
            match store.compact_rollup_head(t).await {
                Ok(r) if r.flushes < killkrill_store::COMPACT_FLUSHES => break,
                Ok(_) => {}
                Err(e) if e.kind() == ErrorKind::Conflict => break,
                Err(e) => {
                    counter!(MAINTENANCE_ERRORS, "task" => "rollup_head").increment(1);
                    tracing::warn!(tenant = %t, error = %e, "rollup head compaction failed");
                    break;
                }
            }
        }
    }
}

/// One maintenance pass: metric heads, rollup heads, log compaction,
/// retention. `run` calls it every `interval_secs`.
pub async fn pass_once(store: &Store, cfg: &MaintenanceConfig) {
    pass(store, cfg, &options(store)).await;
}

fn options(store: &Store) -> CompactionOptions {
    CompactionOptions {
        target_records: store.block_options().max_records,
        small_below: store.block_options().max_records / 2,
        block: store.block_options().clone(),
        ..CompactionOptions::default()
    }
}

async fn pass(store: &Store, cfg: &MaintenanceConfig, opts: &CompactionOptions) {
    compact_metric_heads(store, cfg).await;
    compact_rollup_heads(store).await;
    let tenants = match store.log_tenants().await {
        Ok(t) => t,
        Err(e) => {
            counter!(MAINTENANCE_ERRORS, "task" => "compaction").increment(1);
            tracing::warn!(error = %e, "compaction: listing tenants failed");
            return;
        }
    };
    for t in &tenants {
        match compact_tenant(store, t, opts).await {
            Ok(r) => {
                counter!(COMPACTION_MERGES).increment(r.merges as u64);
                if r.merges > 0 {
                    tracing::debug!(tenant = %t, merges = r.merges, blocks_in = r.blocks_in, "compacted");
                }
            }
            Err(e) => {
                counter!(MAINTENANCE_ERRORS, "task" => "compaction").increment(1);
                tracing::warn!(tenant = %t, error = %e, "compaction failed");
            }
        }
    }
    retention(store, cfg).await;
}

const NANOS_PER_DAY: i64 = 86_400 * NANOS_PER_SEC;

fn days(d: u64) -> i64 {
    i64::try_from(d)
        .unwrap_or(i64::MAX)
        .saturating_mul(NANOS_PER_DAY)
}

/// Log retention (`maintenance.retention_days`, overridden per tenant by
/// the stored settings' `retention.logs_days`) and metric retention
/// (settings' `retention.metrics_days`; metrics are kept otherwise).
async fn retention(store: &Store, cfg: &MaintenanceConfig) {
    let (settings, unreadable) = match super::settings::load_all_checked(store).await {
        Ok(s) => s,
        Err(e) => {
            counter!(MAINTENANCE_ERRORS, "task" => "retention").increment(1);
            // Never fall back to the configured default: a tenant that
            // asked to keep data longer would lose it. Skip this pass.
            tracing::warn!(error = %e, "retention: reading the tenants' settings failed; retention skipped this pass");
            return;
        }
    };
    // A tenant whose stored settings do not parse keeps everything (its
    // own retention is unknown) until they are fixed.
    let per_tenant: Vec<(killkrill_core::event::Tenant, i64)> = settings
        .iter()
        .filter_map(|(t, s)| s.retention.logs_days.map(|d| (t.clone(), days(d.into()))))
        .chain(unreadable.into_iter().map(|t| (t, i64::MAX)))
        .collect();
    if cfg.retention_days > 0 || !per_tenant.is_empty() {
        let policy = RetentionPolicy {
            // Without a configured default, tenants without their own
            // retention keep everything.
            default_max_age_nanos: if cfg.retention_days > 0 {
                days(cfg.retention_days)
            } else {
                i64::MAX
            },
            per_tenant,
            registry_max_age_nanos: REGISTRY_MAX_AGE_NANOS,
        };
        match apply_retention(store, Timestamp::now(), &policy).await {
            Ok(r) => counter!(RETENTION_BLOCKS).increment(r.blocks),
            Err(e) => {
                counter!(MAINTENANCE_ERRORS, "task" => "retention").increment(1);
                tracing::warn!(error = %e, "retention failed");
            }
        }
    }
    for (t, s) in &settings {
        let Some(d) = s.retention.metrics_days else {
            continue;
        };
        let cutoff =
            Timestamp::from_nanos(Timestamp::now().as_nanos().saturating_sub(days(d.into())));
        match MetricStore::apply_retention(store, t, cutoff).await {
            Ok(r) => {
                counter!(RETENTION_METRIC_CHUNKS).increment(r.chunks);
                if r.chunks + r.rollups + r.series > 0 {
                    tracing::debug!(tenant = %t, chunks = r.chunks, rollups = r.rollups, series = r.series, "metric retention");
                }
            }
            Err(e) => {
                counter!(MAINTENANCE_ERRORS, "task" => "metric_retention").increment(1);
                tracing::warn!(tenant = %t, error = %e, "metric retention failed");
            }
        }
    }
}
