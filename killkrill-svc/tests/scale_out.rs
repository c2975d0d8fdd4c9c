//! The scale-out roles as real processes: two `killkrill receiver`s, two
//! `killkrill worker`s and one `killkrill api` sharing a Redis Streams queue
//! (a key prefix of their own) and PostgreSQL (a schema of its own), loaded
//! by `killkrill loadgen` over HTTP and syslog TCP; one worker is SIGKILLed
//! in the middle of the load and started again, and `loadgen --verify`
//! must find every acknowledged record stored exactly once.
//!
//! Skipped, saying why, without KILLKRILL_TEST_REDIS_URL and
//! KILLKRILL_TEST_POSTGRES_URL.
#![allow(clippy::unwrap_used, clippy::print_stderr)]

mod support;

use std::net::SocketAddr;
use std::process::{Child, Command, Stdio};
use std::time::Duration;

use killkrill_core::event::Timestamp;
use sqlx::Connection;
use support::{addr_after, http, spawn_killkrill};

fn unique(prefix: &str) -> String {
    let n = Timestamp::now().as_nanos() as u64 ^ (u64::from(std::process::id()) << 40);
    format!("{prefix}_{n:x}")
}

/// A child killed (SIGKILL) when dropped, unless already reaped.
struct Proc {
    child: Option<Child>,
    http: SocketAddr,
    syslog_tcp: Option<SocketAddr>,
}

impl Proc {
    fn pid(&self) -> u32 {
        self.child.as_ref().unwrap().id()
    }

    fn sigkill(&mut self) {
        let mut c = self.child.take().unwrap();
        c.kill().unwrap();
        c.wait().unwrap();
    }

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

fn start(role: &str, env: &[(String, String)], data: &std::path::Path) -> Proc {
    let env: Vec<(&str, &str)> = env.iter().map(|(k, v)| (k.as_str(), v.as_str())).collect();
    let (child, first) = spawn_killkrill(role, data, &env);
    Proc {
        http: addr_after(&first, "http").unwrap_or_else(|| panic!("{first:?}")),
        syslog_tcp: addr_after(&first, "syslog-tcp"),
        child: Some(child),
    }
}

fn loadgen(env: &[(String, String)], args: &[String]) -> std::process::Child {
    let mut c = Command::new(env!("CARGO_BIN_EXE_killkrill"));
    c.arg("loadgen")
        .args(args)
        .stdout(Stdio::piped())
        .stderr(Stdio::inherit());
    for (k, v) in env {
        c.env(k, v);
    }
    c.spawn().unwrap()
}

fn summary(out: std::process::Output) -> serde_json::Value {
    let text = String::from_utf8_lossy(&out.stdout);
    let v: serde_json::Value =
        serde_json::from_str(&text).unwrap_or_else(|e| panic!("{e}: {text}"));
    assert!(out.status.success(), "loadgen failed: {text}");
    v
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn two_receivers_two_workers_one_api_lose_nothing_when_a_worker_is_killed() {
    let (Ok(redis), Ok(pg)) = (
        std::env::var("KILLKRILL_TEST_REDIS_URL"),
        std::env::var("KILLKRILL_TEST_POSTGRES_URL"),
    ) else {
        eprintln!(
            "skipped: the scale-out test needs KILLKRILL_TEST_REDIS_URL and KILLKRILL_TEST_POSTGRES_URL"
        );
        return;
    };
    let schema = unique("kk_scale");
    let prefix = unique("kktest");
    let mut admin = sqlx::PgConnection::connect(&pg).await.unwrap();
    sqlx::query(sqlx::AssertSqlSafe(format!("CREATE SCHEMA {schema}")))
        .execute(&mut admin)
        .await
        .unwrap();
    let sep = if pg.contains('?') { '&' } else { '?' };
    let scoped = format!("{pg}{sep}options=-c%20search_path%3D{schema}");
    let env: Vec<(String, String)> = [
        ("REDIS_URL", redis.as_str()),
        ("DB_TYPE", "postgres"),
        ("DATABASE_URL", scoped.as_str()),
        ("KILLKRILL_QUEUE__REDIS__PREFIX", prefix.as_str()),
        // A killed worker's deliveries are claimed by the other after 2 s.
        ("KILLKRILL_QUEUE__VISIBILITY_TIMEOUT_MS", "2000"),
        ("KILLKRILL_QUEUE__REDIS__POLL_INTERVAL_MS", "250"),
        ("KILLKRILL_SYSLOG__BATCH_LINGER_MS", "20"),
    ]
    .iter()
    .map(|(k, v)| ((*k).to_owned(), (*v).to_owned()))
    .collect();
    let dir = tempfile::tempdir().unwrap();
    let data = dir.path();

    // The API first: it migrates the schema before the others use it.
    let mut api = start("api", &env, data);
    let mut receivers = [start("receiver", &env, data), start("receiver", &env, data)];
    let mut workers = [start("worker", &env, data), start("worker", &env, data)];
    assert_eq!(api.syslog_tcp, None, "the API listens only on HTTP");
    assert_eq!(workers[0].syslog_tcp, None, "a worker listens only on HTTP");

    // Each role serves its own routes only.
    for p in [&api, &workers[0], &receivers[0]] {
        let r = http(p.http, "GET", "/readyz", &[], b"").await;
        assert_eq!(r.status, 200, "{}", r.text());
        assert_eq!(http(p.http, "GET", "/metrics", &[], b"").await.status, 200);
    }
    // The API process created the first admin and an ingest+read key.
    let key = killkrill_svc::auth::bootstrap::BootstrapCredentials::read(data)
        .unwrap()
        .api_key;
    for p in [&api, &workers[0]] {
        let r = http(
            p.http,
            "POST",
            "/api/v1/logs",
            &[("X-API-Key", key.as_str())],
            b"{\"msg\":\"x\"}",
        )
        .await;
        // 404 on a worker; 405 on the API, where the path is a read route.
        assert!(
            r.status == 404 || r.status == 405,
            "no ingest route outside receivers: {}",
            r.status
        );
    }

    // Load: HTTP NDJSON into one receiver, syslog TCP into the other.
    let common = |mode: &str, target: SocketAddr| -> Vec<String> {
        [
            "--mode",
            mode,
            "--target",
            &target.to_string(),
            "--duration",
            "8",
            "--rate",
            "3000",
            "--connections",
            "2",
            "--batch",
            "200",
            "--verify",
            "--verify-timeout",
            "30",
            "--quiet",
            "--api-key",
            &key,
        ]
        .iter()
        .map(|s| (*s).to_owned())
        .collect()
    };
    let http_load = loadgen(&env, &common("http", receivers[0].http));
    let tcp_load = loadgen(
        &env,
        &common("syslog-tcp", receivers[1].syslog_tcp.unwrap()),
    );

    // Mid-load: SIGKILL a worker (whatever it holds is unacknowledged in
    // the group), start a new one two seconds later.
    tokio::time::sleep(Duration::from_secs(3)).await;
    let killed = workers[0].pid();
    workers[0].sigkill();
    tokio::time::sleep(Duration::from_secs(2)).await;
    workers[0] = start("worker", &env, data);
    assert_ne!(workers[0].pid(), killed);

    let (http_out, tcp_out) = tokio::task::spawn_blocking(move || {
        (
            http_load.wait_with_output().unwrap(),
            tcp_load.wait_with_output().unwrap(),
        )
    })
    .await
    .unwrap();
    for s in [summary(http_out), summary(tcp_out)] {
        let v = &s["verify"];
        let mode = &s["mode"];
        assert!(s["acknowledged"].as_u64().unwrap() > 10_000, "{mode}: {s}");
        assert_eq!(v["expected"], s["acknowledged"], "{mode}: {v}");
        assert_eq!(v["missing"].as_u64(), Some(0), "{mode}: {v}");
        assert_eq!(v["duplicates"].as_u64(), Some(0), "{mode}: {v}");
        assert_eq!(v["stored"], s["acknowledged"], "{mode}: {v}");
    }

    let mut redelivered = 0.0;
    for w in &workers {
        let m = support::scrape(w.http).await;
        redelivered += support::metric_sum(&m, "killkrill_queue_redelivered_batches_total", &[]);
    }
    eprintln!("batches redelivered after the kill: {redelivered}");
    assert!(
        redelivered > 0.0,
        "the killed worker held deliveries that another consumer took over"
    );

    for p in receivers.iter_mut().chain(workers.iter_mut()) {
        assert!(p.sigterm().success());
    }
    assert!(api.sigterm().success());

    // Clean up the stream and the schema.
    let q = killkrill_store::queue::RedisStreamsQueue::connect(
        &redis,
        killkrill_store::queue::RedisQueueOptions {
            prefix: prefix.clone(),
            ..Default::default()
        },
    )
    .await
    .unwrap();
    q.destroy().await.unwrap();
    sqlx::query(sqlx::AssertSqlSafe(format!("DROP SCHEMA {schema} CASCADE")))
        .execute(&mut admin)
        .await
        .unwrap();
}
