//! Log volume: record counts per time bucket, split by severity — the
//! histogram log UIs draw above the results.
//!
//! A block is counted from its summary alone, without fetching its payload,
//! when all of these hold:
//! - the filter has no full-text and no field conditions,
//! - every host/app/source condition is satisfied by *every* record of the
//!   block (its exact value set is that one value and no record lacks it),
//! - the block's whole span `[min_ts, max_ts]` lies inside the query range
//!   and inside one bucket.
//!
//! The severity condition never forces a decode: the per-severity counts
//! are exact. Every other candidate block (after pruning) is decoded and its
//! records counted one by one. Blocks from a steady stream span seconds to a
//! minute, so with a step of a minute or more most blocks are counted from
//! summaries; a block that straddles a bucket edge is decoded.

use super::filter::CompiledFilter;
use super::scan::SummaryScan;
use super::{LogFilter, QueryError};
use crate::event::{Tenant, Timestamp};
use crate::logblock::{BlockSummary, DecodedBlock};
use crate::storage::{LogStore, ScanOrder, TimeRange};

/// Most buckets one volume query may ask for.
pub const MAX_BUCKETS: usize = 11_000;

/// A volume query.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct VolumeQuery {
    /// Whose records.
    pub tenant: Tenant,
    /// Which instants; buckets start at `range.start`.
    pub range: TimeRange,
    /// Which records.
    pub filter: LogFilter,
    /// Bucket width in nanoseconds.
    pub step_nanos: i64,
}

/// Counts of one bucket.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Default)]
pub struct VolumeBucket {
    /// Bucket start (inclusive); the bucket ends at start + step.
    pub start: Timestamp,
    /// Matching records.
    pub total: u64,
    /// Per severity code 0..=7, then records without severity.
    pub by_severity: [u64; 9],
}

/// The histogram and how it was computed.
#[derive(Debug, Clone, PartialEq, Eq, Default)]
pub struct VolumeResult {
    /// One entry per bucket, in time order (empty buckets included).
    pub buckets: Vec<VolumeBucket>,
    /// Blocks counted from their summary.
    pub blocks_from_summary: usize,
    /// Blocks fetched and decoded.
    pub blocks_decoded: usize,
}

/// Computes the volume histogram.
///
/// # Errors
/// [`QueryError::Invalid`] for a step ≤ 0, an unbounded range or more than
/// [`MAX_BUCKETS`] buckets; store and decode errors.
pub async fn query_volume(
    store: &dyn LogStore,
    q: &VolumeQuery,
) -> Result<VolumeResult, QueryError> {
    for _ in 0..super::engine::MAX_RESTARTS {
        if let Some(v) = volume_once(store, q).await? {
            return Ok(v);
        }
    }
    Err(QueryError::Store(crate::storage::StoreError::new(
        crate::storage::ErrorKind::Conflict,
        "blocks kept changing under the volume query (compaction or retention); retry",
    )))
}

/// One attempt; `None` when a listed block vanished before it was read.
async fn volume_once(
    store: &dyn LogStore,
    q: &VolumeQuery,
) -> Result<Option<VolumeResult>, QueryError> {
    if q.step_nanos <= 0 {
        return Err(QueryError::Invalid("step must be positive".into()));
    }
    if q.range.start == Timestamp::MIN || q.range.end == Timestamp::MAX {
        return Err(QueryError::Invalid(
            "a volume query needs a bounded range".into(),
        ));
    }
    let width = i128::from(q.range.end.as_nanos()) - i128::from(q.range.start.as_nanos());
    let n = if width <= 0 {
        0
    } else {
        ((width + i128::from(q.step_nanos) - 1) / i128::from(q.step_nanos)) as u128
    };
    if n > MAX_BUCKETS as u128 {
        return Err(QueryError::Invalid(format!(
            "{n} buckets requested, at most {MAX_BUCKETS}: use a larger step or a shorter range"
        )));
    }
    let filter = CompiledFilter::new(&q.filter).ok_or_else(|| {
        QueryError::Invalid("full-text query has too many distinct tokens".into())
    })?;
    let start = q.range.start.as_nanos();
    let step = q.step_nanos;
    let mut buckets: Vec<VolumeBucket> = (0..n as i64)
        .map(|i| VolumeBucket {
            start: Timestamp::from_nanos(start + i * step),
            ..VolumeBucket::default()
        })
        .collect();
    let bucket_of = |t: Timestamp| Bucketer::new(start, step).index(t.as_nanos());
    let mut out = VolumeResult::default();
    let mut scan = SummaryScan::new(
        store,
        &q.tenant,
        q.range,
        ScanOrder::OldestFirst,
        Some(&filter),
    );
    let mut to_decode: Vec<std::sync::Arc<BlockSummary>> = Vec::new();
    while let Some(s) = scan.next().await? {
        let from_summary = filter.summary_answerable()
            && filter.all_match_values(&s)
            && q.range.covers(s.min_ts, s.max_ts)
            && bucket_of(s.min_ts) == bucket_of(s.max_ts);
        if from_summary {
            let b = &mut buckets[bucket_of(s.min_ts)];
            let max_code = filter.min_severity_code().map_or(8, usize::from);
            for (code, &c) in s.severity_counts.iter().enumerate() {
                if code <= max_code && (code < 8 || filter.min_severity_code().is_none()) {
                    b.by_severity[code] += u64::from(c);
                    b.total += u64::from(c);
                }
            }
            out.blocks_from_summary += 1;
        } else {
            to_decode.push(s);
            if to_decode.len() >= 16
                && !decode_into(store, q, &filter, &mut to_decode, &mut buckets, &mut out).await?
            {
                return Ok(None);
            }
        }
    }
    if !decode_into(store, q, &filter, &mut to_decode, &mut buckets, &mut out).await? {
        return Ok(None);
    }
    out.buckets = buckets;
    Ok(Some(out))
}

async fn decode_into(
    store: &dyn LogStore,
    q: &VolumeQuery,
    filter: &CompiledFilter,
    batch: &mut Vec<std::sync::Arc<BlockSummary>>,
    buckets: &mut [VolumeBucket],
    out: &mut VolumeResult,
) -> Result<bool, QueryError> {
    if batch.is_empty() {
        return Ok(true);
    }
    let ids: Vec<_> = batch.iter().map(|s| s.id).collect();
    batch.clear();
    let mut bucket = Bucketer::new(q.range.start.as_nanos(), q.step_nanos);
    if filter.needs_only_severity() {
        // Only time and severity matter: the store's (cacheable) two
        // columns, not the whole block.
        let times = store.block_times(&q.tenant, &ids).await?;
        if times.len() != ids.len() {
            return Ok(false);
        }
        let max = filter.min_severity_code();
        for (id, t) in times {
            let t = t.map_err(|source| QueryError::Corrupt {
                tenant: q.tenant.to_string(),
                block: id,
                source,
            })?;
            out.blocks_decoded += 1;
            let (ts, sev) = &*t;
            count_times(ts, sev, q.range, max, &mut bucket, buckets);
        }
        return Ok(true);
    }
    let payloads = store.block_payloads(&q.tenant, &ids).await?;
    if payloads.len() != ids.len() {
        return Ok(false);
    }
    for (id, payload) in payloads {
        let corrupt = |source| QueryError::Corrupt {
            tenant: q.tenant.to_string(),
            block: id,
            source,
        };
        out.blocks_decoded += 1;
        let block = DecodedBlock::decode(&q.tenant, &payload).map_err(corrupt)?;
        let Some(bf) = filter.for_block(&block) else {
            continue;
        };
        for i in 0..block.len() {
            let t = block.timestamp(i);
            if q.range.contains(t) && bf.matches(&block, i).map_err(corrupt)? {
                let b = &mut buckets[bucket.index(t.as_nanos())];
                b.by_severity[usize::from(block.severity_code(i))] += 1;
                b.total += 1;
            }
        }
    }
    Ok(true)
}

/// Adds the records `(ts[i], sev[i])` inside `range` and at most `max`
/// (severity codes, 8 = none; `None`: all) to their buckets.
///
/// A block's records are in time order: each bucket's run is found by
/// binary search and counted in one pass over its severity bytes, four
/// running tables so that equal neighbours do not wait on each other's
/// increment. A block whose times are out of order (none this store
/// writes) is counted one record at a time.
fn count_times(
    ts: &[i64],
    sev: &[u8],
    range: TimeRange,
    max: Option<u8>,
    bucket: &mut Bucketer,
    buckets: &mut [VolumeBucket],
) {
    let wanted = |code: usize| max.is_none_or(|m| code <= usize::from(m));
    let n = ts.len().min(sev.len());
    let (ts, sev) = (&ts[..n], &sev[..n]);
    if !ts.is_sorted() {
        for (&t, &s) in ts.iter().zip(sev) {
            if range.contains(Timestamp::from_nanos(t)) && wanted(usize::from(s)) {
                let b = &mut buckets[bucket.index(t)];
                b.by_severity[usize::from(s)] += 1;
                b.total += 1;
            }
        }
        return;
    }
    let mut i = ts.partition_point(|&t| t < range.start.as_nanos());
    let end = ts.partition_point(|&t| t < range.end.as_nanos());
    while i < end {
        let at = bucket.index(ts[i]);
        let hi = bucket.hi;
        let j = i + ts[i..end].partition_point(|&t| t < hi);
        let mut tables = [[0u32; 9]; 4];
        let run = &sev[i..j];
        let mut quads = run.chunks_exact(4);
        for q in &mut quads {
            tables[0][usize::from(q[0])] += 1;
            tables[1][usize::from(q[1])] += 1;
            tables[2][usize::from(q[2])] += 1;
            tables[3][usize::from(q[3])] += 1;
        }
        for &s in quads.remainder() {
            tables[0][usize::from(s)] += 1;
        }
        let b = &mut buckets[at];
        for code in (0..9).filter(|&c| wanted(c)) {
            let c: u64 = tables.iter().map(|t| u64::from(t[code])).sum();
            b.by_severity[code] += c;
            b.total += c;
        }
        i = j;
    }
}

/// The bucket of a timestamp inside the query range, remembering the last
/// bucket's bounds: a block's records are in time order, so most records
/// fall in the bucket of the one before and cost two compares, not a
/// 128-bit division (which was most of a volume query's time).
struct Bucketer {
    start: i64,
    step: i64,
    /// The last bucket: its index and `[lo, hi)`.
    at: usize,
    lo: i64,
    hi: i64,
}

impl Bucketer {
    fn new(start: i64, step: i64) -> Self {
        Bucketer {
            start,
            step,
            at: 0,
            lo: 1,
            hi: 0,
        }
    }

    /// The bucket index of `t`, which must be at or after `start` (a
    /// timestamp inside the query range).
    #[inline]
    fn index(&mut self, t: i64) -> usize {
        if self.lo <= t && t < self.hi {
            return self.at;
        }
        let start = i128::from(self.start);
        let step = i128::from(self.step);
        let k = (i128::from(t) - start) / step;
        let clamp = |v: i128| v.clamp(i128::from(i64::MIN), i128::from(i64::MAX)) as i64;
        self.at = k as usize;
        self.lo = clamp(start + k * step);
        self.hi = clamp(start + (k + 1) * step);
        self.at
    }
}

#[cfg(test)]
mod bucketer_tests {
    use super::Bucketer;

    /// The remembered bucket gives what the division gives, for times in
    /// order, out of order, on every edge, and near the ends of `i64`.
    #[test]
    fn same_as_dividing() {
        for (start, step) in [
            (0i64, 10i64),
            (-35, 7),
            (1_700_000_000_000_000_000, 900_000_000_000),
            (i64::MIN + 1, i64::MAX / 3),
            (i64::MAX - 100, 30),
        ] {
            let mut b = Bucketer::new(start, step);
            let div = |t: i64| ((i128::from(t) - i128::from(start)) / i128::from(step)) as usize;
            let mut times: Vec<i64> = (0..200i64)
                .flat_map(|k| {
                    let edge = i128::from(start) + i128::from(k) * i128::from(step);
                    [edge - 1, edge, edge + 1, edge + i128::from(step) / 2]
                })
                .filter(|&t| t >= i128::from(start) && t <= i128::from(i64::MAX))
                .map(|t| t as i64)
                .collect();
            for t in &times {
                assert_eq!(
                    b.index(*t),
                    div(*t),
                    "in order: start {start} step {step} t {t}"
                );
            }
            times.reverse();
            let third = times.len() / 3;
            times.rotate_left(third);
            for t in &times {
                assert_eq!(
                    b.index(*t),
                    div(*t),
                    "out of order: start {start} step {step} t {t}"
                );
            }
        }
    }

    /// Counting runs gives what counting records one by one gives: sorted
    /// and unsorted times, ranges cutting blocks, every severity bound.
    #[test]
    fn runs_count_as_records_do() {
        use super::{VolumeBucket, count_times};
        use crate::event::Timestamp;
        use crate::storage::TimeRange;
        let mut seed = 0x2545_f491_4f6c_dd1du64;
        let mut next = move || {
            seed ^= seed << 13;
            seed ^= seed >> 7;
            seed ^= seed << 17;
            seed
        };
        for round in 0..200 {
            let n = (next() % 3000) as usize;
            let mut ts: Vec<i64> = (0..n).map(|_| (next() % 10_000) as i64 - 2_000).collect();
            if round % 5 != 0 {
                ts.sort_unstable();
            }
            let sev: Vec<u8> = (0..n).map(|_| (next() % 9) as u8).collect();
            let start = (next() % 4_000) as i64 - 3_000;
            let range = TimeRange {
                start: Timestamp::from_nanos(start),
                end: Timestamp::from_nanos(start + 1 + (next() % 9_000) as i64),
            };
            let step = 1 + (next() % 700) as i64;
            let max = match next() % 3 {
                0 => None,
                _ => Some((next() % 8) as u8),
            };
            let nb = ((range.end.as_nanos() - start + step - 1) / step) as usize;
            let mut want = vec![VolumeBucket::default(); nb];
            for (&t, &s) in ts.iter().zip(&sev) {
                if range.contains(Timestamp::from_nanos(t)) && max.is_none_or(|m| s <= m) {
                    let b = &mut want[((t - start) / step) as usize];
                    b.by_severity[usize::from(s)] += 1;
                    b.total += 1;
                }
            }
            let mut got = vec![VolumeBucket::default(); nb];
            count_times(
                &ts,
                &sev,
                range,
                max,
                &mut Bucketer::new(start, step),
                &mut got,
            );
            assert_eq!(
                got, want,
                "round {round}: range {range:?} step {step} max {max:?}"
            );
        }
    }
}
