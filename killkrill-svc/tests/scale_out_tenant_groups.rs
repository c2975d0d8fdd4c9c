//! Tenant groups as real processes: `[queue.tenant_groups]` puts tenant
//! `acme` in group `big` (one Redis stream) and every other tenant in
//! `default` (another stream); one `killkrill receiver` routes each batch
//! to its tenant's stream, and two `killkrill worker`s each take only the
//! groups named by `--queue-groups`, writing to PostgreSQL.
//!
//! The test shows, with counts: while only the `big` worker runs, acme's
//! records are all stored and the other tenants' batches wait untouched in
//! the `default` stream (nothing read, nothing pending); once the `default`
//! worker starts they are stored too; under a second load with both
//! running, each worker acknowledges exactly its groups' events, and every
//! record is stored exactly once.
//!
//! Skipped, saying why, without KILLKRILL_TEST_REDIS_URL and
//! KILLKRILL_TEST_POSTGRES_URL.
#![allow(clippy::unwrap_used, clippy::print_stderr)]

mod support;

use std::collections::BTreeSet;
use std::net::SocketAddr;
use std::path::Path;
use std::process::{Child, Command};
use std::time::{Duration, Instant};

use killkrill_core::event::{Tenant, Timestamp};
use killkrill_core::pipeline::{Queue, self_metrics};
use killkrill_store::Store;
use killkrill_store::queue::{RedisQueueOptions, RedisStreamsQueue};
use support::{addr_after, raw_http};

/// Records per tenant per load phase, in requests of `PER_REQUEST`.
const PHASE1: usize = 600;
const PHASE2: usize = 400;
const PER_REQUEST: usize = 50;

/// A child killed when dropped unless stopped with SIGTERM first.
struct Proc {
    child: Option<Child>,
    http: SocketAddr,
}

impl Proc {
    fn sigterm(&mut self) -> std::process::ExitStatus {
        let mut c = self.child.take().unwrap();
        Command::new("kill")
            .args(["-TERM", &c.id().to_string()])
            .status()
            .unwrap();
        c.wait().unwrap()
    }
}

impl Drop for Proc {
    fn drop(&mut self) {
        if let Some(mut c) = self.child.take() {
            let _ = c.kill();
            let _ = c.wait();
        }
    }
}

/// `killkrill <role> --config <file> [extra...]` on ephemeral ports, as
/// `support::spawn_killkrill` starts it, plus the extra flags.
fn start(role: &str, data: &Path, config: &Path, env: &[(&str, &str)], extra: &[&str]) -> Proc {
    use std::io::BufRead;
    let mut c = Command::new(env!("CARGO_BIN_EXE_killkrill"));
    c.args([role, "--data-dir"])
        .arg(data)
        .arg("--config")
        .arg(config)
        .args([
            "--http",
            "127.0.0.1:0",
            "--syslog-udp",
            "",
            "--syslog-tcp",
            "",
            "--syslog-tls",
            "",
        ])
        .args(extra);
    c.env_remove("DB_TYPE")
        .env_remove("DATABASE_URL")
        .env("RUST_LOG", "warn")
        .stdout(std::process::Stdio::piped())
        .stderr(std::process::Stdio::inherit());
    for (k, v) in env {
        c.env(k, v);
    }
    let mut child = c.spawn().unwrap();
    let mut out = std::io::BufReader::new(child.stdout.take().unwrap());
    let mut first = String::new();
    while out.read_line(&mut first).unwrap() > 0
        && (!first.starts_with(&format!("killkrill {role}: ")) || first.contains("first start:"))
    {
        first.clear();
    }
    assert!(
        first.starts_with(&format!("killkrill {role}: ")),
        "{role}: {first:?}"
    );
    // Keep reading its stdout so the process never blocks on a full pipe.
    std::thread::spawn(move || {
        let mut sink = String::new();
        while out.read_line(&mut sink).unwrap_or(0) > 0 {
            sink.clear();
        }
    });
    Proc {
        http: addr_after(&first, "http").unwrap_or_else(|| panic!("{first:?}")),
        child: Some(child),
    }
}

fn unique(prefix: &str) -> String {
    let n = Timestamp::now().as_nanos() as u64 ^ (u64::from(std::process::id()) << 40);
    format!("{prefix}_{n:x}")
}

/// An ingest key of `tenant`, made by the admin over the API.
async fn ingest_key(api: SocketAddr, bearer: &str, tenant: &str) -> String {
    let body = serde_json::json!({"name": format!("{tenant}-ingest"), "scopes": ["ingest"], "tenant": tenant});
    let r = raw_http(
        api,
        "POST",
        "/api/v1/api-keys",
        &[
            ("Content-Type", "application/json"),
            ("Authorization", bearer),
        ],
        body.to_string().as_bytes(),
    )
    .await;
    assert_eq!(r.status, 201, "{}", r.text());
    r.json()["key"].as_str().unwrap().to_owned()
}

/// Sends records `from..to` of `tenant` (messages `<tenant>-<i>`) to the
/// receiver, `PER_REQUEST` per NDJSON request; every one must be accepted.
async fn send(receiver: SocketAddr, key: &str, tenant: &str, from: usize, to: usize) {
    let mut i = from;
    while i < to {
        let end = (i + PER_REQUEST).min(to);
        let body: String = (i..end)
            .map(|n| format!("{{\"msg\":\"{tenant}-{n}\",\"host\":\"h\"}}\n"))
            .collect();
        let r = raw_http(
            receiver,
            "POST",
            "/api/v1/logs",
            &[("Content-Type", "application/x-ndjson"), ("X-API-Key", key)],
            body.as_bytes(),
        )
        .await;
        assert_eq!(r.status, 200, "{}", r.text());
        assert_eq!(r.json()["accepted"].as_u64(), Some((end - i) as u64));
        i = end;
    }
}

/// The stored messages of `tenant`, asserting there are no duplicates.
async fn stored(store: &Store, tenant: &str) -> BTreeSet<String> {
    let records = support::stored_in(store, &Tenant::new(tenant).unwrap()).await;
    let set: BTreeSet<String> = records
        .iter()
        .map(|r| r.message_str().unwrap().into_owned())
        .collect();
    assert_eq!(set.len(), records.len(), "duplicates stored for {tenant}");
    set
}

/// Waits (at most 30 s) until `tenant` has `n` records stored.
async fn wait_for(store: &Store, tenant: &str, n: usize) -> BTreeSet<String> {
    let deadline = Instant::now() + Duration::from_secs(30);
    loop {
        let got = stored(store, tenant).await;
        if got.len() >= n || Instant::now() > deadline {
            return got;
        }
        tokio::time::sleep(Duration::from_millis(100)).await;
    }
}

fn expected(tenant: &str, n: usize) -> BTreeSet<String> {
    (0..n).map(|i| format!("{tenant}-{i}")).collect()
}

async fn acked_events(p: &Proc) -> f64 {
    let m = support::scrape(p.http).await;
    support::metric_sum(&m, self_metrics::ACKED_EVENTS, &[])
}

async fn stream(redis: &str, prefix: &str, group: &str) -> RedisStreamsQueue {
    RedisStreamsQueue::connect(
        redis,
        RedisQueueOptions {
            prefix: prefix.to_owned(),
            tenant_group: group.to_owned(),
            consumer: Some("test-observer".into()),
            ..Default::default()
        },
    )
    .await
    .unwrap()
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn each_worker_takes_only_its_tenant_groups_and_nothing_is_lost() {
    let Ok(redis) = std::env::var("KILLKRILL_TEST_REDIS_URL") else {
        eprintln!("skipped: the tenant-group test needs KILLKRILL_TEST_REDIS_URL");
        return;
    };
    let Some(db) = support::postgres_db("kk_tgroups").await else {
        return;
    };
    let scoped = db.config.url.clone().unwrap();
    let prefix = unique("kktg");
    let dir = tempfile::tempdir().unwrap();
    let data = dir.path().join("data");
    std::fs::create_dir_all(&data).unwrap();
    let config = dir.path().join("killkrill.toml");
    std::fs::write(&config, "[queue.tenant_groups]\nbig = [\"acme\"]\n").unwrap();
    let env = [
        ("REDIS_URL", redis.as_str()),
        ("DB_TYPE", "postgres"),
        ("DATABASE_URL", scoped.as_str()),
        ("KILLKRILL_QUEUE__REDIS__PREFIX", prefix.as_str()),
        ("KILLKRILL_QUEUE__REDIS__POLL_INTERVAL_MS", "250"),
    ];

    // The API migrates the schema and makes the admin; then the receiver
    // and the worker of group `big` only.
    let mut api = start("api", &data, &config, &env, &[]);
    let mut receiver = start("receiver", &data, &config, &env, &[]);
    let mut big = start("worker", &data, &config, &env, &["--queue-groups", "big"]);

    let creds = killkrill_svc::auth::bootstrap::BootstrapCredentials::read(&data).unwrap();
    let login = serde_json::json!({"email": creds.admin_email, "password": creds.admin_password});
    let r = raw_http(
        api.http,
        "POST",
        "/api/v1/auth/login",
        &[("Content-Type", "application/json")],
        login.to_string().as_bytes(),
    )
    .await;
    assert_eq!(r.status, 200, "{}", r.text());
    let bearer = format!("Bearer {}", r.json()["access_token"].as_str().unwrap());
    let default_tenant = Tenant::default().as_str().to_owned();
    // acme is in group `big`; beta and the default tenant in `default`.
    let tenants = [
        (
            "acme".to_owned(),
            ingest_key(api.http, &bearer, "acme").await,
        ),
        (
            "beta".to_owned(),
            ingest_key(api.http, &bearer, "beta").await,
        ),
        (default_tenant.clone(), creds.api_key.clone()),
    ];

    for (t, key) in &tenants {
        send(receiver.http, key, t, 0, PHASE1).await;
    }
    let store = Store::open(db.config.clone()).await.unwrap();
    assert_eq!(
        wait_for(&store, "acme", PHASE1).await,
        expected("acme", PHASE1)
    );
    // Time for a wrongly routed or wrongly served batch to show up.
    tokio::time::sleep(Duration::from_secs(2)).await;
    assert_eq!(stored(&store, "beta").await.len(), 0, "beta is not big's");
    assert_eq!(stored(&store, &default_tenant).await.len(), 0);
    assert_eq!(acked_events(&big).await, PHASE1 as f64);
    // The other tenants' batches wait in the `default` stream, unread; the
    // `big` stream is empty (acknowledged entries are deleted).
    let default_stream = stream(&redis, &prefix, "default").await;
    let big_stream = stream(&redis, &prefix, "big").await;
    let waiting = default_stream.stats().await.unwrap();
    assert!(
        waiting.batches >= (2 * PHASE1 / PER_REQUEST) as u64,
        "{waiting:?}"
    );
    assert_eq!(waiting.in_flight, 0, "nobody read the default group");
    let drained = big_stream.stats().await.unwrap();
    assert_eq!((drained.batches, drained.in_flight), (0, 0), "{drained:?}");

    // The `default` worker takes the rest, and nothing of acme.
    let mut other = start(
        "worker",
        &data,
        &config,
        &env,
        &["--queue-groups", "default"],
    );
    for t in ["beta", default_tenant.as_str()] {
        assert_eq!(
            wait_for(&store, t, PHASE1).await,
            expected(t, PHASE1),
            "{t}"
        );
    }
    assert_eq!(acked_events(&other).await, (2 * PHASE1) as f64);

    // A second load with both workers running.
    for (t, key) in &tenants {
        send(receiver.http, key, t, PHASE1, PHASE1 + PHASE2).await;
    }
    for (t, _) in &tenants {
        let all = PHASE1 + PHASE2;
        assert_eq!(wait_for(&store, t, all).await, expected(t, all), "{t}");
    }
    // Let late duplicates (if any) land before the final counts.
    tokio::time::sleep(Duration::from_secs(1)).await;
    for (t, _) in &tenants {
        assert_eq!(stored(&store, t).await.len(), PHASE1 + PHASE2, "{t}");
    }
    let (a, b) = (acked_events(&big).await, acked_events(&other).await);
    eprintln!("acknowledged events: big worker {a}, default worker {b}");
    assert_eq!(a, (PHASE1 + PHASE2) as f64, "the big worker took only acme");
    assert_eq!(
        b,
        (2 * (PHASE1 + PHASE2)) as f64,
        "the default worker took only beta and the default tenant"
    );
    for s in [&default_stream, &big_stream] {
        let st = s.stats().await.unwrap();
        assert_eq!((st.batches, st.in_flight), (0, 0), "{}: {st:?}", s.key());
    }

    for p in [&mut receiver, &mut big, &mut other, &mut api] {
        assert!(p.sigterm().success());
    }
    default_stream.destroy().await.unwrap();
    big_stream.destroy().await.unwrap();
    drop(store);
    db.drop_db().await;
}
