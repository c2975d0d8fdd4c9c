//! A start that fails after the store and the queue were opened closes
//! them: the SQLite database and queue are released (no WAL or shared
//! memory file left behind), and a new start in the same data directory
//! succeeds and serves.
#![allow(clippy::unwrap_used, clippy::print_stderr)]

mod support;

use std::net::SocketAddr;

use killkrill_svc::config::ListenAddr;
use killkrill_svc::serve::{self, StartError};
use support::{config, http};

fn leftovers(dir: &std::path::Path) -> Vec<String> {
    std::fs::read_dir(dir)
        .unwrap()
        .filter_map(|e| e.ok())
        .map(|e| e.file_name().to_string_lossy().into_owned())
        .filter(|n| n.ends_with("-wal") || n.ends_with("-shm"))
        .collect()
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn a_failed_start_releases_the_data_dir_for_the_next() {
    let dir = tempfile::tempdir().unwrap();
    // The syslog TCP port is taken: HTTP, the store and the queue were
    // already open when its bind fails.
    let taken = std::net::TcpListener::bind("127.0.0.1:0").unwrap();
    let busy: SocketAddr = taken.local_addr().unwrap();
    for round in 0..2 {
        let mut c = config(dir.path());
        c.syslog_udp = ListenAddr::OFF;
        c.syslog_tcp = ListenAddr::on(busy);
        let e = serve::start(c).await.err().expect("the bind fails");
        match &e {
            StartError::Bind { key, addr, .. } => {
                assert_eq!((*key, *addr), ("syslog_tcp", busy), "{e}");
            }
            other => panic!("round {round}: {other}"),
        }
        // The database and the queue file exist (they were opened and
        // migrated) and are closed: SQLite removes the WAL and shared
        // memory files when the last connection closes.
        assert!(dir.path().join("killkrill.db").exists());
        assert!(dir.path().join("queue.db").exists());
        assert_eq!(leftovers(dir.path()), Vec::<String>::new(), "round {round}");
    }

    // The next start in the same directory succeeds, and serves.
    let mut c = config(dir.path());
    c.syslog_udp = ListenAddr::OFF;
    let h = support::start(c).await.unwrap();
    let addr = h.http.unwrap();
    let r = http(
        addr,
        "POST",
        "/api/v1/logs",
        &[],
        br#"{"msg":"after a failed start"}"#,
    )
    .await;
    assert!((200..300).contains(&r.status), "{}: {}", r.status, r.text());
    let got = support::wait_stored(&h.store, 1).await;
    assert_eq!(
        got[0].message.as_deref(),
        Some(&b"after a failed start"[..])
    );
    assert_eq!(http(addr, "GET", "/readyz", &[], b"").await.status, 200);
    h.shutdown().await;
    assert_eq!(leftovers(dir.path()), Vec::<String>::new());
    drop(taken);
}
