//! The Shoal mode: echo workers in other processes, called through
//! `ClusterClient::call_worker("echo", payload, Some("role=worker"))`.
//!
//! * [`worker_main`]: a `Server` with an `echo` handler returning its payload,
//!   `enable_cluster` tagged `role=worker`; it prints a [`ServerReady`] line whose `addr` is
//!   its *gossip* address (the client's seed) and whose `cert_der` is the certificate of the
//!   development CA it generated (the client trusts it; verification stays on).
//! * [`connect`]: a client `Cluster` joins the workers, waits until the registry lists every
//!   worker, and builds a `ClusterClient` with `--connections` connections per worker and as
//!   many streams per connection as the baseline gets.
//!
//! Same processes, same runtime flavour, same connection count as the baseline.

use super::load::{check_echo, CallTarget};
use super::procs::ServerReady;
use super::quinn_echo::ClientEndpoints;
use super::{streams_per_connection, BenchError, BenchOptions, Payload, RuntimeFlavor};
use bytes::Bytes;
use shoal_net::rpc::{DevCa, RpcConfig, TlsConfig};
use shoal_net::{
    ClusterClient, ClusterConfig, LoadBalancingStrategy, RuntimeBinding, Server, WorkerRegistry,
};
use std::net::SocketAddr;
use std::sync::Arc;
use std::time::{Duration, Instant};

fn setup<E: std::fmt::Display>(what: &'static str) -> impl FnOnce(E) -> BenchError {
    move |e| BenchError::Shoal(format!("{what}: {e}"))
}

fn cluster_config(bind: SocketAddr, name: String) -> ClusterConfig {
    ClusterConfig::default()
        .with_bind_addr(bind)
        .with_name(name)
        .with_cluster_name("shoal-bench")
        .with_core_config(shoal_core::Config::local())
}

/// The client side: `ClusterClient::call_worker("echo", ...)`, on the runtime `R` binds
/// (`shoal_tokio::Tokio` or `shoal_smol::Smol`).
pub struct ShoalEcho<R> {
    client: ClusterClient<R>,
    payload: Bytes,
}

impl<R> std::fmt::Debug for ShoalEcho<R> {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.debug_struct("ShoalEcho").finish_non_exhaustive()
    }
}

/// Joins the workers' cluster and builds the client.
pub async fn connect<R: RuntimeBinding>(
    workers: &[ServerReady],
    opts: &BenchOptions,
    payload: Payload,
) -> Result<ShoalEcho<R>, BenchError> {
    let ca = DevCa::generate().map_err(setup("generating a CA"))?;
    let (chain, key) = ca
        .issue(shoal_net::rpc::DEFAULT_SERVER_NAME)
        .map_err(setup("issuing a certificate"))?;
    let mut roots = vec![ca.cert_der()];
    roots.extend(workers.iter().map(|w| w.cert_der.clone().into()));
    let tls = TlsConfig::new(chain, key, roots);
    let cluster = shoal_net::Cluster::<R>::start(cluster_config(
        "127.0.0.1:0".parse().expect("literal address"),
        "bench-client".into(),
    ))
    .await
    .map_err(setup("starting the client cluster"))?;
    cluster
        .join(workers.iter().map(|w| w.addr).collect())
        .await
        .map_err(setup("joining the workers"))?;
    let registry = Arc::new(WorkerRegistry::new(
        cluster,
        LoadBalancingStrategy::LeastConnections,
    ));
    registry
        .start()
        .await
        .map_err(setup("starting the registry"))?;
    let deadline = Instant::now() + Duration::from_secs(20);
    while registry.workers().len() < workers.len() {
        if Instant::now() > deadline {
            return Err(BenchError::Shoal(
                "workers did not all appear within 20 s".into(),
            ));
        }
        super::rt::sleep(Duration::from_millis(20)).await;
    }
    let per_worker = opts.connections.div_ceil(workers.len().max(1)).max(1);
    let config = RpcConfig::new(tls)
        .with_connections_per_worker(u16::try_from(per_worker).unwrap_or(u16::MAX))
        .with_max_streams_per_connection(streams_per_connection(opts.inflight, opts.connections))
        .with_client_endpoints(match opts.client_endpoints {
            ClientEndpoints::PerConnection => shoal_net::ClientEndpoints::PerConnection,
            ClientEndpoints::Shared => shoal_net::ClientEndpoints::Shared,
        });
    let client = ClusterClient::new(registry, config).map_err(setup("building the client"))?;
    Ok(ShoalEcho {
        client,
        payload: Bytes::copy_from_slice(&payload),
    })
}

/// A Shoal echo worker process: serves until killed or until its stdin closes.
pub fn worker_main(
    listen: SocketAddr,
    runtime: RuntimeFlavor,
    max_streams: u32,
) -> Result<(), BenchError> {
    match runtime {
        RuntimeFlavor::Smol => runtime.block_on(serve::<shoal_smol::Smol>(listen, max_streams))?,
        RuntimeFlavor::CurrentThread | RuntimeFlavor::MultiThread => {
            runtime.block_on(serve::<shoal_tokio::Tokio>(listen, max_streams))?
        }
    }
}

/// The worker: an `echo` handler, the cluster enabled, the ready line printed, served.
async fn serve<R: RuntimeBinding>(listen: SocketAddr, max_streams: u32) -> Result<(), BenchError> {
    {
        let ca = DevCa::generate().map_err(setup("generating a CA"))?;
        let tls = ca.node_config().map_err(setup("issuing a certificate"))?;
        let config = RpcConfig::new(tls).with_max_streams_per_connection(max_streams);
        let mut server = Server::<R>::new(config);
        server
            .register("echo", |payload: Bytes| async move { Ok(payload) })
            .map_err(setup("registering echo"))?;
        let name = format!("bench-worker-{}", std::process::id());
        let cluster = server
            .enable_cluster(cluster_config(listen, name))
            .await
            .map_err(setup("enabling the cluster"))?;
        cluster.set_tag("role", "worker");
        let ready = ServerReady {
            addr: cluster.gossip_addr(),
            cert_der: ca.cert_der().to_vec(),
        };
        println!("{}", ready.line());
        server.run().await.map_err(setup("serving"))?;
        Ok(())
    }
}

impl<R: RuntimeBinding> CallTarget for ShoalEcho<R> {
    async fn call(&self, _slot: usize) -> Result<(), String> {
        let reply = self
            .client
            .call_worker("echo", self.payload.clone(), Some("role=worker"))
            .await
            .map_err(|e| e.to_string())?;
        check_echo(reply.len(), self.payload.len())
    }
}
