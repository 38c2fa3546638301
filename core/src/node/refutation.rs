//! Refutation and identity conflicts: news about this node.
//!
//! Rules:
//! - **Only the node itself raises its own incarnation, and it refutes anything that would
//!   override its current record:** an "alive" at a higher incarnation, or at the same one with
//!   different info; a suspect, failed or left at its incarnation or above.
//! - **A refutation of another address's "alive" for this id counts towards a conflict;**
//!   [`CONFLICT_REFUTATIONS`] of them within [`CONFLICT_WINDOW`] report one, at most once per
//!   window (a restart on a new address refutes its previous life once, a live twin keeps
//!   coming back).

use crate::membership::{MemberInfo, Update};
use crate::Timestamp;
use core::time::Duration;
use std::collections::VecDeque;

/// Refutations of an "alive" from another address within this window that make a conflict.
pub(super) const CONFLICT_WINDOW: Duration = Duration::from_secs(30);
/// How many such refutations within the window.
pub(super) const CONFLICT_REFUTATIONS: usize = 3;

/// Whether `update`, news about this node (`me`), must be refuted.
pub(super) fn must_refute(update: &Update, me: &MemberInfo) -> bool {
    let inc = update.incarnation();
    match update {
        Update::Alive(info) => inc > me.incarnation || (inc == me.incarnation && *info != *me),
        _ => inc >= me.incarnation,
    }
}

/// Who accused this node in `update` (a suspicion's or failure's author), to be told the
/// refutation directly.
pub(super) fn accuser(update: &Update) -> Option<crate::NodeId> {
    match update {
        Update::Suspect { by, .. } | Update::Failed { by, .. } => Some(*by),
        _ => None,
    }
}

/// Recent refutations of other addresses' claims to this node's id.
#[derive(Debug, Default)]
pub(super) struct Conflicts {
    recent: VecDeque<Timestamp>,
    reported: Option<Timestamp>,
}

impl Conflicts {
    /// Counts one refutation of another address's claim at `now`; returns whether to report
    /// a conflict now.
    pub(super) fn note(&mut self, now: Timestamp) -> bool {
        let cutoff = now - CONFLICT_WINDOW;
        while self.recent.front().is_some_and(|t| *t < cutoff) {
            self.recent.pop_front();
        }
        self.recent.push_back(now);
        let quiet = self.reported.is_none_or(|t| t < cutoff);
        if self.recent.len() >= CONFLICT_REFUTATIONS && quiet {
            self.reported = Some(now);
            true
        } else {
            false
        }
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn repeated_claims_within_the_window_report_once_per_window() {
        let mut c = Conflicts::default();
        let t = |s: u64| Timestamp::from_millis(100_000 + s * 1000);
        assert!(!c.note(t(0)));
        assert!(!c.note(t(1)));
        assert!(c.note(t(2)), "third claim in the window");
        assert!(!c.note(t(3)), "reported at most once per window");
        // Spread-out claims (a previous life refuted now and then) never add up.
        let mut quiet = Conflicts::default();
        for i in 0..10 {
            assert!(!quiet.note(t(i * 31)));
        }
        // A window later, a twin still there is reported again.
        assert!(!c.note(t(40)));
        assert!(!c.note(t(41)));
        assert!(c.note(t(42)));
    }
}
