//! Flap damping: a member that keeps coming and going is held down (BGP route-flap damping,
//! RFC 2439, adapted to members).
//!
//! **Rule: every time a member goes from alive to not alive (suspect, failed) it earns a
//! penalty of 1 that halves every `half_life`; once the penalty reaches `suppress`, the member
//! is suppressed, and a suppressed member that comes back (refutes, rejoins) is held down: it
//! must stay alive for `max(hold_min, hold_mult × min(its longest recent outage, its longest
//! recent healthy up phase))` (at most `hold_max`; both remembered with the same half-life as
//! the penalty; an up phase is the time from coming back to going down again while treated
//! as alive, or a held member's longest run of answered checks) *and* answer
//! `release_answers` of this node's direct checks in a row (one more for every check it
//! missed since it was suppressed, at most `release_answers_max`) before this node treats it
//! as alive again.** The hold restarts from scratch if the member goes down again meanwhile,
//! so a member that flaps faster than its hold never comes back.
//!
//! Why evidence and not only time: a member losing most of its packets (a gray failure) is
//! suspected, refutes, and in between looks healthy for many seconds, longer than any hold
//! that a real recovery can afford to wait. Time alone released it between suspicions (11 to
//! 23 flaps in 300 s at 80 % loss in one direction). A run of answered pings is what a
//! healthy member shows at once and a lossy one almost never: at 80 % loss one way, twelve
//! in a row happen with odds of 4·10⁻⁹ per try.
//! The penalty decays only between outages that this node sees: a member that stays down
//! for minutes has not behaved well meanwhile, so a suppressed member is held when it comes
//! back however long it was gone; its suppression is lifted when it goes down with a penalty
//! decayed below `reuse`, or when a hold ends (the penalty stays, so one more outage
//! suppresses again while the history is recent).
//!
//! Why the hold grows with the outage: a member that vanished for 18 s and then answered
//! for a moment (a flapping NIC) has shown less than one that vanished for half a second
//! under packet loss; the longer it was gone, the longer it must prove itself. A single
//! outage (a crash, a restart, a pause, a healed partition) never suppresses: damping costs
//! nothing until a member has flapped.
//!
//! Why no longer than twice its longest up phase: a flapper has to stay up longer than it
//! used to (20 s up, 20 s down: held 40 s, so it never comes back while it flaps), but a
//! member that was away for minutes without ever staying up in between (a gray member at
//! 80 % loss, failed, rejoined, failed again) has no up phase to beat: holding it twice its
//! outage (up to 2 minutes) kept it out long after it had recovered (3 gray members of 40:
//! none back within 120 s of the loss ending; with this rule 9-14 s). Its answers still have
//! to come in a run, which a member still losing packets does not manage.
//!
//! Why a sick node learns nothing of a member's history: what a node losing packets itself
//! measures of others' up phases and outages is its own loss. An up phase it was sick
//! through counts as none and such an outage is not learned, so its holds fall back to
//! `hold_min` and the answers in a row (see [`Damping::self_health`]).
//!
//! Pure and deterministic: time comes in as arguments; the penalty is an `f64` computed the
//! same way everywhere; state is one small record per member that has flapped.

use crate::timer::DeadlineIndex;
use crate::{NodeId, Timestamp};
use core::time::Duration;
use std::collections::BTreeMap;

/// Damping knobs (see the module docs for the rule).
#[derive(Clone, Debug, PartialEq)]
pub struct DampingConfig {
    /// Whether damping runs at all (off: every member is treated as its table state says).
    pub enabled: bool,
    /// The penalty halves every `half_life`.
    pub half_life: Duration,
    /// Penalty (in flaps) at which a member is suppressed.
    pub suppress: f64,
    /// Penalty below which a suppressed member coming back is no longer held.
    pub reuse: f64,
    /// Highest penalty kept (bounds how long a heavy flapper's history is remembered:
    /// `half_life · log2(ceiling / reuse)`).
    pub ceiling: f64,
    /// Shortest hold.
    pub hold_min: Duration,
    /// The hold is this many times the shorter of the member's longest recent outage and its
    /// longest recent healthy up phase (at least `hold_min`).
    pub hold_mult: u32,
    /// Longest hold by time (the answers below may keep a member held longer).
    pub hold_max: Duration,
    /// Direct checks a held member must answer in a row before it is released.
    pub release_answers: u32,
    /// Most answers in a row ever required (each check missed since the member was
    /// suppressed adds one to `release_answers`, up to this).
    pub release_answers_max: u32,
}

impl Default for DampingConfig {
    /// Two outages within about a minute suppress; a suppressed member is held at least 8 s
    /// and twice its last outage, at most 2 min by time, and until it answers 4 checks in a
    /// row (12 once it has missed 8).
    fn default() -> Self {
        DampingConfig {
            enabled: true,
            half_life: Duration::from_secs(60),
            suppress: 1.5,
            reuse: 0.5,
            ceiling: 8.0,
            hold_min: Duration::from_secs(8),
            hold_mult: 2,
            hold_max: Duration::from_secs(120),
            release_answers: 4,
            release_answers_max: 12,
        }
    }
}

impl DampingConfig {
    /// Whether the knobs make sense: positive half-life, `0 < reuse < suppress <= ceiling`,
    /// `hold_min <= hold_max`, `release_answers <= release_answers_max`.
    pub fn is_valid(&self) -> bool {
        !self.half_life.is_zero()
            && self.reuse > 0.0
            && self.reuse < self.suppress
            && self.suppress <= self.ceiling
            && self.ceiling.is_finite()
            && self.hold_min <= self.hold_max
            && self.release_answers <= self.release_answers_max
    }
}

/// How a held member came back, so its release can be reported the same way.
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub enum Back {
    /// It refuted a suspicion.
    Recovered,
    /// It came back after being failed or left.
    Rejoined,
}

/// Suspicions refuted at once, in a row, each while the member was held, that count as a
/// real outage for the up-phase record.
///
/// One such suspicion is a blip: a stale suspicion reaching a flapper a second after it came
/// back must not end its up phase (it would be recorded as one second long, and the flapper
/// released inside its next up phase). A run of them while held is something else: a member
/// losing most of its packets, suspected and refuting again and again, never staying up in
/// between. Counted as blips, none ended an up phase, so such a member (gray, failed for
/// 108 s, rejoined, then suspected ten times in a row until the loss ended) had no up phase
/// on record and was held twice its outage, two minutes, after it had recovered
/// (`shoal-sim gray --nodes 40 --gray-pct 7.5 --duration 120 --seed 100`). After a run,
/// the longest up phase seen (none: 0 s) joins the record, its hold falls towards
/// `hold_min`, and its answers in a row, which a member still losing packets cannot give,
/// decide when it is back.
///
/// Why only while held: a flapper going down is suspected by a node several times within
/// milliseconds while suspicions and its last refutations cross; counted, those runs gave
/// one flapper of `shoal-sim flipflop --nodes 40 --flappers 4 --duration 160 --seed 6` a
/// short up phase and 5 flaps instead of 3.
const BLIP_RUN: u32 = 3;

/// One member's flap history.
#[derive(Clone, Debug, PartialEq)]
struct Flaps {
    /// Penalty as of `at`.
    penalty: f64,
    at: Timestamp,
    suppressed: bool,
    /// When the current outage started, while the member is not alive.
    down_since: Option<Timestamp>,
    /// The longest recent outage, in seconds as of `at`: decays with the same half-life as
    /// the penalty, so a quick re-suspicion right after a long outage does not erase it.
    outage: f64,
    /// The longest recent healthy up phase, in seconds as of `at` (same decay): from coming
    /// back to going down again while treated as alive, or a held member's longest run of
    /// answered checks. `None` until one has been seen.
    up: Option<f64>,
    /// While the member is up and treated as alive: since when.
    up_since: Option<Timestamp>,
    /// The longest up phase since the last real outage, in seconds: it joins `up` only when
    /// the outage that follows it is real: it lasts `hold_min` or more, or the member was
    /// failed (it came back by rejoining). A suspicion refuted at once (a stale one, a second
    /// after a flapper came back) does not end an up phase; a failure does, however soon the
    /// member rejoins, and so does a run of refuted suspicions while held ([`BLIP_RUN`]).
    pending: Option<f64>,
    /// Suspicions refuted at once (outages that were not real, see `pending`) that ended a
    /// hold, in a row (see [`BLIP_RUN`]).
    blips: u32,
    /// Whether the member was held when its current outage began.
    down_from_hold: bool,
    /// While held: the hold.
    held: Option<Hold>,
    /// Checks missed while held since the member was last released (raises the answers
    /// required in a row).
    misses: u32,
}

/// A hold in force.
#[derive(Clone, Copy, Debug, PartialEq)]
struct Hold {
    /// The hold's time part ends here.
    until: Timestamp,
    /// How the member came back.
    how: Back,
    /// Checks answered in a row.
    streak: u32,
    /// When the first of those was answered.
    streak_from: Option<Timestamp>,
}

/// Every member's flap history, and the holds in force.
#[derive(Clone, Debug)]
pub struct Damping {
    config: DampingConfig,
    flaps: BTreeMap<NodeId, Flaps>,
    holds: DeadlineIndex<NodeId>,
    /// When [`Damping::sweep`] next drops forgotten records.
    next_sweep: Option<Timestamp>,
    /// The last time this node was seen in poor health (see [`Damping::self_health`]).
    sick_at: Option<Timestamp>,
}

/// How long a suppressed member that came back must stay alive: twice the shorter of its
/// longest recent outage and its longest recent up phase (twice the outage until an up
/// phase has been seen to end in a real outage), within `hold_min..=hold_max`.
///
/// A flapper must stay up longer than it was away: a NIC dead for 20 s at a time is held
/// 40 s, through its next up phase. But a member that was away for a minute and then stayed
/// up for only a second has no long up phase to beat: its outage says how long it took to
/// get back through packet loss (a gray member, failed, slow to rejoin, failed again), not
/// how long it stays away when it flaps. Such a member is held `hold_min` (and its run of
/// answers, which it cannot give while the loss lasts), and so comes back within seconds of
/// the loss ending rather than minutes. Either way the hold is at least twice an up phase
/// the member has shown, so a flapper whose up phases are alike is held through the next.
fn time_part(c: &DampingConfig, f: &Flaps, now: Timestamp) -> Duration {
    let secs = |x: f64| Duration::try_from_secs_f64(x).unwrap_or(c.hold_max);
    let outage = secs(f.outage);
    let bar = match f.up {
        Some(up) => outage.min(secs(decayed(up, f.at, now, c.half_life))),
        None => outage,
    };
    bar.saturating_mul(c.hold_mult)
        .max(c.hold_min)
        .min(c.hold_max)
}

/// `penalty` decayed from `from` to `now` with `half_life`.
fn decayed(penalty: f64, from: Timestamp, now: Timestamp, half_life: Duration) -> f64 {
    let dt = now.saturating_since(from).as_secs_f64();
    let hl = half_life.as_secs_f64().max(1e-6);
    penalty * (-dt / hl).exp2()
}

impl Damping {
    /// No history.
    pub fn new(config: DampingConfig) -> Self {
        Damping {
            config,
            flaps: BTreeMap::new(),
            holds: DeadlineIndex::default(),
            next_sweep: None,
            sick_at: None,
        }
    }

    /// Tells damping whether this node is itself sick at `now` (its Lifeguard score at
    /// least half the highest, the threshold at which it also stops failing members on its
    /// own word). The node says so at every membership event and heartbeat round.
    ///
    /// Rule: **a sick node does not learn how long a member stays up or away.** Its own
    /// losses decide what it sees: a node dropping most of its packets is slow to suspect
    /// anyone (Lifeguard stretches its timeouts, as it should) and slow to hear anyone come
    /// back, so the up phases and outages it measures are its own, not the member's. Counted
    /// anyway they made holds far too long: a gray node watching another gray member saw it
    /// "up" for 14.5 s while both lost 80 % of their packets, and when the member came back
    /// held it twice that, until 19.5 s after the loss had ended (`shoal-sim gray --nodes
    /// 40 --gray-pct 7.5 --duration 120 --seed 6`; four seeds of twelve missed the 15 s
    /// target this way). So an up phase during which this node was seen sick counts as
    /// none, and an outage it was seen sick through is not learned: the member's hold falls
    /// back to `hold_min`. A lower bar (any score above 0) was tried: a healthy node's score
    /// moves with the odd relay that did not answer, it stopped learning real flappers'
    /// outages, and flappers flapped 10 times instead of 3. Flaps still count (a suspicion is
    /// the cluster's verdict, not only this node's), and a held member must still answer its
    /// checks in a row, which a member still losing packets does not manage.
    pub fn self_health(&mut self, now: Timestamp, sick: bool) {
        if sick {
            self.sick_at = Some(now);
        }
    }

    /// `id` went from alive to not alive at `now`: one more flap.
    pub fn went_down(&mut self, id: NodeId, now: Timestamp) {
        if !self.config.enabled {
            return;
        }
        let c = &self.config;
        let f = self.flaps.entry(id).or_insert(Flaps {
            penalty: 0.0,
            at: now,
            suppressed: false,
            down_since: None,
            outage: 0.0,
            up: None,
            up_since: None,
            pending: None,
            blips: 0,
            down_from_hold: false,
            held: None,
            misses: 0,
        });
        let held = f.held.take();
        if held.is_some() {
            self.holds.remove(&id);
        }
        if f.down_since.is_some() {
            return;
        }
        f.down_from_hold = held.is_some();
        // The up phase that ends here: since it was treated as alive, or a held member's
        // current run of answers. A node that was sick meanwhile learns an up phase of
        // nothing (see `self_health`).
        if let Some(since) = f.up_since.take().or(held.and_then(|h| h.streak_from)) {
            let phase = if self.sick_at.is_some_and(|t| t >= since) {
                0.0
            } else {
                now.saturating_since(since).as_secs_f64()
            };
            f.pending = Some(f.pending.map_or(phase, |p| p.max(phase)));
        }
        let before = decayed(f.penalty, f.at, now, c.half_life);
        if before < c.reuse {
            // Long enough without flapping: the suppression is lifted.
            f.suppressed = false;
        }
        f.penalty = (before + 1.0).min(c.ceiling);
        f.outage = decayed(f.outage, f.at, now, c.half_life);
        f.up = f.up.map(|u| decayed(u, f.at, now, c.half_life));
        f.at = now;
        f.suppressed |= f.penalty >= c.suppress;
        f.down_since = Some(now);
    }

    /// `id` is alive again at `now` (`how`). Returns when its hold ends if it is held down.
    pub fn came_back(&mut self, id: NodeId, now: Timestamp, how: Back) -> Option<Timestamp> {
        let c = &self.config;
        let f = self.flaps.get_mut(&id)?;
        // The penalty and the outage memory were as of the outage start (`at`); neither
        // decays while the member is down, so they are as of now from here on.
        if let Some(since) = f.down_since.take() {
            let away = now.saturating_since(since);
            // An outage this node was sick through is not learned (see `self_health`).
            if self.sick_at.is_none_or(|t| t < since) {
                f.outage = f.outage.max(away.as_secs_f64());
            }
            f.at = now;
            // A real outage (see `pending`) ends the up phase before it; so does a run of
            // refuted suspicions while held, with no up phase (0 s) if none was seen (see
            // `BLIP_RUN`). Anything else is a blip, counted only while the member was held.
            let real = away >= c.hold_min || how == Back::Rejoined;
            f.blips = if real || !f.down_from_hold {
                0
            } else {
                f.blips + 1
            };
            let run = f.blips >= BLIP_RUN;
            if real || run {
                f.blips = 0;
                if let Some(p) = f.pending.take().or(run.then_some(0.0)) {
                    f.up = Some(f.up.map_or(p, |u| u.max(p)));
                }
            }
        }
        if let Some(h) = f.held {
            return Some(h.until);
        }
        if !f.suppressed {
            if decayed(f.penalty, f.at, now, c.half_life) < c.reuse {
                // History forgotten: drop the record altogether.
                self.flaps.remove(&id);
            } else {
                f.up_since = Some(now);
            }
            return None;
        }
        let until = now + time_part(c, f, now);
        f.held = Some(Hold {
            until,
            how,
            streak: 0,
            streak_from: None,
        });
        self.holds.set(id, until);
        Some(until)
    }

    /// Drops the records of members that are up, not held, and whose penalty decayed below
    /// `reuse` (their history no longer matters: the next outage would lift any suppression).
    /// Runs at most once per quarter half-life, so calling it every heartbeat costs nothing.
    /// Without it every member that ever went down once would keep a record: the penalty
    /// does not decay while a member is down, so a record is no longer dropped when the
    /// member comes back.
    pub fn sweep(&mut self, now: Timestamp) {
        if self.next_sweep.is_some_and(|t| now < t) {
            return;
        }
        let c = &self.config;
        self.next_sweep = Some(now + c.half_life / 4);
        self.flaps.retain(|_, f| {
            f.held.is_some()
                || f.down_since.is_some()
                || decayed(f.penalty, f.at, now, c.half_life) >= c.reuse
        });
    }

    /// Held members (the ones this node checks directly, see [`Damping::answered`]).
    pub fn held(&self) -> impl Iterator<Item = NodeId> + '_ {
        self.flaps
            .iter()
            .filter(|(_, f)| f.held.is_some())
            .map(|(id, _)| *id)
    }

    /// Answers in a row a held member needs after missing `misses` checks.
    fn required(&self, misses: u32) -> u32 {
        let c = &self.config;
        c.release_answers
            .saturating_add(misses)
            .min(c.release_answers_max)
    }

    /// Held member `id` answered a direct check at `now`. When that completes both parts of
    /// its hold, its release falls due at once ([`Damping::released`] reports it).
    pub fn answered(&mut self, id: NodeId, now: Timestamp) {
        let Some(f) = self.flaps.get_mut(&id) else {
            return;
        };
        let misses = f.misses;
        let Some(h) = f.held.as_mut() else {
            return;
        };
        h.streak = h.streak.saturating_add(1);
        h.streak_from.get_or_insert(now);
        let (until, streak) = (h.until, h.streak);
        if now >= until && streak >= self.required(misses) {
            self.holds.set(id, now);
        }
    }

    /// Held member `id` missed a direct check at `now`: its run of answers (an up phase,
    /// see [`time_part`]) ends, and it needs one more answer in a row from now on.
    pub fn missed(&mut self, id: NodeId, now: Timestamp) {
        let Some(f) = self.flaps.get_mut(&id) else {
            return;
        };
        let Some(h) = f.held.as_mut() else {
            return;
        };
        if let Some(from) = h.streak_from.take() {
            let run = now.saturating_since(from).as_secs_f64();
            f.pending = Some(f.pending.map_or(run, |p| p.max(run)));
        }
        h.streak = 0;
        f.misses = f.misses.saturating_add(1);
    }

    /// Whether `id` is held down (alive in the table, not yet treated as alive).
    pub fn is_held(&self, id: &NodeId) -> bool {
        self.flaps.get(id).is_some_and(|f| f.held.is_some())
    }

    /// The member's penalty at `now` (0 without history; as it went down while it is down).
    #[cfg(test)]
    pub fn penalty(&self, id: &NodeId, now: Timestamp) -> f64 {
        self.flaps.get(id).map_or(0.0, |f| match f.down_since {
            Some(_) => f.penalty,
            None => decayed(f.penalty, f.at, now, self.config.half_life),
        })
    }

    /// When the next hold ends.
    pub fn next_deadline(&self) -> Option<Timestamp> {
        self.holds.next()
    }

    /// Holds that ended at or before `now`, with how each member had come back; each is
    /// released (treated as alive from now on) and no longer suppressed. A hold whose time
    /// is up but whose member has not answered enough checks in a row stays in force, with
    /// no deadline: [`Damping::answered`] sets one when the answers are in.
    pub fn released(&mut self, now: Timestamp) -> Vec<(NodeId, Back)> {
        let mut out = Vec::new();
        for id in self.holds.pop_expired(now) {
            let Some(f) = self.flaps.get(&id) else {
                continue;
            };
            let Some(h) = f.held else {
                continue;
            };
            if h.streak < self.required(f.misses) {
                continue;
            }
            if let Some(f) = self.flaps.get_mut(&id) {
                f.held = None;
                f.up_since = Some(h.streak_from.unwrap_or(now));
                f.suppressed = false;
                f.misses = 0;
                out.push((id, h.how));
            }
        }
        out
    }

    /// Forgets `id` (reaped, or left on purpose).
    pub fn forget(&mut self, id: &NodeId) {
        self.flaps.remove(id);
        self.holds.remove(id);
    }

    /// Whether no member has a flap history.
    #[cfg(test)]
    pub fn is_empty(&self) -> bool {
        self.flaps.is_empty()
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use proptest::prelude::*;

    fn t(ms: u64) -> Timestamp {
        Timestamp::from_micros(ms * 1000)
    }

    const A: NodeId = NodeId([1; 16]);

    fn answer(d: &mut Damping, times: u32, at: Timestamp) {
        for _ in 0..times {
            d.answered(A, at);
        }
    }

    /// Held at `t(300)` for 8 s (two short outages).
    fn held_after_two_flaps() -> Damping {
        let mut d = Damping::new(DampingConfig::default());
        d.went_down(A, t(0));
        d.came_back(A, t(100), Back::Recovered);
        d.went_down(A, t(200));
        assert_eq!(d.came_back(A, t(300), Back::Recovered), Some(t(8_300)));
        d
    }

    /// Two 20 s outages around a 20 s up phase; `sick_at` are the times this node reports
    /// itself sick. Returns when the member's hold ends.
    fn hold_after_slow_flaps(sick_at: &[u64]) -> Timestamp {
        let mut d = Damping::new(DampingConfig::default());
        let mut sick = sick_at.iter().copied().peekable();
        let mut step = |d: &mut Damping, ms: u64| {
            while let Some(s) = sick.next_if(|&s| s <= ms) {
                d.self_health(t(s), true);
            }
        };
        step(&mut d, 0);
        d.went_down(A, t(0));
        step(&mut d, 20_000);
        assert_eq!(
            d.came_back(A, t(20_000), Back::Recovered),
            None,
            "not suppressed"
        );
        step(&mut d, 40_000);
        d.went_down(A, t(40_000));
        step(&mut d, 60_000);
        d.came_back(A, t(60_000), Back::Recovered)
            .expect("suppressed after two flaps")
    }

    /// A sick node (its own Lifeguard score high) learns no member's up phase or outage that
    /// it was sick through: what it saw was its own loss. Held by a healthy node for twice
    /// the 20 s it was up and away; by one sick through both, only `hold_min`; by one that
    /// was sick before and well since, twice again.
    #[test]
    fn a_sick_node_learns_no_up_phase_or_outage_it_was_sick_through() {
        assert_eq!(hold_after_slow_flaps(&[]), t(100_000));
        assert_eq!(hold_after_slow_flaps(&[30_000, 50_000]), t(68_000));
        assert_eq!(
            hold_after_slow_flaps(&[30_000]),
            t(68_000),
            "an up phase of nothing is the bar, whatever the outage"
        );
        assert_eq!(
            hold_after_slow_flaps(&[10_000]),
            t(100_000),
            "the first outage is not learned, the up phase and second outage are"
        );
    }

    /// A member away 20 s, back for 1.2 s, then away 3.8 s. Refuted at once, that last
    /// outage is a blip (a stale suspicion) and the 1.2 s are not an up phase: held twice
    /// the 20 s. Failed and rejoined, it was a real outage however short, so the member has
    /// shown it stays up 1.2 s: held `hold_min` (a gray member rejoining during the loss was
    /// held 2 min after it, `gray --nodes 40 --gray-pct 7.5 --duration 120 --seed 52`).
    #[test]
    fn an_up_phase_ended_by_a_failure_counts_however_short_the_outage() {
        let hold = |how| {
            let mut d = Damping::new(DampingConfig::default());
            d.went_down(A, t(0));
            assert_eq!(d.came_back(A, t(20_000), how), None);
            d.went_down(A, t(21_200));
            d.came_back(A, t(25_000), how).expect("suppressed")
        };
        // Twice the 20 s outage, decayed over the 1.2 s since (half-life 60 s).
        assert!(
            hold(Back::Recovered) > t(64_000),
            "{:?}",
            hold(Back::Recovered)
        );
        assert_eq!(hold(Back::Rejoined), t(33_000));
    }

    #[test]
    fn time_alone_does_not_release_a_member_that_has_not_answered() {
        let mut d = held_after_two_flaps();
        answer(&mut d, 3, t(1_000));
        assert!(d.released(t(8_300)).is_empty(), "3 answers of 4");
        assert!(d.is_held(&A));
        assert_eq!(d.next_deadline(), None, "nothing to wait for but answers");
        // The fourth answer, after the time part: the release falls due at once.
        d.answered(A, t(9_000));
        assert_eq!(d.next_deadline(), Some(t(9_000)));
        assert_eq!(d.released(t(9_000)), vec![(A, Back::Recovered)]);
        assert!(!d.is_held(&A));
    }

    #[test]
    fn a_miss_restarts_the_run_and_raises_the_bar() {
        let mut d = held_after_two_flaps();
        answer(&mut d, 3, t(1_000));
        d.missed(A, t(1_400));
        d.missed(A, t(1_800));
        // Two misses: 6 in a row now, counted from the last miss.
        answer(&mut d, 5, t(2_000));
        assert!(d.released(t(8_300)).is_empty());
        d.answered(A, t(9_000));
        assert_eq!(d.released(t(9_000)), vec![(A, Back::Recovered)]);
    }

    #[test]
    fn the_bar_is_capped_and_misses_are_remembered_across_holds() {
        let mut d = held_after_two_flaps();
        for k in 0..10 {
            d.missed(A, t(400 + 40 * k));
        }
        // Down and back again: a new hold, but the misses still count.
        d.went_down(A, t(9_000));
        let until = d.came_back(A, t(9_100), Back::Recovered).unwrap();
        answer(&mut d, 11, t(9_200));
        assert!(d.released(until).is_empty());
        d.answered(A, until);
        assert_eq!(d.released(until), vec![(A, Back::Recovered)]);
        // Released: the next hold starts from the base requirement again.
        d.went_down(A, t(30_000));
        let until = d.came_back(A, t(30_100), Back::Recovered).unwrap();
        answer(&mut d, 4, t(30_200));
        assert_eq!(d.released(until), vec![(A, Back::Recovered)]);
    }

    /// A member losing 80 % of its pings one way: over ten minutes of checks every 400 ms
    /// (1,500 of them), it is never released, while a member answering every check is
    /// released as soon as its time is up.
    #[test]
    fn a_lossy_member_stays_held_and_a_healthy_one_is_released() {
        let mut lossy = held_after_two_flaps();
        let mut x: u64 = 0x9e37_79b9_7f4a_7c15;
        for k in 0..1_500u64 {
            x ^= x << 13;
            x ^= x >> 7;
            x ^= x << 17;
            let now = t(300 + 400 * k);
            if x % 5 == 0 {
                lossy.answered(A, now);
            } else {
                lossy.missed(A, now);
            }
            assert!(lossy.released(now).is_empty(), "released at check {k}");
        }
        let mut healthy = held_after_two_flaps();
        let mut out = Vec::new();
        for k in 0..40u64 {
            let now = t(300 + 400 * k);
            healthy.answered(A, now);
            out.extend(healthy.released(now));
            if !out.is_empty() {
                assert!(now >= t(8_300));
                assert!(now < t(8_300 + 400));
                break;
            }
        }
        assert_eq!(out, vec![(A, Back::Recovered)]);
    }

    #[test]
    fn one_outage_never_holds() {
        let mut d = Damping::new(DampingConfig::default());
        d.went_down(A, t(0));
        assert_eq!(d.came_back(A, t(30_000), Back::Rejoined), None);
        assert!(!d.is_held(&A));
    }

    #[test]
    fn second_outage_within_a_half_life_holds_for_twice_the_outage() {
        // A flapper: down 18 s, up 20 s, down 18 s again.
        let mut d = Damping::new(DampingConfig::default());
        d.went_down(A, t(0));
        assert_eq!(d.came_back(A, t(18_000), Back::Recovered), None);
        d.went_down(A, t(38_000));
        // Outage of 18 s (shorter than its 20 s up phase): held 36 s.
        assert_eq!(d.came_back(A, t(56_000), Back::Recovered), Some(t(92_000)));
        assert!(d.is_held(&A));
        answer(&mut d, 4, t(60_000));
        assert!(d.released(t(91_999)).is_empty());
        assert_eq!(d.released(t(92_000)), vec![(A, Back::Recovered)]);
        assert!(!d.is_held(&A));
    }

    /// A gray member (seen in `shoal-sim gray` with 3 gray members of 40, and at N = 1000):
    /// failed for a minute, back for a second, failed again for the rest of the loss. It
    /// never stayed up, so when the loss ends it is held `hold_min` (and its answers), not
    /// twice its outage: before, it was held for 2 minutes after it had recovered.
    #[test]
    fn a_member_that_never_stayed_up_is_held_hold_min() {
        let mut d = Damping::new(DampingConfig::default());
        d.went_down(A, t(2_000));
        assert_eq!(d.came_back(A, t(62_000), Back::Rejoined), None);
        d.went_down(A, t(63_000));
        assert_eq!(d.came_back(A, t(120_000), Back::Rejoined), Some(t(128_000)));
        // Checks answered now and then during a hold do not make a long up phase.
        d.answered(A, t(120_400));
        d.missed(A, t(120_800));
        d.answered(A, t(121_200));
        d.missed(A, t(121_600));
        d.went_down(A, t(122_000));
        assert_eq!(d.came_back(A, t(180_000), Back::Rejoined), Some(t(188_000)));
    }

    /// A flapper (`shoal-sim flipflop`, 100 members, seed 1): dead 18.6 s, back, suspected
    /// 0.8 s later on a stale probe and refuting at once. That blip does not end its up
    /// phase, so it is held twice its outage, through its 20 s up phase; counting the 0.8 s
    /// as an up phase held it 8 s and it flapped 5 times in 300 s.
    #[test]
    fn a_suspicion_refuted_at_once_does_not_end_an_up_phase() {
        let mut d = Damping::new(DampingConfig::default());
        d.went_down(A, t(2_000));
        assert_eq!(d.came_back(A, t(20_600), Back::Rejoined), None);
        d.went_down(A, t(21_400));
        let until = d.came_back(A, t(21_420), Back::Recovered).unwrap();
        assert!(until > t(21_420 + 36_000), "{until:?}");
    }

    /// A gray member (`shoal-sim gray --nodes 40 --gray-pct 7.5 --duration 120 --seed 100`):
    /// failed for 108 s, rejoined, suspected 1.95 s later and refuting at once, then
    /// suspected and refuting again and again while held, until the loss ended. One refuted
    /// suspicion is a blip and leaves the hold at twice the outage (capped at 2 minutes); a
    /// run of them while held ends the up phase like a real outage, so the hold falls to
    /// twice that 1.95 s, i.e. `hold_min`.
    #[test]
    fn a_run_of_refuted_suspicions_while_held_ends_the_up_phase() {
        let mut d = Damping::new(DampingConfig::default());
        d.went_down(A, t(0));
        assert_eq!(d.came_back(A, t(108_000), Back::Rejoined), None);
        d.went_down(A, t(109_950));
        // A lone blip: no up phase on record, held twice the 108 s outage, capped.
        assert_eq!(
            d.came_back(A, t(110_000), Back::Recovered),
            Some(t(230_000))
        );
        let mut until = None;
        for k in 1..=BLIP_RUN as u64 {
            d.went_down(A, t(110_000 + 300 * k));
            until = d.came_back(A, t(110_050 + 300 * k), Back::Recovered);
            if k < BLIP_RUN as u64 {
                assert_eq!(until, Some(t(110_050 + 300 * k + 120_000)), "blip {k}");
            }
        }
        let end = t(110_050 + 300 * BLIP_RUN as u64);
        assert_eq!(until, Some(end + Duration::from_secs(8)));
        // Its answers still decide: released only after a run of them.
        assert!(d.released(end + Duration::from_secs(8)).is_empty());
        answer(&mut d, 12, end + Duration::from_secs(9));
        assert_eq!(
            d.released(end + Duration::from_secs(9)),
            vec![(A, Back::Recovered)]
        );
    }

    /// A held flapper answering every check through its 20 s up phase has shown that it
    /// stays up 20 s: its next hold is longer than that, even once it has missed a check.
    #[test]
    fn a_run_of_answers_while_held_counts_as_an_up_phase() {
        let mut d = held_after_two_flaps();
        d.missed(A, t(300));
        for k in 0..50u64 {
            d.answered(A, t(700 + 400 * k));
        }
        // Answered from 0.7 s to 20.3 s, then down for 18 s.
        d.went_down(A, t(20_300));
        let until = d.came_back(A, t(38_300), Back::Recovered).unwrap();
        assert_eq!(until, t(38_300 + 36_000));
    }

    #[test]
    fn short_outages_hold_at_least_hold_min() {
        // Two 100 ms outages: held for `hold_min` (8 s); the helper asserts the deadline.
        let d = held_after_two_flaps();
        assert!(d.is_held(&A));
    }

    #[test]
    fn going_down_again_restarts_the_hold() {
        let mut d = Damping::new(DampingConfig::default());
        d.went_down(A, t(0));
        d.came_back(A, t(100), Back::Recovered);
        d.went_down(A, t(200));
        d.came_back(A, t(300), Back::Recovered);
        d.went_down(A, t(5_000));
        assert!(!d.is_held(&A));
        assert!(
            d.released(t(9_000)).is_empty(),
            "the old hold was cancelled"
        );
        assert_eq!(d.came_back(A, t(6_000), Back::Rejoined), Some(t(14_000)));
    }

    #[test]
    fn the_penalty_does_not_decay_while_the_member_is_down() {
        // Failed for 87 s, back, and down again 1.5 s later: a member losing most of its
        // packets (seen in `shoal-sim gray`, 3 gray members of 40). Counting the 87 s of
        // outage as good behaviour let the first flap decay to 0.37, so the second did not
        // suppress and the member flapped twice more.
        let mut d = Damping::new(DampingConfig::default());
        d.went_down(A, t(2_000));
        assert_eq!(d.came_back(A, t(89_000), Back::Rejoined), None);
        d.went_down(A, t(90_500));
        assert!(d.came_back(A, t(90_600), Back::Recovered).is_some());
        assert!(d.is_held(&A));
    }

    #[test]
    fn sweep_drops_only_forgotten_records() {
        let b = NodeId([2; 16]);
        let mut d = Damping::new(DampingConfig::default());
        d.went_down(A, t(0));
        d.came_back(A, t(1_000), Back::Rejoined);
        d.went_down(b, t(0));
        d.sweep(t(1_000));
        assert!(!d.is_empty(), "both are recent");
        // Two half-lives after A came back its penalty is 0.25 (< reuse): dropped. B is
        // still down, so it stays however long ago that began.
        d.sweep(t(121_001));
        assert_eq!(d.penalty(&A, t(121_001)), 0.0);
        assert_eq!(d.penalty(&b, t(121_001)), 1.0);
        assert!(!d.is_empty());
    }

    #[test]
    fn outages_far_apart_are_forgotten() {
        let mut d = Damping::new(DampingConfig::default());
        d.went_down(A, t(0));
        d.came_back(A, t(1_000), Back::Recovered);
        // Four half-lives later the first flap weighs 1/16: the second alone does not
        // suppress.
        d.went_down(A, t(241_000));
        assert_eq!(d.came_back(A, t(242_000), Back::Recovered), None);
    }

    #[test]
    fn disabled_never_holds() {
        let mut d = Damping::new(DampingConfig {
            enabled: false,
            ..DampingConfig::default()
        });
        for i in 0..10 {
            d.went_down(A, t(i * 100));
            assert_eq!(d.came_back(A, t(i * 100 + 50), Back::Recovered), None);
        }
        assert!(d.is_empty());
    }

    #[test]
    fn forget_drops_history_and_hold() {
        let mut d = Damping::new(DampingConfig::default());
        d.went_down(A, t(0));
        d.came_back(A, t(1), Back::Recovered);
        d.went_down(A, t(2));
        d.came_back(A, t(3), Back::Recovered);
        d.forget(&A);
        assert!(!d.is_held(&A));
        assert_eq!(d.next_deadline(), None);
        assert!(d.is_empty());
    }

    #[test]
    fn default_is_valid() {
        assert!(DampingConfig::default().is_valid());
        assert!(!DampingConfig {
            reuse: 2.0,
            ..DampingConfig::default()
        }
        .is_valid());
    }

    /// A member suppressed at its second outage, then down for minutes (re-suspected at
    /// ever higher incarnations meanwhile), is still held when it comes back.
    #[test]
    fn a_long_outage_after_suppression_still_holds() {
        let mut d = Damping::new(DampingConfig::default());
        d.went_down(A, t(2_162));
        d.went_down(A, t(2_739));
        assert_eq!(d.came_back(A, t(20_841), Back::Rejoined), None);
        d.went_down(A, t(41_522));
        d.went_down(A, t(81_523));
        assert!(d.came_back(A, t(232_515), Back::Recovered).is_some());
    }

    /// A quick re-suspicion right after a long outage does not shrink the next hold.
    #[test]
    fn the_longest_recent_outage_sets_the_hold() {
        let mut d = Damping::new(DampingConfig::default());
        d.went_down(A, t(0));
        d.came_back(A, t(100), Back::Recovered);
        d.went_down(A, t(30_200));
        d.went_down(A, t(30_200));
        assert_eq!(d.came_back(A, t(50_200), Back::Rejoined), Some(t(90_200)));
        d.went_down(A, t(54_000));
        let until = d.came_back(A, t(54_010), Back::Recovered).unwrap();
        assert!(until.saturating_since(t(54_010)) > Duration::from_secs(30));
    }

    proptest! {
        /// Whatever the sequence of outages: the penalty stays within `0..=ceiling`, a hold
        /// never exceeds `hold_max` nor undercuts `hold_min`, a held member always has a
        /// deadline, and a member that came back at most once is never held.
        #[test]
        fn holds_are_bounded(gaps in proptest::collection::vec((1u64..60_000, 1u64..60_000), 1..40)) {
            let c = DampingConfig::default();
            let mut d = Damping::new(c.clone());
            let mut now = 0u64;
            for (k, (down_for, up_for)) in gaps.iter().enumerate() {
                d.went_down(A, t(now));
                now += down_for;
                let back = t(now);
                let held = d.came_back(A, back, Back::Recovered);
                let p = d.penalty(&A, back);
                prop_assert!((0.0..=c.ceiling).contains(&p));
                if k == 0 {
                    prop_assert_eq!(held, None);
                }
                if let Some(until) = held {
                    let hold = until.saturating_since(back);
                    prop_assert!(hold >= c.hold_min && hold <= c.hold_max);
                    prop_assert!(d.is_held(&A));
                    prop_assert!(d.next_deadline().is_some());
                }
                for _ in 0..c.release_answers_max {
                    d.answered(A, back);
                }
                now += up_for;
                let released = d.released(t(now));
                if let Some(until) = held {
                    prop_assert_eq!(released.len(), usize::from(until <= t(now)));
                }
            }
        }
    }
}
