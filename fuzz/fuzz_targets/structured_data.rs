//! STRUCTURED-DATA of arbitrary bytes, against a byte-at-a-time reference
//! parser written here from RFC 5424 §6.3: both accept the same texts, read
//! the same SD-IDs, names and unescaped values, and the parser's error
//! column is inside the text. The same bytes as the STRUCTURED-DATA of a
//! whole RFC 5424 message must give the same elements (that path shares the
//! header's block scan and UTF-8 check), and the text must read back the
//! same through `element`/`param`.
#![no_main]

use killkrill_core::syslog::{Format, ParseOptions, StructuredData, SyslogParser};
use libfuzzer_sys::fuzz_target;

type Elements = Vec<(String, Vec<(String, String)>)>;

fn name(b: &[u8], mut i: usize) -> Option<(String, usize)> {
    let start = i;
    while i < b.len() && (33..=126).contains(&b[i]) && !matches!(b[i], b'=' | b']' | b'"') {
        i += 1;
    }
    if i == start || i - start > 32 {
        return None;
    }
    Some((String::from_utf8(b[start..i].to_vec()).ok()?, i))
}

/// RFC 5424 `NILVALUE / 1*SD-ELEMENT`, every SD-ID once; `None` when it
/// is not that.
fn reference(b: &[u8]) -> Option<Elements> {
    if b == b"-" {
        return Some(Vec::new());
    }
    if !std::str::from_utf8(b).is_ok() || b.first() != Some(&b'[') {
        return None;
    }
    let mut out: Elements = Vec::new();
    let mut i = 0;
    while i < b.len() {
        if b[i] != b'[' {
            return None;
        }
        let (id, mut j) = name(b, i + 1)?;
        if out.iter().any(|(seen, _)| *seen == id) {
            return None;
        }
        let mut params = Vec::new();
        loop {
            match b.get(j)? {
                b']' => break,
                b' ' => {}
                _ => return None,
            }
            let (n, k) = name(b, j + 1)?;
            if b.get(k..k + 2)? != b"=\"" {
                return None;
            }
            let mut v = Vec::new();
            let mut k = k + 2;
            loop {
                match *b.get(k)? {
                    b'"' => break,
                    b']' => return None,
                    b'\\' => {
                        let c = *b.get(k + 1)?;
                        if !matches!(c, b'"' | b'\\' | b']') {
                            return None;
                        }
                        v.push(c);
                        k += 2;
                    }
                    c => {
                        v.push(c);
                        k += 1;
                    }
                }
            }
            params.push((n, String::from_utf8(v).ok()?));
            j = k + 1;
        }
        out.push((id, params));
        i = j + 1;
    }
    Some(out)
}

fn read(sd: &StructuredData<'_>) -> Elements {
    sd.elements()
        .map(|e| {
            let params = e
                .params()
                .map(|p| {
                    assert!(p.value().len() <= p.raw_value().len());
                    (p.name().to_owned(), p.value().into_owned())
                })
                .collect();
            (e.id().to_owned(), params)
        })
        .collect()
}

fuzz_target!(|data: &[u8]| {
    let want = reference(data);
    let parsed = std::str::from_utf8(data).ok().map(StructuredData::parse);
    match (&want, &parsed) {
        (Some(want), Some(Ok(sd))) => {
            assert_eq!(&read(sd), want);
            // `-` (NILVALUE) is no elements and no text.
            let text: &[u8] = if data == b"-" { b"" } else { data };
            assert_eq!(sd.as_str().as_bytes(), text);
            for (id, params) in want {
                let el = sd.element(id).expect("element by id");
                for (n, _) in params {
                    // The first parameter of that name.
                    let first = params.iter().find(|(m, _)| m == n).map(|(_, v)| v);
                    assert_eq!(el.param(n).as_deref(), first.map(String::as_str));
                }
            }
        }
        (None, Some(Err(e))) => assert!(e.column() <= data.len()),
        (None, None) => {}
        (w, p) => panic!("reference {w:?}, parser {p:?}"),
    }
    // The same bytes as a message's STRUCTURED-DATA (and not UTF-8 is an
    // error there, not a panic).
    let mut frame = b"<13>1 2026-11-25T17:01:07.015511Z host app 42 ID ".to_vec();
    frame.extend_from_slice(data);
    frame.extend_from_slice(b" tail");
    let p = SyslogParser::new(ParseOptions::default().with_format(Format::Rfc5424));
    match p.parse_strict(&frame) {
        Ok(m) => {
            // The data may be SD followed by more MSG (or `-`): whatever
            // the parser took as SD, the reference reads the same.
            let sd = m.structured_data.as_str();
            if !sd.is_empty() {
                assert_eq!(reference(sd.as_bytes()), Some(read(&m.structured_data)));
            }
            if let Some(want) = want {
                assert_eq!(read(&m.structured_data), want);
                assert_eq!(m.message, Some(&b"tail"[..]));
            }
            assert_eq!(m.hostname, Some("host"));
        }
        Err(e) => {
            assert!(want.is_none(), "{e:?}");
            assert!(e.column() <= frame.len());
        }
    }
});
