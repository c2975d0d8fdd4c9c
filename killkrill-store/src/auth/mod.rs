//! Authentication data: tenants, users, refresh tokens, API keys, SSO
//! logins in progress and the audit log, on the same three databases as
//! everything else.
//!
//! This module stores and fetches; it decides nothing. Hashing passwords,
//! signing tokens, lockout policy and permissions live in `killkrill-svc`.
//! No secret is ever stored in the clear: passwords arrive as argon2id PHC
//! strings, refresh tokens and API keys as SHA-256 digests, so a copy of
//! the database does not let anyone log in.
//!
//! The SQL is portable (`?` placeholders rewritten by [`Dialect`]) and
//! written once; every method runs on whichever pool the store holds.
//! Reached through [`Store::auth`].
//!
//! [`Dialect`]: crate::dialect::Dialect

mod audit;
mod email;
mod keys;
mod oidc;
mod refresh;
mod totp;
mod users;

use std::fmt;
use std::str::FromStr;

use killkrill_core::event::Tenant;
use killkrill_core::storage::{ErrorKind, StoreError};

pub use audit::{AuditEntry, AuditRow};
pub use keys::{ApiKeyRow, NewApiKey};
pub use oidc::OidcLogin;
pub use refresh::{NewRefreshToken, RefreshUse};
pub use totp::TotpState;
pub use users::{NewUser, UserRow};

use crate::backend::Store;

/// A user's role.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Hash, PartialOrd, Ord)]
pub enum Role {
    /// Read only.
    Viewer,
    /// Reads and changes resources; no user management.
    Maintainer,
    /// Everything, including users and settings.
    Admin,
}

impl Role {
    /// Every role, least privileged first.
    pub const ALL: [Role; 3] = [Role::Viewer, Role::Maintainer, Role::Admin];

    /// The stored and displayed name (`admin`, `maintainer`, `viewer`).
    pub fn as_str(self) -> &'static str {
        match self {
            Role::Viewer => "viewer",
            Role::Maintainer => "maintainer",
            Role::Admin => "admin",
        }
    }
}

impl fmt::Display for Role {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.write_str(self.as_str())
    }
}

impl FromStr for Role {
    type Err = String;

    fn from_str(s: &str) -> Result<Self, Self::Err> {
        match s.to_ascii_lowercase().as_str() {
            "viewer" => Ok(Role::Viewer),
            "maintainer" => Ok(Role::Maintainer),
            "admin" => Ok(Role::Admin),
            _ => Err(format!(
                "unknown role {s:?}: expected admin, maintainer or viewer"
            )),
        }
    }
}

/// What an API key may do.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Hash, PartialOrd, Ord)]
pub enum Scope {
    /// Send logs and metrics.
    Ingest,
    /// Query.
    Read,
    /// Everything an admin user may do in the key's tenant.
    Admin,
}

impl Scope {
    /// The stored name.
    pub fn as_str(self) -> &'static str {
        match self {
            Scope::Ingest => "ingest",
            Scope::Read => "read",
            Scope::Admin => "admin",
        }
    }

    /// Parses `ingest,read` (no duplicates, at least one).
    ///
    /// # Errors
    /// A message naming the unknown or repeated scope.
    pub fn parse_list(s: &str) -> Result<Vec<Scope>, String> {
        let mut out = Vec::new();
        for part in s.split(',').map(str::trim).filter(|p| !p.is_empty()) {
            let scope: Scope = part.parse()?;
            if out.contains(&scope) {
                return Err(format!("scope {part:?} is listed twice"));
            }
            out.push(scope);
        }
        if out.is_empty() {
            return Err("no scope: expected one or more of ingest, read, admin".into());
        }
        out.sort();
        Ok(out)
    }

    /// `ingest,read`.
    pub fn join(scopes: &[Scope]) -> String {
        scopes
            .iter()
            .map(|s| s.as_str())
            .collect::<Vec<_>>()
            .join(",")
    }
}

impl FromStr for Scope {
    type Err = String;

    fn from_str(s: &str) -> Result<Self, Self::Err> {
        match s {
            "ingest" => Ok(Scope::Ingest),
            "read" => Ok(Scope::Read),
            "admin" => Ok(Scope::Admin),
            _ => Err(format!(
                "unknown scope {s:?}: expected ingest, read or admin"
            )),
        }
    }
}

/// The authentication tables of one store.
#[derive(Debug, Clone)]
pub struct AuthStore {
    pub(crate) store: Store,
}

impl Store {
    /// The authentication tables.
    pub fn auth(&self) -> AuthStore {
        AuthStore {
            store: self.clone(),
        }
    }
}

pub(crate) fn tenant_of(name: &str) -> Result<Tenant, StoreError> {
    Tenant::new(name)
        .map_err(|e| StoreError::with_source(ErrorKind::Fatal, "stored tenant name", e))
}

pub(crate) fn corrupt(what: &'static str, e: String) -> StoreError {
    StoreError::new(ErrorKind::Fatal, format!("{what}: {e}"))
}

pub(crate) fn limit(n: usize) -> i64 {
    i64::try_from(n.min(10_000)).unwrap_or(10_000)
}
