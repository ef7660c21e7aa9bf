//! A tokio driver running one [`Endpoint`] on one UDP socket.
//!
//! One task serves every peer: it loops on `tokio::select!` over the socket, the endpoint's next timer and a
//! command channel fed by [`UdpHandle`]s. There is no task, timer or channel per peer; per-peer state lives in
//! the endpoint's maps, so a server holds thousands of peers with one task. The application talks to the loop
//! through a cloneable [`UdpHandle`] and receives inbound requests (and other unsolicited events) as
//! [`Incoming`] items on a bounded channel.
//!
//! - Outbound requests: [`UdpHandle::request`] resolves with the response (or [`RequestError::Timeout`] /
//!   [`RequestError::Reset`]). Dropping the future cancels the exchange, freeing its NSTART slot.
//! - Observations: [`UdpHandle::observe`] resolves with the first response and an [`Observation`] stream of
//!   notifications; dropping the [`Observation`] makes the endpoint answer later notifications with RST.
//! - Inbound requests: answer each [`IncomingRequest`] with [`UdpHandle::respond`]. When the application falls
//!   behind and the channel is full, new requests are answered 5.03 Service Unavailable (Max-Age 1) and
//!   counted in [`DriverStats::shed`] instead of stalling the socket.
//! - Notifications to observers: [`UdpHandle::notify`].
//! - Address changes: [`UdpHandle::migrate_peer`] moves the observations, exchanges in flight and other state
//!   held with a peer to its new address (a NAT rebind); the [`Observation`] streams keep delivering.
//! - Malformed datagrams are counted ([`DriverStats::malformed`]) and logged with their reason at debug level;
//!   socket errors are counted and logged; neither stops the loop.
//! - Addresses: on an IPv6 socket, IPv4-mapped peers (`::ffff:a.b.c.d`) are shown to the endpoint and the
//!   application as plain IPv4 addresses, and IPv4 destinations are mapped back when sending, so a dual-stack
//!   socket bound to `[::]` serves both families with one address form per peer.
//! - Shutdown: [`UdpHandle::shutdown`] (or dropping every handle) stops the loop; pending requests fail with
//!   [`RequestError::Closed`] and the socket is closed before `shutdown` returns.
//!
//! - Security (`coaps://`): [`UdpEndpoint::spawn_secure`] runs every datagram through a
//!   [`DatagramSecurity`] layer (DTLS from `lwm2m-dtls`): ciphertext from the socket goes to the layer, its
//!   plaintext to the endpoint; the endpoint's datagrams are sealed by the layer before they leave. Each
//!   [`IncomingRequest`] then carries the peer's authenticated [`PeerIdentity`]; session changes arrive as
//!   [`Incoming::Security`]. When a handshake with a peer fails, requests waiting for that peer fail at once
//!   with [`RequestError::Security`]. [`UdpHandle::with_security`] runs code on the concrete layer inside the
//!   loop (reconnect, statistics). Without a layer the driver is plain CoAP and nothing of this applies.
//!
//! Timestamps given to the endpoint (and the security layer) are milliseconds since the driver started (a fixed
//! `tokio::time::Instant`), so tokio's paused test clock works too.

use std::collections::{HashMap, VecDeque};
use std::io;
use std::net::{IpAddr, SocketAddr, SocketAddrV6};
use std::sync::atomic::{AtomicU64, Ordering};
use std::sync::Arc;
use std::time::Duration;

use thiserror::Error;
use tokio::net::UdpSocket;
use tokio::sync::mpsc::error::TrySendError;
use tokio::sync::{mpsc, oneshot};
use tokio::time::Instant;
use tracing::{debug, trace, warn};

use crate::endpoint::{
    BlockwiseError, CancelReason, Endpoint, EndpointConfig, EndpointError, Event, PeerMigration, RequestId,
    ResponderId, Stats,
};
use crate::message::{Code, Message, MessageType, Token};
use crate::time::Timestamp;
use crate::transport::security::{DatagramSecurity, PeerIdentity, SecurityError, SecurityEvent};

/// Tuning of the driver loop (not of the CoAP protocol, see [`EndpointConfig`]).
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct DriverConfig {
    /// Capacity of the [`Incoming`] channel (1024). When full, new requests are shed with 5.03.
    pub incoming_capacity: usize,
    /// Notifications buffered per [`Observation`] (32). When full, further notifications are dropped and
    /// counted until the application catches up.
    pub observation_capacity: usize,
    /// Receive buffer size in bytes (65 535: no UDP datagram is truncated).
    pub max_datagram: usize,
    /// Datagrams or commands handled per loop turn before transmits are flushed (64).
    pub batch: usize,
}

impl Default for DriverConfig {
    fn default() -> Self {
        DriverConfig {
            incoming_capacity: 1024,
            observation_capacity: 32,
            max_datagram: 65_535,
            batch: 64,
        }
    }
}

/// An inbound request waiting for [`UdpHandle::respond`].
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct IncomingRequest {
    /// The requesting peer.
    pub peer: SocketAddr,
    /// The request (deduplicated: each request is delivered once).
    pub request: Message,
    /// Pass this to [`UdpHandle::respond`].
    pub responder: ResponderId,
    /// The peer's authenticated identity when the driver runs a security layer and the peer's session is
    /// established; `None` on plain CoAP.
    pub identity: Option<PeerIdentity>,
}

/// Unsolicited things the application receives from the driver.
#[derive(Debug, Clone, PartialEq, Eq)]
pub enum Incoming {
    /// A new request.
    Request(IncomingRequest),
    /// A separate CON response could not be delivered (no ACK, or RST when `reset`).
    ResponseFailed {
        /// The responder used for the response.
        responder: ResponderId,
        /// The peer.
        peer: SocketAddr,
        /// True if the peer answered with RST.
        reset: bool,
    },
    /// A peer answered a NON notification (see [`Delivery::Sent`]) with RST: it no longer observes.
    NotificationRejected {
        /// The id returned in [`Delivery::Sent`].
        id: RequestId,
    },
    /// An observation of one of our resources ended (RST, deregistration, or an unacknowledged CON
    /// notification); stop notifying `peer` for `token`.
    ObservationCancelled {
        /// The observer.
        peer: SocketAddr,
        /// The observation's token.
        token: Token,
        /// Why it ended.
        reason: CancelReason,
    },
    /// A secure session was established or ended (only with a security layer, see
    /// [`UdpEndpoint::spawn_secure`]).
    Security(SecurityEvent),
    /// Any other endpoint event the driver does not route itself.
    Other(Event),
}

/// The outcome of [`UdpHandle::notify`].
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum Delivery {
    /// A CON notification was acknowledged.
    Acknowledged,
    /// A NON notification was sent; an RST within NON_LIFETIME arrives as [`Incoming::NotificationRejected`].
    Sent(RequestId),
}

/// Why a request or notification did not get its answer.
#[derive(Debug, Clone, PartialEq, Eq, Error)]
pub enum RequestError {
    /// No ACK after all retransmissions, or no response within the response timeout.
    #[error("no acknowledgement or response from the peer")]
    Timeout,
    /// The peer answered with RST.
    #[error("the peer rejected the message with RST")]
    Reset,
    /// The driver has shut down.
    #[error("the UDP endpoint is shut down")]
    Closed,
    /// The endpoint refused the call.
    #[error(transparent)]
    Endpoint(#[from] EndpointError),
    /// [`Observation::deregister`] found no live observation (it had already ended).
    #[error("the observation already ended")]
    NotObserving,
    /// A block-wise transfer of the request or its response failed.
    #[error("block-wise transfer failed: {0}")]
    Blockwise(BlockwiseError),
    /// The security layer could not reach the peer: the handshake failed or was rejected, or the layer could
    /// not protect the message (no session with this peer). Also returned by [`UdpHandle::with_security`]
    /// when the driver has no layer of the asked type.
    #[error("secure transport: {0}")]
    Security(String),
}

/// A snapshot of the driver's counters (see also [`UdpHandle::endpoint_stats`]).
#[derive(Debug, Clone, Default, PartialEq, Eq)]
pub struct DriverStats {
    /// Datagrams received.
    pub received: u64,
    /// Datagrams sent.
    pub sent: u64,
    /// Received datagrams the endpoint rejected (undecodable or breaking a message-layer rule).
    pub malformed: u64,
    /// Failed `recv_from` calls.
    pub recv_errors: u64,
    /// Failed `send_to` calls (the datagram was dropped; CON retransmission may recover).
    pub send_errors: u64,
    /// Requests answered 5.03 because the [`Incoming`] channel was full or closed.
    pub shed: u64,
    /// Notifications dropped because their [`Observation`] buffer was full.
    pub notifications_dropped: u64,
    /// Outbound datagrams the security layer refused to protect (dropped; see [`RequestError::Security`]).
    pub seal_errors: u64,
}

#[derive(Debug, Default)]
struct Counters {
    received: AtomicU64,
    sent: AtomicU64,
    malformed: AtomicU64,
    recv_errors: AtomicU64,
    send_errors: AtomicU64,
    shed: AtomicU64,
    notifications_dropped: AtomicU64,
    seal_errors: AtomicU64,
}

fn bump(c: &AtomicU64) {
    c.fetch_add(1, Ordering::Relaxed);
}

type RequestReply = oneshot::Sender<Result<(RequestId, Message), RequestError>>;

/// Code run inside the loop on the security layer (if any), with the driver's clock in ms.
type SecurityJob = Box<dyn FnOnce(Option<&mut dyn DatagramSecurity>, u64) + Send>;

enum Command {
    Request {
        ticket: u64,
        peer: SocketAddr,
        message: Message,
        observe: Option<mpsc::Sender<Message>>,
        reply: RequestReply,
    },
    Cancel {
        ticket: u64,
    },
    CancelObservation {
        id: RequestId,
    },
    Restore {
        peer: SocketAddr,
        token: Token,
        message: Message,
        observe: mpsc::Sender<Message>,
        reply: oneshot::Sender<RequestId>,
    },
    Deregister {
        id: RequestId,
        reply: RequestReply,
    },
    Migrate {
        old: SocketAddr,
        new: SocketAddr,
        /// Only the relations on these tokens (`None`: everything).
        tokens: Option<Vec<Token>>,
        reply: oneshot::Sender<PeerMigration>,
    },
    Respond {
        responder: ResponderId,
        message: Message,
    },
    Accept {
        responder: ResponderId,
    },
    Notify {
        peer: SocketAddr,
        message: Message,
        reply: oneshot::Sender<Result<Delivery, RequestError>>,
    },
    Stats {
        reply: oneshot::Sender<Stats>,
    },
    Identity {
        peer: SocketAddr,
        reply: oneshot::Sender<Option<PeerIdentity>>,
    },
    WithSecurity {
        job: SecurityJob,
    },
    Shutdown {
        done: oneshot::Sender<()>,
    },
}

/// Entry point: binds a socket and spawns the driver task.
#[derive(Debug)]
pub struct UdpEndpoint;

impl UdpEndpoint {
    /// Bind `addr` (port 0 for an ephemeral port) and run an endpoint with `config` on it. Must be called inside
    /// a tokio runtime. Returns the handle and the channel of inbound requests and events.
    pub async fn bind(addr: SocketAddr, config: EndpointConfig) -> io::Result<(UdpHandle, mpsc::Receiver<Incoming>)> {
        let socket = UdpSocket::bind(addr).await?;
        Self::spawn(socket, Endpoint::new(config), DriverConfig::default())
    }

    /// Like [`UdpEndpoint::bind`] with a given driver configuration.
    pub async fn bind_with(
        addr: SocketAddr,
        config: EndpointConfig,
        driver: DriverConfig,
    ) -> io::Result<(UdpHandle, mpsc::Receiver<Incoming>)> {
        let socket = UdpSocket::bind(addr).await?;
        Self::spawn(socket, Endpoint::new(config), driver)
    }

    /// Run `endpoint` on an already bound socket (for custom socket options or a seeded endpoint). Must be
    /// called inside a tokio runtime.
    pub fn spawn(
        socket: UdpSocket,
        endpoint: Endpoint,
        driver: DriverConfig,
    ) -> io::Result<(UdpHandle, mpsc::Receiver<Incoming>)> {
        Self::spawn_inner(socket, endpoint, None, driver)
    }

    /// Bind `addr` and run an endpoint with `config` behind the security layer `layer` (CoAP over DTLS:
    /// `coaps://`). Must be called inside a tokio runtime.
    pub async fn bind_secure<L: DatagramSecurity>(
        addr: SocketAddr,
        config: EndpointConfig,
        layer: L,
    ) -> io::Result<(UdpHandle, mpsc::Receiver<Incoming>)> {
        let socket = UdpSocket::bind(addr).await?;
        Self::spawn_secure(socket, Endpoint::new(config), layer, DriverConfig::default())
    }

    /// Like [`UdpEndpoint::spawn`], with every datagram passing through `layer`: received datagrams are fed
    /// to the layer and its plaintext to the endpoint; the endpoint's datagrams are sealed by the layer. The
    /// layer runs on the driver's clock (ms since the driver started). Must be called inside a tokio runtime.
    pub fn spawn_secure<L: DatagramSecurity>(
        socket: UdpSocket,
        endpoint: Endpoint,
        layer: L,
        driver: DriverConfig,
    ) -> io::Result<(UdpHandle, mpsc::Receiver<Incoming>)> {
        Self::spawn_inner(socket, endpoint, Some(Box::new(layer)), driver)
    }

    fn spawn_inner(
        socket: UdpSocket,
        endpoint: Endpoint,
        security: Option<Box<dyn DatagramSecurity>>,
        driver: DriverConfig,
    ) -> io::Result<(UdpHandle, mpsc::Receiver<Incoming>)> {
        let local_addr = socket.local_addr()?;
        let secure = security.is_some();
        let (cmd_tx, cmd_rx) = mpsc::unbounded_channel();
        let (in_tx, in_rx) = mpsc::channel(driver.incoming_capacity.max(1));
        let counters = Arc::new(Counters::default());
        let observation_capacity = driver.observation_capacity.max(1);
        let driver_loop = Driver {
            socket,
            v6: local_addr.is_ipv6(),
            endpoint,
            origin: Instant::now(),
            commands: cmd_rx,
            incoming: in_tx,
            pending: HashMap::new(),
            tickets: HashMap::new(),
            observations: HashMap::new(),
            counters: counters.clone(),
            config: driver,
            security,
            outbox: VecDeque::new(),
        };
        tokio::spawn(driver_loop.run());
        let handle = UdpHandle {
            commands: cmd_tx,
            local_addr,
            counters,
            next_ticket: Arc::new(AtomicU64::new(1)),
            observation_capacity,
            secure,
        };
        Ok((handle, in_rx))
    }
}

/// The application's side of a running driver. Cheap to clone; the loop stops when the last handle is dropped
/// or [`UdpHandle::shutdown`] is called.
#[derive(Debug, Clone)]
pub struct UdpHandle {
    commands: mpsc::UnboundedSender<Command>,
    local_addr: SocketAddr,
    counters: Arc<Counters>,
    next_ticket: Arc<AtomicU64>,
    observation_capacity: usize,
    secure: bool,
}

impl std::fmt::Debug for Command {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        let name = match self {
            Command::Request { .. } => "Request",
            Command::Cancel { .. } => "Cancel",
            Command::CancelObservation { .. } => "CancelObservation",
            Command::Restore { .. } => "Restore",
            Command::Deregister { .. } => "Deregister",
            Command::Migrate { .. } => "Migrate",
            Command::Respond { .. } => "Respond",
            Command::Accept { .. } => "Accept",
            Command::Notify { .. } => "Notify",
            Command::Stats { .. } => "Stats",
            Command::Identity { .. } => "Identity",
            Command::WithSecurity { .. } => "WithSecurity",
            Command::Shutdown { .. } => "Shutdown",
        };
        f.write_str(name)
    }
}

/// Cancels a request in the loop if its future is dropped before the answer arrived.
struct CancelGuard<'a> {
    commands: &'a mpsc::UnboundedSender<Command>,
    ticket: u64,
    armed: bool,
}

impl Drop for CancelGuard<'_> {
    fn drop(&mut self) {
        if self.armed {
            let _ = self.commands.send(Command::Cancel { ticket: self.ticket });
        }
    }
}

impl UdpHandle {
    /// The bound address.
    pub fn local_addr(&self) -> SocketAddr {
        self.local_addr
    }

    /// Send `request` to `peer` (CON unless its type is NON) and wait for the response. A token is generated
    /// if the request has none. Dropping the future cancels the exchange.
    pub async fn request(&self, peer: SocketAddr, request: Message) -> Result<Message, RequestError> {
        self.request_inner(peer, request, None).await.map(|(_, m)| m)
    }

    /// Send an observe registration (Observe: 0 is set on `request`) and wait for the first response. If the
    /// response is a 2.xx with an Observe option, the returned [`Observation`] yields the later notifications;
    /// otherwise it yields nothing. Deregister proactively by sending the same request with Observe: 1 (and
    /// the same token) through [`UdpHandle::request`], or reactively by dropping the [`Observation`].
    pub async fn observe(
        &self,
        peer: SocketAddr,
        mut request: Message,
    ) -> Result<(Message, Observation), RequestError> {
        request.set_observe(0);
        let (tx, rx) = mpsc::channel(self.observation_capacity);
        let (id, first) = self.request_inner(peer, request, Some(tx)).await?;
        let obs = Observation {
            id,
            notifications: rx,
            commands: self.commands.clone(),
            live: true,
        };
        Ok((first, obs))
    }

    /// Re-install an observation established before a restart (see [`crate::Endpoint::restore_observation`]):
    /// notifications from `peer` on `token` are accepted again and yielded by the returned [`Observation`];
    /// `request` is the registration request (GET or FETCH with its options and payload), kept for an active
    /// cancel with [`Observation::deregister`]. Nothing is sent. The restore is queued to the loop before this
    /// returns (so it is ordered before any later command of this handle); the future resolves once it took
    /// effect.
    pub fn restore_observation(
        &self,
        peer: SocketAddr,
        token: Token,
        mut request: Message,
    ) -> impl std::future::Future<Output = Result<Observation, RequestError>> + Send + 'static {
        request.set_observe(0);
        let (tx, rx) = mpsc::channel(self.observation_capacity);
        let (reply, id_rx) = oneshot::channel();
        let sent = self
            .commands
            .send(Command::Restore {
                peer,
                token,
                message: request,
                observe: tx,
                reply,
            })
            .map_err(|_| RequestError::Closed);
        let commands = self.commands.clone();
        async move {
            sent?;
            let id = id_rx.await.map_err(|_| RequestError::Closed)?;
            Ok(Observation {
                id,
                notifications: rx,
                commands,
                live: true,
            })
        }
    }

    /// Move everything held with `old` to `new` (see [`crate::Endpoint::migrate_peer`]): for a peer whose
    /// address changed (NAT rebinding). Observations keep their [`Observation`] streams and tokens; requests
    /// and notifications in flight continue towards `new` (their futures resolve as before). Like
    /// [`UdpHandle::restore_observation`], the command is queued to the loop before this returns, so it is
    /// ordered before any later command of this handle (e.g. the response to the request that revealed the
    /// new address); the future resolves with what was moved once it took effect. On a secure driver the
    /// datagrams then go through the session with `new` (the peer handshakes from its new address).
    pub fn migrate_peer(
        &self,
        old: SocketAddr,
        new: SocketAddr,
    ) -> impl std::future::Future<Output = Result<PeerMigration, RequestError>> + Send + 'static {
        self.migrate_inner(old, new, None)
    }

    /// Like [`UdpHandle::migrate_peer`], but only the relations on `tokens` (see
    /// [`crate::Endpoint::migrate_tokens`]): for an old address that another peer now uses.
    pub fn migrate_tokens(
        &self,
        old: SocketAddr,
        new: SocketAddr,
        tokens: Vec<Token>,
    ) -> impl std::future::Future<Output = Result<PeerMigration, RequestError>> + Send + 'static {
        self.migrate_inner(old, new, Some(tokens))
    }

    fn migrate_inner(
        &self,
        old: SocketAddr,
        new: SocketAddr,
        tokens: Option<Vec<Token>>,
    ) -> impl std::future::Future<Output = Result<PeerMigration, RequestError>> + Send + 'static {
        let (reply, rx) = oneshot::channel();
        let sent = self
            .commands
            .send(Command::Migrate {
                old,
                new,
                tokens,
                reply,
            })
            .map_err(|_| RequestError::Closed);
        async move {
            sent?;
            rx.await.map_err(|_| RequestError::Closed)
        }
    }

    async fn request_inner(
        &self,
        peer: SocketAddr,
        message: Message,
        observe: Option<mpsc::Sender<Message>>,
    ) -> Result<(RequestId, Message), RequestError> {
        let ticket = self.next_ticket.fetch_add(1, Ordering::Relaxed);
        let (reply, rx) = oneshot::channel();
        self.commands
            .send(Command::Request {
                ticket,
                peer,
                message,
                observe,
                reply,
            })
            .map_err(|_| RequestError::Closed)?;
        let mut guard = CancelGuard {
            commands: &self.commands,
            ticket,
            armed: true,
        };
        let result = rx.await;
        guard.armed = false;
        result.unwrap_or(Err(RequestError::Closed))
    }

    /// Answer an inbound request (see [`crate::Endpoint::respond`]: piggybacked when possible, else a separate
    /// response). Errors of the endpoint (an unknown or already used responder) are logged by the loop.
    pub fn respond(&self, responder: ResponderId, response: Message) -> Result<(), RequestError> {
        self.commands
            .send(Command::Respond {
                responder,
                message: response,
            })
            .map_err(|_| RequestError::Closed)
    }

    /// Acknowledge a CON request now with an empty ACK; the later [`UdpHandle::respond`] becomes a separate
    /// response.
    pub fn accept(&self, responder: ResponderId) -> Result<(), RequestError> {
        self.commands
            .send(Command::Accept { responder })
            .map_err(|_| RequestError::Closed)
    }

    /// Send a notification (or another message carrying an observation's token) to `peer`. A CON message
    /// resolves when acknowledged ([`Delivery::Acknowledged`]) or fails with [`RequestError::Reset`] (the
    /// observer is gone) or [`RequestError::Timeout`]; a NON message resolves at once with [`Delivery::Sent`].
    pub async fn notify(&self, peer: SocketAddr, message: Message) -> Result<Delivery, RequestError> {
        let (reply, rx) = oneshot::channel();
        self.commands
            .send(Command::Notify { peer, message, reply })
            .map_err(|_| RequestError::Closed)?;
        rx.await.unwrap_or(Err(RequestError::Closed))
    }

    /// The endpoint's counters (rejected, duplicates, retransmissions, unmatched).
    pub async fn endpoint_stats(&self) -> Result<Stats, RequestError> {
        let (reply, rx) = oneshot::channel();
        self.commands
            .send(Command::Stats { reply })
            .map_err(|_| RequestError::Closed)?;
        rx.await.map_err(|_| RequestError::Closed)
    }

    /// The driver's counters.
    pub fn stats(&self) -> DriverStats {
        let c = &self.counters;
        let g = |a: &AtomicU64| a.load(Ordering::Relaxed);
        DriverStats {
            received: g(&c.received),
            sent: g(&c.sent),
            malformed: g(&c.malformed),
            recv_errors: g(&c.recv_errors),
            send_errors: g(&c.send_errors),
            shed: g(&c.shed),
            notifications_dropped: g(&c.notifications_dropped),
            seal_errors: g(&c.seal_errors),
        }
    }

    /// True if the driver runs a security layer ([`UdpEndpoint::spawn_secure`]).
    pub fn is_secure(&self) -> bool {
        self.secure
    }

    /// The authenticated identity of `peer` (its session must be established); `None` on plain CoAP.
    pub async fn peer_identity(&self, peer: SocketAddr) -> Result<Option<PeerIdentity>, RequestError> {
        let (reply, rx) = oneshot::channel();
        self.commands
            .send(Command::Identity { peer, reply })
            .map_err(|_| RequestError::Closed)?;
        rx.await.map_err(|_| RequestError::Closed)
    }

    /// Close the secure session with `peer` (close_notify); a later datagram to it needs a new handshake.
    pub async fn close_secure_session(&self, peer: SocketAddr) -> Result<(), RequestError> {
        self.run_on_security(move |layer, now| match layer {
            Some(l) => {
                l.close(now, canonical(peer));
                Ok(())
            }
            None => Err(RequestError::Security("the driver has no security layer".into())),
        })
        .await?
    }

    /// Run `f` on the driver's security layer of type `S` inside the loop, with the driver's clock (ms), and
    /// return its result: e.g. reconnect a DTLS client session or read the layer's statistics. Datagrams the
    /// layer produces are sent right after. Fails with [`RequestError::Security`] if the driver has no layer
    /// of type `S`.
    pub async fn with_security<S, R, F>(&self, f: F) -> Result<R, RequestError>
    where
        S: DatagramSecurity,
        R: Send + 'static,
        F: FnOnce(&mut S, u64) -> R + Send + 'static,
    {
        self.run_on_security(
            move |layer, now| match layer.and_then(|l| l.as_any_mut().downcast_mut::<S>()) {
                Some(s) => Ok(f(s, now)),
                None => Err(RequestError::Security(format!(
                    "the driver has no security layer of type {}",
                    std::any::type_name::<S>()
                ))),
            },
        )
        .await?
    }

    async fn run_on_security<R: Send + 'static>(
        &self,
        f: impl FnOnce(Option<&mut dyn DatagramSecurity>, u64) -> R + Send + 'static,
    ) -> Result<R, RequestError> {
        let (reply, rx) = oneshot::channel();
        let job: SecurityJob = Box::new(move |layer, now| {
            let _ = reply.send(f(layer, now));
        });
        self.commands
            .send(Command::WithSecurity { job })
            .map_err(|_| RequestError::Closed)?;
        rx.await.map_err(|_| RequestError::Closed)
    }

    /// Stop the loop and wait until the socket is closed. Pending requests fail with [`RequestError::Closed`].
    /// Returns at once if the loop already stopped.
    pub async fn shutdown(&self) {
        let (done, rx) = oneshot::channel();
        if self.commands.send(Command::Shutdown { done }).is_ok() {
            let _ = rx.await;
        }
    }

    /// True once the loop has stopped.
    pub fn is_closed(&self) -> bool {
        self.commands.is_closed()
    }
}

/// Notifications of one observation established with [`UdpHandle::observe`].
#[derive(Debug)]
pub struct Observation {
    id: RequestId,
    notifications: mpsc::Receiver<Message>,
    commands: mpsc::UnboundedSender<Command>,
    live: bool,
}

impl Observation {
    /// The id of the registration request.
    pub fn id(&self) -> RequestId {
        self.id
    }

    /// The next notification; `None` once the observation ended (the server sent a non-2.xx or Observe-less
    /// notification, the registration was not accepted, or the driver stopped).
    pub async fn next(&mut self) -> Option<Message> {
        self.notifications.recv().await
    }

    /// Cancel actively (RFC 7641 §3.6): send the registration request again with Observe: 1 on the same token
    /// and return the server's answer (normally a 2.05 without Observe). Notifications still in flight are
    /// acknowledged but not delivered. Fails with [`RequestError::NotObserving`] if the observation already
    /// ended.
    pub async fn deregister(mut self) -> Result<Message, RequestError> {
        self.live = false;
        let (reply, rx) = oneshot::channel();
        self.commands
            .send(Command::Deregister { id: self.id, reply })
            .map_err(|_| RequestError::Closed)?;
        rx.await.unwrap_or(Err(RequestError::Closed)).map(|(_, m)| m)
    }
}

impl Drop for Observation {
    fn drop(&mut self) {
        if self.live {
            let _ = self.commands.send(Command::CancelObservation { id: self.id });
        }
    }
}

enum Pending {
    Request {
        ticket: u64,
        /// The peer (unknown for a deregistration).
        peer: Option<SocketAddr>,
        reply: RequestReply,
        observe: Option<mpsc::Sender<Message>>,
    },
    Notify {
        peer: SocketAddr,
        reply: oneshot::Sender<Result<Delivery, RequestError>>,
    },
}

impl Pending {
    fn peer(&self) -> Option<SocketAddr> {
        match self {
            Pending::Request { peer, .. } => *peer,
            Pending::Notify { peer, .. } => Some(*peer),
        }
    }
}

struct Driver {
    socket: UdpSocket,
    v6: bool,
    endpoint: Endpoint,
    origin: Instant,
    commands: mpsc::UnboundedReceiver<Command>,
    incoming: mpsc::Sender<Incoming>,
    pending: HashMap<RequestId, Pending>,
    tickets: HashMap<u64, RequestId>,
    observations: HashMap<RequestId, mpsc::Sender<Message>>,
    counters: Arc<Counters>,
    config: DriverConfig,
    /// The security layer (`coaps://`), if any.
    security: Option<Box<dyn DatagramSecurity>>,
    /// Datagrams the security layer produced, waiting for the socket.
    outbox: VecDeque<(SocketAddr, Vec<u8>)>,
}

/// Show IPv4-mapped IPv6 peers as IPv4.
fn canonical(addr: SocketAddr) -> SocketAddr {
    match addr {
        SocketAddr::V6(v6) => match v6.ip().to_ipv4_mapped() {
            Some(v4) => SocketAddr::new(IpAddr::V4(v4), v6.port()),
            None => addr,
        },
        SocketAddr::V4(_) => addr,
    }
}

impl Driver {
    fn now(&self) -> Timestamp {
        let ms = self.origin.elapsed().as_millis();
        Timestamp::from_millis(u64::try_from(ms).unwrap_or(u64::MAX))
    }

    fn instant_of(&self, t: Timestamp) -> Instant {
        // Far-future timers (saturated timestamps) are capped at a day from now; the loop re-reads the deadline
        // on every turn anyway.
        let cap = self.now().as_millis().saturating_add(86_400_000);
        self.origin + Duration::from_millis(t.as_millis().min(cap))
    }

    /// Where to send a datagram for `peer` on this socket.
    fn wire_addr(&self, peer: SocketAddr) -> SocketAddr {
        match peer {
            SocketAddr::V4(v4) if self.v6 => {
                SocketAddr::V6(SocketAddrV6::new(v4.ip().to_ipv6_mapped(), v4.port(), 0, 0))
            }
            _ => peer,
        }
    }

    async fn run(mut self) {
        let mut buf = vec![0u8; self.config.max_datagram.max(1)];
        let batch = self.config.batch.max(1);
        let sleep = tokio::time::sleep_until(self.origin);
        tokio::pin!(sleep);
        let mut shutdown_done = None;
        debug!(local = ?self.socket.local_addr().ok(), "CoAP/UDP driver started");
        loop {
            let deadline = self.deadline();
            if let Some(t) = deadline {
                let at = self.instant_of(t);
                if sleep.deadline() != at {
                    sleep.as_mut().reset(at);
                }
            }
            tokio::select! {
                cmd = self.commands.recv() => {
                    let mut next = cmd;
                    let mut n = 0;
                    let mut stop = false;
                    while let Some(c) = next.take() {
                        if let Command::Shutdown { done } = c {
                            shutdown_done = Some(done);
                            stop = true;
                            break;
                        }
                        self.on_command(c);
                        n += 1;
                        if n >= batch {
                            break;
                        }
                        next = self.commands.try_recv().ok();
                    }
                    if n == 0 && !stop {
                        // Every handle was dropped.
                        stop = true;
                    }
                    if stop {
                        break;
                    }
                }
                r = self.socket.recv_from(&mut buf) => {
                    self.on_recv(r, &buf);
                    for _ in 1..batch {
                        let r = self.socket.try_recv_from(&mut buf);
                        if matches!(&r, Err(e) if e.kind() == io::ErrorKind::WouldBlock) {
                            break;
                        }
                        self.on_recv(r, &buf);
                    }
                }
                () = &mut sleep, if deadline.is_some() => {
                    let now = self.now();
                    self.endpoint.handle_timeout(now);
                    if let Some(layer) = self.security.as_mut() {
                        layer.handle_timeout(now.as_millis());
                        self.pump_security();
                    }
                }
            }
            self.process_events();
            self.flush().await;
        }
        // Final flush so answers given just before shutdown still leave.
        self.process_events();
        self.flush().await;
        for (_, p) in self.pending.drain() {
            match p {
                Pending::Request { reply, .. } => {
                    let _ = reply.send(Err(RequestError::Closed));
                }
                Pending::Notify { reply, .. } => {
                    let _ = reply.send(Err(RequestError::Closed));
                }
            }
        }
        self.observations.clear();
        debug!("CoAP/UDP driver stopped");
        let Driver { socket, .. } = self;
        drop(socket);
        if let Some(done) = shutdown_done {
            let _ = done.send(());
        }
    }

    fn on_recv(&mut self, r: io::Result<(usize, SocketAddr)>, buf: &[u8]) {
        match r {
            Ok((len, from)) => {
                bump(&self.counters.received);
                let peer = canonical(from);
                let bytes = buf.get(..len).unwrap_or(buf);
                let now = self.now();
                if let Some(layer) = self.security.as_mut() {
                    layer.on_datagram(now.as_millis(), peer, bytes);
                    self.pump_security();
                } else {
                    self.feed_endpoint(now, peer, bytes);
                }
            }
            Err(e) => {
                bump(&self.counters.recv_errors);
                // Errors such as ICMP port unreachable reports are per datagram; keep serving.
                debug!(error = %e, "UDP receive error");
            }
        }
    }

    /// Give one CoAP datagram to the endpoint, counting and logging a rejection.
    fn feed_endpoint(&mut self, now: Timestamp, peer: SocketAddr, bytes: &[u8]) {
        let before = self.endpoint.stats().rejected;
        self.endpoint.handle_datagram(now, peer, bytes);
        if self.endpoint.stats().rejected > before {
            bump(&self.counters.malformed);
            let len = bytes.len();
            match Message::decode(bytes) {
                Err(e) => debug!(%peer, len, reason = %e, "malformed CoAP datagram"),
                Ok(m) => debug!(%peer, len, mtype = ?m.mtype, code = %m.code, "CoAP message rejected"),
            }
        }
    }

    /// The earlier of the endpoint's and the security layer's deadlines.
    fn deadline(&mut self) -> Option<Timestamp> {
        let ep = self.endpoint.poll_timeout();
        let sec = self
            .security
            .as_ref()
            .and_then(|l| l.poll_timeout())
            .map(Timestamp::from_millis);
        match (ep, sec) {
            (Some(a), Some(b)) => Some(a.min(b)),
            (a, b) => a.or(b),
        }
    }

    /// Drain the security layer: datagrams to the outbox, plaintext to the endpoint (each one's events are
    /// processed at once, so a request is tagged with the identity of the session that carried it), events.
    fn pump_security(&mut self) {
        while let Some(t) = self.security.as_mut().and_then(|l| l.poll_transmit()) {
            self.outbox.push_back(t);
        }
        while let Some((peer, plain)) = self.security.as_mut().and_then(|l| l.poll_plaintext()) {
            let now = self.now();
            self.feed_endpoint(now, peer, &plain);
            self.process_events();
        }
        while let Some(ev) = self.security.as_mut().and_then(|l| l.poll_event()) {
            self.on_security_event(ev);
        }
        // Events may have produced datagrams (a close_notify, a new handshake).
        while let Some(t) = self.security.as_mut().and_then(|l| l.poll_transmit()) {
            self.outbox.push_back(t);
        }
    }

    fn on_security_event(&mut self, ev: SecurityEvent) {
        match &ev {
            SecurityEvent::Established { peer, identity } => {
                debug!(%peer, ?identity, "secure session established");
            }
            SecurityEvent::Closed { peer, reason } => {
                debug!(%peer, %reason, "secure session closed");
                if reason.is_authentication_failure() {
                    self.fail_peer(*peer, RequestError::Security(reason.to_string()));
                }
            }
        }
        self.forward(Incoming::Security(ev));
    }

    /// Fail every request and notification waiting for `peer`, stopping their retransmission.
    fn fail_peer(&mut self, peer: SocketAddr, err: RequestError) {
        let ids: Vec<RequestId> = self
            .pending
            .iter()
            .filter(|(_, p)| p.peer() == Some(peer))
            .map(|(id, _)| *id)
            .collect();
        let now = self.now();
        for id in ids {
            self.observations.remove(&id);
            self.fail(id, err.clone());
            self.endpoint.cancel(now, id);
        }
    }

    fn on_command(&mut self, cmd: Command) {
        let now = self.now();
        match cmd {
            Command::Request {
                ticket,
                peer,
                message,
                observe,
                reply,
            } => {
                let peer = canonical(peer);
                let id = self.endpoint.send_request(now, peer, message);
                self.tickets.insert(ticket, id);
                self.pending.insert(
                    id,
                    Pending::Request {
                        ticket,
                        peer: Some(peer),
                        reply,
                        observe,
                    },
                );
            }
            Command::Cancel { ticket } => {
                if let Some(id) = self.tickets.remove(&ticket) {
                    self.pending.remove(&id);
                    self.observations.remove(&id);
                    self.endpoint.cancel(now, id);
                }
            }
            Command::CancelObservation { id } => {
                self.observations.remove(&id);
                self.endpoint.cancel_observation(id);
            }
            Command::Restore {
                peer,
                token,
                message,
                observe,
                reply,
            } => {
                let id = self.endpoint.restore_observation(now, canonical(peer), token, message);
                self.observations.insert(id, observe);
                if reply.send(id).is_err() {
                    // The caller went away before it got its Observation.
                    self.observations.remove(&id);
                    self.endpoint.cancel_observation(id);
                }
            }
            Command::Deregister { id, reply } => {
                self.observations.remove(&id);
                match self.endpoint.cancel_observe(now, id) {
                    Some(new_id) => {
                        // Ticket 0 is never issued by a handle: this request cannot be cancelled by a drop.
                        self.pending.insert(
                            new_id,
                            Pending::Request {
                                ticket: 0,
                                peer: None,
                                reply,
                                observe: None,
                            },
                        );
                    }
                    None => {
                        let _ = reply.send(Err(RequestError::NotObserving));
                    }
                }
            }
            Command::Migrate {
                old,
                new,
                tokens,
                reply,
            } => {
                let (old, new) = (canonical(old), canonical(new));
                let moved = match &tokens {
                    None => self.endpoint.migrate_peer(now, old, new),
                    Some(t) => self.endpoint.migrate_tokens(now, old, new, t),
                };
                for id in &moved.exchanges {
                    match self.pending.get_mut(id) {
                        Some(Pending::Request { peer, .. }) if *peer == Some(old) => *peer = Some(new),
                        Some(Pending::Notify { peer, .. }) if *peer == old => *peer = new,
                        _ => {}
                    }
                }
                if !moved.is_empty() {
                    debug!(%old, %new, ?moved, "peer migrated");
                }
                let _ = reply.send(moved);
            }
            Command::Respond { responder, message } => {
                if let Err(e) = self.endpoint.respond(now, responder, message) {
                    debug!(error = %e, "respond failed");
                }
            }
            Command::Accept { responder } => {
                if let Err(e) = self.endpoint.accept(responder) {
                    debug!(error = %e, "accept failed");
                }
            }
            Command::Notify { peer, message, reply } => {
                let non = message.mtype == MessageType::Non;
                let peer = canonical(peer);
                match self.endpoint.send_notification(now, peer, message) {
                    Ok(id) if non => {
                        let _ = reply.send(Ok(Delivery::Sent(id)));
                    }
                    Ok(id) => {
                        self.pending.insert(id, Pending::Notify { peer, reply });
                    }
                    Err(e) => {
                        let _ = reply.send(Err(e.into()));
                    }
                }
            }
            Command::Stats { reply } => {
                let _ = reply.send(self.endpoint.stats().clone());
            }
            Command::Identity { peer, reply } => {
                let id = self.security.as_ref().and_then(|l| l.identity(canonical(peer)));
                let _ = reply.send(id);
            }
            Command::WithSecurity { job } => {
                job(self.security.as_deref_mut(), now.as_millis());
                self.pump_security();
            }
            Command::Shutdown { .. } => {}
        }
    }

    fn take_request(&mut self, id: RequestId) -> Option<Pending> {
        let p = self.pending.remove(&id)?;
        if let Pending::Request { ticket, .. } = &p {
            if *ticket != 0 {
                self.tickets.remove(ticket);
            }
        }
        Some(p)
    }

    fn fail(&mut self, id: RequestId, err: RequestError) -> bool {
        match self.take_request(id) {
            Some(Pending::Request { reply, .. }) => {
                let _ = reply.send(Err(err));
                true
            }
            Some(Pending::Notify { reply, .. }) => {
                let _ = reply.send(Err(err));
                true
            }
            None => false,
        }
    }

    fn shed(&mut self, peer: SocketAddr, request: &Message, responder: ResponderId, why: &str) {
        bump(&self.counters.shed);
        warn!(%peer, why, "inbound request shed with 5.03");
        let mut resp = Message::response_to(request, Code::SERVICE_UNAVAILABLE);
        resp.set_max_age(1);
        let now = self.now();
        let _ = self.endpoint.respond(now, responder, resp);
    }

    fn forward(&mut self, item: Incoming) {
        if let Err(e) = self.incoming.try_send(item) {
            let item = match e {
                TrySendError::Full(i) | TrySendError::Closed(i) => i,
            };
            debug!(?item, "event dropped: incoming channel full or closed");
        }
    }

    fn process_events(&mut self) {
        while let Some(ev) = self.endpoint.poll_event() {
            match ev {
                Event::IncomingRequest {
                    peer,
                    request,
                    responder,
                } => {
                    trace!(%peer, code = %request.code, path = %request.uri_path_string(), "request");
                    let identity = self.security.as_ref().and_then(|l| l.identity(peer));
                    let item = Incoming::Request(IncomingRequest {
                        peer,
                        request,
                        responder,
                        identity,
                    });
                    match self.incoming.try_send(item) {
                        Ok(()) => {}
                        Err(TrySendError::Full(Incoming::Request(r))) => {
                            self.shed(r.peer, &r.request, r.responder, "incoming channel full")
                        }
                        Err(TrySendError::Closed(Incoming::Request(r))) => {
                            self.shed(r.peer, &r.request, r.responder, "no application listening")
                        }
                        Err(_) => {}
                    }
                }
                Event::Response { id, message, .. } => match self.take_request(id) {
                    Some(Pending::Request { reply, observe, .. }) => {
                        if let Some(tx) = observe {
                            if message.code.is_success() && message.observe().is_some() {
                                self.observations.insert(id, tx);
                            }
                        }
                        if reply.send(Ok((id, message))).is_err() {
                            // The caller went away between the response and now.
                            self.observations.remove(&id);
                            self.endpoint.cancel_observation(id);
                        }
                    }
                    Some(Pending::Notify { reply, .. }) => {
                        let _ = reply.send(Ok(Delivery::Acknowledged));
                    }
                    None => trace!(?id, "response for a cancelled request"),
                },
                Event::Notification { id, message, .. } => {
                    let ends = !message.code.is_success() || message.observe().is_none();
                    let Some(tx) = self.observations.get(&id) else {
                        self.endpoint.cancel_observation(id);
                        continue;
                    };
                    match tx.try_send(message) {
                        Ok(()) => {}
                        Err(TrySendError::Full(_)) => {
                            bump(&self.counters.notifications_dropped);
                            debug!(?id, "notification dropped: observation buffer full");
                        }
                        Err(TrySendError::Closed(_)) => {
                            self.observations.remove(&id);
                            self.endpoint.cancel_observation(id);
                        }
                    }
                    if ends {
                        self.observations.remove(&id);
                    }
                }
                Event::Delivered { id } => {
                    if let Some(Pending::Notify { reply, .. }) = self.take_request(id) {
                        let _ = reply.send(Ok(Delivery::Acknowledged));
                    }
                }
                Event::Timeout { id } => {
                    let peer = self.pending.get(&id).and_then(Pending::peer);
                    self.fail(id, RequestError::Timeout);
                    let now = self.now().as_millis();
                    if let (Some(peer), Some(layer)) = (peer, self.security.as_mut()) {
                        layer.peer_unresponsive(now, peer);
                    }
                }
                Event::Reset { id } => {
                    if !self.fail(id, RequestError::Reset) {
                        self.forward(Incoming::NotificationRejected { id });
                    }
                }
                Event::ResponseFailed { responder, peer, reset } => {
                    debug!(%peer, reset, "separate response not delivered");
                    self.forward(Incoming::ResponseFailed { responder, peer, reset });
                }
                Event::ObservationCancelled { peer, token, reason } => {
                    debug!(%peer, ?reason, "observer gone");
                    self.forward(Incoming::ObservationCancelled { peer, token, reason });
                }
                Event::BlockwiseFailed { id, peer, error } => {
                    debug!(%peer, %error, "block-wise transfer failed");
                    self.fail(id, RequestError::Blockwise(error));
                }
                #[allow(unreachable_patterns)]
                other => self.forward(Incoming::Other(other)),
            }
        }
    }

    async fn flush(&mut self) {
        if self.security.is_some() {
            return self.flush_secure().await;
        }
        while let Some(t) = self.endpoint.poll_transmit() {
            self.send_datagram(t.peer, &t.bytes).await;
        }
    }

    async fn send_datagram(&mut self, peer: SocketAddr, bytes: &[u8]) {
        let to = self.wire_addr(peer);
        let r = match self.socket.try_send_to(bytes, to) {
            Err(e) if e.kind() == io::ErrorKind::WouldBlock => self.socket.send_to(bytes, to).await,
            r => r,
        };
        match r {
            Ok(_) => bump(&self.counters.sent),
            Err(e) => {
                bump(&self.counters.send_errors);
                debug!(%peer, error = %e, "UDP send failed");
            }
        }
    }

    /// Seal the endpoint's datagrams, then send what the layer produced; repeat until both are quiet (events
    /// of the layer may make the endpoint send more, e.g. a request failed on a handshake failure).
    async fn flush_secure(&mut self) {
        loop {
            let mut moved = false;
            while let Some(t) = self.endpoint.poll_transmit() {
                moved = true;
                let now = self.now().as_millis();
                let Some(layer) = self.security.as_mut() else { break };
                if let Err(e) = layer.seal(now, t.peer, &t.bytes) {
                    bump(&self.counters.seal_errors);
                    debug!(peer = %t.peer, error = %e, "datagram not sealed, dropped");
                    // A full handshake queue may drain before the next retransmission; anything else will not.
                    if e != SecurityError::QueueFull {
                        self.fail_peer(t.peer, RequestError::Security(e.to_string()));
                    }
                }
            }
            self.pump_security();
            self.process_events();
            while let Some((peer, bytes)) = self.outbox.pop_front() {
                moved = true;
                self.send_datagram(peer, &bytes).await;
            }
            if !moved {
                break;
            }
        }
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::message::Token;

    const T: Duration = Duration::from_secs(5);

    fn fast() -> EndpointConfig {
        EndpointConfig {
            ack_timeout_ms: 100,
            max_retransmit: 1,
            response_timeout_ms: 1000,
            ..EndpointConfig::default()
        }
    }

    async fn bind(addr: &str) -> (UdpHandle, mpsc::Receiver<Incoming>) {
        UdpEndpoint::bind(addr.parse().unwrap(), fast()).await.unwrap()
    }

    /// The next request; observer cancellations on the way are skipped.
    async fn next_request(rx: &mut mpsc::Receiver<Incoming>) -> IncomingRequest {
        loop {
            match tokio::time::timeout(T, rx.recv()).await.expect("no request in time") {
                Some(Incoming::Request(r)) => return r,
                Some(Incoming::ObservationCancelled { .. }) => continue,
                Some(other) => panic!("unexpected {other:?}"),
                None => panic!("incoming channel closed"),
            }
        }
    }

    /// Answers every request with 2.05 and the request path as payload.
    fn echo(handle: UdpHandle, mut rx: mpsc::Receiver<Incoming>) -> tokio::task::JoinHandle<()> {
        tokio::spawn(async move {
            while let Some(item) = rx.recv().await {
                if let Incoming::Request(r) = item {
                    let resp =
                        Message::response_to(&r.request, Code::CONTENT).with_payload(r.request.uri_path_string());
                    handle.respond(r.responder, resp).unwrap();
                }
            }
        })
    }

    #[tokio::test]
    async fn request_response_between_two_drivers() {
        let (server, srx) = bind("127.0.0.1:0").await;
        let _echo = echo(server.clone(), srx);
        let (client, _crx) = bind("127.0.0.1:0").await;
        for path in ["/a", "/b/c", "/3/0/1"] {
            let resp = tokio::time::timeout(
                T,
                client.request(server.local_addr(), Message::request(Code::GET, path)),
            )
            .await
            .unwrap()
            .unwrap();
            assert_eq!(resp.code, Code::CONTENT);
            assert_eq!(resp.mtype, MessageType::Ack, "piggybacked");
            assert_eq!(resp.payload, path.as_bytes());
        }
        assert_eq!(client.stats().sent, 3);
        assert_eq!(client.stats().received, 3);
        assert_eq!(server.stats().malformed, 0);
        client.shutdown().await;
        server.shutdown().await;
    }

    #[tokio::test(flavor = "multi_thread", worker_threads = 2)]
    async fn many_peers_on_one_server_task() {
        let (server, srx) = bind("127.0.0.1:0").await;
        let _echo = echo(server.clone(), srx);
        let to = server.local_addr();
        let mut calls = tokio::task::JoinSet::new();
        for i in 0..256 {
            // A pure client: dropping its incoming channel is fine.
            let (client, _) = bind("127.0.0.1:0").await;
            calls.spawn(async move {
                for j in 0..4 {
                    let path = format!("/p{i}/r{j}");
                    let resp = client.request(to, Message::request(Code::GET, &path)).await.unwrap();
                    assert_eq!(resp.payload, path.as_bytes());
                }
                client.shutdown().await;
            });
        }
        let all = tokio::time::timeout(Duration::from_secs(30), async {
            while let Some(r) = calls.join_next().await {
                r.unwrap();
            }
        });
        all.await.expect("1024 exchanges with 256 peers in time");
        // At least: a slow turn may cause a retransmission, answered from the dedup cache.
        assert!(server.stats().received >= 1024);
        assert_eq!(server.stats().shed, 0);
        assert_eq!(server.stats().malformed, 0);
    }

    #[tokio::test]
    async fn ipv6_loopback_and_dual_stack() {
        let Ok((server, srx)) = UdpEndpoint::bind("[::]:0".parse().unwrap(), fast()).await else {
            eprintln!("skipped: no IPv6 on this machine");
            return;
        };
        let port = server.local_addr().port();
        let (tx, mut seen) = mpsc::unbounded_channel();
        let h = server.clone();
        let mut srx = srx;
        tokio::spawn(async move {
            while let Some(Incoming::Request(r)) = srx.recv().await {
                let _ = tx.send(r.peer);
                h.respond(r.responder, Message::response_to(&r.request, Code::CONTENT))
                    .unwrap();
            }
        });
        let (c6, _r6) = bind("[::1]:0").await;
        let to6 = SocketAddr::new("::1".parse().unwrap(), port);
        let resp = tokio::time::timeout(T, c6.request(to6, Message::request(Code::GET, "/x")))
            .await
            .unwrap()
            .unwrap();
        assert_eq!(resp.code, Code::CONTENT);
        assert_eq!(seen.recv().await.unwrap(), c6.local_addr());
        // An IPv4 client reaches the dual-stack socket and is seen as a plain IPv4 peer.
        let (c4, _r4) = bind("127.0.0.1:0").await;
        let to4 = SocketAddr::new("127.0.0.1".parse().unwrap(), port);
        let resp = tokio::time::timeout(T, c4.request(to4, Message::request(Code::GET, "/y")))
            .await
            .unwrap()
            .unwrap();
        assert_eq!(resp.code, Code::CONTENT);
        assert_eq!(seen.recv().await.unwrap(), c4.local_addr());
    }

    #[tokio::test]
    async fn separate_response_after_accept() {
        let (server, mut srx) = bind("127.0.0.1:0").await;
        let (client, _crx) = bind("127.0.0.1:0").await;
        let to = server.local_addr();
        let c = client.clone();
        let call = tokio::spawn(async move { c.request(to, Message::request(Code::POST, "/slow")).await });
        let r = next_request(&mut srx).await;
        server.accept(r.responder).unwrap();
        // The empty ACK must reach the client before the answer; wait for the client to count it.
        tokio::time::timeout(T, async {
            while client.stats().received == 0 {
                tokio::task::yield_now().await;
            }
        })
        .await
        .unwrap();
        server
            .respond(r.responder, Message::response_to(&r.request, Code::CHANGED))
            .unwrap();
        let resp = tokio::time::timeout(T, call).await.unwrap().unwrap().unwrap();
        assert_eq!(resp.code, Code::CHANGED);
        assert_eq!(resp.mtype, MessageType::Con, "separate response");
    }

    #[tokio::test]
    async fn observe_notify_and_reactive_cancel() {
        let (server, mut srx) = bind("127.0.0.1:0").await;
        let (client, _crx) = bind("127.0.0.1:0").await;
        let to = server.local_addr();
        let c = client.clone();
        let reg = tokio::spawn(async move { c.observe(to, Message::request(Code::GET, "/temp")).await });
        let r = next_request(&mut srx).await;
        assert_eq!(r.request.observe(), Some(0));
        let token = r.request.token;
        let mut first = Message::response_to(&r.request, Code::CONTENT).with_payload("20");
        first.set_observe(1);
        server.respond(r.responder, first).unwrap();
        let (resp, mut obs) = tokio::time::timeout(T, reg).await.unwrap().unwrap().unwrap();
        assert_eq!(resp.payload, b"20");
        for (seq, v) in [(2u32, "21"), (3, "22")] {
            let mut n = Message::new(MessageType::Con, Code::CONTENT)
                .with_token(token)
                .with_payload(v);
            n.set_observe(seq);
            let d = tokio::time::timeout(T, server.notify(r.peer, n))
                .await
                .unwrap()
                .unwrap();
            assert_eq!(d, Delivery::Acknowledged);
            let got = tokio::time::timeout(T, obs.next()).await.unwrap().unwrap();
            assert_eq!(got.payload, v.as_bytes());
        }
        // NON notifications resolve at once.
        let mut n = Message::new(MessageType::Non, Code::CONTENT)
            .with_token(token)
            .with_payload("23");
        n.set_observe(4);
        let d = tokio::time::timeout(T, server.notify(r.peer, n))
            .await
            .unwrap()
            .unwrap();
        assert!(matches!(d, Delivery::Sent(_)));
        assert_eq!(
            tokio::time::timeout(T, obs.next()).await.unwrap().unwrap().payload,
            b"23"
        );
        // Dropping the observation makes the client reject the next notification.
        drop(obs);
        let mut n = Message::new(MessageType::Con, Code::CONTENT)
            .with_token(token)
            .with_payload("24");
        n.set_observe(5);
        let d = tokio::time::timeout(T, server.notify(r.peer, n)).await.unwrap();
        assert_eq!(d, Err(RequestError::Reset));
        // A notification without a token is refused by the endpoint.
        let n = Message::new(MessageType::Con, Code::CONTENT);
        let d = tokio::time::timeout(T, server.notify(r.peer, n)).await.unwrap();
        assert_eq!(d, Err(RequestError::Endpoint(EndpointError::MissingToken)));
    }

    #[tokio::test]
    async fn a_restored_observation_yields_notifications_after_the_observer_restarts() {
        let (server, mut srx) = bind("127.0.0.1:0").await;
        let (client, _crx) = bind("127.0.0.1:0").await;
        let (to, client_addr) = (server.local_addr(), client.local_addr());
        let c = client.clone();
        let reg = tokio::spawn(async move { c.observe(to, Message::request(Code::GET, "/temp")).await });
        let r = next_request(&mut srx).await;
        let token = r.request.token;
        let mut first = Message::response_to(&r.request, Code::CONTENT).with_payload("20");
        first.set_observe(7);
        server.respond(r.responder, first).unwrap();
        let (_, obs) = tokio::time::timeout(T, reg).await.unwrap().unwrap().unwrap();
        // The observer's process goes away (no deregistration) and comes back on the same address.
        std::mem::forget(obs);
        client.shutdown().await;
        drop(client);
        let (client, _crx) = bind(&client_addr.to_string()).await;
        let mut obs = client
            .restore_observation(to, token, Message::request(Code::GET, "/temp"))
            .await
            .unwrap();
        let mut n = Message::new(MessageType::Con, Code::CONTENT)
            .with_token(token)
            .with_payload("21");
        n.set_observe(2);
        let d = tokio::time::timeout(T, server.notify(r.peer, n))
            .await
            .unwrap()
            .unwrap();
        assert_eq!(d, Delivery::Acknowledged);
        let got = tokio::time::timeout(T, obs.next()).await.unwrap().unwrap();
        assert_eq!((got.payload.as_slice(), got.observe()), (&b"21"[..], Some(2)));
        // A token the restarted observer does not know is still rejected.
        let stray = Message::new(MessageType::Con, Code::CONTENT)
            .with_token(Token::from_u64(0xDEAD))
            .with_payload("x");
        let d = tokio::time::timeout(T, server.notify(r.peer, stray)).await.unwrap();
        assert!(matches!(d, Err(RequestError::Reset)), "{d:?}");
        // Active cancel works on a restored observation: the server sees GET Observe=1 on the same token.
        let c = tokio::spawn(async move { obs.deregister().await });
        let r2 = next_request(&mut srx).await;
        assert_eq!((r2.request.token, r2.request.observe()), (token, Some(1)));
        assert_eq!(r2.request.uri_path_string(), "/temp");
        server
            .respond(r2.responder, Message::response_to(&r2.request, Code::CONTENT))
            .unwrap();
        let answer = tokio::time::timeout(T, c).await.unwrap().unwrap().unwrap();
        assert_eq!(answer.code, Code::CONTENT);
    }

    #[tokio::test]
    async fn observe_deregister_actively() {
        let (server, mut srx) = bind("127.0.0.1:0").await;
        let (client, _crx) = bind("127.0.0.1:0").await;
        let to = server.local_addr();
        let c = client.clone();
        let reg = tokio::spawn(async move { c.observe(to, Message::request(Code::GET, "/temp")).await });
        let r = next_request(&mut srx).await;
        let mut first = Message::response_to(&r.request, Code::CONTENT).with_payload("20");
        first.set_observe(1);
        server.respond(r.responder, first).unwrap();
        let (_, obs) = tokio::time::timeout(T, reg).await.unwrap().unwrap().unwrap();
        let dereg = tokio::spawn(obs.deregister());
        let d = next_request(&mut srx).await;
        assert_eq!(d.request.observe(), Some(1));
        assert_eq!(d.request.token, r.request.token, "same token");
        assert_eq!(d.request.uri_path_string(), "/temp");
        server
            .respond(
                d.responder,
                Message::response_to(&d.request, Code::CONTENT).with_payload("21"),
            )
            .unwrap();
        let resp = tokio::time::timeout(T, dereg).await.unwrap().unwrap().unwrap();
        assert_eq!((resp.payload.as_slice(), resp.observe()), (&b"21"[..], None));
        // The observation is gone: a later notification is rejected.
        let mut n = Message::new(MessageType::Con, Code::CONTENT).with_token(r.request.token);
        n.set_observe(2);
        let got = tokio::time::timeout(T, server.notify(r.peer, n)).await.unwrap();
        assert_eq!(got, Err(RequestError::Reset));
    }

    #[tokio::test]
    async fn malformed_datagrams_are_counted_and_do_not_stop_the_loop() {
        let (server, srx) = bind("127.0.0.1:0").await;
        let _echo = echo(server.clone(), srx);
        let raw = UdpSocket::bind("127.0.0.1:0").await.unwrap();
        // Too short; version 2; CON with token length 9 (gets an RST); garbage after the payload marker.
        let bad: [&[u8]; 4] = [
            &[0x40],
            &[0x80, 0x01, 0, 1],
            &[0x49, 0x01, 0x12, 0x34],
            &[0x40, 0x01, 0, 2, 0xff],
        ];
        for b in bad {
            raw.send_to(b, server.local_addr()).await.unwrap();
        }
        let mut buf = [0u8; 64];
        let (n, _) = tokio::time::timeout(T, raw.recv_from(&mut buf)).await.unwrap().unwrap();
        let rst = Message::decode(&buf[..n]).unwrap();
        assert_eq!((rst.mtype, rst.message_id), (MessageType::Rst, 0x1234));
        let (client, _crx) = bind("127.0.0.1:0").await;
        let resp = tokio::time::timeout(
            T,
            client.request(server.local_addr(), Message::request(Code::GET, "/ok")),
        )
        .await
        .unwrap()
        .unwrap();
        assert_eq!(resp.payload, b"/ok");
        // Datagrams are handled in order, so all four were counted before the request was answered.
        assert_eq!(server.stats().malformed, 3 + 1);
        assert!(
            tokio::time::timeout(T, server.endpoint_stats())
                .await
                .unwrap()
                .unwrap()
                .rejected
                >= 4
        );
    }

    #[tokio::test]
    async fn timeout_and_cancel_on_drop() {
        let (client, _crx) = bind("127.0.0.1:0").await;
        let silent = UdpSocket::bind("127.0.0.1:0").await.unwrap();
        let to = silent.local_addr().unwrap();
        // All retransmissions unanswered: Timeout.
        let r = tokio::time::timeout(T, client.request(to, Message::request(Code::GET, "/a")))
            .await
            .unwrap();
        assert_eq!(r, Err(RequestError::Timeout));
        let mut buf = [0u8; 64];
        let mut mids = Vec::new();
        for _ in 0..2 {
            let (n, _) = tokio::time::timeout(T, silent.recv_from(&mut buf))
                .await
                .unwrap()
                .unwrap();
            mids.push(Message::decode(&buf[..n]).unwrap().message_id);
        }
        assert_eq!(mids[0], mids[1], "one retransmission of the same message");
        // A request whose future is dropped releases its NSTART slot: the next one is sent at once.
        let pending = client.request(to, Message::request(Code::GET, "/b"));
        assert!(tokio::time::timeout(Duration::from_millis(20), pending).await.is_err());
        let (n, _) = tokio::time::timeout(T, silent.recv_from(&mut buf))
            .await
            .unwrap()
            .unwrap();
        assert_eq!(Message::decode(&buf[..n]).unwrap().uri_path_string(), "/b");
        let c = client.clone();
        let _third = tokio::spawn(async move { c.request(to, Message::request(Code::GET, "/c")).await });
        let (n, _) = tokio::time::timeout(T, silent.recv_from(&mut buf))
            .await
            .unwrap()
            .unwrap();
        let m = Message::decode(&buf[..n]).unwrap();
        assert_eq!(m.uri_path_string(), "/c", "/c is not queued behind the dropped /b");
    }

    #[tokio::test]
    async fn requests_are_shed_when_the_application_falls_behind() {
        let driver = DriverConfig {
            incoming_capacity: 1,
            ..DriverConfig::default()
        };
        let (server, _srx) = UdpEndpoint::bind_with("127.0.0.1:0".parse().unwrap(), fast(), driver)
            .await
            .unwrap();
        let (client, _crx) = bind("127.0.0.1:0").await;
        let to = server.local_addr();
        let c = client.clone();
        let _first = tokio::spawn(async move { c.request(to, Message::request(Code::GET, "/1")).await });
        // The first request fills the channel; wait until the server has it.
        tokio::time::timeout(T, async {
            while server.stats().received == 0 {
                tokio::task::yield_now().await;
            }
        })
        .await
        .unwrap();
        let mut req = Message::request(Code::GET, "/2");
        req.token = Token::from_u64(7);
        let (client2, _c2rx) = bind("127.0.0.1:0").await;
        let resp = tokio::time::timeout(T, client2.request(to, req))
            .await
            .unwrap()
            .unwrap();
        assert_eq!(resp.code, Code::SERVICE_UNAVAILABLE);
        assert_eq!(resp.max_age(), Some(1));
        assert_eq!(server.stats().shed, 1);
    }

    #[tokio::test]
    async fn shutdown_fails_pending_requests_and_frees_the_port() {
        let (client, _crx) = bind("127.0.0.1:0").await;
        let silent = UdpSocket::bind("127.0.0.1:0").await.unwrap();
        let to = silent.local_addr().unwrap();
        let c = client.clone();
        let call = tokio::spawn(async move { c.request(to, Message::request(Code::GET, "/a")).await });
        let mut buf = [0u8; 64];
        tokio::time::timeout(T, silent.recv_from(&mut buf))
            .await
            .unwrap()
            .unwrap();
        let addr = client.local_addr();
        tokio::time::timeout(T, client.shutdown()).await.unwrap();
        assert!(client.is_closed());
        assert_eq!(
            tokio::time::timeout(T, call).await.unwrap().unwrap(),
            Err(RequestError::Closed)
        );
        assert_eq!(
            tokio::time::timeout(T, client.request(to, Message::request(Code::GET, "/b")))
                .await
                .unwrap(),
            Err(RequestError::Closed)
        );
        assert_eq!(
            client.respond(ResponderId(1), Message::new(MessageType::Ack, Code::CONTENT)),
            Err(RequestError::Closed)
        );
        UdpSocket::bind(addr).await.expect("port released");
        // Shutting down twice is fine.
        tokio::time::timeout(T, client.shutdown()).await.unwrap();
    }

    #[tokio::test]
    async fn loop_stops_when_every_handle_is_dropped() {
        let (client, mut rx) = bind("127.0.0.1:0").await;
        drop(client);
        assert!(tokio::time::timeout(T, rx.recv()).await.unwrap().is_none());
    }

    #[test]
    fn canonical_addresses() {
        let mapped: SocketAddr = "[::ffff:127.0.0.1]:5683".parse().unwrap();
        assert_eq!(canonical(mapped), "127.0.0.1:5683".parse::<SocketAddr>().unwrap());
        let v6: SocketAddr = "[::1]:5683".parse().unwrap();
        assert_eq!(canonical(v6), v6);
    }

    async fn recv(s: &UdpSocket) -> Message {
        let mut buf = [0u8; 1500];
        let (n, _) = tokio::time::timeout(T, s.recv_from(&mut buf))
            .await
            .expect("datagram")
            .unwrap();
        Message::decode(&buf[..n]).unwrap()
    }

    /// A device behind a NAT, as two raw sockets: its public address before (`a`) and after (`b`) a rebind.
    #[tokio::test]
    async fn migrate_peer_keeps_the_observation_stream_and_pending_requests() {
        // Retransmissions patient enough that the migration always comes before the first one.
        let config = EndpointConfig {
            ack_timeout_ms: 300,
            ..fast()
        };
        let (server, _rx) = UdpEndpoint::bind("127.0.0.1:0".parse().unwrap(), config).await.unwrap();
        let a = UdpSocket::bind("127.0.0.1:0").await.unwrap();
        let b = UdpSocket::bind("127.0.0.1:0").await.unwrap();
        let (a_addr, b_addr, to) = (a.local_addr().unwrap(), b.local_addr().unwrap(), server.local_addr());
        let h = server.clone();
        let reg = tokio::spawn(async move { h.observe(a_addr, Message::request(Code::GET, "/3303/0/5700")).await });
        let req = recv(&a).await;
        let mut first = Message::response_to(&req, Code::CONTENT).with_payload("20");
        first.set_observe(1);
        a.send_to(&first.encode(), to).await.unwrap();
        let (_, mut obs) = tokio::time::timeout(T, reg).await.unwrap().unwrap().unwrap();
        let notification = |mid: u16, seq: u32, v: &str| {
            let mut n = Message::new(MessageType::Con, Code::CONTENT)
                .with_token(req.token)
                .with_payload(v);
            n.message_id = mid;
            n.set_observe(seq);
            n.encode()
        };

        // The rebind: without a migration, a notification from the new address is answered with RST.
        b.send_to(&notification(0x100, 2, "lost"), to).await.unwrap();
        assert_eq!(recv(&b).await, Message::reset(0x100));

        // A request to the device is in flight (to the old address) when the server learns the new one.
        let h = server.clone();
        let read = tokio::spawn(async move { h.request(a_addr, Message::request(Code::GET, "/3/0/0")).await });
        let lost = recv(&a).await;
        let moved = server.migrate_peer(a_addr, b_addr).await.unwrap();
        assert_eq!(moved.observations, vec![obs.id()]);
        assert_eq!(moved.exchanges.len(), 1);

        // The retransmission reaches B; its answer from B completes the request.
        let again = recv(&b).await;
        assert_eq!((again.message_id, again.token), (lost.message_id, lost.token));
        let answer = Message::response_to(&again, Code::CONTENT).with_payload("Open Mobile Alliance");
        b.send_to(&answer.encode(), to).await.unwrap();
        let r = tokio::time::timeout(T, read).await.unwrap().unwrap().unwrap();
        assert_eq!(r.payload, b"Open Mobile Alliance");

        // Notifications from B come out of the same Observation stream and are ACKed to B.
        b.send_to(&notification(0x101, 3, "21"), to).await.unwrap();
        let n = tokio::time::timeout(T, obs.next()).await.unwrap().unwrap();
        assert_eq!(n.payload, b"21");
        assert_eq!(recv(&b).await, Message::empty_ack(0x101));

        // The old address is no longer matched.
        a.send_to(&notification(0x102, 4, "stale"), to).await.unwrap();
        assert_eq!(recv(&a).await, Message::reset(0x102));
        // A migration of an address the driver does not know changes nothing.
        let none = server
            .migrate_peer("127.0.0.1:9".parse().unwrap(), a_addr)
            .await
            .unwrap();
        assert!(none.is_empty());
        b.send_to(&notification(0x103, 5, "22"), to).await.unwrap();
        let n = tokio::time::timeout(T, obs.next()).await.unwrap().unwrap();
        assert_eq!(n.payload, b"22");
    }
}
