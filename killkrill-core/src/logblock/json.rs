//! The canonical JSON form of a record, written straight from a
//! [`DecodedBlock`]'s columns.
//!
//! The result is byte for byte what serde writes for the materialised
//! [`LogRecord`](crate::event::LogRecord) (see [`crate::event::log`]'s
//! `Serialize`; the tests compare the two on generated records), without
//! building the record: no `String` per host, app or message, strings
//! escaped by a word-at-a-time scanner, the timestamp and id formatted into
//! fixed buffers. A log page of 100 records is ≈50 KB of JSON, and this is
//! most of the work of answering one.

use std::sync::OnceLock;
use std::sync::atomic::{AtomicU8, Ordering};

use base64::Engine as _;
use base64::engine::general_purpose::STANDARD as BASE64;

use super::BlockError;
use super::decode::{DecodedBlock, MAX_FRAME_BYTES};
use super::wire::{Reader, unzigzag};
use crate::event::{Facility, FieldValue, Severity};

const HEX: &[u8; 16] = b"0123456789abcdef";

/// serde_json's escapes: 0 = the byte as it is; `u` = `\u00XX`; otherwise
/// the letter after the backslash.
static ESCAPE: [u8; 256] = {
    let mut t = [0u8; 256];
    let mut i = 0;
    while i < 0x20 {
        t[i] = b'u';
        i += 1;
    }
    t[0x08] = b'b';
    t[0x09] = b't';
    t[0x0a] = b'n';
    t[0x0c] = b'f';
    t[0x0d] = b'r';
    t[b'"' as usize] = b'"';
    t[b'\\' as usize] = b'\\';
    t
};

const ONES: u64 = 0x0101_0101_0101_0101;
const HIGHS: u64 = 0x8080_8080_8080_8080;

/// Whether any of the 8 bytes of `w` is a control character, `"` or `\`
/// (exact as an "any" test: the classic has-less / has-zero bit tricks).
#[inline]
fn word_needs_escape(w: u64) -> bool {
    let control = w.wrapping_sub(ONES * 0x20) & !w;
    let q = w ^ (ONES * u64::from(b'"'));
    let quote = q.wrapping_sub(ONES) & !q;
    let b = w ^ (ONES * u64::from(b'\\'));
    let backslash = b.wrapping_sub(ONES) & !b;
    (control | quote | backslash) & HIGHS != 0
}

/// Writes `s` as a JSON string, escaped exactly as serde_json escapes it.
pub fn write_json_str(out: &mut Vec<u8>, s: &str) {
    let s = s.as_bytes();
    out.reserve(s.len() + 2);
    out.push(b'"');
    let mut start = 0;
    let mut i = 0;
    while i < s.len() {
        if let Some(w) = s.get(i..i + 8) {
            let w = u64::from_le_bytes([w[0], w[1], w[2], w[3], w[4], w[5], w[6], w[7]]);
            if !word_needs_escape(w) {
                i += 8;
                continue;
            }
        }
        let b = s[i];
        let e = ESCAPE[usize::from(b)];
        i += 1;
        if e == 0 {
            continue;
        }
        out.extend_from_slice(&s[start..i - 1]);
        start = i;
        if e == b'u' {
            out.extend_from_slice(b"\\u00");
            out.push(HEX[usize::from(b >> 4)]);
            out.push(HEX[usize::from(b & 0xF)]);
        } else {
            out.push(b'\\');
            out.push(e);
        }
    }
    out.extend_from_slice(&s[start..]);
    out.push(b'"');
}

/// Whether `s` has a byte JSON escapes (a control character, `"`, `\\`).
fn needs_escape(s: &[u8]) -> bool {
    let mut words = s.chunks_exact(8);
    for w in &mut words {
        let w = u64::from_le_bytes([w[0], w[1], w[2], w[3], w[4], w[5], w[6], w[7]]);
        if word_needs_escape(w) {
            return true;
        }
    }
    words
        .remainder()
        .iter()
        .any(|&b| ESCAPE[usize::from(b)] != 0)
}

/// Per record of a decoded block, whether its message is *plain*: valid
/// UTF-8 with no byte JSON escapes, so its JSON string is the bytes
/// between quotes. Learnt the first time a record is written and kept with
/// the (cached) block: a page written again — the same newest page every
/// second, a dashboard's — copies those messages instead of validating
/// and scanning them each time (together about a tenth of a filtered
/// page's time). One byte per record, allocated on first use.
#[derive(Default)]
pub(crate) struct PlainMessages {
    states: OnceLock<Box<[AtomicU8]>>,
}

/// Not learnt yet.
const UNKNOWN: u8 = 0;
const PLAIN: u8 = 1;
const NOT_PLAIN: u8 = 2;

impl PlainMessages {
    /// Whether message `i` (`bytes`, of a block of `n` records) is plain.
    fn is_plain(&self, n: usize, i: usize, bytes: &[u8]) -> bool {
        let states = self
            .states
            .get_or_init(|| (0..n).map(|_| AtomicU8::new(UNKNOWN)).collect());
        let Some(state) = states.get(i) else {
            return false;
        };
        match state.load(Ordering::Relaxed) {
            PLAIN => true,
            NOT_PLAIN => false,
            _ => {
                let plain = std::str::from_utf8(bytes).is_ok() && !needs_escape(bytes);
                state.store(if plain { PLAIN } else { NOT_PLAIN }, Ordering::Relaxed);
                plain
            }
        }
    }

    /// Bytes held once learnt (for the block caches' accounting).
    pub(crate) fn bytes_for(n: usize) -> usize {
        n
    }
}

impl Clone for PlainMessages {
    /// A clone learns again (it is a cache of what the bytes say).
    fn clone(&self) -> Self {
        PlainMessages::default()
    }
}

impl std::fmt::Debug for PlainMessages {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.debug_struct("PlainMessages")
            .field("learning", &self.states.get().is_some())
            .finish()
    }
}

/// A message as the writer will write it.
enum Message<'a> {
    /// Valid UTF-8 with nothing to escape: copied between quotes.
    Plain(&'a [u8]),
    /// Valid UTF-8, written escaped.
    Text(&'a str),
    /// Not UTF-8: written lossily, plus base64.
    Bytes(&'a [u8]),
}

fn write_opt_str(out: &mut Vec<u8>, s: Option<&str>) {
    match s {
        Some(s) => write_json_str(out, s),
        None => out.extend_from_slice(b"null"),
    }
}

/// `"0192f1b4-8c3e-7a00-8000-000000000001"`.
fn write_id(out: &mut Vec<u8>, bytes: [u8; 16]) {
    let mut buf = [0u8; 38];
    buf[0] = b'"';
    let mut o = 1;
    for (i, byte) in bytes.iter().enumerate() {
        if matches!(i, 4 | 6 | 8 | 10) {
            buf[o] = b'-';
            o += 1;
        }
        buf[o] = HEX[usize::from(byte >> 4)];
        buf[o + 1] = HEX[usize::from(byte & 0xF)];
        o += 2;
    }
    buf[37] = b'"';
    out.extend_from_slice(&buf);
}

/// Writes one structured-data element's parameters as serde does: a
/// parameter name that repeats becomes an array of its values, at the
/// place of its first occurrence.
fn write_params(out: &mut Vec<u8>, params: &[(&str, &str)]) {
    out.push(b'{');
    let mut first = true;
    for (i, (name, value)) in params.iter().enumerate() {
        if params[..i].iter().any(|(n, _)| n == name) {
            continue;
        }
        if !first {
            out.push(b',');
        }
        first = false;
        write_json_str(out, name);
        out.push(b':');
        if params[i + 1..].iter().any(|(n, _)| n == name) {
            out.push(b'[');
            let mut first_value = true;
            for (_, v) in params.iter().filter(|(n, _)| n == name) {
                if !first_value {
                    out.push(b',');
                }
                first_value = false;
                write_json_str(out, v);
            }
            out.push(b']');
        } else {
            write_json_str(out, value);
        }
    }
    out.push(b'}');
}

/// Rows whose columns are read ahead of writing (see [`write_json_rows`]).
const READ_AHEAD: usize = 16;

/// What one record's JSON needs from its block, read before any of it is
/// written: the column entries, the dictionary values, the start of its
/// fields and its message (validated), each a load that may miss the cache.
struct RowCols<'a> {
    id: [u8; 16],
    ts: crate::event::Timestamp,
    sev: u8,
    fac: u8,
    host: Option<&'a str>,
    app: Option<&'a str>,
    procid: Option<&'a str>,
    msgid: Option<&'a str>,
    source: Option<&'a str>,
    /// The record's fields, past the count of its structured-data elements.
    fields: Reader<'a>,
    nsd: usize,
    message: Option<Message<'a>>,
    perr: Option<&'a [u8]>,
}

impl DecodedBlock {
    /// Appends the canonical JSON form of record `i` to `out` — the same
    /// bytes as serialising [`record(i)`](Self::record) with serde.
    ///
    /// # Errors
    /// As for [`fields`](Self::fields): never for a block that decoded.
    pub fn write_json(&self, i: usize, out: &mut Vec<u8>) -> Result<(), BlockError> {
        self.cols(i)?.write(&self.tenant, out)
    }

    fn cols(&self, i: usize) -> Result<RowCols<'_>, BlockError> {
        let mut fields = Reader::new(&self.frame[self.fields[i] as usize..], "fields");
        let nsd = fields.len(MAX_FRAME_BYTES)?;
        let message = self.message(i).map(|bytes| {
            if self.plain.is_plain(self.len(), i, bytes) {
                Message::Plain(bytes)
            } else {
                match std::str::from_utf8(bytes) {
                    Ok(text) => Message::Text(text),
                    Err(_) => Message::Bytes(bytes),
                }
            }
        });
        let perr = match self.perr[i] {
            (_, 0) => None,
            (s, l) => Some(&self.frame[s as usize..(s + l - 1) as usize]),
        };
        Ok(RowCols {
            id: self.ids[i].to_bytes(),
            ts: self.timestamp(i),
            sev: self.sev[i],
            fac: self.fac[i],
            host: self.host.get(i),
            app: self.app.get(i),
            procid: self.procid.get(i),
            msgid: self.msgid.get(i),
            source: self.source.get(i),
            fields,
            nsd,
            message,
            perr,
        })
    }
}

/// Appends the JSON of `rows` (each a block and a record index in it, as
/// `at` gives them), comma-separated — the same bytes as
/// [`DecodedBlock::write_json`] of each row in turn.
///
/// A page filtered on several columns takes its rows from dozens of blocks,
/// and each row's columns are cache misses. Reading [`READ_AHEAD`] rows'
/// columns before writing any lets their loads overlap, instead of the
/// writer waiting on them one after another (there is no safe prefetch).
///
/// # Errors
/// The index in `rows` of the first row whose block is damaged, and why.
pub fn write_json_rows<T>(
    rows: &[T],
    at: impl Fn(&T) -> (&DecodedBlock, usize),
    out: &mut Vec<u8>,
) -> Result<(), (usize, BlockError)> {
    let mut ahead: Vec<RowCols<'_>> = Vec::with_capacity(READ_AHEAD.min(rows.len()));
    for (c, chunk) in rows.chunks(READ_AHEAD).enumerate() {
        let first = c * READ_AHEAD;
        ahead.clear();
        for (k, row) in chunk.iter().enumerate() {
            let (block, i) = at(row);
            ahead.push(block.cols(i).map_err(|e| (first + k, e))?);
        }
        for (k, (cols, row)) in ahead.drain(..).zip(chunk).enumerate() {
            if first + k > 0 {
                out.push(b',');
            }
            cols.write(&at(row).0.tenant, out)
                .map_err(|e| (first + k, e))?;
        }
    }
    Ok(())
}

impl RowCols<'_> {
    fn write(self, tenant: &crate::event::Tenant, out: &mut Vec<u8>) -> Result<(), BlockError> {
        let mut r = self.fields;
        out.extend_from_slice(b"{\"id\":");
        write_id(out, self.id);
        out.extend_from_slice(b",\"tenant\":");
        write_json_str(out, tenant.as_str());
        out.extend_from_slice(b",\"timestamp\":\"");
        out.extend_from_slice(&self.ts.rfc3339_bytes());
        out.extend_from_slice(b"\",\"severity\":");
        write_opt_str(out, Severity::from_code(self.sev).map(Severity::name));
        out.extend_from_slice(b",\"facility\":");
        write_opt_str(out, Facility::from_code(self.fac).map(Facility::name));
        out.extend_from_slice(b",\"host\":");
        write_opt_str(out, self.host);
        out.extend_from_slice(b",\"app\":");
        write_opt_str(out, self.app);
        out.extend_from_slice(b",\"procid\":");
        write_opt_str(out, self.procid);
        out.extend_from_slice(b",\"msgid\":");
        write_opt_str(out, self.msgid);
        out.extend_from_slice(b",\"structured_data\":");
        if self.nsd == 0 {
            out.extend_from_slice(b"null");
        } else {
            out.push(b'{');
            let mut params: Vec<(&str, &str)> = Vec::new();
            for k in 0..self.nsd {
                if k > 0 {
                    out.push(b',');
                }
                write_json_str(out, r.str()?);
                out.push(b':');
                let np = r.len(MAX_FRAME_BYTES)?;
                params.clear();
                for _ in 0..np {
                    params.push((r.str()?, r.str()?));
                }
                write_params(out, &params);
            }
            out.push(b'}');
        }
        out.extend_from_slice(b",\"message\":");
        match self.message {
            None => out.extend_from_slice(b"null"),
            Some(Message::Plain(bytes)) => {
                out.reserve(bytes.len() + 2);
                out.push(b'"');
                out.extend_from_slice(bytes);
                out.push(b'"');
            }
            Some(Message::Text(text)) => write_json_str(out, text),
            Some(Message::Bytes(bytes)) => {
                write_json_str(out, &String::from_utf8_lossy(bytes));
                out.extend_from_slice(b",\"message_base64\":\"");
                out.extend_from_slice(BASE64.encode(bytes).as_bytes());
                out.push(b'"');
            }
        }
        if let Some(src) = self.source {
            out.extend_from_slice(b",\"source\":");
            write_json_str(out, src);
        }
        let na = r.len(MAX_FRAME_BYTES)?;
        if na > 0 {
            out.extend_from_slice(b",\"attributes\":{");
            for k in 0..na {
                if k > 0 {
                    out.push(b',');
                }
                write_json_str(out, r.str()?);
                out.push(b':');
                match r.u8()? {
                    0 => out.extend_from_slice(b"null"),
                    1 => out.extend_from_slice(b"false"),
                    2 => out.extend_from_slice(b"true"),
                    3 => {
                        let mut buf = [0u8; 20];
                        out.extend_from_slice(format_i64(&mut buf, unzigzag(r.u64()?)));
                    }
                    4 => {
                        // Rare: serde's own float text (ryu), or the string
                        // form of a non-finite value.
                        let v = FieldValue::Float(r.f64()?);
                        serde_json::to_writer(&mut *out, &v)
                            .map_err(|e| r.err(format!("float: {e}")))?;
                    }
                    5 => write_json_str(out, r.str()?),
                    t => return Err(r.err(format!("unknown attribute tag {t}"))),
                }
            }
            out.push(b'}');
        }
        if let Some(bytes) = self.perr {
            out.extend_from_slice(b",\"parse_error\":");
            write_json_str(out, &String::from_utf8_lossy(bytes));
        }
        out.push(b'}');
        Ok(())
    }
}

/// Decimal text of `v` (as `Display` and serde write it).
fn format_i64(buf: &mut [u8; 20], v: i64) -> &[u8] {
    let mut n = v.unsigned_abs();
    let mut at = buf.len();
    loop {
        at -= 1;
        buf[at] = b'0' + (n % 10) as u8;
        n /= 10;
        if n == 0 {
            break;
        }
    }
    if v < 0 {
        at -= 1;
        buf[at] = b'-';
    }
    &buf[at..]
}

#[cfg(test)]
#[path = "json_tests.rs"]
mod tests;
