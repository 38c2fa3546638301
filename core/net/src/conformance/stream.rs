//! Frame reading and writing over a real quinn connection (the server's and client's
//! stream helpers), on the binding's runtime.

use super::{join, RuntimeBinding};
use crate::rpc::stream::{frame_buffers, read_frame, write_frame, INLINE_PAYLOAD};
use crate::rpc::{endpoint, RpcConfig};
use bytes::{Bytes, BytesMut};
use shoal_core::rpc::{encode_request_head, Request};
use shoal_core::Limits;
use shoal_core::{Decoder, Frame};
use std::net::SocketAddr;

/// A connected client/server pair on loopback.
async fn pair<R: RuntimeBinding>() -> (quinn::Connection, quinn::Connection) {
    let config = RpcConfig::insecure_dev();
    let local = SocketAddr::from(([127, 0, 0, 1], 0));
    let (server, _) = endpoint::bind(&config, local, true, R::runtime()).expect("server endpoint");
    let (client, _) = endpoint::bind(&config, local, false, R::runtime()).expect("client endpoint");
    let addr = server.local_addr().expect("bound");
    let connecting = client
        .connect_with(
            config.quinn_client().expect("client config"),
            addr,
            &config.tls.server_name,
        )
        .expect("connect");
    let accept = async {
        let incoming = server.accept().await.expect("incoming");
        incoming.await.expect("server handshake")
    };
    let (c, s) = join(connecting, accept).await;
    (c.expect("client handshake"), s)
}

fn request(payload: &[u8]) -> [Bytes; 2] {
    let mut head = BytesMut::new();
    encode_request_head("echo", None, payload.len(), &Limits::default(), &mut head)
        .expect("a valid request");
    frame_buffers(head, &Bytes::copy_from_slice(payload))
}

/// Sends one request on a new stream (finishing it if `finish`), reads it on the server
/// with [`read_frame`], drops the receive side, and returns the request and how many
/// STOP_SENDING frames the server has sent once the client has seen everything.
async fn exchange<R: RuntimeBinding>(payload: &[u8], finish: bool) -> (Request, u64) {
    let (client, server) = pair::<R>().await;
    let (mut send, _client_recv) = client.open_bi().await.expect("open");
    write_frame(&mut send, request(payload))
        .await
        .expect("write");
    if finish {
        send.finish().expect("finish");
    }
    // A barrier before the read: a stream opened after this one's data (and end) were
    // written, read whole by the server. Its bytes left after them, so by the time they are
    // in, so is everything before (one path, no loss), and what `read_frame` sees no longer
    // depends on whether the driver flushed between the write and the finish (under load
    // it did, and the end came a packet later: a flaky count of 1).
    let (mut bs, _br) = client.open_bi().await.expect("open");
    bs.write_all(b"b").await.expect("write");
    bs.finish().expect("finish");
    let (_server_send, mut recv) = server.accept_bi().await.expect("accept");
    let (_bss, mut bsr) = server.accept_bi().await.expect("accept");
    bsr.read_to_end(8).await.expect("the barrier");
    let decoder = Decoder::new(Limits::default());
    let frame = read_frame(&decoder, &mut recv).await.expect("a frame");
    drop(recv);
    // A round trip on another stream: anything the server queued before it has been
    // sent by the time its answer arrives.
    let (mut s2, mut r2) = client.open_bi().await.expect("open");
    write_frame(&mut s2, request(b"x")).await.expect("write");
    s2.finish().expect("finish");
    let (mut ss2, mut sr2) = server.accept_bi().await.expect("accept");
    read_frame(&decoder, &mut sr2).await.expect("a frame");
    ss2.write_all(b"done").await.expect("answer");
    ss2.finish().expect("finish");
    r2.read_to_end(64).await.expect("the answer");
    let stops = server.stats().frame_tx.stop_sending;
    match frame {
        Frame::Request(r) => (r, stops),
        other => panic!("expected a request, got {other:?}"),
    }
}

/// A finished frame is read with its end so no stop sending is sent.
pub async fn a_finished_frame_is_read_with_its_end_so_no_stop_sending_is_sent<R: RuntimeBinding>() {
    let (req, stops) = exchange::<R>(b"hello", true).await;
    assert_eq!(req.method(), "echo");
    assert_eq!(&req.payload[..], b"hello");
    assert_eq!(stops, 0, "the stream's end was read with the frame");
}

/// A stream left open after its frame is stopped without waiting.
pub async fn a_stream_left_open_after_its_frame_is_stopped_without_waiting<R: RuntimeBinding>() {
    let (req, stops) = exchange::<R>(b"hello", false).await;
    assert_eq!(&req.payload[..], b"hello");
    assert_eq!(stops, 1, "the unfinished stream was stopped when dropped");
}

/// Large payloads go as a second buffer and arrive whole.
pub async fn large_payloads_go_as_a_second_buffer_and_arrive_whole<R: RuntimeBinding>() {
    let big = vec![7u8; INLINE_PAYLOAD * 3];
    let frame = request(&big);
    assert!(!frame[1].is_empty(), "a large payload is not copied");
    assert!(
        request(b"small")[1].is_empty(),
        "a small payload is inlined"
    );
    let (req, stops) = exchange::<R>(&big, true).await;
    assert_eq!(req.payload.len(), big.len());
    assert!(req.payload.iter().all(|&b| b == 7));
    assert_eq!(stops, 0);
}
