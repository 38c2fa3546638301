//! Set-up shared by the runtime tests: a director with a worker registry and a client, and
//! one worker that joined it and serves what the caller registered.

use bytes::Bytes;
use shoal_tokio::{
    Cluster, ClusterClient, ClusterConfig, LoadBalancingStrategy, RpcConfig, Server, WorkerRegistry,
};
use std::future::Future;
use std::sync::Arc;
use std::time::{Duration, Instant};

/// A loopback node on the local preset, under `key`.
pub fn config(name: &str, key: u8) -> ClusterConfig {
    ClusterConfig::default()
        .with_bind_addr("127.0.0.1:0".parse().unwrap())
        .with_core_config(shoal_tokio::core::Config::local())
        .with_cluster_key([key; 32])
        .with_name(name)
}

/// A director (registry and client) and one worker with `role=worker`, once the registry
/// sees the worker. Fields a test does not read are still held: the nodes live as long as
/// the pair.
#[allow(dead_code)]
pub struct Pair {
    pub director: Server,
    pub cluster: Cluster,
    pub registry: Arc<WorkerRegistry>,
    pub client: ClusterClient,
    pub worker: Server,
    pub worker_cluster: Cluster,
}

/// Starts a [`Pair`] whose worker serves `method` with `handler`; waits (bounded, 15 s)
/// until the registry lists the worker.
pub async fn director_and_worker<F, Fut>(key: u8, method: &str, handler: F) -> Pair
where
    F: Fn(Bytes) -> Fut + Send + Sync + 'static,
    Fut: Future<Output = Result<Bytes, shoal_tokio::HandlerError>> + Send + 'static,
{
    let rpc = RpcConfig::insecure_dev();
    let mut director = Server::new(rpc.clone());
    let cluster = director
        .enable_cluster(config("director", key))
        .await
        .unwrap();
    let registry = Arc::new(WorkerRegistry::new(
        cluster.clone(),
        LoadBalancingStrategy::LeastConnections,
    ));
    registry.start().await.unwrap();
    let client = ClusterClient::new(registry.clone(), rpc.clone()).unwrap();

    let mut worker = Server::new(rpc);
    worker.register(method, handler).unwrap();
    worker.bind("127.0.0.1:0".parse().unwrap()).await.unwrap();
    let worker_cluster = worker
        .enable_cluster(config("worker", key).with_tags([("role", "worker")]))
        .await
        .unwrap();
    worker_cluster
        .join(vec![cluster.gossip_addr()])
        .await
        .unwrap();
    worker.spawn().unwrap();
    let deadline = Instant::now() + Duration::from_secs(15);
    while registry.workers().is_empty() {
        assert!(Instant::now() < deadline, "the worker never appeared");
        tokio::time::sleep(Duration::from_millis(10)).await;
    }
    Pair {
        director,
        cluster,
        registry,
        client,
        worker,
        worker_cluster,
    }
}
