//! Drives N real `shoal_core::Node`s through the virtual network in virtual time.
//!
//! Virtual time jumps to the earlier of the next packet delivery and the next node deadline.
//! Node deadlines live in a heap of `(deadline, node)` with lazy deletion, so a step costs
//! O(log n) however many nodes there are.
//!
//! ## Faults
//! - **Partitions** (two-way, one-way, isolate-one) live in the [`Network`]; [`Sim::heal`]
//!   lifts them all.
//! - **Crash / restart**: a crashed node is gone (packets to it are lost); a restart boots a
//!   fresh core with the same identity and no memory.
//! - **Pause** ([`Sim::pause`]): a stalled process (GC pause, SIGSTOP, a swapped-out VM). Its
//!   timers do not fire; datagrams for it wait in a bounded receive buffer
//!   ([`RECV_BUFFER`] datagrams, the excess dropped, as a socket's buffer would). On resume
//!   it first reads the buffer in arrival order, then gets its overdue timer, all with the
//!   *actual* resume time, so the core sees its timers fire late (which is what Lifeguard's
//!   local-health rule must notice).
//! - **Clock rate skew**: node `i` reads local time `epoch_i + virtual × rate_i`. Its
//!   `poll_timeout` (local) is mapped back to the first virtual instant at which its local
//!   clock reaches it. Rate 1.0 and epoch 0 (the default) take an integer-only path, so runs
//!   without skew are bit-identical to before skew existed.

use crate::network::{LinkConfig, Network};
use crate::trace::Trace;

mod hostile;
pub use hostile::{Captured, Injected};
use rand_chacha::ChaCha8Rng;
use rand_core::{RngCore, SeedableRng};
use shoal_core::{Config, Event, Identity, Node, Timestamp};
use std::cmp::Reverse;
use std::collections::{BinaryHeap, VecDeque};
use std::net::{IpAddr, Ipv4Addr, SocketAddr};
use std::sync::atomic::{AtomicBool, Ordering};

/// How many datagrams a paused node's receive buffer holds; more are dropped.
pub const RECV_BUFFER: usize = 4096;

/// What to simulate.
#[derive(Clone, Debug)]
pub struct SimConfig {
    /// Number of nodes.
    pub nodes: usize,
    /// Master seed: forks the network's and every node's RNG.
    pub seed: u64,
    /// Link behaviour.
    pub link: LinkConfig,
    /// Every node's configuration.
    pub node_config: Config,
    /// Clock rate skew: each node's clock runs at a rate drawn uniformly from
    /// `1 ± clock_skew` (e.g. 0.01 for ±1%), with a random epoch. 0 (the default) gives every
    /// node the virtual clock itself.
    pub clock_skew: f64,
}

impl SimConfig {
    /// `nodes` nodes on a LAN with the LAN preset.
    pub fn lan(nodes: usize, seed: u64) -> Self {
        SimConfig {
            nodes,
            seed,
            link: LinkConfig::lan(),
            node_config: Config::lan(),
            clock_skew: 0.0,
        }
    }
}

/// One simulated process.
#[derive(Debug)]
pub struct SimNode {
    /// Its identity (kept across restarts).
    pub identity: Identity,
    /// The running core, or `None` while crashed.
    pub node: Option<Node<ChaCha8Rng>>,
    /// The virtual time of the heap entry that is this node's live one (lazy deletion).
    deadline: Option<Timestamp>,
    /// How many times it was restarted.
    pub restarts: u32,
    /// While paused: when it resumes (virtual time).
    paused_until: Option<Timestamp>,
    /// Datagrams that arrived while paused: (sender index, bytes), in arrival order.
    inbox: VecDeque<(usize, Vec<u8>)>,
    /// Its clock.
    pub clock: Clock,
}

/// A node's clock: local time = `epoch + virtual × rate`.
#[derive(Clone, Copy, Debug, PartialEq)]
pub struct Clock {
    /// Local time at virtual zero.
    pub epoch: Timestamp,
    /// Local microseconds per virtual microsecond.
    pub rate: f64,
}

impl Default for Clock {
    fn default() -> Self {
        Clock {
            epoch: Timestamp::ZERO,
            rate: 1.0,
        }
    }
}

impl Clock {
    fn exact(&self) -> bool {
        self.rate == 1.0 && self.epoch == Timestamp::ZERO
    }

    /// Local time at virtual time `v`.
    pub fn local(&self, v: Timestamp) -> Timestamp {
        if self.exact() {
            return v;
        }
        let us = (v.as_micros() as f64 * self.rate).floor() as u64;
        Timestamp::from_micros(self.epoch.as_micros().saturating_add(us))
    }

    /// The first virtual time at which local time reaches `l` (`Timestamp::ZERO` if it
    /// already had at virtual zero).
    pub fn virtual_at(&self, l: Timestamp) -> Timestamp {
        if self.exact() || l == Timestamp::MAX {
            return l;
        }
        let since = l.as_micros().saturating_sub(self.epoch.as_micros());
        let mut v = (since as f64 / self.rate).ceil() as u64;
        // Float rounding may land a microsecond off either way; settle on the first instant.
        while self.local(Timestamp::from_micros(v)) < l {
            v += 1;
        }
        while v > 0 && self.local(Timestamp::from_micros(v - 1)) >= l {
            v -= 1;
        }
        Timestamp::from_micros(v)
    }
}

/// Whether a [`Sim`] dropped from now on leaves its nodes' memory to the process's exit
/// (see [`leave_nodes_at_exit`]).
static LEAVE_NODES_AT_EXIT: AtomicBool = AtomicBool::new(false);

/// Makes every [`Sim`] dropped from now on leave its nodes to the process's exit instead of
/// freeing them one by one: for a process that runs one scenario and exits, as the
/// `shoal-sim` command does. Freeing a cluster of N reads each of its N² member records
/// for their drop glue, one cache miss each in a heap of many gigabytes; the operating
/// system takes the memory back at exit without reading it. A process that runs many
/// clusters (tests, the swarm) must not call this: every dropped cluster would stay.
pub fn leave_nodes_at_exit() {
    LEAVE_NODES_AT_EXIT.store(true, Ordering::Relaxed);
}

/// The simulated cluster.
#[derive(Debug)]
pub struct Sim {
    /// Virtual time.
    pub now: Timestamp,
    /// The network.
    pub net: Network,
    nodes: Vec<SimNode>,
    timers: BinaryHeap<Reverse<(Timestamp, usize)>>,
    forks: ChaCha8Rng,
    config: SimConfig,
    /// Datagrams dropped because a paused node's receive buffer was full.
    pub buffer_dropped: u64,
    /// Hash of every event so far, in order.
    pub trace: Trace,
    /// Payload bytes every node sent, in total.
    pub bytes_sent: u64,
    /// Datagrams every node sent, in total.
    pub packets_sent: u64,
    /// The cluster key every node (and every restart) gets, if set (see `hostile`).
    key: Option<[u8; 32]>,
    /// The last datagrams delivered, for replay faults (see `hostile`); off unless asked.
    capture: Option<(usize, VecDeque<Captured>)>,
    /// Payload bytes each node sent (by node index), for per-member rates.
    pub bytes_by_node: Vec<u64>,
}

/// Node numbers per address octet ([`addr_of`], [`index_of`]).
const PER_OCTET: usize = 250;

/// The gossip port of every simulated node.
const GOSSIP_PORT: u16 = 7946;

/// The gossip address of node `i` (virtual; loopback-range so nothing ever looks routable).
pub fn addr_of(i: usize) -> SocketAddr {
    let ip = Ipv4Addr::new(
        127,
        1 + (i / (PER_OCTET * PER_OCTET)) as u8,
        ((i / PER_OCTET) % PER_OCTET) as u8,
        (i % PER_OCTET) as u8 + 1,
    );
    SocketAddr::new(IpAddr::V4(ip), GOSSIP_PORT)
}

/// The node whose address is `addr` ([`addr_of`] inverted), if it is one of the first
/// `nodes`: arithmetic on the address's octets, where a map lookup hashed every datagram's
/// destination.
pub fn index_of(addr: &SocketAddr, nodes: usize) -> Option<usize> {
    let SocketAddr::V4(a) = addr else {
        return None;
    };
    let [first, hi, mid, lo] = a.ip().octets();
    let (hi, mid, lo) = (usize::from(hi), usize::from(mid), usize::from(lo));
    let in_range = hi > 0 && mid < PER_OCTET && (1..=PER_OCTET).contains(&lo);
    if first != 127 || a.port() != GOSSIP_PORT || !in_range {
        return None;
    }
    let i = (hi - 1) * PER_OCTET * PER_OCTET + mid * PER_OCTET + (lo - 1);
    (i < nodes).then_some(i)
}

/// The name of node `i`.
pub fn name_of(i: usize) -> String {
    format!("n{i}")
}

impl Drop for Sim {
    fn drop(&mut self) {
        if LEAVE_NODES_AT_EXIT.load(Ordering::Relaxed) {
            std::mem::forget(std::mem::take(&mut self.nodes));
        }
    }
}

impl Sim {
    /// Builds the cluster; every node starts (alone) at time zero.
    pub fn new(config: SimConfig) -> Self {
        let mut master = ChaCha8Rng::seed_from_u64(config.seed);
        let net = Network::new(
            config.link.clone(),
            ChaCha8Rng::seed_from_u64(master.next_u64()),
        );
        let forks = ChaCha8Rng::seed_from_u64(master.next_u64());
        // Drawn after the older forks, so they keep their seeds (and old traces their hashes).
        let mut clocks = ChaCha8Rng::seed_from_u64(master.next_u64());
        let mut sim = Sim {
            now: Timestamp::ZERO,
            net,
            nodes: Vec::with_capacity(config.nodes),
            timers: BinaryHeap::new(),
            forks,
            trace: Trace::default(),
            bytes_sent: 0,
            packets_sent: 0,
            bytes_by_node: Vec::new(),
            buffer_dropped: 0,
            config,
            key: None,
            capture: None,
        };
        for i in 0..sim.config.nodes {
            let identity = Identity::new(&name_of(i), addr_of(i));
            debug_assert_eq!(index_of(&identity.gossip_addr, sim.config.nodes), Some(i));
            let skew = sim.config.clock_skew;
            let clock = if skew > 0.0 {
                let u = (clocks.next_u64() >> 11) as f64 / (1u64 << 53) as f64;
                Clock {
                    // Up to an hour: the core must not care where its epoch is.
                    epoch: Timestamp::from_micros(clocks.next_u64() % 3_600_000_000),
                    rate: 1.0 + skew * (2.0 * u - 1.0),
                }
            } else {
                Clock::default()
            };
            sim.nodes.push(SimNode {
                identity,
                node: None,
                deadline: None,
                restarts: 0,
                paused_until: None,
                inbox: VecDeque::new(),
                clock,
            });
            sim.bytes_by_node.push(0);
            sim.boot(i);
        }
        sim
    }

    fn boot(&mut self, i: usize) {
        let rng = ChaCha8Rng::seed_from_u64(self.forks.next_u64());
        let identity = self.nodes[i].identity.clone();
        let local = self.local_now(i);
        // Invariant: the scenario's config was validated when the sim was built (`validate`).
        let mut node = Node::new(self.config.node_config.clone(), identity, rng, local)
            .expect("simulation config is valid");
        if let Some(k) = self.key {
            node.set_keyring(Some(hostile::keyring(k)));
        }
        self.nodes[i].node = Some(node);
        self.nodes[i].deadline = None;
        self.nodes[i].paused_until = None;
        self.nodes[i].inbox.clear();
        self.rearm(i);
    }

    /// Node `i`'s local time now.
    pub fn local_now(&self, i: usize) -> Timestamp {
        self.nodes[i].clock.local(self.now)
    }

    /// Sets node `i`'s clock (rate and epoch). Its pending deadline is re-mapped at once.
    pub fn set_clock(&mut self, i: usize, clock: Clock) {
        self.nodes[i].clock = clock;
        if self.nodes[i].paused_until.is_none() {
            self.nodes[i].deadline = None;
            self.rearm(i);
        }
    }

    /// The simulation's configuration.
    pub fn config(&self) -> &SimConfig {
        &self.config
    }

    // ---- faults --------------------------------------------------------------------------

    /// A two-way partition: nothing passes between `side_a` and `side_b` (either way) until
    /// [`Sim::heal`]. Links inside each side are untouched. Partitions add up.
    pub fn partition(&mut self, side_a: &[usize], side_b: &[usize]) {
        self.net.block_sets(side_a, side_b);
        self.net.block_sets(side_b, side_a);
    }

    /// A one-way partition: packets from `from` to `to` are dropped; the reverse passes.
    pub fn partition_oneway(&mut self, from: &[usize], to: &[usize]) {
        self.net.block_sets(from, to);
    }

    /// Cuts node `i` off from every other node, both ways.
    pub fn isolate(&mut self, i: usize) {
        let others: Vec<usize> = (0..self.len()).filter(|&j| j != i).collect();
        self.partition(&[i], &others);
    }

    /// Lifts every partition and blocked link.
    pub fn heal(&mut self) {
        self.net.heal_all();
    }

    /// Stalls node `i` until virtual time `until` (extending a pause already in force). A
    /// crashed node cannot be paused.
    pub fn pause(&mut self, i: usize, until: Timestamp) {
        if self.nodes[i].node.is_none() || until <= self.now {
            return;
        }
        let until = self.nodes[i].paused_until.map_or(until, |u| u.max(until));
        self.nodes[i].paused_until = Some(until);
        // The resume is this node's only live heap entry while it is paused.
        self.nodes[i].deadline = Some(until);
        self.timers.push(Reverse((until, i)));
    }

    /// Datagrams waiting in paused node `i`'s receive buffer.
    pub fn buffered(&self, i: usize) -> usize {
        self.nodes[i].inbox.len()
    }

    /// Puts a raw datagram on the network from node `from` to node `to`, now, through the
    /// link model and partitions like any other (for tests that forge or replay packets).
    pub fn send_raw(&mut self, from: usize, to: usize, bytes: Vec<u8>) {
        self.net.send(self.now, from, to, bytes);
    }

    /// Whether node `i` is paused.
    pub fn is_paused(&self, i: usize) -> bool {
        self.nodes[i].paused_until.is_some()
    }

    /// When node `i` resumes, if paused.
    pub fn paused_until(&self, i: usize) -> Option<Timestamp> {
        self.nodes[i].paused_until
    }

    /// Whether node `i` is running (up and not paused).
    pub fn is_running(&self, i: usize) -> bool {
        self.nodes[i].node.is_some() && self.nodes[i].paused_until.is_none()
    }

    /// Whether node `i` is up (running or paused, not crashed).
    pub fn is_up(&self, i: usize) -> bool {
        self.nodes[i].node.is_some()
    }

    /// Resumes node `i` now if it is paused: buffered datagrams first, in arrival order, then
    /// its (overdue) timer, all at the current time.
    pub fn resume(&mut self, i: usize, out: &mut Vec<(usize, Event)>) {
        if self.nodes[i].paused_until.take().is_none() {
            return;
        }
        self.nodes[i].deadline = None;
        let local = self.local_now(i);
        while let Some((from, bytes)) = self.nodes[i].inbox.pop_front() {
            if let Some(node) = self.nodes[i].node.as_mut() {
                let _ = node.handle_packet(local, addr_of(from), &bytes);
            }
            self.drain(i, out);
        }
        if let Some(node) = self.nodes[i].node.as_mut() {
            node.handle_timeout(local);
        }
        self.drain(i, out);
    }

    /// Number of simulated processes.
    pub fn len(&self) -> usize {
        self.nodes.len()
    }

    /// Whether there are no processes.
    pub fn is_empty(&self) -> bool {
        self.nodes.is_empty()
    }

    /// Node `i`'s core, if it is up.
    pub fn node(&self, i: usize) -> Option<&Node<ChaCha8Rng>> {
        self.nodes.get(i)?.node.as_ref()
    }

    /// Node `i`'s simulated process.
    pub fn process(&self, i: usize) -> &SimNode {
        &self.nodes[i]
    }

    /// Runs a command on node `i` (if up and not paused: a stalled process runs nothing) at
    /// its current local time, then drains it.
    pub fn with_node<T>(
        &mut self,
        i: usize,
        out: &mut Vec<(usize, Event)>,
        f: impl FnOnce(&mut Node<ChaCha8Rng>, Timestamp) -> T,
    ) -> Option<T> {
        if self.nodes[i].paused_until.is_some() {
            return None;
        }
        let now = self.local_now(i);
        let r = f(self.nodes[i].node.as_mut()?, now);
        self.drain(i, out);
        Some(r)
    }

    /// Node `i` joins through node `seed`.
    pub fn join(&mut self, i: usize, seed: usize, out: &mut Vec<(usize, Event)>) {
        self.join_any(i, &[seed], out);
    }

    /// Node `i` joins through `seeds`, tried in order with the core's backoff.
    pub fn join_any(&mut self, i: usize, seeds: &[usize], out: &mut Vec<(usize, Event)>) {
        let addrs: Vec<SocketAddr> = seeds.iter().map(|&s| addr_of(s)).collect();
        self.with_node(i, out, |n, now| n.join(now, &addrs).ok());
    }

    /// Crashes node `i`: it stops at once, sending nothing more; packets to it are lost (a
    /// pause in force ends with it, and its receive buffer is gone).
    pub fn crash(&mut self, i: usize) {
        self.nodes[i].node = None;
        self.nodes[i].deadline = None;
        self.nodes[i].paused_until = None;
        self.nodes[i].inbox.clear();
    }

    /// Restarts node `i` with the same identity and no memory, then joins it through `seed`.
    pub fn restart(&mut self, i: usize, seed: usize, out: &mut Vec<(usize, Event)>) {
        self.restart_any(i, &[seed], out);
    }

    /// Restarts node `i` (see [`Sim::restart`]) and joins it through `seeds`; with no seeds
    /// it starts alone.
    pub fn restart_any(&mut self, i: usize, seeds: &[usize], out: &mut Vec<(usize, Event)>) {
        self.nodes[i].restarts += 1;
        self.boot(i);
        if !seeds.is_empty() {
            self.join_any(i, seeds, out);
        }
    }

    fn rearm(&mut self, i: usize) {
        if self.nodes[i].paused_until.is_some() {
            return;
        }
        let clock = self.nodes[i].clock;
        let d = self.nodes[i]
            .node
            .as_ref()
            .and_then(|n| n.poll_timeout())
            .map(|l| clock.virtual_at(l));
        if d != self.nodes[i].deadline {
            self.nodes[i].deadline = d;
            if let Some(t) = d {
                self.timers.push(Reverse((t, i)));
            }
        }
    }

    fn drain(&mut self, i: usize, out: &mut Vec<(usize, Event)>) {
        let now = self.now;
        let nodes = self.nodes.len();
        let Some(node) = self.nodes[i].node.as_mut() else {
            return;
        };
        while let Some(t) = node.poll_transmit() {
            self.bytes_sent += t.payload.len() as u64;
            if let Some(b) = self.bytes_by_node.get_mut(i) {
                *b += t.payload.len() as u64;
            }
            self.packets_sent += 1;
            if let Some(j) = index_of(&t.dst, nodes) {
                self.net.send(now, i, j, t.payload);
            }
        }
        while let Some(e) = node.poll_event() {
            self.trace.record(now, i, &e);
            out.push((i, e));
        }
        self.rearm(i);
    }

    fn next_timer(&mut self) -> Option<Timestamp> {
        while let Some(&Reverse((t, i))) = self.timers.peek() {
            if self.nodes[i].deadline == Some(t) {
                return Some(t);
            }
            self.timers.pop();
        }
        None
    }

    /// When the next thing happens.
    pub fn next_time(&mut self) -> Option<Timestamp> {
        match (self.net.next_delivery(), self.next_timer()) {
            (Some(a), Some(b)) => Some(a.min(b)),
            (a, b) => a.or(b),
        }
    }

    /// Performs the next delivery or timer expiry (not after `limit`). Returns the node it
    /// touched (or would have: a dropped or buffered packet counts), or `None` when nothing is
    /// due by `limit` (time then moves to `limit`).
    pub fn step(&mut self, limit: Timestamp, out: &mut Vec<(usize, Event)>) -> Option<usize> {
        let Some(t) = self.next_time().filter(|t| *t <= limit) else {
            self.now = self.now.max(limit);
            return None;
        };
        self.now = self.now.max(t);
        if self.net.next_delivery() == Some(t) {
            // Invariant: next_delivery returned a time <= now.
            let (p, deliverable) = self.net.pop_due(t).expect("packet due");
            let to = p.to;
            if !deliverable {
                return Some(to);
            }
            if self.nodes[to].paused_until.is_some() {
                if self.nodes[to].inbox.len() < RECV_BUFFER {
                    self.nodes[to].inbox.push_back((p.from, p.bytes));
                } else {
                    self.buffer_dropped += 1;
                }
                return Some(to);
            }
            let local = self.local_now(to);
            if let Some(node) = self.nodes[to].node.as_mut() {
                let r = node.handle_packet(local, addr_of(p.from), &p.bytes);
                self.drain(to, out);
                self.record(p.from, to, p.bytes, r);
            }
            return Some(to);
        }
        // Invariant: next_timer returned Some(t) for a live entry.
        let Reverse((_, i)) = self.timers.pop().expect("timer due");
        self.nodes[i].deadline = None;
        if self.nodes[i].paused_until.is_some() {
            self.resume(i, out);
            return Some(i);
        }
        let local = self.local_now(i);
        if let Some(node) = self.nodes[i].node.as_mut() {
            node.handle_timeout(local);
        }
        self.drain(i, out);
        Some(i)
    }

    /// Runs until virtual time `t`, handing each step's touched node and events to `f`.
    pub fn run_until(&mut self, t: Timestamp, mut f: impl FnMut(&Sim, usize, &[(usize, Event)])) {
        let mut out = Vec::new();
        while let Some(i) = self.step(t, &mut out) {
            f(self, i, &out);
            out.clear();
        }
    }

    /// Runs until `pred` holds (checked after each step that touched a node) or `deadline`
    /// passes; returns the time `pred` first held.
    pub fn run_until_pred(
        &mut self,
        deadline: Timestamp,
        mut on_step: impl FnMut(&Sim, usize, &[(usize, Event)]),
        mut pred: impl FnMut(&Sim) -> bool,
    ) -> Option<Timestamp> {
        let mut out = Vec::new();
        if pred(self) {
            return Some(self.now);
        }
        while let Some(i) = self.step(deadline, &mut out) {
            on_step(self, i, &out);
            out.clear();
            if pred(self) {
                return Some(self.now);
            }
        }
        None
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn index_of_inverts_addr_of_and_nothing_else() {
        let nodes = 200_000;
        for i in (0..nodes)
            .step_by(7)
            .chain([0, 249, 250, 62_499, 62_500, nodes - 1])
        {
            assert_eq!(index_of(&addr_of(i), nodes), Some(i), "node {i}");
            assert_eq!(index_of(&addr_of(i), i), None, "node {i} of {i}");
        }
        for other in [
            "127.1.0.0:7946",
            "127.1.0.251:7946",
            "127.1.250.1:7946",
            "127.0.0.1:7946",
            "127.1.0.1:7947",
            "10.1.0.1:7946",
            "[::1]:7946",
        ] {
            assert_eq!(index_of(&other.parse().unwrap(), nodes), None, "{other}");
        }
    }
}
