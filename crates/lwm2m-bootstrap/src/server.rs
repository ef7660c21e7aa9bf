//! The tokio service: [`BootstrapServer::start`] answers Bootstrap-Requests on a CoAP socket and/or a CoAP
//! over DTLS socket (`lwm2m-coap` drivers) and runs one [`Session`] per device over the socket the device
//! used, through [`UdpHandle::request`].
//!
//! On `POST /bs?ep=..&pct=..`:
//!
//! 1. the endpoint name is checked against the peer's DTLS identity with
//!    [`lwm2m_server::security::authorize`] (plain CoAP is allowed only for endpoints without stored
//!    credentials; a mismatch is 4.00, unknown credentials or a missing DTLS session 4.03);
//! 2. the configuration is looked up: the endpoint's own, else the default; none → **4.00** (the TS's
//!    "Unknown Endpoint Client Name");
//! 3. `pct` is checked (4.15 when it names a format that cannot carry instances);
//! 4. the request is answered **2.04**, then the session's requests follow. A new Bootstrap-Request from the
//!    same endpoint replaces a running session.
//!
//! Every operation and its result goes to the endpoint's bounded session log
//! ([`BootstrapServerHandle::session_log`]) and to the [`Event`] channel; any number of further listeners
//! get the same events from [`BootstrapServerHandle::subscribe`].
//!
//! BsR-2 (the Bootstrap-Server triggers a Client Initiated Bootstrap): LwM2M defines no Bootstrap-Server →
//! client request for it; a LwM2M Server executes `/1/x/9` (Bootstrap-Request Trigger) over its registration.
//! [`BootstrapServerHandle::trigger_bootstrap`] does that when the caller can reach the device: it executes
//! `/1/{iid}/9` from a given socket (normally the LwM2M Server's, the one the device registered with; the
//! client refuses DM requests from other addresses) with the Server instance id the last session left.
//! [`execute_bootstrap_trigger`] is the building block. The usual path is the LwM2M Server's own API.

use std::collections::{HashMap, VecDeque};
use std::fmt;
use std::net::SocketAddr;
use std::sync::atomic::{AtomicU64, Ordering};
use std::sync::{Arc, Mutex};

use lwm2m_coap::transport::udp::{Incoming, IncomingRequest, UdpEndpoint, UdpHandle};
use lwm2m_coap::{Code, EndpointConfig, Message};
use lwm2m_core::path::MAX_ID;
use lwm2m_core::{ContentFormat, ModelRegistry, Path};
use lwm2m_dtls::coap_layer::DtlsServerLayer;
use lwm2m_dtls::DtlsServer;
use lwm2m_server::security::{authorize, MemorySecurityStore, SecurityInfo, SecurityStore, StoreCredentials};
use thiserror::Error;
use tokio::sync::{broadcast, mpsc};
use tokio::task::{AbortHandle, JoinHandle};
use tracing::{debug, info, warn};

use crate::config::{AclEntry, BootstrapConfig, ConfigError};
use crate::session::{check_pct, AccountRecord, BsResponse, Operation, Session, SessionEvent, SessionParams};
use crate::store::ConfigStore;

/// A CoAP socket: the driver's handle and its inbound channel.
pub type Socket = (UdpHandle, mpsc::Receiver<Incoming>);

/// Seconds since 1970 (the wall clock for `/1/x/12` and the session log).
pub type WallClock = Arc<dyn Fn() -> i64 + Send + Sync>;

/// How the service runs.
#[derive(Clone)]
pub struct BootstrapServerConfig {
    /// The configurations.
    pub store: Arc<dyn ConfigStore>,
    /// The credentials of the devices with this Bootstrap-Server. [`BootstrapServer::start`] fills it from
    /// `store`; [`BootstrapServerHandle::put_config`] keeps it in step. Give the same store to the DTLS layer
    /// ([`dtls_layer`]) so the handshake and the endpoint check read one table.
    pub security: Arc<MemorySecurityStore>,
    /// Object models (value types of Bootstrap-Read answers and configured writes).
    pub models: ModelRegistry,
    /// Session log entries kept per endpoint (256).
    pub log_capacity: usize,
    /// The wall clock.
    pub clock: WallClock,
}

impl BootstrapServerConfig {
    /// Defaults around `store`: a new security store, the built-in models, 256 log entries per endpoint,
    /// the system clock.
    pub fn new(store: Arc<dyn ConfigStore>) -> BootstrapServerConfig {
        BootstrapServerConfig {
            store,
            security: Arc::new(MemorySecurityStore::new()),
            models: ModelRegistry::builtin(),
            log_capacity: 256,
            clock: Arc::new(|| {
                std::time::SystemTime::now()
                    .duration_since(std::time::UNIX_EPOCH)
                    .map(|d| i64::try_from(d.as_secs()).unwrap_or(i64::MAX))
                    .unwrap_or(0)
            }),
        }
    }
}

impl fmt::Debug for BootstrapServerConfig {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.debug_struct("BootstrapServerConfig")
            .field("endpoints", &self.store.list().len())
            .field("log_capacity", &self.log_capacity)
            .finish_non_exhaustive()
    }
}

/// A DTLS server layer for the `coaps` socket whose PSK/RPK/X.509 lookups read `security` (see
/// [`lwm2m_server::security::StoreCredentials`]).
pub fn dtls_layer(
    security: Arc<MemorySecurityStore>,
    config: lwm2m_dtls::ServerConfig,
) -> Result<DtlsServerLayer, lwm2m_dtls::DtlsError> {
    let server = DtlsServer::new(config, Arc::new(StoreCredentials(security)))?;
    Ok(DtlsServerLayer::new(server))
}

/// One session log entry.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct LogEntry {
    /// The session (0 for operations outside a session, e.g. a BsR-2 trigger or a refused request).
    pub session: u64,
    /// Wall-clock time, Unix seconds.
    pub at_unix_s: i64,
    /// The operation.
    pub op: Operation,
    /// Its path (`/bs` for Bootstrap-Request and Finish).
    pub path: String,
    /// The response code (`None`: no answer).
    pub code: Option<Code>,
    /// Details (why it failed, a decoding problem, ...).
    pub detail: Option<String>,
}

/// An event of the service.
#[derive(Debug, Clone, PartialEq)]
pub struct Event {
    /// The endpoint (the claimed name for refused requests; may be empty when none was given).
    pub endpoint: String,
    /// The session (0 outside a session).
    pub session: u64,
    /// What happened.
    pub kind: EventKind,
}

/// What happened.
#[derive(Debug, Clone, PartialEq)]
pub enum EventKind {
    /// A Bootstrap-Request was accepted (answered 2.04) and a session started.
    SessionStarted {
        /// The device's address.
        peer: SocketAddr,
        /// Over DTLS.
        secure: bool,
        /// Its `pct`.
        pct: Option<ContentFormat>,
        /// The default configuration applies (the endpoint has none of its own).
        default_config: bool,
    },
    /// A Bootstrap-Request was refused.
    Refused {
        /// The device's address.
        peer: SocketAddr,
        /// The response code.
        code: Code,
        /// Why.
        reason: String,
    },
    /// Something happened in the bootstrap session (operations, BsR-1/BsR-7 findings, the end).
    Session(SessionEvent),
}

impl From<SessionEvent> for EventKind {
    fn from(e: SessionEvent) -> Self {
        EventKind::Session(e)
    }
}

/// How an endpoint's last bootstrap session ended ([`BootstrapServerHandle::last_outcome`]).
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct SessionOutcome {
    /// The session.
    pub session: u64,
    /// Wall-clock time of the end, Unix seconds.
    pub at_unix_s: i64,
    /// `Ok` after Bootstrap-Finish was answered 2.04, else why it failed.
    pub result: Result<(), String>,
}

/// Events kept for slow [`BootstrapServerHandle::subscribe`] receivers before they lag.
const BROADCAST_CAPACITY: usize = 1024;

/// Why the service did not start.
#[derive(Debug, Error)]
pub enum StartError {
    /// Neither a CoAP nor a CoAP over DTLS socket was given.
    #[error("no socket: give a coap and/or a coaps socket")]
    NoSocket,
    /// The stored credentials conflict (e.g. one PSK identity for two endpoints).
    #[error("endpoint {endpoint:?}: {reason}")]
    Credentials {
        /// The endpoint.
        endpoint: String,
        /// Why.
        reason: String,
    },
    /// Binding a socket failed.
    #[error("cannot bind: {0}")]
    Io(#[from] std::io::Error),
    /// The DTLS layer could not be built.
    #[error("DTLS: {0}")]
    Dtls(String),
}

/// Where and how to execute the Bootstrap-Request Trigger (BsR-2).
#[derive(Debug, Clone)]
pub struct TriggerTarget {
    /// The device's address as the sending socket knows it (for a LwM2M Server: the registration's peer).
    pub device: SocketAddr,
    /// The socket to send from (the LwM2M Server's socket the device registered with); `None` = the
    /// Bootstrap-Server's own CoAP socket (works only where the device accepts that address, e.g. a
    /// co-located server).
    pub via: Option<UdpHandle>,
    /// Which server account's instance to execute (default: the only or lowest-SSID account the last
    /// session left).
    pub ssid: Option<u16>,
    /// The Server instance id, overriding the lookup.
    pub server_instance: Option<u16>,
}

impl TriggerTarget {
    /// Execute through the Bootstrap-Server's own CoAP socket.
    pub fn new(device: SocketAddr) -> TriggerTarget {
        TriggerTarget {
            device,
            via: None,
            ssid: None,
            server_instance: None,
        }
    }

    /// Execute through `handle` (a LwM2M Server's socket).
    pub fn via(handle: UdpHandle, device: SocketAddr) -> TriggerTarget {
        TriggerTarget {
            via: Some(handle),
            ..TriggerTarget::new(device)
        }
    }

    /// Use server account `ssid`'s instance.
    pub fn with_ssid(mut self, ssid: u16) -> TriggerTarget {
        self.ssid = Some(ssid);
        self
    }

    /// Use `/1/{iid}`.
    pub fn with_server_instance(mut self, iid: u16) -> TriggerTarget {
        self.server_instance = Some(iid);
        self
    }
}

/// Why a BsR-2 trigger failed.
#[derive(Debug, Clone, PartialEq, Eq, Error)]
pub enum TriggerError {
    /// No Server instance id is known for the endpoint (no finished session, or no matching SSID).
    #[error("no Server instance known for endpoint {0:?}: give TriggerTarget::with_server_instance")]
    NoServerInstance(String),
    /// No socket to send from.
    #[error("no plain CoAP socket to send the trigger from: give TriggerTarget::via")]
    NoSocket,
    /// The device did not answer.
    #[error("no answer: {0}")]
    Transport(String),
    /// The device refused (4.01 from another address than its server's, 4.04, 4.05...).
    #[error("the device answered {0}")]
    Rejected(Code),
}

/// Executes `/1/{server_instance}/9` (Bootstrap-Request Trigger) on the device at `device` from `handle`.
/// The client answers 2.04 and starts a Client Initiated Bootstrap.
pub async fn execute_bootstrap_trigger(
    handle: &UdpHandle,
    device: SocketAddr,
    server_instance: u16,
) -> Result<(), TriggerError> {
    let path = Path::resource(1, server_instance, 9);
    let m = Message::request(Code::POST, &path.to_string());
    match handle.request(device, m).await {
        Ok(r) if r.code == Code::CHANGED => Ok(()),
        Ok(r) => Err(TriggerError::Rejected(r.code)),
        Err(e) => Err(TriggerError::Transport(e.to_string())),
    }
}

struct Running {
    id: u64,
    task: AbortHandle,
}

struct Inner {
    store: Arc<dyn ConfigStore>,
    security: Arc<MemorySecurityStore>,
    models: ModelRegistry,
    log_capacity: usize,
    clock: WallClock,
    events: mpsc::UnboundedSender<Event>,
    broadcast: broadcast::Sender<Event>,
    outcomes: Mutex<HashMap<String, SessionOutcome>>,
    logs: Mutex<HashMap<String, VecDeque<LogEntry>>>,
    accounts: Mutex<HashMap<String, Vec<AccountRecord>>>,
    acl_states: Mutex<HashMap<String, Vec<AclEntry>>>,
    sessions: Mutex<HashMap<String, Running>>,
    next_session: AtomicU64,
    plain: Option<UdpHandle>,
    sockets: Vec<UdpHandle>,
    loops: Mutex<Vec<JoinHandle<()>>>,
}

fn lock<T>(m: &Mutex<T>) -> std::sync::MutexGuard<'_, T> {
    m.lock().unwrap_or_else(|p| p.into_inner())
}

impl Inner {
    fn emit(&self, endpoint: &str, session: u64, kind: EventKind) {
        let result = match &kind {
            EventKind::Session(SessionEvent::Finished { .. }) => Some(Ok(())),
            EventKind::Session(SessionEvent::Failed { reason }) => Some(Err(reason.clone())),
            _ => None,
        };
        if let Some(result) = result.filter(|_| session != 0) {
            lock(&self.outcomes).insert(
                endpoint.to_string(),
                SessionOutcome {
                    session,
                    at_unix_s: (self.clock)(),
                    result,
                },
            );
        }
        let ev = Event {
            endpoint: endpoint.to_string(),
            session,
            kind,
        };
        if self.broadcast.receiver_count() > 0 {
            let _ = self.broadcast.send(ev.clone());
        }
        let _ = self.events.send(ev);
    }

    fn log(
        &self,
        endpoint: &str,
        session: u64,
        op: Operation,
        path: String,
        code: Option<Code>,
        detail: Option<String>,
    ) {
        let entry = LogEntry {
            session,
            at_unix_s: (self.clock)(),
            op,
            path,
            code,
            detail,
        };
        let mut logs = lock(&self.logs);
        let log = logs.entry(endpoint.to_string()).or_default();
        while log.len() >= self.log_capacity.max(1) {
            log.pop_front();
        }
        log.push_back(entry);
    }

    /// Logs and emits one session event.
    fn report(&self, endpoint: &str, session: u64, ev: SessionEvent) {
        if let SessionEvent::Operation { op, path, code, detail } = &ev {
            self.log(endpoint, session, *op, path.clone(), *code, detail.clone());
        }
        if let SessionEvent::AclState { supported: true, acls } = &ev {
            lock(&self.acl_states).insert(endpoint.to_string(), acls.clone());
        }
        if let SessionEvent::Finished { accounts } = &ev {
            // Before the event goes out, so that a listener reacting to it reads the new accounts.
            lock(&self.accounts).insert(endpoint.to_string(), accounts.clone());
        }
        if matches!(ev, SessionEvent::Finished { .. } | SessionEvent::Failed { .. }) {
            // The session is over once its end is reported (the task only cleans up after this).
            let mut sessions = lock(&self.sessions);
            if sessions.get(endpoint).is_some_and(|r| r.id == session) {
                sessions.remove(endpoint);
            }
        }
        match &ev {
            SessionEvent::Finished { .. } => info!(endpoint, session, "bootstrap finished"),
            SessionEvent::Failed { reason } => warn!(endpoint, session, %reason, "bootstrap failed"),
            SessionEvent::Operation { op, path, code, .. } => {
                debug!(endpoint, session, %op, %path, ?code, "bootstrap operation")
            }
            _ => {}
        }
        self.emit(endpoint, session, ev.into());
    }
}

/// Entry point.
#[derive(Debug)]
pub struct BootstrapServer;

impl BootstrapServer {
    /// Starts the service on a CoAP socket and/or a CoAP over DTLS socket (at least one). Must be called
    /// inside a tokio runtime. Fills `config.security` from the store. Returns the handle and the event
    /// channel (unbounded: drop the receiver if you do not read it).
    pub fn start(
        config: BootstrapServerConfig,
        coap: Option<Socket>,
        coaps: Option<Socket>,
    ) -> Result<(BootstrapServerHandle, mpsc::UnboundedReceiver<Event>), StartError> {
        if coap.is_none() && coaps.is_none() {
            return Err(StartError::NoSocket);
        }
        for ep in config.store.list() {
            if let Some(c) = config.store.get(&ep).and_then(|c| c.credentials) {
                config
                    .security
                    .put(SecurityInfo {
                        endpoint: ep.clone(),
                        credential: c.to_credential(),
                    })
                    .map_err(|e| StartError::Credentials {
                        endpoint: ep.clone(),
                        reason: e.to_string(),
                    })?;
            }
        }
        let (tx, rx) = mpsc::unbounded_channel();
        let sockets: Vec<UdpHandle> = coap.iter().chain(coaps.iter()).map(|(h, _)| h.clone()).collect();
        let inner = Arc::new(Inner {
            store: config.store,
            security: config.security,
            models: config.models,
            log_capacity: config.log_capacity,
            clock: config.clock,
            events: tx,
            broadcast: broadcast::channel(BROADCAST_CAPACITY).0,
            outcomes: Mutex::new(HashMap::new()),
            logs: Mutex::new(HashMap::new()),
            accounts: Mutex::new(HashMap::new()),
            acl_states: Mutex::new(HashMap::new()),
            sessions: Mutex::new(HashMap::new()),
            next_session: AtomicU64::new(1),
            plain: coap.as_ref().map(|(h, _)| h.clone()),
            sockets,
            loops: Mutex::new(Vec::new()),
        });
        for (handle, incoming) in coap.into_iter().chain(coaps) {
            let task = tokio::spawn(socket_loop(Arc::downgrade(&inner), handle, incoming));
            lock(&inner.loops).push(task);
        }
        Ok((BootstrapServerHandle { inner }, rx))
    }

    /// Binds `coap` (plain CoAP) and, when given, `coaps` (CoAP over DTLS with a default DTLS
    /// configuration reading `config.security`), then [`BootstrapServer::start`]s.
    pub async fn bind(
        config: BootstrapServerConfig,
        coap: Option<SocketAddr>,
        coaps: Option<SocketAddr>,
    ) -> Result<(BootstrapServerHandle, mpsc::UnboundedReceiver<Event>), StartError> {
        let plain = match coap {
            Some(a) => Some(UdpEndpoint::bind(a, EndpointConfig::default()).await?),
            None => None,
        };
        let secure = match coaps {
            Some(a) => {
                let layer = dtls_layer(config.security.clone(), lwm2m_dtls::ServerConfig::default())
                    .map_err(|e| StartError::Dtls(e.to_string()))?;
                Some(UdpEndpoint::bind_secure(a, EndpointConfig::default(), layer).await?)
            }
            None => None,
        };
        BootstrapServer::start(config, plain, secure)
    }
}

async fn socket_loop(inner: std::sync::Weak<Inner>, handle: UdpHandle, mut incoming: mpsc::Receiver<Incoming>) {
    while let Some(item) = incoming.recv().await {
        let Some(inner) = inner.upgrade() else { return };
        match item {
            Incoming::Request(r) => on_request(&inner, &handle, r),
            Incoming::Security(ev) => debug!(?ev, "secure session event"),
            other => debug!(?other, "endpoint event"),
        }
    }
}

/// `UdpHandle::respond` needs the responder id; this little trait keeps [`respond`] readable.
trait RespondOrLog {
    fn respond_or_log(&self, m: Message) -> Result<(), String>;
}

impl RespondOrLog for (UdpHandle, lwm2m_coap::ResponderId) {
    fn respond_or_log(&self, m: Message) -> Result<(), String> {
        self.0.respond(self.1, m).map_err(|e| e.to_string())
    }
}

fn on_request(inner: &Arc<Inner>, handle: &UdpHandle, r: IncomingRequest) {
    let req = &r.request;
    let target = (handle.clone(), r.responder);
    let answer = |code: Code, diag: &str| {
        let mut m = Message::response_to(req, code);
        if code.is_error() && !diag.is_empty() {
            m.payload = diag.as_bytes().to_vec();
        }
        if let Err(e) = target.respond_or_log(m) {
            debug!(%e, "response not sent");
        }
    };
    if req.uri_path() != ["bs"] {
        answer(Code::NOT_FOUND, "this is a LwM2M Bootstrap-Server: only POST /bs");
        return;
    }
    if req.code != Code::POST {
        answer(Code::METHOD_NOT_ALLOWED, "Bootstrap-Request is POST /bs");
        return;
    }
    let mut ep = None;
    let mut pct = None;
    for q in req.uri_query() {
        match q.split_once('=') {
            Some(("ep", v)) => ep = Some(v.to_string()),
            Some(("pct", v)) => pct = Some(v.to_string()),
            _ => {}
        }
    }
    let claimed = ep.clone().unwrap_or_default();
    let refuse = |endpoint: &str, code: Code, reason: String, log: bool| {
        info!(endpoint, peer = %r.peer, %code, %reason, "Bootstrap-Request refused");
        answer(code, &reason);
        if log {
            inner.log(
                endpoint,
                0,
                Operation::BootstrapRequest,
                "/bs".into(),
                Some(code),
                Some(reason.clone()),
            );
        }
        inner.emit(
            endpoint,
            0,
            EventKind::Refused {
                peer: r.peer,
                code,
                reason,
            },
        );
    };
    let endpoint = match authorize(&*inner.security, r.identity.as_ref(), ep.as_deref()) {
        Ok(e) => e,
        Err(e) => {
            let known = inner.store.get(&claimed).is_some();
            refuse(&claimed, e.code(), e.to_string(), known);
            return;
        }
    };
    let Some((config, default_config)) = inner.store.resolve(&endpoint) else {
        refuse(
            &endpoint,
            Code::BAD_REQUEST,
            format!("unknown endpoint client name {endpoint:?}"),
            false,
        );
        return;
    };
    let pct = match check_pct(pct.as_deref(), &config) {
        Ok(p) => p,
        Err((code, reason)) => {
            refuse(&endpoint, code, reason, true);
            return;
        }
    };
    answer(Code::CHANGED, "");
    let id = inner.next_session.fetch_add(1, Ordering::Relaxed);
    inner.log(
        &endpoint,
        id,
        Operation::BootstrapRequest,
        "/bs".into(),
        Some(Code::CHANGED),
        None,
    );
    info!(endpoint, peer = %r.peer, session = id, secure = r.identity.is_some(), "bootstrap session started");
    inner.emit(
        &endpoint,
        id,
        EventKind::SessionStarted {
            peer: r.peer,
            secure: handle.is_secure(),
            pct,
            default_config,
        },
    );
    let session = Session::with_models(
        config,
        SessionParams {
            pct,
            now_unix_s: (inner.clock)(),
        },
        inner.models.clone(),
    );
    // Replace a running session of this endpoint.
    let mut sessions = lock(&inner.sessions);
    if let Some(old) = sessions.remove(&endpoint) {
        old.task.abort();
        let reason = "replaced by a new Bootstrap-Request".to_string();
        inner.log(
            &endpoint,
            old.id,
            Operation::BootstrapRequest,
            "/bs".into(),
            None,
            Some(reason.clone()),
        );
        inner.emit(&endpoint, old.id, EventKind::Session(SessionEvent::Failed { reason }));
    }
    let task = tokio::spawn(run_session(
        Arc::clone(inner),
        handle.clone(),
        r.peer,
        endpoint.clone(),
        id,
        session,
    ));
    sessions.insert(
        endpoint,
        Running {
            id,
            task: task.abort_handle(),
        },
    );
}

async fn run_session(
    inner: Arc<Inner>,
    handle: UdpHandle,
    peer: SocketAddr,
    endpoint: String,
    id: u64,
    mut session: Session,
) {
    loop {
        while let Some(ev) = session.poll_event() {
            inner.report(&endpoint, id, ev);
        }
        let Some(req) = session.poll_request() else { break };
        let answer = handle.request(peer, req.to_message()).await;
        session.handle_response(answer.map(|m| BsResponse::from(&m)).map_err(|e| e.to_string()));
    }
    while let Some(ev) = session.poll_event() {
        inner.report(&endpoint, id, ev);
    }
    if let Some(Ok(())) = session.outcome() {
        lock(&inner.accounts).insert(endpoint.clone(), session.accounts().to_vec());
    }
    let mut sessions = lock(&inner.sessions);
    if sessions.get(&endpoint).is_some_and(|r| r.id == id) {
        sessions.remove(&endpoint);
    }
}

/// The application's side of the running service. Cheap to clone.
#[derive(Clone)]
pub struct BootstrapServerHandle {
    inner: Arc<Inner>,
}

impl fmt::Debug for BootstrapServerHandle {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.debug_struct("BootstrapServerHandle")
            .field("sockets", &self.inner.sockets.len())
            .finish_non_exhaustive()
    }
}

impl BootstrapServerHandle {
    /// The endpoint's session log, oldest first (bounded by [`BootstrapServerConfig::log_capacity`]).
    pub fn session_log(&self, endpoint: &str) -> Vec<LogEntry> {
        lock(&self.inner.logs)
            .get(endpoint)
            .map(|l| l.iter().cloned().collect())
            .unwrap_or_default()
    }

    /// The server accounts the last successful session left on the device.
    pub fn accounts(&self, endpoint: &str) -> Option<Vec<AccountRecord>> {
        lock(&self.inner.accounts).get(endpoint).cloned()
    }

    /// BsR-1: the device's complete Access Control state as the last Bootstrap-Read of `/2` returned it
    /// (`None` before any, or when the device has no Object 2).
    pub fn acl_state(&self, endpoint: &str) -> Option<Vec<AclEntry>> {
        lock(&self.inner.acl_states).get(endpoint).cloned()
    }

    /// How the endpoint's last bootstrap session ended (`None` before any ended).
    pub fn last_outcome(&self, endpoint: &str) -> Option<SessionOutcome> {
        lock(&self.inner.outcomes).get(endpoint).cloned()
    }

    /// Every endpoint with a session log, sorted.
    pub fn logged_endpoints(&self) -> Vec<String> {
        let mut v: Vec<String> = lock(&self.inner.logs).keys().cloned().collect();
        v.sort();
        v
    }

    /// A new receiver of every [`Event`] from now on (the same events as the channel
    /// [`BootstrapServer::start`] returns, for any number of listeners; a receiver more than 1024 events
    /// behind gets [`broadcast::error::RecvError::Lagged`]).
    pub fn subscribe(&self) -> broadcast::Receiver<Event> {
        self.inner.broadcast.subscribe()
    }

    /// The service's wall clock (Unix seconds), as used for the session log.
    pub fn now_unix_s(&self) -> i64 {
        (self.inner.clock)()
    }

    /// Endpoints with a session in progress.
    pub fn active_sessions(&self) -> Vec<String> {
        let mut v: Vec<String> = lock(&self.inner.sessions).keys().cloned().collect();
        v.sort();
        v
    }

    /// The local addresses of the sockets.
    pub fn local_addrs(&self) -> Vec<SocketAddr> {
        self.inner.sockets.iter().map(UdpHandle::local_addr).collect()
    }

    /// The configuration store (read it freely; change it through [`BootstrapServerHandle::put_config`] and
    /// friends so that the security store follows).
    pub fn config_store(&self) -> Arc<dyn ConfigStore> {
        self.inner.store.clone()
    }

    /// The security store of the devices' credentials with this Bootstrap-Server.
    pub fn security_store(&self) -> Arc<MemorySecurityStore> {
        self.inner.security.clone()
    }

    /// Every configured endpoint.
    pub fn list_configs(&self) -> Vec<String> {
        self.inner.store.list()
    }

    /// One endpoint's configuration.
    pub fn get_config(&self, endpoint: &str) -> Option<BootstrapConfig> {
        self.inner.store.get(endpoint)
    }

    /// Adds or replaces an endpoint's configuration and its credentials in the security store (both or
    /// neither).
    pub fn put_config(&self, endpoint: &str, config: BootstrapConfig) -> Result<Option<BootstrapConfig>, ConfigError> {
        if endpoint.is_empty() {
            return Err(ConfigError::EmptyEndpoint);
        }
        config.validate_with(&self.inner.models)?;
        let sec = &self.inner.security;
        let old = sec.by_endpoint(endpoint);
        match &config.credentials {
            Some(c) => {
                sec.put(SecurityInfo {
                    endpoint: endpoint.to_string(),
                    credential: c.to_credential(),
                })
                .map_err(|e| ConfigError::Credentials(e.to_string()))?;
            }
            None => {
                sec.remove(endpoint);
            }
        }
        match self.inner.store.put(endpoint, config) {
            Ok(prev) => Ok(prev),
            Err(e) => {
                sec.remove(endpoint);
                if let Some(o) = old {
                    let _ = sec.put(o);
                }
                Err(e)
            }
        }
    }

    /// Removes an endpoint's configuration and credentials.
    pub fn delete_config(&self, endpoint: &str) -> Result<Option<BootstrapConfig>, ConfigError> {
        let prev = self.inner.store.delete(endpoint)?;
        self.inner.security.remove(endpoint);
        Ok(prev)
    }

    /// Sets or clears the configuration for unknown endpoints.
    pub fn set_default_config(&self, config: Option<BootstrapConfig>) -> Result<Option<BootstrapConfig>, ConfigError> {
        self.inner.store.set_default(config)
    }

    /// BsR-2: executes `/1/{iid}/9` (Bootstrap-Request Trigger) on the device so that it starts a Client
    /// Initiated Bootstrap (see the module docs). The Server instance id is `target.server_instance`, else
    /// the one of account `target.ssid` (or of the lowest SSID) as the endpoint's last finished session left
    /// it. Logged (session 0) and reported as an [`SessionEvent::Operation`].
    pub async fn trigger_bootstrap(&self, endpoint: &str, target: TriggerTarget) -> Result<(), TriggerError> {
        let iid = match target.server_instance {
            Some(i) => i,
            None => self
                .accounts(endpoint)
                .unwrap_or_default()
                .iter()
                .filter(|a| target.ssid.is_none_or(|s| s == a.ssid))
                .find_map(|a| a.server_instance)
                .ok_or_else(|| TriggerError::NoServerInstance(endpoint.to_string()))?,
        };
        if iid == MAX_ID {
            return Err(TriggerError::NoServerInstance(endpoint.to_string()));
        }
        let handle = match &target.via {
            Some(h) => h.clone(),
            None => self.inner.plain.clone().ok_or(TriggerError::NoSocket)?,
        };
        let result = execute_bootstrap_trigger(&handle, target.device, iid).await;
        let path = Path::resource(1, iid, 9).to_string();
        let (code, detail) = match &result {
            Ok(()) => (Some(Code::CHANGED), None),
            Err(TriggerError::Rejected(c)) => (Some(*c), None),
            Err(e) => (None, Some(e.to_string())),
        };
        self.inner
            .log(endpoint, 0, Operation::Execute, path.clone(), code, detail.clone());
        self.inner.emit(
            endpoint,
            0,
            EventKind::Session(SessionEvent::Operation {
                op: Operation::Execute,
                path,
                code,
                detail,
            }),
        );
        result
    }

    /// Stops the service: aborts running sessions and the socket loops and shuts the sockets down.
    pub async fn shutdown(&self) {
        for (_, r) in lock(&self.inner.sessions).drain() {
            r.task.abort();
        }
        for t in lock(&self.inner.loops).drain(..) {
            t.abort();
        }
        for s in &self.inner.sockets {
            s.shutdown().await;
        }
    }
}
