//! One cluster, two runtimes: a node on tokio (its own thread, current-thread runtime) and a
//! node on smol (its own thread, `smol::block_on` and smol's executor) form one cluster on
//! loopback, and each calls the other through its registry and client. Every wait is bounded.

use bytes::Bytes;
use futures_channel::oneshot;
use std::net::SocketAddr;
use std::time::{Duration, Instant};

const WAIT: Duration = Duration::from_secs(20);
const CALLS: usize = 20;

fn config(name: &str, runtime: &str) -> shoal_tokio::ClusterConfig {
    shoal_tokio::ClusterConfig::default()
        .with_bind_addr("127.0.0.1:0".parse().unwrap())
        .with_core_config(shoal_tokio::core::Config::local())
        .with_cluster_key([5; 32])
        .with_name(name)
        .with_tags([("role", "worker"), ("runtime", runtime)])
}

/// What one side reports: the answers its calls got.
type Answers = Vec<String>;

/// Runs one side. Written once per facade with the same code: only the crate differs, which is
/// the point of the facades. `$peer_addr`: how this side learns the seed (or `None` to be it).
macro_rules! side {
    ($shoal:ident, $sleep:expr, $name:expr, $runtime:expr, $other:expr,
     $my_addr:expr, $peer_addr:expr, $i_am_done:expr, $peer_done:expr) => {{
        let mut server = $shoal::Server::new($shoal::RpcConfig::insecure_dev());
        server
            .register(
                "who",
                |_req: Bytes| async move { Ok(Bytes::from($runtime)) },
            )
            .unwrap();
        let cluster = server
            .enable_cluster(config($name, $runtime))
            .await
            .unwrap();
        let registry = std::sync::Arc::new($shoal::WorkerRegistry::new(
            cluster.clone(),
            $shoal::LoadBalancingStrategy::RoundRobin,
        ));
        registry.start().await.unwrap();
        let client =
            $shoal::ClusterClient::new(registry.clone(), $shoal::RpcConfig::insecure_dev())
                .unwrap();
        server.spawn().unwrap();
        let _ = $my_addr.send(cluster.gossip_addr());
        let peer: Option<oneshot::Receiver<SocketAddr>> = $peer_addr;
        if let Some(peer) = peer {
            let seed = peer.await.expect("the other side's address");
            cluster.join(vec![seed]).await.unwrap();
        }
        let filter = format!("runtime={}", $other);
        let start = Instant::now();
        while !registry.workers().iter().any(|w| {
            w.tags.get("runtime").map(String::as_str) == Some($other)
                && w.state.is_some_and(|s| s.is_live())
        }) {
            assert!(
                start.elapsed() < WAIT,
                "{} never saw the {} node",
                $runtime,
                $other
            );
            $sleep.await;
        }
        let mut answers = Answers::new();
        for _ in 0..CALLS {
            let r = client
                .call_worker("who", "", Some(&filter))
                .await
                .expect("a call across runtimes");
            answers.push(String::from_utf8(r.to_vec()).unwrap());
        }
        let _ = $i_am_done.send(());
        // Keep serving until the other side has made its calls too.
        let _ = $peer_done.await;
        server.shutdown().await.unwrap();
        answers
    }};
}

#[test]
fn tokio_and_smol_nodes_form_one_cluster_and_call_each_other() {
    let (t_addr_tx, t_addr_rx) = oneshot::channel::<SocketAddr>();
    let (s_addr_tx, _s_addr_rx) = oneshot::channel::<SocketAddr>();
    let (t_done_tx, t_done_rx) = oneshot::channel::<()>();
    let (s_done_tx, s_done_rx) = oneshot::channel::<()>();

    let tokio_side = std::thread::spawn(move || {
        tokio::runtime::Builder::new_current_thread()
            .enable_all()
            .build()
            .unwrap()
            .block_on(async move {
                side!(
                    shoal_tokio,
                    tokio::time::sleep(Duration::from_millis(20)),
                    "mixed-tokio",
                    "tokio",
                    "smol",
                    t_addr_tx,
                    None,
                    t_done_tx,
                    s_done_rx
                )
            })
    });
    let smol_side = std::thread::spawn(move || {
        smol::block_on(async move {
            side!(
                shoal_smol,
                smol::Timer::after(Duration::from_millis(20)),
                "mixed-smol",
                "smol",
                "tokio",
                s_addr_tx,
                Some(t_addr_rx),
                s_done_tx,
                t_done_rx
            )
        })
    });
    let from_tokio = tokio_side.join().expect("the tokio side");
    let from_smol = smol_side.join().expect("the smol side");
    assert_eq!(
        from_tokio,
        vec!["smol".to_owned(); CALLS],
        "tokio called smol"
    );
    assert_eq!(
        from_smol,
        vec!["tokio".to_owned(); CALLS],
        "smol called tokio"
    );
}
