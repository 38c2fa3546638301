//! Operation sequences on a small cluster (quinn's `streams` target style): deliver raw or
//! structured datagrams, advance time, join, set and remove tags, leave. After every
//! operation: live members within `max_members`, every node's own entry alive unless it left,
//! its table entry equal to its own info, counters monotonic, incarnations never decreasing.
#![no_main]

use arbitrary::Arbitrary;
use core::time::Duration;
use libfuzzer_sys::fuzz_target;
use shoal_core::wire::{self, Packet};
use shoal_core::MemberState;
use shoal_fuzz::{addr, aim, config, handle_checked, source};

#[derive(Debug, Arbitrary)]
enum Op {
    Raw {
        to: u8,
        from: u8,
        bytes: Vec<u8>,
    },
    Structured {
        to: u8,
        from: u8,
        packet: Packet,
    },
    Advance {
        ms: u16,
    },
    Deliver,
    Lose,
    Join {
        node: u8,
        seed: u8,
    },
    SetTag {
        node: u8,
        key: String,
        value: String,
    },
    RemoveTag {
        node: u8,
        key: String,
    },
    Leave {
        node: u8,
    },
}

fuzz_target!(|ops: Vec<Op>| {
    let cfg = config();
    let cluster = cfg.cluster_hash();
    // Three joined members and one outsider that may join later.
    let mut c = shoal_fuzz::joined(4, 3, cfg);
    let ids = c.ids();
    let n = c.nodes.len();
    // Whether `leave` was accepted for node i (its own entry may then be `Left`).
    let mut leaving = vec![false; n];
    let mut stats: Vec<_> = c.nodes.iter().map(|x| x.stats()).collect();
    let mut incs: Vec<_> = c.nodes.iter().map(|x| x.me().incarnation).collect();
    for op in ops.into_iter().take(48) {
        let now = c.now;
        match op {
            Op::Raw { to, from, bytes } => {
                let to = to as usize % n;
                let _ = handle_checked(&mut c.nodes[to], now, source(from, n), &bytes);
                c.drain(to);
            }
            Op::Structured {
                to,
                from,
                mut packet,
            } => {
                aim(&mut packet, &ids, cluster);
                if let Some(bytes) = wire::encode(&packet) {
                    let to = to as usize % n;
                    let _ = handle_checked(&mut c.nodes[to], now, source(from, n), &bytes);
                    c.drain(to);
                }
            }
            Op::Advance { ms } => c.advance(Duration::from_millis(u64::from(ms % 4_000)), 5_000),
            Op::Deliver => {
                c.deliver_at_most(5_000);
            }
            Op::Lose => c.inflight.clear(),
            Op::Join { node, seed } => {
                let i = node as usize % n;
                let _ = c.nodes[i].join(now, &[addr(seed as usize % n)]);
                c.drain(i);
            }
            Op::SetTag { node, key, value } => {
                let i = node as usize % n;
                let _ = c.nodes[i].set_tag(now, &key, &value);
                c.drain(i);
            }
            Op::RemoveTag { node, key } => {
                let i = node as usize % n;
                let _ = c.nodes[i].remove_tag(now, &key);
                c.drain(i);
            }
            Op::Leave { node } => {
                let i = node as usize % n;
                if c.nodes[i].leave(now).is_ok() {
                    leaving[i] = true;
                }
                c.drain(i);
            }
        }
        for (i, node) in c.nodes.iter().enumerate() {
            assert!(node.live_members() <= node.config().max_members);
            assert!(node.members().count() <= node.config().max_members);
            let own = node.member(&node.id()).expect("own entry kept");
            if !leaving[i] {
                assert_eq!(
                    own.state,
                    MemberState::Alive,
                    "node {i} not alive in its own view"
                );
                assert_eq!(&own.info, node.me());
            }
            assert!(!node.has_left() || leaving[i]);
            let s = node.stats();
            shoal_fuzz::assert_monotonic(&stats[i], &s);
            stats[i] = s;
            assert!(node.me().incarnation >= incs[i], "incarnation went down");
            incs[i] = node.me().incarnation;
        }
    }
});
