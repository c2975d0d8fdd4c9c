//! How big a group of queue batches a worker writes at once (`[workers]`
//! `group_max_events`, `group_max_logs`, `group_max_bytes`,
//! `group_max_batches`, `group_linger_ms`).
//!
//! A group is written to the stores in one call and acknowledged only after
//! they committed, so its size trades acknowledgement latency and memory
//! for fewer, fuller writes: every metric chunk row, rollup partial and
//! SQLite page a commit dirties costs about the same whatever it holds, and
//! a group of N batches of the same series puts N times as many samples in
//! each. Batches stay whole (never split or merged), so their ids remain
//! the idempotency keys of the log blocks and the rollup ledger however the
//! groups fall.

use std::time::Duration;

use killkrill_core::pipeline::WorkerConfig;

use crate::config::WorkersConfig;

/// Most events a group may hold (bounds a worker's memory).
pub const MAX_GROUP_EVENTS: usize = 1_000_000;
/// Most bytes a group may hold.
pub const MAX_GROUP_BYTES: usize = 1 << 30;
/// Least bytes a group may be limited to.
pub const MIN_GROUP_BYTES: usize = 1 << 20;
/// Most batches a group may hold.
pub const MAX_GROUP_BATCHES: usize = 4_096;
/// Longest linger, milliseconds.
pub const MAX_LINGER_MS: u64 = 10_000;

/// Checks the group settings; the error names the key.
pub(crate) fn validate(w: &WorkersConfig) -> Result<(), (&'static str, String)> {
    let checks: [(&'static str, usize, usize, usize); 5] = [
        (
            "workers.group_max_events",
            w.group_max_events,
            1,
            MAX_GROUP_EVENTS,
        ),
        (
            "workers.group_max_logs",
            w.group_max_logs,
            1,
            MAX_GROUP_EVENTS,
        ),
        (
            "workers.group_max_bytes",
            w.group_max_bytes,
            MIN_GROUP_BYTES,
            MAX_GROUP_BYTES,
        ),
        (
            "workers.group_max_batches",
            w.group_max_batches,
            1,
            MAX_GROUP_BATCHES,
        ),
        (
            "workers.group_linger_ms",
            usize::try_from(w.group_linger_ms).unwrap_or(usize::MAX),
            0,
            MAX_LINGER_MS as usize,
        ),
    ];
    for (key, value, min, max) in checks {
        if !(min..=max).contains(&value) {
            return Err((key, format!("{value} is out of range: {min} to {max}")));
        }
    }
    Ok(())
}

/// The pipeline worker settings of `serve`'s workers.
pub fn worker_config(w: &WorkersConfig, drain: Duration) -> WorkerConfig {
    let d = WorkerConfig::default();
    WorkerConfig {
        drain_timeout: drain,
        group_max_events: w.group_max_events,
        group_max_logs: w.group_max_logs,
        group_max_bytes: w.group_max_bytes,
        group_max_batches: w.group_max_batches,
        linger: Duration::from_millis(w.group_linger_ms),
        ..d
    }
}
