//! # shoal-core
//!
//! The sans-IO heart of Shoal.
#![forbid(unsafe_code)]
#![deny(missing_docs)]

pub mod balancer;
mod config;
mod error;
pub(crate) mod hash;
mod id;
pub mod membership;
pub mod pool;
pub mod rpc;
mod time;
pub mod wire;

pub use balancer::{Balancer, BalancerConfig, Filter, FilterError, SelectError, Strategy};
pub use config::Config;
pub use error::{CommandError, ConfigError, PacketError};
pub use id::NodeId;
pub use membership::{MemberInfo, MemberState, Tags, Update};
pub use pool::{
    ConnError, ConnEvent, ConnState, Lease, LeaseError, Outcome, PoolConfig, WorkerStats,
};
pub use rpc::{Decoder, Frame, FrameError, Limits, Request, Response, Status};
pub use time::Timestamp;
