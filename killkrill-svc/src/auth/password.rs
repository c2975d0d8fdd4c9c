//! Password hashing (argon2id, on the blocking pool) and the strength
//! policy.
//!
//! Hashing takes tens of milliseconds of CPU by design; doing it on a
//! runtime thread would stall every other request on that thread, so both
//! directions run in `spawn_blocking`. Verifying against an unknown user
//! still hashes (against a fixed dummy hash), so the answer time does not
//! tell whether an email exists.

use std::sync::OnceLock;

use argon2::{Argon2, PasswordHash, PasswordHasher, PasswordVerifier};

/// The longest password accepted (argon2 has no limit; this bounds work).
pub const MAX_PASSWORD_BYTES: usize = 1024;

/// Why a password was refused by the policy.
#[derive(Debug, Clone, PartialEq, Eq, thiserror::Error)]
#[error("{0}")]
pub struct WeakPassword(pub String);

/// Checks the minimum-strength policy: at least `min_len` characters, at
/// most [`MAX_PASSWORD_BYTES`], at least three of lower case, upper case,
/// digits and other characters, not all one repeated character, and not
/// containing the email's local part.
///
/// # Errors
/// [`WeakPassword`] saying what is missing.
pub fn check_policy(password: &str, min_len: usize, email: &str) -> Result<(), WeakPassword> {
    let chars = password.chars().count();
    if chars < min_len {
        return Err(WeakPassword(format!(
            "the password must have at least {min_len} characters (it has {chars})"
        )));
    }
    if password.len() > MAX_PASSWORD_BYTES {
        return Err(WeakPassword(format!(
            "the password must be at most {MAX_PASSWORD_BYTES} bytes"
        )));
    }
    let classes = [
        password.chars().any(|c| c.is_lowercase()),
        password.chars().any(|c| c.is_uppercase()),
        password.chars().any(|c| c.is_ascii_digit()),
        password.chars().any(|c| !c.is_alphanumeric()),
    ]
    .iter()
    .filter(|b| **b)
    .count();
    if classes < 3 {
        return Err(WeakPassword(
            "the password must mix at least three of: lower case, upper case, digits, other characters".into(),
        ));
    }
    let mut distinct: Vec<char> = password.chars().collect();
    distinct.sort_unstable();
    distinct.dedup();
    if distinct.len() < 5 {
        return Err(WeakPassword(
            "the password must have at least 5 different characters".into(),
        ));
    }
    let local = email.split('@').next().unwrap_or("").to_lowercase();
    if local.len() >= 3 && password.to_lowercase().contains(&local) {
        return Err(WeakPassword(
            "the password must not contain the email's name".into(),
        ));
    }
    Ok(())
}

/// Hashes on the blocking pool; returns the PHC string (`$argon2id$...`).
///
/// # Errors
/// When the blocking task fails or argon2 refuses (never for valid input).
pub async fn hash(password: String) -> Result<String, String> {
    tokio::task::spawn_blocking(move || hash_blocking(&password))
        .await
        .map_err(|e| format!("hashing task: {e}"))?
}

/// Hashes on this thread (CLI).
///
/// # Errors
/// As [`hash`].
pub fn hash_blocking(password: &str) -> Result<String, String> {
    Argon2::default()
        .hash_password(password.as_bytes())
        .map(|h| h.to_string())
        .map_err(|e| format!("argon2: {e}"))
}

/// Verifies on the blocking pool. `None` as the hash verifies against a
/// dummy hash and returns false, taking the same time.
pub async fn verify(password: String, phc: Option<String>) -> bool {
    tokio::task::spawn_blocking(move || {
        let dummy = dummy_hash();
        let (h, real) = match &phc {
            Some(h) => (h.as_str(), true),
            None => (dummy, false),
        };
        let ok = match PasswordHash::new(h) {
            Ok(parsed) => Argon2::default()
                .verify_password(password.as_bytes(), &parsed)
                .is_ok(),
            // Not a PHC string (an SSO user's marker): spend the same time.
            Err(_) => {
                if let Ok(d) = PasswordHash::new(dummy) {
                    let _ = Argon2::default().verify_password(password.as_bytes(), &d);
                }
                false
            }
        };
        ok && real
    })
    .await
    .unwrap_or(false)
}

fn dummy_hash() -> &'static str {
    static H: OnceLock<String> = OnceLock::new();
    H.get_or_init(|| hash_blocking("dummy password for timing").unwrap_or_default())
}

/// A random password that passes the policy (bootstrap admin).
pub fn random_password() -> String {
    let bytes: [u8; 18] = rand::random();
    // base64url of 18 bytes is 24 characters; the suffix guarantees the
    // character classes whatever the random part holds.
    format!(
        "{}-Kk7",
        base64::Engine::encode(&base64::engine::general_purpose::URL_SAFE_NO_PAD, bytes)
    )
}

#[cfg(test)]
#[allow(clippy::unwrap_used)]
mod tests {
    use super::*;

    #[test]
    fn policy_table() {
        let cases: &[(&str, Option<&str>)] = &[
            ("Tr0ub4dor&3xyz", None),
            ("short1A!", Some("at least 12")),
            ("alllowercaseletters", Some("three of")),
            ("aaaaaaaaaaaaA1", Some("5 different")),
            ("Annabelle-2026-x", Some("email's name")),
            ("correct horse Battery", None),
        ];
        for (pw, want) in cases {
            let got = check_policy(pw, 12, "annabelle@example.com");
            match want {
                None => assert!(got.is_ok(), "{pw}: {got:?}"),
                Some(w) => assert!(got.unwrap_err().0.contains(w), "{pw}"),
            }
        }
        assert!(check_policy(&"Aa1!".repeat(300), 12, "x@y").is_err());
        for _ in 0..20 {
            let p = random_password();
            check_policy(&p, 12, "admin@localhost").unwrap();
        }
    }

    #[tokio::test]
    async fn hash_and_verify() {
        let h = hash("Tr0ub4dor&3xyz".into()).await.unwrap();
        assert!(h.starts_with("$argon2id$"), "{h}");
        assert!(verify("Tr0ub4dor&3xyz".into(), Some(h.clone())).await);
        assert!(!verify("Tr0ub4dor&3xyZ".into(), Some(h)).await);
        assert!(!verify("dummy password for timing".into(), None).await);
        assert!(!verify("x".into(), Some("not a hash".into())).await);
    }
}
