//! Call-path metrics of a [`crate::ClusterClient`] through the `metrics` facade (names in
//! docs/metrics.md).
//!
//! Per call, at its end: one short lock and cached handles (`shoal_rpc_calls_total` by method
//! and outcome, `shoal_rpc_call_retries_total` by method, `shoal_rpc_call_duration_seconds`
//! by worker). The handles are registered once per method and per worker, so a call never
//! builds a metric key; install the recorder before creating the client, or the cached
//! handles stay no-ops. Per worker state (in flight, outcomes, ejections, connections,
//! latency estimate) is copied from the balancer once a second by a task the client spawns,
//! and connections opened and failed are counted where they happen (rare).

use crate::rpc::error::CallError;
use metrics::{counter, gauge, histogram, Counter, Histogram, SharedString};
use shoal_core::NodeId;
use std::collections::BTreeMap;
use std::sync::atomic::{AtomicBool, Ordering};
use std::sync::Mutex;
use std::time::Duration;

/// How often the per-worker series are refreshed.
pub const WORKER_PUBLISH_INTERVAL: Duration = Duration::from_secs(1);

/// The `outcome` label of `shoal_rpc_calls_total`: `ok`, or the error's kind.
pub fn outcome_label(result: Result<(), &CallError>) -> &'static str {
    match result {
        Ok(()) => "ok",
        Err(e) => match e {
            CallError::NoMatchingWorker { .. } => "no_matching_worker",
            CallError::Overloaded { .. } => "overloaded",
            CallError::UnknownMethod { .. } => "unknown_method",
            CallError::DeadlineExceeded { .. } => "deadline_exceeded",
            CallError::WorkerFailed { .. } => "worker_failed",
            CallError::ConnectionRefused { .. } => "connection_refused",
            CallError::HandlerFailed { .. } => "handler_failed",
            CallError::PayloadTooLarge => "payload_too_large",
            CallError::BadFilter(_) => "bad_filter",
            CallError::BadConfig(_) => "bad_config",
        },
    }
}

#[derive(Default)]
struct MethodHandles {
    outcomes: BTreeMap<&'static str, Counter>,
    retries: Option<Counter>,
}

#[derive(Default)]
struct Handles {
    methods: BTreeMap<Box<str>, MethodHandles>,
    durations: BTreeMap<NodeId, Histogram>,
}

/// The client's per-call metric handles.
#[derive(Default)]
pub(crate) struct CallMetrics {
    node: SharedString,
    handles: Mutex<Handles>,
    publisher: AtomicBool,
}

impl CallMetrics {
    pub(crate) fn new(node: &str) -> Self {
        CallMetrics {
            node: SharedString::from(node.to_owned()),
            handles: Mutex::new(Handles::default()),
            publisher: AtomicBool::new(false),
        }
    }

    /// True exactly once: the caller starts the per-worker publisher.
    pub(crate) fn start_publisher(&self) -> bool {
        !self.publisher.load(Ordering::Relaxed) && !self.publisher.swap(true, Ordering::Relaxed)
    }

    /// Records one finished call: its method, outcome, retries (attempts beyond the first)
    /// and, when a worker took it, how long it took from the caller's view.
    pub(crate) fn record(
        &self,
        method: &str,
        outcome: &'static str,
        attempts: u32,
        worker: Option<(NodeId, Duration)>,
        name_of: impl FnOnce(NodeId) -> String,
    ) {
        let mut h = self.handles.lock().unwrap_or_else(|e| e.into_inner());
        let node = &self.node;
        let m = match h.methods.get_mut(method) {
            Some(m) => m,
            None => h.methods.entry(method.into()).or_default(),
        };
        m.outcomes
            .entry(outcome)
            .or_insert_with(|| {
                counter!("shoal_rpc_calls_total", "node" => node.clone(),
                    "method" => method.to_owned(), "outcome" => outcome)
            })
            .increment(1);
        if attempts > 1 {
            m.retries
                .get_or_insert_with(|| {
                    counter!("shoal_rpc_call_retries_total", "node" => node.clone(),
                        "method" => method.to_owned())
                })
                .increment(u64::from(attempts - 1));
        }
        if let Some((id, took)) = worker {
            h.durations
                .entry(id)
                .or_insert_with(|| {
                    histogram!("shoal_rpc_call_duration_seconds", "node" => node.clone(),
                        "worker" => name_of(id))
                })
                .record(took.as_secs_f64());
        }
    }

    /// A connection attempt ended.
    pub(crate) fn connection(&self, ok: bool) {
        let name = if ok {
            "shoal_rpc_connections_opened_total"
        } else {
            "shoal_rpc_connections_failed_total"
        };
        counter!(name, "node" => self.node.clone()).increment(1);
    }

    /// Copies the balancer's view of each worker.
    pub(crate) fn publish_workers(&self, workers: &[crate::WorkerInfo]) {
        let n = &self.node;
        for w in workers {
            let worker = SharedString::from(w.name.clone());
            let g = |name: &'static str, v: f64| {
                gauge!(name, "node" => n.clone(), "worker" => worker.clone()).set(v)
            };
            g("shoal_rpc_worker_in_flight", f64::from(w.in_flight));
            g("shoal_rpc_worker_latency_seconds", w.latency.as_secs_f64());
            let s = &w.stats;
            for (state, count) in [
                ("connecting", s.connections.0),
                ("ready", s.connections.1),
                ("draining", s.connections.2),
            ] {
                gauge!("shoal_rpc_worker_connections", "node" => n.clone(),
                    "worker" => worker.clone(), "state" => state)
                .set(f64::from(count));
            }
            for (outcome, v) in [
                ("completed", s.completed),
                ("failed", s.failed),
                ("cancelled", s.cancelled),
                ("timed_out", s.timed_out),
            ] {
                counter!("shoal_rpc_worker_leases_total", "node" => n.clone(),
                    "worker" => worker.clone(), "outcome" => outcome)
                .absolute(v);
            }
            counter!("shoal_rpc_worker_ejections_total", "node" => n.clone(),
                "worker" => worker.clone())
            .absolute(s.ejections);
        }
    }
}
