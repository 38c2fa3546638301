//! Drives N real `shoal_core::Node`s through the virtual network in virtual time.
//!
//! Virtual time jumps to the earlier of the next packet delivery and the next node deadline.
//! Node deadlines live in a heap of `(deadline, node)` with lazy deletion, so a step costs
//! O(log n) however many nodes there are.

use crate::network::{LinkConfig, Network};
use crate::trace::Trace;
use rand_chacha::ChaCha8Rng;
use rand_core::{RngCore, SeedableRng};
use shoal_core::{Config, Event, Identity, Node, Timestamp};
use std::cmp::Reverse;
use std::collections::{BTreeMap, BinaryHeap};
use std::net::{IpAddr, Ipv4Addr, SocketAddr};

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
}

impl SimConfig {
    /// `nodes` nodes on a LAN with the LAN preset.
    pub fn lan(nodes: usize, seed: u64) -> Self {
        SimConfig {
            nodes,
            seed,
            link: LinkConfig::lan(),
            node_config: Config::lan(),
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
    deadline: Option<Timestamp>,
    /// How many times it was restarted.
    pub restarts: u32,
}

/// The simulated cluster.
#[derive(Debug)]
pub struct Sim {
    /// Virtual time.
    pub now: Timestamp,
    /// The network.
    pub net: Network,
    nodes: Vec<SimNode>,
    addr_index: BTreeMap<SocketAddr, usize>,
    timers: BinaryHeap<Reverse<(Timestamp, usize)>>,
    forks: ChaCha8Rng,
    config: SimConfig,
    /// Hash of every event so far, in order.
    pub trace: Trace,
    /// Payload bytes every node sent, in total.
    pub bytes_sent: u64,
    /// Datagrams every node sent, in total.
    pub packets_sent: u64,
}

/// The gossip address of node `i` (virtual; loopback-range so nothing ever looks routable).
pub fn addr_of(i: usize) -> SocketAddr {
    let ip = Ipv4Addr::new(
        127,
        1 + (i / 62_500) as u8,
        ((i / 250) % 250) as u8,
        (i % 250) as u8 + 1,
    );
    SocketAddr::new(IpAddr::V4(ip), 7946)
}

/// The name of node `i`.
pub fn name_of(i: usize) -> String {
    format!("n{i}")
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
        let mut sim = Sim {
            now: Timestamp::ZERO,
            net,
            nodes: Vec::with_capacity(config.nodes),
            addr_index: BTreeMap::new(),
            timers: BinaryHeap::new(),
            forks,
            trace: Trace::default(),
            bytes_sent: 0,
            packets_sent: 0,
            config,
        };
        for i in 0..sim.config.nodes {
            let identity = Identity::new(&name_of(i), addr_of(i));
            sim.addr_index.insert(identity.gossip_addr, i);
            sim.nodes.push(SimNode {
                identity,
                node: None,
                deadline: None,
                restarts: 0,
            });
            sim.boot(i);
        }
        sim
    }

    fn boot(&mut self, i: usize) {
        let rng = ChaCha8Rng::seed_from_u64(self.forks.next_u64());
        let identity = self.nodes[i].identity.clone();
        // Invariant: the scenario's config was validated when the sim was built (`validate`).
        let node = Node::new(self.config.node_config.clone(), identity, rng, self.now)
            .expect("simulation config is valid");
        self.nodes[i].node = Some(node);
        self.nodes[i].deadline = None;
        self.rearm(i);
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

    /// Runs a command on node `i` (if up) at the current time, then drains it.
    pub fn with_node<T>(
        &mut self,
        i: usize,
        out: &mut Vec<(usize, Event)>,
        f: impl FnOnce(&mut Node<ChaCha8Rng>, Timestamp) -> T,
    ) -> Option<T> {
        let now = self.now;
        let r = f(self.nodes[i].node.as_mut()?, now);
        self.drain(i, out);
        Some(r)
    }

    /// Node `i` joins through node `seed`.
    pub fn join(&mut self, i: usize, seed: usize, out: &mut Vec<(usize, Event)>) {
        let seed_addr = addr_of(seed);
        self.with_node(i, out, |n, now| n.join(now, &[seed_addr]).ok());
    }

    /// Crashes node `i`: it stops at once, sending nothing more; packets to it are lost.
    pub fn crash(&mut self, i: usize) {
        self.nodes[i].node = None;
        self.nodes[i].deadline = None;
    }

    /// Restarts node `i` with the same identity and no memory, then joins it through `seed`.
    pub fn restart(&mut self, i: usize, seed: usize, out: &mut Vec<(usize, Event)>) {
        self.nodes[i].restarts += 1;
        self.boot(i);
        self.join(i, seed, out);
    }

    fn rearm(&mut self, i: usize) {
        let d = self.nodes[i].node.as_ref().and_then(|n| n.poll_timeout());
        if d != self.nodes[i].deadline {
            self.nodes[i].deadline = d;
            if let Some(t) = d {
                self.timers.push(Reverse((t, i)));
            }
        }
    }

    fn drain(&mut self, i: usize, out: &mut Vec<(usize, Event)>) {
        let now = self.now;
        let Some(node) = self.nodes[i].node.as_mut() else {
            return;
        };
        while let Some(t) = node.poll_transmit() {
            self.bytes_sent += t.payload.len() as u64;
            self.packets_sent += 1;
            if let Some(&j) = self.addr_index.get(&t.dst) {
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
    /// touched, or `None` when nothing is due by `limit` (time then moves to `limit`).
    pub fn step(&mut self, limit: Timestamp, out: &mut Vec<(usize, Event)>) -> Option<usize> {
        let Some(t) = self.next_time().filter(|t| *t <= limit) else {
            self.now = self.now.max(limit);
            return None;
        };
        self.now = self.now.max(t);
        if self.net.next_delivery() == Some(t) {
            // Invariant: next_delivery returned a time <= now.
            let p = self.net.pop_due(t).expect("packet due");
            let from = addr_of(p.from);
            if let Some(node) = self.nodes[p.to].node.as_mut() {
                let _ = node.handle_packet(t, from, &p.bytes);
                self.drain(p.to, out);
            }
            return Some(p.to);
        }
        // Invariant: next_timer returned Some(t) for a live entry.
        let Reverse((_, i)) = self.timers.pop().expect("timer due");
        self.nodes[i].deadline = None;
        if let Some(node) = self.nodes[i].node.as_mut() {
            node.handle_timeout(t);
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
