//! A deterministic simulated network and virtual clock for testing sans-IO endpoints.
//!
//! [`SimNet`] carries datagrams between addresses with seeded loss, duplication and random delay (which also
//! reorders), plus an optional drop filter for scripted loss. [`Sim`] drives a set of [`Endpoint`]s over it:
//! it always jumps the [`VirtualClock`] to the next datagram delivery or endpoint timer, so a test that covers
//! minutes of protocol time runs in microseconds and never sleeps. Every send is logged with its time.

use std::cmp::Reverse;
use std::collections::BinaryHeap;
use std::net::SocketAddr;

use crate::endpoint::{Endpoint, Event, RandomSource, ResponderId, SplitMix64};
use crate::message::Message;
use crate::time::Timestamp;

/// A clock that only moves when told to.
#[derive(Debug, Clone, Copy, Default, PartialEq, Eq)]
pub struct VirtualClock {
    now: Timestamp,
}

impl VirtualClock {
    /// A clock at time zero.
    pub fn new() -> Self {
        VirtualClock::default()
    }
    /// The current time.
    pub fn now(&self) -> Timestamp {
        self.now
    }
    /// Move forward to `t` (never backwards).
    pub fn advance_to(&mut self, t: Timestamp) {
        self.now = self.now.max(t);
    }
    /// Move forward by `ms` milliseconds.
    pub fn advance_by(&mut self, ms: u64) {
        self.now = self.now.plus_millis(ms);
    }
}

/// Impairments of the simulated network.
#[derive(Debug, Clone, PartialEq)]
pub struct NetConfig {
    /// Probability that a datagram is lost (0.0–1.0).
    pub loss: f64,
    /// Probability that a delivered datagram is delivered twice.
    pub duplicate: f64,
    /// Minimum one-way delay in milliseconds.
    pub min_delay_ms: u64,
    /// Maximum one-way delay in milliseconds (uniform in between; differing delays reorder datagrams).
    pub max_delay_ms: u64,
}

impl Default for NetConfig {
    /// A perfect network with 10 ms delay.
    fn default() -> Self {
        NetConfig {
            loss: 0.0,
            duplicate: 0.0,
            min_delay_ms: 10,
            max_delay_ms: 10,
        }
    }
}

/// One datagram handed to the network.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct Datagram {
    /// Sender.
    pub from: SocketAddr,
    /// Receiver.
    pub to: SocketAddr,
    /// Bytes.
    pub bytes: Vec<u8>,
}

/// A log line: when a datagram was sent, and whether the network dropped it.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct SendRecord {
    /// Send time.
    pub at: Timestamp,
    /// The datagram.
    pub datagram: Datagram,
    /// Lost in the network.
    pub dropped: bool,
    /// Delivered twice.
    pub duplicated: bool,
}

impl SendRecord {
    /// The datagram decoded (for assertions).
    pub fn message(&self) -> Option<Message> {
        Message::decode(&self.datagram.bytes).ok()
    }
}

/// A drop filter: return true to lose the datagram (called with the send time and the datagram).
pub type DropFilter = Box<dyn FnMut(Timestamp, &Datagram) -> bool>;

/// The simulated network.
pub struct SimNet {
    config: NetConfig,
    rng: SplitMix64,
    seq: u64,
    in_flight: BinaryHeap<Reverse<(Timestamp, u64)>>,
    payloads: std::collections::HashMap<u64, Datagram>,
    filter: Option<DropFilter>,
    /// Every datagram sent, in send order.
    pub log: Vec<SendRecord>,
}

impl std::fmt::Debug for SimNet {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.debug_struct("SimNet")
            .field("config", &self.config)
            .field("in_flight", &self.in_flight.len())
            .field("log", &self.log.len())
            .finish_non_exhaustive()
    }
}

impl SimNet {
    /// A network with the given impairments, deterministic for `seed`.
    pub fn new(config: NetConfig, seed: u64) -> Self {
        SimNet {
            config,
            rng: SplitMix64::new(seed),
            seq: 0,
            in_flight: BinaryHeap::new(),
            payloads: std::collections::HashMap::new(),
            filter: None,
            log: Vec::new(),
        }
    }

    /// Install a scripted drop filter (applied before random loss).
    pub fn set_filter(&mut self, f: DropFilter) {
        self.filter = Some(f);
    }

    /// Remove the drop filter.
    pub fn clear_filter(&mut self) {
        self.filter = None;
    }

    fn chance(&mut self, p: f64) -> bool {
        if p <= 0.0 {
            return false;
        }
        let x = (self.rng.next_u64() >> 11) as f64 / (1u64 << 53) as f64;
        x < p
    }

    fn delay(&mut self) -> u64 {
        let lo = self.config.min_delay_ms;
        let hi = self.config.max_delay_ms.max(lo);
        lo + self.rng.below_inclusive(hi - lo)
    }

    fn enqueue(&mut self, at: Timestamp, d: Datagram) {
        self.seq += 1;
        self.in_flight.push(Reverse((at, self.seq)));
        self.payloads.insert(self.seq, d);
    }

    /// Hand a datagram to the network at time `now`.
    pub fn send(&mut self, now: Timestamp, datagram: Datagram) {
        let filtered = self.filter.as_mut().is_some_and(|f| f(now, &datagram));
        let loss = self.config.loss;
        let dropped = filtered || self.chance(loss);
        let dup = self.config.duplicate;
        let duplicated = !dropped && self.chance(dup);
        self.log.push(SendRecord {
            at: now,
            datagram: datagram.clone(),
            dropped,
            duplicated,
        });
        if dropped {
            return;
        }
        let d1 = self.delay();
        if duplicated {
            let d2 = self.delay();
            self.enqueue(now.plus_millis(d2), datagram.clone());
        }
        self.enqueue(now.plus_millis(d1), datagram);
    }

    /// When the next datagram arrives.
    pub fn next_delivery(&self) -> Option<Timestamp> {
        self.in_flight.peek().map(|Reverse((t, _))| *t)
    }

    /// The next datagram due at or before `now`.
    pub fn pop_due(&mut self, now: Timestamp) -> Option<Datagram> {
        let &Reverse((t, seq)) = self.in_flight.peek()?;
        if t > now {
            return None;
        }
        self.in_flight.pop();
        self.payloads.remove(&seq)
    }
}

/// An automatic request handler: return a response to piggyback, or `None` to leave the request to the test.
pub type Handler = Box<dyn FnMut(Timestamp, &Message) -> Option<Message>>;

struct Node {
    addr: SocketAddr,
    endpoint: Endpoint,
    handler: Option<Handler>,
}

/// Endpoints on a simulated network, driven in virtual time.
pub struct Sim {
    /// The clock.
    pub clock: VirtualClock,
    /// The network (its `log` records every send).
    pub net: SimNet,
    nodes: Vec<Node>,
    /// Every event from every endpoint, with its time and the endpoint's address.
    pub events: Vec<(Timestamp, SocketAddr, Event)>,
}

impl std::fmt::Debug for Sim {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.debug_struct("Sim")
            .field("now", &self.clock.now())
            .field("net", &self.net)
            .finish_non_exhaustive()
    }
}

impl Sim {
    /// An empty simulation at time zero.
    pub fn new(config: NetConfig, seed: u64) -> Self {
        Sim {
            clock: VirtualClock::new(),
            net: SimNet::new(config, seed),
            nodes: Vec::new(),
            events: Vec::new(),
        }
    }

    /// Current virtual time.
    pub fn now(&self) -> Timestamp {
        self.clock.now()
    }

    /// Attach an endpoint at `addr`.
    pub fn add(&mut self, addr: SocketAddr, endpoint: Endpoint) {
        self.nodes.push(Node {
            addr,
            endpoint,
            handler: None,
        });
    }

    /// Answer incoming requests at `addr` automatically with `handler`.
    pub fn set_handler(&mut self, addr: SocketAddr, handler: Handler) {
        if let Some(n) = self.nodes.iter_mut().find(|n| n.addr == addr) {
            n.handler = Some(handler);
        }
    }

    /// The endpoint at `addr`.
    ///
    /// # Panics
    /// If no endpoint was added at `addr` (a test bug).
    pub fn endpoint(&mut self, addr: SocketAddr) -> &mut Endpoint {
        match self.nodes.iter_mut().find(|n| n.addr == addr) {
            Some(n) => &mut n.endpoint,
            None => panic!("no endpoint at {addr}"),
        }
    }

    /// Send a request from `from` to `to` now.
    pub fn send_request(&mut self, from: SocketAddr, to: SocketAddr, request: Message) -> crate::endpoint::RequestId {
        let now = self.now();
        let id = self.endpoint(from).send_request(now, to, request);
        self.flush();
        id
    }

    /// Respond from `at` to an incoming request now.
    pub fn respond(&mut self, at: SocketAddr, responder: ResponderId, response: Message) {
        let now = self.now();
        let _ = self.endpoint(at).respond(now, responder, response);
        self.flush();
    }

    /// Send a notification from `from` to `to` now (see [`Endpoint::send_notification`]).
    pub fn send_notification(
        &mut self,
        from: SocketAddr,
        to: SocketAddr,
        message: Message,
    ) -> Result<crate::endpoint::RequestId, crate::endpoint::EndpointError> {
        let now = self.now();
        let r = self.endpoint(from).send_notification(now, to, message);
        self.flush();
        r
    }

    /// Cancel the observation `id` of the endpoint at `at` actively now (see [`Endpoint::cancel_observe`]).
    pub fn cancel_observe(
        &mut self,
        at: SocketAddr,
        id: crate::endpoint::RequestId,
    ) -> Option<crate::endpoint::RequestId> {
        let now = self.now();
        let r = self.endpoint(at).cancel_observe(now, id);
        self.flush();
        r
    }

    /// The events collected so far at the endpoint `addr`, in order.
    pub fn events_at(&self, addr: SocketAddr) -> Vec<Event> {
        self.events
            .iter()
            .filter(|(_, a, _)| *a == addr)
            .map(|(_, _, e)| e.clone())
            .collect()
    }

    /// Move transmits from all endpoints into the network and collect events (running handlers).
    pub fn flush(&mut self) {
        let now = self.now();
        loop {
            let mut progressed = false;
            for node in &mut self.nodes {
                while let Some(t) = node.endpoint.poll_transmit() {
                    progressed = true;
                    self.net.send(
                        now,
                        Datagram {
                            from: node.addr,
                            to: t.peer,
                            bytes: t.bytes,
                        },
                    );
                }
                while let Some(ev) = node.endpoint.poll_event() {
                    progressed = true;
                    if let (Some(h), Event::IncomingRequest { request, responder, .. }) = (&mut node.handler, &ev) {
                        if let Some(resp) = h(now, request) {
                            let _ = node.endpoint.respond(now, *responder, resp);
                        }
                    }
                    self.events.push((now, node.addr, ev));
                }
            }
            if !progressed {
                break;
            }
        }
    }

    /// The next time something happens (delivery or endpoint timer).
    pub fn next_time(&mut self) -> Option<Timestamp> {
        let mut t = self.net.next_delivery();
        for n in &mut self.nodes {
            if let Some(x) = n.endpoint.poll_timeout() {
                t = Some(t.map_or(x, |y| y.min(x)));
            }
        }
        t
    }

    /// Advance to the next event time (not beyond `limit`) and process everything due then. Returns false if
    /// nothing was due at or before `limit`.
    pub fn step(&mut self, limit: Timestamp) -> bool {
        self.flush();
        let Some(t) = self.next_time() else { return false };
        if t > limit {
            return false;
        }
        self.clock.advance_to(t);
        let now = self.now();
        while let Some(d) = self.net.pop_due(now) {
            if let Some(n) = self.nodes.iter_mut().find(|n| n.addr == d.to) {
                n.endpoint.handle_datagram(now, d.from, &d.bytes);
            }
            self.flush();
        }
        for n in &mut self.nodes {
            if n.endpoint.poll_timeout().is_some_and(|x| x <= now) {
                n.endpoint.handle_timeout(now);
            }
        }
        self.flush();
        true
    }

    /// Run until virtual time `t` (inclusive); the clock ends at `t`.
    pub fn run_until(&mut self, t: Timestamp) {
        while self.step(t) {}
        self.clock.advance_to(t);
        self.flush();
    }

    /// Run for `ms` more milliseconds.
    pub fn run_for(&mut self, ms: u64) {
        let t = self.now().plus_millis(ms);
        self.run_until(t);
    }

    /// Remove and return all events collected so far.
    pub fn take_events(&mut self) -> Vec<(Timestamp, SocketAddr, Event)> {
        std::mem::take(&mut self.events)
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    fn addr(p: u16) -> SocketAddr {
        SocketAddr::from(([127, 0, 0, 1], p))
    }

    #[test]
    fn net_is_deterministic_and_delays_within_bounds() {
        let cfg = NetConfig {
            loss: 0.3,
            duplicate: 0.2,
            min_delay_ms: 5,
            max_delay_ms: 50,
        };
        let run = |seed| {
            let mut n = SimNet::new(cfg.clone(), seed);
            for i in 0..200u8 {
                n.send(
                    Timestamp(u64::from(i)),
                    Datagram {
                        from: addr(1),
                        to: addr(2),
                        bytes: vec![i],
                    },
                );
            }
            let mut out = Vec::new();
            while let Some(t) = n.next_delivery() {
                let d = n.pop_due(t).unwrap();
                out.push((t, d.bytes[0]));
            }
            (
                out,
                n.log.iter().filter(|r| r.dropped).count(),
                n.log.iter().filter(|r| r.duplicated).count(),
            )
        };
        let (a, dropped, dups) = run(42);
        assert_eq!(a, run(42).0);
        assert_ne!(a, run(43).0);
        assert!((30..90).contains(&dropped), "dropped {dropped}");
        assert!(dups > 10, "duplicated {dups}");
        assert_eq!(a.len(), 200 - dropped + dups);
        for (t, i) in &a {
            let d = t.0 - u64::from(*i);
            assert!((5..=50).contains(&d), "delay {d}");
        }
        // Reordering happened: delivery order differs from send order.
        let order: Vec<u8> = a.iter().map(|x| x.1).collect();
        let mut sorted = order.clone();
        sorted.sort();
        assert_ne!(order, sorted);
    }

    #[test]
    fn filter_drops_scripted_datagrams() {
        let mut n = SimNet::new(NetConfig::default(), 1);
        n.set_filter(Box::new(|_, d| d.bytes == [2]));
        for i in 1..=3u8 {
            n.send(
                Timestamp(0),
                Datagram {
                    from: addr(1),
                    to: addr(2),
                    bytes: vec![i],
                },
            );
        }
        let mut got = Vec::new();
        while let Some(d) = n.pop_due(Timestamp(10)) {
            got.push(d.bytes[0]);
        }
        assert_eq!(got, vec![1, 3]);
        assert!(n.log[1].dropped);
    }

    #[test]
    fn clock_moves_forward_only() {
        let mut c = VirtualClock::new();
        c.advance_by(1500);
        c.advance_to(Timestamp(1000));
        assert_eq!(c.now(), Timestamp(1500));
    }
}
