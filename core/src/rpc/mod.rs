//! RPC framing: how a call and its answer travel on one QUIC bidirectional stream.
//!
//! The rule this module owns: **a frame is either complete, valid and within its size limit,
//! or it is an error; never a panic, never an allocation sized by the peer.** It is framing
//! only; what a method means is the adapter's and the application's business.
//!
//! # Format
//!
//! ```text
//! frame    = len:u32be kind:u8 body          len = 1 + body length (everything after `len`)
//! request  = kind 0x01, flags:u8 [deadline_ms:u32be] method_len:u8 method:utf8 payload
//!            flags bit 0: a deadline follows; all other bits must be 0
//! response = kind 0x02, status:u8 [msg_len:u16be msg:utf8] payload
//!            msg only for status 5 (HandlerFailed)
//! status   = 0 Ok, 1 UnknownMethod, 2 PayloadTooLarge, 3 Overloaded, 4 DeadlineExceeded,
//!            5 HandlerFailed
//! ```
//!
//! The payload is the rest of the frame: no second length, and a [`bytes::Bytes`] slice of the
//! received buffer (no copy). The deadline is the *remaining* time in milliseconds when the
//! request was written, so the two ends need no common clock.
//!
//! Why hand-rolled and not postcard: the header is a handful of fixed fields, a fixed layout
//! lets the payload be a zero-copy slice of the frame (postcard would copy it into a `Vec`), and
//! lets an encoder write just the header and hand the payload to a vectored write
//! ([`encode_request_head`], [`encode_response_head`]). Why a fixed 4-byte length rather than
//! a varint: the decoder knows after exactly four bytes whether to wait or refuse, so the size
//! check always happens before anything is buffered or allocated, and there is no
//! over-long-varint case to reject; four bytes are noise beside a QUIC stream's own overhead.
//!
//! # Limits
//!
//! [`Limits`] bounds the frame length (`len`, i.e. header plus payload) separately for requests
//! and responses. The decoder refuses a declared length over the limit as soon as it has read
//! the five header bytes, before buffering the body; encoders refuse to produce such a frame.
//! One call normally carries one request frame and one response frame, each followed by the
//! end of its stream direction; [`Decoder::finish`] tells a clean end from a cut-off frame.

pub mod call;
pub mod handler;
pub mod machine;
#[cfg(test)]
mod tests;

use bytes::{Buf, BufMut, Bytes, BytesMut};
use core::fmt;

/// Longest method name, in bytes (its length travels in one byte).
pub const MAX_METHOD: usize = 255;
/// Longest `HandlerFailed` message, in bytes.
pub const MAX_MESSAGE: usize = 4096;
/// Bytes before `kind`: the length prefix.
pub const LEN_PREFIX: usize = 4;

const KIND_REQUEST: u8 = 0x01;
const KIND_RESPONSE: u8 = 0x02;
const FLAG_DEADLINE: u8 = 0x01;

/// Size limits, counted over a frame's `len` (kind byte, header fields and payload).
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub struct Limits {
    /// Largest request frame accepted or produced.
    pub max_request: u32,
    /// Largest response frame accepted or produced.
    pub max_response: u32,
}

impl Default for Limits {
    /// 4 MiB requests, 16 MiB responses: generous for RPC, small enough that one stream cannot
    /// exhaust a worker's memory.
    fn default() -> Self {
        Limits {
            max_request: 4 << 20,
            max_response: 16 << 20,
        }
    }
}

/// Why a frame could not be decoded or encoded. After a decode error the stream's framing is
/// lost: the adapter should reset the stream (answering `PayloadTooLarge` first for
/// [`FrameError::TooLarge`], if it is the server).
#[derive(Debug, Clone, PartialEq, Eq, thiserror::Error)]
pub enum FrameError {
    /// The frame's length is over the limit for its kind.
    #[error("frame of {len} bytes exceeds the limit of {limit}")]
    TooLarge {
        /// Declared (decoding) or required (encoding) frame length.
        len: usize,
        /// The limit.
        limit: usize,
    },
    /// A zero length: not even a kind byte.
    #[error("empty frame")]
    Empty,
    /// The kind byte is neither request nor response.
    #[error("unknown frame kind {0:#04x}")]
    UnknownKind(u8),
    /// Reserved request flag bits are set.
    #[error("unknown request flags {0:#04x}")]
    BadFlags(u8),
    /// A header field runs past the end of its frame.
    #[error("frame too short for its {0}")]
    Short(&'static str),
    /// The method name is empty, too long or not UTF-8.
    #[error("bad method name: {0}")]
    BadMethod(&'static str),
    /// Unknown status code.
    #[error("unknown status code {0}")]
    UnknownStatus(u8),
    /// The failure message is too long or not UTF-8.
    #[error("bad failure message: {0}")]
    BadMessage(&'static str),
    /// The stream ended inside a frame.
    #[error("stream ended inside a frame ({buffered} bytes buffered)")]
    UnexpectedEnd {
        /// Bytes left undecoded.
        buffered: usize,
    },
}

/// The answer's status: success or one of the typed failures a caller must tell apart.
#[derive(Clone, Debug, PartialEq, Eq, Hash)]
pub enum Status {
    /// The handler ran; the payload is its answer.
    Ok,
    /// No handler is registered for the method.
    UnknownMethod,
    /// The request was over the worker's limit.
    PayloadTooLarge,
    /// The worker refused the call to protect itself (at capacity): try another worker.
    Overloaded,
    /// The deadline passed before the handler finished.
    DeadlineExceeded,
    /// The handler returned an error; its message travels with it.
    HandlerFailed(String),
}

impl Status {
    /// The wire code.
    pub fn code(&self) -> u8 {
        match self {
            Status::Ok => 0,
            Status::UnknownMethod => 1,
            Status::PayloadTooLarge => 2,
            Status::Overloaded => 3,
            Status::DeadlineExceeded => 4,
            Status::HandlerFailed(_) => 5,
        }
    }

    /// Whether this is [`Status::Ok`].
    pub fn is_ok(&self) -> bool {
        matches!(self, Status::Ok)
    }
}

impl fmt::Display for Status {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        match self {
            Status::Ok => f.write_str("ok"),
            Status::UnknownMethod => f.write_str("unknown method"),
            Status::PayloadTooLarge => f.write_str("payload too large"),
            Status::Overloaded => f.write_str("overloaded"),
            Status::DeadlineExceeded => f.write_str("deadline exceeded"),
            Status::HandlerFailed(m) => write!(f, "handler failed: {m}"),
        }
    }
}

/// A decoded call.
#[derive(Clone, Debug, PartialEq, Eq)]
pub struct Request {
    /// Validated UTF-8, 1..=[`MAX_METHOD`] bytes; a slice of the received frame.
    method: Bytes,
    /// Remaining time the caller allows, in milliseconds, if any.
    pub deadline_ms: Option<u32>,
    /// The argument bytes; a slice of the received frame.
    pub payload: Bytes,
}

impl Request {
    /// A request, checking the method name.
    pub fn new(method: &str, deadline_ms: Option<u32>, payload: Bytes) -> Result<Self, FrameError> {
        check_method(method.as_bytes())?;
        Ok(Request {
            method: Bytes::copy_from_slice(method.as_bytes()),
            deadline_ms,
            payload,
        })
    }

    /// The method name.
    pub fn method(&self) -> &str {
        // Validated as UTF-8 by `new` and by the decoder; never falls back.
        core::str::from_utf8(&self.method).unwrap_or_default()
    }
}

/// A decoded answer.
#[derive(Clone, Debug, PartialEq, Eq)]
pub struct Response {
    /// Success or the typed failure.
    pub status: Status,
    /// The answer bytes (usually empty unless `Ok`); a slice of the received frame.
    pub payload: Bytes,
}

/// One decoded frame.
#[derive(Clone, Debug, PartialEq, Eq)]
pub enum Frame {
    /// A call (what a worker reads).
    Request(Request),
    /// An answer (what a caller reads).
    Response(Response),
}

fn check_method(m: &[u8]) -> Result<(), FrameError> {
    if m.is_empty() {
        return Err(FrameError::BadMethod("empty"));
    }
    if m.len() > MAX_METHOD {
        return Err(FrameError::BadMethod("too long"));
    }
    core::str::from_utf8(m).map_err(|_| FrameError::BadMethod("not UTF-8"))?;
    Ok(())
}

/// Header length of a request (kind byte included, payload excluded).
fn request_head_len(method: &str, deadline: Option<u32>) -> usize {
    1 + 1 + if deadline.is_some() { 4 } else { 0 } + 1 + method.len()
}

/// Bytes [`encode_request_head`] writes (length prefix included), so a caller can size its
/// buffer exactly: a `BytesMut` frozen at full capacity becomes a `Bytes` without a second
/// allocation.
pub fn encoded_request_head_len(method: &str, deadline_ms: Option<u32>) -> usize {
    LEN_PREFIX + request_head_len(method, deadline_ms)
}

/// Bytes [`encode_response_head`] writes for `status` (length prefix included).
pub fn encoded_response_head_len(status: &Status) -> usize {
    LEN_PREFIX
        + 2
        + match status {
            Status::HandlerFailed(m) => 2 + m.len(),
            _ => 0,
        }
}

/// Writes a request's length prefix and header, for a payload of `payload_len` bytes that the
/// caller writes right after (e.g. as a second buffer of a vectored write, without copying it).
pub fn encode_request_head(
    method: &str,
    deadline_ms: Option<u32>,
    payload_len: usize,
    limits: &Limits,
    dst: &mut BytesMut,
) -> Result<(), FrameError> {
    check_method(method.as_bytes())?;
    let len = request_head_len(method, deadline_ms).saturating_add(payload_len);
    let limit = limits.max_request as usize;
    if len > limit {
        return Err(FrameError::TooLarge { len, limit });
    }
    dst.reserve(LEN_PREFIX + len - payload_len);
    dst.put_u32(len as u32);
    dst.put_u8(KIND_REQUEST);
    match deadline_ms {
        Some(d) => {
            dst.put_u8(FLAG_DEADLINE);
            dst.put_u32(d);
        }
        None => dst.put_u8(0),
    }
    dst.put_u8(method.len() as u8);
    dst.put_slice(method.as_bytes());
    Ok(())
}

/// Writes a whole request frame (header and a copy of the payload).
pub fn encode_request(
    req: &Request,
    limits: &Limits,
    dst: &mut BytesMut,
) -> Result<(), FrameError> {
    encode_request_head(
        req.method(),
        req.deadline_ms,
        req.payload.len(),
        limits,
        dst,
    )?;
    dst.put_slice(&req.payload);
    Ok(())
}

/// Writes a response's length prefix and header, for a payload of `payload_len` bytes that the
/// caller writes right after.
pub fn encode_response_head(
    status: &Status,
    payload_len: usize,
    limits: &Limits,
    dst: &mut BytesMut,
) -> Result<(), FrameError> {
    let msg = match status {
        Status::HandlerFailed(m) => {
            if m.len() > MAX_MESSAGE {
                return Err(FrameError::BadMessage("too long"));
            }
            Some(m.as_str())
        }
        _ => None,
    };
    let head = 2 + msg.map_or(0, |m| 2 + m.len());
    let len = head.saturating_add(payload_len);
    let limit = limits.max_response as usize;
    if len > limit {
        return Err(FrameError::TooLarge { len, limit });
    }
    dst.reserve(LEN_PREFIX + head);
    dst.put_u32(len as u32);
    dst.put_u8(KIND_RESPONSE);
    dst.put_u8(status.code());
    if let Some(m) = msg {
        dst.put_u16(m.len() as u16);
        dst.put_slice(m.as_bytes());
    }
    Ok(())
}

/// Writes a whole response frame (header and a copy of the payload).
pub fn encode_response(
    resp: &Response,
    limits: &Limits,
    dst: &mut BytesMut,
) -> Result<(), FrameError> {
    encode_response_head(&resp.status, resp.payload.len(), limits, dst)?;
    dst.put_slice(&resp.payload);
    Ok(())
}

/// Incremental frame decoder: feed it whatever bytes arrived, get whole frames out.
///
/// Stateless apart from its limits: the undecoded bytes stay in the caller's buffer, so
/// partial input simply returns `Ok(None)` and is decoded when more arrives.
#[derive(Clone, Copy, Debug, Default, PartialEq, Eq)]
pub struct Decoder {
    limits: Limits,
}

impl Decoder {
    /// A decoder enforcing `limits`.
    pub fn new(limits: Limits) -> Self {
        Decoder { limits }
    }

    /// The limits in force.
    pub fn limits(&self) -> &Limits {
        &self.limits
    }

    /// Takes one complete frame off the front of `buf`, or returns `Ok(None)` (leaving `buf`
    /// untouched) if it does not hold one yet. A length over the limit is refused as soon as
    /// the five header bytes are in, before the body is buffered. On error `buf` is left as it
    /// was; the stream cannot be resynchronised.
    pub fn decode(&self, buf: &mut BytesMut) -> Result<Option<Frame>, FrameError> {
        let Some(total) = self.complete_len(buf)? else {
            return Ok(None);
        };
        // Parse from a borrowed view first, so an invalid frame leaves `buf` untouched.
        let frame = parse(&buf[LEN_PREFIX..total])?;
        // The usual case is a buffer holding exactly one frame: take it whole, which keeps
        // its allocation unshared (splitting it would allocate a shared header).
        let mut bytes = if buf.len() == total {
            core::mem::take(buf).freeze()
        } else {
            buf.split_to(total).freeze()
        };
        bytes.advance(LEN_PREFIX);
        Ok(Some(frame.into_frame(bytes)))
    }

    /// [`Decoder::decode`] on bytes that arrived as one shared buffer (a QUIC stream chunk):
    /// the same frames, errors and limits, but the frame's parts are slices of `buf` itself,
    /// so decoding a frame that arrived whole neither allocates nor copies. The price is that
    /// a payload kept alive keeps the buffer it was cut from alive too.
    pub fn decode_bytes(&self, buf: &mut Bytes) -> Result<Option<Frame>, FrameError> {
        let Some(total) = self.complete_len(buf)? else {
            return Ok(None);
        };
        let frame = parse(&buf[LEN_PREFIX..total])?;
        let mut bytes = if buf.len() == total {
            core::mem::take(buf)
        } else {
            buf.split_to(total)
        };
        bytes.advance(LEN_PREFIX);
        Ok(Some(frame.into_frame(bytes)))
    }

    /// The length of the frame at the front of `buf` (prefix included) if all of it is
    /// there; `None` if more bytes are needed. Refuses an empty frame, an unknown kind and a
    /// declared length over its limit as soon as the five bytes that show them are in.
    fn complete_len(&self, buf: &[u8]) -> Result<Option<usize>, FrameError> {
        if buf.len() < LEN_PREFIX {
            return Ok(None);
        }
        let len = u32::from_be_bytes([buf[0], buf[1], buf[2], buf[3]]) as usize;
        if len == 0 {
            return Err(FrameError::Empty);
        }
        if buf.len() < LEN_PREFIX + 1 {
            return Ok(None);
        }
        let limit = match buf[LEN_PREFIX] {
            KIND_REQUEST => self.limits.max_request,
            KIND_RESPONSE => self.limits.max_response,
            k => return Err(FrameError::UnknownKind(k)),
        } as usize;
        if len > limit {
            return Err(FrameError::TooLarge { len, limit });
        }
        // No reservation when incomplete: a peer that declares a large frame and sends five
        // bytes must not make us hold the whole limit. The buffer grows with what arrives.
        Ok((buf.len() >= LEN_PREFIX + len).then_some(LEN_PREFIX + len))
    }

    /// Checks the end of the stream: `Ok` if `buf` holds no partial frame.
    pub fn finish(&self, buf: &BytesMut) -> Result<(), FrameError> {
        if buf.is_empty() {
            Ok(())
        } else {
            Err(FrameError::UnexpectedEnd {
                buffered: buf.len(),
            })
        }
    }
}

/// Offsets of a validated frame, turned into zero-copy slices once the frame is split off.
enum Parsed {
    Request {
        method: (usize, usize),
        deadline_ms: Option<u32>,
        payload: usize,
    },
    Response {
        status: Status,
        payload: usize,
    },
}

impl Parsed {
    /// Takes the frame's parts out of `body`, consuming it: a response's payload is `body`
    /// itself advanced past the header (no reference-count traffic, no allocation).
    fn into_frame(self, mut body: Bytes) -> Frame {
        match self {
            Parsed::Request {
                method,
                deadline_ms,
                payload,
            } => {
                let method = body.slice(method.0..method.1);
                body.advance(payload);
                Frame::Request(Request {
                    method,
                    deadline_ms,
                    payload: body,
                })
            }
            Parsed::Response { status, payload } => {
                body.advance(payload);
                Frame::Response(Response {
                    status,
                    payload: body,
                })
            }
        }
    }
}

/// Validates one frame body (`kind` onwards) and returns where its parts are.
fn parse(body: &[u8]) -> Result<Parsed, FrameError> {
    let take = |at: usize, n: usize, what: &'static str| -> Result<&[u8], FrameError> {
        body.get(at..at + n).ok_or(FrameError::Short(what))
    };
    match body[0] {
        KIND_REQUEST => {
            let flags = take(1, 1, "flags")?[0];
            if flags & !FLAG_DEADLINE != 0 {
                return Err(FrameError::BadFlags(flags));
            }
            let mut at = 2;
            let deadline_ms = if flags & FLAG_DEADLINE != 0 {
                let d = take(at, 4, "deadline")?;
                at += 4;
                Some(u32::from_be_bytes([d[0], d[1], d[2], d[3]]))
            } else {
                None
            };
            let mlen = take(at, 1, "method length")?[0] as usize;
            at += 1;
            check_method(take(at, mlen, "method")?)?;
            Ok(Parsed::Request {
                method: (at, at + mlen),
                deadline_ms,
                payload: at + mlen,
            })
        }
        KIND_RESPONSE => {
            let code = take(1, 1, "status")?[0];
            let status = match code {
                0 => Status::Ok,
                1 => Status::UnknownMethod,
                2 => Status::PayloadTooLarge,
                3 => Status::Overloaded,
                4 => Status::DeadlineExceeded,
                5 => {
                    let l = take(2, 2, "message length")?;
                    let mlen = u16::from_be_bytes([l[0], l[1]]) as usize;
                    if mlen > MAX_MESSAGE {
                        return Err(FrameError::BadMessage("too long"));
                    }
                    let m = take(4, mlen, "message")?;
                    let m =
                        core::str::from_utf8(m).map_err(|_| FrameError::BadMessage("not UTF-8"))?;
                    return Ok(Parsed::Response {
                        status: Status::HandlerFailed(m.to_owned()),
                        payload: 4 + mlen,
                    });
                }
                c => return Err(FrameError::UnknownStatus(c)),
            };
            Ok(Parsed::Response { status, payload: 2 })
        }
        // `decode` checked the kind before calling.
        k => Err(FrameError::UnknownKind(k)),
    }
}
