//! `shoal-sim report --out DIR`: runs the standard scenarios and writes `DIR/index.html`
//! with SVG plots a reader can regenerate: detection-time CDFs, convergence and gossip
//! traffic over time, false positives across loss rates, and partition detect and heal
//! times. Every figure is measured in virtual time from seeded, deterministic runs, so the
//! same command draws the same page (only the wall-clock line differs).
//!
//! ```no_run
//! use shoal_sim::report::{collect, write, ReportOpts};
//! let figures = collect(&ReportOpts::quick(), &mut |line| eprintln!("{line}"));
//! write(&figures, std::path::Path::new("target/sim-report")).unwrap();
//! ```

pub mod plot;

use crate::scenarios::{converge, crash, partition, steady, ScenarioOpts};
use plot::{render, Chart, PlotError, Series};
use std::fmt::Write as _;
use std::path::{Path, PathBuf};
use std::time::{Duration, Instant};

/// What the report runs.
#[derive(Clone, Debug)]
pub struct ReportOpts {
    /// Cluster sizes of the convergence, traffic and detection figures.
    pub sizes: Vec<usize>,
    /// Crash seeds per size (detection latencies of all of them pooled into one CDF):
    /// `(size, seeds)`.
    pub crash_seeds: Vec<(usize, u64)>,
    /// Steady-state traffic window after convergence (the traffic figure's tail).
    pub steady: Duration,
    /// Loss rates (percent) of the false-positive figure.
    pub loss_pcts: Vec<f64>,
    /// Seeds per loss rate.
    pub loss_seeds: u64,
    /// Virtual time under loss per run.
    pub loss_duration: Duration,
    /// Cluster size of the loss and partition runs.
    pub small: usize,
    /// Partition seeds.
    pub partition_seeds: u64,
    /// How long each partition holds.
    pub partition_hold: Duration,
}

impl ReportOpts {
    /// The full report: 100 and 1000 members.
    pub fn full() -> Self {
        ReportOpts {
            sizes: vec![100, 1000],
            crash_seeds: vec![(100, 10), (1000, 3)],
            steady: Duration::from_secs(30),
            loss_pcts: vec![0.0, 2.0, 5.0, 10.0, 15.0, 20.0],
            loss_seeds: 3,
            loss_duration: Duration::from_secs(60),
            small: 100,
            partition_seeds: 10,
            partition_hold: Duration::from_secs(30),
        }
    }

    /// `--quick`: 100 members only, fewer seeds and shorter runs (for tests).
    pub fn quick() -> Self {
        ReportOpts {
            sizes: vec![100],
            crash_seeds: vec![(100, 2)],
            steady: Duration::from_secs(5),
            loss_pcts: vec![0.0, 10.0, 20.0],
            loss_seeds: 1,
            loss_duration: Duration::from_secs(10),
            small: 100,
            partition_seeds: 2,
            partition_hold: Duration::from_secs(10),
        }
    }

    fn runs(&self) -> usize {
        self.sizes.len()
            + self
                .crash_seeds
                .iter()
                .map(|&(_, s)| s as usize)
                .sum::<usize>()
            + self.loss_pcts.len() * self.loss_seeds as usize
            + self.partition_seeds as usize
    }
}

/// One cluster size's convergence run.
#[derive(Clone, Debug)]
pub struct ConvergeFigure {
    /// Members.
    pub nodes: usize,
    /// Virtual ms to full convergence.
    pub converged_ms: Option<f64>,
    /// (virtual ms, mean members known per node).
    pub known: Vec<(f64, f64)>,
    /// (virtual s, bytes per member per second in the second before).
    pub bytes: Vec<(f64, f64)>,
    /// Mean bytes per member per second over the steady window.
    pub steady_bytes: f64,
}

/// One loss rate's false positives.
#[derive(Clone, Debug)]
pub struct LossFigure {
    /// Loss in percent.
    pub loss_pct: f64,
    /// False `MemberFailed` events per run (mean over seeds).
    pub false_positives: f64,
    /// Suspicions per run (mean over seeds).
    pub suspicions: f64,
}

/// One partition run.
#[derive(Clone, Debug)]
pub struct PartitionFigure {
    /// Its seed.
    pub seed: u64,
    /// Virtual ms from the split until every minority node reported it.
    pub detect_ms: Option<f64>,
    /// Virtual ms from the heal until every node held every member alive.
    pub heal_ms: Option<f64>,
}

/// Everything the page shows.
#[derive(Clone, Debug)]
pub struct Figures {
    /// The options that produced it.
    pub opts: ReportOpts,
    /// Convergence and traffic per size.
    pub converge: Vec<ConvergeFigure>,
    /// Detection latencies per size, pooled over the seeds, sorted; and how many live
    /// members missed the crash (0 when every one detected it).
    pub detect: Vec<(usize, Vec<f64>, usize)>,
    /// False positives per loss rate.
    pub loss: Vec<LossFigure>,
    /// Partition runs.
    pub partition: Vec<PartitionFigure>,
    /// Wall time the runs took.
    pub wall: Duration,
}

/// Runs every scenario the page needs, calling `progress` with one line per run.
pub fn collect(opts: &ReportOpts, progress: &mut dyn FnMut(&str)) -> Figures {
    let started = Instant::now();
    let total = opts.runs();
    let mut done = 0usize;
    let mut step = |what: String, f: &mut dyn FnMut() -> String| {
        done += 1;
        let t = Instant::now();
        progress(&format!("[{done}/{total}] {what} ..."));
        let result = f();
        progress(&format!(
            "[{done}/{total}] {what}: {result} ({:.1} s)",
            t.elapsed().as_secs_f64()
        ));
    };
    let base = ScenarioOpts::default();
    let mut figures = Figures {
        opts: opts.clone(),
        converge: Vec::new(),
        detect: Vec::new(),
        loss: Vec::new(),
        partition: Vec::new(),
        wall: Duration::ZERO,
    };
    for &nodes in &opts.sizes {
        step(format!("converge nodes={nodes}"), &mut || {
            let r = converge(&ScenarioOpts {
                nodes,
                steady: opts.steady,
                ..base.clone()
            });
            let line = format!(
                "converged in {}, {:.0} B/member/s",
                ms(r.converged_ms),
                r.bytes_per_member_per_s
            );
            figures.converge.push(ConvergeFigure {
                nodes,
                converged_ms: r.converged_ms,
                known: r.known,
                bytes: r.bytes,
                steady_bytes: r.bytes_per_member_per_s,
            });
            line
        });
    }
    for &(nodes, seeds) in &opts.crash_seeds {
        let mut lat = Vec::new();
        let mut missed = 0usize;
        for seed in 1..=seeds {
            step(format!("crash nodes={nodes} seed={seed}"), &mut || {
                let r = crash(&ScenarioOpts {
                    nodes,
                    seed,
                    ..base.clone()
                });
                missed += r.live - r.detected;
                lat.extend_from_slice(&r.detect_ms);
                format!(
                    "{}/{} detected, p50 {}, p99 {}",
                    r.detected,
                    r.live,
                    ms(r.detect_p50_ms),
                    ms(r.detect_p99_ms)
                )
            });
        }
        lat.sort_by(f64::total_cmp);
        figures.detect.push((nodes, lat, missed));
    }
    for &loss_pct in &opts.loss_pcts {
        let (mut fp, mut sus) = (0u64, 0u64);
        for seed in 1..=opts.loss_seeds {
            step(
                format!("steady nodes={} loss={loss_pct}% seed={seed}", opts.small),
                &mut || {
                    let r = steady(&ScenarioOpts {
                        nodes: opts.small,
                        seed,
                        loss_pct,
                        duration: opts.loss_duration,
                        ..base.clone()
                    });
                    fp += r.false_positives;
                    sus += r.suspicions;
                    format!(
                        "{} false positives, {} suspicions",
                        r.false_positives, r.suspicions
                    )
                },
            );
        }
        let runs = opts.loss_seeds.max(1) as f64;
        figures.loss.push(LossFigure {
            loss_pct,
            false_positives: fp as f64 / runs,
            suspicions: sus as f64 / runs,
        });
    }
    for seed in 1..=opts.partition_seeds {
        step(
            format!("partition nodes={} seed={seed}", opts.small),
            &mut || {
                let r = partition(&ScenarioOpts {
                    nodes: opts.small,
                    seed,
                    hold: opts.partition_hold,
                    ..base.clone()
                });
                figures.partition.push(PartitionFigure {
                    seed,
                    detect_ms: r.partition_detect_ms,
                    heal_ms: r.heal_ms,
                });
                format!(
                    "detected in {}, healed in {}",
                    ms(r.partition_detect_ms),
                    ms(r.heal_ms)
                )
            },
        );
    }
    figures.wall = started.elapsed();
    figures
}

/// Why the page could not be written.
#[derive(Debug, thiserror::Error)]
pub enum ReportError {
    /// Creating the directory or writing a file failed.
    #[error("{path}: {source}")]
    Io {
        /// The file or directory.
        path: PathBuf,
        /// The error.
        source: std::io::Error,
    },
    /// A chart could not be drawn.
    #[error(transparent)]
    Plot(#[from] PlotError),
}

/// The charts of the page: (file name, caption, chart).
fn charts(f: &Figures) -> Vec<(&'static str, String, Chart<'static>)> {
    let cdf = |v: &[f64]| -> Vec<(f64, f64)> {
        let n = v.len() as f64;
        v.iter()
            .enumerate()
            .map(|(i, &x)| (x, (i + 1) as f64 / n))
            .collect()
    };
    let detect_seeds = |nodes: usize| {
        f.opts
            .crash_seeds
            .iter()
            .find(|&&(n, _)| n == nodes)
            .map_or(0, |&(_, s)| s)
    };
    vec![
        (
            "detection-cdf.svg",
            "Share of live members that declared a crashed member failed, against the time \
             since the crash (all members of every crash seed pooled; LAN preset)."
                .to_owned(),
            Chart {
                title: "Crash detection time (CDF)",
                x_label: "ms since the crash",
                y_label: "share of members",
                markers: false,
                log_y: false,
                series: f
                    .detect
                    .iter()
                    .map(|(nodes, lat, _)| Series {
                        name: format!("{nodes} members, {} seeds", detect_seeds(*nodes)),
                        points: cdf(lat),
                    })
                    .collect(),
            },
        ),
        (
            "convergence.svg",
            "Live members in a node's view as a share of the cluster, averaged over all nodes, \
             while the cluster forms (every node joins through node 0 within the first 100 ms)."
                .to_owned(),
            Chart {
                title: "Convergence: members known",
                x_label: "virtual ms",
                y_label: "share of the cluster known (mean)",
                markers: false,
                log_y: false,
                series: f
                    .converge
                    .iter()
                    .map(|c| Series {
                        name: format!("{} members", c.nodes),
                        points: c
                            .known
                            .iter()
                            .map(|&(t, k)| (t, k / c.nodes as f64))
                            .collect(),
                    })
                    .collect(),
            },
        ),
        (
            "gossip-bytes.svg",
            "Gossip payload bytes sent per member per second, in one-second windows from the \
             start through the steady state after convergence (log scale: the join burst is \
             two orders of magnitude above the steady state)."
                .to_owned(),
            Chart {
                title: "Gossip bytes per member per second",
                x_label: "virtual s",
                y_label: "bytes / member / s",
                markers: false,
                log_y: true,
                series: f
                    .converge
                    .iter()
                    .map(|c| Series {
                        name: format!("{} members", c.nodes),
                        points: c.bytes.clone(),
                    })
                    .collect(),
            },
        ),
        (
            "false-positives.svg",
            format!(
                "Live members declared failed (false positives) per run of {} virtual s at \
                 {} members, against uniform packet loss applied after convergence (mean of {} \
                 seed(s)).",
                f.opts.loss_duration.as_secs(),
                f.opts.small,
                f.opts.loss_seeds
            ),
            Chart {
                title: "False positives vs packet loss",
                x_label: "loss %",
                y_label: "false positives per run",
                markers: true,
                log_y: false,
                series: vec![Series {
                    name: format!("{} members", f.opts.small),
                    points: f
                        .loss
                        .iter()
                        .map(|l| (l.loss_pct, l.false_positives))
                        .collect(),
                }],
            },
        ),
        (
            "partition.svg",
            format!(
                "A 60/40 split of {} members held {} virtual s: time until every minority node \
                 reported the partition, and from the heal until every node saw every member \
                 alive, per seed (a missing point: not reached).",
                f.opts.small,
                f.opts.partition_hold.as_secs()
            ),
            Chart {
                title: "Partition detect and heal times",
                x_label: "seed",
                y_label: "virtual ms",
                markers: true,
                log_y: false,
                series: vec![
                    Series {
                        name: "detect".into(),
                        points: f
                            .partition
                            .iter()
                            .map(|p| (p.seed as f64, p.detect_ms.unwrap_or(f64::NAN)))
                            .collect(),
                    },
                    Series {
                        name: "heal".into(),
                        points: f
                            .partition
                            .iter()
                            .map(|p| (p.seed as f64, p.heal_ms.unwrap_or(f64::NAN)))
                            .collect(),
                    },
                ],
            },
        ),
    ]
}

fn ms(v: Option<f64>) -> String {
    v.map_or_else(|| "not reached".to_owned(), |x| format!("{x:.0} ms"))
}

fn quantile(sorted: &[f64], q: f64) -> Option<f64> {
    crate::scenarios::faults::percentile(sorted, q * 100.0)
}

fn tables(f: &Figures) -> String {
    let mut h = String::new();
    h.push_str("<h2>Numbers</h2>\n<table>\n<tr><th>members</th><th>converged</th><th>steady B/member/s</th><th>detect p50</th><th>p99</th><th>max</th><th>missed</th></tr>\n");
    for c in &f.converge {
        let d = f.detect.iter().find(|d| d.0 == c.nodes);
        let q = |p: f64| ms(d.and_then(|d| quantile(&d.1, p)));
        let _ = writeln!(
            h,
            "<tr><td>{}</td><td>{}</td><td>{:.0}</td><td>{}</td><td>{}</td><td>{}</td><td>{}</td></tr>",
            c.nodes,
            ms(c.converged_ms),
            c.steady_bytes,
            q(0.5),
            q(0.99),
            ms(d.and_then(|d| d.1.last().copied())),
            d.map_or(0, |d| d.2)
        );
    }
    h.push_str("</table>\n<table>\n<tr><th>loss</th><th>false positives / run</th><th>suspicions / run</th></tr>\n");
    for l in &f.loss {
        let _ = writeln!(
            h,
            "<tr><td>{}%</td><td>{:.2}</td><td>{:.1}</td></tr>",
            l.loss_pct, l.false_positives, l.suspicions
        );
    }
    h.push_str("</table>\n<table>\n<tr><th>partition seed</th><th>detect</th><th>heal</th></tr>\n");
    for p in &f.partition {
        let _ = writeln!(
            h,
            "<tr><td>{}</td><td>{}</td><td>{}</td></tr>",
            p.seed,
            ms(p.detect_ms),
            ms(p.heal_ms)
        );
    }
    h.push_str("</table>\n");
    h
}

/// Writes `out/index.html` and one SVG per chart; returns the files written.
pub fn write(f: &Figures, out: &Path) -> Result<Vec<PathBuf>, ReportError> {
    let io = |path: &Path| {
        let path = path.to_owned();
        move |source| ReportError::Io { path, source }
    };
    std::fs::create_dir_all(out).map_err(io(out))?;
    let mut html = String::from(
        "<!doctype html>\n<html><head><meta charset=\"utf-8\"><title>Shoal simulator report</title>\n\
         <style>body{font-family:sans-serif;max-width:820px;margin:2em auto}\
         td,th{padding:2px 10px;text-align:right}table{border-collapse:collapse;margin:1em 0}\
         tr:nth-child(even){background:#f2f2f2}</style></head><body>\n\
         <h1>Shoal simulator report</h1>\n",
    );
    let _ = writeln!(
        html,
        "<p>Deterministic runs of <code>shoal-sim</code> in virtual time, LAN preset and link \
         ({}). Regenerate with <code>cargo run -p shoal-sim --release -- report --out DIR{}</code>; \
         the runs took {:.0} s of wall time on the machine that wrote this page.</p>",
        if f.opts.sizes.len() > 1 {
            "full report"
        } else {
            "quick report: 100 members, fewer seeds"
        },
        if f.opts.sizes.len() > 1 { "" } else { " --quick" },
        f.wall.as_secs_f64()
    );
    let mut files = Vec::new();
    for (file, caption, chart) in charts(f) {
        let svg = render(&chart, (760, 420))?;
        let path = out.join(file);
        std::fs::write(&path, svg).map_err(io(&path))?;
        let _ = writeln!(
            html,
            "<h2>{}</h2>\n<p>{caption}</p>\n<img src=\"{file}\" alt=\"{}\">",
            chart.title, chart.title
        );
        files.push(path);
    }
    html.push_str(&tables(f));
    html.push_str("</body></html>\n");
    let index = out.join("index.html");
    std::fs::write(&index, html).map_err(io(&index))?;
    files.push(index);
    Ok(files)
}

#[cfg(test)]
mod tests {
    use super::*;

    /// Points in an SVG's data polylines (plotters draws a line series as one polyline, in
    /// the 2-pixel stroke `plot` gives series; axes and ticks are 1 pixel).
    fn polyline_points(svg: &str) -> usize {
        svg.split("<polyline")
            .skip(1)
            .filter(|p| {
                p.split('>')
                    .next()
                    .is_some_and(|t| t.contains("stroke-width=\"2\""))
            })
            .map(|p| {
                p.split("points=\"")
                    .nth(1)
                    .and_then(|r| r.split('"').next())
                    .map_or(0, |pts| pts.split_whitespace().count())
            })
            .sum()
    }

    #[test]
    fn quick_report_writes_the_page_and_every_plot_with_data() {
        let mut lines = Vec::new();
        let f = collect(&ReportOpts::quick(), &mut |l| lines.push(l.to_owned()));
        let runs = ReportOpts::quick().runs();
        assert_eq!(lines.len(), 2 * runs, "a start and an end line per run");
        assert!(lines
            .last()
            .unwrap()
            .starts_with(&format!("[{runs}/{runs}]")));

        // The data behind the plots is real: convergence reached, every member detected
        // the crash, traffic flowed, the partition was seen and healed.
        let c = &f.converge[0];
        assert!(c.converged_ms.is_some());
        assert_eq!(c.known.last().map(|p| p.1), Some(100.0));
        assert!(c.known.first().is_some_and(|p| p.1 < 100.0));
        assert!(c.bytes.len() >= 5 && c.bytes.iter().all(|p| p.1 > 0.0));
        let (nodes, lat, missed) = &f.detect[0];
        assert_eq!((*nodes, lat.len(), *missed), (100, 2 * 99, 0));
        assert!(lat.windows(2).all(|w| w[0] <= w[1]) && lat[0] > 0.0);
        assert_eq!(f.loss.len(), 3);
        assert!(f.loss[2].suspicions >= f.loss[0].suspicions);
        assert!(f
            .partition
            .iter()
            .all(|p| p.detect_ms.is_some() && p.heal_ms.is_some()));

        let dir = std::env::temp_dir().join(format!("shoal-sim-report-{}", std::process::id()));
        let files = write(&f, &dir).unwrap();
        assert_eq!(files.len(), 6);
        let index = std::fs::read_to_string(dir.join("index.html")).unwrap();
        for file in &files[..5] {
            let name = file.file_name().unwrap().to_str().unwrap();
            assert!(index.contains(&format!("src=\"{name}\"")), "{name}");
            let svg = std::fs::read_to_string(file).unwrap();
            assert!(svg.starts_with("<svg"), "{name}");
            assert!(polyline_points(&svg) >= 2, "{name} has no line");
        }
        let cdf = std::fs::read_to_string(dir.join("detection-cdf.svg")).unwrap();
        assert!(polyline_points(&cdf) >= 2 * 99, "one point per detection");
        assert!(index.contains("<td>100</td>"));
        std::fs::remove_dir_all(&dir).unwrap();
    }
}
