//! The drive loop, written once for every async runtime.
//!
//! One task owns the [`Node`]: the [`Driver`] future. Each turn it waits for a datagram, the
//! timer or a command from a [`Handle`], feeds that one input to the node, drains every
//! output (datagrams to the socket, events to subscribers) and re-arms the timer only when
//! the node's deadline changed (quinn's `drive_timer`). Runtimes plug in through quinn's
//! [`Runtime`] (timers, spawning, the clock) and [`AsyncUdpSocket`] (the gossip socket is
//! wrapped by the same runtime that carries QUIC, so a binding supplies nothing else).
//!
//! ## Choices
//! * **Time.** The driver reads [`Runtime::now`] and picks its start as the epoch:
//!   [`Timestamp`] = microseconds since then. Deadlines convert back exactly, so a timer that
//!   fires always sees `now >= deadline`.
//! * **Commands** travel over an unbounded channel. Every handle method awaits its reply, so
//!   the queue holds at most one command per concurrent caller.
//! * **Queries** (members, phi, stats) go through the same channel as a closure run on the
//!   driver task with a oneshot reply ([`Handle::query`]). A snapshot published after each
//!   turn would cost O(members) per datagram; a query costs only when someone asks, and it
//!   reads the node between two inputs, never mid-update.
//! * **Events** fan out through [`broadcast`]: a bounded buffer shared by all subscribers, and
//!   [`Recv::Lagged`] for a subscriber that fell behind instead of silent drops. Publishing
//!   never waits on subscribers.
//! * **Errors** from the socket are counted in [`DriverStats`] (and reported to the
//!   [`Observer`]) and the loop continues: a send to an unreachable peer or an ICMP error
//!   surfacing on receive must never stop gossip. (quinn's sockets log and swallow most send
//!   errors themselves, as QUIC wants; those never reach the counter.)
//! * **Coalesced receives.** quinn's sockets turn on GRO where the OS has it, so one receive
//!   may carry several datagrams from one sender at a fixed stride; each is handed to the node
//!   on its own, as if received alone.
//! * **No fragmentation.** quinn's sockets set don't-fragment: keep [`Config::mtu`] at or
//!   below the path MTU (the default, 1400 bytes, is).
//! * **Backpressure.** At most [`DriverConfig::max_queued_transmits`] datagrams wait for the
//!   socket; while that many wait the loop stops reading, and beyond it the oldest are
//!   dropped and counted (gossip tolerates loss; a stalled socket must not grow memory).
//! * **Fairness.** One poll handles at most [`TURN_BUDGET`] inputs, then yields, so a flood
//!   of datagrams cannot starve the runtime's other tasks.
//! * **Stopping.** The loop ends after [`Event::LeftCluster`], on [`Handle::shutdown`], or when
//!   every handle is dropped; it flushes queued datagrams first. Subscribers then read what is
//!   buffered and get `None`; pending calls fail with [`DriverError::Closed`].

pub mod broadcast;
#[cfg(all(test, not(shoal_loom)))]
mod tests;

pub use broadcast::{Recv, Subscriber, Subscribers};

use core::future::Future;
use core::pin::Pin;
use core::task::{Context, Poll};
use core::time::Duration;
use futures_channel::{mpsc, oneshot};
use futures_core::Stream;
use quinn::udp::{RecvMeta, Transmit as UdpTransmit};
use quinn::{AsyncTimer, AsyncUdpSocket, Runtime, UdpPoller};
use rand_core::RngCore;
use shoal_core::{CommandError, Config, ConfigError, Event, Identity, Node, PacketError, Stats};
use shoal_core::{Timestamp, Transmit};
use std::collections::VecDeque;
use std::io::{self, IoSliceMut};
use std::net::SocketAddr;
use std::sync::Arc;
use std::time::Instant;

/// Most inputs handled in one poll before the driver yields to the runtime.
pub const TURN_BUDGET: usize = 64;

/// Largest datagram the driver can receive (the largest UDP payload).
const RECV_BUF: usize = 65_536;

/// Hooks the driver calls from its task, for logging and metrics (the cluster handle turns
/// them into `tracing` events). Every method defaults to doing nothing.
pub trait Observer: Send + 'static {
    /// An event, before subscribers see it.
    fn on_event(&mut self, event: &Event) {
        let _ = event;
    }
    /// The node rejected a datagram (already counted in [`Stats::dropped`]).
    fn on_packet_dropped(&mut self, from: SocketAddr, error: &PacketError) {
        let _ = (from, error);
    }
    /// A datagram could not be sent (counted in [`DriverStats::send_errors`]).
    fn on_send_error(&mut self, dst: SocketAddr, error: &io::Error) {
        let _ = (dst, error);
    }
    /// Receiving failed (counted in [`DriverStats::recv_errors`]).
    fn on_recv_error(&mut self, error: &io::Error) {
        let _ = error;
    }
}

/// How the driver behaves, beyond the node's own [`Config`].
pub struct DriverConfig {
    /// Events buffered for subscribers; a subscriber more than this many behind gets
    /// [`Recv::Lagged`].
    pub event_capacity: usize,
    /// Datagrams waiting for the socket before the driver stops reading and then drops the
    /// oldest.
    pub max_queued_transmits: usize,
    /// Logging and metrics hooks.
    pub observer: Option<Box<dyn Observer>>,
    /// The gossip keyring handed to the node before it handles anything (see
    /// [`Node::set_keyring`]); `None` is plaintext.
    pub keyring: Option<shoal_core::Keyring>,
    /// Publish the node's counters and gauges through the `metrics` facade (see
    /// [`crate::metrics`]), labelled with this node name; `None` publishes nothing.
    pub metrics_node: Option<String>,
}

impl Default for DriverConfig {
    fn default() -> Self {
        DriverConfig {
            event_capacity: 1024,
            max_queued_transmits: 4096,
            observer: None,
            keyring: None,
            metrics_node: None,
        }
    }
}

impl core::fmt::Debug for DriverConfig {
    fn fmt(&self, f: &mut core::fmt::Formatter<'_>) -> core::fmt::Result {
        f.debug_struct("DriverConfig")
            .field("event_capacity", &self.event_capacity)
            .field("max_queued_transmits", &self.max_queued_transmits)
            .field("observer", &self.observer.is_some())
            .field("metrics_node", &self.metrics_node)
            .finish()
    }
}

/// Counters the driver keeps about its own I/O, beside the node's [`Stats`].
#[derive(Clone, Debug, Default, PartialEq, Eq)]
pub struct DriverStats {
    /// Datagrams the socket accepted.
    pub datagrams_sent: u64,
    /// Datagrams received from the socket and handed to the node.
    pub datagrams_received: u64,
    /// Sends that failed (the datagram is dropped; gossip tolerates loss).
    pub send_errors: u64,
    /// Receives that failed.
    pub recv_errors: u64,
    /// Datagrams dropped because too many were waiting for the socket.
    pub transmits_dropped: u64,
    /// Times the timer was re-armed for a new deadline.
    pub timer_resets: u64,
}

/// The answer to a join: the node now holds the cluster's state.
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub struct Joined {
    /// The seed that answered.
    pub via: SocketAddr,
    /// Live members right after joining, this node included.
    pub members: usize,
}

/// Why a [`Handle`] call failed.
#[derive(Debug, Clone, PartialEq, Eq, thiserror::Error)]
pub enum DriverError {
    /// The node refused the command.
    #[error(transparent)]
    Command(#[from] CommandError),
    /// The driver has stopped (left, shut down, or its task was dropped).
    #[error("the cluster driver has stopped")]
    Closed,
}

type QueryFn<R> = Box<dyn FnOnce(&Node<R>, &DriverStats) + Send>;
type MutateFn<R> = Box<dyn FnOnce(&mut Node<R>) + Send>;

enum Command<R> {
    Join {
        seeds: Vec<SocketAddr>,
        done: oneshot::Sender<Result<Joined, CommandError>>,
    },
    SetTag {
        key: String,
        value: String,
        reply: oneshot::Sender<Result<(), CommandError>>,
    },
    RemoveTag {
        key: String,
        reply: oneshot::Sender<Result<(), CommandError>>,
    },
    Leave {
        done: oneshot::Sender<Result<(), CommandError>>,
    },
    Query(QueryFn<R>),
    Mutate(MutateFn<R>),
    Shutdown,
}

/// A cheap, cloneable handle to a running [`Driver`]: commands, queries and subscriptions.
pub struct Handle<R> {
    commands: mpsc::UnboundedSender<Command<R>>,
    events: Subscribers<Event>,
}

impl<R> Clone for Handle<R> {
    fn clone(&self) -> Self {
        Handle {
            commands: self.commands.clone(),
            events: self.events.clone(),
        }
    }
}

impl<R> core::fmt::Debug for Handle<R> {
    fn fmt(&self, f: &mut core::fmt::Formatter<'_>) -> core::fmt::Result {
        f.debug_struct("Handle")
            .field("closed", &self.commands.is_closed())
            .finish()
    }
}

/// The outcome of a command, as a future. The command is queued when the method that returns
/// this comes back, so commands from one caller apply in call order whether or not their
/// replies are awaited; dropping a `Reply` only discards the outcome.
#[derive(Debug)]
pub struct Reply<T> {
    rx: Option<oneshot::Receiver<Result<T, CommandError>>>,
}

impl<T> Reply<T> {
    /// Whether the command could not even be queued (the driver had stopped).
    pub fn is_closed(&self) -> bool {
        self.rx.is_none()
    }
}

impl<T> Future for Reply<T> {
    type Output = Result<T, DriverError>;

    fn poll(mut self: Pin<&mut Self>, cx: &mut Context<'_>) -> Poll<Self::Output> {
        let Some(rx) = &mut self.rx else {
            return Poll::Ready(Err(DriverError::Closed));
        };
        match Pin::new(rx).poll(cx) {
            Poll::Pending => Poll::Pending,
            Poll::Ready(Ok(r)) => Poll::Ready(r.map_err(DriverError::Command)),
            Poll::Ready(Err(_canceled)) => Poll::Ready(Err(DriverError::Closed)),
        }
    }
}

impl<R: RngCore + Send + 'static> Handle<R> {
    fn request<T>(
        &self,
        make: impl FnOnce(oneshot::Sender<Result<T, CommandError>>) -> Command<R>,
    ) -> Reply<T> {
        let (tx, rx) = oneshot::channel();
        let queued = self.commands.unbounded_send(make(tx)).is_ok();
        Reply {
            rx: queued.then_some(rx),
        }
    }

    /// Starts joining through `seeds` (gossip addresses); the reply comes once a seed
    /// answered ([`Event::Joined`]). The node keeps retrying with backoff until then: wrap the
    /// wait in a timeout (the join goes on in the background if the caller gives up).
    pub fn join(&self, seeds: Vec<SocketAddr>) -> Reply<Joined> {
        self.request(|done| Command::Join { seeds, done })
    }

    /// Sets a tag; peers learn it through gossip.
    pub fn set_tag(&self, key: String, value: String) -> Reply<()> {
        self.request(|reply| Command::SetTag { key, value, reply })
    }

    /// Removes a tag; peers learn it through gossip.
    pub fn remove_tag(&self, key: String) -> Reply<()> {
        self.request(|reply| Command::RemoveTag { key, reply })
    }

    /// Leaves gracefully; the reply comes on [`Event::LeftCluster`], after which the driver
    /// stops. Asking again while a leave is under way waits for the same event.
    pub fn leave(&self) -> Reply<()> {
        self.request(|done| Command::Leave { done })
    }

    /// Runs `f` on the driver task against the node, between two inputs, and replies with its
    /// result. Keep `f` short: the node handles nothing while it runs.
    pub fn query<T, F>(&self, f: F) -> Reply<T>
    where
        T: Send + 'static,
        F: FnOnce(&Node<R>) -> T + Send + 'static,
    {
        self.request(|tx| {
            Command::Query(Box::new(move |node, _| {
                let _ = tx.send(Ok(f(node)));
            }))
        })
    }

    /// Runs `f` on the node as one input (e.g. a keyring change), then drains its outputs.
    pub fn mutate<T, F>(&self, f: F) -> Reply<T>
    where
        T: Send + 'static,
        F: FnOnce(&mut Node<R>) -> T + Send + 'static,
    {
        self.request(|tx| {
            Command::Mutate(Box::new(move |node| {
                let _ = tx.send(Ok(f(node)));
            }))
        })
    }

    /// The node's counters and the driver's own.
    pub fn stats(&self) -> Reply<(Stats, DriverStats)> {
        self.request(|tx| {
            Command::Query(Box::new(move |node, stats| {
                let _ = tx.send(Ok((node.stats(), stats.clone())));
            }))
        })
    }

    /// Stops the driver without leaving (peers will eventually see this node fail). Prefer
    /// [`Handle::leave`]. Returns at once.
    pub fn shutdown(&self) {
        let _ = self.commands.unbounded_send(Command::Shutdown);
    }

    /// A subscriber to every event from now on.
    pub fn subscribe(&self) -> Subscriber<Event> {
        self.events.subscribe()
    }

    /// Whether the driver has stopped.
    pub fn is_closed(&self) -> bool {
        self.commands.is_closed()
    }
}

/// The future that owns and drives one [`Node`]. Spawn it (see [`Driver::spawn`]) or poll it
/// inside your own task; it completes when the node has left or the driver was shut down.
pub struct Driver<R: RngCore> {
    runtime: Arc<dyn Runtime>,
    socket: Arc<dyn AsyncUdpSocket>,
    /// Registers the task for writability after a send would block.
    writable: Pin<Box<dyn UdpPoller>>,
    node: Box<Node<R>>,
    epoch: Instant,
    commands: mpsc::UnboundedReceiver<Command<R>>,
    events: broadcast::Publisher<Event>,
    observer: Option<Box<dyn Observer>>,
    metrics: Option<crate::metrics::GossipMetrics>,
    timer: Option<Pin<Box<dyn AsyncTimer>>>,
    timer_deadline: Option<Instant>,
    outgoing: VecDeque<Transmit>,
    max_queued: usize,
    recv_buf: Box<[u8]>,
    join_waiters: Vec<oneshot::Sender<Result<Joined, CommandError>>>,
    leave_waiters: Vec<oneshot::Sender<Result<(), CommandError>>>,
    stats: DriverStats,
    /// Stop once the outgoing queue is flushed.
    finishing: bool,
    done: bool,
}

impl<R: RngCore> core::fmt::Debug for Driver<R> {
    fn fmt(&self, f: &mut core::fmt::Formatter<'_>) -> core::fmt::Result {
        f.debug_struct("Driver")
            .field("node", &self.node.id())
            .field("outgoing", &self.outgoing.len())
            .field("stats", &self.stats)
            .finish()
    }
}

impl<R: RngCore + Send + 'static> Driver<R> {
    /// Creates the node (time zero is now, per `runtime`) and its driver. Nothing runs until
    /// the driver is spawned or polled. `rng` feeds the node; adapters seed it from the OS.
    pub fn new(
        runtime: Arc<dyn Runtime>,
        socket: Arc<dyn AsyncUdpSocket>,
        config: Config,
        identity: Identity,
        rng: R,
        mut driver_config: DriverConfig,
    ) -> Result<(Self, Handle<R>), ConfigError> {
        let epoch = runtime.now();
        let mut node = Node::new(config, identity, rng, Timestamp::ZERO)?;
        node.set_keyring(driver_config.keyring.take());
        let (tx, rx) = mpsc::unbounded();
        let (publisher, subscribers) = broadcast::channel(driver_config.event_capacity);
        let driver = Driver {
            runtime,
            writable: socket.clone().create_io_poller(),
            socket,
            node: Box::new(node),
            epoch,
            commands: rx,
            events: publisher,
            observer: driver_config.observer,
            metrics: driver_config
                .metrics_node
                .as_deref()
                .map(crate::metrics::GossipMetrics::new),
            timer: None,
            timer_deadline: None,
            outgoing: VecDeque::new(),
            max_queued: driver_config.max_queued_transmits.max(1),
            recv_buf: vec![0u8; RECV_BUF].into_boxed_slice(),
            join_waiters: Vec::new(),
            leave_waiters: Vec::new(),
            stats: DriverStats::default(),
            finishing: false,
            done: false,
        };
        let handle = Handle {
            commands: tx,
            events: subscribers,
        };
        Ok((driver, handle))
    }

    /// Spawns the driver on its runtime.
    pub fn spawn(self) {
        let runtime = self.runtime.clone();
        runtime.spawn(Box::pin(self));
    }

    /// The node's time for `instant`.
    fn timestamp(&self, instant: Instant) -> Timestamp {
        let micros = instant.saturating_duration_since(self.epoch).as_micros();
        Timestamp::from_micros(u64::try_from(micros).unwrap_or(u64::MAX))
    }

    fn now(&self) -> Timestamp {
        self.timestamp(self.runtime.now())
    }

    /// The instant of a node deadline; `None` when it is beyond what `Instant` can hold.
    fn instant(&self, ts: Timestamp) -> Option<Instant> {
        self.epoch
            .checked_add(Duration::from_micros(ts.as_micros()))
    }

    /// Moves every pending output out of the node.
    fn drain(&mut self) {
        while let Some(t) = self.node.poll_transmit() {
            if self.outgoing.len() >= self.max_queued {
                self.outgoing.pop_front();
                self.stats.transmits_dropped += 1;
            }
            self.outgoing.push_back(t);
        }
        while let Some(event) = self.node.poll_event() {
            if let Some(o) = &mut self.observer {
                o.on_event(&event);
            }
            if let Some(m) = &self.metrics {
                m.on_event(&event);
            }
            match &event {
                Event::Joined { via, members } => {
                    let joined = Joined {
                        via: *via,
                        members: *members,
                    };
                    for w in self.join_waiters.drain(..) {
                        let _ = w.send(Ok(joined));
                    }
                }
                Event::LeftCluster => {
                    for w in self.leave_waiters.drain(..) {
                        let _ = w.send(Ok(()));
                    }
                    self.finishing = true;
                }
                _ => {}
            }
            self.events.publish(event);
        }
    }

    fn handle_command(&mut self, cmd: Command<R>) {
        let now = self.now();
        match cmd {
            Command::Join { seeds, done } => match self.node.join(now, &seeds) {
                Ok(()) => {
                    self.join_waiters.retain(|w| !w.is_canceled());
                    self.join_waiters.push(done);
                }
                Err(e) => {
                    let _ = done.send(Err(e));
                }
            },
            Command::SetTag { key, value, reply } => {
                let _ = reply.send(self.node.set_tag(now, &key, &value));
            }
            Command::RemoveTag { key, reply } => {
                let _ = reply.send(self.node.remove_tag(now, &key));
            }
            Command::Leave { done } => match self.node.leave(now) {
                Ok(()) => self.leave_waiters.push(done),
                // Already leaving: wait for the same LeftCluster.
                Err(CommandError::Left) if !self.node.has_left() => self.leave_waiters.push(done),
                Err(e) => {
                    let _ = done.send(Err(e));
                }
            },
            Command::Query(f) => f(&self.node, &self.stats),
            Command::Mutate(f) => f(&mut self.node),
            Command::Shutdown => self.finishing = true,
        }
        self.drain();
    }

    /// Sends queued datagrams until the socket would block; returns whether any left.
    fn flush(&mut self, cx: &mut Context<'_>) -> bool {
        let mut progressed = false;
        while let Some(t) = self.outgoing.front() {
            let transmit = UdpTransmit {
                destination: t.dst,
                ecn: None,
                contents: &t.payload,
                segment_size: None,
                src_ip: None,
            };
            match self.socket.try_send(&transmit) {
                Ok(()) => self.stats.datagrams_sent += 1,
                Err(e) if e.kind() == io::ErrorKind::WouldBlock => {
                    match self.writable.as_mut().poll_writable(cx) {
                        Poll::Pending => break,
                        // Writable again (or the readiness check failed): try once more.
                        Poll::Ready(Ok(())) => continue,
                        Poll::Ready(Err(e)) => self.send_failed(&e),
                    }
                }
                Err(e) => self.send_failed(&e),
            }
            self.outgoing.pop_front();
            progressed = true;
        }
        progressed
    }

    /// Counts and reports a failed send of the front datagram (which the caller then drops).
    fn send_failed(&mut self, e: &io::Error) {
        self.stats.send_errors += 1;
        if let (Some(o), Some(t)) = (&mut self.observer, self.outgoing.front()) {
            o.on_send_error(t.dst, e);
        }
    }

    /// Receives from the socket and feeds what arrived; returns whether anything happened.
    fn receive(&mut self, cx: &mut Context<'_>) -> bool {
        if self.outgoing.len() >= self.max_queued {
            return false;
        }
        let mut meta = [RecvMeta::default()];
        let polled = {
            let mut bufs = [IoSliceMut::new(&mut self.recv_buf)];
            self.socket.poll_recv(cx, &mut bufs, &mut meta)
        };
        match polled {
            Poll::Pending => false,
            Poll::Ready(Ok(0)) => false,
            Poll::Ready(Ok(_)) => {
                let meta = &meta[0];
                let len = meta.len.min(self.recv_buf.len());
                // GRO: datagrams from one sender at `stride` offsets (one datagram: stride = len).
                // An empty datagram is still one datagram (the node counts it as a drop).
                let stride = if meta.stride == 0 { len } else { meta.stride };
                let mut start = 0;
                loop {
                    let end = (start + stride).min(len);
                    self.feed(meta.addr, start, end);
                    start = end;
                    if start >= len || stride == 0 {
                        break;
                    }
                }
                true
            }
            Poll::Ready(Err(e)) => {
                self.stats.recv_errors += 1;
                if let Some(o) = &mut self.observer {
                    o.on_recv_error(&e);
                }
                true
            }
        }
    }

    /// Hands one received datagram (`recv_buf[start..end]`) to the node and drains.
    fn feed(&mut self, from: SocketAddr, start: usize, end: usize) {
        self.stats.datagrams_received += 1;
        let now = self.now();
        if let Err(e) = self
            .node
            .handle_packet(now, from, &self.recv_buf[start..end])
        {
            if let Some(o) = &mut self.observer {
                o.on_packet_dropped(from, &e);
            }
        }
        self.drain();
    }

    /// quinn's `drive_timer`: handles an expired deadline, re-arms the timer only when the
    /// deadline changed, and polls it. Returns whether the node was fed a timeout.
    fn drive_timer(&mut self, cx: &mut Context<'_>) -> bool {
        let Some(deadline) = self.node.poll_timeout().and_then(|t| self.instant(t)) else {
            self.timer_deadline = None;
            return false;
        };
        let now = self.runtime.now();
        if deadline <= now {
            let ts = self.timestamp(now);
            self.node.handle_timeout(ts);
            self.drain();
            return true;
        }
        if self.timer_deadline != Some(deadline) {
            match &mut self.timer {
                Some(t) => t.as_mut().reset(deadline),
                None => self.timer = Some(self.runtime.new_timer(deadline)),
            }
            self.timer_deadline = Some(deadline);
            self.stats.timer_resets += 1;
        }
        let fired = match &mut self.timer {
            Some(t) => t.as_mut().poll(cx).is_ready(),
            None => false,
        };
        if fired {
            let now = self.now();
            self.node.handle_timeout(now);
            self.drain();
        }
        fired
    }

    fn finish(&mut self) {
        self.done = true;
        self.events.close();
        // Pending joins and leaves fail with Closed as their senders drop.
        self.join_waiters.clear();
        self.leave_waiters.clear();
        self.commands.close();
    }
}

impl<R: RngCore + Send + 'static> Future for Driver<R> {
    type Output = ();

    fn poll(self: Pin<&mut Self>, cx: &mut Context<'_>) -> Poll<()> {
        // Every field is Unpin (the node is boxed), so the driver is Unpin.
        let this = self.get_mut();
        if this.done {
            return Poll::Ready(());
        }
        if this.metrics.is_some() {
            let now = this.now();
            if let Some(m) = &mut this.metrics {
                m.maybe_publish(now, &this.node, &this.stats);
            }
        }
        for _ in 0..TURN_BUDGET {
            let mut progressed = this.flush(cx);
            if this.finishing {
                if this.outgoing.is_empty() {
                    this.finish();
                    return Poll::Ready(());
                }
                if !progressed {
                    return Poll::Pending;
                }
                continue;
            }
            match Pin::new(&mut this.commands).poll_next(cx) {
                Poll::Ready(Some(cmd)) => {
                    this.handle_command(cmd);
                    progressed = true;
                }
                Poll::Ready(None) => {
                    // Every handle is gone: nobody can ask to leave any more.
                    this.finishing = true;
                    progressed = true;
                }
                Poll::Pending => {}
            }
            progressed |= this.receive(cx);
            progressed |= this.drive_timer(cx);
            if !progressed {
                return Poll::Pending;
            }
        }
        // Budget spent with work left: yield, and ask to be polled again at once.
        cx.waker().wake_by_ref();
        Poll::Pending
    }
}
