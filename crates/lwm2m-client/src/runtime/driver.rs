//! The client task: one loop over commands, inbound CoAP traffic, request outcomes and timers. See the module
//! documentation of [`super`].

use std::collections::{BTreeMap, HashMap};
use std::future::Future;
use std::net::SocketAddr;
use std::pin::Pin;
use std::sync::Arc;
use std::task::{Context, Wake, Waker};
use std::time::{Duration, SystemTime, UNIX_EPOCH};

use lwm2m_coap::transport::udp::{Delivery, Incoming, IncomingRequest, RequestError, UdpHandle};
use lwm2m_coap::{Code, Message, MessageType, Token};
use lwm2m_core::format;
use lwm2m_core::{ContentFormat, Path, Record};
use tokio::sync::{mpsc, oneshot};
use tokio::time::Instant;
use tracing::{debug, error, info, trace, warn};

use super::requests::{classify_bootstrap, classify_dm, error_code, BootstrapOp, DmOp};
use super::transport::{self, AccountSecurity, CoapUri};
use super::{ClientConfig, ClientError, ClientEvent, ClientStatus, Command, RebootPolicy, ResetKind, ServerState};
use crate::dm::{is_dm_visible, DataModel};
use crate::object::{ChangeKind, ClientAction, DmError};
use crate::objects::firmware::{FirmwareUpdate, UpdateResult};
use crate::objects::{FIRMWARE_UPDATE, SERVER};
use crate::observe::{Delivery as ObsDelivery, Notify, ObservationId, ObserveEngine};
use crate::registration::{
    Accounts, Action, EngineConfig, EngineError, Failure, RegistrationEngine, ServerStatus, Timestamp,
};

/// Requests kept per server while its Register is in flight; more are answered 5.03.
const MAX_DEFERRED: usize = 32;

/// Which account an endpoint belongs to.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Hash)]
enum ConnKey {
    Server(u16),
    Bootstrap,
}

/// An open endpoint.
struct Conn {
    id: u64,
    handle: UdpHandle,
    peer: SocketAddr,
    security: AccountSecurity,
}

/// Per-server state the engines do not hold.
#[derive(Default)]
struct ServerRt {
    /// Requests that arrived while the Register was in flight.
    deferred: Vec<IncomingRequest>,
    /// Disabled (`/1/x/4`) until the next successful Register.
    disabled: bool,
    /// Queue mode: awake until then.
    awake_until: Option<Timestamp>,
    /// Queue mode: sleeping.
    asleep: bool,
}

/// What the runtime remembers of an observation besides the engine's state.
#[derive(Clone)]
struct ObsInfo {
    ssid: u16,
    format: ContentFormat,
    composite: bool,
}

enum BsState {
    Idle,
    Running { session: u64, deadline: Timestamp },
}

/// Outcomes of the task's own requests and inbound traffic, funnelled into the loop.
enum Internal {
    Incoming {
        key: ConnKey,
        conn: u64,
        item: Incoming,
    },
    Register {
        ssid: u16,
        result: Result<Vec<String>, Failure>,
        reason: String,
    },
    Update {
        ssid: u16,
        result: Result<(), Failure>,
        reason: String,
    },
    Deregister {
        ssid: u16,
        result: Result<(), Failure>,
    },
    BootstrapRequest {
        session: u64,
        result: Result<(), Failure>,
        reason: String,
    },
    NotifyDone {
        ssid: u16,
        token: Vec<u8>,
        result: Result<Delivery, RequestError>,
    },
    Firmware {
        uri: String,
        result: Result<Vec<u8>, UpdateResult>,
    },
}

struct Stopping {
    done: Vec<oneshot::Sender<()>>,
    deadline: Timestamp,
    /// What follows the De-registers.
    then: AfterStop,
}

/// What follows a stop.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
enum AfterStop {
    /// The task ends.
    Exit,
    /// The runtime restarts (Factory Reset).
    Restart(ResetKind),
}

/// Where the loop stands after a turn.
enum Turn {
    Running,
    /// A restart happened: its first actions wait in the engines.
    Restarted,
    Stopped,
}

/// Milliseconds since the task started, on tokio's clock (paused in tests).
struct Clock {
    origin: Instant,
    /// Unix time of `origin`, seconds (for timestamps of stored notifications).
    wall_origin: f64,
}

impl Clock {
    fn new() -> Clock {
        Clock {
            origin: Instant::now(),
            wall_origin: SystemTime::now()
                .duration_since(UNIX_EPOCH)
                .map(|d| d.as_secs_f64())
                .unwrap_or(0.0),
        }
    }

    fn now(&self) -> Timestamp {
        Timestamp::from_millis(u64::try_from(self.origin.elapsed().as_millis()).unwrap_or(u64::MAX))
    }

    fn instant(&self, t: Timestamp) -> Instant {
        // Far-future timers are capped at a day from now; the loop re-reads its deadline every turn.
        let cap = self.now().as_millis().saturating_add(86_400_000);
        self.origin + Duration::from_millis(t.as_millis().min(cap))
    }

    fn unix(&self, t: Timestamp) -> f64 {
        // Milliseconds to seconds; precision loss beyond 2^53 ms is irrelevant.
        self.wall_origin + t.as_millis() as f64 / 1000.0
    }
}

fn millis(d: Duration) -> u64 {
    u64::try_from(d.as_millis()).unwrap_or(u64::MAX)
}

/// A waker that does nothing: the first poll of a request only has to hand the command to the CoAP driver.
struct NoopWake;

impl Wake for NoopWake {
    fn wake(self: Arc<Self>) {}
}

/// Polls `fut` once right here (so that the CoAP command it sends is queued now, in program order), then
/// spawns the rest. Requests and notifications therefore reach the CoAP driver in the order they were issued.
fn spawn_started<F>(fut: F)
where
    F: Future<Output = ()> + Send + 'static,
{
    let mut fut: Pin<Box<F>> = Box::pin(fut);
    let waker = Waker::from(Arc::new(NoopWake));
    let mut cx = Context::from_waker(&waker);
    if fut.as_mut().poll(&mut cx).is_pending() {
        tokio::spawn(fut);
    }
}

/// The engine's view of a request error.
fn failure_of(e: &RequestError) -> Failure {
    match e {
        RequestError::Timeout => Failure::Timeout,
        RequestError::Security(_) => Failure::HandshakeFailed,
        _ => Failure::NetworkError,
    }
}

/// A request outcome: `Ok(response)` for the expected success codes, else the failure and its reason.
fn outcome(r: Result<Message, RequestError>, ok: &[Code]) -> (Result<Message, Failure>, String) {
    match r {
        Ok(m) if ok.contains(&m.code) => (Ok(m), String::new()),
        Ok(m) => {
            let reason = format!("answered {}", m.code);
            (Err(Failure::rejected(m.code.class(), m.code.detail())), reason)
        }
        Err(e) => {
            let reason = e.to_string();
            (Err(failure_of(&e)), reason)
        }
    }
}

fn location_uri(location: &[String]) -> String {
    location.iter().fold(String::new(), |acc, s| acc + "/" + s)
}

/// Response with content.
fn content(req: &Message, code: Code, cf: ContentFormat, payload: Vec<u8>) -> Message {
    Message::response_to(req, code)
        .with_content_format(cf.code())
        .with_payload(payload)
}

pub(super) struct Driver {
    dm: DataModel,
    reg: RegistrationEngine,
    obs: ObserveEngine,
    cfg: ClientConfig,
    clock: Clock,
    conns: HashMap<ConnKey, Conn>,
    next_conn_id: u64,
    servers: BTreeMap<u16, ServerRt>,
    observations: HashMap<ObservationId, ObsInfo>,
    /// The Observe value of the next registration response (client-wide, so it never goes backwards).
    observe_seq: u32,
    bs: BsState,
    bs_session: u64,
    internal_tx: mpsc::UnboundedSender<Internal>,
    internal_rx: mpsc::UnboundedReceiver<Internal>,
    commands: mpsc::UnboundedReceiver<Command>,
    commands_open: bool,
    events: mpsc::UnboundedSender<ClientEvent>,
    stopping: Option<Stopping>,
    /// A Reboot or Factory Reset to act on once the current effects are processed.
    reset: Option<ResetKind>,
}

/// A registration engine for the data model's accounts.
fn new_engine(dm: &DataModel, cfg: &ClientConfig, now: Timestamp) -> Result<RegistrationEngine, EngineError> {
    let accounts = engine_accounts(dm, cfg);
    RegistrationEngine::new(
        EngineConfig {
            servers: accounts.servers,
            bootstrap: accounts.bootstrap,
            reject_handling: cfg.reject_handling,
            update_margin_s: cfg.update_margin_s,
            bootstrapped: dm.bootstrapped(),
        },
        now,
    )
}

impl Driver {
    pub(super) fn new(
        dm: DataModel,
        cfg: ClientConfig,
        commands: mpsc::UnboundedReceiver<Command>,
        events: mpsc::UnboundedSender<ClientEvent>,
    ) -> Result<Driver, ClientError> {
        let clock = Clock::new();
        let reg = new_engine(&dm, &cfg, clock.now())?;
        let obs = ObserveEngine::new(cfg.observe.clone());
        let (internal_tx, internal_rx) = mpsc::unbounded_channel();
        let mut d = Driver {
            dm,
            reg,
            obs,
            cfg,
            clock,
            conns: HashMap::new(),
            next_conn_id: 1,
            servers: BTreeMap::new(),
            observations: HashMap::new(),
            observe_seq: 0,
            bs: BsState::Idle,
            bs_session: 0,
            internal_tx,
            internal_rx,
            commands,
            commands_open: true,
            events,
            stopping: None,
            reset: None,
        };
        d.sync_servers();
        Ok(d)
    }

    fn emit(&self, ev: ClientEvent) {
        let _ = self.events.send(ev);
    }

    fn bootstrapping(&self) -> bool {
        matches!(self.bs, BsState::Running { .. })
    }

    /// Per-server state and notification storing (`/1/x/6`) for the engine's current accounts.
    fn sync_servers(&mut self) {
        let ssids = self.reg.ssids();
        self.servers.retain(|s, _| ssids.contains(s));
        for ssid in ssids {
            self.servers.entry(ssid).or_default();
        }
        for (_, s) in self.dm.server_instances() {
            self.obs.set_storing(s.ssid, s.notification_storing);
        }
    }

    pub(super) async fn run(mut self) {
        info!(endpoint = %self.cfg.endpoint, servers = ?self.reg.ssids(), "LwM2M client started");
        loop {
            // Timers first, so that a steady stream of messages cannot starve them.
            if self.next_deadline().is_some_and(|t| t <= self.clock.now()) {
                self.on_tick();
            }
            self.pump().await;
            match self.finish_stop_if_done().await {
                Turn::Running => {}
                Turn::Restarted => continue,
                Turn::Stopped => break,
            }
            let deadline = self.next_deadline();
            let sleep = tokio::time::sleep_until(
                deadline.map_or_else(|| self.clock.instant(Timestamp::MAX), |t| self.clock.instant(t)),
            );
            tokio::select! {
                biased;
                Some(msg) = self.internal_rx.recv() => self.on_internal(msg).await,
                cmd = self.commands.recv(), if self.commands_open => match cmd {
                    Some(c) => self.on_command(c).await,
                    None => {
                        self.commands_open = false;
                        self.begin_stop(None);
                    }
                },
                () = sleep, if deadline.is_some() => self.on_tick(),
            }
        }
        info!("LwM2M client stopped");
    }

    fn next_deadline(&self) -> Option<Timestamp> {
        let mut t: Vec<Timestamp> = Vec::new();
        t.extend(self.reg.poll_timeout());
        t.extend(self.obs.poll_timeout());
        if let BsState::Running { deadline, .. } = self.bs {
            t.push(deadline);
        }
        for (ssid, s) in &self.servers {
            if let (Some(at), false) = (s.awake_until, s.asleep) {
                if self.queue_mode(*ssid) {
                    t.push(at);
                }
            }
        }
        if let Some(s) = &self.stopping {
            t.push(s.deadline);
        }
        t.into_iter().min()
    }

    fn on_tick(&mut self) {
        let now = self.clock.now();
        self.reg.handle_timeout(now);
        self.obs.handle_timeout(now);
        if let BsState::Running { deadline, .. } = self.bs {
            if now >= deadline {
                warn!("no Bootstrap-Finish in time: bootstrap failed");
                self.abort_bootstrap(now, Failure::Timeout, "no Bootstrap-Finish in time".into());
            }
        }
        let sleepers: Vec<u16> = self
            .servers
            .iter()
            .filter(|(ssid, s)| !s.asleep && s.awake_until.is_some_and(|t| t <= now) && self.queue_mode(**ssid))
            .map(|(s, _)| *s)
            .collect();
        for ssid in sleepers {
            if let Some(s) = self.servers.get_mut(&ssid) {
                s.asleep = true;
            }
            info!(ssid, "queue mode: sleeping");
            self.obs.set_online(now, ssid, false);
            self.emit(ClientEvent::Sleeping { ssid });
        }
    }

    fn queue_mode(&self, ssid: u16) -> bool {
        self.reg.account(ssid).is_some_and(|a| a.queue_mode)
    }

    /// Traffic with `ssid`: restart the awake window; back online if asleep.
    fn wake(&mut self, ssid: u16) {
        if !self.queue_mode(ssid) {
            return;
        }
        let now = self.clock.now();
        let until = now.saturating_add_millis(millis(self.cfg.awake_time));
        let Some(s) = self.servers.get_mut(&ssid) else { return };
        s.awake_until = Some(until);
        if s.asleep {
            s.asleep = false;
            info!(ssid, "queue mode: awake");
            self.obs.set_online(now, ssid, true);
            self.emit(ClientEvent::Awake { ssid });
        }
    }

    // ------------------------------------------------------------------ the pump

    /// Processes effects, engine actions, notifications and evaluations until nothing is left.
    async fn pump(&mut self) {
        for _ in 0..10_000 {
            let mut busy = self.apply_effects();
            while let Some(a) = self.reg.poll_action() {
                busy = true;
                self.on_action(a).await;
            }
            while let Some(n) = self.obs.poll_notification() {
                busy = true;
                self.on_notify(n);
            }
            while let Some(e) = self.obs.poll_evaluation() {
                busy = true;
                let records: Vec<Record> = e.paths.iter().flat_map(|p| self.dm.records_at(p)).collect();
                let now = self.clock.now();
                if let Err(err) = self.obs.sampled(now, e.id, &records) {
                    debug!(%err, "sample for a gone observation");
                }
            }
            if !busy {
                return;
            }
        }
        warn!("the client loop did not settle after 10000 rounds");
    }

    /// Drains the data model's changes and actions. True if there were any.
    fn apply_effects(&mut self) -> bool {
        let changes = self.dm.take_changes();
        let actions = self.dm.take_actions();
        if changes.is_empty() && actions.is_empty() {
            return false;
        }
        let now = self.clock.now();
        let bootstrapping = self.bootstrapping();
        let mut records = Vec::new();
        let mut paths = Vec::new();
        let mut structural = false;
        let mut server_changes: Vec<(u16, u16)> = Vec::new();
        for c in &changes {
            match c.kind {
                ChangeKind::Value => {
                    let r = self.dm.records_at(&c.path);
                    if r.is_empty() {
                        paths.push(c.path);
                    }
                    records.extend(r);
                }
                ChangeKind::Created | ChangeKind::Deleted => {
                    paths.push(c.path);
                    structural |= c.path.object_id().is_some_and(is_dm_visible);
                }
            }
            if let (Some(SERVER), Some(iid), Some(rid), ChangeKind::Value) =
                (c.path.object_id(), c.path.instance_id(), c.path.resource_id(), c.kind)
            {
                server_changes.push((iid, rid));
            }
        }
        if !records.is_empty() {
            self.obs.value_changed(now, &records);
        }
        if !paths.is_empty() {
            self.obs.paths_changed(now, &paths);
        }
        if !bootstrapping {
            if structural {
                self.reg.objects_changed(now);
            }
            self.apply_server_changes(now, &server_changes);
        }
        for a in actions {
            self.on_client_action(a);
            if let Some(kind) = self.reset.take() {
                // What else the same request asked for belongs to the life that ends here.
                self.begin_reset(kind);
                break;
            }
        }
        true
    }

    /// Object 1 values written by servers: lifetime, default periods, notification storing.
    fn apply_server_changes(&mut self, now: Timestamp, changes: &[(u16, u16)]) {
        if changes.is_empty() {
            return;
        }
        let instances = self.dm.server_instances();
        for &(iid, rid) in changes {
            let Some((_, s)) = instances.iter().find(|(i, _)| *i == iid) else {
                continue;
            };
            match rid {
                1 => {
                    if let Err(e) = self.reg.lifetime_changed(now, s.ssid, s.lifetime_s) {
                        debug!(ssid = s.ssid, %e, "lifetime change not applied");
                    }
                }
                2 | 3 => {
                    let dm = &self.dm;
                    let ssid = s.ssid;
                    self.obs
                        .attributes_changed(now, ssid, |p| dm.effective_attributes(ssid, p));
                }
                6 => self.obs.set_storing(s.ssid, s.notification_storing),
                _ => {}
            }
        }
    }

    fn on_client_action(&mut self, a: ClientAction) {
        let now = self.clock.now();
        debug!(?a, "client action");
        match a {
            ClientAction::Disable { ssid } => {
                if let Err(e) = self.reg.execute_disable(now, ssid) {
                    warn!(ssid, %e, "Disable not applied");
                }
            }
            ClientAction::RegistrationUpdateTrigger { ssid } => {
                if let Err(e) = self.reg.execute_update_trigger(now, ssid) {
                    warn!(ssid, %e, "Registration Update Trigger not applied");
                }
            }
            ClientAction::BootstrapRequestTrigger { ssid } => {
                info!(ssid, "Bootstrap-Request Trigger executed");
                if let Err(e) = self.reg.execute_bootstrap_trigger(now) {
                    warn!(ssid, %e, "Bootstrap-Request Trigger not applied");
                }
            }
            ClientAction::Reboot => {
                self.emit(ClientEvent::Reboot);
                if self.cfg.reboot_policy.restarts() {
                    self.reset = Some(ResetKind::Reboot);
                }
            }
            ClientAction::FactoryReset => {
                self.emit(ClientEvent::FactoryReset);
                if self.cfg.reboot_policy.restarts() {
                    self.reset = Some(ResetKind::FactoryReset);
                }
            }
            ClientAction::FirmwareDownload { uri } => self.start_firmware_download(uri),
            ClientAction::FirmwareVerify { size } => {
                info!(size, "firmware package pushed: accepted");
                let r = self
                    .dm
                    .with_object::<FirmwareUpdate, _>(FIRMWARE_UPDATE, |f, fx| f.download_finished(Ok(()), fx));
                if let Some(Err(e)) = r {
                    warn!(%e, "firmware verification not recorded");
                }
            }
            ClientAction::FirmwareUpdate => self.emit(ClientEvent::FirmwareUpdateRequested),
            ClientAction::ServerRemoved { ssid } => self.drop_observations(ssid),
        }
    }

    /// Ends the observation of `ssid` with `token` (cancel, RST, timed-out notification).
    fn cancel_observation(&mut self, ssid: u16, token: &[u8]) {
        if let Some(id) = self.obs.cancel(ssid, token) {
            self.observations.remove(&id);
            info!(ssid, %id, "observation cancelled");
            self.emit(ClientEvent::ObservationCancelled { ssid });
        }
    }

    /// Forgets observations the engine replaced (an Observe with a token already in use).
    fn forget_replaced_observations(&mut self) {
        let obs = &self.obs;
        self.observations.retain(|id, _| obs.targets(*id).is_some());
    }

    fn drop_observations(&mut self, ssid: u16) {
        for id in self.obs.cancel_server(ssid) {
            self.observations.remove(&id);
        }
    }

    // ------------------------------------------------------------------ registration actions

    async fn on_action(&mut self, a: Action) {
        let now = self.clock.now();
        debug!(?a, "registration action");
        match a {
            Action::Register { ssid } => self.do_register(ssid).await,
            Action::Update {
                ssid,
                location,
                lifetime_s,
                with_payload,
            } => self.do_update(ssid, location, lifetime_s, with_payload),
            Action::Deregister { ssid, location } => self.do_deregister(ssid, location),
            Action::Bootstrap => self.do_bootstrap().await,
            Action::Registered { ssid, location } => self.on_registered(ssid, location),
            Action::RegistrationFailed { ssid } => {
                warn!(ssid, "registration failed");
                self.refuse_deferred(ssid);
                self.emit(ClientEvent::RegistrationFailed { ssid });
            }
            Action::RegistrationBlocked { ssid } => {
                warn!(ssid, "registration blocked by an earlier server's failure");
                self.emit(ClientEvent::RegistrationFailed { ssid });
            }
            Action::Disabled { ssid, until } => {
                if let Some(s) = self.servers.get_mut(&ssid) {
                    s.disabled = true;
                }
                self.obs.set_online(now, ssid, false);
                let duration = Duration::from_millis(until.as_millis().saturating_sub(now.as_millis()));
                info!(ssid, ?duration, "disabled");
                self.emit(ClientEvent::Disabled { ssid, duration });
            }
            Action::Bootstrapped => {
                info!("bootstrap finished");
                self.emit(ClientEvent::Bootstrapped);
            }
            Action::BootstrapFailed => {
                warn!("bootstrap failed for good");
                self.emit(ClientEvent::BootstrapFailed);
            }
            Action::PurgeBootstrapAccount => {
                let deleted = self.dm.purge_bootstrap_account();
                info!(
                    ?deleted,
                    "Bootstrap-Server Account Timeout (/0/x/12) passed: Bootstrap-Server account purged"
                );
                if let Some(c) = self.conns.remove(&ConnKey::Bootstrap) {
                    close_conn(c);
                }
                self.emit(ClientEvent::BootstrapAccountPurged);
            }
        }
    }

    /// The endpoint of `key` for `security`, reusing an open one with the same account data.
    async fn ensure_conn(&mut self, key: ConnKey, security: AccountSecurity) -> Result<(), transport::ConnectError> {
        if self.conns.get(&key).is_some_and(|c| c.security == security) {
            return Ok(());
        }
        if let Some(old) = self.conns.remove(&key) {
            close_conn(old);
        }
        let opened = transport::open(&security, &self.cfg.coap).await?;
        let id = self.next_conn_id;
        self.next_conn_id += 1;
        debug!(?key, local = %opened.handle.local_addr(), peer = %opened.peer, "endpoint opened");
        let tx = self.internal_tx.clone();
        let mut incoming = opened.incoming;
        tokio::spawn(async move {
            while let Some(item) = incoming.recv().await {
                if tx.send(Internal::Incoming { key, conn: id, item }).is_err() {
                    break;
                }
            }
        });
        self.conns.insert(
            key,
            Conn {
                id,
                handle: opened.handle,
                peer: opened.peer,
                security,
            },
        );
        Ok(())
    }

    fn server_security(&self, ssid: u16) -> Option<AccountSecurity> {
        self.dm
            .server_accounts()
            .into_iter()
            .find(|a| a.ssid() == ssid)
            .and_then(|a| a.security)
            .map(|s| AccountSecurity::of(&s))
    }

    async fn do_register(&mut self, ssid: u16) {
        let now = self.clock.now();
        let Some(account) = self.reg.account(ssid).cloned() else {
            return;
        };
        let Some(security) = self.server_security(ssid) else {
            warn!(ssid, "no Security instance for this server");
            let _ = self.reg.register_result(now, ssid, Err(Failure::NetworkError));
            return;
        };
        if let Err(e) = self.ensure_conn(ConnKey::Server(ssid), security).await {
            warn!(ssid, %e, "cannot reach the server");
            let failure = match e {
                transport::ConnectError::Security(_) => Failure::HandshakeFailed,
                _ => Failure::NetworkError,
            };
            self.emit(ClientEvent::RequestFailed {
                ssid,
                request: "Register",
                reason: e.to_string(),
            });
            let now = self.clock.now();
            let _ = self.reg.register_result(now, ssid, Err(failure));
            return;
        }
        let Some(conn) = self.conns.get(&ConnKey::Server(ssid)) else {
            return;
        };
        let mut m = Message::request(Code::POST, "/rd");
        m.add_uri_query(&format!("ep={}", self.cfg.endpoint));
        m.add_uri_query(&format!("lt={}", account.lifetime_s));
        m.add_uri_query("lwm2m=1.1");
        m.add_uri_query(&format!("b={}", account.binding));
        if account.queue_mode {
            m.add_uri_query("Q");
        }
        m.set_content_format(ContentFormat::Link.code());
        m.payload = self.dm.registration_payload().into_bytes();
        info!(ssid, peer = %conn.peer, lifetime = account.lifetime_s, "Register");
        let (h, peer, tx) = (conn.handle.clone(), conn.peer, self.internal_tx.clone());
        spawn_started(async move {
            let (r, reason) = outcome(h.request(peer, m).await, &[Code::CREATED]);
            let result = r.map(|m| m.location_path());
            let _ = tx.send(Internal::Register { ssid, result, reason });
        });
    }

    fn do_update(&mut self, ssid: u16, location: Vec<String>, lifetime_s: Option<u64>, with_payload: bool) {
        let Some(conn) = self.conns.get(&ConnKey::Server(ssid)) else {
            let now = self.clock.now();
            let _ = self.reg.update_result(now, ssid, Err(Failure::NetworkError));
            return;
        };
        let mut m = Message::request(Code::POST, &location_uri(&location));
        if let Some(lt) = lifetime_s {
            m.add_uri_query(&format!("lt={lt}"));
        }
        if with_payload {
            m.set_content_format(ContentFormat::Link.code());
            m.payload = self.dm.registration_payload().into_bytes();
        }
        info!(ssid, location = %location_uri(&location), ?lifetime_s, with_payload, "Update");
        let (h, peer, tx) = (conn.handle.clone(), conn.peer, self.internal_tx.clone());
        spawn_started(async move {
            let (r, reason) = outcome(h.request(peer, m).await, &[Code::CHANGED]);
            let _ = tx.send(Internal::Update {
                ssid,
                result: r.map(|_| ()),
                reason,
            });
        });
    }

    fn do_deregister(&mut self, ssid: u16, location: Vec<String>) {
        let Some(conn) = self.conns.get(&ConnKey::Server(ssid)) else {
            let now = self.clock.now();
            let _ = self.reg.deregister_result(now, ssid, Err(Failure::NetworkError));
            return;
        };
        info!(ssid, location = %location_uri(&location), "De-register");
        let m = Message::request(Code::DELETE, &location_uri(&location));
        let (h, peer, tx) = (conn.handle.clone(), conn.peer, self.internal_tx.clone());
        spawn_started(async move {
            let (r, _) = outcome(h.request(peer, m).await, &[Code::DELETED]);
            let _ = tx.send(Internal::Deregister {
                ssid,
                result: r.map(|_| ()),
            });
        });
    }

    async fn do_bootstrap(&mut self) {
        let now = self.clock.now();
        self.dm.bootstrap_begin();
        self.bs_session += 1;
        let session = self.bs_session;
        self.bs = BsState::Running {
            session,
            deadline: now.saturating_add_millis(millis(self.cfg.bootstrap_finish_timeout)),
        };
        self.emit(ClientEvent::BootstrapStarted);
        let Some((_, bs)) = self.dm.bootstrap_account() else {
            self.abort_bootstrap(now, Failure::NetworkError, "no Bootstrap-Server account".into());
            return;
        };
        if let Err(e) = self.ensure_conn(ConnKey::Bootstrap, AccountSecurity::of(&bs)).await {
            warn!(%e, "cannot reach the Bootstrap-Server");
            let now = self.clock.now();
            let failure = match e {
                transport::ConnectError::Security(_) => Failure::HandshakeFailed,
                _ => Failure::NetworkError,
            };
            self.abort_bootstrap(now, failure, e.to_string());
            return;
        }
        let Some(conn) = self.conns.get(&ConnKey::Bootstrap) else {
            return;
        };
        let pct = self
            .cfg
            .bootstrap_format
            .unwrap_or_else(|| self.dm.multi_value_format());
        let mut m = Message::request(Code::POST, "/bs");
        m.add_uri_query(&format!("ep={}", self.cfg.endpoint));
        m.add_uri_query(&format!("pct={}", pct.code()));
        info!(peer = %conn.peer, "Bootstrap-Request");
        let (h, peer, tx) = (conn.handle.clone(), conn.peer, self.internal_tx.clone());
        spawn_started(async move {
            let (r, reason) = outcome(h.request(peer, m).await, &[Code::CHANGED]);
            let _ = tx.send(Internal::BootstrapRequest {
                session,
                result: r.map(|_| ()),
                reason,
            });
        });
    }

    fn abort_bootstrap(&mut self, now: Timestamp, failure: Failure, reason: String) {
        self.bs = BsState::Idle;
        self.dm.bootstrap_abort();
        self.emit(ClientEvent::BootstrapAttemptFailed { reason });
        if let Err(e) = self.reg.bootstrap_result(now, Err(failure)) {
            debug!(%e, "bootstrap failure not taken");
        }
    }

    fn on_registered(&mut self, ssid: u16, location: Vec<String>) {
        let now = self.clock.now();
        info!(ssid, location = %location_uri(&location), "registered");
        let was_disabled = self.servers.get(&ssid).is_some_and(|s| s.disabled);
        if was_disabled {
            if let Some(s) = self.servers.get_mut(&ssid) {
                s.disabled = false;
            }
            self.obs.set_online(now, ssid, true);
        } else {
            // A fresh registration: the server dropped the observations of the previous one.
            self.drop_observations(ssid);
        }
        self.wake(ssid);
        self.emit(ClientEvent::Registered { ssid, location });
        let deferred = self
            .servers
            .get_mut(&ssid)
            .map(|s| std::mem::take(&mut s.deferred))
            .unwrap_or_default();
        if let Some(h) = self.conns.get(&ConnKey::Server(ssid)).map(|c| c.handle.clone()) {
            for r in deferred {
                self.serve_dm(ssid, &h, r);
            }
        }
        if !self.cfg.send_on_register.is_empty() {
            let paths = self.cfg.send_on_register.clone();
            if let Err(e) = self.start_send(ssid, paths.clone(), None) {
                warn!(ssid, %e, "Send after Register (BsR-8) not sent");
                self.emit(ClientEvent::Sent {
                    ssid,
                    paths,
                    result: Err(e.to_string()),
                });
            }
        }
    }

    fn refuse_deferred(&mut self, ssid: u16) {
        let deferred = self
            .servers
            .get_mut(&ssid)
            .map(|s| std::mem::take(&mut s.deferred))
            .unwrap_or_default();
        if let Some(c) = self.conns.get(&ConnKey::Server(ssid)) {
            for r in deferred {
                let _ = c
                    .handle
                    .respond(r.responder, Message::response_to(&r.request, Code::SERVICE_UNAVAILABLE));
            }
        }
    }

    // ------------------------------------------------------------------ internal messages

    async fn on_internal(&mut self, msg: Internal) {
        let now = self.clock.now();
        match msg {
            Internal::Incoming { key, conn, item } => self.on_incoming(key, conn, item),
            Internal::Register { ssid, result, reason } => {
                if let Err(f) = &result {
                    warn!(ssid, %reason, "Register failed");
                    self.refuse_deferred(ssid);
                    self.emit(ClientEvent::RequestFailed {
                        ssid,
                        request: "Register",
                        reason: format!("{reason} ({f:?})"),
                    });
                }
                if let Err(e) = self.reg.register_result(now, ssid, result) {
                    debug!(ssid, %e, "stale Register result");
                }
            }
            Internal::Update { ssid, result, reason } => {
                match &result {
                    Ok(()) => {
                        self.wake(ssid);
                        self.emit(ClientEvent::Updated { ssid });
                    }
                    Err(f) => {
                        warn!(ssid, %reason, "Update failed");
                        self.emit(ClientEvent::RequestFailed {
                            ssid,
                            request: "Update",
                            reason: format!("{reason} ({f:?})"),
                        });
                    }
                }
                if let Err(e) = self.reg.update_result(now, ssid, result) {
                    debug!(ssid, %e, "stale Update result");
                }
            }
            Internal::Deregister { ssid, result } => {
                if let Err(e) = self.reg.deregister_result(now, ssid, result) {
                    debug!(ssid, %e, "stale De-register result");
                }
                self.emit(ClientEvent::Deregistered { ssid });
                let disabled = self.servers.get(&ssid).is_some_and(|s| s.disabled);
                if !disabled {
                    self.drop_observations(ssid);
                }
                // Disable closes the connection; a removed account's endpoint goes too.
                let gone = !self.reg.ssids().contains(&ssid);
                if disabled || gone {
                    if let Some(c) = self.conns.remove(&ConnKey::Server(ssid)) {
                        close_conn(c);
                    }
                }
            }
            Internal::BootstrapRequest {
                session,
                result,
                reason,
            } => {
                if let BsState::Running { session: s, .. } = self.bs {
                    if s == session {
                        match result {
                            Ok(()) => {
                                let deadline = now.saturating_add_millis(millis(self.cfg.bootstrap_finish_timeout));
                                self.bs = BsState::Running { session, deadline };
                            }
                            Err(f) => {
                                warn!(%reason, "Bootstrap-Request failed");
                                self.abort_bootstrap(now, f, reason);
                            }
                        }
                    }
                }
            }
            Internal::NotifyDone { ssid, token, result } => match result {
                Ok(_) => {}
                Err(RequestError::Reset | RequestError::Timeout) => {
                    debug!(ssid, "notification rejected or unacknowledged: observation ends");
                    self.cancel_observation(ssid, &token);
                }
                Err(e) => debug!(ssid, %e, "notification not delivered"),
            },
            Internal::Firmware { uri, result } => self.on_firmware(uri, result),
        }
    }

    fn on_incoming(&mut self, key: ConnKey, conn_id: u64, item: Incoming) {
        let Some(conn) = self.conns.get(&key) else { return };
        if conn.id != conn_id {
            return;
        }
        let (handle, peer) = (conn.handle.clone(), conn.peer);
        match item {
            Incoming::Request(r) => {
                if r.peer != peer {
                    warn!(from = %r.peer, expected = %peer, "request from an unknown peer refused");
                    let _ = handle.respond(r.responder, Message::response_to(&r.request, Code::UNAUTHORIZED));
                    return;
                }
                match key {
                    ConnKey::Bootstrap => self.on_bootstrap_request(&handle, r),
                    ConnKey::Server(ssid) => self.on_server_request(ssid, &handle, r),
                }
            }
            Incoming::ObservationCancelled { token, reason, .. } => {
                if let ConnKey::Server(ssid) = key {
                    debug!(ssid, ?reason, "observation cancelled by the CoAP layer");
                    self.cancel_observation(ssid, token.as_slice());
                }
            }
            Incoming::Security(ev) => debug!(?key, ?ev, "secure session event"),
            other => trace!(?key, ?other, "endpoint event"),
        }
    }

    fn on_server_request(&mut self, ssid: u16, handle: &UdpHandle, r: IncomingRequest) {
        let refuse = |why: &str| {
            debug!(ssid, why, path = %r.request.uri_path_string(), "request refused with 5.03");
            let _ = handle.respond(r.responder, Message::response_to(&r.request, Code::SERVICE_UNAVAILABLE));
        };
        if self.bootstrapping() {
            refuse("bootstrap in progress");
            return;
        }
        match self.reg.status(ssid) {
            Some(ServerStatus::Registered { .. } | ServerStatus::Updating { .. }) => {
                self.wake(ssid);
                self.serve_dm(ssid, handle, r);
            }
            Some(ServerStatus::Registering) => match self.servers.get_mut(&ssid) {
                Some(s) if s.deferred.len() < MAX_DEFERRED => s.deferred.push(r),
                _ => refuse("too many requests before the Register's answer"),
            },
            _ => refuse("not registered"),
        }
    }

    // ------------------------------------------------------------------ DM&SE

    fn serve_dm(&mut self, ssid: u16, handle: &UdpHandle, r: IncomingRequest) {
        let req = &r.request;
        let path_str = req.uri_path_string();
        let dm = &self.dm;
        let op = classify_dm(req, |p| match (p.object_id(), p.resource_id()) {
            (Some(o), Some(rid)) => dm
                .handler(o)
                .and_then(|h| h.model().resource(rid))
                .is_some_and(|m| m.operations.execute),
            _ => false,
        });
        let (name, resp) = match op {
            Err(e) => ("-", Message::response_to(req, error_code(&e))),
            Ok(op) => {
                let name = op.name();
                let resp = match self.execute_dm(ssid, req, op) {
                    Ok(m) => m,
                    Err(e) => {
                        debug!(ssid, operation = name, path = %path_str, %e, "request failed");
                        Message::response_to(req, error_code(&e))
                    }
                };
                (name, resp)
            }
        };
        let code = resp.code;
        debug!(ssid, operation = name, path = %path_str, %code, "answered");
        if let Err(e) = handle.respond(r.responder, resp) {
            debug!(ssid, %e, "response not sent");
        }
        self.emit(ClientEvent::Request {
            ssid: Some(ssid),
            operation: name,
            path: path_str,
            code,
        });
    }

    fn next_observe_seq(&mut self) -> u32 {
        let v = self.observe_seq;
        self.observe_seq = (self.observe_seq + 1) & 0xFF_FFFF;
        v
    }

    fn execute_dm(&mut self, ssid: u16, req: &Message, op: DmOp) -> Result<Message, DmError> {
        let now = self.clock.now();
        let dm = &mut self.dm;
        match op {
            DmOp::Read { path, accept } => {
                let (cf, body) = dm.read(ssid, &path, accept)?;
                Ok(content(req, Code::CONTENT, cf, body))
            }
            DmOp::Discover { path } => {
                let body = dm.discover(ssid, &path)?;
                Ok(content(req, Code::CONTENT, ContentFormat::Link, body.into_bytes()))
            }
            DmOp::CancelObserve { path, accept } => {
                self.cancel_observation(ssid, req.token.as_slice());
                let (cf, body) = self.dm.read(ssid, &path, accept)?;
                Ok(content(req, Code::CONTENT, cf, body))
            }
            DmOp::Observe { path, accept } => {
                let node = dm.read_node(ssid, &path)?;
                let (cf, body) = dm.encode_node(&path, &node, accept)?;
                let attrs = dm.effective_attributes(ssid, &path);
                let records = node.to_records(&path);
                let mut resp = content(req, Code::CONTENT, cf, body);
                match self
                    .obs
                    .observe(now, ssid, req.token.as_slice(), vec![path], vec![attrs], &records)
                {
                    Ok(id) => {
                        self.forget_replaced_observations();
                        self.observations.insert(
                            id,
                            ObsInfo {
                                ssid,
                                format: cf,
                                composite: false,
                            },
                        );
                        resp.set_observe(self.next_observe_seq());
                        info!(ssid, %path, %id, "observation started");
                    }
                    Err(e) => warn!(ssid, %path, %e, "observation refused, answered as a Read"),
                }
                Ok(resp)
            }
            DmOp::ReadComposite {
                format,
                accept,
                observe,
            } => {
                if observe == Some(1) {
                    self.cancel_observation(ssid, req.token.as_slice());
                }
                let (cf, body) = self.dm.read_composite(ssid, format, &req.payload, accept)?;
                let mut resp = content(req, Code::CONTENT, cf, body);
                if observe == Some(0) {
                    let paths =
                        format::decode_paths(format, &req.payload).map_err(|e| DmError::bad_request(e.to_string()))?;
                    let records = self.dm.composite_records(ssid, &paths);
                    let attrs = paths.iter().map(|p| self.dm.effective_attributes(ssid, p)).collect();
                    match self
                        .obs
                        .observe(now, ssid, req.token.as_slice(), paths.clone(), attrs, &records)
                    {
                        Ok(id) => {
                            self.forget_replaced_observations();
                            self.observations.insert(
                                id,
                                ObsInfo {
                                    ssid,
                                    format: cf,
                                    composite: true,
                                },
                            );
                            resp.set_observe(self.next_observe_seq());
                            info!(ssid, ?paths, %id, "composite observation started");
                        }
                        Err(e) => warn!(ssid, %e, "composite observation refused, answered as a Read-Composite"),
                    }
                }
                Ok(resp)
            }
            DmOp::Write { path, mode, format } => {
                dm.write(ssid, &path, mode, format, &req.payload)?;
                Ok(Message::response_to(req, Code::CHANGED))
            }
            DmOp::WriteAttributes { path, queries } => {
                let q: Vec<&str> = queries.iter().map(String::as_str).collect();
                dm.write_attributes(ssid, &path, &q)?;
                let dm = &self.dm;
                self.obs
                    .attributes_changed(now, ssid, |p| dm.effective_attributes(ssid, p));
                Ok(Message::response_to(req, Code::CHANGED))
            }
            DmOp::Execute { path } => {
                dm.execute(ssid, &path, &req.payload)?;
                Ok(Message::response_to(req, Code::CHANGED))
            }
            DmOp::Create { path, format } => {
                let created = dm.create(ssid, &path, format, &req.payload)?;
                let mut resp = Message::response_to(req, Code::CREATED);
                resp.set_location_path(&created.to_string());
                Ok(resp)
            }
            DmOp::Delete { path } => {
                dm.delete(ssid, &path)?;
                Ok(Message::response_to(req, Code::DELETED))
            }
            DmOp::WriteComposite { format } => {
                dm.write_composite(ssid, format, &req.payload)?;
                Ok(Message::response_to(req, Code::CHANGED))
            }
        }
    }

    // ------------------------------------------------------------------ bootstrap interface

    fn on_bootstrap_request(&mut self, handle: &UdpHandle, r: IncomingRequest) {
        let req = &r.request;
        let path_str = req.uri_path_string();
        let now = self.clock.now();
        let BsState::Running { session, .. } = self.bs else {
            debug!(path = %path_str, "bootstrap request outside a bootstrap: 4.01");
            let _ = handle.respond(r.responder, Message::response_to(req, Code::UNAUTHORIZED));
            self.emit(ClientEvent::Request {
                ssid: None,
                operation: "-",
                path: path_str,
                code: Code::UNAUTHORIZED,
            });
            return;
        };
        self.bs = BsState::Running {
            session,
            deadline: now.saturating_add_millis(millis(self.cfg.bootstrap_finish_timeout)),
        };
        let (name, result) = match classify_bootstrap(req) {
            Err(e) => ("-", Err(e)),
            Ok(op) => (op.name(), self.execute_bootstrap(req, op)),
        };
        let (resp, finished) = match result {
            Ok((m, finished)) => (m, finished),
            Err(e) => {
                debug!(operation = name, path = %path_str, %e, "bootstrap request failed");
                (Message::response_to(req, error_code(&e)), false)
            }
        };
        let code = resp.code;
        debug!(operation = name, path = %path_str, %code, "bootstrap request answered");
        if let Err(e) = handle.respond(r.responder, resp) {
            debug!(%e, "response not sent");
        }
        self.emit(ClientEvent::Request {
            ssid: None,
            operation: name,
            path: path_str,
            code,
        });
        if finished {
            self.bs = BsState::Idle;
            let accounts = engine_accounts(&self.dm, &self.cfg);
            info!(servers = accounts.servers.len(), "Bootstrap-Finish accepted");
            // The changes the bootstrap made are the engine restart's business, not Updates.
            self.dm.take_changes();
            let now = self.clock.now();
            if let Err(e) = self.reg.bootstrap_result(now, Ok(accounts)) {
                warn!(%e, "the bootstrapped accounts were not accepted");
            }
            self.sync_servers();
        }
    }

    /// Executes one bootstrap operation: the response and whether it was a successful Finish.
    fn execute_bootstrap(&mut self, req: &Message, op: BootstrapOp) -> Result<(Message, bool), DmError> {
        let dm = &mut self.dm;
        match op {
            BootstrapOp::Write { path, format } => {
                dm.bootstrap_write(&path, format, &req.payload)?;
                Ok((Message::response_to(req, Code::CHANGED), false))
            }
            BootstrapOp::Read { path, accept } => {
                let (cf, body) = dm.bootstrap_read(&path, accept)?;
                Ok((content(req, Code::CONTENT, cf, body), false))
            }
            BootstrapOp::Discover { path } => {
                let body = dm.bootstrap_discover(&path)?;
                Ok((
                    content(req, Code::CONTENT, ContentFormat::Link, body.into_bytes()),
                    false,
                ))
            }
            BootstrapOp::Delete { path } => {
                dm.bootstrap_delete(&path)?;
                Ok((Message::response_to(req, Code::DELETED), false))
            }
            BootstrapOp::Finish => {
                dm.bootstrap_finish()?;
                Ok((Message::response_to(req, Code::CHANGED), true))
            }
        }
    }

    // ------------------------------------------------------------------ notifications

    fn on_notify(&mut self, n: Notify) {
        let now = self.clock.now();
        let Some(info) = self.observations.get(&n.id).cloned() else {
            self.obs.cancel_id(n.id);
            return;
        };
        let (current, node) = if info.composite {
            (self.dm.composite_records(n.ssid, &n.targets), None)
        } else {
            let Some(path) = n.targets.first().copied() else {
                let _ = self.obs.not_sent(now, n.id);
                return;
            };
            match self.dm.read_node(n.ssid, &path) {
                Ok(node) => (node.to_records(&path), Some((path, node))),
                Err(DmError::NotFound(why)) => {
                    // The observed node is gone: tell the observer (a non-2.xx notification ends it).
                    debug!(ssid = n.ssid, %why, "observed node gone: 4.04 notification");
                    self.send_notification(&n, Message::new(MessageType::Con, Code::NOT_FOUND));
                    self.obs.cancel_id(n.id);
                    self.observations.remove(&n.id);
                    return;
                }
                Err(e) => {
                    // No Read access any more (§6.1), or the read failed: nothing is sent.
                    debug!(ssid = n.ssid, %e, "notification not sent");
                    let _ = self.obs.not_sent(now, n.id);
                    return;
                }
            }
        };
        if n.delivery == ObsDelivery::Store {
            trace!(ssid = n.ssid, id = %n.id, "notification stored");
            let _ = self.obs.notified(now, n.id, &current);
            return;
        }
        let record_based = info.format.is_record_based();
        let mut sent: Vec<Record> = Vec::new();
        if record_based {
            for s in &n.stored {
                let t = self.clock.unix(s.time);
                sent.extend(s.records.iter().cloned().map(|mut r| {
                    r.time = Some(t);
                    r
                }));
            }
        } else if !n.stored.is_empty() {
            debug!(ssid = n.ssid, format = %info.format, "stored notifications dropped: the format has no timestamps");
        }
        sent.extend(current.iter().cloned());
        let encoded = match &node {
            Some((path, node)) if !record_based => self
                .dm
                .encode_node(path, node, Some(info.format))
                .map(|(_, body)| body)
                .map_err(|e| e.to_string()),
            Some((path, _)) => format::encode_records(info.format, path, &sent).map_err(|e| e.to_string()),
            None => format::encode_records(info.format, &Path::ROOT, &sent).map_err(|e| e.to_string()),
        };
        let payload = match encoded {
            Ok(p) => p,
            Err(e) => {
                warn!(ssid = n.ssid, %e, "notification could not be encoded");
                let _ = self.obs.not_sent(now, n.id);
                return;
            }
        };
        let mtype = if n.confirmable || self.cfg.confirmable_notifications {
            MessageType::Con
        } else {
            MessageType::Non
        };
        let msg = Message::new(mtype, Code::CONTENT)
            .with_content_format(info.format.code())
            .with_payload(payload);
        if self.send_notification(&n, msg) {
            let _ = self.obs.notified(now, n.id, &sent);
            self.emit(ClientEvent::Notified {
                ssid: n.ssid,
                paths: n.targets.clone(),
            });
        } else {
            let _ = self.obs.not_sent(now, n.id);
        }
    }

    /// Sends `msg` with the observation's token to its server; false when there is no endpoint.
    fn send_notification(&mut self, n: &Notify, mut msg: Message) -> bool {
        let Some(conn) = self.conns.get(&ConnKey::Server(n.ssid)) else {
            return false;
        };
        let Some(token) = Token::try_from_slice(n.token.as_bytes()) else {
            return false;
        };
        msg.token = token;
        trace!(ssid = n.ssid, id = %n.id, reason = ?n.reason, "notify");
        let (h, peer, tx, ssid) = (conn.handle.clone(), conn.peer, self.internal_tx.clone(), n.ssid);
        let token = n.token.as_bytes().to_vec();
        spawn_started(async move {
            let result = h.notify(peer, msg).await;
            let _ = tx.send(Internal::NotifyDone { ssid, token, result });
        });
        true
    }

    // ------------------------------------------------------------------ Send

    /// Starts a Send to `ssid`; the outcome goes to `reply` (and a [`ClientEvent::Sent`]).
    fn start_send(
        &mut self,
        ssid: u16,
        paths: Vec<Path>,
        reply: Option<oneshot::Sender<Result<(), ClientError>>>,
    ) -> Result<(), ClientError> {
        if self.bootstrapping() {
            return Err(ClientError::Bootstrapping);
        }
        if !matches!(
            self.reg.status(ssid),
            Some(ServerStatus::Registered { .. } | ServerStatus::Updating { .. })
        ) {
            return Err(ClientError::NotRegistered(ssid));
        }
        let muted = self
            .dm
            .server_instances()
            .into_iter()
            .find(|(_, s)| s.ssid == ssid)
            .is_none_or(|(_, s)| s.mute_send != Some(false));
        if muted {
            return Err(ClientError::Muted(ssid));
        }
        let mut records = Vec::new();
        for p in &paths {
            if !p.object_id().is_some_and(is_dm_visible) {
                return Err(ClientError::Dm(DmError::bad_request(format!("{p} cannot be sent"))));
            }
            records.extend(self.dm.local_read(p)?.to_records(p));
        }
        if records.is_empty() {
            return Err(ClientError::NothingToSend);
        }
        let payload = format::encode_records(self.cfg.send_format, &Path::ROOT, &records)
            .map_err(|e| ClientError::Encode(e.to_string()))?;
        let Some(conn) = self.conns.get(&ConnKey::Server(ssid)) else {
            return Err(ClientError::NotRegistered(ssid));
        };
        let m = Message::request(Code::POST, "/dp")
            .with_content_format(self.cfg.send_format.code())
            .with_payload(payload);
        info!(ssid, ?paths, "Send");
        let (h, peer, events) = (conn.handle.clone(), conn.peer, self.events.clone());
        self.wake(ssid);
        spawn_started(async move {
            let r = match h.request(peer, m).await {
                Ok(m) if m.code.is_success() => Ok(()),
                Ok(m) => Err(ClientError::Rejected { ssid, code: m.code }),
                Err(e) => Err(ClientError::Transport {
                    ssid,
                    reason: e.to_string(),
                }),
            };
            let _ = events.send(ClientEvent::Sent {
                ssid,
                paths,
                result: r.clone().map_err(|e| e.to_string()),
            });
            if let Some(reply) = reply {
                let _ = reply.send(r);
            }
        });
        Ok(())
    }

    // ------------------------------------------------------------------ firmware

    fn start_firmware_download(&mut self, uri: String) {
        info!(%uri, "firmware download");
        let tx = self.internal_tx.clone();
        let coap = self.cfg.coap.clone();
        tokio::spawn(async move {
            let result = download(&uri, coap).await;
            let _ = tx.send(Internal::Firmware { uri, result });
        });
    }

    fn on_firmware(&mut self, uri: String, result: Result<Vec<u8>, UpdateResult>) {
        let outcome = result.as_ref().map(|_| ()).map_err(|r| *r);
        let r = self
            .dm
            .with_object::<FirmwareUpdate, _>(FIRMWARE_UPDATE, |f, fx| f.download_finished(outcome, fx));
        if let Some(Err(e)) = r {
            // E.g. the server cancelled the download meanwhile (Package URI emptied).
            debug!(%e, "firmware download outcome not recorded");
            return;
        }
        match result {
            Ok(package) => {
                info!(%uri, size = package.len(), "firmware downloaded");
                self.emit(ClientEvent::FirmwareDownloaded { uri, package });
            }
            Err(r) => {
                warn!(%uri, result = ?r, "firmware download failed");
                self.emit(ClientEvent::FirmwareDownloadFailed { uri, result: r.code() });
            }
        }
    }

    // ------------------------------------------------------------------ commands and stopping

    async fn on_command(&mut self, c: Command) {
        let now = self.clock.now();
        match c {
            Command::Send { ssid, paths, reply } => {
                let (tx, rx) = oneshot::channel();
                match self.start_send(ssid, paths, Some(tx)) {
                    Ok(()) => {
                        tokio::spawn(async move {
                            let r = rx.await.unwrap_or(Err(ClientError::Stopped));
                            let _ = reply.send(r);
                        });
                    }
                    Err(e) => {
                        let _ = reply.send(Err(e));
                    }
                }
            }
            Command::Update { ssid, reply } => {
                let targets = match ssid {
                    Some(s) => vec![s],
                    None => self
                        .reg
                        .ssids()
                        .into_iter()
                        .filter(|s| {
                            matches!(
                                self.reg.status(*s),
                                Some(ServerStatus::Registered { .. } | ServerStatus::Updating { .. })
                            )
                        })
                        .collect(),
                };
                let mut r = if targets.is_empty() {
                    Err(ClientError::NoRegistration)
                } else {
                    Ok(())
                };
                for s in targets {
                    if let Err(e) = self.reg.execute_update_trigger(now, s) {
                        r = Err(e.into());
                    }
                }
                let _ = reply.send(r);
            }
            Command::Bootstrap { reply } => {
                let r = self.reg.execute_bootstrap_trigger(now).map_err(ClientError::from);
                let _ = reply.send(r);
            }
            Command::WithDm(job) => job(&mut self.dm),
            Command::Status { reply } => {
                let _ = reply.send(self.status());
            }
            Command::Shutdown { done } => self.begin_stop(Some(done)),
        }
    }

    fn status(&self) -> ClientStatus {
        let uris: HashMap<u16, String> = self
            .dm
            .server_accounts()
            .into_iter()
            .filter_map(|a| a.uri().map(|u| (a.ssid(), u.to_owned())))
            .collect();
        let servers = self
            .reg
            .ssids()
            .into_iter()
            .filter_map(|ssid| {
                Some(ServerState {
                    ssid,
                    uri: uris.get(&ssid).cloned(),
                    status: self.reg.status(ssid)?,
                    queue_mode: self.queue_mode(ssid),
                    asleep: self.servers.get(&ssid).is_some_and(|s| s.asleep),
                    observations: self.observations.values().filter(|o| o.ssid == ssid).count(),
                })
            })
            .collect();
        ClientStatus {
            servers,
            bootstrap: self.reg.bootstrap_status(),
        }
    }

    fn begin_stop(&mut self, done: Option<oneshot::Sender<()>>) {
        self.stop_then(done, AfterStop::Exit);
    }

    /// De-registers from every registered server (at most [`ClientConfig::shutdown_timeout`]), then `then`. A
    /// stop already under way only collects `done`; an exit overrides a planned restart.
    fn stop_then(&mut self, done: Option<oneshot::Sender<()>>, then: AfterStop) {
        if let Some(s) = &mut self.stopping {
            s.done.extend(done);
            if then == AfterStop::Exit {
                s.then = AfterStop::Exit;
            }
            return;
        }
        let now = self.clock.now();
        info!(?then, "de-registering");
        self.reg.shutdown(now);
        if matches!(self.bs, BsState::Running { .. }) {
            self.bs = BsState::Idle;
            self.dm.bootstrap_abort();
        }
        self.stopping = Some(Stopping {
            done: done.into_iter().collect(),
            deadline: now.saturating_add_millis(millis(self.cfg.shutdown_timeout)),
            then,
        });
    }

    /// Acts on an executed Reboot or Factory Reset (the policy asked for it; the 2.04 is already queued).
    fn begin_reset(&mut self, kind: ResetKind) {
        if self.stopping.is_some() {
            debug!(?kind, "already stopping or restarting");
            return;
        }
        match kind {
            // A reboot is abrupt: no De-register.
            ResetKind::Reboot => self.restart(kind),
            // §4.2: the client SHOULD De-register when it stops using a server, e.g. for a factory reset.
            ResetKind::FactoryReset => self.stop_then(None, AfterStop::Restart(kind)),
        }
    }

    /// Restarts the runtime as after a power cycle: endpoints closed without a word, in-flight answers dropped,
    /// fresh engines from the data model (restored from its factory configuration for a Factory Reset).
    fn restart(&mut self, kind: ResetKind) {
        let now = self.clock.now();
        info!(?kind, "restarting");
        for (_, c) in self.conns.drain() {
            // No close_notify: a rebooting device does not say goodbye. Queued answers (the 2.04 of the
            // Execute) still leave: the driver flushes before it stops.
            tokio::spawn(async move { c.handle.shutdown().await });
        }
        if self.bootstrapping() {
            self.dm.bootstrap_abort();
        }
        self.bs = BsState::Idle;
        self.stopping = None;
        self.reset = None;
        // Answers to requests of the previous life go to the old channel, which nobody reads any more.
        let (tx, rx) = mpsc::unbounded_channel();
        self.internal_tx = tx;
        self.internal_rx = rx;
        if kind == ResetKind::FactoryReset {
            if let Err(e) = self.dm.factory_reset() {
                warn!(%e, "factory reset: the data model is kept as it is");
            }
        }
        if let RebootPolicy::RestartWith(hook) = &self.cfg.reboot_policy {
            let hook = hook.clone();
            hook(kind, &mut self.dm);
        }
        // The restart's changes are the new engines' business; earlier pending actions die with the old life.
        self.dm.take_changes();
        self.dm.take_actions();
        self.obs = ObserveEngine::new(self.cfg.observe.clone());
        self.observations.clear();
        self.servers.clear();
        match new_engine(&self.dm, &self.cfg, now) {
            Ok(engine) => {
                self.reg = engine;
                self.sync_servers();
                info!(?kind, servers = ?self.reg.ssids(), "restarted");
                self.emit(ClientEvent::Restarted { kind });
            }
            Err(e) => {
                error!(%e, "the accounts after the restart are invalid: stopping");
                self.begin_stop(None);
            }
        }
    }

    /// Ends the task once every De-register is answered (or the shutdown timeout passed), or restarts when the
    /// stop was a Factory Reset's.
    async fn finish_stop_if_done(&mut self) -> Turn {
        let Some(s) = &self.stopping else {
            return Turn::Running;
        };
        let now = self.clock.now();
        let pending = self
            .reg
            .ssids()
            .into_iter()
            .any(|ssid| matches!(self.reg.status(ssid), Some(ServerStatus::Deregistering)));
        if pending && now < s.deadline {
            return Turn::Running;
        }
        if let AfterStop::Restart(kind) = s.then {
            self.restart(kind);
            return if self.stopping.is_some() {
                Turn::Running
            } else {
                Turn::Restarted
            };
        }
        for (_, c) in self.conns.drain() {
            if c.handle.is_secure() {
                let _ = c.handle.close_secure_session(c.peer).await;
            }
            c.handle.shutdown().await;
        }
        self.emit(ClientEvent::Stopped);
        if let Some(s) = self.stopping.take() {
            for d in s.done {
                let _ = d.send(());
            }
        }
        Turn::Stopped
    }
}

/// Closes an endpoint in the background (DTLS close_notify first).
fn close_conn(c: Conn) {
    tokio::spawn(async move {
        if c.handle.is_secure() {
            let _ = c.handle.close_secure_session(c.peer).await;
        }
        c.handle.shutdown().await;
    });
}

/// The accounts for the engine; `queue_mode` from the configuration applies to every server.
fn engine_accounts(dm: &DataModel, cfg: &ClientConfig) -> Accounts {
    let mut a = dm.registration_accounts();
    if cfg.queue_mode {
        for s in &mut a.servers {
            s.queue_mode = true;
        }
    }
    a
}

/// Pull download of a firmware package over CoAP (block-wise handled by the CoAP layer).
async fn download(uri: &str, coap: lwm2m_coap::EndpointConfig) -> Result<Vec<u8>, UpdateResult> {
    let parsed = CoapUri::parse(uri).map_err(|e| match e {
        transport::ConnectError::UnsupportedScheme { .. } => UpdateResult::UnsupportedProtocol,
        _ => UpdateResult::InvalidUri,
    })?;
    if parsed.secure {
        // The Package URI carries no credentials for a coaps:// download.
        warn!(%uri, "coaps:// firmware downloads are not supported");
        return Err(UpdateResult::UnsupportedProtocol);
    }
    let peer = parsed.resolve().await.map_err(|_| UpdateResult::InvalidUri)?;
    let account = AccountSecurity::nosec(uri);
    let opened = transport::open(&account, &coap)
        .await
        .map_err(|_| UpdateResult::ConnectionLost)?;
    let path = if parsed.path_and_query.is_empty() {
        "/".to_owned()
    } else {
        parsed.path_and_query.clone()
    };
    let r = opened.handle.request(peer, Message::request(Code::GET, &path)).await;
    opened.handle.shutdown().await;
    match r {
        Ok(m) if m.code == Code::CONTENT => Ok(m.payload),
        Ok(m) if m.code == Code::NOT_FOUND || m.code == Code::BAD_REQUEST => Err(UpdateResult::InvalidUri),
        Ok(_) => Err(UpdateResult::ConnectionLost),
        Err(RequestError::Blockwise(e)) => {
            warn!(%e, "firmware block-wise transfer failed");
            Err(UpdateResult::ConnectionLost)
        }
        Err(_) => Err(UpdateResult::ConnectionLost),
    }
}
