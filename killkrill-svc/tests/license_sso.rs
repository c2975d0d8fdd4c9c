//! Licensing against a local license server (the three endpoints, every
//! call recorded) and OpenID Connect single sign-on against a local
//! identity provider (discovery, JWKS, authorize, token with PKCE, RS256 ID
//! tokens signed by a fixed test key under `testdata/oidc`). Real sockets
//! on 127.0.0.1 throughout; auth is on.
#![allow(clippy::unwrap_used, clippy::print_stderr)]

mod support;

use std::collections::HashMap;
use std::net::SocketAddr;
use std::path::Path;
use std::sync::atomic::{AtomicBool, AtomicU32, Ordering};
use std::sync::{Arc, Mutex};
use std::time::{Duration, Instant};

use axum::extract::{Query, State};
use axum::http::{HeaderMap, StatusCode, header};
use axum::response::{IntoResponse, Response};
use axum::routing::{get, post};
use base64::Engine;
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

async fn spawn(app: axum::Router) -> SocketAddr {
    let l = tokio::net::TcpListener::bind("127.0.0.1:0").await.unwrap();
    let addr = l.local_addr().unwrap();
    tokio::spawn(async move { axum::serve(l, app).await });
    addr
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

// ---------------------------------------------------------------- identity provider

const CLIENT_ID: &str = "killkrill-test";
const CLIENT_SECRET: &str = "s3cret:with/odd&chars";
const REDIRECT: &str = "https://killkrill.test/api/v1/auth/oidc/callback";

struct Grant {
    challenge: String,
    nonce: String,
}

#[derive(Default)]
struct Idp {
    issuer: Mutex<String>,
    grants: Mutex<HashMap<String, Grant>>,
    groups: Mutex<Vec<String>>,
    email: Mutex<String>,
    sign_with_other_key: AtomicBool,
    bad_verifiers: AtomicU32,
    tokens_issued: AtomicU32,
}

fn testdata(name: &str) -> Vec<u8> {
    let p = Path::new(env!("CARGO_MANIFEST_DIR"))
        .join("../testdata/oidc")
        .join(name);
    std::fs::read(&p).unwrap_or_else(|e| panic!("{}: {e}", p.display()))
}

fn err(status: StatusCode, e: &str) -> Response {
    (status, axum::Json(json!({ "error": e }))).into_response()
}

async fn idp_authorize(
    State(s): State<Arc<Idp>>,
    Query(q): Query<HashMap<String, String>>,
) -> Response {
    let ok = q.get("response_type").map(String::as_str) == Some("code")
        && q.get("client_id").map(String::as_str) == Some(CLIENT_ID)
        && q.get("redirect_uri").map(String::as_str) == Some(REDIRECT)
        && q.get("code_challenge_method").map(String::as_str) == Some("S256")
        && q.get("scope")
            .is_some_and(|s| s.split(' ').any(|x| x == "openid"));
    if !ok {
        return err(StatusCode::BAD_REQUEST, "invalid_request");
    }
    let code = format!("code-{}", rand::random::<u64>());
    s.grants.lock().unwrap().insert(
        code.clone(),
        Grant {
            challenge: q["code_challenge"].clone(),
            nonce: q["nonce"].clone(),
        },
    );
    let loc = format!(
        "{REDIRECT}?code={code}&state={}",
        form_urlencoded::byte_serialize(q["state"].as_bytes()).collect::<String>()
    );
    (StatusCode::FOUND, [(header::LOCATION, loc)]).into_response()
}

async fn idp_token(State(s): State<Arc<Idp>>, headers: HeaderMap, body: bytes::Bytes) -> Response {
    let f: HashMap<String, String> = form_urlencoded::parse(&body).into_owned().collect();
    // client_secret_basic, each part form-encoded.
    let want = format!(
        "Basic {}",
        base64::engine::general_purpose::STANDARD.encode(format!(
            "{}:{}",
            form_urlencoded::byte_serialize(CLIENT_ID.as_bytes()).collect::<String>(),
            form_urlencoded::byte_serialize(CLIENT_SECRET.as_bytes()).collect::<String>()
        ))
    );
    if headers
        .get(header::AUTHORIZATION)
        .and_then(|v| v.to_str().ok())
        != Some(want.as_str())
    {
        return err(StatusCode::UNAUTHORIZED, "invalid_client");
    }
    if f.get("grant_type").map(String::as_str) != Some("authorization_code")
        || f.get("redirect_uri").map(String::as_str) != Some(REDIRECT)
    {
        return err(StatusCode::BAD_REQUEST, "invalid_request");
    }
    let Some(g) = f
        .get("code")
        .and_then(|c| s.grants.lock().unwrap().remove(c))
    else {
        return err(StatusCode::BAD_REQUEST, "invalid_grant");
    };
    let verifier = f.get("code_verifier").cloned().unwrap_or_default();
    let computed = base64::engine::general_purpose::URL_SAFE_NO_PAD
        .encode(<sha2::Sha256 as sha2::Digest>::digest(verifier.as_bytes()));
    if computed != g.challenge {
        s.bad_verifiers.fetch_add(1, Ordering::SeqCst);
        return err(StatusCode::BAD_REQUEST, "invalid_grant");
    }
    let now = jsonwebtoken::get_current_timestamp();
    let claims = json!({
        "iss": *s.issuer.lock().unwrap(),
        "sub": "idp-user-42",
        "aud": CLIENT_ID,
        "exp": now + 300,
        "iat": now,
        "nonce": g.nonce,
        "email": *s.email.lock().unwrap(),
        "email_verified": true,
        "groups": *s.groups.lock().unwrap(),
    });
    let der = if s.sign_with_other_key.load(Ordering::SeqCst) {
        testdata("other-rsa-private.der")
    } else {
        testdata("idp-rsa-private.der")
    };
    let mut h = jsonwebtoken::Header::new(jsonwebtoken::Algorithm::RS256);
    h.kid = Some("idp-key-1".into());
    let id_token =
        jsonwebtoken::encode(&h, &claims, &jsonwebtoken::EncodingKey::from_rsa_der(&der)).unwrap();
    s.tokens_issued.fetch_add(1, Ordering::SeqCst);
    axum::Json(json!({"access_token": "idp-access", "token_type": "Bearer", "expires_in": 300, "id_token": id_token}))
        .into_response()
}

async fn identity_provider() -> (Arc<Idp>, String) {
    let s = Arc::new(Idp::default());
    *s.email.lock().unwrap() = "sso.user@x.test".into();
    let jwk: Value = serde_json::from_slice(&testdata("idp-rsa-public.jwk.json")).unwrap();
    let app = axum::Router::new()
        .route(
            "/.well-known/openid-configuration",
            get(|State(s): State<Arc<Idp>>| async move {
                let i = s.issuer.lock().unwrap().clone();
                axum::Json(json!({
                    "issuer": i,
                    "authorization_endpoint": format!("{i}/authorize"),
                    "token_endpoint": format!("{i}/token"),
                    "jwks_uri": format!("{i}/jwks"),
                    "response_types_supported": ["code"],
                    "code_challenge_methods_supported": ["S256"],
                    "id_token_signing_alg_values_supported": ["RS256"],
                }))
            }),
        )
        .route(
            "/jwks",
            get(move || {
                let jwk = jwk.clone();
                async move { axum::Json(json!({ "keys": [jwk] })) }
            }),
        )
        .route("/authorize", get(idp_authorize))
        .route("/token", post(idp_token))
        .with_state(s.clone());
    let addr = spawn(app).await;
    let issuer = format!("http://{addr}");
    *s.issuer.lock().unwrap() = issuer.clone();
    (s, issuer)
}

fn oidc_config(issuer: &str) -> killkrill_svc::oidc::OidcConfig {
    killkrill_svc::oidc::OidcConfig {
        enabled: true,
        issuer: issuer.into(),
        client_id: CLIENT_ID.into(),
        client_secret: Some(CLIENT_SECRET.into()),
        redirect_uri: REDIRECT.into(),
        role_mapping: [
            ("kk-viewers".to_owned(), "viewer".to_owned()),
            ("kk-admins".to_owned(), "admin".to_owned()),
        ]
        .into(),
        ..killkrill_svc::oidc::OidcConfig::default()
    }
}

fn query_of(url: &str) -> HashMap<String, String> {
    let q = url.split_once('?').map_or("", |(_, q)| q);
    form_urlencoded::parse(q.as_bytes()).into_owned().collect()
}

/// `GET /api/v1/auth/oidc/login` on Killkrill: the IdP URL's query.
async fn begin(kk: SocketAddr) -> HashMap<String, String> {
    let r = raw_http(kk, "GET", "/api/v1/auth/oidc/login", &[], b"").await;
    assert_eq!(r.status, 302, "{}", r.text());
    assert_eq!(r.header("cache-control"), Some("no-store"));
    let loc = r.header("location").unwrap().to_owned();
    let q = query_of(&loc);
    assert_eq!(q["code_challenge_method"], "S256");
    assert_eq!(q["code_challenge"].len(), 43);
    assert!(q["state"].len() >= 43 && q["nonce"].len() >= 43, "{q:?}");
    assert!(!q.contains_key("code_verifier"));
    // The state is bound to this browser by a cookie.
    let cookie = r.header("set-cookie").unwrap();
    assert!(
        cookie.starts_with(&format!("kk_oidc_state={};", q["state"]))
            && cookie.contains("HttpOnly")
            && cookie.contains("SameSite=Lax")
            && cookie.contains("Secure"),
        "{cookie}"
    );
    q
}

/// The browser at the IdP: the code it sends back.
async fn authorize(idp: SocketAddr, q: &HashMap<String, String>) -> (String, String) {
    let mut ser = form_urlencoded::Serializer::new(String::new());
    for (k, v) in q {
        ser.append_pair(k, v);
    }
    let r = raw_http(
        idp,
        "GET",
        &format!("/authorize?{}", ser.finish()),
        &[],
        b"",
    )
    .await;
    assert_eq!(r.status, 302, "{}", r.text());
    let back = query_of(r.header("location").unwrap());
    (back["code"].clone(), back["state"].clone())
}

/// The callback from the browser that began the login with `state` (its
/// state cookie is `state`).
async fn callback(kk: SocketAddr, code: &str, state: &str) -> Resp {
    callback_with_cookie(kk, code, state, Some(state)).await
}

/// The callback from a browser whose state cookie is `cookie`.
async fn callback_with_cookie(
    kk: SocketAddr,
    code: &str,
    state: &str,
    cookie: Option<&str>,
) -> Resp {
    let enc = |s: &str| form_urlencoded::byte_serialize(s.as_bytes()).collect::<String>();
    let header = cookie.map(|c| format!("other=1; kk_oidc_state={c}"));
    let headers: Vec<(&str, &str)> = header.iter().map(|h| ("cookie", h.as_str())).collect();
    raw_http(
        kk,
        "GET",
        &format!(
            "/api/v1/auth/oidc/callback?code={}&state={}",
            enc(code),
            enc(state)
        ),
        &headers,
        b"",
    )
    .await
}

async fn full_login(kk: SocketAddr, idp: SocketAddr) -> Resp {
    let q = begin(kk).await;
    let (code, state) = authorize(idp, &q).await;
    callback(kk, &code, &state).await
}

fn addr_of(url: &str) -> SocketAddr {
    url.trim_start_matches("http://").parse().unwrap()
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
