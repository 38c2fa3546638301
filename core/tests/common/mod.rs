//! A small in-memory cluster for integration tests: instant delivery in virtual time,
//! deterministic RNGs, and helpers to forge datagrams the way an outsider who knows the
//! cluster name (but holds no key) can.
#![allow(dead_code)]

use core::net::SocketAddr;
use core::time::Duration;
use rand_chacha::ChaCha8Rng;
use rand_core::SeedableRng;
use shoal_core::wire::bounded::BoundedString;
use shoal_core::wire::{self, Header, Message, Packet};
use shoal_core::{Config, Event, Identity, MemberInfo, Node, NodeId, Tags, Timestamp, Update};
use std::collections::VecDeque;

pub fn addr(i: usize) -> SocketAddr {
    SocketAddr::from(([127, 0, 0, 1], 20_000 + i as u16))
}

/// An address no cluster node listens on (an outsider, or a spoofed source).
pub fn outside(i: usize) -> SocketAddr {
    SocketAddr::from(([10, (i >> 16) as u8, (i >> 8) as u8, i as u8], 9_999))
}

pub struct Cluster {
    pub nodes: Vec<Node<ChaCha8Rng>>,
    pub now: Timestamp,
    pub inflight: VecDeque<(usize, SocketAddr, Vec<u8>)>,
    pub events: Vec<(usize, Event)>,
    /// Datagrams nodes sent to addresses outside the cluster.
    pub sent_outside: Vec<(SocketAddr, Vec<u8>)>,
}

impl Cluster {
    pub fn new(n: usize, config: Config) -> Self {
        let nodes = (0..n)
            .map(|i| {
                Node::new(
                    config.clone(),
                    Identity::new(&format!("n{i}"), addr(i)),
                    ChaCha8Rng::seed_from_u64(0x5ee_d000 + i as u64),
                    Timestamp::ZERO,
                )
                .unwrap()
            })
            .collect();
        Cluster {
            nodes,
            now: Timestamp::ZERO,
            inflight: VecDeque::new(),
            events: Vec::new(),
            sent_outside: Vec::new(),
        }
    }

    /// `n` nodes, all joined through node 0 and settled.
    pub fn joined(n: usize, config: Config) -> Self {
        let mut c = Cluster::new(n, config);
        for i in 1..n {
            let now = c.now;
            c.nodes[i].join(now, &[addr(0)]).unwrap();
            c.deliver();
        }
        c.run_for(Duration::from_secs(3));
        for node in &c.nodes {
            assert_eq!(node.live_members(), n, "cluster did not form");
        }
        c.events.clear();
        c
    }

    fn index_of(&self, a: SocketAddr) -> Option<usize> {
        (0..self.nodes.len()).find(|&i| addr(i) == a)
    }

    pub fn drain(&mut self, i: usize) {
        while let Some(t) = self.nodes[i].poll_transmit() {
            match self.index_of(t.dst) {
                Some(j) => self.inflight.push_back((j, addr(i), t.payload)),
                None => self.sent_outside.push((t.dst, t.payload)),
            }
        }
        while let Some(e) = self.nodes[i].poll_event() {
            self.events.push((i, e));
        }
    }

    pub fn deliver(&mut self) {
        for i in 0..self.nodes.len() {
            self.drain(i);
        }
        let mut budget = 1_000_000;
        while let Some((to, from, bytes)) = self.inflight.pop_front() {
            budget -= 1;
            assert!(budget > 0, "delivery did not settle");
            let now = self.now;
            let _ = self.nodes[to].handle_packet(now, from, &bytes);
            self.drain(to);
        }
    }

    /// Injects a datagram from outside into node `to`, then delivers what it triggers.
    pub fn inject(
        &mut self,
        to: usize,
        from: SocketAddr,
        bytes: &[u8],
    ) -> Result<(), shoal_core::PacketError> {
        let now = self.now;
        let r = self.nodes[to].handle_packet(now, from, bytes);
        self.drain(to);
        self.deliver();
        r
    }

    pub fn run_for(&mut self, d: Duration) {
        let end = self.now + d;
        self.deliver();
        loop {
            let next = self.nodes.iter().filter_map(|n| n.poll_timeout()).min();
            match next {
                Some(t) if t <= end => {
                    self.now = self.now.max(t);
                    for i in 0..self.nodes.len() {
                        if self.nodes[i].poll_timeout().is_some_and(|d| d <= self.now) {
                            let now = self.now;
                            self.nodes[i].handle_timeout(now);
                            self.drain(i);
                        }
                    }
                    self.deliver();
                }
                _ => break,
            }
        }
        self.now = end;
    }
}

/// A fake member's id and info, as an outsider would make up.
pub fn fake_info(k: usize) -> MemberInfo {
    let name = format!("fake-{k}");
    MemberInfo {
        id: NodeId::from_name(&name),
        name: BoundedString::new(name).unwrap(),
        gossip_addr: outside(k),
        rpc_addr: None,
        incarnation: 0,
        tags: Tags::new(),
    }
}

/// Encodes a packet claiming to come from `from` in the cluster of `config`.
pub fn forge(config: &Config, from: NodeId, message: Message, updates: Vec<Update>) -> Vec<u8> {
    wire::encode(&Packet {
        header: Header {
            cluster: config.cluster_hash(),
            from,
            to: None,
        },
        message,
        updates,
    })
    .expect("forged packet fits")
}
