//! CoAP test peers on lwm2m-coap's UDP driver (plain or with a security layer):
//! - [`TestPeer`]: the small application the interop tests talk to (`/hello`, `/whoami`, `/large`, `/obs`,
//!   `/upload`, `/store`, `/slow`), logging every request in the test's own record type;
//! - [`registrar`]: a scripted LwM2M server that accepts Register, Update, Send and De-register;
//! - [`answers`]: waits until a peer program answers CoAP.

use std::collections::HashMap;
use std::future::Future;
use std::net::SocketAddr;
use std::time::Duration;

use lwm2m_coap::{
    Code, Delivery, EndpointConfig, Incoming, IncomingRequest, Message, MessageType, RequestError, SecurityEvent,
    UdpEndpoint, UdpHandle,
};
use tokio::sync::mpsc;

/// The 1500-byte body of `/large` (the size of libcoap's `/example_data`).
pub fn large_body() -> Vec<u8> {
    (0..1500u32).map(|i| b'a' + (i % 26) as u8).collect()
}

/// A deterministic body of `len` bytes for uploads.
pub fn upload_body(len: usize) -> Vec<u8> {
    (0..len).map(|i| b'A' + ((i * 7 + i / 26) % 26) as u8).collect()
}

/// Outcome of a notification the peer sent.
pub type Notified = Result<Delivery, RequestError>;

/// Our endpoint acting as a server, with these resources:
/// - `/hello` GET: the greeting given to [`TestPeer::serve`] (text/plain);
/// - `/whoami` GET: the name of the peer's DTLS identity, or "anonymous";
/// - `/large` GET: [`large_body`] (1500 bytes, block-wise for any block size below that);
/// - `/obs` GET with Observe 0: "n0" with Observe, then the CON notifications "n1", "n2", "n3" (their
///   outcomes arrive on [`TestPeer::notified`]); without Observe 0: the current value "n3";
/// - `/store/...` PUT (2.01/2.04), GET (2.05/4.04), POST (appends, 2.04; on `/store` itself creates
///   `/store/<n>` with Location-Path, 2.01), DELETE (2.02/4.04);
/// - any path FETCH: "fetched:" + the request payload;
/// - `/upload` PUT: 2.04 with the received length as payload;
/// - `/slow` any method: an empty ACK first, then a separate 2.05 "slow";
/// - anything else 4.04.
///
/// Every request is logged on [`TestPeer::log`] (before it is answered) as the record the test's `log`
/// function makes of it; the security layer's events arrive on [`TestPeer::security`]. The application stops
/// when dropped.
#[derive(Debug)]
pub struct TestPeer<L> {
    /// Its endpoint.
    pub handle: UdpHandle,
    /// A record of every request, in arrival order.
    pub log: mpsc::UnboundedReceiver<L>,
    /// The outcome of every `/obs` notification.
    pub notified: mpsc::UnboundedReceiver<Notified>,
    /// The security layer's events (none on plain CoAP).
    pub security: mpsc::UnboundedReceiver<SecurityEvent>,
    task: tokio::task::JoinHandle<()>,
}

impl<L> Drop for TestPeer<L> {
    fn drop(&mut self) {
        self.task.abort();
    }
}

impl<L: Send + 'static> TestPeer<L> {
    /// Serves the resources on a bound driver (`UdpEndpoint::bind` or `bind_secure`); `/hello` answers `hello`,
    /// and `log` makes the record of each request (it may ask the driver, e.g. for the DTLS session).
    pub fn serve<F, Fut>(
        handle: UdpHandle,
        mut incoming: mpsc::Receiver<Incoming>,
        hello: &'static str,
        mut log: F,
    ) -> TestPeer<L>
    where
        F: FnMut(&UdpHandle, &IncomingRequest) -> Fut + Send + 'static,
        Fut: Future<Output = L> + Send,
    {
        let (log_tx, log_rx) = mpsc::unbounded_channel();
        let (note_tx, notified) = mpsc::unbounded_channel();
        let (sec_tx, security) = mpsc::unbounded_channel();
        let h = handle.clone();
        let task = tokio::spawn(async move {
            let mut app = Resources {
                hello,
                store: HashMap::new(),
                created: 0,
            };
            while let Some(item) = incoming.recv().await {
                let r = match item {
                    Incoming::Request(r) => r,
                    Incoming::Security(e) => {
                        let _ = sec_tx.send(e);
                        continue;
                    }
                    _ => continue,
                };
                let record = log(&h, &r).await;
                let _ = log_tx.send(record);
                app.answer(&h, r, &note_tx);
            }
        });
        TestPeer {
            handle,
            log: log_rx,
            notified,
            security,
            task,
        }
    }

    /// Its address.
    pub fn addr(&self) -> SocketAddr {
        self.handle.local_addr()
    }

    /// Every request logged so far.
    pub fn drain_log(&mut self) -> Vec<L> {
        std::iter::from_fn(|| self.log.try_recv().ok()).collect()
    }

    /// Every security event so far.
    pub fn drain_security(&mut self) -> Vec<SecurityEvent> {
        std::iter::from_fn(|| self.security.try_recv().ok()).collect()
    }

    /// The next `n` notification outcomes, each within `wait`.
    pub async fn notifications(&mut self, n: usize, wait: Duration) -> Vec<Notified> {
        let mut v = Vec::new();
        for _ in 0..n {
            let r = tokio::time::timeout(wait, self.notified.recv())
                .await
                .expect("notification outcome in time");
            v.push(r.expect("server running"));
        }
        v
    }
}

/// The state of the [`TestPeer`] application.
struct Resources {
    hello: &'static str,
    store: HashMap<String, Vec<u8>>,
    created: u32,
}

impl Resources {
    fn answer(&mut self, handle: &UdpHandle, r: IncomingRequest, notified: &mpsc::UnboundedSender<Notified>) {
        let (peer, request, responder) = (r.peer, r.request, r.responder);
        let path = request.uri_path_string();
        let reply = |code: Code| Message::response_to(&request, code);
        let resp = match (request.code, path.as_str()) {
            (Code::FETCH, _) => {
                let mut p = b"fetched:".to_vec();
                p.extend_from_slice(&request.payload);
                reply(Code::CONTENT).with_payload(p)
            }
            (Code::GET, "/hello") => reply(Code::CONTENT).with_content_format(0).with_payload(self.hello),
            (Code::GET, "/whoami") => {
                let who = r.identity.as_ref().and_then(|i| i.name()).unwrap_or("anonymous");
                reply(Code::CONTENT).with_content_format(0).with_payload(who)
            }
            (Code::GET, "/large") => reply(Code::CONTENT).with_content_format(0).with_payload(large_body()),
            (Code::GET, "/obs") if request.observe() == Some(0) => {
                let mut first = reply(Code::CONTENT).with_content_format(0).with_payload("n0");
                first.set_observe(1);
                let token = request.token;
                let (h, tx) = (handle.clone(), notified.clone());
                let _ = handle.respond(responder, first);
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
                return;
            }
            (Code::GET, "/obs") => reply(Code::CONTENT).with_content_format(0).with_payload("n3"),
            (Code::PUT, "/upload") => {
                let len = request.payload.len();
                self.store.insert(path.clone(), request.payload.clone());
                reply(Code::CHANGED).with_payload(len.to_string())
            }
            (_, "/slow") => {
                let _ = handle.accept(responder);
                // The empty ACK is queued before the answer, so it leaves first.
                reply(Code::CONTENT).with_payload("slow")
            }
            (Code::POST, "/store") => {
                self.created += 1;
                let p = format!("/store/{}", self.created);
                self.store.insert(p.clone(), request.payload.clone());
                let mut r = reply(Code::CREATED);
                r.set_location_path(&p);
                r
            }
            (Code::PUT, p) if p.starts_with("/store/") => {
                let fresh = self.store.insert(path.clone(), request.payload.clone()).is_none();
                reply(if fresh { Code::CREATED } else { Code::CHANGED })
            }
            (Code::GET, p) if p.starts_with("/store/") => match self.store.get(p) {
                Some(v) => reply(Code::CONTENT).with_content_format(0).with_payload(v.clone()),
                None => reply(Code::NOT_FOUND),
            },
            (Code::POST, p) if p.starts_with("/store/") => {
                let v = self.store.entry(path.clone()).or_default();
                v.extend_from_slice(&request.payload);
                reply(Code::CHANGED)
            }
            (Code::DELETE, p) if p.starts_with("/store/") => match self.store.remove(p) {
                Some(_) => reply(Code::DELETED),
                None => reply(Code::NOT_FOUND),
            },
            _ => reply(Code::NOT_FOUND),
        };
        let _ = handle.respond(responder, resp);
    }
}

/// A scripted LwM2M server on 127.0.0.1 (an ephemeral port, default CoAP parameters): Register (`POST /rd`) →
/// 2.01 with Location-Path `rd/LOCATION`; Update (`POST /rd/LOCATION`) and Send (`POST /dp`) → 2.04;
/// De-register (`DELETE /rd/LOCATION`) → 2.02; anything else 4.04. Returns its endpoint and the log of every
/// request (the peer and the request, logged once answered).
pub async fn registrar(location: &'static str) -> (UdpHandle, mpsc::UnboundedReceiver<(SocketAddr, Message)>) {
    let (handle, mut incoming) = UdpEndpoint::bind("127.0.0.1:0".parse().unwrap(), EndpointConfig::default())
        .await
        .expect("bind the scripted LwM2M server");
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
                    m.set_location_path(&format!("rd/{location}"));
                    m
                }
                (Code::POST, ["rd", l]) if *l == location => Message::response_to(&r.request, Code::CHANGED),
                (Code::POST, ["dp"]) => Message::response_to(&r.request, Code::CHANGED),
                (Code::DELETE, ["rd", l]) if *l == location => Message::response_to(&r.request, Code::DELETED),
                _ => Message::response_to(&r.request, Code::NOT_FOUND),
            };
            let _ = h.respond(r.responder, resp);
            let _ = tx.send((r.peer, r.request));
        }
    });
    (handle, log)
}

/// True once `addr` answers a `GET /.well-known/core` sent from `client`: up to `attempts` requests, each
/// given `each` (the request's own retransmissions cover a peer that is still starting).
pub async fn answers(client: &UdpHandle, addr: SocketAddr, attempts: usize, each: Duration) -> bool {
    for _ in 0..attempts {
        let probe = client.request(addr, Message::request(Code::GET, "/.well-known/core"));
        if let Ok(Ok(_)) = tokio::time::timeout(each, probe).await {
            return true;
        }
    }
    false
}
