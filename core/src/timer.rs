//! Per-node singleton timers.
//!
//! A fixed table of optional deadlines, one per [`Timer`]; `poll_timeout` is its minimum and
//! `handle_timeout` walks [`Timer::VALUES`] in order, clearing each expired timer before
//! acting on it (quinn's `TimerTable`).

use crate::Timestamp;

/// The node's singleton timers.
#[derive(Clone, Copy, PartialEq, Eq, Debug)]
pub enum Timer {
    /// Retry joining through the next seed.
    JoinRetry,
    /// Send a gossip round.
    Gossip,
    /// Start an anti-entropy sync with a random member.
    Sync,
    /// Heartbeat the members this node watches.
    Heartbeat,
    /// Probe the next member in round-robin order (SWIM).
    Probe,
    /// Try to reach one failed or reaped member again.
    Reconnect,
    /// Reap tombstones past their time to live.
    Reap,
    /// Stop after lingering to spread this node's leave.
    Leave,
}

impl Timer {
    /// Every timer, in the order `handle_timeout` services them.
    pub const VALUES: [Timer; 8] = [
        Timer::JoinRetry,
        Timer::Heartbeat,
        Timer::Probe,
        Timer::Gossip,
        Timer::Sync,
        Timer::Reconnect,
        Timer::Reap,
        Timer::Leave,
    ];

    fn index(self) -> usize {
        self as usize
    }
}

/// One optional deadline per timer.
#[derive(Clone, Debug, Default)]
pub struct TimerTable {
    deadlines: [Option<Timestamp>; 8],
}

impl TimerTable {
    /// Arms `timer` for `at`, replacing any earlier setting.
    pub fn set(&mut self, timer: Timer, at: Timestamp) {
        self.deadlines[timer.index()] = Some(at);
    }

    /// Disarms `timer`.
    pub fn stop(&mut self, timer: Timer) {
        self.deadlines[timer.index()] = None;
    }

    /// The deadline of `timer`, if armed.
    pub fn get(&self, timer: Timer) -> Option<Timestamp> {
        self.deadlines[timer.index()]
    }

    /// Whether `timer` is armed and due at `now`; if so it is disarmed.
    pub fn take_expired(&mut self, timer: Timer, now: Timestamp) -> bool {
        match self.deadlines[timer.index()] {
            Some(t) if t <= now => {
                self.deadlines[timer.index()] = None;
                true
            }
            _ => false,
        }
    }

    /// The earliest armed deadline.
    pub fn next(&self) -> Option<Timestamp> {
        self.deadlines.iter().fold(None, |acc, d| earliest(acc, *d))
    }

    /// The earliest armed deadline other than `skip`'s.
    pub fn next_except(&self, skip: Timer) -> Option<Timestamp> {
        self.deadlines
            .iter()
            .enumerate()
            .filter(|(i, _)| *i != skip.index())
            .fold(None, |acc, (_, d)| earliest(acc, *d))
    }
}

/// The earlier of two optional deadlines (`None` is "not armed", not "earliest"): what
/// `[a, b].into_iter().flatten().min()` computes, in a few compares, for `poll_timeout`,
/// which runs after every input.
#[inline]
pub fn earliest(a: Option<Timestamp>, b: Option<Timestamp>) -> Option<Timestamp> {
    match (a, b) {
        (Some(a), Some(b)) => Some(a.min(b)),
        (a, None) => a,
        (None, b) => b,
    }
}

/// Per-key deadlines ordered by `(deadline, key)`, so the earliest is found without a scan
/// and `poll_timeout` never scans members (memberlist's `endpoint/deadline`).
///
/// Two representations of the same map. Up to [`SMALL`] keys (a node's handful of watched
/// subjects and outstanding pings, re-armed on every heartbeat) live in one vector sorted by
/// `(deadline, key)`: a move is a short scan and two `memmove`s, where the B-trees below
/// cost a search, a removal and an insertion in each of two trees. Past [`SMALL`] (thousands
/// of suspicions after a partition) they move to a `BTreeSet` by `(deadline, key)` with a
/// `BTreeMap` back from key to deadline, O(log n) per operation, and stay there until the
/// index empties. Both answer every call the same way (a property test holds them to a
/// reference model).
#[derive(Clone, Debug)]
pub struct DeadlineIndex<K: Ord + Copy> {
    repr: Repr<K>,
}

/// Most keys a [`DeadlineIndex`] keeps in its sorted vector.
pub const SMALL: usize = 32;

#[derive(Clone, Debug)]
enum Repr<K: Ord + Copy> {
    /// Sorted by `(deadline, key)`, each key at most once, at most [`SMALL`] long.
    Small(Vec<(Timestamp, K)>),
    Large {
        by_time: std::collections::BTreeSet<(Timestamp, K)>,
        by_key: std::collections::BTreeMap<K, Timestamp>,
    },
}

impl<K: Ord + Copy> Default for DeadlineIndex<K> {
    fn default() -> Self {
        DeadlineIndex {
            repr: Repr::Small(Vec::new()),
        }
    }
}

impl<K: Ord + Copy> DeadlineIndex<K> {
    /// Sets (or moves) `key`'s deadline.
    pub fn set(&mut self, key: K, at: Timestamp) {
        match &mut self.repr {
            Repr::Small(v) => {
                if let Some(i) = v.iter().position(|(_, k)| *k == key) {
                    v.remove(i);
                } else if v.len() == SMALL {
                    let by_time: std::collections::BTreeSet<_> = v.drain(..).collect();
                    let by_key = by_time.iter().map(|&(t, k)| (k, t)).collect();
                    self.repr = Repr::Large { by_time, by_key };
                    return self.set(key, at);
                }
                let i = v.partition_point(|e| *e < (at, key));
                v.insert(i, (at, key));
            }
            Repr::Large { by_time, by_key } => {
                if let Some(old) = by_key.insert(key, at) {
                    by_time.remove(&(old, key));
                }
                by_time.insert((at, key));
            }
        }
    }

    /// Clears `key`'s deadline.
    pub fn remove(&mut self, key: &K) {
        match &mut self.repr {
            Repr::Small(v) => {
                if let Some(i) = v.iter().position(|(_, k)| k == key) {
                    v.remove(i);
                }
            }
            Repr::Large { by_time, by_key } => {
                if let Some(old) = by_key.remove(key) {
                    by_time.remove(&(old, *key));
                }
                self.shrink_if_empty();
            }
        }
    }

    /// The earliest deadline.
    pub fn next(&self) -> Option<Timestamp> {
        match &self.repr {
            Repr::Small(v) => v.first().map(|(t, _)| *t),
            Repr::Large { by_time, .. } => by_time.first().map(|(t, _)| *t),
        }
    }

    /// Removes and returns every key due at `now`, earliest first.
    pub fn pop_expired(&mut self, now: Timestamp) -> Vec<K> {
        match &mut self.repr {
            Repr::Small(v) => {
                let due = v.partition_point(|(t, _)| *t <= now);
                if due == 0 {
                    // The usual answer (every input checks): no `Drain` to set up.
                    return Vec::new();
                }
                v.drain(..due).map(|(_, k)| k).collect()
            }
            Repr::Large { by_time, by_key } => {
                let mut out = Vec::new();
                while let Some(&(t, k)) = by_time.first() {
                    if t > now {
                        break;
                    }
                    by_time.pop_first();
                    by_key.remove(&k);
                    out.push(k);
                }
                self.shrink_if_empty();
                out
            }
        }
    }

    /// Back to the vector once the trees are empty (after a mass of suspicions cleared).
    fn shrink_if_empty(&mut self) {
        if matches!(&self.repr, Repr::Large { by_key, .. } if by_key.is_empty()) {
            self.repr = Repr::Small(Vec::new());
        }
    }

    /// Whether the B-trees are in use (for tests).
    #[cfg(test)]
    fn is_large(&self) -> bool {
        matches!(self.repr, Repr::Large { .. })
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn deadline_index_orders_moves_and_pops() {
        let mut d = DeadlineIndex::default();
        d.set(1u32, Timestamp::from_millis(30));
        d.set(2u32, Timestamp::from_millis(10));
        d.set(1u32, Timestamp::from_millis(5));
        assert_eq!(d.next(), Some(Timestamp::from_millis(5)));
        assert_eq!(d.pop_expired(Timestamp::from_millis(10)), vec![1, 2]);
        assert_eq!(d.next(), None);
        d.set(3u32, Timestamp::from_millis(50));
        d.remove(&3);
        assert_eq!(d.next(), None);
    }

    /// One operation on a deadline index, for the model test.
    #[derive(Clone, Debug)]
    enum Op {
        Set(u8, u16),
        Remove(u8),
        Pop(u16),
    }

    fn arb_op() -> impl proptest::strategy::Strategy<Value = Op> {
        use proptest::prelude::*;
        // Keys from a range wider than SMALL, so runs cross into the trees and back.
        prop_oneof![
            4 => (0u8..80, 0u16..400).prop_map(|(k, t)| Op::Set(k, t)),
            1 => (0u8..80).prop_map(Op::Remove),
            1 => (0u16..400).prop_map(Op::Pop),
        ]
    }

    proptest::proptest! {
        /// Whatever the sequence, the index answers as a plain map from key to deadline
        /// ordered by (deadline, key) would, in either representation.
        #[test]
        fn deadline_index_matches_a_sorted_map(
            ops in proptest::collection::vec(arb_op(), 0..400),
        ) {
            use std::collections::BTreeMap;
            let mut d = DeadlineIndex::default();
            let mut model: BTreeMap<u8, Timestamp> = BTreeMap::new();
            for op in ops {
                match op {
                    Op::Set(k, t) => {
                        let at = Timestamp::from_millis(u64::from(t));
                        d.set(k, at);
                        model.insert(k, at);
                    }
                    Op::Remove(k) => {
                        d.remove(&k);
                        model.remove(&k);
                    }
                    Op::Pop(t) => {
                        let now = Timestamp::from_millis(u64::from(t));
                        let mut due: Vec<(Timestamp, u8)> = model
                            .iter()
                            .filter(|(_, at)| **at <= now)
                            .map(|(k, at)| (*at, *k))
                            .collect();
                        due.sort();
                        for (_, k) in &due {
                            model.remove(k);
                        }
                        let keys: Vec<u8> = due.into_iter().map(|(_, k)| k).collect();
                        proptest::prop_assert_eq!(d.pop_expired(now), keys);
                    }
                }
                proptest::prop_assert_eq!(d.next(), model.values().min().copied());
                // The trees are given up as soon as they empty.
                proptest::prop_assert!(!(d.is_large() && model.is_empty()));
            }
        }
    }

    #[test]
    fn deadline_index_moves_to_trees_past_small_and_back_when_empty() {
        let mut d = DeadlineIndex::default();
        for k in 0..=SMALL as u32 {
            d.set(k, Timestamp::from_millis(1000 - u64::from(k)));
        }
        assert!(d.is_large());
        assert_eq!(d.next(), Some(Timestamp::from_millis(1000 - SMALL as u64)));
        d.set(7, Timestamp::from_millis(1));
        assert_eq!(d.pop_expired(Timestamp::from_millis(1)), vec![7]);
        let all = d.pop_expired(Timestamp::from_millis(1000));
        assert_eq!(all.len(), SMALL);
        assert_eq!(all[0], SMALL as u32);
        assert!(!d.is_large());
        assert_eq!(d.next(), None);
    }

    #[test]
    fn earliest_ignores_unarmed_deadlines() {
        let (a, b) = (Timestamp::from_millis(3), Timestamp::from_millis(7));
        assert_eq!(earliest(Some(a), Some(b)), Some(a));
        assert_eq!(earliest(Some(b), Some(a)), Some(a));
        assert_eq!(earliest(None, Some(b)), Some(b));
        assert_eq!(earliest(Some(b), None), Some(b));
        assert_eq!(earliest(None, None), None);
        let mut t = TimerTable::default();
        assert_eq!(t.next(), None);
        t.set(Timer::Leave, b);
        t.set(Timer::Sync, a);
        t.set(Timer::JoinRetry, b);
        assert_eq!(t.next(), Some(a));
    }

    #[test]
    fn timer_table_takes_only_expired_timers() {
        let mut t = TimerTable::default();
        t.set(Timer::Gossip, Timestamp::from_millis(10));
        assert!(!t.take_expired(Timer::Gossip, Timestamp::from_millis(9)));
        assert!(t.take_expired(Timer::Gossip, Timestamp::from_millis(10)));
        assert_eq!(t.next(), None);
    }
}
