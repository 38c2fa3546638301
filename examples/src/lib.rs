//! Shared helpers for the Shoal example binaries.
//!
//! * [`keys`]: hex parsing of cluster keys (`--cluster-key`).
//! * [`output`]: JSON-line and table output the binaries share.
//! * [`inspect`]: the `members` inspector (join read-only, list, leave), as a library
//!   function so tests can run it in-process.
//! * [`bench`](mod@bench): the `bench` binary's load generator, latency histogram, child-process
//!   orchestration, report and the bare-quinn baseline.
#![forbid(unsafe_code)]
#![deny(missing_docs)]

pub mod bench;
pub mod inspect;
pub mod keys;
pub mod output;
