//! [`ClusterConfig`]: how a node binds, what it advertises, who it says it is.

use crate::ClusterError;
use shoal_core::envelope::{Key, Keyring};
use shoal_core::Tags;
use std::net::SocketAddr;
use std::time::Duration;

/// Default RPC (QUIC) bind address, as in rpcnet's examples.
pub const DEFAULT_BIND_ADDR: SocketAddr =
    SocketAddr::new(std::net::IpAddr::V4(std::net::Ipv4Addr::UNSPECIFIED), 7946);

/// Settings of one cluster node. Start from [`ClusterConfig::default`] (the LAN preset) and
/// chain `with_*` calls; [`crate::Cluster::start`] validates everything.
///
/// ## Addresses and ports
/// * `bind_addr` is the RPC (QUIC) bind address. The gossip socket binds the same IP.
/// * The gossip UDP port is [`ClusterConfig::with_gossip_port`] if set, else **the RPC port
///   plus one** (QUIC is UDP too, so the two cannot share a port: `0.0.0.0:7946` gossips on
///   7947, as in rpcnet's "Port Conflicts" advice), else, when the RPC port is 0, an
///   OS-assigned port. Open that UDP port in firewalls.
/// * Peers reach this node at the *advertised* gossip address:
///   [`ClusterConfig::with_advertise_addr`] if set (NAT, containers), else the bound gossip
///   address. A wildcard bind (`0.0.0.0`, `::`) cannot be advertised, so it needs an
///   advertise address. The advertised RPC address is the advertised IP with the RPC bind
///   port (none while that port is 0, until the RPC server reports its real one).
#[derive(Clone, Debug)]
pub struct ClusterConfig {
    pub(crate) bind_addr: SocketAddr,
    pub(crate) gossip_port: Option<u16>,
    pub(crate) advertise_addr: Option<SocketAddr>,
    pub(crate) name: Option<String>,
    pub(crate) tags: Vec<(String, String)>,
    pub(crate) keyring: Option<Keyring>,
    pub(crate) core: shoal_core::Config,
    pub(crate) join_timeout: Duration,
    pub(crate) leave_timeout: Duration,
    pub(crate) event_capacity: usize,
}

impl Default for ClusterConfig {
    /// The LAN preset, binding [`DEFAULT_BIND_ADDR`], no encryption, a random name.
    fn default() -> Self {
        ClusterConfig {
            bind_addr: DEFAULT_BIND_ADDR,
            gossip_port: None,
            advertise_addr: None,
            name: None,
            tags: Vec::new(),
            keyring: None,
            core: shoal_core::Config::lan(),
            join_timeout: Duration::from_secs(10),
            leave_timeout: Duration::from_secs(5),
            event_capacity: 1024,
        }
    }
}

impl ClusterConfig {
    /// The RPC (QUIC) bind address; gossip binds its IP (see the type docs for the port).
    pub fn with_bind_addr(mut self, addr: SocketAddr) -> Self {
        self.bind_addr = addr;
        self
    }

    /// The gossip UDP port, when the default (RPC port + 1) clashes with something.
    pub fn with_gossip_port(mut self, port: u16) -> Self {
        self.gossip_port = Some(port);
        self
    }

    /// The gossip address peers should send to, when it differs from the bound one (NAT,
    /// containers, wildcard binds).
    pub fn with_advertise_addr(mut self, addr: SocketAddr) -> Self {
        self.advertise_addr = Some(addr);
        self
    }

    /// A stable node name (at most 64 bytes). The node id derives from it, so a restarted
    /// process with the same name replaces its previous record. Two live processes must
    /// never share a name. Default: a random name, new on every start.
    pub fn with_name(mut self, name: impl Into<String>) -> Self {
        self.name = Some(name.into());
        self
    }

    /// Initial tags (for example `[("role", "worker")]`), published with the first join.
    pub fn with_tags<K, V>(mut self, tags: impl IntoIterator<Item = (K, V)>) -> Self
    where
        K: Into<String>,
        V: Into<String>,
    {
        self.tags
            .extend(tags.into_iter().map(|(k, v)| (k.into(), v.into())));
        self
    }

    /// Encrypts and authenticates all gossip with this keyring (see
    /// [`shoal_core::envelope`]). Without a keyring gossip is plaintext: for trusted networks
    /// and development only.
    pub fn with_keyring(mut self, keyring: Keyring) -> Self {
        self.keyring = Some(keyring);
        self
    }

    /// Shorthand for a keyring of one 32-byte cluster key.
    pub fn with_cluster_key(self, key: [u8; 32]) -> Self {
        self.with_keyring(Keyring::new(Key::new(key)))
    }

    /// The core tunables: a preset (`shoal_core::Config::lan()`, `wan()`, `local()`) or a
    /// customised one.
    pub fn with_core_config(mut self, core: shoal_core::Config) -> Self {
        self.core = core;
        self
    }

    /// The cluster name; nodes of differently named clusters ignore each other.
    pub fn with_cluster_name(mut self, name: impl Into<String>) -> Self {
        self.core.cluster_name = name.into();
        self
    }

    /// How long [`crate::Cluster::join`] waits for a seed to answer (default 10 s).
    pub fn with_join_timeout(mut self, timeout: Duration) -> Self {
        self.join_timeout = timeout;
        self
    }

    /// How long [`crate::Cluster::leave`] waits for the leave to finish (default 5 s).
    pub fn with_leave_timeout(mut self, timeout: Duration) -> Self {
        self.leave_timeout = timeout;
        self
    }

    /// Events buffered per subscriber before it receives a lag signal (default 1024).
    pub fn with_event_capacity(mut self, capacity: usize) -> Self {
        self.event_capacity = capacity;
        self
    }

    /// The RPC bind address.
    pub fn bind_addr(&self) -> SocketAddr {
        self.bind_addr
    }

    /// The address the gossip socket binds, by the rule in the type docs.
    pub fn gossip_bind_addr(&self) -> Result<SocketAddr, ClusterError> {
        let port = match (self.gossip_port, self.bind_addr.port()) {
            (Some(p), _) => p,
            (None, 0) => 0,
            (None, rpc) => rpc.checked_add(1).ok_or(ClusterError::InvalidSetting {
                field: "gossip_port",
                reason: "the RPC port is 65535, so the default gossip port (RPC + 1) does not \
                         exist; set with_gossip_port"
                    .into(),
            })?,
        };
        if port != 0 && port == self.bind_addr.port() {
            return Err(ClusterError::InvalidSetting {
                field: "gossip_port",
                reason: format!("gossip and RPC (QUIC) are both UDP and cannot share port {port}"),
            });
        }
        Ok(SocketAddr::new(self.bind_addr.ip(), port))
    }

    /// Checks every setting without binding anything.
    pub fn validate(&self) -> Result<(), ClusterError> {
        self.core.validate()?;
        self.gossip_bind_addr()?;
        if let Some(name) = &self.name {
            if name.is_empty() || name.len() > shoal_core::membership::MAX_NAME {
                return Err(ClusterError::InvalidSetting {
                    field: "name",
                    reason: format!("must be 1 to {} bytes", shoal_core::membership::MAX_NAME),
                });
            }
        }
        self.initial_tags()?;
        if let Some(a) = self.advertise_addr {
            if a.ip().is_unspecified() || a.port() == 0 {
                return Err(ClusterError::InvalidSetting {
                    field: "advertise_addr",
                    reason: "must be a concrete IP and a non-zero port".into(),
                });
            }
        }
        if self.join_timeout.is_zero() || self.leave_timeout.is_zero() {
            return Err(ClusterError::InvalidSetting {
                field: "join_timeout/leave_timeout",
                reason: "must be non-zero".into(),
            });
        }
        Ok(())
    }

    pub(crate) fn initial_tags(&self) -> Result<Tags, ClusterError> {
        let mut tags = Tags::new();
        for (k, v) in &self.tags {
            tags.insert(k, v)
                .map_err(|e| ClusterError::Command(e.into()))?;
        }
        Ok(tags)
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    fn addr(s: &str) -> SocketAddr {
        s.parse().unwrap()
    }

    #[test]
    fn gossip_port_defaults_to_rpc_port_plus_one() {
        let c = ClusterConfig::default().with_bind_addr(addr("10.0.0.1:7946"));
        assert_eq!(c.gossip_bind_addr().unwrap(), addr("10.0.0.1:7947"));
        let c = c.with_gossip_port(9000);
        assert_eq!(c.gossip_bind_addr().unwrap(), addr("10.0.0.1:9000"));
        let c = ClusterConfig::default().with_bind_addr(addr("127.0.0.1:0"));
        assert_eq!(c.gossip_bind_addr().unwrap(), addr("127.0.0.1:0"));
    }

    #[test]
    fn clashing_or_impossible_ports_are_refused() {
        let c = ClusterConfig::default()
            .with_bind_addr(addr("127.0.0.1:7946"))
            .with_gossip_port(7946);
        assert!(matches!(
            c.validate(),
            Err(ClusterError::InvalidSetting {
                field: "gossip_port",
                ..
            })
        ));
        let c = ClusterConfig::default().with_bind_addr(addr("127.0.0.1:65535"));
        assert!(c.validate().is_err());
    }

    #[test]
    fn bad_names_tags_and_core_configs_are_refused() {
        assert!(ClusterConfig::default().with_name("").validate().is_err());
        assert!(ClusterConfig::default()
            .with_name("x".repeat(65))
            .validate()
            .is_err());
        assert!(ClusterConfig::default()
            .with_tags([("k".repeat(100), "v")])
            .validate()
            .is_err());
        let bad = shoal_core::Config {
            mtu: 10,
            ..shoal_core::Config::lan()
        };
        assert!(matches!(
            ClusterConfig::default().with_core_config(bad).validate(),
            Err(ClusterError::BadConfig(_))
        ));
        assert!(ClusterConfig::default()
            .with_advertise_addr(addr("0.0.0.0:1"))
            .validate()
            .is_err());
        assert!(ClusterConfig::default()
            .with_tags([("role", "worker")])
            .with_cluster_key([7; 32])
            .validate()
            .is_ok());
    }
}
