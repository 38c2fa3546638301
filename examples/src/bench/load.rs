//! The closed-loop load generator both modes share: exactly `inflight` calls outstanding
//! (one task per slot, each starting its next call when the last one ends) until the
//! deadline, each call's latency counted in one [`SharedHistogram`] all slots share.
//!
//! Bounded in time and count: no call starts after the deadline; each slot stops after
//! `max_calls_per_slot` calls or `MAX_CONSECUTIVE_ERRORS` failures in a row; slots still
//! busy `grace` after the deadline are aborted and their unfinished call counted as an
//! error. There is no per-call timer, so the hot path costs two clock reads and a few
//! uncontended atomic adds.

use super::histogram::{Histogram, SharedHistogram};
use std::future::Future;
use std::sync::atomic::{AtomicU64, Ordering};
use std::sync::{Arc, Mutex};
use std::time::{Duration, Instant};

/// A slot gives up after this many failed calls in a row (the target is gone).
pub const MAX_CONSECUTIVE_ERRORS: u64 = 1000;

/// One way of making an echo call. `slot` is the caller's slot number (0..inflight), so a
/// target can spread slots over its connections.
pub trait CallTarget: Send + Sync + 'static {
    /// Makes one call and checks the reply; `Err` carries a short description.
    fn call(&self, slot: usize) -> impl Future<Output = Result<(), String>> + Send;
}

/// The check both modes make on an echo's reply: it is as long as what was sent.
pub fn check_echo(got: usize, sent: usize) -> Result<(), String> {
    if got == sent {
        Ok(())
    } else {
        Err(format!("echo returned {got} bytes, sent {sent}"))
    }
}

/// How to run the load.
#[derive(Debug, Clone)]
pub struct LoadPlan {
    /// Calls in flight.
    pub inflight: usize,
    /// How long new calls are started.
    pub duration: Duration,
    /// How long slots may take to finish their last call after the deadline.
    pub grace: Duration,
    /// Upper bound on calls per slot.
    pub max_calls_per_slot: u64,
    /// Print progress to stderr once a second.
    pub progress: bool,
}

/// What every slot records into.
#[derive(Default)]
struct Stats {
    hist: SharedHistogram,
    errors: AtomicU64,
    /// Off the hot path: only failed calls take it.
    last_error: Mutex<Option<String>>,
}

/// What a run measured.
#[derive(Debug, Clone)]
pub struct LoadResult {
    /// Latencies of successful calls.
    pub hist: Histogram,
    /// Successful calls.
    pub ok: u64,
    /// Failed calls (including calls still unfinished at the end of the grace period).
    pub errors: u64,
    /// From the first call to the end of the last one.
    pub elapsed: Duration,
    /// One of the error messages, if any.
    pub sample_error: Option<String>,
}

impl LoadResult {
    /// Successful calls per second.
    pub fn rps(&self) -> f64 {
        let s = self.elapsed.as_secs_f64();
        if s > 0.0 {
            self.ok as f64 / s
        } else {
            0.0
        }
    }
}

/// Runs `plan` against `target`, on the caller's runtime (tokio or smol, see [`super::rt`]).
pub async fn run<T: CallTarget>(target: Arc<T>, plan: &LoadPlan) -> LoadResult {
    let start = Instant::now();
    let deadline = start + plan.duration;
    let stats = Arc::new(Stats::default());
    let mut handles = Vec::with_capacity(plan.inflight);
    for slot in 0..plan.inflight {
        let target = target.clone();
        let stats = stats.clone();
        let max_calls = plan.max_calls_per_slot;
        handles.push(super::rt::spawn(async move {
            let mut calls = 0u64;
            let mut streak = 0u64;
            loop {
                let t0 = Instant::now();
                if t0 >= deadline || calls >= max_calls || streak >= MAX_CONSECUTIVE_ERRORS {
                    break;
                }
                calls += 1;
                let r = target.call(slot).await;
                let micros = t0.elapsed().as_micros() as u64;
                match r {
                    Ok(()) => {
                        streak = 0;
                        stats.hist.record(micros);
                    }
                    Err(e) => {
                        streak += 1;
                        stats.errors.fetch_add(1, Ordering::Relaxed);
                        *stats.last_error.lock().unwrap_or_else(|p| p.into_inner()) = Some(e);
                    }
                }
            }
        }));
    }

    let progress = plan.progress.then(|| {
        let stats = stats.clone();
        super::rt::spawn(async move {
            let mut next = start;
            let mut last = 0u64;
            loop {
                next += Duration::from_secs(1);
                super::rt::sleep_until(next).await;
                let (ok, err) = (stats.hist.len(), stats.errors.load(Ordering::Relaxed));
                eprintln!(
                    "[bench] {:>5.1}s  calls {ok:>10}  rps {:>9}  errors {err}",
                    start.elapsed().as_secs_f64(),
                    ok - last,
                );
                last = ok;
            }
        })
    });

    let hard = deadline + plan.grace;
    let mut unfinished = 0u64;
    for mut h in handles {
        if super::rt::timeout_at(hard, &mut h).await.is_none() {
            h.abort();
            unfinished += 1;
        }
    }
    let elapsed = start.elapsed();
    if let Some(p) = progress {
        p.abort();
    }

    let hist: Histogram = stats.hist.snapshot();
    let errors = unfinished + stats.errors.load(Ordering::Relaxed);
    let sample_error = if unfinished > 0 {
        Some(format!(
            "{unfinished} calls unfinished {:?} after the deadline",
            plan.grace
        ))
    } else {
        stats
            .last_error
            .lock()
            .unwrap_or_else(|p| p.into_inner())
            .clone()
    };
    LoadResult {
        ok: hist.len(),
        hist,
        errors,
        elapsed,
        sample_error,
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    struct Counting {
        calls: AtomicU64,
        fail_every: u64,
    }

    impl CallTarget for Counting {
        async fn call(&self, _slot: usize) -> Result<(), String> {
            let n = self.calls.fetch_add(1, Ordering::Relaxed) + 1;
            tokio::task::yield_now().await;
            if self.fail_every > 0 && n % self.fail_every == 0 {
                Err("boom".into())
            } else {
                Ok(())
            }
        }
    }

    #[test]
    fn an_echo_of_another_length_is_an_error() {
        assert_eq!(check_echo(5, 5), Ok(()));
        assert_eq!(
            check_echo(4, 5),
            Err("echo returned 4 bytes, sent 5".to_owned())
        );
    }

    #[tokio::test(flavor = "current_thread")]
    async fn bounded_by_call_count_and_counts_errors() {
        let target = Arc::new(Counting {
            calls: AtomicU64::new(0),
            fail_every: 10,
        });
        let plan = LoadPlan {
            inflight: 4,
            duration: Duration::from_secs(60),
            grace: Duration::from_secs(5),
            max_calls_per_slot: 50,
            progress: false,
        };
        let r = run(target.clone(), &plan).await;
        assert_eq!(target.calls.load(Ordering::Relaxed), 200);
        assert_eq!(r.ok + r.errors, 200);
        assert_eq!(r.errors, 20);
        assert_eq!(r.sample_error.as_deref(), Some("boom"));
    }
}
