//! Finding a query token in stored text with ASCII case folded.
//!
//! A scan looks for the token's *rarest* byte (by a fixed frequency rank of
//! log text: hex digits and common English letters rank as frequent) and
//! verifies the bytes around each hit. Scanning for the first byte instead
//! stops at nearly every byte for a token starting with `a`, `t` or `o`;
//! a 1 MiB block frame searched for `tapirjam` stops at its `j`s.

use crate::logblock::tokenizer::is_word_byte;

/// Bytes of log text from most to least frequent; bytes not listed (other
/// punctuation, UTF-8) rank as rarest of all.
const BY_FREQUENCY: &[u8] = b" e0a1t2o3i4n5s6r7c8l9dfubmphgywkvxjqz_";

/// Rank of each byte: higher is rarer.
static RANK: [u8; 256] = {
    let mut t = [u8::MAX; 256];
    let mut i = 0;
    while i < BY_FREQUENCY.len() {
        let b = BY_FREQUENCY[i];
        t[b as usize] = i as u8;
        t[b.to_ascii_uppercase() as usize] = i as u8;
        i += 1;
    }
    t
};

/// A query token (lower case, word bytes) prepared for searching.
#[derive(Debug, Clone, Default)]
pub(crate) struct Needle {
    bytes: Vec<u8>,
    /// Index of the byte scanned for.
    rare: usize,
}

impl Needle {
    /// Prepares `token` (lower case).
    pub(crate) fn new(token: Vec<u8>) -> Self {
        let mut rare = 0;
        for (i, &b) in token.iter().enumerate() {
            if RANK[usize::from(b)] > RANK[usize::from(token[rare])] {
                rare = i;
            }
        }
        Needle { bytes: token, rare }
    }

    /// The token.
    pub(crate) fn as_bytes(&self) -> &[u8] {
        &self.bytes
    }

    /// Calls `f` with the start of every occurrence in `hay` (ASCII case
    /// folded), in order, until it returns true; returns whether it did.
    #[inline]
    fn any_occurrence(&self, hay: &[u8], mut f: impl FnMut(usize) -> bool) -> bool {
        let n = self.bytes.len();
        if n == 0 || hay.len() < n {
            return false;
        }
        let r = self.rare;
        // Hits of the rare byte are searched where a whole occurrence fits.
        let window = &hay[r..hay.len() - (n - 1 - r)];
        let b = self.bytes[r];
        let up = b.to_ascii_uppercase();
        let mut check = |p: usize| {
            let at = p;
            hay[at..at + n].eq_ignore_ascii_case(&self.bytes) && f(at)
        };
        if up == b {
            memchr::memchr_iter(b, window).any(&mut check)
        } else {
            memchr::memchr2_iter(b, up, window).any(&mut check)
        }
    }

    /// The start of every occurrence in `hay` (ASCII case folded),
    /// ascending, or descending when `rev`; found lazily, so a walk that
    /// stops early scans only what it needed.
    pub(crate) fn occurrences<'h>(
        &'h self,
        hay: &'h [u8],
        rev: bool,
    ) -> Box<dyn Iterator<Item = usize> + 'h> {
        let n = self.bytes.len();
        if n == 0 || hay.len() < n {
            return Box::new(std::iter::empty());
        }
        let r = self.rare;
        let window = &hay[r..hay.len() - (n - 1 - r)];
        let b = self.bytes[r];
        let up = b.to_ascii_uppercase();
        // A hit at `p` of the window is an occurrence starting at `p`.
        let verify = move |&p: &usize| hay[p..p + n].eq_ignore_ascii_case(&self.bytes);
        match (up == b, rev) {
            (true, false) => Box::new(memchr::memchr_iter(b, window).filter(verify)),
            (true, true) => Box::new(memchr::memchr_iter(b, window).rev().filter(verify)),
            (false, false) => Box::new(memchr::memchr2_iter(b, up, window).filter(verify)),
            (false, true) => Box::new(memchr::memchr2_iter(b, up, window).rev().filter(verify)),
        }
    }

    /// Whether the token's bytes occur in `hay` (ASCII case folded).
    pub(crate) fn in_text(&self, hay: &[u8]) -> bool {
        self.any_occurrence(hay, |_| true)
    }

    /// Whether the token is one of `hay`'s tokens as
    /// [`for_each_token`](crate::logblock::tokenizer::for_each_token) cuts
    /// and folds them: an occurrence with no word byte just before or just
    /// after it.
    pub(crate) fn is_token_of(&self, hay: &[u8]) -> bool {
        let n = self.bytes.len();
        self.any_occurrence(hay, |at| {
            (at == 0 || !is_word_byte(hay[at - 1]))
                && hay.get(at + n).is_none_or(|&c| !is_word_byte(c))
        })
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::logblock::tokenizer::for_each_token;

    fn n(s: &str) -> Needle {
        Needle::new(s.as_bytes().to_vec())
    }

    #[test]
    fn scans_for_the_rarest_byte() {
        assert_eq!(n("tapirjam").rare, 5);
        assert_eq!(n("zebracorn").rare, 0);
        assert_eq!(n("connection").rare, 0);
        assert_eq!(n("größe").rare, 2);
    }

    #[test]
    fn case_insensitive_containment() {
        assert!(n("error").in_text(b"an ERROR here"));
        assert!(n("zebracorn").in_text(b"xx zebraCorn"));
        assert!(!n("zebracorn").in_text(b"zebracor"));
        assert!(!n("a").in_text(b""));
        assert!(n("a").in_text(b"a"));
        assert!(n("q2").in_text(b"Q1 q2"));
        assert!(n("tapirjam").in_text(b"TAPIRJAM"));
        assert!(!n("tapirjam").in_text(b"jam tapir"));
    }

    #[test]
    fn whole_tokens_only() {
        let t = |hay: &[u8], tok: &str| n(tok).is_token_of(hay);
        assert!(t(b"GET /api connection closed", "connection"));
        assert!(t(b"CONNECTION", "connection"));
        assert!(!t(b"connections closed", "connection"));
        assert!(!t(b"reconnection", "connection"));
        assert!(t(b"reconnection connection", "connection"));
        assert!(t(b"x=connection;", "connection"));
        assert!(!t(b"connection_pool", "connection"));
        assert!(!t("connectionß".as_bytes(), "connection"));
        assert!(!t(b"aaa", "aa"));
        assert!(t(b"aaa aa", "aa"));
        assert!(!t(b"", "a"));
    }

    proptest::proptest! {
        #![proptest_config(proptest::prelude::ProptestConfig::with_cases(3000))]

        /// Both searches agree with their definitions: a substring with
        /// ASCII case folded, and one of the tokens the tokenizer cuts.
        #[test]
        fn searches_agree_with_their_definitions(
            text in proptest::collection::vec(proptest::sample::select(
                &b"aAbBjJ_ .-=\xc3\xa9\xff1"[..]), 0..40),
            query in proptest::collection::vec(proptest::sample::select(
                &b"aAbBjJ_1\xc3\xa9"[..]), 1..5),
        ) {
            let mut buf = Vec::new();
            let mut tokens = Vec::new();
            for_each_token(&text, &mut buf, |t| tokens.push(t.to_vec()));
            let folded = text.to_ascii_lowercase();
            for_each_token(&query, &mut buf, |q| {
                let needle = Needle::new(q.to_vec());
                let token = tokens.iter().any(|t| t == q);
                let sub = folded.windows(q.len()).any(|w| w == q);
                assert_eq!(needle.is_token_of(&text), token, "{text:?} {q:?}");
                assert_eq!(needle.in_text(&text), sub, "{text:?} {q:?}");
            });
        }
    }
}
