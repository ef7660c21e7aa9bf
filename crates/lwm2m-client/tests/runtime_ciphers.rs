//! `/0/x/16` DTLS/TLS Ciphersuite over real DTLS on 127.0.0.1: the client offers only the listed suites. A
//! server that accepts only TLS_PSK_WITH_AES_128_CCM_8 refuses a client limited to another PSK suite (a failed
//! Register attempt) and accepts one whose list holds CCM_8; a list with nothing usable fails before any
//! datagram, naming `/0/x/16`.
#![cfg(feature = "dtls")]

mod common;

use std::time::Duration;

use common::{lwm2m_server, register_failure_within, Server};
use lwm2m_client::dm::{Credentials, FactoryConfig, ServerConfig};
use lwm2m_client::runtime::{Client, ClientConfig, ClientEvent, ClientHandle};
use lwm2m_dtls::{CipherOptions, ServerConfig as DtlsServerConfig};
use lwm2m_testkit::events;
use tokio::sync::mpsc;

const IDENTITY: &str = "dev-ciphers";
const KEY: &[u8] = b"0123456789abcdef";
/// Each wait: far longer than a local handshake.
const GUARD: Duration = Duration::from_secs(30);

/// TLS_PSK_WITH_AES_128_CCM_8.
const PSK_CCM_8: u64 = 0xC0A8;
/// TLS_PSK_WITH_AES_128_CBC_SHA256.
const PSK_CBC_SHA256: u64 = 0x00AE;
/// TLS_ECDHE_ECDSA_WITH_AES_128_CCM_8 (not a PSK suite).
const ECDHE_CCM_8: u64 = 0xC0AE;
/// Not a cipher suite this client implements (TLS_AES_128_GCM_SHA256, TLS 1.3).
const TLS13_SUITE: u64 = 0x1301;

/// A CoAP-over-DTLS server accepting only the CCM_8 suites (PSK `IDENTITY`/`KEY`), answering like a plain
/// LwM2M server and logging the requests it got.
async fn ccm8_only_server() -> Server {
    let config = DtlsServerConfig {
        ciphers: CipherOptions::CCM8_ONLY,
        ..DtlsServerConfig::default()
    };
    Server::start_secure_with(lwm2m_server(), IDENTITY, KEY, config).await
}

/// A client with one PSK account at `addr` whose `/0/x/16` is `suites`; one attempt, no bootstrap fall-back.
fn start(addr: std::net::SocketAddr, suites: Vec<u64>) -> (ClientHandle, mpsc::UnboundedReceiver<ClientEvent>) {
    let mut s = ServerConfig::new(1, format!("coaps://{addr}"), 300);
    s.credentials = Credentials::Psk {
        identity: IDENTITY.as_bytes().to_vec(),
        key: KEY.to_vec(),
    };
    s.ciphersuites = suites;
    s.server.retry_count = Some(1);
    s.server.bootstrap_on_failure = Some(false);
    let dm = FactoryConfig {
        servers: vec![s],
        ..FactoryConfig::default()
    }
    .build()
    .unwrap();
    Client::start(dm, ClientConfig::new(IDENTITY)).expect("client starts")
}

#[tokio::test]
async fn a_client_limited_to_another_psk_suite_fails_against_a_ccm8_only_server() {
    let mut srv = ccm8_only_server().await;
    let (client, mut events) = start(srv.addr, vec![PSK_CBC_SHA256]);
    let reason = register_failure_within(&mut events, GUARD).await;
    assert!(reason.contains("HandshakeFailed"), "{reason}");
    assert!(srv.log.try_recv().is_err(), "no request got through");
    client.shutdown().await;
}

#[tokio::test]
async fn the_matching_suite_registers() {
    let mut srv = ccm8_only_server().await;
    // An unknown value and a suite of the wrong key exchange are skipped; CCM_8 is left.
    let (client, mut events) = start(srv.addr, vec![TLS13_SUITE, ECDHE_CCM_8, PSK_CCM_8]);
    events::until(&mut events, GUARD, |e| match e {
        ClientEvent::Registered { ssid: 1, location } => Some(location.clone()),
        ClientEvent::RequestFailed { .. } | ClientEvent::RegistrationFailed { .. } => panic!("{e:?}"),
        _ => None,
    })
    .await;
    assert_eq!(events::recv(&mut srv.log, GUARD).await.line(), "POST /rd");
    client.shutdown().await;
    assert_eq!(events::recv(&mut srv.log, GUARD).await.line(), "DELETE /rd/xyz");
}

#[tokio::test]
async fn the_same_list_with_the_matching_suite_added_registers() {
    let mut srv = ccm8_only_server().await;
    // The client proposes CBC_SHA256 first, then CCM_8: the server picks the one it accepts.
    let (client, mut events) = start(srv.addr, vec![PSK_CBC_SHA256, PSK_CCM_8]);
    events::until(&mut events, GUARD, |e| match e {
        ClientEvent::Registered { ssid: 1, .. } => Some(()),
        ClientEvent::RequestFailed { .. } | ClientEvent::RegistrationFailed { .. } => panic!("{e:?}"),
        _ => None,
    })
    .await;
    assert_eq!(events::recv(&mut srv.log, GUARD).await.line(), "POST /rd");
    client.shutdown().await;
}

#[tokio::test]
async fn a_list_without_a_usable_suite_fails_with_a_clear_error() {
    let mut srv = ccm8_only_server().await;
    let (client, mut events) = start(srv.addr, vec![TLS13_SUITE, ECDHE_CCM_8]);
    let reason = register_failure_within(&mut events, GUARD).await;
    assert!(
        reason.contains("/0/x/16") && reason.contains("no cipher suite to offer"),
        "{reason}"
    );
    assert!(srv.log.try_recv().is_err(), "nothing reached the server");
    client.shutdown().await;
}
