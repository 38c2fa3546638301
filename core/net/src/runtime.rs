//! The runtime binding: how a facade plugs an async runtime into the network layer.
//!
//! Everything here is written against quinn's runtime abstraction ([`quinn::Runtime`]: timers,
//! spawning, UDP sockets, the clock), so one `Arc<dyn quinn::Runtime>` is all a runtime has to
//! supply: quinn's own `TokioRuntime` or `SmolRuntime`. A facade names it once, as a
//! zero-sized type implementing [`RuntimeBinding`], and exports the public types instantiated
//! with it (`pub type Server = shoal_net::Server<Tokio>;`), so user code is the same on every
//! runtime and no public item exposes a runtime's type.

use quinn::{AsyncTimer, Runtime};
use std::future::{poll_fn, Future};
use std::pin::{pin, Pin};
use std::sync::Arc;
use std::task::{Context, Poll};
use std::time::{Duration, Instant};

/// A runtime for the network layer, named by a zero-sized marker type.
///
/// Implemented by the facades (`shoal_tokio::Tokio`, `shoal_smol::Smol`); implement it
/// yourself to run Shoal on another runtime quinn supports.
pub trait RuntimeBinding: Send + Sync + 'static {
    /// The runtime's timers, spawner, UDP sockets and clock.
    fn runtime() -> Arc<dyn Runtime>;

    /// Runs `future` in the background. The default boxes it for [`Runtime::spawn`]; a
    /// binding overrides it to spawn the future as it is (the server spawns one task per
    /// call, so the box would be one allocation per call).
    fn spawn<F>(future: F)
    where
        F: Future<Output = ()> + Send + 'static,
    {
        Self::runtime().spawn(Box::pin(future));
    }

    /// A thread of its own for the protocol drivers of a node or server started now (the
    /// gossip loop, quinn's endpoint and connection drivers), or `None` (the default) to run
    /// them on the caller's runtime. Called once per [`crate::Cluster::start`] and
    /// [`crate::Server::bind`], from the caller's context.
    ///
    /// The tokio facade returns one when the caller runs on tokio's multi-thread runtime:
    /// there, a call's stream write wakes quinn's connection driver into the same worker's
    /// LIFO slot, so the driver runs at once and sends every call's frame in a datagram of
    /// its own, and the drivers wander between workers (docs/adapters.md).
    fn network_thread() -> std::io::Result<Option<Arc<dyn NetworkThread>>> {
        Ok(None)
    }
}

/// A thread that runs a single-threaded runtime of its own, on which a node's protocol
/// drivers run: the gossip loop and quinn's endpoint and connection drivers. Calls, handlers
/// and everything else of the application stay on the application's runtime. Supplied by a
/// binding's [`RuntimeBinding::network_thread`].
///
/// The network layer holds it (behind an `Arc`) for as long as the node or server lives;
/// a binding stops the thread when the last reference is dropped, and should also stop it
/// when the application's runtime shuts down (which drops every task left on the thread, as
/// that runtime would have).
pub trait NetworkThread: Send + Sync + std::fmt::Debug + 'static {
    /// The thread's runtime: timers, sockets and tasks made through it belong to the
    /// thread, whichever thread asks.
    fn runtime(&self) -> Arc<dyn Runtime>;
}

/// Where a node's (or server's) drivers run: the caller's runtime, or a network thread
/// (kept alive by this). Chosen once, at start.
#[derive(Clone, Debug)]
pub(crate) struct Placement {
    /// Timers, sockets and driver tasks for this node.
    pub(crate) runtime: Arc<dyn Runtime>,
    /// The network thread, if the drivers run on one.
    _thread: Option<Arc<dyn NetworkThread>>,
}

impl Placement {
    /// `R`'s choice for a node or server started from here.
    pub(crate) fn of<R: RuntimeBinding>() -> std::io::Result<Placement> {
        Ok(match R::network_thread()? {
            None => Placement {
                runtime: R::runtime(),
                _thread: None,
            },
            Some(thread) => Placement {
                runtime: thread.runtime(),
                _thread: Some(thread),
            },
        })
    }
}

/// A deadline passed before the future finished.
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub(crate) struct Elapsed;

/// Runs `future` until it finishes or `deadline` passes, whichever comes first. One timer
/// (one allocation, as tokio's boxed `timeout_at` had) per call.
pub(crate) async fn timeout_at<F: Future>(
    runtime: &dyn Runtime,
    deadline: Instant,
    future: F,
) -> Result<F::Output, Elapsed> {
    let mut future = pin!(future);
    let mut timer: Option<Pin<Box<dyn AsyncTimer>>> = None;
    poll_fn(|cx| {
        if let Poll::Ready(v) = future.as_mut().poll(cx) {
            return Poll::Ready(Ok(v));
        }
        // The timer is made on the first poll that did not finish: a call answered at once
        // never allocates one.
        let t = timer.get_or_insert_with(|| runtime.new_timer(deadline));
        match t.as_mut().poll(cx) {
            Poll::Ready(()) => Poll::Ready(Err(Elapsed)),
            Poll::Pending => Poll::Pending,
        }
    })
    .await
}

/// [`timeout_at`] `duration` from now (by the runtime's clock).
pub(crate) async fn timeout<F: Future>(
    runtime: &dyn Runtime,
    duration: Duration,
    future: F,
) -> Result<F::Output, Elapsed> {
    let deadline = runtime.now() + duration;
    timeout_at(runtime, deadline, future).await
}

/// Waits `duration` (by the runtime's clock).
pub async fn sleep(runtime: &dyn Runtime, duration: Duration) {
    let mut timer = runtime.new_timer(runtime.now() + duration);
    poll_fn(|cx| timer.as_mut().poll(cx)).await
}

/// A runtime-neutral identity of the task polling the caller: the data pointer of the waker it
/// was polled with. For tokio that is the task's header, for smol (async-task) the task
/// itself, so it is stable for a task's whole life and differs between live tasks. Used only
/// as a hint (which pooled connection a task prefers), never for correctness: a combinator
/// that wraps wakers (a `select` helper, `FuturesUnordered`) just gives its sub-futures their
/// own identities.
pub(crate) fn task_identity(cx: &Context<'_>) -> u64 {
    cx.waker().data() as usize as u64
}

/// Resolves to the identity of the task that polls it (see [`task_identity`]).
pub(crate) async fn current_task_identity() -> u64 {
    poll_fn(|cx| Poll::Ready(task_identity(cx))).await
}

/// The end of a task spawned by the network layer ([`crate::Server::spawn`]): a future that
/// resolves with the task's output, on any runtime. Dropping it detaches the task.
#[derive(Debug)]
pub struct JoinHandle<T> {
    rx: futures_channel::oneshot::Receiver<T>,
}

/// The task ended without finishing (its runtime shut down and dropped it).
#[derive(Clone, Copy, Debug, PartialEq, Eq, thiserror::Error)]
#[error("the task was dropped before it finished")]
pub struct TaskDropped;

impl<T> Future for JoinHandle<T> {
    type Output = Result<T, TaskDropped>;

    fn poll(mut self: Pin<&mut Self>, cx: &mut Context<'_>) -> Poll<Self::Output> {
        Pin::new(&mut self.rx).poll(cx).map_err(|_| TaskDropped)
    }
}

/// Spawns `future` with `R` and returns a runtime-neutral handle to its output.
pub(crate) fn spawn_with_handle<R, F>(future: F) -> JoinHandle<F::Output>
where
    R: RuntimeBinding,
    F: Future + Send + 'static,
    F::Output: Send + 'static,
{
    let (tx, rx) = futures_channel::oneshot::channel();
    R::spawn(async move {
        let _ = tx.send(future.await);
    });
    JoinHandle { rx }
}

/// The public API of a facade crate, for one binding: re-exports of every runtime-neutral
/// type and the runtime-bound ones as aliases (`pub type Server = shoal_net::Server<Tokio>;`),
/// so `shoal_tokio::Server::new(rpc)` and `shoal_smol::Server::new(rpc)` read the same. Used
/// once by each facade (`shoal_net::facade!(Tokio, "tokio");`), so the two cannot drift apart.
#[macro_export]
macro_rules! facade {
    ($binding:ident, $runtime:literal) => {
        /// The sans-IO core.
        pub use $crate::core;
        pub use $crate::{
            CallError, CallOptions, CallPhase, CallResponse, ClientEndpoints, ClusterConfig,
            ClusterError, ClusterEvent, ClusterStats, CommandFuture, EventStream, HandlerError,
            JoinHandle, Key, Keyring, LoadBalancingStrategy, MemberSnapshot, MemberState, NodeId,
            RpcConfig, ServerError, TaskDropped, TlsConfig, WorkerInfo, DEFAULT_BIND_ADDR,
        };

        #[doc = concat!("A running cluster node on ", $runtime, " (see [`shoal_net::Cluster`]).")]
        pub type Cluster = $crate::Cluster<$binding>;
        #[doc = concat!("Follows the cluster's workers and their load, on ", $runtime, " (see [`shoal_net::WorkerRegistry`]).")]
        pub type WorkerRegistry = $crate::WorkerRegistry<$binding>;
        #[doc = concat!("An RPC server on ", $runtime, " (see [`shoal_net::Server`]).")]
        pub type Server = $crate::Server<$binding>;
        #[doc = concat!("Calls workers of the cluster, on ", $runtime, " (see [`shoal_net::ClusterClient`]).")]
        pub type ClusterClient = $crate::ClusterClient<$binding>;

        #[doc = concat!("RPC over QUIC: [`shoal_net::rpc`] with the server and client bound to ", $runtime, ".")]
        pub mod rpc {
            pub use super::{ClusterClient, Server};
            pub use $crate::rpc::*;
        }
    };
}
