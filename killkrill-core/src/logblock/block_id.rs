//! Block ids: 128 bits derived from what is in the block.
//!
//! A block built from a batch gets `xxh3-128(tenant, 0, the record ids in
//! block order)`. The same batch — redelivered after a crash, or sent twice
//! by an at-least-once queue — is cut into the same blocks with the same ids,
//! so the store can skip it: exactly-once storage under at-least-once
//! delivery. A compacted block gets a hash of its source block ids in another
//! domain, so it can never collide with a batch block.

use std::fmt;

use xxhash_rust::xxh3::Xxh3;

use crate::event::{EventId, Tenant};

/// A block's id.
#[derive(Debug, Clone, Copy, PartialEq, Eq, PartialOrd, Ord, Hash, Default)]
pub struct BlockId(pub u128);

const BATCH_DOMAIN: u8 = 0;
const MERGE_DOMAIN: u8 = 1;

impl BlockId {
    /// The id of a block holding exactly these record ids, in this order.
    pub fn for_records(tenant: &Tenant, ids: impl IntoIterator<Item = EventId>) -> Self {
        let mut h = Xxh3::new();
        h.update(tenant.as_str().as_bytes());
        h.update(&[0, BATCH_DOMAIN]);
        for id in ids {
            h.update(&id.to_bytes());
        }
        BlockId(h.digest128())
    }

    /// The id of the `part`-th block made by merging `sources`.
    pub fn for_merge(tenant: &Tenant, sources: &[BlockId], part: u32) -> Self {
        let mut h = Xxh3::new();
        h.update(tenant.as_str().as_bytes());
        h.update(&[0, MERGE_DOMAIN]);
        h.update(&part.to_le_bytes());
        for s in sources {
            h.update(&s.to_bytes());
        }
        BlockId(h.digest128())
    }

    /// Big-endian bytes, as stored.
    pub fn to_bytes(self) -> [u8; 16] {
        self.0.to_be_bytes()
    }

    /// From stored bytes; `None` unless exactly 16.
    pub fn from_slice(b: &[u8]) -> Option<Self> {
        let a: [u8; 16] = b.try_into().ok()?;
        Some(BlockId(u128::from_be_bytes(a)))
    }
}

impl fmt::Display for BlockId {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        write!(f, "{:032x}", self.0)
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn deterministic_and_domain_separated() {
        let t = Tenant::new("a").unwrap();
        let ids = [EventId::from_u128(1), EventId::from_u128(2)];
        let a = BlockId::for_records(&t, ids);
        assert_eq!(a, BlockId::for_records(&t, ids));
        assert_ne!(a, BlockId::for_records(&Tenant::new("b").unwrap(), ids));
        assert_ne!(a, BlockId::for_records(&t, [ids[1], ids[0]]));
        assert_ne!(
            BlockId::for_merge(&t, &[a], 0),
            BlockId::for_merge(&t, &[a], 1)
        );
        assert_eq!(BlockId::from_slice(&a.to_bytes()), Some(a));
        assert_eq!(BlockId::from_slice(&[1, 2]), None);
        assert_eq!(format!("{}", BlockId(255)), format!("{:0>32}", "ff"));
    }
}
