//! Loki push bodies (`POST /loki/api/v1/push`) into log records.
//!
//! Loki clients (Promtail, Grafana Alloy, the Docker driver, Fluent Bit, plain
//! curl) push streams: a label set and its entries (timestamp, line, and since
//! Loki 3 per-entry structured metadata). Each entry becomes one
//! [`LogRecord`] with the line as its message, the stream
//! labels and structured metadata as attributes, and the well-known labels mapped
//! to the record's severity, host and app (see `record.rs` for the table).
//!
//! Two encodings, chosen by `Content-Type` ([`LokiEncoding`]): JSON, and a snappy
//! block holding a `logproto.PushRequest` (protobuf, whose labels are a string in
//! Prometheus label syntax). A body is accepted or rejected as a whole, with an
//! error naming the stream and entry; every dimension that costs memory is bounded
//! by [`Limits`]. Records have no tenant, id or source yet: the receiver sets them.

mod encoding;
mod error;
mod json;
mod label_syntax;
mod protobuf;
mod record;

pub use encoding::LokiEncoding;
pub use error::LokiError;
pub use label_syntax::parse_labels;

use crate::event::LogRecord;
use crate::snappy::decompress_block;

/// Bounds on one push.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub struct Limits {
    /// Largest body: the JSON body, or the protobuf body after snappy
    /// decompression (checked against the snappy header before allocating).
    pub max_body_bytes: usize,
    /// Most streams per push.
    pub max_streams: usize,
    /// Most entries per push, over all streams.
    pub max_entries: usize,
    /// Most labels on one stream.
    pub max_labels_per_stream: usize,
    /// Longest stream label name, bytes.
    pub max_label_name_bytes: usize,
    /// Longest stream label value, bytes.
    pub max_label_value_bytes: usize,
    /// Most memory the decoded records may take, estimated as the queue counts
    /// bytes ([`crate::decode_budget`]). A stream's labels are copied into each
    /// of its entries, so this bounds *entries × label bytes*, which the other
    /// limits do not; it is charged before anything is copied.
    pub max_output_bytes: usize,
}

impl Default for Limits {
    /// 32 MiB, 10,000 streams, 1,000,000 entries, 64 labels per stream, label
    /// names up to 1 KiB and values up to 8 KiB (Loki's defaults are 1 KiB and
    /// 2 KiB), 256 MiB of decoded records.
    fn default() -> Self {
        Limits {
            max_body_bytes: 32 << 20,
            max_streams: 10_000,
            max_entries: 1_000_000,
            max_labels_per_stream: 64,
            max_label_name_bytes: 1 << 10,
            max_label_value_bytes: 8 << 10,
            max_output_bytes: 256 << 20,
        }
    }
}

/// Checks a stream's labels against the count and length limits, before they are
/// copied into its entries.
fn check_stream_labels(labels: &[(String, String)], limits: &Limits) -> Result<(), String> {
    if labels.len() > limits.max_labels_per_stream {
        return Err(format!(
            "{} labels, more than the limit of {}",
            labels.len(),
            limits.max_labels_per_stream
        ));
    }
    for (n, v) in labels {
        for (part, len, max) in [
            ("name", n.len(), limits.max_label_name_bytes),
            ("value", v.len(), limits.max_label_value_bytes),
        ] {
            if len > max {
                let mut end = n.len().min(64);
                while !n.is_char_boundary(end) {
                    end -= 1;
                }
                let cut = if end < n.len() { "…" } else { "" };
                return Err(format!(
                    "label {:?}{cut}: {part} is {len} bytes, more than the limit of {max}",
                    &n[..end]
                ));
            }
        }
    }
    Ok(())
}

/// Decodes a Loki push body into log records, in stream and entry order.
///
/// # Errors
/// [`LokiError`]: over a limit, not snappy, not the protobuf message or the JSON
/// format, malformed stream labels, or an entry without a valid timestamp — naming
/// the stream and entry.
pub fn decode(
    body: &[u8],
    encoding: LokiEncoding,
    limits: &Limits,
) -> Result<Vec<LogRecord>, LokiError> {
    match encoding {
        LokiEncoding::Json => {
            if body.len() > limits.max_body_bytes {
                return Err(LokiError::TooLarge {
                    length: body.len(),
                    max: limits.max_body_bytes,
                });
            }
            json::decode(body, limits)
        }
        LokiEncoding::Protobuf => {
            let raw = decompress_block(body, limits.max_body_bytes)?;
            protobuf::decode(&raw, limits)
        }
    }
}

#[cfg(test)]
mod budget_tests;
#[cfg(test)]
mod tests;
