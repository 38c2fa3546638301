//! What one member says about itself, as gossiped.

use super::{CompactAddr, MemberState, Tags};
use crate::wire::bounded::BoundedString;
use crate::NodeId;
use serde::{Deserialize, Serialize};

/// Longest node name, in bytes.
pub const MAX_NAME: usize = 64;

/// Everything a member advertises about itself at one incarnation. Only the member itself
/// creates a new `MemberInfo` (by raising its incarnation); everyone else only relays it.
#[derive(Clone, PartialEq, Eq, Debug, Serialize, Deserialize)]
#[cfg_attr(feature = "arbitrary", derive(arbitrary::Arbitrary))]
pub struct MemberInfo {
    /// Stable identity.
    pub id: NodeId,
    /// Human-readable name (need not be unique; the id is).
    pub name: BoundedString<MAX_NAME>,
    /// Where its gossip socket is reachable (the advertised, not the bound, address).
    /// Packed (see [`CompactAddr`]): `.get()` or `SocketAddr::from` for the `SocketAddr`.
    pub gossip_addr: CompactAddr,
    /// Where its RPC endpoint is reachable, if it serves RPC.
    pub rpc_addr: Option<CompactAddr>,
    /// Its incarnation: only it raises this, to refute suspicion or to publish new tags.
    pub incarnation: u64,
    /// Its tags at this incarnation.
    pub tags: Tags,
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
