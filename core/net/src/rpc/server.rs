//! [`Server`]: serves registered handlers over QUIC, one bidirectional stream per call.
//!
//! A call: read one request frame (decoded by the core's [`Decoder`] under the configured
//! [`shoal_core::Limits`]), dispatch on its method, write one response frame, finish the
//! stream. Unknown methods answer [`Status::UnknownMethod`]; a call beyond the server's
//! concurrency cap answers [`Status::Overloaded`] at once (the client retries elsewhere);
//! a request's deadline bounds its handler ([`Status::DeadlineExceeded`]); a handler error
//! answers [`Status::HandlerFailed`] with its message; an oversized request answers
//! [`Status::PayloadTooLarge`].

use crate::rpc::config::RpcConfig;
use crate::rpc::endpoint::{self, KillSwitch};
use crate::rpc::error::{HandlerError, ServerError};
use crate::rpc::stream::{self, ReadFailure};
use crate::runtime::{self, JoinHandle, Placement, RuntimeBinding};
use crate::{Cluster, ClusterConfig};
use bytes::{Bytes, BytesMut};
use event_listener::Event as Notify;
use shoal_core::rpc::handler::{answer_too_large, response_for, HandlerOutcome};
use shoal_core::rpc::{encode_response_head, encoded_response_head_len, FrameError};
use shoal_core::{Decoder, Frame, Status};
use std::collections::HashMap;
use std::future::Future;
use std::hash::BuildHasherDefault;
use std::marker::PhantomData;
use std::net::SocketAddr;
use std::pin::Pin;
use std::sync::atomic::{AtomicBool, AtomicUsize, Ordering};
use std::sync::{Arc, OnceLock};
use std::time::Duration;

/// The future a handler returns.
pub type HandlerFuture = Pin<Box<dyn Future<Output = Result<Bytes, HandlerError>> + Send>>;

/// A registered handler: request payload in, answer payload (or a [`HandlerError`]) out.
/// Stored as a shared `Fn` so one handler serves every call concurrently; each call costs one
/// boxed future.
pub type Handler = Arc<dyn Fn(Bytes) -> HandlerFuture + Send + Sync>;

/// Stream error code sent when a request cannot be framed.
const BAD_FRAME: u32 = 1;

/// Handlers by method name, hashed with FNV-1a ([`shoal_core::Fnv1a`]) rather than SipHash:
/// one lookup per call, and SipHash of a short name cost more than the rest of the dispatch.
/// Flooding is not a concern: the map is fixed before the server binds, so callers only look
/// names up, and a lookup's cost is bounded by the registered names' buckets, whatever name
/// is asked for.
type Handlers = HashMap<String, Handler, BuildHasherDefault<shoal_core::Fnv1a>>;

struct Bound<R> {
    endpoint: quinn::Endpoint,
    runtime: Arc<dyn quinn::Runtime>,
    /// Where the endpoint's drivers run (shared with the node `enable_cluster` starts).
    place: Placement,
    kill: KillSwitch,
    handlers: Arc<Handlers>,
    config: Arc<RpcConfig>,
    decoder: Decoder,
    in_flight: AtomicUsize,
    accepting: AtomicBool,
    /// Set when `shutdown` starts (before the leave grace, while calls are still accepted):
    /// from then on a call holds its slot until its answer is acknowledged.
    shutting_down: AtomicBool,
    drained: Notify,
    cluster: OnceLock<Cluster<R>>,
}

/// An RPC server: register handlers, [`bind`](Server::bind), optionally
/// [`enable_cluster`](Server::enable_cluster), then [`run`](Server::run) (or
/// [`spawn`](Server::spawn)).
///
/// ```text
/// let mut server = Server::new(RpcConfig::insecure_dev());
/// server.register("echo", |req| async move { Ok(req) })?;
/// server.bind("127.0.0.1:0".parse()?).await?;
/// let cluster = server.enable_cluster(cluster_config).await?;
/// server.run().await?;
/// ```
///
/// `R` is the runtime binding; use the facades' aliases (`shoal_tokio::Server`).
pub struct Server<R> {
    config: Arc<RpcConfig>,
    handlers: Handlers,
    bound: Option<Arc<Bound<R>>>,
    _runtime: PhantomData<fn() -> R>,
}

impl<R: RuntimeBinding> std::fmt::Debug for Server<R> {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.debug_struct("Server")
            .field("methods", &self.handlers.keys().collect::<Vec<_>>())
            .field("local_addr", &self.local_addr())
            .finish()
    }
}

impl<R: RuntimeBinding> Server<R> {
    /// A server with these settings and no handlers.
    pub fn new(config: RpcConfig) -> Self {
        Server {
            config: Arc::new(config),
            handlers: Handlers::default(),
            bound: None,
            _runtime: PhantomData,
        }
    }

    /// Registers `handler` for `method` (replacing any previous one). Handlers are fixed
    /// when the server binds, so that a call looks its handler up without a lock: register
    /// them all first ([`ServerError::AlreadyBound`] afterwards).
    ///
    /// The handler's payload is a slice of the packet buffer it arrived in, not a copy:
    /// keeping it keeps that buffer alive (up to one receive batch, 64 KiB at most). Copy
    /// it (`Bytes::copy_from_slice`) before storing many small payloads for long.
    pub fn register<F, Fut>(&mut self, method: &str, handler: F) -> Result<(), ServerError>
    where
        F: Fn(Bytes) -> Fut + Send + Sync + 'static,
        Fut: Future<Output = Result<Bytes, HandlerError>> + Send + 'static,
    {
        if let Some(b) = &self.bound {
            return Err(ServerError::AlreadyBound(
                b.endpoint.local_addr().map_err(ServerError::Io)?,
            ));
        }
        let h: Handler = Arc::new(move |req| Box::pin(handler(req)) as HandlerFuture);
        self.handlers.insert(method.to_owned(), h);
        Ok(())
    }

    /// Binds the node's QUIC endpoint (serving, and used by a [`crate::ClusterClient`] on the
    /// same node for outgoing calls) and returns the bound address (port 0 picks one).
    pub async fn bind(&mut self, addr: SocketAddr) -> Result<SocketAddr, ServerError> {
        if let Some(b) = &self.bound {
            return Err(ServerError::AlreadyBound(b.endpoint.local_addr()?));
        }
        self.config.validate()?;
        let place = Placement::of::<R>()?;
        let runtime = place.runtime.clone();
        let (endpoint, kill) = endpoint::bind(&self.config, addr, true, runtime.clone())?;
        let local = endpoint.local_addr()?;
        self.bound = Some(Arc::new(Bound {
            endpoint,
            runtime,
            place,
            kill,
            handlers: Arc::new(std::mem::take(&mut self.handlers)),
            decoder: Decoder::new(self.config.limits),
            config: self.config.clone(),
            in_flight: AtomicUsize::new(0),
            accepting: AtomicBool::new(true),
            shutting_down: AtomicBool::new(false),
            drained: Notify::new(),
            cluster: OnceLock::new(),
        }));
        tracing::info!(%local, "RPC endpoint bound");
        Ok(local)
    }

    /// The bound address, once bound.
    pub fn local_addr(&self) -> Option<SocketAddr> {
        self.bound.as_ref()?.endpoint.local_addr().ok()
    }

    /// Starts the membership node for this server, advertising the server's RPC address, and
    /// returns its handle (then `join`, `set_tag`, ...). Binds first at the config's bind
    /// address if the server is not bound yet. With RPC port 0 the gossip port is
    /// OS-assigned too (unless set).
    pub async fn enable_cluster(
        &mut self,
        mut config: ClusterConfig,
    ) -> Result<Cluster<R>, ServerError> {
        if self.bound.is_none() {
            self.bind(config.bind_addr).await?;
        }
        let b = self.bound.clone().ok_or(ServerError::NotBound)?;
        if let Some(c) = b.cluster.get() {
            return Ok(c.clone());
        }
        let local = b.endpoint.local_addr()?;
        if config.gossip_port.is_none() && config.bind_addr.port() == 0 {
            config.gossip_port = Some(0);
        }
        config.bind_addr = SocketAddr::new(config.bind_addr.ip(), local.port());
        let cluster = Cluster::start_on(config, b.place.clone()).await?;
        cluster.set_rpc_endpoint(b.endpoint.clone(), b.kill.clone());
        let _ = b.cluster.set(cluster.clone());
        Ok(cluster)
    }

    /// The membership node started by [`Server::enable_cluster`], if any.
    pub fn cluster(&self) -> Option<&Cluster<R>> {
        self.bound.as_ref()?.cluster.get()
    }

    /// Serves until the server shuts down (or is killed).
    pub async fn run(&self) -> Result<(), ServerError> {
        let b = self.bound.clone().ok_or(ServerError::NotBound)?;
        serve(b).await;
        Ok(())
    }

    /// Serves in a background task; [`Server::shutdown`] ends it. The handle resolves when
    /// serving ends (awaiting it is optional; dropping it does not stop the server).
    pub fn spawn(&self) -> Result<JoinHandle<()>, ServerError> {
        let b = self.bound.clone().ok_or(ServerError::NotBound)?;
        Ok(runtime::spawn_with_handle::<R, _>(serve(b)))
    }

    /// Calls running now.
    pub fn in_flight(&self) -> usize {
        self.bound
            .as_ref()
            .map_or(0, |b| b.in_flight.load(Ordering::Acquire))
    }

    /// Graceful shutdown: leave the cluster (peers see *left* and stop sending calls), keep
    /// serving for the leave grace so calls already routed here still land, then refuse new
    /// calls, wait (up to the drain timeout) for running ones, and close the endpoint.
    pub async fn shutdown(&self) -> Result<(), ServerError> {
        let Some(b) = self.bound.clone() else {
            return Ok(());
        };
        b.shutting_down.store(true, Ordering::SeqCst);
        let mut result = Ok(());
        if let Some(c) = b.cluster.get() {
            result = c.shutdown().await.map_err(ServerError::from);
            runtime::sleep(&*b.runtime, b.config.leave_grace).await;
        }
        b.accepting.store(false, Ordering::SeqCst);
        let drain = async {
            loop {
                // Created before the check: a notify between the two is not lost.
                let notified = b.drained.listen();
                if b.in_flight.load(Ordering::SeqCst) == 0 {
                    break;
                }
                notified.await;
            }
        };
        if runtime::timeout(&*b.runtime, b.config.drain_timeout, drain)
            .await
            .is_err()
        {
            tracing::warn!(
                in_flight = b.in_flight.load(Ordering::Acquire),
                "drain timed out; closing with calls in progress"
            );
        }
        b.endpoint.close(0u32.into(), b"shutdown");
        let _ = runtime::timeout(&*b.runtime, Duration::from_secs(1), b.endpoint.wait_idle()).await;
        result
    }

    /// Simulates a crash, for tests: the endpoint goes silent at once (no CONNECTION_CLOSE,
    /// nothing received) and the membership node stops **without leaving**, so peers must
    /// detect the failure.
    pub fn kill(&self) {
        if let Some(b) = &self.bound {
            b.kill.kill();
            b.accepting.store(false, Ordering::Release);
            if let Some(c) = b.cluster.get() {
                c.kill();
            }
        }
    }
}

async fn serve<R: RuntimeBinding>(b: Arc<Bound<R>>) {
    while let Some(incoming) = b.endpoint.accept().await {
        if !b.accepting.load(Ordering::Acquire) {
            incoming.refuse();
            continue;
        }
        let b = b.clone();
        R::spawn(async move {
            match incoming.await {
                Ok(conn) => serve_connection(b, conn).await,
                Err(e) => tracing::debug!(%e, "incoming connection failed"),
            }
        });
    }
}

async fn serve_connection<R: RuntimeBinding>(b: Arc<Bound<R>>, conn: quinn::Connection) {
    let remote = conn.remote_address();
    loop {
        match conn.accept_bi().await {
            Ok((send, recv)) => {
                if !b.accepting.load(Ordering::Acquire) {
                    // Shutting down: refuse without reading (the client may retry elsewhere).
                    drop((send, recv));
                    continue;
                }
                R::spawn(serve_call(b.clone(), send, recv));
            }
            Err(e) => {
                tracing::debug!(%remote, %e, "connection ended");
                return;
            }
        }
    }
}

/// Counts a running call; at the cap, refuses (returns `None`).
struct CallSlot<'a, R>(&'a Bound<R>);

impl<'a, R> CallSlot<'a, R> {
    fn enter(b: &'a Bound<R>) -> Option<Self> {
        let before = b.in_flight.fetch_add(1, Ordering::AcqRel);
        let slot = CallSlot(b);
        (before < b.config.max_concurrent_calls).then_some(slot)
    }
}

impl<R> Drop for CallSlot<'_, R> {
    fn drop(&mut self) {
        // Only a shutdown waits for the count to reach zero, so only then is anyone told
        // (a notify per call was a tenth of the dispatch). SeqCst here and in `shutdown`
        // (store `accepting`, then load `in_flight`): of the last call's decrement and the
        // shutdown's store, whichever is second sees the other, so either this call
        // notifies or the shutdown already sees zero.
        if self.0.in_flight.fetch_sub(1, Ordering::SeqCst) == 1
            && !self.0.accepting.load(Ordering::SeqCst)
        {
            self.0.drained.notify(usize::MAX);
        }
    }
}

/// Serves one call.
///
/// Kept small on purpose (see `serve_connection`): this future is the per-call task, which
/// tokio allocates cache-line aligned. At 688 bytes the task cell crossed glibc's small-bin
/// limit, so every spawn ran `malloc_consolidate` (5 % of a busy server's CPU). Rare paths
/// (a deadline timer) are boxed, and reading and writing use the small futures of
/// [`crate::rpc::stream`].
async fn serve_call<R>(b: Arc<Bound<R>>, mut send: quinn::SendStream, mut recv: quinn::RecvStream) {
    let req = match stream::read_frame(&b.decoder, &mut recv).await {
        Ok(Frame::Request(req)) => req,
        Ok(Frame::Response(_)) => {
            refuse(&mut send, &mut recv);
            return;
        }
        Err(ReadFailure::Frame(FrameError::TooLarge { .. })) => {
            let _ = recv.stop(BAD_FRAME.into());
            let (status, payload) = response_for(HandlerOutcome::RequestTooLarge);
            let frame = response_frame(&b, status, payload);
            write_response(&mut send, frame).await;
            return;
        }
        Err(ReadFailure::Frame(e)) => {
            tracing::debug!(%e, "bad request frame");
            refuse(&mut send, &mut recv);
            return;
        }
        Err(ReadFailure::Ended | ReadFailure::Read(_)) => return,
    };
    drop(recv);
    let slot = CallSlot::enter(&b);
    let outcome = match (&slot, b.handlers.get(req.method())) {
        (None, _) => HandlerOutcome::AtCapacity,
        (Some(_), None) => HandlerOutcome::UnknownMethod,
        (Some(_), Some(h)) => {
            let fut = h(req.payload);
            let result = match req.deadline_ms {
                // The handler's future is boxed already: poll it beside one timer (the
                // timer's box is the one allocation, as tokio's boxed `timeout` was).
                Some(ms) => {
                    let mut fut = fut;
                    let deadline = b.runtime.now() + Duration::from_millis(ms.into());
                    let mut timer = b.runtime.new_timer(deadline);
                    std::future::poll_fn(|cx| match fut.as_mut().poll(cx) {
                        std::task::Poll::Ready(r) => std::task::Poll::Ready(Some(r)),
                        std::task::Poll::Pending => timer.as_mut().poll(cx).map(|()| None),
                    })
                    .await
                }
                None => Some(fut.await),
            };
            match result {
                Some(Ok(answer)) => HandlerOutcome::Answered(answer),
                Some(Err(e)) => HandlerOutcome::Failed(e.0),
                None => HandlerOutcome::DeadlinePassed,
            }
        }
    };
    let (status, payload) = response_for(outcome);
    let frame = response_frame(&b, status, payload);
    write_response(&mut send, frame).await;
    if b.shutting_down.load(Ordering::SeqCst) {
        // Shutting down: the endpoint closes once the last call is done, and a close
        // discards stream data not yet delivered. So during a drain a call counts as done
        // only when the client has acknowledged its whole answer (bounded by the drain
        // timeout, as the call itself is). Off the shutdown path this costs nothing.
        let _ = send.stopped().await;
    }
    drop(slot);
}

/// Refuses a stream that does not carry a request: stops reading and resets it.
fn refuse(send: &mut quinn::SendStream, recv: &mut quinn::RecvStream) {
    let _ = recv.stop(BAD_FRAME.into());
    let _ = send.reset(BAD_FRAME.into());
}

/// Encodes a response as the buffers to write (see [`stream::frame_buffers`]).
fn response_frame<R>(b: &Bound<R>, status: Status, payload: Bytes) -> [Bytes; 2] {
    // Exactly sized, so freezing it needs no second allocation.
    let mut head = BytesMut::with_capacity(
        encoded_response_head_len(&status) + stream::inline_len(payload.len()),
    );
    let payload = match encode_response_head(&status, payload.len(), &b.config.limits, &mut head) {
        Ok(()) => payload,
        Err(e) => {
            tracing::warn!(%e, "answer over the response limit");
            head.clear();
            let s = answer_too_large();
            // A short message always fits the limit (at least 64, by `RpcConfig::validate`).
            let _ = encode_response_head(&s, 0, &b.config.limits, &mut head);
            Bytes::new()
        }
    };
    stream::frame_buffers(head, &payload)
}

/// Writes a response and finishes the stream.
async fn write_response(send: &mut quinn::SendStream, frame: [Bytes; 2]) {
    if stream::write_frame(send, frame).await.is_ok() {
        let _ = send.finish();
    }
}
