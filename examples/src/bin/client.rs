//! Client: joins the cluster (gossip only, no RPC server), follows workers with a
//! `WorkerRegistry`, and calls `compute` on `role=worker` through a `ClusterClient`, printing
//! which worker answered each call.
//!
//! ```text
//! cargo run -p shoal-examples --bin client -- --calls 20 --strategy round-robin
//! ```
//!
//! With `--json-log` it runs a bounded load instead (`--calls`, `--duration-secs`,
//! `--concurrency`, `--rate`, `--idempotent-every`) and prints one JSON record per call plus
//! its cluster events and views (`shoal_examples::jsonlog`); the network-namespace tests
//! read these.
#![forbid(unsafe_code)]

use shoal_examples::common;

use clap::Parser;
use common::{answer_label, cluster_config, parse_strategy, NodeOpts, Res};
use shoal_examples::callload::{run_load, LoadOptions};
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
    /// Wait for this many matching workers (not just one) before calling.
    #[arg(long, default_value_t = 1)]
    min_workers: usize,
    /// With `--json-log`: stop issuing calls after this many seconds (or `--calls`).
    #[arg(long, default_value_t = 30)]
    duration_secs: u64,
    /// With `--json-log`: most calls in flight at once.
    #[arg(long, default_value_t = 4)]
    concurrency: usize,
    /// With `--json-log`: calls issued per second (0: as fast as `--concurrency` allows).
    #[arg(long, default_value_t = 50.0)]
    rate: f64,
    /// With `--json-log`: every n-th call is idempotent (0: none, 1: all).
    #[arg(long, default_value_t = 2)]
    idempotent_every: u64,
    /// Each call's timeout, retries included, in milliseconds.
    #[arg(long, default_value_t = 10_000)]
    timeout_ms: u64,
    /// Each call's retry budget.
    #[arg(long, default_value_t = 2)]
    retries: u32,
    #[command(flatten)]
    node: NodeOpts,
}

/// Live workers the registry lists.
async fn live_workers(registry: &WorkerRegistry) -> usize {
    registry
        .workers()
        .iter()
        .filter(|w| w.state.is_some_and(|s| s.is_live()))
        .count()
}

fn main() -> Res<()> {
    let cli = Cli::parse();
    common::block_on(run(cli))
}

async fn run(cli: Cli) -> Res<()> {
    cli.node.serve_metrics()?;
    let secrets = cli.node.load_secrets()?;
    let name = cli
        .name
        .clone()
        .unwrap_or_else(|| format!("client-{}", std::process::id()));
    let cluster = Cluster::start(
        cluster_config(&name, cli.bind, cli.node.connect.preset, secrets.key)
            .with_tags([("role", "client")]),
    )
    .await?;
    cluster.join(vec![cli.director]).await?;
    let registry = Arc::new(WorkerRegistry::new(cluster.clone(), cli.strategy));
    registry.start().await?;

    if cli.node.json_log {
        cli.node.spawn_event_output(name.clone(), &cluster);
    }
    // Bounded wait (polling the registry) for the first `--min-workers` matching workers.
    let deadline = Instant::now() + Duration::from_secs(cli.wait_secs);
    while registry.select_worker(Some(&cli.filter)).is_err()
        || live_workers(&registry).await < cli.min_workers
    {
        if Instant::now() > deadline {
            cluster.shutdown().await?;
            return Err(format!(
                "fewer than {} workers matching {:?} joined within {} s",
                cli.min_workers.max(1),
                cli.filter,
                cli.wait_secs
            )
            .into());
        }
        tokio::time::sleep(Duration::from_millis(50)).await;
    }
    let workers: Vec<String> = registry
        .workers()
        .into_iter()
        .filter(|w| w.tags.get("role").map(String::as_str) == Some("worker"))
        .map(|w| w.label)
        .collect();
    println!("{name}: joined via {}; workers: {workers:?}", cli.director);

    let rpc = secrets
        .rpc
        .with_call_metrics(cli.node.metrics_addr.is_some());
    let client = ClusterClient::new(registry.clone(), rpc)?;
    if cli.node.json_log {
        // Bounded load, one JSON record per call (`shoal_examples::callload`).
        let load = LoadOptions {
            calls: cli.calls,
            duration: Duration::from_secs(cli.duration_secs),
            concurrency: cli.concurrency,
            rate: cli.rate,
            idempotent_every: cli.idempotent_every,
            timeout: Duration::from_millis(cli.timeout_ms),
            retries: cli.retries,
            filter: cli.filter.clone(),
        };
        // Ctrl-C (SIGINT) ends the load early; calls in flight still finish and are logged.
        let stop = async {
            let _ = tokio::signal::ctrl_c().await;
        };
        let totals = run_load(&client, &name, load, stop).await;
        cluster.shutdown().await?;
        eprintln!("{name}: {totals:?}");
        return Ok(());
    }
    let opts = CallOptions::default()
        .with_timeout(Duration::from_millis(cli.timeout_ms))
        .with_retries(cli.retries);
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
