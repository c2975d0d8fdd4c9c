//! The first start: with no users at all, create an admin with a random
//! password and an `ingest,read` API key, print both once and keep them in
//! a 0600 file in the data directory. A new install is then usable and not
//! open: nothing answers without these credentials.

use std::path::{Path, PathBuf};

use killkrill_store::auth::{Role, Scope};
use serde::{Deserialize, Serialize};

use super::{Auth, AuthError, password, write_private};

/// The file's name in the data directory.
pub const CREDENTIALS_FILE: &str = "bootstrap-credentials.json";

/// The bootstrap admin's email.
pub const ADMIN_EMAIL: &str = "admin@killkrill.local";

/// What the first start created.
#[derive(Clone, PartialEq, Eq, Serialize, Deserialize)]
pub struct BootstrapCredentials {
    /// Admin login.
    pub admin_email: String,
    /// Admin password.
    pub admin_password: String,
    /// An `ingest,read` API key of the default tenant.
    pub api_key: String,
    /// Tenant.
    pub tenant: String,
}

impl std::fmt::Debug for BootstrapCredentials {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        // By hand, to keep the password and the key out of logs; every field is
        // named, so a new one cannot be forgotten.
        let BootstrapCredentials {
            admin_email,
            admin_password: _,
            api_key: _,
            tenant,
        } = self;
        f.debug_struct("BootstrapCredentials")
            .field("admin_email", admin_email)
            .field("admin_password", &killkrill_core::secret::REDACTED)
            .field("api_key", &killkrill_core::secret::REDACTED)
            .field("tenant", tenant)
            .finish()
    }
}

impl BootstrapCredentials {
    /// Reads the file written at the first start.
    ///
    /// # Errors
    /// I/O and JSON errors.
    pub fn read(data_dir: &Path) -> Result<Self, String> {
        let p = data_dir.join(CREDENTIALS_FILE);
        let text = std::fs::read_to_string(&p).map_err(|e| format!("{}: {e}", p.display()))?;
        serde_json::from_str(&text).map_err(|e| format!("{}: {e}", p.display()))
    }
}

/// Creates the admin and the key when there is no user; `Ok(None)` when
/// users exist (or another process bootstrapped first).
///
/// # Errors
/// [`AuthError`]; writing the file.
pub async fn run(
    auth: &Auth,
    data_dir: &Path,
) -> Result<Option<(BootstrapCredentials, PathBuf)>, AuthError> {
    if auth.store().user_count().await? > 0 {
        return Ok(None);
    }
    let tenant = auth.system_tenant().clone();
    let pw = password::random_password();
    match auth
        .create_user(ADMIN_EMAIL, &pw, Role::Admin, &tenant)
        .await
    {
        Ok(_) => {}
        Err(AuthError::Conflict(_)) => return Ok(None),
        Err(e) => return Err(e),
    }
    let (_, key) = auth
        .create_api_key(
            &tenant,
            "bootstrap",
            vec![Scope::Ingest, Scope::Read],
            None,
            "bootstrap",
        )
        .await?;
    let creds = BootstrapCredentials {
        admin_email: ADMIN_EMAIL.to_owned(),
        admin_password: pw,
        api_key: key,
        tenant: tenant.as_str().to_owned(),
    };
    std::fs::create_dir_all(data_dir)
        .map_err(|e| AuthError::Internal(format!("{}: {e}", data_dir.display())))?;
    let path = data_dir.join(CREDENTIALS_FILE);
    let json =
        serde_json::to_string_pretty(&creds).map_err(|e| AuthError::Internal(e.to_string()))?;
    write_private(&path, &format!("{json}\n")).map_err(AuthError::Internal)?;
    auth.audit(
        &tenant,
        "system",
        "bootstrap",
        ADMIN_EMAIL,
        "startup",
        "ok",
        "admin user and ingest,read API key created",
    )
    .await;
    Ok(Some((creds, path)))
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn the_password_and_the_key_are_not_in_debug_output() {
        let c = BootstrapCredentials {
            admin_email: ADMIN_EMAIL.into(),
            admin_password: "admin-pw-0123".into(),
            api_key: "kk_api-key-4567".into(),
            tenant: "default".into(),
        };
        let shown = format!("{c:?}");
        assert!(
            !shown.contains("admin-pw-0123") && !shown.contains("api-key-4567"),
            "{shown}"
        );
        assert!(shown.contains(ADMIN_EMAIL), "{shown}");
    }
}
