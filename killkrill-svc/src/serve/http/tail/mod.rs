//! `GET /api/v1/logs/tail`: a Server-Sent Events stream of new records
//! matching the log filters.
//!
//! How it works (and why it works across processes): each tail runs one
//! poller task that reads the **store**, not the pipeline, so a tail served
//! by an API process sees records committed by workers in any other
//! process sharing the database. Every `query.tail_poll_ms` (or at once
//! when a worker of this process commits log blocks, via a [`Notify`]; at
//! most every [`MIN_POLL`]) it reads the records strictly after the last
//! key `(timestamp, id)` it sent, oldest first, page by page, so every
//! record is sent once and a burst of any size gets through. Records
//! committed behind that key (senders with skewed clocks, slower receivers)
//! are found by re-reading the grace window `[now - query.tail_grace_secs,
//! last key]` against a bounded set of the keys sent ([`window`]); a
//! record committed more than the grace after its event time is not
//! tailed. At connect the window's existing records are marked as seen, so
//! the stream starts with what arrives after the client connected. When
//! more than `query.tail_late_window_records` records are inside the grace
//! window the oldest keys are forgotten and late records before them can no
//! longer be told apart: the client is sent `event: gap` naming the time
//! (again when that time moves on, at most once per grace period), and it is
//! counted. A tail behind the clock reads on from its last key until it has
//! caught up, even from before the grace window.
//!
//! Backpressure: events go through a bounded channel of
//! `query.tail_buffer_events`. The poller waits for room at most one poll
//! interval: a client whose buffer stays full that long is sent
//! `event: error` with `{"error": "slow client", ...}` and the stream ends.
//! Ingestion never waits for a tail (the poller only reads the store). A
//! comment line (`: heartbeat`) is sent after `query.tail_heartbeat_secs`
//! of silence, so proxies and clients see the connection is alive. At most
//! `query.max_tails` tails run at once, `query.max_tails_per_tenant` per
//! tenant ([`limits`]; 429 naming the limit, with Retry-After, beyond).
//!
//! The same poller serves gRPC's `TailLogs` ([`subscribe`]): it yields
//! [`TailItem`]s, which the SSE route formats as events and the gRPC
//! service as `TailLogsResponse` messages.

mod limits;
mod poller;
pub mod window;

use std::sync::Arc;
use std::time::Duration;

use axum::body::Body;
use axum::extract::{RawQuery, State};
use axum::http::{HeaderValue, StatusCode, header};
use axum::response::{IntoResponse, Response};
use bytes::Bytes;
use killkrill_core::event::{Tenant, Timestamp};
use killkrill_core::logquery::{Cursor, LogFilter, QueryError};
use metrics::counter;
use tokio::sync::{mpsc, oneshot};

pub use limits::{Refused, TailHub, TailLimit, TailPermit};

use super::read_params::{FILTER_PARAMS, Params, log_filter};
use super::{ApiError, AppState, Caller};
use crate::serve::self_metrics::HTTP_ACCEPTED;

/// Shortest time between two polls of one tail (commit notifications
/// arrive far more often under load).
pub const MIN_POLL: Duration = Duration::from_millis(100);

/// Tails open now.
pub const TAILS_OPEN: &str = "killkrill_logs_tails_open";
/// Tails ended, by reason.
pub const TAILS_ENDED: &str = "killkrill_logs_tails_ended_total";
/// Tails refused because a limit was reached, by `limit`
/// (`query.max_tails`, `query.max_tails_per_tenant`).
pub const TAILS_REFUSED: &str = "killkrill_logs_tails_refused_total";
/// Records sent to tail clients.
pub const TAIL_RECORDS: &str = "killkrill_logs_tail_records_total";
/// Gaps told to tail clients, by reason (`late_window_full`).
pub const TAIL_GAPS: &str = "killkrill_logs_tail_gaps_total";
/// Tail polls, by `result`: `read` (the store was read), `unchanged`
/// (skipped: nothing committed for the tenant since the last read).
pub const TAIL_POLLS: &str = "killkrill_logs_tail_polls_total";
/// gRPC `TailLogs` streams opened.
pub const TAILS_OPENED_GRPC: &str = "killkrill_grpc_tails_opened_total";
/// gRPC `TailLogs` streams the server ended with a status, by reason.
pub const TAILS_ENDED_GRPC: &str = "killkrill_grpc_tails_ended_total";

/// Why a tail ended early.
#[derive(Debug)]
pub struct Ended {
    /// `slow_client`, `shutting_down` or `store_error`.
    pub reason: &'static str,
    /// For the client.
    pub message: String,
}

/// Late records at or before `until` will not be tailed (see [`window`]).
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct Gap {
    /// `late_window_full`.
    pub reason: &'static str,
    /// The event time up to which late records are not tailed.
    pub until: Timestamp,
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
    /// Late records before a time are no longer tailed.
    Gap(Gap),
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

/// Why a tail was not opened.
#[derive(Debug)]
pub enum SubscribeError {
    /// A concurrency limit is reached.
    Refused(Refused),
    /// The connect scan failed.
    Query(QueryError),
}

/// Opens a tail of `tenant`'s records matching `filter` that arrive from
/// now on: a slot under `query.max_tails` and `query.max_tails_per_tenant`
/// is taken, the current window is marked as seen, and the poller runs
/// until the subscription is dropped, the client is too slow, the store
/// fails, or shutdown; the slot is given back then.
///
/// # Errors
/// [`SubscribeError::Refused`] when a limit is reached;
/// [`SubscribeError::Query`] when the connect scan failed.
pub async fn subscribe(
    s: &AppState,
    tenant: Tenant,
    filter: LogFilter,
) -> Result<Subscription, SubscribeError> {
    let permit = s.tails.acquire(&tenant).map_err(SubscribeError::Refused)?;
    let cfg = s.query.clone();
    let (tx, rx) = mpsc::channel::<TailItem>(cfg.tail_buffer_events.max(1));
    let (end_tx, end_rx) = oneshot::channel::<Ended>();
    let mut poller = poller::Poller::new(
        s.store.clone(),
        tenant,
        filter,
        cfg,
        s.tails.committed.clone(),
        s.tails.shutdown.clone(),
    );
    // The initial scan runs before the caller answers, so "after it
    // connected" means after the response headers arrived.
    poller.initial().await.map_err(SubscribeError::Query)?;
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
            SubscribeError::Query(e) => super::query_logs::query_error(EP, &e),
            SubscribeError::Refused(r) => refused(EP, r),
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

/// 429 naming the limit, with `Retry-After`.
fn refused(endpoint: &'static str, r: Refused) -> ApiError {
    ApiError {
        retry_after: Some(Refused::RETRY_AFTER_SECS),
        limit: Some(r.limit.key().to_owned()),
        ..ApiError::new(
            StatusCode::TOO_MANY_REQUESTS,
            format!("too many live tails: {}", r.limit.key()),
            Some(r.message()),
        )
    }
    .counted(endpoint)
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
        TailItem::Gap(g) => {
            let data = serde_json::json!({
                "reason": g.reason,
                "until": g.until.to_string(),
                "limit": "query.tail_late_window_records",
                "message": g.message,
            });
            Bytes::from(format!("event: gap\ndata: {data}\n\n"))
        }
    }
}
