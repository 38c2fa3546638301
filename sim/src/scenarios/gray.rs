//! Partial failures: `gray` (a few members lose most of their packets) and `flipflop` (a few
//! members lose all ingress for a while, recover, and do it again).
//!
//! Both converge first, then inject the fault through the network's per-node loss
//! ([`crate::network::Network::set_node_loss`]) and watch, after every step, how each observer
//! treats each faulty member. An observer *treats a member as alive* when its table holds the
//! member `Alive` and flap damping does not hold it down (see [`treats_alive`]): the balancer sends to a Suspect member only when no
//! Alive one can take the call, and never to a Failed one, so anything but Alive takes the
//! member out of the view it uses.
//!
//! A "healthy false failure" is a `MemberFailed` event, emitted by anyone, about a member
//! outside the faulty set.

use super::faults::{converged_sim, ms, percentile, since_ms, Runner};
use super::ScenarioOpts;
use crate::cluster::Sim;
use rand_chacha::ChaCha8Rng;
use rand_core::{RngCore, SeedableRng};
use shoal_core::{Event, MemberState, NodeId, Timestamp};
use std::time::Duration;

/// How long `gray` waits, after the loss ends, for every gray member to be alive everywhere.
pub const RECOVER_TIMEOUT: Duration = Duration::from_secs(120);

/// Which of a gray member's directions lose packets.
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub enum Direction {
    /// Ingress and egress.
    Both,
    /// Ingress only.
    In,
    /// Egress only.
    Out,
}

impl Direction {
    /// Parses `both`, `in` or `out`.
    pub fn from_name(s: &str) -> Option<Self> {
        match s {
            "both" => Some(Direction::Both),
            "in" => Some(Direction::In),
            "out" => Some(Direction::Out),
            _ => None,
        }
    }

    /// The name [`Direction::from_name`] reads.
    pub fn name(self) -> &'static str {
        match self {
            Direction::Both => "both",
            Direction::In => "in",
            Direction::Out => "out",
        }
    }

    /// (ingress, egress) loss for a loss probability `p`.
    fn split(self, p: f64) -> (f64, f64) {
        match self {
            Direction::Both => (p, p),
            Direction::In => (p, 0.0),
            Direction::Out => (0.0, p),
        }
    }
}

/// Knobs of [`gray`] and [`flipflop`] (the shared ones come from [`ScenarioOpts`]:
/// `duration` is how long the fault lasts).
#[derive(Clone, Debug)]
pub struct GrayOpts {
    /// `gray`: loss of each gray member's packets, in percent.
    pub loss_pct: f64,
    /// `gray`: share of members that go gray, in percent (at least one member).
    pub gray_pct: f64,
    /// `gray`: which directions lose packets.
    pub direction: Direction,
    /// `flipflop`: how many members flap.
    pub flappers: usize,
    /// `flipflop`: how long each down phase (all ingress dropped) lasts.
    pub down: Duration,
    /// `flipflop`: how long each up phase lasts.
    pub up: Duration,
}

impl Default for GrayOpts {
    fn default() -> Self {
        GrayOpts {
            loss_pct: 80.0,
            gray_pct: 1.0,
            direction: Direction::Both,
            flappers: 10,
            down: Duration::from_secs(20),
            up: Duration::from_secs(20),
        }
    }
}

/// Whether observer `o` treats member `id` as alive: its table holds it `Alive` and flap
/// damping does not hold it down.
pub fn treats_alive(sim: &Sim, o: usize, id: &NodeId) -> bool {
    sim.node(o).is_some_and(|x| {
        !x.is_held_down(id) && x.member(id).is_some_and(|m| m.state == MemberState::Alive)
    })
}

/// `count` distinct members drawn from `1..n` (never the join seed, node 0), sorted.
fn pick_members(n: usize, count: usize, seed: u64) -> Vec<usize> {
    let mut rng = ChaCha8Rng::seed_from_u64(seed);
    let mut order: Vec<usize> = (1..n).collect();
    for j in (1..order.len()).rev() {
        order.swap(j, (rng.next_u64() % (j as u64 + 1)) as usize);
    }
    order.truncate(count.min(order.len()));
    order.sort_unstable();
    order
}

/// How every observer treats every faulty member, kept up to date after each step.
struct Watch {
    /// Faulty members' indices and ids.
    faulty: Vec<(usize, NodeId)>,
    /// `is_faulty[i]`.
    is_faulty: Vec<bool>,
    /// `alive[o][f]`: observer `o` treats faulty member `f` as alive.
    alive: Vec<Vec<bool>>,
    /// When `alive[o][f]` last changed.
    since: Vec<Vec<Timestamp>>,
    /// Alive/not-alive transitions per pair while counting.
    flaps: Vec<Vec<u32>>,
    /// First time each pair went not-alive while counting.
    removed_at: Vec<Vec<Option<Timestamp>>>,
    /// Pairs (observer other than the member itself) not treating the member as alive.
    not_alive: usize,
    /// Whether transitions are being counted.
    counting: bool,
    /// `MemberFailed` about a healthy member, by a healthy / a faulty observer.
    false_by_healthy: u64,
    false_by_faulty: u64,
    /// `MemberFailed` about a faulty member by healthy observers.
    faulty_failed: u64,
    ids: std::collections::BTreeMap<NodeId, usize>,
    /// `GRAY_DEBUG=o,f`: print every change of that pair to stderr.
    debug: Option<(usize, usize)>,
}

impl Watch {
    fn new(sim: &Sim, ids: std::collections::BTreeMap<NodeId, usize>, faulty: &[usize]) -> Self {
        let n = sim.len();
        let faulty: Vec<(usize, NodeId)> = faulty
            .iter()
            .map(|&i| (i, sim.process(i).identity.id))
            .collect();
        let mut is_faulty = vec![false; n];
        for &(i, _) in &faulty {
            is_faulty[i] = true;
        }
        let k = faulty.len();
        let mut w = Watch {
            is_faulty,
            alive: vec![vec![true; k]; n],
            since: vec![vec![sim.now; k]; n],
            flaps: vec![vec![0; k]; n],
            removed_at: vec![vec![None; k]; n],
            not_alive: 0,
            counting: false,
            false_by_healthy: 0,
            false_by_faulty: 0,
            faulty_failed: 0,
            faulty,
            ids,
            debug: std::env::var("GRAY_DEBUG").ok().and_then(|v| {
                let (a, b) = v.split_once(',')?;
                Some((a.parse().ok()?, b.parse().ok()?))
            }),
        };
        for o in 0..n {
            for f in 0..k {
                let a = treats_alive(sim, o, &w.faulty[f].1);
                w.alive[o][f] = a;
                if !a && o != w.faulty[f].0 {
                    w.not_alive += 1;
                }
            }
        }
        w
    }

    /// Re-reads observer `o`'s view of every faulty member after a step and tallies events;
    /// `on_change(o, f, alive, since)` is called for every change before it is recorded.
    fn update(
        &mut self,
        sim: &Sim,
        o: usize,
        events: &[(usize, Event)],
        mut on_change: impl FnMut(usize, usize, bool, Timestamp),
    ) {
        for (i, e) in events {
            if let Some((dobs, df)) = self.debug {
                let about = |m: &shoal_core::Member| m.info.id == self.faulty[df].1;
                let hit = match e {
                    Event::MemberJoined(m)
                    | Event::MemberUpdated(m)
                    | Event::MemberSuspected(m)
                    | Event::MemberRecovered(m)
                    | Event::MemberFailed(m)
                    | Event::MemberLeft(m) => about(m),
                    _ => false,
                };
                if *i == dobs && hit {
                    eprintln!("  t={:?} event {e:?}", sim.now);
                }
            }
            if let Event::MemberFailed(m) = e {
                match self.ids.get(&m.info.id) {
                    Some(&x) if !self.is_faulty[x] => {
                        if self.debug.is_some() {
                            eprintln!("t={:?} false failure of {x} at {i}: {m:?}", sim.now);
                        }
                        if self.is_faulty[*i] {
                            self.false_by_faulty += 1;
                        } else {
                            self.false_by_healthy += 1;
                        }
                    }
                    Some(_) if !self.is_faulty[*i] => self.faulty_failed += 1,
                    _ => {}
                }
            }
        }
        for f in 0..self.faulty.len() {
            let (fi, id) = self.faulty[f];
            let a = treats_alive(sim, o, &id);
            if a == self.alive[o][f] {
                continue;
            }
            if self.debug == Some((o, f)) {
                let m = sim.node(o).and_then(|x| x.member(&id));
                eprintln!(
                    "t={:?} observer {o} member {fi}: alive={a} state={:?} inc={:?} held={}",
                    sim.now,
                    m.map(|m| m.state),
                    m.map(|m| m.info.incarnation),
                    sim.node(o).is_some_and(|x| x.is_held_down(&id))
                );
            }
            on_change(o, f, self.alive[o][f], self.since[o][f]);
            self.alive[o][f] = a;
            self.since[o][f] = sim.now;
            if o != fi {
                if a {
                    self.not_alive -= 1;
                } else {
                    self.not_alive += 1;
                }
            }
            if self.counting && !self.is_faulty[o] {
                self.flaps[o][f] += 1;
                if !a && self.removed_at[o][f].is_none() {
                    self.removed_at[o][f] = Some(sim.now);
                }
            }
        }
    }

    /// Prints every (observer, gray member) pair not yet alive (`GRAY_HOLDOUTS=secs`).
    fn dump_holdouts(&self, sim: &Sim) {
        for o in 0..self.alive.len() {
            for (f, &(fi, id)) in self.faulty.iter().enumerate() {
                if o == fi || self.alive[o][f] {
                    continue;
                }
                let m = sim.node(o).and_then(|x| x.member(&id));
                eprintln!(
                    "holdout t={:?} observer {o}{} member {fi}: state={:?} held={} since={:?}",
                    sim.now,
                    if self.is_faulty[o] { " (gray)" } else { "" },
                    m.map(|m| m.state),
                    sim.node(o).is_some_and(|x| x.is_held_down(&id)),
                    self.since[o][f],
                );
            }
        }
    }

    /// The most transitions of one faulty member at one healthy observer.
    fn flaps_max(&self) -> u32 {
        if self.debug.is_some() {
            let worst = (0..self.alive.len())
                .filter(|&o| !self.is_faulty[o])
                .flat_map(|o| (0..self.faulty.len()).map(move |f| (o, f)))
                .max_by_key(|&(o, f)| self.flaps[o][f]);
            eprintln!("most flaps (observer, member): {worst:?}");
        }
        (0..self.alive.len())
            .filter(|&o| !self.is_faulty[o])
            .flat_map(|o| self.flaps[o].iter().copied())
            .max()
            .unwrap_or(0)
    }

    fn healthy_false_failures(&self) -> u64 {
        self.false_by_healthy + self.false_by_faulty
    }
}

/// Result of [`gray`].
#[derive(Clone, Debug, Default)]
pub struct GrayReport {
    /// Convergence first.
    pub converged_ms: Option<f64>,
    /// The gray members.
    pub gray: Vec<usize>,
    /// 99th percentile, over every healthy observer and gray member, of the virtual ms from
    /// the start of the loss until the observer first stopped treating the member as alive;
    /// a pair that never did counts as infinite, so `None` when more than 1 % never did.
    pub removed_p99_ms: Option<f64>,
    /// Median of the same.
    pub removed_p50_ms: Option<f64>,
    /// Share of (healthy observer, gray member) pairs that stopped treating it as alive.
    pub removed_frac: f64,
    /// Share of (healthy observer, gray member) pairs treating it as alive when the loss ends.
    pub alive_at_end_frac: f64,
    /// Most alive/not-alive transitions of one gray member at one healthy observer during
    /// the loss.
    pub flaps_max: u32,
    /// `MemberFailed` about healthy members, by anyone, during the loss and the recovery.
    pub healthy_false_failures: u64,
    /// Of those, the ones emitted by gray members.
    pub false_by_gray: u64,
    /// `MemberFailed` about gray members emitted by healthy members.
    pub gray_failed_events: u64,
    /// Virtual ms from the end of the loss until every gray member was alive at every other
    /// member; `None` if not within [`RECOVER_TIMEOUT`].
    pub recovered_ms: Option<f64>,
    /// The first invariant violation, when checkers ran.
    pub violation: Option<String>,
    /// The event-trace hash.
    pub trace_hash: u64,
}

impl GrayReport {
    /// Converged, the cluster recovered, and the checkers found nothing.
    pub fn ok(&self) -> bool {
        self.converged_ms.is_some() && self.recovered_ms.is_some() && self.violation.is_none()
    }
}

/// Converges, makes `g.gray_pct` % of the members (at least one) lose `g.loss_pct` % of their
/// packets in `g.direction` for `opts.duration`, then lifts the loss and waits up to
/// [`RECOVER_TIMEOUT`] for every gray member to be alive at every member.
pub fn gray(opts: &ScenarioOpts, g: &GrayOpts) -> GrayReport {
    let (converged_ms, sim) = converged_sim(opts);
    let mut r = GrayReport {
        converged_ms,
        ..GrayReport::default()
    };
    if converged_ms.is_none() {
        r.trace_hash = sim.trace.hash();
        return r;
    }
    let n = opts.nodes;
    let count = ((n as f64 * g.gray_pct / 100.0).round() as usize).max(1);
    let grays = pick_members(n, count, opts.seed ^ 0x6772_6179);
    let mut run = Runner::new(sim, opts.check);
    let mut w = Watch::new(&run.sim, run.ids.clone(), &grays);
    let (ingress, egress) = g.direction.split((g.loss_pct / 100.0).clamp(0.0, 1.0));
    for &i in &grays {
        run.sim.net.set_node_loss(i, ingress, egress);
    }
    let start = run.sim.now;
    w.counting = true;
    run.run(start + opts.duration, |sim, i, ev| {
        w.update(sim, i, ev, |_, _, _, _| {});
        false
    });
    w.counting = false;
    let end = start + opts.duration;
    let mut removed: Vec<f64> = Vec::new();
    let (mut pairs, mut alive_end) = (0usize, 0usize);
    for o in (0..n).filter(|&o| !w.is_faulty[o]) {
        for f in 0..grays.len() {
            pairs += 1;
            alive_end += usize::from(w.alive[o][f]);
            removed.push(w.removed_at[o][f].map_or(f64::INFINITY, |t| since_ms(t, start)));
        }
    }
    removed.sort_by(f64::total_cmp);
    let fin = |x: Option<f64>| x.filter(|v| v.is_finite());
    r.removed_p99_ms = fin(percentile(&removed, 99.0));
    r.removed_p50_ms = fin(percentile(&removed, 50.0));
    let denom = pairs.max(1) as f64;
    r.removed_frac = removed.iter().filter(|v| v.is_finite()).count() as f64 / denom;
    r.alive_at_end_frac = alive_end as f64 / denom;
    r.flaps_max = w.flaps_max();
    run.sim.net.clear_node_loss();
    r.recovered_ms = if w.not_alive == 0 {
        Some(0.0)
    } else {
        let dump_at = std::env::var("GRAY_HOLDOUTS")
            .ok()
            .and_then(|v| v.parse::<u64>().ok())
            .map(|s| end + Duration::from_secs(s));
        let mut dumped = false;
        run.run(end + RECOVER_TIMEOUT, |sim, i, ev| {
            w.update(sim, i, ev, |_, _, _, _| {});
            if dump_at.is_some_and(|t| sim.now >= t) && !dumped {
                dumped = true;
                w.dump_holdouts(sim);
            }
            w.not_alive == 0
        })
        .map(|t| since_ms(t, end))
    };
    r.healthy_false_failures = w.healthy_false_failures();
    r.false_by_gray = w.false_by_faulty;
    r.gray_failed_events = w.faulty_failed;
    r.gray = grays;
    r.violation = run.violation.map(|v| v.to_string());
    r.trace_hash = run.sim.trace.hash();
    r
}

/// Result of [`flipflop`].
#[derive(Clone, Debug, Default)]
pub struct FlipflopReport {
    /// Convergence first.
    pub converged_ms: Option<f64>,
    /// The flapping members.
    pub flappers: Vec<usize>,
    /// Most alive/not-alive transitions of one flapper at one healthy observer over the run.
    pub flaps_max: u32,
    /// Mean of the same over every (healthy observer, flapper) pair.
    pub flaps_mean: f64,
    /// Share of the flappers' down time during which healthy observers treated them as alive,
    /// in percent, averaged over every (healthy observer, flapper) pair.
    pub alive_while_down_pct: f64,
    /// Share of the flappers' up time during which healthy observers treated them as alive,
    /// in percent (the cost of holding a flapper down).
    pub alive_while_up_pct: f64,
    /// `MemberFailed` about healthy members, by anyone.
    pub healthy_false_failures: u64,
    /// Of those, the ones emitted by flappers.
    pub false_by_flappers: u64,
    /// The first invariant violation, when checkers ran.
    pub violation: Option<String>,
    /// The event-trace hash.
    pub trace_hash: u64,
}

impl FlipflopReport {
    /// Converged and the checkers found nothing.
    pub fn ok(&self) -> bool {
        self.converged_ms.is_some() && self.violation.is_none()
    }
}

/// Converges, then `g.flappers` members drop all ingress for `g.down`, recover for `g.up`,
/// and repeat, for `opts.duration`.
pub fn flipflop(opts: &ScenarioOpts, g: &GrayOpts) -> FlipflopReport {
    let (converged_ms, sim) = converged_sim(opts);
    let mut r = FlipflopReport {
        converged_ms,
        ..FlipflopReport::default()
    };
    if converged_ms.is_none() {
        r.trace_hash = sim.trace.hash();
        return r;
    }
    let n = opts.nodes;
    let flappers = pick_members(n, g.flappers, opts.seed ^ 0x666c_6170);
    let k = flappers.len();
    let mut run = Runner::new(sim, opts.check);
    let mut w = Watch::new(&run.sim, run.ids.clone(), &flappers);
    w.counting = true;
    let start = run.sim.now;
    let end = start + opts.duration;
    // Alive time per pair, in the down and the up phases.
    let mut alive_down = vec![vec![Duration::ZERO; k]; n];
    let mut alive_up = vec![vec![Duration::ZERO; k]; n];
    let (mut down_total, mut up_total) = (Duration::ZERO, Duration::ZERO);
    let mut t = start;
    let mut down = true;
    while t < end {
        let phase = if down { g.down } else { g.up };
        let until = (t + phase).min(end);
        for &i in &flappers {
            run.sim
                .net
                .set_node_loss(i, if down { 1.0 } else { 0.0 }, 0.0);
        }
        // Close segments at the phase start, so each phase accrues only its own time.
        for row in w.since.iter_mut() {
            row.iter_mut().for_each(|s| *s = t);
        }
        {
            let acc = if down { &mut alive_down } else { &mut alive_up };
            run.run(until, |sim, i, ev| {
                w.update(sim, i, ev, |o, f, was_alive, since| {
                    if was_alive {
                        acc[o][f] += sim.now.saturating_since(since);
                    }
                });
                false
            });
            for (o, row) in acc.iter_mut().enumerate() {
                for (f, a) in row.iter_mut().enumerate() {
                    if w.alive[o][f] {
                        *a += until.saturating_since(w.since[o][f]);
                    }
                }
            }
        }
        let len = until.saturating_since(t);
        if down {
            down_total += len;
        } else {
            up_total += len;
        }
        t = until;
        down = !down;
    }
    run.sim.net.clear_node_loss();
    let healthy: Vec<usize> = (0..n).filter(|&o| !w.is_faulty[o]).collect();
    let pairs = (healthy.len() * k).max(1) as f64;
    let share = |acc: &Vec<Vec<Duration>>, total: Duration| {
        if total.is_zero() {
            return 0.0;
        }
        let sum: f64 = healthy
            .iter()
            .flat_map(|&o| acc[o].iter().map(|d| ms(*d) / ms(total)))
            .sum();
        100.0 * sum / pairs
    };
    r.alive_while_down_pct = share(&alive_down, down_total);
    r.alive_while_up_pct = share(&alive_up, up_total);
    r.flaps_max = w.flaps_max();
    r.flaps_mean = healthy
        .iter()
        .flat_map(|&o| w.flaps[o].iter().map(|&x| x as f64))
        .sum::<f64>()
        / pairs;
    r.healthy_false_failures = w.healthy_false_failures();
    r.false_by_flappers = w.false_by_faulty;
    r.flappers = flappers;
    r.violation = run.violation.map(|v| v.to_string());
    r.trace_hash = run.sim.trace.hash();
    r
}
