//! The scale-out queue: Redis Streams with a consumer group.
//!
//! One queue is one stream, named for its kind and tenant group with a hash
//! tag (`killkrill:{logs:default}:stream`), so the stream and its quarantine
//! stream land in the same Redis Cluster slot, and different kinds or tenant
//! groups spread over the cluster. Many receivers `XADD` to it; many workers
//! read it through one consumer group, each process as its own consumer.
//!
//! How the contract of core's `Queue` maps onto Streams:
//! - **Durable when `enqueue` returns**: the server has answered the `XADD`
//!   (durability is then Redis's: `appendonly yes` with `appendfsync
//!   always|everysec`, and replicas).
//! - **Bounded** (see [`add`]): by default `XLEN`, then a plain `XADD`,
//!   with at most `max_adds_in_flight` adds between check and reply per
//!   queue, so the stream holds at most `max_len - 1` plus the adds in
//!   flight of all producers; or, with [`RedisBound::Exact`], a Lua script
//!   that checks and adds in one step (never over, about three times the
//!   server CPU per add). A full stream makes `enqueue` poll until `wait`
//!   passes, then answer `Full`. The stream is never trimmed by `MAXLEN` on
//!   add: that would drop unacknowledged batches.
//! - **Deliveries**: `XREADGROUP ... BLOCK` on a connection of its own for
//!   each blocking reader (a blocking read on the shared multiplexed
//!   connection would stall every other caller), with a response timeout
//!   above the block time. Reads block at most `poll_interval` so that
//!   reclaimable entries are noticed while idle.
//! - **Visibility timeout**: `XAUTOCLAIM` takes entries idle in the group's
//!   pending list for longer than `visibility_timeout` (a worker died or is
//!   stuck); the delivery count Redis keeps becomes `attempts`. It runs at
//!   most every `poll_interval` (and at once after a local `nack`), so a
//!   timed-out delivery comes back within the timeout plus that interval.
//! - **nack** sets the entry's idle time with `XCLAIM ... IDLE ... JUSTID` so
//!   that `XAUTOCLAIM` picks it up after `retry_after`, without counting a
//!   delivery.
//! - **ack** is `XACK` + `XDEL` in one script call; `trim_acknowledged` (run
//!   every `trim_interval`) removes, with `XTRIM MINID`, only entries older
//!   than every pending or undelivered entry of every group — leftovers of
//!   an ack whose `XDEL` did not happen.
//! - `rediss://` URLs use TLS (rustls); `cluster = true` uses the cluster
//!   client.

use std::sync::atomic::{AtomicBool, AtomicU64, Ordering};
use std::time::{Duration, SystemTime, UNIX_EPOCH};

use async_trait::async_trait;
use killkrill_core::pipeline::{
    Batch, BatchCodec, Delivery, DeliveryId, ErrorKind, Queue, QueueError, QueueStats,
};
use redis::aio::ConnectionManagerConfig;
use redis::cluster::ClusterClient;
use redis::io::tcp::TcpSettings;
use redis::{AsyncConnectionConfig, Client, IntoConnectionInfo, RedisError, Value};
use tokio::sync::Mutex;
use tokio::time::Instant;

use super::{backend, file_undecodable};

mod add;
mod conn;
mod maintenance;
mod options;
mod read;
mod scripts;

pub use add::RedisBound;
pub use conn::cluster_nodes;
use conn::{Conn, Connector, rerr};
pub use options::RedisQueueOptions;
use read::RawEntry;
use scripts::{ACK_DEL, ADD_IF_ROOM, Script};

/// The stream key for a kind and tenant group; the braces are the Cluster
/// hash tag, shared with the quarantine stream.
pub fn stream_key(prefix: &str, kind: &str, tenant_group: &str) -> String {
    format!("{prefix}:{{{kind}:{tenant_group}}}:stream")
}

/// The tenant group of `tenant` when tenants are spread over `groups`
/// streams (`g0` .. `g{groups-1}`), by a stable hash of the tenant name: a
/// receiver enqueues to the queue of that group, and each group has its own
/// workers. `groups = 0` or `1` puts everyone in `g0`.
pub fn tenant_group(tenant: &killkrill_core::event::Tenant, groups: u32) -> String {
    let h = xxhash_rust::xxh3::xxh3_64(tenant.as_str().as_bytes());
    format!("g{}", h % u64::from(groups.max(1)))
}

fn quarantine_key(prefix: &str, kind: &str, tenant_group: &str) -> String {
    format!("{prefix}:{{{kind}:{tenant_group}}}:undecodable")
}

/// Stream ids `ms-seq` as one u128, and back.
fn parse_id(id: &str) -> Option<u128> {
    let (ms, seq) = id.split_once('-')?;
    Some((u128::from(ms.parse::<u64>().ok()?) << 64) | u128::from(seq.parse::<u64>().ok()?))
}

fn format_id(v: u128) -> String {
    format!("{}-{}", (v >> 64) as u64, v as u64)
}

fn now_ms() -> u64 {
    SystemTime::now()
        .duration_since(UNIX_EPOCH)
        .map_or(0, |d| u64::try_from(d.as_millis()).unwrap_or(u64::MAX))
}

fn default_consumer() -> String {
    let host = std::env::var("HOSTNAME")
        .ok()
        .filter(|h| !h.is_empty())
        .or_else(|| {
            std::fs::read_to_string("/etc/hostname")
                .ok()
                .map(|s| s.trim().to_owned())
        })
        .unwrap_or_else(|| "host".into());
    let nanos = SystemTime::now()
        .duration_since(UNIX_EPOCH)
        .map_or(0, |d| d.subsec_nanos());
    format!("{host}-{}-{nanos:08x}", std::process::id())
}

/// A bounded, at-least-once queue on one Redis stream (see the module docs).
pub struct RedisStreamsQueue {
    opts: RedisQueueOptions,
    codec: BatchCodec,
    key: String,
    quarantine: String,
    consumer: String,
    connector: Connector,
    conn: Conn,
    /// The bounded add and the acknowledgement, run by `EVALSHA`.
    add_if_room: Script,
    ack_del: Script,
    /// Which adds may go in ([`RedisBound::Checked`]).
    admission: add::Admission,
    /// Idle dedicated connections for blocking reads.
    blocking: Mutex<Vec<Conn>>,
    last_trim_ms: AtomicU64,
    /// When `XAUTOCLAIM` last ran; it runs at most every `poll_interval`...
    last_reclaim_ms: AtomicU64,
    /// ...unless this process gave a delivery back.
    reclaim_now: AtomicBool,
}

impl RedisStreamsQueue {
    /// Connects to `url` and creates the consumer group if it does not exist
    /// (with the stream). `redis://` and `rediss://` (TLS) name one server
    /// (or, with `opts.cluster`, one node of a cluster);
    /// `redis+cluster://host:port[,host:port...]` and `rediss+cluster://...`
    /// select the cluster client with those nodes as seeds.
    ///
    /// # Errors
    /// [`QueueError::Backend`] when the URL is invalid or Redis cannot be
    /// reached.
    pub async fn connect(url: &str, mut opts: RedisQueueOptions) -> Result<Self, QueueError> {
        let nodes = match conn::cluster_nodes(url) {
            Some(nodes) => {
                opts.cluster = true;
                nodes
            }
            None => vec![url.to_owned()],
        };
        // TCP_NODELAY, as hiredis and redis-benchmark set it: with Nagle's
        // algorithm a command written while an earlier one is unacknowledged
        // waits for that acknowledgement, which serializes pipelined adds.
        let tcp = TcpSettings::default().set_nodelay(true);
        let connector = if opts.cluster {
            Connector::Cluster(
                ClusterClient::builder(nodes)
                    .tcp_settings(tcp)
                    .response_timeout(opts.command_timeout)
                    .connection_timeout(opts.command_timeout)
                    .build()
                    .map_err(|e| rerr("cluster URL", &e))?,
            )
        } else {
            let info = url
                .into_connection_info()
                .map_err(|e| rerr("URL", &e))?
                .set_tcp_settings(tcp);
            Connector::Single(Client::open(info).map_err(|e| rerr("URL", &e))?)
        };
        let conn = match &connector {
            Connector::Single(c) => Conn::Managed(
                c.get_connection_manager_with_config(
                    ConnectionManagerConfig::new()
                        .set_response_timeout(Some(opts.command_timeout))
                        .set_connection_timeout(Some(opts.command_timeout))
                        .set_number_of_retries(3),
                )
                .await
                .map_err(|e| rerr("connecting", &e))?,
            ),
            Connector::Cluster(c) => Conn::Cluster(
                c.get_async_connection()
                    .await
                    .map_err(|e| rerr("connecting", &e))?,
            ),
        };
        let key = stream_key(&opts.prefix, &opts.kind, &opts.tenant_group);
        let quarantine = quarantine_key(&opts.prefix, &opts.kind, &opts.tenant_group);
        let consumer = opts.consumer.clone().unwrap_or_else(default_consumer);
        // A server (or proxy, or ACL) refusing SCRIPT LOAD leaves the SHA1s
        // empty: the scripts are then sent with every call (EVAL).
        let mut c = conn.clone();
        let add_if_room = Script::load(&mut c, ADD_IF_ROOM).await;
        let ack_del = Script::load(&mut c, ACK_DEL).await;
        let q = RedisStreamsQueue {
            codec: BatchCodec::new()
                .with_compression(opts.compression)
                .with_version(opts.batch_format_version),
            key,
            quarantine,
            consumer,
            connector,
            conn,
            add_if_room,
            ack_del,
            admission: add::Admission::new(opts.max_adds_in_flight),
            blocking: Mutex::new(Vec::new()),
            last_trim_ms: AtomicU64::new(now_ms()),
            last_reclaim_ms: AtomicU64::new(0),
            reclaim_now: AtomicBool::new(false),
            opts,
        };
        q.create_group().await?;
        Ok(q)
    }

    /// The stream's key.
    pub fn key(&self) -> &str {
        &self.key
    }

    /// This process's consumer name.
    pub fn consumer(&self) -> &str {
        &self.consumer
    }

    async fn create_group(&self) -> Result<(), QueueError> {
        let r: Result<(), RedisError> = redis::cmd("XGROUP")
            .arg("CREATE")
            .arg(&self.key)
            .arg(&self.opts.group)
            .arg("0")
            .arg("MKSTREAM")
            .query_async(&mut self.conn.clone())
            .await;
        match r {
            Ok(()) => Ok(()),
            Err(e) if e.code() == Some("BUSYGROUP") => Ok(()),
            Err(e) => Err(rerr("creating the consumer group", &e)),
        }
    }

    async fn blocking_conn(&self) -> Result<Conn, QueueError> {
        if let Some(c) = self.blocking.lock().await.pop() {
            return Ok(c);
        }
        let timeout = self.opts.poll_interval + self.opts.command_timeout;
        match &self.connector {
            Connector::Single(c) => Ok(Conn::Plain(
                c.get_multiplexed_async_connection_with_config(
                    &AsyncConnectionConfig::new()
                        .set_response_timeout(Some(timeout))
                        .set_connection_timeout(Some(self.opts.command_timeout)),
                )
                .await
                .map_err(|e| rerr("opening a reader connection", &e))?,
            )),
            // A cluster connection of its own, so the blocking read has its
            // own node connections.
            Connector::Cluster(c) => Ok(Conn::Cluster(
                c.get_async_connection_with_config(
                    redis::cluster::ClusterConfig::new().set_response_timeout(timeout),
                )
                .await
                .map_err(|e| rerr("opening a reader connection", &e))?,
            )),
        }
    }

    /// Claims entries idle longer than the visibility timeout.
    async fn reclaim(&self, max: usize) -> Result<Vec<Delivery>, QueueError> {
        let mut conn = self.conn.clone();
        let reply: Value = redis::cmd("XAUTOCLAIM")
            .arg(&self.key)
            .arg(&self.opts.group)
            .arg(&self.consumer)
            .arg(self.opts.visibility_timeout.as_millis() as u64)
            .arg("0-0")
            .arg("COUNT")
            .arg(max)
            .query_async(&mut conn)
            .await
            .map_err(|e| rerr("XAUTOCLAIM", &e))?;
        let (mut claimed, deleted) = read::autoclaim_reply(reply);
        if !deleted.is_empty() {
            self.forget_deleted(&deleted).await?;
        }
        if claimed.is_empty() {
            return Ok(Vec::new());
        }
        // The delivery counts, which XAUTOCLAIM has just raised.
        let mut p = redis::pipe();
        for e in &claimed {
            p.cmd("XPENDING")
                .arg(&self.key)
                .arg(&self.opts.group)
                .arg(&e.id)
                .arg(&e.id)
                .arg(1);
        }
        let pending: Vec<Vec<(String, String, u64, u64)>> = p
            .query_async(&mut conn)
            .await
            .map_err(|e| rerr("XPENDING", &e))?;
        for (e, p) in claimed.iter_mut().zip(&pending) {
            e.attempts = p
                .first()
                .map_or(1, |p| u32::try_from(p.3).unwrap_or(u32::MAX));
        }
        metrics::counter!("killkrill_queue_reclaimed_batches_total", "queue" => "redis")
            .increment(claimed.len() as u64);
        self.deliveries(claimed).await
    }

    /// Entries deleted from the stream while pending (by hand, or an
    /// `XTRIM`/`XDEL` from outside): their batches are gone. Counted, and
    /// acknowledged, so that Redis 6.2 (which keeps them pending) does not
    /// hand them to every `XAUTOCLAIM` again, count them in flight, and hold
    /// back `trim_acknowledged`; for Redis 7 (which has already removed them
    /// from the pending list) the `XACK` changes nothing.
    async fn forget_deleted(&self, ids: &[String]) -> Result<(), QueueError> {
        metrics::counter!("killkrill_queue_deleted_pending_total", "queue" => "redis")
            .increment(ids.len() as u64);
        tracing::error!(
            stream = %self.key,
            count = ids.len(),
            first = %ids[0],
            "stream entries were deleted while pending; their batches are lost"
        );
        let _: u64 = redis::cmd("XACK")
            .arg(&self.key)
            .arg(&self.opts.group)
            .arg(ids)
            .query_async(&mut self.conn.clone())
            .await
            .map_err(|e| rerr("XACK of deleted entries", &e))?;
        Ok(())
    }

    async fn read_new(&self, max: usize, block: Duration) -> Result<Vec<Delivery>, QueueError> {
        let mut conn = self.blocking_conn().await?;
        let mut cmd = redis::cmd("XREADGROUP");
        cmd.arg("GROUP")
            .arg(&self.opts.group)
            .arg(&self.consumer)
            .arg("COUNT")
            .arg(max);
        let block_ms = block.as_millis() as u64;
        if block_ms > 0 {
            cmd.arg("BLOCK").arg(block_ms);
        }
        cmd.arg("STREAMS").arg(&self.key).arg(">");
        let r: Result<Value, RedisError> = cmd.query_async(&mut conn).await;
        match r {
            Ok(reply) => {
                self.blocking.lock().await.push(conn);
                let entries: Vec<RawEntry> = read::entries_of_read_reply(reply);
                self.deliveries(entries).await
            }
            Err(e) => {
                // The connection is dropped, not reused.
                if e.code() == Some("NOGROUP") {
                    // The stream was deleted under us: recreate the group.
                    self.create_group().await?;
                    return Ok(Vec::new());
                }
                Err(rerr("XREADGROUP", &e))
            }
        }
    }

    /// Deletes the stream and its quarantine (tests, and taking a queue out
    /// of service).
    ///
    /// # Errors
    /// [`QueueError::Backend`].
    pub async fn destroy(&self) -> Result<(), QueueError> {
        let _: u64 = redis::cmd("DEL")
            .arg(&self.key)
            .arg(&self.quarantine)
            .query_async(&mut self.conn.clone())
            .await
            .map_err(|e| rerr("DEL", &e))?;
        Ok(())
    }
}

#[async_trait]
impl Queue for RedisStreamsQueue {
    fn name(&self) -> &str {
        "redis"
    }

    async fn enqueue(&self, batch: Batch, wait: Duration) -> Result<(), QueueError> {
        let payload = self
            .codec
            .encode_to_vec(&batch)
            .map_err(|e| backend(format!("encoding a batch: {e}"), ErrorKind::Permanent))?;
        // Once encoded the records are not needed: they are freed now, not
        // held until Redis answers.
        drop(batch);
        if payload.len() as u64 > self.opts.max_batch_bytes {
            return Err(QueueError::TooLarge {
                size: payload.len() as u64,
                limit: self.opts.max_batch_bytes,
                unit: "bytes",
            });
        }
        self.add(&payload, wait).await
    }

    async fn dequeue(&self, max: usize, wait: Duration) -> Result<Vec<Delivery>, QueueError> {
        let max = max.max(1);
        let deadline = Instant::now() + wait;
        self.maybe_trim().await;
        loop {
            // Reclaiming costs a round trip: at most every poll interval
            // (so a timed-out delivery comes back within visibility timeout
            // plus poll interval), and at once after a local nack.
            let now = now_ms();
            let last = self.last_reclaim_ms.load(Ordering::Relaxed);
            if self.reclaim_now.swap(false, Ordering::Relaxed)
                || now.saturating_sub(last) >= self.opts.poll_interval.as_millis() as u64
            {
                self.last_reclaim_ms.store(now, Ordering::Relaxed);
                let back = self.reclaim(max).await?;
                if back.len() >= max {
                    // There may be more: look again next time.
                    self.reclaim_now.store(true, Ordering::Relaxed);
                }
                if !back.is_empty() {
                    return Ok(back);
                }
            }
            let left = deadline.saturating_duration_since(Instant::now());
            let block = left.min(self.opts.poll_interval);
            let new = self.read_new(max, block).await?;
            if !new.is_empty() || Instant::now() >= deadline {
                return Ok(new);
            }
        }
    }

    async fn ack(&self, ids: &[DeliveryId]) -> Result<(), QueueError> {
        if ids.is_empty() {
            return Ok(());
        }
        let ids: Vec<String> = ids.iter().map(|i| format_id(i.as_u128())).collect();
        let _acked: u64 = self
            .ack_del
            .run(&mut self.conn.clone(), &self.key, |c| {
                c.arg(&self.opts.group).arg(&ids);
            })
            .await
            .map_err(|e| rerr("XACK/XDEL", &e))?;
        Ok(())
    }

    async fn nack(&self, id: DeliveryId, retry_after: Duration) -> Result<(), QueueError> {
        let idle = self
            .opts
            .visibility_timeout
            .saturating_sub(retry_after)
            .as_millis() as u64;
        let _: Value = redis::cmd("XCLAIM")
            .arg(&self.key)
            .arg(&self.opts.group)
            .arg(&self.consumer)
            .arg(0)
            .arg(format_id(id.as_u128()))
            .arg("IDLE")
            .arg(idle)
            .arg("JUSTID")
            .query_async(&mut self.conn.clone())
            .await
            .map_err(|e| rerr("XCLAIM", &e))?;
        if retry_after.is_zero() {
            self.reclaim_now.store(true, Ordering::Relaxed);
        }
        Ok(())
    }

    async fn stats(&self) -> Result<QueueStats, QueueError> {
        let mut p = redis::pipe();
        p.cmd("XLEN")
            .arg(&self.key)
            .cmd("XPENDING")
            .arg(&self.key)
            .arg(&self.opts.group)
            .cmd("XRANGE")
            .arg(&self.key)
            .arg("-")
            .arg("+")
            .arg("COUNT")
            .arg(1);
        #[allow(clippy::type_complexity)]
        let (len, pending, first): (
            u64,
            (u64, Option<String>, Option<String>, Value),
            Vec<(String, Value)>,
        ) = p
            .query_async(&mut self.conn.clone())
            .await
            .map_err(|e| rerr("stats", &e))?;
        let oldest = first
            .first()
            .and_then(|(id, _)| parse_id(id))
            .map(|v| Duration::from_millis(now_ms().saturating_sub((v >> 64) as u64)));
        Ok(QueueStats {
            batches: len,
            events: None,
            bytes: None,
            in_flight: pending.0,
            oldest_unacked: oldest,
        })
    }
}

#[cfg(test)]
mod tests {
    #![allow(clippy::unwrap_used)]
    use super::*;
    use killkrill_core::event::Tenant;

    #[test]
    fn ids_round_trip_and_keys_carry_one_hash_tag() {
        for id in [
            "0-0",
            "1764000000000-0",
            "1764000000000-42",
            "18446744073709551615-18446744073709551615",
        ] {
            assert_eq!(format_id(parse_id(id).unwrap()), id);
        }
        assert!(parse_id("12").is_none() && parse_id("a-1").is_none());
        assert!(parse_id("1-0").unwrap() > parse_id("0-99").unwrap());
        let k = stream_key("killkrill", "logs", "g3");
        assert_eq!(k, "killkrill:{logs:g3}:stream");
        assert_eq!(
            quarantine_key("killkrill", "logs", "g3"),
            "killkrill:{logs:g3}:undecodable"
        );
    }

    #[test]
    fn tenant_groups_are_stable_and_spread() {
        let t = |n: &str| Tenant::new(n).unwrap();
        assert_eq!(tenant_group(&t("acme"), 1), "g0");
        assert_eq!(tenant_group(&t("acme"), 0), "g0");
        assert_eq!(tenant_group(&t("acme"), 8), tenant_group(&t("acme"), 8));
        let used: std::collections::BTreeSet<String> = (0..200)
            .map(|i| tenant_group(&t(&format!("tenant{i}")), 8))
            .collect();
        assert_eq!(used.len(), 8);
    }
}
