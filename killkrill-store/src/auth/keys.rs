//! API keys: named, scoped, tenant-bound, optionally expiring, stored as
//! the SHA-256 of the key. The key itself exists only in the answer that
//! created it.

use killkrill_core::event::Tenant;
use killkrill_core::storage::StoreError;
use sqlx::{AssertSqlSafe, Row};

use super::{AuthStore, Scope, corrupt, tenant_of};
use crate::error::Context;
use crate::{with_pool, with_writer};

/// A key to store.
#[derive(Debug, Clone)]
pub struct NewApiKey {
    /// SHA-256 of the key.
    pub hash: [u8; 32],
    /// The first characters of the key, to tell keys apart in lists.
    pub prefix: String,
    /// Name.
    pub name: String,
    /// Tenant.
    pub tenant: Tenant,
    /// Scopes.
    pub scopes: Vec<Scope>,
    /// Expiry (ns), if any.
    pub expires_at: Option<i64>,
    /// Who created it.
    pub created_by: String,
}

/// A stored key (without the key).
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct ApiKeyRow {
    /// Id.
    pub id: i64,
    /// SHA-256 of the key.
    pub hash: Vec<u8>,
    /// The first characters of the key.
    pub prefix: String,
    /// Name.
    pub name: String,
    /// Tenant.
    pub tenant: Tenant,
    /// Scopes.
    pub scopes: Vec<Scope>,
    /// Expiry (ns).
    pub expires_at: Option<i64>,
    /// Revoked.
    pub revoked: bool,
    /// Creator.
    pub created_by: String,
    /// Created (ns).
    pub created_at: i64,
}

const KEY_COLS: &str =
    "id, key_hash, prefix, name, tenant, scopes, expires_at, revoked, created_by, created_at";

fn key_of<'r, R: Row>(r: &'r R) -> Result<ApiKeyRow, StoreError>
where
    usize: sqlx::ColumnIndex<R>,
    i64: sqlx::Type<R::Database> + sqlx::Decode<'r, R::Database>,
    i16: sqlx::Type<R::Database> + sqlx::Decode<'r, R::Database>,
    Option<i64>: sqlx::Type<R::Database> + sqlx::Decode<'r, R::Database>,
    String: sqlx::Type<R::Database> + sqlx::Decode<'r, R::Database>,
    Vec<u8>: sqlx::Type<R::Database> + sqlx::Decode<'r, R::Database>,
{
    let c = "reading an API key";
    let tenant: String = r.try_get(4).ctx(c)?;
    let scopes: String = r.try_get(5).ctx(c)?;
    Ok(ApiKeyRow {
        id: r.try_get(0).ctx(c)?,
        hash: r.try_get(1).ctx(c)?,
        prefix: r.try_get(2).ctx(c)?,
        name: r.try_get(3).ctx(c)?,
        tenant: tenant_of(&tenant)?,
        scopes: Scope::parse_list(&scopes).map_err(|e| corrupt("stored scopes", e))?,
        expires_at: r.try_get(6).ctx(c)?,
        revoked: r.try_get::<i16, _>(7).ctx(c)? != 0,
        created_by: r.try_get(8).ctx(c)?,
        created_at: r.try_get(9).ctx(c)?,
    })
}

impl AuthStore {
    /// Stores a key; returns its id.
    ///
    /// # Errors
    /// Database errors.
    pub async fn create_api_key(&self, k: &NewApiKey, now: i64) -> Result<i64, StoreError> {
        let d = self.store.dialect;
        let insert = d.sql(
            "INSERT INTO auth_api_keys (key_hash, prefix, name, tenant, scopes, expires_at, revoked, created_by, created_at) VALUES (?, ?, ?, ?, ?, ?, 0, ?, ?)",
        );
        let select = d.sql("SELECT id FROM auth_api_keys WHERE key_hash = ?");
        let id = with_writer!(&self.store.backend, pool => {
            let mut tx = pool.begin().await.ctx("creating an API key")?;
            sqlx::query(AssertSqlSafe(insert))
                .bind(&k.hash[..])
                .bind(k.prefix.as_str())
                .bind(k.name.as_str())
                .bind(k.tenant.as_str())
                .bind(Scope::join(&k.scopes))
                .bind(k.expires_at)
                .bind(k.created_by.as_str())
                .bind(now)
                .execute(&mut *tx)
                .await
                .ctx("creating an API key")?;
            let r = sqlx::query(AssertSqlSafe(select)).bind(&k.hash[..]).fetch_one(&mut *tx).await.ctx("creating an API key")?;
            let id: i64 = r.try_get(0).ctx("creating an API key")?;
            tx.commit().await.ctx("creating an API key")?;
            id
        });
        Ok(id)
    }

    /// The key with this digest, revoked or not.
    ///
    /// # Errors
    /// Database errors.
    pub async fn api_key_by_hash(&self, hash: &[u8; 32]) -> Result<Option<ApiKeyRow>, StoreError> {
        let sql = self.store.dialect.sql(&format!(
            "SELECT {KEY_COLS} FROM auth_api_keys WHERE key_hash = ?"
        ));
        with_pool!(&self.store.backend, pool => {
            match sqlx::query(AssertSqlSafe(sql)).bind(&hash[..]).fetch_optional(pool).await.ctx("reading an API key")? {
                Some(r) => Ok(Some(key_of(&r)?)),
                None => Ok(None),
            }
        })
    }

    /// Keys of `tenant` (every tenant when `None`), by id.
    ///
    /// # Errors
    /// Database errors.
    pub async fn api_keys(&self, tenant: Option<&Tenant>) -> Result<Vec<ApiKeyRow>, StoreError> {
        let sql = self.store.dialect.sql(&format!(
            "SELECT {KEY_COLS} FROM auth_api_keys{} ORDER BY id LIMIT 10000",
            if tenant.is_some() {
                " WHERE tenant = ?"
            } else {
                ""
            }
        ));
        with_pool!(&self.store.backend, pool => {
            let mut q = sqlx::query(AssertSqlSafe(sql));
            if let Some(t) = tenant {
                q = q.bind(t.as_str());
            }
            let rows = q.fetch_all(pool).await.ctx("listing API keys")?;
            rows.iter().map(key_of).collect()
        })
    }

    /// Revokes a key (only within `tenant` when given); false when no such
    /// live key.
    ///
    /// # Errors
    /// Database errors.
    pub async fn revoke_api_key(
        &self,
        id: i64,
        tenant: Option<&Tenant>,
    ) -> Result<bool, StoreError> {
        let sql = self.store.dialect.sql(&format!(
            "UPDATE auth_api_keys SET revoked = 1 WHERE id = ? AND revoked = 0{}",
            if tenant.is_some() {
                " AND tenant = ?"
            } else {
                ""
            }
        ));
        let n = with_writer!(&self.store.backend, pool => {
            let mut q = sqlx::query(AssertSqlSafe(sql)).bind(id);
            if let Some(t) = tenant {
                q = q.bind(t.as_str());
            }
            q.execute(pool).await.ctx("revoking an API key")?.rows_affected()
        });
        Ok(n == 1)
    }

    /// Revokes the live keys of `tenant` named `name`; returns how many.
    ///
    /// # Errors
    /// Database errors.
    pub async fn revoke_api_key_named(
        &self,
        tenant: &Tenant,
        name: &str,
    ) -> Result<u64, StoreError> {
        let sql = self.store.dialect.sql(
            "UPDATE auth_api_keys SET revoked = 1 WHERE tenant = ? AND name = ? AND revoked = 0",
        );
        Ok(with_writer!(&self.store.backend, pool => {
            sqlx::query(AssertSqlSafe(sql)).bind(tenant.as_str()).bind(name).execute(pool).await.ctx("revoking an API key")?.rows_affected()
        }))
    }
}
