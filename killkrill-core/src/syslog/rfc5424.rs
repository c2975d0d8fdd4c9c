//! RFC 5424: `<PRI>VERSION SP TIMESTAMP SP HOSTNAME SP APP-NAME SP PROCID SP
//! MSGID SP STRUCTURED-DATA [SP MSG]`.
//!
//! One grammar, read left to right with byte scans; fields are stored into
//! the message as soon as they are complete, so when the grammar fails the
//! lenient caller still has every header field before the failure. Error
//! columns follow go-syslog's (the first byte that cannot continue the
//! grammar), which the conformance corpus checks.

use super::byte_scan::{Blocks, SdClasses};
use super::error::{ParseError, ParseErrorKind};
use super::message::SyslogMessage;
use super::msg_body::{check_compliant, strip_bom};
use super::options::ParseOptions;
use super::pri::{parse_pri, split_pri};
use super::structured_data;
use super::timestamp::{RFC5424, fast_rfc5424, parse_rfc3339};

/// Field length limits (RFC 5424 §6).
const MAX_HOSTNAME: usize = 255;
const MAX_APPNAME: usize = 48;
const MAX_PROCID: usize = 128;
const MAX_MSGID: usize = 32;

/// Parses `b[pos..]` as RFC 5424 into `msg`. With `pri_optional`, a missing
/// PRI is accepted (lenient auto-detection of `1 2020-...` lines).
pub(crate) fn parse<'a>(
    b: &'a [u8],
    pos: usize,
    pri_optional: bool,
    opts: &ParseOptions,
    msg: &mut SyslogMessage<'a>,
) -> Result<(), ParseError> {
    let mut i = pos;
    if !(pri_optional && b.get(i) != Some(&b'<')) {
        let (pri, next) = parse_pri(b, i)?;
        (msg.facility, msg.severity) = split_pri(pri);
        i = next;
    }
    i = version(b, i, msg)?;
    i = timestamp(b, i, msg)?;
    let host = i;
    let mut blocks = Blocks::<SdClasses>::new(b, i);
    let ends = header_fields(b, i, &mut blocks, msg)?;
    i = ends[3] + 1;
    // STRUCTURED-DATA
    let sd_end = match b.get(i) {
        Some(b'-') => {
            set_fields(b, host, &ends, msg);
            i + 1
        }
        Some(b'[') => {
            let end = match structured_data::scan_raw(b, i, &mut blocks, &mut msg.structured_data) {
                Ok(end) => end,
                Err(e) => {
                    set_fields(b, host, &ends, msg);
                    return Err(e);
                }
            };
            // One UTF-8 check for the header fields and the structured
            // data (the fields are printable US-ASCII, so an error is
            // always inside the structured data, at the same column).
            // It starts up to 63 bytes early, inside PRI, VERSION and
            // TIMESTAMP, which the grammar has already read as ASCII: a
            // length that is a multiple of 64 (or of 8) spares the
            // validator its byte-by-byte copy of a partial last block.
            let lead = utf8_lead(host - pos, end - host);
            match structured_data::utf8_text(&b[host - lead..end]) {
                Ok(text) => {
                    let text = text.get(lead..).unwrap_or("");
                    set_fields_text(text, host, &ends, msg);
                    msg.structured_data
                        .set_validated_text(text.get(i - host..).unwrap_or(""));
                }
                Err(at) => {
                    set_fields(b, host, &ends, msg);
                    return Err(structured_data::utf8_error(host - lead + at));
                }
            }
            end
        }
        _ => {
            set_fields(b, host, &ends, msg);
            return Err(ParseError::new(
                ParseErrorKind::StructuredData,
                i,
                "'-' or '[' to start STRUCTURED-DATA",
            ));
        }
    };
    match b.get(sd_end) {
        None => Ok(()),
        Some(b' ') => {
            let body = &b[sd_end + 1..];
            let (text, bom) = strip_bom(body);
            if bom && opts.compliant_msg {
                check_compliant(text, sd_end + 4)?;
            }
            msg.bom = bom;
            msg.message = if text.is_empty() { None } else { Some(text) };
            Ok(())
        }
        Some(_) => Err(ParseError::new(
            ParseErrorKind::Parse,
            sd_end,
            "a space before MSG, or the end of the message",
        )),
    }
}

/// How many of the `before` ASCII bytes to add in front of `len` bytes so
/// that the length is a multiple of 64, or else of 8 (0 if neither fits).
#[inline]
fn utf8_lead(before: usize, len: usize) -> usize {
    let to64 = len.next_multiple_of(64) - len;
    let to8 = len.next_multiple_of(8) - len;
    if to64 <= before {
        to64
    } else if to8 <= before {
        to8
    } else {
        0
    }
}

/// `NONZERO-DIGIT 0*2DIGIT SP`.
fn version(b: &[u8], pos: usize, msg: &mut SyslogMessage<'_>) -> Result<usize, ParseError> {
    let mut v = match b.get(pos) {
        Some(c @ b'1'..=b'9') => u16::from(c - b'0'),
        _ => {
            return Err(ParseError::new(
                ParseErrorKind::Version,
                pos,
                "a VERSION digit 1-9",
            ));
        }
    };
    let mut i = pos + 1;
    while let Some(c @ b'0'..=b'9') = b.get(i) {
        if i - pos == 3 {
            msg.version = Some(v);
            return Err(ParseError::new(
                ParseErrorKind::Version,
                i,
                "a space after at most 3 VERSION digits",
            ));
        }
        v = v * 10 + u16::from(c - b'0');
        i += 1;
    }
    msg.version = Some(v);
    sp(b, i)
}

/// Expects a space at `i` and returns the position after it.
#[inline]
fn sp(b: &[u8], i: usize) -> Result<usize, ParseError> {
    if b.get(i) == Some(&b' ') {
        Ok(i + 1)
    } else {
        Err(ParseError::new(ParseErrorKind::Parse, i, "a space"))
    }
}

/// `NILVALUE / FULL-DATE "T" FULL-TIME` then SP.
fn timestamp(b: &[u8], i: usize, msg: &mut SyslogMessage<'_>) -> Result<usize, ParseError> {
    match b.get(i) {
        Some(b'-') => sp(b, i + 1),
        Some(b'0'..=b'9') => {
            // The common layout inline; anything else (and every error)
            // through the careful parser, which accepts the same set.
            let p = match fast_rfc5424(b, i) {
                Some(p) => p,
                None => parse_rfc3339(b, i, RFC5424)?,
            };
            let ts = p.with_offset(p.offset.unwrap_or(0)).ok_or(ParseError::new(
                ParseErrorKind::Timestamp,
                i,
                "a time between 1678 and 2261",
            ))?;
            msg.timestamp = Some(ts);
            sp(b, p.end)
        }
        _ => Err(ParseError::new(
            ParseErrorKind::Timestamp,
            i,
            "a TIMESTAMP or '-'",
        )),
    }
}

#[inline]
fn is_print(c: u8) -> bool {
    (33..=126).contains(&c)
}

/// HOSTNAME, APP-NAME, PROCID and MSGID. They are located first and turned
/// into text with one UTF-8 check over the four (printable US-ASCII always
/// passes), which costs less than four checks.
fn header_fields<'a>(
    b: &'a [u8],
    pos: usize,
    blocks: &mut Blocks<'a, SdClasses>,
    msg: &mut SyslogMessage<'a>,
) -> Result<[usize; 4], ParseError> {
    const FIELDS: [(usize, ParseErrorKind); 4] = [
        (MAX_HOSTNAME, ParseErrorKind::Hostname),
        (MAX_APPNAME, ParseErrorKind::Appname),
        (MAX_PROCID, ParseErrorKind::Procid),
        (MAX_MSGID, ParseErrorKind::Msgid),
    ];
    let mut ends = [0usize; 4];
    let mut i = pos;
    for (k, (max, kind)) in FIELDS.into_iter().enumerate() {
        match field(b, i, max, kind, blocks) {
            Ok(end) => {
                ends[k] = end;
                i = end + 1;
            }
            Err(e) => {
                set_fields(b, pos, &ends[..k], msg);
                return Err(e);
            }
        }
    }
    Ok(ends)
}

/// Stores the fields that end at `ends` (each followed by one space).
fn set_fields<'a>(b: &'a [u8], pos: usize, ends: &[usize], msg: &mut SyslogMessage<'a>) {
    let Some(&last) = ends.last() else {
        return;
    };
    // Validated printable US-ASCII, so this cannot fail.
    if let Ok(text) = std::str::from_utf8(&b[pos..last]) {
        set_fields_text(text, pos, ends, msg);
    }
}

/// [`set_fields`] from `text`, which starts at `pos` and covers the fields.
#[inline]
fn set_fields_text<'a>(text: &'a str, pos: usize, ends: &[usize], msg: &mut SyslogMessage<'a>) {
    // Each field is split off the front and its space stripped (ASCII, so
    // no UTF-8 boundary check for it).
    let mut rest = text;
    let mut start = pos;
    let mut values = [None; 4];
    for (k, &end) in ends.iter().enumerate() {
        let Some((v, after)) = rest.split_at_checked(end - start) else {
            break;
        };
        values[k] = (v != "-").then_some(v);
        rest = after.strip_prefix(' ').unwrap_or("");
        start = end + 1;
    }
    [msg.hostname, msg.appname, msg.procid, msg.msgid] = values;
}

/// A header field of 1..=`max` printable US-ASCII bytes at `pos`, followed
/// by a space; returns the position of that space.
#[inline]
fn field(
    b: &[u8],
    pos: usize,
    max: usize,
    kind: ParseErrorKind,
    blocks: &mut Blocks<'_, SdClasses>,
) -> Result<usize, ParseError> {
    let lim = b.len().min(pos + max);
    // The SD-NAME stops are the non-printable bytes and `=`, `]`, `"`,
    // which a header field may contain: step over those.
    let mut i = blocks.next(pos, |c| c.name);
    while i < lim && is_print(b[i]) {
        i = blocks.next(i + 1, |c| c.name);
    }
    let i = i.min(lim);
    if i == pos {
        return Err(ParseError::new(
            kind,
            pos,
            "printable US-ASCII or '-' (the field is empty)",
        ));
    }
    match b.get(i) {
        Some(b' ') => Ok(i),
        None => Err(ParseError::new(ParseErrorKind::Parse, i, "a space")),
        Some(&c) if is_print(c) => Err(ParseError::new(kind, i, "a space: the field is too long")),
        Some(_) => Err(ParseError::new(kind, i, "printable US-ASCII")),
    }
}
