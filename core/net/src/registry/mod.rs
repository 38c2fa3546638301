//! [`WorkerRegistry`]: which workers exist and how loaded they are, fed by cluster events.
//!
//! The registry subscribes to its [`Cluster`]'s core events ([`shoal_core::Event`], not the
//! user-facing [`crate::ClusterEvent`] mirror, so tags reach the balancer exactly as the core
//! holds them) and feeds the core [`shoal_core::Balancer`]: `MemberJoined`/`MemberUpdated`/
//! `MemberRecovered` upsert the member, `MemberSuspected` upserts it as Suspect (avoided while
//! alternatives exist), and `MemberFailed`/`MemberLeft`/`MemberReaped` remove it from
//! selection. A failed (or reaped)
//! worker's pooled connections are closed at once, so calls in flight on them fail now
//! rather than at the idle timeout; a worker that *left* is draining its calls (a graceful
//! shutdown), so its connections are only let go: calls in flight on them still get their
//! answers, and each connection closes when its last call ends. A `Lagged` subscriber
//! resynchronises from the cluster's member list. The local node and members without an RPC address
//! are not workers.
//!
//! Selection and accounting are the core's; this module only holds the shared state (see
//! `state.rs`) behind a mutex that is held for one select or one finish at a time, never
//! across an `await`.

pub(crate) mod state;

use crate::driver::Recv;
use crate::rpc::error::CallError;
use crate::runtime::RuntimeBinding;
use crate::{Cluster, ClusterError};
use rand_chacha::ChaCha8Rng;
use rand_core::{OsRng, SeedableRng};
use shoal_core::{
    Balancer, BalancerConfig, Event, Member, MemberState, NodeId, Outcome, SelectError, Timestamp,
    WorkerStats,
};
use state::MutexGuard;
use state::{Meta, PooledConn, SelectErr, State};
use std::collections::BTreeMap;
use std::net::SocketAddr;
use std::sync::{Arc, Weak};
use std::time::Duration;

/// The selection strategy, with rpcnet's variant names: `RoundRobin`, `Random`,
/// `LeastConnections` (true in-flight counts of this client's calls, released on every
/// ending including cancellation), and `P2c` (power of two choices over peak-EWMA latency ×
/// in-flight, the default).
pub type LoadBalancingStrategy = shoal_core::Strategy;

/// Why a worker left the registry, which decides what happens to its connections.
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
enum Gone {
    /// Failed, reaped, or no longer serving: close its connections now.
    Failed,
    /// Left gracefully and is draining: let in-flight calls finish.
    Left,
}

/// One worker as the registry sees it.
#[derive(Clone, Debug, PartialEq)]
pub struct WorkerInfo {
    /// Stable id (derived from its name).
    pub id: NodeId,
    /// Its node name.
    pub name: String,
    /// Its `label` tag if it has one, else its name (what rpcnet called the worker label).
    pub label: String,
    /// Where its RPC server listens.
    pub rpc_addr: Option<SocketAddr>,
    /// Its tags.
    pub tags: BTreeMap<String, String>,
    /// Membership state (`None`: gone, listed only until its calls finish).
    pub state: Option<MemberState>,
    /// Calls this client has in flight on it.
    pub in_flight: u32,
    /// Peak-EWMA latency estimate.
    pub latency: Duration,
    /// The core's full accounting snapshot (connections, outcomes, ejection).
    pub stats: WorkerStats,
}

impl WorkerInfo {
    fn new(stats: WorkerStats, meta: Meta) -> Self {
        WorkerInfo {
            id: stats.id,
            label: meta
                .tags
                .get("label")
                .cloned()
                .unwrap_or_else(|| meta.name.clone()),
            name: meta.name,
            rpc_addr: stats.rpc_addr,
            tags: meta.tags,
            state: stats.state,
            in_flight: stats.in_flight,
            latency: stats.latency,
            stats,
        }
    }
}

/// A pooled connection. (Tried: `Arc<quinn::Connection>`, to clone with one atomic instead
/// of quinn's connection lock; it was 1 % slower, the extra indirection costing more.)
pub(crate) type Conn = quinn::Connection;

impl PooledConn for Conn {
    fn is_closed(&self) -> bool {
        self.close_reason().is_some()
    }

    fn close(&self) {
        quinn::Connection::close(self, 0u32.into(), b"worker left the cluster");
    }
}

pub(crate) struct Shared {
    state: state::Mutex<State<Conn>>,
    clock: CallClock,
}

/// The registry's clock: read twice per call (a lease's start and its end), so a
/// calibrated TSC read (quanta) rather than `Instant::elapsed` (clock_gettime), which cost
/// twice as much on the benchmark machine. quanta uses the OS clock where the TSC is not
/// invariant. Only differences matter: the core sees microseconds since the registry began.
struct CallClock {
    clock: quanta::Clock,
    epoch: u64,
}

impl CallClock {
    fn new() -> Self {
        let clock = quanta::Clock::new();
        let epoch = clock.raw();
        CallClock { clock, epoch }
    }

    fn now(&self) -> Timestamp {
        Timestamp::from_micros(self.clock.delta_as_nanos(self.epoch, self.clock.raw()) / 1000)
    }
}

impl Shared {
    pub(crate) fn lock(&self) -> MutexGuard<'_, State<Conn>> {
        // The state is only changed by core methods that do not panic half-way, so a
        // poisoned lock still guards consistent state.
        self.state.lock().unwrap_or_else(|e| e.into_inner())
    }

    pub(crate) fn now(&self) -> Timestamp {
        self.clock.now()
    }

    pub(crate) fn finish(&self, lease: u64, outcome: Outcome) {
        let now = self.now();
        self.lock().finish(lease, outcome, now);
    }
}

/// Tracks the cluster's workers and owns the load-balancing state a
/// [`crate::ClusterClient`] uses. Create it, [`start`](WorkerRegistry::start) it, share it
/// in an `Arc`.
pub struct WorkerRegistry<R> {
    cluster: Cluster<R>,
    pub(crate) shared: Arc<Shared>,
    local: NodeId,
    started: std::sync::atomic::AtomicBool,
}

impl<R: RuntimeBinding> std::fmt::Debug for WorkerRegistry<R> {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.debug_struct("WorkerRegistry")
            .field("cluster", &self.cluster.name())
            .field("strategy", &self.strategy())
            .finish()
    }
}

impl<R: RuntimeBinding> WorkerRegistry<R> {
    /// A registry over `cluster` choosing workers by `strategy` (default balancer settings).
    pub fn new(cluster: Cluster<R>, strategy: LoadBalancingStrategy) -> Self {
        let config = BalancerConfig {
            strategy,
            ..BalancerConfig::default()
        };
        // The default balancer settings validate (a unit test in the core checks it).
        Self::with_config(cluster, config).expect("default balancer config is valid")
    }

    /// A registry with explicit balancer settings (per-worker caps, ejection, weights).
    pub fn with_config(
        cluster: Cluster<R>,
        config: BalancerConfig,
    ) -> Result<Self, crate::rpc::error::ConfigError> {
        let balancer = Balancer::new(config)?;
        // Selection randomness only (no secret): fall back to the clock if the OS source fails.
        let rng = ChaCha8Rng::from_rng(OsRng).unwrap_or_else(|_| {
            let t = std::time::SystemTime::now()
                .duration_since(std::time::UNIX_EPOCH)
                .map_or(0, |d| d.as_nanos() as u64);
            ChaCha8Rng::seed_from_u64(t)
        });
        Ok(WorkerRegistry {
            local: cluster.id(),
            cluster,
            shared: Arc::new(Shared {
                state: state::Mutex::new(State::new(balancer, rng, 1)),
                clock: CallClock::new(),
            }),
            started: false.into(),
        })
    }

    /// The cluster it watches.
    pub fn cluster(&self) -> &Cluster<R> {
        &self.cluster
    }

    /// The selection strategy in force.
    pub fn strategy(&self) -> LoadBalancingStrategy {
        self.shared.lock().balancer.strategy()
    }

    /// Switches strategy; accounting carries over.
    pub fn set_strategy(&self, strategy: LoadBalancingStrategy) {
        self.shared.lock().balancer.set_strategy(strategy);
    }

    /// Starts following the cluster: loads the current members, then applies every event in
    /// a background task (which ends when the cluster stops or the registry is dropped).
    /// Calling it again does nothing.
    pub async fn start(self: &Arc<Self>) -> Result<(), ClusterError> {
        if self.started.swap(true, std::sync::atomic::Ordering::AcqRel) {
            return Ok(());
        }
        // Subscribe before reading the members, so nothing falls between the two.
        let mut events = self.cluster.subscribe_core();
        self.resync().await?;
        let weak: Weak<Self> = Arc::downgrade(self);
        R::spawn(async move {
            while let Some(event) = std::future::poll_fn(|cx| events.poll_recv(cx)).await {
                let Some(reg) = weak.upgrade() else { return };
                match event {
                    Recv::Item(e) => reg.apply(&e),
                    Recv::Lagged { missed } => {
                        tracing::warn!(missed, "registry lagged behind cluster events; resyncing");
                        if reg.resync().await.is_err() {
                            return;
                        }
                    }
                }
            }
        });
        Ok(())
    }

    /// Reloads every member from the cluster (after a lag).
    async fn resync(&self) -> Result<(), ClusterError> {
        let members = self.cluster.core_members().await?;
        let known = self.shared.lock().member_ids();
        for m in &members {
            self.upsert(m);
        }
        for id in known {
            match members.iter().find(|m| m.info.id == id) {
                Some(m) if m.state.is_live() => {}
                Some(m) if m.state == MemberState::Left => self.remove(id, Gone::Left),
                _ => self.remove(id, Gone::Failed),
            }
        }
        Ok(())
    }

    /// Applies one core event. Membership only: the rest (joins, partitions, refutations)
    /// says nothing about which workers can take calls.
    fn apply(&self, event: &Event) {
        match event {
            Event::MemberJoined(m)
            | Event::MemberUpdated(m)
            | Event::MemberRecovered(m)
            | Event::MemberSuspected(m) => self.upsert(m),
            Event::MemberFailed(m) => self.remove(m.info.id, Gone::Failed),
            Event::MemberLeft(m) => self.remove(m.info.id, Gone::Left),
            Event::MemberReaped(id) => self.remove(*id, Gone::Failed),
            _ => {}
        }
    }

    /// The member as the core holds it: its tags go to the balancer as they are (no map in
    /// between that could drop one).
    fn upsert(&self, m: &Member) {
        let id = m.info.id;
        let rpc = m
            .info
            .rpc_addr()
            .map(|a| a.get())
            .filter(|_| id != self.local);
        let (Some(addr), true) = (rpc, m.state.is_live()) else {
            self.remove(id, Gone::Failed);
            return;
        };
        let meta = Meta {
            name: m.info.name.as_str().to_owned(),
            tags: m
                .info
                .tags
                .iter()
                .map(|(k, v)| (k.to_owned(), v.to_owned()))
                .collect(),
            core_tags: m.info.tags.clone(),
        };
        let now = self.shared.now();
        let (moved, wake) = self
            .shared
            .lock()
            .upsert(id, m.state, &m.info.tags, addr, meta, now);
        // It moved: its old connections lead nowhere.
        for c in moved {
            PooledConn::close(&c);
        }
        for w in wake {
            w.wake();
        }
    }

    fn remove(&self, id: NodeId, gone: Gone) {
        let now = self.shared.now();
        let (conns, wake) = self.shared.lock().remove(id, now);
        for w in wake {
            w.wake();
        }
        match gone {
            Gone::Failed => {
                for c in conns {
                    PooledConn::close(&c);
                }
            }
            // Dropped, not closed: a call in flight holds its own handle, and quinn closes
            // the connection when the last handle goes.
            Gone::Left => drop(conns),
        }
    }

    /// Picks a worker by the strategy, as a call would, without calling it (its lease is
    /// released at once, as cancelled).
    pub fn select_worker(&self, filter: Option<&str>) -> Result<WorkerInfo, CallError> {
        let now = self.shared.now();
        let mut st = self.shared.lock();
        let lease = st.select(now, filter.unwrap_or("")).map_err(select_error)?;
        st.finish(lease.id, Outcome::Cancelled, now);
        let stats = st.balancer.worker(lease.worker, now);
        let meta = st.meta.get(&lease.worker).cloned();
        match (stats, meta) {
            (Some(s), Some(m)) => Ok(WorkerInfo::new(s, m)),
            _ => Err(CallError::NoMatchingWorker {
                filter: filter.unwrap_or("").to_owned(),
            }),
        }
    }

    /// Live workers whose tags (as the core holds them) match `filter`, in id order.
    pub(crate) fn live_matching(&self, filter: &shoal_core::Filter) -> Vec<WorkerInfo> {
        let now = self.shared.now();
        self.shared
            .lock()
            .workers(now)
            .into_iter()
            .filter(|(s, m)| s.state.is_some_and(|st| st.is_live()) && filter.matches(&m.core_tags))
            .map(|(s, m)| WorkerInfo::new(s, m))
            .collect()
    }

    /// Every known worker, in id order.
    pub fn workers(&self) -> Vec<WorkerInfo> {
        let now = self.shared.now();
        self.shared
            .lock()
            .workers(now)
            .into_iter()
            .map(|(s, m)| WorkerInfo::new(s, m))
            .collect()
    }

    /// Calls in flight from this node, all workers together.
    pub fn in_flight(&self) -> u64 {
        self.shared.lock().balancer.total_in_flight()
    }
}

pub(crate) fn select_error(e: SelectErr) -> CallError {
    match e {
        SelectErr::Filter(f) => CallError::BadFilter(f),
        SelectErr::Select(SelectError::NoMatchingWorker { filter }) => {
            CallError::NoMatchingWorker { filter }
        }
        SelectErr::Select(SelectError::Overloaded { .. }) => CallError::Overloaded { worker: None },
    }
}
