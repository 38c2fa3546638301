//! The network layer's conformance suite on tokio's multi-thread runtime (`#[tokio::main]`'s
//! default): every node and server then runs on a network thread of its own and calls are
//! handed over to it (docs/adapters.md), so every behaviour is checked through that path too.

fn block_on<F: std::future::Future>(future: F) -> F::Output {
    tokio::runtime::Builder::new_multi_thread()
        .worker_threads(2)
        .enable_all()
        .build()
        .expect("a tokio runtime")
        .block_on(future)
}

shoal_net::conformance_suite!(shoal_tokio::Tokio, block_on);
