//! Selection: the strategies, each picking one eligible slot from a cached candidate list.
//!
//! The rules are documented in the parent module ("Strategies and weights"); this file is the
//! hot path, so it allocates nothing and touches as few candidates as the strategy allows.

use super::Strategy;
use crate::pool::Hot;
use crate::Timestamp;
use rand_core::RngCore;

/// One list of candidate slots with cumulative weights.
#[derive(Clone, Debug, Default)]
pub(super) struct CandList {
    slots: Vec<u32>,
    cum: Vec<u64>,
    total: u64,
    uniform: bool,
    stride: u64,
    cursor: u64,
}

impl CandList {
    /// Number of candidates.
    pub(super) fn len(&self) -> usize {
        self.slots.len()
    }

    pub(super) fn clear(&mut self) {
        self.slots.clear();
        self.cum.clear();
        self.total = 0;
    }

    pub(super) fn push(&mut self, slot: u32, weight: u32) {
        self.total += u64::from(weight);
        self.slots.push(slot);
        self.cum.push(self.total);
    }

    pub(super) fn seal(&mut self, hot: &[Hot]) {
        let first = self.slots.first().map(|&s| hot[s as usize].weight);
        self.uniform = self
            .slots
            .iter()
            .all(|&s| Some(hot[s as usize].weight) == first);
        self.stride = 1;
        if !self.uniform {
            let w = self.total;
            let mut s = ((w as f64) * 0.618_033_988_75) as u64;
            s = s.max(1);
            while s > 1 && gcd(s, w) != 1 {
                s -= 1;
            }
            self.stride = s;
        }
    }

    /// Index whose weight range holds `r` (`r < total`).
    #[inline]
    fn index_of(&self, r: u64) -> usize {
        self.cum.partition_point(|&c| c <= r)
    }

    #[inline]
    fn random_index<R: RngCore + ?Sized>(&self, rng: &mut R) -> usize {
        if self.uniform {
            below(rng, self.slots.len() as u64) as usize
        } else {
            self.index_of(below(rng, self.total))
        }
    }
}

fn gcd(mut a: u64, mut b: u64) -> u64 {
    while b != 0 {
        (a, b) = (b, a % b);
    }
    a
}

/// Uniform in `0..n` (Lemire's multiply-shift; the bias is below 2^-32 for any n we use).
#[inline]
fn below<R: RngCore + ?Sized>(rng: &mut R, n: u64) -> u64 {
    ((u128::from(rng.next_u64()) * u128::from(n)) >> 64) as u64
}

/// Picks an eligible slot from `list`, or `None` if none is eligible.
pub(super) fn pick<R: RngCore + ?Sized>(
    list: &mut CandList,
    hot: &[Hot],
    strategy: Strategy,
    now: Timestamp,
    max: u32,
    inv_tau: f64,
    rng: &mut R,
) -> Option<u32> {
    let n = list.slots.len();
    if n == 0 {
        return None;
    }
    let ok = |s: u32| hot[s as usize].eligible(now, max);
    match strategy {
        Strategy::RoundRobin => {
            for _ in 0..n {
                let p = list.cursor;
                list.cursor = list.cursor.wrapping_add(1);
                let idx = if list.uniform {
                    (p % n as u64) as usize
                } else {
                    let q = (u128::from(p % list.total) * u128::from(list.stride)
                        % u128::from(list.total)) as u64;
                    list.index_of(q)
                };
                let s = list.slots[idx];
                if ok(s) {
                    return Some(s);
                }
            }
            // Weighted positions may keep landing on the same unavailable heavy worker: fall
            // back to the first available one in list order after the cursor.
            let start = (list.cursor % n as u64) as usize;
            let (tail, head) = list.slots.split_at(start);
            head.iter().chain(tail).copied().find(|&s| ok(s))
        }
        Strategy::Random => {
            for _ in 0..3 {
                let s = list.slots[list.random_index(rng)];
                if ok(s) {
                    return Some(s);
                }
            }
            // Most candidates are unavailable: draw among the available ones exactly.
            let total: u64 = list
                .slots
                .iter()
                .filter(|&&s| ok(s))
                .map(|&s| u64::from(hot[s as usize].weight))
                .sum();
            if total == 0 {
                return None;
            }
            let mut r = below(rng, total);
            for &s in list.slots.iter().filter(|&&s| ok(s)) {
                let w = u64::from(hot[s as usize].weight);
                if r < w {
                    return Some(s);
                }
                r -= w;
            }
            None
        }
        Strategy::LeastConnections => {
            // HAProxy's `leastconn`, with tower's latency estimate keeping an idle slow
            // worker out of the ties (see `LcGroup`). Plain loops rather than chained
            // iterators: this scan is the hot path.
            let group = LcGroup::of(&list.slots, hot, now, max)?;
            let start = (list.cursor % n as u64) as usize;
            let idx = group
                .first_in(&list.slots[start..], hot, now, max)
                .map(|i| start + i)
                .or_else(|| group.first_in(&list.slots[..start], hot, now, max))?;
            list.cursor = idx as u64 + 1;
            Some(list.slots[idx])
        }
        Strategy::P2c => {
            if n == 1 {
                return ok(list.slots[0]).then_some(list.slots[0]);
            }
            for _ in 0..3 {
                let a = list.random_index(rng);
                let mut b = list.random_index(rng);
                if b == a {
                    b = if list.uniform {
                        (a + 1 + below(rng, n as u64 - 1) as usize) % n
                    } else {
                        (a + 1) % n
                    };
                }
                let (sa, sb) = (list.slots[a], list.slots[b]);
                match (ok(sa), ok(sb)) {
                    (true, true) => {
                        let ca = hot[sa as usize].cost(now, inv_tau);
                        let cb = hot[sb as usize].cost(now, inv_tau);
                        return Some(if cb < ca { sb } else { sa });
                    }
                    (true, false) => return Some(sa),
                    (false, true) => return Some(sb),
                    (false, false) => {}
                }
            }
            // Most candidates are unavailable: take the cheapest available one.
            list.slots
                .iter()
                .copied()
                .filter(|&s| ok(s))
                .min_by(|&x, &y| {
                    hot[x as usize]
                        .cost(now, inv_tau)
                        .total_cmp(&hot[y as usize].cost(now, inv_tau))
                })
        }
    }
}

/// A least-connections pick leaves out of the ties a worker whose latency estimate is more
/// than this many times the fastest tied worker's.
pub const LC_SLOW_FACTOR: f64 = 2.0;

/// The group a least-connections pick rotates over: eligible candidates with the least
/// weighted load `(in_flight + 1) / weight` (32.32 fixed point, kept current by the pool),
/// less those whose peak-EWMA latency exceeds [`LC_SLOW_FACTOR`] × the group's fastest.
struct LcGroup {
    wload: u64,
    max_ewma_us: f64,
}

impl LcGroup {
    /// The least load among the eligible candidates and the latency bound of its group, or
    /// `None` if no candidate is eligible.
    #[inline]
    fn of(slots: &[u32], hot: &[Hot], now: Timestamp, max: u32) -> Option<LcGroup> {
        let mut wload = u64::MAX;
        let mut fastest = f64::INFINITY;
        let mut any = false;
        for &s in slots {
            let h = &hot[s as usize];
            if !h.eligible(now, max) {
                continue;
            }
            any = true;
            if h.wload < wload {
                wload = h.wload;
                fastest = h.ewma_us;
            } else if h.wload == wload && h.ewma_us < fastest {
                fastest = h.ewma_us;
            }
        }
        any.then_some(LcGroup {
            wload,
            max_ewma_us: fastest.max(0.0) * LC_SLOW_FACTOR,
        })
    }

    /// Index in `slots` of the first member of the group.
    #[inline]
    fn first_in(&self, slots: &[u32], hot: &[Hot], now: Timestamp, max: u32) -> Option<usize> {
        slots.iter().position(|&s| {
            let h = &hot[s as usize];
            h.wload == self.wload && h.ewma_us <= self.max_ewma_us && h.eligible(now, max)
        })
    }
}
