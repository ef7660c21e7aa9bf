//! The REST API end to end: a real server on 127.0.0.1 (ephemeral CoAP and HTTP ports), a simulated device
//! (the client runtime with a factory data model plus the test object 3442) and HTTP requests through hyper.
//! Every wait is for a message, an event or an HTTP answer, bounded by [`WAIT`]; nothing sleeps.

mod common;

use std::net::SocketAddr;
use std::sync::Arc;
use std::time::Duration;

use common::{Http, Sse, WAIT};
use hyper::Method;
use lwm2m_client::dm::{FactoryConfig, ServerConfig as Account};
use lwm2m_client::object::{ExecHook, SimpleObject};
use lwm2m_client::runtime::{Client, ClientConfig, ClientEvent, ClientHandle};
use lwm2m_coap::{Code, EndpointConfig, Incoming as CoapIncoming, Message, UdpEndpoint, UdpHandle};
use lwm2m_core::{ResourceNode, Value};
use lwm2m_server::security::MemorySecurityStore;
use lwm2m_server::{Event, Server, ServerConfig, ServerHandle};
use lwm2m_testkit::client::{object_3442, resource_1120};
use lwm2m_testkit::events::{next_event_strict, recv, until};
use lwm2m_testkit::http::Served;
use lwm2m_web::WebApi;
use serde_json::{json, Value as Json};
use tokio::sync::{broadcast, mpsc};

struct Harness {
    http: Http,
    server: ServerHandle,
    coap: SocketAddr,
    events: broadcast::Receiver<Event>,
    device: ClientHandle,
    device_events: mpsc::UnboundedReceiver<ClientEvent>,
    /// Arguments of every Execute of /3442/0/0.
    executed: mpsc::UnboundedReceiver<String>,
    _web: Served,
}

/// The test object 3442, instance 0: String 110 = "hello", Integer 120 = 42, multiple Integer 1120 =
/// {0: 10, 1: 11, 2: 12}; resource 0 is executable and reports its arguments.
fn test_object(executed: mpsc::UnboundedSender<String>) -> SimpleObject<ExecHook> {
    object_3442([
        ResourceNode::single(110, Value::String("hello".into())),
        ResourceNode::single(120, Value::Integer(42)),
        resource_1120(),
    ])
    .with_executables(&[0])
    .with_exec(move |_, _, _, args, _| {
        let text: Vec<String> = args
            .iter()
            .map(|a| match &a.value {
                Some(v) => format!("{}='{}'", a.id, v),
                None => a.id.to_string(),
            })
            .collect();
        let _ = executed.send(text.join(","));
        Ok(())
    })
}

impl Harness {
    async fn start() -> Harness {
        Harness::start_with(false, ServerConfig::default().awake_time).await
    }

    /// A device in queue mode (or not), the server considering it asleep `awake` after its last message.
    async fn start_with(queue_mode: bool, awake: Duration) -> Harness {
        let security = Arc::new(MemorySecurityStore::new());
        let config = ServerConfig {
            security: security.clone(),
            awake_time: awake,
            ..ServerConfig::default()
        };
        let (server, mut events) = Server::bind(config, "127.0.0.1:0".parse().unwrap()).await.unwrap();
        let coap = server.local_addrs()[0];
        let api = WebApi::new(server.clone(), security);
        let (http, web) = common::serve(move |l, stopped| async move { api.serve(l, stopped).await }).await;

        let (exec_tx, executed) = mpsc::unbounded_channel();
        let mut account = Account::new(1, format!("coap://{coap}"), 300);
        account.server.mute_send = Some(false);
        let mut dm = FactoryConfig {
            servers: vec![account],
            temperature: Some(vec![(0, 21.0)]),
            ..FactoryConfig::default()
        }
        .build()
        .unwrap();
        dm.add_object(test_object(exec_tx));
        let mut client_config = ClientConfig::new("dev-1");
        client_config.queue_mode = queue_mode;
        let (device, device_events) = Client::start(dm, client_config).unwrap();
        next_event_strict(&mut events, WAIT, |e| matches!(e, Event::Registered { .. })).await;
        Harness {
            http,
            server,
            coap,
            events,
            device,
            device_events,
            executed,
            _web: web,
        }
    }

    /// The status and JSON body.
    async fn call(&self, method: Method, path: &str, body: &str) -> (u16, Json) {
        self.http.json_with(method, path, body, &[]).await
    }

    async fn get(&self, path: &str) -> (u16, Json) {
        self.call(Method::GET, path, "").await
    }
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn clients_reads_writes_and_execute() {
    let mut h = Harness::start().await;

    let (s, health) = h.get("/api/health").await;
    assert_eq!((s, health["status"].as_str()), (200, Some("ok")));
    assert_eq!(health["coap"], json!([h.coap.to_string()]));

    // List and search.
    let (s, list) = h.get("/api/clients").await;
    assert_eq!((s, list["total"].as_u64()), (200, Some(1)));
    assert_eq!(list["clients"][0]["endpoint"], "dev-1");
    assert_eq!(list["clients"][0]["presence"], "awake");
    assert_eq!(h.get("/api/clients?q=DEV").await.1["total"], 1);
    assert_eq!(h.get("/api/clients?q=nope").await.1["total"], 0);
    assert_eq!(h.get("/api/clients?limit=0").await.1["clients"], json!([]));

    // Detail.
    let (s, d) = h.get("/api/clients/dev-1").await;
    assert_eq!(s, 200);
    assert_eq!((d["binding"].as_str(), d["version"].as_str()), (Some("U"), Some("1.1")));
    assert_eq!(d["lifetime_s"], 300);
    assert_eq!(d["identity"]["mode"], "nosec");
    let objects = d["objects"].as_array().unwrap();
    assert!(
        objects.iter().any(|o| o["id"] == 3 && o["instances"] == json!([0])),
        "{d}"
    );
    assert!(objects.iter().any(|o| o["id"] == 3442), "{d}");

    // Read an instance, a resource in an explicit format, a resource instance (DSE-001).
    let (s, r) = h.get("/api/clients/dev-1/3/0").await;
    assert_eq!(
        (s, r["code"].as_str(), r["operation"].as_str()),
        (200, Some("2.05"), Some("Read"))
    );
    assert!(r["values"]["/3/0/0"].is_string(), "{r}");
    let (s, r) = h.get("/api/clients/dev-1/3442/0/110?format=senml-json").await;
    assert_eq!(
        (s, &r["format"], &r["values"]),
        (200, &json!("senml-json"), &json!({"/3442/0/110": "hello"}))
    );
    let (s, r) = h.get("/api/clients/dev-1/3442/0/1120/1").await;
    assert_eq!((s, &r["values"]), (200, &json!({"/3442/0/1120/1": 11})));

    // Write a resource (bare value), a resource instance, and partial-update an instance (map form).
    let (s, r) = h.call(Method::PUT, "/api/clients/dev-1/3442/0/110", r#""bye""#).await;
    assert_eq!((s, r["code"].as_str()), (200, Some("2.04")), "{r}");
    assert_eq!(
        h.get("/api/clients/dev-1/3442/0/110").await.1["values"]["/3442/0/110"],
        "bye"
    );
    let (s, r) = h.call(Method::PUT, "/api/clients/dev-1/3442/0/1120/1", "99").await;
    assert_eq!((s, r["operation"].as_str()), (200, Some("Write-Replace")), "{r}");
    let (_, r) = h.get("/api/clients/dev-1/3442/0/1120").await;
    assert_eq!(
        r["values"],
        json!({"/3442/0/1120/0": 10, "/3442/0/1120/1": 99, "/3442/0/1120/2": 12})
    );
    let (s, r) = h
        .call(
            Method::POST,
            "/api/clients/dev-1/3442/0",
            r#"{"/3442/0/120": 7, "/3442/0/1120/5": 55}"#,
        )
        .await;
    assert_eq!((s, r["operation"].as_str()), (200, Some("Write-Partial-Update")), "{r}");
    let (_, r) = h.get("/api/clients/dev-1/3442/0").await;
    assert_eq!(r["values"]["/3442/0/120"], 7);
    assert_eq!(r["values"]["/3442/0/1120/5"], 55);
    assert_eq!(
        r["values"]["/3442/0/1120/0"], 10,
        "partial update keeps the other instances"
    );

    // Discover and Write-Attributes.
    let (s, r) = h
        .call(
            Method::PUT,
            "/api/clients/dev-1/3442/0/120/attributes?pmin=5&pmax=60",
            "",
        )
        .await;
    assert_eq!((s, r["code"].as_str()), (200, Some("2.04")), "{r}");
    let (s, r) = h.get("/api/clients/dev-1/discover/3442/0").await;
    assert_eq!(s, 200, "{r}");
    let links = r["links"].as_array().unwrap();
    let l120 = links
        .iter()
        .find(|l| l["path"] == "/3442/0/120")
        .expect("/3442/0/120 listed");
    assert_eq!(l120["attributes"], json!({"pmin": "5", "pmax": "60"}), "{r}");

    // Execute with arguments.
    let (s, r) = h
        .call(Method::POST, "/api/clients/dev-1/3442/0/0/execute", "0,1='x'")
        .await;
    assert_eq!((s, r["code"].as_str()), (200, Some("2.04")), "{r}");
    let args = recv(&mut h.executed, WAIT).await;
    assert_eq!(args, "0,1='x'");
    let (s, _) = h.call(Method::POST, "/api/clients/dev-1/3/0/4/execute", "").await;
    assert_eq!(s, 200);
    until(&mut h.device_events, WAIT, |ev| {
        (*ev == ClientEvent::Reboot).then_some(())
    })
    .await;

    // Composite read and write.
    let (s, r) = h
        .call(
            Method::POST,
            "/api/clients/dev-1/composite/read",
            r#"{"paths": ["/3442/0/110", "/3442/0/1120/0"]}"#,
        )
        .await;
    assert_eq!(
        (s, &r["values"]),
        (200, &json!({"/3442/0/110": "bye", "/3442/0/1120/0": 10})),
        "{r}"
    );
    let (s, r) = h
        .call(
            Method::POST,
            "/api/clients/dev-1/composite/write",
            r#"{"/3442/0/110": "multi", "/3442/0/120": 1}"#,
        )
        .await;
    assert_eq!((s, r["code"].as_str()), (200, Some("2.04")), "{r}");
    assert_eq!(
        h.get("/api/clients/dev-1/3442/0/110").await.1["values"]["/3442/0/110"],
        "multi"
    );

    // Create and Delete.
    let (s, text, headers) = h
        .http
        .text(Method::POST, "/api/clients/dev-1/3442", r#"{"/3442/7/110": "new"}"#)
        .await;
    assert_eq!(s, 201, "{text}");
    let r: Json = serde_json::from_str(&text).unwrap();
    assert_eq!(r["location"], "/3442/7");
    assert_eq!(headers["location"], "/api/clients/dev-1/3442/7");
    assert_eq!(
        h.get("/api/clients/dev-1/3442/7/110").await.1["values"]["/3442/7/110"],
        "new"
    );
    let (s, r) = h.call(Method::DELETE, "/api/clients/dev-1/3442/7", "").await;
    assert_eq!((s, r["code"].as_str()), (200, Some("2.02")), "{r}");
    let (s, r) = h.get("/api/clients/dev-1/3442/7").await;
    assert_eq!(
        (s, r["error"].as_str(), r["coap_code"].as_str()),
        (502, Some("device_error"), Some("4.04"))
    );

    // Metrics see the registration and the traffic. Events are counted by a task of their own: re-read
    // (a bounded number of HTTP round trips) until it has caught up with the registration event.
    let mut attempts = 0;
    let (s, text) = loop {
        let (s, text, _) = h.http.text(Method::GET, "/metrics", "").await;
        attempts += 1;
        if text.contains("lwm2m_events_total{kind=\"registered\"} 1\n") || attempts == 200 {
            break (s, text);
        }
        tokio::task::yield_now().await;
    };
    assert_eq!(s, 200);
    assert!(text.contains("\nlwm2m_registrations 1\n"), "{text}");
    assert!(text.contains("lwm2m_events_total{kind=\"registered\"} 1\n"), "{text}");
    assert!(
        text.contains("lwm2m_device_requests_total{outcome=\"device_error\"} 1\n"),
        "{text}"
    );
    let (s, text, headers) = h.http.text(Method::GET, "/api/openapi.yaml", "").await;
    assert_eq!(s, 200);
    assert!(text.starts_with("openapi: 3"), "{text}");
    assert!(headers["content-type"]
        .to_str()
        .unwrap()
        .starts_with("application/yaml"));

    h.device.shutdown().await;
    next_event_strict(&mut h.events, WAIT, |e| matches!(e, Event::Deregistered { .. })).await;
    let (s, r) = h.get("/api/clients/dev-1").await;
    assert_eq!((s, r["error"].as_str()), (404, Some("unknown_endpoint")));
    h.server.shutdown().await;
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn observe_notifications_reach_the_event_stream() {
    let h = Harness::start().await;
    let mut sse = Sse::open(&h.http, "?ep=dev-1&kind=notification,observation-ended").await;
    let mut all = Sse::open(&h.http, "").await;

    let (s, r) = h.call(Method::POST, "/api/clients/dev-1/3442/0/120/observe", "").await;
    assert_eq!((s, &r["values"]), (200, &json!({"/3442/0/120": 42})), "{r}");
    let id = r["observation"].as_u64().expect("observation id");
    let (_, list) = h.get("/api/clients/dev-1/observations").await;
    assert_eq!(list["observations"][0]["id"], id);
    assert_eq!(list["observations"][0]["paths"], json!(["/3442/0/120"]));

    // A change on the device is notified.
    let (s, _) = h.call(Method::PUT, "/api/clients/dev-1/3442/0/120", "43").await;
    assert_eq!(s, 200);
    let (name, ev) = sse.next_open().await;
    assert_eq!(name, "notification");
    assert_eq!(ev["endpoint"], "dev-1");
    assert_eq!(ev["observation"], id);
    assert_eq!(ev["values"], json!({"/3442/0/120": 43}), "{ev}");

    // The unfiltered stream saw the same notification (and nothing of other kinds is lost on the way).
    loop {
        let (name, ev) = all.next_open().await;
        if name == "notification" {
            assert_eq!(ev["values"], json!({"/3442/0/120": 43}));
            break;
        }
    }

    // Cancel actively: the device answers, the observation is gone.
    let (s, r) = h
        .call(Method::DELETE, "/api/clients/dev-1/3442/0/120/observe?active=true", "")
        .await;
    assert_eq!(
        (s, &r["cancelled"], r["mode"].as_str()),
        (200, &json!([id]), Some("active")),
        "{r}"
    );
    assert_eq!(r["code"], "2.05");
    let (name, ev) = sse.next_open().await;
    assert_eq!(
        (name.as_str(), ev["observation"].as_u64()),
        ("observation-ended", Some(id))
    );
    assert_eq!(
        h.get("/api/clients/dev-1/observations").await.1["observations"],
        json!([])
    );
    let (s, r) = h
        .call(Method::DELETE, "/api/clients/dev-1/3442/0/120/observe", "")
        .await;
    assert_eq!((s, r["error"].as_str()), (404, Some("unknown_observation")));

    // Composite observe, cancelled passively by id.
    let (s, r) = h
        .call(
            Method::POST,
            "/api/clients/dev-1/composite/observe",
            r#"["/3442/0/110", "/3442/0/1120/2"]"#,
        )
        .await;
    assert_eq!(s, 200, "{r}");
    assert_eq!(r["values"], json!({"/3442/0/110": "hello", "/3442/0/1120/2": 12}));
    let cid = r["observation"].as_u64().unwrap();
    let (s, r) = h
        .call(Method::DELETE, &format!("/api/clients/dev-1/observations/{cid}"), "")
        .await;
    assert_eq!(
        (s, &r["cancelled"], r["mode"].as_str()),
        (200, &json!([cid]), Some("passive")),
        "{r}"
    );

    // Registration events: a Registration Update shows up as "updated".
    h.device.update(None).await.unwrap();
    loop {
        let (name, ev) = all.next_open().await;
        if name == "updated" {
            assert_eq!(ev["registration"]["endpoint"], "dev-1");
            break;
        }
    }
    let (_, text, _) = h.http.text(Method::GET, "/metrics", "").await;
    assert!(text.contains("\nlwm2m_sse_subscribers 2\n"), "{text}");
    h.server.shutdown().await;
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn security_credentials_crud() {
    let h = Harness::start().await;
    let psk = r#"{"mode": "psk", "identity": "dev-psk-id", "key": "000102030405060708090a0b0c0d0e0f"}"#;
    let (s, r) = h.call(Method::PUT, "/api/security/dev-psk", psk).await;
    assert_eq!((s, r["key"].as_str()), (201, Some("***")), "{r}");
    let (s, _) = h.call(Method::PUT, "/api/security/dev-psk", psk).await;
    assert_eq!(s, 200, "replacing answers 200");
    let (s, r) = h
        .call(
            Method::PUT,
            "/api/security/dev-rpk",
            r#"{"mode": "rpk", "public_key": "3059aabb"}"#,
        )
        .await;
    assert_eq!((s, r["public_key_base64"].as_str()), (201, Some("MFmquw==")), "{r}");
    let (s, _) = h
        .call(Method::PUT, "/api/security/dev-x509", r#"{"mode": "x509"}"#)
        .await;
    assert_eq!(s, 201);

    let (s, list) = h.get("/api/security").await;
    assert_eq!((s, list["total"].as_u64()), (200, Some(3)));
    let text = list.to_string();
    assert!(!text.contains("000102030405"), "keys are masked in lists: {text}");
    assert_eq!(list["entries"][0]["endpoint"], "dev-psk");
    assert_eq!(list["entries"][0]["key_bytes"], 16);
    let (s, one) = h.get("/api/security/dev-psk").await;
    assert_eq!(
        (s, one["key"].as_str()),
        (200, Some("000102030405060708090a0b0c0d0e0f"))
    );

    // The same PSK identity for another endpoint conflicts.
    let (s, r) = h.call(Method::PUT, "/api/security/other", psk).await;
    assert_eq!((s, r["error"].as_str()), (409, Some("credentials_in_use")), "{r}");
    let (s, r) = h
        .call(
            Method::PUT,
            "/api/security/other",
            r#"{"mode": "psk", "identity": "x"}"#,
        )
        .await;
    assert_eq!((s, r["error"].as_str()), (400, Some("bad_credentials")), "{r}");
    assert!(r["reason"].as_str().unwrap().contains("key"), "{r}");

    // A registered plain-CoAP endpoint that gets credentials must use DTLS from now on.
    let (s, _) = h.call(Method::DELETE, "/api/security/dev-psk", "").await;
    assert_eq!(s, 200);
    let (s, r) = h.call(Method::DELETE, "/api/security/dev-psk", "").await;
    assert_eq!((s, r["error"].as_str()), (404, Some("unknown_security_entry")));
    assert_eq!(h.get("/api/security").await.1["total"], 2);
    h.server.shutdown().await;
}

/// A device that registers and then never answers.
async fn silent_device(server: SocketAddr) -> (UdpHandle, mpsc::Receiver<CoapIncoming>) {
    let (handle, incoming) = UdpEndpoint::bind("127.0.0.1:0".parse().unwrap(), EndpointConfig::default())
        .await
        .unwrap();
    let mut reg = Message::request(Code::POST, "/rd")
        .with_content_format(40)
        .with_payload(&b"</3/0>"[..]);
    for q in ["ep=silent", "lt=300", "lwm2m=1.1", "b=U"] {
        reg.add_uri_query(q);
    }
    let answer = tokio::time::timeout(WAIT, handle.request(server, reg))
        .await
        .unwrap()
        .unwrap();
    assert_eq!(answer.code, Code::CREATED);
    (handle, incoming)
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn error_statuses() {
    let h = Harness::start().await;
    let cases: [(Method, &str, &str, u16, &str); 17] = [
        (Method::GET, "/api/clients/nobody", "", 404, "unknown_endpoint"),
        (Method::GET, "/api/clients/nobody/3/0", "", 404, "unknown_endpoint"),
        (
            Method::GET,
            "/api/clients/nobody/observations",
            "",
            404,
            "unknown_endpoint",
        ),
        (Method::GET, "/api/clients/dev-1/3/x", "", 400, "bad_path"),
        (Method::GET, "/api/clients/dev-1/70000", "", 400, "bad_path"),
        (
            Method::GET,
            "/api/clients/dev-1/3/0/0?format=xml",
            "",
            400,
            "bad_format",
        ),
        (
            Method::GET,
            "/api/clients/dev-1/3/0/0?timeout=forever",
            "",
            400,
            "bad_timeout",
        ),
        (Method::GET, "/api/clients/dev-1/3/0/0?colour=red", "", 400, "bad_query"),
        (Method::PUT, "/api/clients/dev-1/3/0/14", "{not json", 400, "bad_body"),
        (Method::PUT, "/api/clients/dev-1/3/0", "42", 400, "bad_body"),
        (
            Method::PUT,
            "/api/clients/dev-1/3442/0/120",
            r#""forty""#,
            400,
            "bad_value",
        ),
        (
            Method::PUT,
            "/api/clients/dev-1/3/0/1/attributes?pmin=x",
            "",
            400,
            "bad_attributes",
        ),
        (
            Method::POST,
            "/api/clients/dev-1/3/0/4/execute",
            "0='unterminated",
            400,
            "invalid_request",
        ),
        (Method::GET, "/api/clients/dev-1/99/0", "", 502, "device_error"),
        (Method::PATCH, "/api/clients/dev-1/3/0", "", 405, "method_not_allowed"),
        (Method::GET, "/api/nothing-here", "", 404, "no_route"),
        (Method::DELETE, "/api/health", "", 405, "method_not_allowed"),
    ];
    for (method, path, body, status, error) in cases {
        let (s, r) = h.call(method.clone(), path, body).await;
        assert_eq!((s, r["error"].as_str()), (status, Some(error)), "{method} {path}: {r}");
        assert!(!r["reason"].as_str().unwrap_or("").is_empty(), "{path}: {r}");
    }
    // The device's refusal carries the CoAP code; a write to a read-only resource is 4.05.
    let (s, r) = h.call(Method::PUT, "/api/clients/dev-1/3/0/0", r#""acme""#).await;
    assert_eq!((s, r["coap_code"].as_str()), (502, Some("4.05")), "{r}");

    // A device that never answers: 504 within the request's own timeout.
    let (_silent, _incoming) = silent_device(h.coap).await;
    let (s, r) = h.get("/api/clients/silent/3/0?timeout=300ms").await;
    assert_eq!((s, r["error"].as_str()), (504, Some("device_timeout")), "{r}");
    h.server.shutdown().await;
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn queue_mode_holds_requests_and_send_reaches_the_stream() {
    let mut h = Harness::start_with(true, Duration::from_millis(300)).await;
    // The server considers the device asleep 300 ms after its Register.
    next_event_strict(&mut h.events, WAIT, |e| matches!(e, Event::Sleeping { .. })).await;
    let mut sse = Sse::open(&h.http, "?ep=dev-1").await;
    let (_, d) = h.get("/api/clients/dev-1").await;
    assert_eq!(
        (d["queue_mode"].as_bool(), d["presence"].as_str()),
        (Some(true), Some("sleeping")),
        "{d}"
    );

    // A read is held while it sleeps...
    let read = {
        let http = h.http.clone();
        tokio::spawn(async move {
            let (status, text, _) = http.text(Method::GET, "/api/clients/dev-1/3/0/0?timeout=15s", "").await;
            (status, serde_json::from_str::<Json>(&text).unwrap())
        })
    };
    let mut held = Json::Null;
    for _ in 0..2000 {
        let (_, q) = h.get("/api/clients/dev-1/queue").await;
        if !q["requests"].as_array().unwrap().is_empty() {
            held = q;
            break;
        }
        tokio::task::yield_now().await;
    }
    assert_eq!(held["presence"], "sleeping", "{held}");
    assert_eq!(held["requests"][0]["operation"], "Read");
    assert_eq!(held["requests"][0]["paths"], json!(["/3/0/0"]));
    let (_, text, _) = h.http.text(Method::GET, "/metrics", "").await;
    assert!(text.contains("\nlwm2m_queued_requests 1\n"), "{text}");

    // ... and goes out when the device wakes up with an Update.
    h.device.update(None).await.unwrap();
    let (s, r) = tokio::time::timeout(WAIT, read).await.unwrap().unwrap();
    assert_eq!((s, r["values"]["/3/0/0"].is_string()), (200, true), "{r}");
    let mut kinds = Vec::new();
    while !kinds.contains(&"awake".to_string()) {
        kinds.push(sse.next_open().await.0);
    }
    assert_eq!(h.get("/api/clients/dev-1/queue").await.1["requests"], json!([]));

    // Send (POST /dp) arrives as a "send" event with the records.
    h.device.send(1, vec!["/3303/0/5700".parse().unwrap()]).await.unwrap();
    loop {
        let (name, ev) = sse.next_open().await;
        if name == "send" {
            assert_eq!(ev["records"][0]["path"], "/3303/0/5700", "{ev}");
            assert_eq!(ev["records"][0]["value"], 21.0, "{ev}");
            break;
        }
    }
    h.server.shutdown().await;
}
