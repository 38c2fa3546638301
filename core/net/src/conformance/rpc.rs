//! RPC over QUIC on loopback: a director and workers, the registry, the client, failover,
//! restart, cancellation, shutdown and TLS. Every wait is bounded; waits are on cluster events
//! or on polling the registry, never on a sleep standing in for synchronisation.

use super::{sleep, spawn, timeout, RuntimeBinding};
use crate::core::Config;
use crate::rpc::DevCa;
use crate::{
    CallError, CallOptions, CallPhase, Cluster, ClusterClient, ClusterConfig, ClusterEvent,
    EventStream, LoadBalancingStrategy, NodeId, RpcConfig, Server, TlsConfig, WorkerRegistry,
};
use bytes::Bytes;
use std::collections::BTreeMap;
use std::future::Future;
use std::pin::Pin;
use std::sync::Arc;
use std::time::{Duration, Instant};

const WAIT: Duration = Duration::from_secs(15);
const KEY: [u8; 32] = [9; 32];

fn cluster_config(name: &str, core: Config) -> ClusterConfig {
    ClusterConfig::default()
        .with_bind_addr("127.0.0.1:0".parse().unwrap())
        .with_core_config(core)
        .with_name(name)
        .with_cluster_key(KEY)
        .with_join_timeout(Duration::from_secs(5))
}

fn rpc() -> RpcConfig {
    RpcConfig::insecure_dev()
        .with_idle_timeout(Duration::from_secs(4), Duration::from_secs(1))
        .with_shutdown_timing(Duration::from_millis(300), Duration::from_secs(3))
}

struct Node<R: RuntimeBinding> {
    server: Server<R>,
    cluster: Cluster<R>,
}

impl<R: RuntimeBinding> std::fmt::Debug for Node<R> {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.debug_struct("Node")
            .field("server", &self.server)
            .field("cluster", &self.cluster)
            .finish()
    }
}

fn register_handlers<R: RuntimeBinding>(server: &mut Server<R>, label: &str) {
    let l = Bytes::from(label.to_owned());
    server
        .register("compute", move |_req| {
            let l = l.clone();
            async move { Ok(l) }
        })
        .unwrap();
    let l = Bytes::from(label.to_owned());
    // Simulated work: waits the milliseconds given in the request, answers its label.
    server
        .register("slow", move |req: Bytes| {
            let l = l.clone();
            async move {
                let ms: u64 = std::str::from_utf8(&req).unwrap().parse().unwrap();
                slow_started(&l, 1);
                sleep::<R>(Duration::from_millis(ms)).await;
                Ok(l)
            }
        })
        .unwrap();
    server
        .register("fail", |_req| async { Err("boom".into()) })
        .unwrap();
}

/// `slow` requests each worker label has received so far (labels are unique per test): a
/// test that must know a request reached its handler, not only that a lease was taken,
/// reads this. `add` 0 reads.
fn slow_started(label: &[u8], add: usize) -> usize {
    static STARTED: std::sync::Mutex<BTreeMap<Vec<u8>, usize>> =
        std::sync::Mutex::new(BTreeMap::new());
    let mut started = STARTED.lock().unwrap_or_else(|e| e.into_inner());
    let n = started.entry(label.to_vec()).or_insert(0);
    *n += add;
    *n
}

async fn start_worker_with<R: RuntimeBinding>(
    name: &str,
    seed: std::net::SocketAddr,
    rpc: RpcConfig,
    config: ClusterConfig,
) -> Result<Node<R>, crate::ServerError> {
    let mut server = Server::new(rpc);
    register_handlers::<R>(&mut server, name);
    server.bind("127.0.0.1:0".parse().unwrap()).await?;
    let cluster = server
        .enable_cluster(config.with_tags([("role", "worker"), ("label", name)]))
        .await?;
    cluster.join(vec![seed]).await?;
    server.spawn()?;
    Ok(Node { server, cluster })
}

async fn start_worker<R: RuntimeBinding>(name: &str, seed: std::net::SocketAddr) -> Node<R> {
    start_worker_with::<R>(name, seed, rpc(), cluster_config(name, Config::local()))
        .await
        .expect("worker starts")
}

struct Director<R: RuntimeBinding> {
    node: Node<R>,
    registry: Arc<WorkerRegistry<R>>,
    client: ClusterClient<R>,
    events: EventStream,
}

async fn start_director<R: RuntimeBinding>(
    name: &str,
    strategy: LoadBalancingStrategy,
    core: Config,
) -> Director<R> {
    let mut server = Server::new(rpc());
    let cluster = server
        .enable_cluster(cluster_config(name, core))
        .await
        .unwrap();
    cluster.set_tag("role", "director").await.unwrap();
    let events = cluster.subscribe();
    let registry = Arc::new(WorkerRegistry::new(cluster.clone(), strategy));
    registry.start().await.unwrap();
    let client = ClusterClient::new(registry.clone(), rpc()).unwrap();
    server.spawn().unwrap();
    Director {
        node: Node { server, cluster },
        registry,
        client,
        events,
    }
}

/// Polls the registry (bounded) until `pred` holds on its live workers.
async fn wait_workers<R: RuntimeBinding>(
    reg: &WorkerRegistry<R>,
    what: &str,
    pred: impl Fn(&[crate::WorkerInfo]) -> bool,
) {
    let start = Instant::now();
    loop {
        let live: Vec<_> = reg
            .workers()
            .into_iter()
            .filter(|w| w.state.is_some_and(|s| s.is_live()))
            .collect();
        if pred(&live) {
            return;
        }
        assert!(
            start.elapsed() < WAIT,
            "timed out waiting for {what}: {live:?}"
        );
        sleep::<R>(Duration::from_millis(20)).await;
    }
}

async fn wait_event<R: RuntimeBinding>(
    events: &mut EventStream,
    what: &str,
    mut pred: impl FnMut(&ClusterEvent) -> bool,
) -> ClusterEvent {
    let r = timeout::<R, _>(WAIT, async {
        while let Some(e) = events.recv().await {
            if pred(&e) {
                return Some(e);
            }
        }
        None
    })
    .await;
    match r {
        Ok(Some(e)) => e,
        Ok(None) => panic!("event stream closed waiting for {what}"),
        Err(_) => panic!("timed out waiting for {what}"),
    }
}

async fn cluster_of<R: RuntimeBinding>(
    strategy: LoadBalancingStrategy,
    n: usize,
    prefix: &str,
) -> (Director<R>, Vec<Node<R>>) {
    let d = start_director::<R>(&format!("{prefix}-director"), strategy, Config::local()).await;
    let seed = d.node.cluster.gossip_addr();
    let mut workers = Vec::new();
    for i in 1..=n {
        workers.push(start_worker::<R>(&format!("{prefix}-w{i}"), seed).await);
    }
    wait_workers(&d.registry, "workers", |w| w.len() == n).await;
    (d, workers)
}

fn label(b: &Bytes) -> String {
    String::from_utf8(b.to_vec()).unwrap()
}

/// Runs `total` calls of `method` with `concurrency` in flight, counting answers by label.
async fn spread<R: RuntimeBinding>(
    client: &ClusterClient<R>,
    method: &str,
    payload: &str,
    total: usize,
    concurrency: usize,
) -> BTreeMap<String, usize> {
    type Fut<'a> = Pin<Box<dyn Future<Output = Vec<String>> + 'a>>;
    let per = total / concurrency;
    let mut futs: Vec<Fut<'_>> = (0..concurrency)
        .map(|_| {
            Box::pin(async move {
                let mut out = Vec::new();
                for _ in 0..per {
                    let r = client
                        .call_worker(method, payload.to_owned(), Some("role=worker"))
                        .await
                        .expect("call succeeds");
                    out.push(label(&r));
                }
                out
            }) as Fut<'_>
        })
        .collect();
    let mut counts = BTreeMap::new();
    let mut done = vec![false; futs.len()];
    std::future::poll_fn(|cx| {
        for (f, d) in futs.iter_mut().zip(done.iter_mut()) {
            if !*d {
                if let std::task::Poll::Ready(labels) = f.as_mut().poll(cx) {
                    for l in labels {
                        *counts.entry(l).or_insert(0) += 1;
                    }
                    *d = true;
                }
            }
        }
        if done.iter().all(|d| *d) {
            std::task::Poll::Ready(())
        } else {
            std::task::Poll::Pending
        }
    })
    .await;
    counts
}

async fn shutdown_all<R: RuntimeBinding>(d: Director<R>, workers: Vec<Node<R>>) {
    for w in workers {
        let _ = timeout::<R, _>(WAIT, w.server.shutdown()).await;
    }
    let _ = timeout::<R, _>(WAIT, d.node.server.shutdown()).await;
}

/// A call round trips and errors are typed.
pub async fn a_call_round_trips_and_errors_are_typed<R: RuntimeBinding>() {
    let (d, workers) = cluster_of::<R>(LoadBalancingStrategy::RoundRobin, 1, "rt").await;
    let c = &d.client;
    let r = c
        .call_worker("compute", Bytes::new(), Some("role=worker"))
        .await
        .unwrap();
    assert_eq!(label(&r), "rt-w1");
    let r = c
        .call("compute", "x", None, CallOptions::default())
        .await
        .unwrap();
    assert_eq!(r.worker, NodeId::from_name("rt-w1"));
    assert_eq!(r.attempts, 1);

    let e = c
        .call_worker("nope", "x", Some("role=worker"))
        .await
        .unwrap_err();
    assert!(matches!(e, CallError::UnknownMethod { .. }), "{e:?}");
    let e = c
        .call_worker("fail", "x", Some("role=worker"))
        .await
        .unwrap_err();
    assert!(
        matches!(&e, CallError::HandlerFailed { message, .. } if message == "boom"),
        "{e:?}"
    );
    let e = c
        .call_worker("compute", "x", Some("role=gpu"))
        .await
        .unwrap_err();
    assert!(matches!(e, CallError::NoMatchingWorker { .. }), "{e:?}");
    let e = c
        .call_worker("compute", "x", Some("role=,"))
        .await
        .unwrap_err();
    assert!(matches!(e, CallError::BadFilter(_)), "{e:?}");
    assert_eq!(
        std::io::Error::from(e).kind(),
        std::io::ErrorKind::InvalidInput
    );

    // The worker is told the remaining time and gives up; so does the client.
    let opts = CallOptions::default().with_timeout(Duration::from_millis(150));
    let e = c
        .call("slow", "2000", Some("role=worker"), opts)
        .await
        .unwrap_err();
    assert!(matches!(e, CallError::DeadlineExceeded { .. }), "{e:?}");

    // Broadcast reaches every matching worker.
    let all = c
        .call_all_workers("compute", "x", Some("role=worker"))
        .await
        .unwrap();
    assert_eq!(all.len(), 1);
    assert_eq!(label(all[0].1.as_ref().unwrap()), "rt-w1");

    assert_eq!(d.registry.in_flight(), 0);
    let w = &d.registry.workers()[0];
    assert_eq!(w.stats.connections.1, 1, "one pooled connection: {w:?}");
    shutdown_all(d, workers).await;
}

/// Calls spread over workers under every strategy.
pub async fn calls_spread_over_workers_under_every_strategy<R: RuntimeBinding>() {
    let (d, workers) = cluster_of::<R>(LoadBalancingStrategy::RoundRobin, 3, "lb").await;
    for strategy in LoadBalancingStrategy::ALL {
        d.registry.set_strategy(strategy);
        let counts = spread(&d.client, "compute", "", 300, 6).await;
        println!("{strategy:?}: {counts:?}");
        assert_eq!(
            counts.len(),
            3,
            "{strategy:?} reached every worker: {counts:?}"
        );
        let floor = if strategy == LoadBalancingStrategy::RoundRobin {
            60
        } else {
            15
        };
        for (l, n) in &counts {
            assert!(
                *n > floor,
                "{strategy:?}: {l} got only {n} of 300: {counts:?}"
            );
        }
    }
    assert_eq!(d.registry.in_flight(), 0);
    shutdown_all(d, workers).await;
}

/// The migration guide's `test_worker_discovery`, for real.
pub async fn test_worker_discovery<R: RuntimeBinding>() {
    let d = start_director::<R>(
        "disc-director",
        LoadBalancingStrategy::LeastConnections,
        Config::local(),
    )
    .await;
    let w = start_worker::<R>("disc-worker", d.node.cluster.gossip_addr()).await;
    wait_workers(&d.registry, "one worker", |w| w.len() == 1).await;
    let workers = d.registry.workers();
    assert_eq!(workers.len(), 1);
    assert_eq!(workers[0].tags.get("role"), Some(&"worker".to_string()));
    assert_eq!(workers[0].label, "disc-worker");
    assert_eq!(workers[0].rpc_addr, w.server.local_addr());
    let picked = d.registry.select_worker(Some("role=worker")).unwrap();
    assert_eq!(picked.id, w.cluster.id());
    shutdown_all(d, vec![w]).await;
}

/// The migration guide's `test_load_balancing`, for real, with the guide's strategy
/// (LeastConnections): 3 workers, 100 sequential calls, each worker gets more than 20. Every
/// call ties at zero in flight, so this holds only because ties rotate (HAProxy's leastconn).
pub async fn test_load_balancing<R: RuntimeBinding>() {
    let (d, workers) = cluster_of::<R>(LoadBalancingStrategy::LeastConnections, 3, "mig").await;
    let mut counts: BTreeMap<String, usize> = BTreeMap::new();
    for _ in 0..100 {
        let r = d
            .client
            .call_worker("compute", Bytes::new(), Some("role=worker"))
            .await
            .unwrap();
        *counts.entry(label(&r)).or_default() += 1;
    }
    for i in 1..=3 {
        assert!(counts[&format!("mig-w{i}")] > 20, "{counts:?}");
    }
    shutdown_all(d, workers).await;
}

/// A killed worker is routed around and a restarted one gets calls again.
pub async fn a_killed_worker_is_routed_around_and_a_restarted_one_gets_calls_again<
    R: RuntimeBinding,
>() {
    let (mut d, mut workers) = cluster_of::<R>(LoadBalancingStrategy::RoundRobin, 3, "kill").await;
    let victim = workers.remove(1);
    let victim_id = victim.cluster.id();

    // 12 calls in flight, alternately idempotent; round robin puts 4 on each worker. Each
    // call takes its lease before the next is started, so the rotation meets them in order
    // on a multi-thread runtime too (2 of the victim's 4 are idempotent).
    let client = d.client.clone();
    let mut inflight = Vec::new();
    for i in 0..12 {
        let c = client.clone();
        let idem = i % 2 == 0;
        inflight.push(spawn::<R, _>(async move {
            let opts = CallOptions {
                idempotent: idem,
                ..CallOptions::default()
            };
            (
                idem,
                c.call("slow", "1500", Some("role=worker"), opts).await,
            )
        }));
        let start = Instant::now();
        while d.registry.in_flight() < i + 1 {
            assert!(start.elapsed() < WAIT, "call {i} never took its lease");
            sleep::<R>(Duration::from_millis(1)).await;
        }
    }
    wait_workers(&d.registry, "calls in flight on the victim", |w| {
        w.iter().any(|w| w.id == victim_id && w.in_flight == 4)
    })
    .await;
    // A lease is taken before its stream opens: kill only once all four requests reached
    // the victim's handler, or a call still opening its stream fails before its request
    // left and is (rightly) retried even when it is not idempotent.
    let start = Instant::now();
    while slow_started(b"kill-w2", 0) < 4 {
        assert!(
            start.elapsed() < WAIT,
            "the victim's handler never saw 4 calls"
        );
        sleep::<R>(Duration::from_millis(5)).await;
    }

    let killed_at = Instant::now();
    victim.server.kill();
    let ev = wait_event::<R>(&mut d.events, "victim failed", |e| {
        matches!(e, ClusterEvent::NodeFailed(m) | ClusterEvent::NodeLeft(m) if m.id == victim_id)
    })
    .await;
    assert!(matches!(ev, ClusterEvent::NodeFailed(_)), "{ev:?}");
    println!(
        "killed worker detected (local preset) after {:?}",
        killed_at.elapsed()
    );

    // Calls that were on the victim: idempotent ones were retried elsewhere, the others
    // failed with WorkerFailed after their request was sent. Nothing else failed.
    let (mut retried, mut failed) = (0, 0);
    for h in inflight {
        let (idem, r) = timeout::<R, _>(WAIT, h).await.unwrap().unwrap();
        match r {
            Ok(resp) => {
                assert_ne!(label(&resp.payload), "kill-w2");
                if resp.attempts > 1 {
                    assert!(idem);
                    retried += 1;
                }
            }
            Err(CallError::WorkerFailed { worker, during, .. }) => {
                assert!(!idem, "idempotent calls are retried");
                assert_eq!(worker, victim_id);
                assert_eq!(during, CallPhase::Response);
                failed += 1;
            }
            Err(e) => panic!("unexpected error {e:?}"),
        }
    }
    println!("calls in flight on the killed worker: {retried} retried, {failed} failed");
    assert_eq!((retried, failed), (2, 2));

    // Afterwards every call succeeds on the survivors, no error at all.
    let counts = spread(&d.client, "compute", "", 60, 3).await;
    assert!(!counts.contains_key("kill-w2"), "{counts:?}");
    assert_eq!(counts.values().sum::<usize>(), 60);

    // The same name restarts (new port, same id), rejoins, and gets calls again.
    let back = start_worker::<R>("kill-w2", d.node.cluster.gossip_addr()).await;
    assert_eq!(back.cluster.id(), victim_id);
    wait_workers(&d.registry, "victim back", |w| {
        w.len() == 3
            && w.iter()
                .any(|w| w.id == victim_id && w.rpc_addr == back.server.local_addr())
    })
    .await;
    let counts = spread(&d.client, "compute", "", 90, 3).await;
    println!("after restart: {counts:?}");
    assert!(
        counts.get("kill-w2").copied().unwrap_or(0) > 18,
        "{counts:?}"
    );
    assert_eq!(d.registry.in_flight(), 0);
    workers.push(back);
    shutdown_all(d, workers).await;
}

/// A node with the wrong cluster key never joins nor gets calls.
pub async fn a_node_with_the_wrong_cluster_key_never_joins_nor_gets_calls<R: RuntimeBinding>() {
    let (d, workers) = cluster_of::<R>(LoadBalancingStrategy::RoundRobin, 2, "key").await;
    let bad_config = cluster_config("key-intruder", Config::local())
        .with_cluster_key([1; 32])
        .with_join_timeout(Duration::from_millis(800));
    let r = start_worker_with::<R>(
        "key-intruder",
        d.node.cluster.gossip_addr(),
        rpc(),
        bad_config,
    )
    .await;
    assert!(
        matches!(
            r,
            Err(crate::ServerError::Cluster(
                crate::ClusterError::JoinTimeout(_)
            ))
        ),
        "{r:?}"
    );
    let counts = spread(&d.client, "compute", "", 60, 2).await;
    assert!(!counts.contains_key("key-intruder"), "{counts:?}");
    let names: Vec<_> = d.registry.workers().into_iter().map(|w| w.name).collect();
    assert_eq!(names.len(), 2, "{names:?}");
    assert!(d.node.cluster.stats().await.unwrap().unauthenticated() > 0);
    shutdown_all(d, workers).await;
}

/// Dropping a call future releases its lease.
pub async fn dropping_a_call_future_releases_its_lease<R: RuntimeBinding>() {
    let (d, workers) = cluster_of::<R>(LoadBalancingStrategy::LeastConnections, 1, "cancel").await;
    let client = d.client.clone();
    let call = client.call_worker("slow", "5000", Some("role=worker"));
    let mut call = Box::pin(call);
    // Drive the call until the worker has it in flight, then drop it.
    let seen = timeout::<R, _>(WAIT, async {
        loop {
            // Poll the call for 10 ms (it must not finish), then look at the registry.
            if let Ok(r) = timeout::<R, _>(Duration::from_millis(10), &mut call).await {
                panic!("the slow call finished early: {r:?}");
            }
            if d.registry.in_flight() == 1 {
                return;
            }
        }
    })
    .await;
    assert!(seen.is_ok());
    drop(call);
    drop(client);
    assert_eq!(
        d.registry.in_flight(),
        0,
        "dropping the future released the lease"
    );
    let w = &d.registry.workers()[0];
    assert_eq!((w.in_flight, w.stats.cancelled), (0, 1));
    shutdown_all(d, workers).await;
}

/// A gracefully shut down worker is seen as left and calls route away without errors.
pub async fn a_gracefully_shut_down_worker_is_seen_as_left_and_calls_route_away_without_errors<
    R: RuntimeBinding,
>() {
    let (mut d, mut workers) = cluster_of::<R>(LoadBalancingStrategy::RoundRobin, 3, "grace").await;
    let leaving = workers.remove(0);
    let leaving_id = leaving.cluster.id();
    // Calls keep flowing (not idempotent) while the worker shuts down.
    let client = d.client.clone();
    let stop = Arc::new(std::sync::atomic::AtomicBool::new(false));
    let stop2 = stop.clone();
    let load = spawn::<R, _>(async move {
        let mut n = 0;
        while !stop2.load(std::sync::atomic::Ordering::Relaxed) && n < 20_000 {
            client
                .call_worker("compute", Bytes::new(), Some("role=worker"))
                .await
                .expect("no call fails during a graceful shutdown");
            n += 1;
        }
        n
    });
    let shut = spawn::<R, _>(async move { leaving.server.shutdown().await });
    let ev = wait_event::<R>(&mut d.events, "worker left", |e| {
        matches!(e, ClusterEvent::NodeLeft(m) | ClusterEvent::NodeFailed(m) if m.id == leaving_id)
    })
    .await;
    assert!(matches!(ev, ClusterEvent::NodeLeft(_)), "{ev:?}");
    timeout::<R, _>(WAIT, shut).await.unwrap().unwrap().unwrap();
    stop.store(true, std::sync::atomic::Ordering::Relaxed);
    let n = timeout::<R, _>(WAIT, load).await.unwrap().unwrap();
    assert!(n > 0);
    let counts = spread(&d.client, "compute", "", 30, 3).await;
    assert!(!counts.contains_key("grace-w1"), "{counts:?}");
    shutdown_all(d, workers).await;
}

/// Expired or untrusted certificates are refused with a typed error.
pub async fn expired_or_untrusted_certificates_are_refused_with_a_typed_error<R: RuntimeBinding>() {
    let ca = DevCa::generate().unwrap();
    let d = start_director::<R>(
        "tls-director",
        LoadBalancingStrategy::RoundRobin,
        Config::local(),
    )
    .await;
    // A worker whose certificate expired long ago, issued by a CA the director does not
    // trust either way: the handshake is refused, and the call says so.
    let (chain, key) = ca
        .issue_valid_between(crate::rpc::DEFAULT_SERVER_NAME, (2000, 1, 1), (2001, 1, 1))
        .unwrap();
    let tls = TlsConfig::new(chain, key, vec![ca.cert_der()]);
    let w = start_worker_with::<R>(
        "tls-expired",
        d.node.cluster.gossip_addr(),
        RpcConfig::new(tls),
        cluster_config("tls-expired", Config::local()),
    )
    .await
    .unwrap();
    wait_workers(&d.registry, "worker", |w| w.len() == 1).await;
    let e = d
        .client
        .call(
            "compute",
            "x",
            Some("role=worker"),
            CallOptions::default().with_retries(0),
        )
        .await
        .unwrap_err();
    assert!(matches!(e, CallError::ConnectionRefused { .. }), "{e:?}");

    // Mutual TLS: a director trusting the CA but presenting no client certificate is refused
    // by a worker that requires one; one presenting a certificate from the CA gets through.
    let (chain, key) = ca.issue(crate::rpc::DEFAULT_SERVER_NAME).unwrap();
    let mtls = TlsConfig::new(chain, key, vec![ca.cert_der()]).with_client_auth(true);
    let w2 = start_worker_with::<R>(
        "tls-mtls",
        d.node.cluster.gossip_addr(),
        RpcConfig::new(mtls.clone()),
        cluster_config("tls-mtls", Config::local()),
    )
    .await
    .unwrap();
    wait_workers(&d.registry, "two workers", |w| w.len() == 2).await;
    // Trusts the CA but, without client auth configured, presents no certificate.
    let (chain, key) = ca.issue(crate::rpc::DEFAULT_SERVER_NAME).unwrap();
    let no_cert = TlsConfig::new(chain, key, vec![ca.cert_der()]);
    let anonymous = ClusterClient::new(d.registry.clone(), RpcConfig::new(no_cert)).unwrap();
    let e = anonymous
        .call(
            "compute",
            "x",
            Some("label=tls-mtls"),
            CallOptions::default().with_retries(0),
        )
        .await
        .unwrap_err();
    assert!(
        matches!(
            e,
            CallError::ConnectionRefused { .. } | CallError::WorkerFailed { .. }
        ),
        "{e:?}"
    );
    let (chain, key) = ca.issue(crate::rpc::DEFAULT_SERVER_NAME).unwrap();
    let with_cert = TlsConfig::new(chain, key, vec![ca.cert_der()]).with_client_auth(true);
    let trusted = ClusterClient::new(d.registry.clone(), RpcConfig::new(with_cert)).unwrap();
    let r = trusted
        .call_worker("compute", "x", Some("label=tls-mtls"))
        .await
        .unwrap();
    assert_eq!(label(&r), "tls-mtls");
    shutdown_all(d, vec![w, w2]).await;
}

/// Detection time of a killed worker with the LAN preset, measured from the kill to
/// `NodeFailed` at the director (three clusters in parallel, one kill each).
pub async fn lan_preset_detection_time_of_a_killed_worker<R: RuntimeBinding>() {
    let mut runs = Vec::new();
    for run in 0..3 {
        runs.push(spawn::<R, _>(async move {
            let mut d = start_director::<R>(
                &format!("lan{run}-director"),
                LoadBalancingStrategy::RoundRobin,
                Config::lan(),
            )
            .await;
            let seed = d.node.cluster.gossip_addr();
            let mut ws = Vec::new();
            for i in 0..3 {
                let name = format!("lan{run}-w{i}");
                ws.push(
                    start_worker_with::<R>(
                        &name,
                        seed,
                        rpc(),
                        cluster_config(&name, Config::lan()),
                    )
                    .await
                    .unwrap(),
                );
            }
            wait_workers(&d.registry, "lan workers", |w| w.len() == 3).await;
            let victim = ws.remove(0);
            let id = victim.cluster.id();
            let t0 = Instant::now();
            victim.server.kill();
            wait_event::<R>(
                &mut d.events,
                "lan victim failed",
                |e| matches!(e, ClusterEvent::NodeFailed(m) if m.id == id),
            )
            .await;
            let took = t0.elapsed();
            shutdown_all(d, ws).await;
            took
        }));
    }
    let mut times = Vec::new();
    for r in runs {
        times.push(r.await.unwrap());
    }
    println!("LAN preset, loopback: killed worker detected after {times:?}");
}

/// A worker at its call cap answers overloaded and the call moves on.
pub async fn a_worker_at_its_call_cap_answers_overloaded_and_the_call_moves_on<
    R: RuntimeBinding,
>() {
    let d = start_director::<R>(
        "cap-director",
        LoadBalancingStrategy::RoundRobin,
        Config::local(),
    )
    .await;
    let seed = d.node.cluster.gossip_addr();
    let small = start_worker_with::<R>(
        "cap-small",
        seed,
        rpc().with_max_concurrent_calls(1),
        cluster_config("cap-small", Config::local()),
    )
    .await
    .unwrap();
    wait_workers(&d.registry, "capped worker", |w| w.len() == 1).await;
    // One slow call occupies the only slot; a second one pinned to this worker is refused.
    let c = d.client.clone();
    let busy =
        spawn::<R, _>(async move { c.call_worker("slow", "1000", Some("label=cap-small")).await });
    // The lease is taken before the request reaches the worker: wait for the worker's own
    // slot, or a second call can overtake the first and be served.
    let start = Instant::now();
    while small.server.in_flight() == 0 {
        assert!(
            start.elapsed() < WAIT,
            "the slow call never reached the worker"
        );
        sleep::<R>(Duration::from_millis(5)).await;
    }
    let e = d
        .client
        .call(
            "compute",
            "x",
            Some("label=cap-small"),
            CallOptions::default(),
        )
        .await
        .unwrap_err();
    assert!(
        matches!(e, CallError::Overloaded { worker: Some(_) }),
        "{e:?}"
    );
    // With a second worker available, the refused call is retried there instead.
    let other = start_worker::<R>("cap-other", seed).await;
    wait_workers(&d.registry, "two workers", |w| w.len() == 2).await;
    let mut moved = 0;
    for _ in 0..4 {
        let r = d
            .client
            .call("compute", "x", Some("role=worker"), CallOptions::default())
            .await
            .expect("overload is retried elsewhere");
        if r.attempts > 1 {
            moved += 1;
            assert_eq!(label(&r.payload), "cap-other");
        }
    }
    assert!(
        moved > 0,
        "round robin sent some calls to the busy worker first"
    );
    assert_eq!(
        label(&timeout::<R, _>(WAIT, busy).await.unwrap().unwrap().unwrap()),
        "cap-small"
    );
    shutdown_all(d, vec![small, other]).await;
}

/// A graceful shutdown waits for a running call and ends when it does.
pub async fn a_graceful_shutdown_waits_for_a_running_call_and_ends_when_it_does<
    R: RuntimeBinding,
>() {
    let d = start_director::<R>(
        "drain-director",
        LoadBalancingStrategy::RoundRobin,
        Config::local(),
    )
    .await;
    let seed = d.node.cluster.gossip_addr();
    // A drain timeout far beyond the test's bound: if the end of the last call were not
    // signalled, shutdown would sit out the whole timeout and the bound below would fail.
    let rpc = rpc().with_shutdown_timing(Duration::from_millis(300), Duration::from_secs(120));
    let w = start_worker_with::<R>(
        "drain-w1",
        seed,
        rpc,
        cluster_config("drain-w1", Config::local()),
    )
    .await
    .expect("worker starts");
    wait_workers(&d.registry, "the worker", |w| w.len() == 1).await;
    let client = d.client.clone();
    let call =
        spawn::<R, _>(async move { client.call_worker("slow", "800", Some("role=worker")).await });
    // Wait (bounded) until the call runs on the worker, then shut the worker down.
    let start = Instant::now();
    while w.server.in_flight() == 0 {
        assert!(start.elapsed() < WAIT, "the call never reached the worker");
        sleep::<R>(Duration::from_millis(5)).await;
    }
    timeout::<R, _>(WAIT, w.server.shutdown())
        .await
        .expect("shutdown ends once the running call has")
        .expect("clean shutdown");
    assert_eq!(w.server.in_flight(), 0);
    let answer = timeout::<R, _>(WAIT, call).await.unwrap().unwrap();
    assert_eq!(
        label(&answer.expect("the running call completed")),
        "drain-w1"
    );
    let _ = timeout::<R, _>(WAIT, d.node.server.shutdown()).await;
}
