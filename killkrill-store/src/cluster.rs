//! Coordination between processes sharing one database: a secret they must
//! agree on, created once by whichever process gets there first, and
//! leases for work that must run on one process at a time.
//!
//! Both are race-safe without locks held across calls:
//! - [`ClusterStore::shared_secret`] inserts its candidate only if the name
//!   is absent (`ON CONFLICT DO NOTHING` / `ON DUPLICATE KEY UPDATE name =
//!   name`) and then reads back the stored value, so every process ends up
//!   with the value of the first insert.
//! - [`ClusterStore::try_lease`] is one conditional `UPDATE ... WHERE owner
//!   = me OR expires_at < now`: the row lock makes concurrent takers
//!   serialise, and the second re-checks the condition against the first's
//!   write (PostgreSQL and InnoDB both re-evaluate the `WHERE` on the
//!   latest row version), so at most one owner holds an unexpired lease.
//!   Expiry uses the callers' clocks (ms since the epoch): processes must
//!   keep their clocks in sync (NTP) to well within the lease time.

use killkrill_core::storage::StoreError;
use sqlx::{AssertSqlSafe, Row};

use crate::error::Context;
use crate::{DbType, Store, with_writer};

/// The coordination tables of one store.
#[derive(Debug, Clone)]
pub struct ClusterStore {
    store: Store,
}

impl Store {
    /// The coordination tables (`cluster_secrets`, `cluster_leases`).
    pub fn cluster(&self) -> ClusterStore {
        ClusterStore {
            store: self.clone(),
        }
    }
}

impl ClusterStore {
    fn insert_if_absent(&self, table: &str, cols: &str, n: usize) -> String {
        let params = vec!["?"; n].join(", ");
        self.store.dialect.sql(&match self.store.dialect.0 {
            DbType::Mysql => format!(
                "INSERT INTO {table} ({cols}) VALUES ({params}) ON DUPLICATE KEY UPDATE name = name"
            ),
            _ => format!(
                "INSERT INTO {table} ({cols}) VALUES ({params}) ON CONFLICT (name) DO NOTHING"
            ),
        })
    }

    /// The value stored under `name`, storing `candidate` first when there
    /// is none. Every caller gets the value of the first insert.
    ///
    /// # Errors
    /// Database errors.
    pub async fn shared_secret(
        &self,
        name: &str,
        candidate: &str,
        now: i64,
    ) -> Result<String, StoreError> {
        let insert = self.insert_if_absent("cluster_secrets", "name, value, created_at", 3);
        let select = self
            .store
            .dialect
            .sql("SELECT value FROM cluster_secrets WHERE name = ?");
        let v: String = with_writer!(&self.store.backend, pool => {
            sqlx::query(AssertSqlSafe(insert))
                .bind(name)
                .bind(candidate)
                .bind(now)
                .execute(pool)
                .await
                .ctx("storing a shared secret")?;
            let row = sqlx::query(AssertSqlSafe(select))
                .bind(name)
                .fetch_one(pool)
                .await
                .ctx("reading a shared secret")?;
            row.try_get(0).ctx("reading a shared secret")?
        });
        Ok(v)
    }

    /// Takes or renews the lease `name` for `owner` until `now_ms + ttl_ms`
    /// when it is free, expired or already `owner`'s. True when `owner`
    /// holds it afterwards.
    ///
    /// # Errors
    /// Database errors (the caller must then assume it does not hold it).
    pub async fn try_lease(
        &self,
        name: &str,
        owner: &str,
        now_ms: i64,
        ttl_ms: i64,
    ) -> Result<bool, StoreError> {
        let insert = self.insert_if_absent("cluster_leases", "name, owner, expires_at", 3);
        let update = self.store.dialect.sql(
            "UPDATE cluster_leases SET owner = ?, expires_at = ? WHERE name = ? AND (owner = ? OR expires_at < ?)",
        );
        let n = with_writer!(&self.store.backend, pool => {
            sqlx::query(AssertSqlSafe(insert))
                .bind(name)
                .bind("")
                .bind(0_i64)
                .execute(pool)
                .await
                .ctx("creating a lease")?;
            sqlx::query(AssertSqlSafe(update))
                .bind(owner)
                .bind(now_ms.saturating_add(ttl_ms))
                .bind(name)
                .bind(owner)
                .bind(now_ms)
                .execute(pool)
                .await
                .ctx("taking a lease")?
                .rows_affected()
        });
        Ok(n == 1)
    }

    /// Gives the lease up (expires it now) if `owner` holds it.
    ///
    /// # Errors
    /// Database errors.
    pub async fn release_lease(&self, name: &str, owner: &str) -> Result<bool, StoreError> {
        let update = self
            .store
            .dialect
            .sql("UPDATE cluster_leases SET expires_at = 0 WHERE name = ? AND owner = ?");
        let n = with_writer!(&self.store.backend, pool => {
            sqlx::query(AssertSqlSafe(update))
                .bind(name)
                .bind(owner)
                .execute(pool)
                .await
                .ctx("releasing a lease")?
                .rows_affected()
        });
        Ok(n == 1)
    }

    /// The owner and expiry (ms) of the lease `name`, if it was ever taken.
    ///
    /// # Errors
    /// Database errors.
    pub async fn lease(&self, name: &str) -> Result<Option<(String, i64)>, StoreError> {
        let select = self
            .store
            .dialect
            .sql("SELECT owner, expires_at FROM cluster_leases WHERE name = ?");
        let row = with_writer!(&self.store.backend, pool => {
            sqlx::query(AssertSqlSafe(select))
                .bind(name)
                .fetch_optional(pool)
                .await
                .ctx("reading a lease")?
                .map(|r| -> Result<(String, i64), StoreError> {
                    Ok((r.try_get(0).ctx("reading a lease")?, r.try_get(1).ctx("reading a lease")?))
                })
                .transpose()?
        });
        Ok(row)
    }
}
