//! A worker writes a *group* of queue batches in one metric-sink call (the
//! larger `[workers] group_max_*` of the remote_write path put tens of
//! batches in one call). Here the process "crashes" in the middle of such a
//! grouped write — halfway through the sample write, between the sample
//! commit and the rollup commit, or after the rollup commit but before the
//! acknowledgement — and a restarted sink gets the same batches again, in
//! other groupings. The stored samples and rollups must then be exactly
//! those of a clean single delivery into a second database: no sample
//! twice, no batch aggregated twice or lost. SQLite always; PostgreSQL and
//! MySQL when `KILLKRILL_TEST_POSTGRES_URL` / `KILLKRILL_TEST_MYSQL_URL`
//! are set.
#![allow(clippy::unwrap_used, clippy::print_stderr)]

use std::sync::Arc;
use std::sync::atomic::{AtomicBool, Ordering};
use std::time::Duration;

use async_trait::async_trait;
use killkrill_core::aggregate::{
    AggregateConfig, BatchId as FlushId, PartialRollup, Point, Resolution,
};
use killkrill_core::event::{
    Labels, MetricMetadata, MetricSample, NANOS_PER_SEC, Tenant, Timestamp,
};
use killkrill_core::pipeline::{Batch, BatchId};
use killkrill_core::storage::{
    ErrorKind, LabelMatcher, MetricRetentionReport, MetricStore, MetricWriteReport, RollupFlush,
    RollupFlushOutcome, Series, SeriesInfo, SeriesRollups, StoreError, TimeRange,
};
use killkrill_store::{Store, StoreConfig};
use killkrill_svc::serve::sinks::{MetricSink, StoreMetricSink};

mod support;

const T0: i64 = 1_764_000_000 * NANOS_PER_SEC;
const SERIES: usize = 40;
const PER_BATCH: usize = 10;

fn config() -> AggregateConfig {
    serde_json::from_str(
        r#"{"resolutions": ["10s", "1m", "1h"], "allowed_lateness": "30s", "late_samples": "aggregate"}"#,
    )
    .unwrap()
}

/// `n` batches shaped like remote_write requests: every series gets
/// `PER_BATCH` samples per batch, 1 s apart (so a group of batches spans
/// several 10 s windows); counters of even series, gauges of odd ones.
/// Batch 3 belongs to a second tenant.
fn batches(n: usize) -> Vec<Arc<Batch>> {
    let mut out = Vec::new();
    for i in 0..n {
        let tenant = Tenant::new(if i == 3 { "beta" } else { "acme" }).unwrap();
        let mut b = Batch::new(
            BatchId::from_u128(0xC0DE_0000 + i as u128),
            tenant.clone(),
            Timestamp::from_nanos(T0),
        );
        for k in 0..PER_BATCH {
            let step = (i * PER_BATCH + k) as i64;
            let t = T0 + step * NANOS_PER_SEC;
            for s in 0..SERIES {
                let value = if s % 2 == 0 {
                    (step * (s as i64 + 1)) as f64
                } else {
                    ((step * 37 + s as i64 * 11) % 101) as f64 / 4.0 - 10.0
                };
                b.metrics.push(MetricSample {
                    tenant: Some(tenant.clone()),
                    name: if s % 2 == 0 {
                        "req_total".into()
                    } else {
                        "temp".into()
                    },
                    labels: Labels::from_pairs([("job", "rw".to_owned()), ("s", s.to_string())]),
                    value,
                    timestamp: Some(Timestamp::from_nanos(t)),
                    ..MetricSample::default()
                });
            }
        }
        b.metadata.push(MetricMetadata {
            family: "req".into(),
            kind: killkrill_core::event::MetricType::Counter,
            help: Some("requests".into()),
            unit: None,
        });
        out.push(Arc::new(b));
    }
    out
}

/// Where the crash happens.
#[derive(Clone, Copy, Debug)]
enum Crash {
    /// The sample write commits the first half of the samples, then dies.
    HalfwayThroughSamples,
    /// Samples committed, the rollup flush never reaches the database.
    BeforeRollups,
    /// Samples and rollups committed; dies before the acknowledgement.
    AfterRollups,
}

/// A store that crashes once at the given point.
struct Crashing {
    inner: Store,
    crash: Crash,
    crashed: AtomicBool,
}

fn crashed() -> StoreError {
    StoreError::new(ErrorKind::Retryable, "the worker process died here")
}

impl Crashing {
    fn fire(&self) -> bool {
        !self.crashed.swap(true, Ordering::SeqCst)
    }
}

#[async_trait]
impl MetricStore for Crashing {
    async fn write_samples(
        &self,
        tenant: &Tenant,
        samples: &[MetricSample],
    ) -> Result<MetricWriteReport, StoreError> {
        if matches!(self.crash, Crash::HalfwayThroughSamples) && self.fire() {
            self.inner
                .write_samples(tenant, &samples[..samples.len() / 2])
                .await?;
            return Err(crashed());
        }
        self.inner.write_samples(tenant, samples).await
    }

    async fn write_rollups(
        &self,
        tenant: &Tenant,
        flush: FlushId,
        partials: &[PartialRollup],
    ) -> Result<usize, StoreError> {
        self.inner.write_rollups(tenant, flush, partials).await
    }

    async fn write_rollup_flush(
        &self,
        tenant: &Tenant,
        flush: RollupFlush<'_>,
    ) -> Result<RollupFlushOutcome, StoreError> {
        match self.crash {
            Crash::BeforeRollups if self.fire() => Err(crashed()),
            Crash::AfterRollups if self.fire() => {
                self.inner.write_rollup_flush(tenant, flush).await?;
                Err(crashed())
            }
            _ => self.inner.write_rollup_flush(tenant, flush).await,
        }
    }

    async fn rollup_high_water(&self, tenant: &Tenant) -> Result<Option<Timestamp>, StoreError> {
        self.inner.rollup_high_water(tenant).await
    }

    async fn write_metadata(
        &self,
        tenant: &Tenant,
        metadata: &[MetricMetadata],
    ) -> Result<usize, StoreError> {
        self.inner.write_metadata(tenant, metadata).await
    }

    async fn select_metadata(
        &self,
        tenant: &Tenant,
        family: Option<&str>,
    ) -> Result<Vec<MetricMetadata>, StoreError> {
        self.inner.select_metadata(tenant, family).await
    }

    async fn select_series(
        &self,
        tenant: &Tenant,
        matchers: &[LabelMatcher],
        range: TimeRange,
    ) -> Result<Vec<SeriesInfo>, StoreError> {
        self.inner.select_series(tenant, matchers, range).await
    }

    async fn select_samples(
        &self,
        tenant: &Tenant,
        matchers: &[LabelMatcher],
        range: TimeRange,
    ) -> Result<Vec<Series>, StoreError> {
        self.inner.select_samples(tenant, matchers, range).await
    }

    async fn select_rollups(
        &self,
        tenant: &Tenant,
        matchers: &[LabelMatcher],
        resolution: Resolution,
        range: TimeRange,
    ) -> Result<Vec<SeriesRollups>, StoreError> {
        self.inner
            .select_rollups(tenant, matchers, resolution, range)
            .await
    }

    async fn apply_retention(
        &self,
        tenant: &Tenant,
        cutoff: Timestamp,
    ) -> Result<MetricRetentionReport, StoreError> {
        self.inner.apply_retention(tenant, cutoff).await
    }

    async fn metric_tenants(&self) -> Result<Vec<Tenant>, StoreError> {
        self.inner.metric_tenants().await
    }
}

/// Everything stored for both tenants: samples and every resolution's
/// rollups (series in id order).
async fn stored(store: &Store) -> Vec<String> {
    let mut out = Vec::new();
    for tenant in ["acme", "beta"] {
        let t = Tenant::new(tenant).unwrap();
        let mut samples = store
            .select_samples(&t, &[LabelMatcher::eq("job", "rw")], TimeRange::ALL)
            .await
            .unwrap();
        samples.sort_by_key(|s| s.id);
        let n: usize = samples.iter().map(|s| s.points.len()).sum();
        out.push(format!("{tenant} samples {n}: {samples:?}"));
        for secs in [10, 60, 3600] {
            let r = Resolution::new(Duration::from_secs(secs)).unwrap();
            let mut rollups = store
                .select_rollups(&t, &[], r, TimeRange::ALL)
                .await
                .unwrap();
            rollups.sort_by_key(|s| s.id);
            let mut line = format!("{tenant} rollups {secs}s:");
            for r in &rollups {
                let raw = samples.iter().find(|s| s.id == r.id).unwrap();
                line.push_str(&format!(" {}{:?}", r.name, r.labels));
                for (ws, w) in &r.windows {
                    // Each merged window equals the rollup of its stored
                    // samples computed at once (no batch twice or lost).
                    let lo = ws.as_nanos();
                    let pts: Vec<Point> = raw
                        .points
                        .iter()
                        .filter(|(t, _)| *t >= lo && *t < lo + r_nanos(r_of(secs)))
                        .map(|(t, v)| Point::new(Timestamp::from_nanos(*t), *v))
                        .collect();
                    support::assert_same_rollup(w, &pts, &format!("{tenant} {secs}s {lo}"));
                    line.push_str(&format!(
                        " [{lo} n={} sum={:x} min={} max={} first={:?} last={:?}]",
                        w.count(),
                        w.sum().to_bits(),
                        w.min(),
                        w.max(),
                        w.first(),
                        w.last()
                    ));
                }
            }
            out.push(line);
        }
    }
    out
}

fn r_of(secs: u64) -> Resolution {
    Resolution::new(Duration::from_secs(secs)).unwrap()
}

fn r_nanos(r: Resolution) -> i64 {
    r.as_nanos()
}

fn sink(store: Arc<dyn MetricStore>) -> StoreMetricSink {
    StoreMetricSink::with_rollups(store, config()).unwrap()
}

/// One clean delivery of all batches in one group: the reference.
async fn reference(store: &Store, all: &[Arc<Batch>]) -> Vec<String> {
    sink(Arc::new(store.clone()))
        .write_metrics(all)
        .await
        .unwrap();
    stored(store).await
}

/// The whole group crashes at `crash`; a restarted sink (fresh engine, new
/// connections) gets the batches again as `regroup` cuts them.
async fn crash_then_redeliver(
    store: &Store,
    all: &[Arc<Batch>],
    crash: Crash,
    regroup: &[usize],
) -> Vec<String> {
    let dying = Arc::new(Crashing {
        inner: store.clone(),
        crash,
        crashed: AtomicBool::new(false),
    });
    let err = sink(dying.clone()).write_metrics(all).await;
    assert!(err.is_err(), "{crash:?}: the grouped write must fail");
    assert!(dying.crashed.load(Ordering::SeqCst), "{crash:?} fired");
    let restarted = Store::open(store.config().clone()).await.unwrap();
    let s = sink(Arc::new(restarted.clone()));
    let mut at = 0;
    for &n in regroup {
        s.write_metrics(&all[at..at + n]).await.unwrap();
        at += n;
    }
    assert_eq!(at, all.len());
    // And a second redelivery of everything in one group changes nothing.
    s.write_metrics(all).await.unwrap();
    restarted.close().await;
    stored(store).await
}

/// A fresh database of one backend.
#[derive(Clone, Copy)]
enum Backend {
    Sqlite,
    Postgres,
    Mysql,
}

/// A fresh store and what keeps or drops its database.
struct Fresh {
    store: Store,
    _dir: Option<tempfile::TempDir>,
    db: Option<support::ScopedDb>,
}

impl Fresh {
    async fn open(backend: Backend) -> Option<Fresh> {
        let (dir, db, config) = match backend {
            Backend::Sqlite => {
                let dir = tempfile::tempdir().unwrap();
                let c = StoreConfig::sqlite(dir.path().join("kk.db"));
                (Some(dir), None, c)
            }
            Backend::Postgres => {
                let db = support::postgres_db("kk_mgroup").await?;
                let c = db.config.clone();
                (None, Some(db), c)
            }
            Backend::Mysql => {
                let db = support::mysql_db("kk_mgroup").await?;
                let c = db.config.clone();
                (None, Some(db), c)
            }
        };
        Some(Fresh {
            store: Store::open(config).await.unwrap(),
            _dir: dir,
            db,
        })
    }

    async fn done(self) {
        self.store.close().await;
        if let Some(db) = self.db {
            db.drop_db().await;
        }
    }
}

/// Runs every crash point on fresh databases of `backend`.
async fn suite(backend: Backend) {
    let all = batches(12);
    let Some(clean) = Fresh::open(backend).await else {
        return;
    };
    let want = reference(&clean.store, &all).await;
    clean.done().await;
    let acme = &want[0];
    assert!(
        acme.starts_with(&format!("acme samples {}", 11 * SERIES * PER_BATCH)),
        "{}",
        &acme[..80]
    );
    for (crash, regroup) in [
        (Crash::HalfwayThroughSamples, &[1usize; 12][..]),
        (Crash::BeforeRollups, &[5, 7][..]),
        (Crash::AfterRollups, &[2, 3, 7][..]),
    ] {
        let f = Fresh::open(backend).await.unwrap();
        let got = crash_then_redeliver(&f.store, &all, crash, regroup).await;
        assert_eq!(got.len(), want.len());
        for (g, w) in got.iter().zip(&want) {
            assert!(
                g == w,
                "{crash:?}: {} differs from a clean delivery",
                &w[..40]
            );
        }
        f.done().await;
        eprintln!("{crash:?}: identical to a clean delivery");
    }
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn sqlite_grouped_write_crash_and_redelivery_is_exact() {
    suite(Backend::Sqlite).await;
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn postgres_grouped_write_crash_and_redelivery_is_exact() {
    suite(Backend::Postgres).await;
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn mysql_grouped_write_crash_and_redelivery_is_exact() {
    suite(Backend::Mysql).await;
}
