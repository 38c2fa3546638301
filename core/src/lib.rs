//! # shoal-core
//!
//! The sans-IO heart of Shoal: cluster membership by gossip (SWIM-style dissemination with
//! digest-based anti-entropy), and later failure detection, partition detection, load
//! balancing and RPC framing. It never reads a clock, a socket or an OS random source:
//! time, datagrams and randomness come in as inputs, datagrams and events go out.
//!
//! ## Quickstart: two nodes, driven by hand
//!
//! ```
//! use shoal_core::{Config, Event, Identity, Node, Timestamp};
//! use rand_core::{impls, RngCore};
//!
//! // Any RngCore works; adapters use the OS, the simulator a seeded generator.
//! struct Counter(u64);
//! impl RngCore for Counter {
//!     fn next_u32(&mut self) -> u32 { self.next_u64() as u32 }
//!     fn next_u64(&mut self) -> u64 { self.0 = self.0.wrapping_add(0x9e37_79b9_7f4a_7c15); self.0 }
//!     fn fill_bytes(&mut self, d: &mut [u8]) { impls::fill_bytes_via_next(self, d) }
//!     fn try_fill_bytes(&mut self, d: &mut [u8]) -> Result<(), rand_core::Error> {
//!         self.fill_bytes(d);
//!         Ok(())
//!     }
//! }
//!
//! let a_addr = "127.0.0.1:7946".parse().unwrap();
//! let b_addr = "127.0.0.1:7947".parse().unwrap();
//! let now = Timestamp::ZERO;
//! let mut a = Node::new(Config::local(), Identity::new("a", a_addr), Counter(1), now).unwrap();
//! let mut b = Node::new(Config::local(), Identity::new("b", b_addr), Counter(2), now).unwrap();
//!
//! b.join(now, &[a_addr]).unwrap();
//! // Deliver datagrams until both are idle (a real driver also sleeps until poll_timeout).
//! loop {
//!     let mut moved = false;
//!     while let Some(t) = b.poll_transmit() { a.handle_packet(now, b_addr, &t.payload).unwrap(); moved = true; }
//!     while let Some(t) = a.poll_transmit() { b.handle_packet(now, a_addr, &t.payload).unwrap(); moved = true; }
//!     if !moved { break; }
//! }
//! assert_eq!(a.live_members(), 2);
//! assert!(std::iter::from_fn(|| b.poll_event()).any(|e| matches!(e, Event::Joined { .. })));
//! ```
//!
//! ## Drive contract
//! After every input, drain [`Node::poll_transmit`] and [`Node::poll_event`] to `None`, then
//! read [`Node::poll_timeout`] and call [`Node::handle_timeout`] when it passes.
#![forbid(unsafe_code)]
#![deny(missing_docs)]

mod awareness;
pub mod balancer;
mod config;
mod damping;
pub mod detector;
mod dissemination;
pub mod envelope;
mod error;
pub mod freshness;
pub(crate) mod hash;
mod id;
mod id_index;
pub mod membership;
mod node;
mod observers;
mod partition;
pub mod pool;
mod probe;
pub mod rpc;
mod stats;
mod suspicion;
#[cfg(any(test, feature = "testkit"))]
pub mod testkit;
mod time;
mod timer;
pub mod wire;

pub use balancer::{Balancer, BalancerConfig, Filter, FilterError, SelectError, Strategy};
pub use config::Config;
pub use damping::DampingConfig;
pub use detector::{PhiConfig, PhiDetector};
pub use envelope::{EnvelopeError, Key, Keyring, KeyringError};
pub use error::{CommandError, ConfigError, PacketError};
pub use hash::Fnv1a;
pub use id::NodeId;
pub use membership::{CompactAddr, Member, MemberInfo, MemberState, Tags, Update};
pub use node::{Event, Identity, Node, Transmit};
pub use partition::PartitionConfig;
pub use pool::{
    ConnError, ConnEvent, ConnState, Lease, LeaseError, Outcome, PoolConfig, WorkerStats,
};
pub use rpc::{Decoder, Frame, FrameError, Limits, Request, Response, Status};
pub use stats::Stats;
pub use time::Timestamp;
