//! # shoal-sim
//!
//! A deterministic simulator for Shoal. It drives many real `shoal_core::Node`s directly (no
//! async runtime) through a virtual network in virtual time: latency, jitter, loss,
//! duplication, reordering, partitions (two-way and one-way), crashes and restarts, paused
//! processes and clock rate skew. One master seed forks the network's and
//! every node's RNG, so the same seed gives the same run, byte for byte; the event-trace
//! hash proves it.
//!
//! ```
//! use shoal_sim::scenarios::{converge, ScenarioOpts};
//! let report = converge(&ScenarioOpts { nodes: 10, seed: 7, ..ScenarioOpts::default() });
//! assert!(report.converged_ms.is_some());
//! ```
#![forbid(unsafe_code)]
#![deny(missing_docs)]

pub mod balance;
pub mod checker;
pub mod cluster;
pub mod mem;
pub mod network;
pub mod report;
pub mod scenarios;
pub mod swarm;
pub mod trace;
pub mod vopr;

pub use checker::{CheckResult, Violation};
pub use cluster::{Clock, Sim, SimConfig};
pub use network::LinkConfig;

/// The seed a test should use: `SIM_SEED` from the environment if set, else `default`.
pub fn test_seed(default: u64) -> u64 {
    std::env::var("SIM_SEED")
        .ok()
        .and_then(|s| s.parse().ok())
        .unwrap_or(default)
}

/// The seeds a multi-seed test should run: `SIM_SEED` alone if set, else `1..=runs`.
pub fn test_seeds(runs: u64) -> Vec<u64> {
    match std::env::var("SIM_SEED").ok().and_then(|s| s.parse().ok()) {
        Some(seed) => vec![seed],
        None => (1..=runs).collect(),
    }
}

/// How many seeds a seed sweep runs: `SIM_RUNS` from the environment if set, else `default`
/// (CI's `scripts/test.sh` sets it for the swarm and the call machines).
pub fn sim_runs(default: u64) -> u64 {
    std::env::var("SIM_RUNS")
        .ok()
        .and_then(|s| s.parse().ok())
        .unwrap_or(default)
}

/// Fails a simulation test, printing how to reproduce it.
#[track_caller]
pub fn fail(seed: u64, what: &str) -> ! {
    panic!("{what}\nreproduce with: SIM_SEED={seed} cargo test -p shoal-sim")
}
