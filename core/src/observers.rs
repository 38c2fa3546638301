//! Who watches whom: observer assignment on a hash ring.
//!
//! **Rule: a member's observers are the `k` members that follow it on a ring ordered by a
//! hash of their ids; everyone watches everyone when there are at most `k + 1` members.**
//!
//! **Watching runs both ways on the ring ([`split`]).** A member pings its `p = ceil(w / 2)`
//! predecessors every heartbeat round (`w` = `Config::observers`, the watchers each member
//! gets): each ack is a heartbeat of the predecessor at the pinger, and each ping is a
//! heartbeat of the pinger at the predecessor, which listens to its `w - p` nearest
//! successors. So every member has `p` successors that ping it and `w - p` predecessors that
//! hear its pings: `w` watchers for `2p` datagrams a member per round, where pinging all `w`
//! cost `2w` (3 watchers: 4 datagrams a round instead of 6).
//! Every node computes the same assignment from the same member set, with no coordination, so
//! each subject gets exactly `min(k, n − 1)` observers and each member watches exactly
//! `min(k, n − 1)` subjects: monitoring load is constant per member, not O(n) as with
//! all-to-all heartbeats. Joins and departures move only the `k` neighbours around the change.
//!
//! The ring position is a mix of [`NodeId::short`] (see [`ring_position`]), so ids that happen
//! to be sequential or share a prefix still spread evenly; ties (a 64-bit collision) fall back
//! to the full id, so the order is total and deterministic.
//!
//! Which members to put on the ring is the node's choice; the intent is alive and suspect
//! members (a suspect must keep its observers, or nobody would see it recover). A subject that
//! is not on the ring still gets the `k` members that follow where it would sit, so a member
//! the node just learned about is watched before the ring is rebuilt.
//!
//! Nothing is stored: every node would otherwise keep a sorted copy of all live ids (16 bytes
//! a member, N² in a simulated cluster of N). Both questions are answered by one pass over the
//! live members that keeps the best `k` candidates (O(n·k), no allocation beyond the answer),
//! which is also cheaper than the sort a stored ring needed on every membership change. A
//! node keeps only that pass's answer ([`Neighbours`], `k` ids) and updates it as members
//! arrive, so the pass runs again only when a kept neighbour leaves. The sorted
//! [`ObserverRing`] is kept in tests as the reference the pass must agree with.

use crate::NodeId;

/// Where `id` sits on the ring: a 64-bit mix of its short digest.
pub fn ring_position(id: &NodeId) -> u64 {
    crate::hash::mix64(id.short())
}

/// Where `id` sits on the ring, with the full id breaking 64-bit ties: the ring's sort key.
fn ring_key(id: &NodeId) -> (u64, NodeId) {
    (ring_position(id), *id)
}

/// Keeps the `k` smallest `(rank, key)` seen, ascending, without duplicates. Returns whether
/// `cand` entered them.
fn keep_best<K: Ord + Copy>(best: &mut Vec<K>, k: usize, cand: K) -> bool {
    if k == 0 || (best.len() == k && cand >= best[k - 1]) {
        return false;
    }
    match best.binary_search(&cand) {
        Ok(_) => false,
        Err(at) => {
            if best.len() == k {
                best.pop();
            }
            best.insert(at, cand);
            true
        }
    }
}

/// The members that watch `subject`: its `k` successors on the ring over `members` (any
/// order, duplicates ignored), nearest first, never `subject` itself. `min(k, n − 1)` of them
/// if `subject` is among the members, `min(k, n)` if not.
pub fn observers_of(
    subject: &NodeId,
    members: impl IntoIterator<Item = NodeId>,
    k: usize,
) -> Vec<NodeId> {
    let at = ring_key(subject);
    // Successors in ring order: those after the subject's place (rank 0), then, wrapping
    // round, those before it (rank 1).
    let mut best: Vec<(bool, (u64, NodeId))> = Vec::with_capacity(k);
    for id in members {
        if id != *subject {
            let key = ring_key(&id);
            keep_best(&mut best, k, (key < at, key));
        }
    }
    best.into_iter().map(|(_, (_, id))| id).collect()
}

/// The members `me` must watch: those whose `k` successors include `me`, i.e. its `k`
/// predecessors on the ring over `members`, nearest first. Empty if `me` is not among them.
/// Agrees with [`observers_of`]: `s` is in `subjects_of(me)` exactly when `me` is in
/// `observers_of(s)`.
pub fn subjects_of(
    me: &NodeId,
    members: impl IntoIterator<Item = NodeId>,
    k: usize,
) -> Vec<NodeId> {
    neighbours_of(me, members, k, 0).0
}

/// How `observers` watchers a member split: `(p, l)`, the predecessors each member pings
/// (its successors' pings make them its watchers too) and the successors it listens to.
pub fn split(observers: usize) -> (usize, usize) {
    let pinged = observers.div_ceil(2);
    (pinged, observers - pinged)
}

/// Both neighbour lists of `me` in one pass: its `preds` nearest predecessors and its
/// `succs` nearest successors on the ring over `members`, nearest first; both empty if `me`
/// is not among them. Equal to `(subjects_of(me, .., preds), observers_of(me, .., succs))`
/// (`subjects_of` is its first half).
pub fn neighbours_of(
    me: &NodeId,
    members: impl IntoIterator<Item = NodeId>,
    preds: usize,
    succs: usize,
) -> (Vec<NodeId>, Vec<NodeId>) {
    let mut on_ring = false;
    let mut near = Neighbours::new(me, preds, succs);
    for id in members {
        if id == *me {
            on_ring = true;
        } else {
            near.add(&id);
        }
    }
    if !on_ring {
        return (Vec::new(), Vec::new());
    }
    near.lists()
}

/// The `preds` nearest predecessors and `succs` nearest successors of a member on the ring
/// over the members [`add`](Self::add)ed, kept as members arrive: the k nearest of a set plus
/// one member are the k nearest of the set's k nearest plus that member, so a member coming
/// alive costs a comparison with the farthest kept, not a pass over every member. Only a
/// removal of a kept neighbour needs the pass again (its replacement is unknown).
#[derive(Clone, Debug, PartialEq, Eq)]
pub struct Neighbours {
    at: (u64, NodeId),
    preds: usize,
    succs: usize,
    /// Predecessors nearest first: those before `me` by descending key (rank 0), then,
    /// wrapping round, those after it (rank 1).
    before: Vec<(bool, core::cmp::Reverse<(u64, NodeId)>)>,
    /// Successors nearest first, the mirror.
    after: Vec<(bool, (u64, NodeId))>,
}

impl Neighbours {
    /// No members yet, around `me`.
    pub fn new(me: &NodeId, preds: usize, succs: usize) -> Self {
        Neighbours {
            at: ring_key(me),
            preds,
            succs,
            before: Vec::with_capacity(preds),
            after: Vec::with_capacity(succs),
        }
    }

    /// `id` is on the ring. Returns whether that changed the kept neighbours: exactly when it
    /// is nearer than the farthest of either list, or a list has room (never for `me`, nor
    /// for a member added before). Lets a node skip refreshing its subjects for the many
    /// members that join elsewhere on the ring.
    pub fn add(&mut self, id: &NodeId) -> bool {
        let key = ring_key(id);
        if key == self.at {
            return false;
        }
        let at = self.at;
        let before = keep_best(
            &mut self.before,
            self.preds,
            (key > at, core::cmp::Reverse(key)),
        );
        keep_best(&mut self.after, self.succs, (key < at, key)) || before
    }

    /// Whether `id` is one of the kept neighbours.
    pub fn contains(&self, id: &NodeId) -> bool {
        self.before.iter().any(|(_, r)| r.0 .1 == *id) || self.after.iter().any(|(_, k)| k.1 == *id)
    }

    /// The predecessors and the successors, nearest first.
    pub fn lists(&self) -> (Vec<NodeId>, Vec<NodeId>) {
        (
            self.before.iter().map(|(_, r)| r.0 .1).collect(),
            self.after.iter().map(|(_, (_, id))| *id).collect(),
        )
    }
}

/// Every member that watches `subject` when each member gets `observers` watchers (see
/// [`split`]): its successors that ping it, then its predecessors that hear its pings;
/// distinct, never `subject`.
pub fn watchers_of(
    subject: &NodeId,
    members: impl IntoIterator<Item = NodeId> + Clone,
    observers: usize,
) -> Vec<NodeId> {
    let (pinged, listened) = split(observers);
    let mut out = observers_of(subject, members.clone(), pinged);
    for id in subjects_of(subject, members, listened) {
        if !out.contains(&id) {
            out.push(id);
        }
    }
    out
}

/// A sorted, deduplicated ring of the members: the straightforward form of the rule, which
/// the one-pass functions above must match.
#[cfg(test)]
#[derive(Clone, Debug, Default, PartialEq, Eq)]
pub struct ObserverRing {
    /// Ascending by [`ring_key`], no duplicates.
    ring: Vec<NodeId>,
}

#[cfg(test)]
impl ObserverRing {
    /// A ring over `members`, in any order; duplicates are ignored.
    pub fn new(members: impl IntoIterator<Item = NodeId>) -> Self {
        let mut keyed: Vec<(u64, NodeId)> = members.into_iter().map(|id| ring_key(&id)).collect();
        keyed.sort_unstable();
        keyed.dedup();
        let mut ring = Vec::with_capacity(keyed.len());
        ring.extend(keyed.into_iter().map(|(_, id)| id));
        ObserverRing { ring }
    }

    /// How many members are on the ring.
    pub fn len(&self) -> usize {
        self.ring.len()
    }

    /// Whether the ring has no members.
    pub fn is_empty(&self) -> bool {
        self.ring.is_empty()
    }

    /// Whether `id` is on the ring.
    pub fn contains(&self, id: &NodeId) -> bool {
        self.index_of(id).is_some()
    }

    fn index_of(&self, id: &NodeId) -> Option<usize> {
        let key = ring_key(id);
        self.ring.binary_search_by(|e| ring_key(e).cmp(&key)).ok()
    }

    /// [`observers_of`] by binary search and `k` steps.
    pub fn observers_of(&self, subject: &NodeId, k: usize) -> Vec<NodeId> {
        let n = self.ring.len();
        let key = ring_key(subject);
        // First entry strictly after the subject's place.
        let start = self.ring.partition_point(|e| ring_key(e) <= key);
        let on_ring = start > 0 && self.ring[start - 1] == *subject;
        let count = k.min(if on_ring { n - 1 } else { n });
        (0..count).map(|i| self.ring[(start + i) % n]).collect()
    }

    /// [`subjects_of`] by binary search and `k` steps.
    pub fn subjects_of(&self, me: &NodeId, k: usize) -> Vec<NodeId> {
        let Some(i) = self.index_of(me) else {
            return Vec::new();
        };
        let n = self.ring.len();
        let count = k.min(n - 1);
        (1..=count).map(|j| self.ring[(i + n - j) % n]).collect()
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    fn ids(n: usize) -> Vec<NodeId> {
        (0..n)
            .map(|i| NodeId::from_name(&format!("node-{i}")))
            .collect()
    }

    /// `Neighbours::add` says exactly when a new member changes either list, for every
    /// member, every prefix of the members as the set before, and several list sizes.
    #[test]
    fn adding_says_exactly_when_a_new_member_changes_the_neighbours() {
        let all = ids(40);
        for (p, l) in [(0, 0), (1, 0), (0, 1), (2, 1), (3, 4)] {
            for n in 1..all.len() {
                let members = &all[..n];
                let candidate = &all[n];
                for me in members {
                    let mut near = Neighbours::new(me, p, l);
                    members.iter().for_each(|id| {
                        near.add(id);
                    });
                    let before = neighbours_of(me, members.iter().copied(), p, l);
                    let after = neighbours_of(me, all[..=n].iter().copied(), p, l);
                    assert_eq!(near.add(candidate), before != after, "n={n} p={p} l={l}");
                    assert!(!near.add(candidate), "a second add changes nothing");
                    assert!(!near.add(me), "me is never a neighbour");
                }
            }
        }
    }

    #[test]
    fn neighbours_agree_with_the_sorted_ring_in_one_pass() {
        let all = ids(30);
        let stranger = NodeId::from_name("x");
        for n in 0..=all.len() {
            let members = &all[..n];
            let ring = ObserverRing::new(members.iter().copied());
            for (p, l) in [(0, 0), (1, 0), (2, 1), (2, 2), (3, 5)] {
                for me in members.iter().chain([&stranger]) {
                    let (preds, succs) = neighbours_of(me, members.iter().copied(), p, l);
                    assert_eq!(preds, ring.subjects_of(me, p));
                    if members.contains(me) {
                        assert_eq!(succs, ring.observers_of(me, l));
                    } else {
                        assert!(succs.is_empty(), "off the ring: no neighbours");
                    }
                }
            }
        }
    }

    /// Kept as members arrive, in any order and some twice, the neighbours are the sorted
    /// ring's after every arrival, and `contains` names exactly them.
    #[test]
    fn kept_neighbours_follow_arrivals_in_any_order() {
        let all = ids(40);
        let me = all[17];
        // A fixed shuffle with repeats: every member once, then some again.
        let mut order: Vec<NodeId> = (0..all.len()).map(|i| all[(i * 23 + 5) % 40]).collect();
        order.extend([all[3], all[30], all[3]]);
        for (p, l) in [(0, 0), (1, 0), (2, 1), (3, 5)] {
            let mut near = Neighbours::new(&me, p, l);
            let mut seen = vec![me];
            for id in order.iter().filter(|id| **id != me) {
                near.add(id);
                if !seen.contains(id) {
                    seen.push(*id);
                }
                let ring = ObserverRing::new(seen.iter().copied());
                let (preds, succs) = near.lists();
                assert_eq!(preds, ring.subjects_of(&me, p));
                assert_eq!(succs, ring.observers_of(&me, l));
                for other in &all {
                    assert_eq!(
                        near.contains(other),
                        preds.contains(other) || succs.contains(other)
                    );
                }
            }
        }
    }

    /// Whoever a member listens to pings it, so each of its watchers hears from it every
    /// round; and every member has `min(w, n - 1)` distinct watchers.
    #[test]
    fn watching_both_ways_gives_each_member_its_watchers() {
        let all = ids(25);
        for n in 1..=all.len() {
            let members = &all[..n];
            for w in 1..=6 {
                let (p, l) = split(w);
                assert_eq!(p + l, w);
                assert!(l <= p, "a member hears from every successor it listens to");
                for me in members {
                    let (_, listened) = neighbours_of(me, members.iter().copied(), p, l);
                    for x in &listened {
                        assert!(
                            subjects_of(x, members.iter().copied(), p).contains(me),
                            "n={n} w={w}: a listened successor pings its listener"
                        );
                    }
                    let watchers = watchers_of(me, members.iter().copied(), w);
                    assert!(!watchers.contains(me));
                    let want = w.min(n - 1);
                    assert!(
                        watchers.len() == want || (n - 1 < w && watchers.len() == n - 1),
                        "n={n} w={w}: {} watchers",
                        watchers.len()
                    );
                    // Each watcher really watches: it pings `me` or listens to it.
                    for o in &watchers {
                        let (pinged, heard) = neighbours_of(o, members.iter().copied(), p, l);
                        assert!(pinged.contains(me) || heard.contains(me), "n={n} w={w}");
                    }
                }
            }
        }
    }

    #[test]
    fn each_member_has_exactly_min_k_n_minus_one_distinct_observers() {
        for n in 0..=12 {
            let members = ids(n);
            let ring = ObserverRing::new(members.iter().copied());
            for k in 0..=6 {
                let mut watched = vec![0usize; n];
                for (i, m) in members.iter().enumerate() {
                    let obs = ring.observers_of(m, k);
                    assert_eq!(obs.len(), k.min(n.saturating_sub(1)), "n={n} k={k}");
                    assert!(!obs.contains(m), "a member never observes itself");
                    let mut sorted = obs.clone();
                    sorted.sort();
                    sorted.dedup();
                    assert_eq!(sorted.len(), obs.len(), "observers are distinct");
                    let subj = ring.subjects_of(m, k);
                    assert_eq!(subj.len(), k.min(n.saturating_sub(1)), "balanced load");
                    watched[i] = subj.len();
                }
                assert!(watched.iter().all(|&w| w == k.min(n.saturating_sub(1))));
            }
        }
    }

    #[test]
    fn observers_and_subjects_agree() {
        for n in 1..=12 {
            let members = ids(n);
            let ring = ObserverRing::new(members.iter().copied());
            for k in 0..=6 {
                for s in &members {
                    for me in &members {
                        let watches = ring.subjects_of(me, k).contains(s);
                        let observed_by = ring.observers_of(s, k).contains(me);
                        assert_eq!(watches, observed_by, "n={n} k={k}");
                    }
                }
            }
        }
    }

    #[test]
    fn small_clusters_watch_everyone() {
        let members = ids(4);
        for m in &members {
            let mut obs = observers_of(m, members.iter().copied(), 3);
            obs.sort();
            let mut others: Vec<NodeId> = members.iter().copied().filter(|x| x != m).collect();
            others.sort();
            assert_eq!(obs, others);
        }
    }

    #[test]
    fn assignment_ignores_input_order_and_duplicates() {
        let members = ids(9);
        let mut shuffled: Vec<NodeId> = members.iter().rev().copied().collect();
        shuffled.extend_from_slice(&members[..3]);
        let a = ObserverRing::new(members.iter().copied());
        let b = ObserverRing::new(shuffled.iter().copied());
        assert_eq!(a, b);
        assert_eq!(a.len(), 9);
        for m in &members {
            assert_eq!(
                a.observers_of(m, 3),
                observers_of(m, shuffled.iter().copied(), 3)
            );
            assert_eq!(
                a.subjects_of(m, 3),
                subjects_of(m, shuffled.iter().copied(), 3)
            );
        }
    }

    #[test]
    fn one_pass_agrees_with_the_sorted_ring() {
        // Every subset size, every k, members and strangers, input order reversed and with
        // duplicates: the pass over the members answers exactly what the ring does.
        let all = ids(40);
        let strangers = [NodeId::from_name("x"), NodeId::from_name("y")];
        for n in 0..=all.len() {
            let members = &all[..n];
            let ring = ObserverRing::new(members.iter().copied());
            let input: Vec<NodeId> = members
                .iter()
                .rev()
                .chain(members.iter().take(2))
                .copied()
                .collect();
            for k in 0..=5 {
                for s in members.iter().chain(&strangers) {
                    assert_eq!(
                        observers_of(s, input.iter().copied(), k),
                        ring.observers_of(s, k),
                        "observers n={n} k={k}"
                    );
                    assert_eq!(
                        subjects_of(s, input.iter().copied(), k),
                        ring.subjects_of(s, k),
                        "subjects n={n} k={k}"
                    );
                }
            }
        }
    }

    #[test]
    fn a_subject_off_the_ring_still_gets_observers() {
        let members = ids(6);
        let ring = ObserverRing::new(members.iter().copied());
        let stranger = NodeId::from_name("newcomer");
        assert!(!ring.contains(&stranger));
        assert_eq!(ring.observers_of(&stranger, 3).len(), 3);
        assert_eq!(ring.observers_of(&stranger, 10).len(), 6);
        assert!(ring.subjects_of(&stranger, 3).is_empty());
        let empty = ObserverRing::default();
        assert!(empty.is_empty());
        assert!(empty.observers_of(&stranger, 3).is_empty());
        assert!(empty.subjects_of(&stranger, 3).is_empty());
    }

    #[test]
    fn a_join_moves_only_the_neighbours() {
        let members = ids(30);
        let before = ObserverRing::new(members.iter().copied());
        let newcomer = NodeId::from_name("newcomer");
        let after = ObserverRing::new(members.iter().copied().chain([newcomer]));
        let changed = members
            .iter()
            .filter(|m| before.observers_of(m, 3) != after.observers_of(m, 3))
            .count();
        assert_eq!(
            changed, 3,
            "only the newcomer's 3 predecessors gain it as an observer"
        );
    }
}
