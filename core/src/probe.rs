//! SWIM probing bookkeeping: outstanding pings, ping-reqs and relayed pings.
//!
//! Rule: every ping carries a fresh probe number; an ack counts only if its number is
//! outstanding *and* it comes from the member that was pinged (a stale or spoofed ack is
//! dropped, foca's `ProbeNumber`). Each outstanding probe has one deadline in a
//! [`DeadlineIndex`]; the node decides what a timeout means.

use crate::timer::DeadlineIndex;
use crate::{NodeId, Timestamp};
use core::net::SocketAddr;
use std::collections::BTreeMap;

/// Why a ping is outstanding.
#[derive(Clone, Debug, PartialEq)]
pub enum Pending {
    /// An observer's heartbeat to a watched member; its ack feeds that member's phi.
    Heartbeat {
        /// The watched member.
        subject: NodeId,
    },
    /// A failure probe (SWIM round-robin, or phi crossing its threshold).
    Probe {
        /// The probed member.
        subject: NodeId,
        /// Whether ping-reqs were sent already (the indirect stage).
        indirect: bool,
        /// Relays asked; each owes an ack or a nack (Lifeguard).
        relays: u32,
        /// Nacks received from relays.
        nacks: u32,
        /// Whether this was a periodic round-robin probe (its outcome feeds local health).
        periodic: bool,
    },
    /// A direct check of a member that flap damping holds down: answered checks in a row
    /// release it (see `damping`).
    HoldCheck {
        /// The held member.
        subject: NodeId,
    },
    /// A ping sent on behalf of a requester (ping-req); the answer goes back to it.
    Relay {
        /// Where the requester is.
        requester_addr: SocketAddr,
        /// Who the requester is.
        requester: NodeId,
        /// The requester's probe number.
        requester_seq: u32,
        /// The member probed for it.
        target: NodeId,
    },
}

impl Pending {
    /// The member that must answer this ping.
    pub fn pinged(&self) -> NodeId {
        match self {
            Pending::Heartbeat { subject }
            | Pending::Probe { subject, .. }
            | Pending::HoldCheck { subject } => *subject,
            Pending::Relay { target, .. } => *target,
        }
    }
}

/// Outstanding pings with their deadlines.
#[derive(Debug, Default)]
pub struct Prober {
    next_seq: u32,
    pending: BTreeMap<u32, Pending>,
    deadlines: DeadlineIndex<u32>,
    /// Most outstanding entries; beyond this new relays are refused (bounded memory under a
    /// ping-req flood).
    cap: usize,
}

impl Prober {
    /// A prober holding at most `cap` outstanding pings.
    pub fn new(cap: usize) -> Self {
        Prober {
            cap,
            ..Default::default()
        }
    }

    /// Registers an outstanding ping due at `deadline`; returns its probe number, or `None`
    /// when the table is full.
    pub fn start(&mut self, pending: Pending, deadline: Timestamp) -> Option<u32> {
        if self.pending.len() >= self.cap {
            return None;
        }
        self.next_seq = self.next_seq.wrapping_add(1).max(1);
        let seq = self.next_seq;
        self.pending.insert(seq, pending);
        self.deadlines.set(seq, deadline);
        Some(seq)
    }

    /// The outstanding ping `seq`, if any.
    pub fn get_mut(&mut self, seq: u32) -> Option<&mut Pending> {
        self.pending.get_mut(&seq)
    }

    /// Moves `seq`'s deadline.
    pub fn extend(&mut self, seq: u32, deadline: Timestamp) {
        if self.pending.contains_key(&seq) {
            self.deadlines.set(seq, deadline);
        }
    }

    /// Takes the outstanding ping `seq` if `from` is the member it was sent to.
    pub fn answer(&mut self, seq: u32, from: NodeId) -> Option<Pending> {
        if self.pending.get(&seq)?.pinged() != from {
            return None;
        }
        self.deadlines.remove(&seq);
        self.pending.remove(&seq)
    }

    /// Takes the outstanding ping `seq` whatever answered (relayed answers come from relays).
    pub fn take(&mut self, seq: u32) -> Option<Pending> {
        self.deadlines.remove(&seq);
        self.pending.remove(&seq)
    }

    /// Whether a failure probe of `subject` is outstanding.
    pub fn probing(&self, subject: &NodeId) -> bool {
        self.pending
            .values()
            .any(|p| matches!(p, Pending::Probe { subject: s, .. } if s == subject))
    }

    /// Whether a hold check of `subject` is outstanding.
    pub fn checking(&self, subject: &NodeId) -> bool {
        self.pending
            .values()
            .any(|p| matches!(p, Pending::HoldCheck { subject: s } if s == subject))
    }

    /// Pings whose deadline passed, with their entries (removed).
    pub fn expired(&mut self, now: Timestamp) -> Vec<(u32, Pending)> {
        self.deadlines
            .pop_expired(now)
            .into_iter()
            .filter_map(|seq| self.pending.remove(&seq).map(|p| (seq, p)))
            .collect()
    }

    /// The earliest deadline.
    pub fn next_deadline(&self) -> Option<Timestamp> {
        self.deadlines.next()
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn acks_count_only_from_the_pinged_member_and_only_once() {
        let mut p = Prober::new(16);
        let a = NodeId([1; 16]);
        let seq = p
            .start(
                Pending::Heartbeat { subject: a },
                Timestamp::from_millis(100),
            )
            .unwrap();
        assert_eq!(p.answer(seq, NodeId([2; 16])), None, "spoofed ack");
        assert_eq!(p.answer(seq + 1, a), None, "unknown probe number");
        assert_eq!(p.answer(seq, a), Some(Pending::Heartbeat { subject: a }));
        assert_eq!(p.answer(seq, a), None, "stale duplicate");
        assert_eq!(p.next_deadline(), None);
    }

    #[test]
    fn expiry_returns_entries_and_the_table_is_bounded() {
        let mut p = Prober::new(2);
        let a = NodeId([1; 16]);
        p.start(
            Pending::Heartbeat { subject: a },
            Timestamp::from_millis(10),
        )
        .unwrap();
        p.start(
            Pending::Heartbeat { subject: a },
            Timestamp::from_millis(20),
        )
        .unwrap();
        assert!(p
            .start(
                Pending::Heartbeat { subject: a },
                Timestamp::from_millis(30)
            )
            .is_none());
        assert_eq!(p.expired(Timestamp::from_millis(15)).len(), 1);
        assert_eq!(p.next_deadline(), Some(Timestamp::from_millis(20)));
    }
}
