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

/// The environment variable glibc reads its malloc tunables from, at process start.
pub const TUNABLES: &str = "GLIBC_TUNABLES";

/// The tunables the simulator asks glibc for: back the heap with transparent huge pages
/// (`madvise(MADV_HUGEPAGE)` on every heap extension and large allocation).
///
/// Why: a large run holds one member table per simulated node in one process (15 GB at
/// 10,000 members), touches it in an order no cache predicts (each step is another node),
/// and with 4 KiB pages pays a page fault for every 4 KiB first touched and a TLB miss on
/// nearly every access; on this project's virtual machines a fault cost ~7 us. With 2 MiB
/// pages `crash --nodes 5000` took 9-17 % less CPU, the events unchanged (BENCHMARKS.md).
/// Systems whose kernel has transparent huge pages off, or whose glibc predates the tunable
/// (2.35), ignore it and run as before.
pub const HUGE_PAGE_TUNABLES: &str = "glibc.malloc.hugetlb=1";

/// What to set [`TUNABLES`] to before re-executing, given its current value: the huge-page
/// tunable when it is unset, nothing when the caller set it (even to empty: their choice, and
/// the way to turn this off), so the re-executed process never re-executes again.
pub fn tunables_to_request(current: Option<&std::ffi::OsStr>) -> Option<&'static str> {
    match current {
        None => Some(HUGE_PAGE_TUNABLES),
        Some(_) => None,
    }
}

/// Re-executes this program with [`HUGE_PAGE_TUNABLES`] when [`TUNABLES`] is unset, on Linux
/// with glibc; returns (and the run goes on as it is) when it is set, elsewhere, or if the
/// re-execution fails. Call first thing in `main`, before any output.
pub fn reexec_with_huge_pages() {
    #[cfg(all(target_os = "linux", target_env = "gnu"))]
    {
        use std::os::unix::process::CommandExt;
        let Some(value) = tunables_to_request(std::env::var_os(TUNABLES).as_deref()) else {
            return;
        };
        let Ok(exe) = std::env::current_exe() else {
            return;
        };
        // `exec` returns only on failure; then this process runs on, without.
        let _ = std::process::Command::new(exe)
            .args(std::env::args_os().skip(1))
            .env(TUNABLES, value)
            .exec();
    }
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

    #[test]
    fn huge_pages_are_requested_only_when_the_caller_set_no_tunables() {
        use std::ffi::OsStr;
        assert_eq!(tunables_to_request(None), Some(HUGE_PAGE_TUNABLES));
        assert_eq!(tunables_to_request(Some(OsStr::new(""))), None);
        assert_eq!(
            tunables_to_request(Some(OsStr::new(HUGE_PAGE_TUNABLES))),
            None
        );
        assert_eq!(
            tunables_to_request(Some(OsStr::new("glibc.malloc.trim_threshold=1"))),
            None
        );
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
