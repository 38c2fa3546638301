//! Writes the checked-in seed corpora (`corpus/<target>/seed-*`): real datagrams captured from
//! a joining cluster, valid RPC frames, filter texts. Run from `fuzz/`:
//! `cargo run --example gen_corpus`. Deterministic: the same files every time.

use bytes::{Bytes, BytesMut};
use core::time::Duration;
use shoal_core::rpc::{encode_request, encode_response, Limits, Request, Response, Status};
use shoal_core::wire;
use shoal_fuzz::{config, encode_records, Cluster, Record};
use std::collections::BTreeMap;
use std::fs;
use std::path::Path;

fn write(target: &str, seeds: &[Vec<u8>]) {
    let dir = Path::new(env!("CARGO_MANIFEST_DIR"))
        .join("corpus")
        .join(target);
    fs::create_dir_all(&dir).unwrap();
    for old in fs::read_dir(&dir).unwrap().flatten() {
        if old.file_name().to_string_lossy().starts_with("seed-") {
            fs::remove_file(old.path()).unwrap();
        }
    }
    for (i, s) in seeds.iter().enumerate() {
        fs::write(dir.join(format!("seed-{i:02}")), s).unwrap();
    }
    println!("{target}: {} seeds", seeds.len());
}

fn main() {
    // Datagrams of every kind, captured from a cluster joining and running for a while.
    let mut c = Cluster::new(5, config());
    c.tap = Some(Vec::new());
    for i in 1..5 {
        let now = c.now;
        c.nodes[i].join(now, &[shoal_fuzz::addr(0)]).unwrap();
        c.deliver_at_most(10_000);
    }
    c.nodes[2].set_tag(c.now, "role", "worker").unwrap();
    c.advance(Duration::from_secs(3), 100_000);
    let tapped = c.tap.take().unwrap();
    let mut by_kind: BTreeMap<&'static str, Vec<Vec<u8>>> = BTreeMap::new();
    for bytes in tapped {
        let p = wire::decode(&bytes, wire::MAX_DATAGRAM).unwrap();
        let kind = p.message.kind();
        let slot = by_kind.entry(kind).or_default();
        if slot.len() < 3 {
            slot.push(bytes);
        }
    }
    let mut packets: Vec<Vec<u8>> = by_kind.into_values().flatten().collect();
    // Sync summaries and wants appear only in clusters with more than 8 members a digest
    // bucket (hundreds of members): made by hand, from node 1 to node 0.
    let header = wire::Header {
        cluster: config().cluster_hash(),
        from: c.nodes[1].id(),
        to: Some(c.nodes[0].id().into()),
    };
    let hashes: Vec<u64> = (1..=20u64).map(|i| i.wrapping_mul(0x9e37_79b9_7f4a_7c15)).collect();
    for message in [
        wire::Message::SyncSummary {
            seq: 7,
            bucket: 3,
            split: 1,
            part: 1,
            hashes: wire::write_hashes(&hashes),
        },
        wire::Message::SyncWant {
            bucket: 3,
            hashes: wire::write_hashes(&hashes[..4]),
        },
    ] {
        let p = wire::Packet {
            header,
            message,
            updates: Vec::new(),
        };
        packets.push(wire::encode(&p).unwrap());
    }
    write("decode_packet", &packets);

    // Sequences: each captured datagram to node 0, 1 and 2, from its real sender slot.
    let seqs: Vec<Vec<u8>> = packets
        .chunks(3)
        .enumerate()
        .map(|(i, chunk)| {
            let recs: Vec<Record<'_>> = chunk
                .iter()
                .enumerate()
                .map(|(j, b)| Record {
                    selector: (7 * ((i + j) % 5) + 1) as u8,
                    delay_ms: (j * 10) as u8,
                    bytes: b,
                })
                .collect();
            encode_records(&recs)
        })
        .collect();
    write("handle_packet_seq", &seqs);

    // RPC frames: generous limits (0xff), several split steps.
    let limits = Limits::default();
    let mut frames = Vec::new();
    let reqs = [
        Request::new("echo", None, Bytes::from_static(b"hello")).unwrap(),
        Request::new("compute", Some(1500), Bytes::from(vec![7u8; 300])).unwrap(),
    ];
    let resps = [
        Response {
            status: Status::Ok,
            payload: Bytes::from_static(b"world"),
        },
        Response {
            status: Status::HandlerFailed("boom".into()),
            payload: Bytes::new(),
        },
        Response {
            status: Status::Overloaded,
            payload: Bytes::new(),
        },
    ];
    for (i, r) in reqs.iter().enumerate() {
        let mut b = BytesMut::new();
        encode_request(r, &limits, &mut b).unwrap();
        let mut seed = vec![0xff, 0xff, (i as u8) * 3 + 1];
        seed.extend_from_slice(&b);
        frames.push(seed);
    }
    for (i, r) in resps.iter().enumerate() {
        let mut b = BytesMut::new();
        encode_response(r, &limits, &mut b).unwrap();
        encode_response(r, &limits, &mut b).unwrap();
        let mut seed = vec![0xff, 0xff, (i as u8) * 5 + 2];
        seed.extend_from_slice(&b);
        frames.push(seed);
    }
    write("rpc_frame", &frames);

    let filters = [
        "",
        "role=worker",
        "gpu=true, zone=eu",
        "zone!=us",
        "!gpu",
        "a=1,b!=2,c",
    ];
    write(
        "tag_filter",
        &filters
            .iter()
            .map(|f| f.as_bytes().to_vec())
            .collect::<Vec<_>>(),
    );

    // Structured targets read `arbitrary` input: seed them with a few packets' bytes, which
    // the fuzzer reshapes quickly.
    write("structured_packet", &packets[..packets.len().min(4)]);
    write("node_ops", &packets[packets.len().saturating_sub(4)..]);
}
