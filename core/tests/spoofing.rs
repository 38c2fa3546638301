//! Spoofing rules that hold without the cluster key. With plaintext gossip an outsider who
//! knows the cluster name can join (expected in keyless mode) and can forge news about any
//! member, since gossip relays others' updates. What must hold regardless: only a member
//! raises its own incarnation for good. Forged news about a live member is refuted by it, the
//! cluster converges back to the member's real info, and after refutation settles no node
//! holds an incarnation for it above what the member itself published.

use core::time::Duration;
use shoal_core::testkit::{addr, fake_info, forge, outside, Cluster};
use shoal_core::wire::Message;
use shoal_core::{Config, MemberState, Tags, Update};

/// Checks that every node holds exactly the victim's own record, alive.
fn converged_on_owner(c: &Cluster, victim: usize) {
    let owner = c.nodes[victim].me().clone();
    for (i, node) in c.nodes.iter().enumerate() {
        let m = node.member(&owner.id).unwrap();
        assert_eq!(m.state, MemberState::Alive, "node {i} holds {:?}", m.state);
        assert_eq!(
            m.info, owner,
            "node {i} holds another record for the victim"
        );
        assert!(m.info.incarnation <= owner.incarnation);
    }
}

fn forge_and_settle(update: Update, target: usize) -> (Cluster, u64) {
    let config = Config::local();
    let mut c = Cluster::joined(4, config.clone());
    c.nodes[1].set_tag(c.now, "role", "worker").unwrap();
    c.run_for(Duration::from_secs(2));
    let before = c.nodes[1].me().incarnation;
    let outsider = fake_info(7).id;
    let bytes = forge(&config, outsider, Message::Gossip, vec![update]);
    c.inject(target, outside(7), &bytes).unwrap();
    c.run_for(Duration::from_secs(15));
    (c, before)
}

#[test]
fn forged_alive_with_higher_incarnation_is_refuted_by_the_owner() {
    let config = Config::local();
    let c0 = Cluster::joined(4, config.clone());
    let victim_id = c0.nodes[1].id();
    let mut forged = c0.nodes[1].me().clone();
    forged.incarnation += 10;
    forged.tags = Tags::from_pairs([("role", "evil")]).unwrap();
    forged.set_gossip_addr(outside(66)); // hijack attempt: traffic for the victim to the attacker
    drop(c0);
    let (c, before) = forge_and_settle(Update::Alive(forged.clone()), 0);
    let owner = c.nodes[1].me();
    assert_eq!(owner.id, victim_id);
    assert!(
        owner.incarnation > forged.incarnation,
        "the owner outbid the forgery"
    );
    assert!(owner.incarnation > before);
    assert_eq!(owner.tags.get("role"), Some("worker"));
    assert_eq!(owner.gossip_addr(), addr(1));
    assert!(c.nodes[1].stats().refutations >= 1);
    converged_on_owner(&c, 1);
}

#[test]
fn forged_left_about_a_live_member_is_refuted() {
    let c0 = Cluster::joined(4, Config::local());
    let me = c0.nodes[1].me().clone();
    drop(c0);
    let forged = Update::Left {
        id: me.id,
        incarnation: me.incarnation + 1,
    };
    let (c, _) = forge_and_settle(forged, 2);
    assert!(c.nodes[1].stats().refutations >= 1);
    converged_on_owner(&c, 1);
}

#[test]
fn forged_failed_about_a_live_member_is_refuted() {
    let c0 = Cluster::joined(4, Config::local());
    let me = c0.nodes[1].me().clone();
    drop(c0);
    let forged = Update::Failed {
        id: me.id,
        incarnation: me.incarnation + 3,
        by: fake_info(8).id,
    };
    let (c, _) = forge_and_settle(forged, 3);
    assert!(c.nodes[1].stats().refutations >= 1);
    converged_on_owner(&c, 1);
}

#[test]
fn forged_suspect_and_failed_at_current_incarnation_are_refuted() {
    for (k, make) in [
        |id, inc, by| Update::Suspect {
            id,
            incarnation: inc,
            by,
        },
        |id, inc, by| Update::Failed {
            id,
            incarnation: inc,
            by,
        },
    ]
    .into_iter()
    .enumerate()
    {
        let c0 = Cluster::joined(4, Config::local());
        let me = c0.nodes[1].me().clone();
        drop(c0);
        // `me` is the record before `set_tag` in `forge_and_settle`: an old incarnation,
        // which must be stale by then, and is refuted if it is not.
        let (c, before) = forge_and_settle(make(me.id, me.incarnation + 1, fake_info(9).id), k);
        assert!(c.nodes[1].me().incarnation >= before);
        converged_on_owner(&c, 1);
    }
}

/// A flood of forged news from many outsiders, all at once, through every member: the owner
/// refutes each and the cluster still converges on its record, with no incarnation above
/// what it published.
#[test]
fn incarnations_never_exceed_what_the_owner_published() {
    let config = Config::local();
    let mut c = Cluster::joined(5, config.clone());
    let victim = c.nodes[2].id();
    for k in 0..60 {
        let inc = c.nodes[2].me().incarnation + (k as u64 % 4);
        let by = fake_info(k).id;
        let u = match k % 3 {
            0 => Update::Suspect {
                id: victim,
                incarnation: inc,
                by,
            },
            1 => Update::Failed {
                id: victim,
                incarnation: inc,
                by,
            },
            _ => Update::Left {
                id: victim,
                incarnation: inc,
            },
        };
        let bytes = forge(&config, by, Message::Gossip, vec![u]);
        let to = [0, 1, 3, 4][k % 4];
        c.inject(to, outside(k), &bytes).unwrap();
        c.run_for(Duration::from_millis(50));
    }
    c.run_for(Duration::from_secs(20));
    converged_on_owner(&c, 2);
}
