//! An id → slot index: open addressing with linear probing. The member table finds a
//! member's slot with it, and the piggyback queue (`dissemination.rs`) its entry for a
//! subject; both keep the ids themselves in their own storage and lend them to the index
//! through `id_at`, so a bucket stays 8 bytes.
//!
//! **Rule: a lookup touches one or two 8-byte buckets, then the one slot it returns.**
//! Every node holds an index over every member, so a simulated cluster holds N² entries:
//! the `BTreeMap<u128, u32>` this replaces cost ~36 bytes an entry and three to four
//! cache misses a lookup (it was the largest single item in the 2,000-member profile).
//! Here a bucket is 8 bytes (the low 32 bits of the id's hash as a fingerprint, and the
//! slot); the fingerprint spares the slot's memory on a probe that is not a match. Deletion
//! shifts the following run back instead of leaving tombstones, so the table never degrades
//! with churn.
//!
//! **Sizing:** at most 3/4 full, grown by a quarter (not doubled), so between 3/5 and 3/4
//! full: 10.7-13.3 bytes an entry. A power-of-two table doubled at 3/4 sat at 3/8-3/4, and
//! for the cluster sizes measured most it sat at the bad end (1,000 or 2,000 members in
//! 2,048 or 4,096 buckets: 16.4 bytes an entry). Any table size works because the home
//! bucket is the fingerprint scaled to the table (`(fp · n) >> 32`, Lemire's reduction)
//! rather than masked. The price is a little more probing, measured with these ids' hash
//! (mean buckets read per lookup, hit / miss): 1.51 / 2.52 at 1,000 members in 2,048
//! buckets, 1.70 / 3.33 at 3/5 full, 2.25 / 7.35 at 3/4 full; eight buckets share a cache
//! line, so a longer run seldom costs another miss, and a miss never reads a slot.
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

/// Fewest buckets.
const MIN_BUCKETS: usize = 16;

/// The home bucket of fingerprint `fp` in a table of `n` buckets: `fp` scaled to `[0, n)`.
fn home(fp: u32, n: usize) -> usize {
    ((u64::from(fp) * n as u64) >> 32) as usize
}

/// The bucket after `pos` in a table of `n`, wrapping around.
fn next(pos: usize, n: usize) -> usize {
    if pos + 1 == n {
        0
    } else {
        pos + 1
    }
}

/// How far `to` lies after `from`, going around a table of `n`.
fn dist(from: usize, to: usize, n: usize) -> usize {
    if to >= from {
        to - from
    } else {
        to + n - from
    }
}

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
pub(crate) struct IdIndex {
    buckets: Vec<u64>,
    len: usize,
}

impl IdIndex {
    /// Number of entries.
    pub(crate) fn len(&self) -> usize {
        self.len
    }

    /// An empty index with room for `n` entries before it grows (at most 3/4 full then).
    pub(crate) fn with_capacity(n: usize) -> Self {
        if n == 0 {
            return Self::default();
        }
        IdIndex {
            buckets: vec![EMPTY; (n * 4).div_ceil(3).max(MIN_BUCKETS)],
            len: 0,
        }
    }

    /// The bucket position holding `id`, if present. `id_at(slot)` reads a slot's id.
    fn find(&self, id: &NodeId, id_at: impl Fn(u32) -> NodeId) -> Option<usize> {
        if self.buckets.is_empty() {
            return None;
        }
        let fp = hash(id);
        let n = self.buckets.len();
        let mut pos = home(fp, n);
        loop {
            let b = self.buckets[pos];
            if b == EMPTY {
                return None;
            }
            if fp_of(b) == fp && id_at(slot_of(b)) == *id {
                return Some(pos);
            }
            pos = next(pos, n);
        }
    }

    /// The slot of `id`, if present.
    pub(crate) fn get(&self, id: &NodeId, id_at: impl Fn(u32) -> NodeId) -> Option<u32> {
        self.find(id, id_at).map(|p| slot_of(self.buckets[p]))
    }

    /// Places a bucket whose id is known to be absent.
    fn place(buckets: &mut [u64], b: u64) {
        let n = buckets.len();
        let mut pos = home(fp_of(b), n);
        while buckets[pos] != EMPTY {
            pos = next(pos, n);
        }
        buckets[pos] = b;
    }

    /// Adds `id` at `slot`. The caller guarantees `id` is not present.
    pub(crate) fn insert(&mut self, id: &NodeId, slot: u32) {
        if (self.len + 1) * 4 > self.buckets.len() * 3 {
            let n = (self.buckets.len() + self.buckets.len() / 4).max(MIN_BUCKETS);
            let old = core::mem::replace(&mut self.buckets, vec![EMPTY; n]);
            for b in old.into_iter().filter(|&b| b != EMPTY) {
                Self::place(&mut self.buckets, b);
            }
        }
        Self::place(&mut self.buckets, pack(hash(id), slot));
        self.len += 1;
    }

    /// Points `id` (present) at `slot` instead. Returns whether it was present.
    pub(crate) fn repoint(
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
    pub(crate) fn remove(&mut self, id: &NodeId, id_at: impl Fn(u32) -> NodeId) -> Option<u32> {
        let mut hole = self.find(id, id_at)?;
        let slot = slot_of(self.buckets[hole]);
        let n = self.buckets.len();
        let mut j = hole;
        loop {
            j = next(j, n);
            let b = self.buckets[j];
            if b == EMPTY {
                break;
            }
            let h = home(fp_of(b), n);
            // `b` may move into the hole if the hole lies on its probe path [h, j).
            if dist(h, j, n) >= dist(hole, j, n) {
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
    pub(crate) fn slots(&self) -> impl Iterator<Item = u32> + '_ {
        self.buckets
            .iter()
            .filter(|&&b| b != EMPTY)
            .map(|&b| slot_of(b))
    }

    /// Number of buckets.
    #[cfg(test)]
    pub(crate) fn capacity(&self) -> usize {
        self.buckets.len()
    }

    /// Buckets a lookup of `id` (present) reads: its distance from its home, plus one.
    #[cfg(test)]
    fn probes(&self, id: &NodeId, id_at: impl Fn(u32) -> NodeId) -> Option<usize> {
        let p = self.find(id, id_at)?;
        Some(dist(home(hash(id), self.buckets.len()), p, self.buckets.len()) + 1)
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
        let mut ix = IdIndex::default();
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

    /// The sizing rule: between 3/5 and 3/4 full once past the minimum (at most 13.4 bytes
    /// an entry), and lookups still read about two buckets on average at any size.
    #[test]
    fn stays_three_fifths_to_three_quarters_full_with_short_probes() {
        let ids: Vec<NodeId> = (0..5000).map(id).collect();
        let mut ix = IdIndex::default();
        for (s, i) in ids.iter().enumerate() {
            ix.insert(i, s as u32);
            let n = s + 1;
            if n >= 16 {
                assert!(n * 4 <= ix.capacity() * 3, "at most 3/4 full at {n}");
                assert!(n * 5 >= ix.capacity() * 3, "at least 3/5 full at {n}");
            }
            if [1000, 2000, 5000].contains(&n) {
                let at = |s: u32| ids[s as usize];
                let total: usize = ids[..n]
                    .iter()
                    .map(|i| ix.probes(i, at).expect("present"))
                    .sum();
                let mean = total as f64 / n as f64;
                assert!(mean < 2.6, "mean probes {mean} at {n}");
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
            if home(hash(&c), 16) == 3 {
                same.push(c);
            }
            i += 1;
        }
        let mut ix = IdIndex::default();
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
