//! Secrets that must be stored readable (TOTP secrets: the server needs
//! them to compute codes) are stored encrypted: AES-256-GCM with a random
//! 96-bit nonce, the row's user id as associated data (a ciphertext copied
//! to another row does not open), as `enc1:<base64url(nonce | ciphertext |
//! tag)>`.
//!
//! The key is derived with HKDF-SHA256 from `KILLKRILL_SECRET_KEY` when set,
//! else from the token signing secret (`JWT_SECRET`, or the `jwt-secret`
//! file outside release mode) — so release mode, which requires
//! `JWT_SECRET`, always has a key from the environment. When
//! `KILLKRILL_SECRET_KEY` is set, values sealed with the signing-secret key
//! still open (and are re-sealed with the new key), so it can be introduced
//! later. A value without the `enc1:` prefix is a clear-text secret from
//! before encryption: it is accepted once and re-sealed.

use base64::Engine as _;
use base64::engine::general_purpose::URL_SAFE_NO_PAD as B64;
use ring::aead::{AES_256_GCM, Aad, LessSafeKey, NONCE_LEN, Nonce, UnboundKey};
use ring::hkdf;

/// Prefix of a sealed value.
pub const PREFIX: &str = "enc1:";

/// Seals and opens stored secrets.
pub struct SecretBox {
    primary: LessSafeKey,
    fallback: Option<LessSafeKey>,
}

impl std::fmt::Debug for SecretBox {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.debug_struct("SecretBox")
            .field("fallback", &self.fallback.is_some())
            .finish_non_exhaustive()
    }
}

fn derive(secret: &[u8]) -> LessSafeKey {
    let salt = hkdf::Salt::new(hkdf::HKDF_SHA256, b"killkrill secret box v1");
    let prk = salt.extract(secret);
    let okm = prk
        .expand(&[b"totp secrets"], &AES_256_GCM)
        .expect("HKDF output of one AES-256 key");
    LessSafeKey::new(UnboundKey::from(okm))
}

/// What [`SecretBox::open`] found.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct Opened {
    /// The clear value.
    pub value: String,
    /// Stored in clear text or under the old key: write it back sealed.
    pub reseal: bool,
}

impl SecretBox {
    /// Keyed by `KILLKRILL_SECRET_KEY` when given, else by the signing
    /// secret.
    pub fn new(secret_key: Option<&[u8]>, signing_secret: &[u8]) -> Self {
        match secret_key {
            Some(k) => SecretBox {
                primary: derive(k),
                fallback: Some(derive(signing_secret)),
            },
            None => SecretBox {
                primary: derive(signing_secret),
                fallback: None,
            },
        }
    }

    /// Seals `value` for the row of `user_id`.
    pub fn seal(&self, user_id: i64, value: &str) -> String {
        let nonce: [u8; NONCE_LEN] = rand::random();
        let mut buf = value.as_bytes().to_vec();
        self.primary
            .seal_in_place_append_tag(
                Nonce::assume_unique_for_key(nonce),
                Aad::from(user_id.to_be_bytes()),
                &mut buf,
            )
            .expect("AES-GCM sealing a short value");
        let mut out = nonce.to_vec();
        out.extend_from_slice(&buf);
        format!("{PREFIX}{}", B64.encode(out))
    }

    /// Opens a stored value of the row of `user_id`.
    ///
    /// # Errors
    /// A sealed value that opens under no key (another server's key, or
    /// copied from another row).
    pub fn open(&self, user_id: i64, stored: &str) -> Result<Opened, String> {
        let Some(b64) = stored.strip_prefix(PREFIX) else {
            return Ok(Opened {
                value: stored.to_owned(),
                reseal: true,
            });
        };
        let raw = B64
            .decode(b64)
            .map_err(|_| "sealed secret: not base64".to_owned())?;
        if raw.len() < NONCE_LEN + AES_256_GCM.tag_len() {
            return Err("sealed secret: too short".into());
        }
        let (nonce, body) = raw.split_at(NONCE_LEN);
        let nonce: [u8; NONCE_LEN] = nonce.try_into().map_err(|_| "nonce".to_owned())?;
        let keys =
            std::iter::once((&self.primary, false)).chain(self.fallback.iter().map(|k| (k, true)));
        for (key, old) in keys {
            let mut buf = body.to_vec();
            if let Ok(plain) = key.open_in_place(
                Nonce::assume_unique_for_key(nonce),
                Aad::from(user_id.to_be_bytes()),
                &mut buf,
            ) {
                let value = String::from_utf8(plain.to_vec())
                    .map_err(|_| "sealed secret: not UTF-8".to_owned())?;
                return Ok(Opened { value, reseal: old });
            }
        }
        Err("sealed secret does not open with this server's key (KILLKRILL_SECRET_KEY / JWT_SECRET changed?)".into())
    }
}

#[cfg(test)]
#[allow(clippy::unwrap_used)]
mod tests {
    use super::*;

    #[test]
    fn seal_open_bind_and_rotate() {
        let jwt = [7u8; 32];
        let b = SecretBox::new(None, &jwt);
        let s = b.seal(5, "JBSWY3DPEHPK3PXP");
        assert!(
            s.starts_with(PREFIX) && !s.contains("JBSWY3DPEHPK3PXP"),
            "{s}"
        );
        assert_ne!(s, b.seal(5, "JBSWY3DPEHPK3PXP"), "random nonce");
        assert_eq!(
            b.open(5, &s).unwrap(),
            Opened {
                value: "JBSWY3DPEHPK3PXP".into(),
                reseal: false
            }
        );
        assert!(b.open(6, &s).is_err(), "bound to its row");
        let mut t = s.clone().into_bytes();
        let n = t.len() - 3;
        t[n] = if t[n] == b'A' { b'B' } else { b'A' };
        assert!(
            b.open(5, std::str::from_utf8(&t).unwrap()).is_err(),
            "tampered"
        );
        assert!(
            SecretBox::new(None, &[8u8; 32]).open(5, &s).is_err(),
            "other key"
        );
        // Clear text from before encryption: accepted, to be re-sealed.
        assert_eq!(
            b.open(5, "JBSWY3DPEHPK3PXP").unwrap(),
            Opened {
                value: "JBSWY3DPEHPK3PXP".into(),
                reseal: true
            }
        );
        // KILLKRILL_SECRET_KEY introduced later: old values open, re-sealed.
        let nb = SecretBox::new(Some(b"a-new-secret-key-of-32-bytes-or-more"), &jwt);
        assert!(nb.open(5, &s).unwrap().reseal);
        let s2 = nb.seal(5, "X");
        assert_eq!(
            nb.open(5, &s2).unwrap(),
            Opened {
                value: "X".into(),
                reseal: false
            }
        );
        assert!(b.open(5, &s2).is_err());
    }
}
