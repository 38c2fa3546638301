//! Operation-sequence model test for the balancer and its pool accounting (after quinn's
//! `fuzz_targets/streams.rs`): random sequences of joins, state and tag changes, removals,
//! connection events, selections and lease finishes (every outcome, double finishes, unknown
//! ids, finishes after the worker vanished) are applied to the real `Balancer` and to a plain
//! model. After every operation:
//!
//! - in-flight per worker and in total equal leases started minus leases finished;
//! - a pick is a live member matching the filter, available (not ejected, not at capacity, not
//!   backing off), and Suspect only when no Alive candidate was available;
//! - errors are the right variant, and a refused input leaves every worker's stats unchanged;
//! - finishing everything brings every count back to zero.

use core::time::Duration;
use proptest::prelude::*;
use rand_chacha::rand_core::SeedableRng;
use rand_chacha::ChaCha8Rng;
use shoal_core::{
    Balancer, BalancerConfig, ConnEvent, Filter, LeaseError, MemberState, NodeId, Outcome,
    PoolConfig, SelectError, Strategy as Pick, Tags, Timestamp,
};
use std::collections::BTreeMap;

const WORKERS: u8 = 6;

const TAG_SETS: [&[(&str, &str)]; 5] = [
    &[("role", "worker")],
    &[("role", "worker"), ("gpu", "true")],
    &[("role", "db")],
    &[("role", "worker"), ("zone", "us"), ("weight", "3")],
    &[],
];

const FILTERS: [&str; 6] = [
    "",
    "role=worker",
    "gpu",
    "zone!=us",
    "role=worker,!gpu",
    "role=nothing",
];

#[derive(Clone, Debug)]
enum Op {
    Upsert {
        w: u8,
        state: MemberState,
        tags: usize,
    },
    Remove {
        w: u8,
    },
    Select {
        filter: usize,
    },
    Finish {
        pick: usize,
        outcome: Outcome,
    },
    FinishUnknown {
        id: u32,
    },
    Conn {
        w: u8,
        event: ConnEvent,
    },
    Advance {
        ms: u16,
    },
    Timeout,
}

fn arb_state() -> impl Strategy<Value = MemberState> {
    prop_oneof![
        3 => Just(MemberState::Alive),
        1 => Just(MemberState::Suspect),
        1 => Just(MemberState::Failed),
        1 => Just(MemberState::Left),
    ]
}

fn arb_outcome() -> impl Strategy<Value = Outcome> {
    prop_oneof![
        Just(Outcome::Completed),
        Just(Outcome::Failed),
        Just(Outcome::Cancelled),
        Just(Outcome::TimedOut),
    ]
}

fn arb_conn() -> impl Strategy<Value = ConnEvent> {
    prop_oneof![
        Just(ConnEvent::Connecting),
        Just(ConnEvent::Connected),
        Just(ConnEvent::ConnectFailed),
        Just(ConnEvent::Draining),
        Just(ConnEvent::Closed),
    ]
}

fn arb_op() -> impl Strategy<Value = Op> {
    prop_oneof![
        3 => (0..WORKERS, arb_state(), 0..TAG_SETS.len())
            .prop_map(|(w, state, tags)| Op::Upsert { w, state, tags }),
        1 => (0..WORKERS).prop_map(|w| Op::Remove { w }),
        6 => (0..FILTERS.len()).prop_map(|filter| Op::Select { filter }),
        5 => (any::<usize>(), arb_outcome()).prop_map(|(pick, outcome)| Op::Finish { pick, outcome }),
        1 => any::<u32>().prop_map(|id| Op::FinishUnknown { id }),
        2 => (0..WORKERS, arb_conn()).prop_map(|(w, event)| Op::Conn { w, event }),
        2 => (0u16..200).prop_map(|ms| Op::Advance { ms }),
        1 => Just(Op::Timeout),
    ]
}

fn arb_strategy() -> impl Strategy<Value = Pick> {
    prop_oneof![
        Just(Pick::RoundRobin),
        Just(Pick::Random),
        Just(Pick::LeastConnections),
        Just(Pick::P2c),
    ]
}

fn nid(w: u8) -> NodeId {
    NodeId([w + 1; 16])
}

fn tags(i: usize) -> Tags {
    Tags::from_pairs(TAG_SETS[i].iter().copied()).expect("valid tag set")
}

#[derive(Default)]
struct Model {
    /// Present members: state and tag-set index.
    members: BTreeMap<NodeId, (MemberState, usize)>,
    /// Every lease handed out: (id, worker, finished).
    leases: Vec<(u64, NodeId, bool)>,
    /// Started minus finished, per worker.
    in_flight: BTreeMap<NodeId, i64>,
}

fn check_counts(b: &Balancer, m: &Model) -> Result<(), TestCaseError> {
    let mut total = 0i64;
    for (id, &n) in &m.in_flight {
        prop_assert!(n >= 0, "model count went negative for {id:?}");
        prop_assert_eq!(i64::from(b.in_flight(*id)), n, "in-flight of {:?}", id);
        total += n;
    }
    prop_assert_eq!(b.total_in_flight() as i64, total);
    let outstanding = m.leases.iter().filter(|l| !l.2).count() as i64;
    prop_assert_eq!(outstanding, total);
    Ok(())
}

fn run(strategy: Pick, seed: u64, ops: Vec<Op>) -> Result<(), TestCaseError> {
    let config = BalancerConfig {
        strategy,
        pool: PoolConfig {
            max_in_flight: 3,
            eject_after: 2,
            ejection_base: Duration::from_millis(50),
            ejection_max: Duration::from_millis(400),
            connect_backoff_base: Duration::from_millis(20),
            ..PoolConfig::default()
        },
        ..BalancerConfig::default()
    };
    let mut b = Balancer::new(config).expect("valid config");
    let mut m = Model::default();
    let mut rng = ChaCha8Rng::seed_from_u64(seed);
    let mut now = Timestamp::from_millis(1);
    let filters: Vec<Filter> = FILTERS
        .iter()
        .map(|f| Filter::parse(f).expect("valid filter"))
        .collect();

    for op in ops {
        match op {
            Op::Upsert { w, state, tags: t } => {
                b.upsert_member(nid(w), state, &tags(t), None);
                m.members.insert(nid(w), (state, t));
            }
            Op::Remove { w } => {
                let was = m.members.remove(&nid(w)).is_some();
                prop_assert_eq!(b.remove_member(nid(w)), was);
            }
            Op::Select { filter } => {
                let f = &filters[filter];
                let snapshot: BTreeMap<NodeId, _> =
                    b.workers(now).into_iter().map(|s| (s.id, s)).collect();
                let matching: Vec<(NodeId, MemberState)> = m
                    .members
                    .iter()
                    .filter(|(_, (s, t))| s.is_live() && f.matches(&tags(*t)))
                    .map(|(id, (s, _))| (*id, *s))
                    .collect();
                let available = |id: &NodeId| snapshot.get(id).is_some_and(|s| s.available);
                let alive_available = matching
                    .iter()
                    .any(|(id, s)| *s == MemberState::Alive && available(id));
                match b.select(now, f, &mut rng) {
                    Ok(lease) => {
                        let Some(&(_, state)) = matching.iter().find(|(id, _)| *id == lease.worker)
                        else {
                            return Err(TestCaseError::fail(format!(
                                "picked {:?}, not a live match for {f:?}",
                                lease.worker
                            )));
                        };
                        let s = &snapshot[&lease.worker];
                        prop_assert!(s.available, "picked an unavailable worker: {s:?}");
                        prop_assert!(s.ejected_until.is_none());
                        prop_assert!(s.in_flight < 3);
                        if state == MemberState::Suspect {
                            prop_assert!(!alive_available, "suspect picked over an alive one");
                        }
                        prop_assert_eq!(lease.started_at, now);
                        m.leases.push((lease.id, lease.worker, false));
                        *m.in_flight.entry(lease.worker).or_default() += 1;
                    }
                    Err(SelectError::NoMatchingWorker { filter: text }) => {
                        prop_assert_eq!(text, f.to_string());
                        prop_assert!(matching.is_empty());
                    }
                    Err(SelectError::Overloaded { matching: n, .. }) => {
                        prop_assert_eq!(n, matching.len());
                        prop_assert!(!matching.iter().any(|(id, _)| available(id)));
                    }
                }
            }
            Op::Finish { pick, outcome } => {
                if m.leases.is_empty() {
                    continue;
                }
                let i = pick % m.leases.len();
                let (id, worker, finished) = m.leases[i];
                let before = b.workers(now);
                let r = b.finish(id, outcome, now);
                if finished {
                    prop_assert_eq!(r, Err(LeaseError::AlreadyFinished(id)));
                    prop_assert_eq!(b.workers(now), before, "refused finish changed state");
                } else {
                    prop_assert_eq!(r, Ok(()));
                    m.leases[i].2 = true;
                    *m.in_flight.entry(worker).or_default() -= 1;
                }
            }
            Op::FinishUnknown { id } => {
                let before = b.workers(now);
                let id = u64::from(id);
                prop_assert_eq!(
                    b.finish(id, Outcome::Completed, now),
                    Err(LeaseError::Unknown(id))
                );
                prop_assert_eq!(b.workers(now), before);
            }
            Op::Conn { w, event } => {
                let before = b.workers(now);
                if b.connection_event(nid(w), event, now).is_err() {
                    prop_assert_eq!(b.workers(now), before, "refused event changed state");
                }
            }
            Op::Advance { ms } => now = now + Duration::from_millis(u64::from(ms)),
            Op::Timeout => {
                b.handle_timeout(now);
                if let Some(t) = b.poll_timeout() {
                    prop_assert!(t > now, "poll_timeout reports an expired deadline");
                }
            }
        }
        check_counts(&b, &m)?;
    }

    // Finish everything: every count returns to zero.
    for i in 0..m.leases.len() {
        let (id, worker, finished) = m.leases[i];
        if !finished {
            prop_assert_eq!(b.finish(id, Outcome::Cancelled, now), Ok(()));
            m.leases[i].2 = true;
            *m.in_flight.entry(worker).or_default() -= 1;
        }
    }
    check_counts(&b, &m)?;
    prop_assert_eq!(b.total_in_flight(), 0);
    for w in 0..WORKERS {
        prop_assert_eq!(b.in_flight(nid(w)), 0);
    }
    // Removed workers are forgotten once drained.
    prop_assert_eq!(b.len(), m.members.len());
    Ok(())
}

proptest! {
    #![proptest_config(ProptestConfig { cases: 400, ..ProptestConfig::default() })]

    #[test]
    fn balancer_accounting_matches_the_model(
        strategy in arb_strategy(),
        seed in any::<u64>(),
        ops in proptest::collection::vec(arb_op(), 1..120),
    ) {
        run(strategy, seed, ops)?;
    }
}
