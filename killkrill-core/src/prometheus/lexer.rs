//! The line scanner and the character classes both formats share.
//!
//! The exposition formats are line-oriented, so the parser finds each line
//! with `memchr` and then walks it by byte index. Everything that matters to
//! the grammar is ASCII; non-ASCII bytes only occur inside label values,
//! HELP text and comments, which are passed through as `&str` slices of the
//! input (never copied unless an escape needs undoing).

/// First character of a metric name: `[a-zA-Z_:]`.
const METRIC_START: u8 = 1;
/// Later characters of a metric name: `[a-zA-Z0-9_:]`.
const METRIC_CHAR: u8 = 2;
/// First character of a label name: `[a-zA-Z_]`.
const LABEL_START: u8 = 4;
/// Later characters of a label name: `[a-zA-Z0-9_]`.
const LABEL_CHAR: u8 = 8;

static CLASS: [u8; 256] = {
    let mut t = [0u8; 256];
    let mut c = 0;
    while c < 256 {
        let b = c as u8;
        let alpha = b.is_ascii_alphabetic() || b == b'_';
        if alpha {
            t[c] |= METRIC_START | METRIC_CHAR | LABEL_START | LABEL_CHAR;
        }
        if b.is_ascii_digit() {
            t[c] |= METRIC_CHAR | LABEL_CHAR;
        }
        if b == b':' {
            t[c] |= METRIC_START | METRIC_CHAR;
        }
        c += 1;
    }
    t
};

#[inline]
pub(crate) fn is_metric_start(b: u8) -> bool {
    CLASS[b as usize] & METRIC_START != 0
}

#[inline]
pub(crate) fn is_metric_char(b: u8) -> bool {
    CLASS[b as usize] & METRIC_CHAR != 0
}

#[inline]
pub(crate) fn is_label_start(b: u8) -> bool {
    CLASS[b as usize] & LABEL_START != 0
}

#[inline]
pub(crate) fn is_label_char(b: u8) -> bool {
    CLASS[b as usize] & LABEL_CHAR != 0
}

/// Blank for the text format: space or tab.
#[inline]
pub(crate) fn is_blank(b: u8) -> bool {
    b == b' ' || b == b'\t'
}

/// True when `s` is a valid metric name (`[a-zA-Z_:][a-zA-Z0-9_:]*`).
pub fn is_valid_metric_name(s: &str) -> bool {
    let b = s.as_bytes();
    !b.is_empty() && is_metric_start(b[0]) && b[1..].iter().all(|&c| is_metric_char(c))
}

/// True when `s` is a valid label name (`[a-zA-Z_][a-zA-Z0-9_]*`).
pub fn is_valid_label_name(s: &str) -> bool {
    let b = s.as_bytes();
    !b.is_empty() && is_label_start(b[0]) && b[1..].iter().all(|&c| is_label_char(c))
}

/// End of the metric name starting at `i` (index of the first non-name byte).
#[inline]
pub(crate) fn metric_name_end(b: &[u8], mut i: usize) -> usize {
    if i < b.len() && is_metric_start(b[i]) {
        i += 1;
        while i < b.len() && is_metric_char(b[i]) {
            i += 1;
        }
    }
    i
}

/// `[a-zA-Z0-9_:]` as arithmetic, so that a loop over a name without an
/// early exit vectorises.
#[inline]
fn metric_char_arith(c: u8) -> bool {
    let lower = c | 0x20;
    (lower.wrapping_sub(b'a') < 26) | (c.wrapping_sub(b'0') < 10) | (c == b'_') | (c == b':')
}

/// End of the metric name starting at `i`, for the text format, where a
/// name runs to the first blank or `{`. Names are long (40
/// bytes is typical), so the end is found with `memchr3` and the bytes are
/// checked in one vectorisable pass; only an invalid name takes the
/// byte-by-byte path that finds where it breaks.
#[inline]
pub(crate) fn sample_name_end(b: &[u8], i: usize) -> usize {
    let end = memchr::memchr3(b'{', b' ', b'\t', &b[i..]).map_or(b.len(), |n| i + n);
    if end > i
        && is_metric_start(b[i])
        && b[i + 1..end]
            .iter()
            .fold(true, |ok, &c| ok & metric_char_arith(c))
    {
        end
    } else {
        metric_name_end(b, i)
    }
}

/// Index of the first byte at or after `i` that is not blank.
#[inline]
pub(crate) fn skip_blank(b: &[u8], mut i: usize) -> usize {
    while i < b.len() && is_blank(b[i]) {
        i += 1;
    }
    i
}

/// Index of the first blank byte at or after `i`, or the end.
#[inline]
pub(crate) fn token_end(b: &[u8], mut i: usize) -> usize {
    while i < b.len() && !is_blank(b[i]) {
        i += 1;
    }
    i
}

/// One line of input.
#[derive(Debug, Clone, Copy)]
pub(crate) struct Line<'a> {
    /// The line without its `\n` (and without a `\r` before it when the
    /// caller asked for CRLF tolerance).
    pub text: &'a str,
    /// 1-based line number.
    pub number: usize,
    /// Whether a `\n` ended the line (false only for the last line).
    pub terminated: bool,
}

/// Splits input into lines, counting them.
#[derive(Debug, Clone)]
pub(crate) struct Lines<'a> {
    input: &'a str,
    pos: usize,
    number: usize,
    strip_cr: bool,
}

impl<'a> Lines<'a> {
    pub(crate) fn new(input: &'a str, strip_cr: bool) -> Self {
        Lines {
            input,
            pos: 0,
            number: 0,
            strip_cr,
        }
    }

    /// The number of the last line returned (0 before the first).
    pub(crate) fn number(&self) -> usize {
        self.number
    }
}

impl<'a> Iterator for Lines<'a> {
    type Item = Line<'a>;

    #[inline]
    fn next(&mut self) -> Option<Line<'a>> {
        if self.pos >= self.input.len() {
            return None;
        }
        let rest = &self.input[self.pos..];
        self.number += 1;
        let (mut text, terminated) = match memchr::memchr(b'\n', rest.as_bytes()) {
            Some(n) => {
                self.pos += n + 1;
                (&rest[..n], true)
            }
            None => {
                self.pos = self.input.len();
                (rest, false)
            }
        };
        if self.strip_cr {
            text = text.strip_suffix('\r').unwrap_or(text);
        }
        Some(Line {
            text,
            number: self.number,
            terminated,
        })
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn names() {
        for (s, m, l) in [
            ("a", true, true),
            ("_a1", true, true),
            ("a:b", true, false),
            (":a", true, false),
            ("0a", false, false),
            ("a-b", false, false),
            ("a.b", false, false),
            ("", false, false),
            ("é", false, false),
        ] {
            assert_eq!(is_valid_metric_name(s), m, "{s}");
            let line = format!("{s} 1");
            assert_eq!(
                sample_name_end(line.as_bytes(), 0),
                metric_name_end(line.as_bytes(), 0),
                "{s}"
            );
            assert_eq!(is_valid_label_name(s), l, "{s}");
        }
    }

    #[test]
    fn arithmetic_class_matches_the_table() {
        for c in 0..=255u8 {
            assert_eq!(metric_char_arith(c), is_metric_char(c), "{c}");
        }
    }

    #[test]
    fn lines() {
        let l: Vec<_> = Lines::new("a\r\n\nb", true)
            .map(|l| (l.text, l.number, l.terminated))
            .collect();
        assert_eq!(l, [("a", 1, true), ("", 2, true), ("b", 3, false)]);
        let l: Vec<_> = Lines::new("a\r\n", false).map(|l| l.text).collect();
        assert_eq!(l, ["a\r"]);
    }
}
