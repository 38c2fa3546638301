//! Fault scenarios: a crash, a steady lossy network, a stalled process, a partition. Each
//! converges first (with [`converge`]), then injects its fault and measures, in virtual time,
//! what the failure detector did about it.
//!
//! A "false positive" is a `MemberFailed` event about a member that was in fact running
//! (up and not paused) when the event was emitted.

use super::{converge, ScenarioOpts};
use crate::checker::{Checkers, Violation};
use crate::cluster::Sim;
use rand_chacha::ChaCha8Rng;
use rand_core::{RngCore, SeedableRng};
use shoal_core::{Event, MemberState, NodeId, Timestamp};
use std::collections::BTreeMap;
use std::time::Duration;

/// How long the crash scenario waits for every live member to declare the crashed one failed.
pub const DETECT_TIMEOUT: Duration = Duration::from_secs(60);
/// How long the pause scenario runs after the paused member resumes.
pub const AFTER_PAUSE: Duration = Duration::from_secs(30);
/// How long the partition scenario waits, after the heal, for everyone to see everyone.
pub const HEAL_TIMEOUT: Duration = Duration::from_secs(300);

pub(super) fn ms(d: Duration) -> f64 {
    d.as_micros() as f64 / 1000.0
}

pub(super) fn since_ms(t: Timestamp, start: Timestamp) -> f64 {
    ms(t.saturating_since(start))
}

/// The `p`th percentile (nearest rank) of `v`, which must be sorted.
pub fn percentile(v: &[f64], p: f64) -> Option<f64> {
    if v.is_empty() {
        return None;
    }
    let rank = ((p / 100.0) * v.len() as f64).ceil().max(1.0) as usize;
    Some(v[rank.min(v.len()) - 1])
}

/// Drives a converged simulation, optionally running the safety checkers after every step
/// and remembering the first violation.
pub(super) struct Runner {
    pub(super) sim: Sim,
    pub(super) ids: BTreeMap<NodeId, usize>,
    checks: Option<Checkers>,
    pub(super) violation: Option<Violation>,
    out: Vec<(usize, Event)>,
}

impl Runner {
    pub(super) fn new(sim: Sim, check: bool) -> Self {
        let ids = (0..sim.len())
            .map(|i| (sim.process(i).identity.id, i))
            .collect();
        let checks = check.then(|| Checkers::safety(&sim));
        Runner {
            sim,
            ids,
            checks,
            violation: None,
            out: Vec::new(),
        }
    }

    /// Steps until `f` (called with the step's touched node and events) returns true, or
    /// `deadline`; returns when `f` returned true.
    pub(super) fn run(
        &mut self,
        deadline: Timestamp,
        mut f: impl FnMut(&Sim, usize, &[(usize, Event)]) -> bool,
    ) -> Option<Timestamp> {
        while let Some(i) = self.sim.step(deadline, &mut self.out) {
            if let Some(c) = &mut self.checks {
                if let Err(v) = c.after_step(&self.sim, i, &self.out) {
                    self.violation.get_or_insert(v);
                }
            }
            let stop = f(&self.sim, i, &self.out);
            self.out.clear();
            if stop {
                return Some(self.sim.now);
            }
        }
        None
    }
}

pub(super) fn converged_sim(opts: &ScenarioOpts) -> (Option<f64>, Sim) {
    let c = converge(&ScenarioOpts {
        settle: Duration::ZERO,
        steady: Duration::ZERO,
        ..opts.clone()
    });
    (c.converged_ms, c.sim)
}

/// A random member other than node 0 (the join seed), unless there is only node 0.
fn pick_victim(opts: &ScenarioOpts, salt: u64) -> usize {
    let mut rng = ChaCha8Rng::seed_from_u64(opts.seed ^ salt);
    if opts.nodes <= 1 {
        0
    } else {
        1 + (rng.next_u64() % (opts.nodes as u64 - 1)) as usize
    }
}

/// Result of [`crash`].
#[derive(Clone, Debug, Default)]
pub struct CrashReport {
    /// Convergence first.
    pub converged_ms: Option<f64>,
    /// The crashed node.
    pub victim: usize,
    /// Detection latency percentiles (virtual ms from the crash to each live member's
    /// `MemberFailed`); `None` unless every live member detected it.
    pub detect_p50_ms: Option<f64>,
    /// 99th percentile.
    pub detect_p99_ms: Option<f64>,
    /// Slowest.
    pub detect_max_ms: Option<f64>,
    /// Virtual ms from the crash to the first `MemberSuspected` about the victim anywhere.
    pub first_suspect_ms: Option<f64>,
    /// Virtual ms from the crash to the first `MemberFailed` about it anywhere.
    pub first_failed_ms: Option<f64>,
    /// Live members that detected the crash.
    pub detected: usize,
    /// Live members (all but the victim).
    pub live: usize,
    /// `MemberFailed` events about running members, after convergence.
    pub false_positives: u64,
    /// The first invariant violation, when checkers ran.
    pub violation: Option<String>,
    /// The event-trace hash.
    pub trace_hash: u64,
    /// Every live member's detection latency (virtual ms from the crash to its
    /// `MemberFailed`), sorted: the report's detection-time CDF.
    pub detect_ms: Vec<f64>,
}

impl CrashReport {
    /// Whether every live member detected the crash (and nothing broke).
    pub fn ok(&self) -> bool {
        self.converged_ms.is_some() && self.detected == self.live && self.violation.is_none()
    }
}

/// Converges, crashes one random member, and measures how long each live member takes to
/// declare it failed (up to [`DETECT_TIMEOUT`]).
pub fn crash(opts: &ScenarioOpts) -> CrashReport {
    let (converged_ms, sim) = converged_sim(opts);
    let mut r = CrashReport {
        converged_ms,
        ..CrashReport::default()
    };
    if converged_ms.is_none() {
        r.trace_hash = sim.trace.hash();
        return r;
    }
    let n = opts.nodes;
    let victim = pick_victim(opts, 0x6372_6173);
    let mut run = Runner::new(sim, opts.check);
    let victim_id = run.sim.process(victim).identity.id;
    let start = run.sim.now;
    run.sim.crash(victim);
    let mut detected_at: Vec<Option<Timestamp>> = vec![None; n];
    let mut count = 0usize;
    let live = n.saturating_sub(1);
    let mut fp = 0u64;
    let mut first_suspect = None;
    let ids = run.ids.clone();
    let done = count == live;
    if !done {
        run.run(start + DETECT_TIMEOUT, |sim, _, events| {
            for (i, e) in events {
                if let Event::MemberSuspected(m) = e {
                    if m.info.id == victim_id && first_suspect.is_none() {
                        first_suspect = Some(sim.now);
                    }
                }
                if let Event::MemberFailed(m) = e {
                    if m.info.id == victim_id {
                        if detected_at[*i].is_none() {
                            detected_at[*i] = Some(sim.now);
                            count += 1;
                        }
                    } else if ids.get(&m.info.id).is_some_and(|&x| sim.is_running(x)) {
                        fp += 1;
                    }
                }
            }
            count == live
        });
    }
    let mut lat: Vec<f64> = detected_at
        .iter()
        .flatten()
        .map(|t| since_ms(*t, start))
        .collect();
    lat.sort_by(f64::total_cmp);
    r.victim = victim;
    r.first_suspect_ms = first_suspect.map(|t| since_ms(t, start));
    r.first_failed_ms = lat.first().copied();
    r.live = live;
    r.detected = count;
    r.false_positives = fp;
    if count == live && live > 0 {
        r.detect_p50_ms = percentile(&lat, 50.0);
        r.detect_p99_ms = percentile(&lat, 99.0);
        r.detect_max_ms = lat.last().copied();
    }
    r.violation = run.violation.map(|v| v.to_string());
    r.trace_hash = run.sim.trace.hash();
    r.detect_ms = lat;
    r
}

/// Result of [`steady`].
#[derive(Clone, Debug, Default)]
pub struct SteadyReport {
    /// Convergence first (on a clean link).
    pub converged_ms: Option<f64>,
    /// `MemberFailed` events about running members.
    pub false_positives: u64,
    /// `MemberSuspected` events about running members.
    pub suspicions: u64,
    /// Payload bytes sent per member per second under loss and jitter.
    pub bytes_per_member_per_s: f64,
    /// The same window's per-member rates: p99 over members.
    pub bytes_per_member_per_s_p99: f64,
    /// The same window's per-member rates: the highest.
    pub bytes_per_member_per_s_max: f64,
    /// The first invariant violation, when checkers ran.
    pub violation: Option<String>,
    /// The event-trace hash.
    pub trace_hash: u64,
}

impl SteadyReport {
    /// Converged and no false positives.
    pub fn ok(&self) -> bool {
        self.converged_ms.is_some() && self.false_positives == 0 && self.violation.is_none()
    }
}

/// Converges on a clean link, then runs `opts.duration` of virtual time with
/// `opts.loss_pct` loss, `opts.jitter` extra jitter and `opts.dup_pct` duplication (the
/// faults apply **after** convergence), counting false suspicions and failures.
pub fn steady(opts: &ScenarioOpts) -> SteadyReport {
    let (converged_ms, sim) = converged_sim(&ScenarioOpts {
        loss_pct: 0.0,
        jitter: Duration::ZERO,
        dup_pct: 0.0,
        ..opts.clone()
    });
    let mut r = SteadyReport {
        converged_ms,
        bytes_per_member_per_s: f64::NAN,
        bytes_per_member_per_s_p99: f64::NAN,
        bytes_per_member_per_s_max: f64::NAN,
        ..SteadyReport::default()
    };
    if converged_ms.is_none() {
        r.trace_hash = sim.trace.hash();
        return r;
    }
    let mut run = Runner::new(sim, opts.check);
    run.sim.net.link = opts.link();
    let start = run.sim.now;
    let before = run.sim.bytes_sent;
    let before_each = run.sim.bytes_by_node.clone();
    let ids = run.ids.clone();
    let (mut fp, mut sus) = (0u64, 0u64);
    run.run(start + opts.duration, |sim, _, events| {
        for (_, e) in events {
            match e {
                Event::MemberFailed(m)
                    if ids.get(&m.info.id).is_some_and(|&x| sim.is_running(x)) =>
                {
                    fp += 1
                }
                Event::MemberSuspected(m)
                    if ids.get(&m.info.id).is_some_and(|&x| sim.is_running(x)) =>
                {
                    sus += 1
                }
                _ => {}
            }
        }
        false
    });
    let secs = opts.duration.as_secs_f64().max(1e-9);
    r.bytes_per_member_per_s = (run.sim.bytes_sent - before) as f64 / opts.nodes as f64 / secs;
    (r.bytes_per_member_per_s_p99, r.bytes_per_member_per_s_max) =
        super::rate_spread(&before_each, &run.sim.bytes_by_node, secs);
    r.false_positives = fp;
    r.suspicions = sus;
    r.violation = run.violation.map(|v| v.to_string());
    r.trace_hash = run.sim.trace.hash();
    r
}

/// Result of [`pause`].
#[derive(Clone, Debug, Default)]
pub struct PauseReport {
    /// Convergence first.
    pub converged_ms: Option<f64>,
    /// The paused node.
    pub victim: usize,
    /// `MemberFailed` events about members other than the paused one.
    pub false_positives: u64,
    /// How many nodes declared the paused member failed (informative).
    pub paused_failed: usize,
    /// At the end every node holds the paused member alive, and it holds everyone alive.
    pub recovered: bool,
    /// The first invariant violation, when checkers ran.
    pub violation: Option<String>,
    /// The event-trace hash.
    pub trace_hash: u64,
}

impl PauseReport {
    /// No false positives about others, and the paused member recovered.
    pub fn ok(&self) -> bool {
        self.converged_ms.is_some()
            && self.false_positives == 0
            && self.recovered
            && self.violation.is_none()
    }
}

/// Whether node `i` holds all `n` members alive.
fn sees_all_alive(sim: &Sim, i: usize, n: usize) -> bool {
    sim.node(i).is_some_and(|x| {
        x.live_members() == n
            && x.members()
                .filter(|m| m.state == MemberState::Alive)
                .count()
                == n
    })
}

/// Converges, stalls one random member for `opts.pause`, resumes it and runs
/// [`AFTER_PAUSE`] more.
pub fn pause(opts: &ScenarioOpts) -> PauseReport {
    let (converged_ms, sim) = converged_sim(opts);
    let mut r = PauseReport {
        converged_ms,
        ..PauseReport::default()
    };
    if converged_ms.is_none() {
        r.trace_hash = sim.trace.hash();
        return r;
    }
    let n = opts.nodes;
    let victim = pick_victim(opts, 0x7061_7573);
    let mut run = Runner::new(sim, opts.check);
    let victim_id = run.sim.process(victim).identity.id;
    let start = run.sim.now;
    run.sim.pause(victim, start + opts.pause);
    let mut failed_by = vec![false; n];
    let mut fp = 0u64;
    run.run(start + opts.pause + AFTER_PAUSE, |_, _, events| {
        for (i, e) in events {
            if let Event::MemberFailed(m) = e {
                if m.info.id == victim_id {
                    failed_by[*i] = true;
                } else {
                    fp += 1;
                }
            }
        }
        false
    });
    let sim = &run.sim;
    r.victim = victim;
    r.false_positives = fp;
    r.paused_failed = failed_by.iter().filter(|b| **b).count();
    r.recovered = (0..n).all(|i| {
        sim.node(i)
            .and_then(|x| x.member(&victim_id))
            .is_some_and(|m| m.state == MemberState::Alive)
    }) && sees_all_alive(sim, victim, n);
    r.violation = run.violation.map(|v| v.to_string());
    r.trace_hash = run.sim.trace.hash();
    r
}

/// Result of [`partition`].
#[derive(Clone, Debug, Default)]
pub struct PartitionReport {
    /// Convergence first.
    pub converged_ms: Option<f64>,
    /// Minority side (40%).
    pub minority: Vec<usize>,
    /// Virtual ms from the split until every minority node reported `PartitionDetected`
    /// with `minority: true`; `None` if some never did during the hold.
    pub partition_detect_ms: Option<f64>,
    /// Minority nodes that reported it during the hold.
    pub minority_reported: usize,
    /// Majority nodes that emitted `PartitionDetected` at all (must be 0).
    pub false_majority: usize,
    /// Virtual ms from the split until every majority node had declared or learned every
    /// minority member failed (the majority keeps serving without them); `None` if some
    /// majority node still counted a minority member live when the hold ended.
    pub majority_failed_ms: Option<f64>,
    /// Virtual ms from the heal until every node holds all N members alive.
    pub heal_ms: Option<f64>,
    /// The first invariant violation, when checkers ran.
    pub violation: Option<String>,
    /// The event-trace hash.
    pub trace_hash: u64,
}

impl PartitionReport {
    /// The minority noticed, the majority did not, and the cluster re-merged.
    pub fn ok(&self) -> bool {
        self.converged_ms.is_some()
            && self.partition_detect_ms.is_some()
            && self.false_majority == 0
            && self.heal_ms.is_some()
            && self.violation.is_none()
    }
}

/// Converges, splits the cluster 60/40 (random sides), holds the split for `opts.hold`,
/// heals, and runs until every node holds every member alive (or [`HEAL_TIMEOUT`]).
pub fn partition(opts: &ScenarioOpts) -> PartitionReport {
    let (converged_ms, sim) = converged_sim(opts);
    let mut r = PartitionReport {
        converged_ms,
        ..PartitionReport::default()
    };
    if converged_ms.is_none() {
        r.trace_hash = sim.trace.hash();
        return r;
    }
    let n = opts.nodes;
    let mut rng = ChaCha8Rng::seed_from_u64(opts.seed ^ 0x7061_7274);
    let mut order: Vec<usize> = (0..n).collect();
    for j in (1..n).rev() {
        order.swap(j, (rng.next_u64() % (j as u64 + 1)) as usize);
    }
    let k = n * 2 / 5;
    let mut minority = order[..k].to_vec();
    let mut majority = order[k..].to_vec();
    minority.sort_unstable();
    majority.sort_unstable();
    let mut in_minority = vec![false; n];
    for &i in &minority {
        in_minority[i] = true;
    }
    let mut run = Runner::new(sim, opts.check);
    let start = run.sim.now;
    run.sim.partition(&minority, &majority);
    let mut reported = vec![false; n];
    let mut false_major = vec![false; n];
    let mut count = 0usize;
    let mut detect_at = None;
    let minority_ids: Vec<NodeId> = minority
        .iter()
        .map(|&i| run.sim.process(i).identity.id)
        .collect();
    let mut failed_pairs = vec![false; n * k];
    let mut failed_count = 0usize;
    let mut majority_failed_at = None;
    let mut watch = |sim: &Sim, events: &[(usize, Event)], during_hold: bool| {
        for (i, e) in events {
            if let (Event::MemberFailed(m), true, false) = (e, during_hold, in_minority[*i]) {
                if let Some(j) = minority_ids.iter().position(|id| *id == m.info.id) {
                    let pair = *i * k + j;
                    if !failed_pairs[pair] {
                        failed_pairs[pair] = true;
                        failed_count += 1;
                        if failed_count == (n - k) * k {
                            majority_failed_at = Some(sim.now);
                        }
                    }
                }
            }
            if let Event::PartitionDetected { minority, .. } = e {
                if !in_minority[*i] {
                    false_major[*i] = true;
                } else if *minority && during_hold && !reported[*i] {
                    reported[*i] = true;
                    count += 1;
                    if count == k {
                        detect_at = Some(sim.now);
                    }
                }
            }
        }
    };
    run.run(start + opts.hold, |sim, _, ev| {
        watch(sim, ev, true);
        false
    });
    run.sim.heal();
    let healed = run.sim.now;
    let mut full: Vec<bool> = (0..n).map(|i| sees_all_alive(&run.sim, i, n)).collect();
    let mut full_count = full.iter().filter(|b| **b).count();
    let done = if full_count == n {
        Some(healed)
    } else {
        run.run(healed + HEAL_TIMEOUT, |sim, i, ev| {
            watch(sim, ev, false);
            let f = sees_all_alive(sim, i, n);
            if f != full[i] {
                full[i] = f;
                if f {
                    full_count += 1;
                } else {
                    full_count -= 1;
                }
            }
            full_count == n
        })
    };
    r.minority_reported = count;
    r.partition_detect_ms = detect_at.map(|t| since_ms(t, start));
    if k == 0 {
        r.partition_detect_ms = Some(0.0);
    }
    r.false_majority = false_major.iter().filter(|b| **b).count();
    r.majority_failed_ms = majority_failed_at.map(|t| since_ms(t, start));
    r.heal_ms = done.map(|t| since_ms(t, healed));
    r.minority = minority;
    r.violation = run.violation.map(|v| v.to_string());
    r.trace_hash = run.sim.trace.hash();
    r
}
