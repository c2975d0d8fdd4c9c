//! Which records of a block a full-text condition leaves to check: the
//! block's token memo (see `logblock/token_memo.rs`), or a lazy scan of
//! its messages the first time a token is searched there.

use std::sync::Arc;

use super::{CompiledFilter, frame_checkable};
use crate::logblock::tokenizer::is_word_byte;
use crate::logblock::{DecodedBlock, TokenHits};
use crate::logquery::needle::Needle;

impl CompiledFilter {
    /// Which records of `b` the full-text condition leaves to check, in
    /// walk order (descending when `newest`). Each token that only stored
    /// text can hold ([`frame_checkable`]) is looked up in the block's
    /// token memo ([`find_hits`] computes what it keeps): a token no
    /// record holds rules the block out (a bloom false positive), else the
    /// records of the rarest remembered token are walked. A token the
    /// block has not remembered (the first search for it there) is found
    /// by scanning the messages lazily, as far as the walk goes. Candidates
    /// still go through [`BlockFilter::matches`](super::BlockFilter::matches).
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
mod tests {
    use super::*;
    use crate::logquery::LogFilter;

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
}
