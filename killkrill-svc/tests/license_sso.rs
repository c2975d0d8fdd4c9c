//! Licensing against a local license server (the three endpoints, every
//! call recorded) and OpenID Connect single sign-on against a local
//! identity provider (`support/idp.rs`), including a login begun on one
//! server and finished on another sharing its database. Real sockets on
//! 127.0.0.1 throughout; auth is on.
#![allow(clippy::unwrap_used, clippy::print_stderr)]

#[path = "support/idp.rs"]
mod idp;
mod support;

use std::net::SocketAddr;
use std::path::Path;
use std::sync::atomic::Ordering;
use std::sync::{Arc, Mutex};
use std::time::{Duration, Instant};

use axum::extract::State;
use axum::http::StatusCode;
use axum::routing::post;
use idp::{
    addr_of, authorize, begin, callback, callback_with_cookie, full_login, identity_provider,
    oidc_config, spawn,
};
use killkrill_svc::config::ServeConfig;
use killkrill_svc::license::{CACHE_FILE, FEATURE_SSO_OIDC};
use killkrill_svc::serve::ServeHandle;
use serde_json::{Value, json};
use support::{Resp, config, raw_http};

const KEY: &str = "PENG-AB12-CD34-EF56-GH78-ABCD";

// ---------------------------------------------------------------- license server

#[derive(Default)]
struct LicenseServer {
    valid: bool,
    features: Vec<&'static str>,
    calls: Mutex<Vec<(String, Value)>>,
}

impl LicenseServer {
    fn calls(&self, path: &str) -> Vec<Value> {
        self.calls
            .lock()
            .unwrap()
            .iter()
            .filter(|(p, _)| p == path)
            .map(|(_, v)| v.clone())
            .collect()
    }

    fn total(&self) -> usize {
        self.calls.lock().unwrap().len()
    }
}

async fn record(s: &LicenseServer, path: &str, body: &[u8]) -> Value {
    let v: Value = serde_json::from_slice(body).unwrap_or(Value::Null);
    s.calls.lock().unwrap().push((path.to_owned(), v.clone()));
    v
}

async fn license_server(valid: bool, features: &[&'static str]) -> (Arc<LicenseServer>, String) {
    let s = Arc::new(LicenseServer {
        valid,
        features: features.to_vec(),
        ..LicenseServer::default()
    });
    let app = axum::Router::new()
        .route(
            "/api/v2/validate",
            post(
                |State(s): State<Arc<LicenseServer>>, b: bytes::Bytes| async move {
                    let v = record(&s, "validate", &b).await;
                    if s.valid && v["license_key"] == KEY {
                        (
                            StatusCode::OK,
                            axum::Json(json!({"valid": true, "customer": "Penguin Test Ltd", "expires_at": "2099-01-01T00:00:00Z"})),
                        )
                    } else {
                        (
                            StatusCode::OK,
                            axum::Json(json!({"valid": false, "message": "unknown license key"})),
                        )
                    }
                },
            ),
        )
        .route(
            "/api/v2/features",
            post(
                |State(s): State<Arc<LicenseServer>>, b: bytes::Bytes| async move {
                    record(&s, "features", &b).await;
                    axum::Json(json!({ "features": s.features }))
                },
            ),
        )
        .route(
            "/api/v2/keepalive",
            post(
                |State(s): State<Arc<LicenseServer>>, b: bytes::Bytes| async move {
                    record(&s, "keepalive", &b).await;
                    axum::Json(json!({"ok": true}))
                },
            ),
        )
        .with_state(s.clone());
    let addr = spawn(app).await;
    (s, format!("http://{addr}"))
}

fn closed_port() -> String {
    let l = std::net::TcpListener::bind("127.0.0.1:0").unwrap();
    let a = l.local_addr().unwrap();
    drop(l);
    format!("http://{a}")
}

fn licensed(dir: &Path, url: &str) -> ServeConfig {
    let mut c = config(dir);
    c.license.release_mode = true;
    c.license.key = Some(KEY.into());
    c.license.server_url = Some(url.into());
    c.license.keepalive_secs = 1;
    c
}

async fn admin_token(addr: SocketAddr) -> String {
    let c = support::creds(addr);
    let body = json!({"email": c.admin_email, "password": c.admin_password}).to_string();
    let r = raw_http(
        addr,
        "POST",
        "/api/v1/auth/login",
        &[("Content-Type", "application/json")],
        body.as_bytes(),
    )
    .await;
    assert_eq!(r.status, 200, "{}", r.text());
    r.json()["access_token"].as_str().unwrap().to_owned()
}

async fn get_as(addr: SocketAddr, path: &str, token: &str) -> Resp {
    let b = format!("Bearer {token}");
    raw_http(addr, "GET", path, &[("Authorization", b.as_str())], b"").await
}

async fn license_view(addr: SocketAddr) -> Value {
    let t = admin_token(addr).await;
    let r = get_as(addr, "/api/v1/license", &t).await;
    assert_eq!(r.status, 200, "{}", r.text());
    r.json()
}

/// Ingests one log line with the bootstrap key and reads it back through
/// the query API.
async fn ingest_and_query(h: &ServeHandle, msg: &str) {
    let addr = h.http.unwrap();
    let body = json!({ "msg": msg }).to_string();
    let r = support::http(addr, "POST", "/api/v1/logs", &[], body.as_bytes()).await;
    assert_eq!(r.status, 200, "ingest: {}", r.text());
    let deadline = Instant::now() + Duration::from_secs(10);
    loop {
        let r = support::http(
            addr,
            "GET",
            &format!("/api/v1/logs?query={msg}&limit=10"),
            &[],
            b"",
        )
        .await;
        assert_eq!(r.status, 200, "query: {}", r.text());
        if r.text().contains(msg) {
            return;
        }
        assert!(Instant::now() < deadline, "{msg} never came back");
        tokio::time::sleep(Duration::from_millis(50)).await;
    }
}

async fn wait_for(what: &str, mut f: impl FnMut() -> bool) {
    let deadline = Instant::now() + Duration::from_secs(15);
    while !f() {
        assert!(Instant::now() < deadline, "timed out waiting for {what}");
        tokio::time::sleep(Duration::from_millis(50)).await;
    }
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn valid_license_turns_features_on_and_keepalive_reports_usage() {
    let (srv, url) = license_server(true, &[FEATURE_SSO_OIDC, "other"]).await;
    let dir = tempfile::tempdir().unwrap();
    let h = support::start(licensed(dir.path(), &url)).await.unwrap();
    let addr = h.http.unwrap();
    assert!(h.license.allows(FEATURE_SSO_OIDC), "{:?}", h.license.view());
    let v = license_view(addr).await;
    assert_eq!(v["status"], "valid", "{v}");
    assert_eq!(v["customer"], "Penguin Test Ltd");
    assert_eq!(v["features"], json!(["other", FEATURE_SSO_OIDC]));
    assert_eq!(v["key"], "PENG-****-****-****-****-ABCD");
    assert_eq!(v["source"], "server");
    assert!(!v.to_string().contains(KEY), "the key is never shown whole");

    let validate = srv.calls("validate");
    assert_eq!(validate.len(), 1);
    assert_eq!(validate[0]["license_key"], KEY);
    assert_eq!(validate[0]["product"], "killkrill");
    assert!(validate[0]["version"].is_string());
    let machine = validate[0]["machine_id"].as_str().unwrap().to_owned();
    assert_eq!(machine.len(), 32);
    assert_eq!(srv.calls("features").len(), 1);

    ingest_and_query(&h, "licensedline1").await;
    ingest_and_query(&h, "licensedline2").await;
    wait_for("a keepalive counting the two records", || {
        srv.calls("keepalive")
            .iter()
            .any(|k| k["usage"]["records_ingested"].as_u64().unwrap_or(0) >= 2)
    })
    .await;
    let k = srv.calls("keepalive").last().cloned().unwrap();
    assert_eq!(k["license_key"], KEY);
    assert_eq!(k["machine_id"], machine.as_str());
    assert_eq!(k["usage"]["users"], 1, "the bootstrap admin: {k}");
    assert!(k["usage"]["tenants"].as_u64().unwrap() >= 1, "{k}");
    assert!(k["usage"]["samples"].is_u64(), "{k}");
    let v = license_view(addr).await;
    assert!(v["last_keepalive"].is_i64(), "{v}");

    // The answer is cached, owner-only, bound to the key by its hash.
    let cache = std::fs::read_to_string(dir.path().join(CACHE_FILE)).unwrap();
    assert!(cache.contains(FEATURE_SSO_OIDC) && !cache.contains(KEY));
    #[cfg(unix)]
    {
        use std::os::unix::fs::PermissionsExt;
        let m = std::fs::metadata(dir.path().join(CACHE_FILE)).unwrap();
        assert_eq!(m.permissions().mode() & 0o777, 0o600);
    }
    // Only admins see the license.
    let r = support::http(addr, "GET", "/api/v1/license", &[], b"").await;
    assert_eq!(r.status, 403, "the ingest+read key: {}", r.text());
    h.shutdown().await;
}

async fn sso_is_refused_for_the_license(addr: SocketAddr) {
    for path in [
        "/api/v1/auth/oidc/login",
        "/api/v1/auth/oidc/callback?code=x&state=y",
    ] {
        let r = raw_http(addr, "GET", path, &[], b"").await;
        assert_eq!(r.status, 403, "{path}: {}", r.text());
        let j = r.json();
        assert_eq!(j["error"], "license lacks feature", "{j}");
        assert!(
            j["detail"].as_str().unwrap().contains(FEATURE_SSO_OIDC),
            "{j}"
        );
    }
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn invalid_license_turns_sso_off_but_not_ingestion_or_queries() {
    let (srv, url) = license_server(false, &[FEATURE_SSO_OIDC]).await;
    let dir = tempfile::tempdir().unwrap();
    let mut c = licensed(dir.path(), &url);
    c.oidc = oidc_config("http://127.0.0.1:9/unused");
    let h = support::start(c).await.unwrap();
    let addr = h.http.unwrap();
    let v = license_view(addr).await;
    assert_eq!(v["status"], "invalid", "{v}");
    assert!(
        v["message"]
            .as_str()
            .unwrap()
            .contains("unknown license key"),
        "{v}"
    );
    assert_eq!(v["features"], json!([]));
    assert!(!h.license.allows(FEATURE_SSO_OIDC));
    assert_eq!(srv.calls("features").len(), 0, "no features for a bad key");
    sso_is_refused_for_the_license(addr).await;
    ingest_and_query(&h, "invalidlicenseline").await;
    // No keepalives for an invalid license; it is re-checked instead.
    wait_for("a re-check", || srv.calls("validate").len() >= 2).await;
    assert_eq!(srv.calls("keepalive").len(), 0);
    assert!(!dir.path().join(CACHE_FILE).exists());
    h.shutdown().await;
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn malformed_key_makes_no_call_and_says_why() {
    let (srv, url) = license_server(true, &[FEATURE_SSO_OIDC]).await;
    let dir = tempfile::tempdir().unwrap();
    let mut c = licensed(dir.path(), &url);
    c.license.key = Some("PENG-AB12-CD34".into());
    let h = support::start(c).await.unwrap();
    let v = license_view(h.http.unwrap()).await;
    assert_eq!(v["status"], "malformed", "{v}");
    assert!(
        v["message"]
            .as_str()
            .unwrap()
            .contains("expected PENG-XXXX-XXXX-XXXX-XXXX-XXXX"),
        "{v}"
    );
    ingest_and_query(&h, "malformedkeyline").await;
    tokio::time::sleep(Duration::from_millis(1500)).await;
    assert_eq!(srv.total(), 0);
    h.shutdown().await;
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn unreachable_server_keeps_ingesting_and_uses_the_cached_answer() {
    // No cache: features off, everything else works.
    let dir = tempfile::tempdir().unwrap();
    let h = support::start(licensed(dir.path(), &closed_port()))
        .await
        .unwrap();
    let addr = h.http.unwrap();
    let v = license_view(addr).await;
    assert_eq!(v["status"], "unreachable", "{v}");
    assert!(
        v["last_error"].as_str().unwrap().contains("validate"),
        "{v}"
    );
    assert!(!h.license.allows(FEATURE_SSO_OIDC));
    ingest_and_query(&h, "unreachableline").await;
    h.shutdown().await;

    // A good answer, cached; then a restart while the server is down.
    let dir = tempfile::tempdir().unwrap();
    let (srv, url) = license_server(true, &[FEATURE_SSO_OIDC]).await;
    let h = support::start(licensed(dir.path(), &url)).await.unwrap();
    assert!(h.license.allows(FEATURE_SSO_OIDC));
    h.shutdown().await;
    let calls = srv.total();
    let h = support::start(licensed(dir.path(), &closed_port()))
        .await
        .unwrap();
    let addr = h.http.unwrap();
    let v = license_view(addr).await;
    assert_eq!(v["status"], "grace", "{v}");
    assert_eq!(v["source"], "cache");
    assert_eq!(v["customer"], "Penguin Test Ltd");
    assert!(v["grace_until"].as_i64().unwrap() > v["validated_at"].as_i64().unwrap());
    assert!(
        h.license.allows(FEATURE_SSO_OIDC),
        "cached features stay on"
    );
    ingest_and_query(&h, "graceline").await;
    assert_eq!(srv.total(), calls, "the old server was not called");
    h.shutdown().await;

    // Another key does not inherit the cache.
    let mut c = licensed(dir.path(), &closed_port());
    c.license.key = Some("PENG-ZZZZ-CD34-EF56-GH78-ABCD".into());
    let h = support::start(c).await.unwrap();
    assert_eq!(license_view(h.http.unwrap()).await["status"], "unreachable");
    h.shutdown().await;
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn a_license_without_sso_refuses_the_sso_routes() {
    let (_srv, url) = license_server(true, &["something_else"]).await;
    let dir = tempfile::tempdir().unwrap();
    let mut c = licensed(dir.path(), &url);
    c.oidc = oidc_config("http://127.0.0.1:9/unused");
    let h = support::start(c).await.unwrap();
    let addr = h.http.unwrap();
    assert_eq!(license_view(addr).await["status"], "valid");
    sso_is_refused_for_the_license(addr).await;
    h.shutdown().await;
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn development_mode_calls_nothing_and_allows_everything() {
    let (srv, url) = license_server(true, &[]).await;
    let dir = tempfile::tempdir().unwrap();
    let mut c = licensed(dir.path(), &url);
    c.license.release_mode = false;
    let h = support::start(c).await.unwrap();
    let addr = h.http.unwrap();
    assert!(h.license.allows(FEATURE_SSO_OIDC));
    assert!(h.license.allows("anything"));
    let v = license_view(addr).await;
    assert_eq!(v["status"], "development", "{v}");
    // Not licensed-off: SSO is simply not configured here.
    let r = raw_http(addr, "GET", "/api/v1/auth/oidc/login", &[], b"").await;
    assert_eq!(r.status, 501, "{}", r.text());
    assert_eq!(r.json()["error"], "single sign-on is not configured");
    ingest_and_query(&h, "devline").await;
    tokio::time::sleep(Duration::from_millis(2500)).await;
    assert_eq!(srv.total(), 0, "development mode makes no license call");
    assert!(!dir.path().join(CACHE_FILE).exists());
    h.shutdown().await;
}

async fn audit(kk: SocketAddr) -> Vec<Value> {
    let t = admin_token(kk).await;
    let r = get_as(kk, "/api/v1/audit?limit=1000", &t).await;
    assert_eq!(r.status, 200, "{}", r.text());
    let j = r.json();
    let list = j
        .get("entries")
        .or_else(|| j.get("data"))
        .cloned()
        .unwrap_or(j);
    list.as_array()
        .unwrap()
        .iter()
        .filter(|e| e["action"] == "auth.sso_login")
        .cloned()
        .collect()
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn oidc_login_gives_tokens_with_the_mapped_role() {
    let (idp, issuer) = identity_provider().await;
    let (_lic, url) = license_server(true, &[FEATURE_SSO_OIDC]).await;
    let dir = tempfile::tempdir().unwrap();
    let mut c = licensed(dir.path(), &url);
    c.oidc = oidc_config(&issuer);
    let h = support::start(c).await.unwrap();
    let kk = h.http.unwrap();
    let idp_addr = addr_of(&issuer);
    ingest_and_query(&h, "visibletosso").await;

    *idp.groups.lock().unwrap() = vec!["unrelated".into(), "kk-viewers".into()];
    let r = full_login(kk, idp_addr).await;
    assert_eq!(r.status, 200, "{}", r.text());
    assert_eq!(r.header("cache-control"), Some("no-store"));
    let j = r.json();
    let access = j["access_token"].as_str().unwrap().to_owned();
    assert!(j["refresh_token"].as_str().unwrap().starts_with("kkr_"));
    let me = get_as(kk, "/api/v1/auth/me", &access).await.json();
    assert_eq!(me["subject"], "sso.user@x.test");
    assert_eq!(me["role"], "viewer");
    // A read route answers; an admin route does not.
    let r = get_as(kk, "/api/v1/logs?query=visibletosso&limit=5", &access).await;
    assert_eq!(r.status, 200, "{}", r.text());
    assert!(r.text().contains("visibletosso"));
    assert_eq!(get_as(kk, "/api/v1/users", &access).await.status, 403);
    // The refresh token works like any other.
    let b = json!({"refresh_token": j["refresh_token"]}).to_string();
    let r = raw_http(
        kk,
        "POST",
        "/api/v1/auth/refresh",
        &[("Content-Type", "application/json")],
        b.as_bytes(),
    )
    .await;
    assert_eq!(r.status, 200, "{}", r.text());
    // No password login for an SSO user.
    let b = json!({"email": "sso.user@x.test", "password": "sso:oidc:whatever"}).to_string();
    let r = raw_http(
        kk,
        "POST",
        "/api/v1/auth/login",
        &[("Content-Type", "application/json")],
        b.as_bytes(),
    )
    .await;
    assert_eq!(r.status, 401, "{}", r.text());

    // Group change at the IdP: the role follows at the next login.
    *idp.groups.lock().unwrap() = vec!["kk-admins".into(), "kk-viewers".into()];
    let r = full_login(kk, idp_addr).await;
    assert_eq!(r.status, 200, "{}", r.text());
    let admin = r.json()["access_token"].as_str().unwrap().to_owned();
    assert_eq!(get_as(kk, "/api/v1/users", &admin).await.status, 200);
    assert_eq!(
        get_as(kk, "/api/v1/auth/me", &admin).await.json()["role"],
        "admin"
    );
    // Access tokens carry no authority: the role is read from the user row.
    assert_eq!(
        get_as(kk, "/api/v1/auth/me", &access).await.json()["role"],
        "admin"
    );

    let a = audit(kk).await;
    let ok: Vec<_> = a.iter().filter(|e| e["result"] == "ok").collect();
    assert_eq!(ok.len(), 2, "{a:?}");
    assert_eq!(ok[0]["actor"], "sso.user@x.test");
    assert!(
        ok.iter()
            .any(|e| e["detail"].as_str().unwrap().contains("role=admin")),
        "{a:?}"
    );
    assert_eq!(idp.tokens_issued.load(Ordering::SeqCst), 2);
    h.shutdown().await;
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn oidc_refuses_bad_state_bad_verifier_foreign_keys_and_unmapped_groups() {
    let (idp, issuer) = identity_provider().await;
    let dir = tempfile::tempdir().unwrap();
    let mut c = config(dir.path()); // development: licensed by default
    c.oidc = oidc_config(&issuer);
    let h = support::start(c).await.unwrap();
    let kk = h.http.unwrap();
    let idp_addr = addr_of(&issuer);
    *idp.groups.lock().unwrap() = vec!["kk-viewers".into()];

    // Wrong state; and a state used twice.
    let q = begin(kk).await;
    let (code, state) = authorize(idp_addr, &q).await;
    let r = callback_with_cookie(kk, &code, "not-the-state", Some(&state)).await;
    assert_eq!(r.status, 400, "{}", r.text());
    assert_eq!(r.json()["error"], "invalid login state");
    // Login CSRF: the right code and state from a browser that did not
    // begin this login (no state cookie, or another login's).
    let r = callback_with_cookie(kk, &code, &state, None).await;
    assert_eq!(r.status, 400, "without the cookie: {}", r.text());
    let other = begin(kk).await;
    let r = callback_with_cookie(kk, &code, &state, Some(&other["state"])).await;
    assert_eq!(r.status, 400, "another login's cookie: {}", r.text());
    let r = callback(kk, &code, &state).await;
    assert_eq!(r.status, 200, "the real state still works: {}", r.text());
    let r = callback(kk, &code, &state).await;
    assert_eq!(r.status, 400, "single use: {}", r.text());

    // A code of one login brought to the callback of another (code
    // injection): the verifier does not match, and the IdP refuses it.
    let a = begin(kk).await;
    let b = begin(kk).await;
    let (code_a, _) = authorize(idp_addr, &a).await;
    let r = callback(kk, &code_a, &b["state"]).await;
    assert_eq!(r.status, 502, "{}", r.text());
    assert!(
        r.json()["detail"]
            .as_str()
            .unwrap()
            .contains("invalid_grant")
    );
    assert_eq!(idp.bad_verifiers.load(Ordering::SeqCst), 1);

    // An ID token signed by another key (same kid).
    idp.sign_with_other_key.store(true, Ordering::SeqCst);
    let r = full_login(kk, idp_addr).await;
    assert_eq!(r.status, 401, "{}", r.text());
    assert_eq!(r.json()["error"], "invalid ID token");
    idp.sign_with_other_key.store(false, Ordering::SeqCst);

    // No mapped group.
    *idp.groups.lock().unwrap() = vec!["finance".into()];
    let r = full_login(kk, idp_addr).await;
    assert_eq!(r.status, 403, "{}", r.text());
    assert!(r.json()["detail"].as_str().unwrap().contains("groups"));

    // A password account of the same email is not taken over.
    *idp.groups.lock().unwrap() = vec!["kk-admins".into()];
    *idp.email.lock().unwrap() = "local@x.test".into();
    let t = admin_token(kk).await;
    let body = json!({"email": "local@x.test", "password": "Correct-Horse-42", "role": "viewer"})
        .to_string();
    let bearer = format!("Bearer {t}");
    let r = raw_http(
        kk,
        "POST",
        "/api/v1/users",
        &[
            ("Authorization", bearer.as_str()),
            ("Content-Type", "application/json"),
        ],
        body.as_bytes(),
    )
    .await;
    assert_eq!(r.status, 201, "{}", r.text());
    let r = full_login(kk, idp_addr).await;
    assert_eq!(r.status, 409, "{}", r.text());

    let a = audit(kk).await;
    let count = |res: &str| a.iter().filter(|e| e["result"] == res).count();
    assert_eq!(count("ok"), 1, "{a:?}");
    assert_eq!(count("denied"), 1, "{a:?}");
    assert!(count("failed") >= 4, "{a:?}");
    h.shutdown().await;
}

// ------------------------------------------------ login state shared by processes

const SHARED_JWT_SECRET: &str = "a-jwt-secret-shared-by-both-test-servers-0123";

fn shared_config(dir: &Path, issuer: &str) -> ServeConfig {
    let mut c = config(dir);
    c.oidc = oidc_config(issuer);
    c.auth.jwt_secret = Some(SHARED_JWT_SECRET.into());
    c
}

/// Two servers on one database (`a_store` / `b_store`): a login begun on one finishes on the
/// other, and its state cannot be replayed on either.
async fn login_across_servers(
    backend: &str,
    a_store: Option<killkrill_store::StoreConfig>,
    b_store: killkrill_store::StoreConfig,
) {
    use killkrill_svc::serve::StartOptions;
    let (idp, issuer) = identity_provider().await;
    let idp_addr = addr_of(&issuer);
    *idp.groups.lock().unwrap() = vec!["kk-viewers".into()];
    let (da, db) = (tempfile::tempdir().unwrap(), tempfile::tempdir().unwrap());
    let opts = |store| StartOptions {
        store,
        ..StartOptions::default()
    };
    let a = support::start_with(shared_config(da.path(), &issuer), opts(a_store))
        .await
        .unwrap();
    // The second server finds the first's users: no bootstrap credentials.
    let b =
        killkrill_svc::serve::start_with(shared_config(db.path(), &issuer), opts(Some(b_store)))
            .await
            .unwrap();
    let (ka, kb) = (a.http.unwrap(), b.http.unwrap());

    for (first, second, name) in [(ka, kb, "a→b"), (kb, ka, "b→a")] {
        let q = begin(first).await;
        let (code, state) = authorize(idp_addr, &q).await;
        let r = callback(second, &code, &state).await;
        assert_eq!(r.status, 200, "{backend} {name}: {}", r.text());
        let access = r.json()["access_token"].as_str().unwrap().to_owned();
        for k in [ka, kb] {
            let me = get_as(k, "/api/v1/auth/me", &access).await;
            assert_eq!(me.status, 200, "{backend} {name}: {}", me.text());
            assert_eq!(me.json()["role"], "viewer");
        }
        // Replayed on either server (same state, same cookie): refused.
        for k in [first, second] {
            let r = callback(k, &code, &state).await;
            assert_eq!(r.status, 400, "{backend} {name} replay: {}", r.text());
            assert_eq!(r.json()["error"], "invalid login state");
        }
    }
    assert_eq!(
        a.store.auth().oidc_logins_stored().await.unwrap(),
        0,
        "{backend}: finished logins leave no row"
    );
    // Logins begun at the same instant on both servers all succeed (on
    // MySQL the purge's gap lock inside the insert's transaction made
    // concurrent inserts deadlock; review).
    let racing: Vec<_> = (0..12)
        .map(|i| tokio::spawn(begin(if i % 2 == 0 { ka } else { kb })))
        .collect();
    for t in racing {
        t.await.expect("a concurrent login failed");
    }
    assert_eq!(
        a.store.auth().oidc_logins_stored().await.unwrap(),
        12,
        "{backend}: every concurrent login stored"
    );
    assert_eq!(idp.tokens_issued.load(Ordering::SeqCst), 2, "{backend}");
    b.shutdown().await;
    a.shutdown().await;
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn oidc_login_begun_on_one_server_finishes_on_another() {
    // SQLite: both servers open one database file.
    let dir = tempfile::tempdir().unwrap();
    let sqlite = killkrill_store::StoreConfig::sqlite(dir.path());
    login_across_servers("sqlite", Some(sqlite.clone()), sqlite).await;
    if let Some(db) = support::postgres_db("kk_sso").await {
        login_across_servers("postgres", Some(db.config.clone()), db.config.clone()).await;
        db.drop_db().await;
    }
    if let Some(db) = support::mysql_db("kk_sso").await {
        login_across_servers("mysql", Some(db.config.clone()), db.config.clone()).await;
        db.drop_db().await;
    }
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn oidc_logins_in_progress_are_bounded_and_expire() {
    let (idp, issuer) = identity_provider().await;
    let idp_addr = addr_of(&issuer);
    *idp.groups.lock().unwrap() = vec!["kk-viewers".into()];
    let dir = tempfile::tempdir().unwrap();
    let mut c = shared_config(dir.path(), &issuer);
    c.oidc.max_pending = 2;
    c.oidc.state_ttl_secs = 2;
    let h = support::start(c).await.unwrap();
    let kk = h.http.unwrap();
    let started = Instant::now();
    let first = begin(kk).await;
    let (code, state) = authorize(idp_addr, &first).await;
    begin(kk).await;
    // Full: refused with 503, counted, nothing stored.
    let r = raw_http(kk, "GET", "/api/v1/auth/oidc/login", &[], b"").await;
    assert!(
        started.elapsed() < Duration::from_secs(2),
        "too slow to test the cap"
    );
    assert_eq!(r.status, 503, "{}", r.text());
    assert_eq!(r.json()["error"], "too many logins in progress");
    assert_eq!(r.header("retry-after"), Some("5"));
    assert_eq!(h.store.auth().oidc_logins_stored().await.unwrap(), 2);
    let m = support::scrape(kk).await;
    assert!(
        support::metric_sum(&m, killkrill_svc::oidc::PENDING_REFUSED, &[]) >= 1.0,
        "{m}"
    );
    // Expired: the state is refused, and the next login purges the old
    // rows and is let in again.
    tokio::time::sleep(Duration::from_millis(2200)).await;
    let r = callback(kk, &code, &state).await;
    assert_eq!(r.status, 400, "expired: {}", r.text());
    let fresh = begin(kk).await;
    assert_eq!(
        h.store.auth().oidc_logins_stored().await.unwrap(),
        1,
        "the expired rows are purged"
    );
    let (code, state) = authorize(idp_addr, &fresh).await;
    let r = callback(kk, &code, &state).await;
    assert_eq!(r.status, 200, "{}", r.text());
    h.shutdown().await;
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn one_address_cannot_fill_the_pending_logins() {
    let (idp, issuer) = identity_provider().await;
    let idp_addr = addr_of(&issuer);
    *idp.groups.lock().unwrap() = vec!["kk-viewers".into()];
    let dir = tempfile::tempdir().unwrap();
    let mut c = shared_config(dir.path(), &issuer);
    c.oidc.max_pending = 100;
    c.oidc.max_pending_per_address = 3;
    let h = support::start(c).await.unwrap();
    let kk = h.http.unwrap();
    let first = begin(kk).await;
    begin(kk).await;
    begin(kk).await;
    // The fourth from the same address: 429 with Retry-After, counted, and
    // nothing stored for it (the cap of the database is not touched).
    let r = raw_http(kk, "GET", "/api/v1/auth/oidc/login", &[], b"").await;
    assert_eq!(r.status, 429, "{}", r.text());
    assert_eq!(r.json()["error"], "too many logins from this address");
    let retry: u64 = r.header("retry-after").unwrap().parse().unwrap();
    assert!((1..=600).contains(&retry), "retry-after {retry}");
    assert_eq!(h.store.auth().oidc_logins_stored().await.unwrap(), 3);
    let m = support::scrape(kk).await;
    assert_eq!(
        support::metric_sum(&m, killkrill_svc::oidc::ADDRESS_REFUSED, &[]),
        1.0,
        "{m}"
    );
    // Logins already begun still finish.
    let (code, state) = authorize(idp_addr, &first).await;
    let r = callback(kk, &code, &state).await;
    assert_eq!(r.status, 200, "{}", r.text());
    h.shutdown().await;
}
