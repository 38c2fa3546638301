//! The event trace: a running hash of every event every node emitted, with its time and
//! node. Two runs with the same seed must produce the same hash.

use shoal_core::{Event, MemberState, Timestamp};

/// A running hash over `(time, node, event fingerprint)`, a word at a time (see `mix`).
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub struct Trace {
    hash: u64,
    /// Number of events recorded.
    pub events: u64,
}

impl Default for Trace {
    fn default() -> Self {
        Trace {
            hash: 0xcbf2_9ce4_8422_2325,
            events: 0,
        }
    }
}

fn state_code(s: MemberState) -> u64 {
    match s {
        MemberState::Alive => 1,
        MemberState::Suspect => 2,
        MemberState::Failed => 3,
        MemberState::Left => 4,
    }
}

/// A compact fingerprint of an event: kind, subject, incarnation, state.
pub fn fingerprint(e: &Event) -> [u64; 4] {
    let m = |k: u64, m: &shoal_core::Member| {
        [
            k,
            m.info.id.short(),
            m.info.incarnation,
            state_code(m.state),
        ]
    };
    match e {
        Event::Joined { members, .. } => [1, *members as u64, 0, 0],
        Event::MemberJoined(x) => m(2, x),
        Event::MemberUpdated(x) => m(3, x),
        Event::MemberSuspected(x) => m(4, x),
        Event::MemberRecovered(x) => m(5, x),
        Event::MemberFailed(x) => m(6, x),
        Event::MemberLeft(x) => m(7, x),
        Event::MemberReaped(id) => [8, id.short(), 0, 0],
        Event::Refuted { incarnation } => [9, *incarnation, 0, 0],
        Event::LeftCluster => [10, 0, 0, 0],
        Event::PartitionDetected {
            reachable,
            known,
            minority,
        } => [11, *reachable as u64, *known as u64, u64::from(*minority)],
        Event::PartitionHealed { reachable, known } => [12, *reachable as u64, *known as u64, 0],
        Event::IdentityConflict { other } => [13, u64::from(other.port()), 0, 0],
    }
}

impl Trace {
    /// Folds one word in, FxHash's way (rotate, xor, multiply): a word a step, where
    /// FNV-1a's byte a step made eight dependent multiplies of every word. Every event is
    /// hashed (N² of them while a cluster forms: 100 M at 10,000 members), and the byte loop
    /// was 2.5 % of the 10,000-member run.
    fn mix(&mut self, v: u64) {
        self.hash = (self.hash.rotate_left(5) ^ v).wrapping_mul(0x517c_c1b7_2722_0a95);
    }

    /// Records one event.
    pub fn record(&mut self, now: Timestamp, node: usize, e: &Event) {
        self.mix(now.as_micros());
        self.mix(node as u64);
        for v in fingerprint(e) {
            self.mix(v);
        }
        self.events += 1;
    }

    /// The hash so far.
    pub fn hash(&self) -> u64 {
        self.hash
    }
}
