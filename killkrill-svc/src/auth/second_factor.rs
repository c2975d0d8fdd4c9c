//! The second factor of [`Auth`]: TOTP enrolment and confirmation, the
//! check at login (a code once per step, or a recovery code once), and the
//! TOTP secrets sealed at rest ([`super::secretbox`]).

use killkrill_store::auth::{TotpState, UserRow};
use metrics::counter;

use super::service::{AUTH_LOGINS, AUTH_REJECTED, Auth, AuthError};
use super::{keys, now_nanos, totp};

const NANOS: i64 = 1_000_000_000;

/// What the second factor of a login with the right password says.
pub(super) enum SecondFactor {
    /// The user has no TOTP on.
    NotEnrolled,
    /// TOTP is on and no code came.
    Missing,
    /// A current code (first use of its step) or an unused recovery code.
    Accepted,
    /// Anything else.
    Wrong,
}

impl Auth {
    /// Checks the second factor of a user whose password was right.
    pub(super) async fn second_factor(
        &self,
        id: i64,
        code: Option<&str>,
    ) -> Result<SecondFactor, AuthError> {
        let st = self.totp_state(id).await?;
        let (Some(secret), true) = (st.secret, st.enabled) else {
            return Ok(SecondFactor::NotEnrolled);
        };
        let Some(code) = code.map(str::trim).filter(|c| !c.is_empty()) else {
            return Ok(SecondFactor::Missing);
        };
        if code.len() > 64 {
            return Ok(SecondFactor::Wrong);
        }
        let now = u64::try_from(now_nanos() / NANOS).unwrap_or(0);
        if let Some(step) = totp::check(&secret, code, now) {
            let step = i64::try_from(step).unwrap_or(i64::MAX);
            return Ok(if self.store.advance_totp_step(id, step).await? {
                SecondFactor::Accepted
            } else {
                SecondFactor::Wrong // replayed
            });
        }
        if self
            .store
            .use_recovery_code(id, &keys::digest(code))
            .await?
        {
            counter!(AUTH_LOGINS, "result" => "recovery_code").increment(1);
            return Ok(SecondFactor::Accepted);
        }
        Ok(SecondFactor::Wrong)
    }

    /// A user's TOTP state with the secret opened; a clear-text secret
    /// (stored before encryption) or one sealed with the previous key is
    /// sealed again with the current key.
    ///
    /// # Errors
    /// [`AuthError::Internal`] for a secret that does not open,
    /// [`AuthError::Store`].
    pub async fn totp_state(&self, id: i64) -> Result<TotpState, AuthError> {
        let mut st = self.store.totp_state(id).await?;
        if let Some(stored) = st.secret.take() {
            let o = self.sealer.open(id, &stored).map_err(|e| {
                counter!(AUTH_REJECTED, "reason" => "unreadable TOTP secret").increment(1);
                AuthError::Internal(format!("TOTP secret of user {id}: {e}"))
            })?;
            if o.reseal {
                let sealed = self.sealer.seal(id, &o.value);
                self.store.replace_totp_secret(id, &stored, &sealed).await?;
            }
            st.secret = Some(o.value);
        }
        Ok(st)
    }

    /// Seals every TOTP secret still stored in clear text (or under the
    /// previous key); run at start. Returns how many were rewritten; a
    /// secret that does not open is logged and left alone.
    ///
    /// # Errors
    /// [`AuthError::Store`].
    pub async fn seal_totp_secrets(&self) -> Result<u64, AuthError> {
        let mut n = 0;
        for (id, stored) in self.store.totp_secrets().await? {
            match self.sealer.open(id, &stored) {
                Ok(o) if o.reseal => {
                    let sealed = self.sealer.seal(id, &o.value);
                    if self.store.replace_totp_secret(id, &stored, &sealed).await? {
                        n += 1;
                    }
                }
                Ok(_) => {}
                Err(e) => tracing::error!(user = id, error = %e, "TOTP secret does not open"),
            }
        }
        if n > 0 {
            tracing::info!(secrets = n, "TOTP secrets encrypted at rest");
        }
        Ok(n)
    }

    /// Starts TOTP enrolment: a new pending secret and its `otpauth://` URI.
    ///
    /// # Errors
    /// [`AuthError::Conflict`] when TOTP is already on.
    pub async fn totp_enrol(&self, u: &UserRow) -> Result<(String, String), AuthError> {
        if self.totp_state(u.id).await?.enabled {
            return Err(AuthError::Conflict(
                "TOTP is already on; an admin can reset it".into(),
            ));
        }
        let secret = totp::new_secret();
        let uri = totp::uri(&secret, &u.email).map_err(AuthError::Internal)?;
        let sealed = self.sealer.seal(u.id, &secret);
        self.store.set_totp(u.id, Some(&sealed), false).await?;
        Ok((secret, uri))
    }

    /// Confirms enrolment with a current code; returns the recovery codes
    /// (shown once).
    ///
    /// # Errors
    /// [`AuthError::Invalid`] without a pending enrolment or with a wrong code.
    pub async fn totp_confirm(&self, id: i64, code: &str) -> Result<Vec<String>, AuthError> {
        let st = self.totp_state(id).await?;
        let Some(secret) = st.secret.filter(|_| !st.enabled) else {
            return Err(AuthError::Invalid(
                "no pending TOTP enrolment: call enrol first".into(),
            ));
        };
        let now = u64::try_from(now_nanos() / NANOS).unwrap_or(0);
        let step = totp::check(&secret, code.trim(), now)
            .ok_or_else(|| AuthError::Invalid("code: wrong TOTP code".into()))?;
        self.store
            .enable_totp(id, i64::try_from(step).unwrap_or(i64::MAX))
            .await?;
        let codes = totp::recovery_codes();
        let hashes: Vec<[u8; 32]> = codes.iter().map(|c| keys::digest(c)).collect();
        self.store.replace_recovery_codes(id, &hashes).await?;
        Ok(codes)
    }
}
