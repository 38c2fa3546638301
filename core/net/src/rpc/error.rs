//! Errors of the RPC half: [`ConfigError`], [`HandlerError`], [`ServerError`] and
//! [`CallError`]. Each converts into [`io::Error`] with a meaningful [`io::ErrorKind`].

use crate::ClusterError;
use shoal_core::rpc::call::CallPhase;
use shoal_core::{FilterError, NodeId};
use std::fmt;
use std::io;
use std::net::SocketAddr;

/// An RPC setting or certificate that cannot work.
#[derive(Debug, Clone, PartialEq, Eq, thiserror::Error)]
pub enum ConfigError {
    /// Certificates, keys or roots were refused (or could not be generated).
    #[error("TLS configuration: {0}")]
    Tls(String),
    /// A numeric setting is out of range.
    #[error("invalid RPC setting `{field}`: {reason}")]
    Invalid {
        /// The setting.
        field: &'static str,
        /// Why.
        reason: String,
    },
    /// The core's balancer settings were refused.
    #[error(transparent)]
    Core(#[from] shoal_core::ConfigError),
}

impl From<ConfigError> for io::Error {
    fn from(e: ConfigError) -> Self {
        io::Error::new(io::ErrorKind::InvalidInput, e)
    }
}

/// What a handler returns when it fails: a message that travels to the caller as
/// `Status::HandlerFailed(message)` (cut to 4096 bytes) and surfaces there as
/// [`CallError::HandlerFailed`].
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct HandlerError(pub String);

impl HandlerError {
    /// A failure with this message.
    pub fn new(message: impl Into<String>) -> Self {
        HandlerError(message.into())
    }
}

impl fmt::Display for HandlerError {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.write_str(&self.0)
    }
}

impl std::error::Error for HandlerError {}

impl From<String> for HandlerError {
    fn from(s: String) -> Self {
        HandlerError(s)
    }
}

impl From<&str> for HandlerError {
    fn from(s: &str) -> Self {
        HandlerError(s.to_owned())
    }
}

impl From<io::Error> for HandlerError {
    fn from(e: io::Error) -> Self {
        HandlerError(e.to_string())
    }
}

/// Why a [`crate::Server`] operation failed.
#[derive(Debug, thiserror::Error)]
pub enum ServerError {
    /// The RPC configuration was refused.
    #[error(transparent)]
    Config(#[from] ConfigError),
    /// Binding the QUIC socket failed.
    #[error("RPC socket: {0}")]
    Io(#[from] io::Error),
    /// The server is already bound (handlers must be registered, and `bind` called, once,
    /// before serving).
    #[error("the server is already bound to {0}")]
    AlreadyBound(SocketAddr),
    /// The server must be bound first.
    #[error("the server is not bound")]
    NotBound,
    /// Starting or leaving the cluster failed.
    #[error(transparent)]
    Cluster(#[from] ClusterError),
}

impl From<ServerError> for io::Error {
    fn from(e: ServerError) -> Self {
        match e {
            ServerError::Io(inner) => inner,
            ServerError::Cluster(c) => c.into(),
            ServerError::Config(c) => c.into(),
            other @ ServerError::AlreadyBound(_) => {
                io::Error::new(io::ErrorKind::AlreadyExists, other)
            }
            other @ ServerError::NotBound => io::Error::new(io::ErrorKind::NotConnected, other),
        }
    }
}

/// Why a call failed. Each variant says what the caller can do about it.
#[derive(Debug, Clone, PartialEq, Eq, thiserror::Error)]
pub enum CallError {
    /// No live worker matches the filter: check the filter and the workers' tags.
    #[error("no live worker matches filter {filter:?}")]
    NoMatchingWorker {
        /// The filter, as written.
        filter: String,
    },
    /// Every matching worker is busy or backing off (`worker: None`), or the worker answered
    /// that it is at capacity and retries ran out (`Some`): shed load or retry later.
    #[error("overloaded (worker {worker:?})")]
    Overloaded {
        /// The worker that refused, if one answered.
        worker: Option<NodeId>,
    },
    /// The worker has no handler for the method.
    #[error("worker {worker} has no method {method:?}")]
    UnknownMethod {
        /// The method.
        method: String,
        /// The worker that answered.
        worker: NodeId,
    },
    /// The call's timeout passed (here, or at the worker, which got the remaining time).
    #[error("deadline exceeded")]
    DeadlineExceeded {
        /// The worker the last attempt went to, if any.
        worker: Option<NodeId>,
    },
    /// The connection to the worker failed in `during`; for `Send`/`Response` the worker may
    /// have run the call (mark calls idempotent to let them be retried elsewhere).
    #[error("worker {worker} failed during {during:?}: {reason}")]
    WorkerFailed {
        /// The worker.
        worker: NodeId,
        /// How far the call got.
        during: CallPhase,
        /// The transport's explanation.
        reason: String,
    },
    /// The worker refused the connection's handshake (certificate not trusted or expired,
    /// client certificate required, wrong ALPN): a configuration problem, not an outage.
    #[error("worker {worker} refused the connection: {reason}")]
    ConnectionRefused {
        /// The worker.
        worker: NodeId,
        /// The TLS or QUIC reason.
        reason: String,
    },
    /// The handler ran and returned an error.
    #[error("handler failed on worker {worker}: {message}")]
    HandlerFailed {
        /// The worker.
        worker: NodeId,
        /// The handler's message.
        message: String,
    },
    /// The request (or the answer) is over the size limit.
    #[error("payload too large")]
    PayloadTooLarge,
    /// The filter text does not parse.
    #[error(transparent)]
    BadFilter(#[from] FilterError),
    /// The client's configuration was refused.
    #[error(transparent)]
    BadConfig(#[from] ConfigError),
}

impl From<CallError> for io::Error {
    fn from(e: CallError) -> Self {
        use io::ErrorKind as K;
        let kind = match &e {
            CallError::NoMatchingWorker { .. } => K::NotFound,
            CallError::Overloaded { .. } => K::ResourceBusy,
            CallError::UnknownMethod { .. } => K::Unsupported,
            CallError::DeadlineExceeded { .. } => K::TimedOut,
            CallError::WorkerFailed {
                during: CallPhase::Connect | CallPhase::Open,
                ..
            } => K::NotConnected,
            CallError::WorkerFailed { .. } => K::ConnectionAborted,
            CallError::ConnectionRefused { .. } => K::ConnectionRefused,
            CallError::HandlerFailed { .. } => K::Other,
            CallError::PayloadTooLarge => K::InvalidData,
            CallError::BadFilter(_) | CallError::BadConfig(_) => K::InvalidInput,
        };
        io::Error::new(kind, e)
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn call_errors_map_to_meaningful_io_kinds() {
        let w = NodeId::from_name("w");
        let k = |e: CallError| io::Error::from(e).kind();
        assert_eq!(
            k(CallError::NoMatchingWorker { filter: "x".into() }),
            io::ErrorKind::NotFound
        );
        assert_eq!(
            k(CallError::DeadlineExceeded { worker: None }),
            io::ErrorKind::TimedOut
        );
        assert_eq!(
            k(CallError::WorkerFailed {
                worker: w,
                during: CallPhase::Response,
                reason: String::new()
            }),
            io::ErrorKind::ConnectionAborted
        );
        assert_eq!(
            k(CallError::ConnectionRefused {
                worker: w,
                reason: String::new()
            }),
            io::ErrorKind::ConnectionRefused
        );
        assert_eq!(
            k(CallError::Overloaded { worker: None }),
            io::ErrorKind::ResourceBusy
        );
    }
}
