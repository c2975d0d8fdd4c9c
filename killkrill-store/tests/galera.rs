//! Galera mode against a real one-node MariaDB Galera cluster
//! (`scripts/galera-node` starts one; `.ci/run` exports its URL as
//! `KILLKRILL_TEST_GALERA_URL`) and against plain MariaDB with
//! `GALERA_MODE=true`.
//!
//! What one node cannot show, and so is not tested here: certification
//! conflicts between two nodes writing the same rows (they surface as the
//! same error 1213 that the deadlock case below produces for real), reads
//! on one node waiting for writes applied on another (`wsrep_sync_wait` is
//! checked to be set, not observed to wait), failover between nodes at run
//! time, and writeset limits of a real cluster (transactions are split under
//! 16 MiB by construction; see the unit test of `transactions`).
#![allow(clippy::print_stderr)]

mod support;

use std::time::{Duration, Instant};

use killkrill_core::event::{NANOS_PER_SEC, Tenant};
use killkrill_core::logblock::BlockOptions;
use killkrill_core::logquery::{LogFilter, Order};
use killkrill_core::storage::{CompactionOptions, ErrorKind, compact_tenant};
use killkrill_store::{Backend as Pools, DbType, Store, StoreConfig};
use sqlx::{Connection, Executor, MySqlConnection, Row};
use support::{naive, query, record, walk};

const T0: i64 = 1_764_000_000 * NANOS_PER_SEC;

/// `host:port` of a mysql:// URL.
fn host_port(url: &str) -> String {
    let rest = url.trim_start_matches("mysql://");
    let after_at = rest.rsplit_once('@').map_or(rest, |(_, h)| h);
    after_at.split('/').next().unwrap_or(after_at).to_owned()
}

fn galera_config(url: &str, db: &str, nodes: Vec<String>) -> StoreConfig {
    let mut cfg = StoreConfig::from_env(
        |k| match k {
            "DB_TYPE" => Some("mysql".into()),
            "DB_USER" => Some("root".into()),
            "DB_NAME" => Some(db.into()),
            "GALERA_MODE" => Some("true".into()),
            "GALERA_NODES" => Some(nodes.join(",")),
            _ => None,
        },
        DbType::Sqlite,
        ".",
    )
    .expect("config");
    assert!(
        cfg.url.is_none(),
        "{url}: nodes, not a URL, pick the server"
    );
    cfg.retry.attempts = 40;
    cfg.retry.initial_backoff_ms = 50;
    cfg.retry.max_backoff_ms = 300;
    cfg.retry.connect_for_secs = 30;
    cfg
}

async fn sync_wait(store: &Store) -> i64 {
    let Pools::MySql(pool) = store.backend() else {
        panic!("not mysql")
    };
    sqlx::query("SELECT CAST(@@SESSION.wsrep_sync_wait AS SIGNED)")
        .fetch_one(pool)
        .await
        .expect("read wsrep_sync_wait")
        .try_get::<i64, _>(0)
        .expect("int")
}

async fn wsrep_ready(url: &str) -> Option<bool> {
    let mut c = MySqlConnection::connect(url).await.ok()?;
    let r = sqlx::query("SHOW STATUS LIKE 'wsrep_ready'")
        .fetch_one(&mut c)
        .await
        .ok()?;
    let v: String = r.try_get(1).ok()?;
    Some(v == "ON")
}

/// Takes the node out of (or back into) a primary component. Changing
/// `wsrep_cluster_address` restarts the provider, which may drop the
/// connection that asked, so each step uses a fresh connection.
async fn set_ready(url: &str, ready: bool) {
    if wsrep_ready(url).await == Some(ready) {
        return;
    }
    let addr = if ready { "gcomm://" } else { "" };
    let mut c = MySqlConnection::connect(url)
        .await
        .expect("connect to change wsrep_cluster_address");
    if let Err(e) = c
        .execute(sqlx::AssertSqlSafe(format!(
            "SET GLOBAL wsrep_cluster_address = '{addr}'"
        )))
        .await
    {
        eprintln!(
            "changing wsrep_cluster_address: {e} (the provider restart may drop the connection)"
        );
    }
    for _ in 0..200 {
        if wsrep_ready(url).await == Some(ready) {
            return;
        }
        tokio::time::sleep(Duration::from_millis(100)).await;
    }
    panic!("node did not become ready={ready}");
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn galera_mode_on_a_real_galera_node() {
    let Some(url) = std::env::var("KILLKRILL_TEST_GALERA_URL")
        .ok()
        .filter(|u| !u.is_empty())
    else {
        eprintln!(
            "skipping galera: KILLKRILL_TEST_GALERA_URL is not set (scripts/galera-node starts a node)"
        );
        return;
    };
    set_ready(&url, true).await; // a previous run may have died mid-test
    let (_, db) = support::mysql_database(&url).await;
    let node = host_port(&url);
    let opts = BlockOptions {
        max_records: 100,
        threads: 2,
        ..BlockOptions::default()
    };

    // An unreachable first node is skipped; migrations run without GET_LOCK.
    let cfg = galera_config(&url, &db, vec!["127.0.0.1:1".into(), node.clone()]);
    let store = Store::open(cfg.clone())
        .await
        .expect("open in galera mode")
        .with_block_options(opts.clone());
    assert_eq!(
        sync_wait(&store).await,
        1,
        "wsrep_sync_wait set per connection"
    );

    // Writes, reads, compaction and retention work as on any backend.
    let t = Tenant::new("galera").unwrap();
    let data: Vec<_> = (0..1500)
        .map(|i| record(&t, i, T0 + i as i64 * NANOS_PER_SEC / 100))
        .collect();
    for chunk in data.chunks(250) {
        store.write_records(chunk.to_vec()).await.expect("write");
    }
    let again = store
        .write_records(data[..250].to_vec())
        .await
        .expect("rewrite");
    assert_eq!(again.blocks_written, 0);
    let copts = CompactionOptions {
        target_records: 400,
        small_below: 200,
        block: opts.clone(),
        ..CompactionOptions::default()
    };
    compact_tenant(&store, &t, &copts).await.expect("compact");
    let q = query(
        &t,
        LogFilter {
            text: Some("disk".into()),
            ..LogFilter::default()
        },
        Order::NewestFirst,
        50,
    );
    assert_eq!(walk(&store, q.clone()).await, naive(&data, &q));

    // A real deadlock (error 1213, what certification conflicts also
    // return) is classified retryable.
    let mut admin = MySqlConnection::connect(&url)
        .await
        .expect("connect to the galera node");
    admin
        .execute(sqlx::AssertSqlSafe(format!(
            "CREATE TABLE {db}.dl (id INT PRIMARY KEY, v INT)"
        )))
        .await
        .expect("create");
    admin
        .execute(sqlx::AssertSqlSafe(format!(
            "INSERT INTO {db}.dl VALUES (1, 0), (2, 0)"
        )))
        .await
        .expect("insert");
    let scoped = format!(
        "{}/{db}",
        url.rsplit_once('/').expect("url has a database").0
    );
    let mut a = MySqlConnection::connect(&scoped).await.expect("a");
    let mut b = MySqlConnection::connect(&scoped).await.expect("b");
    a.execute("BEGIN").await.expect("begin a");
    b.execute("BEGIN").await.expect("begin b");
    a.execute("UPDATE dl SET v = 1 WHERE id = 1")
        .await
        .expect("a1");
    b.execute("UPDATE dl SET v = 2 WHERE id = 2")
        .await
        .expect("b2");
    let blocked = tokio::spawn(async move {
        let r = a
            .execute("UPDATE dl SET v = 1 WHERE id = 2")
            .await
            .map(|_| ());
        (a, r)
    });
    tokio::time::sleep(Duration::from_millis(300)).await;
    let rb = b
        .execute("UPDATE dl SET v = 2 WHERE id = 1")
        .await
        .map(|_| ());
    let (_a, ra) = blocked.await.expect("join");
    let err = ra.err().or(rb.err()).expect("one side deadlocks");
    assert_eq!(
        killkrill_store::error::kind_of(&err),
        ErrorKind::Retryable,
        "{err}"
    );
    assert!(
        err.to_string().contains("1213") || err.to_string().to_lowercase().contains("deadlock"),
        "{err}"
    );

    // The node loses its primary component (wsrep_ready=OFF, error 1047 for
    // every statement); a write retries with backoff until it is back.
    set_ready(&url, false).await;
    let u = url.clone();
    let heal = tokio::spawn(async move {
        tokio::time::sleep(Duration::from_millis(1500)).await;
        set_ready(&u, true).await;
    });
    let started = Instant::now();
    let more: Vec<_> = (5000..5100).map(|i| record(&t, i, T0 + i as i64)).collect();
    let rep = store
        .write_records(more.clone())
        .await
        .expect("write survives a not-ready node");
    assert_eq!(rep.records_written, 100);
    assert!(
        started.elapsed() >= Duration::from_millis(1000),
        "the write waited for the node"
    );
    heal.await.expect("heal");

    // Start-up against a node that is not ready yet: retried, not fatal.
    set_ready(&url, false).await;
    let u = url.clone();
    let heal = tokio::spawn(async move {
        tokio::time::sleep(Duration::from_millis(1500)).await;
        set_ready(&u, true).await;
    });
    let started = Instant::now();
    let second = Store::connect(galera_config(&url, &db, vec![node]))
        .await
        .expect("connect retried until ready");
    assert!(started.elapsed() >= Duration::from_millis(1000));
    heal.await.expect("heal");
    let all = walk(
        &second,
        query(&t, LogFilter::default(), Order::OldestFirst, 1000),
    )
    .await;
    assert_eq!(all.len(), 1600);

    second.close().await;
    store.close().await;
    let mut admin = MySqlConnection::connect(&url).await.expect("connect");
    admin
        .execute(sqlx::AssertSqlSafe(format!("DROP DATABASE {db}")))
        .await
        .expect("drop");
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn galera_mode_on_plain_mariadb_runs_as_plain_mysql() {
    let Some(url) = support::mysql_url().await else {
        return;
    };
    let (_, db) = support::mysql_database(&url).await;
    let cfg = galera_config(&url, &db, vec![host_port(&url)]);
    let store = Store::open(cfg).await.expect("open");
    // MariaDB without a provider accepts the setting (it has no effect).
    assert_eq!(sync_wait(&store).await, 1);
    let t = Tenant::new("plain").unwrap();
    let data: Vec<_> = (0..50).map(|i| record(&t, i, T0 + i as i64)).collect();
    store.write_records(data.clone()).await.expect("write");
    let q = query(&t, LogFilter::default(), Order::NewestFirst, 7);
    assert_eq!(walk(&store, q.clone()).await, naive(&data, &q));
    store.close().await;
    let mut c = MySqlConnection::connect(&url).await.expect("connect");
    c.execute(sqlx::AssertSqlSafe(format!("DROP DATABASE {db}")))
        .await
        .expect("drop");
}

/// Metrics in Galera mode: writes (chunk insert-if-absent, series upsert),
/// a rewrite, reads and retention on a real Galera node.
#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn metrics_on_a_real_galera_node() {
    use killkrill_core::event::{Labels, MetricSample, Timestamp};
    use killkrill_core::storage::{LabelMatcher, MatchOp, MetricStore, TimeRange};

    let Some(url) = std::env::var("KILLKRILL_TEST_GALERA_URL")
        .ok()
        .filter(|u| !u.is_empty())
    else {
        eprintln!(
            "skipping galera metrics: KILLKRILL_TEST_GALERA_URL is not set (scripts/galera-node starts a node)"
        );
        return;
    };
    let (_, db) = support::mysql_database(&url).await;
    let cfg = galera_config(&url, &db, vec![host_port(&url)]);
    let store = Store::open(cfg).await.expect("open in galera mode");
    let t = Tenant::new("galera-metrics").unwrap();
    let samples: Vec<MetricSample> = (0..500)
        .flat_map(|s| {
            (0..20).map(move |k| MetricSample {
                name: "g".into(),
                labels: Labels::from_pairs([("s", s.to_string())]),
                value: f64::from(k),
                timestamp: Some(Timestamp::from_nanos(T0 + i64::from(k) * NANOS_PER_SEC)),
                ..MetricSample::default()
            })
        })
        .collect();
    let rep = store.write_samples(&t, &samples).await.expect("write");
    assert_eq!((rep.series, rep.chunks_written), (500, 500));
    let again = store.write_samples(&t, &samples).await.expect("rewrite");
    assert_eq!((again.chunks_written, again.chunks_skipped), (0, 500));
    let m = LabelMatcher::new("s", MatchOp::Re, "4..").unwrap();
    let got = store
        .select_samples(&t, &[m], TimeRange::ALL)
        .await
        .expect("read");
    assert_eq!(got.len(), 100);
    assert!(got.iter().all(|s| s.points.len() == 20));
    let ret = store
        .apply_retention(&t, Timestamp::from_nanos(T0 + 100 * 3_600 * NANOS_PER_SEC))
        .await
        .expect("retention");
    assert_eq!((ret.chunks, ret.series), (500, 500));
    store.close().await;
    let mut admin = MySqlConnection::connect(&url).await.expect("connect");
    admin
        .execute(sqlx::AssertSqlSafe(format!("DROP DATABASE {db}")))
        .await
        .expect("drop");
}
