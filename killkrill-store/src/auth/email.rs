//! Single-use email tokens (password reset, email confirmation), stored as
//! SHA-256 digests with an expiry, and when a user's email was confirmed.

use killkrill_core::storage::StoreError;
use sqlx::{AssertSqlSafe, Row};

use super::AuthStore;
use crate::error::Context;
use crate::{with_pool, with_writer};

impl AuthStore {
    /// Stores a token for `user_id` (`purpose` = `reset` | `confirm`).
    ///
    /// # Errors
    /// Database errors.
    pub async fn insert_email_token(
        &self,
        hash: &[u8; 32],
        user_id: i64,
        purpose: &str,
        expires_at: i64,
        now: i64,
    ) -> Result<(), StoreError> {
        let sql = self.store.dialect.sql(
            "INSERT INTO auth_email_tokens (token_hash, user_id, purpose, expires_at, used, created_at) VALUES (?, ?, ?, ?, 0, ?)",
        );
        with_writer!(&self.store.backend, pool => {
            sqlx::query(AssertSqlSafe(sql)).bind(&hash[..]).bind(user_id).bind(purpose).bind(expires_at).bind(now)
                .execute(pool).await.ctx("storing an email token")?;
        });
        Ok(())
    }

    /// Spends the token with this digest and purpose if it is unused and
    /// not expired at `now`, atomically (of two racing uses one wins);
    /// returns its user.
    ///
    /// # Errors
    /// Database errors.
    pub async fn use_email_token(
        &self,
        hash: &[u8; 32],
        purpose: &str,
        now: i64,
    ) -> Result<Option<i64>, StoreError> {
        let d = self.store.dialect;
        let mark = d.sql(
            "UPDATE auth_email_tokens SET used = 1 WHERE token_hash = ? AND purpose = ? AND used = 0 AND expires_at > ?",
        );
        let get = d.sql("SELECT user_id FROM auth_email_tokens WHERE token_hash = ?");
        with_writer!(&self.store.backend, pool => {
            let c = "using an email token";
            let mut tx = pool.begin().await.ctx(c)?;
            let n = sqlx::query(AssertSqlSafe(mark)).bind(&hash[..]).bind(purpose).bind(now).execute(&mut *tx).await.ctx(c)?.rows_affected();
            let user = if n == 1 {
                let r = sqlx::query(AssertSqlSafe(get)).bind(&hash[..]).fetch_one(&mut *tx).await.ctx(c)?;
                Some(r.try_get::<i64, _>(0).ctx(c)?)
            } else {
                None
            };
            tx.commit().await.ctx(c)?;
            Ok(user)
        })
    }

    /// The user of an unused, unexpired token with this digest and
    /// purpose, without spending it (to check a new password against the
    /// policy before the token is used up).
    ///
    /// # Errors
    /// Database errors.
    pub async fn peek_email_token(
        &self,
        hash: &[u8; 32],
        purpose: &str,
        now: i64,
    ) -> Result<Option<i64>, StoreError> {
        let sql = self.store.dialect.sql(
            "SELECT user_id FROM auth_email_tokens WHERE token_hash = ? AND purpose = ? AND used = 0 AND expires_at > ?",
        );
        with_pool!(&self.store.backend, pool => {
            let c = "reading an email token";
            match sqlx::query(AssertSqlSafe(sql)).bind(&hash[..]).bind(purpose).bind(now).fetch_optional(pool).await.ctx(c)? {
                Some(r) => Ok(Some(r.try_get::<i64, _>(0).ctx(c)?)),
                None => Ok(None),
            }
        })
    }

    /// Spends every unused token of `user_id` with `purpose` (a new reset
    /// request or a password change makes older links useless).
    ///
    /// # Errors
    /// Database errors.
    pub async fn spend_email_tokens(&self, user_id: i64, purpose: &str) -> Result<u64, StoreError> {
        let sql = self.store.dialect.sql(
            "UPDATE auth_email_tokens SET used = 1 WHERE user_id = ? AND purpose = ? AND used = 0",
        );
        Ok(with_writer!(&self.store.backend, pool => {
            sqlx::query(AssertSqlSafe(sql)).bind(user_id).bind(purpose).execute(pool).await.ctx("spending email tokens")?.rows_affected()
        }))
    }

    /// Records that `user_id`'s email is confirmed.
    ///
    /// # Errors
    /// Database errors.
    pub async fn set_email_confirmed(&self, user_id: i64, now: i64) -> Result<bool, StoreError> {
        let sql = self
            .store
            .dialect
            .sql("UPDATE auth_users SET email_confirmed_at = ? WHERE id = ?");
        Ok(with_writer!(&self.store.backend, pool => {
            sqlx::query(AssertSqlSafe(sql)).bind(now).bind(user_id).execute(pool).await.ctx("confirming an email")?.rows_affected()
        }) == 1)
    }

    /// When `user_id`'s email was confirmed (ns), if it was.
    ///
    /// # Errors
    /// Database errors.
    pub async fn email_confirmed_at(&self, user_id: i64) -> Result<Option<i64>, StoreError> {
        let sql = self
            .store
            .dialect
            .sql("SELECT email_confirmed_at FROM auth_users WHERE id = ?");
        with_pool!(&self.store.backend, pool => {
            let c = "reading email confirmation";
            match sqlx::query(AssertSqlSafe(sql)).bind(user_id).fetch_optional(pool).await.ctx(c)? {
                Some(r) => Ok(r.try_get::<Option<i64>, _>(0).ctx(c)?),
                None => Ok(None),
            }
        })
    }

    /// Every user with a stored TOTP secret: `(id, stored value)` (for
    /// re-encrypting clear-text secrets at start).
    ///
    /// # Errors
    /// Database errors.
    pub async fn totp_secrets(&self) -> Result<Vec<(i64, String)>, StoreError> {
        let sql = self.store.dialect.sql(
            "SELECT id, totp_secret FROM auth_users WHERE totp_secret IS NOT NULL ORDER BY id",
        );
        with_pool!(&self.store.backend, pool => {
            let c = "reading TOTP secrets";
            let rows = sqlx::query(AssertSqlSafe(sql)).fetch_all(pool).await.ctx(c)?;
            let mut v = Vec::with_capacity(rows.len());
            for r in rows {
                v.push((r.try_get(0).ctx(c)?, r.try_get(1).ctx(c)?));
            }
            Ok(v)
        })
    }

    /// Replaces a stored TOTP secret if it still is `old` (re-encryption;
    /// a concurrent change wins).
    ///
    /// # Errors
    /// Database errors.
    pub async fn replace_totp_secret(
        &self,
        user_id: i64,
        old: &str,
        new: &str,
    ) -> Result<bool, StoreError> {
        let sql = self
            .store
            .dialect
            .sql("UPDATE auth_users SET totp_secret = ? WHERE id = ? AND totp_secret = ?");
        Ok(with_writer!(&self.store.backend, pool => {
            sqlx::query(AssertSqlSafe(sql)).bind(new).bind(user_id).bind(old).execute(pool).await.ctx("re-encrypting a TOTP secret")?.rows_affected()
        }) == 1)
    }
}
