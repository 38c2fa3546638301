//! The conformance suite: every behaviour of the network layer, written once as async
//! functions generic over the [`RuntimeBinding`], and run by each facade on its runtime with
//! [`conformance_suite!`](crate::conformance_suite).
//!
//! A facade's `tests/conformance.rs` is two lines: its binding and a `block_on` for its
//! runtime (`shoal_net::conformance_suite!(shoal_tokio::Tokio, block_on);`). Every test is a
//! plain `#[test]` there, named after the behaviour, so `cargo test -p shoal-smol` reports
//! the same list as `cargo test -p shoal-tokio`.
//!
//! Waits are bounded by timeouts on the binding's timers; nothing sleeps in place of
//! synchronisation (polling loops poll a condition, with a short pause between looks).

pub mod membership;
pub mod pool;
pub mod rpc;
pub mod stream;

pub use crate::runtime::RuntimeBinding;
use crate::runtime::{spawn_with_handle, Elapsed, JoinHandle};
use std::future::{poll_fn, Future};
use std::pin::pin;
use std::task::Poll;
use std::time::Duration;

/// Runs `future` for at most `duration` on `R`'s timers.
pub async fn timeout<R: RuntimeBinding, F: Future>(
    duration: Duration,
    future: F,
) -> Result<F::Output, TimedOut> {
    crate::runtime::timeout(&*R::runtime(), duration, future)
        .await
        .map_err(|Elapsed| TimedOut)
}

/// A [`timeout`] expired.
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub struct TimedOut;

/// Waits `duration` on `R`'s timers.
pub async fn sleep<R: RuntimeBinding>(duration: Duration) {
    crate::runtime::sleep(&*R::runtime(), duration).await
}

/// Spawns `future` on `R` and returns a handle to its output.
pub fn spawn<R, F>(future: F) -> JoinHandle<F::Output>
where
    R: RuntimeBinding,
    F: Future + Send + 'static,
    F::Output: Send + 'static,
{
    spawn_with_handle::<R, F>(future)
}

/// Polls both futures until both finish.
pub async fn join<A: Future, B: Future>(a: A, b: B) -> (A::Output, B::Output) {
    let (mut a, mut b) = (pin!(a), pin!(b));
    let (mut ra, mut rb) = (None, None);
    poll_fn(|cx| {
        if ra.is_none() {
            if let Poll::Ready(v) = a.as_mut().poll(cx) {
                ra = Some(v);
            }
        }
        if rb.is_none() {
            if let Poll::Ready(v) = b.as_mut().poll(cx) {
                rb = Some(v);
            }
        }
        match (ra.take(), rb.take()) {
            (Some(x), Some(y)) => Poll::Ready((x, y)),
            (x, y) => {
                ra = x;
                rb = y;
                Poll::Pending
            }
        }
    })
    .await
}

/// Instantiates the whole suite as `#[test]` functions for one runtime: `$binding` is the
/// [`RuntimeBinding`], `$block_on` a function that runs a future to completion on that
/// runtime (`fn block_on<F: Future>(f: F) -> F::Output`).
#[macro_export]
macro_rules! conformance_suite {
    ($binding:ty, $block_on:path) => {
        $crate::conformance_suite!(@tests $binding, $block_on, membership: [
            three_nodes_form_a_cluster_through_one_seed,
            a_tag_change_reaches_the_others,
            leave_is_seen_as_left_not_failed,
            a_wrong_cluster_key_cannot_join,
            key_rotation_keeps_the_cluster_talking,
            a_slow_subscriber_is_told_it_lagged,
            wildcard_bind_without_advertise_address_is_refused,
            an_unreachable_seed_does_not_stop_the_node,
            malformed_datagrams_are_counted_and_dropped,
            a_replayed_sealed_datagram_is_dropped_and_counted,
        ]);
        $crate::conformance_suite!(@tests $binding, $block_on, rpc: [
            a_call_round_trips_and_errors_are_typed,
            calls_spread_over_workers_under_every_strategy,
            test_worker_discovery,
            test_load_balancing,
            a_killed_worker_is_routed_around_and_a_restarted_one_gets_calls_again,
            a_node_with_the_wrong_cluster_key_never_joins_nor_gets_calls,
            dropping_a_call_future_releases_its_lease,
            a_gracefully_shut_down_worker_is_seen_as_left_and_calls_route_away_without_errors,
            expired_or_untrusted_certificates_are_refused_with_a_typed_error,
            lan_preset_detection_time_of_a_killed_worker,
            a_worker_at_its_call_cap_answers_overloaded_and_the_call_moves_on,
            a_graceful_shutdown_waits_for_a_running_call_and_ends_when_it_does,
        ]);
        $crate::conformance_suite!(@tests $binding, $block_on, pool: [
            a_closed_pooled_connection_is_replaced_without_failing_the_call,
            a_closed_pooled_connection_on_the_shared_endpoint_is_replaced_too,
            a_task_keeps_its_connection_and_tasks_spread_over_connections,
        ]);
        $crate::conformance_suite!(@tests $binding, $block_on, stream: [
            a_finished_frame_is_read_with_its_end_so_no_stop_sending_is_sent,
            a_stream_left_open_after_its_frame_is_stopped_without_waiting,
            large_payloads_go_as_a_second_buffer_and_arrive_whole,
        ]);
    };
    (@tests $binding:ty, $block_on:path, $module:ident: [$($name:ident),* $(,)?]) => {
        mod $module {
            #[allow(unused_imports)]
            use super::*;
            $(
                #[test]
                fn $name() {
                    $block_on($crate::conformance::$module::$name::<$binding>());
                }
            )*
        }
    };
}
