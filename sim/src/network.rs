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
use std::collections::{BTreeSet, BinaryHeap, VecDeque};
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

/// Microseconds the delivery ring spans (a slot each): the LAN link's latency plus jitter
/// is half of it.
const RING: u64 = 1024;

/// Packets in flight in delivery order: by delivery time, and at one time in the order they
/// were sent (by `seq`), exactly the order of a min-heap on `(at, seq)`.
///
/// Why not only that heap: every datagram of a run passes through here (3.3 M while 5,000
/// members converge), and popping from a heap of a thousand 56-byte packets moves one down
/// some ten levels, comparing and copying at each (2.6 % of the 10,000-member `converge`).
/// Nearly every packet is due within latency plus jitter of being
/// sent, so a ring of one FIFO per microsecond over the next [`RING`] microseconds holds
/// them: a push appends to its time's FIFO, a pop takes the front of the first occupied
/// slot (found in a bitmap). A FIFO is in `seq` order because `seq` grows with every push.
/// A packet due beyond the ring's window when sent (a slow link, a long jitter, or a clock
/// that moved on while earlier packets were still in flight) goes to the heap, and the two
/// are merged by `(at, seq)`, so the order never depends on which one holds a packet.
#[derive(Debug)]
struct DeliveryQueue {
    /// Slot `at % RING` holds the packets due at `at`, for `base <= at < base + RING`.
    ring: Vec<VecDeque<InFlight>>,
    /// One bit per occupied slot.
    occupied: [u64; (RING / 64) as usize],
    in_ring: usize,
    /// The slot of the ring's earliest packet (`None` when the ring is empty).
    first: Option<usize>,
    /// The ring's window start, in microseconds: never after the clock (the sender's `now`)
    /// nor after a packet in the ring.
    base: u64,
    /// Packets due beyond the window when they were sent.
    later: BinaryHeap<Reverse<InFlight>>,
}

impl Default for DeliveryQueue {
    fn default() -> Self {
        DeliveryQueue {
            ring: (0..RING).map(|_| VecDeque::new()).collect(),
            occupied: [0; (RING / 64) as usize],
            in_ring: 0,
            first: None,
            base: 0,
            later: BinaryHeap::new(),
        }
    }
}

impl DeliveryQueue {
    fn len(&self) -> usize {
        self.in_ring + self.later.len()
    }

    /// Queues `p`, sent at `now` (`p.at >= now`).
    fn push(&mut self, now: Timestamp, p: InFlight) {
        if self.in_ring == 0 {
            // An empty ring follows the clock.
            self.base = self.base.max(now.as_micros());
        }
        let at = p.at.as_micros();
        if at >= self.base && at - self.base < RING {
            let slot = (at % RING) as usize;
            let earlier = match self.first {
                Some(f) => self.ring[f].front().is_none_or(|q| p.at < q.at),
                None => true,
            };
            if earlier {
                self.first = Some(slot);
            }
            self.ring[slot].push_back(p);
            self.occupied[slot / 64] |= 1 << (slot % 64);
            self.in_ring += 1;
        } else {
            self.later.push(Reverse(p));
        }
    }

    /// The first occupied slot of the ring from `base` on (the bitmap scan behind `first`).
    fn scan_first(&self) -> Option<usize> {
        if self.in_ring == 0 {
            return None;
        }
        let words = self.occupied.len();
        let start = (self.base % RING) as usize;
        let (w0, b0) = (start / 64, start % 64);
        // The start word from the start bit, the other words, then the start word's low bits.
        (0..=words).find_map(|k| {
            let w = (w0 + k) % words;
            let bits = match k {
                0 => self.occupied[w] & (u64::MAX << b0),
                k if k == words => self.occupied[w] & !(u64::MAX << b0),
                _ => self.occupied[w],
            };
            (bits != 0).then(|| w * 64 + bits.trailing_zeros() as usize)
        })
    }

    /// The next packet due, and where it waits: `Some(slot)` in the ring, `None` in the heap.
    fn peek(&self) -> Option<(Option<usize>, &InFlight)> {
        let ring = self
            .first
            .and_then(|f| self.ring[f].front().map(|p| (Some(f), p)));
        let later = self.later.peek().map(|Reverse(p)| (None, p));
        match (ring, later) {
            (Some(r), Some(l)) => Some(if (r.1.at, r.1.seq) < (l.1.at, l.1.seq) {
                r
            } else {
                l
            }),
            (r, l) => r.or(l),
        }
    }

    fn next_at(&self) -> Option<Timestamp> {
        self.peek().map(|(_, p)| p.at)
    }

    fn pop(&mut self) -> Option<InFlight> {
        let (slot, _) = self.peek()?;
        let p = match slot {
            Some(slot) => {
                let p = self.ring[slot].pop_front()?;
                self.in_ring -= 1;
                p
            }
            None => self.later.pop()?.0,
        };
        // Everything left is due at or after `p`: the window may start there.
        self.base = self.base.max(p.at.as_micros());
        if let Some(slot) = slot.filter(|&s| self.ring[s].is_empty()) {
            self.occupied[slot / 64] &= !(1 << (slot % 64));
            self.first = self.scan_first();
        }
        Some(p)
    }
}

/// The network: link model, blocked links, and the queue of packets in flight.
#[derive(Debug)]
pub struct Network {
    /// The link model in force.
    pub link: LinkConfig,
    rng: ChaCha8Rng,
    queue: DeliveryQueue,
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
            queue: DeliveryQueue::default(),
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
            self.queue.push(
                now,
                InFlight {
                    at,
                    seq: self.seq,
                    from,
                    to,
                    bytes,
                },
            );
        }
    }

    /// When the next packet arrives.
    pub fn next_delivery(&self) -> Option<Timestamp> {
        self.queue.next_at()
    }

    /// Takes the next packet due at or before `now`, with whether it may be delivered: a
    /// packet whose link was cut while it was in flight is counted as dropped and comes back
    /// with `false`.
    pub fn pop_due(&mut self, now: Timestamp) -> Option<(InFlight, bool)> {
        if self.next_delivery()? <= now {
            let p = self.queue.pop()?;
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

#[cfg(test)]
mod tests {
    use super::*;
    use rand_chacha::rand_core::SeedableRng;

    /// The ring pops exactly what a min-heap on `(at, seq)` pops, whatever the mix of
    /// packets inside and beyond its window, the clock's jumps and the interleaving of pushes
    /// and pops.
    #[test]
    fn delivery_queue_pops_in_heap_order() {
        for seed in 0..50 {
            let mut rng = ChaCha8Rng::seed_from_u64(seed);
            let mut q = DeliveryQueue::default();
            let mut heap = BinaryHeap::new();
            let (mut now, mut seq) = (0u64, 0u64);
            for _ in 0..5_000 {
                let r = rng.next_u64();
                if r % 3 != 0 {
                    // Mostly within the window, some far beyond it, some at equal times.
                    let delay = match r % 7 {
                        0 => 1_000 + r % 5_000,
                        1 => 0,
                        _ => 200 + (r >> 8) % 301,
                    };
                    seq += 1;
                    let p = InFlight {
                        at: Timestamp::from_micros(now + delay),
                        seq,
                        from: 0,
                        to: 1,
                        bytes: Vec::new(),
                    };
                    q.push(Timestamp::from_micros(now), p.clone());
                    heap.push(Reverse(p));
                } else if r % 9 == 0 {
                    // A timer moves the clock on, not past the next delivery.
                    let next = heap.peek().map_or(u64::MAX, |Reverse(p)| p.at.as_micros());
                    now = (now + (r >> 16) % 2_000).min(next);
                } else {
                    assert_eq!(q.next_at(), heap.peek().map(|Reverse(p)| p.at));
                    let want = heap.pop().map(|Reverse(p)| (p.at, p.seq));
                    let got = q.pop().map(|p| (p.at, p.seq));
                    assert_eq!(got, want, "seed {seed}");
                    if let Some((at, _)) = got {
                        now = now.max(at.as_micros());
                    }
                }
                assert_eq!(q.len(), heap.len());
            }
            while let Some(Reverse(p)) = heap.pop() {
                assert_eq!(q.pop().map(|x| (x.at, x.seq)), Some((p.at, p.seq)));
            }
            assert!(q.pop().is_none());
        }
    }
}
