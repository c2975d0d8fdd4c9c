//! The real `killkrill` binary: `serve` on free ports with a fresh data
//! directory, driven over HTTP and syslog TCP, stopped with SIGTERM, and
//! the data read back from the SQLite file it left; `check-config` errors.
#![allow(clippy::unwrap_used)]

mod support;

use std::io::{BufRead, BufReader};
use std::net::SocketAddr;
use std::process::{Command, Stdio};
use std::time::Duration;

use killkrill_store::{Store, StoreConfig};
use support::{addr_after, by_message, http, metric_sum, scrape, spawn_killkrill, stored};
use tokio::io::AsyncWriteExt;

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn the_binary_serves_and_stops_cleanly_on_sigterm() {
    let dir = tempfile::tempdir().unwrap();
    let data = dir.path().join("data");
    let mut child = support::killkrill_command("serve", &data, &[])
        .stderr(Stdio::piped())
        .spawn()
        .unwrap();
    let mut out = BufReader::new(child.stdout.take().unwrap());
    // The first start prints the bootstrap credentials once, then the
    // addresses.
    let mut boot = String::new();
    out.read_line(&mut boot).unwrap();
    assert!(
        boot.contains("first start: created admin admin@killkrill.local"),
        "{boot:?}"
    );
    let creds = killkrill_svc::auth::bootstrap::BootstrapCredentials::read(&data).unwrap();
    assert!(
        boot.contains(&creds.api_key) && boot.contains(&creds.admin_password),
        "{boot}"
    );
    #[cfg(unix)]
    {
        use std::os::unix::fs::PermissionsExt;
        let mode = std::fs::metadata(data.join("bootstrap-credentials.json"))
            .unwrap()
            .permissions()
            .mode();
        assert_eq!(mode & 0o777, 0o600);
    }
    let mut first = String::new();
    out.read_line(&mut first).unwrap();
    assert!(first.starts_with("killkrill serve: "), "{first:?}");
    assert!(first.contains("syslog-udp off"), "{first}");
    assert!(first.contains("syslog-tls off"), "{first}");
    let http_addr = addr_after(&first, "http").unwrap();
    let tcp_addr = addr_after(&first, "syslog-tcp").unwrap();
    let key_header = creds.api_key.clone();
    let key = [("X-API-Key", key_header.as_str())];
    let r = http(
        http_addr,
        "POST",
        "/api/v1/logs",
        &[],
        b"{\"msg\":\"no key\"}",
    )
    .await;
    assert_eq!(r.status, 401, "{}", r.text());

    assert_eq!(
        http(http_addr, "GET", "/readyz", &[], b"").await.status,
        200
    );
    let r = http(
        http_addr,
        "POST",
        "/api/v1/logs",
        &key,
        b"{\"msg\":\"from curl-like client\",\"level\":\"info\"}\n{\"msg\":\"second\"}\n",
    )
    .await;
    assert_eq!(r.status, 200, "{}", r.text());
    let r = http(
        http_addr,
        "POST",
        "/api/v1/logs",
        &key,
        b"{\"msg\":\"ok\"}\n{broken\n",
    )
    .await;
    assert_eq!(r.status, 400);
    assert!(
        r.json()["detail"].as_str().unwrap().starts_with("line 2"),
        "{}",
        r.text()
    );
    let mut tcp = tokio::net::TcpStream::connect(tcp_addr).await.unwrap();
    tcp.write_all(b"<13>1 2026-11-25T10:00:00Z bin-host app - - - over tcp\n")
        .await
        .unwrap();
    tcp.shutdown().await.unwrap();
    drop(tcp);
    let m = scrape(http_addr).await;
    assert_eq!(
        metric_sum(
            &m,
            "killkrill_http_rejected_requests_total",
            &[("endpoint", "logs"), ("status", "400")]
        ),
        1.0,
        "{m}"
    );

    // Give the TCP connection a moment to be read, then SIGTERM.
    tokio::time::sleep(Duration::from_millis(200)).await;
    let killed = Command::new("kill")
        .args(["-TERM", &child.id().to_string()])
        .status()
        .unwrap();
    assert!(killed.success());
    let status = tokio::task::spawn_blocking(move || child.wait_with_output())
        .await
        .unwrap()
        .unwrap();
    assert!(
        status.status.success(),
        "exit {:?}: {}",
        status.status,
        String::from_utf8_lossy(&status.stderr)
    );

    // Everything acknowledged is in the database file it left behind.
    let store = Store::open(StoreConfig::sqlite(&data)).await.unwrap();
    let records = stored(&store).await;
    assert_eq!(records.len(), 3, "{records:?}");
    by_message(&records, "from curl-like client");
    assert_eq!(
        by_message(&records, "over tcp").host.as_deref(),
        Some("bin-host")
    );
    store.close().await;
}

#[test]
fn check_config_names_the_key_and_exits_2() {
    let run = |args: &[&str], env: &[(&str, &str)]| {
        let mut c = Command::new(env!("CARGO_BIN_EXE_killkrill"));
        c.args(args);
        for (k, v) in env {
            c.env(k, v);
        }
        c.output().unwrap()
    };
    let ok = run(
        &["check-config", "--http", "127.0.0.1:9999"],
        &[("KILLKRILL_TEST_POSTGRES_URL", "postgres://x")],
    );
    assert!(
        ok.status.success(),
        "{}",
        String::from_utf8_lossy(&ok.stderr)
    );
    let text = String::from_utf8_lossy(&ok.stdout);
    assert!(text.contains("http = \"127.0.0.1:9999\""), "{text}");
    assert!(text.contains("database: sqlite"), "{text}");
    assert!(
        !String::from_utf8_lossy(&ok.stderr).contains("warning"),
        "the defaults warn of nothing: {}",
        String::from_utf8_lossy(&ok.stderr)
    );
    // Valid but working against each other: said, and still valid.
    let warned = run(
        &["check-config"],
        &[("KILLKRILL_QUEUE__MAX_EVENTS", "200000")],
    );
    assert!(warned.status.success());
    let stderr = String::from_utf8_lossy(&warned.stderr);
    assert!(
        stderr.contains("configuration warning: queue.max_events (200000) is under twice")
            && stderr.contains("workers.group_max_events = 500000"),
        "{stderr}"
    );
    let bad = run(&["check-config", "--http", "nope"], &[]);
    assert_eq!(bad.status.code(), Some(2));
    assert!(
        String::from_utf8_lossy(&bad.stderr)
            .contains("http (from --http): invalid address \"nope\"")
    );
    let bad = run(&["check-config"], &[("KILLKRILL_QUEUE__MAX_EVENTS", "0")]);
    assert_eq!(bad.status.code(), Some(2));
    assert!(
        String::from_utf8_lossy(&bad.stderr).contains(
            "queue.max_events (from KILLKRILL_QUEUE__MAX_EVENTS): must be greater than 0"
        )
    );
    let bad = run(&["check-config"], &[("DB_TYPE", "oracle")]);
    assert_eq!(bad.status.code(), Some(2));
    assert!(String::from_utf8_lossy(&bad.stderr).contains("DB_TYPE"));
}

/// `killkrill <command>`: the child, its HTTP and syslog TCP addresses.
fn spawn(
    command: &str,
    data: &std::path::Path,
    env: &[(&str, &str)],
) -> (std::process::Child, SocketAddr, Option<SocketAddr>) {
    let (child, first) = spawn_killkrill(command, data, env);
    let http = addr_after(&first, "http").unwrap_or_else(|| panic!("{first:?}"));
    (child, http, addr_after(&first, "syslog-tcp"))
}

/// The default queue is durable: records acknowledged over HTTP (200) and
/// syslog TCP (counted as enqueued) survive a SIGKILL right after the
/// acknowledgement (before any worker wrote them), and after a restart on
/// the same data directory each is stored exactly once.
/// SIGHUP (what logrotate and init systems send) does not end the binary
/// when it has no TLS listener; it is counted, and SIGTERM still stops it
/// cleanly.
#[cfg(unix)]
#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn sighup_does_not_end_the_binary_without_tls() {
    let dir = tempfile::tempdir().unwrap();
    let data = dir.path().join("data");
    let (mut child, first) = spawn_killkrill("serve", &data, &[]);
    let addr = addr_after(&first, "http").unwrap();
    let pid = child.id().to_string();
    let signal = |sig: &str| {
        let st = Command::new("kill")
            .args([sig, pid.as_str()])
            .status()
            .unwrap();
        assert!(st.success());
    };
    signal("-HUP");
    let deadline = std::time::Instant::now() + Duration::from_secs(10);
    loop {
        assert!(
            child.try_wait().unwrap().is_none(),
            "SIGHUP ended the server"
        );
        let m = scrape(addr).await;
        if metric_sum(&m, "killkrill_sighup_total", &[("action", "nothing")]) >= 1.0 {
            break;
        }
        assert!(
            std::time::Instant::now() < deadline,
            "SIGHUP not counted: {m}"
        );
        tokio::time::sleep(Duration::from_millis(50)).await;
    }
    tokio::time::sleep(Duration::from_millis(200)).await;
    assert!(
        child.try_wait().unwrap().is_none(),
        "SIGHUP ended the server"
    );
    assert_eq!(http(addr, "GET", "/healthz", &[], b"").await.status, 200);
    signal("-TERM");
    assert!(child.wait().unwrap().success());
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn acknowledged_records_survive_sigkill_exactly_once() {
    const HTTP_REQUESTS: usize = 20;
    const PER_REQUEST: usize = 50;
    const TCP_MESSAGES: usize = 500;
    const TOTAL: usize = HTTP_REQUESTS * PER_REQUEST + TCP_MESSAGES;
    let dir = tempfile::tempdir().unwrap();
    let data = dir.path().join("data");
    // A short visibility timeout: a batch a worker held when it was killed
    // comes back soon after the restart.
    let env = [("KILLKRILL_QUEUE__VISIBILITY_TIMEOUT_MS", "1000")];
    // No workers in the first run: nothing is written to the store before
    // the kill, so every record must come from the queue file.
    let first_env = [env[0], ("KILLKRILL_WORKERS__COUNT", "0")];
    let (mut child, http_addr, tcp_addr) = spawn("serve", &data, &first_env);
    let key = killkrill_svc::auth::bootstrap::BootstrapCredentials::read(&data)
        .unwrap()
        .api_key;

    let mut tcp = tokio::net::TcpStream::connect(tcp_addr.unwrap())
        .await
        .unwrap();
    let mut frames = Vec::new();
    for k in 0..TCP_MESSAGES {
        let msg = format!("<13>1 2026-11-25T10:00:00Z kill-host app - - - tcp-{k}");
        frames.extend_from_slice(format!("{} {msg}", msg.len()).as_bytes());
    }
    tcp.write_all(&frames).await.unwrap();
    tcp.flush().await.unwrap();
    for i in 0..HTTP_REQUESTS {
        let body: String = (0..PER_REQUEST)
            .map(|j| format!("{{\"msg\":\"http-{i}-{j}\"}}\n"))
            .collect();
        let r = http(
            http_addr,
            "POST",
            "/api/v1/logs",
            &[("X-API-Key", key.as_str())],
            body.as_bytes(),
        )
        .await;
        assert_eq!(r.status, 200, "{}", r.text());
    }
    // Syslog has no acknowledgement on the wire: the server's count of
    // enqueued events is the point after which it promises to keep them.
    let deadline = std::time::Instant::now() + Duration::from_secs(10);
    loop {
        let m = scrape(http_addr).await;
        let enqueued = metric_sum(&m, "killkrill_queue_enqueued_events_total", &[]);
        if enqueued >= TOTAL as f64 {
            break;
        }
        assert!(
            std::time::Instant::now() < deadline,
            "only {enqueued} enqueued"
        );
        tokio::time::sleep(Duration::from_millis(10)).await;
    }
    child.kill().unwrap(); // SIGKILL
    child.wait().unwrap();
    drop(tcp);

    let at_kill = {
        let store = Store::open(StoreConfig::sqlite(&data)).await.unwrap();
        let n = stored(&store).await.len();
        store.close().await;
        n
    };
    assert_eq!(at_kill, 0, "no worker ran before the kill");

    let (mut child, http_addr, _) = spawn("serve", &data, &env);
    let deadline = std::time::Instant::now() + Duration::from_secs(20);
    loop {
        let r = http(http_addr, "GET", "/readyz", &[], b"").await;
        let q = &r.json()["queue"];
        if q["batches"].as_u64() == Some(0) {
            break;
        }
        assert!(
            std::time::Instant::now() < deadline,
            "queue not drained: {q}"
        );
        tokio::time::sleep(Duration::from_millis(50)).await;
    }
    Command::new("kill")
        .args(["-TERM", &child.id().to_string()])
        .status()
        .unwrap();
    assert!(child.wait().unwrap().success());

    let store = Store::open(StoreConfig::sqlite(&data)).await.unwrap();
    let records = stored(&store).await;
    let mut seen = std::collections::BTreeMap::<String, usize>::new();
    for r in &records {
        *seen
            .entry(r.message_str().unwrap_or_default().into_owned())
            .or_default() += 1;
    }
    let mut missing = Vec::new();
    let want = (0..HTTP_REQUESTS)
        .flat_map(|i| (0..PER_REQUEST).map(move |j| format!("http-{i}-{j}")))
        .chain((0..TCP_MESSAGES).map(|k| format!("tcp-{k}")));
    for w in want {
        match seen.get(&w) {
            Some(1) => {}
            Some(n) => panic!("{w} stored {n} times"),
            None => missing.push(w),
        }
    }
    assert!(
        missing.is_empty(),
        "missing {}: {:?}",
        missing.len(),
        &missing[..missing.len().min(5)]
    );
    assert_eq!(records.len(), TOTAL);
    store.close().await;
}

/// Log lines written from any thread while `serve` runs: the command once
/// held the process's stderr lock for its whole run, so the first event
/// logged off the main thread (here `RUST_LOG=debug`: sqlx's statements on
/// the runtime's workers) blocked that thread forever — the server never
/// started, and under load a retry warning hung a worker.
#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn logging_from_every_thread_never_blocks_the_server() {
    let dir = tempfile::tempdir().unwrap();
    let data = dir.path().join("data");
    let log = std::fs::File::create(dir.path().join("stderr.log")).unwrap();
    let mut child = support::killkrill_command("serve", &data, &[("RUST_LOG", "debug")])
        .stderr(log)
        .spawn()
        .unwrap();
    let out = child.stdout.take().unwrap();
    let (tx, rx) = std::sync::mpsc::channel();
    std::thread::spawn(move || {
        for line in BufReader::new(out).lines().map_while(Result::ok) {
            if tx.send(line).is_err() {
                return;
            }
        }
    });
    let deadline = std::time::Instant::now() + Duration::from_secs(60);
    let addrs = loop {
        let left = deadline.saturating_duration_since(std::time::Instant::now());
        match rx.recv_timeout(left) {
            Ok(l) if l.starts_with("killkrill serve: ") && !l.contains("first start:") => break l,
            Ok(_) => {}
            Err(e) => {
                let _ = child.kill();
                panic!("serve did not start with RUST_LOG=debug: {e}");
            }
        }
    };
    let addr = support::addr_after(&addrs, "http").unwrap();
    let key = killkrill_svc::auth::bootstrap::BootstrapCredentials::read(&data)
        .unwrap()
        .api_key;
    let body = b"{\"message\":\"from a test\"}\n";
    for _ in 0..5 {
        let r = tokio::time::timeout(
            Duration::from_secs(20),
            http(
                addr,
                "POST",
                "/api/v1/logs",
                &[
                    ("Content-Type", "application/x-ndjson"),
                    ("X-API-Key", key.as_str()),
                ],
                body,
            ),
        )
        .await
        .expect("an ingest request answered while every thread logs");
        assert_eq!(r.status, 200, "{}", String::from_utf8_lossy(&r.body));
    }
    let _ = Command::new("kill")
        .args(["-TERM", &child.id().to_string()])
        .status();
    let status = child.wait().unwrap();
    assert!(status.success(), "{status:?}");
    let logged = std::fs::read_to_string(dir.path().join("stderr.log")).unwrap();
    assert!(
        logged.lines().filter(|l| l.contains("\"DEBUG\"")).count() > 10,
        "debug events were written"
    );
}
