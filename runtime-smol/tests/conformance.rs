//! The network layer's conformance suite on smol: the test's future on `smol::block_on`, the
//! background tasks on smol's global executor.

shoal_net::conformance_suite!(shoal_smol::Smol, smol::block_on);
