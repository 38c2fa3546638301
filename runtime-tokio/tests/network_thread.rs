//! Where the work runs: on tokio's multi-thread runtime each node gets a "shoal-net" thread
//! for its drivers while handlers (and what they spawn) stay on the application's runtime,
//! and the thread ends with that runtime; on a current-thread runtime nothing moves. One
//! test in this binary, so that counting threads sees only its own.

mod common;

use bytes::Bytes;
use common::{config, director_and_worker};
use std::time::{Duration, Instant};

fn thread_name() -> String {
    std::thread::current().name().unwrap_or("").to_owned()
}

/// Threads of this process named `shoal-net` (Linux: /proc/self/task/*/comm).
fn network_threads() -> usize {
    let Ok(dir) = std::fs::read_dir("/proc/self/task") else {
        return 0;
    };
    dir.filter_map(Result::ok)
        .filter(|t| {
            std::fs::read_to_string(t.path().join("comm")).is_ok_and(|c| c.trim() == "shoal-net")
        })
        .count()
}

/// One call to a worker whose handler answers "<its thread>|<the thread of a task it
/// spawned>"; returns that answer and the network threads counted while both ran.
async fn where_things_run() -> (String, usize) {
    let pair = director_and_worker(5, "where", |_req: Bytes| async move {
        let handler = thread_name();
        let spawned = tokio::spawn(async { thread_name() }).await.unwrap();
        Ok(Bytes::from(format!("{handler}|{spawned}")))
    })
    .await;
    let answer = pair
        .client
        .call_worker("where", "?", Some("role=worker"))
        .await
        .unwrap();
    let running = network_threads();
    pair.worker.shutdown().await.unwrap();
    pair.director.shutdown().await.unwrap();
    (String::from_utf8(answer.to_vec()).unwrap(), running)
}

#[test]
fn network_threads_only_on_the_multi_thread_runtime_and_handlers_stay_on_the_application() {
    let before = network_threads();

    // Multi-thread: the handler and what it spawns on the application's workers.
    let mt = tokio::runtime::Builder::new_multi_thread()
        .worker_threads(2)
        .thread_name("app-worker")
        .enable_all()
        .build()
        .unwrap();
    let (answer, running) = mt.block_on(where_things_run());
    assert_eq!(answer, "app-worker|app-worker");
    // The director's and the worker's (each server shares its thread with its node).
    assert_eq!(running, before + 2, "network threads while running");
    // A node still referred to when the application runtime shuts down: its thread stops
    // with that runtime (bounded wait: a thread takes a moment to exit once told).
    let kept = mt
        .block_on(shoal_tokio::Cluster::start(config("kept", 5)))
        .unwrap();
    // The thread names itself once it runs (std sets a spawned thread's name from that
    // thread), so on a busy machine `start` can return before it shows as `shoal-net`:
    // wait for it, bounded, as for its exit below (CI once saw the count still at `before`).
    let deadline = Instant::now() + Duration::from_secs(10);
    while network_threads() <= before {
        assert!(
            Instant::now() < deadline,
            "the kept node's network thread never appeared"
        );
        std::thread::sleep(Duration::from_millis(10));
    }
    drop(mt);
    let deadline = Instant::now() + Duration::from_secs(10);
    while network_threads() > before {
        assert!(
            Instant::now() < deadline,
            "network threads outlived their runtime"
        );
        std::thread::sleep(Duration::from_millis(10));
    }
    drop(kept);

    // Current-thread: everything on the caller's thread, no network thread.
    let ct = tokio::runtime::Builder::new_current_thread()
        .enable_all()
        .build()
        .unwrap();
    let caller = thread_name();
    let (answer, running) = ct.block_on(where_things_run());
    assert_eq!(answer, format!("{caller}|{caller}"));
    assert_eq!(running, before);
}
