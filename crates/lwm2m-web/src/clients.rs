//! `/api/clients`: registrations and every device-management operation on them.

use axum::body::Bytes;
use axum::extract::{Path as UrlPath, RawQuery, State};
use axum::http::{header, Method, StatusCode};
use axum::response::{IntoResponse, Response as HttpResponse};
use axum::Json as Reply;
use lwm2m_coap::transport::security::PeerIdentity;
use lwm2m_core::attributes;
use lwm2m_core::format::ContentFormat;
use lwm2m_core::model::Models;
use lwm2m_core::{Node, Path, Record, ResourceNode};
use lwm2m_server::{
    CancelMode, Content, ObservationId, ObservationInfo, Registration, Request, RequestOptions, Response, ServerError,
    WriteMode,
};
use serde_json::{json, Map, Value as Json};

use crate::error::{self, ApiError};
use crate::json::{map_to_records, records_to_list, records_to_map};
use crate::query::Query;
use crate::WebApi;

type ApiResult = Result<HttpResponse, ApiError>;

/// The registration of `ep`, or 404.
fn registration(api: &WebApi, ep: &str) -> Result<Registration, ApiError> {
    api.server()
        .registration(ep)?
        .ok_or_else(|| ApiError::unknown_endpoint(ep))
}

fn presence(api: &WebApi, reg: &Registration) -> (&'static str, Option<u64>, usize) {
    match api.server().presence(&reg.endpoint) {
        Some(p) => (if p.awake { "awake" } else { "sleeping" }, p.awake_until_ms, p.queued),
        None => ("awake", None, 0),
    }
}

/// The summary of a registration (list entries, events).
pub(crate) fn summary(api: &WebApi, reg: &Registration) -> Json {
    let (presence, _, _) = presence(api, reg);
    let last_seen = api
        .shared
        .last_seen(&reg.endpoint)
        .map_or(reg.last_update_ms, |t| t.max(reg.last_update_ms));
    json!({
        "endpoint": reg.endpoint,
        "registration_id": reg.id.to_string(),
        "address": reg.peer.to_string(),
        "secure": reg.identity.is_some(),
        "version": reg.version.to_string(),
        "binding": reg.binding.to_string(),
        "queue_mode": reg.queue_mode,
        "lifetime_s": reg.lifetime_s,
        "presence": presence,
        "registered_at_ms": reg.registered_at_ms,
        "last_update_ms": reg.last_update_ms,
        "last_seen_ms": last_seen,
        "expires_at_ms": reg.expires_ms,
    })
}

fn identity_json(id: Option<&PeerIdentity>) -> Json {
    match id {
        None => json!({"mode": "nosec"}),
        Some(PeerIdentity::Psk(i)) => json!({"mode": "psk", "psk_identity": String::from_utf8_lossy(i)}),
        Some(PeerIdentity::Rpk(k)) => json!({"mode": "rpk", "public_key": hex::encode(k)}),
        Some(PeerIdentity::X509 { common_name, .. }) => json!({"mode": "x509", "common_name": common_name}),
    }
}

/// Everything about one registration.
fn detail_json(api: &WebApi, reg: &Registration) -> Json {
    let mut m = match summary(api, reg) {
        Json::Object(m) => m,
        _ => Map::new(),
    };
    let (_, awake_until, queued) = presence(api, reg);
    let objects: Vec<Json> = reg
        .objects
        .objects
        .iter()
        .map(|o| {
            json!({
                "id": o.object_id,
                "version": o.version.map(|v| v.to_string()),
                "instances": o.instances,
            })
        })
        .collect();
    let additional: Map<String, Json> = reg
        .additional
        .iter()
        .map(|(k, v)| (k.clone(), v.clone().map_or(Json::Null, Json::String)))
        .collect();
    m.insert("location".into(), Json::String(reg.location()));
    m.insert("identity".into(), identity_json(reg.identity.as_ref()));
    m.insert("sms".into(), reg.sms.clone().map_or(Json::Null, Json::String));
    m.insert("root_path".into(), Json::String(reg.root_path().to_string()));
    m.insert("content_formats".into(), json!(reg.content_formats()));
    m.insert("objects".into(), Json::Array(objects));
    m.insert("additional".into(), Json::Object(additional));
    m.insert("awake_until_ms".into(), json!(awake_until));
    m.insert("queued_requests".into(), json!(queued));
    m.insert(
        "observations".into(),
        json!(api.server().observations(&reg.endpoint).len()),
    );
    Json::Object(m)
}

/// `GET /api/clients[?q=SUBSTRING&offset=N&limit=N]`.
pub(crate) async fn list(State(api): State<WebApi>, RawQuery(raw): RawQuery) -> ApiResult {
    let q = Query::parse(raw.as_deref())?;
    q.only(&["q", "offset", "limit"])?;
    let number = |name: &str, default: usize| -> Result<usize, ApiError> {
        match q.get(name) {
            None => Ok(default),
            Some(v) => v
                .parse()
                .map_err(|_| ApiError::bad_request("bad_query", format!("{name}={v} must be a non-negative integer"))),
        }
    };
    let (offset, limit) = (number("offset", 0)?, number("limit", usize::MAX)?);
    let needle = q.get("q").unwrap_or("").to_lowercase();
    let matching: Vec<Registration> = api
        .server()
        .registrations()?
        .into_iter()
        .filter(|r| needle.is_empty() || r.endpoint.to_lowercase().contains(&needle))
        .collect();
    let page: Vec<Json> = matching
        .iter()
        .skip(offset)
        .take(limit)
        .map(|r| summary(&api, r))
        .collect();
    Ok(Reply(json!({"total": matching.len(), "offset": offset, "clients": page})).into_response())
}

/// `GET /api/clients/{ep}`.
pub(crate) async fn detail(State(api): State<WebApi>, UrlPath(ep): UrlPath<String>) -> ApiResult {
    let reg = registration(&api, &ep)?;
    Ok(Reply(detail_json(&api, &reg)).into_response())
}

/// `DELETE /api/clients/{ep}`: remove the registration on the server's initiative.
pub(crate) async fn remove(State(api): State<WebApi>, UrlPath(ep): UrlPath<String>) -> ApiResult {
    match api.server().remove_registration(&ep)? {
        Some(reg) => Ok(Reply(json!({"removed": reg.endpoint, "registration_id": reg.id.to_string()})).into_response()),
        None => Err(ApiError::unknown_endpoint(&ep)),
    }
}

/// Parses the numeric segments of a URL into a path.
fn lwm2m_path(segs: &[&str]) -> Result<Path, ApiError> {
    let text = format!("/{}", segs.join("/"));
    text.parse::<Path>().map_err(|e| {
        ApiError::bad_request(
            "bad_path",
            format!("{text} is not an LwM2M path ({e}); write /OBJECT[/INSTANCE[/RESOURCE[/RESOURCE-INSTANCE]]], e.g. /3/0/9"),
        )
    })
}

fn is_numeric(s: &str) -> bool {
    !s.is_empty() && s.bytes().all(|b| b.is_ascii_digit())
}

fn body_json(body: &Bytes, example: &str) -> Result<Json, ApiError> {
    if body.iter().all(u8::is_ascii_whitespace) {
        return Err(ApiError::bad_request(
            "bad_body",
            format!("the request needs a JSON body, e.g. {example}"),
        ));
    }
    serde_json::from_slice(body)
        .map_err(|e| ApiError::bad_request("bad_body", format!("the body is not valid JSON ({e}); e.g. {example}")))
}

/// Paths from `["/3/0/0", ...]` or `{"paths": [...]}`.
fn body_paths(body: &Bytes) -> Result<Vec<Path>, ApiError> {
    const EX: &str = r#"{"paths": ["/3/0/0", "/3303/0/5700"]}"#;
    let j = body_json(body, EX)?;
    let list = match &j {
        Json::Array(a) => a,
        Json::Object(m) => match m.get("paths") {
            Some(Json::Array(a)) => a,
            _ => return Err(ApiError::bad_request("bad_body", format!("expected {EX}"))),
        },
        _ => return Err(ApiError::bad_request("bad_body", format!("expected {EX}"))),
    };
    if list.is_empty() {
        return Err(ApiError::bad_request(
            "bad_body",
            format!("give at least one path, e.g. {EX}"),
        ));
    }
    list.iter()
        .map(|p| {
            let s = p
                .as_str()
                .ok_or_else(|| ApiError::bad_request("bad_body", format!("{p} is not a path string; e.g. {EX}")))?;
            s.parse::<Path>()
                .map_err(|e| ApiError::bad_request("bad_path", format!("{s:?} is not an LwM2M path: {e}")))
        })
        .collect()
}

/// The `{path: value}` object of a write to `path`; a bare value is accepted for a resource or resource
/// instance path.
fn write_records(path: &Path, body: &Bytes, models: &dyn Models) -> Result<Vec<Record>, ApiError> {
    let example = if path.len() >= 3 {
        format!("{{\"{path}\": 42}} or just 42")
    } else {
        format!("{{\"{path}/1\": 42}}")
    };
    let j = body_json(body, &example)?;
    let map = match j {
        Json::Object(m) if !m.is_empty() && m.keys().all(|k| k.starts_with('/')) => m,
        other if path.len() >= 3 => {
            let mut m = Map::new();
            m.insert(path.to_string(), other);
            m
        }
        _ => {
            return Err(ApiError::bad_request(
                "bad_body",
                format!("a write to {path} takes an object mapping paths under it to values, e.g. {example}"),
            ))
        }
    };
    map_to_records(path, &map, models).map_err(|e| ApiError::bad_request("bad_value", e.0))
}

fn build_node(path: &Path, records: &[Record], models: &dyn Models, format: ContentFormat) -> Result<Node, ApiError> {
    Node::from_records(format, path, records, models).map_err(|e| ApiError::bad_request("bad_value", e.to_string()))
}

/// The body of a Create on object `o`: `{"/o/i/r": v, ...}` (instance `i` for every key) or `{"r": v,
/// "r/ri": v}` (the device picks the instance).
fn create_content(
    object: u16,
    body: &Bytes,
    models: &dyn Models,
) -> Result<(Option<u16>, Vec<ResourceNode>), ApiError> {
    const EX: &str = r#"{"/3442/1/110": "hello"} or {"110": "hello"}"#;
    let j = if body.iter().all(u8::is_ascii_whitespace) {
        Json::Object(Map::new())
    } else {
        body_json(body, EX)?
    };
    let Json::Object(obj) = j else {
        return Err(ApiError::bad_request(
            "bad_body",
            format!("a Create takes an object such as {EX}"),
        ));
    };
    let absolute = obj.keys().any(|k| k.starts_with('/'));
    if absolute && !obj.keys().all(|k| k.starts_with('/')) {
        return Err(ApiError::bad_request(
            "bad_body",
            format!("mix of absolute and relative keys; use one form, e.g. {EX}"),
        ));
    }
    let (instance, map) = if absolute {
        let mut instance = None;
        for k in obj.keys() {
            let p: Path = k
                .parse()
                .map_err(|e| ApiError::bad_request("bad_path", format!("key {k:?} is not an LwM2M path: {e}")))?;
            let (o, i) = (p.object_id(), p.instance_id());
            if o != Some(object) || i.is_none() || instance.is_some_and(|x| Some(x) != i) {
                return Err(ApiError::bad_request(
                    "bad_body",
                    format!("key {k}: every key of a Create on /{object} names the same new instance, /{object}/I/R"),
                ));
            }
            instance = i;
        }
        (instance, obj)
    } else {
        // Relative keys: type them under a placeholder instance 0.
        let mut m = Map::new();
        for (k, v) in obj {
            m.insert(format!("/{object}/0/{}", k.trim_start_matches('/')), v);
        }
        (None, m)
    };
    let probe = Path::instance(object, instance.unwrap_or(0));
    let recs = map_to_records(&probe, &map, models).map_err(|e| ApiError::bad_request("bad_value", e.0))?;
    if recs.is_empty() {
        return Ok((instance, Vec::new()));
    }
    let resources = match build_node(&probe, &recs, models, ContentFormat::Tlv)? {
        Node::Instance(inst) => inst.resources.into_values().collect(),
        _ => Vec::new(),
    };
    Ok((instance, resources))
}

fn links_json(links: &[(Path, lwm2m_core::attributes::Attributes)]) -> Json {
    Json::Array(
        links
            .iter()
            .map(|(p, a)| {
                let attrs: Map<String, Json> = a
                    .to_link_params()
                    .into_iter()
                    .map(|lp| (lp.name, lp.value.map_or(Json::Null, Json::String)))
                    .collect();
                json!({"path": p.to_string(), "attributes": attrs})
            })
            .collect(),
    )
}

/// Adds the content of a response: `values` (path → value), `records` (when timestamped) or `links`.
pub(crate) fn content_into(m: &mut Map<String, Json>, content: &Content) {
    let records = match content {
        Content::Node { path, node } => node.to_records(path),
        Content::Records(r) => r.clone(),
        Content::Links { raw, links } => {
            m.insert("links".into(), links_json(links));
            m.insert("raw".into(), Json::String(raw.clone()));
            return;
        }
    };
    match records_to_map(&records) {
        Ok(map) if records.iter().all(|r| r.time.is_none()) => {
            m.insert("values".into(), Json::Object(map));
        }
        _ => {
            m.insert("records".into(), Json::Array(records_to_list(&records)));
        }
    }
}

/// The JSON of a successful response.
pub(crate) fn response_json(r: &Response) -> Map<String, Json> {
    let mut m = Map::new();
    m.insert("code".into(), Json::String(r.code.to_string()));
    if let Some(f) = r.format {
        m.insert("format".into(), Json::String(f.name().into()));
    }
    if let Some(c) = &r.content {
        content_into(&mut m, c);
    }
    if let Some(l) = r.location {
        m.insert("location".into(), Json::String(l.to_string()));
    }
    if let Some(o) = r.observation {
        m.insert("observation".into(), json!(o.0));
    }
    m
}

/// Turns the outcome of a device request into the HTTP answer (and counts it).
fn answer(api: &WebApi, ep: &str, op: &str, result: Result<Response, ServerError>) -> ApiResult {
    let metrics = api.metrics();
    let r = match result {
        Ok(r) => r,
        Err(e) => {
            metrics.device(match e {
                ServerError::Timeout { .. } | ServerError::ClientSleeping { .. } => "timeout",
                _ => "failed",
            });
            return Err(e.into());
        }
    };
    api.shared.seen(ep);
    if !r.is_success() {
        metrics.device("device_error");
        return Err(ApiError::device_error(ep, op, r.code, r.diagnostic.as_deref()));
    }
    metrics.device("success");
    let mut m = Map::new();
    m.insert("endpoint".into(), Json::String(ep.to_string()));
    m.insert("operation".into(), Json::String(op.to_string()));
    m.extend(response_json(&r));
    let mut resp = Reply(Json::Object(m)).into_response();
    if let Some(l) = r.location {
        *resp.status_mut() = StatusCode::CREATED;
        if let Ok(v) = header::HeaderValue::from_str(&format!("/api/clients/{ep}{l}")) {
            resp.headers_mut().insert(header::LOCATION, v);
        }
    }
    Ok(resp)
}

fn observation_json(o: &ObservationInfo) -> Json {
    let paths: Vec<String> = o.request.paths().iter().map(|p| p.to_string()).collect();
    json!({
        "id": o.id.0,
        "operation": o.request.name(),
        "paths": paths,
        "format": o.format.map(|f| f.name()),
        "created_at_ms": o.created_ms,
    })
}

/// Cancels `targets` and answers `{"cancelled": [...], "mode", "code"?}`.
async fn cancel(api: &WebApi, ep: &str, targets: Vec<ObservationId>, q: &Query) -> ApiResult {
    let mode = if q.flag("active")? {
        CancelMode::Active
    } else {
        CancelMode::Passive
    };
    let opts = q.options()?;
    let mut code = None;
    let mut cancelled = Vec::new();
    for id in targets {
        match api.server().cancel_observation(id, mode, opts).await {
            Ok(r) => {
                if let Some(r) = r {
                    api.shared.seen(ep);
                    code = Some(r.code.to_string());
                }
                cancelled.push(id.0);
            }
            Err(ServerError::UnknownObservation(_)) if !cancelled.is_empty() => {}
            Err(e) => return Err(e.into()),
        }
    }
    let mode = if mode == CancelMode::Active {
        "active"
    } else {
        "passive"
    };
    let mut body = json!({"endpoint": ep, "cancelled": cancelled, "mode": mode});
    if let (Some(c), Json::Object(m)) = (code, &mut body) {
        m.insert("code".into(), Json::String(c));
    }
    Ok(Reply(body).into_response())
}

fn observation_id(text: &str) -> Result<ObservationId, ApiError> {
    text.strip_prefix("obs-")
        .unwrap_or(text)
        .parse::<u64>()
        .map(ObservationId)
        .map_err(|_| {
            ApiError::bad_request(
                "bad_observation_id",
                format!("{text:?} is not an observation id (a number from GET .../observations)"),
            )
        })
}

fn execute_arguments(body: &Bytes) -> Result<Option<String>, ApiError> {
    let text = std::str::from_utf8(body)
        .map_err(|_| ApiError::bad_request("bad_body", "the Execute arguments are not UTF-8"))?
        .trim();
    // A JSON string is accepted too: "0='a',1".
    let text = if text.starts_with('"') {
        serde_json::from_str::<String>(text).map_err(|e| {
            ApiError::bad_request(
                "bad_body",
                format!("the Execute arguments are a broken JSON string ({e})"),
            )
        })?
    } else {
        text.to_string()
    };
    Ok(if text.is_empty() { None } else { Some(text) })
}

/// `ANY /api/clients/{ep}/{*rest}`: every operation below a client.
pub(crate) async fn operation(
    State(api): State<WebApi>,
    UrlPath((ep, rest)): UrlPath<(String, String)>,
    method: Method,
    RawQuery(raw): RawQuery,
    body: Bytes,
) -> ApiResult {
    let q = Query::parse(raw.as_deref())?;
    let segs: Vec<&str> = rest.split('/').filter(|s| !s.is_empty()).collect();
    let url = format!("/api/clients/{ep}/{}", segs.join("/"));
    let not_allowed = || Err(error::method_not_allowed(method.as_str(), &url));
    let server = api.server().clone();
    const OPTS: [&str; 2] = ["format", "timeout"];
    match segs.as_slice() {
        ["observations"] => {
            if method != Method::GET {
                return not_allowed();
            }
            q.only(&[])?;
            registration(&api, &ep)?;
            let list: Vec<Json> = server.observations(&ep).iter().map(observation_json).collect();
            Ok(Reply(json!({"endpoint": ep, "observations": list})).into_response())
        }
        ["observations", id] => {
            if method != Method::DELETE {
                return not_allowed();
            }
            q.only(&["active", "timeout"])?;
            let id = observation_id(id)?;
            if !server.observations(&ep).iter().any(|o| o.id == id) {
                return Err(ApiError::not_found(
                    "unknown_observation",
                    format!(
                        "{ep} has no observation {} (GET /api/clients/{ep}/observations lists them)",
                        id.0
                    ),
                ));
            }
            cancel(&api, &ep, vec![id], &q).await
        }
        ["queue"] => {
            if method != Method::GET {
                return not_allowed();
            }
            q.only(&[])?;
            let reg = registration(&api, &ep)?;
            let (presence, awake_until, _) = presence(&api, &reg);
            let held: Vec<Json> = server
                .queued_requests(&ep)
                .iter()
                .map(|r| {
                    let paths: Vec<String> = r.paths.iter().map(|p| p.to_string()).collect();
                    json!({
                        "id": r.id,
                        "operation": r.operation,
                        "paths": paths,
                        "queued_at_ms": r.queued_at_ms,
                        "deadline_ms": r.deadline_ms,
                    })
                })
                .collect();
            Ok(Reply(json!({
                "endpoint": ep,
                "queue_mode": reg.queue_mode,
                "presence": presence,
                "awake_until_ms": awake_until,
                "requests": held,
            }))
            .into_response())
        }
        ["discover", path @ ..] => {
            if method != Method::GET {
                return not_allowed();
            }
            q.only(&["timeout"])?;
            let path = lwm2m_path(path)?;
            let r = server.discover(&ep, path, q.options()?).await;
            answer(&api, &ep, "Discover", r)
        }
        ["composite", op] => {
            if method == Method::DELETE {
                q.only(&["active", "timeout"])?;
            } else {
                q.only(&OPTS)?;
            }
            let opts = q.options()?;
            match (*op, &method) {
                ("read", &Method::POST) => {
                    let paths = body_paths(&body)?;
                    let r = server.read_composite(&ep, paths, opts).await;
                    answer(&api, &ep, "Read-Composite", r)
                }
                ("write", &Method::POST) => {
                    let reg = registration(&api, &ep)?;
                    let models = reg.models(server.models());
                    let j = body_json(&body, r#"{"/3/0/14": "+02", "/1/0/1": 300}"#)?;
                    let Json::Object(map) = j else {
                        return Err(ApiError::bad_request(
                            "bad_body",
                            r#"Write-Composite takes an object mapping paths to values, e.g. {"/3/0/14": "+02"}"#,
                        ));
                    };
                    let recs = map_to_records(&Path::ROOT, &map, &models)
                        .map_err(|e| ApiError::bad_request("bad_value", e.0))?;
                    let r = server.write_composite(&ep, recs, opts).await;
                    answer(&api, &ep, "Write-Composite", r)
                }
                ("observe", &Method::POST) => {
                    let paths = body_paths(&body)?;
                    let r = server.observe_composite(&ep, paths, opts).await;
                    answer(&api, &ep, "Observe-Composite", r)
                }
                ("observe", &Method::DELETE) => {
                    let mut paths = body_paths(&body)?;
                    paths.sort();
                    let targets: Vec<ObservationId> = server
                        .observations(&ep)
                        .into_iter()
                        .filter(|o| match &o.request {
                            Request::ObserveComposite { paths: p } => {
                                let mut p = p.clone();
                                p.sort();
                                p == paths
                            }
                            _ => false,
                        })
                        .map(|o| o.id)
                        .collect();
                    if targets.is_empty() {
                        registration(&api, &ep)?;
                        return Err(ApiError::not_found(
                            "unknown_observation",
                            format!("{ep} has no composite observation of exactly these paths"),
                        ));
                    }
                    cancel(&api, &ep, targets, &q).await
                }
                ("read" | "write" | "observe", _) => not_allowed(),
                _ => Err(error::no_route(&url)),
            }
        }
        [path @ .., "attributes"] if path.iter().all(|s| is_numeric(s)) => {
            if method != Method::PUT {
                return not_allowed();
            }
            let path = lwm2m_path(path)?;
            let opts = q.options()?;
            let pairs: Vec<String> =
                q.0.iter()
                    .filter(|(n, _)| n != "timeout")
                    .map(|(n, v)| match v.as_deref() {
                        None | Some("") => n.clone(),
                        Some(v) => format!("{n}={v}"),
                    })
                    .collect();
            let refs: Vec<&str> = pairs.iter().map(String::as_str).collect();
            let changes = attributes::parse_query(&refs).map_err(|e| {
                ApiError::bad_request(
                    "bad_attributes",
                    format!("{e}; write e.g. ?pmin=10&pmax=60&gt=30 (a name alone, ?pmin, removes it)"),
                )
            })?;
            if changes.is_empty() {
                return Err(ApiError::bad_request(
                    "bad_attributes",
                    "no attribute given; write e.g. ?pmin=10&pmax=60 (a name alone, ?pmin, removes it)",
                ));
            }
            let r = server.write_attributes(&ep, path, changes, opts).await;
            answer(&api, &ep, "Write-Attributes", r)
        }
        [path @ .., "execute"] if path.iter().all(|s| is_numeric(s)) => {
            if method != Method::POST {
                return not_allowed();
            }
            q.only(&["timeout"])?;
            let path = lwm2m_path(path)?;
            let args = execute_arguments(&body)?;
            let r = server.execute(&ep, path, args.as_deref(), q.options()?).await;
            answer(&api, &ep, "Execute", r)
        }
        [path @ .., "observe"] if path.iter().all(|s| is_numeric(s)) => {
            let path = lwm2m_path(path)?;
            match method {
                Method::POST => {
                    q.only(&OPTS)?;
                    let r = server.observe(&ep, path, q.options()?).await;
                    answer(&api, &ep, "Observe", r)
                }
                Method::DELETE => {
                    q.only(&["active", "timeout"])?;
                    let targets: Vec<ObservationId> = server
                        .observations(&ep)
                        .into_iter()
                        .filter(|o| o.request == Request::Observe { path })
                        .map(|o| o.id)
                        .collect();
                    if targets.is_empty() {
                        registration(&api, &ep)?;
                        return Err(ApiError::not_found(
                            "unknown_observation",
                            format!("{ep} has no observation of {path}"),
                        ));
                    }
                    cancel(&api, &ep, targets, &q).await
                }
                _ => not_allowed(),
            }
        }
        path if !path.is_empty() && path.iter().all(|s| is_numeric(s)) => {
            let path = lwm2m_path(path)?;
            q.only(&OPTS)?;
            let opts: RequestOptions = q.options()?;
            match method {
                Method::GET => {
                    let r = server.read(&ep, path, opts).await;
                    answer(&api, &ep, "Read", r)
                }
                Method::DELETE => {
                    let r = server.delete(&ep, path, opts).await;
                    answer(&api, &ep, "Delete", r)
                }
                Method::POST if path.len() == 1 => {
                    let reg = registration(&api, &ep)?;
                    let models = reg.models(server.models());
                    let object = path.object_id().unwrap_or_default();
                    let (instance, resources) = create_content(object, &body, &models)?;
                    let r = server.create(&ep, object, instance, resources, opts).await;
                    answer(&api, &ep, "Create", r)
                }
                Method::PUT | Method::POST => {
                    let (mode, op) = if method == Method::PUT {
                        (WriteMode::Replace, "Write-Replace")
                    } else {
                        (WriteMode::PartialUpdate, "Write-Partial-Update")
                    };
                    if path.len() < 2 {
                        return Err(ApiError::bad_request(
                            "invalid_request",
                            format!("{op} needs an instance, resource or resource-instance path, not {path}"),
                        ));
                    }
                    let reg = registration(&api, &ep)?;
                    let models = reg.models(server.models());
                    let recs = write_records(&path, &body, &models)?;
                    let node = build_node(&path, &recs, &models, opts.format.unwrap_or(ContentFormat::SenmlJson))?;
                    let r = server.write(&ep, path, mode, node, opts).await;
                    answer(&api, &ep, op, r)
                }
                _ => not_allowed(),
            }
        }
        [first, ..] if is_numeric(first) => Err(lwm2m_path(&segs).err().unwrap_or_else(|| error::no_route(&url))),
        _ => Err(error::no_route(&url)),
    }
}
