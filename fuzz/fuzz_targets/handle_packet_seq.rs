//! A live node in a joined five-node cluster receives a sequence of arbitrary datagrams from
//! arbitrary senders at arbitrary times (the cluster keeps running in between). Never a
//! panic; a rejected datagram changes nothing but exactly one drop counter.
#![no_main]

use core::time::Duration;
use libfuzzer_sys::fuzz_target;
use shoal_fuzz::{config, handle_checked, records, source};

fuzz_target!(|data: &[u8]| {
    let mut c = shoal_fuzz::joined(5, 5, config());
    let n = c.nodes.len();
    for r in records(data).into_iter().take(64) {
        if r.delay_ms > 0 {
            c.advance(Duration::from_millis(u64::from(r.delay_ms) * 10), 2_000);
        }
        let to = (r.selector as usize / 7) % n;
        let from = source(r.selector, n);
        let before = c.nodes[to].stats();
        let now = c.now;
        let _ = handle_checked(&mut c.nodes[to], now, from, r.bytes);
        shoal_fuzz::assert_monotonic(&before, &c.nodes[to].stats());
        c.drain(to);
        c.deliver_at_most(2_000);
        for node in &c.nodes {
            assert!(node.live_members() <= node.config().max_members);
        }
    }
});
