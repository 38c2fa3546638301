//! Balancing simulation: how each strategy copes with one slow worker.
//!
//! A discrete-event queueing simulation in virtual time that drives the real
//! [`shoal_core::Balancer`] (selection, leases, peak-EWMA feedback), nothing mocked.
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
use shoal_core::{
    Balancer, BalancerConfig, Filter, MemberState, NodeId, Outcome, PoolConfig, Strategy, Tags,
    Timestamp,
};
use std::cmp::Reverse;
use std::collections::{BinaryHeap, VecDeque};
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
    let full = simulate(&means, opts.strategy, opts.seed, opts.calls, slots);
    let ideal = simulate(&means[1..], opts.strategy, opts.seed, opts.calls, slots);
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
}

struct Worker {
    busy: usize,
    /// Waiting calls: (arrival time ns, lease id).
    queue: VecDeque<(u64, u64)>,
}

fn node(i: usize) -> NodeId {
    let mut id = [0u8; 16];
    id[..8].copy_from_slice(&(i as u64).to_le_bytes());
    NodeId(id)
}

fn ts(ns: u64) -> Timestamp {
    Timestamp::from_micros(ns / 1000)
}

/// A service completion: (time ns, tie-break seq, worker, arrival ns, lease id).
type Completion = (u64, u64, usize, u64, u64);

/// One run over workers with the given mean service times (ns).
fn simulate(means: &[f64], strategy: Strategy, seed: u64, calls: usize, slots: usize) -> Outcomes {
    let config = BalancerConfig {
        strategy,
        pool: PoolConfig {
            // Workers queue internally: the balancer must never refuse.
            max_in_flight: u32::MAX,
            default_rtt: Duration::from_millis(1),
            // About a thousand calls' worth of history at this load: long enough to
            // remember a slow worker's peaks, short enough to forget a normal worker's.
            ewma_decay: Duration::from_millis(100),
            ..PoolConfig::default()
        },
        ..BalancerConfig::default()
    };
    let mut balancer = Balancer::new(config).expect("simulation config is valid");
    let tags = Tags::from_pairs([("role", "worker")]).expect("valid tags");
    let mut index = std::collections::BTreeMap::new();
    for i in 0..means.len() {
        balancer.upsert_member(node(i), MemberState::Alive, &tags, None);
        index.insert(node(i), i);
    }
    let filter = Filter::parse("role=worker").expect("valid filter");

    let capacity: f64 = means.iter().map(|m| slots as f64 / m).sum();
    let mean_gap = 1.0 / (LOAD * capacity);
    let mut arrivals = rng(seed, STREAM_ARRIVALS);
    let mut service = rng(seed, STREAM_SERVICE);
    let mut brng = rng(seed, STREAM_BALANCER);

    let mut ws: Vec<Worker> = means
        .iter()
        .map(|_| Worker {
            busy: 0,
            queue: VecDeque::new(),
        })
        .collect();
    let mut heap: BinaryHeap<Reverse<Completion>> = BinaryHeap::new();
    let mut seq = 0u64;
    let mut per_worker = vec![0u64; means.len()];
    let warmup = (calls as f64 * WARMUP) as usize;
    let mut latencies: Vec<u64> = Vec::with_capacity(calls - warmup.min(calls));

    let mut clock = 0f64;
    let mut next_arrival = exp(&mut arrivals, mean_gap) as u64;
    let mut issued = 0usize;
    // Calls arriving at or after the first post-warm-up arrival are measured.
    let mut measure_from = u64::MAX;

    loop {
        let next_done = heap.peek().map(|Reverse(e)| e.0);
        let arrival_first = issued < calls && next_done.is_none_or(|d| next_arrival <= d);
        if arrival_first {
            let now = next_arrival;
            if issued == warmup {
                measure_from = now;
            }
            issued += 1;
            clock += exp(&mut arrivals, mean_gap);
            next_arrival = clock as u64;
            let lease = balancer
                .select(ts(now), &filter, &mut brng)
                .expect("all workers are alive and uncapped");
            let w = index[&lease.worker];
            per_worker[w] += 1;
            let worker = &mut ws[w];
            if worker.busy < slots {
                worker.busy += 1;
                let done = now + exp(&mut service, means[w]) as u64;
                seq += 1;
                heap.push(Reverse((done, seq, w, now, lease.id)));
            } else {
                worker.queue.push_back((now, lease.id));
            }
        } else if let Some(Reverse((now, _, w, arrived, lease))) = heap.pop() {
            if arrived >= measure_from {
                latencies.push(now - arrived);
            }
            balancer
                .finish(lease, Outcome::Completed, ts(now))
                .expect("each lease is finished once");
            let worker = &mut ws[w];
            match worker.queue.pop_front() {
                Some((arrived, lease)) => {
                    let done = now + exp(&mut service, means[w]) as u64;
                    seq += 1;
                    heap.push(Reverse((done, seq, w, arrived, lease)));
                }
                None => worker.busy -= 1,
            }
        } else {
            break;
        }
    }
    debug_assert_eq!(balancer.total_in_flight(), 0);
    latencies.sort_unstable();
    Outcomes {
        p50_ms: percentile(&latencies, 0.50),
        p99_ms: percentile(&latencies, 0.99),
        per_worker,
    }
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
