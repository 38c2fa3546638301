//! Hostile input in the simulator (issue 17): a cluster key for every node, a record of the
//! last datagrams delivered, and injection of a datagram from any source address, spoofed
//! ones included, reporting what the node did with it and what it sent back there.
//!
//! Rules: everything here is off unless a run asks for it ([`Sim::set_cluster_key`],
//! [`Sim::capture_delivered`]), so runs that do not ask keep their traces; injection goes
//! through the node's ordinary `handle_packet`, and what the node sends to cluster members
//! goes on the simulated network like any other datagram.

use super::{index_of, Sim, SimNode};
use shoal_core::{Event, Key, Keyring, PacketError, Stats};
use std::collections::VecDeque;
use std::net::SocketAddr;

/// The keyring of a simulated cluster with key `k`.
pub(super) fn keyring(k: [u8; 32]) -> Keyring {
    Keyring::new(Key::new(k))
}

/// A datagram as it was delivered.
#[derive(Clone, Debug)]
pub struct Captured {
    /// Sender index.
    pub from: usize,
    /// Recipient index.
    pub to: usize,
    /// The sender's restart count when it was delivered.
    pub from_restarts: u32,
    /// The recipient's restart count when it handled the datagram: a replay to the same
    /// process must be refused; a restarted one has forgotten what it saw.
    pub to_restarts: u32,
    /// The datagram.
    pub bytes: Vec<u8>,
    /// Whether its recipient's freshness check saw it (it was accepted, or refused at or
    /// after that check): only then must a replay be refused as `Replayed`.
    pub seen: bool,
}

/// What one injected datagram did.
#[derive(Clone, Debug)]
pub struct Injected {
    /// `handle_packet`'s answer.
    pub result: Result<(), PacketError>,
    /// The node's stats just before.
    pub before: Stats,
    /// The node's stats just after handling (before anything it queued was sent).
    pub after: Stats,
    /// Datagrams it queued while handling, to any address.
    pub sent: usize,
    /// Bytes of those addressed to the injected source address.
    pub replied_bytes: u64,
    /// Events it emitted.
    pub events: usize,
}

impl Sim {
    /// Gives every node, now and after every restart, the cluster key `k` (sealed gossip,
    /// freshness checks). Set it before any node joins.
    pub fn set_cluster_key(&mut self, k: [u8; 32]) {
        self.key = Some(k);
        for n in &mut self.nodes {
            if let Some(node) = n.node.as_mut() {
                node.set_keyring(Some(keyring(k)));
            }
        }
    }

    /// Keeps the last `cap` datagrams delivered (handled by a running node), for replays.
    pub fn capture_delivered(&mut self, cap: usize) {
        self.capture = Some((cap.max(1), VecDeque::new()));
    }

    /// The datagrams kept by [`Sim::capture_delivered`], oldest first.
    pub fn captured(&self) -> impl Iterator<Item = &Captured> {
        self.capture.iter().flat_map(|(_, c)| c)
    }

    pub(super) fn record(
        &mut self,
        from: usize,
        to: usize,
        bytes: Vec<u8>,
        result: Result<(), PacketError>,
    ) {
        let to_restarts = self.nodes[to].restarts;
        let from_restarts = self.nodes[from].restarts;
        if let Some((cap, c)) = self.capture.as_mut() {
            if c.len() >= *cap {
                c.pop_front();
            }
            c.push_back(Captured {
                from,
                to,
                from_restarts,
                to_restarts,
                bytes,
                seen: matches!(
                    result,
                    Ok(()) | Err(PacketError::Replayed | PacketError::MembersFull)
                ),
            });
        }
    }

    /// Hands `bytes` to node `i` now as if it came from `src` (any address: a member's, or a
    /// spoofed one outside the cluster). `None` if `i` is crashed or paused.
    pub fn inject(
        &mut self,
        i: usize,
        src: SocketAddr,
        bytes: &[u8],
        out: &mut Vec<(usize, Event)>,
    ) -> Option<Injected> {
        if self.nodes[i].paused_until.is_some() {
            return None;
        }
        let local = self.local_now(i);
        let SimNode { node, .. } = &mut self.nodes[i];
        let node = node.as_mut()?;
        let before = node.stats();
        let result = node.handle_packet(local, src, bytes);
        let after = node.stats();
        let mut sent = 0;
        let mut replied_bytes = 0;
        let mut queued = Vec::new();
        while let Some(t) = node.poll_transmit() {
            sent += 1;
            if t.dst == src {
                replied_bytes += t.payload.len() as u64;
            }
            queued.push(t);
        }
        let events_before = out.len();
        for t in queued {
            self.bytes_sent += t.payload.len() as u64;
            self.packets_sent += 1;
            if let Some(j) = index_of(&t.dst, self.nodes.len()) {
                self.net.send(self.now, i, j, t.payload);
            }
        }
        self.drain(i, out);
        Some(Injected {
            result,
            before,
            after,
            sent,
            replied_bytes,
            events: out.len() - events_before,
        })
    }
}
