//! The `bench` binary's contract: the last stdout line is one JSON object with `rps`,
//! `p50_us`, `p99_us` and `errors`; the Shoal mode refuses to run (exit 2) until the RPC
//! API exists, without printing numbers. The load is tiny (1 call in flight, 1 second).

use std::process::{Command, Stdio};
use std::time::Duration;

const BENCH: &str = env!("CARGO_BIN_EXE_bench");

#[test]
fn baseline_prints_a_json_report_last() {
    let out = Command::new(BENCH)
        .args([
            "--baseline-quinn",
            "--inflight",
            "1",
            "--connections",
            "1",
            "--secs",
            "1",
            "--json",
            "--quiet",
        ])
        .stdin(Stdio::null())
        .output()
        .expect("bench runs");
    let stderr = String::from_utf8_lossy(&out.stderr);
    assert!(out.status.success(), "bench failed: {stderr}");
    let stdout = String::from_utf8(out.stdout).unwrap();
    let last = stdout.lines().last().expect("some output");
    let v: serde_json::Value = serde_json::from_str(last).expect("last line is JSON");
    assert!(v["rps"].as_f64().unwrap() > 0.0, "{last}");
    assert!(v["p50_us"].as_u64().unwrap() <= v["p99_us"].as_u64().unwrap());
    assert_eq!(v["errors"].as_u64(), Some(0), "{last}");
    assert_eq!(v["mode"], "baseline-quinn");
    assert_eq!(v["runtime"], "current-thread");
    let elapsed = v["elapsed_s"].as_f64().unwrap();
    assert!(elapsed < Duration::from_secs(10).as_secs_f64());
}

#[test]
fn shoal_mode_refuses_without_numbers() {
    let out = Command::new(BENCH)
        .args(["--inflight", "1", "--secs", "1", "--json"])
        .stdin(Stdio::null())
        .output()
        .expect("bench runs");
    assert_eq!(out.status.code(), Some(2));
    assert!(out.stdout.is_empty(), "no report may be printed");
    let stderr = String::from_utf8_lossy(&out.stderr);
    assert!(stderr.contains("not merged yet"), "{stderr}");
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
