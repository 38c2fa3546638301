//! The Phi Accrual failure detector (Hayashibara et al., 2004), in Akka's form.
//!
//! **Rule: phi is a pure function of the inter-arrival window and `now`.** Nothing else feeds
//! it: no timer, no clock read, no randomness. Two detectors that saw the same heartbeats give
//! the same phi at the same instant, which is what makes the simulator reproducible.
//!
//! # The model
//!
//! Heartbeat inter-arrival times are modelled as a normal distribution with the window's mean
//! and standard deviation. Given the time since the last heartbeat, phi is
//! `-log10(P(the next heartbeat is still to come after this long))`: phi 1 means a 10% chance
//! that the subject is fine and merely late, phi 8 means 10^-8.
//!
//! As in Akka's `PhiAccrualFailureDetector`:
//! - the tail probability uses the logistic approximation of the normal CDF,
//!   `1 / (1 + e^(-y (1.5976 + 0.070566 y^2)))` with `y = (elapsed - mean) / std_dev`;
//! - the standard deviation is floored at [`PhiConfig::min_std_dev`], so a perfectly regular
//!   heartbeat (std dev 0) does not make the first microsecond of lateness infinitely suspicious;
//! - [`PhiConfig::acceptable_heartbeat_pause`] is added to the mean, shifting the whole curve
//!   right so an expected stall (GC, a busy event loop) costs nothing;
//! - the window is seeded with two samples around
//!   [`PhiConfig::first_heartbeat_estimate`] (mean ± a quarter), so phi is meaningful after the
//!   very first heartbeat, before any interval has been measured.
//!
//! # Differences from rpcnet and Akka
//!
//! - **No cap.** rpcnet clamped phi at 10, so a threshold of 10 or more could never fire. Here
//!   phi is computed as `softplus(z) / ln 10` with `z = y (1.5976 + 0.070566 y^2)`, which is the
//!   same quantity as `-log10(1 - cdf)` but never rounds to `log10(0) = -inf`; it keeps growing
//!   (roughly with the cube of the silence) and is always finite.
//! - **Exact running sums.** Intervals are whole microseconds and the sums are `u128`, so adding
//!   and evicting samples never drifts, and the variance `(n·Σx² − (Σx)²) / n²` is computed
//!   exactly before one final conversion to `f64`. [`PhiDetector::heartbeat`] and
//!   [`PhiDetector::phi`] are O(1).
//! - **Bounded inputs.** A single interval is clamped to 2^40 µs (about 12.7 days) and the
//!   window to [`MAX_SAMPLES_LIMIT`] samples, which keeps the exact sums inside `u128`.

use crate::{ConfigError, Timestamp};
use core::time::Duration;
use std::collections::VecDeque;

/// Longest inter-arrival interval the window records, in microseconds (2^40, about 12.7 days).
/// Longer silences are recorded as this; they are already "dead" by any sane threshold, and the
/// clamp keeps the exact `u128` sums from overflowing.
const MAX_INTERVAL_MICROS: u64 = 1 << 40;

/// Largest [`PhiConfig::max_samples`] that [`PhiConfig::validate`] accepts. With intervals
/// clamped to 2^40 µs, `n · Σx²` stays below 2^112, so the variance is exact in `u128`.
pub const MAX_SAMPLES_LIMIT: usize = 1 << 16;

/// Coefficients of Akka's logistic approximation of the standard normal CDF.
const LOGISTIC_A: f64 = 1.5976;
const LOGISTIC_B: f64 = 0.070566;

/// Tuning of one [`PhiDetector`]. Build with [`PhiConfig::lan`] / [`PhiConfig::wan`] (or
/// `Default`, which is LAN) and adjust; [`PhiConfig::validate`] names the first bad field.
#[derive(Clone, Debug, PartialEq)]
pub struct PhiConfig {
    /// Phi at or above which the subject is considered unavailable. 8 means the silence had
    /// about a 10^-8 chance under the observed history. Higher is slower but fewer false
    /// positives; the node follows a crossing with indirect probes anyway.
    pub threshold: f64,
    /// Most inter-arrival intervals kept. A bounded window adapts to a link that changed
    /// (a new route, a loaded host) and bounds memory per watched subject.
    pub max_samples: usize,
    /// Floor on the standard deviation. Without it a very regular heartbeat makes phi explode
    /// on the first few milliseconds of lateness. 100 ms suits a LAN.
    pub min_std_dev: Duration,
    /// Extra silence tolerated on top of the mean before phi starts to rise (stop-the-world
    /// pauses, a saturated event loop). Added to the mean.
    pub acceptable_heartbeat_pause: Duration,
    /// The interval assumed before any has been measured: set it to the heartbeat interval.
    pub first_heartbeat_estimate: Duration,
}

impl PhiConfig {
    /// Local area network: threshold 8, 200 samples, 100 ms std dev floor, 1 s acceptable pause,
    /// 1 s heartbeat. With a steady 1 s heartbeat phi crosses 8 about 2.5 s after the last one.
    pub fn lan() -> Self {
        PhiConfig {
            threshold: 8.0,
            max_samples: 200,
            min_std_dev: Duration::from_millis(100),
            acceptable_heartbeat_pause: Duration::from_secs(1),
            first_heartbeat_estimate: Duration::from_secs(1),
        }
    }

    /// Wide area network: more jitter and longer stalls, so a wider std dev floor (300 ms) and
    /// a 3 s acceptable pause (Akka cluster's default).
    pub fn wan() -> Self {
        PhiConfig {
            min_std_dev: Duration::from_millis(300),
            acceptable_heartbeat_pause: Duration::from_secs(3),
            ..PhiConfig::lan()
        }
    }

    /// Checks every field; the error names the first bad one.
    pub fn validate(&self) -> Result<(), ConfigError> {
        fn bad(field: &'static str, reason: &'static str) -> Result<(), ConfigError> {
            Err(ConfigError::Invalid { field, reason })
        }
        if !self.threshold.is_finite() || self.threshold <= 0.0 {
            return bad("threshold", "must be a finite number above 0");
        }
        if self.max_samples == 0 || self.max_samples > MAX_SAMPLES_LIMIT {
            return bad("max_samples", "must be 1 to 65536");
        }
        if self.min_std_dev < Duration::from_micros(1) {
            return bad("min_std_dev", "must be at least 1 microsecond");
        }
        if self.first_heartbeat_estimate < Duration::from_micros(1) {
            return bad("first_heartbeat_estimate", "must be at least 1 microsecond");
        }
        if self.acceptable_heartbeat_pause > Duration::from_micros(MAX_INTERVAL_MICROS) {
            return bad(
                "acceptable_heartbeat_pause",
                "must be at most 2^40 microseconds",
            );
        }
        Ok(())
    }
}

impl Default for PhiConfig {
    fn default() -> Self {
        PhiConfig::lan()
    }
}

fn micros(d: Duration) -> u64 {
    u64::try_from(d.as_micros()).unwrap_or(u64::MAX)
}

/// `ln(1 + e^z)` without overflow for large `z` or loss of precision for very negative `z`.
fn softplus(z: f64) -> f64 {
    z.max(0.0) + (-z.abs()).exp().ln_1p()
}

/// Mean (pause included) and floored standard deviation of a window: everything phi needs
/// besides the elapsed time.
#[derive(Clone, Copy)]
struct Curve {
    mean: f64,
    std_dev: f64,
}

impl Curve {
    /// Phi at `now` for a last heartbeat at `last`: the logistic approximation of the normal
    /// tail, as a decimal exponent (`PhiDetector::phi` is exactly this).
    fn phi(self, last: Timestamp, now: Timestamp) -> f64 {
        let elapsed = now.as_micros().saturating_sub(last.as_micros()) as f64;
        let y = (elapsed - self.mean) / self.std_dev;
        let z = y * (LOGISTIC_A + LOGISTIC_B * y * y);
        let phi = softplus(z) / core::f64::consts::LN_10;
        if phi.is_nan() {
            0.0
        } else {
            phi.min(f64::MAX)
        }
    }

    /// Roughly how many microseconds of silence take phi to the threshold whose standardised
    /// crossing is `y` (see [`crossing_y`]). Only a starting point for the exact search, so
    /// its rounding does not matter; `None` if it is not a finite, non-negative number.
    fn crossing_estimate(self, y: f64) -> Option<u64> {
        let elapsed = self.mean + y * self.std_dev;
        (elapsed.is_finite() && elapsed >= 0.0).then(|| elapsed.min(u64::MAX as f64) as u64)
    }
}

/// The standardised silence `y` at which phi reaches `threshold`, by the closed-form inverse
/// (softplus, then the cubic in y by Newton's method). It depends on the threshold alone, so
/// a detector solves it once, not on every heartbeat.
fn crossing_y(threshold: f64) -> f64 {
    // softplus(z) = threshold·ln 10  ⇔  z = ln(e^(threshold·ln 10) − 1).
    let target = threshold * core::f64::consts::LN_10;
    let z = if target > 30.0 {
        target
    } else {
        target.exp_m1().ln()
    };
    // Solve y·(A + B·y²) = z; the left side is increasing, Newton from y = z/A converges.
    let mut y = z / LOGISTIC_A;
    for _ in 0..8 {
        let f = y * (LOGISTIC_A + LOGISTIC_B * y * y) - z;
        let df = LOGISTIC_A + 3.0 * LOGISTIC_B * y * y;
        y -= f / df;
    }
    y
}

/// One observer's accrual detector for one subject.
///
/// Feed it [`heartbeat`](Self::heartbeat) on every heartbeat (or ack) from the subject; read
/// [`phi`](Self::phi) or [`is_available`](Self::is_available) whenever needed, and arm a timer at
/// [`unavailable_at`](Self::unavailable_at) to learn when phi will cross the threshold.
#[derive(Clone, Debug)]
pub struct PhiDetector {
    threshold: f64,
    /// [`crossing_y`] of `threshold`: where [`unavailable_at`](Self::unavailable_at) starts
    /// its search, in standard deviations past the mean.
    crossing_y: f64,
    max_samples: usize,
    min_std_dev_us: f64,
    pause_us: f64,
    /// Inter-arrival intervals in microseconds, oldest first; never longer than `max_samples`.
    intervals: VecDeque<u64>,
    /// Σ intervals.
    sum: u128,
    /// Σ intervals².
    sum_sq: u128,
    last: Option<Timestamp>,
}

impl PhiDetector {
    /// A detector with no heartbeat yet. Out-of-range fields are clamped to the nearest valid
    /// value rather than rejected (a NaN or non-positive threshold becomes 8), so this never
    /// panics; call [`PhiConfig::validate`] first to reject a bad config instead.
    pub fn new(config: &PhiConfig) -> Self {
        let threshold = if config.threshold.is_finite() && config.threshold > 0.0 {
            config.threshold
        } else {
            8.0
        };
        let max_samples = config.max_samples.clamp(1, MAX_SAMPLES_LIMIT);
        let mut d = PhiDetector {
            threshold,
            crossing_y: crossing_y(threshold),
            max_samples,
            min_std_dev_us: micros(config.min_std_dev).max(1) as f64,
            pause_us: micros(config.acceptable_heartbeat_pause).min(MAX_INTERVAL_MICROS) as f64,
            intervals: VecDeque::with_capacity(max_samples),
            sum: 0,
            sum_sq: 0,
            last: None,
        };
        // Akka's seeding: two samples at mean ± mean/4, so the first heartbeat already has a
        // plausible mean and spread to be judged against.
        let estimate = micros(config.first_heartbeat_estimate).clamp(1, MAX_INTERVAL_MICROS);
        let spread = estimate / 4;
        d.push(estimate - spread);
        d.push(estimate + spread);
        d
    }

    /// Records a heartbeat from the subject at `now`. The first heartbeat only starts the clock;
    /// each later one adds the interval since the previous one to the window, evicting the
    /// oldest when full. A `now` not strictly after the previous heartbeat is ignored (a
    /// duplicate or reordered delivery carries no new timing information). Returns whether the
    /// heartbeat was recorded.
    pub fn heartbeat(&mut self, now: Timestamp) -> bool {
        match self.last {
            Some(last) if now <= last => false,
            Some(last) => {
                let interval = now.as_micros().saturating_sub(last.as_micros());
                self.push(interval.min(MAX_INTERVAL_MICROS));
                self.last = Some(now);
                true
            }
            None => {
                self.last = Some(now);
                true
            }
        }
    }

    fn push(&mut self, interval: u64) {
        if self.intervals.len() >= self.max_samples {
            if let Some(old) = self.intervals.pop_front() {
                let old = u128::from(old);
                self.sum = self.sum.saturating_sub(old);
                self.sum_sq = self.sum_sq.saturating_sub(old * old);
            }
        }
        let x = u128::from(interval);
        self.intervals.push_back(interval);
        self.sum = self.sum.saturating_add(x);
        self.sum_sq = self.sum_sq.saturating_add(x * x);
    }

    fn mean_us(&self) -> f64 {
        let n = self.intervals.len() as u128;
        if n == 0 {
            return 0.0;
        }
        self.sum as f64 / n as f64
    }

    fn std_dev_us(&self) -> f64 {
        let n = self.intervals.len() as u128;
        if n == 0 {
            return 0.0;
        }
        // Exact: n·Σx² ≥ (Σx)² by Cauchy–Schwarz, and both fit in u128 (see MAX_SAMPLES_LIMIT).
        let num = n
            .saturating_mul(self.sum_sq)
            .saturating_sub(self.sum.saturating_mul(self.sum));
        let var = num as f64 / (n * n) as f64;
        var.sqrt()
    }

    /// The suspicion level at `now`: 0 before any heartbeat, then a non-negative, finite value
    /// that never decreases as `now` advances without a heartbeat and grows without bound.
    pub fn phi(&self, now: Timestamp) -> f64 {
        let Some(last) = self.last else {
            return 0.0;
        };
        self.curve().phi(last, now)
    }

    /// The window's statistics, computed once for many evaluations of phi.
    fn curve(&self) -> Curve {
        Curve {
            mean: self.mean_us() + self.pause_us,
            std_dev: self.std_dev_us().max(self.min_std_dev_us),
        }
    }

    /// Whether phi at `now` is still below the threshold. Always true before any heartbeat: a
    /// subject never heard from is not suspected by this detector (the join protocol and
    /// indirect probes handle members that never answer).
    pub fn is_available(&self, now: Timestamp) -> bool {
        self.phi(now) < self.threshold
    }

    /// The earliest instant at which [`is_available`](Self::is_available) turns false if no
    /// heartbeat arrives first, or `None` before any heartbeat (or if even the end of time is
    /// below the threshold). The node arms its per-subject deadline here instead of polling phi.
    ///
    /// Exact, rounding included: it returns the one microsecond at which `is_available` flips
    /// (phi never decreases with silence, so there is exactly one). It is also cheap, because
    /// observers call it on every heartbeat: the window's mean and spread are computed once,
    /// the crossing is first estimated in closed form, and nearly always the estimate and its
    /// neighbour straddle the flip, two evaluations of phi in all. Otherwise a galloping
    /// search from the estimate brackets it within a few microseconds before bisection
    /// settles it, about a dozen evaluations instead of the 64 of a bisection over all of time.
    pub fn unavailable_at(&self) -> Option<Timestamp> {
        let last = self.last?;
        let curve = self.curve();
        let available = |t: u64| curve.phi(last, Timestamp::from_micros(t)) < self.threshold;
        let start = last.as_micros();
        // `start <= guess`, and `guess < u64::MAX` unless the heartbeat came at the end of time.
        let guess = curve
            .crossing_estimate(self.crossing_y)
            .map_or(start, |elapsed| {
                start.saturating_add(elapsed).min(u64::MAX - 1).max(start)
            });
        // The estimate is nearly always the microsecond before the crossing or the crossing
        // itself. Phi never decreases with silence, so a flip between `guess` and a neighbour
        // (both at or after `start`) is the one flip: available at `start`, not at the end of
        // time, and the search below would return the same instant after these same checks.
        if guess < u64::MAX {
            if available(guess) {
                if !available(guess + 1) {
                    return Some(Timestamp::from_micros(guess + 1));
                }
            } else if guess > start && available(guess - 1) {
                return Some(Timestamp::from_micros(guess));
            }
        }
        if !available(start) {
            return Some(last);
        }
        if available(u64::MAX) {
            return None;
        }
        // Invariant from here: available at `lo`, unavailable at `hi`.
        let (mut lo, mut hi);
        let mut step = 1u64;
        if available(guess) {
            lo = guess;
            loop {
                let next = lo.saturating_add(step);
                if !available(next) {
                    hi = next;
                    break;
                }
                lo = next;
                step = step.saturating_mul(2);
            }
        } else {
            hi = guess;
            loop {
                let next = hi.saturating_sub(step).max(start);
                if available(next) {
                    lo = next;
                    break;
                }
                hi = next;
                step = step.saturating_mul(2);
            }
        }
        while hi - lo > 1 {
            let mid = lo + (hi - lo) / 2;
            if available(mid) {
                lo = mid;
            } else {
                hi = mid;
            }
        }
        Some(Timestamp::from_micros(hi))
    }

    /// Mean inter-arrival interval over the window (including the two seed samples until they
    /// are evicted). The acceptable pause is not included.
    pub fn mean(&self) -> Duration {
        Duration::from_micros(self.mean_us().round() as u64)
    }

    /// Standard deviation of the window, before the [`PhiConfig::min_std_dev`] floor is
    /// applied (the floor is a modelling choice, this is what was measured).
    pub fn std_dev(&self) -> Duration {
        Duration::from_micros(self.std_dev_us().round() as u64)
    }

    /// How many intervals the window holds (at most [`PhiConfig::max_samples`]).
    pub fn sample_count(&self) -> usize {
        self.intervals.len()
    }

    /// When the last recorded heartbeat arrived, if any.
    pub fn last_heartbeat(&self) -> Option<Timestamp> {
        self.last
    }

    /// The threshold in force (after clamping an invalid configured one).
    pub fn threshold(&self) -> f64 {
        self.threshold
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    fn ms(t: u64) -> Timestamp {
        Timestamp::from_millis(t)
    }

    fn no_pause() -> PhiConfig {
        PhiConfig {
            acceptable_heartbeat_pause: Duration::ZERO,
            ..PhiConfig::lan()
        }
    }

    /// A detector fed `count` heartbeats every `every_ms`, starting at 0; returns it and the
    /// time of the last heartbeat.
    fn steady(config: &PhiConfig, count: u64, every_ms: u64) -> (PhiDetector, Timestamp) {
        let mut d = PhiDetector::new(config);
        for i in 0..count {
            assert!(d.heartbeat(ms(i * every_ms)));
        }
        (d, ms((count - 1) * every_ms))
    }

    #[test]
    fn phi_is_zero_before_any_heartbeat() {
        let d = PhiDetector::new(&PhiConfig::lan());
        assert_eq!(d.phi(ms(0)), 0.0);
        assert_eq!(d.phi(Timestamp::MAX), 0.0);
        assert!(d.is_available(Timestamp::MAX));
        assert_eq!(d.unavailable_at(), None);
    }

    #[test]
    fn phi_rises_monotonically_with_silence() {
        let (d, last) = steady(&PhiConfig::lan(), 50, 1000);
        let mut prev = d.phi(last);
        for step in 1..=600 {
            let p = d.phi(last + Duration::from_millis(step * 10));
            assert!(p >= prev, "phi fell from {prev} to {p} at +{}ms", step * 10);
            assert!(p.is_finite());
            prev = p;
        }
        assert!(prev > 8.0);
    }

    #[test]
    fn steady_one_second_heartbeat_crosses_eight_after_about_one_and_a_half_seconds() {
        // Std dev 0 is floored to 100 ms; phi = 8 at y ≈ 5.22, i.e. 1 s + 522 ms.
        let (d, last) = steady(&no_pause(), 300, 1000);
        assert_eq!(d.mean(), Duration::from_secs(1));
        assert_eq!(d.std_dev(), Duration::ZERO);
        assert!(d.is_available(last + Duration::from_millis(1450)));
        assert!(!d.is_available(last + Duration::from_millis(1600)));
        let at = d.unavailable_at().expect("crosses eventually");
        let after = at.saturating_since(last);
        assert!(
            after > Duration::from_millis(1500) && after < Duration::from_millis(1550),
            "{after:?}"
        );
    }

    #[test]
    fn phi_keeps_growing_past_ten_without_a_cap() {
        let (d, last) = steady(&no_pause(), 300, 1000);
        let p3 = d.phi(last + Duration::from_secs(3));
        let p10 = d.phi(last + Duration::from_secs(10));
        let p_end = d.phi(Timestamp::MAX);
        assert!(p3 > 10.0, "{p3}");
        assert!(p10 > p3 && p_end > p10);
        assert!(p_end.is_finite());
        // A threshold of 10 (or 100) does fire.
        let cfg = PhiConfig {
            threshold: 100.0,
            ..no_pause()
        };
        let (d, last) = steady(&cfg, 10, 1000);
        assert!(!d.is_available(last + Duration::from_secs(30)));
        assert!(d.unavailable_at().is_some());
    }

    #[test]
    fn regular_heartbeats_with_jitter_stay_available() {
        // 1 s ± up to 200 ms, from a fixed LCG so the test is deterministic.
        let mut seed = 0x5eed_u64;
        for config in [PhiConfig::lan(), no_pause()] {
            let mut d = PhiDetector::new(&config);
            let mut now = 0u64;
            let mut worst: f64 = 0.0;
            for i in 0..1000 {
                seed = seed
                    .wrapping_mul(6_364_136_223_846_793_005)
                    .wrapping_add(1_442_695_040_888_963_407);
                let jitter = (seed >> 33) % 401; // 0..=400
                now += 800 + jitter;
                if i > 20 {
                    // Judged just before the heartbeat lands.
                    worst = worst.max(d.phi(ms(now)));
                }
                d.heartbeat(ms(now));
            }
            assert!(worst < config.threshold / 2.0, "worst phi {worst}");
        }
    }

    #[test]
    fn acceptable_pause_shifts_the_curve_right() {
        let (plain, last) = steady(&no_pause(), 100, 1000);
        let paused_cfg = PhiConfig {
            acceptable_heartbeat_pause: Duration::from_secs(2),
            ..no_pause()
        };
        let (paused, _) = steady(&paused_cfg, 100, 1000);
        for extra_ms in [0, 500, 1200, 1600, 3000] {
            let t = last + Duration::from_millis(extra_ms);
            let shifted = t + Duration::from_secs(2);
            assert_eq!(plain.phi(t), paused.phi(shifted));
            assert!(paused.phi(t) <= plain.phi(t));
        }
        let a = plain.unavailable_at().unwrap();
        let b = paused.unavailable_at().unwrap();
        assert_eq!(b.saturating_since(a), Duration::from_secs(2));
    }

    #[test]
    fn window_is_bounded_and_forgets_old_intervals() {
        let cfg = PhiConfig {
            max_samples: 50,
            ..PhiConfig::lan()
        };
        let mut d = PhiDetector::new(&cfg);
        let mut now = 0;
        for _ in 0..500 {
            now += 1000;
            d.heartbeat(ms(now));
        }
        assert_eq!(d.sample_count(), 50);
        for _ in 0..50 {
            now += 200;
            d.heartbeat(ms(now));
        }
        assert_eq!(d.sample_count(), 50);
        assert_eq!(d.mean(), Duration::from_millis(200));
        assert_eq!(d.std_dev(), Duration::ZERO);
    }

    #[test]
    fn stale_and_duplicate_heartbeats_are_ignored() {
        let mut d = PhiDetector::new(&no_pause());
        assert!(d.heartbeat(ms(1000)));
        assert!(d.heartbeat(ms(2000)));
        let before = (d.sample_count(), d.mean(), d.std_dev());
        assert!(!d.heartbeat(ms(2000)));
        assert!(!d.heartbeat(ms(1500)));
        assert_eq!(before, (d.sample_count(), d.mean(), d.std_dev()));
        assert_eq!(d.last_heartbeat(), Some(ms(2000)));
    }

    #[test]
    fn first_heartbeat_is_judged_against_the_estimate() {
        let mut d = PhiDetector::new(&no_pause());
        assert_eq!(d.mean(), Duration::from_secs(1));
        d.heartbeat(ms(0));
        assert!(d.phi(ms(500)) < 0.5);
        assert!(d.is_available(ms(1000)));
        assert!(!d.is_available(ms(5000)));
    }

    /// The bisection over all of time that `unavailable_at` replaced: the reference it must
    /// match to the microsecond.
    fn unavailable_at_by_bisection(d: &PhiDetector) -> Option<Timestamp> {
        let last = d.last_heartbeat()?;
        if !d.is_available(last) {
            return Some(last);
        }
        if d.is_available(Timestamp::MAX) {
            return None;
        }
        let (mut lo, mut hi) = (last.as_micros(), u64::MAX);
        while hi - lo > 1 {
            let mid = lo + (hi - lo) / 2;
            if d.is_available(Timestamp::from_micros(mid)) {
                lo = mid;
            } else {
                hi = mid;
            }
        }
        Some(Timestamp::from_micros(hi))
    }

    #[test]
    fn unavailable_at_matches_bisection_over_all_of_time() {
        for config in [PhiConfig::lan(), PhiConfig::wan(), no_pause()] {
            let fresh = PhiDetector::new(&config);
            assert_eq!(fresh.unavailable_at(), None);
            assert_eq!(unavailable_at_by_bisection(&fresh), None);
            for (count, every) in [(1, 400), (5, 400), (40, 700), (300, 1000), (3, 1)] {
                let (d, _) = steady(&config, count, every);
                assert_eq!(d.unavailable_at(), unavailable_at_by_bisection(&d));
            }
        }
        let high = PhiConfig {
            threshold: 300.0,
            ..PhiConfig::lan()
        };
        let (d, _) = steady(&high, 10, 400);
        assert_eq!(d.unavailable_at(), unavailable_at_by_bisection(&d));
    }

    #[test]
    fn unavailable_at_agrees_with_is_available() {
        let (d, _) = steady(&PhiConfig::wan(), 40, 700);
        let at = d.unavailable_at().unwrap();
        assert!(d.is_available(Timestamp::from_micros(at.as_micros() - 1)));
        assert!(!d.is_available(at));
    }

    #[test]
    fn extreme_inputs_never_panic_or_give_nan() {
        let weird = PhiConfig {
            threshold: f64::NAN,
            max_samples: 0,
            min_std_dev: Duration::ZERO,
            acceptable_heartbeat_pause: Duration::MAX,
            first_heartbeat_estimate: Duration::ZERO,
        };
        let mut d = PhiDetector::new(&weird);
        assert_eq!(d.threshold(), 8.0);
        d.heartbeat(Timestamp::ZERO);
        d.heartbeat(Timestamp::from_micros(1));
        d.heartbeat(Timestamp::MAX);
        for t in [
            Timestamp::ZERO,
            Timestamp::from_micros(u64::MAX / 2),
            Timestamp::MAX,
        ] {
            let p = d.phi(t);
            assert!(p.is_finite() && p >= 0.0, "{p}");
        }
        let _ = d.unavailable_at();
        assert_eq!(d.sample_count(), 1);
    }

    proptest::proptest! {
        /// Any arrival history gives a finite, non-negative phi that never falls as silence
        /// grows, and `unavailable_at` agrees with `is_available`.
        #[test]
        fn phi_is_finite_and_monotone_for_any_history(
            gaps in proptest::collection::vec(0u64..5_000_000, 0..60),
            probes in proptest::collection::vec(0u64..60_000_000, 1..20),
        ) {
            let mut d = PhiDetector::new(&PhiConfig::lan());
            let mut now = 0u64;
            for g in gaps {
                now += g;
                d.heartbeat(Timestamp::from_micros(now));
            }
            let mut probes = probes;
            probes.sort_unstable();
            let mut prev = 0.0;
            for p in probes {
                let phi = d.phi(Timestamp::from_micros(now + p));
                proptest::prop_assert!(phi.is_finite() && phi >= 0.0);
                proptest::prop_assert!(phi >= prev);
                prev = phi;
            }
            proptest::prop_assert_eq!(d.unavailable_at(), unavailable_at_by_bisection(&d));
            if let Some(at) = d.unavailable_at() {
                proptest::prop_assert!(!d.is_available(at));
                if at.as_micros() > now {
                    proptest::prop_assert!(d.is_available(Timestamp::from_micros(at.as_micros() - 1)));
                }
            }
        }
    }

    #[test]
    fn validate_names_the_bad_field() {
        assert_eq!(PhiConfig::lan().validate(), Ok(()));
        assert_eq!(PhiConfig::wan().validate(), Ok(()));
        let field = |c: PhiConfig| match c.validate() {
            Err(ConfigError::Invalid { field, .. }) => field,
            Ok(()) => "ok",
        };
        let base = PhiConfig::lan;
        assert_eq!(
            field(PhiConfig {
                threshold: 0.0,
                ..base()
            }),
            "threshold"
        );
        assert_eq!(
            field(PhiConfig {
                threshold: f64::INFINITY,
                ..base()
            }),
            "threshold"
        );
        assert_eq!(
            field(PhiConfig {
                max_samples: 0,
                ..base()
            }),
            "max_samples"
        );
        assert_eq!(
            field(PhiConfig {
                min_std_dev: Duration::ZERO,
                ..base()
            }),
            "min_std_dev"
        );
        assert_eq!(
            field(PhiConfig {
                first_heartbeat_estimate: Duration::ZERO,
                ..base()
            }),
            "first_heartbeat_estimate"
        );
        assert_eq!(
            field(PhiConfig {
                acceptable_heartbeat_pause: Duration::MAX,
                ..base()
            }),
            "acceptable_heartbeat_pause"
        );
    }
}
