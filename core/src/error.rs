//! Error enums, one per boundary.

use crate::membership::TagError;

/// Why an incoming datagram was dropped. Every variant has a counter in
/// [`crate::Stats::dropped`]; a dropped packet never changes the node's state.
#[derive(Debug, Clone, PartialEq, Eq, thiserror::Error)]
pub enum PacketError {
    /// Larger than the configured cap.
    #[error("packet of {len} bytes exceeds the size cap")]
    TooLarge {
        /// Its length.
        len: usize,
    },
    /// Ended before a complete message.
    #[error("packet truncated")]
    Truncated,
    /// Another wire version.
    #[error("unsupported wire version {0}")]
    Version(u8),
    /// Did not decode (bad enum tag, bad varint, bounds exceeded, invalid tags...).
    #[error("malformed packet")]
    Malformed,
    /// Decoded, but bytes were left over.
    #[error("{0} trailing bytes after the packet")]
    TrailingBytes(usize),
    /// From another cluster.
    #[error("packet from another cluster")]
    WrongCluster,
    /// Addressed to another node id (a previous process at this address).
    #[error("packet addressed to another node")]
    WrongRecipient,
    /// Claims to come from this node's own id.
    #[error("packet claims to come from this node")]
    FromSelf,
    /// Arrived while the node is not running (before start or after leaving).
    #[error("node is not running")]
    NotRunning,
    /// The member table is full and the packet would add a member.
    #[error("member table full")]
    MembersFull,
    /// Failed authentication or decryption (adapter envelopes).
    #[error("packet failed authentication")]
    Unauthenticated,
    /// Authentic, but not fresh: a replay or network duplicate of a sealed datagram already
    /// accepted, or one from an older life of its sender (see [`crate::freshness`]).
    #[error("replayed packet")]
    Replayed,
}

impl PacketError {
    /// Every reason, in counter order.
    pub const ALL: [&'static str; 12] = [
        "too_large",
        "truncated",
        "version",
        "malformed",
        "trailing_bytes",
        "wrong_cluster",
        "wrong_recipient",
        "from_self",
        "not_running",
        "members_full",
        "unauthenticated",
        "replayed",
    ];

    /// Index of this reason in [`PacketError::ALL`] and [`crate::Stats::dropped`].
    pub fn index(&self) -> usize {
        match self {
            PacketError::TooLarge { .. } => 0,
            PacketError::Truncated => 1,
            PacketError::Version(_) => 2,
            PacketError::Malformed => 3,
            PacketError::TrailingBytes(_) => 4,
            PacketError::WrongCluster => 5,
            PacketError::WrongRecipient => 6,
            PacketError::FromSelf => 7,
            PacketError::NotRunning => 8,
            PacketError::MembersFull => 9,
            PacketError::Unauthenticated => 10,
            PacketError::Replayed => 11,
        }
    }
}

/// A user command the node refused.
#[derive(Debug, Clone, PartialEq, Eq, thiserror::Error)]
pub enum CommandError {
    /// `join` with no seed address.
    #[error("join needs at least one seed address")]
    NoSeeds,
    /// The node has left; create a new one to rejoin.
    #[error("the node has left the cluster")]
    Left,
    /// A tag was refused.
    #[error(transparent)]
    Tag(#[from] TagError),
}

/// A configuration that cannot work.
#[derive(Debug, Clone, PartialEq, Eq, thiserror::Error)]
pub enum ConfigError {
    /// A field is out of its allowed range.
    #[error("config field `{field}` is invalid: {reason}")]
    Invalid {
        /// The field.
        field: &'static str,
        /// Why.
        reason: &'static str,
    },
}
