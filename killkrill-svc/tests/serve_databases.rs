//! `serve` on PostgreSQL and MySQL/MariaDB instead of the embedded SQLite:
//! the same HTTP and syslog ingest, read back from the server database.
//! Skipped (with the reason printed) when `KILLKRILL_TEST_POSTGRES_URL` or
//! `KILLKRILL_TEST_MYSQL_URL` is unset. Each run uses a fresh schema or
//! database, dropped at the end.
#![allow(clippy::unwrap_used, clippy::print_stderr)]

mod support;

use killkrill_core::event::Timestamp;
use killkrill_store::{DbType, StoreConfig};
use killkrill_svc::serve::{self, StartOptions};
use sqlx::Connection;
use support::{by_message, config, http, wait_stored};
use tokio::io::AsyncWriteExt;

fn unique(prefix: &str) -> String {
    let n = Timestamp::now().as_nanos() as u64 ^ (u64::from(std::process::id()) << 40);
    format!("{prefix}_{n:x}")
}

async fn round_trip(store: StoreConfig) {
    let dir = tempfile::tempdir().unwrap();
    let h = serve::start_with(
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
    let Ok(url) = std::env::var("KILLKRILL_TEST_POSTGRES_URL") else {
        eprintln!("skipping: KILLKRILL_TEST_POSTGRES_URL is not set");
        return;
    };
    let schema = unique("kk_serve");
    let mut c = sqlx::PgConnection::connect(&url).await.unwrap();
    sqlx::query(sqlx::AssertSqlSafe(format!("CREATE SCHEMA {schema}")))
        .execute(&mut c)
        .await
        .unwrap();
    let sep = if url.contains('?') { '&' } else { '?' };
    let scoped = format!("{url}{sep}options=-c%20search_path%3D{schema}");
    round_trip(StoreConfig::from_url(DbType::Postgres, scoped)).await;
    sqlx::query(sqlx::AssertSqlSafe(format!("DROP SCHEMA {schema} CASCADE")))
        .execute(&mut c)
        .await
        .unwrap();
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn serve_on_mysql() {
    let Ok(url) = std::env::var("KILLKRILL_TEST_MYSQL_URL") else {
        eprintln!("skipping: KILLKRILL_TEST_MYSQL_URL is not set");
        return;
    };
    let db = unique("kk_serve");
    let mut c = sqlx::MySqlConnection::connect(&url).await.unwrap();
    sqlx::query(sqlx::AssertSqlSafe(format!("CREATE DATABASE {db}")))
        .execute(&mut c)
        .await
        .unwrap();
    let base = url.rsplit_once('/').map_or(url.as_str(), |(b, _)| b);
    round_trip(StoreConfig::from_url(DbType::Mysql, format!("{base}/{db}"))).await;
    sqlx::query(sqlx::AssertSqlSafe(format!("DROP DATABASE {db}")))
        .execute(&mut c)
        .await
        .unwrap();
}
