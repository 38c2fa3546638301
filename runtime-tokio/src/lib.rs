//! # shoal-tokio
//!
//! Shoal on tokio: gossip membership, failure detection and load-balanced QUIC RPC, with the
//! names people migrating from rpcnet know ([`ClusterConfig`], [`Cluster::join`],
//! [`Cluster::set_tag`], [`Cluster::subscribe`], [`WorkerRegistry`], [`ClusterClient`]).
//!
//! This crate is a facade: everything runs in the runtime-generic network layer
//! ([`shoal_net`]) over the sans-IO core ([`shoal_core`]); here is only the binding to tokio
//! ([`Tokio`]: quinn's tokio runtime, and `tokio::spawn`) and the public types instantiated
//! with it. `shoal-smol` is the same on smol: code written against one compiles against the
//! other by changing the crate name.
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
//!     if !registry.workers().is_empty() { break; }
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
//! Use inside a tokio runtime with the time and IO drivers on (`enable_all`).
#![forbid(unsafe_code)]
#![deny(missing_docs)]

mod network_thread;

use std::future::Future;
use std::sync::Arc;

/// The tokio binding of [`shoal_net`]: quinn's `TokioRuntime` (tokio timers and UDP reactor)
/// and `tokio::spawn`. A marker type; the aliases below use it.
///
/// On tokio's multi-thread runtime (`#[tokio::main]`'s default), each node or server started
/// gets a network thread of its own ([`shoal_net::NetworkThread`]: one OS thread named
/// `shoal-net` with a current-thread runtime) for its protocol drivers: the gossip loop and
/// quinn's endpoint and connection drivers. Calls and handlers stay on the application's
/// runtime. On a current-thread runtime everything runs on the caller's runtime. Why:
/// docs/adapters.md.
#[derive(Clone, Copy, Debug, Default)]
pub struct Tokio;

impl shoal_net::RuntimeBinding for Tokio {
    // Called when a node starts or a server binds, never per call: no need to cache it.
    fn runtime() -> Arc<dyn quinn::Runtime> {
        Arc::new(quinn::TokioRuntime)
    }

    fn spawn<F: Future<Output = ()> + Send + 'static>(future: F) {
        tokio::spawn(future);
    }

    fn network_thread() -> std::io::Result<Option<Arc<dyn shoal_net::NetworkThread>>> {
        match tokio::runtime::Handle::try_current() {
            Ok(app) if app.runtime_flavor() == tokio::runtime::RuntimeFlavor::MultiThread => {
                Ok(Some(network_thread::TokioThread::start(app)?))
            }
            _ => Ok(None),
        }
    }
}

shoal_net::facade!(Tokio, "tokio");

/// The operations guide (docs/operations.md): its Rust blocks compile and run as doc tests.
#[cfg(doctest)]
#[doc = include_str!("../../docs/operations.md")]
pub struct OperationsGuide;

/// The migration guide from rpcnet (docs/migrating-from-rpcnet.md): every Rust block compiles
/// and runs as a doc test, including the guide's discovery and load-balancing tests.
#[cfg(doctest)]
#[doc = include_str!("../../docs/migrating-from-rpcnet.md")]
pub struct MigrationGuide;
