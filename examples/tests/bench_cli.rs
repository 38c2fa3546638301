//! The `bench` binary's contract: the last stdout line is one JSON object with `rps`,
//! `p50_us`, `p99_us` and `errors`, in both modes (bare quinn, and Shoal's `call_worker`
//! through a cluster of worker processes). The load is tiny (a few calls in flight, 1 second).

use std::process::{Command, Stdio};
use std::time::Duration;

const BENCH: &str = env!("CARGO_BIN_EXE_bench");

fn run_json(args: &[&str]) -> serde_json::Value {
    let out = Command::new(BENCH)
        .args(args)
        .args(["--secs", "1", "--json", "--quiet"])
        .stdin(Stdio::null())
        .output()
        .expect("bench runs");
    let stderr = String::from_utf8_lossy(&out.stderr);
    assert!(out.status.success(), "bench failed: {stderr}");
    let stdout = String::from_utf8(out.stdout).unwrap();
    let last = stdout.lines().last().expect("some output").to_owned();
    let v: serde_json::Value = serde_json::from_str(&last).expect("last line is JSON");
    assert!(v["rps"].as_f64().unwrap() > 0.0, "{last}");
    assert!(v["p50_us"].as_u64().unwrap() <= v["p99_us"].as_u64().unwrap());
    assert_eq!(v["errors"].as_u64(), Some(0), "{last}");
    assert_eq!(v["runtime"], "current-thread");
    let elapsed = v["elapsed_s"].as_f64().unwrap();
    assert!(elapsed < Duration::from_secs(10).as_secs_f64());
    v
}

#[test]
fn baseline_prints_a_json_report_last() {
    let v = run_json(&["--baseline-quinn", "--inflight", "1", "--connections", "1"]);
    assert_eq!(v["mode"], "baseline-quinn");
}

#[test]
fn shoal_mode_calls_workers_through_the_cluster_and_reports() {
    let v = run_json(&["--inflight", "4", "--connections", "2"]);
    assert_eq!(v["mode"], "shoal");
}

#[test]
fn out_of_range_options_are_refused() {
    let out = Command::new(BENCH)
        .args(["--baseline-quinn", "--inflight", "0", "--secs", "1"])
        .stdin(Stdio::null())
        .output()
        .expect("bench runs");
    assert_eq!(out.status.code(), Some(2));
    assert!(String::from_utf8_lossy(&out.stderr).contains("--inflight"));
}
