//! Packets: the node's only contact with bytes.
//!
//! Rules:
//! - **A datagram is accepted only whole:** at most the MTU, opened with the keyring when one
//!   is set, decoded within the payload budget, addressed to this cluster and (if addressed at
//!   all) to this node, not from itself, and not growing the member table past `max_members`.
//!   Every check happens before any state changes; a refusal is a typed [`PacketError`].
//! - **A datagram sent is at most the MTU:** the payload budget is the MTU less the envelope
//!   when sealing; piggybacked updates fill what the message leaves.
//!
//! - **A sealed datagram is accepted once:** after it opens and its header checks pass, its
//!   freshness stamp must pass the per-sender replay window (`crate::freshness`), else it is
//!   [`PacketError::Replayed`]. Every datagram this node seals carries the next stamp of its
//!   own boot. Plaintext has no stamp (and no protection: see docs/hostile-input.md).
//!
//! [`Packets`] holds the framing state (cluster hash, own id, keyring, own stamp, replay
//! guard) and the send queue.

use super::event::Transmit;
use crate::dissemination::Dissemination;
use crate::envelope::{self, Keyring};
use crate::freshness::{ReplayGuard, Stamp};
use crate::membership::{MemberTable, Update};
use crate::wire::bounded::BoundedVec;
use crate::wire::direct::EntryList;
use crate::wire::{self, Header, Message, Packet, PacketBuilder, DIGEST_BYTES};
use crate::{NodeId, PacketError};
use core::net::SocketAddr;
use std::collections::VecDeque;

/// A message to send: built, or a `SyncReply` or `SyncPush` part whose entries were written
/// straight from the member table (see [`EntryLists`](crate::wire::direct)), appended to the
/// datagram's header when it is built (no body vector of its own).
#[derive(Debug)]
pub(super) enum Outgoing {
    Message(Message),
    /// A `SyncReply` part.
    Reply(ReplyPart),
    /// A `SyncPush` part.
    Push(EntryList),
}

/// One `SyncReply` part: its entries, and the rest of its fields.
#[derive(Debug)]
pub(super) struct ReplyPart {
    pub(super) list: EntryList,
    pub(super) seq: u32,
    /// The replier's digest (in the last part only; empty otherwise).
    pub(super) digest: BoundedVec<u8, DIGEST_BYTES>,
    pub(super) last: bool,
    pub(super) summarized: u64,
}

impl ReplyPart {
    /// Appends the encoded message (index and fields).
    fn put(&self, out: &mut Vec<u8>) {
        self.list
            .put_sync_reply(out, self.seq, &self.digest, self.last, self.summarized)
    }
}

impl From<Message> for Outgoing {
    fn from(m: Message) -> Self {
        Outgoing::Message(m)
    }
}

/// Framing state and the queue of datagrams to send.
#[derive(Debug)]
pub(super) struct Packets {
    cluster: u32,
    me: NodeId,
    mtu: usize,
    keyring: Option<Keyring>,
    /// The stamp of the last datagram sealed (`boot` drawn when the first keyring is set).
    stamp: Stamp,
    guard: ReplayGuard,
    queue: VecDeque<Transmit>,
}

impl Packets {
    /// `life` is the node's starting incarnation; `senders` bounds the replay guard.
    pub(super) fn new(cluster: u32, me: NodeId, mtu: usize, life: u64, senders: usize) -> Self {
        Packets {
            cluster,
            me,
            mtu,
            keyring: None,
            stamp: Stamp {
                life,
                boot: 0,
                counter: 0,
            },
            guard: ReplayGuard::new(senders),
            queue: VecDeque::new(),
        }
    }

    /// Senders the replay guard tracks.
    pub(super) fn tracked_senders(&self) -> usize {
        self.guard.len()
    }

    pub(super) fn keyring(&self) -> Option<&Keyring> {
        self.keyring.as_ref()
    }

    pub(super) fn keyring_mut(&mut self) -> Option<&mut Keyring> {
        self.keyring.as_mut()
    }

    /// Sets the keyring; the first time one is set, `boot` becomes this process's boot id.
    pub(super) fn set_keyring(&mut self, keyring: Option<Keyring>, boot: impl FnOnce() -> u64) {
        if keyring.is_some() && self.stamp.boot == 0 {
            self.stamp.boot = boot().max(1);
        }
        self.keyring = keyring;
    }

    /// The next datagram to send.
    pub(super) fn pop(&mut self) -> Option<Transmit> {
        self.queue.pop_front()
    }

    /// Bytes a packet may use before sealing: the MTU less the envelope, when sealing.
    fn budget(&self) -> usize {
        self.mtu
            - if self.keyring.is_some() {
                envelope::OVERHEAD
            } else {
                0
            }
    }

    fn header(&self, to: Option<NodeId>) -> Header {
        Header {
            cluster: self.cluster,
            from: self.me,
            to: to.map(Into::into),
        }
    }

    /// Opens and decodes a datagram, checking everything that does not need the member table.
    /// A sealed datagram that passes is recorded as seen, so the same one is refused after.
    /// Read into the vectors in `spare` (see `wire::Spare`).
    pub(super) fn open(
        &mut self,
        bytes: &[u8],
        spare: &mut wire::Spare,
    ) -> Result<Packet, PacketError> {
        if bytes.len() > self.mtu {
            return Err(PacketError::TooLarge { len: bytes.len() });
        }
        let opened;
        let mut stamp = None;
        let bytes = match &self.keyring {
            Some(k) => {
                let (plain, s) = k.open_stamped(bytes)?;
                opened = plain;
                stamp = Some(s);
                &opened[..]
            }
            None => bytes,
        };
        let packet = wire::decode_reusing(bytes, self.budget(), spare)?;
        let header = packet.header;
        if header.cluster != self.cluster {
            return Err(PacketError::WrongCluster);
        }
        if header
            .to
            .is_some_and(|to| to != wire::Recipient::of(&self.me))
        {
            return Err(PacketError::WrongRecipient);
        }
        if header.from == self.me {
            return Err(PacketError::FromSelf);
        }
        if let Some(stamp) = stamp {
            self.guard
                .accept(&header.from, stamp)
                .map_err(|_| PacketError::Replayed)?;
        }
        Ok(packet)
    }

    /// Queues `message` to `dst`, with `first` (if any) and then queued updates (each sent at
    /// most `limit` times) piggybacked, sealed when a keyring is set, in at most `max_bytes`
    /// (and the MTU). Returns the datagram's length, or 0 if the message did not fit.
    #[allow(clippy::too_many_arguments)]
    pub(super) fn send(
        &mut self,
        dst: SocketAddr,
        to: Option<NodeId>,
        message: Outgoing,
        first: Option<&Update>,
        gossip: Option<&mut Dissemination>,
        limit: u32,
        max_bytes: Option<usize>,
    ) -> usize {
        let header = self.header(to);
        let cap = max_bytes.map_or(self.mtu, |m| m.min(self.mtu));
        let budget = cap.saturating_sub(self.mtu - self.budget());
        let built = match &message {
            Outgoing::Message(m) => PacketBuilder::new(&header, m, budget),
            Outgoing::Reply(part) => {
                PacketBuilder::with_body_by(&header, budget, |out| part.put(out))
            }
            Outgoing::Push(list) => {
                PacketBuilder::with_body_by(&header, budget, |out| list.put_sync_push(out))
            }
        };
        let Some(mut b) = built else {
            return 0;
        };
        if let Some(u) = first {
            b.try_push(u);
        }
        if let Some(gossip) = gossip {
            gossip.fill_for(&mut b, limit, to);
        }
        let mut payload = b.finish();
        if let Some(k) = &self.keyring {
            self.stamp.counter += 1;
            let mut sealed = Vec::with_capacity(payload.len() + envelope::OVERHEAD);
            // Invariant: the payload is at most mtu - OVERHEAD <= MAX_SEALED - OVERHEAD, the
            // only size sealing refuses.
            k.seal_stamped_into(self.stamp, &payload, &mut sealed)
                .expect("payload within the sealing bound");
            payload = sealed;
        }
        let len = payload.len();
        self.queue.push_back(Transmit { dst, payload });
        len
    }

    /// How many summary hashes fit one datagram to `to` (at most
    /// [`wire::MAX_SUMMARY_HASHES`]), the largest summary message and an empty update list
    /// aside.
    pub(super) fn summary_room(&self, to: NodeId) -> usize {
        let empty = Message::SyncSummary {
            seq: u32::MAX,
            bucket: u8::MAX,
            split: u8::MAX,
            part: u16::MAX,
            hashes: BoundedVec::new(),
        };
        let fixed = wire::encoded_len(&(self.header(Some(to)), empty)) + 2 + 1 + 1;
        (self.budget().saturating_sub(fixed) / 8).min(wire::MAX_SUMMARY_HASHES)
    }

    /// Bytes of entries one bulk message to `to` may carry: the budget less `empty_last`
    /// (the message with no entries, in its largest form, the last part), less a few bytes
    /// for the entries count and the empty updates list.
    pub(super) fn entry_room(&self, to: NodeId, empty_last: &Message) -> usize {
        let empty = wire::encoded_len(&(self.header(Some(to)), empty_last));
        self.budget().saturating_sub(empty + 1 + 3 + 1)
    }
}

/// Refuses, before any change, a packet that would grow `table` past `max_members`.
pub(super) fn check_capacity(
    table: &MemberTable,
    max_members: usize,
    packet: &Packet,
) -> Result<(), PacketError> {
    let room = max_members.saturating_sub(table.len());
    let alive = packet
        .updates
        .iter()
        .filter(|u| matches!(u, Update::Alive(_)))
        .count();
    let entries = match &packet.message {
        Message::SyncReply { entries, .. } | Message::SyncPush { entries } => entries.len(),
        _ => 0,
    };
    if alive + entries <= room {
        // Even if every one were new, they fit: no lookups needed (the usual case).
        return Ok(());
    }
    let mut new_ids: Vec<NodeId> = packet
        .updates
        .iter()
        .filter_map(|u| match u {
            Update::Alive(i) => Some(i.id),
            _ => None,
        })
        .collect();
    if let Message::SyncReply { entries, .. } | Message::SyncPush { entries } = &packet.message {
        new_ids.extend(entries.iter().map(|e| e.info.id));
    }
    new_ids.retain(|id| table.get(id).is_none());
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
