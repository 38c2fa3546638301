//! A client's once-a-second metrics task outlives nothing it should not: when the nodes stop
//! and the client is dropped on tokio's multi-thread runtime (where each node's drivers run
//! on a `shoal-net` thread that ends with the node), the task ends quietly. It used to sleep
//! on the node's network-thread timer and panicked ("A Tokio 1.x context was found, but it is
//! being shutdown") once that thread's runtime shut down. One test in this binary, because it
//! installs a process-wide panic hook.

use bytes::Bytes;
use shoal_tokio::{
    ClusterClient, ClusterConfig, LoadBalancingStrategy, RpcConfig, Server, WorkerRegistry,
};
use std::sync::atomic::{AtomicUsize, Ordering};
use std::sync::Arc;
use std::time::{Duration, Instant};

static PANICS: AtomicUsize = AtomicUsize::new(0);

fn config(name: &str) -> ClusterConfig {
    ClusterConfig::default()
        .with_bind_addr("127.0.0.1:0".parse().unwrap())
        .with_core_config(shoal_tokio::core::Config::local())
        .with_cluster_key([6; 32])
        .with_name(name)
}

async fn call_then_stop_everything() {
    let rpc = RpcConfig::insecure_dev();
    let mut director = Server::new(rpc.clone());
    let cluster = director.enable_cluster(config("director")).await.unwrap();
    let registry = Arc::new(WorkerRegistry::new(
        cluster.clone(),
        LoadBalancingStrategy::RoundRobin,
    ));
    registry.start().await.unwrap();
    let client = ClusterClient::new(registry.clone(), rpc.clone()).unwrap();

    let mut worker = Server::new(rpc);
    worker
        .register("echo", |req: Bytes| async move { Ok(req) })
        .unwrap();
    worker.bind("127.0.0.1:0".parse().unwrap()).await.unwrap();
    let wc = worker
        .enable_cluster(config("worker").with_tags([("role", "worker")]))
        .await
        .unwrap();
    wc.join(vec![cluster.gossip_addr()]).await.unwrap();
    worker.spawn().unwrap();
    let deadline = Instant::now() + Duration::from_secs(15);
    while registry.workers().is_empty() {
        assert!(Instant::now() < deadline, "the worker never appeared");
        tokio::time::sleep(Duration::from_millis(10)).await;
    }
    // The first finished call starts the metrics task.
    let answer = client
        .call_worker("echo", "hi", Some("role=worker"))
        .await
        .unwrap();
    assert_eq!(&answer[..], b"hi");
    worker.shutdown().await.unwrap();
    director.shutdown().await.unwrap();
    drop(client);
    drop(registry);
    drop(wc);
    drop(cluster);
}

#[test]
fn the_metrics_task_ends_quietly_when_the_nodes_stop() {
    let default = std::panic::take_hook();
    std::panic::set_hook(Box::new(move |info| {
        PANICS.fetch_add(1, Ordering::SeqCst);
        default(info);
    }));
    let app = tokio::runtime::Builder::new_multi_thread()
        .worker_threads(2)
        .thread_name("app-worker")
        .enable_all()
        .build()
        .unwrap();
    app.block_on(async {
        call_then_stop_everything().await;
        // The metrics task wakes once a second: give it three ticks after the nodes' network
        // threads ended (this waits for a periodic task to run, nothing to synchronise with).
        tokio::time::sleep(Duration::from_secs(3)).await;
    });
    drop(app);
    assert_eq!(
        PANICS.load(Ordering::SeqCst),
        0,
        "a task panicked while the nodes stopped (output above)"
    );
}
