//! Configuration, its presets and their validation.
//!
//! Presets follow hashicorp memberlist's proven defaults, adjusted where Shoal's design
//! differs (digest-based anti-entropy is cheap, so it runs more often). Retransmit counts and
//! timeouts scale with the cluster size the node currently sees, not a size fixed up front.

use crate::{ConfigError, DampingConfig, PartitionConfig, PhiConfig};
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
    /// How often each observer heartbeats the members it watches.
    pub heartbeat_interval: Duration,
    /// How many observers watch each member on a hash ring: its `ceil(observers / 2)` nearest
    /// successors ping it every heartbeat interval, and the rest, its nearest predecessors,
    /// take the pings it sends them as its heartbeats (`observers.rs`); everyone watches
    /// everyone when the cluster has at most `observers + 1` members.
    pub observers: usize,
    /// The phi accrual detector each observer keeps per watched member.
    pub phi: PhiConfig,
    /// How often this node probes one member in round-robin order (SWIM), besides heartbeats.
    pub probe_interval: Duration,
    /// How long a direct or indirect probe waits for its ack (before local-health scaling).
    pub probe_timeout: Duration,
    /// How many members are asked to probe indirectly (SWIM ping-req) before suspecting.
    pub indirect_probes: usize,
    /// Shortest suspicion timeout, reached when enough independent observers confirm.
    pub suspicion_min: Duration,
    /// The suspicion timeout without confirmations is `suspicion_min × suspicion_max_mult`.
    pub suspicion_max_mult: u32,
    /// Highest local-health score (Lifeguard): timeouts stretch up to `(score + 1)×`.
    pub awareness_max: u32,
    /// A suspicion nobody else confirmed declares its subject failed only after this long
    /// (when others could confirm): one sick observer, deaf or behind a lossy link, cannot
    /// fail a healthy member on its own (docs/detection.md, "Confirmation").
    pub lone_suspicion_timeout: Duration,
    /// Flap damping: a member that keeps going and coming back is held down
    /// ([`DampingConfig`]).
    pub damping: DampingConfig,
    /// Partition detection.
    pub partition: PartitionConfig,
    /// How often this node tries to reach one failed (or reaped) member again, so a rebooted
    /// node or a healed partition merges back on its own.
    pub reconnect_interval: Duration,
    /// How long a failed member's address is kept for reconnect attempts after it is reaped.
    pub reconnect_timeout: Duration,
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
            heartbeat_interval: Duration::from_millis(400),
            observers: 3,
            phi: PhiConfig {
                threshold: 8.0,
                max_samples: 200,
                min_std_dev: Duration::from_millis(50),
                // Crossing the threshold only triggers a probe, never a suspicion by itself,
                // so the detector can be eager.
                acceptable_heartbeat_pause: Duration::ZERO,
                first_heartbeat_estimate: Duration::from_millis(400),
            },
            probe_interval: Duration::from_secs(1),
            probe_timeout: Duration::from_millis(300),
            indirect_probes: 3,
            suspicion_min: Duration::from_millis(600),
            suspicion_max_mult: 3,
            awareness_max: 8,
            lone_suspicion_timeout: Duration::from_secs(30),
            damping: DampingConfig::default(),
            partition: PartitionConfig {
                quorum: 0.5,
                stable_after: Duration::from_millis(1500),
                mass_loss: 0.25,
            },
            reconnect_interval: Duration::from_secs(2),
            reconnect_timeout: Duration::from_secs(24 * 3600),
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
            heartbeat_interval: Duration::from_secs(1),
            phi: PhiConfig {
                first_heartbeat_estimate: Duration::from_secs(1),
                ..PhiConfig::wan()
            },
            probe_interval: Duration::from_secs(2),
            probe_timeout: Duration::from_millis(1000),
            suspicion_min: Duration::from_secs(4),
            lone_suspicion_timeout: Duration::from_secs(60),
            partition: PartitionConfig {
                stable_after: Duration::from_secs(10),
                ..PartitionConfig::default()
            },
            reconnect_interval: Duration::from_secs(10),
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
            heartbeat_interval: Duration::from_millis(200),
            phi: PhiConfig {
                first_heartbeat_estimate: Duration::from_millis(200),
                min_std_dev: Duration::from_millis(50),
                ..Config::lan().phi
            },
            probe_interval: Duration::from_millis(500),
            probe_timeout: Duration::from_millis(150),
            suspicion_min: Duration::from_millis(500),
            partition: PartitionConfig {
                stable_after: Duration::from_secs(1),
                ..PartitionConfig::default()
            },
            reconnect_interval: Duration::from_secs(1),
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
        if self.heartbeat_interval < Duration::from_millis(1) {
            return bad("heartbeat_interval", "must be at least 1 ms");
        }
        if self.observers == 0 || self.observers > 16 {
            return bad("observers", "must be 1 to 16");
        }
        self.phi.validate()?;
        self.partition.validate()?;
        if self.probe_timeout.is_zero() || self.probe_timeout >= self.probe_interval {
            return bad("probe_timeout", "must be non-zero and below probe_interval");
        }
        if self.indirect_probes > 16 {
            return bad("indirect_probes", "must be at most 16");
        }
        if self.suspicion_min.is_zero()
            || self.suspicion_max_mult == 0
            || self.suspicion_max_mult > 100
        {
            return bad(
                "suspicion_min",
                "must be non-zero, with suspicion_max_mult 1 to 100",
            );
        }
        if self.lone_suspicion_timeout.is_zero() {
            return bad("lone_suspicion_timeout", "must be non-zero");
        }
        if !self.damping.is_valid() {
            return bad(
                "damping",
                "needs a non-zero half_life, 0 < reuse < suppress <= ceiling, hold_min <= hold_max",
            );
        }
        if self.awareness_max > 32 {
            return bad("awareness_max", "must be at most 32");
        }
        if self.reconnect_interval.is_zero() {
            return bad("reconnect_interval", "must be non-zero");
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
