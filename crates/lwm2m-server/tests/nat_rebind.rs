//! Observations survive a NAT rebind: a real `lwm2m_client` device talks to the server through a tiny UDP
//! relay playing the NAT. The server observes `/3303/0/5700` and gets a notification; then the NAT gives the
//! device a new public port (the relay switches to a new outbound socket and drops what still arrives on the old
//! one), the device sends an Update from there (digest §4.2: an address change is a reason to update), and the
//! next notification must arrive on the same observation. Real sockets on 127.0.0.1; every wait is for an
//! event, bounded by a timeout.

use std::net::SocketAddr;
use std::time::Duration;

use lwm2m_client::dm::{FactoryConfig, ServerConfig as AccountConfig};
use lwm2m_client::runtime::{Client, ClientConfig, ClientEvent, ClientHandle};
use lwm2m_coap::{Code, EndpointConfig, Message, MessageType, Token, UdpEndpoint};
use lwm2m_core::{Node, Path, ResourceNode, ResourceValue, Value};
use lwm2m_server::{Event, ObservationId, RequestOptions, Server, ServerConfig, ServerHandle};
use tokio::net::UdpSocket;
use tokio::sync::{broadcast, mpsc, oneshot};

/// Bound of every wait.
const WAIT: Duration = Duration::from_secs(10);
/// Short Server ID of the server account on the device.
const SSID: u16 = 1;
const EP: &str = "nat-dev";

fn p(s: &str) -> Path {
    s.parse().unwrap()
}

/// A one-device NAT: the device talks to `inside` as if it were the server; the relay forwards its datagrams to
/// the server from the current outbound socket (the device's public address) and the server's answers back.
/// [`Nat::rebind`] switches to a new outbound socket: a new public port, while datagrams still reaching the old
/// one are dropped (the old mapping is gone).
struct Nat {
    inside: SocketAddr,
    public: SocketAddr,
    rebind: mpsc::UnboundedSender<oneshot::Sender<SocketAddr>>,
}

impl Nat {
    async fn start(server: SocketAddr) -> Nat {
        let inside = UdpSocket::bind("127.0.0.1:0").await.unwrap();
        let outside = UdpSocket::bind("127.0.0.1:0").await.unwrap();
        let (tx, rx) = mpsc::unbounded_channel();
        let nat = Nat {
            inside: inside.local_addr().unwrap(),
            public: outside.local_addr().unwrap(),
            rebind: tx,
        };
        tokio::spawn(relay(inside, outside, server, rx));
        nat
    }

    /// Switches to a new public address and returns it.
    async fn rebind(&mut self) -> SocketAddr {
        let (tx, rx) = oneshot::channel();
        self.rebind.send(tx).unwrap();
        self.public = rx.await.unwrap();
        self.public
    }
}

async fn recv_on(socket: Option<&UdpSocket>, buf: &mut [u8]) -> std::io::Result<(usize, SocketAddr)> {
    match socket {
        Some(s) => s.recv_from(buf).await,
        None => std::future::pending().await,
    }
}

async fn relay(
    inside: UdpSocket,
    mut outside: UdpSocket,
    server: SocketAddr,
    mut rebind: mpsc::UnboundedReceiver<oneshot::Sender<SocketAddr>>,
) {
    let mut device = None;
    let mut stale: Option<UdpSocket> = None;
    let (mut up, mut down, mut dropped) = ([0u8; 2048], [0u8; 2048], [0u8; 2048]);
    loop {
        tokio::select! {
            r = inside.recv_from(&mut up) => {
                let Ok((n, from)) = r else { return };
                device = Some(from);
                let _ = outside.send_to(&up[..n], server).await;
            }
            r = outside.recv_from(&mut down) => {
                let Ok((n, _)) = r else { return };
                if let Some(d) = device {
                    let _ = inside.send_to(&down[..n], d).await;
                }
            }
            // The old mapping is gone: whatever the server still sends there is lost.
            _ = recv_on(stale.as_ref(), &mut dropped) => {}
            cmd = rebind.recv() => {
                let Some(reply) = cmd else { return };
                let fresh = UdpSocket::bind("127.0.0.1:0").await.unwrap();
                let _ = reply.send(fresh.local_addr().unwrap());
                stale = Some(std::mem::replace(&mut outside, fresh));
            }
        }
    }
}

async fn next_event(rx: &mut broadcast::Receiver<Event>, what: &str, mut pred: impl FnMut(&Event) -> bool) -> Event {
    let fut = async {
        loop {
            match rx.recv().await {
                Ok(ev) if pred(&ev) => return ev,
                Ok(_) => {}
                Err(broadcast::error::RecvError::Lagged(n)) => panic!("lagged by {n} events"),
                Err(broadcast::error::RecvError::Closed) => panic!("event channel closed"),
            }
        }
    };
    match tokio::time::timeout(WAIT, fut).await {
        Ok(ev) => ev,
        Err(_) => panic!("no {what} within {WAIT:?}"),
    }
}

async fn client_event(rx: &mut mpsc::UnboundedReceiver<ClientEvent>, what: &str, pred: impl Fn(&ClientEvent) -> bool) {
    let fut = async {
        while let Some(ev) = rx.recv().await {
            if pred(&ev) {
                return;
            }
        }
        panic!("client event channel closed");
    };
    if tokio::time::timeout(WAIT, fut).await.is_err() {
        panic!("no client {what} within {WAIT:?}");
    }
}

/// Sets the temperature on the device and returns the notification the server reports for `id`.
async fn temperature_notified(
    client: &ClientHandle,
    events: &mut broadcast::Receiver<Event>,
    id: ObservationId,
    value: f64,
) {
    client.set_value(p("/3303/0/5700"), Value::Float(value)).await.unwrap();
    let ev = next_event(
        events,
        "notification on the observation",
        |e| matches!(e, Event::Notification { observation, .. } if *observation == id),
    )
    .await;
    let Event::Notification { result, endpoint, .. } = ev else {
        unreachable!()
    };
    assert_eq!(endpoint, EP);
    let r = result.expect("decodable notification");
    assert_eq!(r.observation, Some(id));
    assert_eq!(
        r.node(),
        Some(&Node::Resource(ResourceNode::single(5700, Value::Float(value))))
    );
}

async fn start_server() -> (ServerHandle, broadcast::Receiver<Event>, SocketAddr) {
    let coap = EndpointConfig {
        ack_timeout_ms: 500,
        ..EndpointConfig::default()
    };
    let socket = UdpEndpoint::bind("127.0.0.1:0".parse().unwrap(), coap).await.unwrap();
    let addr = socket.0.local_addr();
    let (server, events) = Server::start(ServerConfig::default(), vec![socket]).unwrap();
    (server, events, addr)
}

#[tokio::test]
async fn observation_survives_a_nat_rebind_after_the_update_from_the_new_address() {
    let (server, mut events, server_addr) = start_server().await;
    let mut nat = Nat::start(server_addr).await;
    let first_public = nat.public;

    // The device knows the NAT's inside address as its server.
    let dm = FactoryConfig {
        servers: vec![AccountConfig::new(SSID, format!("coap://{}", nat.inside), 300)],
        temperature: Some(vec![(0, 20.0)]),
        ..FactoryConfig::default()
    }
    .build()
    .unwrap();
    let (client, mut client_events) = Client::start(dm, ClientConfig::new(EP)).unwrap();
    let ev = next_event(&mut events, "Registered", |e| matches!(e, Event::Registered { .. })).await;
    let Event::Registered { registration, .. } = ev else {
        unreachable!()
    };
    assert_eq!((registration.endpoint.as_str(), registration.peer), (EP, first_public));
    client_event(&mut client_events, "Registered", |e| {
        matches!(e, ClientEvent::Registered { .. })
    })
    .await;

    // Observe the temperature; a change is notified through the first public address.
    let r = server
        .observe(EP, p("/3303/0/5700"), RequestOptions::default())
        .await
        .unwrap();
    let id = r.observation.expect("observation established");
    temperature_notified(&client, &mut events, id, 21.5).await;

    // The NAT rebinds; the device updates its registration (from the new public address).
    let second_public = nat.rebind().await;
    assert_ne!(second_public, first_public);
    client.update(Some(SSID)).await.unwrap();
    let ev = next_event(&mut events, "Updated", |e| matches!(e, Event::Updated { .. })).await;
    let Event::Updated { registration, previous } = ev else {
        unreachable!()
    };
    assert_eq!((previous.peer, registration.peer), (first_public, second_public));
    client_event(&mut client_events, "Updated", |e| {
        matches!(e, ClientEvent::Updated { .. })
    })
    .await;

    // The next change arrives from the new address on the same observation.
    temperature_notified(&client, &mut events, id, 22.5).await;
    temperature_notified(&client, &mut events, id, 23.5).await;
    assert_eq!(
        server.observations(EP).iter().map(|o| o.id).collect::<Vec<_>>(),
        vec![id]
    );
    assert_eq!(client.status().await.unwrap().servers[0].observations, 1);

    // Requests go to the new address too.
    let r = server
        .read(EP, p("/3303/0/5700"), RequestOptions::default())
        .await
        .unwrap();
    assert_eq!(
        r.node(),
        Some(&Node::Resource(ResourceNode::single(5700, Value::Float(23.5))))
    );

    client.shutdown().await;
    server.shutdown().await;
}

/// A hand-driven device socket: the public address a NAT gives a device (raw CoAP, so two devices can use the
/// same address one after the other).
struct Raw {
    socket: UdpSocket,
    server: SocketAddr,
    next_mid: u16,
}

impl Raw {
    async fn bind(server: SocketAddr, first_mid: u16) -> Raw {
        Raw {
            socket: UdpSocket::bind("127.0.0.1:0").await.unwrap(),
            server,
            next_mid: first_mid,
        }
    }

    fn addr(&self) -> SocketAddr {
        self.socket.local_addr().unwrap()
    }

    async fn recv(&self) -> Message {
        let mut buf = [0u8; 2048];
        let (n, _) = tokio::time::timeout(WAIT, self.socket.recv_from(&mut buf))
            .await
            .expect("a datagram from the server")
            .unwrap();
        Message::decode(&buf[..n]).unwrap()
    }

    async fn send(&mut self, mut m: Message) {
        if m.mtype != MessageType::Ack {
            self.next_mid = self.next_mid.wrapping_add(1);
            m.message_id = self.next_mid;
        }
        self.socket.send_to(&m.encode(), self.server).await.unwrap();
    }

    /// A CON request answered piggybacked.
    async fn call(&mut self, m: Message) -> Message {
        self.send(m).await;
        self.recv().await
    }

    /// Registers `ep` with `/3303/0`; returns the location.
    async fn register(&mut self, ep: &str) -> String {
        let mut m = Message::request(Code::POST, "/rd")
            .with_content_format(40)
            .with_payload("</3303/0>");
        for q in [format!("ep={ep}"), "lt=300".into(), "lwm2m=1.1".into()] {
            m.add_uri_query(&q);
        }
        let r = self.call(m).await;
        assert_eq!(r.code, Code::CREATED);
        format!("/{}", r.location_path().join("/"))
    }

    /// Answers the server's next request (an Observe) with 2.05 Observe 1; returns the token.
    async fn accept_observe(&mut self) -> Token {
        let req = self.recv().await;
        assert_eq!((req.code, req.observe()), (Code::GET, Some(0)));
        let mut r = Message::response_to(&req, Code::CONTENT)
            .with_content_format(0)
            .with_payload("20");
        r.set_observe(1);
        self.send(r).await;
        req.token
    }

    /// A NON notification of `value` on `token`.
    async fn notify(&mut self, token: Token, seq: u32, value: &str) {
        let mut n = Message::new(MessageType::Non, Code::CONTENT)
            .with_token(token)
            .with_content_format(0)
            .with_payload(value);
        n.set_observe(seq);
        self.send(n).await;
    }
}

async fn observe_raw(server: &ServerHandle, ep: &str, dev: &mut Raw) -> (ObservationId, Token) {
    let s = server.clone();
    let ep2 = ep.to_string();
    let obs = tokio::spawn(async move { s.observe(&ep2, p("/3303/0/5700"), RequestOptions::default()).await });
    let token = dev.accept_observe().await;
    let r = tokio::time::timeout(WAIT, obs).await.unwrap().unwrap().unwrap();
    (r.observation.expect("observation"), token)
}

async fn notified_value(events: &mut broadcast::Receiver<Event>, id: ObservationId) -> Value {
    let ev = next_event(
        events,
        "notification",
        |e| matches!(e, Event::Notification { observation, .. } if *observation == id),
    )
    .await;
    let Event::Notification { result, .. } = ev else {
        unreachable!()
    };
    match result.expect("decodable").node() {
        Some(Node::Resource(ResourceNode {
            value: ResourceValue::Single(v),
            ..
        })) => v.clone(),
        other => panic!("{other:?}"),
    }
}

/// The NAT gave device A's old public port to device C, which registered from it before A's Update arrived
/// from A's new port: only A's observations move; C's, on the old address, keep working.
#[tokio::test]
async fn when_another_client_took_the_old_address_only_the_movers_observations_follow() {
    let (server, mut events, server_addr) = start_server().await;
    let mut old_port = Raw::bind(server_addr, 100).await;
    let location = old_port.register("dev-a").await;
    let (obs_a, tok_a) = observe_raw(&server, "dev-a", &mut old_port).await;

    // A rebinds to a new port; before it updates, C registers from A's old port and is observed too.
    let mut a = Raw::bind(server_addr, 5000).await;
    let c = &mut old_port;
    c.next_mid = 9000;
    c.register("dev-c").await;
    let (obs_c, tok_c) = observe_raw(&server, "dev-c", c).await;

    let r = a.call(Message::request(Code::POST, &location)).await;
    assert_eq!(r.code, Code::CHANGED);
    let ev = next_event(&mut events, "Updated", |e| matches!(e, Event::Updated { .. })).await;
    let Event::Updated { registration, .. } = ev else {
        unreachable!()
    };
    assert_eq!((registration.endpoint.as_str(), registration.peer), ("dev-a", a.addr()));

    a.notify(tok_a, 2, "21.5").await;
    assert_eq!(notified_value(&mut events, obs_a).await, Value::Float(21.5));
    old_port.notify(tok_c, 2, "30.5").await;
    assert_eq!(notified_value(&mut events, obs_c).await, Value::Float(30.5));
    assert_eq!(server.observations("dev-a").len(), 1);
    assert_eq!(server.observations("dev-c").len(), 1);
    server.shutdown().await;
}

/// Persisted observations hold no address: a server restarted after the rebind restores them at the address
/// the Update stored, and the device's notification from there is delivered on the same observation.
#[tokio::test]
async fn a_restarted_server_restores_observations_at_the_updated_address() {
    let dir = std::env::temp_dir().join(format!("lwm2m-nat-rebind-{}", std::process::id()));
    let _ = std::fs::remove_dir_all(&dir);
    std::fs::create_dir_all(&dir).unwrap();
    let store = std::sync::Arc::new(lwm2m_server::store::RedbRegistrationStore::open(dir.join("s.redb")).unwrap());
    let start = |store: std::sync::Arc<lwm2m_server::store::RedbRegistrationStore>| async move {
        let socket = UdpEndpoint::bind("127.0.0.1:0".parse().unwrap(), EndpointConfig::default())
            .await
            .unwrap();
        let addr = socket.0.local_addr();
        let config = ServerConfig {
            store,
            ..ServerConfig::default()
        };
        let (server, events) = Server::start(config, vec![socket]).unwrap();
        (server, events, addr)
    };
    let (server, mut events, server_addr) = start(store.clone()).await;
    let mut old = Raw::bind(server_addr, 100).await;
    let location = old.register("dev-p").await;
    let (id, token) = observe_raw(&server, "dev-p", &mut old).await;
    let mut new = Raw::bind(server_addr, 200).await;
    assert_eq!(
        new.call(Message::request(Code::POST, &location)).await.code,
        Code::CHANGED
    );
    next_event(&mut events, "Updated", |e| matches!(e, Event::Updated { .. })).await;
    new.notify(token, 2, "21.5").await;
    assert_eq!(notified_value(&mut events, id).await, Value::Float(21.5));
    server.shutdown().await;

    let (server, mut events, server_addr) = start(store.clone()).await;
    assert_eq!(
        server.observations("dev-p").iter().map(|o| o.id).collect::<Vec<_>>(),
        vec![id]
    );
    new.server = server_addr;
    new.notify(token, 3, "22.5").await;
    assert_eq!(notified_value(&mut events, id).await, Value::Float(22.5));
    server.shutdown().await;
    drop(store);
    let _ = std::fs::remove_dir_all(&dir);
}
