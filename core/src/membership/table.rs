//! The member table and its one mutation rule.

use super::{MemberInfo, MemberState, SyncEntry, Update};
use crate::hash::mix64;
use crate::wire::DIGEST_BUCKETS;
use crate::{NodeId, Timestamp};
use std::collections::BTreeMap;

/// One member as this node currently sees it.
#[derive(Clone, PartialEq, Eq, Debug)]
pub struct Member {
    /// What the member advertised at its current incarnation.
    pub info: MemberInfo,
    /// What this node believes about it.
    pub state: MemberState,
    /// When this node last changed `state` (or learned of the member).
    pub state_since: Timestamp,
}

/// What [`MemberTable::apply`] did with an update.
#[derive(Clone, Copy, PartialEq, Eq, Debug)]
pub enum Applied {
    /// Older than or equal to what the table holds: nothing changed.
    Stale,
    /// A member this node did not know, now alive.
    New,
    /// A known member, now alive again after being down (failed or left).
    Rejoined,
    /// A known member moved from `from` to a new state at a higher or equal incarnation.
    StateChanged {
        /// The previous state.
        from: MemberState,
    },
    /// Same state (alive), higher incarnation: new info (tags, addresses).
    InfoChanged,
    /// A suspicion about a member already suspected at that incarnation: a confirmation.
    Confirmed,
    /// About a member this node does not know, and not alive: ignored, since a tombstone
    /// needs no creating and a suspicion without info cannot be acted on.
    UnknownIgnored,
}

impl Applied {
    /// Whether the table changed.
    pub fn changed(self) -> bool {
        !matches!(
            self,
            Applied::Stale | Applied::Confirmed | Applied::UnknownIgnored
        )
    }
}

/// The member table: every member including this node itself, tombstones included.
///
/// Besides the map it keeps, incrementally, a per-bucket digest for anti-entropy (a wrapping
/// sum of one hash per entry over (id, incarnation, state)), and a vector of live peers for
/// O(1) random picks.
#[derive(Debug)]
pub struct MemberTable {
    me: NodeId,
    members: BTreeMap<NodeId, Member>,
    digest: [u32; DIGEST_BUCKETS],
    live_peers: Vec<NodeId>,
    live_index: BTreeMap<NodeId, usize>,
    counts: [usize; 4],
}

/// The bucket a member falls in.
pub fn bucket_of(id: &NodeId) -> usize {
    (id.short() % DIGEST_BUCKETS as u64) as usize
}

fn entry_hash(id: &NodeId, incarnation: u64, state: MemberState) -> u32 {
    let h =
        mix64(id.short() ^ mix64(incarnation.wrapping_add(u64::from(state.precedence()) << 56)));
    (h >> 32) as u32
}

impl MemberTable {
    /// A table holding only this node, alive.
    pub fn new(me: MemberInfo, now: Timestamp) -> Self {
        let mut t = MemberTable {
            me: me.id,
            members: BTreeMap::new(),
            digest: [0; DIGEST_BUCKETS],
            live_peers: Vec::new(),
            live_index: BTreeMap::new(),
            counts: [0; 4],
        };
        t.insert(Member {
            info: me,
            state: MemberState::Alive,
            state_since: now,
        });
        t
    }

    /// The member `id`, if known.
    pub fn get(&self, id: &NodeId) -> Option<&Member> {
        self.members.get(id)
    }

    /// Every member in id order, this node and tombstones included.
    pub fn iter(&self) -> impl Iterator<Item = &Member> + '_ {
        self.members.values()
    }

    /// Number of entries, tombstones included.
    pub fn len(&self) -> usize {
        self.members.len()
    }

    /// Live peers (alive or suspect, not this node), in a stable but unspecified order.
    pub fn live_peers(&self) -> &[NodeId] {
        &self.live_peers
    }

    /// Number of live members including this node.
    pub fn live_count(&self) -> usize {
        self.live_peers.len() + 1
    }

    /// The digest, one 32-bit value per bucket, as little-endian bytes.
    pub fn digest_bytes(&self) -> Vec<u8> {
        self.digest.iter().flat_map(|d| d.to_le_bytes()).collect()
    }

    /// Buckets whose digest differs from `other` (a peer's `digest_bytes`). A digest of the
    /// wrong length differs everywhere.
    pub fn differing_buckets(&self, other: &[u8]) -> Vec<usize> {
        if other.len() != DIGEST_BUCKETS * 4 {
            return (0..DIGEST_BUCKETS).collect();
        }
        (0..DIGEST_BUCKETS)
            .filter(|&b| {
                let mut x = [0u8; 4];
                x.copy_from_slice(&other[b * 4..b * 4 + 4]);
                u32::from_le_bytes(x) != self.digest[b]
            })
            .collect()
    }

    /// Entries in the given buckets (sorted), as sync entries; tombstones carry their age at
    /// `now`.
    pub fn entries_in(&self, buckets: &[usize], now: Timestamp) -> Vec<SyncEntry> {
        let mut want = [false; DIGEST_BUCKETS];
        for &b in buckets {
            if let Some(w) = want.get_mut(b) {
                *w = true;
            }
        }
        self.members
            .values()
            .filter(|m| want[bucket_of(&m.info.id)])
            .map(|m| SyncEntry {
                info: m.info.clone(),
                state: m.state,
                down_secs: if m.state.is_down() {
                    u32::try_from(now.saturating_since(m.state_since).as_secs()).unwrap_or(u32::MAX)
                } else {
                    0
                },
            })
            .collect()
    }

    /// Number of members (this node included) in `state`.
    pub fn count(&self, state: MemberState) -> usize {
        self.counts[usize::from(state.precedence())]
    }

    fn insert(&mut self, m: Member) {
        let id = m.info.id;
        self.counts[usize::from(m.state.precedence())] += 1;
        self.digest[bucket_of(&id)] =
            self.digest[bucket_of(&id)].wrapping_add(entry_hash(&id, m.info.incarnation, m.state));
        if m.state.is_live() && id != self.me {
            self.live_index.insert(id, self.live_peers.len());
            self.live_peers.push(id);
        }
        self.members.insert(id, m);
    }

    fn take(&mut self, id: &NodeId) -> Option<Member> {
        let m = self.members.remove(id)?;
        self.counts[usize::from(m.state.precedence())] -= 1;
        self.digest[bucket_of(id)] =
            self.digest[bucket_of(id)].wrapping_sub(entry_hash(id, m.info.incarnation, m.state));
        if let Some(i) = self.live_index.remove(id) {
            self.live_peers.swap_remove(i);
            if let Some(moved) = self.live_peers.get(i) {
                self.live_index.insert(*moved, i);
            }
        }
        Some(m)
    }

    /// Replaces this node's own info (after raising its incarnation). The caller guarantees
    /// `info.incarnation` is higher than before.
    pub fn set_me(&mut self, info: MemberInfo, now: Timestamp) {
        let id = info.id;
        let _ = self.take(&id);
        self.insert(Member {
            info,
            state: MemberState::Alive,
            state_since: now,
        });
    }

    /// Marks this node's own entry with `state` (used when leaving).
    pub fn set_me_state(&mut self, state: MemberState, now: Timestamp) {
        let me = self.me;
        if let Some(mut m) = self.take(&me) {
            m.state = state;
            m.state_since = now;
            self.insert(m);
        }
    }

    /// Records a tombstone for a member this table does not know, as if it had entered
    /// `state` at `since`. Returns false (and changes nothing) if the member is known or
    /// `state` is live.
    pub fn insert_tombstone(
        &mut self,
        info: MemberInfo,
        state: MemberState,
        since: Timestamp,
    ) -> bool {
        if state.is_live() || self.members.contains_key(&info.id) {
            return false;
        }
        self.insert(Member {
            info,
            state,
            state_since: since,
        });
        true
    }

    /// Removes a tombstone or a member outright (reaping). Returns it.
    pub fn remove(&mut self, id: &NodeId) -> Option<Member> {
        if *id == self.me {
            return None;
        }
        self.take(id)
    }

    /// Applies one update under SWIM's ordering: a higher incarnation wins; at equal
    /// incarnation the state with higher precedence wins (alive < suspect < failed < left).
    /// Updates about this node itself are not applied here: refuting them is the node's job.
    pub fn apply(&mut self, update: &Update, now: Timestamp) -> Applied {
        let id = update.subject();
        let inc = update.incarnation();
        let state = update.state();
        let Some(cur) = self.members.get(&id) else {
            return match update {
                Update::Alive(info) => {
                    self.insert(Member {
                        info: info.clone(),
                        state,
                        state_since: now,
                    });
                    Applied::New
                }
                _ => Applied::UnknownIgnored,
            };
        };
        let newer = inc > cur.info.incarnation
            || (inc == cur.info.incarnation && state.precedence() > cur.state.precedence());
        if !newer {
            if inc == cur.info.incarnation && state == MemberState::Suspect && cur.state == state {
                return Applied::Confirmed;
            }
            return Applied::Stale;
        }
        // Invariant: `cur` exists (checked above), so `take` returns it.
        let old = self.take(&id).expect("member present");
        let from = old.state;
        let info = match update {
            Update::Alive(info) => info.clone(),
            _ => {
                let mut i = old.info;
                i.incarnation = inc;
                i
            }
        };
        let state_since = if from == state { old.state_since } else { now };
        self.insert(Member {
            info,
            state,
            state_since,
        });
        match (from, state) {
            (f, MemberState::Alive) if f.is_down() => Applied::Rejoined,
            (MemberState::Alive, MemberState::Alive) => Applied::InfoChanged,
            _ => Applied::StateChanged { from },
        }
    }

    /// The update that restates what this table holds about `id` (for re-gossip).
    pub fn update_for(&self, id: &NodeId, by: NodeId) -> Option<Update> {
        let m = self.members.get(id)?;
        Some(match m.state {
            MemberState::Alive => Update::Alive(m.info.clone()),
            MemberState::Suspect => Update::Suspect {
                id: *id,
                incarnation: m.info.incarnation,
                by,
            },
            MemberState::Failed => Update::Failed {
                id: *id,
                incarnation: m.info.incarnation,
                by,
            },
            MemberState::Left => Update::Left {
                id: *id,
                incarnation: m.info.incarnation,
            },
        })
    }

    /// Tombstones whose state is older than `cutoff`, in id order.
    pub fn tombstones_before(&self, cutoff: Timestamp) -> Vec<NodeId> {
        self.members
            .values()
            .filter(|m| m.state.is_down() && m.state_since < cutoff)
            .map(|m| m.info.id)
            .collect()
    }

    #[cfg(test)]
    /// Recomputes the digest from scratch; used by tests to check the incremental one.
    pub fn recomputed_digest(&self) -> Vec<u8> {
        let mut d = [0u32; DIGEST_BUCKETS];
        for m in self.members.values() {
            let b = bucket_of(&m.info.id);
            d[b] = d[b].wrapping_add(entry_hash(&m.info.id, m.info.incarnation, m.state));
        }
        d.iter().flat_map(|x| x.to_le_bytes()).collect()
    }
}

#[cfg(test)]
mod tests;
