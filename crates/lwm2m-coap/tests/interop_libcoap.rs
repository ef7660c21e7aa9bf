//! Interop with libcoap's example programs (Debian `libcoap3-bin`): `coap-client-*` against our endpoint as a
//! server, and our endpoint as a client against `coap-server-*`, over 127.0.0.1 and ::1.
//!
//! Each test skips (passes with a SKIPPED line on stderr) only when the libcoap binaries are not installed. Run
//! with `--nocapture` to see which peer and version were used. Spawned peers are killed when the test ends;
//! every wait is bounded.

mod interop_common;

use std::net::{IpAddr, SocketAddr};
use std::path::{Path, PathBuf};
use std::time::Duration;

use interop_common::*;
use lwm2m_coap::{Code, Delivery, Message, UdpEndpoint};
use lwm2m_testkit::peer::answers;
use lwm2m_testkit::proc::text;
use lwm2m_testkit::scratch::Scratch;

const CLIENTS: &[&str] = &[
    "coap-client-notls",
    "coap-client-openssl",
    "coap-client-gnutls",
    "coap-client",
];
const SERVERS: &[&str] = &[
    "coap-server-notls",
    "coap-server-openssl",
    "coap-server-gnutls",
    "coap-server",
];
const HINT: &str = "apt-get install libcoap3-bin";

/// `v4.3.1` from the usage text libcoap prints (for an unknown option; both programs then exit).
async fn libcoap_version(bin: &Path) -> String {
    let mut c = command(bin);
    c.arg("-?");
    let out = run(c).await;
    let text = format!("{}{}", stdout(&out), String::from_utf8_lossy(&out.stderr));
    text.split_whitespace()
        .find(|w| w.starts_with('v') && w[1..].starts_with(|c: char| c.is_ascii_digit()))
        .unwrap_or("unknown version")
        .to_string()
}

async fn client_bin() -> Option<PathBuf> {
    let bin = require(CLIENTS, HINT)?;
    println!("peer: {} {}", bin.display(), libcoap_version(&bin).await);
    Some(bin)
}

async fn server_bin() -> Option<PathBuf> {
    let bin = require(SERVERS, HINT)?;
    println!("peer: {} {}", bin.display(), libcoap_version(&bin).await);
    Some(bin)
}

/// Run coap-client with `args` and the URI; `-B` bounds its own wait.
async fn coap_client(bin: &Path, args: &[&str], uri: &str) -> std::process::Output {
    let mut c = command(bin);
    c.args(["-B", "10"]).args(args).arg(uri);
    run(c).await
}

// ------------------------------------------------------------------------------------------ their client, our server

#[tokio::test]
async fn libcoap_client_methods_against_our_server() {
    let Some(bin) = client_bin().await else { return };
    let mut server = test_server(localhost4(), fast_config()).await;
    let at = |p: &str| uri(server.addr(), p);

    let out = coap_client(&bin, &[], &at("/hello")).await;
    assert_eq!(text(&out), "Hello from lwm2m-coap");

    let out = coap_client(&bin, &["-m", "put", "-e", "first"], &at("/store/a")).await;
    assert!(out.status.success(), "{out:?}");
    let out = coap_client(&bin, &["-m", "post", "-e", "+second"], &at("/store/a")).await;
    assert!(out.status.success(), "{out:?}");
    let out = coap_client(&bin, &[], &at("/store/a")).await;
    assert_eq!(text(&out), "first+second");

    let out = coap_client(&bin, &["-m", "fetch", "-e", "query"], &at("/hello")).await;
    assert_eq!(text(&out), "fetched:query");

    let out = coap_client(&bin, &["-m", "delete"], &at("/store/a")).await;
    assert!(out.status.success(), "{out:?}");
    let out = coap_client(&bin, &[], &at("/store/a")).await;
    let err = String::from_utf8_lossy(&out.stderr);
    assert!(err.contains("4.04"), "GET after DELETE: {out:?}");

    // Separate response (empty ACK first).
    let out = coap_client(&bin, &[], &at("/slow")).await;
    assert_eq!(text(&out), "slow");

    // NON request gets a NON response.
    let out = coap_client(&bin, &["-N"], &at("/hello")).await;
    assert_eq!(text(&out), "Hello from lwm2m-coap");

    let log = server.drain_log();
    let seen: Vec<(Code, &str)> = log.iter().map(|l| (l.code, l.path.as_str())).collect();
    assert_eq!(seen, METHODS_SEEN, "each request reaches the application exactly once");
    assert_eq!(log[1].payload, b"first");
    assert_eq!(log[8].mtype, lwm2m_coap::MessageType::Non);
    assert_eq!(server.handle.stats().malformed, 0);
}

#[tokio::test]
async fn libcoap_client_against_our_server_on_ipv6() {
    let Some(bin) = client_bin().await else { return };
    if !have_ipv6() {
        eprintln!("SKIPPED: ::1 not available");
        return;
    }
    let mut server = test_server(localhost6(), fast_config()).await;
    let out = coap_client(&bin, &["-m", "put", "-e", "v6"], &uri(server.addr(), "/store/x")).await;
    assert!(out.status.success(), "{out:?}");
    let out = coap_client(&bin, &[], &uri(server.addr(), "/store/x")).await;
    assert_eq!(text(&out), "v6");
    assert!(server.drain_log().iter().all(|l| l.peer.is_ipv6()));
}

#[tokio::test]
async fn libcoap_client_observes_our_resource() {
    let Some(bin) = client_bin().await else { return };
    let mut server = test_server(localhost4(), fast_config()).await;
    // -s 2: observe for two seconds; -w: newline after each payload.
    let target = uri(server.addr(), "/obs");
    let (out, outcomes) = tokio::join!(
        coap_client(&bin, &["-s", "2", "-w"], &target),
        server.notifications(3, STEP)
    );
    assert_eq!(
        outcomes,
        vec![Ok(Delivery::Acknowledged); 3],
        "every CON notification acknowledged"
    );
    let lines: Vec<String> = stdout(&out).lines().map(str::to_string).collect();
    assert_eq!(lines[..4], ["n0", "n1", "n2", "n3"], "{out:?}");
    let first = &server.drain_log()[0];
    assert_eq!((first.code, first.observe), (Code::GET, Some(0)));
}

#[tokio::test]
async fn libcoap_client_blockwise_get_from_our_server() {
    let Some(bin) = client_bin().await else { return };
    let mut server = test_server(localhost4(), fast_config()).await;
    let dir = Scratch::new("coap-interop");
    let file = dir.path("large.bin");
    let f = file.to_str().unwrap();
    let out = coap_client(&bin, &["-b", "64", "-o", f], &uri(server.addr(), "/large")).await;
    let got = std::fs::read(&file).unwrap_or_default();
    drop(dir);
    assert!(got == large_body(), "got {} bytes, want 1500: {out:?}", got.len());
    // 1500 bytes in 64-byte blocks: 24 responses, and the application answered once.
    assert!(server.handle.stats().sent >= 24, "{:?}", server.handle.stats());
    let log = server.drain_log();
    assert_eq!(
        log.len(),
        1,
        "later blocks are served by the endpoint: {:?}",
        log.iter().map(|l| (l.code, &l.path, l.block2)).collect::<Vec<_>>()
    );
}

#[tokio::test]
async fn libcoap_client_blockwise_put_to_our_server() {
    let Some(bin) = client_bin().await else { return };
    let mut server = test_server(localhost4(), fast_config()).await;
    let body = upload_body(3000);
    let dir = Scratch::new("coap-interop");
    let f = dir.write("upload.bin", &body);
    let out = coap_client(
        &bin,
        &["-m", "put", "-b", "64", "-f", &f],
        &uri(server.addr(), "/upload"),
    )
    .await;
    assert!(out.status.success(), "{out:?}");
    assert_eq!(text(&out), "3000", "the final response carries our answer");
    let log = server.drain_log();
    assert_eq!(
        log.len(),
        1,
        "the endpoint reassembles Block1: {:?}",
        log.iter().map(|l| (l.code, &l.path, l.block1)).collect::<Vec<_>>()
    );
    assert!(log[0].payload == body, "reassembled {} bytes", log[0].payload.len());
    assert!(server.handle.stats().received >= 47, "3000 bytes in 64-byte blocks");
}

// ------------------------------------------------------------------------------------------ our client, their server

/// A running coap-server (killed on drop) on `ip`, and our client endpoint.
async fn libcoap_server(bin: &Path, ip: IpAddr) -> PeerServer {
    let port = free_udp_port(ip);
    let mut cmd = command(bin);
    // -d 10: allow up to 10 resources created by PUT.
    cmd.args(["-A", &ip.to_string(), "-p", &port.to_string(), "-d", "10"])
        .stdout(std::process::Stdio::null())
        .stderr(std::process::Stdio::null());
    let child = spawn(cmd);
    let addr = SocketAddr::new(ip, port);
    let (client, _incoming) = UdpEndpoint::bind(SocketAddr::new(ip, 0), fast_config()).await.unwrap();
    // Ready when it answers; the request's own retransmissions cover the start-up (bounded attempts).
    let ready = answers(&client, addr, 10, Duration::from_secs(2)).await;
    assert!(ready, "coap-server did not answer on {addr}");
    PeerServer::new(child, addr, client)
}

#[tokio::test]
async fn our_client_methods_against_libcoap_server() {
    let Some(bin) = server_bin().await else { return };
    let s = libcoap_server(&bin, localhost4()).await;

    let r = s.request(Message::request(Code::GET, "/")).await;
    assert_eq!(r.code, Code::CONTENT);
    assert!(String::from_utf8_lossy(&r.payload).contains("libcoap"), "{r:?}");

    let r = s.request(Message::request(Code::GET, "/.well-known/core")).await;
    assert_eq!(r.content_format(), Some(40));
    assert!(String::from_utf8_lossy(&r.payload).contains("</time>"), "{r:?}");

    let r = s.request(Message::request(Code::PUT, "/res").with_payload("one")).await;
    assert_eq!(r.code, Code::CREATED);
    let r = s.request(Message::request(Code::GET, "/res")).await;
    assert_eq!((r.code, r.payload.as_slice()), (Code::CONTENT, &b"one"[..]));
    let r = s.request(Message::request(Code::PUT, "/res").with_payload("two")).await;
    assert_eq!(r.code, Code::CHANGED);
    let r = s
        .request(Message::request(Code::POST, "/res").with_payload("three"))
        .await;
    assert_eq!(r.code, Code::CHANGED);
    let r = s.request(Message::request(Code::GET, "/res")).await;
    assert_eq!(r.payload, b"three");
    let r = s
        .request(Message::request(Code::POST, "/fresh").with_payload("x"))
        .await;
    assert_eq!(r.code, Code::CREATED);
    assert_eq!(r.location_path(), vec!["fresh"]);

    let r = s
        .request(Message::request(Code::FETCH, "/time").with_payload("q"))
        .await;
    assert_eq!(r.code, Code::CONTENT);
    assert!(!r.payload.is_empty());

    let r = s.request(Message::request(Code::DELETE, "/res")).await;
    assert_eq!(r.code, Code::DELETED);
    let r = s.request(Message::request(Code::GET, "/res")).await;
    assert_eq!(r.code, Code::NOT_FOUND);

    // /async?1 answers with an empty ACK and a separate CON response a second later.
    let r = s.request(Message::request(Code::GET, "/async?1")).await;
    assert_eq!((r.code, r.mtype), (Code::CONTENT, lwm2m_coap::MessageType::Con));
    assert_eq!(r.payload, b"done");

    // NON request.
    let r = s
        .request(Message::request(Code::GET, "/").with_type(lwm2m_coap::MessageType::Non))
        .await;
    assert_eq!((r.code, r.mtype), (Code::CONTENT, lwm2m_coap::MessageType::Non));
    assert_eq!(s.client.stats().malformed, 0);
}

#[tokio::test]
async fn our_client_against_libcoap_server_on_ipv6() {
    let Some(bin) = server_bin().await else { return };
    if !have_ipv6() {
        eprintln!("SKIPPED: ::1 not available");
        return;
    }
    let s = libcoap_server(&bin, localhost6()).await;
    let r = s.request(Message::request(Code::PUT, "/v6").with_payload("six")).await;
    assert_eq!(r.code, Code::CREATED);
    let r = s.request(Message::request(Code::GET, "/v6")).await;
    assert_eq!(r.payload, b"six");
}

#[tokio::test]
async fn our_client_observes_libcoap_time() {
    let Some(bin) = server_bin().await else { return };
    let s = libcoap_server(&bin, localhost4()).await;
    let (first, mut obs) = tokio::time::timeout(STEP, s.client.observe(s.addr, Message::request(Code::GET, "/time")))
        .await
        .unwrap()
        .unwrap();
    assert_eq!(first.code, Code::CONTENT);
    let mut last = first.observe().expect("registration accepted with Observe");
    // coap-server notifies /time once a second.
    for _ in 0..2 {
        let n = tokio::time::timeout(STEP, obs.next())
            .await
            .unwrap()
            .expect("notification");
        assert_eq!(n.code, Code::CONTENT);
        let seq = n.observe().expect("Observe in notification");
        assert!(seq > last, "sequence increases: {seq} after {last}");
        last = seq;
        assert!(!n.payload.is_empty());
    }
    // Active cancel: GET with Observe: 1 on the same token; the answer carries no Observe.
    let r = tokio::time::timeout(STEP, obs.deregister()).await.unwrap().unwrap();
    assert_eq!(r.code, Code::CONTENT);
    assert_eq!(r.observe(), None, "deregistered: {r:?}");
}

#[tokio::test]
async fn our_client_cancels_libcoap_observation_reactively() {
    let Some(bin) = server_bin().await else { return };
    let s = libcoap_server(&bin, localhost4()).await;
    let (_, obs) = tokio::time::timeout(STEP, s.client.observe(s.addr, Message::request(Code::GET, "/time")))
        .await
        .unwrap()
        .unwrap();
    drop(obs);
    // The next notification (within a second) is answered with RST; the server then stops notifying and the
    // endpoint counts nothing as malformed.
    let before = s.client.stats().sent;
    tokio::time::timeout(STEP, async {
        while s.client.stats().sent == before {
            tokio::task::yield_now().await;
        }
    })
    .await
    .expect("RST sent for the unwanted notification");
    assert_eq!(s.client.stats().malformed, 0);
}

#[tokio::test]
async fn our_client_blockwise_get_from_libcoap_server() {
    let Some(bin) = server_bin().await else { return };
    let s = libcoap_server(&bin, localhost4()).await;
    // libcoap's /example_data is 1500 bytes, served as Block2 with 1024-byte blocks unless asked otherwise.
    let r = s.request(Message::request(Code::GET, "/example_data")).await;
    assert_eq!(r.code, Code::CONTENT);
    assert_eq!(r.payload.len(), 1500, "Block2 {:?}", r.block2());
    assert!(r.payload.starts_with(b"a123456789b123456789"));
}

#[tokio::test]
async fn our_client_blockwise_put_to_libcoap_server() {
    let Some(bin) = server_bin().await else { return };
    let s = libcoap_server(&bin, localhost4()).await;
    let body = upload_body(4000);
    let r = s
        .request(Message::request(Code::PUT, "/big").with_payload(body.clone()))
        .await;
    assert_eq!(r.code, Code::CREATED, "{r:?}");
    let r = s.request(Message::request(Code::GET, "/big")).await;
    assert!(
        r.payload == body,
        "uploaded with Block1, read back with Block2: {} bytes",
        r.payload.len()
    );
}
