//! The gossip wire format: the only module that sees raw bytes.
//!
//! A datagram is `[version: u8] [postcard(Header, Message)] [postcard(updates)]`. Decoding is
//! strict, in this order: size cap, version, postcard decode with bounded containers, no
//! trailing bytes. Encoding never exceeds the size cap: [`PacketBuilder`] adds piggybacked
//! updates only while they fit.

pub mod bounded;
pub(crate) mod direct;

use crate::membership::{SyncEntry, Update};
use crate::{NodeId, PacketError};
use bounded::BoundedVec;
use serde::{Deserialize, Serialize};

/// The wire version this build speaks. A packet with another first byte is dropped with
/// [`PacketError::Version`]. Version 2 added sync summaries (`SyncSummary`, `SyncWant`, and
/// `SyncReply::summarized`).
pub const WIRE_VERSION: u8 = 2;
/// The largest datagram any node accepts, whatever its configuration (the largest UDP
/// payload over IPv4).
pub const MAX_DATAGRAM: usize = 65_507;
/// Most piggybacked updates in one packet.
pub const MAX_UPDATES: usize = 256;
/// Most sync entries in one packet.
pub const MAX_SYNC_ENTRIES: usize = 128;
/// Number of buckets in an anti-entropy digest.
pub const DIGEST_BUCKETS: usize = 64;
/// Bytes of an encoded digest (a 32-bit value per bucket).
pub const DIGEST_BYTES: usize = DIGEST_BUCKETS * 4;
/// Most entry hashes in one [`Message::SyncSummary`] or [`Message::SyncWant`] (8 bytes
/// each: 1,280 bytes, within a 1,400-byte MTU with the header and an envelope).
pub const MAX_SUMMARY_HASHES: usize = 160;
/// Bytes of the hashes of one summary or want at most.
pub const SUMMARY_BYTES: usize = MAX_SUMMARY_HASHES * 8;
/// Finest split of one bucket's summary: into `2^MAX_SUMMARY_SPLIT` parts.
pub const MAX_SUMMARY_SPLIT: u8 = 8;

/// Who sent a packet, to whom, in which cluster.
///
/// Every datagram carries one, so its size is most of a heartbeat's: 26 bytes (a fixed
/// 4-byte cluster hash, the 16-byte sender id, a 5-byte recipient tag), where a full
/// recipient id and a varint cluster hash took 39 (see docs/membership.md, "Bytes").
#[derive(Clone, Copy, PartialEq, Eq, Debug, Serialize, Deserialize)]
#[cfg_attr(feature = "arbitrary", derive(arbitrary::Arbitrary))]
pub struct Header {
    /// Hash of the cluster name: packets from another cluster are dropped. Sent as 4 fixed
    /// bytes (a hash is almost always 5 as a varint).
    #[serde(with = "fixed_u32")]
    pub cluster: u32,
    /// The sender's id.
    pub from: NodeId,
    /// The intended recipient, when the sender knows it. A packet for another id (a previous
    /// process at the same address) is dropped.
    pub to: Option<Recipient>,
}

/// Bytes of an encoded [`Header`] without a recipient: the 4-byte cluster hash, the 16-byte
/// sender id and the option tag. A recipient adds its 4 bytes.
const HEADER_MIN: usize = 4 + 16 + 1;

impl Header {
    /// Appends the header's encoding to `out`, byte for byte what postcard writes for it
    /// (the serde derive above stays the definition; a test holds the two equal).
    ///
    /// Written by hand because every datagram carries one: postcard serialises a `[u8; N]`
    /// as a tuple, one `serialize_u8` call and one push per byte, so the 16-byte sender id
    /// alone cost more instructions than the rest of a heartbeat's encoding (issue 18).
    fn encode_into(&self, out: &mut Vec<u8>) {
        out.extend_from_slice(&self.cluster.to_le_bytes());
        out.extend_from_slice(&self.from.0);
        match self.to {
            None => out.push(0),
            Some(Recipient(tag)) => {
                out.push(1);
                out.extend_from_slice(&tag);
            }
        }
    }

    /// Reads a header from the front of `bytes`, returning it and the rest: what postcard's
    /// decoding of it accepts and refuses, with the same reason (a short input is
    /// `Truncated`, an option tag other than 0 or 1 is `Malformed`), without the per-byte
    /// calls (see [`encode_into`](Self::encode_into)).
    fn decode_prefix(bytes: &[u8]) -> Result<(Header, &[u8]), PacketError> {
        let (fixed, rest) = bytes
            .split_first_chunk::<HEADER_MIN>()
            .ok_or(PacketError::Truncated)?;
        let mut cluster = [0u8; 4];
        cluster.copy_from_slice(&fixed[..4]);
        let mut from = [0u8; 16];
        from.copy_from_slice(&fixed[4..20]);
        let (to, rest) = match fixed[20] {
            0 => (None, rest),
            1 => {
                let (tag, rest) = rest
                    .split_first_chunk::<4>()
                    .ok_or(PacketError::Truncated)?;
                (Some(Recipient(*tag)), rest)
            }
            _ => return Err(PacketError::Malformed),
        };
        let header = Header {
            cluster: u32::from_le_bytes(cluster),
            from: NodeId(from),
            to,
        };
        Ok((header, rest))
    }
}

/// A recipient tag: 32 bits of a hash of the recipient's id.
///
/// The recipient check guards against accidents (a datagram meant for a previous process at
/// the same address), not attackers (authentication is the envelope's job), so 32 bits do
/// the job of the full 16-byte id: a stale datagram passes by accident with odds 2⁻³².
#[derive(Clone, Copy, PartialEq, Eq, Debug, Serialize, Deserialize)]
#[cfg_attr(feature = "arbitrary", derive(arbitrary::Arbitrary))]
pub struct Recipient(pub [u8; 4]);

impl Recipient {
    /// The tag of `id`.
    pub fn of(id: &NodeId) -> Self {
        let v = u128::from_le_bytes(id.0);
        let h = crate::hash::mix64((v as u64) ^ crate::hash::mix64((v >> 64) as u64));
        Recipient((h as u32).to_le_bytes())
    }
}

impl From<NodeId> for Recipient {
    fn from(id: NodeId) -> Self {
        Recipient::of(&id)
    }
}

/// A `u32` as 4 little-endian bytes instead of postcard's varint.
mod fixed_u32 {
    use serde::{Deserialize, Deserializer, Serialize, Serializer};

    pub(super) fn serialize<S: Serializer>(v: &u32, s: S) -> Result<S::Ok, S::Error> {
        v.to_le_bytes().serialize(s)
    }

    pub(super) fn deserialize<'de, D: Deserializer<'de>>(d: D) -> Result<u32, D::Error> {
        <[u8; 4]>::deserialize(d).map(u32::from_le_bytes)
    }
}

/// The protocol message a packet carries (besides its piggybacked updates).
#[derive(Clone, PartialEq, Eq, Debug, Serialize, Deserialize)]
#[cfg_attr(feature = "arbitrary", derive(arbitrary::Arbitrary))]
pub enum Message {
    /// Carries only piggybacked updates.
    Gossip,
    /// Direct probe or heartbeat: answer with `Ack { seq }`.
    Ping {
        /// Probe number, echoed in the ack.
        seq: u32,
    },
    /// Answer to a ping.
    Ack {
        /// The probe number being answered.
        seq: u32,
    },
    /// Ask the recipient to probe `target` on the sender's behalf (SWIM ping-req). The
    /// recipient probes it at the address in its own table, and only if it knows the target as
    /// live: an address carried in the request could turn it into a reflector towards
    /// arbitrary hosts, so the request carries none.
    PingReq {
        /// The requester's probe number, echoed back in the relayed ack.
        seq: u32,
        /// The member to probe.
        target: NodeId,
    },
    /// A relay's answer to a ping-req: `target` answered (`ok`) or did not in time.
    IndirectAck {
        /// The requester's probe number.
        seq: u32,
        /// The probed member.
        target: NodeId,
        /// Whether the target acked the relay.
        ok: bool,
    },
    /// A request to join: the recipient answers with its full state as `SyncReply`.
    Join,
    /// Anti-entropy request: the sender's digest of its member table.
    Sync {
        /// Exchange number, echoed by the reply.
        seq: u32,
        /// Per-bucket digest of the sender's member table.
        digest: BoundedVec<u8, DIGEST_BYTES>,
    },
    /// Anti-entropy answer: entries of the buckets that differ, possibly split over several
    /// packets, plus the replier's digest so the requester can push back what it has newer.
    SyncReply {
        /// The request's exchange number (0 for a join reply).
        seq: u32,
        /// The replier's digest (sent in the last part only; empty otherwise).
        digest: BoundedVec<u8, DIGEST_BYTES>,
        /// A slice of the replier's entries.
        entries: BoundedVec<SyncEntry, MAX_SYNC_ENTRIES>,
        /// Whether this is the last part.
        last: bool,
        /// Buckets (bit per bucket) answered with a `SyncSummary` instead of entries (last
        /// part only): the requester pushes what the replier lacks there from the summary,
        /// not the whole bucket. Summaries may arrive after the last part.
        summarized: u64,
    },
    /// Entries the requester holds newer than the replier, after a `SyncReply`.
    SyncPush {
        /// A slice of the requester's entries.
        entries: BoundedVec<SyncEntry, MAX_SYNC_ENTRIES>,
    },
    /// Address validation (like QUIC's Retry token): the sender will not answer this address
    /// with more than 3x the bytes it received from it until the address echoes `token`.
    Challenge {
        /// A keyed, stateless token for the recipient's address.
        token: u64,
    },
    /// The answer to a `Challenge`: proves the sender receives at its address.
    Echo {
        /// The token being echoed.
        token: u64,
    },
    /// A `Join` sent again after its seed's `Challenge`, echoing the token in the same
    /// datagram: the seed validates the address and answers it at once (a separate `Echo`
    /// could be overtaken by the join, which would then be challenged again).
    JoinEcho {
        /// The token being echoed.
        token: u64,
    },
    /// A `Sync` sent again after the peer's `Challenge`, echoing the token (see `JoinEcho`).
    SyncEcho {
        /// Exchange number, echoed by the reply.
        seq: u32,
        /// Per-bucket digest of the sender's member table.
        digest: BoundedVec<u8, DIGEST_BYTES>,
        /// The token being echoed.
        token: u64,
    },
    /// Part of a sync reply, instead of a large bucket's entries: the 64-bit hashes of the
    /// replier's entries (id, incarnation, state) in one part of that bucket. The requester
    /// asks for what it lacks (`SyncWant`) and pushes what the replier lacks, so entries both
    /// hold are not sent at all (see `node/antientropy.rs`).
    SyncSummary {
        /// The request's exchange number.
        seq: u32,
        /// The digest bucket.
        bucket: u8,
        /// The bucket is split into `2^split` parts by the top bits of the hashes.
        split: u8,
        /// Which part: the hashes whose top `split` bits equal it.
        part: u16,
        /// The part's hashes, 8 little-endian bytes each, ascending.
        hashes: BoundedVec<u8, SUMMARY_BYTES>,
    },
    /// After a `SyncSummary`: the entries of `bucket` whose hashes are listed, please (the
    /// answer is a `SyncPush`).
    SyncWant {
        /// The digest bucket.
        bucket: u8,
        /// The wanted hashes, 8 little-endian bytes each.
        hashes: BoundedVec<u8, SUMMARY_BYTES>,
    },
}

/// Reads summary hashes (8 little-endian bytes each); a trailing partial hash is ignored
/// (the decoder refuses such a message, so none arrives here).
pub fn read_hashes(bytes: &[u8]) -> impl Iterator<Item = u64> + '_ {
    bytes.chunks_exact(8).map(|c| {
        let mut x = [0u8; 8];
        x.copy_from_slice(c);
        u64::from_le_bytes(x)
    })
}

/// Writes summary hashes as [`read_hashes`] reads them. At most [`MAX_SUMMARY_HASHES`]
/// are taken.
pub fn write_hashes(hashes: &[u64]) -> BoundedVec<u8, SUMMARY_BYTES> {
    let bytes: Vec<u8> = hashes
        .iter()
        .take(MAX_SUMMARY_HASHES)
        .flat_map(|h| h.to_le_bytes())
        .collect();
    // Invariant: at most MAX_SUMMARY_HASHES hashes of 8 bytes were written.
    BoundedVec::try_from_vec(bytes).expect("within SUMMARY_BYTES")
}

impl Message {
    /// A short name for logs and counters.
    pub fn kind(&self) -> &'static str {
        match self {
            Message::Gossip => "gossip",
            Message::Ping { .. } => "ping",
            Message::Ack { .. } => "ack",
            Message::PingReq { .. } => "ping-req",
            Message::IndirectAck { .. } => "indirect-ack",
            Message::Join => "join",
            Message::Sync { .. } => "sync",
            Message::SyncReply { .. } => "sync-reply",
            Message::SyncPush { .. } => "sync-push",
            Message::Challenge { .. } => "challenge",
            Message::Echo { .. } => "echo",
            Message::JoinEcho { .. } => "join-echo",
            Message::SyncEcho { .. } => "sync-echo",
            Message::SyncSummary { .. } => "sync-summary",
            Message::SyncWant { .. } => "sync-want",
        }
    }

    /// Whether the message carries entries or hashes (its encoding is most of a datagram).
    fn is_bulk(&self) -> bool {
        matches!(
            self,
            Message::SyncReply { .. }
                | Message::SyncPush { .. }
                | Message::SyncSummary { .. }
                | Message::SyncWant { .. }
        )
    }

    /// Whether the fields postcard cannot check hold: summary and want hashes are whole
    /// 8-byte values, a bucket exists, a part lies within its split.
    fn well_formed(&self) -> bool {
        match self {
            Message::SyncSummary {
                bucket,
                split,
                part,
                hashes,
                ..
            } => {
                usize::from(*bucket) < DIGEST_BUCKETS
                    && *split <= MAX_SUMMARY_SPLIT
                    && u32::from(*part) < (1u32 << split)
                    && hashes.len() % 8 == 0
            }
            Message::SyncWant { bucket, hashes } => {
                usize::from(*bucket) < DIGEST_BUCKETS && hashes.len() % 8 == 0
            }
            _ => true,
        }
    }
}

/// A decoded packet.
#[derive(Clone, PartialEq, Eq, Debug)]
pub struct Packet {
    /// Routing header.
    pub header: Header,
    /// The message.
    pub message: Message,
    /// Piggybacked membership updates.
    pub updates: Vec<Update>,
}

/// Decodes one datagram of at most `cap` bytes.
pub fn decode(bytes: &[u8], cap: usize) -> Result<Packet, PacketError> {
    decode_reusing(bytes, cap, &mut Spare::default())
}

/// The vectors of a decoded packet, handed back by the node once it has applied them, for
/// [`decode_reusing`] to read the next packet into: reading a packet's updates and sync
/// entries then allocates nothing. (A fresh vector a packet, 2 KiB for 16 updates
/// and up to 3 KiB for a sync reply's entries, is a large chunk that glibc serves from its
/// bins; malloc and free together were 12 % of perf samples at 5,000 simulated members.)
#[derive(Debug, Default)]
pub(crate) struct Spare {
    /// For the next packet's piggybacked updates.
    pub(crate) updates: Vec<Update>,
    /// For the next sync reply's or push's entries.
    pub(crate) entries: Vec<SyncEntry>,
}

/// [`decode`], reading into the vectors in `spare` (taken from it; see [`Spare`]).
pub(crate) fn decode_reusing(
    bytes: &[u8],
    cap: usize,
    spare: &mut Spare,
) -> Result<Packet, PacketError> {
    if bytes.len() > cap.min(MAX_DATAGRAM) {
        return Err(PacketError::TooLarge { len: bytes.len() });
    }
    let (&version, rest) = bytes.split_first().ok_or(PacketError::Truncated)?;
    if version != WIRE_VERSION {
        return Err(PacketError::Version(version));
    }
    let (header, rest) = Header::decode_prefix(rest)?;
    let (message, rest) = take_message(rest, &mut spare.entries)?;
    let mut room = core::mem::take(&mut spare.updates);
    // Most datagrams (every heartbeat in a settled cluster) end in a zero update count:
    // exactly what postcard would make of it (an empty list, nothing trailing), without
    // setting up a sequence.
    let updates = if rest == [0] {
        room.clear();
        room
    } else if direct::take_updates(rest, &mut room).is_some() {
        room
    } else {
        let (updates, trailing) = take::<BoundedVec<Update, MAX_UPDATES>>(rest)?;
        if !trailing.is_empty() {
            return Err(PacketError::TrailingBytes(trailing.len()));
        }
        updates.into_inner()
    };
    Ok(Packet {
        header,
        message,
        updates,
    })
}

/// postcard's variant indexes of the two messages of every heartbeat (the order of
/// [`Message`]'s variants).
const PING_TAG: u8 = 1;
const ACK_TAG: u8 = 2;
/// postcard's variant index of `Sync` (anti-entropy: a 256-byte digest, which postcard
/// would serialise and read one byte at a time).
const SYNC_TAG: u8 = 6;

/// Appends `message`'s postcard encoding to `out`. A ping or an ack (a settled cluster's
/// traffic) and a sync request are written directly: the variant index, then the fields
/// in order, as postcard writes a struct variant; anything else goes through postcard.
fn encode_message(message: &Message, mut out: Vec<u8>) -> Vec<u8> {
    match *message {
        Message::Ping { seq } => {
            out.push(PING_TAG);
            push_varint(&mut out, u64::from(seq));
            out
        }
        Message::Ack { seq } => {
            out.push(ACK_TAG);
            push_varint(&mut out, u64::from(seq));
            out
        }
        // A struct variant's fields in order: `seq` a varint, the digest a length varint
        // and its bytes (postcard writes a `u8` as itself).
        Message::Sync { seq, ref digest } => {
            out.reserve(
                1 + varint_len(u64::from(seq)) + varint_len(digest.len() as u64) + digest.len(),
            );
            out.push(SYNC_TAG);
            push_varint(&mut out, u64::from(seq));
            push_varint(&mut out, digest.len() as u64);
            out.extend_from_slice(digest);
            out
        }
        Message::SyncReply { .. }
        | Message::SyncPush { .. }
        | Message::SyncSummary { .. }
        | Message::SyncWant { .. } => {
            direct::put_bulk_message(&mut out, message);
            out
        }
        // Invariant: as in `encode_value`, postcard cannot fail on wire types.
        _ => postcard::to_extend(message, out).expect("postcard serialises wire types infallibly"),
    }
}

/// Takes a message from the front of `bytes`. A one-byte ping or ack index followed by a
/// `seq` varint that ends within four bytes is read directly: postcard reads exactly such
/// bytes as that message, whatever they hold (it refuses only a fifth varint byte out of
/// range). So are a sync request and, through the direct codec (`direct.rs`), the messages
/// carrying entries or summary hashes. Everything else, the rarer and the malformed, goes
/// through postcard. A sync reply's or push's entries are read into `spare` (taken from
/// it, its room reused).
fn take_message<'a>(
    bytes: &'a [u8],
    spare: &mut Vec<SyncEntry>,
) -> Result<(Message, &'a [u8]), PacketError> {
    if let [tag @ (PING_TAG | ACK_TAG), rest @ ..] = bytes {
        if let Some((seq, rest)) = short_varint(rest) {
            let message = if *tag == PING_TAG {
                Message::Ping { seq }
            } else {
                Message::Ack { seq }
            };
            return Ok((message, rest));
        }
    }
    if let [SYNC_TAG, rest @ ..] = bytes {
        if let Some(sync) = take_sync(rest) {
            return Ok(sync);
        }
    }
    let direct = match bytes {
        [tag, rest @ ..] => {
            let mut r = direct::Reader::new(rest);
            r.bulk_message(*tag, spare).map(|m| (m, r.rest))
        }
        [] => None,
    };
    let (message, rest) = match direct {
        Some(read) => read,
        None => take::<Message>(bytes)?,
    };
    // The fields postcard cannot check, however the message was read.
    if !message.well_formed() {
        return Err(PacketError::Malformed);
    }
    Ok((message, rest))
}

/// A well-formed `Sync` body (after its index): a `seq` varint that postcard accepts as a
/// `u32`, a length varint ending within four bytes and at most [`DIGEST_BYTES`], and that
/// many bytes present. postcard reads exactly such bytes as this message; `None` for
/// anything else, which then goes through postcard for its verdict.
fn take_sync(bytes: &[u8]) -> Option<(Message, &[u8])> {
    let (seq, rest) = u32_varint(bytes)?;
    let (len, rest) = short_varint(rest)?;
    let len = len as usize;
    if len > DIGEST_BYTES || rest.len() < len {
        return None;
    }
    let (digest, rest) = rest.split_at(len);
    let digest = BoundedVec::try_from_vec(digest.to_vec()).ok()?;
    Some((Message::Sync { seq, digest }, rest))
}

/// A `u32` varint from the front of `bytes` where postcard accepts one (at most five
/// bytes, the fifth below 16), and the rest; `None` where postcard would refuse it or
/// run out of bytes.
fn u32_varint(bytes: &[u8]) -> Option<(u32, &[u8])> {
    let mut value = 0u32;
    for (i, &b) in bytes.iter().take(5).enumerate() {
        if i == 4 && b > 0x0f {
            return None;
        }
        value |= u32::from(b & 0x7f) << (7 * i);
        if b & 0x80 == 0 {
            return Some((value, &bytes[i + 1..]));
        }
    }
    None
}

/// A varint from the front of `bytes` that ends within its first four bytes (so below
/// 2^28), as postcard reads one, and the rest; `None` if it does not end that soon.
fn short_varint(bytes: &[u8]) -> Option<(u32, &[u8])> {
    let mut value = 0u32;
    for (i, &b) in bytes.iter().take(4).enumerate() {
        value |= u32::from(b & 0x7f) << (7 * i);
        if b & 0x80 == 0 {
            return Some((value, &bytes[i + 1..]));
        }
    }
    None
}

/// One postcard value from the front of `bytes`, and the rest. postcard decodes a tuple as
/// its fields in turn, so taking the message and then the updates accepts and refuses what
/// taking the pair did, for the same reasons.
fn take<'a, T: Deserialize<'a>>(bytes: &'a [u8]) -> Result<(T, &'a [u8]), PacketError> {
    postcard::take_from_bytes(bytes).map_err(|e| match e {
        postcard::Error::DeserializeUnexpectedEnd => PacketError::Truncated,
        _ => PacketError::Malformed,
    })
}

/// Bytes of `n` as a varint (postcard's LEB128).
fn varint_len(n: u64) -> usize {
    (64 - (n | 1).leading_zeros()).div_ceil(7) as usize
}

/// Appends `n` as a varint (postcard's LEB128).
fn push_varint(out: &mut Vec<u8>, mut n: u64) {
    while n >= 0x80 {
        out.push((n as u8 & 0x7f) | 0x80);
        n >>= 7;
    }
    out.push(n as u8);
}

/// Encodes one value with postcard. Serialising our own types into a `Vec` cannot fail
/// (no maps with unknown length, no custom errors), so a failure here is a bug.
pub fn encode_value<T: Serialize>(value: &T) -> Vec<u8> {
    // Invariant: all wire types are plain data that postcard can always serialise.
    postcard::to_allocvec(value).expect("postcard serialises wire types infallibly")
}

/// The length of `value`'s encoding, computed without building it (no allocation).
pub fn encoded_len<T: Serialize>(value: &T) -> usize {
    // Invariant: all wire types are plain data that postcard can always serialise.
    postcard::experimental::serialized_size(value)
        .expect("postcard serialises wire types infallibly")
}

/// Initial capacity of a datagram under construction: the version, the largest header (26
/// bytes), any message without a digest or entries, and the update count.
const HEAD_CAPACITY: usize = 64;

/// Builds one datagram within a byte budget: a fixed header and message, then as many
/// piggybacked updates as fit.
///
/// One buffer holds the header and message (`..head`) and then the updates; the update
/// count, which the wire puts between them, is inserted by [`finish`](Self::finish) (one or
/// two bytes moved over at most a datagram). So a datagram is one allocation, not one for
/// the message and one for its updates.
#[derive(Debug)]
pub struct PacketBuilder {
    buf: Vec<u8>,
    head: usize,
    count: usize,
    budget: usize,
}

impl PacketBuilder {
    /// Starts a packet. Returns `None` if the header and message alone exceed `budget`, or
    /// if the message is one the decoder refuses (a summary field out of its bounds): what
    /// is encoded always decodes.
    pub fn new(header: &Header, message: &Message, budget: usize) -> Option<Self> {
        // Sized for the common datagram (a heartbeat is under 40 bytes) rather than the
        // budget: an allocation this small is served from the allocator's thread cache,
        // where one of MTU size takes its slow path on both malloc and free. Piggybacked
        // updates are added to the exact length by `finish`. A message carrying entries or
        // hashes fills most of the budget: one allocation of that size, not a doubling
        // series of reallocations (5 from 64 to 1,400 bytes).
        let capacity = match message {
            Message::Ping { .. } | Message::Ack { .. } => HEAD_CAPACITY,
            // What is encoded always decodes: a summary out of bounds is not written.
            m if !m.well_formed() => return None,
            m if m.is_bulk() => budget,
            _ => HEAD_CAPACITY,
        };
        let mut head = Vec::with_capacity(capacity.min(budget.min(MAX_DATAGRAM)));
        head.push(WIRE_VERSION);
        header.encode_into(&mut head);
        // Serialised straight into the datagram: no intermediate allocation per packet.
        let buf = encode_message(message, head);
        let b = PacketBuilder {
            head: buf.len(),
            buf,
            count: 0,
            budget: budget.min(MAX_DATAGRAM),
        };
        (b.len() <= b.budget).then_some(b)
    }

    /// Starts a packet whose message is already encoded (`body`: its variant index and
    /// fields, written by the direct codec from the member table, within the decoder's
    /// bounds). `None` if the header and body exceed `budget`.
    #[cfg(test)]
    pub(crate) fn with_body(header: &Header, body: &[u8], budget: usize) -> Option<Self> {
        Self::with_body_by(header, budget, |out| out.extend_from_slice(body))
    }

    /// Starts a packet whose message `write_body` appends (its variant index and fields,
    /// within the decoder's bounds) straight into the datagram: a sync reply's or push's
    /// entries are copied once, from their list into the datagram, with no body vector of
    /// their own in between (two allocations of about an MTU each, per datagram, saved).
    /// `None` if the header and body exceed `budget`.
    pub(crate) fn with_body_by(
        header: &Header,
        budget: usize,
        write_body: impl FnOnce(&mut Vec<u8>),
    ) -> Option<Self> {
        let budget = budget.min(MAX_DATAGRAM);
        // A body carries entries and fills most of the budget (see `new`).
        let mut head = Vec::with_capacity(budget);
        head.push(WIRE_VERSION);
        header.encode_into(&mut head);
        write_body(&mut head);
        let b = PacketBuilder {
            head: head.len(),
            buf: head,
            count: 0,
            budget,
        };
        (b.len() <= b.budget).then_some(b)
    }

    /// The encoded length so far.
    pub fn len(&self) -> usize {
        self.buf.len() + varint_len(self.count as u64)
    }

    /// Whether no update was added.
    pub fn is_empty(&self) -> bool {
        self.count == 0
    }

    /// Bytes still free for updates (a conservative figure: it reserves room for the count
    /// growing by a byte).
    pub fn remaining(&self) -> usize {
        self.budget.saturating_sub(self.len() + 1)
    }

    /// Whether an encoded update of `len` bytes would fit now: exactly when
    /// [`try_push_encoded`](Self::try_push_encoded) of one that long would succeed.
    pub fn fits(&self, len: usize) -> bool {
        self.count < MAX_UPDATES
            && self.buf.len() + varint_len(self.count as u64 + 1) + len <= self.budget
    }

    /// Appends an already-encoded update if it fits; returns whether it did.
    pub fn try_push_encoded(&mut self, encoded: &[u8]) -> bool {
        if !self.fits(encoded.len()) {
            return false;
        }
        if self.count == 0 && self.buf.capacity() - self.buf.len() < encoded.len() + 2 {
            // Room for a few updates and the count at once: most datagrams carry none or a
            // handful.
            let room = self.budget.saturating_sub(self.buf.len());
            self.buf.reserve((encoded.len() * 4).max(128).min(room) + 2);
        }
        self.buf.extend_from_slice(encoded);
        self.count += 1;
        true
    }

    /// Appends an update if it fits; returns whether it did.
    pub fn try_push(&mut self, update: &Update) -> bool {
        self.try_push_encoded(&direct::encode_update(update))
    }

    /// The finished datagram.
    pub fn finish(self) -> Vec<u8> {
        let mut out = self.buf;
        if self.count < 0x80 {
            // One byte, the common case (most datagrams carry a handful of updates).
            out.reserve_exact(1);
            out.insert(self.head, self.count as u8);
        } else {
            let mut count = Vec::with_capacity(2);
            push_varint(&mut count, self.count as u64);
            out.splice(self.head..self.head, count);
        }
        out
    }
}

/// Encodes a packet with no size budget beyond [`MAX_DATAGRAM`]; for tests and tools. Returns
/// `None` if it would not fit.
pub fn encode(packet: &Packet) -> Option<Vec<u8>> {
    let mut b = PacketBuilder::new(&packet.header, &packet.message, MAX_DATAGRAM)?;
    for u in &packet.updates {
        if !b.try_push(u) {
            return None;
        }
    }
    Some(b.finish())
}

#[cfg(test)]
pub(crate) mod tests;

/// A packet with at most [`MAX_UPDATES`] updates, so that it always passes the decoder's
/// bounds (it may still exceed [`MAX_DATAGRAM`] or an MTU once encoded).
#[cfg(feature = "arbitrary")]
impl<'a> arbitrary::Arbitrary<'a> for Packet {
    fn arbitrary(u: &mut arbitrary::Unstructured<'a>) -> arbitrary::Result<Self> {
        Ok(Packet {
            header: u.arbitrary()?,
            message: u.arbitrary()?,
            updates: u
                .arbitrary::<BoundedVec<Update, MAX_UPDATES>>()?
                .into_inner(),
        })
    }
}
