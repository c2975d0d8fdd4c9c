//! Series identity and the table that finds a sample's series without
//! allocating.
//!
//! A series is (tenant, metric name, label set). The hot path looks up the
//! series of every sample, so the table is keyed by a 64-bit hash computed
//! from borrowed parts of the sample and compares the full key only on a
//! hash hit; the key is cloned once, when the series is created. The hasher
//! is std's SipHash with per-process random keys, so label values chosen by a
//! remote sender cannot force collisions.

use std::collections::HashMap;
use std::hash::{BuildHasher, BuildHasherDefault, Hasher, RandomState};
use std::sync::Arc;

use crate::event::{Labels, MetricText, Tenant};

/// Identity of a series.
#[derive(Debug, Clone, PartialEq, Eq, Hash, PartialOrd, Ord)]
pub struct SeriesKey {
    /// The tenant.
    pub tenant: Tenant,
    /// The metric name.
    pub name: MetricText,
    /// The labels (without `__name__`).
    pub labels: Labels,
}

/// Passes a precomputed `u64` hash through.
#[derive(Default)]
pub(crate) struct PrehashedHasher(u64);

impl Hasher for PrehashedHasher {
    fn finish(&self) -> u64 {
        self.0
    }
    fn write(&mut self, bytes: &[u8]) {
        for b in bytes {
            self.0 = self.0.rotate_left(8) ^ u64::from(*b);
        }
    }
    fn write_u64(&mut self, n: u64) {
        self.0 = n;
    }
}

const NONE: u32 = u32::MAX;

struct Slot<T> {
    hash: u64,
    next: u32,
    entry: Option<(Arc<SeriesKey>, T)>,
}

/// Series by key, with stable slot indices until removal.
pub(crate) struct SeriesTable<T> {
    hasher: RandomState,
    heads: HashMap<u64, u32, BuildHasherDefault<PrehashedHasher>>,
    slots: Vec<Slot<T>>,
    free: Vec<u32>,
    len: usize,
}

impl<T> SeriesTable<T> {
    pub(crate) fn new() -> Self {
        SeriesTable {
            hasher: RandomState::new(),
            heads: HashMap::default(),
            slots: Vec::new(),
            free: Vec::new(),
            len: 0,
        }
    }

    /// Number of series.
    pub(crate) fn len(&self) -> usize {
        self.len
    }

    /// The hash of a series key given by parts.
    #[inline]
    pub(crate) fn hash(&self, tenant: &str, name: &str, labels: &Labels) -> u64 {
        self.hasher.hash_one((tenant, name, labels))
    }

    /// The slot of the series, if present.
    #[inline]
    pub(crate) fn find(&self, hash: u64, tenant: &str, name: &str, labels: &Labels) -> Option<u32> {
        let mut at = *self.heads.get(&hash)?;
        while at != NONE {
            let slot = &self.slots[at as usize];
            if let Some((k, _)) = &slot.entry
                && slot.hash == hash
                && k.name == name
                && k.tenant.as_str() == tenant
                && k.labels == *labels
            {
                return Some(at);
            }
            at = slot.next;
        }
        None
    }

    /// Inserts a series that is not present; returns its slot.
    pub(crate) fn insert(&mut self, hash: u64, key: Arc<SeriesKey>, value: T) -> u32 {
        let head = self.heads.get(&hash).copied().unwrap_or(NONE);
        let slot = Slot {
            hash,
            next: head,
            entry: Some((key, value)),
        };
        let at = match self.free.pop() {
            Some(i) => {
                self.slots[i as usize] = slot;
                i
            }
            None => {
                self.slots.push(slot);
                (self.slots.len() - 1) as u32
            }
        };
        self.heads.insert(hash, at);
        self.len += 1;
        at
    }

    /// Removes the series in `at` and returns its value.
    pub(crate) fn remove(&mut self, at: u32) -> Option<T> {
        let (hash, next) = {
            let s = self.slots.get(at as usize)?;
            s.entry.as_ref()?;
            (s.hash, s.next)
        };
        // Unlink from the hash chain.
        let head = self.heads.get(&hash).copied().unwrap_or(NONE);
        if head == at {
            if next == NONE {
                self.heads.remove(&hash);
            } else {
                self.heads.insert(hash, next);
            }
        } else {
            let mut cur = head;
            while cur != NONE {
                let n = self.slots[cur as usize].next;
                if n == at {
                    self.slots[cur as usize].next = next;
                    break;
                }
                cur = n;
            }
        }
        let slot = &mut self.slots[at as usize];
        slot.next = NONE;
        let (_, v) = slot.entry.take()?;
        self.free.push(at);
        self.len -= 1;
        Some(v)
    }

    /// The key and value in `at`.
    #[inline]
    pub(crate) fn get_mut(&mut self, at: u32) -> Option<(&Arc<SeriesKey>, &mut T)> {
        let (k, v) = self.slots.get_mut(at as usize)?.entry.as_mut()?;
        Some((&*k, v))
    }

    /// Slots in use, in slot order.
    pub(crate) fn slots(&self) -> impl Iterator<Item = u32> + '_ {
        self.slots
            .iter()
            .enumerate()
            .filter(|(_, s)| s.entry.is_some())
            .map(|(i, _)| i as u32)
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    fn key(t: &str, n: &str, l: &[(&str, &str)]) -> Arc<SeriesKey> {
        Arc::new(SeriesKey {
            tenant: Tenant::new(t).unwrap(),
            name: n.into(),
            labels: Labels::from_pairs(l.iter().copied()),
        })
    }

    #[test]
    fn insert_find_remove_with_forced_collisions() {
        let mut t: SeriesTable<u32> = SeriesTable::new();
        let keys = [
            key("a", "m", &[]),
            key("a", "m", &[("x", "1")]),
            key("b", "m", &[]),
            key("a", "n", &[]),
        ];
        // All in one chain: same hash.
        let slots: Vec<u32> = keys
            .iter()
            .enumerate()
            .map(|(i, k)| t.insert(7, k.clone(), i as u32))
            .collect();
        for (k, s) in keys.iter().zip(&slots) {
            assert_eq!(t.find(7, k.tenant.as_str(), &k.name, &k.labels), Some(*s));
            assert_eq!(t.find(8, k.tenant.as_str(), &k.name, &k.labels), None);
        }
        assert_eq!(t.remove(slots[1]), Some(1));
        assert_eq!(t.remove(slots[1]), None);
        assert_eq!(t.find(7, "a", "m", &keys[1].labels), None);
        for i in [0, 2, 3] {
            let k = &keys[i];
            assert_eq!(
                t.find(7, k.tenant.as_str(), &k.name, &k.labels),
                Some(slots[i])
            );
        }
        assert_eq!(t.len(), 3);
        let again = t.insert(7, keys[1].clone(), 9);
        assert_eq!(again, slots[1], "free slot reused");
        assert_eq!(t.slots().count(), 4);
        let h = t.hash("a", "m", &keys[0].labels);
        assert_eq!(h, t.hash("a", "m", &Labels::new()));
    }
}
