//! Loki protobuf pushes: a snappy block holding a `logproto.PushRequest`.

use killkrill_proto::logproto;
use prost::Message;

use crate::decode_budget::{DecodeBudget, attribute_bytes};
use crate::event::{LogRecord, Timestamp};

use super::label_syntax::parse_labels;
use super::record::StreamContext;
use super::{Limits, LokiError, check_stream_labels};

/// Decodes an uncompressed `logproto.PushRequest`.
pub(super) fn decode(raw: &[u8], limits: &Limits) -> Result<Vec<LogRecord>, LokiError> {
    let req = logproto::PushRequest::decode(raw).map_err(|e| LokiError::Protobuf(e.to_string()))?;
    if req.streams.len() > limits.max_streams {
        return Err(LokiError::TooManyStreams {
            max: limits.max_streams,
        });
    }
    let mut budget = DecodeBudget::new(limits.max_output_bytes);
    let total: usize = req.streams.iter().map(|s| s.entries.len()).sum();
    let mut out = Vec::with_capacity(total.min(limits.max_entries));
    for (si, stream) in req.streams.into_iter().enumerate() {
        let stream_err = |problem: String| LokiError::Stream {
            stream: si,
            problem,
        };
        let labels = parse_labels(&stream.labels).map_err(|e| {
            let mut shown = stream.labels.clone();
            if shown.len() > 256 {
                let mut end = 256;
                while !shown.is_char_boundary(end) {
                    end -= 1;
                }
                shown.truncate(end);
                shown.push('…');
            }
            stream_err(format!("labels {shown:?}: {e}"))
        })?;
        check_stream_labels(&labels, limits).map_err(stream_err)?;
        if out.len() + stream.entries.len() > limits.max_entries {
            return Err(LokiError::TooManyEntries {
                stream: si,
                max: limits.max_entries,
            });
        }
        let ctx = StreamContext::new(labels);
        // Each entry copies the stream's labels; its line and metadata are its own.
        let own = stream.entries.iter().fold(0usize, |n, e| {
            let meta = e.structured_metadata.iter().fold(0usize, |m, p| {
                m.saturating_add(attribute_bytes(&p.name, &p.value))
            });
            n.saturating_add(e.line.len()).saturating_add(meta)
        });
        budget
            .charge(stream.entries.len(), ctx.bytes_per_entry())
            .and_then(|()| budget.charge(1, own))
            .map_err(|e| LokiError::TooLargeDecoded {
                stream: si,
                max: e.max,
            })?;
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
