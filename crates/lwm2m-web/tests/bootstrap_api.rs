//! The Bootstrap-Server REST API end to end over real sockets on 127.0.0.1: a `BootstrapServer` on an
//! ephemeral CoAP port with its configurations in a file, `BootstrapApi` on an ephemeral HTTP port, HTTP
//! through hyper, and a real `lwm2m_client` device bootstrapping with a configuration made through the API
//! towards a real `lwm2m_server` LwM2M Server. Every wait is for an HTTP answer, an SSE event or a server
//! event, bounded by [`WAIT`]; nothing sleeps.

mod common;

use std::path::PathBuf;
use std::sync::Arc;

use common::{content_type, json_body, parse_json, Http, Sse, WAIT};
use hyper::Method;
use lwm2m_bootstrap::{BootstrapServer, BootstrapServerConfig, BootstrapServerHandle, ConfigStore, FileConfigStore};
use lwm2m_client::dm::Credentials;
use lwm2m_client::runtime::{Client, ClientConfig};
use lwm2m_server::security::{Credential, SecurityStore};
use lwm2m_server::{Event as ServerEvent, Server, ServerConfig};
use lwm2m_testkit::client::bootstrap_only;
use lwm2m_testkit::events::next_event;
use lwm2m_testkit::http::Served;
use lwm2m_testkit::scratch::Scratch;
use lwm2m_web::bootstrap::BootstrapApi;
use serde_json::{json, Value as Json};

/// A Bootstrap-Server on a file store and its API on an ephemeral HTTP port.
struct Harness {
    http: Http,
    bs: BootstrapServerHandle,
    file: PathBuf,
    web: Served,
}

async fn start_bs(file: &PathBuf) -> BootstrapServerHandle {
    let store = Arc::new(FileConfigStore::open(file).expect("the config file opens"));
    let (bs, _events) = BootstrapServer::bind(
        BootstrapServerConfig::new(store),
        Some("127.0.0.1:0".parse().unwrap()),
        None,
    )
    .await
    .expect("the bootstrap server binds");
    bs
}

impl Harness {
    async fn start(dir: &Scratch) -> Harness {
        let file = dir.path("lwm2m-bootstrap.toml");
        let bs = start_bs(&file).await;
        let api = BootstrapApi::new(bs.clone());
        let (http, web) = common::serve(move |l, stopped| async move { api.serve(l, stopped).await }).await;
        Harness { http, bs, file, web }
    }

    /// Stops the HTTP server (SSE streams end) and the Bootstrap-Server.
    async fn stop(self) {
        self.web.stop(WAIT).await.unwrap();
        self.bs.shutdown().await;
    }

    /// The status and JSON body (`null` for an empty body, e.g. 204).
    async fn call(&self, method: Method, path: &str, body: &Json) -> (u16, Json) {
        let body = if body.is_null() {
            String::new()
        } else {
            body.to_string()
        };
        let (status, text, headers) = self.http.text(method, path, &body).await;
        if text.is_empty() {
            return (status, Json::Null);
        }
        (status, json_body(path, &text, &headers))
    }

    async fn get(&self, path: &str) -> (u16, Json) {
        self.call(Method::GET, path, &Json::Null).await
    }

    async fn put(&self, path: &str, body: Json) -> (u16, Json) {
        self.call(Method::PUT, path, &body).await
    }

    async fn delete(&self, path: &str) -> (u16, Json) {
        self.call(Method::DELETE, path, &Json::Null).await
    }
}

/// An error answer: the status, and `error` / `reason` present.
#[track_caller]
fn assert_error(answer: &(u16, Json), status: u16, error: &str) {
    assert_eq!(answer.0, status, "{}", answer.1);
    assert_eq!(answer.1["error"], error, "{}", answer.1);
    assert!(
        answer.1["reason"].as_str().is_some_and(|r| !r.is_empty()),
        "no reason: {}",
        answer.1
    );
}

fn server_account(ssid: u16, uri: &str) -> Json {
    json!({
        "ssid": ssid,
        "uri": uri,
        "lifetime": 300,
        "security": {"mode": "psk", "identity": "dev-a-dm", "key": "00112233445566778899aabbccddeeff"},
        "registration_priority_order": 1
    })
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn configs_crud_validation_and_persistence() {
    let dir = Scratch::new("web-bs-crud");
    let h = Harness::start(&dir).await;

    let (s, health) = h.get("/api/health").await;
    assert_eq!((s, health["status"].as_str()), (200, Some("ok")));
    assert_eq!(health["coap"], json!([h.bs.local_addrs()[0].to_string()]));
    assert_eq!(
        (health["configs"].as_u64(), health["active_sessions"].as_u64()),
        (Some(0), Some(0))
    );
    assert_eq!(
        h.get("/api/configs").await,
        (200, json!({"default": null, "endpoints": []}))
    );
    assert_error(&h.get("/api/configs/dev-a").await, 404, "unknown_endpoint");

    // Add: 201 with the stored configuration (defaults filled in).
    let config = json!({"servers": [server_account(101, "coaps://dm.example.com:5684")]});
    let (s, stored) = h.put("/api/configs/dev-a", config.clone()).await;
    assert_eq!(s, 201, "{stored}");
    assert_eq!(stored["servers"][0]["ssid"], 101);
    assert_eq!(stored["servers"][0]["security"]["identity"], "dev-a-dm");
    assert_eq!(stored["servers"][0]["binding"], "U");
    assert_eq!(stored["read_acls"], true);
    assert_eq!(h.get("/api/configs/dev-a").await, (200, stored.clone()));
    // Replace: 200.
    let mut edited = stored.clone();
    edited["servers"][0]["lifetime"] = json!(600);
    edited["deletes"] = json!(["/5"]);
    let (s, replaced) = h.put("/api/configs/dev-a", edited.clone()).await;
    assert_eq!((s, &replaced), (200, &edited));
    assert_eq!(h.get("/api/configs/dev-a").await.1["servers"][0]["lifetime"], 600);
    // Endpoint names with reserved characters, percent-encoded.
    let (s, _) = h.put("/api/configs/urn%3Aimei%3A4901", json!({})).await;
    assert_eq!(s, 201);
    let (s, list) = h.get("/api/configs").await;
    assert_eq!(s, 200);
    let names: Vec<&str> = list["endpoints"]
        .as_array()
        .unwrap()
        .iter()
        .map(|e| e["endpoint"].as_str().unwrap())
        .collect();
    assert_eq!(names, ["dev-a", "urn:imei:4901"]);
    assert_eq!(list["endpoints"][0]["config"], edited);
    assert_eq!(h.get("/api/health").await.1["configs"], 2);

    // Invalid configurations: 400 with a reason naming the problem; nothing changes.
    let bad = h
        .put(
            "/api/configs/dev-b",
            json!({"servers": [{"ssid": 0, "uri": "coap://x"}]}),
        )
        .await;
    assert_error(&bad, 400, "invalid_config");
    assert!(bad.1["reason"].as_str().unwrap().contains("ssid"), "{}", bad.1);
    let dup = h
        .put(
            "/api/configs/dev-b",
            json!({"servers": [{"ssid": 1, "uri": "coap://x"}, {"ssid": 1, "uri": "coap://y"}]}),
        )
        .await;
    assert_error(&dup, 400, "invalid_config");
    let cf = h.put("/api/configs/dev-b", json!({"content_format": "text"})).await;
    assert_error(&cf, 400, "invalid_config");
    let unknown = h.put("/api/configs/dev-b", json!({"servres": []})).await;
    assert_error(&unknown, 400, "bad_json");
    assert!(
        unknown.1["reason"].as_str().unwrap().contains("servres"),
        "{}",
        unknown.1
    );
    assert_error(
        &h.text_json(Method::PUT, "/api/configs/dev-b", "{not json").await,
        400,
        "bad_json",
    );
    assert_error(&h.get("/api/configs/dev-b").await, 404, "unknown_endpoint");
    assert_eq!(h.get("/api/configs/dev-a").await.1, edited);

    // The default configuration.
    assert_error(&h.get("/api/default-config").await, 404, "no_default_config");
    let default = json!({"servers": [{"ssid": 1, "uri": "coap://127.0.0.1:5683", "lifetime": 60}]});
    let (s, d) = h.put("/api/default-config", default.clone()).await;
    assert_eq!(s, 201, "{d}");
    assert_eq!(d["servers"][0]["lifetime"], 60);
    let (s, _) = h.put("/api/default-config", default.clone()).await;
    assert_eq!(s, 200);
    let with_creds = h
        .put(
            "/api/default-config",
            json!({"credentials": {"mode": "psk", "identity": "x", "key": "00"}}),
        )
        .await;
    assert_error(&with_creds, 400, "invalid_config");
    assert_eq!(h.get("/api/default-config").await, (200, d.clone()));
    assert_eq!(h.get("/api/configs").await.1["default"], d);

    // Unknown routes and methods answer JSON too; the OpenAPI document is served.
    assert_error(&h.get("/api/nope").await, 404, "no_route");
    assert_error(
        &h.call(Method::POST, "/api/configs", &json!({})).await,
        405,
        "method_not_allowed",
    );
    let (s, yaml, headers) = h.http.text(Method::GET, "/api/openapi.yaml", "").await;
    let ctype = content_type(&headers);
    assert_eq!(s, 200);
    assert!(ctype.starts_with("application/yaml"), "{ctype}");
    assert!(yaml.contains("/api/sessions/{ep}/trigger:"));
    let (s, html, _) = h.http.text(Method::GET, "/ui/", "").await;
    assert_eq!(s, 200);
    assert!(html.contains("app.js"));

    // Persistence: what the API changed is in the file, for a fresh store and a new Bootstrap-Server.
    let file = h.file.clone();
    h.stop().await;
    let reopened = FileConfigStore::open(&file).unwrap();
    assert_eq!(reopened.list(), ["dev-a", "urn:imei:4901"]);
    assert_eq!(serde_json::to_value(reopened.get("dev-a").unwrap()).unwrap(), edited);
    let h = Harness::start(&dir).await;
    assert_eq!(h.get("/api/configs/dev-a").await, (200, edited));
    assert_eq!(h.bs.get_config("dev-a").unwrap().servers[0].lifetime, 600);
    assert_eq!(h.get("/api/default-config").await.1, d);

    // Delete: 204, then 404.
    assert_eq!(h.delete("/api/configs/dev-a").await, (204, Json::Null));
    assert_error(&h.get("/api/configs/dev-a").await, 404, "unknown_endpoint");
    assert_error(&h.delete("/api/configs/dev-a").await, 404, "unknown_endpoint");
    assert_eq!(h.delete("/api/default-config").await, (204, Json::Null));
    assert_error(&h.delete("/api/default-config").await, 404, "no_default_config");
    assert_eq!(h.get("/api/configs").await.1["default"], Json::Null);
    let file = h.file.clone();
    h.stop().await;
    let reopened = FileConfigStore::open(&file).unwrap();
    assert_eq!(reopened.list(), ["urn:imei:4901"]);
    assert!(reopened.default_config().is_none());
}

impl Harness {
    /// A raw body (not JSON) and the JSON answer.
    async fn text_json(&self, method: Method, path: &str, body: &str) -> (u16, Json) {
        let (s, text, _) = self.http.text(method, path, body).await;
        (s, parse_json(path, &text))
    }
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn credentials_follow_the_configuration() {
    let dir = Scratch::new("web-bs-creds");
    let h = Harness::start(&dir).await;
    let security = h.bs.security_store();

    // PSK: stored with the configuration and in the security store.
    let psk = json!({
        "credentials": {"mode": "psk", "identity": "dev-psk-id", "key": "000102030405060708090a0b0c0d0e0f"},
        "servers": [{"ssid": 1, "uri": "coap://127.0.0.1:5683"}]
    });
    let (s, stored) = h.put("/api/configs/dev-psk", psk).await;
    assert_eq!(s, 201, "{stored}");
    assert_eq!(stored["credentials"]["mode"], "psk");
    let info = security.by_endpoint("dev-psk").expect("PSK credentials stored");
    assert_eq!(
        info.credential,
        Credential::Psk {
            identity: "dev-psk-id".into(),
            key: (0u8..16).collect()
        }
    );
    assert_eq!(security.by_psk_identity(b"dev-psk-id").unwrap().endpoint, "dev-psk");

    // The same identity for another endpoint: 409, nothing stored.
    let clash = h
        .put(
            "/api/configs/dev-clash",
            json!({"credentials": {"mode": "psk", "identity": "dev-psk-id", "key": "ff"}}),
        )
        .await;
    assert_error(&clash, 409, "credentials_conflict");
    assert_error(&h.get("/api/configs/dev-clash").await, 404, "unknown_endpoint");
    assert!(security.by_endpoint("dev-clash").is_none());
    // An invalid PSK (empty key): 400.
    let empty = h
        .put(
            "/api/configs/dev-empty",
            json!({"credentials": {"mode": "psk", "identity": "id", "key": ""}}),
        )
        .await;
    assert_error(&empty, 400, "invalid_config");

    // RPK and X.509.
    let spki = "3059301306072a8648ce3d020106082a8648ce3d03010703420004".to_string() + &"11".repeat(64);
    let (s, _) = h
        .put(
            "/api/configs/dev-rpk",
            json!({"credentials": {"mode": "rpk", "public_key": spki}}),
        )
        .await;
    assert_eq!(s, 201);
    let der = security.by_endpoint("dev-rpk").map(|i| i.credential);
    assert!(
        matches!(der, Some(Credential::Rpk { ref public_key_der }) if public_key_der.len() == 91),
        "{der:?}"
    );
    let (s, _) = h
        .put("/api/configs/dev-x509", json!({"credentials": {"mode": "x509"}}))
        .await;
    assert_eq!(s, 201);
    assert_eq!(
        security.by_endpoint("dev-x509").map(|i| i.credential),
        Some(Credential::X509)
    );

    // Replacing without credentials drops them; deleting removes them.
    let (s, _) = h.put("/api/configs/dev-x509", json!({})).await;
    assert_eq!(s, 200);
    assert!(security.by_endpoint("dev-x509").is_none());
    assert_eq!(h.delete("/api/configs/dev-psk").await.0, 204);
    assert!(security.by_endpoint("dev-psk").is_none());
    assert!(security.by_psk_identity(b"dev-psk-id").is_none());
    // Now the identity is free.
    let (s, _) = h
        .put(
            "/api/configs/dev-clash",
            json!({"credentials": {"mode": "psk", "identity": "dev-psk-id", "key": "ff"}}),
        )
        .await;
    assert_eq!(s, 201);
    assert_eq!(security.by_psk_identity(b"dev-psk-id").unwrap().endpoint, "dev-clash");
    h.stop().await;
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn a_device_bootstraps_with_a_configuration_made_through_the_api() {
    const EP: &str = "dev-rest";
    let dir = Scratch::new("web-bs-session");
    let h = Harness::start(&dir).await;
    let (server, mut server_events) = Server::bind(ServerConfig::default(), "127.0.0.1:0".parse().unwrap())
        .await
        .expect("the LwM2M server binds");
    let server_uri = format!("coap://{}", server.local_addrs()[0]);

    assert_eq!(h.get("/api/sessions").await, (200, json!([])));
    assert_error(&h.get(&format!("/api/sessions/{EP}")).await, 404, "unknown_endpoint");
    let (s, _) = h
        .put(
            &format!("/api/configs/{EP}"),
            json!({"servers": [{"ssid": 1, "uri": server_uri, "lifetime": 300}]}),
        )
        .await;
    assert_eq!(s, 201);
    // Configured but never bootstrapped: an empty log; no Server instance to trigger.
    let (s, d) = h.get(&format!("/api/sessions/{EP}")).await;
    assert_eq!(s, 200);
    assert_eq!(
        (&d["log"], &d["accounts"], &d["acl"]),
        (&json!([]), &Json::Null, &Json::Null)
    );
    let no_iid = h
        .call(
            Method::POST,
            &format!("/api/sessions/{EP}/trigger"),
            &json!({"address": "127.0.0.1:9"}),
        )
        .await;
    assert_error(&no_iid, 409, "no_server_instance");
    assert_error(
        &h.call(
            Method::POST,
            "/api/sessions/nobody/trigger",
            &json!({"address": "127.0.0.1:9"}),
        )
        .await,
        404,
        "unknown_endpoint",
    );
    assert_error(
        &h.call(
            Method::POST,
            &format!("/api/sessions/{EP}/trigger"),
            &json!({"address": "localhost"}),
        )
        .await,
        400,
        "bad_address",
    );
    assert_error(
        &h.text_json(Method::GET, "/api/events?kind=nope", "").await,
        400,
        "bad_query",
    );

    let mut sse = Sse::open(&h.http, &format!("?ep={EP}")).await;
    let device = bootstrap_only(&format!("coap://{}", h.bs.local_addrs()[0]), Credentials::NoSec)
        .build()
        .unwrap();
    let (client, _client_events) = Client::start(device, ClientConfig::new(EP)).unwrap();

    // The events of the session, up to "finished".
    let mut kinds = Vec::new();
    let finished = loop {
        let (name, data) = sse.next().await.expect("the SSE stream stays open");
        assert_eq!(data["kind"], name.as_str());
        assert_eq!(data["endpoint"], EP);
        assert!(
            data["time_unix_s"].as_i64().is_some_and(|t| t > 1_600_000_000),
            "{data}"
        );
        match name.as_str() {
            "session-started" => {
                assert_eq!(
                    (&data["secure"], &data["default_config"]),
                    (&json!(false), &json!(false))
                );
                assert!(
                    data["peer"].as_str().is_some_and(|p| p.starts_with("127.0.0.1:")),
                    "{data}"
                );
            }
            "operation" => {
                assert!(data["op"].is_string() && data["path"].is_string(), "{data}");
            }
            "failed" => panic!("the bootstrap session failed: {data}"),
            _ => {}
        }
        kinds.push(name.clone());
        if name == "finished" {
            break data;
        }
    };
    assert_eq!(kinds.first().map(String::as_str), Some("session-started"), "{kinds:?}");
    for k in ["operation", "accounts-found", "acl-state"] {
        assert!(kinds.iter().any(|n| n == k), "no {k} event: {kinds:?}");
    }
    let session = finished["session"].as_u64().unwrap();
    assert!(session > 0);
    assert_eq!(finished["accounts"][0]["ssid"], 1);
    assert_eq!(finished["accounts"][0]["uri"], server_uri);

    // The session as the API shows it.
    let (s, d) = h.get(&format!("/api/sessions/{EP}")).await;
    assert_eq!(s, 200, "{d}");
    assert_eq!((&d["endpoint"], &d["active"]), (&json!(EP), &json!(false)));
    assert_eq!(d["last_result"], "finished");
    let log = d["log"].as_array().unwrap();
    let first = &log[0];
    assert_eq!(
        (&first["op"], &first["path"], &first["code"], &first["session"]),
        (
            &json!("bootstrap-request"),
            &json!("/bs"),
            &json!("2.04"),
            &json!(session)
        )
    );
    let last = log.last().unwrap();
    assert_eq!((&last["op"], &last["code"]), (&json!("finish"), &json!("2.04")));
    assert!(log.iter().any(|e| e["op"] == "discover"), "{log:?}");
    assert!(log.iter().any(|e| e["op"] == "write" && e["code"] == "2.04"), "{log:?}");
    assert!(log.iter().all(|e| e["at_unix_s"].is_i64()), "{log:?}");
    assert_eq!(d["accounts"][0]["ssid"], 1);
    let iid = d["accounts"][0]["server_instance"]
        .as_u64()
        .expect("a Server instance id");
    let acl = d["acl"].as_array().expect("BsR-1: the ACL state was read");
    assert!(
        acl.iter()
            .all(|a| a["object_id"].is_u64() && a["acl_instance"].is_u64()),
        "{acl:?}"
    );

    let (s, list) = h.get("/api/sessions").await;
    assert_eq!(s, 200);
    assert_eq!(list.as_array().map(Vec::len), Some(1), "{list}");
    assert_eq!(list[0]["endpoint"], EP);
    assert_eq!(list[0]["last_result"], "finished");
    assert_eq!(list[0]["entries"].as_u64(), Some(log.len() as u64));
    assert_eq!(list[0]["last_at_unix_s"], last["at_unix_s"]);

    // The device registers with the LwM2M server it was given.
    let registered = next_event(
        &mut server_events,
        WAIT,
        |e| matches!(e, ServerEvent::Registered { registration, .. } if registration.endpoint == EP),
    )
    .await;
    let ServerEvent::Registered { registration, .. } = registered else {
        unreachable!("next_event returns an event the predicate accepted")
    };

    // BsR-2 from the Bootstrap-Server's own socket: the device only takes it from its LwM2M Server and
    // answers 4.01, which the API reports as 502 with the CoAP code; the attempt is logged and reported.
    let trig = h
        .call(
            Method::POST,
            &format!("/api/sessions/{EP}/trigger"),
            &json!({"address": registration.peer.to_string()}),
        )
        .await;
    assert_error(&trig, 502, "device_error");
    assert_eq!(trig.1["coap_code"], "4.01");
    let (name, op) = sse.next().await.expect("the SSE stream stays open");
    assert_eq!(name, "operation");
    assert_eq!(
        (&op["op"], &op["path"], &op["code"], &op["session"]),
        (
            &json!("execute"),
            &json!(format!("/1/{iid}/9")),
            &json!("4.01"),
            &json!(0)
        )
    );
    let (_, d) = h.get(&format!("/api/sessions/{EP}")).await;
    let last = d["log"].as_array().unwrap().last().unwrap().clone();
    assert_eq!((&last["op"], &last["code"]), (&json!("execute"), &json!("4.01")));

    // Shutting the HTTP server down ends the SSE stream.
    client.shutdown().await;
    server.shutdown().await;
    h.stop().await;
    assert!(
        tokio::time::timeout(WAIT, sse.next())
            .await
            .expect("the stream ends")
            .is_none(),
        "the SSE stream ended"
    );
}
