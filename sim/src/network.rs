//! The virtual network: a seeded link model and the in-flight packet queue.
//!
//! Every datagram is either dropped (loss, partition, a dead destination) or scheduled for
//! delivery at `now + latency + jitter`; jitter reorders, duplication delivers twice. The
//! model draws from its own RNG, forked from the master seed, so faults replay exactly.
//!
//! Partitions are *rules* (`from` set → `to` set), not a set of blocked pairs: a 60/40 split
//! of 1000 nodes would otherwise be half a million pairs. A rule is checked when a packet is
//! sent and again when it would be delivered, so a partition also swallows what was already
//! in flight across it, as a cut cable does.
//!
//! Gray failures are per-node loss on top of the link's: [`Network::set_node_loss`] gives a
//! node its own ingress and egress drop probability (1.0 drops all of it, as a flapping
//! member's dead NIC queue does). With every node at 0 the RNG draws exactly as before.

use rand_chacha::ChaCha8Rng;
use rand_core::RngCore;
use shoal_core::Timestamp;
use std::cmp::Reverse;
use std::collections::{BTreeSet, BinaryHeap};
use std::time::Duration;

/// How links behave.
#[derive(Clone, Debug, PartialEq)]
pub struct LinkConfig {
    /// One-way base latency.
    pub latency: Duration,
    /// Extra latency drawn uniformly from `[0, jitter]` per packet (reorders packets).
    pub jitter: Duration,
    /// Probability a packet is lost, 0.0..=1.0.
    pub loss: f64,
    /// Probability a packet is delivered twice.
    pub duplicate: f64,
}

impl LinkConfig {
    /// A LAN: 0.2 ms base latency, up to 0.3 ms jitter, no loss.
    pub fn lan() -> Self {
        LinkConfig {
            latency: Duration::from_micros(200),
            jitter: Duration::from_micros(300),
            loss: 0.0,
            duplicate: 0.0,
        }
    }
}

/// A packet in flight.
#[derive(Clone, Debug, PartialEq, Eq, PartialOrd, Ord)]
pub struct InFlight {
    /// Delivery time.
    pub at: Timestamp,
    /// Tie-breaker: send order.
    pub seq: u64,
    /// Sender index.
    pub from: usize,
    /// Recipient index.
    pub to: usize,
    /// The datagram.
    pub bytes: Vec<u8>,
}

/// The network: link model, blocked links, and the queue of packets in flight.
#[derive(Debug)]
pub struct Network {
    /// The link model in force.
    pub link: LinkConfig,
    rng: ChaCha8Rng,
    queue: BinaryHeap<Reverse<InFlight>>,
    seq: u64,
    blocked: BTreeSet<(usize, usize)>,
    rules: Vec<Rule>,
    /// Per-node (ingress, egress) loss probability; empty while no node has any.
    node_loss: Vec<(f64, f64)>,
    /// Packets dropped by the link model (loss) or by blocked links.
    pub dropped: u64,
    /// Packets scheduled for delivery (duplicates included).
    pub scheduled: u64,
}

/// One partition rule: packets from any node in `from` to any node in `to` are dropped.
#[derive(Clone, Debug)]
struct Rule {
    from: Vec<bool>,
    to: Vec<bool>,
}

fn mask(members: &[usize]) -> Vec<bool> {
    let mut m = vec![false; members.iter().max().map_or(0, |x| x + 1)];
    for &i in members {
        m[i] = true;
    }
    m
}

impl Rule {
    fn blocks(&self, from: usize, to: usize) -> bool {
        self.from.get(from).copied().unwrap_or(false) && self.to.get(to).copied().unwrap_or(false)
    }
}

fn chance(rng: &mut ChaCha8Rng, p: f64) -> bool {
    p > 0.0 && (rng.next_u64() >> 11) as f64 / (1u64 << 53) as f64 <= p
}

impl Network {
    /// A network with `link` behaviour and its own RNG.
    pub fn new(link: LinkConfig, rng: ChaCha8Rng) -> Self {
        Network {
            link,
            rng,
            queue: BinaryHeap::new(),
            seq: 0,
            blocked: BTreeSet::new(),
            rules: Vec::new(),
            node_loss: Vec::new(),
            dropped: 0,
            scheduled: 0,
        }
    }

    /// Blocks packets from `from` to `to` (one way).
    pub fn block(&mut self, from: usize, to: usize) {
        self.blocked.insert((from, to));
    }

    /// Blocks every packet from a node in `from` to a node in `to` (one way; call it twice,
    /// swapped, for a two-way partition).
    pub fn block_sets(&mut self, from: &[usize], to: &[usize]) {
        if from.is_empty() || to.is_empty() {
            return;
        }
        self.rules.push(Rule {
            from: mask(from),
            to: mask(to),
        });
    }

    /// Unblocks every link: pairs and partition rules alike.
    pub fn heal_all(&mut self) {
        self.blocked.clear();
        self.rules.clear();
    }

    /// Sets node `i`'s own loss: each packet *to* it is dropped with probability `ingress`,
    /// each packet *from* it with probability `egress` (both on top of the link's loss).
    pub fn set_node_loss(&mut self, i: usize, ingress: f64, egress: f64) {
        if self.node_loss.len() <= i {
            self.node_loss.resize(i + 1, (0.0, 0.0));
        }
        self.node_loss[i] = (ingress.clamp(0.0, 1.0), egress.clamp(0.0, 1.0));
    }

    /// Node `i`'s (ingress, egress) loss.
    pub fn node_loss(&self, i: usize) -> (f64, f64) {
        self.node_loss.get(i).copied().unwrap_or((0.0, 0.0))
    }

    /// Clears every node's own loss.
    pub fn clear_node_loss(&mut self) {
        self.node_loss.clear();
    }

    /// Whether the per-node loss drops a packet `from → to` (draws only for nodes with loss).
    fn node_drops(&mut self, from: usize, to: usize) -> bool {
        if self.node_loss.is_empty() {
            return false;
        }
        let egress = self.node_loss(from).1;
        let ingress = self.node_loss(to).0;
        chance(&mut self.rng, egress) || chance(&mut self.rng, ingress)
    }

    /// Whether any partition or blocked link is in force.
    pub fn is_partitioned(&self) -> bool {
        !self.blocked.is_empty() || !self.rules.is_empty()
    }

    /// Whether `from → to` is blocked.
    pub fn is_blocked(&self, from: usize, to: usize) -> bool {
        (!self.blocked.is_empty() && self.blocked.contains(&(from, to)))
            || self.rules.iter().any(|r| r.blocks(from, to))
    }

    /// Sends a datagram at `now`: drops it or schedules its delivery (maybe twice).
    pub fn send(&mut self, now: Timestamp, from: usize, to: usize, mut bytes: Vec<u8>) {
        if self.is_blocked(from, to)
            || chance(&mut self.rng, self.link.loss)
            || self.node_drops(from, to)
        {
            self.dropped += 1;
            return;
        }
        let copies = if chance(&mut self.rng, self.link.duplicate) {
            2
        } else {
            1
        };
        for c in 0..copies {
            let jitter_us = self.link.jitter.as_micros() as u64;
            let extra = if jitter_us == 0 {
                0
            } else {
                self.rng.next_u64() % (jitter_us + 1)
            };
            let at = now + self.link.latency + Duration::from_micros(extra);
            self.seq += 1;
            self.scheduled += 1;
            let bytes = if c + 1 == copies {
                std::mem::take(&mut bytes)
            } else {
                bytes.clone()
            };
            self.queue.push(Reverse(InFlight {
                at,
                seq: self.seq,
                from,
                to,
                bytes,
            }));
        }
    }

    /// When the next packet arrives.
    pub fn next_delivery(&self) -> Option<Timestamp> {
        self.queue.peek().map(|Reverse(p)| p.at)
    }

    /// Takes the next packet due at or before `now`, with whether it may be delivered: a
    /// packet whose link was cut while it was in flight is counted as dropped and comes back
    /// with `false`.
    pub fn pop_due(&mut self, now: Timestamp) -> Option<(InFlight, bool)> {
        if self.next_delivery()? <= now {
            let p = self.queue.pop().map(|Reverse(p)| p)?;
            let ok = !self.is_blocked(p.from, p.to);
            if !ok {
                self.dropped += 1;
            }
            Some((p, ok))
        } else {
            None
        }
    }

    /// Packets in flight.
    pub fn in_flight(&self) -> usize {
        self.queue.len()
    }
}
