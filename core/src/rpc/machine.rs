//! [`CallMachine`]: one call's failover loop as data.
//!
//! The adapter owns the sockets, tasks and wakers; this machine owns every decision between a
//! call's first selection and its end. The adapter feeds it what happened (a lease was drawn,
//! a connection was found or could not be, the answer's status, a transport failure, the
//! deadline) and does what it says ([`Decision`]). The rules it applies live next door in
//! [`super::call`] ([`may_retry`], [`is_stale_connection`], the outcome table), so the machine
//! only sequences them:
//!
//! - each lease it was told about is finished exactly once, by the decision that ends its
//!   attempt (`Retry`, `Reopen`, `Answer`, `Fail`);
//! - a retry avoids every worker already tried ([`CallMachine::avoid`]); a worker-targeted
//!   call ([`CallTarget::Worker`]) is never moved to another worker;
//! - a stream that could not be opened on a pooled connection, the first time in a call, is a
//!   stale connection: the lease is finished as `Cancelled` and the call selects again without
//!   counting an attempt;
//! - after an answer or a failure the machine is done and refuses further inputs
//!   ([`Decision::Ignored`]), so an input racing the end (a deadline firing as the answer
//!   arrives) can never finish a lease twice or retry an answered call.
//!
//! Room is left (the `#[non_exhaustive]` [`CallPolicy`] and [`Decision`]) for retry budgets
//! shared across calls, hedged calls and deadline propagation, which are not implemented yet.

use super::call::{is_stale_connection, may_retry, outcome_of_failure, AttemptFailure, CallPhase};
use super::Status;
use crate::pool::connset::{ConnId, ConnectFailure};
use crate::pool::{Lease, Outcome};
use crate::NodeId;

/// Which workers a call may go to.
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub enum CallTarget {
    /// Any worker the balancer picks (matching the adapter's filter); retries move on.
    Any,
    /// This worker only: never retried elsewhere.
    Worker(NodeId),
}

/// How a call may be retried. Non-exhaustive: retry budgets, hedging and deadline propagation
/// will add fields.
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
#[non_exhaustive]
pub struct CallPolicy {
    /// Running the call twice is harmless.
    pub idempotent: bool,
    /// Most retries on other workers.
    pub max_retries: u32,
}

impl CallPolicy {
    /// A policy: whether the call is idempotent, and its retry limit.
    pub fn new(idempotent: bool, max_retries: u32) -> Self {
        CallPolicy {
            idempotent,
            max_retries,
        }
    }
}

/// What kind of error a failed call returns; the adapter adds the details (the worker, the
/// transport's text, the handler's message).
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub enum CallErrorKind {
    /// The worker answered that it is at capacity, and retries ran out.
    Overloaded,
    /// The worker has no such method.
    UnknownMethod,
    /// The call's deadline passed (here or at the worker).
    DeadlineExceeded,
    /// The transport failed in this phase.
    WorkerFailed(CallPhase),
    /// The worker refused the handshake: configuration, not an outage.
    ConnectionRefused,
    /// The handler ran and failed.
    HandlerFailed,
    /// The request or the answer is over its size limit.
    PayloadTooLarge,
}

impl CallErrorKind {
    /// The kind of error an attempt that ended in `failure` returns.
    pub fn of(failure: &AttemptFailure) -> Self {
        match failure {
            AttemptFailure::Transport(phase) => CallErrorKind::WorkerFailed(*phase),
            AttemptFailure::DeadlineExceeded => CallErrorKind::DeadlineExceeded,
            AttemptFailure::Status(s) => match s {
                Status::UnknownMethod => CallErrorKind::UnknownMethod,
                Status::PayloadTooLarge => CallErrorKind::PayloadTooLarge,
                Status::Overloaded => CallErrorKind::Overloaded,
                Status::DeadlineExceeded => CallErrorKind::DeadlineExceeded,
                Status::HandlerFailed(_) => CallErrorKind::HandlerFailed,
                // An `Ok` reported as a failure is the adapter's bug; say so as a transport
                // failure rather than invent a success.
                Status::Ok => CallErrorKind::WorkerFailed(CallPhase::Response),
            },
        }
    }
}

/// What the adapter does next.
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
#[non_exhaustive]
pub enum Decision {
    /// Go on with the attempt as it stands (use the worker and connection it has).
    Proceed,
    /// Finish `lease` with `outcome`, then select again, avoiding [`CallMachine::avoid`].
    Retry {
        /// The lease to finish.
        lease: u64,
        /// Its outcome.
        outcome: Outcome,
    },
    /// Finish `lease` as `Cancelled` (its connection had closed; not an attempt), then
    /// select again.
    Reopen {
        /// The lease to finish.
        lease: u64,
    },
    /// Finish `lease` as `Completed` and return the answer.
    Answer {
        /// The lease to finish.
        lease: u64,
    },
    /// Finish `lease` (if the call had one) with `outcome`, and fail with `kind`.
    Fail {
        /// The lease to finish, and its outcome.
        lease: Option<(u64, Outcome)>,
        /// What to return.
        kind: CallErrorKind,
    },
    /// The call already ended; this input changes nothing.
    Ignored,
}

/// The attempt under way.
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub struct AttemptState {
    /// Its lease.
    pub lease: u64,
    /// The worker.
    pub worker: NodeId,
    /// The connection it uses, once it has one.
    pub conn: Option<ConnId>,
}

/// One call's failover loop. See the module docs.
#[derive(Clone, Debug)]
pub struct CallMachine {
    target: CallTarget,
    policy: CallPolicy,
    retries: u32,
    /// Attempts made (a stale-connection reopen is not one).
    made: u32,
    reopened: bool,
    avoid: Vec<NodeId>,
    attempt: Option<AttemptState>,
    done: bool,
}

impl CallMachine {
    /// A call to `target` under `policy`. The adapter's first step is to select a worker.
    pub fn new(target: CallTarget, policy: CallPolicy) -> Self {
        CallMachine {
            target,
            policy,
            retries: 0,
            made: 0,
            reopened: false,
            avoid: Vec::new(),
            attempt: None,
            done: false,
        }
    }

    /// Where the call may go.
    pub fn target(&self) -> CallTarget {
        self.target
    }

    /// Workers a retry must avoid (those tried already), in the order tried.
    pub fn avoid(&self) -> &[NodeId] {
        &self.avoid
    }

    /// Attempts made so far, the current one included (a stale-connection reopen is not an
    /// attempt).
    pub fn attempts(&self) -> u32 {
        self.made
    }

    /// The attempt under way.
    pub fn attempt(&self) -> Option<AttemptState> {
        self.attempt
    }

    /// Whether the call ended (answered or failed).
    pub fn is_done(&self) -> bool {
        self.done
    }

    /// A lease was drawn for the next attempt. A lease drawn while another attempt is
    /// unfinished is given back (`Retry` with `Cancelled`: finish it at once); after the end,
    /// `Ignored` (finish it as `Cancelled` too).
    pub fn selected(&mut self, lease: &Lease) -> Decision {
        if self.done {
            return Decision::Ignored;
        }
        if self.attempt.is_some() {
            // An adapter bug: keep the first attempt, give the extra lease back.
            return Decision::Retry {
                lease: lease.id,
                outcome: Outcome::Cancelled,
            };
        }
        self.made += 1;
        self.attempt = Some(AttemptState {
            lease: lease.id,
            worker: lease.worker,
            conn: None,
        });
        Decision::Proceed
    }

    /// The attempt's connection.
    pub fn connected(&mut self, conn: ConnId) -> Decision {
        match &mut self.attempt {
            Some(a) if !self.done => {
                a.conn = Some(conn);
                Decision::Proceed
            }
            _ => Decision::Ignored,
        }
    }

    /// No connection could be had for the attempt. A refused handshake fails the call as
    /// [`CallErrorKind::ConnectionRefused`] when it is not retried.
    pub fn connect_failed(&mut self, why: &ConnectFailure) -> Decision {
        let failure = AttemptFailure::Transport(CallPhase::Connect);
        let kind = match why {
            ConnectFailure::Refused(_) => CallErrorKind::ConnectionRefused,
            _ => CallErrorKind::WorkerFailed(CallPhase::Connect),
        };
        self.failed_as(&failure, kind)
    }

    /// The call's stream could not be opened on the attempt's connection.
    pub fn open_failed(&mut self) -> Decision {
        self.failed(&AttemptFailure::Transport(CallPhase::Open))
    }

    /// The transport failed after the stream opened (`Send` or `Response`).
    pub fn transport_failed(&mut self, phase: CallPhase) -> Decision {
        self.failed(&AttemptFailure::Transport(phase))
    }

    /// The worker answered with `status`.
    pub fn answered(&mut self, status: &Status) -> Decision {
        if *status != Status::Ok {
            return self.failed(&AttemptFailure::Status(status.clone()));
        }
        let Some(a) = self.attempt.take().filter(|_| !self.done) else {
            return Decision::Ignored;
        };
        self.done = true;
        Decision::Answer { lease: a.lease }
    }

    /// The call's own deadline passed.
    pub fn deadline_passed(&mut self) -> Decision {
        self.failed(&AttemptFailure::DeadlineExceeded)
    }

    /// The attempt failed with `failure`: the table in [`super::call`] decides.
    pub fn failed(&mut self, failure: &AttemptFailure) -> Decision {
        self.failed_as(failure, CallErrorKind::of(failure))
    }

    fn failed_as(&mut self, failure: &AttemptFailure, kind: CallErrorKind) -> Decision {
        if self.done {
            return Decision::Ignored;
        }
        let Some(a) = self.attempt.take() else {
            // A deadline before any lease was drawn.
            self.done = true;
            return Decision::Fail { lease: None, kind };
        };
        if is_stale_connection(failure, self.reopened) {
            self.reopened = true;
            self.made -= 1;
            return Decision::Reopen { lease: a.lease };
        }
        let outcome = outcome_of_failure(failure);
        let retry = matches!(self.target, CallTarget::Any)
            && may_retry(
                failure,
                self.policy.idempotent,
                self.retries,
                self.policy.max_retries,
            );
        if retry {
            self.retries += 1;
            self.avoid.push(a.worker);
            return Decision::Retry {
                lease: a.lease,
                outcome,
            };
        }
        self.done = true;
        Decision::Fail {
            lease: Some((a.lease, outcome)),
            kind,
        }
    }
}

#[cfg(test)]
mod tests;
