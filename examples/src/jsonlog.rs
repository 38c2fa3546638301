//! Machine-readable process logs (`--json-log` on `director`, `worker` and `client`): one
//! JSON object per line on stdout, so a harness that starts the binaries as separate
//! processes (the network-namespace tests, `examples/tests/netns.rs`) can reconstruct what
//! each process saw and did.
//!
//! Every line carries `t_ms`, wall-clock milliseconds since the Unix epoch: processes on one
//! machine share that clock, so lines from different processes (and the harness's own fault
//! times) sit on one time axis. Each line is written with one `write` on a line-buffered
//! stdout, so a process killed with `SIGKILL` leaves whole lines behind (a reader should
//! still skip a line that does not parse).
//!
//! Line kinds ([`LogLine`], tagged by `"kind"`):
//! * `event`: a [`ClusterEvent`] this process heard (member by name);
//! * `view`: every member this process knows, with state and incarnation, periodically;
//! * `handled`: a worker ran the `compute` handler for call id `call`;
//! * `call`: the outcome of one client call ([`CallRecord`]);
//! * `load_done`: the client's totals after its bounded load.
//!
//! ```
//! use shoal_examples::jsonlog::LogLine;
//!
//! let line = r#"{"kind":"handled","t_ms":1796000000000,"node":"worker-1","call":7}"#;
//! assert!(matches!(LogLine::parse(line), Some(LogLine::Handled { call: 7, .. })));
//! assert_eq!(LogLine::parse("worker worker-1 up"), None); // plain text is skipped
//! ```

use serde::{Deserialize, Serialize};
use shoal_tokio::{ClusterEvent, MemberSnapshot, MemberState};
use std::io::Write;
use std::time::{Duration, SystemTime, UNIX_EPOCH};

/// Wall-clock milliseconds since the Unix epoch (0 if the clock is before 1970).
pub fn now_ms() -> u64 {
    SystemTime::now()
        .duration_since(UNIX_EPOCH)
        .map_or(0, |d| u64::try_from(d.as_millis()).unwrap_or(u64::MAX))
}

/// One member in a `view` line.
#[derive(Serialize, Deserialize, Debug, Clone, PartialEq, Eq)]
pub struct ViewEntry {
    /// Member name.
    pub name: String,
    /// `alive`, `suspect`, `failed` or `left`.
    pub state: String,
    /// Its incarnation as this process knows it.
    pub incarnation: u64,
}

/// One client call's outcome.
#[derive(Serialize, Deserialize, Debug, Clone, PartialEq, Eq)]
pub struct CallRecord {
    /// When the call was issued (ms since the epoch).
    pub t_ms: u64,
    /// When it returned.
    pub end_ms: u64,
    /// The call id (also the request payload, so the worker can log it).
    pub call: u64,
    /// Whether it was issued as idempotent (may be retried after the request may have run).
    pub idempotent: bool,
    /// `ok`, or the [`shoal_tokio::CallError`] variant in snake case.
    pub outcome: String,
    /// The worker that answered, or the last one tried (node id, hex), when known.
    pub worker: Option<String>,
    /// The answering worker's label (its name by default), from the answer.
    pub label: Option<String>,
    /// Attempts made (successful calls only; the library reports it with the answer).
    pub attempts: Option<u32>,
    /// For `worker_failed`: the phase the attempt failed in (`Connect`, `Open`, `Send`,
    /// `Response`).
    pub during: Option<String>,
    /// The error's text.
    pub error: Option<String>,
}

/// One line of a `--json-log` process log.
#[derive(Serialize, Deserialize, Debug, Clone, PartialEq)]
#[serde(tag = "kind", rename_all = "snake_case")]
pub enum LogLine {
    /// A cluster event.
    Event {
        /// Time (ms since the epoch).
        t_ms: u64,
        /// The process's node name.
        node: String,
        /// The event: `joined`, `node_joined`, `updated`, `suspected`, `recovered`,
        /// `failed`, `left`, `reaped`, `refuted`, `left_cluster`, `partition_detected`,
        /// `partition_healed`, `identity_conflict`, `lagged`.
        event: String,
        /// The member it is about (name; node id for `reaped`).
        member: Option<String>,
        /// The member's incarnation, or this node's new one for `refuted`.
        incarnation: Option<u64>,
        /// Partition events: reachable members.
        reachable: Option<usize>,
        /// Partition events: members of the last stable view.
        known: Option<usize>,
        /// `partition_detected`: whether this side is the minority.
        minority: Option<bool>,
    },
    /// The process's membership table.
    View {
        /// Time (ms since the epoch).
        t_ms: u64,
        /// The process's node name.
        node: String,
        /// Every member it knows, itself included.
        members: Vec<ViewEntry>,
    },
    /// A worker ran `compute` for a call.
    Handled {
        /// Time (ms since the epoch).
        t_ms: u64,
        /// The worker's node name.
        node: String,
        /// The call id.
        call: u64,
    },
    /// A client call's outcome.
    Call(CallRecord),
    /// The client's bounded load finished.
    LoadDone {
        /// Time (ms since the epoch).
        t_ms: u64,
        /// The client's node name.
        node: String,
        /// Calls issued (ids 1..=issued).
        issued: u64,
        /// Calls answered.
        ok: u64,
        /// Calls that returned an error.
        errors: u64,
    },
}

impl LogLine {
    /// Parses one line; `None` for anything that is not a log line (other output, a line
    /// cut short by `SIGKILL`).
    pub fn parse(line: &str) -> Option<LogLine> {
        serde_json::from_str(line.trim()).ok()
    }
}

/// Prints `line` as one JSON line on stdout (one `write`, then flushed). Output errors are
/// ignored: a log reader that went away must not stop the node.
pub fn emit(line: &LogLine) {
    let text = crate::output::json_line(line);
    let mut out = std::io::stdout().lock();
    let _ = writeln!(out, "{text}");
    let _ = out.flush();
}

/// The state's name in logs.
pub fn state_name(s: MemberState) -> &'static str {
    match s {
        MemberState::Alive => "alive",
        MemberState::Suspect => "suspect",
        MemberState::Failed => "failed",
        MemberState::Left => "left",
    }
}

/// The log line of an event heard by `node`.
pub fn event_line(node: &str, e: &ClusterEvent) -> LogLine {
    let mut member = None;
    let mut incarnation = None;
    let (mut reachable, mut known, mut minority) = (None, None, None);
    let mut about = |s: &MemberSnapshot| {
        member = Some(s.name.clone());
        incarnation = Some(s.incarnation);
    };
    let event = match e {
        ClusterEvent::Joined { members, .. } => {
            reachable = Some(*members);
            "joined"
        }
        ClusterEvent::NodeJoined(s) => {
            about(s);
            "node_joined"
        }
        ClusterEvent::NodeUpdated(s) => {
            about(s);
            "updated"
        }
        ClusterEvent::NodeSuspected(s) => {
            about(s);
            "suspected"
        }
        ClusterEvent::NodeRecovered(s) => {
            about(s);
            "recovered"
        }
        ClusterEvent::NodeFailed(s) => {
            about(s);
            "failed"
        }
        ClusterEvent::NodeLeft(s) => {
            about(s);
            "left"
        }
        ClusterEvent::NodeReaped(id) => {
            member = Some(id.to_string());
            "reaped"
        }
        ClusterEvent::Refuted { incarnation: i } => {
            incarnation = Some(*i);
            "refuted"
        }
        ClusterEvent::LeftCluster => "left_cluster",
        ClusterEvent::PartitionDetected {
            reachable: r,
            known: k,
            minority: m,
        } => {
            (reachable, known, minority) = (Some(*r), Some(*k), Some(*m));
            "partition_detected"
        }
        ClusterEvent::PartitionHealed {
            reachable: r,
            known: k,
        } => {
            (reachable, known) = (Some(*r), Some(*k));
            "partition_healed"
        }
        ClusterEvent::IdentityConflict { other } => {
            member = Some(other.to_string());
            "identity_conflict"
        }
        ClusterEvent::Lagged { missed } => {
            reachable = Some(usize::try_from(*missed).unwrap_or(usize::MAX));
            "lagged"
        }
    };
    LogLine::Event {
        t_ms: now_ms(),
        node: node.to_owned(),
        event: event.to_owned(),
        member,
        incarnation,
        reachable,
        known,
        minority,
    }
}

/// The `view` line of `members` as seen by `node`.
pub fn view_line(node: &str, members: &[MemberSnapshot]) -> LogLine {
    LogLine::View {
        t_ms: now_ms(),
        node: node.to_owned(),
        members: members
            .iter()
            .map(|m| ViewEntry {
                name: m.name.clone(),
                state: state_name(m.state).to_owned(),
                incarnation: m.incarnation,
            })
            .collect(),
    }
}

/// Logs every event of `cluster` as it happens and, every `view_every`, its membership
/// table, until the node stops. Runs in its own task on the node's runtime (tokio or smol).
pub fn spawn_logger<R: shoal_net::RuntimeBinding>(
    cluster: shoal_net::Cluster<R>,
    view_every: Duration,
) {
    /// What woke the logger.
    enum Step {
        Event(Option<ClusterEvent>),
        Tick,
    }
    let node = cluster.name().to_owned();
    let mut events = cluster.subscribe();
    let every = view_every.max(Duration::from_millis(10));
    R::spawn(async move {
        let runtime = R::runtime();
        let mut next = runtime.now() + every;
        loop {
            let wait = next.saturating_duration_since(runtime.now());
            // Dropping an unfinished `recv` loses nothing: the stream keeps its cursor.
            let step = smol::future::or(async { Step::Event(events.recv().await) }, async {
                shoal_net::sleep(&*runtime, wait).await;
                Step::Tick
            })
            .await;
            match step {
                Step::Event(Some(e)) => emit(&event_line(&node, &e)),
                Step::Event(None) => break,
                Step::Tick => {
                    // A late tick delays the next one (no burst to catch up).
                    next = runtime.now() + every;
                    match cluster.members().await {
                        Ok(m) => emit(&view_line(&node, &m)),
                        Err(_) => break, // the node stopped
                    }
                }
            }
        }
    });
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn lines_round_trip_and_junk_is_skipped() {
        let lines = [
            LogLine::Handled {
                t_ms: 5,
                node: "w".into(),
                call: 7,
            },
            LogLine::Call(CallRecord {
                t_ms: 1,
                end_ms: 2,
                call: 3,
                idempotent: true,
                outcome: "worker_failed".into(),
                worker: Some("ab".into()),
                label: None,
                attempts: None,
                during: Some("Response".into()),
                error: Some("lost".into()),
            }),
            event_line(
                "d",
                &ClusterEvent::PartitionDetected {
                    reachable: 2,
                    known: 5,
                    minority: true,
                },
            ),
        ];
        for l in &lines {
            let text = crate::output::json_line(l);
            assert!(!text.contains('\n'));
            assert_eq!(LogLine::parse(&text).as_ref(), Some(l));
        }
        let text = crate::output::json_line(&lines[0]);
        assert!(text.starts_with(r#"{"kind":"handled""#), "{text}");
        assert_eq!(LogLine::parse(&text[..text.len() - 3]), None);
        assert_eq!(LogLine::parse("worker w up"), None);
    }
}
