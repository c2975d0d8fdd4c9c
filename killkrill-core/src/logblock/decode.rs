//! Block payload decoding into a columnar view.
//!
//! Decoding validates everything once (lengths, UTF-8, tags) and keeps the
//! columns as offsets into the decompressed frame. The query engine then
//! filters on cheap columns (time, severity, host) and materialises a
//! [`LogRecord`] only for the records it returns, which is what makes a
//! selective query over a 4,096-record block cheap.

use std::sync::OnceLock;

use super::BlockError;
use super::encode::PAYLOAD_VERSION;
use super::token_memo::{TokenHits, TokenMemo};
use super::wire::{Reader, unzigzag};
use crate::event::{
    EventId, Facility, FieldValue, LogRecord, SdElement, Severity, Tenant, Timestamp,
};

/// A record's structured data and attributes.
pub type Fields = (Vec<SdElement>, Vec<(String, FieldValue)>);

/// Largest frame accepted (decompressed bytes).
pub const MAX_FRAME_BYTES: usize = 256 << 20;
/// Most records accepted in one block.
pub const MAX_BLOCK_RECORDS: usize = 1 << 20;

/// What [`Dict::lookup`] found.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum DictLookup {
    /// No record holds the value.
    Absent,
    /// Records holding the value carry this code.
    Code(u32),
    /// The value occurs more than once in the dictionary (an encoder never
    /// writes that): compare strings.
    Repeated,
}

/// A dictionary column: each distinct value once, and a code per record.
#[derive(Debug, Clone, Default)]
pub struct Dict {
    pub(super) values: Vec<String>,
    /// Per record: 0 = none, k = `values[k - 1]`.
    pub(super) idx: Vec<u32>,
}

impl Dict {
    fn read(r: &mut Reader<'_>, n: usize) -> Result<Self, BlockError> {
        let len = r.len(n)?;
        let mut values = Vec::with_capacity(len);
        for _ in 0..len {
            values.push(r.str()?.to_owned());
        }
        let mut idx = Vec::with_capacity(n);
        for _ in 0..n {
            idx.push(r.len(len)? as u32);
        }
        Ok(Dict { values, idx })
    }

    /// The code of the records holding `value` (a filter then compares
    /// codes, not strings).
    pub fn lookup(&self, value: &str) -> DictLookup {
        let mut found = DictLookup::Absent;
        for (k, v) in self.values.iter().enumerate() {
            if v == value {
                if found != DictLookup::Absent {
                    return DictLookup::Repeated;
                }
                found = DictLookup::Code(k as u32 + 1);
            }
        }
        found
    }

    /// Record `i`'s code (0: no value).
    #[inline]
    pub fn code(&self, i: usize) -> u32 {
        self.idx[i]
    }

    /// Record `i`'s value.
    #[inline]
    pub fn get(&self, i: usize) -> Option<&str> {
        match self.idx[i] {
            0 => None,
            k => Some(self.values[k as usize - 1].as_str()),
        }
    }
}

/// A decoded block: columns over one decompressed frame.
#[derive(Debug, Clone)]
pub struct DecodedBlock {
    pub(super) tenant: Tenant,
    pub(super) frame: Vec<u8>,
    pub(super) ts: Vec<i64>,
    pub(super) ids: Vec<EventId>,
    pub(super) sev: Vec<u8>,
    pub(super) fac: Vec<u8>,
    pub(super) host: Dict,
    pub(super) app: Dict,
    pub(super) procid: Dict,
    pub(super) msgid: Dict,
    pub(super) source: Dict,
    /// (start, 1 + length) into `frame`; 0 = none.
    pub(super) msg: Vec<(u32, u32)>,
    pub(super) perr: Vec<(u32, u32)>,
    /// Start of each record's fields in `frame`.
    pub(super) fields: Vec<u32>,
    /// Per severity bound `m` (0..=7), built on first use: the ascending
    /// indices of the records whose code is at most `m`, when they are at
    /// most [`SEVERITY_LIST_SHARE`] of the block (`None`: too many to be
    /// worth a list; a query walks the column).
    pub(super) sev_lists: [OnceLock<Option<Box<[u32]>>>; 8],
    /// Where query tokens occur (see [`token_hits`](Self::token_hits)).
    pub(super) memo: TokenMemo,
    /// Which messages a JSON writer may copy as they are (see
    /// `json.rs`, [`PlainMessages`](super::json::PlainMessages)).
    pub(super) plain: super::json::PlainMessages,
    /// [`byte_len`](Self::byte_len), computed once (summing the
    /// dictionaries walks every distinct value: per call, that was a large
    /// share of a query over many cached blocks).
    pub(super) bytes: usize,
}

/// A severity list is kept when at most one record in this many matches
/// its bound (a walk of the column is as cheap otherwise).
pub const SEVERITY_LIST_SHARE: usize = 4;

fn bytes_column(r: &mut Reader<'_>, n: usize) -> Result<Vec<(u32, u32)>, BlockError> {
    let mut lens = Vec::with_capacity(n);
    for _ in 0..n {
        lens.push(r.len(MAX_FRAME_BYTES)?);
    }
    let mut out = Vec::with_capacity(n);
    for l in lens {
        if l == 0 {
            out.push((0, 0));
        } else {
            let start = r.pos();
            r.take(l - 1)?;
            out.push((start as u32, l as u32));
        }
    }
    Ok(out)
}

fn skip_fields(r: &mut Reader<'_>) -> Result<(), BlockError> {
    let sd = r.len(MAX_FRAME_BYTES)?;
    for _ in 0..sd {
        r.str()?;
        let p = r.len(MAX_FRAME_BYTES)?;
        for _ in 0..p {
            r.str()?;
            r.str()?;
        }
    }
    let a = r.len(MAX_FRAME_BYTES)?;
    for _ in 0..a {
        r.str()?;
        match r.u8()? {
            0..=2 => {}
            3 => {
                r.u64()?;
            }
            4 => {
                r.take(8)?;
            }
            5 => {
                r.str()?;
            }
            t => return Err(r.err(format!("unknown attribute tag {t}"))),
        }
    }
    Ok(())
}

/// Timestamps and severity codes of a payload, without the other columns:
/// what the volume histogram needs from a block its summary cannot answer.
///
/// # Errors
/// [`BlockError::Corrupt`] as for [`DecodedBlock::decode`].
pub fn decode_times(payload: &[u8]) -> Result<(Vec<i64>, Vec<u8>), BlockError> {
    let mut r = Reader::new(payload, "payload");
    let v = r.u8()?;
    if v != PAYLOAD_VERSION {
        return Err(r.err(format!("unknown payload version {v}")));
    }
    let raw_len = r.len(MAX_FRAME_BYTES)?;
    let frame = zstd::bulk::decompress(&payload[r.pos()..], raw_len)
        .map_err(|e| BlockError::corrupt("payload", r.pos(), format!("zstd: {e}")))?;
    let mut r = Reader::new(&frame, "frame");
    let n = r.len(MAX_BLOCK_RECORDS)?;
    let mut ts = Vec::with_capacity(n);
    let mut prev = 0i64;
    for _ in 0..n {
        prev = prev.wrapping_add(unzigzag(r.u64()?));
        ts.push(prev);
    }
    for _ in 0..2 * n {
        r.u64()?;
    }
    let sev = r.take(n)?.to_vec();
    if let Some(bad) = sev.iter().find(|&&s| s > 8) {
        return Err(r.err(format!("severity code {bad}")));
    }
    Ok((ts, sev))
}

impl DecodedBlock {
    /// Decompresses and validates a payload of `tenant`.
    ///
    /// # Errors
    /// [`BlockError::Corrupt`] for an unknown version, a bad zstd frame, or
    /// any column that does not parse.
    pub fn decode(tenant: &Tenant, payload: &[u8]) -> Result<Self, BlockError> {
        let mut r = Reader::new(payload, "payload");
        let v = r.u8()?;
        if v != PAYLOAD_VERSION {
            return Err(r.err(format!("unknown payload version {v}")));
        }
        let raw_len = r.len(MAX_FRAME_BYTES)?;
        let rest = &payload[r.pos()..];
        let frame = zstd::bulk::decompress(rest, raw_len)
            .map_err(|e| BlockError::corrupt("payload", r.pos(), format!("zstd: {e}")))?;
        if frame.len() != raw_len {
            return Err(BlockError::corrupt(
                "payload",
                1,
                format!("frame is {} bytes, header says {raw_len}", frame.len()),
            ));
        }
        Self::from_frame(tenant.clone(), frame)
    }

    pub(crate) fn from_frame(tenant: Tenant, frame: Vec<u8>) -> Result<Self, BlockError> {
        let mut r = Reader::new(&frame, "frame");
        let n = r.len(MAX_BLOCK_RECORDS)?;
        let mut ts = Vec::with_capacity(n);
        let mut prev = 0i64;
        for _ in 0..n {
            prev = prev.wrapping_add(unzigzag(r.u64()?));
            ts.push(prev);
        }
        let mut hi = Vec::with_capacity(n);
        let mut p = 0u64;
        for _ in 0..n {
            p = p.wrapping_add(unzigzag(r.u64()?) as u64);
            hi.push(p);
        }
        let mut ids = Vec::with_capacity(n);
        let mut p = 0u64;
        for h in hi {
            p = p.wrapping_add(unzigzag(r.u64()?) as u64);
            ids.push(EventId::from_u128((u128::from(h) << 64) | u128::from(p)));
        }
        let sev = r.take(n)?.to_vec();
        if let Some(bad) = sev.iter().find(|&&s| s > 8) {
            return Err(r.err(format!("severity code {bad}")));
        }
        let fac = r.take(n)?.to_vec();
        if let Some(bad) = fac.iter().find(|&&f| f > 23 && f != 255) {
            return Err(r.err(format!("facility code {bad}")));
        }
        let host = Dict::read(&mut r, n)?;
        let app = Dict::read(&mut r, n)?;
        let procid = Dict::read(&mut r, n)?;
        let msgid = Dict::read(&mut r, n)?;
        let source = Dict::read(&mut r, n)?;
        let msg = bytes_column(&mut r, n)?;
        let perr = bytes_column(&mut r, n)?;
        for &(s, l) in &perr {
            if l > 0 {
                let b = &frame[s as usize..(s + l - 1) as usize];
                if std::str::from_utf8(b).is_err() {
                    return Err(BlockError::corrupt(
                        "frame",
                        s as usize,
                        "parse_error is not UTF-8",
                    ));
                }
            }
        }
        let mut fields = Vec::with_capacity(n);
        for _ in 0..n {
            fields.push(r.pos() as u32);
            skip_fields(&mut r)?;
        }
        if !r.is_empty() {
            return Err(r.err("trailing bytes"));
        }
        let mut block = DecodedBlock {
            tenant,
            frame,
            ts,
            ids,
            sev,
            fac,
            host,
            app,
            procid,
            msgid,
            source,
            msg,
            perr,
            fields,
            sev_lists: std::array::from_fn(|_| OnceLock::new()),
            memo: TokenMemo::default(),
            plain: super::json::PlainMessages::default(),
            bytes: 0,
        };
        block.bytes = block.measure();
        Ok(block)
    }

    /// Approximate memory held by the decoded block, bytes (for caches).
    /// It includes room for what is built later: the severity lists (each
    /// holds at most a quarter of the records, 4 bytes each, so the 8
    /// together at most 8 bytes per record) and the token memo (at most
    /// 32 answers of one bit per record, so 4 more bytes per record, and
    /// the tokens).
    #[inline]
    pub fn byte_len(&self) -> usize {
        self.bytes
    }

    fn measure(&self) -> usize {
        let dict =
            |d: &Dict| d.idx.len() * 4 + d.values.iter().map(|v| v.len() + 24).sum::<usize>();
        std::mem::size_of::<Self>()
            + self.frame.capacity()
            + self.len() * (8 + 16 + 1 + 1 + 8 + 8 + 4 + 8)
            + dict(&self.host)
            + dict(&self.app)
            + dict(&self.procid)
            + dict(&self.msgid)
            + dict(&self.source)
            + TokenMemo::bound(self.len())
            + super::json::PlainMessages::bytes_for(self.len())
    }

    /// The decompressed frame (every column's bytes; strings stored raw).
    #[inline]
    pub fn frame(&self) -> &[u8] {
        &self.frame
    }

    /// The encoded structured data and attributes of record `i` (the
    /// fields column is the frame's last; string values are stored raw).
    #[inline]
    pub fn field_bytes(&self, i: usize) -> &[u8] {
        let start = self.fields[i] as usize;
        let end = self
            .fields
            .get(i + 1)
            .map_or(self.frame.len(), |&e| e as usize);
        &self.frame[start..end]
    }

    /// Number of records.
    pub fn len(&self) -> usize {
        self.ts.len()
    }

    /// True when the block has no records.
    pub fn is_empty(&self) -> bool {
        self.ts.is_empty()
    }

    /// Timestamp of record `i`.
    #[inline]
    pub fn timestamp(&self, i: usize) -> Timestamp {
        Timestamp::from_nanos(self.ts[i])
    }

    /// Id of record `i`.
    #[inline]
    pub fn id(&self, i: usize) -> EventId {
        self.ids[i]
    }

    /// Severity code of record `i` (8 = none).
    #[inline]
    pub fn severity_code(&self, i: usize) -> u8 {
        self.sev[i]
    }

    /// The ascending indices of the records whose severity code is at most
    /// `m` (as severe as code `m` or more), when they are few: at most one
    /// in [`SEVERITY_LIST_SHARE`] of the block. `None` when they are more
    /// (or `m` > 7: every record with a severity): walk the column instead.
    /// Built on first use for each `m` and kept with the block, so a
    /// selective severity filter over a cached block visits its matches
    /// only instead of every record.
    pub fn severity_at_most(&self, m: u8) -> Option<&[u32]> {
        let slot = self.sev_lists.get(usize::from(m))?;
        slot.get_or_init(|| {
            let count = self.sev.iter().filter(|&&s| s <= m).count();
            if count * SEVERITY_LIST_SHARE > self.sev.len() {
                return None;
            }
            let mut list = Vec::with_capacity(count);
            list.extend(
                self.sev
                    .iter()
                    .enumerate()
                    .filter(|&(_, &s)| s <= m)
                    .map(|(i, _)| i as u32),
            );
            Some(list.into_boxed_slice())
        })
        .as_deref()
    }

    /// Where `token` occurs in the block: remembered with the block (see
    /// [`TokenHits`] and the memo's bounds), computed by `compute` on the
    /// second lookup; `None` on the first (the caller scans as it would
    /// without a memo), for tokens too long to remember and in blocks too
    /// small to keep a memo. The caller decides what a token's hits are and the block
    /// only keeps the answer, so there is one caller: the query engine's
    /// `CompiledFilter::text_walk`.
    pub(crate) fn token_hits(
        &self,
        token: &[u8],
        compute: impl FnOnce() -> TokenHits,
    ) -> Option<std::sync::Arc<TokenHits>> {
        if self.len() < super::token_memo::MIN_MEMO_RECORDS {
            return None;
        }
        self.memo.get_or_compute(token, compute)
    }

    /// Tokens the memo remembers (tests).
    #[cfg(test)]
    pub(crate) fn memo_tokens(&self) -> usize {
        self.memo.len()
    }

    /// The host column.
    #[inline]
    pub fn host_dict(&self) -> &Dict {
        &self.host
    }

    /// The app column.
    #[inline]
    pub fn app_dict(&self) -> &Dict {
        &self.app
    }

    /// The source column.
    #[inline]
    pub fn source_dict(&self) -> &Dict {
        &self.source
    }

    /// Host of record `i`.
    #[inline]
    pub fn host(&self, i: usize) -> Option<&str> {
        self.host.get(i)
    }

    /// App of record `i`.
    #[inline]
    pub fn app(&self, i: usize) -> Option<&str> {
        self.app.get(i)
    }

    /// Source of record `i`.
    #[inline]
    pub fn source(&self, i: usize) -> Option<&str> {
        self.source.get(i)
    }

    /// Where record `i`'s message lies in the [`frame`](Self::frame):
    /// `start..end`, `None` when it has none. Messages are stored one after
    /// the other in record order, so the ranges of the records that have one
    /// ascend and tile [`message_region`](Self::message_region).
    #[inline]
    pub fn message_range(&self, i: usize) -> Option<std::ops::Range<usize>> {
        match self.msg[i] {
            (_, 0) => None,
            (s, l) => Some(s as usize..(s + l - 1) as usize),
        }
    }

    /// The part of the frame holding every message and nothing else
    /// (empty when no record has one).
    pub fn message_region(&self) -> std::ops::Range<usize> {
        let first = (0..self.len()).find_map(|i| self.message_range(i));
        let last = (0..self.len()).rev().find_map(|i| self.message_range(i));
        match (first, last) {
            (Some(a), Some(b)) => a.start..b.end,
            _ => 0..0,
        }
    }

    /// The part of the frame holding every record's structured data and
    /// attributes (the frame's last column; string values stored raw).
    pub fn field_region(&self) -> &[u8] {
        match self.fields.first() {
            Some(&s) => &self.frame[s as usize..],
            None => &[],
        }
    }

    /// Message bytes of record `i`.
    #[inline]
    pub fn message(&self, i: usize) -> Option<&[u8]> {
        match self.msg[i] {
            (_, 0) => None,
            (s, l) => Some(&self.frame[s as usize..(s + l - 1) as usize]),
        }
    }

    /// Structured data and attributes of record `i`.
    ///
    /// # Errors
    /// Never for a block that decoded (it was validated); kept as a result so
    /// a bug here is an error, not a panic.
    pub fn fields(&self, i: usize) -> Result<Fields, BlockError> {
        let start = self.fields[i] as usize;
        let mut r = Reader::new(&self.frame[start..], "fields");
        let nsd = r.len(MAX_FRAME_BYTES)?;
        let mut sd = Vec::with_capacity(nsd);
        for _ in 0..nsd {
            let id = r.str()?.to_owned();
            let np = r.len(MAX_FRAME_BYTES)?;
            let mut params = Vec::with_capacity(np);
            for _ in 0..np {
                params.push((r.str()?.to_owned(), r.str()?.to_owned()));
            }
            sd.push(SdElement { id, params });
        }
        let na = r.len(MAX_FRAME_BYTES)?;
        let mut attrs = Vec::with_capacity(na);
        for _ in 0..na {
            let k = r.str()?.to_owned();
            let v = match r.u8()? {
                0 => FieldValue::Null,
                1 => FieldValue::Bool(false),
                2 => FieldValue::Bool(true),
                3 => FieldValue::Int(unzigzag(r.u64()?)),
                4 => FieldValue::Float(r.f64()?),
                5 => FieldValue::Str(r.str()?.to_owned()),
                t => return Err(r.err(format!("unknown attribute tag {t}"))),
            };
            attrs.push((k, v));
        }
        Ok((sd, attrs))
    }

    /// Whether record `i` has structured data or attributes at all.
    #[inline]
    pub fn has_fields(&self, i: usize) -> bool {
        // Two zero varints (no SD elements, no attributes) are two 0 bytes.
        let s = self.fields[i] as usize;
        self.frame.get(s..s + 2) != Some(&[0, 0])
    }

    /// Materialises record `i`.
    ///
    /// # Errors
    /// See [`fields`](Self::fields).
    pub fn record(&self, i: usize) -> Result<LogRecord, BlockError> {
        let (structured_data, attributes) = self.fields(i)?;
        let parse_error = match self.perr[i] {
            (_, 0) => None,
            (s, l) => Some(
                String::from_utf8_lossy(&self.frame[s as usize..(s + l - 1) as usize]).into_owned(),
            ),
        };
        Ok(LogRecord {
            id: Some(self.ids[i]),
            tenant: Some(self.tenant.clone()),
            timestamp: self.timestamp(i),
            severity: Severity::from_code(self.sev[i]),
            facility: Facility::from_code(self.fac[i]),
            host: self.host.get(i).map(str::to_owned),
            app: self.app.get(i).map(str::to_owned),
            procid: self.procid.get(i).map(str::to_owned),
            msgid: self.msgid.get(i).map(str::to_owned),
            structured_data,
            message: self.message(i).map(<[u8]>::to_vec),
            source: self.source.get(i).map(str::to_owned),
            attributes,
            parse_error,
        })
    }

    /// Materialises every record.
    ///
    /// # Errors
    /// See [`fields`](Self::fields).
    pub fn records(&self) -> Result<Vec<LogRecord>, BlockError> {
        (0..self.len()).map(|i| self.record(i)).collect()
    }
}
