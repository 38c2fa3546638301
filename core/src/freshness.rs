//! Freshness: refuses a replayed sealed datagram before it changes state or causes a reply.
//!
//! Every sealed datagram carries a [`Stamp`] in its nonce (see [`crate::envelope`]): the
//! sender's *life* (its starting incarnation, which adapters seed from wall-clock seconds so a
//! restart normally gets a larger one), its *boot* id (64 random bits drawn once per process
//! from the node's RNG) and a *counter* that grows by one with every datagram the process
//! seals. The nonce is authenticated by the AEAD, so none of it can be altered.
//!
//! [`ReplayGuard`] keeps, per sender id, the newest life and boot it has accepted and a
//! sliding window over the counter, like IPsec's and DTLS's anti-replay window:
//!
//! * **Window:** [`WINDOW`] counters below the highest one accepted. A counter above the top
//!   moves the window; one inside it is accepted once (its bit is then set); one below it is
//!   refused. A sender's counter counts datagrams to *all* destinations, so the window is
//!   generous: a datagram may arrive after up to `WINDOW - 1` later ones from the same
//!   process and still be accepted. Network duplicates are replays and are dropped.
//! * **A new life** (larger than the stored one) is a restart: accepted at once, window reset.
//!   **An older life** is refused: an attacker cannot bring back a captured datagram of a
//!   previous process once the newer process has been heard. Lives are only compared for
//!   the same sender, so clock skew between members never matters; only the sender's own
//!   clock must not run backwards across its restart.
//! * **Same life, new boot** (a restart within one second, or a test or simulator that starts
//!   every process at incarnation 0): accepted as a restart; the previous boot is *retired*,
//!   and the last [`RETIRED`] retired boots are refused from then on. A captured datagram
//!   of an older boot of the same life could be replayed once per [`RETIRED`] + 1 restarts
//!   within one second, which adapters make impossible.
//! * **Bounded memory:** at most `capacity` senders are tracked (each entry is a fixed
//!   ~90 bytes); a new sender when full evicts the one heard from least recently. Only
//!   datagrams that passed authentication reach the guard, so only key holders (and replays
//!   of what key holders sent) create entries: a flood of distinct forged senders is refused
//!   before it. Eviction forgets a sender's window, so a captured datagram of an evicted
//!   sender would be accepted once more; the capacity is twice `max_members` so that only
//!   happens when more key holders talk to the node than the cluster may have members.
//!
//! Pure and deterministic: no clock, a `BTreeMap` keyed by id, a logical tick for recency.

use crate::NodeId;
use std::collections::BTreeMap;

/// Width of the sliding window, in counters.
pub const WINDOW: u64 = 128;
/// How many retired boots of the current life each sender entry remembers.
pub const RETIRED: usize = 3;

/// The freshness fields of a sealed datagram, carried in its nonce.
#[derive(Clone, Copy, Debug, PartialEq, Eq, PartialOrd, Ord, Hash, Default)]
pub struct Stamp {
    /// The sender's starting incarnation (orders its restarts).
    pub life: u64,
    /// Random per-process boot id (tells apart restarts within one life).
    pub boot: u64,
    /// Per-process datagram counter, starting at 1.
    pub counter: u64,
}

/// Why a datagram was judged not fresh.
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub enum Stale {
    /// Its counter was already accepted (a replay or a network duplicate).
    Seen,
    /// Its counter is below the window.
    TooOld,
    /// It comes from an older life or a retired boot of its sender.
    OldLife,
}

#[derive(Clone, Debug)]
struct Entry {
    life: u64,
    boot: u64,
    /// Highest counter accepted.
    top: u64,
    /// Bit `i` set: counter `top - i` was accepted.
    seen: u128,
    retired: [u64; RETIRED],
    /// How many of `retired` are in use.
    n_retired: u8,
    /// Logical time of the last accepted datagram (for eviction).
    last: u64,
}

impl Entry {
    fn fresh(stamp: Stamp, tick: u64) -> Self {
        Entry {
            life: stamp.life,
            boot: stamp.boot,
            top: stamp.counter,
            seen: 1,
            retired: [0; RETIRED],
            n_retired: 0,
            last: tick,
        }
    }

    fn is_retired(&self, boot: u64) -> bool {
        self.retired[..usize::from(self.n_retired)].contains(&boot)
    }

    /// Starts a new boot of the same life, retiring the current one (oldest retired forgotten).
    fn reboot(&mut self, stamp: Stamp, tick: u64) {
        let n = usize::from(self.n_retired);
        if n < RETIRED {
            self.retired[n] = self.boot;
            self.n_retired += 1;
        } else {
            self.retired.rotate_left(1);
            self.retired[RETIRED - 1] = self.boot;
        }
        let (retired, n_retired) = (self.retired, self.n_retired);
        *self = Entry::fresh(stamp, tick);
        self.retired = retired;
        self.n_retired = n_retired;
    }

    /// The sliding-window check for a counter of the current boot; marks it when accepted.
    fn window(&mut self, counter: u64, tick: u64) -> Result<(), Stale> {
        if counter > self.top {
            let shift = counter - self.top;
            self.seen = if shift >= WINDOW {
                0
            } else {
                self.seen << shift
            };
            self.seen |= 1;
            self.top = counter;
        } else {
            let back = self.top - counter;
            if back >= WINDOW {
                return Err(Stale::TooOld);
            }
            let bit = 1u128 << back;
            if self.seen & bit != 0 {
                return Err(Stale::Seen);
            }
            self.seen |= bit;
        }
        self.last = tick;
        Ok(())
    }
}

/// Per-sender replay windows, at most `capacity` senders (see the module docs).
#[derive(Clone, Debug)]
pub struct ReplayGuard {
    entries: BTreeMap<NodeId, Entry>,
    capacity: usize,
    tick: u64,
    evictions: u64,
}

impl ReplayGuard {
    /// A guard tracking at most `capacity` senders (at least 1).
    pub fn new(capacity: usize) -> Self {
        ReplayGuard {
            entries: BTreeMap::new(),
            capacity: capacity.max(1),
            tick: 0,
            evictions: 0,
        }
    }

    /// Senders currently tracked (never more than the capacity).
    pub fn len(&self) -> usize {
        self.entries.len()
    }

    /// Whether no sender is tracked.
    pub fn is_empty(&self) -> bool {
        self.entries.is_empty()
    }

    /// Senders forgotten to make room for new ones.
    pub fn evictions(&self) -> u64 {
        self.evictions
    }

    /// Whether a datagram from `from` stamped `stamp` is fresh, without recording it.
    pub fn check(&self, from: &NodeId, stamp: Stamp) -> Result<(), Stale> {
        self.clone().accept(from, stamp)
    }

    /// Accepts a fresh datagram (recording it, so the same one is refused next time) or says
    /// why it is not fresh (changing nothing).
    pub fn accept(&mut self, from: &NodeId, stamp: Stamp) -> Result<(), Stale> {
        self.tick += 1;
        let tick = self.tick;
        if let Some(e) = self.entries.get_mut(from) {
            return if stamp.life < e.life {
                Err(Stale::OldLife)
            } else if stamp.life > e.life {
                *e = Entry::fresh(stamp, tick);
                Ok(())
            } else if stamp.boot == e.boot {
                e.window(stamp.counter, tick)
            } else if e.is_retired(stamp.boot) {
                Err(Stale::OldLife)
            } else {
                e.reboot(stamp, tick);
                Ok(())
            };
        }
        if self.entries.len() >= self.capacity {
            // Full: forget the sender heard from least recently (ties: lowest id).
            let oldest = self
                .entries
                .iter()
                .min_by_key(|(_, e)| e.last)
                .map(|(id, _)| *id);
            if let Some(id) = oldest {
                self.entries.remove(&id);
                self.evictions += 1;
            }
        }
        self.entries.insert(*from, Entry::fresh(stamp, tick));
        Ok(())
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use proptest::prelude::*;

    fn id(b: u8) -> NodeId {
        NodeId([b; 16])
    }

    fn s(life: u64, boot: u64, counter: u64) -> Stamp {
        Stamp {
            life,
            boot,
            counter,
        }
    }

    #[test]
    fn duplicates_are_refused_and_reordering_within_the_window_is_accepted() {
        let mut g = ReplayGuard::new(8);
        assert_eq!(g.accept(&id(1), s(5, 9, 10)), Ok(()));
        assert_eq!(g.accept(&id(1), s(5, 9, 10)), Err(Stale::Seen));
        assert_eq!(g.accept(&id(1), s(5, 9, 12)), Ok(()));
        // 11 arrives late: still accepted once.
        assert_eq!(g.accept(&id(1), s(5, 9, 11)), Ok(()));
        assert_eq!(g.accept(&id(1), s(5, 9, 11)), Err(Stale::Seen));
        // Far ahead: the window moves; 12 falls out of it.
        assert_eq!(g.accept(&id(1), s(5, 9, 12 + WINDOW)), Ok(()));
        assert_eq!(g.accept(&id(1), s(5, 9, 12)), Err(Stale::TooOld));
        assert_eq!(
            g.accept(&id(1), s(5, 9, 13)),
            Ok(()),
            "13 is at the window's edge"
        );
        // Another sender has its own window.
        assert_eq!(g.accept(&id(2), s(5, 9, 10)), Ok(()));
    }

    #[test]
    fn check_changes_nothing() {
        let mut g = ReplayGuard::new(8);
        assert_eq!(g.check(&id(1), s(1, 1, 1)), Ok(()));
        assert_eq!(g.check(&id(1), s(1, 1, 1)), Ok(()));
        assert!(g.is_empty());
        g.accept(&id(1), s(1, 1, 1)).unwrap();
        assert_eq!(g.check(&id(1), s(1, 1, 1)), Err(Stale::Seen));
    }

    #[test]
    fn a_restart_is_accepted_at_once_and_the_old_life_never_again() {
        let mut g = ReplayGuard::new(8);
        g.accept(&id(1), s(100, 7, 500)).unwrap();
        // Restarted process: larger life, counter back at 1.
        assert_eq!(g.accept(&id(1), s(101, 8, 1)), Ok(()));
        assert_eq!(g.accept(&id(1), s(100, 7, 501)), Err(Stale::OldLife));
        assert_eq!(g.accept(&id(1), s(101, 8, 2)), Ok(()));
    }

    #[test]
    fn restarts_within_one_life_retire_the_previous_boots() {
        let mut g = ReplayGuard::new(8);
        g.accept(&id(1), s(0, 1, 40)).unwrap();
        assert_eq!(
            g.accept(&id(1), s(0, 2, 1)),
            Ok(()),
            "restart at the same life"
        );
        assert_eq!(g.accept(&id(1), s(0, 1, 41)), Err(Stale::OldLife));
        assert_eq!(g.accept(&id(1), s(0, 3, 1)), Ok(()));
        assert_eq!(g.accept(&id(1), s(0, 1, 42)), Err(Stale::OldLife));
        assert_eq!(g.accept(&id(1), s(0, 2, 2)), Err(Stale::OldLife));
        // The live boot keeps working.
        assert_eq!(g.accept(&id(1), s(0, 3, 2)), Ok(()));
        assert_eq!(g.accept(&id(1), s(0, 3, 2)), Err(Stale::Seen));
    }

    #[test]
    fn memory_is_bounded_and_the_least_recent_sender_is_evicted() {
        let mut g = ReplayGuard::new(3);
        for b in 1..=3 {
            g.accept(&id(b), s(0, 0, 1)).unwrap();
        }
        g.accept(&id(1), s(0, 0, 2)).unwrap(); // 2 is now the least recent
        g.accept(&id(4), s(0, 0, 1)).unwrap();
        assert_eq!(g.len(), 3);
        assert_eq!(g.evictions(), 1);
        assert_eq!(g.accept(&id(1), s(0, 0, 2)), Err(Stale::Seen), "1 kept");
        assert_eq!(g.accept(&id(3), s(0, 0, 1)), Err(Stale::Seen), "3 kept");
        for b in 5..=200 {
            g.accept(&id(b), s(0, 0, 1)).unwrap();
        }
        assert_eq!(g.len(), 3);
    }

    proptest! {
        /// Whatever order a sender's datagrams arrive in, with any duplicates, each counter
        /// within the window of the newest is accepted exactly once and none twice.
        #[test]
        fn each_counter_is_accepted_at_most_once(counters in proptest::collection::vec(1u64..400, 1..300)) {
            let mut g = ReplayGuard::new(4);
            let mut accepted = std::collections::BTreeSet::new();
            let mut top = 0;
            for c in counters {
                let r = g.accept(&id(1), s(0, 0, c));
                if r.is_ok() {
                    prop_assert!(accepted.insert(c), "counter {} accepted twice", c);
                } else if !accepted.contains(&c) {
                    prop_assert!(top >= c + WINDOW, "fresh counter {} within the window refused", c);
                }
                top = top.max(c);
            }
        }
    }
}
