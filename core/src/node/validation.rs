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
//! Deterministic: entries in a vector, found through an open-addressing table whose hash is
//! keyed by the node's secret (drawn from the node's seeded RNG), and a logical tick for
//! recency. Nothing iterates the table in its hash order: eviction scans the entries, and
//! `(validated, last)` is unique, so the victim never depends on where anything sits.
//!
//! Cost: every datagram asks about its source four to five times (`received`, `validate`,
//! `is_validated`, `allowance`, `sent`), nearly always the same address in a row. In the
//! simulator thousands of nodes share one process, so what counts is cache misses. Each
//! entry holds its address's compact key (two integers, compared in a few instructions where
//! `SocketAddr`'s `Ord` walks the enum field by field) beside its counters in one 64-byte
//! line, and the index is a linear-probing table of `u32` slot numbers, at most half full
//! and sized from the tracked count (not `capacity`: a node hearing from few addresses keeps
//! a small table). A lookup is one hash, usually one table read and one entry line; an
//! eviction finds its victim's key in the victim's entry. The last address asked about and
//! its slot are kept in the struct itself, so the four to five questions about one
//! datagram's source cost one table lookup, then none. (A 32-line direct-mapped cache of
//! slots in its own allocation used to front a `BTreeMap` here; with thousands of nodes in
//! one process its line was itself a cache miss on most datagrams, one more than the table
//! read it would save, so it went; see the measurements in the commit that removed it.)
//!
//! Collisions: table positions come from SipHash-1-3 (the function std's `HashMap` uses
//! against hash flooding) under a key derived from the node's secret, so nobody who does not
//! know the secret can choose addresses whose positions collide into long probe chains; with
//! the table at most half full a hit takes about 1.5 probes and a miss 2.5. Whatever the
//! positions, an address is only ever matched by comparing its full key with the entry's,
//! and the remembered pair is always an exact `(key, slot)` pair of the table: colliding
//! addresses (chosen by an attacker or not) only cost probes, never a wrong or shared budget.

use chacha20poly1305::aead::{AeadInPlace, KeyInit};
use chacha20poly1305::{XChaCha20Poly1305, XNonce};
use core::cell::Cell;
use core::net::SocketAddr;
use core::time::Duration;
#[cfg(test)]
use std::collections::BTreeMap;

/// Replies to an unvalidated address total at most this many times the bytes received.
pub(crate) const AMPLIFICATION: u64 = 3;
/// How long a challenge token stays valid (one to two periods).
pub(crate) const TOKEN_PERIOD: Duration = Duration::from_secs(60);

/// One tracked address: its key and counters in one cache line, so a lookup that found the
/// slot reads one line to confirm the key and use the counters.
#[derive(Clone, Copy, Debug, Default)]
#[repr(align(64))]
struct Entry {
    key: Key,
    /// The low half of `key`'s hash, so growing the table and shifting chains back need
    /// not hash again (it fits in the line's padding).
    hash: u32,
    received: u64,
    sent: u64,
    validated: bool,
    last: u64,
}

const _: () = assert!(
    core::mem::size_of::<Entry>() == 64,
    "an entry is one cache line"
);

/// An address as two integers. Every field `SocketAddr` compares for equality is in it
/// (family, IP, port, and for IPv6 the flow label and scope id), so two keys are equal
/// exactly when their addresses are; the order differs from `SocketAddr`'s, which nothing
/// here depends on (eviction picks by `(validated, last)`, and `last` is unique).
/// `Key(0, 0)` (the default) is no address's key: every key has a family tag in its second
/// half.
#[derive(Clone, Copy, Debug, Default, PartialEq, Eq, PartialOrd, Ord)]
struct Key(u128, u128);

impl Key {
    /// This key's line in the 32-line direct-mapped cache this module used to have: its
    /// halves folded and multiplied (Fibonacci hashing), the top bits taken. Kept for the
    /// tests, which pick addresses that collided there.
    #[cfg(test)]
    fn line(&self) -> usize {
        let folded =
            (self.0 as u64) ^ ((self.0 >> 64) as u64) ^ (self.1 as u64) ^ ((self.1 >> 64) as u64);
        let bits = CACHE_LINES.trailing_zeros();
        (folded.wrapping_mul(0x9e37_79b9_7f4a_7c15) >> (64 - bits)) as usize
    }

    /// This key's table hash: SipHash-1-3 under `keys`. An IPv4 key is hashed as one word
    /// (address and port), an IPv6 key as its four: the encoding is injective (the lengths
    /// tell the families apart), so SipHash's guarantee holds, and the common IPv4 case
    /// costs two compression rounds instead of five.
    #[inline]
    fn hash(&self, keys: (u64, u64)) -> u64 {
        if (self.1 >> 96) as u32 == 4 {
            sip::<1, 3>(keys, &[(self.0 as u64) | (((self.1 >> 64) as u64) << 32)])
        } else {
            sip::<1, 3>(
                keys,
                &[
                    self.0 as u64,
                    (self.0 >> 64) as u64,
                    self.1 as u64,
                    (self.1 >> 64) as u64,
                ],
            )
        }
    }

    #[inline]
    fn of(addr: &SocketAddr) -> Key {
        match addr {
            SocketAddr::V4(a) => Key(
                u128::from(u32::from(*a.ip())),
                (4 << 96) | (u128::from(a.port()) << 64),
            ),
            SocketAddr::V6(a) => Key(
                u128::from(*a.ip()),
                (6 << 96)
                    | (u128::from(a.port()) << 64)
                    | (u128::from(a.flowinfo()) << 32)
                    | u128::from(a.scope_id()),
            ),
        }
    }
}

/// Lines of the cache this module used to have (see [`Key::line`]).
#[cfg(test)]
const CACHE_LINES: usize = 32;
/// A free table position, or no remembered slot (never a slot: `capacity` stays below it).
const EMPTY: u32 = u32::MAX;

/// SipHash-`C`-`D` (Aumasson and Bernstein) of whole 64-bit words (taken little-endian)
/// under the 128-bit key `(k0, k1)`. Our inputs are whole words, so the byte buffering of a
/// general hasher is not needed.
#[inline]
fn sip<const C: usize, const D: usize>((k0, k1): (u64, u64), words: &[u64]) -> u64 {
    let mut v = [
        k0 ^ 0x736f_6d65_7073_6575,
        k1 ^ 0x646f_7261_6e64_6f6d,
        k0 ^ 0x6c79_6765_6e65_7261,
        k1 ^ 0x7465_6462_7974_6573,
    ];
    #[inline(always)]
    fn round(v: &mut [u64; 4]) {
        v[0] = v[0].wrapping_add(v[1]);
        v[1] = v[1].rotate_left(13) ^ v[0];
        v[0] = v[0].rotate_left(32);
        v[2] = v[2].wrapping_add(v[3]);
        v[3] = v[3].rotate_left(16) ^ v[2];
        v[0] = v[0].wrapping_add(v[3]);
        v[3] = v[3].rotate_left(21) ^ v[0];
        v[2] = v[2].wrapping_add(v[1]);
        v[1] = v[1].rotate_left(17) ^ v[2];
        v[2] = v[2].rotate_left(32);
    }
    // The last block holds only the length in bytes (mod 256) in its top byte.
    let len = ((words.len() * 8) as u64) << 56;
    for &m in words.iter().chain([len].iter()) {
        v[3] ^= m;
        for _ in 0..C {
            round(&mut v);
        }
        v[0] ^= m;
    }
    v[2] ^= 0xff;
    for _ in 0..D {
        round(&mut v);
    }
    v[0] ^ v[1] ^ v[2] ^ v[3]
}

/// Per-address budgets and the token secret.
pub(super) struct Validation {
    /// Tracked addresses' entries; a slot is reused when its address is evicted, so the
    /// vector never holds more than `capacity`, and every slot is tracked and in `table`.
    slots: Vec<Entry>,
    /// Linear-probing table of slot numbers (`EMPTY` marks a free position), a power of two
    /// long and at most half full; an entry's home position is its key's hash under
    /// `hash_keys`, masked. Removal shifts the chain back (no tombstones), so a probe stops
    /// at the first free position.
    table: Vec<u32>,
    /// SipHash key for `table`, derived from `secret` (separate from the token use).
    hash_keys: (u64, u64),
    /// The key last looked up or inserted and its slot (`EMPTY`: none), kept exact: the
    /// evicted key is forgotten here when its slot goes to another address.
    recent: Cell<(Key, u32)>,
    capacity: usize,
    secret: [u8; 32],
    tick: u64,
}

impl core::fmt::Debug for Validation {
    fn fmt(&self, f: &mut core::fmt::Formatter<'_>) -> core::fmt::Result {
        f.debug_struct("Validation")
            .field("tracked", &self.slots.len())
            .field("capacity", &self.capacity)
            .finish_non_exhaustive()
    }
}

impl Validation {
    /// At most `capacity` addresses (at least 1); tokens keyed with `secret`.
    pub(super) fn new(capacity: usize, secret: [u8; 32]) -> Self {
        Validation {
            slots: Vec::new(),
            table: Vec::new(),
            hash_keys: hash_keys(&secret),
            recent: Cell::new((Key(0, 0), EMPTY)),
            // Slots are `u32` below `EMPTY`: no node tracks four billion addresses.
            capacity: capacity.clamp(1, EMPTY as usize),
            secret,
            tick: 0,
        }
    }

    /// Addresses tracked (validated or not).
    #[cfg(test)]
    pub(super) fn len(&self) -> usize {
        self.slots.len()
    }

    /// The slot of `key`, if tracked.
    #[inline]
    fn slot(&self, key: Key) -> Option<usize> {
        let (k, i) = self.recent.get();
        if k == key && i != EMPTY {
            return Some(i as usize);
        }
        let (_, i) = self.find(key, key.hash(self.hash_keys) as u32)?;
        self.recent.set((key, i));
        Some(i as usize)
    }

    /// `key`'s position in `table` and its slot, if tracked; `hash` is `key`'s.
    #[inline]
    fn find(&self, key: Key, hash: u32) -> Option<(usize, u32)> {
        if self.table.is_empty() {
            return None;
        }
        let mask = self.table.len() - 1;
        let mut p = hash as usize & mask;
        loop {
            let i = self.table[p];
            if i == EMPTY {
                return None;
            }
            if self.slots[i as usize].key == key {
                return Some((p, i));
            }
            p = (p + 1) & mask;
        }
    }

    /// Puts slot `i` (whose entry holds its key) into `table`, growing the table first if
    /// it would be more than half full.
    fn index(&mut self, i: usize) {
        if self.slots.len() * 2 > self.table.len() {
            // Twice the tracked count, rounded up: at most half full after the rebuild.
            let len = (self.slots.len() * 2).next_power_of_two().max(8);
            self.table = vec![EMPTY; len];
            for j in 0..self.slots.len() {
                self.place(j);
            }
        } else {
            self.place(i);
        }
    }

    /// Puts slot `i` at the first free position from its home (the table has one).
    fn place(&mut self, i: usize) {
        let mask = self.table.len() - 1;
        let mut p = self.slots[i].hash as usize & mask;
        while self.table[p] != EMPTY {
            p = (p + 1) & mask;
        }
        // Slots are below `capacity`, itself below `EMPTY` (see `new`).
        self.table[p] = i as u32;
    }

    /// Frees position `p` of `table`, moving later members of its probe chain back so that
    /// every tracked key stays reachable from its home without tombstones.
    fn unplace(&mut self, mut p: usize) {
        let mask = self.table.len() - 1;
        let mut q = p;
        loop {
            q = (q + 1) & mask;
            let i = self.table[q];
            if i == EMPTY {
                break;
            }
            let home = self.slots[i as usize].hash as usize & mask;
            // The entry at `q` may move to `p` unless its home lies cyclically in (p, q].
            if (q.wrapping_sub(home) & mask) >= (q.wrapping_sub(p) & mask) {
                self.table[p] = i;
                p = q;
            }
        }
        self.table[p] = EMPTY;
    }

    fn get(&self, addr: &SocketAddr) -> Option<&Entry> {
        self.slot(Key::of(addr)).map(|i| &self.slots[i])
    }

    fn entry(&mut self, addr: SocketAddr) -> &mut Entry {
        self.tick += 1;
        let tick = self.tick;
        let key = Key::of(&addr);
        let (k, i) = self.recent.get();
        let i = if k == key && i != EMPTY {
            i as usize
        } else {
            let hash = key.hash(self.hash_keys) as u32;
            if let Some((_, i)) = self.find(key, hash) {
                self.recent.set((key, i));
                i as usize
            } else {
                let i = if self.slots.len() >= self.capacity {
                    self.evict()
                } else {
                    self.slots.push(Entry::default());
                    self.slots.len() - 1
                };
                self.slots[i].key = key;
                self.slots[i].hash = hash;
                self.index(i);
                self.recent.set((key, i as u32));
                i
            }
        };
        let e = &mut self.slots[i];
        e.last = tick;
        e
    }

    /// Forgets the least recently used unvalidated address, or if every tracked address is
    /// validated, the least recently used one; returns its slot, reset for a new address.
    fn evict(&mut self) -> usize {
        let victim = self
            .slots
            .iter()
            .enumerate()
            .min_by_key(|(_, e)| (e.validated, e.last))
            .map(|(i, _)| i)
            .unwrap_or(0);
        let Entry { key: k, hash, .. } = self.slots[victim];
        if let Some((p, _)) = self.find(k, hash) {
            self.unplace(p);
        }
        if self.recent.get().0 == k {
            self.recent.set((Key(0, 0), EMPTY));
        }
        self.slots[victim] = Entry::default();
        victim
    }

    /// `bytes` arrived from `addr` (counted before the datagram is even decoded).
    pub(super) fn received(&mut self, addr: SocketAddr, bytes: usize) {
        let e = self.entry(addr);
        e.received = e.received.saturating_add(bytes as u64);
    }

    /// Whether `addr` has proven it receives what is sent to it.
    pub(super) fn is_validated(&self, addr: &SocketAddr) -> bool {
        self.get(addr).is_some_and(|e| e.validated)
    }

    /// Marks `addr` validated.
    pub(super) fn validate(&mut self, addr: SocketAddr) {
        self.entry(addr).validated = true;
    }

    /// Bytes that may still be sent to `addr` as replies: `None` when unlimited (validated).
    pub(super) fn allowance(&self, addr: &SocketAddr) -> Option<usize> {
        match self.get(addr) {
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

/// The table's SipHash key: the first half of a Poly1305 tag under `secret` with a nonce no
/// token uses (family byte 0) and its own associated data, so the key is as secret as the
/// tokens and still a separate use of the secret.
fn hash_keys(secret: &[u8; 32]) -> (u64, u64) {
    let cipher = XChaCha20Poly1305::new(secret.into());
    let mut empty: [u8; 0] = [];
    // Invariant: encryption only fails for plaintexts longer than 2^38 bytes.
    let tag = cipher
        .encrypt_in_place_detached(&XNonce::default(), b"shoal index key v1", &mut empty)
        .expect("empty plaintext is within the AEAD limit");
    let mut k = [0u8; 8];
    k.copy_from_slice(&tag[..8]);
    let k0 = u64::from_le_bytes(k);
    k.copy_from_slice(&tag[8..16]);
    (k0, u64::from_le_bytes(k))
}

#[cfg(test)]
mod tests {
    use super::*;
    use core::net::SocketAddrV6;
    use proptest::prelude::*;

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

    #[test]
    fn addresses_sharing_a_cache_line_keep_their_own_budgets() {
        let line = Key::of(&a(1)).line();
        let twin = (2..10_000)
            .map(a)
            .find(|b| Key::of(b).line() == line)
            .expect("32 lines: some port collides");
        let mut v = Validation::new(8, [1; 32]);
        v.received(a(1), 10);
        v.received(twin, 100);
        v.validate(twin);
        for _ in 0..3 {
            assert_eq!(v.allowance(&a(1)), Some(30));
            assert_eq!(v.allowance(&twin), None);
            assert!(!v.is_validated(&a(1)));
            assert!(v.is_validated(&twin));
        }
        v.sent(a(1), 30);
        assert_eq!(v.allowance(&a(1)), Some(0));
        assert_eq!(v.len(), 2);
    }

    /// Every tracked slot sits in the table exactly once, where a probe from its key's home
    /// finds it; the table is at most half full.
    fn assert_index_exact(v: &Validation) {
        let placed = v.table.iter().filter(|&&i| i != EMPTY).count();
        assert_eq!(placed, v.len(), "table holds every tracked slot once");
        assert!(v.len() * 2 <= v.table.len() || v.len() == 0);
        for (i, e) in v.slots.iter().enumerate() {
            assert_eq!(e.hash, e.key.hash(v.hash_keys) as u32);
            assert_eq!(
                v.find(e.key, e.hash).map(|(_, s)| s as usize),
                Some(i),
                "{:?}",
                e.key
            );
        }
    }

    #[test]
    fn the_index_hash_is_siphash() {
        // `sip::<2, 4>` against std's (deprecated but reference) SipHash-2-4 of the same 32
        // bytes: the rounds, constants and length block are right, so 1-3 is SipHash-1-3.
        let keys = [
            (0, 0),
            (0x0706_0504_0302_0100, 0x0f0e_0d0c_0b0a_0908),
            (u64::MAX, 1),
        ];
        let words: [&[u64]; 5] = [
            &[0; 4],
            &[1, 2, 3, 4],
            &[u64::MAX, 0, 7 << 56, 0x1234_5678_9abc_def0],
            &[0],
            &[0x0a00_0001_0000_1f0a],
        ];
        for k in keys {
            for w in words {
                let bytes: Vec<u8> = w.iter().flat_map(|x| x.to_le_bytes()).collect();
                #[allow(deprecated)]
                let mut h = core::hash::SipHasher::new_with_keys(k.0, k.1);
                core::hash::Hasher::write(&mut h, &bytes);
                assert_eq!(sip::<2, 4>(k, w), core::hash::Hasher::finish(&h));
            }
        }
        // The position hash depends on the secret: other secrets, other positions.
        let key = Key::of(&a(1));
        assert_ne!(key.hash(hash_keys(&[1; 32])), key.hash(hash_keys(&[2; 32])));
    }

    #[test]
    fn the_table_is_sized_from_the_tracked_count_not_the_capacity() {
        let mut v = Validation::new(20_000, [1; 32]);
        assert!(v.table.is_empty());
        for i in 1..=3 {
            v.received(a(i), 1);
        }
        assert_eq!(v.table.len(), 8);
        for i in 4..=1000 {
            v.received(a(i), 1);
        }
        assert_eq!(v.table.len(), 2048);
        assert_index_exact(&v);
    }

    #[test]
    fn addresses_colliding_in_the_cache_keep_exact_budgets_through_eviction() {
        // 300 addresses all on one line of the former cache, at capacities from 1 to 70 (the
        // table wraps, grows, and shifts chains back on every eviction), against the
        // one-map model: budgets, validation and the tracked set stay exact, and the index
        // finds every tracked address and nothing else.
        let line = Key::of(&a(1)).line();
        let twins: Vec<SocketAddr> = (1..u16::MAX)
            .map(a)
            .filter(|b| Key::of(b).line() == line)
            .take(300)
            .collect();
        assert_eq!(twins.len(), 300);
        for capacity in [1, 2, 3, 5, 8, 13, 64, 70] {
            let mut v = Validation::new(capacity, [9; 32]);
            let mut m = Model {
                entries: BTreeMap::new(),
                capacity,
                tick: 0,
            };
            // Twice through: the second pass reinserts addresses evicted in the first.
            for round in 0..2 {
                for (n, &b) in twins.iter().enumerate() {
                    let bytes = n + 1 + round;
                    v.received(b, bytes);
                    m.entry(b).received += bytes as u64;
                    if n % 7 == 0 {
                        v.validate(b);
                        m.entry(b).validated = true;
                    }
                    // Ask about an older twin too, so recency is not just insertion order.
                    let old = twins[(n * 13) % (n + 1)];
                    v.sent(old, 1);
                    let e = m.entry(old);
                    e.sent += 1;
                    assert_eq!(v.len(), m.entries.len());
                    assert!(v.len() <= capacity);
                    assert_index_exact(&v);
                }
                for b in &twins {
                    assert_eq!(v.allowance(b), m.allowance(b), "{b} at {capacity}");
                    let tracked = m.entries.get(b);
                    assert_eq!(v.is_validated(b), tracked.is_some_and(|e| e.validated));
                    assert_eq!(v.get(b).is_some(), tracked.is_some(), "{b} at {capacity}");
                }
            }
        }
    }

    /// The previous implementation, kept as the reference: one `BTreeMap<SocketAddr, _>`
    /// searched on every call.
    struct Model {
        entries: BTreeMap<SocketAddr, Entry>,
        capacity: usize,
        tick: u64,
    }

    impl Model {
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

        fn allowance(&self, addr: &SocketAddr) -> Option<usize> {
            match self.entries.get(addr) {
                Some(e) if e.validated => None,
                Some(e) => {
                    let cap = e.received.saturating_mul(AMPLIFICATION);
                    Some(usize::try_from(cap.saturating_sub(e.sent)).unwrap_or(usize::MAX))
                }
                None => Some(0),
            }
        }
    }

    /// Addresses that differ in one field each: family, IP, port, IPv6 flow label, scope id.
    fn pool() -> Vec<SocketAddr> {
        let ip6 = "fe80::1".parse().unwrap();
        vec![
            a(1),
            a(2),
            SocketAddr::from(([10, 0, 0, 2], 1)),
            SocketAddr::from(([0, 0, 0, 0], 0)),
            SocketAddr::from(([255, 255, 255, 255], 65535)),
            "[::ffff:10.0.0.1]:1".parse().unwrap(),
            "[::1]:1".parse().unwrap(),
            SocketAddr::V6(SocketAddrV6::new(ip6, 1, 0, 0)),
            SocketAddr::V6(SocketAddrV6::new(ip6, 1, 7, 0)),
            SocketAddr::V6(SocketAddrV6::new(ip6, 1, 0, 3)),
            SocketAddr::V6(SocketAddrV6::new(ip6, 2, 0, 3)),
            SocketAddr::V6(SocketAddrV6::new(ip6, 1, u32::MAX, u32::MAX)),
        ]
    }

    #[derive(Clone, Debug)]
    enum Op {
        Received(usize, usize),
        Validate(usize),
        Sent(usize, usize),
    }

    fn op() -> impl Strategy<Value = Op> {
        prop_oneof![
            4 => (0..12usize, 0..2000usize).prop_map(|(i, b)| Op::Received(i, b)),
            1 => (0..12usize).prop_map(Op::Validate),
            3 => (0..12usize, 0..6000usize).prop_map(|(i, b)| Op::Sent(i, b)),
        ]
    }

    proptest! {
        /// Any sequence of calls, at any capacity, answers every address exactly as the
        /// previous one-map implementation did: budgets, validation, what is tracked.
        #[test]
        fn answers_as_the_one_map_model(
            capacity in 1..8usize,
            ops in proptest::collection::vec(op(), 0..200),
        ) {
            let pool = pool();
            let mut v = Validation::new(capacity, [1; 32]);
            let mut m = Model { entries: BTreeMap::new(), capacity, tick: 0 };
            for op in ops {
                match op {
                    Op::Received(i, b) => {
                        v.received(pool[i], b);
                        let e = m.entry(pool[i]);
                        e.received = e.received.saturating_add(b as u64);
                    }
                    Op::Validate(i) => {
                        v.validate(pool[i]);
                        m.entry(pool[i]).validated = true;
                    }
                    Op::Sent(i, b) => {
                        v.sent(pool[i], b);
                        let e = m.entry(pool[i]);
                        e.sent = e.sent.saturating_add(b as u64);
                    }
                }
                prop_assert_eq!(v.len(), m.entries.len());
                for addr in &pool {
                    prop_assert_eq!(v.allowance(addr), m.allowance(addr), "{}", addr);
                    prop_assert_eq!(
                        v.is_validated(addr),
                        m.entries.get(addr).is_some_and(|e| e.validated)
                    );
                }
            }
        }
    }
}
