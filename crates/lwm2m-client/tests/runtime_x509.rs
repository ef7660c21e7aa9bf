//! The client runtime over coaps:// with certificates (Security Mode 2) and raw public keys (Mode 1), against a
//! CoAPs server on 127.0.0.1 built from lwm2m-dtls's server layer. The PKI (EC P-256) is made with
//! `lwm2m_testkit::pki` (the openssl crate).
#![cfg(feature = "dtls")]

mod common;

use std::net::SocketAddr;
use std::sync::Arc;

use common::{register_failure, standard_answer, until};
use lwm2m_client::dm::{Credentials, FactoryConfig, ServerConfig};
use lwm2m_client::runtime::{Client, ClientConfig, ClientEvent};
use lwm2m_coap::transport::udp::{Incoming, UdpEndpoint};
use lwm2m_coap::{EndpointConfig, Message, PeerIdentity};
use lwm2m_dtls::coap_layer::DtlsServerLayer;
use lwm2m_dtls::{
    CertifiedKey, DtlsServer, MemoryCredentialStore, RawPublicKey, ServerConfig as DtlsConfig, ServerX509,
};
use lwm2m_testkit::pki::{key, Pki, X509};
use tokio::sync::mpsc;

/// The client's credentials of `pki` (Security Mode 2), with `server_certificate` as /0/x/4 and `usage` as
/// /0/x/15.
fn client_credentials(pki: &Pki, server_certificate: &X509, usage: Option<u8>) -> Credentials {
    Credentials::Certificate {
        certificate: pki.client.to_der().unwrap(),
        private_key: pki.client_key.private_key_to_der().unwrap(),
        server_certificate: server_certificate.to_der().unwrap(),
        certificate_usage: usage,
    }
}

/// A CoAPs server answering like a plain LwM2M server; logs each request with the peer's DTLS identity.
struct SecureServer {
    addr: SocketAddr,
    log: mpsc::UnboundedReceiver<(Message, Option<PeerIdentity>)>,
    task: tokio::task::JoinHandle<()>,
}

impl Drop for SecureServer {
    fn drop(&mut self) {
        self.task.abort();
    }
}

impl SecureServer {
    async fn start(config: DtlsConfig, store: MemoryCredentialStore) -> SecureServer {
        let dtls = DtlsServer::new(config, Arc::new(store)).expect("DTLS server");
        let (handle, mut incoming) = UdpEndpoint::bind_secure(
            "127.0.0.1:0".parse().unwrap(),
            EndpointConfig::default(),
            DtlsServerLayer::new(dtls),
        )
        .await
        .expect("bind the DTLS server");
        let addr = handle.local_addr();
        let (tx, log) = mpsc::unbounded_channel();
        let task = tokio::spawn(async move {
            while let Some(item) = incoming.recv().await {
                if let Incoming::Request(r) = item {
                    let _ = tx.send((r.request.clone(), r.identity.clone()));
                    let _ = handle.respond(r.responder, standard_answer(&r.request));
                }
            }
        });
        SecureServer { addr, log, task }
    }

    async fn x509(pki: &Pki) -> SecureServer {
        let config = DtlsConfig {
            psk: false,
            x509: Some(ServerX509 {
                certified_key: CertifiedKey {
                    chain_der: vec![pki.server.to_der().unwrap()],
                    private_key_der: pki.server_key.private_key_to_der().unwrap(),
                },
                client_trust_anchors_der: vec![pki.ca.to_der().unwrap()],
                require_client_cert: true,
            }),
            ..DtlsConfig::default()
        };
        SecureServer::start(config, MemoryCredentialStore::new()).await
    }

    fn uri(&self) -> String {
        format!("coaps://{}", self.addr)
    }

    async fn next(&mut self) -> (Message, Option<PeerIdentity>) {
        lwm2m_testkit::events::recv(&mut self.log, common::GUARD).await
    }
}

fn factory(uri: &str, credentials: Credentials, retries: Option<u64>) -> FactoryConfig {
    let mut s = ServerConfig::new(1, uri, 300);
    s.credentials = credentials;
    s.server.retry_count = retries;
    FactoryConfig {
        servers: vec![s],
        ..FactoryConfig::default()
    }
}

/// Registers with `credentials` and returns what the server saw of the Register.
async fn register(srv: &mut SecureServer, endpoint: &str, credentials: Credentials) -> (Message, Option<PeerIdentity>) {
    let dm = factory(&srv.uri(), credentials, None).build().unwrap();
    let (client, mut events) = Client::start(dm, ClientConfig::new(endpoint)).unwrap();
    let seen = srv.next().await;
    until(&mut events, |e| {
        matches!(e, ClientEvent::Registered { ssid: 1, .. }).then_some(())
    })
    .await;
    client.shutdown().await;
    seen
}

fn common_name(id: &Option<PeerIdentity>) -> Option<&str> {
    match id {
        Some(PeerIdentity::X509 { common_name, .. }) => common_name.as_deref(),
        _ => None,
    }
}

#[tokio::test]
async fn registers_with_a_certificate_domain_issued_usage() {
    let pki = Pki::new("urn:dev:x509");
    let mut srv = SecureServer::x509(&pki).await;
    // /0/x/15 absent: usage 3, /0/x/4 is the server's own certificate (exact match, no name check).
    let (reg, id) = register(&mut srv, "urn:dev:x509", client_credentials(&pki, &pki.server, None)).await;
    assert_eq!(reg.uri_path_string(), "/rd");
    assert!(
        reg.uri_query().contains(&"ep=urn:dev:x509".to_string()),
        "{:?}",
        reg.uri_query()
    );
    assert_eq!(common_name(&id), Some("urn:dev:x509"), "{id:?}");
}

#[tokio::test]
async fn registers_with_a_certificate_ca_constraint() {
    let pki = Pki::new("dev-ca");
    let mut srv = SecureServer::x509(&pki).await;
    // Usage 0: /0/x/4 is the CA; PKIX validation plus the name check of the URI host (IP 127.0.0.1 against the
    // certificate's IP subjectAltName).
    let (_, id) = register(&mut srv, "dev-ca", client_credentials(&pki, &pki.ca, Some(0))).await;
    assert_eq!(common_name(&id), Some("dev-ca"), "{id:?}");
}

async fn first_register_failure(srv: &SecureServer, endpoint: &str, credentials: Credentials) -> String {
    let dm = factory(&srv.uri(), credentials, Some(1)).build().unwrap();
    let (client, mut events) = Client::start(dm, ClientConfig::new(endpoint)).unwrap();
    let reason = register_failure(&mut events).await;
    client.shutdown().await;
    reason
}

#[tokio::test(start_paused = true)]
async fn a_server_certificate_other_than_0_x_4_fails_the_attempt() {
    let pki = Pki::new("dev-wrong");
    let srv = SecureServer::x509(&pki).await;
    let other = Pki::new("dev-wrong");
    let reason = first_register_failure(&srv, "dev-wrong", client_credentials(&pki, &other.server, None)).await;
    assert!(
        reason.contains("HandshakeFailed") || reason.contains("Timeout"),
        "{reason}"
    );
    let reason = first_register_failure(&srv, "dev-wrong", client_credentials(&pki, &pki.server, Some(7))).await;
    assert!(reason.contains("Certificate Usage (/0/x/15) 7"), "{reason}");
}

#[tokio::test]
async fn raw_public_keys_register_or_name_the_missing_feature() {
    let client_key = key();
    let server_key = key();
    let client_spki = client_key.public_key_to_der().unwrap();
    let credentials = Credentials::Rpk {
        public_key: client_spki.clone(),
        private_key: client_key.private_key_to_der().unwrap(),
        server_public_key: server_key.public_key_to_der().unwrap(),
    };
    let rpk_supported = lwm2m_dtls::DtlsClient::new(lwm2m_dtls::ClientConfig {
        security: lwm2m_dtls::ClientSecurity::Rpk(RawPublicKey::new(
            client_key.private_key_to_der().unwrap(),
            Some(server_key.public_key_to_der().unwrap()),
        )),
        ..lwm2m_dtls::ClientConfig::psk(b"x".to_vec(), b"y".to_vec())
    })
    .is_ok();
    if !rpk_supported {
        // Without lwm2m-dtls's `vendored` feature: a failed attempt whose reason names the fix.
        let srv = SecureServer::start(DtlsConfig::default(), MemoryCredentialStore::new()).await;
        let reason = first_register_failure(&srv, "dev-rpk", credentials).await;
        assert!(reason.contains("Rpk") && reason.contains("vendored"), "{reason}");
        return;
    }
    let store = MemoryCredentialStore::new();
    store.add_rpk(client_spki.clone());
    let config = DtlsConfig {
        psk: false,
        rpk: Some(RawPublicKey::new(server_key.private_key_to_der().unwrap(), None)),
        ..DtlsConfig::default()
    };
    let mut srv = SecureServer::start(config, store).await;
    let (_, id) = register(&mut srv, "dev-rpk", credentials).await;
    assert_eq!(id, Some(PeerIdentity::Rpk(client_spki)));
}
