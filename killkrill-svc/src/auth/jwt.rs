//! Access tokens: HS256 JWTs with `iss`, `aud`, `exp`, `iat` and `sub`.
//!
//! The algorithm is pinned: [`Validation`] accepts HS256 only, so a token
//! whose header says `none`, `HS512` or an RSA algorithm (the key-confusion
//! attack) is refused before its signature is looked at. `iss`, `aud`,
//! `exp` and `sub` are required and checked, with a small leeway for clock
//! skew between replicas.

use std::path::Path;

use jsonwebtoken::{Algorithm, DecodingKey, EncodingKey, Header, Validation};
use serde::{Deserialize, Serialize};

/// Clock skew tolerated on `exp`, seconds.
pub const LEEWAY_SECS: u64 = 5;

/// What an access token says.
#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize)]
pub struct Claims {
    /// The user id.
    pub sub: String,
    /// Issuer.
    pub iss: String,
    /// Audience.
    pub aud: String,
    /// Expiry (seconds since the epoch).
    pub exp: u64,
    /// Issued at (seconds since the epoch).
    pub iat: u64,
    /// Tenant at issue time (informational; the user row decides).
    pub tenant: String,
    /// Role at issue time (informational; the user row decides).
    pub role: String,
    /// The user's session generation at issue time: the token is refused
    /// once the user row's generation differs (a password change or reset
    /// ended the sessions). Required: a token of a version before session
    /// generations (migration 0008) has none and is refused, rather than
    /// read as generation 0 and left valid until the user's first change.
    /// Access tokens live minutes, so only a client that upgraded within
    /// one access lifetime meets this, and it gets a new token with its
    /// refresh token (stored, and ended by session changes as ever).
    #[serde(rename = "gen")]
    pub session_gen: i64,
}

/// Signs and checks access tokens.
pub struct Jwt {
    enc: EncodingKey,
    dec: DecodingKey,
    validation: Validation,
    issuer: String,
    audience: String,
}

impl std::fmt::Debug for Jwt {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.debug_struct("Jwt")
            .field("issuer", &self.issuer)
            .field("audience", &self.audience)
            .finish_non_exhaustive()
    }
}

impl Jwt {
    /// With this secret, issuer and audience.
    pub fn new(secret: &[u8], issuer: &str, audience: &str) -> Self {
        let mut v = Validation::new(Algorithm::HS256);
        v.algorithms = vec![Algorithm::HS256];
        v.set_issuer(&[issuer]);
        v.set_audience(&[audience]);
        v.set_required_spec_claims(&["exp", "iss", "aud", "sub"]);
        v.leeway = LEEWAY_SECS;
        v.validate_exp = true;
        v.validate_nbf = true;
        Jwt {
            enc: EncodingKey::from_secret(secret),
            dec: DecodingKey::from_secret(secret),
            validation: v,
            issuer: issuer.to_owned(),
            audience: audience.to_owned(),
        }
    }

    /// Signs a token for `sub` (of session generation `session_gen`) valid
    /// `ttl_secs` from `now` (seconds).
    ///
    /// # Errors
    /// When signing fails (never with an HMAC key).
    pub fn issue(
        &self,
        sub: i64,
        session_gen: i64,
        tenant: &str,
        role: &str,
        now: u64,
        ttl_secs: u64,
    ) -> Result<String, String> {
        let claims = Claims {
            sub: sub.to_string(),
            iss: self.issuer.clone(),
            aud: self.audience.clone(),
            exp: now + ttl_secs,
            iat: now,
            tenant: tenant.to_owned(),
            role: role.to_owned(),
            session_gen,
        };
        jsonwebtoken::encode(&Header::new(Algorithm::HS256), &claims, &self.enc)
            .map_err(|e| format!("signing a token: {e}"))
    }

    /// Checks signature, algorithm, issuer, audience and expiry.
    ///
    /// # Errors
    /// What is wrong, for the log (clients get a generic 401).
    pub fn verify(&self, token: &str) -> Result<Claims, String> {
        if token.len() > 4096 {
            return Err("token too long".into());
        }
        jsonwebtoken::decode::<Claims>(token, &self.dec, &self.validation)
            .map(|d| d.claims)
            .map_err(|e| {
                let e = e.to_string();
                if e.contains("missing field `gen`") {
                    "no session generation (`gen`): issued by a version before 0008; refresh it"
                        .to_owned()
                } else {
                    e
                }
            })
    }
}

/// Where the signing secret came from.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum SecretSource {
    /// `JWT_SECRET`.
    Env,
    /// The `jwt-secret` file in the data directory (created when missing).
    File,
    /// The shared database (`cluster_secrets`), created by the first
    /// process when missing, so every process on that database agrees.
    Database,
}

/// The name of the signing secret in `cluster_secrets`.
pub const SHARED_SECRET_NAME: &str = "jwt_signing_secret";

/// The signing secret of processes sharing a database (PostgreSQL, MySQL):
/// `JWT_SECRET` when set; else, outside release mode, the one stored in the
/// database, which the first process creates (64 random bytes) and every
/// other reads, so receivers, workers and API replicas accept each other's
/// tokens.
///
/// # Errors
/// In release mode without `JWT_SECRET`: a message naming it. Database
/// errors; a stored value that is not hex or too short.
pub async fn load_shared_secret(
    env: Option<&str>,
    release_mode: bool,
    store: &killkrill_store::Store,
) -> Result<(Vec<u8>, SecretSource), String> {
    if env.is_some() || release_mode {
        // The same checks and messages as the single-process path; the
        // data directory is not touched when either applies.
        return load_secret(env, release_mode, Path::new(""));
    }
    let candidate = hex::encode(rand::random::<[u8; 64]>());
    let stored = store
        .cluster()
        .shared_secret(SHARED_SECRET_NAME, &candidate, super::now_nanos())
        .await
        .map_err(|e| format!("loading the JWT signing secret from the database: {e}"))?;
    let bytes = hex::decode(stored.trim())
        .map_err(|_| "cluster_secrets.jwt_signing_secret: not hex".to_owned())?;
    if bytes.len() < 32 {
        return Err("cluster_secrets.jwt_signing_secret: shorter than 32 bytes".into());
    }
    Ok((bytes, SecretSource::Database))
}

/// The secret file's name in the data directory.
pub const SECRET_FILE: &str = "jwt-secret";

/// The signing secret: `JWT_SECRET` when set; else, outside release mode,
/// the `jwt-secret` file in `data_dir`, created with 64 random bytes and
/// mode 0600 when missing.
///
/// # Errors
/// In release mode without `JWT_SECRET`: a message naming it. File errors.
pub fn load_secret(
    env: Option<&str>,
    release_mode: bool,
    data_dir: &Path,
) -> Result<(Vec<u8>, SecretSource), String> {
    if let Some(s) = env {
        if s.len() < 32 {
            return Err("JWT_SECRET must be at least 32 bytes".into());
        }
        return Ok((s.as_bytes().to_vec(), SecretSource::Env));
    }
    if release_mode {
        return Err(
            "JWT_SECRET is not set: in release mode (RELEASE_MODE=true) the token signing secret must come from the JWT_SECRET environment variable (at least 32 bytes)"
                .into(),
        );
    }
    let path = data_dir.join(SECRET_FILE);
    match std::fs::read_to_string(&path) {
        Ok(s) => {
            let s = s.trim();
            let bytes = hex::decode(s).map_err(|_| format!("{}: not hex", path.display()))?;
            if bytes.len() < 32 {
                return Err(format!("{}: shorter than 32 bytes", path.display()));
            }
            Ok((bytes, SecretSource::File))
        }
        Err(e) if e.kind() == std::io::ErrorKind::NotFound => {
            std::fs::create_dir_all(data_dir)
                .map_err(|e| format!("{}: {e}", data_dir.display()))?;
            let bytes: [u8; 64] = rand::random();
            super::write_private(&path, &format!("{}\n", hex::encode(bytes)))?;
            Ok((bytes.to_vec(), SecretSource::File))
        }
        Err(e) => Err(format!("{}: {e}", path.display())),
    }
}

#[cfg(test)]
#[allow(clippy::unwrap_used)]
mod tests {
    use base64::Engine;
    use base64::engine::general_purpose::URL_SAFE_NO_PAD as B64;

    use super::*;

    const SECRET: &[u8] = b"0123456789abcdef0123456789abcdef";

    fn now() -> u64 {
        jsonwebtoken::get_current_timestamp()
    }

    fn forge(header: &str, claims: &serde_json::Value, sig: &str) -> String {
        format!(
            "{}.{}.{sig}",
            B64.encode(header),
            B64.encode(claims.to_string())
        )
    }

    #[test]
    fn good_tokens_pass_and_bad_ones_fail() {
        let j = Jwt::new(SECRET, "killkrill", "killkrill");
        let t = j.issue(7, 3, "default", "admin", now(), 60).unwrap();
        let c = j.verify(&t).unwrap();
        assert_eq!(
            (c.sub.as_str(), c.role.as_str(), c.session_gen),
            ("7", "admin", 3)
        );

        // Tampered payload: role changed, signature kept.
        let parts: Vec<&str> = t.split('.').collect();
        let mut claims: serde_json::Value =
            serde_json::from_slice(&B64.decode(parts[1]).unwrap()).unwrap();
        claims["sub"] = "1".into();
        let tampered = format!(
            "{}.{}.{}",
            parts[0],
            B64.encode(claims.to_string()),
            parts[2]
        );
        assert!(j.verify(&tampered).is_err());
        // Tampered signature.
        let mut sig = parts[2].to_owned();
        sig.replace_range(0..1, if sig.starts_with('A') { "B" } else { "A" });
        assert!(
            j.verify(&format!("{}.{}.{sig}", parts[0], parts[1]))
                .is_err()
        );

        // alg none, with and without a signature.
        let body = serde_json::json!({"sub":"1","iss":"killkrill","aud":"killkrill","exp":now()+60,"iat":now(),"tenant":"default","role":"admin"});
        // A token of an older version (no `gen`), signed right: refused,
        // not read as generation 0.
        let legacy = jsonwebtoken::encode(
            &Header::new(Algorithm::HS256),
            &body,
            &EncodingKey::from_secret(SECRET),
        )
        .unwrap();
        let e = j.verify(&legacy).unwrap_err();
        assert!(e.contains("no session generation"), "{e}");
        let mut with_gen = body.clone();
        with_gen["gen"] = 0.into();
        let current = jsonwebtoken::encode(
            &Header::new(Algorithm::HS256),
            &with_gen,
            &EncodingKey::from_secret(SECRET),
        )
        .unwrap();
        assert_eq!(j.verify(&current).unwrap().session_gen, 0);
        assert!(
            j.verify(&forge(r#"{"alg":"none","typ":"JWT"}"#, &body, ""))
                .is_err()
        );
        assert!(
            j.verify(&forge(r#"{"alg":"none","typ":"JWT"}"#, &body, parts[2]))
                .is_err()
        );
        // Another HMAC algorithm with the right key.
        let hs512 = jsonwebtoken::encode(
            &Header::new(Algorithm::HS512),
            &body,
            &EncodingKey::from_secret(SECRET),
        )
        .unwrap();
        assert!(j.verify(&hs512).is_err());

        // Expired (beyond the leeway), wrong audience, wrong issuer, wrong key.
        let old = j.issue(7, 0, "default", "admin", now() - 3600, 60).unwrap();
        assert!(j.verify(&old).unwrap_err().contains("xpired"));
        let other_aud = Jwt::new(SECRET, "killkrill", "other")
            .issue(7, 0, "d", "admin", now(), 60)
            .unwrap();
        assert!(
            j.verify(&other_aud)
                .unwrap_err()
                .to_lowercase()
                .contains("audience")
        );
        let other_iss = Jwt::new(SECRET, "evil", "killkrill")
            .issue(7, 0, "d", "admin", now(), 60)
            .unwrap();
        assert!(
            j.verify(&other_iss)
                .unwrap_err()
                .to_lowercase()
                .contains("issuer")
        );
        let other_key = Jwt::new(
            b"another secret of at least 32 bytes!",
            "killkrill",
            "killkrill",
        )
        .issue(7, 0, "d", "admin", now(), 60)
        .unwrap();
        assert!(j.verify(&other_key).is_err());
        // Missing exp.
        let no_exp = serde_json::json!({"sub":"1","iss":"killkrill","aud":"killkrill"});
        let t = jsonwebtoken::encode(
            &Header::new(Algorithm::HS256),
            &no_exp,
            &EncodingKey::from_secret(SECRET),
        )
        .unwrap();
        assert!(j.verify(&t).is_err());
        assert!(j.verify("not.a.token").is_err());
        assert!(j.verify(&"a".repeat(5000)).is_err());
    }

    #[test]
    fn secrets() {
        let dir = tempfile::tempdir().unwrap();
        let e = load_secret(None, true, dir.path()).unwrap_err();
        assert!(e.contains("JWT_SECRET"), "{e}");
        assert!(load_secret(Some("short"), false, dir.path()).is_err());
        let (s, src) = load_secret(Some(&"x".repeat(40)), true, dir.path()).unwrap();
        assert_eq!((s.len(), src), (40, SecretSource::Env));
        let (a, src) = load_secret(None, false, dir.path()).unwrap();
        assert_eq!((a.len(), src), (64, SecretSource::File));
        let (b, _) = load_secret(None, false, dir.path()).unwrap();
        assert_eq!(a, b, "the generated secret is kept");
        #[cfg(unix)]
        {
            use std::os::unix::fs::PermissionsExt;
            let mode = std::fs::metadata(dir.path().join(SECRET_FILE))
                .unwrap()
                .permissions()
                .mode();
            assert_eq!(mode & 0o777, 0o600);
        }
    }
}
