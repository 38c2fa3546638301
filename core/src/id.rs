//! Node identity.

use core::fmt;
use serde::{Deserialize, Serialize};

/// A node's stable identity: 128 bits, either derived from a configured name (so a restarted
/// process keeps its identity and rejoins with a higher incarnation) or drawn at random.
#[derive(Clone, Copy, PartialEq, Eq, PartialOrd, Ord, Hash, Serialize, Deserialize)]
#[cfg_attr(feature = "arbitrary", derive(arbitrary::Arbitrary))]
pub struct NodeId(pub [u8; 16]);

impl NodeId {
    /// Derives an identity from a stable name with a fixed (seedless) 128-bit hash, so every
    /// process computes the same id for the same name.
    pub fn from_name(name: &str) -> Self {
        let a = crate::hash::hash64(0x5348_4f41_4c5f_4944, name.as_bytes());
        let b = crate::hash::hash64(a ^ 0x9e37_79b9_7f4a_7c15, name.as_bytes());
        let mut out = [0u8; 16];
        out[..8].copy_from_slice(&a.to_le_bytes());
        out[8..].copy_from_slice(&b.to_le_bytes());
        NodeId(out)
    }

    /// A random identity drawn from `rng`.
    pub fn random<R: rand_core::RngCore + ?Sized>(rng: &mut R) -> Self {
        let mut out = [0u8; 16];
        rng.fill_bytes(&mut out);
        NodeId(out)
    }

    /// A 64-bit digest of the id, used for ring placement and hashing.
    pub fn short(&self) -> u64 {
        let mut b = [0u8; 8];
        b.copy_from_slice(&self.0[..8]);
        u64::from_le_bytes(b)
    }
}

impl fmt::Debug for NodeId {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        for b in &self.0[..4] {
            write!(f, "{b:02x}")?;
        }
        Ok(())
    }
}

impl fmt::Display for NodeId {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        for b in &self.0 {
            write!(f, "{b:02x}")?;
        }
        Ok(())
    }
}
