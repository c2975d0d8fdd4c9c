//! # killkrill-svc
//!
//! The `killkrill` binary's library: command-line interface and, as they
//! arrive, the service roles. `main.rs` only calls [`cli::run`], so every
//! command can be driven in-process by tests.

pub mod cli;
