//! The connection-set rules, one by one, and a proptest over random sequences of checkouts,
//! attempt endings, losses, moves and departures that checks the accounting after each step.

use super::*;
use crate::balancer::Strategy as Pick;
use crate::{MemberState, Tags};
use proptest::prelude::*;
use std::collections::BTreeSet;

const T: Timestamp = Timestamp::from_millis(1);

fn addr(port: u16) -> SocketAddr {
    SocketAddr::from(([127, 0, 0, 1], port))
}

fn worker(i: u8) -> NodeId {
    NodeId::from_name(&format!("w{i}"))
}

fn balancer(workers: u8) -> Balancer {
    let mut b = Balancer::with_strategy(Pick::LeastConnections);
    for i in 0..workers {
        b.upsert_member(
            worker(i),
            MemberState::Alive,
            &Tags::new(),
            Some(addr(1000 + u16::from(i))),
        );
    }
    b
}

fn lease_on(b: &mut Balancer, w: NodeId) -> Lease {
    b.select_id(w, T).expect("a live worker")
}

/// A set for worker 0 with `n` ready connections (handles are their ids).
fn ready_set(n: u16) -> (Balancer, Connections<u64>, Lease) {
    let mut b = balancer(1);
    let mut c = Connections::new(n);
    let lease = lease_on(&mut b, worker(0));
    for i in 0..n {
        let attempt = match c.checkout(&mut b, &lease, None, None, T) {
            Checkout::Connect { attempt, .. } => attempt,
            Checkout::Ready {
                open_another: Some(attempt),
                ..
            } => attempt,
            other => panic!("the set asks for connection {i}: {other:?}"),
        };
        assert_eq!(attempt.addr, addr(1000));
        let orphan = c.connect_done(&mut b, worker(0), attempt.id, Ok(attempt.id.0), T);
        assert_eq!(orphan, None);
    }
    (b, c, lease)
}

fn ready_id(c: Checkout<u64>) -> ConnId {
    match c {
        Checkout::Ready { id, conn, .. } => {
            assert_eq!(id.0, conn, "the handle is the one pooled under this id");
            id
        }
        other => panic!("expected a ready connection, got {other:?}"),
    }
}

#[test]
fn an_affinity_key_stays_on_one_connection_and_keys_spread() {
    let (mut b, mut c, lease) = ready_set(4);
    for a in 0..8u64 {
        let first = ready_id(c.checkout(&mut b, &lease, None, Some(a), T));
        for _ in 0..10 {
            assert_eq!(
                ready_id(c.checkout(&mut b, &lease, None, Some(a), T)),
                first
            );
        }
    }
    let used: BTreeSet<ConnId> = (0..4u64)
        .map(|a| ready_id(c.checkout(&mut b, &lease, None, Some(a), T)))
        .collect();
    assert_eq!(used.len(), 4, "four keys use all four connections");
}

#[test]
fn without_a_key_calls_go_round_robin() {
    let (mut b, mut c, lease) = ready_set(3);
    let ids: Vec<ConnId> = (0..6)
        .map(|_| ready_id(c.checkout(&mut b, &lease, None, None, T)))
        .collect();
    assert_eq!(&ids[..3], &ids[3..], "a fixed rotation: {ids:?}");
    assert_eq!(ids.iter().collect::<BTreeSet<_>>().len(), 3);
}

#[test]
fn one_attempt_at_a_time_while_nothing_is_ready_and_waiters_wait_for_it() {
    let mut b = balancer(1);
    let mut c: Connections<u64> = Connections::new(2);
    let lease = lease_on(&mut b, worker(0));
    let Checkout::Connect { attempt, gen } = c.checkout(&mut b, &lease, None, None, T) else {
        panic!("the first caller opens a connection");
    };
    assert_eq!(
        c.checkout(&mut b, &lease, None, None, T),
        Checkout::Wait { gen },
        "a second caller waits for the same attempt"
    );
    assert_eq!(b.worker(worker(0), T).unwrap().connections, (1, 0, 0));
    c.connect_done(&mut b, worker(0), attempt.id, Ok(7), T);
    assert_eq!(b.worker(worker(0), T).unwrap().connections, (0, 1, 0));
    // Below `per_worker`, a ready checkout also asks for another connection.
    let Checkout::Ready {
        conn: 7,
        open_another: Some(_),
        ..
    } = c.checkout(&mut b, &lease, Some(gen), None, T)
    else {
        panic!("the new connection is used and another is opened");
    };
}

#[test]
fn a_failed_attempt_is_reported_typed_to_its_waiters_and_backs_the_worker_off() {
    let mut b = balancer(1);
    let mut c: Connections<u64> = Connections::new(1);
    let lease = lease_on(&mut b, worker(0));
    let Checkout::Connect { attempt, gen } = c.checkout(&mut b, &lease, None, None, T) else {
        panic!("connect");
    };
    let why = ConnectFailure::Refused("bad certificate".into());
    assert_eq!(
        c.connect_done(&mut b, worker(0), attempt.id, Err(why.clone()), T),
        None
    );
    assert_eq!(
        c.checkout(&mut b, &lease, Some(gen), None, T),
        Checkout::Unavailable(why)
    );
    let w = b.worker(worker(0), T).unwrap();
    assert_eq!(w.connections, (0, 0, 0));
    assert!(!w.available, "the worker backs off after a failed connect");
}

#[test]
fn a_lost_connection_leaves_once_and_is_never_handed_out_again() {
    let (mut b, mut c, lease) = ready_set(2);
    let id = ready_id(c.checkout(&mut b, &lease, None, Some(0), T));
    assert!(c.lost(&mut b, worker(0), id, T));
    assert!(!c.lost(&mut b, worker(0), id, T), "lost once");
    for a in 0..16 {
        let Checkout::Ready { id: got, .. } = c.checkout(&mut b, &lease, None, Some(a), T) else {
            panic!("the other connection is ready");
        };
        assert_ne!(got, id);
    }
    // (connecting, ready, draining): the replacement is under way, one is ready.
    assert_eq!(b.worker(worker(0), T).unwrap().connections, (1, 1, 0));
}

#[test]
fn purge_takes_out_exactly_the_closed_connections() {
    let (mut b, mut c, _lease) = ready_set(3);
    let closed = [1u64, 3];
    let gone = c.purge_closed(&mut b, worker(0), |h| closed.contains(h), T);
    assert_eq!(gone, 2);
    assert_eq!(
        c.purge_closed(&mut b, worker(0), |h| closed.contains(h), T),
        0
    );
    let left: Vec<u64> = c.set(worker(0)).unwrap().ready().map(|(_, h)| *h).collect();
    assert_eq!(left, vec![2]);
    assert_eq!(b.worker(worker(0), T).unwrap().connections, (0, 1, 0));
}

#[test]
fn a_worker_that_moves_loses_its_connections_and_late_attempts_are_closed() {
    let (mut b, mut c, lease) = ready_set(1);
    c.set_per_worker(2);
    let Checkout::Ready {
        open_another: Some(late),
        ..
    } = c.checkout(&mut b, &lease, None, None, T)
    else {
        panic!("a second connection is wanted");
    };
    b.upsert_member(
        worker(0),
        MemberState::Alive,
        &Tags::new(),
        Some(addr(2000)),
    );
    let old = c.upsert(&mut b, worker(0), addr(2000), T);
    assert_eq!(
        old,
        vec![1],
        "the ready connection goes, for the caller to close"
    );
    assert!(
        c.upsert(&mut b, worker(0), addr(2000), T).is_empty(),
        "once"
    );
    // The attempt to the old address ends: it is not pooled, it is handed back to close.
    assert_eq!(
        c.connect_done(&mut b, worker(0), late.id, Ok(late.id.0), T),
        Some(late.id.0)
    );
    assert_eq!(b.worker(worker(0), T).unwrap().connections, (0, 0, 0));
    let lease = lease_on(&mut b, worker(0));
    let Checkout::Connect { attempt, .. } = c.checkout(&mut b, &lease, None, None, T) else {
        panic!("a fresh connection to the new address");
    };
    assert_eq!(attempt.addr, addr(2000));
}

#[test]
fn a_worker_without_an_address_is_unavailable() {
    let mut b = Balancer::with_strategy(Pick::RoundRobin);
    b.upsert_member(worker(0), MemberState::Alive, &Tags::new(), None);
    let mut c: Connections<u64> = Connections::new(1);
    let lease = lease_on(&mut b, worker(0));
    assert_eq!(
        c.checkout(&mut b, &lease, None, None, T),
        Checkout::Unavailable(ConnectFailure::NoAddress)
    );
}

#[test]
fn an_attempt_that_ends_after_its_worker_left_is_handed_back() {
    let mut b = balancer(1);
    let mut c: Connections<u64> = Connections::new(1);
    let lease = lease_on(&mut b, worker(0));
    let Checkout::Connect { attempt, .. } = c.checkout(&mut b, &lease, None, None, T) else {
        panic!("connect");
    };
    assert!(c.remove(&mut b, worker(0), T).is_empty());
    assert_eq!(
        c.connect_done(&mut b, worker(0), attempt.id, Ok(9), T),
        Some(9)
    );
    // It came back meanwhile: a new set, and the old attempt is still not its own.
    let Checkout::Connect { attempt: again, .. } = c.checkout(&mut b, &lease, None, None, T) else {
        panic!("connect");
    };
    assert_ne!(again.id, attempt.id, "ids are never reused");
    assert_eq!(
        c.connect_done(&mut b, worker(0), attempt.id, Ok(9), T),
        Some(9)
    );
}

/// One step of the proptest.
#[derive(Clone, Debug)]
enum Op {
    Checkout { worker: u8, key: Option<u8> },
    Finish { which: u8, ok: bool },
    Lost { which: u8 },
    Purge { worker: u8, mask: u8 },
    Move { worker: u8 },
    Remove { worker: u8 },
    Rejoin { worker: u8 },
}

fn op() -> impl Strategy<Value = Op> {
    prop_oneof![
        4 => (0..3u8, proptest::option::of(0..4u8)).prop_map(|(worker, key)| Op::Checkout { worker, key }),
        3 => (any::<u8>(), any::<bool>()).prop_map(|(which, ok)| Op::Finish { which, ok }),
        1 => any::<u8>().prop_map(|which| Op::Lost { which }),
        1 => (0..3u8, any::<u8>()).prop_map(|(worker, mask)| Op::Purge { worker, mask }),
        1 => (0..3u8).prop_map(|worker| Op::Move { worker }),
        1 => (0..3u8).prop_map(|worker| Op::Remove { worker }),
        1 => (0..3u8).prop_map(|worker| Op::Rejoin { worker }),
    ]
}

proptest! {
    /// After every step: the balancer's connection counts match the sets (so its cap and
    /// back-off see the truth), no id is ever pooled twice, and a connection that left the
    /// pool is never handed out again.
    #[test]
    fn accounting_matches_and_gone_connections_never_return(ops in proptest::collection::vec(op(), 1..80)) {
        let mut b = balancer(3);
        let mut c: Connections<u64> = Connections::new(3);
        let mut attempts: Vec<(NodeId, Attempt)> = Vec::new();
        let mut gone: BTreeSet<u64> = BTreeSet::new();
        let mut ever_pooled: BTreeSet<u64> = BTreeSet::new();
        let mut ports = [1000u16, 1001, 1002];
        let mut present = [true; 3];
        for op in ops {
            match op {
                Op::Checkout { worker: w, key } => {
                    if !present[w as usize] { continue; }
                    let Ok(lease) = b.select_id(worker(w), T) else { continue };
                    match c.checkout(&mut b, &lease, None, key.map(u64::from), T) {
                        Checkout::Ready { id, conn, open_another } => {
                            prop_assert_eq!(id.0, conn);
                            prop_assert!(!gone.contains(&conn), "closed connection {} handed out", conn);
                            if let Some(a) = open_another { attempts.push((worker(w), a)); }
                        }
                        Checkout::Connect { attempt, .. } => attempts.push((worker(w), attempt)),
                        Checkout::Wait { .. } | Checkout::Unavailable(_) => {}
                    }
                    let _ = b.finish(lease.id, crate::pool::Outcome::Cancelled, T);
                }
                Op::Finish { which, ok } => {
                    if attempts.is_empty() { continue; }
                    let (w, a) = attempts.remove(which as usize % attempts.len());
                    let result = if ok { Ok(a.id.0) } else { Err(ConnectFailure::Unreachable("x".into())) };
                    let pooled = ok && c.connect_done(&mut b, w, a.id, result.clone(), T).is_none();
                    if !ok { c.connect_done(&mut b, w, a.id, result, T); }
                    if pooled {
                        prop_assert!(ever_pooled.insert(a.id.0), "id pooled twice");
                    } else if ok {
                        gone.insert(a.id.0);
                    }
                }
                Op::Lost { which } => {
                    let all: Vec<(NodeId, ConnId)> = (0..3).filter_map(|w| c.set(worker(w)).map(|s| (worker(w), s)))
                        .flat_map(|(w, s)| s.ready().map(move |(id, _)| (w, id)).collect::<Vec<_>>())
                        .collect();
                    if all.is_empty() { continue; }
                    let (w, id) = all[which as usize % all.len()];
                    prop_assert!(c.lost(&mut b, w, id, T));
                    gone.insert(id.0);
                }
                Op::Purge { worker: w, mask } => {
                    let closed = |h: &u64| mask & (1 << (h % 8)) != 0;
                    let before: Vec<u64> = c.set(worker(w)).map(|s| s.ready().map(|(_, h)| *h).collect()).unwrap_or_default();
                    let n = c.purge_closed(&mut b, worker(w), closed, T);
                    prop_assert_eq!(n, before.iter().filter(|h| closed(h)).count());
                    gone.extend(before.into_iter().filter(|h| closed(h)));
                }
                Op::Move { worker: w } => {
                    if !present[w as usize] { continue; }
                    ports[w as usize] += 10;
                    let a = addr(ports[w as usize]);
                    b.upsert_member(worker(w), MemberState::Alive, &Tags::new(), Some(a));
                    gone.extend(c.upsert(&mut b, worker(w), a, T));
                }
                Op::Remove { worker: w } => {
                    gone.extend(c.remove(&mut b, worker(w), T));
                    b.remove_member(worker(w));
                    present[w as usize] = false;
                }
                Op::Rejoin { worker: w } => {
                    if present[w as usize] { continue; }
                    b.upsert_member(worker(w), MemberState::Alive, &Tags::new(), Some(addr(ports[w as usize])));
                    present[w as usize] = true;
                }
            }
            for w in 0..3u8 {
                let Some(stats) = b.worker(worker(w), T) else { continue };
                let (connecting, ready) = c.set(worker(w)).map_or((0, 0), |s| {
                    (s.pending.len() + s.stale.len(), s.ready.len())
                });
                prop_assert_eq!(stats.connections, (connecting as u16, ready as u16, 0), "worker {}", w);
                if let Some(s) = c.set(worker(w)) {
                    for (_, h) in s.ready() {
                        prop_assert!(!gone.contains(h), "a gone connection is still pooled");
                    }
                }
            }
        }
    }
}
