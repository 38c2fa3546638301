//! Call policy: what a call's ending means for the worker's accounting, and whether a failed
//! call may be tried again on another worker.
//!
//! The rule this module owns: **a call is retried automatically only when the worker cannot
//! have run it, or when the caller said running it twice is harmless.** Concretely:
//!
//! | how the attempt ended                      | retried when                        |
//! |--------------------------------------------|-------------------------------------|
//! | no connection ([`CallPhase::Connect`])     | always (the request never left)     |
//! | stream refused ([`CallPhase::Open`])       | always (no byte of it was written)  |
//! | writing failed ([`CallPhase::Send`])       | only if idempotent                  |
//! | no answer ([`CallPhase::Response`])        | only if idempotent                  |
//! | answered [`Status::Overloaded`]            | always (refused before the handler) |
//! | any other answer                           | never (another worker would agree)  |
//! | the caller's own deadline passed           | never (there is no time left)       |
//!
//! and never beyond the caller's retry budget. One case comes before that table: the first
//! time a call's stream cannot be opened, the pooled connection had closed (an idle timeout,
//! the worker closed it), so the adapter replaces it and tries again without counting an
//! attempt, a retry or a failure against the worker ([`is_stale_connection`]).
//!
//! Pure functions, so the adapters share them and the unit tests below pin them down.

use super::Status;
use crate::pool::Outcome;

/// How far an attempt got before its transport failed.
#[derive(Clone, Copy, Debug, PartialEq, Eq, Hash)]
pub enum CallPhase {
    /// No connection to the worker could be had (connect refused, handshake failed or timed
    /// out). The request never left this node.
    Connect,
    /// A connection existed but opening the call's stream failed. Nothing was written.
    Open,
    /// Writing the request failed part-way or after it; the worker may have received all of it.
    Send,
    /// The request was sent, but the answer never came (connection lost, stream reset).
    Response,
}

impl CallPhase {
    /// Whether the worker may have received the whole request (so may have run it).
    pub fn request_may_have_arrived(self) -> bool {
        matches!(self, CallPhase::Send | CallPhase::Response)
    }
}

/// How one attempt failed, as far as retrying is concerned.
#[derive(Clone, Debug, PartialEq, Eq)]
pub enum AttemptFailure {
    /// The transport failed in this phase.
    Transport(CallPhase),
    /// The worker answered with this non-`Ok` status.
    Status(Status),
    /// The caller's own deadline passed.
    DeadlineExceeded,
}

/// The accounting outcome of an attempt that got an answer with `status`.
///
/// `Ok`, `UnknownMethod` and `PayloadTooLarge` are answers about the call, not about the
/// worker's health: [`Outcome::Completed`]. `HandlerFailed` and `Overloaded` count against the
/// worker ([`Outcome::Failed`], feeding outlier ejection), and `DeadlineExceeded` is
/// [`Outcome::TimedOut`].
pub fn outcome_of_status(status: &Status) -> Outcome {
    match status {
        Status::Ok | Status::UnknownMethod | Status::PayloadTooLarge => Outcome::Completed,
        Status::HandlerFailed(_) | Status::Overloaded => Outcome::Failed,
        Status::DeadlineExceeded => Outcome::TimedOut,
    }
}

/// The accounting outcome of a failed attempt.
pub fn outcome_of_failure(failure: &AttemptFailure) -> Outcome {
    match failure {
        AttemptFailure::Transport(_) => Outcome::Failed,
        AttemptFailure::Status(s) => outcome_of_status(s),
        AttemptFailure::DeadlineExceeded => Outcome::TimedOut,
    }
}

/// Whether an attempt that failed with `failure` may be tried again on another worker, given
/// whether the caller marked the call `idempotent`, how many retries were already made and the
/// caller's budget `max_retries` (see the module docs for the table).
pub fn may_retry(
    failure: &AttemptFailure,
    idempotent: bool,
    retries_made: u32,
    max_retries: u32,
) -> bool {
    if retries_made >= max_retries {
        return false;
    }
    match failure {
        AttemptFailure::Transport(phase) => idempotent || !phase.request_may_have_arrived(),
        AttemptFailure::Status(Status::Overloaded) => true,
        AttemptFailure::Status(_) | AttemptFailure::DeadlineExceeded => false,
    }
}

/// Whether an attempt that failed with `failure` only found its pooled connection closed: a
/// stream that could not be opened (nothing was written), the first time in this call
/// (`replaced_before` is false). The caller then replaces the connection and tries again
/// as if the attempt had not happened. A second such failure in one call is an ordinary
/// failed attempt, so a worker whose fresh connections cannot open streams either is
/// still judged by [`may_retry`].
pub fn is_stale_connection(failure: &AttemptFailure, replaced_before: bool) -> bool {
    !replaced_before && *failure == AttemptFailure::Transport(CallPhase::Open)
}

#[cfg(test)]
mod tests {
    use super::*;

    const PHASES: [CallPhase; 4] = [
        CallPhase::Connect,
        CallPhase::Open,
        CallPhase::Send,
        CallPhase::Response,
    ];

    #[test]
    fn only_a_first_failed_stream_open_is_a_stale_connection() {
        let open = AttemptFailure::Transport(CallPhase::Open);
        assert!(is_stale_connection(&open, false));
        assert!(!is_stale_connection(&open, true), "once per call");
        for phase in [CallPhase::Connect, CallPhase::Send, CallPhase::Response] {
            assert!(!is_stale_connection(
                &AttemptFailure::Transport(phase),
                false
            ));
        }
        assert!(!is_stale_connection(
            &AttemptFailure::DeadlineExceeded,
            false
        ));
        assert!(!is_stale_connection(
            &AttemptFailure::Status(Status::Overloaded),
            false
        ));
    }

    #[test]
    fn failures_before_the_request_left_are_always_retried() {
        for phase in [CallPhase::Connect, CallPhase::Open] {
            let f = AttemptFailure::Transport(phase);
            assert!(may_retry(&f, false, 0, 2));
            assert!(may_retry(&f, true, 1, 2));
        }
    }

    #[test]
    fn failures_after_the_request_may_have_arrived_need_idempotence() {
        for phase in [CallPhase::Send, CallPhase::Response] {
            let f = AttemptFailure::Transport(phase);
            assert!(!may_retry(&f, false, 0, 5));
            assert!(may_retry(&f, true, 0, 5));
        }
    }

    #[test]
    fn the_retry_budget_is_never_exceeded() {
        for phase in PHASES {
            let f = AttemptFailure::Transport(phase);
            assert!(!may_retry(&f, true, 3, 3));
            assert!(!may_retry(&f, true, 0, 0));
        }
        let f = AttemptFailure::Status(Status::Overloaded);
        assert!(!may_retry(&f, true, 1, 1));
    }

    #[test]
    fn overload_is_retried_but_other_answers_and_deadlines_are_not() {
        assert!(may_retry(
            &AttemptFailure::Status(Status::Overloaded),
            false,
            0,
            1
        ));
        for s in [
            Status::UnknownMethod,
            Status::PayloadTooLarge,
            Status::DeadlineExceeded,
            Status::HandlerFailed("boom".into()),
        ] {
            assert!(!may_retry(&AttemptFailure::Status(s), true, 0, 9));
        }
        assert!(!may_retry(&AttemptFailure::DeadlineExceeded, true, 0, 9));
    }

    #[test]
    fn outcomes_blame_the_worker_only_for_its_own_faults() {
        assert_eq!(outcome_of_status(&Status::Ok), Outcome::Completed);
        assert_eq!(
            outcome_of_status(&Status::UnknownMethod),
            Outcome::Completed
        );
        assert_eq!(
            outcome_of_status(&Status::PayloadTooLarge),
            Outcome::Completed
        );
        assert_eq!(outcome_of_status(&Status::Overloaded), Outcome::Failed);
        assert_eq!(
            outcome_of_status(&Status::HandlerFailed(String::new())),
            Outcome::Failed
        );
        assert_eq!(
            outcome_of_status(&Status::DeadlineExceeded),
            Outcome::TimedOut
        );
        for phase in PHASES {
            assert_eq!(
                outcome_of_failure(&AttemptFailure::Transport(phase)),
                Outcome::Failed
            );
        }
        assert_eq!(
            outcome_of_failure(&AttemptFailure::DeadlineExceeded),
            Outcome::TimedOut
        );
    }
}
