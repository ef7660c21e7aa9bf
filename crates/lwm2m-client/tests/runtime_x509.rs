//! The client runtime over coaps:// with certificates (Security Mode 2) and raw public keys (Mode 1), against a
//! CoAPs server on 127.0.0.1 built from lwm2m-dtls's server layer. The PKI (EC P-256) is made here with the
//! openssl crate.
#![cfg(feature = "dtls")]

mod common;

use std::net::SocketAddr;
use std::sync::Arc;

use common::{standard_answer, until};
use lwm2m_client::dm::{Credentials, FactoryConfig, ServerConfig};
use lwm2m_client::runtime::{Client, ClientConfig, ClientEvent};
use lwm2m_coap::transport::udp::{Incoming, UdpEndpoint};
use lwm2m_coap::{EndpointConfig, Message, PeerIdentity};
use lwm2m_dtls::coap_layer::DtlsServerLayer;
use lwm2m_dtls::{
    CertifiedKey, DtlsServer, MemoryCredentialStore, RawPublicKey, ServerConfig as DtlsConfig, ServerX509,
};
use openssl::asn1::Asn1Time;
use openssl::bn::{BigNum, MsbOption};
use openssl::ec::{EcGroup, EcKey};
use openssl::hash::MessageDigest;
use openssl::nid::Nid;
use openssl::pkey::{PKey, Private};
use openssl::x509::extension::{BasicConstraints, SubjectAlternativeName};
use openssl::x509::{X509Name, X509};
use tokio::sync::mpsc;

fn key() -> PKey<Private> {
    PKey::from_ec_key(EcKey::generate(&EcGroup::from_curve_name(Nid::X9_62_PRIME256V1).unwrap()).unwrap()).unwrap()
}

fn name(cn: &str) -> X509Name {
    let mut n = X509Name::builder().unwrap();
    n.append_entry_by_nid(Nid::COMMONNAME, cn).unwrap();
    n.build()
}

/// A certificate for `cn` with key `key`: a self-signed CA without `issuer`, else issued by it (with
/// subjectAltName IP:127.0.0.1 when `ip_san`).
fn cert(cn: &str, key: &PKey<Private>, issuer: Option<(&X509, &PKey<Private>)>, ip_san: bool) -> X509 {
    let mut b = X509::builder().unwrap();
    b.set_version(2).unwrap();
    let mut serial = BigNum::new().unwrap();
    serial.rand(64, MsbOption::MAYBE_ZERO, false).unwrap();
    b.set_serial_number(&serial.to_asn1_integer().unwrap()).unwrap();
    b.set_subject_name(&name(cn)).unwrap();
    b.set_pubkey(key).unwrap();
    b.set_not_before(&Asn1Time::days_from_now(0).unwrap()).unwrap();
    b.set_not_after(&Asn1Time::days_from_now(30).unwrap()).unwrap();
    match issuer {
        None => {
            b.set_issuer_name(&name(cn)).unwrap();
            b.append_extension(BasicConstraints::new().critical().ca().build().unwrap())
                .unwrap();
            b.sign(key, MessageDigest::sha256()).unwrap();
        }
        Some((ca, ca_key)) => {
            b.set_issuer_name(ca.subject_name()).unwrap();
            if ip_san {
                let san = SubjectAlternativeName::new()
                    .ip("127.0.0.1")
                    .build(&b.x509v3_context(Some(ca), None))
                    .unwrap();
                b.append_extension(san).unwrap();
            }
            b.sign(ca_key, MessageDigest::sha256()).unwrap();
        }
    }
    b.build()
}

/// A test PKI: a CA, the server's certificate (CN localhost, SAN IP 127.0.0.1) and the client's (CN = endpoint).
struct Pki {
    ca: X509,
    server: X509,
    server_key: PKey<Private>,
    client: X509,
    client_key: PKey<Private>,
}

impl Pki {
    fn new(endpoint: &str) -> Pki {
        let ca_key = key();
        let ca = cert("test CA", &ca_key, None, false);
        let server_key = key();
        let server = cert("localhost", &server_key, Some((&ca, &ca_key)), true);
        let client_key = key();
        let client = cert(endpoint, &client_key, Some((&ca, &ca_key)), false);
        Pki {
            ca,
            server,
            server_key,
            client,
            client_key,
        }
    }

    fn client_credentials(&self, server_certificate: &X509, usage: Option<u8>) -> Credentials {
        Credentials::Certificate {
            certificate: self.client.to_der().unwrap(),
            private_key: self.client_key.private_key_to_der().unwrap(),
            server_certificate: server_certificate.to_der().unwrap(),
            certificate_usage: usage,
        }
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
        tokio::time::timeout(common::GUARD, self.log.recv())
            .await
            .expect("a request in time")
            .expect("server running")
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
    let (reg, id) = register(&mut srv, "urn:dev:x509", pki.client_credentials(&pki.server, None)).await;
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
    let (_, id) = register(&mut srv, "dev-ca", pki.client_credentials(&pki.ca, Some(0))).await;
    assert_eq!(common_name(&id), Some("dev-ca"), "{id:?}");
}

async fn first_register_failure(srv: &SecureServer, endpoint: &str, credentials: Credentials) -> String {
    let dm = factory(&srv.uri(), credentials, Some(1)).build().unwrap();
    let (client, mut events) = Client::start(dm, ClientConfig::new(endpoint)).unwrap();
    let reason = until(&mut events, |e| match e {
        ClientEvent::RequestFailed {
            request: "Register",
            reason,
            ..
        } => Some(reason.clone()),
        _ => None,
    })
    .await;
    until(&mut events, |e| {
        (*e == ClientEvent::RegistrationFailed { ssid: 1 }).then_some(())
    })
    .await;
    client.shutdown().await;
    reason
}

#[tokio::test(start_paused = true)]
async fn a_server_certificate_other_than_0_x_4_fails_the_attempt() {
    let pki = Pki::new("dev-wrong");
    let srv = SecureServer::x509(&pki).await;
    let other = Pki::new("dev-wrong");
    let reason = first_register_failure(&srv, "dev-wrong", pki.client_credentials(&other.server, None)).await;
    assert!(
        reason.contains("HandshakeFailed") || reason.contains("Timeout"),
        "{reason}"
    );
    let reason = first_register_failure(&srv, "dev-wrong", pki.client_credentials(&pki.server, Some(7))).await;
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
