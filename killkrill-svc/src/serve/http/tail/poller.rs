//! The task behind one tail: reads the store, sends what is new.
//!
//! Each poll
//! 1. forgets keys older than the grace window;
//! 2. re-reads the grace window up to the last key sent and sends the late
//!    records there that were not sent ([`LateWindow`]);
//! 3. reads records strictly after the last key sent, up to
//!    [`MAX_PAGES_PER_POLL`] pages; when more remain the next poll follows
//!    at once, so a burst of any size is delivered, each record once. While
//!    pages remain the tail is *behind*: the read starts at the last key
//!    sent even when that is older than the grace window (a slow reader or
//!    a large burst falls behind the clock, and loses nothing); once a read
//!    reaches the end it starts at the grace window again.
//!
//! The grace window's start never moves back for a tail (a wall clock
//! stepped back would otherwise re-read records already forgotten and send
//! them twice).
//!
//! Sending never blocks ingestion (the poller only reads the store); it waits
//! for room in the client's buffer at most one poll interval. A client whose
//! buffer stays full that long is a slow client: the tail ends with reason
//! `slow_client`.

use std::sync::Arc;
use std::time::Duration;

use killkrill_core::event::{LogRecord, Tenant, Timestamp};
use killkrill_core::logquery::{Cursor, LogFilter, LogPage, LogQuery, Order, query_logs};
use killkrill_core::pipeline::Shutdown;
use killkrill_core::storage::TimeRange;
use killkrill_store::Store;
use metrics::counter;
use tokio::sync::mpsc::error::TrySendError;
use tokio::sync::{Notify, mpsc, oneshot};

use super::limits::TailPermit;
use super::window::LateWindow;
use super::{Ended, Gap, MIN_POLL, TAIL_GAPS, TAIL_POLLS, TAIL_RECORDS, TAILS_ENDED, TailItem};
use crate::config::QueryConfig;

/// Records read per page.
const PAGE: usize = 1_000;
/// Pages of new records read per poll at most (the rest follows at once,
/// after the client and shutdown are checked).
const MAX_PAGES_PER_POLL: usize = 20;
/// A gap that keeps moving (the late window overflowing under sustained
/// load) is told again at most this often, or every grace period if longer.
const GAP_EVERY: Duration = Duration::from_secs(1);

/// One tail's poller.
pub(super) struct Poller {
    store: Store,
    tenant: Tenant,
    filter: LogFilter,
    cfg: QueryConfig,
    committed: Arc<Notify>,
    shutdown: Shutdown,
    window: LateWindow,
    /// The grace window's start at the last poll (never moves back).
    floor: Timestamp,
    /// The last poll stopped with pages of new records left to read.
    behind: bool,
    /// No gap is told before this.
    next_gap: tokio::time::Instant,
    /// The tenant's log generation read before the last poll's reads
    /// (`None`: not read yet, or the backend keeps none).
    polled: Option<i64>,
}

/// Why a poll stopped.
enum Stop {
    /// The client went away.
    Closed,
    /// The tail ends, for this reason.
    End(Ended),
}

impl Poller {
    pub(super) fn new(
        store: Store,
        tenant: Tenant,
        filter: LogFilter,
        cfg: QueryConfig,
        committed: Arc<Notify>,
        shutdown: Shutdown,
    ) -> Self {
        let window = LateWindow::new(cfg.tail_late_window_records);
        Poller {
            store,
            tenant,
            filter,
            cfg,
            committed,
            shutdown,
            window,
            floor: Timestamp::from_nanos(i64::MIN),
            behind: false,
            next_gap: tokio::time::Instant::now(),
            polled: None,
        }
    }

    fn interval(&self) -> Duration {
        Duration::from_millis(self.cfg.tail_poll_ms).max(MIN_POLL)
    }

    /// The start of the grace window: `query.tail_grace_secs` before now,
    /// and never before its value at the last call.
    fn floor(&mut self) -> Timestamp {
        let grace = i64::try_from(self.cfg.tail_grace_secs)
            .unwrap_or(i64::MAX / 1_000_000_000)
            .saturating_mul(1_000_000_000);
        self.floor = self
            .floor
            .max(Timestamp::now().saturating_add_nanos(-grace));
        self.floor
    }

    async fn page(
        &self,
        range: TimeRange,
        order: Order,
        cursor: Option<Cursor>,
    ) -> Result<LogPage, killkrill_core::logquery::QueryError> {
        let q = LogQuery {
            tenant: self.tenant.clone(),
            range,
            filter: self.filter.clone(),
            order,
            limit: PAGE,
            cursor,
        };
        query_logs(&self.store, &q).await
    }

    /// Marks the records already in the grace window as seen, newest first,
    /// up to the window's cap (the rest is a gap, told at the first poll).
    pub(super) async fn initial(&mut self) -> Result<(), killkrill_core::logquery::QueryError> {
        let range = TimeRange::new(self.floor(), Timestamp::MAX);
        let mut cursor = None;
        loop {
            let page = self.page(range, Order::NewestFirst, cursor).await?;
            for r in &page.records {
                if let Some(k) = key(r)
                    && self.window.mark(k) > 0
                {
                    return Ok(());
                }
            }
            match page.next_cursor {
                Some(c) => cursor = Some(c),
                None => return Ok(()),
            }
        }
    }

    /// Reads one page oldest first; a store failure ends the tail.
    async fn read(&self, range: TimeRange, cursor: Option<Cursor>) -> Result<LogPage, Stop> {
        self.page(range, Order::OldestFirst, cursor)
            .await
            .map_err(|e| self.failed(&e))
    }

    fn failed(&self, e: &dyn std::fmt::Display) -> Stop {
        tracing::warn!(error = %e, tenant = %self.tenant, "live tail poll failed");
        Stop::End(Ended {
            reason: "store_error",
            message: "the store failed while polling; reconnect".to_owned(),
        })
    }

    /// One poll; returns how many records were sent and whether more new
    /// records wait.
    async fn poll(&mut self, tx: &mpsc::Sender<TailItem>) -> Result<(u64, bool), Stop> {
        let floor = self.floor();
        self.window.prune(floor);
        self.tell_gap(tx).await?;
        // Nothing committed for the tenant since the last poll's reads
        // began: they would find nothing new (pruning only forgets keys the
        // re-read no longer reaches), so they are skipped — an idle tail
        // costs one generation read, not a re-read of the grace window.
        let generation = self
            .store
            .log_generation(&self.tenant)
            .await
            .map_err(|e| self.failed(&e))?;
        if !self.behind && generation.is_some() && generation == self.polled {
            counter!(TAIL_POLLS, "result" => "unchanged").increment(1);
            return Ok((0, false));
        }
        counter!(TAIL_POLLS, "result" => "read").increment(1);
        let r = self.read_new(tx, floor).await;
        if r.is_ok() {
            self.polled = generation;
        }
        r
    }

    /// The reads of one poll: late records, then new ones.
    async fn read_new(
        &mut self,
        tx: &mpsc::Sender<TailItem>,
        floor: Timestamp,
    ) -> Result<(u64, bool), Stop> {
        let mut sent = 0u64;
        let last_sent = self.window.last();
        // Late records: behind the last key sent, inside the grace window.
        if let Some(last) = last_sent.filter(|l| l.timestamp >= floor) {
            let range = TimeRange::new(floor, last.timestamp.saturating_add_nanos(1));
            let mut cursor = self.window.forgotten();
            'late: loop {
                let page = self.read(range, cursor).await?;
                for r in page.records {
                    let Some(k) = key(&r) else { continue };
                    if k > last {
                        break 'late;
                    }
                    if self.window.is_new(k) {
                        self.send_record(tx, r, k, floor).await?;
                        sent += 1;
                    }
                }
                match page.next_cursor {
                    Some(c) => cursor = Some(c),
                    None => break,
                }
            }
        }
        // New records: strictly after the last key sent; from that key
        // even before the grace window while the tail is behind.
        let start = match last_sent {
            Some(l) if self.behind => l.timestamp.min(floor),
            _ => floor,
        };
        let range = TimeRange::new(start, Timestamp::MAX);
        let mut cursor = last_sent;
        for _ in 0..MAX_PAGES_PER_POLL {
            let page = self.read(range, cursor).await?;
            for r in page.records {
                let Some(k) = key(&r) else { continue };
                if self.window.is_new(k) {
                    self.send_record(tx, r, k, floor).await?;
                    sent += 1;
                }
            }
            match page.next_cursor {
                Some(c) => cursor = Some(c),
                None => {
                    self.behind = false;
                    return Ok((sent, false));
                }
            }
        }
        self.behind = true;
        Ok((sent, true))
    }

    async fn send_record(
        &mut self,
        tx: &mpsc::Sender<TailItem>,
        r: LogRecord,
        k: Cursor,
        floor: Timestamp,
    ) -> Result<(), Stop> {
        self.send(tx, TailItem::Record(Box::new(r))).await?;
        counter!(TAIL_RECORDS).increment(1);
        if k.timestamp < floor {
            // Catching up: the late re-read never goes back there.
            self.window.advance(k);
        } else {
            self.window.mark(k);
        }
        self.tell_gap(tx).await
    }

    /// Tells the client that late records at or before a key will not be
    /// tailed (the window's cap was reached): when that key has moved past
    /// the one told last, at most every [`GAP_EVERY`] or grace period.
    async fn tell_gap(&mut self, tx: &mpsc::Sender<TailItem>) -> Result<(), Stop> {
        if tokio::time::Instant::now() < self.next_gap {
            return Ok(());
        }
        let Some(f) = self.window.take_gap() else {
            return Ok(());
        };
        self.next_gap = tokio::time::Instant::now()
            + GAP_EVERY.max(Duration::from_secs(self.cfg.tail_grace_secs));
        counter!(TAIL_GAPS, "reason" => "late_window_full").increment(1);
        tracing::info!(tenant = %self.tenant, until = %f.timestamp, "live tail late window full");
        let gap = Gap {
            reason: "late_window_full",
            until: f.timestamp,
            message: format!(
                "more than {} records are in the grace window (query.tail_late_window_records): \
                 records committed late with an event time at or before {} are not tailed; \
                 query them with GET /api/v1/logs",
                self.cfg.tail_late_window_records, f.timestamp
            ),
        };
        self.send(tx, TailItem::Gap(gap)).await
    }

    /// Sends one item, waiting at most one poll interval for room.
    async fn send(&mut self, tx: &mpsc::Sender<TailItem>, item: TailItem) -> Result<(), Stop> {
        let item = match tx.try_send(item) {
            Ok(()) => return Ok(()),
            Err(TrySendError::Closed(_)) => return Err(Stop::Closed),
            Err(TrySendError::Full(item)) => item,
        };
        let wait = self.interval();
        let buffer = self.cfg.tail_buffer_events;
        tokio::select! {
            r = tokio::time::timeout(wait, tx.reserve()) => match r {
                Ok(Ok(permit)) => {
                    permit.send(item);
                    Ok(())
                }
                Ok(Err(_)) => Err(Stop::Closed),
                Err(_) => Err(Stop::End(slow_client(buffer))),
            },
            () = self.shutdown.requested() => Err(Stop::End(shutting_down())),
        }
    }

    /// Runs the tail until it ends, then gives the permit back and tells
    /// the client why (when the server ended it).
    pub(super) async fn run(
        mut self,
        tx: mpsc::Sender<TailItem>,
        end: oneshot::Sender<Ended>,
        permit: TailPermit,
    ) {
        let reason = self.poll_loop(&tx).await;
        drop(permit);
        let label = reason.as_ref().map_or("client_closed", |e| e.reason);
        counter!(TAILS_ENDED, "reason" => label).increment(1);
        if let Some(e) = reason {
            tracing::info!(reason = e.reason, message = %e.message, tenant = %self.tenant, "live tail ended");
            if end.send(e).is_err() {
                tracing::debug!(tenant = %self.tenant, "live tail client was gone before the reason");
            }
        }
    }

    /// Polls until the client goes away (`None`) or the tail must end.
    async fn poll_loop(&mut self, tx: &mpsc::Sender<TailItem>) -> Option<Ended> {
        let poll = self.interval();
        let heartbeat = Duration::from_secs(self.cfg.tail_heartbeat_secs);
        let mut last_sent = tokio::time::Instant::now();
        let mut last_poll = tokio::time::Instant::now();
        let mut more = false;
        loop {
            if more {
                // New records wait: poll again at once.
                if tx.is_closed() {
                    return None;
                }
                if self.shutdown.is_requested() {
                    return Some(shutting_down());
                }
            } else {
                let wake = self.committed.notified();
                let until_heartbeat = heartbeat.saturating_sub(last_sent.elapsed());
                tokio::select! {
                    () = tx.closed() => return None,
                    () = self.shutdown.requested() => return Some(shutting_down()),
                    () = tokio::time::sleep(poll.min(until_heartbeat)) => {}
                    () = wake => {
                        // Wake early, but not more often than MIN_POLL.
                        let since = last_poll.elapsed();
                        if since < MIN_POLL {
                            tokio::select! {
                                () = tx.closed() => return None,
                                () = tokio::time::sleep(MIN_POLL - since) => {}
                            }
                        }
                    }
                }
            }
            last_poll = tokio::time::Instant::now();
            match self.poll(tx).await {
                Ok((sent, m)) => {
                    more = m;
                    if sent > 0 {
                        last_sent = tokio::time::Instant::now();
                    }
                }
                Err(Stop::Closed) => return None,
                Err(Stop::End(e)) => return Some(e),
            }
            if last_sent.elapsed() >= heartbeat {
                match tx.try_send(TailItem::Heartbeat(Timestamp::now())) {
                    Ok(()) => last_sent = tokio::time::Instant::now(),
                    Err(TrySendError::Closed(_)) => return None,
                    Err(TrySendError::Full(_)) => {
                        return Some(slow_client(self.cfg.tail_buffer_events));
                    }
                }
            }
        }
    }
}

/// A record's key; records without an id (never stored so) are skipped.
fn key(r: &LogRecord) -> Option<Cursor> {
    r.id.map(|id| Cursor {
        timestamp: r.timestamp,
        id,
    })
}

fn slow_client(buffer: usize) -> Ended {
    Ended {
        reason: "slow_client",
        message: format!(
            "slow client: {buffer} events were waiting to be read (query.tail_buffer_events); \
             the tail is closed, reconnect to resume"
        ),
    }
}

fn shutting_down() -> Ended {
    Ended {
        reason: "shutting_down",
        message: "the server is shutting down; reconnect to resume".to_owned(),
    }
}
