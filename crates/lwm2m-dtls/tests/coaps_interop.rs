//! CoAP over DTLS (`coaps://`) end to end on real UDP sockets on 127.0.0.1: lwm2m-coap's UDP driver with the
//! DTLS layers of `lwm2m_dtls::coap_layer`, against
//! - libcoap's `coap-client-openssl` / `coap-client-gnutls` (PSK; the key is given as ASCII) as clients of our
//!   CoAPs server: GET, PUT, block-wise (`-b 64`) both ways, observe (`-s 2`), the negotiated suite;
//! - libcoap's `coap-server-openssl` / `coap-server-gnutls` (DTLS on PORT+1) as servers for our CoAPs client;
//! - aiocoap's `aiocoap-client` with tinydtls (PyPI `DTLSSocket`) and a `--credentials` JSON file;
//! - failures: a wrong key, an unknown identity, plain CoAP sent to the DTLS port;
//! - our client against our server: identities on both sides, reconnect from a new address with resumption.
//!
//! The server offers only TLS_PSK_WITH_AES_128_CCM_8, so every successful handshake here used it (and the
//! tests also read the suite from the session). A test skips (passes, printing a `SKIPPED:` line) only when its
//! peer program or Python module is missing. Every wait is bounded; peers are killed when dropped.

use std::net::{IpAddr, SocketAddr};
use std::path::{Path, PathBuf};
use std::process::{Output, Stdio};
use std::sync::Arc;
use std::time::Duration;

use lwm2m_coap::message::Block;
use lwm2m_coap::{
    Code, Delivery, EndpointConfig, Incoming, Message, PeerIdentity, RequestError, SecurityEvent, UdpEndpoint,
    UdpHandle,
};
use lwm2m_dtls::coap_layer::{DtlsClientLayer, DtlsServerLayer};
use lwm2m_dtls::{CipherOptions, ClientConfig, DtlsServer, MemoryCredentialStore, ServerConfig, ServerStats, Timing};
use lwm2m_testkit::peer::{answers, large_body, upload_body, TestPeer};
use lwm2m_testkit::proc::{command, find_binary, stdout, text};
use lwm2m_testkit::scratch::Scratch;
use tokio::process::{Child, Command};
use tokio::sync::mpsc;

/// Bound for one step (one request, one peer run).
const STEP: Duration = Duration::from_secs(15);
/// The PSK identity and key (ASCII, as libcoap takes it on the command line). 16 bytes: tinydtls as built by
/// DTLSSocket (aiocoap) takes no longer PSK (DTLS_PSK_MAX_KEY_LEN = 16; a longer key makes its handshake fail
/// with an internal_error alert).
const ID: &str = "urn:imei:490154203237511";
const KEY: &str = "lwm2m-rs-psk-key";
/// A wrong key of the same length.
const WRONG_KEY: &str = "wrong-psk-key-16";
const LIBCOAP_HINT: &str = "apt-get install libcoap3-bin";
const CCM8: &str = "PSK-AES128-CCM8";

// ------------------------------------------------------------------------------------------------ helpers

fn localhost() -> IpAddr {
    IpAddr::from([127, 0, 0, 1])
}

/// The binary, or a SKIPPED line.
fn require(name: &str, hint: &str) -> Option<PathBuf> {
    let found = lwm2m_testkit::proc::require(&[name], hint);
    if let Some(p) = &found {
        println!("peer: {}", p.display());
    }
    found
}

/// Run to completion within [`STEP`].
async fn run(cmd: Command) -> Output {
    lwm2m_testkit::proc::run(cmd, STEP).await
}

/// A UDP port `p` with `p + 1` free too (libcoap's coap-server listens for DTLS on PORT+1).
fn free_port_pair() -> u16 {
    for _ in 0..100 {
        let a = std::net::UdpSocket::bind((localhost(), 0)).expect("bind");
        let p = a.local_addr().expect("addr").port();
        if p < u16::MAX && std::net::UdpSocket::bind((localhost(), p + 1)).is_ok() {
            return p;
        }
    }
    panic!("no free pair of UDP ports");
}

/// Quick CoAP retransmission for loopback.
fn coap_config() -> EndpointConfig {
    EndpointConfig {
        ack_timeout_ms: 500,
        max_retransmit: 4,
        response_timeout_ms: 10_000,
        ..EndpointConfig::default()
    }
}

/// DTLS timers for tests: a failed handshake ends within seconds.
fn timing() -> Timing {
    Timing {
        handshake_timeout_ms: 4_000,
        ..Timing::default()
    }
}

fn client_config(identity: &str, key: &str) -> ClientConfig {
    let mut c = ClientConfig::psk(identity.as_bytes().to_vec(), key.as_bytes().to_vec());
    c.timing = timing();
    c
}

fn psk(id: &str) -> Option<PeerIdentity> {
    Some(PeerIdentity::Psk(id.as_bytes().to_vec()))
}

// ------------------------------------------------------------------------------------------------ our server

/// What the server application saw of one request.
#[derive(Debug, Clone)]
struct Logged {
    peer: SocketAddr,
    identity: Option<PeerIdentity>,
    code: Code,
    path: String,
    payload: Vec<u8>,
    observe: Option<u32>,
    block2: Option<Block>,
    /// The suite of the DTLS session the request came through.
    cipher: Option<String>,
}

/// Our CoAPs server (PSK identity [`ID`] with [`KEY`], CCM_8 only) with the resources of [`TestPeer`]: `/hello`
/// GET ("Hello from lwm2m-coaps"); `/whoami` GET (the peer's PSK identity); `/large` GET (1500 bytes);
/// `/store/..` PUT/GET; `/upload` PUT (answers the received length); `/obs` GET with Observe (n0, then CON
/// notifications n1..n3).
type CoapsServer = TestPeer<Logged>;

async fn coaps_server() -> CoapsServer {
    let store = MemoryCredentialStore::new();
    store.add_psk(ID, KEY.as_bytes().to_vec());
    let config = ServerConfig {
        ciphers: CipherOptions::CCM8_ONLY,
        timing: timing(),
        ..ServerConfig::default()
    };
    let dtls = DtlsServer::new(config, Arc::new(store)).expect("DTLS server");
    let (handle, incoming) = UdpEndpoint::bind_secure(
        SocketAddr::new(localhost(), 0),
        coap_config(),
        DtlsServerLayer::new(dtls),
    )
    .await
    .expect("bind");
    TestPeer::serve(handle, incoming, "Hello from lwm2m-coaps", |handle, r| {
        let (handle, peer) = (handle.clone(), r.peer);
        let request = &r.request;
        let logged = Logged {
            peer,
            identity: r.identity.clone(),
            code: request.code,
            path: request.uri_path_string(),
            payload: request.payload.clone(),
            observe: request.observe(),
            block2: request.block2(),
            cipher: None,
        };
        async move {
            let cipher = handle
                .with_security(move |l: &mut DtlsServerLayer, _| {
                    l.server()
                        .session(&peer)
                        .and_then(|s| s.cipher_name())
                        .map(str::to_string)
                })
                .await
                .ok()
                .flatten();
            Logged { cipher, ..logged }
        }
    })
}

/// What a test asks of [`CoapsServer`] beyond the test application.
trait Coaps {
    /// `coaps://127.0.0.1:PORT/path`.
    fn uri(&self, path: &str) -> String;
    /// The DTLS server's counters.
    async fn dtls_stats(&self) -> ServerStats;
}

impl Coaps for CoapsServer {
    fn uri(&self, path: &str) -> String {
        format!("coaps://127.0.0.1:{}{path}", self.addr().port())
    }

    async fn dtls_stats(&self) -> ServerStats {
        tokio::time::timeout(
            STEP,
            self.handle
                .with_security(|l: &mut DtlsServerLayer, _| l.server().stats()),
        )
        .await
        .expect("stats in time")
        .expect("a DTLS server layer")
    }
}

// ------------------------------------------------------------------------------- libcoap clients, our server

/// `coap-client-*` with PSK options; `-B` bounds its own wait.
async fn libcoap_client(bin: &Path, wait_s: u32, psk: Option<(&str, &str)>, args: &[&str], uri: &str) -> Output {
    let mut c = command(bin);
    c.args(["-B", &wait_s.to_string()]);
    if let Some((id, key)) = psk {
        c.args(["-u", id, "-k", key]);
    }
    c.args(args).arg(uri);
    run(c).await
}

async fn libcoap_client_against_our_server(name: &str) {
    let Some(bin) = require(name, LIBCOAP_HINT) else { return };
    let mut server = coaps_server().await;
    let creds = Some((ID, KEY));

    // GET, with the identity reaching the application.
    let out = libcoap_client(&bin, 10, creds, &[], &server.uri("/hello")).await;
    assert_eq!(text(&out), "Hello from lwm2m-coaps", "{out:?}");
    let out = libcoap_client(&bin, 10, creds, &[], &server.uri("/whoami")).await;
    assert_eq!(text(&out), ID, "{out:?}");
    let log = server.drain_log();
    assert_eq!(log.len(), 2, "{log:?}");
    for l in &log {
        assert_eq!(l.identity, psk(ID), "{l:?}");
        assert_eq!(l.cipher.as_deref(), Some(CCM8), "{l:?}");
    }
    let established = server.drain_security();
    assert!(
        established
            .iter()
            .any(|e| matches!(e, SecurityEvent::Established { identity, .. } if Some(identity) == psk(ID).as_ref())),
        "{established:?}"
    );

    // PUT then GET.
    let out = libcoap_client(&bin, 10, creds, &["-m", "put", "-e", "first"], &server.uri("/store/a")).await;
    assert!(out.status.success(), "{out:?}");
    let out = libcoap_client(&bin, 10, creds, &[], &server.uri("/store/a")).await;
    assert_eq!(text(&out), "first", "{out:?}");
    let log = server.drain_log();
    assert_eq!(
        log.iter().map(|l| (l.code, l.path.as_str())).collect::<Vec<_>>(),
        vec![(Code::PUT, "/store/a"), (Code::GET, "/store/a")]
    );

    // Block-wise GET in 64-byte blocks: the endpoint serves the later blocks.
    let dir = Scratch::new("libcoap");
    let target = dir.path("large.bin");
    let out = libcoap_client(
        &bin,
        10,
        creds,
        &["-b", "64", "-o", target.to_str().unwrap()],
        &server.uri("/large"),
    )
    .await;
    let got = std::fs::read(&target).unwrap_or_default();
    assert!(got == large_body(), "got {} bytes of 1500: {out:?}", got.len());
    let log = server.drain_log();
    assert_eq!(log.len(), 1, "{log:?}");
    assert_eq!(log[0].block2.map(|b| b.size()), Some(64), "{log:?}");

    // Block-wise PUT in 64-byte blocks: reassembled by the endpoint.
    let body = upload_body(1000);
    let f = dir.write("upload.bin", &body);
    let out = libcoap_client(
        &bin,
        10,
        creds,
        &["-m", "put", "-b", "64", "-f", &f],
        &server.uri("/upload"),
    )
    .await;
    assert_eq!(text(&out), "1000", "{out:?}");
    let log = server.drain_log();
    assert_eq!(log.len(), 1, "{log:?}");
    assert!(log[0].payload == body, "reassembled {} bytes", log[0].payload.len());

    // Observe for two seconds: n0 and three CON notifications, all acknowledged over DTLS.
    let target = server.uri("/obs");
    let (out, outcomes) = tokio::join!(
        libcoap_client(&bin, 10, creds, &["-s", "2", "-w"], &target),
        server.notifications(3, STEP)
    );
    assert_eq!(outcomes, vec![Ok(Delivery::Acknowledged); 3], "{out:?}");
    let lines: Vec<String> = stdout(&out).lines().map(str::to_string).collect();
    assert!(lines.len() >= 4, "{out:?}");
    assert_eq!(lines[..4], ["n0", "n1", "n2", "n3"], "{out:?}");
    let log = server.drain_log();
    assert_eq!((log[0].code, log[0].observe), (Code::GET, Some(0)), "{log:?}");
    assert_eq!(server.handle.stats().malformed, 0);
    let stats = server.dtls_stats().await;
    assert!(stats.established >= 7, "{stats:?}");
    assert_eq!(stats.handshake_failures, 0, "{stats:?}");
}

#[tokio::test]
async fn libcoap_openssl_client_against_our_coaps_server() {
    libcoap_client_against_our_server("coap-client-openssl").await;
}

#[tokio::test]
async fn libcoap_gnutls_client_against_our_coaps_server() {
    libcoap_client_against_our_server("coap-client-gnutls").await;
}

#[tokio::test]
async fn wrong_key_unknown_identity_and_plain_coap_get_nothing() {
    let Some(bin) = require("coap-client-openssl", LIBCOAP_HINT) else {
        return;
    };
    let mut server = coaps_server().await;

    // A wrong key: the server drops the client's Finished (it fails authentication), nothing gets through.
    let out = libcoap_client(&bin, 3, Some((ID, WRONG_KEY)), &[], &server.uri("/hello")).await;
    assert!(!stdout(&out).contains("Hello"), "{out:?}");
    // An unknown identity: the server refuses the handshake with an alert.
    let out = libcoap_client(&bin, 3, Some(("stranger", KEY)), &[], &server.uri("/hello")).await;
    assert!(!stdout(&out).contains("Hello"), "{out:?}");
    let stats = server.dtls_stats().await;
    assert_eq!(stats.established, 0, "{stats:?}");
    assert!(stats.sessions_created >= 2, "both got as far as a handshake: {stats:?}");

    // Plain CoAP to the DTLS port: no answer at all.
    if let Some(plain) = require("coap-client-notls", LIBCOAP_HINT) {
        let before = server.dtls_stats().await.malformed_dropped;
        let uri = format!("coap://127.0.0.1:{}/hello", server.addr().port());
        let out = libcoap_client(&plain, 2, None, &[], &uri).await;
        assert!(!stdout(&out).contains("Hello"), "{out:?}");
        assert!(server.dtls_stats().await.malformed_dropped > before);
    }
    assert!(server.drain_log().is_empty(), "no request reached the application");
    assert_eq!(server.handle.stats().malformed, 0, "the endpoint never saw a datagram");
    // Every failure is counted as such once the failed handshakes are over (bounded by the handshake timeout).
    let mut failures = 0;
    for _ in 0..100 {
        failures = server.dtls_stats().await.handshake_failures + server.dtls_stats().await.handshake_timeouts;
        if failures >= 2 {
            break;
        }
        tokio::time::timeout(STEP, server.security.recv())
            .await
            .expect("a close event in time");
    }
    assert!(failures >= 2, "{:?}", server.dtls_stats().await);
    assert!(server
        .drain_security()
        .iter()
        .all(|e| !matches!(e, SecurityEvent::Established { .. })));
}

// ------------------------------------------------------------------------------- our client, libcoap servers

/// A coap-server with PSK (plain CoAP on `plain`, DTLS on `dtls` = PORT+1), killed on drop.
struct LibcoapServer {
    _child: Child,
    dtls: SocketAddr,
}

impl LibcoapServer {
    async fn start(bin: &Path) -> LibcoapServer {
        let port = free_port_pair();
        let mut cmd = command(bin);
        cmd.args([
            "-A",
            "127.0.0.1",
            "-p",
            &port.to_string(),
            "-d",
            "10",
            "-k",
            KEY,
            "-h",
            "lwm2m-hint",
        ])
        .stdout(Stdio::null())
        .stderr(Stdio::null());
        let child = cmd.spawn().expect("spawn coap-server");
        let plain = SocketAddr::new(localhost(), port);
        // Ready when the plain port answers (both ports are bound before the server loop starts); the probe's
        // own retransmissions cover the start-up, with a bounded number of attempts.
        let (probe, _rx) = UdpEndpoint::bind(SocketAddr::new(localhost(), 0), coap_config())
            .await
            .unwrap();
        let ready = answers(&probe, plain, 10, Duration::from_secs(2)).await;
        assert!(ready, "coap-server did not answer on {plain}");
        probe.shutdown().await;
        LibcoapServer {
            _child: child,
            dtls: SocketAddr::new(localhost(), port + 1),
        }
    }
}

async fn coaps_client(config: ClientConfig) -> (UdpHandle, mpsc::Receiver<Incoming>) {
    let layer = DtlsClientLayer::with_default(config).expect("client config");
    UdpEndpoint::bind_secure(SocketAddr::new(localhost(), 0), coap_config(), layer)
        .await
        .expect("bind")
}

async fn request(h: &UdpHandle, to: SocketAddr, m: Message) -> Message {
    tokio::time::timeout(STEP, h.request(to, m))
        .await
        .expect("response in time")
        .expect("response")
}

async fn client_cipher(h: &UdpHandle, peer: SocketAddr) -> Option<String> {
    h.with_security(move |l: &mut DtlsClientLayer, _| {
        l.client(peer)
            .and_then(|c| c.session())
            .and_then(|s| s.cipher_name())
            .map(str::to_string)
    })
    .await
    .expect("a DTLS client layer")
}

async fn our_client_against_libcoap_server(name: &str) {
    let Some(bin) = require(name, LIBCOAP_HINT) else { return };
    let server = LibcoapServer::start(&bin).await;
    let to = server.dtls;
    let (client, _incoming) = coaps_client(client_config(ID, KEY)).await;

    let r = request(&client, to, Message::request(Code::GET, "/")).await;
    assert_eq!(r.code, Code::CONTENT);
    assert!(String::from_utf8_lossy(&r.payload).contains("libcoap"), "{r:?}");
    assert_eq!(client_cipher(&client, to).await.as_deref(), Some(CCM8));
    assert_eq!(client.peer_identity(to).await.unwrap(), psk(ID), "the identity we used");

    let r = request(&client, to, Message::request(Code::PUT, "/res").with_payload("one")).await;
    assert_eq!(r.code, Code::CREATED);
    let r = request(&client, to, Message::request(Code::GET, "/res")).await;
    assert_eq!((r.code, r.payload.as_slice()), (Code::CONTENT, &b"one"[..]));

    // Block-wise both ways over DTLS: 4000 bytes up with Block1, back with Block2; libcoap's 1500-byte data.
    let body = upload_body(4000);
    let r = request(
        &client,
        to,
        Message::request(Code::PUT, "/big").with_payload(body.clone()),
    )
    .await;
    assert_eq!(r.code, Code::CREATED, "{r:?}");
    let r = request(&client, to, Message::request(Code::GET, "/big")).await;
    assert!(r.payload == body, "read back {} bytes", r.payload.len());
    let r = request(&client, to, Message::request(Code::GET, "/example_data")).await;
    assert_eq!(r.payload.len(), 1500, "{:?}", r.block2());

    // Observe /time (notified once a second), then deregister.
    let (first, mut obs) = tokio::time::timeout(STEP, client.observe(to, Message::request(Code::GET, "/time")))
        .await
        .unwrap()
        .unwrap();
    let mut last = first.observe().expect("registration accepted");
    for _ in 0..2 {
        let n = tokio::time::timeout(STEP, obs.next())
            .await
            .unwrap()
            .expect("notification");
        let seq = n.observe().expect("Observe in notification");
        assert!(seq > last, "{seq} after {last}");
        last = seq;
    }
    let r = tokio::time::timeout(STEP, obs.deregister()).await.unwrap().unwrap();
    assert_eq!(r.observe(), None);

    // Our address changes: the DTLS client (and its cached session) moves to a new socket and reconnects.
    let moved = client
        .with_security(move |l: &mut DtlsClientLayer, _| l.take_client(to))
        .await
        .unwrap()
        .expect("a client for the server");
    client.shutdown().await;
    let mut layer = DtlsClientLayer::new();
    layer.insert_client(to, moved);
    let (client2, _incoming2) = UdpEndpoint::bind_secure(SocketAddr::new(localhost(), 0), coap_config(), layer)
        .await
        .unwrap();
    client2
        .with_security(move |l: &mut DtlsClientLayer, now| l.reconnect(now, to))
        .await
        .unwrap()
        .unwrap();
    let r = request(&client2, to, Message::request(Code::GET, "/res")).await;
    assert_eq!(r.payload, b"one");
    let stats = client2
        .with_security(|l: &mut DtlsClientLayer, _| l.stats())
        .await
        .unwrap();
    assert_eq!((stats.handshakes, stats.established), (1, 1), "{stats:?}");
    assert_eq!(client2.stats().malformed, 0);
}

#[tokio::test]
async fn our_coaps_client_against_libcoap_openssl_server() {
    our_client_against_libcoap_server("coap-server-openssl").await;
}

#[tokio::test]
async fn our_coaps_client_against_libcoap_gnutls_server() {
    our_client_against_libcoap_server("coap-server-gnutls").await;
}

#[tokio::test]
async fn our_client_with_a_wrong_key_fails_against_libcoap_server() {
    let Some(bin) = require("coap-server-openssl", LIBCOAP_HINT) else {
        return;
    };
    let server = LibcoapServer::start(&bin).await;
    let (client, _incoming) = coaps_client(client_config(ID, WRONG_KEY)).await;
    let r = tokio::time::timeout(STEP, client.request(server.dtls, Message::request(Code::GET, "/")))
        .await
        .expect("an answer in time");
    assert!(matches!(r, Err(RequestError::Security(_))), "{r:?}");
}

// -------------------------------------------------------------------------------------------- aiocoap client

/// True if `python3` can import aiocoap with its tinydtls transport (PyPI `DTLSSocket`).
async fn have_aiocoap_dtls() -> bool {
    let Some(py) = find_binary(&["python3"]) else {
        eprintln!("SKIPPED: python3 is not installed");
        return false;
    };
    let mut c = command(&py);
    c.args(["-c", "import aiocoap.meta, DTLSSocket; print(aiocoap.meta.version)"]);
    let out = run(c).await;
    if !out.status.success() {
        eprintln!(
            "SKIPPED: aiocoap with DTLS is not available (pip install aiocoap DTLSSocket; DTLSSocket needs \
             autoconf and automake to build tinydtls): {}",
            String::from_utf8_lossy(&out.stderr).lines().last().unwrap_or("")
        );
        return false;
    }
    if find_binary(&["aiocoap-client"]).is_none() {
        eprintln!("SKIPPED: aiocoap-client is not on PATH");
        return false;
    }
    println!("peer: aiocoap {} with DTLSSocket", text(&out));
    true
}

/// lwm2m-coap's aiocoap peer script; `python3 aiocoap_peer.py observe URI COUNT CREDENTIALS_JSON` observes URI
/// with the aiocoap library, prints the first response and COUNT notifications, one payload a line, then
/// cancels.
fn aiocoap_peer_script() -> PathBuf {
    Path::new(env!("CARGO_MANIFEST_DIR")).join("../lwm2m-coap/tests/aiocoap_peer.py")
}

fn aiocoap_credentials(dir: &Scratch, server: &CoapsServer, identity: &str, key: &str) -> String {
    let creds = format!(
        r#"{{"coaps://127.0.0.1:{}/*": {{"dtls": {{"psk": {{"ascii": "{key}"}}, "client-identity": {{"ascii": "{identity}"}}}}}}}}"#,
        server.addr().port()
    );
    dir.write("credentials.json", creds.as_bytes())
}

fn aiocoap_client(creds: &str, args: &[&str], uri: &str) -> Command {
    let bin = find_binary(&["aiocoap-client"]).expect("aiocoap-client");
    let mut c = command(&bin);
    // Unbuffered, so observe notifications are readable as they are printed.
    c.env("PYTHONUNBUFFERED", "1");
    c.args(["--credentials", creds]).args(args).arg(uri);
    c
}

#[tokio::test]
async fn aiocoap_client_against_our_coaps_server() {
    if !have_aiocoap_dtls().await {
        return;
    }
    let mut server = coaps_server().await;
    let dir = Scratch::new("aiocoap");
    let creds = aiocoap_credentials(&dir, &server, ID, KEY);

    let out = run(aiocoap_client(&creds, &[], &server.uri("/hello"))).await;
    assert_eq!(text(&out), "Hello from lwm2m-coaps", "{out:?}");
    let out = run(aiocoap_client(
        &creds,
        &["-m", "PUT", "--payload", "from aiocoap"],
        &server.uri("/store/p"),
    ))
    .await;
    assert!(out.status.success(), "{out:?}");
    let out = run(aiocoap_client(&creds, &[], &server.uri("/store/p"))).await;
    assert_eq!(text(&out), "from aiocoap", "{out:?}");
    // aiocoap fetches the rest of a Block2 response by itself.
    let out = run(aiocoap_client(&creds, &[], &server.uri("/large"))).await;
    assert_eq!(text(&out).into_bytes(), large_body(), "{out:?}");
    let log = server.drain_log();
    assert!(log.len() >= 4, "{log:?}");
    for l in &log {
        assert_eq!(l.identity, psk(ID), "{l:?}");
        assert_eq!(l.cipher.as_deref(), Some(CCM8), "{l:?}");
    }

    // Observe, with the aiocoap library and the same credentials file (aiocoap-client 0.4.17 does not print
    // notifications when its output is not a terminal).
    let py = find_binary(&["python3"]).expect("python3");
    let mut c = command(&py);
    c.arg(aiocoap_peer_script())
        .args(["observe", &server.uri("/obs"), "3", &creds]);
    let (out, outcomes) = tokio::join!(run(c), server.notifications(3, STEP));
    assert_eq!(
        stdout(&out).lines().collect::<Vec<_>>(),
        ["n0", "n1", "n2", "n3"],
        "{out:?}"
    );
    assert_eq!(outcomes, vec![Ok(Delivery::Acknowledged); 3]);
    let log = server.drain_log();
    assert_eq!(
        (log[0].path.as_str(), log[0].observe, &log[0].identity),
        ("/obs", Some(0), &psk(ID))
    );

    // The wrong key and an unknown identity get nothing.
    for (id, key) in [(ID, WRONG_KEY), ("stranger", KEY)] {
        let creds = aiocoap_credentials(&dir, &server, id, key);
        let mut c = aiocoap_client(&creds, &[], &server.uri("/hello"));
        c.stdout(Stdio::piped()).stderr(Stdio::piped());
        let child = c.spawn().expect("spawn aiocoap-client");
        // aiocoap retries for a long time; give it a few seconds, then it is killed on drop.
        if let Ok(out) = tokio::time::timeout(Duration::from_secs(4), child.wait_with_output()).await {
            let out = out.expect("output");
            assert!(!stdout(&out).contains("Hello"), "{out:?}");
        }
    }
    assert!(server.drain_log().is_empty());
}

// ------------------------------------------------------------------------------- our client, our server

#[tokio::test]
async fn our_client_and_server_identities_failures_and_reconnect() {
    let mut server = coaps_server().await;
    let to = server.addr();

    let (client, _incoming) = coaps_client(client_config(ID, KEY)).await;
    let r = request(&client, to, Message::request(Code::GET, "/whoami")).await;
    assert_eq!(r.payload, ID.as_bytes());
    let log = server.drain_log();
    assert_eq!((log[0].peer, &log[0].identity), (client.local_addr(), &psk(ID)));
    assert_eq!(server.handle.peer_identity(client.local_addr()).await.unwrap(), psk(ID));

    // The server reaches the client over the same session.
    let (client_b, mut incoming_b) = coaps_client(client_config(ID, KEY)).await;
    request(&client_b, to, Message::request(Code::GET, "/hello")).await;
    let h = server.handle.clone();
    let peer_b = client_b.local_addr();
    let down = tokio::spawn(async move { h.request(peer_b, Message::request(Code::GET, "/3/0/0")).await });
    let req = loop {
        match tokio::time::timeout(STEP, incoming_b.recv())
            .await
            .expect("request in time")
        {
            Some(Incoming::Request(r)) => break r,
            Some(_) => continue,
            None => panic!("closed"),
        }
    };
    assert_eq!(req.identity, psk(ID), "the server's identity as the client knows it");
    client_b
        .respond(
            req.responder,
            Message::response_to(&req.request, Code::CONTENT).with_payload("Acme"),
        )
        .unwrap();
    let r = tokio::time::timeout(STEP, down).await.unwrap().unwrap().unwrap();
    assert_eq!(r.payload, b"Acme");

    // Unknown identity: refused by an alert, the request fails at once. Wrong key: at the handshake timeout.
    let (stranger, _i) = coaps_client(client_config("stranger", KEY)).await;
    let r = tokio::time::timeout(STEP, stranger.request(to, Message::request(Code::GET, "/hello"))).await;
    assert!(matches!(r, Ok(Err(RequestError::Security(_)))), "{r:?}");
    let (wrong, _i) = coaps_client(client_config(ID, WRONG_KEY)).await;
    let r = tokio::time::timeout(STEP, wrong.request(to, Message::request(Code::GET, "/hello"))).await;
    assert!(matches!(r, Ok(Err(RequestError::Security(_)))), "{r:?}");

    // Our address changes: the client moves to a new socket and resumes the session from there.
    let moved = client
        .with_security(move |l: &mut DtlsClientLayer, _| l.take_client(to))
        .await
        .unwrap()
        .expect("client");
    assert!(moved.has_cached_session());
    client.shutdown().await;
    let mut layer = DtlsClientLayer::new();
    layer.insert_client(to, moved);
    let (client2, _i2) = UdpEndpoint::bind_secure(SocketAddr::new(localhost(), 0), coap_config(), layer)
        .await
        .unwrap();
    let resumed_before = server.dtls_stats().await.resumed;
    client2
        .with_security(move |l: &mut DtlsClientLayer, now| l.reconnect(now, to))
        .await
        .unwrap()
        .unwrap();
    let r = request(&client2, to, Message::request(Code::GET, "/whoami")).await;
    assert_eq!(r.payload, ID.as_bytes());
    let log = server.drain_log();
    let last = log.last().expect("logged");
    assert_eq!((last.peer, &last.identity), (client2.local_addr(), &psk(ID)));
    assert_eq!(
        server.dtls_stats().await.resumed,
        resumed_before + 1,
        "abbreviated handshake"
    );
    assert_eq!(server.handle.stats().malformed, 0);
}
