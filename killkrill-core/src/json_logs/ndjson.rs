//! NDJSON framing: a body cut into lines.
//!
//! Lines end at `\n`; a `\r` before it is part of the terminator (CRLF), so
//! neither the record nor a raw line kept in lenient mode includes it. Lines
//! of only spaces, tabs and `\r` are blank and skipped, but counted, so the
//! line numbers in errors are the ones an editor shows. A last line without
//! a terminator is a line like any other.

use super::shape::is_ws;

/// One line of an NDJSON body.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub(crate) struct Line<'a> {
    /// 1-based line number.
    pub(crate) number: u64,
    /// Byte offset of the line's first byte in the body.
    pub(crate) offset: usize,
    /// The line without its `\n` or `\r\n`.
    pub(crate) bytes: &'a [u8],
}

/// Iterates over the lines of `body`, blank ones included.
pub(crate) struct Lines<'a> {
    body: &'a [u8],
    pos: usize,
    number: u64,
}

impl<'a> Lines<'a> {
    /// Lines of `body`, starting at byte `start`.
    pub(crate) fn new(body: &'a [u8], start: usize) -> Self {
        Lines {
            body,
            pos: start,
            number: 0,
        }
    }
}

impl<'a> Iterator for Lines<'a> {
    type Item = Line<'a>;

    fn next(&mut self) -> Option<Line<'a>> {
        if self.pos >= self.body.len() {
            return None;
        }
        let rest = &self.body[self.pos..];
        let (len, advance) = match memchr::memchr(b'\n', rest) {
            Some(i) => (i, i + 1),
            None => (rest.len(), rest.len()),
        };
        let mut bytes = &rest[..len];
        if let [head @ .., b'\r'] = bytes {
            bytes = head;
        }
        self.number += 1;
        let line = Line {
            number: self.number,
            offset: self.pos,
            bytes,
        };
        self.pos += advance;
        Some(line)
    }
}

/// True for a line of only whitespace.
#[inline]
pub(crate) fn is_blank(line: &[u8]) -> bool {
    line.iter().all(|&b| is_ws(b))
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn lines_with_crlf_blank_and_unterminated() {
        let body = b"a\r\n\nb\n \t\r\nc";
        let got: Vec<(u64, usize, &[u8])> = Lines::new(body, 0)
            .map(|l| (l.number, l.offset, l.bytes))
            .collect();
        assert_eq!(
            got,
            vec![
                (1, 0, &b"a"[..]),
                (2, 3, &b""[..]),
                (3, 4, &b"b"[..]),
                (4, 6, &b" \t"[..]),
                (5, 10, &b"c"[..]),
            ]
        );
        assert!(is_blank(b" \t"));
        assert!(!is_blank(b" x"));
        assert_eq!(Lines::new(b"a\n", 0).count(), 1);
        assert_eq!(Lines::new(b"", 0).count(), 0);
    }
}
