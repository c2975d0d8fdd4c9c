//! A memory-bounded cache of block token filters.
//!
//! A full-text query over a day has to test every block's token bloom
//! filter; at 10M records a day that is ~55 MB of filters, and moving them
//! out of the database on every query dominated rare-token latency. Blocks
//! are immutable (a block id always names the same records, so the same
//! filter), which makes caching trivially correct: entries never go stale,
//! they only become unused when a block is compacted away or expires, and
//! then age out. Eviction is by a byte budget, oldest use first.
//!
//! The same cache, over [`DecodedBlock`]s, keeps recently read blocks
//! decoded: a filtered page that has to look at tens of blocks (an error on
//! one host) otherwise fetches and decompresses every one of them again for
//! each request.

use std::collections::HashMap;
use std::sync::{Arc, Mutex};

use killkrill_core::event::Tenant;
use killkrill_core::logblock::{BlockId, Bloom, DecodedBlock};

/// What an entry costs in the budget.
pub(crate) trait Weigh {
    /// Bytes held.
    fn weight(&self) -> usize;
}

impl Weigh for Bloom {
    fn weight(&self) -> usize {
        self.byte_len() + 64
    }
}

impl Weigh for DecodedBlock {
    fn weight(&self) -> usize {
        self.byte_len() + 64
    }
}

impl Weigh for killkrill_core::storage::BlockTimes {
    fn weight(&self) -> usize {
        self.0.len() * 8 + self.1.len() + 64
    }
}

/// Token filters by block.
pub(crate) type TokenCache = BlockCache<Bloom>;
/// Decoded payloads by block.
pub(crate) type DecodedCache = BlockCache<DecodedBlock>;
/// Timestamps and severities by block (volume histograms).
pub(crate) type TimesCache = BlockCache<killkrill_core::storage::BlockTimes>;

struct Inner<V> {
    map: HashMap<(Tenant, BlockId), (Arc<V>, u64)>,
    bytes: usize,
    clock: u64,
}

/// See the module docs.
pub(crate) struct BlockCache<V> {
    inner: Mutex<Inner<V>>,
    budget: usize,
}

impl<V> std::fmt::Debug for BlockCache<V> {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.debug_struct("BlockCache")
            .field("budget", &self.budget)
            .finish()
    }
}

impl<V: Weigh> BlockCache<V> {
    pub(crate) fn new(budget: usize) -> Self {
        BlockCache {
            inner: Mutex::new(Inner {
                map: HashMap::new(),
                bytes: 0,
                clock: 0,
            }),
            budget,
        }
    }

    /// Cached filters for `ids`, `None` where missing.
    pub(crate) fn get_many(&self, tenant: &Tenant, ids: &[BlockId]) -> Vec<Option<Arc<V>>> {
        let Ok(mut g) = self.inner.lock() else {
            return vec![None; ids.len()];
        };
        g.clock += 1;
        let now = g.clock;
        ids.iter()
            .map(|id| {
                g.map.get_mut(&(tenant.clone(), *id)).map(|(b, used)| {
                    *used = now;
                    b.clone()
                })
            })
            .collect()
    }

    pub(crate) fn put(&self, tenant: &Tenant, id: BlockId, bloom: Arc<V>) {
        if self.budget == 0 {
            return;
        }
        let Ok(mut g) = self.inner.lock() else { return };
        g.clock += 1;
        let now = g.clock;
        let size = bloom.weight();
        if let Some((old, _)) = g.map.insert((tenant.clone(), id), (bloom, now)) {
            g.bytes -= old.weight();
        }
        g.bytes += size;
        if g.bytes > self.budget {
            // Drop the least recently used half: amortised O(1) per insert.
            let mut ages: Vec<u64> = g.map.values().map(|(_, u)| *u).collect();
            let mid = ages.len() / 2;
            let (_, cut, _) = ages.select_nth_unstable(mid);
            let cut = *cut;
            let mut freed = 0;
            g.map.retain(|_, (b, used)| {
                let keep = *used > cut;
                if !keep {
                    freed += b.weight();
                }
                keep
            });
            g.bytes -= freed;
        }
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn hits_misses_and_budget() {
        let t = Tenant::default();
        let b = Arc::new(Bloom::with_capacity(100, 0.01));
        let per = b.byte_len() + 64;
        let c = TokenCache::new(per * 4);
        for i in 0..4 {
            c.put(&t, BlockId(i), b.clone());
        }
        assert!(c.get_many(&t, &[BlockId(0), BlockId(9)])[0].is_some());
        assert!(c.get_many(&t, &[BlockId(9)])[0].is_none());
        c.put(&t, BlockId(4), b.clone()); // over budget: the older half goes
        let got = c.get_many(&t, &[BlockId(0), BlockId(1), BlockId(4)]);
        assert!(got[0].is_some(), "recently used survives");
        assert!(got[1].is_none(), "least recently used evicted");
        assert!(got[2].is_some());
        let other = Tenant::new("x").unwrap();
        assert!(
            c.get_many(&other, &[BlockId(0)])[0].is_none(),
            "tenant-scoped"
        );
    }
}
