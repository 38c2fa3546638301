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

#[cfg(test)]
mod tests {
    use super::*;

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
