//! `GET /api/v1/logs/tail`: a Server-Sent Events stream of new records
//! matching the log filters.
//!
//! How it works (and why it works across processes): each tail runs one
//! poller task that reads the **store**, not the pipeline, so a tail served
//! by an API process sees records committed by workers in any other
//! process sharing the database. Every `query.tail_poll_ms` (or at once
//! when a worker of this process commits log blocks, via a [`Notify`]; at
//! most every [`MIN_POLL`]) it reads the records with an event time in
//! `[now - query.tail_grace_secs, ∞)`, oldest first, and sends those it has
//! not sent yet (it remembers the ids it sent inside that window). The
//! grace window catches records that are committed after records with a
//! later event time (senders with skewed clocks, slower receivers); a
//! record committed more than the grace after its event time is not
//! tailed. At connect the window's existing records are marked as seen, so
//! the stream starts with what arrives after the client connected.
//!
//! Backpressure: events go through a bounded channel of
//! `query.tail_buffer_events`. The poller never waits for the client: when
//! the buffer is full it stops, and the client is sent
//! `event: error` with `{"error": "slow client", ...}` and the stream ends.
//! Ingestion never waits for a tail (the poller only reads the store). A
//! comment line (`: heartbeat`) is sent after `query.tail_heartbeat_secs`
//! of silence, so proxies and clients see the connection is alive. At most
//! `query.max_tails` tails run at once (422 naming the limit, with Retry-After, beyond).
//!
//! The same poller serves gRPC's `TailLogs` ([`subscribe`]): it yields
//! [`TailItem`]s, which the SSE route formats as events and the gRPC
//! service as `TailLogsResponse` messages.

use std::collections::HashMap;
use std::sync::Arc;
use std::time::Duration;

use killkrill_core::pipeline::Shutdown;

use axum::body::Body;
use axum::extract::{RawQuery, State};
use axum::http::{HeaderValue, StatusCode, header};
use axum::response::{IntoResponse, Response};
use bytes::Bytes;
use killkrill_core::event::{EventId, Tenant, Timestamp};
use killkrill_core::logquery::{Cursor, LogFilter, LogQuery, Order, query_logs};
use killkrill_core::storage::TimeRange;
use killkrill_store::Store;
use metrics::{counter, gauge};
use tokio::sync::{Notify, OwnedSemaphorePermit, Semaphore, mpsc, oneshot};

use super::read_params::{FILTER_PARAMS, Params, limit_exceeded, log_filter};
use super::{ApiError, AppState, Caller};
use crate::config::QueryConfig;
use crate::serve::self_metrics::HTTP_ACCEPTED;

/// Shortest time between two polls of one tail (commit notifications
/// arrive far more often under load).
pub const MIN_POLL: Duration = Duration::from_millis(100);
/// Records read per page while polling.
const PAGE: usize = 1_000;
/// Pages read per poll at most (the rest waits for the next poll).
const MAX_PAGES_PER_POLL: usize = 20;

/// Tails open now.
pub const TAILS_OPEN: &str = "killkrill_logs_tails_open";
/// Tails ended, by reason.
pub const TAILS_ENDED: &str = "killkrill_logs_tails_ended_total";
/// Records sent to tail clients.
pub const TAIL_RECORDS: &str = "killkrill_logs_tail_records_total";
/// gRPC `TailLogs` streams opened.
pub const TAILS_OPENED_GRPC: &str = "killkrill_grpc_tails_opened_total";
/// gRPC `TailLogs` streams the server ended with a status, by reason.
pub const TAILS_ENDED_GRPC: &str = "killkrill_grpc_tails_ended_total";

/// Shared by all tails of the process: the concurrency limit and the
/// commit notification.
#[derive(Debug)]
pub struct TailHub {
    permits: Arc<Semaphore>,
    committed: Arc<Notify>,
    shutdown: Shutdown,
}

impl TailHub {
    /// At most `max` tails; `committed` is notified by the log sink after
    /// each commit; every tail ends (with `event: error`, reason
    /// `shutting_down`) when `shutdown` fires, so a graceful shutdown is not
    /// held open by endless streams.
    pub fn new(max: usize, committed: Arc<Notify>, shutdown: Shutdown) -> Arc<Self> {
        Arc::new(TailHub {
            permits: Arc::new(Semaphore::new(max)),
            committed,
            shutdown,
        })
    }
}

/// Why a tail ended early.
#[derive(Debug)]
pub struct Ended {
    /// `slow_client`, `shutting_down` or `store_error`.
    pub reason: &'static str,
    /// For the client.
    pub message: String,
}

/// What a tail yields.
#[derive(Debug)]
pub enum TailItem {
    /// A new matching record.
    Record(Box<killkrill_core::event::LogRecord>),
    /// Nothing matched for `query.tail_heartbeat_secs`.
    Heartbeat(Timestamp),
}

/// A running tail: its items, and why it ended when the server ended it
/// (the sender side is dropped without a reason when the client went
/// away).
pub struct Subscription {
    /// Items, bounded by `query.tail_buffer_events`.
    pub items: mpsc::Receiver<TailItem>,
    /// Fires with the reason when the server ends the tail.
    pub ended: oneshot::Receiver<Ended>,
}

/// Opens a tail of `tenant`'s records matching `filter` that arrive from
/// now on: the `query.max_tails` permit is taken, the current window is
/// marked as seen, and the poller runs until the subscription is dropped,
/// the client is too slow, or shutdown.
///
/// # Errors
/// `Err(None)` when `query.max_tails` tails are open; `Err(Some(e))` when
/// the initial scan failed.
pub async fn subscribe(
    s: &AppState,
    tenant: Tenant,
    filter: LogFilter,
) -> Result<Subscription, Option<killkrill_core::logquery::QueryError>> {
    let permit = s
        .tails
        .permits
        .clone()
        .try_acquire_owned()
        .map_err(|_| None)?;
    let cfg = s.query.clone();
    let (tx, rx) = mpsc::channel::<TailItem>(cfg.tail_buffer_events.max(1));
    let (end_tx, end_rx) = oneshot::channel::<Ended>();
    let mut poller = Poller {
        store: s.store.clone(),
        tenant,
        filter,
        cfg,
        committed: s.tails.committed.clone(),
        shutdown: s.tails.shutdown.clone(),
        sent: HashMap::new(),
    };
    // The initial scan runs before the caller answers, so "after it
    // connected" means after the response headers arrived.
    poller.initial().await.map_err(Some)?;
    tokio::spawn(poller.run(tx, end_tx, permit));
    Ok(Subscription {
        items: rx,
        ended: end_rx,
    })
}

/// `GET /api/v1/logs/tail`.
pub async fn get_tail(
    State(s): State<Arc<AppState>>,
    caller: Caller,
    RawQuery(raw): RawQuery,
) -> Result<Response, ApiError> {
    const EP: &str = "logs_tail";
    let p = Params::parse(EP, raw.as_deref(), FILTER_PARAMS)?;
    let filter = log_filter(EP, &p)?;
    let sub = subscribe(&s, caller.tenant, filter)
        .await
        .map_err(|e| match e {
            Some(e) => super::query_logs::query_error(EP, &e),
            None => ApiError {
                retry_after: Some(5),
                ..limit_exceeded(
                    EP,
                    "query.max_tails",
                    format!(
                        "{} live tails are open, the limit is {}",
                        s.query.max_tails, s.query.max_tails
                    ),
                )
            },
        })?;
    counter!(HTTP_ACCEPTED, "endpoint" => EP).increment(1);
    let stream = futures_util::stream::unfold(
        StreamState {
            rx: sub.items,
            end: Some(sub.ended),
            done: false,
        },
        next_chunk,
    );
    let mut r = (StatusCode::OK, Body::from_stream(stream)).into_response();
    let h = r.headers_mut();
    h.insert(
        header::CONTENT_TYPE,
        HeaderValue::from_static("text/event-stream"),
    );
    h.insert(header::CACHE_CONTROL, HeaderValue::from_static("no-cache"));
    h.insert("x-accel-buffering", HeaderValue::from_static("no"));
    Ok(r)
}

struct StreamState {
    rx: mpsc::Receiver<TailItem>,
    end: Option<oneshot::Receiver<Ended>>,
    done: bool,
}

/// The next chunk of the response: the error event as soon as the poller
/// gave up (buffered events are dropped: the client is too slow for them
/// anyway), else the next buffered event.
async fn next_chunk(
    mut st: StreamState,
) -> Option<(Result<Bytes, std::convert::Infallible>, StreamState)> {
    if st.done {
        return None;
    }
    loop {
        let Some(end) = st.end.as_mut() else {
            return st.rx.recv().await.map(|b| (Ok(sse_event(b)), st));
        };
        tokio::select! {
            biased;
            e = end => {
                st.end = None;
                if let Ok(e) = e {
                    st.done = true;
                    let data = serde_json::json!({"error": e.message, "reason": e.reason});
                    return Some((Ok(Bytes::from(format!("event: error\ndata: {data}\n\n"))), st));
                }
                // The poller stopped without a reason: send what is buffered.
            }
            b = st.rx.recv() => return b.map(|b| (Ok(sse_event(b)), st)),
        }
    }
}

/// One item as a Server-Sent Event (a heartbeat as a comment line).
fn sse_event(item: TailItem) -> Bytes {
    match item {
        TailItem::Record(r) => {
            let mut ev = String::with_capacity(256);
            if let Some(i) = r.id {
                let c = Cursor {
                    timestamp: r.timestamp,
                    id: i,
                };
                ev.push_str("id: ");
                ev.push_str(&c.to_string());
                ev.push('\n');
            }
            ev.push_str("event: log\ndata: ");
            ev.push_str(&r.to_json());
            ev.push_str("\n\n");
            Bytes::from(ev)
        }
        TailItem::Heartbeat(t) => Bytes::from(format!(": heartbeat {t}\n\n")),
    }
}

fn slow_client(cfg: &QueryConfig) -> Ended {
    Ended {
        reason: "slow_client",
        message: format!(
            "slow client: {} events were waiting to be read (query.tail_buffer_events); \
             the tail is closed, reconnect to resume",
            cfg.tail_buffer_events
        ),
    }
}

struct Poller {
    store: Store,
    tenant: Tenant,
    filter: LogFilter,
    cfg: QueryConfig,
    committed: Arc<Notify>,
    shutdown: Shutdown,
    /// Ids sent (or seen at connect) with their event time, inside the
    /// grace window.
    sent: HashMap<EventId, Timestamp>,
}

impl Poller {
    fn floor(&self) -> Timestamp {
        let grace = i64::try_from(self.cfg.tail_grace_secs)
            .unwrap_or(i64::MAX / 1_000_000_000)
            .saturating_mul(1_000_000_000);
        Timestamp::now().saturating_add_nanos(-grace)
    }

    /// Marks the records already in the window as seen.
    async fn initial(&mut self) -> Result<(), killkrill_core::logquery::QueryError> {
        let floor = self.floor();
        self.scan(floor, |_| true).await.map(|_| ())
    }

    /// Reads the window and calls `emit` for each record not sent yet;
    /// stops when `emit` returns false. Returns whether it stopped early.
    async fn scan(
        &mut self,
        floor: Timestamp,
        mut emit: impl FnMut(&killkrill_core::event::LogRecord) -> bool,
    ) -> Result<bool, killkrill_core::logquery::QueryError> {
        self.sent.retain(|_, t| *t >= floor);
        let mut cursor: Option<Cursor> = None;
        for _ in 0..MAX_PAGES_PER_POLL {
            let q = LogQuery {
                tenant: self.tenant.clone(),
                range: TimeRange::new(floor, Timestamp::MAX),
                filter: self.filter.clone(),
                order: Order::OldestFirst,
                limit: PAGE,
                cursor,
            };
            let page = query_logs(&self.store, &q).await?;
            for r in &page.records {
                let Some(id) = r.id else { continue };
                if self.sent.contains_key(&id) {
                    continue;
                }
                if !emit(r) {
                    return Ok(true);
                }
                self.sent.insert(id, r.timestamp);
            }
            match page.next_cursor {
                Some(c) => cursor = Some(c),
                None => break,
            }
        }
        Ok(false)
    }

    async fn run(
        mut self,
        tx: mpsc::Sender<TailItem>,
        end: oneshot::Sender<Ended>,
        permit: OwnedSemaphorePermit,
    ) {
        gauge!(TAILS_OPEN).increment(1.0);
        let reason = self.poll_loop(&tx).await;
        gauge!(TAILS_OPEN).decrement(1.0);
        drop(permit);
        let label = reason.as_ref().map_or("client_closed", |e| e.reason);
        counter!(TAILS_ENDED, "reason" => label).increment(1);
        if let Some(e) = reason {
            tracing::info!(reason = e.reason, message = %e.message, tenant = %self.tenant, "live tail ended");
            let _ = end.send(e);
        }
    }

    /// Polls until the client goes away (`None`) or the tail must end.
    async fn poll_loop(&mut self, tx: &mpsc::Sender<TailItem>) -> Option<Ended> {
        let poll = Duration::from_millis(self.cfg.tail_poll_ms).max(MIN_POLL);
        let heartbeat = Duration::from_secs(self.cfg.tail_heartbeat_secs);
        let mut last_sent = tokio::time::Instant::now();
        let mut last_poll = tokio::time::Instant::now();
        loop {
            let wake = self.committed.notified();
            let until_heartbeat = heartbeat.saturating_sub(last_sent.elapsed());
            tokio::select! {
                () = tx.closed() => return None,
                () = self.shutdown.requested() => return Some(Ended {
                    reason: "shutting_down",
                    message: "the server is shutting down; reconnect to resume".to_owned(),
                }),
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
            {
                last_poll = tokio::time::Instant::now();
                let floor = self.floor();
                let mut overflow = false;
                let mut n = 0u64;
                let res = self
                    .scan(floor, |r| {
                        match tx.try_send(TailItem::Record(Box::new(r.clone()))) {
                            Ok(()) => {
                                n += 1;
                                true
                            }
                            Err(_) => {
                                overflow = true;
                                false
                            }
                        }
                    })
                    .await;
                if n > 0 {
                    counter!(TAIL_RECORDS).increment(n);
                    last_sent = tokio::time::Instant::now();
                }
                if overflow {
                    if tx.is_closed() {
                        return None;
                    }
                    return Some(slow_client(&self.cfg));
                }
                if let Err(e) = res {
                    tracing::warn!(error = %e, "live tail poll failed");
                    return Some(Ended {
                        reason: "store_error",
                        message: "the store failed while polling; reconnect".to_owned(),
                    });
                }
            }
            if last_sent.elapsed() >= heartbeat {
                match tx.try_send(TailItem::Heartbeat(Timestamp::now())) {
                    Ok(()) => last_sent = tokio::time::Instant::now(),
                    Err(mpsc::error::TrySendError::Closed(_)) => return None,
                    Err(mpsc::error::TrySendError::Full(_)) => {
                        return Some(slow_client(&self.cfg));
                    }
                }
            }
        }
    }
}
