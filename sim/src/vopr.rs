//! A seeded swarm run in the style of TigerBeetle's VOPR.
//!
//! [`run_vopr`] is a pure function of `(seed, steps)`: every knob (cluster size, loss,
//! latency, jitter, duplication, partition mode, crash / restart / pause odds, clock skew) is
//! derived from the seed by [`Knobs::from_seed`] and printed. Then two phases:
//!
//! 1. **Chaos**: nodes join, and at random intervals faults are applied (partitions and
//!    heals, crashes, restarts, pauses, and in half the seeds gray and flapping members, see
//!    [`SickFaults`]). Every safety checker runs after every step; in the dedicated gray mode
//!    ([`Knobs::sick_only`]) so does [`HealthyNotFailed`].
//! 2. **Liveness**: every fault is lifted (partitions healed, loss and duplication off,
//!    paused nodes resumed, crashed nodes restarted, gray and flapping members healed) and
//!    the cluster must converge ([`crate::checker::converged`]) within a virtual-time budget;
//!    in seeds with gray or flapping members, flap damping must then release every held
//!    member within [`crate::checker::hold_bound`] ([`crate::checker::none_held`]).
//!
//! A failure says `SIM_SEED=<n>`, the step and the checker, and
//! `SIM_SEED=<n> cargo test -p shoal-sim --test swarm` replays exactly that run.
//!
//! Until the core declares crashed members failed, a member that never comes back would
//! never leave anyone's view, so the liveness phase restarts every crashed node unless
//! [`VoprOptions::allow_permanent_crash`] is set; with it, some crashed nodes stay down and
//! convergence then needs failure detection to remove them.

use crate::checker::{
    converged, hold_bound, none_held, sick_grace, Checker, Checkers, HealthyNotFailed, Violation,
};
use crate::cluster::{addr_of, Sim, SimConfig};
use crate::network::LinkConfig;
use rand_chacha::ChaCha8Rng;
use rand_core::{RngCore, SeedableRng};
use shoal_core::{Config, PacketError, Timestamp};
use std::collections::BTreeMap;
use std::fmt;
use std::net::SocketAddr;
use std::time::Duration;

mod sick;
pub use sick::SickFaults;

/// How partitions are drawn in the chaos phase.
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub enum PartitionMode {
    /// No partitions.
    None,
    /// One node cut off from the rest, both ways.
    IsolateOne,
    /// A random non-empty proper subset against the rest, both ways.
    RandomSplit,
    /// A random split where only one direction is cut.
    OneWay,
}

/// Every knob of one run, derived from its seed.
#[derive(Clone, Debug)]
pub struct Knobs {
    /// Cluster size, 3..=24.
    pub nodes: usize,
    /// Link behaviour in the chaos phase.
    pub link: LinkConfig,
    /// Partition shape.
    pub partition: PartitionMode,
    /// Time between fault decisions (each is drawn from `[interval/2, 3·interval/2]`).
    pub fault_interval: Duration,
    /// Per decision: chance to crash a running node.
    pub crash: f64,
    /// Per decision: chance to restart a crashed node.
    pub restart: f64,
    /// Per decision: chance to pause a running node.
    pub pause: f64,
    /// Longest pause.
    pub pause_max: Duration,
    /// Per decision: chance to change the partition (split when whole, heal when split).
    pub partition_flip: f64,
    /// Clock rate skew (±).
    pub clock_skew: f64,
    /// Length of the chaos phase.
    pub chaos: Duration,
    /// Whether the cluster runs with a cluster key (sealed gossip, freshness checks).
    pub keyed: bool,
    /// Per decision, when keyed: chance to replay a captured datagram, from its own source
    /// or a spoofed one (see [`replay_fault`]).
    pub replay: f64,
    /// Per decision: chance to make a running member gray (it loses 40-90 % of its ingress,
    /// egress or both) or to heal a gray one (issue 16; 0 = never).
    pub gray: f64,
    /// Per decision: chance to make a running member's ingress flap (all dropped for 1-10 s,
    /// clear for 1-10 s, repeating) or to heal a flapping one (0 = never).
    pub flap: f64,
    /// The dedicated gray mode: no crash, pause or partition, only gray and flapping members
    /// on top of the link's base loss, so that the `healthy-not-failed` checker applies
    /// (docs/simulation.md, "Gray failures in the swarm").
    pub sick_only: bool,
}

fn unit(rng: &mut ChaCha8Rng) -> f64 {
    (rng.next_u64() >> 11) as f64 / (1u64 << 53) as f64
}

fn below(rng: &mut ChaCha8Rng, n: u64) -> u64 {
    ((u128::from(rng.next_u64()) * u128::from(n)) >> 64) as u64
}

fn chance(rng: &mut ChaCha8Rng, p: f64) -> bool {
    unit(rng) < p
}

impl Knobs {
    /// Derives every knob from `rng` (itself seeded from the run's seed).
    pub fn from_seed(rng: &mut ChaCha8Rng) -> Self {
        let nodes = 3 + below(rng, 22) as usize;
        let link = LinkConfig {
            latency: Duration::from_micros(100 + below(rng, 20_000)),
            jitter: Duration::from_micros(below(rng, 30_000)),
            loss: unit(rng) * 0.20,
            duplicate: if chance(rng, 0.5) {
                unit(rng) * 0.05
            } else {
                0.0
            },
        };
        let partition = match below(rng, 4) {
            0 => PartitionMode::None,
            1 => PartitionMode::IsolateOne,
            2 => PartitionMode::RandomSplit,
            _ => PartitionMode::OneWay,
        };
        Knobs {
            nodes,
            link,
            partition,
            fault_interval: Duration::from_millis(200 + below(rng, 2000)),
            crash: unit(rng) * 0.4,
            restart: 0.2 + unit(rng) * 0.6,
            pause: unit(rng) * 0.4,
            pause_max: Duration::from_millis(100 + below(rng, 5000)),
            partition_flip: 0.1 + unit(rng) * 0.6,
            clock_skew: if chance(rng, 0.5) { 0.01 } else { 0.0 },
            chaos: Duration::from_secs(20 + below(rng, 41)),
            keyed: false,
            replay: 0.0,
            gray: 0.0,
            flap: 0.0,
            sick_only: false,
        }
    }

    /// Draws the hostile-input knobs from their own stream (`rng`), so the knobs above,
    /// and the traces of runs without a key, stay what they were before these existed.
    pub fn draw_hostile(&mut self, rng: &mut ChaCha8Rng) {
        self.keyed = chance(rng, 0.5);
        self.replay = if self.keyed {
            0.3 + unit(rng) * 0.6
        } else {
            0.0
        };
    }

    /// Draws the gray-failure knobs (issue 16) from their own stream (`rng`), like
    /// [`Knobs::draw_hostile`]: half the seeds get none, the rest gray members, flapping
    /// members or both, and a third of those run the dedicated gray mode (no crash, pause or
    /// partition). Seeds without them keep their knobs and traces.
    pub fn draw_sick(&mut self, rng: &mut ChaCha8Rng) {
        if !chance(rng, 0.5) {
            return;
        }
        let kind = below(rng, 3);
        if kind != 1 {
            self.gray = 0.05 + unit(rng) * 0.3;
        }
        if kind != 0 {
            self.flap = 0.03 + unit(rng) * 0.2;
        }
        self.sick_only = chance(rng, 1.0 / 3.0);
        if self.sick_only {
            self.crash = 0.0;
            self.pause = 0.0;
            self.partition = PartitionMode::None;
        }
    }
}

impl fmt::Display for Knobs {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        write!(
            f,
            "nodes={} latency={:?} jitter={:?} loss={:.1}% dup={:.1}% partition={:?} \
             flip={:.2} fault_interval={:?} crash={:.2} restart={:.2} pause={:.2} \
             pause_max={:?} skew=±{}% chaos={:?}",
            self.nodes,
            self.link.latency,
            self.link.jitter,
            self.link.loss * 100.0,
            self.link.duplicate * 100.0,
            self.partition,
            self.partition_flip,
            self.fault_interval,
            self.crash,
            self.restart,
            self.pause,
            self.pause_max,
            self.clock_skew * 100.0,
            self.chaos
        )?;
        if self.keyed {
            write!(f, " keyed replay={:.2}", self.replay)?;
        }
        if self.gray > 0.0 || self.flap > 0.0 {
            write!(f, " gray={:.2} flap={:.2}", self.gray, self.flap)?;
            if self.sick_only {
                write!(f, " sick_only")?;
            }
        }
        Ok(())
    }
}

/// Switches that are not derived from the seed.
#[derive(Clone, Debug)]
pub struct VoprOptions {
    /// Let some crashed nodes stay down through the liveness phase (needs failure detection
    /// in the core for the cluster to converge without them).
    pub allow_permanent_crash: bool,
    /// Virtual-time budget for the liveness phase.
    pub liveness_budget: Duration,
    /// Print the knobs at start.
    pub verbose: bool,
}

impl Default for VoprOptions {
    fn default() -> Self {
        VoprOptions {
            allow_permanent_crash: false,
            liveness_budget: Duration::from_secs(120),
            verbose: true,
        }
    }
}

/// What a successful run measured.
#[derive(Clone, Debug)]
pub struct VoprReport {
    /// The seed.
    pub seed: u64,
    /// The knobs it derived.
    pub knobs: Knobs,
    /// Steps taken in the chaos phase.
    pub chaos_steps: u64,
    /// Faults applied.
    pub faults: u64,
    /// Of those, replay faults (keyed runs only): captured datagrams handed again.
    pub replays: u64,
    /// Virtual ms the liveness phase took to converge.
    pub liveness_ms: f64,
    /// Virtual ms from convergence until flap damping held nobody down (seeds with gray or
    /// flapping members only; 0 otherwise and when nobody was held).
    pub released_ms: f64,
    /// Of the faults, gray and flapping members made or healed.
    pub sick_faults: u64,
    /// The event-trace hash.
    pub trace_hash: u64,
}

/// Why a run failed.
#[derive(Clone, Debug, PartialEq, Eq)]
pub enum FailureKind {
    /// A safety checker fired.
    Correctness,
    /// The liveness phase did not converge in its budget.
    Liveness,
}

/// A failed run.
#[derive(Clone, Debug)]
pub struct VoprFailure {
    /// The seed that reproduces it.
    pub seed: u64,
    /// Correctness or liveness.
    pub kind: FailureKind,
    /// Steps taken when it failed.
    pub step: u64,
    /// Virtual time when it failed.
    pub at: Timestamp,
    /// The violation.
    pub violation: Violation,
    /// The knobs, for the report.
    pub knobs: Knobs,
}

impl fmt::Display for VoprFailure {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        write!(
            f,
            "vopr {:?} failure: seed {} step {} at {:?}: checker `{}`: {}\nknobs: {}\n\
             SIM_SEED={}\nreproduce with: SIM_SEED={} cargo test -p shoal-sim --test swarm",
            self.kind,
            self.seed,
            self.step,
            self.at,
            self.violation.checker,
            self.violation.detail,
            self.knobs,
            self.seed,
            self.seed
        )
    }
}

/// Runs one seed with at most `steps` chaos steps; panics on failure with `SIM_SEED=<n>`,
/// the step and the checker.
pub fn run_vopr(seed: u64, steps: u64) -> VoprReport {
    match try_vopr(seed, steps, &VoprOptions::default()) {
        Ok(r) => r,
        Err(f) => panic!("{f}"),
    }
}

/// Runs one seed; returns the failure instead of panicking.
pub fn try_vopr(seed: u64, steps: u64, opts: &VoprOptions) -> Result<VoprReport, Box<VoprFailure>> {
    let mut rng = ChaCha8Rng::seed_from_u64(seed ^ 0x766f_7072);
    let mut knobs = Knobs::from_seed(&mut rng);
    let mut hostile = ChaCha8Rng::seed_from_u64(seed ^ 0x7265_706c_6179);
    knobs.draw_hostile(&mut hostile);
    let mut sick_rng = ChaCha8Rng::seed_from_u64(seed ^ 0x6772_6179_666c_6170);
    knobs.draw_sick(&mut sick_rng);
    let mut spoofed = BTreeMap::new();
    if opts.verbose {
        println!("vopr seed={seed} {knobs}");
    }
    let n = knobs.nodes;
    let mut sim = Sim::new(SimConfig {
        nodes: n,
        seed,
        link: knobs.link.clone(),
        node_config: Config::lan(),
        clock_skew: knobs.clock_skew,
    });
    if knobs.keyed {
        sim.set_cluster_key([0x5a; 32]);
        sim.capture_delivered(64);
    }
    let mut checks = Checkers::safety(&sim);
    let mut sick = SickFaults::new(n);
    let mut healthy_check = knobs
        .sick_only
        .then(|| HealthyNotFailed::new(&sim, sick_grace(&sim.config().node_config)));
    let fail = |kind, step, at, violation, knobs: &Knobs| {
        Box::new(VoprFailure {
            seed,
            kind,
            step,
            at,
            violation,
            knobs: knobs.clone(),
        })
    };

    // Joins: node 0 is up first; the others join within the first second through node 0 and
    // up to two random earlier nodes.
    let mut joins: Vec<(Timestamp, usize)> = (1..n)
        .map(|i| (Timestamp::from_micros(below(&mut rng, 1_000_000)), i))
        .collect();
    joins.sort();
    let chaos_end = Timestamp::ZERO + knobs.chaos;
    let mut next_fault = Timestamp::ZERO + knobs.fault_interval;
    let mut out = Vec::new();
    let mut step = 0u64;
    let mut faults = 0u64;
    let mut replays = 0u64;
    let mut sick_faults = 0u64;
    let mut next_join = 0;
    while sim.now < chaos_end && step < steps {
        let limit = joins
            .get(next_join)
            .map_or(chaos_end, |(t, _)| *t)
            .min(next_fault)
            .min(chaos_end)
            .min(sick.next_toggle().unwrap_or(Timestamp::MAX));
        if let Some(i) = sim.step(limit, &mut out) {
            step += 1;
            if let Err(v) = check_all(&mut checks, &mut healthy_check, &sim, i, &out) {
                return Err(fail(FailureKind::Correctness, step, sim.now, v, &knobs));
            }
            out.clear();
            continue;
        }
        if sick.next_toggle().is_some_and(|t| t <= sim.now) {
            sick.toggle_due(&mut sim);
        }
        let mut touched = Vec::new();
        if let Some(&(_, i)) = joins.get(next_join).filter(|(t, _)| *t <= sim.now) {
            next_join += 1;
            if let Some(until) = sim.paused_until(i) {
                // A stalled process runs no command: it joins once it resumes.
                let at = until + Duration::from_micros(1);
                let pos = joins.partition_point(|&(t, _)| t <= at);
                joins.insert(pos, (at, i));
                continue;
            }
            let mut seeds = vec![0];
            for _ in 0..2 {
                let s = below(&mut rng, i as u64) as usize;
                if !seeds.contains(&s) {
                    seeds.push(s);
                }
            }
            sim.join_any(i, &seeds, &mut out);
            touched.push(i);
        }
        if next_fault <= sim.now {
            let jitter = below(&mut rng, knobs.fault_interval.as_micros() as u64 + 1);
            next_fault = sim.now + knobs.fault_interval / 2 + Duration::from_micros(jitter);
            faults += apply_faults(&mut sim, &knobs, &mut rng, &mut out, &mut touched);
            if knobs.keyed && chance(&mut hostile, knobs.replay) {
                match replay_fault(&mut sim, &mut hostile, &mut spoofed, &mut out) {
                    Ok(Some(i)) => {
                        faults += 1;
                        replays += 1;
                        touched.push(i);
                    }
                    Ok(None) => {}
                    Err(v) => return Err(fail(FailureKind::Correctness, step, sim.now, v, &knobs)),
                }
            }
            for (x, is_sick) in sick.decide(&mut sim, &knobs, &mut sick_rng) {
                faults += 1;
                sick_faults += 1;
                if let Some(h) = healthy_check.as_mut() {
                    h.set_sick(x, is_sick, sim.now);
                }
            }
        }
        for i in touched {
            step += 1;
            if let Err(v) = check_all(&mut checks, &mut healthy_check, &sim, i, &out) {
                return Err(fail(FailureKind::Correctness, step, sim.now, v, &knobs));
            }
        }
        out.clear();
    }
    let chaos_steps = step;

    // Liveness: lift every fault.
    sim.heal();
    sim.net.link.loss = 0.0;
    sim.net.link.duplicate = 0.0;
    for x in sick.lift(&mut sim) {
        if let Some(h) = healthy_check.as_mut() {
            h.set_sick(x, false, sim.now);
        }
    }
    for i in 0..n {
        if sim.is_paused(i) {
            sim.resume(i, &mut out);
            step += 1;
            if let Err(v) = check_all(&mut checks, &mut healthy_check, &sim, i, &out) {
                return Err(fail(FailureKind::Correctness, step, sim.now, v, &knobs));
            }
            out.clear();
        }
    }
    for i in 0..n {
        if sim.is_up(i) {
            continue;
        }
        let anyone_up = (0..n).any(|j| sim.is_up(j));
        if opts.allow_permanent_crash && anyone_up && chance(&mut rng, 0.5) {
            continue;
        }
        let seeds: Vec<usize> = (0..n).filter(|&j| j != i && sim.is_up(j)).collect();
        sim.restart_any(i, &seeds, &mut out);
        step += 1;
        if let Err(v) = check_all(&mut checks, &mut healthy_check, &sim, i, &out) {
            return Err(fail(FailureKind::Correctness, step, sim.now, v, &knobs));
        }
        out.clear();
    }
    let start = sim.now;
    let deadline = start + opts.liveness_budget;
    let mut done = converged(&sim).is_ok().then_some(sim.now);
    while done.is_none() {
        let Some(i) = sim.step(deadline, &mut out) else {
            break;
        };
        step += 1;
        if let Err(v) = check_all(&mut checks, &mut healthy_check, &sim, i, &out) {
            return Err(fail(FailureKind::Correctness, step, sim.now, v, &knobs));
        }
        out.clear();
        if converged(&sim).is_ok() {
            done = Some(sim.now);
        }
    }
    let Some(t) = done else {
        // Invariant: the loop ended without convergence, so converged() reports why.
        let v = converged(&sim).expect_err("not converged at the deadline");
        return Err(fail(FailureKind::Liveness, step, sim.now, v, &knobs));
    };
    // Flap damping may still hold a member that flapped (gray, flapping, or crashed and
    // restarted twice in a minute) down: every hold has begun by convergence, and must end
    // within `hold_max` of it ([`hold_bound`]), with the cluster still converged.
    let released_by = t + hold_bound(&sim.config().node_config);
    let settled = |sim: &Sim| none_held(sim).and_then(|()| converged(sim));
    // Only seeds that drew gray or flapping members wait: the others keep their traces and
    // the sweep its time budget (docs/simulation.md).
    let sick_seed = knobs.gray > 0.0 || knobs.flap > 0.0;
    let mut released = (!sick_seed || settled(&sim).is_ok()).then_some(sim.now);
    while released.is_none() {
        let Some(i) = sim.step(released_by, &mut out) else {
            break;
        };
        step += 1;
        if let Err(v) = check_all(&mut checks, &mut healthy_check, &sim, i, &out) {
            return Err(fail(FailureKind::Correctness, step, sim.now, v, &knobs));
        }
        out.clear();
        if settled(&sim).is_ok() {
            released = Some(sim.now);
        }
    }
    let Some(r) = released else {
        // Invariant: the loop ended without settling, so settled() reports why.
        let v = settled(&sim).expect_err("still held at the deadline");
        return Err(fail(FailureKind::Liveness, step, sim.now, v, &knobs));
    };
    Ok(VoprReport {
        seed,
        knobs,
        chaos_steps,
        faults,
        replays,
        liveness_ms: t.saturating_since(start).as_micros() as f64 / 1000.0,
        released_ms: r.saturating_since(t).as_micros() as f64 / 1000.0,
        sick_faults,
        trace_hash: sim.trace.hash(),
    })
}

/// Runs the safety checkers and, in the dedicated gray mode, [`HealthyNotFailed`].
fn check_all(
    checks: &mut Checkers,
    healthy: &mut Option<HealthyNotFailed>,
    sim: &Sim,
    i: usize,
    out: &[(usize, shoal_core::Event)],
) -> Result<(), Violation> {
    checks.after_step(sim, i, out)?;
    match healthy {
        Some(h) => h.after_step(sim, i, out),
        None => Ok(()),
    }
}

/// One fault decision: maybe flip the partition, crash, restart, pause. Returns how many
/// faults it applied; nodes it touched by command go into `touched`.
fn apply_faults(
    sim: &mut Sim,
    knobs: &Knobs,
    rng: &mut ChaCha8Rng,
    out: &mut Vec<(usize, shoal_core::Event)>,
    touched: &mut Vec<usize>,
) -> u64 {
    let n = sim.len();
    let mut applied = 0;
    if knobs.partition != PartitionMode::None && chance(rng, knobs.partition_flip) {
        applied += 1;
        if sim.net.is_partitioned() {
            sim.heal();
        } else {
            let (a, b) = match knobs.partition {
                PartitionMode::IsolateOne => {
                    let x = below(rng, n as u64) as usize;
                    (vec![x], (0..n).filter(|&j| j != x).collect())
                }
                _ => {
                    // A random non-empty proper subset.
                    let k = 1 + below(rng, n as u64 - 1) as usize;
                    let mut order: Vec<usize> = (0..n).collect();
                    for j in (1..n).rev() {
                        order.swap(j, below(rng, j as u64 + 1) as usize);
                    }
                    let mut a = order[..k].to_vec();
                    let mut b = order[k..].to_vec();
                    a.sort_unstable();
                    b.sort_unstable();
                    (a, b)
                }
            };
            if knobs.partition == PartitionMode::OneWay {
                sim.partition_oneway(&a, &b);
            } else {
                sim.partition(&a, &b);
            }
        }
    }
    let up: Vec<usize> = (0..n).filter(|&i| sim.is_up(i)).collect();
    if up.len() > 1 && chance(rng, knobs.crash) {
        let x = up[below(rng, up.len() as u64) as usize];
        sim.crash(x);
        applied += 1;
    }
    let down: Vec<usize> = (0..n).filter(|&i| !sim.is_up(i)).collect();
    if !down.is_empty() && chance(rng, knobs.restart) {
        let x = down[below(rng, down.len() as u64) as usize];
        let mut seeds: Vec<usize> = (0..n).filter(|&j| j != x && sim.is_up(j)).collect();
        if !seeds.is_empty() {
            let r = below(rng, seeds.len() as u64) as usize;
            seeds.rotate_left(r);
        }
        sim.restart_any(x, &seeds, out);
        touched.push(x);
        applied += 1;
    }
    let running: Vec<usize> = (0..n).filter(|&i| sim.is_running(i)).collect();
    if !running.is_empty() && chance(rng, knobs.pause) {
        let x = running[below(rng, running.len() as u64) as usize];
        let len = 1 + below(rng, knobs.pause_max.as_micros() as u64);
        sim.pause(x, sim.now + Duration::from_micros(len));
        applied += 1;
    }
    applied
}

/// How many times a sender may restart (same life: the simulator starts every process at
/// incarnation 0) before its retired boots are forgotten (`shoal_core::freshness` keeps
/// the last 3): a replay of an older boot may then be accepted once, as documented.
const RETIRED_BOOTS: u32 = 3;

/// Spoofed source `k`: outside the cluster's addresses.
fn spoof_addr(k: u64) -> SocketAddr {
    SocketAddr::from(([10, 66, 0, k as u8], 9_999))
}

/// One replay fault (issue 17, keyed runs): a datagram delivered earlier is handed again to
/// its recipient, from its own sender's address or from one of four spoofed addresses.
/// Checked: a recipient still running the process whose freshness check saw it (see
/// [`crate::cluster::Captured::seen`]) refuses it as `Replayed`
/// with nothing else changed, nothing sent and no event; and over the whole run, bytes sent
/// to each spoofed address stay within 3x the bytes received from it (the amplification
/// bound, whatever the node decided). Returns the node touched, if any.
pub fn replay_fault(
    sim: &mut Sim,
    rng: &mut ChaCha8Rng,
    spoofed: &mut BTreeMap<SocketAddr, (u64, u64)>,
    out: &mut Vec<(usize, shoal_core::Event)>,
) -> Result<Option<usize>, Violation> {
    let n = sim.captured().count();
    if n == 0 {
        return Ok(None);
    }
    let k = below(rng, n as u64) as usize;
    let Some(c) = sim.captured().nth(k).cloned() else {
        return Ok(None);
    };
    let spoof = chance(rng, 0.5);
    let src = if spoof {
        spoof_addr(below(rng, 4))
    } else {
        addr_of(c.from)
    };
    let same_process = c.seen
        && sim.process(c.to).restarts == c.to_restarts
        && sim.process(c.from).restarts - c.from_restarts <= RETIRED_BOOTS;
    let Some(inj) = sim.inject(c.to, src, &c.bytes, out) else {
        return Ok(None);
    };
    let violation = |detail: String| Violation {
        checker: "replay",
        detail,
    };
    if same_process {
        if inj.result != Err(PacketError::Replayed) {
            return Err(violation(format!(
                "node {} took a replay of a datagram from node {} (source {src}): {:?}",
                c.to, c.from, inj.result
            )));
        }
        let mut expected = inj.before.clone();
        expected.packets_in += 1;
        expected.bytes_in += c.bytes.len() as u64;
        expected.dropped[PacketError::Replayed.index()] += 1;
        expected.stale_now = inj.after.stale_now;
        if expected != inj.after || inj.sent > 0 || inj.events > 0 {
            return Err(violation(format!(
                "node {} changed on a refused replay: sent {}, events {}, stats {:?} -> {:?}",
                c.to, inj.sent, inj.events, inj.before, inj.after
            )));
        }
    }
    if spoof {
        let e = spoofed.entry(src).or_insert((0, 0));
        e.0 += c.bytes.len() as u64;
        e.1 += inj.replied_bytes;
        if e.1 > 3 * e.0 {
            return Err(violation(format!(
                "spoofed source {src} got {} bytes for {} sent (over 3x)",
                e.1, e.0
            )));
        }
    }
    Ok(Some(c.to))
}
