//! Wire format properties: every message round-trips, encoders respect the size cap, and
//! arbitrary bytes never panic the decoder.

use super::*;
use crate::membership::{MemberInfo, MemberState, SyncEntry, Tags, Update};
use crate::wire::bounded::BoundedString;
use core::net::SocketAddr;
use proptest::prelude::*;

pub(crate) fn arb_id() -> impl Strategy<Value = NodeId> {
    any::<[u8; 16]>().prop_map(NodeId)
}

/// A port: any, or one of the two ends.
fn arb_port() -> impl Strategy<Value = u16> {
    prop_oneof![Just(0u16), Just(u16::MAX), any::<u16>()]
}

fn arb_addr() -> impl Strategy<Value = SocketAddr> {
    prop_oneof![
        (any::<[u8; 4]>(), arb_port()).prop_map(|(ip, p)| SocketAddr::from((ip, p))),
        (any::<[u16; 8]>(), arb_port()).prop_map(|(ip, p)| SocketAddr::from((ip, p))),
    ]
}

/// A member's (gossip, RPC) address pair, weighted towards the pairs `MemberInfo` packs
/// differently: IPv4 with the RPC address on the same IP or none (inline), the same IP in
/// IPv4 and IPv4-mapped IPv6 form (two different addresses), IPv6 on one IP, and anything.
pub(crate) fn arb_addr_pair() -> impl Strategy<Value = (SocketAddr, Option<SocketAddr>)> {
    let v4 = |ip: [u8; 4], p: u16| SocketAddr::from((ip, p));
    let mapped =
        |ip: [u8; 4], p: u16| SocketAddr::from((core::net::Ipv4Addr::from(ip).to_ipv6_mapped(), p));
    let edge_v4 = prop_oneof![
        Just([0u8; 4]),
        Just([255u8; 4]),
        Just([127, 0, 0, 1]),
        any::<[u8; 4]>()
    ];
    prop_oneof![
        (
            edge_v4.clone(),
            arb_port(),
            proptest::option::of(arb_port())
        )
            .prop_map(move |(ip, g, r)| (v4(ip, g), r.map(|r| v4(ip, r)))),
        (edge_v4, arb_port(), arb_port(), any::<bool>()).prop_map(move |(ip, g, r, swap)| {
            if swap {
                (mapped(ip, g), Some(v4(ip, r)))
            } else {
                (v4(ip, g), Some(mapped(ip, r)))
            }
        }),
        (
            any::<[u16; 8]>(),
            arb_port(),
            proptest::option::of(arb_port())
        )
            .prop_map(|(ip, g, r)| (
                SocketAddr::from((ip, g)),
                r.map(|r| SocketAddr::from((ip, r)))
            )),
        (arb_addr(), proptest::option::of(arb_addr())),
    ]
}

fn arb_tags() -> impl Strategy<Value = Tags> {
    proptest::collection::vec(("[a-z]{1,8}", "[a-z0-9=]{0,12}"), 0..6).prop_map(|pairs| {
        let mut t = Tags::new();
        for (k, v) in pairs {
            let _ = t.insert(&k, &v);
        }
        t
    })
}

pub(crate) fn arb_info() -> impl Strategy<Value = MemberInfo> {
    (
        arb_id(),
        "[a-z0-9-]{0,20}",
        arb_addr_pair(),
        any::<u64>(),
        arb_tags(),
    )
        .prop_map(|(id, name, (gossip_addr, rpc_addr), incarnation, tags)| {
            MemberInfo::new(
                id,
                BoundedString::new(name).unwrap(),
                gossip_addr,
                rpc_addr.map(Into::into),
                incarnation,
                tags,
            )
        })
}

fn arb_state() -> impl Strategy<Value = MemberState> {
    prop_oneof![
        Just(MemberState::Alive),
        Just(MemberState::Suspect),
        Just(MemberState::Failed),
        Just(MemberState::Left),
    ]
}

pub(crate) fn arb_update() -> impl Strategy<Value = Update> {
    prop_oneof![
        arb_info().prop_map(Update::Alive),
        (arb_id(), any::<u64>(), arb_id()).prop_map(|(id, incarnation, by)| Update::Suspect {
            id,
            incarnation,
            by
        }),
        (arb_id(), any::<u64>(), arb_id()).prop_map(|(id, incarnation, by)| Update::Failed {
            id,
            incarnation,
            by
        }),
        (arb_id(), any::<u64>()).prop_map(|(id, incarnation)| Update::Left { id, incarnation }),
    ]
}

pub(crate) fn arb_entry() -> impl Strategy<Value = SyncEntry> {
    (arb_info(), arb_state(), any::<u32>()).prop_map(|(info, state, down_secs)| SyncEntry {
        info,
        state,
        down_secs,
    })
}

fn arb_entries() -> impl Strategy<Value = BoundedVec<SyncEntry, MAX_SYNC_ENTRIES>> {
    proptest::collection::vec(arb_entry(), 0..4).prop_map(|v| BoundedVec::try_from_vec(v).unwrap())
}

fn arb_digest() -> impl Strategy<Value = BoundedVec<u8, DIGEST_BYTES>> {
    prop_oneof![
        Just(BoundedVec::new()),
        proptest::collection::vec(any::<u8>(), DIGEST_BYTES)
            .prop_map(|v| BoundedVec::try_from_vec(v).unwrap()),
    ]
}

pub(crate) fn arb_message() -> impl Strategy<Value = Message> {
    prop_oneof![
        Just(Message::Gossip),
        Just(Message::Join),
        any::<u32>().prop_map(|seq| Message::Ping { seq }),
        any::<u32>().prop_map(|seq| Message::Ack { seq }),
        (any::<u32>(), arb_id()).prop_map(|(seq, target)| Message::PingReq { seq, target }),
        (any::<u32>(), arb_id(), any::<bool>())
            .prop_map(|(seq, target, ok)| Message::IndirectAck { seq, target, ok }),
        (any::<u32>(), arb_digest()).prop_map(|(seq, digest)| Message::Sync { seq, digest }),
        any::<u64>().prop_map(|token| Message::Challenge { token }),
        any::<u64>().prop_map(|token| Message::Echo { token }),
        any::<u64>().prop_map(|token| Message::JoinEcho { token }),
        (any::<u32>(), arb_digest(), any::<u64>())
            .prop_map(|(seq, digest, token)| Message::SyncEcho { seq, digest, token }),
        arb_bulk_message(),
    ]
}

/// The messages the direct codec reads and writes: a sync reply or push with entries, a
/// summary (of a split and part within their bounds) or a want.
fn arb_bulk_message() -> impl Strategy<Value = Message> {
    prop_oneof![
        (
            any::<u32>(),
            arb_digest(),
            arb_entries(),
            any::<bool>(),
            any::<u64>()
        )
            .prop_map(|(seq, digest, entries, last, summarized)| {
                Message::SyncReply {
                    seq,
                    digest,
                    entries,
                    last,
                    summarized,
                }
            }),
        arb_entries().prop_map(|entries| Message::SyncPush { entries }),
        (
            any::<u32>(),
            0..DIGEST_BUCKETS as u8,
            0..=MAX_SUMMARY_SPLIT,
            any::<u16>(),
            arb_hashes()
        )
            .prop_map(|(seq, bucket, split, part, hashes)| Message::SyncSummary {
                seq,
                bucket,
                split,
                part: part % (1u16 << split),
                hashes,
            }),
        (0..DIGEST_BUCKETS as u8, arb_hashes())
            .prop_map(|(bucket, hashes)| Message::SyncWant { bucket, hashes }),
    ]
}

fn arb_hashes() -> impl Strategy<Value = BoundedVec<u8, SUMMARY_BYTES>> {
    proptest::collection::vec(any::<u64>(), 0..=MAX_SUMMARY_HASHES).prop_map(|h| write_hashes(&h))
}

/// Summary fields postcard cannot check are refused as malformed, before any state sees
/// them: a bucket past the digest, a split past the finest, a part outside its split,
/// hashes that are not whole 8-byte values.
#[test]
fn malformed_summaries_are_refused() {
    let header = Header {
        cluster: 7,
        from: NodeId([1; 16]),
        to: None,
    };
    let hashes = |n: usize| BoundedVec::try_from_vec(vec![0u8; n]).unwrap();
    let summary = |bucket, split, part, n| Message::SyncSummary {
        seq: 1,
        bucket,
        split,
        part,
        hashes: hashes(n),
    };
    let good = [
        summary(63, 0, 0, 16),
        summary(0, MAX_SUMMARY_SPLIT, 255, 0),
        Message::SyncWant {
            bucket: 63,
            hashes: hashes(8),
        },
    ];
    let bad = [
        summary(64, 0, 0, 8),
        summary(0, MAX_SUMMARY_SPLIT + 1, 0, 8),
        summary(0, 1, 2, 8),
        summary(0, 0, 1, 8),
        summary(0, 0, 0, 7),
        Message::SyncWant {
            bucket: 64,
            hashes: hashes(8),
        },
        Message::SyncWant {
            bucket: 0,
            hashes: hashes(9),
        },
    ];
    for message in good {
        let p = Packet {
            header,
            message,
            updates: vec![],
        };
        let bytes = encode(&p).unwrap();
        assert_eq!(decode(&bytes, MAX_DATAGRAM).unwrap(), p);
    }
    for message in bad {
        let p = Packet {
            header,
            message,
            updates: vec![],
        };
        // The encoder refuses to write it (what is encoded always decodes); as a peer could
        // still send it, it is written here with postcard, as the encoder would.
        assert_eq!(encode(&p), None, "{:?}", p.message);
        let mut bytes = vec![WIRE_VERSION];
        bytes.extend(encode_value(&(p.header, &p.message)));
        bytes.push(0);
        assert_eq!(
            decode(&bytes, MAX_DATAGRAM),
            Err(PacketError::Malformed),
            "{:?}",
            p.message
        );
    }
}

pub(crate) fn arb_packet() -> impl Strategy<Value = Packet> {
    (
        any::<u32>(),
        arb_id(),
        proptest::option::of(arb_id()),
        arb_message(),
        proptest::collection::vec(arb_update(), 0..8),
    )
        .prop_map(|(cluster, from, to, message, updates)| Packet {
            header: Header {
                cluster,
                from,
                to: to.map(Into::into),
            },
            message,
            updates,
        })
}

/// The decoder as it was before the header got its own codec: postcard over the whole body.
/// The hand-written header path must accept, refuse and report exactly as this does.
fn reference_decode(bytes: &[u8], cap: usize) -> Result<Packet, PacketError> {
    if bytes.len() > cap.min(MAX_DATAGRAM) {
        return Err(PacketError::TooLarge { len: bytes.len() });
    }
    let (&version, rest) = bytes.split_first().ok_or(PacketError::Truncated)?;
    if version != WIRE_VERSION {
        return Err(PacketError::Version(version));
    }
    type Body = (Header, Message, BoundedVec<Update, MAX_UPDATES>);
    let (body, trailing): (Body, &[u8]) = postcard::take_from_bytes(rest).map_err(|e| match e {
        postcard::Error::DeserializeUnexpectedEnd => PacketError::Truncated,
        _ => PacketError::Malformed,
    })?;
    if !trailing.is_empty() {
        return Err(PacketError::TrailingBytes(trailing.len()));
    }
    let (header, message, updates) = body;
    Ok(Packet {
        header,
        message,
        updates: updates.into_inner(),
    })
}

/// [`reference_decode`] with the one check postcard cannot make, where the decoder makes
/// it: a message postcard reads but that is not well formed (a summary field out of its
/// bounds) is refused as malformed, whatever follows it.
fn reference_decode_checked(bytes: &[u8], cap: usize) -> Result<Packet, PacketError> {
    if bytes.len() <= cap.min(MAX_DATAGRAM) && bytes.first() == Some(&WIRE_VERSION) {
        if let Ok(((_, m), _)) = postcard::take_from_bytes::<(Header, Message)>(&bytes[1..]) {
            if !m.well_formed() {
                return Err(PacketError::Malformed);
            }
        }
    }
    reference_decode(bytes, cap)
}

fn arb_header() -> impl Strategy<Value = Header> {
    (
        any::<u32>(),
        arb_id(),
        proptest::option::of(any::<[u8; 4]>()),
    )
        .prop_map(|(cluster, from, to)| Header {
            cluster,
            from,
            to: to.map(Recipient),
        })
}

proptest! {
    #[test]
    fn header_codec_writes_exactly_postcards_bytes(h in arb_header(), m in arb_message()) {
        let mut hand = Vec::new();
        h.encode_into(&mut hand);
        prop_assert_eq!(&hand, &postcard::to_allocvec(&h).unwrap());
        prop_assert_eq!(hand.len(), encoded_len(&h));
        // And a whole datagram is what postcard makes of (header, message, no updates).
        let built = PacketBuilder::new(&h, &m, MAX_DATAGRAM).unwrap().finish();
        let mut reference = vec![WIRE_VERSION];
        reference.extend_from_slice(&postcard::to_allocvec(&(&h, &m)).unwrap());
        reference.push(0);
        prop_assert_eq!(built, reference);
    }

    #[test]
    fn decoder_agrees_with_postcard_on_damaged_packets(
        p in arb_packet(),
        tag in any::<u8>(),
        damage_tag in any::<bool>(),
        keep in 0usize..80,
    ) {
        let mut bytes = encode(&p).expect("fits");
        if damage_tag {
            // The recipient option tag (after the version, cluster hash and sender id).
            bytes[1 + 4 + 16] = tag;
        }
        for len in [keep.min(bytes.len()), bytes.len()] {
            prop_assert_eq!(
                decode(&bytes[..len], MAX_DATAGRAM),
                reference_decode(&bytes[..len], MAX_DATAGRAM)
            );
        }
    }

    #[test]
    fn decoder_agrees_with_postcard_on_arbitrary_bytes(
        bytes in proptest::collection::vec(any::<u8>(), 0..64),
    ) {
        let mut with_version = vec![WIRE_VERSION];
        with_version.extend_from_slice(&bytes);
        prop_assert_eq!(
            decode(&with_version, 1400),
            reference_decode_checked(&with_version, 1400)
        );
    }

    #[test]
    fn ping_and_ack_fast_paths_agree_with_postcard(
        h in arb_header(),
        ack in any::<bool>(),
        seq in any::<u32>(),
        body in proptest::collection::vec(any::<u8>(), 0..8),
    ) {
        // Encoding: the same bytes as postcard for every seq (1 to 5 varint bytes).
        let m = if ack { Message::Ack { seq } } else { Message::Ping { seq } };
        let built = PacketBuilder::new(&h, &m, MAX_DATAGRAM).unwrap().finish();
        let mut reference = vec![WIRE_VERSION];
        reference.extend_from_slice(&postcard::to_allocvec(&(&h, &m)).unwrap());
        reference.push(0);
        prop_assert_eq!(&built, &reference);
        // Decoding: a ping or ack index followed by any bytes (overlong, unterminated or
        // out-of-range varints, trailing bytes) gets the old decoder's answer.
        let mut bytes = built[..1 + encoded_len(&h)].to_vec();
        bytes.push(if ack { 2 } else { 1 });
        bytes.extend_from_slice(&body);
        prop_assert_eq!(decode(&bytes, MAX_DATAGRAM), reference_decode(&bytes, MAX_DATAGRAM));
    }

    #[test]
    fn every_packet_round_trips(p in arb_packet()) {
        let bytes = encode(&p).expect("fits");
        prop_assert_eq!(decode(&bytes, MAX_DATAGRAM).unwrap(), p);
    }

    #[test]
    fn trailing_bytes_are_rejected(p in arb_packet(), extra in proptest::collection::vec(any::<u8>(), 1..8)) {
        let mut bytes = encode(&p).expect("fits");
        bytes.extend_from_slice(&extra);
        prop_assert!(decode(&bytes, MAX_DATAGRAM).is_err());
    }

    #[test]
    fn truncation_is_rejected(p in arb_packet(), cut in 1usize..64) {
        let bytes = encode(&p).expect("fits");
        let keep = bytes.len().saturating_sub(cut);
        prop_assert!(decode(&bytes[..keep], MAX_DATAGRAM).is_err());
    }

    #[test]
    fn arbitrary_bytes_never_panic(bytes in proptest::collection::vec(any::<u8>(), 0..2048)) {
        let _ = decode(&bytes, 1400);
        let mut with_version = vec![WIRE_VERSION];
        with_version.extend_from_slice(&bytes);
        let _ = decode(&with_version, 1400);
    }

    #[test]
    fn builder_never_exceeds_budget(
        header_from in arb_id(),
        message in arb_message(),
        updates in proptest::collection::vec(arb_update(), 0..64),
        budget in 200usize..1500,
    ) {
        let header = Header { cluster: 7, from: header_from, to: None };
        if let Some(mut b) = PacketBuilder::new(&header, &message, budget) {
            let mut pushed = Vec::new();
            for u in &updates {
                if b.try_push(u) {
                    pushed.push(u.clone());
                }
            }
            let bytes = b.finish();
            prop_assert!(bytes.len() <= budget);
            let p = decode(&bytes, budget).unwrap();
            prop_assert_eq!(p.updates, pushed);
            prop_assert_eq!(p.message, message);
        }
    }
}

#[test]
fn oversize_and_version_are_rejected_with_their_reason() {
    let p = Packet {
        header: Header {
            cluster: 1,
            from: NodeId([1; 16]),
            to: None,
        },
        message: Message::Gossip,
        updates: vec![],
    };
    let bytes = encode(&p).unwrap();
    assert_eq!(decode(&bytes[..0], 1400), Err(PacketError::Truncated));
    let mut next = bytes.clone();
    next[0] = WIRE_VERSION + 1;
    assert_eq!(
        decode(&next, 1400),
        Err(PacketError::Version(WIRE_VERSION + 1))
    );
    // Earlier builds (version 1, before sync summaries) are refused by version, not misread.
    let mut v1 = bytes.clone();
    v1[0] = 1;
    assert_eq!(decode(&v1, 1400), Err(PacketError::Version(1)));
    let big = vec![WIRE_VERSION; 1401];
    assert_eq!(decode(&big, 1400), Err(PacketError::TooLarge { len: 1401 }));
    let mut trailing = bytes.clone();
    trailing.push(0);
    assert_eq!(decode(&trailing, 1400), Err(PacketError::TrailingBytes(1)));
}

#[test]
fn huge_declared_update_count_is_rejected_without_allocating() {
    let p = Packet {
        header: Header {
            cluster: 1,
            from: NodeId([1; 16]),
            to: None,
        },
        message: Message::Gossip,
        updates: vec![],
    };
    let mut bytes = encode(&p).unwrap();
    // Replace the trailing zero count by a varint of u32::MAX.
    bytes.pop();
    bytes.extend_from_slice(&[0xff, 0xff, 0xff, 0xff, 0x0f]);
    assert!(matches!(
        decode(&bytes, 1400),
        Err(PacketError::Malformed | PacketError::Truncated)
    ));
}

proptest! {
    // More cases than the default: a damaged varint byte must land on the value boundaries.
    #![proptest_config(ProptestConfig::with_cases(2048))]

    #[test]
    fn sync_fast_path_agrees_with_postcard(
        h in arb_header(),
        seq in any::<u32>(),
        digest in proptest::collection::vec(any::<u8>(), 0..=DIGEST_BYTES),
        damage in proptest::option::of((0usize..8, prop_oneof![any::<u8>(), 0x0cu8..0x14, 0x7cu8..0x84])),
        keep in proptest::option::of(any::<prop::sample::Index>()),
        extra in proptest::collection::vec(any::<u8>(), 0..4),
    ) {
        // Encoding: the same bytes as postcard for every seq and digest length.
        let m = Message::Sync { seq, digest: BoundedVec::try_from_vec(digest).unwrap() };
        let built = PacketBuilder::new(&h, &m, MAX_DATAGRAM).unwrap().finish();
        let mut reference = vec![WIRE_VERSION];
        reference.extend_from_slice(&postcard::to_allocvec(&(&h, &m)).unwrap());
        reference.push(0);
        prop_assert_eq!(&built, &reference);
        prop_assert_eq!(decode(&built, MAX_DATAGRAM).unwrap().message, m);
        // Decoding: the sync with one byte of its body changed (seq varints out of range,
        // lengths past the digest's bound or the data), cut short, or followed by more
        // bytes gets the old decoder's answer.
        let head = 1 + encoded_len(&h);
        let mut bytes = built.clone();
        if let Some((at, byte)) = damage {
            // Within the varints (the seq and the digest length): where the fast path decides.
            let i = (head + 1 + at).min(bytes.len() - 1);
            bytes[i] = byte;
        }
        if let Some(keep) = keep {
            bytes.truncate(head + keep.index(bytes.len() - head + 1));
        }
        bytes.extend_from_slice(&extra);
        prop_assert_eq!(decode(&bytes, MAX_DATAGRAM), reference_decode(&bytes, MAX_DATAGRAM));
    }
}

/// A datagram carrying the kinds the direct codec reads and writes (half the time; any
/// message otherwise), and alive, suspect, failed and left updates.
fn arb_bulk_packet() -> impl Strategy<Value = Packet> {
    let message = prop_oneof![arb_bulk_message(), arb_message(),];
    (
        arb_header(),
        message,
        proptest::collection::vec(arb_update(), 0..6),
    )
        .prop_map(|(header, message, updates)| Packet {
            header,
            message,
            updates,
        })
}

proptest! {
    #[test]
    fn direct_codec_writes_exactly_postcards_bytes(
        u in arb_update(),
        entries in arb_entries(),
        p in arb_bulk_packet(),
    ) {
        prop_assert_eq!(direct::encode_update(&u), encode_value(&u));
        for e in entries.iter() {
            let mut hand = Vec::new();
            direct::put_sync_entry(&mut hand, e);
            prop_assert_eq!(&hand, &encode_value(e));
            prop_assert_eq!(direct::sync_entry_len(e), hand.len());
        }
        // A whole datagram: postcard's (header, message, updates) after the version.
        if let Some(built) = encode(&p) {
            let mut reference = vec![WIRE_VERSION];
            let updates = BoundedVec::<Update, MAX_UPDATES>::try_from_vec(p.updates.clone()).unwrap();
            reference.extend_from_slice(&postcard::to_allocvec(&(&p.header, &p.message, &updates)).unwrap());
            prop_assert_eq!(&built, &reference);
            prop_assert_eq!(decode(&built, MAX_DATAGRAM), Ok(p));
        }
    }
}

/// A byte a damaged datagram gets: anything, or the values where varints, option and bool
/// tags, variant indexes and lengths change meaning.
fn arb_damage_byte() -> impl Strategy<Value = u8> {
    prop_oneof![
        any::<u8>(),
        prop::sample::select(vec![0u8, 1, 2, 3, 4, 5, 0x0f, 0x10, 0x7f, 0x80, 0x81, 0xff]),
    ]
}

proptest! {
    // Many cases: each damages a few bytes of a body of a few hundred.
    #![proptest_config(ProptestConfig::with_cases(4096))]

    #[test]
    fn direct_decoder_agrees_with_postcard_on_damaged_bulk_datagrams(
        p in arb_bulk_packet(),
        damage in proptest::collection::vec(
            (any::<bool>(), any::<prop::sample::Index>(), arb_damage_byte()),
            0..4,
        ),
        keep in proptest::option::of(any::<prop::sample::Index>()),
        extra in proptest::collection::vec(any::<u8>(), 0..3),
    ) {
        let Some(mut bytes) = encode(&p) else {
            return Ok(());
        };
        // Past the version and header: the message and the updates.
        let head = 1 + encoded_len(&p.header);
        let body = bytes.len() - head;
        for (near, at, byte) in &damage {
            // Half the damage lands in the message's first fields (its index, sequence,
            // bucket, split and part, and the first lengths), where the readers decide.
            let span = if *near { body.min(12) } else { body };
            bytes[head + at.index(span)] = *byte;
        }
        if let Some(keep) = keep {
            bytes.truncate(head + keep.index(body + 1));
        }
        bytes.extend_from_slice(&extra);
        prop_assert_eq!(decode(&bytes, MAX_DATAGRAM), reference_decode_checked(&bytes, MAX_DATAGRAM));
    }
}

proptest! {
    // Varints near every width's edges: a continuation bit, a last byte just within or just
    // past its type's bits, and the lengths around each type's most bytes.
    #![proptest_config(ProptestConfig::with_cases(4096))]

    #[test]
    fn direct_varints_are_read_as_postcard_reads_them(
        bytes in proptest::collection::vec(
            prop::sample::select(vec![0u8, 1, 2, 3, 4, 0x0f, 0x10, 0x7f, 0x80, 0x81, 0x83, 0x84, 0x8f, 0x90, 0xff]),
            0..12,
        ),
    ) {
        let mut r = direct::Reader::new(&bytes);
        let ours = (r.u16(), r.rest.len());
        let theirs = postcard::take_from_bytes::<u16>(&bytes).ok().map(|(v, rest)| (v, rest.len()));
        prop_assert_eq!(ours.0.map(|v| (v, ours.1)), theirs);
        let mut r = direct::Reader::new(&bytes);
        let ours = (r.u32(), r.rest.len());
        let theirs = postcard::take_from_bytes::<u32>(&bytes).ok().map(|(v, rest)| (v, rest.len()));
        prop_assert_eq!(ours.0.map(|v| (v, ours.1)), theirs);
        let mut r = direct::Reader::new(&bytes);
        let ours = (r.u64(), r.rest.len());
        let theirs = postcard::take_from_bytes::<u64>(&bytes).ok().map(|(v, rest)| (v, rest.len()));
        prop_assert_eq!(ours.0.map(|v| (v, ours.1)), theirs);
    }
}

/// The update count sits between the message and the updates, and takes one byte below 128
/// updates and two from 128: the builder inserts it when it finishes, so every count around
/// that edge must come out as postcard writes it (and decode back), for a small message and
/// for a bulk one.
#[test]
fn the_update_count_is_written_where_postcard_writes_it_for_any_count() {
    let header = Header {
        cluster: 7,
        from: NodeId([1; 16]),
        to: None,
    };
    let bulk = Message::SyncWant {
        bucket: 3,
        hashes: BoundedVec::try_from_vec(vec![9u8; 64]).unwrap(),
    };
    for message in [Message::Gossip, bulk] {
        for n in [0usize, 1, 2, 5, 127, 128, 129, 200, MAX_UPDATES] {
            let updates: Vec<Update> = (0..n)
                .map(|i| Update::Left {
                    id: NodeId([i as u8; 16]),
                    incarnation: i as u64,
                })
                .collect();
            let p = Packet {
                header,
                message: message.clone(),
                updates,
            };
            let built = encode(&p).expect("fits a datagram");
            let mut reference = vec![WIRE_VERSION];
            let updates =
                BoundedVec::<Update, MAX_UPDATES>::try_from_vec(p.updates.clone()).unwrap();
            reference.extend_from_slice(
                &postcard::to_allocvec(&(&p.header, &p.message, &updates)).unwrap(),
            );
            assert_eq!(built, reference, "{n} updates");
            assert_eq!(decode(&built, MAX_DATAGRAM), Ok(p), "{n} updates");
        }
    }
}

proptest! {
    /// Reading packets one after another into the same reused vectors (as a node does) gives
    /// exactly what a fresh decode gives, whatever the packet before left in them: more
    /// updates or entries, fewer, none, or a refusal part way through.
    #[test]
    fn decoding_into_reused_vectors_agrees_with_a_fresh_decode(
        packets in proptest::collection::vec((arb_bulk_packet(), any::<Option<prop::sample::Index>>()), 1..6),
    ) {
        let mut spare = Spare::default();
        for (p, cut) in packets {
            let Some(mut bytes) = encode(&p) else { continue };
            if let Some(cut) = cut {
                bytes.truncate(cut.index(bytes.len()));
            }
            let fresh = decode(&bytes, MAX_DATAGRAM);
            let reused = decode_reusing(&bytes, MAX_DATAGRAM, &mut spare);
            prop_assert_eq!(&reused, &fresh);
            // Hand the vectors back still full (the node empties them; the decoder must not
            // count on it).
            if let Ok(packet) = reused {
                spare.updates = packet.updates;
                if let Message::SyncReply { entries, .. } | Message::SyncPush { entries } = packet.message {
                    spare.entries = entries.into_inner();
                }
            }
        }
    }
}

/// `MemberInfo` as it was declared before its addresses were packed: its encoding is the
/// wire format the packed one must keep, byte for byte.
#[derive(Serialize, Deserialize, PartialEq, Debug)]
struct OldMemberInfo {
    id: NodeId,
    name: BoundedString<{ crate::membership::MAX_NAME }>,
    gossip_addr: SocketAddr,
    rpc_addr: Option<SocketAddr>,
    incarnation: u64,
    tags: Tags,
}

proptest! {
    /// Any address pair, packed inside a `MemberInfo`, comes back as it went in, and the
    /// info encodes (through serde and through the direct codec) to exactly the bytes of the
    /// struct with the two plain address fields, and decodes from them (both ways) to itself.
    #[test]
    fn member_info_keeps_its_addresses_and_its_old_encoding(
        id in arb_id(),
        name in "[a-z0-9-]{0,20}",
        (gossip, rpc) in arb_addr_pair(),
        incarnation in any::<u64>(),
        tags in arb_tags(),
        state in arb_state(),
        down_secs in any::<u32>(),
    ) {
        let name = BoundedString::new(name).unwrap();
        let info = MemberInfo::new(
            id,
            name.clone(),
            gossip,
            rpc.map(Into::into),
            incarnation,
            tags.clone(),
        );
        prop_assert_eq!(info.gossip_addr().get(), gossip);
        prop_assert_eq!(info.rpc_addr().map(|a| a.get()), rpc);
        let old = OldMemberInfo { id, name, gossip_addr: gossip, rpc_addr: rpc, incarnation, tags };
        let old_bytes = postcard::to_allocvec(&old).unwrap();
        prop_assert_eq!(&postcard::to_allocvec(&info).unwrap(), &old_bytes);
        prop_assert_eq!(&postcard::from_bytes::<MemberInfo>(&old_bytes).unwrap(), &info);
        prop_assert_eq!(&postcard::from_bytes::<OldMemberInfo>(&old_bytes).unwrap(), &old);
        let mut r = direct::Reader::new(&old_bytes);
        prop_assert_eq!(r.member_info(), Some(info.clone()));
        prop_assert!(r.rest.is_empty());

        // In a sync entry, through the direct codec both ways.
        let entry = SyncEntry { info: info.clone(), state, down_secs };
        let old_entry = postcard::to_allocvec(&(&old, state, down_secs)).unwrap();
        let mut hand = Vec::new();
        direct::put_sync_entry(&mut hand, &entry);
        prop_assert_eq!(&hand, &old_entry);
        prop_assert_eq!(direct::sync_entry_len(&entry), old_entry.len());
        let mut r = direct::Reader::new(&old_entry);
        prop_assert_eq!(r.sync_entry(), Some(entry));
        prop_assert!(r.rest.is_empty());

        // The setters pack what they are given just as `new` does.
        let mut moved = MemberInfo::new(id, BoundedString::new("x").unwrap(), "10.9.8.7:1".parse::<SocketAddr>().unwrap(), None, 0, Tags::new());
        moved.set_gossip_addr(gossip);
        moved.set_rpc_addr(rpc.map(Into::into));
        prop_assert_eq!(moved.gossip_addr().get(), gossip);
        prop_assert_eq!(moved.rpc_addr().map(|a| a.get()), rpc);
        let mut expect = info.clone();
        expect.name = moved.name.clone();
        expect.incarnation = 0;
        expect.tags = Tags::new();
        prop_assert_eq!(moved, expect);
    }
}

/// `Debug` still shows the two addresses as fields of their own, as the derive did.
#[test]
fn member_info_debug_shows_the_address_fields() {
    let g: SocketAddr = "10.0.0.1:7946".parse().unwrap();
    let r: SocketAddr = "10.0.0.1:7947".parse().unwrap();
    let info = MemberInfo::new(
        NodeId([1; 16]),
        BoundedString::new("a").unwrap(),
        g,
        Some(r.into()),
        3,
        Tags::new(),
    );
    let old = OldMemberInfo {
        id: NodeId([1; 16]),
        name: BoundedString::new("a").unwrap(),
        gossip_addr: g,
        rpc_addr: Some(r),
        incarnation: 3,
        tags: Tags::new(),
    };
    assert_eq!(
        format!("{info:?}"),
        format!("{old:?}").replacen("OldMemberInfo", "MemberInfo", 1)
    );
}
