//! Unit tests of `bsd_timestamp.rs`.

use super::*;
use crate::syslog::options::Clock;

fn now(s: &str) -> Timestamp {
    Timestamp::parse_rfc3339(s).unwrap()
}

#[test]
fn year_is_the_one_closest_to_now() {
    let cases: &[(u32, u32, &str, i32)] = &[
        (12, 31, "2026-01-01T00:10:00Z", 2025),
        (1, 1, "2025-12-31T23:50:00Z", 2026),
        (6, 15, "2026-06-14T00:00:00Z", 2026),
        (7, 1, "2026-01-01T00:00:00Z", 2026),
        (7, 3, "2026-01-01T00:00:00Z", 2025),
    ];
    for (m, d, n, want) in cases {
        assert_eq!(infer_year(*m, *d, 0, now(n)), *want, "{m}/{d} at {n}");
    }
}

/// The shortcut for dates near now against comparing all three
/// candidates, for every day of the year around several "now"s.
#[test]
fn closest_shortcut_agrees_with_three_candidates() {
    for n in [
        "2026-11-26T00:00:00Z",
        "2024-02-29T23:59:59Z",
        "2025-06-30T12:00:00Z",
        "2027-01-01T00:00:00Z",
    ] {
        let y = NowYear::new(now(n));
        for month in 1..=12 {
            for day in 1..=31 {
                for sod in [0, 43_199, 86_399] {
                    let m = month as usize - 1;
                    let rel = sod - y.secs;
                    assert_eq!(
                        y.closest(month, day, sod),
                        y.closest_of_three(m, i64::from(day) - 1, rel),
                        "{n} {month}/{day} {sod}"
                    );
                }
            }
        }
    }
}

#[test]
fn variants() {
    let opts = ParseOptions::default().with_clock(Clock::Fixed(now("2026-03-10T12:00:00Z")));
    let cases: &[(&str, &str, usize, bool)] = &[
        ("Mar  1 18:48:50 host", "2026-03-01T18:48:50Z", 15, false),
        ("Mar 01 18:48:50 host", "2026-03-01T18:48:50Z", 15, false),
        ("Mar 1 18:48:50 host", "2026-03-01T18:48:50Z", 14, false),
        (
            "*Mar  1 18:48:50.483 UTC: %SYS",
            "2026-03-01T18:48:50.483Z",
            25,
            true,
        ),
        (".Mar  1 18:48:50: %SYS", "2026-03-01T18:48:50Z", 17, true),
        (
            "Jan 12 2011 06:30:00: %ASA",
            "2011-01-12T06:30:00Z",
            21,
            true,
        ),
        (
            "2019-02-13T21:53:30.605850+01:00 h",
            "2019-02-13T20:53:30.60585Z",
            32,
            false,
        ),
        ("2019-02-13T21:53:30 h", "2019-02-13T21:53:30Z", 19, false),
        ("Feb 29 00:00:00", "2028-02-29T00:00:00Z", 15, false),
    ];
    for (text, want, end, colon) in cases {
        let opts = if text.starts_with("Feb 29") {
            opts.clone()
                .with_clock(Clock::Fixed(now("2028-03-01T00:00:00Z")))
        } else {
            opts.clone()
        };
        let f = parse(text.as_bytes(), 0, &opts, &Now::new(&opts))
            .unwrap()
            .unwrap();
        assert_eq!((f.ts, f.end, f.colon), (now(want), *end, *colon), "{text}");
    }
    for not_ts in [
        "pyapp: hi",
        "Mayday",
        "Mar x",
        "Mar 123 x",
        "12345",
        "Jan 5 meeting",
    ] {
        assert_eq!(
            parse(not_ts.as_bytes(), 0, &opts, &Now::new(&opts)).unwrap(),
            None,
            "{not_ts}"
        );
    }
    let bad: &[(&str, ParseErrorKind, usize)] = &[
        ("Mar 32 00:00:00 h", ParseErrorKind::Timestamp, 4),
        ("Mar  1 24:00:00 h", ParseErrorKind::Timestamp, 7),
        ("Mar  1 10:00 h", ParseErrorKind::Timestamp, 12),
        (
            "Feb 29 10:00:00 h",
            ParseErrorKind::TimestampDateNonexistent,
            4,
        ),
        ("Mar  1 10:00:00x", ParseErrorKind::Timestamp, 15),
    ];
    for (text, kind, col) in bad {
        let e = parse(text.as_bytes(), 0, &opts, &Now::new(&opts)).unwrap_err();
        assert_eq!((e.kind(), e.column()), (*kind, *col), "{text}");
    }
}

/// The fast path against the careful parser on every month spelling,
/// day, hour, minute and second edge and a wrong byte at every position
/// of the layout.
#[test]
fn fast_path_agrees_with_the_careful_parser() {
    let opts = ParseOptions::default().with_clock(Clock::Fixed(now("2026-03-10T12:00:00Z")));
    let now = Now::new(&opts);
    let mut texts = Vec::new();
    for mon in [
        "Jan", "feb", "MAR", "aPr", "May", "Jun", "Jul", "Aug", "Sep", "Oct", "Nov", "Dec",
    ] {
        for day in [
            " 1", "01", " 0", "00", "09", "10", "28", "29", "30", "31", "32", "39", "1 ",
        ] {
            for time in [
                "00:00:00", "23:59:59", "23:59:60", "24:00:00", "19:60:00", "09:59:61",
            ] {
                texts.push(format!("{mon} {day} {time} host app: m"));
            }
        }
    }
    let base = b"Feb 28 13:37:42 host tag[1]: text".to_vec();
    for at in 0..16 {
        for c in [
            b' ', b'0', b'9', b'/', b':', b';', b'a', b'Z', b'@', b'`', 0x80, 0xff,
        ] {
            let mut t = base.clone();
            t[at] = c;
            texts.push(String::from_utf8_lossy(&t).into_owned());
            for len in 14..=16 {
                texts.push(String::from_utf8_lossy(&t[..len]).into_owned());
            }
        }
    }
    for t in &texts {
        let b = t.as_bytes();
        for pos in [0, 1] {
            let fast = parse(b, pos, &opts, &now);
            let careful = parse_careful(b, pos, &opts, &now);
            assert_eq!(fast, careful, "{t:?} at {pos}");
        }
    }
    for m in 0..=u8::MAX {
        for n in [b'a', b'A', b'o', b'O'] {
            let t = [m, n, b'v'];
            let want = t.eq_ignore_ascii_case(b"nov").then_some(11);
            assert_eq!(month(&t), want, "{t:?}");
        }
    }
}

#[test]
fn named_zone_applies_when_no_offset() {
    let opts = ParseOptions::default()
        .with_clock(Clock::Fixed(now("2020-01-20T00:00:00Z")))
        .with_time_zone_name("Europe/Paris")
        .unwrap();
    let winter = parse(b"Jan  5 15:33:03 h", 0, &opts, &Now::new(&opts))
        .unwrap()
        .unwrap();
    assert_eq!(winter.ts, now("2020-01-05T14:33:03Z"));
    let opts = opts.with_clock(Clock::Fixed(now("2020-07-01T00:00:00Z")));
    let summer = parse(b"Jul  5 15:33:03 h", 0, &opts, &Now::new(&opts))
        .unwrap()
        .unwrap();
    assert_eq!(summer.ts, now("2020-07-05T13:33:03Z"));
}
