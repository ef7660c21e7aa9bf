//! Persistence across a crash: the real `lwm2m server` binary is started on a data directory, a device
//! registers (a plain CoAP request from this process) and credentials are added over the REST API; the
//! server is killed with SIGKILL and started again on the same data directory and CoAP port. The
//! registration and the credentials are still there, and the device's Update to its old location is accepted.
//! A second test does the same with an observation: after the restart the device's next notification (same
//! token) is accepted and arrives on the `GET /api/events` stream.
//! Every wait is for a line or an answer (bounded by a guard), never a sleep.

use std::net::SocketAddr;
use std::path::Path;
use std::process::Stdio;
use std::time::Duration;

use http_body_util::{BodyExt, Full};
use hyper::body::Bytes;
use hyper::{Method, Request};
use lwm2m_coap::{Code, Delivery, EndpointConfig, Incoming, Message, MessageType, UdpEndpoint};
use lwm2m_testkit::http::Http;
use lwm2m_testkit::proc::{http_base, startup_line, Proc};
use lwm2m_testkit::scratch::Scratch;
use serde_json::{json, Value as Json};
use tokio::process::Command;

const GUARD: Duration = Duration::from_secs(30);

/// Starts the server and waits for its ready line; returns it with the HTTP base URL and the data line.
async fn start(coap: SocketAddr, data: &Path) -> (Proc, String, String) {
    let mut cmd = Command::new(env!("CARGO_BIN_EXE_lwm2m"));
    cmd.arg("server")
        .args(["--coap-addr", &coap.to_string(), "--coaps-addr", "off"])
        .args(["--http-addr", "127.0.0.1:0", "--log", "warn"])
        .arg("--data-dir")
        .arg(data)
        .stdin(Stdio::null())
        .stderr(Stdio::inherit());
    let mut srv = Proc::spawn(cmd, GUARD);
    let lines = srv.lines_before("ready").await;
    let (base, data_line) = (http_base(&lines), startup_line(&lines, "data"));
    (srv, base, data_line)
}

/// SIGKILL: no clean shutdown, nothing flushed on the way out.
async fn kill(mut srv: Proc) {
    srv.child.start_kill().expect("kill");
    let status = tokio::time::timeout(GUARD, srv.child.wait()).await.unwrap().unwrap();
    assert!(!status.success(), "killed: {status}");
}

async fn call(client: &Http, method: Method, url: &str, body: Option<Json>) -> (u16, Json) {
    let body = body.map(|b| b.to_string()).unwrap_or_default();
    lwm2m_testkit::http::call(client, method, url, &body, GUARD).await
}

/// A port that was free a moment ago (bound and released), used for both runs of the server.
fn free_udp_port() -> SocketAddr {
    let s = std::net::UdpSocket::bind("127.0.0.1:0").unwrap();
    s.local_addr().unwrap()
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn registrations_and_credentials_survive_a_crash() {
    let dir = Scratch::new("server-restart");
    let data = dir.path("data");
    let coap = free_udp_port();
    let http = lwm2m_testkit::http::client();

    let (srv, base, data_line) = start(coap, &data).await;
    assert!(
        data_line.contains("server.redb") && data_line.contains("0 registrations and 0 credentials"),
        "{data_line}"
    );

    // The device: a bare CoAP endpoint in this process, kept (same address) across both server runs.
    let (device, _incoming) = UdpEndpoint::bind("127.0.0.1:0".parse().unwrap(), EndpointConfig::default())
        .await
        .unwrap();
    let register = Message::request(Code::POST, "/rd?ep=dev-r&lt=300&lwm2m=1.1").with_payload(&b"</1/0>,</3/0>"[..]);
    let mut register = register;
    register.set_content_format(40);
    let resp = tokio::time::timeout(GUARD, device.request(coap, register))
        .await
        .unwrap()
        .unwrap();
    assert_eq!(resp.code, Code::CREATED);
    let location = resp.location_path();
    assert_eq!(location.first().map(String::as_str), Some("rd"), "{location:?}");

    let psk = json!({"mode": "psk", "identity": "id-s", "key": "000102030405060708090a0b0c0d0e0f"});
    let (s, r) = call(&http, Method::PUT, &format!("{base}/api/security/dev-s"), Some(psk)).await;
    assert_eq!(s, 201, "{r}");
    let (s, before) = call(&http, Method::GET, &format!("{base}/api/clients/dev-r"), None).await;
    assert_eq!(s, 200, "{before}");

    kill(srv).await;

    let (srv, base, data_line) = start(coap, &data).await;
    assert!(data_line.contains("1 registrations and 1 credentials"), "{data_line}");
    let (s, after) = call(&http, Method::GET, &format!("{base}/api/clients/dev-r"), None).await;
    assert_eq!(s, 200, "{after}");
    for key in [
        "endpoint",
        "registration_id",
        "location",
        "lifetime_s",
        "objects",
        "address",
        "version",
    ] {
        assert_eq!(after[key], before[key], "{key}: {after}");
    }
    assert_eq!(after["lifetime_s"], json!(300));
    assert_eq!(
        after["objects"],
        json!([{"id": 1, "version": null, "instances": [0]}, {"id": 3, "version": null, "instances": [0]}])
    );
    let (s, sec) = call(&http, Method::GET, &format!("{base}/api/security/dev-s"), None).await;
    assert_eq!(s, 200, "{sec}");
    assert_eq!(
        (&sec["mode"], &sec["identity"], &sec["key"]),
        (
            &json!("psk"),
            &json!("id-s"),
            &json!("000102030405060708090a0b0c0d0e0f")
        )
    );

    // The device goes on as if nothing happened: an Update to its old location is accepted.
    let update = Message::request(Code::POST, &format!("/{}?lt=600", location.join("/")));
    let resp = tokio::time::timeout(GUARD, device.request(coap, update))
        .await
        .unwrap()
        .unwrap();
    assert_eq!(resp.code, Code::CHANGED);
    let (s, after) = call(&http, Method::GET, &format!("{base}/api/clients/dev-r"), None).await;
    assert_eq!((s, &after["lifetime_s"]), (200, &json!(600)), "{after}");

    kill(srv).await;
}

/// Reads SSE frames from `body` until a `notification` event arrives; returns its JSON.
async fn next_notification(body: &mut hyper::body::Incoming) -> Json {
    let mut text = String::new();
    loop {
        let frame = tokio::time::timeout(GUARD, body.frame())
            .await
            .expect("no SSE event in time")
            .expect("the event stream ended")
            .expect("SSE frame");
        if let Ok(data) = frame.into_data() {
            text.push_str(&String::from_utf8_lossy(&data));
        }
        while let Some(end) = text.find("\n\n") {
            let block: String = text.drain(..end + 2).collect();
            if block.lines().any(|l| l == "event: notification") {
                let data = block
                    .lines()
                    .find_map(|l| l.strip_prefix("data: "))
                    .expect("a data line");
                return serde_json::from_str(data).expect("JSON data");
            }
        }
    }
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn observations_survive_a_crash_and_keep_delivering() {
    let dir = Scratch::new("server-restart-obs");
    let data = dir.path("data");
    let coap = free_udp_port();
    let http = lwm2m_testkit::http::client();

    let (srv, base, _) = start(coap, &data).await;
    let (device, mut incoming) = UdpEndpoint::bind("127.0.0.1:0".parse().unwrap(), EndpointConfig::default())
        .await
        .unwrap();
    let mut register =
        Message::request(Code::POST, "/rd?ep=dev-r&lt=300&lwm2m=1.1").with_payload(&b"</1/0>,</3/0>"[..]);
    register.set_content_format(40);
    let resp = tokio::time::timeout(GUARD, device.request(coap, register))
        .await
        .unwrap()
        .unwrap();
    assert_eq!(resp.code, Code::CREATED);

    // Observe /3/0/9 (Battery Level) through the REST API; the device answers with Observe.
    let url = format!("{base}/api/clients/dev-r/3/0/9/observe");
    let h = http.clone();
    let observe = tokio::spawn(async move { call(&h, Method::POST, &url, None).await });
    let req = loop {
        match tokio::time::timeout(GUARD, incoming.recv())
            .await
            .unwrap()
            .expect("device channel")
        {
            Incoming::Request(r) => break r,
            _ => continue,
        }
    };
    assert_eq!((req.request.code, req.request.observe()), (Code::GET, Some(0)));
    assert_eq!(req.request.uri_path_string(), "/3/0/9");
    let token = req.request.token;
    let mut first = Message::response_to(&req.request, Code::CONTENT).with_payload(&b"80"[..]);
    first.set_content_format(0);
    first.set_observe(1);
    device.respond(req.responder, first).unwrap();
    let (s, r) = tokio::time::timeout(GUARD, observe).await.unwrap().unwrap();
    assert_eq!(s, 200, "{r}");
    let observation = r["observation"].clone();
    assert!(observation.is_u64(), "{r}");

    kill(srv).await;

    let (srv, base, _) = start(coap, &data).await;
    let (s, list) = call(
        &http,
        Method::GET,
        &format!("{base}/api/clients/dev-r/observations"),
        None,
    )
    .await;
    assert_eq!(s, 200, "{list}");
    assert_eq!(list["observations"][0]["id"], observation, "{list}");
    assert_eq!(list["observations"][0]["paths"], json!(["/3/0/9"]), "{list}");

    // Subscribe to the events (the response head means the subscription is in place), then notify.
    let sse = Request::builder()
        .method(Method::GET)
        .uri(format!("{base}/api/events?kind=notification"))
        .body(Full::new(Bytes::new()))
        .unwrap();
    let resp = tokio::time::timeout(GUARD, http.request(sse)).await.unwrap().unwrap();
    assert_eq!(resp.status().as_u16(), 200);
    let mut body = resp.into_body();

    let mut n = Message::new(MessageType::Con, Code::CONTENT)
        .with_token(token)
        .with_payload(&b"75"[..]);
    n.set_content_format(0);
    n.set_observe(2);
    let d = tokio::time::timeout(GUARD, device.notify(coap, n)).await.unwrap();
    assert_eq!(
        d.ok(),
        Some(Delivery::Acknowledged),
        "the restarted server accepts the notification"
    );
    let ev = next_notification(&mut body).await;
    assert_eq!(ev["endpoint"], json!("dev-r"), "{ev}");
    assert_eq!(ev["observation"], observation, "{ev}");
    assert_eq!(ev["paths"], json!(["/3/0/9"]), "{ev}");
    assert!(ev.get("error").is_none(), "{ev}");
    assert!(ev.to_string().contains("75"), "{ev}");

    drop(body);
    kill(srv).await;
}
