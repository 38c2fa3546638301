//! Per-input cost of the core: what one node pays per packet and per protocol period, and
//! what the codec pays per message kind. Balancer picks are in the `select` bench.
//!
//! `cargo bench -p shoal-core --bench node -- --warm-up-time 1 --measurement-time 2`
//!
//! The 1,000-member node is built through the public API only: forged `SyncPush` packets
//! (as anti-entropy from a peer would deliver) teach it the members, then it runs a few
//! protocol periods with every ping answered, so the figures are steady-state ones. Outputs
//! are drained after every input, as a driver must (`poll_transmit`, `poll_event`, then
//! `poll_timeout`), and draining is part of the measured cost.

use criterion::{black_box, criterion_group, criterion_main, BatchSize, Criterion};
use rand_chacha::rand_core::SeedableRng;
use rand_chacha::ChaCha8Rng;
use shoal_core::membership::SyncEntry;
use shoal_core::wire::bounded::{BoundedString, BoundedVec};
use shoal_core::wire::{self, Header, Message, Packet, DIGEST_BYTES, MAX_SYNC_ENTRIES};
use shoal_core::{
    Config, Identity, MemberInfo, MemberState, Node, NodeId, Tags, Timestamp, Update,
};
use std::net::{IpAddr, Ipv4Addr, SocketAddr};

const MEMBERS: usize = 1000;
/// Entries per forged sync packet: comfortably inside the LAN preset's 1,400-byte MTU.
const SYNC_CHUNK: usize = 16;

fn addr(i: usize) -> SocketAddr {
    let ip = Ipv4Addr::new(10, (i >> 16) as u8, (i >> 8) as u8, i as u8);
    SocketAddr::new(IpAddr::V4(ip), 7946)
}

/// The member index whose address is `a` (the inverse of [`addr`]).
fn index_of(a: SocketAddr) -> usize {
    match a.ip() {
        IpAddr::V4(ip) => {
            let o = ip.octets();
            (usize::from(o[1]) << 16) | (usize::from(o[2]) << 8) | usize::from(o[3])
        }
        IpAddr::V6(_) => unreachable!("bench members are IPv4"),
    }
}

fn info(i: usize, incarnation: u64) -> MemberInfo {
    let name = format!("member-{i}");
    let mut tags = Tags::new();
    tags.insert("role", if i % 4 == 0 { "director" } else { "worker" })
        .expect("valid tag");
    MemberInfo::new(
        NodeId::from_name(&name),
        BoundedString::new(name).expect("short name"),
        addr(i),
        Some(SocketAddr::new(addr(i).ip(), 7947).into()),
        incarnation,
        tags,
    )
}

fn forge(
    config: &Config,
    from: NodeId,
    to: Option<NodeId>,
    message: Message,
    updates: Vec<Update>,
) -> Vec<u8> {
    wire::encode(&Packet {
        header: Header {
            cluster: config.cluster_hash(),
            from,
            to: to.map(Into::into),
        },
        message,
        updates,
    })
    .expect("bench packet fits")
}

/// A node at member index 0 and the virtual clock it is at.
struct Bench {
    config: Config,
    node: Node<ChaCha8Rng>,
    now: Timestamp,
    /// Datagrams and events drained so far (kept so the work is not optimised away).
    drained: u64,
}

impl Bench {
    /// A node that knows `MEMBERS` members (itself included), all alive, after a few
    /// answered protocol periods.
    fn new() -> Self {
        let config = Config::lan();
        let me = info(0, 0);
        let identity = Identity {
            id: me.id,
            name: me.name.as_str().to_owned(),
            gossip_addr: me.gossip_addr().get(),
            rpc_addr: me.rpc_addr().map(SocketAddr::from),
            tags: me.tags.clone(),
            incarnation: 0,
        };
        let now = Timestamp::from_micros(1_000_000);
        let node = Node::new(config.clone(), identity, ChaCha8Rng::seed_from_u64(7), now)
            .expect("valid config");
        let mut b = Bench {
            config,
            node,
            now,
            drained: 0,
        };
        let from = info(1, 0).id;
        let others: Vec<usize> = (1..MEMBERS).collect();
        for chunk in others.chunks(SYNC_CHUNK) {
            let entries: Vec<SyncEntry> = chunk
                .iter()
                .map(|&i| SyncEntry {
                    info: info(i, 1),
                    state: MemberState::Alive,
                    down_secs: 0,
                })
                .collect();
            let entries = BoundedVec::try_from_vec(entries).expect("chunk within MAX_SYNC_ENTRIES");
            let bytes = forge(
                &b.config,
                from,
                None,
                Message::SyncPush { entries },
                Vec::new(),
            );
            b.node
                .handle_packet(b.now, addr(1), &bytes)
                .expect("sync push accepted");
            b.drain_answering();
        }
        assert_eq!(
            b.node.live_members(),
            MEMBERS,
            "the node learned every member"
        );
        // Settle: let the join-time dissemination drain and the detectors fill.
        for _ in 0..30 {
            b.period();
        }
        assert_eq!(b.node.live_members(), MEMBERS, "nobody was suspected away");
        b
    }

    /// Drains outputs; answers every ping the node sent as its target would (an ack from
    /// the member it was addressed to), so the node sees a healthy cluster.
    fn drain_answering(&mut self) {
        let mut acks = Vec::new();
        while let Some(t) = self.node.poll_transmit() {
            self.drained += 1;
            if let Ok(p) = wire::decode(&t.payload, wire::MAX_DATAGRAM) {
                if let (Message::Ping { seq }, Some(_)) = (&p.message, p.header.to) {
                    // The header names the recipient by a tag only: its id from its address.
                    acks.push((t.dst, info(index_of(t.dst), 0).id, *seq));
                }
            }
        }
        while self.node.poll_event().is_some() {
            self.drained += 1;
        }
        for (dst, to, seq) in acks {
            let bytes = forge(
                &self.config,
                to,
                Some(self.node.id()),
                Message::Ack { seq },
                Vec::new(),
            );
            let _ = self.node.handle_packet(self.now, dst, &bytes);
            while self.node.poll_transmit().is_some() {
                self.drained += 1;
            }
            while self.node.poll_event().is_some() {
                self.drained += 1;
            }
        }
    }

    /// One protocol period: every timer that falls due inside it fires (at its deadline),
    /// with outputs drained and pings answered after each.
    fn period(&mut self) {
        let end = self.now + self.config.probe_interval;
        while let Some(t) = self.node.poll_timeout().filter(|t| *t <= end) {
            self.now = self.now.max(t);
            self.node.handle_timeout(self.now);
            self.drain_answering();
        }
        self.now = end;
    }
}

fn bench_node(c: &mut Criterion) {
    let mut group = c.benchmark_group("node/1000-members");
    let mut b = Bench::new();

    // A ping from a member carrying 6 piggybacked alive updates the node already holds (the
    // steady state: most gossip is news that already arrived by another path). The node
    // answers with an ack that carries its own piggyback.
    let stale: Vec<Update> = (10..16).map(|i| Update::Alive(info(i, 1))).collect();
    let mut seq = 0u32;
    group.bench_function("handle_packet/ping+6-stale-updates", |bench| {
        bench.iter(|| {
            seq = seq.wrapping_add(1);
            let bytes = forge(
                &b.config,
                info(5, 1).id,
                Some(b.node.id()),
                Message::Ping { seq },
                stale.clone(),
            );
            b.node
                .handle_packet(b.now, addr(5), black_box(&bytes))
                .expect("accepted");
            while b.node.poll_transmit().is_some() {}
            while b.node.poll_event().is_some() {}
        })
    });

    // The same with 6 updates that are news (each member raised its incarnation): applied,
    // announced as events and queued for re-dissemination.
    let mut incarnation = 1u64;
    let (config, me) = (b.config.clone(), b.node.id());
    group.bench_function("handle_packet/ping+6-new-updates", |bench| {
        bench.iter_batched(
            || {
                incarnation += 1;
                seq = seq.wrapping_add(1);
                let fresh: Vec<Update> = (20..26)
                    .map(|i| Update::Alive(info(i, incarnation)))
                    .collect();
                forge(
                    &config,
                    info(5, 1).id,
                    Some(me),
                    Message::Ping { seq },
                    fresh,
                )
            },
            |bytes| {
                b.node
                    .handle_packet(b.now, addr(5), &bytes)
                    .expect("accepted");
                while b.node.poll_transmit().is_some() {}
                while b.node.poll_event().is_some() {}
            },
            BatchSize::SmallInput,
        )
    });

    // Every timer of one protocol period (probe, heartbeats to watched members, gossip,
    // sync, reap...), with outputs drained and the node's pings answered.
    group.bench_function("handle_timeout/protocol-period", |bench| {
        bench.iter(|| b.period())
    });
    group.finish();
    black_box(b.drained);
}

fn sample_messages() -> Vec<(&'static str, Message, Vec<Update>)> {
    let digest = BoundedVec::try_from_vec(vec![0xab; DIGEST_BYTES]).expect("digest size");
    let entries = |n: usize| {
        BoundedVec::<SyncEntry, MAX_SYNC_ENTRIES>::try_from_vec(
            (0..n)
                .map(|i| SyncEntry {
                    info: info(i, 3),
                    state: MemberState::Alive,
                    down_secs: 0,
                })
                .collect(),
        )
        .expect("within bound")
    };
    let updates: Vec<Update> = (0..6)
        .map(|i| match i % 3 {
            0 => Update::Alive(info(i, 2)),
            1 => Update::Suspect {
                id: info(i, 0).id,
                incarnation: 2,
                by: info(99, 0).id,
            },
            _ => Update::Failed {
                id: info(i, 0).id,
                incarnation: 2,
                by: info(99, 0).id,
            },
        })
        .collect();
    let target = info(42, 0).id;
    // One bucket's summary at 10,000 members (156 of them in each of 64 buckets).
    let hashes: Vec<u64> = (0..156u64)
        .map(|i| i.wrapping_mul(0x9e37_79b9_7f4a_7c15))
        .collect();
    vec![
        ("gossip+6-updates", Message::Gossip, updates),
        ("ping", Message::Ping { seq: 77 }, Vec::new()),
        ("ack", Message::Ack { seq: 77 }, Vec::new()),
        ("ping-req", Message::PingReq { seq: 77, target }, Vec::new()),
        (
            "indirect-ack",
            Message::IndirectAck {
                seq: 77,
                target,
                ok: true,
            },
            Vec::new(),
        ),
        ("join", Message::Join, Vec::new()),
        (
            "sync",
            Message::Sync {
                seq: 9,
                digest: digest.clone(),
            },
            Vec::new(),
        ),
        (
            "sync-reply+16-entries",
            Message::SyncReply {
                seq: 9,
                digest,
                entries: entries(SYNC_CHUNK),
                last: true,
                summarized: 0,
            },
            Vec::new(),
        ),
        (
            "sync-push+16-entries",
            Message::SyncPush {
                entries: entries(SYNC_CHUNK),
            },
            Vec::new(),
        ),
        (
            "sync-summary+156-hashes",
            Message::SyncSummary {
                seq: 9,
                bucket: 5,
                split: 0,
                part: 0,
                hashes: wire::write_hashes(&hashes),
            },
            Vec::new(),
        ),
        (
            "sync-want+16-hashes",
            Message::SyncWant {
                bucket: 5,
                hashes: wire::write_hashes(&hashes[..16]),
            },
            Vec::new(),
        ),
    ]
}

fn bench_wire(c: &mut Criterion) {
    let config = Config::lan();
    for (name, message, updates) in sample_messages() {
        let packet = Packet {
            header: Header {
                cluster: config.cluster_hash(),
                from: info(1, 0).id,
                to: Some(info(2, 0).id.into()),
            },
            message,
            updates,
        };
        let bytes = wire::encode(&packet).expect("fits");
        assert!(bytes.len() <= config.mtu, "{name}: {} bytes", bytes.len());
        let mut group = c.benchmark_group(format!("wire/{name}"));
        group.bench_function("encode", |bench| {
            bench.iter(|| wire::encode(black_box(&packet)))
        });
        group.bench_function("decode", |bench| {
            bench.iter(|| wire::decode(black_box(&bytes), config.mtu).expect("valid"))
        });
        group.finish();
    }
}

criterion_group!(benches, bench_node, bench_wire);
criterion_main!(benches);
