//! A fixed-size, HDR-style latency histogram in microseconds: exact below 128 µs, then 64
//! sub-buckets per power of two (relative error under 1.6 %), up to 2^32 µs (71 minutes;
//! larger values land in the last bucket). Its size never grows with the number of calls.

/// Values below this are counted exactly.
const EXACT: u64 = 128;
/// Sub-buckets per power of two above `EXACT` (6 bits of mantissa).
const SUB: u64 = 64;
const SUB_BITS: u32 = 6;
/// Powers of two covered above `EXACT`: 2^7 ..= 2^31.
const OCTAVES: u64 = 25;
const BUCKETS: usize = (EXACT + OCTAVES * SUB) as usize;
const MAX: u64 = (1 << 32) - 1;

use std::sync::atomic::{AtomicU64, Ordering};

/// Latency counts; merge one per load slot at the end.
#[derive(Clone, Debug)]
pub struct Histogram {
    counts: Box<[u64]>,
    total: u64,
    max: u64,
}

impl Default for Histogram {
    fn default() -> Self {
        Histogram {
            counts: vec![0; BUCKETS].into_boxed_slice(),
            total: 0,
            max: 0,
        }
    }
}

fn index(v: u64) -> usize {
    let v = v.min(MAX);
    if v < EXACT {
        return v as usize;
    }
    let e = 63 - u64::from(v.leading_zeros()); // 7..=31
    let shift = e as u32 - SUB_BITS;
    let sub = (v >> shift) - SUB; // 0..64
    (EXACT + (e - 7) * SUB + sub) as usize
}

/// The value reported for bucket `i`: its midpoint (exact below `EXACT`).
fn value(i: usize) -> u64 {
    let i = i as u64;
    if i < EXACT {
        return i;
    }
    let e = (i - EXACT) / SUB + 7;
    let sub = (i - EXACT) % SUB;
    let shift = e as u32 - SUB_BITS;
    let low = (SUB + sub) << shift;
    low + (1 << shift) / 2
}

impl Histogram {
    /// An empty histogram.
    pub fn new() -> Self {
        Self::default()
    }

    /// Counts one latency.
    pub fn record(&mut self, micros: u64) {
        self.counts[index(micros)] += 1;
        self.total += 1;
        self.max = self.max.max(micros);
    }

    /// Adds every count of `other`.
    pub fn merge(&mut self, other: &Histogram) {
        for (a, b) in self.counts.iter_mut().zip(other.counts.iter()) {
            *a += b;
        }
        self.total += other.total;
        self.max = self.max.max(other.max);
    }

    /// How many values were recorded.
    pub fn len(&self) -> u64 {
        self.total
    }

    /// Whether nothing was recorded.
    pub fn is_empty(&self) -> bool {
        self.total == 0
    }

    /// The largest value recorded (exact).
    pub fn max(&self) -> u64 {
        self.max
    }

    /// The value at quantile `q` (0.0..=1.0): the smallest bucket holding at least
    /// `ceil(q × len)` values, as its midpoint, capped at the exact maximum. 0 when empty.
    pub fn quantile(&self, q: f64) -> u64 {
        if self.total == 0 {
            return 0;
        }
        let rank = ((q.clamp(0.0, 1.0) * self.total as f64).ceil() as u64).max(1);
        let mut seen = 0;
        for (i, &c) in self.counts.iter().enumerate() {
            seen += c;
            if seen >= rank {
                return value(i).min(self.max);
            }
        }
        self.max
    }
}

/// A [`Histogram`] every load slot records into at once: relaxed atomic counters, so a
/// call costs a couple of uncontended atomic adds on lines all slots keep warm.
///
/// Why shared rather than one histogram per slot: with 256 slots, per-slot histograms
/// (14 KiB each) and their locks put two cold cache lines on every call's path, which
/// cost 100-200 ns a call and made the harness, not the code under test, a large part of
/// what was measured (BENCHMARKS.md).
#[derive(Debug)]
pub struct SharedHistogram {
    counts: Box<[AtomicU64]>,
    total: AtomicU64,
    max: AtomicU64,
}

impl Default for SharedHistogram {
    fn default() -> Self {
        SharedHistogram {
            counts: (0..BUCKETS).map(|_| AtomicU64::new(0)).collect(),
            total: AtomicU64::new(0),
            max: AtomicU64::new(0),
        }
    }
}

impl SharedHistogram {
    /// Counts one latency.
    pub fn record(&self, micros: u64) {
        self.counts[index(micros)].fetch_add(1, Ordering::Relaxed);
        self.total.fetch_add(1, Ordering::Relaxed);
        // Reads first: the maximum rarely changes, and a plain load keeps the line shared.
        if micros > self.max.load(Ordering::Relaxed) {
            self.max.fetch_max(micros, Ordering::Relaxed);
        }
    }

    /// Values recorded so far.
    pub fn len(&self) -> u64 {
        self.total.load(Ordering::Relaxed)
    }

    /// Whether nothing was recorded.
    pub fn is_empty(&self) -> bool {
        self.len() == 0
    }

    /// A copy of the counts (exact once every recorder has stopped).
    pub fn snapshot(&self) -> Histogram {
        let counts: Box<[u64]> = self
            .counts
            .iter()
            .map(|c| c.load(Ordering::Relaxed))
            .collect();
        Histogram {
            total: counts.iter().sum(),
            counts,
            max: self.max.load(Ordering::Relaxed),
        }
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn the_shared_histogram_counts_what_a_plain_one_counts() {
        let shared = SharedHistogram::default();
        let mut plain = Histogram::new();
        for v in (0..200_000u64).step_by(7).chain([u64::MAX, 3, 3]) {
            shared.record(v);
            plain.record(v);
        }
        let snap = shared.snapshot();
        assert_eq!(snap.len(), plain.len());
        assert_eq!(shared.len(), plain.len());
        assert_eq!(snap.max(), plain.max());
        for q in [0.0, 0.1, 0.5, 0.9, 0.99, 0.999, 1.0] {
            assert_eq!(snap.quantile(q), plain.quantile(q), "q={q}");
        }
    }

    #[test]
    fn buckets_are_monotonic_and_precise() {
        let mut last = 0;
        for v in (0..5_000_000u64).step_by(37) {
            let i = index(v);
            assert!(i >= last, "index must not decrease");
            last = i;
            let mid = value(i);
            let err = mid.abs_diff(v) as f64 / (v.max(1)) as f64;
            assert!(err <= 1.0 / 64.0, "v={v} reported {mid}");
        }
        assert_eq!(index(MAX), BUCKETS - 1);
        assert_eq!(index(u64::MAX), BUCKETS - 1);
    }

    #[test]
    fn quantiles_of_a_known_distribution() {
        let mut h = Histogram::new();
        assert_eq!(h.quantile(0.5), 0);
        for v in 1..=1000u64 {
            h.record(v);
        }
        assert_eq!(h.len(), 1000);
        let p50 = h.quantile(0.5);
        let p99 = h.quantile(0.99);
        assert!((492..=508).contains(&p50), "p50 {p50}");
        assert!((975..=1000).contains(&p99), "p99 {p99}");
        assert_eq!(h.quantile(1.0), 1000);
        let mut other = Histogram::new();
        other.record(10_000);
        h.merge(&other);
        assert_eq!(h.len(), 1001);
        assert_eq!(h.max(), 10_000);
        assert_eq!(h.quantile(1.0), 10_000);
    }
}
