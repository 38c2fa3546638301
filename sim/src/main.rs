//! The scenario runner.
//!
//! `shoal-sim <scenario> --nodes N --seed S [--loss PCT] [--jitter-ms MS] [--preset lan|wan|local] [--json]`
//!
//! With `--json` the last line of stdout is one JSON object. Exit codes: 0 success, 2 usage,
//! 1 the scenario did not reach its goal (e.g. never converged).

use shoal_core::{Config, Strategy};
use shoal_sim::balance::{run_balance, BalanceOpts};
use shoal_sim::scenarios::{self, Report, ScenarioOpts};
use std::process::ExitCode;
use std::time::{Duration, Instant};

const USAGE: &str =
    "usage: shoal-sim <converge|tags> --nodes N --seed S [--loss PCT] [--jitter-ms MS] \
[--preset lan|wan|local] [--join-window-ms MS] [--json]";

struct Args {
    scenario: String,
    opts: ScenarioOpts,
    balance: BalanceOpts,
    json: bool,
}

fn parse() -> Result<Args, String> {
    let mut it = std::env::args().skip(1);
    let scenario = it.next().ok_or("missing scenario")?;
    if scenario == "--help" || scenario == "-h" {
        return Err(String::new());
    }
    let mut opts = ScenarioOpts::default();
    let mut json = false;
    let mut balance = BalanceOpts::default();
    while let Some(flag) = it.next() {
        let mut val = |name: &str| it.next().ok_or(format!("{name} needs a value"));
        match flag.as_str() {
            "--json" => json = true,
            "--slots" => {
                balance.slots = val("--slots")?
                    .parse()
                    .map_err(|e| format!("--slots: {e}"))?
            }
            "--workers" => {
                balance.workers = val("--workers")?
                    .parse()
                    .map_err(|e| format!("--workers: {e}"))?
            }
            "--calls" => {
                balance.calls = val("--calls")?
                    .parse()
                    .map_err(|e| format!("--calls: {e}"))?
            }
            "--strategy" => {
                let name = val("--strategy")?;
                balance.strategy =
                    Strategy::from_name(&name).ok_or(format!("unknown strategy {name}"))?;
            }
            "--nodes" => {
                opts.nodes = val("--nodes")?
                    .parse()
                    .map_err(|e| format!("--nodes: {e}"))?
            }
            "--seed" => opts.seed = val("--seed")?.parse().map_err(|e| format!("--seed: {e}"))?,
            "--loss" => {
                opts.loss_pct = val("--loss")?.parse().map_err(|e| format!("--loss: {e}"))?
            }
            "--jitter-ms" => {
                let ms: f64 = val("--jitter-ms")?
                    .parse()
                    .map_err(|e| format!("--jitter-ms: {e}"))?;
                opts.jitter = Duration::from_secs_f64(ms.max(0.0) / 1000.0);
            }
            "--join-window-ms" => {
                let ms: u64 = val("--join-window-ms")?
                    .parse()
                    .map_err(|e| format!("--join-window-ms: {e}"))?;
                opts.join_window = Duration::from_millis(ms);
            }
            "--preset" => {
                opts.config = match val("--preset")?.as_str() {
                    "lan" => Config::lan(),
                    "wan" => Config::wan(),
                    "local" => Config::local(),
                    other => return Err(format!("unknown preset {other}")),
                }
            }
            other => return Err(format!("unknown flag {other}")),
        }
    }
    if opts.nodes == 0 {
        return Err("--nodes must be at least 1".into());
    }
    opts.config.validate().map_err(|e| e.to_string())?;
    balance.seed = opts.seed;
    Ok(Args {
        scenario,
        opts,
        balance,
        json,
    })
}

fn main() -> ExitCode {
    let args = match parse() {
        Ok(a) => a,
        Err(e) => {
            if !e.is_empty() {
                eprintln!("error: {e}");
            }
            eprintln!("{USAGE}");
            return ExitCode::from(2);
        }
    };
    let o = &args.opts;
    if args.scenario == "balance" {
        let started = Instant::now();
        let r = run_balance(&args.balance);
        println!(
            "balance workers={} slots={} strategy={} seed={} calls={}: p50_ms={:.3} p99_ms={:.3} ideal_p99_ms={:.3} share_slow={:.4} wall_ms={}",
            args.balance.workers,
            args.balance.slots,
            args.balance.strategy.name(),
            args.balance.seed,
            args.balance.calls,
            r.p50_ms,
            r.p99_ms,
            r.ideal_p99_ms,
            r.share_slow,
            started.elapsed().as_millis()
        );
        if args.json {
            println!("{}", r.to_json());
        }
        return ExitCode::SUCCESS;
    }
    println!(
        "scenario={} nodes={} seed={} loss={}% jitter={:?} join_window={:?}",
        args.scenario, o.nodes, o.seed, o.loss_pct, o.jitter, o.join_window
    );
    let started = Instant::now();
    let mut report = Report::default();
    report
        .text("scenario", &args.scenario)
        .int("nodes", o.nodes as u64)
        .int("seed", o.seed);
    let ok = match args.scenario.as_str() {
        "converge" => {
            let r = scenarios::converge(o);
            println!(
                "converged_ms={:?} bytes_per_member_per_s={:.1} events={}",
                r.converged_ms, r.bytes_per_member_per_s, r.events
            );
            report
                .num("converged_ms", r.converged_ms)
                .num("bytes_per_member_per_s", Some(r.bytes_per_member_per_s))
                .text("trace_hash", &format!("{:016x}", r.trace_hash));
            r.converged_ms.is_some()
        }
        "tags" => {
            let r = scenarios::tags(o);
            println!(
                "converged_ms={:?} tag_spread_ms={:?}",
                r.converged_ms, r.tag_spread_ms
            );
            report
                .num("converged_ms", r.converged_ms)
                .num("tag_spread_ms", r.tag_spread_ms)
                .text("trace_hash", &format!("{:016x}", r.trace_hash));
            r.tag_spread_ms.is_some()
        }
        other => {
            eprintln!("error: unknown scenario {other}\n{USAGE}");
            return ExitCode::from(2);
        }
    };
    report.int("wall_ms", started.elapsed().as_millis() as u64);
    if args.json {
        println!("{}", report.to_json());
    } else {
        println!("wall_ms={}", started.elapsed().as_millis());
    }
    if ok {
        ExitCode::SUCCESS
    } else {
        eprintln!(
            "scenario did not reach its goal; reproduce with --seed {}",
            o.seed
        );
        ExitCode::from(1)
    }
}
