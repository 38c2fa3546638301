//! RPC over QUIC: [`Server`] (handlers), [`ClusterClient`] (calls to workers chosen by a
//! [`crate::WorkerRegistry`]), [`RpcConfig`] and [`TlsConfig`].
//!
//! QUIC is quinn 0.11 with rustls 0.23 on the `ring` crypto provider (it builds with a C
//! compiler alone; aws-lc-rs would add cmake and minutes of build). Each node has one
//! `quinn::Endpoint`, bound by its [`Server`], which serves and also carries the node's
//! outgoing calls. One bidirectional stream per call, framed by [`shoal_core::rpc`].
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
//! * Per call the library allocates the request header (a few bytes), one boxed handler
//!   future on the server, and what quinn needs for a stream; payloads are `Bytes` slices
//!   handed to vectored writes and taken from received chunks without copying when a frame
//!   arrives in one chunk.

pub(crate) mod client;
pub(crate) mod config;
pub(crate) mod endpoint;
pub(crate) mod error;
pub(crate) mod server;
pub(crate) mod stream;
pub(crate) mod tls;

pub use client::{CallOptions, CallResponse, ClusterClient};
pub use config::RpcConfig;
pub use error::{CallError, ConfigError, HandlerError, ServerError};
pub use server::{Handler, HandlerFuture, Server};
pub use tls::{DevCa, TlsConfig, ALPN, DEFAULT_SERVER_NAME};
