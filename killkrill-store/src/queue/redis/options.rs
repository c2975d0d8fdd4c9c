//! [`RedisQueueOptions`].

use std::sync::Arc;
use std::time::Duration;

use killkrill_core::pipeline::{BatchCodec, Compression, DeadLetter};

use super::RedisBound;

/// Settings of a [`RedisStreamsQueue`](super::RedisStreamsQueue).
#[derive(Clone)]
pub struct RedisQueueOptions {
    /// First part of every key.
    pub prefix: String,
    /// What the stream carries (`logs`, `metrics`, `ingest`).
    pub kind: String,
    /// Which tenant group the stream serves.
    pub tenant_group: String,
    /// The consumer group workers read through.
    pub group: String,
    /// This process's consumer name; `None` makes one from the host name,
    /// the process id and a random suffix.
    pub consumer: Option<String>,
    /// Most entries (batches) in the stream, delivered or not; with
    /// [`RedisBound::Checked`], plus the adds in flight (see `bound`).
    pub max_len: u64,
    /// How `max_len` is enforced: checked (`XLEN`, then `XADD`; may
    /// overshoot by the adds in flight) or exact (a Lua script, about three
    /// times the server CPU per add).
    pub bound: RedisBound,
    /// With [`RedisBound::Checked`], the most adds of this queue between
    /// their check and the `XADD`'s reply: the stream holds at most
    /// `max_len - 1` plus this, summed over the producers.
    pub max_adds_in_flight: usize,
    /// Largest encoded batch accepted.
    pub max_batch_bytes: u64,
    /// A delivery idle (unacknowledged) for this long is claimed again.
    pub visibility_timeout: Duration,
    /// Longest single `XREADGROUP BLOCK` (how soon an idle reader notices
    /// reclaimable entries).
    pub poll_interval: Duration,
    /// Timeout of every non-blocking command.
    pub command_timeout: Duration,
    /// How often acknowledged leftovers are trimmed (and idle consumers
    /// forgotten).
    pub trim_interval: Duration,
    /// Consumers with nothing pending and idle this long are removed from
    /// the group (every restarted process is a new consumer).
    pub forget_consumers_after: Duration,
    /// Connect with the Redis Cluster client.
    pub cluster: bool,
    /// Compression of stored batches.
    pub compression: Compression,
    /// The batch format written: 2 (the default: a metric series' labels
    /// once per run) or 1 (what builds before 2 read). Every version is
    /// read whatever this says; 1 is for a rolling upgrade on a shared
    /// queue, until no older worker is left.
    pub batch_format_version: u8,
    /// Where undecodable entries go; `None` moves them to the
    /// `...:undecodable` stream.
    pub dead_letter: Option<Arc<dyn DeadLetter>>,
}

impl std::fmt::Debug for RedisQueueOptions {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.debug_struct("RedisQueueOptions")
            .field("prefix", &self.prefix)
            .field("kind", &self.kind)
            .field("tenant_group", &self.tenant_group)
            .field("group", &self.group)
            .field("consumer", &self.consumer)
            .field("max_len", &self.max_len)
            .field("bound", &self.bound)
            .field("max_adds_in_flight", &self.max_adds_in_flight)
            .field("visibility_timeout", &self.visibility_timeout)
            .field("cluster", &self.cluster)
            .field("batch_format_version", &self.batch_format_version)
            .finish_non_exhaustive()
    }
}

impl Default for RedisQueueOptions {
    fn default() -> Self {
        RedisQueueOptions {
            prefix: "killkrill".into(),
            kind: "ingest".into(),
            tenant_group: "default".into(),
            group: "workers".into(),
            consumer: None,
            max_len: 100_000,
            bound: RedisBound::Checked,
            max_adds_in_flight: 64,
            max_batch_bytes: 64 << 20,
            visibility_timeout: Duration::from_secs(60),
            poll_interval: Duration::from_secs(1),
            command_timeout: Duration::from_secs(5),
            trim_interval: Duration::from_secs(30),
            forget_consumers_after: Duration::from_secs(3600),
            cluster: false,
            compression: Compression::None,
            batch_format_version: BatchCodec::VERSION,
            dead_letter: None,
        }
    }
}
