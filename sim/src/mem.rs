//! Memory and CPU figures of this process, for the scenario reports.
//!
//! The simulator runs every node in one process, so its peak resident set is the memory the
//! whole simulated cluster needed; the scaling table in BENCHMARKS.md divides it by N² (every
//! node holds an entry for every member). Read from `/proc/self/status` (Linux); elsewhere the
//! figure is absent rather than guessed.

/// Peak resident set size of this process so far (`VmHWM`), in bytes, if the platform
/// reports it.
pub fn peak_rss_bytes() -> Option<u64> {
    status_kib("VmHWM:").map(|k| k * 1024)
}

/// Current resident set size (`VmRSS`), in bytes, if the platform reports it.
pub fn rss_bytes() -> Option<u64> {
    status_kib("VmRSS:").map(|k| k * 1024)
}

/// CPU time this thread has been running so far (`/proc/thread-self/schedstat`, nanosecond
/// resolution), if the platform reports it. Unlike wall time it does not grow when other
/// processes share the cores, so it is the figure to compare between runs on a busy machine.
///
/// The kernel adds a running thread's time to that figure only when it updates its
/// accounting (a scheduler tick, a context switch): a thread that has run a few milliseconds
/// without either reads 0 (seen in CI, on a tickless virtual machine). Yielding first makes the
/// scheduler update it (`sched_yield` brings the current thread's runtime up to date), so the
/// figure is current to within the yield itself.
pub fn cpu_time() -> Option<std::time::Duration> {
    std::thread::yield_now();
    let s = std::fs::read_to_string("/proc/thread-self/schedstat").ok()?;
    let ns: u64 = s.split_whitespace().next()?.parse().ok()?;
    Some(std::time::Duration::from_nanos(ns))
}

/// Anonymous memory of this process backed by transparent huge pages (`AnonHugePages` in
/// `/proc/self/smaps_rollup`), in bytes, if the platform reports it.
pub fn huge_page_bytes() -> Option<u64> {
    let s = std::fs::read_to_string("/proc/self/smaps_rollup").ok()?;
    parse_kib(&s, "AnonHugePages:").map(|k| k * 1024)
}

fn status_kib(key: &str) -> Option<u64> {
    let s = std::fs::read_to_string("/proc/self/status").ok()?;
    parse_kib(&s, key)
}

/// The value of `key` (e.g. `VmHWM:`) in a `/proc/<pid>/status` text, in KiB.
fn parse_kib(status: &str, key: &str) -> Option<u64> {
    let line = status.lines().find(|l| l.starts_with(key))?;
    let mut words = line[key.len()..].split_whitespace();
    let n = words.next()?.parse().ok()?;
    (words.next() == Some("kB")).then_some(n)
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn parses_status_lines() {
        let s = "Name:\tx\nVmPeak:\t  2000 kB\nVmHWM:\t   1234 kB\nVmRSS:\t  1000 kB\n";
        assert_eq!(parse_kib(s, "VmHWM:"), Some(1234));
        assert_eq!(parse_kib(s, "VmRSS:"), Some(1000));
        assert_eq!(parse_kib(s, "VmSwap:"), None);
        assert_eq!(parse_kib("VmHWM:\t12 MB\n", "VmHWM:"), None);
        let rollup = "Rss:     4000 kB\nAnonymous:   3000 kB\nAnonHugePages:  2048 kB\n";
        assert_eq!(parse_kib(rollup, "AnonHugePages:"), Some(2048));
    }

    #[cfg(target_os = "linux")]
    #[test]
    fn cpu_time_grows_with_work() {
        let a = cpu_time().expect("linux reports schedstat");
        let mut x = 0u64;
        for i in 0..5_000_000u64 {
            x = std::hint::black_box(x.wrapping_mul(31).wrapping_add(i));
        }
        let b = cpu_time().expect("linux reports schedstat");
        assert!(b > a, "{a:?} then {b:?} after {x}");
    }

    /// Both figures from one read of `/proc/self/status`: the kernel computes them together
    /// (the high-water mark is at least the resident set it reports beside it). Two separate
    /// reads race with the other test threads allocating in between, so the resident set of
    /// the second read can exceed the peak of the first (seen once in CI).
    #[cfg(target_os = "linux")]
    #[test]
    fn peak_is_at_least_current() {
        let status = std::fs::read_to_string("/proc/self/status").expect("linux has /proc");
        let peak = parse_kib(&status, "VmHWM:").expect("linux reports VmHWM");
        let now = parse_kib(&status, "VmRSS:").expect("linux reports VmRSS");
        assert!(peak >= now && now > 0, "VmHWM {peak} kB, VmRSS {now} kB");
        assert!(peak_rss_bytes().is_some_and(|b| b >= peak * 1024));
    }
}
