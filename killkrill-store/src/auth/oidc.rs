//! OpenID Connect logins in progress (`auth_oidc_logins`), shared by every
//! process on the database: a login begun on one process finishes on any
//! other. Keyed by the SHA-256 of the login's `state`; a row is taken (read
//! and deleted) once, so a state used twice fails even across processes.

use killkrill_core::storage::StoreError;
use sqlx::{AssertSqlSafe, Row};

use super::AuthStore;
use crate::error::Context;
use crate::with_writer;

/// What a login in progress keeps between the redirect and the callback.
#[derive(Clone, PartialEq, Eq)]
pub struct OidcLogin {
    /// The PKCE verifier.
    pub verifier: String,
    /// The nonce the ID token must carry.
    pub nonce: String,
    /// When it expires (ns).
    pub expires_at: i64,
}

impl std::fmt::Debug for OidcLogin {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.debug_struct("OidcLogin")
            .field("expires_at", &self.expires_at)
            .finish_non_exhaustive()
    }
}

impl AuthStore {
    /// Purges expired logins, then stores this one unless `cap` unexpired
    /// logins are stored already (`false`: refused). The count and the
    /// insert run in one transaction (the purge before it, on its own); processes beginning logins at the
    /// same instant may each pass the count, so the table can exceed `cap`
    /// by at most the number of concurrent inserts.
    ///
    /// # Errors
    /// Database errors.
    pub async fn insert_oidc_login(
        &self,
        state_hash: &[u8; 32],
        login: &OidcLogin,
        now: i64,
        cap: u64,
    ) -> Result<bool, StoreError> {
        let d = self.store.dialect;
        let sqlite = matches!(d.0, crate::DbType::Sqlite);
        let purge = d.sql("DELETE FROM auth_oidc_logins WHERE expires_at <= ?");
        let count = d.sql("SELECT COUNT(*) FROM auth_oidc_logins");
        let insert = d.sql(
            "INSERT INTO auth_oidc_logins (state_hash, verifier, nonce, expires_at, created_at) VALUES (?, ?, ?, ?, ?)",
        );
        with_writer!(&self.store.backend, pool => {
            let c = "storing an SSO login";
            // The purge is its own statement, outside the transaction: on
            // MySQL (REPEATABLE READ) a range DELETE inside it takes gap
            // locks, and two logins begun at once then deadlocked on their
            // INSERTs into the same gap (review). Without it, the count
            // takes no lock and concurrent inserts of distinct keys do not
            // wait on each other.
            sqlx::query(AssertSqlSafe(purge)).bind(now).execute(pool).await.ctx(c)?;
            // SQLite: take the write lock at BEGIN. A deferred transaction
            // that reads (the count) and then writes fails at once with
            // SQLITE_BUSY when another process sharing the file wrote in
            // between (the busy timeout does not cover that upgrade);
            // IMMEDIATE waits for the lock under the busy timeout instead.
            let mut tx = if sqlite {
                pool.begin_with("BEGIN IMMEDIATE").await
            } else {
                pool.begin().await
            }
            .ctx(c)?;
            let n: i64 = sqlx::query(AssertSqlSafe(count)).fetch_one(&mut *tx).await.ctx(c)?.try_get(0).ctx(c)?;
            if u64::try_from(n).unwrap_or(0) >= cap {
                tx.commit().await.ctx(c)?;
                return Ok(false);
            }
            sqlx::query(AssertSqlSafe(insert))
                .bind(&state_hash[..]).bind(&login.verifier).bind(&login.nonce).bind(login.expires_at).bind(now)
                .execute(&mut *tx).await.ctx(c)?;
            tx.commit().await.ctx(c)?;
            Ok(true)
        })
    }

    /// Takes the login with this state digest: deletes it and returns it
    /// when this call deleted it and it had not expired at `now`. Of two
    /// racing takes (on any processes) at most one gets it; an expired row
    /// is deleted and refused.
    ///
    /// # Errors
    /// Database errors.
    pub async fn take_oidc_login(
        &self,
        state_hash: &[u8; 32],
        now: i64,
    ) -> Result<Option<OidcLogin>, StoreError> {
        let d = self.store.dialect;
        let get =
            d.sql("SELECT verifier, nonce, expires_at FROM auth_oidc_logins WHERE state_hash = ?");
        let del = d.sql("DELETE FROM auth_oidc_logins WHERE state_hash = ?");
        with_writer!(&self.store.backend, pool => {
            let c = "taking an SSO login";
            let Some(r) = sqlx::query(AssertSqlSafe(get)).bind(&state_hash[..]).fetch_optional(pool).await.ctx(c)? else {
                return Ok(None);
            };
            let login = OidcLogin {
                verifier: r.try_get(0).ctx(c)?,
                nonce: r.try_get(1).ctx(c)?,
                expires_at: r.try_get(2).ctx(c)?,
            };
            // The delete decides: only the caller whose DELETE removed the
            // row may use it.
            let n = sqlx::query(AssertSqlSafe(del)).bind(&state_hash[..]).execute(pool).await.ctx(c)?.rows_affected();
            Ok((n == 1 && login.expires_at > now).then_some(login))
        })
    }

    /// Logins in progress stored (expired ones included until purged).
    ///
    /// # Errors
    /// Database errors.
    pub async fn oidc_logins_stored(&self) -> Result<u64, StoreError> {
        let sql = self
            .store
            .dialect
            .sql("SELECT COUNT(*) FROM auth_oidc_logins");
        with_writer!(&self.store.backend, pool => {
            let c = "counting SSO logins";
            let n: i64 = sqlx::query(AssertSqlSafe(sql)).fetch_one(pool).await.ctx(c)?.try_get(0).ctx(c)?;
            Ok(u64::try_from(n).unwrap_or(0))
        })
    }
}
