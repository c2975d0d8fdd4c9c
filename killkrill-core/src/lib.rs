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
//! - [`aggregate`]: exact windowed aggregation of metric samples into
//!   mergeable rollups (count/sum/min/max/first/last/increase, DDSketch).
//! - [`event`]: the event model (log records, metric samples, timestamps,
//!   severities, facilities, tenants, ids) and the canonical JSON form.
#![deny(missing_docs)]

pub mod aggregate;
pub mod event;
