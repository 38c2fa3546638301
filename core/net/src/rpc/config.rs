//! [`RpcConfig`]: TLS, size limits, caps and timeouts of the QUIC RPC path.

use crate::rpc::error::ConfigError;
use crate::rpc::tls::TlsConfig;
use shoal_core::Limits;
use std::sync::Arc;
use std::time::Duration;

/// Which UDP sockets a [`crate::ClusterClient`]'s connections use.
#[derive(Clone, Copy, Debug, PartialEq, Eq, Default)]
pub enum ClientEndpoints {
    /// Each pooled connection has its own QUIC endpoint: its own UDP socket (an ephemeral
    /// port) and endpoint driver. The default, because it is faster: 1-byte calls at 256 in
    /// flight over 4 connections went 8 % faster than with one shared endpoint, which
    /// demultiplexes every datagram of every connection in one task (BENCHMARKS.md); bare
    /// quinn is fastest this way too.
    #[default]
    PerConnection,
    /// Every connection shares one endpoint: the node's own (its RPC port) when the
    /// client's cluster was started by [`crate::Server::enable_cluster`], otherwise one
    /// client endpoint. One UDP port in all, for networks that must see a single port.
    Shared,
}

/// Settings of a [`crate::Server`] or [`crate::ClusterClient`]. There is deliberately no
/// `Default`: TLS must be chosen, either real certificates ([`RpcConfig::new`]) or the
/// explicit development mode ([`RpcConfig::insecure_dev`]).
#[derive(Clone, Debug)]
pub struct RpcConfig {
    pub(crate) tls: TlsConfig,
    pub(crate) limits: Limits,
    pub(crate) max_concurrent_calls: usize,
    pub(crate) max_streams_per_connection: u32,
    pub(crate) connect_timeout: Duration,
    pub(crate) idle_timeout: Duration,
    pub(crate) keep_alive: Duration,
    pub(crate) connections_per_worker: u16,
    pub(crate) client_endpoints: ClientEndpoints,
    pub(crate) leave_grace: Duration,
    pub(crate) drain_timeout: Duration,
    pub(crate) call_metrics: bool,
}

impl RpcConfig {
    /// Settings with these certificates and the defaults: 4 MiB requests / 16 MiB responses,
    /// 4096 concurrent calls per server, 1024 streams per connection, 3 s connect timeout,
    /// 10 s idle timeout with a 2 s keep-alive, one connection per worker on its own
    /// endpoint ([`ClientEndpoints::PerConnection`]), and on graceful
    /// shutdown 500 ms for peers to hear of the leave, then up to 5 s to drain calls.
    pub fn new(tls: TlsConfig) -> Self {
        RpcConfig {
            tls,
            limits: Limits::default(),
            max_concurrent_calls: 4096,
            max_streams_per_connection: 1024,
            connect_timeout: Duration::from_secs(3),
            idle_timeout: Duration::from_secs(10),
            keep_alive: Duration::from_secs(2),
            connections_per_worker: 1,
            client_endpoints: ClientEndpoints::PerConnection,
            call_metrics: false,
            leave_grace: Duration::from_millis(500),
            drain_timeout: Duration::from_secs(5),
        }
    }

    /// **Development only**: [`RpcConfig::new`] with
    /// [`TlsConfig::insecure_dev_self_signed`] (generated certificates; warns when used).
    pub fn insecure_dev() -> Self {
        RpcConfig::new(TlsConfig::insecure_dev_self_signed())
    }

    /// Frame size limits, both directions.
    pub fn with_limits(mut self, limits: Limits) -> Self {
        self.limits = limits;
        self
    }

    /// Most calls one server runs at once; beyond it calls are answered `Overloaded` at once
    /// (and the client retries them elsewhere).
    pub fn with_max_concurrent_calls(mut self, n: usize) -> Self {
        self.max_concurrent_calls = n;
        self
    }

    /// Most calls in flight on one QUIC connection (its bidirectional stream limit).
    pub fn with_max_streams_per_connection(mut self, n: u32) -> Self {
        self.max_streams_per_connection = n;
        self
    }

    /// How long a connection attempt may take before the worker counts as unreachable.
    pub fn with_connect_timeout(mut self, t: Duration) -> Self {
        self.connect_timeout = t;
        self
    }

    /// QUIC idle timeout and keep-alive interval: a silent peer's connection is dropped after
    /// the idle timeout even before membership declares it failed.
    pub fn with_idle_timeout(mut self, idle: Duration, keep_alive: Duration) -> Self {
        self.idle_timeout = idle;
        self.keep_alive = keep_alive;
        self
    }

    /// Connections the client keeps to each worker (at most the balancer's
    /// `PoolConfig::max_connections`). One is enough on a current-thread runtime; more spread
    /// a busy worker's traffic over the threads of a multi-threaded one.
    pub fn with_connections_per_worker(mut self, n: u16) -> Self {
        self.connections_per_worker = n;
        self
    }

    /// Records per-call metrics on a [`crate::ClusterClient`] (calls by method and outcome,
    /// retries, a duration histogram per worker: docs/metrics.md). Off by default: at
    /// hundreds of thousands of calls a second the per-call bookkeeping costs about 5 % of
    /// the call path's throughput (BENCHMARKS.md). Per-worker series (in flight, leases,
    /// ejections, connections) are published either way, once a second.
    pub fn with_call_metrics(mut self, on: bool) -> Self {
        self.call_metrics = on;
        self
    }

    /// Which UDP sockets the client's connections use (see [`ClientEndpoints`]).
    pub fn with_client_endpoints(mut self, endpoints: ClientEndpoints) -> Self {
        self.client_endpoints = endpoints;
        self
    }

    /// Graceful shutdown: how long the server keeps serving after leaving (so callers hear of
    /// the leave before it stops accepting calls), and how long it then waits for calls in
    /// progress.
    pub fn with_shutdown_timing(mut self, leave_grace: Duration, drain_timeout: Duration) -> Self {
        self.leave_grace = leave_grace;
        self.drain_timeout = drain_timeout;
        self
    }

    /// The TLS settings.
    pub fn tls(&self) -> &TlsConfig {
        &self.tls
    }

    /// Checks every setting.
    pub fn validate(&self) -> Result<(), ConfigError> {
        let bad = |field, reason: &str| {
            Err(ConfigError::Invalid {
                field,
                reason: reason.into(),
            })
        };
        if self.max_concurrent_calls == 0 {
            return bad("max_concurrent_calls", "must be at least 1");
        }
        if self.max_streams_per_connection == 0 {
            return bad("max_streams_per_connection", "must be at least 1");
        }
        if self.connect_timeout.is_zero() || self.idle_timeout.is_zero() {
            return bad("connect_timeout/idle_timeout", "must be positive");
        }
        if self.keep_alive >= self.idle_timeout {
            return bad("keep_alive", "must be shorter than the idle timeout");
        }
        if self.connections_per_worker == 0 {
            return bad("connections_per_worker", "must be at least 1");
        }
        if self.limits.max_request < 64 || self.limits.max_response < 64 {
            return bad(
                "limits",
                "frames of under 64 bytes cannot carry a call and its errors",
            );
        }
        Ok(())
    }

    /// quinn transport settings shared by both ends.
    pub(crate) fn transport(&self) -> Result<Arc<quinn::TransportConfig>, ConfigError> {
        let mut t = quinn::TransportConfig::default();
        t.max_concurrent_bidi_streams(self.max_streams_per_connection.into());
        t.max_concurrent_uni_streams(0u32.into());
        t.keep_alive_interval(Some(self.keep_alive));
        t.max_idle_timeout(Some(self.idle_timeout.try_into().map_err(|_| {
            ConfigError::Invalid {
                field: "idle_timeout",
                reason: "too long for QUIC".into(),
            }
        })?));
        Ok(Arc::new(t))
    }

    pub(crate) fn quinn_server(&self) -> Result<quinn::ServerConfig, ConfigError> {
        let mut s = quinn::ServerConfig::with_crypto(Arc::new(self.tls.server_config()?));
        s.transport_config(self.transport()?);
        Ok(s)
    }

    pub(crate) fn quinn_client(&self) -> Result<quinn::ClientConfig, ConfigError> {
        let mut c = quinn::ClientConfig::new(Arc::new(self.tls.client_config()?));
        c.transport_config(self.transport()?);
        Ok(c)
    }
}
