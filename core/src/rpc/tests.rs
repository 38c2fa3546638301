use super::*;
use proptest::prelude::*;

fn limits() -> Limits {
    Limits {
        max_request: 1024,
        max_response: 2048,
    }
}

fn req(method: &str, deadline: Option<u32>, payload: &'static [u8]) -> Request {
    Request::new(method, deadline, Bytes::from_static(payload)).unwrap()
}

fn roundtrip(frame: &Frame) -> Frame {
    let mut buf = BytesMut::new();
    match frame {
        Frame::Request(r) => encode_request(r, &limits(), &mut buf).unwrap(),
        Frame::Response(r) => encode_response(r, &limits(), &mut buf).unwrap(),
    }
    let d = Decoder::new(limits());
    let out = d.decode(&mut buf).unwrap().unwrap();
    d.finish(&buf).unwrap();
    out
}

#[test]
fn request_and_response_round_trip() {
    let f = Frame::Request(req("echo", Some(250), b"hello"));
    assert_eq!(roundtrip(&f), f);
    let f = Frame::Request(req("m", None, b""));
    assert_eq!(roundtrip(&f), f);
    for status in [
        Status::Ok,
        Status::UnknownMethod,
        Status::PayloadTooLarge,
        Status::Overloaded,
        Status::DeadlineExceeded,
        Status::HandlerFailed("boom: ünïcode".into()),
    ] {
        let f = Frame::Response(Response {
            status,
            payload: Bytes::from_static(b"xyz"),
        });
        assert_eq!(roundtrip(&f), f);
    }
}

#[test]
fn a_frame_decoded_from_a_shared_buffer_is_a_slice_of_it() {
    let mut wire = BytesMut::new();
    encode_request(&req("echo", None, b"payload"), &limits(), &mut wire).unwrap();
    encode_request(&req("next", None, b"more"), &limits(), &mut wire).unwrap();
    let mut buf = wire.freeze();
    let start = buf.as_ptr() as usize;
    let end = start + buf.len();
    let d = Decoder::new(limits());
    let Some(Frame::Request(r)) = d.decode_bytes(&mut buf).unwrap() else {
        panic!("a request");
    };
    assert_eq!(&r.payload[..], b"payload");
    let at = r.payload.as_ptr() as usize;
    assert!((start..end).contains(&at), "the payload was copied");
    let Some(Frame::Request(r)) = d.decode_bytes(&mut buf).unwrap() else {
        panic!("a second request");
    };
    assert_eq!((r.method(), &r.payload[..]), ("next", &b"more"[..]));
    assert!(buf.is_empty());
    assert_eq!(d.decode_bytes(&mut buf), Ok(None));
}

#[test]
fn partial_input_waits_for_the_rest() {
    let mut whole = BytesMut::new();
    encode_request(&req("echo", Some(5), b"payload"), &limits(), &mut whole).unwrap();
    let d = Decoder::new(limits());
    let mut buf = BytesMut::new();
    for (i, b) in whole.iter().enumerate() {
        assert_eq!(d.decode(&mut buf), Ok(None), "byte {i}");
        assert!(d.finish(&buf).is_err() || buf.is_empty());
        buf.put_u8(*b);
    }
    let Frame::Request(r) = d.decode(&mut buf).unwrap().unwrap() else {
        panic!("expected a request");
    };
    assert_eq!(r.method(), "echo");
    assert_eq!(r.deadline_ms, Some(5));
    assert_eq!(&r.payload[..], b"payload");
    assert!(buf.is_empty());
}

#[test]
fn back_to_back_frames_decode_in_order() {
    let mut buf = BytesMut::new();
    encode_request(&req("a", None, b"1"), &limits(), &mut buf).unwrap();
    encode_request(&req("b", None, b"2"), &limits(), &mut buf).unwrap();
    let d = Decoder::new(limits());
    let methods: Vec<String> = core::iter::from_fn(|| d.decode(&mut buf).unwrap())
        .map(|f| match f {
            Frame::Request(r) => r.method().to_owned(),
            Frame::Response(_) => unreachable!(),
        })
        .collect();
    assert_eq!(methods, ["a", "b"]);
}

#[test]
fn declared_length_over_limit_is_refused_from_the_header_alone() {
    let mut buf = BytesMut::new();
    buf.put_u32(1_000_000);
    buf.put_u8(KIND_REQUEST);
    let before = buf.capacity();
    assert_eq!(
        Decoder::new(limits()).decode(&mut buf),
        Err(FrameError::TooLarge {
            len: 1_000_000,
            limit: 1024
        })
    );
    assert_eq!(buf.capacity(), before, "nothing reserved");
    // Responses have their own limit.
    let mut buf = BytesMut::new();
    buf.put_u32(1500);
    buf.put_u8(KIND_RESPONSE);
    assert_eq!(Decoder::new(limits()).decode(&mut buf), Ok(None));
}

#[test]
fn encoders_refuse_oversize_frames() {
    let big = Bytes::from(vec![0u8; 2048]);
    let r = Request::new("m", None, big.clone()).unwrap();
    let mut buf = BytesMut::new();
    assert!(matches!(
        encode_request(&r, &limits(), &mut buf),
        Err(FrameError::TooLarge { .. })
    ));
    assert!(buf.is_empty(), "nothing written on refusal");
    let resp = Response {
        status: Status::Ok,
        payload: big,
    };
    assert!(matches!(
        encode_response(&resp, &limits(), &mut buf),
        Err(FrameError::TooLarge { .. })
    ));
    let long = Status::HandlerFailed("x".repeat(MAX_MESSAGE + 1));
    assert_eq!(
        encode_response_head(&long, 0, &limits(), &mut buf),
        Err(FrameError::BadMessage("too long"))
    );
}

#[test]
fn bad_methods_are_refused_both_ways() {
    assert_eq!(
        Request::new("", None, Bytes::new()),
        Err(FrameError::BadMethod("empty"))
    );
    assert!(Request::new(&"m".repeat(MAX_METHOD + 1), None, Bytes::new()).is_err());
    let mut buf = BytesMut::new();
    buf.put_u32(5);
    buf.put_slice(&[KIND_REQUEST, 0, 2, 0xff, 0xfe]);
    assert_eq!(
        Decoder::new(limits()).decode(&mut buf),
        Err(FrameError::BadMethod("not UTF-8"))
    );
    assert_eq!(buf.len(), 9, "an invalid frame leaves the buffer as it was");
}

#[test]
fn strict_decoding_rejects_reserved_bits_and_unknown_codes() {
    let d = Decoder::new(limits());
    let cases: [(&[u8], FrameError); 6] = [
        (&[0, 0, 0, 0], FrameError::Empty),
        (&[0, 0, 0, 1, 9], FrameError::UnknownKind(9)),
        (&[0, 0, 0, 2, 1, 0x82], FrameError::BadFlags(0x82)),
        (&[0, 0, 0, 2, 2, 6], FrameError::UnknownStatus(6)),
        (&[0, 0, 0, 3, 1, 1, 0], FrameError::Short("deadline")),
        (&[0, 0, 0, 4, 1, 0, 3, b'a'], FrameError::Short("method")),
    ];
    for (bytes, err) in cases {
        let mut buf = BytesMut::from(bytes);
        assert_eq!(d.decode(&mut buf), Err(err), "{bytes:?}");
    }
}

#[test]
fn end_of_stream_inside_a_frame_is_an_error() {
    let mut buf = BytesMut::from(&[0u8, 0, 0, 9, 1][..]);
    let d = Decoder::new(limits());
    assert_eq!(d.decode(&mut buf), Ok(None));
    assert_eq!(
        d.finish(&buf),
        Err(FrameError::UnexpectedEnd { buffered: 5 })
    );
}

#[test]
fn payload_is_a_slice_of_the_received_buffer() {
    let mut buf = BytesMut::new();
    encode_request(&req("m", None, b"abcdef"), &limits(), &mut buf).unwrap();
    let base = buf.as_ptr() as usize;
    let Some(Frame::Request(r)) = Decoder::new(limits()).decode(&mut buf).unwrap() else {
        panic!("expected a request");
    };
    let p = r.payload.as_ptr() as usize;
    assert!(p > base && p < base + 32, "payload was copied");
}

fn arb_status() -> impl Strategy<Value = Status> {
    prop_oneof![
        Just(Status::Ok),
        Just(Status::UnknownMethod),
        Just(Status::PayloadTooLarge),
        Just(Status::Overloaded),
        Just(Status::DeadlineExceeded),
        ".{0,40}".prop_map(Status::HandlerFailed),
    ]
}

fn arb_frame() -> impl Strategy<Value = Frame> {
    prop_oneof![
        (
            "[a-zA-Z0-9_./é]{1,40}",
            proptest::option::of(any::<u32>()),
            proptest::collection::vec(any::<u8>(), 0..300),
        )
            .prop_map(|(m, d, p)| Frame::Request(Request::new(&m, d, Bytes::from(p)).unwrap())),
        (arb_status(), proptest::collection::vec(any::<u8>(), 0..300)).prop_map(|(status, p)| {
            Frame::Response(Response {
                status,
                payload: Bytes::from(p),
            })
        }),
    ]
}

proptest! {
    #[test]
    fn encoded_head_lengths_are_exact(f in arb_frame()) {
        let mut head = BytesMut::new();
        let expected = match &f {
            Frame::Request(r) => {
                encode_request_head(r.method(), r.deadline_ms, r.payload.len(), &limits(), &mut head).unwrap();
                encoded_request_head_len(r.method(), r.deadline_ms)
            }
            Frame::Response(r) => {
                encode_response_head(&r.status, r.payload.len(), &limits(), &mut head).unwrap();
                encoded_response_head_len(&r.status)
            }
        };
        prop_assert_eq!(head.len(), expected);
    }

    #[test]
    fn frames_round_trip_through_any_split(frames in proptest::collection::vec(arb_frame(), 1..5), cut in 0usize..2000) {
        let mut wire = BytesMut::new();
        for f in &frames {
            match f {
                Frame::Request(r) => encode_request(r, &limits(), &mut wire).unwrap(),
                Frame::Response(r) => encode_response(r, &limits(), &mut wire).unwrap(),
            }
        }
        let cut = cut.min(wire.len());
        let d = Decoder::new(limits());
        let mut buf = BytesMut::from(&wire[..cut]);
        let mut out = Vec::new();
        while let Some(f) = d.decode(&mut buf).unwrap() {
            out.push(f);
        }
        buf.extend_from_slice(&wire[cut..]);
        while let Some(f) = d.decode(&mut buf).unwrap() {
            out.push(f);
        }
        prop_assert_eq!(out, frames);
        prop_assert!(d.finish(&buf).is_ok());
    }

    #[test]
    fn decoding_a_shared_buffer_gives_what_the_incremental_decoder_gives(
        frames in proptest::collection::vec(arb_frame(), 0..4),
        junk in proptest::collection::vec(any::<u8>(), 0..40),
        cut in 0usize..2000,
    ) {
        // Valid frames, then arbitrary bytes, cut anywhere: `decode_bytes` must return the
        // same frames and the same error (or wait) as `decode`, and leave the same rest.
        let mut wire = BytesMut::new();
        for f in &frames {
            match f {
                Frame::Request(r) => encode_request(r, &limits(), &mut wire).unwrap(),
                Frame::Response(r) => encode_response(r, &limits(), &mut wire).unwrap(),
            }
        }
        wire.extend_from_slice(&junk);
        let cut = cut.min(wire.len());
        let d = Decoder::new(limits());
        let mut a = BytesMut::from(&wire[..cut]);
        let mut b = Bytes::copy_from_slice(&wire[..cut]);
        loop {
            let (x, y) = (d.decode(&mut a), d.decode_bytes(&mut b));
            prop_assert_eq!(&x, &y);
            prop_assert_eq!(&a[..], &b[..]);
            if !matches!(x, Ok(Some(_))) {
                break;
            }
        }
    }

    #[test]
    fn bad_frames_never_panic(bytes in proptest::collection::vec(any::<u8>(), 0..600)) {
        let d = Decoder::new(limits());
        let mut buf = BytesMut::from(&bytes[..]);
        let mut progress = 0;
        while let Ok(Some(_)) = d.decode(&mut buf) {
            progress += 1;
            prop_assert!(progress <= bytes.len());
        }
    }

    #[test]
    fn mutated_valid_frames_never_panic(f in arb_frame(), idx in any::<usize>(), val in any::<u8>()) {
        let mut wire = BytesMut::new();
        match &f {
            Frame::Request(r) => encode_request(r, &limits(), &mut wire).unwrap(),
            Frame::Response(r) => encode_response(r, &limits(), &mut wire).unwrap(),
        }
        let i = idx % wire.len();
        wire[i] = val;
        let _ = Decoder::new(limits()).decode(&mut wire);
    }
}
