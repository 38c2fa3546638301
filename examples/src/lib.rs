//! Shared helpers for the Shoal example binaries.
//!
//! ```
//! use shoal_examples::keys::{encode_hex, parse_cluster_key};
//! use shoal_examples::options::Preset;
//!
//! // A `--cluster-key` round trip, and the preset every binary defaults to.
//! let key = [7u8; 32];
//! assert_eq!(parse_cluster_key(&encode_hex(&key)), Ok(key));
//! assert_eq!(Preset::default(), Preset::Local);
//! ```
//!
//! * [`options`]: the connection options every binary takes (`--preset`, `--secrets-dir`,
//!   `--cluster-key`), parsed once.
//! * [`common`]: development secrets, node options, event printing, and the director and
//!   worker the `director`, `worker` and `demo` binaries run.
//! * [`keys`]: hex parsing of cluster keys (`--cluster-key`).
//! * [`output`]: JSON-line and table output the binaries share.
//! * [`inspect`]: the `members` inspector (join read-only, list, leave), as a library
//!   function so tests can run it in-process.
//! * [`jsonlog`]: `--json-log` process logs (events, views, handled calls, call records),
//!   one JSON object per line, for harnesses such as the network-namespace tests.
//! * [`callload`]: the client's bounded load with one record per call.
//! * [`bench`](mod@bench): the `bench` binary's load generator, latency histogram, child-process
//!   orchestration, report and the bare-quinn baseline.
#![forbid(unsafe_code)]
#![deny(missing_docs)]

pub mod bench;
pub mod callload;
pub mod common;
pub mod inspect;
pub mod jsonlog;
pub mod keys;
pub mod metrics;
pub mod options;
pub mod output;
