//! Structured packets (`arbitrary`-derived `Packet`, `Message`, `Update`, ...) aimed at a live
//! node of a joined cluster: ids mostly rewritten to real members, the real cluster hash, the
//! real encoder. Checks the encoder/decoder round trip, the rejection contract, and the
//! member cap.
#![no_main]

use arbitrary::Arbitrary;
use core::time::Duration;
use libfuzzer_sys::fuzz_target;
use shoal_core::wire::{self, Packet};
use shoal_fuzz::{aim, config, handle_checked, source};

#[derive(Debug, Arbitrary)]
struct Shot {
    to: u8,
    from: u8,
    delay_ms: u8,
    packet: Packet,
}

fuzz_target!(|shots: Vec<Shot>| {
    let cfg = config();
    let cluster = cfg.cluster_hash();
    let mut c = shoal_fuzz::joined(5, 5, cfg);
    let ids = c.ids();
    let n = c.nodes.len();
    for mut s in shots.into_iter().take(32) {
        aim(&mut s.packet, &ids, cluster);
        let Some(bytes) = wire::encode(&s.packet) else {
            continue;
        };
        let back = wire::decode(&bytes, wire::MAX_DATAGRAM).expect("encoded packets decode");
        assert_eq!(wire::encode(&back).as_deref(), Some(&bytes[..]));
        if s.delay_ms > 0 {
            c.advance(Duration::from_millis(u64::from(s.delay_ms) * 10), 2_000);
        }
        let to = s.to as usize % n;
        let now = c.now;
        let before = c.nodes[to].stats();
        let _ = handle_checked(&mut c.nodes[to], now, source(s.from, n), &bytes);
        shoal_fuzz::assert_monotonic(&before, &c.nodes[to].stats());
        c.drain(to);
        c.deliver_at_most(2_000);
        for node in &c.nodes {
            assert!(node.live_members() <= node.config().max_members);
            assert!(node.members().count() <= node.config().max_members);
            // Nobody but the node itself raises its incarnation past what it published.
            let me = node.me();
            assert_eq!(node.member(&me.id).map(|m| &m.info), Some(me));
        }
    }
});
