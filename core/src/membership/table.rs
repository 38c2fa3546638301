//! The member table and its one mutation rule.

#[cfg(test)]
use super::SyncEntry;
use super::{MemberInfo, MemberState, Update};
use crate::hash::mix64;
use crate::wire::DIGEST_BUCKETS;
use crate::{NodeId, Timestamp};
use core::net::SocketAddr;

/// One member as this node currently sees it.
#[derive(Clone, PartialEq, Eq, Debug)]
pub struct Member {
    /// What the member advertised at its current incarnation.
    pub info: MemberInfo,
    /// What this node believes about it.
    pub state: MemberState,
    /// When this node last changed `state` (or learned of the member): see
    /// [`state_since`](Self::state_since).
    since: Since,
}

impl Member {
    /// A member record in `state` since `since`.
    pub fn new(info: MemberInfo, state: MemberState, since: Timestamp) -> Self {
        Member {
            info,
            state,
            since: Since::new(since),
        }
    }

    /// When this node last changed `state` (or learned of the member).
    pub fn state_since(&self) -> Timestamp {
        self.since.get()
    }
}

/// A [`Timestamp`] in 7 bytes with alignment 1: its low 56 bits of microseconds (2,283
/// years from the driver's epoch; a later time is held as the latest that fits).
///
/// Why: every node keeps a [`Member`] for every member, so a simulated cluster of N holds
/// N² of them. `MemberInfo` is 64 bytes (a multiple of its alignment, 8); with a one-byte
/// state and an 8-byte timestamp a member would take 80, with 7 of them padding. In 7 bytes
/// the timestamp fits beside the state in the last 8: a member is 72 bytes (when
/// `MemberInfo` was 88, this took a member from 104 to 96 bytes, 0.8 GB less at 10,000
/// simulated members; issue 18).
#[derive(Clone, Copy, PartialEq, Eq)]
struct Since([u8; 7]);

impl Since {
    /// Largest microsecond count held.
    const MAX: u64 = (1 << 56) - 1;

    fn new(t: Timestamp) -> Self {
        let b = t.as_micros().min(Self::MAX).to_le_bytes();
        let mut out = [0u8; 7];
        out.copy_from_slice(&b[..7]);
        Since(out)
    }

    fn get(self) -> Timestamp {
        let mut b = [0u8; 8];
        b[..7].copy_from_slice(&self.0);
        Timestamp::from_micros(u64::from_le_bytes(b))
    }
}

impl core::fmt::Debug for Since {
    fn fmt(&self, f: &mut core::fmt::Formatter<'_>) -> core::fmt::Result {
        core::fmt::Debug::fmt(&self.get(), f)
    }
}

/// How [`MemberTable::remove`] renumbered the slots: the member that sat in the last slot,
/// `from`, now sits in `removed`'s place (nothing moved when the two are equal). Whoever keeps
/// slot numbers (the probe order) applies this to stay exact.
#[derive(Clone, Copy, PartialEq, Eq, Debug)]
pub struct SlotMove {
    /// The slot of the removed member, now holding what was in `from` (or gone, if equal).
    pub removed: u32,
    /// The last slot, which no longer exists.
    pub from: u32,
}

/// What [`MemberTable::apply_member`] did with an update.
#[derive(Clone, Copy, PartialEq, Eq, Debug)]
pub enum Applied {
    /// Older than or equal to what the table holds: nothing changed.
    Stale,
    /// A member this node did not know, now alive.
    New,
    /// A known member, now alive again after being down (failed or left).
    Rejoined,
    /// A known member moved from `from` to a new state at a higher or equal incarnation.
    StateChanged {
        /// The previous state.
        from: MemberState,
    },
    /// Same state (alive), higher incarnation: new info (tags, addresses).
    InfoChanged,
    /// A suspicion about a member already suspected at that incarnation: a confirmation.
    Confirmed,
    /// About a member this node does not know, and not alive: ignored, since a tombstone
    /// needs no creating and a suspicion without info cannot be acted on.
    UnknownIgnored,
}

impl Applied {
    /// Whether the table changed.
    pub fn changed(self) -> bool {
        !matches!(
            self,
            Applied::Stale | Applied::Confirmed | Applied::UnknownIgnored
        )
    }
}

/// The member table: every member including this node itself, tombstones included.
///
/// Besides the members it keeps, incrementally, a per-bucket digest for anti-entropy (a
/// wrapping sum of one hash per entry over (id, incarnation, state)), and a vector of live
/// peers for O(1) random picks.
///
/// ## Layout (why it is not a `BTreeMap<NodeId, Member>`)
/// Every node holds an entry for every member, so a simulated cluster of N holds N² of them
/// and the entry's size is the simulator's (and a big deployment's) memory bill. Members live
/// in a dense vector of slots stored in fixed chunks of 32 (`chunked.rs`: growth
/// never copies a member, and at most one chunk is partly empty, where a `Vec` grown by an
/// eighth copied all of it at each step and kept up to an eighth as slack); an
/// open-addressing index of 8-byte buckets (`id_index.rs`) maps an id to its slot in one or two
/// probes; and each slot records its place in `live_peers` (in chunks too), so leaving the
/// live set is a swap-remove without a second map. Observable behaviour (id-order
/// iteration, which [`iter`](Self::iter) now gets by sorting, and the order of `live_peers`)
/// is exactly that of the map it replaced.
#[derive(Debug)]
pub struct MemberTable {
    me: NodeId,
    /// Slot of each member (see `id_index.rs`).
    index: IdIndex,
    slots: Chunked<Member, SLOT_CHUNK>,
    /// Per slot: its position in `live_peers`, or [`NOT_LIVE`].
    live_pos: Chunked<u32, LIVE_POS_CHUNK>,
    digest: [u32; DIGEST_BUCKETS],
    /// Per digest bucket, the slots of its members, in no order: a sync summary of one
    /// bucket reads its members only, not the whole table (4 bytes a member).
    by_bucket: Vec<Vec<u32>>,
    /// Per slot: its member's [`summary_hash`] (8 bytes a member), so that a summary reads
    /// one dense array instead of hashing each member's 72-byte entry again.
    hashes: Chunked<u64, HASH_CHUNK>,
    /// The slots of the live peers (4 bytes each, not a copy of their 16-byte ids).
    live_peers: Vec<u32>,
    counts: [usize; 4],
    /// Addresses the node asks about every reconnect round (its seeds), each with how many
    /// live members (this node included) advertise it as their gossip address. Kept up to
    /// date on every change so that the question costs O(seeds), not a scan of the table.
    watched: Vec<(SocketAddr, u32)>,
}

/// The index key of `id`: its bytes as a big-endian integer, so that integer order is the
/// ids' (lexicographic) order and iteration stays in id order.
fn key(id: &NodeId) -> u128 {
    u128::from_be_bytes(id.0)
}

/// The first 8 bytes of [`key`]: what id order compares first.
fn key_prefix(id: &NodeId) -> u64 {
    (key(id) >> 64) as u64
}

/// Members per chunk of slots: as many as fit in 5 KiB (71 at 72 bytes a member, 5,112
/// bytes), a few KiB, so the one partly filled chunk wastes little and the chunk list (24
/// bytes a chunk) is a third of a byte a member.
///
/// Why 5 KiB: it is a size class of the common allocators (mimalloc's and jemalloc's classes
/// run 4, 5, 6, 7, 8 KiB), so a chunk wastes 8 bytes of its block. The 32 members (2,304
/// bytes) this was before fell just above the 2 KiB class, into 2,560-byte blocks: 11 % of
/// every member entry; at 10,000 simulated members under mimalloc the peak fell from 13.31
/// to 12.79 GB with this change.
const SLOT_CHUNK: usize = 5120 / core::mem::size_of::<Member>();

/// Entries per chunk of `live_pos`: 1,024 (4 KiB, a size class).
const LIVE_POS_CHUNK: usize = 1024;

/// Entries per chunk of `hashes`: 512 (4 KiB, a size class).
const HASH_CHUNK: usize = 512;

/// [`MemberTable::visit_entries_in`] reads every slot in order, rather than the wanted
/// buckets' lists, when the wanted entries are at least one in `SCAN_SHARE` of the table: a
/// pass in order costs a few nanoseconds an entry (it streams), a listed slot a cache miss.
const SCAN_SHARE: usize = 8;

/// `live_pos` of a slot that is not in `live_peers` (down, or this node itself).
const NOT_LIVE: u32 = u32::MAX;

/// Pushes onto `v`, growing it by an eighth (at least 16) when full instead of doubling, so
/// a vector of n entries wastes at most about n/8 slots rather than up to n. Used for
/// `live_peers` (4 bytes an entry, and read as one slice), whose copies cost little, and by
/// the piggyback queue's slab (`dissemination.rs`).
pub(crate) fn push_compact<T>(v: &mut Vec<T>, x: T) {
    if v.len() == v.capacity() {
        v.reserve_exact((v.len() / 8).max(16));
    }
    v.push(x);
}

/// The bucket a member falls in.
pub fn bucket_of(id: &NodeId) -> usize {
    (id.short() % DIGEST_BUCKETS as u64) as usize
}

/// A member entry's 64-bit hash over its id, incarnation and state: what a sync summary
/// lists. Two views hold the same entry when they agree on its hash, up to a collision
/// (about 2^-64 a pair; like the digest, it reads the id's first 8 bytes, which for ids
/// derived from names are a hash already). Computed by every node alike, as the digest
/// must be.
pub(crate) fn summary_hash(id: &NodeId, incarnation: u64, state: MemberState) -> u64 {
    mix64(id.short() ^ mix64(incarnation.wrapping_add(u64::from(state.precedence()) << 56)))
}

/// An entry's share of its bucket's digest: the top half of its summary hash.
fn top(summary_hash: u64) -> u32 {
    (summary_hash >> 32) as u32
}

/// The merge walk of [`MemberTable::diff_summary`]: the hashes of `theirs` (ascending, no
/// duplicates) that `mine` (ascending by hash) lacks, and the slots in `mine` whose hash
/// `theirs` lacks.
///
/// Walks twice, counting and then filling, so each vector is allocated once at its size:
/// grown push by push they were reallocated six or seven times for a bucket of a few
/// hundred, and in a forming cluster summaries are the commonest sync message.
fn sorted_difference(theirs: &[u64], mine: &[(u64, u32)]) -> (Vec<u64>, Vec<u32>) {
    let (mut wants, mut pushes) = (0, 0);
    merge_walk(theirs, mine, |_| wants += 1, |_| pushes += 1);
    let mut want = Vec::with_capacity(wants);
    let mut push = Vec::with_capacity(pushes);
    merge_walk(theirs, mine, |t| want.push(t), |s| push.push(s));
    (want, push)
}

/// The merge walk itself: `lack(t)` for each hash of `theirs` that `mine` lacks, `extra(s)`
/// for the slot of each entry of `mine` whose hash `theirs` lacks.
fn merge_walk(
    theirs: &[u64],
    mine: &[(u64, u32)],
    mut lack: impl FnMut(u64),
    mut extra: impl FnMut(u32),
) {
    let mut mine = mine.iter().copied().peekable();
    for &t in theirs {
        while let Some((_, s)) = mine.next_if(|&(m, _)| m < t) {
            extra(s);
        }
        let mut held = false;
        while mine.next_if(|&(m, _)| m == t).is_some() {
            held = true;
        }
        if !held {
            lack(t);
        }
    }
    mine.for_each(|(_, s)| extra(s));
}

/// Whether `hash` lies in `part` of a bucket split into `2^split` parts (by its top bits).
pub(crate) fn in_part(hash: u64, split: u8, part: u16) -> bool {
    split == 0 || hash >> (64 - u32::from(split)) == u64::from(part)
}

impl MemberTable {
    /// A table holding only this node, alive.
    pub fn new(me: MemberInfo, now: Timestamp) -> Self {
        let mut t = MemberTable {
            me: me.id,
            index: IdIndex::default(),
            slots: Chunked::default(),
            live_pos: Chunked::default(),
            digest: [0; DIGEST_BUCKETS],
            by_bucket: vec![Vec::new(); DIGEST_BUCKETS],
            hashes: Chunked::default(),
            live_peers: Vec::new(),
            counts: [0; 4],
            watched: Vec::new(),
        };
        t.insert(Member::new(me, MemberState::Alive, now));
        t
    }

    /// The member `id`, if known.
    pub fn get(&self, id: &NodeId) -> Option<&Member> {
        self.slot_of(id).map(|s| &self.slots[s as usize])
    }

    fn slot_of(&self, id: &NodeId) -> Option<u32> {
        let slots = &self.slots;
        self.index.get(id, |s| slots[s as usize].info.id)
    }

    /// Every member in id order, this node and tombstones included.
    ///
    /// Sorts (O(n log n), one allocation): for id order; [`iter_any_order`]
    /// (Self::iter_any_order) is a plain scan.
    pub fn iter(&self) -> impl Iterator<Item = &Member> + '_ {
        let mut order: Vec<(u128, u32)> = self
            .slots
            .iter()
            .enumerate()
            .map(|(s, m)| (key(&m.info.id), s as u32))
            .collect();
        order.sort_unstable();
        order.into_iter().map(|(_, s)| &self.slots[s as usize])
    }

    /// Every member, this node and tombstones included, in no particular order.
    pub fn iter_any_order(&self) -> impl Iterator<Item = &Member> + '_ {
        self.slots.iter()
    }

    /// Number of entries, tombstones included.
    pub fn len(&self) -> usize {
        self.slots.len()
    }

    /// The member in `slot` (a number from [`live_peer_slots`](Self::live_peer_slots)),
    /// if there is one. Slot numbers stay put except on [`remove`](Self::remove).
    pub fn at_slot(&self, slot: u32) -> Option<&Member> {
        self.slots.get(slot as usize)
    }

    /// The slots of the live peers, in the order of [`live_peers`](Self::live_peers).
    pub fn live_peer_slots(&self) -> &[u32] {
        &self.live_peers
    }

    /// Live peers (alive or suspect, not this node), in a stable but unspecified order.
    pub fn live_peers(&self) -> LivePeers<'_> {
        LivePeers { table: self }
    }

    /// Number of live members including this node.
    pub fn live_count(&self) -> usize {
        self.live_peers.len() + 1
    }

    /// The digest, one 32-bit value per bucket, as little-endian bytes.
    pub fn digest_bytes(&self) -> Vec<u8> {
        self.digest.iter().flat_map(|d| d.to_le_bytes()).collect()
    }

    /// Buckets whose digest differs from `other` (a peer's `digest_bytes`). A digest of the
    /// wrong length differs everywhere.
    pub fn differing_buckets(&self, other: &[u8]) -> Vec<usize> {
        if other.len() != DIGEST_BUCKETS * 4 {
            return (0..DIGEST_BUCKETS).collect();
        }
        (0..DIGEST_BUCKETS)
            .filter(|&b| {
                let mut x = [0u8; 4];
                x.copy_from_slice(&other[b * 4..b * 4 + 4]);
                u32::from_le_bytes(x) != self.digest[b]
            })
            .collect()
    }

    /// Entries in the given buckets (sorted by id), as sync entries; tombstones carry their
    /// age at `now`. What [`visit_entries_in`](Self::visit_entries_in) visits.
    #[cfg(test)]
    pub fn entries_in(&self, buckets: &[usize], now: Timestamp) -> Vec<SyncEntry> {
        let mut out = Vec::new();
        self.visit_entries_in(buckets, now, |info, state, down_secs| {
            out.push(SyncEntry {
                info: info.clone(),
                state,
                down_secs,
            })
        });
        out
    }

    /// Visits the entries in the given buckets in id order: `f(info, state, down_secs)`,
    /// tombstones with their age at `now` (0 for the live).
    ///
    /// Reads the wanted buckets' slot lists, not every slot, and sorts only the matches; no
    /// buckets wanted (the steady state: digests agree) costs nothing. A bucket named twice
    /// is read once. When the wanted buckets hold at least [`SCAN_SHARE`] of the table (a
    /// join reply wants all of it) the slots are read in order instead: a bucket list's slots
    /// lie all over the table, one cache miss each, where a pass in order streams.
    pub fn visit_entries_in(
        &self,
        buckets: &[usize],
        now: Timestamp,
        f: impl FnMut(&MemberInfo, MemberState, u32),
    ) {
        let mut want = [false; DIGEST_BUCKETS];
        for &b in buckets {
            if let Some(w) = want.get_mut(b) {
                *w = true;
            }
        }
        let lists = || {
            want.iter()
                .zip(&self.by_bucket)
                .filter(|(w, _)| **w)
                .map(|(_, list)| list)
        };
        let count: usize = lists().map(Vec::len).sum();
        if count.saturating_mul(SCAN_SHARE) >= self.slots.len() {
            let wanted = self
                .slots
                .iter()
                .zip(0u32..)
                .filter(|(m, _)| want[bucket_of(&m.info.id)])
                .map(|(_, s)| s);
            self.visit_sorted(wanted, count, now, f);
        } else {
            self.visit_sorted(lists().flat_map(|l| l.iter().copied()), count, now, f);
        }
    }

    /// Number of members (this node included) in `state`.
    pub fn count(&self, state: MemberState) -> usize {
        self.counts[usize::from(state.precedence())]
    }

    fn insert(&mut self, m: Member) {
        let id = m.info.id;
        self.count_watched(&m, true);
        self.counts[usize::from(m.state.precedence())] += 1;
        let hash = summary_hash(&id, m.info.incarnation, m.state);
        self.digest[bucket_of(&id)] = self.digest[bucket_of(&id)].wrapping_add(top(hash));
        let slot = self.slots.len() as u32;
        let live_pos = if m.state.is_live() && id != self.me {
            let p = self.live_peers.len() as u32;
            push_compact(&mut self.live_peers, slot);
            p
        } else {
            NOT_LIVE
        };
        self.slots.push(m);
        self.live_pos.push(live_pos);
        self.hashes.push(hash);
        self.index.insert(&id, slot);
        push_compact(&mut self.by_bucket[bucket_of(&id)], slot);
    }

    /// Takes `slot` out of `live_peers` if it is there; the peer moved into its place learns
    /// its new position.
    fn leave_live(&mut self, slot: usize) {
        let p = std::mem::replace(&mut self.live_pos[slot], NOT_LIVE);
        if p == NOT_LIVE {
            return;
        }
        self.live_peers.swap_remove(p as usize);
        if let Some(&moved) = self.live_peers.get(p as usize) {
            self.live_pos[moved as usize] = p;
        }
    }

    fn take(&mut self, id: &NodeId) -> Option<(Member, SlotMove)> {
        let slots = &self.slots;
        let slot = self.index.remove(id, |s| slots[s as usize].info.id)? as usize;
        self.leave_live(slot);
        let last = self.slots.len() - 1;
        if slot != last {
            // The last slot moves into the hole: point its id there first.
            let moved = self.slots[last].info.id;
            let slots = &self.slots;
            self.index
                .repoint(&moved, slot as u32, |s| slots[s as usize].info.id);
        }
        self.unlist(id, slot as u32);
        if slot != last {
            let moved = self.slots[last].info.id;
            self.relist(&moved, last as u32, slot as u32);
        }
        let m = self.slots.swap_remove(slot);
        self.count_watched(&m, false);
        self.live_pos.swap_remove(slot);
        let hash = self.hashes.swap_remove(slot);
        if let Some(&p) = self.live_pos.get(slot) {
            // The member moved from the last slot into `slot`: so did its live entry.
            if p != NOT_LIVE {
                self.live_peers[p as usize] = slot as u32;
            }
        }
        self.counts[usize::from(m.state.precedence())] -= 1;
        self.digest[bucket_of(id)] = self.digest[bucket_of(id)].wrapping_sub(top(hash));
        let moved = SlotMove {
            removed: slot as u32,
            from: last as u32,
        };
        Some((m, moved))
    }

    /// Replaces the member in `slot` with `m` (same id), with the bookkeeping of a take
    /// followed by an insert, in place: counts, digest and, if it is live, a move to the end
    /// of `live_peers` (where an insert would have put it). Returns the old member.
    fn replace(&mut self, slot: usize, m: Member) -> Member {
        let id = m.info.id;
        self.leave_live(slot);
        self.count_watched(&m, true);
        let old = std::mem::replace(&mut self.slots[slot], m);
        self.count_watched(&old, false);
        self.counts[usize::from(old.state.precedence())] -= 1;
        let new = &self.slots[slot];
        self.counts[usize::from(new.state.precedence())] += 1;
        let hash = summary_hash(&id, new.info.incarnation, new.state);
        let old_hash = std::mem::replace(&mut self.hashes[slot], hash);
        let b = bucket_of(&id);
        self.digest[b] = self.digest[b]
            .wrapping_sub(top(old_hash))
            .wrapping_add(top(hash));
        if new.state.is_live() && id != self.me {
            self.live_pos[slot] = self.live_peers.len() as u32;
            push_compact(&mut self.live_peers, slot as u32);
        }
        old
    }

    /// Takes `slot` out of `id`'s bucket list.
    fn unlist(&mut self, id: &NodeId, slot: u32) {
        let list = &mut self.by_bucket[bucket_of(id)];
        if let Some(i) = list.iter().position(|&s| s == slot) {
            list.swap_remove(i);
        }
    }

    /// `id` moved from slot `from` to slot `to`: so does its bucket list entry.
    fn relist(&mut self, id: &NodeId, from: u32, to: u32) {
        if let Some(s) = self.by_bucket[bucket_of(id)]
            .iter_mut()
            .find(|s| **s == from)
        {
            *s = to;
        }
    }

    /// Members in digest bucket `bucket` (0 for a bucket that does not exist).
    pub fn bucket_len(&self, bucket: usize) -> usize {
        self.by_bucket.get(bucket).map_or(0, Vec::len)
    }

    /// The summary hashes of the entries in `bucket` that fall in `part` of `2^split`,
    /// ascending (see [`summary_hash`]).
    pub fn summary_of(&self, bucket: usize, split: u8, part: u16) -> Vec<u64> {
        let Some(list) = self.by_bucket.get(bucket) else {
            return Vec::new();
        };
        let mut out = Vec::with_capacity(list.len() >> split);
        out.extend(
            list.iter()
                .map(|&s| self.hashes[s as usize])
                .filter(|&h| in_part(h, split, part)),
        );
        sort_by_leading_bits(&mut out, |h| *h);
        out
    }

    /// Visits the entries of `bucket` in `part` of `2^split` (`at`) whose summary hash is in
    /// `hashes` (ascending) when `listed`, or is not in it when `!listed`, in id order, as
    /// [`visit_entries_in`](Self::visit_entries_in) does.
    pub fn visit_entries_by_hash(
        &self,
        (bucket, split, part): (usize, u8, u16),
        hashes: &[u64],
        listed: bool,
        now: Timestamp,
        f: impl FnMut(&MemberInfo, MemberState, u32),
    ) {
        let Some(list) = self.by_bucket.get(bucket) else {
            return;
        };
        let slots = list.iter().copied().filter(|&s| {
            let h = self.hashes[s as usize];
            in_part(h, split, part) && hashes.binary_search(&h).is_ok() == listed
        });
        self.visit_sorted(slots, list.len(), now, f);
    }

    /// Compares a peer's summary of `part` of `2^split` of `bucket` (`theirs`: ascending,
    /// no duplicates) with this view's in one merge walk: visits this view's entries there
    /// whose hash `theirs` lacks, in id order (as [`visit_entries_in`](Self::visit_entries_in)
    /// does), and returns the hashes of `theirs` this view lacks, ascending.
    ///
    /// One pass over the bucket's hashes answers both questions; reading them once for the
    /// wants and again (with a binary search each) for the pushes cost twice the cache
    /// misses on a large table, where a summary is the commonest sync message.
    pub fn diff_summary(
        &self,
        (bucket, split, part): (usize, u8, u16),
        theirs: &[u64],
        now: Timestamp,
        f: impl FnMut(&MemberInfo, MemberState, u32),
    ) -> Vec<u64> {
        let list = self.by_bucket.get(bucket).map_or(&[][..], Vec::as_slice);
        let mut mine: Vec<(u64, u32)> = Vec::with_capacity(list.len() >> split);
        mine.extend(
            list.iter()
                .map(|&s| (self.hashes[s as usize], s))
                .filter(|&(h, _)| in_part(h, split, part)),
        );
        sort_by_leading_bits(&mut mine, |p| p.0);
        let (want, push) = sorted_difference(theirs, &mine);
        self.visit_sorted(push.iter().copied(), push.len(), now, f);
        want
    }

    /// Visits the members in `slots` in id order (what a peer's table would iterate):
    /// `f(info, state, down_secs)`, a tombstone with its age at `now` in seconds.
    /// `at_most` bounds how many there are (the vector is sized once, not grown).
    fn visit_sorted(
        &self,
        slots: impl Iterator<Item = u32>,
        at_most: usize,
        now: Timestamp,
        mut f: impl FnMut(&MemberInfo, MemberState, u32),
    ) {
        // Sorted by the ids' first 8 bytes (16-byte pairs, where the whole key made them 32:
        // a join reply sorts the whole table, and the sort was most of its cost), then any
        // run of equal prefixes by the whole id, so the order is exactly id order whatever
        // the ids.
        let mut hits: Vec<(u64, u32)> = Vec::with_capacity(at_most);
        hits.extend(slots.map(|s| (key_prefix(&self.slots[s as usize].info.id), s)));
        sort_by_leading_bits(&mut hits, |p| p.0);
        let mut i = 0;
        while i < hits.len() {
            let run = hits[i..].iter().take_while(|h| h.0 == hits[i].0).count();
            if run > 1 {
                hits[i..i + run]
                    .sort_unstable_by_key(|&(_, s)| key(&self.slots[s as usize].info.id));
            }
            i += run;
        }
        for (_, s) in hits {
            let m = &self.slots[s as usize];
            let down_secs = if m.state.is_down() {
                u32::try_from(now.saturating_since(m.state_since()).as_secs()).unwrap_or(u32::MAX)
            } else {
                0
            };
            f(&m.info, m.state, down_secs);
        }
    }

    /// Counts `m` in (`add`) or out of the watched addresses, if it is live.
    fn count_watched(&mut self, m: &Member, add: bool) {
        if !m.state.is_live() {
            return;
        }
        for (a, n) in &mut self.watched {
            if m.info.gossip_addr() == *a {
                *n = if add { *n + 1 } else { *n - 1 };
            }
        }
    }

    /// Makes `addrs` the watched addresses (see [`watched_is_live`](Self::watched_is_live)).
    /// Free when they already are; otherwise one scan of the table to count them.
    pub fn watch_addrs(&mut self, addrs: &[SocketAddr]) {
        if self.watched.iter().map(|(a, _)| a).eq(addrs.iter()) {
            return;
        }
        self.watched = addrs.iter().map(|a| (*a, 0)).collect();
        for s in 0..self.slots.len() {
            let m = &self.slots[s];
            if m.state.is_live() {
                let addr = m.info.gossip_addr();
                for (a, n) in &mut self.watched {
                    if addr == *a {
                        *n += 1;
                    }
                }
            }
        }
    }

    /// Whether a live member (this node included) advertises `addr` as its gossip address,
    /// if `addr` is watched ([`watch_addrs`](Self::watch_addrs)); `None` if it is not.
    pub fn watched_is_live(&self, addr: &SocketAddr) -> Option<bool> {
        self.watched
            .iter()
            .find(|(a, _)| a == addr)
            .map(|(_, n)| *n > 0)
    }

    /// Replaces this node's own info (after raising its incarnation). The caller guarantees
    /// `info.incarnation` is higher than before.
    pub fn set_me(&mut self, info: MemberInfo, now: Timestamp) {
        let m = Member::new(info, MemberState::Alive, now);
        match self.slot_of(&m.info.id) {
            Some(slot) => {
                self.replace(slot as usize, m);
            }
            None => self.insert(m),
        }
    }

    /// Marks this node's own entry with `state` (used when leaving).
    pub fn set_me_state(&mut self, state: MemberState, now: Timestamp) {
        if let Some(slot) = self.slot_of(&self.me) {
            let mut m = self.slots[slot as usize].clone();
            m.state = state;
            m.since = Since::new(now);
            self.replace(slot as usize, m);
        }
    }

    /// Records a tombstone for a member this table does not know, as if it had entered
    /// `state` at `since`. Returns false (and changes nothing) if the member is known or
    /// `state` is live.
    pub fn insert_tombstone(
        &mut self,
        info: MemberInfo,
        state: MemberState,
        since: Timestamp,
    ) -> bool {
        if state.is_live() || self.slot_of(&info.id).is_some() {
            return false;
        }
        self.insert(Member::new(info, state, since));
        true
    }

    /// Removes a tombstone or a member outright (reaping). Returns it, and which slot moved
    /// into its place.
    pub fn remove(&mut self, id: &NodeId) -> Option<(Member, SlotMove)> {
        if *id == self.me {
            return None;
        }
        self.take(id)
    }

    /// What `apply_member` did, for tests.
    #[cfg(test)]
    pub fn apply(&mut self, update: &Update, now: Timestamp) -> Applied {
        self.apply_member(update, now).0
    }

    /// Applies one update under SWIM's ordering: a higher incarnation wins; at equal
    /// incarnation the state with higher precedence wins (alive < suspect < failed < left).
    /// Updates about this node itself are not applied here: refuting them is the node's job.
    ///
    /// Returns what it did and, when the table changed ([`Applied::changed`]), the member's
    /// slot ([`at_slot`](Self::at_slot)): what the node needs for its event, without looking
    /// the member up again. A slot rather than a copy: for an alive update (nearly every
    /// change while a cluster forms, N² of them in a simulated one) the node moves the
    /// update's info into the event instead of copying the 64-byte record a second time.
    pub fn apply_member(&mut self, update: &Update, now: Timestamp) -> (Applied, Option<u32>) {
        match self.apply_slot(update, now) {
            (a, Some(slot)) if a.changed() => (a, Some(slot as u32)),
            (a, _) => (a, None),
        }
    }

    /// `apply_member`'s rule, with the subject's slot when the table holds it afterwards.
    fn apply_slot(&mut self, update: &Update, now: Timestamp) -> (Applied, Option<usize>) {
        let id = update.subject();
        let inc = update.incarnation();
        let state = update.state();
        let Some(slot) = self.slot_of(&id) else {
            return match update {
                Update::Alive(info) => {
                    self.insert(Member::new(info.clone(), state, now));
                    (Applied::New, Some(self.slots.len() - 1))
                }
                _ => (Applied::UnknownIgnored, None),
            };
        };
        let slot = slot as usize;
        let cur = &self.slots[slot];
        let newer = inc > cur.info.incarnation
            || (inc == cur.info.incarnation && state.precedence() > cur.state.precedence());
        if !newer {
            if inc == cur.info.incarnation && state == MemberState::Suspect && cur.state == state {
                return (Applied::Confirmed, Some(slot));
            }
            return (Applied::Stale, Some(slot));
        }
        let from = cur.state;
        let info = match update {
            Update::Alive(info) => info.clone(),
            _ => {
                let mut i = cur.info.clone();
                i.incarnation = inc;
                i
            }
        };
        let since = if from == state {
            cur.since
        } else {
            Since::new(now)
        };
        self.replace(slot, Member { info, state, since });
        let applied = match (from, state) {
            (f, MemberState::Alive) if f.is_down() => Applied::Rejoined,
            (MemberState::Alive, MemberState::Alive) => Applied::InfoChanged,
            _ => Applied::StateChanged { from },
        };
        (applied, Some(slot))
    }

    /// The update that restates what this table holds about `id` (for re-gossip).
    pub fn update_for(&self, id: &NodeId, by: NodeId) -> Option<Update> {
        let m = self.get(id)?;
        Some(match m.state {
            MemberState::Alive => Update::Alive(m.info.clone()),
            MemberState::Suspect => Update::Suspect {
                id: *id,
                incarnation: m.info.incarnation,
                by,
            },
            MemberState::Failed => Update::Failed {
                id: *id,
                incarnation: m.info.incarnation,
                by,
            },
            MemberState::Left => Update::Left {
                id: *id,
                incarnation: m.info.incarnation,
            },
        })
    }

    /// Tombstones whose state is older than `cutoff`, in id order.
    ///
    /// Free when the table holds no tombstone (the steady state); otherwise a sequential
    /// scan of the slots with only the matches sorted.
    pub fn tombstones_before(&self, cutoff: Timestamp) -> Vec<NodeId> {
        if self.count(MemberState::Failed) + self.count(MemberState::Left) == 0 {
            return Vec::new();
        }
        let mut hits: Vec<u128> = self
            .slots
            .iter()
            .filter(|m| m.state.is_down() && m.state_since() < cutoff)
            .map(|m| key(&m.info.id))
            .collect();
        hits.sort_unstable();
        hits.into_iter().map(|k| NodeId(k.to_be_bytes())).collect()
    }

    /// Checks the layout's own invariants: the index and the slots name the same members,
    /// and `live_pos` and `live_peers` point at each other. Panics with what broke.
    #[cfg(test)]
    pub(crate) fn check_layout(&self) {
        assert_eq!(
            self.index.len(),
            self.slots.len(),
            "index and slots agree in size"
        );
        assert_eq!(self.live_pos.len(), self.slots.len());
        for s in self.index.slots() {
            let id = self.slots[s as usize].info.id;
            assert_eq!(self.slot_of(&id), Some(s), "index points at its member");
        }
        for (s, &p) in self.live_pos.iter().enumerate() {
            let m = &self.slots[s];
            let should = m.state.is_live() && m.info.id != self.me;
            assert_eq!(
                p != NOT_LIVE,
                should,
                "live_pos marks exactly the live peers"
            );
            if p != NOT_LIVE {
                assert_eq!(self.live_peers[p as usize], s as u32);
            }
        }
        assert_eq!(
            self.live_peers.len(),
            self.live_pos.iter().filter(|&&p| p != NOT_LIVE).count()
        );
        let mut listed = vec![0u32; self.slots.len()];
        for (b, list) in self.by_bucket.iter().enumerate() {
            for &s in list {
                assert_eq!(
                    bucket_of(&self.slots[s as usize].info.id),
                    b,
                    "listed in its bucket"
                );
                listed[s as usize] += 1;
            }
        }
        assert!(listed.iter().all(|&c| c == 1), "every slot listed once");
        assert_eq!(self.hashes.len(), self.slots.len());
        for (s, m) in self.slots.iter().enumerate() {
            let h = summary_hash(&m.info.id, m.info.incarnation, m.state);
            assert_eq!(self.hashes[s], h, "summary hash of slot {s}");
        }
        for (a, n) in &self.watched {
            let live_there = self
                .slots
                .iter()
                .filter(|m| m.state.is_live() && m.info.gossip_addr() == *a)
                .count();
            assert_eq!(*n as usize, live_there, "watched count of {a}");
        }
    }

    /// Bytes reserved per structure (slots with their chunk list, index, `live_pos`,
    /// `live_peers`, bucket lists with the summary hashes), each allocation counted as the
    /// allocator's block for it (`chunked::block_bytes`), to check the memory bill per entry.
    #[cfg(test)]
    pub(crate) fn reserved_bytes(&self) -> [usize; 5] {
        [
            self.slots.reserved_bytes() + self.slots.chunk_list_bytes(),
            block_bytes(self.index.capacity() * 8),
            self.live_pos.reserved_bytes() + self.live_pos.chunk_list_bytes(),
            block_bytes(self.live_peers.capacity() * 4),
            self.by_bucket
                .iter()
                .map(|l| block_bytes(l.capacity() * 4))
                .sum::<usize>()
                + block_bytes(self.by_bucket.capacity() * core::mem::size_of::<Vec<u32>>())
                + self.hashes.reserved_bytes()
                + self.hashes.chunk_list_bytes(),
        ]
    }

    #[cfg(test)]
    /// Recomputes the digest from scratch; used by tests to check the incremental one.
    pub fn recomputed_digest(&self) -> Vec<u8> {
        let mut d = [0u32; DIGEST_BUCKETS];
        for m in self.slots.iter() {
            let b = bucket_of(&m.info.id);
            d[b] = d[b].wrapping_add(top(summary_hash(&m.info.id, m.info.incarnation, m.state)));
        }
        d.iter().flat_map(|x| x.to_le_bytes()).collect()
    }
}

/// The live peers of a [`MemberTable`], by position: what [`MemberTable::live_peers`] returns.
#[derive(Clone, Copy)]
pub struct LivePeers<'a> {
    table: &'a MemberTable,
}

impl<'a> LivePeers<'a> {
    /// How many there are.
    pub fn len(self) -> usize {
        self.table.live_peers.len()
    }

    /// The id of the `i`-th (panics if `i >= len()`, like indexing a slice).
    pub fn get(self, i: usize) -> NodeId {
        self.table.slots[self.table.live_peers[i] as usize].info.id
    }

    /// Their ids, in order.
    pub fn iter(self) -> impl Iterator<Item = NodeId> + 'a {
        let slots = &self.table.slots;
        self.table
            .live_peers
            .iter()
            .map(move |&s| slots[s as usize].info.id)
    }

    /// Their ids, in order, collected.
    pub fn to_vec(self) -> Vec<NodeId> {
        self.iter().collect()
    }
}

mod chunked;
mod radix;
use crate::id_index::IdIndex;
#[cfg(test)]
use chunked::block_bytes;
use chunked::Chunked;
use radix::sort_by_leading_bits;

#[cfg(test)]
mod tests;
