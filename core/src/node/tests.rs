//! Node behaviour, driven through the in-core test cluster.

use super::*;
use crate::testkit::{addr, handle_checked, node, outside, Cluster, TestNode, TestRng};
use crate::wire::bounded::BoundedVec;
use crate::wire::tests::{arb_message, arb_update};
use crate::wire::{self, Header};
use proptest::prelude::*;

fn cfg() -> Config {
    Config::local()
}

fn joined(c: &mut Cluster, n: usize) {
    for i in 1..n {
        c.nodes[i].join(c.now, &[addr(0)]).unwrap();
    }
    c.run_for(Duration::from_secs(5));
}

#[test]
fn join_through_one_seed_gives_everyone_the_full_view() {
    let mut c = Cluster::new(6, cfg());
    joined(&mut c, 6);
    for n in &c.nodes {
        assert_eq!(n.live_members(), 6, "node {:?}", n.id());
        assert!(!n.is_joining());
    }
    let ev = c.take_events();
    for i in 1..6 {
        assert!(ev
            .iter()
            .any(|(j, e)| *j == i && matches!(e, Event::Joined { via, .. } if *via == addr(0))));
        // Every node heard of every other node joining exactly once.
        let joins = ev
            .iter()
            .filter(|(j, e)| *j == i && matches!(e, Event::MemberJoined(_)))
            .count();
        assert_eq!(joins, 5);
    }
}

#[test]
fn join_retries_the_next_seed_with_backoff() {
    let mut c = Cluster::new(3, cfg());
    c.up[2] = false; // the first seed is down
    c.nodes[1].join(c.now, &[addr(2), addr(0)]).unwrap();
    c.run_for(Duration::from_millis(100));
    assert!(c.nodes[1].is_joining());
    c.run_for(Duration::from_secs(2));
    assert!(!c.nodes[1].is_joining());
    assert!(c
        .take_events()
        .iter()
        .any(|(i, e)| *i == 1 && matches!(e, Event::Joined { via, .. } if *via == addr(0))));
}

#[test]
fn join_without_seeds_is_a_typed_error() {
    let mut n = node(0, cfg());
    assert_eq!(n.join(Timestamp::ZERO, &[]), Err(CommandError::NoSeeds));
    // Its own address is not a seed.
    assert_eq!(
        n.join(Timestamp::ZERO, &[addr(0)]),
        Err(CommandError::NoSeeds)
    );
}

#[test]
fn tag_changes_travel_with_a_higher_incarnation() {
    let mut c = Cluster::new(4, cfg());
    joined(&mut c, 4);
    c.take_events();
    let before = c.nodes[2].me().incarnation;
    c.nodes[2].set_tag(c.now, "role", "worker").unwrap();
    c.run_for(Duration::from_secs(2));
    let id = c.nodes[2].id();
    for (i, n) in c.nodes.iter().enumerate() {
        let m = n.member(&id).unwrap();
        assert_eq!(m.info.tags.get("role"), Some("worker"), "node {i}");
        assert_eq!(m.info.incarnation, before + 1);
    }
    let updates = c
        .take_events()
        .into_iter()
        .filter(|(_, e)| matches!(e, Event::MemberUpdated(m) if m.info.id == id))
        .count();
    assert_eq!(updates, 3);
    c.nodes[2].remove_tag(c.now, "role").unwrap();
    c.run_for(Duration::from_secs(2));
    assert_eq!(c.nodes[0].member(&id).unwrap().info.tags.get("role"), None);
    assert!(matches!(
        c.nodes[2].set_tag(c.now, "bad key", "x"),
        Err(CommandError::Tag(_))
    ));
}

#[test]
fn leave_is_seen_as_left_and_the_node_stops() {
    let mut c = Cluster::new(5, cfg());
    joined(&mut c, 5);
    c.take_events();
    let id = c.nodes[3].id();
    c.nodes[3].leave(c.now).unwrap();
    c.run_for(Duration::from_secs(2));
    let ev = c.take_events();
    assert!(ev.iter().any(|(i, e)| *i == 3 && *e == Event::LeftCluster));
    for i in [0, 1, 2, 4] {
        assert_eq!(c.nodes[i].member(&id).unwrap().state, MemberState::Left);
        assert!(ev
            .iter()
            .any(|(j, e)| *j == i && matches!(e, Event::MemberLeft(m) if m.info.id == id)));
    }
    assert!(c.nodes[3].has_left());
    assert_eq!(c.nodes[3].poll_timeout(), None);
    assert_eq!(
        c.nodes[3].handle_packet(c.now, addr(0), &[1, 2, 3]),
        Err(PacketError::NotRunning)
    );
    assert_eq!(c.nodes[3].set_tag(c.now, "a", "b"), Err(CommandError::Left));
}

fn packet_from(
    from: &Node<impl rand_core::RngCore>,
    to: Option<NodeId>,
    message: Message,
    updates: Vec<Update>,
) -> Vec<u8> {
    let p = wire::Packet {
        header: Header {
            cluster: from.config().cluster_hash(),
            from: from.id(),
            to: to.map(Into::into),
        },
        message,
        updates,
    };
    wire::encode(&p).unwrap()
}

#[test]
fn a_node_refutes_suspicion_of_itself_and_never_raises_anyone_elses_incarnation() {
    let mut c = Cluster::new(3, cfg());
    joined(&mut c, 3);
    c.take_events();
    let victim = c.nodes[1].id();
    let inc = c.nodes[1].me().incarnation;
    let other = c.nodes[2].id();
    let other_inc = c.nodes[0].member(&other).unwrap().info.incarnation;
    // Node 0 hears that node 1 is suspect and that node 2 is suspect.
    let bytes = packet_from(
        &c.nodes[2],
        None,
        Message::Gossip,
        vec![
            Update::Suspect {
                id: victim,
                incarnation: inc,
                by: c.nodes[2].id(),
            },
            Update::Suspect {
                id: other,
                incarnation: other_inc,
                by: c.nodes[2].id(),
            },
        ],
    );
    c.nodes[0].handle_packet(c.now, addr(2), &bytes).unwrap();
    // Node 0 records suspicion but never bumps the subjects' incarnations itself.
    assert_eq!(
        c.nodes[0].member(&victim).unwrap().state,
        MemberState::Suspect
    );
    assert_eq!(c.nodes[0].member(&victim).unwrap().info.incarnation, inc);
    c.run_for(Duration::from_secs(2));
    // Node 1 heard of it and refuted with a higher incarnation; everyone sees it alive again.
    assert!(c.nodes[1].me().incarnation > inc);
    let ev = c.take_events();
    assert!(ev
        .iter()
        .any(|(i, e)| *i == 1 && matches!(e, Event::Refuted { .. })));
    assert!(ev
        .iter()
        .any(|(i, e)| *i == 0 && matches!(e, Event::MemberRecovered(m) if m.info.id == victim)));
    for n in &c.nodes {
        assert_eq!(n.member(&victim).unwrap().state, MemberState::Alive);
    }
}

#[test]
fn a_restarted_node_rejoins_above_its_previous_incarnation() {
    let mut c = Cluster::new(4, cfg());
    joined(&mut c, 4);
    for k in 0..3 {
        c.nodes[2].set_tag(c.now, "k", &k.to_string()).unwrap();
    }
    c.run_for(Duration::from_secs(2));
    let old = c.nodes[0]
        .member(&c.nodes[2].id())
        .unwrap()
        .info
        .incarnation;
    assert!(old >= 3);
    // Restart: same identity, no memory, incarnation 0.
    c.nodes[2] = node(2, cfg());
    c.nodes[2].join(c.now, &[addr(0)]).unwrap();
    c.run_for(Duration::from_secs(3));
    let id = c.nodes[2].id();
    assert!(c.nodes[2].me().incarnation > old);
    for n in &c.nodes {
        assert_eq!(
            n.member(&id).unwrap().info.incarnation,
            c.nodes[2].me().incarnation
        );
        assert_eq!(n.member(&id).unwrap().info.tags.get("k"), None);
    }
}

#[test]
fn foreign_and_misaddressed_packets_are_dropped_and_counted() {
    let mut c = Cluster::new(2, cfg());
    joined(&mut c, 2);
    let other = node(1, cfg().with_cluster_name("other"));
    let bytes = packet_from(&other, None, Message::Gossip, vec![]);
    assert_eq!(
        c.nodes[0].handle_packet(c.now, addr(1), &bytes),
        Err(PacketError::WrongCluster)
    );
    let bytes = packet_from(&c.nodes[1], Some(NodeId([9; 16])), Message::Gossip, vec![]);
    assert_eq!(
        c.nodes[0].handle_packet(c.now, addr(1), &bytes),
        Err(PacketError::WrongRecipient)
    );
    let bytes = packet_from(&c.nodes[0], None, Message::Gossip, vec![]);
    assert_eq!(
        c.nodes[0].handle_packet(c.now, addr(1), &bytes),
        Err(PacketError::FromSelf)
    );
    let s = c.nodes[0].stats();
    assert_eq!(s.dropped_for(&PacketError::WrongCluster), 1);
    assert_eq!(s.dropped_for(&PacketError::WrongRecipient), 1);
    assert_eq!(s.dropped_for(&PacketError::FromSelf), 1);
}

#[test]
fn the_member_table_cap_holds() {
    let config = Config {
        max_members: 3,
        ..cfg()
    };
    let mut c = Cluster::new(5, config);
    joined(&mut c, 5);
    assert_eq!(c.nodes[0].members().count(), 3);
    assert!(c.nodes[0].stats().dropped_for(&PacketError::MembersFull) > 0);
}

#[test]
fn a_stale_now_never_moves_time_back() {
    let mut n = node(0, cfg());
    n.handle_timeout(Timestamp::from_millis(1000));
    n.handle_timeout(Timestamp::from_millis(500));
    assert_eq!(n.now(), Timestamp::from_millis(1000));
    assert_eq!(n.stats().stale_now, 1);
}

#[test]
fn early_timeouts_are_harmless() {
    let mut n = node(0, cfg());
    let deadline = n.poll_timeout().unwrap();
    n.handle_timeout(Timestamp::from_micros(1));
    assert_eq!(n.poll_timeout(), Some(deadline));
    assert!(n.poll_transmit().is_none());
}

/// Mangled packets: a rejected one changes nothing but the drop counter. The runner is
/// explicit so the test can also show that the generator produces rejections at all (a
/// generator whose packets all decode would make the property vacuous).
#[test]
fn a_packet_that_fails_to_decode_leaves_the_state_unchanged() {
    use proptest::test_runner::{Config as PtConfig, TestRunner};
    use std::cell::Cell;
    const CASES: u32 = 128;
    let strategy = (
        arb_message(),
        proptest::collection::vec(arb_update(), 0..6),
        proptest::collection::vec((any::<usize>(), any::<u8>()), 0..4),
        0usize..8,
        proptest::collection::vec(any::<u8>(), 0..64),
    );
    let rejected = Cell::new(0u32);
    let accepted = Cell::new(0u32);
    let mut runner = TestRunner::new(PtConfig {
        cases: CASES,
        failure_persistence: None,
        ..PtConfig::default()
    });
    runner
        .run(&strategy, |(message, updates, flips, cut, garbage)| {
            let mut c = Cluster::new(3, cfg());
            joined(&mut c, 3);
            c.take_events();
            let mut bytes = packet_from(&c.nodes[1], None, message, updates);
            for (at, x) in flips {
                let len = bytes.len();
                bytes[at % len] ^= x;
            }
            bytes.truncate(bytes.len().saturating_sub(cut));
            bytes.extend_from_slice(&garbage);
            // The rejection contract is checked inside (it panics on a violation).
            let result = handle_checked(&mut c.nodes[0], c.now, addr(1), &bytes);
            if result.is_err() {
                rejected.set(rejected.get() + 1);
            } else {
                accepted.set(accepted.get() + 1);
            }
            Ok(())
        })
        .unwrap();
    // Both branches are exercised: most mangled packets are refused, some still decode.
    let (rejected, accepted) = (rejected.get(), accepted.get());
    assert!(
        rejected >= CASES / 4,
        "only {rejected} of {CASES} packets were rejected ({accepted} accepted)"
    );
}

// ---- failure detection -------------------------------------------------------------------

fn decode_all(n: &mut TestNode) -> Vec<(SocketAddr, wire::Packet)> {
    std::iter::from_fn(|| n.poll_transmit())
        .map(|t| (t.dst, wire::decode(&t.payload, 65_507).unwrap()))
        .collect()
}

#[test]
fn a_crashed_member_is_suspected_then_declared_failed_by_everyone() {
    let mut c = Cluster::new(6, cfg());
    joined(&mut c, 6);
    c.take_events();
    let victim = c.nodes[4].id();
    c.up[4] = false;
    c.run_for(Duration::from_secs(6));
    let ev = c.take_events();
    for i in [0, 1, 2, 3, 5] {
        assert_eq!(
            c.nodes[i].member(&victim).unwrap().state,
            MemberState::Failed,
            "node {i}"
        );
        assert!(ev
            .iter()
            .any(|(j, e)| *j == i && matches!(e, Event::MemberFailed(m) if m.info.id == victim)));
        // Nobody else was accused.
        assert!(!ev
            .iter()
            .any(|(_, e)| matches!(e, Event::MemberFailed(m) if m.info.id != victim)));
    }
    assert!(ev
        .iter()
        .any(|(_, e)| matches!(e, Event::MemberSuspected(m) if m.info.id == victim)));
}

#[test]
fn live_members_are_never_declared_failed_and_phi_is_readable() {
    let mut c = Cluster::new(5, cfg());
    joined(&mut c, 5);
    c.run_for(Duration::from_secs(30));
    let ev = c.take_events();
    assert!(!ev
        .iter()
        .any(|(_, e)| matches!(e, Event::MemberFailed(_) | Event::MemberSuspected(_))));
    // Everyone watches everyone in a cluster this small (observers = 3, n = 5 → 3 each).
    for n in &c.nodes {
        let watched: Vec<f64> = c.nodes.iter().filter_map(|m| n.phi(&m.id())).collect();
        assert_eq!(watched.len(), 3, "node {:?}", n.id());
        assert!(
            watched.iter().all(|p| p.is_finite() && *p < 8.0),
            "{watched:?}"
        );
    }
}

#[test]
fn a_relay_probes_the_target_and_reports_back() {
    let mut c = Cluster::new(3, cfg());
    joined(&mut c, 3);
    c.inflight.clear();
    for i in 0..3 {
        let _ = decode_all(&mut c.nodes[i]);
    }
    let target = c.nodes[2].id();
    let req = packet_from(
        &c.nodes[0],
        Some(c.nodes[1].id()),
        Message::PingReq { seq: 77, target },
        vec![],
    );
    c.nodes[1].handle_packet(c.now, addr(0), &req).unwrap();
    let out = decode_all(&mut c.nodes[1]);
    let (dst, ping) = out
        .iter()
        .find(|(_, p)| matches!(p.message, Message::Ping { .. }))
        .unwrap();
    assert_eq!(*dst, addr(2));
    let bytes = wire::encode(ping).unwrap();
    c.nodes[2].handle_packet(c.now, addr(1), &bytes).unwrap();
    let (_, ack) = decode_all(&mut c.nodes[2])
        .into_iter()
        .find(|(_, p)| matches!(p.message, Message::Ack { .. }))
        .unwrap();
    c.nodes[1]
        .handle_packet(c.now, addr(2), &wire::encode(&ack).unwrap())
        .unwrap();
    let out = decode_all(&mut c.nodes[1]);
    assert!(out.iter().any(|(dst, p)| *dst == addr(0)
        && p.message
            == Message::IndirectAck {
                seq: 77,
                target,
                ok: true
            }));
}

#[test]
fn a_ping_req_for_an_unknown_target_is_nacked_not_relayed() {
    let mut c = Cluster::new(2, cfg());
    joined(&mut c, 2);
    let _ = decode_all(&mut c.nodes[1]);
    let stranger = NodeId([0xee; 16]);
    let req = packet_from(
        &c.nodes[0],
        None,
        Message::PingReq {
            seq: 5,
            target: stranger,
        },
        vec![],
    );
    c.nodes[1].handle_packet(c.now, addr(0), &req).unwrap();
    let out = decode_all(&mut c.nodes[1]);
    assert!(out.iter().all(|(dst, _)| *dst == addr(0)));
    assert!(out.iter().any(|(_, p)| p.message
        == Message::IndirectAck {
            seq: 5,
            target: stranger,
            ok: false
        }));
}

#[test]
fn an_ack_from_the_wrong_member_or_with_a_stale_number_is_ignored() {
    let mut c = Cluster::new(3, cfg());
    joined(&mut c, 3);
    let before = c.nodes[0].stats().stale_acks;
    let bogus = packet_from(&c.nodes[1], None, Message::Ack { seq: 123_456 }, vec![]);
    c.nodes[0].handle_packet(c.now, addr(1), &bogus).unwrap();
    assert_eq!(c.nodes[0].stats().stale_acks, before + 1);
}

#[test]
fn keyed_nodes_join_and_refuse_plaintext_and_wrong_key_datagrams() {
    use crate::envelope::{Key, Keyring};
    let mut c = Cluster::new(3, cfg());
    let good = Keyring::new(Key::new([7; 32]));
    c.nodes[0].set_keyring(Some(good.clone()));
    c.nodes[1].set_keyring(Some(good));
    c.nodes[2].set_keyring(Some(Keyring::new(Key::new([8; 32]))));
    joined(&mut c, 3);
    assert_eq!(
        c.nodes[0].live_members(),
        2,
        "only the node with the right key got in"
    );
    assert!(c.nodes[2].is_joining());
    assert!(
        c.nodes[0]
            .stats()
            .dropped_for(&PacketError::Unauthenticated)
            > 0
    );
    // Plaintext is refused by a keyed node, before decoding, and changes nothing.
    let plain = packet_from(&node(5, cfg()), None, Message::Join, vec![]);
    let now = c.now;
    assert!(handle_checked(&mut c.nodes[0], now, addr(5), &plain).is_err());
    // Every datagram a keyed node sends is sealed within the MTU.
    c.nodes[0].set_tag(c.now, "k", "v").unwrap();
    c.run_for(Duration::from_secs(1));
    let t = c.nodes[1].poll_timeout().unwrap();
    c.nodes[1].handle_timeout(t);
    while let Some(x) = c.nodes[1].poll_transmit() {
        assert!(x.payload.len() <= cfg().mtu);
        assert_eq!(x.payload[0], crate::envelope::ENVELOPE_VERSION);
    }
}

#[test]
fn without_the_key_nobody_can_suspect_fail_or_remove_a_member() {
    use crate::envelope::{Key, Keyring};
    let mut c = Cluster::new(3, cfg());
    let ring = Keyring::new(Key::new([9; 32]));
    for n in &mut c.nodes {
        n.set_keyring(Some(ring.clone()));
    }
    joined(&mut c, 3);
    c.take_events();
    let victim = c.nodes[2].id();
    let inc = c.nodes[0].member(&victim).unwrap().info.incarnation;
    // An outsider sealing with its own key, and one sending plaintext, claiming to be node 1.
    let mut outsider = node(1, cfg());
    outsider.set_keyring(Some(Keyring::new(Key::new([66; 32]))));
    let forged = [
        Update::Suspect {
            id: victim,
            incarnation: inc,
            by: c.nodes[1].id(),
        },
        Update::Failed {
            id: victim,
            incarnation: inc,
            by: c.nodes[1].id(),
        },
        Update::Left {
            id: victim,
            incarnation: inc + 5,
        },
    ];
    for u in forged {
        let plain = packet_from(&c.nodes[1], None, Message::Gossip, vec![u.clone()]);
        let mut rng = <rand_chacha::ChaCha8Rng as rand_core::SeedableRng>::seed_from_u64(3);
        let sealed_wrong = outsider.keyring().unwrap().seal(&mut rng, &plain).unwrap();
        for bytes in [plain, sealed_wrong] {
            let now = c.now;
            assert!(handle_checked(&mut c.nodes[0], now, addr(1), &bytes).is_err());
        }
    }
    c.run_for(Duration::from_secs(3));
    for n in &c.nodes {
        let m = n.member(&victim).unwrap();
        assert_eq!((m.state, m.info.incarnation), (MemberState::Alive, inc));
    }
    assert!(!c.take_events().iter().any(|(_, e)| matches!(
        e,
        Event::MemberSuspected(_) | Event::MemberFailed(_) | Event::MemberLeft(_)
    )));
}

#[test]
fn groups_that_formed_apart_merge_through_a_remembered_seed() {
    let mut c = Cluster::new(4, cfg());
    // Group A = {0, 1}: node 1 was given both seeds; node 0 answered first.
    c.nodes[1].join(c.now, &[addr(0), addr(2)]).unwrap();
    // Group B = {2, 3}, formed on its own.
    c.nodes[3].join(c.now, &[addr(2)]).unwrap();
    c.up[2] = false;
    c.up[3] = false;
    c.run_for(Duration::from_secs(2));
    assert_eq!(c.nodes[1].live_members(), 2);
    c.up[2] = true;
    c.up[3] = true;
    c.nodes[3].join(c.now, &[addr(2)]).unwrap();
    c.run_for(Duration::from_secs(20));
    for (i, n) in c.nodes.iter().enumerate() {
        assert_eq!(
            n.live_members(),
            4,
            "node {i} still sees only its own group"
        );
    }
}

#[test]
fn two_live_processes_with_one_name_are_reported_not_merged() {
    let mut c = Cluster::new(3, cfg());
    // Node 2 is a second process named like node 1, at another address.
    c.nodes[2] = Node::new(
        cfg(),
        Identity::new("n1", addr(2)),
        TestRng(77),
        Timestamp::ZERO,
    )
    .unwrap();
    c.nodes[1].join(c.now, &[addr(0)]).unwrap();
    c.run_for(Duration::from_secs(2));
    c.nodes[2].join(c.now, &[addr(0)]).unwrap();
    c.run_for(Duration::from_secs(30));
    let ev = c.take_events();
    let conflict = |i: usize, other: SocketAddr| {
        ev.iter()
            .any(|(j, e)| *j == i && *e == Event::IdentityConflict { other })
    };
    assert!(
        conflict(1, addr(2)) || conflict(2, addr(1)),
        "no conflict reported"
    );
    // A plain restart on a new address is not a conflict.
    let mut c = Cluster::new(3, cfg());
    joined(&mut c, 2);
    c.up[1] = false;
    c.nodes[2] = Node::new(cfg(), Identity::new("n1", addr(2)), TestRng(78), c.now).unwrap();
    c.nodes[2].join(c.now, &[addr(0)]).unwrap();
    c.run_for(Duration::from_secs(30));
    assert!(!c
        .take_events()
        .iter()
        .any(|(_, e)| matches!(e, Event::IdentityConflict { .. })));
}

/// Two nodes whose views share `shared` fake members, each with `own` more the other lacks.
fn overlapping_views(shared: usize, own: usize) -> Cluster {
    let config = Config {
        max_members: 20_000,
        ..cfg()
    };
    let mut c = Cluster::joined(2, config);
    let from = NodeId::from_name("feeder");
    let feed = |c: &mut Cluster, i: usize, ks: &mut dyn Iterator<Item = usize>| {
        let all: Vec<SyncEntry> = ks
            .map(|k| SyncEntry {
                info: crate::testkit::fake_info(k),
                state: MemberState::Alive,
                down_secs: 0,
            })
            .collect();
        for chunk in all.chunks(32) {
            let entries = BoundedVec::try_from_vec(chunk.to_vec()).unwrap();
            let bytes = crate::testkit::forge(
                c.nodes[i].config(),
                from,
                Message::SyncPush { entries },
                vec![],
            );
            let now = c.now;
            c.nodes[i].handle_packet(now, outside(0), &bytes).unwrap();
        }
    };
    feed(&mut c, 0, &mut (0..shared + own));
    feed(
        &mut c,
        1,
        &mut (0..shared).chain(shared + own..shared + 2 * own),
    );
    // Nothing was sent yet: the forged pushes only taught the two nodes members.
    for i in 0..2 {
        while c.nodes[i].poll_transmit().is_some() {}
        assert_eq!(c.nodes[i].live_members(), 2 + shared + own);
    }
    c
}

/// Node 0 starts a sync exchange with node 1 (as its sync round would).
fn start_sync(c: &mut Cluster) {
    let peer = c.nodes[1].id();
    let n = &mut c.nodes[0];
    let seq = n.sync.start_sync(peer);
    let digest = antientropy::digest_of(&n.table);
    n.send_to_member(peer, Message::Sync { seq, digest }, None);
}

/// Delivers datagrams between nodes 0 and 1 until none is left, each burst in reverse order
/// when `reverse` (the reply's last part then arrives before its summaries); returns every
/// datagram delivered, decoded.
fn pump(c: &mut Cluster, reverse: bool) -> Vec<wire::Packet> {
    let mut seen = Vec::new();
    loop {
        let mut burst = Vec::new();
        for i in 0..2 {
            while let Some(t) = c.nodes[i].poll_transmit() {
                if let Some(j) = (0..2).find(|&j| addr(j) == t.dst) {
                    burst.push((j, addr(i), t.payload));
                }
            }
        }
        if burst.is_empty() {
            return seen;
        }
        if reverse {
            burst.reverse();
        }
        for (j, from, bytes) in burst {
            seen.push(wire::decode(&bytes, wire::MAX_DATAGRAM).unwrap());
            let now = c.now;
            c.nodes[j].handle_packet(now, from, &bytes).unwrap();
        }
    }
}

fn entries_sent(packets: &[wire::Packet]) -> usize {
    packets
        .iter()
        .map(|p| match &p.message {
            Message::SyncReply { entries, .. } | Message::SyncPush { entries } => entries.len(),
            _ => 0,
        })
        .sum()
}

/// One sync exchange from node 0 to node 1 over views sharing `shared` members, with `own`
/// more on each side; asserts that both end with the union, entry for entry, and that only
/// the entries one side lacked travelled (whole buckets would be every member each holds).
/// Returns every datagram delivered.
fn exchange(shared: usize, own: usize, reverse: bool) -> Vec<wire::Packet> {
    let mut c = overlapping_views(shared, own);
    start_sync(&mut c);
    let packets = pump(&mut c, reverse);
    for n in &c.nodes {
        assert_eq!(n.live_members(), 2 + shared + 2 * own, "reverse {reverse}");
    }
    assert_eq!(c.nodes[0].view_digest(), c.nodes[1].view_digest());
    let sent = entries_sent(&packets);
    assert_eq!(sent, 2 * own, "reverse {reverse}: {sent} entries sent");
    packets
}

#[test]
fn large_buckets_sync_by_summary_and_send_only_what_the_other_lacks() {
    for reverse in [false, true] {
        // Every bucket holds well over SUMMARY_MIN members (2,000 spread over 64).
        let packets = exchange(2000, 40, reverse);
        let summaries = packets
            .iter()
            .filter(|p| matches!(p.message, Message::SyncSummary { .. }))
            .count();
        assert!(summaries >= DIGEST_BUCKETS / 2, "{summaries} summaries");
    }
}

#[test]
fn a_summary_nobody_asked_for_is_ignored_and_a_want_needs_a_validated_address() {
    let mut c = overlapping_views(600, 0);
    let hashes = wire::write_hashes(&[1, 2, 3]);
    let summary = Message::SyncSummary {
        seq: 12345,
        bucket: 0,
        split: 0,
        part: 0,
        hashes,
    };
    let bytes = packet_from(&c.nodes[1], Some(c.nodes[0].id()), summary, vec![]);
    let now = c.now;
    c.nodes[0].handle_packet(now, addr(1), &bytes).unwrap();
    assert!(
        c.nodes[0].poll_transmit().is_none(),
        "no want and no push for an exchange node 0 never started"
    );
    // A want from an address never validated gets a challenge, not entries.
    let me = c.nodes[0].me().clone();
    let bucket = crate::membership::bucket_of(&me.id) as u8;
    let mine = c.nodes[0].table.summary_of(usize::from(bucket), 0, 0);
    let want = Message::SyncWant {
        bucket,
        hashes: wire::write_hashes(&mine),
    };
    let bytes = packet_from(&c.nodes[1], Some(me.id), want, vec![]);
    c.nodes[0].handle_packet(now, outside(7), &bytes).unwrap();
    let out: Vec<_> = std::iter::from_fn(|| c.nodes[0].poll_transmit()).collect();
    assert_eq!(out.len(), 1);
    let p = wire::decode(&out[0].payload, wire::MAX_DATAGRAM).unwrap();
    assert!(
        matches!(p.message, Message::Challenge { .. }),
        "{:?}",
        p.message
    );
    // From the member's own (validated) address the same want is answered with entries.
    c.nodes[0].handle_packet(now, addr(1), &bytes).unwrap();
    let out: Vec<_> = std::iter::from_fn(|| c.nodes[0].poll_transmit()).collect();
    let got: usize = out
        .iter()
        .map(|t| {
            match wire::decode(&t.payload, wire::MAX_DATAGRAM)
                .unwrap()
                .message
            {
                Message::SyncPush { entries } => entries.len(),
                _ => 0,
            }
        })
        .sum();
    assert_eq!(got, mine.len());
}

#[test]
fn buckets_too_big_for_one_datagram_sync_through_split_summaries() {
    // 10,540 members: about 165 a bucket, more than one summary holds (160).
    let packets = exchange(10_500, 20, true);
    let split = packets
        .iter()
        .filter(|p| matches!(p.message, Message::SyncSummary { split, .. } if split > 0))
        .count();
    assert!(split > 0, "no bucket needed splitting");
}

/// Watching runs both ways (`observers::split`): with 3 observers each member pings its 2
/// nearest predecessors and never its nearest successor, whose heartbeat pings keep that
/// successor's phi low here; so every member has 3 watchers for 2 pings a round.
#[test]
fn a_member_pings_two_predecessors_and_hears_its_successor_without_pinging_it() {
    let n = 10;
    let mut c = Cluster::new(n, cfg());
    joined(&mut c, n);
    c.run_for(Duration::from_secs(10));
    let ids = c.ids();
    let (pinged, listened) = crate::observers::split(cfg().observers);
    assert_eq!((pinged, listened), (2, 1));
    c.tap = Some(Vec::new());
    let window = Duration::from_secs(20);
    c.run_for(window);
    let delivered = c.tap.take().unwrap_or_default();
    let rounds = (window.as_millis() / cfg().heartbeat_interval.as_millis()) as usize;
    for (i, me) in ids.iter().enumerate() {
        let (subjects, heard) =
            crate::observers::neighbours_of(me, ids.iter().copied(), pinged, listened);
        let pings_to = |to: &NodeId| {
            delivered
                .iter()
                .filter_map(|b| wire::decode(b, 65_507).ok())
                .filter(|p| p.header.from == *me)
                .filter(|p| p.header.to == Some(wire::Recipient::of(to)))
                .filter(|p| matches!(p.message, Message::Ping { .. }))
                .count()
        };
        for s in &subjects {
            assert!(
                pings_to(s) >= rounds - 1,
                "node {i} pings each subject every round"
            );
        }
        for h in &heard {
            assert_eq!(
                pings_to(h),
                0,
                "node {i} never pings the successor it hears"
            );
            let phi = c.nodes[i].phi(h).expect("the heard successor is watched");
            assert!(
                phi < 8.0,
                "node {i}: phi {phi} of a successor that pings it"
            );
        }
    }
    assert!(!c
        .take_events()
        .iter()
        .any(|(_, e)| matches!(e, Event::MemberSuspected(_) | Event::MemberFailed(_))));
    // Only from the member's own address: a ping bearing its id from elsewhere is not its
    // heartbeat (phi goes on rising); the same ping from its address is (phi drops to ~0).
    let (_, heard) = crate::observers::neighbours_of(&ids[0], ids.iter().copied(), 2, 1);
    let h = ids.iter().position(|id| *id == heard[0]).expect("a member");
    let later = c.now + Duration::from_millis(350);
    let ping = packet_from(&c.nodes[h], Some(ids[0]), Message::Ping { seq: 9 }, vec![]);
    c.nodes[0].handle_packet(later, outside(9), &ping).unwrap();
    let forged = c.nodes[0].phi(&ids[h]).expect("watched");
    c.nodes[0].handle_packet(later, addr(h), &ping).unwrap();
    let genuine = c.nodes[0].phi(&ids[h]).expect("watched");
    assert!(genuine < forged, "genuine {genuine} forged {forged}");
}

/// Moves every periodic round but gossip's to `until`, so only gossip rounds run before it.
fn postpone_rounds_but_gossip(n: &mut TestNode, until: Timestamp) {
    for t in [
        Timer::Heartbeat,
        Timer::Probe,
        Timer::Sync,
        Timer::Reconnect,
    ] {
        n.timers.set(t, until);
    }
}

/// A settled node is not woken for gossip rounds that would find nothing to send, and the
/// rounds it slept through keep their phase: the next one falls where an always-armed timer
/// would have put it.
#[test]
fn an_idle_node_sleeps_through_gossip_rounds_and_keeps_their_phase() {
    let mut c = Cluster::new(3, cfg());
    joined(&mut c, 3);
    let n = &mut c.nodes[0];
    assert!(n.gossip.is_idle(), "a settled node has nothing queued");
    let every = n.config.gossip_interval;
    let due = c.now + every / 3;
    n.timers.set(Timer::Gossip, due);
    postpone_rounds_but_gossip(n, due + every * 10);
    assert!(
        n.poll_timeout().is_some_and(|t| t > due),
        "the idle round is left out of the next deadline"
    );
    // An input two and a half rounds late: the dormant deadline moves to the next round.
    n.handle_timeout(due + every * 2 + every / 2);
    assert_eq!(n.timers.get(Timer::Gossip), Some(due + every * 3));
    // An input exactly on a round: that round has not run yet, and now it has work.
    let on_round = due + every * 3;
    n.set_tag(on_round, "k", "v").unwrap();
    assert!(!n.gossip.is_idle());
    assert_eq!(n.timers.get(Timer::Gossip), Some(on_round));
    assert_eq!(
        n.poll_timeout(),
        Some(on_round),
        "a round with work wakes the node"
    );
    // It runs there, sends the news, and re-arms one interval on, as before.
    while n.poll_transmit().is_some() {}
    n.handle_timeout(on_round);
    assert!(
        n.poll_transmit().is_some(),
        "the round gossiped the new tag"
    );
    assert_eq!(n.timers.get(Timer::Gossip), Some(on_round + every));
}
