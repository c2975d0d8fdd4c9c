//! What a tail has already sent, in bounded memory.
//!
//! Progress does not depend on this set: new records are read by cursor,
//! strictly after the last key `(timestamp, id)` sent ([`LateWindow::last`]),
//! so any number of records is delivered page by page, each once, in key
//! order. The set exists only for **late** records: a record committed
//! after records with a later key (a sender with a skewed clock, a slower
//! receiver) lands behind the cursor, and is found by re-reading the grace
//! window `[now − query.tail_grace_secs, last]` and sending what the set
//! does not hold.
//!
//! The set is capped at `query.tail_late_window_records` keys. When more
//! keys than that are inside the grace window, the oldest are forgotten and
//! the re-read starts after the newest forgotten key ([`LateWindow::forgotten`]):
//! a late record at or before it cannot be told apart from one already sent,
//! so it is not tailed. That is the only way a tail misses a record (besides
//! arriving after the grace window), and it is never silent: the poller
//! tells the client whenever the newest forgotten key has moved past the one
//! it last told ([`LateWindow::take_gap`], rate-limited by the poller), and
//! counts each telling.
//!
//! Records a lagging tail sends from before the grace window are not
//! remembered ([`LateWindow::advance`]): the late re-read never goes there,
//! and remembering them would push keys of the window out for nothing.

use std::collections::BTreeSet;

use killkrill_core::event::{EventId, Timestamp};
use killkrill_core::logquery::Cursor;

/// The keys sent (or present at connect) inside the grace window.
#[derive(Debug)]
pub struct LateWindow {
    max: usize,
    seen: BTreeSet<Cursor>,
    last: Option<Cursor>,
    forgotten: Option<Cursor>,
    told: Option<Cursor>,
}

impl LateWindow {
    /// Remembers at most `max` keys (at least one).
    pub fn new(max: usize) -> Self {
        LateWindow {
            max: max.max(1),
            seen: BTreeSet::new(),
            last: None,
            forgotten: None,
            told: None,
        }
    }

    /// The greatest key sent or seen: new records are read strictly after it.
    pub fn last(&self) -> Option<Cursor> {
        self.last
    }

    /// Keys at or before this are forgotten: the late re-read starts after it.
    pub fn forgotten(&self) -> Option<Cursor> {
        self.forgotten
    }

    /// Keys remembered now.
    pub fn remembered(&self) -> usize {
        self.seen.len()
    }

    /// Forgets keys older than the grace window; a gap that fell out of the
    /// window is over (the next one is told again).
    pub fn prune(&mut self, floor: Timestamp) {
        self.seen = self.seen.split_off(&Cursor {
            timestamp: floor,
            id: EventId::from_u128(0),
        });
        if self.forgotten.is_some_and(|f| f.timestamp < floor) {
            self.forgotten = None;
        }
        if self.told.is_some_and(|t| t.timestamp < floor) {
            self.told = None;
        }
    }

    /// Whether the record with key `k` is to be sent: after `last`, or
    /// behind it, not remembered, and after the forgotten keys.
    pub fn is_new(&self, k: Cursor) -> bool {
        match self.last {
            None => return true,
            Some(l) if k > l => return true,
            // The last key was sent, remembered or not (see `advance`).
            Some(l) if k == l => return false,
            Some(_) => {}
        }
        if self.forgotten.is_some_and(|f| k <= f) {
            return false;
        }
        !self.seen.contains(&k)
    }

    /// Moves `last` to `k` without remembering it: for records sent from
    /// before the grace window (a tail catching up), which the late re-read
    /// never reads again.
    pub fn advance(&mut self, k: Cursor) {
        if self.last.is_none_or(|l| k > l) {
            self.last = Some(k);
        }
    }

    /// Remembers `k` as sent (or seen); returns how many keys were
    /// forgotten to stay within the cap.
    pub fn mark(&mut self, k: Cursor) -> usize {
        self.seen.insert(k);
        if self.last.is_none_or(|l| k > l) {
            self.last = Some(k);
        }
        let mut n = 0;
        while self.seen.len() > self.max {
            let Some(e) = self.seen.pop_first() else {
                break;
            };
            if self.forgotten.is_none_or(|f| e > f) {
                self.forgotten = Some(e);
            }
            n += 1;
        }
        n
    }

    /// The newest forgotten key when it is past the one told last (or none
    /// was told): late records at or before it are not tailed. Each key is
    /// returned once; the caller decides how often to ask.
    pub fn take_gap(&mut self) -> Option<Cursor> {
        let f = self.forgotten?;
        if self.told.is_some_and(|t| f <= t) {
            return None;
        }
        self.told = Some(f);
        Some(f)
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    fn k(ts: i64, id: u128) -> Cursor {
        Cursor {
            timestamp: Timestamp::from_nanos(ts),
            id: EventId::from_u128(id),
        }
    }

    #[test]
    fn new_keys_are_after_last_or_unseen_behind_it() {
        let mut w = LateWindow::new(10);
        assert!(w.is_new(k(5, 1)));
        for key in [k(5, 1), k(7, 1), k(9, 1)] {
            assert_eq!(w.mark(key), 0);
        }
        assert_eq!(w.last(), Some(k(9, 1)));
        // (key, new?)
        for (key, want) in [
            (k(9, 2), true),  // after last, same time, greater id
            (k(10, 0), true), // after last
            (k(9, 1), false), // last itself
            (k(7, 1), false), // sent
            (k(6, 0), true),  // late, not sent
            (k(5, 0), true),  // late, before the first sent
            (k(1, 1), true),  // late, older than anything sent
        ] {
            assert_eq!(w.is_new(key), want, "{key:?}");
        }
        // A late record marked does not move last.
        w.mark(k(6, 0));
        assert_eq!(w.last(), Some(k(9, 1)));
        assert!(!w.is_new(k(6, 0)));
    }

    #[test]
    fn the_cap_forgets_the_oldest_and_tells_once() {
        let mut w = LateWindow::new(3);
        let forgot: Vec<usize> = (1..=5).map(|t| w.mark(k(t, 0))).collect();
        assert_eq!(forgot, vec![0, 0, 0, 1, 1]);
        assert_eq!(w.remembered(), 3);
        assert_eq!(w.forgotten(), Some(k(2, 0)));
        // Forgotten keys (and anything before them) are not new; after them
        // an unseen key is.
        for (key, want) in [
            (k(1, 0), false),
            (k(2, 0), false),
            (k(2, 9), true),
            (k(3, 0), false),
            (k(6, 0), true),
        ] {
            assert_eq!(w.is_new(key), want, "{key:?}");
        }
        assert_eq!(w.take_gap(), Some(k(2, 0)));
        assert_eq!(w.take_gap(), None, "each forgotten key told once");
        // Forgetting more moves the gap: told again, with the newer key.
        assert_eq!(w.mark(k(6, 0)), 1);
        assert_eq!(w.forgotten(), Some(k(3, 0)));
        assert_eq!(w.take_gap(), Some(k(3, 0)));
        assert_eq!(w.take_gap(), None);
        // The gap leaves the grace window: over, and told again next time.
        w.prune(Timestamp::from_nanos(4));
        assert_eq!(w.forgotten(), None);
        assert_eq!(w.take_gap(), None);
        assert_eq!(w.remembered(), 3);
        w.prune(Timestamp::from_nanos(6));
        assert_eq!(w.remembered(), 1);
        for t in 7..=9 {
            w.mark(k(t, 0));
        }
        assert_eq!(w.take_gap(), Some(k(6, 0)));
    }

    #[test]
    fn advancing_moves_last_without_remembering() {
        let mut w = LateWindow::new(2);
        for t in 1..=5 {
            w.advance(k(t, 0));
        }
        assert_eq!(w.last(), Some(k(5, 0)));
        assert_eq!(w.remembered(), 0);
        assert_eq!(w.forgotten(), None);
        assert_eq!(w.take_gap(), None, "nothing forgotten, no gap");
        assert!(!w.is_new(k(5, 0)));
        assert!(w.is_new(k(5, 1)));
        // An older key never moves last back.
        w.advance(k(3, 0));
        assert_eq!(w.last(), Some(k(5, 0)));
    }

    #[test]
    fn marking_newest_first_stops_at_the_cap() {
        // The connect scan reads newest first: the first key over the cap
        // is the one forgotten.
        let mut w = LateWindow::new(2);
        assert_eq!(w.mark(k(9, 0)), 0);
        assert_eq!(w.mark(k(8, 0)), 0);
        assert_eq!(w.mark(k(7, 0)), 1);
        assert_eq!(w.last(), Some(k(9, 0)));
        assert_eq!(w.forgotten(), Some(k(7, 0)));
        assert!(!w.is_new(k(6, 0)));
        assert!(w.is_new(k(7, 1)));
    }
}
