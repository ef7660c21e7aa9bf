//! Runs the real `lwm2m client` binary against a scripted LwM2M server on 127.0.0.1 and drives the demo
//! device through its stdin. Every wait is for a line or a message (bounded by a guard), never a sleep.

use std::net::SocketAddr;
use std::process::Stdio;
use std::time::Duration;

use lwm2m_coap::transport::udp::{Incoming, UdpEndpoint, UdpHandle};
use lwm2m_coap::{Code, EndpointConfig, Message};
use tokio::io::{AsyncBufReadExt, AsyncWriteExt, BufReader, Lines};
use tokio::process::{Child, ChildStdin, ChildStdout, Command};
use tokio::sync::mpsc;

const GUARD: Duration = Duration::from_secs(30);

/// A scripted server: Register → 2.01 rd/xyz, Update → 2.04, De-register → 2.02, Send → 2.04; every request
/// the client sends is logged.
async fn server() -> (UdpHandle, mpsc::UnboundedReceiver<(SocketAddr, Message)>) {
    let (handle, mut incoming) = UdpEndpoint::bind("127.0.0.1:0".parse().unwrap(), EndpointConfig::default())
        .await
        .unwrap();
    let (tx, log) = mpsc::unbounded_channel();
    let h = handle.clone();
    tokio::spawn(async move {
        while let Some(item) = incoming.recv().await {
            let Incoming::Request(r) = item else { continue };
            let path = r.request.uri_path();
            let p: Vec<&str> = path.iter().map(String::as_str).collect();
            let resp = match (r.request.code, p.as_slice()) {
                (Code::POST, ["rd"]) => {
                    let mut m = Message::response_to(&r.request, Code::CREATED);
                    m.set_location_path("rd/xyz");
                    m
                }
                (Code::POST, ["rd", "xyz"] | ["dp"]) => Message::response_to(&r.request, Code::CHANGED),
                (Code::DELETE, ["rd", "xyz"]) => Message::response_to(&r.request, Code::DELETED),
                _ => Message::response_to(&r.request, Code::NOT_FOUND),
            };
            let _ = h.respond(r.responder, resp);
            let _ = tx.send((r.peer, r.request));
        }
    });
    (handle, log)
}

struct Device {
    child: Child,
    stdin: ChildStdin,
    stdout: Lines<BufReader<ChildStdout>>,
}

impl Device {
    fn start(args: &[&str]) -> Device {
        let mut child = Command::new(env!("CARGO_BIN_EXE_lwm2m"))
            .arg("client")
            .args(args)
            .stdin(Stdio::piped())
            .stdout(Stdio::piped())
            .stderr(Stdio::inherit())
            .kill_on_drop(true)
            .spawn()
            .expect("the lwm2m binary starts");
        let stdin = child.stdin.take().unwrap();
        let stdout = BufReader::new(child.stdout.take().unwrap()).lines();
        Device { child, stdin, stdout }
    }

    /// The next stdout line.
    async fn line(&mut self) -> String {
        tokio::time::timeout(GUARD, self.stdout.next_line())
            .await
            .expect("no output in time")
            .unwrap()
            .expect("stdout closed")
    }

    /// Reads lines until one starts with `prefix`; returns it.
    async fn until(&mut self, prefix: &str) -> String {
        loop {
            let l = self.line().await;
            if l.starts_with(prefix) {
                return l;
            }
        }
    }

    async fn type_line(&mut self, cmd: &str) {
        self.stdin.write_all(format!("{cmd}\n").as_bytes()).await.unwrap();
        self.stdin.flush().await.unwrap();
    }
}

async fn next_request(
    log: &mut mpsc::UnboundedReceiver<(SocketAddr, Message)>,
    method: Code,
    path: &str,
) -> (SocketAddr, Message) {
    loop {
        let (peer, m) = tokio::time::timeout(GUARD, log.recv())
            .await
            .expect("no request in time")
            .unwrap();
        if m.code == method && m.uri_path_string() == path {
            return (peer, m);
        }
    }
}

#[tokio::test]
async fn demo_device_driven_through_stdin() {
    let (srv, mut log) = server().await;
    let uri = format!("coap://{}", srv.local_addr());
    let mut dev = Device::start(&[
        "--server",
        &uri,
        "--endpoint",
        "cli-dev",
        "--lifetime",
        "120",
        "--sensor-interval",
        "0",
        "--send-on-register",
        "/3/0/0",
        "--log",
        "warn",
    ]);

    let (peer, reg) = next_request(&mut log, Code::POST, "/rd").await;
    let q = reg.uri_query();
    assert!(
        q.contains(&"ep=cli-dev".to_string()) && q.contains(&"lt=120".to_string()),
        "{q:?}"
    );
    let links = String::from_utf8_lossy(&reg.payload).into_owned();
    for obj in ["</1/0>", "</3/0>", "</4/0>", "</5/0>", "</6/0>", "</7/0>", "</3303/0>"] {
        assert!(links.contains(obj), "{obj} missing from {links}");
    }
    assert_eq!(dev.until("registered").await, "registered ssid=1 location=/rd/xyz");
    // BsR-8: the configured path is sent right after the registration.
    next_request(&mut log, Code::POST, "/dp").await;

    // The server reads and observes the temperature; `set` on stdin changes it and the server is notified.
    let r = srv.request(peer, Message::request(Code::GET, "/3/0/0")).await.unwrap();
    assert_eq!(r.code, Code::CONTENT);
    let (first, mut obs) = srv
        .observe(peer, Message::request(Code::GET, "/3303/0/5700"))
        .await
        .unwrap();
    assert_eq!(String::from_utf8_lossy(&first.payload), "21");
    dev.type_line("set /3303/0/5700 22.5").await;
    assert_eq!(dev.until("ok").await, "ok set");
    let n = tokio::time::timeout(GUARD, obs.next()).await.unwrap().unwrap();
    assert_eq!(String::from_utf8_lossy(&n.payload), "22.5");

    dev.type_line("get /3303/0/5700").await;
    assert_eq!(dev.until("/3303/0/5700").await, "/3303/0/5700 = 22.5");
    assert_eq!(dev.until("ok").await, "ok get");

    dev.type_line("send /3303/0/5700").await;
    next_request(&mut log, Code::POST, "/dp").await;
    assert_eq!(dev.until("ok").await, "ok send");

    dev.type_line("update").await;
    next_request(&mut log, Code::POST, "/rd/xyz").await;
    assert_eq!(dev.until("ok").await, "ok update");

    dev.type_line("set /3303/0/5700 warm").await;
    assert!(dev.until("error").await.contains("/3303/0/5700"));
    dev.type_line("frobnicate").await;
    assert!(dev.until("error").await.contains("unknown command"));

    dev.type_line("quit").await;
    next_request(&mut log, Code::DELETE, "/rd/xyz").await;
    dev.until("stopped").await;
    let status = tokio::time::timeout(GUARD, dev.child.wait()).await.unwrap().unwrap();
    assert!(status.success());
}

#[test]
fn errors_name_the_cause() {
    let out = std::process::Command::new(env!("CARGO_BIN_EXE_lwm2m"))
        .args(["client", "--server", "coap://127.0.0.1:5683"])
        .output()
        .unwrap();
    assert!(!out.status.success());
    let err = String::from_utf8_lossy(&out.stderr);
    assert!(err.contains("--endpoint NAME"), "{err}");
    let out = std::process::Command::new(env!("CARGO_BIN_EXE_lwm2m"))
        .args(["client", "--server", "coaps://127.0.0.1:5684", "--endpoint", "d"])
        .output()
        .unwrap();
    assert!(String::from_utf8_lossy(&out.stderr).contains("--psk-identity and --psk-key"));
}
