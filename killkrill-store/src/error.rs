//! Classifying sqlx errors into [`StoreError`] kinds, in one place.
//!
//! Callers decide on retries from the kind, never from SQLSTATE or MySQL
//! error numbers. The table:
//!
//! | cause | kind |
//! |---|---|
//! | I/O, TLS, pool timeout, lost connection, PG `08xxx`/`57P0x`/`53xxx`, MySQL 2006/2013 | Retryable |
//! | PG `40001`/`40P01`, MySQL 1213 (deadlock, Galera certification), 1205 (lock wait), 1047/1180 (WSREP not ready) | Retryable |
//! | SQLite `BUSY`/`LOCKED` | Retryable |
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
            5 | 6 => ErrorKind::Retryable,
            19 if n == 1555 || n == 2067 => ErrorKind::Conflict,
            _ => ErrorKind::Fatal,
        };
    }
    // PostgreSQL SQLSTATE.
    match code.as_str() {
        "40001" | "40P01" | "55P03" | "57P01" | "57P02" | "57P03" => ErrorKind::Retryable,
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
}
