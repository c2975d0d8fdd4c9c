//! Tumbling windows aligned to the Unix epoch, and when a window closes.
//!
//! A window of resolution `r` covers `[k·r, (k+1)·r)` nanoseconds since the
//! epoch, so every worker, every restart and the query engine agree on
//! window boundaries without coordination (a 1 h window starts on the hour,
//! UTC). Negative timestamps floor towards −∞, like Prometheus.
//!
//! Lateness: each tenant has a *high-water mark*, the latest event time the
//! engine has seen for it, and a *watermark* = high-water mark − allowed
//! lateness. A window is closed once its end is at or before the watermark;
//! a sample whose window is closed is late for that resolution. A sample can
//! therefore be late for a 10 s window and on time for the enclosing 1 h one.

use std::time::Duration;

use crate::event::Timestamp;

/// The most resolutions one engine runs.
pub const MAX_RESOLUTIONS: usize = 16;

/// A window width.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Hash, PartialOrd, Ord)]
pub struct Resolution(i64);

impl Resolution {
    /// A resolution of `d`; `None` when zero or longer than 10,000 days.
    pub fn new(d: Duration) -> Option<Self> {
        let n = i64::try_from(d.as_nanos()).ok()?;
        (n > 0 && n <= 10_000 * crate::event::NANOS_PER_DAY).then_some(Resolution(n))
    }

    /// The width in nanoseconds.
    pub const fn as_nanos(self) -> i64 {
        self.0
    }

    /// The width as a [`Duration`].
    pub fn as_duration(self) -> Duration {
        Duration::from_nanos(self.0 as u64)
    }

    /// Start of the window containing `t`.
    #[inline]
    pub fn window_start(self, t: Timestamp) -> Timestamp {
        let n = t.as_nanos();
        Timestamp::from_nanos(n - n.rem_euclid(self.0))
    }

    /// End (exclusive) of the window starting at `start`, saturating.
    #[inline]
    pub fn window_end(self, start: Timestamp) -> Timestamp {
        Timestamp::from_nanos(start.as_nanos().saturating_add(self.0))
    }
}

impl std::fmt::Display for Resolution {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        write!(f, "{}", humantime::format_duration(self.as_duration()))
    }
}

/// A set of resolutions by index (bit `i` = the engine's `i`-th resolution).
#[derive(Debug, Clone, Copy, PartialEq, Eq, Default)]
pub struct ResolutionSet(u16);

impl ResolutionSet {
    /// The empty set.
    pub const EMPTY: ResolutionSet = ResolutionSet(0);

    /// Adds index `i`.
    pub(crate) fn insert(&mut self, i: usize) {
        self.0 |= 1 << i;
    }

    /// True when index `i` is in the set.
    pub fn contains(self, i: usize) -> bool {
        i < MAX_RESOLUTIONS && self.0 & (1 << i) != 0
    }

    /// True when empty.
    pub fn is_empty(self) -> bool {
        self.0 == 0
    }

    /// The indices in the set, ascending.
    pub fn iter(self) -> impl Iterator<Item = usize> {
        // One step per member (lowest set bit first), not one per index.
        let mut bits = self.0;
        std::iter::from_fn(move || {
            if bits == 0 {
                return None;
            }
            let i = bits.trailing_zeros() as usize;
            bits &= bits - 1;
            Some(i)
        })
    }
}

/// The watermark of a high-water mark: `high_water − lateness`, saturating.
#[inline]
pub(crate) fn watermark(high_water: Option<Timestamp>, lateness: i64) -> i64 {
    match high_water {
        Some(t) => t.as_nanos().saturating_sub(lateness),
        None => i64::MIN,
    }
}

/// True when the window of resolution `res` starting at `start` is closed
/// at `watermark`.
#[inline]
pub(crate) fn is_closed(res: Resolution, start: Timestamp, watermark: i64) -> bool {
    res.window_end(start).as_nanos() <= watermark
}

#[cfg(test)]
mod tests {
    use super::*;

    fn res(s: &str) -> Resolution {
        Resolution::new(humantime::parse_duration(s).unwrap()).unwrap()
    }

    fn ts(s: &str) -> Timestamp {
        Timestamp::parse_rfc3339(s).unwrap()
    }

    #[test]
    fn alignment_table() {
        let cases = [
            (
                "10s",
                "2026-11-25T17:30:41.5Z",
                "2026-11-25T17:30:40Z",
                "2026-11-25T17:30:50Z",
            ),
            (
                "10s",
                "2026-11-25T17:30:40Z",
                "2026-11-25T17:30:40Z",
                "2026-11-25T17:30:50Z",
            ),
            (
                "10s",
                "2026-11-25T17:30:49.999999999Z",
                "2026-11-25T17:30:40Z",
                "2026-11-25T17:30:50Z",
            ),
            (
                "1m",
                "2026-11-25T17:30:41Z",
                "2026-11-25T17:30:00Z",
                "2026-11-25T17:31:00Z",
            ),
            (
                "5m",
                "2026-11-25T17:34:59Z",
                "2026-11-25T17:30:00Z",
                "2026-11-25T17:35:00Z",
            ),
            (
                "1h",
                "2026-11-25T17:59:59Z",
                "2026-11-25T17:00:00Z",
                "2026-11-25T18:00:00Z",
            ),
            (
                "1day",
                "2026-11-25T23:59:59Z",
                "2026-11-25T00:00:00Z",
                "2026-11-26T00:00:00Z",
            ),
            (
                "7s",
                "1970-01-01T00:00:13Z",
                "1970-01-01T00:00:07Z",
                "1970-01-01T00:00:14Z",
            ),
            (
                "10s",
                "1969-12-31T23:59:55Z",
                "1969-12-31T23:59:50Z",
                "1970-01-01T00:00:00Z",
            ),
            (
                "1h",
                "1969-12-31T23:00:00Z",
                "1969-12-31T23:00:00Z",
                "1970-01-01T00:00:00Z",
            ),
        ];
        for (r, t, start, end) in cases {
            let r = res(r);
            let s = r.window_start(ts(t));
            assert_eq!(s, ts(start), "{r} {t}");
            assert_eq!(r.window_end(s), ts(end), "{r} {t}");
        }
    }

    #[test]
    fn closing_table() {
        // (resolution, sample time, high water, lateness, closed)
        let cases = [
            ("10s", "00:00:05", None, "0s", false),
            ("10s", "00:00:05", Some("00:00:09"), "0s", false),
            ("10s", "00:00:05", Some("00:00:10"), "0s", true),
            ("10s", "00:00:05", Some("00:00:10"), "1s", false),
            ("10s", "00:00:05", Some("00:00:11"), "1s", true),
            ("1m", "00:00:05", Some("00:00:59"), "0s", false),
            ("1m", "00:00:05", Some("00:01:30"), "30s", true),
            ("1m", "00:00:05", Some("00:01:30"), "31s", false),
        ];
        for (r, t, hw, late, closed) in cases {
            let r = res(r);
            let at = |s: &str| ts(&format!("2026-01-01T{s}Z"));
            let lateness = humantime::parse_duration(late).unwrap().as_nanos() as i64;
            let wm = watermark(hw.map(at), lateness);
            assert_eq!(
                is_closed(r, r.window_start(at(t)), wm),
                closed,
                "{r} {t} {hw:?} {late}"
            );
        }
    }

    #[test]
    fn resolution_bounds_and_sets() {
        assert!(Resolution::new(Duration::ZERO).is_none());
        assert!(Resolution::new(Duration::from_secs(10_001 * 86_400)).is_none());
        assert_eq!(res("90s").to_string(), "1m 30s");
        let mut s = ResolutionSet::EMPTY;
        s.insert(0);
        s.insert(3);
        assert_eq!(s.iter().collect::<Vec<_>>(), [0, 3]);
        assert!(!s.contains(16));
    }
}
