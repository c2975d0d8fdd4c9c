//! `[auth]`: how callers prove who they are.

use serde::{Deserialize, Serialize};

/// Whether requests must carry credentials.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Default, Serialize, Deserialize)]
#[serde(rename_all = "lowercase")]
pub enum AuthMode {
    /// Every route except health, readiness, metrics and login needs
    /// credentials (the default).
    #[default]
    Enabled,
    /// Development only: every request is the anonymous caller of the
    /// default tenant with every permission. Refused when
    /// `RELEASE_MODE=true`.
    Disabled,
}

/// Authentication settings.
#[derive(Clone, Serialize, Deserialize)]
#[serde(deny_unknown_fields, default)]
pub struct AuthConfig {
    /// `enabled` (default) or `disabled` (development only).
    pub mode: AuthMode,
    /// Lifetime of an access token (JWT), seconds.
    pub access_ttl_secs: u64,
    /// Lifetime of a refresh token, seconds.
    pub refresh_ttl_secs: u64,
    /// `iss` of the tokens issued and required.
    pub issuer: String,
    /// `aud` of the tokens issued and required.
    pub audience: String,
    /// Failed logins in a row that lock an account...
    pub max_failed_logins: u32,
    /// ...for this long, seconds.
    pub lockout_secs: u64,
    /// Failed logins from one client address within `address_window_secs`
    /// before that address is refused (429) until the window passes.
    pub address_max_failures: u32,
    /// The window of `address_max_failures`, seconds.
    pub address_window_secs: u64,
    /// Most client addresses (IPv6: /64 networks) the login limiter tracks.
    /// When that many have failed within their window, the addresses not
    /// tracked share one limit (see `auth::limiter`). Default 100000.
    pub address_max_entries: usize,
    /// Shortest password accepted.
    pub min_password_length: usize,
    /// Whether the first start with no users creates an admin and an API
    /// key (printed once and written to `bootstrap-credentials` in the data
    /// directory, mode 0600).
    pub bootstrap: bool,
    /// How long a verified API key is trusted without asking the database
    /// again, milliseconds (0: every request asks). Revocation through this
    /// process's API is immediate; through the CLI or another process it
    /// takes effect within this bound (see `auth::key_cache`).
    pub api_key_cache_ms: u64,
    /// `RELEASE_MODE=true` in the environment (not a config key).
    #[serde(skip)]
    pub release_mode: bool,
    /// `JWT_SECRET` from the environment (not a config key; never printed).
    #[serde(skip)]
    pub jwt_secret: Option<String>,
    /// `KILLKRILL_SECRET_KEY` from the environment (not a config key; never
    /// printed): the key TOTP secrets are encrypted with at rest; without
    /// it they are encrypted with a key derived from the signing secret.
    #[serde(skip)]
    pub secret_key: Option<String>,
}

impl std::fmt::Debug for AuthConfig {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        // By hand, to keep `JWT_SECRET` and `KILLKRILL_SECRET_KEY` out of logs; every field is
        // named, so a new one cannot be forgotten.
        let AuthConfig {
            mode,
            access_ttl_secs,
            refresh_ttl_secs,
            issuer,
            audience,
            max_failed_logins,
            lockout_secs,
            address_max_failures,
            address_window_secs,
            address_max_entries,
            min_password_length,
            api_key_cache_ms,
            bootstrap,
            release_mode,
            jwt_secret,
            secret_key,
        } = self;
        f.debug_struct("AuthConfig")
            .field("mode", mode)
            .field("access_ttl_secs", access_ttl_secs)
            .field("refresh_ttl_secs", refresh_ttl_secs)
            .field("issuer", issuer)
            .field("audience", audience)
            .field("max_failed_logins", max_failed_logins)
            .field("lockout_secs", lockout_secs)
            .field("address_max_failures", address_max_failures)
            .field("address_window_secs", address_window_secs)
            .field("address_max_entries", address_max_entries)
            .field("min_password_length", min_password_length)
            .field("api_key_cache_ms", api_key_cache_ms)
            .field("bootstrap", bootstrap)
            .field("release_mode", release_mode)
            .field("jwt_secret", &killkrill_core::secret::Redacted(jwt_secret))
            .field("secret_key", &killkrill_core::secret::Redacted(secret_key))
            .finish()
    }
}

impl Default for AuthConfig {
    fn default() -> Self {
        AuthConfig {
            mode: AuthMode::Enabled,
            access_ttl_secs: 15 * 60,
            refresh_ttl_secs: 14 * 24 * 3600,
            issuer: "killkrill".into(),
            audience: "killkrill".into(),
            max_failed_logins: 5,
            lockout_secs: 15 * 60,
            address_max_failures: 20,
            address_window_secs: 5 * 60,
            address_max_entries: super::limiter::MAX_ENTRIES,
            min_password_length: 12,
            bootstrap: true,
            api_key_cache_ms: 1000,
            release_mode: false,
            jwt_secret: None,
            secret_key: None,
        }
    }
}

impl AuthConfig {
    /// Reads `RELEASE_MODE`, `JWT_SECRET` and `KILLKRILL_SECRET_KEY` from `(name, value)` pairs.
    pub fn read_env(&mut self, env: &[(String, String)]) {
        for (k, v) in env {
            match k.as_str() {
                "RELEASE_MODE" => {
                    self.release_mode =
                        matches!(v.trim().to_ascii_lowercase().as_str(), "true" | "1" | "yes");
                }
                "JWT_SECRET" if !v.is_empty() => self.jwt_secret = Some(v.clone()),
                "KILLKRILL_SECRET_KEY" if !v.is_empty() => self.secret_key = Some(v.clone()),
                _ => {}
            }
        }
    }

    /// Checks the settings.
    ///
    /// # Errors
    /// `(key, problem)`.
    pub fn validate(&self) -> Result<(), (&'static str, String)> {
        if self.mode == AuthMode::Disabled && self.release_mode {
            return Err((
                "auth.mode",
                "\"disabled\" is refused when RELEASE_MODE=true: authentication cannot be turned off in release mode".into(),
            ));
        }
        if self.access_ttl_secs == 0 || self.access_ttl_secs > 24 * 3600 {
            return Err(("auth.access_ttl_secs", "must be between 1 and 86400".into()));
        }
        if self.refresh_ttl_secs < self.access_ttl_secs || self.refresh_ttl_secs > 365 * 24 * 3600 {
            return Err((
                "auth.refresh_ttl_secs",
                "must be at least auth.access_ttl_secs and at most a year".into(),
            ));
        }
        if self.max_failed_logins == 0 || self.address_max_failures == 0 {
            return Err((
                "auth.max_failed_logins",
                "the login limits must be greater than 0".into(),
            ));
        }
        if !(1..=10_000_000).contains(&self.address_max_entries) {
            return Err((
                "auth.address_max_entries",
                "must be between 1 and 10000000".into(),
            ));
        }
        if self.api_key_cache_ms > 60_000 {
            return Err((
                "auth.api_key_cache_ms",
                "must be at most 60000 (revocation elsewhere takes effect within it)".into(),
            ));
        }
        if self.min_password_length < 8 {
            return Err(("auth.min_password_length", "must be at least 8".into()));
        }
        if self.issuer.is_empty() || self.audience.is_empty() {
            return Err((
                "auth.issuer",
                "issuer and audience must not be empty".into(),
            ));
        }
        if let Some(s) = &self.jwt_secret
            && s.len() < 32
        {
            return Err(("JWT_SECRET", "must be at least 32 bytes".into()));
        }
        if let Some(s) = &self.secret_key
            && s.len() < 32
        {
            return Err(("KILLKRILL_SECRET_KEY", "must be at least 32 bytes".into()));
        }
        Ok(())
    }
}
