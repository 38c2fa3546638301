//! Many swarm seeds at once: the CI sweep and its timing.
//!
//! Each seed is one [`try_vopr`] run, a pure function of the seed, so seeds are independent
//! and may run on several threads; the results come back in seed order whatever the
//! threads did, and every seed's trace hash is the one a lone `SIM_SEED=<n>` run gives.
//! Threads only decide *when* a seed runs, never what it computes. A panic inside a seed
//! is caught and reported as that seed's failure (TigerBeetle's exit code 127), so one bad
//! seed does not hide the others.

use crate::mem::cpu_time;
use crate::vopr::{try_vopr, FailureKind, VoprOptions};
use std::panic::{catch_unwind, AssertUnwindSafe};
use std::sync::atomic::{AtomicU64, Ordering};
use std::sync::Mutex;
use std::time::{Duration, Instant};

/// How one seed ended.
#[derive(Clone, Debug, PartialEq, Eq)]
pub enum Outcome {
    /// Converged; its event-trace hash.
    Ok {
        /// The run's event-trace hash.
        trace_hash: u64,
    },
    /// A checker fired or liveness failed; the failure's text (with `SIM_SEED=`).
    Failed {
        /// Correctness or liveness.
        kind: FailureKind,
        /// The failure, as printed.
        detail: String,
    },
    /// The run panicked.
    Panicked,
}

impl Outcome {
    /// TigerBeetle's exit code for this outcome: 0, 127 (panic), 128 (liveness),
    /// 129 (correctness).
    pub fn exit_code(&self) -> u8 {
        match self {
            Outcome::Ok { .. } => 0,
            Outcome::Panicked => 127,
            Outcome::Failed {
                kind: FailureKind::Liveness,
                ..
            } => 128,
            Outcome::Failed {
                kind: FailureKind::Correctness,
                ..
            } => 129,
        }
    }
}

/// One seed's result and how long it took on the wall clock.
#[derive(Clone, Debug)]
pub struct SeedResult {
    /// The seed.
    pub seed: u64,
    /// How it ended.
    pub outcome: Outcome,
    /// Wall time of this seed alone.
    pub wall: Duration,
    /// CPU time its thread spent on it, where the platform reports it (see
    /// [`crate::mem::cpu_time`]): unlike `wall`, not inflated by other work on the machine.
    pub cpu: Option<Duration>,
}

/// A sweep's results, in seed order.
#[derive(Clone, Debug)]
pub struct Sweep {
    /// Per seed, ascending.
    pub results: Vec<SeedResult>,
    /// Wall time of the whole sweep.
    pub wall: Duration,
    /// Threads used.
    pub jobs: usize,
}

impl Sweep {
    /// The failed or panicked seeds.
    pub fn failures(&self) -> impl Iterator<Item = &SeedResult> + '_ {
        self.results
            .iter()
            .filter(|r| !matches!(r.outcome, Outcome::Ok { .. }))
    }

    /// The `q` quantile (0..=1) of per-seed wall time, nearest rank.
    pub fn wall_quantile(&self, q: f64) -> Duration {
        let mut w: Vec<Duration> = self.results.iter().map(|r| r.wall).collect();
        w.sort_unstable();
        if w.is_empty() {
            return Duration::ZERO;
        }
        let rank = ((q.clamp(0.0, 1.0) * w.len() as f64).ceil() as usize).clamp(1, w.len());
        w[rank - 1]
    }

    /// Total CPU time over all seeds (seeds whose CPU time is unknown count zero).
    pub fn cpu_total(&self) -> Duration {
        self.results.iter().filter_map(|r| r.cpu).sum()
    }

    /// Mean per-seed wall time.
    pub fn wall_mean(&self) -> Duration {
        let n = self.results.len().max(1) as u32;
        self.results.iter().map(|r| r.wall).sum::<Duration>() / n
    }

    /// A hash over every seed's outcome in seed order: equal sweeps give equal hashes,
    /// whatever the thread count.
    pub fn hash(&self) -> u64 {
        let mut h = 0xcbf2_9ce4_8422_2325u64;
        for r in &self.results {
            let v = match &r.outcome {
                Outcome::Ok { trace_hash } => *trace_hash,
                other => u64::from(other.exit_code()),
            };
            for x in [r.seed, v] {
                h = (h ^ x).wrapping_mul(0x0000_0100_0000_01b3);
            }
        }
        h
    }
}

/// Runs `seeds` (with at most `steps` chaos steps each) on `jobs` threads (at least one).
/// Seeds are handed out in ascending order; results come back in seed order.
pub fn sweep(seeds: std::ops::RangeInclusive<u64>, steps: u64, jobs: usize) -> Sweep {
    let started = Instant::now();
    let (first, last) = (*seeds.start(), *seeds.end());
    let jobs = jobs.max(1);
    let next = AtomicU64::new(first);
    let results = Mutex::new(Vec::new());
    let opts = VoprOptions {
        verbose: false,
        ..VoprOptions::default()
    };
    std::thread::scope(|s| {
        for _ in 0..jobs {
            s.spawn(|| loop {
                let seed = next.fetch_add(1, Ordering::Relaxed);
                if seed > last || seed < first {
                    break;
                }
                let t = Instant::now();
                let cpu0 = cpu_time();
                let outcome = match catch_unwind(AssertUnwindSafe(|| try_vopr(seed, steps, &opts)))
                {
                    Ok(Ok(r)) => Outcome::Ok {
                        trace_hash: r.trace_hash,
                    },
                    Ok(Err(f)) => Outcome::Failed {
                        kind: f.kind.clone(),
                        detail: f.to_string(),
                    },
                    Err(_) => Outcome::Panicked,
                };
                let r = SeedResult {
                    seed,
                    outcome,
                    wall: t.elapsed(),
                    cpu: cpu_time().zip(cpu0).map(|(b, a)| b.saturating_sub(a)),
                };
                // A poisoned lock only means another seed's thread panicked while pushing,
                // which cannot happen (push does not panic); take the data regardless.
                results.lock().unwrap_or_else(|e| e.into_inner()).push(r);
            });
        }
    });
    let mut results = results.into_inner().unwrap_or_else(|e| e.into_inner());
    results.sort_by_key(|r| r.seed);
    Sweep {
        results,
        wall: started.elapsed(),
        jobs,
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn threads_change_nothing_but_the_clock() {
        let one = sweep(1..=6, 2_000_000, 1);
        let three = sweep(1..=6, 2_000_000, 3);
        assert_eq!(one.results.len(), 6);
        let seeds: Vec<u64> = three.results.iter().map(|r| r.seed).collect();
        assert_eq!(seeds, (1..=6).collect::<Vec<_>>(), "results in seed order");
        assert_eq!(one.hash(), three.hash());
        assert_eq!(one.failures().count(), 0);
        for r in &one.results {
            let lone = try_vopr(r.seed, 2_000_000, &VoprOptions::default()).expect("seed passes");
            assert_eq!(
                r.outcome,
                Outcome::Ok {
                    trace_hash: lone.trace_hash
                },
                "seed {} in a sweep runs as it runs alone",
                r.seed
            );
        }
        assert!(one.wall_quantile(1.0) >= one.wall_quantile(0.5));
        assert!(one.wall_quantile(1.0) >= one.wall_mean());
    }
}
