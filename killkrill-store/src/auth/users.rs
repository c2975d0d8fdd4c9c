//! Tenants and users, including the per-account lockout counters.

use killkrill_core::event::Tenant;
use killkrill_core::storage::StoreError;
use sqlx::{AssertSqlSafe, Row};

use super::{AuthStore, Role, corrupt, tenant_of};
use crate::error::Context;
use crate::{with_pool, with_writer};

/// A user to create.
#[derive(Debug, Clone)]
pub struct NewUser {
    /// Login name (unique across tenants).
    pub email: String,
    /// The tenant everything the user does belongs to.
    pub tenant: Tenant,
    /// Role.
    pub role: Role,
    /// argon2id PHC string.
    pub password_hash: String,
}

/// A stored user.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct UserRow {
    /// Id.
    pub id: i64,
    /// Login name.
    pub email: String,
    /// Tenant.
    pub tenant: Tenant,
    /// Role.
    pub role: Role,
    /// argon2id PHC string.
    pub password_hash: String,
    /// Failed logins since the last success.
    pub failed_logins: u32,
    /// Locked until this time (ns since the epoch); 0 when not locked.
    pub locked_until: i64,
    /// Created (ns).
    pub created_at: i64,
    /// The session generation: bumped when the user's sessions end
    /// ([`AuthStore::set_password`], [`AuthStore::end_sessions`]); an
    /// access token issued under another generation is refused.
    pub session_gen: i64,
}

const USER_COLS: &str =
    "id, email, tenant, role, password_hash, failed_logins, locked_until, created_at, session_gen";

fn user_of<'r, R: Row>(r: &'r R) -> Result<UserRow, StoreError>
where
    usize: sqlx::ColumnIndex<R>,
    i64: sqlx::Type<R::Database> + sqlx::Decode<'r, R::Database>,
    String: sqlx::Type<R::Database> + sqlx::Decode<'r, R::Database>,
{
    let role: String = r.try_get(3).ctx("reading a user")?;
    let tenant: String = r.try_get(2).ctx("reading a user")?;
    Ok(UserRow {
        id: r.try_get(0).ctx("reading a user")?,
        email: r.try_get(1).ctx("reading a user")?,
        tenant: tenant_of(&tenant)?,
        role: role.parse().map_err(|e| corrupt("stored role", e))?,
        password_hash: r.try_get(4).ctx("reading a user")?,
        failed_logins: u32::try_from(r.try_get::<i64, _>(5).ctx("reading a user")?).unwrap_or(0),
        locked_until: r.try_get(6).ctx("reading a user")?,
        created_at: r.try_get(7).ctx("reading a user")?,
        session_gen: r.try_get(8).ctx("reading a user")?,
    })
}

impl AuthStore {
    /// Creates the tenant unless it exists; true when it was created.
    ///
    /// # Errors
    /// Database errors.
    pub async fn ensure_tenant(&self, tenant: &Tenant, now: i64) -> Result<bool, StoreError> {
        let d = self.store.dialect;
        let sql = d.sql(&match d.0 {
            crate::DbType::Mysql => {
                // INSERT IGNORE, not ON DUPLICATE KEY UPDATE: under sqlx's
                // CLIENT_FOUND_ROWS the latter reports 1 row for a no-op.
                // Both columns are validated (tenant name, integer).
                "INSERT IGNORE INTO auth_tenants (name, created_at) VALUES (?, ?)".to_owned()
            }
            _ => "INSERT INTO auth_tenants (name, created_at) VALUES (?, ?) ON CONFLICT (name) DO NOTHING".to_owned(),
        });
        let n = with_writer!(&self.store.backend, pool => {
            sqlx::query(AssertSqlSafe(sql))
                .bind(tenant.as_str())
                .bind(now)
                .execute(pool)
                .await
                .ctx("creating a tenant")?
                .rows_affected()
        });
        Ok(n == 1)
    }

    /// Every tenant with its creation time, by name.
    ///
    /// # Errors
    /// Database errors.
    pub async fn tenants(&self) -> Result<Vec<(Tenant, i64)>, StoreError> {
        let rows: Vec<(String, i64)> = with_pool!(&self.store.backend, pool => {
            let rows = sqlx::query("SELECT name, created_at FROM auth_tenants ORDER BY name")
                .fetch_all(pool)
                .await
                .ctx("listing tenants")?;
            let mut v = Vec::with_capacity(rows.len());
            for r in rows {
                v.push((r.try_get(0).ctx("reading a tenant")?, r.try_get(1).ctx("reading a tenant")?));
            }
            v
        });
        rows.into_iter()
            .map(|(n, t)| Ok((tenant_of(&n)?, t)))
            .collect()
    }

    /// Creates a user; returns its id.
    ///
    /// # Errors
    /// [`ErrorKind::Conflict`](killkrill_core::storage::ErrorKind::Conflict)
    /// when the email is taken; database errors.
    pub async fn create_user(&self, u: &NewUser, now: i64) -> Result<i64, StoreError> {
        let d = self.store.dialect;
        let insert = d.sql(
            "INSERT INTO auth_users (email, tenant, role, password_hash, failed_logins, locked_until, created_at, updated_at) VALUES (?, ?, ?, ?, 0, 0, ?, ?)",
        );
        let select = d.sql("SELECT id FROM auth_users WHERE email = ?");
        let id = with_writer!(&self.store.backend, pool => {
            let mut tx = pool.begin().await.ctx("creating a user")?;
            sqlx::query(AssertSqlSafe(insert))
                .bind(u.email.as_str())
                .bind(u.tenant.as_str())
                .bind(u.role.as_str())
                .bind(u.password_hash.as_str())
                .bind(now)
                .bind(now)
                .execute(&mut *tx)
                .await
                .ctx("creating a user")?;
            let r = sqlx::query(AssertSqlSafe(select))
                .bind(u.email.as_str())
                .fetch_one(&mut *tx)
                .await
                .ctx("creating a user")?;
            let id: i64 = r.try_get(0).ctx("creating a user")?;
            tx.commit().await.ctx("creating a user")?;
            id
        });
        Ok(id)
    }

    async fn user_where(
        &self,
        cond: &str,
        bind: UserKey<'_>,
    ) -> Result<Option<UserRow>, StoreError> {
        let sql = self
            .store
            .dialect
            .sql(&format!("SELECT {USER_COLS} FROM auth_users WHERE {cond}"));
        with_pool!(&self.store.backend, pool => {
            let q = sqlx::query(AssertSqlSafe(sql));
            let q = match bind {
                UserKey::Id(id) => q.bind(id),
                UserKey::Email(e) => q.bind(e),
            };
            match q.fetch_optional(pool).await.ctx("reading a user")? {
                Some(r) => Ok(Some(user_of(&r)?)),
                None => Ok(None),
            }
        })
    }

    /// The user with this email.
    ///
    /// # Errors
    /// Database errors.
    pub async fn user_by_email(&self, email: &str) -> Result<Option<UserRow>, StoreError> {
        self.user_where("email = ?", UserKey::Email(email)).await
    }

    /// The user with this id.
    ///
    /// # Errors
    /// Database errors.
    pub async fn user(&self, id: i64) -> Result<Option<UserRow>, StoreError> {
        self.user_where("id = ?", UserKey::Id(id)).await
    }

    /// Users of `tenant` (every tenant when `None`), by id.
    ///
    /// # Errors
    /// Database errors.
    pub async fn users(&self, tenant: Option<&Tenant>) -> Result<Vec<UserRow>, StoreError> {
        let sql = self.store.dialect.sql(&format!(
            "SELECT {USER_COLS} FROM auth_users{} ORDER BY id LIMIT 10000",
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
            let rows = q.fetch_all(pool).await.ctx("listing users")?;
            rows.iter().map(user_of).collect()
        })
    }

    /// How many users exist.
    ///
    /// # Errors
    /// Database errors.
    pub async fn user_count(&self) -> Result<u64, StoreError> {
        let n: i64 = with_pool!(&self.store.backend, pool => {
            let r = sqlx::query("SELECT COUNT(*) FROM auth_users")
                .fetch_one(pool)
                .await
                .ctx("counting users")?;
            r.try_get(0).ctx("counting users")?
        });
        Ok(u64::try_from(n).unwrap_or(0))
    }

    async fn update_user(
        &self,
        set: &str,
        id: i64,
        v: UpdateValue<'_>,
        now: i64,
    ) -> Result<bool, StoreError> {
        let sql = self.store.dialect.sql(&format!(
            "UPDATE auth_users SET {set} = ?, updated_at = ? WHERE id = ?"
        ));
        let n = with_writer!(&self.store.backend, pool => {
            let q = sqlx::query(AssertSqlSafe(sql));
            let q = match v {
                UpdateValue::Text(t) => q.bind(t),
            };
            q.bind(now).bind(id).execute(pool).await.ctx("updating a user")?.rows_affected()
        });
        Ok(n == 1)
    }

    /// Changes a user's role; false when there is no such user.
    ///
    /// # Errors
    /// Database errors.
    pub async fn set_role(&self, id: i64, role: Role, now: i64) -> Result<bool, StoreError> {
        self.update_user("role", id, UpdateValue::Text(role.as_str()), now)
            .await
    }

    /// Replaces a user's password hash, clears the lockout, bumps the
    /// session generation (so every access token issued before dies) and
    /// revokes the user's refresh tokens, in one transaction; false when
    /// there is no such user.
    ///
    /// # Errors
    /// Database errors.
    pub async fn set_password(&self, id: i64, hash: &str, now: i64) -> Result<bool, StoreError> {
        let d = self.store.dialect;
        let user = d.sql(
            "UPDATE auth_users SET password_hash = ?, session_gen = session_gen + 1, failed_logins = 0, locked_until = 0, updated_at = ? WHERE id = ?",
        );
        let tokens =
            d.sql("UPDATE auth_refresh_tokens SET revoked = 1 WHERE user_id = ? AND revoked = 0");
        // One transaction: the generation and the refresh tokens change
        // together, so no token outlives the change (see `insert_refresh`).
        let n = with_writer!(&self.store.backend, pool => {
            let mut tx = pool.begin().await.ctx("setting a password")?;
            let n = sqlx::query(AssertSqlSafe(user))
                .bind(hash)
                .bind(now)
                .bind(id)
                .execute(&mut *tx)
                .await
                .ctx("setting a password")?
                .rows_affected();
            sqlx::query(AssertSqlSafe(tokens)).bind(id).execute(&mut *tx).await.ctx("setting a password")?;
            tx.commit().await.ctx("setting a password")?;
            n
        });
        Ok(n == 1)
    }

    /// Deletes a user and its refresh tokens; false when there was none.
    ///
    /// # Errors
    /// Database errors.
    pub async fn delete_user(&self, id: i64) -> Result<bool, StoreError> {
        let d = self.store.dialect;
        let tokens = d.sql("DELETE FROM auth_refresh_tokens WHERE user_id = ?");
        let codes = d.sql("DELETE FROM auth_recovery_codes WHERE user_id = ?");
        let user = d.sql("DELETE FROM auth_users WHERE id = ?");
        let n = with_writer!(&self.store.backend, pool => {
            let mut tx = pool.begin().await.ctx("deleting a user")?;
            sqlx::query(AssertSqlSafe(tokens)).bind(id).execute(&mut *tx).await.ctx("deleting a user")?;
            sqlx::query(AssertSqlSafe(codes)).bind(id).execute(&mut *tx).await.ctx("deleting a user")?;
            let n = sqlx::query(AssertSqlSafe(user)).bind(id).execute(&mut *tx).await.ctx("deleting a user")?.rows_affected();
            tx.commit().await.ctx("deleting a user")?;
            n
        });
        Ok(n == 1)
    }

    /// Counts a failed login: the counter goes up by one and, when it
    /// reaches `max_failures`, the account is locked until `lock_until`
    /// (so after a lock expires, the next failure locks it again; a
    /// successful login clears the counter). Returns the new count.
    ///
    /// # Errors
    /// Database errors.
    pub async fn login_failed(
        &self,
        id: i64,
        max_failures: u32,
        lock_until: i64,
    ) -> Result<u32, StoreError> {
        let d = self.store.dialect;
        let update = d.sql(
            "UPDATE auth_users SET locked_until = CASE WHEN failed_logins + 1 >= ? THEN ? ELSE locked_until END, failed_logins = failed_logins + 1 WHERE id = ?",
        );
        let select = d.sql("SELECT failed_logins, locked_until FROM auth_users WHERE id = ?");
        let max = i64::from(max_failures.max(1));
        let (n, _locked): (i64, i64) = with_writer!(&self.store.backend, pool => {
            let mut tx = pool.begin().await.ctx("counting a failed login")?;
            sqlx::query(AssertSqlSafe(update))
                .bind(max)
                .bind(lock_until)
                .bind(id)
                .execute(&mut *tx)
                .await
                .ctx("counting a failed login")?;
            let r = sqlx::query(AssertSqlSafe(select)).bind(id).fetch_optional(&mut *tx).await.ctx("counting a failed login")?;
            let v = match r {
                Some(r) => (r.try_get(0).ctx("counting a failed login")?, r.try_get(1).ctx("counting a failed login")?),
                None => (0, 0),
            };
            tx.commit().await.ctx("counting a failed login")?;
            v
        });
        Ok(u32::try_from(n).unwrap_or(u32::MAX))
    }

    /// Clears the failed-login counter and the lock.
    ///
    /// # Errors
    /// Database errors.
    pub async fn login_succeeded(&self, id: i64) -> Result<(), StoreError> {
        let sql = self
            .store
            .dialect
            .sql("UPDATE auth_users SET failed_logins = 0, locked_until = 0 WHERE id = ? AND (failed_logins <> 0 OR locked_until <> 0)");
        with_writer!(&self.store.backend, pool => {
            sqlx::query(AssertSqlSafe(sql)).bind(id).execute(pool).await.ctx("clearing failed logins")?;
        });
        Ok(())
    }
}

enum UserKey<'a> {
    Id(i64),
    Email(&'a str),
}

enum UpdateValue<'a> {
    Text(&'a str),
}
