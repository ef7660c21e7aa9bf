//! One bootstrap session as a sans-IO state machine (digest §3): it produces the requests to send to the
//! device and consumes their responses; no socket, no clock (the wall-clock time is given when the session
//! starts). [`crate::server`] runs it over a CoAP socket; tests run it by hand.
//!
//! The sequence, after the Bootstrap-Request was accepted:
//!
//! 1. **Bootstrap-Discover `/`** (Accept 40): the objects, instances and existing accounts (ssid and uri on
//!    Security instances, ssid on Server instances; the 1.1 form and the legacy `lwm2m="1.0"` form).
//! 2. **Bootstrap-Read `/1`** (1.1 clients, when Server instances exist): each account's settings, including
//!    `/1/x/11` TLS-DTLS Alert Code and `/1/x/12` Last Bootstrapped.
//! 3. **Bootstrap-Read `/2`** (BsR-1, when Access Control instances exist): the complete ACL state, reported as
//!    [`SessionEvent::AclState`].
//! 4. **Decide** per existing account (BsR-7, [`RepairPolicy`](crate::config::RepairPolicy)): keep a valid
//!    configured account untouched, rewrite a stale one (URI changed, alert code, Last Bootstrapped too
//!    old, values differing from the configuration), delete one whose SSID or URI is not configured;
//!    reported as [`SessionEvent::AccountsFound`] and [`SessionEvent::Repaired`]. With
//!    `delete_before_write` the session sends `DELETE /` instead and writes everything.
//! 5. **Bootstrap-Delete** the invalid accounts and the configured explicit deletes.
//! 6. **Bootstrap-Write** the Bootstrap-Server account (when configured), the Security and Server instances
//!    of new and stale accounts, the Access Control instances that differ from the device's, and the other
//!    configured writes, one instance per request, in the client's preferred format (`pct`; else SenML
//!    CBOR for 1.1 clients and TLV for 1.0 clients).
//! 7. **Bootstrap-Finish**. 2.04 ends the session ([`SessionEvent::Finished`]); 4.06 means the client found the
//!    configuration inconsistent: the session fails with a reason naming the likely cause, or (policy
//!    `rewrite-all`) starts over once with `DELETE /` and the whole configuration.
//!
//! A write refused by the client, or a request without an answer, fails the session without Finish (the
//! client then restores its Bootstrap-Server account and retries later). Every request and its result is
//! reported as [`SessionEvent::Operation`].

use std::collections::{BTreeMap, BTreeSet, VecDeque};
use std::fmt;

use lwm2m_coap::{Code, Message};
use lwm2m_core::format::link::{self, BootstrapDiscover};
use lwm2m_core::format::{self, ContentFormat};
use lwm2m_core::model::Version;
use lwm2m_core::path::MAX_ID;
use lwm2m_core::{InstanceNode, ModelRegistry, Models, Node, Path, ResourceValue, Value};

use crate::config::{can_carry_instances, value_u64, AclEntry, BootstrapConfig, OnFinishRejected, Rights};

const SECURITY: u16 = 0;
const SERVER: u16 = 1;
const ACCESS_CONTROL: u16 = 2;
const DEVICE: u16 = 3;
const OSCORE: u16 = 21;

/// An operation of the Bootstrap interface (plus the Execute of the BsR-2 trigger).
#[derive(Debug, Clone, Copy, PartialEq, Eq, Hash)]
pub enum Operation {
    /// `POST /bs?ep=..` from the device.
    BootstrapRequest,
    /// `GET` with Accept 40.
    Discover,
    /// `GET /1`, `/2`.
    Read,
    /// `PUT`.
    Write,
    /// `DELETE`.
    Delete,
    /// `POST /bs`.
    Finish,
    /// `POST /1/x/9` (Bootstrap-Request Trigger, BsR-2).
    Execute,
}

impl Operation {
    /// The LwM2M name (`Bootstrap-Write`, ...).
    pub fn name(self) -> &'static str {
        match self {
            Operation::BootstrapRequest => "Bootstrap-Request",
            Operation::Discover => "Bootstrap-Discover",
            Operation::Read => "Bootstrap-Read",
            Operation::Write => "Bootstrap-Write",
            Operation::Delete => "Bootstrap-Delete",
            Operation::Finish => "Bootstrap-Finish",
            Operation::Execute => "Execute",
        }
    }
}

impl fmt::Display for Operation {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.write_str(self.name())
    }
}

/// A request for the device.
#[derive(Debug, Clone, PartialEq)]
pub struct BsRequest {
    /// What it is.
    pub op: Operation,
    /// The target (`/` for Discover of everything and for Delete of everything; unused for Finish).
    pub path: Path,
    /// The payload's format (writes).
    pub content_format: Option<ContentFormat>,
    /// The payload (writes).
    pub payload: Vec<u8>,
}

impl BsRequest {
    fn new(op: Operation, path: Path) -> BsRequest {
        BsRequest {
            op,
            path,
            content_format: None,
            payload: Vec::new(),
        }
    }

    /// The path as shown in logs (`/bs` for Finish).
    pub fn path_string(&self) -> String {
        match self.op {
            Operation::Finish | Operation::BootstrapRequest => "/bs".into(),
            _ => self.path.to_string(),
        }
    }

    /// The CoAP request (CON).
    pub fn to_message(&self) -> Message {
        let path = self.path.to_string();
        match self.op {
            Operation::Discover => {
                let mut m = Message::request(Code::GET, &path);
                m.set_accept(ContentFormat::Link.code());
                m
            }
            Operation::Read => Message::request(Code::GET, &path),
            Operation::Write => {
                let mut m = Message::request(Code::PUT, &path).with_payload(self.payload.clone());
                if let Some(cf) = self.content_format {
                    m.set_content_format(cf.code());
                }
                m
            }
            Operation::Delete => Message::request(Code::DELETE, &path),
            Operation::Finish | Operation::BootstrapRequest => Message::request(Code::POST, "/bs"),
            Operation::Execute => Message::request(Code::POST, &path),
        }
    }
}

/// The device's answer to a [`BsRequest`].
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct BsResponse {
    /// The response code.
    pub code: Code,
    /// Its Content-Format, if any.
    pub content_format: Option<u16>,
    /// Its payload.
    pub payload: Vec<u8>,
}

impl BsResponse {
    /// A response with only a code.
    pub fn code(code: Code) -> BsResponse {
        BsResponse {
            code,
            content_format: None,
            payload: Vec::new(),
        }
    }

    /// A response with content.
    pub fn content(code: Code, format: ContentFormat, payload: impl Into<Vec<u8>>) -> BsResponse {
        BsResponse {
            code,
            content_format: Some(format.code()),
            payload: payload.into(),
        }
    }
}

impl From<&Message> for BsResponse {
    fn from(m: &Message) -> Self {
        BsResponse {
            code: m.code,
            content_format: m.content_format(),
            payload: m.payload.clone(),
        }
    }
}

/// A LwM2M Server account found on the device (Bootstrap-Discover, Bootstrap-Read of `/1`).
#[derive(Debug, Clone, PartialEq, Default)]
pub struct ExistingAccount {
    /// Short Server ID.
    pub ssid: u16,
    /// The URI on its Security instance (1.1 Bootstrap-Discover).
    pub uri: Option<String>,
    /// Its Security instance.
    pub security_instance: Option<u16>,
    /// Its Server instance.
    pub server_instance: Option<u16>,
    /// `/1/x/11` TLS-DTLS Alert Code.
    pub tls_alert_code: Option<u64>,
    /// `/1/x/12` Last Bootstrapped (Unix time).
    pub last_bootstrapped: Option<i64>,
    /// Every Server resource Bootstrap-Read returned (rid → value).
    pub server_values: BTreeMap<u16, Value>,
}

/// An account the session deleted or rewrote, and why.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct RepairedAccount {
    /// Short Server ID.
    pub ssid: u16,
    /// Its URI on the device, when known.
    pub uri: Option<String>,
    /// Its Security instance on the device.
    pub security_instance: Option<u16>,
    /// Its Server instance on the device.
    pub server_instance: Option<u16>,
    /// Why (e.g. `"TLS-DTLS alert code 40"`, `"SSID 7 is not configured"`).
    pub reasons: Vec<String>,
    /// Rewritten accounts only: deleted first, then written anew (policy `rewrite_stale_accounts = false`).
    pub recreated: bool,
}

/// A server account as the session left it on the device.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct AccountRecord {
    /// Short Server ID.
    pub ssid: u16,
    /// URI (the configured one for accounts the session wrote).
    pub uri: Option<String>,
    /// Security instance id.
    pub security_instance: Option<u16>,
    /// Server instance id.
    pub server_instance: Option<u16>,
}

/// What a session reports.
#[derive(Debug, Clone, PartialEq)]
pub enum SessionEvent {
    /// A request was answered (`code`), or got no answer (`code: None`, `detail` says why).
    Operation {
        /// The operation.
        op: Operation,
        /// Its path (`/bs` for Finish).
        path: String,
        /// The response code.
        code: Option<Code>,
        /// Details (a decoding problem, why a request got no answer, ...).
        detail: Option<String>,
    },
    /// BsR-7: what the device holds (after Discover and the reads).
    AccountsFound {
        /// The enabler version of Bootstrap-Discover (`1.1`, or `1.0` for the legacy form).
        lwm2m_version: Option<String>,
        /// LwM2M Server accounts, by SSID.
        accounts: Vec<ExistingAccount>,
        /// The Bootstrap-Server account's Security instance.
        bootstrap_instance: Option<u16>,
        /// Every object and instance Bootstrap-Discover listed.
        objects: Vec<Path>,
    },
    /// BsR-1: the complete Access Control state of the device (Bootstrap-Read of `/2`).
    AclState {
        /// Whether the device supports Object 2 at all.
        supported: bool,
        /// Every ACL instance (with its `acl_instance` id).
        acls: Vec<AclEntry>,
    },
    /// BsR-7: the decision per account.
    Repaired {
        /// Accounts deleted (SSID or URI not configured, duplicates, or everything with `DELETE /`).
        deleted: Vec<RepairedAccount>,
        /// Configured accounts that were stale and are rewritten.
        rewritten: Vec<RepairedAccount>,
        /// SSIDs of valid accounts left untouched.
        kept: Vec<u16>,
        /// SSIDs of configured accounts the device did not have.
        created: Vec<u16>,
    },
    /// Bootstrap-Finish was answered 2.04.
    Finished {
        /// The server accounts on the device.
        accounts: Vec<AccountRecord>,
    },
    /// The session failed.
    Failed {
        /// Why, in words.
        reason: String,
    },
}

#[derive(Debug, Clone, Copy, PartialEq, Eq)]
enum Phase {
    Start,
    Discover,
    ReadServers,
    ReadAcls,
    Execute,
    Finish,
    Done,
}

/// Inputs of a session besides its configuration.
#[derive(Debug, Clone, PartialEq, Eq, Default)]
pub struct SessionParams {
    /// The `pct` of the Bootstrap-Request.
    pub pct: Option<ContentFormat>,
    /// The current Unix time in seconds (for `/1/x/12` and the Last Bootstrapped policy).
    pub now_unix_s: i64,
}

/// Why a Bootstrap-Request's `pct` is refused.
pub fn check_pct(value: Option<&str>, config: &BootstrapConfig) -> Result<Option<ContentFormat>, (Code, String)> {
    let Some(v) = value else { return Ok(None) };
    let n: u16 = v
        .parse()
        .map_err(|_| (Code::BAD_REQUEST, format!("pct={v:?} is not a Content-Format number")))?;
    match ContentFormat::from_code(n) {
        Some(f) if can_carry_instances(f) => Ok(Some(f)),
        _ if config.content_format.is_some() => Ok(None),
        _ => Err((
            Code::UNSUPPORTED_CONTENT_FORMAT,
            format!("pct={n}: the Bootstrap-Server writes TLV (11542), SenML CBOR (112), SenML JSON (110) or LwM2M JSON (11543)"),
        )),
    }
}

/// One bootstrap session (see the module docs).
#[derive(Debug)]
pub struct Session {
    config: BootstrapConfig,
    models: ModelRegistry,
    params: SessionParams,
    phase: Phase,
    outstanding: Option<BsRequest>,
    queue: VecDeque<BsRequest>,
    events: VecDeque<SessionEvent>,
    discover: Option<BootstrapDiscover>,
    server_nodes: BTreeMap<u16, InstanceNode>,
    acls: Vec<AclEntry>,
    acls_known: bool,
    rewrite_all_done: bool,
    accounts: Vec<AccountRecord>,
    outcome: Option<Result<(), String>>,
}

impl Session {
    /// A session applying `config`, typed with the built-in models.
    pub fn new(config: BootstrapConfig, params: SessionParams) -> Session {
        Session::with_models(config, params, ModelRegistry::builtin())
    }

    /// A session applying `config`, with `models` for typing values (Bootstrap-Read, extra writes).
    pub fn with_models(config: BootstrapConfig, params: SessionParams, models: ModelRegistry) -> Session {
        Session {
            config,
            models,
            params,
            phase: Phase::Start,
            outstanding: None,
            queue: VecDeque::new(),
            events: VecDeque::new(),
            discover: None,
            server_nodes: BTreeMap::new(),
            acls: Vec::new(),
            acls_known: false,
            rewrite_all_done: false,
            accounts: Vec::new(),
            outcome: None,
        }
    }

    /// The next request to send, when none is outstanding and the session is not over.
    pub fn poll_request(&mut self) -> Option<BsRequest> {
        if self.outstanding.is_some() {
            return None;
        }
        let next = match self.phase {
            Phase::Start => {
                self.phase = Phase::Discover;
                Some(BsRequest::new(Operation::Discover, Path::ROOT))
            }
            Phase::Execute => match self.queue.pop_front() {
                Some(r) => Some(r),
                None => {
                    self.phase = Phase::Finish;
                    Some(BsRequest::new(Operation::Finish, Path::ROOT))
                }
            },
            Phase::ReadServers | Phase::ReadAcls => self.queue.pop_front(),
            Phase::Discover | Phase::Finish | Phase::Done => None,
        };
        self.outstanding.clone_from(&next);
        next
    }

    /// The answer to the outstanding request: the device's response, or why there is none (timeout, RST,
    /// DTLS failure).
    pub fn handle_response(&mut self, response: Result<BsResponse, String>) {
        let Some(req) = self.outstanding.take() else { return };
        let path = req.path_string();
        let r = match response {
            Err(why) => {
                self.events.push_back(SessionEvent::Operation {
                    op: req.op,
                    path: path.clone(),
                    code: None,
                    detail: Some(why.clone()),
                });
                self.fail(format!("{} {path}: no answer ({why})", req.op));
                return;
            }
            Ok(r) => r,
        };
        let mut detail = None;
        match req.op {
            Operation::Discover => {
                if r.code == Code::CONTENT {
                    match link::parse_bootstrap_discover(&r.payload) {
                        Ok(d) => self.discover = Some(d),
                        Err(e) => detail = Some(format!("unparsable Bootstrap-Discover payload: {e}")),
                    }
                }
                self.log(req.op, path, r.code, detail);
                if self.discover.is_none() && !self.config.delete_before_write {
                    self.fail(format!(
                        "Bootstrap-Discover / answered {}: the existing accounts and the Bootstrap-Server account \
                         cannot be located (set delete_before_write to provision such a device blindly)",
                        r.code
                    ));
                    return;
                }
                self.after_discover();
            }
            Operation::Read if req.path == Path::object(SERVER) => {
                if r.code == Code::CONTENT {
                    match self.decode_object(SERVER, &r) {
                        Ok(o) => self.server_nodes = o,
                        Err(e) => detail = Some(e),
                    }
                }
                self.log(req.op, path, r.code, detail);
                self.after_server_read();
            }
            Operation::Read => {
                if r.code == Code::CONTENT {
                    match self.decode_object(ACCESS_CONTROL, &r) {
                        Ok(o) => {
                            self.acls = o.values().filter_map(AclEntry::from_node).collect();
                            self.acls_known = true;
                        }
                        Err(e) => detail = Some(e),
                    }
                }
                self.log(req.op, path, r.code, detail);
                if self.acls_known {
                    self.events.push_back(SessionEvent::AclState {
                        supported: true,
                        acls: self.acls.clone(),
                    });
                }
                self.plan();
            }
            Operation::Write | Operation::Execute | Operation::BootstrapRequest => {
                let ok = r.code == Code::CHANGED;
                self.log(req.op, path.clone(), r.code, None);
                if !ok && req.op == Operation::Write {
                    self.fail(format!("{} {path} answered {}", req.op, r.code));
                }
            }
            Operation::Delete => {
                if r.code != Code::DELETED {
                    detail = Some("not deleted; the session goes on".into());
                }
                self.log(req.op, path, r.code, detail);
            }
            Operation::Finish => {
                self.log(req.op, path, r.code, None);
                if r.code == Code::CHANGED {
                    self.phase = Phase::Done;
                    self.outcome = Some(Ok(()));
                    self.events.push_back(SessionEvent::Finished {
                        accounts: self.accounts.clone(),
                    });
                } else if r.code == Code::NOT_ACCEPTABLE {
                    if self.config.on_finish_rejected == OnFinishRejected::RewriteAll && !self.rewrite_all_done {
                        self.rewrite_all_done = true;
                        self.plan_full(true);
                    } else {
                        let diag = String::from_utf8_lossy(&r.payload).trim().to_string();
                        let mut reason = "Bootstrap-Finish answered 4.06 Not Acceptable: the client found the \
                                          configuration inconsistent"
                            .to_string();
                        if !diag.is_empty() {
                            reason.push_str(&format!(" ({diag})"));
                        }
                        let hints = self.consistency_hints();
                        if !hints.is_empty() {
                            reason.push_str(&format!("; likely cause: {}", hints.join("; ")));
                        }
                        if self.rewrite_all_done {
                            reason.push_str("; rewriting everything did not help");
                        }
                        self.fail(reason);
                    }
                } else {
                    self.fail(format!("Bootstrap-Finish answered {}", r.code));
                }
            }
        }
    }

    /// The next event.
    pub fn poll_event(&mut self) -> Option<SessionEvent> {
        self.events.pop_front()
    }

    /// True once the session finished or failed.
    pub fn is_done(&self) -> bool {
        self.phase == Phase::Done
    }

    /// `Some(Ok(()))` after a 2.04 Finish, `Some(Err(reason))` after a failure, `None` while running.
    pub fn outcome(&self) -> Option<&Result<(), String>> {
        self.outcome.as_ref()
    }

    /// The server accounts the session left on the device (valid once it finished).
    pub fn accounts(&self) -> &[AccountRecord] {
        &self.accounts
    }

    /// Ends the session from outside (a newer Bootstrap-Request replaced it, shutdown).
    pub fn abort(&mut self, reason: impl Into<String>) {
        if self.phase != Phase::Done {
            self.outstanding = None;
            self.fail(reason.into());
        }
    }

    fn log(&mut self, op: Operation, path: String, code: Code, detail: Option<String>) {
        self.events.push_back(SessionEvent::Operation {
            op,
            path,
            code: Some(code),
            detail,
        });
    }

    fn fail(&mut self, reason: String) {
        self.phase = Phase::Done;
        self.queue.clear();
        self.outcome = Some(Err(reason.clone()));
        self.events.push_back(SessionEvent::Failed { reason });
    }

    fn version(&self) -> Option<Version> {
        self.discover.as_ref().and_then(|d| d.lwm2m_version)
    }

    fn is_1_0(&self) -> bool {
        self.version().is_some_and(|v| v < Version::V1_1)
    }

    fn instances_of(&self, oid: u16) -> Vec<u16> {
        self.discover
            .iter()
            .flat_map(|d| d.entries.iter())
            .filter(|e| e.path.is_instance() && e.path.object_id() == Some(oid))
            .filter_map(|e| e.path.instance_id())
            .collect()
    }

    fn has_object(&self, oid: u16) -> bool {
        self.discover
            .iter()
            .flat_map(|d| d.entries.iter())
            .any(|e| e.path.object_id() == Some(oid))
    }

    fn decode_object(&self, oid: u16, r: &BsResponse) -> Result<BTreeMap<u16, InstanceNode>, String> {
        let cf = match r.content_format {
            None => ContentFormat::Tlv,
            Some(n) => ContentFormat::from_code(n).ok_or_else(|| format!("unknown Content-Format {n}"))?,
        };
        match format::decode(cf, &Path::object(oid), &r.payload, &self.models) {
            Ok(Node::Object(o)) => Ok(o.instances),
            Ok(other) => Err(format!("expected object {oid}, got a node of depth {}", other.depth())),
            Err(e) => Err(format!("undecodable Bootstrap-Read /{oid}: {e}")),
        }
    }

    fn after_discover(&mut self) {
        if self.discover.is_some() && !self.is_1_0() && !self.instances_of(SERVER).is_empty() {
            self.phase = Phase::ReadServers;
            self.queue
                .push_back(BsRequest::new(Operation::Read, Path::object(SERVER)));
        } else {
            self.after_server_read();
        }
    }

    fn after_server_read(&mut self) {
        let (accounts, _, _) = self.existing();
        self.events.push_back(self.accounts_found(&accounts));
        if !self.config.read_acls || self.discover.is_none() {
            self.plan();
            return;
        }
        if !self.has_object(ACCESS_CONTROL) {
            self.events.push_back(SessionEvent::AclState {
                supported: false,
                acls: Vec::new(),
            });
            self.plan();
        } else if self.instances_of(ACCESS_CONTROL).is_empty() {
            self.acls_known = true;
            self.events.push_back(SessionEvent::AclState {
                supported: true,
                acls: Vec::new(),
            });
            self.plan();
        } else if self.is_1_0() {
            // 1.0 has no Bootstrap-Read: the ACL contents stay unknown.
            self.plan();
        } else {
            self.phase = Phase::ReadAcls;
            self.queue
                .push_back(BsRequest::new(Operation::Read, Path::object(ACCESS_CONTROL)));
        }
    }

    /// The format of the writes.
    fn write_format(&self) -> ContentFormat {
        if let Some(f) = self.config.content_format {
            return f;
        }
        if let Some(f) = self.params.pct.filter(|f| can_carry_instances(*f)) {
            return f;
        }
        if self.is_1_0() {
            ContentFormat::Tlv
        } else {
            ContentFormat::SenmlCbor
        }
    }

    /// The accounts on the device, and the instances to delete as duplicates.
    fn existing(&self) -> (BTreeMap<u16, ExistingAccount>, Option<u16>, Vec<Path>) {
        let mut accounts: BTreeMap<u16, ExistingAccount> = BTreeMap::new();
        let mut duplicates = Vec::new();
        let mut bs = None;
        let entries = self.discover.iter().flat_map(|d| d.entries.iter());
        for e in entries.clone().filter(|e| e.path.is_instance()) {
            let (Some(oid), Some(iid)) = (e.path.object_id(), e.path.instance_id()) else {
                continue;
            };
            match oid {
                SECURITY => match e.ssid {
                    Some(ssid) => {
                        let a = accounts.entry(ssid).or_insert_with(|| ExistingAccount {
                            ssid,
                            ..ExistingAccount::default()
                        });
                        if a.security_instance.is_some() {
                            duplicates.push(e.path);
                        } else {
                            a.security_instance = Some(iid);
                            a.uri.clone_from(&e.uri);
                        }
                    }
                    None => {
                        if bs.is_none() {
                            bs = Some(iid);
                        }
                    }
                },
                SERVER => {
                    let node = self.server_nodes.get(&iid);
                    let ssid = e.ssid.or_else(|| {
                        node.and_then(|n| single(n, 0))
                            .and_then(value_u64)
                            .and_then(|v| u16::try_from(v).ok())
                    });
                    let Some(ssid) = ssid else { continue };
                    let a = accounts.entry(ssid).or_insert_with(|| ExistingAccount {
                        ssid,
                        ..ExistingAccount::default()
                    });
                    if a.server_instance.is_some() {
                        duplicates.push(e.path);
                        continue;
                    }
                    a.server_instance = Some(iid);
                    if let Some(n) = node {
                        a.tls_alert_code = single(n, 11).and_then(value_u64);
                        a.last_bootstrapped = single(n, 12).and_then(|v| match v {
                            Value::Time(t) | Value::Integer(t) => Some(*t),
                            Value::UnsignedInteger(u) => i64::try_from(*u).ok(),
                            _ => None,
                        });
                        a.server_values = n
                            .resources
                            .iter()
                            .filter_map(|(rid, r)| match &r.value {
                                ResourceValue::Single(v) => Some((*rid, v.clone())),
                                ResourceValue::Multiple(_) => None,
                            })
                            .collect();
                    }
                }
                _ => {}
            }
        }
        (accounts, bs, duplicates)
    }

    /// Why a configured account on the device is stale (empty: valid).
    fn stale_reasons(&self, a: &ExistingAccount, cfg: &crate::config::ServerAccount) -> Vec<String> {
        let policy = &self.config.repair;
        let mut out = Vec::new();
        if a.security_instance.is_none() {
            out.push("no Security instance".to_string());
        }
        if a.server_instance.is_none() {
            out.push("no Server instance".to_string());
        }
        match &a.uri {
            Some(u) if *u != cfg.uri => out.push(format!("URI {u} is not the configured {}", cfg.uri)),
            None if a.security_instance.is_some() => out.push("URI unknown (Bootstrap-Discover gave none)".to_string()),
            _ => {}
        }
        if policy.alert_code_is_stale {
            if let Some(code) = a.tls_alert_code.filter(|c| *c != 0) {
                out.push(format!("TLS-DTLS alert code {code}"));
            }
        }
        if let Some(ttl) = policy.last_bootstrapped_older_than_s {
            match a.last_bootstrapped {
                Some(t) if self.params.now_unix_s.saturating_sub(t) > i64::try_from(ttl).unwrap_or(i64::MAX) => {
                    out.push(format!("last bootstrapped at {t}, more than {ttl} s ago"))
                }
                None if a.server_instance.is_some() => out.push("never bootstrapped (no /1/x/12)".to_string()),
                _ => {}
            }
        }
        if policy.rewrite_differing && a.server_instance.is_some() && !a.server_values.is_empty() {
            let differing: Vec<u16> = cfg
                .configured_server_values()
                .into_iter()
                .filter(|(rid, v)| !a.server_values.get(rid).is_some_and(|got| same_value(got, v)))
                .map(|(rid, _)| rid)
                .collect();
            if !differing.is_empty() {
                out.push(format!("resources {differing:?} differ from the configuration"));
            }
        }
        out
    }

    /// Decides and queues the deletes and writes (BsR-7), or everything after `DELETE /`.
    fn plan(&mut self) {
        if self.config.delete_before_write || self.discover.is_none() {
            self.plan_full(false);
            return;
        }
        let (accounts, bs_iid, duplicates) = self.existing();
        let policy = self.config.repair.clone();
        let configured_uris: BTreeSet<&str> = self.config.servers.iter().map(|s| s.uri.as_str()).collect();
        let mut alloc = Allocator::new(self);
        let mut deletes: Vec<Path> = Vec::new();
        let mut writes: Vec<(Path, Node)> = Vec::new();
        let (mut deleted, mut rewritten, mut kept, mut created) = (Vec::new(), Vec::new(), Vec::new(), Vec::new());
        let mut records = Vec::new();
        // Accounts whose SSID is not configured.
        for a in accounts.values() {
            if self.config.servers.iter().any(|s| s.ssid == a.ssid) {
                continue;
            }
            let mut reasons = Vec::new();
            if policy.delete_unknown_ssids {
                reasons.push(format!("SSID {} is not configured", a.ssid));
            }
            if policy.delete_unconfigured_uris {
                if let Some(u) = a.uri.as_deref().filter(|u| !configured_uris.contains(u)) {
                    reasons.push(format!("URI {u} is not configured"));
                }
            }
            if reasons.is_empty() {
                kept.push(a.ssid);
                records.push(AccountRecord {
                    ssid: a.ssid,
                    uri: a.uri.clone(),
                    security_instance: a.security_instance,
                    server_instance: a.server_instance,
                });
                continue;
            }
            deletes.extend(a.security_instance.map(|i| Path::instance(SECURITY, i)));
            deletes.extend(a.server_instance.map(|i| Path::instance(SERVER, i)));
            deleted.push(repaired(a, reasons, false));
        }
        for p in &duplicates {
            deleted.push(RepairedAccount {
                ssid: 0,
                uri: None,
                security_instance: (p.object_id() == Some(SECURITY)).then(|| p.instance_id()).flatten(),
                server_instance: (p.object_id() == Some(SERVER)).then(|| p.instance_id()).flatten(),
                reasons: vec![format!("{p} duplicates the SSID of another instance")],
                recreated: false,
            });
            deletes.push(*p);
        }
        // Configured accounts.
        let now = self.config.set_last_bootstrapped.then_some(self.params.now_unix_s);
        for cfg in self.config.servers.clone() {
            match accounts.get(&cfg.ssid) {
                Some(a) => {
                    let reasons = self.stale_reasons(a, &cfg);
                    if reasons.is_empty() {
                        kept.push(cfg.ssid);
                        records.push(AccountRecord {
                            ssid: cfg.ssid,
                            uri: Some(cfg.uri.clone()),
                            security_instance: a.security_instance,
                            server_instance: a.server_instance,
                        });
                        continue;
                    }
                    let recreate = !policy.rewrite_stale_accounts;
                    let sec = a
                        .security_instance
                        .unwrap_or_else(|| alloc.take(SECURITY, cfg.security_instance));
                    let srv = a
                        .server_instance
                        .unwrap_or_else(|| alloc.take(SERVER, cfg.server_instance));
                    if recreate {
                        deletes.extend(a.security_instance.map(|i| Path::instance(SECURITY, i)));
                        deletes.extend(a.server_instance.map(|i| Path::instance(SERVER, i)));
                    }
                    let reset_alert = !recreate && a.tls_alert_code.is_some_and(|c| c != 0);
                    writes.push((Path::instance(SECURITY, sec), Node::Instance(cfg.security_node(sec))));
                    writes.push((
                        Path::instance(SERVER, srv),
                        Node::Instance(cfg.server_node(srv, now, reset_alert)),
                    ));
                    rewritten.push(repaired(a, reasons, recreate));
                    records.push(AccountRecord {
                        ssid: cfg.ssid,
                        uri: Some(cfg.uri.clone()),
                        security_instance: Some(sec),
                        server_instance: Some(srv),
                    });
                }
                None => {
                    let sec = alloc.take(SECURITY, cfg.security_instance);
                    let srv = alloc.take(SERVER, cfg.server_instance);
                    writes.push((Path::instance(SECURITY, sec), Node::Instance(cfg.security_node(sec))));
                    writes.push((
                        Path::instance(SERVER, srv),
                        Node::Instance(cfg.server_node(srv, now, false)),
                    ));
                    created.push(cfg.ssid);
                    records.push(AccountRecord {
                        ssid: cfg.ssid,
                        uri: Some(cfg.uri.clone()),
                        security_instance: Some(sec),
                        server_instance: Some(srv),
                    });
                }
            }
        }
        if let Some(bs) = &self.config.bootstrap_account {
            let iid = bs_iid.unwrap_or_else(|| alloc.take(SECURITY, None));
            writes.insert(
                0,
                (Path::instance(SECURITY, iid), Node::Instance(bs.security_node(iid))),
            );
        }
        records.sort_by_key(|r| r.ssid);
        self.accounts = records;
        // Deleting a Security instance makes the client "unbootstrap" that server: ACL instances naming it
        // are changed or removed, so what Bootstrap-Read /2 said about them no longer holds.
        let gone: BTreeSet<u16> = deleted
            .iter()
            .chain(rewritten.iter().filter(|r| r.recreated))
            .map(|r| r.ssid)
            .collect();
        let acl_writes = self.acl_writes(&mut alloc, false, &gone);
        writes.extend(acl_writes);
        self.events.push_back(SessionEvent::Repaired {
            deleted,
            rewritten,
            kept,
            created,
        });
        self.finish_plan(deletes, writes);
    }

    /// Everything from scratch: `DELETE /` (unless `after_reject` is false and the device was never
    /// discovered... in both cases the delete is sent), explicit deletes, every configured write.
    fn plan_full(&mut self, after_reject: bool) {
        let (accounts, bs_iid, _) = self.existing();
        if !after_reject {
            let deleted = accounts
                .values()
                .map(|a| repaired(a, vec!["delete_before_write: DELETE /".into()], false))
                .collect();
            self.events.push_back(SessionEvent::Repaired {
                deleted,
                rewritten: Vec::new(),
                kept: Vec::new(),
                created: self.config.servers.iter().map(|s| s.ssid).collect(),
            });
        }
        let mut alloc = Allocator::empty(bs_iid);
        let now = self.config.set_last_bootstrapped.then_some(self.params.now_unix_s);
        let mut writes = Vec::new();
        if let Some(bs) = &self.config.bootstrap_account {
            let iid = bs_iid.unwrap_or_else(|| alloc.take(SECURITY, None));
            writes.push((Path::instance(SECURITY, iid), Node::Instance(bs.security_node(iid))));
        }
        let mut records = Vec::new();
        for cfg in &self.config.servers {
            let sec = alloc.take(SECURITY, cfg.security_instance);
            let srv = alloc.take(SERVER, cfg.server_instance);
            writes.push((Path::instance(SECURITY, sec), Node::Instance(cfg.security_node(sec))));
            writes.push((
                Path::instance(SERVER, srv),
                Node::Instance(cfg.server_node(srv, now, false)),
            ));
            records.push(AccountRecord {
                ssid: cfg.ssid,
                uri: Some(cfg.uri.clone()),
                security_instance: Some(sec),
                server_instance: Some(srv),
            });
        }
        records.sort_by_key(|r| r.ssid);
        self.accounts = records;
        // After DELETE / only /3/0 (and the Bootstrap-Server account) remain; ACLs start empty.
        self.acls.clear();
        let acl_writes = self.acl_writes(&mut alloc, true, &BTreeSet::new());
        writes.extend(acl_writes);
        self.finish_plan(vec![Path::ROOT], writes);
    }

    /// Queues deletes (deduplicated, configured explicit deletes last) and writes, then Finish.
    fn finish_plan(&mut self, mut deletes: Vec<Path>, writes: Vec<(Path, Node)>) {
        for d in &self.config.deletes {
            if let Ok(p) = d.parse::<Path>() {
                deletes.push(p);
            }
        }
        let mut seen = BTreeSet::new();
        deletes.retain(|p| seen.insert(*p));
        self.queue.clear();
        for p in deletes {
            self.queue.push_back(BsRequest::new(Operation::Delete, p));
        }
        let fmt = self.write_format();
        let mut all = writes;
        for w in &self.config.writes {
            match w.to_node(&self.models) {
                Ok(x) => all.push(x),
                Err(e) => {
                    self.fail(e.to_string());
                    return;
                }
            }
        }
        for (path, node) in all {
            match format::encode(fmt, &path, &node) {
                Ok(payload) => self.queue.push_back(BsRequest {
                    op: Operation::Write,
                    path,
                    content_format: Some(fmt),
                    payload,
                }),
                Err(e) => {
                    self.fail(format!("cannot encode the write of {path} in {fmt}: {e}"));
                    return;
                }
            }
        }
        self.phase = Phase::Execute;
    }

    fn accounts_found(&self, accounts: &BTreeMap<u16, ExistingAccount>) -> SessionEvent {
        let (_, bs, _) = self.existing();
        SessionEvent::AccountsFound {
            lwm2m_version: self.version().map(|v| v.to_string()),
            accounts: accounts.values().cloned().collect(),
            bootstrap_instance: bs,
            objects: self
                .discover
                .iter()
                .flat_map(|d| d.entries.iter().map(|e| e.path))
                .collect(),
        }
    }

    /// The ACL instances to write: configured, or generated for several servers; skipped when the device
    /// already has an identical one.
    /// ACL instances that name a server of `gone` (owner or entry) are rewritten even when they looked
    /// identical.
    fn acl_writes(&self, alloc: &mut Allocator, after_delete_all: bool, gone: &BTreeSet<u16>) -> Vec<(Path, Node)> {
        let desired = if !self.config.acls.is_empty() {
            self.config.acls.clone()
        } else if self.config.generate_acls && self.config.servers.len() > 1 {
            self.generated_acls(after_delete_all)
        } else {
            Vec::new()
        };
        let mut out = Vec::new();
        let mut used_existing = BTreeSet::new();
        for want in desired {
            let existing = self
                .acls
                .iter()
                .find(|a| a.object_id == want.object_id && a.instance_id == want.instance_id);
            let reliable = |e: &AclEntry| !gone.contains(&e.owner) && !e.rights.iter().any(|r| gone.contains(&r.ssid));
            let iid = match existing {
                Some(e) if e.same_acl(&want) && reliable(e) => continue,
                Some(e) => e.acl_instance,
                None => None,
            };
            let iid = match iid.filter(|i| used_existing.insert(*i)) {
                Some(i) => i,
                None => alloc.take(ACCESS_CONTROL, want.acl_instance),
            };
            out.push((Path::instance(ACCESS_CONTROL, iid), Node::Instance(want.to_node(iid))));
        }
        out
    }

    /// Generated ACLs (see [`BootstrapConfig::generate_acls`]).
    fn generated_acls(&self, after_delete_all: bool) -> Vec<AclEntry> {
        let mut servers: Vec<(u64, usize, u16)> = self
            .config
            .servers
            .iter()
            .enumerate()
            .map(|(i, s)| (s.registration_priority_order.unwrap_or(u64::MAX), i, s.ssid))
            .collect();
        servers.sort();
        let Some(&(_, _, first)) = servers.first() else {
            return Vec::new();
        };
        let mut out = Vec::new();
        for r in &self.accounts {
            if let Some(iid) = r.server_instance {
                out.push(AclEntry::new(SERVER, iid, r.ssid));
            }
        }
        let mut objects = BTreeSet::new();
        for e in self.discover.iter().flat_map(|d| d.entries.iter()) {
            let Some(oid) = e.path.object_id() else { continue };
            if matches!(oid, SECURITY | SERVER | ACCESS_CONTROL | OSCORE) {
                continue;
            }
            objects.insert(oid);
            if let Some(iid) = e.path.instance_id().filter(|_| e.path.is_instance()) {
                if after_delete_all && (oid, iid) != (DEVICE, 0) {
                    continue;
                }
                out.push(AclEntry::new(oid, iid, first).with(0, Rights::FULL_INSTANCE));
            }
        }
        for oid in objects {
            if self.models.object(oid).is_some_and(|m| m.multiple) {
                let mut a = AclEntry::new(oid, MAX_ID, MAX_ID);
                for (_, _, ssid) in &servers {
                    a = a.with(*ssid, Rights::CREATE);
                }
                out.push(a);
            }
        }
        out
    }

    /// What probably made the client answer 4.06: Security/Server instances without their partner, from
    /// what the session knows (the accounts it kept or wrote and the configured extra writes).
    fn consistency_hints(&self) -> Vec<String> {
        let mut sec: BTreeMap<u16, String> = BTreeMap::new();
        let mut srv: BTreeMap<u16, String> = BTreeMap::new();
        for r in &self.accounts {
            if let Some(i) = r.security_instance {
                sec.insert(r.ssid, format!("/0/{i}"));
            }
            if let Some(i) = r.server_instance {
                srv.insert(r.ssid, format!("/1/{i}"));
            }
        }
        for w in &self.config.writes {
            let Ok((path, node)) = w.to_node(&self.models) else {
                continue;
            };
            let instances: Vec<InstanceNode> = match node {
                Node::Object(o) => o.instances.into_values().collect(),
                Node::Instance(i) => vec![i],
                _ => Vec::new(),
            };
            for i in instances {
                let (rid, map) = match path.object_id() {
                    Some(SECURITY) => (10, &mut sec),
                    Some(SERVER) => (0, &mut srv),
                    _ => continue,
                };
                if let Some(ssid) = single(&i, rid).and_then(value_u64).and_then(|v| u16::try_from(v).ok()) {
                    map.insert(ssid, format!("/{}/{}", path.object_id().unwrap_or_default(), i.id));
                }
            }
        }
        let mut out = Vec::new();
        for (ssid, p) in &srv {
            if !sec.contains_key(ssid) {
                out.push(format!("Server instance {p} (SSID {ssid}) has no Security instance"));
            }
        }
        for (ssid, p) in &sec {
            if !srv.contains_key(ssid) {
                out.push(format!("Security instance {p} (SSID {ssid}) has no Server instance"));
            }
        }
        if srv.is_empty() && sec.is_empty() {
            out.push("no LwM2M Server account is configured".into());
        }
        if srv.len() > 1 && !self.has_object(ACCESS_CONTROL) && self.discover.is_some() {
            out.push("several servers but the device does not support Access Control (Object 2)".into());
        }
        out
    }
}

fn repaired(a: &ExistingAccount, reasons: Vec<String>, recreated: bool) -> RepairedAccount {
    RepairedAccount {
        ssid: a.ssid,
        uri: a.uri.clone(),
        security_instance: a.security_instance,
        server_instance: a.server_instance,
        reasons,
        recreated,
    }
}

fn single(n: &InstanceNode, rid: u16) -> Option<&Value> {
    match n.resources.get(&rid).map(|r| &r.value) {
        Some(ResourceValue::Single(v)) => Some(v),
        _ => None,
    }
}

/// Numeric values compare by value (an Integer 5 equals an Unsigned Integer 5); others exactly.
fn same_value(a: &Value, b: &Value) -> bool {
    match (a.as_f64(), b.as_f64()) {
        (Some(x), Some(y)) => x == y,
        _ => match (a, b) {
            (Value::String(x) | Value::Corelnk(x), Value::String(y) | Value::Corelnk(y)) => x == y,
            _ => a == b,
        },
    }
}

/// Picks free instance ids per object.
#[derive(Debug)]
struct Allocator {
    used: BTreeMap<u16, BTreeSet<u16>>,
}

impl Allocator {
    /// Every instance Bootstrap-Discover listed is taken.
    fn new(s: &Session) -> Allocator {
        let mut used: BTreeMap<u16, BTreeSet<u16>> = BTreeMap::new();
        for e in s.discover.iter().flat_map(|d| d.entries.iter()) {
            if let (true, Some(o), Some(i)) = (e.path.is_instance(), e.path.object_id(), e.path.instance_id()) {
                used.entry(o).or_default().insert(i);
            }
        }
        Allocator { used }
    }

    /// Nothing is taken except the Bootstrap-Server account (after `DELETE /`).
    fn empty(bs: Option<u16>) -> Allocator {
        let mut used: BTreeMap<u16, BTreeSet<u16>> = BTreeMap::new();
        if let Some(i) = bs {
            used.entry(SECURITY).or_default().insert(i);
        }
        Allocator { used }
    }

    /// `pinned` when given and free, else the lowest free id.
    fn take(&mut self, oid: u16, pinned: Option<u16>) -> u16 {
        let used = self.used.entry(oid).or_default();
        let id = match pinned.filter(|p| !used.contains(p)) {
            Some(p) => p,
            None => (0..MAX_ID).find(|i| !used.contains(i)).unwrap_or(MAX_ID - 1),
        };
        used.insert(id);
        id
    }
}

#[cfg(test)]
mod tests;
