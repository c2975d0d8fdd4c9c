//! Schema migrations, one folder per backend, embedded at build time.
//!
//! `sqlx::migrate!` reads `migrations/{postgres,mysql,sqlite}` when this
//! crate is compiled, so no database is needed to build and the binary
//! carries its schema. Migrations run at start-up ([`crate::Store::open`])
//! and alone with `killkrill migrate`. In Galera mode the migrator's
//! `GET_LOCK` advisory lock is turned off (Galera does not replicate it).

use killkrill_core::storage::{ErrorKind, StoreError};

use crate::backend::Backend;

/// Applies every pending migration.
///
/// # Errors
/// [`ErrorKind::Fatal`] when a migration fails or the applied ones differ
/// from the embedded ones (a changed migration file).
pub(crate) async fn run(backend: &Backend, galera: bool) -> Result<usize, StoreError> {
    let fail = |e: sqlx::migrate::MigrateError| {
        let kind = match &e {
            sqlx::migrate::MigrateError::Execute(inner) => crate::error::kind_of(inner),
            _ => ErrorKind::Fatal,
        };
        StoreError::with_source(kind, "running migrations", e)
    };
    match backend {
        Backend::Postgres(p) => {
            let m = sqlx::migrate!("./migrations/postgres");
            m.run(p).await.map_err(fail)?;
            Ok(m.iter().count())
        }
        Backend::MySql(p) => {
            let mut m = sqlx::migrate!("./migrations/mysql");
            if galera {
                m.set_locking(false);
            }
            m.run(p).await.map_err(fail)?;
            Ok(m.iter().count())
        }
        Backend::Sqlite { writer, .. } => {
            let m = sqlx::migrate!("./migrations/sqlite");
            m.run(writer).await.map_err(fail)?;
            Ok(m.iter().count())
        }
    }
}
