//! `killkrill migrate`: apply the database schema and exit.
//!
//! The service runs migrations at start-up too; this command exists for
//! deployments that migrate in a separate step (a Kubernetes job before a
//! rollout, or a Galera cluster, where the migrator takes no lock and must
//! run from one place). The database comes from the same settings the
//! service reads: `DB_TYPE` (default `sqlite` here, in `--data-dir`),
//! `DATABASE_URL` or `DB_HOST`/`DB_PORT`/`DB_USER`/`DB_PASS`/`DB_NAME`,
//! `GALERA_MODE`, `GALERA_NODES`.

use std::io::Write;
use std::path::PathBuf;
use std::process::ExitCode;

use clap::Args;
use killkrill_store::{DbType, Store, StoreConfig};

/// Arguments of `killkrill migrate`.
#[derive(Debug, Clone, Args)]
pub struct MigrateArgs {
    /// Directory of the embedded SQLite database (`killkrill.db`), used
    /// when `DB_TYPE` is `sqlite` or unset and `DATABASE_URL` is unset.
    #[arg(long, default_value = "./killkrill-data")]
    pub data_dir: PathBuf,
}

/// Runs the command with settings read through `env`; reports on `out`/`err`.
pub fn run(
    args: &MigrateArgs,
    env: impl Fn(&str) -> Option<String>,
    mut out: impl Write,
    mut err: impl Write,
) -> ExitCode {
    let cfg = match StoreConfig::from_env(env, DbType::Sqlite, &args.data_dir) {
        Ok(c) => c,
        Err(e) => {
            return report(&mut err, &format!("killkrill migrate: {e}"), 2);
        }
    };
    let target = match (&cfg.url, cfg.db_type) {
        (Some(_), t) => format!("{t} database from DATABASE_URL"),
        (None, DbType::Sqlite) => format!("sqlite database {}", cfg.sqlite.path.display()),
        (None, t) => format!(
            "{t} database {} on {}",
            cfg.name.as_deref().unwrap_or("(default)"),
            cfg.host.as_deref().unwrap_or("(GALERA_NODES)")
        ),
    };
    let rt = match tokio::runtime::Builder::new_current_thread()
        .enable_all()
        .build()
    {
        Ok(rt) => rt,
        Err(e) => {
            return report(
                &mut err,
                &format!("killkrill migrate: starting the runtime: {e}"),
                1,
            );
        }
    };
    let result = rt.block_on(async {
        let store = Store::connect(cfg).await?;
        let n = store.migrate().await;
        store.close().await;
        n
    });
    match result {
        Ok(n) => match writeln!(out, "migrated {target}: schema has {n} migrations") {
            Ok(()) => ExitCode::SUCCESS,
            Err(_) => ExitCode::FAILURE,
        },
        Err(e) => report(&mut err, &format!("killkrill migrate: {target}: {e}"), 1),
    }
}

fn report(err: &mut impl Write, msg: &str, code: u8) -> ExitCode {
    match writeln!(err, "{msg}") {
        Ok(()) => ExitCode::from(code),
        Err(_) => ExitCode::FAILURE,
    }
}
