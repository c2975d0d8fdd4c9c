//! The run fast path: the rest of a run of one series' samples that fall in
//! the windows its previous sample just went into.
//!
//! Why: a remote_write request carries a series' samples together (a
//! vmagent block, a Prometheus queue catching up, the load generator), and
//! with the default four resolutions each sample was pushed into four
//! windows, each found by a search. Once a sample of the run has gone
//! through the full path (limits checked, windows found or opened), the
//! next samples with the same window starts and no late resolution are
//! pushed into one [`Rollup`] here, which is merged into each of the
//! windows when the run ends (another series, another window, a late
//! sample, the end of the batch). Such a sample is recognised without
//! computing its windows: it lies in the intersection of the run's
//! windows (one per resolution), and the earliest end among them is after
//! the watermark (no window closed).
//!
//! Why it is exact: the run's rollup starts from the windows' common
//! counter chain (it is only used when every window's chain is the same
//! point), so its counter segment links to each window's last point as the
//! same pushes would have, and [`Rollup::merge`] is exact for every other
//! field (see [`super::rollup`]). Nothing else of the engine changes during
//! such a sample: the windows exist, the series is admitted, the expiry is
//! the same. The `runs_equal_samples_one_by_one` test compares the flushes
//! of both paths.

use super::counter::Point;
use super::rollup::Rollup;
use super::sketch::{BucketKey, SketchParams};
use super::window::{MAX_RESOLUTIONS, Resolution, ResolutionSet};
use crate::event::Timestamp;

/// The samples of a run held back from its windows.
#[derive(Debug)]
pub(super) struct PendingRun {
    /// The series' slot in the engine's table.
    pub(super) slot: u32,
    /// The window start of every resolution.
    pub(super) starts: [Timestamp; MAX_RESOLUTIONS],
    /// The windows the run goes into (every resolution).
    pub(super) on_time: ResolutionSet,
    /// The intersection of the windows, `[lo, hi)` in nanoseconds.
    lo: i64,
    hi: i64,
    /// The windows' common counter chain, advanced by the run's points.
    chain: Option<Point>,
    /// The run's points since its windows were last touched.
    rollup: Option<Rollup>,
}

impl PendingRun {
    /// A run in the windows starting at `starts` (one per resolution of
    /// `resolutions`), all with counter chain `chain`; `None` unless every
    /// resolution is in `on_time` (a sample late for one takes the full
    /// path).
    pub(super) fn new(
        slot: u32,
        resolutions: &[Resolution],
        starts: &[Timestamp],
        on_time: ResolutionSet,
        chain: Option<Point>,
    ) -> Option<Self> {
        if starts.len() != resolutions.len() || on_time.iter().count() != resolutions.len() {
            return None;
        }
        let mut all = [Timestamp::EPOCH; MAX_RESOLUTIONS];
        all[..starts.len()].copy_from_slice(starts);
        let lo = starts.iter().map(|t| t.as_nanos()).max()?;
        let hi = resolutions
            .iter()
            .zip(starts)
            .map(|(r, s)| r.window_end(*s).as_nanos())
            .min()?;
        Some(PendingRun {
            slot,
            starts: all,
            on_time,
            lo,
            hi,
            chain,
            rollup: None,
        })
    }

    /// True when a sample of series `slot` at `ts` continues the run: it
    /// falls in every one of the run's windows, and none of them is closed
    /// at `watermark` (the tenant's, before this sample).
    #[inline]
    pub(super) fn holds(&self, slot: u32, ts: Timestamp, watermark: i64) -> bool {
        let t = ts.as_nanos();
        self.slot == slot && self.lo <= t && t < self.hi && self.hi > watermark
    }

    /// Adds a finite point.
    #[inline]
    pub(super) fn push(&mut self, p: Point, key: Option<BucketKey>, sketch: Option<SketchParams>) {
        match self.rollup.as_mut() {
            Some(r) => r.push(p, key, &mut self.chain),
            None => self.rollup = Some(Rollup::start(p, key, sketch, &mut self.chain)),
        }
    }

    /// The run's rollup and the chain its windows continue from; `None`
    /// when no sample took the fast path.
    pub(super) fn into_parts(self) -> Option<(Rollup, Option<Point>)> {
        self.rollup.map(|r| (r, self.chain))
    }
}
