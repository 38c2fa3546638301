//! [`TokioRuntime`]: the tokio implementation of the core's [`Runtime`] trait (quinn's
//! `runtime/tokio.rs`, for Shoal).

use shoal_core::driver::{AsyncTimer, AsyncUdpSocket, Runtime};
use std::future::Future;
use std::io;
use std::net::SocketAddr;
use std::pin::Pin;
use std::sync::Arc;
use std::task::{Context, Poll};
use std::time::Instant;
use tokio::io::ReadBuf;
use tokio::time::Sleep;

/// Drives Shoal on the current tokio runtime: tokio timers, `tokio::spawn` and tokio's UDP
/// reactor. Must be used from inside a tokio runtime (with the `time` and `net` drivers on).
#[derive(Debug, Default, Clone, Copy)]
pub struct TokioRuntime;

impl Runtime for TokioRuntime {
    fn new_timer(&self, deadline: Instant) -> Pin<Box<dyn AsyncTimer>> {
        Box::pin(TokioTimer(Box::pin(tokio::time::sleep_until(
            deadline.into(),
        ))))
    }

    fn spawn(&self, future: Pin<Box<dyn Future<Output = ()> + Send>>) {
        tokio::spawn(future);
    }

    fn wrap_udp_socket(&self, socket: std::net::UdpSocket) -> io::Result<Arc<dyn AsyncUdpSocket>> {
        socket.set_nonblocking(true)?;
        Ok(Arc::new(TokioUdpSocket {
            io: tokio::net::UdpSocket::from_std(socket)?,
        }))
    }

    /// tokio's clock, so paused test time (`tokio::time::pause`) drives the node too.
    fn now(&self) -> Instant {
        tokio::time::Instant::now().into_std()
    }
}

/// A tokio `Sleep` (boxed: the trait object must be `Unpin`-agnostic and the crate forbids
/// `unsafe`, so no pin projection).
#[derive(Debug)]
struct TokioTimer(Pin<Box<Sleep>>);

impl AsyncTimer for TokioTimer {
    fn reset(mut self: Pin<&mut Self>, deadline: Instant) {
        self.0.as_mut().reset(deadline.into());
    }

    fn poll(mut self: Pin<&mut Self>, cx: &mut Context<'_>) -> Poll<()> {
        self.0.as_mut().poll(cx)
    }
}

/// A tokio UDP socket behind the core's polling interface.
#[derive(Debug)]
pub(crate) struct TokioUdpSocket {
    io: tokio::net::UdpSocket,
}

impl AsyncUdpSocket for TokioUdpSocket {
    fn poll_recv_from(
        &self,
        cx: &mut Context<'_>,
        buf: &mut [u8],
    ) -> Poll<io::Result<(usize, SocketAddr)>> {
        let mut read = ReadBuf::new(buf);
        match self.io.poll_recv_from(cx, &mut read) {
            Poll::Ready(Ok(from)) => Poll::Ready(Ok((read.filled().len(), from))),
            Poll::Ready(Err(e)) => Poll::Ready(Err(e)),
            Poll::Pending => Poll::Pending,
        }
    }

    fn poll_send_to(
        &self,
        cx: &mut Context<'_>,
        buf: &[u8],
        target: SocketAddr,
    ) -> Poll<io::Result<usize>> {
        self.io.poll_send_to(cx, buf, target)
    }

    fn local_addr(&self) -> io::Result<SocketAddr> {
        self.io.local_addr()
    }
}
