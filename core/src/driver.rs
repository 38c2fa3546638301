//! The runtime-agnostic drive loop (work in progress).
