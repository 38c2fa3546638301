//! Freshness and address validation (issue 17).
//!
//! 1. Arbitrary stamps from a few senders into a small `ReplayGuard`: its size never passes
//!    the capacity, and while nothing was evicted the same (sender, stamp) is never accepted
//!    twice.
//! 2. A fresh node receives arbitrary datagrams (forged messages of every kind without
//!    updates, or raw bytes) from a few spoofed addresses that never echo a challenge: every
//!    address gets back at most 3x the bytes it sent. Never a panic.
#![no_main]

use libfuzzer_sys::fuzz_target;
use shoal_core::freshness::{ReplayGuard, Stamp};
use shoal_core::testkit::{forge, node, outside};
use shoal_core::wire::{bounded::BoundedVec, Message, DIGEST_BYTES};
use shoal_core::{Config, NodeId, Timestamp};
use std::collections::BTreeSet;

fn word(d: &[u8], i: usize) -> u64 {
    d.get(i).copied().unwrap_or(0) as u64
}

fuzz_target!(|data: &[u8]| {
    // 1. The replay guard.
    let mut guard = ReplayGuard::new(3);
    let mut accepted = BTreeSet::new();
    for c in data.chunks(4).take(200) {
        let from = NodeId([word(c, 0) as u8 % 5; 16]);
        let stamp = Stamp {
            life: word(c, 1) % 3,
            boot: word(c, 2) % 3,
            counter: word(c, 3),
        };
        let evictions = guard.evictions();
        if guard.accept(&from, stamp).is_ok() && guard.evictions() == evictions {
            assert!(
                accepted.insert((from, stamp)) || evictions > 0,
                "{stamp:?} from {from:?} accepted twice"
            );
        }
        assert!(guard.len() <= 3);
    }

    // 2. The amplification budget.
    let config = Config::local();
    let mut n = node(0, config.clone());
    let stranger = NodeId::from_name("stranger");
    let mut sent_in = [0usize; 4];
    let mut got_out = [0usize; 4];
    let mut now = Timestamp::ZERO;
    let mut rest = data;
    while let [sel, arg, tail @ ..] = rest {
        rest = tail;
        let src = (*sel as usize) % 4;
        let from = outside(50 + src);
        let seq = u32::from(*arg);
        let kind = sel / 4 % 12;
        let message = match kind {
            0 => Message::Join,
            1 => Message::Ping { seq },
            2 => Message::Sync {
                seq,
                digest: BoundedVec::try_from_vec(vec![*arg; DIGEST_BYTES]).unwrap_or_else(|_| BoundedVec::new()),
            },
            3 => Message::Challenge { token: u64::from(*arg) },
            4 => Message::Echo { token: u64::from(*arg) },
            5 => Message::PingReq { seq, target: stranger },
            6 => Message::Gossip,
            7 => Message::Ack { seq },
            8 => Message::JoinEcho { token: u64::from(*arg) },
            9 => Message::SyncEcho {
                seq,
                digest: BoundedVec::try_from_vec(vec![*arg; DIGEST_BYTES]).unwrap_or_else(|_| BoundedVec::new()),
                token: u64::from(*arg),
            },
            _ => Message::IndirectAck { seq, target: stranger, ok: *arg & 1 == 1 },
        };
        let bytes = if kind == 11 {
            let take = usize::from(*arg).min(rest.len());
            let (raw, tail) = rest.split_at(take);
            rest = tail;
            raw.to_vec()
        } else {
            forge(&config, stranger, message, vec![])
        };
        now = now + core::time::Duration::from_millis(u64::from(*arg));
        sent_in[src] += bytes.len();
        let _ = n.handle_packet(now, from, &bytes);
        if *arg % 7 == 0 {
            n.handle_timeout(now);
        }
        while let Some(t) = n.poll_transmit() {
            if let Some(i) = (0..4).find(|&i| outside(50 + i) == t.dst) {
                got_out[i] += t.payload.len();
            }
        }
        while n.poll_event().is_some() {}
        for i in 0..4 {
            assert!(got_out[i] <= 3 * sent_in[i], "{} out for {} in", got_out[i], sent_in[i]);
        }
    }
});
