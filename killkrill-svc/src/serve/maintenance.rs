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
//! old (`Store::compact_metric_head`).

use killkrill_core::event::{NANOS_PER_SEC, Timestamp};
use killkrill_core::pipeline::Shutdown;
use killkrill_core::storage::{
    CompactionOptions, LogStore, MetricStore, RetentionPolicy, apply_retention, compact_tenant,
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
/// Maintenance passes that failed (`task` = `compaction` | `retention`).
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
    let opts = CompactionOptions {
        target_records: store.block_options().max_records,
        small_below: store.block_options().max_records / 2,
        block: store.block_options().clone(),
        ..CompactionOptions::default()
    };
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

async fn pass(store: &Store, cfg: &MaintenanceConfig, opts: &CompactionOptions) {
    compact_metric_heads(store, cfg).await;
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
    if cfg.retention_days > 0 {
        let policy = RetentionPolicy {
            default_max_age_nanos: (cfg.retention_days as i64)
                .saturating_mul(86_400)
                .saturating_mul(NANOS_PER_SEC),
            per_tenant: Vec::new(),
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
}
