//! Gossip metrics through the [`metrics`] facade: users plug in any exporter (Prometheus,
//! StatsD, ...) by installing its recorder; without one every call here is a no-op.
//!
//! The core is pure and keeps plain counters ([`Stats`]); the drive loop publishes them at
//! most once per [`PUBLISH_INTERVAL`] as absolute values (`Counter::absolute`), so a hot path
//! never touches the recorder, and a recorder installed after the node started still sees
//! every counter from the start. Event-driven series (partitions) are recorded when the event
//! is drained.
//!
//! Names follow Prometheus conventions: a `shoal_` prefix, `_total` on counters, base units in
//! the name (`_bytes`). Every series carries a `node` label (the node's name), so several
//! nodes in one process stay apart. The full table is in docs/metrics.md.
//!
//! Cardinality is bounded: `reason` and `state` take a fixed set of values, and phi is
//! published only for the members this node watches (its observer subjects, a handful), not
//! for every member.

use crate::driver::DriverStats;
use metrics::{counter, gauge, SharedString};
use rand_core::RngCore;
use shoal_core::{Event, MemberState, Node, NodeId, PacketError, Stats, Timestamp};
use std::collections::BTreeMap;
use std::time::Duration;

/// How often the drive loop publishes the node's counters and gauges.
pub const PUBLISH_INTERVAL: Duration = Duration::from_secs(1);

/// Publishes one node's gossip metrics.
pub(crate) struct GossipMetrics {
    node: SharedString,
    next: Timestamp,
    /// Members whose phi was published last time, by id, with their name label: a member no
    /// longer watched gets its gauge zeroed once, so a stale phi does not linger.
    phi_published: BTreeMap<NodeId, SharedString>,
}

impl GossipMetrics {
    pub(crate) fn new(node_name: &str) -> Self {
        GossipMetrics {
            node: SharedString::from(node_name.to_owned()),
            next: Timestamp::ZERO,
            phi_published: BTreeMap::new(),
        }
    }

    /// Publishes when the interval has passed since the last publication.
    pub(crate) fn maybe_publish<R: RngCore>(
        &mut self,
        now: Timestamp,
        node: &Node<R>,
        driver: &DriverStats,
    ) {
        if now < self.next {
            return;
        }
        self.next = now + PUBLISH_INTERVAL;
        self.publish(node, driver);
    }

    fn publish<R: RngCore>(&mut self, node: &Node<R>, driver: &DriverStats) {
        let n = self.node.clone();
        let s: Stats = node.stats();
        let c = |name: &'static str, v: u64| counter!(name, "node" => n.clone()).absolute(v);
        c("shoal_gossip_packets_received_total", s.packets_in);
        c("shoal_gossip_received_bytes_total", s.bytes_in);
        c("shoal_gossip_packets_sent_total", s.packets_out);
        c("shoal_gossip_sent_bytes_total", s.bytes_out);
        c("shoal_gossip_send_errors_total", driver.send_errors);
        c("shoal_gossip_receive_errors_total", driver.recv_errors);
        c(
            "shoal_gossip_transmits_dropped_total",
            driver.transmits_dropped,
        );
        c("shoal_membership_updates_applied_total", s.updates_applied);
        c("shoal_refutations_total", s.refutations);
        c("shoal_probes_total", s.probes);
        c("shoal_probe_failures_total", s.probe_failures);
        c("shoal_suspicions_total", s.suspicions);
        c("shoal_failures_declared_total", s.failures_declared);
        c("shoal_identity_conflicts_total", s.identity_conflicts);
        c("shoal_dissemination_dropped_total", s.broadcasts_dropped);
        for (i, reason) in PacketError::ALL.iter().enumerate() {
            let v = s.dropped.get(i).copied().unwrap_or(0);
            counter!("shoal_gossip_packets_dropped_total", "node" => n.clone(), "reason" => *reason)
                .absolute(v);
        }
        gauge!("shoal_local_health", "node" => n.clone()).set(f64::from(s.health));
        gauge!("shoal_dissemination_queue_updates", "node" => n.clone())
            .set(s.queued_updates as f64);

        let mut by_state = [0usize; 4];
        let mut watched = BTreeMap::new();
        for m in node.members() {
            by_state[state_index(m.state)] += 1;
            if let Some(phi) = node.phi(&m.info.id) {
                watched.insert(
                    m.info.id,
                    (SharedString::from(m.info.name.to_string()), phi),
                );
            }
        }
        for (state, count) in STATES.iter().zip(by_state) {
            gauge!("shoal_members", "node" => n.clone(), "state" => *state).set(count as f64);
        }
        for (id, member) in std::mem::take(&mut self.phi_published) {
            if !watched.contains_key(&id) {
                gauge!("shoal_member_phi", "node" => n.clone(), "member" => member).set(0.0);
            }
        }
        for (id, (member, phi)) in watched {
            // phi is infinite after a long silence; exporters want a finite number.
            let phi = if phi.is_finite() { phi } else { f64::MAX };
            gauge!("shoal_member_phi", "node" => n.clone(), "member" => member.clone()).set(phi);
            self.phi_published.insert(id, member);
        }
    }

    /// Records what only an event tells: partitions.
    pub(crate) fn on_event(&self, event: &Event) {
        let n = self.node.clone();
        match event {
            Event::PartitionDetected { .. } => {
                counter!("shoal_partitions_detected_total", "node" => n.clone()).increment(1);
                gauge!("shoal_partitioned", "node" => n).set(1.0);
            }
            Event::PartitionHealed { .. } => {
                gauge!("shoal_partitioned", "node" => n).set(0.0);
            }
            _ => {}
        }
    }
}

/// The `state` label's values, indexed by [`state_index`].
const STATES: [&str; 4] = ["alive", "suspect", "failed", "left"];

fn state_index(state: MemberState) -> usize {
    match state {
        MemberState::Alive => 0,
        MemberState::Suspect => 1,
        MemberState::Failed => 2,
        MemberState::Left => 3,
    }
}
