//! Runs the real `lwm2m client` binary against a scripted LwM2M server on 127.0.0.1 and drives the demo
//! device through its stdin. Every wait is for a line or a message (bounded by a guard), never a sleep.

use std::net::SocketAddr;
use std::process::Stdio;
use std::time::Duration;

use lwm2m_coap::{Code, Message};
use lwm2m_testkit::peer::registrar;
use lwm2m_testkit::proc::Proc;
use tokio::process::Command;
use tokio::sync::mpsc;

const GUARD: Duration = Duration::from_secs(30);

/// `lwm2m client ARGS`, driven through its stdin.
fn device(args: &[&str]) -> Proc {
    let mut cmd = Command::new(env!("CARGO_BIN_EXE_lwm2m"));
    cmd.arg("client")
        .args(args)
        .stdin(Stdio::piped())
        .stderr(Stdio::inherit());
    Proc::spawn(cmd, GUARD)
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
    // A scripted server: Register → 2.01 rd/xyz, Update → 2.04, De-register → 2.02, Send → 2.04; every request
    // the client sends is logged.
    let (srv, mut log) = registrar("xyz").await;
    let uri = format!("coap://{}", srv.local_addr());
    let mut dev = device(&[
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
