//! DDSketch: a mergeable quantile sketch with a relative-error guarantee.
//!
//! Why DDSketch: rollups are merged from partials in any grouping, stored on
//! three databases and merged again at query time, so the sketch must merge
//! *exactly* (bucket counts just add up when both sides use the same
//! mapping) and its error must not depend on the merge tree. DDSketch gives a
//! quantile within relative error α of the true value for any data set —
//! including negative values, zeros and many orders of magnitude — where
//! t-digest's error depends on insertion and merge order.
//!
//! Layout: a positive store (indices of magnitudes of positive values), a
//! negative store (magnitudes of negative values), a zero count, and the
//! count, min and max kept exactly beside them (min and max clamp estimates,
//! so the extreme quantiles are exact). Each store keeps at most
//! `max_buckets` buckets and collapses the lowest ones (see
//! [`super::bucket_store`]); with α = 1 % and 2,048 buckets that only happens
//! when one store's values span more than 17 orders of magnitude.

use super::bucket_store::BucketStore;
use super::mapping::LogMapping;
use super::wire::{DecodeError, Reader, Writer};

/// Type tag of an encoded sketch.
const TAG: u8 = 0xdd;
/// Current sketch encoding version.
const VERSION: u8 = 1;
/// Most buckets a store may have (also the decoding limit).
pub const MAX_BUCKETS_LIMIT: u32 = 65_536;

/// The parameters that must match for two sketches to merge.
#[derive(Debug, Clone, Copy, PartialEq)]
pub struct SketchParams {
    mapping: LogMapping,
    max_buckets: u32,
}

/// The parameters are out of range.
#[derive(Debug, Clone, PartialEq, thiserror::Error)]
pub enum SketchParamsError {
    /// α outside `1e-4 .. 0.5`.
    #[error("relative accuracy {0} is outside 0.0001..0.5")]
    RelativeAccuracy(f64),
    /// `max_buckets` outside `16 ..= 65536`.
    #[error("max buckets {0} is outside 16..=65536")]
    MaxBuckets(u32),
}

impl SketchParams {
    /// Parameters with relative accuracy `alpha` and at most `max_buckets`
    /// buckets per store.
    ///
    /// # Errors
    /// [`SketchParamsError`] when `alpha` is outside `1e-4 .. 0.5` or
    /// `max_buckets` outside `16 ..= 65536`.
    pub fn new(alpha: f64, max_buckets: u32) -> Result<Self, SketchParamsError> {
        if !LogMapping::valid_alpha(alpha) {
            return Err(SketchParamsError::RelativeAccuracy(alpha));
        }
        if !(16..=MAX_BUCKETS_LIMIT).contains(&max_buckets) {
            return Err(SketchParamsError::MaxBuckets(max_buckets));
        }
        Ok(SketchParams {
            mapping: LogMapping::new(alpha),
            max_buckets,
        })
    }

    /// The relative accuracy α.
    pub fn relative_accuracy(&self) -> f64 {
        self.mapping.alpha()
    }

    /// The bucket limit per store.
    pub fn max_buckets(&self) -> u32 {
        self.max_buckets
    }

    /// The bucket key of a finite value: computed once per sample and
    /// reused for every sketch the sample goes into.
    #[inline]
    pub(crate) fn key(&self, v: f64) -> BucketKey {
        if v > 0.0 {
            BucketKey::Positive(self.mapping.index(v))
        } else if v < 0.0 {
            BucketKey::Negative(self.mapping.index(-v))
        } else {
            BucketKey::Zero
        }
    }
}

impl Default for SketchParams {
    /// α = 1 %, 2,048 buckets per store.
    fn default() -> Self {
        SketchParams {
            mapping: LogMapping::new(0.01),
            max_buckets: 2048,
        }
    }
}

/// Where a value goes in a sketch.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub(crate) enum BucketKey {
    Negative(i32),
    Zero,
    Positive(i32),
}

/// The two sketches cannot be merged.
#[derive(Debug, Clone, PartialEq, thiserror::Error)]
#[error(
    "sketch parameters differ (relative accuracy {a_alpha} vs {b_alpha}, max buckets {a_buckets} vs {b_buckets})"
)]
pub struct SketchMismatch {
    a_alpha: f64,
    b_alpha: f64,
    a_buckets: u32,
    b_buckets: u32,
}

/// A DDSketch over finite values.
#[derive(Debug, Clone, PartialEq)]
pub struct DdSketch {
    params: SketchParams,
    positive: BucketStore,
    negative: BucketStore,
    zero: u64,
    count: u64,
    min: f64,
    max: f64,
}

impl DdSketch {
    /// An empty sketch.
    pub fn new(params: SketchParams) -> Self {
        DdSketch {
            params,
            positive: BucketStore::default(),
            negative: BucketStore::default(),
            zero: 0,
            count: 0,
            min: f64::INFINITY,
            max: f64::NEG_INFINITY,
        }
    }

    /// The parameters.
    pub fn params(&self) -> SketchParams {
        self.params
    }

    /// Adds a value; NaN and ±Inf are ignored (the engine counts and skips
    /// them before they reach a sketch).
    pub fn add(&mut self, v: f64) {
        if v.is_finite() {
            let key = self.params.key(v);
            self.add_keyed(v, key);
        }
    }

    /// Adds a finite value whose key was computed with these parameters.
    #[inline]
    pub(crate) fn add_keyed(&mut self, v: f64, key: BucketKey) {
        let max_buckets = self.params.max_buckets;
        match key {
            BucketKey::Positive(i) => self.positive.add(i, 1, max_buckets),
            BucketKey::Negative(i) => self.negative.add(i, 1, max_buckets),
            BucketKey::Zero => self.zero += 1,
        }
        self.count += 1;
        if v.total_cmp(&self.min).is_lt() {
            self.min = v;
        }
        if v.total_cmp(&self.max).is_gt() {
            self.max = v;
        }
    }

    /// Number of values.
    pub fn count(&self) -> u64 {
        self.count
    }

    /// Smallest value (`None` when empty).
    pub fn min(&self) -> Option<f64> {
        (self.count > 0).then_some(self.min)
    }

    /// Largest value (`None` when empty).
    pub fn max(&self) -> Option<f64> {
        (self.count > 0).then_some(self.max)
    }

    /// The estimate of the `q`-quantile (`0 ≤ q ≤ 1`): within relative
    /// accuracy α of the value of rank `⌊q·(count − 1)⌋` in sorted order, as
    /// long as its store did not collapse. `None` when empty or `q` is out
    /// of range.
    pub fn quantile(&self, q: f64) -> Option<f64> {
        if self.count == 0 || !(0.0..=1.0).contains(&q) {
            return None;
        }
        let rank = q * (self.count - 1) as f64;
        let mut seen = 0u64;
        let m = &self.params.mapping;
        let mut found = None;
        for (i, c) in self.negative.buckets().rev() {
            seen += c;
            if seen as f64 > rank {
                found = Some(-m.value(i));
                break;
            }
        }
        if found.is_none() {
            seen += self.zero;
            if seen as f64 > rank {
                found = Some(0.0);
            }
        }
        if found.is_none() {
            for (i, c) in self.positive.buckets() {
                seen += c;
                if seen as f64 > rank {
                    found = Some(m.value(i));
                    break;
                }
            }
        }
        let v = found.unwrap_or(self.max);
        Some(v.clamp(self.min, self.max))
    }

    /// Adds every value of `other`.
    ///
    /// # Errors
    /// [`SketchMismatch`] when the parameters differ (the buckets would not
    /// line up); `self` is unchanged then.
    pub fn merge(&mut self, other: &DdSketch) -> Result<(), SketchMismatch> {
        if self.params != other.params {
            return Err(SketchMismatch {
                a_alpha: self.params.relative_accuracy(),
                b_alpha: other.params.relative_accuracy(),
                a_buckets: self.params.max_buckets,
                b_buckets: other.params.max_buckets,
            });
        }
        let mb = self.params.max_buckets;
        self.positive.merge(&other.positive, mb);
        self.negative.merge(&other.negative, mb);
        self.zero = self.zero.saturating_add(other.zero);
        self.count = self.count.saturating_add(other.count);
        if other.count > 0 {
            if other.min.total_cmp(&self.min).is_lt() {
                self.min = other.min;
            }
            if other.max.total_cmp(&self.max).is_gt() {
                self.max = other.max;
            }
        }
        Ok(())
    }

    /// The compact, versioned binary form (see `docs/src/aggregation.md`).
    pub fn to_bytes(&self) -> Vec<u8> {
        let mut out = Vec::with_capacity(32 + self.positive.slots() + self.negative.slots());
        self.encode_into(&mut out);
        out
    }

    /// Appends the binary form to `out`.
    pub fn encode_into(&self, out: &mut Vec<u8>) {
        let mut w = Writer(out);
        w.u8(TAG);
        w.u8(VERSION);
        w.f64(self.params.relative_accuracy());
        w.varint(u64::from(self.params.max_buckets));
        w.varint(self.count);
        if self.count > 0 {
            w.f64(self.min);
            w.f64(self.max);
        }
        w.varint(self.zero);
        for store in [&self.positive, &self.negative] {
            encode_store(&mut w, store);
        }
    }

    /// Decodes and validates a sketch from untrusted bytes.
    ///
    /// # Errors
    /// [`DecodeError`] naming the byte offset when the input is truncated,
    /// has trailing bytes, an unknown tag or version, parameters out of
    /// range, more buckets than its own limit, bucket indices no finite value
    /// maps to, or counts that do not add up.
    pub fn from_bytes(bytes: &[u8]) -> Result<Self, DecodeError> {
        let mut r = Reader::new(bytes, "sketch");
        let s = Self::decode(&mut r)?;
        r.finish()?;
        Ok(s)
    }

    /// Decodes one sketch from a reader (also used inside rollup blobs).
    pub(crate) fn decode(r: &mut Reader<'_>) -> Result<Self, DecodeError> {
        r.header(TAG, VERSION)?;
        let at = r.pos();
        let alpha = r.f64("relative accuracy")?;
        let at_b = r.pos();
        let max_buckets = r.bounded("max buckets", u64::from(MAX_BUCKETS_LIMIT))? as u32;
        let params = match SketchParams::new(alpha, max_buckets) {
            Ok(p) => p,
            Err(e @ SketchParamsError::RelativeAccuracy(_)) => {
                return Err(r.error_at(at, e.to_string()));
            }
            Err(e) => return Err(r.error_at(at_b, e.to_string())),
        };
        let mut s = DdSketch::new(params);
        let at_count = r.pos();
        s.count = r.varint("count")?;
        if s.count > 0 {
            let at_min = r.pos();
            s.min = r.finite("min")?;
            s.max = r.finite("max")?;
            if s.min.total_cmp(&s.max).is_gt() {
                return Err(r.error_at(at_min, "min is greater than max"));
            }
        }
        s.zero = r.varint("zero count")?;
        let (lo, hi) = params.mapping.index_range();
        let mut total = s.zero;
        let limits = StoreLimits {
            max_buckets,
            lo: lo.into(),
            hi: hi.into(),
        };
        s.positive = decode_store(r, "positive store", &limits, &mut total)?;
        s.negative = decode_store(r, "negative store", &limits, &mut total)?;
        if total != s.count {
            return Err(r.error_at(
                at_count,
                format!("count {} but buckets hold {total}", s.count),
            ));
        }
        Ok(s)
    }
}

/// Store layouts in the blob.
const STORE_EMPTY: u8 = 0;
/// Every slot from the lowest to the highest index, one count each.
const STORE_DENSE: u8 = 1;
/// Only non-empty buckets, as (gap to the previous index, count) pairs:
/// smaller when values are spread thin over many orders of magnitude.
const STORE_SPARSE: u8 = 2;

/// Writes a store in whichever layout is smaller.
fn encode_store(w: &mut Writer<'_>, store: &BucketStore) {
    let (offset, counts) = store.dense();
    if counts.is_empty() {
        w.u8(STORE_EMPTY);
        return;
    }
    let nonempty = counts.iter().filter(|c| **c > 0).count();
    if counts.len() <= 2 * nonempty {
        w.u8(STORE_DENSE);
        w.varint(counts.len() as u64);
        w.zigzag(i64::from(offset));
        for c in counts {
            w.varint(*c);
        }
    } else {
        w.u8(STORE_SPARSE);
        w.varint(nonempty as u64);
        let mut prev: Option<i32> = None;
        for (i, c) in store.buckets() {
            match prev {
                None => w.zigzag(i64::from(i)),
                Some(p) => w.varint((i - p) as u64),
            }
            w.varint(c);
            prev = Some(i);
        }
    }
}

/// What a decoded store must respect.
struct StoreLimits {
    max_buckets: u32,
    lo: i64,
    hi: i64,
}

/// Reads and validates one store, adding its counts to `total`.
fn decode_store(
    r: &mut Reader<'_>,
    name: &str,
    limits: &StoreLimits,
    total: &mut u64,
) -> Result<BucketStore, DecodeError> {
    let at = r.pos();
    let layout = r.u8(name)?;
    let max = u64::from(limits.max_buckets);
    let (offset, counts) = match layout {
        STORE_EMPTY => return Ok(BucketStore::default()),
        STORE_DENSE => {
            let n = r.bounded(name, max)? as usize;
            let at_off = r.pos();
            let offset = r.zigzag("bucket offset")?;
            let mut counts = Vec::with_capacity(n);
            for _ in 0..n {
                counts.push(r.varint("bucket count")?);
            }
            if counts.first().is_none_or(|c| *c == 0) || counts.last().is_none_or(|c| *c == 0) {
                return Err(r.error_at(
                    at_off,
                    format!("{name} is empty or starts or ends with an empty bucket"),
                ));
            }
            (offset, counts)
        }
        STORE_SPARSE => {
            let n = r.bounded(name, max)?;
            if n == 0 {
                return Err(r.error_at(at, format!("{name} is sparse with no bucket")));
            }
            let at_off = r.pos();
            let first = r.zigzag("bucket index")?;
            let mut pairs = vec![(first, r.varint("bucket count")?)];
            let mut index = first;
            for _ in 1..n {
                let at_gap = r.pos();
                let gap = r.varint("bucket gap")?;
                index = index.saturating_add(i64::try_from(gap).unwrap_or(i64::MAX));
                if gap == 0 || i128::from(index) - i128::from(first) >= i128::from(max) {
                    return Err(r.error_at(
                        at_gap,
                        format!("{name} spans more than {max} buckets or repeats an index"),
                    ));
                }
                pairs.push((index, r.varint("bucket count")?));
            }
            if pairs.iter().any(|(_, c)| *c == 0) {
                return Err(r.error_at(at_off, format!("{name} lists an empty bucket")));
            }
            let mut counts = vec![0u64; (index - first + 1) as usize];
            for (i, c) in pairs {
                counts[(i - first) as usize] = c;
            }
            (first, counts)
        }
        other => return Err(r.error_at(at, format!("unknown {name} layout {other}"))),
    };
    let last = offset.saturating_add(counts.len() as i64 - 1);
    if offset < limits.lo || last > limits.hi {
        return Err(r.error_at(
            at,
            format!(
                "bucket indices {offset}..={last} outside {}..={}",
                limits.lo, limits.hi
            ),
        ));
    }
    for c in &counts {
        *total = total
            .checked_add(*c)
            .ok_or_else(|| r.error_at(at, "bucket counts overflow"))?;
    }
    Ok(BucketStore::from_dense(offset as i32, counts))
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn quantiles_small_table() {
        let p = SketchParams::default();
        let cases: &[(&[f64], f64, f64)] = &[
            (&[1.0, 2.0, 3.0, 4.0, 5.0], 0.5, 3.0),
            (&[1.0, 2.0, 3.0, 4.0, 5.0], 0.0, 1.0),
            (&[1.0, 2.0, 3.0, 4.0, 5.0], 1.0, 5.0),
            (&[-3.0, 0.0, 0.0, 7.0], 0.5, 0.0),
            (&[-3.0, -2.0, -1.0], 0.0, -3.0),
            (&[-3.0, -2.0, -1.0], 0.5, -2.0),
            (&[42.0], 0.99, 42.0),
        ];
        for (xs, q, want) in cases {
            let mut s = DdSketch::new(p);
            xs.iter().for_each(|x| s.add(*x));
            let got = s.quantile(*q).unwrap();
            assert!(
                (got - want).abs() <= 0.01 * want.abs(),
                "{xs:?} q {q}: {got} vs {want}"
            );
        }
        assert_eq!(DdSketch::new(p).quantile(0.5), None);
    }

    #[test]
    fn wide_sparse_sketches_encode_compactly() {
        let mut s = DdSketch::new(SketchParams::default());
        for x in [1e-4, 3e-2, 1.0, 40.0, 1e4] {
            s.add(x);
        }
        let b = s.to_bytes();
        assert!(b.len() < 50, "{} bytes", b.len());
        assert_eq!(DdSketch::from_bytes(&b).unwrap(), s);
        let mut dense = DdSketch::new(SketchParams::default());
        for i in 0..1000 {
            dense.add(1.0 + f64::from(i) / 1000.0);
        }
        let b = dense.to_bytes();
        assert!(b.len() < 110, "{} bytes", b.len());
        assert_eq!(DdSketch::from_bytes(&b).unwrap(), dense);
    }

    #[test]
    fn decode_rejects_bad_input() {
        let mut s = DdSketch::new(SketchParams::default());
        for x in [1.0, 2.0, -3.0, 0.0] {
            s.add(x);
        }
        let good = s.to_bytes();
        assert_eq!(DdSketch::from_bytes(&good).unwrap(), s);
        let mut trailing = good.clone();
        trailing.push(0);
        let mut bad_alpha = good.clone();
        bad_alpha[2..10].copy_from_slice(&0.9f64.to_bits().to_le_bytes());
        let mut bad_count = good.clone();
        bad_count[12] = 9;
        let cases: Vec<(Vec<u8>, &str)> = vec![
            (vec![], "byte 0: type tag: unexpected end of input"),
            (vec![0xdd, 2], "byte 1: unsupported version 2"),
            (vec![0x00, 1], "byte 0: expected type tag 0xdd"),
            (good[..good.len() - 1].to_vec(), "unexpected end of input"),
            (trailing, "1 trailing bytes"),
            (bad_alpha, "byte 2: relative accuracy 0.9 is outside"),
            (bad_count, "count 9 but buckets hold 4"),
        ];
        for (bytes, want) in cases {
            let e = DdSketch::from_bytes(&bytes).unwrap_err().to_string();
            assert!(e.contains(want), "{e:?} does not contain {want:?}");
        }
        // Every truncation fails without panicking.
        for n in 0..good.len() {
            assert!(DdSketch::from_bytes(&good[..n]).is_err());
        }
    }
}
