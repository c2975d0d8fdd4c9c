//! A rollup: everything Killkrill keeps about one series in one window.
//!
//! count, sum, min, max, first, last, the counter increase with resets, and
//! optionally a quantile sketch. Every field merges exactly, so a rollup
//! merged from partials (per flush, per batch, before and after a restart,
//! in any grouping) equals the rollup of all the samples at once:
//!
//! - count adds; sum is an [`ExactSum`](super::exact_sum) rounded once on
//!   read; min and max use IEEE total order;
//! - first and last are the smallest and largest point by time and then
//!   value (IEEE total order), so a tie on the timestamp is decided by the
//!   value, never by arrival order;
//! - the counter state is described in [`super::counter`];
//! - the sketch adds bucket counts (same parameters required).

use super::counter::{CounterState, Point};
use super::exact_sum::ExactSum;
use super::sketch::{BucketKey, DdSketch, SketchMismatch, SketchParams};

/// Two rollups cannot be merged.
#[derive(Debug, Clone, PartialEq, thiserror::Error)]
pub enum MergeError {
    /// One has a quantile sketch and the other does not.
    #[error("one rollup has a quantile sketch and the other does not")]
    SketchPresence,
    /// The sketches use different parameters.
    #[error(transparent)]
    Sketch(#[from] SketchMismatch),
}

/// The aggregate of one series in one window (or a partial of it).
#[derive(Debug, Clone, PartialEq)]
pub struct Rollup {
    pub(crate) count: u64,
    pub(crate) sum: ExactSum,
    pub(crate) min: f64,
    pub(crate) max: f64,
    pub(crate) first: Point,
    pub(crate) last: Point,
    pub(crate) counter: CounterState,
    pub(crate) sketch: Option<DdSketch>,
}

impl Rollup {
    /// A rollup of one point. `chain` is the window's last counter point.
    #[inline]
    pub(crate) fn start(
        p: Point,
        key: Option<BucketKey>,
        params: Option<SketchParams>,
        chain: &mut Option<Point>,
    ) -> Self {
        let mut r = Rollup {
            count: 0,
            sum: ExactSum::new(),
            min: p.value,
            max: p.value,
            first: p,
            last: p,
            counter: CounterState::default(),
            sketch: params.map(DdSketch::new),
        };
        r.push(p, key, chain);
        r
    }

    /// Adds a finite point; `key` is its sketch bucket (computed once per
    /// sample for every resolution).
    #[inline]
    pub(crate) fn push(&mut self, p: Point, key: Option<BucketKey>, chain: &mut Option<Point>) {
        self.count += 1;
        self.sum.add(p.value);
        if p.value.total_cmp(&self.min).is_lt() {
            self.min = p.value;
        }
        if p.value.total_cmp(&self.max).is_gt() {
            self.max = p.value;
        }
        if p.total_cmp(&self.first).is_lt() {
            self.first = p;
        }
        if p.total_cmp(&self.last).is_gt() {
            self.last = p;
        }
        self.counter.push(p, chain);
        if let (Some(s), Some(k)) = (self.sketch.as_mut(), key) {
            s.add_keyed(p.value, k);
        }
    }

    /// The rollup of `points` taken in the given order (the order matters
    /// only for the counter increase); non-finite values are skipped.
    /// `None` when no point is finite.
    pub fn from_points(
        points: impl IntoIterator<Item = Point>,
        sketch: Option<SketchParams>,
    ) -> Option<Rollup> {
        let mut chain = None;
        let mut out: Option<Rollup> = None;
        for p in points.into_iter().filter(|p| p.value.is_finite()) {
            let key = sketch.map(|s| s.key(p.value));
            match out.as_mut() {
                Some(r) => r.push(p, key, &mut chain),
                None => out = Some(Rollup::start(p, key, sketch, &mut chain)),
            }
        }
        out
    }

    /// Merges another rollup of the same series and window into this one.
    ///
    /// # Errors
    /// [`MergeError`] when exactly one of them has a sketch or the sketch
    /// parameters differ; `self` is unchanged then.
    pub fn merge(&mut self, other: &Rollup) -> Result<(), MergeError> {
        match (self.sketch.as_mut(), other.sketch.as_ref()) {
            (Some(a), Some(b)) => a.merge(b)?,
            (None, None) => {}
            _ => return Err(MergeError::SketchPresence),
        }
        self.count += other.count;
        self.sum.merge(&other.sum);
        if other.min.total_cmp(&self.min).is_lt() {
            self.min = other.min;
        }
        if other.max.total_cmp(&self.max).is_gt() {
            self.max = other.max;
        }
        if other.first.total_cmp(&self.first).is_lt() {
            self.first = other.first;
        }
        if other.last.total_cmp(&self.last).is_gt() {
            self.last = other.last;
        }
        self.counter.merge(&other.counter);
        Ok(())
    }

    /// Declares the window complete: counter segments separated by a
    /// restart are fused (their boundaries computed), giving the same value
    /// as a rollup built from all samples at once. Call it only when no more
    /// partials can arrive for the window (compaction after the lateness).
    pub fn seal(&mut self) {
        self.counter.seal();
    }

    /// Number of samples.
    pub fn count(&self) -> u64 {
        self.count
    }

    /// Sum of the values, exact and rounded once.
    pub fn sum(&self) -> f64 {
        self.sum.value()
    }

    /// Mean of the values.
    pub fn mean(&self) -> f64 {
        self.sum() / self.count as f64
    }

    /// Smallest value.
    pub fn min(&self) -> f64 {
        self.min
    }

    /// Largest value.
    pub fn max(&self) -> f64 {
        self.max
    }

    /// The earliest sample (smallest value on a timestamp tie).
    pub fn first(&self) -> Point {
        self.first
    }

    /// The latest sample (largest value on a timestamp tie).
    pub fn last(&self) -> Point {
        self.last
    }

    /// The counter state (increase, resets, exactness).
    pub fn counter(&self) -> &CounterState {
        &self.counter
    }

    /// Shorthand for `counter().increase()`.
    pub fn increase(&self) -> Option<f64> {
        self.counter.increase()
    }

    /// The quantile sketch, when enabled.
    pub fn sketch(&self) -> Option<&DdSketch> {
        self.sketch.as_ref()
    }

    /// Shorthand for `sketch()?.quantile(q)`.
    pub fn quantile(&self, q: f64) -> Option<f64> {
        self.sketch.as_ref()?.quantile(q)
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::event::Timestamp;

    fn pts(v: &[(i64, f64)]) -> Vec<Point> {
        v.iter()
            .map(|(t, x)| Point::new(Timestamp::from_secs(*t), *x))
            .collect()
    }

    #[test]
    fn fields_and_ties() {
        let r = Rollup::from_points(
            pts(&[(2, 5.0), (1, 3.0), (3, 7.0), (3, 6.0), (1, 4.0)]),
            Some(SketchParams::default()),
        )
        .unwrap();
        assert_eq!(r.count(), 5);
        assert_eq!(r.sum(), 25.0);
        assert_eq!((r.min(), r.max()), (3.0, 7.0));
        assert_eq!(r.first(), Point::new(Timestamp::from_secs(1), 3.0));
        assert_eq!(r.last(), Point::new(Timestamp::from_secs(3), 7.0));
        assert_eq!(r.sketch().unwrap().count(), 5);
        assert!(Rollup::from_points(pts(&[(1, f64::NAN)]), None).is_none());
    }

    #[test]
    fn merge_refuses_mismatched_sketches() {
        let a = Rollup::from_points(pts(&[(1, 1.0)]), None).unwrap();
        let b = Rollup::from_points(pts(&[(2, 1.0)]), Some(SketchParams::default())).unwrap();
        let c = Rollup::from_points(
            pts(&[(2, 1.0)]),
            Some(SketchParams::new(0.02, 2048).unwrap()),
        )
        .unwrap();
        assert_eq!(a.clone().merge(&b), Err(MergeError::SketchPresence));
        assert!(matches!(b.clone().merge(&c), Err(MergeError::Sketch(_))));
        let mut a2 = a.clone();
        a2.merge(&a).unwrap();
        assert_eq!(a2.count(), 2);
    }
}
