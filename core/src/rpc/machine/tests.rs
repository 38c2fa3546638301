//! The call machine's sequencing, case by case, and a proptest over random input sequences.

use super::*;
use crate::Timestamp;
use proptest::prelude::*;
use std::collections::BTreeMap;

fn w(i: u8) -> NodeId {
    NodeId::from_name(&format!("w{i}"))
}

fn lease(id: u64, worker: NodeId) -> Lease {
    Lease {
        id,
        worker,
        rpc_addr: None,
        started_at: Timestamp::ZERO,
    }
}

fn anywhere(idempotent: bool, retries: u32) -> CallMachine {
    CallMachine::new(CallTarget::Any, CallPolicy::new(idempotent, retries))
}

#[test]
fn an_answer_completes_the_lease() {
    let mut m = anywhere(false, 2);
    assert_eq!(m.selected(&lease(1, w(0))), Decision::Proceed);
    assert_eq!(m.connected(ConnId(5)), Decision::Proceed);
    assert_eq!(m.attempt().unwrap().conn, Some(ConnId(5)));
    assert_eq!(m.answered(&Status::Ok), Decision::Answer { lease: 1 });
    assert!(m.is_done());
    assert_eq!(m.attempts(), 1);
    assert_eq!(m.deadline_passed(), Decision::Ignored, "the end is final");
}

#[test]
fn connect_failures_move_on_and_avoid_the_worker() {
    let mut m = anywhere(false, 2);
    m.selected(&lease(1, w(0)));
    let d = m.connect_failed(&ConnectFailure::Unreachable("no route".into()));
    assert_eq!(
        d,
        Decision::Retry {
            lease: 1,
            outcome: Outcome::Failed
        }
    );
    assert_eq!(m.avoid(), &[w(0)]);
    m.selected(&lease(2, w(1)));
    assert_eq!(m.answered(&Status::Ok), Decision::Answer { lease: 2 });
    assert_eq!(m.attempts(), 2);
}

#[test]
fn a_refused_handshake_fails_typed_when_retries_run_out() {
    let mut m = anywhere(false, 0);
    m.selected(&lease(1, w(0)));
    assert_eq!(
        m.connect_failed(&ConnectFailure::Refused("unknown CA".into())),
        Decision::Fail {
            lease: Some((1, Outcome::Failed)),
            kind: CallErrorKind::ConnectionRefused
        }
    );
}

#[test]
fn a_first_failed_stream_open_reopens_without_counting() {
    let mut m = anywhere(false, 0);
    m.selected(&lease(1, w(0)));
    assert_eq!(m.open_failed(), Decision::Reopen { lease: 1 });
    assert_eq!(m.attempts(), 0);
    assert!(m.avoid().is_empty(), "the same worker may be chosen again");
    m.selected(&lease(2, w(0)));
    assert_eq!(
        m.open_failed(),
        Decision::Fail {
            lease: Some((2, Outcome::Failed)),
            kind: CallErrorKind::WorkerFailed(CallPhase::Open)
        },
        "the second time is an attempt (and the budget is 0)"
    );
}

#[test]
fn a_call_that_may_have_run_is_retried_only_when_idempotent() {
    for phase in [CallPhase::Send, CallPhase::Response] {
        let mut m = anywhere(false, 3);
        m.selected(&lease(1, w(0)));
        assert_eq!(
            m.transport_failed(phase),
            Decision::Fail {
                lease: Some((1, Outcome::Failed)),
                kind: CallErrorKind::WorkerFailed(phase)
            }
        );
        let mut m = anywhere(true, 3);
        m.selected(&lease(1, w(0)));
        assert!(matches!(m.transport_failed(phase), Decision::Retry { .. }));
    }
}

#[test]
fn overload_is_retried_and_reported_when_retries_run_out() {
    let mut m = anywhere(false, 1);
    m.selected(&lease(1, w(0)));
    assert_eq!(
        m.answered(&Status::Overloaded),
        Decision::Retry {
            lease: 1,
            outcome: Outcome::Failed
        }
    );
    m.selected(&lease(2, w(1)));
    assert_eq!(
        m.answered(&Status::Overloaded),
        Decision::Fail {
            lease: Some((2, Outcome::Failed)),
            kind: CallErrorKind::Overloaded
        }
    );
    assert_eq!(m.attempts(), 2);
}

#[test]
fn answers_about_the_call_are_final_and_blame_nobody() {
    let mut m = anywhere(true, 5);
    m.selected(&lease(1, w(0)));
    assert_eq!(
        m.answered(&Status::UnknownMethod),
        Decision::Fail {
            lease: Some((1, Outcome::Completed)),
            kind: CallErrorKind::UnknownMethod
        }
    );
    let mut m = anywhere(true, 5);
    m.selected(&lease(1, w(0)));
    assert_eq!(
        m.answered(&Status::HandlerFailed("x".into())),
        Decision::Fail {
            lease: Some((1, Outcome::Failed)),
            kind: CallErrorKind::HandlerFailed
        }
    );
}

#[test]
fn the_deadline_ends_the_call_with_or_without_a_lease() {
    let mut m = anywhere(true, 5);
    assert_eq!(
        m.deadline_passed(),
        Decision::Fail {
            lease: None,
            kind: CallErrorKind::DeadlineExceeded
        }
    );
    let mut m = anywhere(true, 5);
    m.selected(&lease(1, w(0)));
    assert_eq!(
        m.deadline_passed(),
        Decision::Fail {
            lease: Some((1, Outcome::TimedOut)),
            kind: CallErrorKind::DeadlineExceeded
        }
    );
    assert_eq!(m.answered(&Status::Ok), Decision::Ignored);
}

#[test]
fn a_worker_targeted_call_never_moves() {
    let mut m = CallMachine::new(CallTarget::Worker(w(3)), CallPolicy::new(true, 5));
    m.selected(&lease(1, w(3)));
    assert_eq!(
        m.connect_failed(&ConnectFailure::TimedOut(core::time::Duration::from_secs(
            1
        ))),
        Decision::Fail {
            lease: Some((1, Outcome::Failed)),
            kind: CallErrorKind::WorkerFailed(CallPhase::Connect)
        }
    );
    // But a stale connection is still replaced.
    let mut m = CallMachine::new(CallTarget::Worker(w(3)), CallPolicy::new(false, 0));
    m.selected(&lease(1, w(3)));
    assert_eq!(m.open_failed(), Decision::Reopen { lease: 1 });
}

#[test]
fn an_extra_lease_is_given_back() {
    let mut m = anywhere(false, 1);
    m.selected(&lease(1, w(0)));
    assert_eq!(
        m.selected(&lease(2, w(1))),
        Decision::Retry {
            lease: 2,
            outcome: Outcome::Cancelled
        }
    );
    assert_eq!(m.attempt().unwrap().lease, 1);
}

/// One input of the proptest.
#[derive(Clone, Debug)]
enum Input {
    Select(u8),
    Connect,
    ConnectFailed(bool),
    OpenFailed,
    Transport(bool),
    Answer(u8),
    Deadline,
}

fn input() -> impl Strategy<Value = Input> {
    prop_oneof![
        3 => (0..4u8).prop_map(Input::Select),
        2 => Just(Input::Connect),
        1 => any::<bool>().prop_map(Input::ConnectFailed),
        1 => Just(Input::OpenFailed),
        1 => any::<bool>().prop_map(Input::Transport),
        2 => (0..6u8).prop_map(Input::Answer),
        1 => Just(Input::Deadline),
    ]
}

fn status(i: u8) -> Status {
    match i {
        0 => Status::Ok,
        1 => Status::Overloaded,
        2 => Status::UnknownMethod,
        3 => Status::HandlerFailed("x".into()),
        4 => Status::DeadlineExceeded,
        _ => Status::PayloadTooLarge,
    }
}

proptest! {
    /// Whatever the adapter reports, in whatever order: every lease the machine took is
    /// finished exactly once (and none it did not take), the call ends at most once, retries
    /// stay within the budget and avoid the workers tried, and a non-idempotent call whose
    /// request may have arrived is never retried (so never both retried and answered).
    #[test]
    fn every_lease_finishes_once_and_retries_follow_the_rules(
        idempotent in any::<bool>(),
        max_retries in 0u32..4,
        targeted in any::<bool>(),
        inputs in proptest::collection::vec(input(), 1..40),
    ) {
        let target = if targeted { CallTarget::Worker(w(0)) } else { CallTarget::Any };
        let mut m = CallMachine::new(target, CallPolicy::new(idempotent, max_retries));
        let mut next_id = 0u64;
        let mut open: BTreeMap<u64, NodeId> = BTreeMap::new();
        let mut finished: BTreeMap<u64, Outcome> = BTreeMap::new();
        let mut retries = 0u32;
        let mut ended = 0;
        let mut may_have_run = false;
        for input in inputs {
            let was_done = m.is_done();
            let current = m.attempt();
            let d = match input {
                Input::Select(i) => {
                    next_id += 1;
                    let worker = if targeted { w(0) } else { w(i) };
                    if !targeted && m.avoid().contains(&worker) && m.avoid().len() < 4 {
                        // The adapter selects avoiding the tried workers.
                        continue;
                    }
                    open.insert(next_id, worker);
                    let d = m.selected(&lease(next_id, worker));
                    if d == Decision::Ignored {
                        // After the end the adapter gives the lease back itself.
                        finished.insert(next_id, Outcome::Cancelled);
                        open.remove(&next_id);
                    }
                    d
                }
                Input::Connect => m.connected(ConnId(next_id)),
                Input::ConnectFailed(refused) => m.connect_failed(&if refused {
                    ConnectFailure::Refused("r".into())
                } else {
                    ConnectFailure::NoCapacity
                }),
                Input::OpenFailed => m.open_failed(),
                Input::Transport(send) => {
                    if current.is_some() && !was_done { may_have_run = true; }
                    m.transport_failed(if send { CallPhase::Send } else { CallPhase::Response })
                }
                Input::Answer(i) => m.answered(&status(i)),
                Input::Deadline => m.deadline_passed(),
            };
            if was_done {
                prop_assert_eq!(d, Decision::Ignored);
            }
            let mut finish = |id: u64, outcome: Outcome| -> Result<(), TestCaseError> {
                prop_assert!(open.remove(&id).is_some(), "lease {} finished but not open", id);
                prop_assert!(finished.insert(id, outcome).is_none(), "lease {} finished twice", id);
                Ok(())
            };
            match d {
                Decision::Proceed | Decision::Ignored => {}
                Decision::Reopen { lease } => finish(lease, Outcome::Cancelled)?,
                Decision::Retry { lease, outcome } => {
                    finish(lease, outcome)?;
                    if outcome != Outcome::Cancelled {
                        retries += 1;
                        prop_assert!(!targeted, "a targeted call moved");
                        prop_assert!(retries <= max_retries);
                        prop_assert!(idempotent || !may_have_run, "a call that may have run was retried");
                        prop_assert_eq!(m.avoid().last().copied(), current.map(|a| a.worker));
                    }
                }
                Decision::Answer { lease } => {
                    finish(lease, Outcome::Completed)?;
                    prop_assert!(idempotent || !may_have_run || retries == 0);
                    ended += 1;
                }
                Decision::Fail { lease, .. } => {
                    if let Some((id, outcome)) = lease { finish(id, outcome)?; }
                    ended += 1;
                }
            }
            prop_assert!(ended <= 1);
            // Only the current attempt's lease is open.
            let expect: Vec<u64> = m.attempt().map(|a| a.lease).into_iter().collect();
            prop_assert_eq!(open.keys().copied().collect::<Vec<_>>(), expect);
        }
    }
}
