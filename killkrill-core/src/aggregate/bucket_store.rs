//! A dense bucket store with a bounded number of buckets that collapses its
//! lowest buckets, as DDSketch's `CollapsingLowestDenseStore` does.
//!
//! Why this exact collapsing rule: the store never holds buckets below
//! `floor = highest index − max_buckets + 1`; anything lower is counted in
//! the floor bucket. The floor only rises, and folding into a higher floor
//! after folding into a lower one is the same as folding once, so the state
//! after any sequence of inserts and merges is a function of the multiset of
//! inserted indices alone — merging stores is exact, associative and
//! commutative even after collapsing. Collapsing the *lowest* buckets keeps
//! the upper quantiles (the ones latency dashboards look at) accurate.

/// Counts per bucket index in `offset .. offset + counts.len()`.
#[derive(Debug, Clone, PartialEq, Eq, Default)]
pub(crate) struct BucketStore {
    counts: Vec<u64>,
    offset: i32,
}

impl BucketStore {
    /// Lowest and highest index held (`None` when empty).
    pub(crate) fn range(&self) -> Option<(i32, i32)> {
        if self.counts.is_empty() {
            None
        } else {
            Some((self.offset, self.offset + self.counts.len() as i32 - 1))
        }
    }

    /// `(index, count)` of every non-empty bucket, lowest first.
    pub(crate) fn buckets(&self) -> impl DoubleEndedIterator<Item = (i32, u64)> + '_ {
        self.counts
            .iter()
            .enumerate()
            .filter(|(_, c)| **c > 0)
            .map(|(i, c)| (self.offset + i as i32, *c))
    }

    /// Number of bucket slots (including empty ones in the middle).
    pub(crate) fn slots(&self) -> usize {
        self.counts.len()
    }

    /// Adds `n` to bucket `index`, collapsing so that at most `max_buckets`
    /// slots exist.
    #[inline]
    pub(crate) fn add(&mut self, index: i32, n: u64, max_buckets: u32) {
        if let Some((lo, hi)) = self.range()
            && index >= lo
            && index <= hi
        {
            let slot = &mut self.counts[(index - lo) as usize];
            *slot = slot.saturating_add(n);
            return;
        }
        self.add_slow(index, n, max_buckets);
    }

    #[cold]
    fn add_slow(&mut self, index: i32, n: u64, max_buckets: u32) {
        let (lo, hi) = match self.range() {
            None => (index, index),
            Some((lo, hi)) => (lo.min(index), hi.max(index)),
        };
        let floor = hi.saturating_sub(max_buckets as i32 - 1).max(lo);
        self.reshape(floor, hi);
        let at = index.max(floor);
        let slot = &mut self.counts[(at - self.offset) as usize];
        *slot = slot.saturating_add(n);
    }

    /// Makes the store cover exactly `lo..=hi` where `hi` is at least the
    /// current highest index, folding buckets below `lo` into `lo`.
    fn reshape(&mut self, lo: i32, hi: i32) {
        if self.counts.is_empty() {
            self.offset = lo;
            self.counts = vec![0; (hi - lo + 1) as usize];
            return;
        }
        let old_lo = self.offset;
        let old_hi = old_lo + self.counts.len() as i32 - 1;
        debug_assert!(hi >= old_hi);
        // Fold what falls below the new low end.
        let mut folded = 0u64;
        if lo > old_lo {
            let cut = ((lo - old_lo) as usize).min(self.counts.len());
            folded = self.counts[..cut]
                .iter()
                .fold(0u64, |a, c| a.saturating_add(*c));
            self.counts.drain(..cut);
            self.offset = lo.min(old_hi + 1);
        }
        if lo < self.offset {
            let grow = (self.offset - lo) as usize;
            self.counts.splice(0..0, std::iter::repeat_n(0, grow));
            self.offset = lo;
        }
        if self.counts.is_empty() {
            self.offset = lo;
        }
        let want = (hi - lo + 1) as usize;
        if self.counts.len() < want {
            self.counts.resize(want, 0);
        }
        self.counts[0] = self.counts[0].saturating_add(folded);
    }

    /// Adds every bucket of `other`.
    pub(crate) fn merge(&mut self, other: &BucketStore, max_buckets: u32) {
        let Some((olo, ohi)) = other.range() else {
            return;
        };
        // Raise the top first so the final floor applies to every bucket.
        let (lo, hi) = match self.range() {
            None => (olo, ohi),
            Some((lo, hi)) => (lo.min(olo), hi.max(ohi)),
        };
        let floor = hi.saturating_sub(max_buckets as i32 - 1).max(lo);
        self.reshape(floor, hi);
        for (i, c) in other.buckets() {
            let at = i.max(floor);
            let slot = &mut self.counts[(at - self.offset) as usize];
            *slot = slot.saturating_add(c);
        }
    }

    /// Builds a store from decoded buckets (`offset`, dense counts). The
    /// caller has validated ranges.
    pub(crate) fn from_dense(offset: i32, counts: Vec<u64>) -> Self {
        BucketStore { counts, offset }
    }

    /// The dense counts and offset (encoding).
    pub(crate) fn dense(&self) -> (i32, &[u64]) {
        (self.offset, &self.counts)
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use proptest::prelude::*;

    fn store(indices: &[i32], max: u32) -> BucketStore {
        let mut s = BucketStore::default();
        for i in indices {
            s.add(*i, 1, max);
        }
        s
    }

    #[test]
    fn collapses_lowest() {
        /// (indices added, max buckets, resulting buckets)
        type Case<'a> = (&'a [i32], u32, &'a [(i32, u64)]);
        let cases: &[Case] = &[
            (&[5, 5, 7], 4, &[(5, 2), (7, 1)]),
            (&[1, 2, 3, 4, 5], 3, &[(3, 3), (4, 1), (5, 1)]),
            (&[10, 0], 3, &[(8, 1), (10, 1)]),
            (&[0, 10], 3, &[(8, 1), (10, 1)]),
            (&[0, 10, 9], 2, &[(9, 2), (10, 1)]),
            (&[-5, 100, -7], 1, &[(100, 3)]),
            (&[3, 1, 2], 8, &[(1, 1), (2, 1), (3, 1)]),
        ];
        for (idx, max, want) in cases {
            let s = store(idx, *max);
            let got: Vec<_> = s.buckets().collect();
            assert_eq!(&got, want, "{idx:?} max {max}");
            assert!(s.slots() <= *max as usize);
        }
    }

    proptest! {
        /// The state depends only on the multiset of indices: any split,
        /// any merge order gives the store built from all indices at once.
        #[test]
        fn merge_equals_whole(
            idx in proptest::collection::vec(-300i32..300, 0..200),
            max in 1u32..64,
            cut in any::<prop::sample::Index>(),
        ) {
            let cut = cut.index(idx.len() + 1);
            let whole = store(&idx, max);
            let (a, b) = (store(&idx[..cut], max), store(&idx[cut..], max));
            let mut ab = a.clone();
            ab.merge(&b, max);
            let mut ba = b.clone();
            ba.merge(&a, max);
            prop_assert_eq!(&ab, &whole);
            prop_assert_eq!(&ba, &whole);
        }
    }
}
