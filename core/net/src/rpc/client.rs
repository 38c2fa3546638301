//! [`ClusterClient`]: calls workers chosen by the registry's balancer, over pooled QUIC
//! connections.
//!
//! Per call: one lock to select a lease and check out a pooled connection, one bidirectional
//! stream (request frame out, response frame in), one lock to finish the lease with its
//! outcome and latency. The lease is held by a guard whose `Drop` finishes it as
//! `Cancelled`, so dropping a call future never leaks an in-flight count.
//!
//! Every decision is the core's: which pooled connection a call uses and when to open another
//! ([`shoal_core::pool::connset`]), and the failover loop ([`CallMachine`]: attempts that
//! failed before the request left (no connection, stream refused) or that the worker refused
//! as overloaded are retried on another worker; attempts that failed after the request may
//! have arrived are retried only for calls marked idempotent; never more than
//! [`CallOptions::retries`] times). This module runs the sockets, the tasks and the timer, and
//! does what the machines say.

use crate::registry::state::{task_affinity, PooledConn};
use crate::registry::{select_error, Conn, Shared, WorkerInfo, WorkerRegistry};
use crate::rpc::config::{ClientEndpoints, RpcConfig};
use crate::rpc::endpoint::{self, KillSwitch};
use crate::rpc::error::{CallError, ConfigError};
use crate::rpc::stream::{self, ReadFailure};
use crate::runtime::{self, RuntimeBinding};
use bytes::{Bytes, BytesMut};
use shoal_core::pool::connset::{Attempt, Checkout, ConnId, ConnectFailure};
use shoal_core::rpc::call::{AttemptFailure, CallPhase};
use shoal_core::rpc::machine::{CallErrorKind, CallMachine, CallPolicy, CallTarget, Decision};
use shoal_core::rpc::{encode_request_head, encoded_request_head_len};
use shoal_core::{Decoder, Frame, Limits, NodeId, Outcome, Status};
use std::future::Future;
use std::marker::PhantomData;
use std::net::SocketAddr;
use std::pin::Pin;
use std::sync::Arc;
use std::task::Poll;
use std::time::Duration;
use std::time::Instant;

/// How one call may be retried and how long it may take.
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub struct CallOptions {
    /// Running the call twice is harmless, so it may be retried even after the request may
    /// have reached a worker that then failed.
    pub idempotent: bool,
    /// Overall time for the call, retries included; the worker is told the remaining time.
    pub timeout: Option<Duration>,
    /// Most retries on other workers.
    pub retries: u32,
}

impl Default for CallOptions {
    /// Not idempotent, no timeout, 2 retries (only for failures the worker cannot have run).
    fn default() -> Self {
        CallOptions {
            idempotent: false,
            timeout: None,
            retries: 2,
        }
    }
}

impl CallOptions {
    /// Marks the call idempotent.
    pub fn idempotent(mut self) -> Self {
        self.idempotent = true;
        self
    }

    /// Sets the overall timeout.
    pub fn with_timeout(mut self, timeout: Duration) -> Self {
        self.timeout = Some(timeout);
        self
    }

    /// Sets the retry budget.
    pub fn with_retries(mut self, retries: u32) -> Self {
        self.retries = retries;
        self
    }
}

/// A successful call's answer and where it came from.
#[derive(Clone, Debug, PartialEq, Eq)]
pub struct CallResponse {
    /// The worker that answered.
    pub worker: NodeId,
    /// The handler's answer.
    pub payload: Bytes,
    /// Attempts made (1 without retries).
    pub attempts: u32,
}

struct Inner<R> {
    registry: Arc<WorkerRegistry<R>>,
    /// The registry's cluster's runtime: deadlines and connect timeouts.
    runtime: Arc<dyn quinn::Runtime>,
    /// The one endpoint every connection uses ([`ClientEndpoints::Shared`]); `None`: each
    /// connection binds its own.
    shared_endpoint: Option<quinn::Endpoint>,
    /// Silences the client's own endpoints when the node is killed (tests' crash).
    kill: KillSwitch,
    client_config: quinn::ClientConfig,
    server_name: Arc<str>,
    limits: Limits,
    decoder: Decoder,
    connect_timeout: Duration,
    defaults: CallOptions,
    metrics: super::metrics::CallMetrics,
    /// [`RpcConfig::with_call_metrics`].
    call_metrics: bool,
}

/// Calls workers of the cluster: selection, pooled connections, failover, deadlines.
/// Cheap to clone (one `Arc`).
///
/// `R` is the runtime binding; use the facades' aliases (`shoal_tokio::ClusterClient`).
pub struct ClusterClient<R> {
    inner: Arc<Inner<R>>,
    _runtime: PhantomData<fn() -> R>,
}

impl<R> Clone for ClusterClient<R> {
    fn clone(&self) -> Self {
        ClusterClient {
            inner: self.inner.clone(),
            _runtime: PhantomData,
        }
    }
}

impl<R: RuntimeBinding> std::fmt::Debug for ClusterClient<R> {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.debug_struct("ClusterClient")
            .field("registry", &self.inner.registry)
            .finish()
    }
}

/// Finishes its lease exactly once: explicitly with an outcome, or as `Cancelled` on drop.
struct LeaseGuard<'a> {
    shared: &'a Shared,
    id: u64,
    armed: bool,
}

impl LeaseGuard<'_> {
    fn finish(mut self, outcome: Outcome) {
        self.armed = false;
        self.shared.finish(self.id, outcome);
    }
}

impl Drop for LeaseGuard<'_> {
    fn drop(&mut self) {
        if self.armed {
            self.shared.finish(self.id, Outcome::Cancelled);
        }
    }
}

enum Target<'a> {
    Filter(&'a str),
    Worker(NodeId),
}

impl<R: RuntimeBinding> ClusterClient<R> {
    /// A client drawing workers from `registry`. By default each pooled connection gets its
    /// own client endpoint ([`crate::ClientEndpoints::PerConnection`]); with
    /// [`crate::ClientEndpoints::Shared`] it shares the node's QUIC endpoint when the
    /// registry's cluster was started by [`crate::Server::enable_cluster`], and otherwise
    /// binds one client-only endpoint on an ephemeral port. Either way, killing the node
    /// ([`crate::Server::kill`]) silences the client's sockets too. `config` supplies the
    /// TLS roots (and client certificate for mutual TLS), limits and timeouts.
    pub fn new(registry: Arc<WorkerRegistry<R>>, config: RpcConfig) -> Result<Self, CallError> {
        config.validate()?;
        let bind_failed = |e: std::io::Error| ConfigError::Invalid {
            field: "endpoint",
            reason: e.to_string(),
        };
        let (shared_endpoint, kill) =
            match (registry.cluster().rpc_endpoint(), config.client_endpoints) {
                (Some((e, kill)), ClientEndpoints::Shared) => (Some(e.clone()), kill.clone()),
                (Some((_, kill)), ClientEndpoints::PerConnection) => (None, kill.clone()),
                (None, ClientEndpoints::Shared) => {
                    let kill = KillSwitch::default();
                    let any = SocketAddr::from(([0, 0, 0, 0], 0));
                    let e = endpoint::bind_client(
                        any,
                        kill.clone(),
                        registry.cluster().runtime().clone(),
                    )
                    .map_err(bind_failed)?;
                    (Some(e), kill)
                }
                (None, ClientEndpoints::PerConnection) => (None, KillSwitch::default()),
            };
        registry
            .shared
            .lock()
            .set_per_worker(config.connections_per_worker);
        Ok(ClusterClient {
            inner: Arc::new(Inner {
                client_config: config.quinn_client()?,
                server_name: config.tls.server_name.as_str().into(),
                limits: config.limits,
                decoder: Decoder::new(config.limits),
                connect_timeout: config.connect_timeout,
                defaults: CallOptions::default(),
                metrics: super::metrics::CallMetrics::new(registry.cluster().name()),
                call_metrics: config.call_metrics,
                runtime: registry.cluster().runtime().clone(),
                registry,
                shared_endpoint,
                kill,
            }),
            _runtime: PhantomData,
        })
    }

    /// Copies the balancer's per-worker state to the metrics recorder once a second, for as
    /// long as the client lives (the task holds only a weak reference). Started by the first
    /// call that ends, so `new` stays callable outside the runtime.
    ///
    /// Its timer is the runtime it is spawned on (`R`'s, the application's), not the
    /// cluster's: on tokio's multi-thread runtime the cluster's drivers run on a network
    /// thread that shuts down when the node stops, and a sleep registered there then panicked
    /// in this task ("A Tokio 1.x context was found, but it is being shutdown").
    fn spawn_worker_metrics(&self) {
        let weak = Arc::downgrade(&self.inner);
        R::spawn(async move {
            let runtime = R::runtime();
            loop {
                crate::sleep(&*runtime, super::metrics::WORKER_PUBLISH_INTERVAL).await;
                let Some(inner) = weak.upgrade() else { return };
                let workers = inner.registry.workers();
                inner.metrics.publish_workers(&workers);
            }
        });
    }

    /// Records a finished call in the metrics.
    fn record(
        &self,
        method: &str,
        result: Result<(), &CallError>,
        attempts: u32,
        worker: Option<(NodeId, Option<shoal_core::Timestamp>)>,
    ) {
        let inner = &*self.inner;
        if inner.metrics.start_publisher() {
            self.spawn_worker_metrics();
        }
        if !inner.call_metrics {
            return;
        }
        let took = worker.map(|(id, started)| {
            let now = inner.registry.shared.now();
            (
                id,
                started.map_or(Duration::ZERO, |s| now.saturating_since(s)),
            )
        });
        let name_of = |id: NodeId| {
            inner
                .registry
                .workers()
                .into_iter()
                .find(|w| w.id == id)
                .map_or_else(|| id.to_string(), |w| w.name)
        };
        inner.metrics.record(
            method,
            super::metrics::outcome_label(result),
            attempts,
            took,
            name_of,
        );
    }

    /// Default options for [`ClusterClient::call_worker`] (not idempotent, no timeout, 2
    /// retries unless changed here).
    pub fn with_defaults(mut self, defaults: CallOptions) -> Self {
        if let Some(inner) = Arc::get_mut(&mut self.inner) {
            inner.defaults = defaults;
        }
        self
    }

    /// The registry it draws from.
    pub fn registry(&self) -> &Arc<WorkerRegistry<R>> {
        &self.inner.registry
    }

    /// Calls `method` on one worker matching `filter` (`None`: any worker), chosen by the
    /// registry's strategy, with the default [`CallOptions`]; returns the answer payload.
    ///
    /// The answer is a slice of the packet buffer it arrived in, not a copy: keeping it
    /// keeps that buffer alive (up to one receive batch, 64 KiB at most). Copy it
    /// (`Bytes::copy_from_slice`) before storing many small answers for long.
    ///
    /// (Written as a function returning the call's future rather than an `async fn` so
    /// that no wrapper future sits around it: each level of future is built by copying the
    /// one inside it, on every call.)
    pub fn call_worker<'a>(
        &'a self,
        method: &'a str,
        payload: impl Into<Bytes>,
        filter: Option<&'a str>,
    ) -> impl Future<Output = Result<Bytes, CallError>> + Send + 'a {
        let target = Target::Filter(filter.unwrap_or(""));
        self.run(method, payload.into(), target, self.inner.defaults, |r| {
            r.payload
        })
    }

    /// [`ClusterClient::call_worker`] with explicit options, returning which worker answered.
    pub fn call<'a>(
        &'a self,
        method: &'a str,
        payload: impl Into<Bytes>,
        filter: Option<&'a str>,
        opts: CallOptions,
    ) -> impl Future<Output = Result<CallResponse, CallError>> + Send + 'a {
        let target = Target::Filter(filter.unwrap_or(""));
        self.run(method, payload.into(), target, opts, |r| r)
    }

    /// Calls `method` on every live worker matching `filter`, concurrently, once each (no
    /// failover: each call belongs to its worker). Returns one result per worker.
    pub async fn call_all_workers(
        &self,
        method: &str,
        payload: impl Into<Bytes>,
        filter: Option<&str>,
    ) -> Result<Vec<(WorkerInfo, Result<Bytes, CallError>)>, CallError> {
        let payload = payload.into();
        let f = shoal_core::Filter::parse(filter.unwrap_or(""))?;
        let workers: Vec<WorkerInfo> = self.inner.registry.live_matching(&f);
        let opts = CallOptions {
            retries: 0,
            ..self.inner.defaults
        };
        type CallFut<'a> = Pin<Box<dyn Future<Output = Result<Bytes, CallError>> + Send + 'a>>;
        let mut futs: Vec<CallFut<'_>> = workers
            .iter()
            .map(|w| {
                let payload = payload.clone();
                let id = w.id;
                Box::pin(async move {
                    self.run(method, payload, Target::Worker(id), opts, |r| r.payload)
                        .await
                }) as CallFut<'_>
            })
            .collect();
        let mut results: Vec<Option<Result<Bytes, CallError>>> = vec![None; futs.len()];
        std::future::poll_fn(|cx| {
            let mut pending = false;
            for (f, r) in futs.iter_mut().zip(results.iter_mut()) {
                if r.is_none() {
                    match f.as_mut().poll(cx) {
                        Poll::Ready(v) => *r = Some(v),
                        Poll::Pending => pending = true,
                    }
                }
            }
            if pending {
                Poll::Pending
            } else {
                Poll::Ready(())
            }
        })
        .await;
        Ok(workers
            .into_iter()
            .zip(results)
            .map(|(w, r)| (w, r.expect("every future completed")))
            .collect())
    }

    /// One call, retries included; `done` shapes a successful answer for the caller.
    async fn run<T>(
        &self,
        method: &str,
        payload: Bytes,
        target: Target<'_>,
        opts: CallOptions,
        done: impl FnOnce(CallResponse) -> T,
    ) -> Result<T, CallError> {
        let inner = &*self.inner;
        let shared = &*inner.registry.shared;
        let deadline = opts.timeout.map(|t| inner.runtime.now() + t);
        let call_target = match &target {
            Target::Filter(_) => CallTarget::Any,
            Target::Worker(id) => CallTarget::Worker(*id),
        };
        let mut machine =
            CallMachine::new(call_target, CallPolicy::new(opts.idempotent, opts.retries));
        // Read on the call's first poll: the task running the call (see `task_affinity`).
        let affinity = Some(task_affinity(runtime::current_task_identity().await));
        // Read only when per-call metrics are on (a clock read per call otherwise saved).
        let started = inner.call_metrics.then(|| shared.now());
        loop {
            let now = shared.now();
            let (lease, checkout) = {
                let mut st = shared.lock();
                let lease = match &target {
                    Target::Filter(f) => st.select_avoiding(now, f, machine.avoid()),
                    Target::Worker(id) => st
                        .balancer
                        .select_id(*id, now)
                        .map_err(crate::registry::state::SelectErr::Select),
                }
                .map_err(select_error);
                let lease = match lease {
                    Ok(lease) => lease,
                    Err(error) => {
                        drop(st);
                        self.record(method, Err(&error), machine.attempts(), None);
                        return Err(error);
                    }
                };
                let checkout = st.checkout(&lease, None, now, affinity);
                (lease, checkout)
            };
            let guard = LeaseGuard {
                shared,
                id: lease.id,
                armed: true,
            };
            // A fresh machine in a loop that only selects after an ending: always `Proceed`.
            let _ = machine.selected(&lease);
            let worker = lease.worker;
            // One copy of the attempt in the call's future, deadline or not; the timer
            // (one allocation, as tokio's boxed `timeout_at` was) only with a deadline, and
            // only once the attempt did not finish on its first poll.
            let result = {
                let mut attempt = std::pin::pin!(
                    self.attempt(&lease, checkout, method, &payload, deadline, affinity)
                );
                let mut timer: Option<Pin<Box<dyn quinn::AsyncTimer>>> = None;
                std::future::poll_fn(|cx| {
                    if let Poll::Ready(r) = attempt.as_mut().poll(cx) {
                        return Poll::Ready(r);
                    }
                    let Some(d) = deadline else {
                        return Poll::Pending;
                    };
                    let t = timer.get_or_insert_with(|| inner.runtime.new_timer(d));
                    match t.as_mut().poll(cx) {
                        Poll::Pending => Poll::Pending,
                        Poll::Ready(()) => Poll::Ready(Err(Failure::Deadline)),
                    }
                })
                .await
            };
            let failure = match result {
                Ok(payload) => {
                    guard.finish(Outcome::Completed);
                    let _ = machine.answered(&Status::Ok);
                    self.record(method, Ok(()), machine.attempts(), Some((worker, started)));
                    return Ok(done(CallResponse {
                        worker,
                        payload,
                        attempts: machine.attempts(),
                    }));
                }
                Err(failure) => failure,
            };
            let decision = match &failure {
                Failure::Connect(why) => machine.connect_failed(why),
                Failure::Open(_) => machine.open_failed(),
                Failure::Transport(phase, _) => machine.transport_failed(*phase),
                Failure::Status(status) => machine.answered(status),
                Failure::Deadline => machine.deadline_passed(),
                // Refused before it was sent: an answer about the call, never retried.
                Failure::Local(_) => {
                    machine.failed(&AttemptFailure::Status(Status::PayloadTooLarge))
                }
            };
            match decision {
                Decision::Reopen { .. } => {
                    // The pooled connection had closed (`attempt` purged it): not an
                    // attempt; select and check out once more.
                    guard.finish(Outcome::Cancelled);
                }
                Decision::Retry { outcome, .. } => {
                    guard.finish(outcome);
                    tracing::debug!(%worker, error = %failure.describe(), "call failed; retrying on another worker");
                }
                Decision::Fail { lease, kind } => {
                    guard.finish(lease.map_or(Outcome::Cancelled, |(_, o)| o));
                    let error = call_error(kind, worker, method, failure);
                    tracing::warn!(%worker, %method, %error, attempts = machine.attempts(), "call failed");
                    self.record(
                        method,
                        Err(&error),
                        machine.attempts(),
                        Some((worker, started)),
                    );
                    return Err(error);
                }
                // Not produced for a failure of the attempt under way; a guard that is
                // dropped finishes its lease as cancelled either way.
                _ => {
                    let error = call_error(
                        CallErrorKind::WorkerFailed(CallPhase::Response),
                        worker,
                        method,
                        failure,
                    );
                    return Err(error);
                }
            }
        }
    }

    /// Gets a connection for `lease` (connecting if needed).
    async fn connection(
        &self,
        lease: &shoal_core::Lease,
        mut checkout: Checkout<Conn>,
        affinity: Option<u64>,
    ) -> Result<(ConnId, Conn), Failure> {
        let shared = &*self.inner.registry.shared;
        let worker = lease.worker;
        // Each round either returns or waits for a connection attempt to end; bounded so a
        // pathological sequence of attempts can never spin.
        for _ in 0..8 {
            let gen = match checkout {
                Checkout::Ready {
                    id,
                    conn,
                    open_another,
                } => {
                    if let Some(a) = open_another {
                        self.spawn_connect(worker, a);
                    }
                    return Ok((id, conn));
                }
                Checkout::Connect { attempt, gen } => {
                    self.spawn_connect(worker, attempt);
                    gen
                }
                Checkout::Wait { gen } => gen,
                Checkout::Unavailable(why) => return Err(Failure::Connect(why)),
            };
            std::future::poll_fn(|cx| {
                if shared.lock().wait(worker, gen, cx.waker()) {
                    Poll::Pending
                } else {
                    Poll::Ready(())
                }
            })
            .await;
            let now = shared.now();
            checkout = shared.lock().checkout(lease, Some(gen), now, affinity);
        }
        Err(Failure::Connect(ConnectFailure::Unreachable(
            "no connection after repeated attempts".into(),
        )))
    }

    /// Takes connection `id` out of the pool: a call on it failed at the transport level.
    fn forget(&self, worker: NodeId, id: ConnId) {
        let shared = &*self.inner.registry.shared;
        let now = shared.now();
        shared.lock().conn_lost(worker, id, now);
    }

    /// A stream could not be opened on one of `worker`'s pooled connections: takes every
    /// closed one out of the pool.
    fn purge_closed(&self, worker: NodeId) {
        let shared = &*self.inner.registry.shared;
        let now = shared.now();
        let purged = shared.lock().purge_closed(worker, now);
        tracing::debug!(%worker, purged, "pooled connection had closed; purged");
    }

    /// Opens a connection in its own task (so a caller that gives up never abandons an
    /// attempt half-way) and hands the result to the pool.
    fn spawn_connect(&self, worker: NodeId, attempt: Attempt) {
        let inner = self.inner.clone();
        R::spawn(async move {
            let result = connect(&inner, attempt.addr).await;
            if let Err(e) = &result {
                tracing::warn!(%worker, error = %e, "connection to worker failed");
            }
            inner.metrics.connection(result.is_ok());
            let shared = &inner.registry.shared;
            let now = shared.now();
            let (wake, orphan) = shared.lock().connect_done(worker, attempt.id, result, now);
            for w in wake {
                w.wake();
            }
            if let Some(c) = orphan {
                PooledConn::close(&c);
            }
        });
    }

    /// One attempt on the leased worker.
    ///
    /// Written as short steps whose futures do not overlap, with the rare paths (waiting
    /// for a connection) boxed: the call's future lives in the caller's task and is
    /// touched on every poll, so its size shows up directly as cache misses and copies.
    async fn attempt(
        &self,
        lease: &shoal_core::Lease,
        checkout: Checkout<Conn>,
        method: &str,
        payload: &Bytes,
        deadline: Option<Instant>,
        affinity: Option<u64>,
    ) -> Result<Bytes, Failure> {
        let inner = &*self.inner;
        let worker = lease.worker;
        let (id, conn) = match checkout {
            Checkout::Ready {
                id,
                conn,
                open_another,
            } => {
                if let Some(a) = open_another {
                    self.spawn_connect(worker, a);
                }
                (id, conn)
            }
            other => Box::pin(self.connection(lease, other, affinity)).await?,
        };
        let (mut send, mut recv) = match conn.open_bi().await {
            Ok(s) => s,
            Err(e) => {
                // The connection has closed since it was pooled (idle timeout, the worker
                // closed it): purge the worker's closed connections; `run` tries again.
                self.purge_closed(worker);
                return Err(Failure::Open(e.to_string()));
            }
        };
        let lost = |phase: CallPhase, reason: String| {
            self.forget(worker, id);
            Failure::Transport(phase, reason)
        };
        let frame = match request_frame(inner, method, payload, deadline) {
            Ok(frame) => frame,
            Err(err) => {
                let _ = send.reset(0u32.into());
                return Err(Failure::Local(err));
            }
        };
        if let Err(e) = stream::write_frame(&mut send, frame).await {
            return Err(lost(CallPhase::Send, e.to_string()));
        }
        let _ = send.finish();
        drop(send);
        let response = match stream::read_frame(&inner.decoder, &mut recv).await {
            Ok(Frame::Response(r)) => r,
            Ok(Frame::Request(_)) | Err(ReadFailure::Frame(_)) => {
                return Err(Failure::Transport(
                    CallPhase::Response,
                    "malformed response frame".into(),
                ))
            }
            Err(ReadFailure::Ended) => {
                return Err(lost(
                    CallPhase::Response,
                    "stream ended before the answer".into(),
                ))
            }
            Err(ReadFailure::Read(e)) => return Err(lost(CallPhase::Response, e.to_string())),
        };
        match response.status {
            Status::Ok => Ok(response.payload),
            status => Err(Failure::Status(status)),
        }
    }
}

/// How one attempt ended without an answer, as the adapter saw it: what the core's
/// [`CallMachine`] is told, plus the text a [`CallError`] carries.
enum Failure {
    /// No connection could be had.
    Connect(ConnectFailure),
    /// The call's stream could not be opened.
    Open(String),
    /// The transport failed in this phase.
    Transport(CallPhase, String),
    /// The worker answered with a non-`Ok` status.
    Status(Status),
    /// The call's deadline passed.
    Deadline,
    /// The request could not be encoded (over the size limit, a bad method name).
    Local(CallError),
}

impl Failure {
    fn describe(&self) -> String {
        match self {
            Failure::Connect(why) => why.to_string(),
            Failure::Open(r) | Failure::Transport(_, r) => r.clone(),
            Failure::Status(s) => format!("{s:?}"),
            Failure::Deadline => "deadline exceeded".into(),
            Failure::Local(e) => e.to_string(),
        }
    }
}

/// The error a failed call returns: the core's `kind`, with the details from `failure`.
fn call_error(kind: CallErrorKind, worker: NodeId, method: &str, failure: Failure) -> CallError {
    if let Failure::Local(e) = failure {
        return e;
    }
    match kind {
        CallErrorKind::Overloaded => CallError::Overloaded {
            worker: Some(worker),
        },
        CallErrorKind::UnknownMethod => CallError::UnknownMethod {
            method: method.to_owned(),
            worker,
        },
        CallErrorKind::DeadlineExceeded => CallError::DeadlineExceeded {
            worker: Some(worker),
        },
        CallErrorKind::PayloadTooLarge => CallError::PayloadTooLarge,
        CallErrorKind::HandlerFailed => CallError::HandlerFailed {
            worker,
            message: match failure {
                Failure::Status(Status::HandlerFailed(m)) => m,
                other => other.describe(),
            },
        },
        CallErrorKind::ConnectionRefused => CallError::ConnectionRefused {
            worker,
            reason: match failure {
                Failure::Connect(ConnectFailure::Refused(r)) => r,
                other => other.describe(),
            },
        },
        CallErrorKind::WorkerFailed(during) => CallError::WorkerFailed {
            worker,
            during,
            reason: failure.describe(),
        },
    }
}

/// Encodes a request as the buffers to write (see [`stream::frame_buffers`]), telling
/// the worker how much of the deadline is left.
fn request_frame<R>(
    inner: &Inner<R>,
    method: &str,
    payload: &Bytes,
    deadline: Option<Instant>,
) -> Result<[Bytes; 2], CallError> {
    let deadline_ms = deadline.map(|d| {
        let left = d.saturating_duration_since(inner.runtime.now());
        u32::try_from(left.as_millis().max(1)).unwrap_or(u32::MAX)
    });
    // Exactly sized, so freezing it needs no second allocation.
    let mut head = BytesMut::with_capacity(
        encoded_request_head_len(method, deadline_ms) + stream::inline_len(payload.len()),
    );
    match encode_request_head(method, deadline_ms, payload.len(), &inner.limits, &mut head) {
        Ok(()) => Ok(stream::frame_buffers(head, payload)),
        Err(shoal_core::FrameError::TooLarge { .. }) => Err(CallError::PayloadTooLarge),
        Err(other) => Err(CallError::BadConfig(ConfigError::Invalid {
            field: "method",
            reason: other.to_string(),
        })),
    }
}

async fn connect<R>(
    inner: &Inner<R>,
    addr: SocketAddr,
) -> Result<quinn::Connection, ConnectFailure> {
    let own;
    let endpoint = match &inner.shared_endpoint {
        Some(e) => e,
        None => {
            // This connection's own endpoint. Dropping the handle at the end of this
            // function is fine: quinn keeps an endpoint running while it has connections.
            let any = if addr.is_ipv4() {
                SocketAddr::from(([0, 0, 0, 0], 0))
            } else {
                SocketAddr::from(([0u16; 8], 0))
            };
            own = endpoint::bind_client(any, inner.kill.clone(), inner.runtime.clone()).map_err(
                |e| ConnectFailure::Unreachable(format!("binding a client endpoint: {e}")),
            )?;
            &own
        }
    };
    let connecting = endpoint
        .connect_with(inner.client_config.clone(), addr, &inner.server_name)
        .map_err(|e| ConnectFailure::Unreachable(e.to_string()))?;
    match runtime::timeout(&*inner.runtime, inner.connect_timeout, connecting).await {
        Err(_) => Err(ConnectFailure::TimedOut(inner.connect_timeout)),
        Ok(Ok(c)) => Ok(c),
        Ok(Err(e)) if handshake_refused(&e) => Err(ConnectFailure::Refused(e.to_string())),
        Ok(Err(e)) => Err(ConnectFailure::Unreachable(e.to_string())),
    }
}

/// Whether a connection error is a TLS/handshake refusal (QUIC crypto error codes
/// 0x100..=0x1ff carry TLS alerts) rather than an unreachable peer.
fn handshake_refused(e: &quinn::ConnectionError) -> bool {
    let code = match e {
        quinn::ConnectionError::TransportError(t) => u64::from(t.code),
        quinn::ConnectionError::ConnectionClosed(c) => u64::from(c.error_code),
        quinn::ConnectionError::VersionMismatch => return true,
        _ => return false,
    };
    (0x100..=0x1ff).contains(&code)
}
