//! Remote write 1.0 decoded straight from the bytes: the hot path.
//!
//! Generated code decodes a `WriteRequest` into a tree of `Vec`s and `String`s
//! (one allocation per label name and value, per series' label and sample lists)
//! which we then take apart into [`MetricSample`](crate::event::MetricSample)s.
//! This reader instead walks the protobuf once, keeping labels as `&str` into
//! the decompressed body and samples in one flat list, and allocates only what the
//! output owns. Exemplars, native histograms and metadata are rare and are
//! decoded with the generated types. Measured in `benches/remote_write.rs`.
//!
//! Same input, same result: the conversion after the walk is `v1::add_series`,
//! shared with the generated-code path, and the walk follows prost's rules (see
//! `wire.rs`); the `remote_write_v1` fuzz target compares the two.

use std::ops::Range;

use killkrill_proto::prometheus as pb;
use prost::Message;

use crate::event::Label;

use super::Limits;
use super::batch::{BatchBuilder, WriteBatch};
use super::error::RemoteWriteError;
use super::v1::{add_metadata, add_series};
use super::wire::{FIXED64, LEN, RECURSION_LIMIT, Reader, VARINT, WireError};

const MESSAGE: &str = "prometheus.WriteRequest";

fn proto_err(e: WireError) -> RemoteWriteError {
    RemoteWriteError::Protobuf {
        message: MESSAGE,
        detail: e.to_string(),
    }
}

fn prost_err(at: usize) -> impl Fn(prost::DecodeError) -> RemoteWriteError {
    move |e| RemoteWriteError::Protobuf {
        message: MESSAGE,
        detail: format!("{e} (in the message at byte {at})"),
    }
}

/// Where one series' parts are in the flat lists.
struct SeriesRef {
    labels: Range<usize>,
    samples: Range<usize>,
    exemplars: Range<usize>,
    histograms: Range<usize>,
}

/// Everything of a request, borrowed from its bytes where possible.
#[derive(Default)]
struct Parts<'a> {
    series: Vec<SeriesRef>,
    labels: Vec<(&'a str, &'a str)>,
    samples: Vec<(f64, i64)>,
    exemplars: Vec<pb::Exemplar>,
    histograms: Vec<pb::Histogram>,
    metadata: Vec<pb::MetricMetadata>,
}

/// Decodes an uncompressed 1.0 `WriteRequest`.
pub(super) fn decode(raw: &[u8], limits: &Limits) -> Result<WriteBatch, RemoteWriteError> {
    let parts = walk(raw, limits)?;
    let mut b = BatchBuilder::new(limits.max_samples, parts.samples.len());
    b.batch.report.series = parts.series.len() as u64;
    let types = add_metadata(&mut b, parts.metadata);
    for (si, s) in parts.series.iter().enumerate() {
        let labels = parts.labels[s.labels.clone()]
            .iter()
            .map(|&(n, v)| Label {
                name: n.to_owned(),
                value: v.to_owned(),
            })
            .collect();
        add_series(
            &mut b,
            si,
            labels,
            &parts.samples[s.samples.clone()],
            &parts.exemplars[s.exemplars.clone()],
            &parts.histograms[s.histograms.clone()],
            &types,
            limits,
        )?;
    }
    Ok(b.batch)
}

/// The wire walk: validates the whole message (as prost would) before any series
/// is converted, so a malformed body is reported as such.
fn walk<'a>(raw: &'a [u8], limits: &Limits) -> Result<Parts<'a>, RemoteWriteError> {
    let mut p = Parts::default();
    let mut r = Reader::new(raw, 0);
    while !r.is_empty() {
        let (field, wire) = r.key().map_err(proto_err)?;
        match field {
            1 => {
                r.expect(wire, LEN).map_err(proto_err)?;
                let (body, at) = r.bytes().map_err(proto_err)?;
                if p.series.len() == limits.max_series {
                    // Stop before storing more than the limit.
                    return Err(RemoteWriteError::TooManySeries {
                        max: limits.max_series,
                    });
                }
                series(body, at, &mut p)?;
            }
            3 => {
                r.expect(wire, LEN).map_err(proto_err)?;
                let (body, at) = r.bytes().map_err(proto_err)?;
                p.metadata
                    .push(pb::MetricMetadata::decode(body).map_err(prost_err(at))?);
            }
            _ => r.skip(wire, field, RECURSION_LIMIT).map_err(proto_err)?,
        }
    }
    Ok(p)
}

fn series<'a>(body: &'a [u8], at: usize, p: &mut Parts<'a>) -> Result<(), RemoteWriteError> {
    let (l0, s0, e0, h0) = (
        p.labels.len(),
        p.samples.len(),
        p.exemplars.len(),
        p.histograms.len(),
    );
    let mut r = Reader::new(body, at);
    while !r.is_empty() {
        let (field, wire) = r.key().map_err(proto_err)?;
        match field {
            1 => {
                r.expect(wire, LEN).map_err(proto_err)?;
                let (b, at) = r.bytes().map_err(proto_err)?;
                p.labels.push(label(b, at).map_err(proto_err)?);
            }
            2 => {
                r.expect(wire, LEN).map_err(proto_err)?;
                let (b, at) = r.bytes().map_err(proto_err)?;
                p.samples.push(sample(b, at).map_err(proto_err)?);
            }
            3 => {
                r.expect(wire, LEN).map_err(proto_err)?;
                let (b, at) = r.bytes().map_err(proto_err)?;
                p.exemplars
                    .push(pb::Exemplar::decode(b).map_err(prost_err(at))?);
            }
            4 => {
                r.expect(wire, LEN).map_err(proto_err)?;
                let (b, at) = r.bytes().map_err(proto_err)?;
                p.histograms
                    .push(pb::Histogram::decode(b).map_err(prost_err(at))?);
            }
            _ => r
                .skip(wire, field, RECURSION_LIMIT - 1)
                .map_err(proto_err)?,
        }
    }
    p.series.push(SeriesRef {
        labels: l0..p.labels.len(),
        samples: s0..p.samples.len(),
        exemplars: e0..p.exemplars.len(),
        histograms: h0..p.histograms.len(),
    });
    Ok(())
}

fn label(body: &[u8], at: usize) -> Result<(&str, &str), WireError> {
    let (mut name, mut value) = ("", "");
    let mut r = Reader::new(body, at);
    while !r.is_empty() {
        let (field, wire) = r.key()?;
        match field {
            1 => {
                r.expect(wire, LEN)?;
                name = r.str()?;
            }
            2 => {
                r.expect(wire, LEN)?;
                value = r.str()?;
            }
            _ => r.skip(wire, field, RECURSION_LIMIT - 2)?,
        }
    }
    Ok((name, value))
}

fn sample(body: &[u8], at: usize) -> Result<(f64, i64), WireError> {
    let (mut value, mut ts) = (0.0, 0);
    let mut r = Reader::new(body, at);
    while !r.is_empty() {
        let (field, wire) = r.key()?;
        match field {
            1 => {
                r.expect(wire, FIXED64)?;
                value = f64::from_bits(r.fixed64()?);
            }
            2 => {
                r.expect(wire, VARINT)?;
                ts = r.varint()? as i64;
            }
            _ => r.skip(wire, field, RECURSION_LIMIT - 2)?,
        }
    }
    Ok((value, ts))
}
