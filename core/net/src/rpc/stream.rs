//! One call's frame on one QUIC stream: reading it (and the stream's end), writing it.
//!
//! Both ends of a call use these, and they sit on the hot path of every call, so they are
//! written as `poll_fn` loops over quinn's poll-once futures: the futures they return are a
//! few dozen bytes (quinn's `write_all_chunks` future alone is 112) and they live inside
//! every call's future, where size costs copies and cache misses.

use bytes::{Bytes, BytesMut};
use shoal_core::{Decoder, Frame, FrameError};
use std::future::{poll_fn, Future};
use std::pin::pin;
use std::task::{ready, Context, Poll};

/// Payloads up to this size are copied into the frame header's buffer, so the frame goes to
/// quinn as one buffer: cheaper than a second `Bytes` (its reference count, quinn's chunk
/// bookkeeping) for small calls; larger payloads are passed on without a copy.
pub(crate) const INLINE_PAYLOAD: usize = 1024;

/// The bytes of payload to reserve in a header buffer for a payload of `len` bytes.
pub(crate) fn inline_len(len: usize) -> usize {
    if len <= INLINE_PAYLOAD {
        len
    } else {
        0
    }
}

/// A frame as the buffers to write: `head` with a small payload appended (then the second
/// buffer is empty), or `head` and the payload (shared, not copied).
pub(crate) fn frame_buffers(mut head: BytesMut, payload: &Bytes) -> [Bytes; 2] {
    if payload.len() <= INLINE_PAYLOAD {
        head.extend_from_slice(payload);
        [head.freeze(), Bytes::new()]
    } else {
        [head.freeze(), payload.clone()]
    }
}

/// Writes a frame's buffers (see [`frame_buffers`]); the caller finishes the stream.
pub(crate) fn write_frame(
    send: &mut quinn::SendStream,
    bufs: [Bytes; 2],
) -> impl Future<Output = Result<(), quinn::WriteError>> + '_ {
    let mut bufs = bufs;
    let n = if bufs[1].is_empty() { 1 } else { 2 };
    let mut done = 0;
    poll_fn(move |cx| {
        while done < n {
            let mut write = pin!(send.write_chunks(&mut bufs[done..n]));
            done += ready!(write.as_mut().poll(cx))?.chunks;
        }
        Poll::Ready(Ok(()))
    })
}

/// Why no frame was read.
#[derive(Debug)]
pub(crate) enum ReadFailure {
    /// The bytes are not a frame within the limits.
    Frame(FrameError),
    /// The stream ended before a whole frame.
    Ended,
    /// The stream or its connection failed.
    Read(quinn::ReadError),
}

/// Reads one frame, then the stream's end if it has already arrived (see [`poll_fin`]).
pub(crate) fn read_frame<'a>(
    decoder: &'a Decoder,
    recv: &'a mut quinn::RecvStream,
) -> impl Future<Output = Result<Frame, ReadFailure>> + 'a {
    let mut buf = BytesMut::new();
    poll_fn(move |cx| loop {
        match decoder.decode(&mut buf) {
            Ok(Some(frame)) => {
                poll_fin(recv, cx);
                return Poll::Ready(Ok(frame));
            }
            Ok(None) => {}
            Err(e) => return Poll::Ready(Err(ReadFailure::Frame(e))),
        }
        let read = {
            let mut read = pin!(recv.read_chunk(usize::MAX, true));
            ready!(read.as_mut().poll(cx))
        };
        match read {
            Ok(Some(chunk)) if buf.is_empty() => {
                // Usually the whole frame: decode it in place, as slices of the chunk (no
                // allocation, no copy); only a frame split over chunks is gathered in `buf`.
                let mut bytes = chunk.bytes;
                match decoder.decode_bytes(&mut bytes) {
                    Ok(Some(frame)) => {
                        poll_fin(recv, cx);
                        return Poll::Ready(Ok(frame));
                    }
                    Ok(None) => buf.extend_from_slice(&bytes),
                    Err(e) => return Poll::Ready(Err(ReadFailure::Frame(e))),
                }
            }
            Ok(Some(chunk)) => buf.extend_from_slice(&chunk.bytes),
            Ok(None) => return Poll::Ready(Err(ReadFailure::Ended)),
            Err(e) => return Poll::Ready(Err(ReadFailure::Read(e))),
        }
    })
}

/// Consumes the end of `recv` if it has already arrived, without waiting: `true` when the
/// stream is now cleanly finished.
///
/// A call's frame is the whole stream, and the peer finishes the stream right after it, so
/// the FIN usually travels in the same packet as the frame's last bytes. quinn sends
/// STOP_SENDING for a receive stream dropped before its end was read (and the peer then owes
/// a RESET_STREAM): that doubled the bytes on the wire per 1-byte call. If the end has not arrived (or more data follows the frame, which is the peer's mistake),
/// nothing waits for it: dropping the stream stops it.
pub(crate) fn poll_fin(recv: &mut quinn::RecvStream, cx: &mut Context<'_>) -> bool {
    let mut read = pin!(recv.read_chunk(usize::MAX, true));
    matches!(read.as_mut().poll(cx), Poll::Ready(Ok(None)))
}
