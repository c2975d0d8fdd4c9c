//! Classifying sqlx errors into [`StoreError`] kinds, in one place.
//!
//! Callers decide on retries from the kind, never from SQLSTATE or MySQL
//! error numbers. The table:
//!
//! | cause | kind |
//! |---|---|
//! | I/O, TLS, pool timeout, lost connection, PG `08xxx`/`57P0x`/`53xxx`/`58030` (I/O), MySQL 2006/2013 | Retryable |
//! | PG `40001`/`40P01`, MySQL 1213 (deadlock, Galera certification), 1205 (lock wait), 1047/1180 (WSREP not ready) | Retryable |
//! | PG `57014` (statement timeout, cancelled), `25006` (read-only: a standby or a failover in progress); MySQL 1290 (`--read-only`), 1040 (too many connections), 1021 (disk full), 1969/3024 (statement timeout) | Retryable |
//! | SQLite `BUSY`/`LOCKED`, `IOERR`, `FULL` (the disk or `max_page_count`: space may be freed) | Retryable |
//! | unique violation (PG `23505`, MySQL 1062, SQLite 1555/2067) | Conflict |
//! | row not found | NotFound |
//! | configuration | Invalid |
//! | decode errors, migrations, everything else | Fatal |

use killkrill_core::storage::{ErrorKind, StoreError};
use sqlx::error::DatabaseError;

/// MySQL error numbers that mean "try again".
const MYSQL_RETRYABLE: &[u16] = &[
    1213, // ER_LOCK_DEADLOCK, also Galera certification failures
    1205, // ER_LOCK_WAIT_TIMEOUT
    1047, // ER_UNKNOWN_COM_ERROR: "WSREP has not yet prepared node for application use"
    1180, // ER_ERROR_DURING_COMMIT (wsrep)
    2006, // server has gone away
    2013, // lost connection during query
    1927, // ER_CONNECTION_KILLED
    1290, // ER_OPTION_PREVENTS_STATEMENT: --read-only (a replica, a failover)
    1040, // ER_CON_COUNT_ERROR: too many connections
    1021, // ER_DISK_FULL
    1969, // ER_STATEMENT_TIMEOUT (MariaDB max_statement_time)
    3024, // ER_QUERY_TIMEOUT (MySQL max_execution_time)
];

/// The kind of a database error.
pub fn kind_of(e: &sqlx::Error) -> ErrorKind {
    match e {
        sqlx::Error::Io(_)
        | sqlx::Error::Tls(_)
        | sqlx::Error::PoolTimedOut
        | sqlx::Error::WorkerCrashed
        | sqlx::Error::Protocol(_) => ErrorKind::Retryable,
        sqlx::Error::RowNotFound => ErrorKind::NotFound,
        sqlx::Error::Configuration(_) => ErrorKind::Invalid,
        sqlx::Error::Database(db) => database_kind(db.as_ref()),
        _ => ErrorKind::Fatal,
    }
}

fn database_kind(db: &(dyn DatabaseError + 'static)) -> ErrorKind {
    if let Some(m) = db.try_downcast_ref::<sqlx::mysql::MySqlDatabaseError>() {
        let n = m.number();
        if MYSQL_RETRYABLE.contains(&n) {
            return ErrorKind::Retryable;
        }
        if n == 1062 {
            return ErrorKind::Conflict;
        }
        return ErrorKind::Fatal;
    }
    let code = db.code().map(|c| c.into_owned()).unwrap_or_default();
    if db.try_downcast_ref::<sqlx::sqlite::SqliteError>().is_some() {
        // Extended result codes; the primary code is the low byte.
        let n: i64 = code.parse().unwrap_or(-1);
        return match n & 0xFF {
            // BUSY, LOCKED, IOERR, FULL.
            5 | 6 | 10 | 13 => ErrorKind::Retryable,
            19 if n == 1555 || n == 2067 => ErrorKind::Conflict,
            _ => ErrorKind::Fatal,
        };
    }
    // PostgreSQL SQLSTATE.
    match code.as_str() {
        "40001" | "40P01" | "55P03" | "57P01" | "57P02" | "57P03" | "57014" | "25006" | "58030" => {
            ErrorKind::Retryable
        }
        c if c.starts_with("08") || c.starts_with("53") => ErrorKind::Retryable,
        "23505" => ErrorKind::Conflict,
        _ => ErrorKind::Fatal,
    }
}

/// Wraps a database error with what was being done.
pub fn db_error(context: impl Into<std::borrow::Cow<'static, str>>, e: sqlx::Error) -> StoreError {
    StoreError::with_source(kind_of(&e), context, e)
}

/// Maps `Result<T, sqlx::Error>` to `Result<T, StoreError>` with context.
pub(crate) trait Context<T> {
    fn ctx(self, context: &'static str) -> Result<T, StoreError>;
}

impl<T> Context<T> for Result<T, sqlx::Error> {
    fn ctx(self, context: &'static str) -> Result<T, StoreError> {
        self.map_err(|e| db_error(context, e))
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn non_database_errors() {
        let cases: Vec<(sqlx::Error, ErrorKind)> = vec![
            (sqlx::Error::PoolTimedOut, ErrorKind::Retryable),
            (
                sqlx::Error::Io(std::io::Error::other("reset")),
                ErrorKind::Retryable,
            ),
            (sqlx::Error::RowNotFound, ErrorKind::NotFound),
            (
                sqlx::Error::Configuration("bad url".into()),
                ErrorKind::Invalid,
            ),
            (sqlx::Error::PoolClosed, ErrorKind::Fatal),
        ];
        for (e, want) in cases {
            let got = kind_of(&e);
            assert_eq!(got, want, "{e}");
        }
    }

    /// A database error provoked on a real SQLite database: `FULL` when the
    /// file may not grow (as on a full disk).
    #[tokio::test]
    async fn sqlite_full_is_retryable() {
        use sqlx::Connection;
        let mut c = sqlx::SqliteConnection::connect("sqlite::memory:")
            .await
            .unwrap();
        sqlx::query("CREATE TABLE t (b BLOB)")
            .execute(&mut c)
            .await
            .unwrap();
        sqlx::query("PRAGMA max_page_count = 8")
            .execute(&mut c)
            .await
            .unwrap();
        let mut err = None;
        for _ in 0..64 {
            if let Err(e) = sqlx::query("INSERT INTO t VALUES (zeroblob(4096))")
                .execute(&mut c)
                .await
            {
                err = Some(e);
                break;
            }
        }
        let e = err.expect("the table never filled the capped database");
        assert!(e.to_string().contains("full"), "{e}");
        assert_eq!(kind_of(&e), ErrorKind::Retryable, "{e}");
    }

    /// PostgreSQL's statement timeout (`57014`) and a write in a read-only
    /// transaction (`25006`, what a standby answers) are retryable.
    #[tokio::test]
    async fn postgres_timeout_and_read_only_are_retryable() {
        use sqlx::Connection;
        let Ok(url) = std::env::var("KILLKRILL_TEST_POSTGRES_URL") else {
            eprintln!("skipped: KILLKRILL_TEST_POSTGRES_URL is not set");
            return;
        };
        let mut c = sqlx::PgConnection::connect(&url).await.unwrap();
        sqlx::query("SET statement_timeout = 10")
            .execute(&mut c)
            .await
            .unwrap();
        let e = sqlx::query("SELECT pg_sleep(2)")
            .execute(&mut c)
            .await
            .unwrap_err();
        assert_eq!(
            e.as_database_error().and_then(|d| d.code()).as_deref(),
            Some("57014")
        );
        assert_eq!(kind_of(&e), ErrorKind::Retryable, "{e}");
        sqlx::query("SET statement_timeout = 0")
            .execute(&mut c)
            .await
            .unwrap();
        let mut tx = c.begin().await.unwrap();
        sqlx::query("SET TRANSACTION READ ONLY")
            .execute(&mut *tx)
            .await
            .unwrap();
        let e = sqlx::query("CREATE TABLE kk_read_only_probe (x int)")
            .execute(&mut *tx)
            .await
            .unwrap_err();
        assert_eq!(
            e.as_database_error().and_then(|d| d.code()).as_deref(),
            Some("25006")
        );
        assert_eq!(kind_of(&e), ErrorKind::Retryable, "{e}");
    }
}
