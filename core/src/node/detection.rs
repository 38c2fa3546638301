//! Failure detection: a sub-machine that reads the member table and returns actions.
//!
//! [`Detection`] owns every piece of failure-detection state (outstanding pings, observer ring,
//! phi detectors, suspicions, local health, the probe order). It never
//! writes the member table, never sends and never touches another sub-machine: each input gets
//! a read-only [`View`] of the node and pushes [`Action`]s, which the node carries out in order.
//!
//! - **Observers** (`observers.rs`): this node heartbeats the members whose observer it is (its
//!   nearest predecessors on the ring of live members); each ack feeds that member's phi
//!   detector (`detector/phi.rs`), and a deadline is armed for the instant phi crosses the
//!   threshold. It also listens to its nearest successors: their heartbeat pings feed their
//!   detectors here, so watching runs both ways on the ring for the same datagrams.
//! - **Probes** (`probe.rs`): phi crossing, or a failed periodic round-robin SWIM probe, leads
//!   to a direct ping plus ping-reqs through `indirect_probes` other members. Only when none of
//!   them answers in time does this node *suspect* the member ([`Action::Suspect`]).
//! - **Suspicion** (`suspicion.rs`): every suspect in the table has a Lifeguard timer, but only
//!   a node that suspected the member itself (a *direct suspecter*) may declare it failed when
//!   the timer runs out ([`Action::Fail`]); independent confirmations from other direct
//!   suspecters shorten it. A suspecter tells the subject (so it refutes at once) and the
//!   subject's other observers (so they confirm or not).
//! - **Local health** (`awareness.rs`): failed probes, missing nacks, refutations and late
//!   timers raise the score; successful probes lower it; probe and suspicion timeouts are
//!   scaled by it, so a slow node accuses nobody in haste.
//! - **Partitions** (`partition_watch.rs`): while a mass loss or lost quorum is reported,
//!   failures are deferred ([`View::defer_failures`]); a fresh mass loss asks for one
//!   [`Detection::sweep`].

use super::random::{rand_below, random_peers};
use crate::awareness::{Awareness, HealthEvent};
use crate::config::Config;
use crate::damping::{Back, Damping};
use crate::detector::PhiDetector;
use crate::membership::{Applied, MemberState, MemberTable, SlotMove, Update};
use crate::observers::{self, Neighbours};
use crate::probe::{Pending, Prober};
use crate::suspicion::{suspicion_bounds, Suspicion};
use crate::timer::{earliest, DeadlineIndex};
use crate::wire::Message;
use crate::{Event, NodeId, Timestamp};
use core::net::SocketAddr;
use core::time::Duration;
use rand_core::RngCore;
use std::collections::BTreeMap;

/// Most outstanding pings (heartbeats, probes, relays); relays beyond this are refused.
const MAX_PENDING: usize = 1024;

/// What detection reads of the node for one input.
#[derive(Clone, Copy)]
pub(super) struct View<'a> {
    pub(super) table: &'a MemberTable,
    pub(super) config: &'a Config,
    pub(super) me: NodeId,
    pub(super) now: Timestamp,
    /// Whether the node is running (not leaving or left): only then does it accuse anyone.
    pub(super) running: bool,
    /// Whether a partition defers failures (a mass loss or lost quorum, see
    /// `partition_watch`): suspicions then stay suspicions.
    pub(super) defer_failures: bool,
}

/// What detection asks the node to do, in order.
#[derive(Debug)]
pub(super) enum Action {
    /// Send `message` to member `to` at its table address, `first` piggybacked first.
    ToMember {
        to: NodeId,
        message: Message,
        first: Option<Update>,
    },
    /// Send `message` to an address (a ping-req's requester, which may be unknown to us).
    ToAddr {
        dst: SocketAddr,
        to: NodeId,
        message: Message,
    },
    /// This node's probes of the member went unanswered: suspect it, then report back with
    /// [`Detection::suspected`].
    Suspect(NodeId),
    /// This node's own suspicion ran out: declare the member failed.
    Fail { id: NodeId, incarnation: u64 },
}

/// Counters detection keeps, merged into the node's stats.
#[derive(Clone, Copy, Debug, Default)]
pub(super) struct Counters {
    pub(super) probes: u64,
    pub(super) probe_failures: u64,
    pub(super) stale_acks: u64,
}

/// A probe-order entry whose member was removed (no table has this many slots).
const GONE: u32 = u32::MAX;

/// The live members (this node included), in table order: the observer ring's members.
fn live_ids<'a>(v: &View<'a>) -> impl Iterator<Item = NodeId> + 'a {
    v.table
        .iter_any_order()
        .filter(|m| m.state.is_live())
        .map(|m| m.info.id)
}

/// A suspicion this node tracks, and whether this node raised it itself.
#[derive(Debug)]
struct Tracked {
    suspicion: Suspicion,
    /// Whether this node suspected the member itself (only then may it declare failure).
    mine: bool,
    /// A sick suspecter's own re-check of a confirmed suspicion (see `held_back_until`).
    verify: Verify,
}

/// Where a sick suspecter is in re-checking a confirmed suspicion before it fails anyone.
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
enum Verify {
    /// No re-check since the last sign of life (or none needed yet).
    Idle,
    /// A re-check is due: the next probe of the subject this node starts is it (one may be
    /// in flight already, from before, which does not count).
    Wanted,
    /// A probe (direct and indirect) started after the suspicion was confirmed is in flight.
    Probing,
    /// That probe failed, and a relay that heard this node said it could not reach the
    /// subject either (a nack), or there was no relay to ask.
    Failed,
}

/// Failure-detection state of a node.
#[derive(Debug)]
pub(super) struct Detection {
    prober: Prober,
    /// Whether the live set changed since this node last chose its subjects (the observer
    /// rule is evaluated over the table itself: see `observers.rs`).
    ring_dirty: bool,
    /// This node's ring neighbours among the live members, kept exact as members come alive
    /// (see [`Neighbours`]), so a refresh reads them instead of passing over every member.
    /// Kept from the start, when the table holds only this node, so a joiner that learns
    /// thousands of members before its first heartbeat round never passes over them all
    /// (that pass was one cache miss a member, N²/2 of them in a simulated cluster forming);
    /// `None` only after a kept neighbour left the live set, until the next refresh finds
    /// them again with that pass.
    near: Option<Neighbours>,
    /// The subjects chosen at the last refresh (nearest first), which this node pings every
    /// heartbeat round: a member that comes alive farther away than all of them (and than
    /// all of `listened`) changes nothing, and needs no refresh.
    subjects: Vec<NodeId>,
    /// The successors this node listens to (nearest first): their pings are their
    /// heartbeats here (see `observers::split`).
    listened: Vec<NodeId>,
    detectors: BTreeMap<NodeId, PhiDetector>,
    phi_checks: DeadlineIndex<NodeId>,
    suspicions: BTreeMap<NodeId, Tracked>,
    suspicion_deadlines: DeadlineIndex<NodeId>,
    awareness: Awareness,
    /// Table slots of the live peers still to probe this round, shuffled: 4 bytes a member
    /// rather than a 16-byte id. Kept exact across a removal by
    /// [`slot_moved`](Self::slot_moved); [`GONE`] marks a removed member.
    probe_order: Vec<u32>,
    counters: Counters,
    damping: Damping,
}

impl Detection {
    /// `me` is this node's id: its table holds only itself yet, so its kept neighbours are
    /// none.
    pub(super) fn new(config: &Config, me: &NodeId) -> Self {
        let (pinged, heard) = observers::split(config.observers);
        Detection {
            prober: Prober::new(MAX_PENDING),
            ring_dirty: true,
            near: Some(Neighbours::new(me, pinged, heard)),
            subjects: Vec::new(),
            listened: Vec::new(),
            detectors: BTreeMap::new(),
            phi_checks: DeadlineIndex::default(),
            suspicions: BTreeMap::new(),
            suspicion_deadlines: DeadlineIndex::default(),
            awareness: Awareness::new(config.awareness_max),
            probe_order: Vec::new(),
            counters: Counters::default(),
            damping: Damping::new(config.damping.clone()),
        }
    }

    // ---- getters ---------------------------------------------------------------------------

    /// The earliest failure-detection deadline.
    pub(super) fn next_deadline(&self) -> Option<Timestamp> {
        // Runs after every input (via `poll_timeout`): compares, not `flatten().min()`.
        earliest(
            earliest(self.prober.next_deadline(), self.phi_checks.next()),
            earliest(
                self.suspicion_deadlines.next(),
                self.damping.next_deadline(),
            ),
        )
    }

    /// The phi of a watched member at `now`.
    pub(super) fn phi(&self, id: &NodeId, now: Timestamp) -> Option<f64> {
        self.detectors.get(id).map(|d| d.phi(now))
    }

    /// The local health score (0 = healthy).
    pub(super) fn health(&self) -> u32 {
        self.awareness.score()
    }

    pub(super) fn counters(&self) -> Counters {
        self.counters
    }

    fn scaled(&self, d: Duration) -> Duration {
        self.awareness.scale(d)
    }

    /// The bounds of a suspicion starting now (see [`suspicion_bounds`]).
    fn bounds(&self, v: &View) -> (Duration, Duration, u32) {
        suspicion_bounds(
            self.scaled(v.config.suspicion_min),
            v.config.suspicion_max_mult,
            v.config.observers,
            v.table.live_count(),
        )
    }

    // ---- rounds ----------------------------------------------------------------------------

    /// Rebuilds the observer ring if the live set changed, and follows the subjects it
    /// assigns this node: new subjects get a detector (seeded with an arrival now, so a member
    /// that never answers still crosses the threshold), dropped ones lose theirs.
    fn refresh_subjects(&mut self, v: &View) {
        if !self.ring_dirty {
            return;
        }
        self.ring_dirty = false;
        let (pinged, heard) = observers::split(v.config.observers);
        let near = self.near.get_or_insert_with(|| {
            let mut near = Neighbours::new(&v.me, pinged, heard);
            // `add` passes over this node itself.
            live_ids(v).for_each(|id| {
                near.add(&id);
            });
            near
        });
        // Off the ring (not live in its own view), this node watches nobody.
        let on_ring = v.table.get(&v.me).is_some_and(|m| m.state.is_live());
        let (subjects, listened) = if on_ring {
            near.lists()
        } else {
            (Vec::new(), Vec::new())
        };
        debug_assert!(
            observers::neighbours_of(&v.me, live_ids(v), pinged, heard)
                == (subjects.clone(), listened.clone()),
            "the kept neighbours are the pass's"
        );
        let watched = |id: &NodeId| subjects.contains(id) || listened.contains(id);
        let stale: Vec<NodeId> = self
            .detectors
            .keys()
            .filter(|id| !watched(id))
            .copied()
            .collect();
        for id in stale {
            self.detectors.remove(&id);
            self.phi_checks.remove(&id);
        }
        self.subjects.clone_from(&subjects);
        self.listened.clone_from(&listened);
        for id in subjects.into_iter().chain(listened) {
            if !self.detectors.contains_key(&id) {
                let mut d = PhiDetector::new(&v.config.phi);
                d.heartbeat(v.now);
                if let Some(at) = d.unavailable_at() {
                    self.phi_checks.set(id, at);
                }
                self.detectors.insert(id, d);
            }
        }
    }

    /// Heartbeat round: ping every subject (the listened successors ping this node instead),
    /// and every listened successor that is suspect or whose ping has not arrived for 1.5
    /// intervals.
    ///
    /// Rule: listening saves datagrams only while both sides agree on the ring and the
    /// member is above suspicion. A successor whose view differs (a member only one of them
    /// knows sits between them) pings someone else, and a suspect one may be deaf while its
    /// pings still arrive; either is then heartbeated like a subject, so that its detector
    /// here is fed by acks, as before watching ran both ways.
    /// `late_by` is how late the node's own timer fired.
    pub(super) fn heartbeat_round(&mut self, v: &View, late_by: Duration, out: &mut Vec<Action>) {
        if late_by > v.config.heartbeat_interval {
            // Our own timer fired very late: we were stalled (GC, swap, a paused VM). Others'
            // silence since then is our doing, not theirs.
            self.awareness.apply_delta(1);
        }
        if !v.running {
            return;
        }
        self.refresh_subjects(v);
        // Straight from the lists (no copy into a vector each round): starting a ping
        // touches only the prober.
        let deadline = v.now + v.config.heartbeat_interval * 2;
        let quiet_since = v.now - v.config.heartbeat_interval * 3 / 2;
        let quiet = |d: &PhiDetector| d.last_heartbeat().is_none_or(|t| t < quiet_since);
        let alive = |id: &NodeId| {
            v.table
                .get(id)
                .is_some_and(|m| m.state == MemberState::Alive)
        };
        let silent = self
            .listened
            .iter()
            .filter(|id| !self.subjects.contains(id))
            .filter(|id| !alive(id) || self.detectors.get(id).is_some_and(quiet));
        for &subject in self.subjects.iter().chain(silent) {
            if let Some(seq) = self.prober.start(Pending::Heartbeat { subject }, deadline) {
                out.push(ping(subject, seq));
            }
        }
        self.check_held(v, out);
    }

    /// Flap damping's evidence: ping every member held down (alive in the table) once a
    /// heartbeat interval; an answer before the next round counts, silence is a miss
    /// ([`Damping::answered`], [`Damping::missed`]).
    fn check_held(&mut self, v: &View, out: &mut Vec<Action>) {
        self.damping
            .self_health(v.now, is_sick(self.awareness.score(), v.config));
        self.damping.sweep(v.now);
        let held: Vec<NodeId> = self.damping.held().collect();
        for subject in held {
            let alive = v
                .table
                .get(&subject)
                .is_some_and(|m| m.state == MemberState::Alive);
            if !alive || self.prober.checking(&subject) {
                continue;
            }
            let deadline = v.now + v.config.heartbeat_interval;
            if let Some(seq) = self.prober.start(Pending::HoldCheck { subject }, deadline) {
                out.push(ping(subject, seq));
            }
        }
    }

    /// Periodic SWIM probe of the next member in a shuffled round-robin order.
    pub(super) fn probe_round<R: RngCore>(&mut self, v: &View, rng: &mut R, out: &mut Vec<Action>) {
        if !v.running {
            return;
        }
        // At most one full pass of candidates per tick, skipping watched and dead ones.
        for _ in 0..2 {
            while let Some(slot) = self.probe_order.pop() {
                let Some(m) = v.table.at_slot(slot) else {
                    continue; // GONE: removed since the shuffle
                };
                let (id, live) = (m.info.id, m.state.is_live());
                if live && !self.detectors.contains_key(&id) && !self.prober.probing(&id) {
                    self.start_probe(v, rng, id, false, true, out);
                    return;
                }
            }
            let mut order = v.table.live_peer_slots().to_vec();
            // Fisher-Yates with the node's RNG: deterministic, and no member is favoured.
            for i in (1..order.len()).rev() {
                let j = rand_below(rng, i + 1);
                order.swap(i, j);
            }
            self.probe_order = order;
        }
    }

    /// Starts a failure probe of `subject`: a direct ping, and (when `indirect`) ping-reqs
    /// through other members at the same time.
    fn start_probe<R: RngCore>(
        &mut self,
        v: &View,
        rng: &mut R,
        subject: NodeId,
        indirect: bool,
        periodic: bool,
        out: &mut Vec<Action>,
    ) {
        if self.prober.probing(&subject) {
            return;
        }
        let wait = self.scaled(v.config.probe_timeout);
        let pending = Pending::Probe {
            subject,
            indirect: false,
            relays: 0,
            nacks: 0,
            periodic,
        };
        let Some(seq) = self.prober.start(pending, v.now + wait) else {
            return;
        };
        self.counters.probes += 1;
        out.push(ping(subject, seq));
        if indirect {
            self.go_indirect(v, rng, seq, subject, out);
        }
        if let Some(t) = self.suspicions.get_mut(&subject) {
            if t.verify == Verify::Wanted {
                t.verify = Verify::Probing;
            }
        }
    }

    /// Asks `indirect_probes` random members to probe `subject` for probe `seq`.
    fn go_indirect<R: RngCore>(
        &mut self,
        v: &View,
        rng: &mut R,
        seq: u32,
        subject: NodeId,
        out: &mut Vec<Action>,
    ) {
        if v.table.get(&subject).is_none() {
            return;
        }
        let relays = self.relays_for(v, rng, subject);
        for r in &relays {
            out.push(Action::ToMember {
                to: *r,
                message: Message::PingReq {
                    seq,
                    target: subject,
                },
                first: None,
            });
        }
        let wait = self.scaled(v.config.probe_timeout) * 3 / 2;
        if let Some(Pending::Probe {
            indirect,
            relays: n,
            ..
        }) = self.prober.get_mut(seq)
        {
            *indirect = true;
            *n = relays.len() as u32;
        }
        self.prober.extend(seq, v.now + wait);
    }

    /// Up to `indirect_probes` random relays for a probe of `subject`, among members this
    /// node trusts to answer: Alive in its table (not suspected by anyone) and, if this node
    /// watches them, with their phi below the threshold. Lifeguard counts every relay that
    /// sends no nack against the prober's own health, which is right only of relays that can
    /// hear it: asking a member that is itself cut off (the far side of a partition, a crashed
    /// member not yet suspected) made the near side of every partition "sick", and a sick
    /// node waits longer and re-checks before it fails anyone (`held_back_until`).
    fn relays_for<R: RngCore>(&self, v: &View, rng: &mut R, subject: NodeId) -> Vec<NodeId> {
        let want = v.config.indirect_probes;
        let peers = v.table.live_peers();
        let trusted = |id: &NodeId| {
            *id != subject
                && v.table
                    .get(id)
                    .is_some_and(|m| m.state == MemberState::Alive)
                && self.detectors.get(id).is_none_or(|d| d.is_available(v.now))
        };
        if peers.len() <= want + 1 {
            return random_peers(rng, peers, want + 1)
                .into_iter()
                .filter(trusted)
                .take(want)
                .collect();
        }
        // Bounded draws: a table where most members are not trusted yields fewer relays
        // rather than a long loop.
        let mut relays = Vec::with_capacity(want);
        for _ in 0..4 * (want + 1) {
            if relays.len() == want {
                break;
            }
            let id = peers.get(rand_below(rng, peers.len()));
            if !relays.contains(&id) && trusted(&id) {
                relays.push(id);
            }
        }
        relays
    }

    // ---- messages --------------------------------------------------------------------------

    /// A ping-req: probe `target` for the requester and report back either way.
    pub(super) fn on_ping_req(
        &mut self,
        v: &View,
        from: SocketAddr,
        from_id: NodeId,
        seq: u32,
        target: NodeId,
        out: &mut Vec<Action>,
    ) {
        // Only relay to live members we know, at the address we know: a ping-req must not
        // turn this node into a reflector towards arbitrary addresses.
        let known = v.table.get(&target).is_some_and(|m| m.state.is_live());
        let relay = Pending::Relay {
            requester_addr: from,
            requester: from_id,
            requester_seq: seq,
            target,
        };
        let started = if known {
            let wait = self.scaled(v.config.probe_timeout);
            self.prober.start(relay, v.now + wait)
        } else {
            None
        };
        out.push(match started {
            Some(relay_seq) => ping(target, relay_seq),
            None => Action::ToAddr {
                dst: from,
                to: from_id,
                message: Message::IndirectAck {
                    seq,
                    target,
                    ok: false,
                },
            },
        });
    }

    /// An ack: a heartbeat arrival, a probe answered, or a relayed ping answered.
    pub(super) fn on_ack(&mut self, v: &View, from_id: NodeId, seq: u32, out: &mut Vec<Action>) {
        let Some(p) = self.prober.answer(seq, from_id) else {
            self.counters.stale_acks += 1;
            return;
        };
        match p {
            Pending::Heartbeat { subject } => self.arrival(subject, v.now),
            Pending::Probe { periodic, .. } => {
                if periodic {
                    self.awareness.record(HealthEvent::ProbeSucceeded);
                }
            }
            Pending::HoldCheck { subject } => self.damping.answered(subject, v.now),
            relay @ Pending::Relay { .. } => out.extend(relay_answer(relay, true)),
        }
        // A member answered us directly while we hold it suspect or failed: send it that news
        // so it refutes now rather than when gossip happens to reach it.
        let down = v
            .table
            .get(&from_id)
            .is_some_and(|m| m.state != MemberState::Alive);
        if down {
            self.answered_while_suspected(&from_id);
            if let Some(u) = v.table.update_for(&from_id, v.me) {
                out.push(Action::ToMember {
                    to: from_id,
                    message: Message::Gossip,
                    first: Some(u),
                });
            }
        }
    }

    /// A heartbeat of watched member `subject` arrived now: feed its detector and re-arm its
    /// phi check.
    fn arrival(&mut self, subject: NodeId, now: Timestamp) {
        if let Some(d) = self.detectors.get_mut(&subject) {
            d.heartbeat(now);
            match d.unavailable_at() {
                Some(at) => self.phi_checks.set(subject, at),
                None => self.phi_checks.remove(&subject),
            }
        }
    }

    /// `from_id` pinged this node from `from`: if it is a successor this node listens to (and
    /// does not ping), alive in the table, the ping is its heartbeat here.
    ///
    /// Rule: a ping proves the sender runs and can send, not that it can receive. So it
    /// counts only for a member this node does not heartbeat itself (an ack proves more),
    /// and only while nobody suspects it: a member deaf to its pingers keeps pinging its
    /// listeners, which must then check it with pings of their own (see
    /// [`heartbeat_round`](Self::heartbeat_round)), or they could never confirm the
    /// suspicion.
    ///
    /// The ping must come from the member's own address: an id alone is easy to put in a
    /// datagram (an ack must also echo the sequence of a ping this node sent).
    pub(super) fn on_ping(&mut self, v: &View, from: SocketAddr, from_id: NodeId) {
        let heard = self.listened.contains(&from_id)
            && !self.subjects.contains(&from_id)
            && v.table.get(&from_id).is_some_and(|m| {
                m.state == MemberState::Alive && m.info.gossip_addr().get() == from
            });
        if heard {
            self.arrival(from_id, v.now);
        }
    }

    /// A relay's answer to our ping-req.
    pub(super) fn on_indirect_ack(&mut self, seq: u32, target: NodeId, ok: bool) {
        let is_ours = matches!(
            self.prober.get_mut(seq),
            Some(Pending::Probe { subject, .. }) if *subject == target
        );
        if !is_ours {
            self.counters.stale_acks += 1;
            return;
        }
        if ok {
            let _ = self.prober.take(seq);
            self.signs_of_life(&target);
        } else if let Some(Pending::Probe { nacks, .. }) = self.prober.get_mut(seq) {
            *nacks += 1;
        }
    }

    // ---- deadlines -------------------------------------------------------------------------

    /// Outstanding pings whose deadline passed; hand each to [`Detection::ping_expired`].
    pub(super) fn expired_pings(&mut self, now: Timestamp) -> Vec<Pending> {
        self.prober
            .expired(now)
            .into_iter()
            .map(|(_, p)| p)
            .collect()
    }

    /// An outstanding ping went unanswered.
    pub(super) fn ping_expired<R: RngCore>(
        &mut self,
        v: &View,
        rng: &mut R,
        p: Pending,
        out: &mut Vec<Action>,
    ) {
        match p {
            Pending::Heartbeat { .. } => {}
            Pending::HoldCheck { subject } => self.damping.missed(subject, v.now),
            relay @ Pending::Relay { .. } => out.extend(relay_answer(relay, false)),
            Pending::Probe {
                subject,
                indirect: false,
                periodic,
                ..
            } => {
                // Direct ping unanswered: go indirect under a fresh probe number.
                let pending = Pending::Probe {
                    subject,
                    indirect: false,
                    relays: 0,
                    nacks: 0,
                    periodic,
                };
                if let Some(seq) = self.prober.start(pending, v.now) {
                    out.push(ping(subject, seq));
                    self.go_indirect(v, rng, seq, subject, out);
                }
            }
            Pending::Probe {
                subject,
                indirect: true,
                relays,
                nacks,
                periodic,
            } => {
                self.counters.probe_failures += 1;
                if periodic || relays > 0 {
                    self.awareness.record(HealthEvent::ProbeFailed {
                        expected_nacks: relays,
                        nacks,
                    });
                }
                if let Some(t) = self.suspicions.get_mut(&subject) {
                    if t.verify == Verify::Probing {
                        // The re-check failed. It counts only with a third party's word: a
                        // relay that heard us and could not reach the subject either (a
                        // nack), or no relay to ask. A sick node that heard nothing back at
                        // all learned nothing about the subject; it checks again later.
                        if nacks > 0 || relays == 0 {
                            t.verify = Verify::Failed;
                            self.suspicion_deadlines.set(subject, v.now);
                        } else {
                            t.verify = Verify::Wanted;
                        }
                    }
                }
                out.push(Action::Suspect(subject));
            }
        }
    }

    /// Watched members whose phi crossing is due; hand each to [`Detection::phi_check`].
    pub(super) fn expired_phi_checks(&mut self, now: Timestamp) -> Vec<NodeId> {
        self.phi_checks.pop_expired(now)
    }

    /// A phi deadline passed: probe the member if phi really crossed, and re-arm the check.
    pub(super) fn phi_check<R: RngCore>(
        &mut self,
        v: &View,
        rng: &mut R,
        subject: NodeId,
        out: &mut Vec<Action>,
    ) {
        let now = v.now;
        let still = self
            .detectors
            .get(&subject)
            .is_some_and(|d| !d.is_available(now));
        // Suspects too: an observer that heard of a suspicion still checks for itself, and
        // its own verdict is the independent confirmation Lifeguard counts.
        let live = v.table.get(&subject).is_some_and(|m| m.state.is_live());
        if still && live && v.running {
            self.start_probe(v, rng, subject, true, false, out);
        }
        if let Some(d) = self.detectors.get(&subject) {
            // Not crossed yet (the deadline is exact to the microsecond, so it can fire a
            // hair early): look again when it does. Crossed: probe again a heartbeat later,
            // unless a new arrival re-arms the check sooner.
            let next = match d.unavailable_at() {
                Some(at) if !still && at > now => at,
                Some(_) if !still => now + Duration::from_millis(1),
                _ => now + v.config.heartbeat_interval,
            };
            self.phi_checks.set(subject, next);
        }
    }

    /// Suspicions whose deadline passed; hand each to [`Detection::suspicion_expired`].
    pub(super) fn expired_suspicions(&mut self, now: Timestamp) -> Vec<NodeId> {
        self.suspicion_deadlines.pop_expired(now)
    }

    /// A suspicion's deadline passed: if it is this node's own and the member is still
    /// suspect, declare it failed, unless a partition defers failures.
    pub(super) fn suspicion_expired<R: RngCore>(
        &mut self,
        v: &View,
        rng: &mut R,
        subject: NodeId,
        out: &mut Vec<Action>,
    ) {
        let Some(t) = self.suspicions.get(&subject) else {
            return;
        };
        if !t.mine {
            return;
        }
        let still = v
            .table
            .get(&subject)
            .filter(|m| m.state == MemberState::Suspect)
            .map(|m| m.info.incarnation);
        let Some(incarnation) = still else {
            self.forget(&subject);
            return;
        };
        if v.defer_failures || !v.running {
            // A mass loss or lost quorum: report the partition, not N failures. Look again
            // after a probe interval.
            let later = v.now + v.config.probe_interval;
            self.suspicion_deadlines.set(subject, later);
            return;
        }
        let verify = t.verify;
        match held_back_until(&t.suspicion, verify, v, self.awareness.score()) {
            Hold::No => {}
            Hold::Until(later) => {
                self.suspicion_deadlines.set(subject, later);
                return;
            }
            Hold::Verify(later) => {
                if verify == Verify::Idle {
                    if let Some(t) = self.suspicions.get_mut(&subject) {
                        t.verify = Verify::Wanted;
                    }
                }
                // Starts the re-check unless a probe of the subject is in flight (a phi
                // check's, every heartbeat interval): then the next one is the re-check.
                self.start_probe(v, rng, subject, true, false, out);
                self.suspicion_deadlines.set(subject, later);
                return;
            }
        }
        out.push(Action::Fail {
            id: subject,
            incarnation,
        });
    }

    // ---- membership changes ----------------------------------------------------------------

    /// The node applied this node's own suspicion of `subject` (`update`): track it as a
    /// direct suspecter, and tell the subject (it refutes at once if alive) and its other
    /// observers (they confirm if they also cannot reach it).
    pub(super) fn suspected(
        &mut self,
        v: &View,
        subject: NodeId,
        update: &Update,
        out: &mut Vec<Action>,
    ) {
        // Whatever the table said before, this node is now a direct suspecter.
        let (min, max, k) = self.bounds(v);
        let me = v.me;
        let now = v.now;
        let tracked = self.suspicions.entry(subject).or_insert_with(|| Tracked {
            suspicion: Suspicion::new(now, min, max, k, me),
            mine: true,
            verify: Verify::Idle,
        });
        tracked.mine = true;
        let _ = tracked.suspicion.confirm(now, me);
        let deadline = tracked.suspicion.deadline();
        self.suspicion_deadlines.set(subject, deadline);
        out.push(Action::ToMember {
            to: subject,
            message: Message::Gossip,
            first: Some(update.clone()),
        });
        self.refresh_subjects(v);
        let live: Vec<NodeId> = live_ids(v).collect();
        for o in observers::watchers_of(&subject, live.iter().copied(), v.config.observers) {
            if o != me {
                out.push(Action::ToMember {
                    to: o,
                    message: Message::Gossip,
                    first: Some(update.clone()),
                });
            }
        }
    }

    /// Marks the subjects for a refresh if `subject`'s move (`applied`, now in `state`)
    /// changes them: a member entering the live set among the kept neighbours, or a subject
    /// leaving it. Any other move leaves `subjects_of` as it was.
    fn ring_changed(&mut self, subject: &NodeId, applied: Applied, state: MemberState) {
        let was_live = match applied {
            Applied::New | Applied::Rejoined => false,
            Applied::StateChanged { from } => from.is_live(),
            _ => return,
        };
        let changed = match (was_live, state.is_live()) {
            (false, true) => {
                // While `near` is `None` a refresh is pending anyway (see `near`). With no
                // subjects (alone, or off the ring at the last refresh) any arrival may
                // bring some.
                let moved = self.near.as_mut().is_some_and(|n| n.add(subject));
                moved || self.subjects.is_empty()
            }
            (true, false) => {
                if self.near.as_ref().is_some_and(|n| n.contains(subject)) {
                    self.near = None;
                }
                self.subjects.contains(subject) || self.listened.contains(subject)
            }
            _ => false,
        };
        if changed {
            self.ring_dirty = true;
        }
    }

    /// Bookkeeping after the table applied `update` (`applied`, leaving its subject in
    /// `state`). Returns whether the update is news worth gossiping although the table did not
    /// change (a new independent confirmation of a suspicion).
    pub(super) fn after_apply(
        &mut self,
        v: &View,
        update: &Update,
        applied: Applied,
        state: MemberState,
    ) -> bool {
        let subject = update.subject();
        let mut news = false;
        self.ring_changed(&subject, applied, state);
        match (update, applied, state) {
            (Update::Suspect { by, .. }, Applied::StateChanged { .. }, MemberState::Suspect) => {
                let (min, max, k) = self.bounds(v);
                self.suspicions.insert(
                    subject,
                    Tracked {
                        suspicion: Suspicion::new(v.now, min, max, k, *by),
                        mine: false,
                        verify: Verify::Idle,
                    },
                );
            }
            (Update::Suspect { by, .. }, Applied::Confirmed, _) => {
                if let Some(t) = self.suspicions.get_mut(&subject) {
                    if t.suspicion.confirm(v.now, *by) {
                        if t.mine {
                            let d = t.suspicion.deadline();
                            self.suspicion_deadlines.set(subject, d);
                        }
                        news = true;
                    }
                }
            }
            (_, _, s) if s != MemberState::Suspect => self.forget(&subject),
            _ => {}
        }
        if state.is_down() {
            self.detectors.remove(&subject);
            self.phi_checks.remove(&subject);
        }
        news
    }

    /// The table removed a member and moved its last slot into the hole (`moved`): the probe
    /// order follows, so it names the same members as before (one pass, only on a reap).
    pub(super) fn slot_moved(&mut self, moved: SlotMove) {
        for s in &mut self.probe_order {
            if *s == moved.removed {
                *s = GONE;
            } else if *s == moved.from {
                *s = moved.removed;
            }
        }
    }

    /// A tombstone was reaped: nothing about the member is kept.
    pub(super) fn reaped(&mut self, subject: &NodeId) {
        self.forget(subject);
        self.damping.forget(subject);
        self.ring_dirty = true;
    }

    fn forget(&mut self, subject: &NodeId) {
        self.suspicions.remove(subject);
        self.suspicion_deadlines.remove(subject);
    }

    /// This node refuted news about itself: a sign that it may be the slow one.
    pub(super) fn refuted(&mut self) {
        self.awareness.record(HealthEvent::Refuted);
    }

    // ---- flap damping (damping.rs) ---------------------------------------------------------

    /// Whether `id` is held down: alive in the table but, having flapped, not yet treated as
    /// alive (the application has not been told it is back).
    pub(super) fn is_held(&self, id: &NodeId) -> bool {
        self.damping.is_held(id)
    }

    /// Feeds a membership event about another member to flap damping and returns it, or
    /// `None` when it must be withheld: a held member's return (and any news of it while held)
    /// is reported only when its hold ends ([`Detection::released_holds`]), so the application
    /// and the balancer keep avoiding it until then.
    pub(super) fn damp(
        &mut self,
        now: Timestamp,
        config: &Config,
        rejoined: bool,
        event: Event,
    ) -> Option<Event> {
        let sick = is_sick(self.awareness.score(), config);
        self.damping.self_health(now, sick);
        let back = match &event {
            Event::MemberSuspected(m) | Event::MemberFailed(m) => {
                self.damping.went_down(m.info.id, now);
                None
            }
            Event::MemberLeft(m) => {
                self.damping.forget(&m.info.id);
                None
            }
            Event::MemberRecovered(m) => Some((m.info.id, Back::Recovered)),
            Event::MemberJoined(m) if rejoined => Some((m.info.id, Back::Rejoined)),
            Event::MemberUpdated(m) if self.damping.is_held(&m.info.id) => return None,
            _ => None,
        };
        if let Some((id, how)) = back {
            if self.damping.came_back(id, now, how).is_some() {
                return None;
            }
        }
        Some(event)
    }

    /// Holds that ended at `now`: each member, and whether it had rejoined (reported as
    /// joined) or refuted (reported as recovered).
    pub(super) fn released_holds(&mut self, now: Timestamp) -> Vec<(NodeId, bool)> {
        self.damping
            .released(now)
            .into_iter()
            .map(|(id, how)| (id, how == Back::Rejoined))
            .collect()
    }

    /// Many members went at once (see `partition_watch`): probe everyone still believed
    /// alive now rather than waiting for round-robin probes to reach them, so both sides of a
    /// split learn who is across it within a probe round.
    pub(super) fn sweep<R: RngCore>(&mut self, v: &View, rng: &mut R, out: &mut Vec<Action>) {
        let alive: Vec<NodeId> = v
            .table
            .live_peers()
            .iter()
            .filter(|id| {
                v.table
                    .get(id)
                    .is_some_and(|m| m.state == MemberState::Alive)
            })
            .collect();
        for id in alive {
            self.start_probe(v, rng, id, true, false, out);
        }
    }
}

impl Detection {
    /// Confirmation: a member that this node alone suspects (nobody confirmed) answered it
    /// directly, so this node withdraws its own suspicion: it will not declare the member
    /// failed on the strength of it (the table keeps it suspect until it refutes). Without
    /// this, a member deaf for a while, whose suspicion's refutation went by while it could
    /// not hear, would fail a member that answers it at the lone timeout.
    fn answered_while_suspected(&mut self, id: &NodeId) {
        let lone = self
            .suspicions
            .get(id)
            .is_some_and(|t| t.mine && !t.suspicion.is_confirmed());
        if lone {
            self.forget(id);
        } else {
            self.signs_of_life(id);
        }
    }

    /// `id` answered this node (directly or through a relay): a sick suspecter's re-check
    /// starts over, so it never fails a member it has just heard from.
    fn signs_of_life(&mut self, id: &NodeId) {
        if let Some(t) = self.suspicions.get_mut(id) {
            t.verify = Verify::Idle;
        }
    }
}

/// What `held_back_until` decided about a suspicion whose deadline passed.
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
enum Hold {
    /// Declare the subject failed now.
    No,
    /// Look again then.
    Until(Timestamp),
    /// Re-check the subject with a probe of this node's own first (unless one is running or
    /// answered already), and look again then at the latest.
    Verify(Timestamp),
}

/// Whether a node with local health score `health` counts as sick: at least half the
/// highest score. Below that a healthy node's score moves with the odd relay that did not
/// answer (a member about to be suspected, asked to relay); above it the node itself is
/// losing packets, and its own view of others is not to be trusted.
fn is_sick(health: u32, config: &Config) -> bool {
    health.saturating_mul(2) >= config.awareness_max.max(1)
}

/// Confirmation and self-doubt: the suspecter does not declare failure while nobody else
/// confirmed a suspicion that others could confirm, nor, while its own local health is at
/// least half its worst (`health`: it has been deaf or cut off lately, so its suspicions say
/// more about itself), before it has checked again for itself. `lone_suspicion_timeout` after
/// the suspicion started, a healthy suspecter decides alone. A sick suspecter never fails a
/// member on its own word; on a confirmed suspicion it probes the subject once more (direct
/// and through relays) and fails it only if that probe fails with a relay's nack (a third
/// party that heard this node and could not reach the subject either; or no relay to ask),
/// and any answer from the subject starts the re-check over.
///
/// A crashed member is suspected by each of its observers, which confirm one another and
/// are healthy; a healthy member suspected by a deaf or lossy observer is not, and refutes.
/// The refutation may not reach a member that loses most of what is sent to it for longer
/// than the lone timeout (a gray failure): that member is sick, and it alone suspects, so it
/// waits, however long, until it is well or somebody confirms (issue 16: at 80 % loss both
/// ways the gray member used to declare healthy members failed after 30 s).
///
/// Why a re-check rather than a wait: members cut off from part of the cluster by a
/// partition are sick too (each failed probe of the far side, through relays on the far side
/// that cannot nack, counts against them), yet their confirmed suspicions of the far side are
/// right, and the majority must fail the minority in seconds to keep serving. Two deaf
/// flappers that confirm each other's suspicion the moment they hear again are wrong, and
/// their re-check, sent after the confirmation arrived, is answered.
fn held_back_until(s: &Suspicion, verify: Verify, v: &View, health: u32) -> Hold {
    let sick = is_sick(health, v.config);
    let again = v.now + v.config.probe_interval;
    if sick {
        return match (s.is_confirmed(), verify) {
            (true, Verify::Failed) => Hold::No,
            (true, _) => Hold::Verify(again),
            (false, _) => Hold::Until(again),
        };
    }
    if s.may_fail(v.now, v.config.lone_suspicion_timeout) {
        return Hold::No;
    }
    let lone = s.started() + v.config.lone_suspicion_timeout;
    Hold::Until(again.min(lone))
}

fn ping(to: NodeId, seq: u32) -> Action {
    Action::ToMember {
        to,
        message: Message::Ping { seq },
        first: None,
    }
}

/// Tells a ping-req's requester whether its target answered the relayed ping (`ok`) or not
/// (a Lifeguard nack, so the requester can tell a dead target from its own bad link).
fn relay_answer(relay: Pending, ok: bool) -> Option<Action> {
    let Pending::Relay {
        requester_addr,
        requester,
        requester_seq,
        target,
    } = relay
    else {
        return None;
    };
    Some(Action::ToAddr {
        dst: requester_addr,
        to: requester,
        message: Message::IndirectAck {
            seq: requester_seq,
            target,
            ok,
        },
    })
}
