//! TOTP secrets are stored encrypted: the column never holds the base32
//! secret, a clear-text row from before encryption is sealed at start, and
//! TOTP login works throughout.
#![allow(clippy::unwrap_used, clippy::print_stderr)]

mod support;

use killkrill_svc::auth::totp;
use support::{config, raw_http};

async fn login(addr: std::net::SocketAddr, email: &str, pw: &str, code: Option<&str>) -> u16 {
    let mut b = serde_json::json!({ "email": email, "password": pw });
    if let Some(c) = code {
        b["totp"] = c.into();
    }
    raw_http(
        addr,
        "POST",
        "/api/v1/auth/login",
        &[("Content-Type", "application/json")],
        b.to_string().as_bytes(),
    )
    .await
    .status
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn totp_secrets_are_encrypted_at_rest() {
    let dir = tempfile::tempdir().unwrap();
    let h = support::start(config(dir.path())).await.unwrap();
    let addr = h.http.unwrap();
    let c = support::creds(addr);
    let body =
        serde_json::json!({ "email": c.admin_email, "password": c.admin_password }).to_string();
    let r = raw_http(
        addr,
        "POST",
        "/api/v1/auth/login",
        &[("Content-Type", "application/json")],
        body.as_bytes(),
    )
    .await;
    let tok = format!("Bearer {}", r.json()["access_token"].as_str().unwrap());
    let auth = [
        ("Content-Type", "application/json"),
        ("Authorization", tok.as_str()),
    ];
    let r = raw_http(addr, "POST", "/api/v1/auth/totp/enrol", &auth, b"").await;
    assert_eq!(r.status, 200, "{}", r.text());
    let secret = r.json()["secret"].as_str().unwrap().to_owned();
    let now = killkrill_svc::auth::now_nanos() as u64 / 1_000_000_000;
    let code = totp::code_at(&secret, now).unwrap();
    let r = raw_http(
        addr,
        "POST",
        "/api/v1/auth/totp/confirm",
        &auth,
        serde_json::json!({ "code": code }).to_string().as_bytes(),
    )
    .await;
    assert_eq!(r.status, 200, "{}", r.text());

    let rows = h.store.auth().totp_secrets().await.unwrap();
    assert_eq!(rows.len(), 1);
    let (id, stored) = rows[0].clone();
    assert!(stored.starts_with("enc1:"), "{stored}");
    assert!(
        !stored.contains(&secret) && stored != secret,
        "the column holds the clear secret"
    );

    // Without the code: refused (the sealed secret is on).
    assert_eq!(
        login(addr, &c.admin_email, &c.admin_password, None).await,
        401
    );

    // A clear-text row (as written before encryption) is sealed at start.
    assert!(
        h.store
            .auth()
            .replace_totp_secret(id, &stored, &secret)
            .await
            .unwrap()
    );
    h.shutdown().await;
    let h = support::start(config(dir.path())).await.unwrap();
    let addr = h.http.unwrap();
    let (_, again) = h.store.auth().totp_secrets().await.unwrap()[0].clone();
    assert!(
        again.starts_with("enc1:") && !again.contains(&secret),
        "{again}"
    );
    let later = totp::code_at(&secret, now + 30).unwrap();
    assert_eq!(
        login(addr, &c.admin_email, &c.admin_password, Some(&later)).await,
        200
    );
    h.shutdown().await;
}
