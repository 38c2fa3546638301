//! A small fixed, seedless 64-bit hash (FNV-1a with a final avalanche mix).
//!
//! Used where every node must compute the same value (ids from names, sync digests, ring
//! order). Not a defence against adversarial collisions: nothing keyed on it is security
//! relevant, and authentication is the envelope's job.

/// Hashes `bytes` with `seed`.
pub(crate) fn hash64(seed: u64, bytes: &[u8]) -> u64 {
    let mut h = 0xcbf2_9ce4_8422_2325u64 ^ seed;
    for &b in bytes {
        h ^= u64::from(b);
        h = h.wrapping_mul(0x0000_0100_0000_01b3);
    }
    mix64(h)
}

/// The splitmix64 finaliser: spreads every input bit over the output.
pub(crate) fn mix64(mut z: u64) -> u64 {
    z = (z ^ (z >> 30)).wrapping_mul(0xbf58_476d_1ce4_e5b9);
    z = (z ^ (z >> 27)).wrapping_mul(0x94d0_49bb_1331_11eb);
    z ^ (z >> 31)
}
