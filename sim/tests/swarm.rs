//! The seeded swarm (VOPR style): many random clusters under random faults, every safety
//! checker after every step, then a liveness phase that must converge.
//!
//! `SIM_SEED=<n>` replays one seed; `SIM_RUNS=<n>` runs more seeds (default 500). The seeds
//! are split over four tests so the harness runs them in parallel.

use shoal_sim::vopr::run_vopr;
use shoal_sim::{sim_runs, test_seeds};

/// Chaos-phase step cap: far above what a run needs, so the virtual-time length ends it.
const STEPS: u64 = 2_000_000;
const SHARDS: u64 = 4;

fn shard(k: u64) {
    for seed in test_seeds(sim_runs(500)) {
        if seed % SHARDS == k {
            let r = run_vopr(seed, STEPS);
            if std::env::var_os("SIM_SEED").is_some() {
                println!("seed {seed}: {r:?}");
            }
        }
    }
}

#[test]
fn swarm_0() {
    shard(0);
}

#[test]
fn swarm_1() {
    shard(1);
}

#[test]
fn swarm_2() {
    shard(2);
}

#[test]
fn swarm_3() {
    shard(3);
}
