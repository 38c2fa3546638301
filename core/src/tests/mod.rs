//! Test support shared by the core's unit tests.
pub(crate) mod util;
