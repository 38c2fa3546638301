//! Runs the `demo` binary end to end on loopback (bounded by a timeout) and checks that it
//! passes: exit code 0 and the summary line.

use std::io::Read;
use std::net::UdpSocket;
use std::process::{Command, Stdio};
use std::time::{Duration, Instant};

/// The demo uses base..base+16 (UDP: QUIC and gossip). Pick a range that is free now.
fn free_base_port() -> u16 {
    let start = 20_000 + (std::process::id() % 2_000) as u16 * 16;
    (0..200u16)
        .map(|i| 20_000 + (start - 20_000 + i * 16) % 32_000)
        .find(|&base| {
            let socks: Vec<_> = (base..base + 16)
                .map_while(|p| UdpSocket::bind(("127.0.0.1", p)).ok())
                .collect();
            socks.len() == 16
        })
        .expect("a free range of 16 UDP ports on loopback")
}

#[test]
fn demo_runs_every_step_and_exits_zero() {
    let base = free_base_port();
    let mut child = Command::new(env!("CARGO_BIN_EXE_demo"))
        .args(["--base-port", &base.to_string(), "--observe-ms", "300"])
        .stdin(Stdio::null())
        .stdout(Stdio::piped())
        .stderr(Stdio::piped())
        .spawn()
        .expect("start the demo");
    let mut out = child.stdout.take().unwrap();
    let reader = std::thread::spawn(move || {
        let mut s = String::new();
        let _ = out.read_to_string(&mut s);
        s
    });
    let mut err = child.stderr.take().unwrap();
    let err_reader = std::thread::spawn(move || {
        let mut s = String::new();
        let _ = err.read_to_string(&mut s);
        s
    });
    let deadline = Instant::now() + Duration::from_secs(120);
    let status = loop {
        if let Some(s) = child.try_wait().expect("wait for the demo") {
            break Some(s);
        }
        if Instant::now() > deadline {
            let _ = child.kill(); // its children exit when their stdin pipe closes
            let _ = child.wait();
            break None;
        }
        std::thread::sleep(Duration::from_millis(50)); // polling the exit, bounded
    };
    let stdout = reader.join().unwrap();
    let stderr = err_reader.join().unwrap();
    println!("{stdout}\n{stderr}");
    let status = status.expect("the demo did not finish within 120 s");
    assert!(status.success(), "demo failed: {status}\n{stderr}");
    let summary = stdout
        .lines()
        .find(|l| l.starts_with("DEMO SUMMARY: PASS"))
        .expect("summary line");
    assert!(summary.contains("unexpected 0"), "{summary}");
}
