//! `killkrill migrate` end to end: the real binary against SQLite, and
//! against PostgreSQL/MySQL when their test URLs are set.

use std::process::Command;

fn killkrill() -> Command {
    Command::new(env!("CARGO_BIN_EXE_killkrill"))
}

#[test]
fn migrates_the_embedded_sqlite_database_idempotently() {
    let dir = tempfile::tempdir().unwrap();
    for _ in 0..2 {
        let out = killkrill()
            .args(["migrate", "--data-dir"])
            .arg(dir.path())
            .env_remove("DB_TYPE")
            .env_remove("DATABASE_URL")
            .output()
            .unwrap();
        let stdout = String::from_utf8_lossy(&out.stdout);
        assert!(
            out.status.success(),
            "{stdout} {}",
            String::from_utf8_lossy(&out.stderr)
        );
        assert!(stdout.starts_with("migrated sqlite database "), "{stdout}");
        assert!(
            stdout.contains(&format!(
                "killkrill.db: schema has {} migrations",
                migrations("sqlite")
            )),
            "{stdout}"
        );
    }
    assert!(dir.path().join("killkrill.db").exists());
}

#[test]
fn bad_db_type_is_a_usage_error_naming_the_valid_values() {
    let out = killkrill()
        .arg("migrate")
        .env("DB_TYPE", "oracle")
        .output()
        .unwrap();
    assert_eq!(out.status.code(), Some(2));
    assert_eq!(
        String::from_utf8_lossy(&out.stderr).trim(),
        "killkrill migrate: unknown DB_TYPE \"oracle\": expected one of postgres, mysql, sqlite"
    );
}

fn unique() -> String {
    let n = std::time::SystemTime::now()
        .duration_since(std::time::UNIX_EPOCH)
        .expect("clock after 1970")
        .as_nanos() as u64;
    format!("kk_migrate_{:x}", n ^ u64::from(std::process::id()))
}

#[test]
fn migrates_server_databases_when_configured() {
    use sqlx::{Connection, Executor};
    let rt = tokio::runtime::Builder::new_current_thread()
        .enable_all()
        .build()
        .unwrap();
    for (db_type, var) in [
        ("postgres", "KILLKRILL_TEST_POSTGRES_URL"),
        ("mysql", "KILLKRILL_TEST_MYSQL_URL"),
    ] {
        let Ok(url) = std::env::var(var) else {
            #[allow(clippy::print_stderr)]
            {
                eprintln!("skipping {db_type}: {var} is not set");
            }
            continue;
        };
        // A fresh schema (PostgreSQL) or database (MySQL), dropped after.
        let name = unique();
        let (scoped, create, drop) = if db_type == "postgres" {
            let sep = if url.contains('?') { '&' } else { '?' };
            (
                format!("{url}{sep}options=-c%20search_path%3D{name}"),
                format!("CREATE SCHEMA {name}"),
                format!("DROP SCHEMA {name} CASCADE"),
            )
        } else {
            let base = url.rsplit_once('/').unwrap().0;
            (
                format!("{base}/{name}"),
                format!("CREATE DATABASE {name}"),
                format!("DROP DATABASE {name}"),
            )
        };
        let admin = |sql: String| {
            rt.block_on(async {
                if db_type == "postgres" {
                    let mut c = sqlx::PgConnection::connect(&url).await.unwrap();
                    c.execute(sqlx::AssertSqlSafe(sql)).await.unwrap();
                } else {
                    let mut c = sqlx::MySqlConnection::connect(&url).await.unwrap();
                    c.execute(sqlx::AssertSqlSafe(sql)).await.unwrap();
                }
            })
        };
        admin(create);
        for _ in 0..2 {
            let out = killkrill()
                .arg("migrate")
                .env("DB_TYPE", db_type)
                .env("DATABASE_URL", &scoped)
                .output()
                .unwrap();
            assert!(
                out.status.success(),
                "{db_type}: {}",
                String::from_utf8_lossy(&out.stderr)
            );
            let stdout = String::from_utf8_lossy(&out.stdout);
            assert!(
                stdout.contains(&format!(
                    "migrated {db_type} database from DATABASE_URL: schema has {} migrations",
                    migrations(db_type)
                )),
                "{stdout}"
            );
        }
        admin(drop);
    }
}

/// How many migrations the store ships for `db_type` (its `.sql` files).
fn migrations(db_type: &str) -> usize {
    let dir = format!(
        "{}/../killkrill-store/migrations/{db_type}",
        env!("CARGO_MANIFEST_DIR")
    );
    std::fs::read_dir(&dir)
        .unwrap_or_else(|e| panic!("{dir}: {e}"))
        .filter(|e| {
            e.as_ref()
                .is_ok_and(|e| e.path().extension().is_some_and(|x| x == "sql"))
        })
        .count()
}
