//! `/api/v1/settings` over real sockets: who may read and change them,
//! validation naming the field, the audit entry, per-tenant retention
//! deleting a tenant's old blocks, and a scrape target added (and removed)
//! through the API without a restart.
#![allow(clippy::unwrap_used, clippy::print_stderr)]

mod support;

use std::net::SocketAddr;
use std::time::{Duration, Instant};

use axum::http::header;
use killkrill_core::event::{Tenant, Timestamp};
use support::{Resp, config, raw_http, stored_in};

const PASSWORD: &str = "Correct-Horse-42";

async fn call(addr: SocketAddr, method: &str, path: &str, auth: Option<&str>, body: &[u8]) -> Resp {
    let mut h: Vec<(&str, &str)> = vec![("Content-Type", "application/json")];
    let b = auth.map(|a| format!("Bearer {a}"));
    if let Some(b) = &b {
        h.push(("Authorization", b.as_str()));
    }
    raw_http(addr, method, path, &h, body).await
}

async fn token(addr: SocketAddr, email: &str, pw: &str) -> String {
    let body = serde_json::json!({ "email": email, "password": pw }).to_string();
    let r = call(addr, "POST", "/api/v1/auth/login", None, body.as_bytes()).await;
    assert_eq!(r.status, 200, "{}", r.text());
    r.json()["access_token"].as_str().unwrap().to_owned()
}

async fn admin(addr: SocketAddr) -> String {
    let c = support::creds(addr);
    token(addr, &c.admin_email, &c.admin_password).await
}

async fn user(addr: SocketAddr, admin: &str, email: &str, role: &str) -> String {
    let b = serde_json::json!({ "email": email, "password": PASSWORD, "role": role });
    let r = call(
        addr,
        "POST",
        "/api/v1/users",
        Some(admin),
        b.to_string().as_bytes(),
    )
    .await;
    assert_eq!(r.status, 201, "{}", r.text());
    token(addr, email, PASSWORD).await
}

async fn key(addr: SocketAddr, admin: &str, scopes: &[&str], tenant: Option<&str>) -> String {
    let mut b = serde_json::json!({ "name": format!("k{}", fastrand::u32(..)), "scopes": scopes });
    if let Some(t) = tenant {
        b["tenant"] = t.into();
    }
    let r = call(
        addr,
        "POST",
        "/api/v1/api-keys",
        Some(admin),
        b.to_string().as_bytes(),
    )
    .await;
    assert_eq!(r.status, 201, "{}", r.text());
    r.json()["key"].as_str().unwrap().to_owned()
}

async fn put(addr: SocketAddr, auth: &str, path: &str, body: &serde_json::Value) -> Resp {
    call(addr, "PUT", path, Some(auth), body.to_string().as_bytes()).await
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn roles_validation_and_audit() {
    let dir = tempfile::tempdir().unwrap();
    let h = support::start(config(dir.path())).await.unwrap();
    let addr = h.http.unwrap();
    let admin = admin(addr).await;
    let maint = user(addr, &admin, "maint@s.test", "maintainer").await;
    let view = user(addr, &admin, "view@s.test", "viewer").await;
    let read = key(addr, &admin, &["read"], None).await;
    let ingest = key(addr, &admin, &["ingest"], None).await;

    // Defaults before anything was written.
    let r = call(addr, "GET", "/api/v1/settings", Some(&view), b"").await;
    assert_eq!(r.status, 200, "{}", r.text());
    let j = r.json();
    assert_eq!(j["tenant"], "default");
    assert!(j["retention"]["logs_days"].is_null());
    assert_eq!(j["scrape_targets"], serde_json::json!([]));
    assert!(j["updated_by"].is_null());

    let good = serde_json::json!({
        "retention": { "logs_days": 7, "metrics_days": 30 },
        "scrape_targets": [{ "job": "node", "url": "http://127.0.0.1:9/metrics", "interval": "15s", "timeout": "5s", "labels": { "env": "test" } }]
    });
    // Only admins change settings.
    for (who, cred, want) in [
        ("maintainer", &maint, 403),
        ("viewer", &view, 403),
        ("read key", &read, 403),
        ("ingest key", &ingest, 403),
    ] {
        let r = put(addr, cred, "/api/v1/settings", &good).await;
        assert_eq!(r.status, want, "{who}: {}", r.text());
    }
    let r = call(addr, "GET", "/api/v1/settings", Some(&ingest), b"").await;
    assert_eq!(r.status, 403, "ingest keys do not read settings");
    assert_eq!(
        call(addr, "GET", "/api/v1/settings", None, b"")
            .await
            .status,
        401
    );

    let r = put(addr, &admin, "/api/v1/settings", &good).await;
    assert_eq!(r.status, 200, "{}", r.text());
    assert_eq!(r.json()["retention"]["logs_days"], 7);
    for cred in [&maint, &view, &read, &admin] {
        let r = call(addr, "GET", "/api/v1/settings", Some(cred), b"").await;
        assert_eq!(r.status, 200, "{}", r.text());
        let j = r.json();
        assert_eq!(j["retention"]["metrics_days"], 30);
        assert_eq!(j["scrape_targets"][0]["job"], "node");
        assert_eq!(j["scrape_targets"][0]["interval"], "15s");
        assert_eq!(j["scrape_targets"][0]["labels"]["env"], "test");
        assert_eq!(j["updated_by"], support::creds(addr).admin_email.as_str());
    }

    // Validation: 400, the field named, nothing changed.
    let bad = |v: serde_json::Value| v;
    for (body, field) in [
        (
            bad(serde_json::json!({ "retention": { "logs_days": 0 } })),
            "retention.logs_days",
        ),
        (
            bad(serde_json::json!({ "retention": { "metrics_days": 40000 } })),
            "retention.metrics_days",
        ),
        (
            bad(serde_json::json!({ "scrape_targets": [{ "job": "a", "url": "ftp://x/" }] })),
            "scrape_targets[0].url",
        ),
        (
            bad(
                serde_json::json!({ "scrape_targets": [{ "job": "a", "url": "http://x/" }, { "job": "", "url": "http://y/" }] }),
            ),
            "scrape_targets[1].job",
        ),
        (
            bad(
                serde_json::json!({ "scrape_targets": [{ "job": "a", "url": "http://x/", "interval": "1s", "timeout": "2s" }] }),
            ),
            "scrape_targets[0].timeout",
        ),
        (
            bad(
                serde_json::json!({ "scrape_targets": [{ "job": "a", "url": "http://x/", "labels": { "job": "b" } }] }),
            ),
            "scrape_targets[0].labels.job",
        ),
        (
            // The cloud metadata address is in the default deny list.
            bad(
                serde_json::json!({ "scrape_targets": [{ "job": "a", "url": "http://169.254.169.254/latest/meta-data" }] }),
            ),
            "scrape_targets[0].url",
        ),
    ] {
        let r = put(addr, &admin, "/api/v1/settings", &body).await;
        assert_eq!(r.status, 400, "{body}: {}", r.text());
        let j = r.json();
        assert_eq!(j["parameter"], field, "{j}");
        assert!(j["detail"].as_str().unwrap().starts_with(field), "{j}");
    }
    // Unknown fields and wrong types: 400 naming them.
    let r = put(
        addr,
        &admin,
        "/api/v1/settings",
        &serde_json::json!({ "retention": { "log_days": 3 } }),
    )
    .await;
    assert_eq!(r.status, 400);
    assert!(
        r.json()["detail"].as_str().unwrap().contains("log_days"),
        "{}",
        r.text()
    );
    let r = put(
        addr,
        &admin,
        "/api/v1/settings",
        &serde_json::json!({ "retention": { "logs_days": "seven" } }),
    )
    .await;
    assert_eq!(r.status, 400);
    let r = call(addr, "GET", "/api/v1/settings", Some(&admin), b"").await;
    assert_eq!(
        r.json()["retention"]["logs_days"],
        7,
        "refused changes changed nothing"
    );

    // A tenant's own admin changes its retention, never its scrape targets
    // (the server would fetch them from inside its network).
    let acme_admin = key(addr, &admin, &["admin", "read"], Some("acme")).await;
    let r = put(
        addr,
        &acme_admin,
        "/api/v1/settings",
        &serde_json::json!({ "scrape_targets": [{ "job": "x", "url": "http://10.0.0.7:9100/metrics" }] }),
    )
    .await;
    assert_eq!(r.status, 403, "{}", r.text());
    assert_eq!(r.json()["parameter"], "scrape_targets", "{}", r.text());
    let r = put(
        addr,
        &acme_admin,
        "/api/v1/settings",
        &serde_json::json!({ "retention": { "logs_days": 3 } }),
    )
    .await;
    assert_eq!(r.status, 200, "{}", r.text());
    assert_eq!(r.json()["tenant"], "acme");

    // Other tenants: only system admins, with ?tenant=.
    let r = put(
        addr,
        &admin,
        "/api/v1/settings?tenant=acme",
        &serde_json::json!({ "retention": { "logs_days": 2 } }),
    )
    .await;
    assert_eq!(r.status, 200, "{}", r.text());
    assert_eq!(r.json()["tenant"], "acme");
    let r = call(
        addr,
        "GET",
        "/api/v1/settings?tenant=acme",
        Some(&view),
        b"",
    )
    .await;
    assert_eq!(r.status, 403, "{}", r.text());
    let r = call(addr, "GET", "/api/v1/settings", Some(&admin), b"").await;
    assert_eq!(
        r.json()["retention"]["logs_days"],
        7,
        "acme's settings are acme's"
    );

    // The audit log: who, what, from where, the result, old and new values.
    let r = call(addr, "GET", "/api/v1/audit?limit=1000", Some(&admin), b"").await;
    let entries = r.json()["entries"].as_array().unwrap().clone();
    let ours: Vec<_> = entries
        .iter()
        .filter(|e| e["action"] == "settings.update")
        .collect();
    let ok = ours
        .iter()
        .find(|e| e["result"] == "ok" && e["target"] == "default")
        .expect("an ok entry");
    assert_eq!(ok["actor"], support::creds(addr).admin_email.as_str());
    assert_eq!(ok["source"], "127.0.0.1");
    assert!(ok["at_ns"].as_i64().unwrap() > 0);
    let d = ok["detail"].as_str().unwrap();
    assert!(
        d.starts_with("from {\"retention\":{\"logs_days\":null"),
        "{d}"
    );
    assert!(
        d.contains("to {\"retention\":{\"logs_days\":7,\"metrics_days\":30}"),
        "{d}"
    );
    let invalid = ours.iter().filter(|e| e["result"] == "invalid").count();
    assert!(invalid >= 8, "{ours:?}");
    assert!(ours.iter().any(|e| {
        e["detail"]
            .as_str()
            .unwrap()
            .starts_with("scrape_targets[0].url")
    }));
    let m = support::scrape(addr).await;
    assert!(
        support::metric_sum(
            &m,
            "killkrill_http_rejected_requests_total",
            &[("endpoint", "settings")]
        ) >= 8.0,
        "{m}"
    );
    h.shutdown().await;
}

/// The operator's `scrape.deny_networks`, not the default list, decides
/// which target addresses `/api/v1/settings` refuses: an added network is
/// refused (400 naming the field), a default network the operator took
/// out is accepted.
#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn targets_are_checked_against_the_configured_deny_list() {
    let dir = tempfile::tempdir().unwrap();
    let mut c = config(dir.path());
    c.scrape.deny_networks = vec!["10.0.0.0/8".into(), "fd00::/8".into()];
    // Nothing is scraped during the test.
    c.scrape.settings_poll_ms = 3_600_000;
    let h = support::start(c).await.unwrap();
    let addr = h.http.unwrap();
    let admin = admin(addr).await;
    let target = |url: &str| serde_json::json!({ "scrape_targets": [{ "job": "j", "url": url }] });
    for (url, net) in [
        ("http://10.1.2.3:9100/metrics", "10.0.0.0/8"),
        ("http://[fd12::7]:9100/metrics", "fd00::/8"),
    ] {
        let r = put(addr, &admin, "/api/v1/settings", &target(url)).await;
        assert_eq!(r.status, 400, "{url}: {}", r.text());
        let j = r.json();
        assert_eq!(j["parameter"], "scrape_targets[0].url", "{j}");
        let d = j["detail"].as_str().unwrap();
        assert!(
            d.starts_with("scrape_targets[0].url") && d.contains(net),
            "{d}"
        );
    }
    // Link-local is denied by default, not by this operator.
    let r = put(
        addr,
        &admin,
        "/api/v1/settings",
        &target("http://169.254.10.10:9100/metrics"),
    )
    .await;
    assert_eq!(r.status, 200, "{}", r.text());
    let r = call(addr, "GET", "/api/v1/settings", Some(&admin), b"").await;
    assert_eq!(
        r.json()["scrape_targets"][0]["url"],
        "http://169.254.10.10:9100/metrics"
    );
    h.shutdown().await;
}

fn rfc3339(t: Timestamp) -> String {
    t.to_rfc3339()
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn a_short_retention_deletes_that_tenants_old_blocks() {
    let dir = tempfile::tempdir().unwrap();
    let mut c = config(dir.path());
    c.maintenance.interval_secs = 1;
    let h = support::start(c).await.unwrap();
    let addr = h.http.unwrap();
    let admin = admin(addr).await;
    let short_key = key(addr, &admin, &["ingest", "read"], Some("short")).await;
    let default_key = key(addr, &admin, &["ingest", "read"], None).await;
    let old = rfc3339(Timestamp::from_nanos(
        Timestamp::now().as_nanos() - 3 * 86_400 * 1_000_000_000,
    ));
    let fresh = rfc3339(Timestamp::now());
    for (k, msg, ts) in [
        (&short_key, "short old", &old),
        (&default_key, "default old", &old),
    ] {
        let body = format!("{{\"ts\":\"{ts}\",\"msg\":\"{msg}\"}}\n");
        let r = call(addr, "POST", "/api/v1/logs", Some(k), body.as_bytes()).await;
        assert_eq!(r.status, 200, "{}", r.text());
    }
    let short = Tenant::new("short").unwrap();
    let start = Instant::now();
    while stored_in(&h.store, &short).await.is_empty()
        || stored_in(&h.store, &Tenant::default()).await.is_empty()
    {
        assert!(
            start.elapsed() < Duration::from_secs(10),
            "records not stored"
        );
        tokio::time::sleep(Duration::from_millis(50)).await;
    }
    // Nothing is deleted without a retention: two passes later both stay.
    tokio::time::sleep(Duration::from_millis(2500)).await;
    assert_eq!(stored_in(&h.store, &short).await.len(), 1);

    let r = put(
        addr,
        &admin,
        "/api/v1/settings?tenant=short",
        &serde_json::json!({ "retention": { "logs_days": 1 } }),
    )
    .await;
    assert_eq!(r.status, 200, "{}", r.text());
    let start = Instant::now();
    while !stored_in(&h.store, &short).await.is_empty() {
        assert!(
            start.elapsed() < Duration::from_secs(15),
            "short's old block was not deleted"
        );
        tokio::time::sleep(Duration::from_millis(100)).await;
    }
    let d = stored_in(&h.store, &Tenant::default()).await;
    assert!(
        d.iter()
            .any(|r| r.message_str().as_deref() == Some("default old")),
        "the default tenant keeps its records"
    );
    // A fresh record in the short tenant stays.
    let body = format!("{{\"ts\":\"{fresh}\",\"msg\":\"short fresh\"}}\n");
    assert_eq!(
        call(
            addr,
            "POST",
            "/api/v1/logs",
            Some(&short_key),
            body.as_bytes()
        )
        .await
        .status,
        200
    );
    tokio::time::sleep(Duration::from_millis(2500)).await;
    assert_eq!(stored_in(&h.store, &short).await.len(), 1);
    let m = support::scrape(addr).await;
    assert!(
        support::metric_value(&m, "killkrill_retention_deleted_blocks_total") >= 1.0,
        "{m}"
    );
    h.shutdown().await;
}

async fn query(addr: SocketAddr, key: &str, q: &str) -> serde_json::Value {
    let path = format!(
        "/api/v1/query?query={}",
        q.replace('{', "%7B")
            .replace('}', "%7D")
            .replace('"', "%22")
            .replace('=', "%3D")
    );
    let r = call(addr, "GET", &path, Some(key), b"").await;
    assert_eq!(r.status, 200, "{}", r.text());
    r.json()
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn a_scrape_target_added_through_the_api_is_scraped_into_its_tenant() {
    let app = axum::Router::new().route(
        "/metrics",
        axum::routing::get(|| async {
            (
                [(header::CONTENT_TYPE, "text/plain; version=0.0.4")],
                "settings_probe 42\n",
            )
        }),
    );
    let l = tokio::net::TcpListener::bind("127.0.0.1:0").await.unwrap();
    let target = l.local_addr().unwrap();
    tokio::spawn(async move { axum::serve(l, app).await.unwrap() });

    let dir = tempfile::tempdir().unwrap();
    let mut c = config(dir.path());
    c.scrape.settings_poll_ms = 200;
    let h = support::start(c).await.unwrap();
    let addr = h.http.unwrap();
    let admin = admin(addr).await;
    let acme = key(addr, &admin, &["read"], Some("acme")).await;
    let default_key = key(addr, &admin, &["read"], None).await;

    let body = serde_json::json!({ "scrape_targets": [{ "job": "from-api", "url": format!("http://{target}/metrics"), "interval": "200ms", "timeout": "150ms" }] });
    let r = put(addr, &admin, "/api/v1/settings?tenant=acme", &body).await;
    assert_eq!(r.status, 200, "{}", r.text());

    let start = Instant::now();
    loop {
        let j = query(addr, &acme, "settings_probe{job=\"from-api\"}").await;
        let res = &j["data"]["result"];
        if let Some(first) = res.as_array().and_then(|a| a.first()) {
            assert_eq!(first["value"][1], "42");
            assert_eq!(first["metric"]["instance"], target.to_string().as_str());
            break;
        }
        assert!(
            start.elapsed() < Duration::from_secs(15),
            "never scraped: {j}"
        );
        tokio::time::sleep(Duration::from_millis(200)).await;
    }
    // Scraped into acme only.
    let j = query(addr, &default_key, "settings_probe").await;
    assert_eq!(j["data"]["result"], serde_json::json!([]), "{j}");
    let m = support::scrape(addr).await;
    assert_eq!(
        support::metric_value(&m, "killkrill_scrape_settings_targets"),
        1.0
    );

    // Removed through the API: the loop stops.
    let r = put(
        addr,
        &admin,
        "/api/v1/settings?tenant=acme",
        &serde_json::json!({}),
    )
    .await;
    assert_eq!(r.status, 200, "{}", r.text());
    let start = Instant::now();
    loop {
        let m = support::scrape(addr).await;
        if support::metric_value(&m, "killkrill_scrape_settings_targets") == 0.0 {
            break;
        }
        assert!(
            start.elapsed() < Duration::from_secs(10),
            "target not stopped"
        );
        tokio::time::sleep(Duration::from_millis(100)).await;
    }
    let m1 = support::metric_sum(
        &support::scrape(addr).await,
        "killkrill_scrapes_total",
        &[("job", "from-api")],
    );
    tokio::time::sleep(Duration::from_millis(800)).await;
    let m2 = support::metric_sum(
        &support::scrape(addr).await,
        "killkrill_scrapes_total",
        &[("job", "from-api")],
    );
    assert!(m1 >= 1.0);
    assert_eq!(m1, m2, "no scrapes after the target was removed");
    h.shutdown().await;
}
