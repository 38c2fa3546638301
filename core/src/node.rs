//! The one public machine: a cluster member, as a router over sub-machines.
//!
//! [`Node`] is the only type with `handle_*` inputs and `poll_*` outputs. It owns the member
//! table, the dissemination queue, the timers and the output queues, and routes each input to
//! the sub-machine whose rule it is. Each sub-machine owns its state and never reads or writes
//! another's; it reads the table (or is told what changed) and returns what to do:
//!
//! | module | rule |
//! |---|---|
//! | `lifecycle` | join one seed at a time with doubling backoff; leave, then left |
//! | `antientropy` | digest sync and push-pull, join replies, reconnect to the failed, buried and unreached seeds |
//! | `refutation` | only the node raises its incarnation; repeated claims from another address are a conflict |
//! | `detection` | observers, phi, probes, suspicion, local health, partitions; returns actions |
//! | `random` | every random choice comes from the node's own RNG |
//! | `validation` | replies to an unvalidated address stay within 3x the bytes it sent; joins (and syncs whose views differ) from one get a challenge, echoed in the resent request |
//!
//! The member table (`membership/`) changes only through [`Node`]'s one `apply_update`, which
//! then tells detection and anti-entropy what changed; dissemination (`dissemination.rs`)
//! decides what rides on each packet and when an urgent round may go.
//!
//! ## Drive contract
//! After *every* input (`handle_packet`, `handle_timeout`, any command), drain
//! [`Node::poll_transmit`] and [`Node::poll_event`] to `None`, then read
//! [`Node::poll_timeout`] last and arm one timer for it. Inputs carry `now`; an older `now`
//! than one already seen never moves the node's time back.

use crate::config::Config;
use crate::dissemination::{retransmit_limit, Dissemination};
use crate::envelope::Keyring;
use crate::membership::{
    in_part, Applied, Member, MemberInfo, MemberState, MemberTable, SyncEntry, Update,
};
use crate::stats::Stats;
use crate::timer::{Timer, TimerTable};
use crate::wire::bounded::BoundedString;
use crate::wire::direct::EntryLists;
use crate::wire::{read_hashes, write_hashes, Message, DIGEST_BUCKETS};
use crate::{CommandError, ConfigError, NodeId, PacketError, Timestamp};
use core::net::SocketAddr;
use core::time::Duration;
use rand_core::RngCore;
use std::collections::VecDeque;

mod antientropy;
mod detection;
mod event;
mod lifecycle;
mod packets;
mod partition_watch;
mod random;
mod refutation;
mod rounds;
mod validation;

use antientropy::{entry_update, push_back, push_lists, push_parts, sync_reply, AntiEntropy};
use detection::{Action, Detection, View};
pub use event::{Event, Identity, Transmit};
use lifecycle::Lifecycle;
use packets::{check_capacity, Outgoing, Packets};
use partition_watch::PartitionWatch;
use random::{jittered, random_peers};
use refutation::{accuser, must_refute, Conflicts};
use validation::Validation;

/// Detection's read-only view of the node: borrows only the fields it names, so the node can
/// hand its RNG and detection out mutably at the same time.
macro_rules! view {
    ($node:ident) => {
        View {
            table: &$node.table,
            config: &$node.config,
            me: $node.me.id,
            now: $node.now,
            running: $node.lifecycle.running(),
            defer_failures: $node.partition.defer_failures(),
        }
    };
}

/// A cluster member: the sans-IO state machine.
#[derive(Debug)]
pub struct Node<R> {
    config: Config,
    rng: R,
    me: MemberInfo,
    table: MemberTable,
    gossip: Dissemination,
    timers: TimerTable,
    now: Timestamp,
    lifecycle: Lifecycle,
    sync: AntiEntropy,
    conflicts: Conflicts,
    detection: Detection,
    partition: PartitionWatch,
    packets: Packets,
    validation: Validation,
    events: VecDeque<Event>,
    stats: Stats,
    /// The last packets' emptied vectors, for the next to be read into.
    spare: crate::wire::Spare,
}

impl<R: RngCore> Node<R> {
    /// A node that is, until it joins, a cluster of one. Validates `config` and `identity`.
    pub fn new(
        config: Config,
        identity: Identity,
        mut rng: R,
        now: Timestamp,
    ) -> Result<Self, ConfigError> {
        config.validate()?;
        let mut secret = [0u8; 32];
        rng.fill_bytes(&mut secret);
        let name = BoundedString::new(identity.name).ok_or(ConfigError::Invalid {
            field: "name",
            reason: "must be at most 64 bytes",
        })?;
        let me = MemberInfo::new(
            identity.id,
            name,
            identity.gossip_addr,
            identity.rpc_addr.map(Into::into),
            identity.incarnation,
            identity.tags,
        );
        let mut node = Node {
            table: MemberTable::new(me.clone(), now),
            detection: Detection::new(&config, &me.id),
            partition: PartitionWatch::new(&config),
            packets: Packets::new(
                config.cluster_hash(),
                me.id,
                config.mtu,
                me.incarnation,
                config.max_members.saturating_mul(2),
            ),
            validation: Validation::new(config.max_members.saturating_mul(2), secret),
            sync: {
                let mut sync = AntiEntropy::new(now);
                sync.start_seq_at(rng.next_u32());
                sync
            },
            config,
            rng,
            me,
            gossip: Dissemination::new(),
            timers: TimerTable::default(),
            now,
            lifecycle: Lifecycle::new(),
            conflicts: Conflicts::default(),
            events: VecDeque::new(),
            spare: crate::wire::Spare::default(),
            stats: Stats::default(),
        };
        let g = node.jittered(node.config.gossip_interval);
        let h = node.jittered(node.config.heartbeat_interval);
        node.timers.set(Timer::Heartbeat, now + h);
        let p = node.jittered(node.config.probe_interval);
        node.timers.set(Timer::Probe, now + p);
        let r = node.jittered(node.config.reconnect_interval);
        node.timers.set(Timer::Reconnect, now + r);
        node.timers.set(Timer::Gossip, now + g);
        let s = node.jittered(node.config.sync_interval);
        node.timers.set(Timer::Sync, now + s);
        node.timers.set(Timer::Reap, now + node.reap_interval());
        // The partition detector's first sample (this node alone, reachable) is taken now,
        // not at whatever input comes first.
        node.observe_partition();
        Ok(node)
    }

    // ---- getters -------------------------------------------------------------------------

    /// This node's id.
    pub fn id(&self) -> NodeId {
        self.me.id
    }

    /// This node's current info (incarnation, tags, addresses).
    pub fn me(&self) -> &MemberInfo {
        &self.me
    }

    /// The configuration in force.
    pub fn config(&self) -> &Config {
        &self.config
    }

    /// The member `id`, if known (this node included).
    pub fn member(&self, id: &NodeId) -> Option<&Member> {
        self.table.get(id)
    }

    /// Every known member in id order, this node and tombstones included.
    pub fn members(&self) -> impl Iterator<Item = &Member> + '_ {
        self.table.iter()
    }

    /// Whether flap damping holds member `id` down: it is alive in the table, but it went and
    /// came back too often lately, so this node has not reported it back (no
    /// `MemberRecovered`/`MemberJoined` yet) and treats it as not alive until its hold ends
    /// (docs/detection.md, "Flap damping").
    pub fn is_held_down(&self, id: &NodeId) -> bool {
        self.detection.is_held(id)
    }

    /// Live members (alive or suspect), this node included.
    pub fn live_members(&self) -> usize {
        self.table.live_count()
    }

    /// The phi (suspicion level) this node currently computes for member `id`, or `None` if
    /// this node does not watch it (failure detection assigns each member a few observers).
    pub fn phi(&self, id: &NodeId) -> Option<f64> {
        self.detection.phi(id, self.now)
    }

    /// Whether a join is still waiting for an answer.
    pub fn is_joining(&self) -> bool {
        self.lifecycle.is_joining()
    }

    /// Whether the node has finished leaving.
    pub fn has_left(&self) -> bool {
        self.lifecycle.has_left()
    }

    /// Counters and gauges.
    pub fn stats(&self) -> Stats {
        let mut s = self.stats.clone();
        let c = self.detection.counters();
        s.probes = c.probes;
        s.probe_failures = c.probe_failures;
        s.stale_acks = c.stale_acks;
        s.live_members = self.table.live_count();
        s.tombstones = self.table.count(MemberState::Failed) + self.table.count(MemberState::Left);
        s.queued_updates = self.gossip.len();
        s.replay_senders = self.packets.tracked_senders();
        s.broadcasts_dropped = self.gossip.dropped();
        s.health = self.detection.health();
        s
    }

    /// A digest of the whole membership view (every member's id, incarnation and state):
    /// equal digests mean equal views. Tests and fuzzers use it to check that rejected input
    /// changed nothing.
    pub fn view_digest(&self) -> Vec<u8> {
        self.table.digest_bytes()
    }

    /// The node's current time (the newest `now` it has seen).
    pub fn now(&self) -> Timestamp {
        self.now
    }

    /// The keyring sealing and opening gossip, if any.
    pub fn keyring(&self) -> Option<&Keyring> {
        self.packets.keyring()
    }

    // ---- outputs -------------------------------------------------------------------------

    /// The next datagram to send.
    pub fn poll_transmit(&mut self) -> Option<Transmit> {
        let t = self.packets.pop()?;
        self.stats.packets_out += 1;
        self.stats.bytes_out += t.payload.len() as u64;
        Some(t)
    }

    /// The next event.
    pub fn poll_event(&mut self) -> Option<Event> {
        self.events.pop_front()
    }

    /// When `handle_timeout` should next be called. Read it after draining the other outputs.
    pub fn poll_timeout(&self) -> Option<Timestamp> {
        if self.lifecycle.has_left() {
            return None;
        }
        // An idle gossip round would do nothing: its timer lies dormant (`node/rounds.rs`).
        let timers = if self.gossip.is_idle() {
            self.timers.next_except(Timer::Gossip)
        } else {
            self.timers.next()
        };
        let t = crate::timer::earliest(timers, self.detection.next_deadline());
        crate::timer::earliest(t, self.partition.next_deadline())
    }

    // ---- inputs --------------------------------------------------------------------------

    /// Moves the clock to `now` (never back) before an input, and first catches up on the
    /// gossip rounds that lay dormant since the last input (see `node/rounds.rs`).
    fn advance(&mut self, now: Timestamp) {
        if now < self.now {
            self.stats.stale_now += 1;
        } else {
            self.now = now;
        }
        self.skip_idle_gossip_rounds();
    }

    /// Handles one received datagram. A rejected datagram changes nothing but a counter.
    pub fn handle_packet(
        &mut self,
        now: Timestamp,
        from: SocketAddr,
        bytes: &[u8],
    ) -> Result<(), PacketError> {
        self.advance(now);
        self.stats.packets_in += 1;
        self.stats.bytes_in += bytes.len() as u64;
        self.validation.received(from, bytes.len());
        let result = self.process_packet(from, bytes);
        match &result {
            Err(e) => self.stats.dropped[e.index()] += 1,
            Ok(()) => self.after_input(),
        }
        result
    }

    fn process_packet(&mut self, from: SocketAddr, bytes: &[u8]) -> Result<(), PacketError> {
        if self.lifecycle.has_left() {
            return Err(PacketError::NotRunning);
        }
        let packet = self.packets.open(bytes, &mut self.spare)?;
        check_capacity(&self.table, self.config.max_members, &packet)?;
        // Authentic and fresh, from the address a key holder published for its sender.
        if self.packets.keyring().is_some()
            && self
                .table
                .get(&packet.header.from)
                .is_some_and(|m| m.info.gossip_addr() == from)
        {
            self.validation.validate(from);
        }
        // Validated: from here on the packet is applied in full.
        let mut updates = packet.updates;
        for update in updates.drain(..) {
            self.apply_update(update, true);
        }
        self.spare.updates = updates;
        self.handle_message(from, packet.header.from, packet.message);
        Ok(())
    }

    /// Handles timer expiry. Calling it early or twice is harmless.
    pub fn handle_timeout(&mut self, now: Timestamp) {
        self.advance(now);
        let now = self.now;
        if self.lifecycle.has_left() {
            return;
        }
        for timer in Timer::VALUES {
            let due = self.timers.get(timer);
            if !self.timers.take_expired(timer, now) {
                continue;
            }
            let late_by = due.map_or(Duration::ZERO, |d| now.saturating_since(d));
            match timer {
                Timer::JoinRetry => self.on_join_retry(),
                Timer::Heartbeat => self.on_heartbeat(late_by),
                Timer::Probe => self.on_probe(),
                Timer::Gossip => self.on_gossip(),
                Timer::Sync => self.on_sync(),
                Timer::Reconnect => self.on_reconnect(),
                Timer::Reap => self.on_reap(),
                Timer::Leave => self.on_leave_done(),
            }
            if self.lifecycle.has_left() {
                return;
            }
        }
        self.detection_timeouts();
        self.after_input();
    }

    /// Failure-detection deadlines, each handled (and its actions carried out) in turn:
    /// unanswered pings, phi crossings, suspicions, then the partition window.
    fn detection_timeouts(&mut self) {
        let now = self.now;
        for p in self.detection.expired_pings(now) {
            self.detect(|d, v, rng, out| d.ping_expired(v, rng, p, out));
        }
        for subject in self.detection.expired_phi_checks(now) {
            self.detect(|d, v, rng, out| d.phi_check(v, rng, subject, out));
        }
        for subject in self.detection.expired_suspicions(now) {
            self.detect(|d, v, rng, out| d.suspicion_expired(v, rng, subject, out));
        }
        for (id, rejoined) in self.detection.released_holds(now) {
            // Flap damping's hold ended: report the member back now (if it still is).
            let back = self
                .table
                .get(&id)
                .filter(|m| m.state == MemberState::Alive);
            if let Some(m) = back.cloned() {
                self.events.push_back(if rejoined {
                    Event::MemberJoined(m)
                } else {
                    Event::MemberRecovered(m)
                });
            }
        }
        self.observe_partition();
    }

    /// Runs one detection input against a fresh view of the node, then carries out the
    /// actions it returned.
    fn detect(&mut self, input: impl FnOnce(&mut Detection, &View, &mut R, &mut Vec<Action>)) {
        let mut out = Vec::new();
        let v = view!(self);
        input(&mut self.detection, &v, &mut self.rng, &mut out);
        self.run(out);
    }

    /// Carries out detection's actions in order (and any they lead to).
    fn run(&mut self, actions: Vec<Action>) {
        let mut queue = VecDeque::from(actions);
        while let Some(a) = queue.pop_front() {
            match a {
                Action::ToMember { to, message, first } => {
                    self.send_to_member(to, message, first.as_ref())
                }
                // An address taken from a packet, not from the table: a reply.
                Action::ToAddr { dst, to, message } => self.reply(dst, Some(to), message),
                Action::Suspect(subject) => {
                    // The suspicion's own messages come before anything queued after it.
                    for m in self.suspect(subject).into_iter().rev() {
                        queue.push_front(m);
                    }
                }
                Action::Fail { id, incarnation } => {
                    self.stats.failures_declared += 1;
                    let by = self.me.id;
                    self.apply_update(
                        Update::Failed {
                            id,
                            incarnation,
                            by,
                        },
                        true,
                    );
                }
            }
        }
    }

    /// This node suspects `subject` itself (its probes went unanswered).
    fn suspect(&mut self, subject: NodeId) -> Vec<Action> {
        let mut out = Vec::new();
        let m = self.table.get(&subject).filter(|m| !m.state.is_down());
        let Some(m) = m.filter(|_| self.lifecycle.running()) else {
            return out;
        };
        let update = Update::Suspect {
            id: subject,
            incarnation: m.info.incarnation,
            by: self.me.id,
        };
        self.stats.suspicions += 1;
        self.apply_update(update.clone(), true);
        let v = view!(self);
        self.detection.suspected(&v, subject, &update, &mut out);
        out
    }

    /// Feeds the partition watch; a fresh mass loss sweeps (see `partition_watch`).
    fn observe_partition(&mut self) {
        let running = self.lifecycle.running();
        let (verdicts, sweep) = self.partition.observe(&self.table, self.now, running);
        // Nearly always empty: extending the event queue by an empty iterator still cost
        // ~6 % of a settled node's instructions (foca bench, BENCHMARKS.md).
        if !verdicts.is_empty() {
            self.events.extend(verdicts.into_iter().map(Event::from));
        }
        if sweep {
            self.detect(|d, v, rng, out| d.sweep(v, rng, out));
        }
    }

    /// Work due after any input: partition bookkeeping and urgent dissemination.
    fn after_input(&mut self) {
        if self.lifecycle.has_left() {
            return;
        }
        self.observe_partition();
        self.flush_urgent();
    }

    // ---- commands ------------------------------------------------------------------------

    /// Starts joining through `seeds` (gossip addresses): a join request goes to one seed at a
    /// time, moving to the next with exponential backoff until one answers.
    pub fn join(&mut self, now: Timestamp, seeds: &[SocketAddr]) -> Result<(), CommandError> {
        self.advance(now);
        self.lifecycle.join(seeds, self.me.gossip_addr().get())?;
        // Counted from now on, member by member, while the table is small: the reconnect
        // round's first look would otherwise scan the whole table for them.
        self.table.watch_addrs(self.lifecycle.seeds());
        self.send_join();
        Ok(())
    }

    /// Seals every datagram this node sends, and opens every one it receives, with `keyring`
    /// (authenticated encryption, see [`crate::envelope`]); `None` means plaintext, for
    /// trusted networks only. A datagram that fails to open is dropped and counted as
    /// [`PacketError::Unauthenticated`]. Rotate keys by adding the new key on every node,
    /// then making it primary everywhere, then removing the old one.
    ///
    /// Sealed datagrams are also checked for freshness (see [`crate::freshness`]): a replay,
    /// network duplicate or datagram from an older life of its sender is dropped and counted
    /// as [`PacketError::Replayed`]. The first keyring set draws this process's random boot
    /// id from the node's RNG.
    pub fn set_keyring(&mut self, keyring: Option<Keyring>) {
        let rng = &mut self.rng;
        self.packets.set_keyring(keyring, || rng.next_u64());
    }

    /// The keyring, to rotate keys in place (`add_key`, `use_primary`, `remove_key`).
    pub fn keyring_mut(&mut self) -> Option<&mut Keyring> {
        self.packets.keyring_mut()
    }

    /// Sets a tag and publishes it under a new incarnation.
    pub fn set_tag(&mut self, now: Timestamp, key: &str, value: &str) -> Result<(), CommandError> {
        self.advance(now);
        self.lifecycle.check_running()?;
        if self.me.tags.insert(key, value)? {
            self.publish_me();
        }
        Ok(())
    }

    /// Removes a tag and publishes the change under a new incarnation.
    pub fn remove_tag(&mut self, now: Timestamp, key: &str) -> Result<(), CommandError> {
        self.advance(now);
        self.lifecycle.check_running()?;
        if self.me.tags.remove(key) {
            self.publish_me();
        }
        Ok(())
    }

    /// Leaves the cluster gracefully: the "left" news goes straight to several members and
    /// keeps being gossiped for a few rounds, then the node emits [`Event::LeftCluster`] and
    /// stops. Keep driving the node until that event.
    pub fn leave(&mut self, now: Timestamp) -> Result<(), CommandError> {
        self.advance(now);
        self.lifecycle.leave()?;
        self.timers.stop(Timer::JoinRetry);
        let left = Update::Left {
            id: self.me.id,
            incarnation: self.me.incarnation,
        };
        self.table.set_me_state(MemberState::Left, self.now);
        self.gossip.push(&left);
        // Tell up to 2×fanout members at once, each in its own packet with the news first.
        let targets = self.random_peers(self.config.gossip_fanout * 2);
        for id in targets {
            self.send_to_member(id, Message::Gossip, Some(&left));
        }
        let linger = self.config.gossip_interval * 3;
        self.timers.set(Timer::Leave, self.now + linger);
        self.gossip.mark_urgent();
        self.after_input();
        Ok(())
    }

    // ---- rules -----------------------------------------------------------------------------

    fn jittered(&mut self, base: Duration) -> Duration {
        jittered(&mut self.rng, base)
    }

    fn reap_interval(&self) -> Duration {
        (self.config.tombstone_ttl / 4).max(Duration::from_secs(1))
    }

    /// Up to `k` distinct random live peers.
    fn random_peers(&mut self, k: usize) -> Vec<NodeId> {
        random_peers(&mut self.rng, self.table.live_peers(), k)
    }

    /// Sends `message` to `dst`, with `first` (if any) and then queued updates piggybacked.
    fn send(
        &mut self,
        dst: SocketAddr,
        to: Option<NodeId>,
        message: impl Into<Outgoing>,
        first: Option<&Update>,
    ) {
        let limit = retransmit_limit(self.config.retransmit_mult, self.table.live_count());
        let message = message.into();
        self.packets
            .send(dst, to, message, first, Some(&mut self.gossip), limit, None);
    }

    /// Sends `message` back to `dst`, an address taken from a received packet: in full if
    /// `dst` is validated, else within its amplification budget (see `validation`).
    fn reply(&mut self, dst: SocketAddr, to: Option<NodeId>, message: impl Into<Outgoing>) {
        self.reply_with(dst, to, message, true);
    }

    /// Like `reply`; without `piggyback` the datagram carries no queued updates (challenges
    /// and echoes stay small, leaving the budget to the answer that follows them).
    /// Returns whether it was sent.
    fn reply_with(
        &mut self,
        dst: SocketAddr,
        to: Option<NodeId>,
        message: impl Into<Outgoing>,
        piggyback: bool,
    ) -> bool {
        let message = message.into();
        let allowance = self.validation.allowance(&dst);
        let limit = retransmit_limit(self.config.retransmit_mult, self.table.live_count());
        let gossip = piggyback.then_some(&mut self.gossip);
        let sent = self
            .packets
            .send(dst, to, message, None, gossip, limit, allowance);
        if sent == 0 {
            self.stats.replies_limited += 1;
        } else if allowance.is_some() {
            self.validation.sent(dst, sent);
        }
        sent > 0
    }

    /// Asks `dst` to prove it receives at that address (within its budget).
    fn challenge(&mut self, dst: SocketAddr, to: NodeId) {
        self.stats.challenges_sent += 1;
        let token = self.validation.token(&dst, self.now.as_micros());
        self.reply_with(dst, Some(to), Message::Challenge { token }, false);
    }

    fn send_to_member(&mut self, id: NodeId, message: Message, first: Option<&Update>) {
        if let Some(addr) = self.table.get(&id).map(|m| m.info.gossip_addr().get()) {
            self.send(addr, Some(id), message, first);
        }
    }

    fn publish_me(&mut self) {
        // Saturating: forged news at incarnation u64::MAX must not wrap this node back to 0
        // (found by fuzzing; see core/tests/hostile.rs).
        self.me.incarnation = self.me.incarnation.saturating_add(1);
        self.table.set_me(self.me.clone(), self.now);
        self.gossip.push(&Update::Alive(self.me.clone()));
    }

    /// Applies one update, emitting events and (when `rebroadcast`) queueing it for further
    /// dissemination if it was news.
    fn apply_update(&mut self, update: Update, rebroadcast: bool) {
        if update.subject() == self.me.id {
            self.about_me(&update);
            return;
        }
        let (applied, slot) = self.table.apply_member(&update, self.now);
        if applied == Applied::Confirmed {
            let v = view!(self);
            if self
                .detection
                .after_apply(&v, &update, applied, MemberState::Suspect)
            {
                // A new independent confirmation is news worth spreading.
                self.gossip.push(&update);
            }
            return;
        }
        let Some((slot, state, since)) =
            slot.and_then(|s| self.table.at_slot(s).map(|m| (s, m.state, m.state_since())))
        else {
            // Not changed: nothing more to do.
            return;
        };
        self.stats.updates_applied += 1;
        self.sync.view_changed(self.now);
        if matches!(applied, Applied::New | Applied::Rejoined) {
            self.sync.revived(&update.subject());
        }
        let v = view!(self);
        self.detection.after_apply(&v, &update, applied, state);
        if rebroadcast {
            self.gossip.push(&update);
            // Failure-detection news spreads at once, not at the next gossip round.
            if !matches!(applied, Applied::New | Applied::InfoChanged) {
                self.gossip.mark_urgent();
            }
        } else if applied != Applied::New {
            // Learned by sync, not re-gossiped: whatever is still queued about this member is
            // now stale and must not be sent on (it could teach a fresh node an old "alive").
            // A member new to the table has nothing queued: only news about a member in the
            // table (or this node) is ever queued, and reaping takes it out of both; so the
            // lookup is skipped for the N² entries a forming cluster learns by sync.
            self.gossip.remove(&update.subject());
        } else {
            debug_assert!(
                !self.gossip.contains(&update.subject()),
                "news queued about a member the table did not hold"
            );
        }
        // The member as the table now holds it: an alive update's info is what the table
        // stored (moved here, not copied again); other news changed only the state.
        let member = match update {
            Update::Alive(info) => Member::new(info, state, since),
            _ => match self.table.at_slot(slot) {
                Some(m) => m.clone(),
                None => return,
            },
        };
        let event = match (applied, member.state) {
            (Applied::New | Applied::Rejoined, _) => Event::MemberJoined(member),
            (Applied::InfoChanged, _) => Event::MemberUpdated(member),
            (Applied::StateChanged { .. }, MemberState::Suspect) => Event::MemberSuspected(member),
            (Applied::StateChanged { .. }, MemberState::Failed) => Event::MemberFailed(member),
            (Applied::StateChanged { .. }, MemberState::Left) => Event::MemberLeft(member),
            (Applied::StateChanged { .. }, MemberState::Alive) => Event::MemberRecovered(member),
            _ => return,
        };
        let rejoined = applied == Applied::Rejoined;
        if let Some(event) = self.detection.damp(self.now, &self.config, rejoined, event) {
            self.events.push_back(event);
        }
    }

    /// Applies one anti-entropy entry. A tombstone for a member this node never knew is
    /// kept for the rest of its time to live (no event: the application never saw it alive).
    fn apply_entry(&mut self, e: SyncEntry, from_id: NodeId) {
        // Only a suspect or down entry needs to know whether the member is new here; an
        // alive one (nearly all of them, a lookup saved each) is applied as it is.
        if e.state != MemberState::Alive {
            let unknown = e.info.id != self.me.id && self.table.get(&e.info.id).is_none();
            if unknown && e.state.is_down() {
                let age = Duration::from_secs(u64::from(e.down_secs));
                if age < self.config.tombstone_ttl {
                    let since = self.now - age;
                    self.table.insert_tombstone(e.info, e.state, since);
                }
                return;
            }
            if unknown && e.state == MemberState::Suspect {
                // A suspect is still a member, and the entry carries its whole info: learn it
                // (then the suspicion), or a node that restarted would never know it, nor
                // probe it, nor merge with it again if it turns out to be alive.
                self.apply_update(Update::Alive(e.info.clone()), false);
            }
        }
        self.apply_update(entry_update(e, from_id), false);
    }

    /// A sync reply's or push's entries, in order; their emptied vector is kept for the next
    /// packet's (see `wire::Spare`).
    fn apply_entries(&mut self, mut entries: Vec<SyncEntry>, from_id: NodeId) {
        for e in entries.drain(..) {
            self.apply_entry(e, from_id);
        }
        self.spare.entries = entries;
    }

    /// News about this node: refute anything that would override its current record (see
    /// the `refutation` module).
    fn about_me(&mut self, update: &Update) {
        if !self.lifecycle.running() || !must_refute(update, &self.me) {
            return;
        }
        if let Update::Alive(info) = update {
            if info.gossip_addr() != self.me.gossip_addr() && self.conflicts.note(self.now) {
                self.stats.identity_conflicts += 1;
                self.events.push_back(Event::IdentityConflict {
                    other: info.gossip_addr().get(),
                });
            }
        }
        self.me.incarnation = update.incarnation().max(self.me.incarnation);
        self.publish_me();
        self.stats.refutations += 1;
        self.events.push_back(Event::Refuted {
            incarnation: self.me.incarnation,
        });
        self.detection.refuted();
        // Tell whoever accused us, at once.
        if let Some(by) = accuser(update).filter(|b| *b != self.me.id) {
            let alive = Update::Alive(self.me.clone());
            self.send_to_member(by, Message::Gossip, Some(&alive));
        }
        self.gossip.mark_urgent();
    }

    fn handle_message(&mut self, from: SocketAddr, from_id: NodeId, message: Message) {
        // A request echoing a challenge token validates its address first, then is handled
        // as the plain request.
        let message = match message {
            Message::Echo { token } => return self.echoed(from, token),
            Message::JoinEcho { token } => {
                self.echoed(from, token);
                Message::Join
            }
            Message::SyncEcho { seq, digest, token } => {
                self.echoed(from, token);
                Message::Sync { seq, digest }
            }
            m => m,
        };
        match message {
            Message::Gossip | Message::Echo { .. } => {}
            Message::JoinEcho { .. } | Message::SyncEcho { .. } => {}
            Message::Ping { seq } => {
                self.detect(|d, v, _, _| d.on_ping(v, from, from_id));
                // Validation pays off only when the budget would cut news off the ack; when
                // nothing is queued the bare ack fits, and a challenge would be pure overhead.
                if !self.validation.is_validated(&from) && !self.gossip.is_empty() {
                    self.challenge(from, from_id);
                }
                self.reply(from, Some(from_id), Message::Ack { seq });
            }
            Message::Challenge { token } => self.on_challenge(from, from_id, token),
            Message::Ack { seq } => self.detect(|d, v, _, out| d.on_ack(v, from_id, seq, out)),
            Message::PingReq { seq, target } => {
                self.detect(|d, v, _, out| d.on_ping_req(v, from, from_id, seq, target, out))
            }
            Message::IndirectAck { seq, target, ok } => {
                self.detection.on_indirect_ack(seq, target, ok)
            }
            Message::Join if !self.validation.is_validated(&from) => self.challenge(from, from_id),
            Message::Sync { seq, digest } if !self.validation.is_validated(&from) => {
                // Views that agree need only this node's digest back, about the request's
                // own size: it goes within the budget. Anything more waits for validation.
                let diff = self.table.differing_buckets(&digest);
                let answered = diff.is_empty() && {
                    let parts =
                        sync_reply(&self.table, self.now, &self.packets, from_id, seq, &diff);
                    parts.len() == 1
                        && parts
                            .into_iter()
                            .all(|m| self.reply_with(from, Some(from_id), m, false))
                };
                if !answered {
                    self.challenge(from, from_id);
                }
            }
            Message::Join => {
                let all: Vec<usize> = (0..DIGEST_BUCKETS).collect();
                let parts = sync_reply(&self.table, self.now, &self.packets, from_id, 0, &all);
                self.send_all(from, from_id, parts);
            }
            Message::Sync { seq, digest } => {
                let diff = self.table.differing_buckets(&digest);
                let parts = sync_reply(&self.table, self.now, &self.packets, from_id, seq, &diff);
                self.send_all(from, from_id, parts);
            }
            Message::SyncReply {
                seq,
                digest,
                entries,
                last,
                summarized,
            } => {
                self.sync
                    .reply_part(!entries.is_empty() || !digest.is_empty());
                self.apply_entries(entries.into_inner(), from_id);
                if !last {
                    return;
                }
                let seed = self.lifecycle.attempt(&self.config).map(|(s, _)| s);
                let solicited = if seq == 0 {
                    self.finish_join(from)
                } else {
                    self.sync.reply_done(seq, from_id, from)
                };
                if solicited && seq != 0 {
                    self.echoed_sequence(from_id, from);
                }
                if !solicited || digest.is_empty() {
                    return;
                }
                let parts = push_back(
                    &self.table,
                    self.now,
                    &self.packets,
                    from_id,
                    &digest,
                    summarized,
                );
                if seq == 0 && seed == Some(from) {
                    // Once per join, to the seed the operator gave: not a reflection.
                    for m in parts {
                        self.send(from, Some(from_id), m, None);
                    }
                } else if self.validation.is_validated(&from) {
                    self.send_all(from, from_id, parts);
                } else {
                    self.challenge(from, from_id);
                }
            }
            Message::SyncPush { entries } => {
                self.apply_entries(entries.into_inner(), from_id);
            }
            Message::SyncSummary {
                seq,
                bucket,
                split,
                part,
                hashes,
            } => {
                if self.sync.summary_solicited(seq, from_id, from) {
                    self.echoed_sequence(from_id, from);
                    let part = SummaryPart {
                        bucket: usize::from(bucket),
                        split,
                        part,
                    };
                    self.on_summary(from, from_id, part, &hashes);
                }
            }
            Message::SyncWant { bucket, hashes } => {
                self.on_want(from, from_id, usize::from(bucket), &hashes)
            }
        }
    }

    /// A reply to this node's sync request came from `from_id` at `from`, echoing the
    /// request's unguessable sequence: if that is the address the request went to, it
    /// receives there (validated).
    fn echoed_sequence(&mut self, from_id: NodeId, from: SocketAddr) {
        let asked_here = self
            .table
            .get(&from_id)
            .is_none_or(|m| m.info.gossip_addr() == from);
        if asked_here {
            self.validation.validate(from);
        }
    }

    /// A peer wants the entries of `bucket` with the listed hashes: they go back as a
    /// `SyncPush`, to a validated address only (else a challenge).
    fn on_want(&mut self, from: SocketAddr, from_id: NodeId, bucket: usize, hashes: &[u8]) {
        if !self.validation.is_validated(&from) {
            self.challenge(from, from_id);
            return;
        }
        let mut wanted: Vec<u64> = read_hashes(hashes).collect();
        wanted.sort_unstable();
        let mut lists = push_lists(&self.packets, from_id);
        self.table
            .visit_entries_by_hash((bucket, 0, 0), &wanted, true, self.now, |i, s, d| {
                lists.push(i, s, d)
            });
        self.push_entries(from, from_id, lists);
    }

    /// Sends `lists` to a validated address as `SyncPush` parts (nothing if no entry).
    fn push_entries(&mut self, dst: SocketAddr, to: NodeId, lists: EntryLists) {
        if lists.is_empty() {
            return;
        }
        self.send_all(dst, to, push_parts(lists));
    }

    /// A summary of one part of a bucket, from the peer this node asked: ask for the
    /// entries it lacks, push those the peer lacks (see `node/antientropy.rs`).
    fn on_summary(&mut self, from: SocketAddr, from_id: NodeId, at: SummaryPart, hashes: &[u8]) {
        // Only what the part may hold counts; sorted for the lookups.
        let mut theirs: Vec<u64> = Vec::with_capacity(hashes.len() / 8);
        theirs.extend(read_hashes(hashes).filter(|&h| in_part(h, at.split, at.part)));
        theirs.sort_unstable();
        theirs.dedup();
        let mut push = push_lists(&self.packets, from_id);
        let want = self.table.diff_summary(
            (at.bucket, at.split, at.part),
            &theirs,
            self.now,
            |i, s, d| push.push(i, s, d),
        );
        // The bucket differed (that is why it was summarised): keep syncing fast.
        self.sync.reply_part(true);
        if want.is_empty() && push.is_empty() {
            return;
        }
        if !self.validation.is_validated(&from) {
            self.challenge(from, from_id);
            return;
        }
        let room = self.packets.summary_room(from_id).max(1);
        for chunk in want.chunks(room) {
            let m = Message::SyncWant {
                // Invariant: `at.bucket` came from a u8.
                bucket: at.bucket as u8,
                hashes: write_hashes(chunk),
            };
            self.reply(from, Some(from_id), m);
        }
        self.push_entries(from, from_id, push);
    }

    /// `from` echoed `token`: validated if it is this node's token for `from`.
    fn echoed(&mut self, from: SocketAddr, token: u64) {
        if self.validation.check(&from, self.now.as_micros(), token) {
            self.validation.validate(from);
        } else {
            self.stats.bad_echoes += 1;
        }
    }

    /// `from` asks this node to prove it receives at its address. A join or sync request
    /// this node sent there is sent again carrying the token (one datagram: nothing can
    /// overtake the echo); anything else gets a bare `Echo` within `from`'s budget.
    fn on_challenge(&mut self, from: SocketAddr, from_id: NodeId, token: u64) {
        // The seed of a pending join was chosen by the operator, not by a packet.
        let seed = self.lifecycle.attempt(&self.config).map(|(s, _)| s);
        if seed == Some(from) {
            self.send_join_with(Message::JoinEcho { token });
            return;
        }
        // A sync request goes again only to the address it went to, once per request.
        let asked_here = self
            .table
            .get(&from_id)
            .is_some_and(|m| m.info.gossip_addr() == from);
        if let Some(seq) = self.sync.challenged(from_id, from, asked_here) {
            let digest = antientropy::digest_of(&self.table);
            let m = Message::SyncEcho { seq, digest, token };
            self.send(from, Some(from_id), m, None);
            return;
        }
        self.reply_with(from, Some(from_id), Message::Echo { token }, false);
    }

    /// Sends table parts to a validated address (callers check).
    fn send_all(&mut self, dst: SocketAddr, to: NodeId, messages: Vec<Outgoing>) {
        for m in messages {
            self.reply(dst, Some(to), m);
        }
    }
}

/// One part of one bucket of a sync summary.
#[derive(Clone, Copy, Debug)]
struct SummaryPart {
    bucket: usize,
    split: u8,
    part: u16,
}

#[cfg(test)]
mod tests;
