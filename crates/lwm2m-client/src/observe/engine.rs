//! The observation engine: state per observation, timers, and the poll API. See the module documentation
//! ([`crate::observe`]) for the rules.

use std::collections::{BTreeMap, VecDeque};
use std::fmt;

use lwm2m_core::attributes::Attributes;
use lwm2m_core::node::Record;
use lwm2m_core::path::Path;
use thiserror::Error;

use super::eval::{conditions_apply, triggers, Leaves};
use crate::registration::Timestamp;

/// RFC 7641 §4.5: a notification is sent confirmable at least this often (24 h, in milliseconds).
pub const DEFAULT_CON_INTERVAL_MS: u64 = 24 * 60 * 60 * 1000;
/// Default bound on the notifications stored per server while it is offline.
pub const DEFAULT_MAX_STORED_PER_SERVER: usize = 64;
/// Default bound on the observations one server may hold.
pub const DEFAULT_MAX_OBSERVATIONS_PER_SERVER: usize = 256;

/// Engine settings.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct ObserveConfig {
    /// Make a notification confirmable when no notification of that observation was confirmable for this
    /// long (RFC 7641 §4.5; 24 h). `None` switches the rule off, e.g. when the CoAP endpoint already applies
    /// it (`EndpointConfig::notify_con_interval_ms` in lwm2m-coap does): apply it in one place only.
    pub con_interval_ms: Option<u64>,
    /// At most this many notifications are stored per server while it is offline (`/1/x/6` true); when full,
    /// the oldest is dropped. 0 stores nothing (the latest state is still sent when the server is back).
    pub max_stored_per_server: usize,
    /// At most this many observations per server; more are refused with [`ObserveError::TooManyObservations`]
    /// (answer 5.03 Service Unavailable, or 4.00).
    pub max_observations_per_server: usize,
}

impl Default for ObserveConfig {
    fn default() -> Self {
        ObserveConfig {
            con_interval_ms: Some(DEFAULT_CON_INTERVAL_MS),
            max_stored_per_server: DEFAULT_MAX_STORED_PER_SERVER,
            max_observations_per_server: DEFAULT_MAX_OBSERVATIONS_PER_SERVER,
        }
    }
}

/// Identifies one observation for the lifetime of the engine (never reused).
#[derive(Debug, Clone, Copy, PartialEq, Eq, PartialOrd, Ord, Hash)]
pub struct ObservationId(pub u64);

impl fmt::Display for ObservationId {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        write!(f, "obs#{}", self.0)
    }
}

/// A CoAP token (0 to 8 bytes), stored inline.
#[derive(Clone, Copy, PartialEq, Eq, PartialOrd, Ord, Hash, Default)]
pub struct Token {
    len: u8,
    bytes: [u8; 8],
}

impl Token {
    /// A token from its bytes; more than 8 bytes is [`ObserveError::TokenTooLong`].
    pub fn new(bytes: &[u8]) -> Result<Token, ObserveError> {
        let mut t = Token::default();
        let dst = t
            .bytes
            .get_mut(..bytes.len())
            .ok_or(ObserveError::TokenTooLong(bytes.len()))?;
        dst.copy_from_slice(bytes);
        t.len = bytes.len() as u8;
        Ok(t)
    }

    /// The token's bytes.
    pub fn as_bytes(&self) -> &[u8] {
        &self.bytes[..usize::from(self.len)]
    }
}

impl fmt::Debug for Token {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.write_str("Token(")?;
        for b in self.as_bytes() {
            write!(f, "{b:02x}")?;
        }
        f.write_str(")")
    }
}

/// A refused or unknown request to the engine.
#[derive(Debug, Clone, PartialEq, Eq, Error)]
pub enum ObserveError {
    /// The token has more than 8 bytes.
    #[error("token of {0} bytes; a CoAP token has at most 8")]
    TokenTooLong(usize),
    /// Observe without a target path.
    #[error("an observation needs at least one target path")]
    NoTargets,
    /// `targets` and `attributes` of [`ObserveEngine::observe`] differ in length.
    #[error("{targets} target paths but {attributes} attribute sets")]
    AttributeCountMismatch { targets: usize, attributes: usize },
    /// The server already holds [`ObserveConfig::max_observations_per_server`] observations.
    #[error("server {ssid} already holds {max} observations")]
    TooManyObservations { ssid: u16, max: usize },
    /// No such observation (never existed, or cancelled).
    #[error("unknown observation {0}")]
    UnknownObservation(ObservationId),
}

/// Why a notification is due.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum Reason {
    /// A change met the reporting criteria (and pmin has passed).
    Changed,
    /// pmax passed since the last notification.
    PmaxExpired,
    /// The server is back online: deliver what became due while it was offline (the stored snapshots, then the
    /// current state).
    BackOnline,
}

/// What to do with a [`Notify`].
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum Delivery {
    /// Read the current values of the targets and send them to the server now.
    Send,
    /// The server is offline and stores notifications (`/1/x/6` true): read the current values, do not send,
    /// report them with [`ObserveEngine::notified`]; the engine keeps them (timestamped) for later.
    Store,
}

/// A notification stored while the server was offline.
#[derive(Debug, Clone, PartialEq)]
pub struct StoredNotification {
    /// When it became due (engine clock); the caller converts it to the SenML `bt`/`t` time.
    pub time: Timestamp,
    /// The values read then.
    pub records: Vec<Record>,
}

/// A notification to produce: the caller reads the current values under `targets` (after checking the
/// server's Read access), sends them with the observation's token, and reports with
/// [`ObserveEngine::notified`] (or [`ObserveEngine::not_sent`]).
#[derive(Debug, Clone, PartialEq)]
pub struct Notify {
    /// The observation.
    pub id: ObservationId,
    /// The observing server.
    pub ssid: u16,
    /// The token of the Observe request.
    pub token: Token,
    /// The observed paths (one for Observe, several for Observe-Composite); the notification carries the values
    /// of all of them.
    pub targets: Vec<Path>,
    /// Why.
    pub reason: Reason,
    /// Send as a CON message (the 24 h rule, [`ObserveConfig::con_interval_ms`]); otherwise NON.
    pub confirmable: bool,
    /// Send now, or read and store.
    pub delivery: Delivery,
    /// With [`Delivery::Send`]: notifications stored while the server was offline, oldest first. Send them
    /// as timestamped SenML records before (in the same pack as) the current values.
    pub stored: Vec<StoredNotification>,
}

/// A request to sample: read the current values under `paths` and report them with
/// [`ObserveEngine::sampled`] (epmin / epmax evaluation, see the module documentation).
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct Evaluate {
    /// The observation asking.
    pub id: ObservationId,
    /// Its server.
    pub ssid: u16,
    /// The target paths to read.
    pub paths: Vec<Path>,
}

/// One observed path of an observation.
#[derive(Debug, Clone)]
struct Target {
    path: Path,
    attrs: Attributes,
    /// A change met the criteria since the last notification; due at `last_notify + pmin`.
    triggered: bool,
    /// A change arrived within epmin of the last evaluation; sample at `last_eval + epmin`.
    deferred: bool,
    /// A sample of this target was requested and not yet reported.
    sampling: bool,
    /// The last evaluation of the reporting criteria (a change evaluated, a sample requested).
    last_eval: Timestamp,
}

impl Target {
    fn with_conditions(&self) -> bool {
        conditions_apply(&self.path, &self.attrs)
    }

    fn pmin_at(&self, last_notify: Timestamp) -> Timestamp {
        last_notify.saturating_add_secs(u64::from(self.attrs.effective_pmin()))
    }

    fn pmax_at(&self, last_notify: Timestamp) -> Option<Timestamp> {
        self.attrs
            .effective_pmax()
            .map(|p| last_notify.saturating_add_secs(u64::from(p)))
    }

    /// Inside the epmin window: changes must wait for the next evaluation.
    fn in_epmin(&self, now: Timestamp) -> bool {
        let epmin = self.attrs.effective_epmin();
        epmin > 0 && now < self.last_eval.saturating_add_secs(u64::from(epmin))
    }

    /// When the next sample is due: a deferred change at `last_eval + epmin`, epmax at `last_eval + epmax`.
    fn sample_at(&self) -> Option<Timestamp> {
        let deferred = self.deferred.then(|| {
            self.last_eval
                .saturating_add_secs(u64::from(self.attrs.effective_epmin()))
        });
        let epmax = self
            .attrs
            .effective_epmax()
            .map(|p| self.last_eval.saturating_add_secs(u64::from(p)));
        min_opt(deferred, epmax)
    }
}

fn min_opt(a: Option<Timestamp>, b: Option<Timestamp>) -> Option<Timestamp> {
    match (a, b) {
        (Some(x), Some(y)) => Some(x.min(y)),
        (x, None) => x,
        (None, y) => y,
    }
}

#[derive(Debug, Clone, Copy, PartialEq, Eq)]
enum State {
    /// Waiting for a change, pmin or pmax.
    Idle,
    /// Due, waiting in the notification queue.
    Queued(Reason),
    /// Handed out by `poll_notification`; waiting for `notified` / `not_sent`.
    InFlight(Delivery),
    /// Became due while the server was offline and does not store: send the latest state when it is back.
    WaitingOnline,
}

#[derive(Debug, Clone)]
struct Observation {
    ssid: u16,
    token: Token,
    targets: Vec<Target>,
    /// The last notified values (or the Observe response's).
    leaves: Leaves,
    /// The last notification (or the Observe response): start of pmin and pmax.
    last_notify: Timestamp,
    /// The last confirmable notification (or the Observe response).
    last_con: Timestamp,
    state: State,
    /// In the evaluation queue.
    eval_queued: bool,
    /// Notifications were stored for it while its server was offline: flush when back online.
    stored_offline: bool,
}

impl Observation {
    /// The next time a notification falls due (only meaningful in [`State::Idle`]).
    fn notify_at(&self) -> Option<Timestamp> {
        self.targets.iter().fold(None, |acc, t| {
            let changed = t.triggered.then(|| t.pmin_at(self.last_notify));
            min_opt(acc, min_opt(changed, t.pmax_at(self.last_notify)))
        })
    }

    fn sample_at(&self) -> Option<Timestamp> {
        if self.state == State::WaitingOnline {
            return None;
        }
        self.targets.iter().fold(None, |acc, t| min_opt(acc, t.sample_at()))
    }

    /// The timers of this observation: the earliest of its notification and sampling times.
    fn next_timer(&self) -> Option<Timestamp> {
        let notify = if self.state == State::Idle {
            self.notify_at()
        } else {
            None
        };
        min_opt(notify, self.sample_at())
    }

    /// Evaluates changed values of `target` (index) and marks it triggered when they meet its criteria.
    fn evaluate(&mut self, i: usize, records: &[&Record], missing_counts: bool) {
        let Some(t) = self.targets.get(i) else { return };
        let cond = t.with_conditions();
        let mut hit = records
            .iter()
            .any(|r| triggers(&t.attrs, cond, self.leaves.get(&r.path), &r.value));
        if missing_counts && !hit {
            // A sample lists every leaf under the target: a notified leaf that is gone is a change.
            hit = self
                .leaves
                .under(&t.path)
                .any(|l| !records.iter().any(|r| r.path == l.path));
        }
        if let Some(t) = self.targets.get_mut(i) {
            t.triggered |= hit;
        }
    }
}

#[derive(Debug, Clone)]
struct ServerState {
    online: bool,
    storing: bool,
    /// Stored notifications of all observations of this server, oldest first.
    stored: VecDeque<(ObservationId, StoredNotification)>,
}

impl Default for ServerState {
    fn default() -> Self {
        ServerState {
            online: true,
            storing: true,
            stored: VecDeque::new(),
        }
    }
}

/// The sans-IO observation and notification engine (see the module documentation).
#[derive(Debug, Clone)]
pub struct ObserveEngine {
    config: ObserveConfig,
    /// The latest `now` seen; earlier ones are raised to it.
    now: Timestamp,
    next_id: u64,
    observations: BTreeMap<ObservationId, Observation>,
    by_token: BTreeMap<(u16, Token), ObservationId>,
    servers: BTreeMap<u16, ServerState>,
    notify_queue: VecDeque<ObservationId>,
    eval_queue: VecDeque<ObservationId>,
}

impl Default for ObserveEngine {
    fn default() -> Self {
        ObserveEngine::new(ObserveConfig::default())
    }
}

impl ObserveEngine {
    /// An engine without observations. Every server is online and stores notifications (`/1/x/6` defaults to
    /// true) until told otherwise.
    pub fn new(config: ObserveConfig) -> ObserveEngine {
        ObserveEngine {
            config,
            now: Timestamp::ZERO,
            next_id: 1,
            observations: BTreeMap::new(),
            by_token: BTreeMap::new(),
            servers: BTreeMap::new(),
            notify_queue: VecDeque::new(),
            eval_queue: VecDeque::new(),
        }
    }

    /// The configuration.
    pub fn config(&self) -> &ObserveConfig {
        &self.config
    }

    fn clock(&mut self, now: Timestamp) -> Timestamp {
        self.now = self.now.max(now);
        self.now
    }

    /// Starts an observation (Observe: one target; Observe-Composite: several). `attributes[k]` are the
    /// effective attributes of `targets[k]` for this server (computed by the caller with
    /// `lwm2m_core::attributes::effective`, server defaults `/1/x/2`, `/1/x/3` first). `current` are the leaf
    /// values under the targets as sent in the 2.05 response, which counts as the first notification: pmin,
    /// pmax and the 24 h CON clock start at `now`.
    ///
    /// An observation with the same server and token is replaced (RFC 7641 re-registration); its id is not
    /// reused.
    pub fn observe(
        &mut self,
        now: Timestamp,
        ssid: u16,
        token: &[u8],
        targets: Vec<Path>,
        attributes: Vec<Attributes>,
        current: &[Record],
    ) -> Result<ObservationId, ObserveError> {
        let token = Token::new(token)?;
        if targets.is_empty() {
            return Err(ObserveError::NoTargets);
        }
        if targets.len() != attributes.len() {
            return Err(ObserveError::AttributeCountMismatch {
                targets: targets.len(),
                attributes: attributes.len(),
            });
        }
        let now = self.clock(now);
        let replaced = self.by_token.get(&(ssid, token)).copied();
        let held = self.observations.values().filter(|o| o.ssid == ssid).count() - usize::from(replaced.is_some());
        if held >= self.config.max_observations_per_server {
            return Err(ObserveError::TooManyObservations {
                ssid,
                max: self.config.max_observations_per_server,
            });
        }
        if let Some(old) = replaced {
            self.remove(old);
        }
        let id = ObservationId(self.next_id);
        self.next_id += 1;
        let leaves = Leaves::from_records(targets.iter(), current);
        let targets = targets
            .into_iter()
            .zip(attributes)
            .map(|(path, attrs)| Target {
                path,
                attrs,
                triggered: false,
                deferred: false,
                sampling: false,
                last_eval: now,
            })
            .collect();
        self.observations.insert(
            id,
            Observation {
                ssid,
                token,
                targets,
                leaves,
                last_notify: now,
                last_con: now,
                state: State::Idle,
                eval_queued: false,
                stored_offline: false,
            },
        );
        self.by_token.insert((ssid, token), id);
        self.advance(now);
        Ok(id)
    }

    fn remove(&mut self, id: ObservationId) -> bool {
        let Some(obs) = self.observations.remove(&id) else {
            return false;
        };
        self.by_token.remove(&(obs.ssid, obs.token));
        if let Some(s) = self.servers.get_mut(&obs.ssid) {
            s.stored.retain(|(o, _)| *o != id);
        }
        self.notify_queue.retain(|o| *o != id);
        self.eval_queue.retain(|o| *o != id);
        true
    }

    /// Cancels the observation of `ssid` with `token` (Cancel Observation, or a CoAP RST in reply to a Notify,
    /// or a confirmable Notify that timed out). Returns its id, `None` when there was none. Its stored
    /// notifications are dropped.
    pub fn cancel(&mut self, ssid: u16, token: &[u8]) -> Option<ObservationId> {
        let token = Token::new(token).ok()?;
        let id = self.by_token.get(&(ssid, token)).copied()?;
        self.remove(id);
        Some(id)
    }

    /// Cancels one observation by id; false when unknown.
    pub fn cancel_id(&mut self, id: ObservationId) -> bool {
        self.remove(id)
    }

    /// Cancels every observation of a server (De-register, registration lost or replaced, server account
    /// deleted) and drops its stored notifications. Returns the ids cancelled.
    pub fn cancel_server(&mut self, ssid: u16) -> Vec<ObservationId> {
        let ids: Vec<ObservationId> = self
            .observations
            .iter()
            .filter(|(_, o)| o.ssid == ssid)
            .map(|(id, _)| *id)
            .collect();
        for id in &ids {
            self.remove(*id);
        }
        if let Some(s) = self.servers.get_mut(&ssid) {
            s.stored.clear();
        }
        ids
    }

    /// The observation of `ssid` with `token`, if any.
    pub fn find(&self, ssid: u16, token: &[u8]) -> Option<ObservationId> {
        let token = Token::new(token).ok()?;
        self.by_token.get(&(ssid, token)).copied()
    }

    /// The server and target paths of an observation.
    pub fn targets(&self, id: ObservationId) -> Option<(u16, Vec<Path>)> {
        let o = self.observations.get(&id)?;
        Some((o.ssid, o.targets.iter().map(|t| t.path).collect()))
    }

    /// The number of active observations.
    pub fn len(&self) -> usize {
        self.observations.len()
    }

    /// True when there is no observation.
    pub fn is_empty(&self) -> bool {
        self.observations.is_empty()
    }

    /// Reports values that changed anywhere in the data model (leaf records: resources or resource
    /// instances). Each observation whose target is the record's path or an ancestor of it (a change of
    /// `/3/0/9` affects `/3`, `/3/0` and `/3/0/9`) evaluates it against the last notified value. Values equal
    /// to the last notified one are not changes. Inside a target's epmin window the evaluation is deferred to
    /// a sample at the end of the window. Report only what a Read by the server would return (readable
    /// resources): anything reported under an object or instance target triggers it.
    pub fn value_changed(&mut self, now: Timestamp, records: &[Record]) {
        let now = self.clock(now);
        self.advance(now);
        for obs in self.observations.values_mut() {
            if obs.state == State::WaitingOnline {
                continue;
            }
            for i in 0..obs.targets.len() {
                let Some(t) = obs.targets.get(i) else { continue };
                let under: Vec<&Record> = records.iter().filter(|r| t.path.starts(&r.path)).collect();
                if under.is_empty() {
                    continue;
                }
                if t.in_epmin(now) {
                    if let Some(t) = obs.targets.get_mut(i) {
                        t.deferred = true;
                    }
                    continue;
                }
                obs.evaluate(i, &under, false);
                if let Some(t) = obs.targets.get_mut(i) {
                    t.last_eval = now;
                }
            }
        }
        self.advance(now);
    }

    /// Reports a change at `paths` without values: instances created or deleted, or values the caller does
    /// not want to pass. Every target at, above or below one of the paths is triggered (gt/lt/st cannot hold
    /// such a change back), subject to epmin like [`ObserveEngine::value_changed`].
    pub fn paths_changed(&mut self, now: Timestamp, paths: &[Path]) {
        let now = self.clock(now);
        self.advance(now);
        for obs in self.observations.values_mut() {
            if obs.state == State::WaitingOnline {
                continue;
            }
            for t in &mut obs.targets {
                if !paths.iter().any(|p| p.starts(&t.path) || t.path.starts(p)) {
                    continue;
                }
                if t.in_epmin(now) {
                    t.deferred = true;
                } else {
                    t.triggered = true;
                    t.last_eval = now;
                }
            }
        }
        self.advance(now);
    }

    /// Reports the values read for an [`Evaluate`] request: all leaves under the requested paths, changed or
    /// not. They are compared with the last notified values (a leaf that disappeared counts as a change).
    /// Records for targets that were not requested are evaluated like [`ObserveEngine::value_changed`] but
    /// without the epmin window (a sample is an evaluation).
    pub fn sampled(&mut self, now: Timestamp, id: ObservationId, records: &[Record]) -> Result<(), ObserveError> {
        let now = self.clock(now);
        if !self.observations.contains_key(&id) {
            return Err(ObserveError::UnknownObservation(id));
        }
        self.advance(now);
        if let Some(obs) = self.observations.get_mut(&id) {
            if obs.state != State::WaitingOnline {
                for i in 0..obs.targets.len() {
                    let Some(t) = obs.targets.get(i) else { continue };
                    let under: Vec<&Record> = records.iter().filter(|r| t.path.starts(&r.path)).collect();
                    let requested = t.sampling;
                    if under.is_empty() && !requested {
                        continue;
                    }
                    obs.evaluate(i, &under, requested);
                    if let Some(t) = obs.targets.get_mut(i) {
                        t.sampling = false;
                        t.deferred = false;
                        t.last_eval = now;
                    }
                }
            }
        }
        self.advance(now);
        Ok(())
    }

    /// Write-Attributes (or a change of `/1/x/2`, `/1/x/3`) for server `ssid`: `effective(path)` gives the new
    /// effective attributes of a target path. Every target of the server's observations takes them; timers are
    /// re-evaluated from the last notification and evaluation (a new pmax that has already passed makes a
    /// notification due now). Triggers already recorded stay.
    pub fn attributes_changed(&mut self, now: Timestamp, ssid: u16, mut effective: impl FnMut(&Path) -> Attributes) {
        let now = self.clock(now);
        self.advance(now);
        for obs in self.observations.values_mut().filter(|o| o.ssid == ssid) {
            for t in &mut obs.targets {
                t.attrs = effective(&t.path);
            }
        }
        self.advance(now);
    }

    /// The server went offline / disabled (`false`) or is back and reachable (`true`). While offline, due
    /// notifications are handed out with [`Delivery::Store`] when the server stores notifications, and are
    /// otherwise held until it is back, when only the latest state is sent. Back online, every observation
    /// with stored or held notifications gets a [`Reason::BackOnline`] notification.
    pub fn set_online(&mut self, now: Timestamp, ssid: u16, online: bool) {
        let now = self.clock(now);
        self.advance(now);
        let server = self.servers.entry(ssid).or_default();
        let was = server.online;
        server.online = online;
        if online && !was {
            // Flush in the order the first notification of each fell due (oldest first); held ones after.
            let mut flush: Vec<(Timestamp, ObservationId)> = Vec::new();
            for (id, obs) in self.observations.iter().filter(|(_, o)| o.ssid == ssid) {
                if obs.state == State::WaitingOnline || (obs.state == State::Idle && obs.stored_offline) {
                    let first = server.stored.iter().find(|(o, _)| o == id).map(|(_, s)| s.time);
                    flush.push((first.unwrap_or(Timestamp::MAX), *id));
                }
            }
            flush.sort();
            for (_, id) in flush {
                if let Some(obs) = self.observations.get_mut(&id) {
                    obs.state = State::Queued(Reason::BackOnline);
                    self.notify_queue.push_back(id);
                }
            }
        }
        self.advance(now);
    }

    /// Notification Storing When Disabled or Offline (`/1/x/6`) of server `ssid` (default true). Switching it
    /// off keeps what is already stored.
    pub fn set_storing(&mut self, ssid: u16, storing: bool) {
        self.servers.entry(ssid).or_default().storing = storing;
    }

    /// Whether the engine considers server `ssid` online.
    pub fn is_online(&self, ssid: u16) -> bool {
        self.servers.get(&ssid).is_none_or(|s| s.online)
    }

    /// The number of notifications stored for server `ssid`.
    pub fn stored_count(&self, ssid: u16) -> usize {
        self.servers.get(&ssid).map_or(0, |s| s.stored.len())
    }

    /// Runs the timers due at `now`.
    pub fn handle_timeout(&mut self, now: Timestamp) {
        let now = self.clock(now);
        self.advance(now);
    }

    /// The next time [`ObserveEngine::handle_timeout`] must be called; `None` when no timer runs. Never earlier
    /// than the latest `now` given to the engine.
    pub fn poll_timeout(&self) -> Option<Timestamp> {
        self.observations
            .values()
            .fold(None, |acc, o| min_opt(acc, o.next_timer()))
            .map(|t| t.max(self.now))
    }

    /// Fires every timer due at `now`: queues notifications and sample requests.
    fn advance(&mut self, now: Timestamp) {
        for (id, obs) in self.observations.iter_mut() {
            let mut sample = false;
            if obs.state != State::WaitingOnline {
                for t in &mut obs.targets {
                    if t.sample_at().is_some_and(|at| at <= now) {
                        t.sampling = true;
                        t.deferred = false;
                        t.last_eval = now;
                        sample = true;
                    }
                }
            }
            if sample && !obs.eval_queued {
                obs.eval_queued = true;
                self.eval_queue.push_back(*id);
            }
            if obs.state == State::Idle && obs.notify_at().is_some_and(|at| at <= now) {
                let changed = obs
                    .targets
                    .iter()
                    .any(|t| t.triggered && t.pmin_at(obs.last_notify) <= now);
                let reason = if changed { Reason::Changed } else { Reason::PmaxExpired };
                obs.state = State::Queued(reason);
                self.notify_queue.push_back(*id);
            }
        }
    }

    /// The next notification to produce, in the order they fell due.
    pub fn poll_notification(&mut self) -> Option<Notify> {
        while let Some(id) = self.notify_queue.pop_front() {
            let Some(obs) = self.observations.get_mut(&id) else {
                continue;
            };
            let State::Queued(reason) = obs.state else { continue };
            let server = self.servers.entry(obs.ssid).or_default();
            let delivery = if server.online {
                Delivery::Send
            } else if server.storing {
                Delivery::Store
            } else {
                // Hold it; the latest state goes out when the server is back.
                obs.state = State::WaitingOnline;
                for t in &mut obs.targets {
                    t.triggered = false;
                    t.deferred = false;
                    t.sampling = false;
                }
                continue;
            };
            for t in &mut obs.targets {
                t.triggered = false;
            }
            obs.state = State::InFlight(delivery);
            let mut confirmable = false;
            let mut stored = Vec::new();
            if delivery == Delivery::Send {
                confirmable = self
                    .config
                    .con_interval_ms
                    .is_some_and(|iv| self.now >= obs.last_con.saturating_add_millis(iv));
                if confirmable {
                    obs.last_con = self.now;
                }
                if obs.stored_offline || !server.stored.is_empty() {
                    let (mine, rest): (VecDeque<_>, VecDeque<_>) = std::mem::take(&mut server.stored)
                        .into_iter()
                        .partition(|(o, _)| *o == id);
                    server.stored = rest;
                    stored = mine.into_iter().map(|(_, s)| s).collect();
                }
                obs.stored_offline = false;
            }
            return Some(Notify {
                id,
                ssid: obs.ssid,
                token: obs.token,
                targets: obs.targets.iter().map(|t| t.path).collect(),
                reason,
                confirmable,
                delivery,
                stored,
            });
        }
        None
    }

    /// The next sample request (epmin / epmax).
    pub fn poll_evaluation(&mut self) -> Option<Evaluate> {
        while let Some(id) = self.eval_queue.pop_front() {
            let Some(obs) = self.observations.get_mut(&id) else {
                continue;
            };
            obs.eval_queued = false;
            let paths: Vec<Path> = obs.targets.iter().filter(|t| t.sampling).map(|t| t.path).collect();
            if paths.is_empty() {
                continue;
            }
            return Some(Evaluate {
                id,
                ssid: obs.ssid,
                paths,
            });
        }
        None
    }

    /// Reports a notification handed out by [`ObserveEngine::poll_notification`]: `sent` are exactly the records
    /// sent (or, for [`Delivery::Store`], read and to be stored; stored snapshots first and current values last
    /// when both were sent). They become the last notified values for gt/lt/st and change detection, and pmin
    /// and pmax restart at `now`. A notification the caller sent on its own is accepted the same way.
    pub fn notified(&mut self, now: Timestamp, id: ObservationId, sent: &[Record]) -> Result<(), ObserveError> {
        let now = self.clock(now);
        let obs = self
            .observations
            .get_mut(&id)
            .ok_or(ObserveError::UnknownObservation(id))?;
        obs.leaves = Leaves::from_records(obs.targets.iter().map(|t| &t.path), sent);
        obs.last_notify = now;
        let server = self.servers.entry(obs.ssid).or_default();
        if obs.state == State::InFlight(Delivery::Store) {
            if self.config.max_stored_per_server > 0 {
                server.stored.push_back((
                    id,
                    StoredNotification {
                        time: now,
                        records: sent.to_vec(),
                    },
                ));
                while server.stored.len() > self.config.max_stored_per_server {
                    server.stored.pop_front();
                }
            }
            obs.stored_offline = true;
        }
        if obs.stored_offline && server.online {
            // The server came back while this one was being stored.
            obs.state = State::Queued(Reason::BackOnline);
            self.notify_queue.push_back(id);
        } else {
            obs.state = State::Idle;
        }
        self.advance(now);
        Ok(())
    }

    /// Reports that a notification handed out was not sent: the server has no Read access any more (digest
    /// §6.1), or reading failed. The last notified values stay; pmin and pmax restart at `now`, so pmax does
    /// not fire again at once. (A confirmable notification that timed out ends the observation instead:
    /// [`ObserveEngine::cancel`].)
    pub fn not_sent(&mut self, now: Timestamp, id: ObservationId) -> Result<(), ObserveError> {
        let now = self.clock(now);
        let obs = self
            .observations
            .get_mut(&id)
            .ok_or(ObserveError::UnknownObservation(id))?;
        if matches!(obs.state, State::InFlight(_)) {
            obs.state = State::Idle;
            obs.last_notify = now;
        }
        self.advance(now);
        Ok(())
    }
}
