//! One command, a whole local cluster: a director, three workers and a client on loopback.
//!
//! ```text
//! cargo run -p shoal-examples --release --bin demo
//! ```
//!
//! **Separate processes.** The director and each worker are child processes (this binary
//! re-executed with a hidden `director` / `worker` sub-command, so `cargo run --bin demo`
//! needs no other binary built), so "kill a worker" is a real `SIGKILL` of a process that
//! says nothing to anyone; the demo process itself is the client. Children write their logs
//! to a private run directory, hold a pipe to the demo's stdin-side (they leave and exit
//! when it closes, so they never outlive the demo), and are killed by a guard on every exit
//! path.
//!
//! Steps, each bounded by `--step-timeout` seconds: the cluster forms with 3 workers; every
//! worker serves calls; worker-2 is killed and the client's `NodeFailed` is timed; calls go
//! on on the other two; worker-2 restarts, rejoins, and serves again. Worker-3 runs on smol,
//! the others on tokio (`worker --runtime`): one cluster, both runtimes. The summary ends the run;
//! the exit code is 0 only if every step was seen and every error was an allowed one (a
//! non-idempotent call in flight to the killed worker).
#![forbid(unsafe_code)]

use shoal_examples::common;

use clap::{Parser, Subcommand};
use common::{answer_label, cluster_config, describe, Preset, Res};
use shoal_tokio::{
    CallError, CallOptions, Cluster, ClusterClient, ClusterEvent, LoadBalancingStrategy, NodeId,
    WorkerRegistry,
};
use std::collections::BTreeMap;
use std::io::{IsTerminal, Write};
use std::net::SocketAddr;
use std::path::{Path, PathBuf};
use std::process::{Child, Command, Stdio};
use std::sync::atomic::{AtomicBool, Ordering};
use std::sync::{Arc, Mutex};
use std::time::{Duration, Instant};
use tokio::sync::mpsc;

/// Shoal demo: a director, three workers and a client on loopback; kills and restarts a
/// worker and reports detection and rejoin times.
#[derive(Parser, Debug)]
#[command(version, args_conflicts_with_subcommands = true)]
struct Cli {
    #[command(subcommand)]
    role: Option<Role>,
    /// First port: director RPC = base, gossip = base+1; worker i RPC = base+8+2i, gossip +1.
    #[arg(long, default_value_t = 7000)]
    base_port: u16,
    /// Bound on each step, in seconds.
    #[arg(long, default_value_t = 30)]
    step_timeout: u64,
    /// Concurrent callers in the client.
    #[arg(long, default_value_t = 8)]
    callers: usize,
    /// Calls each worker must serve to pass a step.
    #[arg(long, default_value_t = 30)]
    min_calls: u64,
    /// Shortest time each calling phase lasts, in milliseconds, so the per-worker counts can
    /// be watched (phases also wait for `--min-calls`; event waits are not padded).
    #[arg(long, default_value_t = 1500)]
    observe_ms: u64,
    /// Load-balancing strategy of the client.
    #[arg(long, value_parser = common::parse_strategy, default_value = "least-connections")]
    strategy: LoadBalancingStrategy,
    /// Serve the demo client's metrics at `http://ADDR/metrics` (Prometheus text), the
    /// director's on the next port and worker i's on the one after that plus i.
    #[arg(long, value_name = "ADDR")]
    metrics_addr: Option<SocketAddr>,
}

#[derive(Subcommand, Debug)]
enum Role {
    /// Internal: run as the director child.
    #[command(hide = true)]
    Director(common::DirectorArgs),
    /// Internal: run as a worker child.
    #[command(hide = true)]
    Worker(common::WorkerArgs),
}

const WORKERS: usize = 3;
const VICTIM: &str = "worker-2";

fn main() {
    let cli = Cli::parse();
    let result = match cli.role {
        Some(Role::Director(a)) => common::block_on(common::run_director(a)),
        Some(Role::Worker(a)) => common::run_worker_main(a),
        None => common::block_on(demo(cli)),
    };
    if let Err(e) = result {
        eprintln!("error: {e}");
        std::process::exit(1);
    }
}

// ---------------------------------------------------------------------------------------
// Child processes

/// The children; every one still running is killed (and reaped) when this is dropped.
struct Children {
    dir: PathBuf,
    exe: PathBuf,
    running: Vec<(String, Child)>,
    /// `--metrics-addr` of the demo process: the director serves on the next port, worker i
    /// on the one after it plus i.
    metrics: Option<SocketAddr>,
}

impl Children {
    /// Where child `name` serves its metrics, when the demo was asked to.
    fn metrics_addr(&self, name: &str) -> Option<SocketAddr> {
        let base = self.metrics?;
        let offset = match name.strip_prefix("worker-") {
            Some(i) => 1 + i.parse::<u16>().ok()?,
            None => 1,
        };
        Some(SocketAddr::new(base.ip(), base.port().checked_add(offset)?))
    }

    fn spawn(&mut self, name: &str, args: &[String]) -> Res<()> {
        let log = std::fs::File::create(self.dir.join(format!("{name}.log")))?;
        let mut args = args.to_vec();
        if let Some(addr) = self.metrics_addr(name) {
            args.extend(["--metrics-addr".into(), addr.to_string()]);
        }
        let child = Command::new(&self.exe)
            .args(&args)
            .stdin(Stdio::piped())
            .stdout(log.try_clone()?)
            .stderr(log)
            .spawn()
            .map_err(|e| format!("starting {name}: {e}"))?;
        self.running.push((name.to_owned(), child));
        Ok(())
    }

    /// SIGKILL: the process dies without leaving; peers must detect it.
    fn kill(&mut self, name: &str) -> Res<()> {
        let i = self
            .running
            .iter()
            .position(|(n, _)| n == name)
            .ok_or_else(|| format!("{name} is not running"))?;
        let (_, mut child) = self.running.remove(i);
        child.kill()?;
        child.wait()?;
        Ok(())
    }

    /// Graceful stop: close every child's stdin (they leave the cluster and exit), wait up
    /// to `limit`, then kill whatever is left.
    fn stop_all(&mut self, limit: Duration) -> Vec<String> {
        for (_, c) in &mut self.running {
            drop(c.stdin.take());
        }
        let deadline = Instant::now() + limit;
        let mut unclean = Vec::new();
        for (name, mut c) in self.running.drain(..) {
            loop {
                match c.try_wait() {
                    Ok(Some(status)) if status.success() => break,
                    Ok(Some(status)) => {
                        unclean.push(format!("{name} exited with {status}"));
                        break;
                    }
                    Ok(None) if Instant::now() < deadline => {
                        std::thread::sleep(Duration::from_millis(20)); // polling exit, bounded
                    }
                    _ => {
                        let _ = c.kill();
                        let _ = c.wait();
                        unclean.push(format!("{name} did not exit in time: killed"));
                        break;
                    }
                }
            }
        }
        unclean
    }
}

impl Drop for Children {
    fn drop(&mut self) {
        for (_, c) in &mut self.running {
            let _ = c.kill();
            let _ = c.wait();
        }
    }
}

fn node_args(role: &str, dir: &Path, extra: &[String]) -> Vec<String> {
    let mut v = vec![
        role.to_owned(),
        "--preset".into(),
        "local".into(),
        "--secrets-dir".into(),
        dir.join("secrets").display().to_string(),
        "--exit-on-stdin-eof".into(),
    ];
    v.extend_from_slice(extra);
    v
}

/// Worker `i`'s arguments. The last worker runs on smol (`--runtime smol`), the others on
/// tokio: one cluster, both runtimes, the same worker code.
fn worker_args(dir: &Path, i: usize, base: u16, director: SocketAddr) -> Vec<String> {
    let rpc = SocketAddr::from(([127, 0, 0, 1], base + 8 + 2 * i as u16));
    let runtime = if i == WORKERS { "smol" } else { "tokio" };
    node_args(
        "worker",
        dir,
        &[
            "--name".into(),
            format!("worker-{i}"),
            "--rpc".into(),
            rpc.to_string(),
            "--director".into(),
            director.to_string(),
            "--runtime".into(),
            runtime.into(),
        ],
    )
}

// ---------------------------------------------------------------------------------------
// Call accounting

struct Failure {
    started: Instant,
    error: CallError,
}

#[derive(Default)]
struct Tally {
    ok: BTreeMap<String, u64>,
    calls: u64,
    failures: Vec<Failure>,
    failures_dropped: u64,
}

type Shared = Arc<Mutex<Tally>>;

fn lock(t: &Shared) -> std::sync::MutexGuard<'_, Tally> {
    t.lock().unwrap_or_else(|e| e.into_inner())
}

async fn caller(client: ClusterClient, tally: Shared, stop: Arc<AtomicBool>, seed: u64) {
    let opts = CallOptions::default().with_timeout(Duration::from_secs(10));
    let mut n = seed;
    while !stop.load(Ordering::Relaxed) {
        n = n % 1000 + 1;
        let started = Instant::now();
        let r = client
            .call("compute", n.to_string(), Some("role=worker"), opts)
            .await;
        let mut t = lock(&tally);
        t.calls += 1;
        match r {
            Ok(resp) => *t.ok.entry(answer_label(&resp.payload)).or_default() += 1,
            Err(error) if t.failures.len() < 10_000 => t.failures.push(Failure { started, error }),
            Err(_) => t.failures_dropped += 1,
        }
    }
}

// ---------------------------------------------------------------------------------------
// Live display and event waits

struct Display {
    start: Instant,
    phase: Mutex<String>,
    tty: bool,
}

impl Display {
    fn line(&self, text: &str) {
        let clear = if self.tty { "\r\x1b[K" } else { "" };
        println!(
            "{clear}[{:>6.2}s] {text}",
            self.start.elapsed().as_secs_f64()
        );
    }

    fn phase(&self, p: &str) {
        *self.phase.lock().unwrap_or_else(|e| e.into_inner()) = p.to_owned();
        self.line(&format!("== {p}"));
    }

    fn status(&self, tally: &Shared) {
        let t = lock(tally);
        let per: Vec<String> = (1..=WORKERS)
            .map(|i| {
                let w = format!("worker-{i}");
                format!("{w}: {:>6}", t.ok.get(&w).copied().unwrap_or(0))
            })
            .collect();
        let phase = self.phase.lock().unwrap_or_else(|e| e.into_inner()).clone();
        let text = format!(
            "calls {:>6} | {} | errors {:>3} | {phase}",
            t.calls,
            per.join("  "),
            t.failures.len() as u64 + t.failures_dropped
        );
        drop(t);
        if self.tty {
            print!(
                "\r\x1b[K[{:>6.2}s] {text}",
                self.start.elapsed().as_secs_f64()
            );
            let _ = std::io::stdout().flush();
        } else {
            self.line(&text);
        }
    }
}

/// Waits (bounded) for an event matching `pred`; events are printed by the forwarding task.
async fn wait_event(
    rx: &mut mpsc::UnboundedReceiver<(Instant, ClusterEvent)>,
    limit: Duration,
    what: &str,
    mut pred: impl FnMut(&ClusterEvent) -> bool,
) -> Res<(Instant, ClusterEvent)> {
    let deadline = tokio::time::Instant::now() + limit;
    loop {
        match tokio::time::timeout_at(deadline, rx.recv()).await {
            Ok(Some((at, e))) if pred(&e) => return Ok((at, e)),
            Ok(Some(_)) => {}
            Ok(None) => return Err(format!("event stream ended while waiting for {what}").into()),
            Err(_) => return Err(format!("timed out after {limit:?} waiting for {what}").into()),
        }
    }
}

/// Polls `cond` every 20 ms until it holds, at most `limit`.
async fn wait_until(limit: Duration, what: &str, mut cond: impl FnMut() -> bool) -> Res<()> {
    let deadline = Instant::now() + limit;
    while !cond() {
        if Instant::now() > deadline {
            return Err(format!("timed out after {limit:?} waiting for {what}").into());
        }
        tokio::time::sleep(Duration::from_millis(20)).await;
    }
    Ok(())
}

// ---------------------------------------------------------------------------------------
// The demo

#[derive(Default)]
struct Report {
    formed: Option<Duration>,
    all_served: bool,
    detection: Option<Duration>,
    failed_at: Option<Instant>,
    continued: bool,
    rejoin: Option<Duration>,
    served_again: Option<Duration>,
    /// Calls per worker at each phase boundary.
    marks: Vec<(String, BTreeMap<String, u64>)>,
}

impl Report {
    fn mark(&mut self, phase: &str, tally: &Shared) {
        self.marks.push((phase.to_owned(), lock(tally).ok.clone()));
    }
}

async fn demo(cli: Cli) -> Res<()> {
    let started = Instant::now();
    let dir = std::env::temp_dir().join(format!(
        "shoal-demo-{}-{}",
        std::process::id(),
        std::time::SystemTime::now()
            .duration_since(std::time::UNIX_EPOCH)?
            .as_nanos()
    ));
    common::create_private_dir(&dir)?;
    let secrets = common::create_or_load_secrets(&dir.join("secrets"))?;
    if let Some(addr) = cli.metrics_addr {
        shoal_examples::metrics::serve_prometheus(addr)?;
    }
    let mut children = Children {
        dir: dir.clone(),
        exe: std::env::current_exe()?,
        running: Vec::new(),
        metrics: cli.metrics_addr,
    };
    let display = Arc::new(Display {
        start: started,
        phase: Mutex::new(String::new()),
        tty: std::io::stdout().is_terminal(),
    });
    let tally: Shared = Arc::default();
    let stop = Arc::new(AtomicBool::new(false));
    let mut report = Report::default();

    let outcome = tokio::select! {
        r = run_steps(&cli, &dir, secrets, &mut children, &display, &tally, &stop, &mut report) => r,
        _ = tokio::signal::ctrl_c() => Err("interrupted".into()),
    };
    stop.store(true, Ordering::Relaxed);
    let unclean = children.stop_all(Duration::from_secs(10));
    drop(children);

    // Summary.
    let t = lock(&tally);
    let victim = NodeId::from_name(VICTIM);
    let (mut allowed, mut unexpected) = (0u64, Vec::new());
    for f in &t.failures {
        if is_allowed(f, victim, report.failed_at) {
            allowed += 1;
        } else {
            unexpected.push(f.error.to_string());
        }
    }
    let errors = t.failures.len() as u64 + t.failures_dropped;
    let ms = |d: Option<Duration>| {
        d.map_or_else(
            || "not seen".to_owned(),
            |d| format!("{} ms", d.as_millis()),
        )
    };
    let check = |b: bool| if b { "ok " } else { "MISSING" };
    println!();
    println!("steps:");
    println!(
        "  [{}] cluster formed with {WORKERS} workers ({})",
        check(report.formed.is_some()),
        ms(report.formed)
    );
    println!("  [{}] every worker served calls", check(report.all_served));
    println!(
        "  [{}] kill of {VICTIM} detected at the client (NodeFailed after {})",
        check(report.detection.is_some()),
        ms(report.detection)
    );
    println!(
        "  [{}] calls continued on the other two workers",
        check(report.continued)
    );
    println!(
        "  [{}] restarted {VICTIM} rejoined ({} after restart)",
        check(report.rejoin.is_some()),
        ms(report.rejoin)
    );
    println!(
        "  [{}] restarted {VICTIM} served calls again ({} after restart)",
        check(report.served_again.is_some()),
        ms(report.served_again)
    );
    println!("calls per worker, by phase:");
    for w in report.marks.windows(2) {
        let ((_, a), (phase, b)) = (&w[0], &w[1]);
        let per: Vec<String> = (1..=WORKERS)
            .map(|i| {
                let k = format!("worker-{i}");
                let n = b.get(&k).copied().unwrap_or(0) - a.get(&k).copied().unwrap_or(0);
                format!("{k} {n:>5}")
            })
            .collect();
        println!("  {phase:<32} {}", per.join("  "));
    }
    println!("  {:<32} {:?}", "total", t.ok);
    for e in unexpected.iter().take(5) {
        println!("unexpected error: {e}");
    }
    for u in &unclean {
        println!("shutdown: {u}");
    }
    let passed = outcome.is_ok()
        && report.served_again.is_some()
        && unexpected.is_empty()
        && t.failures_dropped == 0;
    println!(
        "DEMO SUMMARY: {} | calls {} | errors {errors} (allowed {allowed}: non-idempotent calls in flight to the killed {VICTIM}; unexpected {}) | detection {} | rejoin {} | total {:.1} s",
        if passed { "PASS" } else { "FAIL" },
        t.calls,
        errors - allowed,
        ms(report.detection),
        ms(report.rejoin),
        started.elapsed().as_secs_f64(),
    );
    drop(t);
    match outcome {
        Ok(()) if passed => {
            let _ = std::fs::remove_dir_all(&dir);
            Ok(())
        }
        Ok(()) => Err(format!("unexpected call errors; logs in {}", dir.display()).into()),
        Err(e) => Err(format!("{e}; logs in {}", dir.display()).into()),
    }
}

/// An error is allowed if it is a call to the killed worker that was in flight (started
/// before the client declared it failed) and could not be retried because it was not
/// idempotent: `WorkerFailed` after the request was sent, or its deadline.
fn is_allowed(f: &Failure, victim: NodeId, failed_at: Option<Instant>) -> bool {
    if failed_at.is_none_or(|at| f.started > at) {
        return false;
    }
    match &f.error {
        CallError::WorkerFailed { worker, .. } => *worker == victim,
        CallError::DeadlineExceeded { worker } => *worker == Some(victim),
        _ => false,
    }
}

#[allow(clippy::too_many_arguments)]
async fn run_steps(
    cli: &Cli,
    dir: &Path,
    secrets: common::Secrets,
    children: &mut Children,
    display: &Arc<Display>,
    tally: &Shared,
    stop: &Arc<AtomicBool>,
    report: &mut Report,
) -> Res<()> {
    let limit = Duration::from_secs(cli.step_timeout);
    let base = cli.base_port;
    if !(1024..=u16::MAX - 32).contains(&base) {
        return Err("--base-port must be between 1024 and 65503".into());
    }
    let director_rpc = SocketAddr::from(([127, 0, 0, 1], base));
    let director_gossip = SocketAddr::from(([127, 0, 0, 1], base + 1));

    display.phase(&format!(
        "starting director (RPC {director_rpc}, gossip {director_gossip}) and {WORKERS} workers as child processes; logs in {}",
        dir.display()
    ));
    display.line(&format!(
        "inspect it meanwhile with: members --seed {director_gossip} --secrets-dir {}",
        dir.join("secrets").display()
    ));
    children.spawn(
        "director",
        &node_args("director", dir, &["--rpc".into(), director_rpc.to_string()]),
    )?;
    for i in 1..=WORKERS {
        children.spawn(
            &format!("worker-{i}"),
            &worker_args(dir, i, base, director_gossip),
        )?;
    }

    // The client: this process joins the cluster (gossip only) and calls workers.
    let cluster = Cluster::start(
        cluster_config(
            "demo-client",
            "127.0.0.1:0".parse()?,
            Preset::Local,
            secrets.key,
        )
        .with_tags([("role", "client")]),
    )
    .await?;
    let (tx, mut rx) = mpsc::unbounded_channel();
    let mut events = cluster.subscribe();
    let d = display.clone();
    tokio::spawn(async move {
        while let Some(e) = events.recv().await {
            let at = Instant::now();
            if !matches!(e, ClusterEvent::NodeUpdated(_)) {
                d.line(&format!("client event: {}", describe(&e)));
            }
            if tx.send((at, e)).is_err() {
                break;
            }
        }
    });
    let result = steps(
        cli,
        &cluster,
        secrets.rpc,
        children,
        display,
        tally,
        stop,
        report,
        limit,
        base,
        director_gossip,
        &mut rx,
    )
    .await;
    stop.store(true, Ordering::Relaxed);
    let _ = tokio::time::timeout(Duration::from_secs(5), cluster.shutdown()).await;
    result
}

#[allow(clippy::too_many_arguments)]
async fn steps(
    cli: &Cli,
    cluster: &Cluster,
    rpc: shoal_tokio::RpcConfig,
    children: &mut Children,
    display: &Arc<Display>,
    tally: &Shared,
    stop: &Arc<AtomicBool>,
    report: &mut Report,
    limit: Duration,
    base: u16,
    director_gossip: SocketAddr,
    rx: &mut mpsc::UnboundedReceiver<(Instant, ClusterEvent)>,
) -> Res<()> {
    let t0 = Instant::now();
    tokio::time::timeout(limit, cluster.join(vec![director_gossip]))
        .await
        .map_err(|_| "timed out joining the director")??;
    let registry = Arc::new(WorkerRegistry::new(cluster.clone(), cli.strategy));
    registry.start().await?;

    // Step 1: the cluster forms with three live workers.
    display.phase("waiting for 3 workers");
    let live_workers = |r: &Arc<WorkerRegistry>| {
        let r = r.clone();
        async move {
            r.workers()
                .into_iter()
                .filter(|w| {
                    w.tags.get("role").map(String::as_str) == Some("worker")
                        && w.state.is_some_and(|s| s.is_live())
                })
                .map(|w| w.label)
                .collect::<Vec<_>>()
        }
    };
    let deadline = Instant::now() + limit;
    loop {
        let live = live_workers(&registry).await;
        if live.len() == WORKERS {
            report.formed = Some(t0.elapsed());
            display.line(&format!("cluster formed: workers {live:?}"));
            break;
        }
        if Instant::now() > deadline {
            return Err(format!(
                "timed out after {limit:?} waiting for {WORKERS} workers (have {live:?})"
            )
            .into());
        }
        tokio::time::sleep(Duration::from_millis(20)).await;
    }

    // Callers and the live display.
    let client = ClusterClient::new(
        registry.clone(),
        rpc.with_call_metrics(cli.metrics_addr.is_some()),
    )?;
    let mut callers = Vec::new();
    for i in 0..cli.callers {
        callers.push(tokio::spawn(caller(
            client.clone(),
            tally.clone(),
            stop.clone(),
            i as u64 * 100,
        )));
    }
    let (d, t, s) = (display.clone(), tally.clone(), stop.clone());
    let ticker = tokio::spawn(async move {
        let mut tick = tokio::time::interval(Duration::from_millis(250));
        while !s.load(Ordering::Relaxed) {
            tick.tick().await;
            d.status(&t);
        }
    });

    let count = |label: &str| lock(tally).ok.get(label).copied().unwrap_or(0);
    let min = cli.min_calls;
    let observe = Duration::from_millis(cli.observe_ms);
    report.mark("start", tally);

    // Step 2: every worker serves calls.
    display.phase(&format!(
        "calling compute on role=worker with {} callers ({})",
        cli.callers,
        cli.strategy.name()
    ));
    let phase = Instant::now();
    wait_until(limit, "every worker to serve calls", || {
        (1..=WORKERS).all(|i| count(&format!("worker-{i}")) >= min) && phase.elapsed() >= observe
    })
    .await?;
    report.all_served = true;
    report.mark("3 workers", tally);

    // Step 3: kill worker-2 (SIGKILL) and time its detection at the client.
    display.phase(&format!("killing {VICTIM} (SIGKILL)"));
    let killed = Instant::now();
    children.kill(VICTIM)?;
    let (failed_at, event) = wait_event(rx, limit, &format!("NodeFailed for {VICTIM}"), |e| {
        matches!(e, ClusterEvent::NodeFailed(m) | ClusterEvent::NodeLeft(m) if m.name == VICTIM)
    })
    .await?;
    if !matches!(event, ClusterEvent::NodeFailed(_)) {
        return Err(format!(
            "a killed {VICTIM} must be detected as failed, got: {}",
            describe(&event)
        )
        .into());
    }
    let detection = failed_at - killed;
    report.detection = Some(detection);
    report.failed_at = Some(failed_at);
    report.mark("kill until NodeFailed", tally);
    display.phase(&format!(
        "{VICTIM} declared failed {} ms after the kill",
        detection.as_millis()
    ));

    // Step 4: calls continue on the other two (and none go to the dead one).
    let victim_at_detection = count(VICTIM);
    let (w1, w3) = (count("worker-1"), count("worker-3"));
    let phase = Instant::now();
    wait_until(limit, "calls on the surviving workers", || {
        count("worker-1") >= w1 + min && count("worker-3") >= w3 + min && phase.elapsed() >= observe
    })
    .await?;
    if count(VICTIM) != victim_at_detection {
        return Err(format!("{VICTIM} was declared failed but answered calls afterwards").into());
    }
    report.continued = true;
    report.mark("2 workers", tally);
    display.phase("calls moved to worker-1 and worker-3");

    // Step 5: restart worker-2 (same name, same ports): it rejoins and serves again.
    display.phase(&format!("restarting {VICTIM}"));
    let restarted = Instant::now();
    let director = SocketAddr::from(([127, 0, 0, 1], base + 1));
    children.spawn(
        VICTIM,
        &worker_args(&children.dir.clone(), 2, base, director),
    )?;
    let (joined_at, _) = wait_event(
        rx,
        limit,
        &format!("{VICTIM} to rejoin"),
        |e| matches!(e, ClusterEvent::NodeJoined(m) if m.name == VICTIM),
    )
    .await?;
    report.rejoin = Some(joined_at - restarted);
    report.mark("restart until NodeJoined", tally);
    let before = count(VICTIM);
    wait_until(
        limit,
        &format!("the restarted {VICTIM} to serve calls"),
        || count(VICTIM) >= before + min,
    )
    .await?;
    report.served_again = Some(restarted.elapsed());
    let phase = Instant::now();
    wait_until(limit, "the observation window", || {
        phase.elapsed() >= observe
    })
    .await?;
    report.mark("3 workers again", tally);
    display.phase(&format!("{VICTIM} is back and serving; stopping"));

    stop.store(true, Ordering::Relaxed);
    for c in callers {
        tokio::time::timeout(limit, c)
            .await
            .map_err(|_| "timed out waiting for callers to finish")??;
    }
    let _ = ticker.await;
    display.status(tally);
    Ok(())
}
