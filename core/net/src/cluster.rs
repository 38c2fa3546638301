//! [`Cluster`]: the membership handle users hold, and what it hands out.

use crate::driver::{Driver, DriverConfig, DriverStats, Handle, Observer, Recv, Reply, Subscriber};
use crate::runtime::{self, RuntimeBinding};
use crate::{ClusterConfig, ClusterError};
use futures_core::Stream;
use rand_chacha::ChaCha20Rng;
use rand_core::{OsRng, RngCore, SeedableRng};
use shoal_core::envelope::Key;
use shoal_core::{Event, Identity, Member, MemberState, NodeId, PacketError, Stats};
use std::collections::BTreeMap;
use std::future::Future;
use std::io;
use std::marker::PhantomData;
use std::net::SocketAddr;
use std::pin::Pin;
use std::sync::Arc;
use std::task::{Context, Poll};
use std::time::Duration;
use tracing::Instrument;

type NodeRng = ChaCha20Rng;

/// One member as seen from this node, detached from the node (a copy, cheap to keep).
#[derive(Clone, Debug, PartialEq)]
pub struct MemberSnapshot {
    /// Stable id.
    pub id: NodeId,
    /// Human-readable name.
    pub name: String,
    /// Advertised gossip address.
    pub gossip_addr: SocketAddr,
    /// Advertised RPC address, if it serves RPC.
    pub rpc_addr: Option<SocketAddr>,
    /// What this node believes about it.
    pub state: MemberState,
    /// Its incarnation (raised by the member itself to refute suspicion or publish tags).
    pub incarnation: u64,
    /// Its tags.
    pub tags: BTreeMap<String, String>,
    /// Suspicion level this node computes for it, if this node watches it (`None` in event
    /// payloads and for members watched by others).
    pub phi: Option<f64>,
    /// Whether this is the local node.
    pub is_local: bool,
}

impl MemberSnapshot {
    fn of(m: &Member, local: NodeId, phi: Option<f64>) -> Self {
        MemberSnapshot {
            id: m.info.id,
            name: m.info.name.as_str().to_owned(),
            gossip_addr: m.info.gossip_addr().get(),
            rpc_addr: m.info.rpc_addr().map(|a| a.get()),
            state: m.state,
            incarnation: m.info.incarnation,
            tags: m
                .info
                .tags
                .iter()
                .map(|(k, v)| (k.to_owned(), v.to_owned()))
                .collect(),
            phi,
            is_local: m.info.id == local,
        }
    }

    /// Whether it is alive or suspect (may still be serving).
    pub fn is_live(&self) -> bool {
        self.state.is_live()
    }
}

/// What a subscriber hears: the core's events with rpcnet's names, plus [`ClusterEvent::Lagged`].
#[derive(Clone, Debug, PartialEq)]
pub enum ClusterEvent {
    /// This node's join was answered.
    Joined {
        /// The seed that answered.
        via: SocketAddr,
        /// Live members right after joining, this node included.
        members: usize,
    },
    /// A member became known and alive (first time, or back after being down).
    NodeJoined(MemberSnapshot),
    /// A member published new tags or addresses.
    NodeUpdated(MemberSnapshot),
    /// A member is suspected of having failed.
    NodeSuspected(MemberSnapshot),
    /// A suspected member refuted the suspicion.
    NodeRecovered(MemberSnapshot),
    /// A member was declared failed.
    NodeFailed(MemberSnapshot),
    /// A member left on purpose.
    NodeLeft(MemberSnapshot),
    /// A failed or left member was forgotten.
    NodeReaped(NodeId),
    /// This node refuted news about itself by raising its incarnation.
    Refuted {
        /// The new incarnation.
        incarnation: u64,
    },
    /// This node finished leaving.
    LeftCluster,
    /// Too few members of the last stable view are reachable.
    PartitionDetected {
        /// Reachable members, this node included.
        reachable: usize,
        /// Members in the last stable view.
        known: usize,
        /// Whether this node's side is below the quorum.
        minority: bool,
    },
    /// Enough members are reachable again.
    PartitionHealed {
        /// Reachable members, this node included.
        reachable: usize,
        /// Members in the last stable view.
        known: usize,
    },
    /// Another live process uses this node's name (so its id) from `other`: the two keep
    /// refuting each other. Give each process its own name.
    IdentityConflict {
        /// The other claimant's gossip address.
        other: SocketAddr,
    },
    /// This subscriber fell behind and `missed` events were dropped for it; read
    /// [`Cluster::members`] to resynchronise.
    Lagged {
        /// How many events it missed.
        missed: u64,
    },
}

impl ClusterEvent {
    fn from_core(e: Event, local: NodeId) -> Self {
        let snap = |m: &Member| MemberSnapshot::of(m, local, None);
        match e {
            Event::Joined { via, members } => ClusterEvent::Joined { via, members },
            Event::MemberJoined(m) => ClusterEvent::NodeJoined(snap(&m)),
            Event::MemberUpdated(m) => ClusterEvent::NodeUpdated(snap(&m)),
            Event::MemberSuspected(m) => ClusterEvent::NodeSuspected(snap(&m)),
            Event::MemberRecovered(m) => ClusterEvent::NodeRecovered(snap(&m)),
            Event::MemberFailed(m) => ClusterEvent::NodeFailed(snap(&m)),
            Event::MemberLeft(m) => ClusterEvent::NodeLeft(snap(&m)),
            Event::MemberReaped(id) => ClusterEvent::NodeReaped(id),
            Event::Refuted { incarnation } => ClusterEvent::Refuted { incarnation },
            Event::LeftCluster => ClusterEvent::LeftCluster,
            Event::PartitionDetected {
                reachable,
                known,
                minority,
            } => ClusterEvent::PartitionDetected {
                reachable,
                known,
                minority,
            },
            Event::PartitionHealed { reachable, known } => {
                ClusterEvent::PartitionHealed { reachable, known }
            }
            Event::IdentityConflict { other } => ClusterEvent::IdentityConflict { other },
        }
    }
}

/// A subscription to cluster events (see [`Cluster::subscribe`]). Each stream has its own
/// cursor into a bounded buffer: one that falls behind gets [`ClusterEvent::Lagged`], never a
/// silent gap, and never slows the node.
#[derive(Debug)]
pub struct EventStream {
    inner: Subscriber<Event>,
    local: NodeId,
}

impl EventStream {
    /// The next event; `None` once the node stopped and every buffered event was read.
    pub async fn recv(&mut self) -> Option<ClusterEvent> {
        std::future::poll_fn(|cx| self.poll_recv(cx)).await
    }

    /// Polls for the next event.
    pub fn poll_recv(&mut self, cx: &mut Context<'_>) -> Poll<Option<ClusterEvent>> {
        self.inner.poll_recv(cx).map(|r| {
            r.map(|r| match r {
                Recv::Item(e) => ClusterEvent::from_core(e, self.local),
                Recv::Lagged { missed } => ClusterEvent::Lagged { missed },
            })
        })
    }
}

impl Stream for EventStream {
    type Item = ClusterEvent;

    fn poll_next(self: Pin<&mut Self>, cx: &mut Context<'_>) -> Poll<Option<ClusterEvent>> {
        self.get_mut().poll_recv(cx)
    }
}

/// Counters of one node: the core's and the driver's.
#[derive(Clone, Debug, PartialEq, Eq)]
pub struct ClusterStats {
    /// The node's counters. Datagrams the core's envelope refused (wrong key, forged,
    /// plaintext) are in `node.dropped` under their reason, so
    /// `node.dropped_for(&PacketError::Unauthenticated)` counts wrong-key packets.
    pub node: Stats,
    /// The drive loop's I/O counters (send and receive errors are counted, never fatal).
    pub driver: DriverStats,
}

impl ClusterStats {
    /// Datagrams dropped because they failed authentication (wrong or unknown key, forged).
    pub fn unauthenticated(&self) -> u64 {
        self.node.dropped_for(&PacketError::Unauthenticated)
    }
}

/// The future of a command that is already queued: await it for the outcome, or drop it
/// (the command still applies, in call order).
#[derive(Debug)]
pub struct CommandFuture(Reply<()>);

impl Future for CommandFuture {
    type Output = Result<(), ClusterError>;

    fn poll(mut self: Pin<&mut Self>, cx: &mut Context<'_>) -> Poll<Self::Output> {
        Pin::new(&mut self.0).poll(cx).map_err(ClusterError::from)
    }
}

#[derive(Debug)]
struct Inner {
    handle: Handle<NodeRng>,
    keyed: bool,
    id: NodeId,
    name: String,
    gossip_addr: SocketAddr,
    local_gossip_addr: SocketAddr,
    join_timeout: Duration,
    leave_timeout: Duration,
    /// The node's QUIC endpoint, when a [`crate::Server`] started this node, so a
    /// [`crate::ClusterClient`] on it shares the one socket.
    rpc: std::sync::OnceLock<(quinn::Endpoint, crate::rpc::endpoint::KillSwitch)>,
    /// The runtime the node runs on (its binding's), for timeouts and what the RPC layer
    /// builds on this node.
    runtime: Arc<dyn quinn::Runtime>,
    /// Where its drivers run (the runtime above, and the network thread it keeps alive, if
    /// any).
    _place: crate::runtime::Placement,
}

/// A running cluster node: a cheap, cloneable handle to the task that owns it.
///
/// The node runs until [`Cluster::leave`] / [`Cluster::shutdown`], or until every handle is
/// dropped (then it stops without telling peers, who will see it fail: call `shutdown` for a
/// graceful exit).
///
/// `R` is the runtime binding; use the facades' aliases (`shoal_tokio::Cluster`,
/// `shoal_smol::Cluster`).
pub struct Cluster<R> {
    inner: Arc<Inner>,
    _runtime: PhantomData<fn() -> R>,
}

impl<R> Clone for Cluster<R> {
    fn clone(&self) -> Self {
        Cluster {
            inner: self.inner.clone(),
            _runtime: PhantomData,
        }
    }
}

impl<R> std::fmt::Debug for Cluster<R> {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.debug_struct("Cluster")
            .field("inner", &self.inner)
            .finish()
    }
}

fn os_seeded() -> Result<ChaCha20Rng, ClusterError> {
    ChaCha20Rng::from_rng(OsRng)
        .map_err(|e| ClusterError::Io(io::Error::other(format!("OS random source: {e}"))))
}

impl<R: RuntimeBinding> Cluster<R> {
    /// Binds the gossip socket and starts the node, alone until it [`join`](Cluster::join)s.
    /// Must be called where the binding's runtime runs (inside a tokio runtime with time and
    /// IO enabled for `shoal-tokio`; anywhere for `shoal-smol`).
    pub async fn start(config: ClusterConfig) -> Result<Cluster<R>, ClusterError> {
        config.validate()?;
        Self::start_on(config, crate::runtime::Placement::of::<R>()?).await
    }

    /// [`Cluster::start`] with its drivers placed by `place` (a server's node shares the
    /// server's placement, so both run on one network thread).
    pub(crate) async fn start_on(
        config: ClusterConfig,
        place: crate::runtime::Placement,
    ) -> Result<Cluster<R>, ClusterError> {
        config.validate()?;
        let tags = config.initial_tags()?;
        let socket = std::net::UdpSocket::bind(config.gossip_bind_addr()?)?;
        let local = socket.local_addr()?;
        let gossip_addr = match config.advertise_addr {
            Some(a) => a,
            None if local.ip().is_unspecified() => {
                return Err(ClusterError::InvalidSetting {
                    field: "advertise_addr",
                    reason: format!(
                        "gossip is bound to the wildcard {local}, which peers cannot send to; \
                         set with_advertise_addr"
                    ),
                })
            }
            None => local,
        };
        let rpc_addr = match config.bind_addr.port() {
            0 => None,
            port => Some(SocketAddr::new(gossip_addr.ip(), port)),
        };
        let node_rng = os_seeded()?;
        let mut name_rng = os_seeded()?;
        let name = config
            .name
            .clone()
            .unwrap_or_else(|| format!("node-{:016x}", name_rng.next_u64()));
        // Wall-clock seconds as the starting incarnation: a restarted process with the same
        // name outranks its previous life at once instead of refuting it first.
        let incarnation = std::time::SystemTime::now()
            .duration_since(std::time::UNIX_EPOCH)
            .map(|d| d.as_secs())
            .unwrap_or(0);
        let identity = Identity {
            id: NodeId::from_name(&name),
            name: name.clone(),
            gossip_addr,
            rpc_addr,
            tags,
            incarnation,
        };
        let id = identity.id;

        let runtime = place.runtime.clone();
        let raw = runtime.wrap_udp_socket(socket)?;
        let keyed = config.keyring.is_some();
        if !keyed {
            tracing::warn!("gossip is plaintext (no cluster key): use only on trusted networks");
        }
        let driver_config = DriverConfig {
            event_capacity: config.event_capacity,
            observer: Some(Box::new(TracingObserver)),
            keyring: config.keyring,
            metrics_node: Some(name.clone()),
            ..DriverConfig::default()
        };
        let (driver, handle) = Driver::new(
            runtime.clone(),
            raw,
            config.core,
            identity,
            node_rng,
            driver_config,
        )?;
        let span = tracing::info_span!("shoal", node = %name, gossip = %gossip_addr);
        span.in_scope(|| tracing::info!(%local, ?rpc_addr, "cluster node started"));
        runtime.spawn(Box::pin(driver.instrument(span)));
        Ok(Cluster {
            inner: Arc::new(Inner {
                handle,
                keyed,
                id,
                name,
                gossip_addr,
                local_gossip_addr: local,
                join_timeout: config.join_timeout,
                leave_timeout: config.leave_timeout,
                rpc: std::sync::OnceLock::new(),
                runtime,
                _place: place,
            }),
            _runtime: PhantomData,
        })
    }

    /// This node's id.
    pub fn id(&self) -> NodeId {
        self.inner.id
    }

    /// This node's name.
    pub fn name(&self) -> &str {
        &self.inner.name
    }

    /// The gossip address peers use for this node (pass it as a seed to others).
    pub fn gossip_addr(&self) -> SocketAddr {
        self.inner.gossip_addr
    }

    /// The address the gossip socket is bound to.
    pub fn local_gossip_addr(&self) -> SocketAddr {
        self.inner.local_gossip_addr
    }

    /// Joins through `seeds` (their gossip addresses) and returns once one answered, or
    /// [`ClusterError::JoinTimeout`] after the configured join timeout (the node keeps
    /// retrying in the background).
    pub async fn join(&self, seeds: Vec<SocketAddr>) -> Result<(), ClusterError> {
        let timeout = self.inner.join_timeout;
        match runtime::timeout(&*self.inner.runtime, timeout, self.inner.handle.join(seeds)).await {
            Ok(r) => r.map(|_| ()).map_err(Into::into),
            Err(_) => {
                tracing::warn!(?timeout, "join timed out: no seed answered");
                Err(ClusterError::JoinTimeout(timeout))
            }
        }
    }

    /// Sets a tag, published to peers by gossip. The change is queued before this returns;
    /// await the result to learn whether the node accepted it (tag limits, node left).
    pub fn set_tag(&self, key: impl Into<String>, value: impl Into<String>) -> CommandFuture {
        CommandFuture(self.inner.handle.set_tag(key.into(), value.into()))
    }

    /// Removes a tag; like [`Cluster::set_tag`].
    pub fn remove_tag(&self, key: impl Into<String>) -> CommandFuture {
        CommandFuture(self.inner.handle.remove_tag(key.into()))
    }

    /// Events from now on.
    pub fn subscribe(&self) -> EventStream {
        EventStream {
            inner: self.inner.handle.subscribe(),
            local: self.inner.id,
        }
    }

    /// The core's events from now on, as the core emits them: the worker registry reads
    /// members (tags included) without the [`ClusterEvent`] mirror's conversions.
    pub(crate) fn subscribe_core(&self) -> Subscriber<Event> {
        self.inner.handle.subscribe()
    }

    /// Every known member as the core holds it (see [`Cluster::subscribe_core`]).
    pub(crate) async fn core_members(&self) -> Result<Vec<Member>, ClusterError> {
        Ok(self
            .inner
            .handle
            .query(|node| node.members().cloned().collect())
            .await?)
    }

    /// Every known member, this node and tombstones (failed, left) included, in id order.
    pub async fn members(&self) -> Result<Vec<MemberSnapshot>, ClusterError> {
        Ok(self
            .inner
            .handle
            .query(|node| {
                let local = node.id();
                node.members()
                    .map(|m| MemberSnapshot::of(m, local, node.phi(&m.info.id)))
                    .collect()
            })
            .await?)
    }

    /// Live members (alive or suspect), this node included.
    pub async fn live_members(&self) -> Result<Vec<MemberSnapshot>, ClusterError> {
        let mut all = self.members().await?;
        all.retain(MemberSnapshot::is_live);
        Ok(all)
    }

    /// One member, if known.
    pub async fn member(&self, id: NodeId) -> Result<Option<MemberSnapshot>, ClusterError> {
        Ok(self
            .inner
            .handle
            .query(move |node| {
                node.member(&id)
                    .map(|m| MemberSnapshot::of(m, node.id(), node.phi(&id)))
            })
            .await?)
    }

    /// This node as peers see it (current incarnation and tags).
    pub async fn local_member(&self) -> Result<MemberSnapshot, ClusterError> {
        let id = self.inner.id;
        self.member(id).await?.ok_or(ClusterError::Shutdown)
    }

    /// The phi this node computes for `node`, if it watches it.
    pub async fn phi(&self, node: NodeId) -> Result<Option<f64>, ClusterError> {
        Ok(self.inner.handle.query(move |n| n.phi(&node)).await?)
    }

    /// Counters: the node's and the driver's.
    pub async fn stats(&self) -> Result<ClusterStats, ClusterError> {
        let (node, driver) = self.inner.handle.stats().await?;
        Ok(ClusterStats { node, driver })
    }

    async fn keyring<T: Send + 'static>(
        &self,
        f: impl FnOnce(&mut shoal_core::Keyring) -> T + Send + 'static,
    ) -> Result<T, ClusterError> {
        if !self.inner.keyed {
            return Err(ClusterError::InvalidSetting {
                field: "keyring",
                reason: "gossip is plaintext; configure a cluster key at start to rotate keys"
                    .into(),
            });
        }
        let r = self
            .inner
            .handle
            .mutate(move |n| n.keyring_mut().map(f))
            .await?;
        r.ok_or(ClusterError::Shutdown)
    }

    /// Rotation step 1 (on every node): also accept datagrams sealed with `key`.
    pub async fn add_key(&self, key: Key) -> Result<(), ClusterError> {
        self.keyring(|k| k.add_key(key)).await
    }

    /// Rotation step 2 (on every node): seal with `key` from now on.
    pub async fn use_primary_key(&self, key: Key) -> Result<(), ClusterError> {
        self.keyring(|k| k.use_primary(key)).await
    }

    /// Rotation step 3 (on every node): stop accepting `key`. The primary cannot be removed.
    pub async fn remove_key(&self, key: &Key) -> Result<(), ClusterError> {
        let key = key.clone();
        self.keyring(move |k| k.remove_key(&key)).await??;
        Ok(())
    }

    /// Leaves gracefully: peers are told and see this node as *left*, not failed. Returns
    /// once the node finished leaving (it then stops), or [`ClusterError::LeaveTimeout`]
    /// after the configured leave timeout, in which case the node is stopped anyway.
    pub async fn leave(&self) -> Result<(), ClusterError> {
        let timeout = self.inner.leave_timeout;
        match runtime::timeout(&*self.inner.runtime, timeout, self.inner.handle.leave()).await {
            Ok(Ok(())) => Ok(()),
            Ok(Err(e)) => Err(e.into()),
            Err(_) => {
                tracing::warn!(?timeout, "leave timed out; stopping anyway");
                self.inner.handle.shutdown();
                Err(ClusterError::LeaveTimeout(timeout))
            }
        }
    }

    /// Leaves if still running (bounded by the leave timeout), then stops. Calling it on a
    /// stopped node is fine.
    pub async fn shutdown(&self) -> Result<(), ClusterError> {
        let result = match self.leave().await {
            Ok(()) | Err(ClusterError::Shutdown) => Ok(()),
            Err(ClusterError::Command(shoal_core::CommandError::Left)) => Ok(()),
            Err(e) => Err(e),
        };
        self.inner.handle.shutdown();
        result
    }

    /// Stops the node at once **without leaving**: peers are not told and will declare it
    /// failed. For crash simulation in tests; use [`Cluster::shutdown`] otherwise.
    pub fn kill(&self) {
        tracing::warn!(node = %self.inner.name, "killed without leaving");
        self.inner.handle.shutdown();
    }

    /// The node's QUIC endpoint and its kill switch, when a [`crate::Server`] started it.
    pub(crate) fn rpc_endpoint(
        &self,
    ) -> Option<&(quinn::Endpoint, crate::rpc::endpoint::KillSwitch)> {
        self.inner.rpc.get()
    }

    pub(crate) fn set_rpc_endpoint(
        &self,
        endpoint: quinn::Endpoint,
        kill: crate::rpc::endpoint::KillSwitch,
    ) {
        let _ = self.inner.rpc.set((endpoint, kill));
    }

    /// The runtime the node runs on.
    pub(crate) fn runtime(&self) -> &Arc<dyn quinn::Runtime> {
        &self.inner.runtime
    }

    /// Whether the node has stopped.
    pub fn is_stopped(&self) -> bool {
        self.inner.handle.is_closed()
    }
}

/// Turns driver hooks into `tracing` events (inside the node's span).
struct TracingObserver;

impl Observer for TracingObserver {
    fn on_event(&mut self, event: &Event) {
        use tracing::{debug, error, info, warn};
        let who = |m: &Member| (m.info.name.as_str().to_owned(), m.info.gossip_addr());
        match event {
            Event::Joined { via, members } => info!(%via, members, "joined the cluster"),
            Event::MemberJoined(m) => {
                let (name, addr) = who(m);
                info!(member = %name, %addr, "member joined")
            }
            Event::MemberUpdated(m) => {
                let (name, addr) = who(m);
                debug!(member = %name, %addr, incarnation = m.info.incarnation, "member updated")
            }
            Event::MemberSuspected(m) => {
                let (name, addr) = who(m);
                warn!(member = %name, %addr, "member suspected")
            }
            Event::MemberRecovered(m) => {
                let (name, addr) = who(m);
                info!(member = %name, %addr, "member refuted suspicion")
            }
            Event::MemberFailed(m) => {
                let (name, addr) = who(m);
                warn!(member = %name, %addr, "member failed")
            }
            Event::MemberLeft(m) => {
                let (name, addr) = who(m);
                info!(member = %name, %addr, "member left")
            }
            Event::MemberReaped(id) => debug!(member = %id, "tombstone reaped"),
            Event::Refuted { incarnation } => {
                warn!(incarnation, "refuted news about this node")
            }
            Event::LeftCluster => info!("left the cluster"),
            Event::PartitionDetected {
                reachable,
                known,
                minority,
            } => error!(reachable, known, minority, "partition detected"),
            Event::PartitionHealed { reachable, known } => {
                info!(reachable, known, "partition healed")
            }
            Event::IdentityConflict { other } => {
                error!(%other, "another live process claims this node's name")
            }
        }
    }

    fn on_packet_dropped(&mut self, from: SocketAddr, error: &PacketError) {
        tracing::debug!(%from, %error, "dropped gossip datagram");
    }

    fn on_send_error(&mut self, dst: SocketAddr, error: &io::Error) {
        tracing::debug!(%dst, %error, "gossip send failed");
    }

    fn on_recv_error(&mut self, error: &io::Error) {
        tracing::debug!(%error, "gossip receive failed");
    }
}
