//! The 5-host cluster of the scenarios: director on host 1, `worker-1`..`worker-3` on hosts
//! 2-4, the client on host 5; starting them, waiting on their logs, and small helpers.

use crate::harness::{wait_for, Net};
use crate::logs::{self, first_event, first_full_view, reconcile, Reconciled};
use serde_json::json;
use shoal_examples::jsonlog::{now_ms, CallRecord, LogLine};
use std::io::Write;
use std::sync::Mutex;
use std::time::Duration;

pub const DIRECTOR: &str = "director";
pub const WORKERS: [&str; 3] = ["worker-1", "worker-2", "worker-3"];
pub const CLIENT: &str = "client";
pub const ALL: [&str; 5] = [DIRECTOR, "worker-1", "worker-2", "worker-3", CLIENT];
pub const PRESET: &str = "lan";
pub const GOSSIP_PORT: u16 = 7001;

/// Generous bounds (the LAN preset detects in a few seconds).
pub const FORM_WITHIN: Duration = Duration::from_secs(30);
pub const DETECT_WITHIN: Duration = Duration::from_secs(20);
pub const HEAL_WITHIN: Duration = Duration::from_secs(45);

/// One scenario at a time: CI has two cores, and timings should not depend on a neighbour.
pub static ONE_AT_A_TIME: Mutex<()> = Mutex::new(());

/// Host of each process: director 1, worker-k k+1, client 5.
pub fn host_of(name: &str) -> usize {
    match name {
        DIRECTOR => 1,
        CLIENT => 5,
        w => 1 + WORKERS.iter().position(|x| *x == w).expect("a worker") + 1,
    }
}

/// How the client loads the cluster.
#[derive(Clone, Copy)]
pub struct Load {
    /// Most seconds of load (SIGINT ends it earlier).
    pub secs: u64,
    /// Calls per second.
    pub rate: u32,
    /// Calls in flight at most.
    pub concurrency: u32,
    /// Each call's deadline.
    pub timeout_ms: u64,
    /// Each call's retry budget.
    pub retries: u32,
}

pub const LOAD: Load = Load {
    secs: 30,
    rate: 50,
    concurrency: 8,
    timeout_ms: 10_000,
    retries: 2,
};

/// A 5-host cluster: director, 3 workers, client.
pub struct Cluster {
    /// The hosts and processes.
    pub net: Net,
}

impl Cluster {
    /// Creates the hosts, or says (loudly) why the scenario is skipped.
    pub fn hosts(tag: &str, subnet: u8) -> Option<Cluster> {
        match Net::new(tag, subnet, 5) {
            Ok(net) => Some(Cluster { net }),
            Err(why) => {
                let hint = "needs root with `ip netns` and nftables";
                if std::env::var("SHOAL_NETNS_REQUIRED").is_ok_and(|v| v == "1") {
                    panic!(
                        "netns scenario {tag} cannot run: {} ({hint}); \
                         SHOAL_NETNS_REQUIRED=1 makes that a failure",
                        why.0
                    );
                }
                // Written to stderr directly: the test harness captures `eprintln!` of a
                // passing test, and a skip must be seen.
                let _ = writeln!(
                    std::io::stderr(),
                    "\n\n!!!!!!!! SKIPPING netns scenario {tag}: {} !!!!!!!!\n\
                     ({hint}; CI sets SHOAL_NETNS_REQUIRED=1 to fail instead)\n",
                    why.0
                );
                None
            }
        }
    }

    pub fn node_args(&self) -> Vec<String> {
        let secrets = self.net.dir().join("secrets");
        vec![
            "--preset".into(),
            PRESET.into(),
            "--secrets-dir".into(),
            secrets.to_string_lossy().into_owned(),
            "--json-log".into(),
            "--view-ms".into(),
            "250".into(),
        ]
    }

    pub fn seed(&self) -> String {
        format!("{}:{GOSSIP_PORT}", self.net.ip(1))
    }

    pub fn start_director(&mut self) {
        let mut args = vec!["--rpc".into(), format!("{}:7000", self.net.ip(1))];
        args.extend(self.node_args());
        self.net
            .spawn(1, DIRECTOR, env!("CARGO_BIN_EXE_director"), &args);
        // Workers read the secrets the director writes: wait for its first view line.
        let up = wait_for(FORM_WITHIN, || {
            logs::last_view(&self.net.lines(DIRECTOR)).map(|_| ())
        });
        assert!(
            up.is_some(),
            "the director never came up: {}",
            self.net.stderr(DIRECTOR)
        );
    }

    pub fn start_worker(&mut self, name: &str) {
        let h = host_of(name);
        let mut args = vec![
            "--name".into(),
            name.into(),
            "--rpc".into(),
            format!("{}:7010", self.net.ip(h)),
            "--director".into(),
            self.seed(),
            "--work-ms".into(),
            "5".into(),
        ];
        args.extend(self.node_args());
        self.net.spawn(h, name, env!("CARGO_BIN_EXE_worker"), &args);
    }

    pub fn start_client(&mut self, load: Load) {
        let mut args = vec![
            "--name".into(),
            CLIENT.into(),
            "--director".into(),
            self.seed(),
            "--bind".into(),
            format!("{}:7020", self.net.ip(5)),
            "--min-workers".into(),
            "3".into(),
            "--calls".into(),
            "100000".into(),
            "--duration-secs".into(),
            load.secs.to_string(),
            "--rate".into(),
            load.rate.to_string(),
            "--concurrency".into(),
            load.concurrency.to_string(),
            "--idempotent-every".into(),
            "2".into(),
            "--timeout-ms".into(),
            load.timeout_ms.to_string(),
            "--retries".into(),
            load.retries.to_string(),
            // Round-robin spreads calls over every worker, so a fault meets calls at once
            // (least-connections sends idle traffic to the fastest worker only).
            "--strategy".into(),
            "round-robin".into(),
        ];
        args.extend(self.node_args());
        self.net
            .spawn(5, CLIENT, env!("CARGO_BIN_EXE_client"), &args);
    }

    pub fn lines(&self, name: &str) -> Vec<LogLine> {
        self.net.lines(name)
    }

    /// Starts director, workers and the client (with `load`) and waits until every process
    /// lists all five alive; returns (start time, time formed).
    pub fn form(&mut self, load: Load) -> (u64, u64) {
        let t0 = now_ms();
        self.start_director();
        for w in WORKERS {
            self.start_worker(w);
        }
        self.start_client(load);
        let formed = wait_for(FORM_WITHIN, || {
            ALL.iter()
                .map(|n| first_full_view(&self.lines(n), &ALL, 0))
                .collect::<Option<Vec<u64>>>()
                .map(|ts| ts.into_iter().max().unwrap_or(t0))
        });
        let formed = formed.unwrap_or_else(|| {
            panic!(
                "the cluster did not form within {FORM_WITHIN:?}; last views: {}",
                self.describe_views()
            )
        });
        (t0, formed)
    }

    pub fn describe_views(&self) -> String {
        ALL.iter()
            .map(|n| {
                let v = logs::last_view(&self.lines(n)).map(|(_, v)| {
                    v.iter()
                        .map(|m| format!("{}={}#{}", m.name, m.state, m.incarnation))
                        .collect::<Vec<_>>()
                        .join(" ")
                });
                format!("\n  {n}: {v:?}\n  stderr: {}", self.net.stderr(n).trim())
            })
            .collect()
    }

    /// Waits until the client has `n` call records.
    pub fn wait_calls(&self, n: usize) {
        let ok = wait_for(Duration::from_secs(30), || {
            (logs::calls(&self.lines(CLIENT)).len() >= n).then_some(())
        });
        assert!(
            ok.is_some(),
            "the client made fewer than {n} calls: {}",
            self.net.stderr(CLIENT)
        );
    }

    /// Waits until each of `observers` logged `event` about `member` at or after `after`;
    /// returns each observer's delay in ms.
    pub fn detection(&self, observers: &[&str], event: &str, member: &str, after: u64) -> Vec<u64> {
        let found = wait_for(DETECT_WITHIN, || {
            observers
                .iter()
                .map(|o| first_event(&self.lines(o), event, Some(member), after))
                .collect::<Option<Vec<_>>>()
        });
        let found = found.unwrap_or_else(|| {
            panic!(
                "not every one of {observers:?} logged {event} {member} within {DETECT_WITHIN:?}: {}",
                self.describe_views()
            )
        });
        found.iter().map(|e| e.t - after).collect()
    }

    /// Stops the client's load (SIGINT: calls in flight finish; or, with `interrupt` false,
    /// lets it run its duration) and waits for its totals.
    pub fn finish_load(&mut self, load: Load, interrupt: bool) {
        let mut within = Duration::from_millis(load.timeout_ms) + Duration::from_secs(15);
        if interrupt {
            self.net.interrupt(CLIENT);
        } else {
            within += Duration::from_secs(load.secs);
        }
        let done = wait_for(within, || logs::load_done(&self.lines(CLIENT)));
        assert!(
            done.is_some(),
            "the client never finished its load: {}",
            self.net.stderr(CLIENT)
        );
        assert!(self.net.wait_exit(CLIENT, Duration::from_secs(15)));
    }

    pub fn reconcile(&self, retries: u32) -> Reconciled {
        let workers: Vec<(&str, Vec<LogLine>)> =
            WORKERS.iter().map(|w| (*w, self.lines(w))).collect();
        let r = reconcile(&self.lines(CLIENT), &workers, retries);
        println!("reconciled: {r:?}");
        r
    }

    /// `failed` events any of `observers` logged about any of `members` after `after`.
    pub fn failures(&self, observers: &[&str], members: &[&str], after: u64) -> Vec<String> {
        observers
            .iter()
            .flat_map(|o| {
                logs::events(&self.lines(o))
                    .into_iter()
                    .filter(|e| {
                        e.t >= after
                            && e.event == "failed"
                            && e.member.as_deref().is_some_and(|m| members.contains(&m))
                    })
                    .map(move |e| format!("{o} declared {:?} failed at +{}", e.member, e.t - after))
            })
            .collect()
    }

    pub fn calls(&self) -> Vec<CallRecord> {
        logs::calls(&self.lines(CLIENT))
    }
}

/// The longest pause between two consecutive call issues from `from` to `to`: a closed-loop
/// client whose every slot waits on a lost worker stops issuing until the calls end.
pub fn issue_stall(calls: &[CallRecord], from: u64, to: u64) -> u64 {
    let mut starts: Vec<u64> = calls.iter().map(|c| c.t_ms).collect();
    starts.sort_unstable();
    starts
        .windows(2)
        .filter(|w| w[1] >= from && w[0] <= to)
        .map(|w| w[1] - w[0])
        .max()
        .unwrap_or(0)
}

pub fn result(scenario: &str, value: serde_json::Value) {
    println!(
        "NETNS RESULT {}",
        json!({ "scenario": scenario, "result": value })
    );
}

pub fn median(v: &[u64]) -> u64 {
    let mut v = v.to_vec();
    v.sort_unstable();
    v.get(v.len() / 2).copied().unwrap_or(0)
}

pub fn lock() -> std::sync::MutexGuard<'static, ()> {
    ONE_AT_A_TIME.lock().unwrap_or_else(|e| e.into_inner())
}
