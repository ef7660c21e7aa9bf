//! lwm2m-web: the HTTP face of the LwM2M server — a JSON REST API over
//! [`lwm2m_server::ServerHandle`], a Server-Sent Events stream of the server's events, Prometheus metrics and
//! the OpenAPI document (`docs/openapi.yaml`, served at `GET /api/openapi.yaml`).
//!
//! | route | what |
//! |---|---|
//! | `GET /api/health` | liveness, version, uptime, CoAP sockets |
//! | `GET /api/clients[?q=&offset=&limit=]`, `GET/DELETE /api/clients/{ep}` | registrations |
//! | `GET/PUT/POST/DELETE /api/clients/{ep}/{o}[/{i}[/{r}[/{ri}]]]` | Read, Write (replace / partial), Create, Delete |
//! | `GET /api/clients/{ep}/discover/{path}` | Discover |
//! | `PUT …/{path}/attributes?pmin=&pmax=…`, `POST …/{path}/execute` | Write-Attributes, Execute |
//! | `POST/DELETE …/{path}/observe` | Observe, cancel |
//! | `POST /api/clients/{ep}/composite/{read,write,observe}` | composite operations |
//! | `GET /api/clients/{ep}/observations`, `DELETE …/observations/{id}`, `GET …/queue` | observations, held requests |
//! | `GET /api/security`, `GET/PUT/DELETE /api/security/{ep}` | credentials |
//! | `GET /api/models`, `GET /api/models/{id}[?version=]` | object models (names, resource types) |
//! | `GET /api/events` | SSE: registered, updated, deregistered, expired, sleeping, awake, notification, … |
//! | `GET /metrics` | Prometheus text |
//! | `POST /api/login`, `POST /api/logout` | session cookie for the UI when a token is set ([`mod@auth`]) |
//!
//! With [`WebApi::with_token`] every route but health, the OpenAPI document, login/logout and the UI needs
//! `Authorization: Bearer <token>` or the session cookie of `POST /api/login`; without a token all is open.
//!
//! Values travel in the JSON form of [`mod@json`] (path → value). Errors are `{"error", "reason"}` with a fitting
//! status ([`error::ApiError`]).
//!
//! ```no_run
//! use std::sync::Arc;
//! use lwm2m_server::security::MemorySecurityStore;
//! use lwm2m_server::{Server, ServerConfig};
//! use lwm2m_web::WebApi;
//!
//! # async fn demo() -> Result<(), Box<dyn std::error::Error>> {
//! let security = Arc::new(MemorySecurityStore::new());
//! let config = ServerConfig { security: security.clone(), ..ServerConfig::default() };
//! let (server, _events) = Server::bind(config, "0.0.0.0:5683".parse()?).await?;
//! // Require a bearer token (or a UI login) on the API; `None` leaves it open.
//! let api = WebApi::new(server, security).with_token(std::env::var("LWM2M_API_TOKEN").ok());
//! let listener = tokio::net::TcpListener::bind("0.0.0.0:8080").await?;
//! // Serves until the future completes (here: never; `lwm2m server` passes Ctrl-C).
//! api.serve(listener, std::future::pending()).await?;
//! # Ok(()) }
//! ```
#![forbid(unsafe_code)]

pub mod auth;
pub mod bootstrap;
mod clients;
pub mod error;
mod events;
pub mod json;
pub mod metrics;
mod models;
mod query;
mod security;
mod serve;
mod sse;
mod ui;

use std::collections::HashMap;
use std::sync::{Arc, Mutex, Weak};
use std::time::Instant;

use axum::extract::{Request, State};
use axum::http::{header, HeaderMap};
use axum::middleware::{self, Next};
use axum::response::{IntoResponse, Response};
use axum::routing::{any, get};
use axum::{Json, Router};
use lwm2m_server::security::MemorySecurityStore;
use lwm2m_server::{Event, ServerHandle};
use serde_json::json;
use tokio::sync::{broadcast, watch};

pub use error::ApiError;

/// The OpenAPI 3 document of this API.
pub const OPENAPI_YAML: &str = include_str!("../../../docs/openapi.yaml");

struct Shared {
    server: ServerHandle,
    security: Arc<MemorySecurityStore>,
    metrics: metrics::Metrics,
    started: Instant,
    /// The last time (server clock, ms) the API saw each endpoint talk: events and answers to API requests.
    last_seen: Mutex<HashMap<String, u64>>,
    /// Set once the HTTP server shuts down: SSE streams end.
    closing: watch::Sender<bool>,
}

impl Shared {
    fn seen(&self, endpoint: &str) {
        let now = self.server.now_ms();
        let mut m = self.last_seen.lock().unwrap_or_else(|p| p.into_inner());
        match m.get_mut(endpoint) {
            Some(t) => *t = (*t).max(now),
            None => {
                m.insert(endpoint.to_string(), now);
            }
        }
    }

    fn forget(&self, endpoint: &str) {
        self.last_seen
            .lock()
            .unwrap_or_else(|p| p.into_inner())
            .remove(endpoint);
    }

    fn last_seen(&self, endpoint: &str) -> Option<u64> {
        self.last_seen
            .lock()
            .unwrap_or_else(|p| p.into_inner())
            .get(endpoint)
            .copied()
    }

    fn on_event(&self, ev: &Event) {
        self.metrics.event(ev.kind());
        match ev {
            Event::Deregistered { registration } | Event::Expired { registration } => {
                self.forget(&registration.endpoint)
            }
            Event::Sleeping { .. } | Event::ObservationEnded { .. } | Event::OnRegistrationResult { .. } => {}
            // A held request that expired or failed says nothing about the device talking.
            Event::QueuedRequestDone { result: Err(_), .. } => {}
            other => self.seen(other.endpoint()),
        }
    }
}

/// The REST API of one running server. Cheap to clone.
#[derive(Clone)]
pub struct WebApi {
    shared: Arc<Shared>,
    auth: Arc<auth::Auth>,
}

impl std::fmt::Debug for WebApi {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.debug_struct("WebApi").field("server", &self.shared.server).finish()
    }
}

impl WebApi {
    /// The API over `server`, whose security store is `security` (the same store the server's
    /// `ServerConfig::security` and its DTLS sockets use, so credentials added here apply at once).
    /// Spawns a small task that follows the events for the metrics and the clients' last-seen times, so it
    /// must be called inside a tokio runtime.
    pub fn new(server: ServerHandle, security: Arc<MemorySecurityStore>) -> WebApi {
        let (closing, _) = watch::channel(false);
        let shared = Arc::new(Shared {
            server,
            security,
            metrics: metrics::Metrics::default(),
            started: Instant::now(),
            last_seen: Mutex::new(HashMap::new()),
            closing,
        });
        tokio::spawn(follow_events(
            shared.server.subscribe(),
            shared.closing.subscribe(),
            Arc::downgrade(&shared),
        ));
        WebApi {
            shared,
            auth: Arc::new(auth::Auth::open(auth::Role::Server)),
        }
    }

    /// The server handle.
    pub fn server(&self) -> &ServerHandle {
        &self.shared.server
    }

    /// The security store.
    pub fn security(&self) -> &Arc<MemorySecurityStore> {
        &self.shared.security
    }

    /// The counters behind `/metrics`.
    pub fn metrics(&self) -> &metrics::Metrics {
        &self.shared.metrics
    }

    /// The axum application: every route, login/logout, JSON fallbacks for unknown routes and methods, the
    /// token check ([`WebApi::with_token`]), response counting and request tracing (`tower_http::trace`, at
    /// debug level).
    pub fn router(&self) -> Router {
        let routes = Router::new()
            .route("/api/health", get(health))
            .route("/api/openapi.yaml", get(openapi))
            .route("/metrics", get(prometheus))
            .route("/api/events", get(events::stream))
            .route("/api/clients", get(clients::list))
            .route("/api/clients/{ep}", get(clients::detail).delete(clients::remove))
            .route("/api/clients/{ep}/{*rest}", any(clients::operation))
            .route("/api/models", get(models::list))
            .route("/api/models/{id}", get(models::get_one))
            .route("/api/security", get(security::list))
            .route(
                "/api/security/{ep}",
                get(security::get_one).put(security::put).delete(security::delete),
            )
            .merge(ui::server_ui());
        serve::finish(routes, &self.auth)
            .layer(middleware::from_fn_with_state(self.clone(), count_responses))
            .layer(tower_http::trace::TraceLayer::new_for_http())
            .with_state(self.clone())
    }
}

serve::http_api_methods!(WebApi, auth::Role::Server);

async fn follow_events(mut rx: broadcast::Receiver<Event>, mut closing: watch::Receiver<bool>, shared: Weak<Shared>) {
    loop {
        tokio::select! {
            r = rx.recv() => {
                let Some(s) = shared.upgrade() else { return };
                match r {
                    Ok(ev) => s.on_event(&ev),
                    Err(broadcast::error::RecvError::Lagged(n)) => s.metrics.lagged(n),
                    Err(broadcast::error::RecvError::Closed) => return,
                }
            }
            _ = closing.changed() => return,
        }
    }
}

async fn count_responses(State(api): State<WebApi>, req: Request, next: Next) -> Response {
    let resp = next.run(req).await;
    api.shared.metrics.http(resp.status().as_u16());
    resp
}

async fn health(State(api): State<WebApi>, headers: HeaderMap) -> Json<serde_json::Value> {
    let s = &api.shared;
    let coap: Vec<String> = s.server.local_addrs().iter().map(|a| a.to_string()).collect();
    Json(json!({
        "status": "ok",
        "version": env!("CARGO_PKG_VERSION"),
        "uptime_s": s.started.elapsed().as_secs(),
        "registrations": s.server.store().len(),
        "coap": coap,
        "auth": api.auth.enabled(),
        "authenticated": api.auth.check(&headers).is_ok(),
    }))
}

async fn openapi() -> impl IntoResponse {
    serve::yaml(OPENAPI_YAML)
}

async fn prometheus(State(api): State<WebApi>) -> impl IntoResponse {
    let s = &api.shared;
    let gauges = metrics::Gauges {
        registrations: s.server.store().len() as u64,
        observations: s.server.all_observations().len() as u64,
        queued_requests: s.server.all_queued_requests().len() as u64,
        security_entries: s.security.list().len() as u64,
        uptime_s: s.started.elapsed().as_secs(),
    };
    (
        [(header::CONTENT_TYPE, "text/plain; version=0.0.4; charset=utf-8")],
        s.metrics.render(gauges),
    )
}

#[cfg(test)]
mod tests {
    use super::*;

    /// Every route of the router (and every suffix operation under a client) is in the OpenAPI document.
    #[test]
    fn openapi_documents_every_route() {
        for path in [
            "/api/health",
            "/api/openapi.yaml",
            "/metrics",
            "/api/events",
            "/api/clients",
            "/api/clients/{ep}",
            "/api/clients/{ep}/{path}",
            "/api/clients/{ep}/discover/{path}",
            "/api/clients/{ep}/{path}/attributes",
            "/api/clients/{ep}/{path}/execute",
            "/api/clients/{ep}/{path}/observe",
            "/api/clients/{ep}/composite/read",
            "/api/clients/{ep}/composite/write",
            "/api/clients/{ep}/composite/observe",
            "/api/clients/{ep}/observations",
            "/api/clients/{ep}/observations/{id}",
            "/api/clients/{ep}/queue",
            "/api/security",
            "/api/security/{ep}",
            "/api/models",
            "/api/models/{id}",
            "/api/login",
            "/api/logout",
        ] {
            assert!(
                OPENAPI_YAML.contains(&format!("\n  {path}:\n")),
                "{path} is not in docs/openapi.yaml"
            );
        }
        assert!(OPENAPI_YAML.starts_with("openapi: 3."));
        for kind in metrics::EVENT_KINDS {
            assert!(
                OPENAPI_YAML.contains(kind),
                "event kind {kind} is not in docs/openapi.yaml"
            );
        }
    }
}
