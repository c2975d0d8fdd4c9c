//! What processes sharing a database must agree on: the JWT signing secret
//! (generated once and stored in the database when `JWT_SECRET` is unset)
//! and who scrapes (the `scrape` lease), each on real PostgreSQL (and
//! MySQL for the secret), Redis for the receivers' queue.
//!
//! Skipped, saying why, without KILLKRILL_TEST_POSTGRES_URL (and
//! KILLKRILL_TEST_REDIS_URL for the scrape lease).
#![allow(clippy::unwrap_used, clippy::print_stderr)]

mod support;

use std::net::SocketAddr;
use std::sync::Arc;
use std::sync::atomic::{AtomicU64, Ordering};
use std::time::{Duration, Instant};

use killkrill_core::pipeline::{MemoryQueue, MemoryQueueConfig, Queue};
use killkrill_store::Store;
use killkrill_svc::auth::jwt::SecretSource;
use killkrill_svc::config::{ListenAddr, QueueKind};
use killkrill_svc::serve::scrape::ScrapeTarget;
use killkrill_svc::serve::{self, Roles, ServeHandle, StartOptions};
use support::{ScopedDb, config, raw_http};

fn memory_queue() -> Arc<dyn Queue> {
    Arc::new(MemoryQueue::new(MemoryQueueConfig::default()))
}

/// HTTP on a free port, no syslog listeners.
fn http_only(dir: &std::path::Path) -> killkrill_svc::config::ServeConfig {
    let mut c = config(dir);
    c.syslog_udp = ListenAddr::OFF;
    c.syslog_tcp = ListenAddr::OFF;
    c
}

async fn start_role(
    dir: &std::path::Path,
    db: &ScopedDb,
    roles: Roles,
    edit: impl FnOnce(&mut killkrill_svc::config::ServeConfig),
    queue: Option<Arc<dyn Queue>>,
) -> ServeHandle {
    let mut c = http_only(dir);
    edit(&mut c);
    serve::start_with(
        c,
        StartOptions {
            store: Some(db.config.clone()),
            queue,
            roles,
            ..StartOptions::default()
        },
    )
    .await
    .unwrap()
}

fn bearer(t: &str) -> String {
    format!("Bearer {t}")
}

async fn tokens_agree_across_processes(db: ScopedDb) {
    let (d1, d2, d3) = (
        tempfile::tempdir().unwrap(),
        tempfile::tempdir().unwrap(),
        tempfile::tempdir().unwrap(),
    );
    // Two API replicas and a receiver, each with its own data directory
    // and no JWT_SECRET: before, each generated its own secret file.
    let a = start_role(d1.path(), &db, Roles::API, |_| {}, Some(memory_queue())).await;
    let b = start_role(d2.path(), &db, Roles::API, |_| {}, Some(memory_queue())).await;
    let r = start_role(
        d3.path(),
        &db,
        Roles::RECEIVER,
        |_| {},
        Some(memory_queue()),
    )
    .await;
    for h in [&a, &b, &r] {
        assert_eq!(h.auth.secret_source(), SecretSource::Database);
    }
    for d in [&d1, &d2, &d3] {
        assert!(
            !d.path()
                .join(killkrill_svc::auth::jwt::SECRET_FILE)
                .exists(),
            "no secret file on a shared database"
        );
    }
    let (creds, _) = a.bootstrap.clone().expect("the first API bootstraps");
    assert!(b.bootstrap.is_none(), "users existed for the second");

    let body = serde_json::json!({ "email": creds.admin_email, "password": creds.admin_password })
        .to_string();
    let login = raw_http(
        a.http.unwrap(),
        "POST",
        "/api/v1/auth/login",
        &[("Content-Type", "application/json")],
        body.as_bytes(),
    )
    .await;
    assert_eq!(login.status, 200, "{}", login.text());
    let token = login.json()["access_token"].as_str().unwrap().to_owned();
    let auth = bearer(&token);

    // Issued by A, accepted by B...
    for h in [&a, &b] {
        let me = raw_http(
            h.http.unwrap(),
            "GET",
            "/api/v1/auth/me",
            &[("Authorization", auth.as_str())],
            b"",
        )
        .await;
        assert_eq!(me.status, 200, "{}", me.text());
        assert_eq!(me.json()["role"], "admin", "{}", me.text());
    }
    // ...and by the receiver.
    let ingest = raw_http(
        r.http.unwrap(),
        "POST",
        "/api/v1/logs",
        &[
            ("Authorization", auth.as_str()),
            ("Content-Type", "application/json"),
        ],
        br#"{"msg":"signed by another process"}"#,
    )
    .await;
    assert!(
        (200..300).contains(&ingest.status),
        "{}: {}",
        ingest.status,
        ingest.text()
    );
    assert_eq!(r.queue.stats().await.unwrap().events, Some(1));

    // A forged token (another secret) is still refused.
    let forged = killkrill_svc::auth::jwt::Jwt::new(&[7u8; 64], "killkrill", "killkrill")
        .issue(
            1,
            0,
            "default",
            "admin",
            jsonwebtoken::get_current_timestamp(),
            60,
        )
        .unwrap();
    let me = raw_http(
        b.http.unwrap(),
        "GET",
        "/api/v1/auth/me",
        &[("Authorization", bearer(&forged).as_str())],
        b"",
    )
    .await;
    assert_eq!(me.status, 401);

    // A restart (new process, new data dir) keeps the same secret: the
    // token still works.
    b.shutdown().await;
    let d4 = tempfile::tempdir().unwrap();
    let b2 = start_role(d4.path(), &db, Roles::API, |_| {}, Some(memory_queue())).await;
    let me = raw_http(
        b2.http.unwrap(),
        "GET",
        "/api/v1/auth/me",
        &[("Authorization", auth.as_str())],
        b"",
    )
    .await;
    assert_eq!(me.status, 200, "{}", me.text());

    for h in [a, b2, r] {
        h.shutdown().await;
    }
    db.drop_db().await;
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn api_replicas_on_one_postgres_accept_each_others_tokens() {
    let Some(db) = support::postgres_db("kk_jwt").await else {
        return;
    };
    tokens_agree_across_processes(db).await;
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn api_replicas_on_one_mysql_accept_each_others_tokens() {
    let Some(db) = support::mysql_db("kk_jwt").await else {
        return;
    };
    tokens_agree_across_processes(db).await;
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn release_mode_on_a_shared_database_still_needs_jwt_secret() {
    let Some(db) = support::postgres_db("kk_jwtrel").await else {
        return;
    };
    let d = tempfile::tempdir().unwrap();
    let mut c = http_only(d.path());
    c.auth.release_mode = true;
    let e = serve::start_with(
        c,
        StartOptions {
            store: Some(db.config.clone()),
            queue: Some(memory_queue()),
            roles: Roles::API,
            ..StartOptions::default()
        },
    )
    .await
    .err()
    .expect("refused");
    assert!(e.to_string().contains("JWT_SECRET"), "{e}");
    db.drop_db().await;
}

/// A Prometheus exporter that counts the scrapes it answers.
async fn exporter() -> (SocketAddr, Arc<AtomicU64>) {
    let hits = Arc::new(AtomicU64::new(0));
    let h = hits.clone();
    let app = axum::Router::new().route(
        "/metrics",
        axum::routing::get(move || {
            let h = h.clone();
            async move {
                h.fetch_add(1, Ordering::SeqCst);
                (
                    [("content-type", "text/plain; version=0.0.4")],
                    "coord_test_value 1\n",
                )
            }
        }),
    );
    let l = tokio::net::TcpListener::bind("127.0.0.1:0").await.unwrap();
    let addr = l.local_addr().unwrap();
    tokio::spawn(async move { axum::serve(l, app).await.unwrap() });
    (addr, hits)
}

fn holders(rs: &[&ServeHandle]) -> usize {
    rs.iter()
        .filter(|h| h.scrape_lease.as_ref().unwrap().held())
        .count()
}

/// Scrapes counted over `window` while asserting that at most one receiver
/// holds the lease at every look.
async fn hits_over(hits: &AtomicU64, rs: &[&ServeHandle], window: Duration) -> u64 {
    let before = hits.load(Ordering::SeqCst);
    let end = Instant::now() + window;
    while Instant::now() < end {
        assert!(holders(rs) <= 1, "two lease holders at once");
        tokio::time::sleep(Duration::from_millis(50)).await;
    }
    hits.load(Ordering::SeqCst) - before
}

async fn wait_holder(rs: &[&ServeHandle], within: Duration) -> Duration {
    let t0 = Instant::now();
    while holders(rs) == 0 {
        assert!(
            t0.elapsed() < within,
            "no receiver took the lease within {within:?}"
        );
        tokio::time::sleep(Duration::from_millis(20)).await;
    }
    t0.elapsed()
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn two_receivers_scrape_once_and_the_other_takes_over() {
    let Ok(redis) = std::env::var("KILLKRILL_TEST_REDIS_URL") else {
        eprintln!("skipped: the scrape lease test needs KILLKRILL_TEST_REDIS_URL");
        return;
    };
    let Some(db) = support::postgres_db("kk_lease").await else {
        return;
    };
    let (target, hits) = exporter().await;
    let interval = Duration::from_millis(400);
    let ttl = Duration::from_millis(2_000);
    let prefix = format!(
        "kklease{:x}",
        killkrill_core::event::Timestamp::now().as_nanos()
    );
    let edit = |c: &mut killkrill_svc::config::ServeConfig| {
        c.queue.kind = QueueKind::Redis;
        c.queue.redis.url = Some(redis.clone());
        c.queue.redis.prefix = prefix.clone();
        c.scrape.lease_ttl_ms = ttl.as_millis() as u64;
        c.scrape.targets = vec![ScrapeTarget {
            job: "coord".into(),
            url: Some(format!("http://{target}/metrics")),
            urls: Vec::new(),
            interval,
            timeout: Duration::from_millis(300),
            honor_labels: false,
            labels: Default::default(),
            sample_limit: None,
        }];
    };

    // A holder that died without giving the lease up: it lapses in 3 s.
    let ghost = Store::open(db.config.clone()).await.unwrap();
    let now_ms = killkrill_core::event::Timestamp::now().as_nanos() / 1_000_000;
    assert!(
        ghost
            .cluster()
            .try_lease("scrape", "ghost", now_ms, 3_000)
            .await
            .unwrap()
    );
    let lapses = Instant::now() + Duration::from_millis(3_000);

    let (d1, d2) = (tempfile::tempdir().unwrap(), tempfile::tempdir().unwrap());
    let r1 = start_role(d1.path(), &db, Roles::RECEIVER, edit, None).await;
    let r2 = start_role(d2.path(), &db, Roles::RECEIVER, edit, None).await;
    let both = [&r1, &r2];
    assert_ne!(
        r1.scrape_lease.as_ref().unwrap().owner(),
        r2.scrape_lease.as_ref().unwrap().owner()
    );

    // While the dead holder's lease runs, nobody scrapes.
    tokio::time::sleep(Duration::from_millis(1_500)).await;
    assert_eq!(holders(&both), 0);
    assert_eq!(
        hits.load(Ordering::SeqCst),
        0,
        "scraped under another's lease"
    );

    // It lapses; one of them takes over within the lease time.
    let took = wait_holder(&both, Duration::from_secs(6)).await;
    let late = Instant::now().saturating_duration_since(lapses);
    assert!(
        late <= ttl,
        "taken {late:?} after the lapse ({took:?} waited)"
    );

    // One scrape per interval, not two.
    tokio::time::sleep(interval).await;
    let window = Duration::from_millis(4_000);
    let n = hits_over(&hits, &both, window).await;
    let per_interval = window.as_millis() as u64 / interval.as_millis() as u64;
    eprintln!("one holder: {n} scrapes in {window:?} (one scraper: {per_interval})");
    assert!(
        n >= per_interval - 3 && n <= per_interval + 1,
        "{n} scrapes in {window:?} at {interval:?}"
    );

    // The table names the holder.
    let (holder, other) = if r1.scrape_lease.as_ref().unwrap().held() {
        (r1, r2)
    } else {
        (r2, r1)
    };
    let (owner, _) = ghost.cluster().lease("scrape").await.unwrap().unwrap();
    assert_eq!(owner, holder.scrape_lease.as_ref().unwrap().owner());

    // The holder stops (gives the lease up): the other takes over within
    // the lease time and scrapes alone.
    holder.shutdown().await;
    let took = wait_holder(&[&other], ttl).await;
    eprintln!("taken over {took:?} after the holder stopped");
    tokio::time::sleep(interval).await;
    let n = hits_over(&hits, &[&other], window).await;
    assert!(
        n >= per_interval - 3 && n <= per_interval + 1,
        "{n} scrapes in {window:?} after the takeover"
    );
    other.shutdown().await;
    ghost.close().await;
    db.drop_db().await;
}

/// The same with real processes: two `killkrill api` on one PostgreSQL,
/// each with a data directory of its own and no `JWT_SECRET`.
#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn two_api_processes_accept_each_others_tokens() {
    let Ok(redis) = std::env::var("KILLKRILL_TEST_REDIS_URL") else {
        eprintln!("skipped: needs KILLKRILL_TEST_REDIS_URL (the api role's queue)");
        return;
    };
    let Some(db) = support::postgres_db("kk_jwtproc").await else {
        return;
    };
    let url = db.config.url.clone().unwrap();
    let prefix = format!(
        "kkjwt{:x}",
        killkrill_core::event::Timestamp::now().as_nanos()
    );
    let env = [
        ("DB_TYPE", "postgres"),
        ("DATABASE_URL", url.as_str()),
        ("REDIS_URL", redis.as_str()),
        ("KILLKRILL_QUEUE__REDIS__PREFIX", prefix.as_str()),
        ("JWT_SECRET", ""),
    ];
    let (d1, d2) = (tempfile::tempdir().unwrap(), tempfile::tempdir().unwrap());
    let (mut a, first_a) = support::spawn_killkrill("api", d1.path(), &env);
    let (mut b, first_b) = support::spawn_killkrill("api", d2.path(), &env);
    let addr_a = support::addr_after(&first_a, "http").unwrap();
    let addr_b = support::addr_after(&first_b, "http").unwrap();
    let creds = killkrill_svc::auth::bootstrap::BootstrapCredentials::read(d1.path()).unwrap();
    let body = serde_json::json!({ "email": creds.admin_email, "password": creds.admin_password })
        .to_string();
    let login = raw_http(
        addr_a,
        "POST",
        "/api/v1/auth/login",
        &[("Content-Type", "application/json")],
        body.as_bytes(),
    )
    .await;
    assert_eq!(login.status, 200, "{}", login.text());
    let auth = bearer(login.json()["access_token"].as_str().unwrap());
    let me = raw_http(
        addr_b,
        "GET",
        "/api/v1/auth/me",
        &[("Authorization", auth.as_str())],
        b"",
    )
    .await;
    assert_eq!(me.status, 200, "{}", me.text());
    assert_eq!(me.json()["role"], "admin");
    for d in [&d1, &d2] {
        assert!(
            !d.path()
                .join(killkrill_svc::auth::jwt::SECRET_FILE)
                .exists()
        );
    }
    for c in [&mut a, &mut b] {
        let _ = c.kill();
        let _ = c.wait();
    }
    db.drop_db().await;
}
