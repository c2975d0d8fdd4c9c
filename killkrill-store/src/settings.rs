//! Per-tenant settings: one JSON document per tenant (retention, scrape
//! targets), written whole. This module stores and fetches; what the
//! document may say is checked by `killkrill-svc` before it is written.

use killkrill_core::event::Tenant;
use killkrill_core::storage::StoreError;
use sqlx::{AssertSqlSafe, Row};

use crate::auth::tenant_of;
use crate::backend::Store;
use crate::error::Context;
use crate::{with_pool, with_writer};

/// A tenant's stored settings.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct SettingsRow {
    /// Whose.
    pub tenant: Tenant,
    /// The JSON document.
    pub body: String,
    /// Last written (ns).
    pub updated_at: i64,
    /// By whom.
    pub updated_by: String,
}

impl Store {
    /// The settings of `tenant`, if any were written.
    ///
    /// # Errors
    /// Database errors.
    pub async fn tenant_settings(
        &self,
        tenant: &Tenant,
    ) -> Result<Option<SettingsRow>, StoreError> {
        let sql = self.dialect.sql(
            "SELECT tenant, body, updated_at, updated_by FROM tenant_settings WHERE tenant = ?",
        );
        let row: Option<(String, String, i64, String)> = with_pool!(&self.backend, pool => {
            let c = "reading settings";
            match sqlx::query(AssertSqlSafe(sql)).bind(tenant.as_str()).fetch_optional(pool).await.ctx(c)? {
                Some(r) => Some((r.try_get(0).ctx(c)?, r.try_get(1).ctx(c)?, r.try_get(2).ctx(c)?, r.try_get(3).ctx(c)?)),
                None => None,
            }
        });
        row.map(|(t, body, updated_at, updated_by)| {
            Ok(SettingsRow {
                tenant: tenant_of(&t)?,
                body,
                updated_at,
                updated_by,
            })
        })
        .transpose()
    }

    /// Every tenant's settings (for the maintenance and scrape tasks).
    ///
    /// # Errors
    /// Database errors.
    pub async fn all_tenant_settings(&self) -> Result<Vec<SettingsRow>, StoreError> {
        let sql = self.dialect.sql(
            "SELECT tenant, body, updated_at, updated_by FROM tenant_settings ORDER BY tenant",
        );
        let rows: Vec<(String, String, i64, String)> = with_pool!(&self.backend, pool => {
            let c = "reading settings";
            let rows = sqlx::query(AssertSqlSafe(sql)).fetch_all(pool).await.ctx(c)?;
            let mut v = Vec::with_capacity(rows.len());
            for r in rows {
                v.push((r.try_get(0).ctx(c)?, r.try_get(1).ctx(c)?, r.try_get(2).ctx(c)?, r.try_get(3).ctx(c)?));
            }
            v
        });
        rows.into_iter()
            .map(|(t, body, updated_at, updated_by)| {
                Ok(SettingsRow {
                    tenant: tenant_of(&t)?,
                    body,
                    updated_at,
                    updated_by,
                })
            })
            .collect()
    }

    /// Replaces the settings of `tenant` (one transaction).
    ///
    /// # Errors
    /// Database errors; [`ErrorKind::Conflict`] when another write of the
    /// same tenant's settings raced this one.
    ///
    /// [`ErrorKind::Conflict`]: killkrill_core::storage::ErrorKind::Conflict
    pub async fn put_tenant_settings(
        &self,
        tenant: &Tenant,
        body: &str,
        by: &str,
        now: i64,
    ) -> Result<(), StoreError> {
        let del = self
            .dialect
            .sql("DELETE FROM tenant_settings WHERE tenant = ?");
        let ins = self.dialect.sql(
            "INSERT INTO tenant_settings (tenant, body, updated_at, updated_by) VALUES (?, ?, ?, ?)",
        );
        let mut n = by.len().min(255);
        while !by.is_char_boundary(n) {
            n -= 1;
        }
        let by = &by[..n];
        with_writer!(&self.backend, pool => {
            let c = "writing settings";
            let mut tx = pool.begin().await.ctx(c)?;
            sqlx::query(AssertSqlSafe(del)).bind(tenant.as_str()).execute(&mut *tx).await.ctx(c)?;
            sqlx::query(AssertSqlSafe(ins)).bind(tenant.as_str()).bind(body).bind(now).bind(by).execute(&mut *tx).await.ctx(c)?;
            tx.commit().await.ctx(c)?;
        });
        Ok(())
    }
}
