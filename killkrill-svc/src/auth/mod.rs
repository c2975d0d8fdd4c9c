//! Authentication and authorisation: who is calling, and may they.
//!
//! Why it looks like this: the HTTP layer only asks two questions —
//! "who is this?" ([`Auth::authenticate`], from an access token or an API
//! key) and "may they?" ([`Principal::allows`] against the route's
//! [`Permission`]). Everything stateful (users, refresh-token families, API
//! keys, the audit log) is in the database through
//! `killkrill_store::auth`, so several API replicas share it; only the
//! per-address login limiter is per process.
//!
//! - [`config`]: `[auth]`, `RELEASE_MODE`, `JWT_SECRET`.
//! - [`password`]: argon2id on the blocking pool, the strength policy.
//! - [`jwt`]: HS256 access tokens, pinned algorithm, `iss`/`aud`/`exp`.
//! - [`keys`]: API keys and refresh tokens as SHA-256, constant-time compare.
//! - `api_keys`: API key lookup, creation and revocation on [`Auth`].
//! - [`key_cache`]: verified API keys for at most `auth.api_key_cache_ms`.
//! - [`limiter`]: failed logins per client address.
//! - [`principal`]: roles, scopes, permissions.
//! - [`totp`]: the TOTP second factor (RFC 6238) and recovery codes;
//!   [`second_factor`]: enrolment and the check at login.
//! - [`service`]: [`Auth`], tying them together; [`bootstrap`]: the first start.

mod api_keys;
pub mod bootstrap;
pub mod config;
pub mod jwt;
pub mod key_cache;
pub mod keys;
pub mod limiter;
pub mod password;
pub mod principal;
pub mod second_factor;
pub mod secretbox;
pub mod service;
pub mod totp;

use std::path::Path;

pub use config::{AuthConfig, AuthMode};
pub use principal::{Credential, Permission, Principal};
pub use service::{Auth, AuthError, TokenPair};

/// Writes `content` to `path` readable by the owner only (0600 on Unix),
/// replacing the file.
///
/// # Errors
/// I/O errors, naming the file.
pub fn write_private(path: &Path, content: &str) -> Result<(), String> {
    use std::io::Write;
    let mut o = std::fs::OpenOptions::new();
    o.write(true).create(true).truncate(true);
    #[cfg(unix)]
    {
        use std::os::unix::fs::OpenOptionsExt;
        o.mode(0o600);
    }
    let mut f = o
        .open(path)
        .map_err(|e| format!("{}: {e}", path.display()))?;
    #[cfg(unix)]
    {
        use std::os::unix::fs::PermissionsExt;
        f.set_permissions(std::fs::Permissions::from_mode(0o600))
            .map_err(|e| format!("{}: {e}", path.display()))?;
    }
    f.write_all(content.as_bytes())
        .and_then(|()| f.sync_all())
        .map_err(|e| format!("{}: {e}", path.display()))
}

/// Nanoseconds since the epoch.
pub fn now_nanos() -> i64 {
    killkrill_core::event::Timestamp::now().as_nanos()
}
