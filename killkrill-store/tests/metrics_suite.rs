//! The shared metric storage suite: every test runs on the in-memory model,
//! SQLite, and PostgreSQL / MySQL when their URLs are set.
#![allow(clippy::print_stderr, clippy::unwrap_used)]

mod metric_support;
mod support;

use killkrill_core::aggregate::{AggregateConfig, BatchId, Resolution, merge_partials};
use killkrill_core::event::{MetricSample, NANOS_PER_SEC, Timestamp};
use killkrill_core::storage::{
    ErrorKind, LabelMatcher, MatchOp, SeriesInfo, TimeRange, seen_bounds, series_id,
};
use metric_support::*;

const S: i64 = NANOS_PER_SEC;

fn range(a: i64, b: i64) -> TimeRange {
    TimeRange::new(Timestamp::from_nanos(a), Timestamp::from_nanos(b))
}

fn m(name: &str, op: MatchOp, value: &str) -> LabelMatcher {
    LabelMatcher::new(name, op, value).unwrap()
}

/// Three series of `http_requests_total` and one of `up`, 10 samples each
/// every 15 s, with special values in `up`.
fn dataset() -> Vec<MetricSample> {
    let mut v = Vec::new();
    for i in 0..10i64 {
        let t = T0 + i * 15 * S;
        v.push(sample(
            "http_requests_total",
            &[("job", "api"), ("code", "200")],
            t,
            (i * 10) as f64,
        ));
        v.push(sample(
            "http_requests_total",
            &[("job", "api"), ("code", "500")],
            t,
            i as f64,
        ));
        v.push(sample(
            "http_requests_total",
            &[("job", "web"), ("code", "200")],
            t,
            0.5 * i as f64,
        ));
        let up = match i {
            3 => f64::from_bits(STALE),
            4 => f64::INFINITY,
            5 => f64::NEG_INFINITY,
            6 => -0.0,
            _ => 1.0,
        };
        v.push(sample("up", &[("job", "api")], t, up));
    }
    v
}

fn names(series: &[SeriesInfo]) -> Vec<String> {
    series
        .iter()
        .map(|s| {
            let l: Vec<String> = s
                .labels
                .iter()
                .map(|l| format!("{}={}", l.name, l.value))
                .collect();
            format!("{}{{{}}}", s.name, l.join(","))
        })
        .collect()
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn write_read_round_trip_keeps_special_values() {
    let t = tenant("rt");
    for b in all().await {
        let rep = b.store.write_samples(&t, &dataset()).await.unwrap();
        assert_eq!(
            (
                rep.samples,
                rep.series,
                rep.chunks_written,
                rep.chunks_skipped
            ),
            (40, 4, 4, 0),
            "{}",
            b.name
        );
        let got = b
            .store
            .select_samples(&t, &[LabelMatcher::eq("__name__", "up")], TimeRange::ALL)
            .await
            .unwrap();
        assert_eq!(got.len(), 1, "{}", b.name);
        let want: Vec<(i64, f64)> = dataset()
            .iter()
            .filter(|s| s.name == "up")
            .map(|s| (s.timestamp.unwrap().as_nanos(), s.value))
            .collect();
        assert_eq!(bits(&got[0].points), bits(&want), "{}", b.name);
        assert_eq!(got[0].id, series_id("up", &got[0].labels));
        let all = b
            .store
            .select_samples(&t, &[], TimeRange::ALL)
            .await
            .unwrap();
        assert_eq!(
            all.iter().map(|s| s.points.len()).collect::<Vec<_>>(),
            [10, 10, 10, 10],
            "{}",
            b.name
        );
        // Sorted by (name, labels).
        assert_eq!(all[0].labels.get("code"), Some("200"));
        assert_eq!(all[0].labels.get("job"), Some("api"));
        assert_eq!(all[3].name, "up");
        // Another tenant sees nothing.
        assert!(
            b.store
                .select_samples(&tenant("other"), &[], TimeRange::ALL)
                .await
                .unwrap()
                .is_empty()
        );
        let series = b
            .store
            .select_series(&t, &[], TimeRange::ALL)
            .await
            .unwrap();
        let (lo, hi) = seen_bounds(T0, T0 + 135 * S);
        assert!(
            series
                .iter()
                .all(|s| s.first_seen == lo && s.last_seen == hi),
            "{}",
            b.name
        );
        assert_eq!(
            b.store.metric_tenants().await.unwrap(),
            vec![t.clone()],
            "{}",
            b.name
        );
        b.cleanup().await;
    }
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn rewrites_are_idempotent_in_any_batching() {
    let t = tenant("idem");
    for b in all().await {
        let data = dataset();
        b.store.write_samples(&t, &data).await.unwrap();
        let before = b
            .store
            .select_samples(&t, &[], TimeRange::ALL)
            .await
            .unwrap();
        let again = b.store.write_samples(&t, &data).await.unwrap();
        assert_eq!(
            (again.chunks_written, again.chunks_skipped),
            (0, 4),
            "{}",
            b.name
        );
        // Other batchings of the same samples, one reversed.
        for part in data.chunks(7) {
            b.store.write_samples(&t, part).await.unwrap();
        }
        let mut rev = data.clone();
        rev.reverse();
        b.store.write_samples(&t, &rev).await.unwrap();
        let after = b
            .store
            .select_samples(&t, &[], TimeRange::ALL)
            .await
            .unwrap();
        assert_eq!(after.len(), before.len(), "{}", b.name);
        for (a, x) in after.iter().zip(&before) {
            assert_eq!(bits(&a.points), bits(&x.points), "{}", b.name);
        }
        // One timestamp, two values: the greatest (IEEE total order) wins,
        // whatever the order of the writes.
        let k = [("job", "dup")];
        b.store
            .write_samples(&t, &[sample("d", &k, T0, 5.0)])
            .await
            .unwrap();
        b.store
            .write_samples(
                &t,
                &[sample("d", &k, T0, 2.0), sample("d", &k, T0 + S, 1.0)],
            )
            .await
            .unwrap();
        let d = b
            .store
            .select_samples(&t, &[LabelMatcher::eq("__name__", "d")], TimeRange::ALL)
            .await
            .unwrap();
        assert_eq!(d[0].points, vec![(T0, 5.0), (T0 + S, 1.0)], "{}", b.name);
        b.cleanup().await;
    }
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn label_matchers_all_four_ops() {
    let t = tenant("match");
    let cases: Vec<(Vec<LabelMatcher>, Vec<&str>)> = vec![
        (
            vec![],
            vec![
                "http_requests_total{code=200,job=api}",
                "http_requests_total{code=200,job=web}",
                "http_requests_total{code=500,job=api}",
                "up{job=api}",
            ],
        ),
        (
            vec![m("job", MatchOp::Eq, "web")],
            vec!["http_requests_total{code=200,job=web}"],
        ),
        (
            vec![
                m("__name__", MatchOp::Eq, "http_requests_total"),
                m("code", MatchOp::Ne, "200"),
            ],
            vec!["http_requests_total{code=500,job=api}"],
        ),
        (
            vec![m("code", MatchOp::Re, "2..|5.0")],
            vec![
                "http_requests_total{code=200,job=api}",
                "http_requests_total{code=200,job=web}",
                "http_requests_total{code=500,job=api}",
            ],
        ),
        // Anchored: "0" alone does not match "200".
        (vec![m("code", MatchOp::Re, "0")], vec![]),
        (
            vec![m("code", MatchOp::Nre, "2.*")],
            vec!["http_requests_total{code=500,job=api}", "up{job=api}"],
        ),
        // An absent label matches "".
        (vec![m("code", MatchOp::Eq, "")], vec!["up{job=api}"]),
        (
            vec![
                m("__name__", MatchOp::Re, "u.|nope"),
                m("job", MatchOp::Ne, ""),
            ],
            vec!["up{job=api}"],
        ),
        (
            vec![m("__name__", MatchOp::Nre, "http_.*")],
            vec!["up{job=api}"],
        ),
        (vec![m("__name__", MatchOp::Eq, "missing")], vec![]),
    ];
    for b in all().await {
        b.store.write_samples(&t, &dataset()).await.unwrap();
        for (matchers, want) in &cases {
            let got = b
                .store
                .select_series(&t, matchers, TimeRange::ALL)
                .await
                .unwrap();
            let desc: Vec<String> = matchers.iter().map(ToString::to_string).collect();
            assert_eq!(names(&got), *want, "{} {desc:?}", b.name);
            let samples = b
                .store
                .select_samples(&t, matchers, TimeRange::ALL)
                .await
                .unwrap();
            assert_eq!(samples.len(), want.len(), "{} {desc:?}", b.name);
        }
        b.cleanup().await;
    }
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn label_names_and_values() {
    let t = tenant("labels");
    for b in all().await {
        b.store.write_samples(&t, &dataset()).await.unwrap();
        let s = &b.store;
        assert_eq!(
            s.label_names(&t, &[], TimeRange::ALL).await.unwrap(),
            ["__name__", "code", "job"],
            "{}",
            b.name
        );
        assert_eq!(
            s.label_names(&t, &[LabelMatcher::eq("__name__", "up")], TimeRange::ALL)
                .await
                .unwrap(),
            ["__name__", "job"],
            "{}",
            b.name
        );
        assert_eq!(
            s.label_values(&t, "job", &[], TimeRange::ALL)
                .await
                .unwrap(),
            ["api", "web"]
        );
        assert_eq!(
            s.label_values(&t, "code", &[m("job", MatchOp::Eq, "api")], TimeRange::ALL)
                .await
                .unwrap(),
            ["200", "500"]
        );
        assert_eq!(
            s.label_values(&t, "__name__", &[], TimeRange::ALL)
                .await
                .unwrap(),
            ["http_requests_total", "up"]
        );
        assert!(
            s.label_values(&t, "nope", &[], TimeRange::ALL)
                .await
                .unwrap()
                .is_empty()
        );
        // Out of range: nothing.
        let later = range(T0 + 10 * 3_600 * S, T0 + 11 * 3_600 * S);
        assert!(
            s.label_names(&t, &[], later).await.unwrap().is_empty(),
            "{}",
            b.name
        );
        b.cleanup().await;
    }
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn time_ranges_are_half_open() {
    let t = tenant("range");
    let up = [
        LabelMatcher::eq("__name__", "http_requests_total"),
        LabelMatcher::eq("job", "web"),
    ];
    for b in all().await {
        b.store.write_samples(&t, &dataset()).await.unwrap();
        let cases = [
            (range(T0, T0 + 15 * S), vec![T0]),
            (range(T0 + S, T0 + 45 * S), vec![T0 + 15 * S, T0 + 30 * S]),
            (
                range(T0 + 120 * S, T0 + 1_000 * S),
                vec![T0 + 120 * S, T0 + 135 * S],
            ),
            (range(T0 + 136 * S, T0 + 1_000 * S), vec![]),
            (range(T0 - 100 * S, T0), vec![]),
            (range(T0 + 30 * S, T0 + 30 * S), vec![]),
        ];
        for (r, want) in cases {
            let got = b.store.select_samples(&t, &up, r).await.unwrap();
            let ts: Vec<i64> = got
                .first()
                .map(|s| s.points.iter().map(|p| p.0).collect())
                .unwrap_or_default();
            assert_eq!(ts, want, "{} {r:?}", b.name);
        }
        b.cleanup().await;
    }
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn rollups_upsert_and_merge_exactly() {
    let t = tenant("roll");
    let config: AggregateConfig = serde_json::from_str(r#"{"resolutions": ["1m"]}"#).unwrap();
    let mk = |ts: i64, v: f64| {
        let mut s = sample("req_total", &[("job", "api")], ts, v);
        s.tenant = Some(t.clone());
        s
    };
    let mut engine = config.build().unwrap();
    engine.aggregate(BatchId(1), &[mk(T0, 10.0), mk(T0 + 5 * S, 12.0)]);
    let f1 = engine.flush();
    engine.aggregate(BatchId(2), &[mk(T0 + 7 * S, 3.0), mk(T0 + 65 * S, 4.0)]);
    let f2 = engine.flush();
    let want = merge_partials(f1.partials.iter().chain(&f2.partials)).unwrap();
    let minute = Resolution::new(std::time::Duration::from_secs(60)).unwrap();
    for b in all().await {
        let s = &b.store;
        assert_eq!(
            s.write_rollups(&t, f1.key().unwrap(), &f1.partials)
                .await
                .unwrap(),
            f1.partials.len()
        );
        s.write_rollups(&t, f2.key().unwrap(), &f2.partials)
            .await
            .unwrap();
        // A redelivered flush replaces its rows: same result.
        s.write_rollups(&t, f1.key().unwrap(), &f1.partials)
            .await
            .unwrap();
        let got = s
            .select_rollups(
                &t,
                &[LabelMatcher::eq("job", "api")],
                minute,
                TimeRange::ALL,
            )
            .await
            .unwrap();
        assert_eq!(got.len(), 1, "{}", b.name);
        let windows = &got[0].windows;
        let want_windows: Vec<(Timestamp, &killkrill_core::aggregate::Rollup)> =
            want.iter().map(|(k, r)| (k.window_start, r)).collect();
        assert_eq!(windows.len(), want_windows.len(), "{}", b.name);
        for ((ws, r), (wws, wr)) in windows.iter().zip(&want_windows) {
            assert_eq!(ws, wws, "{}", b.name);
            assert_eq!(r, *wr, "{}", b.name);
        }
        assert_eq!(windows[0].1.count(), 3);
        assert_eq!(windows[0].1.increase(), Some(5.0));
        // Range on window start; the rollup's series is in the index.
        let second = s
            .select_rollups(&t, &[], minute, range(T0 + 60 * S, T0 + 120 * S))
            .await
            .unwrap();
        assert_eq!(second[0].windows.len(), 1);
        assert_eq!(second[0].windows[0].1.sum(), 4.0);
        let other = Resolution::new(std::time::Duration::from_secs(10)).unwrap();
        assert!(
            s.select_rollups(&t, &[], other, TimeRange::ALL)
                .await
                .unwrap()
                .is_empty()
        );
        assert_eq!(
            s.label_values(&t, "__name__", &[], TimeRange::ALL)
                .await
                .unwrap(),
            ["req_total"]
        );
        // Retention drops whole windows that ended by the cutoff.
        let rep = s
            .apply_retention(&t, Timestamp::from_nanos(T0 + 60 * S))
            .await
            .unwrap();
        assert_eq!(
            rep.rollups, 2,
            "{}: two flushes wrote the first window",
            b.name
        );
        let left = s
            .select_rollups(&t, &[], minute, TimeRange::ALL)
            .await
            .unwrap();
        assert_eq!(left[0].windows.len(), 1);
        b.cleanup().await;
    }
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn retention_deletes_old_chunks_and_series() {
    let t = tenant("ret");
    let h = 3_600 * S;
    for b in all().await {
        let s = &b.store;
        // Old: hour 0; new: hour 5. Separate writes, so separate chunks.
        s.write_samples(
            &t,
            &[
                sample("old", &[], T0, 1.0),
                sample("both", &[], T0 + S, 1.0),
            ],
        )
        .await
        .unwrap();
        s.write_samples(
            &t,
            &[
                sample("both", &[], T0 + 5 * h, 2.0),
                sample("new", &[], T0 + 5 * h, 3.0),
            ],
        )
        .await
        .unwrap();
        let rep = s
            .apply_retention(&t, Timestamp::from_nanos(T0 + 2 * h))
            .await
            .unwrap();
        assert_eq!((rep.chunks, rep.series), (2, 1), "{}", b.name);
        assert_eq!(
            s.label_values(&t, "__name__", &[], TimeRange::ALL)
                .await
                .unwrap(),
            ["both", "new"],
            "{}",
            b.name
        );
        let both = s
            .select_samples(&t, &[LabelMatcher::eq("__name__", "both")], TimeRange::ALL)
            .await
            .unwrap();
        assert_eq!(both[0].points, vec![(T0 + 5 * h, 2.0)], "{}", b.name);
        // Writing after retention recreates series rows (the cache was reset).
        s.write_samples(&t, &[sample("old", &[], T0 + 6 * h, 4.0)])
            .await
            .unwrap();
        assert_eq!(
            s.label_values(&t, "__name__", &[], TimeRange::ALL)
                .await
                .unwrap(),
            ["both", "new", "old"],
            "{}",
            b.name
        );
        let rep = s
            .apply_retention(&tenant("nobody"), Timestamp::from_nanos(T0 + 100 * h))
            .await
            .unwrap();
        assert_eq!((rep.chunks, rep.series, rep.rollups), (0, 0, 0));
        b.cleanup().await;
    }
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn bad_samples_are_refused_and_nothing_is_stored() {
    let t = tenant("bad");
    for b in all().await {
        let mut no_ts = sample("x", &[], T0, 1.0);
        no_ts.timestamp = None;
        let e = b
            .store
            .write_samples(&t, &[sample("x", &[], T0, 1.0), no_ts])
            .await
            .unwrap_err();
        assert_eq!(e.kind(), ErrorKind::Invalid, "{}", b.name);
        assert!(e.to_string().contains("sample 1"), "{e}");
        let mut wrong = sample("x", &[], T0, 1.0);
        wrong.tenant = Some(tenant("someone-else"));
        assert_eq!(
            b.store
                .write_samples(&t, &[wrong])
                .await
                .unwrap_err()
                .kind(),
            ErrorKind::Invalid
        );
        let long = "n".repeat(2_000);
        assert!(
            b.store
                .write_samples(&t, &[sample(&long, &[], T0, 1.0)])
                .await
                .is_err()
        );
        assert!(
            b.store
                .select_series(&t, &[], TimeRange::ALL)
                .await
                .unwrap()
                .is_empty(),
            "{}",
            b.name
        );
        // A big write crosses every statement and transaction size.
        let many: Vec<MetricSample> = (0..3_000)
            .flat_map(|i| {
                let job = format!("j{i}");
                (0..3).map(move |k| sample("many", &[("job", job.as_str())], T0 + k * S, k as f64))
            })
            .collect();
        let rep = b.store.write_samples(&t, &many).await.unwrap();
        assert_eq!(
            (rep.series, rep.chunks_written, rep.samples),
            (3_000, 3_000, 9_000),
            "{}",
            b.name
        );
        let got = b
            .store
            .select_samples(&t, &[m("job", MatchOp::Re, "j1.*")], TimeRange::ALL)
            .await
            .unwrap();
        assert_eq!(got.len(), 1_111, "{}", b.name);
        assert!(got.iter().all(|s| s.points.len() == 3));
        b.cleanup().await;
    }
}

#[tokio::test(flavor = "multi_thread", worker_threads = 4)]
async fn concurrent_writers_of_one_batch_store_each_chunk_once() {
    let t = tenant("race");
    let data: Vec<MetricSample> = (0..400)
        .flat_map(|i| {
            let inst = format!("i{i}");
            (0..5)
                .map(move |k| sample("race", &[("instance", inst.as_str())], T0 + k * S, k as f64))
        })
        .collect();
    for b in all().await {
        let mut tasks = Vec::new();
        for _ in 0..4 {
            let store = b.store.clone();
            let (t, data) = (t.clone(), data.clone());
            tasks.push(tokio::spawn(
                async move { store.write_samples(&t, &data).await },
            ));
        }
        let mut written = 0;
        for task in tasks {
            let rep = task.await.unwrap().unwrap();
            assert_eq!(rep.chunks_written + rep.chunks_skipped, 400, "{}", b.name);
            written += rep.chunks_written;
        }
        assert_eq!(written, 400, "{}: every chunk stored exactly once", b.name);
        let got = b
            .store
            .select_samples(&t, &[], TimeRange::ALL)
            .await
            .unwrap();
        assert_eq!(got.len(), 400, "{}", b.name);
        assert!(got.iter().all(|s| s.points.len() == 5), "{}", b.name);
        b.cleanup().await;
    }
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn head_chunks_compact_into_full_chunks_without_changing_answers() {
    let t = tenant("head");
    for b in all().await {
        let Some(sql) = b.sql_store().cloned() else {
            b.cleanup().await;
            continue;
        };
        // Five scrapes of 50 series, one sample per series each: head rows.
        let scrape = |k: i64| -> Vec<MetricSample> {
            (0..50)
                .map(|s| {
                    let inst = format!("i{s}");
                    sample(
                        "up",
                        &[("inst", inst.as_str())],
                        T0 + k * 15 * S,
                        (s * 10 + k) as f64,
                    )
                })
                .collect()
        };
        for k in 0..5 {
            b.store.write_samples(&t, &scrape(k)).await.unwrap();
        }
        let before = b
            .store
            .select_samples(&t, &[], TimeRange::ALL)
            .await
            .unwrap();
        assert_eq!(before.len(), 50, "{}", b.name);
        assert!(before.iter().all(|s| s.points.len() == 5), "{}", b.name);
        // Only the first three scrapes are old enough.
        let r = sql
            .compact_metric_head(&t, Timestamp::from_nanos(T0 + 3 * 15 * S))
            .await
            .unwrap();
        assert_eq!(
            (r.head_chunks, r.chunks_written, r.samples),
            (150, 50, 150),
            "{}",
            b.name
        );
        let mid = b
            .store
            .select_samples(&t, &[], TimeRange::ALL)
            .await
            .unwrap();
        assert_eq!(mid, before, "{}", b.name);
        // A redelivered scrape after compaction: same answers.
        b.store.write_samples(&t, &scrape(1)).await.unwrap();
        let r = sql.compact_metric_head(&t, Timestamp::MAX).await.unwrap();
        assert_eq!((r.head_chunks, r.chunks_written), (150, 50), "{}", b.name);
        let after = b
            .store
            .select_samples(&t, &[], TimeRange::ALL)
            .await
            .unwrap();
        assert_eq!(after, before, "{}", b.name);
        let again = sql.compact_metric_head(&t, Timestamp::MAX).await.unwrap();
        assert_eq!(again.head_chunks, 0, "{}", b.name);
        // A range read that starts inside the data.
        let part = b
            .store
            .select_samples(
                &t,
                &[LabelMatcher::eq("inst", "i7")],
                range(T0 + 20 * S, T0 + 50 * S),
            )
            .await
            .unwrap();
        assert_eq!(
            part[0].points,
            vec![(T0 + 30 * S, 72.0), (T0 + 45 * S, 73.0)],
            "{}",
            b.name
        );
        b.cleanup().await;
    }
}

/// Two compactions of one tenant racing while a late write lands in the
/// range: compactor A reads the head, B compacts part of it, a late write
/// adds exactly as many rows as B removed, then A moves what it read. A
/// must not delete the late rows it never merged (a range delete checked
/// only by its row count would: the counts balance).
#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn racing_head_compactions_keep_a_late_write() {
    let t = tenant("head-race");
    for b in all().await {
        let Some(sql) = b.sql_store().cloned() else {
            b.cleanup().await;
            continue;
        };
        let scrape = |k: i64| -> Vec<MetricSample> {
            (0..10)
                .map(|s| {
                    let inst = format!("i{s}");
                    sample(
                        "up",
                        &[("inst", inst.as_str())],
                        T0 + k * 15 * S,
                        (s * 10 + k) as f64,
                    )
                })
                .collect()
        };
        for k in 0..4 {
            b.store.write_samples(&t, &scrape(k)).await.unwrap();
        }
        // A reads every head row.
        let a = sql
            .read_head_step(&t, Timestamp::MAX)
            .await
            .unwrap()
            .expect("head rows");
        assert_eq!(a.len(), 40, "{}", b.name);
        // B compacts the first scrape (10 rows) ...
        let r = sql
            .compact_metric_head(&t, Timestamp::from_nanos(T0 + 15 * S))
            .await
            .unwrap();
        assert_eq!(r.head_chunks, 10, "{}", b.name);
        // ... and a late write adds 10 rows inside A's range.
        b.store.write_samples(&t, &scrape(4)).await.unwrap();
        // A moves what it read.
        let r = sql.apply_head_step(&t, a).await.unwrap();
        assert_eq!(r.head_chunks, 40, "{}", b.name);
        let want: Vec<Vec<(i64, f64)>> = (0..10)
            .map(|s| {
                (0..5)
                    .map(|k| (T0 + k * 15 * S, (s * 10 + k) as f64))
                    .collect()
            })
            .collect();
        let points = |v: Vec<killkrill_core::storage::Series>| -> Vec<Vec<(i64, f64)>> {
            let mut v: Vec<_> = v.into_iter().collect();
            v.sort_by(|x, y| x.labels.cmp(&y.labels));
            v.into_iter().map(|s| s.points).collect()
        };
        let got = b
            .store
            .select_samples(&t, &[], TimeRange::ALL)
            .await
            .unwrap();
        assert_eq!(points(got), want, "{}: the late write was lost", b.name);
        // The late rows are still in the head and compact normally.
        let r = sql.compact_metric_head(&t, Timestamp::MAX).await.unwrap();
        assert_eq!(r.head_chunks, 10, "{}", b.name);
        let got = b
            .store
            .select_samples(&t, &[], TimeRange::ALL)
            .await
            .unwrap();
        assert_eq!(points(got), want, "{}", b.name);
        b.cleanup().await;
    }
}
