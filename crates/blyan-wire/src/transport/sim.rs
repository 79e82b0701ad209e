//! `SimNetwork`: an in-process UDP network for tests (feature `sim`). Every endpoint bound
//! on it gets a socket whose datagrams go through per-link conditions (cut, delay, loss)
//! that a test changes at any time, so partitions and their healing run over real QUIC.

use std::collections::{HashMap, VecDeque};
use std::fmt;
use std::io::{self, IoSliceMut};
use std::net::SocketAddr;
use std::pin::Pin;
use std::sync::{Arc, Mutex, MutexGuard, PoisonError};
use std::task::{Context, Poll, Waker};
use std::time::Duration;

use bytes::Bytes;
use quinn::udp::{RecvMeta, Transmit};

/// Datagrams queued at one socket before the network drops more, as a full UDP receive
/// buffer would.
const INBOX_CAPACITY: usize = 4096;

/// First port handed out for port 0.
const FIRST_EPHEMERAL_PORT: u16 = 49152;

/// What happens to datagrams between two addresses (in both directions).
#[derive(Clone, Copy, Debug, PartialEq)]
pub struct LinkConditions {
    /// Every datagram is dropped (a partition).
    pub cut: bool,
    /// Every datagram arrives this much later (one way).
    pub delay: Duration,
    /// The probability in `[0, 1]` that a datagram is dropped.
    pub loss: f64,
}

impl LinkConditions {
    /// A perfect link: no loss, no delay.
    pub const HEALTHY: Self = Self {
        cut: false,
        delay: Duration::ZERO,
        loss: 0.0,
    };
}

impl Default for LinkConditions {
    fn default() -> Self {
        Self::HEALTHY
    }
}

/// An in-process UDP network. Cheap to clone; clones are the same network.
///
/// Bind endpoints with [`Endpoint::bind_sim`](crate::Endpoint::bind_sim); change links with
/// [`SimNetwork::cut`], [`SimNetwork::heal`], [`SimNetwork::set_link`]. Loss decisions come
/// from a seeded generator.
#[derive(Clone)]
pub struct SimNetwork {
    state: Arc<Mutex<NetState>>,
}

impl fmt::Debug for SimNetwork {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        let state = self.lock();
        f.debug_struct("SimNetwork")
            .field("sockets", &state.sockets.len())
            .field("links", &state.links.len())
            .finish()
    }
}

struct NetState {
    sockets: HashMap<SocketAddr, Arc<Inbox>>,
    links: HashMap<(SocketAddr, SocketAddr), LinkConditions>,
    rng: u64,
    next_port: u16,
}

impl SimNetwork {
    /// An empty network whose loss decisions are drawn from `seed`.
    pub fn new(seed: u64) -> Self {
        Self {
            state: Arc::new(Mutex::new(NetState {
                sockets: HashMap::new(),
                links: HashMap::new(),
                // xorshift must not start at 0.
                rng: seed | 1,
                next_port: FIRST_EPHEMERAL_PORT,
            })),
        }
    }

    /// Sets the conditions between `a` and `b` (both directions).
    pub fn set_link(&self, a: SocketAddr, b: SocketAddr, conditions: LinkConditions) {
        let key = link_key(a, b);
        let mut state = self.lock();
        if conditions == LinkConditions::HEALTHY {
            state.links.remove(&key);
        } else {
            state.links.insert(key, conditions);
        }
    }

    /// The conditions between `a` and `b`.
    pub fn link(&self, a: SocketAddr, b: SocketAddr) -> LinkConditions {
        self.lock()
            .links
            .get(&link_key(a, b))
            .copied()
            .unwrap_or_default()
    }

    /// Drops every datagram between `a` and `b` until [`SimNetwork::heal`].
    pub fn cut(&self, a: SocketAddr, b: SocketAddr) {
        let conditions = LinkConditions {
            cut: true,
            ..self.link(a, b)
        };
        self.set_link(a, b, conditions);
    }

    /// Restores a perfect link between `a` and `b`.
    pub fn heal(&self, a: SocketAddr, b: SocketAddr) {
        self.set_link(a, b, LinkConditions::HEALTHY);
    }

    fn lock(&self) -> MutexGuard<'_, NetState> {
        self.state.lock().unwrap_or_else(PoisonError::into_inner)
    }

    /// A socket on `addr` (port 0: the next free ephemeral port).
    pub(crate) fn bind(&self, mut addr: SocketAddr) -> io::Result<SimSocket> {
        let mut state = self.lock();
        if addr.port() == 0 {
            let mut tries = 0_u32;
            loop {
                let port = state.next_port;
                state.next_port = state
                    .next_port
                    .checked_add(1)
                    .unwrap_or(FIRST_EPHEMERAL_PORT);
                addr.set_port(port);
                if !state.sockets.contains_key(&addr) {
                    break;
                }
                tries += 1;
                if tries > u32::from(u16::MAX) {
                    return Err(io::Error::new(io::ErrorKind::AddrInUse, "no free port"));
                }
            }
        } else if state.sockets.contains_key(&addr) {
            return Err(io::Error::new(io::ErrorKind::AddrInUse, "address in use"));
        }
        let inbox = Arc::new(Inbox::default());
        state.sockets.insert(addr, Arc::clone(&inbox));
        Ok(SimSocket {
            network: self.clone(),
            addr,
            inbox,
        })
    }

    /// Routes one datagram from `from` to `to` through the link's conditions.
    fn route(&self, from: SocketAddr, to: SocketAddr, datagram: Bytes) {
        let (conditions, drop_it, inbox) = {
            let mut state = self.lock();
            let conditions = state
                .links
                .get(&link_key(from, to))
                .copied()
                .unwrap_or_default();
            let drop_it =
                conditions.cut || (conditions.loss > 0.0 && state.draw() < conditions.loss);
            (conditions, drop_it, state.sockets.get(&to).cloned())
        };
        let Some(inbox) = inbox else { return };
        if drop_it {
            return;
        }
        if conditions.delay.is_zero() {
            inbox.push(from, datagram);
        } else {
            let network = self.clone();
            tokio::spawn(async move {
                tokio::time::sleep(conditions.delay).await;
                // A link cut while the datagram was in flight loses it.
                if !network.link(from, to).cut {
                    inbox.push(from, datagram);
                }
            });
        }
    }

    fn unbind(&self, addr: SocketAddr, inbox: &Arc<Inbox>) {
        let mut state = self.lock();
        if state
            .sockets
            .get(&addr)
            .is_some_and(|bound| Arc::ptr_eq(bound, inbox))
        {
            state.sockets.remove(&addr);
        }
    }
}

impl NetState {
    /// A uniform draw in `[0, 1)` (xorshift64*).
    fn draw(&mut self) -> f64 {
        let mut x = self.rng;
        x ^= x >> 12;
        x ^= x << 25;
        x ^= x >> 27;
        self.rng = x;
        let value = x.wrapping_mul(0x2545_f491_4f6c_dd1d);
        (value >> 11) as f64 / (1_u64 << 53) as f64
    }
}

fn link_key(a: SocketAddr, b: SocketAddr) -> (SocketAddr, SocketAddr) {
    if a <= b { (a, b) } else { (b, a) }
}

/// One socket's receive queue.
#[derive(Debug, Default)]
struct Inbox {
    state: Mutex<InboxState>,
}

#[derive(Debug, Default)]
struct InboxState {
    queue: VecDeque<(SocketAddr, Bytes)>,
    waker: Option<Waker>,
}

impl Inbox {
    fn push(&self, from: SocketAddr, datagram: Bytes) {
        let mut state = self.state.lock().unwrap_or_else(PoisonError::into_inner);
        if state.queue.len() >= INBOX_CAPACITY {
            return;
        }
        state.queue.push_back((from, datagram));
        if let Some(waker) = state.waker.take() {
            waker.wake();
        }
    }
}

/// A socket bound on a [`SimNetwork`], as quinn sees it.
#[derive(Debug)]
pub(crate) struct SimSocket {
    network: SimNetwork,
    addr: SocketAddr,
    inbox: Arc<Inbox>,
}

impl Drop for SimSocket {
    fn drop(&mut self) {
        self.network.unbind(self.addr, &self.inbox);
    }
}

/// A simulated socket never blocks a sender: like UDP, excess datagrams are dropped.
#[derive(Debug)]
struct AlwaysWritable;

impl quinn::UdpPoller for AlwaysWritable {
    fn poll_writable(self: Pin<&mut Self>, _cx: &mut Context<'_>) -> Poll<io::Result<()>> {
        Poll::Ready(Ok(()))
    }
}

impl quinn::AsyncUdpSocket for SimSocket {
    fn create_io_poller(self: Arc<Self>) -> Pin<Box<dyn quinn::UdpPoller>> {
        Box::pin(AlwaysWritable)
    }

    fn try_send(&self, transmit: &Transmit<'_>) -> io::Result<()> {
        let segment = transmit
            .segment_size
            .unwrap_or(transmit.contents.len())
            .max(1);
        for datagram in transmit.contents.chunks(segment) {
            self.network.route(
                self.addr,
                transmit.destination,
                Bytes::copy_from_slice(datagram),
            );
        }
        Ok(())
    }

    fn poll_recv(
        &self,
        cx: &mut Context<'_>,
        bufs: &mut [IoSliceMut<'_>],
        meta: &mut [RecvMeta],
    ) -> Poll<io::Result<usize>> {
        let (Some(buf), Some(slot)) = (bufs.first_mut(), meta.first_mut()) else {
            return Poll::Ready(Ok(0));
        };
        let mut state = self
            .inbox
            .state
            .lock()
            .unwrap_or_else(PoisonError::into_inner);
        let Some((from, datagram)) = state.queue.pop_front() else {
            state.waker = Some(cx.waker().clone());
            return Poll::Pending;
        };
        let len = datagram.len().min(buf.len());
        buf[..len].copy_from_slice(&datagram[..len]);
        *slot = RecvMeta {
            addr: from,
            len,
            stride: len,
            ecn: None,
            dst_ip: Some(self.addr.ip()),
        };
        Poll::Ready(Ok(1))
    }

    fn local_addr(&self) -> io::Result<SocketAddr> {
        Ok(self.addr)
    }

    fn may_fragment(&self) -> bool {
        false
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    fn addr(port: u16) -> SocketAddr {
        SocketAddr::from(([10, 0, 0, 1], port))
    }

    #[test]
    fn links_are_symmetric_and_heal_to_healthy() {
        let net = SimNetwork::new(7);
        net.cut(addr(1), addr(2));
        assert!(net.link(addr(2), addr(1)).cut);
        net.heal(addr(1), addr(2));
        assert_eq!(net.link(addr(1), addr(2)), LinkConditions::HEALTHY);
    }

    #[test]
    fn port_zero_gets_distinct_ports_and_taken_addresses_are_refused() {
        let net = SimNetwork::new(7);
        let a = net.bind(addr(0)).unwrap();
        let b = net.bind(addr(0)).unwrap();
        assert_ne!(a.addr, b.addr);
        assert_eq!(
            net.bind(a.addr).unwrap_err().kind(),
            io::ErrorKind::AddrInUse
        );
        drop(a);
        assert_eq!(net.lock().sockets.len(), 1);
    }

    #[test]
    fn loss_draws_are_uniform_enough() {
        let net = SimNetwork::new(42);
        let mut state = net.lock();
        let below_half = (0..10_000).filter(|_| state.draw() < 0.5).count();
        assert!((4_500..5_500).contains(&below_half), "{below_half}");
    }

    #[test]
    fn datagrams_reach_the_bound_socket_unless_cut() {
        let net = SimNetwork::new(1);
        let a = net.bind(addr(1)).unwrap();
        let b = net.bind(addr(2)).unwrap();
        net.route(a.addr, b.addr, Bytes::from_static(b"one"));
        net.cut(a.addr, b.addr);
        net.route(a.addr, b.addr, Bytes::from_static(b"two"));
        let queue = &b.inbox.state.lock().unwrap().queue;
        assert_eq!(queue.len(), 1);
        assert_eq!(queue[0], (a.addr, Bytes::from_static(b"one")));
    }
}
