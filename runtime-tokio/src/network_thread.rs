//! The network thread the tokio binding gives a node started on tokio's multi-thread
//! runtime ([`shoal_net::NetworkThread`]; why, in docs/adapters.md): one OS thread running a
//! current-thread tokio runtime, stopped when nothing refers to it any more or when the
//! application's runtime shuts down (a guard task on that runtime is dropped with it).

use std::future::{poll_fn, Future};
use std::io;
use std::pin::Pin;
use std::sync::Arc;
use std::task::Poll;
use std::time::Instant;
use tokio::runtime::Handle;
use tokio::sync::oneshot;

/// One network thread.
#[derive(Debug)]
pub(crate) struct TokioThread {
    /// Its runtime.
    handle: Handle,
    /// Dropped with the last reference: stops the thread.
    _stop: oneshot::Sender<()>,
}

impl TokioThread {
    /// Starts a network thread for the application runtime `app`.
    pub(crate) fn start(app: Handle) -> io::Result<Arc<TokioThread>> {
        let rt = tokio::runtime::Builder::new_current_thread()
            .enable_all()
            .build()?;
        let handle = rt.handle().clone();
        let (stop_tx, mut stop_rx) = oneshot::channel::<()>();
        let (mut app_tx, mut app_rx) = oneshot::channel::<()>();
        std::thread::Builder::new()
            .name("shoal-net".into())
            .spawn(move || {
                // Runs until the last reference is dropped or the application runtime's
                // guard task is; then dropping `rt` drops every task left on it, as the
                // application runtime's shutdown would have.
                rt.block_on(poll_fn(|cx| {
                    if Pin::new(&mut stop_rx).poll(cx).is_ready()
                        || Pin::new(&mut app_rx).poll(cx).is_ready()
                    {
                        Poll::Ready(())
                    } else {
                        Poll::Pending
                    }
                }));
                drop(app_rx);
                drop(rt);
            })?;
        // The guard: dropped when the application runtime shuts down, or done when the
        // thread has ended (its receiver dropped).
        app.spawn(async move { app_tx.closed().await });
        Ok(Arc::new(TokioThread {
            handle,
            _stop: stop_tx,
        }))
    }
}

impl shoal_net::NetworkThread for TokioThread {
    fn runtime(&self) -> Arc<dyn quinn::Runtime> {
        Arc::new(ThreadRuntime(self.handle.clone()))
    }
}

/// quinn's tokio runtime, pinned to the network thread's runtime whichever thread calls it
/// (quinn's own `TokioRuntime` uses the caller's current runtime).
#[derive(Debug)]
struct ThreadRuntime(Handle);

impl quinn::Runtime for ThreadRuntime {
    fn new_timer(&self, t: Instant) -> Pin<Box<dyn quinn::AsyncTimer>> {
        let _rt = self.0.enter();
        quinn::TokioRuntime.new_timer(t)
    }

    fn spawn(&self, future: Pin<Box<dyn Future<Output = ()> + Send>>) {
        self.0.spawn(future);
    }

    fn wrap_udp_socket(
        &self,
        sock: std::net::UdpSocket,
    ) -> io::Result<Arc<dyn quinn::AsyncUdpSocket>> {
        let _rt = self.0.enter();
        quinn::TokioRuntime.wrap_udp_socket(sock)
    }

    fn now(&self) -> Instant {
        quinn::TokioRuntime.now()
    }
}
