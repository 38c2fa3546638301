//! The `members` inspector: joins a running cluster as a temporary member tagged
//! `role=inspector`, waits until its view settles, reads every member (name, addresses,
//! state, incarnation, tags, phi), then leaves gracefully so the cluster records it as
//! *left*, not failed. Like `serf members`, but through gossip rather than an RPC to a node.
//!
//! The inspector does not serve RPC (it advertises no RPC address), so balancers never pick
//! it; its own row is left out of the listing.

use crate::options::ConnectOpts;
pub use crate::options::Preset;
use crate::output;
use serde::Serialize;
use shoal_tokio::{Cluster, ClusterConfig, ClusterError, ClusterEvent, MemberSnapshot};
use std::collections::BTreeMap;
use std::net::SocketAddr;
use std::time::Duration;
use tokio::time::{timeout, Instant};

/// The tag every inspector carries, so others can filter it out.
pub const INSPECTOR_TAG: (&str, &str) = ("role", "inspector");

/// What the inspector does.
#[derive(Debug, Clone)]
pub struct InspectOptions {
    /// Gossip addresses of members to join through (at least one).
    pub seeds: Vec<SocketAddr>,
    /// The cluster key, if the cluster encrypts gossip.
    pub cluster_key: Option<[u8; 32]>,
    /// Cluster name, if not the default.
    pub cluster_name: Option<String>,
    /// Timing preset.
    pub preset: Preset,
    /// Where the inspector's gossip socket binds (port 0: any free port).
    pub bind: SocketAddr,
    /// The inspector's node name; default `inspector-<pid>-<random>`.
    pub name: Option<String>,
    /// The view counts as settled after this long without a membership event.
    pub quiet: Duration,
    /// Upper bound on the wait for the view to settle (after the join answered).
    pub max_wait: Duration,
    /// Upper bound on the join and on the graceful leave.
    pub io_timeout: Duration,
}

impl Default for InspectOptions {
    fn default() -> Self {
        InspectOptions {
            seeds: Vec::new(),
            cluster_key: None,
            cluster_name: None,
            preset: Preset::Local,
            bind: SocketAddr::from(([127, 0, 0, 1], 0)),
            name: None,
            quiet: Duration::from_secs(1),
            max_wait: Duration::from_secs(5),
            io_timeout: Duration::from_secs(5),
        }
    }
}

/// The `members` command line (all but the output format), parsed here so tests run it
/// in-process with the binary's own options.
#[derive(Debug, Clone, clap::Args)]
pub struct MembersArgs {
    /// Gossip address of a member to join through (repeatable).
    #[arg(long = "seed", required = true)]
    pub seeds: Vec<SocketAddr>,
    /// Preset, secrets directory and cluster key, as every example binary takes them.
    #[command(flatten)]
    pub connect: ConnectOpts,
    /// Cluster name, if not the default.
    #[arg(long)]
    pub cluster_name: Option<String>,
    /// Where the inspector's gossip socket binds.
    #[arg(long, default_value = "127.0.0.1:0")]
    pub bind: SocketAddr,
    /// The inspector's node name (default: inspector-PID-RANDOM).
    #[arg(long)]
    pub name: Option<String>,
    /// The view counts as settled after this many milliseconds without a membership change.
    #[arg(long, default_value_t = 1000)]
    pub quiet_ms: u64,
    /// Upper bound on the wait for the view to settle, in milliseconds.
    #[arg(long, default_value_t = 5000)]
    pub wait_ms: u64,
    /// Upper bound on the join and on the leave, in milliseconds.
    #[arg(long, default_value_t = 5000)]
    pub join_timeout_ms: u64,
}

impl MembersArgs {
    /// The inspection these arguments ask for; reads the gossip key from `--cluster-key` or
    /// the secrets directory ([`ConnectOpts::gossip_key`]).
    pub fn to_options(&self) -> crate::common::Res<InspectOptions> {
        Ok(InspectOptions {
            seeds: self.seeds.clone(),
            cluster_key: self.connect.gossip_key()?,
            cluster_name: self.cluster_name.clone(),
            preset: self.connect.preset,
            bind: self.bind,
            name: self.name.clone(),
            quiet: Duration::from_millis(self.quiet_ms),
            max_wait: Duration::from_millis(self.wait_ms),
            io_timeout: Duration::from_millis(self.join_timeout_ms),
        })
    }
}

/// One member as the inspector saw it.
#[derive(Debug, Clone, PartialEq, Serialize)]
pub struct MemberRow {
    /// Node name.
    pub name: String,
    /// Node id (hex).
    pub id: String,
    /// Advertised gossip (UDP) address.
    pub gossip_addr: SocketAddr,
    /// Advertised RPC (QUIC) address, if it serves RPC.
    pub rpc_addr: Option<SocketAddr>,
    /// `alive`, `suspect`, `failed` or `left`.
    pub state: String,
    /// Its incarnation.
    pub incarnation: u64,
    /// Its tags.
    pub tags: BTreeMap<String, String>,
    /// The phi the inspector computed for it, if the inspector watched it.
    pub phi: Option<f64>,
}

impl MemberRow {
    /// Converts a snapshot.
    pub fn from_snapshot(m: &MemberSnapshot) -> Self {
        MemberRow {
            name: m.name.clone(),
            id: m.id.to_string(),
            gossip_addr: m.gossip_addr,
            rpc_addr: m.rpc_addr,
            state: format!("{:?}", m.state).to_lowercase(),
            incarnation: m.incarnation,
            tags: m.tags.clone(),
            phi: m.phi.filter(|p| p.is_finite()),
        }
    }
}

/// The result of one inspection.
#[derive(Debug, Clone, PartialEq, Serialize)]
pub struct Inspection {
    /// The inspector's own node name (not among `members`).
    pub inspector: String,
    /// Every member the inspector knew, tombstones included, sorted by name.
    pub members: Vec<MemberRow>,
    /// Whether the view settled before `max_wait` ran out.
    pub settled: bool,
    /// Whether the inspector's graceful leave finished in time.
    pub left_cleanly: bool,
}

/// Why an inspection failed.
#[derive(Debug, thiserror::Error)]
pub enum InspectError {
    /// No seed was given.
    #[error("at least one --seed is needed")]
    NoSeeds,
    /// Starting, joining or querying the inspector node failed.
    #[error(transparent)]
    Cluster(#[from] ClusterError),
    /// The inspector's node stopped before it could read the view.
    #[error("the inspector node stopped before the view settled")]
    Stopped,
}

fn default_name() -> String {
    let nanos = std::time::SystemTime::now()
        .duration_since(std::time::UNIX_EPOCH)
        .map(|d| d.subsec_nanos())
        .unwrap_or(0);
    format!("inspector-{}-{nanos:08x}", std::process::id())
}

/// Joins, waits for the view to settle, reads it, leaves. Must run inside a tokio runtime
/// with IO and time enabled. The inspector leaves even when reading the view fails.
pub async fn inspect(opts: &InspectOptions) -> Result<Inspection, InspectError> {
    if opts.seeds.is_empty() {
        return Err(InspectError::NoSeeds);
    }
    let name = opts.name.clone().unwrap_or_else(default_name);
    let mut config = ClusterConfig::default()
        .with_bind_addr(opts.bind)
        .with_core_config(opts.preset.core())
        .with_name(name.clone())
        .with_tags([INSPECTOR_TAG])
        .with_join_timeout(opts.io_timeout)
        .with_leave_timeout(opts.io_timeout);
    if let Some(key) = opts.cluster_key {
        config = config.with_cluster_key(key);
    }
    if let Some(cluster) = &opts.cluster_name {
        config = config.with_cluster_name(cluster.clone());
    }
    let cluster = Cluster::start(config).await?;
    let read = read_view(&cluster, opts).await;
    // Leave whatever happened, so the cluster sees "left" rather than a failure later.
    let left_cleanly = cluster.shutdown().await.is_ok();
    let (members, settled) = read?;
    Ok(Inspection {
        inspector: name,
        members,
        settled,
        left_cleanly,
    })
}

async fn read_view(
    cluster: &Cluster,
    opts: &InspectOptions,
) -> Result<(Vec<MemberRow>, bool), InspectError> {
    let mut events = cluster.subscribe();
    cluster.join(opts.seeds.clone()).await?;
    // Settled: no event for `quiet`, bounded by `max_wait`.
    let hard = Instant::now() + opts.max_wait;
    let settled = loop {
        let now = Instant::now();
        if now >= hard {
            break false;
        }
        let wait = opts.quiet.min(hard - now);
        match timeout(wait, events.recv()).await {
            Ok(Some(ClusterEvent::LeftCluster)) | Ok(None) => return Err(InspectError::Stopped),
            Ok(Some(_)) => continue,
            Err(_) if wait == opts.quiet => break true,
            Err(_) => break false,
        }
    };
    let mut members: Vec<MemberRow> = cluster
        .members()
        .await?
        .iter()
        .filter(|m| !m.is_local)
        .map(MemberRow::from_snapshot)
        .collect();
    members.sort_by(|a, b| a.name.cmp(&b.name).then(a.id.cmp(&b.id)));
    Ok((members, settled))
}

/// Renders the members as a table like `serf members`.
pub fn render_table(members: &[MemberRow]) -> String {
    let rows: Vec<Vec<String>> = members
        .iter()
        .map(|m| {
            vec![
                m.name.clone(),
                m.gossip_addr.to_string(),
                m.rpc_addr.map_or_else(|| "-".to_owned(), |a| a.to_string()),
                m.state.clone(),
                m.incarnation.to_string(),
                if m.tags.is_empty() {
                    "-".to_owned()
                } else {
                    m.tags
                        .iter()
                        .map(|(k, v)| format!("{k}={v}"))
                        .collect::<Vec<_>>()
                        .join(",")
                },
                m.phi.map_or_else(|| "-".to_owned(), |p| format!("{p:.2}")),
            ]
        })
        .collect();
    output::table(
        &[
            "Name",
            "Gossip",
            "RPC",
            "Status",
            "Incarnation",
            "Tags",
            "Phi",
        ],
        &rows,
    )
}
