//! A client's once-a-second metrics task outlives nothing it should not: when the nodes stop
//! and the client is dropped on tokio's multi-thread runtime (where each node's drivers run
//! on a `shoal-net` thread that ends with the node), the task ends quietly. It used to sleep
//! on the node's network-thread timer and panicked ("A Tokio 1.x context was found, but it is
//! being shutdown") once that thread's runtime shut down. One test in this binary, because it
//! installs a process-wide panic hook.

mod common;

use bytes::Bytes;
use common::director_and_worker;
use std::sync::atomic::{AtomicUsize, Ordering};
use std::time::Duration;

static PANICS: AtomicUsize = AtomicUsize::new(0);

async fn call_then_stop_everything() {
    let pair = director_and_worker(6, "echo", |req: Bytes| async move { Ok(req) }).await;
    // The first finished call starts the metrics task.
    let answer = pair
        .client
        .call_worker("echo", "hi", Some("role=worker"))
        .await
        .unwrap();
    assert_eq!(&answer[..], b"hi");
    pair.worker.shutdown().await.unwrap();
    pair.director.shutdown().await.unwrap();
    drop(pair);
}

#[test]
fn the_metrics_task_ends_quietly_when_the_nodes_stop() {
    let default = std::panic::take_hook();
    std::panic::set_hook(Box::new(move |info| {
        PANICS.fetch_add(1, Ordering::SeqCst);
        default(info);
    }));
    let app = tokio::runtime::Builder::new_multi_thread()
        .worker_threads(2)
        .thread_name("app-worker")
        .enable_all()
        .build()
        .unwrap();
    app.block_on(async {
        call_then_stop_everything().await;
        // The metrics task wakes once a second: give it three ticks after the nodes' network
        // threads ended (this waits for a periodic task to run, nothing to synchronise with).
        tokio::time::sleep(Duration::from_secs(3)).await;
    });
    drop(app);
    assert_eq!(
        PANICS.load(Ordering::SeqCst),
        0,
        "a task panicked while the nodes stopped (output above)"
    );
}
