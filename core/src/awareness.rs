//! Lifeguard local health ("awareness", memberlist's `awareness.go`).
//!
//! **Rule: when this node shows signs of being the slow one, it stretches its own timeouts
//! instead of accusing others.** A process that is starved of CPU, paused, or behind a lossy
//! NIC misses acks and answers late; without this, it would suspect healthy members and spread
//! false positives. Each sign of local trouble raises a small integer score; each clean probe
//! round lowers it. The node multiplies its probe timeout and probe interval (and anything else
//! it deems local) by [`Awareness::scale`]: `d · (score + 1)`.
//!
//! Signs, as Lifeguard and memberlist count them ([`HealthEvent`]):
//! - our direct probe got its ack: −1 (we are evidently able to talk and listen);
//! - our probe failed and no helper could be asked: +1;
//! - our probe failed and helpers were asked for indirect probes: +1 per helper that did not
//!   even send a nack. Helpers nack when they could not reach the subject either, so a missing
//!   nack means *we* could not hear the helper: that points at us, not the subject;
//! - we learned that others suspect us (or declared us dead) and had to refute: +1.
//!
//! The score is clamped to `0..=max_score` (default 8, so timeouts stretch at most 9×).

use core::time::Duration;

/// Default [`Awareness::max_score`]. memberlist's `AwarenessMaxMultiplier` is 8 with scores
/// `0..8`; here the score itself goes up to 8, so the largest multiplier is 9.
pub const DEFAULT_MAX_SCORE: u32 = 8;

/// Something this node observed about its own health.
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub enum HealthEvent {
    /// A probe we sent was acked directly.
    ProbeSucceeded,
    /// A probe we sent got no ack, even after indirect probes. `expected_nacks` is how many
    /// helpers were asked (0 if none could be); `nacks` how many nacks came back.
    ProbeFailed {
        /// Helpers asked for an indirect probe.
        expected_nacks: u32,
        /// Nacks received from them.
        nacks: u32,
    },
    /// Others suspected us or declared us dead, and we refuted with a higher incarnation.
    Refuted,
}

impl HealthEvent {
    /// The score change this event stands for (see the module docs for why).
    pub fn delta(self) -> i32 {
        match self {
            HealthEvent::ProbeSucceeded => -1,
            HealthEvent::ProbeFailed {
                expected_nacks: 0, ..
            } => 1,
            HealthEvent::ProbeFailed {
                expected_nacks,
                nacks,
            } => i32::try_from(expected_nacks.saturating_sub(nacks)).unwrap_or(i32::MAX),
            HealthEvent::Refuted => 1,
        }
    }
}

/// This node's health score.
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub struct Awareness {
    score: u32,
    max_score: u32,
}

impl Awareness {
    /// A healthy node (score 0) whose score never exceeds `max_score`.
    pub fn new(max_score: u32) -> Self {
        Awareness {
            score: 0,
            max_score,
        }
    }

    /// Adds `delta` to the score, clamped to `0..=max_score`; never overflows.
    pub fn apply_delta(&mut self, delta: i32) {
        let next = i64::from(self.score) + i64::from(delta);
        let clamped = next.clamp(0, i64::from(self.max_score));
        // In 0..=max_score, which is a u32.
        self.score = u32::try_from(clamped).unwrap_or(self.max_score);
    }

    /// Applies the score change an event stands for.
    pub fn record(&mut self, event: HealthEvent) {
        self.apply_delta(event.delta());
    }

    /// The current score: 0 is healthy, `max_score` is as unhealthy as it gets.
    pub fn score(&self) -> u32 {
        self.score
    }

    #[cfg(test)]
    /// Whether the score is 0.
    pub fn is_healthy(&self) -> bool {
        self.score == 0
    }

    /// The multiplier [`scale`](Self::scale) applies: `score + 1`.
    pub fn multiplier(&self) -> u32 {
        self.score.saturating_add(1)
    }

    /// `d · (score + 1)`, saturating at `Duration::MAX`.
    pub fn scale(&self, d: Duration) -> Duration {
        d.saturating_mul(self.multiplier())
    }
}

impl Default for Awareness {
    fn default() -> Self {
        Awareness::new(DEFAULT_MAX_SCORE)
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn healthy_node_uses_timeouts_unchanged() {
        let a = Awareness::default();
        assert!(a.is_healthy());
        assert_eq!(
            a.scale(Duration::from_millis(500)),
            Duration::from_millis(500)
        );
    }

    #[test]
    fn missed_acks_stretch_timeouts_and_acks_shrink_them_back() {
        let mut a = Awareness::default();
        a.record(HealthEvent::ProbeFailed {
            expected_nacks: 0,
            nacks: 0,
        });
        a.record(HealthEvent::Refuted);
        assert_eq!(a.score(), 2);
        assert_eq!(
            a.scale(Duration::from_millis(500)),
            Duration::from_millis(1500)
        );
        a.record(HealthEvent::ProbeSucceeded);
        a.record(HealthEvent::ProbeSucceeded);
        a.record(HealthEvent::ProbeSucceeded);
        assert_eq!(a.score(), 0, "never below zero");
    }

    #[test]
    fn missing_nacks_count_against_us_but_received_nacks_do_not() {
        let all_nacked = HealthEvent::ProbeFailed {
            expected_nacks: 3,
            nacks: 3,
        };
        assert_eq!(
            all_nacked.delta(),
            0,
            "helpers heard us: the subject is the problem"
        );
        let two_missing = HealthEvent::ProbeFailed {
            expected_nacks: 3,
            nacks: 1,
        };
        assert_eq!(two_missing.delta(), 2);
        let bogus = HealthEvent::ProbeFailed {
            expected_nacks: 1,
            nacks: 5,
        };
        assert_eq!(bogus.delta(), 0);
    }

    #[test]
    fn score_saturates_at_both_ends() {
        let mut a = Awareness::new(8);
        a.apply_delta(i32::MAX);
        assert_eq!(a.score(), 8);
        assert_eq!(a.scale(Duration::from_secs(1)), Duration::from_secs(9));
        a.apply_delta(i32::MIN);
        assert_eq!(a.score(), 0);
        let mut huge = Awareness::new(u32::MAX);
        huge.apply_delta(i32::MAX);
        huge.apply_delta(i32::MAX);
        huge.apply_delta(i32::MAX);
        assert_eq!(huge.score(), u32::MAX);
        assert_eq!(huge.multiplier(), u32::MAX);
        assert_eq!(huge.scale(Duration::MAX), Duration::MAX);
        let mut zero = Awareness::new(0);
        zero.apply_delta(5);
        assert_eq!(zero.score(), 0);
    }
}
