//! Shared-secret authentication of the HTTP APIs (the server's and the Bootstrap-Server's alike).
//!
//! Without a token everything is open, as before. With one (`WebApi::with_token`,
//! `BootstrapApi::with_token`; `--api-token` / `--api-token-file` of the CLI), every `/api/…` route and
//! `/metrics` need either `Authorization: Bearer <token>` or a session cookie; open stay `/api/health`,
//! `/api/openapi.yaml`, `POST /api/login`, `POST /api/logout` and the UI's assets (`/`, `/ui/…`: no secrets in
//! them). `POST /api/login` with `{"token": "…"}` starts a session: a random 32-byte id (hex) kept in memory
//! with its start time, sent as an `HttpOnly; SameSite=Strict` cookie, valid for [`SESSION_TTL`] or until
//! `POST /api/logout` (or a restart). The cookie lets the browser's `EventSource`, which cannot send headers,
//! open `/api/events`. Tokens and session ids are compared in constant time.
//!
//! Refusals are 401 `{"error": "unauthorized", "reason": "…"}` with `WWW-Authenticate: Bearer`.

use std::sync::{Arc, Mutex};
use std::time::{Duration, Instant};

use axum::body::Bytes;
use axum::extract::{Request, State};
use axum::http::{header, HeaderMap, HeaderValue, StatusCode};
use axum::middleware::Next;
use axum::response::{IntoResponse, Response};
use axum::routing::post;
use axum::{Json, Router};
use serde::Deserialize;
use serde_json::json;

use crate::error::ApiError;

/// How long a login session lasts.
pub const SESSION_TTL: Duration = Duration::from_secs(12 * 3600);

/// At most this many sessions are kept; a login beyond it ends the oldest.
const MAX_SESSIONS: usize = 1024;

/// Which API an [`Auth`] guards: names its cookie (both may run on one host, and cookies do not tell ports
/// apart) and the option that sets its token.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub(crate) enum Role {
    /// `lwm2m server`'s API.
    Server,
    /// `lwm2m bootstrap`'s API.
    Bootstrap,
}

impl Role {
    fn cookie(self) -> &'static str {
        match self {
            Role::Server => "lwm2m_session",
            Role::Bootstrap => "lwm2m_bs_session",
        }
    }

    fn option(self) -> &'static str {
        match self {
            Role::Server => "the --api-token of lwm2m server",
            Role::Bootstrap => "the --api-token of lwm2m bootstrap",
        }
    }
}

/// The authentication state of one API: its token (if any) and the live sessions.
pub(crate) struct Auth {
    token: Option<Vec<u8>>,
    role: Role,
    /// Session id (hex text) and when it started.
    sessions: Mutex<Vec<(String, Instant)>>,
}

impl std::fmt::Debug for Auth {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.debug_struct("Auth")
            .field("enabled", &self.enabled())
            .field("role", &self.role)
            .finish_non_exhaustive()
    }
}

/// Why a request was refused.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub(crate) enum Denied {
    /// Neither a bearer token nor a session cookie.
    Missing,
    /// An `Authorization` header that is not `Bearer <token>`.
    NotBearer,
    /// A bearer token that is not the token.
    WrongToken,
    /// A session cookie that is unknown or expired.
    NoSession,
}

/// `a == b` in time that depends only on `given`'s length (never on where they differ, nor on `expected`).
fn ct_eq(given: &[u8], expected: &[u8]) -> bool {
    let mut diff = u8::from(given.len() != expected.len());
    for (i, g) in given.iter().enumerate() {
        let e = expected.get(i % expected.len().max(1)).copied().unwrap_or(0);
        diff |= g ^ e;
    }
    // An empty token matches nothing.
    diff == 0 && !expected.is_empty()
}

/// The value of cookie `name` in the request's `Cookie` headers.
fn cookie<'a>(headers: &'a HeaderMap, name: &str) -> Option<&'a str> {
    headers
        .get_all(header::COOKIE)
        .iter()
        .filter_map(|v| v.to_str().ok())
        .flat_map(|v| v.split(';'))
        .filter_map(|kv| kv.trim().split_once('='))
        .find(|(k, _)| *k == name)
        .map(|(_, v)| v.trim())
}

/// 32 random bytes from the operating system, as hex.
fn session_id() -> Result<String, getrandom::Error> {
    let mut b = [0u8; 32];
    getrandom::fill(&mut b)?;
    Ok(hex::encode(b))
}

impl Auth {
    /// No token: everything open.
    pub(crate) fn open(role: Role) -> Auth {
        Auth::new(None, role)
    }

    /// Guards with `token` when it is `Some` (an empty token matches nothing).
    pub(crate) fn new(token: Option<String>, role: Role) -> Auth {
        Auth {
            token: token.map(String::into_bytes),
            role,
            sessions: Mutex::new(Vec::new()),
        }
    }

    /// Whether a token is set.
    pub(crate) fn enabled(&self) -> bool {
        self.token.is_some()
    }

    fn token_is(&self, given: &str) -> bool {
        self.token.as_deref().is_some_and(|t| ct_eq(given.as_bytes(), t))
    }

    fn sessions(&self) -> std::sync::MutexGuard<'_, Vec<(String, Instant)>> {
        let mut s = self.sessions.lock().unwrap_or_else(|p| p.into_inner());
        s.retain(|(_, t)| t.elapsed() < SESSION_TTL);
        s
    }

    fn has_session(&self, id: &str) -> bool {
        // Every live id is compared (no early exit), each in constant time.
        self.sessions()
            .iter()
            .fold(false, |found, (s, _)| found | ct_eq(id.as_bytes(), s.as_bytes()))
    }

    /// Whether the request may pass: always without a token; else with the right bearer token or a live
    /// session cookie.
    pub(crate) fn check(&self, headers: &HeaderMap) -> Result<(), Denied> {
        if !self.enabled() {
            return Ok(());
        }
        let bearer = headers.get(header::AUTHORIZATION).map(|v| {
            let v = v.to_str().unwrap_or("");
            match v.split_once(' ') {
                Some((scheme, token)) if scheme.eq_ignore_ascii_case("bearer") => {
                    if self.token_is(token.trim()) {
                        Ok(())
                    } else {
                        Err(Denied::WrongToken)
                    }
                }
                _ => Err(Denied::NotBearer),
            }
        });
        if let Some(Ok(())) = bearer {
            return Ok(());
        }
        let session = cookie(headers, self.role.cookie()).map(|id| {
            if self.has_session(id) {
                Ok(())
            } else {
                Err(Denied::NoSession)
            }
        });
        match (bearer, session) {
            (_, Some(Ok(()))) => Ok(()),
            (Some(Err(d)), _) | (None, Some(Err(d))) => Err(d),
            (None, None) | (Some(Ok(())), _) => Err(Denied::Missing),
        }
    }

    /// The 401 answer for `denied`.
    pub(crate) fn refusal(&self, denied: Denied) -> Response {
        let how = format!(
            "send Authorization: Bearer <token> ({}) or log in at /ui/",
            self.role.option()
        );
        let reason = match denied {
            Denied::Missing => format!("this API needs a token: {how}"),
            Denied::NotBearer => format!("the Authorization header is not `Bearer <token>`: {how}"),
            Denied::WrongToken => format!("the bearer token is wrong: {how}"),
            Denied::NoSession => format!(
                "the session cookie is unknown or expired (sessions last {} h and end on logout or restart): {how}",
                SESSION_TTL.as_secs() / 3600
            ),
        };
        unauthorized(reason)
    }

    /// Starts a session when `token` is the token; returns its id.
    fn login(&self, token: &str) -> Option<Result<String, getrandom::Error>> {
        if !self.token_is(token) {
            return None;
        }
        Some(session_id().inspect(|id| {
            let mut s = self.sessions();
            if s.len() >= MAX_SESSIONS {
                s.remove(0);
            }
            s.push((id.clone(), Instant::now()));
        }))
    }

    /// Ends the session of the request's cookie, if any.
    fn logout(&self, headers: &HeaderMap) {
        if let Some(id) = cookie(headers, self.role.cookie()) {
            self.sessions().retain(|(s, _)| !ct_eq(id.as_bytes(), s.as_bytes()));
        }
    }

    fn set_cookie(&self, value: &str, max_age: u64) -> HeaderValue {
        let c = format!(
            "{}={value}; Path=/; Max-Age={max_age}; HttpOnly; SameSite=Strict",
            self.role.cookie()
        );
        HeaderValue::from_str(&c).unwrap_or_else(|_| HeaderValue::from_static(""))
    }
}

/// A 401 `unauthorized` with `reason` and `WWW-Authenticate: Bearer`.
fn unauthorized(reason: String) -> Response {
    let mut r = ApiError::new(StatusCode::UNAUTHORIZED, "unauthorized", reason).into_response();
    r.headers_mut()
        .insert(header::WWW_AUTHENTICATE, HeaderValue::from_static("Bearer"));
    r
}

/// Whether `path` is open whatever the token: health, the OpenAPI document, login/logout, and anything outside
/// `/api/` and `/metrics` (the UI's assets, and the JSON 404s of unknown paths).
fn is_open(path: &str) -> bool {
    let guarded = path == "/api" || path.starts_with("/api/") || path == "/metrics" || path.starts_with("/metrics/");
    !guarded || matches!(path, "/api/health" | "/api/openapi.yaml" | "/api/login" | "/api/logout")
}

/// The middleware: refuses guarded routes without valid credentials.
pub(crate) async fn require(State(auth): State<Arc<Auth>>, req: Request, next: Next) -> Response {
    if auth.enabled() && !is_open(req.uri().path()) {
        if let Err(d) = auth.check(req.headers()) {
            return auth.refusal(d);
        }
    }
    next.run(req).await
}

/// The body of `POST /api/login`.
#[derive(Deserialize)]
#[serde(deny_unknown_fields)]
struct LoginBody {
    token: String,
}

async fn login(State(auth): State<Arc<Auth>>, body: Bytes) -> Response {
    let b: LoginBody = match serde_json::from_slice(&body) {
        Ok(b) => b,
        Err(e) => {
            return ApiError::bad_request("bad_json", format!("the body must be {{\"token\": \"...\"}}: {e}"))
                .into_response()
        }
    };
    if !auth.enabled() {
        return Json(json!({"status": "ok", "auth": false})).into_response();
    }
    match auth.login(&b.token) {
        None => unauthorized(format!(
            "the token is wrong: give {} (scripts send it as Authorization: Bearer <token> instead of logging in \
             at /ui/)",
            auth.role.option()
        )),
        Some(Err(e)) => ApiError::new(
            StatusCode::INTERNAL_SERVER_ERROR,
            "no_randomness",
            format!("cannot make a session id: the operating system's random source failed ({e})"),
        )
        .into_response(),
        Some(Ok(id)) => {
            let ttl = SESSION_TTL.as_secs();
            (
                [(header::SET_COOKIE, auth.set_cookie(&id, ttl))],
                Json(json!({"status": "ok", "auth": true, "expires_in_s": ttl})),
            )
                .into_response()
        }
    }
}

async fn logout(State(auth): State<Arc<Auth>>, headers: HeaderMap) -> Response {
    auth.logout(&headers);
    (StatusCode::NO_CONTENT, [(header::SET_COOKIE, auth.set_cookie("", 0))]).into_response()
}

/// `POST /api/login` and `POST /api/logout`, for any router state.
pub(crate) fn routes<S: Clone + Send + Sync + 'static>(auth: Arc<Auth>) -> Router<S> {
    Router::new()
        .route("/api/login", post(login))
        .route("/api/logout", post(logout))
        .with_state(auth)
}

#[cfg(test)]
mod tests {
    use super::*;

    fn headers(pairs: &[(&'static str, &str)]) -> HeaderMap {
        let mut h = HeaderMap::new();
        for (k, v) in pairs {
            h.append(*k, HeaderValue::from_str(v).unwrap());
        }
        h
    }

    #[test]
    fn constant_time_comparison() {
        assert!(ct_eq(b"secret", b"secret"));
        assert!(!ct_eq(b"secreT", b"secret"));
        assert!(!ct_eq(b"secret!", b"secret"));
        assert!(!ct_eq(b"secre", b"secret"));
        assert!(!ct_eq(b"", b"secret"));
        assert!(!ct_eq(b"", b""), "an empty token matches nothing");
        assert!(!ct_eq(b"x", b""));
    }

    #[test]
    fn open_paths() {
        for p in [
            "/",
            "/ui/",
            "/ui/app.js",
            "/api/health",
            "/api/openapi.yaml",
            "/api/login",
            "/nope",
        ] {
            assert!(is_open(p), "{p}");
        }
        for p in [
            "/api",
            "/api/",
            "/api/clients",
            "/api/events",
            "/metrics",
            "/api/healthz",
            "/api/nope",
        ] {
            assert!(!is_open(p), "{p}");
        }
    }

    #[test]
    fn bearer_and_sessions() {
        let a = Auth::new(Some("s3cret".into()), Role::Server);
        assert_eq!(a.check(&HeaderMap::new()), Err(Denied::Missing));
        assert_eq!(a.check(&headers(&[("authorization", "Bearer s3cret")])), Ok(()));
        assert_eq!(a.check(&headers(&[("authorization", "bearer  s3cret ")])), Ok(()));
        assert_eq!(
            a.check(&headers(&[("authorization", "Bearer nope")])),
            Err(Denied::WrongToken)
        );
        assert_eq!(
            a.check(&headers(&[("authorization", "Basic czNjcmV0")])),
            Err(Denied::NotBearer)
        );
        assert_eq!(
            a.check(&headers(&[("cookie", "lwm2m_session=00")])),
            Err(Denied::NoSession)
        );
        assert!(a.login("wrong").is_none());
        let id = a.login("s3cret").unwrap().unwrap();
        assert_eq!(id.len(), 64);
        let with_cookie = headers(&[("cookie", &format!("theme=dark; lwm2m_session={id}"))]);
        assert_eq!(a.check(&with_cookie), Ok(()));
        // The Bootstrap-Server's cookie does not open the server's API.
        assert_eq!(
            a.check(&headers(&[("cookie", &format!("lwm2m_bs_session={id}"))])),
            Err(Denied::Missing)
        );
        // A valid session wins over a wrong bearer token.
        let mut both = with_cookie.clone();
        both.append(header::AUTHORIZATION, HeaderValue::from_static("Bearer nope"));
        assert_eq!(a.check(&both), Ok(()));
        a.logout(&with_cookie);
        assert_eq!(a.check(&with_cookie), Err(Denied::NoSession));
        assert_eq!(Auth::open(Role::Bootstrap).check(&HeaderMap::new()), Ok(()));
    }

    #[test]
    fn refusals_say_how_to_authenticate() {
        let a = Auth::new(Some("t".into()), Role::Bootstrap);
        let r = a.refusal(Denied::WrongToken);
        assert_eq!(r.status(), StatusCode::UNAUTHORIZED);
        assert_eq!(r.headers()[header::WWW_AUTHENTICATE], "Bearer");
        let c = a.set_cookie("abc", 60);
        assert_eq!(c, "lwm2m_bs_session=abc; Path=/; Max-Age=60; HttpOnly; SameSite=Strict");
    }

    #[test]
    fn sessions_are_bounded() {
        let a = Auth::new(Some("t".into()), Role::Server);
        let first = a.login("t").unwrap().unwrap();
        for _ in 0..MAX_SESSIONS {
            a.login("t").unwrap().unwrap();
        }
        assert_eq!(a.sessions().len(), MAX_SESSIONS);
        assert!(!a.has_session(&first), "the oldest session ended");
    }
}
