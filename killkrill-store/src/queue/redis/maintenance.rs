//! Upkeep of a stream: trimming acknowledged leftovers and forgetting idle
//! consumers, at most every `trim_interval`, from `dequeue`.

use std::sync::atomic::Ordering;

use killkrill_core::pipeline::QueueError;
use redis::Value;

use super::{RedisStreamsQueue, format_id, now_ms, parse_id, rerr};

/// Removes consumer ARGV[2] of group ARGV[1] only if it has no pending
/// entry (answers -1 then), atomically: run by `EVAL` (rarely, from
/// [`RedisStreamsQueue::forget_idle_consumers`]).
const FORGET_IF_NOTHING_PENDING: &str = "\
if #redis.call('XPENDING', KEYS[1], ARGV[1], '-', '+', 1, ARGV[2]) > 0 then return -1 end \
return redis.call('XGROUP', 'DELCONSUMER', KEYS[1], ARGV[1], ARGV[2])";

impl RedisStreamsQueue {
    /// Removes entries that every consumer group has acknowledged (older than
    /// each group's oldest pending and oldest undelivered entry). Returns how
    /// many were removed.
    ///
    /// # Errors
    /// [`QueueError::Backend`].
    pub async fn trim_acknowledged(&self) -> Result<u64, QueueError> {
        let mut conn = self.conn.clone();
        let groups: Vec<std::collections::HashMap<String, Value>> = redis::cmd("XINFO")
            .arg("GROUPS")
            .arg(&self.key)
            .query_async(&mut conn)
            .await
            .map_err(|e| rerr("XINFO GROUPS", &e))?;
        let mut floor: Option<u128> = None;
        for g in groups {
            let text = |k: &str| match g.get(k) {
                Some(Value::BulkString(b)) => String::from_utf8_lossy(b).into_owned(),
                Some(Value::SimpleString(s)) => s.clone(),
                _ => String::new(),
            };
            let name = text("name");
            let Some(last) = parse_id(&text("last-delivered-id")) else {
                return Ok(0);
            };
            // Everything after the last delivered id is still to be read.
            let mut keep = last.saturating_add(1);
            let summary: (u64, Option<String>, Option<String>, Value) = redis::cmd("XPENDING")
                .arg(&self.key)
                .arg(&name)
                .query_async(&mut conn)
                .await
                .map_err(|e| rerr("XPENDING", &e))?;
            if let Some(min) = summary.1.as_deref().and_then(parse_id) {
                keep = keep.min(min);
            }
            floor = Some(floor.map_or(keep, |f: u128| f.min(keep)));
        }
        let Some(floor) = floor else {
            return Ok(0);
        };
        let n: u64 = redis::cmd("XTRIM")
            .arg(&self.key)
            .arg("MINID")
            .arg(format_id(floor))
            .query_async(&mut conn)
            .await
            .map_err(|e| rerr("XTRIM", &e))?;
        if n > 0 {
            metrics::counter!("killkrill_queue_trimmed_entries_total", "queue" => "redis")
                .increment(n);
        }
        Ok(n)
    }

    pub(super) async fn maybe_trim(&self) {
        let now = now_ms();
        let last = self.last_trim_ms.load(Ordering::Relaxed);
        if now.saturating_sub(last) < self.opts.trim_interval.as_millis() as u64
            || self
                .last_trim_ms
                .compare_exchange(last, now, Ordering::Relaxed, Ordering::Relaxed)
                .is_err()
        {
            return;
        }
        if let Err(e) = self.trim_acknowledged().await {
            tracing::warn!(error = %e, stream = %self.key, "trimming acknowledged entries failed");
        }
        if let Err(e) = self.forget_idle_consumers().await {
            tracing::warn!(error = %e, stream = %self.key, "removing idle consumers failed");
        }
    }

    /// Removes consumers of this queue's group that hold no pending entry
    /// and have been idle longer than `forget_consumers_after` (never this
    /// one). A consumer with pending entries is kept: removing it would drop
    /// them from the pending list, out of reach of `XAUTOCLAIM`. Returns how
    /// many were removed.
    ///
    /// # Errors
    /// [`QueueError::Backend`].
    pub async fn forget_idle_consumers(&self) -> Result<u64, QueueError> {
        let mut conn = self.conn.clone();
        let consumers: Vec<std::collections::HashMap<String, Value>> = redis::cmd("XINFO")
            .arg("CONSUMERS")
            .arg(&self.key)
            .arg(&self.opts.group)
            .query_async(&mut conn)
            .await
            .map_err(|e| rerr("XINFO CONSUMERS", &e))?;
        let limit = self.opts.forget_consumers_after.as_millis() as i64;
        let mut removed = 0;
        for c in consumers {
            let int = |k: &str| match c.get(k) {
                Some(Value::Int(i)) => *i,
                _ => -1,
            };
            let name = match c.get("name") {
                Some(Value::BulkString(b)) => String::from_utf8_lossy(b).into_owned(),
                Some(Value::SimpleString(s)) => s.clone(),
                _ => continue,
            };
            if name == self.consumer || int("pending") != 0 || int("idle") < limit {
                continue;
            }
            if self.forget_consumer(&name).await? {
                removed += 1;
            }
        }
        Ok(removed)
    }

    /// Removes consumer `name` of this queue's group if it has no pending
    /// entry, in one step on the server (a script): a consumer that read
    /// entries since it was listed as idle keeps them, as removing it would
    /// drop them from the pending list, out of reach of `XAUTOCLAIM`, and
    /// nobody would redeliver them. Returns whether it was removed
    /// (counted in `killkrill_queue_consumers_forgotten_total`).
    ///
    /// # Errors
    /// [`QueueError::Backend`].
    pub async fn forget_consumer(&self, name: &str) -> Result<bool, QueueError> {
        let mut conn = self.conn.clone();
        let r: i64 = redis::cmd("EVAL")
            .arg(FORGET_IF_NOTHING_PENDING)
            .arg(1)
            .arg(&self.key)
            .arg(&self.opts.group)
            .arg(name)
            .query_async(&mut conn)
            .await
            .map_err(|e| rerr("forgetting an idle consumer", &e))?;
        if r < 0 {
            tracing::debug!(consumer = %name, "idle consumer read entries since the listing; kept");
            return Ok(false);
        }
        metrics::counter!("killkrill_queue_consumers_forgotten_total", "queue" => "redis")
            .increment(1);
        Ok(true)
    }
}
