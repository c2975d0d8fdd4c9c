//! Prometheus remote write (1.0 and 2.0) request bodies into metric samples.
//!
//! A remote write request is a protobuf message compressed as one snappy block;
//! the `Content-Type` says which message ([`RemoteWriteVersion`]). Decoding is
//! all-or-nothing: a body that is over a limit or wrong anywhere is rejected with
//! an error naming the series and the field, because the protocol has the sender
//! retry or drop the whole request, and half-accepting would make retries
//! double-write.
//!
//! Nothing a request carries is silently dropped: float samples become
//! [`MetricSample`](crate::event::MetricSample)s, native histograms become their
//! classic-histogram series (see `histogram.rs`), exemplars are returned with their
//! series, metadata as [`MetricMetadata`](crate::event::MetricMetadata), and
//! [`WriteReport`] counts each kind (including the 2.0 start timestamps, which the
//! sample model cannot hold), which is what the 2.0 response headers need.
//!
//! A 1.0 body of float-sample series is read in place by `wire_v1` (label
//! strings borrowed from the body, a known series' labels from a process-wide
//! cache); everything else — 2.0, exemplars, native histograms, and every body
//! that reader declines, errors included — is decoded with prost's generated
//! types from `killkrill-proto`, which decide what is accepted and how an error
//! reads. The benchmark in `benches/remote_write.rs` measures both (see
//! docs/src/benchmarks/parsing.md). An earlier zero-copy reader measured no
//! faster, when every sample owned a copy of its series' labels; samples now
//! share them, and the cache makes a known series a lookup.

mod batch;
mod error;
mod histogram;
mod series_labels;
mod v1;
mod v2;
mod version;
mod wire_v1;

use prost::Message;

pub use batch::{SeriesExemplar, WriteBatch, WriteReport};
pub use error::{RemoteWriteError, SeriesProblem};
pub use version::{ContentTypeError, RemoteWriteVersion};

use crate::snappy::decompress_block;

/// Bounds on one request. Bodies come from the network, so every dimension that
/// costs memory is capped; the defaults are far above what Prometheus sends
/// (at most a few thousand samples per request).
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub struct Limits {
    /// Largest decompressed body, checked against the snappy header before allocating.
    pub max_decoded_bytes: usize,
    /// Most series per request.
    pub max_series: usize,
    /// Most samples per request, counting each native histogram's classic samples.
    pub max_samples: usize,
    /// Most labels on one series (including `__name__`).
    pub max_labels_per_series: usize,
    /// Longest label name, bytes (series and exemplar labels).
    pub max_label_name_bytes: usize,
    /// Longest label value, bytes, including the metric name (`__name__`).
    pub max_label_value_bytes: usize,
    /// Most memory the decoded samples, exemplars and metadata may take, estimated
    /// as the queue counts bytes ([`crate::decode_budget`]). A series' labels are
    /// copied into each of its samples, so this bounds *samples × label bytes*,
    /// which the other limits do not; it is charged before anything is copied.
    pub max_output_bytes: usize,
}

impl Default for Limits {
    /// 32 MiB decoded, 500,000 series, 1,000,000 samples, 256 labels per series,
    /// label names up to 1 KiB and values up to 8 KiB (Mimir's and Loki's defaults
    /// are 1 KiB and 2 KiB), 256 MiB of decoded output.
    fn default() -> Self {
        Limits {
            max_decoded_bytes: 32 << 20,
            max_series: 500_000,
            max_samples: 1_000_000,
            max_labels_per_series: 256,
            max_label_name_bytes: 1 << 10,
            max_label_value_bytes: 8 << 10,
            max_output_bytes: 256 << 20,
        }
    }
}

/// Decodes a remote write body (snappy block + protobuf) of the given version.
///
/// # Errors
/// [`RemoteWriteError`]: over a limit, not snappy, not the protobuf message, or an
/// invalid series (missing `__name__`, duplicate label, 2.0 symbol reference out of
/// range, bad timestamp or native histogram), naming the series index and field.
pub fn decode(
    body: &[u8],
    version: RemoteWriteVersion,
    limits: &Limits,
) -> Result<WriteBatch, RemoteWriteError> {
    let raw = decompress_block(body, limits.max_decoded_bytes)?;
    decode_uncompressed(&raw, version, limits)
}

/// Decodes an already decompressed remote write protobuf message.
///
/// # Errors
/// As [`decode`], without the snappy layer.
pub fn decode_uncompressed(
    raw: &[u8],
    version: RemoteWriteVersion,
    limits: &Limits,
) -> Result<WriteBatch, RemoteWriteError> {
    if raw.len() > limits.max_decoded_bytes {
        return Err(crate::snappy::SnappyError::TooLarge {
            length: raw.len(),
            max: limits.max_decoded_bytes,
        }
        .into());
    }
    let proto_err = |message: &'static str| {
        move |e: prost::DecodeError| RemoteWriteError::Protobuf {
            message,
            detail: e.to_string(),
        }
    };
    match version {
        RemoteWriteVersion::V1 => {
            if let Some(batch) = wire_v1::decode(raw, limits) {
                return Ok(batch);
            }
            let req = killkrill_proto::prometheus::WriteRequest::decode(raw)
                .map_err(proto_err("prometheus.WriteRequest"))?;
            v1::convert(req, limits)
        }
        RemoteWriteVersion::V2 => {
            let req = killkrill_proto::prometheus_v2::Request::decode(raw)
                .map_err(proto_err("io.prometheus.write.v2.Request"))?;
            v2::convert(req, limits)
        }
    }
}

#[cfg(test)]
mod budget_tests;
#[cfg(test)]
mod tests;
#[cfg(test)]
mod wire_tests;
