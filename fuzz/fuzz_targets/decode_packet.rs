//! Raw bytes into the gossip decoder: never panics, and a packet that decodes re-encodes to
//! one that decodes to the same packet.
#![no_main]

use libfuzzer_sys::fuzz_target;

fuzz_target!(|data: &[u8]| {
    let _ = shoal_fuzz::check_round_trip(data);
    // The decoder must also honour a small cap before reading anything.
    if data.len() > 1200 {
        assert!(matches!(
            shoal_core::wire::decode(data, 1200),
            Err(shoal_core::PacketError::TooLarge { .. })
        ));
    }
});
