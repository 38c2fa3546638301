//! What the drive loop needs from an async runtime, shaped like quinn's `runtime` module.
//!
//! An adapter implements [`Runtime`] in about a hundred lines (`shoal-tokio`'s
//! `TokioRuntime`, later `shoal-smol`'s); the loop itself never names a runtime.

use core::fmt::Debug;
use core::future::Future;
use core::pin::Pin;
use core::task::{Context, Poll};
use std::io;
use std::net::SocketAddr;
use std::sync::Arc;
use std::time::Instant;

/// Timers, spawning, sockets and the clock of one async runtime.
pub trait Runtime: Send + Sync + Debug + 'static {
    /// A timer that fires at `deadline`.
    fn new_timer(&self, deadline: Instant) -> Pin<Box<dyn AsyncTimer>>;
    /// Runs `future` in the background.
    fn spawn(&self, future: Pin<Box<dyn Future<Output = ()> + Send>>);
    /// Registers a bound, non-blocking-capable std socket with the runtime's reactor.
    fn wrap_udp_socket(&self, socket: std::net::UdpSocket) -> io::Result<Arc<dyn AsyncUdpSocket>>;
    /// The current time; runtimes with a virtual clock (tokio's paused time) override it.
    fn now(&self) -> Instant {
        Instant::now()
    }
}

/// A resettable one-shot timer.
pub trait AsyncTimer: Send + Debug + 'static {
    /// Re-arms the timer for `deadline`, whether or not it already fired.
    fn reset(self: Pin<&mut Self>, deadline: Instant);
    /// Ready once the deadline has passed.
    fn poll(self: Pin<&mut Self>, cx: &mut Context<'_>) -> Poll<()>;
}

/// A UDP socket driven by polling, so the loop sends and receives into its own buffers with no
/// allocation or boxing per datagram.
///
/// Adapters may wrap the raw socket here to transform datagrams (the tokio adapter seals and
/// opens the gossip envelope in this layer until the core does it itself).
pub trait AsyncUdpSocket: Send + Sync + Debug + 'static {
    /// Receives one datagram into `buf`: its length and sender.
    fn poll_recv_from(
        &self,
        cx: &mut Context<'_>,
        buf: &mut [u8],
    ) -> Poll<io::Result<(usize, SocketAddr)>>;
    /// Sends `buf` as one datagram to `target`.
    fn poll_send_to(
        &self,
        cx: &mut Context<'_>,
        buf: &[u8],
        target: SocketAddr,
    ) -> Poll<io::Result<usize>>;
    /// The bound local address.
    fn local_addr(&self) -> io::Result<SocketAddr>;
}
