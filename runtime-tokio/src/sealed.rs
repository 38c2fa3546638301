//! The gossip envelope in the socket glue.
//!
//! TEMPORARY: this layer moves into the core once `Node` seals and opens datagrams itself
//! (then drops count in `Stats::dropped` directly and the MTU budget accounts for the
//! envelope). Until then [`SealedSocket`] wraps the gossip socket: every datagram the driver
//! sends is sealed with the keyring's primary key, every datagram received is opened before
//! the node sees it, and anything that fails to open is dropped and counted here.

use rand_chacha::ChaCha20Rng;
use shoal_core::driver::AsyncUdpSocket;
use shoal_core::envelope::{EnvelopeError, Keyring};
use shoal_core::PacketError;
use std::io;
use std::net::SocketAddr;
use std::sync::atomic::{AtomicU64, Ordering};
use std::sync::{Arc, Mutex, MutexGuard};
use std::task::{Context, Poll};

/// Most datagrams one receive poll discards before yielding, so a flood of forged datagrams
/// cannot monopolise the driver task.
const DISCARD_BUDGET: usize = 64;

/// Datagrams dropped by the envelope, indexed like [`PacketError::ALL`].
#[derive(Debug, Default)]
pub(crate) struct EnvelopeDrops {
    by_reason: [AtomicU64; PacketError::ALL.len()],
}

impl EnvelopeDrops {
    fn record(&self, e: &EnvelopeError) {
        let reason = PacketError::from(e.clone());
        self.by_reason[reason.index()].fetch_add(1, Ordering::Relaxed);
    }

    /// Adds the envelope drops into the node's counters, so one table shows every drop.
    pub(crate) fn add_to(&self, dropped: &mut [u64; PacketError::ALL.len()]) {
        for (d, c) in dropped.iter_mut().zip(&self.by_reason) {
            *d += c.load(Ordering::Relaxed);
        }
    }

    /// Total datagrams the envelope dropped.
    pub(crate) fn total(&self) -> u64 {
        self.by_reason
            .iter()
            .map(|c| c.load(Ordering::Relaxed))
            .sum()
    }
}

#[derive(Debug)]
struct State {
    keyring: Keyring,
    rng: ChaCha20Rng,
    recv: Box<[u8]>,
    send: Vec<u8>,
}

/// Seals and opens every gossip datagram (see the module docs).
#[derive(Debug)]
pub(crate) struct SealedSocket {
    inner: Arc<dyn AsyncUdpSocket>,
    // Only the driver task touches the buffers, so the lock is uncontended except for a
    // live key rotation from a user handle.
    state: Mutex<State>,
    drops: Arc<EnvelopeDrops>,
}

impl SealedSocket {
    pub(crate) fn new(
        inner: Arc<dyn AsyncUdpSocket>,
        keyring: Keyring,
        rng: ChaCha20Rng,
        drops: Arc<EnvelopeDrops>,
    ) -> Self {
        SealedSocket {
            inner,
            state: Mutex::new(State {
                keyring,
                rng,
                recv: vec![0u8; 65_536].into_boxed_slice(),
                send: Vec::with_capacity(2048),
            }),
            drops,
        }
    }

    fn lock(&self) -> MutexGuard<'_, State> {
        // Every critical section leaves the state consistent, so poison is harmless.
        match self.state.lock() {
            Ok(g) => g,
            Err(p) => p.into_inner(),
        }
    }

    /// Changes the keyring in place (live rotation).
    pub(crate) fn with_keyring<T>(&self, f: impl FnOnce(&mut Keyring) -> T) -> T {
        f(&mut self.lock().keyring)
    }
}

impl AsyncUdpSocket for SealedSocket {
    fn poll_recv_from(
        &self,
        cx: &mut Context<'_>,
        buf: &mut [u8],
    ) -> Poll<io::Result<(usize, SocketAddr)>> {
        let mut guard = self.lock();
        let State { keyring, recv, .. } = &mut *guard;
        for _ in 0..DISCARD_BUDGET {
            let (len, from) = match self.inner.poll_recv_from(cx, recv) {
                Poll::Ready(Ok(r)) => r,
                other => return other,
            };
            match keyring.open(&recv[..len.min(recv.len())]) {
                Ok(plain) if plain.len() <= buf.len() => {
                    buf[..plain.len()].copy_from_slice(&plain);
                    return Poll::Ready(Ok((plain.len(), from)));
                }
                Ok(plain) => {
                    let e = EnvelopeError::TooLarge { len: plain.len() };
                    self.drops.record(&e);
                }
                Err(e) => {
                    tracing::debug!(%from, error = %e, "dropped gossip datagram");
                    self.drops.record(&e);
                }
            }
        }
        cx.waker().wake_by_ref();
        Poll::Pending
    }

    fn poll_send_to(
        &self,
        cx: &mut Context<'_>,
        buf: &[u8],
        target: SocketAddr,
    ) -> Poll<io::Result<usize>> {
        let mut guard = self.lock();
        let State {
            keyring, rng, send, ..
        } = &mut *guard;
        // A retry after Pending seals again under a fresh nonce; the old one was never sent.
        if let Err(e) = keyring.seal_into(rng, buf, send) {
            return Poll::Ready(Err(io::Error::new(io::ErrorKind::InvalidInput, e)));
        }
        match self.inner.poll_send_to(cx, send, target) {
            Poll::Ready(Ok(_)) => Poll::Ready(Ok(buf.len())),
            other => other,
        }
    }

    fn local_addr(&self) -> io::Result<SocketAddr> {
        self.inner.local_addr()
    }
}
