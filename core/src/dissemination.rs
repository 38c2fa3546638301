//! Piggyback dissemination: which membership updates ride on outgoing packets.
//!
//! Rule: each update is sent at most `λ·ceil(log10(n + 1))` times (n = live members), the
//! least-sent first and, among equals, the newest first; a newer update about a member
//! replaces the queued one. Packets are filled up to the MTU budget. The queue is bounded:
//! when full, the most-sent update is dropped (it has had the most chances already).
//!
//! Urgent rounds: failure-detection news (suspicion, failure, refutation, leave) should not
//! wait for the next gossip round. [`Dissemination::mark_urgent`] asks for a round at once;
//! [`Dissemination::urgent_round`] grants one at most every `gossip_interval / 8`
//! ([`URGENT_ROUNDS_PER_INTERVAL`]), and when it is too soon says when the next may go, so the
//! node pulls its regular round forward instead.

use crate::membership::Update;
use crate::wire::{encode_value, PacketBuilder};
use crate::{NodeId, Timestamp};
use core::time::Duration;
use std::collections::{BTreeMap, BTreeSet};

/// Most urgent rounds per gossip interval.
pub const URGENT_ROUNDS_PER_INTERVAL: u32 = 8;

/// Whether to gossip now because urgent news is queued.
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub enum UrgentRound {
    /// No urgent news is waiting.
    Idle,
    /// Gossip a round now.
    Now,
    /// Too soon after the last urgent round: gossip no later than this.
    NotBefore(Timestamp),
}

/// Most updates queued at once.
pub const MAX_QUEUED: usize = 8192;

#[derive(Debug)]
struct Queued {
    /// Exactly sized: postcard's encoder grows a `Vec` by doubling, so an ~65-byte alive
    /// update kept as that `Vec` held a 128-byte block. Every node queues an update for each
    /// member it learns, so while a large cluster converges this queue is N² of them.
    encoded: Box<[u8]>,
    transmits: u32,
    seq: u64,
}

/// The queue of updates waiting to be piggybacked.
#[derive(Debug, Default)]
pub struct Dissemination {
    by_subject: BTreeMap<NodeId, Queued>,
    /// How many queued updates have each encoded length: the shortest tells
    /// [`fill`](Self::fill) when no queued update can fit any more, so a full packet stops
    /// the walk at once instead of trying every queued update (at 5,000 members that walk
    /// was 40 % of the simulator's CPU while the queue held thousands of alive updates).
    lens: BTreeMap<usize, u32>,
    // (transmits, newest first via u64::MAX - seq, subject)
    order: BTreeSet<(u32, u64, NodeId)>,
    next_seq: u64,
    dropped: u64,
    urgent: bool,
    last_urgent: Timestamp,
}

/// The retransmit limit for `live` members with multiplier `mult`.
pub fn retransmit_limit(mult: u32, live: usize) -> u32 {
    // ceil(log10(live + 1)), at least 1.
    let target = live as u64 + 1;
    let (mut k, mut p) = (0u32, 1u64);
    while p < target {
        p = p.saturating_mul(10);
        k += 1;
    }
    mult.saturating_mul(k.max(1))
}

impl Dissemination {
    /// An empty queue.
    pub fn new() -> Self {
        Self::default()
    }

    /// Queues `update`, replacing any queued update about the same member.
    pub fn push(&mut self, update: &Update) {
        let subject = update.subject();
        self.remove(&subject);
        if self.by_subject.len() >= MAX_QUEUED {
            // Drop the most-sent, oldest update.
            if let Some(&last) = self.order.iter().next_back() {
                self.order.remove(&last);
                if let Some(q) = self.by_subject.remove(&last.2) {
                    self.forget_len(q.encoded.len());
                }
                self.dropped += 1;
            }
        }
        let seq = self.next_seq;
        self.next_seq += 1;
        self.order.insert((0, u64::MAX - seq, subject));
        let encoded = encode_value(update).into_boxed_slice();
        *self.lens.entry(encoded.len()).or_insert(0) += 1;
        self.by_subject.insert(
            subject,
            Queued {
                encoded,
                transmits: 0,
                seq,
            },
        );
    }

    /// A queued update of `len` bytes left the queue.
    fn forget_len(&mut self, len: usize) {
        if let Some(n) = self.lens.get_mut(&len) {
            *n -= 1;
            if *n == 0 {
                self.lens.remove(&len);
            }
        }
    }

    /// Failure-detection news was queued: it should go out in an urgent round.
    pub fn mark_urgent(&mut self) {
        self.urgent = true;
    }

    /// Whether an urgent round may go now (at most [`URGENT_ROUNDS_PER_INTERVAL`] per
    /// `gossip_interval`). `Now` starts the round: the request is cleared.
    pub fn urgent_round(&mut self, now: Timestamp, gossip_interval: Duration) -> UrgentRound {
        if !self.urgent {
            return UrgentRound::Idle;
        }
        let gap = gossip_interval / URGENT_ROUNDS_PER_INTERVAL;
        if now < self.last_urgent + gap {
            return UrgentRound::NotBefore(self.last_urgent + gap);
        }
        self.urgent = false;
        self.last_urgent = now;
        UrgentRound::Now
    }

    /// Drops any queued update about `subject`.
    pub fn remove(&mut self, subject: &NodeId) {
        if let Some(q) = self.by_subject.remove(subject) {
            self.order
                .remove(&(q.transmits, u64::MAX - q.seq, *subject));
            self.forget_len(q.encoded.len());
        }
    }

    /// Number of queued updates.
    pub fn len(&self) -> usize {
        self.by_subject.len()
    }

    /// Whether nothing is queued.
    pub fn is_empty(&self) -> bool {
        self.by_subject.is_empty()
    }

    /// Updates dropped because the queue was full.
    pub fn dropped(&self) -> u64 {
        self.dropped
    }

    /// Fills `packet` with queued updates, least-sent first, counting a transmit for each;
    /// updates that reach `limit` transmits leave the queue. Returns how many were added.
    pub fn fill(&mut self, packet: &mut PacketBuilder, limit: u32) -> usize {
        let mut sent = Vec::new();
        let mut added = 0;
        // Nothing queued is shorter than this: once it cannot fit, nothing can.
        let shortest = self.lens.keys().next().copied().unwrap_or(0);
        for key in self.order.iter() {
            if packet.remaining() < 8 || !packet.fits(shortest) {
                break;
            }
            // Invariant: `order` and `by_subject` hold the same subjects.
            let q = self.by_subject.get(&key.2).expect("queue index in sync");
            if packet.try_push_encoded(&q.encoded) {
                sent.push(*key);
                added += 1;
            }
        }
        for key in sent {
            self.order.remove(&key);
            let transmits = key.0 + 1;
            if transmits >= limit {
                if let Some(q) = self.by_subject.remove(&key.2) {
                    self.forget_len(q.encoded.len());
                }
            } else {
                // Invariant as above.
                let q = self
                    .by_subject
                    .get_mut(&key.2)
                    .expect("queue index in sync");
                q.transmits = transmits;
                self.order.insert((transmits, key.1, key.2));
            }
        }
        added
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::membership::Update;
    use crate::wire::{Header, Message};

    fn left(i: u8) -> Update {
        Update::Left {
            id: NodeId([i; 16]),
            incarnation: 1,
        }
    }

    fn builder(budget: usize) -> PacketBuilder {
        let h = Header {
            cluster: 1,
            from: NodeId([0; 16]),
            to: None,
        };
        PacketBuilder::new(&h, &Message::Gossip, budget).unwrap()
    }

    /// `fill` as it was before it kept `lens`: try every queued update in order.
    fn fill_by_trying_all(d: &mut Dissemination, packet: &mut PacketBuilder, limit: u32) -> usize {
        let mut sent = Vec::new();
        for key in d.order.iter() {
            if packet.remaining() < 8 {
                break;
            }
            if packet.try_push_encoded(&d.by_subject[&key.2].encoded) {
                sent.push(*key);
            }
        }
        let added = sent.len();
        for key in sent {
            d.order.remove(&key);
            let transmits = key.0 + 1;
            if transmits >= limit {
                let q = d.by_subject.remove(&key.2).unwrap();
                d.forget_len(q.encoded.len());
            } else {
                d.by_subject.get_mut(&key.2).unwrap().transmits = transmits;
                d.order.insert((transmits, key.1, key.2));
            }
        }
        added
    }

    fn lens_agree(d: &Dissemination) {
        let mut want = BTreeMap::new();
        for q in d.by_subject.values() {
            *want.entry(q.encoded.len()).or_insert(0u32) += 1;
        }
        assert_eq!(d.lens, want);
    }

    #[test]
    fn stopping_at_the_shortest_picks_exactly_what_trying_all_picks() {
        // Short (Left, incarnation 1: 18 bytes) and long (incarnation near u64::MAX: 27
        // bytes) updates mixed, budgets that leave room for a short one but not a long one.
        let mut x: u64 = 7;
        let mut rnd = move || {
            x = x
                .wrapping_mul(6364136223846793005)
                .wrapping_add(1442695040888963407);
            x >> 33
        };
        let (mut a, mut b) = (Dissemination::new(), Dissemination::new());
        for round in 0..300 {
            for _ in 0..rnd() % 6 {
                let i = (rnd() % 60) as u8;
                let incarnation = if rnd() % 3 == 0 { 1 } else { u64::MAX - rnd() };
                let u = Update::Left {
                    id: NodeId([i; 16]),
                    incarnation,
                };
                a.push(&u);
                b.push(&u);
            }
            if rnd() % 5 == 0 {
                let i = (rnd() % 60) as u8;
                a.remove(&NodeId([i; 16]));
                b.remove(&NodeId([i; 16]));
            }
            let budget = 60 + (rnd() % 120) as usize;
            let (mut pa, mut pb) = (builder(budget), builder(budget));
            let na = a.fill(&mut pa, 3);
            let nb = fill_by_trying_all(&mut b, &mut pb, 3);
            assert_eq!(na, nb, "round {round}");
            assert_eq!(pa.finish(), pb.finish(), "round {round}");
            lens_agree(&a);
            lens_agree(&b);
        }
    }

    #[test]
    fn retransmit_limit_scales_with_log_n() {
        assert_eq!(retransmit_limit(4, 1), 4);
        assert_eq!(retransmit_limit(4, 9), 4);
        assert_eq!(retransmit_limit(4, 10), 8);
        assert_eq!(retransmit_limit(4, 99), 8);
        assert_eq!(retransmit_limit(4, 100), 12);
        assert_eq!(retransmit_limit(4, 1000), 16);
    }

    #[test]
    fn each_update_is_sent_at_most_limit_times() {
        let mut d = Dissemination::new();
        d.push(&left(1));
        let mut sends = 0;
        for _ in 0..10 {
            let mut b = builder(1400);
            sends += d.fill(&mut b, 3);
        }
        assert_eq!(sends, 3);
        assert!(d.is_empty());
    }

    #[test]
    fn least_sent_and_newest_go_first_and_packets_respect_budget() {
        let mut d = Dissemination::new();
        for i in 1..=200 {
            d.push(&left(i));
        }
        let mut b = builder(300);
        let n = d.fill(&mut b, 10);
        assert!(n > 0 && n < 200);
        let bytes = b.finish();
        assert!(bytes.len() <= 300);
        let p = crate::wire::decode(&bytes, 1400).unwrap();
        // Newest first.
        assert_eq!(p.updates[0], left(200));
        // The next packet starts with updates never sent.
        let mut b = builder(300);
        d.fill(&mut b, 10);
        let p = crate::wire::decode(&b.finish(), 1400).unwrap();
        assert!(!p.updates.contains(&left(200)));
    }

    #[test]
    fn urgent_rounds_are_rate_limited_to_eight_per_gossip_interval() {
        let gi = Duration::from_millis(800);
        let mut d = Dissemination::new();
        let t = Timestamp::from_millis;
        assert_eq!(d.urgent_round(t(1000), gi), UrgentRound::Idle);
        d.mark_urgent();
        assert_eq!(d.urgent_round(t(1000), gi), UrgentRound::Now);
        assert_eq!(
            d.urgent_round(t(1000), gi),
            UrgentRound::Idle,
            "request cleared"
        );
        d.mark_urgent();
        assert_eq!(d.urgent_round(t(1050), gi), UrgentRound::NotBefore(t(1100)));
        assert_eq!(d.urgent_round(t(1099), gi), UrgentRound::NotBefore(t(1100)));
        assert_eq!(d.urgent_round(t(1100), gi), UrgentRound::Now);
        let mut rounds = 0;
        for ms in 0..800 {
            d.mark_urgent();
            rounds += u32::from(d.urgent_round(t(2000 + ms), gi) == UrgentRound::Now);
        }
        assert_eq!(rounds, URGENT_ROUNDS_PER_INTERVAL);
    }

    #[test]
    fn newer_update_replaces_queued_one() {
        let mut d = Dissemination::new();
        d.push(&left(1));
        d.push(&Update::Failed {
            id: NodeId([1; 16]),
            incarnation: 2,
            by: NodeId([9; 16]),
        });
        assert_eq!(d.len(), 1);
    }
}
