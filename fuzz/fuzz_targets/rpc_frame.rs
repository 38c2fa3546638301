//! Arbitrary bytes, split at arbitrary points, into the RPC frame decoder: never a panic,
//! never a frame over the limit, and every decoded frame re-encodes to the very bytes it
//! came from and decodes again to an equal frame. The shared-buffer decoder
//! (`decode_bytes`, what the adapters use on a whole QUIC chunk) must agree with the
//! incremental one on the same bytes: same frames, same error, same rest.
#![no_main]

use bytes::{Bytes, BytesMut};
use libfuzzer_sys::fuzz_target;
use shoal_core::rpc::{encode_request, encode_response, Decoder, Frame, Limits, LEN_PREFIX};

fuzz_target!(|data: &[u8]| {
    // First bytes: the limits (small, so over-limit lengths are easy to reach) and the
    // split points; the rest is the stream.
    if data.len() < 3 {
        return;
    }
    let limits = Limits {
        max_request: 64 + u32::from(data[0]) * 16,
        max_response: 64 + u32::from(data[1]) * 16,
    };
    let step = usize::from(data[2]).max(1);
    let stream = &data[3..];
    let dec = Decoder::new(limits);
    let mut whole_mut = BytesMut::from(stream);
    let mut whole = Bytes::copy_from_slice(stream);
    loop {
        let (a, b) = (dec.decode(&mut whole_mut), dec.decode_bytes(&mut whole));
        assert_eq!(a, b, "the two decoders disagree");
        assert_eq!(
            &whole_mut[..],
            &whole[..],
            "the two decoders left different rests"
        );
        if !matches!(a, Ok(Some(_))) {
            break;
        }
    }
    let mut buf = BytesMut::new();
    let mut consumed = 0usize;
    let mut fed = 0usize;
    while fed < stream.len() {
        let end = (fed + step).min(stream.len());
        buf.extend_from_slice(&stream[fed..end]);
        fed = end;
        loop {
            let before = buf.clone();
            match dec.decode(&mut buf) {
                Ok(Some(frame)) => {
                    let used = before.len() - buf.len();
                    let raw = &stream[consumed..consumed + used];
                    consumed += used;
                    let declared = u32::from_be_bytes([raw[0], raw[1], raw[2], raw[3]]);
                    let limit = match frame {
                        Frame::Request(_) => limits.max_request,
                        Frame::Response(_) => limits.max_response,
                    };
                    assert!(declared <= limit, "frame over its limit accepted");
                    assert_eq!(raw.len(), LEN_PREFIX + declared as usize);
                    let mut out = BytesMut::new();
                    match &frame {
                        Frame::Request(r) => encode_request(r, &limits, &mut out),
                        Frame::Response(r) => encode_response(r, &limits, &mut out),
                    }
                    .expect("a decoded frame re-encodes");
                    assert_eq!(&out[..], raw, "re-encoding changed the bytes");
                    let again = dec.decode(&mut out).expect("re-decodes").expect("complete");
                    assert_eq!(again, frame);
                    assert!(out.is_empty());
                }
                Ok(None) => {
                    assert_eq!(buf, before, "an incomplete frame was consumed");
                    // A declared length over the limit must not wait for more bytes.
                    if buf.len() > LEN_PREFIX {
                        let len = u32::from_be_bytes([buf[0], buf[1], buf[2], buf[3]]);
                        let limit = match buf[LEN_PREFIX] {
                            0x01 => limits.max_request,
                            _ => limits.max_response,
                        };
                        assert!(len <= limit, "over-limit length not refused at once");
                    }
                    break;
                }
                Err(_) => {
                    assert_eq!(buf, before, "an invalid frame changed the buffer");
                    return;
                }
            }
        }
    }
    let _ = dec.finish(&buf);
});
