//! Address validation: the anti-amplification budget and the challenge token rule.
//!
//! Rules (after QUIC, RFC 9000 section 8):
//! - **Budget:** while handling a datagram from address `a`, everything the node sends back to
//!   `a` counts as a reply. Until `a` is validated, replies to it total at most
//!   [`AMPLIFICATION`] times the bytes received from it. A spoofed source therefore gets at
//!   most 3 bytes out per byte the attacker sent, whatever the message.
//! - **Validation:** `a` is validated when it echoes a [`Validation::token`] the node sent it
//!   (an `Echo` of a `Challenge`): only a host that receives at `a` can know it. With a
//!   cluster key, an authentic and fresh datagram whose sender the member table already holds
//!   at `a` also validates `a` (that address was published by a key holder, and a replay
//!   from a spoofed source is refused by the freshness check first).
//! - **Joins and syncs** from an unvalidated address get a `Challenge`, never a table. The
//!   requester sends the request again with the token in it (`JoinEcho`, `SyncEcho`): one
//!   datagram validates and asks, so no separate echo can be overtaken by the request. A
//!   sync whose digest matches this node's own is answered at once: the answer is a digest
//!   about the request's size, within the budget.
//! - **Pings** from an unvalidated address get their ack within the budget; a `Challenge`
//!   goes first only when updates are queued (the budget would cut them off the ack), so a
//!   settled cluster spends nothing on validation.
//! - **Ordinary traffic validates too:** a sync reply echoing the requester's sequence
//!   (random start) from the address the request went to validates that address.
//! - **Tokens** are stateless: the first 8 bytes of a Poly1305 tag, under a secret drawn from
//!   the node's RNG, over the address and the current period of [`TOKEN_PERIOD`]; the
//!   current and the previous period's token are accepted, so a token lives one to two
//!   periods and a captured one cannot validate its address for ever.
//! - **Bounded memory:** at most `capacity` addresses are tracked. A new one when full evicts
//!   the least recently used unvalidated address, or if every tracked address is validated,
//!   the least recently used one (it must then validate again: one round trip, no data lost
//!   for good). Forgetting an address also forgets its counts, which only lowers its budget.
//!
//! Deterministic: a `BTreeMap` keyed by address and a logical tick for recency.

use chacha20poly1305::aead::{AeadInPlace, KeyInit};
use chacha20poly1305::{XChaCha20Poly1305, XNonce};
use core::net::SocketAddr;
use core::time::Duration;
use std::collections::BTreeMap;

/// Replies to an unvalidated address total at most this many times the bytes received.
pub(crate) const AMPLIFICATION: u64 = 3;
/// How long a challenge token stays valid (one to two periods).
pub(crate) const TOKEN_PERIOD: Duration = Duration::from_secs(60);

#[derive(Clone, Copy, Debug, Default)]
struct Entry {
    received: u64,
    sent: u64,
    validated: bool,
    last: u64,
}

/// Per-address budgets and the token secret.
pub(super) struct Validation {
    entries: BTreeMap<SocketAddr, Entry>,
    capacity: usize,
    secret: [u8; 32],
    tick: u64,
}

impl core::fmt::Debug for Validation {
    fn fmt(&self, f: &mut core::fmt::Formatter<'_>) -> core::fmt::Result {
        f.debug_struct("Validation")
            .field("tracked", &self.entries.len())
            .field("capacity", &self.capacity)
            .finish_non_exhaustive()
    }
}

impl Validation {
    /// At most `capacity` addresses (at least 1); tokens keyed with `secret`.
    pub(super) fn new(capacity: usize, secret: [u8; 32]) -> Self {
        Validation {
            entries: BTreeMap::new(),
            capacity: capacity.max(1),
            secret,
            tick: 0,
        }
    }

    /// Addresses tracked (validated or not).
    #[cfg(test)]
    pub(super) fn len(&self) -> usize {
        self.entries.len()
    }

    fn entry(&mut self, addr: SocketAddr) -> &mut Entry {
        self.tick += 1;
        let tick = self.tick;
        if !self.entries.contains_key(&addr) && self.entries.len() >= self.capacity {
            let victim = self
                .entries
                .iter()
                .min_by_key(|(_, e)| (e.validated, e.last))
                .map(|(a, _)| *a);
            if let Some(a) = victim {
                self.entries.remove(&a);
            }
        }
        let e = self.entries.entry(addr).or_default();
        e.last = tick;
        e
    }

    /// `bytes` arrived from `addr` (counted before the datagram is even decoded).
    pub(super) fn received(&mut self, addr: SocketAddr, bytes: usize) {
        let e = self.entry(addr);
        e.received = e.received.saturating_add(bytes as u64);
    }

    /// Whether `addr` has proven it receives what is sent to it.
    pub(super) fn is_validated(&self, addr: &SocketAddr) -> bool {
        self.entries.get(addr).is_some_and(|e| e.validated)
    }

    /// Marks `addr` validated.
    pub(super) fn validate(&mut self, addr: SocketAddr) {
        self.entry(addr).validated = true;
    }

    /// Bytes that may still be sent to `addr` as replies: `None` when unlimited (validated).
    pub(super) fn allowance(&self, addr: &SocketAddr) -> Option<usize> {
        match self.entries.get(addr) {
            Some(e) if e.validated => None,
            Some(e) => {
                let cap = e.received.saturating_mul(AMPLIFICATION);
                Some(usize::try_from(cap.saturating_sub(e.sent)).unwrap_or(usize::MAX))
            }
            None => Some(0),
        }
    }

    /// `bytes` were sent to `addr` as a reply.
    pub(super) fn sent(&mut self, addr: SocketAddr, bytes: usize) {
        let e = self.entry(addr);
        e.sent = e.sent.saturating_add(bytes as u64);
    }

    /// The challenge token for `addr` at time `now_micros`.
    pub(super) fn token(&self, addr: &SocketAddr, now_micros: u64) -> u64 {
        self.token_for_period(addr, now_micros / TOKEN_PERIOD.as_micros() as u64)
    }

    /// Whether `token` is `addr`'s token of this period or the previous one.
    pub(super) fn check(&self, addr: &SocketAddr, now_micros: u64, token: u64) -> bool {
        let p = now_micros / TOKEN_PERIOD.as_micros() as u64;
        token == self.token_for_period(addr, p)
            || (p > 0 && token == self.token_for_period(addr, p - 1))
    }

    fn token_for_period(&self, addr: &SocketAddr, period: u64) -> u64 {
        // Nonce: [family 1][ip 16][port 2][period low 5 bytes] = 24 bytes.
        let mut nonce = [0u8; 24];
        match addr {
            SocketAddr::V4(a) => {
                nonce[0] = 4;
                nonce[1..5].copy_from_slice(&a.ip().octets());
            }
            SocketAddr::V6(a) => {
                nonce[0] = 6;
                nonce[1..17].copy_from_slice(&a.ip().octets());
            }
        }
        nonce[17..19].copy_from_slice(&addr.port().to_be_bytes());
        nonce[19..24].copy_from_slice(&period.to_be_bytes()[3..]);
        let cipher = XChaCha20Poly1305::new(&self.secret.into());
        let mut empty: [u8; 0] = [];
        // Invariant: encryption only fails for plaintexts longer than 2^38 bytes.
        let tag = cipher
            .encrypt_in_place_detached(&XNonce::from(nonce), b"shoal challenge v1", &mut empty)
            .expect("empty plaintext is within the AEAD limit");
        let mut t = [0u8; 8];
        t.copy_from_slice(&tag[..8]);
        u64::from_be_bytes(t)
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    fn a(i: u16) -> SocketAddr {
        SocketAddr::from(([10, 0, 0, 1], i))
    }

    #[test]
    fn an_unvalidated_address_gets_at_most_three_times_what_it_sent() {
        let mut v = Validation::new(8, [1; 32]);
        assert_eq!(
            v.allowance(&a(1)),
            Some(0),
            "nothing received, nothing owed"
        );
        v.received(a(1), 100);
        assert_eq!(v.allowance(&a(1)), Some(300));
        v.sent(a(1), 250);
        assert_eq!(v.allowance(&a(1)), Some(50));
        v.sent(a(1), 50);
        assert_eq!(v.allowance(&a(1)), Some(0));
        v.received(a(1), 10);
        assert_eq!(v.allowance(&a(1)), Some(30));
        v.validate(a(1));
        assert_eq!(v.allowance(&a(1)), None);
        assert!(v.is_validated(&a(1)));
    }

    #[test]
    fn tokens_are_per_address_and_expire_after_two_periods() {
        let v = Validation::new(8, [1; 32]);
        let p = TOKEN_PERIOD.as_micros() as u64;
        let t = v.token(&a(1), 5);
        assert!(v.check(&a(1), 5, t));
        assert!(v.check(&a(1), p + 5, t), "previous period still accepted");
        assert!(!v.check(&a(1), 2 * p + 5, t), "expired");
        assert!(!v.check(&a(2), 5, t), "another address");
        assert_ne!(
            v.token(&a(1), 5),
            Validation::new(8, [2; 32]).token(&a(1), 5)
        );
        let v6: SocketAddr = "[::1]:7946".parse().unwrap();
        assert_ne!(v.token(&v6, 5), v.token(&a(7946), 5));
    }

    #[test]
    fn memory_is_bounded_and_unvalidated_addresses_are_evicted_first() {
        let mut v = Validation::new(3, [1; 32]);
        v.validate(a(1));
        v.received(a(2), 10);
        v.received(a(3), 10);
        for i in 10..1000 {
            v.received(a(i), 10);
            assert!(v.len() <= 3);
        }
        assert!(
            v.is_validated(&a(1)),
            "the validated address survived the flood"
        );
        assert_eq!(
            v.allowance(&a(2)),
            Some(0),
            "forgotten: its budget is gone too"
        );
    }
}
