//! Failure detection: turning heartbeat arrival history into a suspicion level.
//!
//! The rule this module owns: **an observer's opinion of a subject is a pure function of the
//! heartbeats it has received from that subject and the current time.** Each observer keeps one
//! [`PhiDetector`] per subject it watches (see `observers.rs` for who watches whom). When
//! phi crosses [`PhiConfig::threshold`] the node does not declare anything on its own: it asks
//! other members for indirect probes (SWIM ping-req), and only then starts
//! a Lifeguard suspicion (`suspicion.rs`), which becomes a failure after a Lifeguard timeout.
//!
//! Why phi accrual rather than a fixed timeout: a fixed timeout is either too tight for a
//! jittery WAN link or too loose for a quiet LAN. Phi adapts to the observed mean and spread of
//! the inter-arrival times, so one threshold means "this silence is about 10^-phi likely under
//! the history we saw", whatever the link.

mod phi;

pub use phi::{PhiConfig, PhiDetector};
