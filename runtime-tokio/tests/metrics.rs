//! Gossip metrics reach an installed `metrics` recorder with the documented names, labels
//! and values (docs/metrics.md). A Prometheus recorder is installed for this thread only and
//! the cluster runs on a current-thread runtime inside it, so every task records into it.

use metrics_exporter_prometheus::{PrometheusBuilder, PrometheusHandle};
use shoal_tokio::{Cluster, ClusterConfig};
use std::time::Duration;

/// The value of the series `name{labels}` in Prometheus text, where `labels` are the exact
/// `key="value"` pairs (any order in the text).
fn value(text: &str, name: &str, labels: &[(&str, &str)]) -> Option<f64> {
    text.lines()
        .filter(|l| !l.starts_with('#'))
        .filter_map(|l| {
            let (series, v) = l.rsplit_once(' ')?;
            let (n, rest) = series.split_once('{').unwrap_or((series, "}"));
            if n != name {
                return None;
            }
            let all = labels
                .iter()
                .all(|(k, val)| rest.contains(&format!("{k}=\"{val}\"")));
            all.then(|| v.parse().ok()).flatten()
        })
        .next()
}

async fn wait_for(handle: &PrometheusHandle, what: impl Fn(&str) -> bool) -> String {
    // Bounded: the driver publishes once a second; 15 s is far beyond what this needs.
    for _ in 0..300 {
        let text = handle.render();
        if what(&text) {
            return text;
        }
        tokio::time::sleep(Duration::from_millis(50)).await;
    }
    handle.render()
}

#[test]
fn gossip_metrics_are_published_with_names_labels_and_values() {
    let recorder = PrometheusBuilder::new().build_recorder();
    let handle = recorder.handle();
    metrics::with_local_recorder(&recorder, || {
        let rt = tokio::runtime::Builder::new_current_thread()
            .enable_all()
            .build()
            .expect("runtime");
        rt.block_on(async {
            let config = ClusterConfig::default()
                .with_bind_addr("127.0.0.1:0".parse().unwrap())
                .with_core_config(shoal_tokio::core::Config::local())
                .with_cluster_key([7; 32]);
            let a = Cluster::start(config.clone().with_name("m-a"))
                .await
                .unwrap();
            let b = Cluster::start(config.clone().with_name("m-b"))
                .await
                .unwrap();
            let c = Cluster::start(config.with_name("m-c")).await.unwrap();
            b.join(vec![a.gossip_addr()]).await.unwrap();
            c.join(vec![a.gossip_addr()]).await.unwrap();

            let alive = |t: &str| {
                value(t, "shoal_members", &[("node", "m-a"), ("state", "alive")]) == Some(3.0)
            };
            // Each node publishes once a second on its own schedule: wait until every series
            // checked below has been published after the cluster formed.
            let formed = |t: &str| {
                alive(t)
                    && value(t, "shoal_gossip_received_bytes_total", &[("node", "m-b")])
                        .is_some_and(|v| v > 0.0)
                    && value(t, "shoal_member_phi", &[("node", "m-a"), ("member", "m-b")]).is_some()
            };
            let text = wait_for(&handle, formed).await;
            assert!(alive(&text), "m-a publishes 3 alive members:\n{text}");
            let sent = value(&text, "shoal_gossip_packets_sent_total", &[("node", "m-a")]);
            assert!(
                sent.is_some_and(|v| v > 0.0),
                "packets sent counted:\n{text}"
            );
            let bytes = value(
                &text,
                "shoal_gossip_received_bytes_total",
                &[("node", "m-b")],
            );
            assert!(
                bytes.is_some_and(|v| v > 0.0),
                "bytes received counted:\n{text}"
            );
            assert_eq!(
                value(
                    &text,
                    "shoal_gossip_packets_dropped_total",
                    &[("node", "m-a"), ("reason", "unauthenticated")]
                ),
                Some(0.0),
                "every drop reason is a series, zero when nothing was dropped"
            );
            // With three members everyone watches everyone: phi of both peers, bounded.
            let phi_b = value(
                &text,
                "shoal_member_phi",
                &[("node", "m-a"), ("member", "m-b")],
            );
            assert!(
                phi_b.is_some_and(|p| (0.0..8.0).contains(&p)),
                "phi of a healthy peer:\n{text}"
            );

            // A datagram sealed with another key is counted as unauthenticated.
            let stranger = std::net::UdpSocket::bind("127.0.0.1:0").unwrap();
            stranger.send_to(&[1u8; 64], a.local_gossip_addr()).unwrap();
            let dropped = |t: &str| {
                value(
                    t,
                    "shoal_gossip_packets_dropped_total",
                    &[("node", "m-a"), ("reason", "version")],
                )
                .is_some_and(|v| v >= 1.0)
                    || value(
                        t,
                        "shoal_gossip_packets_dropped_total",
                        &[("node", "m-a"), ("reason", "unauthenticated")],
                    )
                    .is_some_and(|v| v >= 1.0)
            };
            let text = wait_for(&handle, dropped).await;
            assert!(
                dropped(&text),
                "a foreign datagram is counted by reason:\n{text}"
            );

            // A killed member: the survivors count it failed.
            c.kill();
            let failed = |t: &str| {
                value(t, "shoal_members", &[("node", "m-a"), ("state", "failed")]) == Some(1.0)
            };
            let suspected = |t: &str| {
                value(t, "shoal_suspicions_total", &[("node", "m-a")]).unwrap_or(0.0)
                    + value(t, "shoal_suspicions_total", &[("node", "m-b")]).unwrap_or(0.0)
                    >= 1.0
            };
            // m-b publishes on its own schedule: wait for both series.
            let text = wait_for(&handle, |t| failed(t) && suspected(t)).await;
            assert!(
                failed(&text),
                "m-a counts the killed member failed:\n{text}"
            );
            assert_eq!(
                value(
                    &text,
                    "shoal_members",
                    &[("node", "m-a"), ("state", "alive")]
                ),
                Some(2.0)
            );
            let declared = value(&text, "shoal_suspicions_total", &[("node", "m-a")])
                .unwrap_or(0.0)
                + value(&text, "shoal_suspicions_total", &[("node", "m-b")]).unwrap_or(0.0);
            assert!(
                declared >= 1.0,
                "someone suspected the killed member:\n{text}"
            );
            a.shutdown().await.unwrap();
            b.shutdown().await.unwrap();
        });
    });
}
