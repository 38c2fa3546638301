//! The one public machine: a cluster member.
//!
//! [`Node`] is the only type with `handle_*` inputs and `poll_*` outputs. It owns the member
//! table, the dissemination queue and the timers, and wires the rule modules together.
//!
//! ## Drive contract
//! After *every* input (`handle_packet`, `handle_timeout`, any command), drain
//! [`Node::poll_transmit`] and [`Node::poll_event`] to `None`, then read
//! [`Node::poll_timeout`] last and arm one timer for it. Inputs carry `now`; an older `now`
//! than one already seen never moves the node's time back.

use crate::config::Config;
use crate::dissemination::{retransmit_limit, Dissemination};
use crate::envelope::{self, Keyring};
use crate::membership::{
    Applied, Member, MemberInfo, MemberState, MemberTable, SyncEntry, Tags, Update,
};
use crate::stats::Stats;
use crate::timer::{Timer, TimerTable};
use crate::wire::bounded::{BoundedString, BoundedVec};
use crate::wire::{self, Header, Message, PacketBuilder, DIGEST_BUCKETS, MAX_SYNC_ENTRIES};
use crate::{CommandError, ConfigError, NodeId, PacketError, Timestamp};
use core::net::SocketAddr;
use core::time::Duration;
use rand_core::RngCore;
use std::collections::VecDeque;

mod fd;

/// Who a node is when it starts.
#[derive(Clone, Debug, PartialEq)]
pub struct Identity {
    /// Stable id (see [`NodeId::from_name`]).
    pub id: NodeId,
    /// Human-readable name, at most [`crate::membership::MAX_NAME`] bytes.
    pub name: String,
    /// Advertised gossip address (what peers send to; may differ from the bound one).
    pub gossip_addr: SocketAddr,
    /// Advertised RPC address, if this node serves RPC.
    pub rpc_addr: Option<SocketAddr>,
    /// Initial tags.
    pub tags: Tags,
    /// Starting incarnation. A restarted process that remembers nothing may start at 0: when
    /// it hears of its previous life it raises its incarnation above it. Adapters may seed it
    /// from wall-clock seconds to make that unnecessary.
    pub incarnation: u64,
}

impl Identity {
    /// An identity named `name` (id derived from the name) at `gossip_addr`, no RPC address,
    /// no tags, incarnation 0.
    pub fn new(name: &str, gossip_addr: SocketAddr) -> Self {
        Identity {
            id: NodeId::from_name(name),
            name: name.to_owned(),
            gossip_addr,
            rpc_addr: None,
            tags: Tags::new(),
            incarnation: 0,
        }
    }
}

/// A datagram to send.
#[derive(Clone, PartialEq, Eq, Debug)]
pub struct Transmit {
    /// Destination gossip address.
    pub dst: SocketAddr,
    /// The datagram, at most the configured MTU.
    pub payload: Vec<u8>,
}

/// Something the application may want to know.
#[derive(Clone, PartialEq, Debug)]
pub enum Event {
    /// This node's join was answered: it now holds the cluster's state.
    Joined {
        /// The seed that answered.
        via: SocketAddr,
        /// Live members known right after joining, this node included.
        members: usize,
    },
    /// A member became known and alive (first time, or back after being down).
    MemberJoined(Member),
    /// An alive member published new info (tags or addresses) at a higher incarnation.
    MemberUpdated(Member),
    /// A member is suspected of having failed.
    MemberSuspected(Member),
    /// A suspected member refuted the suspicion.
    MemberRecovered(Member),
    /// A member was declared failed.
    MemberFailed(Member),
    /// A member left on purpose.
    MemberLeft(Member),
    /// A tombstone was reaped: the member is forgotten.
    MemberReaped(NodeId),
    /// This node heard news about itself it had to refute, and raised its incarnation.
    Refuted {
        /// The new incarnation.
        incarnation: u64,
    },
    /// This node finished leaving; it sends and accepts nothing more.
    LeftCluster,
    /// Too few members of the last stable view are reachable: this node is probably cut off
    /// (`minority`) or the cluster lost many members at once.
    PartitionDetected {
        /// Reachable members, this node included.
        reachable: usize,
        /// Members in the last stable view.
        known: usize,
        /// Whether this node's side holds less than the quorum.
        minority: bool,
    },
    /// Enough members are reachable again.
    PartitionHealed {
        /// Reachable members, this node included.
        reachable: usize,
        /// Members in the last stable view.
        known: usize,
    },
    /// Another live process claims this node's id (the same name) from another address: each
    /// keeps refuting the other. Reported, never merged silently; give each process its own
    /// name. Raised after repeated refutations in a short window (a restart on a new address
    /// refutes its previous life once), at most once per window.
    IdentityConflict {
        /// The other claimant's gossip address.
        other: SocketAddr,
    },
}

/// Refutations of an "alive" from another address within this window that make a conflict.
const CONFLICT_WINDOW: Duration = Duration::from_secs(30);
/// How many such refutations within the window.
const CONFLICT_REFUTATIONS: usize = 3;

#[derive(Clone, Debug)]
struct Joining {
    seeds: Vec<SocketAddr>,
    next: usize,
    attempt: u32,
}

#[derive(Clone, Copy, PartialEq, Eq, Debug)]
enum Status {
    Running,
    Leaving,
    Left,
}

/// A cluster member: the sans-IO state machine.
#[derive(Debug)]
pub struct Node<R> {
    config: Config,
    cluster: u32,
    rng: R,
    me: MemberInfo,
    status: Status,
    table: MemberTable,
    gossip: Dissemination,
    timers: TimerTable,
    now: Timestamp,
    joining: Option<Joining>,
    /// The seeds this node was last asked to join through. Kept after joining: the reconnect
    /// round contacts one that is not a live member, so groups that formed apart (each joined
    /// through the other's absent seeds) still find each other.
    seeds: Vec<SocketAddr>,
    sync_seq: u32,
    outstanding_sync: Option<(u32, NodeId)>,
    /// A sync sent to a seed address whose member is unknown: answered from that address.
    reconnect_seq: Option<(u32, SocketAddr)>,
    /// Recent refutations of "alive" records about this node from other addresses, and when
    /// a conflict was last reported.
    conflicts: VecDeque<Timestamp>,
    conflict_reported: Option<Timestamp>,
    /// When this node's view last changed.
    last_change: Timestamp,
    /// Whether the last sync exchange found the two views different (either direction).
    sync_found_diff: bool,
    transmits: VecDeque<Transmit>,
    events: VecDeque<Event>,
    stats: Stats,
    fd: fd::Fd,
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
        let config_for_fd = config.clone();
        let mut node = Node {
            cluster: config.cluster_hash(),
            table: MemberTable::new(me.clone(), now),
            config,
            rng,
            me,
            status: Status::Running,
            gossip: Dissemination::new(),
            timers: TimerTable::default(),
            now,
            joining: None,
            seeds: Vec::new(),
            sync_seq: 0,
            outstanding_sync: None,
            reconnect_seq: None,
            conflicts: VecDeque::new(),
            conflict_reported: None,
            last_change: now,
            sync_found_diff: false,
            transmits: VecDeque::new(),
            events: VecDeque::new(),
            stats: Stats::default(),
            fd: fd::Fd::new(&config_for_fd),
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
        self.fd_phi(id)
    }

    /// Whether a join is still waiting for an answer.
    pub fn is_joining(&self) -> bool {
        self.joining.is_some()
    }

    /// Whether the node has finished leaving.
    pub fn has_left(&self) -> bool {
        self.status == Status::Left
    }

    /// Counters and gauges.
    pub fn stats(&self) -> Stats {
        let mut s = self.stats.clone();
        s.live_members = self.table.live_count();
        s.tombstones = self.table.iter().filter(|m| m.state.is_down()).count();
        s.queued_updates = self.gossip.len();
        s.broadcasts_dropped = self.gossip.dropped();
        s.health = self.fd_health();
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
        if self.status == Status::Left {
            return None;
        }
        [self.timers.next(), self.fd.next_deadline()]
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
        if self.status == Status::Left {
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
        if self.status == Status::Left {
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
            if self.status == Status::Left {
                return;
            }
        }
        self.fd_timeouts();
        self.after_input();
    }

    /// Work due after any input: partition bookkeeping and urgent dissemination.
    fn after_input(&mut self) {
        if self.status == Status::Left {
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
        if self.status != Status::Running {
            return Err(CommandError::Left);
        }
        let seeds: Vec<SocketAddr> = seeds
            .iter()
            .copied()
            .filter(|s| *s != self.me.gossip_addr)
            .collect();
        if seeds.is_empty() {
            return Err(CommandError::NoSeeds);
        }
        self.seeds = seeds.clone();
        self.joining = Some(Joining {
            seeds,
            next: 0,
            attempt: 0,
        });
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
        if self.status != Status::Running {
            return Err(CommandError::Left);
        }
        if self.me.tags.insert(key, value)? {
            self.publish_me();
        }
        Ok(())
    }

    /// Removes a tag and publishes the change under a new incarnation.
    pub fn remove_tag(&mut self, now: Timestamp, key: &str) -> Result<(), CommandError> {
        self.advance(now);
        if self.status != Status::Running {
            return Err(CommandError::Left);
        }
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
        if self.status != Status::Running {
            return Err(CommandError::Left);
        }
        self.status = Status::Leaving;
        self.joining = None;
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
        self.fd.urgent = true;
        self.after_input();
        Ok(())
    }

    // ---- rules -----------------------------------------------------------------------------

    fn jittered(&mut self, base: Duration) -> Duration {
        // Uniform in [base/2, base]: spreads periodic work so nodes do not synchronise.
        let micros = base.as_micros() as u64;
        let half = micros / 2;
        Duration::from_micros(half + self.rng.next_u64() % (micros - half + 1))
    }

    fn reap_interval(&self) -> Duration {
        (self.config.tombstone_ttl / 4).max(Duration::from_secs(1))
    }

    fn rand_below(&mut self, n: usize) -> usize {
        ((u128::from(self.rng.next_u64()) * n as u128) >> 64) as usize
    }

    /// Up to `k` distinct random live peers.
    fn random_peers(&mut self, k: usize) -> Vec<NodeId> {
        let n = self.table.live_peers().len();
        if k >= n {
            return self.table.live_peers().to_vec();
        }
        let mut out: Vec<NodeId> = Vec::with_capacity(k);
        while out.len() < k {
            let i = self.rand_below(n);
            let id = self.table.live_peers()[i];
            if !out.contains(&id) {
                out.push(id);
            }
        }
        out
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
            self.fd_after_apply(&update, applied, MemberState::Suspect);
            return;
        }
        if !applied.changed() {
            return;
        }
        self.stats.updates_applied += 1;
        self.last_change = self.now;
        // Invariant: a changed update leaves its subject in the table.
        let member = self
            .table
            .get(&update.subject())
            .cloned()
            .expect("applied member present");
        self.fd_after_apply(&update, applied, member.state);
        if rebroadcast {
            self.gossip.push(&update);
            // Failure-detection news spreads at once, not at the next gossip round.
            if !matches!(applied, Applied::New | Applied::InfoChanged) {
                self.fd.urgent = true;
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

    /// News about this node: refute anything that would override its current record. Only the
    /// node itself ever raises its own incarnation.
    fn about_me(&mut self, update: &Update) {
        if self.status != Status::Running {
            return;
        }
        let inc = update.incarnation();
        let must_refute = match update {
            Update::Alive(info) => {
                inc > self.me.incarnation || (inc == self.me.incarnation && *info != self.me)
            }
            _ => inc >= self.me.incarnation,
        };
        if must_refute {
            if let Update::Alive(info) = update {
                if info.gossip_addr != self.me.gossip_addr {
                    self.note_identity_conflict(info.gossip_addr);
                }
            }
            self.me.incarnation = inc.max(self.me.incarnation);
            self.publish_me();
            self.stats.refutations += 1;
            self.events.push_back(Event::Refuted {
                incarnation: self.me.incarnation,
            });
            self.fd_refuted(update);
        }
    }

    /// Counts a refutation of another address's claim to this id; reports a conflict once it
    /// repeats within the window (a previous life is refuted once, a live twin keeps coming).
    fn note_identity_conflict(&mut self, other: SocketAddr) {
        let cutoff = self.now - CONFLICT_WINDOW;
        while self.conflicts.front().is_some_and(|t| *t < cutoff) {
            self.conflicts.pop_front();
        }
        self.conflicts.push_back(self.now);
        let quiet = self.conflict_reported.is_none_or(|t| t < cutoff);
        if self.conflicts.len() >= CONFLICT_REFUTATIONS && quiet {
            self.conflict_reported = Some(self.now);
            self.stats.identity_conflicts += 1;
            self.events.push_back(Event::IdentityConflict { other });
        }
    }

    fn handle_message(&mut self, from: SocketAddr, from_id: NodeId, message: Message) {
        match message {
            Message::Gossip => {}
            Message::Ping { seq } => self.send(from, Some(from_id), Message::Ack { seq }, None),
            Message::Ack { seq } => self.on_ack(from_id, seq),
            Message::PingReq { seq, target, .. } => self.on_ping_req(from, from_id, seq, target),
            Message::IndirectAck { seq, target, ok } => self.on_indirect_ack(seq, target, ok),
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
                if !entries.is_empty() || !digest.is_empty() {
                    self.sync_found_diff = true;
                }
                for e in entries.into_inner() {
                    self.apply_entry(e, from_id);
                }
                if !last {
                    return;
                }
                let solicited = if seq == 0 {
                    self.finish_join(from)
                } else {
                    self.outstanding_sync
                        .take_if(|(s, id)| *s == seq && *id == from_id)
                        .is_some()
                        || self
                            .reconnect_seq
                            .take_if(|(s, a)| *s == seq && *a == from)
                            .is_some()
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
        let mut out = Vec::new();
        let mut part: Vec<SyncEntry> = Vec::new();
        let mut used = 0;
        for e in entries {
            let len = wire::encode_value(&e).len();
            if !part.is_empty() && (used + len > budget || part.len() == MAX_SYNC_ENTRIES) {
                // Invariant: parts are cut at MAX_SYNC_ENTRIES, so they always fit the bound.
                let bounded =
                    BoundedVec::try_from_vec(core::mem::take(&mut part)).expect("within bound");
                out.push(make(bounded, false));
                used = 0;
            }
            if len <= budget {
                part.push(e);
                used += len;
            }
        }
        let bounded = BoundedVec::try_from_vec(part).expect("within bound");
        out.push(make(bounded, true));
        out
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
        let Some(j) = &self.joining else { return };
        let seed = j.seeds[j.next % j.seeds.len()];
        let backoff = self
            .config
            .join_retry_initial
            .saturating_mul(1u32 << j.attempt.min(16))
            .min(self.config.join_retry_max);
        let me = Update::Alive(self.me.clone());
        self.send(seed, None, Message::Join, Some(&me));
        self.timers.set(Timer::JoinRetry, self.now + backoff);
    }

    fn on_join_retry(&mut self) {
        if let Some(j) = &mut self.joining {
            j.attempt = j.attempt.saturating_add(1);
            j.next = j.next.wrapping_add(1);
            self.send_join();
        }
    }

    /// A join reply's last part arrived; returns whether a join was pending.
    fn finish_join(&mut self, via: SocketAddr) -> bool {
        if self.joining.take().is_none() {
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
        // While views differ or this one changed lately, the cluster is converging: sync
        // again soon, which makes anti-entropy an epidemic that doubles the informed set every
        // couple of gossip intervals. Once exchanges find nothing and the view has been still
        // for a while, fall back to the regular interval (a digest-only exchange).
        let recent = self.now.saturating_since(self.last_change) < self.config.gossip_interval * 10;
        let fast = core::mem::take(&mut self.sync_found_diff) || recent;
        let base = if fast {
            self.config.gossip_interval * 2
        } else {
            self.config.sync_interval
        };
        let next = self.jittered(base);
        self.timers.set(Timer::Sync, self.now + next);
        if self.status != Status::Running {
            return;
        }
        let Some(&peer) = self.random_peers(1).first() else {
            return;
        };
        self.sync_seq = self.sync_seq.wrapping_add(1).max(1);
        let seq = self.sync_seq;
        self.outstanding_sync = Some((seq, peer));
        let digest = BoundedVec::try_from_vec(self.table.digest_bytes())
            .expect("digest has DIGEST_BYTES bytes");
        self.send_to_member(peer, Message::Sync { seq, digest }, None);
    }

    fn on_reap(&mut self) {
        self.timers
            .set(Timer::Reap, self.now + self.reap_interval());
        let cutoff = self.now - self.config.tombstone_ttl;
        for id in self.table.tombstones_before(cutoff) {
            if let Some(m) = self.table.remove(&id) {
                if m.state == MemberState::Failed {
                    self.bury(id, m.info.gossip_addr);
                }
            }
            self.gossip.remove(&id);
            self.forget_suspicion(&id);
            self.fd.ring_dirty = true;
            self.events.push_back(Event::MemberReaped(id));
        }
    }

    fn on_leave_done(&mut self) {
        self.status = Status::Left;
        self.timers = TimerTable::default();
        self.events.push_back(Event::LeftCluster);
    }
}

#[cfg(test)]
mod tests;
