//! [`Auth`]: logins, token rotation, credentials on requests, and the
//! user / key changes (each audited).

use std::net::IpAddr;
use std::path::Path;
use std::time::{Duration, Instant};

use killkrill_core::event::Tenant;
use killkrill_core::storage::{ErrorKind, StoreError};
use killkrill_store::Store;
use killkrill_store::auth::{
    AuditEntry, AuthStore, NewRefreshToken, NewUser, RefreshUse, Role, UserRow,
};
use metrics::counter;
use serde::Serialize;

use super::config::{AuthConfig, AuthMode};
use super::jwt::{Jwt, SecretSource, load_secret};
use super::key_cache::KeyCache;
use super::limiter::AddressLimiter;
use super::principal::{Credential, Principal};
use super::second_factor::SecondFactor;
use super::secretbox::SecretBox;
use super::{keys, now_nanos, password};

/// Counter of refused credentials, by reason.
pub const AUTH_REJECTED: &str = "killkrill_auth_rejected_total";
/// Counter of logins, by result.
pub const AUTH_LOGINS: &str = "killkrill_auth_logins_total";

const NANOS: i64 = 1_000_000_000;
/// Refresh tokens start with this.
pub const REFRESH_PREFIX: &str = "kkr_";

/// Why a request or an operation was refused.
#[derive(Debug, thiserror::Error)]
pub enum AuthError {
    /// Missing or bad credentials (401). The text is for the log only.
    #[error("unauthenticated: {0}")]
    Unauthenticated(String),
    /// The password was right but the account has TOTP on and no (or no
    /// valid) code came with it (401 naming the missing factor).
    #[error("second factor required")]
    SecondFactor,
    /// Too many failures (429).
    #[error("too many failed logins")]
    RateLimited {
        /// Seconds to wait.
        retry_after: u64,
    },
    /// Not allowed (403), with a reason the client may see.
    #[error("forbidden: {0}")]
    Forbidden(String),
    /// Bad input (400), with a reason the client may see.
    #[error("invalid: {0}")]
    Invalid(String),
    /// No such thing (404).
    #[error("not found: {0}")]
    NotFound(String),
    /// Already exists (409).
    #[error("conflict: {0}")]
    Conflict(String),
    /// Database trouble (503; text for the log only).
    #[error(transparent)]
    Store(#[from] StoreError),
    /// Anything else (500; text for the log only).
    #[error("internal: {0}")]
    Internal(String),
}

/// An access token and a refresh token.
#[derive(Clone, Serialize)]
pub struct TokenPair {
    /// JWT for `Authorization: Bearer`.
    pub access_token: String,
    /// Always `Bearer`.
    pub token_type: &'static str,
    /// Seconds the access token lives.
    pub expires_in: u64,
    /// Single-use token for `/api/v1/auth/refresh`.
    pub refresh_token: String,
}

impl std::fmt::Debug for TokenPair {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        // By hand, to keep the tokens out of logs; every field is
        // named, so a new one cannot be forgotten.
        let TokenPair {
            access_token: _,
            token_type,
            expires_in,
            refresh_token: _,
        } = self;
        f.debug_struct("TokenPair")
            .field("access_token", &killkrill_core::secret::REDACTED)
            .field("token_type", token_type)
            .field("expires_in", expires_in)
            .field("refresh_token", &killkrill_core::secret::REDACTED)
            .finish()
    }
}

/// The authentication service of one process.
#[derive(Debug)]
pub struct Auth {
    pub(super) store: AuthStore,
    cfg: AuthConfig,
    jwt: Jwt,
    limiter: AddressLimiter,
    system_tenant: Tenant,
    secret_source: SecretSource,
    pub(super) sealer: SecretBox,
    pub(super) keys: KeyCache,
}

impl Auth {
    /// Loads the signing secret and builds the service.
    ///
    /// # Errors
    /// A message naming what is wrong (`JWT_SECRET` in release mode).
    pub fn build(
        cfg: &AuthConfig,
        store: &Store,
        data_dir: &Path,
        system_tenant: Tenant,
    ) -> Result<Self, String> {
        cfg.validate().map_err(|(k, p)| format!("{k}: {p}"))?;
        let (secret, secret_source) =
            load_secret(cfg.jwt_secret.as_deref(), cfg.release_mode, data_dir)?;
        Ok(Auth {
            store: store.auth(),
            sealer: SecretBox::new(cfg.secret_key.as_deref().map(str::as_bytes), &secret),
            jwt: Jwt::new(&secret, &cfg.issuer, &cfg.audience),
            limiter: AddressLimiter::with_max_entries(
                cfg.address_max_failures,
                Duration::from_secs(cfg.address_window_secs),
                cfg.address_max_entries,
            ),
            keys: KeyCache::new(Duration::from_millis(cfg.api_key_cache_ms)),
            cfg: cfg.clone(),
            system_tenant,
            secret_source,
        })
    }

    /// [`Auth::build`], except that processes on a shared database
    /// (PostgreSQL, MySQL) without `JWT_SECRET` take the signing secret from
    /// the database (created by the first of them) instead of a file in
    /// their own data directory, so tokens issued by one are accepted by
    /// all. SQLite keeps the file.
    ///
    /// # Errors
    /// As [`Auth::build`]; database errors.
    pub async fn open(
        cfg: &AuthConfig,
        store: &Store,
        data_dir: &Path,
        system_tenant: Tenant,
    ) -> Result<Self, String> {
        if store.db_type() == killkrill_store::DbType::Sqlite {
            return Self::build(cfg, store, data_dir, system_tenant);
        }
        cfg.validate().map_err(|(k, p)| format!("{k}: {p}"))?;
        let (secret, secret_source) =
            super::jwt::load_shared_secret(cfg.jwt_secret.as_deref(), cfg.release_mode, store)
                .await?;
        if cfg.secret_key.is_none() && cfg.jwt_secret.is_none() {
            // The key sealing TOTP secrets is derived from a secret kept in
            // the same database: a dump holds both.
            tracing::warn!(
                "no KILLKRILL_SECRET_KEY and no JWT_SECRET: the signing secret and the key of the TOTP secrets at rest come from the database itself; set KILLKRILL_SECRET_KEY (and JWT_SECRET) so a database dump does not hold them"
            );
        }
        Ok(Auth {
            store: store.auth(),
            sealer: SecretBox::new(cfg.secret_key.as_deref().map(str::as_bytes), &secret),
            jwt: Jwt::new(&secret, &cfg.issuer, &cfg.audience),
            limiter: AddressLimiter::with_max_entries(
                cfg.address_max_failures,
                Duration::from_secs(cfg.address_window_secs),
                cfg.address_max_entries,
            ),
            keys: KeyCache::new(Duration::from_millis(cfg.api_key_cache_ms)),
            cfg: cfg.clone(),
            system_tenant,
            secret_source,
        })
    }

    /// For the command line: users and keys only. The signing key is random
    /// and thrown away (the CLI issues no tokens), so no secret is needed.
    pub fn for_cli(store: &Store, system_tenant: Tenant) -> Self {
        let cfg = AuthConfig::default();
        let secret: [u8; 32] = rand::random();
        Auth {
            store: store.auth(),
            sealer: SecretBox::new(None, &secret),
            jwt: Jwt::new(&secret, &cfg.issuer, &cfg.audience),
            limiter: AddressLimiter::new(1, Duration::from_secs(1)),
            // The CLI verifies no keys.
            keys: KeyCache::new(Duration::ZERO),
            cfg,
            system_tenant,
            secret_source: SecretSource::Env,
        }
    }

    /// Whether authentication is off (development).
    pub fn disabled(&self) -> bool {
        self.cfg.mode == AuthMode::Disabled
    }

    /// The settings.
    pub fn config(&self) -> &AuthConfig {
        &self.cfg
    }

    /// The tables.
    pub fn store(&self) -> &AuthStore {
        &self.store
    }

    /// The configured default tenant, whose admins manage every tenant.
    pub fn system_tenant(&self) -> &Tenant {
        &self.system_tenant
    }

    /// Where the signing secret came from.
    pub fn secret_source(&self) -> SecretSource {
        self.secret_source
    }

    /// The caller of a request with these headers: `Ok(None)` when it
    /// carries no credentials, an error when they are bad.
    ///
    /// Accepted: `X-API-Key: <key>`, `Authorization: Bearer <key>`,
    /// `Authorization: Bearer <access token>`, and `Authorization: Basic`
    /// with an API key as the password (any user name), for clients that
    /// only speak basic auth (promtool, Grafana data sources, URL userinfo).
    ///
    /// # Errors
    /// [`AuthError::Unauthenticated`], [`AuthError::Store`].
    pub async fn authenticate(
        &self,
        headers: &axum::http::HeaderMap,
    ) -> Result<Option<Principal>, AuthError> {
        let bad = |why: &'static str| {
            counter!(AUTH_REJECTED, "reason" => why).increment(1);
            AuthError::Unauthenticated(why.into())
        };
        if let Some(v) = headers.get("x-api-key") {
            let k = v.to_str().map_err(|_| bad("malformed X-API-Key"))?;
            return self.key_principal(k.trim()).await.map(Some);
        }
        let Some(v) = headers.get(axum::http::header::AUTHORIZATION) else {
            return Ok(None);
        };
        let v = v.to_str().map_err(|_| bad("malformed Authorization"))?;
        let (scheme, token) = v
            .trim()
            .split_once(' ')
            .ok_or_else(|| bad("malformed Authorization"))?;
        if scheme.eq_ignore_ascii_case("basic") {
            use base64::Engine as _;
            let raw = base64::engine::general_purpose::STANDARD
                .decode(token.trim())
                .map_err(|_| bad("malformed Basic credentials"))?;
            let raw = String::from_utf8(raw).map_err(|_| bad("malformed Basic credentials"))?;
            let (_, password) = raw
                .split_once(':')
                .ok_or_else(|| bad("malformed Basic credentials"))?;
            return self.key_principal(password).await.map(Some);
        }
        if !scheme.eq_ignore_ascii_case("bearer") {
            return Err(bad("unsupported Authorization scheme"));
        }
        let token = token.trim();
        if token.starts_with(keys::KEY_PREFIX) {
            self.key_principal(token).await.map(Some)
        } else {
            self.token_principal(token).await.map(Some)
        }
    }

    async fn token_principal(&self, token: &str) -> Result<Principal, AuthError> {
        let claims = self.jwt.verify(token).map_err(|e| {
            counter!(AUTH_REJECTED, "reason" => "bad access token").increment(1);
            AuthError::Unauthenticated(format!("access token: {e}"))
        })?;
        let id: i64 = claims
            .sub
            .parse()
            .map_err(|_| AuthError::Unauthenticated("access token: bad sub".into()))?;
        // The user row (read on every request, no cache) decides tenant and
        // role, so a role change or a deletion takes effect at once, not
        // when the token expires; and its session generation, bumped when
        // the user's sessions end (password change or reset, TOTP reset),
        // must be the token's, so those end the access tokens at once too.
        // A counter rather than "iat before the change": `iat` has second
        // granularity (a new login in the same second as the change must
        // work, a token from just before it must not) and replicas' clocks
        // differ.
        let user = self.store.user(id).await?.ok_or_else(|| {
            counter!(AUTH_REJECTED, "reason" => "deleted user").increment(1);
            AuthError::Unauthenticated("access token of a deleted user".into())
        })?;
        if claims.session_gen != user.session_gen {
            counter!(AUTH_REJECTED, "reason" => "ended session").increment(1);
            return Err(AuthError::Unauthenticated(
                "access token of an ended session (password changed or reset)".into(),
            ));
        }
        Ok(user_principal(&user))
    }

    /// Checks a password and starts a session.
    ///
    /// # Errors
    /// [`AuthError::Unauthenticated`] for a wrong email or password (the
    /// same either way), [`AuthError::RateLimited`] when the address or the
    /// account is locked out, [`AuthError::Store`].
    pub async fn login(
        &self,
        email: &str,
        pw: &str,
        second: Option<&str>,
        addr: Option<IpAddr>,
    ) -> Result<TokenPair, AuthError> {
        let source = addr.map_or_else(|| "unknown".to_owned(), |a| a.to_string());
        let now = now_nanos();
        if let Some(a) = addr
            && let Some(b) = self.limiter.blocked(a, Instant::now())
        {
            // `overflow_limited`: an address not tracked while the table is
            // full, refused by the shared bucket (see `limiter`).
            let result = if b.overflow {
                "overflow_limited"
            } else {
                "address_limited"
            };
            counter!(AUTH_LOGINS, "result" => result).increment(1);
            let retry_after = b.retry_after;
            self.audit(
                &self.system_tenant,
                email,
                "auth.login",
                email,
                &source,
                "rate_limited",
                "",
            )
            .await;
            return Err(AuthError::RateLimited { retry_after });
        }
        if email.len() > 255 || pw.len() > password::MAX_PASSWORD_BYTES {
            return Err(AuthError::Unauthenticated("over-long credentials".into()));
        }
        let user = self.store.user_by_email(email).await?;
        if let Some(u) = &user
            && u.locked_until > now
        {
            counter!(AUTH_LOGINS, "result" => "locked").increment(1);
            self.audit(&u.tenant, email, "auth.login", email, &source, "locked", "")
                .await;
            let secs = (u.locked_until - now) / NANOS + 1;
            return Err(AuthError::RateLimited {
                retry_after: u64::try_from(secs).unwrap_or(1),
            });
        }
        let mut ok = password::verify(
            pw.to_owned(),
            user.as_ref().map(|u| u.password_hash.clone()),
        )
        .await;
        let mut why_failed = "";
        if ok && let Some(u) = &user {
            match self.second_factor(u.id, second).await? {
                SecondFactor::NotEnrolled | SecondFactor::Accepted => {}
                SecondFactor::Missing => {
                    counter!(AUTH_LOGINS, "result" => "totp_required").increment(1);
                    return Err(AuthError::SecondFactor);
                }
                SecondFactor::Wrong => {
                    ok = false;
                    why_failed = "wrong or reused TOTP code";
                }
            }
        }
        let tenant = user
            .as_ref()
            .map_or(&self.system_tenant, |u| &u.tenant)
            .clone();
        if !ok {
            if let Some(a) = addr {
                self.limiter.failed(a, Instant::now());
            }
            let mut detail = why_failed.to_owned();
            if let Some(u) = &user {
                let lock_until = now + i64::try_from(self.cfg.lockout_secs).unwrap_or(0) * NANOS;
                let n = self
                    .store
                    .login_failed(u.id, self.cfg.max_failed_logins, lock_until)
                    .await?;
                if n >= self.cfg.max_failed_logins {
                    detail = format!(
                        "account locked for {} s after {n} failures",
                        self.cfg.lockout_secs
                    );
                    counter!(AUTH_LOGINS, "result" => "lockout").increment(1);
                }
            }
            counter!(AUTH_LOGINS, "result" => "failed").increment(1);
            self.audit(
                &tenant,
                email,
                "auth.login",
                email,
                &source,
                "failed",
                &detail,
            )
            .await;
            return Err(AuthError::Unauthenticated("wrong email or password".into()));
        }
        let Some(u) = user else {
            return Err(AuthError::Unauthenticated("wrong email or password".into()));
        };
        self.store.login_succeeded(u.id).await?;
        if let Some(a) = addr {
            self.limiter.succeeded(a);
        }
        // The generation read before the password was checked: a change
        // that lands meanwhile refuses the new refresh token.
        let pair = self.issue_pair(&u, rand::random(), u.session_gen).await?;
        counter!(AUTH_LOGINS, "result" => "ok").increment(1);
        self.audit(&u.tenant, email, "auth.login", email, &source, "ok", "")
            .await;
        Ok(pair)
    }

    /// Issues an access token and a refresh token of a new (or the given)
    /// family under session generation `session_gen`; also used by single
    /// sign-on. Refused when the user's sessions were ended since that
    /// generation was read (a password change racing this login or
    /// refresh): the refresh token is stored only while the user row still
    /// has it.
    pub(crate) async fn issue_pair(
        &self,
        u: &UserRow,
        family: [u8; 16],
        session_gen: i64,
    ) -> Result<TokenPair, AuthError> {
        let now = now_nanos();
        let secs = u64::try_from(now / NANOS).unwrap_or(0);
        let access = self
            .jwt
            .issue(
                u.id,
                session_gen,
                u.tenant.as_str(),
                u.role.as_str(),
                secs,
                self.cfg.access_ttl_secs,
            )
            .map_err(AuthError::Internal)?;
        let raw: [u8; 32] = rand::random();
        let refresh = format!(
            "{REFRESH_PREFIX}{}",
            base64::Engine::encode(&base64::engine::general_purpose::URL_SAFE_NO_PAD, raw)
        );
        let stored = self
            .store
            .insert_refresh(
                &NewRefreshToken {
                    hash: keys::digest(&refresh),
                    user_id: u.id,
                    family,
                    expires_at: now + i64::try_from(self.cfg.refresh_ttl_secs).unwrap_or(0) * NANOS,
                    session_gen,
                },
                now,
            )
            .await?;
        if !stored {
            counter!(AUTH_REJECTED, "reason" => "ended session").increment(1);
            return Err(AuthError::Unauthenticated(
                "the session ended (the password was changed); log in again".into(),
            ));
        }
        Ok(TokenPair {
            access_token: access,
            token_type: "Bearer",
            expires_in: self.cfg.access_ttl_secs,
            refresh_token: refresh,
        })
    }

    /// Exchanges a refresh token for a new pair. A token used before
    /// revokes its whole family (someone copied it).
    ///
    /// # Errors
    /// [`AuthError::Unauthenticated`], [`AuthError::Store`].
    pub async fn refresh(&self, token: &str, addr: Option<IpAddr>) -> Result<TokenPair, AuthError> {
        let source = addr.map_or_else(|| "unknown".to_owned(), |a| a.to_string());
        if !token.starts_with(REFRESH_PREFIX) || token.len() > 128 {
            return Err(AuthError::Unauthenticated("malformed refresh token".into()));
        }
        match self
            .store
            .use_refresh(&keys::digest(token), now_nanos())
            .await?
        {
            RefreshUse::Rotated {
                user_id,
                family,
                session_gen,
            } => {
                let u = self
                    .store
                    .user(user_id)
                    .await?
                    .ok_or_else(|| AuthError::Unauthenticated("user deleted".into()))?;
                // The successor keeps the token's generation, not the row's:
                // a token used just before a password change must not turn
                // into a pair of the new generation.
                self.issue_pair(&u, family, session_gen).await
            }
            RefreshUse::Reused { user_id, revoked } => {
                counter!(AUTH_REJECTED, "reason" => "refresh token reuse").increment(1);
                let (tenant, who) = match self.store.user(user_id).await? {
                    Some(u) => (u.tenant, u.email),
                    None => (self.system_tenant.clone(), user_id.to_string()),
                };
                tracing::warn!(user = %who, revoked, "refresh token reused: family revoked");
                self.audit(
                    &tenant,
                    &who,
                    "auth.refresh",
                    &who,
                    &source,
                    "reuse_detected",
                    &format!("{revoked} tokens revoked"),
                )
                .await;
                Err(AuthError::Unauthenticated("refresh token reused".into()))
            }
            RefreshUse::Invalid => {
                counter!(AUTH_REJECTED, "reason" => "bad refresh token").increment(1);
                Err(AuthError::Unauthenticated("invalid refresh token".into()))
            }
        }
    }

    /// Ends the session of a refresh token (its family).
    ///
    /// # Errors
    /// [`AuthError::Store`].
    pub async fn logout(&self, token: &str) -> Result<u64, AuthError> {
        if !token.starts_with(REFRESH_PREFIX) || token.len() > 128 {
            return Ok(0);
        }
        Ok(self.store.revoke_refresh(&keys::digest(token)).await?)
    }

    /// Checks an email's shape.
    ///
    /// # Errors
    /// [`AuthError::Invalid`].
    pub fn check_email(email: &str) -> Result<(), AuthError> {
        let ok = email.len() <= 255
            && !email.is_empty()
            && email.chars().all(|c| !c.is_whitespace() && !c.is_control())
            && email
                .split_once('@')
                .is_some_and(|(l, d)| !l.is_empty() && !d.is_empty());
        if ok {
            Ok(())
        } else {
            Err(AuthError::Invalid(
                "email: expected name@domain, at most 255 bytes, no spaces".into(),
            ))
        }
    }

    /// Creates a user after checking the email and the password policy.
    ///
    /// # Errors
    /// [`AuthError::Invalid`], [`AuthError::Conflict`], [`AuthError::Store`].
    pub async fn create_user(
        &self,
        email: &str,
        pw: &str,
        role: Role,
        tenant: &Tenant,
    ) -> Result<i64, AuthError> {
        Self::check_email(email)?;
        password::check_policy(pw, self.cfg.min_password_length, email)
            .map_err(|e| AuthError::Invalid(e.0))?;
        let hash = password::hash(pw.to_owned())
            .await
            .map_err(AuthError::Internal)?;
        let now = now_nanos();
        self.store.ensure_tenant(tenant, now).await?;
        self.store
            .create_user(
                &NewUser {
                    email: email.to_owned(),
                    tenant: tenant.clone(),
                    role,
                    password_hash: hash,
                },
                now,
            )
            .await
            .map_err(|e| match e.kind() {
                ErrorKind::Conflict => AuthError::Conflict(format!("a user {email} exists")),
                _ => AuthError::Store(e),
            })
    }

    /// Sets a password (policy checked) and ends the user's sessions: the
    /// session generation is bumped and the refresh tokens revoked in the
    /// same transaction as the password, so the access tokens die at once
    /// and no login or refresh racing the change keeps a token.
    ///
    /// # Errors
    /// [`AuthError::Invalid`], [`AuthError::NotFound`], [`AuthError::Store`].
    pub async fn set_password(&self, id: i64, pw: &str) -> Result<(), AuthError> {
        let u = self
            .store
            .user(id)
            .await?
            .ok_or_else(|| AuthError::NotFound(format!("user {id}")))?;
        password::check_policy(pw, self.cfg.min_password_length, &u.email)
            .map_err(|e| AuthError::Invalid(e.0))?;
        let hash = password::hash(pw.to_owned())
            .await
            .map_err(AuthError::Internal)?;
        self.store.set_password(id, &hash, now_nanos()).await?;
        Ok(())
    }

    /// Changes a role and ends the user's sessions.
    ///
    /// # Errors
    /// [`AuthError::NotFound`], [`AuthError::Store`].
    pub async fn set_role(&self, id: i64, role: Role) -> Result<(), AuthError> {
        if !self.store.set_role(id, role, now_nanos()).await? {
            return Err(AuthError::NotFound(format!("user {id}")));
        }
        self.store.revoke_user_tokens(id).await?;
        Ok(())
    }

    /// Appends to the audit log; a failure is logged and counted, never
    /// hidden, but does not fail the change it records.
    #[allow(clippy::too_many_arguments)]
    pub async fn audit(
        &self,
        tenant: &Tenant,
        actor: &str,
        action: &str,
        target: &str,
        source: &str,
        result: &str,
        detail: &str,
    ) {
        let e = AuditEntry {
            at: now_nanos(),
            tenant: tenant.clone(),
            actor: actor.to_owned(),
            action: action.to_owned(),
            target: target.to_owned(),
            source: source.to_owned(),
            result: result.to_owned(),
            detail: detail.to_owned(),
        };
        if let Err(err) = self.store.audit(&e).await {
            counter!("killkrill_auth_audit_errors_total").increment(1);
            tracing::error!(error = %err, action, actor, target, result, "audit entry not written");
        }
    }
}

/// The principal of a user row.
pub fn user_principal(u: &UserRow) -> Principal {
    Principal {
        tenant: u.tenant.clone(),
        subject: u.email.clone(),
        credential: Credential::User {
            id: u.id,
            role: u.role,
        },
    }
}
