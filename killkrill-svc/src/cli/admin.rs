//! `killkrill user ...` and `killkrill apikey ...`: manage users and API
//! keys directly in the database (the embedded SQLite in `--data-dir`, or
//! the server database from `DB_TYPE`/`DATABASE_URL`/...). Passwords are
//! read from stdin (`--password-stdin`), never from arguments, which other
//! users of the machine can see. Every change is audited with actor `cli`.

use std::io::{BufRead, Write};
use std::path::PathBuf;
use std::process::ExitCode;

use clap::{Args, Subcommand};
use killkrill_core::event::Tenant;
use killkrill_store::auth::{Role, Scope};
use killkrill_store::{DbType, Store, StoreConfig};

use crate::auth::{Auth, AuthError};

/// Where the database is.
#[derive(Debug, Clone, Args)]
pub struct DbArgs {
    /// Directory of the embedded SQLite database, used when `DB_TYPE` is
    /// `sqlite` or unset and `DATABASE_URL` is unset.
    #[arg(long, default_value = "./killkrill-data")]
    pub data_dir: PathBuf,
}

/// `killkrill user`.
#[derive(Debug, Clone, Subcommand)]
pub enum UserCommand {
    /// Create a user; the password is read from stdin.
    Add {
        /// Login email.
        #[arg(long)]
        email: String,
        /// admin, maintainer or viewer.
        #[arg(long)]
        role: String,
        /// Tenant (created when new).
        #[arg(long, default_value = "default")]
        tenant: String,
        /// Read the password from the first line of stdin (required).
        #[arg(long, required = true)]
        password_stdin: bool,
        /// Database.
        #[command(flatten)]
        db: DbArgs,
    },
    /// Set a user's password (read from stdin); ends the user's sessions.
    Passwd {
        /// Login email.
        #[arg(long)]
        email: String,
        /// Read the password from the first line of stdin (required).
        #[arg(long, required = true)]
        password_stdin: bool,
        /// Database.
        #[command(flatten)]
        db: DbArgs,
    },
}

/// `killkrill apikey`.
#[derive(Debug, Clone, Subcommand)]
pub enum ApiKeyCommand {
    /// Create a key and print it (this once).
    Create {
        /// Name.
        #[arg(long)]
        name: String,
        /// Comma-separated: ingest, read, admin.
        #[arg(long)]
        scopes: String,
        /// Tenant (created when new).
        #[arg(long, default_value = "default")]
        tenant: String,
        /// Days until the key expires (none: no expiry).
        #[arg(long)]
        expires_in_days: Option<u32>,
        /// Database.
        #[command(flatten)]
        db: DbArgs,
    },
    /// Revoke the live keys of a tenant with this name.
    Revoke {
        /// Name.
        #[arg(long)]
        name: String,
        /// Tenant.
        #[arg(long, default_value = "default")]
        tenant: String,
        /// Database.
        #[command(flatten)]
        db: DbArgs,
    },
}

fn fail(err: &mut impl Write, msg: &str, code: u8) -> ExitCode {
    let _ = writeln!(err, "killkrill: {msg}");
    ExitCode::from(code)
}

/// Prints the outcome: the message on stdout, or the error on stderr with
/// its exit code.
fn finish(
    result: Result<String, (String, u8)>,
    out: &mut impl Write,
    err: &mut impl Write,
) -> ExitCode {
    match result {
        Ok(msg) => match writeln!(out, "{msg}") {
            Ok(()) => ExitCode::SUCCESS,
            Err(_) => ExitCode::FAILURE,
        },
        Err((msg, code)) => fail(err, &msg, code),
    }
}

fn tenant(name: &str) -> Result<Tenant, String> {
    Tenant::new(name).map_err(|e| format!("--tenant: {e}"))
}

fn read_password(stdin: impl BufRead) -> Result<String, String> {
    let mut line = String::new();
    stdin
        .take(4096)
        .read_line(&mut line)
        .map_err(|e| format!("reading the password from stdin: {e}"))?;
    let pw = line.trim_end_matches(['\n', '\r']).to_owned();
    if pw.is_empty() {
        return Err("no password on stdin".into());
    }
    Ok(pw)
}

fn runtime() -> Result<tokio::runtime::Runtime, String> {
    tokio::runtime::Builder::new_current_thread()
        .enable_all()
        .build()
        .map_err(|e| format!("starting the runtime: {e}"))
}

async fn open(db: &DbArgs, env: &dyn Fn(&str) -> Option<String>) -> Result<(Store, Auth), String> {
    let cfg =
        StoreConfig::from_env(env, DbType::Sqlite, &db.data_dir).map_err(|e| e.to_string())?;
    let store = Store::open(cfg)
        .await
        .map_err(|e| format!("database: {e}"))?;
    let auth = Auth::for_cli(&store, Tenant::default());
    Ok((store, auth))
}

fn shown(e: AuthError) -> String {
    match e {
        AuthError::Store(e) => format!("database: {e}"),
        other => other.to_string(),
    }
}

/// Runs `killkrill user ...`.
pub fn run_user(
    cmd: &UserCommand,
    env: impl Fn(&str) -> Option<String>,
    stdin: impl BufRead,
    mut out: impl Write,
    mut err: impl Write,
) -> ExitCode {
    let rt = match runtime() {
        Ok(r) => r,
        Err(e) => return fail(&mut err, &e, 1),
    };
    let result: Result<String, (String, u8)> = rt.block_on(async {
        match cmd {
            UserCommand::Add {
                email,
                role,
                tenant: t,
                db,
                ..
            } => {
                let role: Role = role
                    .parse()
                    .map_err(|e: String| (format!("--role: {e}"), 2))?;
                let t = tenant(t).map_err(|e| (e, 2))?;
                let pw = read_password(stdin).map_err(|e| (e, 2))?;
                let (store, auth) = open(db, &env).await.map_err(|e| (e, 1))?;
                let r = auth.create_user(email, &pw, role, &t).await;
                let (res, detail) = match &r {
                    Ok(id) => ("ok", format!("id {id}, role {role}")),
                    Err(e) => ("failed", e.to_string()),
                };
                auth.audit(&t, "cli", "user.create", email, "cli", res, &detail)
                    .await;
                store.close().await;
                let id = r.map_err(|e| (shown(e), 1))?;
                Ok(format!(
                    "created user {email} (id {id}, role {role}, tenant {t})"
                ))
            }
            UserCommand::Passwd { email, db, .. } => {
                let pw = read_password(stdin).map_err(|e| (e, 2))?;
                let (store, auth) = open(db, &env).await.map_err(|e| (e, 1))?;
                let u = auth
                    .store()
                    .user_by_email(email)
                    .await
                    .map_err(|e| (format!("database: {e}"), 1))?
                    .ok_or_else(|| (format!("no user {email}"), 1))?;
                let r = auth.set_password(u.id, &pw).await;
                auth.audit(
                    &u.tenant,
                    "cli",
                    "user.password",
                    email,
                    "cli",
                    if r.is_ok() { "ok" } else { "failed" },
                    "",
                )
                .await;
                store.close().await;
                r.map_err(|e| (shown(e), 1))?;
                Ok(format!(
                    "password of {email} changed; its sessions are ended"
                ))
            }
        }
    });
    finish(result, &mut out, &mut err)
}

/// Runs `killkrill apikey ...`.
pub fn run_apikey(
    cmd: &ApiKeyCommand,
    env: impl Fn(&str) -> Option<String>,
    mut out: impl Write,
    mut err: impl Write,
) -> ExitCode {
    let rt = match runtime() {
        Ok(r) => r,
        Err(e) => return fail(&mut err, &e, 1),
    };
    let result: Result<String, (String, u8)> = rt.block_on(async {
        match cmd {
            ApiKeyCommand::Create {
                name,
                scopes,
                tenant: t,
                expires_in_days,
                db,
            } => {
                let scopes =
                    Scope::parse_list(scopes).map_err(|e| (format!("--scopes: {e}"), 2))?;
                let t = tenant(t).map_err(|e| (e, 2))?;
                let expires_at = expires_in_days
                    .map(|d| crate::auth::now_nanos() + i64::from(d) * 86_400 * 1_000_000_000);
                let (store, auth) = open(db, &env).await.map_err(|e| (e, 1))?;
                let r = auth
                    .create_api_key(&t, name, scopes.clone(), expires_at, "cli")
                    .await;
                let (res, detail) = match &r {
                    Ok((id, _)) => ("ok", format!("id {id}, scopes {}", Scope::join(&scopes))),
                    Err(e) => ("failed", e.to_string()),
                };
                auth.audit(&t, "cli", "apikey.create", name, "cli", res, &detail)
                    .await;
                store.close().await;
                let (_, key) = r.map_err(|e| (shown(e), 1))?;
                // The key alone on stdout, so scripts can capture it.
                Ok(key)
            }
            ApiKeyCommand::Revoke {
                name,
                tenant: t,
                db,
            } => {
                let t = tenant(t).map_err(|e| (e, 2))?;
                let (store, auth) = open(db, &env).await.map_err(|e| (e, 1))?;
                let n = auth
                    .store()
                    .revoke_api_key_named(&t, name)
                    .await
                    .map_err(|e| (format!("database: {e}"), 1))?;
                auth.audit(
                    &t,
                    "cli",
                    "apikey.revoke",
                    name,
                    "cli",
                    if n > 0 { "ok" } else { "not_found" },
                    &format!("{n} revoked"),
                )
                .await;
                store.close().await;
                if n == 0 {
                    return Err((format!("no live API key named {name} in tenant {t}"), 1));
                }
                Ok(format!("revoked {n} API key(s) named {name} in tenant {t}"))
            }
        }
    });
    finish(result, &mut out, &mut err)
}
