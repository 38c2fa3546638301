//! The node's one QUIC endpoint (server and client on the same socket), over a socket with a
//! kill switch so tests can simulate a crash: after [`KillSwitch::kill`] the endpoint neither
//! sends nor receives, exactly like a process that vanished (no CONNECTION_CLOSE is sent).

use crate::rpc::config::RpcConfig;
use crate::rpc::error::ServerError;
use quinn::udp::{RecvMeta, Transmit};
use quinn::{AsyncUdpSocket, Runtime, UdpPoller};
use std::io::{self, IoSliceMut};
use std::net::SocketAddr;
use std::pin::Pin;
use std::sync::atomic::{AtomicBool, Ordering};
use std::sync::Arc;
use std::task::{Context, Poll};

/// Silences an endpoint's socket for good (crash simulation).
#[derive(Clone, Debug, Default)]
pub(crate) struct KillSwitch(Arc<AtomicBool>);

impl KillSwitch {
    pub(crate) fn kill(&self) {
        self.0.store(true, Ordering::Release);
    }

    fn killed(&self) -> bool {
        self.0.load(Ordering::Acquire)
    }
}

#[derive(Debug)]
struct Killable {
    inner: Arc<dyn AsyncUdpSocket>,
    switch: KillSwitch,
}

impl AsyncUdpSocket for Killable {
    fn create_io_poller(self: Arc<Self>) -> Pin<Box<dyn UdpPoller>> {
        self.inner.clone().create_io_poller()
    }

    fn try_send(&self, transmit: &Transmit) -> io::Result<()> {
        if self.switch.killed() {
            return Ok(());
        }
        self.inner.try_send(transmit)
    }

    fn poll_recv(
        &self,
        cx: &mut Context,
        bufs: &mut [IoSliceMut<'_>],
        meta: &mut [RecvMeta],
    ) -> Poll<io::Result<usize>> {
        loop {
            let r = self.inner.poll_recv(cx, bufs, meta);
            // Dead: drain and drop whatever arrives; Pending re-registers the waker.
            if self.switch.killed() && matches!(r, Poll::Ready(_)) {
                continue;
            }
            return r;
        }
    }

    fn local_addr(&self) -> io::Result<SocketAddr> {
        self.inner.local_addr()
    }

    fn max_transmit_segments(&self) -> usize {
        self.inner.max_transmit_segments()
    }

    fn max_receive_segments(&self) -> usize {
        self.inner.max_receive_segments()
    }

    fn may_fragment(&self) -> bool {
        self.inner.may_fragment()
    }
}

/// Binds `addr` and starts an endpoint, serving if `server` (with `config`'s certificates).
pub(crate) fn bind(
    config: &RpcConfig,
    addr: SocketAddr,
    server: bool,
    runtime: Arc<dyn Runtime>,
) -> Result<(quinn::Endpoint, KillSwitch), ServerError> {
    let server_config = if server {
        Some(config.quinn_server()?)
    } else {
        None
    };
    let switch = KillSwitch::default();
    let endpoint = bind_with(addr, server_config, switch.clone(), runtime)?;
    Ok((endpoint, switch))
}

/// A client-only endpoint on `addr`, silenced by `switch` (the node's, so that killing the
/// node silences its client connections too).
pub(crate) fn bind_client(
    addr: SocketAddr,
    switch: KillSwitch,
    runtime: Arc<dyn Runtime>,
) -> io::Result<quinn::Endpoint> {
    bind_with(addr, None, switch, runtime)
}

fn bind_with(
    addr: SocketAddr,
    server_config: Option<quinn::ServerConfig>,
    switch: KillSwitch,
    runtime: Arc<dyn Runtime>,
) -> io::Result<quinn::Endpoint> {
    let socket = std::net::UdpSocket::bind(addr)?;
    let sock = Arc::new(Killable {
        inner: runtime.wrap_udp_socket(socket)?,
        switch,
    });
    quinn::Endpoint::new_with_abstract_socket(
        quinn::EndpointConfig::default(),
        server_config,
        sock,
        runtime,
    )
}
