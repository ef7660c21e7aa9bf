//! Token authentication of both HTTP APIs over real TCP on 127.0.0.1: 401 with a reason and
//! `WWW-Authenticate: Bearer` without (or with a wrong) token, 200 with the bearer token, a login cookie that
//! alone opens the SSE stream (as the browser's EventSource needs), logout, and the routes that stay open
//! (health, OpenAPI, the UI's files). Every wait is bounded by [`WAIT`]; nothing sleeps.

mod common;

use std::sync::Arc;

use common::{Http, Sse, WAIT};
use hyper::{HeaderMap, Method};
use lwm2m_bootstrap::{BootstrapServer, BootstrapServerConfig, BootstrapServerHandle, MemoryConfigStore};
use lwm2m_client::dm::{Credentials, FactoryConfig, ServerConfig as Account};
use lwm2m_client::runtime::{Client, ClientConfig, ClientHandle};
use lwm2m_server::security::MemorySecurityStore;
use lwm2m_server::{Server, ServerConfig};
use lwm2m_testkit::client::bootstrap_only;
use lwm2m_testkit::http::Served;
use lwm2m_web::bootstrap::BootstrapApi;
use lwm2m_web::WebApi;
use serde_json::{json, Value as Json};

const TOKEN: &str = "correct-horse-battery-staple-42";
const BEARER: (&str, &str) = ("authorization", "Bearer correct-horse-battery-staple-42");

async fn server_api(token: Option<&str>) -> (Http, Served, lwm2m_server::ServerHandle) {
    let security = Arc::new(MemorySecurityStore::new());
    let config = ServerConfig {
        security: security.clone(),
        ..ServerConfig::default()
    };
    let (server, _events) = Server::bind(config, "127.0.0.1:0".parse().unwrap()).await.unwrap();
    let api = WebApi::new(server.clone(), security).with_token(token.map(String::from));
    assert_eq!(api.auth_enabled(), token.is_some());
    let (http, web) = common::serve(move |l, stopped| async move { api.serve(l, stopped).await }).await;
    (http, web, server)
}

async fn bootstrap_api(token: Option<&str>) -> (Http, Served, BootstrapServerHandle) {
    let store = Arc::new(MemoryConfigStore::new());
    let (bs, _events) = BootstrapServer::bind(
        BootstrapServerConfig::new(store),
        Some("127.0.0.1:0".parse().unwrap()),
        None,
    )
    .await
    .unwrap();
    let api = BootstrapApi::new(bs.clone()).with_token(token.map(String::from));
    assert_eq!(api.auth_enabled(), token.is_some());
    let (http, web) = common::serve(move |l, stopped| async move { api.serve(l, stopped).await }).await;
    (http, web, bs)
}

/// A refusal: 401, `unauthorized`, a reason containing `why` and how to authenticate, `WWW-Authenticate`.
#[track_caller]
fn assert_refused(answer: &(u16, String, HeaderMap), why: &str) {
    let (status, text, headers) = answer;
    assert_eq!(*status, 401, "{text}");
    assert_eq!(headers["www-authenticate"], "Bearer");
    let j: Json = serde_json::from_str(text).unwrap();
    assert_eq!(j["error"], "unauthorized", "{j}");
    let reason = j["reason"].as_str().unwrap();
    assert!(reason.contains(why), "{reason}");
    assert!(
        reason.contains("Authorization: Bearer <token>") && reason.contains("--api-token") && reason.contains("/ui/"),
        "{reason}"
    );
}

/// Logs in with the token; returns the `Cookie` header value.
async fn login(http: &Http, cookie_name: &str) -> String {
    let (s, text, h) = http
        .text_with(Method::POST, "/api/login", &json!({"token": TOKEN}).to_string(), &[])
        .await;
    assert_eq!(s, 200, "{text}");
    let j: Json = serde_json::from_str(&text).unwrap();
    assert_eq!(
        (j["auth"].as_bool(), j["expires_in_s"].as_u64()),
        (Some(true), Some(43200))
    );
    let set = h["set-cookie"].to_str().unwrap().to_string();
    assert!(
        set.starts_with(&format!("{cookie_name}=")) && set.contains("HttpOnly") && set.contains("SameSite=Strict"),
        "{set}"
    );
    let pair = set.split(';').next().unwrap().to_string();
    assert_eq!(
        pair.len(),
        cookie_name.len() + 1 + 64,
        "a 32-byte hex session id: {pair}"
    );
    pair
}

/// What both APIs do alike with a token: refusals, bearer, login/logout, open routes. `guarded` is a GET
/// route that needs the token. Returns the cookie of a fresh login.
async fn common_checks(http: &Http, guarded: &str, cookie_name: &str) -> String {
    // No credentials, a wrong token, another scheme.
    assert_refused(&http.text(Method::GET, guarded, "").await, "needs a token");
    assert_refused(
        &http
            .text_with(Method::GET, guarded, "", &[("authorization", "Bearer wrong")])
            .await,
        "token is wrong",
    );
    assert_refused(
        &http
            .text_with(
                Method::GET,
                guarded,
                "",
                &[("authorization", &format!("Basic {TOKEN}"))],
            )
            .await,
        "not `Bearer <token>`",
    );
    assert_refused(&http.text(Method::GET, "/api/events", "").await, "needs a token");
    assert_refused(&http.text(Method::DELETE, "/api/nope", "").await, "needs a token");
    // The right bearer token.
    assert_eq!(http.json_with(Method::GET, guarded, "", &[BEARER]).await.0, 200);

    // Open: health (which tells whether auth is on and this request is authenticated), OpenAPI, the UI.
    let (s, health) = http.json_with(Method::GET, "/api/health", "", &[]).await;
    assert_eq!(s, 200);
    assert_eq!(
        (health["auth"].as_bool(), health["authenticated"].as_bool()),
        (Some(true), Some(false))
    );
    let (_, health) = http.json_with(Method::GET, "/api/health", "", &[BEARER]).await;
    assert_eq!(health["authenticated"], true);
    assert_eq!(http.text(Method::GET, "/api/openapi.yaml", "").await.0, 200);
    let (s, html, _) = http.text(Method::GET, "/ui/", "").await;
    assert!(s == 200 && html.contains("app.js"), "{s} {html}");
    assert_eq!(http.text(Method::GET, "/ui/login.js", "").await.0, 200);
    assert_eq!(http.text(Method::GET, "/ui/app.js", "").await.0, 200);
    let (s, _, h) = http.text(Method::GET, "/", "").await;
    assert!((300..400).contains(&s) && h["location"] == "/ui/", "{s}");

    // Login: a wrong token and a bad body are refused; the right one gives a cookie that opens the API.
    let wrong = http
        .text_with(Method::POST, "/api/login", r#"{"token": "nope"}"#, &[])
        .await;
    assert_refused(&wrong, "token is wrong");
    assert!(wrong.2.get("set-cookie").is_none());
    let (s, j) = http
        .json_with(Method::POST, "/api/login", r#"{"password": "x"}"#, &[])
        .await;
    assert_eq!((s, j["error"].as_str()), (400, Some("bad_json")));
    let cookie = login(http, cookie_name).await;
    assert_eq!(
        http.json_with(Method::GET, guarded, "", &[("cookie", &cookie)]).await.0,
        200
    );
    let (_, health) = http
        .json_with(Method::GET, "/api/health", "", &[("cookie", &cookie)])
        .await;
    assert_eq!(health["authenticated"], true);

    // Logout ends that session (and clears the cookie); the bearer token still works.
    let other = login(http, cookie_name).await;
    let (s, _, h) = http
        .text_with(Method::POST, "/api/logout", "", &[("cookie", &other)])
        .await;
    assert_eq!(s, 204);
    let cleared = h["set-cookie"].to_str().unwrap();
    assert!(
        cleared.starts_with(&format!("{cookie_name}=;")) && cleared.contains("Max-Age=0"),
        "{cleared}"
    );
    assert_refused(
        &http.text_with(Method::GET, guarded, "", &[("cookie", &other)]).await,
        "unknown or expired",
    );
    assert_eq!(
        http.json_with(Method::GET, guarded, "", &[("cookie", &cookie)]).await.0,
        200
    );
    assert_eq!(http.json_with(Method::GET, guarded, "", &[BEARER]).await.0, 200);
    cookie
}

fn device(endpoint: &str, coap: std::net::SocketAddr) -> ClientHandle {
    let dm = FactoryConfig {
        servers: vec![Account::new(1, format!("coap://{coap}"), 300)],
        ..FactoryConfig::default()
    }
    .build()
    .unwrap();
    Client::start(dm, ClientConfig::new(endpoint)).unwrap().0
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn server_api_needs_the_token_or_a_login_cookie() {
    let (http, _stop, server) = server_api(Some(TOKEN)).await;
    let cookie = common_checks(&http, "/api/clients", "lwm2m_session").await;
    for (path, needs) in [("/metrics", true), ("/api/security", true), ("/api/models", true)] {
        assert_eq!(http.text(Method::GET, path, "").await.0 == 401, needs, "{path}");
        assert_eq!(http.text_with(Method::GET, path, "", &[BEARER]).await.0, 200, "{path}");
    }
    // The Bootstrap-Server's cookie name does not pass here.
    let foreign = cookie.replacen("lwm2m_session", "lwm2m_bs_session", 1);
    assert_refused(
        &http
            .text_with(Method::GET, "/api/clients", "", &[("cookie", &foreign)])
            .await,
        "needs a token",
    );

    // The cookie alone opens the event stream; a device registering is seen on it.
    let resp = http
        .send_with(Method::GET, "/api/events?kind=registered", "", &[("cookie", &cookie)])
        .await;
    let mut sse = Sse::from_response(resp);
    let _device = device("dev-auth", server.local_addrs()[0]);
    let (name, ev) = tokio::time::timeout(WAIT, sse.next_open())
        .await
        .expect("an event in time");
    assert_eq!(
        (name.as_str(), ev["endpoint"].as_str()),
        ("registered", Some("dev-auth"))
    );
    let (_, list) = http
        .json_with(Method::GET, "/api/clients", "", &[("cookie", &cookie)])
        .await;
    assert_eq!(list["clients"][0]["endpoint"], "dev-auth");

    // After logout the cookie opens nothing, the stream included.
    let (s, _, _) = http
        .text_with(Method::POST, "/api/logout", "", &[("cookie", &cookie)])
        .await;
    assert_eq!(s, 204);
    assert_refused(
        &http
            .text_with(Method::GET, "/api/events", "", &[("cookie", &cookie)])
            .await,
        "unknown or expired",
    );
    server.shutdown().await;
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn bootstrap_api_needs_the_token_or_a_login_cookie() {
    let (http, _stop, bs) = bootstrap_api(Some(TOKEN)).await;
    let cookie = common_checks(&http, "/api/configs", "lwm2m_bs_session").await;
    for path in ["/api/sessions", "/api/default-config", "/api/configs/dev"] {
        assert_eq!(http.text(Method::GET, path, "").await.0, 401, "{path}");
    }
    let config = json!({"servers": [{"ssid": 1, "uri": "coap://127.0.0.1:9", "lifetime": 300}]}).to_string();
    assert_eq!(http.text(Method::PUT, "/api/configs/dev-bs", &config).await.0, 401);
    assert!(bs.get_config("dev-bs").is_none(), "a refused request changes nothing");
    assert_eq!(
        http.text_with(Method::PUT, "/api/configs/dev-bs", &config, &[BEARER])
            .await
            .0,
        201
    );

    // The cookie alone opens the event stream; a device bootstrapping is seen on it.
    let resp = http
        .send_with(Method::GET, "/api/events?ep=dev-bs", "", &[("cookie", &cookie)])
        .await;
    let mut sse = Sse::from_response(resp);
    let dm = bootstrap_only(&format!("coap://{}", bs.local_addrs()[0]), Credentials::NoSec)
        .build()
        .unwrap();
    let (_device, _device_events) = Client::start(dm, ClientConfig::new("dev-bs")).unwrap();
    let (name, ev) = tokio::time::timeout(WAIT, sse.next_open())
        .await
        .expect("an event in time");
    assert_eq!(
        (name.as_str(), ev["endpoint"].as_str()),
        ("session-started", Some("dev-bs"))
    );
    bs.shutdown().await;
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn without_a_token_both_apis_stay_open() {
    let (http, _stop, server) = server_api(None).await;
    let (s, health) = http.json_with(Method::GET, "/api/health", "", &[]).await;
    assert_eq!(s, 200);
    assert_eq!(
        (health["auth"].as_bool(), health["authenticated"].as_bool()),
        (Some(false), Some(true))
    );
    assert_eq!(http.json_with(Method::GET, "/api/clients", "", &[]).await.0, 200);
    assert_eq!(http.text(Method::GET, "/metrics", "").await.0, 200);
    // Any bearer token is ignored; login answers that no token is configured (and sets no cookie).
    assert_eq!(http.json_with(Method::GET, "/api/clients", "", &[BEARER]).await.0, 200);
    let (s, text, h) = http
        .text_with(Method::POST, "/api/login", r#"{"token": "x"}"#, &[])
        .await;
    assert_eq!(
        (s, serde_json::from_str::<Json>(&text).unwrap()["auth"].clone()),
        (200, json!(false))
    );
    assert!(h.get("set-cookie").is_none());
    server.shutdown().await;

    let (http, _stop, bs) = bootstrap_api(None).await;
    let (_, health) = http.json_with(Method::GET, "/api/health", "", &[]).await;
    assert_eq!(health["auth"], false);
    assert_eq!(http.json_with(Method::GET, "/api/configs", "", &[]).await.0, 200);
    bs.shutdown().await;
}
