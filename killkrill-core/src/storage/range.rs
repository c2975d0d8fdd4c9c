//! Half-open time ranges, the one shape every query and retention uses.

use crate::event::Timestamp;

/// `[start, end)`: `start` inclusive, `end` exclusive.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Hash)]
pub struct TimeRange {
    /// First instant included.
    pub start: Timestamp,
    /// First instant no longer included.
    pub end: Timestamp,
}

impl TimeRange {
    /// Everything representable.
    pub const ALL: TimeRange = TimeRange {
        start: Timestamp::MIN,
        end: Timestamp::MAX,
    };

    /// `[start, end)`.
    pub const fn new(start: Timestamp, end: Timestamp) -> Self {
        TimeRange { start, end }
    }

    /// Whether `t` lies inside.
    pub fn contains(&self, t: Timestamp) -> bool {
        self.start <= t && t < self.end
    }

    /// Whether a closed interval `[min, max]` (a block's span) overlaps.
    pub fn overlaps(&self, min: Timestamp, max: Timestamp) -> bool {
        min < self.end && max >= self.start
    }

    /// Whether the closed interval `[min, max]` lies entirely inside.
    pub fn covers(&self, min: Timestamp, max: Timestamp) -> bool {
        self.start <= min && max < self.end
    }

    /// True when nothing can be inside.
    pub fn is_empty(&self) -> bool {
        self.start >= self.end
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn half_open() {
        let r = TimeRange::new(Timestamp::from_nanos(10), Timestamp::from_nanos(20));
        let t = Timestamp::from_nanos;
        assert!(r.contains(t(10)) && r.contains(t(19)) && !r.contains(t(20)));
        assert!(r.overlaps(t(0), t(10)) && !r.overlaps(t(0), t(9)) && !r.overlaps(t(20), t(30)));
        assert!(r.covers(t(10), t(19)) && !r.covers(t(10), t(20)));
        assert!(TimeRange::new(t(5), t(5)).is_empty());
    }
}
