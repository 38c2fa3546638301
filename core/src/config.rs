//! Configuration, its presets and their validation.
//!
//! Presets follow hashicorp memberlist's proven defaults, adjusted where Shoal's design
//! differs (digest-based anti-entropy is cheap, so it runs more often). Retransmit counts and
//! timeouts scale with the cluster size the node currently sees, not a size fixed up front.

use crate::ConfigError;
use core::time::Duration;

/// Every tunable of a node. Build from a preset and adjust fields, then the node validates it.
#[derive(Clone, Debug, PartialEq)]
pub struct Config {
    /// Cluster name; nodes with different names ignore each other's packets.
    pub cluster_name: String,
    /// Largest datagram this node sends; also the largest it accepts.
    pub mtu: usize,
    /// How often piggybacked updates are gossiped to random members.
    pub gossip_interval: Duration,
    /// How many random members each gossip round sends to.
    pub gossip_fanout: usize,
    /// λ: each update is retransmitted about `λ·ceil(log10(n + 1))` times.
    pub retransmit_mult: u32,
    /// How often anti-entropy sync runs with one random member (the base interval, before
    /// scaling with cluster size).
    pub sync_interval: Duration,
    /// First join retry delay; doubles per attempt up to `join_retry_max`.
    pub join_retry_initial: Duration,
    /// Longest join retry delay.
    pub join_retry_max: Duration,
    /// Most members (including tombstones) the table holds; more are refused and counted.
    pub max_members: usize,
    /// How long failed and left members are kept as tombstones before they are reaped.
    pub tombstone_ttl: Duration,
}

impl Config {
    /// Local area network: sub-millisecond latency, rare loss.
    pub fn lan() -> Self {
        Config {
            cluster_name: "shoal".to_owned(),
            mtu: 1400,
            gossip_interval: Duration::from_millis(200),
            gossip_fanout: 3,
            retransmit_mult: 4,
            sync_interval: Duration::from_secs(5),
            join_retry_initial: Duration::from_millis(500),
            join_retry_max: Duration::from_secs(30),
            max_members: 10_000,
            tombstone_ttl: Duration::from_secs(300),
        }
    }

    /// Wide area network: tens to hundreds of milliseconds, more loss.
    pub fn wan() -> Self {
        Config {
            gossip_interval: Duration::from_millis(500),
            gossip_fanout: 4,
            retransmit_mult: 4,
            sync_interval: Duration::from_secs(15),
            join_retry_initial: Duration::from_secs(1),
            join_retry_max: Duration::from_secs(60),
            ..Config::lan()
        }
    }

    /// One machine (tests, demos): fast timers.
    pub fn local() -> Self {
        Config {
            gossip_interval: Duration::from_millis(100),
            gossip_fanout: 3,
            sync_interval: Duration::from_secs(2),
            join_retry_initial: Duration::from_millis(200),
            join_retry_max: Duration::from_secs(5),
            tombstone_ttl: Duration::from_secs(60),
            ..Config::lan()
        }
    }

    /// Sets the cluster name.
    pub fn with_cluster_name(mut self, name: impl Into<String>) -> Self {
        self.cluster_name = name.into();
        self
    }

    /// Checks every field; the error names the first bad one.
    pub fn validate(&self) -> Result<(), ConfigError> {
        fn bad(field: &'static str, reason: &'static str) -> Result<(), ConfigError> {
            Err(ConfigError::Invalid { field, reason })
        }
        if self.cluster_name.is_empty() || self.cluster_name.len() > 128 {
            return bad("cluster_name", "must be 1 to 128 bytes");
        }
        if !(1200..=crate::wire::MAX_DATAGRAM).contains(&self.mtu) {
            return bad("mtu", "must be between 1200 and 65507 bytes");
        }
        if self.gossip_interval < Duration::from_millis(1) {
            return bad("gossip_interval", "must be at least 1 ms");
        }
        if self.gossip_fanout == 0 || self.gossip_fanout > 32 {
            return bad("gossip_fanout", "must be 1 to 32");
        }
        if self.retransmit_mult == 0 || self.retransmit_mult > 64 {
            return bad("retransmit_mult", "must be 1 to 64");
        }
        if self.sync_interval < Duration::from_millis(10) {
            return bad("sync_interval", "must be at least 10 ms");
        }
        if self.join_retry_initial.is_zero() || self.join_retry_max < self.join_retry_initial {
            return bad(
                "join_retry_initial",
                "must be non-zero and at most join_retry_max",
            );
        }
        if self.max_members < 2 {
            return bad("max_members", "must be at least 2");
        }
        if self.tombstone_ttl < self.sync_interval {
            return bad(
                "tombstone_ttl",
                "must be at least sync_interval, or stale sync could resurrect reaped members",
            );
        }
        Ok(())
    }

    /// The cluster name's 32-bit hash as carried in every packet header.
    pub fn cluster_hash(&self) -> u32 {
        crate::hash::hash64(0x636c_7573, self.cluster_name.as_bytes()) as u32
    }
}

impl Default for Config {
    fn default() -> Self {
        Config::lan()
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn presets_are_valid() {
        for c in [Config::lan(), Config::wan(), Config::local()] {
            assert_eq!(c.validate(), Ok(()));
        }
    }

    #[test]
    fn bad_fields_are_named() {
        let c = Config {
            mtu: 100,
            ..Config::lan()
        };
        assert!(matches!(
            c.validate(),
            Err(ConfigError::Invalid { field: "mtu", .. })
        ));
        let c = Config {
            gossip_fanout: 0,
            ..Config::lan()
        };
        assert!(matches!(
            c.validate(),
            Err(ConfigError::Invalid {
                field: "gossip_fanout",
                ..
            })
        ));
    }
}
