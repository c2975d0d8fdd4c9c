//! Metric retention and the tenant list.

use killkrill_core::event::{Tenant, Timestamp};
use killkrill_core::storage::{ErrorKind, MetricRetentionReport, StoreError};
use sqlx::Row;

use crate::backend::Store;
use crate::error::Context;
use crate::retry::retry;
use crate::with_pool;

impl Store {
    /// Deletes chunks, rollups and series older than `cutoff`; each delete
    /// is its own (bounded, on MySQL) statement, retried on its own.
    pub(super) async fn metric_retention(
        &self,
        tenant: &Tenant,
        cutoff: Timestamp,
    ) -> Result<MetricRetentionReport, StoreError> {
        let c = cutoff.as_nanos();
        let chunks = retry(&self.cfg.retry, "metric_retention", || {
            self.bounded_delete(
                "DELETE FROM metric_chunks WHERE tenant = ? AND max_ts < ?",
                false,
                tenant,
                c,
            )
        })
        .await?;
        let rollups = retry(&self.cfg.retry, "metric_retention", || {
            self.bounded_delete(
                "DELETE FROM metric_rollups WHERE tenant = ? AND window_end <= ?",
                false,
                tenant,
                c,
            )
        })
        .await?;
        // Partials not merged yet count as rollups.
        let rollup_head = retry(&self.cfg.retry, "metric_retention", || {
            self.bounded_delete(
                "DELETE FROM metric_rollup_head WHERE tenant = ? AND window_end <= ?",
                false,
                tenant,
                c,
            )
        })
        .await?;
        // Head chunks count as chunks (the head is where small writes wait).
        let head = retry(&self.cfg.retry, "metric_retention", || {
            self.bounded_delete(
                "DELETE FROM metric_head_chunks WHERE tenant = ? AND max_ts < ?",
                false,
                tenant,
                c,
            )
        })
        .await?;
        // Ledger rows whose flush saw nothing newer than the cutoff: their
        // rollups are gone, so a redelivery could not double them.
        retry(&self.cfg.retry, "metric_retention", || {
            self.bounded_delete(
                "DELETE FROM metric_rollup_batches WHERE tenant = ? AND high_water < ?",
                false,
                tenant,
                c,
            )
        })
        .await?;
        let series = retry(&self.cfg.retry, "metric_retention", || {
            self.bounded_delete(
                "DELETE FROM metric_series WHERE tenant = ? AND last_seen < ?",
                false,
                tenant,
                c,
            )
        })
        .await?;
        Ok(MetricRetentionReport {
            chunks: chunks + head,
            rollups: rollups + rollup_head,
            series,
        })
    }

    pub(super) async fn metric_tenant_list(&self) -> Result<Vec<Tenant>, StoreError> {
        self.tenants_of("SELECT DISTINCT tenant FROM metric_series ORDER BY tenant")
            .await
    }

    /// The tenants with partials in the rollup head (not merged into
    /// `metric_rollups` yet): what maintenance compacts, idle tenants
    /// included.
    ///
    /// # Errors
    /// Backend errors.
    pub async fn rollup_head_tenants(&self) -> Result<Vec<Tenant>, StoreError> {
        retry(&self.cfg.retry, "rollup_head_tenants", || {
            self.tenants_of("SELECT DISTINCT tenant FROM metric_rollup_head ORDER BY tenant")
        })
        .await
    }

    async fn tenants_of(&self, sql: &'static str) -> Result<Vec<Tenant>, StoreError> {
        let names: Vec<String> = with_pool!(&self.backend, pool => {
            let rows = sqlx::query(sql)
                .fetch_all(pool)
                .await
                .ctx("listing metric tenants")?;
            let mut v = Vec::with_capacity(rows.len());
            for r in rows {
                v.push(r.try_get::<String, _>(0).ctx("listing metric tenants")?);
            }
            v
        });
        names
            .iter()
            .map(|n| {
                Tenant::new(n)
                    .map_err(|e| StoreError::with_source(ErrorKind::Fatal, "stored tenant name", e))
            })
            .collect()
    }
}
