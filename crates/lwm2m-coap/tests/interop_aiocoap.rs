//! Interop with aiocoap (PyPI): `aiocoap-client` and the aiocoap library (through `tests/aiocoap_peer.py`)
//! against our endpoint as a server, and our endpoint as a client against an aiocoap server
//! (`aiocoap_peer.py serve`), over 127.0.0.1 and ::1.
//!
//! Each test skips (passes with a SKIPPED line on stderr) only when aiocoap is not installed. Run with
//! `--nocapture` to see the aiocoap version. Spawned peers are killed when the test ends; every wait is bounded.

mod interop_common;

use std::net::{IpAddr, SocketAddr};
use std::path::{Path, PathBuf};
use std::process::Stdio;

use interop_common::*;
use lwm2m_coap::{Code, Delivery, Message, MessageType, UdpEndpoint};
use tokio::io::{AsyncBufReadExt, BufReader};

const HINT: &str = "python3 -m pip install aiocoap";

fn peer_script() -> PathBuf {
    Path::new(env!("CARGO_MANIFEST_DIR"))
        .join("tests")
        .join("aiocoap_peer.py")
}

/// python3 with an importable aiocoap, and its version.
async fn python() -> Option<PathBuf> {
    let py = require(&["python3"], HINT)?;
    let mut c = command(&py);
    c.args(["-c", "import aiocoap.meta; print(aiocoap.meta.version)"]);
    let out = run(c).await;
    if !out.status.success() {
        eprintln!("SKIPPED: the aiocoap module is not importable ({HINT})");
        return None;
    }
    println!("peer: aiocoap {} via {}", stdout(&out).trim(), py.display());
    Some(py)
}

async fn client_bin() -> Option<PathBuf> {
    let bin = require(&["aiocoap-client"], HINT)?;
    let mut c = command(&bin);
    c.arg("--version");
    println!("peer: {}", stdout(&run(c).await).trim());
    Some(bin)
}

/// Run aiocoap-client with `args` and the URI.
async fn aiocoap_client(bin: &Path, args: &[&str], uri: &str) -> std::process::Output {
    let mut c = command(bin);
    c.args(args).arg(uri);
    run(c).await
}

fn text(out: &std::process::Output) -> String {
    stdout(out).trim_end_matches('\n').to_string()
}

fn summary(log: &[Logged]) -> Vec<(Code, String, usize)> {
    log.iter().map(|l| (l.code, l.path.clone(), l.payload.len())).collect()
}

// ------------------------------------------------------------------------------------------ their client, our server

#[tokio::test]
async fn aiocoap_client_methods_against_our_server() {
    let Some(bin) = client_bin().await else { return };
    let mut server = test_server(localhost4(), fast_config()).await;
    let at = |p: &str| uri(server.addr(), p);

    let out = aiocoap_client(&bin, &[], &at("/hello")).await;
    assert_eq!(text(&out), "Hello from lwm2m-coap", "{out:?}");

    let out = aiocoap_client(&bin, &["-m", "PUT", "--payload", "first"], &at("/store/a")).await;
    assert!(out.status.success(), "{out:?}");
    let out = aiocoap_client(&bin, &["-m", "POST", "--payload", "+second"], &at("/store/a")).await;
    assert!(out.status.success(), "{out:?}");
    let out = aiocoap_client(&bin, &[], &at("/store/a")).await;
    assert_eq!(text(&out), "first+second");

    let out = aiocoap_client(&bin, &["-m", "FETCH", "--payload", "query"], &at("/hello")).await;
    assert_eq!(text(&out), "fetched:query", "{out:?}");

    let out = aiocoap_client(&bin, &["-m", "DELETE"], &at("/store/a")).await;
    assert!(out.status.success(), "{out:?}");
    let out = aiocoap_client(&bin, &[], &at("/store/a")).await;
    assert!(!out.status.success(), "GET after DELETE fails: {out:?}");
    assert!(String::from_utf8_lossy(&out.stderr).contains("4.04"), "{out:?}");

    let out = aiocoap_client(&bin, &[], &at("/slow")).await;
    assert_eq!(text(&out), "slow", "separate response: {out:?}");

    let out = aiocoap_client(&bin, &["--non"], &at("/hello")).await;
    assert_eq!(text(&out), "Hello from lwm2m-coap", "NON: {out:?}");

    let log = server.drain_log();
    let seen: Vec<(Code, &str)> = log.iter().map(|l| (l.code, l.path.as_str())).collect();
    assert_eq!(seen, METHODS_SEEN);
    assert_eq!(log[8].mtype, MessageType::Non);
    assert_eq!(server.handle.stats().malformed, 0);
}

#[tokio::test]
async fn aiocoap_client_against_our_server_on_ipv6() {
    let Some(bin) = client_bin().await else { return };
    if !have_ipv6() {
        eprintln!("SKIPPED: ::1 not available");
        return;
    }
    let mut server = test_server(localhost6(), fast_config()).await;
    let out = aiocoap_client(&bin, &[], &uri(server.addr(), "/hello")).await;
    assert_eq!(text(&out), "Hello from lwm2m-coap", "{out:?}");
    assert!(server.drain_log().iter().all(|l| l.peer.is_ipv6()));
}

#[tokio::test]
async fn aiocoap_observes_our_resource() {
    let Some(py) = python().await else { return };
    let mut server = test_server(localhost4(), fast_config()).await;
    let mut c = command(&py);
    c.arg(peer_script()).args(["observe", &uri(server.addr(), "/obs"), "3"]);
    let (out, outcomes) = tokio::join!(run(c), server.notifications(3, STEP));
    assert_eq!(
        outcomes,
        vec![Ok(Delivery::Acknowledged); 3],
        "every CON notification acknowledged"
    );
    assert!(out.status.success(), "{out:?}");
    assert_eq!(stdout(&out).lines().collect::<Vec<_>>(), ["n0", "n1", "n2", "n3"]);
}

#[tokio::test]
async fn aiocoap_client_blockwise_get_from_our_server() {
    let Some(bin) = client_bin().await else { return };
    let mut server = test_server(localhost4(), fast_config()).await;
    let out = aiocoap_client(&bin, &[], &uri(server.addr(), "/large")).await;
    assert!(
        out.stdout == large_body(),
        "got {} bytes: {:?}",
        out.stdout.len(),
        out.stderr
    );
    // aiocoap asks for no block size, so the endpoint's default (1024) splits 1500 bytes in two.
    assert!(server.handle.stats().received >= 2, "{:?}", server.handle.stats());
    assert_eq!(summary(&server.drain_log()), vec![(Code::GET, "/large".to_string(), 0)]);
}

#[tokio::test]
async fn aiocoap_client_blockwise_put_to_our_server() {
    let Some(bin) = client_bin().await else { return };
    let mut server = test_server(localhost4(), fast_config()).await;
    let body = upload_body(3000);
    let file = std::env::temp_dir().join(format!("lwm2m-coap-aiocoap-upload-{}.bin", std::process::id()));
    std::fs::write(&file, &body).unwrap();
    let payload = format!("@{}", file.display());
    // --payload-initial-szx 2: 64-byte blocks.
    let args = ["-m", "PUT", "--payload", payload.as_str(), "--payload-initial-szx", "2"];
    let out = aiocoap_client(&bin, &args, &uri(server.addr(), "/upload")).await;
    let _ = std::fs::remove_file(&file);
    assert!(out.status.success(), "{out:?}");
    assert_eq!(text(&out), "3000", "the final response carries our answer");
    let log = server.drain_log();
    assert_eq!(
        summary(&log),
        vec![(Code::PUT, "/upload".to_string(), 3000)],
        "reassembled by the endpoint"
    );
    assert!(log[0].payload == body);
    assert!(server.handle.stats().received >= 47, "3000 bytes in 64-byte blocks");
}

// ------------------------------------------------------------------------------------------ our client, their server

/// `aiocoap_peer.py serve` (killed on drop) on `ip`, and our client endpoint.
async fn aiocoap_server(py: &Path, ip: IpAddr) -> PeerServer {
    let port = free_udp_port(ip);
    let mut cmd = command(py);
    cmd.arg(peer_script())
        .args(["serve", &ip.to_string(), &port.to_string()])
        .stdout(Stdio::piped())
        .stderr(Stdio::null());
    let mut child = spawn(cmd);
    let out = child.stdout.take().expect("piped stdout");
    let mut lines = BufReader::new(out).lines();
    let line = tokio::time::timeout(STEP, lines.next_line())
        .await
        .expect("aiocoap server start in time");
    assert_eq!(
        line.ok().flatten().as_deref(),
        Some("ready"),
        "aiocoap server did not start"
    );
    let addr = SocketAddr::new(ip, port);
    let (client, _incoming) = UdpEndpoint::bind(SocketAddr::new(ip, 0), fast_config()).await.unwrap();
    PeerServer::new(child, addr, client)
}

#[tokio::test]
async fn our_client_methods_against_aiocoap_server() {
    let Some(py) = python().await else { return };
    let s = aiocoap_server(&py, localhost4()).await;

    let r = s.request(Message::request(Code::GET, "/hello")).await;
    assert_eq!(
        (r.code, r.payload.as_slice()),
        (Code::CONTENT, &b"hello from aiocoap"[..])
    );

    let r = s.request(Message::request(Code::GET, "/store")).await;
    assert_eq!(r.code, Code::NOT_FOUND);
    let r = s
        .request(Message::request(Code::PUT, "/store").with_payload("one"))
        .await;
    assert_eq!(r.code, Code::CREATED);
    let r = s
        .request(Message::request(Code::PUT, "/store").with_payload("two"))
        .await;
    assert_eq!(r.code, Code::CHANGED);
    let r = s
        .request(Message::request(Code::POST, "/store").with_payload("+three"))
        .await;
    assert_eq!((r.code, r.payload.as_slice()), (Code::CHANGED, &b"two+three"[..]));
    let r = s
        .request(Message::request(Code::FETCH, "/store").with_payload("q"))
        .await;
    assert_eq!((r.code, r.payload.as_slice()), (Code::CONTENT, &b"fetched:q"[..]));
    let r = s.request(Message::request(Code::DELETE, "/store")).await;
    assert_eq!(r.code, Code::DELETED);
    let r = s.request(Message::request(Code::GET, "/store")).await;
    assert_eq!(r.code, Code::NOT_FOUND);
    let r = s.request(Message::request(Code::GET, "/nothing-here")).await;
    assert_eq!(r.code, Code::NOT_FOUND);

    let r = s
        .request(Message::request(Code::GET, "/hello").with_type(MessageType::Non))
        .await;
    assert_eq!((r.code, r.mtype), (Code::CONTENT, MessageType::Non));
    assert_eq!(s.client.stats().malformed, 0);
}

#[tokio::test]
async fn our_client_against_aiocoap_server_on_ipv6() {
    let Some(py) = python().await else { return };
    if !have_ipv6() {
        eprintln!("SKIPPED: ::1 not available");
        return;
    }
    let s = aiocoap_server(&py, localhost6()).await;
    let r = s
        .request(Message::request(Code::PUT, "/store").with_payload("six"))
        .await;
    assert_eq!(r.code, Code::CREATED);
    let r = s.request(Message::request(Code::GET, "/store")).await;
    assert_eq!(r.payload, b"six");
}

#[tokio::test]
async fn our_client_observes_aiocoap_resource() {
    let Some(py) = python().await else { return };
    let s = aiocoap_server(&py, localhost4()).await;
    let (first, mut obs) = tokio::time::timeout(STEP, s.client.observe(s.addr, Message::request(Code::GET, "/obs")))
        .await
        .unwrap()
        .unwrap();
    assert_eq!(first.payload, b"n0");
    let mut last = first.observe().expect("registration accepted");
    for want in ["n1", "n2", "n3"] {
        let n = tokio::time::timeout(STEP, obs.next())
            .await
            .unwrap()
            .expect("notification");
        assert_eq!(n.payload, want.as_bytes());
        let seq = n.observe().expect("Observe");
        assert!(seq > last, "{seq} after {last}");
        last = seq;
    }
    let r = tokio::time::timeout(STEP, obs.deregister()).await.unwrap().unwrap();
    assert_eq!((r.code, r.observe()), (Code::CONTENT, None), "deregistered: {r:?}");
}

#[tokio::test]
async fn our_client_blockwise_get_from_aiocoap_server() {
    let Some(py) = python().await else { return };
    let s = aiocoap_server(&py, localhost4()).await;
    let r = s.request(Message::request(Code::GET, "/large")).await;
    assert_eq!(r.code, Code::CONTENT);
    let want: Vec<u8> = b"0123456789".repeat(300);
    assert!(
        r.payload == want,
        "got {} bytes, Block2 {:?}",
        r.payload.len(),
        r.block2()
    );
}

#[tokio::test]
async fn our_client_blockwise_put_to_aiocoap_server() {
    let Some(py) = python().await else { return };
    let s = aiocoap_server(&py, localhost4()).await;
    let body = upload_body(4000);
    let sum = body.iter().enumerate().fold(0u32, |acc, (i, b)| {
        acc.wrapping_add(((i as u32) + 1).wrapping_mul(u32::from(*b)))
    });
    let r = s
        .request(Message::request(Code::PUT, "/upload").with_payload(body))
        .await;
    assert_eq!(r.code, Code::CHANGED, "{r:?}");
    let text = String::from_utf8_lossy(&r.payload).into_owned();
    assert_eq!(
        text,
        format!("4000 {sum}"),
        "aiocoap reassembled the whole Block1 upload"
    );
}
