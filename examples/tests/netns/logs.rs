//! Reading the processes' `--json-log` lines: events, views, call records, handled calls,
//! and the reconciliation of the client's records with the workers' logs.

use shoal_examples::jsonlog::{CallRecord, LogLine, ViewEntry};
use shoal_tokio::NodeId;
use std::collections::BTreeMap;

/// One event line, flattened.
#[derive(Clone, Debug)]
pub struct Ev {
    /// Time (ms since the epoch).
    pub t: u64,
    /// `failed`, `partition_detected`, ...
    pub event: String,
    /// The member it is about.
    pub member: Option<String>,
    /// Its incarnation.
    pub incarnation: Option<u64>,
    /// Partition events: minority side.
    pub minority: Option<bool>,
}

/// Every event line in `lines`.
pub fn events(lines: &[LogLine]) -> Vec<Ev> {
    lines
        .iter()
        .filter_map(|l| match l {
            LogLine::Event {
                t_ms,
                event,
                member,
                incarnation,
                minority,
                ..
            } => Some(Ev {
                t: *t_ms,
                event: event.clone(),
                member: member.clone(),
                incarnation: *incarnation,
                minority: *minority,
            }),
            _ => None,
        })
        .collect()
}

/// The first `event` about `member` (any member for `None`) at or after `after`.
pub fn first_event(lines: &[LogLine], event: &str, member: Option<&str>, after: u64) -> Option<Ev> {
    events(lines).into_iter().find(|e| {
        e.t >= after && e.event == event && member.is_none_or(|m| e.member.as_deref() == Some(m))
    })
}

/// Every view line: (time, members).
pub fn views(lines: &[LogLine]) -> Vec<(u64, Vec<ViewEntry>)> {
    lines
        .iter()
        .filter_map(|l| match l {
            LogLine::View { t_ms, members, .. } => Some((*t_ms, members.clone())),
            _ => None,
        })
        .collect()
}

/// Whether every one of `names` is alive in `view`.
pub fn all_alive(view: &[ViewEntry], names: &[&str]) -> bool {
    names
        .iter()
        .all(|n| view.iter().any(|m| m.name == *n && m.state == "alive"))
}

/// The time of the first view at or after `after` in which every one of `names` is alive.
pub fn first_full_view(lines: &[LogLine], names: &[&str], after: u64) -> Option<u64> {
    views(lines)
        .into_iter()
        .find(|(t, v)| *t >= after && all_alive(v, names))
        .map(|(t, _)| t)
}

/// The latest view.
pub fn last_view(lines: &[LogLine]) -> Option<(u64, Vec<ViewEntry>)> {
    views(lines).pop()
}

/// The client's call records.
pub fn calls(lines: &[LogLine]) -> Vec<CallRecord> {
    lines
        .iter()
        .filter_map(|l| match l {
            LogLine::Call(c) => Some(c.clone()),
            _ => None,
        })
        .collect()
}

/// The client's `load_done` totals: (issued, ok, errors).
pub fn load_done(lines: &[LogLine]) -> Option<(u64, u64, u64)> {
    lines.iter().find_map(|l| match l {
        LogLine::LoadDone {
            issued, ok, errors, ..
        } => Some((*issued, *ok, *errors)),
        _ => None,
    })
}

/// `handled` lines of one worker's log: (call id, time).
pub fn handled(lines: &[LogLine]) -> Vec<(u64, u64)> {
    lines
        .iter()
        .filter_map(|l| match l {
            LogLine::Handled { call, t_ms, .. } => Some((*call, *t_ms)),
            _ => None,
        })
        .collect()
}

/// Maps node ids (hex, as call records carry them) to the worker names they derive from.
pub fn id_names(names: &[&str]) -> BTreeMap<String, String> {
    names
        .iter()
        .map(|n| (NodeId::from_name(n).to_string(), (*n).to_owned()))
        .collect()
}

/// What reconciling the client's records with the workers' logs found.
#[derive(Debug, Default)]
pub struct Reconciled {
    /// Calls issued.
    pub issued: u64,
    /// Calls answered.
    pub answered: u64,
    /// Errors by kind (`worker_failed/Response`, `deadline_exceeded`, ...).
    pub errors: BTreeMap<String, u64>,
    /// Idempotent calls that ran on two workers (retried after the request had run).
    pub idempotent_ran_twice: u64,
    /// Non-idempotent calls that failed after running on a worker (its answer was lost).
    pub ran_but_failed: u64,
    /// Answers per worker name.
    pub answers_by_worker: BTreeMap<String, u64>,
    /// Handled lines per worker name.
    pub handled_by_worker: BTreeMap<String, u64>,
}

/// Reconciles the client's call records with the workers' `handled` lines and panics with
/// the evidence on any violation:
/// * the client issued ids 1..=issued and recorded every one exactly once (none silent);
/// * every id a worker handled was issued; no worker handled one id twice;
/// * an answer from worker W has W's `handled` line for that id;
/// * a non-idempotent call ran at most once, and only an answer or a failure after the
///   request may have arrived (`worker_failed` in `Send`/`Response`, `deadline_exceeded`)
///   goes with one run, on the worker the error names;
/// * an idempotent call ran at most `attempts` times (at most `retries + 1` if it failed):
///   each retry may have run once more. That is how retries are reconciled.
pub fn reconcile(client: &[LogLine], workers: &[(&str, Vec<LogLine>)], retries: u32) -> Reconciled {
    let names: Vec<&str> = workers.iter().map(|(n, _)| *n).collect();
    let ids = id_names(&names);
    let (issued, ok, errs) = load_done(client).expect("the client logged load_done");
    let records = calls(client);
    let mut by_id: BTreeMap<u64, &CallRecord> = BTreeMap::new();
    for r in &records {
        assert!(
            by_id.insert(r.call, r).is_none(),
            "call {} recorded twice",
            r.call
        );
    }
    let expected: Vec<u64> = (1..=issued).collect();
    let got: Vec<u64> = by_id.keys().copied().collect();
    assert_eq!(
        got, expected,
        "every issued call has exactly one record (none silent)"
    );
    let mut ran: BTreeMap<u64, Vec<&str>> = BTreeMap::new();
    let mut out = Reconciled {
        issued,
        ..Reconciled::default()
    };
    for (name, lines) in workers {
        let h = handled(lines);
        out.handled_by_worker
            .insert((*name).to_owned(), h.len() as u64);
        for (call, _) in h {
            assert!(
                (1..=issued).contains(&call),
                "{name} handled call {call}, which the client never issued"
            );
            let on = ran.entry(call).or_default();
            assert!(!on.contains(name), "{name} handled call {call} twice");
            on.push(name);
        }
    }
    for (id, r) in &by_id {
        let ran_on = ran.get(id).cloned().unwrap_or_default();
        let worker = r
            .worker
            .as_ref()
            .and_then(|w| ids.get(w))
            .map(String::as_str);
        if r.outcome == "ok" {
            out.answered += 1;
            let w = worker.unwrap_or_else(|| panic!("answer from an unknown worker: {r:?}"));
            assert_eq!(r.label.as_deref(), Some(w), "the answer's label: {r:?}");
            *out.answers_by_worker.entry(w.to_owned()).or_default() += 1;
            assert!(
                ran_on.contains(&w),
                "call {id} answered by {w}, which has no handled line for it: {r:?}"
            );
        } else {
            let kind = match &r.during {
                Some(p) => format!("{}/{p}", r.outcome),
                None => r.outcome.clone(),
            };
            *out.errors.entry(kind).or_default() += 1;
        }
        let may_have_run = r.outcome == "ok"
            || r.outcome == "deadline_exceeded"
            || (r.outcome == "worker_failed"
                && matches!(r.during.as_deref(), Some("Send" | "Response")));
        if r.idempotent {
            let bound = r.attempts.unwrap_or(retries + 1) as usize;
            assert!(
                ran_on.len() <= bound,
                "idempotent call {id} ran on {ran_on:?}, more than its {bound} attempts: {r:?}"
            );
            if ran_on.len() > 1 {
                out.idempotent_ran_twice += 1;
            }
        } else {
            assert!(
                ran_on.len() <= 1,
                "non-idempotent call {id} ran on {ran_on:?}: {r:?}"
            );
            if let Some(w) = ran_on.first() {
                assert!(
                    may_have_run,
                    "call {id} ran on {w} but failed before the request could arrive: {r:?}"
                );
                if r.outcome != "ok" {
                    assert_eq!(
                        worker,
                        Some(*w),
                        "the error names the worker it ran on: {r:?}"
                    );
                    out.ran_but_failed += 1;
                }
            }
        }
    }
    assert_eq!(
        (out.answered, issued - out.answered),
        (ok, errs),
        "load_done totals"
    );
    out
}
