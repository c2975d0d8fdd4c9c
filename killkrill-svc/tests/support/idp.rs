//! The local identity provider of the SSO tests (discovery, JWKS,
//! authorize, token with PKCE, RS256 ID tokens signed by a fixed test key
//! under `testdata/oidc`) and the browser's side of a login against
//! Killkrill. Included by `license_sso.rs` with `#[path]` (not through
//! `support`, so the other test binaries do not compile it).
#![allow(dead_code, clippy::unwrap_used)]

use std::collections::HashMap;
use std::net::SocketAddr;
use std::path::Path;
use std::sync::atomic::{AtomicBool, AtomicU32, Ordering};
use std::sync::{Arc, Mutex};

use axum::extract::{Query, State};
use axum::http::{HeaderMap, StatusCode, header};
use axum::response::{IntoResponse, Response};
use axum::routing::{get, post};
use base64::Engine;
use serde_json::{Value, json};

use crate::support::{Resp, raw_http};

/// Serves `app` on an ephemeral port of 127.0.0.1.
pub async fn spawn(app: axum::Router) -> SocketAddr {
    let l = tokio::net::TcpListener::bind("127.0.0.1:0").await.unwrap();
    let addr = l.local_addr().unwrap();
    tokio::spawn(async move { axum::serve(l, app).await });
    addr
}

pub const CLIENT_ID: &str = "killkrill-test";
pub const CLIENT_SECRET: &str = "s3cret:with/odd&chars";
pub const REDIRECT: &str = "https://killkrill.test/api/v1/auth/oidc/callback";

pub struct Grant {
    pub challenge: String,
    pub nonce: String,
}

#[derive(Default)]
pub struct Idp {
    pub issuer: Mutex<String>,
    pub grants: Mutex<HashMap<String, Grant>>,
    pub groups: Mutex<Vec<String>>,
    pub email: Mutex<String>,
    pub sign_with_other_key: AtomicBool,
    pub bad_verifiers: AtomicU32,
    pub tokens_issued: AtomicU32,
}

pub fn testdata(name: &str) -> Vec<u8> {
    let p = Path::new(env!("CARGO_MANIFEST_DIR"))
        .join("../testdata/oidc")
        .join(name);
    std::fs::read(&p).unwrap_or_else(|e| panic!("{}: {e}", p.display()))
}

pub fn err(status: StatusCode, e: &str) -> Response {
    (status, axum::Json(json!({ "error": e }))).into_response()
}

pub async fn idp_authorize(
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

pub async fn idp_token(
    State(s): State<Arc<Idp>>,
    headers: HeaderMap,
    body: bytes::Bytes,
) -> Response {
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

pub async fn identity_provider() -> (Arc<Idp>, String) {
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

pub fn oidc_config(issuer: &str) -> killkrill_svc::oidc::OidcConfig {
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

pub fn query_of(url: &str) -> HashMap<String, String> {
    let q = url.split_once('?').map_or("", |(_, q)| q);
    form_urlencoded::parse(q.as_bytes()).into_owned().collect()
}

/// `GET /api/v1/auth/oidc/login` on Killkrill: the IdP URL's query.
pub async fn begin(kk: SocketAddr) -> HashMap<String, String> {
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
pub async fn authorize(idp: SocketAddr, q: &HashMap<String, String>) -> (String, String) {
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
pub async fn callback(kk: SocketAddr, code: &str, state: &str) -> Resp {
    callback_with_cookie(kk, code, state, Some(state)).await
}

/// The callback from a browser whose state cookie is `cookie`.
pub async fn callback_with_cookie(
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

pub async fn full_login(kk: SocketAddr, idp: SocketAddr) -> Resp {
    let q = begin(kk).await;
    let (code, state) = authorize(idp, &q).await;
    callback(kk, &code, &state).await
}

pub fn addr_of(url: &str) -> SocketAddr {
    url.trim_start_matches("http://").parse().unwrap()
}
