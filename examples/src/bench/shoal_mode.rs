//! The Shoal mode, waiting for shoal-tokio's RPC API (`Server` with handlers,
//! `enable_cluster`, `WorkerRegistry`, `ClusterClient::call_worker`).
//!
//! What goes here once it is merged (everything else is shared with the baseline):
//! * [`worker_main`]: start a `Server` on `listen` with an `echo` handler returning its
//!   payload, `enable_cluster` tagged `role=worker` (bind `127.0.0.1:0`), print a
//!   [`ServerReady`] line whose `addr` is the worker's *gossip* address (the client's seed)
//!   and whose `cert_der` is the worker's development certificate, then serve.
//! * [`connect`]: start a client `Cluster`, join the workers' gossip addresses, wait until
//!   every worker is live, build `WorkerRegistry::new(cluster, LeastConnections)` and a
//!   `ClusterClient` with `opts.connections` connections per worker, trusting the certs.
//! * [`ShoalEcho::call`]: `client.call_worker("echo", payload, Some("role=worker"))`, check
//!   the reply length as [`super::quinn_echo::QuinnEcho`] does.
//!
//! Until then every entry point returns [`BenchError::ShoalRpcUnavailable`]; no number is
//! ever produced for this mode.

use super::load::CallTarget;
use super::procs::ServerReady;
use super::{BenchError, BenchOptions, Payload, RuntimeFlavor};
use std::convert::Infallible;
use std::net::SocketAddr;

/// Whether the Shoal mode can run (it cannot yet).
pub fn available() -> Result<(), BenchError> {
    Err(BenchError::ShoalRpcUnavailable)
}

/// The client side of the Shoal mode: `ClusterClient::call_worker("echo", ...)`.
/// Uninhabited until the RPC API exists, so it cannot produce a measurement.
#[derive(Debug)]
pub struct ShoalEcho {
    never: Infallible,
}

/// Connects the Shoal client to the workers.
pub async fn connect(
    _workers: &[ServerReady],
    _opts: &BenchOptions,
    _payload: Payload,
) -> Result<ShoalEcho, BenchError> {
    Err(BenchError::ShoalRpcUnavailable)
}

/// A Shoal echo worker process.
pub fn worker_main(_listen: SocketAddr, _runtime: RuntimeFlavor) -> Result<(), BenchError> {
    available()
}

impl CallTarget for ShoalEcho {
    async fn call(&self, _slot: usize) -> Result<(), String> {
        match self.never {}
    }
}
