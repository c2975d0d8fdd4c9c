//! The metric stores under test: the in-memory model, SQLite always,
//! PostgreSQL / MySQL when their URLs are set (skipped with a printed reason
//! otherwise; see `support`).
#![allow(dead_code, clippy::print_stderr)]

use std::sync::Arc;

use killkrill_core::event::{Labels, MetricSample, NANOS_PER_SEC, Tenant, Timestamp};
use killkrill_core::logblock::BlockOptions;
use killkrill_core::storage::{MemoryMetricStore, MetricStore};

use crate::support;

/// 2025-11-24T16:00:00Z, on an hour boundary.
pub const T0: i64 = 1_764_000_000 * NANOS_PER_SEC;
/// Prometheus' staleness marker.
pub const STALE: u64 = 0x7ff0_0000_0000_0002;

pub struct MetricBackend {
    pub name: &'static str,
    pub store: Arc<dyn MetricStore>,
    sql: Option<support::Backend>,
}

impl MetricBackend {
    /// The SQL store behind `store`, when it is one.
    pub fn sql_store(&self) -> Option<&killkrill_store::Store> {
        self.sql.as_ref().and_then(|b| b.sql.as_ref())
    }

    pub async fn cleanup(self) {
        if let Some(b) = self.sql {
            b.cleanup().await;
        }
    }
}

fn wrap(b: support::Backend) -> MetricBackend {
    let store = b.sql.clone().expect("sql store");
    MetricBackend {
        name: b.name,
        store: Arc::new(store),
        sql: Some(b),
    }
}

pub fn memory() -> MetricBackend {
    MetricBackend {
        name: "memory",
        store: Arc::new(MemoryMetricStore::new()),
        sql: None,
    }
}

pub async fn sqlite() -> MetricBackend {
    wrap(support::sqlite(BlockOptions::default()).await)
}

pub async fn postgres() -> Option<MetricBackend> {
    support::postgres(BlockOptions::default()).await.map(wrap)
}

pub async fn mysql() -> Option<MetricBackend> {
    support::mysql(BlockOptions::default()).await.map(wrap)
}

/// Every available backend, the model first.
pub async fn all() -> Vec<MetricBackend> {
    let mut v = vec![memory(), sqlite().await];
    v.extend(postgres().await);
    v.extend(mysql().await);
    v
}

pub fn sample(name: &str, labels: &[(&str, &str)], ts: i64, value: f64) -> MetricSample {
    MetricSample {
        name: name.into(),
        labels: Labels::from_pairs(labels.iter().copied()),
        value,
        timestamp: Some(Timestamp::from_nanos(ts)),
        ..MetricSample::default()
    }
}

pub fn tenant(name: &str) -> Tenant {
    Tenant::new(name).expect("tenant")
}

/// Points as (ts, bits) so NaN compares by bit pattern.
pub fn bits(points: &[(i64, f64)]) -> Vec<(i64, u64)> {
    points.iter().map(|(t, v)| (*t, v.to_bits())).collect()
}
