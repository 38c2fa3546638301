//! The node's inputs and outputs: who it is, what it sends, what it reports.

use crate::membership::{Member, Tags};
use crate::partition::PartitionEvent;
use crate::NodeId;
use core::net::SocketAddr;

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

impl From<PartitionEvent> for Event {
    fn from(e: PartitionEvent) -> Self {
        match e {
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
        }
    }
}
