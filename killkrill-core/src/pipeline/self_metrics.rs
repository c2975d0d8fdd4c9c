//! Names of the pipeline's own metrics, and the calls that record them.
//!
//! Libraries only emit through the `metrics` facade; a binary installs the
//! exporter (`/metrics` in `killkrill serve`). Without one, every call here
//! is a no-op costing an atomic load. Every name is listed in
//! `docs/src/pipeline.md`; a test keeps that list and this file in step.
//!
//! Counters are recorded per batch, not per event, so they cost nothing
//! measurable on the hot path.

use std::time::Duration;

use metrics::{counter, gauge, histogram};

use super::QueueStats;

/// Events handed to the pipeline by receivers (`source`).
pub const RECEIVED_EVENTS: &str = "killkrill_received_events_total";
/// Events a parser produced (`format`).
pub const PARSED_EVENTS: &str = "killkrill_parsed_events_total";
/// Inputs a parser could not parse (`format`); kept raw in lenient mode.
pub const PARSE_ERRORS: &str = "killkrill_parse_errors_total";
/// Batches enqueued (`queue`).
pub const ENQUEUED_BATCHES: &str = "killkrill_queue_enqueued_batches_total";
/// Events enqueued (`queue`).
pub const ENQUEUED_EVENTS: &str = "killkrill_queue_enqueued_events_total";
/// Enqueues refused (`queue`, `reason` = `full` | `too_large` | `closed` | `backend`).
pub const ENQUEUE_REJECTED: &str = "killkrill_queue_enqueue_rejected_total";
/// Deliveries taken by workers (`queue`).
pub const DEQUEUED_BATCHES: &str = "killkrill_queue_dequeued_batches_total";
/// Deliveries that were redeliveries (`queue`).
pub const REDELIVERED_BATCHES: &str = "killkrill_queue_redelivered_batches_total";
/// Queue errors seen by workers (`queue`, `op`).
pub const QUEUE_ERRORS: &str = "killkrill_queue_errors_total";
/// Batches held by the queue (`queue`).
pub const QUEUE_DEPTH_BATCHES: &str = "killkrill_queue_depth_batches";
/// Events held by the queue, when it knows (`queue`).
pub const QUEUE_DEPTH_EVENTS: &str = "killkrill_queue_depth_events";
/// Batches delivered and not acknowledged (`queue`).
pub const QUEUE_IN_FLIGHT: &str = "killkrill_queue_in_flight_batches";
/// Age of the oldest unacknowledged batch, 0 when empty (`queue`).
pub const QUEUE_OLDEST_AGE: &str = "killkrill_queue_oldest_unacked_age_seconds";
/// Batches acknowledged after their sink committed (`queue`).
pub const ACKED_BATCHES: &str = "killkrill_pipeline_acknowledged_batches_total";
/// Events acknowledged after their sink committed (`queue`).
pub const ACKED_EVENTS: &str = "killkrill_pipeline_acknowledged_events_total";
/// Groups a worker closed, and what closed them (`queue`, `closed_by` =
/// `events` | `logs` | `bytes` | `batches` | `linger` | `shutdown` |
/// `queue_error`).
pub const GROUPS: &str = "killkrill_pipeline_groups_total";
/// Sink writes (`sink`), one per group.
pub const SINK_WRITES: &str = "killkrill_sink_writes_total";
/// Failed sink writes (`sink`, `kind` = `retryable` | `permanent`).
pub const SINK_ERRORS: &str = "killkrill_sink_errors_total";
/// Retries of a batch after a retryable sink error (`sink`).
pub const RETRIES: &str = "killkrill_pipeline_retries_total";
/// Batches filed in the dead-letter store (`reason`).
pub const DEAD_LETTERED_BATCHES: &str = "killkrill_pipeline_dead_lettered_batches_total";
/// Events in those batches (`reason`).
pub const DEAD_LETTERED_EVENTS: &str = "killkrill_pipeline_dead_lettered_events_total";
/// Dead-letter filings that failed; the delivery was given back (`reason`).
pub const DEAD_LETTER_ERRORS: &str = "killkrill_pipeline_dead_letter_errors_total";
/// Deliveries given back to the queue at shutdown.
pub const NACKED_ON_SHUTDOWN: &str = "killkrill_pipeline_shutdown_nacked_batches_total";
/// Events dropped on purpose (`stage`, `reason`).
pub const DROPPED_EVENTS: &str = "killkrill_dropped_events_total";
/// Events a parse-field transform could not parse (`transform`, `parser`).
pub const TRANSFORM_PARSE_ERRORS: &str = "killkrill_transform_parse_errors_total";
/// Seconds from the receiver creating a batch to its acknowledgement.
pub const BATCH_LATENCY: &str = "killkrill_pipeline_batch_latency_seconds";
/// Seconds one sink write took (`sink`).
pub const SINK_WRITE_SECONDS: &str = "killkrill_sink_write_seconds";

/// Every name above, for the docs check.
pub const ALL: &[&str] = &[
    RECEIVED_EVENTS,
    PARSED_EVENTS,
    PARSE_ERRORS,
    ENQUEUED_BATCHES,
    ENQUEUED_EVENTS,
    ENQUEUE_REJECTED,
    DEQUEUED_BATCHES,
    REDELIVERED_BATCHES,
    QUEUE_ERRORS,
    QUEUE_DEPTH_BATCHES,
    QUEUE_DEPTH_EVENTS,
    QUEUE_IN_FLIGHT,
    QUEUE_OLDEST_AGE,
    ACKED_BATCHES,
    ACKED_EVENTS,
    GROUPS,
    SINK_WRITES,
    SINK_ERRORS,
    RETRIES,
    DEAD_LETTERED_BATCHES,
    DEAD_LETTERED_EVENTS,
    DEAD_LETTER_ERRORS,
    NACKED_ON_SHUTDOWN,
    DROPPED_EVENTS,
    TRANSFORM_PARSE_ERRORS,
    BATCH_LATENCY,
    SINK_WRITE_SECONDS,
];

/// Counts events received by a listener.
pub fn received(source: &'static str, events: usize) {
    counter!(RECEIVED_EVENTS, "source" => source).increment(events as u64);
}

/// Counts a parser's output.
pub fn parsed(format: &'static str, events: usize, errors: usize) {
    counter!(PARSED_EVENTS, "format" => format).increment(events as u64);
    if errors > 0 {
        counter!(PARSE_ERRORS, "format" => format).increment(errors as u64);
    }
}

/// Counts events dropped on purpose, with the stage and reason.
pub fn dropped(stage: &'static str, reason: &'static str, events: usize) {
    if events > 0 {
        counter!(DROPPED_EVENTS, "stage" => stage, "reason" => reason).increment(events as u64);
    }
}

/// Publishes a queue's depth and age gauges.
pub fn queue_stats(queue: &str, s: &QueueStats) {
    let q = queue.to_owned();
    gauge!(QUEUE_DEPTH_BATCHES, "queue" => q.clone()).set(s.batches as f64);
    if let Some(e) = s.events {
        gauge!(QUEUE_DEPTH_EVENTS, "queue" => q.clone()).set(e as f64);
    }
    gauge!(QUEUE_IN_FLIGHT, "queue" => q.clone()).set(s.in_flight as f64);
    gauge!(QUEUE_OLDEST_AGE, "queue" => q).set(s.oldest_unacked.map_or(0.0, |d| d.as_secs_f64()));
}

/// Records a batch's end-to-end latency.
pub fn batch_latency(latency: Duration) {
    histogram!(BATCH_LATENCY).record(latency.as_secs_f64());
}

#[cfg(test)]
mod tests {
    #[test]
    fn self_metrics_are_documented() {
        let doc = include_str!(concat!(
            env!("CARGO_MANIFEST_DIR"),
            "/../docs/src/pipeline.md"
        ));
        for name in super::ALL {
            assert!(
                doc.contains(&format!("`{name}`")),
                "{name} is not in docs/src/pipeline.md"
            );
        }
    }
}
