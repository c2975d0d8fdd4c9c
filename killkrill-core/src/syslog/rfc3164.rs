//! RFC 3164 / BSD syslog, as senders actually write it.
//!
//! RFC 3164 describes existing practice rather than prescribing a format,
//! and practice varies, so every part after PRI is optional and recognised
//! by its shape:
//!
//! ```text
//! [<PRI>] [SEQ: ] [ORIGIN: ] [TIMESTAMP] [HOSTNAME] [TAG[PID]: | TAG: ] [SD] MSG
//! ```
//!
//! - PRI may be missing (files, some appliances); strict mode requires it.
//! - `SEQ: ` is a Cisco sequence number; `ORIGIN: ` a Cisco origin host
//!   written before the timestamp.
//! - TIMESTAMP: see `bsd_timestamp.rs`. Without one (Python's
//!   `SysLogHandler` sends `<156>pyapp: msg`) there is no HOSTNAME either,
//!   as RFC 3164 §4.3.3 says.
//! - HOSTNAME is the word after the timestamp unless that word is itself a
//!   tag (`haproxy[73411]: ...`); IPv6 addresses work because a tag's colon
//!   must be followed by a space.
//! - TAG is `name[pid]:` or `name:` followed by a space. A word without the
//!   colon is message text (`<13>Feb  5 17:32:18 10.0.0.99 Use the BFG!`).
//! - SD: rsyslog writes `[origin software="rsyslogd" ...]` after its tag;
//!   see [`ParseOptions::rfc3164_structured_data`].
//! - MSG keeps every remaining byte (key=value bodies, invalid UTF-8);
//!   a leading BOM is removed and recorded.

use super::bsd_timestamp;
use super::byte_scan::{self, Blocks, TagClasses};
use super::error::{ParseError, ParseErrorKind};
use super::message::SyslogMessage;
use super::msg_body::strip_bom;
use super::options::ParseOptions;
use super::pri::{parse_pri, split_pri};
use super::structured_data;

const MAX_TAG: usize = 48;
const MAX_PID: usize = 128;
const MAX_HOSTNAME: usize = 255;

/// Parses `b[pos..]` as RFC 3164 into `msg`.
pub(crate) fn parse<'a>(
    b: &'a [u8],
    pos: usize,
    strict: bool,
    opts: &ParseOptions,
    now: &bsd_timestamp::Now,
    msg: &mut SyslogMessage<'a>,
) -> Result<(), ParseError> {
    let mut i = pos;
    if b.get(i) == Some(&b'<') {
        let (pri, next) = parse_pri(b, i)?;
        (msg.facility, msg.severity) = split_pri(pri);
        i = next;
    } else if strict {
        return Err(ParseError::new(ParseErrorKind::Pri, i, "'<' to start PRI"));
    }
    i = skip_spaces(b, i);
    if let Some((seq, next)) = sequence(b, i) {
        msg.sequence = Some(seq);
        i = skip_spaces(b, next);
    }
    let mut found = bsd_timestamp::parse(b, i, opts, now)?;
    if found.is_none()
        && let Some((origin, next)) = origin_host(b, i)
    {
        // Only a valid timestamp makes the word an origin host.
        found = bsd_timestamp::parse(b, next, opts, now).ok().flatten();
        if found.is_some() {
            msg.hostname = Some(origin);
            i = next;
        }
    }
    let mut want_host = false;
    if let Some(ts) = found {
        msg.timestamp = Some(ts.ts);
        i = skip_spaces(b, ts.end);
        want_host = !ts.colon && msg.hostname.is_none();
    }
    i = host_and_tag(b, i, want_host, msg);
    if opts.rfc3164_structured_data
        && b.get(i) == Some(&b'[')
        && let Ok(scan) = structured_data::scan(b, i)
        && scan.all_have_params
        && matches!(b.get(scan.end), None | Some(b' '))
    {
        msg.structured_data = scan.data;
        i = skip_spaces(b, scan.end);
    }
    let (text, bom) = strip_bom(&b[i..]);
    msg.bom = bom;
    msg.message = if text.is_empty() { None } else { Some(text) };
    Ok(())
}

/// HOSTNAME (when `want_host`) and TAG at `i`; returns the position after
/// them. Their shapes are found on bytes, then one UTF-8 check covers both
/// (the common case); if that fails, each is checked on its own.
fn host_and_tag<'a>(b: &'a [u8], i: usize, want_host: bool, msg: &mut SyslogMessage<'a>) -> usize {
    let mut blocks = Blocks::<TagClasses>::new(b, i);
    let host = if want_host {
        host_shape(b, i, &mut blocks)
    } else {
        None
    };
    let tag_at = host.map_or(i, |(_, end)| skip_spaces(b, end));
    let tag_r = tag_shape(b, tag_at, &mut blocks);
    let start = host.map(|h| h.0).or(tag_r.map(|t| t.name.0));
    let end = tag_r.map(|t| t.end).or(host.map(|h| h.1));
    if let (Some(start), Some(end)) = (start, end)
        && let Some(text) = text_of(b, start, end)
    {
        let get = |(a, z): (usize, usize)| text.get(a - start..z - start);
        if let Some(h) = host {
            msg.hostname = get(h);
        }
        if let Some(t) = tag_r {
            msg.appname = get(t.name);
            msg.procid = t.pid.and_then(get);
            return skip_spaces(b, t.end);
        }
        return tag_at;
    }
    // Not UTF-8 somewhere: decide word by word.
    let mut i = i;
    if want_host
        && tag(b, i).is_none()
        && let Some((host, next)) = word(b, i)
    {
        msg.hostname = Some(host);
        i = skip_spaces(b, next);
    }
    if let Some(t) = tag(b, i) {
        msg.appname = Some(t.name);
        msg.procid = t.pid;
        i = skip_spaces(b, t.end);
    }
    i
}

/// `b[start..end]` as text, if it is UTF-8.
///
/// HOSTNAME and TAG are ~15-40 bytes, which simdutf8 hands to the
/// byte-wise `std::str::from_utf8`. Checking a 64-byte window that holds
/// them instead takes one SIMD step and costs less than half of that. When
/// the window is UTF-8, `get` gives exactly the answer of the direct check
/// (a range of valid text is valid unless it starts or ends inside a
/// character, which `get` refuses); when it is not (the window reaches
/// into a MSG that is not UTF-8), the range itself is checked.
#[inline]
fn text_of(b: &[u8], start: usize, end: usize) -> Option<&str> {
    const WINDOW: usize = 64;
    let lo = start.min(b.len().saturating_sub(WINDOW));
    if end - lo <= WINDOW
        && let Some(window) = b.get(lo..lo + WINDOW)
        && let Ok(window) = simdutf8::basic::from_utf8(window)
        && let Some(text) = window.get(start - lo..end - lo)
    {
        return Some(text);
    }
    std::str::from_utf8(&b[start..end]).ok()
}

#[inline]
fn skip_spaces(b: &[u8], mut i: usize) -> usize {
    while b.get(i) == Some(&b' ') {
        i += 1;
    }
    i
}

/// Cisco's `123: ` sequence number.
fn sequence(b: &[u8], i: usize) -> Option<(u64, usize)> {
    let mut k = i;
    let mut v = 0u64;
    while let Some(c @ b'0'..=b'9') = b.get(k) {
        v = v.checked_mul(10)?.checked_add(u64::from(c - b'0'))?;
        k += 1;
    }
    (k > i && b.get(k) == Some(&b':') && b.get(k + 1) == Some(&b' ')).then_some((v, k + 2))
}

/// The HOSTNAME word at `i` unless that word is a tag. One scan decides the
/// common case (a word that runs into a space).
#[inline]
fn host_shape(b: &[u8], i: usize, blocks: &mut Blocks<'_, TagClasses>) -> Option<(usize, usize)> {
    let j = blocks
        .next(i, |c| c.tag)
        .min(b.len().min(i + MAX_HOSTNAME + 1));
    match b.get(j) {
        None | Some(b' ') => (j > i && j - i <= MAX_HOSTNAME).then_some((i, j)),
        Some(b':' | b'[') if tag_shape(b, i, blocks).is_some() => None,
        _ => word_shape(b, i),
    }
}

/// A word of at most 255 bytes up to the next space: its byte range.
#[inline]
fn word_shape(b: &[u8], i: usize) -> Option<(usize, usize)> {
    let end = byte_scan::byte_end(b, i, b.len().min(i + MAX_HOSTNAME + 1), b' ');
    (end > i && end - i <= MAX_HOSTNAME).then_some((i, end))
}

/// A word of at most 255 bytes, UTF-8, up to the next space.
fn word(b: &[u8], i: usize) -> Option<(&str, usize)> {
    let (start, end) = word_shape(b, i)?;
    Some((std::str::from_utf8(&b[start..end]).ok()?, end))
}

/// Cisco's `host: ` before the timestamp.
fn origin_host(b: &[u8], i: usize) -> Option<(&str, usize)> {
    let (w, end) = word(b, i)?;
    let host = w.strip_suffix(':')?;
    (!host.is_empty() && b.get(end) == Some(&b' ')).then(|| (host, end + 1))
}

/// A recognised TAG.
struct Tag<'a> {
    name: &'a str,
    pid: Option<&'a str>,
    end: usize,
}

/// Where a TAG's parts are.
#[derive(Clone, Copy)]
struct TagShape {
    name: (usize, usize),
    pid: Option<(usize, usize)>,
    end: usize,
}

/// `name[pid]:` (anything may follow) or `name:` followed by a space or the
/// end: the byte ranges. Always inlined: as a call (with its result
/// returned through memory) it cost a third more.
#[inline(always)]
fn tag_shape(b: &[u8], i: usize, blocks: &mut Blocks<'_, TagClasses>) -> Option<TagShape> {
    let j = blocks.next(i, |c| c.tag).min(b.len().min(i + MAX_TAG + 1));
    if j == i || j - i > MAX_TAG {
        return None;
    }
    match b.get(j)? {
        b'[' => {
            let start = j + 1;
            let k = blocks
                .next(start, |c| c.tag)
                .min(b.len().min(start + MAX_PID + 1));
            if b.get(k) != Some(&b']') || b.get(k + 1) != Some(&b':') {
                return None;
            }
            Some(TagShape {
                name: (i, j),
                pid: (k > start).then_some((start, k)),
                end: k + 2,
            })
        }
        b':' if matches!(b.get(j + 1), None | Some(b' ')) => Some(TagShape {
            name: (i, j),
            pid: None,
            end: j + 1,
        }),
        _ => None,
    }
}

/// A TAG whose parts are UTF-8.
fn tag(b: &[u8], i: usize) -> Option<Tag<'_>> {
    let t = tag_shape(b, i, &mut Blocks::new(b, i))?;
    let text = |(a, z): (usize, usize)| std::str::from_utf8(&b[a..z]).ok();
    let pid = match t.pid {
        Some(r) => Some(text(r)?),
        None => None,
    };
    Some(Tag {
        name: text(t.name)?,
        pid,
        end: t.end,
    })
}

#[cfg(test)]
mod tests {
    use super::*;

    /// The windowed check against `std::str::from_utf8` of the range, for
    /// every range of inputs with multi-byte characters and invalid bytes
    /// at many positions, shorter and longer than the window.
    #[test]
    fn text_of_agrees_with_a_direct_check() {
        let mut inputs: Vec<Vec<u8>> = Vec::new();
        for len in [10usize, 63, 64, 65, 100, 140] {
            let ascii: Vec<u8> = (0..len).map(|k| b'a' + (k % 26) as u8).collect();
            inputs.push(ascii.clone());
            for at in (0..len.saturating_sub(3)).step_by(7) {
                let mut utf = ascii.clone();
                utf[at..at + 3].copy_from_slice("€".as_bytes());
                inputs.push(utf.clone());
                utf[len - 1] = 0xff;
                inputs.push(utf);
                let mut bad = ascii.clone();
                bad[at] = 0xc3;
                inputs.push(bad);
            }
        }
        for b in &inputs {
            for start in 0..b.len() {
                for end in start..=b.len() {
                    assert_eq!(
                        text_of(b, start, end),
                        std::str::from_utf8(&b[start..end]).ok(),
                        "{b:?} {start}..{end}"
                    );
                }
            }
        }
    }
}
