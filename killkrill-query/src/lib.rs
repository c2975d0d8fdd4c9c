//! Killkrill's PromQL engine and Prometheus-compatible HTTP API.
//!
//! Parsing is GreptimeDB's `promql-parser`; evaluation is ours, written
//! after Prometheus's own engine so answers agree to the last bits that
//! matter (a conformance test runs the same queries against a real
//! Prometheus). The engine reads samples through the small
//! [`SampleSource`] trait, so it knows nothing about SQL: the service plugs
//! its metric store in with an adapter, tests use [`MemorySource`].
//!
//! What is supported and how it differs from Prometheus is in
//! `docs/src/promql.md`.

mod aggregate;
pub mod api;
mod binary;
mod engine;
mod error;
mod eval;
mod functions;
mod histogram;
mod labels;
pub mod params;
mod range_functions;
mod rollup_plan;
mod shape;
mod source;
mod subquery;
mod value;

pub use api::{API_PATHS, ApiState, QUERY_PATH_HEADER, SourceFactory, router, routes};
pub use engine::{Engine, EngineConfig, QueryStats, parse};
pub use error::{ErrorKind, QueryError};
pub use functions::supported as supported_functions;
pub use labels::{Labels, METRIC_NAME, MatchOp, Matcher, parse_selector};
pub use shape::{MAX_NESTING, MAX_QUERY_BYTES};
pub use source::{
    MemorySource, RollupCoverage, RollupSource, SampleSource, Series, WindowAggregate, WindowQuery,
    WindowSeries,
};
pub use value::{QueryValue, Sample, format_float, is_stale, stale_nan};
