//! `--verify`: read the database back and count every sequence number.

use std::time::{Duration, Instant};

use killkrill_core::event::Tenant;
use killkrill_core::logquery::{LogFilter, LogQuery, MAX_PAGE_SIZE, Order, query_logs};
use killkrill_core::storage::{LabelMatcher, MetricStore, TimeRange};
use killkrill_store::{DbType, Store, StoreConfig};

use super::{ConnReport, Mode, Plan};

/// The outcome.
pub(crate) struct Verified {
    /// Acknowledged records.
    pub expected: u64,
    /// Distinct acknowledged records found.
    pub stored: u64,
    /// Acknowledged, not found.
    pub missing: u64,
    /// Extra copies of found records.
    pub duplicates: u64,
    /// Records of this run found that were not acknowledged (a request
    /// that failed on the client's side after the server took it).
    pub unacknowledged_stored: u64,
    /// Time from the end of sending until the store held everything (or
    /// the timeout).
    pub seconds: f64,
    /// Where it read.
    pub database: String,
    /// A remark (e.g. why the count cannot be complete).
    pub note: Option<String>,
}

impl Verified {
    pub fn to_json(&self) -> serde_json::Value {
        serde_json::json!({
            "expected": self.expected,
            "stored": self.stored,
            "missing": self.missing,
            "duplicates": self.duplicates,
            "unacknowledged_stored": self.unacknowledged_stored,
            "seconds": self.seconds,
            "database": self.database,
            "note": self.note,
        })
    }
}

/// Which sequence numbers were acknowledged: one flag per number.
fn expected(plan: &Plan, reports: &[ConnReport]) -> Vec<bool> {
    let n = plan.args.connections as u64;
    let max = reports
        .iter()
        .enumerate()
        .flat_map(|(c, r)| r.acked.iter().map(move |a| a.end * n + c as u64))
        .max()
        .unwrap_or(0);
    let mut want = vec![false; usize::try_from(max).unwrap_or(0)];
    for (c, r) in reports.iter().enumerate() {
        for range in &r.acked {
            for k in range.clone() {
                if let Some(w) = want.get_mut((k * n + c as u64) as usize) {
                    *w = true;
                }
            }
        }
    }
    want
}

/// Reads every stored record of the run; `counts[seq]` is how often it was
/// stored, `beyond` counts numbers past the end of `counts`.
async fn scan_logs(store: &Store, plan: &Plan, counts: &mut [u32]) -> Result<u64, String> {
    let tenant = Tenant::new(&plan.args.tenant).map_err(|e| e.to_string())?;
    let prefix = format!("lg {} ", plan.run);
    let mut cursor = None;
    let mut beyond = 0;
    loop {
        let q = LogQuery {
            tenant: tenant.clone(),
            range: TimeRange::ALL,
            filter: LogFilter {
                text: Some(plan.run.clone()),
                ..LogFilter::default()
            },
            order: Order::OldestFirst,
            limit: MAX_PAGE_SIZE,
            cursor,
        };
        let page = query_logs(store, &q)
            .await
            .map_err(|e| format!("reading logs: {e}"))?;
        for r in &page.records {
            let Some(m) = r.message.as_deref() else {
                continue;
            };
            let Some(rest) = m.strip_prefix(prefix.as_bytes()) else {
                continue;
            };
            let digits = rest.iter().take_while(|b| b.is_ascii_digit()).count();
            let Some(seq) = std::str::from_utf8(&rest[..digits])
                .ok()
                .and_then(|s| s.parse::<usize>().ok())
            else {
                continue;
            };
            match counts.get_mut(seq) {
                Some(c) => *c += 1,
                None => beyond += 1,
            }
        }
        match page.next_cursor {
            Some(c) => cursor = Some(c),
            None => return Ok(beyond),
        }
    }
}

/// The remote_write samples of the run: the value is the sequence number.
async fn scan_metrics(store: &Store, plan: &Plan, counts: &mut [u32]) -> Result<u64, String> {
    let tenant = Tenant::new(&plan.args.tenant).map_err(|e| e.to_string())?;
    let series = store
        .select_samples(
            &tenant,
            &[LabelMatcher::eq("lg_run", plan.run.clone())],
            TimeRange::ALL,
        )
        .await
        .map_err(|e| format!("reading samples: {e}"))?;
    let mut beyond = 0;
    for s in series {
        for (_, v) in s.points {
            match counts.get_mut(v as usize) {
                Some(c) => *c += 1,
                None => beyond += 1,
            }
        }
    }
    Ok(beyond)
}

/// Polls the database until it holds every acknowledged record (or the
/// timeout), then counts.
pub(crate) async fn verify(plan: &Plan, reports: &[ConnReport]) -> Result<Verified, String> {
    let want = expected(plan, reports);
    let cfg = StoreConfig::from_env(
        |k| std::env::var(k).ok(),
        DbType::Sqlite,
        &plan.args.data_dir,
    )
    .map_err(|e| format!("database configuration: {e}"))?;
    let database = match (&cfg.url, cfg.db_type) {
        (Some(_), t) => format!("{t} (DATABASE_URL)"),
        (None, DbType::Sqlite) => format!("sqlite {}", cfg.sqlite.path.display()),
        (None, t) => t.to_string(),
    };
    if cfg.db_type == DbType::Sqlite && cfg.url.is_none() && !cfg.sqlite.path.exists() {
        return Err(format!(
            "no database at {} (set --data-dir, or DB_TYPE and DATABASE_URL)",
            cfg.sqlite.path.display()
        ));
    }
    let store = Store::open(cfg)
        .await
        .map_err(|e| format!("opening the database: {e}"))?;
    let started = Instant::now();
    let deadline = started + Duration::from_secs_f64(plan.args.verify_timeout);
    let expected_n = want.iter().filter(|w| **w).count() as u64;
    let mut last_total = u64::MAX;
    let mut stable = 0;
    let result = loop {
        let mut counts = vec![0u32; want.len()];
        let beyond = match plan.args.mode {
            Mode::RemoteWrite => scan_metrics(&store, plan, &mut counts).await,
            _ => scan_logs(&store, plan, &mut counts).await,
        };
        let beyond = match beyond {
            Ok(b) => b,
            Err(e) => break Err(e),
        };
        let (mut stored, mut missing, mut duplicates, mut unacked) = (0u64, 0u64, 0u64, beyond);
        for (w, c) in want.iter().zip(&counts) {
            match (*w, *c) {
                (true, 0) => missing += 1,
                (true, c) => {
                    stored += 1;
                    duplicates += u64::from(c - 1);
                }
                (false, 0) => {}
                (false, c) => {
                    unacked += 1;
                    duplicates += u64::from(c - 1);
                }
            }
        }
        let total = stored + unacked + duplicates;
        // Done when everything acknowledged is there, or (UDP, where
        // losses are expected) when nothing changed for three polls.
        stable = if total == last_total { stable + 1 } else { 0 };
        last_total = total;
        let done = missing == 0 || (plan.args.mode == Mode::SyslogUdp && stable >= 3);
        if done || Instant::now() >= deadline {
            let note = (plan.args.mode == Mode::RemoteWrite && stored == 0 && expected_n > 0)
                .then(|| {
                    "no sample of this run is in the metric store: the receiver's metric sink \
                     may count samples without storing them (see killkrill_metric_samples_unstored_total)"
                        .to_owned()
                });
            break Ok(Verified {
                expected: expected_n,
                stored,
                missing,
                duplicates,
                unacknowledged_stored: unacked,
                seconds: started.elapsed().as_secs_f64(),
                database: database.clone(),
                note,
            });
        }
        tokio::time::sleep(Duration::from_millis(500)).await;
    };
    store.close().await;
    result
}
