//! Member states and the precedence rule that orders updates.

use serde::{Deserialize, Serialize};

/// What the cluster believes about a member.
#[derive(Clone, Copy, PartialEq, Eq, PartialOrd, Ord, Hash, Debug, Serialize, Deserialize)]
#[cfg_attr(feature = "arbitrary", derive(arbitrary::Arbitrary))]
pub enum MemberState {
    /// Reachable, as far as anyone knows.
    Alive,
    /// Some observer could not reach it; it may refute by raising its incarnation.
    Suspect,
    /// Declared failed after its suspicion timed out.
    Failed,
    /// Left the cluster on purpose.
    Left,
}

impl MemberState {
    /// Precedence at equal incarnation: a later state in SWIM's order overrides an earlier
    /// one (alive < suspect < failed < left). Only a higher incarnation from the member itself
    /// brings it back to alive.
    pub fn precedence(self) -> u8 {
        match self {
            MemberState::Alive => 0,
            MemberState::Suspect => 1,
            MemberState::Failed => 2,
            MemberState::Left => 3,
        }
    }

    /// Alive or suspect: still a member that may be serving.
    pub fn is_live(self) -> bool {
        matches!(self, MemberState::Alive | MemberState::Suspect)
    }

    /// Failed or left: kept only as a tombstone.
    pub fn is_down(self) -> bool {
        !self.is_live()
    }
}
