//! What a decoded block knows about the query tokens searched in it: a
//! small memo kept with the block.
//!
//! Blocks are immutable, so where a token occurs in one never changes.
//! Finding out costs a scan of the block's messages (~1 MiB for a block
//! of 4,096 records); a query that reaches the block again — the next
//! page, a refreshed view, the same search from another user — reads the
//! answer instead. For a rare token that is the whole cost of a page: its
//! few matching blocks (and the bloom filter's false positives, which hold
//! none) are scanned once, then visited by their matching records only.
//! ClickHouse's query condition cache keeps the same kind of answer per
//! data part for the same reason.
//!
//! A token is remembered the *second* time it is looked up in a block: the
//! first time, the block only notes its hash and the query scans lazily
//! (it can stop once its page is full), so a one-off search costs what it
//! did without the memo and does not push out what repeated searches use.
//! The memo holds at most [`MEMO_TOKENS`] tokens per block (least recently
//! used forgotten first), each at most [`MAX_MEMO_TOKEN`] bytes, and an
//! answer takes about one bit per record (a list of record numbers when
//! at most one record in 32 holds the token, a bitmap otherwise): at most
//! 4 bytes per record for the 32. Blocks under [`MIN_MEMO_RECORDS`]
//! records keep none. That bound is part of [`DecodedBlock::byte_len`](super::DecodedBlock::byte_len),
//! so block caches count it.

use std::collections::VecDeque;
use std::sync::{Arc, Mutex, MutexGuard};

use xxhash_rust::xxh3::xxh3_64;

/// Where one token occurs in a block.
#[derive(Debug, Clone, PartialEq, Eq)]
pub enum TokenHits {
    /// The token's bytes occur in the block's structured data or
    /// attributes: any record may hold it, so every record is a candidate.
    Anywhere,
    /// The records holding it, ascending: exactly those whose message
    /// holds it as a whole token (no field can). Empty: no record matches.
    Records(Box<[u32]>),
    /// The same as a bitmap (bit `i % 64` of word `i / 64` for record
    /// `i`), when the records are too many for a list; `count` bits set.
    Bitmap {
        /// The bits.
        words: Box<[u64]>,
        /// Records holding the token.
        count: u32,
    },
}

impl TokenHits {
    /// The answer for the ascending records `hits` of a block of `n`.
    pub fn from_records(hits: Vec<u32>, n: usize) -> Self {
        if hits.len() * LIST_SHARE <= n {
            return TokenHits::Records(hits.into());
        }
        let mut words = vec![0u64; n.div_ceil(64)];
        for &i in &hits {
            words[i as usize / 64] |= 1 << (i % 64);
        }
        TokenHits::Bitmap {
            words: words.into(),
            count: hits.len() as u32,
        }
    }

    /// Records holding the token (`None` for [`Anywhere`](Self::Anywhere)).
    pub fn count(&self) -> Option<usize> {
        match self {
            TokenHits::Anywhere => None,
            TokenHits::Records(r) => Some(r.len()),
            TokenHits::Bitmap { count, .. } => Some(*count as usize),
        }
    }

    /// Bytes held (tests: within the bound the block reserves).
    #[cfg(test)]
    fn byte_len(&self) -> usize {
        std::mem::size_of::<Self>()
            + match self {
                TokenHits::Anywhere => 0,
                TokenHits::Records(r) => r.len() * 4,
                TokenHits::Bitmap { words, .. } => words.len() * 8,
            }
    }
}

/// Most tokens a block remembers.
pub const MEMO_TOKENS: usize = 32;

/// Blocks of fewer records keep no memo: scanning them is cheap, and the
/// memo's fixed part (~6 KB reserved) would be a large share of a small
/// block's weight in the cache (fresh blocks before compaction, a page's
/// repacked rows).
pub const MIN_MEMO_RECORDS: usize = 256;

/// Most tokens a block notes as seen once (by hash).
const SEEN_TOKENS: usize = 64;

/// Longest token remembered, bytes (longer ones are never remembered).
pub const MAX_MEMO_TOKEN: usize = 64;

/// A list of record numbers is kept when at most one record in this many
/// holds the token (4 bytes each: at most one bit per record, as a bitmap).
const LIST_SHARE: usize = 32;

#[derive(Clone, Default)]
struct Entries {
    /// Remembered answers, least recently used first.
    known: VecDeque<(Box<[u8]>, Arc<TokenHits>)>,
    /// Hashes of tokens looked up once, oldest first.
    seen: VecDeque<u64>,
}

/// The memo of one block.
#[derive(Default)]
pub(crate) struct TokenMemo {
    entries: Mutex<Entries>,
}

impl TokenMemo {
    fn lock(&self) -> MutexGuard<'_, Entries> {
        // Entries are pushed whole, so a panic while holding the lock
        // cannot leave one half written: a poisoned memo is usable.
        self.entries
            .lock()
            .unwrap_or_else(std::sync::PoisonError::into_inner)
    }

    /// The memo's answer for `token`: remembered, or computed by `compute`
    /// (outside the lock) and remembered when this is the second lookup of
    /// the token; `None` on the first (the token's hash is noted).
    pub(crate) fn get_or_compute(
        &self,
        token: &[u8],
        compute: impl FnOnce() -> TokenHits,
    ) -> Option<Arc<TokenHits>> {
        if token.len() > MAX_MEMO_TOKEN {
            return None;
        }
        let hash = xxh3_64(token);
        {
            let mut m = self.lock();
            if let Some(k) = m.known.iter().position(|(t, _)| &**t == token) {
                let e = m.known.remove(k)?;
                let hits = e.1.clone();
                m.known.push_back(e);
                return Some(hits);
            }
            if !m.seen.contains(&hash) {
                if m.seen.len() >= SEEN_TOKENS {
                    m.seen.pop_front();
                }
                m.seen.push_back(hash);
                return None;
            }
        }
        let hits = Arc::new(compute());
        let mut m = self.lock();
        // Another query may have computed it meanwhile: keep one.
        if let Some((_, h)) = m.known.iter().find(|(t, _)| &**t == token) {
            return Some(h.clone());
        }
        m.seen.retain(|&h| h != hash);
        if m.known.len() >= MEMO_TOKENS {
            m.known.pop_front();
        }
        m.known.push_back((token.into(), hits.clone()));
        Some(hits)
    }

    /// Tokens remembered (tests).
    #[cfg(test)]
    pub(crate) fn len(&self) -> usize {
        self.lock().known.len()
    }

    /// Most bytes one answer for a block of `records` records holds: a
    /// list of at most `records / 32` numbers or a bitmap, about one bit
    /// per record either way.
    fn answer_bound(records: usize) -> usize {
        std::mem::size_of::<TokenHits>() + (records.div_ceil(64) * 8).max(records / LIST_SHARE * 4)
    }

    /// Most bytes the memo of a block of `records` records can hold (0
    /// below [`MIN_MEMO_RECORDS`]: such a block keeps no memo).
    pub(crate) fn bound(records: usize) -> usize {
        if records < MIN_MEMO_RECORDS {
            return 0;
        }
        MEMO_TOKENS * (Self::answer_bound(records) + MAX_MEMO_TOKEN + 64) + SEEN_TOKENS * 8 + 128
    }
}

impl Clone for TokenMemo {
    fn clone(&self) -> Self {
        TokenMemo {
            entries: Mutex::new(self.lock().clone()),
        }
    }
}

impl std::fmt::Debug for TokenMemo {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        let m = self.lock();
        f.debug_struct("TokenMemo")
            .field("known", &m.known.len())
            .field("seen", &m.seen.len())
            .finish()
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    fn lookup(memo: &TokenMemo, token: &[u8], calls: &mut usize) -> Option<Arc<TokenHits>> {
        memo.get_or_compute(token, || {
            *calls += 1;
            TokenHits::Records(vec![3, 9].into())
        })
    }

    /// Noted the first time, computed and remembered the second, read from
    /// the memo after; least recently used forgotten first; long tokens
    /// never remembered.
    #[test]
    fn remembers_on_the_second_lookup_and_forgets_the_least_used() {
        let memo = TokenMemo::default();
        let mut calls = 0;
        assert_eq!(lookup(&memo, b"tok", &mut calls), None);
        assert_eq!(calls, 0, "the first lookup only notes the token");
        let want = Some(Arc::new(TokenHits::Records(vec![3, 9].into())));
        assert_eq!(lookup(&memo, b"tok", &mut calls), want);
        assert_eq!(lookup(&memo, b"tok", &mut calls), want);
        assert_eq!(calls, 1, "computed once");
        // Fill the memo; `tok` is used in between, so `t0` is the least
        // recently used when one more arrives.
        for i in 0..MEMO_TOKENS - 1 {
            let t = format!("t{i}");
            lookup(&memo, t.as_bytes(), &mut calls);
            lookup(&memo, t.as_bytes(), &mut calls);
        }
        assert_eq!(memo.len(), MEMO_TOKENS);
        lookup(&memo, b"tok", &mut calls);
        let before = calls;
        lookup(&memo, b"new", &mut calls);
        lookup(&memo, b"new", &mut calls);
        assert_eq!(memo.len(), MEMO_TOKENS);
        lookup(&memo, b"tok", &mut calls);
        assert_eq!(calls, before + 1, "tok was kept");
        lookup(&memo, b"t0", &mut calls);
        lookup(&memo, b"t0", &mut calls);
        assert_eq!(calls, before + 2, "t0 was forgotten: noted, then computed");
        // Never remembered past the length bound.
        let long = vec![b'a'; MAX_MEMO_TOKEN + 1];
        for _ in 0..3 {
            assert_eq!(lookup(&memo, &long, &mut calls), None);
        }
    }

    /// A list for few records, a bitmap for many; both within the bound.
    #[test]
    fn answers_are_lists_or_bitmaps_within_the_bound() {
        let n = 4_096;
        let few: Vec<u32> = (0..n as u32 / 32).map(|i| i * 32).collect();
        let h = TokenHits::from_records(few.clone(), n);
        assert_eq!(h, TokenHits::Records(few.into()));
        assert!(h.byte_len() <= TokenMemo::answer_bound(n));
        let many: Vec<u32> = (0..n as u32 / 32 + 1).map(|i| i * 31).collect();
        let h = TokenHits::from_records(many.clone(), n);
        let TokenHits::Bitmap { words, count } = &h else {
            panic!("{h:?}")
        };
        assert_eq!(*count as usize, many.len());
        assert_eq!(words.len(), 64);
        assert!(
            many.iter()
                .all(|&i| words[i as usize / 64] & (1 << (i % 64)) != 0)
        );
        let set: u32 = words.iter().map(|w| w.count_ones()).sum();
        assert_eq!(set as usize, many.len());
        assert!(h.byte_len() <= TokenMemo::answer_bound(n));
        assert_eq!(h.count(), Some(many.len()));
        // The whole memo: 32 answers of the worst kind under 64-byte
        // tokens, and a full ring of seen hashes, stay within the bound
        // the block reserves (about 4 bytes per record, plus ~6 KB).
        let memo = TokenMemo::default();
        let worst: Vec<u32> = (0..n as u32).step_by(2).collect();
        for i in 0..MEMO_TOKENS + SEEN_TOKENS {
            let t = format!("{i:064}");
            for _ in 0..2 {
                memo.get_or_compute(t.as_bytes(), || TokenHits::from_records(worst.clone(), n));
            }
        }
        for i in 0..SEEN_TOKENS {
            memo.get_or_compute(format!("seen{i}").as_bytes(), || TokenHits::Anywhere);
        }
        let m = memo.lock();
        assert_eq!((m.known.len(), m.seen.len()), (MEMO_TOKENS, SEEN_TOKENS));
        let held: usize = m
            .known
            .iter()
            .map(|(t, h)| t.len() + h.byte_len() + 16)
            .sum::<usize>()
            + m.seen.capacity() * 8
            + m.known.capacity() * std::mem::size_of::<(Box<[u8]>, Arc<TokenHits>)>();
        assert!(
            held <= TokenMemo::bound(n),
            "{held} > {}",
            TokenMemo::bound(n)
        );
        assert!(
            TokenMemo::bound(n) <= 4 * n + 7_000,
            "{}",
            TokenMemo::bound(n)
        );
        assert_eq!(TokenMemo::bound(MIN_MEMO_RECORDS - 1), 0);
        assert_eq!(TokenHits::Anywhere.count(), None);
    }
}
