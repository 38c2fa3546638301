//! # shoal-tokio
//!
//! The tokio adapter for Shoal: a UDP gossip socket, tokio timers and the user-facing
//! user-facing membership and RPC API, with the names people migrating from rpcnet know ([`ClusterConfig`],
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
//! ## Quickstart: RPC to workers over QUIC
//!
//! A worker serves handlers and joins; a director follows the cluster with a
//! [`WorkerRegistry`] and calls workers through a [`ClusterClient`] (rpcnet's names).
//!
//! ```
//! use bytes::Bytes;
//! use shoal_tokio::{
//!     ClusterClient, ClusterConfig, LoadBalancingStrategy, RpcConfig, Server, WorkerRegistry,
//! };
//! use std::sync::Arc;
//!
//! # fn main() -> Result<(), Box<dyn std::error::Error>> {
//! # let rt = tokio::runtime::Builder::new_current_thread().enable_all().build()?;
//! # rt.block_on(async {
//! let config = |name: &str| {
//!     ClusterConfig::default()
//!         .with_bind_addr("127.0.0.1:0".parse().unwrap())
//!         .with_core_config(shoal_tokio::core::Config::local())
//!         .with_cluster_key([42; 32])
//!         .with_name(name)
//! };
//! // Development certificates (generated at run time, with a warning). Production:
//! // `RpcConfig::new(TlsConfig::new(chain, key, ca_roots))`.
//! let rpc = RpcConfig::insecure_dev();
//!
//! // Director: a server that enables the cluster, a registry and a client.
//! let mut director = Server::new(rpc.clone());
//! let cluster = director.enable_cluster(config("director")).await?;
//! let registry = Arc::new(WorkerRegistry::new(cluster.clone(), LoadBalancingStrategy::LeastConnections));
//! registry.start().await?;
//! let client = ClusterClient::new(registry.clone(), rpc.clone())?;
//!
//! // Worker: registers a handler, binds, enables the cluster, joins the director.
//! let mut worker = Server::new(rpc);
//! worker.register("compute", |req: Bytes| async move {
//!     Ok(Bytes::from([b"done: ".as_slice(), &req].concat()))
//! })?;
//! worker.bind("127.0.0.1:0".parse()?).await?;
//! let wc = worker.enable_cluster(config("worker").with_tags([("role", "worker")])).await?;
//! wc.join(vec![cluster.gossip_addr()]).await?;
//! worker.spawn()?;
//!
//! // Wait (bounded) until the director's registry lists the worker, then call it.
//! for _ in 0..500 {
//!     if !registry.workers().await.is_empty() { break; }
//!     tokio::time::sleep(std::time::Duration::from_millis(10)).await;
//! }
//! let answer = client.call_worker("compute", "job-1", Some("role=worker")).await?;
//! assert_eq!(&answer[..], b"done: job-1");
//!
//! worker.shutdown().await?; // leaves first: the director sees it as left
//! director.shutdown().await?;
//! # Ok::<(), Box<dyn std::error::Error>>(())
//! # })?;
//! # Ok(())
//! # }
//! ```
//!
//! See [`rpc`] for the call path, failover rules and which runtime set-up is fastest.
//!
//! ## Security
//! With [`ClusterConfig::with_cluster_key`] or [`ClusterConfig::with_keyring`] every gossip
//! datagram is encrypted and authenticated ([`shoal_core::envelope`]); datagrams that fail
//! are dropped and counted ([`ClusterStats::unauthenticated`]). Keys rotate live with
//! [`Cluster::add_key`], [`Cluster::use_primary_key`] and [`Cluster::remove_key`]. Without a
//! key gossip is plaintext: for trusted networks and development only.
//!
//! RPC runs on QUIC with TLS 1.3 (rustls): real certificates and optional mutual TLS via
//! [`TlsConfig`], or generated development certificates that say so ([`rpc::TlsConfig`]).
//!
//! ## Layout
//! `runtime` ([`TokioRuntime`]), `config`, `error`, `cluster` (membership), `registry`
//! ([`WorkerRegistry`] and the shared balancer + connection-pool state, loom-tested with
//! `RUSTFLAGS="--cfg shoal_loom" cargo test -p shoal-tokio --release --lib loom`), and
//! [`rpc`] (server, client, TLS, config, errors).
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
    CallError, CallOptions, CallResponse, ClientEndpoints, ClusterClient, HandlerError, RpcConfig,
    Server, ServerError, TlsConfig,
};
pub use runtime::TokioRuntime;
pub use shoal_core::envelope::{Key, Keyring};
pub use shoal_core::rpc::call::CallPhase;
pub use shoal_core::{MemberState, NodeId};
