//! One level of the piggyback queue: the entries sent the same number of times, in key
//! order (`u64::MAX - seq`: newest first).
//!
//! Rule: **a level is a sorted ring buffer of `(key, entry)` pairs**, the order a
//! `BTreeMap<u64, u32>` would iterate, with the same answers (a property test below holds
//! it to one). Why not the map: a level is read front to back by every packet that carries
//! updates, and nearly every change happens at its ends. A new update is the newest of
//! level 0 (its front); the updates a packet carries are the front of their level, and
//! move into the next level where they are, as a rule, again the newest (its front); the
//! update dropped when the queue is full is the oldest of the last level (its back). At
//! 1,000 members the maps' inserts and removals were about a tenth of the simulator's
//! instructions, each a descent through nodes scattered over the heap; here an end costs
//! one comparison and one write in one contiguous buffer, and anything else a binary
//! search and a shift of the shorter side (`VecDeque::insert` and `remove`).

use std::collections::VecDeque;

/// The entries of one level, by ascending key (each key at most once).
#[derive(Debug, Default, Clone)]
pub(super) struct Level {
    pairs: VecDeque<(u64, u32)>,
}

impl Level {
    /// Whether the level is empty.
    pub(super) fn is_empty(&self) -> bool {
        self.pairs.is_empty()
    }

    /// Number of entries.
    #[cfg(test)]
    pub(super) fn len(&self) -> usize {
        self.pairs.len()
    }

    /// Where `key` is, or would go.
    fn search(&self, key: u64) -> Result<usize, usize> {
        self.pairs.binary_search_by(|&(k, _)| k.cmp(&key))
    }

    /// Adds `key` (not present) with entry `slot`.
    pub(super) fn insert(&mut self, key: u64, slot: u32) {
        match self.pairs.front() {
            None => self.pairs.push_back((key, slot)),
            Some(&(first, _)) if key < first => self.pairs.push_front((key, slot)),
            _ => match self.pairs.back() {
                Some(&(last, _)) if key > last => self.pairs.push_back((key, slot)),
                _ => {
                    let at = match self.search(key) {
                        Ok(at) | Err(at) => at,
                    };
                    debug_assert!(self.pairs.get(at).is_none_or(|&(k, _)| k != key));
                    self.pairs.insert(at, (key, slot));
                }
            },
        }
    }

    /// Takes `key` out, if present.
    pub(super) fn remove(&mut self, key: u64) {
        if self.pairs.front().is_some_and(|&(k, _)| k == key) {
            self.pairs.pop_front();
        } else if self.pairs.back().is_some_and(|&(k, _)| k == key) {
            self.pairs.pop_back();
        } else if let Ok(at) = self.search(key) {
            self.pairs.remove(at);
        }
    }

    /// The entry with the largest key (the oldest update).
    pub(super) fn last_slot(&self) -> Option<u32> {
        self.pairs.back().map(|&(_, s)| s)
    }

    /// `(key, entry)` pairs by ascending key.
    pub(super) fn iter(&self) -> impl Iterator<Item = (u64, u32)> + '_ {
        self.pairs.iter().copied()
    }

    /// The entries by ascending key, to renumber them.
    pub(super) fn slots_mut(&mut self) -> impl Iterator<Item = &mut u32> + '_ {
        self.pairs.iter_mut().map(|(_, s)| s)
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use proptest::prelude::*;
    use std::collections::BTreeMap;

    #[derive(Clone, Debug)]
    enum Op {
        Insert(u64),
        Remove(u64),
    }

    fn op() -> impl Strategy<Value = Op> {
        // Few distinct keys, so removals hit and inserts land at both ends and between.
        prop_oneof![
            (0u64..48).prop_map(Op::Insert),
            (0u64..48).prop_map(Op::Remove),
        ]
    }

    proptest! {
        /// Any sequence of inserts (of absent keys) and removals leaves the level iterating
        /// exactly as a `BTreeMap` does, with the same last entry.
        #[test]
        fn a_level_iterates_as_the_map_does(ops in proptest::collection::vec(op(), 0..200)) {
            let (mut level, mut map) = (Level::default(), BTreeMap::new());
            for (i, op) in ops.into_iter().enumerate() {
                match op {
                    Op::Insert(k) if !map.contains_key(&k) => {
                        level.insert(k, i as u32);
                        map.insert(k, i as u32);
                    }
                    Op::Insert(_) => {}
                    Op::Remove(k) => {
                        level.remove(k);
                        map.remove(&k);
                    }
                }
                let got: Vec<(u64, u32)> = level.iter().collect();
                let want: Vec<(u64, u32)> = map.iter().map(|(&k, &s)| (k, s)).collect();
                prop_assert_eq!(got, want);
                prop_assert_eq!(level.last_slot(), map.values().next_back().copied());
                prop_assert_eq!(level.is_empty(), map.is_empty());
                prop_assert_eq!(level.len(), map.len());
            }
        }
    }
}
