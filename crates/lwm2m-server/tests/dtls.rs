//! The server on a plain and a DTLS socket at once: a PSK device registers over DTLS without `ep` (the identity
//! names it), is managed and sends over the same session; the security identity guards Register, Update,
//! De-register and Send (digest §10.5).

mod common;

use common::*;
use lwm2m_coap::{Code, Message, PeerIdentity, UdpEndpoint};
use lwm2m_core::format::ContentFormat;
use lwm2m_core::{Node, Path, ResourceNode, Value};
use lwm2m_dtls::coap_layer::DtlsClientLayer;
use lwm2m_dtls::ClientConfig;
use lwm2m_server::{Event, RequestOptions, Server, ServerConfig};
use lwm2m_testkit::server::psk_dtls;

const KEY: &[u8] = b"secret-psk-0123";

#[tokio::test]
async fn psk_device_over_dtls_next_to_plain_coap() {
    let (security, layer) = psk_dtls("psk-dev", "psk-id", KEY);
    let plain = UdpEndpoint::bind("127.0.0.1:0".parse().unwrap(), fast_coap())
        .await
        .unwrap();
    let secure = UdpEndpoint::bind_secure("127.0.0.1:0".parse().unwrap(), fast_coap(), layer)
        .await
        .unwrap();
    let (plain_addr, secure_addr) = (plain.0.local_addr(), secure.0.local_addr());
    let config = ServerConfig {
        security: security.clone(),
        ..ServerConfig::default()
    };
    let (server, mut events) = Server::start(config, vec![plain, secure]).unwrap();
    assert_eq!(server.local_addrs(), vec![plain_addr, secure_addr]);

    let layer = DtlsClientLayer::with_default(ClientConfig::psk(b"psk-id".to_vec(), KEY.to_vec())).unwrap();
    let socket = UdpEndpoint::bind_secure("127.0.0.1:0".parse().unwrap(), fast_coap(), layer)
        .await
        .unwrap();
    let mut dev = Device::on_socket(secure_addr, data_model(), None, socket);

    // 1.1 without ep: the PSK identity names the endpoint.
    assert_eq!(dev.register(&["lwm2m=1.1", "lt=300"]).await.code, Code::CREATED);
    let Event::Registered { registration: r, .. } =
        next_event(&mut events, |e| matches!(e, Event::Registered { .. })).await
    else {
        unreachable!()
    };
    assert_eq!(r.endpoint, "psk-dev");
    assert_eq!(r.identity, Some(PeerIdentity::Psk(b"psk-id".to_vec())));
    assert_eq!(r.socket, 1);

    // Managed over the same session.
    let resp = server
        .read("psk-dev", "/3442/0/120".parse().unwrap(), RequestOptions::default())
        .await
        .unwrap();
    assert_eq!(
        resp.node(),
        Some(&Node::Resource(ResourceNode::single(120, Value::Integer(42))))
    );
    assert_eq!(dev.next_received().await.path, "/3442/0/120");
    // Send over DTLS.
    let path: Path = "/3303/0/5700".parse().unwrap();
    assert_eq!(dev.send(&[path], ContentFormat::SenmlCbor).await.code, Code::CHANGED);
    // Update over DTLS.
    assert_eq!(dev.update(&["lt=600"], None).await.code, Code::CHANGED);
    // Claiming another endpoint with these credentials: 4.00.
    assert_eq!(
        dev.register(&["lwm2m=1.1", "ep=someone-else"]).await.code,
        Code::BAD_REQUEST
    );

    // A plain-CoAP client can neither take the name nor touch the registration.
    let mut intruder = Device::start(plain_addr).await;
    assert_eq!(intruder.register(&["ep=psk-dev"]).await.code, Code::FORBIDDEN);
    intruder.location = dev.location.clone();
    assert_eq!(intruder.update(&["lt=1"], None).await.code, Code::FORBIDDEN);
    assert_eq!(intruder.deregister().await.code, Code::FORBIDDEN);
    let m = Message::request(Code::POST, "/dp")
        .with_content_format(110)
        .with_payload(r#"[{"n":"/3303/0/5700","v":1}]"#);
    assert_eq!(intruder.raw(m).await.unwrap().code, Code::BAD_REQUEST);
    assert_eq!(server.registration("psk-dev").unwrap().unwrap().lifetime_s, 600);

    // The device itself can De-register.
    assert_eq!(dev.deregister().await.code, Code::DELETED);
    assert!(server.registration("psk-dev").unwrap().is_none());
    server.shutdown().await;
}

/// A DTLS client with the wrong PSK key, or with an identity the store does not know, never gets a registration:
/// the handshake fails, the Register never reaches the server, and no Registered event is emitted.
#[tokio::test]
async fn wrong_key_and_unknown_identity_never_register() {
    let (security, layer) = psk_dtls("psk-dev", "psk-id", KEY);
    let secure = UdpEndpoint::bind_secure("127.0.0.1:0".parse().unwrap(), fast_coap(), layer)
        .await
        .unwrap();
    let secure_addr = secure.0.local_addr();
    let config = ServerConfig {
        security: security.clone(),
        ..ServerConfig::default()
    };
    let (server, mut events) = Server::start(config, vec![secure]).unwrap();

    for (identity, key) in [(&b"psk-id"[..], &b"not-the-right-key"[..]), (&b"stranger"[..], KEY)] {
        let mut cfg = ClientConfig::psk(identity.to_vec(), key.to_vec());
        cfg.timing.handshake_timeout_ms = 1_500;
        let layer = DtlsClientLayer::with_default(cfg).unwrap();
        let socket = UdpEndpoint::bind_secure("127.0.0.1:0".parse().unwrap(), fast_coap(), layer)
            .await
            .unwrap();
        let dev = Device::on_socket(secure_addr, data_model(), None, socket);
        let m = Message::request(Code::POST, "/rd?ep=psk-dev&lwm2m=1.1").with_content_format(40);
        let answer = tokio::time::timeout(std::time::Duration::from_secs(20), dev.raw(m))
            .await
            .expect("the request ends (handshake failure or CoAP timeout)");
        assert!(
            answer.is_err(),
            "{identity:?}: the Register must not be answered, got {answer:?}"
        );
    }
    assert!(server.registration("psk-dev").unwrap().is_none());
    assert!(server.registrations().unwrap().is_empty());
    while let Ok(e) = events.try_recv() {
        assert!(!matches!(e, Event::Registered { .. }), "unexpected {e:?}");
    }
    server.shutdown().await;
}
