//! TOTP second factor (RFC 6238: HMAC-SHA1, 6 digits, 30 s steps — what
//! common authenticator apps expect). A code is accepted for the current
//! step and one step either side (clock skew), and each step only once
//! (the store keeps the last accepted step). Recovery codes are single-use
//! and stored as SHA-256.

use totp_rs::{Algorithm, Builder, Secret, Totp};

/// Steps accepted either side of now.
pub const SKEW_STEPS: u16 = 1;
/// Seconds per step.
pub const STEP_SECS: u64 = 30;
/// Recovery codes issued at confirmation.
pub const RECOVERY_CODES: usize = 10;
/// Issuer shown in authenticator apps.
pub const ISSUER: &str = "Killkrill";

fn build(secret: &[u8], account: &str) -> Result<Totp, String> {
    Builder::new()
        .with_algorithm(Algorithm::SHA1)
        .with_digits(6)
        .with_skew(SKEW_STEPS)
        .with_step_duration(STEP_SECS)
        .with_secret(secret.to_vec())
        .with_account_name(account)
        .with_issuer(Some(ISSUER))
        .build()
        .map_err(|e| format!("TOTP: {e}"))
}

/// A new random secret, base32.
pub fn new_secret() -> String {
    let bytes: [u8; 20] = rand::random();
    Secret::from(bytes).to_base32()
}

fn bytes(secret_b32: &str) -> Result<Vec<u8>, String> {
    Secret::try_from_base32(secret_b32)
        .map(|s| s.as_ref().to_vec())
        .map_err(|e| format!("stored TOTP secret: {e}"))
}

/// The `otpauth://` URI to show as a QR code or paste into an app.
///
/// # Errors
/// A bad secret.
pub fn uri(secret_b32: &str, account: &str) -> Result<String, String> {
    build(&bytes(secret_b32)?, account)?
        .to_url()
        .map_err(|e| format!("TOTP URI: {e}"))
}

/// The step a code matches at `now` (seconds), within the skew.
pub fn check(secret_b32: &str, code: &str, now: u64) -> Option<u64> {
    if code.len() != 6 || !code.bytes().all(|b| b.is_ascii_digit()) {
        return None;
    }
    let t = build(&bytes(secret_b32).ok()?, "x").ok()?;
    t.check(code, now)
}

/// The code for `time` (tests and tools).
///
/// # Errors
/// A bad secret.
pub fn code_at(secret_b32: &str, time: u64) -> Result<String, String> {
    Ok(build(&bytes(secret_b32)?, "x")?.generate(time).to_string())
}

/// New recovery codes (`xxxxx-xxxxx`, hex).
pub fn recovery_codes() -> Vec<String> {
    (0..RECOVERY_CODES)
        .map(|_| {
            let b: [u8; 5] = rand::random();
            let h = hex::encode(b);
            format!("{}-{}", &h[..5], &h[5..])
        })
        .collect()
}

#[cfg(test)]
#[allow(clippy::unwrap_used)]
mod tests {
    use super::*;

    #[test]
    fn one_step_of_skew_is_accepted_two_are_not() {
        let s = new_secret();
        let now = 1_795_000_000 / STEP_SECS * STEP_SECS + 7;
        let code_now = code_at(&s, now).unwrap();
        assert_eq!(check(&s, &code_now, now), Some(now / STEP_SECS));
        for (offset, ok) in [
            (-60i64, false),
            (-30, true),
            (0, true),
            (30, true),
            (60, false),
            (90, false),
        ] {
            let t = now.checked_add_signed(offset).unwrap();
            let code = code_at(&s, t).unwrap();
            assert_eq!(check(&s, &code, now).is_some(), ok, "code from {offset} s");
        }
        assert_eq!(check(&s, "12345", now), None);
        assert_eq!(check(&s, "abcdef", now), None);
        assert_eq!(check(&new_secret(), &code_now, now), None);
    }

    #[test]
    fn rfc6238_sha1_vector() {
        // RFC 6238 appendix B: secret "12345678901234567890", T = 59 s,
        // SHA-1, 8 digits: 94287082 -> the 6-digit code is its last 6.
        let b32 = Secret::from(b"12345678901234567890".to_vec()).to_base32();
        assert_eq!(code_at(&b32, 59).unwrap(), "287082");
        assert_eq!(code_at(&b32, 1_111_111_109).unwrap(), "081804");
    }

    #[test]
    fn uri_and_codes() {
        let s = new_secret();
        let u = uri(&s, "ann@example.com").unwrap();
        assert!(
            u.starts_with("otpauth://totp/Killkrill:ann%40example.com?"),
            "{u}"
        );
        assert!(u.contains(&format!("secret={s}")), "{u}");
        let c = recovery_codes();
        assert_eq!(c.len(), 10);
        assert!(c.iter().all(|x| x.len() == 11));
    }
}
