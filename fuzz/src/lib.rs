//! Shared harness for Shoal's fuzz targets: a deterministic RNG, a small in-memory cluster
//! driven to a joined state (as the crate-level quickstart of `shoal-core` does), the record
//! framing the sequence targets read, and the invariant checks every target applies.
#![forbid(unsafe_code)]
#![deny(missing_docs)]

use core::net::SocketAddr;
use core::time::Duration;
use shoal_core::wire::{self, Packet};
use shoal_core::{
    Config, Identity, Member, MemberInfo, Node, NodeId, PacketError, Stats, Timestamp,
};
use std::collections::VecDeque;

/// A tiny deterministic RNG (SplitMix64): the fuzzer's input is the only source of variety.
#[derive(Debug, Clone)]
pub struct Rng(u64);

impl rand_core::RngCore for Rng {
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

/// The node type every target drives.
pub type FuzzNode = Node<Rng>;

/// The gossip address of node `i`.
pub fn addr(i: usize) -> SocketAddr {
    SocketAddr::from(([127, 0, 0, 1], 7_000 + i as u16))
}

/// The configuration fuzzed nodes run: `Config::local()` with a small member cap, so that
/// structured inputs can reach the "table full" path.
pub fn config() -> Config {
    Config {
        max_members: 12,
        ..Config::local()
    }
}

/// A few nodes and an instant in-memory network.
#[derive(Debug)]
pub struct Cluster {
    /// The nodes; node `i` listens on [`addr`]`(i)`.
    pub nodes: Vec<FuzzNode>,
    /// Current virtual time.
    pub now: Timestamp,
    /// Datagrams in flight: (destination index, source address, bytes).
    pub inflight: VecDeque<(usize, SocketAddr, Vec<u8>)>,
    /// Whether `leave` was accepted for node `i` (its own entry may then be `Left`).
    pub leaving: Vec<bool>,
    /// When set, every delivered datagram is also copied here (seed corpus generation).
    pub tap: Option<Vec<Vec<u8>>>,
}

impl Cluster {
    /// `n` fresh nodes, none joined.
    pub fn new(n: usize, config: Config) -> Self {
        let nodes = (0..n)
            .map(|i| {
                Node::new(
                    config.clone(),
                    Identity::new(&format!("fuzz-{i}"), addr(i)),
                    Rng(0x5eed + i as u64),
                    Timestamp::ZERO,
                )
                .expect("valid config")
            })
            .collect();
        Cluster {
            nodes,
            now: Timestamp::ZERO,
            inflight: VecDeque::new(),
            leaving: vec![false; n],
            tap: None,
        }
    }

    /// `n` nodes, the first `joined` of which joined through node 0 and exchanged state.
    pub fn joined(n: usize, joined: usize, config: Config) -> Self {
        let mut c = Cluster::new(n, config);
        for i in 1..joined {
            let now = c.now;
            c.nodes[i].join(now, &[addr(0)]).expect("join accepted");
            c.deliver(10_000);
        }
        // One anti-entropy round or so, so every member knows every other.
        c.advance(Duration::from_millis(600), 100_000);
        c
    }

    /// The ids of every node.
    pub fn ids(&self) -> Vec<NodeId> {
        self.nodes.iter().map(|n| n.id()).collect()
    }

    fn index_of(&self, a: SocketAddr) -> Option<usize> {
        (0..self.nodes.len()).find(|&i| addr(i) == a)
    }

    /// Moves node `i`'s outputs onto the network; events are dropped.
    pub fn drain(&mut self, i: usize) {
        while let Some(t) = self.nodes[i].poll_transmit() {
            if let Some(j) = self.index_of(t.dst) {
                self.inflight.push_back((j, addr(i), t.payload));
            }
        }
        while self.nodes[i].poll_event().is_some() {}
    }

    /// Delivers in-flight datagrams (and what they trigger), at most `budget` of them; the
    /// rest are lost, as a congested network would lose them.
    pub fn deliver(&mut self, mut budget: usize) {
        for i in 0..self.nodes.len() {
            self.drain(i);
        }
        while let Some((to, from, bytes)) = self.inflight.pop_front() {
            if budget == 0 {
                self.inflight.clear();
                break;
            }
            budget -= 1;
            if let Some(tap) = &mut self.tap {
                tap.push(bytes.clone());
            }
            let now = self.now;
            let _ = self.nodes[to].handle_packet(now, from, &bytes);
            self.drain(to);
        }
    }

    /// Advances virtual time by `d`, firing due timers and delivering their datagrams.
    pub fn advance(&mut self, d: Duration, budget: usize) {
        let end = self.now + d;
        self.deliver(budget);
        for _ in 0..10_000 {
            let next = self.nodes.iter().filter_map(|n| n.poll_timeout()).min();
            match next {
                Some(t) if t <= end => {
                    self.now = self.now.max(t);
                    for i in 0..self.nodes.len() {
                        if self.nodes[i].poll_timeout().is_some_and(|t| t <= self.now) {
                            let now = self.now;
                            self.nodes[i].handle_timeout(now);
                            self.drain(i);
                        }
                    }
                    self.deliver(budget);
                }
                _ => break,
            }
        }
        self.now = self.now.max(end);
    }
}

/// Everything a rejected packet must leave unchanged.
#[derive(Debug, PartialEq)]
pub struct Snapshot {
    digest: Vec<u8>,
    me: MemberInfo,
    members: Vec<Member>,
    stats: Stats,
}

impl Snapshot {
    /// Takes a snapshot of `node` (whose outputs must have been drained).
    pub fn of(node: &FuzzNode) -> Self {
        Snapshot {
            digest: node.view_digest(),
            me: node.me().clone(),
            members: node.members().cloned().collect(),
            stats: node.stats(),
        }
    }
}

/// Feeds one datagram to `node` and checks the contract: on rejection, nothing but the one
/// drop counter (and the input counters) moved, and nothing was emitted.
pub fn handle_checked(
    node: &mut FuzzNode,
    now: Timestamp,
    from: SocketAddr,
    bytes: &[u8],
) -> Result<(), PacketError> {
    let before = Snapshot::of(node);
    let r = node.handle_packet(now, from, bytes);
    if let Err(e) = &r {
        let after = Snapshot::of(node);
        assert_eq!(
            before.digest, after.digest,
            "rejected packet ({e}) changed the view"
        );
        assert_eq!(
            before.me, after.me,
            "rejected packet ({e}) changed this node's info"
        );
        assert_eq!(
            before.members, after.members,
            "rejected packet ({e}) changed members"
        );
        let (b, a) = (&before.stats, &after.stats);
        assert_eq!(
            a.dropped_total(),
            b.dropped_total() + 1,
            "exactly one drop counted for {e}"
        );
        assert_eq!(
            a.dropped_for(e),
            b.dropped_for(e) + 1,
            "the drop counted under {e}"
        );
        let mut expected = b.clone();
        expected.packets_in += 1;
        expected.bytes_in += bytes.len() as u64;
        expected.dropped[e.index()] += 1;
        expected.stale_now = a.stale_now;
        assert_eq!(&expected, a, "rejected packet ({e}) changed other stats");
        assert!(
            node.poll_transmit().is_none(),
            "rejected packet ({e}) emitted a datagram"
        );
        assert!(
            node.poll_event().is_none(),
            "rejected packet ({e}) emitted an event"
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

/// Decodes `bytes`; if they decode, re-encoding and decoding again gives the same packet.
pub fn check_round_trip(bytes: &[u8]) -> Option<Packet> {
    let p = wire::decode(bytes, wire::MAX_DATAGRAM).ok()?;
    let again = wire::encode(&p).expect("a decoded packet re-encodes within MAX_DATAGRAM");
    assert!(again.len() <= wire::MAX_DATAGRAM);
    let q = wire::decode(&again, wire::MAX_DATAGRAM).expect("a re-encoded packet decodes");
    assert_eq!(p, q, "decode(encode(p)) != p");
    Some(p)
}

/// One record of a datagram sequence: who receives it, from where, when, and the bytes.
#[derive(Debug, Clone, PartialEq)]
pub struct Record<'a> {
    /// Selects the receiving node and the claimed source address.
    pub selector: u8,
    /// Milliseconds to advance before delivery (timers fire on the way).
    pub delay_ms: u8,
    /// The datagram.
    pub bytes: &'a [u8],
}

/// Splits fuzz input into records `[selector][delay_ms][len: u16 le][bytes]`; the last
/// record takes what is left if its length runs past the end.
pub fn records(mut data: &[u8]) -> Vec<Record<'_>> {
    let mut out = Vec::new();
    while data.len() >= 4 {
        let len = u16::from_le_bytes([data[2], data[3]]) as usize;
        let end = (4 + len).min(data.len());
        out.push(Record {
            selector: data[0],
            delay_ms: data[1],
            bytes: &data[4..end],
        });
        data = &data[end..];
    }
    out
}

/// Encodes records in the framing [`records`] reads (for seed corpora).
pub fn encode_records(recs: &[Record<'_>]) -> Vec<u8> {
    let mut out = Vec::new();
    for r in recs {
        out.push(r.selector);
        out.push(r.delay_ms);
        out.extend_from_slice(&(r.bytes.len().min(u16::MAX as usize) as u16).to_le_bytes());
        out.extend_from_slice(r.bytes);
    }
    out
}

/// Maps a claimed source: selectors below 200 pick a cluster node's address, others an
/// address no node has.
pub fn source(selector: u8, n: usize) -> SocketAddr {
    if selector < 200 {
        addr(selector as usize % n)
    } else {
        SocketAddr::from(([10, 0, 0, selector], 9_000))
    }
}

/// Rewrites ids in `p` so that structured inputs talk about real members most of the time:
/// an id whose first byte is not a multiple of 4 becomes `ids[second byte % len]`. The
/// header's cluster hash is set to `cluster` unless its low byte is 0xff.
pub fn aim(p: &mut Packet, ids: &[NodeId], cluster: u32) {
    use shoal_core::wire::Message;
    use shoal_core::Update;
    let fix = |id: &mut NodeId| {
        if !id.0[0].is_multiple_of(4) {
            *id = ids[id.0[1] as usize % ids.len()];
        }
    };
    if p.header.cluster & 0xff != 0xff {
        p.header.cluster = cluster;
    }
    fix(&mut p.header.from);
    if let Some(to) = &mut p.header.to {
        fix(to);
    }
    match &mut p.message {
        Message::PingReq { target, .. } | Message::IndirectAck { target, .. } => fix(target),
        Message::SyncReply { entries, .. } | Message::SyncPush { entries } => {
            for e in entries.0.iter_mut() {
                fix(&mut e.info.id);
            }
        }
        _ => {}
    }
    for u in &mut p.updates {
        match u {
            Update::Alive(info) => fix(&mut info.id),
            Update::Suspect { id, by, .. } | Update::Failed { id, by, .. } => {
                fix(id);
                fix(by);
            }
            Update::Left { id, .. } => fix(id),
        }
    }
}
