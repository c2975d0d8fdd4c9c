//! Live tail limits and progress over real sockets against
//! `serve::start_with` (SQLite): the per-tenant and process caps refuse the
//! extra stream (SSE 429 naming the limit with `Retry-After`, gRPC
//! `RESOURCE_EXHAUSTED`), are counted, and give the slot back when a client
//! disconnects; a burst larger than 20 pages of 1,000 inside the grace
//! window is delivered exactly once, in order; a grace window holding more
//! records than `query.tail_late_window_records` is told (`event: gap`) and
//! counted, and new records still all arrive; a reader slower than the
//! grace window falls behind the clock and still gets every record.
//! An idle tail's polls skip the store until something is committed.
#![allow(clippy::unwrap_used, clippy::print_stderr)]

mod support;

use std::collections::VecDeque;
use std::net::SocketAddr;
use std::time::Duration;

use killkrill_core::event::{EventId, LogRecord, Severity, Tenant, Timestamp};
use killkrill_core::storage::LogStore;
use killkrill_proto::killkrill::v1 as pb;
use killkrill_proto::killkrill::v1::query_client::QueryClient;
use killkrill_store::Store;
use killkrill_store::auth::Scope;
use killkrill_svc::config::{ListenAddr, ServeConfig};
use killkrill_svc::serve::ServeHandle;
use support::grpc::Key;
use tokio::io::{AsyncReadExt, AsyncWriteExt};
use tokio::net::TcpStream;
use tonic::Code;
use tonic::service::interceptor::InterceptedService;
use tonic::transport::Channel;

async fn start(
    edit: impl FnOnce(&mut ServeConfig),
) -> (tempfile::TempDir, ServeHandle, SocketAddr) {
    let dir = tempfile::tempdir().unwrap();
    let mut c = support::config(dir.path());
    c.syslog_udp = ListenAddr::OFF;
    c.syslog_tcp = ListenAddr::OFF;
    c.maintenance.interval_secs = 0;
    c.query.tail_poll_ms = 100;
    edit(&mut c);
    let h = support::start(c).await.unwrap();
    let a = h.http.unwrap();
    (dir, h, a)
}

/// An API key of a second tenant, `other`.
async fn other_key(h: &ServeHandle) -> String {
    let other = Tenant::new("other").unwrap();
    h.auth
        .store()
        .ensure_tenant(&other, killkrill_svc::auth::now_nanos())
        .await
        .unwrap();
    let (_, key) = h
        .auth
        .create_api_key(&other, "t", vec![Scope::Ingest, Scope::Read], None, "test")
        .await
        .unwrap();
    key
}

/// A tail's connection after the response head.
struct Sse {
    s: TcpStream,
    raw: Vec<u8>,
    body: Vec<u8>,
    /// Decoded, not yet returned by `read_until`.
    pending: VecDeque<Event>,
    ended: bool,
}

/// One Server-Sent Event: its name and data (comments are skipped).
#[derive(Debug)]
struct Event {
    name: String,
    data: String,
}

impl Sse {
    /// Opens a tail with `key`; returns the head (status line and headers)
    /// and, when it is 200, the stream.
    async fn open(addr: SocketAddr, key: &str, query: &str) -> (String, Option<Sse>) {
        let s = TcpStream::connect(addr).await.unwrap();
        Self::open_on(s, addr, key, query).await
    }

    /// [`Sse::open`] on a connection whose receive buffer is 4 KiB, so
    /// that a reader that does not read holds the server up soon.
    async fn open_small(addr: SocketAddr, key: &str, query: &str) -> (String, Option<Sse>) {
        let sock = tokio::net::TcpSocket::new_v4().unwrap();
        sock.set_recv_buffer_size(4096).unwrap();
        let s = sock.connect(addr).await.unwrap();
        Self::open_on(s, addr, key, query).await
    }

    async fn open_on(
        mut s: TcpStream,
        addr: SocketAddr,
        key: &str,
        query: &str,
    ) -> (String, Option<Sse>) {
        let req = format!(
            "GET /api/v1/logs/tail?{query} HTTP/1.1\r\nHost: {addr}\r\nX-API-Key: {key}\r\n\r\n"
        );
        s.write_all(req.as_bytes()).await.unwrap();
        let mut raw = Vec::new();
        let mut buf = [0u8; 4096];
        let head_end = loop {
            if let Some(i) = raw.windows(4).position(|w| w == b"\r\n\r\n") {
                break i + 4;
            }
            let n = s.read(&mut buf).await.unwrap();
            assert!(
                n > 0,
                "closed in the head: {}",
                String::from_utf8_lossy(&raw)
            );
            raw.extend_from_slice(&buf[..n]);
        };
        let head = String::from_utf8_lossy(&raw[..head_end]).into_owned();
        let rest = raw.split_off(head_end);
        if !head.starts_with("HTTP/1.1 200") {
            // Read the (small, length-delimited) error body too.
            let mut body = rest;
            let _ = tokio::time::timeout(Duration::from_secs(2), async {
                while !body.ends_with(b"}") {
                    match s.read(&mut buf).await {
                        Ok(0) | Err(_) => break,
                        Ok(n) => body.extend_from_slice(&buf[..n]),
                    }
                }
            })
            .await;
            return (format!("{head}{}", String::from_utf8_lossy(&body)), None);
        }
        let mut sse = Sse {
            s,
            raw: Vec::new(),
            body: Vec::new(),
            pending: VecDeque::new(),
            ended: false,
        };
        sse.push(&rest);
        (head, Some(sse))
    }

    /// Decodes HTTP/1.1 chunked framing into `body` (one drain per call:
    /// a burst is tens of thousands of chunks).
    fn push(&mut self, b: &[u8]) {
        self.raw.extend_from_slice(b);
        let mut at = 0;
        while let Some(nl) = self.raw[at..].windows(2).position(|w| w == b"\r\n") {
            let size = usize::from_str_radix(
                std::str::from_utf8(&self.raw[at..at + nl]).unwrap().trim(),
                16,
            )
            .unwrap();
            if size == 0 {
                self.ended = true;
                break;
            }
            if self.raw.len() < at + nl + 2 + size + 2 {
                break;
            }
            let start = at + nl + 2;
            self.body.extend_from_slice(&self.raw[start..start + size]);
            at = start + size + 2;
        }
        self.raw.drain(..at);
    }

    /// The complete events received so far (taken out of the buffer).
    fn take_events(&mut self) -> Vec<Event> {
        let mut out = Vec::new();
        let mut at = 0;
        while let Some(i) = self.body[at..].windows(2).position(|w| w == b"\n\n") {
            let text = std::str::from_utf8(&self.body[at..at + i]).unwrap();
            at += i + 2;
            let mut name = None;
            let mut data = String::new();
            for line in text.lines() {
                if let Some(n) = line.strip_prefix("event: ") {
                    name = Some(n.to_owned());
                } else if let Some(d) = line.strip_prefix("data: ") {
                    data.push_str(d);
                }
            }
            if let Some(name) = name {
                out.push(Event { name, data });
            }
        }
        self.body.drain(..at);
        out
    }

    /// Reads events until `done` says so, the stream ends, or 60 s pass.
    async fn read_until(&mut self, mut done: impl FnMut(&Event) -> bool) -> Vec<Event> {
        let deadline = tokio::time::Instant::now() + Duration::from_secs(60);
        let mut all = Vec::new();
        let mut buf = vec![0u8; 256 * 1024];
        loop {
            let more = self.take_events();
            self.pending.extend(more);
            while let Some(e) = self.pending.pop_front() {
                let stop = done(&e);
                all.push(e);
                if stop {
                    return all;
                }
            }
            if self.ended {
                return all;
            }
            match tokio::time::timeout_at(deadline, self.s.read(&mut buf)).await {
                Ok(Ok(0)) | Err(_) => return all,
                Ok(Ok(n)) => self.push(&buf[..n]),
                Ok(Err(e)) => panic!("read: {e}"),
            }
        }
    }
}

/// `n` records `"{prefix} {i}"` on host `h`, event times `base + i µs`,
/// ids increasing with `i` (from `first_id`).
fn records(prefix: &str, base: Timestamp, first_id: u128, n: usize) -> Vec<LogRecord> {
    (0..n)
        .map(|i| LogRecord {
            id: Some(EventId::from_u128(first_id + i as u128)),
            tenant: Some(Tenant::default()),
            timestamp: base.saturating_add_nanos(i as i64 * 1_000),
            severity: Some(Severity::Error),
            host: Some("h".to_owned()),
            message: Some(format!("{prefix} {i}").into_bytes()),
            ..LogRecord::default()
        })
        .collect()
}

async fn write(store: &Store, records: Vec<LogRecord>) {
    let blocks = store.encode(records).await.unwrap();
    store.write_blocks(&blocks).await.unwrap();
}

fn messages(events: &[Event]) -> Vec<String> {
    events
        .iter()
        .filter(|e| e.name == "log")
        .map(|e| {
            let v: serde_json::Value = serde_json::from_str(&e.data).unwrap();
            v["message"].as_str().unwrap().to_owned()
        })
        .collect()
}

fn metric(text: &str, name: &str, labels: &[(&str, &str)]) -> f64 {
    support::metric_sum(text, name, labels)
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn tails_are_capped_per_tenant_and_per_process_and_slots_come_back() {
    let (_d, h, addr) = start(|c| {
        c.query.max_tails = 3;
        c.query.max_tails_per_tenant = 2;
    })
    .await;
    let mine = support::api_key(addr);
    let theirs = other_key(&h).await;
    let before = support::scrape(addr).await;
    let refused = |text: &str, limit: &str| {
        metric(
            text,
            "killkrill_logs_tails_refused_total",
            &[("limit", limit)],
        )
    };

    let (_, a1) = Sse::open(addr, &mine, "").await;
    let (_, a2) = Sse::open(addr, &mine, "").await;
    let (a1, a2) = (a1.expect("first tail"), a2.expect("second tail"));
    // The tenant's third: 429 naming the tenant limit.
    let (head, none) = Sse::open(addr, &mine, "").await;
    assert!(none.is_none());
    assert!(head.starts_with("HTTP/1.1 429"), "{head}");
    assert!(
        head.to_ascii_lowercase().contains("retry-after: 5\r\n"),
        "{head}"
    );
    let body: serde_json::Value = serde_json::from_str(&head[head.find('{').unwrap()..]).unwrap();
    assert_eq!(body["limit"], "query.max_tails_per_tenant", "{body}");
    assert_eq!(
        body["error"],
        "too many live tails: query.max_tails_per_tenant"
    );
    assert_eq!(
        body["detail"],
        "2 live tails are open for this tenant, the limit; close one or retry later"
    );
    // Another tenant still gets one; then the process is full (3).
    let (_, b1) = Sse::open(addr, &theirs, "").await;
    let b1 = b1.expect("the other tenant's tail");
    let (head, _) = Sse::open(addr, &theirs, "").await;
    assert!(head.starts_with("HTTP/1.1 429"), "{head}");
    let body: serde_json::Value = serde_json::from_str(&head[head.find('{').unwrap()..]).unwrap();
    assert_eq!(body["limit"], "query.max_tails", "{body}");
    // gRPC shares the limits: RESOURCE_EXHAUSTED naming the tenant's.
    let ch = Channel::from_shared(format!("http://{addr}"))
        .unwrap()
        .connect()
        .await
        .unwrap();
    let mut q = QueryClient::new(InterceptedService::new(ch, Key(mine.parse().unwrap())));
    let e = q
        .tail_logs(pb::TailLogsRequest { filter: None })
        .await
        .unwrap_err();
    assert_eq!(e.code(), Code::ResourceExhausted, "{e:?}");
    assert!(
        e.message()
            .starts_with("query.max_tails_per_tenant: 2 live tails"),
        "{e:?}"
    );
    let after = support::scrape(addr).await;
    assert_eq!(
        refused(&after, "query.max_tails_per_tenant")
            - refused(&before, "query.max_tails_per_tenant"),
        2.0
    );
    assert_eq!(
        refused(&after, "query.max_tails") - refused(&before, "query.max_tails"),
        1.0
    );

    // The client goes away: its slot comes back (a tail of this tenant
    // opens again), over SSE and over gRPC.
    drop(a1);
    let t0 = std::time::Instant::now();
    let a3 = loop {
        let (head, s) = Sse::open(addr, &mine, "").await;
        if let Some(s) = s {
            break s;
        }
        assert!(head.contains("query.max_tails"), "{head}");
        assert!(
            t0.elapsed() < Duration::from_secs(10),
            "the slot of a closed tail was not given back"
        );
        tokio::time::sleep(Duration::from_millis(100)).await;
    };
    // Full again; a gRPC stream dropped by its client gives its slot back.
    drop(a3);
    let t0 = std::time::Instant::now();
    let stream = loop {
        match q.tail_logs(pb::TailLogsRequest { filter: None }).await {
            Ok(s) => break s.into_inner(),
            Err(e) => {
                assert_eq!(e.code(), Code::ResourceExhausted, "{e:?}");
                assert!(t0.elapsed() < Duration::from_secs(10), "{e:?}");
                tokio::time::sleep(Duration::from_millis(100)).await;
            }
        }
    };
    drop(stream);
    let t0 = std::time::Instant::now();
    loop {
        let (head, s) = Sse::open(addr, &mine, "").await;
        if s.is_some() {
            break;
        }
        assert!(
            t0.elapsed() < Duration::from_secs(10),
            "the slot of a dropped gRPC tail was not given back: {head}"
        );
        tokio::time::sleep(Duration::from_millis(100)).await;
    }
    let end = support::scrape(addr).await;
    let closed = |t: &str| {
        metric(
            t,
            "killkrill_logs_tails_ended_total",
            &[("reason", "client_closed")],
        )
    };
    assert!(closed(&end) - closed(&before) >= 3.0, "{end}");
    // Every slot comes back once every client is gone.
    drop((a2, b1));
    let open = |t: &str| metric(t, "killkrill_logs_tails_open", &[]);
    let t0 = std::time::Instant::now();
    loop {
        let now = support::scrape(addr).await;
        if open(&now) == open(&before) {
            break;
        }
        assert!(
            t0.elapsed() < Duration::from_secs(10),
            "tails still open: {} (before: {})",
            open(&now),
            open(&before)
        );
        tokio::time::sleep(Duration::from_millis(100)).await;
    }
    h.shutdown().await;
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn a_burst_larger_than_twenty_pages_is_delivered_once_in_order() {
    const BURST: usize = 25_000;
    let (_d, h, addr) = start(|c| {
        // Every record below stays inside the grace window.
        c.query.tail_grace_secs = 600;
        c.query.tail_late_window_records = 100_000;
        // A loaded test machine may stall the reader: room to spare, and a
        // longer wait before it counts as slow.
        c.query.tail_buffer_events = 8_192;
        c.query.tail_poll_ms = 250;
    })
    .await;
    let base = Timestamp::now();
    // Already stored: never streamed.
    write(&h.store, records("before", base, 1, 1_000)).await;
    let (_, s) = Sse::open(addr, &support::api_key(addr), "host=h").await;
    let mut s = s.unwrap();
    // More than 20 pages of 1,000, in five commits; then a record committed
    // late (its event time is before the whole burst), then a marker.
    let burst_base = base.saturating_add_nanos(1_000_000_000);
    let burst = records("burst", burst_base, 1_000_000, BURST);
    for chunk in burst.chunks(BURST / 5) {
        write(&h.store, chunk.to_vec()).await;
    }
    write(
        &h.store,
        records("late", base.saturating_add_nanos(500_000_000), 10, 1),
    )
    .await;
    write(
        &h.store,
        records(
            "end",
            burst_base.saturating_add_nanos(60_000_000_000),
            5_000_000,
            1,
        ),
    )
    .await;
    let events = s
        .read_until(|e| e.name != "log" || e.data.contains("\"end 0\""))
        .await;
    let got = messages(&events);
    let names: Vec<&str> = events
        .iter()
        .map(|e| e.name.as_str())
        .filter(|n| *n != "log")
        .collect();
    assert!(names.is_empty(), "only records expected: {names:?}");
    let want_burst: Vec<String> = (0..BURST).map(|i| format!("burst {i}")).collect();
    let burst_got: Vec<String> = got
        .iter()
        .filter(|m| m.starts_with("burst "))
        .cloned()
        .collect();
    assert_eq!(burst_got.len(), BURST, "every burst record once");
    assert!(burst_got == want_burst, "burst records out of order");
    assert_eq!(
        got.iter().filter(|m| *m == "late 0").count(),
        1,
        "the late record once"
    );
    assert_eq!(got.last().map(String::as_str), Some("end 0"));
    assert_eq!(
        got.len(),
        BURST + 2,
        "nothing from before the tail, nothing twice"
    );
    h.shutdown().await;
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn a_grace_window_over_the_cap_is_told_and_counted_and_new_records_still_arrive() {
    let (_d, h, addr) = start(|c| {
        c.query.tail_grace_secs = 600;
        c.query.tail_late_window_records = 100;
    })
    .await;
    let before = support::scrape(addr).await;
    let gaps = |text: &str| {
        metric(
            text,
            "killkrill_logs_tail_gaps_total",
            &[("reason", "late_window_full")],
        )
    };
    let base = Timestamp::now();
    // 150 records in the window at connect: the newest 100 are remembered,
    // the 101st newest ("old 49") is the newest forgotten key.
    let old = records("old", base, 1, 150);
    let until = old[49].timestamp;
    write(&h.store, old).await;
    let (_, s) = Sse::open(addr, &support::api_key(addr), "host=h").await;
    let mut s = s.unwrap();
    let first = s.read_until(|_| true).await;
    assert_eq!(first.len(), 1, "{first:?}");
    assert_eq!(first[0].name, "gap", "{first:?}");
    let gap: serde_json::Value = serde_json::from_str(&first[0].data).unwrap();
    assert_eq!(gap["reason"], "late_window_full");
    assert_eq!(gap["limit"], "query.tail_late_window_records");
    assert_eq!(gap["until"], until.to_string());
    // 300 new records: all arrive, in order, though only 100 keys are kept.
    let new_base = base.saturating_add_nanos(1_000_000_000);
    let new = records("new", new_base, 1_000, 300);
    let inside = new[250].timestamp.saturating_add_nanos(1);
    write(&h.store, new).await;
    let events = s.read_until(|e| e.data.contains("\"new 299\"")).await;
    let want: Vec<String> = (0..300).map(|i| format!("new {i}")).collect();
    assert_eq!(messages(&events), want);
    // Two late records: one behind the remembered keys (in the gap, not
    // tailed: that is what the gap said), one among them (tailed); then a
    // marker.
    write(
        &h.store,
        records("late-in-gap", base.saturating_add_nanos(10_500), 900, 1),
    )
    .await;
    write(&h.store, records("late-kept", inside, 5_000, 1)).await;
    write(
        &h.store,
        records(
            "marker",
            new_base.saturating_add_nanos(1_000_000_000),
            9_000,
            1,
        ),
    )
    .await;
    let events = s.read_until(|e| e.data.contains("\"marker 0\"")).await;
    assert_eq!(messages(&events), vec!["late-kept 0", "marker 0"]);
    assert!(
        events.iter().all(|e| e.name == "log"),
        "one gap is told once: {events:?}"
    );
    let after = support::scrape(addr).await;
    assert_eq!(gaps(&after) - gaps(&before), 1.0);
    h.shutdown().await;
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn a_reader_slower_than_the_grace_window_gets_every_record() {
    // 25,000 records of 1 KiB (more than 20 pages, more than socket
    // buffers hold) read at most 1,000 per 600 ms: the tail needs well over
    // ten seconds. Their event time is 6 s ahead of the clock, so encoding
    // and committing them (several transactions, slow in a debug build)
    // stays inside the 2 s grace window; reading them does not, so the
    // tail is behind the clock at its second poll and must read on from
    // its last key, not from the window's start.
    const BURST: usize = 25_000;
    let (_d, h, addr) = start(|c| {
        c.query.tail_grace_secs = 2;
        c.query.tail_late_window_records = 100_000;
        c.query.tail_buffer_events = 256;
        c.query.tail_poll_ms = 2_000;
    })
    .await;
    let (_, s) = Sse::open_small(addr, &support::api_key(addr), "host=h").await;
    let mut s = s.unwrap();
    let pad = format!(" {}", "p".repeat(1_024));
    let t0 = std::time::Instant::now();
    let ahead = Timestamp::now().saturating_add_nanos(6_000_000_000);
    let mut burst = records("burst", ahead, 1, BURST);
    for r in &mut burst {
        r.message
            .as_mut()
            .unwrap()
            .extend_from_slice(pad.as_bytes());
    }
    write(&h.store, burst).await;
    let written = t0.elapsed();
    assert!(
        written < Duration::from_secs(7),
        "writing the burst took {written:?}: its records would be committed \
         after the grace window, which this test is not about"
    );
    // A marker after the whole burst in key order.
    write(
        &h.store,
        records(
            "end",
            ahead.saturating_add_nanos(1_000_000_000),
            1_000_000,
            1,
        ),
    )
    .await;
    let mut got = Vec::new();
    let mut others = Vec::new();
    let mut seen = 0usize;
    loop {
        let events = s
            .read_until(|e| {
                seen += 1;
                seen.is_multiple_of(1_000) || e.data.contains("\"end 0\"")
            })
            .await;
        assert!(
            !events.is_empty(),
            "the stream stalled after {} records",
            got.len()
        );
        let mut end = false;
        for e in &events {
            if e.name != "log" {
                others.push(format!("{}: {}", e.name, e.data));
            }
        }
        for m in messages(&events) {
            end |= m == "end 0";
            got.push(m.split(' ').take(2).collect::<Vec<_>>().join(" "));
        }
        if end || !others.is_empty() {
            break;
        }
        tokio::time::sleep(Duration::from_millis(600)).await;
    }
    assert!(others.is_empty(), "only records expected: {others:?}");
    let mut want: Vec<String> = (0..BURST).map(|i| format!("burst {i}")).collect();
    want.push("end 0".to_owned());
    assert_eq!(got.len(), want.len(), "every record once");
    assert!(got == want, "records out of order");
    h.shutdown().await;
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn an_idle_tail_skips_its_polls_until_a_commit() {
    let (_d, h, addr) = start(|c| {
        // A full grace window that each poll would re-read.
        c.query.tail_grace_secs = 600;
    })
    .await;
    let polls = |text: &str, result: &str| {
        metric(
            text,
            "killkrill_logs_tail_polls_total",
            &[("result", result)],
        )
    };
    let base = Timestamp::now();
    write(&h.store, records("old", base, 1, 500)).await;
    let (_, s) = Sse::open(addr, &support::api_key(addr), "host=h").await;
    let mut s = s.unwrap();
    // Polls every 100 ms; nothing is committed for 1.5 s.
    tokio::time::sleep(Duration::from_millis(300)).await;
    let before = support::scrape(addr).await;
    tokio::time::sleep(Duration::from_millis(1_500)).await;
    let idle = support::scrape(addr).await;
    let read = polls(&idle, "read") - polls(&before, "read");
    let skipped = polls(&idle, "unchanged") - polls(&before, "unchanged");
    assert_eq!(read, 0.0, "an idle tail read the store");
    assert!(skipped >= 5.0, "polls skipped: {skipped}");
    // A commit: the next poll reads and sends it, then polls skip again.
    write(
        &h.store,
        records("new", base.saturating_add_nanos(1_000_000), 1_000, 1),
    )
    .await;
    let events = s.read_until(|e| e.data.contains("\"new 0\"")).await;
    assert_eq!(messages(&events), vec!["new 0"]);
    let after = support::scrape(addr).await;
    assert!(
        polls(&after, "read") - polls(&idle, "read") >= 1.0,
        "the commit was read"
    );
    h.shutdown().await;
}
