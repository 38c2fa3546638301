//! Sorting the table's (key, slot) pairs by distributing them on their keys' leading bits.
//!
//! **Rule: the result is exactly `sort_unstable`'s (the pairs' own order), whatever the keys.**
//! Sync summaries, summary differences and replies in id order each sort a list of pairs whose
//! keys are hashes or hash-derived ids: uniformly spread 64-bit numbers. A comparison sort of
//! those spends most of its time on branches no predictor can guess (`sort_unstable` was about
//! 5 % of `crash --nodes 5000`). Here one counting pass on the leading bits that differ puts
//! every pair in its bucket, about one pair a bucket, and only the few buckets holding more
//! than one are sorted. Keys that are not spread (chosen ids, equal keys) only make buckets
//! fuller: a full bucket is sorted by `sort_unstable`, so the worst case stays O(n log n).

/// Lists shorter than this go straight to `sort_unstable`: the counting pass's fixed cost
/// (clearing the counts) would outweigh what it saves.
const SMALL: usize = 48;

/// Buckets hold at most this many pairs for an insertion sort; fuller ones use `sort_unstable`.
const INSERTION_MAX: usize = 12;

/// Sorts `v` into its `Ord` order. `key(x)` must be the first component of that order:
/// `key(a) < key(b)` implies `a < b`; pairs with equal keys are ordered by `T`'s `Ord`.
pub(super) fn sort_by_leading_bits<T: Copy + Ord>(v: &mut Vec<T>, key: impl Fn(&T) -> u64) {
    let n = v.len();
    if n < SMALL {
        v.sort_unstable();
        return;
    }
    let first = key(&v[0]);
    let differ = v.iter().fold(0u64, |acc, x| acc | (key(x) ^ first));
    if differ == 0 {
        v.sort_unstable();
        return;
    }
    // The leading bits all keys share say nothing: skip them, and take as many of the next
    // bits as make about one pair a bucket.
    let shared = differ.leading_zeros();
    let bits = (usize::BITS - (n - 1).leading_zeros()).clamp(6, 16);
    let bucket = |x: &T| ((key(x) << shared) >> (64 - bits)) as usize;
    let mut starts = vec![0u32; (1 << bits) + 1];
    for x in v.iter() {
        starts[bucket(x) + 1] += 1;
    }
    for b in 1..starts.len() {
        starts[b] += starts[b - 1];
    }
    let mut out = vec![v[0]; n];
    {
        let mut next = starts.clone();
        for x in v.iter() {
            let b = bucket(x);
            out[next[b] as usize] = *x;
            next[b] += 1;
        }
    }
    for b in 0..(1usize << bits) {
        let (lo, hi) = (starts[b] as usize, starts[b + 1] as usize);
        match hi - lo {
            0 | 1 => {}
            len if len <= INSERTION_MAX => insertion_sort(&mut out[lo..hi]),
            _ => out[lo..hi].sort_unstable(),
        }
    }
    *v = out;
}

fn insertion_sort<T: Copy + Ord>(s: &mut [T]) {
    for i in 1..s.len() {
        let x = s[i];
        let mut j = i;
        while j > 0 && s[j - 1] > x {
            s[j] = s[j - 1];
            j -= 1;
        }
        s[j] = x;
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use proptest::prelude::*;

    fn check_pairs(v: Vec<(u64, u32)>) {
        let mut want = v.clone();
        want.sort_unstable();
        let mut got = v;
        sort_by_leading_bits(&mut got, |p| p.0);
        assert_eq!(got, want);
    }

    proptest! {
        /// Spread keys, as hashes are.
        #[test]
        fn spread_keys_sort_as_sort_unstable(v in proptest::collection::vec(any::<(u64, u32)>(), 0..3000)) {
            check_pairs(v);
        }

        /// Keys sharing leading bits, and many equal keys (chosen ids, collisions): buckets
        /// fill up and the ties are ordered by the slot.
        #[test]
        fn clustered_keys_sort_as_sort_unstable(
            prefix in any::<u64>(),
            shared in 0u32..64,
            v in proptest::collection::vec((0u64..40, any::<u32>()), 0..3000),
        ) {
            let mask = if shared == 0 { u64::MAX } else { u64::MAX >> shared };
            let v = v.into_iter().map(|(k, s)| ((prefix & !mask) | (k.wrapping_mul(0x9e37_79b9_7f4a_7c15) & mask), s)).collect();
            check_pairs(v);
        }

        /// Bare keys, as summaries sort them.
        #[test]
        fn bare_keys_sort_as_sort_unstable(v in proptest::collection::vec(any::<u64>(), 0..3000)) {
            let mut want = v.clone();
            want.sort_unstable();
            let mut got = v;
            sort_by_leading_bits(&mut got, |k| *k);
            prop_assert_eq!(got, want);
        }
    }

    #[test]
    fn edge_cases() {
        check_pairs(vec![]);
        check_pairs(vec![(5, 1)]);
        check_pairs(vec![(7, 3); 500]);
        check_pairs((0..500).map(|i| (u64::MAX - i, i as u32)).collect());
        check_pairs((0..500).map(|i| (i, 500 - i as u32)).collect());
        check_pairs((0..500).map(|i| (1 << 63 | (i % 3), i as u32)).collect());
    }
}
