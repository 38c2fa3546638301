//! The queue's subject → entry index: open addressing with linear probing.
//!
//! **Rule: a lookup touches one or two 8-byte buckets, then the one entry it returns.**
//! While a cluster converges every node queues an update about every member it learns, so a
//! simulated cluster holds N² queued updates; the `BTreeMap<NodeId, _>` this replaces cost
//! ~70 bytes an entry (16-byte keys beside 32-byte values in half-full leaves) and a search
//! of three to four cache misses per push. A bucket is 8 bytes (the low 32 bits of the
//! subject's hash as a fingerprint, and the entry number), at most 3/4 full, so 11-21 bytes
//! an entry; the fingerprint spares the entry's memory on a probe that is not a match.
//! Deletion shifts the following run back instead of leaving tombstones.
//!
//! The same design as the member table's index (`membership/table/index.rs`), kept apart
//! because that one is private to the table; nothing here is ever iterated, so the order
//! of buckets never reaches the output.
//!
//! **Collisions:** the hash is fixed and unkeyed, so an outsider able to queue updates about
//! chosen ids could lengthen probe runs; a run is never longer than the table, which holds
//! at most [`MAX_QUEUED`](super::MAX_QUEUED) entries.

use crate::hash::mix64;
use crate::NodeId;

/// A bucket with no entry.
const EMPTY: u64 = u64::MAX;

/// Fewest buckets (a power of two).
const MIN_BUCKETS: usize = 16;

/// The hash of `id` (over all 16 bytes); its low 32 bits are the fingerprint.
fn hash(id: &NodeId) -> u32 {
    let v = u128::from_le_bytes(id.0);
    mix64((v as u64) ^ mix64((v >> 64) as u64)) as u32
}

fn pack(fp: u32, slot: u32) -> u64 {
    (u64::from(fp) << 32) | u64::from(slot)
}

fn fp_of(b: u64) -> u32 {
    (b >> 32) as u32
}

fn slot_of(b: u64) -> u32 {
    b as u32
}

/// Subject → entry number, for entries whose subjects the caller reads through `id_at`.
#[derive(Debug, Default)]
pub(super) struct SubjectIndex {
    buckets: Vec<u64>,
    len: usize,
}

impl SubjectIndex {
    /// Number of entries.
    pub(super) fn len(&self) -> usize {
        self.len
    }

    /// An empty index with room for `n` entries before it grows.
    pub(super) fn with_capacity(n: usize) -> Self {
        if n == 0 {
            return Self::default();
        }
        let buckets = (n * 4 / 3 + 1).next_power_of_two().max(MIN_BUCKETS);
        SubjectIndex {
            buckets: vec![EMPTY; buckets],
            len: 0,
        }
    }

    fn mask(&self) -> usize {
        self.buckets.len() - 1
    }

    /// The bucket position holding `id`, if present. `id_at(slot)` reads an entry's subject.
    fn find(&self, id: &NodeId, id_at: impl Fn(u32) -> NodeId) -> Option<usize> {
        if self.buckets.is_empty() {
            return None;
        }
        let fp = hash(id);
        let mask = self.mask();
        let mut pos = fp as usize & mask;
        loop {
            let b = self.buckets[pos];
            if b == EMPTY {
                return None;
            }
            if fp_of(b) == fp && id_at(slot_of(b)) == *id {
                return Some(pos);
            }
            pos = (pos + 1) & mask;
        }
    }

    /// Places a bucket whose id is known to be absent.
    fn place(buckets: &mut [u64], b: u64) {
        let mask = buckets.len() - 1;
        let mut pos = fp_of(b) as usize & mask;
        while buckets[pos] != EMPTY {
            pos = (pos + 1) & mask;
        }
        buckets[pos] = b;
    }

    /// Adds `id` at `slot`. The caller guarantees `id` is not present.
    pub(super) fn insert(&mut self, id: &NodeId, slot: u32) {
        if (self.len + 1) * 4 > self.buckets.len() * 3 {
            let n = (self.buckets.len() * 2).max(MIN_BUCKETS);
            let old = core::mem::replace(&mut self.buckets, vec![EMPTY; n]);
            for b in old.into_iter().filter(|&b| b != EMPTY) {
                Self::place(&mut self.buckets, b);
            }
        }
        Self::place(&mut self.buckets, pack(hash(id), slot));
        self.len += 1;
    }

    /// Removes `id`; returns its slot. Shifts the rest of its run back so no probe chain
    /// breaks (no tombstones).
    pub(super) fn remove(&mut self, id: &NodeId, id_at: impl Fn(u32) -> NodeId) -> Option<u32> {
        let mut hole = self.find(id, id_at)?;
        let slot = slot_of(self.buckets[hole]);
        let mask = self.mask();
        let mut j = hole;
        loop {
            j = (j + 1) & mask;
            let b = self.buckets[j];
            if b == EMPTY {
                break;
            }
            let home = fp_of(b) as usize & mask;
            // `b` may move into the hole if the hole lies on its probe path [home, j).
            if (j.wrapping_sub(home) & mask) >= (j.wrapping_sub(hole) & mask) {
                self.buckets[hole] = b;
                hole = j;
            }
        }
        self.buckets[hole] = EMPTY;
        self.len -= 1;
        Some(slot)
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn colliding_fingerprints_are_told_apart_by_id_and_removal_keeps_runs_whole() {
        // Ids chosen so that all share one home bucket in a 16-bucket table.
        let mut same: Vec<NodeId> = Vec::new();
        let mut i = 0u32;
        while same.len() < 8 {
            let c = NodeId::from_name(&format!("m{i}"));
            if hash(&c) & 15 == 3 {
                same.push(c);
            }
            i += 1;
        }
        let mut ix = SubjectIndex::default();
        for (s, c) in same.iter().enumerate() {
            ix.insert(c, s as u32);
        }
        let at = |s: u32| same[s as usize];
        assert_eq!(ix.remove(&same[2], at), Some(2));
        assert_eq!(ix.remove(&same[2], at), None);
        for (s, c) in same.iter().enumerate().filter(|(s, _)| *s != 2) {
            assert_eq!(
                ix.find(c, at).map(|p| slot_of(ix.buckets[p])),
                Some(s as u32)
            );
        }
        assert_eq!(ix.len(), 7);
    }
}
