//! Log records in the batch format.
//!
//! Each record starts with a flag word that says which optional fields
//! follow, so an absent field costs nothing. Ids and timestamps are written
//! as zigzag deltas from the previous record: ids from one receiver are
//! consecutive and timestamps in one request are close, so both usually take
//! one or two bytes instead of 16 and 8. The tenant and source are written as
//! "same as the batch" when they are, which is the normal case.

use super::CodecError;
use super::wire::{Reader, Writer};
use crate::event::{
    EventId, Facility, FieldValue, LogRecord, SdElement, Severity, Tenant, Timestamp,
};

const HAS_ID: u32 = 1;
const TENANT_SHIFT: u32 = 1; // 2 bits: 0 none, 1 batch's, 2 explicit
const HAS_SEVERITY: u32 = 1 << 3;
const HAS_FACILITY: u32 = 1 << 4;
const HAS_HOST: u32 = 1 << 5;
const HAS_APP: u32 = 1 << 6;
const HAS_PROCID: u32 = 1 << 7;
const HAS_MSGID: u32 = 1 << 8;
const HAS_MESSAGE: u32 = 1 << 9;
const SOURCE_SHIFT: u32 = 10; // 2 bits: 0 none, 1 batch's, 2 explicit
const HAS_PARSE_ERROR: u32 = 1 << 12;
const HAS_SD: u32 = 1 << 13;
const HAS_ATTRIBUTES: u32 = 1 << 14;
const KNOWN_FLAGS: u32 = (1 << 15) - 1;

const SAME: u32 = 1;
const EXPLICIT: u32 = 2;

const VALUE_NULL: u8 = 0;
const VALUE_FALSE: u8 = 1;
const VALUE_TRUE: u8 = 2;
const VALUE_INT: u8 = 3;
const VALUE_FLOAT: u8 = 4;
const VALUE_STR: u8 = 5;

/// Bits of an event id below its 48-bit millisecond part.
const ID_LOW_BITS: u32 = 80;
const ID_LOW_MASK: u128 = (1 << ID_LOW_BITS) - 1;

/// Delta state carried from one record to the next. An id is delta-coded in
/// two parts, its milliseconds and the 80 bits below, so consecutive ids
/// from one generator cost two bytes even when the millisecond ticks over.
#[derive(Default)]
pub(super) struct LogState {
    prev_id_ms: i64,
    prev_id_low: i128,
    prev_ts: i64,
}

fn sharing<T: PartialEq>(own: Option<&T>, batch: Option<&T>) -> u32 {
    match own {
        None => 0,
        Some(v) if Some(v) == batch => SAME,
        Some(_) => EXPLICIT,
    }
}

pub(super) fn encode(
    w: &mut Writer<'_>,
    st: &mut LogState,
    r: &LogRecord,
    tenant: &Tenant,
    source: Option<&String>,
) {
    let tenant_mode = sharing(r.tenant.as_ref(), Some(tenant));
    let source_mode = sharing(r.source.as_ref(), source);
    let mut flags = (tenant_mode << TENANT_SHIFT) | (source_mode << SOURCE_SHIFT);
    let mut set = |present: bool, bit: u32| {
        if present {
            flags |= bit;
        }
    };
    set(r.id.is_some(), HAS_ID);
    set(r.severity.is_some(), HAS_SEVERITY);
    set(r.facility.is_some(), HAS_FACILITY);
    set(r.host.is_some(), HAS_HOST);
    set(r.app.is_some(), HAS_APP);
    set(r.procid.is_some(), HAS_PROCID);
    set(r.msgid.is_some(), HAS_MSGID);
    set(r.message.is_some(), HAS_MESSAGE);
    set(r.parse_error.is_some(), HAS_PARSE_ERROR);
    set(!r.structured_data.is_empty(), HAS_SD);
    set(!r.attributes.is_empty(), HAS_ATTRIBUTES);
    w.varint(u64::from(flags));

    if let Some(id) = r.id {
        let bits = id.as_u128();
        let ms = (bits >> ID_LOW_BITS) as i64; // 48 bits: never negative
        let low = (bits & ID_LOW_MASK) as i128;
        w.zigzag(ms - st.prev_id_ms);
        w.zigzag128(low - st.prev_id_low);
        st.prev_id_ms = ms;
        st.prev_id_low = low;
    }
    if tenant_mode == EXPLICIT
        && let Some(t) = &r.tenant
    {
        w.str(t.as_str());
    }
    let ts = r.timestamp.as_nanos();
    w.zigzag(ts.wrapping_sub(st.prev_ts));
    st.prev_ts = ts;
    if let Some(s) = r.severity {
        w.u8(s.code());
    }
    if let Some(f) = r.facility {
        w.u8(f.code());
    }
    for s in [&r.host, &r.app, &r.procid, &r.msgid].into_iter().flatten() {
        w.str(s);
    }
    if let Some(m) = &r.message {
        w.bytes(m);
    }
    if source_mode == EXPLICIT
        && let Some(s) = &r.source
    {
        w.str(s);
    }
    if let Some(e) = &r.parse_error {
        w.str(e);
    }
    if !r.structured_data.is_empty() {
        w.len(r.structured_data.len());
        for el in &r.structured_data {
            w.str(&el.id);
            w.len(el.params.len());
            for (k, v) in &el.params {
                w.str(k);
                w.str(v);
            }
        }
    }
    if !r.attributes.is_empty() {
        w.len(r.attributes.len());
        for (k, v) in &r.attributes {
            w.str(k);
            encode_value(w, v);
        }
    }
}

fn encode_value(w: &mut Writer<'_>, v: &FieldValue) {
    match v {
        FieldValue::Null => w.u8(VALUE_NULL),
        FieldValue::Bool(false) => w.u8(VALUE_FALSE),
        FieldValue::Bool(true) => w.u8(VALUE_TRUE),
        FieldValue::Int(i) => {
            w.u8(VALUE_INT);
            w.zigzag(*i);
        }
        FieldValue::Float(f) => {
            w.u8(VALUE_FLOAT);
            w.f64(*f);
        }
        FieldValue::Str(s) => {
            w.u8(VALUE_STR);
            w.str(s);
        }
    }
}

fn decode_shared<T: Clone>(
    rd: &mut Reader<'_>,
    mode: u32,
    batch: Option<&T>,
    at: usize,
    what: &'static str,
    explicit: impl FnOnce(&mut Reader<'_>) -> Result<T, CodecError>,
) -> Result<Option<T>, CodecError> {
    match mode {
        0 => Ok(None),
        SAME => batch.cloned().map(Some).ok_or_else(|| rd.invalid(at, what)),
        EXPLICIT => explicit(rd).map(Some),
        _ => Err(rd.invalid(at, what)),
    }
}

pub(super) fn decode(
    rd: &mut Reader<'_>,
    st: &mut LogState,
    tenant: &Tenant,
    source: Option<&String>,
) -> Result<LogRecord, CodecError> {
    let at = rd.pos();
    let flags = rd.varint("log record flags")?;
    if flags & !u64::from(KNOWN_FLAGS) != 0 {
        return Err(rd.invalid(at, "log record flags"));
    }
    let flags = flags as u32;
    let has = |bit: u32| flags & bit != 0;

    let id = if has(HAS_ID) {
        let id_at = rd.pos();
        let ms = st.prev_id_ms.checked_add(rd.zigzag("event id")?);
        let low = st.prev_id_low.checked_add(rd.zigzag128("event id")?);
        match (ms, low) {
            (Some(ms), Some(low))
                if (0..1i64 << 48).contains(&ms) && (0..=ID_LOW_MASK as i128).contains(&low) =>
            {
                st.prev_id_ms = ms;
                st.prev_id_low = low;
                Some(EventId::from_u128(
                    ((ms as u128) << ID_LOW_BITS) | low as u128,
                ))
            }
            _ => return Err(rd.invalid(id_at, "event id")),
        }
    } else {
        None
    };
    let tenant = decode_shared(
        rd,
        (flags >> TENANT_SHIFT) & 3,
        Some(tenant),
        at,
        "log record tenant",
        |rd| {
            let t_at = rd.pos();
            let s = rd.string("tenant")?;
            Tenant::new(&s).map_err(|_| rd.invalid(t_at, "tenant"))
        },
    )?;
    st.prev_ts = st.prev_ts.wrapping_add(rd.zigzag("timestamp")?);
    let timestamp = Timestamp::from_nanos(st.prev_ts);
    let severity = if has(HAS_SEVERITY) {
        let p = rd.pos();
        Some(Severity::from_code(rd.u8("severity")?).ok_or_else(|| rd.invalid(p, "severity"))?)
    } else {
        None
    };
    let facility = if has(HAS_FACILITY) {
        let p = rd.pos();
        Some(Facility::from_code(rd.u8("facility")?).ok_or_else(|| rd.invalid(p, "facility"))?)
    } else {
        None
    };
    let mut opt = |bit: u32, what: &'static str| -> Result<Option<String>, CodecError> {
        if has(bit) {
            rd.string(what).map(Some)
        } else {
            Ok(None)
        }
    };
    let host = opt(HAS_HOST, "host")?;
    let app = opt(HAS_APP, "app")?;
    let procid = opt(HAS_PROCID, "procid")?;
    let msgid = opt(HAS_MSGID, "msgid")?;
    let message = if has(HAS_MESSAGE) {
        Some(rd.bytes("message")?.to_vec())
    } else {
        None
    };
    let source = decode_shared(
        rd,
        (flags >> SOURCE_SHIFT) & 3,
        source,
        at,
        "log record source",
        |rd| rd.string("source"),
    )?;
    let parse_error = if has(HAS_PARSE_ERROR) {
        Some(rd.string("parse_error")?)
    } else {
        None
    };
    let mut structured_data = Vec::new();
    if has(HAS_SD) {
        // An element is at least an id length and a parameter count.
        let n = rd.count(2, "structured data element count")?;
        structured_data.reserve_exact(n);
        for _ in 0..n {
            let id = rd.string("SD-ID")?;
            let np = rd.count(2, "SD parameter count")?;
            let mut params = Vec::with_capacity(np);
            for _ in 0..np {
                let k = rd.string("SD parameter name")?;
                let v = rd.string("SD parameter value")?;
                params.push((k, v));
            }
            structured_data.push(SdElement { id, params });
        }
    }
    let mut attributes = Vec::new();
    if has(HAS_ATTRIBUTES) {
        let n = rd.count(2, "attribute count")?;
        attributes.reserve_exact(n);
        for _ in 0..n {
            let k = rd.string("attribute name")?;
            attributes.push((k, decode_value(rd)?));
        }
    }
    Ok(LogRecord {
        id,
        tenant,
        timestamp,
        severity,
        facility,
        host,
        app,
        procid,
        msgid,
        structured_data,
        message,
        source,
        attributes,
        parse_error,
    })
}

fn decode_value(rd: &mut Reader<'_>) -> Result<FieldValue, CodecError> {
    let at = rd.pos();
    Ok(match rd.u8("attribute value type")? {
        VALUE_NULL => FieldValue::Null,
        VALUE_FALSE => FieldValue::Bool(false),
        VALUE_TRUE => FieldValue::Bool(true),
        VALUE_INT => FieldValue::Int(rd.zigzag("integer attribute")?),
        VALUE_FLOAT => FieldValue::Float(rd.f64("float attribute")?),
        VALUE_STR => FieldValue::Str(rd.string("string attribute")?),
        _ => return Err(rd.invalid(at, "attribute value type")),
    })
}
