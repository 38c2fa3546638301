//! # shoal-tokio
//!
//! tokio adapter for Shoal (filled by the adapter issue). Until it lands, this crate only re-exports the core so dependents can compile.
//!
//! ```
//! let config = shoal_tokio::core::Config::lan();
//! assert!(config.validate().is_ok());
//! ```
#![forbid(unsafe_code)]
#![deny(missing_docs)]

/// The sans-IO core this adapter drives.
pub use shoal_core as core;
