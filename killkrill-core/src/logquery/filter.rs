//! A [`LogFilter`] prepared for one query: block pruning and exact
//! per-record matching.
//!
//! Pruning may keep a block that has no match (a bloom false positive, or a
//! host that occurs only in records of another severity); matching is exact.
//! Matching checks cheap columns first (severity, host, app, source) and
//! touches message and fields only for records that pass them.

mod text_walk;

pub use text_walk::TextWalk;

use super::LogFilter;
use super::needle::Needle;
use crate::logblock::tokenizer::for_each_token;

use crate::logblock::{
    BlockError, BlockSummary, DecodedBlock, Dict, DictLookup, field_hash, query_tokens, token_hash,
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

    /// The token hashes a block's token filter must all hold.
    pub fn bloom_keys(&self) -> &[u64] {
        &self.bloom_keys
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

#[cfg(test)]
mod frame_tests {
    use super::*;

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
