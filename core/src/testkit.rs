//! The one in-memory cluster harness (quinn's `Pair`, for N nodes), shared by core's unit
//! tests, core's integration tests (feature `testkit`) and the fuzz targets.
//!
//! - [`Cluster`]: N nodes on an instant network in virtual time. Node `i` is named `n{i}`,
//!   listens on [`addr`]`(i)` and draws from [`TestRng`] seeded `0xF0CA + i`, so every run is
//!   the same. Loss is a cleared queue (`inflight.clear()`), a crash is `up[i] = false`, a
//!   congested network is [`Cluster::deliver_at_most`].
//! - [`Snapshot`] and [`handle_checked`]: the rejection contract, written once: a datagram
//!   `handle_packet` refuses changes nothing but the input counters and exactly one drop
//!   counter, and emits nothing.
//! - [`forge`], [`fake_info`], [`outside`]: datagrams as an outsider who knows the cluster name
//!   (but holds no key) can make them.
//!
//! ```
//! use shoal_core::testkit::Cluster;
//! use shoal_core::Config;
//!
//! let c = Cluster::joined(4, Config::local());
//! assert!(c.nodes.iter().all(|n| n.live_members() == 4));
//! ```

use crate::wire::bounded::BoundedString;
use crate::wire::{self, Header, Message, Packet};
use crate::{
    Config, Event, Identity, Member, MemberInfo, Node, NodeId, PacketError, Stats, Tags, Timestamp,
    Update,
};
use core::net::SocketAddr;
use core::time::Duration;
use rand_core::RngCore;
use std::collections::VecDeque;

/// A tiny deterministic RNG (SplitMix64): tests never seed from the OS.
#[derive(Debug, Clone)]
pub struct TestRng(pub u64);

impl RngCore for TestRng {
    fn next_u32(&mut self) -> u32 {
        self.next_u64() as u32
    }
    fn next_u64(&mut self) -> u64 {
        self.0 = self.0.wrapping_add(0x9e37_79b9_7f4a_7c15);
        let mut z = self.0;
        z = (z ^ (z >> 30)).wrapping_mul(0xbf58_476d_1ce4_e5b9);
        z = (z ^ (z >> 27)).wrapping_mul(0x94d0_49bb_1331_11eb);
        z ^ (z >> 31)
    }
    fn fill_bytes(&mut self, dest: &mut [u8]) {
        rand_core::impls::fill_bytes_via_next(self, dest)
    }
    fn try_fill_bytes(&mut self, dest: &mut [u8]) -> Result<(), rand_core::Error> {
        self.fill_bytes(dest);
        Ok(())
    }
}

/// The node type the harness drives.
pub type TestNode = Node<TestRng>;

/// The gossip address of node `i`.
pub fn addr(i: usize) -> SocketAddr {
    SocketAddr::from(([127, 0, 0, 1], 10_000 + i as u16))
}

/// An address no cluster node listens on (an outsider, or a spoofed source).
pub fn outside(i: usize) -> SocketAddr {
    SocketAddr::from(([10, (i >> 16) as u8, (i >> 8) as u8, i as u8], 9_999))
}

/// Node `i` of a harness cluster, fresh (not joined).
pub fn node(i: usize, config: Config) -> TestNode {
    // The harness's configurations are valid presets; a bad one is a bug in the test.
    Node::new(
        config,
        Identity::new(&format!("n{i}"), addr(i)),
        TestRng(0xF0CA + i as u64),
        Timestamp::ZERO,
    )
    .expect("test config is valid")
}

/// Most datagrams [`Cluster::deliver`] hands out before deciding delivery does not settle.
const SETTLE: usize = 1_000_000;
/// Most timer rounds one [`Cluster::advance`] runs.
const MAX_ROUNDS: usize = 1_000_000;

/// N nodes on an instant in-memory network in virtual time.
#[derive(Debug)]
pub struct Cluster {
    /// The nodes; node `i` listens on [`addr`]`(i)`.
    pub nodes: Vec<TestNode>,
    /// Whether node `i` runs: a down node gets no datagrams and no timer calls.
    pub up: Vec<bool>,
    /// Current virtual time.
    pub now: Timestamp,
    /// Datagrams in flight: (destination index, source address, bytes).
    pub inflight: VecDeque<(usize, SocketAddr, Vec<u8>)>,
    /// Events the nodes emitted, with the emitting node's index.
    pub events: Vec<(usize, Event)>,
    /// Datagrams nodes sent to addresses outside the cluster.
    pub sent_outside: Vec<(SocketAddr, Vec<u8>)>,
    /// When set, every delivered datagram is also copied here (seed corpus generation).
    pub tap: Option<Vec<Vec<u8>>>,
}

impl Cluster {
    /// `n` fresh nodes, none joined.
    pub fn new(n: usize, config: Config) -> Self {
        Cluster {
            nodes: (0..n).map(|i| node(i, config.clone())).collect(),
            up: vec![true; n],
            now: Timestamp::ZERO,
            inflight: VecDeque::new(),
            events: Vec::new(),
            sent_outside: Vec::new(),
            tap: None,
        }
    }

    /// `n` nodes, all joined through node 0 one after the other and settled for 3 s; panics
    /// if any node does not see all `n`. The events of forming are cleared.
    pub fn joined(n: usize, config: Config) -> Self {
        let mut c = Cluster::new(n, config);
        for i in 1..n {
            let now = c.now;
            c.nodes[i].join(now, &[addr(0)]).expect("join accepted");
            c.deliver();
        }
        c.run_for(Duration::from_secs(3));
        for node in &c.nodes {
            assert_eq!(node.live_members(), n, "cluster did not form");
        }
        c.events.clear();
        c
    }

    /// The ids of every node.
    pub fn ids(&self) -> Vec<NodeId> {
        self.nodes.iter().map(|n| n.id()).collect()
    }

    fn index_of(&self, a: SocketAddr) -> Option<usize> {
        (0..self.nodes.len()).find(|&i| addr(i) == a)
    }

    /// Moves node `i`'s outputs onto the network and into the event log.
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

    /// Delivers everything in flight (and what that triggers) at the current time; panics if
    /// it does not settle.
    pub fn deliver(&mut self) {
        assert!(self.deliver_at_most(SETTLE), "delivery did not settle");
    }

    /// Delivers in-flight datagrams (and what they trigger), at most `budget` of them; the
    /// rest are lost, as a congested network would lose them. Returns whether it settled.
    pub fn deliver_at_most(&mut self, mut budget: usize) -> bool {
        for i in 0..self.nodes.len() {
            self.drain(i);
        }
        while let Some((to, from, bytes)) = self.inflight.pop_front() {
            if budget == 0 {
                self.inflight.clear();
                return false;
            }
            budget -= 1;
            if let Some(tap) = &mut self.tap {
                tap.push(bytes.clone());
            }
            if self.up[to] {
                let now = self.now;
                let _ = self.nodes[to].handle_packet(now, from, &bytes);
                self.drain(to);
            }
        }
        true
    }

    /// Injects a datagram from outside into node `to`, then delivers what it triggers.
    pub fn inject(&mut self, to: usize, from: SocketAddr, bytes: &[u8]) -> Result<(), PacketError> {
        let now = self.now;
        let r = self.nodes[to].handle_packet(now, from, bytes);
        self.drain(to);
        self.deliver();
        r
    }

    /// Advances virtual time by `d`, firing due timers and delivering everything they send.
    pub fn run_for(&mut self, d: Duration) {
        self.advance(d, SETTLE);
    }

    /// Advances virtual time by `d`, firing due timers of running nodes and delivering at
    /// most `budget` datagrams after each round (see [`Cluster::deliver_at_most`]).
    pub fn advance(&mut self, d: Duration, budget: usize) {
        let end = self.now + d;
        self.deliver_at_most(budget);
        for _ in 0..MAX_ROUNDS {
            let next = (0..self.nodes.len())
                .filter(|&i| self.up[i])
                .filter_map(|i| self.nodes[i].poll_timeout())
                .min();
            match next {
                Some(t) if t <= end => {
                    self.now = self.now.max(t);
                    for i in 0..self.nodes.len() {
                        if self.up[i] && self.nodes[i].poll_timeout().is_some_and(|t| t <= self.now)
                        {
                            let now = self.now;
                            self.nodes[i].handle_timeout(now);
                            self.drain(i);
                        }
                    }
                    self.deliver_at_most(budget);
                }
                _ => break,
            }
        }
        self.now = self.now.max(end);
    }

    /// Takes the events logged so far.
    pub fn take_events(&mut self) -> Vec<(usize, Event)> {
        std::mem::take(&mut self.events)
    }
}

/// A fake member's info, as an outsider would make one up.
pub fn fake_info(k: usize) -> MemberInfo {
    let name = format!("fake-{k}");
    MemberInfo::new(
        NodeId::from_name(&name),
        BoundedString::new(name).expect("short name"),
        outside(k),
        None,
        0,
        Tags::new(),
    )
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

/// Everything a rejected packet must leave unchanged.
#[derive(Debug, Clone, PartialEq)]
pub struct Snapshot {
    digest: Vec<u8>,
    me: MemberInfo,
    members: Vec<Member>,
    stats: Stats,
}

impl Snapshot {
    /// Takes a snapshot of `node` (whose outputs must have been drained).
    pub fn of<R: RngCore>(node: &Node<R>) -> Self {
        Snapshot {
            digest: node.view_digest(),
            me: node.me().clone(),
            members: node.members().cloned().collect(),
            stats: node.stats(),
        }
    }
}

/// Feeds one datagram to `node` (outputs drained) and checks the rejection contract: on
/// `Err`, the view, this node's info and the members are unchanged, exactly one drop counter
/// (the error's) moved besides the input counters, and nothing was emitted. Panics otherwise.
pub fn handle_checked<R: RngCore>(
    node: &mut Node<R>,
    now: Timestamp,
    from: SocketAddr,
    bytes: &[u8],
) -> Result<(), PacketError> {
    let before = Snapshot::of(node);
    let r = node.handle_packet(now, from, bytes);
    if let Err(e) = &r {
        let after = Snapshot::of(node);
        assert_eq!(before.digest, after.digest, "rejected ({e}): view changed");
        assert_eq!(before.me, after.me, "rejected ({e}): own info changed");
        assert_eq!(
            before.members, after.members,
            "rejected ({e}): members changed"
        );
        let (b, a) = (&before.stats, &after.stats);
        assert_eq!(a.dropped_total(), b.dropped_total() + 1, "one drop for {e}");
        assert_eq!(a.dropped_for(e), b.dropped_for(e) + 1, "counted under {e}");
        let mut expected = b.clone();
        expected.packets_in += 1;
        expected.bytes_in += bytes.len() as u64;
        expected.dropped[e.index()] += 1;
        expected.stale_now = a.stale_now;
        assert_eq!(&expected, a, "rejected ({e}): other stats changed");
        assert!(node.poll_transmit().is_none(), "rejected ({e}): sent");
        assert!(
            node.poll_event().is_none(),
            "rejected ({e}): emitted an event"
        );
    }
    r
}

/// Monotonic counters of `s`, to compare before and after an operation.
pub fn counters(s: &Stats) -> Vec<u64> {
    let mut v = vec![
        s.packets_in,
        s.bytes_in,
        s.packets_out,
        s.bytes_out,
        s.stale_now,
        s.updates_applied,
        s.refutations,
        s.broadcasts_dropped,
        s.probes,
        s.probe_failures,
        s.suspicions,
        s.failures_declared,
        s.stale_acks,
        s.identity_conflicts,
    ];
    v.extend_from_slice(&s.dropped);
    v
}

/// Checks that every counter in `after` is at least its value in `before`.
pub fn assert_monotonic(before: &Stats, after: &Stats) {
    for (i, (b, a)) in counters(before).iter().zip(counters(after)).enumerate() {
        assert!(a >= *b, "counter #{i} went down: {b} -> {a}");
    }
}
