//! `--metrics-addr ADDR`: serve the process's metrics (docs/metrics.md) as Prometheus text
//! at `http://ADDR/metrics`, through `metrics-exporter-prometheus` (the exporter the issue
//! names; any other `metrics` exporter works the same way in an application).
//!
//! ```no_run
//! // Served on a background thread (or on the current tokio runtime when there is one).
//! shoal_examples::metrics::serve_prometheus("127.0.0.1:9464".parse().unwrap()).unwrap();
//! // ... start nodes; then: curl http://127.0.0.1:9464/metrics
//! ```

use metrics_exporter_prometheus::{Matcher, PrometheusBuilder};
use std::net::SocketAddr;

/// Latency buckets (seconds) of the call-duration histograms: 50 us to 10 s, so loopback
/// calls and slow handlers both land inside the range.
pub const LATENCY_BUCKETS: &[f64] = &[
    0.000_05, 0.000_1, 0.000_25, 0.000_5, 0.001, 0.002_5, 0.005, 0.01, 0.025, 0.05, 0.1, 0.25, 0.5,
    1.0, 2.5, 5.0, 10.0,
];

/// Why the exporter could not start.
#[derive(Debug, thiserror::Error)]
#[error("cannot serve metrics: {0}")]
pub struct MetricsError(String);

/// Installs the global Prometheus recorder and serves it over HTTP at `addr`. Call once per
/// process, before starting nodes (earlier counts are still published: shoal-net reports
/// absolute values).
pub fn serve_prometheus(addr: SocketAddr) -> Result<(), MetricsError> {
    PrometheusBuilder::new()
        .with_http_listener(addr)
        .set_buckets_for_metric(Matcher::Suffix("_seconds".into()), LATENCY_BUCKETS)
        .map_err(|e| MetricsError(e.to_string()))?
        .install()
        .map_err(|e| MetricsError(e.to_string()))?;
    eprintln!("metrics: http://{addr}/metrics");
    Ok(())
}
