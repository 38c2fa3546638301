//! Scenarios the binary and the tests run, each returning a report of the metrics that
//! matter, all measured in virtual time.
//!
//! `converge` and `tags` exercise membership; the fault scenarios in [`faults`] (`crash`,
//! `steady`, `pause`, `partition`) exercise failure and partition detection; [`mod@gray`] (`gray`,
//! `flipflop`) exercises partial failures.

pub mod faults;
pub mod gray;

pub use faults::{
    crash, partition, pause, steady, CrashReport, PartitionReport, PauseReport, SteadyReport,
};

pub use gray::{flipflop, gray, Direction, FlipflopReport, GrayOpts, GrayReport};

use crate::cluster::{Sim, SimConfig};
use crate::network::LinkConfig;
use rand_chacha::ChaCha8Rng;
use rand_core::{RngCore, SeedableRng};
use shoal_core::{Config, Event, Timestamp};
use std::fmt::Write as _;
use std::time::Duration;

/// Knobs shared by the scenarios.
#[derive(Clone, Debug)]
pub struct ScenarioOpts {
    /// Number of nodes.
    pub nodes: usize,
    /// Master seed.
    pub seed: u64,
    /// Packet loss in percent.
    pub loss_pct: f64,
    /// Extra per-packet jitter (on top of the LAN link's own).
    pub jitter: Duration,
    /// Node configuration.
    pub config: Config,
    /// Joins are spread uniformly over this window from time zero (processes never start in
    /// the same microsecond).
    pub join_window: Duration,
    /// Virtual time to wait after convergence before measuring steady-state traffic.
    pub settle: Duration,
    /// Virtual time over which steady-state traffic is measured.
    pub steady: Duration,
    /// Give up after this much virtual time.
    pub timeout: Duration,
    /// Packet duplication in percent.
    pub dup_pct: f64,
    /// Clock rate skew (see [`SimConfig::clock_skew`]); 0 means every clock is exact.
    pub clock_skew: f64,
    /// `steady`: virtual time to run under loss and jitter.
    pub duration: Duration,
    /// `pause`: how long the paused member stalls.
    pub pause: Duration,
    /// `partition`: how long the split holds.
    pub hold: Duration,
    /// Run the invariant checkers after every step of the fault scenarios.
    pub check: bool,
}

impl Default for ScenarioOpts {
    fn default() -> Self {
        ScenarioOpts {
            nodes: 100,
            seed: 1,
            loss_pct: 0.0,
            jitter: Duration::ZERO,
            config: Config::lan(),
            join_window: Duration::from_millis(100),
            settle: Duration::from_secs(10),
            steady: Duration::from_secs(60),
            timeout: Duration::from_secs(300),
            dup_pct: 0.0,
            clock_skew: 0.0,
            duration: Duration::from_secs(60),
            pause: Duration::from_millis(2000),
            hold: Duration::from_secs(30),
            check: false,
        }
    }
}

impl ScenarioOpts {
    /// The link these options ask for: the LAN link plus loss, jitter and duplication.
    pub fn link(&self) -> LinkConfig {
        let mut link = LinkConfig::lan();
        link.loss = (self.loss_pct / 100.0).clamp(0.0, 1.0);
        link.duplicate = (self.dup_pct / 100.0).clamp(0.0, 1.0);
        link.jitter += self.jitter;
        link
    }

    fn sim_config(&self) -> SimConfig {
        SimConfig {
            nodes: self.nodes,
            seed: self.seed,
            link: self.link(),
            node_config: self.config.clone(),
            clock_skew: self.clock_skew,
        }
    }
}

/// A flat JSON object, written by hand (numbers, strings, booleans, null).
#[derive(Clone, Debug, Default, PartialEq)]
pub struct Report {
    fields: Vec<(String, String)>,
}

impl Report {
    /// Adds a number (`None` becomes `null`).
    pub fn num(&mut self, key: &str, v: Option<f64>) -> &mut Self {
        let s = match v {
            Some(x) if x.is_finite() => {
                if x.fract() == 0.0 && x.abs() < 1e15 {
                    format!("{}", x as i64)
                } else {
                    format!("{x:.3}")
                }
            }
            _ => "null".to_owned(),
        };
        self.fields.push((key.to_owned(), s));
        self
    }

    /// Adds an unsigned integer.
    pub fn int(&mut self, key: &str, v: u64) -> &mut Self {
        self.fields.push((key.to_owned(), v.to_string()));
        self
    }

    /// Adds a boolean.
    pub fn flag(&mut self, key: &str, v: bool) -> &mut Self {
        self.fields.push((key.to_owned(), v.to_string()));
        self
    }

    /// Adds a string.
    pub fn text(&mut self, key: &str, v: &str) -> &mut Self {
        let mut s = String::from("\"");
        for c in v.chars() {
            match c {
                '"' => s.push_str("\\\""),
                '\\' => s.push_str("\\\\"),
                c if (c as u32) < 0x20 => {
                    let _ = write!(s, "\\u{:04x}", c as u32);
                }
                c => s.push(c),
            }
        }
        s.push('"');
        self.fields.push((key.to_owned(), s));
        self
    }

    /// The raw JSON text of `key`, if present.
    pub fn get(&self, key: &str) -> Option<&str> {
        self.fields
            .iter()
            .find(|(k, _)| k == key)
            .map(|(_, v)| v.as_str())
    }

    /// `key` as a number, if present and not null.
    pub fn get_f64(&self, key: &str) -> Option<f64> {
        self.get(key)?.parse().ok()
    }

    /// One-line JSON object.
    pub fn to_json(&self) -> String {
        let mut s = String::from("{");
        for (i, (k, v)) in self.fields.iter().enumerate() {
            if i > 0 {
                s.push(',');
            }
            let _ = write!(s, "\"{k}\":{v}");
        }
        s.push('}');
        s
    }
}

/// The p99 and max over members of the bytes each sent per second between two readings of
/// [`Sim::bytes_by_node`] `secs` apart.
pub fn rate_spread(before: &[u64], after: &[u64], secs: f64) -> (f64, f64) {
    let mut rates: Vec<f64> = after
        .iter()
        .zip(before)
        .map(|(a, b)| (a - b) as f64 / secs)
        .collect();
    rates.sort_by(f64::total_cmp);
    (
        faults::percentile(&rates, 99.0).unwrap_or(f64::NAN),
        rates.last().copied().unwrap_or(f64::NAN),
    )
}

/// Result of [`converge`].
#[derive(Debug)]
pub struct ConvergeReport {
    /// Virtual ms until every node's view held all N members alive.
    pub converged_ms: Option<f64>,
    /// Payload bytes sent per member per second in steady state after convergence.
    pub bytes_per_member_per_s: f64,
    /// The same window's per-member rates (bytes each member sent / s): p99 and max over
    /// members, as Rapid reports them.
    pub bytes_per_member_per_s_p99: f64,
    /// See [`bytes_per_member_per_s_p99`](Self::bytes_per_member_per_s_p99).
    pub bytes_per_member_per_s_max: f64,
    /// The event-trace hash.
    pub trace_hash: u64,
    /// Events recorded.
    pub events: u64,
    /// Members known vs time: (virtual ms, live members in a node's view, averaged over
    /// all nodes; a node that has not joined yet knows itself), sampled every [`SAMPLE_EVERY`] until convergence.
    pub known: Vec<(f64, f64)>,
    /// Gossip traffic vs time: (virtual s at the end of a one-second window, payload bytes
    /// sent per member per second in it), from time zero through the steady measurement.
    pub bytes: Vec<(f64, f64)>,
    /// The simulation, left at the end of the run for further scenario steps.
    pub sim: Sim,
}

/// How often [`converge`] samples the members known (virtual time).
pub const SAMPLE_EVERY: Duration = Duration::from_millis(100);

/// Records one-second windows of bytes sent per member per second (the report's traffic
/// series); reading the simulation only, so it changes nothing in the run.
struct BytesSeries {
    next: Timestamp,
    last_bytes: u64,
    points: Vec<(f64, f64)>,
}

impl BytesSeries {
    const WINDOW: Duration = Duration::from_secs(1);

    fn new() -> Self {
        BytesSeries {
            next: Timestamp::ZERO + Self::WINDOW,
            last_bytes: 0,
            points: Vec::new(),
        }
    }

    fn observe(&mut self, sim: &Sim, n: usize) {
        while sim.now >= self.next {
            let t = self.next.as_micros() as f64 / 1e6;
            let bytes = sim.bytes_sent - self.last_bytes;
            self.points.push((t, bytes as f64 / n.max(1) as f64));
            self.last_bytes = sim.bytes_sent;
            self.next = self.next + Self::WINDOW;
        }
    }
}

/// Starts `opts.nodes` nodes; node 0 is the seed, every other node joins through it at a
/// random time inside the join window. Runs until every node's view holds every member
/// alive, then measures steady-state traffic.
pub fn converge(opts: &ScenarioOpts) -> ConvergeReport {
    converge_members(opts, opts.nodes)
}

/// [`converge`] of the first `members` of the `opts.nodes` nodes: the others stay out (not
/// joined, not counted), for a scenario to add later. With `members == opts.nodes` this is
/// [`converge`], the same run.
fn converge_members(opts: &ScenarioOpts, members: usize) -> ConvergeReport {
    let mut sim = Sim::new(opts.sim_config());
    let n = members.min(opts.nodes);
    let mut rng = ChaCha8Rng::seed_from_u64(opts.seed ^ 0x6a6f_696e);
    let window = opts.join_window.as_micros() as u64;
    let mut joins: Vec<(Timestamp, usize)> = (1..n)
        .map(|i| {
            let at = if window == 0 {
                0
            } else {
                rng.next_u64() % window
            };
            (Timestamp::from_micros(at), i)
        })
        .collect();
    joins.sort();
    let mut out = Vec::new();
    let mut full = vec![false; n];
    let mut full_count = 0usize;
    let update = |sim: &Sim, i: usize, full: &mut Vec<bool>, count: &mut usize| {
        let is_full = sim.node(i).is_some_and(|x| x.live_members() == n);
        if is_full != full[i] {
            full[i] = is_full;
            if is_full {
                *count += 1;
            } else {
                *count -= 1;
            }
        }
    };
    for i in 0..n {
        update(&sim, i, &mut full, &mut full_count);
    }
    let deadline = Timestamp::ZERO + opts.timeout;
    let mut next_join = 0;
    let mut converged = None;
    let debug = std::env::var_os("SIM_DEBUG").is_some();
    let wall = std::time::Instant::now();
    let phase = |what: &str| {
        if debug {
            eprintln!("wall={:.1}s {what}", wall.elapsed().as_secs_f64());
        }
    };
    let mut next_print = Timestamp::ZERO;
    let mut known = Vec::new();
    let mut next_sample = Timestamp::ZERO;
    let mut bytes = BytesSeries::new();
    while sim.now < deadline {
        bytes.observe(&sim, n);
        if sim.now >= next_sample {
            let live: usize = (0..n)
                .filter_map(|i| sim.node(i))
                .map(|x| x.live_members())
                .sum();
            known.push((sim.now.as_micros() as f64 / 1000.0, live as f64 / n as f64));
            next_sample = next_sample + SAMPLE_EVERY;
        }
        if debug && sim.now >= next_print {
            let q: usize = (0..n)
                .filter_map(|i| sim.node(i))
                .map(|x| x.stats().queued_updates)
                .sum();
            let live: usize = (0..n)
                .filter_map(|i| sim.node(i))
                .map(|x| x.live_members())
                .sum();
            eprintln!(
                "wall={:.1}s t={:?} full={} avg_live={:.1} queued_avg={:.1} bytes={} rss={:?}",
                wall.elapsed().as_secs_f64(),
                sim.now,
                full_count,
                live as f64 / n as f64,
                q as f64 / n as f64,
                sim.bytes_sent,
                crate::mem::rss_bytes()
            );
            next_print = next_print + Duration::from_millis(500);
        }
        if full_count == n && next_join == joins.len() {
            converged = Some(sim.now);
            break;
        }
        let limit = joins.get(next_join).map_or(deadline, |(t, _)| *t);
        match sim.step(limit, &mut out) {
            Some(i) => {
                if i < n {
                    update(&sim, i, &mut full, &mut full_count);
                }
                out.clear();
            }
            None => {
                if let Some(&(_, i)) = joins.get(next_join) {
                    sim.join(i, 0, &mut out);
                    out.clear();
                    update(&sim, i, &mut full, &mut full_count);
                    next_join += 1;
                }
            }
        }
    }
    let mut bytes_rate = f64::NAN;
    let mut spread = (f64::NAN, f64::NAN);
    if let Some(t) = converged {
        known.push((t.as_micros() as f64 / 1000.0, n as f64));
        phase(&format!("converged at {t:?}"));
        sim.run_until(t + opts.settle, |sim, _, _| bytes.observe(sim, n));
        phase("settled");
        let before = sim.bytes_sent;
        let before_each = sim.bytes_by_node.clone();
        let start = sim.now;
        sim.run_until(start + opts.steady, |sim, _, _| bytes.observe(sim, n));
        let secs = opts.steady.as_secs_f64().max(1e-9);
        bytes_rate = (sim.bytes_sent - before) as f64 / n as f64 / secs;
        phase("steady state measured");
        if debug {
            // The busiest senders of the window, with what their nodes say about themselves.
            let mut by_rate: Vec<(u64, usize)> = sim
                .bytes_by_node
                .iter()
                .zip(&before_each)
                .map(|(a, b)| a - b)
                .zip(0..)
                .collect();
            by_rate.sort_unstable_by(|a, b| b.cmp(a));
            for &(bytes, i) in by_rate.iter().take(3) {
                let stats = sim.node(i).map(|x| x.stats());
                eprintln!("busiest: node {i} {:.1} B/s {stats:?}", bytes as f64 / secs);
            }
        }
        spread = rate_spread(&before_each, &sim.bytes_by_node, secs);
    }
    ConvergeReport {
        converged_ms: converged.map(|t| t.as_micros() as f64 / 1000.0),
        bytes_per_member_per_s: bytes_rate,
        bytes_per_member_per_s_p99: spread.0,
        bytes_per_member_per_s_max: spread.1,
        trace_hash: sim.trace.hash(),
        events: sim.trace.events,
        known,
        bytes: bytes.points,
        sim,
    }
}

/// Result of [`tags`].
#[derive(Clone, Debug)]
pub struct TagsReport {
    /// Convergence first.
    pub converged_ms: Option<f64>,
    /// Virtual ms from the tag change until every other node saw it.
    pub tag_spread_ms: Option<f64>,
    /// The event-trace hash.
    pub trace_hash: u64,
}

/// Converges, then one random node sets a tag; measures how long until all others see it.
pub fn tags(opts: &ScenarioOpts) -> TagsReport {
    let c = converge(&ScenarioOpts {
        steady: Duration::ZERO,
        settle: Duration::ZERO,
        ..opts.clone()
    });
    let mut sim = c.sim;
    let n = opts.nodes;
    if c.converged_ms.is_none() || n < 2 {
        return TagsReport {
            converged_ms: c.converged_ms,
            tag_spread_ms: None,
            trace_hash: sim.trace.hash(),
        };
    }
    let mut rng = ChaCha8Rng::seed_from_u64(opts.seed ^ 0x7461_6773);
    let who = 1 + (rng.next_u64() % (n as u64 - 1)) as usize;
    let mut out = Vec::new();
    let start = sim.now;
    sim.with_node(who, &mut out, |node, now| node.set_tag(now, "version", "2"));
    let subject = sim.node(who).map(|x| x.id());
    let mut seen = vec![false; n];
    seen[who] = true;
    let mut count = 1;
    let deadline = start + opts.timeout;
    let mut spread = None;
    while count < n {
        let Some(_) = sim.step(deadline, &mut out) else {
            break;
        };
        for (i, e) in out.drain(..) {
            if let Event::MemberUpdated(m) = &e {
                if Some(m.info.id) == subject && m.info.tags.get("version") == Some("2") && !seen[i]
                {
                    seen[i] = true;
                    count += 1;
                }
            }
        }
        if count == n {
            spread = Some(sim.now);
        }
    }
    TagsReport {
        converged_ms: c.converged_ms,
        tag_spread_ms: spread.map(|t| t.saturating_since(start).as_micros() as f64 / 1000.0),
        trace_hash: sim.trace.hash(),
    }
}

/// Result of [`join`].
#[derive(Clone, Debug, Default)]
pub struct JoinReport {
    /// Convergence of the first `nodes - 1` members.
    pub converged_ms: Option<f64>,
    /// Virtual ms from the late node's join until each member learned it (p50, p99, max over
    /// the members); `None` unless every member did within the timeout.
    pub join_spread_p50_ms: Option<f64>,
    /// See [`join_spread_p50_ms`](Self::join_spread_p50_ms).
    pub join_spread_p99_ms: Option<f64>,
    /// See [`join_spread_p50_ms`](Self::join_spread_p50_ms).
    pub join_spread_max_ms: Option<f64>,
    /// Virtual ms until the late node's own view held every member alive.
    pub joiner_full_ms: Option<f64>,
    /// The event-trace hash.
    pub trace_hash: u64,
}

/// One node joining a settled cluster, the everyday case (a worker starts): converges the
/// first `nodes - 1` members, lets them settle for `opts.settle`, then the last node joins
/// through a random member; measures how long until every member knows it, and until it
/// knows every member.
pub fn join(opts: &ScenarioOpts) -> JoinReport {
    let n = opts.nodes;
    if n < 2 {
        return JoinReport::default();
    }
    let c = converge_members(
        &ScenarioOpts {
            steady: Duration::ZERO,
            ..opts.clone()
        },
        n - 1,
    );
    let mut sim = c.sim;
    let mut r = JoinReport {
        converged_ms: c.converged_ms,
        ..JoinReport::default()
    };
    if c.converged_ms.is_none() {
        r.trace_hash = sim.trace.hash();
        return r;
    }
    let late = n - 1;
    let mut rng = ChaCha8Rng::seed_from_u64(opts.seed ^ 0x6c61_7465);
    let seed = (rng.next_u64() % (n as u64 - 1)) as usize;
    let mut out = Vec::new();
    let start = sim.now;
    sim.join(late, seed, &mut out);
    let id = sim.node(late).map(|x| x.id());
    let mut learned: Vec<Option<Timestamp>> = vec![None; late];
    let mut count = 0;
    let mut full = None;
    let deadline = start + opts.timeout;
    while count < late || full.is_none() {
        for (i, e) in out.drain(..) {
            if let Event::MemberJoined(m) = &e {
                if i < late && Some(m.info.id) == id && learned[i].is_none() {
                    learned[i] = Some(sim.now);
                    count += 1;
                }
            }
        }
        if full.is_none() && sim.node(late).is_some_and(|x| x.live_members() == n) {
            full = Some(sim.now);
        }
        if count == late && full.is_some() {
            break;
        }
        if sim.step(deadline, &mut out).is_none() {
            break;
        }
    }
    let ms = |t: Timestamp| t.saturating_since(start).as_micros() as f64 / 1000.0;
    if count == late {
        let mut lat: Vec<f64> = learned.iter().flatten().map(|&t| ms(t)).collect();
        lat.sort_by(f64::total_cmp);
        r.join_spread_p50_ms = faults::percentile(&lat, 50.0);
        r.join_spread_p99_ms = faults::percentile(&lat, 99.0);
        r.join_spread_max_ms = lat.last().copied();
    }
    r.joiner_full_ms = full.map(ms);
    r.trace_hash = sim.trace.hash();
    r
}
