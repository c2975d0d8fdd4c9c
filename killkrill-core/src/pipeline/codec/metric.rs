//! Metric samples and metadata in the batch format.
//!
//! Values are the raw IEEE-754 bits, so NaN payloads (Prometheus' staleness
//! marker is a specific NaN) survive exactly. Timestamps are zigzag deltas
//! from the previous sample. Labels are checked on decode to be strictly
//! sorted by name, the invariant [`Labels`] promises.
//!
//! Version 1 writes every sample with its series (flags, type, name,
//! labels, value, timestamp). Version 2 writes *runs*: consecutive samples
//! of one series (same tenant, type, name and labels, and all with or all
//! without a timestamp) share one series header, then each sample is only
//! its value and timestamp delta:
//!
//! ```text
//! varint n                    samples in the batch
//! runs until n samples are read:
//!   varint (k << 1) | has_ts  k ≥ 1 samples in this run
//!   u8 flags (tenant mode), u8 type, str name, varint m, m × (str, str),
//!   [str tenant when the tenant mode is "explicit"]
//!   k × (f64 value, [zigzag timestamp delta])
//! ```
//!
//! A remote_write request sends each series' samples together, so a batch
//! of 100 series × 10 samples carries 100 label sets instead of 1,000.
//! Because one header stands for up to `k` decoded label sets, a decoder
//! counts what it expands against a byte budget (see [`decode_runs`]).

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

/// Whether `b` continues the run that `a` started.
fn same_run(a: &MetricSample, b: &MetricSample) -> bool {
    a.timestamp.is_some() == b.timestamp.is_some()
        && a.kind == b.kind
        && a.name == b.name
        && a.labels == b.labels
        && a.tenant == b.tenant
}

/// Version 2: the samples as runs of one series each (layout above).
pub(super) fn encode_runs(w: &mut Writer<'_>, samples: &[MetricSample], tenant: &Tenant) {
    w.len(samples.len());
    let mut prev_ts = 0i64;
    let mut rest = samples;
    while let Some(first) = rest.first() {
        let k = 1 + rest[1..].iter().take_while(|m| same_run(first, m)).count();
        let has_ts = first.timestamp.is_some();
        w.varint(((k as u64) << 1) | u64::from(has_ts));
        let tenant_mode = match &first.tenant {
            None => 0,
            Some(t) if t == tenant => 1,
            Some(_) => 2,
        };
        w.u8(tenant_mode);
        w.u8(type_code(first.kind));
        w.str(&first.name);
        w.len(first.labels.len());
        for l in first.labels.iter() {
            w.str(&l.name);
            w.str(&l.value);
        }
        if tenant_mode == 2
            && let Some(t) = &first.tenant
        {
            w.str(t.as_str());
        }
        for m in &rest[..k] {
            w.f64(m.value);
            if let Some(ts) = m.timestamp {
                w.zigzag(ts.as_nanos().wrapping_sub(prev_ts));
                prev_ts = ts.as_nanos();
            }
        }
        rest = &rest[k..];
    }
}

/// Version 2: reads the runs back into samples. The samples of a run share
/// its label set (a clone of [`Labels`] is a reference count), so code
/// downstream can see runs with [`Labels::shares`]. The expansion is still
/// counted as if each sample held its own copy (with the estimate
/// [`sample_bytes`](crate::decode_budget::sample_bytes)) against `budget`
/// bytes, so [`CodecError::TooLarge`] stops the same inputs as when samples
/// did: a small input whose samples would expand past it, were they copied
/// (a JSON rendering or a store row does copy them).
pub(super) fn decode_runs(
    rd: &mut Reader<'_>,
    tenant: &Tenant,
    budget: usize,
) -> Result<Vec<MetricSample>, CodecError> {
    // A sample is at least its 8-byte value.
    let n = rd.count(8, "metric sample count")?;
    let mut out = Vec::with_capacity(n);
    let mut prev_ts = 0i64;
    let mut used = 0usize;
    while out.len() < n {
        let at = rd.pos();
        let head = rd.varint("metric run header")?;
        let k = head >> 1;
        let has_ts = head & 1 == 1;
        if k == 0 || k > (n - out.len()) as u64 {
            return Err(rd.invalid(at, "metric run length"));
        }
        let k = k as usize;
        let f_at = rd.pos();
        let flags = rd.u8("metric series flags")?;
        if flags > 2 {
            return Err(rd.invalid(f_at, "metric series flags"));
        }
        let kind = decode_type(rd)?;
        let name = MetricText::from(rd.str("metric name")?);
        let m = rd.count(2, "label count")?;
        let mut labels: Vec<Label> = Vec::with_capacity(m);
        for _ in 0..m {
            let l_at = rd.pos();
            let name = MetricText::from(rd.str("label name")?);
            let value = MetricText::from(rd.str("label value")?);
            if labels.last().is_some_and(|prev| prev.name >= name) {
                return Err(rd.invalid(l_at, "label order (names must be sorted and unique)"));
            }
            labels.push(Label { name, value });
        }
        let series_tenant = match flags {
            0 => None,
            1 => Some(tenant.clone()),
            _ => {
                let t_at = rd.pos();
                let s = rd.string("sample tenant")?;
                Some(Tenant::new(&s).map_err(|_| rd.invalid(t_at, "sample tenant"))?)
            }
        };
        let each = crate::decode_budget::sample_bytes(&name, &labels);
        used = used.saturating_add(each.saturating_mul(k));
        if used > budget {
            return Err(CodecError::TooLarge { limit: budget });
        }
        let labels = Labels::from_sorted(labels);
        for _ in 0..k {
            let value = rd.f64("sample value")?;
            let timestamp = if has_ts {
                prev_ts = prev_ts.wrapping_add(rd.zigzag("sample timestamp")?);
                Some(Timestamp::from_nanos(prev_ts))
            } else {
                None
            };
            out.push(MetricSample {
                tenant: series_tenant.clone(),
                name: name.clone(),
                labels: labels.clone(),
                value,
                timestamp,
                kind,
            });
        }
    }
    Ok(out)
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
