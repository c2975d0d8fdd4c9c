//! `[smtp]`: the mail relay used for email confirmation and password reset.
//! Off while `host` is unset; then the email routes answer 501.
//!
//! The password is never printed (`check-config` leaves it out) and may
//! come from `KILLKRILL_SMTP__PASSWORD` (read raw, so a password made of
//! digits stays a string).

use std::path::PathBuf;

use serde::{Deserialize, Deserializer, Serialize};

/// How the connection to the relay is protected.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Default, Serialize, Deserialize)]
#[serde(rename_all = "lowercase")]
pub enum SmtpSecurity {
    /// Plain connection upgraded with STARTTLS, which is required (port 587).
    #[default]
    Starttls,
    /// TLS from the first byte (SMTPS, port 465).
    Tls,
    /// No TLS: only to a relay on a loopback address (a local MTA).
    None,
}

impl SmtpSecurity {
    /// The usual port.
    pub fn default_port(self) -> u16 {
        match self {
            SmtpSecurity::Starttls => 587,
            SmtpSecurity::Tls => 465,
            SmtpSecurity::None => 25,
        }
    }
}

/// `[smtp]`.
#[derive(Clone, Serialize, Deserialize)]
#[serde(deny_unknown_fields, default)]
pub struct SmtpConfig {
    /// The relay's host name or address; unset = email off.
    pub host: Option<String>,
    /// The relay's port; by default 587 (starttls), 465 (tls) or 25 (none).
    pub port: Option<u16>,
    /// `starttls` (default), `tls` or `none` (loopback hosts only).
    pub security: SmtpSecurity,
    /// User name for SMTP AUTH (with `password`).
    pub username: Option<String>,
    /// Password for SMTP AUTH (`KILLKRILL_SMTP__PASSWORD`); never printed.
    #[serde(skip_serializing, deserialize_with = "lenient_string")]
    pub password: Option<String>,
    /// A PEM file of extra CA certificates trusted for the relay (besides
    /// the system's).
    pub ca_file: Option<PathBuf>,
    /// The sender (`Killkrill <no-reply@example.com>`).
    pub from: String,
    /// The base URL of the web UI that users open from the mail
    /// (`https://logs.example.com`); links are
    /// `{public_url}/confirm-email?token=...` and
    /// `{public_url}/reset-password?token=...`.
    pub public_url: String,
    /// How long a confirmation link works, seconds.
    pub confirm_ttl_secs: u64,
    /// How long a reset link works, seconds.
    pub reset_ttl_secs: u64,
    /// Timeout of one SMTP conversation, seconds.
    pub timeout_secs: u64,
    /// Mails held at most (queued, being sent, or waiting to retry);
    /// beyond it new mails are dropped (counted).
    pub outbox_capacity: usize,
    /// SMTP conversations at once (a mail waiting to retry holds none).
    pub concurrency: usize,
    /// Attempts per mail (temporary failures are retried with exponential
    /// backoff; permanent ones are not).
    pub max_attempts: u32,
    /// First retry delay, milliseconds (doubles per attempt, at most 5 min).
    pub retry_base_ms: u64,
    /// Forgot-password requests per client address per window.
    pub forgot_per_address: u32,
    /// Forgot-password requests per email address per window.
    pub forgot_per_email: u32,
    /// Confirmation resends per user per window.
    pub resend_per_user: u32,
    /// The rate-limit window, seconds.
    pub limit_window_secs: u64,
}

impl std::fmt::Debug for SmtpConfig {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        // By hand, to keep the SMTP password out of logs; every field is
        // named, so a new one cannot be forgotten.
        let SmtpConfig {
            host,
            port,
            security,
            username,
            password,
            ca_file,
            from,
            public_url,
            confirm_ttl_secs,
            reset_ttl_secs,
            timeout_secs,
            outbox_capacity,
            concurrency,
            max_attempts,
            retry_base_ms,
            forgot_per_address,
            forgot_per_email,
            resend_per_user,
            limit_window_secs,
        } = self;
        f.debug_struct("SmtpConfig")
            .field("host", host)
            .field("port", port)
            .field("security", security)
            .field("username", username)
            .field("password", &killkrill_core::secret::Redacted(password))
            .field("ca_file", ca_file)
            .field("from", from)
            .field("public_url", public_url)
            .field("confirm_ttl_secs", confirm_ttl_secs)
            .field("reset_ttl_secs", reset_ttl_secs)
            .field("timeout_secs", timeout_secs)
            .field("outbox_capacity", outbox_capacity)
            .field("concurrency", concurrency)
            .field("max_attempts", max_attempts)
            .field("retry_base_ms", retry_base_ms)
            .field("forgot_per_address", forgot_per_address)
            .field("forgot_per_email", forgot_per_email)
            .field("resend_per_user", resend_per_user)
            .field("limit_window_secs", limit_window_secs)
            .finish()
    }
}

impl Default for SmtpConfig {
    fn default() -> Self {
        SmtpConfig {
            host: None,
            port: None,
            security: SmtpSecurity::Starttls,
            username: None,
            password: None,
            ca_file: None,
            from: String::new(),
            public_url: String::new(),
            confirm_ttl_secs: 24 * 3600,
            reset_ttl_secs: 30 * 60,
            timeout_secs: 30,
            outbox_capacity: 1000,
            concurrency: 4,
            max_attempts: 5,
            retry_base_ms: 2000,
            forgot_per_address: 10,
            forgot_per_email: 3,
            resend_per_user: 3,
            limit_window_secs: 3600,
        }
    }
}

/// Any TOML scalar as a string (an environment value of digits is parsed
/// as a number before it reaches here).
fn lenient_string<'de, D: Deserializer<'de>>(d: D) -> Result<Option<String>, D::Error> {
    #[derive(Deserialize)]
    #[serde(untagged)]
    enum Scalar {
        S(String),
        I(i64),
        F(f64),
        B(bool),
    }
    Ok(Option::<Scalar>::deserialize(d)?.map(|v| match v {
        Scalar::S(s) => s,
        Scalar::I(i) => i.to_string(),
        Scalar::F(f) => f.to_string(),
        Scalar::B(b) => b.to_string(),
    }))
}

/// Whether `host` names the local machine.
pub fn is_loopback(host: &str) -> bool {
    let h = host.trim_start_matches('[').trim_end_matches(']');
    h.eq_ignore_ascii_case("localhost")
        || h.parse::<std::net::IpAddr>().is_ok_and(|a| a.is_loopback())
}

impl SmtpConfig {
    /// Whether email is on (`host` set).
    pub fn enabled(&self) -> bool {
        self.host.is_some()
    }

    /// The port in use.
    pub fn port(&self) -> u16 {
        self.port.unwrap_or_else(|| self.security.default_port())
    }

    /// Reads `KILLKRILL_SMTP__PASSWORD` as written (the generic layer may
    /// have turned `0123` into the number 123).
    pub fn read_env(&mut self, env: &[(String, String)]) {
        if let Some((_, v)) = env.iter().find(|(k, _)| k == "KILLKRILL_SMTP__PASSWORD") {
            self.password = (!v.is_empty()).then(|| v.clone());
        }
    }

    /// Checks the settings when email is on.
    ///
    /// # Errors
    /// `(key, problem)`.
    pub fn validate(&self) -> Result<(), (&'static str, String)> {
        let Some(host) = &self.host else {
            return Ok(());
        };
        if host.is_empty()
            || host.len() > 253
            || host
                .chars()
                .any(|c| c.is_whitespace() || c.is_control() || c == '/' || c == '@')
        {
            return Err((
                "smtp.host",
                format!("{host:?} is not a host name or address"),
            ));
        }
        if self.port == Some(0) {
            return Err(("smtp.port", "must be 1 to 65535".into()));
        }
        if self.security == SmtpSecurity::None && !is_loopback(host) {
            return Err((
                "smtp.security",
                format!(
                    "\"none\" (no TLS) is only allowed to a loopback relay (localhost, 127.0.0.1, ::1), not {host:?}: use \"starttls\" or \"tls\""
                ),
            ));
        }
        match (&self.username, &self.password) {
            (Some(u), _) if u.is_empty() => {
                return Err(("smtp.username", "must not be empty when set".into()));
            }
            (Some(_), None) => {
                return Err((
                    "smtp.password",
                    "smtp.username is set but no password (smtp.password or KILLKRILL_SMTP__PASSWORD)"
                        .into(),
                ));
            }
            (None, Some(_)) => {
                return Err((
                    "smtp.username",
                    "a password is set (smtp.password or KILLKRILL_SMTP__PASSWORD) but no user name"
                        .into(),
                ));
            }
            _ => {}
        }
        if self.from.is_empty() {
            return Err((
                "smtp.from",
                "must be set when smtp.host is (`Name <address@domain>` or `address@domain`)"
                    .into(),
            ));
        }
        if self.from.parse::<lettre::message::Mailbox>().is_err() {
            return Err((
                "smtp.from",
                format!("{:?} is not a mailbox (`Name <address@domain>`)", self.from),
            ));
        }
        check_public_url(&self.public_url).map_err(|p| ("smtp.public_url", p))?;
        if self.confirm_ttl_secs == 0 || self.confirm_ttl_secs > 30 * 24 * 3600 {
            return Err((
                "smtp.confirm_ttl_secs",
                "must be 1 to 2592000 (30 days)".into(),
            ));
        }
        if self.reset_ttl_secs == 0 || self.reset_ttl_secs > 24 * 3600 {
            return Err(("smtp.reset_ttl_secs", "must be 1 to 86400 (one day)".into()));
        }
        if self.timeout_secs == 0 || self.timeout_secs > 600 {
            return Err(("smtp.timeout_secs", "must be 1 to 600".into()));
        }
        if self.outbox_capacity == 0 || self.outbox_capacity > 1_000_000 {
            return Err(("smtp.outbox_capacity", "must be 1 to 1000000".into()));
        }
        if self.concurrency == 0 || self.concurrency > 64 {
            return Err(("smtp.concurrency", "must be 1 to 64".into()));
        }
        if self.max_attempts == 0 || self.max_attempts > 20 {
            return Err(("smtp.max_attempts", "must be 1 to 20".into()));
        }
        if self.retry_base_ms > 300_000 {
            return Err(("smtp.retry_base_ms", "must be at most 300000".into()));
        }
        for (k, v) in [
            ("smtp.forgot_per_address", self.forgot_per_address),
            ("smtp.forgot_per_email", self.forgot_per_email),
            ("smtp.resend_per_user", self.resend_per_user),
        ] {
            if v == 0 {
                return Err((k, "must be at least 1".into()));
            }
        }
        if self.limit_window_secs == 0 || self.limit_window_secs > 7 * 24 * 3600 {
            return Err(("smtp.limit_window_secs", "must be 1 to 604800".into()));
        }
        if let Some(f) = &self.ca_file {
            let pem =
                std::fs::read(f).map_err(|e| ("smtp.ca_file", format!("{}: {e}", f.display())))?;
            lettre::transport::smtp::client::Certificate::from_pem(&pem).map_err(|e| {
                (
                    "smtp.ca_file",
                    format!("{}: not a PEM certificate: {e}", f.display()),
                )
            })?;
        }
        Ok(())
    }
}

/// An absolute http(s) URL without query or fragment; plain http only to a
/// loopback host.
fn check_public_url(u: &str) -> Result<(), String> {
    if u.is_empty() {
        return Err(
            "must be set when smtp.host is: the base URL of the web UI the links in the mails point to"
                .into(),
        );
    }
    let uri: axum::http::Uri = u.parse().map_err(|_| format!("{u:?} is not a URL"))?;
    let host = uri.host().unwrap_or("");
    match uri.scheme_str() {
        Some("https") if !host.is_empty() => {}
        Some("http") if !host.is_empty() && is_loopback(host) => {}
        Some("http") if !host.is_empty() => {
            return Err(format!(
                "{u:?}: links carrying tokens must use https (http only to a loopback host)"
            ));
        }
        _ => return Err(format!("{u:?} is not an absolute http(s) URL")),
    }
    if uri.query().is_some() || u.contains('#') {
        return Err(format!("{u:?}: no query or fragment"));
    }
    Ok(())
}

#[cfg(test)]
mod tests {
    use super::*;

    fn on() -> SmtpConfig {
        SmtpConfig {
            host: Some("smtp.example.com".into()),
            from: "Killkrill <no-reply@example.com>".into(),
            public_url: "https://logs.example.com".into(),
            ..SmtpConfig::default()
        }
    }

    #[test]
    fn off_by_default_and_valid_when_complete() {
        assert!(!SmtpConfig::default().enabled());
        assert_eq!(SmtpConfig::default().validate(), Ok(()));
        assert_eq!(on().validate(), Ok(()));
        assert_eq!(on().port(), 587);
    }

    #[test]
    fn errors_name_the_key() {
        let key = |c: SmtpConfig| c.validate().unwrap_err().0;
        assert_eq!(
            key(SmtpConfig {
                security: SmtpSecurity::None,
                ..on()
            }),
            "smtp.security"
        );
        let mut local = on();
        local.host = Some("127.0.0.1".into());
        local.security = SmtpSecurity::None;
        assert_eq!(local.validate(), Ok(()));
        assert_eq!(
            key(SmtpConfig {
                from: "nope".into(),
                ..on()
            }),
            "smtp.from"
        );
        assert_eq!(
            key(SmtpConfig {
                public_url: "http://logs.example.com".into(),
                ..on()
            }),
            "smtp.public_url"
        );
        assert_eq!(
            key(SmtpConfig {
                username: Some("u".into()),
                ..on()
            }),
            "smtp.password"
        );
        assert_eq!(
            key(SmtpConfig {
                reset_ttl_secs: 0,
                ..on()
            }),
            "smtp.reset_ttl_secs"
        );
        assert_eq!(
            key(SmtpConfig {
                ca_file: Some("/nonexistent/ca.pem".into()),
                ..on()
            }),
            "smtp.ca_file"
        );
    }

    #[test]
    fn the_password_from_the_environment_is_kept_as_written() {
        let mut c = on();
        c.read_env(&[("KILLKRILL_SMTP__PASSWORD".into(), "0123".into())]);
        assert_eq!(c.password.as_deref(), Some("0123"));
        let t: toml::Value = toml::from_str("password = 123").unwrap();
        let c: SmtpConfig = t.try_into().unwrap();
        assert_eq!(c.password.as_deref(), Some("123"));
        assert!(
            !toml::to_string(&on_with_password())
                .unwrap()
                .contains("s3cret")
        );
    }

    fn on_with_password() -> SmtpConfig {
        SmtpConfig {
            username: Some("u".into()),
            password: Some("s3cret".into()),
            ..on()
        }
    }

    #[test]
    fn the_password_is_not_in_debug_output() {
        let c = on_with_password();
        for shown in [format!("{c:?}"), format!("{c:#?}")] {
            assert!(!shown.contains("s3cret"), "{shown}");
            assert!(shown.contains("<redacted>"), "{shown}");
            assert!(shown.contains("smtp.example.com"), "{shown}");
        }
        assert!(format!("{:?}", on()).contains("password: None"));
    }
}
