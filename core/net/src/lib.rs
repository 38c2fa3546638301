//! # shoal-net
//!
//! The runtime-generic network layer of Shoal, written once for every async runtime (quinn's
//! shape: `quinn-proto` / `quinn` / runtime files). It holds the drive loop that owns the
//! sans-IO core ([`shoal_core::Node`]), the UDP gossip socket, the membership handle
//! ([`Cluster`]), the QUIC RPC [`Server`], [`ClusterClient`] and [`WorkerRegistry`], TLS and
//! config. It names no runtime: everything runs on quinn's runtime abstraction
//! ([`quinn::Runtime`]), supplied by a zero-sized [`RuntimeBinding`]. Users take a facade,
//! `shoal-tokio` or `shoal-smol`, whose type aliases (`shoal_tokio::Server` =
//! `shoal_net::Server<Tokio>`) make the same code run on either runtime.
//!
//! ## Quickstart: a binding and two nodes
//!
//! A binding is one function (here quinn's smol runtime; the facades ship tokio's and smol's).
//!
//! ```
//! use shoal_net::{Cluster, ClusterConfig, RuntimeBinding};
//! use std::sync::Arc;
//!
//! struct Smol;
//! impl RuntimeBinding for Smol {
//!     fn runtime() -> Arc<dyn quinn::Runtime> {
//!         Arc::new(quinn::SmolRuntime)
//!     }
//! }
//!
//! # fn main() -> Result<(), Box<dyn std::error::Error>> {
//! smol::block_on(async {
//!     let config = ClusterConfig::default()
//!         .with_bind_addr("127.0.0.1:0".parse()?)
//!         .with_core_config(shoal_net::core::Config::local())
//!         .with_cluster_key([7; 32]);
//!     let a = Cluster::<Smol>::start(config.clone().with_name("a")).await?;
//!     let b = Cluster::<Smol>::start(config.with_name("b")).await?;
//!     b.join(vec![a.gossip_addr()]).await?;
//!     assert_eq!(b.live_members().await?.len(), 2);
//!     b.shutdown().await?;
//!     a.shutdown().await?;
//!     Ok::<(), Box<dyn std::error::Error>>(())
//! })
//! # }
//! ```
//!
//! ## Layout
//! `runtime` ([`RuntimeBinding`], timers built from `Runtime::new_timer`, the runtime-neutral
//! task identity and [`JoinHandle`]), [`driver`] (the drive loop and the event fan-out),
//! `config`, `error`, `cluster` (membership), `registry` ([`WorkerRegistry`] and the shared
//! balancer + pool state, loom-tested with `scripts/loom.sh`), [`rpc`] (server, client, TLS,
//! config, errors) and, behind the `conformance` feature, `conformance`: the behaviour
//! suite every facade runs on its runtime.
//!
//! ## Security
//! With [`ClusterConfig::with_cluster_key`] or [`ClusterConfig::with_keyring`] every gossip
//! datagram is encrypted and authenticated ([`shoal_core::envelope`]); datagrams that fail
//! are dropped and counted ([`ClusterStats::unauthenticated`]). Keys rotate live with
//! [`Cluster::add_key`], [`Cluster::use_primary_key`] and [`Cluster::remove_key`]. Without a
//! key gossip is plaintext: for trusted networks and development only. RPC runs on QUIC with
//! TLS 1.3 (rustls): real certificates and optional mutual TLS via [`TlsConfig`], or
//! generated development certificates that say so ([`rpc::TlsConfig`]).
#![forbid(unsafe_code)]
#![deny(missing_docs)]

mod cluster;
mod config;
#[cfg(feature = "conformance")]
pub mod conformance;
pub mod driver;
mod error;
pub mod metrics;
mod registry;
pub mod rpc;
mod runtime;

/// The sans-IO core this layer drives.
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
pub use runtime::{sleep, JoinHandle, NetworkThread, RuntimeBinding, TaskDropped};
pub use shoal_core::envelope::{Key, Keyring};
pub use shoal_core::rpc::call::CallPhase;
pub use shoal_core::{MemberState, NodeId};
