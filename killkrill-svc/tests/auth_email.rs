//! Email confirmation and password reset over real SMTP: an SMTP server in
//! the test (plain, and STARTTLS with AUTH and a test CA) records every
//! message; the flows are driven over HTTP against the running server.
#![allow(clippy::unwrap_used, clippy::print_stderr)]

mod support;

use std::net::SocketAddr;
use std::path::Path;
use std::sync::atomic::{AtomicUsize, Ordering};
use std::sync::{Arc, Mutex};
use std::time::{Duration, Instant};

use base64::Engine;
use killkrill_svc::config::ServeConfig;
use killkrill_svc::email::SmtpSecurity;
use rcgen::{BasicConstraints, CertificateParams, CertifiedIssuer, IsCa, KeyPair};
use rustls::pki_types::{CertificateDer, PrivateKeyDer, PrivatePkcs8KeyDer};
use support::{Resp, config, metric_sum, raw_http};
use tokio::io::{AsyncBufReadExt, AsyncRead, AsyncWrite, AsyncWriteExt, BufReader};
use tokio::net::TcpListener;

const PASSWORD: &str = "Correct-Horse-42";
const NEW_PASSWORD: &str = "Battery-Staple-77";
const PUBLIC_URL: &str = "https://logs.example.test";
const SMTP_PASSWORD: &str = "0123456789";
/// Recipients starting with this are refused with a temporary failure (451).
const TEMPFAIL: &str = "tempfail";

// ---------------------------------------------------------------- SMTP server

/// One message as the server received it.
#[derive(Debug, Clone)]
struct Received {
    from: String,
    to: Vec<String>,
    data: String,
    /// The session was upgraded with STARTTLS before the message.
    tls: bool,
    /// `AUTH PLAIN` / `AUTH LOGIN` credentials, decoded.
    auth: Option<(String, String)>,
}

impl Received {
    fn header(&self, name: &str) -> Option<String> {
        let head = self.data.split("\r\n\r\n").next()?;
        head.lines()
            .find(|l| {
                l.len() > name.len()
                    && l[..name.len()].eq_ignore_ascii_case(name)
                    && l.as_bytes()[name.len()] == b':'
            })
            .map(|l| l[name.len() + 1..].trim().to_owned())
    }

    /// The body, quoted-printable decoded when so encoded.
    fn body(&self) -> String {
        let body = self
            .data
            .split_once("\r\n\r\n")
            .map_or("", |(_, b)| b)
            .to_owned();
        if self
            .header("Content-Transfer-Encoding")
            .is_some_and(|e| e.eq_ignore_ascii_case("quoted-printable"))
        {
            qp_decode(&body)
        } else {
            body
        }
    }

    /// The `kke_` token in the body.
    fn token(&self) -> String {
        let b = self.body();
        let i = b.find("kke_").unwrap_or_else(|| panic!("no token in {b}"));
        b[i..i + 4 + 43].to_owned()
    }
}

fn qp_decode(s: &str) -> String {
    let s = s.replace("=\r\n", "");
    let b = s.as_bytes();
    let mut out = Vec::new();
    let mut i = 0;
    while i < b.len() {
        if b[i] == b'='
            && i + 2 < b.len()
            && let Ok(v) = u8::from_str_radix(std::str::from_utf8(&b[i + 1..i + 3]).unwrap(), 16)
        {
            out.push(v);
            i += 3;
            continue;
        }
        out.push(b[i]);
        i += 1;
    }
    String::from_utf8(out).unwrap()
}

/// How the server answers new connections.
#[derive(Clone, Copy, PartialEq, Eq)]
enum Mode {
    Up,
    /// `421` greeting, then close (a temporary failure).
    Busy,
    /// Accept and close at once (the relay is down).
    Drop,
}

struct MailServer {
    addr: SocketAddr,
    got: Arc<Mutex<Vec<Received>>>,
    mode: Arc<Mutex<Mode>>,
    connections: Arc<AtomicUsize>,
}

impl MailServer {
    async fn start(tls: Option<Arc<rustls::ServerConfig>>) -> MailServer {
        let l = TcpListener::bind("127.0.0.1:0").await.unwrap();
        let addr = l.local_addr().unwrap();
        let got = Arc::new(Mutex::new(Vec::new()));
        let mode = Arc::new(Mutex::new(Mode::Up));
        let connections = Arc::new(AtomicUsize::new(0));
        let (g, m, c) = (got.clone(), mode.clone(), connections.clone());
        tokio::spawn(async move {
            loop {
                let Ok((mut s, _)) = l.accept().await else {
                    return;
                };
                c.fetch_add(1, Ordering::SeqCst);
                let mode = *m.lock().unwrap();
                let (g, tls) = (g.clone(), tls.clone());
                tokio::spawn(async move {
                    match mode {
                        Mode::Drop => drop(s),
                        Mode::Busy => {
                            let _ = s.write_all(b"421 test busy, try later\r\n").await;
                        }
                        Mode::Up => {
                            let _ = s.write_all(b"220 test ESMTP ready\r\n").await;
                            if let Ok(Some(plain)) = session(s, tls.is_some(), false, &g).await {
                                let acc = tokio_rustls::TlsAcceptor::from(tls.unwrap());
                                if let Ok(t) = acc.accept(plain).await {
                                    let _ = session(t, false, true, &g).await;
                                }
                            }
                        }
                    }
                });
            }
        });
        MailServer {
            addr,
            got,
            mode,
            connections,
        }
    }

    fn set(&self, m: Mode) {
        *self.mode.lock().unwrap() = m;
    }

    fn all(&self) -> Vec<Received> {
        self.got.lock().unwrap().clone()
    }

    fn to(&self, rcpt: &str) -> Vec<Received> {
        self.all()
            .into_iter()
            .filter(|m| m.to.iter().any(|t| t == rcpt))
            .collect()
    }

    /// Waits for the `n`th message to `rcpt` (1-based).
    async fn wait(&self, rcpt: &str, n: usize) -> Received {
        let end = Instant::now() + Duration::from_secs(15);
        loop {
            let v = self.to(rcpt);
            if v.len() >= n {
                return v[n - 1].clone();
            }
            assert!(
                Instant::now() < end,
                "no message {n} to {rcpt}; have {:?}",
                self.all()
            );
            tokio::time::sleep(Duration::from_millis(20)).await;
        }
    }
}

/// One SMTP session; `Ok(Some(stream))` when the client asked for
/// STARTTLS (the caller upgrades and runs a new session).
async fn session<S: AsyncRead + AsyncWrite + Unpin>(
    s: S,
    offer_tls: bool,
    is_tls: bool,
    got: &Mutex<Vec<Received>>,
) -> std::io::Result<Option<S>> {
    let mut r = BufReader::new(s);
    let mut from = String::new();
    let mut to = Vec::new();
    let mut auth = None;
    let mut line = String::new();
    loop {
        line.clear();
        if r.read_line(&mut line).await? == 0 {
            return Ok(None);
        }
        let cmd = line.trim_end().to_owned();
        let upper = cmd.to_ascii_uppercase();
        let reply: String = if upper.starts_with("EHLO") {
            let mut s = "250-test greets you\r\n250-8BITMIME\r\n".to_owned();
            if offer_tls {
                s.push_str("250-STARTTLS\r\n");
            }
            if is_tls {
                s.push_str("250-AUTH PLAIN LOGIN\r\n");
            }
            s.push_str("250 SMTPUTF8\r\n");
            s
        } else if upper.starts_with("HELO") {
            "250 test\r\n".into()
        } else if upper == "STARTTLS" && offer_tls {
            r.get_mut().write_all(b"220 go ahead\r\n").await?;
            return Ok(Some(r.into_inner()));
        } else if upper.starts_with("AUTH PLAIN") {
            let b64 = match cmd.split_whitespace().nth(2) {
                Some(b) => b.to_owned(),
                None => {
                    r.get_mut().write_all(b"334 \r\n").await?;
                    let mut l = String::new();
                    r.read_line(&mut l).await?;
                    l.trim().to_owned()
                }
            };
            let raw = base64::engine::general_purpose::STANDARD
                .decode(b64)
                .unwrap_or_default();
            let parts: Vec<String> = raw
                .split(|b| *b == 0)
                .map(|p| String::from_utf8_lossy(p).into_owned())
                .collect();
            if parts.len() == 3 {
                auth = Some((parts[1].clone(), parts[2].clone()));
                "235 ok\r\n".into()
            } else {
                "535 bad\r\n".into()
            }
        } else if upper.starts_with("AUTH LOGIN") {
            let mut read = async |prompt: &[u8]| -> std::io::Result<String> {
                r.get_mut().write_all(prompt).await?;
                let mut l = String::new();
                r.read_line(&mut l).await?;
                let raw = base64::engine::general_purpose::STANDARD
                    .decode(l.trim())
                    .unwrap_or_default();
                Ok(String::from_utf8_lossy(&raw).into_owned())
            };
            let u = read(b"334 VXNlcm5hbWU6\r\n").await?;
            let p = read(b"334 UGFzc3dvcmQ6\r\n").await?;
            auth = Some((u, p));
            "235 ok\r\n".into()
        } else if upper.starts_with("MAIL FROM:") {
            from = cmd[10..].trim().trim_matches(['<', '>']).to_owned();
            to.clear();
            "250 ok\r\n".into()
        } else if upper.starts_with("RCPT TO:") {
            let rcpt = cmd[8..].trim().trim_matches(['<', '>']).to_owned();
            if rcpt.starts_with(TEMPFAIL) {
                "451 4.3.0 test: try again later\r\n".into()
            } else {
                to.push(rcpt);
                "250 ok\r\n".into()
            }
        } else if upper == "DATA" {
            r.get_mut().write_all(b"354 end with .\r\n").await?;
            let mut data = String::new();
            loop {
                let mut l = String::new();
                if r.read_line(&mut l).await? == 0 {
                    return Ok(None);
                }
                if l == ".\r\n" {
                    break;
                }
                let l = l.strip_prefix('.').unwrap_or(&l);
                data.push_str(l);
            }
            got.lock().unwrap().push(Received {
                from: from.clone(),
                to: std::mem::take(&mut to),
                data,
                tls: is_tls,
                auth: auth.clone(),
            });
            "250 queued\r\n".into()
        } else if upper == "RSET" || upper == "NOOP" {
            "250 ok\r\n".into()
        } else if upper == "QUIT" {
            r.get_mut().write_all(b"221 bye\r\n").await?;
            return Ok(None);
        } else {
            "502 unknown\r\n".into()
        };
        r.get_mut().write_all(reply.as_bytes()).await?;
    }
}

// ------------------------------------------------------------------- helpers

fn smtp_config(dir: &Path, mail: &MailServer) -> ServeConfig {
    let mut c = config(dir);
    c.smtp.host = Some("127.0.0.1".into());
    c.smtp.port = Some(mail.addr.port());
    c.smtp.security = SmtpSecurity::None;
    c.smtp.from = "Killkrill <no-reply@example.test>".into();
    c.smtp.public_url = PUBLIC_URL.into();
    c.smtp.retry_base_ms = 50;
    c.smtp.timeout_secs = 5;
    // Every request of a test comes from 127.0.0.1.
    c.smtp.forgot_per_address = 1000;
    c.auth.address_max_failures = 1000;
    c
}

fn bearer(t: &str) -> String {
    format!("Bearer {t}")
}

async fn call(addr: SocketAddr, method: &str, path: &str, auth: Option<&str>, body: &str) -> Resp {
    let mut h: Vec<(&str, &str)> = vec![("Content-Type", "application/json")];
    if let Some(a) = auth {
        h.push(("Authorization", a));
    }
    raw_http(addr, method, path, &h, body.as_bytes()).await
}

async fn login(addr: SocketAddr, email: &str, pw: &str) -> Resp {
    let b = serde_json::json!({ "email": email, "password": pw }).to_string();
    call(addr, "POST", "/api/v1/auth/login", None, &b).await
}

async fn tokens(addr: SocketAddr, email: &str, pw: &str) -> (String, String) {
    let r = login(addr, email, pw).await;
    assert_eq!(r.status, 200, "{}", r.text());
    let j = r.json();
    (
        j["access_token"].as_str().unwrap().to_owned(),
        j["refresh_token"].as_str().unwrap().to_owned(),
    )
}

async fn admin_token(addr: SocketAddr) -> String {
    let c = support::creds(addr);
    tokens(addr, &c.admin_email, &c.admin_password).await.0
}

/// Creates a viewer; returns the answer's `confirmation_mail`.
async fn add_user(addr: SocketAddr, admin: &str, email: &str) -> String {
    let b = serde_json::json!({ "email": email, "password": PASSWORD, "role": "viewer" });
    let r = call(
        addr,
        "POST",
        "/api/v1/users",
        Some(&bearer(admin)),
        &b.to_string(),
    )
    .await;
    assert_eq!(r.status, 201, "{}", r.text());
    r.json()["confirmation_mail"].as_str().unwrap().to_owned()
}

async fn forgot(addr: SocketAddr, email: &str) -> Resp {
    let b = serde_json::json!({ "email": email }).to_string();
    call(addr, "POST", "/api/v1/auth/password/forgot", None, &b).await
}

async fn reset(addr: SocketAddr, token: &str, pw: &str) -> Resp {
    let b = serde_json::json!({ "token": token, "new_password": pw }).to_string();
    call(addr, "POST", "/api/v1/auth/password/reset", None, &b).await
}

async fn confirm(addr: SocketAddr, token: &str) -> Resp {
    let b = serde_json::json!({ "token": token }).to_string();
    call(addr, "POST", "/api/v1/auth/email/confirm", None, &b).await
}

async fn me(addr: SocketAddr, access: &str) -> serde_json::Value {
    let r = call(addr, "GET", "/api/v1/auth/me", Some(&bearer(access)), "").await;
    assert_eq!(r.status, 200, "{}", r.text());
    r.json()
}

async fn metrics(addr: SocketAddr) -> String {
    support::scrape(addr).await
}

/// Waits until `f(exposition)` holds.
async fn wait_metric(addr: SocketAddr, what: &str, f: impl Fn(&str) -> bool) {
    let end = Instant::now() + Duration::from_secs(15);
    loop {
        let m = metrics(addr).await;
        if f(&m) {
            return;
        }
        assert!(Instant::now() < end, "{what} never held:\n{m}");
        tokio::time::sleep(Duration::from_millis(50)).await;
    }
}

fn assert_bad_token(r: &Resp) {
    assert_eq!(r.status, 400, "{}", r.text());
    assert_eq!(
        r.json()["error"],
        "invalid or expired token",
        "{}",
        r.text()
    );
}

async fn audit(addr: SocketAddr, admin: &str) -> Vec<serde_json::Value> {
    let r = call(
        addr,
        "GET",
        "/api/v1/audit?limit=1000",
        Some(&bearer(admin)),
        "",
    )
    .await;
    assert_eq!(r.status, 200, "{}", r.text());
    r.json()["entries"].as_array().unwrap().clone()
}

// --------------------------------------------------------------------- tests

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn reset_and_confirmation_flows_end_to_end() {
    let mail = MailServer::start(None).await;
    let dir = tempfile::tempdir().unwrap();
    let mut cfg = smtp_config(dir.path(), &mail);
    cfg.auth.max_failed_logins = 3;
    let h = support::start(cfg).await.unwrap();
    let addr = h.http.unwrap();
    let admin = admin_token(addr).await;
    let user = "alice@x.test";

    // A new user gets a confirmation mail; /me says not yet confirmed.
    assert_eq!(add_user(addr, &admin, user).await, "queued");
    let m = mail.wait(user, 1).await;
    assert_eq!(m.from, "no-reply@example.test");
    assert_eq!(
        m.header("Subject").as_deref(),
        Some("Confirm your email address")
    );
    assert!(!m.tls && m.auth.is_none());
    let confirm_token = m.token();
    assert!(
        m.body()
            .contains(&format!("{PUBLIC_URL}/confirm-email?token={confirm_token}")),
        "{}",
        m.body()
    );
    let (access, refresh) = tokens(addr, user, PASSWORD).await;
    assert_eq!(me(addr, &access).await["email_confirmed"], false);

    // Forgot: 202 and the same body as for an unknown address.
    let r = forgot(addr, user).await;
    assert_eq!(r.status, 202, "{}", r.text());
    let known_body = r.json();
    let m = mail.wait(user, 2).await;
    assert_eq!(m.header("Subject").as_deref(), Some("Reset your password"));
    let reset_token = m.token();
    assert_ne!(reset_token, confirm_token);
    assert!(
        m.body()
            .contains(&format!("{PUBLIC_URL}/reset-password?token={reset_token}")),
        "{}",
        m.body()
    );
    let r = forgot(addr, "nobody@x.test").await;
    assert_eq!(r.status, 202);
    assert_eq!(r.json(), known_body);

    // Tokens are bound to their purpose, both ways, and not spent by the
    // wrong use.
    assert_bad_token(&reset(addr, &confirm_token, NEW_PASSWORD).await);
    assert_bad_token(&confirm(addr, &reset_token).await);
    assert_bad_token(&reset(addr, "kke_not-a-token", NEW_PASSWORD).await);
    let forged = format!("kke_{}", "A".repeat(43));
    assert_bad_token(&reset(addr, &forged, NEW_PASSWORD).await);

    // Confirmation works once.
    let r = confirm(addr, &confirm_token).await;
    assert_eq!(r.status, 200, "{}", r.text());
    assert_eq!(r.json()["email"], user);
    assert_eq!(r.json()["email_confirmed"], true);
    assert_bad_token(&confirm(addr, &confirm_token).await);
    assert_eq!(me(addr, &access).await["email_confirmed"], true);
    // Resend once confirmed: 409.
    let r = call(
        addr,
        "POST",
        "/api/v1/auth/email/resend",
        Some(&bearer(&access)),
        "",
    )
    .await;
    assert_eq!(r.status, 409, "{}", r.text());

    // Lock the account out with wrong passwords.
    for _ in 0..3 {
        assert_eq!(login(addr, user, "Wrong-Pass-123").await.status, 401);
    }
    assert_eq!(login(addr, user, PASSWORD).await.status, 429);

    // A weak password is refused and does not use the token up.
    let r = reset(addr, &reset_token, "short").await;
    assert_eq!(r.status, 400, "{}", r.text());
    assert_eq!(r.json()["error"], "invalid request");
    assert!(r.json()["detail"].as_str().unwrap().contains("password"));

    // The reset works once.
    let r = reset(addr, &reset_token, NEW_PASSWORD).await;
    assert_eq!(r.status, 204, "{}", r.text());
    assert_bad_token(&reset(addr, &reset_token, "Another-Pass-99").await);
    // A notice follows.
    let m = mail.wait(user, 3).await;
    assert_eq!(
        m.header("Subject").as_deref(),
        Some("Your password was changed")
    );
    assert!(!m.body().contains("kke_"));

    // Every session ended, the access token too (at once, not at its
    // expiry); the old password is gone, the new one works at once (the
    // lockout is cleared).
    let r = call(addr, "GET", "/api/v1/auth/me", Some(&bearer(&access)), "").await;
    assert_eq!(r.status, 401, "{}", r.text());
    let r = call(
        addr,
        "POST",
        "/api/v1/auth/refresh",
        None,
        &serde_json::json!({ "refresh_token": refresh }).to_string(),
    )
    .await;
    assert_eq!(r.status, 401, "{}", r.text());
    assert_eq!(login(addr, user, PASSWORD).await.status, 401);
    let (access2, _) = tokens(addr, user, NEW_PASSWORD).await;
    assert_eq!(me(addr, &access2).await["subject"], user);

    // A second request makes the first link useless.
    assert_eq!(forgot(addr, user).await.status, 202);
    let first = mail.wait(user, 4).await.token();
    assert_eq!(forgot(addr, user).await.status, 202);
    let second = mail.wait(user, 5).await.token();
    assert_bad_token(&reset(addr, &first, "Third-Pass-3141").await);
    assert_eq!(reset(addr, &second, "Third-Pass-3141").await.status, 204);

    // The unknown address got nothing, and was counted as such.
    tokio::time::sleep(Duration::from_millis(300)).await;
    assert!(mail.to("nobody@x.test").is_empty(), "{:?}", mail.all());
    let m = metrics(addr).await;
    assert!(
        metric_sum(
            &m,
            "killkrill_email_reset_requests_total",
            &[("result", "unknown")]
        ) >= 1.0
    );
    assert!(metric_sum(&m, "killkrill_email_sent_total", &[("kind", "reset")]) >= 3.0);
    assert!(metric_sum(&m, "killkrill_email_sent_total", &[("kind", "confirm")]) >= 1.0);

    // Audited: the reset (ok, and the refused reuse), the confirmation.
    let entries = audit(addr, &admin).await;
    let has = |action: &str, result: &str, target: &str| {
        entries.iter().any(|e| {
            e["action"] == action
                && e["result"] == result
                && (target.is_empty() || e["target"] == target)
        })
    };
    assert!(has("user.password_reset", "ok", user), "{entries:?}");
    assert!(has("user.password_reset", "denied", ""), "{entries:?}");
    assert!(has("user.email_confirm", "ok", user), "{entries:?}");
    assert!(has("auth.password_forgot", "ok", user), "{entries:?}");
    // No token reached the audit log.
    let all = serde_json::to_string(&entries).unwrap();
    assert!(!all.contains(&reset_token) && !all.contains(&confirm_token));

    // Only digests are stored: one confirmation, three reset tokens (none
    // for the unknown address).
    assert_eq!(stored_token_hashes(dir.path()).await, 4);
    h.shutdown().await;
}

/// The rows of `auth_email_tokens` in the SQLite file under `data_dir`
/// (checking that each is a 32-byte digest).
async fn stored_token_hashes(data_dir: &Path) -> i64 {
    let opts = sqlx::sqlite::SqliteConnectOptions::new()
        .filename(data_dir.join("killkrill.db"))
        .read_only(true);
    let mut c = <sqlx::SqliteConnection as sqlx::Connection>::connect_with(&opts)
        .await
        .unwrap();
    let (n, bad): (i64, i64) = sqlx::query_as(
        "SELECT COUNT(*), COALESCE(SUM(length(token_hash) <> 32), 0) FROM auth_email_tokens",
    )
    .fetch_one(&mut c)
    .await
    .unwrap();
    assert_eq!(bad, 0);
    n
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn expired_tokens_are_refused() {
    let mail = MailServer::start(None).await;
    let dir = tempfile::tempdir().unwrap();
    let mut cfg = smtp_config(dir.path(), &mail);
    cfg.smtp.reset_ttl_secs = 1;
    cfg.smtp.confirm_ttl_secs = 1;
    let h = support::start(cfg).await.unwrap();
    let addr = h.http.unwrap();
    let admin = admin_token(addr).await;
    let user = "late@x.test";
    add_user(addr, &admin, user).await;
    let confirm_token = mail.wait(user, 1).await.token();
    assert_eq!(forgot(addr, user).await.status, 202);
    let m = mail.wait(user, 2).await;
    assert!(m.body().contains("1 second(s)"), "{}", m.body());
    let reset_token = m.token();
    tokio::time::sleep(Duration::from_millis(1500)).await;
    assert_bad_token(&reset(addr, &reset_token, NEW_PASSWORD).await);
    assert_bad_token(&confirm(addr, &confirm_token).await);
    // The password did not change.
    assert_eq!(login(addr, user, PASSWORD).await.status, 200);
    h.shutdown().await;
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn rate_limits_answer_429() {
    let mail = MailServer::start(None).await;
    let dir = tempfile::tempdir().unwrap();
    let mut cfg = smtp_config(dir.path(), &mail);
    cfg.smtp.forgot_per_email = 2;
    cfg.smtp.forgot_per_address = 5;
    cfg.smtp.resend_per_user = 1;
    let h = support::start(cfg).await.unwrap();
    let addr = h.http.unwrap();
    let admin = admin_token(addr).await;
    let user = "busy@x.test";
    add_user(addr, &admin, user).await;
    mail.wait(user, 1).await;

    // Per email address (case does not matter), known or not.
    assert_eq!(forgot(addr, user).await.status, 202);
    assert_eq!(forgot(addr, "BUSY@x.test").await.status, 202);
    let r = forgot(addr, user).await;
    assert_eq!(r.status, 429, "{}", r.text());
    let wait: u64 = r.header("retry-after").unwrap().parse().unwrap();
    assert!((1..=3600).contains(&wait), "{wait}");
    assert!(r.json()["error"].as_str().unwrap().contains("too many"));
    // Per client address: 5 in all from 127.0.0.1 (3 so far).
    assert_eq!(forgot(addr, "ghost1@x.test").await.status, 202);
    assert_eq!(forgot(addr, "ghost2@x.test").await.status, 202);
    assert_eq!(forgot(addr, "ghost3@x.test").await.status, 429);
    // One reset mail went out: accounts match their email exactly (as
    // login does), so `BUSY@x.test` only counted against the limit.
    tokio::time::sleep(Duration::from_millis(300)).await;
    assert_eq!(mail.to(user).len(), 2, "{:?}", mail.all());

    // Resend: once per window.
    let access = tokens(addr, user, PASSWORD).await.0;
    let auth_header = bearer(&access);
    let resend = || {
        call(
            addr,
            "POST",
            "/api/v1/auth/email/resend",
            Some(&auth_header),
            "",
        )
    };
    let r = resend().await;
    assert_eq!(r.status, 202, "{}", r.text());
    assert_eq!(r.json()["status"], "queued");
    let fresh = mail.wait(user, 3).await.token();
    assert_eq!(resend().await.status, 429);
    // The resent link works; the first one no longer does.
    let first = mail.to(user)[0].token();
    assert_bad_token(&confirm(addr, &first).await);
    assert_eq!(confirm(addr, &fresh).await.status, 200);
    // An API key is no user: 400.
    let r = call(
        addr,
        "POST",
        "/api/v1/auth/email/resend",
        Some(&bearer(&support::api_key(addr))),
        "",
    )
    .await;
    assert_eq!(r.status, 400, "{}", r.text());
    h.shutdown().await;
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn relay_failures_are_retried_counted_and_never_reach_the_client() {
    let mail = MailServer::start(None).await;
    let dir = tempfile::tempdir().unwrap();
    let mut cfg = smtp_config(dir.path(), &mail);
    cfg.smtp.max_attempts = 3;
    let h = support::start(cfg).await.unwrap();
    let addr = h.http.unwrap();
    let admin = admin_token(addr).await;
    let user = "flaky@x.test";

    // Down for every attempt: the request still answers 202, the failure
    // is counted after the retries.
    mail.set(Mode::Drop);
    let before = metrics(addr).await;
    let failed0 = metric_sum(&before, "killkrill_email_failed_total", &[]);
    let retries0 = metric_sum(&before, "killkrill_email_retries_total", &[]);
    assert_eq!(add_user(addr, &admin, user).await, "queued");
    let r = forgot(addr, user).await;
    assert_eq!(r.status, 202, "{}", r.text());
    wait_metric(addr, "two mails failed", |m| {
        metric_sum(m, "killkrill_email_failed_total", &[]) >= failed0 + 2.0
    })
    .await;
    let m = metrics(addr).await;
    assert!(metric_sum(&m, "killkrill_email_retries_total", &[]) >= retries0 + 4.0);
    assert!(mail.connections.load(Ordering::SeqCst) >= 6);
    assert!(mail.to(user).is_empty());

    // Busy (421) once, then up: the retry delivers it.
    mail.set(Mode::Busy);
    let sent0 = metric_sum(&m, "killkrill_email_sent_total", &[("kind", "reset")]);
    assert_eq!(forgot(addr, user).await.status, 202);
    tokio::time::sleep(Duration::from_millis(20)).await;
    mail.set(Mode::Up);
    let token = mail.wait(user, 1).await.token();
    wait_metric(addr, "the reset mail sent", |m| {
        metric_sum(m, "killkrill_email_sent_total", &[("kind", "reset")]) >= sent0 + 1.0
    })
    .await;
    // Nothing lost from the user's view: the link works.
    assert_eq!(reset(addr, &token, NEW_PASSWORD).await.status, 204);
    assert_eq!(login(addr, user, NEW_PASSWORD).await.status, 200);
    h.shutdown().await;
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn a_mail_waiting_to_retry_does_not_hold_a_send_slot() {
    let mail = MailServer::start(None).await;
    let dir = tempfile::tempdir().unwrap();
    let mut cfg = smtp_config(dir.path(), &mail);
    // One send slot, and a first retry at least 60 s away: far beyond the
    // 15 s `wait` below, so the second mail only arrives in time when the
    // first one waits without the slot.
    cfg.smtp.concurrency = 1;
    cfg.smtp.max_attempts = 3;
    cfg.smtp.retry_base_ms = 60_000;
    let h = support::start(cfg).await.unwrap();
    let addr = h.http.unwrap();
    let admin = admin_token(addr).await;
    let stuck = format!("{TEMPFAIL}@x.test");
    let retries0 = metric_sum(&metrics(addr).await, "killkrill_email_retries_total", &[]);
    assert_eq!(add_user(addr, &admin, &stuck).await, "queued");
    wait_metric(addr, "the first attempt failed and waits to retry", |m| {
        metric_sum(m, "killkrill_email_retries_total", &[]) >= retries0 + 1.0
    })
    .await;
    assert_eq!(add_user(addr, &admin, "free@x.test").await, "queued");
    let m = mail.wait("free@x.test", 1).await;
    assert_eq!(
        m.header("Subject").as_deref(),
        Some("Confirm your email address")
    );
    assert!(mail.to(&stuck).is_empty(), "{:?}", mail.all());
    let m = metrics(addr).await;
    assert_eq!(
        metric_sum(&m, "killkrill_email_retries_total", &[]),
        retries0 + 1.0,
        "the stuck mail is still waiting"
    );
    h.shutdown().await;
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn a_full_outbox_drops_and_counts() {
    let mail = MailServer::start(None).await;
    let dir = tempfile::tempdir().unwrap();
    let mut cfg = smtp_config(dir.path(), &mail);
    cfg.smtp.outbox_capacity = 1;
    cfg.smtp.concurrency = 1;
    cfg.smtp.max_attempts = 2;
    cfg.smtp.retry_base_ms = 2000;
    let h = support::start(cfg).await.unwrap();
    let addr = h.http.unwrap();
    let admin = admin_token(addr).await;
    mail.set(Mode::Drop);
    let dropped0 = metric_sum(
        &metrics(addr).await,
        "killkrill_email_dropped_total",
        &[("reason", "outbox_full")],
    );
    // One in flight (retrying), one queued, the rest dropped; the
    // creations all succeed.
    let mut answers = Vec::new();
    for i in 0..5 {
        answers.push(add_user(addr, &admin, &format!("u{i}@x.test")).await);
    }
    assert!(answers.iter().any(|a| a == "not_queued"), "{answers:?}");
    let m = metrics(addr).await;
    let dropped = metric_sum(
        &m,
        "killkrill_email_dropped_total",
        &[("reason", "outbox_full")],
    ) - dropped0;
    let refused = answers.iter().filter(|a| *a == "not_queued").count();
    assert!(dropped >= refused as f64, "{dropped} {answers:?}");
    h.shutdown().await;
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn starttls_with_auth_and_a_private_ca() {
    let dir = tempfile::tempdir().unwrap();
    let (ca_pem, server) = test_pki();
    let ca_file = dir.path().join("ca.pem");
    std::fs::write(&ca_file, ca_pem).unwrap();
    let mail = MailServer::start(Some(server)).await;
    let mut cfg = smtp_config(&dir.path().join("data"), &mail);
    cfg.smtp.security = SmtpSecurity::Starttls;
    cfg.smtp.ca_file = Some(ca_file);
    cfg.smtp.username = Some("relay-user".into());
    cfg.smtp.password = Some(SMTP_PASSWORD.into());
    let h = support::start(cfg).await.unwrap();
    let addr = h.http.unwrap();
    let admin = admin_token(addr).await;
    add_user(addr, &admin, "tls@x.test").await;
    let m = mail.wait("tls@x.test", 1).await;
    assert!(m.tls, "the message came before STARTTLS");
    assert_eq!(
        m.auth,
        Some(("relay-user".to_owned(), SMTP_PASSWORD.to_owned()))
    );
    assert_eq!(confirm(addr, &m.token()).await.status, 200);
    h.shutdown().await;

    // Without the CA the relay's certificate is refused: nothing is sent.
    let mail2 = MailServer::start(Some(test_pki().1)).await;
    let dir2 = tempfile::tempdir().unwrap();
    let mut cfg = smtp_config(dir2.path(), &mail2);
    cfg.smtp.security = SmtpSecurity::Starttls;
    cfg.smtp.max_attempts = 1;
    let h = support::start(cfg).await.unwrap();
    let addr = h.http.unwrap();
    let failed0 = metric_sum(
        &metrics(addr).await,
        "killkrill_email_failed_total",
        &[("kind", "confirm")],
    );
    let admin = admin_token(addr).await;
    add_user(addr, &admin, "untrusted@x.test").await;
    wait_metric(addr, "the untrusted relay refused", |m| {
        metric_sum(m, "killkrill_email_failed_total", &[("kind", "confirm")]) >= failed0 + 1.0
    })
    .await;
    assert!(mail2.all().is_empty());
    h.shutdown().await;
}

/// A CA (PEM) and a server config for 127.0.0.1 signed by it.
fn test_pki() -> (String, Arc<rustls::ServerConfig>) {
    let mut p = CertificateParams::new(Vec::<String>::new()).unwrap();
    p.is_ca = IsCa::Ca(BasicConstraints::Unconstrained);
    let ca = CertifiedIssuer::self_signed(p, KeyPair::generate().unwrap()).unwrap();
    let sp = CertificateParams::new(vec!["127.0.0.1".to_owned()]).unwrap();
    let key = KeyPair::generate().unwrap();
    let cert = sp.signed_by(&key, &ca).unwrap();
    let cfg = rustls::ServerConfig::builder_with_provider(Arc::new(
        rustls::crypto::ring::default_provider(),
    ))
    .with_safe_default_protocol_versions()
    .unwrap()
    .with_no_client_auth()
    .with_single_cert(
        vec![CertificateDer::from(cert.der().to_vec())],
        PrivateKeyDer::Pkcs8(PrivatePkcs8KeyDer::from(key.serialize_der())),
    )
    .unwrap();
    (ca.pem(), Arc::new(cfg))
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn without_smtp_the_routes_answer_501_and_store_nothing() {
    let dir = tempfile::tempdir().unwrap();
    let h = support::start(config(dir.path())).await.unwrap();
    let addr = h.http.unwrap();
    let admin = admin_token(addr).await;
    assert_eq!(add_user(addr, &admin, "plain@x.test").await, "off");
    let access = tokens(addr, "plain@x.test", PASSWORD).await.0;
    assert_eq!(me(addr, &access).await["email_confirmed"], false);
    let t = format!("kke_{}", "A".repeat(43));
    for r in [
        forgot(addr, "plain@x.test").await,
        reset(addr, &t, NEW_PASSWORD).await,
        confirm(addr, &t).await,
        call(
            addr,
            "POST",
            "/api/v1/auth/email/resend",
            Some(&bearer(&access)),
            "",
        )
        .await,
    ] {
        assert_eq!(r.status, 501, "{}", r.text());
        assert_eq!(r.json()["error"], "email is not configured");
    }
    assert_eq!(stored_token_hashes(dir.path()).await, 0);
    h.shutdown().await;
}

#[test]
fn check_config_covers_smtp() {
    let run = |env: &[(&str, &str)]| {
        let mut c = std::process::Command::new(env!("CARGO_BIN_EXE_killkrill"));
        c.arg("check-config");
        for (k, v) in env {
            c.env(k, v);
        }
        c.output().unwrap()
    };
    let base = [
        ("KILLKRILL_SMTP__HOST", "smtp.example.com"),
        ("KILLKRILL_SMTP__FROM", "Killkrill <no-reply@example.com>"),
        ("KILLKRILL_SMTP__PUBLIC_URL", "https://logs.example.com"),
    ];
    let with = |extra: &[(&'static str, &'static str)]| {
        let mut v = base.to_vec();
        v.extend_from_slice(extra);
        v
    };
    let ok = run(&with(&[
        ("KILLKRILL_SMTP__USERNAME", "mailer"),
        ("KILLKRILL_SMTP__PASSWORD", "0042"),
    ]));
    let out = String::from_utf8_lossy(&ok.stdout);
    assert!(
        ok.status.success(),
        "{}",
        String::from_utf8_lossy(&ok.stderr)
    );
    assert!(out.contains("[smtp]"), "{out}");
    assert!(out.contains("host = \"smtp.example.com\""), "{out}");
    assert!(!out.contains("0042"), "the password was printed: {out}");
    let bad = run(&with(&[("KILLKRILL_SMTP__SECURITY", "none")]));
    assert_eq!(bad.status.code(), Some(2));
    let e = String::from_utf8_lossy(&bad.stderr);
    assert!(
        e.contains("smtp.security (from KILLKRILL_SMTP__SECURITY)") && e.contains("loopback"),
        "{e}"
    );
    let bad = run(&with(&[("KILLKRILL_SMTP__USERNAME", "mailer")]));
    assert_eq!(bad.status.code(), Some(2));
    assert!(String::from_utf8_lossy(&bad.stderr).contains("smtp.password"));
    let bad = run(&[("KILLKRILL_SMTP__HOST", "smtp.example.com")]);
    assert_eq!(bad.status.code(), Some(2));
    assert!(String::from_utf8_lossy(&bad.stderr).contains("smtp.from"));
    let bad = run(&with(&[("KILLKRILL_SMTP__CA_FILE", "/nonexistent/ca.pem")]));
    assert_eq!(bad.status.code(), Some(2));
    assert!(String::from_utf8_lossy(&bad.stderr).contains("smtp.ca_file"));
}
