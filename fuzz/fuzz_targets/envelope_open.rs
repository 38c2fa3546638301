//! The authenticated envelope every keyed gossip datagram passes through first.
//!
//! Arbitrary bytes into `Keyring::open`: never a panic, and nothing opens that was not sealed
//! with a key on the ring. Then a seal/open round trip of the same bytes as plaintext, and
//! any single-byte change of the sealed datagram must be refused.
#![no_main]

use libfuzzer_sys::fuzz_target;
use rand_core::{impls, RngCore};
use shoal_core::envelope::{Key, Keyring, OVERHEAD};

/// A deterministic RNG for nonces (the fuzzer must be reproducible).
struct Counter(u64);
impl RngCore for Counter {
    fn next_u32(&mut self) -> u32 {
        self.next_u64() as u32
    }
    fn next_u64(&mut self) -> u64 {
        self.0 = self.0.wrapping_add(0x9e37_79b9_7f4a_7c15);
        self.0
    }
    fn fill_bytes(&mut self, d: &mut [u8]) {
        impls::fill_bytes_via_next(self, d)
    }
    fn try_fill_bytes(&mut self, d: &mut [u8]) -> Result<(), rand_core::Error> {
        self.fill_bytes(d);
        Ok(())
    }
}

fuzz_target!(|data: &[u8]| {
    let old = Key::new([1; 32]);
    let new = Key::new([2; 32]);
    let mut ring = Keyring::new(new.clone());
    ring.add_key(old);
    // Hostile bytes: refused or (astronomically unlikely) a real forgery; never a panic.
    if let Ok(plain) = ring.open(data) {
        assert_eq!(plain.len() + OVERHEAD, data.len());
    }
    // Round trip with the primary key.
    let mut rng = Counter(data.len() as u64);
    let Ok(sealed) = ring.seal(&mut rng, data) else {
        return;
    };
    assert_eq!(sealed.len(), data.len() + OVERHEAD);
    assert_eq!(ring.open(&sealed).expect("own datagram opens"), data);
    // A ring without that key refuses it.
    let stranger = Keyring::new(Key::new([3; 32]));
    assert!(stranger.open(&sealed).is_err());
    // Any single changed byte is refused.
    if !sealed.is_empty() {
        let mut bad = sealed.clone();
        let at = data.first().copied().unwrap_or(0) as usize % bad.len();
        bad[at] ^= 0x5a;
        assert!(ring.open(&bad).is_err());
    }
});
