//! `--metrics-addr` end to end on loopback: a real `director` and two real `worker` processes
//! serve Prometheus text, this test process is a client with its own exporter, it makes a
//! known number of calls, kills one worker with SIGKILL, and scrapes every endpoint over HTTP,
//! checking names, labels and values (docs/metrics.md).

use shoal_examples::common::{cluster_config, create_or_load_secrets, Preset};
use shoal_tokio::{ClusterClient, LoadBalancingStrategy, WorkerRegistry};
use std::io::{Read, Write};
use std::net::{SocketAddr, TcpListener, TcpStream, UdpSocket};
use std::path::PathBuf;
use std::process::{Child, Command, Stdio};
use std::sync::Arc;
use std::time::{Duration, Instant};

const CALLS: u64 = 40;

/// A TCP port free on loopback now (the exporter binds it a moment later).
fn free_tcp() -> SocketAddr {
    TcpListener::bind("127.0.0.1:0")
        .and_then(|l| l.local_addr())
        .expect("a free TCP port")
}

/// Two adjacent UDP ports free on loopback now (RPC and gossip = RPC + 1).
fn free_udp_pair() -> SocketAddr {
    for _ in 0..200 {
        let a = UdpSocket::bind("127.0.0.1:0").expect("bind");
        let port = a.local_addr().expect("addr").port();
        if port < u16::MAX && UdpSocket::bind(("127.0.0.1", port + 1)).is_ok() {
            return SocketAddr::from(([127, 0, 0, 1], port));
        }
    }
    panic!("no two adjacent free UDP ports");
}

/// The body of `GET /metrics` (HTTP/1.0: no chunked encoding), or an empty string.
fn scrape(addr: SocketAddr) -> String {
    let Ok(mut s) = TcpStream::connect_timeout(&addr, Duration::from_secs(2)) else {
        return String::new();
    };
    let _ = s.set_read_timeout(Some(Duration::from_secs(5)));
    if s.write_all(b"GET /metrics HTTP/1.0\r\nHost: localhost\r\n\r\n")
        .is_err()
    {
        return String::new();
    }
    let mut text = String::new();
    let _ = s.read_to_string(&mut text);
    text.split_once("\r\n\r\n")
        .map(|(_, body)| body.to_owned())
        .unwrap_or_default()
}

/// Sum of every sample of `name` whose labels include all of `labels`.
fn sum(text: &str, name: &str, labels: &[(&str, &str)]) -> f64 {
    text.lines()
        .filter(|l| !l.starts_with('#'))
        .filter_map(|l| {
            let (series, v) = l.rsplit_once(' ')?;
            let (n, rest) = series.split_once('{').unwrap_or((series, "}"));
            let all = labels
                .iter()
                .all(|(k, val)| rest.contains(&format!("{k}=\"{val}\"")));
            (n == name && all).then(|| v.parse::<f64>().ok()).flatten()
        })
        .sum()
}

/// Scrapes `addr` until `ok` holds (bounded), returning the last text. The blocking scrape
/// runs off the runtime's thread, so this process's own nodes keep running meanwhile.
async fn scrape_until(addr: SocketAddr, ok: impl Fn(&str) -> bool) -> String {
    let end = Instant::now() + Duration::from_secs(20);
    loop {
        let text = tokio::task::spawn_blocking(move || scrape(addr))
            .await
            .unwrap_or_default();
        if ok(&text) || Instant::now() > end {
            return text;
        }
        tokio::time::sleep(Duration::from_millis(100)).await;
    }
}

struct Procs(Vec<Child>, PathBuf);

impl Drop for Procs {
    fn drop(&mut self) {
        for c in &mut self.0 {
            let _ = c.kill();
            let _ = c.wait();
        }
        let _ = std::fs::remove_dir_all(&self.1);
    }
}

fn spawn(bin: &str, args: &[String]) -> Child {
    Command::new(bin)
        .args(args)
        .stdin(Stdio::piped()) // held open: --exit-on-stdin-eof ends them if this test dies
        .stdout(Stdio::null())
        .stderr(Stdio::null())
        .spawn()
        .expect("start an example binary")
}

#[test]
fn metrics_are_served_with_known_values() {
    let dir = std::env::temp_dir().join(format!("shoal-metrics-{}", std::process::id()));
    let secrets_dir = dir.join("secrets");
    std::fs::create_dir_all(&dir).unwrap();
    let secrets = create_or_load_secrets(&secrets_dir).unwrap();
    let mut procs = Procs(Vec::new(), dir.clone());
    let common = |m: SocketAddr| {
        vec![
            "--secrets-dir".to_owned(),
            secrets_dir.display().to_string(),
            "--exit-on-stdin-eof".to_owned(),
            "--metrics-addr".to_owned(),
            m.to_string(),
        ]
    };
    let director_rpc = free_udp_pair();
    let director_gossip = SocketAddr::new(director_rpc.ip(), director_rpc.port() + 1);
    let director_metrics = free_tcp();
    let mut args = common(director_metrics);
    args.extend(["--rpc".to_owned(), director_rpc.to_string()]);
    procs.0.push(spawn(env!("CARGO_BIN_EXE_director"), &args));
    let mut worker_metrics = Vec::new();
    for i in 1..=2 {
        let m = free_tcp();
        let mut args = common(m);
        args.extend([
            "--name".to_owned(),
            format!("worker-{i}"),
            "--rpc".to_owned(),
            free_udp_pair().to_string(),
            "--director".to_owned(),
            director_gossip.to_string(),
            "--work-ms".to_owned(),
            "0".to_owned(),
        ]);
        procs.0.push(spawn(env!("CARGO_BIN_EXE_worker"), &args));
        worker_metrics.push(m);
    }

    // This process: a client with its own exporter.
    let client_metrics = free_tcp();
    shoal_examples::metrics::serve_prometheus(client_metrics).expect("exporter");
    let rt = tokio::runtime::Builder::new_current_thread()
        .enable_all()
        .build()
        .unwrap();
    rt.block_on(async {
        let cluster = shoal_tokio::Cluster::start(cluster_config(
            "metrics-client",
            "127.0.0.1:0".parse().unwrap(),
            Preset::Local,
            secrets.key,
        ))
        .await
        .unwrap();
        // The director may still be starting: join retries until the timeout.
        cluster
            .join(vec![director_gossip])
            .await
            .expect("join the director");
        let registry = Arc::new(WorkerRegistry::new(
            cluster.clone(),
            LoadBalancingStrategy::RoundRobin,
        ));
        registry.start().await.unwrap();
        let rpc = secrets.rpc.clone().with_call_metrics(true);
        let client = ClusterClient::new(registry.clone(), rpc).unwrap();
        // The registry lists every member with an RPC address (the director too).
        let workers = || {
            registry
                .workers()
                .iter()
                .filter(|w| w.tags.get("role").is_some_and(|r| r == "worker"))
                .count()
        };
        let end = Instant::now() + Duration::from_secs(20);
        while workers() < 2 && Instant::now() < end {
            tokio::time::sleep(Duration::from_millis(50)).await;
        }
        assert_eq!(workers(), 2, "both workers are listed");
        for i in 0..CALLS {
            let answer = client
                .call_worker("compute", i.to_string(), Some("role=worker"))
                .await
                .expect("a call to a live worker");
            assert!(answer.starts_with(b"worker-"));
        }

        // The client's own series: exactly CALLS calls, all ok, each timed.
        let text = scrape_until(client_metrics, |t| {
            sum(
                t,
                "shoal_rpc_worker_leases_total",
                &[("outcome", "completed")],
            ) >= CALLS as f64
        })
        .await;
        let ok = [("method", "compute"), ("outcome", "ok")];
        assert_eq!(
            sum(&text, "shoal_rpc_calls_total", &ok),
            CALLS as f64,
            "{text}"
        );
        assert_eq!(
            sum(&text, "shoal_rpc_call_duration_seconds_count", &[]),
            CALLS as f64,
            "every call timed, across both workers:\n{text}"
        );
        for w in ["worker-1", "worker-2"] {
            let n = sum(
                &text,
                "shoal_rpc_call_duration_seconds_count",
                &[("worker", w)],
            );
            assert_eq!(n, (CALLS / 2) as f64, "round robin gives {w} half:\n{text}");
        }
        assert_eq!(
            sum(
                &text,
                "shoal_rpc_worker_leases_total",
                &[("outcome", "completed")]
            ),
            CALLS as f64
        );
        assert!(
            sum(&text, "shoal_rpc_connections_opened_total", &[]) >= 2.0,
            "{text}"
        );
        assert_eq!(sum(&text, "shoal_rpc_worker_in_flight", &[]), 0.0);

        // The workers' gossip series are served too.
        for m in &worker_metrics {
            let t = scrape_until(*m, |t| {
                sum(t, "shoal_members", &[("state", "alive")]) >= 4.0
            })
            .await;
            assert_eq!(sum(&t, "shoal_members", &[("state", "alive")]), 4.0, "{t}");
            assert!(sum(&t, "shoal_gossip_packets_received_total", &[]) > 0.0);
        }

        // Kill worker-2: the director and this client count it failed.
        let mut victim = procs.0.remove(2);
        victim.kill().unwrap();
        let _ = victim.wait();
        for m in [director_metrics, client_metrics] {
            let t = scrape_until(m, |t| {
                sum(t, "shoal_members", &[("state", "failed")]) == 1.0
            })
            .await;
            assert_eq!(sum(&t, "shoal_members", &[("state", "failed")]), 1.0, "{t}");
            assert_eq!(sum(&t, "shoal_members", &[("state", "alive")]), 3.0, "{t}");
        }
        // Calls after the failure all go to worker-1.
        for i in 0..10u64 {
            client
                .call_worker("compute", i.to_string(), Some("role=worker"))
                .await
                .expect("a call to the survivor");
        }
        let text = scrape_until(client_metrics, |t| {
            sum(t, "shoal_rpc_calls_total", &ok) >= (CALLS + 10) as f64
        })
        .await;
        assert_eq!(
            sum(&text, "shoal_rpc_calls_total", &ok),
            (CALLS + 10) as f64
        );
        assert_eq!(
            sum(
                &text,
                "shoal_rpc_call_duration_seconds_count",
                &[("worker", "worker-1")]
            ),
            (CALLS / 2 + 10) as f64,
            "{text}"
        );
        cluster.shutdown().await.unwrap();
    });
}
