//! Shared by the interop tests (`interop_libcoap.rs`, `interop_aiocoap.rs`): locating peer binaries, free ports,
//! child processes that die with the test, and [`TestServer`], a small application on our UDP driver.
#![allow(dead_code)]

use std::collections::HashMap;
use std::net::{IpAddr, SocketAddr};
use std::path::{Path, PathBuf};
use std::process::{Output, Stdio};
use std::time::Duration;

use lwm2m_coap::message::Block;
use lwm2m_coap::{
    Code, Delivery, EndpointConfig, Incoming, IncomingRequest, Message, MessageType, RequestError, UdpEndpoint,
    UdpHandle,
};
use tokio::process::{Child, Command};
use tokio::sync::mpsc;

/// Bound for one step of a test (one request, one peer run).
pub const STEP: Duration = Duration::from_secs(15);

/// The 1500-byte body of `/large` (the size of libcoap's `/example_data`).
pub fn large_body() -> Vec<u8> {
    (0..1500u32).map(|i| b'a' + (i % 26) as u8).collect()
}

/// A deterministic body of `len` bytes for uploads.
pub fn upload_body(len: usize) -> Vec<u8> {
    (0..len).map(|i| b'A' + ((i * 7 + i / 26) % 26) as u8).collect()
}

pub fn localhost4() -> IpAddr {
    IpAddr::from([127, 0, 0, 1])
}

pub fn localhost6() -> IpAddr {
    "::1".parse().unwrap()
}

/// `coap://HOST:PORT/path` for an address.
pub fn uri(addr: SocketAddr, path: &str) -> String {
    match addr {
        SocketAddr::V4(a) => format!("coap://{}:{}{}", a.ip(), a.port(), path),
        SocketAddr::V6(a) => format!("coap://[{}]:{}{}", a.ip(), a.port(), path),
    }
}

/// The first of `names` found on PATH.
pub fn find_binary(names: &[&str]) -> Option<PathBuf> {
    let path = std::env::var_os("PATH")?;
    for name in names {
        for dir in std::env::split_paths(&path) {
            let p = dir.join(name);
            if is_executable(&p) {
                return Some(p);
            }
        }
    }
    None
}

fn is_executable(p: &Path) -> bool {
    use std::os::unix::fs::PermissionsExt;
    std::fs::metadata(p).is_ok_and(|m| m.is_file() && m.permissions().mode() & 0o111 != 0)
}

/// Find a peer binary or print why the test is skipped.
pub fn require(names: &[&str], install_hint: &str) -> Option<PathBuf> {
    let found = find_binary(names);
    if found.is_none() {
        eprintln!("SKIPPED: none of {names:?} is installed ({install_hint})");
    }
    found
}

/// A UDP port that was free a moment ago (bind port 0, read it, release it).
pub fn free_udp_port(ip: IpAddr) -> u16 {
    let s = std::net::UdpSocket::bind(SocketAddr::new(ip, 0)).expect("bind an ephemeral port");
    s.local_addr().expect("local address").port()
}

/// True if `::1` can be bound here.
pub fn have_ipv6() -> bool {
    std::net::UdpSocket::bind("[::1]:0").is_ok()
}

/// Endpoint parameters for loopback tests: quick retransmission so a lost first datagram costs little.
pub fn fast_config() -> EndpointConfig {
    EndpointConfig {
        ack_timeout_ms: 300,
        max_retransmit: 4,
        response_timeout_ms: 10_000,
        ..EndpointConfig::default()
    }
}

/// A command whose child is killed when dropped, with stdin closed.
pub fn command(program: &Path) -> Command {
    let mut c = Command::new(program);
    c.kill_on_drop(true).stdin(Stdio::null());
    c
}

/// Run to completion within [`STEP`], capturing stdout and stderr.
pub async fn run(mut cmd: Command) -> Output {
    cmd.stdout(Stdio::piped()).stderr(Stdio::piped());
    let child = cmd.spawn().expect("spawn peer");
    tokio::time::timeout(STEP, child.wait_with_output())
        .await
        .expect("peer did not finish in time")
        .expect("peer output")
}

/// stdout as text.
pub fn stdout(o: &Output) -> String {
    String::from_utf8_lossy(&o.stdout).into_owned()
}

/// Spawn a long-running peer (killed on drop).
pub fn spawn(mut cmd: Command) -> Child {
    cmd.spawn().expect("spawn peer")
}

/// What [`TestServer`] saw of one request.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct Logged {
    pub peer: SocketAddr,
    pub mtype: MessageType,
    pub code: Code,
    pub path: String,
    pub payload: Vec<u8>,
    pub observe: Option<u32>,
    pub block1: Option<Block>,
    pub block2: Option<Block>,
}

/// Our endpoint acting as a server, with these resources:
/// - `/hello` GET: "Hello from lwm2m-coap";
/// - `/large` GET: [`large_body`] (1500 bytes, block-wise for any block size below that);
/// - `/obs` GET with Observe 0: "n0" with Observe, then the CON notifications "n1", "n2", "n3" (their
///   outcomes arrive on [`TestServer::notified`]); without Observe 0: the current value;
/// - `/store/...` PUT (2.01/2.04), GET (2.05/4.04), POST (appends, 2.04; on `/store` itself creates
///   `/store/<n>` with Location-Path, 2.01), DELETE (2.02/4.04);
/// - any path FETCH: "fetched:" + the request payload;
/// - `/upload` PUT: 2.04 with the received length as payload;
/// - `/slow` any method: an empty ACK first, then a separate 2.05 "slow";
/// - anything else 4.04.
///
/// Every request is reported on [`TestServer::log`].
pub struct TestServer {
    pub handle: UdpHandle,
    pub log: mpsc::UnboundedReceiver<Logged>,
    pub notified: mpsc::UnboundedReceiver<Result<Delivery, RequestError>>,
    task: tokio::task::JoinHandle<()>,
}

impl Drop for TestServer {
    fn drop(&mut self) {
        self.task.abort();
    }
}

impl TestServer {
    pub async fn start(ip: IpAddr, config: EndpointConfig) -> TestServer {
        let (handle, incoming) = UdpEndpoint::bind(SocketAddr::new(ip, 0), config).await.expect("bind");
        let (log_tx, log) = mpsc::unbounded_channel();
        let (note_tx, notified) = mpsc::unbounded_channel();
        let task = tokio::spawn(serve(handle.clone(), incoming, log_tx, note_tx));
        TestServer {
            handle,
            log,
            notified,
            task,
        }
    }

    pub fn addr(&self) -> SocketAddr {
        self.handle.local_addr()
    }

    /// Every request logged so far.
    pub fn drain_log(&mut self) -> Vec<Logged> {
        let mut v = Vec::new();
        while let Ok(l) = self.log.try_recv() {
            v.push(l);
        }
        v
    }

    /// The next `n` notification outcomes.
    pub async fn notifications(&mut self, n: usize) -> Vec<Result<Delivery, RequestError>> {
        let mut v = Vec::new();
        for _ in 0..n {
            let r = tokio::time::timeout(STEP, self.notified.recv())
                .await
                .expect("notification outcome in time");
            v.push(r.expect("server running"));
        }
        v
    }
}

async fn serve(
    handle: UdpHandle,
    mut incoming: mpsc::Receiver<Incoming>,
    log: mpsc::UnboundedSender<Logged>,
    notified: mpsc::UnboundedSender<Result<Delivery, RequestError>>,
) {
    let mut store: HashMap<String, Vec<u8>> = HashMap::new();
    let mut created = 0u32;
    while let Some(item) = incoming.recv().await {
        let Incoming::Request(IncomingRequest {
            peer,
            request,
            responder,
            ..
        }) = item
        else {
            continue;
        };
        let path = request.uri_path_string();
        let _ = log.send(Logged {
            peer,
            mtype: request.mtype,
            code: request.code,
            path: path.clone(),
            payload: request.payload.clone(),
            observe: request.observe(),
            block1: request.block1(),
            block2: request.block2(),
        });
        let reply = |code: Code| Message::response_to(&request, code);
        let resp = match (request.code, path.as_str()) {
            (Code::FETCH, _) => {
                let mut p = b"fetched:".to_vec();
                p.extend_from_slice(&request.payload);
                reply(Code::CONTENT).with_payload(p)
            }
            (Code::GET, "/hello") => reply(Code::CONTENT)
                .with_content_format(0)
                .with_payload("Hello from lwm2m-coap"),
            (Code::GET, "/large") => reply(Code::CONTENT).with_content_format(0).with_payload(large_body()),
            (Code::GET, "/obs") if request.observe() == Some(0) => {
                let mut r = reply(Code::CONTENT).with_content_format(0).with_payload("n0");
                r.set_observe(1);
                let token = request.token;
                let (h, tx) = (handle.clone(), notified.clone());
                let _ = handle.respond(responder, r);
                tokio::spawn(async move {
                    for i in 1..=3u32 {
                        let mut n = Message::new(MessageType::Con, Code::CONTENT)
                            .with_token(token)
                            .with_content_format(0)
                            .with_payload(format!("n{i}"));
                        n.set_observe(1 + i);
                        let outcome = h.notify(peer, n).await;
                        let _ = tx.send(outcome);
                    }
                });
                continue;
            }
            (Code::GET, "/obs") => reply(Code::CONTENT).with_content_format(0).with_payload("n3"),
            (Code::PUT, "/upload") => {
                let len = request.payload.len();
                store.insert(path.clone(), request.payload.clone());
                reply(Code::CHANGED).with_payload(len.to_string())
            }
            (_, "/slow") => {
                let _ = handle.accept(responder);
                // The empty ACK is queued before the answer, so it leaves first.
                reply(Code::CONTENT).with_payload("slow")
            }
            (Code::POST, "/store") => {
                created += 1;
                let p = format!("/store/{created}");
                store.insert(p.clone(), request.payload.clone());
                let mut r = reply(Code::CREATED);
                r.set_location_path(&p);
                r
            }
            (Code::PUT, p) if p.starts_with("/store/") => {
                let fresh = store.insert(path.clone(), request.payload.clone()).is_none();
                reply(if fresh { Code::CREATED } else { Code::CHANGED })
            }
            (Code::GET, p) if p.starts_with("/store/") => match store.get(p) {
                Some(v) => reply(Code::CONTENT).with_content_format(0).with_payload(v.clone()),
                None => reply(Code::NOT_FOUND),
            },
            (Code::POST, p) if p.starts_with("/store/") => {
                let v = store.entry(path.clone()).or_default();
                v.extend_from_slice(&request.payload);
                reply(Code::CHANGED)
            }
            (Code::DELETE, p) if p.starts_with("/store/") => match store.remove(p) {
                Some(_) => reply(Code::DELETED),
                None => reply(Code::NOT_FOUND),
            },
            _ => reply(Code::NOT_FOUND),
        };
        let _ = handle.respond(responder, resp);
    }
}
