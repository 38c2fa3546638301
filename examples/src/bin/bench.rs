//! `bench`: closed-loop echo load against workers in other processes on loopback.
//!
//! ```text
//! cargo run -p shoal-examples --release --bin bench -- --inflight 256 --secs 5 --json
//! cargo run -p shoal-examples --release --bin bench -- --inflight 256 --secs 5 --baseline-quinn --json
//! cargo run -p shoal-examples --release --bin bench -- --inflight 256 --secs 4 --compare 5 --json
//! cargo run -p shoal-examples --release --bin bench -- --runtime smol --inflight 256 --secs 4 --compare 3 --json
//! ```
//! Progress goes to stderr once a second; the last line of stdout is one JSON object with
//! `rps`, `p50_us`, `p99_us`, `errors` (and the run's settings) when `--json` is given.

use clap::{Parser, ValueEnum};
use shoal_examples::bench::quinn_echo::ClientEndpoints;
use shoal_examples::bench::{self, compare, BenchOptions, Mode, RuntimeFlavor};
use shoal_examples::output;
use std::io::Write;
use std::net::SocketAddr;
use std::process::ExitCode;

/// Which process this is (internal: the bench starts its own servers).
#[derive(Debug, Clone, Copy, PartialEq, Eq, ValueEnum)]
enum Role {
    /// The load generator (default).
    Client,
    /// A bare quinn echo server (`--baseline-quinn`).
    QuinnServer,
    /// A Shoal echo worker.
    ShoalWorker,
}

/// Echo throughput and latency of Shoal's call_worker, or of bare quinn as the baseline.
///
/// Starts its server process(es) itself on loopback (re-running this binary with --role),
/// keeps exactly --inflight calls outstanding for --secs seconds, prints progress to stderr
/// and a summary to stdout; with --json the last stdout line is one JSON object.
#[derive(Debug, Parser)]
#[command(version)]
struct Args {
    /// Calls kept in flight.
    #[arg(long, default_value_t = 1)]
    inflight: usize,
    /// Seconds of load.
    #[arg(long, default_value_t = 5)]
    secs: u64,
    /// Request and reply size in bytes.
    #[arg(long, default_value_t = 1)]
    payload: usize,
    /// Client connections, spread over the server processes.
    #[arg(long, default_value_t = 4)]
    connections: usize,
    /// Server (worker) processes.
    #[arg(long, default_value_t = 1)]
    servers: usize,
    /// Runtime of every process (client and servers), in both modes: tokio current-thread or
    /// multi-thread, or smol (bare quinn on quinn's SmolRuntime, Shoal through shoal-smol).
    #[arg(long, value_enum, default_value_t = RuntimeFlavor::CurrentThread)]
    runtime: RuntimeFlavor,
    /// Client endpoints (UDP sockets): one per connection, or one shared (both modes).
    #[arg(long, value_enum, default_value_t = ClientEndpoints::PerConnection)]
    client_endpoints: ClientEndpoints,
    /// Fix the QUIC UDP payload size (1200..=65000; loopback allows large ones) on client and
    /// servers. Default: quinn's (1200, MTU discovery up to 1452).
    #[arg(long)]
    mtu: Option<u16>,
    /// Measure a bare quinn stream echo (no Shoal code) instead of Shoal.
    #[arg(long, conflicts_with = "compare")]
    baseline_quinn: bool,
    /// Run N rounds of bare quinn then Shoal, alternated, and report the medians of their
    /// ratios (Shoal's medians as `rps`/`p50_us`/`p99_us`, plus `rps_ratio`, `p50_ratio`).
    #[arg(long, value_name = "N")]
    compare: Option<usize>,
    /// Print the report as one JSON line, last on stdout.
    #[arg(long)]
    json: bool,
    /// No progress lines on stderr.
    #[arg(long)]
    quiet: bool,
    /// Internal: which process this is.
    #[arg(long, value_enum, default_value_t = Role::Client, hide = true)]
    role: Role,
    /// Internal (server roles): where to listen.
    #[arg(long, default_value = "127.0.0.1:0", hide = true)]
    listen: SocketAddr,
    /// Internal (server roles): concurrent streams allowed per connection.
    #[arg(long, default_value_t = 256, hide = true)]
    max_streams: u32,
}

fn main() -> ExitCode {
    let args = Args::parse();
    let result = match args.role {
        Role::QuinnServer => bench::server_main(
            Mode::BaselineQuinn,
            args.listen,
            args.runtime,
            args.max_streams,
            args.mtu,
        )
        .map(|()| None),
        Role::ShoalWorker => bench::server_main(
            Mode::Shoal,
            args.listen,
            args.runtime,
            args.max_streams,
            args.mtu,
        )
        .map(|()| None),
        Role::Client => run_client(&args),
    };
    match result {
        Ok(None) => ExitCode::SUCCESS,
        Ok(Some((summary, json))) => {
            println!("{summary}");
            if args.json {
                let mut out = std::io::stdout().lock();
                if let Err(e) = writeln!(out, "{json}").and_then(|()| out.flush()) {
                    eprintln!("bench: writing the report: {e}");
                    return ExitCode::FAILURE;
                }
            }
            ExitCode::SUCCESS
        }
        Err(e) => {
            eprintln!("bench: {e}");
            ExitCode::from(2)
        }
    }
}

/// Runs the load (or the comparison) and returns its summary line and JSON line.
fn run_client(args: &Args) -> Result<Option<(String, String)>, bench::BenchError> {
    let opts = BenchOptions {
        mode: if args.baseline_quinn {
            Mode::BaselineQuinn
        } else {
            Mode::Shoal
        },
        inflight: args.inflight,
        secs: args.secs,
        payload: args.payload,
        connections: args.connections,
        servers: args.servers,
        runtime: args.runtime,
        client_endpoints: args.client_endpoints,
        mtu: args.mtu,
        progress: !args.quiet,
    };
    if let Some(rounds) = args.compare {
        let c = compare::compare(&opts, rounds)?;
        let summary = format!(
            "compare ({rounds} rounds): shoal {:.0} rps p50 {} us, quinn {:.0} rps p50 {} us; median ratios rps {:.3}, p50 {:.3}",
            c.rps, c.p50_us, c.quinn_rps, c.quinn_p50_us, c.rps_ratio, c.p50_ratio
        );
        return Ok(Some((summary, output::json_line(&c))));
    }
    let report = bench::run(&opts)?;
    Ok(Some((report.summary(), output::json_line(&report))))
}
