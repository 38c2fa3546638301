//! RPC over QUIC: [`Server`] (handlers), [`ClusterClient`] (calls to workers chosen by a
//! [`crate::WorkerRegistry`]), [`RpcConfig`] and [`TlsConfig`].
//!
//! QUIC is quinn 0.11 with rustls 0.23 on the `ring` crypto provider (it builds with a C
//! compiler alone; aws-lc-rs would add cmake and minutes of build). A node's [`Server`]
//! binds one `quinn::Endpoint` to serve; a [`ClusterClient`] gives each pooled connection
//! its own client endpoint ([`ClientEndpoints::PerConnection`], the default and the faster)
//! or carries every call on the node's endpoint ([`ClientEndpoints::Shared`], one port).
//! One bidirectional stream per call, framed by [`shoal_core::rpc`].
//!
//! ## Performance: which runtime set-up is fastest, and why
//! * **Nothing per call crosses threads by design.** A call runs in the caller's task: the
//!   balancer pick and pool checkout take one short lock (no `await` inside), the stream is
//!   quinn's, the lease is finished under one more short lock. Calls never go through the
//!   membership driver task; only connection set-up is spawned (once per connection).
//! * **A current-thread runtime per process is the fastest set-up on small machines**: quinn
//!   drives each connection and the endpoint in their own tasks, and on one thread the
//!   wake-ups between the caller, the connection driver and the endpoint driver are plain
//!   queue pushes with no cross-core cache traffic; the shared mutex is then never contended.
//!   A multi-threaded runtime works too (spread load over several connections with
//!   [`RpcConfig::with_connections_per_worker`]), but each wake-up may hop cores.
//! * **A task's calls stay on one connection** (its identity, the waker's data pointer,
//!   picks one of the worker's pooled connections): the calls issued by the tasks that one datagram's answers woke
//!   then leave together in one datagram. Spreading them round-robin took 2.2 times the
//!   datagrams per call and cost a fifth of the 1-byte throughput.
//! * **One endpoint per connection** ([`ClientEndpoints::PerConnection`]): each connection
//!   has its own UDP socket and endpoint driver, instead of one driver demultiplexing every
//!   connection's datagrams; 8 % more 1-byte calls at 256 in flight (BENCHMARKS.md).
//! * Per call the client allocates one exactly-sized buffer (header plus a payload of up to
//!   1 KiB; larger payloads go as a second `Bytes`, uncopied). A frame that arrives in one
//!   QUIC chunk is decoded in place: the answer payload is a slice of the received packet
//!   buffer, no allocation or copy. The server allocates its task, one boxed handler future
//!   and the answer's buffer. Each side reads the stream's end together with the frame, so
//!   quinn never sends STOP_SENDING for a call.

pub(crate) mod client;
pub(crate) mod config;
pub(crate) mod endpoint;
pub(crate) mod error;
pub mod metrics;
pub(crate) mod server;
pub(crate) mod stream;
pub(crate) mod tls;

pub use client::{CallOptions, CallResponse, ClusterClient};
pub use config::{ClientEndpoints, RpcConfig};
pub use error::{CallError, ConfigError, HandlerError, ServerError};
pub use server::{Handler, HandlerFuture, Server};
pub use tls::{DevCa, TlsConfig, ALPN, DEFAULT_SERVER_NAME};
