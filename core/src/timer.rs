//! Per-node singleton timers.
//!
//! A fixed table of optional deadlines, one per [`Timer`]; `poll_timeout` is its minimum and
//! `handle_timeout` walks [`Timer::VALUES`] in order, clearing each expired timer before
//! acting on it (quinn's `TimerTable`).

use crate::Timestamp;

/// The node's singleton timers.
#[derive(Clone, Copy, PartialEq, Eq, Debug)]
pub enum Timer {
    /// Retry joining through the next seed.
    JoinRetry,
    /// Send a gossip round.
    Gossip,
    /// Start an anti-entropy sync with a random member.
    Sync,
    /// Probe the next member / heartbeat the watched members.
    Probe,
    /// Reap tombstones past their time to live.
    Reap,
    /// Stop after lingering to spread this node's leave.
    Leave,
}

impl Timer {
    /// Every timer, in the order `handle_timeout` services them.
    pub const VALUES: [Timer; 6] = [
        Timer::JoinRetry,
        Timer::Probe,
        Timer::Gossip,
        Timer::Sync,
        Timer::Reap,
        Timer::Leave,
    ];

    fn index(self) -> usize {
        self as usize
    }
}

/// One optional deadline per timer.
#[derive(Clone, Debug, Default)]
pub struct TimerTable {
    deadlines: [Option<Timestamp>; 6],
}

impl TimerTable {
    /// Arms `timer` for `at`, replacing any earlier setting.
    pub fn set(&mut self, timer: Timer, at: Timestamp) {
        self.deadlines[timer.index()] = Some(at);
    }

    /// Disarms `timer`.
    pub fn stop(&mut self, timer: Timer) {
        self.deadlines[timer.index()] = None;
    }

    /// Whether `timer` is armed and due at `now`; if so it is disarmed.
    pub fn take_expired(&mut self, timer: Timer, now: Timestamp) -> bool {
        match self.deadlines[timer.index()] {
            Some(t) if t <= now => {
                self.deadlines[timer.index()] = None;
                true
            }
            _ => false,
        }
    }

    /// The earliest armed deadline.
    pub fn next(&self) -> Option<Timestamp> {
        self.deadlines.iter().flatten().min().copied()
    }
}
