//! Authentication and authorisation over real sockets: the router walk
//! (every route of the real router, without credentials and with each role
//! and key scope), forged and expired tokens, refresh-token reuse, brute
//! force lockout, API key scopes, revocation, tenant isolation, the audit
//! log, and the development and release modes.
#![allow(clippy::unwrap_used, clippy::print_stderr)]

mod support;

use std::net::SocketAddr;
use std::time::Duration;

use base64::Engine;
use base64::engine::general_purpose::URL_SAFE_NO_PAD as B64;
use killkrill_core::event::Tenant;
use killkrill_store::auth::{Role, Scope};
use killkrill_svc::auth::{AuthMode, Credential, Permission, Principal};
use killkrill_svc::serve::http::route_table;
use support::{Resp, config, raw_http, stored_in, wait_stored};

const METHODS: [&str; 5] = ["GET", "POST", "PUT", "PATCH", "DELETE"];
const PASSWORD: &str = "Correct-Horse-42";

fn bearer(t: &str) -> String {
    format!("Bearer {t}")
}

async fn call(addr: SocketAddr, method: &str, path: &str, auth: Option<&str>, body: &[u8]) -> Resp {
    let mut h: Vec<(&str, &str)> = vec![("Content-Type", "application/json")];
    if let Some(a) = auth {
        h.push(("Authorization", a));
    }
    raw_http(addr, method, path, &h, body).await
}

async fn login(addr: SocketAddr, email: &str, pw: &str) -> Resp {
    let body = serde_json::json!({ "email": email, "password": pw }).to_string();
    call(addr, "POST", "/api/v1/auth/login", None, body.as_bytes()).await
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

async fn add_user(
    addr: SocketAddr,
    admin: &str,
    email: &str,
    role: &str,
    tenant: Option<&str>,
) -> i64 {
    let mut b = serde_json::json!({ "email": email, "password": PASSWORD, "role": role });
    if let Some(t) = tenant {
        b["tenant"] = t.into();
    }
    let r = call(
        addr,
        "POST",
        "/api/v1/users",
        Some(&bearer(admin)),
        b.to_string().as_bytes(),
    )
    .await;
    assert_eq!(r.status, 201, "{}", r.text());
    r.json()["id"].as_i64().unwrap()
}

async fn add_key(
    addr: SocketAddr,
    admin: &str,
    name: &str,
    scopes: &[&str],
    tenant: Option<&str>,
) -> String {
    let mut b = serde_json::json!({ "name": name, "scopes": scopes });
    if let Some(t) = tenant {
        b["tenant"] = t.into();
    }
    let r = call(
        addr,
        "POST",
        "/api/v1/api-keys",
        Some(&bearer(admin)),
        b.to_string().as_bytes(),
    )
    .await;
    assert_eq!(r.status, 201, "{}", r.text());
    r.json()["key"].as_str().unwrap().to_owned()
}

/// A concrete path for an axum route pattern.
fn concrete(pattern: &str) -> String {
    pattern
        .split('/')
        .map(|seg| {
            if seg.starts_with("{*") {
                "a/b".to_owned()
            } else if seg.starts_with('{') {
                "999999".to_owned()
            } else {
                seg.to_owned()
            }
        })
        .collect::<Vec<_>>()
        .join("/")
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn every_route_needs_the_right_credentials() {
    let dir = tempfile::tempdir().unwrap();
    let h = support::start(config(dir.path())).await.unwrap();
    let addr = h.http.unwrap();
    let admin = admin_token(addr).await;
    add_user(addr, &admin, "maint@x.test", "maintainer", None).await;
    add_user(addr, &admin, "view@x.test", "viewer", None).await;
    let maint = tokens(addr, "maint@x.test", PASSWORD).await.0;
    let view = tokens(addr, "view@x.test", PASSWORD).await.0;
    let ingest = add_key(addr, &admin, "ingest-only", &["ingest"], None).await;
    let read = add_key(addr, &admin, "read-only", &["read"], None).await;
    let t = Tenant::default();
    let user = |role| Principal {
        tenant: t.clone(),
        subject: String::new(),
        credential: Credential::User { id: 0, role },
    };
    let key = |s: Scope| Principal {
        tenant: t.clone(),
        subject: String::new(),
        credential: Credential::ApiKey {
            id: 0,
            scopes: vec![s],
        },
    };
    let callers: Vec<(&str, String, Principal)> = vec![
        ("admin", bearer(&admin), user(Role::Admin)),
        ("maintainer", bearer(&maint), user(Role::Maintainer)),
        ("viewer", bearer(&view), user(Role::Viewer)),
        ("ingest key", bearer(&ingest), key(Scope::Ingest)),
        ("read key", bearer(&read), key(Scope::Read)),
    ];

    let table = route_table();
    let public: Vec<&str> = table
        .iter()
        .filter(|r| r.permission == Permission::Public)
        .map(|r| r.path)
        .collect();
    let mut want_public = vec![
        "/healthz",
        "/readyz",
        "/metrics",
        "/api/v1/auth/login",
        "/api/v1/auth/refresh",
        "/api/v1/auth/oidc/login",
        "/api/v1/auth/oidc/callback",
        // The emailed token is the credential; forgot reveals nothing.
        "/api/v1/auth/email/confirm",
        "/api/v1/auth/password/forgot",
        "/api/v1/auth/password/reset",
    ];
    want_public.sort_unstable();
    let mut got_public = public.clone();
    got_public.sort_unstable();
    assert_eq!(
        got_public, want_public,
        "only health, readiness, metrics, login (password and SSO) and the emailed-token routes are public"
    );
    assert!(table.len() >= 15, "{table:?}");

    // A path may be in two groups (POST /api/v1/logs ingests, GET reads):
    // then a caller with some but not all of its permissions may get 403 on
    // one method and an answer on another.
    let mut paths: Vec<(&str, Vec<Permission>)> = Vec::new();
    for spec in table.iter().filter(|r| r.permission != Permission::Public) {
        match paths.iter_mut().find(|(p, _)| *p == spec.path) {
            Some((_, perms)) => perms.push(spec.permission),
            None => paths.push((spec.path, vec![spec.permission])),
        }
    }
    let mut checked = 0;
    for (pattern, perms) in &paths {
        let path = concrete(pattern);
        let mut exists = false;
        for m in METHODS {
            // No credentials, a wrong key, a garbage token: 401 (or 405
            // for a method the route does not have).
            for auth in [
                None,
                Some("Bearer kk_wrongwrongwrongwrongwrongwrongwrongwrongwro"),
                Some("Bearer not.a.jwt"),
            ] {
                let r = call(addr, m, &path, auth, b"{}").await;
                assert!(
                    r.status == 401 || r.status == 405,
                    "{m} {path} with {auth:?}: {} {}",
                    r.status,
                    r.text()
                );
                if r.status == 401 {
                    exists = true;
                    assert_eq!(r.header("www-authenticate"), Some("Bearer"));
                    assert!(r.json()["error"].is_string());
                }
            }
            for (name, cred, p) in &callers {
                let r = call(addr, m, &path, Some(cred), b"{}").await;
                if r.status == 405 {
                    continue;
                }
                let all = perms.iter().all(|x| p.allows(*x));
                let none = !perms.iter().any(|x| p.allows(*x));
                if all {
                    assert!(
                        r.status != 401 && r.status != 403,
                        "{name} {m} {path} needs {perms:?}: {} {}",
                        r.status,
                        r.text()
                    );
                } else if none {
                    assert_eq!(
                        r.status,
                        403,
                        "{name} {m} {path} needs {perms:?}: {}",
                        r.text()
                    );
                } else {
                    assert_ne!(r.status, 401, "{name} {m} {path}");
                }
                checked += 1;
            }
        }
        assert!(exists, "{path}: no method answered 401");
    }
    assert!(checked > 50, "{checked}");
    // Public routes answer without credentials.
    for p in ["/healthz", "/readyz", "/metrics"] {
        assert_eq!(call(addr, "GET", p, None, b"").await.status, 200, "{p}");
    }
    h.shutdown().await;
}

fn percent(s: &str) -> String {
    s.bytes()
        .map(|b| {
            if b.is_ascii_alphanumeric() {
                (b as char).to_string()
            } else {
                format!("%{b:02X}")
            }
        })
        .collect()
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn one_tenant_cannot_see_or_write_another_tenants_data() {
    let dir = tempfile::tempdir().unwrap();
    let h = support::start(config(dir.path())).await.unwrap();
    let addr = h.http.unwrap();
    let admin = admin_token(addr).await;
    let a_key = support::api_key(addr); // default tenant, ingest+read
    let b_key = add_key(addr, &admin, "b", &["ingest", "read"], Some("tenantb")).await;
    let post = |key: String, msg: &'static str| async move {
        let body = format!("{{\"msg\":\"{msg}\",\"tenant\":\"default\"}}");
        raw_http(
            addr,
            "POST",
            "/api/v1/logs",
            &[("X-API-Key", key.as_str())],
            body.as_bytes(),
        )
        .await
    };
    assert_eq!(post(a_key.clone(), "secret-of-a").await.status, 200);
    assert_eq!(post(b_key.clone(), "secret-of-b").await.status, 200);
    let a = Tenant::default();
    let b = Tenant::new("tenantb").unwrap();
    wait_stored(&h.store, 1).await;
    let deadline = std::time::Instant::now() + Duration::from_secs(10);
    while stored_in(&h.store, &b).await.is_empty() && std::time::Instant::now() < deadline {
        tokio::time::sleep(Duration::from_millis(25)).await;
    }
    let in_a: Vec<_> = stored_in(&h.store, &a)
        .await
        .iter()
        .filter_map(|r| r.message_str().map(|m| m.to_string()))
        .collect();
    let in_b: Vec<_> = stored_in(&h.store, &b)
        .await
        .iter()
        .filter_map(|r| r.message_str().map(|m| m.to_string()))
        .collect();
    assert_eq!(
        in_a,
        vec!["secret-of-a".to_owned()],
        "a body field cannot pick the tenant"
    );
    assert_eq!(in_b, vec!["secret-of-b".to_owned()]);

    // Every read route (whatever this branch has; new ones are covered by
    // the table) with tenant B's read key never shows tenant A's data.
    let now = killkrill_core::event::Timestamp::now().as_nanos() / 1_000_000_000;
    let params = format!(
        "query={}&q={}&start=0&end={}&limit=1000",
        percent("{__name__=~\".+\"}"),
        percent("secret"),
        now + 60
    );
    let mut read_routes = 0;
    for spec in route_table()
        .iter()
        .filter(|r| r.permission == Permission::Read)
    {
        read_routes += 1;
        let path = format!("{}?{params}", concrete(spec.path));
        for m in ["GET", "POST"] {
            let r = raw_http(addr, m, &path, &[("X-API-Key", b_key.as_str())], b"").await;
            assert!(
                !r.text().contains("secret-of-a"),
                "{m} {path}: {}",
                r.text()
            );
        }
    }
    eprintln!("read routes checked for tenant isolation: {read_routes}");
    // Tenant B's admin cannot manage tenant A.
    add_user(addr, &admin, "badmin@b.test", "admin", Some("tenantb")).await;
    let badmin = tokens(addr, "badmin@b.test", PASSWORD).await.0;
    let r = call(
        addr,
        "GET",
        "/api/v1/users?tenant=default",
        Some(&bearer(&badmin)),
        b"",
    )
    .await;
    assert_eq!(r.status, 403, "{}", r.text());
    let r = call(addr, "GET", "/api/v1/users", Some(&bearer(&badmin)), b"").await;
    let emails: Vec<_> = r.json()["users"]
        .as_array()
        .unwrap()
        .iter()
        .map(|u| u["email"].as_str().unwrap().to_owned())
        .collect();
    assert_eq!(emails, vec!["badmin@b.test"]);
    assert_eq!(
        call(addr, "GET", "/api/v1/tenants", Some(&bearer(&badmin)), b"")
            .await
            .status,
        403
    );
    let keys = call(addr, "GET", "/api/v1/api-keys", Some(&bearer(&badmin)), b"")
        .await
        .json();
    assert!(
        keys["api_keys"]
            .as_array()
            .unwrap()
            .iter()
            .all(|k| k["tenant"] == "tenantb"),
        "{keys}"
    );
    h.shutdown().await;
}

fn secret(dir: &std::path::Path) -> Vec<u8> {
    hex::decode(
        std::fs::read_to_string(dir.join("jwt-secret"))
            .unwrap()
            .trim(),
    )
    .unwrap()
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn forged_expired_and_foreign_tokens_are_refused() {
    let dir = tempfile::tempdir().unwrap();
    let h = support::start(config(dir.path())).await.unwrap();
    let addr = h.http.unwrap();
    let admin = admin_token(addr).await;
    let me = call(addr, "GET", "/api/v1/auth/me", Some(&bearer(&admin)), b"").await;
    assert_eq!(me.status, 200, "{}", me.text());
    assert_eq!(me.json()["role"], "admin");
    let key = secret(dir.path());
    let now = jsonwebtoken::get_current_timestamp();
    let sign = |alg: jsonwebtoken::Algorithm, claims: serde_json::Value, k: &[u8]| {
        jsonwebtoken::encode(
            &jsonwebtoken::Header::new(alg),
            &claims,
            &jsonwebtoken::EncodingKey::from_secret(k),
        )
        .unwrap()
    };
    let claims = |iss: &str, aud: &str, exp: u64| serde_json::json!({"sub":"1","iss":iss,"aud":aud,"exp":exp,"iat":now,"tenant":"default","role":"admin","gen":0});
    // A token of a version before session generations (no `gen` claim).
    let mut legacy = claims("killkrill", "killkrill", now + 60);
    legacy.as_object_mut().unwrap().remove("gen");
    use jsonwebtoken::Algorithm::{HS256, HS512};
    // Control: a token we sign right is accepted, so each refusal below is
    // about the one thing changed.
    let good = sign(HS256, claims("killkrill", "killkrill", now + 60), &key);
    assert_eq!(
        call(addr, "GET", "/api/v1/auth/me", Some(&bearer(&good)), b"")
            .await
            .status,
        200
    );
    let parts: Vec<&str> = good.split('.').collect();
    let mut tampered_claims = claims("killkrill", "killkrill", now + 60);
    tampered_claims["sub"] = "2".into();
    let none = format!(
        "{}.{}.",
        B64.encode(r#"{"alg":"none","typ":"JWT"}"#),
        B64.encode(claims("killkrill", "killkrill", now + 60).to_string())
    );
    let cases = [
        (
            "expired",
            sign(HS256, claims("killkrill", "killkrill", now - 3600), &key),
        ),
        (
            "wrong audience",
            sign(HS256, claims("killkrill", "grafana", now + 60), &key),
        ),
        (
            "wrong issuer",
            sign(HS256, claims("evil", "killkrill", now + 60), &key),
        ),
        (
            "HS512",
            sign(HS512, claims("killkrill", "killkrill", now + 60), &key),
        ),
        (
            "wrong key",
            sign(
                HS256,
                claims("killkrill", "killkrill", now + 60),
                b"another key that is long enough!!",
            ),
        ),
        ("alg none", none.clone()),
        ("alg none with signature", format!("{none}{}", parts[2])),
        (
            "tampered payload",
            format!(
                "{}.{}.{}",
                parts[0],
                B64.encode(tampered_claims.to_string()),
                parts[2]
            ),
        ),
        ("truncated", format!("{}.{}", parts[0], parts[1])),
        ("no session generation", sign(HS256, legacy, &key)),
    ];
    for (name, tok) in cases {
        let r = call(addr, "GET", "/api/v1/auth/me", Some(&bearer(&tok)), b"").await;
        assert_eq!(r.status, 401, "{name}: {}", r.text());
        let r = raw_http(
            addr,
            "POST",
            "/api/v1/logs",
            &[("Authorization", bearer(&tok).as_str())],
            b"{\"msg\":\"x\"}",
        )
        .await;
        assert_eq!(r.status, 401, "{name}");
    }
    let m = support::scrape(addr).await;
    assert!(
        support::metric_sum(
            &m,
            "killkrill_auth_rejected_total",
            &[("reason", "bad access token")]
        ) >= 20.0,
        "{m}"
    );
    h.shutdown().await;
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn refresh_rotates_reuse_revokes_and_changes_end_sessions() {
    let dir = tempfile::tempdir().unwrap();
    let h = support::start(config(dir.path())).await.unwrap();
    let addr = h.http.unwrap();
    let admin = admin_token(addr).await;
    let uid = add_user(addr, &admin, "v@x.test", "viewer", None).await;
    let refresh = |t: String| async move {
        let b = serde_json::json!({ "refresh_token": t }).to_string();
        call(addr, "POST", "/api/v1/auth/refresh", None, b.as_bytes()).await
    };
    let (_, r1) = tokens(addr, "v@x.test", PASSWORD).await;
    let a2 = refresh(r1.clone()).await;
    assert_eq!(a2.status, 200, "{}", a2.text());
    let r2 = a2.json()["refresh_token"].as_str().unwrap().to_owned();
    let access2 = a2.json()["access_token"].as_str().unwrap().to_owned();
    assert_eq!(
        call(addr, "GET", "/api/v1/auth/me", Some(&bearer(&access2)), b"")
            .await
            .status,
        200
    );
    // r1 again: reuse. The family is revoked, so r2 is dead too.
    assert_eq!(refresh(r1).await.status, 401);
    assert_eq!(refresh(r2).await.status, 401);
    let audit = call(addr, "GET", "/api/v1/audit", Some(&bearer(&admin)), b"")
        .await
        .json();
    assert!(
        audit["entries"]
            .as_array()
            .unwrap()
            .iter()
            .any(|e| e["result"] == "reuse_detected" && e["actor"] == "v@x.test"),
        "{audit}"
    );

    // A role change ends the sessions (refresh fails) and takes effect on
    // the next request even with an unexpired access token.
    let (access, r) = tokens(addr, "v@x.test", PASSWORD).await;
    let p = call(
        addr,
        "PATCH",
        &format!("/api/v1/users/{uid}"),
        Some(&bearer(&admin)),
        br#"{"role":"maintainer"}"#,
    )
    .await;
    assert_eq!(p.status, 200, "{}", p.text());
    assert_eq!(refresh(r).await.status, 401);
    let me = call(addr, "GET", "/api/v1/auth/me", Some(&bearer(&access)), b"")
        .await
        .json();
    assert_eq!(me["role"], "maintainer");
    // So does a password change (own, with the current password).
    let (other_access, _) = tokens(addr, "v@x.test", PASSWORD).await;
    let (access, r) = tokens(addr, "v@x.test", PASSWORD).await;
    let wrong = call(
        addr,
        "POST",
        "/api/v1/auth/password",
        Some(&bearer(&access)),
        br#"{"current_password":"nope","new_password":"Another-Pass-99"}"#,
    )
    .await;
    assert_eq!(wrong.status, 403);
    let weak = call(
        addr,
        "POST",
        "/api/v1/auth/password",
        Some(&bearer(&access)),
        format!(r#"{{"current_password":"{PASSWORD}","new_password":"short"}}"#).as_bytes(),
    )
    .await;
    assert_eq!(weak.status, 400, "{}", weak.text());
    assert!(
        weak.json()["detail"]
            .as_str()
            .unwrap()
            .contains("at least 12")
    );
    let ok = call(
        addr,
        "POST",
        "/api/v1/auth/password",
        Some(&bearer(&access)),
        format!(r#"{{"current_password":"{PASSWORD}","new_password":"Another-Pass-99"}}"#)
            .as_bytes(),
    )
    .await;
    assert_eq!(ok.status, 204, "{}", ok.text());
    assert_eq!(refresh(r).await.status, 401);
    // The access token the change was made with dies at once, not at its
    // expiry; so does one of another session of the same user.
    for t in [&access, &other_access] {
        let me = call(addr, "GET", "/api/v1/auth/me", Some(&bearer(t)), b"").await;
        assert_eq!(me.status, 401, "{}", me.text());
    }
    assert_eq!(login(addr, "v@x.test", PASSWORD).await.status, 401);
    // The new login, right after the change (within the same second as
    // likely as not), works.
    let (access, r) = tokens(addr, "v@x.test", "Another-Pass-99").await;
    let me = call(addr, "GET", "/api/v1/auth/me", Some(&bearer(&access)), b"").await;
    assert_eq!(me.status, 200, "{}", me.text());
    let m = support::scrape(addr).await;
    assert!(
        support::metric_sum(
            &m,
            "killkrill_auth_rejected_total",
            &[("reason", "ended session")]
        ) >= 2.0,
        "{m}"
    );
    // Logout revokes.
    let lo = call(
        addr,
        "POST",
        "/api/v1/auth/logout",
        Some(&bearer(&access)),
        serde_json::json!({"refresh_token": r})
            .to_string()
            .as_bytes(),
    )
    .await;
    assert_eq!(lo.status, 204, "{}", lo.text());
    assert_eq!(refresh(r).await.status, 401);
    // Deleting the user kills its access token at once.
    let (access, _) = tokens(addr, "v@x.test", "Another-Pass-99").await;
    assert_eq!(
        call(
            addr,
            "DELETE",
            &format!("/api/v1/users/{uid}"),
            Some(&bearer(&admin)),
            b""
        )
        .await
        .status,
        204
    );
    assert_eq!(
        call(addr, "GET", "/api/v1/auth/me", Some(&bearer(&access)), b"")
            .await
            .status,
        401
    );

    // The audit log says who did what from where.
    let audit = call(
        addr,
        "GET",
        "/api/v1/audit?limit=1000",
        Some(&bearer(&admin)),
        b"",
    )
    .await
    .json();
    let entries = audit["entries"].as_array().unwrap();
    for action in [
        "user.create",
        "user.role",
        "user.password",
        "user.delete",
        "auth.logout",
        "auth.login",
        "bootstrap",
    ] {
        let e = entries
            .iter()
            .find(|e| e["action"] == action)
            .unwrap_or_else(|| panic!("no {action} in {audit}"));
        assert!(e["at_ns"].as_i64().unwrap() > 0);
        assert!(!e["actor"].as_str().unwrap().is_empty());
        if action != "bootstrap" && action != "apikey.create" {
            assert_eq!(e["source"], "127.0.0.1", "{e}");
        }
    }
    let create = entries
        .iter()
        .find(|e| e["action"] == "user.create")
        .unwrap();
    assert_eq!(
        (
            create["actor"].as_str(),
            create["target"].as_str(),
            create["result"].as_str()
        ),
        (Some("admin@killkrill.local"), Some("v@x.test"), Some("ok"))
    );
    h.shutdown().await;
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn brute_force_locks_the_account_and_then_the_address() {
    let dir = tempfile::tempdir().unwrap();
    let mut cfg = config(dir.path());
    cfg.auth.max_failed_logins = 3;
    cfg.auth.lockout_secs = 2;
    cfg.auth.address_max_failures = 8;
    let h = support::start(cfg).await.unwrap();
    let addr = h.http.unwrap();
    let admin = admin_token(addr).await;
    add_user(addr, &admin, "target@x.test", "viewer", None).await;
    for _ in 0..3 {
        assert_eq!(
            login(addr, "target@x.test", "Wrong-Pass-123").await.status,
            401
        );
    }
    // Locked: even the right password is refused until the lock ends.
    let r = login(addr, "target@x.test", PASSWORD).await;
    assert_eq!(r.status, 429, "{}", r.text());
    assert!(r.header("retry-after").unwrap().parse::<u64>().unwrap() >= 1);
    tokio::time::sleep(Duration::from_millis(2100)).await;
    assert_eq!(login(addr, "target@x.test", PASSWORD).await.status, 200);
    // A success clears the address's count; unknown emails count against
    // the address: after 8 failures it is refused whatever it sends.
    for i in 0..8 {
        assert_eq!(
            login(addr, &format!("nobody{i}@x.test"), "Wrong-Pass-123")
                .await
                .status,
            401
        );
    }
    let r = login(addr, "target@x.test", PASSWORD).await;
    assert_eq!(r.status, 429, "{}", r.text());
    let m = support::scrape(addr).await;
    assert!(
        support::metric_sum(&m, "killkrill_auth_logins_total", &[("result", "lockout")]) >= 1.0,
        "{m}"
    );
    assert!(
        support::metric_sum(
            &m,
            "killkrill_auth_logins_total",
            &[("result", "address_limited")]
        ) >= 1.0
    );
    h.shutdown().await;
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn api_keys_scopes_revocation_and_expiry() {
    let dir = tempfile::tempdir().unwrap();
    let h = support::start(config(dir.path())).await.unwrap();
    let addr = h.http.unwrap();
    let admin = admin_token(addr).await;
    let ingest = add_key(addr, &admin, "shipper", &["ingest"], None).await;
    let read = add_key(addr, &admin, "grafana", &["read"], None).await;
    let post = |k: String, how: &'static str| async move {
        let (name, value) = match how {
            "x-api-key" => ("X-API-Key", k),
            "basic" => {
                use base64::Engine as _;
                let up = base64::engine::general_purpose::STANDARD.encode(format!("any:{k}"));
                ("Authorization", format!("Basic {up}"))
            }
            _ => ("Authorization", bearer(&k)),
        };
        raw_http(
            addr,
            "POST",
            "/api/v1/logs",
            &[(name, value.as_str())],
            b"{\"msg\":\"k\"}",
        )
        .await
        .status
    };
    assert_eq!(post(ingest.clone(), "x-api-key").await, 200);
    assert_eq!(post(ingest.clone(), "bearer").await, 200);
    assert_eq!(post(ingest.clone(), "basic").await, 200);
    assert_eq!(post(read.clone(), "x-api-key").await, 403);
    assert_eq!(post(read.clone(), "basic").await, 403);
    assert_eq!(post(format!("{ingest}x"), "basic").await, 401);
    // The list shows the prefix, never the key.
    let list = call(addr, "GET", "/api/v1/api-keys", Some(&bearer(&admin)), b"").await;
    assert!(!list.text().contains(&ingest), "{}", list.text());
    let id = list.json()["api_keys"]
        .as_array()
        .unwrap()
        .iter()
        .find(|k| k["name"] == "shipper")
        .unwrap()["id"]
        .as_i64()
        .unwrap();
    assert!(list.text().contains(&ingest[..11]));
    // Maintainers cannot mint admin keys; bad scopes are named.
    add_user(addr, &admin, "m@x.test", "maintainer", None).await;
    let m = tokens(addr, "m@x.test", PASSWORD).await.0;
    let r = call(
        addr,
        "POST",
        "/api/v1/api-keys",
        Some(&bearer(&m)),
        br#"{"name":"x","scopes":["admin"]}"#,
    )
    .await;
    assert_eq!(r.status, 403, "{}", r.text());
    let r = call(
        addr,
        "POST",
        "/api/v1/api-keys",
        Some(&bearer(&m)),
        br#"{"name":"x","scopes":["root"]}"#,
    )
    .await;
    assert_eq!(r.status, 400);
    assert!(r.text().contains("root"));
    // Revoked: refused at once.
    assert_eq!(
        call(
            addr,
            "DELETE",
            &format!("/api/v1/api-keys/{id}"),
            Some(&bearer(&m)),
            b""
        )
        .await
        .status,
        204
    );
    assert_eq!(post(ingest, "x-api-key").await, 401);
    // Expiring.
    let r = call(
        addr,
        "POST",
        "/api/v1/api-keys",
        Some(&bearer(&admin)),
        br#"{"name":"short","scopes":["ingest"],"expires_in_secs":1}"#,
    )
    .await;
    let short = r.json()["key"].as_str().unwrap().to_owned();
    assert_eq!(post(short.clone(), "x-api-key").await, 200);
    tokio::time::sleep(Duration::from_millis(1100)).await;
    assert_eq!(post(short, "x-api-key").await, 401);
    // Oversized and malformed management bodies are refused early.
    let big = vec![b'a'; 100 * 1024];
    assert_eq!(
        call(
            addr,
            "POST",
            "/api/v1/api-keys",
            Some(&bearer(&admin)),
            &big
        )
        .await
        .status,
        413
    );
    let nested = format!("{}{}", "[".repeat(10_000), "]".repeat(10_000));
    let r = call(addr, "POST", "/api/v1/auth/login", None, nested.as_bytes()).await;
    assert_eq!(r.status, 400, "{}", r.text());
    h.shutdown().await;
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn development_and_release_modes() {
    // Disabled (development): anonymous caller of the default tenant.
    let dir = tempfile::tempdir().unwrap();
    let mut cfg = config(dir.path());
    cfg.auth.mode = AuthMode::Disabled;
    let h = killkrill_svc::serve::start(cfg).await.unwrap();
    assert!(h.bootstrap.is_none());
    let addr = h.http.unwrap();
    let r = raw_http(addr, "POST", "/api/v1/logs", &[], b"{\"msg\":\"dev\"}").await;
    assert_eq!(r.status, 200, "{}", r.text());
    assert_eq!(
        call(addr, "GET", "/api/v1/auth/me", None, b"").await.json()["kind"],
        "anonymous"
    );
    assert_eq!(wait_stored(&h.store, 1).await.len(), 1);
    h.shutdown().await;

    // Release mode: no JWT_SECRET stops start-up, naming it; disabled auth
    // is refused.
    let dir = tempfile::tempdir().unwrap();
    let mut cfg = config(dir.path());
    cfg.auth.release_mode = true;
    let e = killkrill_svc::serve::start(cfg.clone())
        .await
        .err()
        .unwrap()
        .to_string();
    assert!(e.contains("JWT_SECRET"), "{e}");
    assert!(!dir.path().join("jwt-secret").exists());
    cfg.auth.mode = AuthMode::Disabled;
    cfg.auth.jwt_secret = Some("x".repeat(40));
    let e = killkrill_svc::serve::start(cfg.clone())
        .await
        .err()
        .unwrap()
        .to_string();
    assert!(e.contains("auth.mode") && e.contains("RELEASE_MODE"), "{e}");
    cfg.auth.mode = AuthMode::Enabled;
    let h = support::start(cfg).await.unwrap();
    assert!(
        !dir.path().join("jwt-secret").exists(),
        "the secret comes from JWT_SECRET"
    );
    assert_eq!(
        raw_http(h.http.unwrap(), "POST", "/api/v1/logs", &[], b"{}")
            .await
            .status,
        401
    );
    h.shutdown().await;
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn totp_enrol_confirm_login_replay_recovery_and_reset() {
    use killkrill_svc::auth::totp;
    let dir = tempfile::tempdir().unwrap();
    let h = support::start(config(dir.path())).await.unwrap();
    let addr = h.http.unwrap();
    let admin = admin_token(addr).await;
    let uid = add_user(addr, &admin, "t@x.test", "viewer", None).await;
    let (access, _) = tokens(addr, "t@x.test", PASSWORD).await;
    let e = call(
        addr,
        "POST",
        "/api/v1/auth/totp/enrol",
        Some(&bearer(&access)),
        b"",
    )
    .await;
    assert_eq!(e.status, 200, "{}", e.text());
    let secret = e.json()["secret"].as_str().unwrap().to_owned();
    assert!(
        e.json()["otpauth_uri"]
            .as_str()
            .unwrap()
            .starts_with("otpauth://totp/Killkrill:t%40x.test?")
    );
    // Not on until confirmed: login without a code still works.
    assert_eq!(login(addr, "t@x.test", PASSWORD).await.status, 200);
    // Start early in a 30 s step, so the steps below do not move under us.
    let into = jsonwebtoken::get_current_timestamp() % 30;
    if into > 10 {
        tokio::time::sleep(Duration::from_secs(31 - into)).await;
    }
    let now = jsonwebtoken::get_current_timestamp();
    let bad = call(
        addr,
        "POST",
        "/api/v1/auth/totp/confirm",
        Some(&bearer(&access)),
        br#"{"code":"000000"}"#,
    )
    .await;
    assert!(
        bad.status == 400 || totp::code_at(&secret, now).unwrap() == "000000",
        "{}",
        bad.text()
    );
    let code = totp::code_at(&secret, now).unwrap();
    let c = call(
        addr,
        "POST",
        "/api/v1/auth/totp/confirm",
        Some(&bearer(&access)),
        format!(r#"{{"code":"{code}"}}"#).as_bytes(),
    )
    .await;
    assert_eq!(c.status, 200, "{}", c.text());
    let recovery: Vec<String> = c.json()["recovery_codes"]
        .as_array()
        .unwrap()
        .iter()
        .map(|v| v.as_str().unwrap().to_owned())
        .collect();
    assert_eq!(recovery.len(), 10);
    let with = |code: String| async move {
        let b = serde_json::json!({"email": "t@x.test", "password": PASSWORD, "totp": code})
            .to_string();
        call(addr, "POST", "/api/v1/auth/login", None, b.as_bytes()).await
    };
    // Now the password alone is not enough.
    let r = login(addr, "t@x.test", PASSWORD).await;
    assert_eq!(r.status, 401);
    assert_eq!(r.json()["error"], "second factor required");
    // The confirming code's step is spent; the next step's code (one step
    // of skew) works once, then is a replay.
    assert_eq!(
        with(code).await.status,
        401,
        "the confirming code cannot be replayed"
    );
    let next = totp::code_at(&secret, now + 30).unwrap();
    assert_eq!(with(next.clone()).await.status, 200);
    assert_eq!(with(next).await.status, 401, "replay");
    // Two steps ahead is outside the window.
    assert_eq!(
        with(totp::code_at(&secret, now + 60).unwrap()).await.status,
        401
    );
    // A recovery code works once.
    assert_eq!(with(recovery[0].clone()).await.status, 200);
    assert_eq!(with(recovery[0].clone()).await.status, 401);
    // Enrolling again while on is refused; an admin reset turns it off.
    assert_eq!(
        call(
            addr,
            "POST",
            "/api/v1/auth/totp/enrol",
            Some(&bearer(&access)),
            b""
        )
        .await
        .status,
        409
    );
    let r = call(
        addr,
        "DELETE",
        &format!("/api/v1/users/{uid}/totp"),
        Some(&bearer(&admin)),
        b"",
    )
    .await;
    assert_eq!(r.status, 204, "{}", r.text());
    // The reset ends the user's sessions, the access token included.
    let me = call(addr, "GET", "/api/v1/auth/me", Some(&bearer(&access)), b"").await;
    assert_eq!(me.status, 401, "{}", me.text());
    assert_eq!(login(addr, "t@x.test", PASSWORD).await.status, 200);
    h.shutdown().await;
}
