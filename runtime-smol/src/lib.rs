//! # shoal-smol
//!
//! smol adapter for Shoal (filled by a later issue). Until it lands, this crate only re-exports the core so dependents can compile.
//!
//! ```
//! let config = shoal_smol::core::Config::lan();
//! assert!(config.validate().is_ok());
//! ```
#![forbid(unsafe_code)]
#![deny(missing_docs)]

/// The sans-IO core this adapter drives.
pub use shoal_core as core;
