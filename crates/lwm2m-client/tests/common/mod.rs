//! A scripted LwM2M server for the runtime tests, built from lwm2m-coap's UDP driver: it logs every request the
//! client sends (with the virtual time it arrived) and answers it with a closure; the test sends its own
//! requests to the client through the same handle.
#![allow(dead_code)]

use std::net::SocketAddr;
use std::time::Duration;

use lwm2m_client::runtime::ClientEvent;
use lwm2m_coap::transport::udp::{Incoming, UdpEndpoint, UdpHandle};
use lwm2m_coap::{Code, EndpointConfig, Message};
use lwm2m_testkit::events;
use tokio::sync::mpsc;
use tokio::time::Instant;

/// Guard for every wait: long enough never to fire in a passing test (virtual time auto-advances to it only
/// when the client is stuck).
pub const GUARD: Duration = Duration::from_secs(3 * 86_400);

/// One request the client sent to the scripted server.
#[derive(Debug, Clone)]
pub struct Logged {
    /// Virtual time since the server started.
    pub at: Duration,
    /// The client's address.
    pub peer: SocketAddr,
    /// The request.
    pub request: Message,
}

impl Logged {
    /// `"POST /rd"`.
    pub fn line(&self) -> String {
        format!("{} {}", method(self.request.code), self.request.uri_path_string())
    }

    /// The Uri-Query options.
    pub fn queries(&self) -> Vec<String> {
        self.request.uri_query()
    }
}

/// `GET`, `POST`...
pub fn method(c: Code) -> &'static str {
    match c {
        Code::GET => "GET",
        Code::POST => "POST",
        Code::PUT => "PUT",
        Code::DELETE => "DELETE",
        Code::FETCH => "FETCH",
        Code::IPATCH => "IPATCH",
        _ => "?",
    }
}

/// The answering rule: `None` leaves the request unanswered.
pub type Rule = Box<dyn FnMut(&Message) -> Option<Message> + Send>;

/// A server answering like a plain LwM2M server: Register → 2.01 `rd/xyz`, Update → 2.04, De-register → 2.02,
/// Send → 2.04, Bootstrap-Request → 2.04.
pub fn lwm2m_server() -> Rule {
    Box::new(|req| Some(standard_answer(req)))
}

/// The standard answers of [`lwm2m_server`].
pub fn standard_answer(req: &Message) -> Message {
    let path = req.uri_path();
    let p: Vec<&str> = path.iter().map(String::as_str).collect();
    match (req.code, p.as_slice()) {
        (Code::POST, ["rd"]) => {
            let mut m = Message::response_to(req, Code::CREATED);
            m.set_location_path("rd/xyz");
            m
        }
        (Code::POST, ["rd", _]) => Message::response_to(req, Code::CHANGED),
        (Code::DELETE, ["rd", _]) => Message::response_to(req, Code::DELETED),
        (Code::POST, ["dp"]) => Message::response_to(req, Code::CHANGED),
        (Code::POST, ["bs"]) => Message::response_to(req, Code::CHANGED),
        _ => Message::response_to(req, Code::NOT_FOUND),
    }
}

/// The scripted server.
pub struct Server {
    /// Its endpoint (send requests to the client with it).
    pub handle: UdpHandle,
    /// Its address.
    pub addr: SocketAddr,
    /// Every request the client sent, in arrival order.
    pub log: mpsc::UnboundedReceiver<Logged>,
}

impl Server {
    /// Binds 127.0.0.1 on an ephemeral port and answers with `rule`.
    pub async fn start(rule: Rule) -> Server {
        Self::start_with(rule, EndpointConfig::default()).await
    }

    /// Like [`Server::start`] with CoAP parameters.
    pub async fn start_with(rule: Rule, config: EndpointConfig) -> Server {
        let socket = UdpEndpoint::bind("127.0.0.1:0".parse().unwrap(), config)
            .await
            .expect("bind the scripted server");
        Server::serve(rule, socket)
    }

    /// Answers with `rule` on a bound driver, logging every request.
    fn serve(mut rule: Rule, (handle, mut incoming): (UdpHandle, mpsc::Receiver<Incoming>)) -> Server {
        let addr = handle.local_addr();
        let (tx, log) = mpsc::unbounded_channel();
        let h = handle.clone();
        let t0 = Instant::now();
        tokio::spawn(async move {
            while let Some(item) = incoming.recv().await {
                if let Incoming::Request(r) = item {
                    let _ = tx.send(Logged {
                        at: t0.elapsed(),
                        peer: r.peer,
                        request: r.request.clone(),
                    });
                    if let Some(resp) = rule(&r.request) {
                        let _ = h.respond(r.responder, resp);
                    }
                }
            }
        });
        Server { handle, addr, log }
    }

    /// `coap://127.0.0.1:port`.
    pub fn uri(&self) -> String {
        format!("coap://{}", self.addr)
    }

    /// The next request the client sent.
    pub async fn next(&mut self) -> Logged {
        events::recv(&mut self.log, GUARD).await
    }

    /// The next request whose `"METHOD /path"` starts with `prefix`, skipping others.
    pub async fn next_matching(&mut self, prefix: &str) -> Logged {
        loop {
            let l = self.next().await;
            if l.line().starts_with(prefix) {
                return l;
            }
        }
    }

    /// Sends `req` to the client and returns the answer.
    pub async fn ask(&self, client: SocketAddr, req: Message) -> Message {
        tokio::time::timeout(GUARD, self.handle.request(client, req))
            .await
            .expect("no answer in time")
            .expect("the client answered")
    }
}

/// Waits for the first event `f` accepts (each event within [`GUARD`]).
pub async fn until<T>(
    events: &mut mpsc::UnboundedReceiver<ClientEvent>,
    f: impl FnMut(&ClientEvent) -> Option<T>,
) -> T {
    events::until(events, GUARD, f).await
}

/// Waits for the first failed Register with server 1 (its reason is returned; a registration instead fails
/// the test), then for the failure of the registration with server 1.
pub async fn register_failure(events: &mut mpsc::UnboundedReceiver<ClientEvent>) -> String {
    register_failure_within(events, GUARD).await
}

/// [`register_failure`] with each wait bounded by `guard` (for tests on the real clock).
pub async fn register_failure_within(events: &mut mpsc::UnboundedReceiver<ClientEvent>, guard: Duration) -> String {
    let reason = events::until(events, guard, |e| match e {
        ClientEvent::RequestFailed {
            ssid: 1,
            request: "Register",
            reason,
        } => Some(reason.clone()),
        ClientEvent::Registered { .. } => panic!("registered: {e:?}"),
        _ => None,
    })
    .await;
    events::until(events, guard, |e| {
        (*e == ClientEvent::RegistrationFailed { ssid: 1 }).then_some(())
    })
    .await;
    reason
}

impl Server {
    /// A CoAP-over-DTLS server (PSK `identity`/`key`) answering with `rule`.
    #[cfg(feature = "dtls")]
    pub async fn start_secure(rule: Rule, identity: &str, key: &[u8]) -> Server {
        Self::start_secure_with(rule, identity, key, lwm2m_dtls::ServerConfig::default()).await
    }

    /// Like [`Server::start_secure`] with DTLS parameters (e.g. the cipher suites it accepts).
    #[cfg(feature = "dtls")]
    pub async fn start_secure_with(rule: Rule, identity: &str, key: &[u8], config: lwm2m_dtls::ServerConfig) -> Server {
        use lwm2m_dtls::coap_layer::DtlsServerLayer;
        use lwm2m_dtls::{DtlsServer, MemoryCredentialStore};
        let store = MemoryCredentialStore::new();
        store.add_psk(identity, key.to_vec());
        let dtls = DtlsServer::new(config, std::sync::Arc::new(store)).expect("DTLS server");
        let socket = UdpEndpoint::bind_secure(
            "127.0.0.1:0".parse().unwrap(),
            EndpointConfig::default(),
            DtlsServerLayer::new(dtls),
        )
        .await
        .expect("bind the scripted DTLS server");
        Server::serve(rule, socket)
    }
}

/// A peer that never answers: logs every datagram (retransmissions included) with its arrival time.
pub struct Silent {
    /// Its address.
    pub addr: SocketAddr,
    /// `(arrival, message)` of every datagram.
    pub log: mpsc::UnboundedReceiver<(Duration, Message)>,
}

impl Silent {
    /// Binds 127.0.0.1 on an ephemeral port.
    pub async fn start() -> Silent {
        let socket = tokio::net::UdpSocket::bind("127.0.0.1:0").await.unwrap();
        let addr = socket.local_addr().unwrap();
        let (tx, log) = mpsc::unbounded_channel();
        let t0 = Instant::now();
        tokio::spawn(async move {
            let mut buf = vec![0u8; 65_535];
            while let Ok((n, _)) = socket.recv_from(&mut buf).await {
                if let Ok(m) = Message::decode(&buf[..n]) {
                    if tx.send((t0.elapsed(), m)).is_err() {
                        break;
                    }
                }
            }
        });
        Silent { addr, log }
    }

    /// The next datagram.
    pub async fn next(&mut self) -> (Duration, Message) {
        events::recv(&mut self.log, GUARD).await
    }
}
