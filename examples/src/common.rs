//! Code shared by the `director`, `worker`, `client` and `demo` binaries: development secrets,
//! the node options, event printing, and the director and worker themselves (the demo re-runs
//! itself as either, so they live here rather than in their binaries).
//!
//! ## Development secrets (`--secrets-dir`)
//! Separate processes must trust each other's QUIC certificates and share the gossip key.
//! The director (or the demo) creates a directory, mode 0700, holding:
//!
//! * `ca.pem`: a freshly generated development CA certificate (the CA's private key is never
//!   written: it is dropped once the node certificate is issued);
//! * `node.pem`, `node.key` (0600): one node certificate for `shoal.cluster`, issued by that
//!   CA, shared by every development node of this machine;
//! * `cluster.key` (0600): a random 32-byte gossip key (hex).
//!
//! Workers and clients only read it (start the director first, or pass the same
//! `--secrets-dir`). Certificates are always verified; anyone who can read the directory can
//! join the cluster, so a directory that other users can open is refused. For production,
//! bring real certificates (`TlsConfig::new` / `TlsConfig::from_pem`) and a managed key.
//!
//! ```
//! use shoal_examples::common::{compute, create_or_load_secrets, load_cluster_key};
//!
//! let dir = std::env::temp_dir().join(format!("shoal-common-doc-{}", std::process::id()));
//! let secrets = create_or_load_secrets(&dir).unwrap();
//! assert_eq!(load_cluster_key(&dir).unwrap(), secrets.key);
//! assert_eq!(compute(3), 1 + 4 + 9);
//! std::fs::remove_dir_all(&dir).unwrap();
//! ```

use bytes::Bytes;
use clap::{Args, ValueEnum};
use rand_core::{OsRng, RngCore};
use shoal_tokio::rpc::{DevCa, DEFAULT_SERVER_NAME};
use shoal_tokio::{
    ClusterConfig, ClusterEvent, EventStream, LoadBalancingStrategy, RpcConfig, Server, TlsConfig,
    WorkerRegistry,
};
use std::error::Error;
use std::fs;
use std::io::{self, Write};
use std::net::SocketAddr;
use std::path::Path;
use std::sync::Arc;
use std::time::Duration;

use crate::keys::parse_cluster_key;
use crate::options::ConnectOpts;
pub use crate::options::{default_secrets_dir, Preset};

/// Result type of the binaries.
pub type Res<T> = Result<T, Box<dyn Error + Send + Sync>>;

/// Parses a strategy name for clap (`round-robin`, `random`, `least-connections`, `p2c`).
pub fn parse_strategy(s: &str) -> Result<LoadBalancingStrategy, String> {
    LoadBalancingStrategy::from_name(s)
        .ok_or_else(|| "expected round-robin, random, least-connections or p2c".to_owned())
}

/// TLS settings and gossip key of a development cluster.
pub struct Secrets {
    /// RPC settings with the shared development certificate.
    pub rpc: RpcConfig,
    /// Gossip encryption key.
    pub key: [u8; 32],
}

const FILES: [&str; 4] = ["ca.pem", "node.pem", "node.key", "cluster.key"];

/// Loads the secrets in `dir`, creating them first if the directory holds none.
pub fn create_or_load_secrets(dir: &Path) -> Res<Secrets> {
    if !dir.join("node.key").exists() {
        create_private_dir(dir)?;
        check_private(dir)?;
        let ca = DevCa::generate()?;
        let (chain, key) = ca.issue(DEFAULT_SERVER_NAME)?;
        let mut cluster_key = [0u8; 32];
        OsRng.fill_bytes(&mut cluster_key);
        let chain_pem: String = chain
            .iter()
            .map(|c| pem::encode(&pem::Pem::new("CERTIFICATE", c.to_vec())))
            .collect();
        let key_pem = pem::encode(&pem::Pem::new("PRIVATE KEY", key.secret_der().to_vec()));
        let hex: String = cluster_key.iter().map(|b| format!("{b:02x}")).collect();
        for (name, text) in FILES.iter().zip([ca.ca_pem(), chain_pem, key_pem, hex]) {
            write_private(&dir.join(name), text.as_bytes())?;
        }
        println!(
            "wrote development CA, node certificate and cluster key to {} (local development only)",
            dir.display()
        );
    }
    load_secrets(dir)
}

/// Loads the secrets the director wrote to `dir`.
pub fn load_secrets(dir: &Path) -> Res<Secrets> {
    check_private(dir)?;
    let read = |name: &str| read_secret(dir, name);
    let [ca, chain, key] = ["ca.pem", "node.pem", "node.key"].map(read);
    let tls = TlsConfig::from_pem(&chain?, &key?, &ca?)?;
    Ok(Secrets {
        rpc: RpcConfig::new(tls),
        key: load_cluster_key(dir)?,
    })
}

/// Reads the gossip key `cluster.key` (64 hex digits) the director wrote to `dir`.
pub fn load_cluster_key(dir: &Path) -> Res<[u8; 32]> {
    check_private(dir)?;
    let hex = read_secret(dir, "cluster.key")?;
    Ok(parse_cluster_key(&hex).map_err(|e| format!("cluster.key: {e}"))?)
}

fn read_secret(dir: &Path, name: &str) -> Res<String> {
    let path = dir.join(name);
    fs::read_to_string(&path).map_err(|e| {
        format!(
            "cannot read {}: {e} (start the director first, or pass the --secrets-dir it uses)",
            path.display()
        )
        .into()
    })
}

/// Creates `dir` (and parents) readable by this user only.
pub fn create_private_dir(dir: &Path) -> io::Result<()> {
    let mut b = fs::DirBuilder::new();
    b.recursive(true);
    #[cfg(unix)]
    std::os::unix::fs::DirBuilderExt::mode(&mut b, 0o700);
    b.create(dir)
}

fn check_private(dir: &Path) -> Res<()> {
    #[cfg(unix)]
    {
        use std::os::unix::fs::PermissionsExt;
        let mode = fs::metadata(dir)
            .map_err(|e| {
                format!(
                    "secrets directory {}: {e} (start the director first, or pass the \
                     --secrets-dir it uses)",
                    dir.display()
                )
            })?
            .permissions()
            .mode();
        if mode & 0o077 != 0 {
            return Err(format!(
                "refusing secrets directory {}: other users can open it (mode {:o}); \
                 use `chmod 700` or another --secrets-dir",
                dir.display(),
                mode & 0o777
            )
            .into());
        }
    }
    let _ = dir;
    Ok(())
}

fn write_private(path: &Path, data: &[u8]) -> io::Result<()> {
    let mut o = fs::OpenOptions::new();
    o.write(true).create_new(true);
    #[cfg(unix)]
    std::os::unix::fs::OpenOptionsExt::mode(&mut o, 0o600);
    o.open(path)?.write_all(data)
}

/// A node's cluster configuration.
pub fn cluster_config(
    name: &str,
    bind: SocketAddr,
    preset: Preset,
    key: [u8; 32],
) -> ClusterConfig {
    ClusterConfig::default()
        .with_bind_addr(bind)
        .with_core_config(preset.core())
        .with_name(name)
        .with_cluster_key(key)
        .with_join_timeout(Duration::from_secs(30))
}

/// One line describing an event.
pub fn describe(e: &ClusterEvent) -> String {
    let m = |what: &str, s: &shoal_tokio::MemberSnapshot| {
        let role = s.tags.get("role").map_or("-", String::as_str);
        let rpc = s.rpc_addr.map_or_else(|| "-".to_owned(), |a| a.to_string());
        format!(
            "{what:<10} {} (role={role}, rpc={rpc}, incarnation {})",
            s.name, s.incarnation
        )
    };
    match e {
        ClusterEvent::Joined { via, members } => {
            format!("joined     via {via}, {members} live members")
        }
        ClusterEvent::NodeJoined(s) => m("joined", s),
        ClusterEvent::NodeUpdated(s) => m("updated", s),
        ClusterEvent::NodeSuspected(s) => m("suspected", s),
        ClusterEvent::NodeRecovered(s) => m("recovered", s),
        ClusterEvent::NodeFailed(s) => m("FAILED", s),
        ClusterEvent::NodeLeft(s) => m("left", s),
        ClusterEvent::NodeReaped(id) => format!("reaped     {id}"),
        ClusterEvent::Refuted { incarnation } => format!("refuted    (incarnation {incarnation})"),
        ClusterEvent::LeftCluster => "left the cluster".to_owned(),
        ClusterEvent::PartitionDetected {
            reachable,
            known,
            minority,
        } => format!("PARTITION  {reachable}/{known} reachable (minority: {minority})"),
        ClusterEvent::PartitionHealed { reachable, known } => {
            format!("healed     {reachable}/{known} reachable")
        }
        ClusterEvent::IdentityConflict { other } => {
            format!("CONFLICT   another live process at {other} uses this node's name")
        }
        ClusterEvent::Lagged { missed } => format!("lagged     ({missed} events missed)"),
    }
}

/// Prints every event of `events` as it happens, prefixed with `who`.
pub async fn print_events(who: String, mut events: EventStream) {
    let start = std::time::Instant::now();
    while let Some(e) = events.recv().await {
        println!(
            "[{who} {:>7.3}s] {}",
            start.elapsed().as_secs_f64(),
            describe(&e)
        );
    }
}

/// Options every node binary takes.
#[derive(Args, Clone, Debug)]
pub struct NodeOpts {
    /// Preset, secrets directory and cluster key (the options every binary shares).
    #[command(flatten)]
    pub connect: ConnectOpts,
    /// Leave and exit when standard input closes (used by `demo`, which holds the pipe).
    #[arg(long, hide = true)]
    pub exit_on_stdin_eof: bool,
    /// Print events, periodic membership views (and, on workers, each handled call; on the
    /// client, each call's outcome) as JSON lines stamped with wall-clock time
    /// (`crate::jsonlog`), instead of text.
    #[arg(long)]
    pub json_log: bool,
    /// With `--json-log`: how often to print the membership view, in milliseconds.
    #[arg(long, default_value_t = 500)]
    pub view_ms: u64,
    /// Serve this process's metrics as Prometheus text at `http://ADDR/metrics`
    /// (docs/metrics.md).
    #[arg(long, value_name = "ADDR")]
    pub metrics_addr: Option<std::net::SocketAddr>,
}

impl NodeOpts {
    /// Serves metrics when `--metrics-addr` was given.
    pub fn serve_metrics(&self) -> Res<()> {
        if let Some(addr) = self.metrics_addr {
            crate::metrics::serve_prometheus(addr)?;
        }
        Ok(())
    }

    /// The secrets of `--secrets-dir`, with `--cluster-key` (if given) as the gossip key.
    pub fn load_secrets(&self) -> Res<Secrets> {
        let mut s = load_secrets(&self.connect.secrets_dir())?;
        s.key = self.connect.key_or(s.key);
        Ok(s)
    }

    /// Like [`NodeOpts::load_secrets`], creating the secrets first if the directory holds
    /// none (the director).
    pub fn create_or_load_secrets(&self) -> Res<Secrets> {
        let mut s = create_or_load_secrets(&self.connect.secrets_dir())?;
        s.key = self.connect.key_or(s.key);
        Ok(s)
    }

    /// Prints `cluster`'s events: as text prefixed with `who`, or as JSON lines with
    /// periodic views under `--json-log`.
    pub fn spawn_event_output<R: shoal_net::RuntimeBinding>(
        &self,
        who: String,
        cluster: &shoal_net::Cluster<R>,
    ) {
        if self.json_log {
            crate::jsonlog::spawn_logger(cluster.clone(), Duration::from_millis(self.view_ms));
        } else {
            R::spawn(print_events(who, cluster.subscribe()));
        }
    }
}

/// Waits for Ctrl-C, or (with `--exit-on-stdin-eof`) for standard input to close.
pub async fn stop_signal(stdin_eof: bool) {
    let eof = async {
        if stdin_eof {
            let mut sink = Vec::new();
            let _ = tokio::io::AsyncReadExt::read_to_end(&mut tokio::io::stdin(), &mut sink).await;
        } else {
            std::future::pending::<()>().await;
        }
    };
    tokio::select! {
        _ = tokio::signal::ctrl_c() => {}
        _ = eof => {}
    }
}

/// `director` options.
#[derive(Args, Clone, Debug)]
pub struct DirectorArgs {
    /// RPC (QUIC) address; gossip (UDP) uses the next port unless `--gossip-port`.
    #[arg(long, default_value = "127.0.0.1:7000")]
    pub rpc: SocketAddr,
    /// Gossip UDP port (default: RPC port + 1).
    #[arg(long)]
    pub gossip_port: Option<u16>,
    /// Node name.
    #[arg(long, default_value = "director")]
    pub name: String,
    /// Load-balancing strategy of its worker registry.
    #[arg(long, value_parser = parse_strategy, default_value = "least-connections")]
    pub strategy: LoadBalancingStrategy,
    /// Connection and output options every node binary takes.
    #[command(flatten)]
    pub node: NodeOpts,
}

/// Runs a director until Ctrl-C: cluster enabled, `role=director`, a worker registry, and
/// every cluster event printed.
pub async fn run_director(args: DirectorArgs) -> Res<()> {
    args.node.serve_metrics()?;
    let secrets = args.node.create_or_load_secrets()?;
    let mut server = Server::new(secrets.rpc);
    server.bind(args.rpc).await?;
    let mut config = cluster_config(&args.name, args.rpc, args.node.connect.preset, secrets.key);
    if let Some(p) = args.gossip_port {
        config = config.with_gossip_port(p);
    }
    let cluster = server.enable_cluster(config).await?;
    args.node.spawn_event_output(args.name.clone(), &cluster);
    cluster.set_tag("role", "director").await?;
    let registry = Arc::new(WorkerRegistry::new(cluster.clone(), args.strategy));
    registry.start().await?;
    server.spawn()?;
    println!(
        "director {} up: RPC {}, gossip {} (workers join with --director {}), strategy {}",
        args.name,
        args.rpc,
        cluster.gossip_addr(),
        cluster.gossip_addr(),
        args.strategy.name()
    );
    stop_signal(args.node.exit_on_stdin_eof).await;
    println!("director {}: leaving", args.name);
    server.shutdown().await?;
    Ok(())
}

/// `worker` options.
#[derive(Args, Clone, Debug)]
pub struct WorkerArgs {
    /// Node name (stable: a restarted worker with the same name replaces its old record).
    #[arg(long, default_value = "worker-1")]
    pub name: String,
    /// Label tag (default: the name).
    #[arg(long)]
    pub label: Option<String>,
    /// RPC (QUIC) address; gossip uses the next port. Give each worker its own.
    #[arg(long, default_value = "127.0.0.1:7010")]
    pub rpc: SocketAddr,
    /// The director's gossip address.
    #[arg(long, default_value = "127.0.0.1:7001")]
    pub director: SocketAddr,
    /// Simulated work per `compute` call, in milliseconds.
    #[arg(long, default_value_t = 5)]
    pub work_ms: u64,
    /// The async runtime the worker runs on.
    #[arg(long, value_enum, default_value_t = RuntimeKind::Tokio)]
    pub runtime: RuntimeKind,
    /// Connection and output options every node binary takes.
    #[command(flatten)]
    pub node: NodeOpts,
}

/// What `compute` does with a request `n`: the sum of the squares of 1..=n (mod 2^64).
pub fn compute(n: u64) -> u64 {
    (1..=n.min(1_000_000)).fold(0u64, |acc, i| acc.wrapping_add(i.wrapping_mul(i)))
}

/// The label in a `compute` answer (`"<label> <value>"`).
pub fn answer_label(payload: &Bytes) -> String {
    String::from_utf8_lossy(payload)
        .split(' ')
        .next()
        .unwrap_or("")
        .to_owned()
}

/// Which async runtime a node runs on (`--runtime`): the same Shoal code, bound through
/// `shoal-tokio` or `shoal-smol`.
#[derive(Clone, Copy, Debug, PartialEq, Eq, ValueEnum)]
pub enum RuntimeKind {
    /// tokio, current-thread runtime.
    Tokio,
    /// smol: `smol::block_on` and smol's global executor.
    Smol,
}

/// Runs a worker on the runtime `args.runtime` names, until Ctrl-C (or standard input closes
/// with `--exit-on-stdin-eof`).
pub fn run_worker_main(args: WorkerArgs) -> Res<()> {
    let eof = args.node.exit_on_stdin_eof;
    match args.runtime {
        RuntimeKind::Tokio => block_on(run_worker::<shoal_tokio::Tokio>(args, stop_signal(eof))),
        RuntimeKind::Smol => smol::block_on(run_worker::<shoal_smol::Smol>(
            args,
            stop_signal_from_thread(eof),
        )),
    }
}

/// [`stop_signal`] for a node that does not run on tokio: a helper thread waits for the signal
/// (tokio's portable Ctrl-C and stdin, on a runtime of its own that runs nothing else) and the
/// node's runtime awaits a runtime-neutral oneshot.
pub async fn stop_signal_from_thread(stdin_eof: bool) {
    let (tx, rx) = futures_channel::oneshot::channel::<()>();
    std::thread::spawn(move || {
        if let Ok(rt) = tokio::runtime::Builder::new_current_thread()
            .enable_all()
            .build()
        {
            rt.block_on(stop_signal(stdin_eof));
        }
        let _ = tx.send(());
    });
    let _ = rx.await;
}

/// Runs a worker until `stop`: a `compute` handler answering `"<label> <value>"`, joined to
/// the director with `role=worker`, `label=<label>` and `runtime=<tokio|smol>`. Written once
/// against `shoal-net` for both runtimes; `R` is the facade's binding.
pub async fn run_worker<R: shoal_net::RuntimeBinding>(
    args: WorkerArgs,
    stop: impl std::future::Future<Output = ()>,
) -> Res<()> {
    args.node.serve_metrics()?;
    let secrets = args.node.load_secrets()?;
    let label = args.label.clone().unwrap_or_else(|| args.name.clone());
    let mut server = shoal_net::Server::<R>::new(secrets.rpc);
    let (l, work) = (label.clone(), Duration::from_millis(args.work_ms));
    // `--json-log`: each handled call is logged (before its answer leaves, so every answer
    // a client holds has its line here, even if this process is killed right after).
    let log_as = args
        .node
        .json_log
        .then(|| Arc::<str>::from(args.name.as_str()));
    server.register("compute", move |req: Bytes| {
        let (l, log_as) = (l.clone(), log_as.clone());
        async move {
            let n: u64 = std::str::from_utf8(&req)
                .ok()
                .and_then(|s| s.trim().parse().ok())
                .ok_or("compute expects a decimal number")?;
            if !work.is_zero() {
                shoal_net::sleep(&*R::runtime(), work).await; // simulated work
            }
            if let Some(node) = log_as {
                crate::jsonlog::emit(&crate::jsonlog::LogLine::Handled {
                    t_ms: crate::jsonlog::now_ms(),
                    node: node.to_string(),
                    call: n,
                });
            }
            Ok(Bytes::from(format!("{l} {}", compute(n))))
        }
    })?;
    server.bind(args.rpc).await?;
    let runtime = match args.runtime {
        RuntimeKind::Tokio => "tokio",
        RuntimeKind::Smol => "smol",
    };
    let config = cluster_config(&args.name, args.rpc, args.node.connect.preset, secrets.key)
        .with_tags([
            ("role", "worker"),
            ("label", label.as_str()),
            ("runtime", runtime),
        ]);
    let cluster = server.enable_cluster(config).await?;
    args.node.spawn_event_output(args.name.clone(), &cluster);
    server.spawn()?;
    cluster.join(vec![args.director]).await?;
    // Tags from the config are published at start; set_tag keeps the migration guide's shape.
    cluster.set_tag("role", "worker").await?;
    cluster.set_tag("label", label.as_str()).await?;
    println!(
        "worker {} ({label}) up on {runtime}: RPC {}, gossip {}, joined via {}",
        args.name,
        args.rpc,
        cluster.gossip_addr(),
        args.director
    );
    stop.await;
    println!("worker {}: leaving", args.name);
    server.shutdown().await?;
    Ok(())
}

/// Runs `f` on a current-thread runtime (the fastest set-up per process, see `shoal_tokio::rpc`).
pub fn block_on<F: std::future::Future<Output = Res<()>>>(f: F) -> Res<()> {
    tokio::runtime::Builder::new_current_thread()
        .enable_all()
        .build()?
        .block_on(f)
}
