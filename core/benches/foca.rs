//! Shoal's core against foca (SWIM, crates.io 2.x) on the same membership work: N members,
//! all alive, steady state after both converged, the same 1 s protocol period, datagrams
//! delivered in memory after a fixed 200 us one-way latency, and the same cost accounting.
//!
//! `cargo bench -p shoal-core --bench foca -- --nodes 100,1000 --warmup 20 --secs 30`
//!
//! Options: `--nodes` (comma-separated sizes), `--warmup` and `--secs` (virtual seconds),
//! `--rounds` (repeats, alternating which library runs first), `--kinds` (datagrams and
//! bytes per message kind), `--only shoal|foca` (one library, for a profiler). The figures
//! and what differs between the two are in BENCHMARKS.md.
//!
//! Without `--bench` on the command line (as `cargo test --benches` runs it), it runs a
//! small cluster for a few virtual seconds and only checks that both stay converged and
//! both drop a crashed member.
//!
//! **What is measured.** Each library sits behind the same driver: one event queue in
//! virtual time (datagram deliveries and timer firings), one node handled at a time. For
//! every input the driver times (wall clock, `Instant`) exactly the library's work: the input
//! call (`handle_packet` / `handle_timeout` for Shoal, `handle_data` / `handle_timer` for
//! foca, each of which decodes, updates its state and encodes what it sends) plus taking its
//! outputs (Shoal: draining `poll_transmit`, `poll_event`, reading `poll_timeout`; foca: its
//! `Runtime` callbacks `send_to`, `submit_after`, `notify`, which copy each datagram into an
//! owned buffer as Shoal's `Transmit` owns its payload). Queueing in the driver is outside
//! the timed region. The machine is shared, so wall time inside calls also counts time the
//! thread was preempted; the CPU figure is therefore the thread's CPU time over the measured
//! phase times the library's share of that phase's wall time (a preemption is as likely
//! inside a call as outside). CPU per member-second = that / (N x measured virtual seconds);
//! bytes per member-second = datagram payload bytes sent / (N x seconds) (no IP/UDP headers
//! for either). The raw wall time inside calls is printed beside it.
//!
//! **Set-up of each.** Shoal: `Config::lan()` (1 s probe period, heartbeats from 3 observers
//! every 400 ms, gossip every 200 ms to 3 members, digest anti-entropy), no keyring (no
//! encryption), nodes `n{i}` with no RPC address and no tags; node 0 starts first and the
//! others `join` it, staggered over the first second. foca: `Config::new_lan(N)` (1 s probe
//! period, 500 ms probe RTT, periodic gossip every 200 ms to 3 members when it has updates,
//! periodic announce every 30 s to 1 member, `notify_down_members`), `PostcardCodec` (the
//! codec closest to Shoal's postcard wire), no custom broadcasts, the identity of foca's own
//! UDP example (`SocketAddr` plus a `u64` bump, here 0); each node is handed the full member
//! list with `apply_many(.., do_broadcast: false)` at its staggered start (foca's hook for a
//! push-pull join; its `announce` reaches a full view of 1,000 members only after several
//! periodic announces). Both then run `--warmup` virtual seconds before the measured window,
//! so join-time dissemination is over; a member seen down or suspected in the window fails
//! the run. After the window one member crashes and the run reports how long until the
//! first and until every other member dropped it (what each library's detection traffic
//! buys).

use foca::{Codec, Foca, Member, Notification, PostcardCodec, Runtime, Timer};
use rand_010::rngs::SmallRng;
use rand_010::SeedableRng;
use serde::{Deserialize, Serialize};
use shoal_core::testkit::TestRng;
use shoal_core::{wire, Config, Event, Identity, Node, Timestamp};
use std::cmp::Ordering;
use std::collections::{BTreeMap, BinaryHeap};
use std::net::{IpAddr, Ipv4Addr, SocketAddr};
use std::num::NonZeroU32;
use std::time::{Duration, Instant};

/// One-way latency of every datagram, both libraries.
const LATENCY_US: u64 = 200;
const SEC_US: u64 = 1_000_000;

/// The gossip address of member `i` (10.x.y.z, decodable back to `i` in O(1)).
fn addr(i: usize) -> SocketAddr {
    let ip = Ipv4Addr::new(10, (i >> 16) as u8, (i >> 8) as u8, i as u8);
    SocketAddr::new(IpAddr::V4(ip), 7946)
}

/// The member index of an address made by [`addr`].
fn index(a: &SocketAddr) -> usize {
    match a.ip() {
        IpAddr::V4(ip) => {
            let o = ip.octets();
            (o[1] as usize) << 16 | (o[2] as usize) << 8 | o[3] as usize
        }
        IpAddr::V6(_) => usize::MAX,
    }
}

/// What one input produced, handed from a member to the driver.
struct Out<T> {
    /// (destination member, datagram).
    sends: Vec<(usize, Vec<u8>)>,
    /// (virtual time in us, timer).
    timers: Vec<(u64, T)>,
    /// Members declared down or suspected (must stay 0 in steady state).
    bad_news: u64,
}

impl<T> Out<T> {
    fn new() -> Self {
        Out {
            sends: Vec::new(),
            timers: Vec::new(),
            bad_news: 0,
        }
    }
}

/// One member of either library, as the driver sees it.
trait Member2: Sized {
    type Timer;
    const NAME: &'static str;
    fn new(i: usize, n: usize) -> Self;
    /// Starts the member at `now` (join, or bootstrap).
    fn start(&mut self, now: u64, n: usize, out: &mut Out<Self::Timer>);
    fn packet(&mut self, now: u64, from: usize, bytes: &[u8], out: &mut Out<Self::Timer>);
    /// Fires a timer; returns false (without calling the library) for a stale one.
    fn timer(&mut self, now: u64, timer: Self::Timer, out: &mut Out<Self::Timer>) -> bool;
    /// Live members this member sees, itself included.
    fn live(&self) -> usize;
    /// The message kind of a datagram it sent (for the byte breakdown only).
    fn kind(bytes: &[u8]) -> String;
}

// ---- Shoal ------------------------------------------------------------------------------

struct ShoalMember {
    node: Node<TestRng>,
    /// The deadline the driver holds a timer event for.
    armed: Option<u64>,
}

impl ShoalMember {
    fn drain(&mut self, now: u64, out: &mut Out<u64>) {
        while let Some(t) = self.node.poll_transmit() {
            out.sends.push((index(&t.dst), t.payload));
        }
        while let Some(e) = self.node.poll_event() {
            if matches!(
                e,
                Event::MemberSuspected(_) | Event::MemberFailed(_) | Event::MemberLeft(_)
            ) {
                out.bad_news += 1;
            }
        }
        let next = self.node.poll_timeout().map(|t| t.as_micros());
        if next != self.armed {
            self.armed = next;
            if let Some(t) = next {
                out.timers.push((t.max(now), t));
            }
        }
    }
}

impl Member2 for ShoalMember {
    type Timer = u64;
    const NAME: &'static str = "shoal";

    fn new(i: usize, _n: usize) -> Self {
        let node = Node::new(
            Config::lan(),
            Identity::new(&format!("n{i}"), addr(i)),
            TestRng(0xF0CA + i as u64),
            Timestamp::ZERO,
        )
        .expect("the LAN preset is valid");
        ShoalMember { node, armed: None }
    }

    fn start(&mut self, now: u64, _n: usize, out: &mut Out<u64>) {
        if self.node.me().gossip_addr() != addr(0) {
            self.node
                .join(Timestamp::from_micros(now), &[addr(0)])
                .expect("a fresh node may join");
        }
        self.drain(now, out);
    }

    fn packet(&mut self, now: u64, from: usize, bytes: &[u8], out: &mut Out<u64>) {
        let _ = self
            .node
            .handle_packet(Timestamp::from_micros(now), addr(from), bytes);
        self.drain(now, out);
    }

    fn timer(&mut self, now: u64, deadline: u64, out: &mut Out<u64>) -> bool {
        if self.armed != Some(deadline) {
            return false;
        }
        self.armed = None;
        self.node.handle_timeout(Timestamp::from_micros(now));
        self.drain(now, out);
        true
    }

    fn live(&self) -> usize {
        self.node.live_members()
    }

    fn kind(bytes: &[u8]) -> String {
        match wire::decode(bytes, wire::MAX_DATAGRAM) {
            Ok(p) => {
                let k = format!("{:?}", p.message);
                let k = k.split([' ', '{', '(']).next().unwrap_or("?").to_owned();
                if p.updates.is_empty() {
                    k
                } else {
                    format!("{k}+updates")
                }
            }
            Err(_) => "undecodable".to_owned(),
        }
    }
}

// ---- foca -------------------------------------------------------------------------------

/// foca's identity as in its UDP example: the address plus a bump raised on rejoin.
#[derive(Clone, PartialEq, Eq, Debug, Serialize, Deserialize)]
struct FocaId {
    addr: SocketAddr,
    bump: u64,
}

impl foca::Identity for FocaId {
    type Addr = SocketAddr;

    fn renew(&self) -> Option<Self> {
        Some(FocaId {
            addr: self.addr,
            bump: self.bump.wrapping_add(1),
        })
    }

    fn addr(&self) -> SocketAddr {
        self.addr
    }

    fn win_addr_conflict(&self, adversary: &Self) -> bool {
        self.bump > adversary.bump
    }
}

fn foca_id(i: usize) -> FocaId {
    FocaId {
        addr: addr(i),
        bump: 0,
    }
}

type FocaNode = Foca<FocaId, PostcardCodec, SmallRng, foca::NoCustomBroadcast>;

/// foca's `Runtime` over the driver's output buffers.
struct FocaRuntime<'a> {
    now: u64,
    out: &'a mut Out<Timer<FocaId>>,
}

impl Runtime<FocaId> for FocaRuntime<'_> {
    fn notify(&mut self, notification: Notification<'_, FocaId>) {
        if matches!(
            notification,
            Notification::MemberDown(_) | Notification::Defunct | Notification::Idle
        ) {
            self.out.bad_news += 1;
        }
    }

    fn send_to(&mut self, to: FocaId, data: &[u8]) {
        self.out.sends.push((index(&to.addr), data.to_vec()));
    }

    fn submit_after(&mut self, event: Timer<FocaId>, after: Duration) {
        self.out
            .timers
            .push((self.now + after.as_micros() as u64, event));
    }
}

struct FocaMember {
    foca: FocaNode,
}

impl Member2 for FocaMember {
    type Timer = Timer<FocaId>;
    const NAME: &'static str = "foca";

    fn new(i: usize, n: usize) -> Self {
        let size = NonZeroU32::new(n as u32).expect("at least one member");
        FocaMember {
            foca: Foca::new(
                foca_id(i),
                foca::Config::new_lan(size),
                SmallRng::seed_from_u64(0xF0CA + i as u64),
                PostcardCodec,
            ),
        }
    }

    fn start(&mut self, now: u64, n: usize, out: &mut Out<Self::Timer>) {
        let me = self.foca.identity().clone();
        let members = (0..n)
            .map(foca_id)
            .filter(|id| *id != me)
            .map(Member::alive);
        self.foca
            .apply_many(members, false, FocaRuntime { now, out })
            .expect("bootstrap accepted");
    }

    fn packet(&mut self, now: u64, _from: usize, bytes: &[u8], out: &mut Out<Self::Timer>) {
        let _ = self.foca.handle_data(bytes, FocaRuntime { now, out });
    }

    fn timer(&mut self, now: u64, timer: Self::Timer, out: &mut Out<Self::Timer>) -> bool {
        let _ = self.foca.handle_timer(timer, FocaRuntime { now, out });
        true
    }

    fn live(&self) -> usize {
        self.foca.num_members() + 1
    }

    fn kind(mut bytes: &[u8]) -> String {
        match Codec::<FocaId>::decode_header(&mut PostcardCodec, &mut bytes) {
            Ok(h) => {
                let k = format!("{:?}", h.message);
                let k = k.split([' ', '{', '(']).next().unwrap_or("?").to_owned();
                // After the header: a big-endian u16 count of piggybacked updates.
                if bytes.len() < 2 || bytes[..2] == [0, 0] {
                    k
                } else {
                    format!("{k}+updates")
                }
            }
            Err(_) => "undecodable".to_owned(),
        }
    }
}

// ---- the driver -------------------------------------------------------------------------

enum Ev<T> {
    Start(usize),
    Deliver {
        to: usize,
        from: usize,
        bytes: Vec<u8>,
    },
    Timer {
        node: usize,
        timer: T,
    },
}

struct Entry<T> {
    at: u64,
    seq: u64,
    ev: Ev<T>,
}

impl<T> PartialEq for Entry<T> {
    fn eq(&self, other: &Self) -> bool {
        (self.at, self.seq) == (other.at, other.seq)
    }
}
impl<T> Eq for Entry<T> {}
impl<T> PartialOrd for Entry<T> {
    fn partial_cmp(&self, other: &Self) -> Option<Ordering> {
        Some(self.cmp(other))
    }
}
impl<T> Ord for Entry<T> {
    /// Reversed: the heap pops the earliest (then first-queued) event.
    fn cmp(&self, other: &Self) -> Ordering {
        (other.at, other.seq).cmp(&(self.at, self.seq))
    }
}

/// What the measured window cost.
#[derive(Default)]
struct Meter {
    /// Wall time inside the library's calls.
    busy: Duration,
    /// Library input calls (each with its output draining).
    calls: u64,
    packets: u64,
    bytes: u64,
    /// Per message kind: (datagrams, bytes); filled only when `classify` is set.
    kinds: BTreeMap<String, (u64, u64)>,
}

struct Sim<M: Member2> {
    n: usize,
    members: Vec<M>,
    heap: BinaryHeap<Entry<M::Timer>>,
    seq: u64,
    now: u64,
    out: Out<M::Timer>,
    meter: Meter,
    classify: bool,
    /// Whether member `i` runs: a crashed one gets no datagrams and no timer calls.
    up: Vec<bool>,
}

impl<M: Member2> Sim<M> {
    fn new(n: usize) -> Self {
        let mut s = Sim {
            n,
            members: (0..n).map(|i| M::new(i, n)).collect(),
            heap: BinaryHeap::new(),
            seq: 0,
            now: 0,
            out: Out::new(),
            meter: Meter::default(),
            classify: false,
            up: vec![true; n],
        };
        // Staggered starts over the first second, member 0 first.
        for i in 0..n {
            s.push(i as u64 * SEC_US / n as u64, Ev::Start(i));
        }
        s
    }

    fn push(&mut self, at: u64, ev: Ev<M::Timer>) {
        self.seq += 1;
        self.heap.push(Entry {
            at,
            seq: self.seq,
            ev,
        });
    }

    /// Runs every event up to `end` (virtual us).
    fn run_until(&mut self, end: u64) {
        while self.heap.peek().is_some_and(|e| e.at <= end) {
            let Some(e) = self.heap.pop() else { break };
            self.now = e.at;
            let (i, from) = match &e.ev {
                Ev::Start(i) | Ev::Timer { node: i, .. } => (*i, *i),
                Ev::Deliver { to, from, .. } => (*to, *from),
            };
            if !self.up[i] {
                continue;
            }
            let (now, member, out) = (self.now, &mut self.members[i], &mut self.out);
            let started = Instant::now();
            let called = match e.ev {
                Ev::Start(_) => {
                    member.start(now, self.n, out);
                    true
                }
                Ev::Deliver { bytes, .. } => {
                    member.packet(now, from, &bytes, out);
                    true
                }
                Ev::Timer { timer, .. } => member.timer(now, timer, out),
            };
            let spent = started.elapsed();
            if called {
                self.meter.busy += spent;
                self.meter.calls += 1;
            }
            let mut out = std::mem::replace(&mut self.out, Out::new());
            for (to, bytes) in out.sends.drain(..) {
                self.meter.packets += 1;
                self.meter.bytes += bytes.len() as u64;
                if self.classify {
                    let k = self.meter.kinds.entry(M::kind(&bytes)).or_default();
                    k.0 += 1;
                    k.1 += bytes.len() as u64;
                }
                if to < self.n {
                    self.push(now + LATENCY_US, Ev::Deliver { to, from: i, bytes });
                }
            }
            for (at, timer) in out.timers.drain(..) {
                self.push(at, Ev::Timer { node: i, timer });
            }
            self.out = out;
        }
        self.now = self.now.max(end);
    }

    fn converged(&self) -> bool {
        self.members.iter().all(|m| m.live() == self.n)
    }
}

/// This thread's CPU time so far (exact, unlike `/proc/thread-self/schedstat`, which moves
/// only at scheduler ticks).
fn thread_cpu() -> Option<Duration> {
    let mut ts = libc::timespec {
        tv_sec: 0,
        tv_nsec: 0,
    };
    // SAFETY: `ts` is a valid, writable timespec for the duration of the call, and
    // CLOCK_THREAD_CPUTIME_ID is a clock every Linux and BSD libc provides.
    let rc = unsafe { libc::clock_gettime(libc::CLOCK_THREAD_CPUTIME_ID, &mut ts) };
    (rc == 0).then(|| Duration::new(ts.tv_sec as u64, ts.tv_nsec as u32))
}

/// What timing one call costs by itself (`Instant::now` then `elapsed`, nothing between):
/// the median of 21 batches, subtracted from every timed call.
fn timing_overhead() -> Duration {
    let mut batches: Vec<Duration> = (0..21)
        .map(|_| {
            let mut sum = Duration::ZERO;
            for _ in 0..20_000 {
                let t = Instant::now();
                std::hint::black_box(());
                sum += t.elapsed();
            }
            sum / 20_000
        })
        .collect();
    batches.sort();
    batches[10]
}

struct Report {
    name: &'static str,
    n: usize,
    converged_ms: u64,
    secs: u64,
    meter: Meter,
    /// Wall time of the measured phase (driver and library).
    phase_wall: Duration,
    /// Thread CPU time of the measured phase (driver and library), when readable.
    phase_cpu: Option<Duration>,
    /// Wall time of the whole run (forming, warm-up, measuring).
    wall: Duration,
    /// What timing one call costs by itself ([`timing_overhead`]).
    overhead: Duration,
    /// After the window, one member crashes: ms until the first, and until every other
    /// member dropped it from its live view ([`crash_detection`]).
    detect: (Option<u64>, Option<u64>),
}

impl Report {
    fn member_secs(&self) -> f64 {
        (self.n as u64 * self.secs) as f64
    }
    /// The library's share of the measured phase: wall time inside its calls over the
    /// phase's wall time. A preemption (other processes share the cores) is as likely to
    /// land inside a call as outside, so the share is not skewed by the machine's load.
    fn share(&self) -> f64 {
        self.net_busy().as_secs_f64() / self.phase_wall.as_secs_f64().max(1e-9)
    }
    /// Wall time inside calls less the timing's own cost.
    fn net_busy(&self) -> Duration {
        let timing = self.overhead * self.meter.calls.min(u32::MAX as u64) as u32;
        self.meter.busy.saturating_sub(timing)
    }
    /// CPU time spent in the library: the phase's thread CPU times the library's share
    /// (falls back to the wall time inside calls where thread CPU cannot be read).
    fn lib_cpu(&self) -> Duration {
        match self.phase_cpu {
            Some(c) if !c.is_zero() => c.mul_f64(self.share().min(1.0)),
            _ => self.net_busy(),
        }
    }
    fn cpu_us_per_member_s(&self) -> f64 {
        self.lib_cpu().as_secs_f64() * 1e6 / self.member_secs()
    }
    fn bytes_per_member_s(&self) -> f64 {
        self.meter.bytes as f64 / self.member_secs()
    }
    fn packets_per_member_s(&self) -> f64 {
        self.meter.packets as f64 / self.member_secs()
    }
    fn ns_per_call(&self) -> f64 {
        self.lib_cpu().as_nanos() as f64 / self.meter.calls.max(1) as f64
    }
    fn ns_per_datagram(&self) -> f64 {
        self.lib_cpu().as_nanos() as f64 / self.meter.packets.max(1) as f64
    }

    fn print(&self) {
        println!(
            "{:>5} n={:<5} converged {:>6} ms | CPU {:>7.1} us/member-s, {:>5.0} ns/call, {:>5.0} ns/datagram sent ({:.2e} calls, {:>4.1} % of the phase; wall in calls {:>7.1} us/member-s) | {:>6.1} B/member-s, {:>5.2} datagrams/member-s | crash seen by first / all after {} / {} ms | run wall {:.1} s",
            self.name,
            self.n,
            self.converged_ms,
            self.cpu_us_per_member_s(),
            self.ns_per_call(),
            self.ns_per_datagram(),
            self.meter.calls as f64,
            self.share() * 100.0,
            self.meter.busy.as_secs_f64() * 1e6 / self.member_secs(),
            self.bytes_per_member_s(),
            self.packets_per_member_s(),
            self.detect.0.map_or("-".to_owned(), |v| v.to_string()),
            self.detect.1.map_or("never".to_owned(), |v| v.to_string()),
            self.wall.as_secs_f64(),
        );
        for (k, (p, b)) in &self.meter.kinds {
            println!(
                "        {:<22} {:>7.2} datagrams/member-s {:>7.1} B/member-s ({:.0} B each)",
                k,
                *p as f64 / self.member_secs(),
                *b as f64 / self.member_secs(),
                *b as f64 / (*p).max(1) as f64
            );
        }
    }
}

/// The measured window, in a function of its own so that a profiler can be told to count
/// only inside it (`valgrind --tool=callgrind --collect-atstart=no
/// --toggle-collect='*measured_phase*'`).
#[inline(never)]
fn measured_phase<M: Member2>(sim: &mut Sim<M>, end: u64) {
    sim.run_until(end);
}

/// Crashes one member at `from` (it stops receiving and firing timers) and returns how
/// long until the first and until every other member dropped it from its live view (alive
/// or suspect), checked every 100 ms for at most 120 s. What the detection traffic buys.
fn crash_detection<M: Member2>(sim: &mut Sim<M>, from: u64) -> (Option<u64>, Option<u64>) {
    let victim = sim.n / 2;
    sim.up[victim] = false;
    let (mut first, mut t) = (None, from);
    while t < from + 120 * SEC_US {
        t += SEC_US / 10;
        sim.run_until(t);
        let dropped = (0..sim.n)
            .filter(|&i| i != victim && sim.members[i].live() == sim.n - 1)
            .count();
        if dropped > 0 && first.is_none() {
            first = Some((t - from) / 1000);
        }
        if dropped == sim.n - 1 {
            return (first, Some((t - from) / 1000));
        }
    }
    (first, None)
}

/// Converges, warms up for `warmup` s, then measures `secs` s of steady state.
fn run<M: Member2>(n: usize, warmup: u64, secs: u64, classify: bool, overhead: Duration) -> Report {
    let wall = Instant::now();
    let mut sim = Sim::<M>::new(n);
    let limit = 120 * SEC_US;
    let mut t = SEC_US;
    loop {
        sim.run_until(t);
        if sim.converged() {
            break;
        }
        assert!(t < limit, "{} n={n} did not converge in 120 s", M::NAME);
        t += SEC_US / 10;
    }
    let converged_ms = t / 1000;
    sim.run_until(t + warmup * SEC_US);
    sim.out.bad_news = 0;
    sim.meter = Meter::default();
    sim.classify = classify;
    eprintln!(
        "{} n={n}: measuring from {:.1} s of wall time",
        M::NAME,
        wall.elapsed().as_secs_f64()
    );
    let (cpu0, phase) = (thread_cpu(), Instant::now());
    measured_phase(&mut sim, t + (warmup + secs) * SEC_US);
    let phase_wall = phase.elapsed();
    let phase_cpu = thread_cpu().zip(cpu0).map(|(b, a)| b.saturating_sub(a));
    assert_eq!(
        sim.out.bad_news,
        0,
        "{} n={n}: members suspected or down in steady state",
        M::NAME
    );
    assert!(sim.converged(), "{} n={n}: view shrank", M::NAME);
    let meter = std::mem::take(&mut sim.meter);
    sim.classify = false;
    let detect = crash_detection(&mut sim, t + (warmup + secs) * SEC_US);
    assert!(
        detect.1.is_some(),
        "{} n={n}: a crashed member was still live somewhere after 120 s",
        M::NAME
    );
    Report {
        name: M::NAME,
        n,
        converged_ms,
        secs,
        meter,
        detect,
        phase_wall,
        phase_cpu,
        wall: wall.elapsed(),
        overhead,
    }
}

fn arg(args: &[String], name: &str) -> Option<String> {
    args.iter()
        .position(|a| a == name)
        .and_then(|i| args.get(i + 1).cloned())
}

fn main() {
    let args: Vec<String> = std::env::args().collect();
    let bench = args.iter().any(|a| a == "--bench");
    let sizes: Vec<usize> = arg(&args, "--nodes")
        .map(|s| {
            s.split(',')
                .map(|v| v.trim().parse().expect("--nodes takes sizes like 100,1000"))
                .collect()
        })
        .unwrap_or_else(|| if bench { vec![100, 1000] } else { vec![20] });
    let warmup: u64 = arg(&args, "--warmup")
        .map(|s| s.parse().expect("--warmup takes seconds"))
        .unwrap_or(if bench { 20 } else { 3 });
    let secs: u64 = arg(&args, "--secs")
        .map(|s| s.parse().expect("--secs takes seconds"))
        .unwrap_or(if bench { 30 } else { 3 });
    let rounds: usize = arg(&args, "--rounds")
        .map(|s| s.parse().expect("--rounds takes a count"))
        .unwrap_or(1);
    let classify = args.iter().any(|a| a == "--kinds");
    let overhead = timing_overhead();
    println!(
        "timing one call costs {} ns by itself (subtracted from every call)",
        overhead.as_nanos()
    );
    // `--only shoal` or `--only foca`: one library alone (for a profiler).
    match arg(&args, "--only").as_deref() {
        Some("shoal") => {
            for &n in &sizes {
                run::<ShoalMember>(n, warmup, secs, classify, overhead).print();
            }
            return;
        }
        Some("foca") => {
            for &n in &sizes {
                run::<FocaMember>(n, warmup, secs, classify, overhead).print();
            }
            return;
        }
        Some(other) => panic!("--only takes shoal or foca, not {other}"),
        None => {}
    }
    for &n in &sizes {
        for round in 0..rounds {
            // Alternate the order, so neither always runs first after a build.
            let (s, f) = if round % 2 == 0 {
                let s = run::<ShoalMember>(n, warmup, secs, classify, overhead);
                (s, run::<FocaMember>(n, warmup, secs, classify, overhead))
            } else {
                let f = run::<FocaMember>(n, warmup, secs, classify, overhead);
                (run::<ShoalMember>(n, warmup, secs, classify, overhead), f)
            };
            s.print();
            f.print();
            println!(
                "  n={n} round {round}: Shoal/foca CPU per member-s {:.2}x (target <= 0.5x), bytes per member-s {:.2}x, datagrams per member-s {:.2}x, CPU per datagram sent {:.2}x",
                s.cpu_us_per_member_s() / f.cpu_us_per_member_s(),
                s.bytes_per_member_s() / f.bytes_per_member_s(),
                s.packets_per_member_s() / f.packets_per_member_s(),
                s.ns_per_datagram() / f.ns_per_datagram(),
            );
        }
    }
}
