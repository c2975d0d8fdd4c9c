//! # killkrill-svc
//!
//! The `killkrill` binary's library: command-line interface, configuration
//! and the service ([`serve`]). `main.rs` only calls [`cli::run`], so every
//! command can be driven in-process by tests, and [`serve::start`] runs the
//! whole service in-process with the addresses it bound.

pub mod auth;
pub mod cli;
pub mod config;
pub mod email;
pub mod httpc;
pub mod license;
pub mod oidc;
pub mod serve;
