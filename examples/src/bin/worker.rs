//! Worker: serves `compute` (answers `"<label> <value>"`), joins through the director's gossip
//! address, tags itself `role=worker` and `label=<label>`, prints every cluster event.
//!
//! ```text
//! cargo run -p shoal-examples --bin worker -- --name worker-2 --rpc 127.0.0.1:7012 --director 127.0.0.1:7001
//! cargo run -p shoal-examples --bin worker -- --runtime smol --name worker-3 --rpc 127.0.0.1:7014
//! ```
#![forbid(unsafe_code)]

use shoal_examples::common;

use clap::Parser;

/// Shoal worker: serves `compute` for the cluster.
#[derive(Parser, Debug)]
#[command(version)]
struct Cli {
    #[command(flatten)]
    args: common::WorkerArgs,
}

fn main() -> common::Res<()> {
    let cli = Cli::parse();
    common::run_worker_main(cli.args)
}
