//! Lifeguard suspicion timeouts (hashicorp memberlist's `suspicion.go`).
//!
//! **Rule: a suspicion's timeout starts long and only independent confirmations shorten it;
//! only refutation or death clears it.** A member suspected by one observer gets the full
//! `max` timeout to refute (it may be that observer which is slow or badly connected). Each
//! *other* member that independently suspects the same subject at the same incarnation is
//! evidence that the problem is the subject, so the timeout shrinks logarithmically towards
//! `min`, reaching it after `k` confirmations:
//!
//! ```text
//! timeout(C) = max(min, max − (max − min) · ln(C + 1) / ln(K + 1))
//! ```
//!
//! A confirmation counts only once per observer, the observer that started the suspicion never
//! confirms its own, and at most `K` are stored (the set is bounded however much gossip
//! arrives). A [`Suspicion`] has no "clear": the node drops it when the subject refutes (gossips
//! a higher incarnation) or when it declares the subject failed at [`Suspicion::deadline`].
//!
//! [`suspicion_bounds`] gives `min`, `max` and `K` for a new suspicion: the configured
//! `suspicion_min` stretched by local health, `max_mult` times that, and the subject's other
//! observers as the confirmations to wait for. The node calls it and nothing else.

use crate::{NodeId, Timestamp};
use core::time::Duration;

/// The most confirmations a suspicion ever waits for, whatever `k` is asked for. Keeps the
/// confirmer set small and bounded; memberlist's default asks for 2 (4 − 2).
pub const MAX_CONFIRMATIONS: u32 = 32;

/// One member's suspicion of one subject, from the moment it started.
#[derive(Clone, Debug, PartialEq, Eq)]
pub struct Suspicion {
    started: Timestamp,
    min: Duration,
    max: Duration,
    k: u32,
    suspecter: NodeId,
    /// Independent confirmers, in arrival order; never more than `k`, never the suspecter.
    confirmers: Vec<NodeId>,
    deadline: Timestamp,
}

impl Suspicion {
    /// A suspicion that started at `now`, raised by `first_by` (this node, or the member whose
    /// gossip told us). It expires `max` after `now` unless confirmed; with `k_confirmations`
    /// of 0 (too few members to confirm) it expires after `min`. A `max` below `min` is treated
    /// as `min`, and `k_confirmations` is capped at [`MAX_CONFIRMATIONS`].
    pub fn new(
        now: Timestamp,
        min: Duration,
        max: Duration,
        k_confirmations: u32,
        first_by: NodeId,
    ) -> Self {
        let max = max.max(min);
        let k = k_confirmations.min(MAX_CONFIRMATIONS);
        Suspicion {
            started: now,
            min,
            max,
            k,
            suspecter: first_by,
            confirmers: Vec::new(),
            deadline: now + suspicion_timeout(min, max, 0, k),
        }
    }

    /// Records that `by` also suspects the subject. Returns true if it counted, in which case
    /// the deadline moved earlier (the node should re-arm its timer); false if `by` is the
    /// original suspecter or already confirmed, or if `k` confirmations are already in.
    ///
    /// A confirmation counts after the deadline too: a suspecter that may not decide alone
    /// keeps an expired, unconfirmed suspicion open (see `held_back_until` in
    /// node/detection.rs), and the first confirmation is what lets it decide. Refusing late
    /// confirmations left a 60/40 partition of 50 members with minority members nobody on
    /// the majority side failed for the whole lone timeout: every majority member suspected
    /// them within the same millisecond, and each other's confirmations arrived after the
    /// short unconfirmed deadline. `now` is kept for the callers' sake and for symmetry.
    pub fn confirm(&mut self, now: Timestamp, by: NodeId) -> bool {
        let _ = now;
        if self.confirmations() >= self.k {
            return false;
        }
        if by == self.suspecter || self.confirmers.contains(&by) {
            return false;
        }
        self.confirmers.push(by);
        self.deadline = self.started + self.timeout();
        true
    }

    /// When the suspicion started.
    pub fn started(&self) -> Timestamp {
        self.started
    }

    /// Whether another member confirmed it, or nobody else could (`k` = 0).
    pub fn is_confirmed(&self) -> bool {
        self.k == 0 || self.confirmations() > 0
    }

    /// Whether the rule of confirmation lets the subject be declared failed at `now`: some
    /// other member confirmed, nobody else could (`k` = 0), or `lone_timeout` has passed
    /// since the suspicion started (see docs/detection.md, "Confirmation").
    pub fn may_fail(&self, now: Timestamp, lone_timeout: Duration) -> bool {
        self.is_confirmed() || now >= self.started + lone_timeout
    }

    /// When the subject should be declared failed if it has not refuted by then.
    pub fn deadline(&self) -> Timestamp {
        self.deadline
    }

    /// The current total timeout (from the start, not from now).
    pub fn timeout(&self) -> Duration {
        suspicion_timeout(self.min, self.max, self.confirmations(), self.k)
    }

    #[cfg(test)]
    /// Whether the deadline has passed at `now`.
    pub fn is_expired(&self, now: Timestamp) -> bool {
        now >= self.deadline
    }

    #[cfg(test)]
    /// Time left until the deadline, zero once expired.
    pub fn remaining(&self, now: Timestamp) -> Duration {
        self.deadline.saturating_since(now)
    }

    /// Independent confirmations counted so far (at most `k`).
    pub fn confirmations(&self) -> u32 {
        // At most MAX_CONFIRMATIONS entries, so this never truncates.
        u32::try_from(self.confirmers.len()).unwrap_or(u32::MAX)
    }

    #[cfg(test)]
    /// Whether `id` has counted towards this suspicion (as suspecter or confirmer). The node
    /// can use it to avoid re-gossiping a confirmation it already has.
    pub fn is_known_suspecter(&self, id: NodeId) -> bool {
        id == self.suspecter || self.confirmers.contains(&id)
    }
}

/// Lifeguard's timeout after `confirmations` of `k`: `max` with none, `min` with `k` (or when
/// `k` is 0), logarithmic in between, never below `min` and never above `max` (a `max` below
/// `min` counts as `min`). Rounded down to the microsecond, like memberlist rounds to the ms.
pub fn suspicion_timeout(min: Duration, max: Duration, confirmations: u32, k: u32) -> Duration {
    let max = max.max(min);
    if k == 0 || confirmations >= k {
        return min;
    }
    let frac = f64::from(confirmations).ln_1p() / f64::from(k).ln_1p();
    let span = max.saturating_sub(min);
    let span_us = u64::try_from(span.as_micros()).unwrap_or(u64::MAX);
    // `as` saturates; frac is in [0, 1), so cut ≤ span.
    let cut = ((frac * span_us as f64).ceil() as u64).min(span_us);
    max.saturating_sub(Duration::from_micros(cut)).max(min)
}

/// The bounds `(min, max, k)` of a suspicion a node starts now: the one formula the node uses.
///
/// - `min` is the configured `suspicion_min`, already stretched by the node's local health
///   (Lifeguard awareness: a slow node gives everyone longer);
/// - `max = min × max_mult` (a `max_mult` of 0 counts as 1; saturating);
/// - `k`, the independent confirmations that bring the timeout down to `min`, is the subject's
///   other observers (`observers − 1`, the members that watch it besides the suspecter), but
///   never more than the members able to confirm (`live − 2`: neither the subject nor the
///   suspecter can). With `k = 0` the suspicion simply lasts `min`.
///
/// Unlike memberlist, the bounds do not grow with `log10(n)`: refutation does not wait for
/// gossip to reach the subject, because the suspecter tells the subject directly (and its
/// observers, which are the only members whose confirmations count).
pub fn suspicion_bounds(
    min: Duration,
    max_mult: u32,
    observers: usize,
    live: usize,
) -> (Duration, Duration, u32) {
    let max = min.saturating_mul(max_mult.max(1));
    let k = observers.saturating_sub(1).min(live.saturating_sub(2));
    (min, max, u32::try_from(k).unwrap_or(MAX_CONFIRMATIONS))
}

#[cfg(test)]
mod tests {
    use super::*;

    fn id(n: u8) -> NodeId {
        NodeId([n; 16])
    }

    fn secs(s: u64) -> Duration {
        Duration::from_secs(s)
    }

    fn start() -> Timestamp {
        Timestamp::from_millis(10_000)
    }

    fn suspicion(k: u32) -> Suspicion {
        Suspicion::new(start(), secs(5), secs(30), k, id(1))
    }

    #[test]
    fn only_a_confirmed_or_lone_timed_out_suspicion_may_fail() {
        let lone = secs(60);
        let mut s = suspicion(2);
        assert!(!s.is_confirmed());
        assert!(!s.may_fail(start() + secs(59), lone));
        assert!(s.may_fail(start() + secs(60), lone));
        assert!(s.confirm(start() + secs(1), id(2)));
        assert!(s.is_confirmed());
        assert!(s.may_fail(start() + secs(1), lone));
        // Nobody else could confirm: the suspecter decides alone.
        assert!(suspicion(0).may_fail(start(), lone));
    }

    #[test]
    fn unconfirmed_suspicion_waits_the_full_max() {
        let s = suspicion(3);
        assert_eq!(s.deadline(), start() + secs(30));
        assert_eq!(s.confirmations(), 0);
        assert!(!s.is_expired(start() + secs(29)));
        assert!(s.is_expired(start() + secs(30)));
        assert_eq!(s.remaining(start() + secs(10)), secs(20));
    }

    #[test]
    fn timeout_shrinks_with_each_independent_confirmation() {
        let mut s = suspicion(3);
        let mut prev = s.deadline();
        for by in 2..=4 {
            assert!(s.confirm(start() + secs(1), id(by)));
            assert!(s.deadline() < prev, "confirmation {by} did not shorten it");
            prev = s.deadline();
        }
        // ln(2)/ln(4) = 0.5 of the span after one confirmation.
        assert_eq!(
            suspicion_timeout(secs(5), secs(30), 1, 3),
            Duration::from_millis(17_500)
        );
        assert_eq!(s.deadline(), start() + secs(5));
    }

    #[test]
    fn never_below_min_even_past_k_confirmations() {
        let mut s = suspicion(2);
        assert!(s.confirm(start(), id(2)));
        assert!(s.confirm(start(), id(3)));
        assert!(!s.confirm(start(), id(4)), "k already reached");
        assert_eq!(s.confirmations(), 2);
        assert_eq!(s.timeout(), secs(5));
        for c in 0..100 {
            assert!(suspicion_timeout(secs(5), secs(30), c, 7) >= secs(5));
            assert!(suspicion_timeout(secs(5), secs(30), c, 7) <= secs(30));
        }
    }

    #[test]
    fn duplicate_and_self_confirmations_are_ignored() {
        let mut s = suspicion(3);
        assert!(
            !s.confirm(start(), id(1)),
            "the suspecter cannot confirm itself"
        );
        assert!(s.confirm(start(), id(2)));
        let after_one = s.deadline();
        assert!(!s.confirm(start() + secs(1), id(2)), "same observer twice");
        assert_eq!(s.deadline(), after_one);
        assert_eq!(s.confirmations(), 1);
        assert!(s.is_known_suspecter(id(1)) && s.is_known_suspecter(id(2)));
        assert!(!s.is_known_suspecter(id(3)));
    }

    #[test]
    fn confirmations_after_expiry_still_count() {
        let mut s = suspicion(3);
        let before = s.deadline();
        assert!(s.confirm(start() + secs(31), id(2)));
        assert_eq!(s.confirmations(), 1);
        assert!(s.is_confirmed());
        assert!(
            s.deadline() < before,
            "the deadline moves earlier, into the past"
        );
    }

    #[test]
    fn zero_k_uses_min_and_bad_bounds_do_not_panic() {
        assert_eq!(suspicion(0).deadline(), start() + secs(5));
        let s = Suspicion::new(start(), secs(9), secs(1), 2, id(1));
        assert_eq!(
            s.deadline(),
            start() + secs(9),
            "max below min counts as min"
        );
        let s = Suspicion::new(
            Timestamp::MAX,
            Duration::MAX,
            Duration::MAX,
            u32::MAX,
            id(1),
        );
        assert_eq!(s.deadline(), Timestamp::MAX);
        let mut s = Suspicion::new(start(), secs(1), secs(2), u32::MAX, id(0));
        for n in 1..=255u8 {
            s.confirm(start(), id(n));
        }
        assert_eq!(
            s.confirmations(),
            MAX_CONFIRMATIONS,
            "the confirmer set is bounded"
        );
    }

    #[test]
    fn bounds_are_min_min_times_mult_and_the_other_observers() {
        // 3 observers: the two besides the suspecter confirm, once there are enough members.
        assert_eq!(suspicion_bounds(secs(1), 3, 3, 100), (secs(1), secs(3), 2));
        assert_eq!(suspicion_bounds(secs(1), 3, 3, 4), (secs(1), secs(3), 2));
        // Three members: only one can confirm; two: nobody can, so the timeout is just `min`.
        assert_eq!(suspicion_bounds(secs(1), 3, 3, 3), (secs(1), secs(3), 1));
        assert_eq!(suspicion_bounds(secs(1), 3, 3, 2), (secs(1), secs(3), 0));
        assert_eq!(suspicion_bounds(secs(1), 3, 1, 100).2, 0, "a lone observer");
        // A multiplier of 0 counts as 1; huge values saturate instead of overflowing.
        assert_eq!(suspicion_bounds(secs(2), 0, 3, 10), (secs(2), secs(2), 2));
        let (min, max, _) = suspicion_bounds(Duration::MAX, u32::MAX, usize::MAX, usize::MAX);
        assert!(min <= max);
    }

    #[test]
    fn with_k_from_the_bounds_each_observer_confirmation_shortens_the_timeout() {
        let (min, max, k) = suspicion_bounds(secs(1), 3, 3, 10);
        let mut s = Suspicion::new(start(), min, max, k, id(1));
        assert_eq!(s.deadline(), start() + secs(3));
        assert!(s.confirm(start(), id(2)));
        let one = s.deadline();
        assert!(one < start() + secs(3) && one > start() + secs(1));
        assert!(s.confirm(start(), id(3)));
        assert_eq!(s.deadline(), start() + secs(1), "k confirmations reach min");
        assert!(!s.confirm(start(), id(4)), "no more than k count");
    }
}
