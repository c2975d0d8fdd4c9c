//! How big a group of queue batches a worker writes at once (`[workers]`
//! `group_max_events`, `group_max_batches`, `group_linger_ms`).
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
/// Most batches a group may hold.
pub const MAX_GROUP_BATCHES: usize = 4_096;
/// Longest linger, milliseconds.
pub const MAX_LINGER_MS: u64 = 10_000;

/// Checks the group settings; the error names the key.
pub(crate) fn validate(w: &WorkersConfig) -> Result<(), (&'static str, String)> {
    if w.group_max_events == 0 || w.group_max_events > MAX_GROUP_EVENTS {
        return Err((
            "workers.group_max_events",
            format!(
                "{} is out of range: 1 to {MAX_GROUP_EVENTS}",
                w.group_max_events
            ),
        ));
    }
    if w.group_max_batches == 0 || w.group_max_batches > MAX_GROUP_BATCHES {
        return Err((
            "workers.group_max_batches",
            format!(
                "{} is out of range: 1 to {MAX_GROUP_BATCHES}",
                w.group_max_batches
            ),
        ));
    }
    if w.group_linger_ms > MAX_LINGER_MS {
        return Err((
            "workers.group_linger_ms",
            format!(
                "{} is out of range: 0 to {MAX_LINGER_MS}",
                w.group_linger_ms
            ),
        ));
    }
    Ok(())
}

/// The pipeline worker settings of `serve`'s workers.
pub fn worker_config(w: &WorkersConfig, drain: Duration) -> WorkerConfig {
    let d = WorkerConfig::default();
    WorkerConfig {
        drain_timeout: drain,
        group_max_events: w.group_max_events,
        group_max_batches: w.group_max_batches,
        linger: Duration::from_millis(w.group_linger_ms),
        ..d
    }
}
