//! Hosts in network namespaces, the real binaries inside them, and faults as nftables rules.
//!
//! Layout of one [`Net`] named `shoalnt-<tag>` on subnet `10.213.<subnet>.0/24`:
//! * namespace `shoalnt-<tag>-br` holds bridge `br0` and one veth end `h<i>` per host;
//! * namespace `shoalnt-<tag>-h<i>` is host `i` (1-based): `lo` up, `eth0` the other veth
//!   end, address `10.213.<subnet>.<i>/24`.
//!
//! Nothing is created in, or routed to, the namespace the test runs in: every link is made
//! inside the test's own namespaces (`ip -n`). Faults are one nftables table,
//! `inet shoalfault`, inside a host's namespace, filtering on `eth0` only.
//!
//! [`Net`]'s `Drop` kills every process it started (SIGKILL, then waits for it) and deletes
//! every namespace with its prefix, panicking test or not; [`Net::new`] first removes
//! leftovers with the same prefix from an earlier run that could not clean up.

use shoal_examples::jsonlog::{now_ms, LogLine};
use std::fs;
use std::path::{Path, PathBuf};
use std::process::{Child, Command, Stdio};
use std::time::{Duration, Instant};

/// Prefix of everything this harness creates.
pub const PREFIX: &str = "shoalnt";

/// Why the scenarios cannot run here.
#[derive(Debug)]
pub struct Unavailable(pub String);

/// Runs `ip`/`nft` style commands; the error carries the command and its stderr.
fn run(cmd: &str, args: &[&str]) -> Result<String, String> {
    let out = Command::new(cmd)
        .args(args)
        .stdin(Stdio::null())
        .output()
        .map_err(|e| format!("{cmd} {}: {e}", args.join(" ")))?;
    if out.status.success() {
        Ok(String::from_utf8_lossy(&out.stdout).into_owned())
    } else {
        Err(format!(
            "{cmd} {}: {}: {}",
            args.join(" "),
            out.status,
            String::from_utf8_lossy(&out.stderr).trim()
        ))
    }
}

/// Namespaces whose names start with `prefix`.
fn namespaces_with(prefix: &str) -> Vec<String> {
    run("ip", &["netns", "list"])
        .unwrap_or_default()
        .lines()
        .filter_map(|l| l.split_whitespace().next())
        .filter(|n| n.starts_with(prefix))
        .map(str::to_owned)
        .collect()
}

/// Kills every process in namespace `ns` (they can only be ours: only this harness creates
/// namespaces with its prefix) and deletes it.
fn remove_namespace(ns: &str) {
    if let Ok(pids) = run("ip", &["netns", "pids", ns]) {
        for pid in pids.split_whitespace() {
            let _ = run("kill", &["-KILL", pid]);
        }
    }
    let _ = run("ip", &["netns", "del", ns]);
}

/// One process the harness started.
struct Proc {
    name: String,
    child: Child,
}

/// A set of hosts on one bridge, the processes in them and their logs.
pub struct Net {
    prefix: String,
    subnet: u8,
    dir: PathBuf,
    procs: Vec<Proc>,
    /// How many processes of each name were started (restarts get a new log file).
    generation: std::collections::BTreeMap<String, u32>,
}

impl Net {
    /// Creates `hosts` hosts on a bridge. `Err` when namespaces (or nftables) are not
    /// available here at all.
    pub fn new(tag: &str, subnet: u8, hosts: usize) -> Result<Net, Unavailable> {
        let prefix = format!("{PREFIX}-{tag}");
        for ns in namespaces_with(&format!("{prefix}-")) {
            eprintln!("netns harness: removing leftover namespace {ns}");
            remove_namespace(&ns);
        }
        run("nft", &["--version"])
            .map_err(|e| Unavailable(format!("nftables is not installed ({e})")))?;
        let dir = std::env::temp_dir().join(format!("{prefix}-{}", std::process::id()));
        let _ = fs::remove_dir_all(&dir);
        fs::create_dir_all(&dir).map_err(|e| Unavailable(format!("{}: {e}", dir.display())))?;
        let net = Net {
            prefix,
            subnet,
            dir,
            procs: Vec::new(),
            generation: Default::default(),
        };
        // From here on, `Drop` cleans up whatever was made.
        let br = net.bridge_ns();
        run("ip", &["netns", "add", &br])
            .map_err(|e| Unavailable(format!("cannot create a network namespace: {e}")))?;
        let setup = || -> Result<(), String> {
            run("ip", &["-n", &br, "link", "add", "br0", "type", "bridge"])?;
            run("ip", &["-n", &br, "link", "set", "br0", "up"])?;
            for i in 1..=hosts {
                let h = net.ns(i);
                let port = format!("h{i}");
                let addr = format!("{}/24", net.ip(i));
                run("ip", &["netns", "add", &h])?;
                run(
                    "ip",
                    &[
                        "-n", &br, "link", "add", &port, "type", "veth", "peer", "name", "eth0",
                        "netns", &h,
                    ],
                )?;
                run("ip", &["-n", &br, "link", "set", &port, "master", "br0"])?;
                run("ip", &["-n", &br, "link", "set", &port, "up"])?;
                run("ip", &["-n", &h, "addr", "add", &addr, "dev", "eth0"])?;
                run("ip", &["-n", &h, "link", "set", "eth0", "up"])?;
                run("ip", &["-n", &h, "link", "set", "lo", "up"])?;
            }
            Ok(())
        };
        setup().map_err(|e| Unavailable(format!("cannot build the hosts: {e}")))?;
        Ok(net)
    }

    fn bridge_ns(&self) -> String {
        format!("{}-br", self.prefix)
    }

    /// Namespace of host `i`.
    pub fn ns(&self, i: usize) -> String {
        format!("{}-h{i}", self.prefix)
    }

    /// Address of host `i`.
    pub fn ip(&self, i: usize) -> String {
        format!("10.213.{}.{i}", self.subnet)
    }

    /// The directory holding logs (and the development secrets).
    pub fn dir(&self) -> &Path {
        &self.dir
    }

    /// Starts `bin` with `args` inside host `host` as process `name`; its stdout and
    /// stderr go to `<dir>/<name>.<n>.log` and `.err` (n counts restarts from 0).
    pub fn spawn(&mut self, host: usize, name: &str, bin: &str, args: &[String]) {
        let gen = self.generation.entry(name.to_owned()).or_insert(0);
        let file = |ext: &str| {
            fs::File::create(self.dir.join(format!("{name}.{gen}.{ext}")))
                .expect("create a log file in the test's own directory")
        };
        let (out, err) = (file("log"), file("err"));
        *gen += 1;
        // `ip netns exec` execs the program itself, so the child's pid is the program's.
        let child = Command::new("ip")
            .args(["netns", "exec", &self.ns(host), bin])
            .args(args)
            .stdin(Stdio::null())
            .stdout(out)
            .stderr(err)
            .spawn()
            .expect("start a process with ip netns exec");
        self.procs.push(Proc {
            name: name.to_owned(),
            child,
        });
    }

    /// Every log file of process `name` (one per start), in start order.
    fn log_files(&self, name: &str, ext: &str) -> Vec<PathBuf> {
        let n = self.generation.get(name).copied().unwrap_or(0);
        (0..n)
            .map(|g| self.dir.join(format!("{name}.{g}.{ext}")))
            .collect()
    }

    /// Every parsed log line of `name`, all starts in order.
    pub fn lines(&self, name: &str) -> Vec<LogLine> {
        self.log_files(name, "log")
            .iter()
            .flat_map(|p| {
                fs::read_to_string(p)
                    .unwrap_or_default()
                    .lines()
                    .filter_map(LogLine::parse)
                    .collect::<Vec<_>>()
            })
            .collect()
    }

    /// Parsed log lines of one start (`generation` from 0) of `name`.
    pub fn lines_of_start(&self, name: &str, generation: u32) -> Vec<LogLine> {
        let p = self.dir.join(format!("{name}.{generation}.log"));
        fs::read_to_string(p)
            .unwrap_or_default()
            .lines()
            .filter_map(LogLine::parse)
            .collect()
    }

    /// The stderr of every start of `name`, for failure messages.
    pub fn stderr(&self, name: &str) -> String {
        self.log_files(name, "err")
            .iter()
            .map(|p| fs::read_to_string(p).unwrap_or_default())
            .collect::<Vec<_>>()
            .join("\n--- restart ---\n")
    }

    /// The running process `name` (its latest start), if it has not exited.
    fn running(&mut self, name: &str) -> Option<&mut Proc> {
        self.procs
            .iter_mut()
            .rev()
            .find(|p| p.name == name)
            .and_then(|p| matches!(p.child.try_wait(), Ok(None)).then_some(p))
    }

    /// Whether process `name` (its latest start) is still running.
    pub fn is_running(&mut self, name: &str) -> bool {
        self.running(name).is_some()
    }

    /// `kill -9`: the process dies at once, sockets closed by the kernel, no goodbye.
    /// Returns when it is reaped, with the kill time (ms since the epoch).
    pub fn kill9(&mut self, name: &str) -> u64 {
        let p = self
            .running(name)
            .unwrap_or_else(|| panic!("{name} is not running"));
        let t = now_ms();
        let _ = p.child.kill();
        let _ = p.child.wait();
        t
    }

    /// Sends SIGINT (Ctrl-C): the binaries then finish gracefully.
    pub fn interrupt(&mut self, name: &str) {
        if let Some(p) = self.running(name) {
            let _ = run("kill", &["-INT", &p.child.id().to_string()]);
        }
    }

    /// Waits (bounded) for process `name` to exit; whether it did.
    pub fn wait_exit(&mut self, name: &str, within: Duration) -> bool {
        let deadline = Instant::now() + within;
        loop {
            if self.running(name).is_none() {
                return true;
            }
            if Instant::now() > deadline {
                return false;
            }
            std::thread::sleep(Duration::from_millis(50)); // polling a process exit, bounded
        }
    }

    /// Loads an nftables table `inet shoalfault` with `chains` (replacing any earlier
    /// fault) in host `host`'s namespace; returns the time it took effect.
    fn set_fault(&self, host: usize, chains: &str) -> u64 {
        self.clear_fault(host);
        let rules = format!("table inet shoalfault {{\n{chains}\n}}\n");
        let file = self.dir.join(format!("fault-h{host}.nft"));
        fs::write(&file, &rules).expect("write the fault's ruleset");
        let file = file.to_string_lossy().into_owned();
        run("ip", &["netns", "exec", &self.ns(host), "nft", "-f", &file])
            .unwrap_or_else(|e| panic!("loading fault rules failed: {e}\n{rules}"));
        now_ms()
    }

    /// Removes host `host`'s fault rules; returns the time.
    pub fn clear_fault(&self, host: usize) -> u64 {
        let _ = run(
            "ip",
            &[
                "netns",
                "exec",
                &self.ns(host),
                "nft",
                "delete",
                "table",
                "inet",
                "shoalfault",
            ],
        );
        now_ms()
    }

    /// Black hole: host `host` drops every packet in and out on `eth0`, with no reply (no
    /// ICMP, no reset): peers see silence, as from a pulled cable.
    pub fn black_hole(&self, host: usize) -> u64 {
        self.set_fault(
            host,
            "chain input { type filter hook input priority -10; policy accept;\n\
               iifname \"eth0\" drop\n}\n\
             chain output { type filter hook output priority -10; policy accept;\n\
               oifname \"eth0\" drop\n}",
        )
    }

    /// Partition: host `host` drops everything from and to the hosts `others` (both ways,
    /// silently). Apply on every host of one side.
    pub fn cut_from(&self, host: usize, others: &[usize]) -> u64 {
        let set = others
            .iter()
            .map(|&o| self.ip(o))
            .collect::<Vec<_>>()
            .join(", ");
        self.set_fault(
            host,
            &format!(
                "chain input {{ type filter hook input priority -10; policy accept;\n\
                   ip saddr {{ {set} }} drop\n}}\n\
                 chain output {{ type filter hook output priority -10; policy accept;\n\
                   ip daddr {{ {set} }} drop\n}}"
            ),
        )
    }

    /// One-way: host `host` receives nothing on `eth0` but can still send.
    pub fn deaf(&self, host: usize) -> u64 {
        self.set_fault(
            host,
            "chain input { type filter hook input priority -10; policy accept;\n\
               iifname \"eth0\" drop\n}",
        )
    }

    /// Random loss: host `host` drops `pct` % of the packets it receives and, independently,
    /// `pct` % of those it sends on `eth0` (`numgen random mod 100 < pct`).
    pub fn loss(&self, host: usize, pct: u32) -> u64 {
        self.set_fault(
            host,
            &format!(
                "chain input {{ type filter hook input priority -10; policy accept;\n\
                   iifname \"eth0\" numgen random mod 100 < {pct} drop\n}}\n\
                 chain output {{ type filter hook output priority -10; policy accept;\n\
                   oifname \"eth0\" numgen random mod 100 < {pct} drop\n}}"
            ),
        )
    }
}

impl Drop for Net {
    fn drop(&mut self) {
        for p in &mut self.procs {
            let _ = p.child.kill();
            let _ = p.child.wait();
        }
        for ns in namespaces_with(&format!("{}-", self.prefix)) {
            remove_namespace(&ns);
        }
        if std::thread::panicking() || std::env::var_os("SHOAL_NETNS_KEEP_LOGS").is_some() {
            eprintln!("netns harness: logs kept in {}", self.dir.display());
        } else {
            let _ = fs::remove_dir_all(&self.dir);
        }
    }
}

/// Polls `cond` every 100 ms until it returns `Some` or `within` passes.
pub fn wait_for<T>(within: Duration, mut cond: impl FnMut() -> Option<T>) -> Option<T> {
    let deadline = Instant::now() + within;
    loop {
        if let Some(v) = cond() {
            return Some(v);
        }
        if Instant::now() > deadline {
            return None;
        }
        // Polling other processes' log files: real time, no virtual clock to jump.
        std::thread::sleep(Duration::from_millis(100));
    }
}
