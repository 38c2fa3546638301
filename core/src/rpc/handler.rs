//! What a worker answers: a handler's result mapped to a [`Status`], and failure messages cut
//! to fit the wire.
//!
//! The rule this module owns: **every way a call can end at the worker has exactly one status**,
//! and a failure message always fits in a frame ([`MAX_MESSAGE`] bytes, cut at a character
//! boundary so it stays UTF-8).
//!
//! | how the call ended at the worker            | status                        |
//! |---------------------------------------------|-------------------------------|
//! | no call slot free (the server's cap)         | `Overloaded` (before the handler, so the client retries elsewhere) |
//! | no handler for the method                   | `UnknownMethod`               |
//! | the handler returned an answer              | `Ok` with the answer          |
//! | the handler returned an error               | `HandlerFailed(message)`, message cut to [`MAX_MESSAGE`] |
//! | the request's deadline passed first          | `DeadlineExceeded`            |
//! | the request was over the size limit          | `PayloadTooLarge`             |
//! | the answer is over the response limit        | `HandlerFailed("answer too large")` ([`answer_too_large`]) |

use super::{Status, MAX_MESSAGE};
use bytes::Bytes;

/// How a call ended at the worker, as the adapter saw it.
#[derive(Clone, Debug, PartialEq, Eq)]
pub enum HandlerOutcome {
    /// No call slot was free.
    AtCapacity,
    /// No handler is registered for the method.
    UnknownMethod,
    /// The request was over the size limit.
    RequestTooLarge,
    /// The handler answered.
    Answered(Bytes),
    /// The handler failed with this message.
    Failed(String),
    /// The request's deadline passed before the handler finished.
    DeadlinePassed,
}

/// The status and payload to answer for `outcome`.
pub fn response_for(outcome: HandlerOutcome) -> (Status, Bytes) {
    let status = match outcome {
        HandlerOutcome::Answered(payload) => return (Status::Ok, payload),
        HandlerOutcome::AtCapacity => Status::Overloaded,
        HandlerOutcome::UnknownMethod => Status::UnknownMethod,
        HandlerOutcome::RequestTooLarge => Status::PayloadTooLarge,
        HandlerOutcome::Failed(m) => Status::HandlerFailed(truncate_message(m)),
        HandlerOutcome::DeadlinePassed => Status::DeadlineExceeded,
    };
    (status, Bytes::new())
}

/// `message` cut to at most [`MAX_MESSAGE`] bytes at a character boundary.
pub fn truncate_message(mut message: String) -> String {
    if message.len() > MAX_MESSAGE {
        let mut cut = MAX_MESSAGE;
        while !message.is_char_boundary(cut) {
            cut -= 1;
        }
        message.truncate(cut);
    }
    message
}

/// The status sent instead of an answer over the response limit (short enough to fit any
/// valid limit).
pub fn answer_too_large() -> Status {
    Status::HandlerFailed("answer too large".into())
}

#[cfg(test)]
mod tests {
    use super::*;
    use proptest::prelude::*;

    #[test]
    fn each_ending_has_its_status() {
        let ok = Bytes::from_static(b"hi");
        assert_eq!(
            response_for(HandlerOutcome::Answered(ok.clone())),
            (Status::Ok, ok)
        );
        let cases = [
            (HandlerOutcome::AtCapacity, Status::Overloaded),
            (HandlerOutcome::UnknownMethod, Status::UnknownMethod),
            (HandlerOutcome::RequestTooLarge, Status::PayloadTooLarge),
            (HandlerOutcome::DeadlinePassed, Status::DeadlineExceeded),
            (
                HandlerOutcome::Failed("boom".into()),
                Status::HandlerFailed("boom".into()),
            ),
        ];
        for (outcome, status) in cases {
            assert_eq!(response_for(outcome), (status, Bytes::new()));
        }
    }

    #[test]
    fn a_long_message_is_cut_at_a_character_boundary() {
        // One ASCII byte, then two-byte characters: byte 4096 falls inside a character.
        let m = format!("x{}", "é".repeat(MAX_MESSAGE));
        let cut = truncate_message(m.clone());
        assert_eq!(cut.len(), MAX_MESSAGE - 1);
        assert!(m.starts_with(&cut));
        let short = "fits".to_owned();
        assert_eq!(truncate_message(short.clone()), short);
    }

    #[test]
    fn the_too_large_fallback_encodes_under_the_smallest_limit() {
        let mut buf = bytes::BytesMut::new();
        let limits = super::super::Limits {
            max_request: 64,
            max_response: 64,
        };
        super::super::encode_response_head(&answer_too_large(), 0, &limits, &mut buf)
            .expect("fits a 64-byte limit");
    }

    proptest! {
        #[test]
        fn truncation_keeps_a_prefix_that_fits(s in ".{0,3000}", reps in 1usize..4) {
            let m = s.repeat(reps);
            let cut = truncate_message(m.clone());
            prop_assert!(cut.len() <= MAX_MESSAGE);
            prop_assert!(m.starts_with(&cut));
            if m.len() <= MAX_MESSAGE {
                prop_assert_eq!(cut, m);
            } else {
                // Only the character that straddled the limit was dropped, if any.
                prop_assert!(cut.len() + 4 > MAX_MESSAGE);
            }
        }
    }
}
