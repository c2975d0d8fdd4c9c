//! `serve` on PostgreSQL and MySQL/MariaDB instead of the embedded SQLite:
//! the same HTTP and syslog ingest, read back from the server database.
//! Skipped (with the reason printed) when `KILLKRILL_TEST_POSTGRES_URL` or
//! `KILLKRILL_TEST_MYSQL_URL` is unset. Each run uses a fresh schema or
//! database, dropped at the end.
#![allow(clippy::unwrap_used, clippy::print_stderr)]

mod support;

use killkrill_store::StoreConfig;
use killkrill_svc::serve::StartOptions;
use support::{by_message, config, http, mysql_db, postgres_db, wait_stored};
use tokio::io::AsyncWriteExt;

async fn round_trip(store: StoreConfig) {
    let dir = tempfile::tempdir().unwrap();
    let h = support::start_with(
        config(dir.path()),
        StartOptions {
            store: Some(store),
            metric_sink: None,
            queue: None,
            ..Default::default()
        },
    )
    .await
    .unwrap();
    let r = http(
        h.http.unwrap(),
        "POST",
        "/api/v1/logs",
        &[],
        b"{\"msg\":\"db http\",\"level\":\"error\"}",
    )
    .await;
    assert_eq!(r.status, 200, "{}", r.text());
    let mut c = tokio::net::TcpStream::connect(h.syslog_tcp.unwrap())
        .await
        .unwrap();
    c.write_all(b"<13>1 2026-11-25T10:00:00Z db-host app - - - db syslog\n")
        .await
        .unwrap();
    c.shutdown().await.unwrap();
    assert_eq!(
        http(h.http.unwrap(), "GET", "/readyz", &[], b"")
            .await
            .status,
        200
    );
    let records = wait_stored(&h.store, 2).await;
    assert_eq!(records.len(), 2, "{records:?}");
    by_message(&records, "db http");
    assert_eq!(
        by_message(&records, "db syslog").host.as_deref(),
        Some("db-host")
    );
    let report = h.shutdown().await;
    assert_eq!(report.left_in_queue, 0);
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn serve_on_postgres() {
    let Some(db) = postgres_db("kk_serve").await else {
        return;
    };
    round_trip(db.config.clone()).await;
    db.drop_db().await;
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn serve_on_mysql() {
    let Some(db) = mysql_db("kk_serve").await else {
        return;
    };
    round_trip(db.config.clone()).await;
    db.drop_db().await;
}
