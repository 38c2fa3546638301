//! Membership behaviour in the simulator: deterministic, virtual time, 5% loss.

use shoal_core::MemberState;
use shoal_sim::scenarios::{converge, join, tags, ScenarioOpts};
use shoal_sim::{fail, test_seed, Sim};
use std::time::Duration;

fn opts(nodes: usize, seed: u64) -> ScenarioOpts {
    ScenarioOpts {
        nodes,
        seed,
        loss_pct: 5.0,
        settle: Duration::ZERO,
        steady: Duration::ZERO,
        timeout: Duration::from_secs(60),
        ..ScenarioOpts::default()
    }
}

fn converged(nodes: usize, seed: u64) -> Sim {
    let r = converge(&opts(nodes, seed));
    if r.converged_ms.is_none() {
        fail(
            seed,
            &format!("{nodes} nodes did not converge within 60 s virtual"),
        );
    }
    r.sim
}

/// Runs until `pred` holds, failing after `within` of virtual time.
fn run_until(sim: &mut Sim, seed: u64, within: Duration, what: &str, pred: impl Fn(&Sim) -> bool) {
    let deadline = sim.now + within;
    if sim
        .run_until_pred(deadline, |_, _, _| {}, |s| pred(s))
        .is_none()
    {
        fail(
            seed,
            &format!("{what} did not happen within {within:?} virtual"),
        );
    }
}

#[test]
fn a_hundred_nodes_join_through_one_seed_and_converge_under_loss() {
    let seed = test_seed(11);
    let r = converge(&opts(100, seed));
    match r.converged_ms {
        Some(ms) if ms <= 10_000.0 => {}
        other => fail(
            seed,
            &format!("100 nodes converged at {other:?} ms, want <= 10 s"),
        ),
    }
}

#[test]
fn a_tag_change_reaches_everyone_under_loss() {
    let seed = test_seed(12);
    let r = tags(&opts(100, seed));
    match r.tag_spread_ms {
        Some(ms) if ms <= 5_000.0 => {}
        other => fail(seed, &format!("tag spread took {other:?} ms, want <= 5 s")),
    }
}

/// The everyday join: one node starts and joins a settled cluster. Everyone must learn it
/// by gossip, within a few rounds, not by anti-entropy seconds later. The member answering
/// the joiner sends it its whole table (20-odd datagrams at 600 members), and the joiner's
/// alive update once rode on every one of them, used up its transmits on the joiner itself
/// and reached the others only by sync: 11-15 s for the last member, against about 0.5 s
/// (seeds 1-3, 5 % loss).
#[test]
fn a_node_joining_a_settled_cluster_of_600_is_known_by_all_within_two_seconds() {
    let seed = test_seed(16);
    let r = join(&ScenarioOpts {
        settle: Duration::from_secs(2),
        ..opts(600, seed)
    });
    match (r.join_spread_max_ms, r.joiner_full_ms) {
        (Some(spread), Some(full)) if spread <= 2_000.0 && full <= 2_000.0 => {}
        other => fail(
            seed,
            &format!("join spread and joiner's own view took {other:?} ms, want <= 2 s each"),
        ),
    }
}

#[test]
fn a_node_that_leaves_is_seen_as_left_by_all() {
    let seed = test_seed(13);
    let mut sim = converged(50, seed);
    let leaver = 17;
    let id = sim.node(leaver).unwrap().id();
    let mut out = Vec::new();
    sim.with_node(leaver, &mut out, |n, now| n.leave(now).unwrap());
    run_until(
        &mut sim,
        seed,
        Duration::from_secs(20),
        "everyone seeing the leave",
        |s| {
            s.node(leaver).is_some_and(|n| n.has_left())
                && (0..s.len()).filter(|&i| i != leaver).all(|i| {
                    s.node(i)
                        .and_then(|n| n.member(&id))
                        .is_some_and(|m| m.state == MemberState::Left)
                })
        },
    );
}

#[test]
fn a_crashed_and_restarted_node_is_seen_with_its_new_incarnation_by_all() {
    let seed = test_seed(14);
    let mut sim = converged(50, seed);
    let victim = 23;
    let id = sim.node(victim).unwrap().id();
    let mut out = Vec::new();
    sim.with_node(victim, &mut out, |n, now| {
        n.set_tag(now, "gen", "1").unwrap()
    });
    run_until(
        &mut sim,
        seed,
        Duration::from_secs(20),
        "the tag spreading",
        |s| {
            (0..s.len()).all(|i| {
                s.node(i)
                    .and_then(|n| n.member(&id))
                    .is_some_and(|m| m.info.tags.get("gen") == Some("1"))
            })
        },
    );
    let old = sim.node(0).unwrap().member(&id).unwrap().info.incarnation;
    sim.crash(victim);
    sim.run_until(sim.now + Duration::from_secs(1), |_, _, _| {});
    sim.restart(victim, 0, &mut out);
    run_until(
        &mut sim,
        seed,
        Duration::from_secs(30),
        "everyone seeing the new incarnation",
        |s| {
            let Some(me) = s.node(victim).map(|n| n.me().incarnation) else {
                return false;
            };
            me > old
                && (0..s.len()).all(|i| {
                    s.node(i).and_then(|n| n.member(&id)).is_some_and(|m| {
                        m.info.incarnation == me
                            && m.state == MemberState::Alive
                            && m.info.tags.get("gen").is_none()
                    })
                })
        },
    );
}

#[test]
fn the_same_seed_gives_the_same_trace_and_another_seed_does_not() {
    let seed = test_seed(15);
    let a = converge(&opts(40, seed));
    let b = converge(&opts(40, seed));
    let c = converge(&opts(40, seed + 1));
    assert!(a.converged_ms.is_some());
    assert_eq!(
        a.trace_hash, b.trace_hash,
        "same seed, different trace: SIM_SEED={seed}"
    );
    assert_eq!(a.converged_ms, b.converged_ms);
    assert_eq!(a.sim.bytes_sent, b.sim.bytes_sent);
    assert_ne!(a.trace_hash, c.trace_hash);
}
