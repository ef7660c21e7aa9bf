//! The server service: [`Server::start`] runs the LwM2M Server role on one or more CoAP sockets and returns a
//! [`ServerHandle`] (the typed request API) and the [`Event`] stream.
//!
//! # Tasks
//!
//! - One task per socket reads the driver's [`Incoming`] channel and answers the Client Registration and
//!   Information Reporting requests inline (they only touch the store): `POST /rd` Register, `POST /rd/{id}`
//!   Update, `DELETE /rd/{id}` De-register, `POST /dp` Send. Anything else is 4.04 (unknown path) or 4.05
//!   (known path, wrong method), logged at debug level with the reason. Bad input never panics.
//! - One timer task keeps a single heap of deadlines: registration expiry and queue-mode sleep checks. There
//!   is no task or timer per device. Entries are re-armed lazily: an Update that extends the lifetime pushes
//!   nothing; the old entry re-arms itself when it comes due.
//! - Requests to clients run in the caller's task (the `UdpHandle` of the registration's socket carries
//!   them); each live observation has a small task forwarding its notifications as events; a queue-mode
//!   client that wakes with held requests gets a flush task that releases them one at a time.
//!
//! # Held requests and restarts
//!
//! A request held for a sleeping queue-mode client is written to the [`RegistrationStore`]
//! ([`crate::QueuedRequest`]: the request, its content format override, queued-at and deadline in wall-clock
//! ms) and removed when it was sent (whatever the answer), its deadline passed or its caller gave up; a
//! shutdown keeps it. Each one that finishes is reported as [`Event::QueuedRequestDone`]. At start the
//! records of a persistent store (a previous run) are put back into the queue in their order, each with a
//! small task as its waiter: when the client next wakes they are sent like any held request and their
//! outcome is only reported by that event. Records whose registration is gone or whose deadline passed are
//! dropped with the event carrying `RegistrationEnded` or `ClientSleeping`.
//!
//! # Address changes (NAT rebinding)
//!
//! A client behind a NAT may get a new public address and port; it then sends an Update from there (digest
//! §4.2). The Update moves the registration to the new address and, before it is answered, the CoAP state held
//! with the old address — the registration's observations, requests in flight — to the new one on the same
//! socket (`UdpHandle::migrate_peer`), logged at info level. Observations keep their ids and tokens, so later
//! notifications from the new address arrive as before. If another registration uses the old address by
//! then, only this registration's observations move. A re-Register (even from the same device) still ends
//! the old registration's observations (digest §4.1).
//!
//! # Security
//!
//! Give the server a DTLS socket (`UdpEndpoint::spawn_secure` with `lwm2m-dtls`'s server layer) next to, or
//! instead of, the plain one: every `IncomingRequest` then carries the peer's authenticated identity, which
//! Register checks against the [`SecurityStore`] ([`crate::security::authorize`], digest §10.5). Update,
//! De-register and Send must come with the identity the client registered with (the same PSK identity or raw
//! public key, or a certificate with the same subject CN).

use std::cmp::Reverse;
use std::collections::{BinaryHeap, HashMap};
use std::io;
use std::net::SocketAddr;
use std::sync::atomic::{AtomicBool, AtomicU64, Ordering};
use std::sync::{Arc, Mutex, MutexGuard, RwLock};
use std::time::Duration;

use lwm2m_coap::{
    Code, EndpointConfig, Incoming, IncomingRequest, Message, PeerIdentity, RequestError, UdpEndpoint, UdpHandle,
};
use lwm2m_core::format::{self, ContentFormat};
use lwm2m_core::model::ModelRegistry;
use lwm2m_core::{Node, Path, Record, ResourceNode, Value};
use thiserror::Error;
use tokio::sync::{broadcast, mpsc, oneshot, Notify};
use tokio::time::Instant;
use tracing::{debug, info, warn};

use crate::clock::{Clock, TokioClock};
use crate::error::ServerError;
use crate::event::Event;
use crate::observation::{
    CancelMode, Control, Entry, ObservationEndReason, ObservationId, ObservationInfo, Observations,
};
use crate::queue::{Permit, Presence, QueuedRequest, QueuedRequestInfo, Queues};
use crate::registration::{RegisterRequest, UpdateRequest};
use crate::registry::{MemoryRegistrationStore, Registration, RegistrationId, RegistrationStore, StoreError};
use crate::request::{build_message, decode_response, Request, RequestOptions, Response, WriteMode};
use crate::security::{authorize, MemorySecurityStore, SecurityStore};
use lwm2m_core::attributes::AttributeChanges;

/// Requests to run as soon as a client registers (BsR-8, server side): the global list, or the list of the
/// endpoint when it has one (it replaces the global list for that endpoint).
#[derive(Debug, Clone, Default, PartialEq)]
pub struct OnRegistration {
    /// For every endpoint without its own list.
    pub global: Vec<Request>,
    /// Per endpoint.
    pub per_endpoint: HashMap<String, Vec<Request>>,
}

impl OnRegistration {
    /// The actions for `endpoint`.
    pub fn actions_for(&self, endpoint: &str) -> &[Request] {
        self.per_endpoint.get(endpoint).unwrap_or(&self.global)
    }
}

/// The server's configuration.
pub struct ServerConfig {
    /// Object models; each registration sees the versions it registered.
    pub models: Arc<ModelRegistry>,
    /// Where registrations live (default: [`MemoryRegistrationStore`]).
    pub store: Arc<dyn RegistrationStore>,
    /// Credentials per endpoint (default: empty, so every client must use plain CoAP).
    pub security: Arc<dyn SecurityStore>,
    /// The clock (default: [`TokioClock`] created at start).
    pub clock: Option<Arc<dyn Clock>>,
    /// Default timeout of a request to a client, including time held for a sleeping queue-mode client
    /// (120 s).
    pub request_timeout: Duration,
    /// How long a queue-mode client stays reachable after its last message (93 s, MAX_TRANSMIT_WAIT).
    pub awake_time: Duration,
    /// Extra time after a registration's lifetime before it is removed (0).
    pub lifetime_grace: Duration,
    /// Capacity of the event channel (4096); slow subscribers lose the oldest events.
    pub event_capacity: usize,
    /// Requests run right after a Register is accepted.
    pub on_registration: OnRegistration,
}

impl Default for ServerConfig {
    fn default() -> Self {
        ServerConfig {
            models: Arc::new(ModelRegistry::builtin()),
            store: Arc::new(MemoryRegistrationStore::new()),
            security: Arc::new(MemorySecurityStore::new()),
            clock: None,
            request_timeout: Duration::from_secs(120),
            awake_time: Duration::from_secs(93),
            lifetime_grace: Duration::ZERO,
            event_capacity: 4096,
            on_registration: OnRegistration::default(),
        }
    }
}

impl std::fmt::Debug for ServerConfig {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.debug_struct("ServerConfig")
            .field("models", &self.models.len())
            .field("registrations", &self.store.len())
            .field("request_timeout", &self.request_timeout)
            .field("awake_time", &self.awake_time)
            .field("lifetime_grace", &self.lifetime_grace)
            .field("event_capacity", &self.event_capacity)
            .field("on_registration", &self.on_registration)
            .finish()
    }
}

/// Why the server could not start.
#[derive(Debug, Error)]
pub enum StartError {
    /// No socket was given.
    #[error("the server needs at least one socket")]
    NoSocket,
    /// More than 256 sockets.
    #[error("the server takes at most 256 sockets, not {0}")]
    TooManySockets(usize),
    /// Loading the stored registrations failed.
    #[error(transparent)]
    Store(#[from] StoreError),
    /// Binding the socket failed.
    #[error("cannot bind: {0}")]
    Io(#[from] io::Error),
}

/// One socket for the server: the driver's handle and its inbound channel.
pub type Socket = (UdpHandle, mpsc::Receiver<Incoming>);

/// Entry point of the service.
#[derive(Debug)]
pub struct Server;

impl Server {
    /// Starts the server on `sockets` (plain CoAP and/or DTLS drivers; a registration remembers the index of
    /// the socket it came in on). Must be called inside a tokio runtime. Registrations already in the store
    /// get their expiry scheduled.
    pub fn start(
        config: ServerConfig,
        sockets: Vec<Socket>,
    ) -> Result<(ServerHandle, broadcast::Receiver<Event>), StartError> {
        if sockets.is_empty() {
            return Err(StartError::NoSocket);
        }
        if sockets.len() > 256 {
            return Err(StartError::TooManySockets(sockets.len()));
        }
        let (events, rx) = broadcast::channel(config.event_capacity.max(1));
        let clock: Arc<dyn Clock> = config.clock.clone().unwrap_or_else(|| Arc::new(TokioClock::new()));
        let (handles, receivers): (Vec<UdpHandle>, Vec<mpsc::Receiver<Incoming>>) = sockets.into_iter().unzip();
        let inner = Arc::new(Inner {
            store: config.store.clone(),
            security: config.security.clone(),
            models: config.models.clone(),
            clock,
            request_timeout: config.request_timeout,
            awake_ms: u64::try_from(config.awake_time.as_millis()).unwrap_or(u64::MAX),
            grace_ms: u64::try_from(config.lifetime_grace.as_millis()).unwrap_or(u64::MAX),
            sockets: handles,
            events,
            timers: Mutex::new(BinaryHeap::new()),
            timer_wake: Notify::new(),
            observations: Mutex::new(Observations::default()),
            queues: Mutex::new(Queues::default()),
            on_registration: RwLock::new(config.on_registration),
            closed: AtomicBool::new(false),
            next_observation: AtomicU64::new(1),
        });
        let mut due = Vec::new();
        inner.store.for_each(&mut |r| due.push((r.expires_ms, r.id)))?;
        for (at, id) in due {
            inner.schedule(at.saturating_add(inner.grace_ms), Timer::Expire(id));
        }
        inner.restore_observations();
        inner.restore_queued_requests();
        for (index, rx) in receivers.into_iter().enumerate() {
            let socket = u8::try_from(index).unwrap_or(u8::MAX);
            tokio::spawn(incoming_loop(inner.clone(), socket, rx));
        }
        tokio::spawn(timer_loop(inner.clone()));
        info!(
            sockets = inner.sockets.len(),
            registrations = inner.store.len(),
            "LwM2M server started"
        );
        Ok((ServerHandle { inner }, rx))
    }

    /// Binds a plain CoAP socket on `addr` (default CoAP parameters) and starts the server on it.
    pub async fn bind(
        config: ServerConfig,
        addr: SocketAddr,
    ) -> Result<(ServerHandle, broadcast::Receiver<Event>), StartError> {
        let socket = UdpEndpoint::bind(addr, EndpointConfig::default()).await?;
        Server::start(config, vec![socket])
    }
}

#[derive(Debug, Clone, PartialEq, Eq, PartialOrd, Ord)]
enum Timer {
    Expire(RegistrationId),
    SleepCheck(String),
}

struct Inner {
    store: Arc<dyn RegistrationStore>,
    security: Arc<dyn SecurityStore>,
    models: Arc<ModelRegistry>,
    clock: Arc<dyn Clock>,
    request_timeout: Duration,
    awake_ms: u64,
    grace_ms: u64,
    sockets: Vec<UdpHandle>,
    events: broadcast::Sender<Event>,
    timers: Mutex<BinaryHeap<Reverse<(u64, Timer)>>>,
    timer_wake: Notify,
    observations: Mutex<Observations>,
    queues: Mutex<Queues>,
    on_registration: RwLock<OnRegistration>,
    closed: AtomicBool,
    next_observation: AtomicU64,
}

fn lock<T>(m: &Mutex<T>) -> MutexGuard<'_, T> {
    m.lock().unwrap_or_else(|p| p.into_inner())
}

fn ms(d: Duration) -> u64 {
    u64::try_from(d.as_millis()).unwrap_or(u64::MAX)
}

/// The Uri-Query options as text; a query that is not UTF-8 is refused (4.00) rather than read lossily,
/// so two different byte strings can never name the same endpoint.
fn queries(m: &Message) -> Result<Vec<String>, (Code, Option<String>)> {
    m.options
        .get_all(lwm2m_coap::message::opt::URI_QUERY)
        .map(|q| {
            std::str::from_utf8(q)
                .map(str::to_string)
                .map_err(|_| diagnostic(Code::BAD_REQUEST, "a Uri-Query option is not UTF-8"))
        })
        .collect()
}

/// Whether a request's identity is the one a registration was made with: the same PSK identity, the same
/// raw public key, or a certificate with the same subject CN (a renewed certificate keeps its registration).
fn same_identity(a: Option<&PeerIdentity>, b: Option<&PeerIdentity>) -> bool {
    match (a, b) {
        (None, None) => true,
        (Some(PeerIdentity::X509 { common_name: x, .. }), Some(PeerIdentity::X509 { common_name: y, .. })) => {
            x.is_some() && x == y
        }
        (Some(x), Some(y)) => x == y,
        _ => false,
    }
}

/// A short text for a diagnostic payload.
fn diagnostic(code: Code, why: &str) -> (Code, Option<String>) {
    (code, Some(why.to_string()))
}

async fn incoming_loop(inner: Arc<Inner>, socket: u8, mut rx: mpsc::Receiver<Incoming>) {
    while let Some(item) = rx.recv().await {
        match item {
            Incoming::Request(req) => inner.on_request(socket, req),
            Incoming::Security(ev) => debug!(socket, ?ev, "secure session event"),
            other => debug!(socket, ?other, "driver event ignored"),
        }
    }
    debug!(socket, "socket closed");
}

async fn timer_loop(inner: Arc<Inner>) {
    loop {
        if inner.closed.load(Ordering::Acquire) {
            return;
        }
        let next = lock(&inner.timers).peek().map(|Reverse((at, _))| *at);
        let now = inner.clock.now_ms();
        match next {
            Some(at) if at <= now => inner.run_due(now),
            Some(at) => {
                let wait = Duration::from_millis(at - now);
                tokio::select! {
                    () = tokio::time::sleep(wait) => {}
                    () = inner.timer_wake.notified() => {}
                }
            }
            None => inner.timer_wake.notified().await,
        }
    }
}

async fn observation_task(
    inner: Arc<Inner>,
    reg: Registration,
    info: ObservationInfo,
    mut obs: lwm2m_coap::Observation,
    mut control: oneshot::Receiver<Control>,
) {
    let paths = info.request.paths();
    loop {
        tokio::select! {
            n = obs.next() => {
                let Some(msg) = n else {
                    inner.observation_gone(&info, ObservationEndReason::Closed);
                    return;
                };
                inner.heard_from(&reg);
                let ends = !msg.code.is_success() || msg.observe().is_none();
                let models = reg.models(&inner.models);
                let result = decode_response(&reg, &models, &info.request, &msg).map(|mut r| {
                    r.observation = Some(info.id);
                    r
                });
                inner.emit(Event::Notification {
                    endpoint: reg.endpoint.clone(),
                    registration_id: reg.id,
                    observation: info.id,
                    paths: paths.clone(),
                    result,
                });
                if ends {
                    inner.observation_gone(&info, ObservationEndReason::ClientEnded(msg.code));
                    return;
                }
            }
            c = &mut control => {
                match c {
                    Ok(Control::Active(reply)) => {
                        let r = obs.deregister().await;
                        let _ = reply.send(r);
                    }
                    // The entry was dropped: dropping the observation makes the CoAP layer answer the next
                    // notification with RST.
                    Err(_) => {}
                }
                return;
            }
        }
    }
}

impl Inner {
    fn emit(&self, ev: Event) {
        // No subscriber is fine.
        let _ = self.events.send(ev);
    }

    fn now(&self) -> u64 {
        self.clock.now_ms()
    }

    fn schedule(&self, at: u64, timer: Timer) {
        let mut heap = lock(&self.timers);
        // Entries of registrations that were replaced or removed stay until they come due; a client that
        // re-registers in a loop with a long lifetime must not grow the heap without bound.
        let live = self.store.len();
        if heap.len() > live.saturating_mul(2).saturating_add(1024) {
            heap.retain(|Reverse((_, t))| match t {
                Timer::Expire(id) => matches!(self.store.get(*id), Ok(Some(_)) | Err(_)),
                Timer::SleepCheck(_) => true,
            });
            debug!(entries = heap.len(), registrations = live, "timer heap compacted");
        }
        let head = match heap.peek() {
            Some(Reverse((h, _))) => at < *h,
            None => true,
        };
        heap.push(Reverse((at, timer)));
        drop(heap);
        if head {
            self.timer_wake.notify_one();
        }
    }

    fn run_due(self: &Arc<Self>, now: u64) {
        let mut due = Vec::new();
        {
            let mut heap = lock(&self.timers);
            while heap.peek().is_some_and(|Reverse((at, _))| *at <= now) {
                if let Some(Reverse((_, t))) = heap.pop() {
                    due.push(t);
                }
            }
        }
        for t in due {
            match t {
                Timer::Expire(id) => self.check_expiry(id, now),
                Timer::SleepCheck(endpoint) => {
                    let check = lock(&self.queues).sleep_check(&endpoint, now);
                    if let Some(at) = check.check_again_at {
                        self.schedule(at, Timer::SleepCheck(endpoint.clone()));
                    }
                    if check.fell_asleep {
                        debug!(%endpoint, "queue-mode client asleep");
                        self.emit(Event::Sleeping { endpoint });
                    }
                }
            }
        }
    }

    fn check_expiry(self: &Arc<Self>, id: RegistrationId, now: u64) {
        let reg = match self.store.get(id) {
            Ok(Some(r)) => r,
            Ok(None) => return,
            Err(e) => {
                warn!(%id, error = %e, "store lookup failed; expiry retried in 1 s");
                self.schedule(now.saturating_add(1000), Timer::Expire(id));
                return;
            }
        };
        let due = reg.expires_ms.saturating_add(self.grace_ms);
        if due > now {
            self.schedule(due, Timer::Expire(id));
            return;
        }
        match self.store.remove_if_expired(id, now.saturating_sub(self.grace_ms)) {
            Ok(Some(reg)) => {
                info!(endpoint = %reg.endpoint, %id, "registration expired");
                self.emit(Event::Expired {
                    registration: reg.clone(),
                });
                self.registration_gone(&reg);
            }
            Ok(None) => {}
            Err(e) => {
                warn!(%id, error = %e, "store removal failed; expiry retried in 1 s");
                self.schedule(now.saturating_add(1000), Timer::Expire(id));
            }
        }
    }

    /// The registration ended: its observations are void, a queue-mode client is asleep.
    fn registration_gone(&self, reg: &Registration) {
        self.end_observations(reg.id, &reg.endpoint);
        lock(&self.queues).registration_ended(&reg.endpoint);
    }

    fn end_observations(&self, id: RegistrationId, endpoint: &str) {
        let gone = lock(&self.observations).remove_registration(id);
        for e in gone {
            self.unpersist(e.info.id);
            drop(e.control);
            self.emit(Event::ObservationEnded {
                endpoint: endpoint.to_string(),
                registration_id: id,
                observation: e.info.id,
                reason: ObservationEndReason::RegistrationEnded,
            });
        }
    }

    /// Forgets the persisted record of an observation that ended (a failure is logged: the record is then
    /// dropped at the next start, when its restore finds the registration gone or is answered with RST).
    fn unpersist(&self, id: ObservationId) {
        if let Err(e) = self.store.remove_observation(id) {
            warn!(%id, error = %e, "persisted observation not removed");
        }
    }

    /// Forgets the persisted record of a held request (a failure is logged: the record is then restored at
    /// the next start and sent again, or dropped if its deadline passed).
    fn unpersist_held(&self, id: u64) {
        if let Err(e) = self.store.remove_queued_request(id) {
            warn!(id, error = %e, "persisted held request not removed");
        }
    }

    /// At start: puts the held requests persisted by the store (a previous run of the server) back into the
    /// queue, oldest first, each with a task waiting for its turn like a caller would. Records whose
    /// registration ended or whose deadline passed are dropped, reported as `QueuedRequestDone`.
    fn restore_queued_requests(self: &Arc<Self>) {
        let mut records = match self.store.queued_requests() {
            Ok(r) => r,
            Err(e) => {
                warn!(error = %e, "persisted held requests not loaded");
                return;
            }
        };
        records.sort_by_key(|q| q.id);
        if let Some(last) = records.last() {
            lock(&self.queues).reserve_ids(last.id);
        }
        let now = self.now();
        let mut restored = 0usize;
        for q in records {
            let live = match self.store.get(q.registration_id) {
                Ok(Some(r)) => r.endpoint == q.endpoint && r.expires_ms.saturating_add(self.grace_ms) > now,
                _ => false,
            };
            let gone = if !live {
                Some(ServerError::RegistrationEnded {
                    endpoint: q.endpoint.clone(),
                })
            } else if q.deadline_ms <= now {
                Some(ServerError::ClientSleeping {
                    endpoint: q.endpoint.clone(),
                })
            } else {
                None
            };
            if let Some(error) = gone {
                debug!(id = q.id, endpoint = %q.endpoint, %error, "persisted held request dropped");
                self.unpersist_held(q.id);
                self.emit(Event::QueuedRequestDone {
                    endpoint: q.endpoint,
                    id: q.id,
                    operation: q.request.name(),
                    paths: q.request.paths(),
                    result: Err(error),
                });
                continue;
            }
            let rx = lock(&self.queues).restore(q.info());
            let held = Held {
                guard: HeldGuard {
                    inner: self.clone(),
                    endpoint: q.endpoint.clone(),
                    id: q.id,
                    persisted: true,
                    armed: true,
                },
                rx,
                registration_id: q.registration_id,
            };
            let deadline = Instant::now() + Duration::from_millis(q.deadline_ms.saturating_sub(now));
            let opts = RequestOptions {
                format: q.format,
                timeout: None,
            };
            let handle = ServerHandle { inner: self.clone() };
            restored += 1;
            tokio::spawn(async move {
                let _ = handle.run_held(held, None, q.request, opts, deadline).await;
            });
        }
        if restored > 0 {
            info!(requests = restored, "held requests restored");
        }
    }

    /// A held request finished (sent and answered or failed, or its deadline passed): its record goes and
    /// the outcome is reported.
    fn held_done(&self, mut guard: HeldGuard, request: &Request, result: Result<Response, ServerError>) {
        guard.armed = false;
        if guard.persisted {
            self.unpersist_held(guard.id);
        }
        self.emit(Event::QueuedRequestDone {
            endpoint: std::mem::take(&mut guard.endpoint),
            id: guard.id,
            operation: request.name(),
            paths: request.paths(),
            result,
        });
    }

    /// At start: re-installs the observations persisted by the store (a previous run of the server) whose
    /// registration is still there, on the registration's socket; notifications are delivered as before.
    /// Records of registrations that are gone are removed.
    fn restore_observations(self: &Arc<Self>) {
        let records = match self.store.observations() {
            Ok(r) => r,
            Err(e) => {
                warn!(error = %e, "persisted observations not loaded");
                return;
            }
        };
        let max = records.iter().map(|o| o.id.0).max().unwrap_or(0);
        self.next_observation
            .fetch_max(max.saturating_add(1), Ordering::Relaxed);
        let mut restored = 0usize;
        for info in records {
            let id = info.id;
            let reg = match self.store.get(info.registration_id) {
                Ok(Some(r)) if r.endpoint == info.endpoint => r,
                _ => {
                    debug!(%id, endpoint = %info.endpoint, "persisted observation of an ended registration dropped");
                    self.unpersist(id);
                    continue;
                }
            };
            let opts = RequestOptions {
                format: match info.request {
                    Request::Observe { .. } => info.format,
                    _ => None,
                },
                timeout: None,
            };
            let token = lwm2m_coap::Token::try_from_slice(&info.token);
            let (Some(token), Ok(message), Ok(socket)) = (
                token,
                build_message(&reg, &info.request, &opts),
                self.socket(reg.socket),
            ) else {
                warn!(%id, endpoint = %info.endpoint, "persisted observation cannot be restored; dropped");
                self.unpersist(id);
                continue;
            };
            let pending = socket.restore_observation(reg.peer, token, message);
            let (control, control_rx) = oneshot::channel();
            lock(&self.observations).insert(Entry {
                info: info.clone(),
                control: Some(control),
            });
            restored += 1;
            let inner = self.clone();
            tokio::spawn(async move {
                match pending.await {
                    Ok(obs) => observation_task(inner, reg, info, obs, control_rx).await,
                    Err(_) => inner.observation_gone(&info, ObservationEndReason::Closed),
                }
            });
        }
        if restored > 0 {
            info!(observations = restored, "observations restored");
        }
    }

    fn observation_gone(&self, info: &ObservationInfo, reason: ObservationEndReason) {
        if lock(&self.observations).remove(info.id).is_some() {
            self.unpersist(info.id);
            self.emit(Event::ObservationEnded {
                endpoint: info.endpoint.clone(),
                registration_id: info.registration_id,
                observation: info.id,
                reason,
            });
        }
    }

    /// Any message from a client: a queue-mode client is awake.
    fn heard_from(self: &Arc<Self>, reg: &Registration) {
        let wake = lock(&self.queues).wake(&reg.endpoint, reg.queue_mode, self.now(), self.awake_ms);
        if let Some(at) = wake.sleep_check_at {
            self.schedule(at, Timer::SleepCheck(reg.endpoint.clone()));
        }
        if wake.became_awake {
            debug!(endpoint = %reg.endpoint, "queue-mode client awake");
            self.emit(Event::Awake {
                endpoint: reg.endpoint.clone(),
            });
        }
        if wake.start_flush {
            let inner = self.clone();
            let endpoint = reg.endpoint.clone();
            tokio::spawn(async move {
                loop {
                    let next = lock(&inner.queues).next_to_send(&endpoint);
                    let Some(done) = next else { return };
                    // Wait until the released request completes (its permit is dropped).
                    let _ = done.await;
                }
            });
        }
    }

    fn socket(&self, index: u8) -> Result<&UdpHandle, ServerError> {
        self.sockets.get(usize::from(index)).ok_or_else(|| {
            ServerError::InvalidRequest(format!(
                "the registration uses socket {index}, which this server does not have"
            ))
        })
    }

    fn respond(&self, socket: u8, req: &IncomingRequest, code: Code, diag: Option<String>) {
        let mut m = Message::response_to(&req.request, code);
        if let Some(d) = diag {
            m.payload = d.into_bytes();
        }
        self.send_response(socket, req, m);
    }

    fn send_response(&self, socket: u8, req: &IncomingRequest, m: Message) {
        if let Some(h) = self.sockets.get(usize::from(socket)) {
            if let Err(e) = h.respond(req.responder, m) {
                debug!(peer = %req.peer, error = %e, "response not sent");
            }
        }
    }

    fn on_request(self: &Arc<Self>, socket: u8, req: IncomingRequest) {
        let segments = req.request.uri_path();
        let segs: Vec<&str> = segments.iter().map(String::as_str).collect();
        let code = req.request.code;
        match (segs.as_slice(), code) {
            (["rd"], Code::POST) => self.on_register(socket, &req),
            (["rd", id], Code::POST) => self.on_update(socket, &req, id),
            (["rd", id], Code::DELETE) => self.on_deregister(socket, &req, id),
            (["dp"], Code::POST) => self.on_send(socket, &req),
            (["rd"] | ["rd", _] | ["dp"], _) => {
                debug!(peer = %req.peer, %code, path = %req.request.uri_path_string(), "method not allowed");
                self.respond(socket, &req, Code::METHOD_NOT_ALLOWED, None);
            }
            _ => {
                debug!(peer = %req.peer, %code, path = %req.request.uri_path_string(), "no such resource on the server");
                self.respond(socket, &req, Code::NOT_FOUND, None);
            }
        }
    }

    fn reject(&self, socket: u8, req: &IncomingRequest, what: &str, (code, diag): (Code, Option<String>)) {
        debug!(peer = %req.peer, %code, reason = diag.as_deref().unwrap_or(""), "{what} refused");
        self.respond(socket, req, code, diag);
    }

    fn on_register(self: &Arc<Self>, socket: u8, req: &IncomingRequest) {
        let queries = match queries(&req.request) {
            Ok(q) => q,
            Err(e) => return self.reject(socket, req, "Register", e),
        };
        let parsed = match RegisterRequest::parse(
            queries.iter().map(String::as_str),
            req.request.content_format(),
            &req.request.payload,
        ) {
            Ok(p) => p,
            Err(e) => return self.reject(socket, req, "Register", diagnostic(e.code(), &e.to_string())),
        };
        let endpoint = match authorize(
            self.security.as_ref(),
            req.identity.as_ref(),
            parsed.endpoint.as_deref(),
        ) {
            Ok(ep) => ep,
            Err(e) => return self.reject(socket, req, "Register", diagnostic(e.code(), &e.to_string())),
        };
        let now = self.now();
        let mut reg = Registration {
            id: RegistrationId::generate(),
            endpoint,
            peer: req.peer,
            socket,
            identity: req.identity.clone(),
            lifetime_s: parsed.lifetime_s,
            binding: parsed.binding,
            queue_mode: parsed.queue_mode,
            version: parsed.version,
            sms: parsed.sms,
            objects: parsed.links,
            registered_at_ms: now,
            last_update_ms: now,
            expires_ms: now.saturating_add(u64::from(parsed.lifetime_s).saturating_mul(1000)),
            additional: parsed.additional,
        };
        shrink(&mut reg);
        let mut attempts = 0;
        let replaced = loop {
            match self.store.add(reg.clone()) {
                Ok(old) => break old,
                Err(StoreError::IdInUse(_)) if attempts < 3 => {
                    attempts += 1;
                    reg.id = RegistrationId::generate();
                }
                Err(e) => {
                    warn!(endpoint = %reg.endpoint, error = %e, "registration not stored");
                    return self.respond(socket, req, Code::INTERNAL_SERVER_ERROR, Some(e.to_string()));
                }
            }
        };
        self.schedule(reg.expires_ms.saturating_add(self.grace_ms), Timer::Expire(reg.id));
        let mut m = Message::response_to(&req.request, Code::CREATED);
        m.set_location_path(&format!("rd/{}", reg.id));
        self.send_response(socket, req, m);
        debug!(endpoint = %reg.endpoint, id = %reg.id, peer = %reg.peer, "registered");
        self.heard_from(&reg);
        let actions = read_lock(&self.on_registration).actions_for(&reg.endpoint).to_vec();
        let (endpoint, id) = (reg.endpoint.clone(), reg.id);
        let old = replaced.as_ref().map(|o| (o.id, o.endpoint.clone()));
        self.emit(Event::Registered {
            registration: reg,
            replaced,
        });
        if let Some((old_id, old_endpoint)) = old {
            self.end_observations(old_id, &old_endpoint);
        }
        if !actions.is_empty() {
            let handle = ServerHandle { inner: self.clone() };
            tokio::spawn(async move {
                for request in actions {
                    let result = handle
                        .request_inner(&endpoint, Some(id), request.clone(), RequestOptions::default())
                        .await;
                    handle.inner.emit(Event::OnRegistrationResult {
                        endpoint: endpoint.clone(),
                        registration_id: id,
                        request,
                        result,
                    });
                }
            });
        }
    }

    /// The registration addressed by `id_text`, if the request may use it.
    fn addressed(&self, req: &IncomingRequest, id_text: &str) -> Result<Registration, (Code, Option<String>)> {
        let not_found = || diagnostic(Code::NOT_FOUND, "no such registration");
        let id: RegistrationId = id_text.parse().map_err(|_| not_found())?;
        let reg = self
            .store
            .get(id)
            .map_err(|e| diagnostic(Code::INTERNAL_SERVER_ERROR, &e.to_string()))?
            .ok_or_else(not_found)?;
        if !same_identity(reg.identity.as_ref(), req.identity.as_ref()) {
            return Err(diagnostic(
                Code::FORBIDDEN,
                "the request does not come with the security identity of the registration",
            ));
        }
        Ok(reg)
    }

    fn on_update(self: &Arc<Self>, socket: u8, req: &IncomingRequest, id_text: &str) {
        let reg = match self.addressed(req, id_text) {
            Ok(r) => r,
            Err(e) => return self.reject(socket, req, "Update", e),
        };
        let queries = match queries(&req.request) {
            Ok(q) => q,
            Err(e) => return self.reject(socket, req, "Update", e),
        };
        let update = match UpdateRequest::parse(
            queries.iter().map(String::as_str),
            req.request.content_format(),
            &req.request.payload,
            reg.version,
        ) {
            Ok(u) => u,
            Err(e) => return self.reject(socket, req, "Update", diagnostic(e.code(), &e.to_string())),
        };
        let now = self.now();
        let (peer, identity) = (req.peer, req.identity.clone());
        let changed = self.store.update(reg.id, &mut |r| {
            if let Some(lt) = update.lifetime_s {
                r.lifetime_s = lt;
            }
            if let Some(b) = update.binding {
                r.binding = b;
            }
            if let Some(s) = &update.sms {
                r.sms = Some(s.clone());
            }
            if let Some(links) = &update.links {
                r.objects = links.clone();
            }
            for (k, v) in &update.additional {
                r.additional.insert(k.clone(), v.clone());
            }
            r.peer = peer;
            r.socket = socket;
            r.identity = identity.clone();
            r.last_update_ms = now;
            r.expires_ms = now.saturating_add(u64::from(r.lifetime_s).saturating_mul(1000));
            shrink(r);
        });
        let (previous, registration) = match changed {
            Ok(Some(pair)) => pair,
            Ok(None) => {
                return self.reject(
                    socket,
                    req,
                    "Update",
                    diagnostic(Code::NOT_FOUND, "no such registration"),
                )
            }
            Err(e) => {
                warn!(id = %reg.id, error = %e, "update not stored");
                return self.respond(socket, req, Code::INTERNAL_SERVER_ERROR, Some(e.to_string()));
            }
        };
        if registration.expires_ms < previous.expires_ms {
            self.schedule(
                registration.expires_ms.saturating_add(self.grace_ms),
                Timer::Expire(registration.id),
            );
        }
        if previous.peer != registration.peer {
            // Before the answer: the client may notify from its new address as soon as it has it.
            self.client_moved(&previous, &registration);
        }
        self.respond(socket, req, Code::CHANGED, None);
        self.heard_from(&registration);
        self.emit(Event::Updated { registration, previous });
    }

    /// The client of `now` updated from another address than `previous` had (NAT rebinding, digest §4.2): the
    /// CoAP state held with the old address — its observations, requests in flight — moves to the new one on
    /// the registration's socket (over DTLS the client handshook from there, and datagrams now go through that
    /// session). The migration is queued to the socket before the caller answers the Update. When another
    /// registration now uses the old address, only this registration's observations move.
    fn client_moved(&self, previous: &Registration, now: &Registration) {
        let (from, to, endpoint) = (previous.peer, now.peer, now.endpoint.clone());
        if previous.socket != now.socket {
            info!(%endpoint, %from, %to, socket = now.socket, "client address changed to another socket; its observations stay with the old one");
            return;
        }
        let Ok(socket) = self.socket(now.socket) else { return };
        let taken = matches!(self.store.get_by_peer(now.socket, from), Ok(Some(other)) if other.id != now.id);
        type Migration = std::pin::Pin<
            Box<dyn std::future::Future<Output = Result<lwm2m_coap::endpoint::PeerMigration, RequestError>> + Send>,
        >;
        let migration: Migration = if taken {
            let tokens = lock(&self.observations)
                .of_registration(now.id)
                .iter()
                .filter_map(|i| lwm2m_coap::Token::try_from_slice(&i.token))
                .collect();
            Box::pin(socket.migrate_tokens(from, to, tokens))
        } else {
            Box::pin(socket.migrate_peer(from, to))
        };
        tokio::spawn(async move {
            match migration.await {
                Ok(moved) => info!(
                    %endpoint,
                    %from,
                    %to,
                    observations = moved.observations.len(),
                    requests = moved.exchanges.len(),
                    old_address_taken = taken,
                    "client address changed; its observations and requests moved to the new address"
                ),
                Err(e) => warn!(%endpoint, %from, %to, error = %e, "client address changed; migration failed"),
            }
        });
    }

    fn on_deregister(self: &Arc<Self>, socket: u8, req: &IncomingRequest, id_text: &str) {
        let reg = match self.addressed(req, id_text) {
            Ok(r) => r,
            Err(e) => return self.reject(socket, req, "De-register", e),
        };
        match self.store.remove(reg.id) {
            Ok(Some(reg)) => {
                self.respond(socket, req, Code::DELETED, None);
                debug!(endpoint = %reg.endpoint, id = %reg.id, "de-registered");
                self.emit(Event::Deregistered {
                    registration: reg.clone(),
                });
                self.registration_gone(&reg);
            }
            Ok(None) => self.reject(
                socket,
                req,
                "De-register",
                diagnostic(Code::NOT_FOUND, "no such registration"),
            ),
            Err(e) => self.respond(socket, req, Code::INTERNAL_SERVER_ERROR, Some(e.to_string())),
        }
    }

    fn on_send(self: &Arc<Self>, socket: u8, req: &IncomingRequest) {
        let reg = match self.store.get_by_peer(socket, req.peer) {
            Ok(Some(r)) if same_identity(r.identity.as_ref(), req.identity.as_ref()) => r,
            Ok(_) => {
                return self.reject(
                    socket,
                    req,
                    "Send",
                    diagnostic(Code::BAD_REQUEST, "no registration for this client"),
                )
            }
            Err(e) => return self.respond(socket, req, Code::INTERNAL_SERVER_ERROR, Some(e.to_string())),
        };
        let format = match req.request.content_format().and_then(ContentFormat::from_code) {
            Some(f @ (ContentFormat::SenmlJson | ContentFormat::SenmlCbor)) => f,
            other => {
                let why = match other {
                    Some(f) => format!("Send carries SenML JSON or SenML CBOR, not {f}"),
                    None => "Send carries SenML JSON (110) or SenML CBOR (112)".to_string(),
                };
                return self.reject(socket, req, "Send", diagnostic(Code::BAD_REQUEST, &why));
            }
        };
        let models = reg.models(&self.models);
        let records = match format::decode_records(format, &Path::ROOT, &req.request.payload, &models) {
            Ok(r) if !r.is_empty() => r,
            Ok(_) => {
                return self.reject(
                    socket,
                    req,
                    "Send",
                    diagnostic(Code::BAD_REQUEST, "Send carries no record"),
                )
            }
            Err(e) => return self.reject(socket, req, "Send", diagnostic(Code::BAD_REQUEST, &e.to_string())),
        };
        if let Some(r) = records
            .iter()
            .find(|r| match (r.path.object_id(), r.path.instance_id()) {
                (Some(o), Some(i)) => !reg.has_instance(o, i),
                (Some(o), None) => !reg.has_object(o),
                _ => false,
            })
        {
            let why = format!("{} is not in the registration", r.path);
            return self.reject(socket, req, "Send", diagnostic(Code::NOT_FOUND, &why));
        }
        self.respond(socket, req, Code::CHANGED, None);
        self.heard_from(&reg);
        self.emit(Event::Send {
            endpoint: reg.endpoint.clone(),
            registration_id: reg.id,
            records,
        });
    }

    /// Holds `request` for the sleeping queue-mode client of `reg` until `deadline` (persisted when `persist`),
    /// or `None` when it may go now.
    fn hold(
        self: &Arc<Self>,
        reg: &Registration,
        request: &Request,
        opts: &RequestOptions,
        deadline: Instant,
        persist: bool,
    ) -> Option<Held> {
        if !reg.queue_mode {
            return None;
        }
        let now = self.now();
        let deadline_ms = now.saturating_add(ms(deadline.saturating_duration_since(Instant::now())));
        let (id, rx) = lock(&self.queues).enqueue(&reg.endpoint, request.name(), request.paths(), now, deadline_ms)?;
        debug!(endpoint = %reg.endpoint, request = %request, id, "request held: queue-mode client asleep");
        if persist {
            let record = QueuedRequest {
                id,
                endpoint: reg.endpoint.clone(),
                registration_id: reg.id,
                request: request.clone(),
                format: opts.format,
                queued_at_ms: now,
                deadline_ms,
            };
            if let Err(e) = self.store.save_queued_request(&record) {
                warn!(id, endpoint = %reg.endpoint, error = %e, "held request not persisted (it will not survive a restart)");
            }
        }
        Some(Held {
            guard: HeldGuard {
                inner: self.clone(),
                endpoint: reg.endpoint.clone(),
                id,
                persisted: persist,
                armed: true,
            },
            rx,
            registration_id: reg.id,
        })
    }

    /// Waits for the turn of a held request, up to `deadline`. At the deadline it leaves the queue and fails
    /// with `ClientSleeping` (or `RegistrationEnded` when the client has no registration any more).
    async fn wait_turn(&self, held: &mut Held, deadline: Instant) -> Result<Permit, ServerError> {
        match tokio::time::timeout_at(deadline, &mut held.rx).await {
            Ok(Ok(permit)) => Ok(permit),
            Ok(Err(_)) => Err(ServerError::Shutdown),
            Err(_) => {
                let endpoint = held.guard.endpoint.clone();
                lock(&self.queues).cancel(&endpoint, held.guard.id);
                match self.store.get(held.registration_id) {
                    Ok(Some(_)) => Err(ServerError::ClientSleeping { endpoint }),
                    _ => match self.store.get_by_endpoint(&endpoint) {
                        Ok(Some(_)) => Err(ServerError::ClientSleeping { endpoint }),
                        _ => Err(ServerError::RegistrationEnded { endpoint }),
                    },
                }
            }
        }
    }

    /// Waits until a request may go to the client of `reg` (queue mode), up to `deadline`; not persisted,
    /// no event (active observation cancels).
    async fn acquire(
        self: &Arc<Self>,
        reg: &Registration,
        request: &Request,
        deadline: Instant,
    ) -> Result<Option<Permit>, ServerError> {
        let Some(mut held) = self.hold(reg, request, &RequestOptions::default(), deadline, false) else {
            return Ok(None);
        };
        let permit = self.wait_turn(&mut held, deadline).await;
        held.guard.armed = false;
        permit.map(Some)
    }

    /// The answer of a CoAP exchange, or its failure as a [`ServerError`].
    fn coap_outcome(
        &self,
        reg: &Registration,
        r: Result<Result<Message, RequestError>, tokio::time::error::Elapsed>,
    ) -> Result<Message, ServerError> {
        match r {
            Ok(Ok(m)) => Ok(m),
            Ok(Err(e)) => Err(self.coap_error(reg, Some(e))),
            Err(_) => Err(self.coap_error(reg, None)),
        }
    }

    /// A failed exchange (`None`: our own deadline passed). A timeout puts a queue-mode client to sleep.
    fn coap_error(&self, reg: &Registration, e: Option<RequestError>) -> ServerError {
        match e {
            None | Some(RequestError::Timeout) => {
                if lock(&self.queues).mark_asleep(&reg.endpoint) {
                    self.emit(Event::Sleeping {
                        endpoint: reg.endpoint.clone(),
                    });
                }
                ServerError::Timeout {
                    endpoint: reg.endpoint.clone(),
                }
            }
            Some(RequestError::Reset) => ServerError::Reset,
            Some(RequestError::Closed) => ServerError::Shutdown,
            Some(e) => ServerError::Coap(e),
        }
    }
}

/// The registration a request to `endpoint` goes to: the current one, which must be `expect` when given.
fn current(
    endpoint: &str,
    expect: Option<RegistrationId>,
    reg: Option<Registration>,
) -> Result<Registration, ServerError> {
    match (reg, expect) {
        (Some(r), Some(id)) if r.id != id => Err(ServerError::RegistrationEnded {
            endpoint: endpoint.to_string(),
        }),
        (Some(r), _) => Ok(r),
        (None, Some(_)) => Err(ServerError::RegistrationEnded {
            endpoint: endpoint.to_string(),
        }),
        (None, None) => Err(ServerError::UnknownEndpoint(endpoint.to_string())),
    }
}

/// A request held in the queue: its waiter's end of the permit channel and its bookkeeping.
struct Held {
    guard: HeldGuard,
    rx: oneshot::Receiver<Permit>,
    registration_id: RegistrationId,
}

/// While armed (the held request has not finished), dropping it means its caller gave up: the request
/// leaves the queue and its record is forgotten, unless the server was shut down (then the record stays for
/// the next start).
struct HeldGuard {
    inner: Arc<Inner>,
    endpoint: String,
    id: u64,
    persisted: bool,
    armed: bool,
}

impl Drop for HeldGuard {
    fn drop(&mut self) {
        if !self.armed {
            return;
        }
        lock(&self.inner.queues).cancel(&self.endpoint, self.id);
        if self.persisted && !self.inner.closed.load(Ordering::Acquire) {
            debug!(id = self.id, endpoint = %self.endpoint, "held request abandoned by its caller");
            self.inner.unpersist_held(self.id);
        }
    }
}

fn read_lock<T>(l: &RwLock<T>) -> std::sync::RwLockReadGuard<'_, T> {
    l.read().unwrap_or_else(|p| p.into_inner())
}

/// Trims spare capacity so a registration costs what it holds.
fn shrink(reg: &mut Registration) {
    reg.endpoint.shrink_to_fit();
    reg.objects.objects.shrink_to_fit();
    reg.objects.content_formats.shrink_to_fit();
    for o in &mut reg.objects.objects {
        o.instances.shrink_to_fit();
    }
}

/// What the server holds (see [`ServerHandle::stats`]).
#[derive(Debug, Clone, Copy, Default, PartialEq, Eq)]
pub struct ServerStats {
    /// Registrations in the store.
    pub registrations: usize,
    /// Live observations.
    pub observations: usize,
    /// Requests held for sleeping queue-mode clients.
    pub queued_requests: usize,
    /// Entries of the timer heap (expiry and sleep checks, including stale ones not yet due).
    pub timer_entries: usize,
}

/// The application's side of the server: registrations, the typed request API, observations, queue-mode
/// state and events. Cheap to clone.
#[derive(Clone)]
pub struct ServerHandle {
    inner: Arc<Inner>,
}

impl std::fmt::Debug for ServerHandle {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.debug_struct("ServerHandle")
            .field("sockets", &self.local_addrs())
            .field("registrations", &self.inner.store.len())
            .finish()
    }
}

impl ServerHandle {
    /// A new subscription to the events.
    pub fn subscribe(&self) -> broadcast::Receiver<Event> {
        self.inner.events.subscribe()
    }

    /// The addresses of the server's sockets, in index order.
    pub fn local_addrs(&self) -> Vec<SocketAddr> {
        self.inner.sockets.iter().map(UdpHandle::local_addr).collect()
    }

    /// The object models.
    pub fn models(&self) -> &Arc<ModelRegistry> {
        &self.inner.models
    }

    /// The registration store.
    pub fn store(&self) -> &Arc<dyn RegistrationStore> {
        &self.inner.store
    }

    /// The server's clock reading (ms since the Unix epoch).
    pub fn now_ms(&self) -> u64 {
        self.inner.now()
    }

    /// The registration of `endpoint`.
    pub fn registration(&self, endpoint: &str) -> Result<Option<Registration>, ServerError> {
        Ok(self.inner.store.get_by_endpoint(endpoint)?)
    }

    /// The registration with `id`.
    pub fn registration_by_id(&self, id: RegistrationId) -> Result<Option<Registration>, ServerError> {
        Ok(self.inner.store.get(id)?)
    }

    /// Every registration, ordered by endpoint name.
    pub fn registrations(&self) -> Result<Vec<Registration>, ServerError> {
        let mut v = Vec::with_capacity(self.inner.store.len());
        self.inner.store.for_each(&mut |r| v.push(r.clone()))?;
        v.sort_by(|a, b| a.endpoint.cmp(&b.endpoint));
        Ok(v)
    }

    /// Removes a registration on the server's initiative (its observations end, `Deregistered` is
    /// emitted). The client learns of it at its next Update (4.04).
    pub fn remove_registration(&self, endpoint: &str) -> Result<Option<Registration>, ServerError> {
        let Some(reg) = self.inner.store.get_by_endpoint(endpoint)? else {
            return Ok(None);
        };
        let Some(reg) = self.inner.store.remove(reg.id)? else {
            return Ok(None);
        };
        self.inner.emit(Event::Deregistered {
            registration: reg.clone(),
        });
        self.inner.registration_gone(&reg);
        Ok(Some(reg))
    }

    /// Replaces the on-registration actions: the global list (`endpoint` `None`) or one endpoint's list
    /// (an empty list removes the endpoint's own list).
    pub fn set_on_registration(&self, endpoint: Option<&str>, actions: Vec<Request>) {
        let mut o = self.inner.on_registration.write().unwrap_or_else(|p| p.into_inner());
        match endpoint {
            None => o.global = actions,
            Some(ep) if actions.is_empty() => {
                o.per_endpoint.remove(ep);
            }
            Some(ep) => {
                o.per_endpoint.insert(ep.to_string(), actions);
            }
        }
    }

    /// The current on-registration actions.
    pub fn on_registration(&self) -> OnRegistration {
        read_lock(&self.inner.on_registration).clone()
    }

    /// Sends any [`Request`] to `endpoint` and returns the decoded answer. Observe requests register the
    /// observation (its id is in [`Response::observation`]).
    pub async fn request(
        &self,
        endpoint: &str,
        request: Request,
        opts: RequestOptions,
    ) -> Result<Response, ServerError> {
        self.request_inner(endpoint, None, request, opts).await
    }

    async fn request_inner(
        &self,
        endpoint: &str,
        expect: Option<RegistrationId>,
        request: Request,
        opts: RequestOptions,
    ) -> Result<Response, ServerError> {
        let inner = &self.inner;
        if inner.closed.load(Ordering::Acquire) {
            return Err(ServerError::Shutdown);
        }
        let deadline = Instant::now() + opts.timeout.unwrap_or(inner.request_timeout);
        let reg = current(endpoint, expect, inner.store.get_by_endpoint(endpoint)?)?;
        let message = build_message(&reg, &request, &opts)?;
        if let Some(held) = inner.hold(&reg, &request, &opts, deadline, true) {
            return self.run_held(held, expect, request, opts, deadline).await;
        }
        self.send_now(reg, request, message, deadline).await
    }

    /// Waits for the turn of a held request, sends it, forgets its record and reports the outcome
    /// ([`Event::QueuedRequestDone`]). A shutdown while it waits keeps the record for the next start.
    async fn run_held(
        &self,
        mut held: Held,
        expect: Option<RegistrationId>,
        request: Request,
        opts: RequestOptions,
        deadline: Instant,
    ) -> Result<Response, ServerError> {
        let inner = &self.inner;
        let permit = match inner.wait_turn(&mut held, deadline).await {
            Ok(p) => p,
            Err(ServerError::Shutdown) => return Err(ServerError::Shutdown),
            Err(e) => {
                inner.held_done(held.guard, &request, Err(e.clone()));
                return Err(e);
            }
        };
        let endpoint = held.guard.endpoint.clone();
        let result = self.send_released(&endpoint, expect, &request, &opts, deadline).await;
        inner.held_done(held.guard, &request, result.clone());
        // The next held request goes once this one is reported.
        drop(permit);
        result
    }

    /// Sends a request that was held: the client may have updated (address, objects) or re-registered
    /// meanwhile, so the message is built for its registration now.
    async fn send_released(
        &self,
        endpoint: &str,
        expect: Option<RegistrationId>,
        request: &Request,
        opts: &RequestOptions,
        deadline: Instant,
    ) -> Result<Response, ServerError> {
        let reg = current(endpoint, expect, self.inner.store.get_by_endpoint(endpoint)?).map_err(|_| {
            ServerError::RegistrationEnded {
                endpoint: endpoint.to_string(),
            }
        })?;
        let message = build_message(&reg, request, opts)?;
        self.send_now(reg, request.clone(), message, deadline).await
    }

    /// Sends `message` (built from `request` for `reg`) and decodes the answer.
    async fn send_now(
        &self,
        reg: Registration,
        request: Request,
        message: Message,
        deadline: Instant,
    ) -> Result<Response, ServerError> {
        let inner = &self.inner;
        let socket = inner.socket(reg.socket)?.clone();
        if request.is_observe() {
            return self.observe_inner(reg, request, message, deadline).await;
        }
        let r = tokio::time::timeout_at(deadline, socket.request(reg.peer, message)).await;
        let answer = inner.coap_outcome(&reg, r)?;
        inner.heard_from(&reg);
        let models = reg.models(&inner.models);
        decode_response(&reg, &models, &request, &answer)
    }

    async fn observe_inner(
        &self,
        reg: Registration,
        request: Request,
        message: Message,
        deadline: Instant,
    ) -> Result<Response, ServerError> {
        let inner = &self.inner;
        let socket = inner.socket(reg.socket)?.clone();
        let r = tokio::time::timeout_at(deadline, socket.observe(reg.peer, message)).await;
        let (first, obs) = match r {
            Ok(Ok(pair)) => pair,
            Ok(Err(e)) => return Err(inner.coap_error(&reg, Some(e))),
            Err(_) => return Err(inner.coap_error(&reg, None)),
        };
        inner.heard_from(&reg);
        let models = reg.models(&inner.models);
        let mut response = decode_response(&reg, &models, &request, &first)?;
        if !(first.code.is_success() && first.observe().is_some()) {
            return Ok(response);
        }
        let id = ObservationId(inner.next_observation.fetch_add(1, Ordering::Relaxed));
        let info = ObservationInfo {
            id,
            registration_id: reg.id,
            endpoint: reg.endpoint.clone(),
            request,
            token: first.token.as_slice().to_vec(),
            format: response.format,
            created_ms: inner.now(),
        };
        let (control, control_rx) = oneshot::channel();
        lock(&inner.observations).insert(Entry {
            info: info.clone(),
            control: Some(control),
        });
        // The registration may have ended while the observation was being set up.
        if !matches!(inner.store.get(reg.id), Ok(Some(_))) {
            lock(&inner.observations).remove(id);
            return Err(ServerError::RegistrationEnded {
                endpoint: reg.endpoint.clone(),
            });
        }
        if let Err(e) = inner.store.save_observation(&info) {
            warn!(%id, error = %e, "observation not persisted (it will not survive a restart)");
        }
        // It may have ended (registration gone, cancelled) while it was being persisted.
        if lock(&inner.observations).get(id).is_none() {
            inner.unpersist(id);
        }
        tokio::spawn(observation_task(inner.clone(), reg, info, obs, control_rx));
        response.observation = Some(id);
        Ok(response)
    }

    /// Read (digest §5.2).
    pub async fn read(&self, endpoint: &str, path: Path, opts: RequestOptions) -> Result<Response, ServerError> {
        self.request(endpoint, Request::Read { path }, opts).await
    }

    /// Discover; the content is [`crate::request::Content::Links`].
    pub async fn discover(&self, endpoint: &str, path: Path, opts: RequestOptions) -> Result<Response, ServerError> {
        self.request(endpoint, Request::Discover { path }, opts).await
    }

    /// Write-Replace or Write-Partial-Update of `content` (which sits at `path`).
    pub async fn write(
        &self,
        endpoint: &str,
        path: Path,
        mode: WriteMode,
        content: Node,
        opts: RequestOptions,
    ) -> Result<Response, ServerError> {
        self.request(endpoint, Request::Write { path, mode, content }, opts)
            .await
    }

    /// Write-Replace of one value at a resource (`/o/i/r`) or resource instance (`/o/i/r/ri`) path.
    pub async fn write_value(
        &self,
        endpoint: &str,
        path: Path,
        value: Value,
        opts: RequestOptions,
    ) -> Result<Response, ServerError> {
        let content = match (path.resource_id(), path.resource_instance_id()) {
            (Some(_), Some(ri)) => Node::ResourceInstance { id: ri, value },
            (Some(r), None) => Node::Resource(ResourceNode::single(r, value)),
            _ => {
                return Err(ServerError::InvalidRequest(format!(
                    "write_value needs a resource or resource-instance path, not {path}"
                )))
            }
        };
        self.write(endpoint, path, WriteMode::Replace, content, opts).await
    }

    /// Write-Attributes.
    pub async fn write_attributes(
        &self,
        endpoint: &str,
        path: Path,
        attributes: AttributeChanges,
        opts: RequestOptions,
    ) -> Result<Response, ServerError> {
        self.request(endpoint, Request::WriteAttributes { path, attributes }, opts)
            .await
    }

    /// Execute with an optional argument list.
    pub async fn execute(
        &self,
        endpoint: &str,
        path: Path,
        arguments: Option<&str>,
        opts: RequestOptions,
    ) -> Result<Response, ServerError> {
        let arguments = arguments.map(str::to_string);
        self.request(endpoint, Request::Execute { path, arguments }, opts).await
    }

    /// Create an instance of `object_id` (the client picks the id when `instance_id` is `None`); the new
    /// path is in [`Response::location`].
    pub async fn create(
        &self,
        endpoint: &str,
        object_id: u16,
        instance_id: Option<u16>,
        resources: Vec<ResourceNode>,
        opts: RequestOptions,
    ) -> Result<Response, ServerError> {
        let request = Request::Create {
            object_id,
            instance_id,
            resources,
        };
        self.request(endpoint, request, opts).await
    }

    /// Delete an object instance.
    pub async fn delete(&self, endpoint: &str, path: Path, opts: RequestOptions) -> Result<Response, ServerError> {
        self.request(endpoint, Request::Delete { path }, opts).await
    }

    /// Read-Composite; the content is [`crate::request::Content::Records`].
    pub async fn read_composite(
        &self,
        endpoint: &str,
        paths: Vec<Path>,
        opts: RequestOptions,
    ) -> Result<Response, ServerError> {
        self.request(endpoint, Request::ReadComposite { paths }, opts).await
    }

    /// Write-Composite.
    pub async fn write_composite(
        &self,
        endpoint: &str,
        records: Vec<Record>,
        opts: RequestOptions,
    ) -> Result<Response, ServerError> {
        self.request(endpoint, Request::WriteComposite { records }, opts).await
    }

    /// Observe; on success [`Response::observation`] names the observation and notifications arrive as
    /// [`Event::Notification`].
    pub async fn observe(&self, endpoint: &str, path: Path, opts: RequestOptions) -> Result<Response, ServerError> {
        self.request(endpoint, Request::Observe { path }, opts).await
    }

    /// Observe-Composite.
    pub async fn observe_composite(
        &self,
        endpoint: &str,
        paths: Vec<Path>,
        opts: RequestOptions,
    ) -> Result<Response, ServerError> {
        self.request(endpoint, Request::ObserveComposite { paths }, opts).await
    }

    /// Cancels an observation. Passive: forget it, the client's next notification is answered with RST
    /// (returns `None`). Active: GET/FETCH with Observe: 1 (held like any request for a sleeping queue-mode
    /// client); returns the client's answer.
    pub async fn cancel_observation(
        &self,
        id: ObservationId,
        mode: CancelMode,
        opts: RequestOptions,
    ) -> Result<Option<Response>, ServerError> {
        let inner = &self.inner;
        let info = lock(&inner.observations)
            .get(id)
            .ok_or(ServerError::UnknownObservation(id))?;
        let ended = |inner: &Inner| {
            inner.emit(Event::ObservationEnded {
                endpoint: info.endpoint.clone(),
                registration_id: info.registration_id,
                observation: id,
                reason: ObservationEndReason::Cancelled(mode),
            })
        };
        if mode == CancelMode::Passive {
            let entry = lock(&inner.observations)
                .remove(id)
                .ok_or(ServerError::UnknownObservation(id))?;
            drop(entry);
            inner.unpersist(id);
            ended(inner);
            return Ok(None);
        }
        let deadline = Instant::now() + opts.timeout.unwrap_or(inner.request_timeout);
        let reg = inner
            .store
            .get(info.registration_id)?
            .ok_or_else(|| ServerError::RegistrationEnded {
                endpoint: info.endpoint.clone(),
            })?;
        let permit = inner.acquire(&reg, &info.request, deadline).await?;
        let mut entry = lock(&inner.observations)
            .remove(id)
            .ok_or(ServerError::UnknownObservation(id))?;
        inner.unpersist(id);
        let (tx, rx) = oneshot::channel();
        if let Some(c) = entry.control.take() {
            if c.send(Control::Active(tx)).is_err() {
                return Err(ServerError::UnknownObservation(id));
            }
        }
        ended(inner);
        let r = tokio::time::timeout_at(deadline, rx).await;
        drop(permit);
        let answer = match r {
            Ok(Ok(x)) => inner.coap_outcome(&reg, Ok(x))?,
            Ok(Err(_)) => return Err(ServerError::Shutdown),
            Err(elapsed) => inner.coap_outcome(&reg, Err(elapsed))?,
        };
        inner.heard_from(&reg);
        let models = reg.models(&inner.models);
        decode_response(&reg, &models, &info.request, &answer).map(Some)
    }

    /// The observations of `endpoint`.
    pub fn observations(&self, endpoint: &str) -> Vec<ObservationInfo> {
        lock(&self.inner.observations).of_endpoint(endpoint)
    }

    /// Every observation.
    pub fn all_observations(&self) -> Vec<ObservationInfo> {
        lock(&self.inner.observations).all()
    }

    /// The requests held for a sleeping queue-mode `endpoint`, oldest first.
    pub fn queued_requests(&self, endpoint: &str) -> Vec<QueuedRequestInfo> {
        lock(&self.inner.queues).list(endpoint)
    }

    /// Every held request.
    pub fn all_queued_requests(&self) -> Vec<QueuedRequestInfo> {
        lock(&self.inner.queues).list_all()
    }

    /// The presence of a queue-mode `endpoint` (`None` for clients without queue-mode state).
    pub fn presence(&self, endpoint: &str) -> Option<Presence> {
        lock(&self.inner.queues).presence(endpoint)
    }

    /// Counters of what the server holds.
    pub fn stats(&self) -> ServerStats {
        let (observations, queued) = {
            let o = lock(&self.inner.observations).all().len();
            (o, lock(&self.inner.queues).list_all().len())
        };
        ServerStats {
            registrations: self.inner.store.len(),
            observations,
            queued_requests: queued,
            timer_entries: lock(&self.inner.timers).len(),
        }
    }

    /// Re-checks the timers now (after moving a [`crate::clock::ManualClock`]).
    pub fn run_timers(&self) {
        self.inner.timer_wake.notify_one();
    }

    /// Stops the server: held requests fail with [`ServerError::Shutdown`], observations end without
    /// events, the sockets are shut down. Registrations stay in the store.
    pub async fn shutdown(&self) {
        if self.inner.closed.swap(true, Ordering::AcqRel) {
            return;
        }
        self.inner.timer_wake.notify_one();
        let gone = lock(&self.inner.observations).drain();
        drop(gone);
        lock(&self.inner.queues).clear();
        for s in &self.inner.sockets {
            s.shutdown().await;
        }
        info!("LwM2M server stopped");
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn queries_must_be_utf8() {
        let m = Message::request(Code::POST, "/rd?ep=a&lt=5");
        assert_eq!(queries(&m), Ok(vec!["ep=a".to_string(), "lt=5".to_string()]));
        let mut m = Message::request(Code::POST, "/rd");
        m.options
            .push(lwm2m_coap::message::opt::URI_QUERY, vec![b'e', b'p', b'=', 0xff]);
        let (code, why) = queries(&m).unwrap_err();
        assert_eq!(code, Code::BAD_REQUEST);
        assert!(why.unwrap().contains("UTF-8"));
    }

    #[test]
    fn identities_match_by_what_the_credential_names() {
        let psk = |b: &[u8]| PeerIdentity::Psk(b.to_vec());
        let cert = |cn: Option<&str>, der: u8| PeerIdentity::X509 {
            common_name: cn.map(str::to_string),
            cert_der: vec![der],
        };
        assert!(same_identity(None, None));
        assert!(same_identity(Some(&psk(b"a")), Some(&psk(b"a"))));
        assert!(!same_identity(Some(&psk(b"a")), Some(&psk(b"b"))));
        assert!(!same_identity(Some(&psk(b"a")), None));
        assert!(!same_identity(None, Some(&psk(b"a"))));
        assert!(
            same_identity(Some(&cert(Some("dev"), 1)), Some(&cert(Some("dev"), 2))),
            "renewed certificate"
        );
        assert!(!same_identity(
            Some(&cert(Some("dev"), 1)),
            Some(&cert(Some("other"), 1))
        ));
        assert!(!same_identity(Some(&cert(None, 1)), Some(&cert(None, 1))));
        assert!(!same_identity(
            Some(&PeerIdentity::Rpk(vec![1])),
            Some(&PeerIdentity::Rpk(vec![2]))
        ));
    }

    #[test]
    fn per_endpoint_actions_replace_the_global_list() {
        let read = Request::Read {
            path: Path::resource(3, 0, 0),
        };
        let observe = Request::Observe {
            path: Path::resource(3, 0, 9),
        };
        let mut o = OnRegistration {
            global: vec![read.clone()],
            ..OnRegistration::default()
        };
        o.per_endpoint.insert("x".into(), vec![observe.clone()]);
        assert_eq!(o.actions_for("y"), &[read]);
        assert_eq!(o.actions_for("x"), &[observe]);
    }

    #[tokio::test]
    async fn start_needs_sockets_and_schedules_stored_registrations() {
        assert!(matches!(
            Server::start(ServerConfig::default(), vec![]),
            Err(StartError::NoSocket)
        ));
        // A registration already in the store (e.g. loaded from disk) expires on schedule.
        let store = Arc::new(MemoryRegistrationStore::new());
        let clock = Arc::new(crate::clock::ManualClock::new(1_000_000));
        let reg = Registration {
            id: RegistrationId::generate(),
            endpoint: "stored".into(),
            peer: "127.0.0.1:9".parse().unwrap(),
            socket: 0,
            identity: None,
            lifetime_s: 10,
            binding: crate::registration::Binding::UDP,
            queue_mode: false,
            version: lwm2m_core::model::Version::V1_1,
            sms: None,
            objects: Default::default(),
            registered_at_ms: 1_000_000,
            last_update_ms: 1_000_000,
            expires_ms: 1_010_000,
            additional: Default::default(),
        };
        store.add(reg).unwrap();
        let config = ServerConfig {
            store: store.clone(),
            clock: Some(clock.clone()),
            ..ServerConfig::default()
        };
        let socket = UdpEndpoint::bind("127.0.0.1:0".parse().unwrap(), EndpointConfig::default())
            .await
            .unwrap();
        let (server, mut events) = Server::start(config, vec![socket]).unwrap();
        assert_eq!(server.stats().timer_entries, 1);
        // The manual clock moves; the server re-checks when told.
        clock.advance(10_000);
        server.run_timers();
        let ev = tokio::time::timeout(Duration::from_secs(10), events.recv())
            .await
            .unwrap()
            .unwrap();
        assert!(matches!(ev, Event::Expired { ref registration } if registration.endpoint == "stored"));
        assert!(store.is_empty());
        server.shutdown().await;
        assert_eq!(
            server.read("stored", Path::object(3), RequestOptions::default()).await,
            Err(ServerError::Shutdown)
        );
    }
}
