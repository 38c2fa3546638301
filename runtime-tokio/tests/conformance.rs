//! The network layer's conformance suite on tokio (current-thread runtime per test, as
//! `#[tokio::test]` has).

fn block_on<F: std::future::Future>(future: F) -> F::Output {
    tokio::runtime::Builder::new_current_thread()
        .enable_all()
        .build()
        .expect("a tokio runtime")
        .block_on(future)
}

shoal_net::conformance_suite!(shoal_tokio::Tokio, block_on);
