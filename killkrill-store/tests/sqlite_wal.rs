//! The SQLite store's writer connection: its WAL checkpoint setting.
#![allow(clippy::unwrap_used)]

use killkrill_store::{Store, StoreConfig};

/// The SQLite writer checkpoints the WAL on commit past
/// `sqlite.wal_autocheckpoint_pages`, not SQLite's 1,000: the setting is on
/// the writer's connection, and a WAL grown past it is copied back.
#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn sqlite_writer_checkpoints_at_the_configured_wal_size() {
    use killkrill_store::Backend as Pools;
    use sqlx::Row;
    for pages in [16_384u32, 200] {
        let dir = tempfile::tempdir().unwrap();
        let mut cfg = StoreConfig::sqlite(dir.path());
        cfg.sqlite.synchronous = killkrill_store::SqliteSync::Off;
        cfg.sqlite.wal_autocheckpoint_pages = pages;
        let store = Store::open(cfg).await.unwrap();
        let Pools::Sqlite { writer, .. } = store.backend() else {
            panic!("a SQLite store")
        };
        let got: i64 = sqlx::query("PRAGMA wal_autocheckpoint")
            .fetch_one(writer)
            .await
            .unwrap()
            .try_get(0)
            .unwrap();
        assert_eq!(got, i64::from(pages));
        // 3 MiB in commits of 100 KiB: past 200 pages (800 KiB) a commit
        // checkpoints, so the database file holds them; below 16,384 they
        // all stay in the WAL.
        sqlx::query("CREATE TABLE wal_probe (b BLOB)")
            .execute(writer)
            .await
            .unwrap();
        for _ in 0..30 {
            sqlx::query("INSERT INTO wal_probe VALUES (randomblob(102400))")
                .execute(writer)
                .await
                .unwrap();
        }
        let db = std::fs::metadata(dir.path().join("killkrill.db"))
            .unwrap()
            .len();
        let wal = std::fs::metadata(dir.path().join("killkrill.db-wal"))
            .unwrap()
            .len();
        if pages == 200 {
            assert!(
                db > 1 << 20,
                "checkpointed into the file: db {db} B, WAL {wal} B"
            );
        } else {
            assert!(
                wal > 1 << 20 && db < 1 << 20,
                "kept in the WAL: db {db} B, WAL {wal} B"
            );
        }
        store.close().await;
    }
}
