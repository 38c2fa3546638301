//! The state the registry's tasks share: the core [`Balancer`] (selection and lease
//! accounting) and the per-worker connection pool, behind one mutex held only for short,
//! non-async sections (a select plus a checkout, or a finish: well under a microsecond).
//!
//! Generic over the pooled connection type so the loom tests (`tests` below, `--cfg shoal_loom`)
//! can model it with a plain value; in production it is a `quinn::Connection`.
//!
//! Every connection the pool opens is reported to the core as a [`ConnEvent`]: `Connecting`
//! when an attempt starts (the core refuses it at its `max_connections` cap), then
//! `Connected` or `ConnectFailed` (which puts the worker in back-off), and `Closed` exactly
//! once when the connection leaves the pool (found closed, lost during a call, or closed
//! because its worker failed or left). Connections are keyed by worker [`NodeId`], never by
//! address, so a worker that restarts on a new port gets a fresh pool entry.

#[cfg(shoal_loom)]
pub(crate) use loom::sync::{Mutex, MutexGuard};
#[cfg(not(shoal_loom))]
pub(crate) use std::sync::{Mutex, MutexGuard};

use rand_chacha::ChaCha8Rng;
use shoal_core::{
    Balancer, ConnEvent, Filter, FilterError, Lease, MemberState, NodeId, Outcome, SelectError,
    Tags, Timestamp, WorkerStats,
};
use std::collections::BTreeMap;
use std::net::SocketAddr;
use std::task::Waker;

/// Parsed filters kept for reuse (the balancer caches candidate lists per filter text too).
const MAX_FILTERS: usize = 64;

/// What the pool needs from a connection.
pub(crate) trait PooledConn: Clone {
    /// Stable identity while the connection lives.
    fn id(&self) -> usize;
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
}

/// One worker's connections.
#[derive(Debug)]
struct Conns<C> {
    addr: SocketAddr,
    ready: Vec<C>,
    connecting: u16,
    next: usize,
    /// Bumped whenever a connection attempt ends, so waiters know to look again.
    gen: u64,
    /// Why the last attempt failed, if it did and none succeeded since.
    last_failure: Option<String>,
    waiters: Vec<Waker>,
}

impl<C> Conns<C> {
    fn new(addr: SocketAddr) -> Self {
        Conns {
            addr,
            ready: Vec::new(),
            connecting: 0,
            next: 0,
            gen: 0,
            last_failure: None,
            waiters: Vec::new(),
        }
    }
}

/// A task's connection affinity: its runtime-neutral identity
/// ([`crate::runtime::task_identity`], the waker's data pointer) mixed with splitmix64, so
/// that pointers (aligned, close together) spread evenly over a worker's connections.
///
/// Why per task: on one runtime thread, a connection's driver wakes the tasks whose answers
/// arrived in one datagram, and each of them issues its next call at once. When those calls
/// stay on the connection that woke them, they leave in one datagram too; spread round-robin
/// they took four times as many datagrams, which halved 1-byte throughput on 4 connections
/// (BENCHMARKS.md). Different tasks still spread over all connections.
pub(crate) fn task_affinity(task: u64) -> u64 {
    let mut z = task.wrapping_add(0x9e37_79b9_7f4a_7c15);
    z = (z ^ (z >> 30)).wrapping_mul(0xbf58_476d_1ce4_e5b9);
    z = (z ^ (z >> 27)).wrapping_mul(0x94d0_49bb_1331_11eb);
    z ^ (z >> 31)
}

/// What a caller holding a lease does next.
#[derive(Debug)]
pub(crate) enum Checkout<C> {
    /// Use this connection. If `open_another` the caller should also start a connection
    /// attempt in the background (the pool wants more connections than it has).
    Ready { conn: C, open_another: bool },
    /// No ready connection: start an attempt (already counted as `Connecting`), then wait.
    Connect { gen: u64 },
    /// An attempt by someone else is under way: wait for generation `gen` to pass.
    Wait { gen: u64 },
    /// No connection can be had (the last attempt failed, or the core refused a new one).
    Unavailable(String),
}

/// Everything shared, under one [`Mutex`].
#[derive(Debug)]
pub(crate) struct State<C> {
    pub(crate) balancer: Balancer,
    rng: ChaCha8Rng,
    filters: Vec<Filter>,
    pub(crate) meta: BTreeMap<NodeId, Meta>,
    /// Keyed by worker; a B-tree because a handful of workers is a few comparisons, cheaper
    /// per call than hashing the id.
    conns: BTreeMap<NodeId, Conns<C>>,
    /// Connections wanted per worker (at most the core's `max_connections`).
    per_worker: u16,
}

impl<C: PooledConn> State<C> {
    pub(crate) fn new(balancer: Balancer, rng: ChaCha8Rng, per_worker: u16) -> Self {
        let per_worker = per_worker.clamp(1, balancer.config().pool.max_connections);
        State {
            balancer,
            rng,
            filters: Vec::new(),
            meta: BTreeMap::new(),
            conns: BTreeMap::new(),
            per_worker,
        }
    }

    /// Sets how many connections the pool keeps per worker (clamped to the core's cap).
    pub(crate) fn set_per_worker(&mut self, n: u16) {
        self.per_worker = n.clamp(1, self.balancer.config().pool.max_connections);
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

    fn conn_event(&mut self, worker: NodeId, ev: ConnEvent, now: Timestamp) -> bool {
        match self.balancer.connection_event(worker, ev, now) {
            Ok(()) => true,
            Err(e) => {
                tracing::debug!(%worker, ?ev, %e, "connection event refused");
                false
            }
        }
    }

    /// Finds a connection for `lease`, or says how to get one. `seen` is the generation the
    /// caller waited on, if it waited. `affinity` (the calling task's, see
    /// [`task_affinity`]) keeps a caller on one connection; without it calls go round-robin.
    pub(crate) fn checkout(
        &mut self,
        lease: &Lease,
        seen: Option<u64>,
        now: Timestamp,
        affinity: Option<u64>,
    ) -> Checkout<C> {
        let Some(addr) = lease.rpc_addr else {
            return Checkout::Unavailable("the worker advertises no RPC address".into());
        };
        let worker = lease.worker;
        // A worker that came back on another address: its old connections are useless.
        if self.conns.get(&worker).is_some_and(|c| c.addr != addr) {
            for conn in self.drop_worker(worker, now) {
                conn.close();
            }
        }
        let per_worker = self.per_worker;
        let entry = self.conns.entry(worker).or_insert_with(|| Conns::new(addr));
        // The caller's connection by affinity, else round-robin. Whether it is still open is
        // not checked here (that is a lock on quinn's connection state per call): a closed one
        // fails to open a stream at once, and the caller then purges it (`purge_closed`) and
        // checks out again, before its request has left.
        let conn = (!entry.ready.is_empty()).then(|| {
            let pick = match affinity {
                Some(a) => a as usize,
                None => {
                    entry.next = entry.next.wrapping_add(1);
                    entry.next
                }
            };
            entry.ready[pick % entry.ready.len()].clone()
        });
        let (ready, connecting, gen) = (entry.ready.len(), entry.connecting, entry.gen);
        let failed = entry.last_failure.clone();
        let want_more = ready + usize::from(connecting) < usize::from(per_worker);
        if let Some(conn) = conn {
            let open_another = want_more && self.start_connecting(worker, now);
            return Checkout::Ready { conn, open_another };
        }
        if connecting > 0 {
            return Checkout::Wait { gen };
        }
        if seen.is_some_and(|s| s != gen) {
            if let Some(why) = failed {
                return Checkout::Unavailable(why);
            }
        }
        if want_more && self.start_connecting(worker, now) {
            return Checkout::Connect { gen };
        }
        Checkout::Unavailable(failed.unwrap_or_else(|| "no connection can be opened now".into()))
    }

    /// Counts a new connection attempt to `worker`, if the core allows one.
    fn start_connecting(&mut self, worker: NodeId, now: Timestamp) -> bool {
        if !self.conn_event(worker, ConnEvent::Connecting, now) {
            return false;
        }
        if let Some(e) = self.conns.get_mut(&worker) {
            e.connecting += 1;
        }
        true
    }

    /// A connection attempt ended. Returns the wakers to wake (after unlocking) and, if the
    /// worker is no longer pooled, the connection to close.
    pub(crate) fn connect_done(
        &mut self,
        worker: NodeId,
        result: Result<C, String>,
        now: Timestamp,
    ) -> (Vec<Waker>, Option<C>) {
        let Some(e) = self.conns.get_mut(&worker) else {
            // The worker left while we connected: its count was released with it.
            return (Vec::new(), result.ok());
        };
        e.connecting = e.connecting.saturating_sub(1);
        e.gen += 1;
        let wake = std::mem::take(&mut e.waiters);
        match result {
            Ok(c) => {
                e.ready.push(c);
                e.last_failure = None;
                self.conn_event(worker, ConnEvent::Connected, now);
            }
            Err(why) => {
                e.last_failure = Some(why);
                self.conn_event(worker, ConnEvent::ConnectFailed, now);
            }
        }
        (wake, None)
    }

    /// Registers `waker` to hear when an attempt on `worker` ends; `false` if generation
    /// `gen` already passed (or the worker is gone), so the caller should look again now.
    pub(crate) fn wait(&mut self, worker: NodeId, gen: u64, waker: &Waker) -> bool {
        match self.conns.get_mut(&worker) {
            Some(e) if e.gen == gen => {
                if !e.waiters.iter().any(|w| w.will_wake(waker)) {
                    e.waiters.push(waker.clone());
                }
                true
            }
            _ => false,
        }
    }

    /// A stream could not be opened on one of `worker`'s connections, so it has closed (idle
    /// timeout, the peer closed it): takes every closed connection of `worker` out of the
    /// pool, each reported closed once. Returns how many went. This is the only place the
    /// pool looks at connections' state, so the per-call path never does.
    pub(crate) fn purge_closed(&mut self, worker: NodeId, now: Timestamp) -> usize {
        let Some(e) = self.conns.get_mut(&worker) else {
            return 0;
        };
        let before = e.ready.len();
        e.ready.retain(|c| !c.is_closed());
        let gone = before - e.ready.len();
        for _ in 0..gone {
            self.conn_event(worker, ConnEvent::Closed, now);
        }
        gone
    }

    /// The ready connections pooled for `worker` (tests look at and close them).
    #[cfg(any(test, feature = "conformance"))]
    pub(crate) fn pooled(&self, worker: NodeId) -> Vec<C> {
        self.conns
            .get(&worker)
            .map(|e| e.ready.clone())
            .unwrap_or_default()
    }

    /// A call on connection `conn_id` found it lost: takes it out of the pool (once).
    pub(crate) fn conn_lost(&mut self, worker: NodeId, conn_id: usize, now: Timestamp) {
        let Some(e) = self.conns.get_mut(&worker) else {
            return;
        };
        let before = e.ready.len();
        e.ready.retain(|c| c.id() != conn_id);
        if e.ready.len() < before {
            self.conn_event(worker, ConnEvent::Closed, now);
        }
    }

    /// Forgets every connection to `worker` (reporting each as closed) and returns them for
    /// the caller to close outside the lock. Waiters are woken by the caller's next look.
    pub(crate) fn drop_worker(&mut self, worker: NodeId, now: Timestamp) -> Vec<C> {
        let Some(e) = self.conns.remove(&worker) else {
            return Vec::new();
        };
        for _ in 0..e.ready.len() {
            self.conn_event(worker, ConnEvent::Closed, now);
        }
        for w in e.waiters {
            w.wake();
        }
        e.ready
    }

    /// Membership says `id` is alive or suspect at `rpc_addr`.
    pub(crate) fn upsert(
        &mut self,
        id: NodeId,
        state: MemberState,
        tags: &Tags,
        rpc_addr: SocketAddr,
        meta: Meta,
    ) {
        self.balancer.upsert_member(id, state, tags, Some(rpc_addr));
        self.meta.insert(id, meta);
    }

    /// Membership says `id` is gone (failed, left, reaped, or no longer serving RPC). Returns
    /// its connections, to close outside the lock.
    pub(crate) fn remove(&mut self, id: NodeId, now: Timestamp) -> Vec<C> {
        let conns = self.drop_worker(id, now);
        self.balancer.remove_member(id);
        self.meta.remove(&id);
        conns
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
        fn id(&self) -> usize {
            self.0
        }
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
            };
            s.upsert(
                id,
                MemberState::Alive,
                &Tags::new(),
                addr(1000 + u16::from(i)),
                meta,
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
                                Checkout::Connect { gen } => {
                                    let conn = FakeConn(42, flag.clone());
                                    let (wake, _) =
                                        s.lock().unwrap().connect_done(lease.worker, Ok(conn), T);
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
            assert!(matches!(
                s.lock().unwrap().checkout(&lease, None, T, None),
                Checkout::Connect { .. }
            ));
            s.lock()
                .unwrap()
                .connect_done(lease.worker, Ok(FakeConn(1, flag.clone())), T);
            flag.store(true, loom::sync::atomic::Ordering::SeqCst);
            let s2 = s.clone();
            let worker = lease.worker;
            let t = thread::spawn(move || s2.lock().unwrap().conn_lost(worker, 1, T));
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

#[cfg(all(test, not(shoal_loom)))]
mod unit_tests {
    //! The pool's checkout rules, single-threaded (the interleavings are in the loom tests).
    use super::*;
    use rand_core::SeedableRng;
    use std::cell::Cell;
    use std::rc::Rc;

    #[derive(Clone, Debug)]
    struct FakeConn(usize, Rc<Cell<bool>>);

    impl PooledConn for FakeConn {
        fn id(&self) -> usize {
            self.0
        }
        fn is_closed(&self) -> bool {
            self.1.get()
        }
        fn close(&self) {
            self.1.set(true)
        }
    }

    const T: Timestamp = Timestamp::from_millis(1);

    /// One worker whose pool holds `n` ready connections; returns the state, a lease on
    /// the worker, and the connections' close flags.
    fn pool_with(n: usize) -> (State<FakeConn>, Lease, Vec<Rc<Cell<bool>>>) {
        let mut s = State::new(
            Balancer::with_strategy(shoal_core::Strategy::LeastConnections),
            ChaCha8Rng::seed_from_u64(7),
            n as u16,
        );
        let id = NodeId::from_name("w");
        let meta = Meta {
            name: "w".into(),
            tags: BTreeMap::new(),
        };
        let addr = SocketAddr::from(([127, 0, 0, 1], 1000));
        s.upsert(id, MemberState::Alive, &Tags::new(), addr, meta);
        let lease = s.select(T, "").expect("a live worker");
        let mut flags = Vec::new();
        for i in 0..n {
            let c = s.checkout(&lease, None, T, None);
            assert!(
                matches!(
                    c,
                    Checkout::Connect { .. }
                        | Checkout::Ready {
                            open_another: true,
                            ..
                        }
                ),
                "the pool asks for connection {i}: {c:?}"
            );
            let flag = Rc::new(Cell::new(false));
            flags.push(flag.clone());
            let (wake, orphan) = s.connect_done(id, Ok(FakeConn(i, flag)), T);
            assert!(wake.is_empty() && orphan.is_none());
        }
        (s, lease, flags)
    }

    fn conn_id(c: Checkout<FakeConn>) -> usize {
        match c {
            Checkout::Ready { conn, .. } => conn.0,
            other => panic!("expected a ready connection, got {other:?}"),
        }
    }

    #[test]
    fn a_caller_with_affinity_stays_on_one_connection_and_callers_spread() {
        let (mut s, lease, _) = pool_with(4);
        for a in 0..8u64 {
            let first = conn_id(s.checkout(&lease, None, T, Some(a)));
            for _ in 0..10 {
                assert_eq!(conn_id(s.checkout(&lease, None, T, Some(a))), first);
            }
        }
        let used: std::collections::BTreeSet<usize> = (0..4u64)
            .map(|a| conn_id(s.checkout(&lease, None, T, Some(a))))
            .collect();
        assert_eq!(used.len(), 4, "four affinities use all four connections");
    }

    #[test]
    fn without_affinity_calls_go_round_robin() {
        let (mut s, lease, _) = pool_with(3);
        let ids: Vec<usize> = (0..6)
            .map(|_| conn_id(s.checkout(&lease, None, T, None)))
            .collect();
        assert_eq!(&ids[..3], &ids[3..], "a fixed rotation: {ids:?}");
        let distinct: std::collections::BTreeSet<_> = ids.iter().collect();
        assert_eq!(distinct.len(), 3, "every connection in turn: {ids:?}");
    }

    #[test]
    fn closed_connections_are_purged_on_demand_and_replaced() {
        let (mut s, lease, flags) = pool_with(3);
        let a = 5u64;
        let first = conn_id(s.checkout(&lease, None, T, Some(a)));
        flags[first].set(true);
        // Checkout does not look (that is the caller's open failing); the purge does.
        assert_eq!(conn_id(s.checkout(&lease, None, T, Some(a))), first);
        assert_eq!(s.purge_closed(lease.worker, T), 1);
        assert_eq!(s.purge_closed(lease.worker, T), 0, "purged once");
        let c = s.checkout(&lease, None, T, Some(a));
        let Checkout::Ready { conn, open_another } = c else {
            panic!("the other connections are still ready: {c:?}");
        };
        assert_ne!(conn.0, first, "the closed connection is not handed out");
        assert!(open_another, "the pool replaces the closed connection");
        let w = &s.balancer.workers(T)[0];
        assert_eq!(w.connections, (1, 2, 0), "one connecting, two ready");
        // With every connection closed and one attempt under way, callers wait for it.
        for f in &flags {
            f.set(true);
        }
        assert_eq!(s.purge_closed(lease.worker, T), 2);
        assert!(matches!(
            s.checkout(&lease, None, T, Some(a)),
            Checkout::Wait { .. }
        ));
    }
}
