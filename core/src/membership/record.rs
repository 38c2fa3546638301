//! What one member says about itself, as gossiped.

use super::addr::Addrs;
use super::{CompactAddr, MemberState, Tags};
use crate::wire::bounded::BoundedString;
use crate::NodeId;
use core::fmt;
use serde::{Deserialize, Deserializer, Serialize, Serializer};

/// Longest node name, in bytes.
pub const MAX_NAME: usize = 64;

/// Everything a member advertises about itself at one incarnation. Only the member itself
/// creates a new `MemberInfo` (by raising its incarnation); everyone else only relays it.
///
/// The two addresses are read through [`gossip_addr`](Self::gossip_addr) and
/// [`rpc_addr`](Self::rpc_addr): they are stored packed (see `Addrs` in `membership/addr.rs`),
/// so that the usual pair (IPv4, RPC on the gossip host's IP or none) takes 8 bytes inside
/// the struct instead of 38, and a member entry 72 bytes instead of 96 (issue 18: every node
/// holds one per member). On the wire nothing changed: a `MemberInfo` encodes as the struct
/// `id, name, gossip_addr, rpc_addr, incarnation, tags` always did.
///
/// ```
/// use shoal_core::wire::bounded::BoundedString;
/// use shoal_core::{MemberInfo, NodeId, Tags};
/// use std::net::SocketAddr;
/// let gossip: SocketAddr = "10.0.0.7:7946".parse().unwrap();
/// let rpc: SocketAddr = "10.0.0.7:7947".parse().unwrap();
/// let info = MemberInfo::new(
///     NodeId::from_name("w1"),
///     BoundedString::new("w1").unwrap(),
///     gossip,
///     Some(rpc.into()),
///     1,
///     Tags::new(),
/// );
/// assert_eq!(info.gossip_addr(), gossip);
/// assert_eq!(info.rpc_addr().map(|a| a.get()), Some(rpc));
/// ```
#[derive(Clone, PartialEq, Eq)]
pub struct MemberInfo {
    /// Stable identity.
    pub id: NodeId,
    /// Human-readable name (need not be unique; the id is).
    pub name: BoundedString<MAX_NAME>,
    /// The gossip and RPC addresses, packed.
    addrs: Addrs,
    /// Its incarnation: only it raises this, to refute suspicion or to publish new tags.
    pub incarnation: u64,
    /// Its tags at this incarnation.
    pub tags: Tags,
}

impl MemberInfo {
    /// A member's info: its `id`, `name`, where its gossip socket is reachable
    /// (`gossip_addr`), where its RPC endpoint is reachable if it serves RPC (`rpc_addr`),
    /// its `incarnation` and its `tags`.
    pub fn new(
        id: NodeId,
        name: BoundedString<MAX_NAME>,
        gossip_addr: impl Into<CompactAddr>,
        rpc_addr: Option<CompactAddr>,
        incarnation: u64,
        tags: Tags,
    ) -> Self {
        MemberInfo {
            id,
            name,
            addrs: Addrs::new(gossip_addr.into(), rpc_addr),
            incarnation,
            tags,
        }
    }

    /// Where its gossip socket is reachable (the advertised, not the bound, address).
    /// `.get()` or `SocketAddr::from` for the `SocketAddr`; compares equal to one directly.
    #[inline]
    pub fn gossip_addr(&self) -> CompactAddr {
        self.addrs.gossip()
    }

    /// Where its RPC endpoint is reachable, if it serves RPC.
    #[inline]
    pub fn rpc_addr(&self) -> Option<CompactAddr> {
        self.addrs.rpc()
    }

    /// Replaces the gossip address (the RPC address stays).
    pub fn set_gossip_addr(&mut self, gossip_addr: impl Into<CompactAddr>) {
        self.addrs = Addrs::new(gossip_addr.into(), self.addrs.rpc());
    }

    /// Replaces the RPC address (the gossip address stays).
    pub fn set_rpc_addr(&mut self, rpc_addr: Option<CompactAddr>) {
        self.addrs = Addrs::new(self.addrs.gossip(), rpc_addr);
    }
}

/// Shown as the struct with its two address fields, as before they were packed.
impl fmt::Debug for MemberInfo {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.debug_struct("MemberInfo")
            .field("id", &self.id)
            .field("name", &self.name)
            .field("gossip_addr", &self.gossip_addr())
            .field("rpc_addr", &self.rpc_addr())
            .field("incarnation", &self.incarnation)
            .field("tags", &self.tags)
            .finish()
    }
}

/// `MemberInfo` as the wire has always carried it (the derive's field order and names):
/// what it is serialised as, borrowing.
#[derive(Serialize)]
#[serde(rename = "MemberInfo")]
struct WireInfoRef<'a> {
    id: &'a NodeId,
    name: &'a BoundedString<MAX_NAME>,
    gossip_addr: CompactAddr,
    rpc_addr: Option<CompactAddr>,
    incarnation: u64,
    tags: &'a Tags,
}

/// The same, owned: what it is deserialised (and, for fuzzing, generated) from, so that
/// both read the same bytes the old derives did.
#[derive(Deserialize)]
#[cfg_attr(feature = "arbitrary", derive(arbitrary::Arbitrary))]
#[serde(rename = "MemberInfo")]
struct WireInfo {
    id: NodeId,
    name: BoundedString<MAX_NAME>,
    gossip_addr: CompactAddr,
    rpc_addr: Option<CompactAddr>,
    incarnation: u64,
    tags: Tags,
}

impl From<WireInfo> for MemberInfo {
    fn from(w: WireInfo) -> Self {
        MemberInfo::new(
            w.id,
            w.name,
            w.gossip_addr,
            w.rpc_addr,
            w.incarnation,
            w.tags,
        )
    }
}

impl Serialize for MemberInfo {
    fn serialize<S: Serializer>(&self, s: S) -> Result<S::Ok, S::Error> {
        WireInfoRef {
            id: &self.id,
            name: &self.name,
            gossip_addr: self.gossip_addr(),
            rpc_addr: self.rpc_addr(),
            incarnation: self.incarnation,
            tags: &self.tags,
        }
        .serialize(s)
    }
}

impl<'de> Deserialize<'de> for MemberInfo {
    fn deserialize<D: Deserializer<'de>>(d: D) -> Result<Self, D::Error> {
        WireInfo::deserialize(d).map(MemberInfo::from)
    }
}

/// Generated as the derive did (the old fields in order), so fuzz inputs keep their meaning.
#[cfg(feature = "arbitrary")]
impl<'a> arbitrary::Arbitrary<'a> for MemberInfo {
    fn arbitrary(u: &mut arbitrary::Unstructured<'a>) -> arbitrary::Result<Self> {
        WireInfo::arbitrary(u).map(MemberInfo::from)
    }

    fn arbitrary_take_rest(u: arbitrary::Unstructured<'a>) -> arbitrary::Result<Self> {
        WireInfo::arbitrary_take_rest(u).map(MemberInfo::from)
    }

    fn size_hint(depth: usize) -> (usize, Option<usize>) {
        WireInfo::size_hint(depth)
    }
}

/// One membership update as it travels piggybacked on protocol messages.
///
/// Alive carries the member's full info so that anyone can learn a member from it; suspect,
/// failed and left carry only what ordering needs.
#[derive(Clone, PartialEq, Eq, Debug, Serialize, Deserialize)]
#[cfg_attr(feature = "arbitrary", derive(arbitrary::Arbitrary))]
pub enum Update {
    /// The member is alive at this incarnation, with this info.
    Alive(MemberInfo),
    /// `by` suspects the member at `incarnation`.
    Suspect {
        /// Subject.
        id: NodeId,
        /// The subject's incarnation the suspicion is about.
        incarnation: u64,
        /// The observer that suspects it.
        by: NodeId,
    },
    /// `by` declared the member failed at `incarnation`.
    Failed {
        /// Subject.
        id: NodeId,
        /// The subject's incarnation.
        incarnation: u64,
        /// The observer that declared it failed.
        by: NodeId,
    },
    /// The member left on purpose at `incarnation`.
    Left {
        /// Subject.
        id: NodeId,
        /// The subject's incarnation.
        incarnation: u64,
    },
}

impl Update {
    /// The member the update is about.
    pub fn subject(&self) -> NodeId {
        match self {
            Update::Alive(info) => info.id,
            Update::Suspect { id, .. } | Update::Failed { id, .. } | Update::Left { id, .. } => *id,
        }
    }

    /// The subject's incarnation.
    pub fn incarnation(&self) -> u64 {
        match self {
            Update::Alive(info) => info.incarnation,
            Update::Suspect { incarnation, .. }
            | Update::Failed { incarnation, .. }
            | Update::Left { incarnation, .. } => *incarnation,
        }
    }

    /// The state it asserts.
    pub fn state(&self) -> MemberState {
        match self {
            Update::Alive(_) => MemberState::Alive,
            Update::Suspect { .. } => MemberState::Suspect,
            Update::Failed { .. } => MemberState::Failed,
            Update::Left { .. } => MemberState::Left,
        }
    }
}

/// A full member entry as exchanged by anti-entropy sync: info plus current state.
#[derive(Clone, PartialEq, Eq, Debug, Serialize, Deserialize)]
#[cfg_attr(feature = "arbitrary", derive(arbitrary::Arbitrary))]
pub struct SyncEntry {
    /// The member's info at its current incarnation.
    pub info: MemberInfo,
    /// The state the sender holds for it.
    pub state: MemberState,
    /// For failed and left members: how many seconds the sender has held that state. A node
    /// that never knew the member keeps the tombstone for what is left of its time to live,
    /// so every node reaps it at about the same moment and stale "alive" news about it finds
    /// a tombstone everywhere, even on a node that just restarted.
    pub down_secs: u32,
}
