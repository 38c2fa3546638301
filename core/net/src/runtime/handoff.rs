//! The batched hand-off queue: how work started on the application's threads reaches a
//! node's network thread ([`super::NetworkThread`]) with one cross-thread wake-up per batch
//! rather than one per call.
//!
//! Producers (any thread) push a boxed job under a short lock and take the consumer's waker
//! only if the consumer had parked on an empty queue; so while the network thread is busy,
//! pushes cost a lock and a `Vec` push, and only the first push after it goes idle wakes it.
//! The consumer (one task on the network thread) swaps the whole batch out and spawns each
//! job there as a task of its own, where its wake-ups are local queue pushes.
//!
//! Waking a task of a single-threaded tokio runtime from another thread costs a lock on the
//! runtime's inject queue and a write to its eventfd (a system call); spawning each call
//! there directly would pay that per call. The loom model below checks that no job is ever
//! stranded (pushed while the consumer parks, and never run).

#[cfg(shoal_loom)]
use loom::sync::{Arc, Mutex};
#[cfg(not(shoal_loom))]
use std::sync::{Arc, Mutex};

use std::future::{poll_fn, Future};
use std::pin::Pin;
use std::task::{Poll, Waker};

/// One unit of handed-over work.
pub(crate) type Job = Pin<Box<dyn Future<Output = ()> + Send>>;

#[derive(Default)]
struct State {
    jobs: Vec<Job>,
    /// Set while the consumer is parked on an empty queue; the push that finds it wakes it.
    consumer: Option<Waker>,
    /// The [`Producer`] is gone: the consumer ends once the queue is empty.
    closed: bool,
}

/// The queue, shared by the [`Producer`] and the consumer ([`consume`]).
#[derive(Default)]
pub(crate) struct Handoff {
    state: Mutex<State>,
}

/// The producing end (share it behind an `Arc`). Dropping it closes the queue, which ends the
/// consumer once it has spawned what was pushed.
pub(crate) struct Producer {
    queue: Arc<Handoff>,
}

impl std::fmt::Debug for Producer {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.debug_struct("Producer").finish_non_exhaustive()
    }
}

impl Producer {
    /// Queues `job`; wakes the consumer if it was parked.
    pub(crate) fn push(&self, job: Job) {
        let waker = {
            let mut s = self.queue.lock();
            s.jobs.push(job);
            s.consumer.take()
        };
        if let Some(w) = waker {
            w.wake();
        }
    }
}

impl Drop for Producer {
    fn drop(&mut self) {
        let waker = {
            let mut s = self.queue.lock();
            s.closed = true;
            s.consumer.take()
        };
        if let Some(w) = waker {
            w.wake();
        }
    }
}

impl std::fmt::Debug for Handoff {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.debug_struct("Handoff").finish_non_exhaustive()
    }
}

impl Handoff {
    fn lock(&self) -> impl std::ops::DerefMut<Target = State> + '_ {
        // A panic while holding the lock leaves only a Vec push or swap half-done, never
        // torn state: carry on with what is there.
        self.state.lock().unwrap_or_else(|p| p.into_inner())
    }

    /// Waits for jobs and swaps them into `batch` (empty on entry). `false` when the queue is
    /// closed and empty: the consumer should end.
    async fn next_batch(&self, batch: &mut Vec<Job>) -> bool {
        poll_fn(|cx| {
            let mut s = self.lock();
            if s.jobs.is_empty() {
                if s.closed {
                    return Poll::Ready(false);
                }
                match &mut s.consumer {
                    Some(w) if w.will_wake(cx.waker()) => {}
                    slot => *slot = Some(cx.waker().clone()),
                }
                return Poll::Pending;
            }
            std::mem::swap(&mut s.jobs, batch);
            Poll::Ready(true)
        })
        .await
    }
}

/// The consumer: runs on the network thread, spawning each job there with `spawn` (a local
/// push on that thread). Ends when the [`Producer`] is dropped and every job is spawned.
pub(crate) async fn consume(queue: Arc<Handoff>, spawn: impl Fn(Job)) {
    let mut batch = Vec::new();
    while queue.next_batch(&mut batch).await {
        for job in batch.drain(..) {
            spawn(job);
        }
    }
}

/// A fresh queue: its producing end and the end for [`consume`].
pub(crate) fn queue() -> (Producer, Arc<Handoff>) {
    let q = Arc::new(Handoff::default());
    (Producer { queue: q.clone() }, q)
}

#[cfg(all(test, not(shoal_loom)))]
mod tests {
    use super::*;
    use std::sync::atomic::{AtomicUsize, Ordering};
    use std::task::{Context, Wake};

    struct Count(AtomicUsize);
    impl Wake for Count {
        fn wake(self: Arc<Self>) {
            self.0.fetch_add(1, Ordering::SeqCst);
        }
    }

    /// Runs `consume` by hand: jobs pushed while it is parked share one wake-up, every job is
    /// spawned once, and dropping the producer ends the consumer.
    #[test]
    fn one_wake_per_batch_every_job_once_and_ends_when_dropped() {
        let (q, consumer_end) = queue();
        let spawned = Arc::new(Mutex::new(Vec::<usize>::new()));
        let order = Arc::new(AtomicUsize::new(0));
        let s2 = spawned.clone();
        let mut consumer = Box::pin(consume(consumer_end, move |job| {
            // Run each job to completion at once (they are ready futures here).
            let waker = Waker::noop();
            let mut job = job;
            assert!(job
                .as_mut()
                .poll(&mut Context::from_waker(waker))
                .is_ready());
            s2.lock().unwrap().push(0);
        }));
        let wakes = Arc::new(Count(AtomicUsize::new(0)));
        let waker = Waker::from(wakes.clone());
        let mut cx = Context::from_waker(&waker);
        assert!(consumer.as_mut().poll(&mut cx).is_pending());
        for _ in 0..3 {
            let order = order.clone();
            q.push(Box::pin(async move {
                order.fetch_add(1, Ordering::SeqCst);
            }));
        }
        // Three pushes, one wake-up (the first found the consumer parked).
        assert_eq!(wakes.0.load(Ordering::SeqCst), 1);
        assert!(consumer.as_mut().poll(&mut cx).is_pending());
        assert_eq!(order.load(Ordering::SeqCst), 3);
        assert_eq!(spawned.lock().unwrap().len(), 3);
        drop(q);
        assert_eq!(
            wakes.0.load(Ordering::SeqCst),
            2,
            "closing the queue wakes it"
        );
        assert!(consumer.as_mut().poll(&mut cx).is_ready());
    }
}

#[cfg(all(test, shoal_loom))]
mod loom_tests {
    use super::*;
    use loom::future::block_on;
    use loom::sync::atomic::{AtomicUsize, Ordering};
    use loom::thread;

    /// Two producers on other threads push while the consumer parks and wakes: whatever the
    /// interleaving, every job is run exactly once (no wake-up lost, nothing stranded), and
    /// the consumer ends when the last producer drops the queue.
    #[test]
    fn loom_no_job_is_stranded() {
        loom::model(|| {
            let (q, consumer_end) = queue();
            let q = Arc::new(q);
            let ran = Arc::new(AtomicUsize::new(0));
            let producers: Vec<_> = (0..2)
                .map(|_| {
                    let q = q.clone();
                    let ran = ran.clone();
                    thread::spawn(move || {
                        q.push(Box::pin(async move {
                            ran.fetch_add(1, Ordering::SeqCst);
                        }));
                    })
                })
                .collect();
            drop(q);
            block_on(consume(consumer_end, |job| block_on(job)));
            for p in producers {
                p.join().unwrap();
            }
            assert_eq!(ran.load(Ordering::SeqCst), 2);
        });
    }
}
