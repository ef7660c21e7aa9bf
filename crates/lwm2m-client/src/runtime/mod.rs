//! The tokio runtime of the client: ties the sans-IO pieces ([`DataModel`], [`RegistrationEngine`](crate::registration::RegistrationEngine),
//! [`ObserveEngine`](crate::observe::ObserveEngine)) to real sockets.
//!
//! [`Client::start`] spawns **one task** that owns the data model and both engines. It opens one CoAP endpoint
//! (`lwm2m_coap`'s UDP driver, on an ephemeral local port) per LwM2M Server account and one for the
//! Bootstrap-Server, then loops on: the application's commands ([`ClientHandle`]), inbound requests from the
//! servers, the answers to its own requests, and the engines' timers. Time is `tokio::time`, so tests run it
//! with tokio's paused clock and nothing waits for real.
//!
//! ```no_run
//! use lwm2m_client::dm::{FactoryConfig, ServerConfig};
//! use lwm2m_client::runtime::{Client, ClientConfig, ClientEvent};
//!
//! # async fn demo() -> Result<(), Box<dyn std::error::Error>> {
//! let dm = FactoryConfig {
//!     servers: vec![ServerConfig::new(1, "coap://127.0.0.1:5683", 300)],
//!     temperature: Some(vec![(0, 21.0)]),
//!     ..FactoryConfig::default()
//! }
//! .build()?;
//! let (client, mut events) = Client::start(dm, ClientConfig::new("urn:dev:1"))?;
//! while let Some(ev) = events.recv().await {
//!     if let ClientEvent::Registered { ssid, .. } = ev {
//!         client.send(ssid, vec!["/3303/0/5700".parse()?]).await?;
//!         break;
//!     }
//! }
//! client.shutdown().await;
//! # Ok(()) }
//! ```
//!
//! # What the task does
//!
//! **Registration (digest §4).** It performs the [`RegistrationEngine`](crate::registration::RegistrationEngine)'s actions: Register
//! (`POST /rd?ep=&lt=&lwm2m=1.1&b=[&Q]`, Content-Format 40, payload [`DataModel::registration_payload`]),
//! Update (`POST /{location}` with `lt` and the object list when the engine asks), De-register
//! (`DELETE /{location}`) and Bootstrap-Request, and feeds every outcome back (2.01 with its Location-Path,
//! timeouts, RST, rejections with their code, handshake failures). A failure to open the endpoint (bad URI,
//! resolution, DTLS setup) counts as a failed attempt, so the engine's retry rules apply.
//!
//! **DM&SE requests (§5, §6).** Requests on a server's endpoint are answered with that server's SSID, so
//! Access Control applies: GET → Read (Discover with Accept 40, Observe with Observe 0, cancel with Observe 1),
//! PUT → Write-Replace (Write-Attributes without Content-Format), POST → Create on `/o`, Partial Update on
//! `/o/i` (and on a writable, non-executable `/o/i/r` with a Content-Format), Execute otherwise, DELETE →
//! Delete, FETCH `/` → Read-Composite / Observe-Composite, iPATCH `/` → Write-Composite. Errors carry the
//! [`DmError`] code; content carries its Content-Format. Requests from a server whose
//! Register is still in flight wait for its answer (they are served once it is 2.01); requests from a server that
//! is not registered, or while a bootstrap runs, are answered 5.03 Service Unavailable. Requests from another
//! address than the server's are answered 4.01.
//!
//! **Bootstrap (§3).** Only while a bootstrap runs are requests on the Bootstrap-Server's endpoint served, as
//! Bootstrap-Write / Read / Discover / Delete / Finish (otherwise 4.01). A 2.04 Finish hands the new accounts to
//! the engine, which registers to the new servers (BsR-2 when started by `/1/x/9`); no Finish within
//! [`ClientConfig::bootstrap_finish_timeout`] (247 s) after the last bootstrap message, or a failed
//! Bootstrap-Request, aborts (the Bootstrap-Server account is restored) and counts as a failed attempt.
//!
//! **Actions.** After answering, the task drains [`DataModel::take_actions`]: Disable → De-register and
//! silence for the Disable Timeout; Registration Update Trigger → Update; Bootstrap-Request Trigger → bootstrap
//! at once; Package URI written → a CoAP GET of the URI (block-wise handled by the CoAP layer), then
//! [`FirmwareUpdate::download_finished`](crate::objects::firmware::FirmwareUpdate::download_finished) and
//! [`ClientEvent::FirmwareDownloaded`]; a pushed package waiting for verification is accepted; Firmware Update
//! becomes an event for the application; Reboot and Factory Reset become events and, with
//! [`ClientConfig::reboot_policy`], restarts (below).
//!
//! **Reboot and Factory Reset (`/3/0/4`, `/3/0/5`).** [`ClientEvent::Reboot`] / [`ClientEvent::FactoryReset`]
//! are always emitted. With the default [`RebootPolicy::EventOnly`] that is all (the application reboots the
//! device). With [`RebootPolicy::Restart`] (what `lwm2m client` uses) or [`RebootPolicy::RestartWith`] the
//! runtime acts, after the 2.04 has gone out:
//! - **Reboot** is abrupt, like a power cycle: no De-register and no DTLS close_notify; every endpoint is closed,
//!   answers still in flight are dropped, observations, queue-mode state, deferred requests and a running
//!   bootstrap (aborted: the Bootstrap-Server account keeps its old values) are gone. The data model keeps
//!   everything (it stands for the device's persisted configuration). The registration and observe engines
//!   start afresh from it, so each server gets a new Register (not an Update) from a new local port, with the
//!   Initial Registration Delays and the start-up decision of digest §3.2.
//! - **Factory Reset** first De-registers from every registered server (waiting at most
//!   [`ClientConfig::shutdown_timeout`]), then restores the data model from the factory configuration it was
//!   built with ([`DataModel::factory_reset`]) and restarts as above: a factory configuration with only a
//!   Bootstrap-Server account bootstraps again. A data model without a factory configuration is kept (with a
//!   warning).
//!
//! [`RebootPolicy::RestartWith`] calls the application's hook on the data model right before the engines
//! restart. [`ClientEvent::Restarted`] tells when the restart happened.
//!
//! **Bootstrap-Server Account Timeout (`/0/x/12`).** The registration engine's purge timer (see
//! [`crate::registration`]) deletes the Bootstrap-Server account's Security instance
//! ([`DataModel::purge_bootstrap_account`]) that many seconds after a successful bootstrap, closes its endpoint
//! and emits [`ClientEvent::BootstrapAccountPurged`]. After a Reboot of a bootstrapped client the timeout
//! counts again from the restart.
//!
//! **Observe (§6).** Value changes from [`DataModel::take_changes`] go to the [`ObserveEngine`](crate::observe::ObserveEngine); its
//! notifications are read (after the server's Read access is checked), encoded in the format of the first
//! response and sent with the observation's token; RST, a timed-out CON notification or a cancel ends the
//! observation in the engine. A fresh Register voids a server's observations (the server re-establishes them).
//!
//! **Send (§6.2).** [`ClientHandle::send`] posts SenML to `/dp` when the server is registered and its Mute Send
//! `/1/x/23` is false (absent counts as true). [`ClientConfig::send_on_register`] paths are sent that way right
//! after every successful Register (BsR-8).
//!
//! **Queue mode (§4.4).** With [`ClientConfig::queue_mode`] (or a legacy `Q` in `/1/x/7`) the Register carries
//! `Q`. After [`ClientConfig::awake_time`] (93 s) without traffic with a server the client "sleeps" with it:
//! notifications are stored or held per `/1/x/6` ([`ObserveEngine::set_online`](crate::observe::ObserveEngine::set_online)) and it wakes with the next
//! Update (the lifetime's, a trigger, [`ClientHandle::update`]), a Send or a request from the server; stored
//! notifications are then delivered as timestamped SenML where the observation's format allows.
//!
//! **Security.** `coap://` accounts use plain CoAP; `coaps://` accounts run through `lwm2m-dtls`'s client layer
//! (feature `dtls`, on by default) with PSK or X.509 credentials (Certificate Usage `/0/x/15`, default 3; server
//! name from `/0/x/14` or the URI host), or raw public keys when `lwm2m-dtls` is built with its `vendored`
//! feature (otherwise the attempt fails with an error naming that feature). A `/0/x/16` DTLS/TLS Ciphersuite
//! list restricts the suites the handshake offers to the listed ones that fit the mode
//! ([`transport::offered_suites`]; unknown values are skipped with a warning); when none is left the attempt
//! fails with an error naming `/0/x/16` and counts as a failed Register (or Bootstrap-Request) attempt.

mod driver;
pub mod requests;
pub mod transport;

use std::sync::Arc;
use std::time::Duration;

use lwm2m_coap::{Code, EndpointConfig};
use lwm2m_core::{ContentFormat, Node, Path, Value};
use tokio::sync::{mpsc, oneshot};

use crate::dm::DataModel;
use crate::object::DmError;
use crate::observe::ObserveConfig;
use crate::registration::{BootstrapStatus, EngineError, RejectHandling, ServerStatus, DEFAULT_UPDATE_MARGIN_S};

pub use transport::{CoapUri, ConnectError};

/// MAX_TRANSMIT_WAIT: how long a queue-mode client stays reachable after its last message (93 s).
pub const DEFAULT_AWAKE_TIME: Duration = Duration::from_secs(93);
/// EXCHANGE_LIFETIME: how long the client waits for Bootstrap-Finish after the last bootstrap message (247 s).
pub const DEFAULT_BOOTSTRAP_FINISH_TIMEOUT: Duration = Duration::from_secs(247);

/// Which of the two Device executes (`/3/0/4`, `/3/0/5`) is being acted on.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Hash)]
pub enum ResetKind {
    /// `/3/0/4` Reboot: restart with the data model as it is.
    Reboot,
    /// `/3/0/5` Factory Reset: restart with the data model restored from its factory configuration.
    FactoryReset,
}

/// The application's part of a restart ([`RebootPolicy::RestartWith`]): called inside the client task with the
/// data model the runtime is about to restart with (for a Factory Reset, already restored from the factory
/// configuration), e.g. to reset application state, re-add objects or load persisted values. What it changes is
/// not reported to anyone (the servers get a fresh Register).
pub type ResetHook = Arc<dyn Fn(ResetKind, &mut DataModel) + Send + Sync>;

/// What the runtime does when a server executes `/3/0/4` Reboot or `/3/0/5` Factory Reset (see the module
/// documentation). [`ClientEvent::Reboot`] / [`ClientEvent::FactoryReset`] are emitted in every case.
#[derive(Clone, Default)]
pub enum RebootPolicy {
    /// Only the events: the application reboots or resets the device itself (the default).
    #[default]
    EventOnly,
    /// The runtime restarts itself: Reboot keeps the data model, Factory Reset De-registers and restores the
    /// data model from its factory configuration; then registration starts again ([`ClientEvent::Restarted`]).
    Restart,
    /// Like [`RebootPolicy::Restart`], and the hook runs on the data model right before the restart.
    RestartWith(ResetHook),
}

impl RebootPolicy {
    /// Whether the runtime acts (restarts) rather than only reporting.
    pub fn restarts(&self) -> bool {
        !matches!(self, RebootPolicy::EventOnly)
    }
}

impl std::fmt::Debug for RebootPolicy {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        match self {
            RebootPolicy::EventOnly => f.write_str("EventOnly"),
            RebootPolicy::Restart => f.write_str("Restart"),
            RebootPolicy::RestartWith(_) => f.write_str("RestartWith(..)"),
        }
    }
}

/// How the runtime behaves (the accounts themselves come from the data model's Objects 0 and 1).
#[derive(Debug, Clone)]
pub struct ClientConfig {
    /// The Endpoint Client Name (`ep`).
    pub endpoint: String,
    /// Use queue mode with every server (`Q`), besides servers whose `/1/x/7` holds a legacy `Q`.
    pub queue_mode: bool,
    /// Queue mode: stay reachable this long after the last exchange with a server (93 s).
    pub awake_time: Duration,
    /// BsR-8: paths sent with Send right after every successful Register (needs Mute Send = false).
    pub send_on_register: Vec<Path>,
    /// The format of Send and of stored notifications (SenML CBOR).
    pub send_format: ContentFormat,
    /// The `pct` of the Bootstrap-Request (the data model's multi-value format when `None`).
    pub bootstrap_format: Option<ContentFormat>,
    /// How long a bootstrap waits for Finish after the last bootstrap message (247 s).
    pub bootstrap_finish_timeout: Duration,
    /// CoAP transmission parameters of every endpoint (LwM2M defaults).
    pub coap: EndpointConfig,
    /// Send Updates this many seconds before the lifetime ends (93); see [`crate::registration`].
    pub update_margin_s: u64,
    /// How explicit Register rejections are handled (digest §12 #1).
    pub reject_handling: RejectHandling,
    /// Observation limits. The 24 h CON rule is left to the CoAP endpoint (`con_interval_ms: None`).
    pub observe: ObserveConfig,
    /// Send every notification confirmable (default false: NON, with a CON at least every 24 h).
    pub confirmable_notifications: bool,
    /// [`ClientHandle::shutdown`] waits at most this long for the De-registers (5 s); so does a Factory Reset.
    pub shutdown_timeout: Duration,
    /// What `/3/0/4` Reboot and `/3/0/5` Factory Reset do ([`RebootPolicy::EventOnly`]: only the events).
    pub reboot_policy: RebootPolicy,
}

impl ClientConfig {
    /// Defaults with endpoint name `endpoint`.
    pub fn new(endpoint: impl Into<String>) -> ClientConfig {
        ClientConfig {
            endpoint: endpoint.into(),
            queue_mode: false,
            awake_time: DEFAULT_AWAKE_TIME,
            send_on_register: Vec::new(),
            send_format: ContentFormat::SenmlCbor,
            bootstrap_format: None,
            bootstrap_finish_timeout: DEFAULT_BOOTSTRAP_FINISH_TIMEOUT,
            coap: EndpointConfig::default(),
            update_margin_s: DEFAULT_UPDATE_MARGIN_S,
            reject_handling: RejectHandling::default(),
            observe: ObserveConfig {
                con_interval_ms: None,
                ..ObserveConfig::default()
            },
            confirmable_notifications: false,
            shutdown_timeout: Duration::from_secs(5),
            reboot_policy: RebootPolicy::EventOnly,
        }
    }
}

/// What happened, for the application (and tests). Sent on the unbounded channel [`Client::start`] returns;
/// nothing waits for it to be read.
#[derive(Debug, Clone, PartialEq)]
#[non_exhaustive]
pub enum ClientEvent {
    /// A Register was accepted.
    Registered {
        /// The server.
        ssid: u16,
        /// Its Location-Path.
        location: Vec<String>,
    },
    /// An Update was accepted.
    Updated {
        /// The server.
        ssid: u16,
    },
    /// A Register, Update or De-register failed (the engine decides what follows).
    RequestFailed {
        /// The server.
        ssid: u16,
        /// "Register", "Update" or "De-register".
        request: &'static str,
        /// Why.
        reason: String,
    },
    /// Registration to this server failed for good (all sequences, or a rejection that ends it).
    RegistrationFailed {
        /// The server.
        ssid: u16,
    },
    /// The De-register went out (answered or not).
    Deregistered {
        /// The server.
        ssid: u16,
    },
    /// `/1/x/4` Disable: silent towards this server for the Disable Timeout.
    Disabled {
        /// The server.
        ssid: u16,
        /// For how long.
        duration: Duration,
    },
    /// A Bootstrap-Request is being sent.
    BootstrapStarted,
    /// Bootstrap-Finish accepted; the new accounts are in use.
    Bootstrapped,
    /// A bootstrap attempt failed (the engine may retry).
    BootstrapAttemptFailed {
        /// Why.
        reason: String,
    },
    /// Every bootstrap attempt failed.
    BootstrapFailed,
    /// A request from a server (`ssid`) or the Bootstrap-Server (`ssid: None`) was answered.
    Request {
        /// The server, `None` for the Bootstrap-Server.
        ssid: Option<u16>,
        /// The LwM2M operation (`Read`, `Bootstrap-Write`, ...), or `-` when the request was refused before.
        operation: &'static str,
        /// The request path.
        path: String,
        /// The response code.
        code: Code,
    },
    /// A notification was sent.
    Notified {
        /// The server.
        ssid: u16,
        /// The observed paths.
        paths: Vec<Path>,
    },
    /// An observation ended: cancelled by the server (Observe 1, RST) or its notification timed out.
    ObservationCancelled {
        /// The server.
        ssid: u16,
    },
    /// A Send finished.
    Sent {
        /// The server.
        ssid: u16,
        /// The paths sent.
        paths: Vec<Path>,
        /// The outcome (`Err` with the reason).
        result: Result<(), String>,
    },
    /// Queue mode: the client went to sleep with this server.
    Sleeping {
        /// The server.
        ssid: u16,
    },
    /// Queue mode: the client is awake again with this server.
    Awake {
        /// The server.
        ssid: u16,
    },
    /// `/3/0/4` Reboot was executed (with [`RebootPolicy::EventOnly`] the application reboots; otherwise the
    /// runtime restarts, then [`ClientEvent::Restarted`]).
    Reboot,
    /// `/3/0/5` Factory Reset was executed (with [`RebootPolicy::EventOnly`] the application resets; otherwise
    /// the runtime De-registers, restores the factory configuration and restarts, then [`ClientEvent::Restarted`]).
    FactoryReset,
    /// The runtime restarted after a Reboot or Factory Reset ([`ClientConfig::reboot_policy`]): the engines are
    /// fresh and registration starts again.
    Restarted {
        /// Reboot or Factory Reset.
        kind: ResetKind,
    },
    /// The `/0/x/12` Bootstrap-Server Account Timeout passed: the Bootstrap-Server account was deleted.
    BootstrapAccountPurged,
    /// A firmware package was downloaded from the Package URI (the Firmware object is now Downloaded).
    FirmwareDownloaded {
        /// The Package URI.
        uri: String,
        /// The package.
        package: Vec<u8>,
    },
    /// A firmware download failed (the Firmware object shows the Update Result).
    FirmwareDownloadFailed {
        /// The Package URI.
        uri: String,
        /// The Update Result code (`/5/0/5`).
        result: i64,
    },
    /// `/5/0/2` Update was executed: install the package, then report with
    /// [`FirmwareUpdate::update_finished`](crate::objects::firmware::FirmwareUpdate::update_finished) through
    /// [`ClientHandle::with_data_model`].
    FirmwareUpdateRequested,
    /// The runtime stopped.
    Stopped,
}

/// Why a [`ClientHandle`] call failed.
#[derive(Debug, Clone, PartialEq, Eq, thiserror::Error)]
pub enum ClientError {
    /// The runtime has stopped.
    #[error("the client runtime has stopped")]
    Stopped,
    /// The registration engine refused (unknown server, not registered, no Bootstrap-Server account...).
    #[error(transparent)]
    Engine(#[from] EngineError),
    /// A data-model operation failed.
    #[error(transparent)]
    Dm(#[from] DmError),
    /// The server is not registered (Send needs a registration).
    #[error("server {0} is not registered")]
    NotRegistered(u16),
    /// No server is registered (an Update to every registered server found none).
    #[error("no server is registered")]
    NoRegistration,
    /// Send is muted for this server (`/1/x/23` is true or absent; write false to allow Send).
    #[error("Send is muted for server {0} (/1/x/23 Mute Send is true or absent)")]
    Muted(u16),
    /// A bootstrap is in progress.
    #[error("a bootstrap is in progress")]
    Bootstrapping,
    /// The paths hold no value to send.
    #[error("nothing to send: the paths hold no values")]
    NothingToSend,
    /// The server answered with an error code.
    #[error("server {ssid} answered {code}")]
    Rejected {
        /// The server.
        ssid: u16,
        /// Its answer.
        code: Code,
    },
    /// The request got no answer (timeout, RST, DTLS failure, endpoint closed).
    #[error("server {ssid}: {reason}")]
    Transport {
        /// The server.
        ssid: u16,
        /// What happened.
        reason: String,
    },
    /// Encoding the payload failed.
    #[error("encoding failed: {0}")]
    Encode(String),
    /// The configuration is unusable.
    #[error("invalid configuration: {0}")]
    Config(String),
}

/// Where one server stands.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct ServerState {
    /// The server.
    pub ssid: u16,
    /// The server URI, when the account has one.
    pub uri: Option<String>,
    /// The engine's view.
    pub status: ServerStatus,
    /// Queue mode in use with this server.
    pub queue_mode: bool,
    /// Queue mode: the client sleeps with this server.
    pub asleep: bool,
    /// Observations this server holds.
    pub observations: usize,
}

/// A snapshot of the runtime.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct ClientStatus {
    /// Every server account the engine knows.
    pub servers: Vec<ServerState>,
    /// The bootstrap.
    pub bootstrap: BootstrapStatus,
}

type DmJob = Box<dyn FnOnce(&mut DataModel) + Send>;

enum Command {
    Send {
        ssid: u16,
        paths: Vec<Path>,
        reply: oneshot::Sender<Result<(), ClientError>>,
    },
    Update {
        ssid: Option<u16>,
        reply: oneshot::Sender<Result<(), ClientError>>,
    },
    Bootstrap {
        reply: oneshot::Sender<Result<(), ClientError>>,
    },
    WithDm(DmJob),
    Status {
        reply: oneshot::Sender<ClientStatus>,
    },
    Shutdown {
        done: oneshot::Sender<()>,
    },
}

/// Entry point.
#[derive(Debug)]
pub struct Client;

impl Client {
    /// Starts the client task with `data_model` (its Objects 0 and 1 hold the accounts) and `config`. Must be
    /// called inside a tokio runtime. Returns the handle and the event channel. Fails when the accounts are
    /// invalid (duplicate or out-of-range SSIDs) or the endpoint name is empty.
    pub fn start(
        data_model: DataModel,
        config: ClientConfig,
    ) -> Result<(ClientHandle, mpsc::UnboundedReceiver<ClientEvent>), ClientError> {
        if config.endpoint.is_empty() {
            return Err(ClientError::Config("the endpoint client name is empty".into()));
        }
        let (cmd_tx, cmd_rx) = mpsc::unbounded_channel();
        let (ev_tx, ev_rx) = mpsc::unbounded_channel();
        let driver = driver::Driver::new(data_model, config, cmd_rx, ev_tx)?;
        tokio::spawn(driver.run());
        Ok((ClientHandle { commands: cmd_tx }, ev_rx))
    }
}

/// The application's side of a running client. Cheap to clone; the client de-registers and stops when
/// [`ClientHandle::shutdown`] is called or the last handle is dropped.
#[derive(Debug, Clone)]
pub struct ClientHandle {
    commands: mpsc::UnboundedSender<Command>,
}

impl ClientHandle {
    async fn call<R>(&self, make: impl FnOnce(oneshot::Sender<R>) -> Command) -> Result<R, ClientError> {
        let (tx, rx) = oneshot::channel();
        self.commands.send(make(tx)).map_err(|_| ClientError::Stopped)?;
        rx.await.map_err(|_| ClientError::Stopped)
    }

    /// Send (digest §6.2): posts the current values under `paths` (resources, instances or objects, not
    /// Security/OSCORE) as SenML to server `ssid`'s `/dp` and waits for the answer. Needs a registration, Mute
    /// Send `/1/x/23` = false and no bootstrap in progress. Not subject to Access Control.
    pub async fn send(&self, ssid: u16, paths: Vec<Path>) -> Result<(), ClientError> {
        self.call(|reply| Command::Send { ssid, paths, reply }).await?
    }

    /// An Update to server `ssid`, or to every registered server with `None` (as `/1/x/8` does; in queue mode
    /// this is the wake-up). Returns once the Update is scheduled; [`ClientError::NoRegistration`] when `None`
    /// finds no registered server.
    pub async fn update(&self, ssid: Option<u16>) -> Result<(), ClientError> {
        self.call(|reply| Command::Update { ssid, reply }).await?
    }

    /// Starts a Client Initiated Bootstrap at once (as `/1/x/9` does). Fails without a Bootstrap-Server account.
    pub async fn bootstrap(&self) -> Result<(), ClientError> {
        self.call(|reply| Command::Bootstrap { reply }).await?
    }

    /// Sets a resource value as the application ([`DataModel::set_value`]): observers are notified.
    pub async fn set_value(&self, path: Path, value: Value) -> Result<(), ClientError> {
        self.with_data_model(move |dm| dm.set_value(&path, value)).await??;
        Ok(())
    }

    /// Reads a node locally ([`DataModel::local_read`]).
    pub async fn read(&self, path: Path) -> Result<Node, ClientError> {
        Ok(self.with_data_model(move |dm| dm.local_read(&path)).await??)
    }

    /// Runs `f` on the data model inside the client task; what it changes and the actions it records are
    /// processed right after (notifications, Updates, ...).
    pub async fn with_data_model<R, F>(&self, f: F) -> Result<R, ClientError>
    where
        R: Send + 'static,
        F: FnOnce(&mut DataModel) -> R + Send + 'static,
    {
        let (tx, rx) = oneshot::channel();
        let job: DmJob = Box::new(move |dm| {
            let _ = tx.send(f(dm));
        });
        self.commands
            .send(Command::WithDm(job))
            .map_err(|_| ClientError::Stopped)?;
        rx.await.map_err(|_| ClientError::Stopped)
    }

    /// Where every server and the bootstrap stand.
    pub async fn status(&self) -> Result<ClientStatus, ClientError> {
        self.call(|reply| Command::Status { reply }).await
    }

    /// De-registers from every registered server (waiting at most [`ClientConfig::shutdown_timeout`]), closes
    /// the endpoints and stops the task. Returns at once if it already stopped.
    pub async fn shutdown(&self) {
        let (done, rx) = oneshot::channel();
        if self.commands.send(Command::Shutdown { done }).is_ok() {
            let _ = rx.await;
        }
    }

    /// True once the task has stopped.
    pub fn is_closed(&self) -> bool {
        self.commands.is_closed()
    }
}
