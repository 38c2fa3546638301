//! Pool accounting: leases, latency estimates, ejection and connection state.

use super::*;

fn pool() -> Pool {
    let mut p = Pool::new(PoolConfig::default());
    p.reset_slot(0, 1);
    p
}

#[test]
fn lease_finishes_exactly_once() {
    let mut p = pool();
    let id = p.start(0, Timestamp::ZERO);
    assert_eq!(p.hot[0].in_flight, 1);
    assert_eq!(p.finish(id, Outcome::Completed, Timestamp::ZERO), Ok(0));
    assert_eq!(
        p.finish(id, Outcome::Completed, Timestamp::ZERO),
        Err(LeaseError::AlreadyFinished(id))
    );
    // The slot is reused with a new generation; the old id is still "already finished".
    let id2 = p.start(0, Timestamp::ZERO);
    assert_ne!(id, id2);
    assert_eq!(
        p.finish(id, Outcome::Failed, Timestamp::ZERO),
        Err(LeaseError::AlreadyFinished(id))
    );
    assert_eq!(p.hot[0].in_flight, 1);
    assert_eq!(
        p.finish(id2 + (1 << 32), Outcome::Completed, Timestamp::ZERO),
        Err(LeaseError::Unknown(id2 + (1 << 32)))
    );
    assert_eq!(
        p.finish(77, Outcome::Completed, Timestamp::ZERO),
        Err(LeaseError::Unknown(77))
    );
    assert_eq!(p.finish(id2, Outcome::Cancelled, Timestamp::ZERO), Ok(0));
    assert_eq!(p.total_in_flight(), 0);
}

#[test]
fn consecutive_failures_eject_with_growing_duration() {
    let mut p = pool();
    let cfg = p.config.clone();
    let mut now = Timestamp::from_millis(1);
    let fail = |p: &mut Pool, now: Timestamp| {
        for _ in 0..cfg.eject_after {
            let id = p.start(0, now);
            p.finish(id, Outcome::Failed, now).unwrap();
        }
    };
    fail(&mut p, now);
    assert_eq!(p.hot[0].blocked_until, now + cfg.ejection_base);
    assert!(!p.hot[0].eligible(now, 10));
    // Failures while ejected do not extend it.
    let id = p.start(0, now);
    p.finish(id, Outcome::TimedOut, now).unwrap();
    assert_eq!(p.hot[0].blocked_until, now + cfg.ejection_base);
    now = now + cfg.ejection_base;
    assert!(p.hot[0].eligible(now, 10));
    fail(&mut p, now);
    assert_eq!(p.hot[0].blocked_until, now + cfg.ejection_base * 2);
    p.handle_timeout(now + cfg.ejection_base * 2);
    assert_eq!(p.next_deadline(0..1), None);
}

#[test]
fn a_success_breaks_the_failure_streak() {
    let mut p = pool();
    let now = Timestamp::from_millis(1);
    for i in 0..20 {
        let id = p.start(0, now);
        let o = if i % 4 == 3 {
            Outcome::Completed
        } else {
            Outcome::Failed
        };
        p.finish(id, o, now).unwrap();
    }
    assert!(p.hot[0].eligible(now, 10));
}

#[test]
fn peak_ewma_jumps_up_and_decays_slowly() {
    let mut p = pool();
    let t0 = Timestamp::from_millis(1000);
    let id = p.start(0, t0);
    p.finish(id, Outcome::Completed, t0 + Duration::from_millis(50))
        .unwrap();
    assert!((p.hot[0].ewma_us - 50_000.0).abs() < 1.0);
    let t1 = t0 + Duration::from_millis(100);
    let id = p.start(0, t1);
    p.finish(id, Outcome::Completed, t1 + Duration::from_millis(1))
        .unwrap();
    assert!(p.hot[0].ewma_us > 45_000.0, "{}", p.hot[0].ewma_us);
    // Idle for ten time constants: the estimate decays to almost nothing.
    let later = t1 + p.config.ewma_decay * 10;
    assert!(p.hot[0].ewma_at_now(later, p.inv_tau_us) < 10.0);
}

#[test]
fn a_lower_sample_blends_with_the_stored_estimate_by_elapsed_time() {
    // tower's PeakEwma rule: stored × w + sample × (1 - w), w = exp(-Δt/τ), the decay
    // applied once (not to an estimate already decayed to `now`).
    let mut p = pool();
    let t0 = Timestamp::from_millis(1000);
    let id = p.start(0, t0);
    let first = t0 + Duration::from_millis(40);
    p.finish(id, Outcome::Completed, first).unwrap();
    assert!((p.hot[0].ewma_us - 40_000.0).abs() < 1e-6);
    // The next sample (10 ms) ends one time constant after the first one did.
    let second = first + p.config.ewma_decay;
    let id = p.start(0, second - Duration::from_millis(10));
    p.finish(id, Outcome::Completed, second).unwrap();
    let w = (-1.0f64).exp();
    let want = 40_000.0 * w + 10_000.0 * (1.0 - w);
    assert!(
        (p.hot[0].ewma_us - want).abs() < 1e-6,
        "{} != {want}",
        p.hot[0].ewma_us
    );
}

#[test]
fn connection_events_track_counts_and_back_off() {
    let mut p = pool();
    let now = Timestamp::from_millis(5);
    assert_eq!(
        p.connection_event(0, ConnEvent::Connected, now),
        Err(ConnError::NoSuchConnection(ConnEvent::Connected))
    );
    p.connection_event(0, ConnEvent::Connecting, now).unwrap();
    p.connection_event(0, ConnEvent::ConnectFailed, now)
        .unwrap();
    assert!(!p.hot[0].eligible(now, 10));
    let later = now + p.config.connect_backoff_base;
    assert!(p.hot[0].eligible(later, 10));
    for _ in 0..p.config.max_connections {
        p.connection_event(0, ConnEvent::Connecting, later).unwrap();
    }
    assert!(matches!(
        p.connection_event(0, ConnEvent::Connecting, later),
        Err(ConnError::AtCapacity { .. })
    ));
    p.connection_event(0, ConnEvent::Connected, later).unwrap();
    p.connection_event(0, ConnEvent::Draining, later).unwrap();
    // Other attempts are still connecting, so the worker stays selectable.
    assert!(p.hot[0].eligible(later, 10));
    p.reset_slot(0, 1);
    p.connection_event(0, ConnEvent::Connecting, later).unwrap();
    p.connection_event(0, ConnEvent::Connected, later).unwrap();
    p.connection_event(0, ConnEvent::Draining, later).unwrap();
    assert!(!p.hot[0].eligible(later, 10), "draining only");
    p.connection_event(0, ConnEvent::Closed, later).unwrap();
    assert!(p.hot[0].eligible(later, 10), "idle again");
}

#[test]
fn a_call_that_waited_for_a_handshake_feeds_no_latency_sample() {
    let mut p = pool();
    let default = p.hot[0].ewma_us;
    let t0 = Timestamp::from_millis(1000);
    // The first call finds no connection: the adapter opens one (80 ms handshake).
    let id = p.start(0, t0);
    p.connection_event(0, ConnEvent::Connecting, t0).unwrap();
    let up = t0 + Duration::from_millis(80);
    p.connection_event(0, ConnEvent::Connected, up).unwrap();
    p.finish(id, Outcome::Completed, up + Duration::from_millis(1))
        .unwrap();
    assert_eq!(
        p.hot[0].ewma_us, default,
        "the handshake is not the worker's latency"
    );
    assert_eq!(p.cold[0].completed, 1, "the outcome still counts");
    // The next call uses the open connection: its 30 ms do count.
    let t1 = up + Duration::from_millis(10);
    let id = p.start(0, t1);
    p.finish(id, Outcome::Completed, t1 + Duration::from_millis(30))
        .unwrap();
    assert!(
        (p.hot[0].ewma_us - 30_000.0).abs() < 1.0,
        "{}",
        p.hot[0].ewma_us
    );
}
