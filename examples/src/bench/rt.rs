//! The few runtime calls the bench harness makes itself (spawning its load slots, sleeping,
//! a deadline), on tokio or smol: whichever runs the caller (tokio when inside a tokio
//! runtime, else smol's global executor, as `quinn::default_runtime` picks). Nothing here is
//! on a call's path: each slot task is spawned once per run.

use std::future::{poll_fn, Future};
use std::pin::{pin, Pin};
use std::task::{Context, Poll};
use std::time::{Duration, Instant};

/// A spawned task: await it for its output, [`Task::abort`] it, or [`Task::detach`] it.
pub enum Task<T> {
    /// On tokio.
    Tokio(tokio::task::JoinHandle<T>),
    /// On smol's global executor.
    Smol(smol::Task<T>),
}

impl<T> Task<T> {
    /// Stops the task.
    pub fn abort(self) {
        match self {
            Task::Tokio(h) => h.abort(),
            Task::Smol(t) => drop(t), // dropping a smol task cancels it
        }
    }

    /// Lets the task run on without a handle.
    pub fn detach(self) {
        match self {
            Task::Tokio(_) => {}
            Task::Smol(t) => t.detach(),
        }
    }
}

impl<T> Future for Task<T> {
    /// `None` when the task was cancelled or panicked.
    type Output = Option<T>;

    fn poll(self: Pin<&mut Self>, cx: &mut Context<'_>) -> Poll<Option<T>> {
        match self.get_mut() {
            Task::Tokio(h) => Pin::new(h).poll(cx).map(Result::ok),
            Task::Smol(t) => Pin::new(t).poll(cx).map(Some),
        }
    }
}

fn on_tokio() -> bool {
    tokio::runtime::Handle::try_current().is_ok()
}

/// Spawns `future` on the caller's runtime.
pub fn spawn<F>(future: F) -> Task<F::Output>
where
    F: Future + Send + 'static,
    F::Output: Send + 'static,
{
    if on_tokio() {
        Task::Tokio(tokio::spawn(future))
    } else {
        Task::Smol(smol::spawn(future))
    }
}

/// Waits until `deadline` on the caller's runtime.
pub async fn sleep_until(deadline: Instant) {
    if on_tokio() {
        tokio::time::sleep_until(deadline.into()).await;
    } else {
        smol::Timer::at(deadline).await;
    }
}

/// Waits `duration` on the caller's runtime.
pub async fn sleep(duration: Duration) {
    sleep_until(Instant::now() + duration).await;
}

/// Runs `future` until it finishes (`Some`) or `deadline` passes (`None`).
pub async fn timeout_at<F: Future>(deadline: Instant, future: F) -> Option<F::Output> {
    let mut future = pin!(future);
    let mut timer = pin!(sleep_until(deadline));
    poll_fn(|cx| {
        if let Poll::Ready(v) = future.as_mut().poll(cx) {
            return Poll::Ready(Some(v));
        }
        timer.as_mut().poll(cx).map(|()| None)
    })
    .await
}
