//! A small fixed, seedless 64-bit hash (FNV-1a with a final avalanche mix), and the same
//! FNV-1a as a `Hasher` ([`Fnv1a`]).
//!
//! Used where every node must compute the same value (ids from names, sync digests, ring
//! order). Not a defence against adversarial collisions: nothing keyed on it is security
//! relevant, and authentication is the envelope's job.

use core::hash::Hasher;

/// Hashes `bytes` with `seed`.
pub(crate) fn hash64(seed: u64, bytes: &[u8]) -> u64 {
    let mut h = Fnv1a(FNV_OFFSET ^ seed);
    h.write(bytes);
    mix64(h.0)
}

const FNV_OFFSET: u64 = 0xcbf2_9ce4_8422_2325;
const FNV_PRIME: u64 = 0x0000_0100_0000_01b3;

/// FNV-1a as a [`core::hash::Hasher`], for maps whose keys are fixed by the program and only
/// looked up with outside input (the RPC server's handler table): cheaper than SipHash for
/// short keys. Not for maps an outsider can insert into: it has no seed, so colliding keys
/// can be found offline.
#[derive(Clone, Copy, Debug)]
pub struct Fnv1a(u64);

impl Default for Fnv1a {
    fn default() -> Self {
        Fnv1a(FNV_OFFSET)
    }
}

impl core::hash::Hasher for Fnv1a {
    fn finish(&self) -> u64 {
        self.0
    }

    fn write(&mut self, bytes: &[u8]) {
        for &b in bytes {
            self.0 = (self.0 ^ u64::from(b)).wrapping_mul(FNV_PRIME);
        }
    }
}

/// The splitmix64 finaliser: spreads every input bit over the output.
pub(crate) fn mix64(mut z: u64) -> u64 {
    z = (z ^ (z >> 30)).wrapping_mul(0xbf58_476d_1ce4_e5b9);
    z = (z ^ (z >> 27)).wrapping_mul(0x94d0_49bb_1331_11eb);
    z ^ (z >> 31)
}

#[cfg(test)]
mod fnv_tests {
    use super::*;

    #[test]
    fn fnv1a_matches_the_reference_vectors_and_hash64_builds_on_it() {
        let fnv = |b: &[u8]| {
            let mut h = Fnv1a::default();
            h.write(b);
            h.finish()
        };
        // From the FNV reference test suite.
        assert_eq!(fnv(b""), 0xcbf2_9ce4_8422_2325);
        assert_eq!(fnv(b"a"), 0xaf63_dc4c_8601_ec8c);
        assert_eq!(fnv(b"foobar"), 0x8594_4171_f739_67e8);
        assert_eq!(hash64(0, b"foobar"), mix64(fnv(b"foobar")));
    }
}
