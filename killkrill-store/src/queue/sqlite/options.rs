//! [`SqliteQueueOptions`].

use std::sync::Arc;
use std::time::Duration;

use killkrill_core::pipeline::{BatchCodec, Compression, DeadLetter};

use crate::config::SqliteSync;

/// Settings of a [`SqliteQueue`](super::SqliteQueue).
#[derive(Clone)]
pub struct SqliteQueueOptions {
    /// Durability of each commit (see the module docs for the trade-off).
    pub synchronous: SqliteSync,
    /// Most events held at once.
    pub max_events: u64,
    /// Most stored (encoded) bytes held at once.
    pub max_bytes: u64,
    /// A delivery not acknowledged within this is delivered again.
    pub visibility_timeout: Duration,
    /// Compression of stored batches.
    pub compression: Compression,
    /// The batch format written: 2 (the default: a metric series' labels
    /// once per run) or 1 (what builds before 2 read). Every version is
    /// read whatever this says; 1 is for a rolling upgrade on a shared
    /// queue, until no older worker is left.
    pub batch_format_version: u8,
    /// Free pages tolerated before an incremental vacuum gives them back.
    pub vacuum_free_pages: u64,
    /// Bodies larger than this go to segment files (written once) instead
    /// of inline blobs (written to the WAL and again by the checkpoint, over
    /// a chain of overflow pages once larger than a page).
    pub inline_max_bytes: usize,
    /// A segment file takes appends until it holds this many bytes.
    pub segment_bytes: u64,
    /// Batches enqueued by this process are also kept in memory, up to
    /// this many estimated bytes, until first leased: that lease takes
    /// the batch instead of reading and decoding its body. 0 turns it off.
    pub hot_cache_bytes: usize,
    /// Where undecodable entries go; `None` quarantines them in the queue
    /// file's `undecodable` table.
    pub dead_letter: Option<Arc<dyn DeadLetter>>,
}

impl std::fmt::Debug for SqliteQueueOptions {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.debug_struct("SqliteQueueOptions")
            .field("synchronous", &self.synchronous)
            .field("max_events", &self.max_events)
            .field("max_bytes", &self.max_bytes)
            .field("visibility_timeout", &self.visibility_timeout)
            .field("compression", &self.compression)
            .field("batch_format_version", &self.batch_format_version)
            .field("vacuum_free_pages", &self.vacuum_free_pages)
            .field("inline_max_bytes", &self.inline_max_bytes)
            .field("segment_bytes", &self.segment_bytes)
            .field("hot_cache_bytes", &self.hot_cache_bytes)
            .field("dead_letter", &self.dead_letter.is_some())
            .finish()
    }
}

impl Default for SqliteQueueOptions {
    /// `NORMAL`, 1,000,000 events, 1 GiB, 60 s, uncompressed, 1,024 pages,
    /// bodies over 4,000 bytes (what does not fit in one 4 KiB page) in
    /// segments of 64 MiB, up to 64 MiB (estimated) of batches kept until
    /// first leased.
    fn default() -> Self {
        SqliteQueueOptions {
            synchronous: SqliteSync::Normal,
            max_events: 1_000_000,
            max_bytes: 1 << 30,
            visibility_timeout: Duration::from_secs(60),
            compression: Compression::None,
            batch_format_version: BatchCodec::VERSION,
            vacuum_free_pages: 1024,
            inline_max_bytes: 4_000,
            segment_bytes: 64 << 20,
            hot_cache_bytes: 64 << 20,
            dead_letter: None,
        }
    }
}
