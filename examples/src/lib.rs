//! Shared helpers for the Shoal example binaries (filled by the examples issue).
#![forbid(unsafe_code)]
#![deny(missing_docs)]
