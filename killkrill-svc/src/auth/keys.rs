//! API keys: `kk_` followed by 32 random bytes in base64url. Stored as
//! SHA-256 (a key has 256 bits of entropy, so a fast hash is enough — no
//! one guesses a preimage — and lookups stay an index probe per request).

use sha2::{Digest, Sha256};
use subtle::ConstantTimeEq;

/// Every key starts with this (tells keys from JWTs in `Authorization`).
pub const KEY_PREFIX: &str = "kk_";

/// A new random key.
pub fn generate() -> String {
    let bytes: [u8; 32] = rand::random();
    format!(
        "{KEY_PREFIX}{}",
        base64::Engine::encode(&base64::engine::general_purpose::URL_SAFE_NO_PAD, bytes)
    )
}

/// SHA-256 of a secret (API key or refresh token).
pub fn digest(secret: &str) -> [u8; 32] {
    Sha256::digest(secret.as_bytes()).into()
}

/// The shown part of a key in lists (`kk_AbCd1234`).
pub fn shown_prefix(key: &str) -> String {
    key.chars().take(KEY_PREFIX.len() + 8).collect()
}

/// Whether `key` has a key's shape (prefix, length, alphabet).
pub fn well_formed(key: &str) -> bool {
    key.len() == KEY_PREFIX.len() + 43
        && key.starts_with(KEY_PREFIX)
        && key[KEY_PREFIX.len()..]
            .bytes()
            .all(|b| b.is_ascii_alphanumeric() || b == b'-' || b == b'_')
}

/// Constant-time comparison of two digests.
pub fn same(a: &[u8], b: &[u8]) -> bool {
    a.len() == b.len() && bool::from(a.ct_eq(b))
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn shape() {
        let k = generate();
        assert!(well_formed(&k), "{k}");
        assert_ne!(k, generate());
        assert!(!well_formed("kk_short"));
        assert!(!well_formed(&k.replace("kk_", "xx_")));
        assert!(same(&digest(&k), &digest(&k)));
        assert!(!same(&digest(&k), &digest("other")));
        assert_eq!(shown_prefix(&k).len(), 11);
    }
}
