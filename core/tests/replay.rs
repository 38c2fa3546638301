//! Replay and reflection (issue 17): with the cluster key, a captured sealed datagram resent
//! from a spoofed address is dropped as `Replayed` before it changes anything or causes a
//! reply; with or without the key, replies to an address that has not proven it receives
//! total at most 3x the bytes received from it, and a join is answered with a challenge.

use core::net::SocketAddr;
use core::time::Duration;
use shoal_core::testkit::{addr, forge, handle_checked, node, outside, Cluster, TestRng};
use shoal_core::wire::{self, bounded::BoundedVec, Message, DIGEST_BYTES};
use shoal_core::{Config, Identity, Key, Keyring, Node, NodeId, PacketError, Timestamp};
use std::collections::BTreeMap;

fn ring() -> Keyring {
    Keyring::new(Key::new([7; 32]))
}

/// `n` keyed nodes joined through node 0 and settled.
fn keyed(n: usize) -> Cluster {
    let mut c = Cluster::new(n, Config::local());
    for node in &mut c.nodes {
        node.set_keyring(Some(ring()));
    }
    for i in 1..n {
        let now = c.now;
        c.nodes[i].join(now, &[addr(0)]).unwrap();
        c.run_for(Duration::from_millis(500));
    }
    c.run_for(Duration::from_secs(3));
    for (i, node) in c.nodes.iter().enumerate() {
        assert_eq!(node.live_members(), n, "node {i} did not see the cluster");
    }
    c
}

type Captured = (usize, SocketAddr, Vec<u8>);

/// Runs the cluster for `d` like `Cluster::run_for`, recording every datagram delivered as
/// (recipient, source, bytes).
fn run_capturing(c: &mut Cluster, d: Duration, log: &mut Vec<Captured>) {
    let end = c.now + d;
    loop {
        for i in 0..c.nodes.len() {
            c.drain(i);
        }
        while let Some((to, from, bytes)) = c.inflight.pop_front() {
            log.push((to, from, bytes.clone()));
            if c.up[to] {
                let now = c.now;
                let _ = c.nodes[to].handle_packet(now, from, &bytes);
                c.drain(to);
            }
        }
        let next = (0..c.nodes.len())
            .filter(|&i| c.up[i])
            .filter_map(|i| c.nodes[i].poll_timeout())
            .min();
        match next {
            Some(t) if t <= end => {
                c.now = c.now.max(t);
                for i in 0..c.nodes.len() {
                    if c.up[i] && c.nodes[i].poll_timeout().is_some_and(|t| t <= c.now) {
                        let now = c.now;
                        c.nodes[i].handle_timeout(now);
                    }
                }
            }
            _ => break,
        }
    }
    c.now = c.now.max(end);
}

fn kind_of(sealed: &[u8]) -> &'static str {
    let plain = ring().open(sealed).expect("captured datagram opens");
    wire::decode(&plain, wire::MAX_DATAGRAM)
        .expect("captured datagram decodes")
        .message
        .kind()
}

#[test]
fn every_replayed_message_kind_is_dropped_unanswered_and_counted() {
    let mut c = keyed(4);
    // A fifth member joins during the capture (join, challenge, join-echo, join reply,
    // push-back),
    // and a member goes silent for a while (ping-req, indirect ack).
    c.nodes.push(node(4, Config::local()));
    c.up.push(true);
    c.nodes[4].set_keyring(Some(ring()));
    let now = c.now;
    c.nodes[4].join(now, &[addr(0)]).unwrap();
    let mut log = Vec::new();
    run_capturing(&mut c, Duration::from_secs(3), &mut log);
    c.up[3] = false;
    run_capturing(&mut c, Duration::from_secs(2), &mut log);
    c.up[3] = true;
    run_capturing(&mut c, Duration::from_secs(3), &mut log);
    let mut first: BTreeMap<&str, Captured> = BTreeMap::new();
    for cap in &log {
        // Only datagrams the recipient accepted can be replayed meaningfully.
        first.entry(kind_of(&cap.2)).or_insert_with(|| cap.clone());
    }
    let kinds: Vec<&str> = first.keys().copied().collect();
    for k in [
        "gossip",
        "ping",
        "ack",
        "ping-req",
        "join",
        "sync",
        "sync-reply",
        "challenge",
        "join-echo",
    ] {
        assert!(kinds.contains(&k), "no {k} captured (got {kinds:?})");
    }
    let spoofed = outside(77);
    for (kind, (to, _from, bytes)) in first {
        let now = c.now;
        let before = c.nodes[to].stats();
        // handle_checked asserts: view, own info and members unchanged, exactly this drop
        // counted, nothing sent (so 0 bytes out for the bytes in), no event.
        let r = handle_checked(&mut c.nodes[to], now, spoofed, &bytes);
        assert_eq!(r, Err(PacketError::Replayed), "{kind} replay");
        let after = c.nodes[to].stats();
        assert_eq!(
            after.dropped_for(&PacketError::Replayed),
            before.dropped_for(&PacketError::Replayed) + 1
        );
        assert_eq!(
            after.bytes_out, before.bytes_out,
            "{kind}: a reply went out"
        );
    }
    // The cluster is unharmed.
    c.run_for(Duration::from_secs(5));
    for n in &c.nodes {
        assert_eq!(n.live_members(), 5);
    }
}

#[test]
fn a_restarted_keyed_member_is_heard_at_once_and_its_old_life_never_again() {
    let mut c = keyed(3);
    // Capture something node 2 sent in its first life.
    let mut log = Vec::new();
    run_capturing(&mut c, Duration::from_secs(2), &mut log);
    let (to, _, old) = log
        .iter()
        .find(|(to, from, _)| *from == addr(2) && *to == 0)
        .cloned()
        .expect("node 2 talked to node 0");
    // Restart: same identity and incarnation 0 again, new process (new RNG, so a new boot).
    let mut fresh = Node::new(
        Config::local(),
        Identity::new("n2", addr(2)),
        TestRng(0xBEEF),
        Timestamp::ZERO,
    )
    .unwrap();
    fresh.set_keyring(Some(ring()));
    c.nodes[2] = fresh;
    let now = c.now;
    c.nodes[2].join(now, &[addr(0)]).unwrap();
    let replays_before = c.nodes[0].stats().dropped_for(&PacketError::Replayed);
    c.run_for(Duration::from_secs(3));
    assert!(!c.nodes[2].is_joining(), "the restarted member got in");
    assert_eq!(c.nodes[2].live_members(), 3);
    assert_eq!(
        c.nodes[0].stats().dropped_for(&PacketError::Replayed),
        replays_before,
        "nothing of the new life was refused"
    );
    // A datagram of its previous life is refused.
    let now = c.now;
    let r = handle_checked(&mut c.nodes[to], now, addr(2), &old);
    assert_eq!(r, Err(PacketError::Replayed));
}

/// Bytes sent to `dst` while `c` handles one datagram from it, and how many were received.
fn reflect(c: &mut Cluster, to: usize, dst: SocketAddr, bytes: &[u8]) -> (usize, usize) {
    c.sent_outside.clear();
    let _ = c.inject(to, dst, bytes);
    let out = c
        .sent_outside
        .iter()
        .filter(|(d, _)| *d == dst)
        .map(|(_, b)| b.len())
        .sum();
    (out, bytes.len())
}

#[test]
fn a_spoofed_source_gets_at_most_three_times_what_it_sent_without_a_key() {
    let config = Config::local();
    let mut c = Cluster::joined(40, config.clone());
    let stranger = NodeId::from_name("stranger");
    let digest = BoundedVec::try_from_vec(vec![0u8; DIGEST_BYTES]).unwrap();
    let messages = [
        ("join", Message::Join),
        ("ping", Message::Ping { seq: 9 }),
        ("sync", Message::Sync { seq: 3, digest }),
        ("challenge", Message::Challenge { token: 1 }),
    ];
    let mut worst = 0.0f64;
    for (i, (kind, m)) in messages.into_iter().enumerate() {
        let victim = outside(100 + i);
        let bytes = forge(&config, stranger, m, vec![]);
        let (mut out, mut inp) = (0, 0);
        // Repeated: the budget is cumulative per address.
        for _ in 0..20 {
            let (o, n) = reflect(&mut c, 0, victim, &bytes);
            out += o;
            inp += n;
        }
        let ratio = out as f64 / inp as f64;
        eprintln!("{kind}: {out} bytes out for {inp} in (ratio {ratio:.2})");
        assert!(out <= 3 * inp, "{kind}: {out} out for {inp} in");
        worst = worst.max(ratio);
    }
    // A validated address (one that echoed the challenge) gets the full table, as any
    // address did before validation existed: the figure the budget removes.
    let honest = outside(200);
    let join = forge(&config, stranger, Message::Join, vec![]);
    c.sent_outside.clear();
    let _ = c.inject(0, honest, &join);
    let token = c
        .sent_outside
        .iter()
        .filter(|(d, _)| *d == honest)
        .find_map(
            |(_, b)| match wire::decode(b, wire::MAX_DATAGRAM).ok()?.message {
                Message::Challenge { token } => Some(token),
                _ => None,
            },
        )
        .expect("a join from a new address is challenged");
    let echo = forge(&config, stranger, Message::Echo { token }, vec![]);
    let _ = c.inject(0, honest, &echo);
    let (full, n) = reflect(&mut c, 0, honest, &join);
    eprintln!(
        "validated join: {full} bytes out for {n} in (ratio {:.1}); spoofed worst {worst:.2}",
        full as f64 / n as f64
    );
    assert!(full > 10 * n, "the validated join got the table");
    // A wrong echo validates nothing and is counted.
    let bad_before = c.nodes[0].stats().bad_echoes;
    let liar = outside(201);
    let _ = c.inject(
        0,
        liar,
        &forge(&config, stranger, Message::Echo { token }, vec![]),
    );
    assert_eq!(c.nodes[0].stats().bad_echoes, bad_before + 1);
    let (out, n) = reflect(&mut c, 0, liar, &join);
    assert!(
        out <= 3 * (n + echo.len()),
        "a token for another address does not validate"
    );
}

#[test]
fn a_keyed_join_goes_through_the_challenge_round_trip() {
    let mut c = Cluster::new(2, Config::local());
    for n in &mut c.nodes {
        n.set_keyring(Some(ring()));
    }
    let now = c.now;
    c.nodes[1].join(now, &[addr(0)]).unwrap();
    c.run_for(Duration::from_secs(1));
    assert!(!c.nodes[1].is_joining());
    assert_eq!(
        c.nodes[0].stats().challenges_sent,
        1,
        "one challenge, then the table"
    );
    assert_eq!(c.nodes[1].live_members(), 2);
}

#[test]
fn network_duplicates_are_dropped_and_counted() {
    let mut c = keyed(3);
    let mut log = Vec::new();
    run_capturing(&mut c, Duration::from_secs(1), &mut log);
    let (to, from, bytes) = log.last().cloned().expect("traffic");
    let now = c.now;
    let before = c.nodes[to].stats().dropped_for(&PacketError::Replayed);
    assert_eq!(
        c.nodes[to].handle_packet(now, from, &bytes),
        Err(PacketError::Replayed)
    );
    assert_eq!(
        c.nodes[to].stats().dropped_for(&PacketError::Replayed),
        before + 1
    );
    assert!(c.nodes[0].stats().replay_senders <= 2 * Config::local().max_members);
}

/// The messages `c` sent to `dst` (cleared first by the caller), decoded (keyless).
fn sent_to(c: &Cluster, dst: SocketAddr) -> Vec<Message> {
    c.sent_outside
        .iter()
        .filter(|(d, _)| *d == dst)
        .filter_map(|(_, b)| Some(wire::decode(b, wire::MAX_DATAGRAM).ok()?.message))
        .collect()
}

fn challenge_token(messages: &[Message]) -> Option<u64> {
    messages.iter().find_map(|m| match m {
        Message::Challenge { token } => Some(*token),
        _ => None,
    })
}

#[test]
fn a_join_echoing_its_token_is_answered_in_the_same_exchange() {
    // The token rides in the resent join itself, so nothing can overtake it; a wrong one is
    // counted and only challenged again.
    let config = Config::local();
    let mut c = Cluster::joined(30, config.clone());
    let stranger = NodeId::from_name("stranger");
    let joiner = outside(300);
    let join = forge(&config, stranger, Message::Join, vec![]);
    let (out, n) = reflect(&mut c, 0, joiner, &join);
    assert!(out <= 3 * n);
    let token = challenge_token(&sent_to(&c, joiner)).expect("challenged");
    let echo = forge(&config, stranger, Message::JoinEcho { token }, vec![]);
    let (full, n2) = reflect(&mut c, 0, joiner, &echo);
    assert!(
        full > 10 * n2,
        "the table came back at once ({full} for {n2})"
    );
    assert!(sent_to(&c, joiner)
        .iter()
        .any(|m| matches!(m, Message::SyncReply { seq: 0, .. })));

    let liar = outside(301);
    let bad_before = c.nodes[0].stats().bad_echoes;
    let (out, n) = reflect(&mut c, 0, liar, &echo);
    assert_eq!(c.nodes[0].stats().bad_echoes, bad_before + 1);
    assert!(out <= 3 * n, "another address's token validates nothing");
    assert!(
        challenge_token(&sent_to(&c, liar)).is_some(),
        "challenged again"
    );
}

#[test]
fn a_sync_is_answered_within_budget_when_views_agree_else_challenged_then_echoed() {
    let config = Config::local();
    let mut c = Cluster::joined(20, config.clone());
    c.run_for(Duration::from_secs(5));
    // A real member's digest: the views agree, so the answer is a digest of the same size.
    let mut log = Vec::new();
    run_capturing(&mut c, Duration::from_secs(15), &mut log);
    let (to, digest) = log
        .iter()
        .find_map(
            |(to, _, b)| match wire::decode(b, wire::MAX_DATAGRAM).ok()?.message {
                Message::Sync { digest, .. } => Some((*to, digest)),
                _ => None,
            },
        )
        .expect("a sync was sent");
    let stranger = NodeId::from_name("stranger");
    let peer = outside(400);
    let challenges = c.nodes[to].stats().challenges_sent;
    let agree = forge(
        &config,
        stranger,
        Message::Sync {
            seq: 5,
            digest: digest.clone(),
        },
        vec![],
    );
    let (out, n) = reflect(&mut c, to, peer, &agree);
    assert!(out <= 3 * n, "{out} for {n}");
    let answer = sent_to(&c, peer);
    assert!(
        answer.iter().any(|m| matches!(
            m,
            Message::SyncReply {
                seq: 5,
                last: true,
                ..
            }
        )),
        "answered without a round trip: {answer:?}"
    );
    assert_eq!(c.nodes[to].stats().challenges_sent, challenges);

    // Views that differ: a challenge only, then the echoing request gets the entries.
    let zero = BoundedVec::try_from_vec(vec![0u8; DIGEST_BYTES]).unwrap();
    let differ = forge(
        &config,
        stranger,
        Message::Sync {
            seq: 6,
            digest: zero.clone(),
        },
        vec![],
    );
    let (out, n) = reflect(&mut c, to, peer, &differ);
    assert!(out <= 3 * n);
    let token = challenge_token(&sent_to(&c, peer)).expect("challenged");
    let echo = forge(
        &config,
        stranger,
        Message::SyncEcho {
            seq: 6,
            digest: zero,
            token,
        },
        vec![],
    );
    let (full, n) = reflect(&mut c, to, peer, &echo);
    assert!(
        full > 3 * n,
        "validated: beyond the budget ({full} for {n})"
    );
    assert!(sent_to(&c, peer)
        .iter()
        .any(|m| matches!(m, Message::SyncReply { seq: 6, entries, .. } if !entries.is_empty())));
}

#[test]
fn a_ping_is_challenged_only_when_news_would_be_cut_off_its_ack() {
    let config = Config::local();
    let mut c = Cluster::joined(10, config.clone());
    c.run_for(Duration::from_secs(30));
    assert_eq!(c.nodes[0].stats().queued_updates, 0, "settled");
    let stranger = NodeId::from_name("stranger");
    let pinger = outside(500);
    let ping = forge(&config, stranger, Message::Ping { seq: 1 }, vec![]);
    let challenges = c.nodes[0].stats().challenges_sent;
    let (out, n) = reflect(&mut c, 0, pinger, &ping);
    assert!(out <= 3 * n);
    assert!(sent_to(&c, pinger)
        .iter()
        .any(|m| matches!(m, Message::Ack { seq: 1 })));
    assert_eq!(
        c.nodes[0].stats().challenges_sent,
        challenges,
        "nothing queued: the bare ack fits, no challenge"
    );
    // With news queued, the pinger is challenged so later acks can carry it in full.
    let now = c.now;
    c.nodes[0].set_tag(now, "v", "2").unwrap();
    let other = outside(501);
    let (out, n) = reflect(&mut c, 0, other, &ping);
    assert!(out <= 3 * n);
    assert!(challenge_token(&sent_to(&c, other)).is_some());
}
