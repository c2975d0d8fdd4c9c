//! RFC 5424 STRUCTURED-DATA: validated once, read without copying.
//!
//! Parsing a message only *validates* its SD-ELEMENTs (grammar, escapes,
//! UTF-8, duplicate SD-IDs) and remembers the text they occupy. Reading them
//! through [`StructuredData::elements`] walks that text again; the walk cannot
//! fail, allocates nothing, and unescapes a value only when it contains a
//! backslash ([`SdParamRef::value`] returns a `Cow`). Messages whose
//! structured data nobody reads therefore pay only for the validation.

use std::borrow::Cow;

use super::byte_scan::{self, Blocks, SdClasses};
use super::error::{ParseError, ParseErrorKind};
use crate::event::SdElement;

/// Longest SD-ID or PARAM-NAME (RFC 5424 §6.3.2, §6.3.3).
pub const MAX_SD_NAME: usize = 32;

/// The structured data of one message, borrowed from the input.
///
/// Empty when the message had `-` (or, for RFC 3164, none). Two values are
/// equal when their text is.
#[derive(Debug, Clone, Copy, Default)]
pub struct StructuredData<'a> {
    raw: &'a str,
    index: SdIndex,
}

impl PartialEq for StructuredData<'_> {
    fn eq(&self, other: &Self) -> bool {
        self.raw == other.raw
    }
}

impl Eq for StructuredData<'_> {}

/// What the scan found, so reading the structured data needs no second
/// scan: per element the lengths of its SD-ID and of its parameters' text,
/// per parameter the lengths of its name and value. Reading walks the text
/// with these lengths, so every `&str` it hands out is one split of the
/// text (no offsets to re-check against the whole text). Holds the first
/// [`INDEXED_ELEMENTS`] elements (with at most [`INDEXED_PARAMS`] parameters
/// in all) of texts shorter than 64 KiB; anything beyond is found by
/// scanning.
#[derive(Debug, Clone, Copy, Default)]
struct SdIndex {
    /// Elements recorded.
    len: u8,
    /// Per element.
    marks: [Mark; INDEXED_ELEMENTS],
    /// Per parameter.
    params: [Param; INDEXED_PARAMS],
}

/// One indexed element: `[` SD-ID (`id_len` bytes), its parameters' text
/// (`params_len` bytes, ` NAME="VALUE"` each), `]`.
#[derive(Debug, Clone, Copy, Default)]
struct Mark {
    id_len: u8,
    /// Number of parameters (the next ones in [`SdIndex::params`]).
    count: u8,
    params_len: u16,
}

/// One indexed parameter: ` ` NAME (`name_len` bytes) `="` VALUE
/// (`value_len` bytes, escapes intact) `"`.
#[derive(Debug, Clone, Copy, Default)]
struct Param {
    name_len: u8,
    /// The value has an escape.
    escaped: bool,
    value_len: u16,
}

const INDEXED_ELEMENTS: usize = 4;
const INDEXED_PARAMS: usize = 12;

/// One SD-ELEMENT. Its text borrows from the message (`'a`); `'s` is the
/// borrow of the [`StructuredData`] it came from.
#[derive(Debug, Clone, Copy)]
pub struct SdElementRef<'s, 'a> {
    id: &'a str,
    /// The parameters' text, `( NAME="VALUE")*`.
    params: &'a str,
    /// The parameters' lengths when the element was indexed; when empty
    /// the parameters' text is scanned (for an indexed element without
    /// parameters it is empty too).
    run: &'s [Param],
}

impl PartialEq for SdElementRef<'_, '_> {
    fn eq(&self, other: &Self) -> bool {
        (self.id, self.params) == (other.id, other.params)
    }
}

impl Eq for SdElementRef<'_, '_> {}

/// One SD-PARAM, borrowed; the value is still escaped.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub struct SdParamRef<'a> {
    name: &'a str,
    raw_value: &'a str,
    escaped: bool,
}

/// Iterator over the elements of [`StructuredData`].
#[derive(Debug, Clone)]
pub struct SdElements<'s, 'a> {
    /// The elements not read yet.
    rest: &'a str,
    /// Their indexed lengths (then the rest is scanned).
    marks: std::slice::Iter<'s, Mark>,
    /// The indexed parameters of those elements.
    params: &'s [Param],
}

/// Iterator over the parameters of an [`SdElementRef`].
#[derive(Debug, Clone)]
pub struct SdParams<'s, 'a> {
    /// The parameters' text not read yet.
    rest: &'a str,
    /// Their indexed lengths (when empty, the rest is scanned).
    params: std::slice::Iter<'s, Param>,
}

impl<'a> StructuredData<'a> {
    /// No structured data.
    pub const EMPTY: StructuredData<'static> = StructuredData {
        raw: "",
        index: SdIndex {
            len: 0,
            marks: [Mark {
                id_len: 0,
                count: 0,
                params_len: 0,
            }; INDEXED_ELEMENTS],
            params: [Param {
                name_len: 0,
                escaped: false,
                value_len: 0,
            }; INDEXED_PARAMS],
        },
    };

    /// Validates `text` as STRUCTURED-DATA (`-` or one or more `[...]`).
    ///
    /// # Errors
    /// A [`ParseError`] with the column inside `text`.
    pub fn parse(text: &'a str) -> Result<Self, ParseError> {
        if text == "-" {
            return Ok(StructuredData::EMPTY);
        }
        let b = text.as_bytes();
        if b.first() != Some(&b'[') {
            return Err(ParseError::new(
                ParseErrorKind::StructuredData,
                0,
                "'-' or '[' to start STRUCTURED-DATA",
            ));
        }
        let scan = scan(b, 0)?;
        if scan.end != b.len() {
            return Err(ParseError::new(
                ParseErrorKind::Parse,
                scan.end,
                "'[' or the end of STRUCTURED-DATA",
            ));
        }
        Ok(scan.data)
    }

    /// True when there are no elements.
    #[inline]
    pub fn is_empty(&self) -> bool {
        self.raw.is_empty()
    }

    /// The elements as written (escapes intact), `""` when empty.
    #[inline]
    pub fn as_str(&self) -> &'a str {
        self.raw
    }

    /// The elements, in order.
    #[inline]
    pub fn elements(&self) -> SdElements<'_, 'a> {
        let marks = self
            .index
            .marks
            .get(..usize::from(self.index.len))
            .unwrap_or(&[]);
        SdElements {
            rest: self.raw,
            marks: marks.iter(),
            params: &self.index.params,
        }
    }

    /// The first element with SD-ID `id`.
    pub fn element(&self, id: &str) -> Option<SdElementRef<'_, 'a>> {
        self.elements().find(|e| e.id == id)
    }

    /// Owned, unescaped copies of the elements (for [`LogRecord`](crate::event::LogRecord)).
    pub fn to_elements(&self) -> Vec<SdElement> {
        self.elements()
            .map(|e| SdElement {
                id: e.id.to_owned(),
                params: e
                    .params()
                    .map(|p| (p.name.to_owned(), p.value().into_owned()))
                    .collect(),
            })
            .collect()
    }
}

impl<'s, 'a> SdElementRef<'s, 'a> {
    /// The SD-ID.
    #[inline]
    pub fn id(&self) -> &'a str {
        self.id
    }

    /// The parameters, in order (a name may repeat).
    #[inline]
    pub fn params(&self) -> SdParams<'s, 'a> {
        SdParams {
            rest: self.params,
            params: self.run.iter(),
        }
    }

    /// The unescaped value of the first parameter called `name`.
    pub fn param(&self, name: &str) -> Option<Cow<'a, str>> {
        self.params().find(|p| p.name == name).map(|p| p.value())
    }
}

impl<'a> SdParamRef<'a> {
    /// The PARAM-NAME.
    #[inline]
    pub fn name(&self) -> &'a str {
        self.name
    }

    /// The value as written, with `\"`, `\\` and `\]` still escaped.
    #[inline]
    pub fn raw_value(&self) -> &'a str {
        self.raw_value
    }

    /// The unescaped value; borrowed unless it contained an escape.
    #[inline]
    pub fn value(&self) -> Cow<'a, str> {
        if !self.escaped {
            return Cow::Borrowed(self.raw_value);
        }
        let mut out = String::with_capacity(self.raw_value.len());
        let mut chars = self.raw_value.chars();
        while let Some(c) = chars.next() {
            if c == '\\' {
                // Validation allowed only `\"`, `\\` and `\]`.
                if let Some(next) = chars.next() {
                    out.push(next);
                }
            } else {
                out.push(c);
            }
        }
        Cow::Owned(out)
    }
}

impl<'s, 'a> Iterator for SdElements<'s, 'a> {
    type Item = SdElementRef<'s, 'a>;

    #[inline]
    fn next(&mut self) -> Option<Self::Item> {
        if let Some(mark) = self.marks.next() {
            let rest = self.rest.strip_prefix('[')?;
            let (id, rest) = rest.split_at_checked(usize::from(mark.id_len))?;
            let (params, rest) = rest.split_at_checked(usize::from(mark.params_len))?;
            self.rest = rest.strip_prefix(']')?;
            let (run, more) = self.params.split_at_checked(usize::from(mark.count))?;
            self.params = more;
            return Some(SdElementRef { id, params, run });
        }
        // Past the index: walk the validated text `[ID( NAME="VALUE")*]`.
        let b = self.rest.as_bytes();
        if b.first() != Some(&b'[') {
            return None;
        }
        let mut i = byte_scan::sd_name_end(b, 1, b.len());
        let id_end = i;
        while b.get(i) == Some(&b' ') {
            i = byte_scan::byte_end(b, i, b.len(), b'"');
            let (close, _) = closing_quote(b, i + 1)?;
            i = close + 1;
        }
        let el = SdElementRef {
            id: self.rest.get(1..id_end)?,
            params: self.rest.get(id_end..i)?,
            run: &[],
        };
        self.rest = self.rest.get(i + 1..)?;
        Some(el)
    }
}

impl<'s, 'a> Iterator for SdParams<'s, 'a> {
    type Item = SdParamRef<'a>;

    #[inline]
    fn next(&mut self) -> Option<Self::Item> {
        if let Some(p) = self.params.next() {
            // ` NAME="VALUE"`: splits at the indexed lengths; the
            // delimiters are ASCII, so stripping them needs no check of
            // UTF-8 boundaries.
            let rest = self.rest.strip_prefix(' ')?;
            let (name, rest) = rest.split_at_checked(usize::from(p.name_len))?;
            let rest = rest.strip_prefix("=\"")?;
            let (raw_value, rest) = rest.split_at_checked(usize::from(p.value_len))?;
            self.rest = rest.strip_prefix('"')?;
            return Some(SdParamRef {
                name,
                raw_value,
                escaped: p.escaped,
            });
        }
        // Validated text: `( NAME="VALUE")*`.
        let b = self.rest.as_bytes();
        if b.first() != Some(&b' ') {
            return None;
        }
        let eq = byte_scan::byte_end(b, 1, b.len(), b'=');
        let value_start = eq + 2;
        let (value_end, escaped) = closing_quote(b, value_start)?;
        let p = SdParamRef {
            name: self.rest.get(1..eq)?,
            raw_value: self.rest.get(value_start..value_end)?,
            escaped,
        };
        self.rest = self.rest.get(value_end + 1..)?;
        Some(p)
    }
}

/// Position of the first unescaped `"` at or after `i` in validated text,
/// and whether a backslash came before it.
#[inline]
fn closing_quote(b: &[u8], mut i: usize) -> Option<(usize, bool)> {
    let mut escaped = false;
    loop {
        i = byte_scan::quote_or_backslash(b, i);
        match *b.get(i)? {
            b'"' => return Some((i, escaped)),
            _ => {
                escaped = true;
                i += 2;
            }
        }
    }
}

impl<'a> StructuredData<'a> {
    /// Sets the text after [`scan_raw`] filled in the index and the caller
    /// checked that the text (`b[pos..end]` of the scan) is UTF-8.
    #[inline]
    pub(crate) fn set_validated_text(&mut self, text: &'a str) {
        self.raw = text;
    }
}

/// `b` as text, or the offset of its first byte that is not UTF-8.
///
/// simdutf8's validator first: on the ~150 bytes of header fields and
/// structured data of a typical message it runs in about a third of the
/// instructions of `std::str::from_utf8` (64 bytes per step, an all-ASCII
/// block checked with one compare). Only a failure goes through std, for
/// the position; both accept exactly UTF-8.
#[inline]
pub(crate) fn utf8_text(b: &[u8]) -> Result<&str, usize> {
    match simdutf8::basic::from_utf8(b) {
        Ok(text) => Ok(text),
        Err(_) => std::str::from_utf8(b).map_err(|e| e.valid_up_to()),
    }
}

/// The error for structured data that is not UTF-8 at `col`.
pub(crate) fn utf8_error(col: usize) -> ParseError {
    ParseError::new(ParseErrorKind::SdParam, col, "valid UTF-8 in the value")
}

/// What [`scan`] found.
#[derive(Debug, Clone, Copy)]
pub(crate) struct Scan<'a> {
    /// The elements, indexed.
    pub data: StructuredData<'a>,
    /// Position after the last `]`.
    pub end: usize,
    /// Every element had at least one parameter.
    pub all_have_params: bool,
}

#[inline]
fn is_sd_name(c: u8) -> bool {
    (33..=126).contains(&c) && c != b'=' && c != b']' && c != b'"'
}

/// Reads an SD-NAME at `start` and returns the position after it.
#[inline(always)]
fn name(
    b: &[u8],
    start: usize,
    kind: ParseErrorKind,
    blocks: &mut Blocks<'_, SdClasses>,
) -> Result<usize, ParseError> {
    let i = blocks.next(start, |c| c.name);
    // 1..=32 name bytes in one unsigned compare; the stop at `i` is not a
    // name byte, so a name of exactly 32 ends there.
    if i.wrapping_sub(start).wrapping_sub(1) >= MAX_SD_NAME {
        return Err(name_error(b, start, i, kind));
    }
    Ok(i)
}

/// The error of [`name`] for a stop at `i`: an empty name, or one longer
/// than [`MAX_SD_NAME`] (reported at its 33rd byte).
#[cold]
#[inline(never)]
fn name_error(b: &[u8], start: usize, i: usize, kind: ParseErrorKind) -> ParseError {
    if i == start {
        return ParseError::new(
            kind,
            start,
            "a name of printable US-ASCII other than '=', ']', '\"' and space",
        );
    }
    debug_assert!(b.get(start + MAX_SD_NAME).is_some_and(|&c| is_sd_name(c)));
    ParseError::new(kind, start + MAX_SD_NAME, "at most 32 characters in a name")
}

/// SD-IDs seen so far in one message, for the duplicate check. The first
/// few live on the stack; only a pathological message spills to the heap.
struct IdSet<'a> {
    inline: [&'a [u8]; 4],
    len: usize,
    spill: Vec<&'a [u8]>,
}

impl<'a> IdSet<'a> {
    fn new() -> Self {
        IdSet {
            inline: [&[]; 4],
            len: 0,
            spill: Vec::new(),
        }
    }

    #[inline]
    fn insert(&mut self, id: &'a [u8]) -> bool {
        let n = self.len;
        if n < self.inline.len() {
            // The common case: a few IDs, all inline.
            if self.inline[..n].contains(&id) {
                return false;
            }
            self.inline[n] = id;
            self.len += 1;
            return true;
        }
        self.insert_spilled(id)
    }

    #[cold]
    fn insert_spilled(&mut self, id: &'a [u8]) -> bool {
        if self.inline.contains(&id) || self.spill.contains(&id) {
            return false;
        }
        self.spill.push(id);
        self.len += 1;
        true
    }
}

/// Validates SD-ELEMENTs starting at `b[pos] == '['` and returns where they
/// end. Checks the grammar, the escapes, duplicate SD-IDs and that the
/// whole text is UTF-8.
pub(crate) fn scan(b: &[u8], pos: usize) -> Result<Scan<'_>, ParseError> {
    scan_with(b, pos, &mut Blocks::new(b, pos))
}

/// [`scan`] with a block cursor over `b`.
fn scan_with<'a>(
    b: &'a [u8],
    pos: usize,
    blocks: &mut Blocks<'a, SdClasses>,
) -> Result<Scan<'a>, ParseError> {
    let mut data = StructuredData::EMPTY;
    let (end, all_have_params) = scan_raw_params(b, pos, blocks, &mut data.index)?;
    let text = utf8_text(&b[pos..end]).map_err(|at| utf8_error(pos + at))?;
    data.raw = text;
    Ok(Scan {
        data,
        end,
        all_have_params,
    })
}

/// Validates the grammar of SD-ELEMENTs at `b[pos] == '['` (everything but
/// UTF-8, which the caller checks) with a block cursor over `b`, indexing
/// them into `out` (whose text the caller then sets with
/// [`StructuredData::set_validated_text`]); returns where they end.
#[inline]
pub(crate) fn scan_raw<'a>(
    b: &'a [u8],
    pos: usize,
    blocks: &mut Blocks<'a, SdClasses>,
    out: &mut StructuredData<'_>,
) -> Result<usize, ParseError> {
    scan_raw_params(b, pos, blocks, &mut out.index).map(|(end, _)| end)
}

/// [`scan_raw`], and whether every element had a parameter.
///
/// Laid out for the common case: one range check per name, the value's
/// stop read with one bounds check, and the byte after a value checked
/// once, at the top of the parameter loop (after an SD-ID the grammar has
/// already checked it).
fn scan_raw_params<'a>(
    b: &'a [u8],
    pos: usize,
    blocks: &mut Blocks<'a, SdClasses>,
    index: &mut SdIndex,
) -> Result<(usize, bool), ParseError> {
    use ParseErrorKind::{SdId, SdIdDuplicate, SdParam, SdParamEscape};
    let sd_kind = ParseErrorKind::StructuredData;
    let mut i = pos;
    let mut ids = IdSet::new();
    let mut all_have_params = true;
    let mut indexed = 0usize;
    let mut indexing = true;
    let mut n_params = 0usize;
    while b.get(i) == Some(&b'[') {
        let id_start = i + 1;
        i = name(b, id_start, SdId, blocks)?;
        match b.get(i) {
            Some(b' ' | b']') => {}
            None => return Err(ParseError::new(sd_kind, i, "']' to close the element")),
            Some(_) => {
                return Err(ParseError::new(
                    SdId,
                    i,
                    "an SD-ID of printable US-ASCII other than '=', ']', '\"' and space",
                ));
            }
        }
        let id_end = i;
        if !ids.insert(&b[id_start..i]) {
            return Err(ParseError::new(
                SdIdDuplicate,
                i,
                "an SD-ID not already used in this message",
            ));
        }
        let first = n_params;
        loop {
            match b.get(i) {
                Some(b' ') => {}
                Some(b']') => break,
                None => return Err(ParseError::new(sd_kind, i, "']' to close the element")),
                Some(_) => {
                    return Err(ParseError::new(
                        SdParam,
                        i,
                        "a space or ']' after the value",
                    ));
                }
            }
            let name_start = i + 1;
            i = name(b, name_start, SdParam, blocks)?;
            if b.get(i..).and_then(<[u8]>::first_chunk) != Some(b"=\"") {
                return Err(if b.get(i) != Some(&b'=') {
                    ParseError::new(SdParam, i, "'=' after the parameter name")
                } else {
                    ParseError::new(SdParam, i + 1, "'\"' to open the value")
                });
            }
            let eq = i;
            let mut escaped = false;
            i += 2;
            loop {
                let j = blocks.next(i, |c| c.value);
                match b.get(j) {
                    Some(b'"') => {
                        i = j;
                        break;
                    }
                    Some(b'\\') => match b.get(j + 1) {
                        Some(b'"' | b'\\' | b']') => {
                            escaped = true;
                            i = j + 2;
                        }
                        None => {
                            return Err(ParseError::new(SdParam, j + 1, "'\"' to close the value"));
                        }
                        Some(_) => {
                            return Err(ParseError::new(
                                SdParamEscape,
                                j + 1,
                                "'\"', '\\' or ']' after a backslash",
                            ));
                        }
                    },
                    Some(_) => {
                        return Err(ParseError::new(
                            SdParamEscape,
                            j,
                            "']' escaped as '\\]' inside a value",
                        ));
                    }
                    None => {
                        return Err(ParseError::new(SdParam, b.len(), "'\"' to close the value"));
                    }
                }
            }
            // `i` is at the closing quote.
            if let Some(slot) = index.params.get_mut(n_params) {
                // Lengths: a name is at most 32 bytes; a value is shorter
                // than the text, which is indexed only below 64 KiB.
                *slot = Param {
                    name_len: (eq - name_start) as u8,
                    escaped,
                    value_len: (i - eq - 2) as u16,
                };
            }
            n_params += 1;
            i += 1;
        }
        // Offsets into the text; only used when it is < 64 KiB.
        if indexing && indexed < INDEXED_ELEMENTS && n_params <= INDEXED_PARAMS {
            index.marks[indexed] = Mark {
                id_len: (id_end - id_start) as u8,
                count: (n_params - first) as u8,
                params_len: (i - id_end) as u16,
            };
            indexed += 1;
        } else {
            indexing = false;
        }
        i += 1;
        all_have_params &= n_params > first;
    }
    index.len = if i - pos <= usize::from(u16::MAX) {
        indexed as u8
    } else {
        0
    };
    Ok((i, all_have_params))
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn elements_and_params_in_order() {
        let sd = StructuredData::parse(
            r#"[exampleSDID@32473 iut="3" eventSource="App" eventID="1011"][examplePriority@32473 class="high"][e]"#,
        )
        .unwrap();
        let got: Vec<(String, Vec<(String, String)>)> = sd
            .elements()
            .map(|e| {
                (
                    e.id().to_owned(),
                    e.params()
                        .map(|p| (p.name().to_owned(), p.value().into_owned()))
                        .collect(),
                )
            })
            .collect();
        let want = vec![
            (
                "exampleSDID@32473".to_owned(),
                vec![
                    ("iut".to_owned(), "3".to_owned()),
                    ("eventSource".to_owned(), "App".to_owned()),
                    ("eventID".to_owned(), "1011".to_owned()),
                ],
            ),
            (
                "examplePriority@32473".to_owned(),
                vec![("class".to_owned(), "high".to_owned())],
            ),
            ("e".to_owned(), vec![]),
        ];
        assert_eq!(got, want);
    }

    #[test]
    fn escapes_are_removed_only_when_present() {
        let sd = StructuredData::parse(r#"[m a="plain" b="q\"uo\\te\]" c="" d="κόσμε"]"#).unwrap();
        let e = sd.element("m").unwrap();
        assert!(matches!(e.param("a"), Some(Cow::Borrowed("plain"))));
        assert_eq!(e.param("b").unwrap(), "q\"uo\\te]");
        assert!(matches!(e.param("b"), Some(Cow::Owned(_))));
        assert_eq!(e.param("c").unwrap(), "");
        assert_eq!(e.param("d").unwrap(), "κόσμε");
        assert_eq!(e.param("zz"), None);
    }

    #[test]
    fn errors() {
        use ParseErrorKind::{Parse, SdId, SdIdDuplicate, SdParam, SdParamEscape};
        let sd_kind = ParseErrorKind::StructuredData;
        let cases: &[(&str, ParseErrorKind, usize)] = &[
            ("x", sd_kind, 0),
            ("[]", SdId, 1),
            ("[ ]", SdId, 1),
            ("[a=b]", SdId, 2),
            ("[a][a]", SdIdDuplicate, 5),
            ("[a b]", SdParam, 4),
            ("[a b=c]", SdParam, 5),
            (r#"[a b="c"d]"#, SdParam, 8),
            (r#"[a b="]"]"#, SdParamEscape, 6),
            (r#"[a b="\n"]"#, SdParamEscape, 7),
            (r#"[a b="c""#, sd_kind, 8),
            (r#"[a b="c"]x"#, Parse, 9),
            ("[abcdefghijklmnopqrstuvwxyzABCDEFG]", SdId, 33),
        ];
        for (text, kind, col) in cases {
            let e = StructuredData::parse(text).unwrap_err();
            assert_eq!((e.kind(), e.column()), (*kind, *col), "{text}");
        }
        assert!(StructuredData::parse("-").unwrap().is_empty());
    }

    #[test]
    fn index_and_scan_read_the_same() {
        let nine: String = (0..9).map(|i| format!(" p{i}=\"v{i}\"")).collect();
        let texts = [
            r#"[a x="1" y="2\"q"][b][c z="\]\\"]"#.to_owned(),
            (0..7)
                .map(|i| format!("[e{i} k=\"{i}\" l=\"x\"]"))
                .collect(),
            format!("[big{nine}][after m=\"1\"]"),
            format!("[x a=\"1\"][big{nine}][after m=\"1\"]"),
        ];
        for text in &texts {
            let indexed = StructuredData::parse(text).unwrap();
            let scanned = StructuredData {
                raw: indexed.raw,
                index: SdIndex::default(),
            };
            type Read = Vec<(String, Vec<(String, String, bool)>)>;
            let read = |sd: &StructuredData<'_>| -> Read {
                sd.elements()
                    .map(|e| {
                        let ps = e
                            .params()
                            .map(|p| (p.name().to_owned(), p.value().into_owned(), p.escaped))
                            .collect();
                        (e.id().to_owned(), ps)
                    })
                    .collect()
            };
            assert_eq!(read(&indexed), read(&scanned), "{text}");
            assert!(indexed.index.len > 0, "{text}");
        }
    }

    #[test]
    fn name_length_limits_and_utf8_columns() {
        let n32 = "a".repeat(32);
        let ok = format!("[{n32} {n32}=\"v\"]");
        let sd = StructuredData::parse(&ok).unwrap();
        assert_eq!(sd.element(&n32).unwrap().param(&n32).unwrap(), "v");
        let long_param = format!("[x {n32}b=\"v\"]");
        let e = StructuredData::parse(&long_param).unwrap_err();
        assert_eq!((e.kind(), e.column()), (ParseErrorKind::SdParam, 3 + 32));
        // A value that is not UTF-8: the column of the first bad byte,
        // past a 64-byte block so the SIMD validator's tail path is used.
        let mut bytes = format!("[x k=\"{}", "é".repeat(40)).into_bytes();
        let bad = bytes.len();
        bytes.extend_from_slice(b"\xff\"]");
        let e = scan(&bytes, 0).unwrap_err();
        assert_eq!((e.kind(), e.column()), (ParseErrorKind::SdParam, bad));
        assert_eq!(utf8_text(b"plain ascii"), Ok("plain ascii"));
        assert_eq!(utf8_text(b"ab\xc3"), Err(2));
    }

    #[test]
    fn many_elements_spill_the_duplicate_set() {
        let text: String = (0..20).map(|i| format!("[id{i}]")).collect();
        assert_eq!(StructuredData::parse(&text).unwrap().elements().count(), 20);
        let dup = format!("{text}[id15]");
        assert_eq!(
            StructuredData::parse(&dup).unwrap_err().kind(),
            ParseErrorKind::SdIdDuplicate
        );
    }
}
