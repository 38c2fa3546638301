//! Connection sets: which pooled connection a call uses, and when to open, replace or drop one.
//!
//! The rule this module owns: **a connection is handed to a call only while the pool holds it,
//! and the pool lets go of it exactly once.** Each connection (and each attempt to open one)
//! gets a [`ConnId`] that is never reused, so a stale handle (an attempt that ended after its
//! worker moved or left, a connection already reported lost) can never be mistaken for a live
//! one. Every change is reported to the [`Balancer`]'s accounting as a [`ConnEvent`]
//! (`Connecting` when an attempt starts, then `Connected` or `ConnectFailed`, and `Closed` once
//! when a ready connection leaves), so the balancer's connection cap and connect back-off apply.
//!
//! Per worker, a [`ConnectionSet`] holds the ready connections, the attempts under way, and a
//! generation bumped whenever an attempt ends (callers waiting for a connection wait for the
//! generation to pass). [`Connections`] holds one set per worker and the id counter.
//!
//! | situation                                   | decision                                      |
//! |---------------------------------------------|-----------------------------------------------|
//! | a ready connection exists                   | use the one the caller's affinity key picks   |
//! |                                             | (round-robin without a key); open another     |
//! |                                             | in the background while below `per_worker`    |
//! | none ready, an attempt under way            | wait for it (its generation)                  |
//! | none ready, none under way, may open        | open one and wait for it                      |
//! | the attempt the caller waited for failed    | unavailable, with the typed [`ConnectFailure`]|
//! | the balancer refuses another (cap, back-off)| unavailable                                   |
//! | the worker moved to another address         | close its connections; attempts to the old    |
//! |                                             | address are closed when they end              |
//! | a stream could not be opened                | drop every connection the adapter finds closed|
//! | a call lost its connection                  | drop that connection (once)                   |
//!
//! Why per-caller affinity: the adapter passes an opaque key per task. Calls issued by one
//! task stay on one connection, so answers that woke a task together leave together again (one
//! datagram instead of four on 4 connections halved 1-byte throughput, BENCHMARKS.md), while
//! different tasks still spread over all connections.
//!
//! The handle type `C` is the adapter's (a QUIC connection); the set only clones and returns it.

use crate::balancer::Balancer;
use crate::pool::{ConnEvent, Lease};
use crate::{NodeId, Timestamp};
use core::net::SocketAddr;
use std::collections::btree_map::Entry;
use std::collections::BTreeMap;

/// A connection (or an attempt to open one), unique for the life of its [`Connections`].
#[derive(Clone, Copy, Debug, PartialEq, Eq, PartialOrd, Ord, Hash)]
pub struct ConnId(pub u64);

/// Why no connection to a worker could be had. Typed, so the call path decides on the
/// variant (a refused handshake is a configuration problem, not an outage), never on text.
#[derive(Clone, Debug, PartialEq, Eq, thiserror::Error)]
pub enum ConnectFailure {
    /// The worker advertises no RPC address.
    #[error("the worker advertises no RPC address")]
    NoAddress,
    /// The worker refused the handshake (certificate, ALPN, version): configuration.
    #[error("refused: {0}")]
    Refused(String),
    /// The handshake did not finish within the connect timeout.
    #[error("connect timed out after {0:?}")]
    TimedOut(core::time::Duration),
    /// The worker could not be reached (no route, reset, local socket failure).
    #[error("{0}")]
    Unreachable(String),
    /// The balancer allows no further connection now (at its cap, or backing off).
    #[error("no connection can be opened now")]
    NoCapacity,
}

/// A connection attempt the adapter must start.
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub struct Attempt {
    /// Hand this back to [`Connections::connect_done`].
    pub id: ConnId,
    /// Where to connect.
    pub addr: SocketAddr,
}

/// What a caller holding a lease does next.
#[derive(Clone, Debug, PartialEq, Eq)]
pub enum Checkout<C> {
    /// Use this connection; if `open_another` is set, also start that attempt in the
    /// background (the set wants more connections than it has).
    Ready {
        /// The connection's id (report a loss with it).
        id: ConnId,
        /// The adapter's handle.
        conn: C,
        /// An attempt to start without waiting for it.
        open_another: Option<Attempt>,
    },
    /// No ready connection: start `attempt`, then wait for generation `gen` to pass.
    Connect {
        /// The attempt to start.
        attempt: Attempt,
        /// The generation to wait past.
        gen: u64,
    },
    /// Someone else's attempt is under way: wait for generation `gen` to pass.
    Wait {
        /// The generation to wait past.
        gen: u64,
    },
    /// No connection can be had.
    Unavailable(ConnectFailure),
}

/// One worker's connections.
#[derive(Clone, Debug)]
pub struct ConnectionSet<C> {
    addr: SocketAddr,
    ready: Vec<(ConnId, C)>,
    /// Attempts to `addr` under way.
    pending: Vec<ConnId>,
    /// Attempts to an address the worker has since left: closed when they end.
    stale: Vec<ConnId>,
    /// Round-robin cursor for callers without an affinity key.
    next: usize,
    /// Bumped whenever an attempt ends, so waiters look again.
    gen: u64,
    /// Why the last attempt failed, if none succeeded since.
    last_failure: Option<ConnectFailure>,
}

impl<C: Clone> ConnectionSet<C> {
    fn new(addr: SocketAddr) -> Self {
        ConnectionSet {
            addr,
            ready: Vec::new(),
            pending: Vec::new(),
            stale: Vec::new(),
            next: 0,
            gen: 0,
            last_failure: None,
        }
    }

    /// Where the worker's connections go.
    pub fn addr(&self) -> SocketAddr {
        self.addr
    }

    /// The ready connections, oldest first.
    pub fn ready(&self) -> impl Iterator<Item = (ConnId, &C)> {
        self.ready.iter().map(|(id, c)| (*id, c))
    }

    /// Attempts under way (to the current address).
    pub fn connecting(&self) -> usize {
        self.pending.len()
    }

    /// The generation: bumped whenever an attempt ends.
    pub fn generation(&self) -> u64 {
        self.gen
    }

    /// The ready connection for `affinity` (round-robin without one).
    fn pick(&mut self, affinity: Option<u64>) -> Option<(ConnId, C)> {
        if self.ready.is_empty() {
            return None;
        }
        let k = match affinity {
            Some(a) => a as usize,
            None => {
                self.next = self.next.wrapping_add(1);
                self.next
            }
        };
        let (id, c) = &self.ready[k % self.ready.len()];
        Some((*id, c.clone()))
    }
}

/// Every worker's [`ConnectionSet`], and the id counter.
#[derive(Clone, Debug)]
pub struct Connections<C> {
    /// Keyed by worker id, never by address: a worker that restarts elsewhere keeps its key
    /// and its set is purged. A B-tree: a handful of workers is a few comparisons, cheaper per
    /// call than hashing.
    sets: BTreeMap<NodeId, ConnectionSet<C>>,
    next_id: u64,
    per_worker: u16,
}

impl<C: Clone> Connections<C> {
    /// Keeps up to `per_worker` connections to each worker (at least 1; the balancer's
    /// `max_connections` caps it further).
    pub fn new(per_worker: u16) -> Self {
        Connections {
            sets: BTreeMap::new(),
            next_id: 0,
            per_worker: per_worker.max(1),
        }
    }

    /// Changes how many connections to keep per worker (at least 1).
    pub fn set_per_worker(&mut self, n: u16) {
        self.per_worker = n.max(1);
    }

    /// Connections kept per worker.
    pub fn per_worker(&self) -> u16 {
        self.per_worker
    }

    /// `worker`'s set, if it has one.
    pub fn set(&self, worker: NodeId) -> Option<&ConnectionSet<C>> {
        self.sets.get(&worker)
    }

    fn fresh_id(&mut self) -> ConnId {
        self.next_id += 1;
        ConnId(self.next_id)
    }

    /// Finds a connection for `lease`, or says how to get one. `seen` is the generation the
    /// caller waited past, if it waited; `affinity` the caller's opaque key.
    #[inline]
    pub fn checkout(
        &mut self,
        balancer: &mut Balancer,
        lease: &Lease,
        seen: Option<u64>,
        affinity: Option<u64>,
        now: Timestamp,
    ) -> Checkout<C> {
        let worker = lease.worker;
        let per_worker = usize::from(self.per_worker);
        let set = match self.sets.entry(worker) {
            Entry::Occupied(e) => e.into_mut(),
            Entry::Vacant(e) => match lease.rpc_addr {
                Some(addr) => e.insert(ConnectionSet::new(addr)),
                None => return Checkout::Unavailable(ConnectFailure::NoAddress),
            },
        };
        let picked = set.pick(affinity);
        let want_more = set.ready.len() + set.pending.len() < per_worker;
        let (gen, connecting) = (set.gen, !set.pending.is_empty());
        if let Some((id, conn)) = picked {
            let open_another = if want_more {
                self.start_attempt(balancer, worker, now)
            } else {
                None
            };
            return Checkout::Ready {
                id,
                conn,
                open_another,
            };
        }
        if connecting {
            return Checkout::Wait { gen };
        }
        if seen.is_some_and(|s| s != gen) {
            if let Some(why) = &set.last_failure {
                return Checkout::Unavailable(why.clone());
            }
        }
        let failed = set.last_failure.clone();
        if want_more {
            if let Some(attempt) = self.start_attempt(balancer, worker, now) {
                return Checkout::Connect { attempt, gen };
            }
        }
        Checkout::Unavailable(failed.unwrap_or(ConnectFailure::NoCapacity))
    }

    /// Starts an attempt to `worker`'s address if the balancer allows one.
    fn start_attempt(
        &mut self,
        balancer: &mut Balancer,
        worker: NodeId,
        now: Timestamp,
    ) -> Option<Attempt> {
        balancer
            .connection_event(worker, ConnEvent::Connecting, now)
            .ok()?;
        let id = self.fresh_id();
        let set = self.sets.get_mut(&worker)?;
        set.pending.push(id);
        Some(Attempt { id, addr: set.addr })
    }

    /// Attempt `id` to `worker` ended. Returns the connection if the pool does not keep it
    /// (the worker left or moved meanwhile): the caller closes it.
    pub fn connect_done(
        &mut self,
        balancer: &mut Balancer,
        worker: NodeId,
        id: ConnId,
        result: Result<C, ConnectFailure>,
        now: Timestamp,
    ) -> Option<C> {
        let Some(set) = self.sets.get_mut(&worker) else {
            // The worker left: its accounting went with it.
            return result.ok();
        };
        if let Some(i) = set.stale.iter().position(|s| *s == id) {
            set.stale.swap_remove(i);
            // An attempt to the old address: balance its `Connecting`, keep nothing.
            return match result {
                Ok(c) => {
                    let _ = balancer.connection_event(worker, ConnEvent::Connected, now);
                    let _ = balancer.connection_event(worker, ConnEvent::Closed, now);
                    Some(c)
                }
                Err(_) => {
                    let _ = balancer.connection_event(worker, ConnEvent::ConnectFailed, now);
                    None
                }
            };
        }
        let Some(i) = set.pending.iter().position(|p| *p == id) else {
            // Not an attempt of this set (the worker left and came back meanwhile).
            return result.ok();
        };
        set.pending.swap_remove(i);
        set.gen += 1;
        match result {
            Ok(c) => {
                set.ready.push((id, c));
                set.last_failure = None;
                let _ = balancer.connection_event(worker, ConnEvent::Connected, now);
                None
            }
            Err(why) => {
                set.last_failure = Some(why);
                let _ = balancer.connection_event(worker, ConnEvent::ConnectFailed, now);
                None
            }
        }
    }

    /// A call on connection `id` lost it: it leaves the pool (once). `false` if it had
    /// left already.
    pub fn lost(
        &mut self,
        balancer: &mut Balancer,
        worker: NodeId,
        id: ConnId,
        now: Timestamp,
    ) -> bool {
        let Some(set) = self.sets.get_mut(&worker) else {
            return false;
        };
        let Some(i) = set.ready.iter().position(|(c, _)| *c == id) else {
            return false;
        };
        set.ready.remove(i);
        let _ = balancer.connection_event(worker, ConnEvent::Closed, now);
        true
    }

    /// A stream could not be opened on one of `worker`'s connections, so it has closed:
    /// every connection `is_closed` reports closed leaves the pool, each once. Returns how many
    /// left. The only place connection state is looked at, so the per-call path never does.
    pub fn purge_closed(
        &mut self,
        balancer: &mut Balancer,
        worker: NodeId,
        is_closed: impl Fn(&C) -> bool,
        now: Timestamp,
    ) -> usize {
        let Some(set) = self.sets.get_mut(&worker) else {
            return 0;
        };
        let before = set.ready.len();
        set.ready.retain(|(_, c)| !is_closed(c));
        let gone = before - set.ready.len();
        for _ in 0..gone {
            let _ = balancer.connection_event(worker, ConnEvent::Closed, now);
        }
        gone
    }

    /// Membership says `worker` serves at `addr`. If it moved, its connections are useless:
    /// they leave the pool and are returned for the caller to close; attempts to the old
    /// address are closed when they end.
    pub fn upsert(
        &mut self,
        balancer: &mut Balancer,
        worker: NodeId,
        addr: SocketAddr,
        now: Timestamp,
    ) -> Vec<C> {
        let Some(set) = self.sets.get_mut(&worker) else {
            return Vec::new();
        };
        if set.addr == addr {
            return Vec::new();
        }
        set.addr = addr;
        set.gen += 1;
        set.last_failure = None;
        let pending = core::mem::take(&mut set.pending);
        set.stale.extend(pending);
        let old: Vec<C> = set.ready.drain(..).map(|(_, c)| c).collect();
        for _ in &old {
            let _ = balancer.connection_event(worker, ConnEvent::Closed, now);
        }
        old
    }

    /// `worker` left the pool (failed, left, stopped serving): its connections are returned
    /// (the caller closes them, or lets them drain), each reported closed.
    pub fn remove(&mut self, balancer: &mut Balancer, worker: NodeId, now: Timestamp) -> Vec<C> {
        let Some(set) = self.sets.remove(&worker) else {
            return Vec::new();
        };
        for _ in &set.ready {
            let _ = balancer.connection_event(worker, ConnEvent::Closed, now);
        }
        set.ready.into_iter().map(|(_, c)| c).collect()
    }
}

#[cfg(test)]
mod tests;
