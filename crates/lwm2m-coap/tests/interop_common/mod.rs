//! Shared by the interop tests (`interop_libcoap.rs`, `interop_aiocoap.rs`): addresses and free ports, peer
//! programs (found and run with `lwm2m_testkit::proc`) and [`TestServer`], the test application of
//! `lwm2m_testkit::peer` on our UDP driver.
#![allow(dead_code)]

use std::net::{IpAddr, SocketAddr};
use std::process::Output;
use std::time::Duration;

use lwm2m_coap::message::Block;
use lwm2m_coap::{Code, EndpointConfig, Message, MessageType, UdpEndpoint, UdpHandle};
use lwm2m_testkit::peer::TestPeer;
pub use lwm2m_testkit::peer::{large_body, upload_body};
pub use lwm2m_testkit::proc::{command, require, stdout};
use tokio::process::{Child, Command};

/// Bound for one step of a test (one request, one peer run).
pub const STEP: Duration = Duration::from_secs(15);

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

/// Run to completion within [`STEP`], capturing stdout and stderr.
pub async fn run(cmd: Command) -> Output {
    lwm2m_testkit::proc::run(cmd, STEP).await
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

/// Our endpoint acting as a server with the resources of [`TestPeer`] (`/hello` answers "Hello from
/// lwm2m-coap"); every request is reported on its log.
pub type TestServer = TestPeer<Logged>;

/// A [`TestServer`] on `ip` (an ephemeral port) with `config`.
pub async fn test_server(ip: IpAddr, config: EndpointConfig) -> TestServer {
    let (handle, incoming) = UdpEndpoint::bind(SocketAddr::new(ip, 0), config).await.expect("bind");
    TestPeer::serve(handle, incoming, "Hello from lwm2m-coap", |_, r| {
        let request = &r.request;
        std::future::ready(Logged {
            peer: r.peer,
            mtype: request.mtype,
            code: request.code,
            path: request.uri_path_string(),
            payload: request.payload.clone(),
            observe: request.observe(),
            block1: request.block1(),
            block2: request.block2(),
        })
    })
}

/// What [`TestServer`] logs of the "methods" tests (`*_client_methods_against_our_server`): GET `/hello`; PUT,
/// POST, GET `/store/a`; FETCH `/hello`; DELETE, GET `/store/a`; GET `/slow`; NON GET `/hello`.
pub const METHODS_SEEN: [(Code, &str); 9] = [
    (Code::GET, "/hello"),
    (Code::PUT, "/store/a"),
    (Code::POST, "/store/a"),
    (Code::GET, "/store/a"),
    (Code::FETCH, "/hello"),
    (Code::DELETE, "/store/a"),
    (Code::GET, "/store/a"),
    (Code::GET, "/slow"),
    (Code::GET, "/hello"),
];

/// A peer program acting as a server (killed on drop), and our client endpoint.
pub struct PeerServer {
    _child: Child,
    /// The peer's address.
    pub addr: SocketAddr,
    /// Our client.
    pub client: UdpHandle,
}

impl PeerServer {
    /// The running peer `child` serving on `addr`, and our `client`.
    pub fn new(child: Child, addr: SocketAddr, client: UdpHandle) -> PeerServer {
        PeerServer {
            _child: child,
            addr,
            client,
        }
    }

    /// Sends `m` to the peer; its answer within [`STEP`].
    pub async fn request(&self, m: Message) -> Message {
        tokio::time::timeout(STEP, self.client.request(self.addr, m))
            .await
            .expect("response in time")
            .expect("response")
    }
}
