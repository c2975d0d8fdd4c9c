//! # killkrill-core
//!
//! The library behind Killkrill, a log and metrics ingestion system. Everything
//! that is logic lives here; the `killkrill` binary, the Python bindings and
//! the Kubernetes operator only wire it up.
//!
//! Why one library with thin shells: an operator who runs `killkrill serve`
//! and a developer who embeds the syslog parser in their own receiver should
//! get the same parser, with the same bugs fixed once. So this crate never
//! names a web framework, database driver or Python type in its public API;
//! those stop at the crate that owns them.
//!
//! Modules:
//! - [`event`]: the event model (log records, metric samples, timestamps,
//!   severities, facilities, tenants, ids) and the canonical JSON form.
//! - [`storage`]: the storage traits (the DAL boundary), errors with a
//!   retry hint, compaction and retention over any store, an in-memory store.
//! - [`logblock`]: log block encoding, summaries, bloom filters, tokenizer.
//! - [`logquery`]: the log query engine over blocks (filters, merge,
//!   cursor pagination, volume histogram).
#![deny(missing_docs)]

pub mod event;
pub mod logblock;
pub mod logquery;
pub mod storage;
