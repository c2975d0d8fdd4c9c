//! Block summaries: what the query engine knows about a block without
//! reading its payload.
//!
//! Stored as columns of the block row: the tenant, id, time span and record
//! count as plain columns (the SQL filters on them), the severity counts and
//! host/app/source sets as one small `summary` blob, and the token bloom
//! filter as a separate `tokens` blob fetched only when a query has a
//! full-text or field filter.
//!
//! A value set is exact while a block has at most [`EXACT_SET_MAX`] distinct
//! values (hosts in a block usually number a handful) and a bloom filter
//! beyond that. Exact sets also answer "every record has host X", which lets
//! the volume query count a host-filtered block without decoding it.

use xxhash_rust::xxh3::{xxh3_64, xxh3_64_with_seed};

use super::wire::{Reader, put_bytes, put_u64};
use super::{BlockError, BlockId, Bloom};
use crate::event::{Severity, Tenant, Timestamp};

/// Most distinct values a set keeps exactly.
pub const EXACT_SET_MAX: usize = 32;

/// Index of "no severity" in [`BlockSummary::severity_counts`].
pub const NO_SEVERITY: usize = 8;

const SUMMARY_VERSION: u8 = 1;

/// The hash a `name=value` field pair is entered into the token filter with
/// (a different seed from tokens, so `a=b` never aliases a token).
pub fn field_hash(name: &str, value: &str) -> u64 {
    field_hash_with(&mut Vec::new(), name, value)
}

/// [`field_hash`] with a reusable scratch buffer (the encoder's hot path).
pub(crate) fn field_hash_with(buf: &mut Vec<u8>, name: &str, value: &str) -> u64 {
    buf.clear();
    buf.extend_from_slice(name.as_bytes());
    buf.push(0);
    buf.extend_from_slice(value.as_bytes());
    xxh3_64_with_seed(buf, 0x6669_656c_645f_6b76)
}

/// The distinct values of one column in a block.
#[derive(Debug, Clone, PartialEq, Eq)]
pub enum ValueSet {
    /// Every distinct value, sorted.
    Exact {
        /// The values.
        values: Vec<String>,
        /// Whether some record has no value at all.
        has_missing: bool,
    },
    /// Too many values: a bloom filter of them.
    Bloom(Bloom),
}

impl Default for ValueSet {
    fn default() -> Self {
        ValueSet::Exact {
            values: Vec::new(),
            has_missing: false,
        }
    }
}

impl ValueSet {
    /// Builds the set from distinct values (any order) at false-positive
    /// rate `fp` if it has to become a filter.
    pub fn build(mut values: Vec<&str>, has_missing: bool, fp: f64) -> Self {
        values.sort_unstable();
        values.dedup();
        if values.len() <= EXACT_SET_MAX {
            ValueSet::Exact {
                values: values.into_iter().map(str::to_owned).collect(),
                has_missing,
            }
        } else {
            let mut b = Bloom::with_capacity(values.len(), fp);
            for v in values {
                b.insert(xxh3_64(v.as_bytes()));
            }
            ValueSet::Bloom(b)
        }
    }

    /// Whether a record with value `v` may be in the block.
    pub fn may_contain(&self, v: &str) -> bool {
        match self {
            ValueSet::Exact { values, .. } => {
                values.binary_search_by(|x| x.as_str().cmp(v)).is_ok()
            }
            ValueSet::Bloom(b) => b.may_contain(xxh3_64(v.as_bytes())),
        }
    }

    /// Whether every record of the block has value `v`.
    pub fn all_equal(&self, v: &str) -> bool {
        matches!(self, ValueSet::Exact { values, has_missing: false } if values.len() == 1 && values[0] == v)
    }

    fn write(&self, out: &mut Vec<u8>) {
        match self {
            ValueSet::Exact {
                values,
                has_missing,
            } => {
                out.push(u8::from(*has_missing));
                put_u64(out, values.len() as u64);
                for v in values {
                    put_bytes(out, v.as_bytes());
                }
            }
            ValueSet::Bloom(b) => {
                out.push(2);
                b.write(out);
            }
        }
    }

    fn read(r: &mut Reader<'_>) -> Result<Self, BlockError> {
        match r.u8()? {
            tag @ (0 | 1) => {
                let n = r.len(EXACT_SET_MAX)?;
                let mut values = Vec::with_capacity(n);
                for _ in 0..n {
                    values.push(r.str()?.to_owned());
                }
                Ok(ValueSet::Exact {
                    values,
                    has_missing: tag == 1,
                })
            }
            2 => Ok(ValueSet::Bloom(Bloom::read(r)?)),
            t => Err(r.err(format!("unknown value-set tag {t}"))),
        }
    }
}

/// What is known about a block without decoding it.
#[derive(Debug, Clone, PartialEq)]
pub struct BlockSummary {
    /// Owner.
    pub tenant: Tenant,
    /// Id.
    pub id: BlockId,
    /// Oldest record timestamp.
    pub min_ts: Timestamp,
    /// Newest record timestamp.
    pub max_ts: Timestamp,
    /// Records in the block.
    pub count: u32,
    /// Records per severity code 0..=7, then records without severity.
    pub severity_counts: [u32; 9],
    /// Hosts.
    pub hosts: ValueSet,
    /// Apps.
    pub apps: ValueSet,
    /// Sources.
    pub sources: ValueSet,
    /// Token filter over message tokens, field-value tokens and
    /// `name=value` field pairs; `None` when not fetched. Shared: blocks
    /// are immutable, so stores may cache filters across queries.
    pub tokens: Option<std::sync::Arc<Bloom>>,
}

impl BlockSummary {
    /// Records with severity at or above `min` (code ≤ `min.code()`).
    pub fn count_at_or_above(&self, min: Severity) -> u32 {
        self.severity_counts[..=usize::from(min.code())]
            .iter()
            .sum()
    }

    /// The `summary` column: severity counts and the three value sets.
    pub fn summary_bytes(&self) -> Vec<u8> {
        let mut out = Vec::with_capacity(64);
        out.push(SUMMARY_VERSION);
        for c in self.severity_counts {
            put_u64(&mut out, u64::from(c));
        }
        self.hosts.write(&mut out);
        self.apps.write(&mut out);
        self.sources.write(&mut out);
        out
    }

    /// The `tokens` column (empty filter when absent).
    pub fn token_bytes(&self) -> Vec<u8> {
        let mut out = Vec::new();
        match &self.tokens {
            Some(t) => t.write(&mut out),
            None => Bloom::default().write(&mut out),
        }
        out
    }

    /// Rebuilds a summary from its stored columns.
    ///
    /// # Errors
    /// [`BlockError::Corrupt`] when a blob does not decode or the counts do
    /// not add up to `count`.
    pub fn from_columns(
        tenant: Tenant,
        id: BlockId,
        min_ts: Timestamp,
        max_ts: Timestamp,
        count: u32,
        summary: &[u8],
        tokens: Option<&[u8]>,
    ) -> Result<Self, BlockError> {
        let mut r = Reader::new(summary, "summary");
        let v = r.u8()?;
        if v != SUMMARY_VERSION {
            return Err(r.err(format!("unknown summary version {v}")));
        }
        let mut severity_counts = [0u32; 9];
        for c in &mut severity_counts {
            *c = u32::try_from(r.u64()?).map_err(|_| r.err("severity count over u32"))?;
        }
        let sum: u64 = severity_counts.iter().map(|&c| u64::from(c)).sum();
        if sum != u64::from(count) {
            return Err(r.err(format!("severity counts add up to {sum}, not {count}")));
        }
        let hosts = ValueSet::read(&mut r)?;
        let apps = ValueSet::read(&mut r)?;
        let sources = ValueSet::read(&mut r)?;
        if !r.is_empty() {
            return Err(r.err("trailing bytes"));
        }
        let tokens = tokens
            .map(Bloom::from_bytes)
            .transpose()?
            .map(std::sync::Arc::new);
        Ok(BlockSummary {
            tenant,
            id,
            min_ts,
            max_ts,
            count,
            severity_counts,
            hosts,
            apps,
            sources,
            tokens,
        })
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn columns_round_trip() {
        let names: Vec<String> = (0..40).map(|i| format!("h{i}")).collect();
        let s = BlockSummary {
            tenant: Tenant::default(),
            id: BlockId(7),
            min_ts: Timestamp::from_nanos(1),
            max_ts: Timestamp::from_nanos(9),
            count: 6,
            severity_counts: [0, 0, 0, 2, 0, 0, 3, 0, 1],
            hosts: ValueSet::build(names.iter().map(String::as_str).collect(), false, 0.01),
            apps: ValueSet::build(vec!["b", "a", "b"], true, 0.01),
            sources: ValueSet::default(),
            tokens: Some(std::sync::Arc::new(Bloom::with_capacity(3, 0.01))),
        };
        let back = BlockSummary::from_columns(
            s.tenant.clone(),
            s.id,
            s.min_ts,
            s.max_ts,
            s.count,
            &s.summary_bytes(),
            Some(&s.token_bytes()),
        )
        .unwrap();
        assert_eq!(back, s);
        assert!(matches!(back.hosts, ValueSet::Bloom(_)));
        assert!(back.hosts.may_contain("h39") && back.apps.may_contain("a"));
        assert!(!back.apps.may_contain("c") && !back.apps.all_equal("a"));
        assert_eq!(back.count_at_or_above(Severity::Error), 2);
        assert_eq!(back.count_at_or_above(Severity::Debug), 5);
        let bad = BlockSummary::from_columns(
            s.tenant.clone(),
            s.id,
            s.min_ts,
            s.max_ts,
            5,
            &s.summary_bytes(),
            None,
        );
        assert!(bad.is_err(), "counts must add up");
    }
}
