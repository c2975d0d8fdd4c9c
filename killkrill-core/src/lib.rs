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
//! - [`json_logs`]: JSON logs (one object, an array, or NDJSON) into log
//!   records, with field aliases, flattening, epoch timestamps and limits.
//! - [`remote_write`]: Prometheus remote write 1.0/2.0 bodies into samples.
//! - [`loki`]: Loki push bodies (JSON and protobuf) into log records.
//! - [`decode_budget`]: the per-request allowance that bounds what those
//!   decoders allocate when one label set is copied into many events.
//! - [`proto_records`]: log records to and from the gRPC form (`killkrill.v1`).
//! - [`media_type`], [`snappy`]: the `Content-Type` and snappy block layers those
//!   HTTP protocols share.
//! - [`prometheus`]: Prometheus text format 0.0.4 and OpenMetrics 1.0
//!   parsers and encoder.
//! - [`pipeline`]: batches and their binary codec, the queue/sink/dead-letter
//!   traits, the in-memory queue and the worker runtime (at-least-once,
//!   bounded, backpressured).
//! - [`transform`]: configurable per-event transforms (filter, enrich,
//!   rename/drop, redact, sample, parse-a-field) that workers run.
//! - [`syslog`]: RFC 5424 and RFC 3164 parsing, zero-copy, strict or lenient.
//! - [`framing`]: RFC 6587 framing of syslog streams (octet counting and
//!   LF/CRLF/NUL delimiters) as a tokio-util decoder, and datagrams.
//! - [`storage`]: the storage traits (the DAL boundary), errors with a
//!   retry hint, compaction and retention over any store, an in-memory store.
//! - [`logblock`]: log block encoding, summaries, bloom filters, tokenizer.
//! - [`logquery`]: the log query engine over blocks (filters, merge,
//!   cursor pagination, volume histogram).
#![deny(missing_docs)]

pub mod aggregate;
pub mod decode_budget;
pub mod event;
pub mod framing;
pub mod json_logs;
pub mod logblock;
pub mod logquery;
pub mod loki;
pub mod media_type;
pub mod pipeline;
pub mod prometheus;
pub mod proto_records;
pub mod remote_write;
pub mod secret;
pub mod snappy;
pub mod storage;
pub mod syslog;
pub mod transform;
