//! Anti-entropy: digest sync, push-pull, join replies, and reconnecting to the failed, the
//! buried and unreached seeds.
//!
//! Rules:
//! - **Every sync round picks one random live peer and sends the view's bucket digest;** the
//!   peer answers with the entries of the buckets that differ plus its own digest, and the
//!   initiator pushes back what the peer lacks (push-pull). A join is a sync of every bucket.
//! - **Only a reply this node asked for is pushed back to** (the outstanding sync's sequence
//!   and peer, or a reconnect's sequence and address), so a forged reply cannot make it send
//!   its view anywhere.
//! - **A large bucket is summarised, not sent whole:** a differing bucket with more than
//!   [`SUMMARY_MIN`] members is answered with the 64-bit hashes of its entries
//!   (`SyncSummary`, 8 bytes an entry instead of ~45); the requester asks for the entries it
//!   lacks (`SyncWant`, answered by a `SyncPush`) and pushes those the replier lacks, so an
//!   entry both views hold costs 8 bytes and no decoding or table update. While a large
//!   cluster converges, most entries of a differing bucket are held by both sides: sending
//!   them whole made every entry arrive three to four times at 3,000 members (issue 18).
//!   A join reply (the joiner holds nothing) and small buckets still go whole.
//! - **Converging views sync fast:** while exchanges find differences or the view changed
//!   within the last ten gossip intervals, the next round comes after two gossip intervals
//!   (anti-entropy becomes an epidemic); otherwise after `sync_interval`.
//! - **Every `reconnect_interval` one random failed member, buried (reaped failed) member or
//!   seed that is not a live member gets a sync request;** a rebooted member or a healed
//!   partition answers and views merge again. The graveyard keeps at most [`MAX_GRAVEYARD`]
//!   addresses, each for `reconnect_timeout`.
//!
//! [`AntiEntropy`] holds that state; the node builds and sends the messages.

use super::packets::{Outgoing, Packets, ReplyPart};
use super::random::rand_below;
use crate::config::Config;
use crate::membership::{MemberState, MemberTable, SyncEntry, Update};
use crate::wire::bounded::BoundedVec;
use crate::wire::direct::EntryLists;
use crate::wire::{write_hashes, Message, DIGEST_BYTES, MAX_SUMMARY_HASHES, MAX_SUMMARY_SPLIT};
use crate::{NodeId, Timestamp};
use core::net::SocketAddr;
use core::time::Duration;
use rand_core::RngCore;
use std::collections::BTreeMap;

/// A differing bucket with more members than this is answered with a summary (hashes)
/// rather than its entries: a few entries cost little more than their summary and spare
/// the requester the round trip of a want.
pub(super) const SUMMARY_MIN: usize = 8;

/// Most reaped members whose address is kept for reconnect attempts.
pub(super) const MAX_GRAVEYARD: usize = 1024;

/// A reconnect attempt: the member (unknown for a seed address) and where to send the sync.
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub(super) struct Reconnect {
    pub(super) id: Option<NodeId>,
    pub(super) addr: SocketAddr,
    pub(super) seq: u32,
}

/// Anti-entropy state of a node.
#[derive(Debug)]
pub(super) struct AntiEntropy {
    sync_seq: u32,
    /// The sync this node is waiting on: its sequence and the peer asked.
    outstanding: Option<(u32, NodeId)>,
    /// A sync sent to a seed address whose member is unknown: answered from that address.
    reconnect: Option<(u32, SocketAddr)>,
    /// Whether the current request was already resent after a challenge.
    retried: bool,
    /// The last exchange whose reply ended (its sequence and peer, or its sequence and
    /// seed address): its summaries are still taken, since datagrams reorder and a summary
    /// can arrive after the reply's last part.
    finished: Option<(u32, NodeId)>,
    finished_reconnect: Option<(u32, SocketAddr)>,
    /// When this node's view last changed.
    last_change: Timestamp,
    /// Whether the last sync exchange found the two views different (either direction).
    found_diff: bool,
    /// Reaped failed members: their address and when they were buried.
    graveyard: BTreeMap<NodeId, (SocketAddr, Timestamp)>,
}

impl AntiEntropy {
    pub(super) fn new(now: Timestamp) -> Self {
        AntiEntropy {
            sync_seq: 0,
            outstanding: None,
            reconnect: None,
            retried: false,
            finished: None,
            finished_reconnect: None,
            last_change: now,
            found_diff: false,
            graveyard: BTreeMap::new(),
        }
    }

    /// The view changed at `now`.
    pub(super) fn view_changed(&mut self, now: Timestamp) {
        self.last_change = now;
    }

    /// The base delay before the next sync round (the node jitters it). Consumes the "found
    /// a difference" flag of the last exchange.
    pub(super) fn next_round_in(&mut self, now: Timestamp, config: &Config) -> Duration {
        let recent = now.saturating_since(self.last_change) < config.gossip_interval * 10;
        let fast = core::mem::take(&mut self.found_diff) || recent;
        if fast {
            config.gossip_interval * 2
        } else {
            config.sync_interval
        }
    }

    fn next_seq(&mut self) -> u32 {
        self.retried = false;
        self.finished = None;
        self.finished_reconnect = None;
        self.sync_seq = self.sync_seq.wrapping_add(1).max(1);
        self.sync_seq
    }

    /// Starts the sequence at `start` (drawn from the node's RNG): an off-path host cannot
    /// guess the sequence of a sync request, so a reply echoing it from the address the
    /// request went to proves that address receives (see `validation`).
    pub(super) fn start_seq_at(&mut self, start: u32) {
        self.sync_seq = start;
    }

    /// The peer `from_id` at `from` challenged this node's address: the sequence of the sync
    /// request to resend to it, once per request (so a spoofed challenge cannot make this
    /// node send more than one extra request per round). `at_member_addr`: `from` is the
    /// address the table holds for `from_id`, where a request to that member went.
    pub(super) fn challenged(
        &mut self,
        from_id: NodeId,
        from: SocketAddr,
        at_member_addr: bool,
    ) -> Option<u32> {
        if self.retried {
            return None;
        }
        let seq = match (self.outstanding, self.reconnect) {
            (Some((s, id)), _) if id == from_id && at_member_addr => s,
            (_, Some((s, a))) if a == from => s,
            _ => return None,
        };
        self.retried = true;
        Some(seq)
    }

    /// Starts a sync round with `peer`; returns the sequence to send.
    pub(super) fn start_sync(&mut self, peer: NodeId) -> u32 {
        let seq = self.next_seq();
        self.outstanding = Some((seq, peer));
        seq
    }

    /// A sync reply part carried entries or a digest: the views differed.
    pub(super) fn reply_part(&mut self, had_content: bool) {
        if had_content {
            self.found_diff = true;
        }
    }

    /// The last part of a sync reply `seq` arrived from `from_id` at `from`: whether this node
    /// asked for it (and so should push back what the peer lacks).
    pub(super) fn reply_done(&mut self, seq: u32, from_id: NodeId, from: SocketAddr) -> bool {
        if let Some(x) = self
            .outstanding
            .take_if(|(s, id)| *s == seq && *id == from_id)
        {
            self.finished = Some(x);
            return true;
        }
        if let Some(x) = self.reconnect.take_if(|(s, a)| *s == seq && *a == from) {
            self.finished_reconnect = Some(x);
            return true;
        }
        false
    }

    /// Whether a summary `seq` from `from_id` at `from` belongs to the exchange this node
    /// has outstanding or the one that just ended (it will push entries back: only to a
    /// peer it asked).
    pub(super) fn summary_solicited(&self, seq: u32, from_id: NodeId, from: SocketAddr) -> bool {
        let ours = Some((seq, from_id));
        let seed = Some((seq, from));
        self.outstanding == ours
            || self.finished == ours
            || self.reconnect == seed
            || self.finished_reconnect == seed
    }

    /// A member is back (new or rejoined): no need to reconnect to its old address.
    pub(super) fn revived(&mut self, id: &NodeId) {
        self.graveyard.remove(id);
    }

    /// A reaped failed member's address goes to the graveyard for reconnect attempts; the
    /// oldest grave makes room when it is full.
    pub(super) fn bury(&mut self, id: NodeId, addr: SocketAddr, now: Timestamp) {
        if self.graveyard.len() >= MAX_GRAVEYARD {
            let oldest = self
                .graveyard
                .iter()
                .min_by_key(|(_, (_, at))| *at)
                .map(|(id, _)| *id);
            if let Some(o) = oldest {
                self.graveyard.remove(&o);
            }
        }
        self.graveyard.insert(id, (addr, now));
    }

    /// Reconnect round: picks one failed member, buried member or unreached seed at random
    /// (forgetting graves older than `reconnect_timeout`), and registers the sync to send it.
    pub(super) fn reconnect_round<R: RngCore>(
        &mut self,
        now: Timestamp,
        config: &Config,
        table: &MemberTable,
        seeds: &[SocketAddr],
        rng: &mut R,
    ) -> Option<Reconnect> {
        let cutoff = now - config.reconnect_timeout;
        self.graveyard.retain(|_, (_, at)| *at >= cutoff);
        let failed = table.count(MemberState::Failed);
        // Seeds that are not live members of this view: a group that formed apart. The node
        // keeps its seeds watched by the table, so this is O(seeds), not a scan per round.
        let unreached: Vec<SocketAddr> = seeds
            .iter()
            .filter(|a| {
                let live = table.watched_is_live(a).unwrap_or_else(|| {
                    table
                        .iter_any_order()
                        .any(|m| m.state.is_live() && m.info.gossip_addr() == **a)
                });
                !live
            })
            .copied()
            .collect();
        let total = failed + self.graveyard.len() + unreached.len();
        if total == 0 {
            return None;
        }
        let pick = rand_below(rng, total);
        let (id, addr) = if pick < failed {
            table
                .iter()
                .filter(|m| m.state == MemberState::Failed)
                .nth(pick)
                .map(|m| (Some(m.info.id), m.info.gossip_addr().get()))
        } else if pick < failed + self.graveyard.len() {
            self.graveyard
                .iter()
                .nth(pick - failed)
                .map(|(id, (a, _))| (Some(*id), *a))
        } else {
            unreached
                .get(pick - failed - self.graveyard.len())
                .map(|a| (None, *a))
        }?;
        let seq = self.next_seq();
        // Whoever answers from a seed address is accepted as the exchange's peer.
        self.outstanding = id.map(|id| (seq, id));
        self.reconnect = id.is_none().then_some((seq, addr));
        Some(Reconnect { id, addr, seq })
    }
}

/// The view's bucket digest, as sent on the wire.
pub(super) fn digest_of(table: &MemberTable) -> BoundedVec<u8, DIGEST_BYTES> {
    // Invariant: the table's digest always has DIGEST_BYTES bytes.
    BoundedVec::try_from_vec(table.digest_bytes()).expect("digest has DIGEST_BYTES bytes")
}

/// The reply to a join (every bucket, `seq` 0) or a sync (the buckets that differ): a
/// summary of each large bucket (a sync only), the entries of the others, and on the last
/// part this view's digest so the requester can push back what it has and this node lacks
/// (none when the views agree).
pub(super) fn sync_reply(
    table: &MemberTable,
    now: Timestamp,
    packets: &Packets,
    to: NodeId,
    seq: u32,
    buckets: &[usize],
) -> Vec<Outgoing> {
    let mut out = Vec::new();
    let mut whole = Vec::with_capacity(buckets.len());
    let mut summarized = 0u64;
    // Worked out on the first large bucket only: most replies (small clusters, or a
    // steady state where views agree) summarise nothing.
    let mut room = None;
    for &b in buckets {
        let summary = (seq != 0 && table.bucket_len(b) > SUMMARY_MIN)
            .then(|| {
                let room = *room.get_or_insert_with(|| packets.summary_room(to));
                summary_parts(table, seq, b, room)
            })
            .flatten();
        match summary {
            Some(parts) => {
                out.extend(parts.into_iter().map(Outgoing::Message));
                summarized |= 1 << b;
            }
            None => whole.push(b),
        }
    }
    // The entries of the other buckets; unless the views agree, the last part carries this
    // view's digest and the buckets summarised.
    let tail = (!buckets.is_empty()).then_some(summarized);
    let digest = digest_of(table);
    let empty_last = Message::SyncReply {
        seq,
        digest: if tail.is_some() {
            digest.clone()
        } else {
            BoundedVec::new()
        },
        entries: BoundedVec::new(),
        last: true,
        summarized: tail.unwrap_or(0),
    };
    let mut lists = EntryLists::new(packets.entry_room(to, &empty_last));
    table.visit_entries_in(&whole, now, |info, state, down| {
        lists.push(info, state, down)
    });
    let lists = lists.into_lists();
    let n = lists.len();
    let mut digest = Some(digest);
    out.extend(lists.into_iter().enumerate().map(|(i, list)| {
        let last = i + 1 == n;
        let digest = match tail {
            Some(_) if last => digest.take().unwrap_or_default(),
            _ => BoundedVec::new(),
        };
        let summarized = tail.filter(|_| last).unwrap_or(0);
        Outgoing::Reply(ReplyPart {
            list,
            seq,
            digest,
            last,
            summarized,
        })
    }));
    out
}

/// The summary of `bucket` in as few parts as hold at most `room` hashes each (every part,
/// empty ones too: the requester pushes what it has in a part the replier lacks entirely);
/// `None` when no split within [`MAX_SUMMARY_SPLIT`] fits (then the bucket goes whole).
fn summary_parts(
    table: &MemberTable,
    seq: u32,
    bucket: usize,
    room: usize,
) -> Option<Vec<Message>> {
    // A summary message holds at most MAX_SUMMARY_HASHES, whatever the datagram could.
    let room = room.min(MAX_SUMMARY_HASHES);
    let hashes = table.summary_of(bucket, 0, 0);
    let bucket_u8 = u8::try_from(bucket).ok()?;
    for split in 0..=MAX_SUMMARY_SPLIT {
        let parts = 1usize << split;
        let part_of = |h: u64| {
            if split == 0 {
                0
            } else {
                (h >> (64 - u32::from(split))) as usize
            }
        };
        // Ascending hashes: each part is a contiguous run.
        let mut bounds = vec![0usize; parts + 1];
        for &h in &hashes {
            bounds[part_of(h) + 1] += 1;
        }
        if bounds.iter().any(|&c| c > room) {
            continue;
        }
        for p in 0..parts {
            bounds[p + 1] += bounds[p];
        }
        return Some(
            (0..parts)
                .map(|p| Message::SyncSummary {
                    seq,
                    bucket: bucket_u8,
                    split,
                    part: p as u16,
                    hashes: write_hashes(&hashes[bounds[p]..bounds[p + 1]]),
                })
                .collect(),
        );
    }
    None
}

/// The push half of push-pull, after a reply this node asked for: the entries of the buckets
/// where the peer's `digest` differs from this view, except the buckets it summarised
/// (`skip`, a bit per bucket: pushed already, entry by entry).
pub(super) fn push_back(
    table: &MemberTable,
    now: Timestamp,
    packets: &Packets,
    to: NodeId,
    digest: &[u8],
    skip: u64,
) -> Vec<Outgoing> {
    let mut diff = table.differing_buckets(digest);
    diff.retain(|&b| skip >> b & 1 == 0);
    let mut lists = push_lists(packets, to);
    table.visit_entries_in(&diff, now, |info, state, down| {
        lists.push(info, state, down)
    });
    push_parts(lists)
}

/// Empty entry lists for `SyncPush` parts to `to`.
pub(super) fn push_lists(packets: &Packets, to: NodeId) -> EntryLists {
    let empty = Message::SyncPush {
        entries: BoundedVec::new(),
    };
    EntryLists::new(packets.entry_room(to, &empty))
}

/// The `SyncPush` parts carrying `lists` (one, empty, when no entry fitted).
pub(super) fn push_parts(lists: EntryLists) -> Vec<Outgoing> {
    lists.into_lists().into_iter().map(Outgoing::Push).collect()
}

/// Turns a sync entry into the update it stands for, attributing suspicion to `by` (the
/// peer that sent the entry).
pub(super) fn entry_update(e: SyncEntry, by: NodeId) -> Update {
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

/// Splits `entries` into messages built by `make(entries, is_last)`, each within `budget`
/// bytes of entries; an entry larger than the budget alone is left out. The reference that
/// [`EntryLists`] cuts exactly as (see the tests).
#[cfg(test)]
fn chunk_entries(
    entries: Vec<SyncEntry>,
    budget: usize,
    make: impl Fn(BoundedVec<SyncEntry, { crate::wire::MAX_SYNC_ENTRIES }>, bool) -> Message,
) -> Vec<Message> {
    let mut out = Vec::new();
    let mut part: Vec<SyncEntry> = Vec::new();
    let mut used = 0;
    for e in entries {
        let len = crate::wire::direct::sync_entry_len(&e);
        if !part.is_empty() && (used + len > budget || part.len() == crate::wire::MAX_SYNC_ENTRIES)
        {
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

#[cfg(test)]
mod tests {
    use super::*;
    use crate::wire::tests::arb_entry;
    use crate::wire::{encode, Header, Packet, PacketBuilder, MAX_DATAGRAM};
    use proptest::prelude::*;

    /// The datagram of `message` alone, and the one built from its encoded `body`.
    fn datagrams(message: Message, body: &[u8]) -> (Option<Vec<u8>>, Option<Vec<u8>>) {
        let header = Header {
            cluster: 7,
            from: NodeId([1; 16]),
            to: None,
        };
        let built = PacketBuilder::with_body(&header, body, MAX_DATAGRAM).map(|b| b.finish());
        let packet = Packet {
            header,
            message,
            updates: Vec::new(),
        };
        (encode(&packet), built)
    }

    proptest! {
        /// Entry lists are cut exactly where `chunk_entries` cuts the same entries, and a
        /// datagram built from a list's body is the one its message made, byte for byte.
        #[test]
        fn entry_lists_make_the_datagrams_chunked_messages_made(
            entries in proptest::collection::vec(arb_entry(), 0..300),
            room in prop_oneof![0usize..1500, 1500usize..40_000],
            seq in any::<u32>(),
            summarized in any::<u64>(),
            digest in proptest::collection::vec(any::<u8>(), DIGEST_BYTES),
        ) {
            let mut lists = EntryLists::new(room);
            for e in &entries {
                lists.push(&e.info, e.state, e.down_secs);
            }
            prop_assert_eq!(lists.is_empty(), entries.is_empty());
            let lists = lists.into_lists();
            let pushes = chunk_entries(entries.clone(), room, |entries, _| Message::SyncPush {
                entries,
            });
            prop_assert_eq!(pushes.len(), lists.len());
            for (m, list) in pushes.into_iter().zip(&lists) {
                let (want, got) = datagrams(m, &list.sync_push());
                prop_assert!(want.is_some());
                prop_assert_eq!(got, want);
            }
            let digest = BoundedVec::<u8, DIGEST_BYTES>::try_from_vec(digest).unwrap();
            let replies = chunk_entries(entries, room, |entries, last| Message::SyncReply {
                seq,
                digest: if last { digest.clone() } else { BoundedVec::new() },
                entries,
                last,
                summarized: if last { summarized } else { 0 },
            });
            prop_assert_eq!(replies.len(), lists.len());
            let n = lists.len();
            for (i, (m, list)) in replies.into_iter().zip(&lists).enumerate() {
                let last = i + 1 == n;
                let d: &[u8] = if last { &digest } else { &[] };
                let body = list.sync_reply(seq, d, last, if last { summarized } else { 0 });
                let (want, got) = datagrams(m, &body);
                prop_assert!(want.is_some());
                prop_assert_eq!(got, want);
            }
        }
    }

    #[test]
    fn a_challenged_request_is_resent_once_and_only_to_its_peer() {
        let mut ae = AntiEntropy::new(Timestamp::ZERO);
        ae.start_seq_at(0xdead_0000);
        assert_eq!(
            ae.challenged(id(1), a(1), true),
            None,
            "nothing outstanding"
        );
        let seq = ae.start_sync(id(1));
        assert_eq!(
            seq, 0xdead_0001,
            "the sequence starts where the node's RNG put it"
        );
        assert_eq!(ae.challenged(id(2), a(2), true), None, "another peer");
        assert_eq!(
            ae.challenged(id(1), a(9), false),
            None,
            "not where the request went"
        );
        assert_eq!(ae.challenged(id(1), a(1), true), Some(seq));
        assert_eq!(ae.challenged(id(1), a(1), true), None, "once per request");
        let next = ae.start_sync(id(1));
        assert_eq!(
            ae.challenged(id(1), a(1), true),
            Some(next),
            "a new round may retry again"
        );
    }

    fn id(n: u8) -> NodeId {
        NodeId([n; 16])
    }

    fn a(port: u16) -> SocketAddr {
        SocketAddr::from(([127, 0, 0, 1], port))
    }

    #[test]
    fn only_the_reply_asked_for_is_solicited() {
        let mut ae = AntiEntropy::new(Timestamp::ZERO);
        let seq = ae.start_sync(id(1));
        assert!(!ae.reply_done(seq, id(2), a(2)), "wrong peer");
        assert!(
            !ae.reply_done(seq.wrapping_add(1), id(1), a(1)),
            "wrong sequence"
        );
        assert!(ae.reply_done(seq, id(1), a(1)));
        assert!(!ae.reply_done(seq, id(1), a(1)), "answered once");
    }

    #[test]
    fn the_graveyard_is_bounded_and_forgets_old_graves() {
        let mut ae = AntiEntropy::new(Timestamp::ZERO);
        for i in 0..=MAX_GRAVEYARD {
            let mut raw = [0u8; 16];
            raw[..8].copy_from_slice(&(i as u64).to_le_bytes());
            ae.bury(NodeId(raw), a(1), Timestamp::from_millis(i as u64));
        }
        assert_eq!(ae.graveyard.len(), MAX_GRAVEYARD);
        let config = Config::local();
        let table = MemberTable::new(
            crate::MemberInfo::new(
                id(0),
                crate::wire::bounded::BoundedString::new("me").unwrap(),
                a(0),
                None,
                0,
                crate::Tags::new(),
            ),
            Timestamp::ZERO,
        );
        let later = Timestamp::from_millis(MAX_GRAVEYARD as u64) + config.reconnect_timeout * 2;
        let mut rng = rand_chacha::ChaCha8Rng::seed_from_u64(1);
        assert_eq!(
            ae.reconnect_round(later, &config, &table, &[], &mut rng),
            None
        );
        assert!(ae.graveyard.is_empty());
        let r = ae
            .reconnect_round(later, &config, &table, &[a(7)], &mut rng)
            .expect("an unreached seed");
        assert_eq!((r.id, r.addr), (None, a(7)));
        assert!(ae.reply_done(r.seq, id(9), a(7)), "a seed's answer counts");
    }

    /// A member whose id falls in digest bucket `bucket`.
    fn in_bucket(bucket: u64, k: u64) -> crate::MemberInfo {
        let mut raw = [0u8; 16];
        raw[..8].copy_from_slice(&(k * crate::wire::DIGEST_BUCKETS as u64 + bucket).to_le_bytes());
        raw[8..].copy_from_slice(&k.to_le_bytes());
        crate::MemberInfo::new(
            NodeId(raw),
            crate::wire::bounded::BoundedString::new(format!("m{k}")).unwrap(),
            a(1),
            None,
            0,
            crate::Tags::new(),
        )
    }

    #[test]
    fn a_bucket_too_big_for_one_datagram_is_summarised_in_parts_that_cover_it_once() {
        let now = Timestamp::ZERO;
        let mut table = MemberTable::new(in_bucket(1, 0), now);
        for k in 0..500 {
            table.apply(&Update::Alive(in_bucket(5, k)), now);
        }
        assert_eq!(table.bucket_len(5), 500);
        let all = table.summary_of(5, 0, 0);
        for room in [500, 499, 160, 100, 37] {
            let parts = summary_parts(&table, 9, 5, room).expect("some split fits");
            let mut seen = Vec::new();
            for (p, m) in parts.iter().enumerate() {
                let Message::SyncSummary {
                    seq,
                    bucket,
                    split,
                    part,
                    hashes,
                } = m
                else {
                    panic!("{m:?}");
                };
                assert_eq!((*seq, *bucket, usize::from(*part)), (9, 5, p));
                assert_eq!(
                    parts.len(),
                    1 << split,
                    "every part is sent, empty ones too"
                );
                let hs: Vec<u64> = crate::wire::read_hashes(hashes).collect();
                assert!(hs.len() <= room, "room {room}: a part of {}", hs.len());
                assert!(hs
                    .iter()
                    .all(|&h| crate::membership::in_part(h, *split, *part)));
                assert_eq!(hs, table.summary_of(5, *split, *part));
                seen.extend(hs);
            }
            assert_eq!(
                seen, all,
                "room {room}: the parts cover the bucket once, in order"
            );
        }
        // When even the finest split cannot fit, the bucket is sent whole.
        assert!(summary_parts(&table, 9, 5, 0).is_none());
    }

    use rand_core::SeedableRng;
}
