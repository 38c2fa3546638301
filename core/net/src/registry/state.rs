//! The state the registry's tasks share: the core [`Balancer`] (selection and lease
//! accounting) and the core's per-worker [`Connections`] (which pooled connection a call uses,
//! when to open, replace or drop one), behind one mutex held only for short, non-async
//! sections (a select plus a checkout, or a finish: well under a microsecond).
//!
//! Every decision is the core's; this module adds what the core cannot hold: the wakers of
//! tasks waiting for a connection attempt, and the filters parsed once per text. The core's
//! connection-set rules are unit- and proptest-tested in `shoal_core::pool::connset`; the loom
//! tests below check that the lock keeps them whole under concurrent tasks.
//!
//! Generic over the pooled connection type so the loom tests (`tests` below, `--cfg shoal_loom`)
//! can model it with a plain value; in production it is a `quinn::Connection`.

#[cfg(shoal_loom)]
pub(crate) use loom::sync::{Mutex, MutexGuard};
#[cfg(not(shoal_loom))]
pub(crate) use std::sync::{Mutex, MutexGuard};

use rand_chacha::ChaCha8Rng;
use shoal_core::pool::connset::{Checkout, ConnId, ConnectFailure, Connections};
use shoal_core::{
    Balancer, Filter, FilterError, Lease, MemberState, NodeId, Outcome, SelectError, Tags,
    Timestamp, WorkerStats,
};
use std::collections::BTreeMap;
use std::net::SocketAddr;
use std::task::Waker;

/// Parsed filters kept for reuse (the balancer caches candidate lists per filter text too).
const MAX_FILTERS: usize = 64;

/// What the pool needs from a connection.
pub(crate) trait PooledConn: Clone {
    /// Whether it has closed (locally, by the peer, or by a timeout).
    fn is_closed(&self) -> bool;
    /// Closes it (the worker failed or left).
    fn close(&self);
}

/// Name and tags of a worker, for [`crate::WorkerInfo`].
#[derive(Clone, Debug)]
pub(crate) struct Meta {
    pub(crate) name: String,
    pub(crate) tags: BTreeMap<String, String>,
    /// The tags as the core holds them, for filters (never rebuilt from `tags`).
    pub(crate) core_tags: Tags,
}

/// A task's connection affinity: its runtime-neutral identity
/// ([`crate::runtime::task_identity`], the waker's data pointer) mixed with splitmix64, so
/// that pointers (aligned, close together) spread evenly over a worker's connections. The
/// core's [`Connections`] decides what the key means (one connection per key); this is only
/// where the key comes from.
pub(crate) fn task_affinity(task: u64) -> u64 {
    let mut z = task.wrapping_add(0x9e37_79b9_7f4a_7c15);
    z = (z ^ (z >> 30)).wrapping_mul(0xbf58_476d_1ce4_e5b9);
    z = (z ^ (z >> 27)).wrapping_mul(0x94d0_49bb_1331_11eb);
    z ^ (z >> 31)
}

/// Everything shared, under one [`Mutex`]. The decisions are the core's ([`Balancer`] for
/// selection and accounting, [`Connections`] for which connection a call uses); this adds
/// only what the core cannot hold: the wakers of tasks waiting for a connection attempt.
#[derive(Debug)]
pub(crate) struct State<C> {
    pub(crate) balancer: Balancer,
    rng: ChaCha8Rng,
    filters: Vec<Filter>,
    pub(crate) meta: BTreeMap<NodeId, Meta>,
    pool: Connections<C>,
    /// Tasks waiting for a worker's connection generation to pass.
    waiters: BTreeMap<NodeId, Vec<Waker>>,
}

impl<C: PooledConn> State<C> {
    pub(crate) fn new(balancer: Balancer, rng: ChaCha8Rng, per_worker: u16) -> Self {
        let per_worker = per_worker.clamp(1, balancer.config().pool.max_connections);
        State {
            balancer,
            rng,
            filters: Vec::new(),
            meta: BTreeMap::new(),
            pool: Connections::new(per_worker),
            waiters: BTreeMap::new(),
        }
    }

    /// Sets how many connections the pool keeps per worker (clamped to the core's cap).
    pub(crate) fn set_per_worker(&mut self, n: u16) {
        let n = n.clamp(1, self.balancer.config().pool.max_connections);
        self.pool.set_per_worker(n);
    }

    fn filter(&mut self, text: &str) -> Result<usize, FilterError> {
        if let Some(i) = self.filters.iter().position(|f| f.as_str() == text) {
            return Ok(i);
        }
        let f = Filter::parse(text)?;
        if self.filters.len() >= MAX_FILTERS {
            self.filters.remove(0);
        }
        self.filters.push(f);
        Ok(self.filters.len() - 1)
    }

    /// Picks a worker and starts its lease.
    #[inline]
    pub(crate) fn select(&mut self, now: Timestamp, filter: &str) -> Result<Lease, SelectErr> {
        let i = self.filter(filter).map_err(SelectErr::Filter)?;
        let f = &self.filters[i];
        self.balancer
            .select(now, f, &mut self.rng)
            .map_err(SelectErr::Select)
    }

    /// Picks a worker, preferring one not in `avoid` (re-drawing at most `avoid.len()` times;
    /// leases drawn and put back are finished as `Cancelled`, which says nothing about the
    /// worker).
    ///
    /// Inlined (with `select`) into the caller: the lease travels back through each call
    /// level as a large `Result`, and those copies were a quarter of the registry's time.
    #[inline]
    pub(crate) fn select_avoiding(
        &mut self,
        now: Timestamp,
        filter: &str,
        avoid: &[NodeId],
    ) -> Result<Lease, SelectErr> {
        let mut lease = self.select(now, filter)?;
        for _ in 0..avoid.len() {
            if !avoid.contains(&lease.worker) {
                break;
            }
            let again = self.select(now, filter)?;
            // Finished exactly once: this id came from `select` just above.
            let _ = self.balancer.finish(lease.id, Outcome::Cancelled, now);
            lease = again;
        }
        Ok(lease)
    }

    /// Ends a lease. `false` if it was already finished (never changes counts twice).
    pub(crate) fn finish(&mut self, lease: u64, outcome: Outcome, now: Timestamp) -> bool {
        self.balancer.finish(lease, outcome, now).is_ok()
    }

    /// Finds a connection for `lease`, or says how to get one (the core's
    /// [`Connections::checkout`]).
    #[inline]
    pub(crate) fn checkout(
        &mut self,
        lease: &Lease,
        seen: Option<u64>,
        now: Timestamp,
        affinity: Option<u64>,
    ) -> Checkout<C> {
        self.pool
            .checkout(&mut self.balancer, lease, seen, affinity, now)
    }

    fn take_waiters(&mut self, worker: NodeId) -> Vec<Waker> {
        self.waiters.remove(&worker).unwrap_or_default()
    }

    /// Attempt `id` to `worker` ended. Returns the wakers to wake (after unlocking) and the
    /// connection to close if the pool does not keep it.
    pub(crate) fn connect_done(
        &mut self,
        worker: NodeId,
        id: ConnId,
        result: Result<C, ConnectFailure>,
        now: Timestamp,
    ) -> (Vec<Waker>, Option<C>) {
        let orphan = self
            .pool
            .connect_done(&mut self.balancer, worker, id, result, now);
        (self.take_waiters(worker), orphan)
    }

    /// Registers `waker` to hear when an attempt on `worker` ends; `false` if generation
    /// `gen` already passed (or the worker is gone), so the caller should look again now.
    pub(crate) fn wait(&mut self, worker: NodeId, gen: u64, waker: &Waker) -> bool {
        if self.pool.set(worker).map(|s| s.generation()) != Some(gen) {
            return false;
        }
        let list = self.waiters.entry(worker).or_default();
        if !list.iter().any(|w| w.will_wake(waker)) {
            list.push(waker.clone());
        }
        true
    }

    /// A stream could not be opened on one of `worker`'s connections, so it has closed: the
    /// core takes every closed one out of the pool. Returns how many went.
    pub(crate) fn purge_closed(&mut self, worker: NodeId, now: Timestamp) -> usize {
        self.pool
            .purge_closed(&mut self.balancer, worker, |c| c.is_closed(), now)
    }

    /// The ready connections pooled for `worker` (tests look at and close them).
    #[cfg(feature = "conformance")]
    pub(crate) fn pooled(&self, worker: NodeId) -> Vec<C> {
        self.pool
            .set(worker)
            .map(|s| s.ready().map(|(_, c)| c.clone()).collect())
            .unwrap_or_default()
    }

    /// A call on connection `id` found it lost: it leaves the pool (once).
    pub(crate) fn conn_lost(&mut self, worker: NodeId, id: ConnId, now: Timestamp) {
        self.pool.lost(&mut self.balancer, worker, id, now);
    }

    /// Membership says `id` is alive or suspect at `rpc_addr`. Returns the connections to
    /// close (outside the lock) if it moved, and the wakers of tasks waiting on the old
    /// address's attempts.
    pub(crate) fn upsert(
        &mut self,
        id: NodeId,
        state: MemberState,
        tags: &Tags,
        rpc_addr: SocketAddr,
        meta: Meta,
        now: Timestamp,
    ) -> (Vec<C>, Vec<Waker>) {
        self.balancer.upsert_member(id, state, tags, Some(rpc_addr));
        self.meta.insert(id, meta);
        let gen = self.pool.set(id).map(|s| s.generation());
        let moved = self.pool.upsert(&mut self.balancer, id, rpc_addr, now);
        let wake = if self.pool.set(id).map(|s| s.generation()) == gen {
            Vec::new()
        } else {
            self.take_waiters(id)
        };
        (moved, wake)
    }

    /// Membership says `id` is gone (failed, left, reaped, or no longer serving RPC). Returns
    /// its connections, to close outside the lock, and the wakers of tasks waiting on it.
    pub(crate) fn remove(&mut self, id: NodeId, now: Timestamp) -> (Vec<C>, Vec<Waker>) {
        let conns = self.pool.remove(&mut self.balancer, id, now);
        self.balancer.remove_member(id);
        self.meta.remove(&id);
        (conns, self.take_waiters(id))
    }

    /// Worker ids the balancer lists as members.
    pub(crate) fn member_ids(&self) -> Vec<NodeId> {
        self.meta.keys().copied().collect()
    }

    /// Snapshots of every member worker.
    pub(crate) fn workers(&self, now: Timestamp) -> Vec<(WorkerStats, Meta)> {
        self.balancer
            .workers(now)
            .into_iter()
            .filter_map(|w| {
                let meta = self.meta.get(&w.id)?.clone();
                Some((w, meta))
            })
            .collect()
    }
}

/// Why selection failed: a bad filter or the balancer's refusal.
#[derive(Debug)]
pub(crate) enum SelectErr {
    Filter(FilterError),
    Select(SelectError),
}

#[cfg(all(test, shoal_loom))]
mod tests {
    //! Every piece of state shared between tasks, under loom's exhaustive interleavings:
    //! `RUSTFLAGS="--cfg shoal_loom" cargo test -p shoal-tokio --release loom`.
    use super::*;
    use loom::sync::Arc;
    use loom::thread;
    use rand_core::SeedableRng;

    #[derive(Clone, Debug)]
    struct FakeConn(usize, Arc<loom::sync::atomic::AtomicBool>);

    impl PooledConn for FakeConn {
        fn is_closed(&self) -> bool {
            self.1.load(loom::sync::atomic::Ordering::SeqCst)
        }
        fn close(&self) {
            self.1.store(true, loom::sync::atomic::Ordering::SeqCst)
        }
    }

    fn addr(port: u16) -> SocketAddr {
        SocketAddr::from(([127, 0, 0, 1], port))
    }

    fn state(workers: u8, per_worker: u16) -> Arc<Mutex<State<FakeConn>>> {
        let mut s = State::new(
            Balancer::with_strategy(shoal_core::Strategy::LeastConnections),
            ChaCha8Rng::seed_from_u64(7),
            per_worker,
        );
        for i in 0..workers {
            let id = NodeId::from_name(&format!("w{i}"));
            let meta = Meta {
                name: format!("w{i}"),
                tags: BTreeMap::new(),
                core_tags: Tags::new(),
            };
            s.upsert(
                id,
                MemberState::Alive,
                &Tags::new(),
                addr(1000 + u16::from(i)),
                meta,
                T,
            );
        }
        Arc::new(Mutex::new(s))
    }

    const T: Timestamp = Timestamp::from_millis(1);

    /// A lease finished by its own task and one finished by a drop guard on another thread
    /// (cancellation) are each released exactly once; the count never goes negative or leaks.
    #[test]
    fn loom_concurrent_select_and_finish_never_leak() {
        loom::model(|| {
            let s = state(2, 1);
            let handles: Vec<_> = (0..2)
                .map(|i| {
                    let s = s.clone();
                    thread::spawn(move || {
                        let lease = s.lock().unwrap().select(T, "").expect("a worker");
                        let outcome = if i == 0 {
                            Outcome::Completed
                        } else {
                            Outcome::Cancelled
                        };
                        assert!(s.lock().unwrap().finish(lease.id, outcome, T));
                        // A second finish (a guard dropped after an explicit finish) is refused.
                        assert!(!s.lock().unwrap().finish(lease.id, outcome, T));
                    })
                })
                .collect();
            for h in handles {
                h.join().unwrap();
            }
            assert_eq!(s.lock().unwrap().balancer.total_in_flight(), 0);
        });
    }

    /// Cancellation racing completion: two parties try to finish one lease; exactly one wins.
    #[test]
    fn loom_cancellation_finishes_a_lease_exactly_once() {
        loom::model(|| {
            let s = state(1, 1);
            let lease = s.lock().unwrap().select(T, "").unwrap();
            let s2 = s.clone();
            let t =
                thread::spawn(move || s2.lock().unwrap().finish(lease.id, Outcome::Cancelled, T));
            let mine = s.lock().unwrap().finish(lease.id, Outcome::Completed, T);
            let theirs = t.join().unwrap();
            assert!(mine ^ theirs, "exactly one finish wins");
            let st = s.lock().unwrap();
            assert_eq!(st.balancer.total_in_flight(), 0);
            let w = &st.balancer.workers(T)[0];
            assert_eq!(w.completed + w.cancelled, 1);
        });
    }

    /// Two callers check out a connection to the same idle worker at once: exactly one opens
    /// it, the other waits and then gets the same connection; the core sees one connection.
    #[test]
    fn loom_pool_checkout_opens_one_connection() {
        loom::model(|| {
            let s = state(1, 1);
            let flag = Arc::new(loom::sync::atomic::AtomicBool::new(false));
            let handles: Vec<_> = (0..2)
                .map(|_| {
                    let s = s.clone();
                    let flag = flag.clone();
                    thread::spawn(move || {
                        let lease = s.lock().unwrap().select(T, "").unwrap();
                        let mut seen = None;
                        let mut got = None;
                        for _ in 0..4 {
                            let c = s.lock().unwrap().checkout(&lease, seen, T, None);
                            match c {
                                Checkout::Ready { conn, .. } => {
                                    got = Some(conn.0);
                                    break;
                                }
                                Checkout::Connect { attempt, gen } => {
                                    let conn = FakeConn(42, flag.clone());
                                    let (wake, _) = s.lock().unwrap().connect_done(
                                        lease.worker,
                                        attempt.id,
                                        Ok(conn),
                                        T,
                                    );
                                    drop(wake);
                                    seen = Some(gen);
                                }
                                Checkout::Wait { gen } => {
                                    seen = Some(gen);
                                    loom::thread::yield_now();
                                }
                                Checkout::Unavailable(why) => panic!("{why}"),
                            }
                        }
                        s.lock().unwrap().finish(lease.id, Outcome::Completed, T);
                        got
                    })
                })
                .collect();
            let got: Vec<_> = handles.into_iter().map(|h| h.join().unwrap()).collect();
            let st = s.lock().unwrap();
            let w = &st.balancer.workers(T)[0];
            assert_eq!(
                w.connections,
                (0, 1, 0),
                "one ready connection, none pending"
            );
            assert_eq!(st.balancer.total_in_flight(), 0);
            // Whoever got a connection got the single one; a waiter that ran out of turns
            // got none, never a second connection.
            assert!(got.iter().all(|g| g.is_none() || *g == Some(42)));
        });
    }

    /// A connection lost by one call while another call purges it as closed: it leaves the
    /// pool and is reported closed exactly once, and the next checkout replaces it.
    #[test]
    fn loom_lost_connection_is_closed_once() {
        loom::model(|| {
            let s = state(1, 1);
            let flag = Arc::new(loom::sync::atomic::AtomicBool::new(false));
            let lease = s.lock().unwrap().select(T, "").unwrap();
            let Checkout::Connect { attempt, .. } =
                s.lock().unwrap().checkout(&lease, None, T, None)
            else {
                panic!("the first checkout opens a connection");
            };
            s.lock().unwrap().connect_done(
                lease.worker,
                attempt.id,
                Ok(FakeConn(1, flag.clone())),
                T,
            );
            flag.store(true, loom::sync::atomic::Ordering::SeqCst);
            let s2 = s.clone();
            let worker = lease.worker;
            let id = attempt.id;
            let t = thread::spawn(move || s2.lock().unwrap().conn_lost(worker, id, T));
            s.lock().unwrap().purge_closed(worker, T);
            t.join().unwrap();
            let again = s.lock().unwrap().checkout(&lease, None, T, None);
            let st = s.lock().unwrap();
            let w = &st.balancer.workers(T)[0];
            // Gone exactly once (never a negative/underflowed count), and being replaced.
            assert_eq!(w.connections.1, 0);
            assert!(matches!(again, Checkout::Connect { .. }));
            assert_eq!(w.connections.0, 1);
        });
    }
}
