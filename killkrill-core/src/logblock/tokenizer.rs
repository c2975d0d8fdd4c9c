//! The full-text tokenizer: one function for the block's token bloom filter
//! and for checking a decoded record, so the two can never disagree.
//!
//! A token is a maximal run of *word bytes*: ASCII letters and digits, `_`,
//! and every byte ≥ 0x80 (so UTF-8 words such as `größe` or `東京` stay
//! whole, and invalid UTF-8 is still tokenised byte for byte). Everything
//! else — spaces, punctuation, `.`, `-`, `/`, `=`, `:` — separates tokens.
//! ASCII letters are folded to lower case; non-ASCII bytes are compared as
//! they are (no Unicode case folding: it would need tables on the ingest hot
//! path, and logs are overwhelmingly ASCII).
//!
//! So `GET /api/v1/users?id=42 took 17ms` has the tokens `get`, `api`, `v1`,
//! `users`, `id`, `42`, `took`, `17ms`, and a query `"USERS 42"` matches it.
//! A query matches a record when every query token is one of the record's
//! tokens in its message, structured-data values or attribute values.

use xxhash_rust::xxh3::xxh3_64;

/// Word-byte lookup table: one load instead of four comparisons per byte.
static WORD: [bool; 256] = {
    let mut t = [false; 256];
    let mut i = 0;
    while i < 256 {
        let b = i as u8;
        t[i] = b.is_ascii_alphanumeric() || b == b'_' || b >= 0x80;
        i += 1;
    }
    t
};

/// Whether `b` belongs to a token.
#[inline]
pub fn is_word_byte(b: u8) -> bool {
    WORD[usize::from(b)]
}

/// Calls `f` with each token of `text`, lower-cased, in order (repeats
/// included). `buf` is scratch space reused across calls.
#[inline]
pub fn for_each_token(text: &[u8], buf: &mut Vec<u8>, mut f: impl FnMut(&[u8])) {
    let mut i = 0;
    let n = text.len();
    while i < n {
        while i < n && !is_word_byte(text[i]) {
            i += 1;
        }
        let start = i;
        let mut upper = false;
        while i < n && is_word_byte(text[i]) {
            upper |= text[i].is_ascii_uppercase();
            i += 1;
        }
        if i > start {
            let tok = &text[start..i];
            if upper {
                buf.clear();
                buf.extend(tok.iter().map(u8::to_ascii_lowercase));
                f(buf);
            } else {
                f(tok);
            }
        }
    }
}

/// The 64-bit hash a token is entered into bloom filters with.
#[inline]
pub fn token_hash(token: &[u8]) -> u64 {
    xxh3_64(token)
}

/// The distinct tokens of a query, in first-seen order.
pub fn query_tokens(text: &str) -> Vec<Vec<u8>> {
    let mut out: Vec<Vec<u8>> = Vec::new();
    let mut buf = Vec::new();
    for_each_token(text.as_bytes(), &mut buf, |t| {
        if !out.iter().any(|o| o == t) {
            out.push(t.to_vec());
        }
    });
    out
}

#[cfg(test)]
mod tests {
    use super::*;

    fn toks(s: &[u8]) -> Vec<String> {
        let mut out = Vec::new();
        let mut buf = Vec::new();
        for_each_token(s, &mut buf, |t| {
            out.push(String::from_utf8_lossy(t).into_owned())
        });
        out
    }

    #[test]
    fn table() {
        let cases: &[(&[u8], &[&str])] = &[
            (b"", &[]),
            (b"  ..  ", &[]),
            (
                b"GET /api/v1/users?id=42 took 17ms",
                &["get", "api", "v1", "users", "id", "42", "took", "17ms"],
            ),
            (b"snake_case-and.dots", &["snake_case", "and", "dots"]),
            ("GRÖßE=5 東京".as_bytes(), &["grÖße", "5", "東京"]),
            (b"ERROR: Disk FULL", &["error", "disk", "full"]),
            (b"a\xffb c", &["a\u{fffd}b", "c"]),
        ];
        for (input, want) in cases {
            assert_eq!(toks(input), *want, "{:?}", String::from_utf8_lossy(input));
        }
    }

    #[test]
    fn query_tokens_are_distinct_and_lowercase() {
        assert_eq!(
            query_tokens("Timed OUT timed"),
            vec![b"timed".to_vec(), b"out".to_vec()]
        );
        assert!(query_tokens(" - ").is_empty());
    }
}
