//! The member table's id → slot index: open addressing with linear probing.
//!
//! **Rule: a lookup touches one or two 8-byte buckets, then the one slot it returns.**
//! Every node holds an index over every member, so a simulated cluster holds N² entries:
//! the `BTreeMap<u128, u32>` this replaces cost ~36 bytes an entry and three to four
//! cache misses a lookup (it was the largest single item in the 2,000-member profile).
//! Here a bucket is 8 bytes (the low 32 bits of the id's hash as a fingerprint, and the
//! slot), at most 3/4 full, so 11-21 bytes an entry; the fingerprint spares the slot's
//! memory on a probe that is not a match. Deletion shifts the following run back instead
//! of leaving tombstones, so the table never degrades with churn.
//!
//! Iteration order is not kept: the table sorts when it is asked for id order.
//!
//! **Collisions:** the hash is fixed and unkeyed (every node computes the same), so an
//! outsider able to add members with chosen ids could make their probe runs long. The
//! damage is bounded by `max_members` (a run is never longer than the table), and adding
//! members at all takes a packet that passed the cluster check and, when set, the keyring.

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

/// Id → slot, for slots whose ids the caller reads through `id_at`.
#[derive(Debug, Default)]
pub(super) struct SlotIndex {
    buckets: Vec<u64>,
    len: usize,
}

impl SlotIndex {
    /// Number of entries.
    #[cfg(test)]
    pub(super) fn len(&self) -> usize {
        self.len
    }

    fn mask(&self) -> usize {
        self.buckets.len() - 1
    }

    /// The bucket position holding `id`, if present. `id_at(slot)` reads a slot's id.
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

    /// The slot of `id`, if present.
    pub(super) fn get(&self, id: &NodeId, id_at: impl Fn(u32) -> NodeId) -> Option<u32> {
        self.find(id, id_at).map(|p| slot_of(self.buckets[p]))
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

    /// Points `id` (present) at `slot` instead. Returns whether it was present.
    pub(super) fn repoint(
        &mut self,
        id: &NodeId,
        slot: u32,
        id_at: impl Fn(u32) -> NodeId,
    ) -> bool {
        match self.find(id, id_at) {
            Some(p) => {
                self.buckets[p] = pack(fp_of(self.buckets[p]), slot);
                true
            }
            None => false,
        }
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

    /// Every slot in the index, in bucket order.
    #[cfg(test)]
    pub(super) fn slots(&self) -> impl Iterator<Item = u32> + '_ {
        self.buckets
            .iter()
            .filter(|&&b| b != EMPTY)
            .map(|&b| slot_of(b))
    }

    /// Number of buckets.
    #[cfg(test)]
    pub(super) fn capacity(&self) -> usize {
        self.buckets.len()
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    fn id(i: u32) -> NodeId {
        NodeId::from_name(&format!("m{i}"))
    }

    /// A model: the index against a plain vector of ids, through inserts, removes with the
    /// table's swap-remove, and repoints, including forced collisions.
    #[test]
    fn agrees_with_a_model_through_churn() {
        let mut ids: Vec<NodeId> = Vec::new();
        let mut ix = SlotIndex::default();
        let mut x: u64 = 1;
        let mut next = || {
            x = mix64(x.wrapping_add(0x9e37_79b9_7f4a_7c15));
            x
        };
        for round in 0..4000u32 {
            let r = next();
            if ids.is_empty() || r % 3 != 0 {
                let new = id(round);
                let slot = ids.len() as u32;
                ids.push(new);
                ix.insert(&new, slot);
            } else {
                // As the table does: unindex, repoint the last slot to the hole, swap-remove.
                let victim = ids[(r >> 8) as usize % ids.len()];
                let slot = ix.remove(&victim, |s| ids[s as usize]).expect("present") as usize;
                let last = ids.len() - 1;
                if slot != last {
                    assert!(ix.repoint(&ids[last], slot as u32, |s| ids[s as usize]));
                }
                ids.swap_remove(slot);
                assert_eq!(ix.get(&victim, |s| ids[s as usize]), None);
            }
            assert_eq!(ix.len(), ids.len());
            if round % 97 == 0 {
                for (s, i) in ids.iter().enumerate() {
                    assert_eq!(ix.get(i, |s| ids[s as usize]), Some(s as u32));
                }
                let mut all: Vec<u32> = ix.slots().collect();
                all.sort_unstable();
                assert_eq!(all, (0..ids.len() as u32).collect::<Vec<_>>());
                assert!(ix.len() * 4 <= ix.capacity() * 3, "at most 3/4 full");
            }
        }
    }

    #[test]
    fn colliding_fingerprints_are_told_apart_by_id() {
        // Ids chosen so that all share one home bucket in a 16-bucket table.
        let mut same: Vec<NodeId> = Vec::new();
        let mut i = 0;
        while same.len() < 8 {
            let c = id(i);
            if hash(&c) & 15 == 3 {
                same.push(c);
            }
            i += 1;
        }
        let mut ix = SlotIndex::default();
        for (s, c) in same.iter().enumerate() {
            ix.insert(c, s as u32);
        }
        assert_eq!(ix.capacity(), 16);
        let at = |s: u32| same[s as usize];
        for (s, c) in same.iter().enumerate() {
            assert_eq!(ix.get(c, at), Some(s as u32));
        }
        // Remove from the middle of the run: the ones after it are still found.
        assert_eq!(ix.remove(&same[2], at), Some(2));
        for (s, c) in same.iter().enumerate().filter(|(s, _)| *s != 2) {
            assert_eq!(ix.get(c, at), Some(s as u32));
        }
        assert_eq!(ix.get(&same[2], at), None);
    }
}
