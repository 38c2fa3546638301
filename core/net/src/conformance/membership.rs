//! Membership over real UDP on loopback. Every wait is on an event or a reply, bounded by a
//! timeout; nothing sleeps in place of synchronisation.

use super::{timeout, RuntimeBinding};
use crate::core::Config;
use crate::{
    Cluster, ClusterConfig, ClusterError, ClusterEvent, EventStream, Key, Keyring, MemberState,
};
use std::collections::BTreeSet;
use std::time::Duration;

/// Upper bound for any single wait; convergence on loopback takes milliseconds.
const WAIT: Duration = Duration::from_secs(10);

fn config(name: &str) -> ClusterConfig {
    ClusterConfig::default()
        .with_bind_addr("127.0.0.1:0".parse().unwrap())
        .with_core_config(Config::local())
        .with_name(name)
        .with_join_timeout(Duration::from_secs(5))
}

async fn start<R: RuntimeBinding>(config: ClusterConfig) -> (Cluster<R>, EventStream) {
    let c = Cluster::<R>::start(config).await.expect("start");
    let events = c.subscribe();
    (c, events)
}

/// Waits for the first event matching `pred`, failing the test after `WAIT`.
async fn wait_for<R: RuntimeBinding>(
    events: &mut EventStream,
    what: &str,
    mut pred: impl FnMut(&ClusterEvent) -> bool,
) -> ClusterEvent {
    let found = timeout::<R, _>(WAIT, async {
        while let Some(e) = events.recv().await {
            if pred(&e) {
                return Some(e);
            }
        }
        None
    })
    .await;
    match found {
        Ok(Some(e)) => e,
        Ok(None) => panic!("event stream closed while waiting for {what}"),
        Err(_) => panic!("timed out waiting for {what}"),
    }
}

/// Waits until `events` has announced every name in `names` as joined.
async fn wait_joined<R: RuntimeBinding>(events: &mut EventStream, names: &[&str]) {
    let mut missing: BTreeSet<String> = names.iter().map(|s| s.to_string()).collect();
    while !missing.is_empty() {
        let what = format!("joins of {missing:?}");
        if let ClusterEvent::NodeJoined(m) = wait_for::<R>(
            events,
            &what,
            |e| matches!(e, ClusterEvent::NodeJoined(m) if missing.contains(&m.name)),
        )
        .await
        {
            missing.remove(&m.name);
        }
    }
}

/// Three nodes form a cluster through one seed.
pub async fn three_nodes_form_a_cluster_through_one_seed<R: RuntimeBinding>() {
    let (a, mut ea) = start::<R>(config("a")).await;
    let (b, mut eb) = start::<R>(config("b")).await;
    let (c, mut ec) = start::<R>(config("c")).await;
    b.join(vec![a.gossip_addr()]).await.expect("b joins");
    c.join(vec![a.gossip_addr()]).await.expect("c joins");

    wait_joined::<R>(&mut ea, &["b", "c"]).await;
    wait_joined::<R>(&mut eb, &["a", "c"]).await;
    wait_joined::<R>(&mut ec, &["a", "b"]).await;

    for node in [&a, &b, &c] {
        let live = node.live_members().await.unwrap();
        let names: Vec<_> = live.iter().map(|m| m.name.as_str()).collect();
        assert_eq!(names.len(), 3, "{} sees {names:?}", node.name());
        assert_eq!(live.iter().filter(|m| m.is_local).count(), 1);
    }
    let me = b.local_member().await.unwrap();
    assert_eq!(me.name, "b");
    assert_eq!(me.gossip_addr, b.gossip_addr());
    assert_eq!(me.state, MemberState::Alive);
    let stats = a.stats().await.unwrap();
    assert!(stats.node.packets_in > 0 && stats.driver.datagrams_sent > 0);
    assert_eq!(stats.driver.send_errors, 0);
    for node in [&a, &b, &c] {
        node.shutdown().await.unwrap();
    }
}

/// A tag change reaches the others.
pub async fn a_tag_change_reaches_the_others<R: RuntimeBinding>() {
    let (a, _ea) = start::<R>(config("tag-a")).await;
    let (b, mut eb) = start::<R>(config("tag-b").with_tags([("zone", "eu")])).await;
    b.join(vec![a.gossip_addr()]).await.unwrap();
    wait_joined::<R>(&mut eb, &["tag-a"]).await;

    a.set_tag("role", "director").await.unwrap();
    let ev = wait_for::<R>(&mut eb, "a's tag", |e| {
        matches!(e, ClusterEvent::NodeUpdated(m)
            if m.name == "tag-a" && m.tags.get("role").map(String::as_str) == Some("director"))
    })
    .await;
    let ClusterEvent::NodeUpdated(snapshot) = ev else {
        unreachable!()
    };
    assert!(snapshot.incarnation > 0);

    // Removing it travels the same way; a second subscriber sees the same stream.
    let mut eb2 = b.subscribe();
    a.remove_tag("role").await.unwrap();
    wait_for::<R>(
        &mut eb2,
        "a's tag removal",
        |e| matches!(e, ClusterEvent::NodeUpdated(m) if m.name == "tag-a" && m.tags.is_empty()),
    )
    .await;
    // Initial tags were published with the join.
    let seen_by_a = a.member(b.id()).await.unwrap().expect("a knows b");
    assert_eq!(seen_by_a.tags.get("zone").map(String::as_str), Some("eu"));
    a.shutdown().await.unwrap();
    b.shutdown().await.unwrap();
}

/// Leave is seen as left not failed.
pub async fn leave_is_seen_as_left_not_failed<R: RuntimeBinding>() {
    let (a, mut ea) = start::<R>(config("leave-a")).await;
    let (b, mut eb) = start::<R>(config("leave-b")).await;
    let (c, mut ec) = start::<R>(config("leave-c")).await;
    b.join(vec![a.gossip_addr()]).await.unwrap();
    c.join(vec![a.gossip_addr()]).await.unwrap();
    wait_joined::<R>(&mut ea, &["leave-b", "leave-c"]).await;
    wait_joined::<R>(&mut eb, &["leave-c"]).await;

    c.leave().await.expect("leave finishes");
    assert!(c.is_stopped() || c.members().await.is_err());
    wait_for::<R>(&mut ec, "c's LeftCluster", |e| {
        matches!(e, ClusterEvent::LeftCluster)
    })
    .await;
    assert!(
        ec.recv().await.is_none(),
        "stream ends once the node stopped"
    );

    for (node, events) in [(&a, &mut ea), (&b, &mut eb)] {
        let ev = wait_for::<R>(events, "c left", |e| match e {
            ClusterEvent::NodeLeft(m) | ClusterEvent::NodeFailed(m) => m.name == "leave-c",
            _ => false,
        })
        .await;
        assert!(
            matches!(ev, ClusterEvent::NodeLeft(_)),
            "{} saw {ev:?}",
            node.name()
        );
        let seen = node.member(c.id()).await.unwrap().expect("tombstone kept");
        assert_eq!(seen.state, MemberState::Left);
    }
    // A stopped node answers with a typed error, which maps to a meaningful io::ErrorKind.
    let err = c.members().await.unwrap_err();
    assert!(matches!(err, ClusterError::Shutdown));
    assert_eq!(
        std::io::Error::from(err).kind(),
        std::io::ErrorKind::NotConnected
    );
    c.shutdown().await.unwrap();
    a.shutdown().await.unwrap();
    b.shutdown().await.unwrap();
}

/// A wrong cluster key cannot join.
pub async fn a_wrong_cluster_key_cannot_join<R: RuntimeBinding>() {
    let (seed, _es) = start::<R>(config("key-seed").with_cluster_key([1; 32])).await;
    let (intruder, _ei) = start::<R>(
        config("key-intruder")
            .with_cluster_key([2; 32])
            .with_join_timeout(Duration::from_millis(700)),
    )
    .await;
    let err = intruder.join(vec![seed.gossip_addr()]).await.unwrap_err();
    assert!(matches!(err, ClusterError::JoinTimeout(_)), "{err:?}");
    assert_eq!(
        std::io::Error::from(err).kind(),
        std::io::ErrorKind::TimedOut
    );

    // Plaintext is refused too.
    let (plain, _ep) =
        start::<R>(config("key-plain").with_join_timeout(Duration::from_millis(300))).await;
    assert!(plain.join(vec![seed.gossip_addr()]).await.is_err());

    let stats = seed.stats().await.unwrap();
    assert!(stats.unauthenticated() >= 1, "{stats:?}");
    // The wrong key and the plaintext datagrams were all refused before decoding.
    assert!(stats.node.dropped_total() >= 2, "{stats:?}");
    assert_eq!(stats.node.live_members, 1, "nobody got in");
    assert_eq!(seed.live_members().await.unwrap().len(), 1);
    for n in [&seed, &intruder, &plain] {
        n.shutdown().await.unwrap();
    }
}

/// Key rotation keeps the cluster talking.
pub async fn key_rotation_keeps_the_cluster_talking<R: RuntimeBinding>() {
    let old = Key::new([7; 32]);
    let new = Key::new([8; 32]);
    // Mid-rotation: `a` already seals with the new key, `b` still seals with the old one;
    // each still accepts the other's key.
    let (a, mut ea) =
        start::<R>(config("rot-a").with_keyring(Keyring::with_keys(new.clone(), [old.clone()])))
            .await;
    let (b, mut eb) =
        start::<R>(config("rot-b").with_keyring(Keyring::with_keys(old.clone(), [new.clone()])))
            .await;
    b.join(vec![a.gossip_addr()])
        .await
        .expect("mixed keyrings join");
    wait_joined::<R>(&mut ea, &["rot-b"]).await;
    wait_joined::<R>(&mut eb, &["rot-a"]).await;

    // Neither side dropped anything while the keyrings differed.
    assert_eq!(a.stats().await.unwrap().unauthenticated(), 0);
    assert_eq!(b.stats().await.unwrap().unauthenticated(), 0);

    // Finish the rotation live: b switches, both drop the old key, gossip still flows. (A
    // datagram b sealed under the old key just before switching may be dropped by a; gossip
    // tolerates that loss.)
    b.use_primary_key(new.clone()).await.unwrap();
    assert!(matches!(
        b.remove_key(&new).await,
        Err(ClusterError::Keyring(_))
    ));
    b.remove_key(&old).await.unwrap();
    a.remove_key(&old).await.unwrap();
    a.set_tag("rotated", "yes").await.unwrap();
    wait_for::<R>(&mut eb, "tag after rotation", |e| {
        matches!(e, ClusterEvent::NodeUpdated(m)
            if m.name == "rot-a" && m.tags.get("rotated").map(String::as_str) == Some("yes"))
    })
    .await;
    a.shutdown().await.unwrap();
    b.shutdown().await.unwrap();
}

/// A slow subscriber is told it lagged.
pub async fn a_slow_subscriber_is_told_it_lagged<R: RuntimeBinding>() {
    let (a, _ea) = start::<R>(config("lag-a").with_event_capacity(1)).await;
    let mut slow = a.subscribe();
    let (b, _eb) = start::<R>(config("lag-b")).await;
    let (c, _ec) = start::<R>(config("lag-c")).await;
    b.join(vec![a.gossip_addr()]).await.unwrap();
    c.join(vec![a.gossip_addr()]).await.unwrap();
    // Two joins were published into a buffer of one before `slow` read anything.
    let first = timeout::<R, _>(WAIT, slow.recv()).await.unwrap().unwrap();
    assert!(
        matches!(first, ClusterEvent::Lagged { missed } if missed >= 1),
        "{first:?}"
    );
    let next = timeout::<R, _>(WAIT, slow.recv()).await.unwrap().unwrap();
    assert!(!matches!(next, ClusterEvent::Lagged { .. }), "{next:?}");
    for n in [&a, &b, &c] {
        n.shutdown().await.unwrap();
    }
}

/// Wildcard bind without advertise address is refused.
pub async fn wildcard_bind_without_advertise_address_is_refused<R: RuntimeBinding>() {
    let err = Cluster::<R>::start(
        ClusterConfig::default()
            .with_bind_addr("0.0.0.0:0".parse().unwrap())
            .with_core_config(Config::local()),
    )
    .await
    .unwrap_err();
    assert!(
        matches!(
            err,
            ClusterError::InvalidSetting {
                field: "advertise_addr",
                ..
            }
        ),
        "{err:?}"
    );
}

/// An unreachable seed does not stop the node.
pub async fn an_unreachable_seed_does_not_stop_the_node<R: RuntimeBinding>() {
    // Bind and drop a socket to get a loopback port nobody listens on: datagrams to it fail
    // (ICMP port unreachable may surface as a receive error), which must only be counted.
    let dead = std::net::UdpSocket::bind("127.0.0.1:0")
        .unwrap()
        .local_addr()
        .unwrap();
    let (a, _ea) = start::<R>(config("dead-a").with_join_timeout(Duration::from_millis(500))).await;
    assert!(matches!(
        a.join(vec![dead]).await,
        Err(ClusterError::JoinTimeout(_))
    ));
    let (b, mut eb) = start::<R>(config("dead-b")).await;
    a.join(vec![dead, b.gossip_addr()])
        .await
        .expect("second seed answers");
    wait_joined::<R>(&mut eb, &["dead-a"]).await;
    let stats = a.stats().await.unwrap();
    assert!(stats.driver.datagrams_sent >= 2, "{stats:?}");
    a.shutdown().await.unwrap();
    b.shutdown().await.unwrap();
}

/// Malformed datagrams (empty, garbage, oversized for the envelope) sent to a node's gossip
/// port are each counted as a typed drop; the node stays up and keeps its state.
pub async fn malformed_datagrams_are_counted_and_dropped<R: RuntimeBinding>() {
    let (a, _ea) = start::<R>(config("junk-a").with_cluster_key([3; 32])).await;
    let before = a.stats().await.unwrap();
    let junk = std::net::UdpSocket::bind("127.0.0.1:0").unwrap();
    let datagrams: [&[u8]; 3] = [&[], &[0xFF; 7], &[0x5A; 1300]];
    for d in datagrams {
        junk.send_to(d, a.gossip_addr()).unwrap();
    }
    let counted = timeout::<R, _>(WAIT, async {
        loop {
            let s = a.stats().await.unwrap();
            if s.driver.datagrams_received >= before.driver.datagrams_received + 3 {
                return s;
            }
            super::sleep::<R>(Duration::from_millis(10)).await;
        }
    })
    .await
    .expect("the node received the datagrams");
    assert_eq!(
        counted.node.dropped_total(),
        before.node.dropped_total() + 3,
        "{counted:?}"
    );
    assert_eq!(a.live_members().await.unwrap().len(), 1);
    assert!(!a.is_stopped());
    a.shutdown().await.unwrap();
}

/// A captured sealed datagram resent from another socket is dropped as a replay (issue 17):
/// a spy captures a keyed node's join, relays it to a keyed seed once (accepted: the seed
/// never saw it), then resends it from a second socket, which the seed drops and counts.
pub async fn a_replayed_sealed_datagram_is_dropped_and_counted<R: RuntimeBinding>() {
    use crate::core::PacketError;
    use std::net::UdpSocket;
    let (seed, _es) = start::<R>(config("replay-seed").with_cluster_key([5; 32])).await;
    let (member, _em) = start::<R>(
        config("replay-member")
            .with_cluster_key([5; 32])
            .with_join_timeout(Duration::from_millis(400)),
    )
    .await;
    let spy = UdpSocket::bind("127.0.0.1:0").expect("bind spy");
    let spy2 = UdpSocket::bind("127.0.0.1:0").expect("bind second spy");
    for s in [&spy, &spy2] {
        s.set_nonblocking(true).expect("nonblocking");
    }
    let spy_addr = spy.local_addr().expect("spy addr");
    // The member joins through the spy's address: the spy captures its sealed join.
    let capture = async {
        let mut buf = [0u8; 2048];
        for _ in 0..200 {
            if let Ok((n, _)) = spy.recv_from(&mut buf) {
                return Some(buf[..n].to_vec());
            }
            super::sleep::<R>(Duration::from_millis(10)).await;
        }
        None
    };
    let (joined, captured) = super::join(member.join(vec![spy_addr]), capture).await;
    assert!(joined.is_err(), "nobody answers at the spy's address");
    let captured = captured.expect("the member's join reached the spy");
    // Relayed once: the seed accepts it (it never saw it) and answers only with a challenge.
    spy.send_to(&captured, seed.gossip_addr()).expect("relay");
    // Wait until the relayed copy was applied (the member's own news rode on it).
    let before = timeout::<R, _>(WAIT, async {
        loop {
            let s = seed.stats().await.unwrap();
            if s.node.live_members == 2 {
                return s;
            }
            super::sleep::<R>(Duration::from_millis(10)).await;
        }
    })
    .await
    .expect("the relayed join was accepted");
    // Resent from another socket: a replay.
    spy2.send_to(&captured, seed.gossip_addr()).expect("replay");
    let dropped = timeout::<R, _>(WAIT, async {
        loop {
            let s = seed.stats().await.unwrap();
            if s.node.dropped_for(&PacketError::Replayed)
                > before.node.dropped_for(&PacketError::Replayed)
            {
                return s;
            }
            super::sleep::<R>(Duration::from_millis(10)).await;
        }
    })
    .await
    .expect("the replay was counted");
    assert_eq!(dropped.node.live_members, 2, "the replay changed nothing");
    assert_eq!(dropped.node.updates_applied, before.node.updates_applied);
    // Nothing went back to the second socket (checked for a while: an absence).
    let mut buf = [0u8; 2048];
    for _ in 0..20 {
        assert!(
            spy2.recv_from(&mut buf).is_err(),
            "the seed answered a replay"
        );
        super::sleep::<R>(Duration::from_millis(10)).await;
    }
    for n in [&seed, &member] {
        n.shutdown().await.unwrap();
    }
}
