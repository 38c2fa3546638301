//! Deterministic simulator.
#![forbid(unsafe_code)]
#![deny(missing_docs)]
pub mod balance;
