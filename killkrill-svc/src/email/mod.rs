//! Email confirmation and password reset over SMTP (`[smtp]`).
//!
//! Why it looks like this: a token is 32 random bytes (`kke_` + base64url),
//! mailed once and stored only as its SHA-256 with a purpose (`confirm` or
//! `reset`) and an expiry, in `auth_email_tokens` (shared by every API
//! replica). Using one is a single conditional `UPDATE` (unused, unexpired,
//! same purpose), so it works once, even when two requests race, and a
//! confirmation token never resets a password. Mail goes through the
//! [`outbox`]: requests never wait for the relay.
//!
//! A forgot-password request answers the same 202 whether or not the
//! account exists, and looks the account up after answering (on a spawned
//! task), so neither the body nor the timing tells. The rate limits (per
//! client address and per email address) apply before the lookup, to known
//! and unknown addresses alike.
//!
//! - [`config`] holds `[smtp]`.
//! - [`outbox`] is the bounded queue, the sender task, retries, counters.
//! - [`limit`] is the per-key request limiter.

pub mod config;
pub mod limit;
pub mod outbox;

use std::net::IpAddr;
use std::sync::Arc;
use std::time::{Duration, Instant};

use base64::Engine;
use base64::engine::general_purpose::URL_SAFE_NO_PAD as B64;
use killkrill_store::auth::UserRow;
use metrics::counter;

pub use config::{SmtpConfig, SmtpSecurity};
use limit::{KeyedLimiter, Refused};
pub use outbox::{Mail, Outbox};

use crate::auth::{Auth, AuthError, keys, now_nanos, password};

/// The purpose of a confirmation token.
pub const PURPOSE_CONFIRM: &str = "confirm";
/// The purpose of a reset token.
pub const PURPOSE_RESET: &str = "reset";
/// Every email token starts with this.
pub const TOKEN_PREFIX: &str = "kke_";
/// Forgot-password requests, by result (`queued`, `not_queued`,
/// `unknown`, `rate_limited`, `limiter_full`, `error`).
pub const EMAIL_REQUESTS: &str = "killkrill_email_reset_requests_total";

const NANOS: i64 = 1_000_000_000;

/// A new token.
pub fn new_token() -> String {
    let bytes: [u8; 32] = rand::random();
    format!("{TOKEN_PREFIX}{}", B64.encode(bytes))
}

/// Whether `t` has a token's shape (checked before any lookup).
pub fn well_formed(t: &str) -> bool {
    t.len() == TOKEN_PREFIX.len() + 43
        && t.starts_with(TOKEN_PREFIX)
        && t[TOKEN_PREFIX.len()..]
            .bytes()
            .all(|b| b.is_ascii_alphanumeric() || b == b'-' || b == b'_')
}

/// Why an email operation was refused.
#[derive(Debug, thiserror::Error)]
pub enum EmailError {
    /// The token is unknown, used, expired or of another purpose (the same
    /// answer for all four).
    #[error("invalid or expired token")]
    BadToken,
    /// Too many requests (429).
    #[error("too many requests")]
    RateLimited {
        /// Seconds to wait.
        retry_after: u64,
    },
    /// The email is already confirmed (409).
    #[error("the email is already confirmed")]
    AlreadyConfirmed,
    /// Anything the auth service refuses (policy, store).
    #[error(transparent)]
    Auth(#[from] AuthError),
}

impl From<killkrill_core::storage::StoreError> for EmailError {
    fn from(e: killkrill_core::storage::StoreError) -> Self {
        EmailError::Auth(AuthError::Store(e))
    }
}

/// The email service of one process.
#[derive(Debug)]
pub struct Email {
    cfg: SmtpConfig,
    outbox: Outbox,
    forgot_by_addr: KeyedLimiter<IpAddr>,
    forgot_by_email: KeyedLimiter<String>,
    resend_by_user: KeyedLimiter<i64>,
}

impl Email {
    /// Builds the transport and starts the outbox (needs a Tokio runtime).
    ///
    /// # Errors
    /// `key: problem`.
    pub fn start(cfg: &SmtpConfig) -> Result<Arc<Email>, String> {
        cfg.validate().map_err(|(k, p)| format!("{k}: {p}"))?;
        let outbox = Outbox::start(cfg).map_err(|(k, p)| format!("{k}: {p}"))?;
        let window = Duration::from_secs(cfg.limit_window_secs);
        Ok(Arc::new(Email {
            cfg: cfg.clone(),
            outbox,
            forgot_by_addr: KeyedLimiter::new("forgot_per_address", cfg.forgot_per_address, window),
            forgot_by_email: KeyedLimiter::new("forgot_per_email", cfg.forgot_per_email, window),
            resend_by_user: KeyedLimiter::new("resend_per_user", cfg.resend_per_user, window),
        }))
    }

    /// The settings.
    pub fn config(&self) -> &SmtpConfig {
        &self.cfg
    }

    fn link(&self, page: &str, token: &str) -> String {
        format!(
            "{}/{page}?token={token}",
            self.cfg.public_url.trim_end_matches('/')
        )
    }

    async fn issue(
        &self,
        auth: &Auth,
        user_id: i64,
        purpose: &str,
        ttl_secs: u64,
    ) -> Result<String, EmailError> {
        let token = new_token();
        let now = now_nanos();
        let ttl = i64::try_from(ttl_secs).unwrap_or(i64::MAX / NANOS);
        auth.store()
            .insert_email_token(
                &keys::digest(&token),
                user_id,
                purpose,
                now.saturating_add(ttl.saturating_mul(NANOS)),
                now,
            )
            .await?;
        Ok(token)
    }

    /// Mails `u` a new confirmation link (older ones stop working).
    /// Returns whether the mail was queued.
    ///
    /// # Errors
    /// [`EmailError::Auth`] (store).
    pub async fn send_confirmation(&self, auth: &Auth, u: &UserRow) -> Result<bool, EmailError> {
        auth.store()
            .spend_email_tokens(u.id, PURPOSE_CONFIRM)
            .await?;
        let token = self
            .issue(auth, u.id, PURPOSE_CONFIRM, self.cfg.confirm_ttl_secs)
            .await?;
        let body = format!(
            "Confirm the email address of your Killkrill account {email}:\n\n{link}\n\n\
             Or send the token yourself: POST /api/v1/auth/email/confirm {{\"token\": \"{token}\"}}\n\n\
             The link works once and expires in {ttl}. If you did not expect this mail, ignore it.\n",
            email = u.email,
            link = self.link("confirm-email", &token),
            ttl = human(self.cfg.confirm_ttl_secs),
        );
        Ok(self.outbox.submit(Mail {
            kind: "confirm",
            to: u.email.clone(),
            subject: "Confirm your email address".into(),
            body,
        }))
    }

    /// `POST /api/v1/auth/email/resend` for user `id`: rate limited per
    /// user; refused when already confirmed.
    ///
    /// # Errors
    /// [`EmailError::RateLimited`], [`EmailError::AlreadyConfirmed`],
    /// [`EmailError::Auth`].
    pub async fn resend(&self, auth: &Auth, id: i64) -> Result<bool, EmailError> {
        let u = auth
            .store()
            .user(id)
            .await?
            .ok_or_else(|| AuthError::NotFound(format!("user {id}")))?;
        if auth.store().email_confirmed_at(id).await?.is_some() {
            return Err(EmailError::AlreadyConfirmed);
        }
        if let Err(r) = self.resend_by_user.hit(id, Instant::now()) {
            return Err(EmailError::RateLimited {
                retry_after: r.retry_after(),
            });
        }
        self.send_confirmation(auth, &u).await
    }

    /// Spends a confirmation token and marks its user's email confirmed;
    /// returns the user.
    ///
    /// # Errors
    /// [`EmailError::BadToken`], [`EmailError::Auth`].
    pub async fn confirm(&self, auth: &Auth, token: &str) -> Result<UserRow, EmailError> {
        if !well_formed(token) {
            return Err(EmailError::BadToken);
        }
        let now = now_nanos();
        let id = auth
            .store()
            .use_email_token(&keys::digest(token), PURPOSE_CONFIRM, now)
            .await?
            .ok_or(EmailError::BadToken)?;
        auth.store().set_email_confirmed(id, now).await?;
        auth.store().user(id).await?.ok_or(EmailError::BadToken)
    }

    /// The rate limits of a forgot-password request (checked before
    /// anything else, for known and unknown addresses alike): per client
    /// address (an IPv6 client by its /64) and per email address. A request
    /// that finds a limiter's table full of live entries is refused too
    /// (counted as `limiter_full`), never let through by forgetting others.
    ///
    /// # Errors
    /// [`EmailError::RateLimited`].
    pub fn check_forgot_limits(&self, email: &str, addr: Option<IpAddr>) -> Result<(), EmailError> {
        let now = Instant::now();
        let refused = |r: Refused| {
            let label = match r {
                Refused::Limited { .. } => "rate_limited",
                Refused::Full { .. } => "limiter_full",
            };
            counter!(EMAIL_REQUESTS, "result" => label).increment(1);
            EmailError::RateLimited {
                retry_after: r.retry_after(),
            }
        };
        if let Some(a) = addr {
            self.forgot_by_addr
                .hit(limit::address_key(a), now)
                .map_err(refused)?;
        }
        self.forgot_by_email
            .hit(email.to_lowercase(), now)
            .map_err(refused)?;
        Ok(())
    }

    /// The work behind a forgot-password request, after the answer: when
    /// `email` is a user's, older reset links stop working and a new one is
    /// mailed. Every outcome is audited and counted, none is returned.
    pub async fn forgot(&self, auth: &Auth, email: &str, source: &str) {
        let r = async {
            let Some(u) = auth.store().user_by_email(email).await? else {
                return Ok::<_, EmailError>(None);
            };
            auth.store().spend_email_tokens(u.id, PURPOSE_RESET).await?;
            let token = self
                .issue(auth, u.id, PURPOSE_RESET, self.cfg.reset_ttl_secs)
                .await?;
            let body = format!(
                "Someone (hopefully you) asked to reset the password of the Killkrill account {email}.\n\n\
                 Choose a new password here:\n\n{link}\n\n\
                 Or send the token yourself: POST /api/v1/auth/password/reset {{\"token\": \"{token}\", \"new_password\": \"...\"}}\n\n\
                 The link works once and expires in {ttl}. If you did not ask for this, ignore this mail: your password stays as it is.\n",
                email = u.email,
                link = self.link("reset-password", &token),
                ttl = human(self.cfg.reset_ttl_secs),
            );
            let queued = self.outbox.submit(Mail {
                kind: "reset",
                to: u.email.clone(),
                subject: "Reset your password".into(),
                body,
            });
            Ok(Some((u, queued)))
        }
        .await;
        let (tenant, result, detail) = match &r {
            Ok(Some((u, true))) => (u.tenant.clone(), "ok", "reset mail queued"),
            Ok(Some((u, false))) => (u.tenant.clone(), "failed", "reset mail not queued"),
            Ok(None) => (
                auth.system_tenant().clone(),
                "ok",
                "no such account; no mail",
            ),
            Err(e) => {
                tracing::warn!(error = %e, "forgot-password request failed");
                (auth.system_tenant().clone(), "failed", "store error")
            }
        };
        let label = match &r {
            Ok(Some((_, true))) => "queued",
            Ok(Some((_, false))) => "not_queued",
            Ok(None) => "unknown",
            Err(_) => "error",
        };
        counter!(EMAIL_REQUESTS, "result" => label).increment(1);
        auth.audit(
            &tenant,
            email,
            "auth.password_forgot",
            email,
            source,
            result,
            detail,
        )
        .await;
    }

    /// Sets a new password with a reset token: the policy is checked first
    /// (a weak password does not use the token up), then the token is
    /// spent, the password set (argon2id off the async threads), every
    /// other reset token of the user spent, every session ended, the
    /// lockout cleared, the email marked confirmed (the mail reached it),
    /// and a notice mailed. Returns the user.
    ///
    /// # Errors
    /// [`EmailError::BadToken`], [`EmailError::Auth`] (policy: `Invalid`).
    pub async fn reset(
        &self,
        auth: &Auth,
        token: &str,
        new_password: &str,
    ) -> Result<UserRow, EmailError> {
        if !well_formed(token) {
            return Err(EmailError::BadToken);
        }
        let hash = keys::digest(token);
        let store = auth.store();
        let id = store
            .peek_email_token(&hash, PURPOSE_RESET, now_nanos())
            .await?
            .ok_or(EmailError::BadToken)?;
        let u = store.user(id).await?.ok_or(EmailError::BadToken)?;
        password::check_policy(new_password, auth.config().min_password_length, &u.email)
            .map_err(|e| AuthError::Invalid(e.0))?;
        let now = now_nanos();
        match store.use_email_token(&hash, PURPOSE_RESET, now).await? {
            Some(owner) if owner == id => {}
            _ => return Err(EmailError::BadToken),
        }
        // Hashes on the blocking pool; clears the lockout and ends every
        // session (access tokens included: the session generation moves).
        auth.set_password(id, new_password).await?;
        store.spend_email_tokens(id, PURPOSE_RESET).await?;
        if store.email_confirmed_at(id).await?.is_none() {
            store.set_email_confirmed(id, now).await?;
        }
        self.outbox.submit(Mail {
            kind: "notice",
            to: u.email.clone(),
            subject: "Your password was changed".into(),
            body: format!(
                "The password of the Killkrill account {} was reset with a link sent to this address, and every session was signed out.\n\
                 If this was not you, contact your administrator now.\n",
                u.email
            ),
        });
        Ok(u)
    }
}

fn human(secs: u64) -> String {
    match secs {
        s if s % 3600 == 0 => format!("{} hour(s)", s / 3600),
        s if s % 60 == 0 => format!("{} minute(s)", s / 60),
        s => format!("{s} second(s)"),
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn tokens_are_long_random_and_checked_for_shape() {
        let a = new_token();
        let b = new_token();
        assert_ne!(a, b);
        assert!(well_formed(&a), "{a}");
        assert!(!well_formed(&a[..a.len() - 1]));
        assert!(!well_formed(&format!("kk_{}", &a[4..])));
        assert!(!well_formed(&format!("{}!", &a[..a.len() - 1])));
        assert_eq!(human(1800), "30 minute(s)");
        assert_eq!(human(86400), "24 hour(s)");
        assert_eq!(human(1), "1 second(s)");
    }
}
