//! The runtime binding: how a facade plugs an async runtime into the network layer.
//!
//! Everything here is written against quinn's runtime abstraction ([`quinn::Runtime`]: timers,
//! spawning, UDP sockets, the clock), so one `Arc<dyn quinn::Runtime>` is all a runtime has to
//! supply: quinn's own `TokioRuntime` or `SmolRuntime`. A facade names it once, as a
//! zero-sized type implementing [`RuntimeBinding`], and exports the public types instantiated
//! with it (`pub type Server = shoal_net::Server<Tokio>;`), so user code is the same on every
//! runtime and no public item exposes a runtime's type.

mod handoff;

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

    /// A thread of its own for the network work of a node or server started now, or `None`
    /// (the default) to run it on the caller's runtime. Called once per
    /// [`crate::Cluster::start`] and [`crate::Server::bind`], from the caller's context.
    ///
    /// The tokio facade returns one when the caller runs on tokio's multi-thread runtime:
    /// there, quinn's connection drivers, the calls' streams and the server's per-call tasks
    /// land on different workers, so every call pays cross-thread wake-ups and each
    /// connection sends a datagram per call instead of one per batch (docs/adapters.md).
    fn network_thread() -> std::io::Result<Option<Arc<dyn NetworkThread>>> {
        Ok(None)
    }
}

/// A thread that runs a single-threaded runtime of its own, on which a node's network work
/// runs: the gossip loop, quinn's endpoint and connection drivers, the server's calls and
/// handlers, and the client's calls (handed over from the application's tasks through a
/// batched queue). Supplied by a binding's [`RuntimeBinding::network_thread`].
///
/// The thread stops when nothing refers to it any more (every node, server, client and
/// endpoint on it is gone), or earlier when the application's runtime shuts down, which
/// drops every task on it (as that runtime would have dropped them).
pub trait NetworkThread: Send + Sync + std::fmt::Debug + 'static {
    /// The thread's runtime: timers, sockets and tasks made through it belong to the
    /// thread, whichever thread asks.
    fn runtime(&self) -> Arc<dyn Runtime>;

    /// Whether the calling thread is this one.
    fn is_current(&self) -> bool;

    /// Runs `poll` (one poll of a server handler's future, on this thread) with the
    /// application's runtime as the current one, so that what a handler starts (tasks,
    /// blocking work, timers) goes where it would without a network thread. The default
    /// just runs it.
    fn enter_app(&self, poll: &mut dyn FnMut()) {
        poll();
    }
}

/// Where a node's (or server's) network work runs: the caller's runtime, or a network
/// thread with its hand-off queue. Chosen once, at start.
#[derive(Clone, Debug)]
pub(crate) struct Placement {
    /// Timers, sockets and spawns for this node.
    pub(crate) runtime: Arc<dyn Runtime>,
    /// The network thread, if the work runs on one.
    pub(crate) thread: Option<NetThread>,
}

impl Placement {
    /// `R`'s choice for work started from here.
    pub(crate) fn of<R: RuntimeBinding>() -> std::io::Result<Placement> {
        Ok(match R::network_thread()? {
            None => Placement {
                runtime: R::runtime(),
                thread: None,
            },
            Some(thread) => {
                let runtime = thread.runtime();
                let (producer, consumer) = handoff::queue();
                // Jobs are spawned with `R::spawn` from the network thread itself, so they
                // become tasks of its runtime (a local queue push each).
                runtime.spawn(Box::pin(handoff::consume(consumer, |job| R::spawn(job))));
                Placement {
                    runtime,
                    thread: Some(NetThread {
                        thread,
                        queue: Arc::new(producer),
                    }),
                }
            }
        })
    }

    /// The network thread to hand work to from the calling thread: `None` when there is
    /// none, or when the caller is on it already.
    pub(crate) fn elsewhere(&self) -> Option<&NetThread> {
        self.thread.as_ref().filter(|t| !t.thread.is_current())
    }
}

/// A network thread and its hand-off queue.
#[derive(Clone, Debug)]
pub(crate) struct NetThread {
    pub(crate) thread: Arc<dyn NetworkThread>,
    queue: Arc<handoff::Producer>,
}

impl NetThread {
    /// Runs `future` as a task on the network thread and resolves with its output
    /// ([`TaskDropped`] if the thread stopped first). Handed over on the first poll (futures
    /// stay lazy). Dropping the returned future cancels `future` at its next poll, as
    /// dropping it in place would have.
    pub(crate) async fn run<F>(&self, future: F) -> Result<F::Output, TaskDropped>
    where
        F: Future + Send + 'static,
        F::Output: Send + 'static,
    {
        let (mut tx, rx) = futures_channel::oneshot::channel();
        self.queue.push(Box::pin(async move {
            let mut future = pin!(future);
            let out = poll_fn(|cx| {
                if let Poll::Ready(v) = future.as_mut().poll(cx) {
                    return Poll::Ready(Some(v));
                }
                // The caller dropped its end: stop here, dropping the work (cancellation).
                tx.poll_canceled(cx).map(|()| None)
            })
            .await;
            if let Some(v) = out {
                let _ = tx.send(v);
            }
        }));
        JoinHandle { rx }.await
    }

    /// Spawns `future` on the network thread, returning a handle to its output.
    pub(crate) fn spawn_with_handle<F>(&self, future: F) -> JoinHandle<F::Output>
    where
        F: Future + Send + 'static,
        F::Output: Send + 'static,
    {
        let (tx, rx) = futures_channel::oneshot::channel();
        self.queue.push(Box::pin(async move {
            let _ = tx.send(future.await);
        }));
        JoinHandle { rx }
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
