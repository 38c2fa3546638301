use super::*;
use crate::membership::{Tags, MAX_NAME};
use crate::wire::bounded::BoundedString;
use core::net::SocketAddr;

fn info(i: u8, inc: u64) -> MemberInfo {
    MemberInfo::new(
        NodeId([i; 16]),
        BoundedString::new(format!("n{i}")).unwrap(),
        SocketAddr::from(([127, 0, 0, 1], 7000 + u16::from(i))),
        None,
        inc,
        Tags::new(),
    )
}

fn table() -> MemberTable {
    MemberTable::new(info(0, 0), Timestamp::ZERO)
}

const T: Timestamp = Timestamp::ZERO;

#[test]
fn higher_incarnation_wins_and_precedence_orders_equal_ones() {
    let mut t = table();
    assert_eq!(t.apply(&Update::Alive(info(1, 1)), T), Applied::New);
    let suspect = Update::Suspect {
        id: NodeId([1; 16]),
        incarnation: 1,
        by: NodeId([2; 16]),
    };
    assert_eq!(
        t.apply(&suspect, T),
        Applied::StateChanged {
            from: MemberState::Alive
        }
    );
    // Same suspicion again is a confirmation, not a change.
    assert_eq!(t.apply(&suspect, T), Applied::Confirmed);
    // Alive at the same incarnation cannot override a suspicion...
    assert_eq!(t.apply(&Update::Alive(info(1, 1)), T), Applied::Stale);
    // ...only a higher incarnation (the member's refutation) can.
    assert_eq!(
        t.apply(&Update::Alive(info(1, 2)), T),
        Applied::StateChanged {
            from: MemberState::Suspect
        }
    );
    let failed = Update::Failed {
        id: NodeId([1; 16]),
        incarnation: 2,
        by: NodeId([2; 16]),
    };
    assert!(t.apply(&failed, T).changed());
    // Stale alive gossip cannot resurrect a failed member.
    assert_eq!(t.apply(&Update::Alive(info(1, 2)), T), Applied::Stale);
    assert_eq!(t.apply(&Update::Alive(info(1, 1)), T), Applied::Stale);
    // A restart with a higher incarnation can.
    assert_eq!(t.apply(&Update::Alive(info(1, 3)), T), Applied::Rejoined);
    assert_eq!(t.live_count(), 2);
}

#[test]
fn unknown_members_are_only_learned_from_alive() {
    let mut t = table();
    let left = Update::Left {
        id: NodeId([5; 16]),
        incarnation: 9,
    };
    assert_eq!(t.apply(&left, T), Applied::UnknownIgnored);
    assert_eq!(t.len(), 1);
}

#[test]
fn incremental_digest_matches_recomputation_and_live_index_stays_consistent() {
    let mut t = table();
    for i in 1..=50u8 {
        t.apply(&Update::Alive(info(i, 1)), T);
    }
    for i in (1..=50u8).step_by(3) {
        t.apply(
            &Update::Failed {
                id: NodeId([i; 16]),
                incarnation: 1,
                by: NodeId([0; 16]),
            },
            T,
        );
    }
    t.check_layout();
    for i in (1..=50u8).step_by(6) {
        t.remove(&NodeId([i; 16]));
        t.check_layout();
    }
    // Rejoins, refutations and this node's own changes, with the layout checked after each.
    for i in (2..=50u8).step_by(4) {
        t.apply(&Update::Alive(info(i, 5)), T);
        t.check_layout();
    }
    t.set_me(info(0, 1), T);
    t.check_layout();
    t.set_me_state(MemberState::Left, T);
    t.check_layout();
    t.set_me(info(0, 2), T);
    t.check_layout();
    assert_eq!(t.digest_bytes(), t.recomputed_digest());
    let live: Vec<_> = t
        .iter()
        .filter(|m| m.state.is_live() && m.info.id != NodeId([0; 16]))
        .map(|m| m.info.id)
        .collect();
    let mut peers = t.live_peers().to_vec();
    peers.sort();
    assert_eq!(peers, live);
    assert_eq!(t.live_count(), live.len() + 1);
}

#[test]
fn differing_buckets_pinpoint_the_difference() {
    let mut a = table();
    let mut b = table();
    for i in 1..=20u8 {
        a.apply(&Update::Alive(info(i, 1)), T);
        b.apply(&Update::Alive(info(i, 1)), T);
    }
    assert!(a.differing_buckets(&b.digest_bytes()).is_empty());
    b.apply(&Update::Alive(info(7, 2)), T);
    let diff = a.differing_buckets(&b.digest_bytes());
    assert_eq!(diff, vec![bucket_of(&NodeId([7; 16]))]);
    assert_eq!(a.differing_buckets(&[1, 2, 3]).len(), DIGEST_BUCKETS);
}

#[test]
fn tombstones_before_lists_old_tombstones_in_id_order() {
    let mut t = table();
    assert!(t.tombstones_before(Timestamp::MAX).is_empty());
    for i in (1..=30u8).rev() {
        t.apply(&Update::Alive(info(i, 1)), T);
    }
    let later = Timestamp::from_micros(5_000_000);
    for i in [17u8, 3, 25, 9] {
        let at = if i == 9 { later } else { T };
        t.apply(
            &Update::Failed {
                id: NodeId([i; 16]),
                incarnation: 1,
                by: NodeId([0; 16]),
            },
            at,
        );
    }
    t.apply(
        &Update::Left {
            id: NodeId([12; 16]),
            incarnation: 1,
        },
        T,
    );
    let old: Vec<NodeId> = [3u8, 12, 17, 25].iter().map(|&i| NodeId([i; 16])).collect();
    assert_eq!(t.tombstones_before(Timestamp::from_micros(1)), old);
    let all: Vec<NodeId> = [3u8, 9, 12, 17, 25]
        .iter()
        .map(|&i| NodeId([i; 16]))
        .collect();
    assert_eq!(t.tombstones_before(Timestamp::MAX), all);
    assert!(
        t.tombstones_before(T).is_empty(),
        "strictly older than the cutoff"
    );
}

#[test]
fn entries_in_returns_the_wanted_buckets_in_id_order() {
    let mut t = table();
    for i in (1..=200u8).rev() {
        t.apply(&Update::Alive(info(i, 1)), T);
    }
    assert!(t.entries_in(&[], T).is_empty());
    let all: Vec<usize> = (0..DIGEST_BUCKETS).collect();
    let every = t.entries_in(&all, T);
    assert_eq!(every.len(), t.len());
    assert!(every.windows(2).all(|w| w[0].info.id < w[1].info.id));
    let b = bucket_of(&NodeId([7; 16]));
    let some = t.entries_in(&[b, DIGEST_BUCKETS + 5], T);
    assert!(!some.is_empty());
    assert!(some.iter().all(|e| bucket_of(&e.info.id) == b));
    let expected: Vec<NodeId> = t
        .iter()
        .filter(|m| bucket_of(&m.info.id) == b)
        .map(|m| m.info.id)
        .collect();
    assert_eq!(some.iter().map(|e| e.info.id).collect::<Vec<_>>(), expected);
}

/// Ids that agree on their first 8 bytes (what the visit sorts by first) still come out
/// in id order, both when the wanted bucket is read through its list (a small share of the
/// table) and when every slot is read in order (all buckets).
#[test]
fn entries_sharing_an_id_prefix_come_out_in_id_order() {
    let mut t = table();
    let twin = |last: u8| {
        let mut m = info(1, 1);
        m.id = NodeId([
            0xe7, 0xe7, 0xe7, 0xe7, 0xe7, 0xe7, 0xe7, 0xe7, 9, 9, 9, 9, 9, 9, 9, last,
        ]);
        m
    };
    // Twins inserted out of order, among 200 others in every bucket.
    for last in [7u8, 3, 250, 0, 19, 128, 4, 77] {
        t.apply(&Update::Alive(twin(last)), T);
    }
    for i in 1..=200u8 {
        t.apply(&Update::Alive(info(i, 1)), T);
    }
    let b = bucket_of(&twin(0).id);
    let in_order = |ids: Vec<NodeId>| ids.windows(2).all(|w| w[0] < w[1]);
    let listed = t.entries_in(&[b], T);
    assert!(
        listed.len() * SCAN_SHARE < t.len(),
        "read through the bucket list"
    );
    assert_eq!(
        listed
            .iter()
            .filter(|e| e.info.id.0[..8] == [0xe7; 8])
            .count(),
        8
    );
    assert!(in_order(listed.iter().map(|e| e.info.id).collect()));
    let all: Vec<usize> = (0..DIGEST_BUCKETS).collect();
    let every: Vec<NodeId> = t.entries_in(&all, T).iter().map(|e| e.info.id).collect();
    assert_eq!(every, t.iter().map(|m| m.info.id).collect::<Vec<_>>());
    assert!(in_order(every));
}

#[test]
fn watched_addresses_follow_every_change() {
    let mut t = table();
    let addr = |i: u8| SocketAddr::from(([127, 0, 0, 1], 7000 + u16::from(i)));
    let other = SocketAddr::from(([10, 0, 0, 9], 1));
    t.apply(&Update::Alive(info(1, 1)), T);
    t.watch_addrs(&[addr(0), addr(1), addr(2), other]);
    t.check_layout();
    assert_eq!(t.watched_is_live(&addr(0)), Some(true), "this node counts");
    assert_eq!(t.watched_is_live(&addr(1)), Some(true));
    assert_eq!(t.watched_is_live(&addr(2)), Some(false));
    assert_eq!(t.watched_is_live(&addr(3)), None, "not watched");
    // Learned later: counted without a rescan.
    t.apply(&Update::Alive(info(2, 1)), T);
    assert_eq!(t.watched_is_live(&addr(2)), Some(true));
    // Failed, then rejoined at a new address, then reaped.
    let failed = Update::Failed {
        id: NodeId([1; 16]),
        incarnation: 1,
        by: NodeId([0; 16]),
    };
    t.apply(&failed, T);
    assert_eq!(t.watched_is_live(&addr(1)), Some(false));
    let mut moved = info(1, 2);
    moved.set_gossip_addr(other);
    t.apply(&Update::Alive(moved), T);
    assert_eq!(t.watched_is_live(&addr(1)), Some(false));
    assert_eq!(t.watched_is_live(&other), Some(true));
    t.check_layout();
    t.remove(&NodeId([1; 16]));
    assert_eq!(t.watched_is_live(&other), Some(false));
    t.set_me_state(MemberState::Left, T);
    assert_eq!(t.watched_is_live(&addr(0)), Some(false));
    t.check_layout();
    // The same list again keeps the counts; a new list recounts.
    t.watch_addrs(&[addr(0), addr(1), addr(2), other]);
    t.watch_addrs(&[addr(2)]);
    assert_eq!(t.watched_is_live(&addr(2)), Some(true));
    assert_eq!(t.watched_is_live(&other), None);
    t.check_layout();
}

#[test]
fn slot_numbers_follow_a_removal_as_slot_move_says() {
    let mut t = table();
    for i in 1..=12u8 {
        t.apply(&Update::Alive(info(i, 1)), T);
    }
    // Remember who sits in every slot, remove members from the middle, the end and the
    // start, and check that applying each SlotMove to the old numbering names the same
    // members (the probe order relies on this).
    let mut who: Vec<Option<NodeId>> = (0..t.len() as u32)
        .map(|s| t.at_slot(s).map(|m| m.info.id))
        .collect();
    for i in [5u8, 12, 1, 7] {
        let (m, mv) = t.remove(&NodeId([i; 16])).expect("known");
        assert_eq!(m.info.id, NodeId([i; 16]));
        assert_eq!(mv.from as usize, t.len(), "the last slot moved");
        let moved = who[mv.from as usize].take();
        who[mv.removed as usize] = if mv.removed == mv.from { None } else { moved };
        who.truncate(t.len());
        for (s, id) in who.iter().enumerate() {
            assert_eq!(t.at_slot(s as u32).map(|m| m.info.id), *id, "slot {s}");
        }
        assert!(t.at_slot(t.len() as u32).is_none());
        t.check_layout();
        let mut by_slot: Vec<NodeId> = t
            .live_peer_slots()
            .iter()
            .map(|&s| t.at_slot(s).expect("live slot").info.id)
            .collect();
        let mut ids = t.live_peers().to_vec();
        assert_eq!(by_slot, ids, "live_peer_slots and live_peers agree");
        by_slot.sort();
        ids.dedup();
        assert_eq!(by_slot.len(), ids.len());
    }
    assert_eq!(t.live_count(), 12 - 4 + 1);
}

/// A member entry's size is the simulator's memory bill (every node holds one per member):
/// 72 bytes since the two addresses are packed into 16 (96 before, with two `CompactAddr`s
/// taking 38; 104 before its timestamp shared the last 8 with the state; 112 before the
/// name became a 16-byte inline-or-thin-pointer string). A change here is a regression to
/// explain, not a number to update.
#[test]
fn a_member_entry_stays_72_bytes() {
    assert_eq!(core::mem::size_of::<BoundedString<MAX_NAME>>(), 16);
    assert_eq!(core::mem::size_of::<MemberInfo>(), 64);
    assert_eq!(core::mem::size_of::<Member>(), 72);
}

/// The 7-byte timestamp gives back what went in, to the microsecond, across its whole
/// range, and holds a later time as the latest that fits (never wrapping to an early one,
/// which would make a fresh tombstone look old enough to reap).
#[test]
fn a_member_keeps_its_state_since_exactly() {
    let info = MemberInfo::new(
        NodeId([3; 16]),
        BoundedString::new("m").unwrap(),
        SocketAddr::from(([127, 0, 0, 1], 1)),
        None,
        0,
        crate::Tags::new(),
    );
    let max = (1u64 << 56) - 1;
    for us in [0, 1, 255, 256, 1_000_000, 0x00ab_cdef_0123_4567, max] {
        let t = Timestamp::from_micros(us);
        let m = Member::new(info.clone(), MemberState::Suspect, t);
        assert_eq!(m.state_since(), t, "{us}");
        assert_eq!(m.state, MemberState::Suspect);
    }
    for us in [max + 1, u64::MAX] {
        let m = Member::new(
            info.clone(),
            MemberState::Failed,
            Timestamp::from_micros(us),
        );
        assert_eq!(m.state_since(), Timestamp::from_micros(max), "{us}");
    }
}

/// The table's memory bill per entry at the sizes the simulator measures, structure by
/// structure, each allocation counted as the block a size-class allocator serves it from
/// (`chunked::block_bytes`; the simulator runs on mimalloc): slots 74.6-77.2 bytes (chunks
/// of 71 in 5 KiB blocks, one partly full, plus the chunk list), index 14.3, `live_pos` 4.2,
/// `live_peers` 5.1, bucket lists and hashes 13.8-15.6; 112.1-116.4 in all. With chunks of
/// 32 members (2,304 bytes, served 2,560) slots took 81.4-82.7 and all 118.8-121.9. Counted
/// as capacity alone, as this test did before: slots 73.3-74.5 and all 108.2-111.4 with
/// chunks of 32; before the addresses were packed, slots 96-100, all up to 137; before
/// chunking and the index's quarter growth 117-118, 16.4, 4.2, 4.2; before the 7-byte
/// timestamp, slots 104-108.
#[test]
fn bytes_per_entry_at_1000_and_2000_members() {
    let named = |i: usize| {
        MemberInfo::new(
            NodeId::from_name(&format!("n{i}")),
            BoundedString::new(format!("n{i}")).unwrap(),
            SocketAddr::from(([10, 0, (i >> 8) as u8, i as u8], 7946)),
            None,
            1,
            Tags::new(),
        )
    };
    let mut t = MemberTable::new(named(0), T);
    for n in 1..2000 {
        assert_eq!(t.apply(&Update::Alive(named(n)), T), Applied::New);
        if n + 1 == 1000 || n + 1 == 2000 {
            let per = t.reserved_bytes().map(|b| b as f64 / (n + 1) as f64);
            assert!(per[0] <= 77.5, "slots {per:?}");
            assert!(per[1] <= 14.4, "index {per:?}");
            assert!(per[2] <= 4.2 && per[3] <= 5.2, "live vectors {per:?}");
            assert!(per[4] <= 16.0, "bucket lists and hashes {per:?}");
            assert!(per.iter().sum::<f64>() <= 116.5, "all {per:?}");
        }
    }
    t.check_layout();
}

#[test]
fn sorted_difference_walks_both_ways() {
    let mine = [(0, 10), (3, 11), (4, 12), (9, 13), (12, 14)];
    let (want, push) = sorted_difference(&[1, 3, 5, 7, 9], &mine);
    assert_eq!(want, vec![1, 5, 7]);
    assert_eq!(push, vec![10, 12, 14]);
    assert_eq!(sorted_difference(&[2, 4], &[]), (vec![2, 4], vec![]));
    assert_eq!(sorted_difference(&[], &[(1, 7)]), (vec![], vec![7]));
    assert_eq!(
        sorted_difference(&[1, 2], &[(1, 5), (2, 6)]),
        (vec![], vec![])
    );
    assert_eq!(
        sorted_difference(&[u64::MAX], &[(0, 3)]),
        (vec![u64::MAX], vec![3])
    );
    // Two entries with one hash (a collision): both held, neither pushed.
    assert_eq!(
        sorted_difference(&[4, 8], &[(4, 1), (4, 2), (6, 3)]),
        (vec![8], vec![3])
    );
}

fn wide_info(i: u16, inc: u64) -> MemberInfo {
    let mut id = [0x5a; 16];
    id[..2].copy_from_slice(&i.to_be_bytes());
    id[7] = i as u8;
    let mut m = info(1, inc);
    m.id = NodeId(id);
    m
}

proptest::proptest! {
    /// `diff_summary` answers what a summary's two separate passes answered: the peer's
    /// hashes this view lacks (`summary_of` and a set difference) and this view's entries
    /// the peer lacks (`visit_entries_by_hash`, not listed), in the same order.
    #[test]
    fn diff_summary_matches_the_two_pass_answer(
        members in proptest::collection::btree_set(1u16..2000, 0..300),
        keep in proptest::collection::vec(proptest::bool::ANY, 300),
        extra in proptest::collection::vec(proptest::num::u64::ANY, 0..40),
        bucket in 0usize..DIGEST_BUCKETS + 2,
        split in 0u8..3,
        part_seed in proptest::num::u16::ANY,
    ) {
        let mut t = table();
        for (n, &i) in members.iter().enumerate() {
            t.apply(&Update::Alive(wide_info(i, 1 + n as u64 % 3)), T);
        }
        let part = part_seed % (1 << split);
        let at = (bucket, split, part);
        let mine = t.summary_of(bucket, split, part);
        // The peer holds some of this view's hashes and some of its own.
        let mut theirs: Vec<u64> = mine
            .iter()
            .zip(&keep)
            .filter(|(_, k)| **k)
            .map(|(h, _)| *h)
            .chain(extra.iter().copied().filter(|&h| in_part(h, split, part)))
            .collect();
        theirs.sort_unstable();
        theirs.dedup();
        let mut expect_push = Vec::new();
        t.visit_entries_by_hash(at, &theirs, false, T, |i, _, _| expect_push.push(i.id));
        let expect_want: Vec<u64> = theirs
            .iter()
            .copied()
            .filter(|h| mine.binary_search(h).is_err())
            .collect();
        let mut push = Vec::new();
        let want = t.diff_summary(at, &theirs, T, |i, _, _| push.push(i.id));
        proptest::prop_assert_eq!(want, expect_want);
        proptest::prop_assert_eq!(push, expect_push);
    }
}
