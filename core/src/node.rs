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
use crate::dissemination::{retransmit_limit, Dissemination, UrgentRound};
use crate::envelope::{self, Keyring};
use crate::membership::{Applied, Member, MemberInfo, MemberState, MemberTable, SyncEntry, Update};
use crate::partition::PartitionEvent;
use crate::stats::Stats;
use crate::timer::{Timer, TimerTable};
use crate::wire::bounded::{BoundedString, BoundedVec};
use crate::wire::{self, Header, Message, PacketBuilder, DIGEST_BUCKETS, MAX_SYNC_ENTRIES};
use crate::{CommandError, ConfigError, NodeId, PacketError, Timestamp};
use core::net::SocketAddr;
use core::time::Duration;
use rand_core::RngCore;
use std::collections::VecDeque;

mod antientropy;
mod detection;
mod event;
mod lifecycle;
mod random;
mod refutation;

use antientropy::{chunk_entries, AntiEntropy};
use detection::{Action, Detection, View};
pub use event::{Event, Identity, Transmit};
use lifecycle::Lifecycle;
use random::{jittered, random_peers};
use refutation::{must_refute, Conflicts};

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
        }
    };
}

/// A cluster member: the sans-IO state machine.
#[derive(Debug)]
pub struct Node<R> {
    config: Config,
    cluster: u32,
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
    transmits: VecDeque<Transmit>,
    events: VecDeque<Event>,
    stats: Stats,
    keyring: Option<Keyring>,
}

/// Turns a sync entry into the update it stands for, attributing suspicion to `by`.
fn entry_update(e: SyncEntry, by: NodeId) -> Update {
    let id = e.info.id;
    let incarnation = e.info.incarnation;
    match e.state {
        MemberState::Alive => Update::Alive(e.info),
        MemberState::Suspect => Update::Suspect {
            id,
            incarnation,
            by,
        },
        MemberState::Failed => Update::Failed {
            id,
            incarnation,
            by,
        },
        MemberState::Left => Update::Left { id, incarnation },
    }
}

impl<R: RngCore> Node<R> {
    /// A node that is, until it joins, a cluster of one. Validates `config` and `identity`.
    pub fn new(
        config: Config,
        identity: Identity,
        rng: R,
        now: Timestamp,
    ) -> Result<Self, ConfigError> {
        config.validate()?;
        let name = BoundedString::new(identity.name).ok_or(ConfigError::Invalid {
            field: "name",
            reason: "must be at most 64 bytes",
        })?;
        let me = MemberInfo {
            id: identity.id,
            name,
            gossip_addr: identity.gossip_addr,
            rpc_addr: identity.rpc_addr,
            incarnation: identity.incarnation,
            tags: identity.tags,
        };
        let mut node = Node {
            cluster: config.cluster_hash(),
            table: MemberTable::new(me.clone(), now),
            detection: Detection::new(&config),
            config,
            rng,
            me,
            gossip: Dissemination::new(),
            timers: TimerTable::default(),
            now,
            lifecycle: Lifecycle::new(),
            sync: AntiEntropy::new(now),
            conflicts: Conflicts::default(),
            transmits: VecDeque::new(),
            events: VecDeque::new(),
            stats: Stats::default(),
            keyring: None,
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
        s.tombstones = self.table.iter().filter(|m| m.state.is_down()).count();
        s.queued_updates = self.gossip.len();
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
        self.keyring.as_ref()
    }

    // ---- outputs -------------------------------------------------------------------------

    /// The next datagram to send.
    pub fn poll_transmit(&mut self) -> Option<Transmit> {
        let t = self.transmits.pop_front()?;
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
        [self.timers.next(), self.detection.next_deadline()]
            .into_iter()
            .flatten()
            .min()
    }

    // ---- inputs --------------------------------------------------------------------------

    fn advance(&mut self, now: Timestamp) {
        if now < self.now {
            self.stats.stale_now += 1;
        } else {
            self.now = now;
        }
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
        if bytes.len() > self.config.mtu {
            return Err(PacketError::TooLarge { len: bytes.len() });
        }
        let opened;
        let bytes = match &self.keyring {
            Some(k) => {
                opened = k.open(bytes)?;
                &opened[..]
            }
            None => bytes,
        };
        let packet = wire::decode(bytes, self.payload_budget())?;
        let header = packet.header;
        if header.cluster != self.cluster {
            return Err(PacketError::WrongCluster);
        }
        if header.to.is_some_and(|to| to != self.me.id) {
            return Err(PacketError::WrongRecipient);
        }
        if header.from == self.me.id {
            return Err(PacketError::FromSelf);
        }
        self.check_capacity(&packet.updates, &packet.message)?;
        // Validated: from here on the packet is applied in full.
        for update in packet.updates {
            self.apply_update(update, true);
        }
        self.handle_message(from, header.from, packet.message);
        Ok(())
    }

    /// Refuses, before any change, a packet that would grow the table past `max_members`.
    fn check_capacity(&self, updates: &[Update], message: &Message) -> Result<(), PacketError> {
        let room = self.config.max_members.saturating_sub(self.table.len());
        let mut new_ids: Vec<NodeId> = updates
            .iter()
            .filter_map(|u| match u {
                Update::Alive(i) => Some(i.id),
                _ => None,
            })
            .collect();
        if let Message::SyncReply { entries, .. } | Message::SyncPush { entries } = message {
            new_ids.extend(entries.iter().map(|e| e.info.id));
        }
        new_ids.retain(|id| self.table.get(id).is_none());
        if new_ids.len() <= room {
            return Ok(());
        }
        new_ids.sort_unstable();
        new_ids.dedup();
        if new_ids.len() <= room {
            Ok(())
        } else {
            Err(PacketError::MembersFull)
        }
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
        let mut out = Vec::new();
        for p in self.detection.expired_pings(now) {
            let v = view!(self);
            self.detection.ping_expired(&v, &mut self.rng, p, &mut out);
            self.run(&mut out);
        }
        for subject in self.detection.expired_phi_checks(now) {
            let v = view!(self);
            self.detection
                .phi_check(&v, &mut self.rng, subject, &mut out);
            self.run(&mut out);
        }
        for subject in self.detection.expired_suspicions(now) {
            let v = view!(self);
            self.detection.suspicion_expired(&v, subject, &mut out);
            self.run(&mut out);
        }
        self.observe_partition();
    }

    /// Carries out detection's actions in order (and any they lead to).
    fn run(&mut self, actions: &mut Vec<Action>) {
        let mut queue: VecDeque<Action> = actions.drain(..).collect();
        while let Some(a) = queue.pop_front() {
            match a {
                Action::ToMember { to, message, first } => {
                    self.send_to_member(to, message, first.as_ref())
                }
                Action::ToAddr { dst, to, message } => self.send(dst, Some(to), message, None),
                Action::Suspect(subject) => {
                    let mut more = Vec::new();
                    self.suspect(subject, &mut more);
                    // The suspicion's own messages come before anything queued after it.
                    for m in more.into_iter().rev() {
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
                Action::Partition(e) => self.events.push_back(match e {
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
                }),
            }
        }
    }

    /// This node suspects `subject` itself (its probes went unanswered).
    fn suspect(&mut self, subject: NodeId, out: &mut Vec<Action>) {
        if !self.lifecycle.running() {
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
        let v = view!(self);
        self.detection.suspected(&v, subject, &update, out);
    }

    /// Feeds the partition detector (see [`Detection::observe_partition`]).
    fn observe_partition(&mut self) {
        let mut out = Vec::new();
        let v = view!(self);
        self.detection
            .observe_partition(&v, &mut self.rng, &mut out);
        self.run(&mut out);
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
        self.lifecycle.join(seeds, self.me.gossip_addr)?;
        self.send_join();
        Ok(())
    }

    /// Seals every datagram this node sends, and opens every one it receives, with `keyring`
    /// (authenticated encryption, see [`crate::envelope`]); `None` means plaintext, for
    /// trusted networks only. A datagram that fails to open is dropped and counted as
    /// [`PacketError::Unauthenticated`]. Rotate keys by adding the new key on every node,
    /// then making it primary everywhere, then removing the old one.
    pub fn set_keyring(&mut self, keyring: Option<Keyring>) {
        self.keyring = keyring;
    }

    /// The keyring, to rotate keys in place (`add_key`, `use_primary`, `remove_key`).
    pub fn keyring_mut(&mut self) -> Option<&mut Keyring> {
        self.keyring.as_mut()
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

    fn header(&self, to: Option<NodeId>) -> Header {
        Header {
            cluster: self.cluster,
            from: self.me.id,
            to,
        }
    }

    fn retransmit_limit(&self) -> u32 {
        retransmit_limit(self.config.retransmit_mult, self.table.live_count())
    }

    /// Sends `message` to `dst`, with `first` (if any) and then queued updates piggybacked.
    fn send(
        &mut self,
        dst: SocketAddr,
        to: Option<NodeId>,
        message: Message,
        first: Option<&Update>,
    ) {
        let header = self.header(to);
        let Some(mut b) = PacketBuilder::new(&header, &message, self.payload_budget()) else {
            return;
        };
        if let Some(u) = first {
            b.try_push(u);
        }
        let limit = self.retransmit_limit();
        self.gossip.fill(&mut b, limit);
        let mut payload = b.finish();
        if let Some(k) = &self.keyring {
            // Invariant: the payload is at most mtu - OVERHEAD <= MAX_SEALED - OVERHEAD, the
            // only size `seal` refuses.
            payload = k
                .seal(&mut self.rng, &payload)
                .expect("payload within the sealing bound");
        }
        self.transmits.push_back(Transmit { dst, payload });
    }

    fn send_to_member(&mut self, id: NodeId, message: Message, first: Option<&Update>) {
        if let Some(addr) = self.table.get(&id).map(|m| m.info.gossip_addr) {
            self.send(addr, Some(id), message, first);
        }
    }

    /// Bytes a packet may use before sealing: the MTU less the envelope, when sealing.
    fn payload_budget(&self) -> usize {
        self.config.mtu
            - if self.keyring.is_some() {
                envelope::OVERHEAD
            } else {
                0
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
        let applied = self.table.apply(&update, self.now);
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
        if !applied.changed() {
            return;
        }
        self.stats.updates_applied += 1;
        self.sync.view_changed(self.now);
        // Invariant: a changed update leaves its subject in the table.
        let member = self
            .table
            .get(&update.subject())
            .cloned()
            .expect("applied member present");
        if matches!(applied, Applied::New | Applied::Rejoined) {
            self.sync.revived(&member.info.id);
        }
        let v = view!(self);
        self.detection
            .after_apply(&v, &update, applied, member.state);
        if rebroadcast {
            self.gossip.push(&update);
            // Failure-detection news spreads at once, not at the next gossip round.
            if !matches!(applied, Applied::New | Applied::InfoChanged) {
                self.gossip.mark_urgent();
            }
        } else {
            // Learned by sync, not re-gossiped: whatever is still queued about this member is
            // now stale and must not be sent on (it could teach a fresh node an old "alive").
            self.gossip.remove(&update.subject());
        }
        let event = match (applied, member.state) {
            (Applied::New | Applied::Rejoined, _) => Event::MemberJoined(member),
            (Applied::InfoChanged, _) => Event::MemberUpdated(member),
            (Applied::StateChanged { .. }, MemberState::Suspect) => Event::MemberSuspected(member),
            (Applied::StateChanged { .. }, MemberState::Failed) => Event::MemberFailed(member),
            (Applied::StateChanged { .. }, MemberState::Left) => Event::MemberLeft(member),
            (Applied::StateChanged { .. }, MemberState::Alive) => Event::MemberRecovered(member),
            _ => return,
        };
        self.events.push_back(event);
    }

    /// Applies one anti-entropy entry. A tombstone for a member this node never knew is
    /// kept for the rest of its time to live (no event: the application never saw it alive).
    fn apply_entry(&mut self, e: SyncEntry, from_id: NodeId) {
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
            // (then the suspicion), or a node that restarted would never know it, nor probe it,
            // nor merge with it again if it turns out to be alive.
            self.apply_update(Update::Alive(e.info.clone()), false);
        }
        self.apply_update(entry_update(e, from_id), false);
    }

    /// News about this node: refute anything that would override its current record (see
    /// the `refutation` module).
    fn about_me(&mut self, update: &Update) {
        if !self.lifecycle.running() || !must_refute(update, &self.me) {
            return;
        }
        if let Update::Alive(info) = update {
            if info.gossip_addr != self.me.gossip_addr && self.conflicts.note(self.now) {
                self.stats.identity_conflicts += 1;
                self.events.push_back(Event::IdentityConflict {
                    other: info.gossip_addr,
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
        let accuser = match update {
            Update::Suspect { by, .. } | Update::Failed { by, .. } => Some(*by),
            _ => None,
        };
        let alive = Update::Alive(self.me.clone());
        if let Some(by) = accuser.filter(|b| *b != self.me.id) {
            self.send_to_member(by, Message::Gossip, Some(&alive));
        }
        self.gossip.mark_urgent();
    }

    fn handle_message(&mut self, from: SocketAddr, from_id: NodeId, message: Message) {
        match message {
            Message::Gossip => {}
            Message::Ping { seq } => self.send(from, Some(from_id), Message::Ack { seq }, None),
            Message::Ack { seq } => {
                let mut out = Vec::new();
                let v = view!(self);
                self.detection.on_ack(&v, from_id, seq, &mut out);
                self.run(&mut out);
            }
            Message::PingReq { seq, target, .. } => {
                let mut out = Vec::new();
                let v = view!(self);
                self.detection
                    .on_ping_req(&v, from, from_id, seq, target, &mut out);
                self.run(&mut out);
            }
            Message::IndirectAck { seq, target, ok } => {
                self.detection.on_indirect_ack(seq, target, ok)
            }
            Message::Join => {
                let all: Vec<usize> = (0..DIGEST_BUCKETS).collect();
                self.send_sync_reply(from, from_id, 0, &all);
            }
            Message::Sync { seq, digest } => {
                let diff = self.table.differing_buckets(&digest);
                self.send_sync_reply(from, from_id, seq, &diff);
            }
            Message::SyncReply {
                seq,
                digest,
                entries,
                last,
            } => {
                self.sync
                    .reply_part(!entries.is_empty() || !digest.is_empty());
                for e in entries.into_inner() {
                    self.apply_entry(e, from_id);
                }
                if !last {
                    return;
                }
                let solicited = if seq == 0 {
                    self.finish_join(from)
                } else {
                    self.sync.reply_done(seq, from_id, from)
                };
                if solicited && !digest.is_empty() {
                    let diff = self.table.differing_buckets(&digest);
                    let entries = self.table.entries_in(&diff, self.now);
                    for chunk in self
                        .chunk_entries(entries, from_id, |entries, _| Message::SyncPush { entries })
                    {
                        self.send(from, Some(from_id), chunk, None);
                    }
                }
            }
            Message::SyncPush { entries } => {
                for e in entries.into_inner() {
                    self.apply_entry(e, from_id);
                }
            }
        }
    }

    /// Splits `entries` into messages built by `make(entries, is_last)`, each within the MTU.
    fn chunk_entries(
        &self,
        entries: Vec<SyncEntry>,
        to: NodeId,
        make: impl Fn(BoundedVec<SyncEntry, MAX_SYNC_ENTRIES>, bool) -> Message,
    ) -> Vec<Message> {
        // Budget: the MTU less the message built with no entries (largest form, the last
        // part), less a few bytes for the entries count and the empty updates list.
        let empty =
            wire::encode_value(&(self.header(Some(to)), make(BoundedVec::new(), true))).len();
        let budget = self.payload_budget().saturating_sub(empty + 1 + 3 + 1);
        chunk_entries(entries, budget, make)
    }

    fn send_sync_reply(&mut self, dst: SocketAddr, to: NodeId, seq: u32, buckets: &[usize]) {
        let entries = self.table.entries_in(buckets, self.now);
        let digest = BoundedVec::try_from_vec(self.table.digest_bytes())
            .expect("digest has DIGEST_BYTES bytes");
        let in_sync = buckets.is_empty();
        let parts = self.chunk_entries(entries, to, |entries, last| Message::SyncReply {
            seq,
            digest: if last && !in_sync {
                digest.clone()
            } else {
                BoundedVec::new()
            },
            entries,
            last,
        });
        for m in parts {
            self.send(dst, Some(to), m, None);
        }
    }

    fn send_join(&mut self) {
        let Some((seed, backoff)) = self.lifecycle.attempt(&self.config) else {
            return;
        };
        let me = Update::Alive(self.me.clone());
        self.send(seed, None, Message::Join, Some(&me));
        self.timers.set(Timer::JoinRetry, self.now + backoff);
    }

    fn on_join_retry(&mut self) {
        if self.lifecycle.next_attempt() {
            self.send_join();
        }
    }

    /// A join reply's last part arrived; returns whether a join was pending.
    fn finish_join(&mut self, via: SocketAddr) -> bool {
        if !self.lifecycle.joined() {
            return false;
        }
        self.timers.stop(Timer::JoinRetry);
        self.events.push_back(Event::Joined {
            via,
            members: self.table.live_count(),
        });
        // Anti-entropy soon after joining: the seed's view may have been partial.
        let soon = self.jittered(self.config.gossip_interval * 2);
        self.timers.set(Timer::Sync, self.now + soon);
        true
    }

    fn on_gossip(&mut self) {
        let next = self.now + self.config.gossip_interval;
        self.timers.set(Timer::Gossip, next);
        if self.gossip.is_empty() {
            return;
        }
        for id in self.random_peers(self.config.gossip_fanout) {
            if self.gossip.is_empty() {
                break;
            }
            self.send_to_member(id, Message::Gossip, None);
        }
    }

    fn on_sync(&mut self) {
        let base = self.sync.next_round_in(self.now, &self.config);
        let next = self.jittered(base);
        self.timers.set(Timer::Sync, self.now + next);
        if !self.lifecycle.running() {
            return;
        }
        let Some(&peer) = self.random_peers(1).first() else {
            return;
        };
        let seq = self.sync.start_sync(peer);
        let digest = self.digest();
        self.send_to_member(peer, Message::Sync { seq, digest }, None);
    }

    /// The view's bucket digest, as sent on the wire.
    fn digest(&self) -> BoundedVec<u8, { wire::DIGEST_BYTES }> {
        // Invariant: the table's digest always has DIGEST_BYTES bytes.
        BoundedVec::try_from_vec(self.table.digest_bytes()).expect("digest has DIGEST_BYTES bytes")
    }

    /// Reconnect round: one sync request to a random failed or reaped member or unreached
    /// seed (see the `antientropy` module).
    fn on_reconnect(&mut self) {
        let next = self.jittered(self.config.reconnect_interval * 2);
        self.timers.set(Timer::Reconnect, self.now + next);
        if !self.lifecycle.running() {
            return;
        }
        let target = self.sync.reconnect_round(
            self.now,
            &self.config,
            &self.table,
            self.lifecycle.seeds(),
            &mut self.rng,
        );
        if let Some(r) = target {
            let digest = self.digest();
            let seq = r.seq;
            self.send(r.addr, r.id, Message::Sync { seq, digest }, None);
        }
    }

    /// Heartbeat round (see [`Detection::heartbeat_round`]).
    fn on_heartbeat(&mut self, late_by: Duration) {
        let next = self.now + self.config.heartbeat_interval;
        self.timers.set(Timer::Heartbeat, next);
        let mut out = Vec::new();
        let v = view!(self);
        self.detection.heartbeat_round(&v, late_by, &mut out);
        self.run(&mut out);
    }

    /// Periodic SWIM probe (see [`Detection::probe_round`]).
    fn on_probe(&mut self) {
        let next = self.now + self.config.probe_interval;
        self.timers.set(Timer::Probe, next);
        let mut out = Vec::new();
        let v = view!(self);
        self.detection.probe_round(&v, &mut self.rng, &mut out);
        self.run(&mut out);
    }

    /// Gossips at once when failure-detection news is queued, as often as dissemination
    /// allows; when it is too soon, the next regular round is pulled forward instead.
    fn flush_urgent(&mut self) {
        if self.lifecycle.has_left() {
            return;
        }
        match self
            .gossip
            .urgent_round(self.now, self.config.gossip_interval)
        {
            UrgentRound::Idle => {}
            UrgentRound::NotBefore(at) => {
                if self.timers.get(Timer::Gossip).is_none_or(|t| t > at) {
                    self.timers.set(Timer::Gossip, at);
                }
            }
            UrgentRound::Now => {
                for id in self.random_peers(self.config.gossip_fanout) {
                    if self.gossip.is_empty() {
                        break;
                    }
                    self.send_to_member(id, Message::Gossip, None);
                }
            }
        }
    }

    fn on_reap(&mut self) {
        self.timers
            .set(Timer::Reap, self.now + self.reap_interval());
        let cutoff = self.now - self.config.tombstone_ttl;
        for id in self.table.tombstones_before(cutoff) {
            if let Some(m) = self.table.remove(&id) {
                if m.state == MemberState::Failed {
                    self.sync.bury(id, m.info.gossip_addr, self.now);
                }
            }
            self.gossip.remove(&id);
            self.detection.reaped(&id);
            self.events.push_back(Event::MemberReaped(id));
        }
    }

    fn on_leave_done(&mut self) {
        self.lifecycle.left();
        self.timers = TimerTable::default();
        self.events.push_back(Event::LeftCluster);
    }
}

#[cfg(test)]
mod tests;
