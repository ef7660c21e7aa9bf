//! The labelled requirements (shared/spec/requirements.md), end to end between our client runtime and our
//! server over real UDP sockets on 127.0.0.1. Bootstrap requirements (BsR-1, BsR-2, BsR-7) are shown with the
//! bootstrap server in `crates/lwm2m-bootstrap/tests`; the timing rules of BsR-3..6 are asserted to the
//! millisecond on the virtual clock in `crates/lwm2m-client/src/registration`.

use std::net::SocketAddr;
use std::time::Duration;

use lwm2m_client::dm::{DataModel, FactoryConfig, ServerConfig as AccountConfig};
use lwm2m_client::runtime::{Client, ClientConfig, ClientEvent, ClientHandle};
use lwm2m_coap::Code;
use lwm2m_core::node::{Node, ResourceNode, ResourceValue};
use lwm2m_core::{Path, Value};
use lwm2m_server::{Event, RequestOptions, Server, ServerConfig, ServerHandle};
use lwm2m_testkit::client::{object_3442, resource_1120};
use lwm2m_testkit::events::{next_event, next_matching};
use lwm2m_testkit::server::registered;
use tokio::sync::{broadcast, mpsc};
use tokio::time::timeout;

const WAIT: Duration = Duration::from_secs(20);

async fn start_server() -> (ServerHandle, broadcast::Receiver<Event>, SocketAddr) {
    let (server, events) = Server::bind(ServerConfig::default(), "127.0.0.1:0".parse().unwrap())
        .await
        .expect("server binds");
    let addr = server.local_addrs()[0];
    (server, events, addr)
}

/// A device with the LwM2M v1.1 test object 3442, whose resource 1120 is a writable multi-instance Integer.
fn device(servers: Vec<AccountConfig>) -> DataModel {
    let mut dm = FactoryConfig {
        servers,
        temperature: Some(vec![(0, 21.5)]),
        ..FactoryConfig::default()
    }
    .build()
    .expect("factory configuration is consistent");
    dm.add_object(object_3442([resource_1120()]));
    dm
}

fn start_client(dm: DataModel, config: ClientConfig) -> (ClientHandle, mpsc::UnboundedReceiver<ClientEvent>) {
    Client::start(dm, config).expect("client starts")
}

/// DSE-001: the server reads and writes one instance of a multi-instance resource, in several formats.
#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn dse_001_single_resource_instance() {
    let (server, mut events, addr) = start_server().await;
    let dm = device(vec![AccountConfig::new(1, format!("coap://{addr}"), 300)]);
    let (client, _cev) = start_client(dm, ClientConfig::new("urn:dev:dse-001"));
    registered(&mut events, "urn:dev:dse-001", WAIT).await;

    let ri: Path = "/3442/0/1120/1".parse().unwrap();
    for format in [
        lwm2m_core::ContentFormat::Text,
        lwm2m_core::ContentFormat::Cbor,
        lwm2m_core::ContentFormat::Tlv,
        lwm2m_core::ContentFormat::SenmlJson,
        lwm2m_core::ContentFormat::SenmlCbor,
    ] {
        let opts = RequestOptions {
            format: Some(format),
            ..RequestOptions::default()
        };
        let read = server.read("urn:dev:dse-001", ri, opts).await.expect("read answered");
        assert_eq!(read.code, Code::CONTENT, "{format}");
        assert_eq!(
            read.node(),
            Some(&Node::ResourceInstance {
                id: 1,
                value: Value::Integer(11)
            }),
            "{format}"
        );
    }
    // Write only instance 1; instances 0 and 2 stay as they were.
    let write = server
        .write_value("urn:dev:dse-001", ri, Value::Integer(99), RequestOptions::default())
        .await
        .expect("write answered");
    assert_eq!(write.code, Code::CHANGED);
    let whole = server
        .read(
            "urn:dev:dse-001",
            "/3442/0/1120".parse().unwrap(),
            RequestOptions::default(),
        )
        .await
        .unwrap();
    let Some(Node::Resource(ResourceNode {
        value: ResourceValue::Multiple(m),
        ..
    })) = whole.node()
    else {
        panic!("expected the multi-instance resource, got {whole:?}")
    };
    assert_eq!(m.get(&0), Some(&Value::Integer(10)));
    assert_eq!(m.get(&1), Some(&Value::Integer(99)));
    assert_eq!(m.get(&2), Some(&Value::Integer(12)));
    // The device's own data model agrees.
    assert_eq!(
        client.read(ri).await.unwrap(),
        Node::ResourceInstance {
            id: 1,
            value: Value::Integer(99)
        }
    );
    client.shutdown().await;
    server.shutdown().await;
}

/// BsR-8: the values of chosen resources reach the server together with the registration: the client Sends
/// them right after every successful Register, and the server delivers them as a Send event.
#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn bsr_8_values_sent_with_registration() {
    let (server, mut events, addr) = start_server().await;
    let mut account = AccountConfig::new(1, format!("coap://{addr}"), 300);
    account.server.mute_send = Some(false);
    let dm = device(vec![account]);
    let mut config = ClientConfig::new("urn:dev:bsr-8");
    config.send_on_register = vec!["/3303/0/5700".parse().unwrap(), "/3/0/0".parse().unwrap()];
    let (client, _cev) = start_client(dm, config);
    registered(&mut events, "urn:dev:bsr-8", WAIT).await;
    let Event::Send { endpoint, records, .. } = next_event(
        &mut events,
        WAIT,
        |e| matches!(e, Event::Send { endpoint, .. } if endpoint == "urn:dev:bsr-8"),
    )
    .await
    else {
        unreachable!()
    };
    assert_eq!(endpoint, "urn:dev:bsr-8");
    let temp = records
        .iter()
        .find(|r| r.path == "/3303/0/5700".parse().unwrap())
        .expect("temperature sent");
    assert_eq!(temp.value, Value::Float(21.5));
    assert!(
        records.iter().any(|r| r.path == "/3/0/0".parse().unwrap()),
        "manufacturer sent: {records:?}"
    );
    client.shutdown().await;
    server.shutdown().await;
}

/// BsR-5 (and the BsR-6 pre-condition that the previous server has completed): with Registration Priority
/// Order the client registers at the server with the lower order first, and only then at the next one.
#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn bsr_5_registration_priority_order() {
    let (first, mut first_events, first_addr) = start_server().await;
    let (second, mut second_events, second_addr) = start_server().await;
    // SSID 1 has order 20, SSID 2 has order 10: SSID 2 (the second server) must come first.
    let mut a = AccountConfig::new(1, format!("coap://{first_addr}"), 300);
    a.server.priority_order = Some(20);
    let mut b = AccountConfig::new(2, format!("coap://{second_addr}"), 300);
    b.server.priority_order = Some(10);
    let (client, mut cev) = start_client(device(vec![a, b]), ClientConfig::new("urn:dev:bsr-5"));
    let order: Vec<u16> = {
        let mut v = Vec::new();
        while v.len() < 2 {
            if let ClientEvent::Registered { ssid, .. } =
                next_matching(&mut cev, WAIT, |e| matches!(e, ClientEvent::Registered { .. })).await
            {
                v.push(ssid);
            }
        }
        v
    };
    assert_eq!(order, vec![2, 1]);
    registered(&mut second_events, "urn:dev:bsr-5", WAIT).await;
    registered(&mut first_events, "urn:dev:bsr-5", WAIT).await;
    client.shutdown().await;
    first.shutdown().await;
    second.shutdown().await;
}

/// BsR-3/BsR-4 with real sockets: a server that never answers is retried per the Communication Retry
/// resources, and once registration to it has failed the client falls back to the next server in the order
/// (Registration Failure Block = false), which accepts it.
#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn bsr_3_4_retry_then_fall_back_to_the_next_server() {
    // A socket that swallows every datagram: the "dead" server.
    let dead = tokio::net::UdpSocket::bind("127.0.0.1:0").await.unwrap();
    let dead_addr = dead.local_addr().unwrap();
    let (live, mut live_events, live_addr) = start_server().await;
    let mut a = AccountConfig::new(1, format!("coap://{dead_addr}"), 300);
    a.server.priority_order = Some(1);
    a.server.retry_count = Some(2);
    a.server.retry_timer_s = Some(1);
    a.server.seq_retry_count = Some(1);
    a.server.failure_block = Some(false);
    a.server.bootstrap_on_failure = Some(false);
    let mut b = AccountConfig::new(2, format!("coap://{live_addr}"), 300);
    b.server.priority_order = Some(2);
    let mut config = ClientConfig::new("urn:dev:bsr-3");
    // Short CoAP timeouts so that two attempts take a few seconds of real time.
    config.coap.ack_timeout_ms = 200;
    config.coap.max_retransmit = 1;
    let (client, mut cev) = start_client(device(vec![a, b]), config);
    let failed = next_matching(&mut cev, WAIT, |e| matches!(e, ClientEvent::RegistrationFailed { .. })).await;
    assert!(
        matches!(failed, ClientEvent::RegistrationFailed { ssid: 1, .. }),
        "{failed:?}"
    );
    let ok = next_matching(&mut cev, WAIT, |e| matches!(e, ClientEvent::Registered { .. })).await;
    assert!(matches!(ok, ClientEvent::Registered { ssid: 2, .. }), "{ok:?}");
    registered(&mut live_events, "urn:dev:bsr-3", WAIT).await;
    // The dead server saw exactly the two attempts' datagrams (each a CON with one retransmission).
    let mut buf = [0u8; 2048];
    let mut seen = 0;
    while let Ok(Ok(_)) = timeout(Duration::from_millis(50), dead.recv_from(&mut buf)).await {
        seen += 1;
    }
    assert_eq!(seen, 4, "2 attempts x (1 transmission + 1 retransmission)");
    client.shutdown().await;
    live.shutdown().await;
}
