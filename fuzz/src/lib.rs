//! Shared code of Shoal's fuzz targets: the cluster, RNG and rejection contract come from
//! `shoal_core::testkit` (the one harness core's tests use too); this crate adds what only
//! fuzzing needs: the record framing the sequence targets read, the aiming of structured
//! packets at real members, and the decode/encode round trip.
#![forbid(unsafe_code)]
#![deny(missing_docs)]

use core::net::SocketAddr;
use core::time::Duration;
use shoal_core::wire::{self, Packet};
use shoal_core::{Config, NodeId};

pub use shoal_core::testkit::{
    addr, assert_monotonic, counters, handle_checked, Cluster, Snapshot, TestNode as FuzzNode,
    TestRng as Rng,
};

/// The configuration fuzzed nodes run: `Config::local()` with a small member cap, so that
/// structured inputs can reach the "table full" path.
pub fn config() -> Config {
    Config {
        max_members: 12,
        ..Config::local()
    }
}

/// `n` nodes of the test kit's [`Cluster`], the first `joined` of which joined through node
/// 0 (delivering at most 10 000 datagrams each) and ran one anti-entropy round or so.
pub fn joined(n: usize, joined: usize, config: Config) -> Cluster {
    let mut c = Cluster::new(n, config);
    for i in 1..joined {
        let now = c.now;
        c.nodes[i].join(now, &[addr(0)]).expect("join accepted");
        c.deliver_at_most(10_000);
    }
    c.advance(Duration::from_millis(600), 100_000);
    c
}

/// Decodes `bytes`; if they decode, re-encoding and decoding again gives the same packet.
pub fn check_round_trip(bytes: &[u8]) -> Option<Packet> {
    let p = wire::decode(bytes, wire::MAX_DATAGRAM).ok()?;
    let again = wire::encode(&p).expect("a decoded packet re-encodes within MAX_DATAGRAM");
    assert!(again.len() <= wire::MAX_DATAGRAM);
    let q = wire::decode(&again, wire::MAX_DATAGRAM).expect("a re-encoded packet decodes");
    assert_eq!(p, q, "decode(encode(p)) != p");
    Some(p)
}

/// One record of a datagram sequence: who receives it, from where, when, and the bytes.
#[derive(Debug, Clone, PartialEq)]
pub struct Record<'a> {
    /// Selects the receiving node and the claimed source address.
    pub selector: u8,
    /// Milliseconds to advance before delivery (timers fire on the way).
    pub delay_ms: u8,
    /// The datagram.
    pub bytes: &'a [u8],
}

/// Splits fuzz input into records `[selector][delay_ms][len: u16 le][bytes]`; the last
/// record takes what is left if its length runs past the end.
pub fn records(mut data: &[u8]) -> Vec<Record<'_>> {
    let mut out = Vec::new();
    while data.len() >= 4 {
        let len = u16::from_le_bytes([data[2], data[3]]) as usize;
        let end = (4 + len).min(data.len());
        out.push(Record {
            selector: data[0],
            delay_ms: data[1],
            bytes: &data[4..end],
        });
        data = &data[end..];
    }
    out
}

/// Encodes records in the framing [`records`] reads (for seed corpora).
pub fn encode_records(recs: &[Record<'_>]) -> Vec<u8> {
    let mut out = Vec::new();
    for r in recs {
        out.push(r.selector);
        out.push(r.delay_ms);
        out.extend_from_slice(&(r.bytes.len().min(u16::MAX as usize) as u16).to_le_bytes());
        out.extend_from_slice(r.bytes);
    }
    out
}

/// Maps a claimed source: selectors below 200 pick a cluster node's address, others an
/// address no node has.
pub fn source(selector: u8, n: usize) -> SocketAddr {
    if selector < 200 {
        addr(selector as usize % n)
    } else {
        SocketAddr::from(([10, 0, 0, selector], 9_000))
    }
}

/// Rewrites ids in `p` so that structured inputs talk about real members most of the time:
/// an id whose first byte is not a multiple of 4 becomes `ids[second byte % len]`. The
/// header's cluster hash is set to `cluster` unless its low byte is 0xff.
pub fn aim(p: &mut Packet, ids: &[NodeId], cluster: u32) {
    use shoal_core::wire::Message;
    use shoal_core::Update;
    let fix = |id: &mut NodeId| {
        if !id.0[0].is_multiple_of(4) {
            *id = ids[id.0[1] as usize % ids.len()];
        }
    };
    if p.header.cluster & 0xff != 0xff {
        p.header.cluster = cluster;
    }
    fix(&mut p.header.from);
    if let Some(to) = &mut p.header.to {
        // A tag names the recipient: most become one of the real ids' tags.
        if !to.0[0].is_multiple_of(4) {
            *to = ids[to.0[1] as usize % ids.len()].into();
        }
    }
    match &mut p.message {
        Message::PingReq { target, .. } | Message::IndirectAck { target, .. } => fix(target),
        Message::SyncReply { entries, .. } | Message::SyncPush { entries } => {
            for e in entries.0.iter_mut() {
                fix(&mut e.info.id);
            }
        }
        _ => {}
    }
    for u in &mut p.updates {
        match u {
            Update::Alive(info) => fix(&mut info.id),
            Update::Suspect { id, by, .. } | Update::Failed { id, by, .. } => {
                fix(id);
                fix(by);
            }
            Update::Left { id, .. } => fix(id),
        }
    }
}
