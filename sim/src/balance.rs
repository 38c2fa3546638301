//! Balancing simulation: how each strategy copes with one slow worker.
//!
//! A discrete-event queueing simulation in virtual time that drives the real
//! [`shoal_core::Balancer`] (selection, leases, peak-EWMA feedback) and the real call-path
//! machines the adapters run: every call goes through a [`CallMachine`] and checks out a
//! connection from the core's [`Connections`] (a handshake takes [`CONNECT_NS`]), nothing
//! mocked. [`run_faults`] adds faults (connections breaking at random, a worker dying mid-call
//! and restarting on a new address, half the calls idempotent) and checks after every step
//! that every lease finishes exactly once, no non-idempotent call is both retried after it
//! may have run and answered, no closed connection is pooled or handed out, and (at the end)
//! every call ended.
//!
//! # The model
//!
//! - `W` workers. Worker `i` has a mean service time drawn uniformly from 0.8–1.2 ms; worker 0's
//!   is then multiplied by [`SLOW_FACTOR`] (10×). Service times are exponential around that
//!   mean. Each worker serves `slots` calls at a time (default [`SLOTS`]); further calls wait in its
//!   FIFO queue.
//! - One open-loop client: Poisson arrivals at [`LOAD`] (70 %) of the total service capacity
//!   `Σ 1/mean_i`. Each arrival asks the balancer for a lease (filter `role=worker`), is queued
//!   at that worker, and when it completes the lease is finished with `Outcome::Completed`, so
//!   the measured latency (queue wait + service) feeds the balancer's latency estimate.
//! - A call's latency is queue wait + service time. The first [`WARMUP`] of calls are run but
//!   not measured, so the estimates start from a loaded state.
//!
//! # What "ideal" means
//!
//! `ideal_p99_ms` is the p99 of the *same strategy* on the *same arrival process with the slow
//! worker removed*: workers 1..W with exactly the same service means, and the arrival rate
//! scaled to the same 70 % of *their* capacity. It answers "what would this strategy achieve if
//! the slow worker were simply not there?", so `p99_ms / ideal_p99_ms` is the price a strategy
//! pays for one bad worker (1.0 = it routes around it perfectly).
//!
//! # Determinism
//!
//! Every random draw comes from `ChaCha8Rng` seeded with `seed`, one stream per purpose
//! (worker means, arrivals, service times, balancer), so the same options give the same report
//! and the ideal run sees the same worker means and arrival sequence (at its own rate).

use rand_chacha::rand_core::{RngCore, SeedableRng};
use rand_chacha::ChaCha8Rng;
use shoal_core::pool::connset::{Checkout, ConnId, ConnectFailure, Connections};
use shoal_core::rpc::call::CallPhase;
use shoal_core::rpc::machine::{CallMachine, CallPolicy, CallTarget, Decision};
use shoal_core::{
    Balancer, BalancerConfig, Filter, Lease, MemberState, NodeId, Outcome, PoolConfig, Status,
    Strategy, Tags, Timestamp,
};
use std::cmp::Reverse;
use std::collections::{BTreeMap, BTreeSet, BinaryHeap, VecDeque};
use std::net::SocketAddr;
use std::time::Duration;

/// How much slower worker 0 is than the others.
pub const SLOW_FACTOR: f64 = 10.0;
/// Offered load as a fraction of total service capacity.
pub const LOAD: f64 = 0.7;
/// Calls each worker serves concurrently; the rest queue at the worker.
pub const SLOTS: usize = 1;

/// Fraction of calls run before measuring starts.
pub const WARMUP: f64 = 0.05;

/// What to simulate.
#[derive(Clone, Debug, PartialEq, Eq)]
pub struct BalanceOpts {
    /// Number of workers (at least 2: the slow one and one normal).
    pub workers: usize,
    /// The balancer's strategy.
    pub strategy: Strategy,
    /// Master seed; the same seed gives the same report.
    pub seed: u64,
    /// Number of calls to run.
    pub calls: usize,
    /// Calls each worker serves concurrently (a single-threaded worker is 1).
    pub slots: usize,
}

impl Default for BalanceOpts {
    fn default() -> Self {
        BalanceOpts {
            workers: 8,
            strategy: Strategy::P2c,
            seed: 1,
            calls: 200_000,
            slots: SLOTS,
        }
    }
}

/// Latency percentiles and routing share of one simulation.
#[derive(Clone, Debug, PartialEq)]
pub struct BalanceReport {
    /// The strategy simulated.
    pub strategy: Strategy,
    /// Number of workers.
    pub workers: usize,
    /// The seed.
    pub seed: u64,
    /// Calls run.
    pub calls: usize,
    /// Median latency (queue wait + service), in milliseconds.
    pub p50_ms: f64,
    /// 99th-percentile latency, in milliseconds.
    pub p99_ms: f64,
    /// p99 of the same strategy without the slow worker (see the module docs).
    pub ideal_p99_ms: f64,
    /// Fraction of all calls routed to the slow worker.
    pub share_slow: f64,
}

impl BalanceReport {
    /// One JSON object on one line (for `shoal-sim balance --json`).
    pub fn to_json(&self) -> String {
        format!(
            "{{\"strategy\":\"{}\",\"workers\":{},\"seed\":{},\"calls\":{},\"p50_ms\":{:.4},\"p99_ms\":{:.4},\"ideal_p99_ms\":{:.4},\"share_slow\":{:.6}}}",
            self.strategy.name(),
            self.workers,
            self.seed,
            self.calls,
            finite(self.p50_ms),
            finite(self.p99_ms),
            finite(self.ideal_p99_ms),
            finite(self.share_slow),
        )
    }
}

/// JSON has no NaN or infinity; none should occur, but never print invalid JSON.
fn finite(x: f64) -> f64 {
    if x.is_finite() {
        x
    } else {
        -1.0
    }
}

const STREAM_MEANS: u64 = 0;
const STREAM_ARRIVALS: u64 = 1;
const STREAM_SERVICE: u64 = 2;
const STREAM_BALANCER: u64 = 3;
const STREAM_FAULTS: u64 = 4;

fn rng(seed: u64, stream: u64) -> ChaCha8Rng {
    let mut r = ChaCha8Rng::seed_from_u64(seed);
    r.set_stream(stream);
    r
}

/// Uniform in [0, 1) with 53 bits.
fn unit(r: &mut ChaCha8Rng) -> f64 {
    (r.next_u64() >> 11) as f64 * (1.0 / (1u64 << 53) as f64)
}

/// Exponential with the given mean.
fn exp(r: &mut ChaCha8Rng, mean: f64) -> f64 {
    -(1.0 - unit(r)).ln() * mean
}

/// Runs the simulation and its slow-worker-free baseline.
pub fn run_balance(opts: &BalanceOpts) -> BalanceReport {
    let workers = opts.workers.max(2);
    let mut means_r = rng(opts.seed, STREAM_MEANS);
    // Mean service time per worker, in nanoseconds.
    let mut means: Vec<f64> = (0..workers)
        .map(|_| 1e6 * (0.8 + 0.4 * unit(&mut means_r)))
        .collect();
    means[0] *= SLOW_FACTOR;
    let slots = opts.slots.max(1);
    // Without faults no invariant can break but a bug's; say so loudly.
    let full = simulate(&means, opts.strategy, opts.seed, opts.calls, slots, false)
        .unwrap_or_else(|v| panic!("balance run broke an invariant: {v:?}"));
    let ideal = simulate(
        &means[1..],
        opts.strategy,
        opts.seed,
        opts.calls,
        slots,
        false,
    )
    .unwrap_or_else(|v| panic!("balance run broke an invariant: {v:?}"));
    BalanceReport {
        strategy: opts.strategy,
        workers,
        seed: opts.seed,
        calls: opts.calls,
        p50_ms: full.p50_ms,
        p99_ms: full.p99_ms,
        ideal_p99_ms: ideal.p99_ms,
        share_slow: full.per_worker[0] as f64 / opts.calls.max(1) as f64,
    }
}

struct Outcomes {
    p50_ms: f64,
    p99_ms: f64,
    per_worker: Vec<u64>,
    faults: FaultCounts,
}

/// What the fault run did, for reports and tests (all zero without faults).
#[derive(Clone, Copy, Debug, Default, PartialEq, Eq)]
pub struct FaultCounts {
    /// Calls answered.
    pub answered: u64,
    /// Calls that failed (a typed error to the caller).
    pub failed: u64,
    /// Retries on another worker.
    pub retries: u64,
    /// Stale-connection reopens.
    pub reopens: u64,
    /// Connections lost while in use.
    pub conns_lost: u64,
    /// Worker deaths (each followed by a restart on a new address).
    pub deaths: u64,
    /// Connection attempts that failed.
    pub connect_failures: u64,
    /// Calls no worker could take (every candidate ejected, backing off or gone).
    pub unroutable: u64,
}

/// A broken invariant: the step it broke at and what broke.
#[derive(Clone, Debug, PartialEq, Eq)]
pub struct Violation {
    /// Virtual time, nanoseconds.
    pub at_ns: u64,
    /// What broke.
    pub what: String,
}

/// One call in flight through the real [`CallMachine`].
struct Call {
    arrived: u64,
    machine: CallMachine,
    idempotent: bool,
    /// The attempt under way: its lease, connection, and a serial that invalidates events of
    /// attempts that ended meanwhile.
    lease: Option<Lease>,
    conn: Option<ConnId>,
    serial: u64,
    /// An earlier attempt's request may have reached a worker.
    may_have_run: bool,
    ended: bool,
}

struct Worker {
    busy: usize,
    /// Waiting calls: (call index, attempt serial).
    queue: VecDeque<(usize, u64)>,
    /// Calls waiting for a connection attempt: (call index, generation seen).
    waiting: Vec<(usize, u64)>,
    alive: bool,
    /// Incarnation: bumped at each death, so events of the dead one are ignored.
    epoch: u64,
}

/// A scheduled event.
#[derive(Clone, Copy, Debug, PartialEq, Eq, PartialOrd, Ord)]
enum Ev {
    /// Service of (call, serial) on worker w, incarnation epoch, ends.
    Done {
        w: usize,
        call: usize,
        serial: u64,
        epoch: u64,
    },
    /// Connection attempt `id` to worker `w` (incarnation `epoch`) ends.
    Connected { w: usize, id: u64, epoch: u64 },
    /// A random ready connection breaks.
    ConnFault,
    /// Worker `w` dies.
    Die { w: usize },
    /// Worker `w` restarts on a new address.
    Restart { w: usize },
}

fn node(i: usize) -> NodeId {
    let mut id = [0u8; 16];
    id[..8].copy_from_slice(&(i as u64).to_le_bytes());
    NodeId(id)
}

fn ts(ns: u64) -> Timestamp {
    Timestamp::from_micros(ns / 1000)
}

fn addr(w: usize, epoch: u64) -> SocketAddr {
    SocketAddr::from(([10, 0, (w >> 8) as u8, w as u8], 7000 + epoch as u16))
}

/// How long a connection handshake takes, in nanoseconds.
pub const CONNECT_NS: u64 = 200_000;
/// Connections the pool keeps per worker.
pub const CONNS_PER_WORKER: u16 = 2;
/// Retries a call may make.
pub const RETRIES: u32 = 2;

/// The run's state: the real balancer, connection sets and call machines, and the model.
struct Run<'a> {
    means: &'a [f64],
    slots: usize,
    faults: bool,
    balancer: Balancer,
    conns: Connections<u64>,
    filter: Filter,
    tags: Tags,
    index: BTreeMap<NodeId, usize>,
    ws: Vec<Worker>,
    calls: Vec<Call>,
    heap: BinaryHeap<Reverse<(u64, u64, Ev)>>,
    seq: u64,
    service: ChaCha8Rng,
    brng: ChaCha8Rng,
    frng: ChaCha8Rng,
    /// Leases handed out and not finished yet.
    open: BTreeSet<u64>,
    /// Connections that left the pool: never to be handed out again.
    closed: BTreeSet<u64>,
    /// Connections that closed without the pool knowing (an idle close).
    silent: BTreeSet<u64>,
    per_worker: Vec<u64>,
    latencies: Vec<u64>,
    measure_from: u64,
    counts: FaultCounts,
}

impl Run<'_> {
    fn push(&mut self, at: u64, ev: Ev) {
        self.seq += 1;
        self.heap.push(Reverse((at, self.seq, ev)));
    }

    fn violation(now: u64, what: String) -> Violation {
        Violation { at_ns: now, what }
    }

    fn finish(&mut self, now: u64, lease: u64, outcome: Outcome) -> Result<(), Violation> {
        if !self.open.remove(&lease) {
            return Err(Self::violation(
                now,
                format!("lease {lease} finished but not open"),
            ));
        }
        self.balancer
            .finish(lease, outcome, ts(now))
            .map_err(|e| Self::violation(now, format!("lease {lease}: {e}")))?;
        Ok(())
    }

    /// Applies a decision of call `c`'s machine; `true` if the call must select again.
    fn apply(&mut self, now: u64, c: usize, d: Decision) -> Result<bool, Violation> {
        let call = &mut self.calls[c];
        call.serial += 1;
        call.lease = None;
        call.conn = None;
        match d {
            Decision::Proceed | Decision::Ignored => Ok(false),
            Decision::Reopen { lease } => {
                self.counts.reopens += 1;
                self.finish(now, lease, Outcome::Cancelled)?;
                Ok(true)
            }
            Decision::Retry { lease, outcome } => {
                self.counts.retries += 1;
                self.finish(now, lease, outcome)?;
                Ok(true)
            }
            Decision::Answer { lease } => {
                self.finish(now, lease, Outcome::Completed)?;
                let call = &mut self.calls[c];
                if call.may_have_run && !call.idempotent && call.machine.attempts() > 1 {
                    return Err(Self::violation(
                        now,
                        format!("non-idempotent call {c} was retried after it may have run, and answered"),
                    ));
                }
                call.ended = true;
                self.counts.answered += 1;
                if call.arrived >= self.measure_from {
                    self.latencies.push(now - call.arrived);
                }
                Ok(false)
            }
            Decision::Fail { lease, .. } => {
                if let Some((id, outcome)) = lease {
                    self.finish(now, id, outcome)?;
                }
                self.calls[c].ended = true;
                self.counts.failed += 1;
                Ok(false)
            }
            _ => Err(Self::violation(now, format!("unknown decision {d:?}"))),
        }
    }

    /// Runs call `c` from selection until it waits (queued at a worker, waiting for a
    /// connection) or ends.
    fn start(&mut self, now: u64, c: usize) -> Result<(), Violation> {
        loop {
            let lease = {
                let avoid = self.calls[c].machine.avoid().to_vec();
                let mut drawn = self.balancer.select(ts(now), &self.filter, &mut self.brng);
                for _ in 0..avoid.len() {
                    match &drawn {
                        Ok(l) if avoid.contains(&l.worker) => {
                            let again = self.balancer.select(ts(now), &self.filter, &mut self.brng);
                            let id = l.id;
                            self.balancer
                                .finish(id, Outcome::Cancelled, ts(now))
                                .map_err(|e| Self::violation(now, format!("redraw: {e}")))?;
                            drawn = again;
                        }
                        _ => break,
                    }
                }
                drawn
            };
            let Ok(lease) = lease else {
                // No worker can take it: the caller gets a typed error, no lease was held.
                self.calls[c].ended = true;
                self.counts.failed += 1;
                self.counts.unroutable += 1;
                return Ok(());
            };
            self.open.insert(lease.id);
            let d = self.calls[c].machine.selected(&lease);
            if d != Decision::Proceed {
                return Err(Self::violation(now, format!("selection refused: {d:?}")));
            }
            self.calls[c].lease = Some(lease);
            let w = self.index[&lease.worker];
            self.per_worker[w] += 1;
            if self.checkout(now, c, None)? {
                continue;
            }
            return Ok(());
        }
    }

    /// Checks out a connection for call `c`'s lease; `true` if the call must select again.
    fn checkout(&mut self, now: u64, c: usize, seen: Option<u64>) -> Result<bool, Violation> {
        let Some(lease) = self.calls[c].lease else {
            return Ok(false);
        };
        let w = self.index[&lease.worker];
        let key = Some(c as u64 % 4);
        match self
            .conns
            .checkout(&mut self.balancer, &lease, seen, key, ts(now))
        {
            Checkout::Ready {
                id,
                conn,
                open_another,
            } => {
                if self.closed.contains(&conn) || id.0 != conn {
                    return Err(Self::violation(
                        now,
                        format!("connection {conn} used after it closed"),
                    ));
                }
                if let Some(a) = open_another {
                    self.push(
                        now + CONNECT_NS,
                        Ev::Connected {
                            w,
                            id: a.id.0,
                            epoch: self.ws[w].epoch,
                        },
                    );
                }
                if self.silent.contains(&conn) {
                    // It closed without the pool knowing: the stream cannot be opened, the
                    // adapter purges every closed connection of the worker.
                    let silent = &self.silent;
                    let closed: Vec<u64> = self
                        .conns
                        .set(lease.worker)
                        .map(|s| {
                            s.ready()
                                .map(|(_, h)| *h)
                                .filter(|h| silent.contains(h))
                                .collect()
                        })
                        .unwrap_or_default();
                    let n = self.conns.purge_closed(
                        &mut self.balancer,
                        lease.worker,
                        |h| silent.contains(h),
                        ts(now),
                    );
                    if n != closed.len() {
                        return Err(Self::violation(
                            now,
                            format!("purged {n} of {} closed connections", closed.len()),
                        ));
                    }
                    self.closed.extend(closed);
                    let d = self.calls[c].machine.open_failed();
                    return self.apply(now, c, d);
                }
                let call = &mut self.calls[c];
                call.machine.connected(id);
                call.conn = Some(id);
                let serial = call.serial;
                self.enqueue(now, w, c, serial);
                Ok(false)
            }
            Checkout::Connect { attempt, gen } => {
                self.push(
                    now + CONNECT_NS,
                    Ev::Connected {
                        w,
                        id: attempt.id.0,
                        epoch: self.ws[w].epoch,
                    },
                );
                self.ws[w].waiting.push((c, gen));
                Ok(false)
            }
            Checkout::Wait { gen } => {
                self.ws[w].waiting.push((c, gen));
                Ok(false)
            }
            Checkout::Unavailable(why) => {
                let d = self.calls[c].machine.connect_failed(&why);
                self.apply(now, c, d)
            }
        }
    }

    fn enqueue(&mut self, now: u64, w: usize, c: usize, serial: u64) {
        let worker = &mut self.ws[w];
        if worker.busy < self.slots {
            worker.busy += 1;
            let done = now + exp(&mut self.service, self.means[w]) as u64;
            let epoch = worker.epoch;
            self.push(
                done,
                Ev::Done {
                    w,
                    call: c,
                    serial,
                    epoch,
                },
            );
        } else {
            worker.queue.push_back((c, serial));
        }
    }

    /// Starts the next queued call on worker `w`, whose slot just freed.
    fn next_in_queue(&mut self, now: u64, w: usize) {
        while let Some((c, serial)) = self.ws[w].queue.pop_front() {
            if self.calls[c].serial != serial {
                continue;
            }
            let done = now + exp(&mut self.service, self.means[w]) as u64;
            let epoch = self.ws[w].epoch;
            self.push(
                done,
                Ev::Done {
                    w,
                    call: c,
                    serial,
                    epoch,
                },
            );
            return;
        }
        self.ws[w].busy -= 1;
    }

    /// Calls whose attempt was on worker `w` (on connection `only`, if given) lose it: the
    /// request had arrived, so the transport failed waiting for the answer.
    fn fail_calls_on(&mut self, now: u64, w: usize, only: Option<ConnId>) -> Result<(), Violation> {
        let worker = node(w);
        let hit: Vec<usize> = (0..self.calls.len())
            .filter(|&c| {
                let call = &self.calls[c];
                !call.ended
                    && call.lease.is_some_and(|l| l.worker == worker)
                    && call.conn.is_some()
                    && only.is_none_or(|id| call.conn == Some(id))
            })
            .collect();
        for c in hit {
            self.calls[c].may_have_run = true;
            let d = self.calls[c].machine.transport_failed(CallPhase::Response);
            if self.apply(now, c, d)? {
                self.start(now, c)?;
            }
        }
        Ok(())
    }

    /// Wakes every call waiting for a connection to worker `w`: each checks out again.
    fn wake(&mut self, now: u64, w: usize) -> Result<(), Violation> {
        for (c, gen) in std::mem::take(&mut self.ws[w].waiting) {
            if self.calls[c].ended || self.calls[c].lease.is_none() {
                continue;
            }
            if self.checkout(now, c, Some(gen))? {
                self.start(now, c)?;
            }
        }
        Ok(())
    }

    fn step(&mut self, now: u64, ev: Ev) -> Result<(), Violation> {
        match ev {
            Ev::Done {
                w,
                call,
                serial,
                epoch,
            } => {
                if epoch != self.ws[w].epoch {
                    return Ok(());
                }
                if self.calls[call].serial == serial && !self.calls[call].ended {
                    let d = self.calls[call].machine.answered(&Status::Ok);
                    self.apply(now, call, d)?;
                }
                self.next_in_queue(now, w);
            }
            Ev::Connected { w, id, epoch } => {
                // With faults, one handshake in eight fails (the worker backs off).
                let refused = self.faults && self.frng.next_u64() % 8 == 0;
                let result = if self.ws[w].alive && epoch == self.ws[w].epoch && !refused {
                    Ok(id)
                } else {
                    self.counts.connect_failures += 1;
                    Err(ConnectFailure::Unreachable("worker down".into()))
                };
                if let Some(orphan) = self.conns.connect_done(
                    &mut self.balancer,
                    node(w),
                    ConnId(id),
                    result,
                    ts(now),
                ) {
                    self.closed.insert(orphan);
                }
                self.wake(now, w)?;
            }
            Ev::ConnFault => {
                let ready: Vec<(usize, ConnId)> = (0..self.ws.len())
                    .filter_map(|w| self.conns.set(node(w)).map(|s| (w, s)))
                    .flat_map(|(w, s)| s.ready().map(move |(id, _)| (w, id)).collect::<Vec<_>>())
                    .collect();
                let silently = self.frng.next_u64() % 2 == 0;
                if silently && !ready.is_empty() {
                    // An idle close the pool learns of only when a call tries it.
                    let (_, id) = ready[(self.frng.next_u64() % ready.len() as u64) as usize];
                    self.silent.insert(id.0);
                } else if !ready.is_empty() {
                    let (w, id) = ready[(self.frng.next_u64() % ready.len() as u64) as usize];
                    if self.conns.lost(&mut self.balancer, node(w), id, ts(now)) {
                        self.closed.insert(id.0);
                        self.counts.conns_lost += 1;
                    }
                    self.fail_calls_on(now, w, Some(id))?;
                }
                let gap = 20_000_000 + self.frng.next_u64() % 200_000_000;
                if !self.heap.is_empty() {
                    self.push(now + gap, Ev::ConnFault);
                }
            }
            Ev::Die { w } => {
                self.counts.deaths += 1;
                let worker = &mut self.ws[w];
                worker.alive = false;
                worker.epoch += 1;
                worker.busy = 0;
                worker.queue.clear();
                for gone in self.conns.remove(&mut self.balancer, node(w), ts(now)) {
                    self.closed.insert(gone);
                }
                self.balancer.remove_member(node(w));
                self.fail_calls_on(now, w, None)?;
                self.wake(now, w)?;
                self.push(now + 50_000_000, Ev::Restart { w });
            }
            Ev::Restart { w } => {
                let worker = &mut self.ws[w];
                worker.alive = true;
                let a = addr(w, worker.epoch);
                self.balancer
                    .upsert_member(node(w), MemberState::Alive, &self.tags, Some(a));
                for gone in self.conns.upsert(&mut self.balancer, node(w), a, ts(now)) {
                    self.closed.insert(gone);
                }
            }
        }
        self.check(now)
    }

    /// The invariants, after every step.
    fn check(&self, now: u64) -> Result<(), Violation> {
        if self.balancer.total_in_flight() != self.open.len() as u64 {
            return Err(Self::violation(
                now,
                format!(
                    "balancer counts {} calls in flight, {} leases are open",
                    self.balancer.total_in_flight(),
                    self.open.len()
                ),
            ));
        }
        for w in 0..self.ws.len() {
            if let Some(s) = self.conns.set(node(w)) {
                if let Some((id, _)) = s.ready().find(|(id, _)| self.closed.contains(&id.0)) {
                    return Err(Self::violation(
                        now,
                        format!("closed connection {} is pooled", id.0),
                    ));
                }
            }
        }
        Ok(())
    }
}

/// One run over workers with the given mean service times (ns), every call through the real
/// [`Connections`] and [`CallMachine`]. With `faults`, connections break at random (every
/// 20–220 ms; half mid-call, half silently, found when a call cannot open a stream; one handshake in eight fails), worker 1 dies mid-call a quarter of the way in and restarts 50 ms later on a new
/// address, and half the calls are idempotent; the invariants are checked after every step.
fn simulate(
    means: &[f64],
    strategy: Strategy,
    seed: u64,
    calls: usize,
    slots: usize,
    faults: bool,
) -> Result<Outcomes, Violation> {
    let config = BalancerConfig {
        strategy,
        pool: PoolConfig {
            // Workers queue internally: the balancer must never refuse.
            max_in_flight: u32::MAX,
            default_rtt: Duration::from_millis(1),
            // About a thousand calls' worth of history at this load: long enough to
            // remember a slow worker's peaks, short enough to forget a normal worker's.
            ewma_decay: Duration::from_millis(100),
            // Ejections scaled to the run (seconds of virtual time): a worker whose calls
            // failed with a broken connection sits out tens of milliseconds, not the default
            // 5 s, which would eject most of the fault run's workers for most of the run.
            // Without faults no call fails, so nobody is ejected either way.
            ejection_base: Duration::from_millis(20),
            ejection_max: Duration::from_millis(200),
            ..PoolConfig::default()
        },
        ..BalancerConfig::default()
    };
    let mut balancer = Balancer::new(config).expect("simulation config is valid");
    let tags = Tags::from_pairs([("role", "worker")]).expect("valid tags");
    let mut index = BTreeMap::new();
    for i in 0..means.len() {
        balancer.upsert_member(node(i), MemberState::Alive, &tags, Some(addr(i, 0)));
        index.insert(node(i), i);
    }
    let capacity: f64 = means.iter().map(|m| slots as f64 / m).sum();
    let mean_gap = 1.0 / (LOAD * capacity);
    let mut arrivals = rng(seed, STREAM_ARRIVALS);
    let warmup = (calls as f64 * WARMUP) as usize;
    let mut run = Run {
        means,
        slots,
        faults,
        balancer,
        conns: Connections::new(CONNS_PER_WORKER),
        filter: Filter::parse("role=worker").expect("valid filter"),
        tags,
        index,
        ws: means
            .iter()
            .map(|_| Worker {
                busy: 0,
                queue: VecDeque::new(),
                waiting: Vec::new(),
                alive: true,
                epoch: 0,
            })
            .collect(),
        calls: Vec::with_capacity(calls),
        heap: BinaryHeap::new(),
        seq: 0,
        service: rng(seed, STREAM_SERVICE),
        brng: rng(seed, STREAM_BALANCER),
        frng: rng(seed, STREAM_FAULTS),
        open: BTreeSet::new(),
        closed: BTreeSet::new(),
        silent: BTreeSet::new(),
        per_worker: vec![0u64; means.len()],
        latencies: Vec::with_capacity(calls - warmup.min(calls)),
        measure_from: u64::MAX,
        counts: FaultCounts::default(),
    };
    let mut clock = 0f64;
    let mut next_arrival = exp(&mut arrivals, mean_gap) as u64;
    let mut issued = 0usize;
    if run.faults {
        run.push(1_000_000, Ev::ConnFault);
        if means.len() > 2 {
            // A normal worker (not the slow one), a quarter of the way in.
            let at = (calls as f64 / 4.0 * mean_gap) as u64;
            run.push(at, Ev::Die { w: 1 });
        }
    }
    loop {
        let next_event = run.heap.peek().map(|Reverse(e)| e.0);
        let arrival_first = issued < calls && next_event.is_none_or(|d| next_arrival <= d);
        if arrival_first {
            let now = next_arrival;
            if issued == warmup {
                run.measure_from = now;
            }
            issued += 1;
            clock += exp(&mut arrivals, mean_gap);
            next_arrival = clock as u64;
            let idempotent = run.faults && run.frng.next_u64() % 2 == 0;
            let c = run.calls.len();
            run.calls.push(Call {
                arrived: now,
                machine: CallMachine::new(CallTarget::Any, CallPolicy::new(idempotent, RETRIES)),
                idempotent,
                lease: None,
                conn: None,
                serial: 0,
                may_have_run: false,
                ended: false,
            });
            run.start(now, c)?;
            run.check(now)?;
        } else if let Some(Reverse((now, _, ev))) = run.heap.pop() {
            if issued >= calls && matches!(ev, Ev::ConnFault) && run.open.is_empty() {
                continue;
            }
            run.step(now, ev)?;
        } else {
            break;
        }
    }
    if let Some(c) = run.calls.iter().position(|c| !c.ended) {
        return Err(Violation {
            at_ns: u64::MAX,
            what: format!("call {c} never ended"),
        });
    }
    if !run.open.is_empty() {
        return Err(Violation {
            at_ns: u64::MAX,
            what: format!("{} leases never finished", run.open.len()),
        });
    }
    run.latencies.sort_unstable();
    Ok(Outcomes {
        p50_ms: percentile(&run.latencies, 0.50),
        p99_ms: percentile(&run.latencies, 0.99),
        per_worker: run.per_worker,
        faults: run.counts,
    })
}

/// The fault run: the real connection sets and call machines under connection failures and a
/// worker dying mid-call and restarting, every invariant checked after every step.
pub fn run_faults(opts: &BalanceOpts) -> Result<FaultCounts, Violation> {
    let workers = opts.workers.max(3);
    let mut means_r = rng(opts.seed, STREAM_MEANS);
    let mut means: Vec<f64> = (0..workers)
        .map(|_| 1e6 * (0.8 + 0.4 * unit(&mut means_r)))
        .collect();
    means[0] *= SLOW_FACTOR;
    simulate(
        &means,
        opts.strategy,
        opts.seed,
        opts.calls,
        opts.slots.max(1),
        true,
    )
    .map(|o| o.faults)
}

/// Nearest-rank percentile of sorted nanoseconds, in milliseconds.
fn percentile(sorted: &[u64], q: f64) -> f64 {
    if sorted.is_empty() {
        return 0.0;
    }
    let rank = ((q * sorted.len() as f64).ceil() as usize).clamp(1, sorted.len());
    sorted[rank - 1] as f64 / 1e6
}

#[cfg(test)]
mod tests {
    use super::*;

    /// The scenario: one 10x-slow worker of 8, 70 % load.
    fn report(strategy: Strategy) -> BalanceReport {
        run_balance(&BalanceOpts {
            workers: 8,
            strategy,
            seed: 42,
            calls: 100_000,
            slots: SLOTS,
        })
    }

    #[test]
    fn p2c_and_least_connections_route_around_the_slow_worker_and_round_robin_does_not() {
        let p2c = report(Strategy::P2c);
        let lc = report(Strategy::LeastConnections);
        let rr = report(Strategy::RoundRobin);
        assert!(
            p2c.p99_ms <= 1.3 * p2c.ideal_p99_ms,
            "p2c: {}",
            p2c.to_json()
        );
        assert!(lc.p99_ms <= 2.0 * lc.ideal_p99_ms, "lc: {}", lc.to_json());
        assert!(
            rr.p99_ms > 5.0 * rr.ideal_p99_ms && rr.p99_ms > 5.0 * p2c.p99_ms,
            "rr: {}",
            rr.to_json()
        );
        assert!(p2c.share_slow < 0.02 && rr.share_slow > 0.09);
    }

    #[test]
    fn faults_keep_the_invariants_and_are_deterministic() {
        let opts = BalanceOpts {
            workers: 4,
            strategy: Strategy::P2c,
            seed: 9,
            calls: 5_000,
            slots: SLOTS,
        };
        let a = run_faults(&opts).expect("no invariant broke");
        assert_eq!(a.answered + a.failed, 5_000);
        assert_eq!(a.deaths, 1);
        assert!(a.conns_lost > 0, "{a:?}");
        assert_eq!(run_faults(&opts), Ok(a));
    }

    #[test]
    fn same_seed_same_report() {
        let opts = BalanceOpts {
            workers: 5,
            strategy: Strategy::Random,
            seed: 3,
            calls: 5_000,
            slots: SLOTS,
        };
        assert_eq!(run_balance(&opts), run_balance(&opts));
        let other = BalanceOpts {
            seed: 4,
            ..opts.clone()
        };
        assert_ne!(run_balance(&opts), run_balance(&other));
    }

    #[test]
    fn json_has_every_key_on_one_line() {
        let r = run_balance(&BalanceOpts {
            workers: 3,
            strategy: Strategy::LeastConnections,
            seed: 1,
            calls: 1_000,
            slots: SLOTS,
        });
        let j = r.to_json();
        assert!(!j.contains('\n'));
        for key in [
            "\"strategy\":\"least-connections\"",
            "\"workers\":3",
            "\"seed\":1",
            "\"calls\":1000",
            "\"p50_ms\":",
            "\"p99_ms\":",
            "\"ideal_p99_ms\":",
            "\"share_slow\":",
        ] {
            assert!(j.contains(key), "{key} missing from {j}");
        }
    }
}
