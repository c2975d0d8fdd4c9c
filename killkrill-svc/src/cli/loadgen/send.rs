//! The senders, one task per connection.

use std::io::Write as _;
use std::sync::atomic::Ordering;
use std::time::{Duration, Instant};

use prost::Message as _;
use tokio::io::{AsyncReadExt, AsyncWriteExt};
use tokio::net::{TcpStream, UdpSocket};

use super::{ConnReport, Framing, Plan, SyslogFormat};

/// Messages built per write.
const CHUNK: u64 = 256;
/// The RFC 5424 header of every message (no timestamp: the receiver stamps
/// the receive time).
const HEADER: &[u8] = b"<14>1 - lghost loadgen - lg - ";

fn push_range(acked: &mut Vec<std::ops::Range<u64>>, r: std::ops::Range<u64>) {
    if let Some(last) = acked.last_mut()
        && last.end == r.start
    {
        last.end = r.end;
        return;
    }
    if !r.is_empty() {
        acked.push(r);
    }
}

/// Waits until the plan allows index `k`, or returns how many may be sent
/// now (at most `max`); `None` when the run is over.
async fn next_allowance(plan: &Plan, k: u64, max: u64) -> Option<u64> {
    loop {
        if plan.over() || k >= plan.per_conn_count {
            return None;
        }
        let allowed = plan.allowed();
        if allowed > k {
            return Some((allowed - k).min(max));
        }
        tokio::time::sleep(Duration::from_millis(1)).await;
    }
}

fn syslog_message(plan: &Plan, seq: u64, out: &mut Vec<u8>) {
    let start = out.len();
    match plan.args.format {
        SyslogFormat::Rfc5424 => out.extend_from_slice(HEADER),
        SyslogFormat::Rfc3164 => {
            out.extend_from_slice(b"<14>");
            out.extend_from_slice(&bsd_timestamp(std::time::SystemTime::now()));
            out.extend_from_slice(b" lghost loadgen: ");
        }
    }
    let header = out.len() - start;
    plan.message(seq, out, plan.args.size.saturating_sub(header));
}

/// RFC 3164's `Mmm dd hh:mm:ss` (UTC), day padded with a space.
pub(crate) fn bsd_timestamp(t: std::time::SystemTime) -> Vec<u8> {
    const MONTHS: [&str; 12] = [
        "Jan", "Feb", "Mar", "Apr", "May", "Jun", "Jul", "Aug", "Sep", "Oct", "Nov", "Dec",
    ];
    let secs = t
        .duration_since(std::time::UNIX_EPOCH)
        .map_or(0, |d| d.as_secs());
    let days = (secs / 86_400) as i64;
    let rem = secs % 86_400;
    // Civil date from days since 1970-01-01 (H. Hinnant's algorithm).
    let z = days + 719_468;
    let era = z.div_euclid(146_097);
    let doe = z - era * 146_097;
    let yoe = (doe - doe / 1_460 + doe / 36_524 - doe / 146_096) / 365;
    let doy = doe - (365 * yoe + yoe / 4 - yoe / 100);
    let mp = (5 * doy + 2) / 153;
    let day = doy - (153 * mp + 2) / 5 + 1;
    let month = if mp < 10 { mp + 3 } else { mp - 9 };
    format!(
        "{} {day:>2} {:02}:{:02}:{:02}",
        MONTHS[(month - 1) as usize],
        rem / 3_600,
        rem % 3_600 / 60,
        rem % 60
    )
    .into_bytes()
}

/// Syslog over TCP: written is acknowledged.
pub(crate) async fn syslog_tcp(plan: &Plan, c: usize) -> ConnReport {
    let mut rep = ConnReport::default();
    let s = match TcpStream::connect(plan.args.target).await {
        Ok(s) => s,
        Err(_) => {
            rep.errors += 1;
            plan.counters.errors.fetch_add(1, Ordering::Relaxed);
            return rep;
        }
    };
    let _ = s.set_nodelay(true);
    syslog_stream(plan, c, s, rep).await
}

/// Syslog over TLS: written (into the TLS session) is acknowledged.
pub(crate) async fn syslog_tls(plan: &Plan, c: usize) -> ConnReport {
    let mut rep = ConnReport::default();
    let Some(tls) = plan.tls.as_ref() else {
        rep.errors += 1;
        return rep;
    };
    let connected = async {
        let s = TcpStream::connect(plan.args.target).await?;
        let _ = s.set_nodelay(true);
        tls.connector.connect(tls.name.clone(), s).await
    };
    match connected.await {
        Ok(s) => syslog_stream(plan, c, s, rep).await,
        Err(e) => {
            if c == 0 {
                tracing::warn!(error = %e, "TLS connection failed");
            }
            rep.errors += 1;
            plan.counters.errors.fetch_add(1, Ordering::Relaxed);
            rep
        }
    }
}

/// Sends this connection's share over a connected stream, then half-closes
/// and waits for the receiver to close.
async fn syslog_stream<S>(plan: &Plan, c: usize, mut s: S, mut rep: ConnReport) -> ConnReport
where
    S: tokio::io::AsyncRead + tokio::io::AsyncWrite + Unpin,
{
    let mut buf = Vec::with_capacity(CHUNK as usize * (plan.args.size + 8));
    let mut msg = Vec::with_capacity(plan.args.size + 8);
    let mut k = 0u64;
    while let Some(n) = next_allowance(plan, k, CHUNK).await {
        buf.clear();
        for i in 0..n {
            msg.clear();
            syslog_message(plan, plan.seq(c, k + i), &mut msg);
            match plan.args.framing {
                Framing::Octet => {
                    let _ = write!(buf, "{} ", msg.len());
                    buf.extend_from_slice(&msg);
                }
                Framing::Lf => {
                    buf.extend_from_slice(&msg);
                    buf.push(b'\n');
                }
            }
        }
        plan.counters.sent.fetch_add(n, Ordering::Relaxed);
        if s.write_all(&buf).await.is_err() {
            rep.errors += n;
            plan.counters.errors.fetch_add(n, Ordering::Relaxed);
            break;
        }
        plan.counters.acked.fetch_add(n, Ordering::Relaxed);
        push_range(&mut rep.acked, k..k + n);
        k += n;
    }
    // Half-close and wait for the receiver to close its side: it has read
    // everything then.
    let _ = s.shutdown().await;
    let mut sink = [0u8; 1024];
    let _ = tokio::time::timeout(Duration::from_secs(30), async {
        while let Ok(n) = s.read(&mut sink).await {
            if n == 0 {
                break;
            }
        }
    })
    .await;
    rep
}

/// RFC 5424 over UDP, one datagram each: sent counts as acknowledged (UDP
/// has no acknowledgement; `--verify` reports losses without failing).
pub(crate) async fn syslog_udp(plan: &Plan, c: usize) -> ConnReport {
    let mut rep = ConnReport::default();
    let bind = if plan.args.target.is_ipv4() {
        "0.0.0.0:0"
    } else {
        "[::]:0"
    };
    let s = match UdpSocket::bind(bind).await {
        Ok(s) => s,
        Err(_) => {
            rep.errors += 1;
            return rep;
        }
    };
    if s.connect(plan.args.target).await.is_err() {
        rep.errors += 1;
        return rep;
    }
    let mut msg = Vec::with_capacity(plan.args.size + 8);
    let mut k = 0u64;
    while let Some(n) = next_allowance(plan, k, CHUNK).await {
        for i in 0..n {
            msg.clear();
            syslog_message(plan, plan.seq(c, k + i), &mut msg);
            plan.counters.sent.fetch_add(1, Ordering::Relaxed);
            if s.send(&msg).await.is_ok() {
                plan.counters.acked.fetch_add(1, Ordering::Relaxed);
                push_range(&mut rep.acked, k + i..k + i + 1);
            } else {
                rep.errors += 1;
                plan.counters.errors.fetch_add(1, Ordering::Relaxed);
            }
        }
        k += n;
    }
    rep
}

/// A keep-alive HTTP/1.1 connection that posts bodies and reads answers.
struct HttpConn {
    addr: std::net::SocketAddr,
    stream: Option<TcpStream>,
    buf: Vec<u8>,
}

/// An answer: status and Retry-After seconds.
struct Answer {
    status: u16,
    retry_after: Option<u64>,
}

impl HttpConn {
    fn new(addr: std::net::SocketAddr) -> Self {
        HttpConn {
            addr,
            stream: None,
            buf: Vec::with_capacity(4096),
        }
    }

    async fn post(&mut self, head: &[u8], body: &[u8]) -> std::io::Result<Answer> {
        if self.stream.is_none() {
            let s = TcpStream::connect(self.addr).await?;
            let _ = s.set_nodelay(true);
            self.stream = Some(s);
        }
        let r = self.exchange(head, body).await;
        if r.is_err() {
            self.stream = None;
        }
        r
    }

    async fn exchange(&mut self, head: &[u8], body: &[u8]) -> std::io::Result<Answer> {
        let closed = || std::io::Error::new(std::io::ErrorKind::UnexpectedEof, "closed");
        let s = self.stream.as_mut().ok_or_else(closed)?;
        s.write_all(head).await?;
        s.write_all(body).await?;
        self.buf.clear();
        let end = loop {
            if let Some(p) = self.buf.windows(4).position(|w| w == b"\r\n\r\n") {
                break p + 4;
            }
            if self.buf.len() > 64 * 1024 {
                return Err(std::io::Error::other("response head too large"));
            }
            let mut chunk = [0u8; 4096];
            let n = s.read(&mut chunk).await?;
            if n == 0 {
                return Err(closed());
            }
            self.buf.extend_from_slice(&chunk[..n]);
        };
        let head = String::from_utf8_lossy(&self.buf[..end]).into_owned();
        let mut lines = head.split("\r\n");
        let status: u16 = lines
            .next()
            .and_then(|l| l.split(' ').nth(1))
            .and_then(|v| v.parse().ok())
            .ok_or_else(|| std::io::Error::other("bad status line"))?;
        let mut len = 0usize;
        let mut retry_after = None;
        let mut close = false;
        for l in lines {
            let Some((k, v)) = l.split_once(':') else {
                continue;
            };
            let v = v.trim();
            if k.eq_ignore_ascii_case("content-length") {
                len = v.parse().unwrap_or(0);
            } else if k.eq_ignore_ascii_case("retry-after") {
                retry_after = v.parse().ok();
            } else if k.eq_ignore_ascii_case("connection") && v.eq_ignore_ascii_case("close") {
                close = true;
            }
        }
        let mut have = self.buf.len() - end;
        while have < len {
            let mut chunk = [0u8; 4096];
            let n = s.read(&mut chunk).await?;
            if n == 0 {
                return Err(closed());
            }
            have += n;
        }
        if close {
            self.stream = None;
        }
        Ok(Answer {
            status,
            retry_after,
        })
    }
}

/// Posts one request until it is answered 2xx (retrying 429 and 503 after
/// their Retry-After), or fails. Returns whether it was acknowledged.
async fn post_acked(
    plan: &Plan,
    conn: &mut HttpConn,
    head: &[u8],
    body: &[u8],
    rep: &mut ConnReport,
) -> bool {
    let give_up = plan.deadline + Duration::from_secs(30);
    loop {
        let t = Instant::now();
        match conn.post(head, body).await {
            Ok(a) if (200..300).contains(&a.status) => {
                rep.latencies_us.push(t.elapsed().as_micros() as u64);
                return true;
            }
            Ok(a) if (a.status == 429 || a.status == 503) && Instant::now() < give_up => {
                rep.retries += 1;
                let wait = a
                    .retry_after
                    .map_or(100, |s| s.saturating_mul(1000).min(2_000));
                tokio::time::sleep(Duration::from_millis(wait.max(20))).await;
            }
            Ok(_) | Err(_) => return false,
        }
    }
}

/// Posts the request for indices `ks`, counting them sent, and
/// acknowledged or failed.
async fn send_counted(
    plan: &Plan,
    conn: &mut HttpConn,
    (head, body): (&[u8], &[u8]),
    ks: std::ops::Range<u64>,
    rep: &mut ConnReport,
) {
    let n = ks.end - ks.start;
    plan.counters.sent.fetch_add(n, Ordering::Relaxed);
    if post_acked(plan, conn, head, body, rep).await {
        plan.counters.acked.fetch_add(n, Ordering::Relaxed);
        push_range(&mut rep.acked, ks);
    } else {
        rep.errors += n;
        plan.counters.errors.fetch_add(n, Ordering::Relaxed);
    }
}

fn request_head(plan: &Plan, path: &str, extra: &str, len: usize) -> Vec<u8> {
    let addr = plan.args.target;
    let auth = &plan.auth_header;
    format!("POST {path} HTTP/1.1\r\nHost: {addr}\r\n{auth}{extra}Content-Length: {len}\r\n\r\n")
        .into_bytes()
}

/// NDJSON to `/api/v1/logs`.
pub(crate) async fn http_logs(plan: &Plan, c: usize) -> ConnReport {
    let mut rep = ConnReport::default();
    let mut conn = HttpConn::new(plan.args.target);
    let mut body = Vec::with_capacity(plan.args.batch * (plan.args.size + 16));
    let mut k = 0u64;
    let line_overhead = "{\"msg\":\"\"}\n".len();
    while let Some(n) = next_allowance(plan, k, plan.args.batch as u64).await {
        body.clear();
        for i in 0..n {
            body.extend_from_slice(b"{\"msg\":\"");
            plan.message(
                plan.seq(c, k + i),
                &mut body,
                plan.args.size.saturating_sub(line_overhead),
            );
            body.extend_from_slice(b"\"}\n");
        }
        let head = request_head(
            plan,
            "/api/v1/logs",
            "Content-Type: application/x-ndjson\r\n",
            body.len(),
        );
        send_counted(plan, &mut conn, (&head, &body), k..k + n, &mut rep).await;
        k += n;
    }
    rep
}

/// The series labels of connection `c`, series `s`, for remote_write.
fn rw_labels(plan: &Plan, c: usize, s: u64) -> Vec<killkrill_proto::prometheus::Label> {
    let l = |name: &str, value: String| killkrill_proto::prometheus::Label {
        name: name.to_owned(),
        value,
    };
    let mut labels = vec![
        l("__name__", "loadgen_seq".into()),
        l("lg_conn", c.to_string()),
    ];
    // Sorted by name, as Prometheus sends them: `lg_l<i>` < `lg_run`.
    labels.extend((0..plan.args.labels).map(|i| l(&format!("lg_l{i:02}"), format!("{s:020}"))));
    labels.push(l("lg_run", plan.run.clone()));
    labels.push(l("lg_s", s.to_string()));
    labels
}

/// Timestamps start here (ms): ten minutes ago, so a 60 s run at a high
/// rate stays in the past (each series advances 1 ms per sample).
pub(crate) fn rw_base_ms() -> i64 {
    let now = std::time::SystemTime::now()
        .duration_since(std::time::UNIX_EPOCH)
        .map_or(0, |d| d.as_millis() as i64);
    now - 600_000
}

/// remote_write 1.0 to `/api/v1/write`: sample `k` of connection `c` is
/// series `k % S` at `base + k / S` ms with value `seq` (`S` = `--series`).
pub(crate) async fn remote_write(plan: &Plan, c: usize) -> ConnReport {
    let mut rep = ConnReport::default();
    let mut conn = HttpConn::new(plan.args.target);
    let base = rw_base_ms();
    let series_n = plan.args.series;
    let labels: Vec<_> = (0..series_n).map(|s| rw_labels(plan, c, s)).collect();
    let mut encoded = Vec::new();
    let mut k = 0u64;
    while let Some(n) = next_allowance(plan, k, plan.args.batch as u64).await {
        let mut series: Vec<killkrill_proto::prometheus::TimeSeries> = Vec::new();
        let mut index = vec![usize::MAX; series_n as usize];
        for i in 0..n {
            let kk = k + i;
            let s = (kk % series_n) as usize;
            if index[s] == usize::MAX {
                index[s] = series.len();
                series.push(killkrill_proto::prometheus::TimeSeries {
                    labels: labels[s].clone(),
                    ..Default::default()
                });
            }
            series[index[s]]
                .samples
                .push(killkrill_proto::prometheus::Sample {
                    value: plan.seq(c, kk) as f64,
                    timestamp: base + (kk / series_n) as i64,
                });
        }
        let req = killkrill_proto::prometheus::WriteRequest {
            timeseries: series,
            ..Default::default()
        };
        encoded.clear();
        if req.encode(&mut encoded).is_err() {
            rep.errors += n;
            k += n;
            continue;
        }
        let body = match snap::raw::Encoder::new().compress_vec(&encoded) {
            Ok(b) => b,
            Err(_) => {
                rep.errors += n;
                k += n;
                continue;
            }
        };
        let head = request_head(
            plan,
            "/api/v1/write",
            "Content-Type: application/x-protobuf\r\nContent-Encoding: snappy\r\nX-Prometheus-Remote-Write-Version: 0.1.0\r\n",
            body.len(),
        );
        send_counted(plan, &mut conn, (&head, &body), k..k + n, &mut rep).await;
        k += n;
    }
    rep
}

#[cfg(test)]
#[allow(clippy::unwrap_used)]
mod tests {
    use std::time::{Duration, UNIX_EPOCH};

    use super::bsd_timestamp;

    #[test]
    fn bsd_timestamps_are_rfc3164() {
        let at =
            |s: u64| String::from_utf8(bsd_timestamp(UNIX_EPOCH + Duration::from_secs(s))).unwrap();
        assert_eq!(at(0), "Jan  1 00:00:00");
        // 2024-02-29 13:45:07 UTC (a leap day).
        assert_eq!(at(1_709_214_307), "Feb 29 13:45:07");
        // 2026-11-26 04:59:00 UTC.
        assert_eq!(at(1_795_669_140), "Nov 26 04:59:00");
        assert_eq!(at(1_795_669_140 + 40 * 86_400), "Jan  5 04:59:00");
    }
}
