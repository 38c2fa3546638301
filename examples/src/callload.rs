//! The client's bounded load with a record per call (`client --json-log`): calls `compute`
//! with call ids 1, 2, 3, ... as payloads, at most `concurrency` at once, paced to `rate`
//! calls per second, until `calls` were issued, `duration` passed or it is told to stop
//! (whichever comes first), then waits for the calls in flight (each bounded by its own
//! timeout). Every call ends in exactly one [`CallRecord`] line, answered or with its typed
//! error, so a harness can reconcile the client's records with the workers' `handled` lines:
//! no call is silent.
//!
//! Every `idempotent_every`-th call is marked idempotent (the library may then retry it on
//! another worker even after the request may have run); the others may only be retried when
//! the request cannot have reached a worker.

use crate::jsonlog::{emit, now_ms, CallRecord, LogLine};
use shoal_tokio::{CallError, CallOptions, ClusterClient, NodeId};
use std::sync::Arc;
use std::time::Duration;
use tokio::sync::Semaphore;
use tokio::task::JoinSet;
use tokio::time::Instant;

/// How much load, how fast, and how calls may be retried.
#[derive(Clone, Debug)]
pub struct LoadOptions {
    /// Most calls to issue.
    pub calls: u64,
    /// No call is issued after this long.
    pub duration: Duration,
    /// Most calls in flight at once.
    pub concurrency: usize,
    /// Calls issued per second (0: as fast as `concurrency` allows).
    pub rate: f64,
    /// Every n-th call (by id) is idempotent; 0: none, 1: all.
    pub idempotent_every: u64,
    /// Each call's overall timeout, retries included.
    pub timeout: Duration,
    /// Retry budget of each call.
    pub retries: u32,
    /// Tag filter choosing workers.
    pub filter: String,
}

/// What the load did.
#[derive(Clone, Copy, Debug, Default, PartialEq, Eq)]
pub struct LoadTotals {
    /// Calls issued (ids 1..=issued).
    pub issued: u64,
    /// Answered.
    pub ok: u64,
    /// Returned a typed error.
    pub errors: u64,
}

/// The snake-case name of a call error's variant, the worker it names (if any) and, for
/// `WorkerFailed`, the phase.
pub fn error_parts(e: &CallError) -> (&'static str, Option<NodeId>, Option<String>) {
    match e {
        CallError::NoMatchingWorker { .. } => ("no_matching_worker", None, None),
        CallError::Overloaded { worker } => ("overloaded", *worker, None),
        CallError::UnknownMethod { worker, .. } => ("unknown_method", Some(*worker), None),
        CallError::DeadlineExceeded { worker } => ("deadline_exceeded", *worker, None),
        CallError::WorkerFailed { worker, during, .. } => {
            ("worker_failed", Some(*worker), Some(format!("{during:?}")))
        }
        CallError::ConnectionRefused { worker, .. } => ("connection_refused", Some(*worker), None),
        CallError::HandlerFailed { worker, .. } => ("handler_failed", Some(*worker), None),
        CallError::PayloadTooLarge => ("payload_too_large", None, None),
        CallError::BadFilter(_) => ("bad_filter", None, None),
        CallError::BadConfig(_) => ("bad_config", None, None),
    }
}

/// One call and its record.
async fn one_call(client: ClusterClient, id: u64, opts: Arc<LoadOptions>) -> CallRecord {
    let idempotent = opts.idempotent_every > 0 && id % opts.idempotent_every == 0;
    let mut call_opts = CallOptions::default()
        .with_timeout(opts.timeout)
        .with_retries(opts.retries);
    if idempotent {
        call_opts = call_opts.idempotent();
    }
    let t_ms = now_ms();
    let result = client
        .call("compute", id.to_string(), Some(&opts.filter), call_opts)
        .await;
    let mut rec = CallRecord {
        t_ms,
        end_ms: now_ms(),
        call: id,
        idempotent,
        outcome: "ok".into(),
        worker: None,
        label: None,
        attempts: None,
        during: None,
        error: None,
    };
    match result {
        Ok(r) => {
            rec.worker = Some(r.worker.to_string());
            let text = String::from_utf8_lossy(&r.payload);
            rec.label = text.split(' ').next().map(str::to_owned);
            rec.attempts = Some(r.attempts);
        }
        Err(e) => {
            let (kind, worker, during) = error_parts(&e);
            rec.outcome = kind.to_owned();
            rec.worker = worker.map(|w| w.to_string());
            rec.during = during;
            rec.error = Some(e.to_string());
        }
    }
    rec
}

/// Runs the load (see the module docs), logging each call's record as it ends and a
/// `load_done` line at the end. When `stop` completes no further call is issued; the calls
/// in flight still finish and are recorded.
pub async fn run_load(
    client: &ClusterClient,
    node: &str,
    opts: LoadOptions,
    stop: impl std::future::Future<Output = ()>,
) -> LoadTotals {
    let mut stop = std::pin::pin!(stop);
    let opts = Arc::new(opts);
    let permits = Arc::new(Semaphore::new(opts.concurrency.max(1)));
    let end = Instant::now() + opts.duration;
    let mut pace = (opts.rate > 0.0).then(|| {
        let mut t = tokio::time::interval(Duration::from_secs_f64(1.0 / opts.rate));
        t.set_missed_tick_behavior(tokio::time::MissedTickBehavior::Delay);
        t
    });
    let mut set = JoinSet::new();
    let mut totals = LoadTotals::default();
    let tally = |rec: CallRecord, totals: &mut LoadTotals| {
        if rec.outcome == "ok" {
            totals.ok += 1;
        } else {
            totals.errors += 1;
        }
        emit(&LogLine::Call(rec));
    };
    while totals.issued < opts.calls {
        let ready = async {
            if let Some(p) = pace.as_mut() {
                p.tick().await;
            }
            permits.clone().acquire_owned().await
        };
        let permit = tokio::select! {
            p = ready => p,
            _ = tokio::time::sleep_until(end) => break,
            _ = &mut stop => break,
        };
        let Ok(permit) = permit else { break }; // the semaphore is never closed
        if Instant::now() >= end {
            break;
        }
        // Records of calls that already ended, so lines appear close to their end time.
        while let Some(Ok(rec)) = set.try_join_next() {
            tally(rec, &mut totals);
        }
        totals.issued += 1;
        let (client, opts, id) = (client.clone(), opts.clone(), totals.issued);
        set.spawn(async move {
            let rec = one_call(client, id, opts).await;
            drop(permit);
            rec
        });
    }
    while let Some(joined) = set.join_next().await {
        match joined {
            Ok(rec) => tally(rec, &mut totals),
            // A call task cannot panic short of a library bug; count it rather than lose it.
            Err(e) => {
                totals.errors += 1;
                eprintln!("call task failed: {e}");
            }
        }
    }
    emit(&LogLine::LoadDone {
        t_ms: now_ms(),
        node: node.to_owned(),
        issued: totals.issued,
        ok: totals.ok,
        errors: totals.errors,
    });
    totals
}

#[cfg(test)]
mod tests {
    use super::*;
    use shoal_tokio::CallPhase;

    /// The harness reads these names (and the phase's spelling) from the records.
    #[test]
    fn error_parts_name_the_variant_worker_and_phase() {
        let w = NodeId::from_name("worker-2");
        let failed = CallError::WorkerFailed {
            worker: w,
            during: CallPhase::Response,
            reason: "connection lost".into(),
        };
        assert_eq!(
            error_parts(&failed),
            ("worker_failed", Some(w), Some("Response".to_owned()))
        );
        assert_eq!(
            error_parts(&CallError::DeadlineExceeded { worker: None }),
            ("deadline_exceeded", None, None)
        );
        assert_eq!(
            error_parts(&CallError::NoMatchingWorker { filter: "x".into() }).0,
            "no_matching_worker"
        );
    }
}
