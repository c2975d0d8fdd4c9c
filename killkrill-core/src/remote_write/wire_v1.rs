//! A reader of remote write 1.0 bodies that works on the protobuf bytes in
//! place, for the requests Prometheus sends most: series of float samples.
//!
//! prost decodes a `WriteRequest` into owned structs (a `String` for every
//! label name and value, a `Vec` of samples per series) that
//! [`convert`](super::v1::convert) then copies into samples. This reader
//! borrows the label strings from the body, and the label set of a series
//! it has seen before — every request of a Prometheus shard carries the
//! same series — comes from a process-wide cache keyed by the series' label
//! bytes, so a known series costs a hash lookup instead of a parse, a sort
//! check and an allocation per label.
//!
//! It only ever answers with a result that the prost path would give: it
//! declines (returns `None`) for anything it does not handle itself —
//! exemplars, native histograms, any wire-format error, any invalid series,
//! any limit passed — and [`decode_uncompressed`](super::decode_uncompressed)
//! then runs the prost path, which accepts the body or names what is wrong
//! exactly as before. A test compares the two on valid and damaged bodies.

use std::collections::HashMap;
use std::sync::{LazyLock, Mutex};

use killkrill_proto::prometheus as pb;
use prost::Message;
use xxhash_rust::xxh3::{Xxh3DefaultBuilder, xxh3_64};

use crate::decode_budget::sample_bytes;
use crate::event::{Label, Labels, MetricText, MetricType};

use super::Limits;
use super::batch::{BatchBuilder, WriteBatch, millis};
use super::series_labels::split_name;
use super::v1::{add_metadata, lookup_type};

/// Shards of the cache (one lock each, taken per series).
const SHARDS: usize = 16;
/// Most series the cache holds (all shards); a shard past its part (or
/// past its part of [`CACHE_MAX_KEY_BYTES`]) starts over empty.
const CACHE_MAX_SERIES: usize = 100_000;
/// Most bytes of label keys the cache holds (all shards).
const CACHE_MAX_KEY_BYTES: usize = 16 << 20;

/// The limits a series is checked against by [`split_name`]; the cached
/// series were checked against these (the output budget does not change
/// whether a series is valid, so inline and blocking-pool decodes, which
/// differ in it, share the cache).
type LabelLimits = (usize, usize, usize);

fn label_limits(l: &Limits) -> LabelLimits {
    (
        l.max_labels_per_series,
        l.max_label_name_bytes,
        l.max_label_value_bytes,
    )
}

/// A series' name and labels as [`split_name`] made them, and the estimate
/// of one sample's bytes that the output budget is charged.
#[derive(Clone)]
struct Interned {
    name: MetricText,
    labels: Labels,
    each: usize,
}

#[derive(Default)]
struct SeriesCache {
    /// The limits the cached series were checked against; other limits
    /// empty the shard first (a series valid under one may not be under
    /// another).
    limits: Option<LabelLimits>,
    map: HashMap<Box<[u8]>, Interned, Xxh3DefaultBuilder>,
    key_bytes: usize,
}

/// One cache for the process (not per thread: large bodies are decoded on
/// the blocking pool, whose threads come and go, and a cache per thread
/// would multiply the bound by their number).
static CACHE: LazyLock<[Mutex<SeriesCache>; SHARDS]> =
    LazyLock::new(|| std::array::from_fn(|_| Mutex::new(SeriesCache::default())));

/// The cached name and labels of the series whose label messages are
/// `key` (`msgs` parsed), adding them when new; `None` when they are
/// invalid.
fn lookup(key: &[u8], msgs: &[&[u8]], limits: &Limits) -> Option<Interned> {
    let want = label_limits(limits);
    let shard = (xxh3_64(key) % SHARDS as u64) as usize;
    let mut cache = CACHE[shard].lock().unwrap_or_else(|e| e.into_inner());
    if cache.limits != Some(want) {
        *cache = SeriesCache {
            limits: Some(want),
            ..SeriesCache::default()
        };
    }
    if let Some(s) = cache.map.get(key) {
        return Some(s.clone());
    }
    drop(cache);
    let s = intern(msgs, limits)?;
    let mut cache = CACHE[shard].lock().unwrap_or_else(|e| e.into_inner());
    if cache.limits == Some(want) {
        if cache.map.len() >= CACHE_MAX_SERIES / SHARDS
            || cache.key_bytes + key.len() > CACHE_MAX_KEY_BYTES / SHARDS
        {
            cache.map.clear();
            cache.key_bytes = 0;
        }
        cache.key_bytes += key.len();
        cache.map.insert(key.into(), s.clone());
    }
    Some(s)
}

/// A protobuf wire reader over a byte slice; every method returns `None` on
/// anything malformed.
struct Wire<'a> {
    buf: &'a [u8],
}

impl<'a> Wire<'a> {
    fn varint(&mut self) -> Option<u64> {
        let mut v = 0u64;
        for i in 0..10 {
            let (&b, rest) = self.buf.split_first()?;
            self.buf = rest;
            if i == 9 && b > 1 {
                return None;
            }
            v |= u64::from(b & 0x7F) << (7 * i);
            if b < 0x80 {
                return Some(v);
            }
        }
        None
    }

    /// The next field's number and wire type, or `None` at the end (and on
    /// a malformed key, which [`Wire::done`] tells apart).
    fn key(&mut self) -> Option<(u64, u8)> {
        let k = self.varint()?;
        let field = k >> 3;
        let wire = (k & 7) as u8;
        if field == 0 || field > u64::from(u32::MAX >> 3) {
            return None;
        }
        Some((field, wire))
    }

    fn bytes(&mut self) -> Option<&'a [u8]> {
        let n = usize::try_from(self.varint()?).ok()?;
        if n > self.buf.len() {
            return None;
        }
        let (b, rest) = self.buf.split_at(n);
        self.buf = rest;
        Some(b)
    }

    fn fixed64(&mut self) -> Option<u64> {
        let (b, rest) = self.buf.split_first_chunk::<8>()?;
        self.buf = rest;
        Some(u64::from_le_bytes(*b))
    }

    /// Skips a field of an unknown number (groups are declined).
    fn skip(&mut self, wire: u8) -> Option<()> {
        match wire {
            0 => self.varint().map(drop),
            1 => self.fixed64().map(drop),
            2 => self.bytes().map(drop),
            5 => {
                let (_, rest) = self.buf.split_first_chunk::<4>()?;
                self.buf = rest;
                Some(())
            }
            _ => None,
        }
    }

    fn is_empty(&self) -> bool {
        self.buf.is_empty()
    }
}

/// Walks every field of `buf`, calling `f(field, wire, reader)`; `f` reads
/// the value (or returns `None` to decline).
fn fields<'a>(
    buf: &'a [u8],
    mut f: impl FnMut(u64, u8, &mut Wire<'a>) -> Option<()>,
) -> Option<()> {
    let mut w = Wire { buf };
    while !w.is_empty() {
        let (field, wire) = w.key()?;
        f(field, wire, &mut w)?;
    }
    Some(())
}

/// A `Label` message: its name and value (the last of each, as protobuf
/// merges them), UTF-8 checked.
fn label(buf: &[u8]) -> Option<(&str, &str)> {
    let (mut name, mut value): (&[u8], &[u8]) = (b"", b"");
    fields(buf, |field, wire, w| {
        match (field, wire) {
            (1, 2) => name = w.bytes()?,
            (2, 2) => value = w.bytes()?,
            (1 | 2, _) => return None,
            _ => w.skip(wire)?,
        }
        Some(())
    })?;
    Some((
        std::str::from_utf8(name).ok()?,
        std::str::from_utf8(value).ok()?,
    ))
}

/// A `Sample` message: value and timestamp (ms).
fn sample(buf: &[u8]) -> Option<(f64, i64)> {
    let (mut value, mut ts) = (0f64, 0i64);
    fields(buf, |field, wire, w| {
        match (field, wire) {
            (1, 1) => value = f64::from_bits(w.fixed64()?),
            (2, 0) => ts = w.varint()? as i64,
            (1 | 2, _) => return None,
            _ => w.skip(wire)?,
        }
        Some(())
    })?;
    Some((value, ts))
}

/// Decodes a 1.0 `WriteRequest` in place, or declines (`None`): see the
/// module docs. `Some` is always what the prost path returns for `raw`.
pub(super) fn decode(raw: &[u8], limits: &Limits) -> Option<WriteBatch> {
    let mut series: Vec<&[u8]> = Vec::new();
    let mut metadata: Vec<pb::MetricMetadata> = Vec::new();
    fields(raw, |field, wire, w| {
        match (field, wire) {
            (1, 2) => series.push(w.bytes()?),
            (3, 2) => metadata.push(pb::MetricMetadata::decode(w.bytes()?).ok()?),
            (1 | 3, _) => return None,
            _ => w.skip(wire)?,
        }
        Some(())
    })?;
    if series.len() > limits.max_series {
        return None;
    }
    // Each series is its label messages and its samples, as ranges of
    // these. A label message is parsed only for a series not in the cache
    // (a cached key's bytes were parsed and checked when it was added).
    let mut label_msgs: Vec<&[u8]> = Vec::new();
    let mut points: Vec<(f64, i64)> = Vec::new();
    let mut ranges: Vec<(usize, usize, usize, usize)> = Vec::with_capacity(series.len());
    for ts in &series {
        let (l0, s0) = (label_msgs.len(), points.len());
        let mut other = false;
        fields(ts, |field, wire, w| {
            match (field, wire) {
                (1, 2) => label_msgs.push(w.bytes()?),
                (2, 2) => points.push(sample(w.bytes()?)?),
                // Exemplars and histograms: the prost path.
                (3 | 4, _) => other = true,
                (1 | 2, _) => return None,
                _ => w.skip(wire)?,
            }
            Some(())
        })?;
        if other {
            return None;
        }
        ranges.push((l0, label_msgs.len(), s0, points.len()));
    }
    let mut b = BatchBuilder::new(limits, points.len());
    b.batch.report.series = series.len() as u64;
    let types = add_metadata(&mut b, metadata);
    let mut key = Vec::new();
    for (si, &(l0, l1, s0, s1)) in ranges.iter().enumerate() {
        let labels = &label_msgs[l0..l1];
        key.clear();
        for l in labels {
            push_len(&mut key, l.len());
            key.extend_from_slice(l);
        }
        let series = lookup(&key, labels, limits)?;
        let kind = if types.is_empty() {
            MetricType::Unknown
        } else {
            lookup_type(&types, &series.name)
        };
        let samples = &points[s0..s1];
        b.reserve(si, samples.len()).ok()?;
        b.charge(si, samples.len(), series.each).ok()?;
        for (i, &(value, ms)) in samples.iter().enumerate() {
            let t = millis(ms, || format!("samples[{i}]")).ok()?;
            b.sample(series.name.clone(), series.labels.clone(), kind, value, t);
        }
    }
    Some(b.batch)
}

/// The name and labels of a series from its label messages, or `None`
/// when one is malformed or [`split_name`] refuses them.
fn intern(msgs: &[&[u8]], limits: &Limits) -> Option<Interned> {
    let labels = msgs
        .iter()
        .map(|m| {
            let (name, value) = label(m)?;
            Some(Label {
                name: name.into(),
                value: value.into(),
            })
        })
        .collect::<Option<Vec<Label>>>()?;
    let (name, labels) = split_name(labels, limits).ok()?;
    let each = sample_bytes(&name, labels.as_slice());
    Some(Interned { name, labels, each })
}

fn push_len(key: &mut Vec<u8>, mut n: usize) {
    while n >= 0x80 {
        key.push((n as u8) | 0x80);
        n >>= 7;
    }
    key.push(n as u8);
}
