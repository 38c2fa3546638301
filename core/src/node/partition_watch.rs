//! Partition watch: feeds the partition detector from the member table.
//!
//! Rules (the detector's own are in `partition.rs`):
//! - **Reachable is the alive members, known is alive + suspect + failed** (graceful leaves are
//!   not losses), both counting this node; the detector is fed whenever either count changes or
//!   its window is due.
//! - **While a mass loss or a lost quorum is reported, failures are deferred:** suspects stay
//!   suspect, so a split is reported as one partition rather than as N failures.
//! - **A fresh mass loss asks for one sweep** (probe every member still believed alive), and
//!   another only after the detector has settled (no mass loss, no partition).

use crate::config::Config;
use crate::membership::{MemberState, MemberTable};
use crate::partition::{PartitionDetector, PartitionEvent};
use crate::Timestamp;

/// The partition detector and what it was last fed.
#[derive(Debug)]
pub(super) struct PartitionWatch {
    detector: PartitionDetector,
    counts: (usize, usize),
    swept: bool,
}

impl PartitionWatch {
    pub(super) fn new(config: &Config) -> Self {
        PartitionWatch {
            detector: PartitionDetector::new(&config.partition),
            counts: (0, 0),
            swept: false,
        }
    }

    /// When the detector's window is next due.
    pub(super) fn next_deadline(&self) -> Option<Timestamp> {
        self.detector.poll_timeout()
    }

    /// Whether failures should wait (mass loss recent or quorum lost).
    pub(super) fn defer_failures(&self) -> bool {
        self.detector.defer_failures()
    }

    /// Feeds the detector if the counts changed or its window is due. Returns its verdicts and
    /// whether to sweep now (only when `running`).
    pub(super) fn observe(
        &mut self,
        table: &MemberTable,
        now: Timestamp,
        running: bool,
    ) -> (Vec<PartitionEvent>, bool) {
        let reachable = table.count(MemberState::Alive);
        let known =
            reachable + table.count(MemberState::Suspect) + table.count(MemberState::Failed);
        let due = self.detector.poll_timeout().is_some_and(|t| t <= now);
        if (reachable, known) == self.counts && !due {
            return (Vec::new(), false);
        }
        self.counts = (reachable, known);
        self.detector.observe(now, reachable, known);
        let events = std::iter::from_fn(|| self.detector.poll_event()).collect();
        let mass = self.detector.is_mass_loss();
        let sweep = mass && !self.swept && running;
        if sweep {
            self.swept = true;
        } else if !mass && !self.detector.is_partitioned() {
            self.swept = false;
        }
        (events, sweep)
    }
}
