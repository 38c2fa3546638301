//! The client's connection pool on the binding's runtime: a closed pooled connection is
//! replaced without failing a call, and per-task connection affinity (the runtime-neutral
//! task identity) keeps a task on one connection and spreads tasks over several.

use super::{sleep, spawn, timeout, RuntimeBinding};
use crate::registry::state::PooledConn;
use crate::{
    CallOptions, ClientEndpoints, ClusterClient, ClusterConfig, RpcConfig, Server, WorkerRegistry,
};
use bytes::Bytes;
use std::net::SocketAddr;
use std::sync::Arc;
use std::time::Duration;

fn cluster_config(name: &str) -> ClusterConfig {
    ClusterConfig::default()
        .with_bind_addr(SocketAddr::from(([127, 0, 0, 1], 0)))
        .with_core_config(shoal_core::Config::local())
        .with_name(name)
}

/// A pooled connection that closed after it was pooled (here: closed locally; in
/// production an idle timeout or the worker closing it) costs the next call nothing: the
/// failed stream open purges it and a new connection carries the call, on the same
/// worker, as its first attempt.
pub async fn a_closed_pooled_connection_is_replaced_without_failing_the_call<R: RuntimeBinding>() {
    closed_connection_replaced::<R>(ClientEndpoints::PerConnection).await;
}

/// The same with every connection on the node's own endpoint.
pub async fn a_closed_pooled_connection_on_the_shared_endpoint_is_replaced_too<
    R: RuntimeBinding,
>() {
    closed_connection_replaced::<R>(ClientEndpoints::Shared).await;
}

/// A director (registry and client with `client_config`) and one echo worker joined to it.
struct Pair<R: RuntimeBinding> {
    director: Server<R>,
    worker: Server<R>,
    registry: Arc<WorkerRegistry<R>>,
    client: ClusterClient<R>,
    id: shoal_core::NodeId,
}

async fn pair<R: RuntimeBinding>(prefix: &str, client_config: RpcConfig) -> Pair<R> {
    let mut director = Server::<R>::new(RpcConfig::insecure_dev());
    let cluster = director
        .enable_cluster(cluster_config(&format!("{prefix}-director")))
        .await
        .expect("director cluster");
    let registry = Arc::new(WorkerRegistry::new(
        cluster.clone(),
        crate::LoadBalancingStrategy::RoundRobin,
    ));
    registry.start().await.expect("registry");
    let client = ClusterClient::new(registry.clone(), client_config).expect("client");
    let mut worker = Server::<R>::new(RpcConfig::insecure_dev());
    worker
        .register("echo", |p: Bytes| async move { Ok(p) })
        .expect("register");
    worker
        .bind(SocketAddr::from(([127, 0, 0, 1], 0)))
        .await
        .expect("bind");
    let wc = worker
        .enable_cluster(cluster_config(&format!("{prefix}-worker")).with_tags([("role", "worker")]))
        .await
        .expect("worker cluster");
    wc.join(vec![cluster.gossip_addr()]).await.expect("join");
    worker.spawn().expect("serve");
    Pair {
        director,
        worker,
        registry,
        client,
        id: wc.id(),
    }
}

async fn closed_connection_replaced<R: RuntimeBinding>(endpoints: ClientEndpoints) {
    let config = RpcConfig::insecure_dev().with_client_endpoints(endpoints);
    let p = pair::<R>("pool", config).await;
    let (registry, client, id) = (&p.registry, &p.client, p.id);
    let seen = timeout::<R, _>(Duration::from_secs(10), async {
        while registry.workers().iter().all(|w| w.id != id) {
            sleep::<R>(Duration::from_millis(10)).await;
        }
    })
    .await;
    assert!(seen.is_ok(), "the registry never saw the worker");

    let call = || client.call("echo", "hi", Some("role=worker"), CallOptions::default());
    let first = call().await.expect("first call");
    assert_eq!((first.worker, first.attempts), (id, 1));
    let pooled = registry.shared.lock().pooled(id);
    assert_eq!(pooled.len(), 1);
    PooledConn::close(&pooled[0]);

    let again = call().await.expect("the call after the close");
    assert_eq!(
        (again.worker, again.attempts),
        (id, 1),
        "not retried elsewhere"
    );
    assert_eq!(&again.payload[..], b"hi");
    let now_pooled = registry.shared.lock().pooled(id);
    assert_eq!(now_pooled.len(), 1, "replaced, not added to");
    assert_ne!(now_pooled[0].stable_id(), pooled[0].stable_id());
    let w = registry
        .workers()
        .into_iter()
        .find(|w| w.id == id)
        .expect("the worker");
    assert_eq!(
        w.stats.connections,
        (0, 1, 0),
        "one ready connection: {w:?}"
    );
    assert_eq!(w.stats.failed, 0, "the worker was not blamed: {w:?}");
    let _ = p.worker.shutdown().await;
    let _ = p.director.shutdown().await;
}

/// STREAM frames sent so far on each of `worker`'s pooled connections, by stable id.
fn streams_sent<R: RuntimeBinding>(
    registry: &WorkerRegistry<R>,
    worker: shoal_core::NodeId,
) -> std::collections::BTreeMap<usize, u64> {
    registry
        .shared
        .lock()
        .pooled(worker)
        .iter()
        .map(|c| (c.stable_id(), c.stats().frame_tx.stream))
        .collect()
}

/// Which connections carried the calls of each of `tasks` tasks, `calls` calls each. The
/// tasks are alive together for the whole run (a task's identity is unique only among live
/// tasks: a finished task's memory may be reused by the next), and take turns calling, so
/// each turn's growth in STREAM frames belongs to one task.
async fn connections_used_per_task<R: RuntimeBinding>(
    client: &ClusterClient<R>,
    registry: &WorkerRegistry<R>,
    worker: shoal_core::NodeId,
    tasks: usize,
    calls: usize,
) -> Vec<Vec<usize>> {
    use futures_channel::oneshot;
    let mut turns = Vec::new();
    let mut exits = Vec::new();
    let mut handles = Vec::new();
    for _ in 0..tasks {
        let (go_tx, go_rx) = oneshot::channel::<()>();
        let (done_tx, done_rx) = oneshot::channel::<()>();
        let (exit_tx, exit_rx) = oneshot::channel::<()>();
        let c = client.clone();
        handles.push(spawn::<R, _>(async move {
            let _ = go_rx.await;
            for _ in 0..calls {
                c.call_worker("echo", "x", Some("role=worker"))
                    .await
                    .expect("call");
            }
            let _ = done_tx.send(());
            let _ = exit_rx.await;
        }));
        turns.push((go_tx, done_rx));
        exits.push(exit_tx);
    }
    let mut used = Vec::new();
    for (go, done) in turns {
        let before = streams_sent(registry, worker);
        let _ = go.send(());
        timeout::<R, _>(Duration::from_secs(10), done)
            .await
            .expect("the task's calls finished")
            .expect("the task is alive");
        let after = streams_sent(registry, worker);
        used.push(
            after
                .iter()
                .filter(|(id, n)| before.get(id).is_some_and(|b| *n > b))
                .map(|(id, _)| *id)
                .collect(),
        );
    }
    for exit in exits {
        let _ = exit.send(());
    }
    for h in handles {
        h.await.expect("the task finished");
    }
    used
}

/// Per-task connection affinity with the runtime-neutral task identity (the waker's data
/// pointer): every call of one task goes on one connection, and different tasks spread over
/// the worker's connections.
pub async fn a_task_keeps_its_connection_and_tasks_spread_over_connections<R: RuntimeBinding>() {
    let config = RpcConfig::insecure_dev().with_connections_per_worker(2);
    let p = pair::<R>("aff", config).await;
    let (registry, client, id) = (&p.registry, &p.client, p.id);
    // Calls until the pool holds both connections (the pool opens the second in the
    // background once the first is in use).
    let warm = timeout::<R, _>(Duration::from_secs(10), async {
        while registry.shared.lock().pooled(id).len() < 2 {
            if registry.workers().iter().any(|w| w.id == id) {
                let _ = client.call_worker("echo", "w", Some("role=worker")).await;
            }
            sleep::<R>(Duration::from_millis(10)).await;
        }
    })
    .await;
    assert!(warm.is_ok(), "the pool never held two connections");

    let mut used = std::collections::BTreeSet::new();
    for (task, conns) in connections_used_per_task(client, registry, id, 16, 6)
        .await
        .into_iter()
        .enumerate()
    {
        assert_eq!(
            conns.len(),
            1,
            "task {task}: all its calls on one connection, got {conns:?}"
        );
        used.extend(conns);
    }
    // Sixteen tasks all hashing to one of two connections: 2^-15 if identities differ.
    assert_eq!(used.len(), 2, "tasks spread over both connections");
    let _ = p.worker.shutdown().await;
    let _ = p.director.shutdown().await;
}
