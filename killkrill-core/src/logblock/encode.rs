//! Block payload encoding: columnar, then zstd.
//!
//! Layout of payload version 1 (all integers LEB128 varints unless noted):
//!
//! ```text
//! payload  = version:u8 (=1)  raw_len  zstd(frame)
//! frame    = n
//!            timestamps   n × zigzag(delta from previous; the first from 0)
//!            id_hi        n × zigzag(delta of the high 64 id bits, wrapping)
//!            id_lo        n × zigzag(delta of the low 64 id bits, wrapping)
//!            severity     n bytes (code 0..=7, 8 = none)
//!            facility     n bytes (code 0..=23, 255 = none)
//!            host app procid msgid source: each a dictionary column
//!                         = dict_len, dict_len × string, n × (0 = none | 1 + dict index)
//!            message      n × (0 = none | 1 + byte length), then the bytes back to back
//!            parse_error  same shape as message
//!            fields       n × record_fields
//! record_fields = sd_count × (id:string  param_count × (name:string value:string))
//!                 attr_count × (name:string  tag:u8  value)
//!                 (tag 0 null, 1 false, 2 true, 3 int zigzag varint,
//!                  4 float 8 bytes LE, 5 string)
//! string   = byte length, bytes
//! ```
//!
//! Why this shape: records in a block are sorted by time, so timestamp
//! deltas are a byte or two; UUIDv7 ids from one receiver differ in a few
//! low bits; hosts and apps repeat, so dictionaries make them a byte each;
//! messages stay as raw bytes (invalid UTF-8 included) for zstd to squeeze.
//! Every field of a [`LogRecord`] except the tenant (which is the block's)
//! is kept exactly, in order, duplicates included.

use std::collections::HashMap;

use super::BlockError;
use super::wire::{put_bytes, put_u64, zigzag};
use crate::event::{FieldValue, LogRecord};

/// Payload codec version written by this build.
pub const PAYLOAD_VERSION: u8 = 1;

/// Encodes records (already sorted and of one tenant) into a payload.
///
/// # Errors
/// [`BlockError::Compress`] if zstd fails.
pub fn encode_payload(records: &[LogRecord], zstd_level: i32) -> Result<Vec<u8>, BlockError> {
    compress_frame(&encode_frame(records), zstd_level)
}

/// The distinct values of a dictionary column in first-seen order, and
/// whether some record had none.
pub(crate) type Distinct<'a> = (Vec<&'a str>, bool);

/// What the frame's dictionary columns found, for the block summary.
pub(crate) struct FrameDicts<'a> {
    pub(crate) hosts: Distinct<'a>,
    pub(crate) apps: Distinct<'a>,
    pub(crate) sources: Distinct<'a>,
}

/// Compresses a frame into a payload (version, raw length, zstd).
pub(crate) fn compress_frame(frame: &[u8], zstd_level: i32) -> Result<Vec<u8>, BlockError> {
    // One compression context per thread and level, reused: allocating a
    // fresh one per block showed up as page faults in profiles.
    thread_local! {
        static COMPRESSOR: std::cell::RefCell<Option<(i32, zstd::bulk::Compressor<'static>)>> =
            const { std::cell::RefCell::new(None) };
    }
    let compressed = COMPRESSOR.with(|c| {
        let mut c = c.borrow_mut();
        if c.as_ref().is_none_or(|(l, _)| *l != zstd_level) {
            let comp = zstd::bulk::Compressor::new(zstd_level)
                .map_err(|e| BlockError::Compress(e.to_string()))?;
            *c = Some((zstd_level, comp));
        }
        match c.as_mut() {
            Some((_, comp)) => comp
                .compress(frame)
                .map_err(|e| BlockError::Compress(e.to_string())),
            None => Err(BlockError::Compress("no compressor".into())),
        }
    })?;
    let mut out = Vec::with_capacity(compressed.len() + 11);
    out.push(PAYLOAD_VERSION);
    put_u64(&mut out, frame.len() as u64);
    out.extend_from_slice(&compressed);
    Ok(out)
}

fn id_halves(r: &LogRecord) -> (u64, u64) {
    let v = r.id.map(|i| i.as_u128()).unwrap_or(0);
    ((v >> 64) as u64, v as u64)
}

/// The uncompressed columnar frame.
pub(crate) fn encode_frame(records: &[LogRecord]) -> Vec<u8> {
    encode_frame_with_dicts(records).0
}

/// The uncompressed columnar frame and the distinct hosts, apps and
/// sources (the summary's value sets: the dictionaries already hold them).
pub(crate) fn encode_frame_with_dicts(records: &[LogRecord]) -> (Vec<u8>, FrameDicts<'_>) {
    let n = records.len();
    let msg_bytes: usize = records
        .iter()
        .map(|r| r.message.as_ref().map_or(0, Vec::len))
        .sum();
    let mut out = Vec::with_capacity(msg_bytes + n * 24 + 256);
    put_u64(&mut out, n as u64);

    let mut prev = 0i64;
    for r in records {
        let t = r.timestamp.as_nanos();
        put_u64(&mut out, zigzag(t.wrapping_sub(prev)));
        prev = t;
    }
    let (mut ph, mut pl) = (0u64, 0u64);
    for r in records {
        let (h, _) = id_halves(r);
        put_u64(&mut out, zigzag(h.wrapping_sub(ph) as i64));
        ph = h;
    }
    for r in records {
        let (_, l) = id_halves(r);
        put_u64(&mut out, zigzag(l.wrapping_sub(pl) as i64));
        pl = l;
    }
    out.extend(records.iter().map(|r| r.severity.map_or(8, |s| s.code())));
    out.extend(records.iter().map(|r| r.facility.map_or(255, |f| f as u8)));

    let hosts = dict_column(&mut out, records, |r| r.host.as_deref());
    let apps = dict_column(&mut out, records, |r| r.app.as_deref());
    dict_column(&mut out, records, |r| r.procid.as_deref());
    dict_column(&mut out, records, |r| r.msgid.as_deref());
    let sources = dict_column(&mut out, records, |r| r.source.as_deref());

    bytes_column(&mut out, records, |r| r.message.as_deref());
    bytes_column(&mut out, records, |r| {
        r.parse_error.as_deref().map(str::as_bytes)
    });

    for r in records {
        put_u64(&mut out, r.structured_data.len() as u64);
        for el in &r.structured_data {
            put_bytes(&mut out, el.id.as_bytes());
            put_u64(&mut out, el.params.len() as u64);
            for (k, v) in &el.params {
                put_bytes(&mut out, k.as_bytes());
                put_bytes(&mut out, v.as_bytes());
            }
        }
        put_u64(&mut out, r.attributes.len() as u64);
        for (k, v) in &r.attributes {
            put_bytes(&mut out, k.as_bytes());
            match v {
                FieldValue::Null => out.push(0),
                FieldValue::Bool(false) => out.push(1),
                FieldValue::Bool(true) => out.push(2),
                FieldValue::Int(i) => {
                    out.push(3);
                    put_u64(&mut out, zigzag(*i));
                }
                FieldValue::Float(f) => {
                    out.push(4);
                    out.extend_from_slice(&f.to_le_bytes());
                }
                FieldValue::Str(s) => {
                    out.push(5);
                    put_bytes(&mut out, s.as_bytes());
                }
            }
        }
    }
    (
        out,
        FrameDicts {
            hosts,
            apps,
            sources,
        },
    )
}

fn dict_column<'a>(
    out: &mut Vec<u8>,
    records: &'a [LogRecord],
    get: impl Fn(&'a LogRecord) -> Option<&'a str>,
) -> Distinct<'a> {
    let mut dict: HashMap<&'a str, u64, super::hashing::FastBuild> = HashMap::default();
    let mut order: Vec<&'a str> = Vec::new();
    let mut idx: Vec<u64> = Vec::with_capacity(records.len());
    let mut missing = false;
    // Runs of one value (a source, a host's burst) skip the hash lookup.
    let mut last: Option<(&'a str, u64)> = None;
    for r in records {
        idx.push(match get(r) {
            None => {
                missing = true;
                0
            }
            Some(v) => match last {
                Some((l, i)) if l == v => i,
                _ => {
                    let next = order.len() as u64 + 1;
                    let i = *dict.entry(v).or_insert_with(|| {
                        order.push(v);
                        next
                    });
                    last = Some((v, i));
                    i
                }
            },
        });
    }
    put_u64(out, order.len() as u64);
    for v in &order {
        put_bytes(out, v.as_bytes());
    }
    for i in idx {
        put_u64(out, i);
    }
    (order, missing)
}

fn bytes_column<'a>(
    out: &mut Vec<u8>,
    records: &'a [LogRecord],
    get: impl Fn(&'a LogRecord) -> Option<&'a [u8]>,
) {
    for r in records {
        put_u64(out, get(r).map_or(0, |b| b.len() as u64 + 1));
    }
    for r in records {
        if let Some(b) = get(r) {
            out.extend_from_slice(b);
        }
    }
}
