//! Pool accounting: per-worker connections, in-flight calls, latency and error streaks, and the
//! leases that tie them together.
//!
//! The rule this module owns: **every lease is finished exactly once**. A [`Lease`] is handed
//! out by [`crate::balancer::Balancer::select`] and its count stays on the worker until
//! [`crate::balancer::Balancer::finish`] is called with its id. Finishing twice or finishing an
//! id that was never issued is a typed [`LeaseError`] and changes nothing, so in-flight counts
//! can neither leak nor go negative whatever an adapter does. A worker that leaves the
//! membership while it still has leases keeps its accounting slot until the last one finishes.
//!
//! The pool is not a public struct of its own: its state is indexed by the balancer's worker
//! slots and only the balancer may allocate and free those, so the balancer is the single entry
//! point and this module contributes the types ([`PoolConfig`], [`Lease`], [`Outcome`],
//! [`ConnEvent`], [`WorkerStats`], errors) and the accounting rules. Which of a worker's
//! connections a call uses, and when one is opened or dropped, is [`connset`]'s job; it
//! reports each change here as a [`ConnEvent`].
//!
//! # Outcomes
//!
//! | outcome     | latency fed to the EWMA | error streak      |
//! |-------------|-------------------------|-------------------|
//! | `Completed` | yes                     | reset             |
//! | `Failed`    | yes                     | +1                |
//! | `TimedOut`  | yes (a large sample)    | +1                |
//! | `Cancelled` | no (the caller gave up) | unchanged         |
//!
//! # Outlier ejection
//!
//! After [`PoolConfig::eject_after`] consecutive failures a worker is ejected for
//! `ejection_base × 2^(level-1)`, capped at [`PoolConfig::ejection_max`], where `level` counts
//! recent ejections (Envoy's outlier detection, with exponential rather than linear growth).
//! Failures of calls that were already in flight while it is ejected do not count again.
//! The level drops by one after every [`PoolConfig::readmit_successes`] consecutive successes,
//! so a worker that recovered for good is eventually treated as new. Re-admission is timed:
//! the worker is a candidate again as soon as `now` passes the deadline (no call needed), and
//! [`crate::balancer::Balancer::poll_timeout`] reports the deadline so a driver can surface it.
//!
//! # Latency: peak EWMA
//!
//! As in Finagle and tower's `PeakEwma`: a sample above the estimate replaces it at once (react
//! to a slowdown immediately), a sample below blends in with weight `1 - exp(-Δt/τ)` (recover
//! slowly), and when read at `now` the estimate decays towards zero with the same `τ`
//! ([`PoolConfig::ewma_decay`]) so an idle worker is retried eventually. A worker with no
//! sample yet starts at [`PoolConfig::default_rtt`].
//!
//! **A call during which a connection to its worker opened feeds no latency sample:** its
//! latency is mostly the handshake (the adapter opens connections for calls that find none
//! ready), and a peak estimate would keep that spike for about `τ`, long after the worker
//! answered quickly, making a freshly connected worker look slow to P2C and keeping it out of
//! least-connections ties. Its outcome still counts (error streak, ejection).

use crate::{ConfigError, MemberState, NodeId, Timestamp};
use core::net::SocketAddr;
use core::time::Duration;

/// Limits and tuning of the per-worker accounting.
#[derive(Clone, Debug, PartialEq)]
pub struct PoolConfig {
    /// Most calls in flight on one worker; a worker at the cap is skipped by selection, so a
    /// stuck worker cannot absorb every call.
    pub max_in_flight: u32,
    /// Most connections (connecting, ready or draining) the pool lets an adapter open to one
    /// worker.
    pub max_connections: u16,
    /// Consecutive failed or timed-out calls that eject a worker.
    pub eject_after: u32,
    /// Duration of a first ejection.
    pub ejection_base: Duration,
    /// Longest ejection, however often a worker has been ejected.
    pub ejection_max: Duration,
    /// Consecutive successes that lower a worker's ejection level by one.
    pub readmit_successes: u32,
    /// First back-off after a failed connection attempt; doubles per consecutive failure.
    pub connect_backoff_base: Duration,
    /// Longest connection back-off.
    pub connect_backoff_max: Duration,
    /// Latency assumed for a worker that has not answered yet.
    pub default_rtt: Duration,
    /// Time constant `τ` of the peak EWMA.
    pub ewma_decay: Duration,
}

impl Default for PoolConfig {
    fn default() -> Self {
        PoolConfig {
            max_in_flight: 1024,
            max_connections: 4,
            eject_after: 5,
            ejection_base: Duration::from_secs(5),
            ejection_max: Duration::from_secs(300),
            readmit_successes: 20,
            connect_backoff_base: Duration::from_millis(100),
            connect_backoff_max: Duration::from_secs(10),
            default_rtt: Duration::from_millis(10),
            ewma_decay: Duration::from_secs(10),
        }
    }
}

impl PoolConfig {
    /// Checks that every limit can work (caps and counts are positive, `τ` is not zero,
    /// bases do not exceed their maxima).
    pub fn validate(&self) -> Result<(), ConfigError> {
        let invalid = |field, reason| Err(ConfigError::Invalid { field, reason });
        if self.max_in_flight == 0 {
            return invalid("pool.max_in_flight", "must be at least 1");
        }
        if self.max_connections == 0 {
            return invalid("pool.max_connections", "must be at least 1");
        }
        if self.eject_after == 0 {
            return invalid("pool.eject_after", "must be at least 1");
        }
        if self.readmit_successes == 0 {
            return invalid("pool.readmit_successes", "must be at least 1");
        }
        if self.ejection_base > self.ejection_max {
            return invalid("pool.ejection_base", "must not exceed ejection_max");
        }
        if self.connect_backoff_base > self.connect_backoff_max {
            return invalid(
                "pool.connect_backoff_base",
                "must not exceed connect_backoff_max",
            );
        }
        if self.ewma_decay.is_zero() {
            return invalid("pool.ewma_decay", "must be positive");
        }
        Ok(())
    }
}

/// A call in progress on one worker: what [`crate::balancer::Balancer::select`] returns.
///
/// Hand `id` back to [`crate::balancer::Balancer::finish`] exactly once, whatever happens to
/// the call; that is the only way its in-flight count is released.
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
#[must_use = "a lease must be finished, or the worker's in-flight count leaks"]
pub struct Lease {
    /// Opaque, never reused while the lease is outstanding.
    pub id: u64,
    /// The worker the call goes to.
    pub worker: NodeId,
    /// Where to reach it, if it advertised an RPC address.
    pub rpc_addr: Option<SocketAddr>,
    /// When the selection was made; the latency sample is `finish`'s `now` minus this.
    pub started_at: Timestamp,
}

/// How a call ended.
#[derive(Clone, Copy, Debug, PartialEq, Eq, Hash)]
pub enum Outcome {
    /// The worker answered (any application-level answer, including an `Ok` status).
    Completed,
    /// The worker or the connection failed (transport error, handler failure, overload).
    Failed,
    /// The caller gave up for its own reasons; says nothing about the worker.
    Cancelled,
    /// No answer before the deadline.
    TimedOut,
}

/// A lease id that cannot be finished.
#[derive(Debug, Clone, Copy, PartialEq, Eq, thiserror::Error)]
pub enum LeaseError {
    /// This id was never handed out.
    #[error("lease {0} was never issued")]
    Unknown(u64),
    /// This lease was already finished; its count was released then.
    #[error("lease {0} was already finished")]
    AlreadyFinished(u64),
}

/// A connection-level input from the adapter, for one connection to one worker.
#[derive(Clone, Copy, Debug, PartialEq, Eq, Hash)]
pub enum ConnEvent {
    /// The adapter starts a connection attempt (refused at [`PoolConfig::max_connections`]).
    Connecting,
    /// A connection attempt succeeded.
    Connected,
    /// A connection attempt failed: the worker backs off before the next one.
    ConnectFailed,
    /// A ready connection is going away (GOAWAY, idle close): no new calls on it.
    Draining,
    /// A connection closed (a draining one if there is any, otherwise a ready one).
    Closed,
}

/// A connection event that does not fit the worker's connection counts.
#[derive(Debug, Clone, Copy, PartialEq, Eq, thiserror::Error)]
pub enum ConnError {
    /// The worker is not known to the balancer.
    #[error("unknown worker {0}")]
    UnknownWorker(NodeId),
    /// Opening another connection would exceed [`PoolConfig::max_connections`].
    #[error("worker already has the maximum of {max} connections")]
    AtCapacity {
        /// The cap.
        max: u16,
    },
    /// The event names a connection in a state the worker has none in (e.g. `Connected`
    /// without `Connecting`).
    #[error("no connection in a state that allows {0:?}")]
    NoSuchConnection(ConnEvent),
}

/// The connection state of a worker, summarised over its connections.
#[derive(Clone, Copy, Debug, PartialEq, Eq, Hash)]
pub enum ConnState {
    /// No connection yet; selecting it tells the adapter to open one.
    Idle,
    /// At least one connection attempt is in progress and none is ready.
    Connecting,
    /// At least one connection is ready.
    Ready,
    /// Only draining connections: not selected until they close.
    Draining,
    /// The last attempt failed; not selected before `until`.
    Failed {
        /// End of the back-off.
        until: Timestamp,
    },
}

/// A snapshot of one worker, for `workers()` listings and dashboards.
#[derive(Clone, Debug, PartialEq)]
pub struct WorkerStats {
    /// The worker.
    pub id: NodeId,
    /// Its membership state, or `None` if it left the membership and only its unfinished
    /// leases keep it listed.
    pub state: Option<MemberState>,
    /// Its RPC address.
    pub rpc_addr: Option<SocketAddr>,
    /// Its selection weight (from the weight tag).
    pub weight: u32,
    /// Whether it could be selected at the snapshot's `now` (ignoring filters).
    pub available: bool,
    /// Summarised connection state.
    pub conn: ConnState,
    /// Connections in each state: (connecting, ready, draining).
    pub connections: (u16, u16, u16),
    /// Calls in flight.
    pub in_flight: u32,
    /// Leases handed out.
    pub started: u64,
    /// Leases finished `Completed`.
    pub completed: u64,
    /// Leases finished `Failed`.
    pub failed: u64,
    /// Leases finished `Cancelled`.
    pub cancelled: u64,
    /// Leases finished `TimedOut`.
    pub timed_out: u64,
    /// Current streak of failed or timed-out calls.
    pub consecutive_failures: u32,
    /// End of the current ejection, if ejected at `now`.
    pub ejected_until: Option<Timestamp>,
    /// How often it has been ejected.
    pub ejections: u64,
    /// Peak-EWMA latency estimate at `now`.
    pub latency: Duration,
}

/// `Hot::ewma_at` before any sample.
const NEVER: Timestamp = Timestamp::MAX;

/// What selection reads for each worker, packed together so a scan over 100 candidates stays
/// in a few cache lines.
#[derive(Clone, Copy, Debug)]
pub(crate) struct Hot {
    pub(crate) in_flight: u32,
    pub(crate) weight: u32,
    /// `(in_flight + 1) / weight` as 32.32 fixed point, kept current by [`Hot::refresh`]
    /// whenever `in_flight` or `weight` changes, so a weighted least-connections scan compares
    /// one integer per candidate instead of cross-multiplying.
    pub(crate) wload: u64,
    /// Not selectable before this (ejection, connect back-off, draining-only = MAX).
    pub(crate) blocked_until: Timestamp,
    /// Peak-EWMA estimate in microseconds.
    pub(crate) ewma_us: f64,
    /// When the estimate was last updated; [`NEVER`] before the first sample (no decay).
    /// A sentinel rather than an `Option` keeps `Hot` at 32 bytes.
    pub(crate) ewma_at: Timestamp,
}

impl Hot {
    /// Recomputes [`Hot::wload`] after `in_flight` or `weight` changed.
    pub(crate) fn refresh(&mut self) {
        self.wload = ((u64::from(self.in_flight) + 1) << 32) / u64::from(self.weight.max(1));
    }

    fn new(default_rtt: Duration) -> Self {
        Hot {
            in_flight: 0,
            weight: 1,
            wload: 1 << 32,
            blocked_until: Timestamp::ZERO,
            ewma_us: default_rtt.as_secs_f64() * 1e6,
            ewma_at: NEVER,
        }
    }

    /// Selectable at `now` under the in-flight cap `max`.
    #[inline]
    pub(crate) fn eligible(&self, now: Timestamp, max: u32) -> bool {
        self.in_flight < max && self.blocked_until <= now
    }

    /// The latency estimate at `now`, decayed towards zero since the last sample.
    #[inline]
    pub(crate) fn ewma_at_now(&self, now: Timestamp, inv_tau_us: f64) -> f64 {
        // Also covers NEVER: `now` is never after it, so there is no decay.
        let idle = now.as_micros().saturating_sub(self.ewma_at.as_micros());
        if idle == 0 {
            self.ewma_us
        } else {
            self.ewma_us * (-(idle as f64) * inv_tau_us).exp()
        }
    }

    /// P2C cost: latency × (in-flight + 1) ÷ weight.
    #[inline]
    pub(crate) fn cost(&self, now: Timestamp, inv_tau_us: f64) -> f64 {
        self.ewma_at_now(now, inv_tau_us) * f64::from(self.in_flight + 1) / f64::from(self.weight)
    }
}

/// Everything else about a worker.
#[derive(Clone, Debug, Default)]
struct Cold {
    started: u64,
    completed: u64,
    failed: u64,
    cancelled: u64,
    timed_out: u64,
    consecutive_failures: u32,
    success_streak: u32,
    ejection_level: u32,
    ejected_until: Timestamp,
    ejections: u64,
    connecting: u16,
    ready: u16,
    draining: u16,
    connect_failures: u32,
    backoff_until: Timestamp,
    /// When a connection to the worker last finished opening.
    connected_at: Option<Timestamp>,
}

#[derive(Clone, Copy, Debug)]
struct LeaseSlot {
    /// Generation of the lease that last used this slot (ids carry it in the high half).
    gen: u32,
    live: bool,
    worker: u32,
    started_at: Timestamp,
}

/// Per-slot accounting plus the lease table. Slots are allocated by the balancer.
#[derive(Clone, Debug)]
pub(crate) struct Pool {
    pub(crate) config: PoolConfig,
    /// `1/τ` in 1/µs, cached for the decay.
    pub(crate) inv_tau_us: f64,
    pub(crate) hot: Vec<Hot>,
    cold: Vec<Cold>,
    leases: Vec<LeaseSlot>,
    free_leases: Vec<u32>,
    total_in_flight: u64,
}

fn doubling(base: Duration, max: Duration, level: u32) -> Duration {
    let factor = 1u32 << level.saturating_sub(1).min(30);
    base.saturating_mul(factor).min(max)
}

impl Pool {
    pub(crate) fn new(config: PoolConfig) -> Self {
        let inv_tau_us = 1.0 / (config.ewma_decay.as_secs_f64() * 1e6).max(1.0);
        Pool {
            config,
            inv_tau_us,
            hot: Vec::new(),
            cold: Vec::new(),
            leases: Vec::new(),
            free_leases: Vec::new(),
            total_in_flight: 0,
        }
    }

    /// Makes `slot` a fresh worker (slot is at most `len`).
    pub(crate) fn reset_slot(&mut self, slot: u32, weight: u32) {
        let mut hot = Hot::new(self.config.default_rtt);
        hot.weight = weight;
        hot.refresh();
        let i = slot as usize;
        if i == self.hot.len() {
            self.hot.push(hot);
            self.cold.push(Cold::default());
        } else {
            self.hot[i] = hot;
            self.cold[i] = Cold::default();
        }
    }

    pub(crate) fn total_in_flight(&self) -> u64 {
        self.total_in_flight
    }

    /// Records a new call on `slot` and returns the lease id.
    pub(crate) fn start(&mut self, slot: u32, now: Timestamp) -> u64 {
        let hot = &mut self.hot[slot as usize];
        hot.in_flight += 1;
        hot.refresh();
        self.cold[slot as usize].started += 1;
        self.total_in_flight += 1;
        let rec = LeaseSlot {
            gen: 0,
            live: true,
            worker: slot,
            started_at: now,
        };
        let index = match self.free_leases.pop() {
            Some(i) => {
                let old = self.leases[i as usize].gen;
                // Generations wrap after 2^32 reuses of one slot; an id that old being
                // finished again is the only way two ids could alias.
                self.leases[i as usize] = LeaseSlot {
                    gen: old.wrapping_add(1),
                    ..rec
                };
                i
            }
            None => {
                self.leases.push(LeaseSlot { gen: 1, ..rec });
                (self.leases.len() - 1) as u32
            }
        };
        (u64::from(self.leases[index as usize].gen) << 32) | u64::from(index)
    }

    /// Releases lease `id`; returns the slot it was on.
    pub(crate) fn finish(
        &mut self,
        id: u64,
        outcome: Outcome,
        now: Timestamp,
    ) -> Result<u32, LeaseError> {
        let index = (id & 0xffff_ffff) as usize;
        let gen = (id >> 32) as u32;
        let Some(rec) = self.leases.get(index).copied() else {
            return Err(LeaseError::Unknown(id));
        };
        if gen == 0 || gen > rec.gen {
            return Err(LeaseError::Unknown(id));
        }
        if gen < rec.gen || !rec.live {
            return Err(LeaseError::AlreadyFinished(id));
        }
        self.leases[index].live = false;
        self.free_leases.push(index as u32);
        let slot = rec.worker as usize;
        // A live lease always points at a slot whose in-flight count includes it: slots are
        // only freed at zero in-flight, so these cannot underflow.
        self.hot[slot].in_flight -= 1;
        self.hot[slot].refresh();
        self.total_in_flight -= 1;
        let latency_us = now.as_micros().saturating_sub(rec.started_at.as_micros()) as f64;
        let cfg = &self.config;
        let (hot, cold) = (&mut self.hot[slot], &mut self.cold[slot]);
        // A connection opened during the call: its latency is mostly the handshake.
        let handshake = cold.connected_at.is_some_and(|t| t >= rec.started_at);
        let sample = |hot: &mut Hot| {
            if !handshake {
                observe(hot, latency_us, now, self.inv_tau_us);
            }
        };
        let ejected_now = cold.ejected_until > now;
        match outcome {
            Outcome::Completed => {
                cold.completed += 1;
                sample(hot);
                cold.consecutive_failures = 0;
                cold.success_streak += 1;
                if cold.success_streak >= cfg.readmit_successes {
                    cold.success_streak = 0;
                    cold.ejection_level = cold.ejection_level.saturating_sub(1);
                }
            }
            Outcome::Failed | Outcome::TimedOut => {
                if outcome == Outcome::Failed {
                    cold.failed += 1;
                } else {
                    cold.timed_out += 1;
                }
                sample(hot);
                cold.success_streak = 0;
                if !ejected_now {
                    cold.consecutive_failures += 1;
                    if cold.consecutive_failures >= cfg.eject_after {
                        cold.consecutive_failures = 0;
                        cold.ejection_level = cold.ejection_level.saturating_add(1);
                        cold.ejections += 1;
                        let d = doubling(cfg.ejection_base, cfg.ejection_max, cold.ejection_level);
                        cold.ejected_until = now + d;
                        refresh_block(hot, cold);
                    }
                }
            }
            Outcome::Cancelled => cold.cancelled += 1,
        }
        Ok(rec.worker)
    }

    pub(crate) fn connection_event(
        &mut self,
        slot: u32,
        event: ConnEvent,
        now: Timestamp,
    ) -> Result<(), ConnError> {
        let cfg = &self.config;
        let (hot, c) = (&mut self.hot[slot as usize], &mut self.cold[slot as usize]);
        match event {
            ConnEvent::Connecting => {
                let open = u32::from(c.connecting) + u32::from(c.ready) + u32::from(c.draining);
                if open >= u32::from(cfg.max_connections) {
                    return Err(ConnError::AtCapacity {
                        max: cfg.max_connections,
                    });
                }
                c.connecting += 1;
            }
            ConnEvent::Connected => {
                if c.connecting == 0 {
                    return Err(ConnError::NoSuchConnection(event));
                }
                c.connecting -= 1;
                c.ready += 1;
                c.connected_at = Some(now);
                c.connect_failures = 0;
                c.backoff_until = Timestamp::ZERO;
            }
            ConnEvent::ConnectFailed => {
                if c.connecting == 0 {
                    return Err(ConnError::NoSuchConnection(event));
                }
                c.connecting -= 1;
                c.connect_failures = c.connect_failures.saturating_add(1);
                let d = doubling(
                    cfg.connect_backoff_base,
                    cfg.connect_backoff_max,
                    c.connect_failures,
                );
                c.backoff_until = now + d;
            }
            ConnEvent::Draining => {
                if c.ready == 0 {
                    return Err(ConnError::NoSuchConnection(event));
                }
                c.ready -= 1;
                c.draining += 1;
            }
            ConnEvent::Closed => {
                if c.draining > 0 {
                    c.draining -= 1;
                } else if c.ready > 0 {
                    c.ready -= 1;
                } else {
                    return Err(ConnError::NoSuchConnection(event));
                }
            }
        }
        refresh_block(hot, c);
        Ok(())
    }

    /// Clears ejections and back-offs that ended by `now`.
    pub(crate) fn handle_timeout(&mut self, now: Timestamp) {
        for (hot, c) in self.hot.iter_mut().zip(self.cold.iter_mut()) {
            let mut changed = false;
            if c.ejected_until != Timestamp::ZERO && c.ejected_until <= now {
                c.ejected_until = Timestamp::ZERO;
                changed = true;
            }
            if c.backoff_until != Timestamp::ZERO && c.backoff_until <= now {
                c.backoff_until = Timestamp::ZERO;
                changed = true;
            }
            if changed {
                refresh_block(hot, c);
            }
        }
    }

    /// The earliest pending ejection or back-off end among `slots`.
    pub(crate) fn next_deadline(&self, slots: impl Iterator<Item = u32>) -> Option<Timestamp> {
        slots
            .flat_map(|s| {
                let c = &self.cold[s as usize];
                [c.ejected_until, c.backoff_until]
            })
            .filter(|t| *t != Timestamp::ZERO)
            .min()
    }

    pub(crate) fn stats(
        &self,
        slot: u32,
        id: NodeId,
        state: Option<MemberState>,
        rpc_addr: Option<SocketAddr>,
        now: Timestamp,
    ) -> WorkerStats {
        let (h, c) = (&self.hot[slot as usize], &self.cold[slot as usize]);
        let conn = if c.ready > 0 {
            ConnState::Ready
        } else if c.backoff_until > now {
            ConnState::Failed {
                until: c.backoff_until,
            }
        } else if c.connecting > 0 {
            ConnState::Connecting
        } else if c.draining > 0 {
            ConnState::Draining
        } else {
            ConnState::Idle
        };
        WorkerStats {
            id,
            state,
            rpc_addr,
            weight: h.weight,
            available: state.is_some_and(MemberState::is_live)
                && h.eligible(now, self.config.max_in_flight),
            conn,
            connections: (c.connecting, c.ready, c.draining),
            in_flight: h.in_flight,
            started: c.started,
            completed: c.completed,
            failed: c.failed,
            cancelled: c.cancelled,
            timed_out: c.timed_out,
            consecutive_failures: c.consecutive_failures,
            ejected_until: (c.ejected_until > now).then_some(c.ejected_until),
            ejections: c.ejections,
            latency: Duration::from_micros(h.ewma_at_now(now, self.inv_tau_us) as u64),
        }
    }
}

/// Feeds one latency sample into the peak EWMA, as tower's `PeakEwma` does: a sample above
/// the stored estimate replaces it; one below blends in as `stored × w + sample × (1 - w)`,
/// `w = exp(-Δt/τ)` for the time since the last sample. (The blend once started from the
/// estimate already decayed to `now`, which applied `w` twice and pulled the estimate
/// below every sample after an idle spell.)
fn observe(hot: &mut Hot, sample_us: f64, now: Timestamp, inv_tau_us: f64) {
    let stored = hot.ewma_us;
    hot.ewma_us = if sample_us > stored {
        sample_us
    } else {
        let elapsed = now.as_micros().saturating_sub(hot.ewma_at.as_micros()) as f64;
        let w = (-elapsed * inv_tau_us).exp();
        stored * w + sample_us * (1.0 - w)
    };
    hot.ewma_at = now;
}

/// Recomputes the one field selection reads from the ejection and connection state.
fn refresh_block(hot: &mut Hot, c: &Cold) {
    let draining_only = c.draining > 0 && c.ready == 0 && c.connecting == 0;
    let backoff = if c.ready == 0 {
        c.backoff_until
    } else {
        Timestamp::ZERO
    };
    hot.blocked_until = if draining_only {
        Timestamp::MAX
    } else {
        c.ejected_until.max(backoff)
    };
}

pub mod connset;
#[cfg(test)]
mod tests;
