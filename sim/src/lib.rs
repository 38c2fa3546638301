//! # shoal-sim
//!
//! A deterministic simulator for Shoal. It drives many real `shoal_core::Node`s directly (no
//! async runtime) through a virtual network in virtual time: latency, jitter, loss,
//! duplication, reordering, crashes and restarts. One master seed forks the network's and
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

pub mod cluster;
pub mod network;
pub mod scenarios;
pub mod trace;

pub use cluster::{Sim, SimConfig};
pub use network::LinkConfig;
