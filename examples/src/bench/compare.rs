//! `--compare N`: N rounds of (bare quinn, then Shoal) with the same settings, alternated
//! so that both sides see the same machine conditions, and the medians of the per-round
//! ratios. On a shared 2-core VM single runs of either side vary by ±10 %; the ratio of
//! two runs made back to back varies much less, and its median over rounds is the figure
//! the targets are about.

use super::{run, BenchError, BenchOptions, BenchReport, Mode};
use serde::Serialize;

/// The outcome of a comparison; with `--json` it is the last line of stdout. `rps`,
/// `p50_us`, `p99_us` and `errors` are Shoal's (medians over rounds; errors summed), so
/// the line has the same keys as a single run's.
#[derive(Debug, Clone, PartialEq, Serialize)]
pub struct Comparison {
    /// Always `"compare"`.
    pub mode: &'static str,
    /// Rounds run.
    pub rounds: usize,
    /// Shoal's median requests per second.
    pub rps: f64,
    /// Shoal's median p50 latency, microseconds.
    pub p50_us: u64,
    /// Shoal's median p99 latency, microseconds.
    pub p99_us: u64,
    /// Shoal's failed calls, all rounds.
    pub errors: u64,
    /// Bare quinn's median requests per second.
    pub quinn_rps: f64,
    /// Bare quinn's median p50 latency, microseconds.
    pub quinn_p50_us: u64,
    /// Bare quinn's failed calls, all rounds.
    pub quinn_errors: u64,
    /// Median over rounds of Shoal rps / quinn rps.
    pub rps_ratio: f64,
    /// Median over rounds of Shoal p50 / quinn p50.
    pub p50_ratio: f64,
    /// Every round's (quinn rps, Shoal rps).
    pub rounds_rps: Vec<(f64, f64)>,
    /// Calls in flight.
    pub inflight: usize,
    /// Payload bytes.
    pub payload: usize,
    /// Client connections.
    pub connections: usize,
    /// Seconds of load per run.
    pub secs: u64,
}

fn median_f(mut v: Vec<f64>) -> f64 {
    v.sort_by(f64::total_cmp);
    match v.len() {
        0 => 0.0,
        n if n % 2 == 1 => v[n / 2],
        n => (v[n / 2 - 1] + v[n / 2]) / 2.0,
    }
}

fn median_u(mut v: Vec<u64>) -> u64 {
    v.sort_unstable();
    v.get(v.len() / 2).copied().unwrap_or(0)
}

fn round3(x: f64) -> f64 {
    (x * 1000.0).round() / 1000.0
}

/// Runs `rounds` alternated pairs with `opts` (its mode is ignored).
pub fn compare(opts: &BenchOptions, rounds: usize) -> Result<Comparison, BenchError> {
    if rounds == 0 {
        return Err(BenchError::InvalidOptions(
            "--compare needs at least one round".into(),
        ));
    }
    let mut pairs: Vec<(BenchReport, BenchReport)> = Vec::with_capacity(rounds);
    for i in 0..rounds {
        let quinn = run(&BenchOptions {
            mode: Mode::BaselineQuinn,
            ..opts.clone()
        })?;
        let shoal = run(&BenchOptions {
            mode: Mode::Shoal,
            ..opts.clone()
        })?;
        eprintln!(
            "[compare] round {}/{rounds}: quinn {:.0} rps p50 {} us | shoal {:.0} rps p50 {} us | ratio {:.3}",
            i + 1,
            quinn.rps,
            quinn.p50_us,
            shoal.rps,
            shoal.p50_us,
            shoal.rps / quinn.rps.max(1.0),
        );
        pairs.push((quinn, shoal));
    }
    let ratio = |f: &dyn Fn(&BenchReport) -> f64| {
        median_f(
            pairs
                .iter()
                .map(|(q, s)| f(s) / f(q).max(f64::MIN_POSITIVE))
                .collect(),
        )
    };
    Ok(Comparison {
        mode: "compare",
        rounds,
        rps: median_f(pairs.iter().map(|(_, s)| s.rps).collect()),
        p50_us: median_u(pairs.iter().map(|(_, s)| s.p50_us).collect()),
        p99_us: median_u(pairs.iter().map(|(_, s)| s.p99_us).collect()),
        errors: pairs.iter().map(|(_, s)| s.errors).sum(),
        quinn_rps: median_f(pairs.iter().map(|(q, _)| q.rps).collect()),
        quinn_p50_us: median_u(pairs.iter().map(|(q, _)| q.p50_us).collect()),
        quinn_errors: pairs.iter().map(|(q, _)| q.errors).sum(),
        rps_ratio: round3(ratio(&|r| r.rps)),
        p50_ratio: round3(ratio(&|r| r.p50_us as f64)),
        rounds_rps: pairs.iter().map(|(q, s)| (q.rps, s.rps)).collect(),
        inflight: opts.inflight,
        payload: opts.payload,
        connections: opts.connections,
        secs: opts.secs,
    })
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn medians_of_odd_and_even_counts() {
        assert_eq!(median_f(vec![3.0, 1.0, 2.0]), 2.0);
        assert_eq!(median_f(vec![4.0, 1.0, 2.0, 3.0]), 2.5);
        assert_eq!(median_f(vec![]), 0.0);
        assert_eq!(median_u(vec![9, 1, 5]), 5);
    }
}
