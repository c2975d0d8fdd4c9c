//! Realistic log records for the log store benchmark: ≈200-byte messages,
//! 20 hosts, 8 apps, skewed severities, a request id per message (the
//! high-cardinality tokens real logs have) and rare tokens.

use killkrill_core::event::{
    EventIdGenerator, FieldValue, LogRecord, NANOS_PER_SEC, SdElement, Severity, Tenant, Timestamp,
};

/// Nanoseconds in a day.
pub const DAY: i64 = 86_400 * NANOS_PER_SEC;
/// Start of the generated day.
pub const T0: i64 = 1_764_000_000 * NANOS_PER_SEC;
/// Tokens that occur about once in 2,000,000 records each.
pub const RARE: [&str; 8] = [
    "zebracorn",
    "quokkafail",
    "narwhalpanic",
    "axolotlfault",
    "okapierr",
    "dugongstall",
    "tapirjam",
    "numbatloop",
];

/// xorshift64*: fast, deterministic.
struct Rng(u64);
impl Rng {
    fn next(&mut self) -> u64 {
        self.0 ^= self.0 >> 12;
        self.0 ^= self.0 << 25;
        self.0 ^= self.0 >> 27;
        self.0.wrapping_mul(0x2545_F491_4F6C_DD1D)
    }
    fn below(&mut self, n: u64) -> u64 {
        self.next() % n
    }
}

const VERBS: [&str; 12] = [
    "GET",
    "POST",
    "PUT",
    "DELETE",
    "accepted",
    "closed",
    "opened",
    "started",
    "finished",
    "retrying",
    "failed",
    "timed out",
];
pub const NOUNS: [&str; 16] = [
    "connection",
    "request",
    "session",
    "upstream",
    "client",
    "worker",
    "query",
    "transaction",
    "cache",
    "job",
    "socket",
    "handshake",
    "user",
    "token",
    "payload",
    "stream",
];
const PATHS: [&str; 10] = [
    "/api/v1/users",
    "/api/v1/orders",
    "/healthz",
    "/metrics",
    "/login",
    "/api/v1/items",
    "/static/app.js",
    "/api/v2/search",
    "/logout",
    "/api/v1/cart",
];

/// A realistic record: ~200-byte message, 20 hosts, 8 apps, skewed
/// severities, request ids (high-cardinality tokens), rare tokens 1 in 250k.
fn make(
    rng: &mut Rng,
    ids: &EventIdGenerator,
    tenant: &Tenant,
    ts: i64,
    rare_every: u64,
) -> LogRecord {
    let host = format!("web{:02}", rng.below(20));
    let app = [
        "nginx", "api", "worker", "postgres", "redis", "auth", "cron", "billing",
    ][rng.below(8) as usize];
    let sev = match rng.below(1000) {
        0..=1 => Severity::Critical,
        2..=11 => Severity::Error,
        12..=61 => Severity::Warning,
        62..=161 => Severity::Notice,
        162..=861 => Severity::Informational,
        _ => Severity::Debug,
    };
    let mut m = String::with_capacity(240);
    use std::fmt::Write as _;
    let _ = write!(
        m,
        "{} {} {} from 10.{}.{}.{} status={} bytes={} duration={}ms request_id={:016x} {} {} after {} attempts",
        VERBS[rng.below(12) as usize],
        PATHS[rng.below(10) as usize],
        NOUNS[rng.below(16) as usize],
        rng.below(4),
        rng.below(256),
        rng.below(256),
        [200, 200, 200, 201, 204, 301, 404, 500, 503][rng.below(9) as usize],
        rng.below(100_000),
        rng.below(5_000),
        rng.next(),
        NOUNS[rng.below(16) as usize],
        VERBS[rng.below(12) as usize],
        rng.below(5),
    );
    if rng.below(rare_every) == 0 {
        m.push(' ');
        m.push_str(RARE[rng.below(RARE.len() as u64) as usize]);
    }
    while m.len() < 200 {
        m.push_str(" ok");
    }
    LogRecord {
        id: Some(ids.next(Timestamp::from_nanos(ts))),
        tenant: Some(tenant.clone()),
        timestamp: Timestamp::from_nanos(ts),
        severity: Some(sev),
        facility: Some(killkrill_core::event::Facility::Local0),
        host: Some(host),
        app: Some(app.to_owned()),
        procid: Some(rng.below(30_000).to_string()),
        msgid: None,
        structured_data: if rng.below(10) == 0 {
            vec![SdElement {
                id: "meta@1".into(),
                params: vec![(
                    "region".into(),
                    ["eu", "us", "ap"][rng.below(3) as usize].into(),
                )],
            }]
        } else {
            Vec::new()
        },
        message: Some(m.into_bytes()),
        source: Some("syslog-tcp".into()),
        attributes: vec![("pid".into(), FieldValue::Int(rng.below(30_000) as i64))],
        parse_error: None,
    }
}

/// `n` records spread evenly over 24 hours from T0, in time order.
pub fn generate(
    n: usize,
    start: usize,
    total: usize,
    seed: u64,
    tenant: &Tenant,
) -> Vec<LogRecord> {
    let mut rng = Rng(seed | 1);
    let ids = EventIdGenerator::with_prefix(seed as u32);
    (start..start + n)
        .map(|i| {
            let ts = T0 + (i as i128 * i128::from(DAY) / total.max(1) as i128) as i64;
            make(&mut rng, &ids, tenant, ts, 250_000)
        })
        .collect()
}
