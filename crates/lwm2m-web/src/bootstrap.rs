//! The Bootstrap-Server's HTTP face: a JSON REST API over
//! [`lwm2m_bootstrap::BootstrapServerHandle`] (endpoint configurations, session logs, events) and its UI.
//!
//! | route | what |
//! |---|---|
//! | `GET /api/health` | liveness, version, uptime, CoAP sockets, counts |
//! | `GET /api/configs`, `GET/PUT/DELETE /api/configs/{ep}` | per-endpoint configurations (with credentials) |
//! | `GET/PUT/DELETE /api/default-config` | the configuration for endpoints without one |
//! | `GET /api/sessions`, `GET /api/sessions/{ep}` | session logs, accounts left, BsR-1 ACL state |
//! | `POST /api/sessions/{ep}/trigger` | BsR-2: Execute `/1/x/9` from the Bootstrap-Server's CoAP socket |
//! | `GET /api/events` | SSE: session-started, refused, operation, accounts-found, acl-state, repaired, finished, … |
//! | `GET /api/openapi.yaml` | `docs/openapi-bootstrap.yaml` |
//! | `GET /`, `/ui/…` | the Bootstrap UI |
//! | `POST /api/login`, `POST /api/logout` | session cookie for the UI when a token is set ([`crate::auth`]) |
//!
//! With [`BootstrapApi::with_token`] every route but health, the OpenAPI document, login/logout and the UI
//! needs `Authorization: Bearer <token>` or the session cookie of `POST /api/login`; without a token all is
//! open.
//!
//! A configuration's JSON is the serde form of [`BootstrapConfig`] (one entry of the configuration file, see
//! `docs/bootstrap.md`). Changes go through [`BootstrapServerHandle::put_config`] and friends, so the store
//! (a file for `lwm2m bootstrap`, rewritten atomically) and the DTLS credential table stay in step. Errors are
//! `{"error", "reason"}` ([`ApiError`]).
//!
//! ```no_run
//! use std::sync::Arc;
//! use lwm2m_bootstrap::{BootstrapServer, BootstrapServerConfig, FileConfigStore};
//! use lwm2m_web::bootstrap::BootstrapApi;
//!
//! # async fn demo() -> Result<(), Box<dyn std::error::Error>> {
//! let store = Arc::new(FileConfigStore::open("bootstrap.toml")?);
//! let (bs, _events) =
//!     BootstrapServer::bind(BootstrapServerConfig::new(store), Some("0.0.0.0:5783".parse()?), None).await?;
//! let api = BootstrapApi::new(bs);
//! let listener = tokio::net::TcpListener::bind("0.0.0.0:8081").await?;
//! api.serve(listener, std::future::pending()).await?;
//! # Ok(()) }
//! ```

use std::convert::Infallible;
use std::net::SocketAddr;
use std::sync::Arc;
use std::time::Instant;

use axum::body::Bytes as Body;
use axum::extract::{Path as AxPath, RawQuery, State};
use axum::http::{HeaderMap, StatusCode};
use axum::response::sse::{Event as SseEvent, Sse};
use axum::response::{IntoResponse, Response};
use axum::routing::{get, post};
use axum::{Json, Router};
use futures_util::stream::Stream;
use lwm2m_bootstrap::server::SessionOutcome;
use lwm2m_bootstrap::session::{AccountRecord, ExistingAccount, Operation, RepairedAccount, SessionEvent};
use lwm2m_bootstrap::{
    BootstrapConfig, BootstrapServerHandle, ConfigError, Event, EventKind, LogEntry, TriggerError, TriggerTarget,
};
use lwm2m_coap::Code;
use serde::Deserialize;
use serde_json::{json, Map, Value as JsonValue};
use tokio::sync::watch;

use crate::auth::{Auth, Role};
use crate::error::ApiError;
use crate::json::value_to_json;
use crate::serve;
use crate::sse::{event_stream, EventFilter};

/// The OpenAPI 3 document of the Bootstrap-Server API.
pub const OPENAPI_YAML: &str = include_str!("../../../docs/openapi-bootstrap.yaml");

/// The `kind` of every event `GET /api/events` sends (also the SSE event name).
pub const EVENT_KINDS: [&str; 8] = [
    "session-started",
    "refused",
    "operation",
    "accounts-found",
    "acl-state",
    "repaired",
    "finished",
    "failed",
];

struct Shared {
    bs: BootstrapServerHandle,
    started: Instant,
    /// Set once the HTTP server shuts down: SSE streams end.
    closing: watch::Sender<bool>,
}

/// The REST API of one running Bootstrap-Server. Cheap to clone.
#[derive(Clone)]
pub struct BootstrapApi {
    shared: Arc<Shared>,
    auth: Arc<Auth>,
}

impl std::fmt::Debug for BootstrapApi {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.debug_struct("BootstrapApi").field("bs", &self.shared.bs).finish()
    }
}

impl BootstrapApi {
    /// The API over `handle`. Events come from [`BootstrapServerHandle::subscribe`] (each SSE stream has
    /// its own receiver), so the channel [`lwm2m_bootstrap::BootstrapServer::start`] returns stays free for
    /// the application.
    pub fn new(handle: BootstrapServerHandle) -> BootstrapApi {
        let (closing, _) = watch::channel(false);
        BootstrapApi {
            shared: Arc::new(Shared {
                bs: handle,
                started: Instant::now(),
                closing,
            }),
            auth: Arc::new(Auth::open(Role::Bootstrap)),
        }
    }

    /// The Bootstrap-Server handle.
    pub fn handle(&self) -> &BootstrapServerHandle {
        &self.shared.bs
    }

    /// The axum application: every route, the UI, login/logout, JSON fallbacks for unknown routes and
    /// methods, the token check ([`BootstrapApi::with_token`]) and request tracing (`tower_http::trace`, at
    /// debug level).
    pub fn router(&self) -> Router {
        let routes = Router::new()
            .route("/api/health", get(health))
            .route("/api/openapi.yaml", get(openapi))
            .route("/api/events", get(events))
            .route("/api/configs", get(list_configs))
            .route(
                "/api/configs/{ep}",
                get(get_config).put(put_config).delete(delete_config),
            )
            .route(
                "/api/default-config",
                get(get_default).put(put_default).delete(delete_default),
            )
            .route("/api/sessions", get(list_sessions))
            .route("/api/sessions/{ep}", get(session_detail))
            .route("/api/sessions/{ep}/trigger", post(trigger))
            .merge(crate::ui::bootstrap_ui());
        serve::finish(routes, &self.auth)
            .layer(tower_http::trace::TraceLayer::new_for_http())
            .with_state(self.clone())
    }
}

serve::http_api_methods!(BootstrapApi, Role::Bootstrap);

// ---------------------------------------------------------------------------------------------
// JSON forms
// ---------------------------------------------------------------------------------------------

/// The API name of an operation (`bootstrap-request`, `discover`, `read`, `write`, `delete`, `finish`,
/// `execute`).
pub fn op_name(op: Operation) -> &'static str {
    match op {
        Operation::BootstrapRequest => "bootstrap-request",
        Operation::Discover => "discover",
        Operation::Read => "read",
        Operation::Write => "write",
        Operation::Delete => "delete",
        Operation::Finish => "finish",
        Operation::Execute => "execute",
    }
}

fn code_json(code: Option<Code>) -> JsonValue {
    code.map_or(JsonValue::Null, |c| JsonValue::String(c.to_string()))
}

/// One session log entry: `{"session", "at_unix_s", "op", "path", "code", "detail"}`.
pub fn log_entry_json(e: &LogEntry) -> JsonValue {
    json!({
        "session": e.session,
        "at_unix_s": e.at_unix_s,
        "op": op_name(e.op),
        "path": e.path,
        "code": code_json(e.code),
        "detail": e.detail,
    })
}

/// An account a session left: `{"ssid", "uri", "security_instance", "server_instance"}`.
pub fn account_json(a: &AccountRecord) -> JsonValue {
    json!({
        "ssid": a.ssid,
        "uri": a.uri,
        "security_instance": a.security_instance,
        "server_instance": a.server_instance,
    })
}

fn existing_json(a: &ExistingAccount) -> JsonValue {
    let values: Map<String, JsonValue> = a
        .server_values
        .iter()
        .map(|(rid, v)| (rid.to_string(), value_to_json(v)))
        .collect();
    json!({
        "ssid": a.ssid,
        "uri": a.uri,
        "security_instance": a.security_instance,
        "server_instance": a.server_instance,
        "tls_alert_code": a.tls_alert_code,
        "last_bootstrapped": a.last_bootstrapped,
        "server_values": values,
    })
}

fn repaired_json(a: &RepairedAccount) -> JsonValue {
    json!({
        "ssid": a.ssid,
        "uri": a.uri,
        "security_instance": a.security_instance,
        "server_instance": a.server_instance,
        "reasons": a.reasons,
        "recreated": a.recreated,
    })
}

fn to_json<T: serde::Serialize>(v: &T) -> JsonValue {
    serde_json::to_value(v).unwrap_or(JsonValue::Null)
}

/// The `kind` of an event (one of [`EVENT_KINDS`]).
pub fn event_kind(ev: &Event) -> &'static str {
    match &ev.kind {
        EventKind::SessionStarted { .. } => "session-started",
        EventKind::Refused { .. } => "refused",
        EventKind::Session(SessionEvent::Operation { .. }) => "operation",
        EventKind::Session(SessionEvent::AccountsFound { .. }) => "accounts-found",
        EventKind::Session(SessionEvent::AclState { .. }) => "acl-state",
        EventKind::Session(SessionEvent::Repaired { .. }) => "repaired",
        EventKind::Session(SessionEvent::Finished { .. }) => "finished",
        EventKind::Session(SessionEvent::Failed { .. }) => "failed",
    }
}

/// The JSON of one event: `kind`, `endpoint`, `session`, `time_unix_s` and the kind's own members.
pub fn event_json(ev: &Event, time_unix_s: i64) -> JsonValue {
    let mut m = Map::new();
    m.insert("kind".into(), json!(event_kind(ev)));
    m.insert("endpoint".into(), json!(ev.endpoint));
    m.insert("session".into(), json!(ev.session));
    m.insert("time_unix_s".into(), json!(time_unix_s));
    let members = match &ev.kind {
        EventKind::SessionStarted {
            peer,
            secure,
            pct,
            default_config,
        } => json!({
            "peer": peer.to_string(),
            "secure": secure,
            "pct": pct.map(|f| f.name()),
            "default_config": default_config,
        }),
        EventKind::Refused { peer, code, reason } => json!({
            "peer": peer.to_string(),
            "code": code.to_string(),
            "reason": reason,
        }),
        EventKind::Session(SessionEvent::Operation { op, path, code, detail }) => json!({
            "op": op_name(*op),
            "path": path,
            "code": code_json(*code),
            "detail": detail,
        }),
        EventKind::Session(SessionEvent::AccountsFound {
            lwm2m_version,
            accounts,
            bootstrap_instance,
            objects,
        }) => json!({
            "lwm2m_version": lwm2m_version,
            "accounts": accounts.iter().map(existing_json).collect::<Vec<_>>(),
            "bootstrap_instance": bootstrap_instance,
            "objects": objects.iter().map(|p| p.to_string()).collect::<Vec<_>>(),
        }),
        EventKind::Session(SessionEvent::AclState { supported, acls }) => json!({
            "supported": supported,
            "acls": to_json(acls),
        }),
        EventKind::Session(SessionEvent::Repaired {
            deleted,
            rewritten,
            kept,
            created,
        }) => json!({
            "deleted": deleted.iter().map(repaired_json).collect::<Vec<_>>(),
            "rewritten": rewritten.iter().map(repaired_json).collect::<Vec<_>>(),
            "kept": kept,
            "created": created,
        }),
        EventKind::Session(SessionEvent::Finished { accounts }) => json!({
            "accounts": accounts.iter().map(account_json).collect::<Vec<_>>(),
        }),
        EventKind::Session(SessionEvent::Failed { reason }) => json!({ "reason": reason }),
    };
    if let JsonValue::Object(extra) = members {
        m.extend(extra);
    }
    JsonValue::Object(m)
}

fn outcome_json(o: Option<&SessionOutcome>) -> (JsonValue, JsonValue) {
    match o.map(|o| &o.result) {
        Some(Ok(())) => (json!("finished"), JsonValue::Null),
        Some(Err(reason)) => (json!("failed"), json!(reason)),
        None => (JsonValue::Null, JsonValue::Null),
    }
}

// ---------------------------------------------------------------------------------------------
// Errors
// ---------------------------------------------------------------------------------------------

fn config_error(e: ConfigError) -> ApiError {
    let reason = e.to_string();
    match e {
        ConfigError::Invalid(_) | ConfigError::EmptyEndpoint => ApiError::bad_request(
            "invalid_config",
            format!("{reason} (the configuration format is in docs/bootstrap.md)"),
        ),
        ConfigError::Credentials(_) => ApiError::new(
            StatusCode::CONFLICT,
            "credentials_conflict",
            format!("{reason}: give this endpoint its own PSK identity or public key"),
        ),
        ConfigError::Io { .. } | ConfigError::Format { .. } => {
            ApiError::new(StatusCode::INTERNAL_SERVER_ERROR, "store_error", reason)
        }
    }
}

fn no_config(endpoint: &str) -> ApiError {
    ApiError::not_found(
        "unknown_endpoint",
        format!("no configuration for endpoint {endpoint:?} (GET /api/configs lists them; PUT one to add it)"),
    )
}

fn parse_config(body: &[u8]) -> Result<BootstrapConfig, ApiError> {
    serde_json::from_slice(body).map_err(|e| {
        ApiError::bad_request(
            "bad_json",
            format!("the body is not a bootstrap configuration: {e} (the format is in docs/bootstrap.md)"),
        )
    })
}

// ---------------------------------------------------------------------------------------------
// Handlers
// ---------------------------------------------------------------------------------------------

async fn health(State(api): State<BootstrapApi>, headers: HeaderMap) -> Json<JsonValue> {
    let bs = api.handle();
    let coap: Vec<String> = bs.local_addrs().iter().map(|a| a.to_string()).collect();
    Json(json!({
        "status": "ok",
        "version": env!("CARGO_PKG_VERSION"),
        "uptime_s": api.shared.started.elapsed().as_secs(),
        "coap": coap,
        "configs": bs.list_configs().len(),
        "active_sessions": bs.active_sessions().len(),
        "auth": api.auth.enabled(),
        "authenticated": api.auth.check(&headers).is_ok(),
    }))
}

async fn openapi() -> impl IntoResponse {
    serve::yaml(OPENAPI_YAML)
}

async fn list_configs(State(api): State<BootstrapApi>) -> Json<JsonValue> {
    let bs = api.handle();
    let store = bs.config_store();
    let endpoints: Vec<JsonValue> = bs
        .list_configs()
        .into_iter()
        .filter_map(|ep| {
            let c = bs.get_config(&ep)?;
            Some(json!({"endpoint": ep, "config": to_json(&c)}))
        })
        .collect();
    Json(json!({
        "default": store.default_config().map_or(JsonValue::Null, |c| to_json(&c)),
        "endpoints": endpoints,
    }))
}

async fn get_config(State(api): State<BootstrapApi>, AxPath(ep): AxPath<String>) -> Result<Response, ApiError> {
    let c = api.handle().get_config(&ep).ok_or_else(|| no_config(&ep))?;
    Ok(Json(to_json(&c)).into_response())
}

async fn put_config(
    State(api): State<BootstrapApi>,
    AxPath(ep): AxPath<String>,
    body: Body,
) -> Result<Response, ApiError> {
    let config = parse_config(&body)?;
    let bs = api.handle();
    let prev = bs.put_config(&ep, config.clone()).map_err(config_error)?;
    let status = if prev.is_some() {
        StatusCode::OK
    } else {
        StatusCode::CREATED
    };
    let stored = bs.get_config(&ep).unwrap_or(config);
    Ok((status, Json(to_json(&stored))).into_response())
}

async fn delete_config(State(api): State<BootstrapApi>, AxPath(ep): AxPath<String>) -> Result<StatusCode, ApiError> {
    match api.handle().delete_config(&ep).map_err(config_error)? {
        Some(_) => Ok(StatusCode::NO_CONTENT),
        None => Err(no_config(&ep)),
    }
}

fn no_default() -> ApiError {
    ApiError::not_found(
        "no_default_config",
        "there is no default configuration (PUT /api/default-config sets one)",
    )
}

async fn get_default(State(api): State<BootstrapApi>) -> Result<Response, ApiError> {
    let c = api.handle().config_store().default_config().ok_or_else(no_default)?;
    Ok(Json(to_json(&c)).into_response())
}

async fn put_default(State(api): State<BootstrapApi>, body: Body) -> Result<Response, ApiError> {
    let config = parse_config(&body)?;
    let bs = api.handle();
    let prev = bs.set_default_config(Some(config.clone())).map_err(config_error)?;
    let status = if prev.is_some() {
        StatusCode::OK
    } else {
        StatusCode::CREATED
    };
    let stored = bs.config_store().default_config().unwrap_or(config);
    Ok((status, Json(to_json(&stored))).into_response())
}

async fn delete_default(State(api): State<BootstrapApi>) -> Result<StatusCode, ApiError> {
    let bs = api.handle();
    if bs.config_store().default_config().is_none() {
        return Err(no_default());
    }
    match bs.set_default_config(None).map_err(config_error)? {
        Some(_) => Ok(StatusCode::NO_CONTENT),
        None => Err(no_default()),
    }
}

async fn list_sessions(State(api): State<BootstrapApi>) -> Json<JsonValue> {
    let bs = api.handle();
    let active = bs.active_sessions();
    let mut endpoints = bs.logged_endpoints();
    endpoints.extend(active.iter().cloned());
    endpoints.sort();
    endpoints.dedup();
    let list: Vec<JsonValue> = endpoints
        .into_iter()
        .map(|ep| {
            let log = bs.session_log(&ep);
            let (result, _) = outcome_json(bs.last_outcome(&ep).as_ref());
            json!({
                "endpoint": ep,
                "active": active.contains(&ep),
                "entries": log.len(),
                "last_at_unix_s": log.last().map(|e| e.at_unix_s),
                "last_result": result,
            })
        })
        .collect();
    Json(JsonValue::Array(list))
}

fn unknown_session(endpoint: &str) -> ApiError {
    ApiError::not_found(
        "unknown_endpoint",
        format!(
            "endpoint {endpoint:?} has neither a session log nor a configuration (GET /api/sessions lists the \
             endpoints that talked to this Bootstrap-Server)"
        ),
    )
}

async fn session_detail(State(api): State<BootstrapApi>, AxPath(ep): AxPath<String>) -> Result<Response, ApiError> {
    let bs = api.handle();
    let log = bs.session_log(&ep);
    if log.is_empty() && bs.get_config(&ep).is_none() {
        return Err(unknown_session(&ep));
    }
    let (result, reason) = outcome_json(bs.last_outcome(&ep).as_ref());
    let accounts = bs
        .accounts(&ep)
        .map_or(JsonValue::Null, |a| a.iter().map(account_json).collect());
    let acl = bs.acl_state(&ep).map_or(JsonValue::Null, |a| to_json(&a));
    Ok(Json(json!({
        "endpoint": ep,
        "active": bs.active_sessions().contains(&ep),
        "log": log.iter().map(log_entry_json).collect::<Vec<_>>(),
        "accounts": accounts,
        "acl": acl,
        "last_result": result,
        "last_reason": reason,
    }))
    .into_response())
}

/// The body of `POST /api/sessions/{ep}/trigger`.
#[derive(Debug, Deserialize)]
#[serde(deny_unknown_fields)]
struct TriggerBody {
    address: String,
    #[serde(default)]
    server_instance: Option<u16>,
    #[serde(default)]
    ssid: Option<u16>,
}

async fn trigger(
    State(api): State<BootstrapApi>,
    AxPath(ep): AxPath<String>,
    body: Body,
) -> Result<StatusCode, ApiError> {
    let b: TriggerBody = serde_json::from_slice(&body).map_err(|e| {
        ApiError::bad_request(
            "bad_json",
            format!("the body must be {{\"address\": \"IP:PORT\", \"server_instance\": N?, \"ssid\": N?}}: {e}"),
        )
    })?;
    let device: SocketAddr = b.address.trim().parse().map_err(|_| {
        ApiError::bad_request(
            "bad_address",
            format!(
                "address {:?} is not IP:PORT; give the device's CoAP address, e.g. 192.0.2.7:56830 (the peer of \
                 its last session-started event)",
                b.address
            ),
        )
    })?;
    let bs = api.handle();
    if bs.session_log(&ep).is_empty() && bs.get_config(&ep).is_none() {
        return Err(unknown_session(&ep));
    }
    let mut target = TriggerTarget::new(device);
    target.server_instance = b.server_instance;
    target.ssid = b.ssid;
    match bs.trigger_bootstrap(&ep, target).await {
        Ok(()) => Ok(StatusCode::NO_CONTENT),
        Err(e) => Err(trigger_error(&ep, e)),
    }
}

fn trigger_error(endpoint: &str, e: TriggerError) -> ApiError {
    let reason = e.to_string();
    match e {
        TriggerError::NoServerInstance(_) => ApiError::new(
            StatusCode::CONFLICT,
            "no_server_instance",
            format!(
                "no Server instance is known for {endpoint:?} (no finished session left one, or none with that \
                 ssid): give \"server_instance\" in the body"
            ),
        ),
        TriggerError::NoSocket => ApiError::new(
            StatusCode::CONFLICT,
            "no_coap_socket",
            "the Bootstrap-Server has no plain CoAP socket to send the trigger from (it runs with --coap-addr off)",
        ),
        TriggerError::Transport(_) => ApiError::new(
            StatusCode::BAD_GATEWAY,
            "device_unreachable",
            format!("{reason}; check the address and that the device is online"),
        ),
        TriggerError::Rejected(code) => {
            let mut e = ApiError::device_error(endpoint, "Execute /1/x/9", code, None);
            if code == Code::UNAUTHORIZED {
                e.reason.push_str(&format!(
                    ": the device accepts the Bootstrap-Request Trigger only from its LwM2M Server; trigger it \
                     through that server's API instead (on `lwm2m server`: \
                     POST /api/clients/{endpoint}/1/IID/9/execute)"
                ));
            }
            e
        }
    }
}

/// `GET /api/events[?ep=A,B][&kind=finished,failed]`.
async fn events(
    State(api): State<BootstrapApi>,
    RawQuery(raw): RawQuery,
) -> Result<Sse<impl Stream<Item = Result<SseEvent, Infallible>>>, ApiError> {
    let filter = EventFilter::parse(raw.as_deref(), &EVENT_KINDS)?;
    // Subscribe before answering: every event after the response head reaches this stream.
    let rx = api.handle().subscribe();
    let closing = api.shared.closing.subscribe();
    Ok(event_stream(
        "lwm2m-rs bootstrap event stream",
        rx,
        closing,
        move |ev: &Event| {
            let kind = event_kind(ev);
            filter
                .matches(&ev.endpoint, kind)
                .then(|| (kind, event_json(ev, api.handle().now_unix_s())))
        },
    ))
}

#[cfg(test)]
mod tests {
    use super::*;

    /// Every route of the router is in the OpenAPI document, with every event kind.
    #[test]
    fn openapi_documents_every_route() {
        for path in [
            "/api/health",
            "/api/openapi.yaml",
            "/api/events",
            "/api/configs",
            "/api/configs/{ep}",
            "/api/default-config",
            "/api/sessions",
            "/api/sessions/{ep}",
            "/api/sessions/{ep}/trigger",
            "/api/login",
            "/api/logout",
        ] {
            assert!(
                OPENAPI_YAML.contains(&format!("\n  {path}:\n")),
                "{path} is not in docs/openapi-bootstrap.yaml"
            );
        }
        assert!(OPENAPI_YAML.starts_with("openapi: 3."));
        for kind in EVENT_KINDS {
            assert!(
                OPENAPI_YAML.contains(kind),
                "event kind {kind} is not in docs/openapi-bootstrap.yaml"
            );
        }
    }

    #[test]
    fn log_entries_and_events_have_the_contract_shape() {
        let e = LogEntry {
            session: 3,
            at_unix_s: 1_700_000_000,
            op: Operation::BootstrapRequest,
            path: "/bs".into(),
            code: Some(Code::CHANGED),
            detail: None,
        };
        assert_eq!(
            log_entry_json(&e),
            json!({"session": 3, "at_unix_s": 1_700_000_000i64, "op": "bootstrap-request", "path": "/bs",
                   "code": "2.04", "detail": null})
        );
        let ev = Event {
            endpoint: "dev".into(),
            session: 3,
            kind: EventKind::Session(SessionEvent::Operation {
                op: Operation::Write,
                path: "/1/0".into(),
                code: None,
                detail: Some("timeout".into()),
            }),
        };
        assert_eq!(
            event_json(&ev, 5),
            json!({"kind": "operation", "endpoint": "dev", "session": 3, "time_unix_s": 5, "op": "write",
                   "path": "/1/0", "code": null, "detail": "timeout"})
        );
        let finished = Event {
            endpoint: "dev".into(),
            session: 3,
            kind: EventKind::Session(SessionEvent::Finished {
                accounts: vec![AccountRecord {
                    ssid: 1,
                    uri: Some("coap://x".into()),
                    security_instance: Some(1),
                    server_instance: Some(0),
                }],
            }),
        };
        assert_eq!(
            event_json(&finished, 5)["accounts"],
            json!([{"ssid": 1, "uri": "coap://x", "security_instance": 1, "server_instance": 0}])
        );
        let refused = Event {
            endpoint: "x".into(),
            session: 0,
            kind: EventKind::Refused {
                peer: "127.0.0.1:9".parse().unwrap(),
                code: Code::BAD_REQUEST,
                reason: "unknown".into(),
            },
        };
        let j = event_json(&refused, 1);
        assert_eq!(
            (j["kind"].as_str(), j["code"].as_str()),
            (Some("refused"), Some("4.00"))
        );
        assert_eq!(j["peer"], "127.0.0.1:9");
    }

    #[test]
    fn errors_map_to_statuses_and_say_what_to_do() {
        let cases = [
            (ConfigError::Invalid("x".into()), 400, "invalid_config"),
            (ConfigError::EmptyEndpoint, 400, "invalid_config"),
            (ConfigError::Credentials("in use".into()), 409, "credentials_conflict"),
            (
                ConfigError::Io {
                    file: "f".into(),
                    reason: "disk full".into(),
                },
                500,
                "store_error",
            ),
        ];
        for (e, status, code) in cases {
            let a = config_error(e);
            assert_eq!((a.status.as_u16(), a.error), (status, code));
        }
        let a = trigger_error("dev", TriggerError::Rejected(Code::UNAUTHORIZED));
        assert_eq!((a.status.as_u16(), a.error), (502, "device_error"));
        assert_eq!(a.extra.get("coap_code"), Some(&json!("4.01")));
        assert!(a.reason.contains("LwM2M Server"), "{}", a.reason);
        let a = trigger_error("dev", TriggerError::NoServerInstance("dev".into()));
        assert_eq!((a.status.as_u16(), a.error), (409, "no_server_instance"));
        assert!(a.reason.contains("server_instance"));
        let bad = parse_config(br#"{"servers": [], "nope": 1}"#).unwrap_err();
        assert_eq!((bad.status.as_u16(), bad.error), (400, "bad_json"));
        assert!(bad.reason.contains("nope"), "{}", bad.reason);
    }
}
