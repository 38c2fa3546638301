//! # shoal-core
//!
//! The sans-IO heart of Shoal.
#![forbid(unsafe_code)]
#![deny(missing_docs)]

pub mod awareness;
mod config;
pub mod detector;
mod error;
pub(crate) mod hash;
mod id;
pub mod membership;
pub mod observers;
pub mod partition;
pub mod suspicion;
mod time;
pub mod wire;

pub use config::Config;
pub use detector::{PhiConfig, PhiDetector};
pub use error::{CommandError, ConfigError, PacketError};
pub use id::NodeId;
pub use membership::{MemberInfo, MemberState, Tags, Update};
pub use partition::{PartitionConfig, PartitionDetector, PartitionEvent};
pub use time::Timestamp;
