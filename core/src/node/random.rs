//! The node's random choices, drawn from its own RNG so a seeded node is deterministic.

use crate::membership::LivePeers;
use crate::NodeId;
use core::time::Duration;
use rand_core::RngCore;

/// Uniform in `0..n` (multiply-shift).
pub(super) fn rand_below<R: RngCore>(rng: &mut R, n: usize) -> usize {
    ((u128::from(rng.next_u64()) * n as u128) >> 64) as usize
}

/// Uniform in `[base/2, base]`: spreads periodic work so nodes do not synchronise.
pub(super) fn jittered<R: RngCore>(rng: &mut R, base: Duration) -> Duration {
    let micros = base.as_micros() as u64;
    let half = micros / 2;
    Duration::from_micros(half + rng.next_u64() % (micros - half + 1))
}

/// Up to `k` distinct members of `peers`, drawn at random (all of them when `k` is at least
/// their number, in their order).
pub(super) fn random_peers<R: RngCore>(rng: &mut R, peers: LivePeers<'_>, k: usize) -> Vec<NodeId> {
    let n = peers.len();
    if k >= n {
        return peers.to_vec();
    }
    let mut out: Vec<NodeId> = Vec::with_capacity(k);
    while out.len() < k {
        let id = peers.get(rand_below(rng, n));
        if !out.contains(&id) {
            out.push(id);
        }
    }
    out
}
