//! The scenario runner.
//!
//! `shoal-sim <scenario> --nodes N --seed S [--loss PCT] [--jitter-ms MS] [--dup PCT]
//! [--skew FRACTION] [--preset lan|wan|local] [--check] [--json]`
//!
//! Scenarios: `converge`, `tags`, `crash`, `steady [--duration SECS]`, `pause [--pause-ms MS]`,
//! `partition [--hold-secs SECS]`, `vopr` (one seeded swarm run; `--nodes` is ignored, the
//! seed derives every knob), `swarm --seeds A..B [--jobs J]` (seeds A through B on J
//! threads, per-seed wall times; exits with the first failure's code), `gray [--loss-pct P]
//! [--gray-pct P] [--direction both|in|out]` and `flipflop [--flappers K] [--down-secs S]
//! [--up-secs S]` (partial failures lasting `--duration`).
//!
//! Loss, jitter and duplication apply from the start in `converge`, `tags`, `crash`, `pause`
//! and `partition`; in `steady` they apply after a clean convergence.
//!
//! `report --out DIR [--quick]` runs the standard scenarios and writes `DIR/index.html` with
//! SVG plots (`shoal_sim::report`), printing a progress line per run.
//!
//! With `--json` the last line of stdout is one JSON object. Exit codes: 0 success, 2 usage,
//! 1 the scenario did not reach its goal (e.g. never converged). `vopr` uses TigerBeetle's:
//! 127 a panic, 128 liveness, 129 correctness.
//!
//! The runner allocates with mimalloc (see [`GLOBAL`]; the `system-alloc` feature builds it
//! with the system allocator, for heaptrack). Scenario reports give `huge_page_bytes`, the
//! heap that got transparent huge pages.

use shoal_core::{Config, Strategy};
use shoal_sim::balance::{run_balance, BalanceOpts};
use shoal_sim::mem::{cpu_time, huge_page_bytes, peak_rss_bytes};
use shoal_sim::scenarios::{self, Direction, GrayOpts, Report, ScenarioOpts};
use std::process::ExitCode;
use std::time::{Duration, Instant};

/// The allocator of every simulated node: mimalloc rather than the system's.
///
/// Why: a large run holds every node's state in one process and, while the cluster
/// converges, allocates and frees a few buffers per datagram (payloads, summary hash lists,
/// entry lists) across thousands of nodes. glibc serves the datagram-sized ones from shared
/// bins whose memory is cache-cold by the time it is reused; mimalloc's per-size free lists
/// reuse the block just freed. It also asks the kernel for transparent huge pages on its own
/// (`madvise`), which the runner used to get from glibc by re-executing itself with
/// `GLIBC_TUNABLES=glibc.malloc.hugetlb=1`. Measured (BENCHMARKS.md, sixteenth session):
/// `crash --nodes 10000` 117.3 / 113.5 s wall with glibc against 104.0 / 106.4 s, A-B-B-A,
/// the trace unchanged; peak RSS 11.72 -> 13.31 GB before the member chunks were sized to
/// its size classes.
#[cfg(not(feature = "system-alloc"))]
#[global_allocator]
static GLOBAL: mimalloc::MiMalloc = mimalloc::MiMalloc;

const USAGE: &str = "usage: shoal-sim <converge|tags|join|crash|steady|pause|partition|vopr> \
--nodes N --seed S [--loss PCT] [--jitter-ms MS] [--dup PCT] [--skew FRACTION] \
[--preset lan|wan|local] [--join-window-ms MS] [--duration SECS] [--pause-ms MS] \
[--hold-secs SECS] [--steps N] [--check] [--json]
       shoal-sim balance --workers W --strategy round-robin|random|least-connections|p2c --seed S \
[--calls N] [--slots K] [--json]
       shoal-sim gray --nodes N --seed S [--loss-pct P] [--gray-pct P] [--direction both|in|out] \
[--duration SECS] [--json]
       shoal-sim flipflop --nodes N --seed S [--flappers K] [--down-secs S] [--up-secs S] \
[--duration SECS] [--json]
       shoal-sim swarm --seeds A..B [--jobs J] [--steps N] [--json]
       shoal-sim report --out DIR [--quick]";

struct Args {
    scenario: String,
    opts: ScenarioOpts,
    balance: BalanceOpts,
    gray: GrayOpts,
    json: bool,
    steps: u64,
    seeds: std::ops::RangeInclusive<u64>,
    jobs: usize,
    out: Option<std::path::PathBuf>,
    quick: bool,
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
    let mut gray = GrayOpts::default();
    let mut steps = 2_000_000;
    let mut seeds = 1..=1000;
    let mut jobs = std::thread::available_parallelism().map_or(1, |n| n.get());
    let (mut out, mut quick) = (None, false);
    while let Some(flag) = it.next() {
        let mut val = |name: &str| it.next().ok_or(format!("{name} needs a value"));
        match flag.as_str() {
            "--json" => json = true,
            "--out" => out = Some(val("--out")?.into()),
            "--quick" => quick = true,
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
            "--loss-pct" => {
                gray.loss_pct = val("--loss-pct")?
                    .parse()
                    .map_err(|e| format!("--loss-pct: {e}"))?
            }
            "--gray-pct" => {
                gray.gray_pct = val("--gray-pct")?
                    .parse()
                    .map_err(|e| format!("--gray-pct: {e}"))?
            }
            "--direction" => {
                let d = val("--direction")?;
                gray.direction =
                    Direction::from_name(&d).ok_or(format!("unknown direction {d}"))?;
            }
            "--flappers" => {
                gray.flappers = val("--flappers")?
                    .parse()
                    .map_err(|e| format!("--flappers: {e}"))?
            }
            "--down-secs" | "--up-secs" => {
                let s: f64 = val(&flag)?.parse().map_err(|e| format!("{flag}: {e}"))?;
                let d = Duration::from_secs_f64(s.max(0.0));
                if flag == "--down-secs" {
                    gray.down = d;
                } else {
                    gray.up = d;
                }
            }
            "--check" => opts.check = true,
            "--seeds" => seeds = parse_seeds(&val("--seeds")?)?,
            "--jobs" => jobs = val("--jobs")?.parse().map_err(|e| format!("--jobs: {e}"))?,
            "--dup" => opts.dup_pct = val("--dup")?.parse().map_err(|e| format!("--dup: {e}"))?,
            "--skew" => {
                opts.clock_skew = val("--skew")?.parse().map_err(|e| format!("--skew: {e}"))?
            }
            "--duration" => {
                let s: f64 = val("--duration")?
                    .parse()
                    .map_err(|e| format!("--duration: {e}"))?;
                opts.duration = Duration::from_secs_f64(s.max(0.0));
            }
            "--pause-ms" => {
                let ms: u64 = val("--pause-ms")?
                    .parse()
                    .map_err(|e| format!("--pause-ms: {e}"))?;
                opts.pause = Duration::from_millis(ms);
            }
            "--hold-secs" => {
                let s: f64 = val("--hold-secs")?
                    .parse()
                    .map_err(|e| format!("--hold-secs: {e}"))?;
                opts.hold = Duration::from_secs_f64(s.max(0.0));
            }
            "--steps" => {
                steps = val("--steps")?
                    .parse()
                    .map_err(|e| format!("--steps: {e}"))?
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
        gray,
        json,
        steps,
        seeds,
        jobs,
        out,
        quick,
    })
}

/// `A..B` (both included) or a single seed `A`.
fn parse_seeds(s: &str) -> Result<std::ops::RangeInclusive<u64>, String> {
    let bad = |e: std::num::ParseIntError| format!("--seeds: {e} (expected A..B)");
    match s.split_once("..") {
        Some((a, b)) => {
            let (a, b) = (a.parse().map_err(bad)?, b.parse().map_err(bad)?);
            if a > b {
                return Err(format!("--seeds: empty range {s}"));
            }
            Ok(a..=b)
        }
        None => {
            let a = s.parse().map_err(bad)?;
            Ok(a..=a)
        }
    }
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
    if args.scenario == "report" {
        return report(&args);
    }
    if args.scenario == "swarm" {
        return swarm(&args);
    }
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
            println!("{}", with_peak_rss(r.to_json()));
        }
        return ExitCode::SUCCESS;
    }
    // One scenario, then exit: the cluster's memory goes back with the process.
    shoal_sim::cluster::leave_nodes_at_exit();
    println!(
        "scenario={} nodes={} seed={} loss={}% jitter={:?} dup={}% skew={} join_window={:?}",
        args.scenario,
        o.nodes,
        o.seed,
        o.loss_pct,
        o.jitter,
        o.dup_pct,
        o.clock_skew,
        o.join_window
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
                .num(
                    "bytes_per_member_per_s_p99",
                    Some(r.bytes_per_member_per_s_p99),
                )
                .num(
                    "bytes_per_member_per_s_max",
                    Some(r.bytes_per_member_per_s_max),
                )
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
        "join" => {
            let r = scenarios::join(o);
            println!(
                "converged_ms={:?} join_spread p50={:?} p99={:?} max={:?} ms joiner_full_ms={:?}",
                r.converged_ms,
                r.join_spread_p50_ms,
                r.join_spread_p99_ms,
                r.join_spread_max_ms,
                r.joiner_full_ms
            );
            report
                .num("converged_ms", r.converged_ms)
                .num("join_spread_p50_ms", r.join_spread_p50_ms)
                .num("join_spread_p99_ms", r.join_spread_p99_ms)
                .num("join_spread_max_ms", r.join_spread_max_ms)
                .num("joiner_full_ms", r.joiner_full_ms)
                .text("trace_hash", &format!("{:016x}", r.trace_hash));
            r.join_spread_max_ms.is_some() && r.joiner_full_ms.is_some()
        }
        "crash" => {
            let r = scenarios::crash(o);
            println!(
                "crash: victim={} detected={}/{} p50={:?} p99={:?} max={:?} ms false_positives={}{}",
                r.victim,
                r.detected,
                r.live,
                r.detect_p50_ms,
                r.detect_p99_ms,
                r.detect_max_ms,
                r.false_positives,
                violation_note(&r.violation)
            );
            report
                .num("converged_ms", r.converged_ms)
                .num("detect_p50_ms", r.detect_p50_ms)
                .num("detect_p99_ms", r.detect_p99_ms)
                .num("detect_max_ms", r.detect_max_ms)
                .num("first_suspect_ms", r.first_suspect_ms)
                .num("first_failed_ms", r.first_failed_ms)
                .int("detected", r.detected as u64)
                .int("false_positives", r.false_positives);
            add_common(&mut report, &r.violation, r.trace_hash);
            r.ok()
        }
        "steady" => {
            let r = scenarios::steady(o);
            println!(
                "steady: {:?} under loss={}% jitter={:?} (from convergence): false_positives={} \
                 suspicions={} bytes_per_member_per_s={:.1}{}",
                o.duration,
                o.loss_pct,
                o.jitter,
                r.false_positives,
                r.suspicions,
                r.bytes_per_member_per_s,
                violation_note(&r.violation)
            );
            report
                .num("converged_ms", r.converged_ms)
                .num("duration_s", Some(o.duration.as_secs_f64()))
                .text("faults_from", "convergence")
                .int("false_positives", r.false_positives)
                .int("suspicions", r.suspicions)
                .num("bytes_per_member_per_s", Some(r.bytes_per_member_per_s))
                .num(
                    "bytes_per_member_per_s_p99",
                    Some(r.bytes_per_member_per_s_p99),
                )
                .num(
                    "bytes_per_member_per_s_max",
                    Some(r.bytes_per_member_per_s_max),
                );
            add_common(&mut report, &r.violation, r.trace_hash);
            r.ok()
        }
        "pause" => {
            let r = scenarios::pause(o);
            println!(
                "pause: victim={} for {:?}: false_positives={} paused_failed={} recovered={}{}",
                r.victim,
                o.pause,
                r.false_positives,
                r.paused_failed,
                r.recovered,
                violation_note(&r.violation)
            );
            report
                .num("converged_ms", r.converged_ms)
                .int("pause_ms", o.pause.as_millis() as u64)
                .int("false_positives", r.false_positives)
                .int("paused_failed", r.paused_failed as u64)
                .flag("recovered", r.recovered);
            add_common(&mut report, &r.violation, r.trace_hash);
            r.ok()
        }
        "partition" => {
            let r = scenarios::partition(o);
            println!(
                "partition: minority={} nodes, reported={} detect={:?} ms false_majority={} \
                 majority_failed={:?} ms heal={:?} ms{}",
                r.minority.len(),
                r.minority_reported,
                r.partition_detect_ms,
                r.false_majority,
                r.majority_failed_ms,
                r.heal_ms,
                violation_note(&r.violation)
            );
            report
                .num("converged_ms", r.converged_ms)
                .num("hold_secs", Some(o.hold.as_secs_f64()))
                .num("partition_detect_ms", r.partition_detect_ms)
                .int("minority_reported", r.minority_reported as u64)
                .int("false_majority", r.false_majority as u64)
                .num("majority_failed_ms", r.majority_failed_ms)
                .num("heal_ms", r.heal_ms);
            add_common(&mut report, &r.violation, r.trace_hash);
            r.ok()
        }
        "gray" => {
            let g = &args.gray;
            let r = scenarios::gray(o, g);
            println!(
                "gray: {} members at {}% loss ({}) for {:?}: removed p50={:?} p99={:?} ms \
                 flaps_max={} healthy_false_failures={} (by gray {}) recovered={:?} ms{}",
                r.gray.len(),
                g.loss_pct,
                g.direction.name(),
                o.duration,
                r.removed_p50_ms,
                r.removed_p99_ms,
                r.flaps_max,
                r.healthy_false_failures,
                r.false_by_gray,
                r.recovered_ms,
                violation_note(&r.violation)
            );
            report
                .num("converged_ms", r.converged_ms)
                .num("loss_pct", Some(g.loss_pct))
                .num("gray_pct", Some(g.gray_pct))
                .text("direction", g.direction.name())
                .num("duration_s", Some(o.duration.as_secs_f64()))
                .int("gray_members", r.gray.len() as u64)
                .num("gray_removed_p50_ms", r.removed_p50_ms)
                .num("gray_removed_p99_ms", r.removed_p99_ms)
                .num("gray_removed_frac", Some(r.removed_frac))
                .num("gray_alive_at_end_frac", Some(r.alive_at_end_frac))
                .int("gray_flaps_max", r.flaps_max.into())
                .int("gray_failed_events", r.gray_failed_events)
                .int("healthy_false_failures", r.healthy_false_failures)
                .int("false_failures_by_gray", r.false_by_gray)
                .num("recovered_ms", r.recovered_ms);
            add_common(&mut report, &r.violation, r.trace_hash);
            r.ok()
        }
        "flipflop" => {
            let g = &args.gray;
            let r = scenarios::flipflop(o, g);
            println!(
                "flipflop: {} flappers, {:?} down / {:?} up for {:?}: flaps_max={} mean={:.2} \
                 alive_while_down={:.1}% alive_while_up={:.1}% healthy_false_failures={} \
                 (by flappers {}){}",
                r.flappers.len(),
                g.down,
                g.up,
                o.duration,
                r.flaps_max,
                r.flaps_mean,
                r.alive_while_down_pct,
                r.alive_while_up_pct,
                r.healthy_false_failures,
                r.false_by_flappers,
                violation_note(&r.violation)
            );
            report
                .num("converged_ms", r.converged_ms)
                .int("flappers", r.flappers.len() as u64)
                .num("down_secs", Some(g.down.as_secs_f64()))
                .num("up_secs", Some(g.up.as_secs_f64()))
                .num("duration_s", Some(o.duration.as_secs_f64()))
                .int("flaps_max", r.flaps_max.into())
                .num("flaps_mean", Some(r.flaps_mean))
                .num("alive_while_down_pct", Some(r.alive_while_down_pct))
                .num("alive_while_up_pct", Some(r.alive_while_up_pct))
                .int("healthy_false_failures", r.healthy_false_failures)
                .int("false_failures_by_flappers", r.false_by_flappers);
            add_common(&mut report, &r.violation, r.trace_hash);
            r.ok()
        }
        "vopr" => return vopr(o.seed, args.steps, args.json, report, started),
        other => {
            eprintln!("error: unknown scenario {other}\n{USAGE}");
            return ExitCode::from(2);
        }
    };
    report.int("wall_ms", started.elapsed().as_millis() as u64);
    report.num("cpu_ms", cpu_time().map(|d| d.as_millis() as f64));
    report.num("peak_rss_bytes", peak_rss_bytes().map(|b| b as f64));
    report.num("huge_page_bytes", huge_page_bytes().map(|b| b as f64));
    if args.json {
        println!("{}", report.to_json());
    } else {
        println!(
            "wall_ms={} cpu_ms={:?} peak_rss_bytes={:?} huge_page_bytes={:?}",
            started.elapsed().as_millis(),
            cpu_time().map(|d| d.as_millis()),
            peak_rss_bytes(),
            huge_page_bytes()
        );
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

/// `json` (one flat object, from a report this file does not build) with `peak_rss_bytes`
/// appended as its last key.
fn with_peak_rss(json: String) -> String {
    let Some(body) = json.strip_suffix('}') else {
        return json;
    };
    let v = peak_rss_bytes().map_or_else(|| "null".to_owned(), |b| b.to_string());
    let sep = if body.ends_with('{') { "" } else { "," };
    format!("{body}{sep}\"peak_rss_bytes\":{v}}}")
}

fn violation_note(v: &Option<String>) -> String {
    v.as_ref()
        .map_or_else(String::new, |v| format!(" VIOLATION {v}"))
}

fn add_common(report: &mut Report, violation: &Option<String>, trace_hash: u64) {
    if let Some(v) = violation {
        report.text("violation", v);
    }
    report.text("trace_hash", &format!("{trace_hash:016x}"));
}

/// `report --out DIR [--quick]`: runs the report's scenarios, printing progress, and
/// writes the page.
fn report(args: &Args) -> ExitCode {
    use shoal_sim::report::{collect, write, ReportOpts};
    let Some(out) = &args.out else {
        eprintln!("error: report needs --out DIR\n{USAGE}");
        return ExitCode::from(2);
    };
    let opts = if args.quick {
        ReportOpts::quick()
    } else {
        ReportOpts::full()
    };
    let figures = collect(&opts, &mut |line| println!("{line}"));
    match write(&figures, out) {
        Ok(files) => {
            println!(
                "wrote {} files to {} in {:.1} s: open {}",
                files.len(),
                out.display(),
                figures.wall.as_secs_f64(),
                out.join("index.html").display()
            );
            ExitCode::SUCCESS
        }
        Err(e) => {
            eprintln!("error: {e}");
            ExitCode::from(1)
        }
    }
}

/// Many swarm seeds on `--jobs` threads; exits with the first failing seed's code.
fn swarm(args: &Args) -> ExitCode {
    let sweep = shoal_sim::swarm::sweep(args.seeds.clone(), args.steps, args.jobs);
    let failures: Vec<_> = sweep.failures().collect();
    for f in &failures {
        match &f.outcome {
            shoal_sim::swarm::Outcome::Failed { detail, .. } => eprintln!("{detail}"),
            _ => eprintln!("vopr panicked\nSIM_SEED={}", f.seed),
        }
    }
    let ms = |d: Duration| d.as_secs_f64() * 1000.0;
    println!(
        "swarm seeds={}..{} jobs={} runs={} failures={} wall_ms={:.0} cpu_ms={:.0} per_seed_ms mean={:.1} p50={:.1} p99={:.1} max={:.1} hash={:016x}",
        args.seeds.start(),
        args.seeds.end(),
        sweep.jobs,
        sweep.results.len(),
        failures.len(),
        ms(sweep.wall),
        ms(sweep.cpu_total()),
        ms(sweep.wall_mean()),
        ms(sweep.wall_quantile(0.5)),
        ms(sweep.wall_quantile(0.99)),
        ms(sweep.wall_quantile(1.0)),
        sweep.hash()
    );
    if args.json {
        let mut r = Report::default();
        r.text("scenario", "swarm")
            .int("first_seed", *args.seeds.start())
            .int("last_seed", *args.seeds.end())
            .int("jobs", sweep.jobs as u64)
            .int("runs", sweep.results.len() as u64)
            .int("failures", failures.len() as u64)
            .text(
                "failed_seeds",
                &failures
                    .iter()
                    .map(|f| f.seed.to_string())
                    .collect::<Vec<_>>()
                    .join(","),
            )
            .num("cpu_ms", Some(ms(sweep.cpu_total())))
            .num(
                "per_seed_cpu_mean_ms",
                Some(ms(sweep.cpu_total()) / sweep.results.len().max(1) as f64),
            )
            .num("per_seed_mean_ms", Some(ms(sweep.wall_mean())))
            .num("per_seed_p50_ms", Some(ms(sweep.wall_quantile(0.5))))
            .num("per_seed_p99_ms", Some(ms(sweep.wall_quantile(0.99))))
            .num("per_seed_max_ms", Some(ms(sweep.wall_quantile(1.0))))
            .text("sweep_hash", &format!("{:016x}", sweep.hash()))
            .int("wall_ms", sweep.wall.as_millis() as u64)
            .num("peak_rss_bytes", peak_rss_bytes().map(|b| b as f64));
        println!("{}", r.to_json());
    }
    ExitCode::from(failures.first().map_or(0, |f| f.outcome.exit_code()))
}

/// One swarm run, with TigerBeetle's exit codes: 127 a panic, 128 liveness, 129 correctness.
fn vopr(seed: u64, steps: u64, json: bool, mut report: Report, started: Instant) -> ExitCode {
    use shoal_sim::vopr::{try_vopr, FailureKind, VoprOptions};
    let run = std::panic::catch_unwind(|| try_vopr(seed, steps, &VoprOptions::default()));
    let code = match &run {
        Ok(Ok(r)) => {
            println!(
                "vopr: ok chaos_steps={} faults={} liveness_ms={:.1}",
                r.chaos_steps, r.faults, r.liveness_ms
            );
            report
                .text("result", "ok")
                .int("cluster_nodes", r.knobs.nodes as u64)
                .int("chaos_steps", r.chaos_steps)
                .int("faults", r.faults)
                .num("liveness_ms", Some(r.liveness_ms))
                .text("trace_hash", &format!("{:016x}", r.trace_hash));
            0
        }
        Ok(Err(f)) => {
            eprintln!("{f}");
            let (name, code) = match f.kind {
                FailureKind::Liveness => ("liveness", 128),
                FailureKind::Correctness => ("correctness", 129),
            };
            report
                .text("result", name)
                .int("step", f.step)
                .text("checker", f.violation.checker)
                .text("detail", &f.violation.detail);
            code
        }
        Err(_) => {
            eprintln!("vopr panicked\nSIM_SEED={seed}");
            report.text("result", "panic");
            127
        }
    };
    report.int("wall_ms", started.elapsed().as_millis() as u64);
    report.num("peak_rss_bytes", peak_rss_bytes().map(|b| b as f64));
    if json {
        println!("{}", report.to_json());
    }
    ExitCode::from(code)
}
