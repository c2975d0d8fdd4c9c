//! Counter increase with resets, kept in a form that merges exactly.
//!
//! Prometheus computes the raw increase of a counter over samples
//! `v₀ … vₙ` (in time order) as `Σ Δᵢ` where `Δᵢ = vᵢ − vᵢ₋₁`, except that a
//! decrease is a reset and then `Δᵢ = vᵢ` (the new value is the increase since
//! the reset). Equivalently `increase = vₙ − v₀ + Σ (vᵢ₋₁ for every reset)`,
//! which is how this module keeps it: the first and last point plus an exact
//! *correction* (the sum of the values just before each reset).
//!
//! The delta across a partial boundary belongs to neither partial, so a
//! counter state is a sorted list of [`Segment`]s, each a run of in-order
//! samples with its first and last point, its correction and — when the
//! engine knew it — `prev`, the point that came just before the segment's
//! first one in the same window (its boundary delta is then already inside
//! the segment). Merging two states merges their segment lists; a segment
//! whose `prev` is the last point of the segment right before it is fused
//! with it, because nothing can lie between them. A segment without `prev`
//! (the first one after a worker restart) stays separate and its boundary is
//! computed when the increase is read: exact, because the boundary only
//! needs the neighbouring points. The result of merging is the same for any
//! grouping and order of the partials.
//!
//! An exact duplicate of the window's last counter point (same time, same
//! value) adds nothing and is not recorded, so every segment starts strictly
//! after its `prev`: segments of one chain are ordered by time, which is what
//! makes fusing independent of the merge grouping.
//!
//! What stays exact and what does not is tracked, never guessed:
//! `out_of_order` counts samples the engine could not put in sequence (a
//! timestamp before the window's last counter point, or the same timestamp
//! with another value); they still count for count/sum/min/max/quantiles but
//! not for the increase. Overlapping segments (partials of one series whose
//! time ranges interleave) and a `prev` that matches no neighbour (a partial
//! is missing) make [`CounterState::is_exact`] false.

use std::cmp::Ordering;

use super::exact_sum::ExactSum;
use crate::event::Timestamp;

/// A sample point: time and value.
#[derive(Debug, Clone, Copy)]
pub struct Point {
    /// Sample time.
    pub timestamp: Timestamp,
    /// Sample value (finite).
    pub value: f64,
}

impl Point {
    /// A point.
    pub const fn new(timestamp: Timestamp, value: f64) -> Self {
        Point { timestamp, value }
    }

    /// Time, then value in IEEE total order: the order that decides `first`
    /// and `last` independently of arrival order.
    pub fn total_cmp(&self, other: &Point) -> Ordering {
        self.timestamp
            .cmp(&other.timestamp)
            .then(self.value.total_cmp(&other.value))
    }
}

impl PartialEq for Point {
    /// Bitwise equality of the value (so `-0.0 != 0.0`, as in `total_cmp`).
    fn eq(&self, other: &Self) -> bool {
        self.total_cmp(other).is_eq()
    }
}

impl Eq for Point {}

/// A run of in-order samples of one series in one window.
#[derive(Debug, Clone, PartialEq, Eq)]
pub(crate) struct Segment {
    /// The point before `first` in the same window, when the engine knew it;
    /// the boundary delta from it is included in `correction`/`resets`.
    pub(crate) prev: Option<Point>,
    pub(crate) first: Point,
    pub(crate) last: Point,
    /// Exact sum of the values just before each reset.
    pub(crate) correction: ExactSum,
    pub(crate) resets: u64,
}

impl Segment {
    /// A segment starting at `p`, linked to `prev`.
    fn start(prev: Option<Point>, p: Point) -> Self {
        let mut s = Segment {
            prev,
            first: p,
            last: p,
            correction: ExactSum::new(),
            resets: 0,
        };
        if let Some(q) = prev
            && p.value < q.value
        {
            s.correction.add(q.value);
            s.resets = 1;
        }
        s
    }

    /// The canonical order of segments.
    fn order(&self, other: &Segment) -> Ordering {
        self.first
            .total_cmp(&other.first)
            .then_with(|| self.last.total_cmp(&other.last))
            .then_with(|| match (self.prev, other.prev) {
                (None, None) => Ordering::Equal,
                (None, Some(_)) => Ordering::Less,
                (Some(_), None) => Ordering::Greater,
                (Some(a), Some(b)) => a.total_cmp(&b),
            })
            .then_with(|| self.resets.cmp(&other.resets))
            .then_with(|| {
                self.correction
                    .canonical()
                    .cmp(&other.correction.canonical())
            })
    }
}

/// Whether a point can follow `last` in a counter sequence: a later time, or
/// the same time with the same value (a harmless duplicate).
#[inline]
pub(crate) fn in_sequence(last: Point, p: Point) -> bool {
    p.timestamp > last.timestamp || (p.timestamp == last.timestamp && p.value == last.value)
}

/// The counter part of a rollup.
#[derive(Debug, Clone, PartialEq, Eq, Default)]
pub struct CounterState {
    /// Sorted by [`Segment::order`]; adjacent linked segments are fused.
    pub(crate) segments: Vec<Segment>,
    /// Samples left out of the increase because they were out of sequence.
    pub(crate) out_of_order: u64,
}

impl CounterState {
    /// Appends a point. `chain` is the window's last counter point (kept by
    /// the engine across flushes); it is updated when the point is taken.
    #[inline]
    pub(crate) fn push(&mut self, p: Point, chain: &mut Option<Point>) {
        if let Some(last) = *chain {
            if !in_sequence(last, p) {
                self.out_of_order += 1;
                return;
            }
            if p.timestamp == last.timestamp {
                // An exact duplicate: its delta is 0 and the chain point
                // stays. Not recording it keeps every segment starting
                // strictly after its `prev`, which is what makes the order
                // of segments — and so merging — independent of grouping.
                return;
            }
        }
        match self.segments.last_mut() {
            Some(seg) if Some(seg.last) == *chain => {
                if p.value < seg.last.value {
                    seg.correction.add(seg.last.value);
                    seg.resets += 1;
                }
                seg.last = p;
            }
            _ => self.segments.push(Segment::start(*chain, p)),
        }
        *chain = Some(p);
    }

    /// Merges another state (exact; see the module docs).
    pub(crate) fn merge(&mut self, other: &CounterState) {
        self.out_of_order += other.out_of_order;
        if other.segments.is_empty() {
            return;
        }
        // The common case (a later partial of the same chain, or the first):
        // one segment that sorts after every one of ours. The sort and fuse
        // below would append it (the sort is stable) and fuse it with our
        // last segment if it is linked to it; do that without allocating.
        if let [s] = other.segments.as_slice()
            && self
                .segments
                .last()
                .is_none_or(|x| x.order(s) != Ordering::Greater)
        {
            match self.segments.last_mut() {
                Some(x) if s.prev == Some(x.last) => {
                    x.last = s.last;
                    x.correction.merge(&s.correction);
                    x.resets += s.resets;
                }
                _ => self.segments.push(s.clone()),
            }
            return;
        }
        let mut all = std::mem::take(&mut self.segments);
        all.extend(other.segments.iter().cloned());
        all.sort_by(Segment::order);
        let mut out: Vec<Segment> = Vec::with_capacity(all.len());
        for s in all {
            match out.last_mut() {
                Some(x) if s.prev == Some(x.last) => {
                    x.last = s.last;
                    x.correction.merge(&s.correction);
                    x.resets += s.resets;
                }
                _ => out.push(s),
            }
        }
        self.segments = out;
    }

    /// Fuses every segment into one, computing the boundaries between them:
    /// for a window that can receive no more data (sealed by compaction).
    pub(crate) fn seal(&mut self) {
        let (corr, resets) = self.totals();
        if let (Some(first), Some(last)) = (self.segments.first(), self.segments.last()) {
            let s = Segment {
                prev: first.prev,
                first: first.first,
                last: last.last,
                correction: corr,
                resets,
            };
            self.segments = vec![s];
        }
    }

    /// Total correction and resets including the boundaries between segments.
    fn totals(&self) -> (ExactSum, u64) {
        let mut corr = ExactSum::new();
        let mut resets = 0;
        let mut before: Option<Point> = None;
        for s in &self.segments {
            corr.merge(&s.correction);
            resets += s.resets;
            if let Some(x) = before
                && s.prev.is_none()
                && s.first.value < x.value
            {
                corr.add(x.value);
                resets += 1;
            }
            before = Some(s.last);
        }
        (corr, resets)
    }

    /// The increase over the window (resets handled), rounded once from the
    /// exact value; includes the delta from a leading `prev` point. `None`
    /// when no sample was in sequence.
    pub fn increase(&self) -> Option<f64> {
        let first = self.segments.first()?;
        let last = self.segments.last()?;
        let (mut corr, _) = self.totals();
        corr.add(last.last.value);
        corr.add(-first.prev.unwrap_or(first.first).value);
        Some(corr.value())
    }

    /// Number of counter resets seen.
    pub fn resets(&self) -> u64 {
        self.totals().1
    }

    /// First and last point of the counter sequence.
    pub fn bounds(&self) -> Option<(Point, Point)> {
        Some((self.segments.first()?.first, self.segments.last()?.last))
    }

    /// Samples left out of the increase because they were out of sequence.
    pub fn out_of_order(&self) -> u64 {
        self.out_of_order
    }

    /// True when the increase accounts for every sample: none out of
    /// sequence, segments do not overlap in time, and no segment's `prev`
    /// points at data that is missing.
    pub fn is_exact(&self) -> bool {
        self.out_of_order == 0
            && self
                .segments
                .windows(2)
                .all(|w| w[1].prev.is_none() && in_sequence(w[0].last, w[1].first))
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    fn p(t: i64, v: f64) -> Point {
        Point::new(Timestamp::from_secs(t), v)
    }

    fn state(points: &[(i64, f64)]) -> CounterState {
        let mut s = CounterState::default();
        let mut chain = None;
        for (t, v) in points {
            s.push(p(*t, *v), &mut chain);
        }
        s
    }

    #[test]
    fn increase_table() {
        /// (points, increase, resets, exact)
        type Case<'a> = (&'a [(i64, f64)], Option<f64>, u64, bool);
        let cases: &[Case] = &[
            (&[], None, 0, true),
            (&[(1, 5.0)], Some(0.0), 0, true),
            (
                &[(1, 5.0), (2, 8.0), (3, 2.0), (4, 4.0)],
                Some(7.0),
                1,
                true,
            ),
            (
                &[(1, 5.0), (2, 0.0), (3, 0.0), (4, 1.0)],
                Some(1.0),
                1,
                true,
            ),
            (&[(1, 10.0), (2, 3.0), (3, 1.0)], Some(4.0), 2, true),
            (&[(1, 1.0), (1, 1.0), (2, 3.0)], Some(2.0), 0, true),
            // Out of order: (2, 9) comes after (3, 4) and is left out.
            (
                &[(1, 1.0), (3, 4.0), (2, 9.0), (4, 6.0)],
                Some(5.0),
                0,
                false,
            ),
            // Same time, another value: out of sequence.
            (&[(1, 1.0), (1, 2.0)], Some(0.0), 0, false),
        ];
        for (pts, inc, resets, exact) in cases {
            let s = state(pts);
            assert_eq!(s.increase(), *inc, "{pts:?}");
            assert_eq!(s.resets(), *resets, "{pts:?}");
            assert_eq!(s.is_exact(), *exact, "{pts:?}");
        }
    }

    #[test]
    fn duplicates_do_not_make_merging_depend_on_grouping() {
        // One chain split into three partials; the middle one is only a
        // duplicate of the first point (found by the property test).
        let mut chain = None;
        let mut parts = Vec::new();
        for pts in [&[(0, 0.0)][..], &[(0, 0.0)], &[(1, 0.0)]] {
            let mut s = CounterState::default();
            for (t, v) in pts {
                s.push(p(*t, *v), &mut chain);
            }
            parts.push(s);
        }
        let (a, b, c) = (&parts[0], &parts[1], &parts[2]);
        let mut ab_c = a.clone();
        ab_c.merge(b);
        ab_c.merge(c);
        let mut ac_b = a.clone();
        ac_b.merge(c);
        ac_b.merge(b);
        assert_eq!(ab_c, ac_b);
        assert_eq!(ab_c, state(&[(0, 0.0), (0, 0.0), (1, 0.0)]));
        assert_eq!(ab_c.segments.len(), 1);
    }

    #[test]
    fn restart_boundary_is_computed_on_read() {
        // Before the restart: (1,5) (2,8); after, without prev: (3,2) (4,4).
        let mut a = state(&[(1, 5.0), (2, 8.0)]);
        let b = state(&[(3, 2.0), (4, 4.0)]);
        a.merge(&b);
        assert_eq!(a.segments.len(), 2);
        assert_eq!(a.increase(), Some(7.0));
        assert_eq!(a.resets(), 1);
        assert!(a.is_exact());
        a.seal();
        assert_eq!(a, state(&[(1, 5.0), (2, 8.0), (3, 2.0), (4, 4.0)]));
    }
}
