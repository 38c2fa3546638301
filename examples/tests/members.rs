//! The `members` inspector against two real clusters on loopback, in-process. Every wait is
//! on an event or a reply, bounded by a timeout.

use shoal_examples::inspect::{inspect, render_table, InspectOptions, Preset, INSPECTOR_TAG};
use shoal_tokio::core::Config;
use shoal_tokio::{Cluster, ClusterConfig, ClusterEvent, EventStream};
use std::time::Duration;
use tokio::time::timeout;

const WAIT: Duration = Duration::from_secs(10);
const KEY: [u8; 32] = [9; 32];

fn config(name: &str, role: &str) -> ClusterConfig {
    ClusterConfig::default()
        .with_bind_addr("127.0.0.1:0".parse().unwrap())
        .with_core_config(Config::local())
        .with_cluster_key(KEY)
        .with_name(name)
        .with_tags([("role", role), ("zone", "test")])
}

async fn wait_for(events: &mut EventStream, what: &str, pred: impl Fn(&ClusterEvent) -> bool) {
    let found = timeout(WAIT, async {
        while let Some(e) = events.recv().await {
            if pred(&e) {
                return true;
            }
        }
        false
    })
    .await;
    assert_eq!(found, Ok(true), "waiting for {what}");
}

#[tokio::test(flavor = "current_thread")]
async fn inspector_lists_both_members_with_tags_then_leaves() {
    let director = Cluster::start(config("director", "director"))
        .await
        .unwrap();
    let mut director_events = director.subscribe();
    let worker = Cluster::start(config("worker-1", "worker")).await.unwrap();
    worker.join(vec![director.gossip_addr()]).await.unwrap();
    wait_for(
        &mut director_events,
        "the worker's join",
        |e| matches!(e, ClusterEvent::NodeJoined(m) if m.name == "worker-1"),
    )
    .await;

    let opts = InspectOptions {
        seeds: vec![director.gossip_addr()],
        cluster_key: Some(KEY),
        preset: Preset::Local,
        name: Some("inspector-test".into()),
        quiet: Duration::from_millis(200),
        max_wait: Duration::from_secs(3),
        ..InspectOptions::default()
    };
    let view = timeout(WAIT, inspect(&opts))
        .await
        .expect("inspection is bounded")
        .expect("inspection succeeds");

    let names: Vec<&str> = view.members.iter().map(|m| m.name.as_str()).collect();
    assert_eq!(
        names,
        ["director", "worker-1"],
        "the inspector lists itself not"
    );
    for (m, role) in view.members.iter().zip(["director", "worker"]) {
        assert_eq!(m.state, "alive");
        assert_eq!(m.tags.get("role").map(String::as_str), Some(role));
        assert_eq!(m.tags.get("zone").map(String::as_str), Some("test"));
        assert!(m.gossip_addr.ip().is_loopback());
        assert!(m.incarnation > 0);
    }
    assert_eq!(view.members[0].gossip_addr, director.gossip_addr());
    assert_eq!(view.members[1].gossip_addr, worker.gossip_addr());
    assert!(view.left_cleanly);

    let table = render_table(&view.members);
    println!("{table}");
    assert!(table.starts_with("Name"));
    assert!(table.contains("role=worker,zone=test"), "{table}");
    let json = shoal_examples::output::json_line(&view.members);
    assert!(json.starts_with('[') && json.contains(r#""name":"director""#));

    // The cluster saw the inspector (tagged as such) leave, not fail.
    wait_for(&mut director_events, "the inspector's leave", |e| {
        matches!(e, ClusterEvent::NodeLeft(m)
            if m.name == "inspector-test"
                && m.tags.get(INSPECTOR_TAG.0).map(String::as_str) == Some(INSPECTOR_TAG.1))
    })
    .await;
    let seen = director.members().await.unwrap();
    assert!(seen
        .iter()
        .all(|m| m.name != "inspector-test" || m.state == shoal_tokio::MemberState::Left));

    worker.shutdown().await.unwrap();
    director.shutdown().await.unwrap();
}

#[tokio::test(flavor = "current_thread")]
async fn inspector_needs_a_seed() {
    let err = inspect(&InspectOptions::default()).await.unwrap_err();
    assert!(err.to_string().contains("--seed"));
}
