//! The registration state machine. See the module documentation of [`super`] for the procedures and choices.

use std::collections::VecDeque;

use thiserror::Error;

use super::config::{update_delay_ms, Accounts, BootstrapAccount, EngineConfig, RejectHandling, ServerAccount};
use super::retry::{NextStep, RetryState};
use super::time::Timestamp;

/// Why a Register, Update, De-register or Bootstrap-Request failed.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Hash)]
pub enum Failure {
    /// An error response (the request was explicitly rejected), e.g. `class: 4, detail: 3` for 4.03.
    Rejected {
        /// Response code class (4 or 5).
        class: u8,
        /// Response code detail.
        detail: u8,
    },
    /// No response after all CoAP retransmissions.
    Timeout,
    /// The (D)TLS handshake failed.
    HandshakeFailed,
    /// Any other network error (no route, connection refused, ...).
    NetworkError,
}

impl Failure {
    /// An explicit rejection with code `class.detail`.
    pub const fn rejected(class: u8, detail: u8) -> Self {
        Failure::Rejected { class, detail }
    }

    fn is_code(&self, c: u8, d: u8) -> bool {
        matches!(*self, Failure::Rejected { class, detail } if class == c && detail == d)
    }
}

/// What the engine asks the driver to do, or tells the application. Fetched with
/// [`RegistrationEngine::poll_action`] in the order they were produced.
#[derive(Debug, Clone, PartialEq, Eq)]
pub enum Action {
    /// Send a Register to this server (parameters from [`RegistrationEngine::account`]: lifetime, binding, queue
    /// mode; the full object list as payload), then report with [`RegistrationEngine::register_result`].
    Register {
        /// Short Server ID.
        ssid: u16,
    },
    /// Send an Update to `location`, then report with [`RegistrationEngine::update_result`].
    Update {
        /// Short Server ID.
        ssid: u16,
        /// The Location-Path segments returned by the Register.
        location: Vec<String>,
        /// `Some(lt)` when the lifetime differs from the one the server knows: include `lt=…`.
        lifetime_s: Option<u64>,
        /// Include the complete object list as payload.
        with_payload: bool,
    },
    /// Send a De-register to `location` (and then close the connection), then report with
    /// [`RegistrationEngine::deregister_result`].
    Deregister {
        /// Short Server ID.
        ssid: u16,
        /// The Location-Path segments returned by the Register.
        location: Vec<String>,
    },
    /// Start Client Initiated Bootstrap (send Bootstrap-Request), then report with
    /// [`RegistrationEngine::bootstrap_result`].
    Bootstrap,
    /// Event: the server accepted a Register.
    Registered {
        /// Short Server ID.
        ssid: u16,
        /// The Location-Path segments returned by the server.
        location: Vec<String>,
    },
    /// Event: registration to this server has failed (all sequences exhausted, or an explicit rejection that
    /// short-cuts to bootstrap). The engine does not try this server again until a trigger or a bootstrap.
    RegistrationFailed {
        /// Short Server ID.
        ssid: u16,
    },
    /// Event: this ordered server will not be registered because an earlier one failed with
    /// Registration Failure Block = true.
    RegistrationBlocked {
        /// Short Server ID.
        ssid: u16,
    },
    /// Event: the server was disabled (`/1/x/4`); it stays silent until `until`, then registers again.
    /// Notifications meanwhile are stored or dropped per `/1/x/6` (the application's business).
    Disabled {
        /// Short Server ID.
        ssid: u16,
        /// End of the Disable Timeout.
        until: Timestamp,
    },
    /// Event: a bootstrap finished successfully; the engine restarted with the new accounts.
    Bootstrapped,
    /// Event: every bootstrap attempt failed; the engine makes no further bootstrap attempt by itself.
    BootstrapFailed,
    /// Delete the Bootstrap-Server account (its Security instance) now: its `/0/x/12` Bootstrap-Server Account
    /// Timeout has passed since the last successful bootstrap. The engine has already forgotten the account (no
    /// further bootstrap; `/1/x/9` fails with [`EngineError::NoBootstrapAccount`]).
    PurgeBootstrapAccount,
}

/// Where one server stands (for status displays and tests).
#[derive(Debug, Clone, PartialEq, Eq)]
pub enum ServerStatus {
    /// An ordered server waiting for the servers before it.
    Waiting,
    /// An ordered server blocked by an earlier server's failure.
    Blocked,
    /// The next Register attempt is scheduled.
    RegisterScheduled {
        /// When the attempt starts.
        at: Timestamp,
        /// The communication sequence the attempt belongs to (1-based).
        sequence: u64,
    },
    /// A Register is in flight.
    Registering,
    /// Registered; the next Update (or a retry of a failed one) is due at `next_update`.
    Registered {
        /// Location-Path segments.
        location: Vec<String>,
        /// When the next Update is sent.
        next_update: Timestamp,
        /// When the registration expires on the server.
        expires_at: Timestamp,
    },
    /// Registered, with an Update in flight.
    Updating {
        /// Location-Path segments.
        location: Vec<String>,
    },
    /// A De-register is in flight.
    Deregistering,
    /// Disabled until the given time.
    Disabled {
        /// End of the Disable Timeout.
        until: Timestamp,
    },
    /// Registration failed; nothing more is tried until a trigger or a bootstrap.
    Failed,
    /// Stopped by [`RegistrationEngine::shutdown`].
    Stopped,
}

/// Where the bootstrap stands.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum BootstrapStatus {
    /// No bootstrap is planned.
    Idle,
    /// A Bootstrap-Request is scheduled (hold-off or retry wait).
    Scheduled {
        /// When [`Action::Bootstrap`] is produced.
        at: Timestamp,
    },
    /// A bootstrap is in progress.
    InProgress,
    /// Every attempt failed.
    Failed,
}

/// Errors of the engine's inputs. The engine's state is unchanged when one is returned, except where a method
/// says otherwise.
#[derive(Debug, Clone, PartialEq, Eq, Error)]
pub enum EngineError {
    /// No server account has this Short Server ID.
    #[error("no server account with short server id {0}")]
    UnknownServer(u16),
    /// A Short Server ID outside 1..=65534.
    #[error("short server id {0} is outside 1..=65534")]
    InvalidSsid(u16),
    /// Two accounts share a Short Server ID.
    #[error("short server id {0} appears more than once")]
    DuplicateSsid(u16),
    /// A bootstrap was requested but there is no Bootstrap-Server account (answer 4.05 to `/1/x/9`).
    #[error("no bootstrap-server account")]
    NoBootstrapAccount,
    /// The operation needs a registration to this server and there is none.
    #[error("server {0} is not registered")]
    NotRegistered(u16),
    /// A result was reported for a request the engine has not asked for (stale or duplicate); it was ignored.
    #[error("server {ssid}: no {request} in flight")]
    Unexpected {
        /// Short Server ID.
        ssid: u16,
        /// "Register", "Update" or "De-register".
        request: &'static str,
    },
    /// A bootstrap result was reported while no bootstrap was in progress; it was ignored.
    #[error("no bootstrap in flight")]
    NoBootstrapInFlight,
    /// The engine was shut down.
    #[error("the registration engine has been shut down")]
    ShutDown,
}

#[derive(Debug, Clone, PartialEq, Eq)]
enum Phase {
    Waiting,
    Blocked,
    RegisterAt(Timestamp),
    Registering {
        lifetime_s: u64,
        issued_at: Timestamp,
    },
    Registered {
        next_at: Timestamp,
    },
    Updating {
        lifetime_s: u64,
        issued_at: Timestamp,
        payload: bool,
    },
    Deregistering {
        disable_until: Option<Timestamp>,
    },
    Disabled {
        until: Timestamp,
    },
    Failed,
    Stopped,
}

#[derive(Debug, Clone, PartialEq, Eq)]
struct Registration {
    location: Vec<String>,
    /// The lifetime the server knows.
    lifetime_s: u64,
    expires_at: Timestamp,
}

/// Update causes that arrived while an Update could not be sent at once.
#[derive(Debug, Clone, Copy, Default, PartialEq, Eq)]
struct Wants {
    payload: bool,
    update: bool,
}

impl Wants {
    fn any(&self) -> bool {
        self.payload || self.update
    }
}

#[derive(Debug, Clone)]
struct Server {
    account: ServerAccount,
    phase: Phase,
    /// Present exactly in the phases `Registered` and `Updating`.
    reg: Option<Registration>,
    retry: RetryState,
    /// Registered successfully since boot or the last bootstrap: the Initial Registration Delay no longer applies.
    registered_once: bool,
    wants: Wants,
}

impl Server {
    fn new(account: ServerAccount) -> Self {
        Server {
            account,
            phase: Phase::Waiting,
            reg: None,
            retry: RetryState::default(),
            registered_once: false,
            wants: Wants::default(),
        }
    }

    fn timer(&self) -> Option<Timestamp> {
        match self.phase {
            Phase::RegisterAt(t) => Some(t),
            Phase::Registered { next_at } => Some(match &self.reg {
                Some(r) => next_at.min(r.expires_at),
                None => next_at,
            }),
            Phase::Disabled { until } => Some(until),
            _ => None,
        }
    }
}

#[derive(Debug, Clone, Copy, PartialEq, Eq)]
enum BsPhase {
    Idle,
    Pending(Timestamp),
    InFlight,
    Failed,
}

fn lifetime_ms(lifetime_s: u64) -> u64 {
    lifetime_s.max(1).saturating_mul(1000)
}

fn validate(servers: &[ServerAccount]) -> Result<(), EngineError> {
    for (i, s) in servers.iter().enumerate() {
        if s.ssid == 0 || s.ssid == u16::MAX {
            return Err(EngineError::InvalidSsid(s.ssid));
        }
        if servers.iter().take(i).any(|o| o.ssid == s.ssid) {
            return Err(EngineError::DuplicateSsid(s.ssid));
        }
    }
    Ok(())
}

/// The sans-IO registration engine: feed it `now`, outcomes and triggers; take [`Action`]s with
/// [`poll_action`](Self::poll_action) and call [`handle_timeout`](Self::handle_timeout) at
/// [`poll_timeout`](Self::poll_timeout).
#[derive(Debug, Clone)]
pub struct RegistrationEngine {
    /// In configuration order (ties between simultaneous timers go to the earlier entry).
    servers: Vec<Server>,
    /// Indexes of ordered servers, sorted by (priority order, ssid).
    ordered: Vec<usize>,
    /// Position in `ordered` of the server whose registration the ordered procedure waits for.
    chain_pos: usize,
    chain_blocked: bool,
    bootstrap: Option<BootstrapAccount>,
    bs_phase: BsPhase,
    bs_retry: RetryState,
    /// When the Bootstrap-Server account is purged (`/0/x/12`); deferred while a bootstrap is in flight.
    bs_purge_at: Option<Timestamp>,
    reject_handling: RejectHandling,
    update_margin_s: u64,
    actions: VecDeque<Action>,
    /// Servers removed by a bootstrap whose De-register is still outstanding.
    retired: Vec<u16>,
    now: Timestamp,
    shut_down: bool,
}

impl RegistrationEngine {
    /// Starts the engine at `now` (the start-up decision of digest §3.2): with server accounts, runs the
    /// registration procedures; without any but with a Bootstrap-Server account, schedules a bootstrap after the
    /// Client Hold Off Time; with neither, does nothing.
    pub fn new(config: EngineConfig, now: Timestamp) -> Result<Self, EngineError> {
        validate(&config.servers)?;
        let mut engine = RegistrationEngine {
            servers: Vec::new(),
            ordered: Vec::new(),
            chain_pos: 0,
            chain_blocked: false,
            bootstrap: config.bootstrap,
            bs_phase: BsPhase::Idle,
            bs_retry: RetryState::default(),
            bs_purge_at: None,
            reject_handling: config.reject_handling,
            update_margin_s: config.update_margin_s,
            actions: VecDeque::new(),
            retired: Vec::new(),
            now,
            shut_down: false,
        };
        let empty = config.servers.is_empty();
        engine.install(config.servers, now);
        if empty {
            engine.request_bootstrap(now, false);
        } else if config.bootstrapped {
            engine.start_purge_timer(now);
        }
        engine.drive(now);
        Ok(engine)
    }

    /// The next action or event, oldest first.
    pub fn poll_action(&mut self) -> Option<Action> {
        self.actions.pop_front()
    }

    /// When [`handle_timeout`](Self::handle_timeout) must be called next; `None` = only an input can change
    /// anything. Always later than the latest `now` the engine has seen.
    pub fn poll_timeout(&self) -> Option<Timestamp> {
        let servers = self.servers.iter().filter_map(Server::timer);
        let bs = match self.bs_phase {
            BsPhase::Pending(t) => Some(t),
            _ => None,
        };
        servers.chain(bs).chain(self.purge_timer()).min()
    }

    /// Runs every timer due at `now`.
    pub fn handle_timeout(&mut self, now: Timestamp) {
        let now = self.begin(now);
        self.drive(now);
    }

    /// Reports the outcome of the Register asked for by [`Action::Register`]: `Ok(location)` for 2.01 Created
    /// with its Location-Path segments.
    pub fn register_result(
        &mut self,
        now: Timestamp,
        ssid: u16,
        result: Result<Vec<String>, Failure>,
    ) -> Result<(), EngineError> {
        let now = self.begin(now);
        let r = self.on_register_result(now, ssid, result);
        self.drive(now);
        r
    }

    /// Reports the outcome of the Update asked for by [`Action::Update`]. A 4.xx response (4.04 Not Found,
    /// 4.00 Bad Request, ...) makes the engine Register at once; a timeout, network or handshake error or a
    /// 5.xx response is retried with the server's retry timer while the registration is still alive, and
    /// becomes a Register once the attempts are used up or the lifetime would pass.
    pub fn update_result(&mut self, now: Timestamp, ssid: u16, result: Result<(), Failure>) -> Result<(), EngineError> {
        let now = self.begin(now);
        let r = self.on_update_result(now, ssid, result);
        self.drive(now);
        r
    }

    /// Reports the end of the De-register asked for by [`Action::Deregister`]; any outcome counts as done.
    pub fn deregister_result(
        &mut self,
        now: Timestamp,
        ssid: u16,
        result: Result<(), Failure>,
    ) -> Result<(), EngineError> {
        let _ = result;
        let now = self.begin(now);
        let r = self.on_deregister_result(ssid);
        self.drive(now);
        r
    }

    /// Reports the end of the bootstrap asked for by [`Action::Bootstrap`]: `Ok(accounts)` after
    /// Bootstrap-Finish with the accounts the client now holds, `Err` when the attempt failed. After a success
    /// the engine restarts every procedure with the new accounts (Initial Registration Delays apply again). A
    /// success that leaves no server account counts as a failed attempt. Invalid accounts (duplicate or
    /// out-of-range SSIDs) count as a failed attempt too, and the error is returned.
    pub fn bootstrap_result(&mut self, now: Timestamp, result: Result<Accounts, Failure>) -> Result<(), EngineError> {
        let now = self.begin(now);
        let r = self.on_bootstrap_result(now, result);
        self.drive(now);
        r
    }

    /// `/1/x/8` Registration Update Trigger executed (also the way to wake up in queue mode): sends an Update to
    /// this server, after the one in flight if any. A server whose registration failed starts its registration
    /// procedure again. While a Register is in flight it is a no-op (the Register refreshes the registration).
    /// Fails with [`EngineError::NotRegistered`] while the server waits for its turn or for its next Register
    /// attempt, is being de-registered, is disabled or is blocked.
    pub fn execute_update_trigger(&mut self, now: Timestamp, ssid: u16) -> Result<(), EngineError> {
        let now = self.begin(now);
        let r = self.on_update_trigger(now, ssid);
        self.drive(now);
        r
    }

    /// `/1/x/9` Bootstrap-Request Trigger executed (BsR-2): starts Client Initiated Bootstrap at once, without the
    /// hold-off time. Fails with [`EngineError::NoBootstrapAccount`] when there is no Bootstrap-Server account;
    /// the caller answers the Execute with 4.05 then.
    pub fn execute_bootstrap_trigger(&mut self, now: Timestamp) -> Result<(), EngineError> {
        let now = self.begin(now);
        let r = if self.shut_down {
            Err(EngineError::ShutDown)
        } else if self.request_bootstrap(now, true) {
            Ok(())
        } else {
            Err(EngineError::NoBootstrapAccount)
        };
        self.drive(now);
        r
    }

    /// `/1/x/4` Disable executed: De-register from this server, stay silent for its Disable Timeout (counted from
    /// `now`), then register again. Fails with [`EngineError::NotRegistered`] unless the server is registered.
    pub fn execute_disable(&mut self, now: Timestamp, ssid: u16) -> Result<(), EngineError> {
        let now = self.begin(now);
        let r = self.on_disable(now, ssid);
        self.drive(now);
        r
    }

    /// Objects or object instances were added or removed: every registered server gets an Update with the
    /// object list (coalesced with an Update in flight or a pending retry).
    pub fn objects_changed(&mut self, now: Timestamp) {
        let now = self.begin(now);
        for i in 0..self.servers.len() {
            let s = &mut self.servers[i];
            match s.phase {
                Phase::Registered { .. } if s.retry.failed == 0 => {
                    s.wants.payload = true;
                    self.issue_update(i, now);
                }
                Phase::Registered { .. } | Phase::Updating { .. } | Phase::Registering { .. } => {
                    s.wants.payload = true;
                }
                _ => {}
            }
        }
        self.drive(now);
    }

    /// `/1/x/1` Lifetime of this server changed: the next Register or Update carries it; a registered server gets
    /// an Update with the new lifetime at once.
    pub fn lifetime_changed(&mut self, now: Timestamp, ssid: u16, lifetime_s: u64) -> Result<(), EngineError> {
        let now = self.begin(now);
        let r = self.index(ssid).map(|i| {
            let s = &mut self.servers[i];
            s.account.lifetime_s = lifetime_s;
            let differs = s.reg.as_ref().is_some_and(|r| r.lifetime_s != lifetime_s);
            if matches!(s.phase, Phase::Registered { .. }) && s.retry.failed == 0 && differs {
                self.issue_update(i, now);
            }
        });
        self.drive(now);
        r
    }

    /// Stops everything: De-register from every registered server and never act again (results of the
    /// De-registers are still accepted).
    pub fn shutdown(&mut self, now: Timestamp) {
        let now = self.begin(now);
        self.shut_down = true;
        self.chain_blocked = true;
        self.bs_phase = BsPhase::Idle;
        self.bs_purge_at = None;
        for i in 0..self.servers.len() {
            let s = &mut self.servers[i];
            s.wants = Wants::default();
            match (s.phase.clone(), s.reg.take()) {
                (Phase::Registered { .. } | Phase::Updating { .. }, Some(reg)) => {
                    s.phase = Phase::Deregistering { disable_until: None };
                    let ssid = s.account.ssid;
                    self.emit(Action::Deregister {
                        ssid,
                        location: reg.location,
                    });
                }
                (Phase::Deregistering { .. }, _) => s.phase = Phase::Deregistering { disable_until: None },
                _ => s.phase = Phase::Stopped,
            }
        }
        self.drive(now);
    }

    /// The account of this server as the engine currently has it (lifetime updated by
    /// [`lifetime_changed`](Self::lifetime_changed)).
    pub fn account(&self, ssid: u16) -> Option<&ServerAccount> {
        self.servers.iter().find(|s| s.account.ssid == ssid).map(|s| &s.account)
    }

    /// The Short Server IDs of all accounts, in configuration order.
    pub fn ssids(&self) -> Vec<u16> {
        self.servers.iter().map(|s| s.account.ssid).collect()
    }

    /// The current Bootstrap-Server account.
    pub fn bootstrap_account(&self) -> Option<&BootstrapAccount> {
        self.bootstrap.as_ref()
    }

    /// Where this server stands; `None` for an unknown SSID.
    pub fn status(&self, ssid: u16) -> Option<ServerStatus> {
        let s = self.servers.iter().find(|s| s.account.ssid == ssid)?;
        Some(match (&s.phase, &s.reg) {
            (Phase::Waiting, _) => ServerStatus::Waiting,
            (Phase::Blocked, _) => ServerStatus::Blocked,
            (Phase::RegisterAt(at), _) => ServerStatus::RegisterScheduled {
                at: *at,
                sequence: s.retry.sequence,
            },
            (Phase::Registering { .. }, _) => ServerStatus::Registering,
            (Phase::Registered { next_at }, Some(reg)) => ServerStatus::Registered {
                location: reg.location.clone(),
                next_update: *next_at,
                expires_at: reg.expires_at,
            },
            (Phase::Updating { .. }, Some(reg)) => ServerStatus::Updating {
                location: reg.location.clone(),
            },
            (Phase::Registered { .. } | Phase::Updating { .. }, None) => ServerStatus::Failed,
            (Phase::Deregistering { .. }, _) => ServerStatus::Deregistering,
            (Phase::Disabled { until }, _) => ServerStatus::Disabled { until: *until },
            (Phase::Failed, _) => ServerStatus::Failed,
            (Phase::Stopped, _) => ServerStatus::Stopped,
        })
    }

    /// When the Bootstrap-Server account will be purged (`/0/x/12` counted from the last successful bootstrap);
    /// `None` when it is kept (no timeout, no bootstrap yet, already purged). A purge due while a bootstrap is in
    /// flight waits for its end: a success restarts the timer with the new account's timeout, a failure purges
    /// at once.
    pub fn bootstrap_purge_at(&self) -> Option<Timestamp> {
        self.bs_purge_at
    }

    /// Where the bootstrap stands.
    pub fn bootstrap_status(&self) -> BootstrapStatus {
        match self.bs_phase {
            BsPhase::Idle => BootstrapStatus::Idle,
            BsPhase::Pending(at) => BootstrapStatus::Scheduled { at },
            BsPhase::InFlight => BootstrapStatus::InProgress,
            BsPhase::Failed => BootstrapStatus::Failed,
        }
    }

    // ----- internals -----

    /// Makes `now` monotonic: a `now` earlier than one already seen is taken as the latest one.
    fn begin(&mut self, now: Timestamp) -> Timestamp {
        if now > self.now {
            self.now = now;
        }
        self.now
    }

    fn emit(&mut self, action: Action) {
        self.actions.push_back(action);
    }

    fn index(&self, ssid: u16) -> Result<usize, EngineError> {
        self.servers
            .iter()
            .position(|s| s.account.ssid == ssid)
            .ok_or(EngineError::UnknownServer(ssid))
    }

    /// Replaces the server accounts and starts the procedures: unordered servers at once (after their initial
    /// delay), the first ordered server after its initial delay; the other ordered servers wait their turn.
    fn install(&mut self, servers: Vec<ServerAccount>, now: Timestamp) {
        let old = std::mem::take(&mut self.servers);
        for s in old {
            if servers.iter().any(|n| n.ssid == s.account.ssid) {
                continue;
            }
            let ssid = s.account.ssid;
            match (s.phase, s.reg) {
                (Phase::Registered { .. } | Phase::Updating { .. }, Some(reg)) => {
                    self.retired.push(ssid);
                    self.emit(Action::Deregister {
                        ssid,
                        location: reg.location,
                    });
                }
                (Phase::Deregistering { .. }, _) => self.retired.push(ssid),
                _ => {}
            }
        }
        self.servers = servers.into_iter().map(Server::new).collect();
        let mut ordered: Vec<usize> = (0..self.servers.len())
            .filter(|&i| self.servers[i].account.is_ordered())
            .collect();
        ordered.sort_by_key(|&i| (self.servers[i].account.priority_order, self.servers[i].account.ssid));
        self.ordered = ordered;
        self.chain_pos = 0;
        self.chain_blocked = false;
        for i in 0..self.servers.len() {
            if !self.servers[i].account.is_ordered() {
                self.start_procedure(i, now);
            }
        }
        if let Some(&first) = self.ordered.first() {
            self.start_procedure(first, now);
        }
    }

    /// Starts a fresh registration procedure for server `i`: first attempt after the Initial Registration Delay
    /// if the server has not registered since boot or the last bootstrap, otherwise at once.
    fn start_procedure(&mut self, i: usize, now: Timestamp) {
        let s = &mut self.servers[i];
        s.retry = RetryState::default();
        s.reg = None;
        let delay = if s.registered_once {
            0
        } else {
            s.account.initial_delay_s
        };
        s.phase = Phase::RegisterAt(now.saturating_add_secs(delay));
    }

    /// Fires every timer due at `now`, earliest first (ties: servers in configuration order, then the purge of
    /// the Bootstrap-Server account, then bootstrap).
    fn drive(&mut self, now: Timestamp) {
        #[derive(Clone, Copy)]
        enum Due {
            Server(usize),
            Purge,
            Bootstrap,
        }
        loop {
            let mut best: Option<(Timestamp, Due)> = None;
            let mut consider = |t: Timestamp, d: Due| {
                if t <= now && !matches!(best, Some((b, _)) if b <= t) {
                    best = Some((t, d));
                }
            };
            for (i, s) in self.servers.iter().enumerate() {
                if let Some(t) = s.timer() {
                    consider(t, Due::Server(i));
                }
            }
            if let Some(t) = self.purge_timer() {
                consider(t, Due::Purge);
            }
            if let BsPhase::Pending(t) = self.bs_phase {
                consider(t, Due::Bootstrap);
            }
            match best {
                None => break,
                Some((_, Due::Server(i))) => self.fire_server(i, now),
                Some((_, Due::Purge)) => self.purge_bootstrap_account(),
                Some((_, Due::Bootstrap)) => self.fire_bootstrap(),
            }
        }
    }

    /// The purge timer as a wake-up: not while a bootstrap is in flight (the account is in use).
    fn purge_timer(&self) -> Option<Timestamp> {
        match self.bs_phase {
            BsPhase::InFlight => None,
            _ => self.bs_purge_at,
        }
    }

    /// (Re)starts the Bootstrap-Server Account Timeout at `now` with the current account's `/0/x/12`.
    fn start_purge_timer(&mut self, now: Timestamp) {
        self.bs_purge_at = self
            .bootstrap
            .and_then(|b| b.purge_delay_ms())
            .map(|ms| now.saturating_add_millis(ms));
    }

    /// The Bootstrap-Server Account Timeout passed: forget the account, drop a planned bootstrap, and tell the
    /// driver to delete the Security instance.
    fn purge_bootstrap_account(&mut self) {
        self.bs_purge_at = None;
        self.bootstrap = None;
        self.bs_retry = RetryState::default();
        if self.bs_phase != BsPhase::InFlight {
            self.bs_phase = BsPhase::Idle;
        }
        self.emit(Action::PurgeBootstrapAccount);
    }

    fn fire_server(&mut self, i: usize, now: Timestamp) {
        match self.servers[i].phase {
            Phase::RegisterAt(_) => self.issue_register(i, now),
            Phase::Registered { .. } => {
                let s = &mut self.servers[i];
                let expired = !matches!(&s.reg, Some(r) if now < r.expires_at);
                if expired {
                    // The lifetime passed without a successful Update: only a new Register helps.
                    s.reg = None;
                    s.retry = RetryState::default();
                    self.issue_register(i, now);
                } else {
                    self.issue_update(i, now);
                }
            }
            Phase::Disabled { .. } => self.start_procedure(i, now),
            _ => {}
        }
    }

    fn issue_register(&mut self, i: usize, now: Timestamp) {
        let s = &mut self.servers[i];
        s.retry.on_attempt();
        s.wants = Wants::default();
        s.reg = None;
        s.phase = Phase::Registering {
            lifetime_s: s.account.lifetime_s,
            issued_at: now,
        };
        let ssid = s.account.ssid;
        self.emit(Action::Register { ssid });
    }

    fn issue_update(&mut self, i: usize, now: Timestamp) {
        let s = &mut self.servers[i];
        let Some(reg) = &s.reg else {
            return;
        };
        let lifetime = (s.account.lifetime_s != reg.lifetime_s).then_some(s.account.lifetime_s);
        let payload = s.wants.payload;
        let location = reg.location.clone();
        s.phase = Phase::Updating {
            lifetime_s: lifetime.unwrap_or(reg.lifetime_s),
            issued_at: now,
            payload,
        };
        s.wants = Wants::default();
        s.retry.on_attempt();
        let ssid = s.account.ssid;
        self.emit(Action::Update {
            ssid,
            location,
            lifetime_s: lifetime,
            with_payload: payload,
        });
    }

    fn fire_bootstrap(&mut self) {
        self.bs_retry.on_attempt();
        self.bs_phase = BsPhase::InFlight;
        self.emit(Action::Bootstrap);
    }

    /// Plans a bootstrap (after the hold-off time, or at once when `immediate`); coalesces with one already
    /// planned or in progress. Returns false when there is no Bootstrap-Server account.
    fn request_bootstrap(&mut self, now: Timestamp, immediate: bool) -> bool {
        if self.shut_down {
            return false;
        }
        let Some(bs) = self.bootstrap else {
            return false;
        };
        match self.bs_phase {
            BsPhase::InFlight => {}
            BsPhase::Pending(at) => {
                if immediate && at > now {
                    self.bs_phase = BsPhase::Pending(now);
                }
            }
            BsPhase::Idle | BsPhase::Failed => {
                self.bs_retry = RetryState::default();
                let at = if immediate {
                    now
                } else {
                    now.saturating_add_secs(bs.hold_off_s)
                };
                self.bs_phase = BsPhase::Pending(at);
            }
        }
        true
    }

    fn bootstrap_failed(&mut self, now: Timestamp) {
        let next = match self.bootstrap {
            Some(bs) => self.bs_retry.on_failure(&bs.retry, now),
            None => NextStep::Exhausted,
        };
        match next {
            NextStep::RetryAt(t) | NextStep::NewSequenceAt(t) => self.bs_phase = BsPhase::Pending(t),
            NextStep::Exhausted => {
                self.bs_phase = BsPhase::Failed;
                self.emit(Action::BootstrapFailed);
            }
        }
    }

    /// Whether an explicit rejection ends the registration to server `i` at once (digest §12 #1).
    fn rejection_short_cuts(&self, i: usize, failure: &Failure) -> bool {
        if !matches!(failure, Failure::Rejected { .. }) {
            return false;
        }
        if !self.servers[i].account.bootstrap_on_failure || self.bootstrap.is_none() {
            return false;
        }
        match self.reject_handling {
            RejectHandling::BootstrapImmediately => true,
            RejectHandling::CountAsFailedAttempt => failure.is_code(4, 3) || failure.is_code(4, 12),
        }
    }

    fn on_register_result(
        &mut self,
        now: Timestamp,
        ssid: u16,
        result: Result<Vec<String>, Failure>,
    ) -> Result<(), EngineError> {
        let i = self.index(ssid)?;
        let Phase::Registering { lifetime_s, issued_at } = self.servers[i].phase else {
            return Err(EngineError::Unexpected {
                ssid,
                request: "Register",
            });
        };
        match result {
            Ok(location) => {
                let margin = self.update_margin_s;
                let s = &mut self.servers[i];
                s.registered_once = true;
                s.retry = RetryState::default();
                s.reg = Some(Registration {
                    location: location.clone(),
                    lifetime_s,
                    expires_at: issued_at.saturating_add_millis(lifetime_ms(lifetime_s)),
                });
                s.phase = Phase::Registered {
                    next_at: issued_at.saturating_add_millis(update_delay_ms(lifetime_s, margin)),
                };
                let follow_up = s.wants.any() || s.account.lifetime_s != lifetime_s;
                self.emit(Action::Registered { ssid, location });
                if follow_up {
                    self.issue_update(i, now);
                }
                self.chain_settled(i, now, true);
            }
            Err(failure) => {
                if self.rejection_short_cuts(i, &failure) {
                    self.give_up(i, now);
                } else {
                    let s = &mut self.servers[i];
                    match s.retry.on_failure(&s.account.retry, now) {
                        NextStep::RetryAt(t) | NextStep::NewSequenceAt(t) => s.phase = Phase::RegisterAt(t),
                        NextStep::Exhausted => self.give_up(i, now),
                    }
                }
            }
        }
        Ok(())
    }

    /// Registration to server `i` has failed.
    fn give_up(&mut self, i: usize, now: Timestamp) {
        let s = &mut self.servers[i];
        s.phase = Phase::Failed;
        s.reg = None;
        s.wants = Wants::default();
        let ssid = s.account.ssid;
        let bootstrap = s.account.bootstrap_on_failure;
        self.emit(Action::RegistrationFailed { ssid });
        if bootstrap {
            self.request_bootstrap(now, false);
        }
        self.chain_settled(i, now, false);
    }

    /// Server `i` completed its registration (successfully or not); if the ordered procedure was waiting for it,
    /// move on to the next server or block the rest.
    fn chain_settled(&mut self, i: usize, now: Timestamp, success: bool) {
        if self.chain_blocked || self.ordered.get(self.chain_pos) != Some(&i) {
            return;
        }
        self.chain_pos += 1;
        if !success && self.servers[i].account.failure_block {
            self.chain_blocked = true;
            let rest: Vec<usize> = self.ordered.get(self.chain_pos..).unwrap_or_default().to_vec();
            for j in rest {
                if self.servers[j].phase == Phase::Waiting {
                    self.servers[j].phase = Phase::Blocked;
                    let ssid = self.servers[j].account.ssid;
                    self.emit(Action::RegistrationBlocked { ssid });
                }
            }
        } else if let Some(&next) = self.ordered.get(self.chain_pos) {
            if self.servers[next].phase == Phase::Waiting {
                self.start_procedure(next, now);
            }
        }
    }

    fn on_update_result(&mut self, now: Timestamp, ssid: u16, result: Result<(), Failure>) -> Result<(), EngineError> {
        let i = self.index(ssid)?;
        let margin = self.update_margin_s;
        let s = &mut self.servers[i];
        let (
            Phase::Updating {
                lifetime_s,
                issued_at,
                payload,
            },
            Some(reg),
        ) = (s.phase.clone(), s.reg.as_mut())
        else {
            return Err(EngineError::Unexpected {
                ssid,
                request: "Update",
            });
        };
        match result {
            Ok(()) => {
                reg.lifetime_s = lifetime_s;
                reg.expires_at = issued_at.saturating_add_millis(lifetime_ms(lifetime_s));
                s.retry = RetryState::default();
                s.phase = Phase::Registered {
                    next_at: issued_at.saturating_add_millis(update_delay_ms(lifetime_s, margin)),
                };
                if s.wants.any() || s.account.lifetime_s != lifetime_s {
                    self.issue_update(i, now);
                }
            }
            Err(Failure::Rejected { class: 4, .. }) => {
                // 4.04: the server no longer knows the registration; other 4.xx: the same Update would be
                // rejected again. A full Register fixes both.
                s.reg = None;
                s.retry = RetryState::default();
                s.wants = Wants::default();
                s.phase = Phase::RegisterAt(now);
            }
            Err(_) => {
                s.wants.payload |= payload;
                s.retry.failed = s.retry.failed.saturating_add(1);
                let next = now.saturating_add_millis(s.account.retry.retry_delay_ms(s.retry.failed));
                let expires = reg.expires_at;
                if s.retry.failed < s.account.retry.attempts_per_sequence() && next < expires {
                    s.phase = Phase::Registered { next_at: next };
                } else {
                    s.reg = None;
                    s.retry = RetryState::default();
                    s.wants = Wants::default();
                    s.phase = Phase::RegisterAt(next.min(expires).max(now));
                }
            }
        }
        Ok(())
    }

    fn on_deregister_result(&mut self, ssid: u16) -> Result<(), EngineError> {
        if let Ok(i) = self.index(ssid) {
            let s = &mut self.servers[i];
            if let Phase::Deregistering { disable_until } = s.phase {
                s.phase = match disable_until {
                    Some(until) => Phase::Disabled { until },
                    None => Phase::Stopped,
                };
                return Ok(());
            }
        }
        if let Some(pos) = self.retired.iter().position(|&r| r == ssid) {
            self.retired.swap_remove(pos);
            return Ok(());
        }
        self.index(ssid)?;
        Err(EngineError::Unexpected {
            ssid,
            request: "De-register",
        })
    }

    fn on_bootstrap_result(&mut self, now: Timestamp, result: Result<Accounts, Failure>) -> Result<(), EngineError> {
        if self.bs_phase != BsPhase::InFlight {
            return Err(EngineError::NoBootstrapInFlight);
        }
        let accounts = match result {
            Ok(a) => a,
            Err(_) => {
                self.bootstrap_failed(now);
                return Ok(());
            }
        };
        if let Err(e) = validate(&accounts.servers) {
            self.bootstrap_failed(now);
            return Err(e);
        }
        self.emit(Action::Bootstrapped);
        self.bootstrap = accounts.bootstrap;
        self.bs_phase = BsPhase::Idle;
        let empty = accounts.servers.is_empty();
        self.install(accounts.servers, now);
        if empty {
            // Nothing to register to: the bootstrap did not achieve its purpose (and the Bootstrap-Server
            // account, the only way out, is not purged).
            self.bs_purge_at = None;
            self.bootstrap_failed(now);
        } else {
            self.bs_retry = RetryState::default();
            // §3.3: the Bootstrap-Server Account Timeout counts from this successful bootstrap.
            self.start_purge_timer(now);
        }
        Ok(())
    }

    fn on_update_trigger(&mut self, now: Timestamp, ssid: u16) -> Result<(), EngineError> {
        let i = self.index(ssid)?;
        if self.shut_down {
            return Err(EngineError::ShutDown);
        }
        let s = &mut self.servers[i];
        match s.phase {
            Phase::Registered { .. } if s.retry.failed == 0 => {
                s.wants.update = true;
                self.issue_update(i, now);
            }
            // Retry wait of a failed Update: the retry carries it. In flight: one more Update afterwards.
            Phase::Registered { .. } | Phase::Updating { .. } => s.wants.update = true,
            // The Register in flight refreshes the registration anyway.
            Phase::Registering { .. } => {}
            Phase::Failed => self.start_procedure(i, now),
            _ => return Err(EngineError::NotRegistered(ssid)),
        }
        Ok(())
    }

    fn on_disable(&mut self, now: Timestamp, ssid: u16) -> Result<(), EngineError> {
        let i = self.index(ssid)?;
        if self.shut_down {
            return Err(EngineError::ShutDown);
        }
        let s = &mut self.servers[i];
        if !matches!(s.phase, Phase::Registered { .. } | Phase::Updating { .. }) {
            return Err(EngineError::NotRegistered(ssid));
        }
        let Some(reg) = s.reg.take() else {
            return Err(EngineError::NotRegistered(ssid));
        };
        let until = now.saturating_add_secs(s.account.disable_timeout_s);
        s.phase = Phase::Deregistering {
            disable_until: Some(until),
        };
        s.retry = RetryState::default();
        s.wants = Wants::default();
        self.emit(Action::Deregister {
            ssid,
            location: reg.location,
        });
        self.emit(Action::Disabled { ssid, until });
        Ok(())
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::registration::config::{RetryPolicy, DEFAULT_UPDATE_MARGIN_S};

    // ----- harness: a virtual clock and scripted peers -----

    /// Seconds to milliseconds (the log is in ms).
    fn t(secs: u64) -> u64 {
        secs * 1000
    }

    fn ts(secs: u64) -> Timestamp {
        Timestamp::from_secs(secs)
    }

    fn loc(ssid: u16) -> Vec<String> {
        vec!["rd".to_owned(), format!("r{ssid}")]
    }

    fn register(ssid: u16) -> Action {
        Action::Register { ssid }
    }

    fn registered(ssid: u16) -> Action {
        Action::Registered {
            ssid,
            location: loc(ssid),
        }
    }

    fn failed(ssid: u16) -> Action {
        Action::RegistrationFailed { ssid }
    }

    fn update(ssid: u16, lifetime_s: Option<u64>, with_payload: bool) -> Action {
        Action::Update {
            ssid,
            location: loc(ssid),
            lifetime_s,
            with_payload,
        }
    }

    fn deregister(ssid: u16) -> Action {
        Action::Deregister {
            ssid,
            location: loc(ssid),
        }
    }

    /// What the scripted peer answers to a request.
    #[derive(Debug, Clone)]
    enum Reply {
        Reg(Result<Vec<String>, Failure>),
        Upd(Result<(), Failure>),
        Dereg,
        Bs(Result<Accounts, Failure>),
        /// Never answer.
        Hang,
    }

    /// Answers every Register/Update/De-register with success; bootstrap hangs.
    fn all_ok(_: Timestamp, a: &Action) -> Reply {
        match a {
            Action::Register { ssid } => Reply::Reg(Ok(loc(*ssid))),
            Action::Update { .. } => Reply::Upd(Ok(())),
            Action::Deregister { .. } => Reply::Dereg,
            _ => Reply::Hang,
        }
    }

    struct Sim {
        e: RegistrationEngine,
        now: Timestamp,
        latency_ms: u64,
        /// Replies not yet delivered: (delivery time, ssid, reply), delivered FIFO among equal times.
        pending: Vec<(Timestamp, u16, Reply)>,
        /// Every action with the time (ms) it was produced.
        log: Vec<(u64, Action)>,
    }

    impl Sim {
        fn new(cfg: EngineConfig) -> Self {
            Sim {
                e: RegistrationEngine::new(cfg, Timestamp::ZERO).expect("valid config"),
                now: Timestamp::ZERO,
                latency_ms: 0,
                pending: Vec::new(),
                log: Vec::new(),
            }
        }

        fn drain(&mut self) -> Vec<Action> {
            let mut out = Vec::new();
            while let Some(a) = self.e.poll_action() {
                self.log.push((self.now.as_millis(), a.clone()));
                out.push(a);
            }
            out
        }

        /// Runs the virtual clock up to `limit_s` seconds, answering requests with `peer` after `latency_ms`.
        fn run(&mut self, limit_s: u64, mut peer: impl FnMut(Timestamp, &Action) -> Reply) {
            let limit = ts(limit_s);
            loop {
                for a in self.drain() {
                    let ssid = match &a {
                        Action::Register { ssid } | Action::Update { ssid, .. } | Action::Deregister { ssid, .. } => {
                            *ssid
                        }
                        Action::Bootstrap => 0,
                        _ => continue,
                    };
                    let reply = peer(self.now, &a);
                    if !matches!(reply, Reply::Hang) {
                        self.pending
                            .push((self.now.saturating_add_millis(self.latency_ms), ssid, reply));
                    }
                }
                let next_reply = self.pending.iter().map(|p| p.0).min();
                let next_timer = self.e.poll_timeout();
                if let Some(tm) = next_timer {
                    assert!(tm > self.now, "timer {tm:?} not after now {:?}", self.now);
                }
                let Some(next) = next_reply.into_iter().chain(next_timer).min() else {
                    break;
                };
                if next > limit {
                    break;
                }
                self.now = next;
                if next_reply == Some(next) {
                    let pos = self.pending.iter().position(|p| p.0 == next).expect("reply due");
                    let (_, ssid, reply) = self.pending.remove(pos);
                    self.deliver(ssid, reply);
                } else {
                    self.e.handle_timeout(next);
                }
            }
        }

        fn deliver(&mut self, ssid: u16, reply: Reply) {
            let now = self.now;
            match reply {
                Reply::Reg(r) => self.e.register_result(now, ssid, r).expect("register in flight"),
                Reply::Upd(r) => self.e.update_result(now, ssid, r).expect("update in flight"),
                Reply::Dereg => self
                    .e
                    .deregister_result(now, ssid, Ok(()))
                    .expect("de-register in flight"),
                Reply::Bs(r) => self.e.bootstrap_result(now, r).expect("bootstrap in flight"),
                Reply::Hang => {}
            }
        }

        /// Moves the clock to `secs` (no timer may be due before it).
        fn at(&mut self, secs: u64) -> Timestamp {
            let now = ts(secs);
            assert!(now >= self.now);
            if let Some(tm) = self.e.poll_timeout() {
                assert!(tm >= now, "timer at {tm:?} would be skipped");
            }
            self.now = now;
            now
        }

        fn log_since(&self, from: usize) -> Vec<(u64, Action)> {
            self.log[from..].to_vec()
        }
    }

    fn cfg(servers: Vec<ServerAccount>, bs: Option<BootstrapAccount>) -> EngineConfig {
        EngineConfig::new(servers, bs)
    }

    fn bs(hold_off_s: u64) -> Option<BootstrapAccount> {
        Some(BootstrapAccount::new(Some(hold_off_s)))
    }

    fn retry(retry_count: u64, retry_timer_s: u64, seq_delay_s: u64, seq_retry_count: u64) -> RetryPolicy {
        RetryPolicy {
            retry_count,
            retry_timer_s,
            seq_delay_s,
            seq_retry_count,
        }
    }

    fn fail_registers(f: Failure) -> impl FnMut(Timestamp, &Action) -> Reply {
        move |now, a| match a {
            Action::Register { .. } => Reply::Reg(Err(f)),
            _ => all_ok(now, a),
        }
    }

    // ----- retries, sequences, fall-back -----

    #[test]
    fn defaults_five_attempts_then_failure_and_bootstrap() {
        let mut sim = Sim::new(cfg(vec![ServerAccount::new(1, 300)], bs(0)));
        sim.run(1_000_000, fail_registers(Failure::Timeout));
        assert_eq!(
            sim.log,
            [
                (t(0), register(1)),
                (t(60), register(1)),
                (t(180), register(1)),
                (t(420), register(1)),
                (t(900), register(1)),
                (t(900), failed(1)),
                (t(900), Action::Bootstrap),
            ]
        );
        assert_eq!(sim.e.status(1), Some(ServerStatus::Failed));
        assert_eq!(sim.e.bootstrap_status(), BootstrapStatus::InProgress);
        assert_eq!(sim.e.poll_timeout(), None);
    }

    #[test]
    fn waits_count_from_the_reported_failure_and_hold_off_applies() {
        // Each Register times out 93 s after it was sent; the Client Hold Off Time is 30 s.
        let mut sim = Sim::new(cfg(vec![ServerAccount::new(1, 300)], bs(30)));
        sim.latency_ms = 93_000;
        sim.run(1_000_000, fail_registers(Failure::Timeout));
        assert_eq!(
            sim.log,
            [
                (t(0), register(1)),
                (t(153), register(1)),
                (t(366), register(1)),
                (t(699), register(1)),
                (t(1272), register(1)),
                (t(1365), failed(1)),
                (t(1395), Action::Bootstrap),
            ]
        );
    }

    #[test]
    fn three_sequences_separated_by_the_sequence_delay() {
        let acc = ServerAccount {
            retry: retry(5, 60, 3600, 3),
            bootstrap_on_failure: false,
            ..ServerAccount::new(1, 300)
        };
        let mut sim = Sim::new(cfg(vec![acc], bs(0)));
        sim.run(3599, fail_registers(Failure::NetworkError));
        assert_eq!(
            sim.e.status(1),
            Some(ServerStatus::RegisterScheduled {
                at: ts(4500),
                sequence: 2
            })
        );
        sim.run(1_000_000, fail_registers(Failure::NetworkError));
        let times: Vec<u64> = sim
            .log
            .iter()
            .filter(|(_, a)| *a == register(1))
            .map(|(tm, _)| *tm)
            .collect();
        assert_eq!(
            times,
            [0, 60, 180, 420, 900, 4500, 4560, 4680, 4920, 5400, 9000, 9060, 9180, 9420, 9900].map(t)
        );
        assert_eq!(sim.log.last(), Some(&(t(9900), failed(1))));
        // /1/x/16 = false: no bootstrap, nothing more to do.
        assert!(!sim.log.iter().any(|(_, a)| *a == Action::Bootstrap));
        assert_eq!(sim.e.bootstrap_status(), BootstrapStatus::Idle);
        assert_eq!(sim.e.poll_timeout(), None);
    }

    #[test]
    fn max_value_sequence_delay_means_a_single_sequence() {
        for never in [u32::MAX as u64, u64::MAX] {
            let acc = ServerAccount {
                retry: retry(2, 10, never, 3),
                bootstrap_on_failure: false,
                ..ServerAccount::new(1, 300)
            };
            let mut sim = Sim::new(cfg(vec![acc], None));
            sim.run(u64::MAX / 1000, fail_registers(Failure::Timeout));
            assert_eq!(sim.log, [(t(0), register(1)), (t(10), register(1)), (t(10), failed(1))]);
        }
    }

    #[test]
    fn bootstrap_on_failure_false_gives_up_and_a_trigger_restarts() {
        let acc = ServerAccount {
            bootstrap_on_failure: false,
            initial_delay_s: 20,
            ..ServerAccount::new(1, 300)
        };
        let mut sim = Sim::new(cfg(vec![acc], bs(0)));
        sim.run(100_000, fail_registers(Failure::HandshakeFailed));
        assert_eq!(
            sim.log,
            [
                (t(20), register(1)),
                (t(80), register(1)),
                (t(200), register(1)),
                (t(440), register(1)),
                (t(920), register(1)),
                (t(920), failed(1)),
            ]
        );
        assert_eq!(sim.e.poll_timeout(), None);
        // The next trigger starts over; the server never registered, so the initial delay still applies.
        let now = sim.at(5000);
        sim.e.execute_update_trigger(now, 1).unwrap();
        let mark = sim.log.len();
        sim.run(5100, all_ok);
        assert_eq!(sim.log_since(mark), [(t(5020), register(1)), (t(5020), registered(1))]);
    }

    // ----- ordering, initial delay, failure block -----

    #[test]
    fn ordered_servers_register_one_after_another_with_their_delays() {
        let a = |ssid, prio, delay| ServerAccount {
            priority_order: Some(prio),
            initial_delay_s: delay,
            ..ServerAccount::new(ssid, 86_400)
        };
        // Configuration order differs from the priority order.
        let mut sim = Sim::new(cfg(vec![a(3, 30, 11), a(1, 10, 5), a(2, 20, 7)], bs(0)));
        assert_eq!(sim.e.status(2), Some(ServerStatus::Waiting));
        sim.latency_ms = 1000;
        sim.run(100, all_ok);
        assert_eq!(
            sim.log,
            [
                (t(5), register(1)),
                (t(6), registered(1)),
                (t(13), register(2)),
                (t(14), registered(2)),
                (t(25), register(3)),
                (t(26), registered(3)),
            ]
        );
    }

    #[test]
    fn equal_priorities_go_by_ssid() {
        let a = |ssid| ServerAccount {
            priority_order: Some(1),
            ..ServerAccount::new(ssid, 86_400)
        };
        let mut sim = Sim::new(cfg(vec![a(9), a(4)], None));
        sim.run(10, all_ok);
        assert_eq!(
            sim.log,
            [
                (0, register(4)),
                (0, registered(4)),
                (0, register(9)),
                (0, registered(9))
            ]
        );
    }

    #[test]
    fn failure_block_true_blocks_the_rest() {
        let first = ServerAccount {
            priority_order: Some(1),
            failure_block: true,
            bootstrap_on_failure: false,
            retry: retry(2, 10, 86_400, 1),
            ..ServerAccount::new(1, 300)
        };
        let other = |ssid, prio| ServerAccount {
            priority_order: Some(prio),
            ..ServerAccount::new(ssid, 300)
        };
        let mut sim = Sim::new(cfg(vec![first, other(2, 2), other(3, 3)], bs(0)));
        sim.run(100_000, fail_registers(Failure::Timeout));
        assert_eq!(
            sim.log,
            [
                (t(0), register(1)),
                (t(10), register(1)),
                (t(10), failed(1)),
                (t(10), Action::RegistrationBlocked { ssid: 2 }),
                (t(10), Action::RegistrationBlocked { ssid: 3 }),
            ]
        );
        assert_eq!(sim.e.status(3), Some(ServerStatus::Blocked));
        assert_eq!(
            sim.e.execute_update_trigger(sim.now, 2),
            Err(EngineError::NotRegistered(2))
        );
        assert_eq!(sim.e.poll_timeout(), None);
    }

    #[test]
    fn failure_block_false_continues_after_all_sequences_of_the_failing_server() {
        let first = ServerAccount {
            priority_order: Some(1),
            bootstrap_on_failure: false,
            retry: retry(2, 10, 100, 2),
            ..ServerAccount::new(1, 86_400)
        };
        let second = ServerAccount {
            priority_order: Some(2),
            initial_delay_s: 5,
            ..ServerAccount::new(2, 86_400)
        };
        let mut sim = Sim::new(cfg(vec![second, first], bs(0)));
        sim.run(1000, |now, a| match a {
            Action::Register { ssid: 1 } => Reply::Reg(Err(Failure::Timeout)),
            _ => all_ok(now, a),
        });
        assert_eq!(
            sim.log,
            [
                (t(0), register(1)),
                (t(10), register(1)),
                (t(110), register(1)),
                (t(120), register(1)),
                (t(120), failed(1)),
                (t(125), register(2)),
                (t(125), registered(2)),
            ]
        );
    }

    #[test]
    fn failing_ordered_server_bootstraps_and_the_order_goes_on() {
        // Defaults: /1/x/15 false, /1/x/16 true.
        let a = |ssid, prio| ServerAccount {
            priority_order: Some(prio),
            retry: retry(1, 60, 86_400, 1),
            ..ServerAccount::new(ssid, 86_400)
        };
        let mut sim = Sim::new(cfg(vec![a(1, 1), a(2, 2)], bs(0)));
        sim.run(10, |now, act| match act {
            Action::Register { ssid: 1 } => Reply::Reg(Err(Failure::Timeout)),
            _ => all_ok(now, act),
        });
        assert_eq!(
            sim.log,
            [
                (0, register(1)),
                (0, failed(1)),
                (0, register(2)),
                (0, Action::Bootstrap),
                (0, registered(2))
            ]
        );
    }

    #[test]
    fn unordered_servers_start_in_parallel_and_do_not_affect_each_other() {
        let s1 = ServerAccount {
            bootstrap_on_failure: false,
            retry: retry(1, 1, 1, 1),
            ..ServerAccount::new(1, 86_400)
        };
        let s2 = ServerAccount {
            initial_delay_s: 30,
            ..ServerAccount::new(2, 86_400)
        };
        let s3 = ServerAccount {
            priority_order: Some(0),
            ..ServerAccount::new(3, 86_400)
        };
        let mut sim = Sim::new(cfg(vec![s1, s2, s3], bs(0)));
        sim.run(100, |now, a| match a {
            Action::Register { ssid: 1 } => Reply::Reg(Err(Failure::Timeout)),
            _ => all_ok(now, a),
        });
        assert_eq!(
            sim.log,
            [
                (t(0), register(1)),
                (t(0), register(3)),
                (t(0), failed(1)),
                (t(0), registered(3)),
                (t(30), register(2)),
                (t(30), registered(2)),
            ]
        );
    }

    // ----- explicit rejection (§12 #1) -----

    fn rejections(codes: Vec<(u8, u8)>) -> impl FnMut(Timestamp, &Action) -> Reply {
        let mut codes = codes.into_iter();
        move |now, a| match a {
            Action::Register { .. } => match codes.next() {
                Some((c, d)) => Reply::Reg(Err(Failure::rejected(c, d))),
                None => Reply::Reg(Err(Failure::Timeout)),
            },
            _ => all_ok(now, a),
        }
    }

    #[test]
    fn default_rejection_handling_forbidden_bootstraps_at_once() {
        for code in [(4, 3), (4, 12)] {
            let mut sim = Sim::new(cfg(vec![ServerAccount::new(1, 300)], bs(0)));
            sim.run(100_000, rejections(vec![code]));
            assert_eq!(
                sim.log,
                [(0, register(1)), (0, failed(1)), (0, Action::Bootstrap)],
                "code {code:?}"
            );
        }
    }

    #[test]
    fn default_rejection_handling_counts_other_codes_as_attempts() {
        let mut sim = Sim::new(cfg(vec![ServerAccount::new(1, 300)], bs(0)));
        sim.run(100_000, rejections(vec![(4, 0), (5, 3), (4, 4), (4, 12)]));
        assert_eq!(
            sim.log,
            [
                (t(0), register(1)),
                (t(60), register(1)),
                (t(180), register(1)),
                (t(420), register(1)),
                (t(420), failed(1)),
                (t(420), Action::Bootstrap),
            ]
        );
    }

    #[test]
    fn forbidden_without_bootstrap_account_or_without_16_is_a_failed_attempt() {
        let with_16_false = ServerAccount {
            bootstrap_on_failure: false,
            ..ServerAccount::new(1, 300)
        };
        for (acc, bs_acc) in [(ServerAccount::new(1, 300), None), (with_16_false, bs(0))] {
            let mut sim = Sim::new(cfg(vec![acc], bs_acc));
            sim.run(100_000, rejections(vec![(4, 3); 5]));
            let expected: Vec<(u64, Action)> = [0, 60, 180, 420, 900]
                .into_iter()
                .map(|s| (t(s), register(1)))
                .chain([(t(900), failed(1))])
                .collect();
            assert_eq!(sim.log, expected);
        }
    }

    #[test]
    fn bootstrap_immediately_mode_short_cuts_any_rejection_but_not_timeouts() {
        for code in [(4, 0), (5, 0), (4, 4)] {
            let mut c = cfg(vec![ServerAccount::new(1, 300)], bs(0));
            c.reject_handling = RejectHandling::BootstrapImmediately;
            let mut sim = Sim::new(c);
            let mut first = true;
            sim.run(100_000, |now, a| match a {
                Action::Register { .. } if first => {
                    first = false;
                    Reply::Reg(Err(Failure::Timeout))
                }
                Action::Register { .. } => Reply::Reg(Err(Failure::rejected(code.0, code.1))),
                _ => all_ok(now, a),
            });
            assert_eq!(
                sim.log,
                [
                    (t(0), register(1)),
                    (t(60), register(1)),
                    (t(60), failed(1)),
                    (t(60), Action::Bootstrap)
                ],
                "code {code:?}"
            );
        }
        // Without a bootstrap account the rejection is counted.
        let mut c = cfg(
            vec![ServerAccount {
                retry: retry(2, 5, 1, 1),
                ..ServerAccount::new(1, 300)
            }],
            None,
        );
        c.reject_handling = RejectHandling::BootstrapImmediately;
        let mut sim = Sim::new(c);
        sim.run(100_000, rejections(vec![(4, 3), (4, 3)]));
        assert_eq!(sim.log, [(t(0), register(1)), (t(5), register(1)), (t(5), failed(1))]);
    }

    // ----- updates -----

    #[test]
    fn updates_before_lifetime_expiry() {
        // lifetime >= 186 s: 93 s before expiry, counted from when the request was sent.
        let mut sim = Sim::new(cfg(vec![ServerAccount::new(1, 300)], None));
        sim.latency_ms = 2000;
        sim.run(700, all_ok);
        assert_eq!(
            sim.log,
            [
                (t(0), register(1)),
                (t(2), registered(1)),
                (t(207), update(1, None, false)),
                (t(414), update(1, None, false)),
                (t(621), update(1, None, false)),
            ]
        );
        assert_eq!(
            sim.e.status(1),
            Some(ServerStatus::Registered {
                location: loc(1),
                next_update: ts(828),
                expires_at: ts(921)
            })
        );
        // Short lifetime: half of it.
        let mut sim = Sim::new(cfg(vec![ServerAccount::new(2, 100)], None));
        sim.run(160, all_ok);
        assert_eq!(
            sim.log,
            [
                (t(0), register(2)),
                (t(0), registered(2)),
                (t(50), update(2, None, false)),
                (t(100), update(2, None, false)),
                (t(150), update(2, None, false)),
            ]
        );
    }

    #[test]
    fn update_margin_is_configurable() {
        let mut c = cfg(vec![ServerAccount::new(1, 300)], None);
        c.update_margin_s = 30;
        let mut sim = Sim::new(c);
        sim.run(300, all_ok);
        assert_eq!(
            sim.log,
            [(0, register(1)), (0, registered(1)), (t(270), update(1, None, false))]
        );
        assert_eq!(EngineConfig::default().update_margin_s, DEFAULT_UPDATE_MARGIN_S);
    }

    #[test]
    fn update_not_found_re_registers_at_once() {
        let mut sim = Sim::new(cfg(
            vec![ServerAccount {
                initial_delay_s: 10,
                ..ServerAccount::new(1, 300)
            }],
            None,
        ));
        let mut updates = 0;
        sim.run(300, |now, a| match a {
            Action::Update { .. } => {
                updates += 1;
                Reply::Upd(if updates == 1 {
                    Err(Failure::rejected(4, 4))
                } else {
                    Ok(())
                })
            }
            _ => all_ok(now, a),
        });
        assert_eq!(
            sim.log,
            [
                (t(10), register(1)),
                (t(10), registered(1)),
                (t(217), update(1, None, false)),
                // No initial delay for a re-registration.
                (t(217), register(1)),
                (t(217), registered(1)),
            ]
        );
    }

    #[test]
    fn update_bad_request_re_registers_and_server_error_is_retried() {
        let mut sim = Sim::new(cfg(vec![ServerAccount::new(1, 600)], None));
        let mut replies = vec![Err(Failure::rejected(5, 3)), Err(Failure::rejected(4, 0))].into_iter();
        sim.run(600, |now, a| match a {
            Action::Update { .. } => Reply::Upd(replies.next().unwrap_or(Ok(()))),
            _ => all_ok(now, a),
        });
        assert_eq!(
            sim.log,
            [
                (t(0), register(1)),
                (t(0), registered(1)),
                (t(507), update(1, None, false)),
                (t(567), update(1, None, false)),
                (t(567), register(1)),
                (t(567), registered(1)),
            ]
        );
    }

    #[test]
    fn failed_updates_are_retried_then_register_when_the_lifetime_would_pass() {
        let mut sim = Sim::new(cfg(vec![ServerAccount::new(1, 300)], None));
        sim.run(400, |now, a| match a {
            Action::Update { .. } => Reply::Upd(Err(Failure::Timeout)),
            _ => all_ok(now, a),
        });
        assert_eq!(
            sim.log,
            [
                (t(0), register(1)),
                (t(0), registered(1)),
                (t(207), update(1, None, false)),
                // Next retry 60 s later, still before the expiry at 300 s.
                (t(267), update(1, None, false)),
                // The retry after that (387 s) would be after the expiry: Register at the expiry.
                (t(300), register(1)),
                (t(300), registered(1)),
            ]
        );
    }

    #[test]
    fn update_retries_exhausted_lead_to_register() {
        let acc = ServerAccount {
            retry: retry(2, 10, 86_400, 1),
            ..ServerAccount::new(1, 86_400)
        };
        let mut sim = Sim::new(cfg(vec![acc], None));
        let start = 86_307;
        sim.run(start + 100, |now, a| match a {
            Action::Update { .. } => Reply::Upd(Err(Failure::NetworkError)),
            _ => all_ok(now, a),
        });
        assert_eq!(
            sim.log,
            [
                (0, register(1)),
                (0, registered(1)),
                (t(start), update(1, None, false)),
                (t(start + 10), update(1, None, false)),
                // Second failure ends the sequence; Register at the next retry time (+20 s).
                (t(start + 30), register(1)),
                (t(start + 30), registered(1)),
            ]
        );
    }

    #[test]
    fn update_trigger() {
        let mut sim = Sim::new(cfg(
            vec![ServerAccount {
                initial_delay_s: 5,
                ..ServerAccount::new(1, 300)
            }],
            None,
        ));
        assert_eq!(
            sim.e.execute_update_trigger(Timestamp::ZERO, 1),
            Err(EngineError::NotRegistered(1))
        );
        assert_eq!(
            sim.e.execute_update_trigger(Timestamp::ZERO, 7),
            Err(EngineError::UnknownServer(7))
        );
        sim.run(40, all_ok);
        let now = sim.at(50);
        sim.e.execute_update_trigger(now, 1).unwrap();
        sim.latency_ms = 1000;
        sim.run(100, all_ok);
        assert_eq!(
            sim.log,
            [
                (t(5), register(1)),
                (t(5), registered(1)),
                (t(50), update(1, None, false))
            ]
        );
        // The next periodic Update counts from the triggered one.
        assert!(
            matches!(sim.e.status(1), Some(ServerStatus::Registered { next_update, .. }) if next_update == ts(257))
        );
    }

    #[test]
    fn triggers_while_an_update_is_in_flight_are_sent_afterwards() {
        let mut sim = Sim::new(cfg(vec![ServerAccount::new(1, 300)], None));
        sim.run(1, all_ok);
        sim.e.execute_update_trigger(sim.now, 1).unwrap();
        // The Update hangs for now: trigger again and change objects meanwhile.
        sim.drain();
        let now = sim.at(3);
        sim.e.execute_update_trigger(now, 1).unwrap();
        sim.e.objects_changed(now);
        assert!(sim.drain().is_empty());
        sim.at(4);
        sim.e.update_result(ts(4), 1, Ok(())).unwrap();
        assert_eq!(sim.drain(), [update(1, None, true)]);
    }

    #[test]
    fn objects_changed_updates_every_registered_server_with_payload() {
        let s2 = ServerAccount {
            initial_delay_s: 1000,
            ..ServerAccount::new(2, 300)
        };
        let mut sim = Sim::new(cfg(
            vec![ServerAccount::new(1, 300), s2, ServerAccount::new(3, 300)],
            None,
        ));
        sim.run(10, all_ok);
        let mark = sim.log.len();
        let now = sim.at(20);
        sim.e.objects_changed(now);
        sim.run(30, all_ok);
        // Server 2 is not registered yet: its Register will carry the objects anyway.
        assert_eq!(
            sim.log_since(mark),
            [(t(20), update(1, None, true)), (t(20), update(3, None, true))]
        );
    }

    #[test]
    fn payload_survives_a_failed_update() {
        let mut sim = Sim::new(cfg(vec![ServerAccount::new(1, 300)], None));
        sim.run(1, all_ok);
        let now = sim.at(10);
        sim.e.objects_changed(now);
        let mut first = true;
        sim.run(100, |now, a| match a {
            Action::Update { .. } if first => {
                first = false;
                Reply::Upd(Err(Failure::Timeout))
            }
            _ => all_ok(now, a),
        });
        assert_eq!(
            sim.log,
            [
                (0, register(1)),
                (0, registered(1)),
                (t(10), update(1, None, true)),
                (t(70), update(1, None, true))
            ]
        );
    }

    #[test]
    fn objects_changed_during_register_leads_to_an_update() {
        let mut sim = Sim::new(cfg(vec![ServerAccount::new(1, 300)], None));
        assert_eq!(sim.drain(), [register(1)]);
        sim.e.objects_changed(ts(1));
        sim.e.register_result(ts(2), 1, Ok(loc(1))).unwrap();
        assert_eq!(sim.drain(), [registered(1), update(1, None, true)]);
    }

    #[test]
    fn lifetime_change_sends_update_with_lt() {
        let mut sim = Sim::new(cfg(vec![ServerAccount::new(1, 300)], None));
        sim.run(10, all_ok);
        let now = sim.at(50);
        sim.e.lifetime_changed(now, 1, 600).unwrap();
        assert_eq!(sim.e.account(1).map(|a| a.lifetime_s), Some(600));
        sim.run(1000, all_ok);
        assert_eq!(
            sim.log,
            [
                (0, register(1)),
                (0, registered(1)),
                (t(50), update(1, Some(600), false)),
                (t(557), update(1, None, false)),
            ]
        );
        // Unchanged lifetime: nothing to send.
        let mark = sim.log.len();
        sim.e.lifetime_changed(sim.now, 1, 600).unwrap();
        assert_eq!(sim.log_since(mark), []);
        assert!(sim.drain().is_empty());
        assert_eq!(
            sim.e.lifetime_changed(sim.now, 9, 1),
            Err(EngineError::UnknownServer(9))
        );
    }

    #[test]
    fn lifetime_change_before_registration_goes_into_the_register() {
        let mut sim = Sim::new(cfg(
            vec![ServerAccount {
                initial_delay_s: 10,
                ..ServerAccount::new(1, 300)
            }],
            None,
        ));
        sim.e.lifetime_changed(ts(1), 1, 120).unwrap();
        sim.run(100, all_ok);
        // 120 < 2 x 93: Update at half the lifetime; no lt parameter since the Register carried it.
        assert_eq!(
            sim.log,
            [
                (t(10), register(1)),
                (t(10), registered(1)),
                (t(70), update(1, None, false))
            ]
        );
    }

    // ----- bootstrap -----

    #[test]
    fn no_server_account_bootstraps_after_hold_off_and_retries() {
        let mut sim = Sim::new(cfg(vec![], bs(20)));
        assert_eq!(sim.e.bootstrap_status(), BootstrapStatus::Scheduled { at: ts(20) });
        let mut n = 0;
        sim.run(300, |now, a| match a {
            Action::Bootstrap => {
                n += 1;
                if n < 3 {
                    Reply::Bs(Err(Failure::Timeout))
                } else {
                    Reply::Bs(Ok(Accounts {
                        servers: vec![ServerAccount {
                            initial_delay_s: 3,
                            ..ServerAccount::new(5, 300)
                        }],
                        bootstrap: bs(20),
                    }))
                }
            }
            _ => all_ok(now, a),
        });
        assert_eq!(
            sim.log,
            [
                (t(20), Action::Bootstrap),
                (t(80), Action::Bootstrap),
                (t(200), Action::Bootstrap),
                (t(200), Action::Bootstrapped),
                (t(203), register(5)),
                (t(203), registered(5)),
            ]
        );
        assert_eq!(sim.e.ssids(), [5]);
        assert_eq!(sim.e.bootstrap_status(), BootstrapStatus::Idle);
    }

    #[test]
    fn bootstrap_attempts_exhausted() {
        let b = BootstrapAccount {
            hold_off_s: 0,
            retry: retry(2, 10, 86_400, 1),
            account_timeout_s: 0,
        };
        let mut sim = Sim::new(cfg(vec![], Some(b)));
        sim.run(1000, |_, _| Reply::Bs(Err(Failure::NetworkError)));
        assert_eq!(
            sim.log,
            [
                (0, Action::Bootstrap),
                (t(10), Action::Bootstrap),
                (t(10), Action::BootstrapFailed)
            ]
        );
        assert_eq!(sim.e.bootstrap_status(), BootstrapStatus::Failed);
        assert_eq!(sim.e.poll_timeout(), None);
        // A /1/x/9 trigger starts over.
        sim.e.execute_bootstrap_trigger(ts(20)).unwrap();
        assert_eq!(sim.e.poll_action(), Some(Action::Bootstrap));
    }

    #[test]
    fn no_accounts_at_all_does_nothing() {
        let mut sim = Sim::new(cfg(vec![], None));
        assert_eq!(sim.e.poll_timeout(), None);
        assert!(sim.drain().is_empty());
        assert_eq!(
            sim.e.execute_bootstrap_trigger(ts(1)),
            Err(EngineError::NoBootstrapAccount)
        );
    }

    #[test]
    fn bootstrap_trigger_without_and_with_bootstrap_account() {
        let mut sim = Sim::new(cfg(vec![ServerAccount::new(1, 300)], None));
        sim.run(10, all_ok);
        assert_eq!(
            sim.e.execute_bootstrap_trigger(ts(10)),
            Err(EngineError::NoBootstrapAccount)
        );
        assert!(sim.drain().is_empty());

        let mut sim = Sim::new(cfg(vec![ServerAccount::new(1, 300)], bs(100)));
        sim.run(10, all_ok);
        let now = sim.at(10);
        sim.e.execute_bootstrap_trigger(now).unwrap();
        // The server-initiated bootstrap starts at once, without the hold-off time.
        assert_eq!(sim.drain(), [Action::Bootstrap]);
        // A second trigger while it runs is coalesced.
        sim.e.execute_bootstrap_trigger(now).unwrap();
        assert!(sim.drain().is_empty());
        // Meanwhile the registration stays and keeps being updated.
        sim.run(300, all_ok);
        assert_eq!(sim.log.last(), Some(&(t(207), update(1, None, false))));
    }

    #[test]
    fn bootstrap_trigger_cuts_the_hold_off_short() {
        let mut sim = Sim::new(cfg(vec![], bs(100)));
        sim.run(29, all_ok);
        assert!(sim.log.is_empty());
        let now = sim.at(30);
        sim.e.execute_bootstrap_trigger(now).unwrap();
        assert_eq!(sim.drain(), [Action::Bootstrap]);
        assert_eq!(sim.e.poll_timeout(), None);
    }

    #[test]
    fn initial_delay_applies_again_after_a_bootstrap() {
        let acc = ServerAccount {
            initial_delay_s: 10,
            ..ServerAccount::new(1, 86_400)
        };
        let mut sim = Sim::new(cfg(vec![acc.clone()], bs(0)));
        sim.run(50, all_ok);
        let now = sim.at(100);
        sim.e.execute_bootstrap_trigger(now).unwrap();
        sim.latency_ms = 5000;
        let accounts = Accounts {
            servers: vec![acc],
            bootstrap: bs(0),
        };
        sim.run(200, move |now, a| match a {
            Action::Bootstrap => Reply::Bs(Ok(accounts.clone())),
            _ => all_ok(now, a),
        });
        assert_eq!(
            sim.log,
            [
                (t(10), register(1)),
                (t(10), registered(1)),
                (t(100), Action::Bootstrap),
                (t(105), Action::Bootstrapped),
                (t(115), register(1)),
                (t(120), registered(1)),
            ]
        );
    }

    #[test]
    fn bootstrap_removing_a_registered_server_deregisters_it() {
        let mut sim = Sim::new(cfg(vec![ServerAccount::new(1, 300), ServerAccount::new(2, 300)], bs(0)));
        sim.run(10, all_ok);
        sim.e.execute_bootstrap_trigger(sim.now).unwrap();
        sim.drain();
        sim.e
            .bootstrap_result(
                ts(11),
                Ok(Accounts {
                    servers: vec![ServerAccount::new(2, 300)],
                    bootstrap: None,
                }),
            )
            .unwrap();
        assert_eq!(sim.drain(), [Action::Bootstrapped, deregister(1), register(2)]);
        assert_eq!(sim.e.deregister_result(ts(12), 1, Ok(())), Ok(()));
        assert_eq!(
            sim.e.deregister_result(ts(12), 1, Ok(())),
            Err(EngineError::UnknownServer(1))
        );
        assert_eq!(sim.e.bootstrap_account(), None);
        assert_eq!(
            sim.e.execute_bootstrap_trigger(ts(13)),
            Err(EngineError::NoBootstrapAccount)
        );
    }

    #[test]
    fn bootstrap_without_servers_or_with_invalid_accounts_counts_as_failed() {
        let mut sim = Sim::new(cfg(vec![], bs(0)));
        assert_eq!(sim.drain(), [Action::Bootstrap]);
        sim.e
            .bootstrap_result(
                ts(1),
                Ok(Accounts {
                    servers: vec![],
                    bootstrap: bs(0),
                }),
            )
            .unwrap();
        assert_eq!(sim.drain(), [Action::Bootstrapped]);
        assert_eq!(sim.e.bootstrap_status(), BootstrapStatus::Scheduled { at: ts(61) });
        sim.e.handle_timeout(ts(61));
        assert_eq!(sim.drain(), [Action::Bootstrap]);
        let dup = Accounts {
            servers: vec![ServerAccount::new(3, 60), ServerAccount::new(3, 60)],
            bootstrap: bs(0),
        };
        assert_eq!(
            sim.e.bootstrap_result(ts(62), Ok(dup)),
            Err(EngineError::DuplicateSsid(3))
        );
        assert_eq!(sim.e.bootstrap_status(), BootstrapStatus::Scheduled { at: ts(182) });
        assert!(sim.drain().is_empty());
    }

    #[test]
    fn bootstrap_requests_are_coalesced() {
        let a = |ssid| ServerAccount {
            retry: retry(1, 1, 1, 1),
            ..ServerAccount::new(ssid, 300)
        };
        let mut sim = Sim::new(cfg(vec![a(1), a(2)], bs(30)));
        sim.run(100, |_, act| match act {
            Action::Register { .. } => Reply::Reg(Err(Failure::Timeout)),
            _ => Reply::Hang,
        });
        assert_eq!(
            sim.log,
            [
                (0, register(1)),
                (0, register(2)),
                (0, failed(1)),
                (0, failed(2)),
                (t(30), Action::Bootstrap)
            ]
        );
    }

    // ----- Disable -----

    #[test]
    fn disable_deregisters_stays_silent_then_registers_again() {
        let acc = ServerAccount {
            disable_timeout_s: 600,
            initial_delay_s: 20,
            ..ServerAccount::new(1, 86_400)
        };
        let mut sim = Sim::new(cfg(vec![acc], bs(0)));
        assert_eq!(
            sim.e.execute_disable(Timestamp::ZERO, 1),
            Err(EngineError::NotRegistered(1))
        );
        sim.run(40, all_ok);
        let now = sim.at(50);
        sim.e.execute_disable(now, 1).unwrap();
        sim.latency_ms = 2000;
        sim.run(60, all_ok);
        assert_eq!(sim.e.status(1), Some(ServerStatus::Disabled { until: ts(650) }));
        assert_eq!(
            sim.e.execute_update_trigger(sim.now, 1),
            Err(EngineError::NotRegistered(1))
        );
        sim.run(1000, all_ok);
        assert_eq!(
            sim.log,
            [
                (t(20), register(1)),
                (t(20), registered(1)),
                (t(50), deregister(1)),
                (
                    t(50),
                    Action::Disabled {
                        ssid: 1,
                        until: ts(650)
                    }
                ),
                // The initial delay does not apply again.
                (t(650), register(1)),
                (t(652), registered(1)),
            ]
        );
    }

    #[test]
    fn disable_timeout_shorter_than_the_deregister() {
        let acc = ServerAccount {
            disable_timeout_s: 1,
            ..ServerAccount::new(1, 86_400)
        };
        let mut sim = Sim::new(cfg(vec![acc], None));
        sim.run(1, all_ok);
        sim.e.execute_disable(ts(2), 1).unwrap();
        sim.drain();
        assert_eq!(sim.e.poll_timeout(), None);
        sim.e.deregister_result(ts(5), 1, Err(Failure::Timeout)).unwrap();
        assert_eq!(sim.drain(), [register(1)]);
    }

    // ----- Bootstrap-Server Account Timeout (/0/x/12) -----

    fn bs_with_timeout(hold_off_s: u64, timeout_s: u64) -> Option<BootstrapAccount> {
        Some(BootstrapAccount::new(Some(hold_off_s)).with_account_timeout(Some(timeout_s)))
    }

    /// A peer whose bootstrap installs server 1 and a Bootstrap-Server account with `timeout_s`.
    fn bootstrap_to(timeout_s: u64) -> impl FnMut(Timestamp, &Action) -> Reply {
        move |now, a| match a {
            Action::Bootstrap => Reply::Bs(Ok(Accounts {
                servers: vec![ServerAccount::new(1, 86_400)],
                bootstrap: bs_with_timeout(0, timeout_s),
            })),
            _ => all_ok(now, a),
        }
    }

    #[test]
    fn bootstrap_account_is_purged_its_timeout_after_the_bootstrap() {
        // No server: bootstrap at once; Finish (the result) arrives 1.5 s later; /0/x/12 = 3600 s.
        let mut sim = Sim::new(cfg(vec![], bs(0)));
        sim.latency_ms = 1_500;
        sim.run(86_400, bootstrap_to(3600));
        assert_eq!(
            sim.log[..5],
            [
                (0, Action::Bootstrap),
                (1_500, Action::Bootstrapped),
                (1_500, register(1)),
                (3_000, registered(1)),
                // Counted from the successful bootstrap, to the millisecond.
                (3_601_500, Action::PurgeBootstrapAccount),
            ]
        );
        // The registration goes on: its Update is due 93 s before the lifetime's end.
        assert_eq!(sim.log[5..], [(86_308_500, update(1, None, false))]);
        assert_eq!(sim.e.bootstrap_account(), None);
        assert_eq!(sim.e.bootstrap_purge_at(), None);
        assert_eq!(sim.e.bootstrap_status(), BootstrapStatus::Idle);
        // No Bootstrap-Server account any more: /1/x/9 is refused.
        assert_eq!(
            sim.e.execute_bootstrap_trigger(sim.now),
            Err(EngineError::NoBootstrapAccount)
        );
    }

    #[test]
    fn the_purge_timer_is_visible_and_fires_on_the_millisecond() {
        let mut sim = Sim::new(cfg(vec![], bs(0)));
        sim.latency_ms = 250;
        sim.run(1, bootstrap_to(10));
        assert_eq!(sim.e.bootstrap_purge_at(), Some(Timestamp::from_millis(10_250)));
        assert!(sim.e.poll_timeout() <= Some(Timestamp::from_millis(10_250)));
        sim.e.handle_timeout(Timestamp::from_millis(10_249));
        assert_eq!(sim.drain(), []);
        assert!(sim.e.bootstrap_account().is_some());
        sim.e.handle_timeout(Timestamp::from_millis(10_250));
        assert_eq!(sim.drain(), [Action::PurgeBootstrapAccount]);
        assert!(sim.e.bootstrap_account().is_none());
    }

    #[test]
    fn a_zero_or_absent_timeout_keeps_the_account() {
        for timeout in [None, Some(0)] {
            let mut sim = Sim::new(cfg(vec![], bs(0)));
            sim.run(100_000, move |now, a| match a {
                Action::Bootstrap => Reply::Bs(Ok(Accounts {
                    servers: vec![ServerAccount::new(1, 86_400)],
                    bootstrap: Some(BootstrapAccount::new(Some(0)).with_account_timeout(timeout)),
                })),
                _ => all_ok(now, a),
            });
            assert!(
                !sim.log.iter().any(|(_, a)| *a == Action::PurgeBootstrapAccount),
                "{timeout:?}"
            );
            assert_eq!(sim.e.bootstrap_purge_at(), None);
            assert!(sim.e.bootstrap_account().is_some());
        }
    }

    #[test]
    fn a_factory_account_is_purged_only_after_a_bootstrap() {
        // Factory-provisioned server and Bootstrap-Server account with /0/x/12 = 10 s: kept.
        let mut sim = Sim::new(cfg(vec![ServerAccount::new(1, 86_400)], bs_with_timeout(0, 10)));
        sim.run(1_000, all_ok);
        assert!(!sim.log.iter().any(|(_, a)| *a == Action::PurgeBootstrapAccount));
        assert!(sim.e.bootstrap_account().is_some());
        // The same accounts after a reboot of a bootstrapped client: the timeout counts from the start.
        let mut sim = Sim::new(EngineConfig {
            bootstrapped: true,
            ..cfg(vec![ServerAccount::new(1, 86_400)], bs_with_timeout(0, 10))
        });
        assert_eq!(sim.e.bootstrap_purge_at(), Some(ts(10)));
        sim.run(1_000, all_ok);
        assert_eq!(
            sim.log,
            [
                (0, register(1)),
                (0, registered(1)),
                (t(10), Action::PurgeBootstrapAccount)
            ]
        );
    }

    #[test]
    fn a_purge_due_during_a_bootstrap_waits_for_its_end() {
        // Bootstrapped at 0 with /0/x/12 = 100 s; at 50 s /1/x/9 starts a bootstrap that hangs.
        let mut sim = Sim::new(cfg(vec![], bs(0)));
        sim.run(1, bootstrap_to(100));
        let now = sim.at(50);
        sim.e.execute_bootstrap_trigger(now).unwrap();
        assert_eq!(sim.drain(), [Action::Bootstrap]);
        // 100 s passes: no purge while the Bootstrap-Server account is in use.
        let now = sim.at(120);
        sim.e.handle_timeout(now);
        assert_eq!(sim.drain(), []);
        assert_eq!(sim.e.bootstrap_purge_at(), Some(ts(100)));
        // The bootstrap fails at 150 s (the account keeps its old values): purged at once.
        let now = sim.at(150);
        sim.e.bootstrap_result(now, Err(Failure::Timeout)).unwrap();
        assert_eq!(sim.drain(), [Action::PurgeBootstrapAccount]);
        assert_eq!(sim.e.bootstrap_status(), BootstrapStatus::Idle, "the retry is dropped");
        assert_eq!(sim.e.poll_timeout(), Some(ts(86_307)), "only the Update is left");

        // Same, but the bootstrap succeeds at 150 s with /0/x/12 = 20 s: the timer restarts.
        let mut sim = Sim::new(cfg(vec![], bs(0)));
        sim.run(1, bootstrap_to(100));
        let now = sim.at(50);
        sim.e.execute_bootstrap_trigger(now).unwrap();
        sim.drain();
        let accounts = Accounts {
            servers: vec![ServerAccount::new(1, 86_400)],
            bootstrap: bs_with_timeout(0, 20),
        };
        let now = sim.at(150);
        sim.e.bootstrap_result(now, Ok(accounts)).unwrap();
        assert_eq!(sim.drain(), [Action::Bootstrapped, register(1)]);
        assert_eq!(sim.e.bootstrap_purge_at(), Some(ts(170)));
        let now = sim.at(151);
        sim.e.register_result(now, 1, Ok(loc(1))).unwrap();
        let now = sim.at(170);
        sim.e.handle_timeout(now);
        assert_eq!(sim.drain(), [registered(1), Action::PurgeBootstrapAccount]);
    }

    #[test]
    fn a_purge_drops_a_planned_bootstrap() {
        // Bootstrapped at 0 (/0/x/12 = 100 s, hold-off 500 s); server 1 then fails for good at 20 s and asks
        // for a bootstrap at 520 s; the purge at 100 s comes first and cancels it.
        let mut sim = Sim::new(cfg(vec![], bs(0)));
        let mut first = true;
        sim.run(10_000, |now, a| match a {
            Action::Bootstrap if first => {
                first = false;
                Reply::Bs(Ok(Accounts {
                    servers: vec![ServerAccount {
                        retry: retry(2, 20, 86_400, 1),
                        ..ServerAccount::new(1, 300)
                    }],
                    bootstrap: bs_with_timeout(500, 100),
                }))
            }
            Action::Register { .. } => Reply::Reg(Err(Failure::Timeout)),
            _ => all_ok(now, a),
        });
        assert_eq!(
            sim.log,
            [
                (0, Action::Bootstrap),
                (0, Action::Bootstrapped),
                (0, register(1)),
                (t(20), register(1)),
                (t(20), failed(1)),
                (t(100), Action::PurgeBootstrapAccount),
            ]
        );
        assert_eq!(sim.e.bootstrap_status(), BootstrapStatus::Idle);
        assert_eq!(sim.e.poll_timeout(), None);
    }

    #[test]
    fn a_bootstrap_leaving_no_server_does_not_start_the_timer() {
        let mut sim = Sim::new(cfg(vec![], bs(0)));
        sim.run(0, |_, _| {
            Reply::Bs(Ok(Accounts {
                servers: vec![],
                bootstrap: bs_with_timeout(0, 1),
            }))
        });
        assert_eq!(sim.e.bootstrap_purge_at(), None);
        assert!(sim.e.bootstrap_account().is_some());
    }

    #[test]
    fn shutdown_cancels_the_purge() {
        let mut sim = Sim::new(cfg(vec![], bs(0)));
        sim.run(1, bootstrap_to(100));
        let now = sim.at(2);
        sim.e.shutdown(now);
        assert_eq!(sim.e.bootstrap_purge_at(), None);
        let now = sim.at(1000);
        sim.e.handle_timeout(now);
        assert_eq!(sim.drain(), [deregister(1)]);
    }

    // ----- shutdown, stale input, clock, validation -----

    #[test]
    fn shutdown_deregisters_registered_servers() {
        let s2 = ServerAccount {
            initial_delay_s: 100,
            ..ServerAccount::new(2, 300)
        };
        let mut sim = Sim::new(cfg(vec![ServerAccount::new(1, 300), s2], bs(0)));
        sim.run(10, all_ok);
        sim.e.shutdown(ts(20));
        assert_eq!(sim.drain(), [deregister(1)]);
        assert_eq!(sim.e.status(2), Some(ServerStatus::Stopped));
        assert_eq!(sim.e.poll_timeout(), None);
        assert_eq!(sim.e.execute_bootstrap_trigger(ts(21)), Err(EngineError::ShutDown));
        assert_eq!(sim.e.execute_update_trigger(ts(21), 1), Err(EngineError::ShutDown));
        sim.e.deregister_result(ts(22), 1, Ok(())).unwrap();
        assert_eq!(sim.e.status(1), Some(ServerStatus::Stopped));
        sim.e.objects_changed(ts(23));
        assert!(sim.drain().is_empty());
    }

    #[test]
    fn stale_and_duplicate_results_are_rejected() {
        let mut e = RegistrationEngine::new(cfg(vec![ServerAccount::new(1, 300)], None), Timestamp::ZERO).unwrap();
        assert_eq!(e.poll_action(), Some(register(1)));
        assert_eq!(
            e.update_result(ts(1), 1, Ok(())),
            Err(EngineError::Unexpected {
                ssid: 1,
                request: "Update"
            })
        );
        assert_eq!(
            e.deregister_result(ts(1), 1, Ok(())),
            Err(EngineError::Unexpected {
                ssid: 1,
                request: "De-register"
            })
        );
        assert_eq!(
            e.register_result(ts(1), 2, Ok(loc(2))),
            Err(EngineError::UnknownServer(2))
        );
        assert_eq!(
            e.bootstrap_result(ts(1), Err(Failure::Timeout)),
            Err(EngineError::NoBootstrapInFlight)
        );
        e.register_result(ts(1), 1, Ok(loc(1))).unwrap();
        assert_eq!(
            e.register_result(ts(1), 1, Ok(loc(1))),
            Err(EngineError::Unexpected {
                ssid: 1,
                request: "Register"
            })
        );
        assert_eq!(e.poll_action(), Some(registered(1)));
        assert_eq!(e.poll_action(), None);
    }

    #[test]
    fn a_clock_going_backwards_is_clamped() {
        let mut e = RegistrationEngine::new(cfg(vec![ServerAccount::new(1, 300)], None), ts(1000)).unwrap();
        assert_eq!(e.poll_action(), Some(register(1)));
        e.register_result(ts(1000), 1, Err(Failure::Timeout)).unwrap();
        assert_eq!(e.poll_timeout(), Some(ts(1060)));
        e.handle_timeout(ts(5));
        assert_eq!(e.poll_action(), None);
        e.handle_timeout(ts(1060));
        assert_eq!(e.poll_action(), Some(register(1)));
        // A result stamped in the past acts at the latest time seen.
        e.register_result(ts(10), 1, Err(Failure::Timeout)).unwrap();
        assert_eq!(e.poll_timeout(), Some(ts(1180)));
    }

    #[test]
    fn invalid_configurations_are_refused() {
        let new = |servers| RegistrationEngine::new(cfg(servers, None), Timestamp::ZERO).map(|_| ());
        assert_eq!(new(vec![ServerAccount::new(0, 1)]), Err(EngineError::InvalidSsid(0)));
        assert_eq!(
            new(vec![ServerAccount::new(65535, 1)]),
            Err(EngineError::InvalidSsid(65535))
        );
        assert_eq!(
            new(vec![
                ServerAccount::new(4, 1),
                ServerAccount::new(5, 1),
                ServerAccount::new(4, 2)
            ]),
            Err(EngineError::DuplicateSsid(4))
        );
        assert_eq!(
            new(vec![ServerAccount::new(1, 1), ServerAccount::new(65534, 1)]),
            Ok(())
        );
    }

    #[test]
    fn status_reports() {
        let s2 = ServerAccount {
            priority_order: Some(1),
            ..ServerAccount::new(2, 300)
        };
        let s3 = ServerAccount {
            priority_order: Some(2),
            ..ServerAccount::new(3, 300)
        };
        let mut e =
            RegistrationEngine::new(cfg(vec![ServerAccount::new(1, 300), s2, s3], None), Timestamp::ZERO).unwrap();
        assert_eq!(e.status(1), Some(ServerStatus::Registering));
        assert_eq!(e.status(3), Some(ServerStatus::Waiting));
        assert_eq!(e.status(4), None);
        e.register_result(ts(1), 1, Ok(loc(1))).unwrap();
        e.execute_update_trigger(ts(2), 1).unwrap();
        assert_eq!(e.status(1), Some(ServerStatus::Updating { location: loc(1) }));
        e.shutdown(ts(3));
        assert_eq!(e.status(1), Some(ServerStatus::Deregistering));
    }

    // ----- property: arbitrary parameters and outcomes -----

    mod prop {
        use super::*;
        use proptest::prelude::*;

        fn big() -> impl Strategy<Value = u64> {
            prop_oneof![Just(0u64), 1..400u64, Just(u32::MAX as u64), Just(u64::MAX)]
        }

        fn account(ssid: u16) -> impl Strategy<Value = ServerAccount> {
            (
                big(),
                proptest::option::of(0u64..3),
                big(),
                any::<bool>(),
                any::<bool>(),
                prop_oneof![Just(0u64), 1..6u64, Just(u64::MAX)],
                big(),
                big(),
                prop_oneof![Just(0u64), 1..4u64, Just(u64::MAX)],
                big(),
            )
                .prop_map(
                    move |(lt, prio, delay, block, bsf, rc, rt, sd, src, dt)| ServerAccount {
                        priority_order: prio,
                        initial_delay_s: delay,
                        failure_block: block,
                        bootstrap_on_failure: bsf,
                        retry: RetryPolicy {
                            retry_count: rc,
                            retry_timer_s: rt,
                            seq_delay_s: sd,
                            seq_retry_count: src,
                        },
                        disable_timeout_s: dt,
                        ..ServerAccount::new(ssid, lt)
                    },
                )
        }

        fn accounts() -> impl Strategy<Value = Accounts> {
            (
                proptest::collection::vec(any::<bool>(), 3),
                account(1),
                account(2),
                account(3),
                proptest::option::of((
                    big(),
                    1..4u64,
                    0..100u64,
                    prop_oneof![Just(0u64), 1..400u64, Just(u64::MAX)],
                )),
            )
                .prop_map(|(keep, a, b, c, bs)| Accounts {
                    servers: [a, b, c]
                        .into_iter()
                        .zip(keep)
                        .filter(|(_, k)| *k)
                        .map(|(s, _)| s)
                        .collect(),
                    bootstrap: bs.map(|(hold_off_s, rc, rt, timeout)| BootstrapAccount {
                        hold_off_s,
                        retry: RetryPolicy {
                            retry_count: rc,
                            retry_timer_s: rt,
                            ..RetryPolicy::default()
                        },
                        account_timeout_s: timeout,
                    }),
                })
        }

        #[derive(Debug, Clone)]
        enum Op {
            Advance(u64),
            ToTimeout,
            Respond(usize, u8),
            UpdateTrigger(u16),
            BootstrapTrigger,
            Disable(u16),
            ObjectsChanged,
            Lifetime(u16, u64),
            Backwards(u64),
            Shutdown,
        }

        fn op() -> impl Strategy<Value = Op> {
            prop_oneof![
                4 => (0u64..200_000).prop_map(Op::Advance),
                6 => Just(Op::ToTimeout),
                10 => (any::<usize>(), 0u8..10).prop_map(|(i, o)| Op::Respond(i, o)),
                1 => (0u16..5).prop_map(Op::UpdateTrigger),
                1 => Just(Op::BootstrapTrigger),
                1 => (0u16..5).prop_map(Op::Disable),
                1 => Just(Op::ObjectsChanged),
                1 => ((0u16..5), big()).prop_map(|(s, l)| Op::Lifetime(s, l)),
                1 => (0u64..10_000).prop_map(Op::Backwards),
                // Rare: most runs should exercise the live engine.
                1 => (0u8..20).prop_filter_map("rare", |x| (x == 0).then_some(Op::Shutdown)),
            ]
        }

        fn failure(o: u8) -> Option<Failure> {
            match o {
                0..=2 => None,
                3 => Some(Failure::Timeout),
                4 => Some(Failure::HandshakeFailed),
                5 => Some(Failure::NetworkError),
                6 => Some(Failure::rejected(4, 3)),
                7 => Some(Failure::rejected(4, 4)),
                8 => Some(Failure::rejected(4, 12)),
                _ => Some(Failure::rejected(5, 0)),
            }
        }

        fn check_invariants(e: &RegistrationEngine) -> Result<(), TestCaseError> {
            if let Some(tm) = e.poll_timeout() {
                prop_assert!(tm > e.now, "timeout {:?} not after now {:?}", tm, e.now);
            }
            for s in &e.servers {
                let p = s.account.retry;
                prop_assert!(
                    s.retry.started <= p.attempts_per_sequence(),
                    "server {}: {:?}",
                    s.account.ssid,
                    s.retry
                );
                prop_assert!(
                    s.retry.failed <= s.retry.started,
                    "server {}: {:?}",
                    s.account.ssid,
                    s.retry
                );
                prop_assert!(s.retry.sequence <= p.sequences());
                let registered = matches!(s.phase, Phase::Registered { .. } | Phase::Updating { .. });
                prop_assert_eq!(
                    registered,
                    s.reg.is_some(),
                    "server {} phase {:?}",
                    s.account.ssid,
                    &s.phase
                );
            }
            if let Some(bs) = e.bootstrap {
                prop_assert!(e.bs_retry.started <= bs.retry.attempts_per_sequence());
            }
            // A purge needs an account to purge; a planned bootstrap needs an account to bootstrap from.
            prop_assert!(e.bs_purge_at.is_none() || e.bootstrap.is_some());
            prop_assert!(!matches!(e.bs_phase, BsPhase::Pending(_)) || e.bootstrap.is_some());
            Ok(())
        }

        proptest! {
            #![proptest_config(ProptestConfig::with_cases(512))]
            #[test]
            fn engine_never_panics_and_keeps_its_invariants(
                initial in accounts(),
                after_bootstrap in accounts(),
                immediate in any::<bool>(),
                bootstrapped in any::<bool>(),
                ops in proptest::collection::vec(op(), 0..80),
            ) {
                let config = EngineConfig {
                    servers: initial.servers,
                    bootstrap: initial.bootstrap,
                    reject_handling: if immediate {
                        RejectHandling::BootstrapImmediately
                    } else {
                        RejectHandling::CountAsFailedAttempt
                    },
                    update_margin_s: DEFAULT_UPDATE_MARGIN_S,
                    bootstrapped,
                };
                let mut e = RegistrationEngine::new(config, Timestamp::ZERO).expect("valid");
                let mut now = Timestamp::ZERO;
                // Requests the engine asked for and that have not been answered yet.
                let mut in_flight: Vec<Action> = Vec::new();
                // Register actions per server within the current sequence, counted from the outside.
                check_invariants(&e)?;
                for op in ops {
                    while let Some(a) = e.poll_action() {
                        if matches!(a, Action::Register { .. } | Action::Update { .. } | Action::Deregister { .. }
                            | Action::Bootstrap) {
                            in_flight.push(a);
                        }
                    }
                    match op {
                        Op::Advance(d) => {
                            now = now.saturating_add_millis(d);
                            e.handle_timeout(now);
                        }
                        Op::ToTimeout => {
                            if let Some(tm) = e.poll_timeout() {
                                now = now.max(tm);
                                e.handle_timeout(now);
                            }
                        }
                        Op::Respond(i, o) => {
                            if !in_flight.is_empty() {
                                let a = in_flight.remove(i % in_flight.len());
                                let f = failure(o);
                                let _ = match a {
                                    Action::Register { ssid } => {
                                        e.register_result(now, ssid, f.map_or_else(|| Ok(vec!["rd".into()]), Err))
                                    }
                                    Action::Update { ssid, .. } => e.update_result(now, ssid, f.map_or(Ok(()), Err)),
                                    Action::Deregister { ssid, .. } => {
                                        e.deregister_result(now, ssid, f.map_or(Ok(()), Err))
                                    }
                                    _ => e.bootstrap_result(now, f.map_or_else(|| Ok(after_bootstrap.clone()), Err)),
                                };
                            }
                        }
                        Op::UpdateTrigger(s) => {
                            let _ = e.execute_update_trigger(now, s);
                        }
                        Op::BootstrapTrigger => {
                            let r = e.execute_bootstrap_trigger(now);
                            if e.bootstrap.is_none() && !e.shut_down {
                                prop_assert_eq!(r, Err(EngineError::NoBootstrapAccount));
                            }
                        }
                        Op::Disable(s) => {
                            let _ = e.execute_disable(now, s);
                        }
                        Op::ObjectsChanged => e.objects_changed(now),
                        Op::Lifetime(s, l) => {
                            let _ = e.lifetime_changed(now, s, l);
                        }
                        Op::Backwards(d) => e.handle_timeout(Timestamp(now.as_millis().saturating_sub(d))),
                        Op::Shutdown => e.shutdown(now),
                    }
                    check_invariants(&e)?;
                }
            }
        }
    }
}
