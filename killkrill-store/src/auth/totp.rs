//! TOTP state per user: the secret (pending until confirmed), whether it is
//! on, the last accepted time step (a code is accepted once), and the
//! single-use recovery codes as SHA-256.

use killkrill_core::storage::StoreError;
use sqlx::{AssertSqlSafe, Row};

use super::AuthStore;
use crate::error::Context;
use crate::{with_pool, with_writer};

/// A user's TOTP state.
#[derive(Clone, PartialEq, Eq, Default)]
pub struct TotpState {
    /// Base32 secret, pending or active.
    pub secret: Option<String>,
    /// Confirmed and required at login.
    pub enabled: bool,
    /// The last time step accepted.
    pub last_step: i64,
}

impl std::fmt::Debug for TotpState {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        // By hand, to keep the TOTP secret out of logs; every field is
        // named, so a new one cannot be forgotten.
        let TotpState {
            secret,
            enabled,
            last_step,
        } = self;
        f.debug_struct("TotpState")
            .field("secret", &killkrill_core::secret::Redacted(secret))
            .field("enabled", enabled)
            .field("last_step", last_step)
            .finish()
    }
}

impl AuthStore {
    /// The TOTP state of a user (default when there is no such user).
    ///
    /// # Errors
    /// Database errors.
    pub async fn totp_state(&self, user_id: i64) -> Result<TotpState, StoreError> {
        let sql = self
            .store
            .dialect
            .sql("SELECT totp_secret, totp_enabled, totp_last_step FROM auth_users WHERE id = ?");
        with_pool!(&self.store.backend, pool => {
            let c = "reading TOTP state";
            match sqlx::query(AssertSqlSafe(sql)).bind(user_id).fetch_optional(pool).await.ctx(c)? {
                Some(r) => Ok(TotpState {
                    secret: r.try_get(0).ctx(c)?,
                    enabled: r.try_get::<i16, _>(1).ctx(c)? != 0,
                    last_step: r.try_get(2).ctx(c)?,
                }),
                None => Ok(TotpState::default()),
            }
        })
    }

    /// Sets the secret and whether it is on; `None` turns TOTP off and
    /// deletes the recovery codes (admin reset).
    ///
    /// # Errors
    /// Database errors.
    pub async fn set_totp(
        &self,
        user_id: i64,
        secret: Option<&str>,
        enabled: bool,
    ) -> Result<bool, StoreError> {
        let d = self.store.dialect;
        let update = d.sql("UPDATE auth_users SET totp_secret = ?, totp_enabled = ?, totp_last_step = 0 WHERE id = ?");
        let codes = d.sql("DELETE FROM auth_recovery_codes WHERE user_id = ?");
        let n = with_writer!(&self.store.backend, pool => {
            let c = "setting TOTP";
            let mut tx = pool.begin().await.ctx(c)?;
            let n = sqlx::query(AssertSqlSafe(update)).bind(secret).bind(i16::from(enabled)).bind(user_id).execute(&mut *tx).await.ctx(c)?.rows_affected();
            if secret.is_none() {
                sqlx::query(AssertSqlSafe(codes)).bind(user_id).execute(&mut *tx).await.ctx(c)?;
            }
            tx.commit().await.ctx(c)?;
            n
        });
        Ok(n == 1)
    }

    /// Turns a pending secret on (confirm), keeping it.
    ///
    /// # Errors
    /// Database errors.
    pub async fn enable_totp(&self, user_id: i64, step: i64) -> Result<bool, StoreError> {
        let sql = self.store.dialect.sql(
            "UPDATE auth_users SET totp_enabled = 1, totp_last_step = ? WHERE id = ? AND totp_secret IS NOT NULL",
        );
        Ok(with_writer!(&self.store.backend, pool => {
            sqlx::query(AssertSqlSafe(sql)).bind(step).bind(user_id).execute(pool).await.ctx("enabling TOTP")?.rows_affected()
        }) == 1)
    }

    /// Records `step` as used if it is later than the last one; false means
    /// the code was already used (replay) or an older step.
    ///
    /// # Errors
    /// Database errors.
    pub async fn advance_totp_step(&self, user_id: i64, step: i64) -> Result<bool, StoreError> {
        let sql = self
            .store
            .dialect
            .sql("UPDATE auth_users SET totp_last_step = ? WHERE id = ? AND totp_last_step < ?");
        Ok(with_writer!(&self.store.backend, pool => {
            sqlx::query(AssertSqlSafe(sql)).bind(step).bind(user_id).bind(step).execute(pool).await.ctx("recording a TOTP step")?.rows_affected()
        }) == 1)
    }

    /// Replaces a user's recovery codes.
    ///
    /// # Errors
    /// Database errors.
    pub async fn replace_recovery_codes(
        &self,
        user_id: i64,
        hashes: &[[u8; 32]],
    ) -> Result<(), StoreError> {
        let d = self.store.dialect;
        let del = d.sql("DELETE FROM auth_recovery_codes WHERE user_id = ?");
        let ins =
            d.sql("INSERT INTO auth_recovery_codes (user_id, code_hash, used) VALUES (?, ?, 0)");
        with_writer!(&self.store.backend, pool => {
            let c = "storing recovery codes";
            let mut tx = pool.begin().await.ctx(c)?;
            sqlx::query(AssertSqlSafe(del.clone())).bind(user_id).execute(&mut *tx).await.ctx(c)?;
            for h in hashes {
                sqlx::query(AssertSqlSafe(ins.clone())).bind(user_id).bind(&h[..]).execute(&mut *tx).await.ctx(c)?;
            }
            tx.commit().await.ctx(c)?;
        });
        Ok(())
    }

    /// Spends a recovery code; false when unknown or used.
    ///
    /// # Errors
    /// Database errors.
    pub async fn use_recovery_code(
        &self,
        user_id: i64,
        hash: &[u8; 32],
    ) -> Result<bool, StoreError> {
        let sql = self.store.dialect.sql(
            "UPDATE auth_recovery_codes SET used = 1 WHERE user_id = ? AND code_hash = ? AND used = 0",
        );
        Ok(with_writer!(&self.store.backend, pool => {
            sqlx::query(AssertSqlSafe(sql)).bind(user_id).bind(&hash[..]).execute(pool).await.ctx("using a recovery code")?.rows_affected()
        }) == 1)
    }
}
