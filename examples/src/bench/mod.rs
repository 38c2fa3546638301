//! The `bench` binary's machinery, shared by its two modes:
//!
//! * **Shoal** (default): workers in other processes run an echo handler; the client joins
//!   their cluster and calls it through `ClusterClient::call_worker` ([`shoal_mode`]).
//! * **Baseline** (`--baseline-quinn`): the same load as a bare quinn stream echo
//!   ([`quinn_echo`]), same TLS, same payload, same processes, same runtime set-up.
//!
//! Both use one load generator ([`load`]), one histogram ([`histogram`]), one process
//! orchestration ([`procs`]) and one report ([`BenchReport`]).

pub mod compare;
pub mod histogram;
pub mod load;
pub mod procs;
pub mod quinn_echo;
pub mod rt;
pub mod shoal_mode;

use load::{CallTarget, LoadPlan, LoadResult};
use procs::{Children, ServerReady};
use serde::Serialize;
use std::net::SocketAddr;
use std::sync::Arc;
use std::time::Duration;

/// A request payload, shared by every call.
pub type Payload = Arc<[u8]>;

/// A payload of `n` bytes (a fixed non-zero pattern).
pub fn payload(n: usize) -> Payload {
    Arc::from((0..n).map(|i| (i % 251) as u8).collect::<Vec<u8>>())
}

/// How slots may take to finish their last call after the deadline before they count as
/// errors.
pub const GRACE: Duration = Duration::from_secs(5);
/// How long a server process may take to report ready.
pub const READY_TIMEOUT: Duration = Duration::from_secs(20);
/// Upper bound on calls per slot (a bound, far above what 600 s can reach on loopback).
pub const MAX_CALLS_PER_SLOT: u64 = 500_000_000;
/// Largest accepted `--inflight`.
pub const MAX_INFLIGHT: usize = 65_536;
/// Largest accepted `--secs`.
pub const MAX_SECS: u64 = 600;

/// The runtime each process (client and servers alike) runs on, in both modes.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Default, clap::ValueEnum, Serialize)]
#[serde(rename_all = "kebab-case")]
pub enum RuntimeFlavor {
    /// One thread per process (`new_current_thread`).
    #[default]
    CurrentThread,
    /// tokio's default work-stealing runtime, one worker per core (`new_multi_thread`).
    MultiThread,
    /// smol: `smol::block_on`, tasks on smol's global executor (quinn's `SmolRuntime` for
    /// bare quinn, `shoal-smol` for Shoal).
    Smol,
}

impl RuntimeFlavor {
    /// The flag value.
    pub fn name(self) -> &'static str {
        match self {
            RuntimeFlavor::CurrentThread => "current-thread",
            RuntimeFlavor::MultiThread => "multi-thread",
            RuntimeFlavor::Smol => "smol",
        }
    }

    /// Runs `future` to completion on a runtime of this flavour (tokio: IO and time enabled,
    /// dropped afterwards, which stops any task left).
    pub fn block_on<F: std::future::Future>(self, future: F) -> std::io::Result<F::Output> {
        let tokio = match self {
            RuntimeFlavor::CurrentThread => tokio::runtime::Builder::new_current_thread()
                .enable_all()
                .build()?,
            RuntimeFlavor::MultiThread => tokio::runtime::Builder::new_multi_thread()
                .enable_all()
                .build()?,
            RuntimeFlavor::Smol => return Ok(smol::block_on(future)),
        };
        Ok(tokio.block_on(future))
    }
}

/// What is measured.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Serialize)]
#[serde(rename_all = "kebab-case")]
pub enum Mode {
    /// Shoal's `call_worker` to echo workers.
    Shoal,
    /// Bare quinn stream echo.
    BaselineQuinn,
}

impl Mode {
    /// The value of `--role` for this mode's server processes.
    pub fn server_role(self) -> &'static str {
        match self {
            Mode::Shoal => "shoal-worker",
            Mode::BaselineQuinn => "quinn-server",
        }
    }
}

/// One benchmark run.
#[derive(Debug, Clone)]
pub struct BenchOptions {
    /// Mode.
    pub mode: Mode,
    /// Calls in flight.
    pub inflight: usize,
    /// Seconds of load.
    pub secs: u64,
    /// Request (and reply) size in bytes.
    pub payload: usize,
    /// Client connections (spread over the servers).
    pub connections: usize,
    /// Server processes.
    pub servers: usize,
    /// Runtime of every process.
    pub runtime: RuntimeFlavor,
    /// Client endpoint layout, in both modes (Shoal's `RpcConfig::with_client_endpoints`).
    pub client_endpoints: quinn_echo::ClientEndpoints,
    /// Fixed UDP payload size for every QUIC connection (client and servers), if set.
    pub mtu: Option<u16>,
    /// Print progress to stderr once a second.
    pub progress: bool,
}

/// Why a run failed.
#[derive(Debug, thiserror::Error)]
pub enum BenchError {
    /// Setting up the Shoal cluster (TLS, membership, registry, client) failed.
    #[error("shoal set-up: {0}")]
    Shoal(String),
    /// An option is out of range.
    #[error("invalid option: {0}")]
    InvalidOptions(String),
    /// Starting or talking to a server process failed.
    #[error("server process: {0}")]
    Process(#[from] std::io::Error),
    /// TLS or QUIC setup failed.
    #[error(transparent)]
    Setup(#[from] quinn_echo::SetupError),
    /// The whole run exceeded its hard timeout.
    #[error("the run did not finish within its hard timeout of {0:?}")]
    HardTimeout(Duration),
}

/// The final report; with `--json` it is the last line of stdout.
#[derive(Debug, Clone, PartialEq, Serialize)]
pub struct BenchReport {
    /// Mode.
    pub mode: Mode,
    /// Successful calls per second.
    pub rps: f64,
    /// Median latency, microseconds.
    pub p50_us: u64,
    /// 99th percentile latency, microseconds.
    pub p99_us: u64,
    /// 99.9th percentile latency, microseconds.
    pub p999_us: u64,
    /// Largest latency, microseconds.
    pub max_us: u64,
    /// Failed calls.
    pub errors: u64,
    /// Successful calls.
    pub calls: u64,
    /// Calls in flight.
    pub inflight: usize,
    /// Payload bytes.
    pub payload: usize,
    /// Client connections.
    pub connections: usize,
    /// Server processes.
    pub servers: usize,
    /// Runtime flavour of every process.
    pub runtime: RuntimeFlavor,
    /// Client endpoint layout.
    pub client_endpoints: quinn_echo::ClientEndpoints,
    /// Fixed UDP payload size, if set (else quinn's default with MTU discovery).
    pub mtu: Option<u16>,
    /// Requested seconds of load.
    pub secs: u64,
    /// Measured seconds, first call to last reply.
    pub elapsed_s: f64,
}

impl BenchReport {
    /// Builds the report from a finished load.
    pub fn new(opts: &BenchOptions, r: &LoadResult) -> Self {
        BenchReport {
            mode: opts.mode,
            rps: (r.rps() * 10.0).round() / 10.0,
            p50_us: r.hist.quantile(0.50),
            p99_us: r.hist.quantile(0.99),
            p999_us: r.hist.quantile(0.999),
            max_us: r.hist.max(),
            errors: r.errors,
            calls: r.ok,
            inflight: opts.inflight,
            payload: opts.payload,
            connections: opts.connections,
            servers: opts.servers,
            runtime: opts.runtime,
            client_endpoints: opts.client_endpoints,
            mtu: opts.mtu,
            secs: opts.secs,
            elapsed_s: (r.elapsed.as_secs_f64() * 1000.0).round() / 1000.0,
        }
    }

    /// A few lines for humans.
    pub fn summary(&self) -> String {
        format!(
            "mode {:?}, runtime {}, client endpoints {:?}, mtu {}, {} in flight over {} connection(s) to {} server process(es), \
             {}-byte payload, {} s\n  {:.0} calls/s ({} calls in {:.2} s), {} errors\n  \
             latency p50 {} us, p99 {} us, p99.9 {} us, max {} us",
            self.mode,
            self.runtime.name(),
            self.client_endpoints,
            self.mtu.map_or_else(|| "default".to_owned(), |m| m.to_string()),
            self.inflight,
            self.connections,
            self.servers,
            self.payload,
            self.secs,
            self.rps,
            self.calls,
            self.elapsed_s,
            self.errors,
            self.p50_us,
            self.p99_us,
            self.p999_us,
            self.max_us,
        )
    }
}

/// Concurrent bidirectional streams each connection allows: four times the in-flight calls
/// it carries on average, at least 256. A finished stream keeps its credit until the peer's
/// ack of its last frame (acks may wait up to quinn's 25 ms max_ack_delay), and callers need
/// not spread evenly over connections; with only twice the average, 1-byte runs stalled
/// 0.1 % of calls for ~50 ms waiting for stream credit. Both modes use the same figure.
pub fn streams_per_connection(inflight: usize, connections: usize) -> u32 {
    let per = inflight.div_ceil(connections.max(1));
    (per * 4).clamp(256, 1 << 20) as u32
}

impl BenchOptions {
    /// Checks ranges.
    pub fn validate(&self) -> Result<(), BenchError> {
        let bad = |s: String| Err(BenchError::InvalidOptions(s));
        if self.inflight == 0 || self.inflight > MAX_INFLIGHT {
            return bad(format!("--inflight must be 1..={MAX_INFLIGHT}"));
        }
        if self.secs == 0 || self.secs > MAX_SECS {
            return bad(format!("--secs must be 1..={MAX_SECS}"));
        }
        if self.payload > quinn_echo::MAX_MESSAGE {
            return bad(format!(
                "--payload must be at most {}",
                quinn_echo::MAX_MESSAGE
            ));
        }
        if self.connections == 0 || self.connections > 1024 {
            return bad("--connections must be 1..=1024".into());
        }
        if matches!(self.mtu, Some(m) if !(1200..=65_000).contains(&m)) {
            return bad("--mtu must be 1200..=65000".into());
        }
        if self.servers == 0 || self.servers > 64 {
            return bad("--servers must be 1..=64".into());
        }
        Ok(())
    }

    /// The whole run's hard timeout: load, grace, plus set-up and tear-down.
    pub fn hard_timeout(&self) -> Duration {
        Duration::from_secs(self.secs) + GRACE + Duration::from_secs(30)
    }

    fn server_args(&self) -> Vec<String> {
        let mut args = vec![
            "--role".into(),
            self.mode.server_role().into(),
            "--listen".into(),
            "127.0.0.1:0".into(),
            "--runtime".into(),
            self.runtime.name().into(),
            "--max-streams".into(),
            streams_per_connection(self.inflight, self.connections).to_string(),
        ];
        if let Some(mtu) = self.mtu {
            args.extend(["--mtu".into(), mtu.to_string()]);
        }
        args
    }
}

/// Runs the client side: starts the server processes, drives the load on a runtime of the
/// chosen flavour, stops the servers, reports. Call from `main` (it builds its own runtime).
pub fn run(opts: &BenchOptions) -> Result<BenchReport, BenchError> {
    opts.validate()?;
    let mut children = Children::new();
    let mut servers: Vec<ServerReady> = Vec::with_capacity(opts.servers);
    for _ in 0..opts.servers {
        servers.push(children.spawn_server(&opts.server_args(), READY_TIMEOUT)?);
    }
    if opts.progress {
        let addrs: Vec<String> = servers.iter().map(|s| s.addr.to_string()).collect();
        eprintln!(
            "[bench] {} server process(es) ready at {}",
            children.len(),
            addrs.join(", ")
        );
    }
    let hard = opts.hard_timeout();
    let result = opts.runtime.block_on(async {
        rt::timeout_at(std::time::Instant::now() + hard, client(opts, &servers))
            .await
            .ok_or(BenchError::HardTimeout(hard))?
    })?;
    // The runtime is gone (tokio) or idle (smol); `children` drops last and kills servers.
    drop(children);
    let result = result?;
    if let (Some(e), true) = (&result.sample_error, opts.progress) {
        eprintln!("[bench] sample error: {e}");
    }
    Ok(BenchReport::new(opts, &result))
}

async fn client(opts: &BenchOptions, servers: &[ServerReady]) -> Result<LoadResult, BenchError> {
    let plan = LoadPlan {
        inflight: opts.inflight,
        duration: Duration::from_secs(opts.secs),
        grace: GRACE,
        max_calls_per_slot: MAX_CALLS_PER_SLOT,
        progress: opts.progress,
    };
    let payload = payload(opts.payload);
    match opts.mode {
        Mode::BaselineQuinn => {
            let servers: Vec<(SocketAddr, Vec<u8>)> = servers
                .iter()
                .map(|s| (s.addr, s.cert_der.clone()))
                .collect();
            let streams = streams_per_connection(opts.inflight, opts.connections);
            let target = Arc::new(
                quinn_echo::QuinnEcho::connect(
                    &servers,
                    opts.connections,
                    opts.client_endpoints,
                    streams,
                    opts.mtu,
                    payload,
                )
                .await?,
            );
            let result = drive(target.clone(), &plan).await;
            target.close().await;
            Ok(result)
        }
        Mode::Shoal => match opts.runtime {
            RuntimeFlavor::Smol => {
                let target = Arc::new(
                    shoal_mode::connect::<shoal_smol::Smol>(servers, opts, payload).await?,
                );
                Ok(drive(target, &plan).await)
            }
            RuntimeFlavor::CurrentThread | RuntimeFlavor::MultiThread => {
                let target = Arc::new(
                    shoal_mode::connect::<shoal_tokio::Tokio>(servers, opts, payload).await?,
                );
                Ok(drive(target, &plan).await)
            }
        },
    }
}

async fn drive<T: CallTarget>(target: Arc<T>, plan: &LoadPlan) -> LoadResult {
    load::run(target, plan).await
}

/// A server process: `--role quinn-server|shoal-worker`. Binds `listen` (loopback only),
/// prints its ready line on stdout, serves until killed or until stdin closes.
pub fn server_main(
    mode: Mode,
    listen: SocketAddr,
    runtime: RuntimeFlavor,
    max_streams: u32,
    mtu: Option<u16>,
) -> Result<(), BenchError> {
    if !listen.ip().is_loopback() {
        return Err(BenchError::InvalidOptions(
            "the bench listens on loopback only".into(),
        ));
    }
    procs::exit_when_stdin_closes();
    match mode {
        Mode::Shoal => shoal_mode::worker_main(listen, runtime, max_streams),
        Mode::BaselineQuinn => runtime.block_on(async {
            let (endpoint, cert_der) = quinn_echo::server_endpoint(listen, max_streams, mtu)?;
            let ready = ServerReady {
                addr: endpoint.local_addr()?,
                cert_der,
            };
            println!("{}", ready.line());
            quinn_echo::serve(endpoint).await;
            Ok(())
        })?,
    }
}
