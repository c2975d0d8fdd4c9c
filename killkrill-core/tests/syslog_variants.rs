//! Real-world syslog variants, one line per case: what senders emit that the
//! RFCs do not quite describe. Every case is parsed leniently with an
//! explicit zone and "now" (2026-01-10T12:00:00Z unless the case says).

use killkrill_core::event::Timestamp;
use killkrill_core::framing::datagram_message;
use killkrill_core::syslog::{Clock, ParseOptions, Protocol, SyslogParser};

struct Want {
    proto: Protocol,
    pri: Option<u8>,
    ts: Option<&'static str>,
    host: Option<&'static str>,
    app: Option<&'static str>,
    pid: Option<&'static str>,
    msg: Option<&'static [u8]>,
    /// Kind of the lenient parse error, if one is expected.
    err: Option<&'static str>,
}

const B: Protocol = Protocol::Rfc3164;
const F: Protocol = Protocol::Rfc5424;

#[allow(clippy::too_many_arguments)]
const fn w(
    proto: Protocol,
    pri: Option<u8>,
    ts: Option<&'static str>,
    host: Option<&'static str>,
    app: Option<&'static str>,
    pid: Option<&'static str>,
    msg: Option<&'static [u8]>,
    err: Option<&'static str>,
) -> Want {
    Want {
        proto,
        pri,
        ts,
        host,
        app,
        pid,
        msg,
        err,
    }
}

#[rustfmt::skip]
const CASES: &[(&str, &str, &str, &[u8], Want)] = &[
    // name, zone, now, input, expected
    ("rsyslog forward format (RFC 3339 in 3164 layout)", "UTC", "", b"<190>2019-02-13T21:53:30.605850+00:00 74794bfb6795 liblogging-stdlog: hello", w(B, Some(190), Some("2019-02-13T21:53:30.60585Z"), Some("74794bfb6795"), Some("liblogging-stdlog"), None, Some(b"hello"), None)),
    ("RFC 3339 without offset uses the zone", "+02:00", "", b"<13>2026-01-10T08:00:00 host app: x", w(B, Some(13), Some("2026-01-10T06:00:00Z"), Some("host"), Some("app"), None, Some(b"x"), None)),
    ("Python SysLogHandler: no timestamp, no host, NUL", "UTC", "", b"<156>pyapp: msg\0", w(B, Some(156), None, None, Some("pyapp"), None, Some(b"msg"), None)),
    ("missing PRI", "UTC", "", b"Jan  9 10:00:00 host sshd[12]: Accepted", w(B, None, Some("2026-01-09T10:00:00Z"), Some("host"), Some("sshd"), Some("12"), Some(b"Accepted"), None)),
    ("December message received in January is last year", "UTC", "", b"<13>Dec 31 23:59:59 host app: x", w(B, Some(13), Some("2025-12-31T23:59:59Z"), Some("host"), Some("app"), None, Some(b"x"), None)),
    ("January message received in December is next year", "UTC", "2025-12-31T23:59:00Z", b"<13>Jan  1 00:00:30 host app: x", w(B, Some(13), Some("2026-01-01T00:00:30Z"), Some("host"), Some("app"), None, Some(b"x"), None)),
    ("named zone, summer time", "Europe/Paris", "2026-06-01T00:00:00Z", b"<13>Jul  1 10:00:00 host app: x", w(B, Some(13), Some("2026-07-01T08:00:00Z"), Some("host"), Some("app"), None, Some(b"x"), None)),
    ("named zone, winter time", "America/New_York", "", b"<13>Jan  9 10:00:00 host app: x", w(B, Some(13), Some("2026-01-09T15:00:00Z"), Some("host"), Some("app"), None, Some(b"x"), None)),
    ("day without padding", "UTC", "", b"<13>Jan 9 10:00:00 host app: x", w(B, Some(13), Some("2026-01-09T10:00:00Z"), Some("host"), Some("app"), None, Some(b"x"), None)),
    ("IPv6 hostname", "UTC", "", b"<13>Jan  9 10:00:00 2001:db8::1 app[7]: x", w(B, Some(13), Some("2026-01-09T10:00:00Z"), Some("2001:db8::1"), Some("app"), Some("7"), Some(b"x"), None)),
    ("IPv6 loopback hostname", "UTC", "", b"<13>Jan  9 10:00:00 ::1 app: x", w(B, Some(13), Some("2026-01-09T10:00:00Z"), Some("::1"), Some("app"), None, Some(b"x"), None)),
    ("tag[pid]: without a space", "UTC", "", b"<13>Jan  9 10:00:00 host app[7]:x", w(B, Some(13), Some("2026-01-09T10:00:00Z"), Some("host"), Some("app"), Some("7"), Some(b"x"), None)),
    ("no host, tag[pid]:", "UTC", "", b"<133>Jan  9 10:00:00 haproxy[73411]: Proxy started.", w(B, Some(133), Some("2026-01-09T10:00:00Z"), None, Some("haproxy"), Some("73411"), Some(b"Proxy started."), None)),
    ("no tag: the rest is message", "UTC", "", b"<13>Jan  9 10:00:00 host just some text", w(B, Some(13), Some("2026-01-09T10:00:00Z"), Some("host"), None, None, Some(b"just some text"), None)),
    ("FortiGate key=value body stays the message", "UTC", "", b"<189>date=2019-05-10 time=11:37:47 devname=\"FG100E\" type=\"traffic\"", w(B, Some(189), None, None, None, None, Some(b"date=2019-05-10 time=11:37:47 devname=\"FG100E\" type=\"traffic\""), None)),
    ("Cisco IOS sequence number and timestamp", "UTC", "", b"<189>123: *Mar  1 18:48:50.483 UTC: %SYS-5-CONFIG_I: Configured from console", w(B, Some(189), Some("2026-03-01T18:48:50.483Z"), None, Some("%SYS-5-CONFIG_I"), None, Some(b"Configured from console"), None)),
    ("Cisco IOS origin host before the timestamp", "UTC", "", b"<189>58: router1: *Mar  1 18:48:50.483 UTC: %LINK-3-UPDOWN: up", w(B, Some(189), Some("2026-03-01T18:48:50.483Z"), Some("router1"), Some("%LINK-3-UPDOWN"), None, Some(b"up"), None)),
    ("Cisco ASA with a year", "UTC", "", b"<166>Jan 09 2026 06:30:00: %ASA-6-302013: Built outbound", w(B, Some(166), Some("2026-01-09T06:30:00Z"), None, Some("%ASA-6-302013"), None, Some(b"Built outbound"), None)),
    ("BOM before MSG is removed", "UTC", "", b"<13>Jan  9 10:00:00 host app: \xEF\xBB\xBFhello", w(B, Some(13), Some("2026-01-09T10:00:00Z"), Some("host"), Some("app"), None, Some(b"hello"), None)),
    ("invalid UTF-8 kept byte for byte", "UTC", "", b"<13>Jan  9 10:00:00 host app: caf\xE9 \xFF", w(B, Some(13), Some("2026-01-09T10:00:00Z"), Some("host"), Some("app"), None, Some(b"caf\xE9 \xFF"), None)),
    ("kernel timestamp is not structured data", "UTC", "", b"<4>Jan  9 10:00:00 ubnt kernel: [12345.678] eth0 up", w(B, Some(4), Some("2026-01-09T10:00:00Z"), Some("ubnt"), Some("kernel"), None, Some(b"[12345.678] eth0 up"), None)),
    ("[INFO] prefix is not structured data", "UTC", "", b"<14>Jan  9 10:00:00 h app: [INFO] started", w(B, Some(14), Some("2026-01-09T10:00:00Z"), Some("h"), Some("app"), None, Some(b"[INFO] started"), None)),
    ("Feb 29 in a non-leap inferred year is kept raw", "UTC", "2025-03-10T00:00:00Z", b"<13>Feb 29 10:00:00 h app: x", w(B, Some(13), None, None, None, None, Some(b"<13>Feb 29 10:00:00 h app: x"), Some("timestamp_date_nonexistent"))),
    ("impossible PRI is kept raw", "UTC", "", b"<999>Jan  9 10:00:00 h app: x", w(B, None, None, None, None, None, Some(b"<999>Jan  9 10:00:00 h app: x"), Some("prival"))),
    ("space after PRI", "UTC", "", b"<134> Jan  9 10:00:00 myhost sshd: hi", w(B, Some(134), Some("2026-01-09T10:00:00Z"), Some("myhost"), Some("sshd"), None, Some(b"hi"), None)),
    ("leading whitespace before PRI", "UTC", "", b"\r\n  <13>1 - h a - - - m", w(F, Some(13), None, Some("h"), Some("a"), None, Some(b"m"), None)),
    ("RFC 5424 without PRI", "UTC", "", b"1 2020-05-22T14:59:09.250-03:00 OX-MX204 rpd 6589 - - bgp up", w(F, None, Some("2020-05-22T17:59:09.25Z"), Some("OX-MX204"), Some("rpd"), Some("6589"), Some(b"bgp up"), None)),
    ("RFC 5424 BOM is removed", "UTC", "", b"<165>1 2003-10-11T22:14:15.003Z h a - ID47 - \xEF\xBB\xBFhi", w(F, Some(165), Some("2003-10-11T22:14:15.003Z"), Some("h"), Some("a"), None, Some(b"hi"), None)),
];

#[test]
fn real_world_variants() {
    let mut failures = Vec::new();
    for (name, zone, now, input, want) in CASES {
        let now = if now.is_empty() {
            "2026-01-10T12:00:00Z"
        } else {
            now
        };
        let opts = ParseOptions::default()
            .with_clock(Clock::Fixed(Timestamp::parse_rfc3339(now).unwrap()))
            .with_time_zone_name(zone)
            .unwrap();
        let m = SyslogParser::new(opts).parse_lenient(datagram_message(input));
        let got = (
            m.protocol,
            m.priority(),
            m.timestamp,
            m.hostname,
            m.appname,
            m.procid,
            m.message,
            m.parse_error.map(|e| e.kind().as_str()),
        );
        let expected = (
            want.proto,
            want.pri,
            want.ts.map(|t| Timestamp::parse_rfc3339(t).unwrap()),
            want.host,
            want.app,
            want.pid,
            want.msg,
            want.err,
        );
        if got != expected {
            failures.push(format!("{name}:\n  got  {got:?}\n  want {expected:?}"));
        }
    }
    assert!(failures.is_empty(), "{}", failures.join("\n"));
}

#[test]
fn extras_sequence_bom_and_rsyslog_structured_data() {
    let p = SyslogParser::default();
    let m = p.parse_lenient(b"<189>123: *Mar  1 18:48:50.483 UTC: %SYS-5-CONFIG_I: x");
    assert_eq!(m.sequence, Some(123));
    let m = p.parse_lenient(b"<13>Jan  9 10:00:00 host app: \xEF\xBB\xBFhello");
    assert!(m.bom);
    let m = p.parse_lenient(
        br#"<46>Jan  5 15:33:03 host rsyslogd:  [origin software="rsyslogd" swVersion="8.32.0"] start"#,
    );
    let origin = m.structured_data.element("origin").unwrap();
    assert_eq!(origin.param("swVersion").unwrap(), "8.32.0");
    assert_eq!(m.message, Some(&b"start"[..]));
    let kv: Vec<(&str, &str)> = p
        .parse_lenient(br#"<189>date=2019-05-10 devname="FG 100E" srcip=10.1.100.11"#)
        .key_values()
        .map(|kv| (kv.key, kv.value))
        .collect();
    assert_eq!(
        kv,
        [
            ("date", "2019-05-10"),
            ("devname", "FG 100E"),
            ("srcip", "10.1.100.11")
        ]
    );
}

#[test]
fn strict_rfc3164_requires_pri_and_valid_timestamps() {
    let p = SyslogParser::default();
    type Case = (&'static [u8], Option<(&'static str, usize)>);
    let cases: &[Case] = &[
        (b"<13>Jan  9 10:00:00 host app: x", None),
        (b"<156>pyapp: msg", None),
        (b"Jan  9 10:00:00 host app: x", Some(("pri", 0))),
        (b"<13>Jan 32 10:00:00 host app: x", Some(("timestamp", 8))),
        (b"<13>Jan  9 10:61:00 host app: x", Some(("timestamp", 14))),
    ];
    for (input, want) in cases {
        let got = p
            .parse_strict(input)
            .err()
            .map(|e| (e.kind().as_str(), e.column()));
        assert_eq!(got, *want, "{}", String::from_utf8_lossy(input));
    }
}
