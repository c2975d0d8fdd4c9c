//! Rotating refresh tokens, stored as SHA-256 digests in families.
//!
//! A login starts a family; each refresh marks the presented token used
//! and inserts its successor in the same family. Presenting a token that
//! was already used means it was copied: the whole family is revoked, so
//! both the thief's and the owner's sessions end (RFC 6819 §5.2.2.3,
//! OAuth 2.0 Security BCP "refresh token rotation").

use killkrill_core::storage::StoreError;
use sqlx::{AssertSqlSafe, Row};

use super::AuthStore;
use crate::error::Context;
use crate::{with_pool, with_writer};

/// A refresh token to store.
#[derive(Debug, Clone)]
pub struct NewRefreshToken {
    /// SHA-256 of the token.
    pub hash: [u8; 32],
    /// Owner.
    pub user_id: i64,
    /// The family (one per login).
    pub family: [u8; 16],
    /// Expiry (ns).
    pub expires_at: i64,
    /// The user's session generation it is issued under.
    pub session_gen: i64,
}

/// What presenting a refresh token did.
#[derive(Debug, Clone, PartialEq, Eq)]
pub enum RefreshUse {
    /// It was valid and is now used: issue its successor in `family`.
    Rotated {
        /// Owner.
        user_id: i64,
        /// Family.
        family: [u8; 16],
        /// The session generation it was issued under (its successor's).
        session_gen: i64,
    },
    /// It had been used before: the family is now revoked.
    Reused {
        /// Owner.
        user_id: i64,
        /// How many tokens of the family were revoked.
        revoked: u64,
    },
    /// Unknown, expired or revoked.
    Invalid,
}

impl AuthStore {
    /// Stores a refresh token, only while its user's session generation
    /// still equals `t.session_gen`; false (nothing stored) when the
    /// sessions were ended since, or the user is gone.
    ///
    /// # Errors
    /// Database errors.
    pub async fn insert_refresh(&self, t: &NewRefreshToken, now: i64) -> Result<bool, StoreError> {
        let sql = self.store.dialect.sql(
            "INSERT INTO auth_refresh_tokens (token_hash, user_id, family_id, expires_at, used, revoked, created_at, session_gen) SELECT ?, id, ?, ?, 0, 0, ?, session_gen FROM auth_users WHERE id = ? AND session_gen = ?",
        );
        let n = with_writer!(&self.store.backend, pool => {
            sqlx::query(AssertSqlSafe(sql))
                .bind(&t.hash[..])
                .bind(&t.family[..])
                .bind(t.expires_at)
                .bind(now)
                .bind(t.user_id)
                .bind(t.session_gen)
                .execute(pool)
                .await
                .ctx("storing a refresh token")?
                .rows_affected()
        });
        Ok(n == 1)
    }

    /// Marks the token with this digest used, atomically: of two requests
    /// racing with one token, one rotates and the other is a reuse.
    ///
    /// # Errors
    /// Database errors.
    pub async fn use_refresh(&self, hash: &[u8; 32], now: i64) -> Result<RefreshUse, StoreError> {
        let d = self.store.dialect;
        let mark = d.sql(
            "UPDATE auth_refresh_tokens SET used = 1 WHERE token_hash = ? AND used = 0 AND revoked = 0 AND expires_at > ?",
        );
        let n = with_writer!(&self.store.backend, pool => {
            sqlx::query(AssertSqlSafe(mark))
                .bind(&hash[..])
                .bind(now)
                .execute(pool)
                .await
                .ctx("using a refresh token")?
                .rows_affected()
        });
        let select =
            d.sql("SELECT user_id, family_id, used, session_gen FROM auth_refresh_tokens WHERE token_hash = ?");
        let row: Option<(i64, Vec<u8>, i16, i64)> = with_writer!(&self.store.backend, pool => {
            match sqlx::query(AssertSqlSafe(select)).bind(&hash[..]).fetch_optional(pool).await.ctx("reading a refresh token")? {
                Some(r) => Some((
                    r.try_get(0).ctx("reading a refresh token")?,
                    r.try_get(1).ctx("reading a refresh token")?,
                    r.try_get(2).ctx("reading a refresh token")?,
                    r.try_get(3).ctx("reading a refresh token")?,
                )),
                None => None,
            }
        });
        let Some((user_id, family, used, session_gen)) = row else {
            return Ok(RefreshUse::Invalid);
        };
        let family: [u8; 16] = family.try_into().unwrap_or([0; 16]);
        if n == 1 {
            return Ok(RefreshUse::Rotated {
                user_id,
                family,
                session_gen,
            });
        }
        if used != 0 {
            let revoked = self.revoke_family(&family).await?;
            return Ok(RefreshUse::Reused { user_id, revoked });
        }
        Ok(RefreshUse::Invalid)
    }

    /// Revokes every token of a family; returns how many were still live.
    ///
    /// # Errors
    /// Database errors.
    pub async fn revoke_family(&self, family: &[u8; 16]) -> Result<u64, StoreError> {
        let sql = self
            .store
            .dialect
            .sql("UPDATE auth_refresh_tokens SET revoked = 1 WHERE family_id = ? AND revoked = 0");
        Ok(with_writer!(&self.store.backend, pool => {
            sqlx::query(AssertSqlSafe(sql)).bind(&family[..]).execute(pool).await.ctx("revoking a token family")?.rows_affected()
        }))
    }

    /// Revokes the family of the token with this digest (logout); returns
    /// how many tokens were revoked (0 for an unknown token).
    ///
    /// # Errors
    /// Database errors.
    pub async fn revoke_refresh(&self, hash: &[u8; 32]) -> Result<u64, StoreError> {
        let sql = self
            .store
            .dialect
            .sql("SELECT family_id FROM auth_refresh_tokens WHERE token_hash = ?");
        let family: Option<Vec<u8>> = with_pool!(&self.store.backend, pool => {
            match sqlx::query(AssertSqlSafe(sql)).bind(&hash[..]).fetch_optional(pool).await.ctx("reading a refresh token")? {
                Some(r) => Some(r.try_get(0).ctx("reading a refresh token")?),
                None => None,
            }
        });
        match family.and_then(|f| <[u8; 16]>::try_from(f).ok()) {
            Some(f) => self.revoke_family(&f).await,
            None => Ok(0),
        }
    }

    /// Revokes every refresh token of a user (password or role change);
    /// returns how many were live. Access tokens stay valid (a role change
    /// takes effect through the user row); [`AuthStore::end_sessions`]
    /// ends those too.
    ///
    /// # Errors
    /// Database errors.
    pub async fn revoke_user_tokens(&self, user_id: i64) -> Result<u64, StoreError> {
        let sql = self
            .store
            .dialect
            .sql("UPDATE auth_refresh_tokens SET revoked = 1 WHERE user_id = ? AND revoked = 0");
        Ok(with_writer!(&self.store.backend, pool => {
            sqlx::query(AssertSqlSafe(sql)).bind(user_id).execute(pool).await.ctx("revoking a user's tokens")?.rows_affected()
        }))
    }

    /// Ends every session of a user: revokes its refresh tokens and bumps
    /// its session generation (so its access tokens are refused at once),
    /// in one transaction. Returns how many refresh tokens were live.
    ///
    /// # Errors
    /// Database errors.
    pub async fn end_sessions(&self, user_id: i64) -> Result<u64, StoreError> {
        let d = self.store.dialect;
        let tokens =
            d.sql("UPDATE auth_refresh_tokens SET revoked = 1 WHERE user_id = ? AND revoked = 0");
        let generation = d.sql("UPDATE auth_users SET session_gen = session_gen + 1 WHERE id = ?");
        Ok(with_writer!(&self.store.backend, pool => {
            let mut tx = pool.begin().await.ctx("ending a user's sessions")?;
            let n = sqlx::query(AssertSqlSafe(tokens)).bind(user_id).execute(&mut *tx).await.ctx("ending a user's sessions")?.rows_affected();
            sqlx::query(AssertSqlSafe(generation)).bind(user_id).execute(&mut *tx).await.ctx("ending a user's sessions")?;
            tx.commit().await.ctx("ending a user's sessions")?;
            n
        }))
    }

    /// Live (unused, unrevoked, unexpired) refresh tokens of a user.
    ///
    /// # Errors
    /// Database errors.
    pub async fn live_refresh_count(&self, user_id: i64, now: i64) -> Result<u64, StoreError> {
        let sql = self.store.dialect.sql(
            "SELECT COUNT(*) FROM auth_refresh_tokens WHERE user_id = ? AND used = 0 AND revoked = 0 AND expires_at > ?",
        );
        let n: i64 = with_pool!(&self.store.backend, pool => {
            let r = sqlx::query(AssertSqlSafe(sql)).bind(user_id).bind(now).fetch_one(pool).await.ctx("counting refresh tokens")?;
            r.try_get(0).ctx("counting refresh tokens")?
        });
        Ok(u64::try_from(n).unwrap_or(0))
    }

    /// Deletes tokens that expired before `before` (housekeeping).
    ///
    /// # Errors
    /// Database errors.
    pub async fn delete_expired_refresh(&self, before: i64) -> Result<u64, StoreError> {
        let sql = self
            .store
            .dialect
            .sql("DELETE FROM auth_refresh_tokens WHERE expires_at < ?");
        Ok(with_writer!(&self.store.backend, pool => {
            sqlx::query(AssertSqlSafe(sql)).bind(before).execute(pool).await.ctx("deleting expired refresh tokens")?.rows_affected()
        }))
    }
}
