//! Load balancing: pure selection of a worker for each call.
//!
//! The rule this module owns: **a pick is always a live member that matches the filter and can
//! take a call, preferring Alive over Suspect.** Concretely:
//!
//! - Candidates are members fed in with [`Balancer::upsert_member`] whose state is Alive or
//!   Suspect and whose tags match the [`Filter`]. Failed and Left members are never picked.
//! - A candidate is skipped while it is ejected (outlier detection, see [`crate::pool`]), at
//!   [`PoolConfig::max_in_flight`], backing off after a failed connection attempt, or has only
//!   draining connections.
//! - Suspect candidates are used only when no Alive candidate can take the call.
//! - No candidate at all is [`SelectError::NoMatchingWorker`]; candidates that all refuse is
//!   [`SelectError::Overloaded`], so callers can tell a typo in a filter from a busy cluster.
//!
//! The balancer is standalone: membership (or a test, or the simulator) feeds it member
//! records; it never reads the member table itself. It also owns the pool accounting
//! ([`crate::pool`]): a [`Lease`] per call, finished exactly once with [`Balancer::finish`].
//!
//! # Strategies and weights
//!
//! A member's tag named [`BalancerConfig::weight_tag`] (default `weight`) holds its weight, an
//! integer in `1..=`[`MAX_WEIGHT`]; a missing or invalid value (including `0`) counts as 1, so a
//! typo never takes a worker out of rotation. Weights act as follows:
//!
//! - [`Strategy::RoundRobin`]: over every `W` consecutive picks (`W` = sum of weights), each
//!   worker gets exactly its weight's share. Positions are visited with a stride coprime to `W`
//!   near `0.618·W`, so a heavy worker's picks are spread out rather than back to back. With
//!   equal weights it is plain rotation.
//! - [`Strategy::Random`]: probability proportional to weight.
//! - [`Strategy::LeastConnections`]: HAProxy's `leastconn`. The worker with the least
//!   `(in_flight + 1) / weight` wins; ties rotate round robin within the group of equally
//!   loaded candidates (a cursor moves past each winner), so sequential calls, which always
//!   tie, spread evenly. One exception protects against a slow worker: a tied candidate
//!   whose peak-EWMA latency is more than [`LC_SLOW_FACTOR`] (2×) the fastest tied one's
//!   sits the tie out. It still wins whenever it is strictly the least loaded, so it keeps
//!   getting calls (and latency samples) when the others are busy.
//! - [`Strategy::P2c`]: two distinct candidates drawn proportionally to weight; the one with the
//!   lower `peak_ewma_latency × (in_flight + 1) / weight` wins (tower's and Finagle's
//!   power-of-two-choices over peak EWMA).
//!
//! # Cost
//!
//! Each filter text gets a cached candidate list (slot indices plus cumulative weights),
//! rebuilt only when a membership generation counter moved; the cache holds at most
//! [`BalancerConfig::max_cached_filters`] filters (least recently used is evicted). A pick then
//! allocates nothing: RoundRobin, Random and P2C touch a constant number of candidates unless
//! most are unavailable; LeastConnections scans the list.

pub mod filter;
mod pick;
#[cfg(test)]
mod tests;

pub use pick::LC_SLOW_FACTOR;
use pick::{pick, CandList};

pub use filter::{Filter, FilterError, MAX_CONDITIONS, MAX_FILTER_LEN};

use crate::pool::{
    ConnError, ConnEvent, Lease, LeaseError, Outcome, Pool, PoolConfig, WorkerStats,
};
use crate::{ConfigError, MemberState, NodeId, Tags, Timestamp};
use core::net::SocketAddr;
use rand_core::RngCore;
use std::collections::BTreeMap;

/// Largest weight a member can advertise.
pub const MAX_WEIGHT: u32 = 10_000;

/// How a worker is chosen among the candidates.
#[derive(Clone, Copy, Debug, PartialEq, Eq, Hash, Default)]
pub enum Strategy {
    /// Rotate through the candidates (weighted, see the module docs).
    RoundRobin,
    /// A random candidate, proportionally to weight.
    Random,
    /// The candidate with the fewest calls in flight per unit of weight.
    LeastConnections,
    /// Power of two choices over peak-EWMA latency × (in-flight + 1): the default, because it
    /// adapts to slow workers at constant cost per pick.
    #[default]
    P2c,
}

impl Strategy {
    /// Every strategy, for tests, benchmarks and command-line parsing.
    pub const ALL: [Strategy; 4] = [
        Strategy::RoundRobin,
        Strategy::Random,
        Strategy::LeastConnections,
        Strategy::P2c,
    ];

    /// A short lowercase name (`round-robin`, `random`, `least-connections`, `p2c`), stable for
    /// command lines and JSON reports.
    pub fn name(self) -> &'static str {
        match self {
            Strategy::RoundRobin => "round-robin",
            Strategy::Random => "random",
            Strategy::LeastConnections => "least-connections",
            Strategy::P2c => "p2c",
        }
    }

    /// Parses [`Strategy::name`] (also accepts `rr`, `lc`, `least`, and underscores).
    pub fn from_name(name: &str) -> Option<Strategy> {
        match name.to_ascii_lowercase().replace('_', "-").as_str() {
            "round-robin" | "roundrobin" | "rr" => Some(Strategy::RoundRobin),
            "random" => Some(Strategy::Random),
            "least-connections" | "leastconnections" | "least" | "lc" => {
                Some(Strategy::LeastConnections)
            }
            "p2c" | "power-of-two" => Some(Strategy::P2c),
            _ => None,
        }
    }
}

/// Why no worker was selected.
#[derive(Debug, Clone, PartialEq, Eq, thiserror::Error)]
pub enum SelectError {
    /// No live member matches the filter (check the filter's spelling and the workers' tags).
    #[error("no live worker matches filter {filter:?}")]
    NoMatchingWorker {
        /// The filter, as written.
        filter: String,
    },
    /// Live members match, but none can take a call now (ejected after errors, at the in-flight
    /// cap, backing off after a failed connection, or draining). Retry later or shed load.
    #[error("{matching} workers match filter {filter:?} but none can take a call now")]
    Overloaded {
        /// The filter, as written.
        filter: String,
        /// How many live members match it.
        matching: usize,
    },
}

/// Balancer settings.
#[derive(Clone, Debug, PartialEq)]
pub struct BalancerConfig {
    /// The selection strategy.
    pub strategy: Strategy,
    /// Per-worker accounting limits.
    pub pool: PoolConfig,
    /// Name of the tag holding a member's weight; `None` disables weights.
    pub weight_tag: Option<String>,
    /// Most distinct filter texts whose candidate lists are cached.
    pub max_cached_filters: usize,
}

impl Default for BalancerConfig {
    fn default() -> Self {
        BalancerConfig {
            strategy: Strategy::default(),
            pool: PoolConfig::default(),
            weight_tag: Some("weight".to_owned()),
            max_cached_filters: 64,
        }
    }
}

#[derive(Clone, Debug)]
struct Member {
    id: NodeId,
    /// `None`: removed from the membership, kept only until its leases finish.
    state: Option<MemberState>,
    tags: Tags,
    rpc_addr: Option<SocketAddr>,
    weight: u32,
}

#[derive(Clone, Debug)]
struct CacheEntry {
    hash: u64,
    filter: Filter,
    generation: u64,
    last_used: u64,
    alive: CandList,
    suspect: CandList,
}

/// Selects workers for calls and accounts for every call until it finishes.
///
/// Inputs: [`Balancer::upsert_member`] / [`Balancer::remove_member`] (from membership),
/// [`Balancer::connection_event`] (from the adapter's connection manager),
/// [`Balancer::handle_timeout`]. Commands: [`Balancer::select`], [`Balancer::finish`].
/// Getters: [`Balancer::workers`], [`Balancer::in_flight`], [`Balancer::total_in_flight`],
/// [`Balancer::poll_timeout`]. Every method takes `&mut self` or `&self`; no interior
/// mutability, so a driver owns it in one task.
#[derive(Clone, Debug)]
pub struct Balancer {
    config: BalancerConfig,
    members: Vec<Member>,
    by_id: BTreeMap<NodeId, u32>,
    free: Vec<u32>,
    pool: Pool,
    generation: u64,
    tick: u64,
    cache: Vec<CacheEntry>,
}

impl Balancer {
    /// A balancer with no members, after checking the configuration.
    pub fn new(config: BalancerConfig) -> Result<Self, ConfigError> {
        config.pool.validate()?;
        if config.max_cached_filters == 0 {
            return Err(ConfigError::Invalid {
                field: "balancer.max_cached_filters",
                reason: "must be at least 1",
            });
        }
        Ok(Balancer {
            pool: Pool::new(config.pool.clone()),
            config,
            members: Vec::new(),
            by_id: BTreeMap::new(),
            free: Vec::new(),
            generation: 0,
            tick: 0,
            cache: Vec::new(),
        })
    }

    /// A balancer with default settings and the given strategy.
    pub fn with_strategy(strategy: Strategy) -> Self {
        let config = BalancerConfig {
            strategy,
            ..BalancerConfig::default()
        };
        // The defaults validate (checked by a unit test).
        Balancer::new(config).expect("default config is valid")
    }

    /// The configuration in force.
    pub fn config(&self) -> &BalancerConfig {
        &self.config
    }

    /// The current strategy.
    pub fn strategy(&self) -> Strategy {
        self.config.strategy
    }

    /// Switches strategy; accounting and caches carry over.
    pub fn set_strategy(&mut self, strategy: Strategy) {
        self.config.strategy = strategy;
    }

    fn weight_of(&self, tags: &Tags) -> u32 {
        self.config
            .weight_tag
            .as_deref()
            .and_then(|k| tags.get(k))
            .and_then(|v| v.trim().parse::<u32>().ok())
            .filter(|w| (1..=MAX_WEIGHT).contains(w))
            .unwrap_or(1)
    }

    /// Adds a member or updates its state, tags or address. Call it for every membership
    /// change, Failed and Left included (they stay listed but are never picked).
    pub fn upsert_member(
        &mut self,
        id: NodeId,
        state: MemberState,
        tags: &Tags,
        rpc_addr: Option<SocketAddr>,
    ) {
        let weight = self.weight_of(tags);
        if let Some(&slot) = self.by_id.get(&id) {
            let m = &mut self.members[slot as usize];
            if m.state == Some(state) && m.tags == *tags && m.rpc_addr == rpc_addr {
                return;
            }
            m.state = Some(state);
            if m.tags != *tags {
                m.tags = tags.clone();
            }
            m.rpc_addr = rpc_addr;
            m.weight = weight;
            self.pool.hot[slot as usize].weight = weight;
            self.pool.hot[slot as usize].refresh();
        } else {
            let member = Member {
                id,
                state: Some(state),
                tags: tags.clone(),
                rpc_addr,
                weight,
            };
            let slot = match self.free.pop() {
                Some(s) => {
                    self.members[s as usize] = member;
                    s
                }
                None => {
                    self.members.push(member);
                    (self.members.len() - 1) as u32
                }
            };
            self.pool.reset_slot(slot, weight);
            self.by_id.insert(id, slot);
        }
        self.generation += 1;
    }

    /// Forgets a member (reaped from the membership). Its unfinished leases stay finishable and
    /// keep it listed in [`Balancer::workers`] until the last one finishes. Returns whether it
    /// was a member.
    pub fn remove_member(&mut self, id: NodeId) -> bool {
        let Some(&slot) = self.by_id.get(&id) else {
            return false;
        };
        let m = &mut self.members[slot as usize];
        if m.state.is_none() {
            return false;
        }
        m.state = None;
        self.generation += 1;
        self.maybe_free(slot);
        true
    }

    fn maybe_free(&mut self, slot: u32) {
        let m = &self.members[slot as usize];
        if m.state.is_none() && self.pool.hot[slot as usize].in_flight == 0 {
            self.by_id.remove(&m.id);
            self.free.push(slot);
        }
    }

    /// Finds (or builds) the cache entry for `filter`, fresh for the current generation.
    fn entry(&mut self, filter: &Filter) -> usize {
        self.tick += 1;
        let hash = filter.cache_hash();
        let found = self
            .cache
            .iter()
            .position(|e| e.hash == hash && e.filter.as_str() == filter.as_str());
        let i = match found {
            Some(i) => i,
            None => {
                let fresh = CacheEntry {
                    hash,
                    filter: filter.clone(),
                    generation: u64::MAX,
                    last_used: 0,
                    alive: CandList::default(),
                    suspect: CandList::default(),
                };
                if self.cache.len() < self.config.max_cached_filters {
                    self.cache.push(fresh);
                    self.cache.len() - 1
                } else {
                    let (lru, _) = self
                        .cache
                        .iter()
                        .enumerate()
                        .min_by_key(|(_, e)| e.last_used)
                        .expect("cache is full, so not empty");
                    self.cache[lru] = fresh;
                    lru
                }
            }
        };
        let e = &mut self.cache[i];
        e.last_used = self.tick;
        if e.generation != self.generation {
            e.generation = self.generation;
            e.alive.clear();
            e.suspect.clear();
            for (slot, m) in self.members.iter().enumerate() {
                let list = match m.state {
                    Some(MemberState::Alive) => &mut e.alive,
                    Some(MemberState::Suspect) => &mut e.suspect,
                    _ => continue,
                };
                if e.filter.matches(&m.tags) {
                    list.push(slot as u32, m.weight);
                }
            }
            e.alive.seal(&self.pool.hot);
            e.suspect.seal(&self.pool.hot);
        }
        i
    }

    /// Picks a worker for one call and starts its lease.
    ///
    /// Allocation-free once the filter's candidate list is cached.
    pub fn select<R: RngCore + ?Sized>(
        &mut self,
        now: Timestamp,
        filter: &Filter,
        rng: &mut R,
    ) -> Result<Lease, SelectError> {
        let i = self.entry(filter);
        let strategy = self.config.strategy;
        let max = self.pool.config.max_in_flight;
        let inv_tau = self.pool.inv_tau_us;
        let e = &mut self.cache[i];
        let hot = &self.pool.hot;
        let picked = pick(&mut e.alive, hot, strategy, now, max, inv_tau, rng)
            .or_else(|| pick(&mut e.suspect, hot, strategy, now, max, inv_tau, rng));
        let Some(slot) = picked else {
            let matching = e.alive.len() + e.suspect.len();
            return Err(if matching == 0 {
                SelectError::NoMatchingWorker {
                    filter: filter.to_string(),
                }
            } else {
                SelectError::Overloaded {
                    filter: filter.to_string(),
                    matching,
                }
            });
        };
        let id = self.pool.start(slot, now);
        let m = &self.members[slot as usize];
        Ok(Lease {
            id,
            worker: m.id,
            rpc_addr: m.rpc_addr,
            started_at: now,
        })
    }

    /// Starts a lease on one given worker, ignoring the strategy (for broadcasts such as
    /// "call every worker"). The same rule as [`Balancer::select`] applies to that one
    /// member: it must be a live member ([`SelectError::NoMatchingWorker`] otherwise, with
    /// the id as the filter text) able to take a call now ([`SelectError::Overloaded`]).
    pub fn select_id(&mut self, id: NodeId, now: Timestamp) -> Result<Lease, SelectError> {
        let slot = self.by_id.get(&id).copied().filter(|&s| {
            self.members[s as usize]
                .state
                .is_some_and(|st| st.is_live())
        });
        let Some(slot) = slot else {
            return Err(SelectError::NoMatchingWorker {
                filter: id.to_string(),
            });
        };
        if !self.pool.hot[slot as usize].eligible(now, self.pool.config.max_in_flight) {
            return Err(SelectError::Overloaded {
                filter: id.to_string(),
                matching: 1,
            });
        }
        let lease_id = self.pool.start(slot, now);
        let m = &self.members[slot as usize];
        Ok(Lease {
            id: lease_id,
            worker: m.id,
            rpc_addr: m.rpc_addr,
            started_at: now,
        })
    }

    /// Ends a call: releases its in-flight count and feeds the outcome (latency since
    /// `started_at`, error streak) into the worker's accounting. Works even if the worker has
    /// since been removed. Finishing twice or an unknown id is an error and changes nothing.
    pub fn finish(
        &mut self,
        lease_id: u64,
        outcome: Outcome,
        now: Timestamp,
    ) -> Result<(), LeaseError> {
        let slot = self.pool.finish(lease_id, outcome, now)?;
        self.maybe_free(slot);
        Ok(())
    }

    /// Feeds a connection-level event for `worker` (see [`ConnEvent`]). A refused event changes
    /// nothing.
    pub fn connection_event(
        &mut self,
        worker: NodeId,
        event: ConnEvent,
        now: Timestamp,
    ) -> Result<(), ConnError> {
        let &slot = self
            .by_id
            .get(&worker)
            .ok_or(ConnError::UnknownWorker(worker))?;
        self.pool.connection_event(slot, event, now)
    }

    /// Clears ejections and connection back-offs that ended by `now`. Optional: selection
    /// already treats an expired deadline as over; this keeps [`Balancer::poll_timeout`] fresh.
    pub fn handle_timeout(&mut self, now: Timestamp) {
        self.pool.handle_timeout(now);
    }

    /// The earliest moment an ejected or backing-off worker becomes selectable again, so a
    /// driver can wake up and retry calls that got [`SelectError::Overloaded`]. Scans the
    /// workers (O(n)); call it after inputs, not per pick.
    pub fn poll_timeout(&self) -> Option<Timestamp> {
        self.pool.next_deadline(self.by_id.values().copied())
    }

    /// Calls in flight on `worker` (0 if unknown).
    pub fn in_flight(&self, worker: NodeId) -> u32 {
        self.by_id
            .get(&worker)
            .map_or(0, |&s| self.pool.hot[s as usize].in_flight)
    }

    /// Calls in flight on all workers.
    pub fn total_in_flight(&self) -> u64 {
        self.pool.total_in_flight()
    }

    /// Number of known workers (members plus removed ones with unfinished leases).
    pub fn len(&self) -> usize {
        self.by_id.len()
    }

    /// Whether no worker is known.
    pub fn is_empty(&self) -> bool {
        self.by_id.is_empty()
    }

    /// A snapshot of one worker at `now`.
    pub fn worker(&self, id: NodeId, now: Timestamp) -> Option<WorkerStats> {
        let &slot = self.by_id.get(&id)?;
        let m = &self.members[slot as usize];
        Some(self.pool.stats(slot, m.id, m.state, m.rpc_addr, now))
    }

    /// Snapshots of every known worker at `now`, in id order (for `registry.workers()`).
    pub fn workers(&self, now: Timestamp) -> Vec<WorkerStats> {
        self.by_id
            .iter()
            .map(|(&id, &slot)| {
                let m = &self.members[slot as usize];
                self.pool.stats(slot, id, m.state, m.rpc_addr, now)
            })
            .collect()
    }
}
