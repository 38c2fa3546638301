//! The drive loop on a hand-rolled runtime: virtual clock, in-memory sockets, manual polling.
//! Shows the loop needs nothing from any async runtime but the [`Runtime`] trait.

use super::*;
use rand_chacha::ChaCha8Rng;
use rand_core::SeedableRng;
use shoal_core::Identity;
use std::sync::Mutex;
use std::task::{Wake, Waker};

/// Virtual time and an in-memory network shared by every mock object.
#[derive(Debug)]
struct World {
    now: Mutex<Instant>,
    /// Datagrams in flight: (from, to, bytes).
    wire: Mutex<VecDeque<(SocketAddr, SocketAddr, Vec<u8>)>>,
    /// Destinations whose sends fail.
    broken: SocketAddr,
}

#[derive(Debug)]
struct MockRuntime(Arc<World>);

#[derive(Debug)]
struct MockTimer(Arc<World>, Instant);

#[derive(Debug)]
struct MockSocket(Arc<World>, SocketAddr);

impl Runtime for MockRuntime {
    fn new_timer(&self, deadline: Instant) -> Pin<Box<dyn AsyncTimer>> {
        Box::pin(MockTimer(self.0.clone(), deadline))
    }
    fn spawn(&self, _future: Pin<Box<dyn Future<Output = ()> + Send>>) {}
    fn wrap_udp_socket(&self, _s: std::net::UdpSocket) -> io::Result<Arc<dyn AsyncUdpSocket>> {
        Err(io::ErrorKind::Unsupported.into())
    }
    fn now(&self) -> Instant {
        *self.0.now.lock().unwrap()
    }
}

impl AsyncTimer for MockTimer {
    fn reset(mut self: Pin<&mut Self>, deadline: Instant) {
        self.1 = deadline;
    }
    fn poll(self: Pin<&mut Self>, _cx: &mut Context<'_>) -> Poll<()> {
        if *self.0.now.lock().unwrap() >= self.1 {
            Poll::Ready(())
        } else {
            Poll::Pending
        }
    }
}

impl AsyncUdpSocket for MockSocket {
    fn create_io_poller(self: Arc<Self>) -> Pin<Box<dyn UdpPoller>> {
        Box::pin(AlwaysWritable)
    }
    fn try_send(&self, transmit: &UdpTransmit<'_>) -> io::Result<()> {
        if transmit.destination == self.0.broken {
            return Err(io::ErrorKind::ConnectionRefused.into());
        }
        self.0.wire.lock().unwrap().push_back((
            self.1,
            transmit.destination,
            transmit.contents.to_vec(),
        ));
        Ok(())
    }
    fn poll_recv(
        &self,
        _cx: &mut Context<'_>,
        bufs: &mut [IoSliceMut<'_>],
        meta: &mut [RecvMeta],
    ) -> Poll<io::Result<usize>> {
        let mut wire = self.0.wire.lock().unwrap();
        let Some(i) = wire.iter().position(|(_, to, _)| *to == self.1) else {
            return Poll::Pending;
        };
        let (from, _, bytes) = wire.remove(i).unwrap();
        bufs[0][..bytes.len()].copy_from_slice(&bytes);
        meta[0] = RecvMeta {
            addr: from,
            len: bytes.len(),
            stride: bytes.len(),
            ecn: None,
            dst_ip: None,
        };
        Poll::Ready(Ok(1))
    }
    fn local_addr(&self) -> io::Result<SocketAddr> {
        Ok(self.1)
    }
}

/// The mock socket never blocks a send.
#[derive(Debug)]
struct AlwaysWritable;

impl UdpPoller for AlwaysWritable {
    fn poll_writable(self: Pin<&mut Self>, _cx: &mut Context<'_>) -> Poll<io::Result<()>> {
        Poll::Ready(Ok(()))
    }
}

struct Noop;
impl Wake for Noop {
    fn wake(self: Arc<Self>) {}
}

fn addr(i: u16) -> SocketAddr {
    SocketAddr::from(([127, 0, 0, 1], 20_000 + i))
}

type TestDriver = (Driver<ChaCha8Rng>, Handle<ChaCha8Rng>);

fn driver(world: &Arc<World>, i: u16) -> TestDriver {
    Driver::new(
        Arc::new(MockRuntime(world.clone())),
        Arc::new(MockSocket(world.clone(), addr(i))),
        Config::local(),
        Identity::new(&format!("d{i}"), addr(i)),
        ChaCha8Rng::seed_from_u64(u64::from(i)),
        DriverConfig::default(),
    )
    .unwrap()
}

/// Polls every driver, then advances virtual time by `step`, `rounds` times.
fn run(world: &World, drivers: &mut [&mut Driver<ChaCha8Rng>], rounds: usize, step: Duration) {
    let waker = Waker::from(Arc::new(Noop));
    let mut cx = Context::from_waker(&waker);
    for _ in 0..rounds {
        for d in drivers.iter_mut() {
            let _ = Pin::new(&mut **d).poll(&mut cx);
        }
        *world.now.lock().unwrap() += step;
    }
}

/// Polls a reply once (the drivers answered it during `run`).
fn ready<T>(mut reply: Reply<T>) -> Result<T, DriverError> {
    let waker = Waker::from(Arc::new(Noop));
    match Pin::new(&mut reply).poll(&mut Context::from_waker(&waker)) {
        Poll::Ready(r) => r,
        Poll::Pending => panic!("reply not ready"),
    }
}

/// Sends a query, lets the drivers answer it (no time passes), and returns the answer.
macro_rules! ask {
    ($world:expr, $drivers:expr, $reply:expr) => {{
        let reply = $reply;
        run($world, $drivers, 1, Duration::ZERO);
        ready(reply)
    }};
}

#[test]
fn two_drivers_join_gossip_and_leave_on_a_mock_runtime() {
    let world = Arc::new(World {
        now: Mutex::new(Instant::now()),
        wire: Mutex::new(VecDeque::new()),
        broken: addr(99),
    });
    let (mut a, ha) = driver(&world, 1);
    let (mut b, hb) = driver(&world, 2);
    let mut events = ha.subscribe();
    // b's first seed refuses every send: counted, and the join moves on to a.
    let join = hb.join(vec![addr(99), addr(1)]);
    run(
        &world,
        &mut [&mut a, &mut b],
        200,
        Duration::from_millis(10),
    );
    let joined = ready(join).unwrap();
    assert_eq!(joined.via, addr(1));
    let (_, bstats) = ask!(&world, &mut [&mut a, &mut b], hb.stats()).unwrap();
    assert!(bstats.send_errors >= 1, "{bstats:?}");
    assert_eq!(
        ask!(
            &world,
            &mut [&mut a, &mut b],
            ha.query(|n| n.live_members())
        )
        .unwrap(),
        2
    );
    assert!(matches!(
        events.try_recv(),
        Ok(Recv::Item(Event::MemberJoined(_)))
    ));

    // The timer is re-armed only when the deadline changed, not on every turn.
    let (_, astats) = ask!(&world, &mut [&mut a, &mut b], ha.stats()).unwrap();
    assert!(
        astats.timer_resets > 0 && astats.timer_resets < 200,
        "{astats:?}"
    );

    let tag = ha.set_tag("role".into(), "director".into());
    run(&world, &mut [&mut a, &mut b], 50, Duration::from_millis(10));
    ready(tag).unwrap();
    let role = ask!(
        &world,
        &mut [&mut a, &mut b],
        hb.query(|n| {
            n.members()
                .find(|m| m.info.name.as_str() == "d1")
                .and_then(|m| m.info.tags.get("role").map(str::to_owned))
        })
    )
    .unwrap();
    assert_eq!(role.as_deref(), Some("director"));

    let leave = hb.leave();
    run(
        &world,
        &mut [&mut a, &mut b],
        100,
        Duration::from_millis(10),
    );
    ready(leave).unwrap();
    assert!(hb.is_closed());
    assert_eq!(
        ask!(&world, &mut [&mut a, &mut b], hb.stats()),
        Err(DriverError::Closed)
    );
    let left = ask!(
        &world,
        &mut [&mut a, &mut b],
        ha.query(|n| n.live_members())
    )
    .unwrap();
    assert_eq!(left, 1);
    // Dropping every handle stops the other driver too.
    drop(ha);
    drop(events);
    let waker = Waker::from(Arc::new(Noop));
    assert!(Pin::new(&mut a)
        .poll(&mut Context::from_waker(&waker))
        .is_ready());
}

/// A socket that delivers, once, one receive holding several datagrams from one sender
/// coalesced at a fixed stride (GRO), the last one shorter.
#[derive(Debug)]
struct CoalescingSocket {
    from: SocketAddr,
    stride: usize,
    datagrams: Mutex<Option<Vec<Vec<u8>>>>,
}

impl AsyncUdpSocket for CoalescingSocket {
    fn create_io_poller(self: Arc<Self>) -> Pin<Box<dyn UdpPoller>> {
        Box::pin(AlwaysWritable)
    }
    fn try_send(&self, _transmit: &UdpTransmit<'_>) -> io::Result<()> {
        Ok(())
    }
    fn poll_recv(
        &self,
        _cx: &mut Context<'_>,
        bufs: &mut [IoSliceMut<'_>],
        meta: &mut [RecvMeta],
    ) -> Poll<io::Result<usize>> {
        let Some(datagrams) = self.datagrams.lock().unwrap().take() else {
            return Poll::Pending;
        };
        let mut len = 0;
        for d in &datagrams {
            bufs[0][len..len + d.len()].copy_from_slice(d);
            len += self.stride;
        }
        let len = len - self.stride + datagrams.last().map_or(0, Vec::len);
        meta[0] = RecvMeta {
            addr: self.from,
            len,
            stride: self.stride,
            ecn: None,
            dst_ip: None,
        };
        Poll::Ready(Ok(1))
    }
    fn local_addr(&self) -> io::Result<SocketAddr> {
        Ok(addr(1))
    }
}

/// One receive carrying three coalesced datagrams feeds the node three datagrams, each
/// judged on its own (here: three malformed ones, three counted drops), not one blob.
#[test]
fn coalesced_datagrams_are_split_at_the_stride_and_each_fed_alone() {
    let world = Arc::new(World {
        now: Mutex::new(Instant::now()),
        wire: Mutex::new(VecDeque::new()),
        broken: addr(99),
    });
    let socket = Arc::new(CoalescingSocket {
        from: addr(7),
        stride: 40,
        datagrams: Mutex::new(Some(vec![vec![0xAB; 40], vec![0xCD; 40], vec![0xEF; 13]])),
    });
    let (mut d, h) = Driver::new(
        Arc::new(MockRuntime(world.clone())),
        socket,
        Config::local(),
        Identity::new("gro", addr(1)),
        ChaCha8Rng::seed_from_u64(7),
        DriverConfig::default(),
    )
    .unwrap();
    run(&world, &mut [&mut d], 1, Duration::ZERO);
    let (node, driver) = ask!(&world, &mut [&mut d], h.stats()).unwrap();
    assert_eq!(driver.datagrams_received, 3, "{driver:?}");
    assert_eq!(node.dropped_total(), 3, "{node:?}");
}
