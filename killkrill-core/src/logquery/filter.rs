//! A [`LogFilter`] prepared for one query: block pruning and exact
//! per-record matching.
//!
//! Pruning may keep a block that has no match (a bloom false positive, or a
//! host that occurs only in records of another severity); matching is exact.
//! Matching checks cheap columns first (severity, host, app, source) and
//! touches message and fields only for records that pass them.

use super::LogFilter;
use super::needle::Needle;
use crate::logblock::tokenizer::{for_each_token, is_word_byte};
use std::sync::Arc;

use crate::logblock::{
    BlockError, BlockSummary, DecodedBlock, Dict, DictLookup, TokenHits, field_hash, query_tokens,
    token_hash,
};

/// A filter ready to run.
#[derive(Debug, Clone, Default)]
pub struct CompiledFilter {
    min_sev: Option<u8>,
    host: Option<String>,
    app: Option<String>,
    source: Option<String>,
    fields: Vec<(String, String)>,
    tokens: Vec<Needle>,
    /// Token hashes and field-pair hashes the bloom must hold.
    bloom_keys: Vec<u64>,
}

/// Most distinct tokens in a full-text query.
pub const MAX_QUERY_TOKENS: usize = 32;

impl CompiledFilter {
    /// Prepares `f`; `None` when it has more than [`MAX_QUERY_TOKENS`] tokens.
    pub fn new(f: &LogFilter) -> Option<Self> {
        let tokens = f.text.as_deref().map(query_tokens).unwrap_or_default();
        if tokens.len() > MAX_QUERY_TOKENS {
            return None;
        }
        let mut bloom_keys: Vec<u64> = tokens.iter().map(|t| token_hash(t)).collect();
        bloom_keys.extend(f.fields.iter().map(|(n, v)| field_hash(n, v)));
        Some(CompiledFilter {
            min_sev: f.min_severity.map(|s| s.code()),
            host: f.host.clone(),
            app: f.app.clone(),
            source: f.source.clone(),
            fields: f.fields.clone(),
            tokens: tokens.into_iter().map(Needle::new).collect(),
            bloom_keys,
        })
    }

    /// Whether pruning needs the token bloom filter.
    pub fn needs_tokens(&self) -> bool {
        !self.bloom_keys.is_empty()
    }

    /// Whether only severity/host/app/source conditions are present, which
    /// block summaries can sometimes answer exactly.
    pub fn summary_answerable(&self) -> bool {
        self.bloom_keys.is_empty() && self.fields.is_empty()
    }

    /// Whether severity is the only condition (or there is none).
    pub fn needs_only_severity(&self) -> bool {
        self.summary_answerable()
            && self.host.is_none()
            && self.app.is_none()
            && self.source.is_none()
    }

    /// The severity code bound, if any.
    pub fn min_severity_code(&self) -> Option<u8> {
        self.min_sev
    }

    /// Whether the block may hold a match (false: certainly not).
    pub fn may_match(&self, s: &BlockSummary) -> bool {
        if let Some(m) = self.min_sev
            && s.severity_counts[..=usize::from(m)].iter().all(|&c| c == 0)
        {
            return false;
        }
        if let Some(h) = &self.host
            && !s.hosts.may_contain(h)
        {
            return false;
        }
        if let Some(a) = &self.app
            && !s.apps.may_contain(a)
        {
            return false;
        }
        if let Some(x) = &self.source
            && !s.sources.may_contain(x)
        {
            return false;
        }
        match &s.tokens {
            Some(b) => self.bloom_keys.iter().all(|&k| b.may_contain(k)),
            None => true,
        }
    }

    /// An upper bound on the block's matching records, from its summary.
    pub fn max_matches(&self, s: &BlockSummary) -> usize {
        let n = match self.min_sev {
            Some(m) => s.severity_counts[..=usize::from(m)].iter().sum::<u32>(),
            None => s.count,
        };
        n as usize
    }

    /// Whether every record of the block matches the host/app/source
    /// conditions (so its severity counts can be used as they are).
    pub fn all_match_values(&self, s: &BlockSummary) -> bool {
        self.host.as_deref().is_none_or(|h| s.hosts.all_equal(h))
            && self.app.as_deref().is_none_or(|a| s.apps.all_equal(a))
            && self
                .source
                .as_deref()
                .is_none_or(|x| s.sources.all_equal(x))
    }

    /// Whether record `i` of `b` matches (time range is checked by the
    /// caller). A walk over many records of one block binds the filter to
    /// the block once instead ([`for_block`](Self::for_block)).
    ///
    /// # Errors
    /// When the record's fields do not decode.
    pub fn matches(&self, b: &DecodedBlock, i: usize) -> Result<bool, BlockError> {
        match self.for_block(b) {
            Some(bf) => bf.matches(b, i),
            None => Ok(false),
        }
    }

    /// Binds the filter to block `b`: host/app/source conditions become
    /// dictionary codes compared per record. `None` when no record of the
    /// block can match (a wanted value is not in its dictionary).
    pub fn for_block(&self, b: &DecodedBlock) -> Option<BlockFilter<'_>> {
        fn check(want: Option<&str>, d: &Dict) -> Option<ColumnCheck> {
            match want {
                None => Some(ColumnCheck::Any),
                Some(v) => match d.lookup(v) {
                    DictLookup::Absent => None,
                    DictLookup::Code(k) => Some(ColumnCheck::Code(k)),
                    DictLookup::Repeated => Some(ColumnCheck::Text),
                },
            }
        }
        Some(BlockFilter {
            f: self,
            host: check(self.host.as_deref(), b.host_dict())?,
            app: check(self.app.as_deref(), b.app_dict())?,
            source: check(self.source.as_deref(), b.source_dict())?,
            columns_only: self.fields.is_empty() && self.tokens.is_empty(),
        })
    }

    /// Which records of `b` the full-text condition leaves to check, in
    /// walk order (descending when `newest`). Each token that only stored
    /// text can hold ([`frame_checkable`]) is looked up in the block's
    /// token memo ([`find_hits`] computes what it keeps): a token no
    /// record holds rules the block out (a bloom false positive), else the
    /// records of the rarest remembered token are walked. A token the
    /// block has not remembered (the first search for it there) is found
    /// by scanning the messages lazily, as far as the walk goes. Candidates
    /// still go through [`BlockFilter::matches`].
    pub fn text_walk<'b>(&'b self, b: &'b DecodedBlock, newest: bool) -> TextWalk<'b> {
        let mut best: Option<(usize, Arc<TokenHits>)> = None;
        let mut unknown: Option<&Needle> = None;
        for t in self.tokens.iter().filter(|t| frame_checkable(t.as_bytes())) {
            let Some(hits) = b.token_hits(t.as_bytes(), || find_hits(t, b)) else {
                // Not remembered: scanned for below unless its bytes are in
                // the block's fields (any record may hold it then).
                if unknown.is_none() && !t.in_text(b.field_region()) {
                    unknown = Some(t);
                }
                continue;
            };
            match hits.count() {
                None => {}
                Some(0) => return TextWalk::Nothing,
                Some(c) if best.as_ref().is_none_or(|(k, _)| *k > c) => {
                    best = Some((c, hits));
                }
                Some(_) => {}
            }
        }
        if let Some((_, hits)) = best {
            return TextWalk::Only(Box::new(HitsWalk::new(hits, newest)));
        }
        match unknown {
            Some(t) => TextWalk::Only(Box::new(message_hits(t, b, newest))),
            None => TextWalk::Every,
        }
    }

    /// The full-text and field conditions of [`matches`](Self::matches).
    fn matches_text_and_fields(&self, b: &DecodedBlock, i: usize) -> Result<bool, BlockError> {
        let all: u64 = if self.tokens.is_empty() {
            0
        } else {
            (1u64 << self.tokens.len()) - 1
        };
        let mut found: u64 = 0;
        if all != 0 {
            // A query token is one of the message's tokens when it occurs
            // with no word byte either side: found without tokenising.
            let msg = b.message(i).unwrap_or_default();
            for (k, t) in self.tokens.iter().enumerate() {
                if t.is_token_of(msg) {
                    found |= 1 << k;
                }
            }
            // Exact pre-check before decoding fields: a token missing from
            // the message that can only come from stored text must occur in
            // the record's field bytes (see `frame_checkable`).
            if found != all {
                let fb = b.field_bytes(i);
                if self.tokens.iter().enumerate().any(|(k, t)| {
                    found & (1 << k) == 0 && frame_checkable(t.as_bytes()) && !t.in_text(fb)
                }) {
                    return Ok(false);
                }
            }
        }
        let mut buf = Vec::new();
        if self.fields.is_empty() && found == all {
            return Ok(true);
        }
        if !b.has_fields(i) {
            return Ok(self.fields.is_empty() && found == all);
        }
        let (sd, attrs) = b.fields(i)?;
        for (name, value) in &self.fields {
            let in_sd = sd.iter().any(|el| {
                name.len() > el.id.len()
                    && name.starts_with(el.id.as_str())
                    && name.as_bytes()[el.id.len()] == b'.'
                    && el
                        .params
                        .iter()
                        .any(|(k, v)| v == value && &name[el.id.len() + 1..] == k)
            });
            let in_attrs = !in_sd
                && attrs
                    .iter()
                    .any(|(k, v)| k == name && v.to_text() == value.as_str());
            if !in_sd && !in_attrs {
                return Ok(false);
            }
        }
        if found != all {
            for el in &sd {
                for (_, v) in &el.params {
                    self.mark(v.as_bytes(), &mut found, &mut buf);
                }
            }
            for (_, v) in &attrs {
                self.mark(v.to_text().as_bytes(), &mut found, &mut buf);
            }
        }
        Ok(found == all)
    }

    fn mark(&self, text: &[u8], found: &mut u64, buf: &mut Vec<u8>) {
        for_each_token(text, buf, |t| {
            for (k, q) in self.tokens.iter().enumerate() {
                if q.as_bytes() == t {
                    *found |= 1 << k;
                }
            }
        });
    }
}

/// How a host/app/source condition is checked in one block.
#[derive(Debug, Clone, Copy)]
enum ColumnCheck {
    /// No condition.
    Any,
    /// The record's dictionary code must be this.
    Code(u32),
    /// Compare the strings (a dictionary with a repeated value).
    Text,
}

impl ColumnCheck {
    #[inline]
    fn holds(self, d: &Dict, i: usize, want: Option<&str>) -> bool {
        match self {
            ColumnCheck::Any => true,
            ColumnCheck::Code(k) => d.code(i) == k,
            ColumnCheck::Text => d.get(i) == want,
        }
    }
}

/// A [`CompiledFilter`] bound to one block ([`CompiledFilter::for_block`]).
#[derive(Debug, Clone)]
pub struct BlockFilter<'a> {
    f: &'a CompiledFilter,
    host: ColumnCheck,
    app: ColumnCheck,
    source: ColumnCheck,
    /// No full-text or field condition.
    columns_only: bool,
}

impl BlockFilter<'_> {
    /// [`CompiledFilter::matches`] for a record of the bound block.
    ///
    /// # Errors
    /// When the record's fields do not decode.
    #[inline]
    pub fn matches(&self, b: &DecodedBlock, i: usize) -> Result<bool, BlockError> {
        Ok(self.matches_columns(b, i) && self.matches_rest(b, i)?)
    }

    /// The records of `b` within the severity bound, ascending, when the
    /// block keeps a list of them (a selective bound, see
    /// [`DecodedBlock::severity_at_most`]); `None`: every record is a
    /// candidate. Candidates still go through [`matches`](Self::matches).
    #[inline]
    pub fn severity_candidates<'b>(&self, b: &'b DecodedBlock) -> Option<&'b [u32]> {
        b.severity_at_most(self.f.min_sev?)
    }

    /// The severity/host/app/source part of [`matches`](Self::matches):
    /// a byte and a few integer compares.
    #[inline]
    pub fn matches_columns(&self, b: &DecodedBlock, i: usize) -> bool {
        if let Some(m) = self.f.min_sev
            && b.severity_code(i) > m
        {
            return false;
        }
        self.host.holds(b.host_dict(), i, self.f.host.as_deref())
            && self.app.holds(b.app_dict(), i, self.f.app.as_deref())
            && self
                .source
                .holds(b.source_dict(), i, self.f.source.as_deref())
    }

    /// The full-text and field part of [`matches`](Self::matches), for a
    /// record that passed [`matches_columns`](Self::matches_columns).
    ///
    /// # Errors
    /// When the record's fields do not decode.
    #[inline]
    pub fn matches_rest(&self, b: &DecodedBlock, i: usize) -> Result<bool, BlockError> {
        if self.columns_only {
            return Ok(true);
        }
        self.f.matches_text_and_fields(b, i)
    }
}

/// Whether `token` can only come from stored text: a token found in a
/// message, a structured-data value or a string attribute is stored in
/// the frame as it is, so its bytes occur there (ASCII case folded, as the
/// tokenizer folds); one that can also come from the text of a number,
/// boolean or null attribute (stored binary) cannot be looked for that
/// way. Not digits and `e` only (integer and float text, `1e21`), and not
/// `null`, `true`, `false`, `nan`, `inf`.
fn frame_checkable(token: &[u8]) -> bool {
    !token.is_empty()
        && !token.iter().all(|&b| b.is_ascii_digit() || b == b'e')
        && !matches!(token, b"null" | b"true" | b"false" | b"nan" | b"inf")
}

/// What [`CompiledFilter::text_walk`] leaves to check in a block.
pub enum TextWalk<'b> {
    /// No record of the block can match.
    Nothing,
    /// Every record is a candidate.
    Every,
    /// Only these records, in walk order.
    Only(Box<dyn Iterator<Item = usize> + 'b>),
}

/// Where token `t` occurs in block `b` (what its token memo keeps): a
/// token whose bytes occur in the block's fields may be in any record;
/// otherwise exactly the records whose message holds it whole can match,
/// found by one scan of the messages.
fn find_hits(t: &Needle, b: &DecodedBlock) -> TokenHits {
    if t.in_text(b.field_region()) {
        return TokenHits::Anywhere;
    }
    let hits = message_hits(t, b, false).map(|i| i as u32).collect();
    TokenHits::from_records(hits, b.len())
}

/// The records whose message holds `t` as a whole token, once each, in
/// walk order (descending when `newest`), found lazily by scanning the
/// block's messages (contiguous in the frame) for it: a walk that stops
/// early scans only what it needed.
fn message_hits<'b>(
    t: &'b Needle,
    b: &'b DecodedBlock,
    newest: bool,
) -> impl Iterator<Item = usize> + 'b {
    let region = b.message_region();
    let frame = b.frame();
    let len = t.as_bytes().len();
    let n = b.len();
    // The record whose message holds the hit, found by a cursor that
    // moves one way as the hits do.
    let mut r: usize = if newest { n } else { 0 };
    let mut last: Option<usize> = None;
    let hits = t.occurrences(&frame[region.clone()], newest);
    hits.filter_map(move |p| {
        let pos = region.start + p;
        let m = if newest {
            loop {
                r = r.checked_sub(1)?;
                if let Some(m) = b.message_range(r)
                    && m.start <= pos
                {
                    // Stay on this record for the next (lower) hit.
                    r += 1;
                    break m;
                }
            }
        } else {
            loop {
                if r >= n {
                    return None;
                }
                if let Some(m) = b.message_range(r)
                    && pos < m.end
                {
                    break m;
                }
                r += 1;
            }
        };
        let i = if newest { r - 1 } else { r };
        let whole = pos + len <= m.end
            && (pos == m.start || !is_word_byte(frame[pos - 1]))
            && (pos + len == m.end || !is_word_byte(frame[pos + len]));
        if !whole || last == Some(i) {
            return None;
        }
        last = Some(i);
        Some(i)
    })
}

/// The records of a remembered [`TokenHits`] (a list or a bitmap) in
/// either order.
struct HitsWalk {
    hits: Arc<TokenHits>,
    newest: bool,
    /// List: the next index from the front and the back (exclusive).
    /// Bitmap: the next word to load from the front, or from the back
    /// (exclusive).
    front: usize,
    back: usize,
    /// Bitmap: the bits of word `at` still to yield.
    bits: u64,
    at: usize,
}

impl HitsWalk {
    /// Walks a list or a bitmap; never built for
    /// [`TokenHits::Anywhere`] (every record: `text_walk` says
    /// [`TextWalk::Every`] instead).
    fn new(hits: Arc<TokenHits>, newest: bool) -> Self {
        let back = match &*hits {
            TokenHits::Records(r) => r.len(),
            TokenHits::Bitmap { words, .. } => words.len(),
            TokenHits::Anywhere => unreachable!("a walk over every record is TextWalk::Every"),
        };
        HitsWalk {
            hits,
            newest,
            front: 0,
            back,
            bits: 0,
            at: 0,
        }
    }
}

impl Iterator for HitsWalk {
    type Item = usize;

    fn next(&mut self) -> Option<usize> {
        match &*self.hits {
            TokenHits::Anywhere => None,
            TokenHits::Records(list) => {
                if self.front == self.back {
                    return None;
                }
                let i = if self.newest {
                    self.back -= 1;
                    self.back
                } else {
                    self.front += 1;
                    self.front - 1
                };
                Some(list[i] as usize)
            }
            TokenHits::Bitmap { words, .. } => {
                while self.bits == 0 {
                    if self.front == self.back {
                        return None;
                    }
                    self.at = if self.newest {
                        self.back -= 1;
                        self.back
                    } else {
                        self.front += 1;
                        self.front - 1
                    };
                    self.bits = words[self.at];
                }
                let bit = if self.newest {
                    63 - self.bits.leading_zeros()
                } else {
                    self.bits.trailing_zeros()
                };
                self.bits &= !(1u64 << bit);
                Some(self.at * 64 + bit as usize)
            }
        }
    }
}

#[cfg(test)]
mod frame_tests {
    use super::*;

    /// A block of these messages, padded with records whose message is
    /// "pad" up to the size that keeps a token memo.
    fn block(messages: &[Option<&str>], field: Option<&str>) -> DecodedBlock {
        use crate::event::{EventId, FieldValue, LogRecord, Tenant, Timestamp};
        use crate::logblock::MIN_MEMO_RECORDS;
        let t = Tenant::new("tc").unwrap();
        let pad = MIN_MEMO_RECORDS.saturating_sub(messages.len());
        let records: Vec<LogRecord> = messages
            .iter()
            .copied()
            .chain(std::iter::repeat_n(Some("pad"), pad))
            .enumerate()
            .map(|(i, m)| LogRecord {
                id: Some(EventId::from_u128(i as u128 + 1)),
                tenant: Some(t.clone()),
                timestamp: Timestamp::from_nanos(i as i64),
                message: m.map(|m| m.as_bytes().to_vec()),
                attributes: match (i, field) {
                    (0, Some(f)) => vec![("f".into(), FieldValue::Str(f.into()))],
                    _ => Vec::new(),
                },
                ..LogRecord::default()
            })
            .collect();
        DecodedBlock::from_frame(t, crate::logblock::encode_frame(&records)).unwrap()
    }

    fn filter(text: &str) -> CompiledFilter {
        CompiledFilter::new(&LogFilter {
            text: Some(text.into()),
            ..LogFilter::default()
        })
        .unwrap()
    }

    /// What `text_walk` leaves: `Ok(records)` to visit, `Err` for "every
    /// record" or "no record".
    fn walk(
        f: &CompiledFilter,
        b: &DecodedBlock,
        newest: bool,
    ) -> Result<Vec<usize>, &'static str> {
        match f.text_walk(b, newest) {
            TextWalk::Nothing => Err("nothing"),
            TextWalk::Every => Err("every"),
            TextWalk::Only(it) => Ok(it.collect()),
        }
    }

    /// `walk` twice: the first time a block sees a token it scans, the
    /// second it remembers; for one token, both must leave the same
    /// records.
    fn twice(
        f: &CompiledFilter,
        b: &DecodedBlock,
        newest: bool,
    ) -> Result<Vec<usize>, &'static str> {
        let first = walk(f, b, newest);
        let second = walk(f, b, newest);
        match (&first, &second) {
            // A scan that finds nothing walks nothing; the memo says so.
            (Ok(v), Err("nothing")) if v.is_empty() => {}
            _ => assert_eq!(first, second, "scan and memo disagree"),
        }
        second
    }

    /// Blocks too small to keep a memo scan every time, with the same
    /// result.
    #[test]
    fn small_blocks_keep_no_memo() {
        use crate::event::{EventId, LogRecord, Tenant, Timestamp};
        let t = Tenant::new("tc").unwrap();
        let records: Vec<LogRecord> = (0..10u128)
            .map(|i| LogRecord {
                id: Some(EventId::from_u128(i + 1)),
                tenant: Some(t.clone()),
                timestamp: Timestamp::from_nanos(i as i64),
                message: Some(if i % 3 == 0 { "x ab" } else { "x" }.into()),
                ..LogRecord::default()
            })
            .collect();
        let b = DecodedBlock::from_frame(t, crate::logblock::encode_frame(&records)).unwrap();
        let f = filter("ab");
        for _ in 0..3 {
            assert_eq!(walk(&f, &b, true), Ok(vec![9, 6, 3, 0]));
        }
        assert_eq!(b.memo_tokens(), 0);
    }

    /// The message scan finds exactly the records holding the token whole:
    /// not inside a word, not across two messages, whatever its case;
    /// records without a message (or with an empty one) at either end or
    /// in between are skipped; both walk orders, scanned or remembered.
    #[test]
    fn message_hits_are_exactly_the_records_holding_the_token() {
        let f = filter("ab");
        let b = block(
            &[
                None,
                Some("ab"),
                Some("cab"),
                Some("x a"),
                Some("b ab ab"),
                Some("AB"),
                Some(""),
                Some("a"),
                Some("b"),
                None,
            ],
            None,
        );
        let hits = |b, newest| message_hits(&f.tokens[0], b, newest).collect::<Vec<_>>();
        assert_eq!(hits(&b, false), vec![1, 4, 5]);
        assert_eq!(hits(&b, true), vec![5, 4, 1]);
        assert_eq!(
            find_hits(&f.tokens[0], &b),
            TokenHits::Records(vec![1, 4, 5].into())
        );
        assert_eq!(twice(&f, &b, true), Ok(vec![5, 4, 1]));
        assert_eq!(b.memo_tokens(), 1);
        assert_eq!(walk(&f, &b, false), Ok(vec![1, 4, 5]));
        // No record has a message: nothing to visit, and no panic.
        let empty = block(&[None, None, None], None);
        assert_eq!(hits(&empty, false), Vec::<usize>::new());
        assert_eq!(hits(&empty, true), Vec::<usize>::new());
        assert_eq!(twice(&f, &empty, true), Err("nothing"));
        // The token's bytes in a field: any record may hold it.
        let in_field = block(&[Some("x"), Some("ab")], Some("ab"));
        assert_eq!(find_hits(&f.tokens[0], &in_field), TokenHits::Anywhere);
        assert_eq!(twice(&f, &in_field, false), Err("every"));
        // A token a number attribute could produce is not looked for.
        assert_eq!(twice(&filter("42"), &b, false), Err("every"));
    }

    /// A sparse token is walked from the block's memo (the list computed
    /// on the second search); a token no record holds whole rules the
    /// block out once remembered; with several tokens the rarest is
    /// walked; a common token is walked from its bitmap in either order.
    #[test]
    fn text_walk_uses_the_rarest_remembered_token() {
        let mut messages = vec![Some("plain words"); 200];
        messages[3] = Some("ab zz");
        messages[17] = Some("x ab");
        messages[130] = Some("AB, here");
        messages[131] = Some("cab zzz");
        let b = block(&messages, None);
        let ab = filter("ab");
        assert_eq!(
            find_hits(&ab.tokens[0], &b),
            TokenHits::Records(vec![3, 17, 130].into())
        );
        assert_eq!(walk(&ab, &b, true), Ok(vec![130, 17, 3]));
        assert_eq!(b.memo_tokens(), 0, "a first search only notes the token");
        assert_eq!(walk(&ab, &b, true), Ok(vec![130, 17, 3]));
        assert_eq!(b.memo_tokens(), 1, "the second one remembers it");
        assert_eq!(walk(&ab, &b, false), Ok(vec![3, 17, 130]));
        // Both tokens: the remembered one until zz is remembered too, then
        // the rarer (zz: record 3 only). Candidates, not matches: the
        // records still go through `matches`.
        let ab_zz = filter("ab zz");
        assert_eq!(walk(&ab_zz, &b, true), Ok(vec![130, 17, 3]));
        assert_eq!(walk(&ab_zz, &b, true), Ok(vec![3]));
        assert_eq!(twice(&filter("zz AB"), &b, false), Ok(vec![3]));
        // "cab" and "zzz" hold the bytes but not the token.
        assert_eq!(twice(&filter("ca"), &b, false), Err("nothing"));
        // A token no record holds, next to a remembered one: the
        // remembered one's records first, nothing once both are known.
        let ab_qq = filter("ab qq");
        assert_eq!(walk(&ab_qq, &b, true), Ok(vec![130, 17, 3]));
        assert_eq!(walk(&ab_qq, &b, true), Err("nothing"));
        // A common token next to a rare one: the rare one's records.
        assert_eq!(twice(&filter("words zz"), &b, true), Ok(vec![3]));
        // Only the common one: its bitmap, both orders.
        let plain: Vec<usize> = (0..200)
            .filter(|i| ![3, 17, 130, 131].contains(i))
            .collect();
        let words = filter("words");
        let TokenHits::Bitmap { words: bits, count } = find_hits(&words.tokens[0], &b) else {
            panic!("not a bitmap")
        };
        assert_eq!(count as usize, plain.len());
        assert_eq!(bits.len(), b.len().div_ceil(64));
        assert_eq!(bits[0], !((1 << 3) | (1 << 17)), "records 3 and 17 lack it");
        assert_eq!(twice(&words, &b, false), Ok(plain.clone()));
        let mut rev = plain;
        rev.reverse();
        assert_eq!(walk(&words, &b, true), Ok(rev));
    }

    #[test]
    fn numeric_tokens_are_not_checked() {
        assert!(!frame_checkable(b"42"));
        assert!(!frame_checkable(b"1e21"));
        assert!(!frame_checkable(b"true"));
        assert!(!frame_checkable(b"nan"));
        assert!(frame_checkable(b"zebracorn"));
        assert!(frame_checkable(b"17ms"));
    }
}
