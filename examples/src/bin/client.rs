//! Client: joins the cluster (gossip only, no RPC server), follows workers with a
//! `WorkerRegistry`, and calls `compute` on `role=worker` through a `ClusterClient`, printing
//! which worker answered each call.
//!
//! ```text
//! cargo run -p shoal-examples --bin client -- --calls 20 --strategy round-robin
//! ```
#![forbid(unsafe_code)]

#[path = "../common.rs"]
mod common;

use clap::Parser;
use common::{answer_label, cluster_config, load_secrets, parse_strategy, NodeOpts, Res};
use shoal_tokio::{CallOptions, Cluster, ClusterClient, LoadBalancingStrategy, WorkerRegistry};
use std::collections::BTreeMap;
use std::net::SocketAddr;
use std::sync::Arc;
use std::time::{Duration, Instant};

/// Shoal client: calls `compute` on the cluster's workers.
#[derive(Parser, Debug)]
#[command(version)]
struct Cli {
    /// The director's gossip address.
    #[arg(long, default_value = "127.0.0.1:7001")]
    director: SocketAddr,
    /// Gossip address of this client (port 0: any free port).
    #[arg(long, default_value = "127.0.0.1:0")]
    bind: SocketAddr,
    /// Node name (default: `client-<pid>`).
    #[arg(long)]
    name: Option<String>,
    /// Number of calls to make.
    #[arg(long, default_value_t = 20)]
    calls: u64,
    /// Tag filter selecting workers.
    #[arg(long, default_value = "role=worker")]
    filter: String,
    /// Load-balancing strategy.
    #[arg(long, value_parser = parse_strategy, default_value = "least-connections")]
    strategy: LoadBalancingStrategy,
    /// How long to wait for a first worker, in seconds.
    #[arg(long, default_value_t = 30)]
    wait_secs: u64,
    #[command(flatten)]
    node: NodeOpts,
}

fn main() -> Res<()> {
    let cli = Cli::parse();
    common::block_on(run(cli))
}

async fn run(cli: Cli) -> Res<()> {
    let secrets = load_secrets(&cli.node.secrets_dir)?;
    let name = cli
        .name
        .clone()
        .unwrap_or_else(|| format!("client-{}", std::process::id()));
    let cluster = Cluster::start(
        cluster_config(&name, cli.bind, cli.node.preset, secrets.key)
            .with_tags([("role", "client")]),
    )
    .await?;
    cluster.join(vec![cli.director]).await?;
    let registry = Arc::new(WorkerRegistry::new(cluster.clone(), cli.strategy));
    registry.start().await?;

    // Bounded wait (polling the registry) for a first matching worker.
    let deadline = Instant::now() + Duration::from_secs(cli.wait_secs);
    while registry.select_worker(Some(&cli.filter)).await.is_err() {
        if Instant::now() > deadline {
            cluster.shutdown().await?;
            return Err(format!(
                "no worker matching {:?} joined within {} s",
                cli.filter, cli.wait_secs
            )
            .into());
        }
        tokio::time::sleep(Duration::from_millis(50)).await;
    }
    let workers: Vec<String> = registry
        .workers()
        .await
        .into_iter()
        .filter(|w| w.tags.get("role").map(String::as_str) == Some("worker"))
        .map(|w| w.label)
        .collect();
    println!("{name}: joined via {}; workers: {workers:?}", cli.director);

    let client = ClusterClient::new(registry.clone(), secrets.rpc)?;
    let opts = CallOptions::default().with_timeout(Duration::from_secs(10));
    let mut per_worker: BTreeMap<String, u64> = BTreeMap::new();
    let mut errors = 0u64;
    for i in 1..=cli.calls {
        let started = Instant::now();
        match client
            .call("compute", i.to_string(), Some(&cli.filter), opts)
            .await
        {
            Ok(r) => {
                let label = answer_label(&r.payload);
                println!(
                    "call {i:>4}: {label:<10} answered {:?} in {:?} ({} attempt{})",
                    String::from_utf8_lossy(&r.payload),
                    started.elapsed(),
                    r.attempts,
                    if r.attempts == 1 { "" } else { "s" }
                );
                *per_worker.entry(label).or_default() += 1;
            }
            Err(e) => {
                println!("call {i:>4}: error: {e}");
                errors += 1;
            }
        }
    }
    println!("calls per worker: {per_worker:?}; errors: {errors}");
    cluster.shutdown().await?;
    if errors > 0 {
        return Err(format!("{errors} of {} calls failed", cli.calls).into());
    }
    Ok(())
}
