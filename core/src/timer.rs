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

/// Per-key deadlines indexed by `(deadline, key)`, so the earliest is found in O(log n) and
/// `poll_timeout` never scans members (memberlist's `endpoint/deadline`).
#[derive(Clone, Debug)]
pub struct DeadlineIndex<K: Ord + Copy> {
    by_time: std::collections::BTreeSet<(Timestamp, K)>,
    by_key: std::collections::BTreeMap<K, Timestamp>,
}

impl<K: Ord + Copy> Default for DeadlineIndex<K> {
    fn default() -> Self {
        DeadlineIndex {
            by_time: Default::default(),
            by_key: Default::default(),
        }
    }
}

impl<K: Ord + Copy> DeadlineIndex<K> {
    /// Sets (or moves) `key`'s deadline.
    pub fn set(&mut self, key: K, at: Timestamp) {
        if let Some(old) = self.by_key.insert(key, at) {
            self.by_time.remove(&(old, key));
        }
        self.by_time.insert((at, key));
    }

    /// Clears `key`'s deadline.
    pub fn remove(&mut self, key: &K) {
        if let Some(old) = self.by_key.remove(key) {
            self.by_time.remove(&(old, *key));
        }
    }

    /// The earliest deadline.
    pub fn next(&self) -> Option<Timestamp> {
        self.by_time.first().map(|(t, _)| *t)
    }

    /// Removes and returns every key due at `now`, earliest first.
    pub fn pop_expired(&mut self, now: Timestamp) -> Vec<K> {
        let mut out = Vec::new();
        while let Some(&(t, k)) = self.by_time.first() {
            if t > now {
                break;
            }
            self.by_time.pop_first();
            self.by_key.remove(&k);
            out.push(k);
        }
        out
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
