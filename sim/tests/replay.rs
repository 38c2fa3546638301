//! Replay and spoofing faults in the simulator (issue 17): keyed swarm runs hand captured
//! datagrams again, from their sender's address or a spoofed one, and check that a replay
//! is refused untouched and that a spoofed source never gets more than 3x what it sent.

use rand_chacha::ChaCha8Rng;
use rand_core::SeedableRng;
use shoal_sim::cluster::{Sim, SimConfig};
use shoal_sim::vopr::{replay_fault, try_vopr, VoprOptions};
use std::collections::BTreeMap;
use std::time::Duration;

/// A settled 5-member cluster, keyed or not, capturing what it delivers.
fn settled(keyed: bool) -> Sim {
    let mut sim = Sim::new(SimConfig::lan(5, 7));
    if keyed {
        sim.set_cluster_key([9; 32]);
    }
    sim.capture_delivered(64);
    let mut out = Vec::new();
    for i in 1..5 {
        sim.join(i, 0, &mut out);
    }
    let t = sim.now + Duration::from_secs(5);
    sim.run_until(t, |_, _, _| {});
    assert!((0..5).all(|i| sim.node(i).is_some_and(|n| n.live_members() == 5)));
    sim
}

#[test]
fn keyed_replays_are_refused_and_spoofed_sources_stay_within_3x() {
    let mut sim = settled(true);
    let mut rng = ChaCha8Rng::seed_from_u64(1);
    let mut spoofed = BTreeMap::new();
    let mut out = Vec::new();
    let refused_before: u64 = (0..5)
        .filter_map(|i| sim.node(i))
        .map(|n| n.stats().dropped_for(&shoal_core::PacketError::Replayed))
        .sum();
    for _ in 0..200 {
        let r = replay_fault(&mut sim, &mut rng, &mut spoofed, &mut out);
        assert!(matches!(r, Ok(Some(_))), "{r:?}");
    }
    let refused: u64 = (0..5)
        .filter_map(|i| sim.node(i))
        .map(|n| n.stats().dropped_for(&shoal_core::PacketError::Replayed))
        .sum();
    assert_eq!(refused - refused_before, 200, "every replay refused");
    assert!(!spoofed.is_empty(), "some came from spoofed sources");
    assert!(spoofed.values().all(|&(_, out)| out == 0), "{spoofed:?}");
}

#[test]
fn the_replay_checker_fires_when_nothing_refuses_replays() {
    // Without a key there is no freshness check: the checker must see replays taken.
    let mut sim = settled(false);
    let mut rng = ChaCha8Rng::seed_from_u64(2);
    let mut spoofed = BTreeMap::new();
    let mut out = Vec::new();
    let fired = (0..50).any(|_| replay_fault(&mut sim, &mut rng, &mut spoofed, &mut out).is_err());
    assert!(fired);
}

#[test]
fn keyed_swarm_seeds_run_replay_faults_and_converge() {
    let opts = VoprOptions {
        verbose: false,
        ..VoprOptions::default()
    };
    let mut keyed = 0;
    let mut replays = 0;
    for seed in 1..=12 {
        let r = try_vopr(seed, 2_000_000, &opts).unwrap_or_else(|f| panic!("{f}"));
        if r.knobs.keyed {
            keyed += 1;
            replays += r.replays;
        } else {
            assert_eq!(r.replays, 0);
        }
    }
    assert!(keyed >= 3, "about half the seeds are keyed ({keyed} of 12)");
    assert!(
        replays >= 10 * keyed,
        "{replays} replays in {keyed} keyed runs"
    );
}
