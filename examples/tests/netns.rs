//! A real multi-host cluster: the release binaries (`director`, `worker`, `client`) run in
//! network namespaces of their own, one host each, on a bridge; faults are nftables rules
//! and `kill -9` (see `netns/harness.rs` and docs/netns.md).
//!
//! Run as root: `cargo test --release -p shoal-examples --test netns` (or `cargo test
//! --release --workspace netns`). Without the rights to create namespaces, or without `nft`,
//! each scenario prints a loud SKIP and passes, unless `SHOAL_NETNS_REQUIRED=1` (set in CI),
//! which turns the skip into a failure. Scenarios run one at a time (a lock), each on its own
//! subnet and namespace prefix. Each prints its timings as one `NETNS RESULT` JSON line.
//!
//! Preset `lan` everywhere (the binaries' `--preset lan`): these hosts are a LAN.

#[path = "netns/cluster.rs"]
mod cluster;
#[path = "netns/harness.rs"]
mod harness;
#[path = "netns/logs.rs"]
mod logs;

use cluster::{
    host_of, issue_stall, lock, median, result, Cluster, Load, ALL, CLIENT, DETECT_WITHIN,
    DIRECTOR, HEAL_WITHIN, LOAD, WORKERS,
};
use harness::wait_for;
use logs::first_full_view;
use serde_json::json;
use shoal_examples::jsonlog::{now_ms, CallRecord};
use std::time::Duration;

/// 5 hosts form one cluster from one seed; every member sees all; calls reach every worker.
#[test]
fn netns_form_five_hosts() {
    let _one = lock();
    let Some(mut c) = Cluster::hosts("form", 11) else {
        return;
    };
    let load = Load { secs: 5, ..LOAD };
    let (t0, formed) = c.form(load);
    c.finish_load(load, false);
    let r = c.reconcile(load.retries);
    assert_eq!(r.answered, r.issued, "every call answered: {r:?}");
    assert!(r.issued > 0);
    for w in WORKERS {
        assert!(
            r.answers_by_worker.get(w).copied().unwrap_or(0) > 0,
            "{w} got no calls: {r:?}"
        );
    }
    result(
        "form",
        json!({ "formed_ms": formed - t0, "calls": r.issued }),
    );
}

fn id_of(name: &str) -> String {
    shoal_tokio::NodeId::from_name(name).to_string()
}

/// Everyone but `victims`.
fn others(victims: &[&str]) -> Vec<&'static str> {
    ALL.iter()
        .copied()
        .filter(|n| !victims.contains(n))
        .collect()
}

/// Calls that failed, as text, for messages.
fn failed_calls(calls: &[CallRecord]) -> Vec<String> {
    calls
        .iter()
        .filter(|c| c.outcome != "ok")
        .map(|c| format!("{c:?}"))
        .collect()
}

/// kill -9 a worker under load.
#[test]
fn netns_kill9_worker_under_load() {
    let _one = lock();
    let Some(mut c) = Cluster::hosts("kill", 12) else {
        return;
    };
    let load = LOAD;
    let (t0, _) = c.form(load);
    c.wait_calls(50);
    let victim = "worker-2";
    let t_kill = c.net.kill9(victim);
    let observers = others(&[victim]);
    let detect = c.detection(&observers, "failed", victim, t_kill);
    let t_client = t_kill + detect[observers.iter().position(|o| *o == CLIENT).unwrap_or(0)];
    let n = c.calls().len();
    c.wait_calls(n + 150); // three more seconds of load
    c.finish_load(load, true);
    let r = c.reconcile(load.retries);
    check_lost_worker(&c, victim, load, (t_kill, t_client), u64::MAX);
    let healthy = others(&[victim]);
    let false_failures = c.failures(&ALL, &healthy, t0);
    assert!(false_failures.is_empty(), "{false_failures:?}");
    println!("failed calls: {:#?}", failed_calls(&c.calls()));
    let stall = issue_stall(&c.calls(), t_kill, t_client);
    result(
        "kill9",
        json!({ "detect_ms": detect, "detect_median_ms": median(&detect), "issue_stall_ms": stall,
                "detect_max_ms": detect.iter().max(), "calls": r.issued,
                "errors": r.errors, "idempotent_ran_twice": r.idempotent_ran_twice,
                "ran_but_failed": r.ran_but_failed }),
    );
}

/// Black-hole a worker (every packet in and out dropped, no reply) under load, then lift it.
#[test]
fn netns_black_hole_worker_under_load() {
    let _one = lock();
    let Some(mut c) = Cluster::hosts("hole", 13) else {
        return;
    };
    // A deadline longer than quinn's 10 s idle timeout, so a call that ended at the idle
    // timeout would show.
    let load = Load {
        timeout_ms: 15_000,
        ..LOAD
    };
    let (t0, _) = c.form(load);
    c.wait_calls(50);
    let victim = "worker-2";
    let t_hole = c.net.black_hole(host_of(victim));
    let observers = others(&[victim]);
    let detect = c.detection(&observers, "failed", victim, t_hole);
    let t_client = t_hole + detect[observers.iter().position(|o| *o == CLIENT).unwrap_or(0)];
    let n = c.calls().len();
    c.wait_calls(n + 150);
    // Lift it: the worker was never restarted, so it must merge back on its own.
    let t_lift = c.net.clear_fault(host_of(victim));
    let back = wait_for(HEAL_WITHIN, || {
        ALL.iter()
            .map(|n| first_full_view(&c.lines(n), &ALL, t_lift))
            .collect::<Option<Vec<u64>>>()
    })
    .unwrap_or_else(|| panic!("no full view after lifting: {}", c.describe_views()));
    let rejoin = back.iter().max().copied().unwrap_or(t_lift) - t_lift;
    let got_calls = wait_for(Duration::from_secs(20), || {
        logs::handled(&c.lines(victim))
            .iter()
            .find(|(_, t)| *t > t_lift)
            .map(|(_, t)| t - t_lift)
    });
    c.finish_load(load, true);
    let r = c.reconcile(load.retries);
    // The checks on calls apply to the black-hole phase.
    check_lost_worker(&c, victim, load, (t_hole, t_client), t_lift);
    let calls = c.calls();
    let false_failures = c.failures(&ALL, &others(&[victim]), t0);
    assert!(false_failures.is_empty(), "{false_failures:?}");
    let got_calls = got_calls.expect("the worker got calls again after the black hole lifted");
    println!("failed calls: {:#?}", failed_calls(&calls));
    let stall = issue_stall(&calls, t_hole, t_client);
    result(
        "black_hole",
        json!({ "detect_ms": detect, "detect_median_ms": median(&detect), "issue_stall_ms": stall,
                "detect_max_ms": detect.iter().max(), "rejoin_ms": rejoin,
                "first_call_after_lift_ms": got_calls, "calls": r.issued,
                "errors": r.errors }),
    );
}

/// Checks of a worker lost under load (killed or black-holed) at `t_fault`, detected by the
/// client at `t_client`, over the calls issued before `until`: idempotent calls all
/// succeed; every error names the victim and ended by its deadline or shortly after the
/// client declared the victim failed (so never at the 10 s transport idle timeout when
/// detection is faster); calls issued after detection avoid the victim and need no retry;
/// the other workers keep getting calls.
fn check_lost_worker(
    c: &Cluster,
    victim: &str,
    load: Load,
    (t_fault, t_client): (u64, u64),
    until: u64,
) {
    let victim_id = id_of(victim);
    let calls: Vec<CallRecord> = c.calls().into_iter().filter(|x| x.t_ms < until).collect();
    for call in &calls {
        if call.idempotent {
            assert_eq!(call.outcome, "ok", "an idempotent call failed: {call:?}");
        }
        if call.outcome != "ok" {
            assert_eq!(
                call.worker.as_deref(),
                Some(victim_id.as_str()),
                "a call failed on a healthy worker: {call:?}"
            );
            let bound = (call.t_ms + load.timeout_ms).min(t_client) + 1_500;
            assert!(
                call.end_ms <= bound,
                "call ended {} ms after it started ({} ms after the fault; the client \
                 detected at +{} ms): {call:?}",
                call.end_ms - call.t_ms,
                call.end_ms.saturating_sub(t_fault),
                t_client - t_fault
            );
        }
        if call.t_ms >= t_client + 500 {
            assert_eq!(
                call.outcome, "ok",
                "a call after detection failed: {call:?}"
            );
            assert_ne!(call.worker.as_deref(), Some(victim_id.as_str()));
            assert_eq!(
                call.attempts,
                Some(1),
                "a call after detection retried: {call:?}"
            );
        }
    }
    for w in WORKERS.iter().filter(|w| **w != victim) {
        let after = calls
            .iter()
            .filter(|x| x.t_ms > t_client && x.label.as_deref() == Some(w))
            .count();
        assert!(after > 0, "{w} got no calls after the fault");
    }
}

/// Partition 2 hosts (worker-2, worker-3) from 3 (director, worker-1, client), then heal.
#[test]
fn netns_partition_two_from_three_and_heal() {
    let _one = lock();
    let Some(mut c) = Cluster::hosts("part", 14) else {
        return;
    };
    let load = Load { secs: 90, ..LOAD };
    let (t0, _) = c.form(load);
    c.wait_calls(50);
    let minority = ["worker-2", "worker-3"];
    let majority = others(&minority);
    let majority_hosts: Vec<usize> = majority.iter().map(|n| host_of(n)).collect();
    let mut t_cut = 0;
    for m in minority {
        t_cut = c.net.cut_from(host_of(m), &majority_hosts);
    }
    // The minority sees it is the minority.
    let found = wait_for(DETECT_WITHIN, || {
        minority
            .iter()
            .map(|m| {
                logs::events(&c.lines(m)).into_iter().find(|e| {
                    e.t >= t_cut && e.event == "partition_detected" && e.minority == Some(true)
                })
            })
            .collect::<Option<Vec<_>>>()
    })
    .unwrap_or_else(|| {
        panic!(
            "the minority did not report PartitionDetected {{ minority: true }}: {}",
            c.describe_views()
        )
    });
    let detect: Vec<u64> = found.iter().map(|e| e.t - t_cut).collect();
    // The majority declares both minority workers failed and keeps serving.
    let mut majority_detect = Vec::new();
    for m in minority {
        majority_detect.extend(c.detection(&majority, "failed", m, t_cut));
    }
    let t_served = t_cut + majority_detect.iter().max().copied().unwrap_or(0);
    let n = c.calls().len();
    c.wait_calls(n + 150);
    let t_heal = now_ms();
    for m in minority {
        c.net.clear_fault(host_of(m));
    }
    let healed = wait_for(HEAL_WITHIN, || {
        ALL.iter()
            .map(|n| first_full_view(&c.lines(n), &ALL, t_heal))
            .collect::<Option<Vec<u64>>>()
    })
    .unwrap_or_else(|| panic!("no re-merge after heal: {}", c.describe_views()));
    let heal_ms = healed.iter().max().copied().unwrap_or(t_heal) - t_heal;
    let reach = wait_for(Duration::from_secs(20), || {
        minority
            .iter()
            .map(|m| {
                logs::handled(&c.lines(m))
                    .iter()
                    .find(|(_, t)| *t > t_heal)
                    .map(|(_, t)| t - t_heal)
            })
            .collect::<Option<Vec<u64>>>()
    })
    .expect("calls reach every worker again after the heal");
    c.finish_load(load, true);
    let r = c.reconcile(load.retries);
    for call in c.calls() {
        if call.t_ms >= t_served + 500 && call.t_ms < t_heal {
            assert_eq!(call.outcome, "ok", "the majority stopped serving: {call:?}");
            assert_eq!(call.label.as_deref(), Some("worker-1"), "{call:?}");
        }
        if call.idempotent && call.t_ms < t_heal {
            assert_eq!(call.outcome, "ok", "an idempotent call failed: {call:?}");
        }
    }
    let majority_minority_claims: Vec<_> = majority
        .iter()
        .flat_map(|n| {
            logs::events(&c.lines(n))
                .into_iter()
                .filter(|e| e.event == "partition_detected")
                .map(move |e| format!("{n}: {e:?}"))
        })
        .collect();
    assert!(
        majority_minority_claims
            .iter()
            .all(|s| !s.contains("minority: Some(true)")),
        "a majority member thinks it is the minority: {majority_minority_claims:?}"
    );
    // Nobody in the majority declared another majority member failed.
    let false_failures = c.failures(&majority, &majority, t0);
    assert!(false_failures.is_empty(), "{false_failures:?}");
    // The heal needed no restart: every process is still the one started first.
    for n in ALL.iter().filter(|n| **n != CLIENT) {
        assert!(c.net.is_running(n), "{n} is not running");
    }
    println!("majority partition events: {majority_minority_claims:?}");
    println!("failed calls: {:#?}", failed_calls(&c.calls()));
    result(
        "partition",
        json!({ "minority_detect_ms": detect, "majority_failed_ms": majority_detect,
                "heal_ms": heal_ms, "first_call_after_heal_ms": reach,
                "calls": r.issued, "errors": r.errors }),
    );
}

/// One-way partition: worker-2 can send but receives nothing.
#[test]
fn netns_one_way_partition() {
    let _one = lock();
    let Some(mut c) = Cluster::hosts("oneway", 15) else {
        return;
    };
    let load = Load { secs: 90, ..LOAD };
    let (t0, _) = c.form(load);
    c.wait_calls(50);
    let sick = "worker-2";
    let healthy = others(&[sick]);
    let t_deaf = c.net.deaf(host_of(sick));
    let detect = c.detection(&healthy, "failed", sick, t_deaf);
    // Hold it for 15 s after the healthy side took it out, then lift.
    let hold_until = t_deaf + detect.iter().max().copied().unwrap_or(0) + 15_000;
    let _ = wait_for(Duration::from_secs(40), || {
        (now_ms() >= hold_until).then_some(())
    });
    let t_lift = c.net.clear_fault(host_of(sick));
    let back = wait_for(HEAL_WITHIN, || {
        ALL.iter()
            .map(|n| first_full_view(&c.lines(n), &ALL, t_lift))
            .collect::<Option<Vec<u64>>>()
    })
    .unwrap_or_else(|| panic!("no full view after lifting: {}", c.describe_views()));
    c.finish_load(load, true);
    let r = c.reconcile(load.retries);
    for n in ALL.iter().filter(|n| **n != CLIENT) {
        assert!(c.net.is_running(n), "{n} is not running");
    }
    let false_failures = c.failures(&healthy, &healthy, t0);
    // What the one-way host did: its own events, and what the others said about it.
    let sick_events: Vec<String> = logs::events(&c.lines(sick))
        .into_iter()
        .filter(|e| e.t >= t_deaf)
        .map(|e| {
            format!(
                "+{} {} {:?} incarnation {:?} minority {:?}",
                e.t - t_deaf,
                e.event,
                e.member,
                e.incarnation,
                e.minority
            )
        })
        .collect();
    let refutations: Vec<String> = healthy
        .iter()
        .flat_map(|n| {
            logs::events(&c.lines(n))
                .into_iter()
                .filter(|e| e.t >= t_deaf && (e.event == "refuted" || e.event == "suspected"))
                .map(move |e| format!("{n} +{} {} {:?}", e.t - t_deaf, e.event, e.member))
        })
        .collect();
    println!("one-way host's events: {sick_events:#?}");
    println!("healthy hosts' suspicions and refutations: {refutations:#?}");
    assert!(
        false_failures.is_empty(),
        "a healthy host was declared failed by a healthy host: {false_failures:?}"
    );
    result(
        "one_way",
        json!({ "detect_ms": detect, "rejoin_ms": back.iter().max().copied().unwrap_or(t_lift) - t_lift,
                "sick_failed_others": sick_events.iter().filter(|e| e.contains(" failed ")).count(),
                "healthy_suspicions": refutations.len(),
                "calls": r.issued, "errors": r.errors }),
    );
}

/// 20 % random loss (each way) on one host for 30 s: nobody falsely declared failed, calls
/// keep succeeding.
#[test]
fn netns_random_loss_20_percent() {
    let _one = lock();
    let Some(mut c) = Cluster::hosts("loss", 16) else {
        return;
    };
    let load = Load { secs: 90, ..LOAD };
    let (_, _) = c.form(load);
    c.wait_calls(50);
    let lossy = "worker-2";
    let t_loss = c.net.loss(host_of(lossy), 20);
    let until = t_loss + 30_000;
    let _ = wait_for(Duration::from_secs(40), || {
        (now_ms() >= until).then_some(())
    });
    let t_clear = c.net.clear_fault(host_of(lossy));
    // A few more seconds for any suspicion started under loss to resolve.
    let n = c.calls().len();
    c.wait_calls(n + 150);
    c.finish_load(load, true);
    let r = c.reconcile(load.retries);
    let failures = c.failures(&ALL, &ALL, t_loss);
    let suspicions: Vec<String> = ALL
        .iter()
        .flat_map(|n| {
            logs::events(&c.lines(n))
                .into_iter()
                .filter(|e| e.t >= t_loss && e.event == "suspected")
                .map(move |e| format!("{n} +{} {:?}", e.t - t_loss, e.member))
        })
        .collect();
    let calls = c.calls();
    let mut lat: Vec<u64> = calls
        .iter()
        .filter(|x| x.t_ms >= t_loss && x.t_ms < t_clear)
        .map(|x| x.end_ms - x.t_ms)
        .collect();
    lat.sort_unstable();
    let pct = |p: usize| {
        lat.get(lat.len().saturating_sub(1) * p / 100)
            .copied()
            .unwrap_or(0)
    };
    println!("suspicions under loss: {suspicions:#?}");
    println!("failed calls: {:#?}", failed_calls(&calls));
    assert!(
        failures.is_empty(),
        "false failures under 20 % loss: {failures:?}"
    );
    assert_eq!(r.answered, r.issued, "calls kept succeeding: {r:?}");
    result(
        "loss20",
        json!({ "suspicions": suspicions.len(), "calls_under_loss": lat.len(),
                "latency_p50_ms": pct(50), "latency_p99_ms": pct(99),
                "latency_max_ms": lat.last(), "calls": r.issued, "errors": r.errors }),
    );
}

/// kill -9 a worker, restart it with the same name: it rejoins and gets calls again.
#[test]
fn netns_restart_killed_worker() {
    let _one = lock();
    let Some(mut c) = Cluster::hosts("restart", 17) else {
        return;
    };
    let load = Load { secs: 90, ..LOAD };
    let (t0, _) = c.form(load);
    c.wait_calls(50);
    let victim = "worker-2";
    let old_inc = logs::last_view(&c.lines(DIRECTOR))
        .and_then(|(_, v)| v.into_iter().find(|m| m.name == victim))
        .map(|m| m.incarnation)
        .expect("the director knows the victim");
    let t_kill = c.net.kill9(victim);
    let detect = c.detection(&[DIRECTOR, CLIENT], "failed", victim, t_kill);
    let t_restart = now_ms();
    c.start_worker(victim);
    let back = wait_for(HEAL_WITHIN, || {
        others(&[victim])
            .iter()
            .map(|n| {
                logs::views(&c.lines(n)).into_iter().find(|(t, v)| {
                    *t >= t_restart
                        && v.iter().any(|m| {
                            m.name == victim && m.state == "alive" && m.incarnation > old_inc
                        })
                })
            })
            .collect::<Option<Vec<_>>>()
    })
    .unwrap_or_else(|| {
        panic!(
            "the restarted worker did not rejoin: {}",
            c.describe_views()
        )
    });
    let rejoin = back.iter().map(|(t, _)| t - t_restart).max().unwrap_or(0);
    let first_call = wait_for(Duration::from_secs(20), || {
        logs::handled(&c.net.lines_of_start(victim, 1))
            .first()
            .map(|(_, t)| t - t_restart)
    })
    .expect("the restarted worker gets calls");
    c.finish_load(load, true);
    let r = c.reconcile(load.retries);
    let false_failures = c.failures(&ALL, &others(&[victim]), t0);
    assert!(false_failures.is_empty(), "{false_failures:?}");
    result(
        "restart",
        json!({ "detect_ms": detect, "rejoin_ms": rejoin, "first_call_ms": first_call,
                "calls": r.issued, "errors": r.errors }),
    );
}
