//! The fault machinery itself: partitions, pauses, clock skew, determinism with every fault
//! on, and the checkers. These hold whatever the core's failure detector does.

use shoal_core::wire::{encode, Header, Message, Packet};
use shoal_core::Timestamp;
use shoal_core::{MemberState, NodeId, Update};
use shoal_sim::checker::Checkers;
use shoal_sim::cluster::{addr_of, RECV_BUFFER};
use shoal_sim::scenarios::{converge, ScenarioOpts};
use shoal_sim::vopr::{try_vopr, VoprOptions};
use shoal_sim::{fail, test_seed, Clock, Sim};
use std::time::Duration;

fn converged(nodes: usize, seed: u64) -> Sim {
    let r = converge(&ScenarioOpts {
        nodes,
        seed,
        settle: Duration::ZERO,
        steady: Duration::ZERO,
        timeout: Duration::from_secs(60),
        ..ScenarioOpts::default()
    });
    if r.converged_ms.is_none() {
        fail(seed, &format!("{nodes} nodes did not converge"));
    }
    r.sim
}

fn id(sim: &Sim, i: usize) -> NodeId {
    sim.process(i).identity.id
}

/// Whether node `observer` holds node `subject`'s tag `key` at `value`.
fn sees_tag(sim: &Sim, observer: usize, subject: usize, key: &str, value: &str) -> bool {
    sim.node(observer)
        .and_then(|n| n.member(&id(sim, subject)))
        .is_some_and(|m| m.info.tags.get(key) == Some(value))
}

fn set_tag(sim: &mut Sim, i: usize, value: &str) {
    let mut out = Vec::new();
    sim.with_node(i, &mut out, |n, now| n.set_tag(now, "v", value).unwrap());
}

fn run_for(sim: &mut Sim, d: Duration) {
    let t = sim.now + d;
    sim.run_until(t, |_, _, _| {});
}

#[test]
fn a_two_way_partition_blocks_both_ways_until_heal() {
    let seed = test_seed(21);
    let mut sim = converged(10, seed);
    let a: Vec<usize> = (0..5).collect();
    let b: Vec<usize> = (5..10).collect();
    sim.partition(&a, &b);
    set_tag(&mut sim, 1, "a");
    set_tag(&mut sim, 6, "b");
    run_for(&mut sim, Duration::from_secs(15));
    for &i in &a {
        assert!(sees_tag(&sim, i, 1, "v", "a"), "A side spreads inside A");
        assert!(
            !sees_tag(&sim, i, 6, "v", "b"),
            "B's tag crossed to A: SIM_SEED={seed}"
        );
    }
    for &i in &b {
        assert!(sees_tag(&sim, i, 6, "v", "b"), "B side spreads inside B");
        assert!(
            !sees_tag(&sim, i, 1, "v", "a"),
            "A's tag crossed to B: SIM_SEED={seed}"
        );
    }
    sim.heal();
    let healed = sim.run_until_pred(
        sim.now + Duration::from_secs(30),
        |_, _, _| {},
        |s| (0..10).all(|i| sees_tag(s, i, 1, "v", "a") && sees_tag(s, i, 6, "v", "b")),
    );
    if healed.is_none() {
        fail(seed, "tags did not cross after heal");
    }
}

#[test]
fn a_one_way_partition_blocks_only_one_direction() {
    let seed = test_seed(22);
    let mut sim = converged(10, seed);
    let a: Vec<usize> = (0..5).collect();
    let b: Vec<usize> = (5..10).collect();
    sim.partition_oneway(&a, &b);
    assert!(sim.net.is_blocked(1, 6) && !sim.net.is_blocked(6, 1));
    set_tag(&mut sim, 1, "a");
    set_tag(&mut sim, 6, "b");
    run_for(&mut sim, Duration::from_secs(15));
    for &i in &a {
        assert!(
            sees_tag(&sim, i, 6, "v", "b"),
            "B → A is open: SIM_SEED={seed}"
        );
    }
    for &i in &b {
        assert!(
            !sees_tag(&sim, i, 1, "v", "a"),
            "A → B is cut: SIM_SEED={seed}"
        );
    }
    sim.heal();
    let healed = sim.run_until_pred(
        sim.now + Duration::from_secs(30),
        |_, _, _| {},
        |s| (5..10).all(|i| sees_tag(s, i, 1, "v", "a")),
    );
    if healed.is_none() {
        fail(seed, "A's tag did not reach B after heal");
    }
}

#[test]
fn isolate_cuts_one_node_off_both_ways() {
    let seed = test_seed(23);
    let mut sim = converged(6, seed);
    sim.isolate(3);
    for j in (0..6).filter(|&j| j != 3) {
        assert!(sim.net.is_blocked(3, j) && sim.net.is_blocked(j, 3));
        for k in (0..6).filter(|&k| k != 3 && k != j) {
            assert!(!sim.net.is_blocked(j, k));
        }
    }
    sim.heal();
    assert!(!sim.net.is_partitioned());
}

#[test]
fn a_paused_node_gets_its_buffered_packets_on_resume_and_its_timers_fire_late() {
    let seed = test_seed(24);
    let mut sim = converged(5, seed);
    let v = 2;
    let before = sim.node(v).unwrap().now();
    let packets_in = sim.node(v).unwrap().stats().packets_in;
    let until = sim.now + Duration::from_secs(3);
    sim.pause(v, until);
    // Give the others something to gossip to it.
    set_tag(&mut sim, 0, "x");
    assert!(sim.with_node(v, &mut Vec::new(), |_, _| ()).is_none());
    let mut max_buffered = 0;
    let mut out = Vec::new();
    let mut last = None;
    while sim.is_paused(v) {
        max_buffered = max_buffered.max(sim.buffered(v));
        last = sim.step(until, &mut out);
        out.clear();
        if sim.is_paused(v) {
            assert_eq!(
                sim.node(v).unwrap().now(),
                before,
                "a paused core saw an input"
            );
        }
    }
    assert!(max_buffered > 0, "nothing was sent to the paused node");
    assert_eq!(last, Some(v), "the resume is a step that touches the node");
    assert_eq!(sim.now, until, "it resumed exactly on time");
    let n = sim.node(v).unwrap();
    assert_eq!(
        n.now(),
        until,
        "its clock jumped straight to the resume time"
    );
    assert_eq!(n.stats().packets_in, packets_in + max_buffered as u64);
    assert!(
        n.poll_timeout().unwrap() > until,
        "its overdue timers fired on resume"
    );
    assert!(
        sees_tag(&sim, v, 0, "v", "x"),
        "buffered gossip was applied"
    );
    assert_eq!(sim.buffered(v), 0);
}

#[test]
fn a_paused_nodes_receive_buffer_is_bounded() {
    let mut sim = converged(3, test_seed(25));
    let until = sim.now + Duration::from_secs(1);
    sim.pause(1, until);
    for _ in 0..RECV_BUFFER + 100 {
        sim.send_raw(0, 1, vec![0xff]);
    }
    let mut out = Vec::new();
    while sim.is_paused(1) {
        sim.step(until, &mut out);
        out.clear();
    }
    assert!(sim.buffer_dropped >= 100);
}

#[test]
fn clock_skew_makes_a_node_see_its_own_rate() {
    let seed = test_seed(26);
    let mut sim = converged(4, seed);
    let clock = Clock {
        epoch: Timestamp::from_micros(1_000_000_000),
        rate: 1.01,
    };
    sim.set_clock(2, clock);
    let start = sim.now;
    run_for(&mut sim, Duration::from_secs(100));
    let elapsed_virtual = sim.now.saturating_since(start).as_secs_f64();
    let local = sim.local_now(2);
    assert_eq!(local, clock.local(sim.now));
    let n = sim.node(2).unwrap().now();
    // It heard something within the last gossip interval (200 ms local).
    assert!(n <= local && local.saturating_since(n) < Duration::from_millis(300));
    let local_elapsed = local.as_micros() as f64 / 1e6 - 1000.0;
    let expected = sim.now.as_micros() as f64 / 1e6 * 1.01;
    assert!((local_elapsed - expected).abs() < 1e-3);
    assert!(elapsed_virtual > 99.9);
    // Virtual ↔ local round-trips to the first instant the local clock reaches a deadline.
    for l in [1_000_000_007u64, 1_050_000_000, 1_123_456_789] {
        let v = clock.virtual_at(Timestamp::from_micros(l));
        assert!(clock.local(v).as_micros() >= l);
        assert!(clock.local(v - Duration::from_micros(1)).as_micros() < l);
    }
    // The cluster keeps working with a fast clock among them.
    set_tag(&mut sim, 2, "fast");
    run_for(&mut sim, Duration::from_secs(10));
    assert!((0..4).all(|i| sees_tag(&sim, i, 2, "v", "fast")));
}

/// A run with every fault on: loss, duplication, jitter, skew, partitions, a pause, a crash
/// and a restart. Returns the trace hash.
fn all_faults(seed: u64) -> (u64, u64) {
    let r = converge(&ScenarioOpts {
        nodes: 20,
        seed,
        loss_pct: 5.0,
        dup_pct: 5.0,
        jitter: Duration::from_millis(20),
        clock_skew: 0.01,
        settle: Duration::ZERO,
        steady: Duration::ZERO,
        timeout: Duration::from_secs(60),
        ..ScenarioOpts::default()
    });
    let mut sim = r.sim;
    let mut out = Vec::new();
    sim.partition(&[1, 2, 3], &[4, 5, 6, 7]);
    sim.partition_oneway(&[8], &[9, 10]);
    sim.pause(11, sim.now + Duration::from_millis(1500));
    run_for(&mut sim, Duration::from_secs(3));
    sim.crash(12);
    sim.heal();
    run_for(&mut sim, Duration::from_secs(2));
    sim.restart(12, 0, &mut out);
    run_for(&mut sim, Duration::from_secs(10));
    (sim.trace.hash(), sim.bytes_sent)
}

#[test]
fn the_same_seed_gives_the_same_trace_with_every_fault_on() {
    let seed = test_seed(27);
    let a = all_faults(seed);
    let b = all_faults(seed);
    assert_eq!(a, b, "same seed, different trace: SIM_SEED={seed}");
    assert_ne!(a.0, all_faults(seed + 1).0);
    let quiet = VoprOptions {
        verbose: false,
        ..VoprOptions::default()
    };
    for s in [seed, seed + 100] {
        let x = try_vopr(s, 1_000_000, &quiet).unwrap();
        let y = try_vopr(s, 1_000_000, &quiet).unwrap();
        assert_eq!(
            x.trace_hash, y.trace_hash,
            "vopr not deterministic: SIM_SEED={s}"
        );
    }
}

#[test]
fn the_owner_incarnation_checker_catches_a_forged_incarnation() {
    let seed = test_seed(28);
    let mut sim = converged(5, seed);
    let mut checks = Checkers::safety(&sim);
    let mut info = sim.node(3).unwrap().me().clone();
    info.incarnation += 5;
    let packet = Packet {
        header: Header {
            cluster: sim.config().node_config.cluster_hash(),
            from: id(&sim, 1),
            to: Some(id(&sim, 0).into()),
        },
        message: Message::Gossip,
        updates: vec![Update::Alive(info)],
    };
    let bytes = encode(&packet).unwrap();
    let mut out = Vec::new();
    sim.with_node(0, &mut out, |n, now| {
        n.handle_packet(now, addr_of(1), &bytes)
    })
    .unwrap()
    .unwrap();
    let v = checks.after_step(&sim, 0, &out).unwrap_err();
    assert_eq!(v.checker, "owner-incarnation");
    assert_eq!(
        sim.node(0).unwrap().member(&id(&sim, 3)).unwrap().state,
        MemberState::Alive
    );
}
