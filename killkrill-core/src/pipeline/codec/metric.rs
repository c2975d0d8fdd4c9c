//! Metric samples and metadata in the batch format.
//!
//! Values are the raw IEEE-754 bits, so NaN payloads (Prometheus' staleness
//! marker is a specific NaN) survive exactly. Timestamps are zigzag deltas
//! from the previous sample. Labels are checked on decode to be strictly
//! sorted by name, the invariant [`Labels`] promises.

use super::CodecError;
use super::wire::{Reader, Writer};
use crate::event::{
    Label, Labels, MetricMetadata, MetricSample, MetricText, MetricType, Tenant, Timestamp,
};

const TENANT_MASK: u8 = 3; // 0 none, 1 batch's, 2 explicit
const HAS_TIMESTAMP: u8 = 1 << 2;
const KNOWN_FLAGS: u8 = 7;

const TYPES: [MetricType; 8] = [
    MetricType::Counter,
    MetricType::Gauge,
    MetricType::Histogram,
    MetricType::GaugeHistogram,
    MetricType::Summary,
    MetricType::Info,
    MetricType::StateSet,
    MetricType::Unknown,
];

fn type_code(t: MetricType) -> u8 {
    TYPES.iter().position(|x| *x == t).unwrap_or(7) as u8
}

fn decode_type(rd: &mut Reader<'_>) -> Result<MetricType, CodecError> {
    let at = rd.pos();
    let c = rd.u8("metric type")?;
    TYPES
        .get(usize::from(c))
        .copied()
        .ok_or_else(|| rd.invalid(at, "metric type"))
}

/// Delta state carried from one sample to the next.
#[derive(Default)]
pub(super) struct MetricState {
    prev_ts: i64,
}

pub(super) fn encode(w: &mut Writer<'_>, st: &mut MetricState, m: &MetricSample, tenant: &Tenant) {
    let tenant_mode = match &m.tenant {
        None => 0,
        Some(t) if t == tenant => 1,
        Some(_) => 2,
    };
    let mut flags = tenant_mode;
    if m.timestamp.is_some() {
        flags |= HAS_TIMESTAMP;
    }
    w.u8(flags);
    w.u8(type_code(m.kind));
    w.str(&m.name);
    w.len(m.labels.len());
    for l in m.labels.iter() {
        w.str(&l.name);
        w.str(&l.value);
    }
    w.f64(m.value);
    if let Some(ts) = m.timestamp {
        w.zigzag(ts.as_nanos().wrapping_sub(st.prev_ts));
        st.prev_ts = ts.as_nanos();
    }
    if tenant_mode == 2
        && let Some(t) = &m.tenant
    {
        w.str(t.as_str());
    }
}

pub(super) fn decode(
    rd: &mut Reader<'_>,
    st: &mut MetricState,
    tenant: &Tenant,
) -> Result<MetricSample, CodecError> {
    let at = rd.pos();
    let flags = rd.u8("metric sample flags")?;
    if flags & !KNOWN_FLAGS != 0 || flags & TENANT_MASK == 3 {
        return Err(rd.invalid(at, "metric sample flags"));
    }
    let kind = decode_type(rd)?;
    let name = MetricText::from(rd.str("metric name")?);
    let n = rd.count(2, "label count")?;
    let mut labels: Vec<Label> = Vec::with_capacity(n);
    for _ in 0..n {
        let l_at = rd.pos();
        let name = MetricText::from(rd.str("label name")?);
        let value = MetricText::from(rd.str("label value")?);
        if labels.last().is_some_and(|prev| prev.name >= name) {
            return Err(rd.invalid(l_at, "label order (names must be sorted and unique)"));
        }
        labels.push(Label { name, value });
    }
    let value = rd.f64("sample value")?;
    let timestamp = if flags & HAS_TIMESTAMP != 0 {
        st.prev_ts = st.prev_ts.wrapping_add(rd.zigzag("sample timestamp")?);
        Some(Timestamp::from_nanos(st.prev_ts))
    } else {
        None
    };
    let tenant = match flags & TENANT_MASK {
        0 => None,
        1 => Some(tenant.clone()),
        _ => {
            let t_at = rd.pos();
            let s = rd.string("sample tenant")?;
            Some(Tenant::new(&s).map_err(|_| rd.invalid(t_at, "sample tenant"))?)
        }
    };
    Ok(MetricSample {
        tenant,
        name,
        labels: Labels::from_sorted(labels),
        value,
        timestamp,
        kind,
    })
}

pub(super) fn encode_metadata(w: &mut Writer<'_>, m: &MetricMetadata) {
    w.str(&m.family);
    w.u8(type_code(m.kind));
    w.opt_str(m.help.as_deref());
    w.opt_str(m.unit.as_deref());
}

pub(super) fn decode_metadata(rd: &mut Reader<'_>) -> Result<MetricMetadata, CodecError> {
    let family = rd.string("metadata family")?;
    let kind = decode_type(rd)?;
    let help = rd.opt_string("metadata help")?;
    let unit = rd.opt_string("metadata unit")?;
    Ok(MetricMetadata {
        family,
        kind,
        help,
        unit,
    })
}

/// The metric type with code `i % 8`, for the codec's property tests.
#[cfg(test)]
pub(super) fn tests_type(i: usize) -> MetricType {
    TYPES[i % TYPES.len()]
}
