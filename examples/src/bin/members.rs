//! `members`: lists a running cluster's members, like `serf members`.
//!
//! ```text
//! cargo run -p shoal-examples --bin members -- --seed 127.0.0.1:7947 --preset local
//! cargo run -p shoal-examples --bin members -- --seed 127.0.0.1:7947 --cluster-key $KEY --json
//! ```
//! Joins as a temporary member tagged `role=inspector`, waits until the view settles, prints,
//! then leaves gracefully (the cluster records it as left, not failed).

use clap::Parser;
use shoal_examples::inspect::{self, InspectOptions, Preset};
use shoal_examples::keys::parse_cluster_key;
use shoal_examples::output;
use std::net::SocketAddr;
use std::process::ExitCode;
use std::time::Duration;

/// List the members of a running Shoal cluster (name, addresses, state, incarnation, tags,
/// phi).
#[derive(Debug, Parser)]
#[command(version)]
struct Args {
    /// Gossip address of a member to join through (repeatable).
    #[arg(long = "seed", required = true)]
    seeds: Vec<SocketAddr>,
    /// The cluster key as 64 hex digits, if the cluster encrypts gossip.
    #[arg(long, value_parser = parse_key)]
    cluster_key: Option<[u8; 32]>,
    /// Cluster name, if not the default.
    #[arg(long)]
    cluster_name: Option<String>,
    /// Timing preset of the cluster.
    #[arg(long, value_enum, default_value_t = Preset::Lan)]
    preset: Preset,
    /// Where the inspector's gossip socket binds.
    #[arg(long, default_value = "127.0.0.1:0")]
    bind: SocketAddr,
    /// The inspector's node name (default: inspector-PID-RANDOM).
    #[arg(long)]
    name: Option<String>,
    /// The view counts as settled after this many milliseconds without a membership change.
    #[arg(long, default_value_t = 1000)]
    quiet_ms: u64,
    /// Upper bound on the wait for the view to settle, in milliseconds.
    #[arg(long, default_value_t = 5000)]
    wait_ms: u64,
    /// Print one JSON array of members as the last line of stdout.
    #[arg(long)]
    json: bool,
}

fn parse_key(s: &str) -> Result<[u8; 32], String> {
    parse_cluster_key(s).map_err(|e| e.to_string())
}

fn main() -> ExitCode {
    let args = Args::parse();
    let opts = InspectOptions {
        seeds: args.seeds,
        cluster_key: args.cluster_key,
        cluster_name: args.cluster_name,
        preset: args.preset,
        bind: args.bind,
        name: args.name,
        quiet: Duration::from_millis(args.quiet_ms),
        max_wait: Duration::from_millis(args.wait_ms),
        ..InspectOptions::default()
    };
    let rt = match tokio::runtime::Builder::new_current_thread()
        .enable_all()
        .build()
    {
        Ok(rt) => rt,
        Err(e) => {
            eprintln!("members: runtime: {e}");
            return ExitCode::FAILURE;
        }
    };
    match rt.block_on(inspect::inspect(&opts)) {
        Ok(view) => {
            if !view.settled {
                eprintln!(
                    "members: the view was still changing after {} ms; listing it as it was",
                    args.wait_ms
                );
            }
            if !view.left_cleanly {
                eprintln!("members: the inspector's leave did not finish in time");
            }
            if args.json {
                if let Err(e) = output::print_json_line(&view.members) {
                    eprintln!("members: {e}");
                    return ExitCode::FAILURE;
                }
            } else {
                print!("{}", inspect::render_table(&view.members));
            }
            ExitCode::SUCCESS
        }
        Err(e) => {
            eprintln!("members: {e}");
            ExitCode::FAILURE
        }
    }
}
