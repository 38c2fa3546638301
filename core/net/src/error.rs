//! [`ClusterError`]: everything a cluster call can fail with.

use crate::driver::DriverError;
use shoal_core::{CommandError, ConfigError, KeyringError};
use std::io;
use std::time::Duration;

/// Why a [`crate::Cluster`] call failed. Converts into [`io::Error`] with a meaningful
/// [`io::ErrorKind`], so `?` works in functions returning `io::Result`.
#[derive(Debug, thiserror::Error)]
pub enum ClusterError {
    /// The core configuration is invalid.
    #[error("invalid cluster configuration: {0}")]
    BadConfig(#[from] ConfigError),
    /// An adapter setting is invalid or inconsistent.
    #[error("invalid cluster setting `{field}`: {reason}")]
    InvalidSetting {
        /// The setting.
        field: &'static str,
        /// Why.
        reason: String,
    },
    /// Binding or registering the gossip socket failed.
    #[error("gossip socket: {0}")]
    Io(#[from] io::Error),
    /// No seed answered the join in time. The node keeps retrying in the background; call
    /// `join` again to wait longer. A seed cannot tell a joiner why it stays silent (an
    /// unauthenticated datagram gets no answer, by design), so the message names the usual
    /// causes instead.
    #[error(
        "no seed answered the join within {0:?}; likely causes: no or a wrong cluster key \
         (the seeds drop gossip they cannot authenticate, silently), nothing listening at \
         the seed's gossip address, or a firewall dropping UDP to or from it"
    )]
    JoinTimeout(Duration),
    /// The graceful leave did not finish in time; the node was stopped anyway.
    #[error("leave did not finish within {0:?}")]
    LeaveTimeout(Duration),
    /// The node refused the command (no seeds, already left, bad tag).
    #[error(transparent)]
    Command(#[from] CommandError),
    /// The keyring refused a change.
    #[error(transparent)]
    Keyring(#[from] KeyringError),
    /// The cluster has stopped (left or shut down).
    #[error("the cluster node has stopped")]
    Shutdown,
}

impl From<DriverError> for ClusterError {
    fn from(e: DriverError) -> Self {
        match e {
            DriverError::Command(c) => ClusterError::Command(c),
            DriverError::Closed => ClusterError::Shutdown,
        }
    }
}

impl From<ClusterError> for io::Error {
    fn from(e: ClusterError) -> Self {
        let kind = match &e {
            ClusterError::Io(inner) => inner.kind(),
            ClusterError::BadConfig(_) | ClusterError::InvalidSetting { .. } => {
                io::ErrorKind::InvalidInput
            }
            ClusterError::JoinTimeout(_) | ClusterError::LeaveTimeout(_) => io::ErrorKind::TimedOut,
            ClusterError::Command(CommandError::Left) | ClusterError::Shutdown => {
                io::ErrorKind::NotConnected
            }
            ClusterError::Command(_) | ClusterError::Keyring(_) => io::ErrorKind::InvalidInput,
        };
        match e {
            ClusterError::Io(inner) => inner,
            other => io::Error::new(kind, other),
        }
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn io_error_kinds_are_meaningful() {
        let k = |e: ClusterError| io::Error::from(e).kind();
        assert_eq!(
            k(ClusterError::JoinTimeout(Duration::from_secs(1))),
            io::ErrorKind::TimedOut
        );
        assert_eq!(k(ClusterError::Shutdown), io::ErrorKind::NotConnected);
        assert_eq!(
            k(ClusterError::Command(CommandError::NoSeeds)),
            io::ErrorKind::InvalidInput
        );
        assert_eq!(
            k(ClusterError::Io(io::Error::from(io::ErrorKind::AddrInUse))),
            io::ErrorKind::AddrInUse
        );
        assert_eq!(
            k(ClusterError::InvalidSetting {
                field: "gossip_port",
                reason: "x".into()
            }),
            io::ErrorKind::InvalidInput
        );
    }
}
