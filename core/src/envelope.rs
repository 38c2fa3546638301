//! The gossip envelope: authenticated encryption of whole datagrams under a cluster key, with
//! a keyring for rotation.
//!
//! Pure and sans-IO like the rest of the core: the 24-byte nonce is drawn from an injected
//! [`RngCore`], never from the OS. Every datagram is encrypted and authenticated with
//! XChaCha20-Poly1305 (its 192-bit random nonces make collisions negligible without any nonce
//! state, which suits datagrams sent by many tasks and processes under one key).
//!
//! ## Format
//! ```text
//! [version 1][key id 4][nonce 24][ciphertext (len of plaintext)][tag 16]
//! ```
//! * `version` is [`ENVELOPE_VERSION`]. It doubles as a magic byte: the first byte of a
//!   plaintext Shoal packet is the wire version (1), so a sealed and a plain datagram never
//!   look alike and a node with a key drops plaintext with [`EnvelopeError::BadVersion`].
//! * `key id` is [`KeyId`]: the first 4 bytes of a fixed, key-derived fingerprint, so the
//!   receiver picks the key without trial decryption (and tries every key sharing the id on a
//!   collision).
//! * The associated data is the first 5 bytes (version and key id): both are authenticated,
//!   so neither can be altered without [`EnvelopeError::Unauthenticated`]. The cluster name
//!   is *not* in the associated data: it is inside the plaintext (every packet header carries
//!   the cluster hash) and the core checks it after opening, so two clusters sharing a key
//!   still ignore each other.
//!
//! * The nonce of a datagram sealed by a node is its freshness [`Stamp`]: `life` (8 bytes),
//!   `boot` (8) and `counter` (8), big-endian. It is unique per process (the counter never
//!   repeats within a boot and the boot is 64 random bits), which is all XChaCha20 needs, and
//!   being the nonce it is authenticated: the receiver's [`crate::freshness::ReplayGuard`]
//!   drops a replayed datagram ([`Keyring::open_stamped`] returns the stamp).
//!
//! ## What it does not do
//! * Plaintext mode: with no keyring, datagrams travel in the clear and anyone who can reach
//!   the gossip port can join or forge membership. That is for trusted networks and
//!   development only.
//!
//! ## Rotation
//! Every node seals with its primary key and opens with any key on its ring. To rotate without
//! a partition: [`Keyring::add_key`] the new key on every node, then [`Keyring::use_primary`]
//! it on every node, then [`Keyring::remove_key`] the old one everywhere.

use crate::freshness::Stamp;
use crate::PacketError;
use chacha20poly1305::aead::{AeadInPlace, KeyInit};
use chacha20poly1305::{Tag, XChaCha20Poly1305, XNonce};
use core::fmt;
use rand_core::RngCore;

/// The envelope format version, first byte of every sealed datagram.
///
/// `0xE2` since the nonce carries a freshness [`Stamp`] (`0xE1` had a random nonce).
pub const ENVELOPE_VERSION: u8 = 0xE2;
/// Key length in bytes (256-bit keys).
pub const KEY_LEN: usize = 32;
/// Key id length in bytes.
pub const KEY_ID_LEN: usize = 4;
/// Nonce length in bytes (XChaCha20's extended nonce).
pub const NONCE_LEN: usize = 24;
/// Authentication tag length in bytes (Poly1305).
pub const TAG_LEN: usize = 16;
/// Header length: version and key id, also the associated data.
pub const HEADER_LEN: usize = 1 + KEY_ID_LEN;
/// Bytes a sealed datagram adds to its plaintext: header, nonce and tag. A node whose
/// datagrams are sealed must build plaintexts of at most `mtu - OVERHEAD` bytes.
pub const OVERHEAD: usize = HEADER_LEN + NONCE_LEN + TAG_LEN;
/// Largest sealed datagram (the largest UDP payload over IPv4); larger input is refused on
/// both sides before any cryptography.
pub const MAX_SEALED: usize = crate::wire::MAX_DATAGRAM;

/// Domain label for the key fingerprint, so the fingerprint can never equal a real tag.
const KEY_ID_LABEL: &[u8] = b"shoal envelope key id v1";

/// Why a datagram could not be opened (or a plaintext sealed). Checked in this order: size,
/// version, key id, authentication.
#[derive(Debug, Clone, PartialEq, Eq, thiserror::Error)]
pub enum EnvelopeError {
    /// Shorter than the envelope overhead: cannot be a sealed datagram.
    #[error("sealed datagram of {len} bytes is shorter than the {OVERHEAD}-byte envelope")]
    TooShort {
        /// Its length.
        len: usize,
    },
    /// Longer than [`MAX_SEALED`] once sealed.
    #[error("datagram of {len} bytes exceeds the envelope size cap")]
    TooLarge {
        /// The length that was refused (sealed length for `open`, plaintext for `seal`).
        len: usize,
    },
    /// First byte is not [`ENVELOPE_VERSION`]: plaintext, another format or garbage.
    #[error("unknown envelope version {0:#04x}")]
    BadVersion(u8),
    /// No key on the ring has this id: the sender uses a key this node does not know.
    #[error("no key with id {0:?}")]
    UnknownKey(KeyId),
    /// A key matched the id but the tag did not verify: tampered, corrupted or forged.
    #[error("datagram failed authentication")]
    Unauthenticated,
}

impl From<EnvelopeError> for PacketError {
    /// Maps envelope failures onto the node's drop reasons, so one counter table covers both.
    fn from(e: EnvelopeError) -> Self {
        match e {
            EnvelopeError::TooShort { .. } => PacketError::Truncated,
            EnvelopeError::TooLarge { len } => PacketError::TooLarge { len },
            EnvelopeError::BadVersion(v) => PacketError::Version(v),
            EnvelopeError::UnknownKey(_) | EnvelopeError::Unauthenticated => {
                PacketError::Unauthenticated
            }
        }
    }
}

/// A key's public 4-byte identifier, carried in clear in every sealed datagram.
#[derive(Clone, Copy, PartialEq, Eq, PartialOrd, Ord, Hash)]
pub struct KeyId(pub [u8; KEY_ID_LEN]);

impl fmt::Debug for KeyId {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        for b in self.0 {
            write!(f, "{b:02x}")?;
        }
        Ok(())
    }
}

/// A 256-bit cluster key. Its `Debug` shows only the [`KeyId`], never the secret.
///
/// The id is derived, not chosen: the first 4 bytes of the Poly1305 tag of sealing an empty
/// message with a fixed label and the all-zero nonce under the key. Unlike a plain
/// (non-cryptographic) hash, this fingerprint reveals nothing usable about the key.
#[derive(Clone, PartialEq, Eq)]
pub struct Key {
    bytes: [u8; KEY_LEN],
    id: KeyId,
}

impl Key {
    /// A key from 32 secret bytes (for example from a secret store; generate them with a
    /// cryptographic RNG).
    pub fn new(bytes: [u8; KEY_LEN]) -> Self {
        let cipher = XChaCha20Poly1305::new(&bytes.into());
        let mut empty: [u8; 0] = [];
        // Invariant: encryption only fails for plaintexts longer than 2^38 bytes.
        let tag = cipher
            .encrypt_in_place_detached(&XNonce::default(), KEY_ID_LABEL, &mut empty)
            .expect("empty plaintext is within the AEAD limit");
        let mut id = [0u8; KEY_ID_LEN];
        id.copy_from_slice(&tag[..KEY_ID_LEN]);
        Key {
            bytes,
            id: KeyId(id),
        }
    }

    /// A fresh random key drawn from `rng` (use a cryptographic, OS-seeded generator).
    pub fn generate<R: RngCore + ?Sized>(rng: &mut R) -> Self {
        let mut bytes = [0u8; KEY_LEN];
        rng.fill_bytes(&mut bytes);
        Key::new(bytes)
    }

    /// The key's public id.
    pub fn id(&self) -> KeyId {
        self.id
    }

    /// The secret bytes (to persist or distribute the key).
    pub fn as_bytes(&self) -> &[u8; KEY_LEN] {
        &self.bytes
    }

    fn cipher(&self) -> XChaCha20Poly1305 {
        XChaCha20Poly1305::new(&self.bytes.into())
    }
}

impl From<[u8; KEY_LEN]> for Key {
    fn from(bytes: [u8; KEY_LEN]) -> Self {
        Key::new(bytes)
    }
}

impl fmt::Debug for Key {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        write!(f, "Key({:?})", self.id)
    }
}

/// A keyring operation that was refused; the ring is unchanged.
#[derive(Debug, Clone, PartialEq, Eq, thiserror::Error)]
pub enum KeyringError {
    /// The primary key cannot be removed: make another key primary first.
    #[error("cannot remove the primary key {0:?}; make another key primary first")]
    RemovePrimary(KeyId),
    /// The key to remove is not on the ring.
    #[error("key {0:?} is not on the ring")]
    NotFound(KeyId),
}

/// The keys a node seals and opens gossip with: one primary (seals everything) and any number
/// of others (still accepted when opening, for rotation).
#[derive(Clone, PartialEq, Eq)]
pub struct Keyring {
    primary: Key,
    others: Vec<Key>,
}

impl fmt::Debug for Keyring {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.debug_struct("Keyring")
            .field("primary", &self.primary.id)
            .field(
                "others",
                &self.others.iter().map(|k| k.id).collect::<Vec<_>>(),
            )
            .finish()
    }
}

impl Keyring {
    /// A ring holding only `primary`.
    pub fn new(primary: Key) -> Self {
        Keyring {
            primary,
            others: Vec::new(),
        }
    }

    /// A ring sealing with `primary` and also opening with `others` (duplicates ignored).
    pub fn with_keys(primary: Key, others: impl IntoIterator<Item = Key>) -> Self {
        let mut ring = Keyring::new(primary);
        for k in others {
            ring.add_key(k);
        }
        ring
    }

    /// The envelope overhead in bytes; see [`OVERHEAD`].
    pub const fn overhead() -> usize {
        OVERHEAD
    }

    /// The key that seals outgoing datagrams.
    pub fn primary(&self) -> &Key {
        &self.primary
    }

    /// Every key, primary first.
    pub fn keys(&self) -> impl Iterator<Item = &Key> + '_ {
        core::iter::once(&self.primary).chain(self.others.iter())
    }

    /// Whether `key` is on the ring.
    pub fn contains(&self, key: &Key) -> bool {
        self.keys().any(|k| k == key)
    }

    /// Accepts `key` when opening (first rotation step). Adding a key already present does
    /// nothing.
    pub fn add_key(&mut self, key: Key) {
        if !self.contains(&key) {
            self.others.push(key);
        }
    }

    /// Seals with `key` from now on (second rotation step); the previous primary stays on the
    /// ring for opening. `key` is added if it was not on the ring.
    pub fn use_primary(&mut self, key: Key) {
        if key == self.primary {
            return;
        }
        self.others.retain(|k| *k != key);
        let old = core::mem::replace(&mut self.primary, key);
        self.others.insert(0, old);
    }

    /// Stops accepting `key` (last rotation step). The primary cannot be removed.
    pub fn remove_key(&mut self, key: &Key) -> Result<(), KeyringError> {
        if *key == self.primary {
            return Err(KeyringError::RemovePrimary(key.id));
        }
        let before = self.others.len();
        self.others.retain(|k| k != key);
        if self.others.len() == before {
            return Err(KeyringError::NotFound(key.id));
        }
        Ok(())
    }

    /// Seals `plaintext` under the primary key with a nonce drawn from `rng`. Refuses, before
    /// any work, a plaintext whose sealed form would exceed [`MAX_SEALED`].
    pub fn seal<R: RngCore + ?Sized>(
        &self,
        rng: &mut R,
        plaintext: &[u8],
    ) -> Result<Vec<u8>, EnvelopeError> {
        let mut out = Vec::with_capacity(plaintext.len() + OVERHEAD);
        self.seal_into(rng, plaintext, &mut out)?;
        Ok(out)
    }

    /// Like [`Keyring::seal`], writing into `out` (cleared first) to reuse its allocation.
    pub fn seal_into<R: RngCore + ?Sized>(
        &self,
        rng: &mut R,
        plaintext: &[u8],
        out: &mut Vec<u8>,
    ) -> Result<(), EnvelopeError> {
        if plaintext.len() > MAX_SEALED - OVERHEAD {
            return Err(EnvelopeError::TooLarge {
                len: plaintext.len(),
            });
        }
        let mut nonce = [0u8; NONCE_LEN];
        rng.fill_bytes(&mut nonce);
        self.seal_with_nonce(nonce, plaintext, out)
    }

    /// Seals `plaintext` under the primary key with `stamp` as the nonce (see the module
    /// docs), writing into `out` (cleared first). The caller must never reuse a stamp under
    /// the same key: a node counts up from 1 within a random boot id.
    pub fn seal_stamped_into(
        &self,
        stamp: Stamp,
        plaintext: &[u8],
        out: &mut Vec<u8>,
    ) -> Result<(), EnvelopeError> {
        if plaintext.len() > MAX_SEALED - OVERHEAD {
            return Err(EnvelopeError::TooLarge {
                len: plaintext.len(),
            });
        }
        let mut nonce = [0u8; NONCE_LEN];
        nonce[..8].copy_from_slice(&stamp.life.to_be_bytes());
        nonce[8..16].copy_from_slice(&stamp.boot.to_be_bytes());
        nonce[16..].copy_from_slice(&stamp.counter.to_be_bytes());
        self.seal_with_nonce(nonce, plaintext, out)
    }

    fn seal_with_nonce(
        &self,
        nonce: [u8; NONCE_LEN],
        plaintext: &[u8],
        out: &mut Vec<u8>,
    ) -> Result<(), EnvelopeError> {
        out.clear();
        out.reserve(plaintext.len() + OVERHEAD);
        out.push(ENVELOPE_VERSION);
        out.extend_from_slice(&self.primary.id.0);
        out.extend_from_slice(&nonce);
        out.extend_from_slice(plaintext);
        let (head, body) = out.split_at_mut(HEADER_LEN + NONCE_LEN);
        // Invariant: the plaintext is at most MAX_SEALED bytes, far below the 2^38-byte
        // AEAD limit, so encryption cannot fail.
        let tag = self
            .primary
            .cipher()
            .encrypt_in_place_detached(&XNonce::from(nonce), &head[..HEADER_LEN], body)
            .expect("plaintext within the AEAD limit");
        out.extend_from_slice(&tag);
        Ok(())
    }

    /// Opens a sealed datagram: size, version and key id are checked before any cryptography;
    /// never panics, whatever the bytes.
    pub fn open(&self, bytes: &[u8]) -> Result<Vec<u8>, EnvelopeError> {
        self.open_stamped(bytes).map(|(plain, _)| plain)
    }

    /// Like [`Keyring::open`], also returning the authenticated freshness [`Stamp`] read from
    /// the nonce (meaningful only for datagrams sealed with [`Keyring::seal_stamped_into`]).
    pub fn open_stamped(&self, bytes: &[u8]) -> Result<(Vec<u8>, Stamp), EnvelopeError> {
        if bytes.len() < OVERHEAD {
            return Err(EnvelopeError::TooShort { len: bytes.len() });
        }
        if bytes.len() > MAX_SEALED {
            return Err(EnvelopeError::TooLarge { len: bytes.len() });
        }
        if bytes[0] != ENVELOPE_VERSION {
            return Err(EnvelopeError::BadVersion(bytes[0]));
        }
        let mut id = [0u8; KEY_ID_LEN];
        id.copy_from_slice(&bytes[1..HEADER_LEN]);
        let id = KeyId(id);
        let mut nonce = [0u8; NONCE_LEN];
        nonce.copy_from_slice(&bytes[HEADER_LEN..HEADER_LEN + NONCE_LEN]);
        let word = |i: usize| {
            let mut w = [0u8; 8];
            w.copy_from_slice(&nonce[i..i + 8]);
            u64::from_be_bytes(w)
        };
        let stamp = Stamp {
            life: word(0),
            boot: word(8),
            counter: word(16),
        };
        let nonce = XNonce::from(nonce);
        let body = &bytes[HEADER_LEN + NONCE_LEN..];
        let (ciphertext, tag) = body.split_at(body.len() - TAG_LEN);
        let tag = Tag::clone_from_slice(tag);
        let aad = &bytes[..HEADER_LEN];
        let mut found = false;
        let mut buf = Vec::with_capacity(ciphertext.len());
        for key in self.keys().filter(|k| k.id == id) {
            found = true;
            buf.clear();
            buf.extend_from_slice(ciphertext);
            if key
                .cipher()
                .decrypt_in_place_detached(&nonce, aad, &mut buf, &tag)
                .is_ok()
            {
                return Ok((buf, stamp));
            }
        }
        if found {
            Err(EnvelopeError::Unauthenticated)
        } else {
            Err(EnvelopeError::UnknownKey(id))
        }
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use proptest::prelude::*;
    use rand_chacha::ChaCha8Rng;
    use rand_core::SeedableRng;

    fn rng() -> ChaCha8Rng {
        ChaCha8Rng::seed_from_u64(0xE1)
    }

    fn key(b: u8) -> Key {
        Key::new([b; KEY_LEN])
    }

    #[test]
    fn round_trip_and_overhead() {
        let ring = Keyring::new(key(1));
        let sealed = ring.seal(&mut rng(), b"hello").unwrap();
        assert_eq!(sealed.len(), 5 + OVERHEAD);
        assert_eq!(Keyring::overhead(), 45);
        assert_eq!(sealed[0], ENVELOPE_VERSION);
        assert_eq!(&sealed[1..5], &key(1).id().0);
        assert_eq!(ring.open(&sealed).unwrap(), b"hello");
        // An empty plaintext still seals and opens.
        let sealed = ring.seal(&mut rng(), b"").unwrap();
        assert_eq!(ring.open(&sealed).unwrap(), b"");
    }

    #[test]
    fn stamped_seal_carries_an_authenticated_stamp() {
        let ring = Keyring::new(key(1));
        let stamp = Stamp {
            life: 1_700_000_000,
            boot: 0xdead_beef,
            counter: 42,
        };
        let mut sealed = Vec::new();
        ring.seal_stamped_into(stamp, b"fresh", &mut sealed)
            .unwrap();
        assert_eq!(sealed.len(), 5 + OVERHEAD);
        assert_eq!(
            ring.open_stamped(&sealed).unwrap(),
            (b"fresh".to_vec(), stamp)
        );
        // Rewriting the counter (to pass a replay window) breaks authentication.
        let mut bumped = sealed.clone();
        bumped[HEADER_LEN + NONCE_LEN - 1] ^= 1;
        assert_eq!(ring.open(&bumped), Err(EnvelopeError::Unauthenticated));
    }

    #[test]
    fn nonces_differ_between_seals() {
        let ring = Keyring::new(key(1));
        let mut r = rng();
        let a = ring.seal(&mut r, b"same").unwrap();
        let b = ring.seal(&mut r, b"same").unwrap();
        assert_ne!(a, b);
    }

    #[test]
    fn key_ids_are_stable_and_distinct() {
        assert_eq!(key(1).id(), key(1).id());
        assert_ne!(key(1).id(), key(2).id());
        assert!(!format!("{:?}", key(7)).contains("0707"));
    }

    #[test]
    fn wrong_key_is_unknown_and_forged_id_is_unauthenticated() {
        let a = Keyring::new(key(1));
        let b = Keyring::new(key(2));
        let sealed = a.seal(&mut rng(), b"x").unwrap();
        assert_eq!(b.open(&sealed), Err(EnvelopeError::UnknownKey(key(1).id())));
        // An attacker who copies b's key id still fails authentication.
        let mut forged = sealed.clone();
        forged[1..5].copy_from_slice(&key(2).id().0);
        assert_eq!(b.open(&forged), Err(EnvelopeError::Unauthenticated));
    }

    #[test]
    fn size_and_version_are_checked_first() {
        let ring = Keyring::new(key(1));
        assert_eq!(
            ring.open(&[ENVELOPE_VERSION; 44]),
            Err(EnvelopeError::TooShort { len: 44 })
        );
        assert_eq!(
            ring.open(&vec![ENVELOPE_VERSION; MAX_SEALED + 1]),
            Err(EnvelopeError::TooLarge {
                len: MAX_SEALED + 1
            })
        );
        // A plaintext Shoal packet starts with wire version 1.
        assert_eq!(ring.open(&[1u8; 60]), Err(EnvelopeError::BadVersion(1)));
        let too_big = vec![0u8; MAX_SEALED - OVERHEAD + 1];
        assert!(matches!(
            ring.seal(&mut rng(), &too_big),
            Err(EnvelopeError::TooLarge { .. })
        ));
        let max = vec![0u8; MAX_SEALED - OVERHEAD];
        let sealed = ring.seal(&mut rng(), &max).unwrap();
        assert_eq!(sealed.len(), MAX_SEALED);
        assert_eq!(ring.open(&sealed).unwrap().len(), max.len());
    }

    #[test]
    fn rotation_keeps_old_and_new_talking() {
        let old = key(1);
        let new = key(2);
        let mut rotated = Keyring::new(old.clone());
        rotated.add_key(new.clone());
        rotated.use_primary(new.clone());
        assert_eq!(rotated.primary(), &new);
        assert!(rotated.contains(&old));
        let laggard = Keyring::new(old.clone());
        let mut r = rng();
        // The laggard's datagrams are still accepted by the rotated node.
        let from_laggard = laggard.seal(&mut r, b"old").unwrap();
        assert_eq!(rotated.open(&from_laggard).unwrap(), b"old");
        // The rotated node's datagrams need the new key.
        let from_rotated = rotated.seal(&mut r, b"new").unwrap();
        assert!(matches!(
            laggard.open(&from_rotated),
            Err(EnvelopeError::UnknownKey(_))
        ));
        // Finishing the rotation drops the old key.
        assert_eq!(
            rotated.remove_key(&new),
            Err(KeyringError::RemovePrimary(new.id()))
        );
        rotated.remove_key(&old).unwrap();
        assert_eq!(
            rotated.remove_key(&old),
            Err(KeyringError::NotFound(old.id()))
        );
        assert!(matches!(
            rotated.open(&from_laggard),
            Err(EnvelopeError::UnknownKey(_))
        ));
        assert_eq!(rotated.keys().count(), 1);
    }

    #[test]
    fn use_primary_and_add_key_do_not_duplicate() {
        let mut ring = Keyring::with_keys(key(1), [key(1), key(2), key(2)]);
        assert_eq!(ring.keys().count(), 2);
        ring.use_primary(key(2));
        ring.use_primary(key(2));
        ring.add_key(key(1));
        assert_eq!(ring.keys().count(), 2);
        ring.use_primary(key(3));
        assert_eq!(ring.keys().count(), 3);
        assert_eq!(ring.primary(), &key(3));
    }

    #[test]
    fn key_id_collision_tries_every_matching_key() {
        // Two distinct keys forced to share an id: opening must try both.
        let a = key(1);
        let mut b = key(2);
        b.id = a.id;
        let ring = Keyring::with_keys(a.clone(), [b.clone()]);
        let sealer = Keyring::new(b);
        let sealed = sealer.seal(&mut rng(), b"collide").unwrap();
        assert_eq!(ring.open(&sealed).unwrap(), b"collide");
    }

    #[test]
    fn envelope_errors_map_to_packet_errors() {
        assert_eq!(
            PacketError::from(EnvelopeError::UnknownKey(KeyId([0; 4]))),
            PacketError::Unauthenticated
        );
        assert_eq!(
            PacketError::from(EnvelopeError::TooShort { len: 3 }),
            PacketError::Truncated
        );
    }

    proptest! {
        #![proptest_config(ProptestConfig::with_cases(64))]

        #[test]
        fn any_plaintext_round_trips(data in proptest::collection::vec(any::<u8>(), 0..2000), seed: u64) {
            let ring = Keyring::with_keys(key(3), [key(4)]);
            let sealed = ring.seal(&mut ChaCha8Rng::seed_from_u64(seed), &data).unwrap();
            prop_assert_eq!(sealed.len(), data.len() + OVERHEAD);
            prop_assert_eq!(ring.open(&sealed).unwrap(), data);
        }

        #[test]
        fn any_bit_flip_is_rejected(data in proptest::collection::vec(any::<u8>(), 0..300), bit: usize) {
            let ring = Keyring::new(key(5));
            let sealed = ring.seal(&mut rng(), &data).unwrap();
            let mut flipped = sealed.clone();
            let bit = bit % (flipped.len() * 8);
            flipped[bit / 8] ^= 1 << (bit % 8);
            prop_assert!(ring.open(&flipped).is_err());
        }

        #[test]
        fn any_truncation_or_extension_is_rejected(data in proptest::collection::vec(any::<u8>(), 0..300), cut: usize, extra: u8) {
            let ring = Keyring::new(key(5));
            let sealed = ring.seal(&mut rng(), &data).unwrap();
            let cut = cut % sealed.len();
            prop_assert!(ring.open(&sealed[..cut]).is_err());
            let mut longer = sealed.clone();
            longer.push(extra);
            prop_assert!(ring.open(&longer).is_err());
        }

        #[test]
        fn wrong_key_never_opens(data in proptest::collection::vec(any::<u8>(), 0..300), a: [u8; 32], b: [u8; 32]) {
            prop_assume!(a != b);
            let sealed = Keyring::new(Key::new(a)).seal(&mut rng(), &data).unwrap();
            prop_assert!(Keyring::new(Key::new(b)).open(&sealed).is_err());
        }

        #[test]
        fn arbitrary_bytes_never_panic(bytes in proptest::collection::vec(any::<u8>(), 0..200), tag_first: bool) {
            let ring = Keyring::new(key(6));
            let mut bytes = bytes;
            if tag_first && !bytes.is_empty() {
                bytes[0] = ENVELOPE_VERSION;
                if bytes.len() >= HEADER_LEN {
                    bytes[1..HEADER_LEN].copy_from_slice(&key(6).id().0);
                }
            }
            prop_assert!(ring.open(&bytes).is_err());
        }
    }
}
