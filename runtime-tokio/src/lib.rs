//! # shoal-tokio
//!
//! The tokio adapter for Shoal: a UDP gossip socket, tokio timers and the user-facing
//! membership API, with the names people migrating from rpcnet know ([`ClusterConfig`],
//! [`Cluster::join`], [`Cluster::set_tag`], [`Cluster::subscribe`], [`ClusterEvent`]).
//! The sans-IO core ([`shoal_core`]) makes every decision; its drive loop
//! ([`shoal_core::driver`]) runs here on [`TokioRuntime`].
//!
//! ## Quickstart: two nodes on loopback
//!
//! ```
//! use shoal_tokio::{Cluster, ClusterConfig, ClusterEvent};
//!
//! # fn main() -> Result<(), Box<dyn std::error::Error>> {
//! # let rt = tokio::runtime::Builder::new_current_thread().enable_all().build()?;
//! # rt.block_on(async {
//! // Port 0: the OS picks free ports. `local()` is the fast preset for one machine.
//! let config = ClusterConfig::default()
//!     .with_bind_addr("127.0.0.1:0".parse()?)
//!     .with_core_config(shoal_tokio::core::Config::local())
//!     .with_cluster_key([42; 32]); // every member needs the same key
//!
//! let director = Cluster::start(config.clone().with_name("director")).await?;
//! director.set_tag("role", "director");
//! let mut events = director.subscribe();
//!
//! let worker = Cluster::start(config.with_name("worker").with_tags([("role", "worker")])).await?;
//! worker.join(vec![director.gossip_addr()]).await?;
//!
//! // The director hears about the worker.
//! while let Some(event) = events.recv().await {
//!     if let ClusterEvent::NodeJoined(node) = event {
//!         assert_eq!(node.name, "worker");
//!         assert_eq!(node.tags.get("role").map(String::as_str), Some("worker"));
//!         break;
//!     }
//! }
//! assert_eq!(director.live_members().await?.len(), 2);
//!
//! // Leave gracefully: the director sees the worker as left, not failed.
//! worker.shutdown().await?;
//! director.shutdown().await?;
//! # Ok::<(), Box<dyn std::error::Error>>(())
//! # })?;
//! # Ok(())
//! # }
//! ```
//!
//! ## Security
//! With [`ClusterConfig::with_cluster_key`] or [`ClusterConfig::with_keyring`] every gossip
//! datagram is encrypted and authenticated ([`shoal_core::envelope`]); datagrams that fail
//! are dropped and counted ([`ClusterStats::unauthenticated`]). Keys rotate live with
//! [`Cluster::add_key`], [`Cluster::use_primary_key`] and [`Cluster::remove_key`]. Without a
//! key gossip is plaintext: for trusted networks and development only.
//!
//! ## Layout
//! `runtime` ([`TokioRuntime`]), `config`, `error`, `cluster` (membership). The RPC half
//! (QUIC endpoint, worker registry, cluster client) goes in sibling modules and builds on
//! [`Cluster`].
#![forbid(unsafe_code)]
#![deny(missing_docs)]

mod cluster;
mod config;
mod error;
mod registry;
pub mod rpc;
mod runtime;

/// The sans-IO core this adapter drives.
pub use shoal_core as core;

pub use cluster::{
    Cluster, ClusterEvent, ClusterStats, CommandFuture, EventStream, MemberSnapshot,
};
pub use config::{ClusterConfig, DEFAULT_BIND_ADDR};
pub use error::ClusterError;
pub use registry::{LoadBalancingStrategy, WorkerInfo, WorkerRegistry};
pub use rpc::{
    CallError, CallOptions, CallResponse, ClusterClient, HandlerError, RpcConfig, Server,
    ServerError, TlsConfig,
};
pub use runtime::TokioRuntime;
pub use shoal_core::envelope::{Key, Keyring};
pub use shoal_core::rpc::call::CallPhase;
pub use shoal_core::{MemberState, NodeId};
