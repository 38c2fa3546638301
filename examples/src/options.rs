//! The connection options every example binary takes, parsed once here so `director`,
//! `worker`, `client`, `demo` and `members` speak one language:
//!
//! * `--preset local|lan|wan`: the failure-detection timing (default `local`, the demo's);
//! * `--secrets-dir DIR`: the development CA, node certificate and `cluster.key` the director
//!   (or the demo) wrote (default `$TMPDIR/shoal-dev-secrets`, see [`crate::common`]);
//! * `--cluster-key HEX`: 64 hex digits; overrides the gossip key of the secrets directory
//!   (for a cluster whose key is managed elsewhere).
//!
//! ```
//! use clap::Parser;
//! use shoal_examples::options::{ConnectOpts, Preset};
//!
//! #[derive(Parser)]
//! struct Cli {
//!     #[command(flatten)]
//!     connect: ConnectOpts,
//! }
//! let cli = Cli::parse_from(["members", "--secrets-dir", "/tmp/run/secrets", "--preset", "lan"]);
//! assert_eq!(cli.connect.preset, Preset::Lan);
//! assert_eq!(cli.connect.secrets_dir(), std::path::PathBuf::from("/tmp/run/secrets"));
//! ```

use crate::common::{load_cluster_key, Res};
use crate::keys::parse_cluster_key;
use clap::{Args, ValueEnum};
use std::path::PathBuf;

/// Failure-detection timing preset (must match the cluster's, or a node's failure detector
/// misjudges its peers).
#[derive(Clone, Copy, Debug, Default, PartialEq, Eq, ValueEnum)]
pub enum Preset {
    /// One machine: fast timers (detection in about a second and a half).
    #[default]
    Local,
    /// Local area network.
    Lan,
    /// Wide area network.
    Wan,
}

impl Preset {
    /// The core configuration of this preset.
    pub fn core(self) -> shoal_core::Config {
        match self {
            Preset::Local => shoal_core::Config::local(),
            Preset::Lan => shoal_core::Config::lan(),
            Preset::Wan => shoal_core::Config::wan(),
        }
    }
}

/// The default secrets directory: `<temp dir>/shoal-dev-secrets`.
pub fn default_secrets_dir() -> PathBuf {
    std::env::temp_dir().join("shoal-dev-secrets")
}

fn parse_key(s: &str) -> Result<[u8; 32], String> {
    parse_cluster_key(s).map_err(|e| e.to_string())
}

/// How a binary reaches its cluster: timing preset, development secrets and gossip key.
#[derive(Args, Clone, Debug, Default)]
pub struct ConnectOpts {
    /// Failure-detection timing preset of the cluster.
    #[arg(long, value_enum, default_value_t = Preset::Local)]
    pub preset: Preset,
    /// Directory of the development CA, node certificate and gossip key `cluster.key`
    /// (default: `$TMPDIR/shoal-dev-secrets`; the demo prints its own).
    #[arg(long, value_name = "DIR")]
    pub secrets_dir: Option<PathBuf>,
    /// The gossip key as 64 hex digits; overrides the secrets directory's `cluster.key`.
    #[arg(long, value_name = "HEX", value_parser = parse_key)]
    pub cluster_key: Option<[u8; 32]>,
}

impl ConnectOpts {
    /// The secrets directory: `--secrets-dir`, or [`default_secrets_dir`].
    pub fn secrets_dir(&self) -> PathBuf {
        self.secrets_dir.clone().unwrap_or_else(default_secrets_dir)
    }

    /// Applies `--cluster-key` over the key read from the secrets directory.
    pub fn key_or(&self, from_dir: [u8; 32]) -> [u8; 32] {
        self.cluster_key.unwrap_or(from_dir)
    }

    /// The gossip key of a member that needs no certificate (the `members` inspector):
    /// `--cluster-key`, else the secrets directory's `cluster.key`. An explicit
    /// `--secrets-dir` without one is an error; the default directory without one means a
    /// cluster that does not encrypt gossip (`None`).
    pub fn gossip_key(&self) -> Res<Option<[u8; 32]>> {
        if let Some(key) = self.cluster_key {
            return Ok(Some(key));
        }
        let dir = self.secrets_dir();
        if self.secrets_dir.is_none() && !dir.join("cluster.key").exists() {
            return Ok(None);
        }
        load_cluster_key(&dir).map(Some)
    }
}
