//! `BatchCodec`: the compact, versioned binary form of a [`Batch`] that
//! durable queues store and dead-letter stores keep.
//!
//! Why not JSON or a generic serializer: a durable queue writes every batch
//! once and reads it at least once, so the encoding is on the hot path twice;
//! it must keep every field exactly (invalid UTF-8 messages, NaN payloads,
//! attribute types and order, repeated SD parameters), which the canonical
//! JSON form only does with base64 detours; and it must be safe to decode
//! from bytes that a disk or a Redis server handed back, possibly corrupted.
//! A hand-written format of LEB128 varints and length-prefixed bytes is
//! simple enough to check by eye, several times smaller than JSON and about
//! as fast as copying the strings.
//!
//! # Layout (versions 1 and 2)
//!
//! ```text
//! header (never compressed)
//!   "KKB"            magic
//!   u8               format version (1 or 2)
//!   u8               flags: bit 0 = body is one zstd stream
//!   [u8; 16]         batch id, big-endian (readable without decoding the body)
//! body
//!   zigzag           received (ns)
//!   str              tenant
//!   opt str          source (0 = none, else len + 1 and the bytes)
//!   varint n, n ×    log record   (see log.rs: flag word, then present fields)
//!   metric samples   version 1: varint n, n × sample with its series;
//!                    version 2: varint n, then runs of one series each
//!                    (see metric.rs)
//!   varint n, n ×    metric metadata
//! ```
//!
//! Version 2 differs from version 1 only in the metric samples: a series'
//! name and labels are written once per run of its samples instead of once
//! per sample (a remote_write batch of 100 series × 10 samples shrinks from
//! about 230 to about 35 bytes per sample with the benchmark's labels).
//! Builds write version 2 by default; [`BatchCodec::with_version`] writes
//! version 1 for readers that predate version 2 (a Redis queue shared with
//! older workers during a rolling upgrade).
//!
//! The body must end exactly at the end of the input. A decoder reads every
//! version up to its own and rejects newer ones with
//! [`CodecError::UnsupportedVersion`]; a change to the layout is a new
//! version number, never a reinterpretation of an old one, because queues and
//! dead-letter stores hold bytes written by older builds.
//!
//! # Untrusted input
//!
//! Decoding never panics and never allocates more than a constant times the
//! input size: every count and length is checked against the bytes that
//! remain before anything is reserved, and a zstd body is inflated through a
//! reader capped at [`BatchCodec::max_decoded_bytes`]. Errors carry the byte
//! offset (into the decompressed body when compressed) and what was expected.

mod log;
mod metric;
mod wire;

use std::io::Read;

use super::{Batch, BatchId};
use crate::event::{Tenant, Timestamp};
use wire::{Reader, Writer};

const MAGIC: &[u8; 3] = b"KKB";
const FLAG_ZSTD: u8 = 1;
const HEADER_LEN: usize = 3 + 1 + 1 + 16;

/// Why bytes could not be decoded into a batch (or a batch encoded).
#[derive(Debug, Clone, PartialEq, Eq, thiserror::Error)]
pub enum CodecError {
    /// The input does not start with the batch magic bytes.
    #[error("not a Killkrill batch: expected the magic bytes \"KKB\"")]
    BadMagic,
    /// Written by a newer build.
    #[error("unsupported batch format version {0}: this build reads versions 1 and 2")]
    UnsupportedVersion(u8),
    /// Header flags this build does not know.
    #[error("unknown batch flags {0:#04x}")]
    UnknownFlags(u8),
    /// The input ended early.
    #[error("batch truncated at byte {offset}: expected {expected}")]
    Truncated {
        /// Offset where more input was needed.
        offset: usize,
        /// What the decoder was reading.
        expected: &'static str,
    },
    /// A value is out of range or malformed.
    #[error("invalid {what} at byte {offset}")]
    Invalid {
        /// Offset of the value.
        offset: usize,
        /// What the value should have been.
        what: &'static str,
    },
    /// Bytes left over after the last item.
    #[error("{0} trailing bytes after the end of the batch")]
    TrailingBytes(usize),
    /// The decompressed body is larger than the configured limit.
    #[error("decompressed batch larger than the limit of {limit} bytes")]
    TooLarge {
        /// The limit in bytes.
        limit: usize,
    },
    /// zstd failed.
    #[error("zstd: {0}")]
    Compression(String),
}

/// Body compression.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Default)]
pub enum Compression {
    /// Plain body (fastest; the default).
    #[default]
    None,
    /// One zstd stream at this level (1..=22; 1 to 3 are the useful ones).
    Zstd(i32),
}

/// Encodes and decodes whole batches. Cheap to copy; holds only settings.
#[derive(Debug, Clone, Copy)]
pub struct BatchCodec {
    compression: Compression,
    max_decoded_bytes: usize,
    version: u8,
}

impl Default for BatchCodec {
    fn default() -> Self {
        Self::new()
    }
}

impl BatchCodec {
    /// The newest format version, the one this build writes by default and
    /// the newest it reads.
    pub const VERSION: u8 = 2;
    /// Default cap on a decompressed body: 256 MiB.
    pub const DEFAULT_MAX_DECODED_BYTES: usize = 256 << 20;

    /// Uncompressed bodies.
    pub const fn new() -> Self {
        BatchCodec {
            compression: Compression::None,
            max_decoded_bytes: Self::DEFAULT_MAX_DECODED_BYTES,
            version: Self::VERSION,
        }
    }

    /// Writes format `version` (1 or [`VERSION`](Self::VERSION); anything
    /// else is taken as the newest). Decoding reads every version, whatever
    /// this says.
    pub const fn with_version(mut self, version: u8) -> Self {
        self.version = if version == 1 { 1 } else { Self::VERSION };
        self
    }

    /// The format version [`encode`](Self::encode) writes.
    pub const fn version(&self) -> u8 {
        self.version
    }

    /// Chooses the compression used by [`encode`](Self::encode). Decoding
    /// accepts either, whatever this says.
    pub const fn with_compression(mut self, compression: Compression) -> Self {
        self.compression = compression;
        self
    }

    /// Caps the size of a decompressed body.
    pub const fn with_max_decoded_bytes(mut self, limit: usize) -> Self {
        self.max_decoded_bytes = limit;
        self
    }

    /// The cap on a decompressed body.
    pub const fn max_decoded_bytes(&self) -> usize {
        self.max_decoded_bytes
    }

    /// Appends the encoded batch to `out`.
    ///
    /// # Errors
    /// [`CodecError::Compression`] if zstd fails (never for
    /// [`Compression::None`]).
    pub fn encode(&self, batch: &Batch, out: &mut Vec<u8>) -> Result<(), CodecError> {
        out.extend_from_slice(MAGIC);
        out.push(self.version);
        match self.compression {
            Compression::None => {
                out.push(0);
                out.extend_from_slice(&batch.id.to_bytes());
                encode_body(batch, self.version, out);
            }
            Compression::Zstd(level) => {
                out.push(FLAG_ZSTD);
                out.extend_from_slice(&batch.id.to_bytes());
                let mut body = Vec::with_capacity(batch.approx_bytes());
                encode_body(batch, self.version, &mut body);
                let packed = zstd::bulk::compress(&body, level)
                    .map_err(|e| CodecError::Compression(e.to_string()))?;
                out.extend_from_slice(&packed);
            }
        }
        Ok(())
    }

    /// The encoded batch in a new vector.
    ///
    /// # Errors
    /// As [`encode`](Self::encode).
    pub fn encode_to_vec(&self, batch: &Batch) -> Result<Vec<u8>, CodecError> {
        let mut out = Vec::with_capacity(batch.approx_bytes() / 2 + 64);
        self.encode(batch, &mut out)?;
        Ok(out)
    }

    /// Reads the batch id from the header without decoding the body (a
    /// dead-letter store can file undecodable bytes under their id).
    ///
    /// # Errors
    /// [`CodecError::BadMagic`], [`CodecError::UnsupportedVersion`] or
    /// [`CodecError::Truncated`] when the header is not a batch header.
    pub fn peek_id(bytes: &[u8]) -> Result<BatchId, CodecError> {
        Self::header(bytes).map(|(id, _, _)| id)
    }

    fn header(bytes: &[u8]) -> Result<(BatchId, u8, u8), CodecError> {
        if bytes.len() < MAGIC.len() || &bytes[..3] != MAGIC {
            return Err(CodecError::BadMagic);
        }
        if bytes.len() < HEADER_LEN {
            return Err(CodecError::Truncated {
                offset: bytes.len(),
                expected: "batch header",
            });
        }
        if bytes[3] == 0 || bytes[3] > Self::VERSION {
            return Err(CodecError::UnsupportedVersion(bytes[3]));
        }
        let flags = bytes[4];
        if flags & !FLAG_ZSTD != 0 {
            return Err(CodecError::UnknownFlags(flags));
        }
        let mut id = [0u8; 16];
        id.copy_from_slice(&bytes[5..HEADER_LEN]);
        Ok((BatchId::from_bytes(id), bytes[3], flags))
    }

    /// Decodes a whole batch.
    ///
    /// # Errors
    /// Any [`CodecError`]: wrong magic or version, truncation, invalid values
    /// (with their offset), trailing bytes, or a body over the size limit.
    pub fn decode(&self, bytes: &[u8]) -> Result<Batch, CodecError> {
        let (id, version, flags) = Self::header(bytes)?;
        let body = &bytes[HEADER_LEN..];
        let limit = self.max_decoded_bytes;
        if flags & FLAG_ZSTD == 0 {
            return decode_body(id, version, body, limit);
        }
        let decoder = zstd::stream::read::Decoder::with_buffer(body)
            .map_err(|e| CodecError::Compression(e.to_string()))?;
        let mut plain = Vec::with_capacity(body.len().saturating_mul(4).min(limit));
        decoder
            .take(limit as u64 + 1)
            .read_to_end(&mut plain)
            .map_err(|e| CodecError::Compression(e.to_string()))?;
        if plain.len() > limit {
            return Err(CodecError::TooLarge { limit });
        }
        decode_body(id, version, &plain, limit)
    }
}

fn encode_body(batch: &Batch, version: u8, out: &mut Vec<u8>) {
    let mut w = Writer { out };
    w.zigzag(batch.received.as_nanos());
    w.str(batch.tenant.as_str());
    w.opt_str(batch.source.as_deref());
    w.len(batch.logs.len());
    let mut st = log::LogState::default();
    for r in &batch.logs {
        log::encode(&mut w, &mut st, r, &batch.tenant, batch.source.as_ref());
    }
    if version == 1 {
        w.len(batch.metrics.len());
        let mut st = metric::MetricState::default();
        for m in &batch.metrics {
            metric::encode(&mut w, &mut st, m, &batch.tenant);
        }
    } else {
        metric::encode_runs(&mut w, &batch.metrics, &batch.tenant);
    }
    w.len(batch.metadata.len());
    for m in &batch.metadata {
        metric::encode_metadata(&mut w, m);
    }
}

/// `limit` bounds what version 2's metric runs expand into (see
/// [`metric::decode_runs`]); everything else is bounded by the input size.
fn decode_body(id: BatchId, version: u8, body: &[u8], limit: usize) -> Result<Batch, CodecError> {
    let mut rd = Reader::new(body);
    let received = Timestamp::from_nanos(rd.zigzag("received time")?);
    let t_at = rd.pos();
    let tenant = rd.string("tenant")?;
    let tenant = Tenant::new(&tenant).map_err(|_| rd.invalid(t_at, "tenant"))?;
    let source = rd.opt_string("source")?;

    // A log record is at least a flag word and a timestamp.
    let n = rd.count(2, "log record count")?;
    let mut logs = Vec::with_capacity(n);
    let mut st = log::LogState::default();
    for _ in 0..n {
        logs.push(log::decode(&mut rd, &mut st, &tenant, source.as_ref())?);
    }
    let metrics = if version == 1 {
        // A sample is at least flags, type, name length, label count and 8 bytes.
        let n = rd.count(12, "metric sample count")?;
        let mut metrics = Vec::with_capacity(n);
        let mut st = metric::MetricState::default();
        for _ in 0..n {
            metrics.push(metric::decode(&mut rd, &mut st, &tenant)?);
        }
        metrics
    } else {
        metric::decode_runs(&mut rd, &tenant, limit)?
    };
    let n = rd.count(4, "metadata count")?;
    let mut metadata = Vec::with_capacity(n);
    for _ in 0..n {
        metadata.push(metric::decode_metadata(&mut rd)?);
    }
    if rd.remaining() != 0 {
        return Err(CodecError::TrailingBytes(rd.remaining()));
    }
    Ok(Batch {
        id,
        tenant,
        source,
        received,
        logs,
        metrics,
        metadata,
    })
}

#[cfg(test)]
mod tests;
#[cfg(test)]
mod tests_runs;
