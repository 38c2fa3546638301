//! Counters a node keeps about itself, readable through [`crate::Node::stats`].

use crate::PacketError;

/// Monotonic counters and current gauges of one node.
#[derive(Clone, Debug, Default, PartialEq, Eq)]
pub struct Stats {
    /// Datagrams handed to `handle_packet`.
    pub packets_in: u64,
    /// Bytes handed to `handle_packet`.
    pub bytes_in: u64,
    /// Datagrams emitted by `poll_transmit`.
    pub packets_out: u64,
    /// Bytes emitted by `poll_transmit`.
    pub bytes_out: u64,
    /// Dropped datagrams, indexed like [`PacketError::ALL`].
    pub dropped: [u64; 12],
    /// Inputs whose `now` was older than one already seen (time never moves back).
    pub stale_now: u64,
    /// Membership updates that changed the table.
    pub updates_applied: u64,
    /// Times this node raised its incarnation to refute news about itself.
    pub refutations: u64,
    /// Queued updates dropped because the dissemination queue was full.
    pub broadcasts_dropped: u64,
    /// Failure probes started (periodic, phi-triggered and sweeps).
    pub probes: u64,
    /// Failure probes that got no answer, direct or indirect.
    pub probe_failures: u64,
    /// Times this node suspected a member itself.
    pub suspicions: u64,
    /// Members this node declared failed itself.
    pub failures_declared: u64,
    /// Acks that matched no outstanding ping (late, duplicated or spoofed).
    pub stale_acks: u64,
    /// Local health score (Lifeguard): 0 is healthy; timeouts stretch by `score + 1`.
    pub health: u32,
    /// Times another live process was reported claiming this node's id.
    pub identity_conflicts: u64,
    /// Live members, this node included.
    pub live_members: usize,
    /// Failed and left members kept as tombstones.
    pub tombstones: usize,
    /// Piggybacked updates waiting to be sent.
    pub queued_updates: usize,
    /// Replies not sent because the address is not validated and its amplification budget
    /// (3x the bytes received from it) could not hold them.
    pub replies_limited: u64,
    /// Address-validation challenges sent.
    pub challenges_sent: u64,
    /// Echoes whose token did not match (forged, expired or for another address).
    pub bad_echoes: u64,
    /// Senders whose replay window this node keeps (bounded; see [`crate::freshness`]).
    pub replay_senders: usize,
}

impl Stats {
    /// Datagrams dropped for `reason`.
    pub fn dropped_for(&self, reason: &PacketError) -> u64 {
        self.dropped[reason.index()]
    }

    /// Datagrams dropped for any reason.
    pub fn dropped_total(&self) -> u64 {
        self.dropped.iter().sum()
    }
}
