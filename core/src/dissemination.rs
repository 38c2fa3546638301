//! Piggyback dissemination: which membership updates ride on outgoing packets.
//!
//! Rule: each update is sent at most `λ·ceil(log10(n + 1))` times (n = live members), the
//! least-sent first and, among equals, the newest first; a newer update about a member
//! replaces the queued one. Packets are filled up to the MTU budget. The queue is bounded:
//! when full, the most-sent update is dropped (it has had the most chances already).
//!
//! Urgent rounds: failure-detection news (suspicion, failure, refutation, leave) should not
//! wait for the next gossip round. [`Dissemination::mark_urgent`] asks for a round at once;
//! [`Dissemination::urgent_round`] grants one at most every `gossip_interval / 8`
//! ([`URGENT_ROUNDS_PER_INTERVAL`]), and when it is too soon says when the next may go, so the
//! node pulls its regular round forward instead.

use crate::id_index::IdIndex;
use crate::membership::{push_compact, Update};
use crate::wire::PacketBuilder;
use crate::{NodeId, Timestamp};
use core::time::Duration;
use level::Level;
use std::collections::BTreeMap;

mod level;

/// Most urgent rounds per gossip interval.
pub const URGENT_ROUNDS_PER_INTERVAL: u32 = 8;

/// Whether to gossip now because urgent news is queued.
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub enum UrgentRound {
    /// No urgent news is waiting.
    Idle,
    /// Gossip a round now.
    Now,
    /// Too soon after the last urgent round: gossip no later than this.
    NotBefore(Timestamp),
}

/// Most updates queued at once.
pub const MAX_QUEUED: usize = 8192;

/// Encodings up to this long are kept inside their entry (an alive update of a simulated
/// member is ~40 bytes); longer ones in a box of their own.
const INLINE: usize = 48;

/// Where an encoded update starts its subject: postcard writes the variant as one byte,
/// then every variant's first field, the subject's 16 raw bytes.
const SUBJECT_AT: usize = 1;

/// A slab of more entries than this (4 KB) is compacted once at most a quarter of them are in
/// use; smaller ones are not worth the allocator's time.
const COMPACT_ABOVE: usize = 64;

/// One queued update: 64 bytes, one cache line.
#[derive(Clone, Copy, Debug)]
struct Entry {
    /// Push order (unique): newer is larger.
    seq: u64,
    /// Times sent so far; also the entry's level in `levels`.
    transmits: u32,
    /// Length of the encoding. Up to [`INLINE`] the encoding is `bytes[..len]` (and its
    /// subject at [`SUBJECT_AT`]); longer, `bytes[..4]` is its index in `spilled` and
    /// `bytes[4..20]` the subject.
    len: u32,
    bytes: [u8; INLINE],
}

impl Entry {
    fn inline(&self) -> bool {
        self.len as usize <= INLINE
    }

    fn subject(&self) -> NodeId {
        let at = if self.inline() { SUBJECT_AT } else { 4 };
        let mut id = [0; 16];
        id.copy_from_slice(&self.bytes[at..at + 16]);
        NodeId(id)
    }

    fn spill_index(&self) -> usize {
        let mut b = [0; 4];
        b.copy_from_slice(&self.bytes[..4]);
        u32::from_le_bytes(b) as usize
    }
}

/// The queue of updates waiting to be piggybacked.
///
/// ## Layout (why not one `BTreeMap` per view)
/// Each queued update is one 64-byte [`Entry`] in a slab (`entries`, free slots reused),
/// found by subject through an open-addressing index of 8-byte buckets (`id_index.rs`) and
/// ordered by one small B-tree per transmit count, keyed by `u64::MAX - seq` (newest first;
/// `seq` is unique, so the subject is not needed to break ties) with the entry number as
/// value. So [`fill`](Self::fill) walks the order and reads each entry directly, with no
/// search by subject, and an update costs ~100 bytes instead of ~180 (two B-trees with
/// 16-byte ids, plus a boxed encoding with its allocator header). The order of updates in
/// packets, what is dropped when full and every count are exactly those of the maps this
/// replaced (a property test in this module checks it against them).
#[derive(Debug, Default)]
pub struct Dissemination {
    /// Queued updates; slots listed in `free` are unused.
    entries: Vec<Entry>,
    free: Vec<u32>,
    /// Encodings longer than [`INLINE`]; slots listed in `spill_free` are unused (empty).
    spilled: Vec<Box<[u8]>>,
    spill_free: Vec<u32>,
    /// Subject → entry number.
    index: IdIndex,
    /// `levels[t]`: the entries sent `t` times, by `u64::MAX - seq` (newest first). The
    /// last level is never empty (trailing empty levels are popped).
    levels: Vec<Level>,
    /// How many queued updates have each encoded length: the shortest tells
    /// [`fill`](Self::fill) when no queued update can fit any more, so a full packet stops
    /// the walk at once instead of trying every queued update (at 5,000 members that walk
    /// was 40 % of the simulator's CPU while the queue held thousands of alive updates).
    lens: BTreeMap<usize, u32>,
    /// Scratch for `fill`: (level, key, entry) of each update sent, reused across calls.
    sent: Vec<(u32, u64, u32)>,
    /// Scratch for `push`: the update's encoding, copied from here into its entry. Reused:
    /// a fresh vector an update was an eighth of all allocations in `shoal-sim tags --nodes
    /// 500` (dhat).
    encoding: Vec<u8>,
    next_seq: u64,
    dropped: u64,
    urgent: bool,
    last_urgent: Timestamp,
    /// [`MAX_QUEUED`], smaller in tests.
    max_queued: Option<usize>,
}

/// The retransmit limit for `live` members with multiplier `mult`.
pub fn retransmit_limit(mult: u32, live: usize) -> u32 {
    // ceil(log10(live + 1)), at least 1.
    let target = live as u64 + 1;
    let (mut k, mut p) = (0u32, 1u64);
    while p < target {
        p = p.saturating_mul(10);
        k += 1;
    }
    mult.saturating_mul(k.max(1))
}

impl Dissemination {
    /// An empty queue.
    pub fn new() -> Self {
        Self::default()
    }

    /// An empty queue holding at most `max` updates (tests reach the bound cheaply).
    #[cfg(test)]
    fn with_max_queued(max: usize) -> Self {
        Dissemination {
            max_queued: Some(max),
            ..Self::default()
        }
    }

    /// Queues `update`, replacing any queued update about the same member.
    pub fn push(&mut self, update: &Update) {
        let subject = update.subject();
        self.remove(&subject);
        if self.len() >= self.max_queued.unwrap_or(MAX_QUEUED) {
            // Drop the most-sent, oldest update: the last of the last level.
            if let Some(slot) = self.levels.last().and_then(Level::last_slot) {
                self.drop_entry(slot);
                self.dropped += 1;
            }
        }
        let seq = self.next_seq;
        self.next_seq += 1;
        let mut encoded = core::mem::take(&mut self.encoding);
        crate::wire::direct::encode_update_into(&mut encoded, update);
        let mut entry = Entry {
            seq,
            transmits: 0,
            len: encoded.len() as u32,
            bytes: [0; INLINE],
        };
        if encoded.len() <= INLINE
            && encoded.get(SUBJECT_AT..SUBJECT_AT + 16) == Some(&subject.0[..])
        {
            entry.bytes[..encoded.len()].copy_from_slice(&encoded);
        } else {
            // Longer (or, were the encoding ever to move the subject, any): boxed apart.
            // Never more than `INLINE` long with an inline entry, so `len` tells them apart.
            entry.len = entry.len.max(INLINE as u32 + 1);
            let boxed: Box<[u8]> = encoded[..].into();
            let at = match self.spill_free.pop() {
                Some(at) => {
                    self.spilled[at as usize] = boxed;
                    at
                }
                None => {
                    self.spilled.push(boxed);
                    (self.spilled.len() - 1) as u32
                }
            };
            entry.bytes[..4].copy_from_slice(&at.to_le_bytes());
            entry.bytes[4..20].copy_from_slice(&subject.0);
        }
        self.encoding = encoded;
        *self.lens.entry(self.encoded(&entry).len()).or_insert(0) += 1;
        let slot = match self.free.pop() {
            Some(slot) => {
                self.entries[slot as usize] = entry;
                slot
            }
            None => {
                push_compact(&mut self.entries, entry);
                (self.entries.len() - 1) as u32
            }
        };
        self.index.insert(&subject, slot);
        if self.levels.is_empty() {
            self.levels.push(Level::default());
        }
        self.levels[0].insert(u64::MAX - seq, slot);
    }

    /// The encoding of `entry`.
    fn encoded<'a>(&'a self, entry: &'a Entry) -> &'a [u8] {
        if entry.inline() {
            &entry.bytes[..entry.len as usize]
        } else {
            &self.spilled[entry.spill_index()]
        }
    }

    /// Whether `entry` is an alive update (postcard's variant index 0 leads its encoding).
    fn is_alive(&self, entry: &Entry) -> bool {
        self.encoded(entry).first() == Some(&0)
    }

    /// Takes entry `slot` out of the index, the order, `lens` and the slab.
    fn drop_entry(&mut self, slot: u32) {
        let entries = &self.entries;
        let subject = entries[slot as usize].subject();
        self.index
            .remove(&subject, |s| entries[s as usize].subject());
        self.unlink(slot);
    }

    /// Entry `slot`, already out of the index, leaves the order, `lens` and the slab.
    fn unlink(&mut self, slot: u32) {
        let e = self.entries[slot as usize];
        if let Some(level) = self.levels.get_mut(e.transmits as usize) {
            level.remove(u64::MAX - e.seq);
        }
        self.pop_empty_levels();
        self.forget(slot);
    }

    /// Entry `slot`, already out of the order and the index, leaves `lens` and the slab.
    fn forget(&mut self, slot: u32) {
        let e = self.entries[slot as usize];
        let len = self.encoded(&e).len();
        if let Some(n) = self.lens.get_mut(&len) {
            *n -= 1;
            if *n == 0 {
                self.lens.remove(&len);
            }
        }
        if !e.inline() {
            let at = e.spill_index();
            self.spilled[at] = Box::default();
            self.spill_free.push(at as u32);
        }
        self.free.push(slot);
    }

    fn pop_empty_levels(&mut self) {
        while self.levels.last().is_some_and(Level::is_empty) {
            self.levels.pop();
        }
    }

    /// Failure-detection news was queued: it should go out in an urgent round.
    pub fn mark_urgent(&mut self) {
        self.urgent = true;
    }

    /// Whether a gossip round would do nothing: no update queued and no urgent round
    /// asked for. The node then lets its gossip timer lie dormant (see `node/rounds.rs`).
    pub fn is_idle(&self) -> bool {
        self.is_empty() && !self.urgent
    }

    /// Whether an urgent round may go now (at most [`URGENT_ROUNDS_PER_INTERVAL`] per
    /// `gossip_interval`). `Now` starts the round: the request is cleared.
    pub fn urgent_round(&mut self, now: Timestamp, gossip_interval: Duration) -> UrgentRound {
        if !self.urgent {
            return UrgentRound::Idle;
        }
        let gap = gossip_interval / URGENT_ROUNDS_PER_INTERVAL;
        if now < self.last_urgent + gap {
            return UrgentRound::NotBefore(self.last_urgent + gap);
        }
        self.urgent = false;
        self.last_urgent = now;
        UrgentRound::Now
    }

    /// Drops any queued update about `subject`.
    pub fn remove(&mut self, subject: &NodeId) {
        let entries = &self.entries;
        if let Some(slot) = self
            .index
            .remove(subject, |s| entries[s as usize].subject())
        {
            self.unlink(slot);
            self.maybe_compact();
        }
    }

    /// Whether an update about `subject` is queued.
    pub fn contains(&self, subject: &NodeId) -> bool {
        let entries = &self.entries;
        self.index
            .get(subject, |s| entries[s as usize].subject())
            .is_some()
    }

    /// Number of queued updates.
    pub fn len(&self) -> usize {
        self.index.len()
    }

    /// Whether nothing is queued.
    pub fn is_empty(&self) -> bool {
        self.len() == 0
    }

    /// Updates dropped because the queue was full.
    pub fn dropped(&self) -> u64 {
        self.dropped
    }

    /// Fills `packet` with queued updates, least-sent first, counting a transmit for each;
    /// updates that reach `limit` transmits leave the queue. Returns how many were added.
    #[cfg(test)]
    pub fn fill(&mut self, packet: &mut PacketBuilder, limit: u32) -> usize {
        self.fill_for(packet, limit, None)
    }

    /// [`fill`](Self::fill) for a packet to `recipient`: an alive update about the
    /// recipient itself is left queued, neither sent nor counted.
    ///
    /// Rule: a member is the source of its own alive news, so a copy sent to it tells it
    /// nothing and takes a transmit from the members that lack it. It mattered most for a
    /// join: the member that answers a joiner sends it its whole table, 40 datagrams at
    /// 1,000 members, and each carried the joiner's queued alive update, so the update used
    /// up its transmits on the joiner itself and the rest of the cluster learned of the
    /// join by anti-entropy, 4-12 s later (`shoal-sim join --nodes 1000`). Suspicions and
    /// failures about the recipient still go to it: that is how it learns to refute them.
    pub fn fill_for(
        &mut self,
        packet: &mut PacketBuilder,
        limit: u32,
        recipient: Option<NodeId>,
    ) -> usize {
        if self.levels.is_empty() {
            // Nothing queued (the common case once a cluster has converged).
            return 0;
        }
        let mut sent = core::mem::take(&mut self.sent);
        // Nothing queued is shorter than this: once it cannot fit, nothing can.
        let shortest = self.lens.keys().next().copied().unwrap_or(0);
        'walk: for (t, level) in self.levels.iter().enumerate() {
            for (key, slot) in level.iter() {
                if packet.remaining() < 8 || !packet.fits(shortest) {
                    break 'walk;
                }
                let e = &self.entries[slot as usize];
                if recipient.is_some_and(|r| r == e.subject()) && self.is_alive(e) {
                    continue;
                }
                if packet.try_push_encoded(self.encoded(e)) {
                    sent.push((t as u32, key, slot));
                }
            }
        }
        let added = sent.len();
        self.settle(&sent, limit);
        sent.clear();
        self.sent = sent;
        added
    }

    /// Counts a transmit for each `(level, key, entry)` in `sent` (in the order sent): each
    /// moves up a level, or leaves the queue once it reaches `limit`.
    fn settle(&mut self, sent: &[(u32, u64, u32)], limit: u32) {
        for &(t, key, slot) in sent {
            self.levels[t as usize].remove(key);
            let transmits = t + 1;
            if transmits >= limit {
                let entries = &self.entries;
                let subject = entries[slot as usize].subject();
                self.index
                    .remove(&subject, |s| entries[s as usize].subject());
                self.forget(slot);
            } else {
                self.entries[slot as usize].transmits = transmits;
                if self.levels.len() <= transmits as usize {
                    self.levels.push(Level::default());
                }
                self.levels[transmits as usize].insert(key, slot);
            }
        }
        self.pop_empty_levels();
        self.maybe_compact();
    }

    /// Gives memory back once the queue has shrunk to a quarter of its slab: a node's queue
    /// swells while its cluster converges and then drains, and a slab (unlike a B-tree)
    /// would otherwise keep its peak size for good. Moves the entries to a dense slab in
    /// order and rebuilds the index; amortised O(1) per removal, since the slab must grow
    /// back and shrink fourfold again before the next compaction. Entry numbers are
    /// internal: nothing observable changes.
    #[inline]
    fn maybe_compact(&mut self) {
        if self.entries.len() > COMPACT_ABOVE && self.len() * 4 <= self.entries.len() {
            self.compact();
        }
    }

    /// Moves the queued entries to a dense slab (see [`maybe_compact`](Self::maybe_compact)).
    #[cold]
    fn compact(&mut self) {
        // Room for the growth `push_compact` would add, so the next push does not move it.
        let n = self.len();
        let mut entries = Vec::with_capacity(if n == 0 { 0 } else { n + (n / 8).max(16) });
        let mut spilled = Vec::new();
        let mut index = IdIndex::with_capacity(n);
        for level in &mut self.levels {
            for slot in level.slots_mut() {
                let mut e = self.entries[*slot as usize];
                if !e.inline() {
                    let boxed = core::mem::take(&mut self.spilled[e.spill_index()]);
                    e.bytes[..4].copy_from_slice(&(spilled.len() as u32).to_le_bytes());
                    spilled.push(boxed);
                }
                *slot = entries.len() as u32;
                index.insert(&e.subject(), *slot);
                entries.push(e);
            }
        }
        self.entries = entries;
        self.free = Vec::new();
        self.spilled = spilled;
        self.spill_free = Vec::new();
        self.index = index;
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::membership::Update;
    use crate::wire::{Header, Message};
    use proptest::prelude::*;

    fn left(i: u8) -> Update {
        Update::Left {
            id: NodeId([i; 16]),
            incarnation: 1,
        }
    }

    fn builder(budget: usize) -> PacketBuilder {
        let h = Header {
            cluster: 1,
            from: NodeId([0; 16]),
            to: None,
        };
        PacketBuilder::new(&h, &Message::Gossip, budget).unwrap()
    }

    /// `fill` as it was before it kept `lens`: try every queued update in order.
    fn fill_by_trying_all(d: &mut Dissemination, packet: &mut PacketBuilder, limit: u32) -> usize {
        let mut sent = Vec::new();
        'walk: for (t, level) in d.levels.iter().enumerate() {
            for (key, slot) in level.iter() {
                if packet.remaining() < 8 {
                    break 'walk;
                }
                if packet.try_push_encoded(d.encoded(&d.entries[slot as usize])) {
                    sent.push((t as u32, key, slot));
                }
            }
        }
        d.settle(&sent, limit);
        sent.len()
    }

    /// `lens` counts exactly the queued encodings, and the levels hold every queued entry.
    fn lens_agree(d: &Dissemination) {
        let mut want = BTreeMap::new();
        let mut queued = 0;
        for level in &d.levels {
            for (_, slot) in level.iter() {
                let e = &d.entries[slot as usize];
                *want.entry(d.encoded(e).len()).or_insert(0u32) += 1;
                queued += 1;
            }
        }
        assert_eq!(d.lens, want);
        assert_eq!(queued, d.len());
    }

    #[test]
    fn stopping_at_the_shortest_picks_exactly_what_trying_all_picks() {
        // Short (Left, incarnation 1: 18 bytes) and long (incarnation near u64::MAX: 27
        // bytes) updates mixed, budgets that leave room for a short one but not a long one.
        let mut x: u64 = 7;
        let mut rnd = move || {
            x = x
                .wrapping_mul(6364136223846793005)
                .wrapping_add(1442695040888963407);
            x >> 33
        };
        let (mut a, mut b) = (Dissemination::new(), Dissemination::new());
        for round in 0..300 {
            for _ in 0..rnd() % 6 {
                let i = (rnd() % 60) as u8;
                let incarnation = if rnd() % 3 == 0 { 1 } else { u64::MAX - rnd() };
                let u = Update::Left {
                    id: NodeId([i; 16]),
                    incarnation,
                };
                a.push(&u);
                b.push(&u);
            }
            if rnd() % 5 == 0 {
                let i = (rnd() % 60) as u8;
                a.remove(&NodeId([i; 16]));
                b.remove(&NodeId([i; 16]));
            }
            let budget = 60 + (rnd() % 120) as usize;
            let (mut pa, mut pb) = (builder(budget), builder(budget));
            let na = a.fill(&mut pa, 3);
            let nb = fill_by_trying_all(&mut b, &mut pb, 3);
            assert_eq!(na, nb, "round {round}");
            assert_eq!(pa.finish(), pb.finish(), "round {round}");
            lens_agree(&a);
            lens_agree(&b);
        }
    }

    #[test]
    fn retransmit_limit_scales_with_log_n() {
        assert_eq!(retransmit_limit(4, 1), 4);
        assert_eq!(retransmit_limit(4, 9), 4);
        assert_eq!(retransmit_limit(4, 10), 8);
        assert_eq!(retransmit_limit(4, 99), 8);
        assert_eq!(retransmit_limit(4, 100), 12);
        assert_eq!(retransmit_limit(4, 1000), 16);
    }

    #[test]
    fn each_update_is_sent_at_most_limit_times() {
        let mut d = Dissemination::new();
        d.push(&left(1));
        let mut sends = 0;
        for _ in 0..10 {
            let mut b = builder(1400);
            sends += d.fill(&mut b, 3);
        }
        assert_eq!(sends, 3);
        assert!(d.is_empty());
    }

    #[test]
    fn an_alive_update_is_not_sent_to_its_subject_but_a_suspicion_is() {
        let x = NodeId([7; 16]);
        let alive = |id: NodeId| {
            let mut info = crate::testkit::fake_info(1);
            info.id = id;
            Update::Alive(info)
        };
        let mut d = Dissemination::new();
        d.push(&alive(x));
        d.push(&left(2));
        let mut b = builder(1400);
        assert_eq!(d.fill_for(&mut b, 3, Some(x)), 1, "only the other update");
        let p = crate::wire::decode(&b.finish(), 1400).unwrap();
        assert_eq!(p.updates, vec![left(2)]);
        // Left queued, unsent and uncounted: all of its transmits go to others.
        let mut sends = 0;
        for _ in 0..5 {
            let mut b = builder(1400);
            sends += d.fill_for(&mut b, 3, Some(NodeId([9; 16])));
        }
        assert_eq!(sends, 3 + 2, "x's alive 3 times, the left twice more");
        assert!(d.is_empty());
        // A suspicion goes to its subject: it must hear it to refute it.
        let suspect = Update::Suspect {
            id: x,
            incarnation: 1,
            by: NodeId([3; 16]),
        };
        d.push(&suspect);
        let mut b = builder(1400);
        assert_eq!(d.fill_for(&mut b, 3, Some(x)), 1);
        let p = crate::wire::decode(&b.finish(), 1400).unwrap();
        assert_eq!(p.updates, vec![suspect]);
    }

    #[test]
    fn least_sent_and_newest_go_first_and_packets_respect_budget() {
        let mut d = Dissemination::new();
        for i in 1..=200 {
            d.push(&left(i));
        }
        let mut b = builder(300);
        let n = d.fill(&mut b, 10);
        assert!(n > 0 && n < 200);
        let bytes = b.finish();
        assert!(bytes.len() <= 300);
        let p = crate::wire::decode(&bytes, 1400).unwrap();
        // Newest first.
        assert_eq!(p.updates[0], left(200));
        // The next packet starts with updates never sent.
        let mut b = builder(300);
        d.fill(&mut b, 10);
        let p = crate::wire::decode(&b.finish(), 1400).unwrap();
        assert!(!p.updates.contains(&left(200)));
    }

    #[test]
    fn urgent_rounds_are_rate_limited_to_eight_per_gossip_interval() {
        let gi = Duration::from_millis(800);
        let mut d = Dissemination::new();
        let t = Timestamp::from_millis;
        assert_eq!(d.urgent_round(t(1000), gi), UrgentRound::Idle);
        d.mark_urgent();
        assert_eq!(d.urgent_round(t(1000), gi), UrgentRound::Now);
        assert_eq!(
            d.urgent_round(t(1000), gi),
            UrgentRound::Idle,
            "request cleared"
        );
        d.mark_urgent();
        assert_eq!(d.urgent_round(t(1050), gi), UrgentRound::NotBefore(t(1100)));
        assert_eq!(d.urgent_round(t(1099), gi), UrgentRound::NotBefore(t(1100)));
        assert_eq!(d.urgent_round(t(1100), gi), UrgentRound::Now);
        let mut rounds = 0;
        for ms in 0..800 {
            d.mark_urgent();
            rounds += u32::from(d.urgent_round(t(2000 + ms), gi) == UrgentRound::Now);
        }
        assert_eq!(rounds, URGENT_ROUNDS_PER_INTERVAL);
    }

    #[test]
    fn newer_update_replaces_queued_one() {
        let mut d = Dissemination::new();
        d.push(&left(1));
        d.push(&Update::Failed {
            id: NodeId([1; 16]),
            incarnation: 2,
            by: NodeId([9; 16]),
        });
        assert_eq!(d.len(), 1);
    }

    /// The queue as it was before the slab (two B-trees keyed by subject, boxed
    /// encodings): the reference the property test holds the new layout to.
    #[derive(Default)]
    struct Reference {
        by_subject: BTreeMap<NodeId, (Box<[u8]>, u32, u64)>,
        lens: BTreeMap<usize, u32>,
        order: std::collections::BTreeSet<(u32, u64, NodeId)>,
        next_seq: u64,
        dropped: u64,
        max_queued: usize,
    }

    impl Reference {
        fn forget_len(&mut self, len: usize) {
            let n = self.lens.get_mut(&len).unwrap();
            *n -= 1;
            if *n == 0 {
                self.lens.remove(&len);
            }
        }

        fn remove(&mut self, subject: &NodeId) {
            if let Some((enc, transmits, seq)) = self.by_subject.remove(subject) {
                self.order.remove(&(transmits, u64::MAX - seq, *subject));
                self.forget_len(enc.len());
            }
        }

        fn push(&mut self, update: &Update) {
            let subject = update.subject();
            self.remove(&subject);
            if self.by_subject.len() >= self.max_queued {
                if let Some(&last) = self.order.iter().next_back() {
                    self.order.remove(&last);
                    let (enc, _, _) = self.by_subject.remove(&last.2).unwrap();
                    self.forget_len(enc.len());
                    self.dropped += 1;
                }
            }
            let seq = self.next_seq;
            self.next_seq += 1;
            self.order.insert((0, u64::MAX - seq, subject));
            let enc = crate::wire::encode_value(update).into_boxed_slice();
            *self.lens.entry(enc.len()).or_insert(0) += 1;
            self.by_subject.insert(subject, (enc, 0, seq));
        }

        fn fill(&mut self, packet: &mut PacketBuilder, limit: u32) -> usize {
            let shortest = self.lens.keys().next().copied().unwrap_or(0);
            let mut sent = Vec::new();
            for key in self.order.iter() {
                if packet.remaining() < 8 || !packet.fits(shortest) {
                    break;
                }
                if packet.try_push_encoded(&self.by_subject[&key.2].0) {
                    sent.push(*key);
                }
            }
            for &key in &sent {
                self.order.remove(&key);
                let transmits = key.0 + 1;
                if transmits >= limit {
                    let (enc, _, _) = self.by_subject.remove(&key.2).unwrap();
                    self.forget_len(enc.len());
                } else {
                    self.by_subject.get_mut(&key.2).unwrap().1 = transmits;
                    self.order.insert((transmits, key.1, key.2));
                }
            }
            sent.len()
        }
    }

    #[derive(Clone, Debug)]
    enum Op {
        Push(Update),
        /// Pushes `n` alive updates about consecutive subjects from `from`: swells the queue.
        PushMany {
            from: u16,
            n: u16,
        },
        Remove(u16),
        /// `times` packets in a row (many drain the queue, so the slab compacts).
        Fill {
            budget: usize,
            limit: u32,
            times: u8,
        },
    }

    fn id(i: u16) -> NodeId {
        let mut b = [0x11; 16];
        b[..2].copy_from_slice(&i.to_le_bytes());
        b[15] = 0x5a;
        NodeId(b)
    }

    fn alive(i: u16, incarnation: u64, name_len: usize, rpc: bool) -> Update {
        let addr = core::net::SocketAddr::from(([10, 0, (i >> 8) as u8, i as u8], 7946));
        Update::Alive(crate::MemberInfo::new(
            id(i),
            crate::wire::bounded::BoundedString::new("n".repeat(name_len)).unwrap(),
            addr,
            rpc.then(|| addr.into()),
            incarnation,
            crate::Tags::new(),
        ))
    }

    /// Updates of every kind and of lengths from 18 bytes (left, small incarnation) to well
    /// past [`INLINE`] (alive with a long name), about 300 subjects.
    fn update() -> impl Strategy<Value = Update> {
        let subject = 0u16..300;
        let inc = prop_oneof![0u64..3, (u64::MAX - 1000)..u64::MAX];
        (0u8..4, subject, inc, 0u16..300, 0usize..40, any::<bool>()).prop_map(
            |(kind, i, incarnation, by, name_len, rpc)| match kind {
                0 => Update::Left {
                    id: id(i),
                    incarnation,
                },
                1 => Update::Suspect {
                    id: id(i),
                    incarnation,
                    by: id(by),
                },
                2 => Update::Failed {
                    id: id(i),
                    incarnation,
                    by: id(by),
                },
                _ => alive(i, incarnation, name_len, rpc),
            },
        )
    }

    fn op() -> impl Strategy<Value = Op> {
        prop_oneof![
            6 => update().prop_map(Op::Push),
            1 => (0u16..300).prop_map(Op::Remove),
            1 => (0u16..300, 0u16..120).prop_map(|(from, n)| Op::PushMany { from, n }),
            3 => (20usize..400, 1u32..6, prop_oneof![3 => Just(1u8), 1 => 2u8..60])
                .prop_map(|(budget, limit, times)| Op::Fill { budget, limit, times }),
        ]
    }

    proptest! {
        /// Any sequence of pushes, removes and fills (with a small queue bound, so updates
        /// are dropped too) gives exactly the packets, counts and drops of the reference.
        #[test]
        fn the_slab_queue_sends_exactly_what_the_reference_sends(
            max in 1usize..300,
            ops in proptest::collection::vec(op(), 1..300),
        ) {
            let mut d = Dissemination::with_max_queued(max);
            let mut r = Reference { max_queued: max, ..Reference::default() };
            for (step, op) in ops.iter().enumerate() {
                match op {
                    Op::Push(u) => {
                        d.push(u);
                        r.push(u);
                    }
                    Op::PushMany { from, n } => {
                        for i in *from..from + n {
                            let u = alive(i % 300, 1, 2, true);
                            d.push(&u);
                            r.push(&u);
                        }
                    }
                    Op::Remove(i) => {
                        d.remove(&id(*i));
                        r.remove(&id(*i));
                    }
                    Op::Fill { budget, limit, times } => {
                        for _ in 0..*times {
                            let (Some(mut pd), Some(mut pr)) = (
                                PacketBuilder::new(&header(), &Message::Gossip, *budget),
                                PacketBuilder::new(&header(), &Message::Gossip, *budget),
                            ) else {
                                break;
                            };
                            let nd = d.fill(&mut pd, *limit);
                            let nr = r.fill(&mut pr, *limit);
                            prop_assert_eq!(nd, nr, "step {}", step);
                            prop_assert_eq!(pd.finish(), pr.finish(), "step {}", step);
                        }
                    }
                }
                prop_assert_eq!(d.len(), r.by_subject.len(), "step {}", step);
                prop_assert_eq!(d.dropped(), r.dropped, "step {}", step);
                prop_assert_eq!(&d.lens, &r.lens, "step {}", step);
                lens_agree(&d);
            }
        }
    }

    fn header() -> Header {
        Header {
            cluster: 1,
            from: NodeId([0; 16]),
            to: None,
        }
    }

    #[test]
    fn every_kind_of_update_encodes_its_subject_where_entries_read_it() {
        let by = NodeId([7; 16]);
        let info = crate::MemberInfo::new(
            id(3),
            crate::wire::bounded::BoundedString::new("n3").unwrap(),
            core::net::SocketAddr::from(([10, 0, 0, 3], 7946)),
            None,
            1,
            crate::Tags::new(),
        );
        let mut long = info.clone();
        long.name = crate::wire::bounded::BoundedString::new("n".repeat(60)).unwrap();
        for u in [
            Update::Alive(info),
            Update::Alive(long),
            Update::Suspect {
                id: id(3),
                incarnation: 1,
                by,
            },
            Update::Failed {
                id: id(3),
                incarnation: 1,
                by,
            },
            Update::Left {
                id: id(3),
                incarnation: 1,
            },
        ] {
            let enc = crate::wire::encode_value(&u);
            assert_eq!(&enc[SUBJECT_AT..SUBJECT_AT + 16], &id(3).0, "{u:?}");
            let mut d = Dissemination::new();
            d.push(&u);
            let (_, slot) = d.levels[0].iter().next().unwrap();
            let e = d.entries[slot as usize];
            assert_eq!(e.inline(), enc.len() <= INLINE, "{u:?}");
            assert_eq!(e.subject(), id(3));
            assert_eq!(d.encoded(&e), &enc[..]);
        }
    }

    #[test]
    fn a_drained_queue_gives_its_slab_back_and_keeps_sending_the_same() {
        let mut d = Dissemination::new();
        let mut r = Reference {
            max_queued: MAX_QUEUED,
            ..Reference::default()
        };
        for i in 0..200u8 {
            d.push(&left(i));
            r.push(&left(i));
        }
        assert_eq!(d.entries.len(), 200);
        let mut fills = 0;
        while d.len() > 10 {
            let (mut pd, mut pr) = (builder(300), builder(300));
            assert_eq!(d.fill(&mut pd, 2), r.fill(&mut pr, 2));
            assert_eq!(pd.finish(), pr.finish());
            lens_agree(&d);
            fills += 1;
        }
        assert!(fills > 10);
        assert!(d.entries.len() < 50, "compacted: {} slots", d.entries.len());
        assert!(d.entries.capacity() < 70);
        // Still the same queue: it drains exactly as the reference does.
        while !d.is_empty() {
            let (mut pd, mut pr) = (builder(300), builder(300));
            assert_eq!(d.fill(&mut pd, 2), r.fill(&mut pr, 2));
            assert_eq!(pd.finish(), pr.finish());
        }
        assert!(r.by_subject.is_empty());
    }
}
