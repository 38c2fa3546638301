//! Event fan-out: one publisher, any number of subscribers, a bounded buffer and an explicit
//! lag signal.
//!
//! The model is tokio's `broadcast` channel, written without any runtime: a single ring
//! buffer of the last `capacity` items, each with a sequence number, and one cursor per
//! subscriber. Publishing never waits: when the buffer is full the oldest item is overwritten.
//! A subscriber whose cursor points at an overwritten item receives [`Recv::Lagged`] with the
//! exact number it missed, then continues from the oldest retained item, so falling behind is
//! visible instead of silent, and a slow subscriber can never slow the driver or hold memory
//! beyond `capacity` items.
//!
//! The state is shared between the driver task and subscriber tasks behind one mutex (held
//! only for a push or a clone, never across a wake). Its interleavings are checked with loom:
//! `RUSTFLAGS="--cfg shoal_loom" cargo test -p shoal-net --release --lib loom` (scripts/loom.sh).

#[cfg(shoal_loom)]
use loom::sync::{Arc, Mutex, MutexGuard};
#[cfg(not(shoal_loom))]
use std::sync::{Arc, Mutex, MutexGuard};

use core::future::poll_fn;
use core::task::{Context, Poll, Waker};
use std::collections::{BTreeMap, VecDeque};

/// What a subscriber receives.
#[derive(Clone, Debug, PartialEq)]
pub enum Recv<T> {
    /// The next item.
    Item(T),
    /// The subscriber fell behind and `missed` items were overwritten before it read them;
    /// the next item is the oldest one still buffered.
    Lagged {
        /// How many items were lost to this subscriber.
        missed: u64,
    },
}

/// Why [`Subscriber::try_recv`] returned nothing.
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub enum TryRecvError {
    /// Nothing new yet.
    Empty,
    /// The publisher is gone and everything was read.
    Closed,
}

#[derive(Debug)]
struct State<T> {
    buf: VecDeque<T>,
    /// Sequence number of `buf[0]`.
    head: u64,
    capacity: usize,
    closed: bool,
    wakers: BTreeMap<u64, Waker>,
    next_subscriber: u64,
}

impl<T> State<T> {
    fn tail(&self) -> u64 {
        self.head + self.buf.len() as u64
    }
}

type Shared<T> = Arc<Mutex<State<T>>>;

fn lock<T>(shared: &Mutex<State<T>>) -> MutexGuard<'_, State<T>> {
    // A panic while holding the lock cannot leave the state inconsistent (every mutation is a
    // single push, pop or insert), so a poisoned lock is still safe to use.
    match shared.lock() {
        Ok(g) => g,
        Err(poisoned) => poisoned.into_inner(),
    }
}

/// The sending half, owned by the driver. Dropping it closes the channel: subscribers read
/// what is buffered, then get `None`.
#[derive(Debug)]
pub struct Publisher<T> {
    shared: Shared<T>,
}

/// A cheap, cloneable way to create subscribers without keeping the channel open (user
/// handles hold this, so the channel closes when the driver stops).
#[derive(Debug)]
pub struct Subscribers<T> {
    shared: Shared<T>,
}

impl<T> Clone for Subscribers<T> {
    fn clone(&self) -> Self {
        Subscribers {
            shared: self.shared.clone(),
        }
    }
}

/// One subscriber's cursor. Sees every item published after it subscribed, or a
/// [`Recv::Lagged`] for those it was too slow to read.
#[derive(Debug)]
pub struct Subscriber<T> {
    shared: Shared<T>,
    id: u64,
    next: u64,
}

/// A channel keeping the last `capacity` items (at least 1).
pub fn channel<T: Clone>(capacity: usize) -> (Publisher<T>, Subscribers<T>) {
    let shared = Arc::new(Mutex::new(State {
        buf: VecDeque::with_capacity(capacity.clamp(1, 4096)),
        head: 0,
        capacity: capacity.max(1),
        closed: false,
        wakers: BTreeMap::new(),
        next_subscriber: 0,
    }));
    (
        Publisher {
            shared: shared.clone(),
        },
        Subscribers { shared },
    )
}

fn subscribe<T>(shared: &Shared<T>, at: Option<u64>) -> Subscriber<T> {
    let mut s = lock(shared);
    let id = s.next_subscriber;
    s.next_subscriber += 1;
    let next = at.unwrap_or_else(|| s.tail());
    drop(s);
    Subscriber {
        shared: shared.clone(),
        id,
        next,
    }
}

impl<T: Clone> Publisher<T> {
    /// Appends `item`, overwriting the oldest if the buffer is full, and wakes every waiting
    /// subscriber. Never blocks on subscribers.
    pub fn publish(&self, item: T) {
        let wakers = {
            let mut s = lock(&self.shared);
            if s.closed {
                return;
            }
            if s.buf.len() >= s.capacity {
                s.buf.pop_front();
                s.head += 1;
            }
            s.buf.push_back(item);
            core::mem::take(&mut s.wakers)
        };
        for (_, w) in wakers {
            w.wake();
        }
    }

    /// A new subscriber that sees items published from now on.
    pub fn subscribe(&self) -> Subscriber<T> {
        subscribe(&self.shared, None)
    }

    /// Closes the channel (also done on drop).
    pub fn close(&self) {
        self.shut();
    }
}

impl<T> Publisher<T> {
    /// Marks the channel closed and wakes every waiting subscriber.
    fn shut(&self) {
        let wakers = {
            let mut s = lock(&self.shared);
            s.closed = true;
            core::mem::take(&mut s.wakers)
        };
        for (_, w) in wakers {
            w.wake();
        }
    }
}

impl<T> Drop for Publisher<T> {
    fn drop(&mut self) {
        self.shut();
    }
}

impl<T> Subscribers<T> {
    /// A new subscriber that sees items published from now on. On a closed channel it
    /// immediately returns `None`.
    pub fn subscribe(&self) -> Subscriber<T> {
        subscribe(&self.shared, None)
    }

    /// Whether the publisher is gone.
    pub fn is_closed(&self) -> bool {
        lock(&self.shared).closed
    }
}

impl<T: Clone> Subscriber<T> {
    /// Polls for the next item; `Ready(None)` once the channel is closed and drained.
    pub fn poll_recv(&mut self, cx: &mut Context<'_>) -> Poll<Option<Recv<T>>> {
        let mut s = lock(&self.shared);
        match take(&mut self.next, &s) {
            Ok(r) => Poll::Ready(Some(r)),
            Err(TryRecvError::Closed) => Poll::Ready(None),
            Err(TryRecvError::Empty) => {
                let replace = match s.wakers.get(&self.id) {
                    Some(w) => !w.will_wake(cx.waker()),
                    None => true,
                };
                if replace {
                    s.wakers.insert(self.id, cx.waker().clone());
                }
                Poll::Pending
            }
        }
    }

    /// Waits for the next item; `None` once the channel is closed and drained.
    pub async fn recv(&mut self) -> Option<Recv<T>> {
        poll_fn(|cx| self.poll_recv(cx)).await
    }

    /// The next item if one is buffered.
    pub fn try_recv(&mut self) -> Result<Recv<T>, TryRecvError> {
        let s = lock(&self.shared);
        take(&mut self.next, &s)
    }
}

/// Reads the item at cursor `next`, or the lag signal if it was overwritten.
fn take<T: Clone>(next: &mut u64, s: &State<T>) -> Result<Recv<T>, TryRecvError> {
    if *next < s.head {
        let missed = s.head - *next;
        *next = s.head;
        return Ok(Recv::Lagged { missed });
    }
    // `next - head` is at most `buf.len()` here, which fits a usize.
    if let Some(item) = s.buf.get((*next - s.head) as usize) {
        *next += 1;
        return Ok(Recv::Item(item.clone()));
    }
    if s.closed {
        Err(TryRecvError::Closed)
    } else {
        Err(TryRecvError::Empty)
    }
}

impl<T> Clone for Subscriber<T> {
    /// A second subscriber at the same position.
    fn clone(&self) -> Self {
        subscribe(&self.shared, Some(self.next))
    }
}

impl<T> Drop for Subscriber<T> {
    fn drop(&mut self) {
        lock(&self.shared).wakers.remove(&self.id);
    }
}

#[cfg(all(test, not(shoal_loom)))]
mod tests {
    use super::*;

    #[test]
    fn every_subscriber_sees_every_item_in_order() {
        let (p, subs) = channel::<u32>(8);
        let mut a = subs.subscribe();
        let mut b = p.subscribe();
        for i in 0..5 {
            p.publish(i);
        }
        for s in [&mut a, &mut b] {
            for i in 0..5 {
                assert_eq!(s.try_recv(), Ok(Recv::Item(i)));
            }
            assert_eq!(s.try_recv(), Err(TryRecvError::Empty));
        }
    }

    #[test]
    fn a_slow_subscriber_gets_an_exact_lag_signal() {
        let (p, subs) = channel::<u32>(3);
        let mut slow = subs.subscribe();
        for i in 0..10 {
            p.publish(i);
        }
        assert_eq!(slow.try_recv(), Ok(Recv::Lagged { missed: 7 }));
        assert_eq!(slow.try_recv(), Ok(Recv::Item(7)));
        assert_eq!(slow.try_recv(), Ok(Recv::Item(8)));
        assert_eq!(slow.try_recv(), Ok(Recv::Item(9)));
        assert_eq!(slow.try_recv(), Err(TryRecvError::Empty));
    }

    #[test]
    fn late_subscribers_see_only_new_items_and_close_ends_after_drain() {
        let (p, subs) = channel::<u32>(4);
        p.publish(1);
        let mut late = subs.subscribe();
        p.publish(2);
        drop(p);
        assert!(subs.is_closed());
        assert_eq!(late.try_recv(), Ok(Recv::Item(2)));
        assert_eq!(late.try_recv(), Err(TryRecvError::Closed));
        let mut after = subs.subscribe();
        assert_eq!(after.try_recv(), Err(TryRecvError::Closed));
    }

    #[test]
    fn dropped_subscribers_leave_no_waker_behind() {
        let (p, subs) = channel::<u32>(4);
        let mut s = subs.subscribe();
        struct Noop;
        impl std::task::Wake for Noop {
            fn wake(self: std::sync::Arc<Self>) {}
        }
        let waker = Waker::from(std::sync::Arc::new(Noop));
        let mut cx = Context::from_waker(&waker);
        assert!(s.poll_recv(&mut cx).is_pending());
        assert_eq!(lock(&p.shared).wakers.len(), 1);
        drop(s);
        assert!(lock(&p.shared).wakers.is_empty());
    }
}

#[cfg(all(test, shoal_loom))]
mod loom_tests {
    use super::*;
    use loom::future::block_on;
    use loom::thread;

    /// A publisher on one thread, a subscriber on another, a buffer smaller than the stream:
    /// whatever the interleaving, the subscriber sees items in order, every item is either
    /// received or counted in a lag signal exactly once, and it ends with `None`.
    #[test]
    fn loom_fan_out_accounts_for_every_item() {
        loom::model(|| {
            let (p, subs) = channel::<u32>(2);
            let mut sub = subs.subscribe();
            let producer = thread::spawn(move || {
                for i in 0..3 {
                    p.publish(i);
                }
                // Dropping the publisher closes the channel.
            });
            let mut seen = Vec::new();
            let mut missed = 0;
            block_on(async {
                while let Some(r) = sub.recv().await {
                    match r {
                        Recv::Item(i) => seen.push(i),
                        Recv::Lagged { missed: m } => missed += m,
                    }
                }
            });
            producer.join().unwrap();
            assert!(seen.windows(2).all(|w| w[0] < w[1]), "{seen:?}");
            assert_eq!(seen.len() as u64 + missed, 3, "{seen:?} missed {missed}");
            assert_eq!(seen.last(), Some(&2));
        });
    }

    /// A subscriber waiting on another thread while the publisher publishes, another
    /// subscriber is dropped and the channel closes: no wake-up is lost (the waiting
    /// subscriber always terminates), it sees the item, and no waker is left behind.
    #[test]
    fn loom_no_lost_wakeup_on_publish_drop_and_close() {
        loom::model(|| {
            let (p, subs) = channel::<u32>(4);
            let mut waiting = subs.subscribe();
            let other = subs.subscribe();
            let consumer = thread::spawn(move || {
                let mut seen = Vec::new();
                block_on(async {
                    while let Some(r) = waiting.recv().await {
                        if let Recv::Item(i) = r {
                            seen.push(i);
                        }
                    }
                });
                seen
            });
            p.publish(1);
            drop(other);
            drop(p);
            assert_eq!(consumer.join().unwrap(), vec![1]);
            assert!(lock(&subs.shared).wakers.is_empty());
        });
    }
}
