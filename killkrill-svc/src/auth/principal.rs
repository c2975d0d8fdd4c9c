//! Who a verified request comes from, and what each route needs.

use killkrill_core::event::Tenant;
use killkrill_store::auth::{Role, Scope};

/// What a route needs. Every route declares one (see
/// `serve::http::route_table`).
#[derive(Debug, Clone, Copy, PartialEq, Eq, Hash, PartialOrd, Ord)]
pub enum Permission {
    /// Anyone (health, readiness, metrics, login, refresh).
    Public,
    /// Any verified caller (`/auth/me`, logout, own password).
    Authenticated,
    /// Send logs and metrics.
    Ingest,
    /// Query stored data.
    Read,
    /// Change resources (API keys); admins and maintainers.
    Manage,
    /// Users, tenants, audit log; admins only.
    Admin,
}

impl Permission {
    /// The name used in errors and docs.
    pub fn as_str(self) -> &'static str {
        match self {
            Permission::Public => "public",
            Permission::Authenticated => "authenticated",
            Permission::Ingest => "ingest",
            Permission::Read => "read",
            Permission::Manage => "manage",
            Permission::Admin => "admin",
        }
    }
}

/// How the caller proved who it is.
#[derive(Debug, Clone, PartialEq, Eq)]
pub enum Credential {
    /// A user with an access token.
    User {
        /// User id.
        id: i64,
        /// Current role (from the user row, not the token).
        role: Role,
    },
    /// An API key.
    ApiKey {
        /// Key id.
        id: i64,
        /// Scopes.
        scopes: Vec<Scope>,
    },
    /// Authentication is disabled (development): every permission.
    Anonymous,
}

/// A verified caller.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct Principal {
    /// Tenant.
    pub tenant: Tenant,
    /// User email, `apikey:<name>`, or `anonymous`.
    pub subject: String,
    /// How.
    pub credential: Credential,
}

impl Principal {
    /// Whether this caller has `p`.
    pub fn allows(&self, p: Permission) -> bool {
        use Permission as P;
        match (&self.credential, p) {
            (_, P::Public | P::Authenticated) => true,
            (Credential::Anonymous, _) => true,
            (Credential::User { role, .. }, p) => match role {
                Role::Admin => true,
                Role::Maintainer => matches!(p, P::Ingest | P::Read | P::Manage),
                Role::Viewer => p == P::Read,
            },
            (Credential::ApiKey { scopes, .. }, p) => {
                scopes.contains(&Scope::Admin)
                    || match p {
                        P::Ingest => scopes.contains(&Scope::Ingest),
                        P::Read => scopes.contains(&Scope::Read),
                        _ => false,
                    }
            }
        }
    }

    /// An admin of the system tenant (the configured default tenant): may
    /// manage tenants and act in any tenant.
    pub fn is_system_admin(&self, system: &Tenant) -> bool {
        &self.tenant == system && self.allows(Permission::Admin)
    }
}

#[cfg(test)]
#[allow(clippy::unwrap_used)]
mod tests {
    use super::*;

    #[test]
    fn role_and_scope_table() {
        use Permission as P;
        let user = |role| Principal {
            tenant: Tenant::default(),
            subject: "u".into(),
            credential: Credential::User { id: 1, role },
        };
        let key = |scopes: &[Scope]| Principal {
            tenant: Tenant::default(),
            subject: "k".into(),
            credential: Credential::ApiKey {
                id: 1,
                scopes: scopes.to_vec(),
            },
        };
        let perms = [
            P::Public,
            P::Authenticated,
            P::Ingest,
            P::Read,
            P::Manage,
            P::Admin,
        ];
        let cases: Vec<(Principal, [bool; 6])> = vec![
            (user(Role::Admin), [true, true, true, true, true, true]),
            (
                user(Role::Maintainer),
                [true, true, true, true, true, false],
            ),
            (user(Role::Viewer), [true, true, false, true, false, false]),
            (
                key(&[Scope::Ingest]),
                [true, true, true, false, false, false],
            ),
            (key(&[Scope::Read]), [true, true, false, true, false, false]),
            (
                key(&[Scope::Ingest, Scope::Read]),
                [true, true, true, true, false, false],
            ),
            (key(&[Scope::Admin]), [true, true, true, true, true, true]),
        ];
        for (p, want) in cases {
            for (perm, w) in perms.iter().zip(want) {
                assert_eq!(p.allows(*perm), w, "{:?} {perm:?}", p.credential);
            }
        }
    }
}
