//! `members`: lists a running cluster's members, like `serf members`.
//!
//! ```text
//! cargo run -p shoal-examples --bin members -- --seed 127.0.0.1:7001
//! cargo run -p shoal-examples --bin members -- --seed 127.0.0.1:7001 --secrets-dir DIR --json
//! cargo run -p shoal-examples --bin members -- --seed 127.0.0.1:7947 --preset lan --cluster-key $KEY
//! ```
//! Joins as a temporary member tagged `role=inspector`, waits until the view settles, prints,
//! then leaves gracefully (the cluster records it as left, not failed). It takes the same
//! connection options as every example binary (`shoal_examples::options`).
#![forbid(unsafe_code)]

use clap::Parser;
use shoal_examples::inspect::{self, MembersArgs};
use shoal_examples::output;
use std::process::ExitCode;

/// List the members of a running Shoal cluster (name, addresses, state, incarnation, tags,
/// phi).
#[derive(Debug, Parser)]
#[command(version)]
struct Args {
    #[command(flatten)]
    members: MembersArgs,
    /// Print one JSON array of members as the last line of stdout.
    #[arg(long)]
    json: bool,
}

fn main() -> ExitCode {
    let args = Args::parse();
    let opts = match args.members.to_options() {
        Ok(o) => o,
        Err(e) => {
            eprintln!("members: {e}");
            return ExitCode::FAILURE;
        }
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
                    args.members.wait_ms
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
