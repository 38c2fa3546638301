//! Director: enables the cluster, tags itself `role=director`, follows workers with a
//! `WorkerRegistry` and prints every cluster event as it happens.
//!
//! ```text
//! cargo run -p shoal-examples --bin director                 # RPC 127.0.0.1:7000, gossip 7001
//! cargo run -p shoal-examples --bin worker -- --name worker-1 --rpc 127.0.0.1:7010
//! cargo run -p shoal-examples --bin client -- --calls 20
//! ```
#![forbid(unsafe_code)]

use shoal_examples::common;

use clap::Parser;

/// Shoal director: starts the cluster and follows its workers.
#[derive(Parser, Debug)]
#[command(version)]
struct Cli {
    #[command(flatten)]
    args: common::DirectorArgs,
}

fn main() -> common::Res<()> {
    let cli = Cli::parse();
    common::block_on(common::run_director(cli.args))
}
