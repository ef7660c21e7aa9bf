//! The UDP driver with a security layer (`UdpEndpoint::spawn_secure`), tested with a toy layer that needs no TLS
//! library: a one-round "handshake" (`HELLO<identity>` answered `WELCOME` or `DENIED`), data as `D` + the
//! datagram XOR 0x5a, and a handshake retransmission timer. Real DTLS is tested in lwm2m-dtls
//! (`tests/coaps_interop.rs`).

use std::collections::{HashMap, HashSet, VecDeque};
use std::net::SocketAddr;
use std::time::Duration;

use lwm2m_coap::transport::security::{
    DatagramSecurity, PeerIdentity, SecurityCloseReason, SecurityError, SecurityEvent,
};
use lwm2m_coap::{
    Code, EndpointConfig, Incoming, IncomingRequest, Message, MessageType, RequestError, UdpEndpoint, UdpHandle,
};
use tokio::net::UdpSocket;
use tokio::sync::mpsc;

const T: Duration = Duration::from_secs(5);
const RETRANSMIT_MS: u64 = 100;

fn xor(b: &[u8]) -> Vec<u8> {
    b.iter().map(|x| x ^ 0x5a).collect()
}

fn data(b: &[u8]) -> Vec<u8> {
    let mut v = vec![b'D'];
    v.extend(xor(b));
    v
}

#[derive(Default)]
struct Queues {
    transmits: VecDeque<(SocketAddr, Vec<u8>)>,
    plaintext: VecDeque<(SocketAddr, Vec<u8>)>,
    events: VecDeque<SecurityEvent>,
}

/// Server side: known identities, one session per peer address.
#[derive(Default)]
struct ToyServer {
    known: HashSet<Vec<u8>>,
    sessions: HashMap<SocketAddr, Vec<u8>>,
    q: Queues,
    /// Drop this many HELLOs (to make the client retransmit).
    drop_hellos: u32,
    hellos_seen: u32,
    dropped: u32,
}

impl ToyServer {
    fn new(known: &[&str]) -> Self {
        ToyServer {
            known: known.iter().map(|k| k.as_bytes().to_vec()).collect(),
            ..ToyServer::default()
        }
    }
}

impl DatagramSecurity for ToyServer {
    fn on_datagram(&mut self, _now_ms: u64, peer: SocketAddr, ciphertext: &[u8]) {
        if let Some(id) = ciphertext.strip_prefix(b"HELLO") {
            self.hellos_seen += 1;
            if self.drop_hellos > 0 {
                self.drop_hellos -= 1;
                return;
            }
            if self.known.contains(id) {
                self.sessions.insert(peer, id.to_vec());
                self.q.transmits.push_back((peer, b"WELCOME".to_vec()));
                self.q.events.push_back(SecurityEvent::Established {
                    peer,
                    identity: PeerIdentity::Psk(id.to_vec()),
                });
            } else {
                self.q.transmits.push_back((peer, b"DENIED".to_vec()));
                self.q.events.push_back(SecurityEvent::Closed {
                    peer,
                    reason: SecurityCloseReason::HandshakeFailed("unknown identity".into()),
                });
            }
            return;
        }
        match (ciphertext.strip_prefix(b"D"), self.sessions.contains_key(&peer)) {
            (Some(body), true) => self.q.plaintext.push_back((peer, xor(body))),
            _ => self.dropped += 1,
        }
    }
    fn seal(&mut self, _now_ms: u64, peer: SocketAddr, plaintext: &[u8]) -> Result<(), SecurityError> {
        if !self.sessions.contains_key(&peer) {
            return Err(SecurityError::NoSession);
        }
        self.q.transmits.push_back((peer, data(plaintext)));
        Ok(())
    }
    fn poll_transmit(&mut self) -> Option<(SocketAddr, Vec<u8>)> {
        self.q.transmits.pop_front()
    }
    fn poll_plaintext(&mut self) -> Option<(SocketAddr, Vec<u8>)> {
        self.q.plaintext.pop_front()
    }
    fn poll_event(&mut self) -> Option<SecurityEvent> {
        self.q.events.pop_front()
    }
    fn poll_timeout(&self) -> Option<u64> {
        None
    }
    fn handle_timeout(&mut self, _now_ms: u64) {}
    fn identity(&self, peer: SocketAddr) -> Option<PeerIdentity> {
        self.sessions.get(&peer).map(|id| PeerIdentity::Psk(id.clone()))
    }
    fn close(&mut self, _now_ms: u64, peer: SocketAddr) {
        if self.sessions.remove(&peer).is_some() {
            self.q.events.push_back(SecurityEvent::Closed {
                peer,
                reason: SecurityCloseReason::LocalClose,
            });
        }
    }
}

enum ClientState {
    Handshaking { queued: Vec<Vec<u8>>, next_hello: u64 },
    Established,
}

/// Client side: one identity, a session per server address, started on the first `seal`.
struct ToyClient {
    identity: Vec<u8>,
    peers: HashMap<SocketAddr, ClientState>,
    q: Queues,
    hellos_sent: u32,
    unresponsive: Vec<SocketAddr>,
}

impl ToyClient {
    fn new(identity: &str) -> Self {
        ToyClient {
            identity: identity.as_bytes().to_vec(),
            peers: HashMap::new(),
            q: Queues::default(),
            hellos_sent: 0,
            unresponsive: Vec::new(),
        }
    }
    fn hello(&mut self, peer: SocketAddr) {
        self.hellos_sent += 1;
        let mut h = b"HELLO".to_vec();
        h.extend(&self.identity);
        self.q.transmits.push_back((peer, h));
    }
}

impl DatagramSecurity for ToyClient {
    fn on_datagram(&mut self, _now_ms: u64, peer: SocketAddr, ciphertext: &[u8]) {
        match (self.peers.get_mut(&peer), ciphertext) {
            (Some(ClientState::Handshaking { queued, .. }), b"WELCOME") => {
                let queued = std::mem::take(queued);
                for d in queued {
                    self.q.transmits.push_back((peer, data(&d)));
                }
                self.peers.insert(peer, ClientState::Established);
                self.q.events.push_back(SecurityEvent::Established {
                    peer,
                    identity: PeerIdentity::Psk(b"toy-server".to_vec()),
                });
            }
            (Some(ClientState::Handshaking { .. }), b"DENIED") => {
                self.peers.remove(&peer);
                self.q.events.push_back(SecurityEvent::Closed {
                    peer,
                    reason: SecurityCloseReason::HandshakeFailed("denied".into()),
                });
            }
            (Some(ClientState::Established), c) => {
                if let Some(body) = c.strip_prefix(b"D") {
                    self.q.plaintext.push_back((peer, xor(body)));
                }
            }
            _ => {}
        }
    }
    fn seal(&mut self, now_ms: u64, peer: SocketAddr, plaintext: &[u8]) -> Result<(), SecurityError> {
        match self.peers.get_mut(&peer) {
            Some(ClientState::Established) => self.q.transmits.push_back((peer, data(plaintext))),
            Some(ClientState::Handshaking { queued, .. }) => queued.push(plaintext.to_vec()),
            None => {
                self.peers.insert(
                    peer,
                    ClientState::Handshaking {
                        queued: vec![plaintext.to_vec()],
                        next_hello: now_ms + RETRANSMIT_MS,
                    },
                );
                self.hello(peer);
            }
        }
        Ok(())
    }
    fn poll_transmit(&mut self) -> Option<(SocketAddr, Vec<u8>)> {
        self.q.transmits.pop_front()
    }
    fn poll_plaintext(&mut self) -> Option<(SocketAddr, Vec<u8>)> {
        self.q.plaintext.pop_front()
    }
    fn poll_event(&mut self) -> Option<SecurityEvent> {
        self.q.events.pop_front()
    }
    fn poll_timeout(&self) -> Option<u64> {
        self.peers
            .values()
            .filter_map(|s| match s {
                ClientState::Handshaking { next_hello, .. } => Some(*next_hello),
                ClientState::Established => None,
            })
            .min()
    }
    fn handle_timeout(&mut self, now_ms: u64) {
        let due: Vec<SocketAddr> = self
            .peers
            .iter_mut()
            .filter_map(|(p, s)| match s {
                ClientState::Handshaking { next_hello, .. } if *next_hello <= now_ms => {
                    *next_hello = now_ms + RETRANSMIT_MS;
                    Some(*p)
                }
                _ => None,
            })
            .collect();
        for p in due {
            self.hello(p);
        }
    }
    fn identity(&self, peer: SocketAddr) -> Option<PeerIdentity> {
        match self.peers.get(&peer) {
            Some(ClientState::Established) => Some(PeerIdentity::Psk(b"toy-server".to_vec())),
            _ => None,
        }
    }
    fn peer_unresponsive(&mut self, _now_ms: u64, peer: SocketAddr) {
        self.unresponsive.push(peer);
        self.peers.remove(&peer);
    }
}

fn config() -> EndpointConfig {
    EndpointConfig {
        ack_timeout_ms: 300,
        max_retransmit: 2,
        response_timeout_ms: 3000,
        ..EndpointConfig::default()
    }
}

async fn secure<L: DatagramSecurity>(layer: L) -> (UdpHandle, mpsc::Receiver<Incoming>) {
    UdpEndpoint::bind_secure("127.0.0.1:0".parse().unwrap(), config(), layer)
        .await
        .expect("bind")
}

/// Next request, with the security events seen before it.
async fn next_request(rx: &mut mpsc::Receiver<Incoming>) -> (IncomingRequest, Vec<SecurityEvent>) {
    let mut events = Vec::new();
    loop {
        match tokio::time::timeout(T, rx.recv()).await.expect("request in time") {
            Some(Incoming::Request(r)) => return (r, events),
            Some(Incoming::Security(e)) => events.push(e),
            Some(other) => panic!("unexpected {other:?}"),
            None => panic!("incoming channel closed"),
        }
    }
}

/// Answers every request with 2.05 and "<path> from <identity>".
fn echo(handle: UdpHandle, mut rx: mpsc::Receiver<Incoming>) -> tokio::task::JoinHandle<()> {
    tokio::spawn(async move {
        while let Some(item) = rx.recv().await {
            if let Incoming::Request(r) = item {
                let who = r
                    .identity
                    .as_ref()
                    .and_then(|i| i.name())
                    .unwrap_or("nobody")
                    .to_string();
                let body = format!("{} from {who}", r.request.uri_path_string());
                let _ = handle.respond(
                    r.responder,
                    Message::response_to(&r.request, Code::CONTENT).with_payload(body),
                );
            }
        }
    })
}

#[tokio::test]
async fn requests_carry_the_peer_identity_and_travel_sealed() {
    let (server, mut srx) = secure(ToyServer::new(&["ep-1"])).await;
    let (client, mut crx) = secure(ToyClient::new("ep-1")).await;
    assert!(server.is_secure() && client.is_secure());
    let to = server.local_addr();
    let c = client.clone();
    let call = tokio::spawn(async move { c.request(to, Message::request(Code::GET, "/3/0")).await });
    let (r, events) = next_request(&mut srx).await;
    assert_eq!(r.identity, Some(PeerIdentity::Psk(b"ep-1".to_vec())));
    assert_eq!(r.peer, client.local_addr());
    assert_eq!(
        events,
        vec![SecurityEvent::Established {
            peer: client.local_addr(),
            identity: PeerIdentity::Psk(b"ep-1".to_vec())
        }]
    );
    server
        .respond(
            r.responder,
            Message::response_to(&r.request, Code::CONTENT).with_payload("ok"),
        )
        .unwrap();
    let resp = tokio::time::timeout(T, call).await.unwrap().unwrap().unwrap();
    assert_eq!((resp.code, resp.payload.as_slice()), (Code::CONTENT, &b"ok"[..]));
    assert_eq!(
        server.peer_identity(client.local_addr()).await.unwrap(),
        Some(PeerIdentity::Psk(b"ep-1".to_vec()))
    );
    assert_eq!(
        client.peer_identity(to).await.unwrap(),
        Some(PeerIdentity::Psk(b"toy-server".to_vec()))
    );
    // HELLO, then the sealed request; WELCOME, then the sealed response.
    assert_eq!((client.stats().sent, client.stats().received), (2, 2));
    assert_eq!(server.stats().seal_errors, 0);
    // The server can reach the client over the same session (one socket, both directions).
    let srv = server.clone();
    let peer = client.local_addr();
    let down = tokio::spawn(async move { srv.request(peer, Message::request(Code::GET, "/1/0/1")).await });
    let (r, _) = next_request(&mut crx).await;
    assert_eq!(r.identity, Some(PeerIdentity::Psk(b"toy-server".to_vec())));
    client
        .respond(
            r.responder,
            Message::response_to(&r.request, Code::CONTENT).with_payload("86400"),
        )
        .unwrap();
    let resp = tokio::time::timeout(T, down).await.unwrap().unwrap().unwrap();
    assert_eq!(resp.payload, b"86400");
}

#[tokio::test]
async fn a_failed_handshake_fails_the_request_at_once() {
    let (server, srx) = secure(ToyServer::new(&["ep-1"])).await;
    let _echo = echo(server.clone(), srx);
    let (client, mut crx) = secure(ToyClient::new("intruder")).await;
    let started = tokio::time::Instant::now();
    let r = tokio::time::timeout(
        T,
        client.request(server.local_addr(), Message::request(Code::GET, "/x")),
    )
    .await
    .unwrap();
    match r {
        Err(RequestError::Security(why)) => assert!(why.contains("denied"), "{why}"),
        other => panic!("expected a security failure, got {other:?}"),
    }
    // Well before the first CoAP retransmission (300 ms or more).
    assert!(
        started.elapsed() < Duration::from_millis(300),
        "{:?}",
        started.elapsed()
    );
    match tokio::time::timeout(T, crx.recv()).await.unwrap() {
        Some(Incoming::Security(SecurityEvent::Closed { peer, reason })) => {
            assert_eq!(peer, server.local_addr());
            assert!(reason.is_authentication_failure());
        }
        other => panic!("{other:?}"),
    }
    // A known client still gets through.
    let (good, _g) = secure(ToyClient::new("ep-1")).await;
    let resp = tokio::time::timeout(T, good.request(server.local_addr(), Message::request(Code::GET, "/x")))
        .await
        .unwrap()
        .unwrap();
    assert_eq!(resp.payload, b"/x from ep-1");
}

#[tokio::test]
async fn the_layer_timer_retransmits_the_handshake() {
    let server_layer = ToyServer {
        drop_hellos: 2,
        ..ToyServer::new(&["ep-1"])
    };
    let (server, srx) = secure(server_layer).await;
    let _echo = echo(server.clone(), srx);
    let (client, _crx) = secure(ToyClient::new("ep-1")).await;
    let resp = tokio::time::timeout(
        T,
        client.request(server.local_addr(), Message::request(Code::GET, "/t")),
    )
    .await
    .unwrap()
    .unwrap();
    assert_eq!(resp.payload, b"/t from ep-1");
    let hellos = client
        .with_security(|l: &mut ToyClient, _now| l.hellos_sent)
        .await
        .unwrap();
    assert_eq!(hellos, 3, "two HELLOs lost, the third answered");
    let seen = server
        .with_security(|l: &mut ToyServer, _now| l.hellos_seen)
        .await
        .unwrap();
    assert_eq!(seen, 3);
}

#[tokio::test]
async fn plain_coap_to_a_secure_socket_gets_nothing() {
    let (server, srx) = secure(ToyServer::new(&["ep-1"])).await;
    let _echo = echo(server.clone(), srx);
    let raw = UdpSocket::bind("127.0.0.1:0").await.unwrap();
    let get = Message::request(Code::GET, "/hello").with_token(lwm2m_coap::Token::from_u64(1));
    let mut get = get;
    get.mtype = MessageType::Con;
    get.message_id = 0x77;
    raw.send_to(&get.encode(), server.local_addr()).await.unwrap();
    // Wait (bounded) until the layer has seen and dropped it; an answer would have left in the same turn.
    let mut dropped = 0;
    for _ in 0..200 {
        dropped = server.with_security(|l: &mut ToyServer, _| l.dropped).await.unwrap();
        if dropped > 0 {
            break;
        }
        tokio::task::yield_now().await;
    }
    assert_eq!(dropped, 1);
    let mut buf = [0u8; 64];
    assert!(
        tokio::time::timeout(Duration::from_millis(200), raw.recv_from(&mut buf))
            .await
            .is_err(),
        "no answer to plain CoAP"
    );
    assert_eq!(server.stats().malformed, 0, "the endpoint never saw it");
    assert_eq!(server.stats().sent, 0);
}

#[tokio::test]
async fn unsealable_requests_fail_and_plain_drivers_have_no_layer() {
    // A server cannot dial a client that has no session.
    let (server, _srx) = secure(ToyServer::new(&["ep-1"])).await;
    let nobody: SocketAddr = "127.0.0.1:9".parse().unwrap();
    let r = tokio::time::timeout(T, server.request(nobody, Message::request(Code::GET, "/1")))
        .await
        .unwrap();
    assert_eq!(r, Err(RequestError::Security(SecurityError::NoSession.to_string())));
    assert_eq!(server.stats().seal_errors, 1);
    assert_eq!(server.stats().sent, 0);
    // The wrong layer type, and a plain driver.
    let r = server.with_security(|l: &mut ToyClient, _| l.hellos_sent).await;
    assert!(matches!(r, Err(RequestError::Security(_))), "{r:?}");
    let (plain, _prx) = UdpEndpoint::bind("127.0.0.1:0".parse().unwrap(), config())
        .await
        .unwrap();
    assert!(!plain.is_secure());
    let r = plain.with_security(|l: &mut ToyServer, _| l.dropped).await;
    assert!(matches!(r, Err(RequestError::Security(_))), "{r:?}");
    assert_eq!(plain.peer_identity(nobody).await, Ok(None));
    assert!(matches!(
        plain.close_secure_session(nobody).await,
        Err(RequestError::Security(_))
    ));
}

#[tokio::test]
async fn close_and_unresponsive_peers_reach_the_layer() {
    let (server, mut srx) = secure(ToyServer::new(&["ep-1"])).await;
    let (client, _crx) = secure(ToyClient::new("ep-1")).await;
    let to = server.local_addr();
    let c = client.clone();
    let call = tokio::spawn(async move { c.request(to, Message::request(Code::GET, "/a")).await });
    let (r, _) = next_request(&mut srx).await;
    server
        .respond(r.responder, Message::response_to(&r.request, Code::CONTENT))
        .unwrap();
    tokio::time::timeout(T, call).await.unwrap().unwrap().unwrap();
    // The server closes the session: the event reaches the application, the identity is gone.
    server.close_secure_session(client.local_addr()).await.unwrap();
    match tokio::time::timeout(T, srx.recv()).await.unwrap() {
        Some(Incoming::Security(SecurityEvent::Closed { reason, .. })) => {
            assert_eq!(reason, SecurityCloseReason::LocalClose)
        }
        other => panic!("{other:?}"),
    }
    assert_eq!(server.peer_identity(client.local_addr()).await, Ok(None));
    // The client's next request is dropped by the server (no session): after its retransmissions the
    // driver tells the layer, which starts a new handshake on the next request.
    let r = tokio::time::timeout(T, client.request(to, Message::request(Code::GET, "/b")))
        .await
        .unwrap();
    assert_eq!(r, Err(RequestError::Timeout));
    let unresponsive = client
        .with_security(|l: &mut ToyClient, _| l.unresponsive.clone())
        .await;
    assert_eq!(unresponsive, Ok(vec![to]));
    let c = client.clone();
    let call = tokio::spawn(async move { c.request(to, Message::request(Code::GET, "/c")).await });
    let (r, _) = next_request(&mut srx).await;
    assert_eq!(r.identity, Some(PeerIdentity::Psk(b"ep-1".to_vec())));
    server
        .respond(r.responder, Message::response_to(&r.request, Code::CONTENT))
        .unwrap();
    tokio::time::timeout(T, call).await.unwrap().unwrap().unwrap();
}
