use super::*;
use crate::pool::ConnState;
use core::time::Duration;
use rand_chacha::rand_core::SeedableRng;
use rand_chacha::ChaCha8Rng;

fn id(n: u8) -> NodeId {
    NodeId([n; 16])
}

fn tags(pairs: &[(&str, &str)]) -> Tags {
    Tags::from_pairs(pairs.iter().copied()).unwrap()
}

fn worker_tags() -> Tags {
    tags(&[("role", "worker")])
}

fn rng() -> ChaCha8Rng {
    ChaCha8Rng::seed_from_u64(7)
}

fn balancer(strategy: Strategy, n: u8) -> Balancer {
    let mut b = Balancer::with_strategy(strategy);
    for i in 0..n {
        b.upsert_member(id(i), MemberState::Alive, &worker_tags(), None);
    }
    b
}

fn t(ms: u64) -> Timestamp {
    Timestamp::from_millis(ms)
}

#[test]
fn default_config_is_valid() {
    assert!(Balancer::new(BalancerConfig::default()).is_ok());
    let bad = BalancerConfig {
        max_cached_filters: 0,
        ..BalancerConfig::default()
    };
    assert!(Balancer::new(bad).is_err());
}

#[test]
fn failed_and_left_members_are_never_picked() {
    for s in Strategy::ALL {
        let mut b = balancer(s, 3);
        b.upsert_member(id(0), MemberState::Failed, &worker_tags(), None);
        b.upsert_member(id(1), MemberState::Left, &worker_tags(), None);
        let f = Filter::all();
        let mut r = rng();
        for _ in 0..50 {
            let l = b.select(t(0), &f, &mut r).unwrap();
            assert_eq!(l.worker, id(2), "{s:?}");
            b.finish(l.id, Outcome::Completed, t(0)).unwrap();
        }
    }
}

#[test]
fn suspects_are_used_only_when_no_alive_worker_can_take_the_call() {
    let mut b = balancer(Strategy::Random, 2);
    b.upsert_member(id(0), MemberState::Suspect, &worker_tags(), None);
    let f = Filter::all();
    let mut r = rng();
    for _ in 0..50 {
        let l = b.select(t(0), &f, &mut r).unwrap();
        assert_eq!(l.worker, id(1));
        b.finish(l.id, Outcome::Completed, t(0)).unwrap();
    }
    b.upsert_member(id(1), MemberState::Failed, &worker_tags(), None);
    assert_eq!(b.select(t(0), &f, &mut r).unwrap().worker, id(0));
}

#[test]
fn no_match_and_overload_are_different_errors() {
    let mut b = balancer(Strategy::P2c, 2);
    let mut r = rng();
    let f = Filter::parse("role=db").unwrap();
    assert_eq!(
        b.select(t(0), &f, &mut r),
        Err(SelectError::NoMatchingWorker {
            filter: "role=db".into()
        })
    );
    let cfg = BalancerConfig {
        pool: PoolConfig {
            max_in_flight: 1,
            ..PoolConfig::default()
        },
        ..BalancerConfig::default()
    };
    let mut b = Balancer::new(cfg).unwrap();
    b.upsert_member(id(0), MemberState::Alive, &worker_tags(), None);
    let f = Filter::parse("role=worker").unwrap();
    let l = b.select(t(0), &f, &mut r).unwrap();
    assert_eq!(
        b.select(t(0), &f, &mut r),
        Err(SelectError::Overloaded {
            filter: "role=worker".into(),
            matching: 1
        })
    );
    b.finish(l.id, Outcome::Completed, t(1)).unwrap();
    assert!(b.select(t(1), &f, &mut r).is_ok());
}

#[test]
fn filter_cache_follows_tag_changes() {
    let mut b = balancer(Strategy::RoundRobin, 3);
    let f = Filter::parse("gpu=true").unwrap();
    let mut r = rng();
    assert!(b.select(t(0), &f, &mut r).is_err());
    b.upsert_member(id(1), MemberState::Alive, &tags(&[("gpu", "true")]), None);
    let l = b.select(t(0), &f, &mut r).unwrap();
    assert_eq!(l.worker, id(1));
    b.upsert_member(id(1), MemberState::Alive, &tags(&[("gpu", "false")]), None);
    assert!(matches!(
        b.select(t(0), &f, &mut r),
        Err(SelectError::NoMatchingWorker { .. })
    ));
    b.finish(l.id, Outcome::Completed, t(0)).unwrap();
}

#[test]
fn round_robin_rotates_and_honours_weights_exactly() {
    let mut b = balancer(Strategy::RoundRobin, 3);
    let f = Filter::all();
    let mut r = rng();
    let mut seen = Vec::new();
    for _ in 0..6 {
        let l = b.select(t(0), &f, &mut r).unwrap();
        seen.push(l.worker.0[0]);
        b.finish(l.id, Outcome::Completed, t(0)).unwrap();
    }
    assert_eq!(seen, [0, 1, 2, 0, 1, 2]);

    b.upsert_member(id(2), MemberState::Alive, &tags(&[("weight", "3")]), None);
    let mut counts = [0u32; 3];
    let mut longest_run = 0;
    let mut run = 0;
    let mut last = 99;
    for _ in 0..50 {
        let l = b.select(t(0), &f, &mut r).unwrap();
        let w = l.worker.0[0];
        counts[w as usize] += 1;
        run = if w == last { run + 1 } else { 1 };
        last = w;
        longest_run = longest_run.max(run);
        b.finish(l.id, Outcome::Completed, t(0)).unwrap();
    }
    // 50 picks = 10 full cycles of total weight 5.
    assert_eq!(counts, [10, 10, 30]);
    assert!(longest_run <= 2, "heavy worker's picks are spread out");
}

#[test]
fn invalid_weights_count_as_one() {
    let mut b = balancer(Strategy::RoundRobin, 2);
    b.upsert_member(id(1), MemberState::Alive, &tags(&[("weight", "0")]), None);
    b.upsert_member(
        id(0),
        MemberState::Alive,
        &tags(&[("weight", "lots")]),
        None,
    );
    let stats = b.workers(t(0));
    assert!(stats.iter().all(|w| w.weight == 1));
}

#[test]
fn random_is_proportional_to_weight() {
    let mut b = balancer(Strategy::Random, 2);
    b.upsert_member(id(1), MemberState::Alive, &tags(&[("weight", "4")]), None);
    let f = Filter::all();
    let mut r = rng();
    let mut heavy = 0;
    for _ in 0..5000 {
        let l = b.select(t(0), &f, &mut r).unwrap();
        heavy += u32::from(l.worker == id(1));
        b.finish(l.id, Outcome::Completed, t(0)).unwrap();
    }
    assert!((3800..4200).contains(&heavy), "{heavy}");
}

#[test]
fn least_connections_picks_the_least_loaded() {
    let mut b = balancer(Strategy::LeastConnections, 3);
    let f = Filter::all();
    let mut r = rng();
    let leases: Vec<Lease> = (0..6)
        .map(|_| b.select(t(0), &f, &mut r).unwrap())
        .collect();
    for i in 0..3 {
        assert_eq!(b.in_flight(id(i)), 2);
    }
    // Free two slots on worker 1: it must get the next two calls.
    for l in leases.iter().filter(|l| l.worker == id(1)) {
        b.finish(l.id, Outcome::Completed, t(1)).unwrap();
    }
    for _ in 0..2 {
        assert_eq!(b.select(t(1), &f, &mut r).unwrap().worker, id(1));
    }
}

#[test]
fn least_connections_ties_rotate_round_robin() {
    // HAProxy's leastconn: sequential calls always tie at zero in flight, and the tie
    // rotates, so 100 calls over 3 equal workers split 33/33/34. The latencies vary from
    // call to call (1.0 to 1.6 ms), as real ones do: a latency tie-break would send every
    // call to whichever worker happened to answer fastest last.
    let mut b = balancer(Strategy::LeastConnections, 3);
    let f = Filter::all();
    let mut r = rng();
    let mut count = [0u32; 3];
    let mut now = 1_000_000u64;
    for i in 0..100u64 {
        let l = b.select(Timestamp::from_micros(now), &f, &mut r).unwrap();
        count[l.worker.0[0] as usize] += 1;
        now += 1_000 + (i * 7919) % 600;
        b.finish(l.id, Outcome::Completed, Timestamp::from_micros(now))
            .unwrap();
    }
    for c in count {
        assert!((30..=36).contains(&c), "{count:?}");
    }
}

#[test]
fn least_connections_keeps_an_idle_slow_worker_out_of_ties_only() {
    let mut b = Balancer::new(BalancerConfig {
        strategy: Strategy::LeastConnections,
        pool: PoolConfig {
            default_rtt: Duration::from_millis(1),
            ..PoolConfig::default()
        },
        ..BalancerConfig::default()
    })
    .unwrap();
    for i in 0..3 {
        b.upsert_member(id(i), MemberState::Alive, &worker_tags(), None);
    }
    let f = Filter::all();
    let mut r = rng();
    let mut now = 1_000_000u64;
    // Teach the balancer that worker 0 takes 20 ms and the others 1 ms.
    for w in 0..3 {
        let l = b.select_id(id(w), Timestamp::from_micros(now)).unwrap();
        let took = if w == 0 { 20_000 } else { 1_000 };
        b.finish(l.id, Outcome::Completed, Timestamp::from_micros(now + took))
            .unwrap();
    }
    now += 20_000;
    // Sequential calls: all three tie at zero in flight, but worker 0 sits the ties out.
    let mut count = [0u32; 3];
    for _ in 0..40 {
        let l = b.select(Timestamp::from_micros(now), &f, &mut r).unwrap();
        count[l.worker.0[0] as usize] += 1;
        now += 1_000;
        b.finish(l.id, Outcome::Completed, Timestamp::from_micros(now))
            .unwrap();
    }
    assert_eq!(count, [0, 20, 20]);
    // Strictly the least loaded, it still wins: leastconn first, latency only among ties.
    let t0 = Timestamp::from_micros(now);
    let busy = [
        b.select_id(id(1), t0).unwrap(),
        b.select_id(id(2), t0).unwrap(),
    ];
    assert_eq!(b.select(t0, &f, &mut r).unwrap().worker, id(0));
    for l in busy {
        b.finish(l.id, Outcome::Completed, t0).unwrap();
    }
}

#[test]
fn least_connections_rotates_within_the_least_loaded_group_only() {
    let mut b = balancer(Strategy::LeastConnections, 4);
    let f = Filter::all();
    let mut r = rng();
    // One call parked on worker 3: the other three tie at zero and share the next calls.
    let parked = b.select_id(id(3), t(0)).unwrap();
    let mut seen = [0u32; 4];
    for _ in 0..30 {
        let l = b.select(t(0), &f, &mut r).unwrap();
        seen[l.worker.0[0] as usize] += 1;
        b.finish(l.id, Outcome::Completed, t(0)).unwrap();
    }
    assert_eq!(seen, [10, 10, 10, 0]);
    b.finish(parked.id, Outcome::Completed, t(0)).unwrap();
}

#[test]
fn weighted_least_connections_ties_rotate_by_weighted_load() {
    let mut b = Balancer::with_strategy(Strategy::LeastConnections);
    b.upsert_member(id(0), MemberState::Alive, &tags(&[("weight", "2")]), None);
    b.upsert_member(id(1), MemberState::Alive, &Tags::new(), None);
    let f = Filter::all();
    let mut r = rng();
    // Held calls: weight 2 takes two for each one of weight 1.
    let leases: Vec<Lease> = (0..30)
        .map(|_| b.select(t(0), &f, &mut r).unwrap())
        .collect();
    assert_eq!(b.in_flight(id(0)), 20);
    assert_eq!(b.in_flight(id(1)), 10);
    for l in leases {
        b.finish(l.id, Outcome::Completed, t(0)).unwrap();
    }
}

#[test]
fn p2c_avoids_a_slow_worker() {
    let mut b = balancer(Strategy::P2c, 4);
    let f = Filter::all();
    let mut r = rng();
    let mut slow = 0;
    let mut now = 1_000_000u64;
    for _ in 0..2000 {
        let l = b.select(Timestamp::from_micros(now), &f, &mut r).unwrap();
        let latency = if l.worker == id(0) { 20_000 } else { 1_000 };
        slow += u32::from(l.worker == id(0));
        b.finish(
            l.id,
            Outcome::Completed,
            Timestamp::from_micros(now + latency),
        )
        .unwrap();
        now += 1_000;
    }
    assert!(slow < 40, "slow worker got {slow} of 2000 calls");
}

#[test]
fn lease_of_a_removed_worker_still_releases() {
    let mut b = balancer(Strategy::RoundRobin, 1);
    let f = Filter::all();
    let mut r = rng();
    let l = b.select(t(0), &f, &mut r).unwrap();
    assert!(b.remove_member(id(0)));
    assert!(!b.remove_member(id(0)));
    assert!(matches!(
        b.select(t(0), &f, &mut r),
        Err(SelectError::NoMatchingWorker { .. })
    ));
    assert_eq!(b.in_flight(id(0)), 1);
    assert_eq!(b.workers(t(0))[0].state, None);
    b.finish(l.id, Outcome::Completed, t(1)).unwrap();
    assert_eq!(b.total_in_flight(), 0);
    assert!(b.is_empty(), "slot freed after the last lease");
    assert_eq!(
        b.finish(l.id, Outcome::Completed, t(1)),
        Err(LeaseError::AlreadyFinished(l.id))
    );
}

#[test]
fn a_worker_that_rejoins_keeps_its_outstanding_count() {
    let mut b = balancer(Strategy::RoundRobin, 1);
    let f = Filter::all();
    let mut r = rng();
    let l = b.select(t(0), &f, &mut r).unwrap();
    b.remove_member(id(0));
    b.upsert_member(id(0), MemberState::Alive, &worker_tags(), None);
    assert_eq!(b.in_flight(id(0)), 1);
    let l2 = b.select(t(0), &f, &mut r).unwrap();
    assert_eq!(b.in_flight(id(0)), 2);
    b.finish(l.id, Outcome::Completed, t(1)).unwrap();
    b.finish(l2.id, Outcome::Completed, t(1)).unwrap();
    assert_eq!(b.in_flight(id(0)), 0);
    assert_eq!(b.len(), 1);
}

#[test]
fn failing_worker_is_ejected_then_readmitted_on_time() {
    let mut b = balancer(Strategy::RoundRobin, 2);
    let f = Filter::all();
    let mut r = rng();
    let now = t(10);
    let cfg = b.config().pool.clone();
    let mut failures = 0;
    while failures < cfg.eject_after {
        let l = b.select(now, &f, &mut r).unwrap();
        let o = if l.worker == id(0) {
            failures += 1;
            Outcome::Failed
        } else {
            Outcome::Completed
        };
        b.finish(l.id, o, now).unwrap();
    }
    let until = now + cfg.ejection_base;
    assert_eq!(b.poll_timeout(), Some(until));
    assert_eq!(b.worker(id(0), now).unwrap().ejected_until, Some(until));
    for _ in 0..10 {
        let l = b.select(now, &f, &mut r).unwrap();
        assert_eq!(l.worker, id(1));
        b.finish(l.id, Outcome::Completed, now).unwrap();
    }
    let picks: Vec<NodeId> = (0..2)
        .map(|_| {
            let l = b.select(until, &f, &mut r).unwrap();
            b.finish(l.id, Outcome::Completed, until).unwrap();
            l.worker
        })
        .collect();
    assert!(picks.contains(&id(0)), "re-admitted after {until:?}");
    b.handle_timeout(until);
    assert_eq!(b.poll_timeout(), None);
}

#[test]
fn connection_backoff_and_draining_block_selection() {
    let mut b = balancer(Strategy::LeastConnections, 2);
    let f = Filter::all();
    let mut r = rng();
    b.connection_event(id(0), ConnEvent::Connecting, t(0))
        .unwrap();
    b.connection_event(id(0), ConnEvent::ConnectFailed, t(0))
        .unwrap();
    assert!(matches!(
        b.worker(id(0), t(0)).unwrap().conn,
        ConnState::Failed { .. }
    ));
    for _ in 0..5 {
        let l = b.select(t(0), &f, &mut r).unwrap();
        assert_eq!(l.worker, id(1));
        b.finish(l.id, Outcome::Completed, t(0)).unwrap();
    }
    assert_eq!(
        b.connection_event(id(9), ConnEvent::Connecting, t(0)),
        Err(ConnError::UnknownWorker(id(9)))
    );
    b.connection_event(id(1), ConnEvent::Connecting, t(0))
        .unwrap();
    b.connection_event(id(1), ConnEvent::Connected, t(0))
        .unwrap();
    b.connection_event(id(1), ConnEvent::Draining, t(0))
        .unwrap();
    assert!(matches!(
        b.select(t(0), &f, &mut r),
        Err(SelectError::Overloaded { matching: 2, .. })
    ));
    let later = t(0) + Duration::from_secs(1);
    assert_eq!(b.select(later, &f, &mut r).unwrap().worker, id(0));
}

#[test]
fn filter_cache_is_bounded() {
    let cfg = BalancerConfig {
        max_cached_filters: 2,
        ..BalancerConfig::default()
    };
    let mut b = Balancer::new(cfg).unwrap();
    b.upsert_member(id(0), MemberState::Alive, &worker_tags(), None);
    let mut r = rng();
    for i in 0..10 {
        let f = Filter::parse(&format!("k{i}!=x")).unwrap();
        let l = b.select(t(0), &f, &mut r).unwrap();
        b.finish(l.id, Outcome::Completed, t(0)).unwrap();
    }
    assert_eq!(b.cache.len(), 2);
}

#[test]
fn strategy_names_round_trip() {
    for s in Strategy::ALL {
        assert_eq!(Strategy::from_name(s.name()), Some(s));
    }
    assert_eq!(
        Strategy::from_name("least_connections"),
        Some(Strategy::LeastConnections)
    );
    assert_eq!(Strategy::from_name("nope"), None);
}

#[test]
fn select_id_leases_exactly_that_live_worker() {
    let mut b = balancer(Strategy::RoundRobin, 3);
    let lease = b.select_id(id(2), t(1)).unwrap();
    assert_eq!(lease.worker, id(2));
    assert_eq!(b.in_flight(id(2)), 1);
    b.finish(lease.id, Outcome::Completed, t(2)).unwrap();
    assert_eq!(b.in_flight(id(2)), 0);
    // Unknown, failed and removed workers are refused without starting a lease.
    assert!(matches!(
        b.select_id(id(9), t(3)),
        Err(SelectError::NoMatchingWorker { .. })
    ));
    b.upsert_member(id(1), MemberState::Failed, &worker_tags(), None);
    assert!(matches!(
        b.select_id(id(1), t(3)),
        Err(SelectError::NoMatchingWorker { .. })
    ));
    b.remove_member(id(0));
    assert!(b.select_id(id(0), t(3)).is_err());
    assert_eq!(b.total_in_flight(), 0);
}

#[test]
fn least_connections_spreads_sequential_calls_after_uneven_handshakes() {
    // The migration guide's test_load_balancing in miniature: each worker's first call opens
    // its connection, and the handshakes take very different times. Those calls feed no
    // latency sample, so no worker looks slow and sits out the ties.
    let mut b = balancer(Strategy::LeastConnections, 3);
    let f = Filter::all();
    let mut r = rng();
    let mut now = 1_000_000u64;
    let mut count = [0u32; 3];
    let mut connected = [false; 3];
    for _ in 0..100 {
        let l = b.select(Timestamp::from_micros(now), &f, &mut r).unwrap();
        let w = l.worker.0[0] as usize;
        count[w] += 1;
        if !connected[w] {
            connected[w] = true;
            let at = Timestamp::from_micros(now);
            b.connection_event(l.worker, ConnEvent::Connecting, at)
                .unwrap();
            now += [2_000, 40_000, 300_000][w];
            let up = Timestamp::from_micros(now);
            b.connection_event(l.worker, ConnEvent::Connected, up)
                .unwrap();
        }
        now += 200;
        b.finish(l.id, Outcome::Completed, Timestamp::from_micros(now))
            .unwrap();
    }
    for c in count {
        assert!((30..=36).contains(&c), "{count:?}");
    }
}
