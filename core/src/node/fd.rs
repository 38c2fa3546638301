//! Failure detection, as the node runs it: the wiring between the rule modules.
//!
//! - **Observers** (`observers.rs`): this node heartbeats the members whose observer it is (its
//!   predecessors on the ring of live members); each ack feeds that member's phi detector
//!   (`detector/phi.rs`), and a deadline is armed for the instant phi crosses the threshold.
//! - **Probes** (`probe.rs`): phi crossing, or a failed periodic round-robin SWIM probe, leads
//!   to a direct ping plus ping-reqs through `indirect_probes` other members. Only when none of
//!   them answers in time does this node *suspect* the member.
//! - **Suspicion** (`suspicion.rs`): every suspect in the table has a Lifeguard timer, but only
//!   a node that suspected the member itself (a *direct suspecter*) may declare it failed when
//!   the timer runs out; independent confirmations from other direct suspecters shorten it. A
//!   suspecter tells the subject (so it refutes at once) and the subject's other observers (so
//!   they confirm or not).
//! - **Local health** (`awareness.rs`): failed probes, missing nacks, refutations and late
//!   timers raise the score; successful probes lower it; probe and suspicion timeouts are
//!   scaled by it, so a slow node accuses nobody in haste.
//! - **Partitions** (`partition.rs`): reachable (alive) versus known (alive, suspect, failed)
//!   feeds the detector after every change; while it reports a mass loss or a lost quorum,
//!   failures are deferred, and a mass loss triggers one sweep that probes every member still
//!   believed alive, so the minority side learns quickly that the far side is unreachable.
//! - **Reconnect**: every `reconnect_interval`, one random failed (or reaped) member is sent a
//!   sync request; a rebooted member or a healed partition answers and views merge again.

use super::*;
use crate::awareness::{Awareness, HealthEvent};
use crate::detector::PhiDetector;
use crate::observers::ObserverRing;
use crate::partition::{PartitionDetector, PartitionEvent};
use crate::probe::{Pending, Prober};
use crate::suspicion::Suspicion;
use crate::timer::DeadlineIndex;
use std::collections::BTreeMap;

/// Most outstanding pings (heartbeats, probes, relays); relays beyond this are refused.
const MAX_PENDING: usize = 1024;
/// Most reaped members whose address is kept for reconnect attempts.
const MAX_GRAVEYARD: usize = 1024;

/// A suspicion this node tracks, and whether this node raised it itself.
#[derive(Debug)]
pub(super) struct Tracked {
    pub(super) suspicion: Suspicion,
    /// Whether this node suspected the member itself (only then may it declare failure).
    pub(super) mine: bool,
}

/// Failure-detection state of a node.
#[derive(Debug)]
pub(super) struct Fd {
    pub(super) prober: Prober,
    pub(super) ring: ObserverRing,
    pub(super) ring_dirty: bool,
    pub(super) detectors: BTreeMap<NodeId, PhiDetector>,
    pub(super) phi_checks: DeadlineIndex<NodeId>,
    pub(super) suspicions: BTreeMap<NodeId, Tracked>,
    pub(super) suspicion_deadlines: DeadlineIndex<NodeId>,
    pub(super) awareness: Awareness,
    pub(super) partition: PartitionDetector,
    pub(super) probe_order: Vec<NodeId>,
    pub(super) graveyard: BTreeMap<NodeId, (SocketAddr, Timestamp)>,
    pub(super) urgent: bool,
    pub(super) last_urgent: Timestamp,
    pub(super) counts: (usize, usize),
    pub(super) swept: bool,
}

impl Fd {
    pub(super) fn new(config: &Config) -> Self {
        Fd {
            prober: Prober::new(MAX_PENDING),
            ring: ObserverRing::new(core::iter::empty()),
            ring_dirty: true,
            detectors: BTreeMap::new(),
            phi_checks: DeadlineIndex::default(),
            suspicions: BTreeMap::new(),
            suspicion_deadlines: DeadlineIndex::default(),
            awareness: Awareness::new(config.awareness_max),
            partition: PartitionDetector::new(&config.partition),
            probe_order: Vec::new(),
            graveyard: BTreeMap::new(),
            urgent: false,
            last_urgent: Timestamp::ZERO,
            counts: (0, 0),
            swept: false,
        }
    }

    /// The earliest failure-detection deadline.
    pub(super) fn next_deadline(&self) -> Option<Timestamp> {
        [
            self.prober.next_deadline(),
            self.phi_checks.next(),
            self.suspicion_deadlines.next(),
            self.partition.poll_timeout(),
        ]
        .into_iter()
        .flatten()
        .min()
    }
}

impl<R: RngCore> Node<R> {
    fn scaled(&self, d: Duration) -> Duration {
        self.fd.awareness.scale(d)
    }

    fn running(&self) -> bool {
        self.status == Status::Running
    }

    /// Rebuilds the observer ring if the live set changed, and follows the subjects it
    /// assigns this node: new subjects get a detector (seeded with an arrival now, so a member
    /// that never answers still crosses the threshold), dropped ones lose theirs.
    fn refresh_subjects(&mut self) {
        if !self.fd.ring_dirty {
            return;
        }
        self.fd.ring_dirty = false;
        let live = self
            .table
            .iter()
            .filter(|m| m.state.is_live())
            .map(|m| m.info.id);
        self.fd.ring = ObserverRing::new(live);
        let subjects = self.fd.ring.subjects_of(&self.me.id, self.config.observers);
        let stale: Vec<NodeId> = self
            .fd
            .detectors
            .keys()
            .filter(|id| !subjects.contains(id))
            .copied()
            .collect();
        for id in stale {
            self.fd.detectors.remove(&id);
            self.fd.phi_checks.remove(&id);
        }
        for id in subjects {
            if !self.fd.detectors.contains_key(&id) {
                let mut d = PhiDetector::new(&self.config.phi);
                d.heartbeat(self.now);
                if let Some(at) = d.unavailable_at() {
                    self.fd.phi_checks.set(id, at);
                }
                self.fd.detectors.insert(id, d);
            }
        }
    }

    /// The phi of a watched member.
    pub(super) fn fd_phi(&self, id: &NodeId) -> Option<f64> {
        self.fd.detectors.get(id).map(|d| d.phi(self.now))
    }

    /// Heartbeat round: ping every watched member.
    pub(super) fn on_heartbeat(&mut self, late_by: Duration) {
        let next = self.now + self.config.heartbeat_interval;
        self.timers.set(Timer::Heartbeat, next);
        if late_by > self.config.heartbeat_interval {
            // Our own timer fired very late: we were stalled (GC, swap, a paused VM). Others'
            // silence since then is our doing, not theirs.
            self.fd.awareness.apply_delta(1);
        }
        if !self.running() {
            return;
        }
        self.refresh_subjects();
        let subjects: Vec<NodeId> = self.fd.detectors.keys().copied().collect();
        for subject in subjects {
            let deadline = self.now + self.config.heartbeat_interval * 2;
            if let Some(seq) = self
                .fd
                .prober
                .start(Pending::Heartbeat { subject }, deadline)
            {
                self.send_to_member(subject, Message::Ping { seq }, None);
            }
        }
    }

    /// Periodic SWIM probe of the next member in a shuffled round-robin order.
    pub(super) fn on_probe(&mut self) {
        let next = self.now + self.config.probe_interval;
        self.timers.set(Timer::Probe, next);
        if !self.running() {
            return;
        }
        // At most one full pass of candidates per tick, skipping watched and dead ones.
        for _ in 0..2 {
            while let Some(id) = self.fd.probe_order.pop() {
                let live = self.table.get(&id).is_some_and(|m| m.state.is_live());
                if live && !self.fd.detectors.contains_key(&id) && !self.fd.prober.probing(&id) {
                    self.start_probe(id, false, true);
                    return;
                }
            }
            let mut order = self.table.live_peers().to_vec();
            // Fisher-Yates with the node's RNG: deterministic, and no member is favoured.
            for i in (1..order.len()).rev() {
                let j = self.rand_below(i + 1);
                order.swap(i, j);
            }
            self.fd.probe_order = order;
        }
    }

    /// Starts a failure probe of `subject`: a direct ping, and (when `indirect`) ping-reqs
    /// through other members at the same time.
    fn start_probe(&mut self, subject: NodeId, indirect: bool, periodic: bool) {
        if self.fd.prober.probing(&subject) {
            return;
        }
        let wait = self.scaled(self.config.probe_timeout);
        let pending = Pending::Probe {
            subject,
            indirect: false,
            relays: 0,
            nacks: 0,
            periodic,
        };
        let Some(seq) = self.fd.prober.start(pending, self.now + wait) else {
            return;
        };
        self.stats.probes += 1;
        self.send_to_member(subject, Message::Ping { seq }, None);
        if indirect {
            self.go_indirect(seq, subject);
        }
    }

    /// Asks `indirect_probes` random members to probe `subject` for probe `seq`.
    fn go_indirect(&mut self, seq: u32, subject: NodeId) {
        let Some(addr) = self.table.get(&subject).map(|m| m.info.gossip_addr) else {
            return;
        };
        let want = self.config.indirect_probes;
        let relays: Vec<NodeId> = self
            .random_peers(want + 1)
            .into_iter()
            .filter(|r| *r != subject)
            .take(want)
            .collect();
        for r in &relays {
            self.send_to_member(
                *r,
                Message::PingReq {
                    seq,
                    target: subject,
                    addr,
                },
                None,
            );
        }
        let wait = self.scaled(self.config.probe_timeout) * 3 / 2;
        if let Some(Pending::Probe {
            indirect,
            relays: n,
            ..
        }) = self.fd.prober.get_mut(seq)
        {
            *indirect = true;
            *n = relays.len() as u32;
        }
        self.fd.prober.extend(seq, self.now + wait);
    }

    /// A ping-req: probe `target` for the requester and report back either way.
    pub(super) fn on_ping_req(
        &mut self,
        from: SocketAddr,
        from_id: NodeId,
        seq: u32,
        target: NodeId,
    ) {
        // Only relay to members we know, at the address we know: a ping-req must not turn
        // this node into a reflector towards arbitrary addresses.
        let known = self
            .table
            .get(&target)
            .filter(|m| m.state.is_live())
            .map(|m| m.info.gossip_addr);
        let relay = Pending::Relay {
            requester_addr: from,
            requester: from_id,
            requester_seq: seq,
            target,
        };
        let started = known.and_then(|_| {
            let wait = self.scaled(self.config.probe_timeout);
            self.fd.prober.start(relay, self.now + wait)
        });
        match started {
            Some(relay_seq) => self.send_to_member(target, Message::Ping { seq: relay_seq }, None),
            None => self.send(
                from,
                Some(from_id),
                Message::IndirectAck {
                    seq,
                    target,
                    ok: false,
                },
                None,
            ),
        }
    }

    /// An ack: a heartbeat arrival, a probe answered, or a relayed ping answered.
    pub(super) fn on_ack(&mut self, from_id: NodeId, seq: u32) {
        let Some(p) = self.fd.prober.answer(seq, from_id) else {
            self.stats.stale_acks += 1;
            return;
        };
        match p {
            Pending::Heartbeat { subject } => {
                if let Some(d) = self.fd.detectors.get_mut(&subject) {
                    d.heartbeat(self.now);
                    match d.unavailable_at() {
                        Some(at) => self.fd.phi_checks.set(subject, at),
                        None => self.fd.phi_checks.remove(&subject),
                    }
                }
            }
            Pending::Probe { periodic, .. } => {
                if periodic {
                    self.fd.awareness.record(HealthEvent::ProbeSucceeded);
                }
            }
            relay @ Pending::Relay { .. } => self.answer_relay(relay, true),
        }
        self.tell_if_down(from_id);
    }

    /// Tells a ping-req's requester whether its target answered the relayed ping (`ok`) or not
    /// (a Lifeguard nack, so the requester can tell a dead target from its own bad link).
    fn answer_relay(&mut self, relay: Pending, ok: bool) {
        if let Pending::Relay {
            requester_addr,
            requester,
            requester_seq,
            target,
        } = relay
        {
            let ack = Message::IndirectAck {
                seq: requester_seq,
                target,
                ok,
            };
            self.send(requester_addr, Some(requester), ack, None);
        }
    }

    /// A member answered us directly while we hold it suspect or failed: send it that news so
    /// it refutes now rather than when gossip happens to reach it.
    fn tell_if_down(&mut self, id: NodeId) {
        let down = self
            .table
            .get(&id)
            .is_some_and(|m| m.state != MemberState::Alive);
        if down {
            if let Some(u) = self.table.update_for(&id, self.me.id) {
                self.send_to_member(id, Message::Gossip, Some(&u));
            }
        }
    }

    /// A relay's answer to our ping-req.
    pub(super) fn on_indirect_ack(&mut self, seq: u32, target: NodeId, ok: bool) {
        let is_ours = matches!(
            self.fd.prober.get_mut(seq),
            Some(Pending::Probe { subject, .. }) if *subject == target
        );
        if !is_ours {
            self.stats.stale_acks += 1;
            return;
        }
        if ok {
            let _ = self.fd.prober.take(seq);
        } else if let Some(Pending::Probe { nacks, .. }) = self.fd.prober.get_mut(seq) {
            *nacks += 1;
        }
    }

    /// Deadlines of outstanding pings, phi crossings, suspicions and the partition window.
    pub(super) fn fd_timeouts(&mut self) {
        let now = self.now;
        for (seq, p) in self.fd.prober.expired(now) {
            match p {
                Pending::Heartbeat { .. } => {}
                relay @ Pending::Relay { .. } => self.answer_relay(relay, false),
                Pending::Probe {
                    subject,
                    indirect: false,
                    periodic,
                    ..
                } => {
                    // Direct ping unanswered: keep the probe number, go indirect.
                    let pending = Pending::Probe {
                        subject,
                        indirect: false,
                        relays: 0,
                        nacks: 0,
                        periodic,
                    };
                    if let Some(seq2) = self.fd.prober.start(pending, now) {
                        let _ = seq;
                        self.send_to_member(subject, Message::Ping { seq: seq2 }, None);
                        self.go_indirect(seq2, subject);
                    }
                }
                Pending::Probe {
                    subject,
                    indirect: true,
                    relays,
                    nacks,
                    periodic,
                } => {
                    self.stats.probe_failures += 1;
                    if periodic || relays > 0 {
                        self.fd.awareness.record(HealthEvent::ProbeFailed {
                            expected_nacks: relays,
                            nacks,
                        });
                    }
                    self.suspect(subject);
                }
            }
        }
        for subject in self.fd.phi_checks.pop_expired(now) {
            let still = self
                .fd
                .detectors
                .get(&subject)
                .is_some_and(|d| !d.is_available(now));
            // Suspects too: an observer that heard of a suspicion still checks for itself, and
            // its own verdict is the independent confirmation Lifeguard counts.
            let live = self.table.get(&subject).is_some_and(|m| m.state.is_live());
            if still && live && self.running() {
                self.start_probe(subject, true, false);
            }
            if let Some(d) = self.fd.detectors.get(&subject) {
                // Not crossed yet (the deadline is exact to the microsecond, so it can fire a
                // hair early): look again when it does. Crossed: probe again a heartbeat later,
                // unless a new arrival re-arms the check sooner.
                let next = match d.unavailable_at() {
                    Some(at) if !still && at > now => at,
                    Some(_) if !still => now + Duration::from_millis(1),
                    _ => now + self.config.heartbeat_interval,
                };
                self.fd.phi_checks.set(subject, next);
            }
        }
        for subject in self.fd.suspicion_deadlines.pop_expired(now) {
            self.suspicion_expired(subject);
        }
        self.observe_partition();
    }

    /// This node suspects `subject` itself (its probes went unanswered).
    fn suspect(&mut self, subject: NodeId) {
        if !self.running() {
            return;
        }
        let Some(m) = self.table.get(&subject) else {
            return;
        };
        if m.state.is_down() {
            return;
        }
        let update = Update::Suspect {
            id: subject,
            incarnation: m.info.incarnation,
            by: self.me.id,
        };
        self.stats.suspicions += 1;
        self.apply_update(update.clone(), true);
        // Whatever the table said before, this node is now a direct suspecter.
        let (min, max, k) = self.suspicion_bounds();
        let me = self.me.id;
        let now = self.now;
        let tracked = self
            .fd
            .suspicions
            .entry(subject)
            .or_insert_with(|| Tracked {
                suspicion: Suspicion::new(now, min, max, k, me),
                mine: true,
            });
        tracked.mine = true;
        let _ = tracked.suspicion.confirm(now, me);
        let deadline = tracked.suspicion.deadline();
        self.fd.suspicion_deadlines.set(subject, deadline);
        // Tell the subject (it refutes at once if alive) and its other observers (they
        // confirm if they also cannot reach it).
        self.send_to_member(subject, Message::Gossip, Some(&update));
        self.refresh_subjects();
        for o in self.fd.ring.observers_of(&subject, self.config.observers) {
            if o != me {
                self.send_to_member(o, Message::Gossip, Some(&update));
            }
        }
    }

    fn suspicion_bounds(&self) -> (Duration, Duration, u32) {
        let min = self.scaled(self.config.suspicion_min);
        let max = min * self.config.suspicion_max_mult;
        let live = self.table.live_count();
        let k = (self.config.observers.saturating_sub(1)).min(live.saturating_sub(2)) as u32;
        (min, max, k)
    }

    fn suspicion_expired(&mut self, subject: NodeId) {
        let Some(t) = self.fd.suspicions.get(&subject) else {
            return;
        };
        if !t.mine {
            return;
        }
        let still = self
            .table
            .get(&subject)
            .filter(|m| m.state == MemberState::Suspect)
            .map(|m| m.info.incarnation);
        let Some(incarnation) = still else {
            self.forget_suspicion(&subject);
            return;
        };
        if self.fd.partition.defer_failures() || !self.running() {
            // A mass loss or lost quorum: report the partition, not N failures. Look again
            // after a probe interval.
            let later = self.now + self.config.probe_interval;
            self.fd.suspicion_deadlines.set(subject, later);
            return;
        }
        self.stats.failures_declared += 1;
        self.apply_update(
            Update::Failed {
                id: subject,
                incarnation,
                by: self.me.id,
            },
            true,
        );
    }

    pub(super) fn forget_suspicion(&mut self, subject: &NodeId) {
        self.fd.suspicions.remove(subject);
        self.fd.suspicion_deadlines.remove(subject);
    }

    /// Bookkeeping after the table applied an update (called by `apply_update`).
    pub(super) fn fd_after_apply(&mut self, update: &Update, applied: Applied, state: MemberState) {
        let subject = update.subject();
        if matches!(
            applied,
            Applied::New | Applied::Rejoined | Applied::StateChanged { .. }
        ) {
            self.fd.ring_dirty = true;
        }
        if applied == Applied::New || applied == Applied::Rejoined {
            self.fd.graveyard.remove(&subject);
        }
        match (update, applied, state) {
            (Update::Suspect { by, .. }, Applied::StateChanged { .. }, MemberState::Suspect) => {
                let (min, max, k) = self.suspicion_bounds();
                let now = self.now;
                self.fd.suspicions.insert(
                    subject,
                    Tracked {
                        suspicion: Suspicion::new(now, min, max, k, *by),
                        mine: false,
                    },
                );
            }
            (Update::Suspect { by, .. }, Applied::Confirmed, _) => {
                let now = self.now;
                if let Some(t) = self.fd.suspicions.get_mut(&subject) {
                    if t.suspicion.confirm(now, *by) {
                        if t.mine {
                            let d = t.suspicion.deadline();
                            self.fd.suspicion_deadlines.set(subject, d);
                        }
                        // A new independent confirmation is news worth spreading.
                        self.gossip.push(update);
                    }
                }
            }
            (_, _, s) if s != MemberState::Suspect => self.forget_suspicion(&subject),
            _ => {}
        }
        if state.is_down() {
            self.fd.detectors.remove(&subject);
            self.fd.phi_checks.remove(&subject);
        }
    }

    /// Refutation side effects: tell whoever accused us, at once.
    pub(super) fn fd_refuted(&mut self, update: &Update) {
        self.fd.awareness.record(HealthEvent::Refuted);
        let accuser = match update {
            Update::Suspect { by, .. } | Update::Failed { by, .. } => Some(*by),
            _ => None,
        };
        let alive = Update::Alive(self.me.clone());
        if let Some(by) = accuser.filter(|b| *b != self.me.id) {
            self.send_to_member(by, Message::Gossip, Some(&alive));
        }
        self.fd.urgent = true;
    }

    /// Feeds the partition detector when the view's counts changed (or its window is due),
    /// turning its verdicts into events; a fresh mass loss triggers one sweep.
    pub(super) fn observe_partition(&mut self) {
        let reachable = self.table.count(MemberState::Alive);
        let known = reachable
            + self.table.count(MemberState::Suspect)
            + self.table.count(MemberState::Failed);
        let due = self
            .fd
            .partition
            .poll_timeout()
            .is_some_and(|t| t <= self.now);
        if (reachable, known) == self.fd.counts && !due {
            return;
        }
        self.fd.counts = (reachable, known);
        self.fd.partition.observe(self.now, reachable, known);
        while let Some(e) = self.fd.partition.poll_event() {
            self.events.push_back(match e {
                PartitionEvent::Detected {
                    reachable,
                    known,
                    minority,
                } => Event::PartitionDetected {
                    reachable,
                    known,
                    minority,
                },
                PartitionEvent::Healed { reachable, known } => {
                    Event::PartitionHealed { reachable, known }
                }
            });
        }
        let mass = self.fd.partition.is_mass_loss();
        if mass && !self.fd.swept && self.running() {
            // Many members went at once: probe everyone still believed alive now rather than
            // waiting for round-robin probes to reach them, so both sides of a split learn
            // who is across it within a probe round.
            self.fd.swept = true;
            let alive: Vec<NodeId> = self
                .table
                .live_peers()
                .iter()
                .filter(|id| {
                    self.table
                        .get(id)
                        .is_some_and(|m| m.state == MemberState::Alive)
                })
                .copied()
                .collect();
            for id in alive {
                self.start_probe(id, true, false);
            }
        } else if !mass && !self.fd.partition.is_partitioned() {
            self.fd.swept = false;
        }
    }

    /// Reconnect round: one sync request to a random failed or reaped member.
    pub(super) fn on_reconnect(&mut self) {
        let next = self.jittered(self.config.reconnect_interval * 2);
        self.timers.set(Timer::Reconnect, self.now + next);
        if !self.running() {
            return;
        }
        let cutoff = self.now - self.config.reconnect_timeout;
        self.fd.graveyard.retain(|_, (_, at)| *at >= cutoff);
        let failed = self.table.count(MemberState::Failed);
        // Seeds that are not live members of this view: a group that formed apart.
        let unreached: Vec<SocketAddr> = if self.seeds.is_empty() {
            Vec::new()
        } else {
            let live: std::collections::BTreeSet<SocketAddr> = self
                .table
                .iter()
                .filter(|m| m.state.is_live())
                .map(|m| m.info.gossip_addr)
                .collect();
            self.seeds
                .iter()
                .filter(|a| !live.contains(a))
                .copied()
                .collect()
        };
        let total = failed + self.fd.graveyard.len() + unreached.len();
        if total == 0 {
            return;
        }
        let pick = self.rand_below(total);
        let target = if pick < failed {
            self.table
                .iter()
                .filter(|m| m.state == MemberState::Failed)
                .nth(pick)
                .map(|m| (Some(m.info.id), m.info.gossip_addr))
        } else if pick < failed + self.fd.graveyard.len() {
            self.fd
                .graveyard
                .iter()
                .nth(pick - failed)
                .map(|(id, (a, _))| (Some(*id), *a))
        } else {
            unreached
                .get(pick - failed - self.fd.graveyard.len())
                .map(|a| (None, *a))
        };
        if let Some((id, addr)) = target {
            let digest = BoundedVec::try_from_vec(self.table.digest_bytes())
                .expect("digest has DIGEST_BYTES bytes");
            self.sync_seq = self.sync_seq.wrapping_add(1).max(1);
            let seq = self.sync_seq;
            // Whoever answers from a seed address is accepted as the exchange's peer.
            self.outstanding_sync = id.map(|id| (seq, id));
            self.reconnect_seq = id.is_none().then_some((seq, addr));
            self.send(addr, id, Message::Sync { seq, digest }, None);
        }
    }

    /// A reaped failed member's address goes to the graveyard for reconnect attempts.
    pub(super) fn bury(&mut self, id: NodeId, addr: SocketAddr) {
        if self.fd.graveyard.len() >= MAX_GRAVEYARD {
            let oldest = self
                .fd
                .graveyard
                .iter()
                .min_by_key(|(_, (_, at))| *at)
                .map(|(id, _)| *id);
            if let Some(o) = oldest {
                self.fd.graveyard.remove(&o);
            }
        }
        self.fd.graveyard.insert(id, (addr, self.now));
    }

    /// Gossips at once when failure-detection news is queued (rate-limited to 8 rounds per
    /// gossip interval), so suspicion, failure and refutation spread at network speed.
    pub(super) fn flush_urgent(&mut self) {
        if !self.fd.urgent || self.status == Status::Left {
            return;
        }
        let gap = self.config.gossip_interval / 8;
        if self.now < self.fd.last_urgent + gap {
            // Too soon: make sure the next regular round comes no later than the gap.
            let at = self.fd.last_urgent + gap;
            if self.timers.get(Timer::Gossip).is_none_or(|t| t > at) {
                self.timers.set(Timer::Gossip, at);
            }
            return;
        }
        self.fd.urgent = false;
        self.fd.last_urgent = self.now;
        for id in self.random_peers(self.config.gossip_fanout) {
            if self.gossip.is_empty() {
                break;
            }
            self.send_to_member(id, Message::Gossip, None);
        }
    }

    /// The local health score (0 = healthy).
    pub(super) fn fd_health(&self) -> u32 {
        self.fd.awareness.score()
    }
}
