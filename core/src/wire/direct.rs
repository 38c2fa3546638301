//! The direct codec of the bulk wire types: member info, updates and sync entries, and the
//! messages that carry entries or summary hashes (`SyncReply`, `SyncPush`, `SyncSummary`,
//! `SyncWant`).
//!
//! **Rule: it writes exactly postcard's bytes, and it reads a value only where postcard
//! would read the same value from the same bytes; anywhere else it answers `None` and the
//! caller asks postcard, whose verdict (the value, or which error) stands.** So the wire
//! format stays postcard's, defined by the serde derives, and this module only has to be
//! right on the paths it takes. The property tests in `wire/tests.rs` check both halves on
//! generated values and on damaged and truncated datagrams.
//!
//! Why: every node receives every member's entry at least once, so a cluster forming
//! decodes N² entries. Through serde, decoding and encoding them was about 40 % of the
//! simulator's instructions while 1,000 members converged (callgrind): a visitor per field,
//! a byte at a time for the 16-byte ids and the addresses (and for a summary's 1,280 bytes
//! of hashes), and every entry serialised twice when a reply was chunked (once for its
//! length).
//!
//! postcard's format, as used here: unsigned integers as LEB128 varints (at most
//! `ceil(bits / 7)` bytes, the last one's unused high bits zero; longer encodings of small
//! values are accepted); an enum as its variant index (a `u32` varint) and then its fields;
//! a struct as its fields in order; `[u8; N]` as N raw bytes; `bool` and `Option`'s tag as
//! one byte 0 or 1; a string or a sequence as its length (a `usize` varint) and then its
//! bytes or elements. A socket address is serde's compact form: variant 0 with 4 address
//! bytes or variant 1 with 16, then the port (flow info and scope id are not sent).

use super::bounded::{BoundedString, BoundedVec};
use super::{push_varint, varint_len};
use super::{Message, DIGEST_BYTES, MAX_SYNC_ENTRIES, MAX_UPDATES, SUMMARY_BYTES};
use crate::membership::{CompactAddr, MemberInfo, MemberState, SyncEntry, Tags, Update};
use crate::membership::{MAX_NAME, MAX_TAGS, MAX_TAG_KEY, MAX_TAG_VALUE};
use crate::NodeId;
use core::net::SocketAddr;

/// postcard's variant indexes of the messages read and written here (the order of
/// [`Message`]'s variants).
pub(super) const SYNC_REPLY_TAG: u8 = 7;
pub(super) const SYNC_PUSH_TAG: u8 = 8;
pub(super) const SYNC_SUMMARY_TAG: u8 = 13;
pub(super) const SYNC_WANT_TAG: u8 = 14;

/// Reads values from the front of a byte slice, postcard's way.
pub(super) struct Reader<'a> {
    pub(super) rest: &'a [u8],
}

impl<'a> Reader<'a> {
    pub(super) fn new(bytes: &'a [u8]) -> Self {
        Reader { rest: bytes }
    }

    fn byte(&mut self) -> Option<u8> {
        let (&b, rest) = self.rest.split_first()?;
        self.rest = rest;
        Some(b)
    }

    fn take(&mut self, n: usize) -> Option<&'a [u8]> {
        if self.rest.len() < n {
            return None;
        }
        let (head, rest) = self.rest.split_at(n);
        self.rest = rest;
        Some(head)
    }

    fn raw<const N: usize>(&mut self) -> Option<[u8; N]> {
        self.take(N)?.try_into().ok()
    }

    /// A varint of a `BITS`-bit integer, as postcard accepts one.
    #[inline]
    fn varint<const BITS: u32>(&mut self) -> Option<u64> {
        // Most varints here (lengths, ports below 128 aside, variant indexes) are one byte.
        if let Some((&b, rest)) = self.rest.split_first() {
            if b < 0x80 {
                self.rest = rest;
                return Some(u64::from(b));
            }
        }
        let max_bytes = BITS.div_ceil(7) as usize;
        let max_last = (1u16 << (BITS % 7)) - 1;
        let mut out = 0u64;
        for i in 0..max_bytes {
            let b = self.byte()?;
            out |= u64::from(b & 0x7f) << (7 * i);
            if b & 0x80 == 0 {
                if i == max_bytes - 1 && u16::from(b) > max_last {
                    return None;
                }
                return Some(out);
            }
        }
        None
    }

    pub(super) fn u16(&mut self) -> Option<u16> {
        self.varint::<16>().map(|v| v as u16)
    }

    pub(super) fn u32(&mut self) -> Option<u32> {
        self.varint::<32>().map(|v| v as u32)
    }

    pub(super) fn u64(&mut self) -> Option<u64> {
        self.varint::<64>()
    }

    /// A length (postcard's `usize`, a 64-bit varint on the targets we build for).
    fn len(&mut self) -> Option<usize> {
        usize::try_from(self.varint::<{ usize::BITS }>()?).ok()
    }

    fn bool(&mut self) -> Option<bool> {
        match self.byte()? {
            0 => Some(false),
            1 => Some(true),
            _ => None,
        }
    }

    /// A string of at most `N` bytes (see [`BoundedString::from_utf8_checked`]).
    fn bounded_str<const N: usize>(&mut self) -> Option<BoundedString<N>> {
        let n = self.len()?;
        BoundedString::from_utf8_checked(self.take(n)?)
    }

    fn id(&mut self) -> Option<NodeId> {
        self.raw::<16>().map(NodeId)
    }

    /// A socket address, packed as it is read (no `SocketAddr` built and converted).
    fn compact_addr(&mut self) -> Option<CompactAddr> {
        match self.u32()? {
            0 => {
                let ip = self.raw::<4>()?;
                Some(CompactAddr::v4(ip, self.u16()?))
            }
            1 => {
                let ip = self.raw::<16>()?;
                Some(CompactAddr::v6(ip, self.u16()?))
            }
            _ => None,
        }
    }

    fn tags(&mut self) -> Option<Tags> {
        let n = self.len()?;
        if n == 0 {
            return Some(Tags::new());
        }
        if n > MAX_TAGS {
            return None;
        }
        let mut pairs = Vec::with_capacity(n);
        for _ in 0..n {
            let k = self.bounded_str::<MAX_TAG_KEY>()?;
            let v = self.bounded_str::<MAX_TAG_VALUE>()?;
            pairs.push((k, v));
        }
        Tags::from_decoded(pairs)
    }

    pub(super) fn member_info(&mut self) -> Option<MemberInfo> {
        let id = self.id()?;
        let name = self.bounded_str::<MAX_NAME>()?;
        let gossip_addr = self.compact_addr()?;
        let rpc_addr = match self.byte()? {
            0 => None,
            1 => Some(self.compact_addr()?),
            _ => return None,
        };
        let incarnation = self.u64()?;
        let tags = self.tags()?;
        Some(MemberInfo::new(
            id,
            name,
            gossip_addr,
            rpc_addr,
            incarnation,
            tags,
        ))
    }

    fn state(&mut self) -> Option<MemberState> {
        Some(match self.u32()? {
            0 => MemberState::Alive,
            1 => MemberState::Suspect,
            2 => MemberState::Failed,
            3 => MemberState::Left,
            _ => return None,
        })
    }

    pub(super) fn sync_entry(&mut self) -> Option<SyncEntry> {
        Some(SyncEntry {
            info: self.member_info()?,
            state: self.state()?,
            down_secs: self.u32()?,
        })
    }

    pub(super) fn update(&mut self) -> Option<Update> {
        Some(match self.u32()? {
            0 => Update::Alive(self.member_info()?),
            1 => Update::Suspect {
                id: self.id()?,
                incarnation: self.u64()?,
                by: self.id()?,
            },
            2 => Update::Failed {
                id: self.id()?,
                incarnation: self.u64()?,
                by: self.id()?,
            },
            3 => Update::Left {
                id: self.id()?,
                incarnation: self.u64()?,
            },
            _ => return None,
        })
    }

    /// A sequence of at most `max` elements read by `item`, into `out` (emptied first, its
    /// room reused).
    fn seq_into<T>(
        &mut self,
        max: usize,
        item: impl Fn(&mut Self) -> Option<T>,
        out: &mut Vec<T>,
    ) -> Option<()> {
        out.clear();
        let n = self.len()?;
        if n > max {
            return None;
        }
        // Each element takes at least one byte: a count beyond the bytes left is refused
        // before anything is allocated for it.
        if n > self.rest.len() {
            return None;
        }
        out.reserve_exact(n);
        for _ in 0..n {
            out.push(item(self)?);
        }
        Some(())
    }

    /// Sync entries, read into `spare` (taken from it, its room reused).
    fn entries(
        &mut self,
        spare: &mut Vec<SyncEntry>,
    ) -> Option<BoundedVec<SyncEntry, MAX_SYNC_ENTRIES>> {
        let mut v = core::mem::take(spare);
        self.seq_into(MAX_SYNC_ENTRIES, Self::sync_entry, &mut v)?;
        BoundedVec::try_from_vec(v).ok()
    }

    /// Bytes with a length in front, at most `N` (postcard reads a `u8` as itself).
    fn byte_list<const N: usize>(&mut self) -> Option<BoundedVec<u8, N>> {
        let n = self.len()?;
        if n > N {
            return None;
        }
        BoundedVec::try_from_vec(self.take(n)?.to_vec()).ok()
    }

    /// The body of a `SyncReply`, `SyncPush`, `SyncSummary` or `SyncWant`, after its variant
    /// index `tag`. Not checked here: whether a summary is well formed (the caller's job,
    /// whichever way the message was read).
    /// A sync reply's or push's entries are read into `spare` (see `entries`).
    pub(super) fn bulk_message(&mut self, tag: u8, spare: &mut Vec<SyncEntry>) -> Option<Message> {
        match tag {
            SYNC_REPLY_TAG => Some(Message::SyncReply {
                seq: self.u32()?,
                digest: self.byte_list::<DIGEST_BYTES>()?,
                entries: self.entries(spare)?,
                last: self.bool()?,
                summarized: self.u64()?,
            }),
            SYNC_PUSH_TAG => Some(Message::SyncPush {
                entries: self.entries(spare)?,
            }),
            SYNC_SUMMARY_TAG => Some(Message::SyncSummary {
                seq: self.u32()?,
                bucket: self.byte()?,
                split: self.byte()?,
                part: self.u16()?,
                hashes: self.byte_list::<SUMMARY_BYTES>()?,
            }),
            SYNC_WANT_TAG => Some(Message::SyncWant {
                bucket: self.byte()?,
                hashes: self.byte_list::<SUMMARY_BYTES>()?,
            }),
            _ => None,
        }
    }
}

/// The piggybacked updates that end a datagram, into `out` (emptied first, its room
/// reused): a count, then the updates, then nothing.
pub(super) fn take_updates(bytes: &[u8], out: &mut Vec<Update>) -> Option<()> {
    let mut r = Reader::new(bytes);
    r.seq_into(MAX_UPDATES, Reader::update, out)?;
    r.rest.is_empty().then_some(())
}

/// Appends a string (given as a `str`'s bytes).
fn put_str(out: &mut Vec<u8>, s: &[u8]) {
    push_varint(out, s.len() as u64);
    out.extend_from_slice(s);
}

fn str_len(s: &[u8]) -> usize {
    varint_len(s.len() as u64) + s.len()
}

fn put_addr(out: &mut Vec<u8>, a: SocketAddr) {
    match a {
        SocketAddr::V4(a) => {
            out.push(0);
            out.extend_from_slice(&a.ip().octets());
            push_varint(out, u64::from(a.port()));
        }
        SocketAddr::V6(a) => {
            out.push(1);
            out.extend_from_slice(&a.ip().octets());
            push_varint(out, u64::from(a.port()));
        }
    }
}

fn addr_len(a: SocketAddr) -> usize {
    let ip = if a.is_ipv4() { 4 } else { 16 };
    1 + ip + varint_len(u64::from(a.port()))
}

fn put_info(out: &mut Vec<u8>, i: &MemberInfo) {
    out.extend_from_slice(&i.id.0);
    put_str(out, i.name.as_bytes());
    put_addr(out, i.gossip_addr().get());
    match i.rpc_addr() {
        None => out.push(0),
        Some(a) => {
            out.push(1);
            put_addr(out, a.get());
        }
    }
    push_varint(out, i.incarnation);
    let pairs = i.tags.pairs();
    push_varint(out, pairs.len() as u64);
    for (k, v) in pairs {
        put_str(out, k.as_bytes());
        put_str(out, v.as_bytes());
    }
}

fn info_len(i: &MemberInfo) -> usize {
    let pairs = i.tags.pairs();
    16 + str_len(i.name.as_bytes())
        + addr_len(i.gossip_addr().get())
        + 1
        + i.rpc_addr().map_or(0, |a| addr_len(a.get()))
        + varint_len(i.incarnation)
        + varint_len(pairs.len() as u64)
        + pairs
            .iter()
            .map(|(k, v)| str_len(k.as_bytes()) + str_len(v.as_bytes()))
            .sum::<usize>()
}

fn state_index(s: MemberState) -> u8 {
    match s {
        MemberState::Alive => 0,
        MemberState::Suspect => 1,
        MemberState::Failed => 2,
        MemberState::Left => 3,
    }
}

/// Appends `e`'s encoding.
pub(super) fn put_sync_entry(out: &mut Vec<u8>, e: &SyncEntry) {
    put_entry(out, &e.info, e.state, e.down_secs);
}

/// Appends the encoding of an entry with `info`, `state` and `down_secs` (a `SyncEntry`'s
/// fields, borrowed from wherever they live).
fn put_entry(out: &mut Vec<u8>, info: &MemberInfo, state: MemberState, down_secs: u32) {
    put_info(out, info);
    out.push(state_index(state));
    push_varint(out, u64::from(down_secs));
}

/// The length of `e`'s encoding.
#[cfg(test)]
pub fn sync_entry_len(e: &SyncEntry) -> usize {
    entry_len(&e.info, e.down_secs)
}

/// The length of the encoding of an entry with `info` and `down_secs` (its state is a byte).
fn entry_len(info: &MemberInfo, down_secs: u32) -> usize {
    info_len(info) + 1 + varint_len(u64::from(down_secs))
}

/// Appends `u`'s encoding.
pub(super) fn put_update(out: &mut Vec<u8>, u: &Update) {
    match u {
        Update::Alive(info) => {
            out.push(0);
            put_info(out, info);
        }
        Update::Suspect {
            id,
            incarnation,
            by,
        }
        | Update::Failed {
            id,
            incarnation,
            by,
        } => {
            out.push(if matches!(u, Update::Suspect { .. }) {
                1
            } else {
                2
            });
            out.extend_from_slice(&id.0);
            push_varint(out, *incarnation);
            out.extend_from_slice(&by.0);
        }
        Update::Left { id, incarnation } => {
            out.push(3);
            out.extend_from_slice(&id.0);
            push_varint(out, *incarnation);
        }
    }
}

/// `u`'s encoding, in place of what `out` held: a caller that keeps one buffer for every
/// update allocates once, not once an update.
pub(crate) fn encode_update_into(out: &mut Vec<u8>, u: &Update) {
    out.clear();
    put_update(out, u);
}

/// `u`'s encoding.
pub fn encode_update(u: &Update) -> Vec<u8> {
    let mut out = Vec::with_capacity(64);
    put_update(&mut out, u);
    out
}

fn put_entries(out: &mut Vec<u8>, entries: &[SyncEntry]) {
    push_varint(out, entries.len() as u64);
    for e in entries {
        put_sync_entry(out, e);
    }
}

fn put_bytes(out: &mut Vec<u8>, bytes: &[u8]) {
    push_varint(out, bytes.len() as u64);
    out.extend_from_slice(bytes);
}

/// Appends a `SyncReply`: its index and fields, the entries (count and all) by `entries`.
fn put_reply(
    out: &mut Vec<u8>,
    seq: u32,
    digest: &[u8],
    last: bool,
    summarized: u64,
    entries: impl FnOnce(&mut Vec<u8>),
) {
    out.push(SYNC_REPLY_TAG);
    push_varint(out, u64::from(seq));
    put_bytes(out, digest);
    entries(out);
    out.push(u8::from(last));
    push_varint(out, summarized);
}

/// Appends a `SyncPush`: its index, then the entries (count and all) by `entries`.
fn put_push(out: &mut Vec<u8>, entries: impl FnOnce(&mut Vec<u8>)) {
    out.push(SYNC_PUSH_TAG);
    entries(out);
}

/// Sync entries written straight from the member table into the entry lists of bulk
/// messages, each list within `room` bytes and [`MAX_SYNC_ENTRIES`] entries; an entry
/// longer than `room` alone is left out.
///
/// Why: a reply to a joiner holds the whole table, and while a large cluster forms every
/// node answers summaries and wants with entries. Going through `Message` cloned each
/// member's info into a `SyncEntry`, gathered them all in one vector (at 10,000 members a
/// megabyte, mapped, faulted in and unmapped for each join), measured each and moved it
/// into its part. Here each entry is encoded once, from the table's own record, into the
/// list it lands in. The lists are cut exactly where `chunk_entries` cuts a vector of the
/// same entries, so the datagrams are byte for byte those the messages made.
#[derive(Debug)]
pub(crate) struct EntryLists {
    room: usize,
    /// Entries offered, the ones left out included.
    offered: usize,
    /// Never empty: the last list is the one being filled.
    lists: Vec<EntryList>,
}

/// One message's entries: how many, and their encodings back to back.
#[derive(Debug, Default)]
pub(crate) struct EntryList {
    count: usize,
    bytes: Vec<u8>,
}

impl EntryLists {
    /// No entries yet, lists of at most `room` bytes.
    pub(crate) fn new(room: usize) -> Self {
        EntryLists {
            room,
            offered: 0,
            lists: vec![EntryList::default()],
        }
    }

    /// Adds the entry of a member with `info` held in `state` (for `down_secs` when down).
    pub(crate) fn push(&mut self, info: &MemberInfo, state: MemberState, down_secs: u32) {
        self.offered += 1;
        let len = entry_len(info, down_secs);
        // Invariant: `lists` is never empty.
        let list = self.lists.last().expect("a list");
        if list.count > 0 && (list.bytes.len() + len > self.room || list.count == MAX_SYNC_ENTRIES)
        {
            self.lists.push(EntryList::default());
        }
        if len > self.room {
            return;
        }
        let room = self.room;
        let list = self.lists.last_mut().expect("a list");
        if list.bytes.capacity() == 0 {
            list.bytes.reserve(room);
        }
        put_entry(&mut list.bytes, info, state, down_secs);
        list.count += 1;
    }

    /// Whether no entry was offered (one left out for its length counts as offered).
    pub(crate) fn is_empty(&self) -> bool {
        self.offered == 0
    }

    /// The lists, at least one (empty when no entry fitted).
    pub(crate) fn into_lists(self) -> Vec<EntryList> {
        self.lists
    }
}

impl EntryList {
    /// The encoded `SyncReply` (index and fields) carrying this list.
    #[cfg(test)]
    pub(crate) fn sync_reply(
        &self,
        seq: u32,
        digest: &[u8],
        last: bool,
        summarized: u64,
    ) -> Vec<u8> {
        let mut out = Vec::with_capacity(self.bytes.len() + digest.len() + 24);
        self.put_sync_reply(&mut out, seq, digest, last, summarized);
        out
    }

    /// Appends the encoded `SyncReply` (index and fields) carrying this list to `out`.
    pub(crate) fn put_sync_reply(
        &self,
        out: &mut Vec<u8>,
        seq: u32,
        digest: &[u8],
        last: bool,
        summarized: u64,
    ) {
        put_reply(out, seq, digest, last, summarized, |out| self.put(out));
    }

    /// The encoded `SyncPush` (index and field) carrying this list.
    #[cfg(test)]
    pub(crate) fn sync_push(&self) -> Vec<u8> {
        let mut out = Vec::with_capacity(self.bytes.len() + 4);
        self.put_sync_push(&mut out);
        out
    }

    /// Appends the encoded `SyncPush` (index and field) carrying this list to `out`.
    pub(crate) fn put_sync_push(&self, out: &mut Vec<u8>) {
        put_push(out, |out| self.put(out));
    }

    fn put(&self, out: &mut Vec<u8>) {
        push_varint(out, self.count as u64);
        out.extend_from_slice(&self.bytes);
    }
}

/// Appends a `SyncReply`, `SyncPush`, `SyncSummary` or `SyncWant` (index and fields);
/// `false` (nothing written) for any other message.
pub(super) fn put_bulk_message(out: &mut Vec<u8>, m: &Message) -> bool {
    match m {
        Message::SyncReply {
            seq,
            digest,
            entries,
            last,
            summarized,
        } => {
            put_reply(out, *seq, digest, *last, *summarized, |out| {
                put_entries(out, entries)
            });
            true
        }
        Message::SyncPush { entries } => {
            put_push(out, |out| put_entries(out, entries));
            true
        }
        Message::SyncSummary {
            seq,
            bucket,
            split,
            part,
            hashes,
        } => {
            out.push(SYNC_SUMMARY_TAG);
            push_varint(out, u64::from(*seq));
            out.push(*bucket);
            out.push(*split);
            push_varint(out, u64::from(*part));
            put_bytes(out, hashes);
            true
        }
        Message::SyncWant { bucket, hashes } => {
            out.push(SYNC_WANT_TAG);
            out.push(*bucket);
            put_bytes(out, hashes);
            true
        }
        _ => false,
    }
}
