//! Invariant checkers: one per invariant, run after every simulation step.
//!
//! Assertions inside the core catch a broken rule where it breaks; checkers catch what no
//! single node can see: that the cluster as a whole stays coherent. Each checker looks at the
//! node a step touched (only its view can have changed), so a check costs O(members) per
//! step, not O(nodes × members). A violation names its checker and says what it saw.
//!
//! | checker | invariant |
//! |---|---|
//! | [`IncarnationMonotonic`] | a node's view of a member's incarnation never goes back while the member stays in its table (reaping may forget it) |
//! | [`SelfAlive`] | a running node always holds itself alive (or left, once it leaves) |
//! | [`OwnerIncarnation`] | nobody holds a member at an incarnation the member never had: only the owner raises it |
//! | [`NoResurrection`] | once every running node holds a crashed member failed at its last incarnation, no node shows it live again (until it restarts) |
//! | [`converged`] | liveness: running nodes have identical live sets, exactly the running nodes |
//! | [`none_held`] | liveness with flap damping: no running node holds a running member down (within [`hold_bound`] of convergence) |
//! | [`HealthyNotFailed`] | gray failures: a healthy observer never declares a healthy member failed (the swarm's dedicated gray mode) |

use crate::cluster::Sim;
use shoal_core::{Config, Event, MemberState, NodeId, Timestamp};
use std::collections::BTreeMap;
use std::fmt;
use std::time::Duration;

/// An invariant that did not hold.
#[derive(Clone, Debug, PartialEq)]
pub struct Violation {
    /// The checker that saw it.
    pub checker: &'static str,
    /// What it saw.
    pub detail: String,
}

impl fmt::Display for Violation {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        write!(f, "[{}] {}", self.checker, self.detail)
    }
}

/// The outcome of one check.
pub type CheckResult = Result<(), Violation>;

fn violation(checker: &'static str, detail: String) -> CheckResult {
    Err(Violation { checker, detail })
}

/// One invariant, checked after every step.
pub trait Checker {
    /// The checker's name, printed with a violation.
    fn name(&self) -> &'static str;
    /// Node `i` was restarted (a fresh process with no memory) since the last check.
    fn on_restart(&mut self, _sim: &Sim, _i: usize) {}
    /// Checks after a step that touched node `touched` and produced `events`.
    fn after_step(&mut self, sim: &Sim, touched: usize, events: &[(usize, Event)]) -> CheckResult;
}

/// Maps node ids to simulator indices.
fn index_of(sim: &Sim) -> BTreeMap<NodeId, usize> {
    (0..sim.len())
        .map(|i| (sim.process(i).identity.id, i))
        .collect()
}

/// (a) Per (observer, subject) the incarnation never regresses while the subject is present.
#[derive(Debug, Default)]
pub struct IncarnationMonotonic {
    seen: Vec<BTreeMap<NodeId, u64>>,
}

impl Checker for IncarnationMonotonic {
    fn name(&self) -> &'static str {
        "incarnation-monotonic"
    }

    fn on_restart(&mut self, _sim: &Sim, i: usize) {
        if let Some(s) = self.seen.get_mut(i) {
            s.clear();
        }
    }

    fn after_step(&mut self, sim: &Sim, i: usize, _: &[(usize, Event)]) -> CheckResult {
        if self.seen.len() < sim.len() {
            self.seen.resize_with(sim.len(), BTreeMap::new);
        }
        let Some(node) = sim.node(i) else {
            return Ok(());
        };
        let old = &self.seen[i];
        let mut now = BTreeMap::new();
        for m in node.members() {
            if let Some(&before) = old.get(&m.info.id) {
                if m.info.incarnation < before {
                    return violation(
                        self.name(),
                        format!(
                            "node {i} holds {} at incarnation {} after having seen {before}",
                            m.info.name.as_str(),
                            m.info.incarnation
                        ),
                    );
                }
            }
            now.insert(m.info.id, m.info.incarnation);
        }
        self.seen[i] = now;
        Ok(())
    }
}

/// (b) A running node holds its own entry alive (or left, once it has begun leaving).
#[derive(Debug, Default)]
pub struct SelfAlive;

impl Checker for SelfAlive {
    fn name(&self) -> &'static str {
        "self-alive"
    }

    fn after_step(&mut self, sim: &Sim, i: usize, _: &[(usize, Event)]) -> CheckResult {
        let Some(node) = sim.node(i) else {
            return Ok(());
        };
        match node.member(&node.id()).map(|m| m.state) {
            Some(MemberState::Alive | MemberState::Left) => Ok(()),
            other => violation(
                self.name(),
                format!("node {i} holds itself as {other:?} while running"),
            ),
        }
    }
}

/// (c) Nobody holds member X at an incarnation above the highest X itself ever had (across
/// restarts): incarnations move forward only by their owner.
#[derive(Debug, Default)]
pub struct OwnerIncarnation {
    ids: BTreeMap<NodeId, usize>,
    max: Vec<u64>,
}

impl OwnerIncarnation {
    fn refresh(&mut self, sim: &Sim, x: usize) -> u64 {
        if let Some(n) = sim.node(x) {
            self.max[x] = self.max[x].max(n.me().incarnation);
        }
        self.max[x]
    }
}

impl Checker for OwnerIncarnation {
    fn name(&self) -> &'static str {
        "owner-incarnation"
    }

    fn after_step(&mut self, sim: &Sim, i: usize, _: &[(usize, Event)]) -> CheckResult {
        if self.max.len() < sim.len() {
            self.ids = index_of(sim);
            self.max.resize(sim.len(), 0);
        }
        self.refresh(sim, i);
        let Some(node) = sim.node(i) else {
            return Ok(());
        };
        for m in node.members() {
            let Some(&x) = self.ids.get(&m.info.id) else {
                continue;
            };
            // The owner may have raised it by a command since it was last touched: refresh
            // lazily, only when the view looks ahead of it.
            if m.info.incarnation > self.max[x] && m.info.incarnation > self.refresh(sim, x) {
                return violation(
                    self.name(),
                    format!(
                        "node {i} holds node {x} at incarnation {}, but node {x} never went above {}",
                        m.info.incarnation, self.max[x]
                    ),
                );
            }
        }
        Ok(())
    }
}

/// (d) No resurrection: once every up node (paused ones too) that knows crashed member X holds
/// it failed at (at least) X's last incarnation, no node that has held X failed may show it
/// live again until X restarts, and a node that never held it failed (it restarted meanwhile
/// and heard news that was in flight) may show it live for at most [`STALE_GRACE`].
#[derive(Debug, Default)]
pub struct NoResurrection {
    ids: BTreeMap<NodeId, usize>,
    max_inc: Vec<u64>,
    /// Members dead everywhere, with the incarnation they died at and when that was.
    dead: BTreeMap<usize, (u64, Timestamp)>,
    /// (observer, dead member) pairs where the observer has held the member failed since.
    held_failed: std::collections::BTreeSet<(usize, usize)>,
}

/// How long a node that never held a dead member failed (one that just restarted, say) may
/// show it live because of news that was true when sent and still in flight; after this its
/// view must have caught up.
pub const STALE_GRACE: std::time::Duration = std::time::Duration::from_secs(10);

impl NoResurrection {
    fn dead_everywhere(&self, sim: &Sim, x: usize, id: NodeId) -> Option<u64> {
        if sim.is_up(x) {
            return None;
        }
        let mut known = false;
        let mut inc = u64::MAX;
        // Every *up* node, paused ones included: a node that slept through the failure still
        // holds its old view, which is stale, not a resurrection.
        for j in (0..sim.len()).filter(|&j| sim.is_up(j)) {
            // Invariant: is_up means the core exists.
            let n = sim.node(j).expect("up node has a core");
            if let Some(m) = n.member(&id) {
                if m.state != MemberState::Failed || m.info.incarnation < self.max_inc[x] {
                    return None;
                }
                known = true;
                inc = inc.min(m.info.incarnation);
            }
        }
        known.then_some(inc)
    }
}

impl Checker for NoResurrection {
    fn name(&self) -> &'static str {
        "no-resurrection"
    }

    fn on_restart(&mut self, _sim: &Sim, i: usize) {
        self.dead.remove(&i);
        // A restarted observer starts from an empty table.
        self.held_failed.retain(|&(obs, x)| obs != i && x != i);
    }

    fn after_step(&mut self, sim: &Sim, i: usize, events: &[(usize, Event)]) -> CheckResult {
        if self.max_inc.len() < sim.len() {
            self.ids = index_of(sim);
            self.max_inc.resize(sim.len(), 0);
        }
        if let Some(n) = sim.node(i) {
            self.max_inc[i] = self.max_inc[i].max(n.me().incarnation);
        }
        for (_, e) in events {
            if let Event::MemberFailed(m) = e {
                if let Some(&x) = self.ids.get(&m.info.id) {
                    if !self.dead.contains_key(&x) {
                        if let Some(inc) = self.dead_everywhere(sim, x, m.info.id) {
                            self.dead.insert(x, (inc, sim.now));
                        }
                    }
                }
            }
        }
        let Some(node) = sim.node(i) else {
            return Ok(());
        };
        for (&x, &(inc, since)) in &self.dead {
            let id = sim.process(x).identity.id;
            let Some(m) = node.member(&id) else { continue };
            if m.state == MemberState::Failed {
                self.held_failed.insert((i, x));
                continue;
            }
            if !m.state.is_live() {
                continue;
            }
            // A node that held it failed and now shows it live: a resurrection. A node that
            // never did (it restarted, and news sent before the failure was still in flight)
            // may lag, but only for a grace period.
            let regressed = self.held_failed.contains(&(i, x));
            if regressed || sim.now.saturating_since(since) > STALE_GRACE {
                return violation(
                    self.name(),
                    format!(
                        "node {i} shows crashed node {x} as {:?} at incarnation {} after every \
                         up node held it failed at {inc}{}",
                        m.state,
                        m.info.incarnation,
                        if regressed {
                            " (it had held it failed)"
                        } else {
                            " for over 10 s"
                        }
                    ),
                );
            }
        }
        Ok(())
    }
}

/// (e) Liveness: every running (up, unpaused) node holds exactly the running nodes alive,
/// and nothing else live. Checked at the end of a liveness phase, not after every step.
pub fn converged(sim: &Sim) -> CheckResult {
    let running: Vec<usize> = (0..sim.len()).filter(|&i| sim.is_running(i)).collect();
    let mut want: Vec<NodeId> = running
        .iter()
        .map(|&i| sim.process(i).identity.id)
        .collect();
    want.sort_unstable();
    for &i in &running {
        // Invariant: is_running means the core is up.
        let node = sim.node(i).expect("running node is up");
        let alive = node
            .members()
            .filter(|m| m.state == MemberState::Alive)
            .map(|m| m.info.id);
        let live = node.members().filter(|m| m.state.is_live()).count();
        if live != want.len() || !alive.eq(want.iter().copied()) {
            let name = |id: &NodeId| {
                node.member(id)
                    .map_or_else(|| format!("{id:?}"), |m| m.info.name.as_str().to_owned())
            };
            let missing: Vec<String> = running
                .iter()
                .map(|&j| (j, sim.process(j).identity.id))
                .filter(|(_, id)| {
                    node.member(id)
                        .is_none_or(|m| m.state != MemberState::Alive)
                })
                .map(|(j, id)| {
                    node.member(&id).map_or_else(
                        || format!("node {j} (unknown)"),
                        |m| format!("{}:{:?}@{}", name(&id), m.state, m.info.incarnation),
                    )
                })
                .collect();
            let extra: Vec<String> = node
                .members()
                .filter(|m| m.state.is_live() && want.binary_search(&m.info.id).is_err())
                .map(|m| format!("{}:{:?}", m.info.name.as_str(), m.state))
                .collect();
            return violation(
                "converged",
                format!(
                    "node {i} (joining: {}) holds {live} live, want exactly the {} running nodes; \
                     not alive: {missing:?}; live but not running: {extra:?}",
                    node.is_joining(),
                    want.len()
                ),
            );
        }
    }
    Ok(())
}

/// (f) Gray failures (issue 16): an observer that is healthy never declares a healthy member
/// failed. *Healthy* means: running, and neither gray nor flapping now nor within the last
/// [`sick_grace`] (a member healed a moment ago may still be declared failed on evidence
/// gathered while it was sick, and an observer healed a moment ago may still act on what it
/// misheard). A gray or flapping member may be wrong about others (the issue allows it);
/// healthy observers must not be, neither on their own evidence nor by taking up a sick
/// member's word.
///
/// Sound only when the sick members are the only faults beyond the link's base loss: a
/// partition, a pause or a crash elsewhere gives healthy members honest reasons to suspect
/// each other. The swarm therefore runs it in its dedicated gray mode only
/// ([`crate::vopr::Knobs::sick_only`]); the caller reports who is sick with
/// [`HealthyNotFailed::set_sick`].
#[derive(Debug)]
pub struct HealthyNotFailed {
    ids: BTreeMap<NodeId, usize>,
    sick: Vec<bool>,
    /// When each node last stopped being sick.
    healed_at: Vec<Option<Timestamp>>,
    grace: Duration,
}

/// How long after its faults are lifted a member (or observer) counts as healthy for
/// [`HealthyNotFailed`]: the longest a suspicion raised while it was sick can still run, the
/// lone-suspicion timeout plus a fully stretched suspicion timeout
/// (`suspicion_min × suspicion_max_mult × (awareness_max + 1)`). LAN: 30 + 16.2 s.
pub fn sick_grace(config: &Config) -> Duration {
    config.lone_suspicion_timeout
        + config.suspicion_min * config.suspicion_max_mult * (config.awareness_max + 1)
}

impl HealthyNotFailed {
    /// Nobody sick yet; `grace` as [`sick_grace`] gives it.
    pub fn new(sim: &Sim, grace: Duration) -> Self {
        HealthyNotFailed {
            ids: index_of(sim),
            sick: vec![false; sim.len()],
            healed_at: vec![None; sim.len()],
            grace,
        }
    }

    /// Node `i` became sick (`true`) or healthy (`false`) at `now`.
    pub fn set_sick(&mut self, i: usize, sick: bool, now: Timestamp) {
        if self.sick[i] && !sick {
            self.healed_at[i] = Some(now);
        }
        self.sick[i] = sick;
    }

    fn healthy(&self, sim: &Sim, i: usize) -> bool {
        sim.is_running(i)
            && !self.sick[i]
            && self.healed_at[i].is_none_or(|t| sim.now.saturating_since(t) >= self.grace)
    }
}

impl Checker for HealthyNotFailed {
    fn name(&self) -> &'static str {
        "healthy-not-failed"
    }

    fn after_step(&mut self, sim: &Sim, _: usize, events: &[(usize, Event)]) -> CheckResult {
        if sim.net.is_partitioned() {
            return Ok(());
        }
        for (o, e) in events {
            let Event::MemberFailed(m) = e else { continue };
            let Some(&x) = self.ids.get(&m.info.id) else {
                continue;
            };
            if x != *o && self.healthy(sim, *o) && self.healthy(sim, x) {
                let sick: Vec<usize> = (0..self.sick.len()).filter(|&i| self.sick[i]).collect();
                return violation(
                    self.name(),
                    format!(
                        "healthy node {o} declared healthy node {x} failed at incarnation {} \
                         (sick now: {sick:?})",
                        m.info.incarnation
                    ),
                );
            }
        }
        Ok(())
    }
}

/// How long after convergence flap damping may still hold a member down: `hold_max`, plus
/// 5 s for clock skew (a hold runs on the observer's clock, up to 1 % slow: 1.2 s of 120 s).
pub fn hold_bound(config: &Config) -> Duration {
    config.damping.hold_max + Duration::from_secs(5)
}

/// (g) Liveness with flap damping: no running node holds a running member down. Once the
/// cluster has [`converged`], every member is alive in every table, so every hold in force has
/// begun, and each ends within `hold_max` (core/src/damping.rs): the swarm requires this
/// within [`hold_bound`] of convergence.
pub fn none_held(sim: &Sim) -> CheckResult {
    let running: Vec<usize> = (0..sim.len()).filter(|&i| sim.is_running(i)).collect();
    for &o in &running {
        // Invariant: is_running means the core is up.
        let node = sim.node(o).expect("running node is up");
        for &x in &running {
            if node.is_held_down(&sim.process(x).identity.id) {
                return violation(
                    "hold-bounded",
                    format!("node {o} still holds node {x} down (flap damping)"),
                );
            }
        }
    }
    Ok(())
}

/// Every safety checker, run together; notices restarts by itself.
pub struct Checkers {
    checkers: Vec<Box<dyn Checker>>,
    restarts: Vec<u32>,
    /// Steps checked so far.
    pub steps: u64,
}

impl fmt::Debug for Checkers {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        let names: Vec<&str> = self.checkers.iter().map(|c| c.name()).collect();
        f.debug_struct("Checkers")
            .field("checkers", &names)
            .field("steps", &self.steps)
            .finish()
    }
}

impl Checkers {
    /// The four safety checkers (a)–(d), primed with the cluster's current state.
    pub fn safety(sim: &Sim) -> Self {
        let mut c = Checkers {
            checkers: vec![
                Box::new(IncarnationMonotonic::default()),
                Box::new(SelfAlive),
                Box::new(OwnerIncarnation::default()),
                Box::new(NoResurrection::default()),
            ],
            restarts: (0..sim.len()).map(|i| sim.process(i).restarts).collect(),
            steps: 0,
        };
        for i in 0..sim.len() {
            // Priming cannot fail on a fresh cluster; a violation here is reported later.
            let _ = c.check_node(sim, i, &[]);
        }
        c.steps = 0;
        c
    }

    /// Runs every checker after a step that touched `touched`.
    pub fn after_step(
        &mut self,
        sim: &Sim,
        touched: usize,
        events: &[(usize, Event)],
    ) -> CheckResult {
        for i in 0..self.restarts.len() {
            let r = sim.process(i).restarts;
            if r != self.restarts[i] {
                self.restarts[i] = r;
                for c in &mut self.checkers {
                    c.on_restart(sim, i);
                }
            }
        }
        self.check_node(sim, touched, events)
    }

    fn check_node(&mut self, sim: &Sim, i: usize, events: &[(usize, Event)]) -> CheckResult {
        self.steps += 1;
        if i >= sim.len() {
            return Ok(());
        }
        for c in &mut self.checkers {
            c.after_step(sim, i, events)?;
        }
        Ok(())
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::scenarios::{converge, ScenarioOpts};

    /// Three LAN members, converged.
    fn three() -> Sim {
        let c = converge(&ScenarioOpts {
            nodes: 3,
            seed: 5,
            settle: Duration::ZERO,
            steady: Duration::ZERO,
            ..ScenarioOpts::default()
        });
        assert!(c.converged_ms.is_some(), "three members converge");
        c.sim
    }

    /// Node `o`'s `MemberFailed` about node `x`, as the core would emit it.
    fn failed(sim: &Sim, o: usize, x: usize) -> Vec<(usize, Event)> {
        let id = sim.process(x).identity.id;
        let mut m = sim
            .node(o)
            .and_then(|n| n.member(&id))
            .cloned()
            .expect("known");
        m.state = MemberState::Failed;
        vec![(o, Event::MemberFailed(m))]
    }

    #[test]
    fn healthy_not_failed_fires_only_between_healthy_members() {
        let mut sim = three();
        let grace = sick_grace(&sim.config().node_config);
        let mut c = HealthyNotFailed::new(&sim, grace);
        let ev = failed(&sim, 0, 1);
        let v = c
            .after_step(&sim, 0, &ev)
            .expect_err("healthy 0 failed healthy 1");
        assert_eq!(v.checker, "healthy-not-failed");
        // A sick subject may be declared failed; a sick observer may be wrong.
        c.set_sick(1, true, sim.now);
        assert_eq!(c.after_step(&sim, 0, &ev), Ok(()));
        assert_eq!(c.after_step(&sim, 1, &failed(&sim, 1, 2)), Ok(()));
        // Healed a moment ago: old evidence may still fail it, for `grace`.
        c.set_sick(1, false, sim.now);
        assert_eq!(c.after_step(&sim, 0, &ev), Ok(()));
        let healed = sim.now;
        sim.run_until(healed + grace, |_, _, _| {});
        assert!(
            c.after_step(&sim, 0, &ev).is_err(),
            "healthy again after the grace"
        );
        // Not while a partition gives honest reasons.
        sim.partition(&[0], &[1, 2]);
        assert_eq!(c.after_step(&sim, 0, &ev), Ok(()));
    }

    #[test]
    fn healthy_not_failed_covers_the_lan_suspicion_bounds() {
        // 30 s lone suspicion + 0.6 s × 3 × 9 fully stretched suspicion.
        assert_eq!(sick_grace(&Config::lan()), Duration::from_millis(46_200));
    }

    /// Node 2's ingress flaps twice: its observers suppress it and hold it down when it
    /// comes back; `none_held` sees the hold, and the hold ends within `hold_bound`.
    #[test]
    fn none_held_sees_a_damped_member_until_its_hold_ends() {
        let mut sim = three();
        assert_eq!(none_held(&sim), Ok(()));
        let mut t = sim.now;
        for _ in 0..2 {
            sim.net.set_node_loss(2, 1.0, 0.0);
            t = t + Duration::from_secs(10);
            sim.run_until(t, |_, _, _| {});
            sim.net.set_node_loss(2, 0.0, 0.0);
            t = t + Duration::from_secs(10);
            sim.run_until(t, |_, _, _| {});
        }
        let v = none_held(&sim).expect_err("node 2 is held after flapping twice");
        assert_eq!(v.checker, "hold-bounded");
        assert!(v.detail.contains("node 2 down"), "{v}");
        let bound = hold_bound(&sim.config().node_config);
        let released = sim.run_until_pred(t + bound, |_, _, _| {}, |s| none_held(s).is_ok());
        assert!(released.is_some(), "released within {bound:?}");
    }
}
