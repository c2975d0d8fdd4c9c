//! API keys on [`Auth`]: the lookup of a presented key (through the
//! per-process [`KeyCache`](super::key_cache::KeyCache) of verified keys),
//! creation (the key is shown once, stored as its SHA-256) and revocation
//! (this process's cache forgets the key before the call returns; other
//! processes within `auth.api_key_cache_ms`).

use killkrill_core::event::Tenant;
use killkrill_store::auth::{NewApiKey, Scope};
use metrics::counter;

use super::principal::{Credential, Principal};
use super::service::{AUTH_REJECTED, Auth, AuthError};
use super::{keys, now_nanos};

impl Auth {
    /// The principal of API key `key` (cached once verified).
    ///
    /// # Errors
    /// [`AuthError::Unauthenticated`] (counted by reason), [`AuthError::Store`].
    pub(super) async fn key_principal(&self, key: &str) -> Result<Principal, AuthError> {
        let bad = |why: &'static str| {
            counter!(AUTH_REJECTED, "reason" => why).increment(1);
            AuthError::Unauthenticated(why.into())
        };
        if !keys::well_formed(key) {
            return Err(bad("malformed API key"));
        }
        let digest = keys::digest(key);
        if let Some(p) = self.keys.get(&digest, now_nanos()) {
            return Ok(p);
        }
        let epoch = self.keys.epoch();
        let row = self
            .store
            .api_key_by_hash(&digest)
            .await?
            .ok_or_else(|| bad("unknown API key"))?;
        if !keys::same(&row.hash, &digest) {
            return Err(bad("unknown API key"));
        }
        if row.revoked {
            return Err(bad("revoked API key"));
        }
        if row.expires_at.is_some_and(|e| e <= now_nanos()) {
            return Err(bad("expired API key"));
        }
        let p = Principal {
            tenant: row.tenant,
            subject: format!("apikey:{}", row.name),
            credential: Credential::ApiKey {
                id: row.id,
                scopes: row.scopes,
            },
        };
        self.keys.put(digest, row.expires_at, &p, epoch);
        Ok(p)
    }

    /// Revokes API key `id` (of `tenant` only, when given); `false` when
    /// there is no such live key. Verified keys this process holds are
    /// forgotten before it returns, so the key is refused at once here.
    ///
    /// # Errors
    /// Database errors.
    pub async fn revoke_api_key(
        &self,
        id: i64,
        tenant: Option<&Tenant>,
    ) -> Result<bool, AuthError> {
        // Cleared after the database answered, also when this future is
        // dropped meanwhile (the commit may have happened).
        let clear = self.keys.clear_on_drop();
        let r = self.store.revoke_api_key(id, tenant).await;
        drop(clear);
        Ok(r?)
    }

    /// Creates an API key; returns its id and the key (shown once).
    ///
    /// # Errors
    /// [`AuthError::Invalid`] for a bad name, [`AuthError::Store`].
    pub async fn create_api_key(
        &self,
        tenant: &Tenant,
        name: &str,
        scopes: Vec<Scope>,
        expires_at: Option<i64>,
        created_by: &str,
    ) -> Result<(i64, String), AuthError> {
        if name.is_empty() || name.len() > 128 || name.chars().any(char::is_control) {
            return Err(AuthError::Invalid(
                "name: 1 to 128 characters, no control characters".into(),
            ));
        }
        if scopes.is_empty() {
            return Err(AuthError::Invalid(
                "scopes: at least one of ingest, read, admin".into(),
            ));
        }
        let now = now_nanos();
        if expires_at.is_some_and(|e| e <= now) {
            return Err(AuthError::Invalid(
                "expires_at: must be in the future".into(),
            ));
        }
        self.store.ensure_tenant(tenant, now).await?;
        let key = keys::generate();
        let id = self
            .store
            .create_api_key(
                &NewApiKey {
                    hash: keys::digest(&key),
                    prefix: keys::shown_prefix(&key),
                    name: name.to_owned(),
                    tenant: tenant.clone(),
                    scopes,
                    expires_at,
                    created_by: created_by.to_owned(),
                },
                now,
            )
            .await?;
        Ok((id, key))
    }
}
