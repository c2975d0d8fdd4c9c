//! Exact windowed aggregation of metric samples into rollups.
//!
//! Why this module exists: dashboards and PromQL range queries over days
//! should not read every raw sample. Rollups — per series and tumbling
//! window: count, sum, min, max, first, last, counter increase with resets
//! and a DDSketch for quantiles — answer them from a few rows. They must
//! stay *exact* while the pipeline redelivers batches and workers restart,
//! so the design is built on mergeable partials rather than on state that a
//! crash could lose or double:
//!
//! - the [`Aggregator`] turns batches into *partial* rollups and hands them
//!   out at each [`Aggregator::flush`] ([`Flush`]);
//! - the pipeline stores a flush's partials keyed by its batch ids before it
//!   acknowledges them, replacing what a previous delivery stored;
//! - [`Rollup::merge`] combines partials exactly, in any grouping and order
//!   (sums are exact, not floating-point; first/last are decided by time and
//!   value, not arrival; counter boundaries are kept; sketch buckets add).
//!
//! The engine is pure: no clock, no I/O, no threads, no randomness that can
//! change a result. Time is event time (per-tenant watermarks). See
//! `docs/src/aggregation.md` for the full design, lateness, cardinality
//! limits and the config reference.
//!
//! ```
//! use killkrill_core::aggregate::{AggregateConfig, BatchId, merge_partials};
//! use killkrill_core::event::{Labels, MetricSample, Timestamp};
//!
//! let config: AggregateConfig = serde_json::from_str(r#"{"resolutions": ["10s", "1m"]}"#).unwrap();
//! let mut engine = config.build().unwrap();
//! let sample = |t: i64, v: f64| MetricSample {
//!     name: "http_requests_total".into(),
//!     labels: Labels::from_pairs([("job", "api")]),
//!     value: v,
//!     timestamp: Some(Timestamp::from_secs(t)),
//!     ..MetricSample::default()
//! };
//! engine.aggregate(BatchId(1), &[sample(0, 10.0), sample(5, 12.0)]);
//! let first = engine.flush();
//! engine.aggregate(BatchId(2), &[sample(7, 3.0)]); // a counter reset
//! let second = engine.flush();
//! let merged = merge_partials(first.partials.iter().chain(&second.partials)).unwrap();
//! let (key, minute) = merged.iter().find(|(k, _)| k.resolution.as_nanos() == 60_000_000_000).unwrap();
//! assert_eq!(key.series.name, "http_requests_total");
//! assert_eq!((minute.count(), minute.sum(), minute.increase()), (3, 25.0, Some(5.0)));
//! ```

mod bucket_store;
mod cardinality;
mod config;
mod counter;
mod engine;
mod exact_sum;
mod flush;
mod mapping;
mod metric_tally;
mod report;
mod rollup;
mod rollup_codec;
mod run;
mod self_metrics;
mod series;
mod sketch;
mod window;
mod wire;

pub use cardinality::CardinalityOffender;
pub use config::{
    AggregateConfig, ConfigError, HumanDuration, LatePolicy, MAX_ALLOWED_LATENESS, SketchConfig,
};
pub use counter::{CounterState, Point};
pub use engine::Aggregator;
pub use flush::{BatchId, Flush, PartialRollup, RollupKey, merge_partials};
pub use mapping::{MAX_RELATIVE_ACCURACY, MIN_RELATIVE_ACCURACY};
pub use metric_tally::{MAX_TRACKED, MetricCount};
pub use report::{BatchReport, LateSample, RejectReason, Rejection};
pub use rollup::{MergeError, Rollup};
pub use self_metrics::AggregatorCounters;
pub use series::SeriesKey;
pub use sketch::{DdSketch, MAX_BUCKETS_LIMIT, SketchMismatch, SketchParams, SketchParamsError};
pub use window::{MAX_RESOLUTIONS, Resolution, ResolutionSet};
pub use wire::DecodeError;
