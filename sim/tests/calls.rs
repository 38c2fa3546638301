//! The call path's machines under faults: the `balance` scenario with the real
//! `Connections` and `CallMachine`, connections breaking at random and a worker dying mid-call
//! and restarting elsewhere, every invariant (each lease finished exactly once, no
//! non-idempotent call both retried after it may have run and answered, no closed connection
//! handed out, every call ended) checked after every step.
//!
//! `SIM_SEED=<n>` replays one seed; `SIM_RUNS=<n>` runs more seeds (default 8, quick; CI's
//! `scripts/test.sh` sets 1000 for the membership swarm, about 55 ms each here, split over two
//! tests so the harness runs them on both cores).

use shoal_core::Strategy;
use shoal_sim::balance::{run_faults, BalanceOpts};
use shoal_sim::{sim_runs, test_seeds};

fn opts(seed: u64, strategy: Strategy) -> BalanceOpts {
    BalanceOpts {
        workers: 5,
        strategy,
        seed,
        calls: 20_000,
        ..BalanceOpts::default()
    }
}

const STRATEGIES: [Strategy; 4] = [
    Strategy::P2c,
    Strategy::LeastConnections,
    Strategy::RoundRobin,
    Strategy::Random,
];

#[test]
fn the_call_machines_keep_their_invariants_under_faults_odd_seeds() {
    shard(1);
}

#[test]
fn the_call_machines_keep_their_invariants_under_faults_even_seeds() {
    shard(0);
}

fn shard(k: u64) {
    let seeds: Vec<u64> = test_seeds(sim_runs(8))
        .into_iter()
        .filter(|s| s % 2 == k)
        .collect();
    if seeds.is_empty() {
        // `SIM_SEED` picked the other shard's seed.
        return;
    }
    let mut total = shoal_sim::balance::FaultCounts::default();
    for seed in seeds {
        let strategy = STRATEGIES[(seed % 4) as usize];
        let c = run_faults(&opts(seed, strategy))
            .unwrap_or_else(|v| panic!("seed {seed} ({strategy:?}): {v:?}"));
        assert_eq!(
            c.answered + c.failed,
            20_000,
            "seed {seed}: every call ended once"
        );
        assert_eq!(c.deaths, 1, "seed {seed}: the worker died");
        total.answered += c.answered;
        total.failed += c.failed;
        total.retries += c.retries;
        total.reopens += c.reopens;
        total.conns_lost += c.conns_lost;
        total.connect_failures += c.connect_failures;
        total.unroutable += c.unroutable;
        total.deaths += c.deaths;
    }
    println!("{total:?}");
    // The faults happened and the machines acted on them (the run is not vacuous).
    assert!(
        total.conns_lost > 0
            && total.retries > 0
            && total.reopens > 0
            && total.connect_failures > 0
            && total.failed > 0,
        "{total:?}"
    );
    assert!(total.answered > total.failed * 10, "{total:?}");
}
