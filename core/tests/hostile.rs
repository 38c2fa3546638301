//! Hostile input against real nodes: floods, forged suspicions, oversized member lists,
//! oversized RPC frames, and regressions for every crash the fuzzers found. Counts are
//! asserted through `stats()`.

use bytes::BytesMut;
use core::time::Duration;
use shoal_core::rpc::{Decoder, FrameError, Limits};
use shoal_core::testkit::{addr, fake_info, forge, outside, Cluster};
use shoal_core::wire::bounded::BoundedVec;
use shoal_core::wire::{self, Message, MAX_SYNC_ENTRIES};
use shoal_core::{Config, Event, MemberState, NodeId, PacketError, Update};

fn small(max_members: usize) -> Config {
    Config {
        max_members,
        ..Config::local()
    }
}

/// Regression (fuzz: structured_packet, node_ops): news about this node at incarnation
/// `u64::MAX` made the refutation overflow (`incarnation += 1`), a panic in debug builds and
/// a wrap to 0 in release.
#[test]
fn news_about_me_at_max_incarnation_does_not_overflow() {
    let config = Config::local();
    let mut c = Cluster::joined(3, config.clone());
    let victim = c.nodes[1].id();
    let fake = fake_info(1).id;
    let forged = [
        Update::Suspect {
            id: victim,
            incarnation: u64::MAX,
            by: fake,
        },
        Update::Failed {
            id: victim,
            incarnation: u64::MAX,
            by: fake,
        },
        Update::Left {
            id: victim,
            incarnation: u64::MAX,
        },
    ];
    for u in forged {
        let bytes = forge(&config, fake, Message::Gossip, vec![u]);
        c.inject(1, outside(1), &bytes).unwrap();
        assert_eq!(c.nodes[1].me().incarnation, u64::MAX);
        let own = c.nodes[1].member(&victim).unwrap();
        assert_eq!(own.state, MemberState::Alive);
    }
    let mut alive = c.nodes[1].me().clone();
    alive.set_gossip_addr(outside(2));
    let bytes = forge(&config, fake, Message::Gossip, vec![Update::Alive(alive)]);
    c.inject(1, outside(1), &bytes).unwrap();
    assert_eq!(c.nodes[1].me().incarnation, u64::MAX);
    assert_eq!(c.nodes[1].me().gossip_addr(), addr(1));
}

/// A flood of join requests from many distinct fake members never grows the table past
/// `max_members`; every refused join is counted, and the node's other state stays bounded.
#[test]
fn join_flood_is_capped_at_max_members() {
    let config = small(32);
    let mut c = Cluster::joined(3, config.clone());
    let flood = 1_000;
    for k in 0..flood {
        let info = fake_info(k);
        let bytes = forge(&config, info.id, Message::Join, vec![Update::Alive(info)]);
        let _ = c.inject(0, outside(k), &bytes);
        let n0 = &c.nodes[0];
        assert!(n0.members().count() <= 32);
        assert!(n0.stats().queued_updates <= 32 + 1);
    }
    let s = c.nodes[0].stats();
    assert_eq!(c.nodes[0].members().count(), 32);
    assert_eq!(s.dropped_for(&PacketError::MembersFull), flood as u64 - 29);
    // A refused join gets no answer: only admitted joiners were sent state.
    let answered: std::collections::BTreeSet<_> = c.sent_outside.iter().map(|(a, _)| *a).collect();
    assert!(
        answered.len() <= 29,
        "{} fake addresses were answered",
        answered.len()
    );
    // The real members are still fine, and so is everyone's table.
    c.run_for(Duration::from_secs(10));
    for node in &c.nodes {
        assert!(node.members().count() <= 32);
        for j in 0..3 {
            let id = c.nodes[j].id();
            assert_eq!(node.member(&id).unwrap().state, MemberState::Alive);
        }
    }
}

/// When two members' tables are filled by two disjoint floods, their gossip carries news of
/// members the other has no room for. That must not make them drop each other's pings and
/// acks, or the flood would get real members suspected and declared failed.
#[test]
fn full_tables_do_not_starve_failure_detection() {
    let config = small(24);
    let mut c = Cluster::joined(4, config.clone());
    for k in 0..200 {
        for (node, base) in [(0, 0), (1, 10_000)] {
            let info = fake_info(base + k);
            let bytes = forge(&config, info.id, Message::Join, vec![Update::Alive(info)]);
            let _ = c.inject(node, outside(base + k), &bytes);
        }
    }
    let refused: Vec<u64> = c
        .nodes
        .iter()
        .map(|n| n.stats().dropped_for(&PacketError::MembersFull))
        .collect();
    c.run_for(Duration::from_secs(20));
    let after: Vec<u64> = c
        .nodes
        .iter()
        .map(|n| n.stats().dropped_for(&PacketError::MembersFull))
        .collect();
    // The vector was exercised: real members' own packets were refused for carrying news of
    // members the receiver had no room for (after the flood only real members send), at both
    // flooded members and at one or both of the others, whichever the fakes' news reached
    // while their tables were full. Each such update rides on at most `retransmit_limit`
    // packets, so the refusals stop on their own.
    assert!(
        after[0] > refused[0]
            && after[1] > refused[1]
            && (after[2] > refused[2] || after[3] > refused[3]),
        "{refused:?} -> {after:?}"
    );
    let real: Vec<NodeId> = c.nodes.iter().map(|n| n.id()).collect();
    for (i, node) in c.nodes.iter().enumerate() {
        assert!(node.members().count() <= 24);
        for id in &real {
            let m = node.member(id).unwrap();
            assert_eq!(
                m.state,
                MemberState::Alive,
                "node {i} sees {id:?} as {:?}",
                m.state
            );
        }
    }
    let failed_real = c.events.iter().any(|(_, e)| {
        matches!(e, Event::MemberFailed(m) | Event::MemberSuspected(m) if real.contains(&m.info.id))
    });
    assert!(
        !failed_real,
        "a real member was suspected or failed during the flood"
    );
}

/// Spoofed suspicions about a live member, from many fake ids, do not get it declared failed:
/// it refutes, its incarnation is only ever raised by itself, and the state the flood creates
/// stays bounded.
#[test]
fn spoofed_suspicion_flood_is_refuted() {
    let config = Config::local();
    let mut c = Cluster::joined(4, config.clone());
    let victim = c.nodes[1].id();
    for k in 0..500 {
        let fake = fake_info(k).id;
        let inc = c.nodes[1].me().incarnation;
        let u = Update::Suspect {
            id: victim,
            incarnation: inc,
            by: fake,
        };
        let bytes = forge(&config, fake, Message::Gossip, vec![u]);
        let to = [0, 2, 3][k % 3];
        c.inject(to, outside(k), &bytes).unwrap();
        for node in &c.nodes {
            assert!(
                node.stats().queued_updates <= 8,
                "queue grew: {}",
                node.stats().queued_updates
            );
        }
        if k % 50 == 0 {
            c.run_for(Duration::from_millis(100));
        }
    }
    c.run_for(Duration::from_secs(10));
    let published = c.nodes[1].me().incarnation;
    assert!(c.nodes[1].stats().refutations > 0);
    for (i, node) in c.nodes.iter().enumerate() {
        let m = node.member(&victim).unwrap();
        assert_eq!(m.state, MemberState::Alive, "node {i}");
        assert_eq!(m.info.incarnation, published, "node {i}");
        assert_eq!(node.stats().failures_declared, 0, "node {i}");
    }
    let failed = c
        .events
        .iter()
        .any(|(_, e)| matches!(e, Event::MemberFailed(m) if m.info.id == victim));
    assert!(!failed, "the victim was declared failed");
}

/// Sync replies claiming the most entries the decoder allows, repeated: over the MTU they are
/// refused before decoding; within it the member cap holds and each refusal is counted.
#[test]
fn huge_member_lists_are_bounded() {
    let entries = |base: usize, n: usize| {
        let v: Vec<_> = (base..base + n)
            .map(|k| shoal_core::membership::SyncEntry {
                info: fake_info(k),
                state: MemberState::Alive,
                down_secs: 0,
            })
            .collect();
        BoundedVec::try_from_vec(v).unwrap()
    };
    let reply = |e| Message::SyncReply {
        seq: 0,
        digest: BoundedVec::new(),
        entries: e,
        last: true,
        summarized: 0,
    };
    // With the default MTU a full reply does not even fit: refused by size.
    let config = small(64);
    let mut c = Cluster::joined(2, config.clone());
    let fake = fake_info(999_999).id;
    let big = forge(&config, fake, reply(entries(0, MAX_SYNC_ENTRIES)), vec![]);
    assert!(big.len() > config.mtu);
    for _ in 0..20 {
        assert!(matches!(
            c.inject(0, outside(1), &big),
            Err(PacketError::TooLarge { .. })
        ));
    }
    assert_eq!(
        c.nodes[0]
            .stats()
            .dropped_for(&PacketError::TooLarge { len: 0 }),
        20
    );
    // A declared count over the bound with only a few bytes behind it is refused before
    // anything is allocated for it.
    let mut short = forge(&config, fake, reply(entries(0, 1)), vec![]);
    // Layout from the end: updates count, `summarized` (0), `last`, the entry, the entries
    // count.
    let at = short.len() - 1 - 1 - 1 - wire_entry_len(&fake_info(0)) - 1;
    assert_eq!(short[at], 1, "entries count byte");
    short.splice(at..=at, [0xff, 0xff, 0xff, 0xff, 0x0f]);
    assert!(c.inject(0, outside(1), &short).is_err());
    // With a large MTU full replies decode; the member cap refuses what does not fit.
    let config = Config {
        mtu: wire::MAX_DATAGRAM,
        ..small(64)
    };
    let mut c = Cluster::joined(2, config.clone());
    // One entry over the bound, all bytes present: malformed.
    let over = shoal_core::wire::bounded::BoundedVec(
        entries(0, MAX_SYNC_ENTRIES)
            .0
            .into_iter()
            .chain(entries(500, 1).0)
            .collect(),
    );
    let bytes = forge(&config, fake, reply(over), vec![]);
    assert_eq!(c.inject(0, outside(1), &bytes), Err(PacketError::Malformed));
    for round in 0..20 {
        let bytes = forge(
            &config,
            fake,
            reply(entries(round * 1000, MAX_SYNC_ENTRIES)),
            vec![],
        );
        let r = c.inject(0, outside(1), &bytes);
        assert_eq!(r, Err(PacketError::MembersFull), "round {round}");
        assert!(c.nodes[0].members().count() <= 64);
    }
    let small_reply = forge(&config, fake, reply(entries(50_000, 62)), vec![]);
    c.inject(0, outside(1), &small_reply).unwrap();
    assert_eq!(c.nodes[0].members().count(), 64);
    let again = forge(&config, fake, reply(entries(60_000, 1)), vec![]);
    assert_eq!(
        c.inject(0, outside(1), &again),
        Err(PacketError::MembersFull)
    );
    assert_eq!(
        c.nodes[0].stats().dropped_for(&PacketError::MembersFull),
        21
    );
}

fn wire_entry_len(info: &shoal_core::MemberInfo) -> usize {
    wire::encode_value(&shoal_core::membership::SyncEntry {
        info: info.clone(),
        state: MemberState::Alive,
        down_secs: 0,
    })
    .len()
}

/// RPC frames declaring huge lengths are refused as soon as the five header bytes are in,
/// without buffering or reserving anything; a declared length within the limit waits for its
/// bytes without reserving them either.
#[test]
fn rpc_frames_with_huge_declared_lengths_are_refused_before_allocating() {
    let limits = Limits::default();
    let dec = Decoder::new(limits);
    for (kind, limit) in [(0x01u8, limits.max_request), (0x02, limits.max_response)] {
        for len in [limit + 1, u32::MAX] {
            let mut buf = BytesMut::with_capacity(16);
            buf.extend_from_slice(&len.to_be_bytes());
            buf.extend_from_slice(&[kind]);
            let cap = buf.capacity();
            assert_eq!(
                dec.decode(&mut buf),
                Err(FrameError::TooLarge {
                    len: len as usize,
                    limit: limit as usize
                })
            );
            assert_eq!(buf.len(), 5);
            assert_eq!(
                buf.capacity(),
                cap,
                "decoder reserved room for a refused frame"
            );
        }
        let mut buf = BytesMut::with_capacity(16);
        buf.extend_from_slice(&limit.to_be_bytes());
        buf.extend_from_slice(&[kind, 0]);
        let cap = buf.capacity();
        assert_eq!(dec.decode(&mut buf), Ok(None));
        assert_eq!(buf.capacity(), cap, "decoder reserved the declared length");
    }
    // Only four bytes: nothing to decide yet, nothing reserved.
    let mut buf = BytesMut::from(&u32::MAX.to_be_bytes()[..]);
    assert_eq!(dec.decode(&mut buf), Ok(None));
}
