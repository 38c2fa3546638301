//! Partition detection: does this side of the network still hold a quorum of the cluster?
//!
//! **Rule: a partition is a loss of quorum against the last stable view that lasts longer than
//! `stable_after`; it is reported once, and its healing is reported once.** This module reads
//! the membership view (two counts the node passes in) and never writes it.
//!
//! # What the node passes in
//!
//! [`PartitionDetector::observe`]`(now, reachable, known)`, whenever either count changes and
//! whenever [`PartitionDetector::poll_timeout`] passes:
//! - `known`: every member this node counts as part of the cluster and has **not** seen leave
//!   gracefully: alive, suspect and failed, failed ones until their tombstone is reaped. This
//!   node included. A graceful leave removes a member from `known`; a failure does not.
//! - `reachable`: the members of `known` currently alive to this node (not suspect, not
//!   failed), this node included.
//!
//! # The stable view
//!
//! Quorum is measured against `S`, the last stable view size, not the current `known`, so that
//! a side cannot talk itself into a majority by forgetting the members it lost:
//! - `S` grows to `known` at once: a bigger view can only make quorum harder, never hide a loss;
//! - `S` shrinks to `known` at once when every known member is reachable: members can then only
//!   have left gracefully (or been reaped), which is not a split. So scaling a cluster down from
//!   10 to 4 never looks like a partition;
//! - otherwise `S` shrinks only after `known` has held steady for `stable_after` while this side
//!   has quorum (slow tombstone reaping after an unrelated failure);
//! - while a partition is detected `S` never shrinks: reaping the other side's tombstones must
//!   not turn the minority into a "healed" majority of itself.
//!
//! # Quorum, detection and healing
//!
//! This side has quorum when `reachable / S > quorum` (default 0.5: a strict majority). When it
//! lacks quorum continuously for `stable_after`, [`PartitionEvent::Detected`] is emitted once,
//! with `minority` telling whether this side is strictly smaller than the rest (`2·reachable <
//! S`); an even split, or a majority short of a stricter quorum, reports `minority: false`. When
//! quorum then holds continuously for `stable_after`, [`PartitionEvent::Healed`] is emitted
//! once. Healing waits too (it is symmetric) so a flapping link yields at most one pair of
//! events per `stable_after`, not a storm; a loss or a recovery shorter than `stable_after`
//! yields nothing. The majority side of a split keeps quorum and reports nothing: with 50
//! members split 30/20, the 30 see 30/50 and stay quiet, the 20 see 20/50 and report
//! `Detected { reachable: 20, known: 50, minority: true }`.
//!
//! Before any view (`S == 0`) there is nothing to judge and no event. A single surviving peer
//! of a two-member cluster sees 1/2, which is not a majority: it reports `Detected { minority:
//! false }`, correctly, since it cannot tell a crashed peer from a cut link.
//!
//! # Mass loss
//!
//! Independent failures arrive one by one; a split makes many members unreachable at once. The
//! detector tracks how many members became unreachable within the last one to two
//! `stable_after` windows ([`PartitionDetector::recent_loss`]); more than
//! [`PartitionConfig::mass_loss`] of `S` (and at least 2) is a mass loss ([`is_mass_loss`]).
//! Graceful departures are not losses (they leave `known - reachable` unchanged).
//!
//! How the node uses it: while [`PartitionDetector::defer_failures`] is true (a mass loss is
//! recent, or quorum is lost or not yet regained), the node keeps suspects suspect instead of
//! declaring each failed and gossiping N deaths. On the minority side, `Detected` follows
//! within `stable_after` and reports the loss as one partition; when it heals, the suspects
//! refute and nothing was declared dead. On the majority side the window passes without
//! detection (it kept quorum), and the node then declares the failures as usual: the majority
//! is authoritative.

use crate::{ConfigError, Timestamp};
use core::time::Duration;
use std::collections::VecDeque;

/// Most undrained events kept; older ones are dropped first. Each `observe` adds at most one,
/// so this is only reached by a node that never calls [`PartitionDetector::poll_event`].
const MAX_QUEUED_EVENTS: usize = 16;

/// Tuning of the node's partition detector (see `docs/detection.md`).
#[derive(Clone, Debug, PartialEq)]
pub struct PartitionConfig {
    /// This side has quorum when `reachable / stable view > quorum`. 0.5 (the default) means a
    /// strict majority. In `[0, 1)`; 0 disables detection while this node counts itself.
    pub quorum: f64,
    /// How long a loss (or a recovery) of quorum must last before it is reported, and how long
    /// the known count must hold steady to become the stable view. Also the mass-loss window.
    /// Longer than a suspicion needs to start, so a split is judged on settled reachability
    /// (Akka's split brain resolver uses 20 s; the default here is 10 s).
    pub stable_after: Duration,
    /// Fraction of the stable view that, lost within one window, makes a mass loss. In `(0, 1]`;
    /// default 0.25.
    pub mass_loss: f64,
}

impl PartitionConfig {
    /// Checks every field; the error names the first bad one.
    pub fn validate(&self) -> Result<(), ConfigError> {
        fn bad(field: &'static str, reason: &'static str) -> Result<(), ConfigError> {
            Err(ConfigError::Invalid { field, reason })
        }
        if !(self.quorum.is_finite() && (0.0..1.0).contains(&self.quorum)) {
            return bad("quorum", "must be at least 0 and below 1");
        }
        if !(self.mass_loss.is_finite() && self.mass_loss > 0.0 && self.mass_loss <= 1.0) {
            return bad("mass_loss", "must be above 0 and at most 1");
        }
        Ok(())
    }
}

impl Default for PartitionConfig {
    fn default() -> Self {
        PartitionConfig {
            quorum: 0.5,
            stable_after: Duration::from_secs(10),
            mass_loss: 0.25,
        }
    }
}

/// What the detector reports; the node turns these into its public events.
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub enum PartitionEvent {
    /// This side lost quorum for at least `stable_after`.
    Detected {
        /// Members reachable from here (this node included) when it was decided.
        reachable: usize,
        /// The stable view it was judged against.
        known: usize,
        /// Whether this side is strictly smaller than the rest (`2·reachable < known`).
        minority: bool,
    },
    /// Quorum held again for at least `stable_after` after a `Detected`.
    Healed {
        /// Members reachable from here when it was decided.
        reachable: usize,
        /// The stable view it was judged against.
        known: usize,
    },
}

/// Whether losing `lost_in_window` members within one window, out of `known`, is a mass loss
/// (a partition) rather than independent failures: at least 2 lost and more than
/// `fraction · known`. A NaN fraction is never met.
pub fn is_mass_loss(lost_in_window: usize, known: usize, fraction: f64) -> bool {
    lost_in_window >= 2 && (lost_in_window as f64) > fraction * (known as f64)
}

#[derive(Clone, Copy, Debug, PartialEq, Eq)]
enum Phase {
    /// Quorum held (or no view yet).
    Healthy,
    /// Quorum lost since `since`, not yet reported.
    Pending { since: Timestamp },
    /// `Detected` was emitted; quorum still lost.
    Detected,
    /// `Detected` was emitted; quorum back since `since`, not yet reported.
    Healing { since: Timestamp },
}

/// Tracks quorum against the last stable view; see the module docs for the rules.
#[derive(Clone, Debug)]
pub struct PartitionDetector {
    quorum: f64,
    stable_after: Duration,
    mass_loss: f64,
    phase: Phase,
    /// The last stable view size; 0 before any.
    stable: usize,
    candidate: usize,
    candidate_since: Timestamp,
    observed: bool,
    last_now: Timestamp,
    last_reachable: usize,
    last_unreachable: usize,
    /// Mass-loss windows: fewest unreachable members seen in the current and previous window.
    window_start: Timestamp,
    trough_cur: usize,
    trough_prev: usize,
    events: VecDeque<PartitionEvent>,
}

impl PartitionDetector {
    /// A detector with no view yet. Out-of-range fields are replaced by their defaults rather
    /// than rejected, so this never panics; call [`PartitionConfig::validate`] to reject instead.
    pub fn new(config: &PartitionConfig) -> Self {
        let default = PartitionConfig::default();
        let quorum = if config.quorum.is_finite() && (0.0..1.0).contains(&config.quorum) {
            config.quorum
        } else {
            default.quorum
        };
        let mass_loss =
            if config.mass_loss.is_finite() && config.mass_loss > 0.0 && config.mass_loss <= 1.0 {
                config.mass_loss
            } else {
                default.mass_loss
            };
        PartitionDetector {
            quorum,
            stable_after: config.stable_after,
            mass_loss,
            phase: Phase::Healthy,
            stable: 0,
            candidate: 0,
            candidate_since: Timestamp::ZERO,
            observed: false,
            last_now: Timestamp::ZERO,
            last_reachable: 0,
            last_unreachable: 0,
            window_start: Timestamp::ZERO,
            trough_cur: 0,
            trough_prev: 0,
            events: VecDeque::new(),
        }
    }

    /// Feeds the current view: `reachable` of `known` members (both including this node; see
    /// the module docs for exactly what to count). Call it whenever either changes and when
    /// [`poll_timeout`](Self::poll_timeout) passes; extra calls are harmless. A `reachable`
    /// above `known` is taken as `known`; a `now` older than a previous one is taken as that one.
    /// Then drain [`poll_event`](Self::poll_event).
    pub fn observe(&mut self, now: Timestamp, reachable: usize, known: usize) {
        let now = if self.observed {
            now.max(self.last_now)
        } else {
            now
        };
        let reachable = reachable.min(known);
        let unreachable = known - reachable;
        self.roll_windows(now, unreachable);
        self.update_stable_view(now, unreachable, known);

        let has_quorum = self.quorum_holds(reachable);
        self.phase = match self.phase {
            Phase::Healthy if !has_quorum => Phase::Pending { since: now },
            Phase::Pending { .. } if has_quorum => Phase::Healthy,
            Phase::Detected if has_quorum => Phase::Healing { since: now },
            Phase::Healing { .. } if !has_quorum => Phase::Detected,
            same => same,
        };
        match self.phase {
            Phase::Pending { since } if now.saturating_since(since) >= self.stable_after => {
                self.phase = Phase::Detected;
                let minority = reachable.saturating_mul(2) < self.stable;
                self.push(PartitionEvent::Detected {
                    reachable,
                    known: self.stable,
                    minority,
                });
            }
            Phase::Healing { since } if now.saturating_since(since) >= self.stable_after => {
                self.phase = Phase::Healthy;
                self.push(PartitionEvent::Healed {
                    reachable,
                    known: self.stable,
                });
            }
            _ => {}
        }

        self.observed = true;
        self.last_now = now;
        self.last_reachable = reachable;
        self.last_unreachable = unreachable;
    }

    fn quorum_holds(&self, reachable: usize) -> bool {
        self.stable == 0 || (reachable as f64 / self.stable as f64) > self.quorum
    }

    fn update_stable_view(&mut self, now: Timestamp, unreachable: usize, known: usize) {
        if !self.observed || known != self.candidate {
            self.candidate = known;
            self.candidate_since = now;
        }
        let frozen = matches!(self.phase, Phase::Detected | Phase::Healing { .. });
        let steady = self.phase == Phase::Healthy
            && now.saturating_since(self.candidate_since) >= self.stable_after;
        if known >= self.stable || (!frozen && (unreachable == 0 || steady)) {
            self.stable = known;
        }
    }

    /// Advances the mass-loss windows to `now`. Between calls the unreachable count held at
    /// its last observed value (the node calls `observe` on every change).
    fn roll_windows(&mut self, now: Timestamp, unreachable: usize) {
        if !self.observed {
            self.window_start = now;
            self.trough_cur = unreachable;
            self.trough_prev = unreachable;
            return;
        }
        let window = u64::try_from(self.stable_after.as_micros()).unwrap_or(u64::MAX);
        let elapsed = now
            .as_micros()
            .saturating_sub(self.window_start.as_micros());
        if window == 0 {
            // Degenerate window: a mass loss is a jump between two observations.
            self.trough_prev = self.last_unreachable;
            self.trough_cur = unreachable;
            self.window_start = now;
            return;
        }
        let windows_passed = elapsed / window;
        if windows_passed >= 1 {
            self.trough_prev = if windows_passed == 1 {
                self.trough_cur
            } else {
                self.last_unreachable
            };
            self.trough_cur = self.last_unreachable;
            self.window_start = Timestamp::from_micros(
                self.window_start
                    .as_micros()
                    .saturating_add(windows_passed.saturating_mul(window)),
            );
        }
        self.trough_cur = self.trough_cur.min(unreachable);
    }

    /// The next event a drained node should act on, oldest first.
    pub fn poll_event(&mut self) -> Option<PartitionEvent> {
        self.events.pop_front()
    }

    fn push(&mut self, event: PartitionEvent) {
        if self.events.len() >= MAX_QUEUED_EVENTS {
            self.events.pop_front();
        }
        self.events.push_back(event);
    }

    /// When [`observe`](Self::observe) must next be called even if the view does not change:
    /// the end of a pending detection or healing, or the end of the mass-loss window while a
    /// mass loss is recent (so [`defer_failures`](Self::defer_failures) can turn off). `None`
    /// when nothing is pending.
    pub fn poll_timeout(&self) -> Option<Timestamp> {
        let phase = match self.phase {
            Phase::Pending { since } | Phase::Healing { since } => Some(since + self.stable_after),
            Phase::Healthy | Phase::Detected => None,
        };
        let window = if self.is_mass_loss() && !self.stable_after.is_zero() {
            Some(self.window_start + self.stable_after)
        } else {
            None
        };
        match (phase, window) {
            (Some(a), Some(b)) => Some(a.min(b)),
            (a, b) => a.or(b),
        }
    }

    /// Members that became unreachable within the last one to two `stable_after` windows, as
    /// of the last `observe`.
    pub fn recent_loss(&self) -> usize {
        self.last_unreachable
            .saturating_sub(self.trough_cur.min(self.trough_prev))
    }

    /// Whether [`recent_loss`](Self::recent_loss) is a mass loss against the stable view.
    pub fn is_mass_loss(&self) -> bool {
        is_mass_loss(self.recent_loss(), self.stable, self.mass_loss)
    }

    /// Whether the node should hold off declaring individual failures: a mass loss is recent,
    /// or this side lacks quorum (pending, detected, or not yet healed). See the module docs.
    pub fn defer_failures(&self) -> bool {
        self.phase != Phase::Healthy || self.is_mass_loss()
    }

    /// Whether a partition has been reported and not yet healed.
    pub fn is_partitioned(&self) -> bool {
        matches!(self.phase, Phase::Detected | Phase::Healing { .. })
    }

    #[cfg(test)]
    /// Whether this side had quorum at the last `observe` (true before any view).
    pub fn has_quorum(&self) -> bool {
        self.quorum_holds(self.last_reachable)
    }

    #[cfg(test)]
    /// The stable view size quorum is measured against (0 before any view).
    pub fn stable_view(&self) -> usize {
        self.stable
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    const SA: Duration = Duration::from_secs(10);

    fn t(ms: u64) -> Timestamp {
        Timestamp::from_millis(ms)
    }

    fn detector() -> PartitionDetector {
        PartitionDetector::new(&PartitionConfig::default())
    }

    fn drain(d: &mut PartitionDetector) -> Vec<PartitionEvent> {
        core::iter::from_fn(|| d.poll_event()).collect()
    }

    /// A detector that has seen `n` of `n` for a while.
    fn settled(n: usize) -> PartitionDetector {
        let mut d = detector();
        d.observe(t(0), n, n);
        d.observe(t(20_000), n, n);
        assert_eq!(d.stable_view(), n);
        assert!(drain(&mut d).is_empty());
        d
    }

    #[test]
    fn majority_side_of_a_30_20_split_reports_nothing() {
        let mut d = settled(50);
        d.observe(t(30_000), 30, 50);
        assert!(d.has_quorum());
        assert!(d.is_mass_loss(), "20 of 50 at once is a mass loss");
        assert!(d.defer_failures());
        let wake = d.poll_timeout().expect("wakes to end the mass-loss window");
        d.observe(wake, 30, 50);
        d.observe(t(60_000), 30, 50);
        assert!(drain(&mut d).is_empty());
        assert!(!d.is_partitioned());
        assert!(
            !d.defer_failures(),
            "after the window the majority declares failures"
        );
        assert_eq!(d.poll_timeout(), None);
    }

    #[test]
    fn minority_side_of_a_30_20_split_detects_once_after_stable_after() {
        let mut d = settled(50);
        d.observe(t(30_000), 20, 50);
        assert!(!d.has_quorum());
        assert!(d.defer_failures());
        assert_eq!(d.poll_timeout(), Some(t(30_000) + SA));
        d.observe(t(39_999), 20, 50);
        assert!(drain(&mut d).is_empty(), "not before stable_after");
        d.observe(t(40_000), 20, 50);
        assert_eq!(
            drain(&mut d),
            [PartitionEvent::Detected {
                reachable: 20,
                known: 50,
                minority: true
            }]
        );
        d.observe(t(50_000), 20, 50);
        d.observe(t(90_000), 19, 50);
        assert!(drain(&mut d).is_empty(), "reported once");
        assert!(d.is_partitioned());
        assert_eq!(d.poll_timeout(), None);
    }

    #[test]
    fn even_split_is_detected_but_not_as_a_minority() {
        let mut d = settled(50);
        d.observe(t(30_000), 25, 50);
        d.observe(t(40_000), 25, 50);
        assert_eq!(
            drain(&mut d),
            [PartitionEvent::Detected {
                reachable: 25,
                known: 50,
                minority: false
            }]
        );
    }

    #[test]
    fn flap_shorter_than_stable_after_produces_no_event() {
        let mut d = settled(50);
        d.observe(t(30_000), 20, 50);
        d.observe(t(35_000), 50, 50);
        d.observe(t(41_000), 50, 50);
        assert!(drain(&mut d).is_empty());
        assert!(!d.is_partitioned());
        // A second short dip restarts the clock instead of adding up.
        d.observe(t(42_000), 20, 50);
        d.observe(t(51_000), 50, 50);
        d.observe(t(80_000), 50, 50);
        assert!(drain(&mut d).is_empty());
    }

    #[test]
    fn heal_is_reported_once_after_quorum_holds_for_stable_after() {
        let mut d = settled(50);
        d.observe(t(30_000), 20, 50);
        d.observe(t(40_000), 20, 50);
        assert_eq!(drain(&mut d).len(), 1);
        // A recovery shorter than stable_after does not heal.
        d.observe(t(50_000), 50, 50);
        d.observe(t(55_000), 20, 50);
        d.observe(t(70_000), 20, 50);
        assert!(drain(&mut d).is_empty());
        d.observe(t(80_000), 48, 50);
        assert_eq!(d.poll_timeout(), Some(t(90_000)));
        d.observe(t(90_000), 50, 50);
        assert_eq!(
            drain(&mut d),
            [PartitionEvent::Healed {
                reachable: 50,
                known: 50
            }]
        );
        d.observe(t(200_000), 50, 50);
        assert!(drain(&mut d).is_empty());
        assert!(!d.is_partitioned() && !d.defer_failures());
    }

    #[test]
    fn graceful_departures_do_not_look_like_a_partition() {
        let mut d = settled(10);
        // Six members leave over a second: each drops out of both counts.
        for (i, n) in (4..10).rev().enumerate() {
            d.observe(t(30_000 + 200 * i as u64), n, n);
        }
        assert_eq!(d.stable_view(), 4);
        assert!(!d.is_mass_loss());
        d.observe(t(60_000), 4, 4);
        assert!(drain(&mut d).is_empty());
        assert!(!d.defer_failures());
    }

    #[test]
    fn reaping_the_other_side_during_a_partition_does_not_fake_a_heal() {
        let mut d = settled(50);
        d.observe(t(30_000), 20, 50);
        d.observe(t(40_000), 20, 50);
        assert_eq!(drain(&mut d).len(), 1);
        // Tombstones of the 30 unreachable members are reaped: known falls to 20.
        d.observe(t(340_000), 20, 20);
        d.observe(t(400_000), 20, 20);
        assert!(drain(&mut d).is_empty());
        assert_eq!(d.stable_view(), 50);
        assert!(d.is_partitioned());
    }

    #[test]
    fn stable_view_shrinks_after_holding_steady_while_healthy() {
        let mut d = settled(10);
        d.observe(t(30_000), 9, 10); // one member fails
        d.observe(t(40_000), 8, 9); // a tombstone is reaped while another is down
        assert_eq!(d.stable_view(), 10);
        d.observe(t(50_000), 8, 9);
        assert_eq!(d.stable_view(), 9);
        assert!(drain(&mut d).is_empty());
    }

    #[test]
    fn losses_spread_over_many_windows_are_not_a_mass_loss() {
        let mut d = settled(20);
        for i in 1..=8u64 {
            d.observe(t(20_000 + i * 25_000), 20 - i as usize, 20);
            assert!(!d.is_mass_loss(), "loss {i}");
        }
        assert!(is_mass_loss(6, 20, 0.25));
        assert!(!is_mass_loss(5, 20, 0.25));
        assert!(
            !is_mass_loss(1, 2, 0.25),
            "one failure is never a mass loss"
        );
        assert!(!is_mass_loss(10, 10, f64::NAN));
    }

    #[test]
    fn no_view_means_no_judgement() {
        let mut d = detector();
        d.observe(t(0), 0, 0);
        d.observe(t(100_000), 5, 0);
        assert!(d.has_quorum());
        assert!(drain(&mut d).is_empty());
        assert_eq!(d.poll_timeout(), None);
    }

    #[test]
    fn zero_stable_after_reports_immediately() {
        let cfg = PartitionConfig {
            stable_after: Duration::ZERO,
            ..PartitionConfig::default()
        };
        let mut d = PartitionDetector::new(&cfg);
        d.observe(t(0), 5, 5);
        d.observe(t(1), 2, 5);
        assert_eq!(
            drain(&mut d),
            [PartitionEvent::Detected {
                reachable: 2,
                known: 5,
                minority: true
            }]
        );
        d.observe(t(2), 5, 5);
        assert_eq!(
            drain(&mut d),
            [PartitionEvent::Healed {
                reachable: 5,
                known: 5
            }]
        );
    }

    #[test]
    fn time_never_moves_back_and_bad_configs_are_tamed() {
        let cfg = PartitionConfig {
            quorum: f64::NAN,
            stable_after: Duration::MAX,
            mass_loss: -1.0,
        };
        assert!(cfg.validate().is_err());
        let mut d = PartitionDetector::new(&cfg);
        d.observe(Timestamp::MAX, 10, 10);
        d.observe(t(0), 1, 10);
        d.observe(Timestamp::MAX, usize::MAX, usize::MAX);
        let _ = d.poll_timeout();
        assert!(drain(&mut d).is_empty());
    }

    proptest::proptest! {
        /// Whatever views arrive, events alternate Detected, Healed, Detected... starting with
        /// Detected, and the detector's own state agrees with the last one.
        #[test]
        fn events_alternate_and_match_state(
            steps in proptest::collection::vec((0u64..30_000, 0usize..60, 0usize..60), 1..80)
        ) {
            let mut d = detector();
            let mut now = 0;
            let mut partitioned = false;
            for (dt, reachable, known) in steps {
                now += dt;
                d.observe(t(now), reachable, known);
                while let Some(e) = d.poll_event() {
                    match e {
                        PartitionEvent::Detected { reachable, known, minority } => {
                            proptest::prop_assert!(!partitioned);
                            proptest::prop_assert!(reachable <= known);
                            proptest::prop_assert_eq!(minority, 2 * reachable < known);
                            partitioned = true;
                        }
                        PartitionEvent::Healed { .. } => {
                            proptest::prop_assert!(partitioned);
                            partitioned = false;
                        }
                    }
                }
                proptest::prop_assert_eq!(d.is_partitioned(), partitioned);
                // The next deadline is strictly ahead: anything due has already fired.
                if let Some(wake) = d.poll_timeout() {
                    proptest::prop_assert!(wake > t(now), "a deadline is always in the future");
                }
            }
        }
    }

    #[test]
    fn validate_names_the_bad_field() {
        assert_eq!(PartitionConfig::default().validate(), Ok(()));
        let field = |c: PartitionConfig| match c.validate() {
            Err(ConfigError::Invalid { field, .. }) => field,
            Ok(()) => "ok",
        };
        let base = PartitionConfig::default;
        assert_eq!(
            field(PartitionConfig {
                quorum: 1.0,
                ..base()
            }),
            "quorum"
        );
        assert_eq!(
            field(PartitionConfig {
                quorum: -0.1,
                ..base()
            }),
            "quorum"
        );
        assert_eq!(
            field(PartitionConfig {
                mass_loss: 0.0,
                ..base()
            }),
            "mass_loss"
        );
        assert_eq!(
            field(PartitionConfig {
                quorum: 0.0,
                ..base()
            }),
            "ok"
        );
    }
}
