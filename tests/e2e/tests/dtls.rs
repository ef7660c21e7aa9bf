//! Our client registers at our server over DTLS 1.2 with a pre-shared key (TLS_PSK_WITH_AES_128_CCM_8), is
//! managed over the same session, and a device claiming the wrong credentials gets nowhere.

use std::time::Duration;

use lwm2m_client::dm::{Credentials, FactoryConfig, ServerConfig as AccountConfig};
use lwm2m_client::runtime::{Client, ClientConfig, ClientEvent};
use lwm2m_coap::{Code, EndpointConfig, PeerIdentity, UdpEndpoint};
use lwm2m_core::node::{Node, ResourceNode};
use lwm2m_core::Value;
use lwm2m_server::{Event, RequestOptions, Server, ServerConfig};
use lwm2m_testkit::events::{next_event, next_map};
use lwm2m_testkit::server::psk_dtls;

const WAIT: Duration = Duration::from_secs(30);
const KEY: &[u8] = b"0123456789abcdef";

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn client_registers_over_dtls_psk_and_is_managed() {
    let (security, layer) = psk_dtls("urn:dev:psk", "psk-identity", KEY);
    let socket = UdpEndpoint::bind_secure("127.0.0.1:0".parse().unwrap(), EndpointConfig::default(), layer)
        .await
        .unwrap();
    let addr = socket.0.local_addr();
    let (server, mut events) = Server::start(
        ServerConfig {
            security: security.clone(),
            ..ServerConfig::default()
        },
        vec![socket],
    )
    .unwrap();

    let mut account = AccountConfig::new(1, format!("coaps://{addr}"), 300);
    account.credentials = Credentials::Psk {
        identity: b"psk-identity".to_vec(),
        key: KEY.to_vec(),
    };
    let dm = FactoryConfig {
        servers: vec![account],
        temperature: Some(vec![(0, 19.0)]),
        ..FactoryConfig::default()
    }
    .build()
    .unwrap();
    let (client, mut client_events) = Client::start(dm, ClientConfig::new("urn:dev:psk")).unwrap();

    let Event::Registered { registration, .. } =
        next_event(&mut events, WAIT, |e| matches!(e, Event::Registered { .. })).await
    else {
        unreachable!()
    };
    assert_eq!(registration.endpoint, "urn:dev:psk");
    assert_eq!(registration.identity, Some(PeerIdentity::Psk(b"psk-identity".to_vec())));

    // Managed over the same DTLS session.
    let read = server
        .read(
            "urn:dev:psk",
            "/3303/0/5700".parse().unwrap(),
            RequestOptions::default(),
        )
        .await
        .unwrap();
    assert_eq!(read.code, Code::CONTENT);
    assert_eq!(
        read.node(),
        Some(&Node::Resource(ResourceNode::single(5700, Value::Float(19.0))))
    );
    client.shutdown().await;
    // De-registered on shutdown.
    next_event(&mut events, WAIT, |e| matches!(e, Event::Deregistered { .. })).await;
    while client_events.try_recv().is_ok() {}

    // A device with the right identity but the wrong key never registers.
    let mut bad = AccountConfig::new(1, format!("coaps://{addr}"), 300);
    bad.credentials = Credentials::Psk {
        identity: b"psk-identity".to_vec(),
        key: b"fedcba9876543210".to_vec(),
    };
    let dm = FactoryConfig {
        servers: vec![bad],
        ..FactoryConfig::default()
    }
    .build()
    .unwrap();
    let mut config = ClientConfig::new("urn:dev:psk");
    config.coap.ack_timeout_ms = 200;
    config.coap.max_retransmit = 1;
    let (intruder, mut intruder_events) = Client::start(dm, config).unwrap();
    let failed = next_map(&mut intruder_events, WAIT, |e| match e {
        ClientEvent::RequestFailed { .. } | ClientEvent::RegistrationFailed { .. } => Some(e.clone()),
        ClientEvent::Registered { .. } => panic!("registered with a wrong key"),
        _ => None,
    })
    .await;
    assert!(matches!(
        failed,
        ClientEvent::RequestFailed { .. } | ClientEvent::RegistrationFailed { .. }
    ));
    assert!(server.registration("urn:dev:psk").unwrap().is_none());
    intruder.shutdown().await;
    server.shutdown().await;
}
