//! Loki protobuf pushes: a snappy block holding a `logproto.PushRequest`.

use killkrill_proto::logproto;
use prost::Message;

use crate::event::{LogRecord, Timestamp};

use super::label_syntax::parse_labels;
use super::record::StreamContext;
use super::{Limits, LokiError};

/// Decodes an uncompressed `logproto.PushRequest`.
pub(super) fn decode(raw: &[u8], limits: &Limits) -> Result<Vec<LogRecord>, LokiError> {
    let req = logproto::PushRequest::decode(raw).map_err(|e| LokiError::Protobuf(e.to_string()))?;
    if req.streams.len() > limits.max_streams {
        return Err(LokiError::TooManyStreams {
            max: limits.max_streams,
        });
    }
    let total: usize = req.streams.iter().map(|s| s.entries.len()).sum();
    let mut out = Vec::with_capacity(total.min(limits.max_entries));
    for (si, stream) in req.streams.into_iter().enumerate() {
        let stream_err = |problem: String| LokiError::Stream {
            stream: si,
            problem,
        };
        let labels = parse_labels(&stream.labels)
            .map_err(|e| stream_err(format!("labels {:?}: {e}", stream.labels)))?;
        if labels.len() > limits.max_labels_per_stream {
            return Err(stream_err(format!(
                "{} labels, more than the limit of {}",
                labels.len(),
                limits.max_labels_per_stream
            )));
        }
        if out.len() + stream.entries.len() > limits.max_entries {
            return Err(LokiError::TooManyEntries {
                stream: si,
                max: limits.max_entries,
            });
        }
        let ctx = StreamContext::new(labels);
        for (ei, e) in stream.entries.into_iter().enumerate() {
            let entry_err = |problem: &str| LokiError::Entry {
                stream: si,
                entry: ei,
                problem: problem.to_owned(),
            };
            let ts = e.timestamp.ok_or_else(|| entry_err("no timestamp"))?;
            if !(0..1_000_000_000).contains(&ts.nanos) {
                return Err(entry_err(&format!(
                    "timestamp nanos {} outside 0..1e9",
                    ts.nanos
                )));
            }
            let nanos = ts
                .seconds
                .checked_mul(1_000_000_000)
                .and_then(|n| n.checked_add(i64::from(ts.nanos)))
                .ok_or_else(|| {
                    entry_err(&format!("timestamp {} s is outside 1677..2262", ts.seconds))
                })?;
            let metadata = e
                .structured_metadata
                .into_iter()
                .map(|p| (p.name, p.value))
                .collect();
            out.push(ctx.record(Timestamp::from_nanos(nanos), e.line.into_bytes(), metadata));
        }
    }
    Ok(out)
}
