//! Command-line interface: `killkrill <command>`.
//!
//! Each command lives in its own module with a clap `Args` type and a `run`
//! function; this file only dispatches.

use std::ffi::OsString;
use std::io::Write;
use std::process::ExitCode;

use clap::{Parser, Subcommand};

pub mod admin;
pub mod loadgen;
pub mod migrate;
pub mod parse;
pub mod serve;

/// Killkrill: log and metrics ingestion.
#[derive(Debug, Parser)]
#[command(name = "killkrill", version, about, long_about = None)]
pub struct Cli {
    /// What to run.
    #[command(subcommand)]
    pub command: Command,
}

/// Subcommands.
#[derive(Debug, Subcommand)]
pub enum Command {
    /// Parse a byte stream on stdin and print canonical records or a summary.
    Parse(parse::ParseArgs),
    /// Apply the database schema (migrations) and exit.
    Migrate(migrate::MigrateArgs),
    /// Run every role in one process: HTTP and syslog listeners, workers,
    /// the embedded SQLite store (or DB_TYPE/DATABASE_URL).
    Serve(serve::ServeArgs),
    /// Scale-out receiver: the syslog listeners and the HTTP ingest routes,
    /// enqueueing into the shared Redis queue (REDIS_URL); no workers.
    Receiver(serve::ServeArgs),
    /// Scale-out worker: takes batches from the shared Redis queue and
    /// writes them to the database (DB_TYPE, DATABASE_URL); runs store
    /// maintenance. No listeners but /healthz, /readyz and /metrics on
    /// --http.
    Worker(serve::ServeArgs),
    /// Scale-out API: the HTTP read (query) routes over the database.
    Api(serve::ServeArgs),
    /// Send syslog, HTTP NDJSON or remote_write load to a receiver and
    /// optionally verify that the database holds every acknowledged record.
    Loadgen(loadgen::LoadgenArgs),
    /// Validate the configuration (file, KILLKRILL_* environment, flags)
    /// and print the effective one, without starting.
    CheckConfig(serve::ConfigArgs),
    /// Manage users (add, passwd) in the database.
    #[command(subcommand)]
    User(admin::UserCommand),
    /// Manage API keys (create, revoke) in the database.
    #[command(subcommand)]
    Apikey(admin::ApiKeyCommand),
    /// Print the version.
    Version,
}

/// Parses `args` and runs the command, returning the process exit code.
pub fn run<I, T>(args: I) -> ExitCode
where
    I: IntoIterator<Item = T>,
    T: Into<OsString> + Clone,
{
    let cli = match Cli::try_parse_from(args) {
        Ok(cli) => cli,
        Err(e) => {
            // clap prints help/version to stdout and errors to stderr itself.
            let code = if e.use_stderr() { 2 } else { 0 };
            return match e.print() {
                Ok(()) => ExitCode::from(code),
                Err(_) => ExitCode::from(2),
            };
        }
    };
    match cli.command {
        Command::Parse(args) => {
            let stdin = std::io::stdin().lock();
            let stdout = std::io::stdout().lock();
            let stderr = std::io::stderr().lock();
            parse::run(&args, stdin, stdout, stderr)
        }
        Command::Migrate(args) => migrate::run(
            &args,
            |k| std::env::var(k).ok(),
            std::io::stdout().lock(),
            std::io::stderr(),
        ),
        Command::Serve(args) => run_roles(&args, crate::serve::Roles::ALL),
        Command::Receiver(args) => run_roles(&args, crate::serve::Roles::RECEIVER),
        Command::Worker(args) => run_roles(&args, crate::serve::Roles::WORKER),
        Command::Api(args) => run_roles(&args, crate::serve::Roles::API),
        Command::Loadgen(args) => loadgen::run(&args, std::io::stdout().lock(), std::io::stderr()),
        Command::CheckConfig(args) => {
            serve::check_config(&args, std::io::stdout().lock(), std::io::stderr())
        }
        Command::User(cmd) => admin::run_user(
            &cmd,
            |k| std::env::var(k).ok(),
            std::io::stdin().lock(),
            std::io::stdout().lock(),
            std::io::stderr(),
        ),
        Command::Apikey(cmd) => admin::run_apikey(
            &cmd,
            |k| std::env::var(k).ok(),
            std::io::stdout().lock(),
            std::io::stderr(),
        ),
        Command::Version => {
            let mut out = std::io::stdout().lock();
            match writeln!(out, "killkrill {}", env!("CARGO_PKG_VERSION")) {
                Ok(()) => ExitCode::SUCCESS,
                Err(_) => ExitCode::FAILURE,
            }
        }
    }
}

fn run_roles(args: &serve::ServeArgs, roles: crate::serve::Roles) -> ExitCode {
    serve::run(args, roles, std::io::stdout(), std::io::stderr())
}
