//! A tiny in-core cluster for unit tests (quinn's `Pair`, for N nodes): instant or delayed
//! delivery in virtual time, loss by clearing queues, deterministic RNGs.

use crate::{Config, Event, Identity, Node, Timestamp};
use core::net::SocketAddr;
use core::time::Duration;
use rand_chacha::ChaCha8Rng;
use rand_core::SeedableRng;
use std::collections::VecDeque;

pub(crate) fn addr(i: usize) -> SocketAddr {
    SocketAddr::from(([127, 0, 0, 1], 10_000 + i as u16))
}

pub(crate) fn node(i: usize, config: Config) -> Node<ChaCha8Rng> {
    Node::new(
        config,
        Identity::new(&format!("n{i}"), addr(i)),
        ChaCha8Rng::seed_from_u64(0xF0CA + i as u64),
        Timestamp::ZERO,
    )
    .unwrap()
}

/// N nodes with an instant network; `drop_all` loses every datagram in flight.
pub(crate) struct Cluster {
    pub nodes: Vec<Node<ChaCha8Rng>>,
    pub up: Vec<bool>,
    pub now: Timestamp,
    pub inflight: VecDeque<(usize, SocketAddr, Vec<u8>)>,
    pub events: Vec<(usize, Event)>,
}

impl Cluster {
    pub fn new(n: usize, config: Config) -> Self {
        Cluster {
            nodes: (0..n).map(|i| node(i, config.clone())).collect(),
            up: vec![true; n],
            now: Timestamp::ZERO,
            inflight: VecDeque::new(),
            events: Vec::new(),
        }
    }

    fn index_of(&self, a: SocketAddr) -> Option<usize> {
        (0..self.nodes.len()).find(|&i| addr(i) == a)
    }

    /// Moves outputs of node `i` into the network and the event log.
    pub fn drain(&mut self, i: usize) {
        while let Some(t) = self.nodes[i].poll_transmit() {
            if let Some(j) = self.index_of(t.dst) {
                self.inflight.push_back((j, addr(i), t.payload));
            }
        }
        while let Some(e) = self.nodes[i].poll_event() {
            self.events.push((i, e));
        }
    }

    /// Delivers everything in flight (and what that triggers) at the current time.
    pub fn deliver(&mut self) {
        for i in 0..self.nodes.len() {
            self.drain(i);
        }
        let mut budget = 1_000_000;
        while let Some((to, from, bytes)) = self.inflight.pop_front() {
            budget -= 1;
            assert!(budget > 0, "delivery did not settle");
            if self.up[to] {
                let _ = self.nodes[to].handle_packet(self.now, from, &bytes);
                self.drain(to);
            }
        }
    }

    /// Advances time in steps of at most `step`, firing timers and delivering, until `until`.
    pub fn run_for(&mut self, d: Duration) {
        let end = self.now + d;
        self.deliver();
        loop {
            let next = (0..self.nodes.len())
                .filter(|&i| self.up[i])
                .filter_map(|i| self.nodes[i].poll_timeout())
                .min();
            match next {
                Some(t) if t <= end => {
                    self.now = self.now.max(t);
                    for i in 0..self.nodes.len() {
                        if self.up[i] && self.nodes[i].poll_timeout().is_some_and(|d| d <= self.now)
                        {
                            self.nodes[i].handle_timeout(self.now);
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

    pub fn take_events(&mut self) -> Vec<(usize, Event)> {
        std::mem::take(&mut self.events)
    }
}
